#!/usr/bin/env bats
# t2001: aliases - set, list, history (who, when, from, to, why) and bad input.

load helpers

bats_require_minimum_version 1.5.0

setup() {
    cairn_setup
    cairn init >/dev/null
    for i in 1 2 3; do
        echo "weights $i" > w.bin
        cairn add w.bin >/dev/null
        cairn commit bert -m "v$i" >/dev/null
    done
    echo data > d.csv
    cairn add d.csv >/dev/null
    cairn commit digits --kind dataset -m data >/dev/null
}

@test "alias set points NAME@ALIAS at a version and resolves everywhere" {
    run cairn alias set bert production bert@v1 --reason "first release"
    assert_success
    assert_output --regexp '^bert@production -> bert@v1 \([0-9a-f]{12}\)$'
    run cairn show bert@production --json
    assert_success
    [ "$(jq -r .number <<<"$output")" = 1 ]
    run cairn alias list bert --json
    assert_success
    [ "$(jq -r '.[0].alias' <<<"$output")" = production ]
    [ "$(jq -r '.[0].version' <<<"$output")" = 1 ]
    [ "$(jq -r '.[0].id' <<<"$output")" = "$(cairn show bert@v1 --json | jq -r .id)" ]
}

@test "alias history shows every change with who, from, to and why" {
    export CAIRN_USER=alice
    cairn alias set bert production bert@v1 --reason "first release"
    export CAIRN_USER=bob
    cairn alias set bert production bert@v2 --reason "better recall"
    cairn alias set bert production bert@v1 --reason "rollback: latency"
    run cairn alias set bert production bert@v1
    assert_success
    assert_output "bert@production already points to bert@v1"
    run cairn alias history bert production --json
    assert_success
    [ "$(jq length <<<"$output")" = 3 ]
    [ "$(jq -r '.[0].from' <<<"$output")" = null ]
    [ "$(jq -r '.[0].to_version' <<<"$output")" = 1 ]
    [ "$(jq -r '.[0].author' <<<"$output")" = alice ]
    [ "$(jq -r '.[1].from_version' <<<"$output")" = 1 ]
    [ "$(jq -r '.[1].to_version' <<<"$output")" = 2 ]
    [ "$(jq -r '.[1].author' <<<"$output")" = bob ]
    [ "$(jq -r '.[1].reason' <<<"$output")" = "better recall" ]
    [ "$(jq -r '.[2].reason' <<<"$output")" = "rollback: latency" ]
    run cairn alias history bert production
    assert_success
    assert_output --regexp 'bob +v2 +v1 +rollback: latency'
    run cairn audit --json
    [ "$(jq '[.[] | select(.action == "alias")] | length' <<<"$output")" = 3 ]
}

@test "alias list covers every model; an empty repository says so" {
    run cairn alias list
    assert_success
    assert_output "no aliases"
    cairn alias set bert staging bert@v3
    cairn alias set digits current digits
    run cairn alias list
    assert_success
    assert_output --regexp 'bert +staging +v3'
    assert_output --regexp 'digits +current +v1'
    run cairn alias list --json
    [ "$(jq length <<<"$output")" = 2 ]
}

@test "alias bad input: usage errors (exit 2) and missing things (exit 1)" {
    run cairn alias
    assert_failure 2
    run cairn alias rename bert x
    assert_failure 2
    assert_output --partial "unknown subcommand 'rename'"
    run cairn alias set bert production
    assert_failure 2
    run cairn alias set bert Prod bert@v1
    assert_failure 2
    assert_output --partial "alias"
    run cairn alias set bert v7 bert@v1
    assert_failure 2
    assert_output --partial "looks like a version number"
    run cairn alias set bert production digits@v1
    assert_failure 2
    assert_output --partial "is a version of 'digits', not of 'bert'"
    run cairn alias set bert production bert@v9
    assert_failure 1
    run cairn alias set bert production bert@v1 --bogus
    assert_failure 2
    run cairn alias history bert production
    assert_failure 1
    assert_output --partial "has no alias 'production'"
    run cairn alias history nosuch production
    assert_failure 1
    run cairn alias list bert --reason x
    assert_failure 2
    cairn tag bert@v1 golden
    run cairn alias set bert golden bert@v2
    assert_failure 2
    assert_output --partial "already a tag"
}

@test "tag --json names the version; options anywhere; usage errors" {
    run cairn tag --json bert@v2 paper
    assert_success
    [ "$(jq -r .model <<<"$output")" = bert ]
    [ "$(jq -r .tag <<<"$output")" = paper ]
    [ "$(jq -r .ref <<<"$output")" = bert@paper ]
    [ "$(jq -r .version <<<"$output")" = 2 ]
    [ "$(jq -r .id <<<"$output")" = "$(cairn show bert@v2 --json | jq -r .id)" ]
    run cairn tag bert@v1 first --json
    assert_success
    [ "$(jq -r .ref <<<"$output")" = bert@first ]
    run cairn show bert@paper --json
    [ "$(jq -r .number <<<"$output")" = 2 ]
    run -2 cairn tag bert@v1
    assert_output "cairn: missing TAG (see 'cairn tag --help')"
    run -2 cairn tag bert@v1 -- --json
    assert_output --partial "invalid tag '--json'"
    run -2 cairn tag bert@v1 v4
    assert_output --partial "looks like a version number"
}

@test "alias: options anywhere, '--' ends them, a missing value is a usage error" {
    run --separate-stderr cairn alias set --json bert --reason=first production bert@v1
    assert_success
    jq -e '.changed and .version == 1 and .from == null' <<<"$output"
    run --separate-stderr cairn alias history --json bert production
    assert_success
    jq -e 'length == 1 and .[0].reason == "first"' <<<"$output"
    run --separate-stderr cairn alias list --json bert
    assert_success
    jq -e '.[0].ref == "bert@v1"' <<<"$output"
    # After '--' "--json" is the model NAME.
    run -1 --separate-stderr cairn alias list -- --json
    assert_equal "$output" ""
    [[ $stderr == *"'--json'"* ]]
    run -2 --separate-stderr cairn alias set bert production bert@v2 --reason
    assert_equal "$stderr" "cairn: --reason needs a value (TEXT) (see 'cairn alias --help')"
    run -2 --separate-stderr cairn alias history bert
    assert_equal "$stderr" "cairn: missing ALIAS (see 'cairn alias --help')"
    run -2 --separate-stderr cairn alias
    assert_equal "$stderr" "cairn: give a subcommand: set, list or history (see 'cairn alias --help')"
    # --help shows every subcommand's usage and options.
    run cairn alias --help
    assert_line "usage: cairn alias set NAME ALIAS REF [--reason TEXT] [--json]"
    assert_line "       cairn alias list [NAME] [--json]"
    assert_line "       cairn alias history NAME ALIAS [--json]"
    assert_line --regexp '^  --reason TEXT +why'
}
