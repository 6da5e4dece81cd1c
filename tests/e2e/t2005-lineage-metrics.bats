#!/usr/bin/env bats
# t2005: lineage (tree, JSON, Graphviz) and metrics comparison across versions.

load helpers

bats_require_minimum_version 1.5.0

setup() {
    cairn_setup
    cairn init >/dev/null
    echo 'a,b' > rows.csv
    cairn add rows.csv >/dev/null
    cairn commit digits --kind dataset -m data >/dev/null
    echo one > w.bin
    printf '{"accuracy": 0.90, "loss": 0.30}\n' > m.json
    cairn add w.bin >/dev/null
    cairn commit bert -m one --metrics m.json --data digits >/dev/null
    echo two > w.bin
    printf '{"accuracy": 0.93, "loss": 0.35, "f1": 0.8}\n' > m.json
    cairn add w.bin >/dev/null
    cairn commit bert -m two --metrics m.json >/dev/null
}

@test "lineage shows parents and datasets upward as a tree" {
    run cairn lineage bert
    assert_success
    assert_line --index 0 --regexp '^bert@v2 \([0-9a-f]{12}\) .* by '
    assert_output --regexp '── parent +bert@v1'
    assert_output --regexp '── data +digits@v1'
}

@test "lineage --json nests inputs; --dot is a Graphviz digraph" {
    run cairn lineage bert --json
    assert_success
    [ "$(jq -r .ref <<<"$output")" = bert@v2 ]
    [ "$(jq -r '.inputs[0].kind' <<<"$output")" = parent ]
    [ "$(jq -r '.inputs[0].version.ref' <<<"$output")" = bert@v1 ]
    [ "$(jq -r '.inputs[0].version.inputs[0].kind' <<<"$output")" = data ]
    [ "$(jq -r '.inputs[0].version.inputs[0].version.ref' <<<"$output")" = digits@v1 ]
    run cairn lineage bert --dot
    assert_success
    assert_line --index 0 'digraph lineage {'
    assert_output --partial '[label="parent"]'
    assert_output --partial '[label="data"]'
    assert_output --partial 'shape=cylinder'
    assert_line --index -1 '}'
    if command -v dot >/dev/null; then
        cairn lineage bert --dot | dot -Tsvg >/dev/null
    fi
}

@test "lineage takes options before REF; '--' ends them" {
    run cairn lineage --json bert@v1
    assert_success
    [ "$(jq -r .ref <<<"$output")" = bert@v1 ]
    run -2 cairn lineage -- --json
    assert_output --partial "'--json'"
}

@test "lineage bad input" {
    run cairn lineage
    assert_failure 2
    run -2 cairn lineage --dot
    assert_output "cairn: missing REF (see 'cairn lineage --help')"
    run cairn lineage bert --json --dot
    assert_failure 2
    run cairn lineage nosuch
    assert_failure 1
    run cairn lineage 'Bad Name'
    assert_failure 2
}

@test "metrics compares versions: a column per metric, best marked, JSON" {
    run cairn metrics bert
    assert_success
    assert_line --index 0 --regexp '^VERSION +ID +accuracy +f1 +loss$'
    assert_output --regexp 'v1 +[0-9a-f]{12} +0.9 +- +0.3 \*'
    assert_output --regexp 'v2 +[0-9a-f]{12} +0.93 \* +0.8 \* +0.35'
    run cairn metrics bert --metric loss,accuracy --json
    assert_success
    [ "$(jq -c .metrics <<<"$output")" = '["loss","accuracy"]' ]
    [ "$(jq -r '.versions[1].metrics.accuracy' <<<"$output")" = 0.93 ]
    [ "$(jq -r '.versions[0].metrics.f1' <<<"$output")" = null ]
    [ "$(jq -r '.versions[0].ref' <<<"$output")" = bert@v1 ]
}

@test "metrics bad input" {
    run cairn metrics
    assert_failure 2
    run cairn metrics nosuch
    assert_failure 1
    run cairn metrics bert --metric 'a b'
    assert_failure 2
    run cairn metrics bert --bogus
    assert_failure 2
}

@test "metrics: options anywhere, '--' ends them, a missing value is a usage error" {
    run --separate-stderr cairn metrics --json --metric=loss bert
    assert_success
    jq -e '.model == "bert" and .metrics == ["loss"] and (.versions | length) == 2' <<<"$output"
    # The old spelling --metrics still works.
    run --separate-stderr cairn metrics bert --metrics accuracy --json
    assert_success
    jq -e '.metrics == ["accuracy"]' <<<"$output"
    # After '--' "--json" is the model NAME.
    run -2 --separate-stderr cairn metrics -- --json
    assert_equal "$output" ""
    [[ $stderr == *"'--json'"* ]]
    run -2 --separate-stderr cairn metrics bert --metric
    assert_equal "$stderr" "cairn: --metric needs a value (LIST) (see 'cairn metrics --help')"
}
