#!/usr/bin/env bats
# t2002: gates (bounds, no_regression_vs with tolerance, signature, data) and
# promote behind them, forced promotion, malformed policies.

load helpers

bats_require_minimum_version 1.5.0

# commit_model NAME ACCURACY [ARGS...]: a new version with that accuracy.
commit_model() {
    local name="$1" acc="$2"
    shift 2
    echo "$name $acc $RANDOM" > w.bin
    printf '{"accuracy": %s, "latency_p99_ms": 20}\n' "$acc" > metrics.json
    cairn add w.bin >/dev/null
    cairn commit "$name" -m "acc $acc" --metrics metrics.json "$@" >/dev/null
}

setup() {
    cairn_setup
    cairn init >/dev/null
    commit_model bert 0.912
    cairn alias set bert production bert@v1 >/dev/null
    cat > regress.yaml <<'YAML'
checks:
  - metric: accuracy
    min: 0.85
  - metric: accuracy
    no_regression_vs: production
    tolerance: 0.005
  - metric: latency_p99_ms
    max: 50
YAML
}

@test "no_regression_vs fails a worse candidate (exit 3) and passes one within tolerance" {
    commit_model bert 0.880
    run cairn gate bert@v2 --policy regress.yaml
    assert_failure 3
    assert_output --regexp 'pass +metric +accuracy +0.880'
    assert_output --regexp 'fail +metric +accuracy +0.880 +≥ production 0.912 - 0.005'
    assert_output --partial "regress.yaml:4:5:"
    assert_output --partial "gate failed for bert@v2"
    commit_model bert 0.908
    run cairn gate bert@v3 --policy regress.yaml
    assert_success
    assert_output --partial "gate passed"
    run cairn gate bert@v3 --policy regress.yaml --json
    assert_success
    [ "$(jq -r .verdict <<<"$output")" = pass ]
    [ "$(jq -r '.checks | length' <<<"$output")" = 3 ]
    [ "$(jq -r '.checks[1].bound' <<<"$output")" = "≥ production 0.912 - 0.005" ]
    [ "$(jq -r .policy_name <<<"$output")" = regress.yaml ]
    run cairn audit --json
    [ "$(jq '[.[] | select(.action == "gate")] | length' <<<"$output")" = 3 ]
}

@test "no_regression_vs against an alias that is not set fails the check" {
    commit_model gpt 0.9
    run cairn gate gpt --policy regress.yaml
    assert_failure 3
    assert_output --partial "production"
}

@test "on_missing_baseline: pass lets a first release through, saying so; a baseline still binds" {
    commit_model gpt 0.9
    printf 'checks:\n  - metric: accuracy\n    min: 0.5\n  - metric: accuracy\n    no_regression_vs: production\n    tolerance: 0.01\n    on_missing_baseline: pass\n' > first.yaml
    run cairn gate gpt --policy first.yaml
    assert_success
    assert_output --regexp 'pass +metric +accuracy +0\.900 +≥ production \(none\) - 0\.010'
    assert_output --partial "first.yaml:4:5: baseline missing: alias 'production' is not set; passed because of on_missing_baseline: pass"
    run cairn gate gpt --policy first.yaml --json
    assert_success
    echo "$output" | jq -e '.verdict == "pass" and (.checks[1].reason | startswith("baseline missing"))'
    # A real passed gate: promote needs no --force, and the audit says so.
    run cairn promote gpt --to production --policy first.yaml
    assert_success
    refute_output --partial forced
    run cairn audit --json
    echo "$output" | jq -e '[.[] | select(.action == "promote")][-1].details.forced == false'
    # Once production exists the check compares as usual: a worse model fails.
    commit_model gpt 0.8
    run cairn gate gpt --policy first.yaml
    assert_failure 3
    assert_output --partial "accuracy regressed by 0.100 against production"
    # The default (and 'fail') keeps the strict behaviour; a bad value is a usage error.
    sed 's/on_missing_baseline: pass/on_missing_baseline: maybe/' first.yaml > bad.yaml
    run cairn gate gpt --policy bad.yaml
    assert_failure 2
    assert_output --partial "bad.yaml:7:26: on_missing_baseline must be pass or fail"
}

@test "a malformed policy is a usage error naming file:line:col, and nothing is stored" {
    printf 'checks:\n  - metric: accuracy\n    mni: 0.9\n' > bad.yaml
    run cairn gate bert --policy bad.yaml
    assert_failure 2
    assert_output --regexp "bad.yaml:3:5: unknown key 'mni'"
    printf 'checks:\n  - flavour: x\n' > bad2.yaml
    run cairn gate bert --policy bad2.yaml
    assert_failure 2
    assert_output --partial "bad2.yaml:2:"
    printf 'checks:\n  - metric: accuracy\n    min: "0.9"\n' > bad3.yaml
    run cairn gate bert --policy bad3.yaml
    assert_failure 2
    assert_output --partial "bad3.yaml:3:"
    run cairn audit --json
    [ "$(jq '[.[] | select(.action == "gate")] | length' <<<"$output")" = 0 ]
}

@test "gate bad input" {
    run cairn gate bert
    assert_failure 2
    assert_output --partial "--policy"
    run cairn gate --policy regress.yaml
    assert_failure 2
    run cairn gate bert@v9 --policy regress.yaml
    assert_failure 1
    run cairn gate bert --policy missing.yaml
    assert_failure 1
    assert_output --partial "missing.yaml"
}

@test "promote without a gate is refused (exit 3); with --force --reason it moves and is audited" {
    commit_model bert 0.95
    run cairn promote bert@v2 --to production --policy regress.yaml
    assert_failure 3
    assert_output --partial "no gate result"
    [ "$(cairn show bert@production --json | jq .number)" = 1 ]
    run cairn promote bert@v2 --to production --force
    assert_failure 2
    assert_output --partial "--reason"
    run cairn promote bert@v2 --to production --force --reason "incident 42 hotfix"
    assert_success
    assert_output --partial "(forced)"
    [ "$(cairn show bert@production --json | jq .number)" = 2 ]
    run cairn audit --json
    local ev
    ev=$(jq -c '[.[] | select(.action == "promote")][0]' <<<"$output")
    [ "$(jq -r .details.forced <<<"$ev")" = true ]
    [ "$(jq -r .details.reason <<<"$ev")" = "incident 42 hotfix" ]
    [ "$(jq -r .subject <<<"$ev")" = bert@production ]
    run cairn alias history bert production --json
    [ "$(jq -r '.[1].reason' <<<"$output")" = "incident 42 hotfix" ]
}

@test "promote after a passed gate follows the policy in .cairn/config, matched by digest" {
    mkdir gates
    cp regress.yaml gates/prod.yaml
    commit_model bert 0.93
    run cairn promote bert@v2 --to production
    assert_failure 2
    assert_output --partial "has no gate policy"
    printf '[alias "production"]\n\tpolicy = gates/prod.yaml\n' >> .cairn/config
    run cairn promote bert@v2 --to production
    assert_failure 3
    cairn gate bert@v2 --policy gates/prod.yaml >/dev/null
    mkdir sub && cd sub
    run cairn promote bert@v2 --to production --json
    assert_success
    [ "$(jq -r .forced <<<"$output")" = false ]
    [ "$(jq -r .changed <<<"$output")" = true ]
    [ "$(jq -r .gate <<<"$output")" = 1 ]
    cd ..
    [ "$(cairn show bert@production --json | jq .number)" = 2 ]
    # the policy changed after the gate ran: a new digest needs a new gate
    commit_model bert 0.94
    cairn gate bert@v3 --policy gates/prod.yaml >/dev/null
    printf '  - metric: accuracy\n    min: 0.5\n' >> gates/prod.yaml
    run cairn promote bert@v3 --to production
    assert_failure 3
    assert_output --partial "no gate result"
}

@test "promote is refused after a failed gate, and --policy is stored as the alias's policy" {
    commit_model bert 0.80
    run cairn gate bert@v2 --policy regress.yaml
    assert_failure 3
    run cairn promote bert@v2 --to production --policy regress.yaml
    assert_failure 3
    assert_output --partial "failed"
    commit_model bert 0.92
    cairn gate bert@v3 --policy regress.yaml >/dev/null
    run cairn promote bert@v3 --to production --policy regress.yaml
    assert_success
    assert_output --partial "promoted bert@v3"
    grep -A1 '\[alias "production"\]' .cairn/config | grep -q 'policy = regress.yaml'
    # the stored policy now applies without --policy
    commit_model bert 0.925
    cairn gate bert@v4 --policy regress.yaml >/dev/null
    run cairn promote bert@v4 --to production
    assert_success
}

@test "promote bad input" {
    run cairn promote bert
    assert_failure 2
    assert_output --partial "--to"
    run cairn promote --to production
    assert_failure 2
    run cairn promote bert --to Bad
    assert_failure 2
    run cairn promote bert@v7 --to production --force --reason x
    assert_failure 1
    run cairn promote bert --to production --bogus
    assert_failure 2
}

@test "signature: required uses the trusted keys" {
    printf 'checks:\n  - signature: required\n' > sig.yaml
    run cairn gate bert --policy sig.yaml
    assert_failure 3
    cairn keygen --trust >/dev/null 2>&1
    cairn sign bert >/dev/null 2>&1
    run cairn gate bert --policy sig.yaml
    assert_success
}

@test "data: validated passes only when every dataset of the version passed validation" {
    echo 'x,y' > d.csv
    cairn add d.csv >/dev/null
    cairn commit digits --kind dataset -m data >/dev/null
    commit_model bert 0.93 --data digits
    printf 'checks:\n  - data: validated\n' > data.yaml
    run cairn gate bert@v2 --policy data.yaml
    assert_failure 3
    assert_output --partial "never validated"
    run cairn gate bert@v1 --policy data.yaml
    assert_failure 3
    assert_output --partial "no dataset"
    local id
    id=$(cairn show digits --json | jq -r .id)
    sqlite3 .cairn/cairn.db "INSERT INTO data_validations(dataset, schema, passed, report, time_ns, actor) VALUES(x'$id', 's.yaml', 1, NULL, 1, 't')"
    run cairn gate bert@v2 --policy data.yaml
    assert_success
    sqlite3 .cairn/cairn.db "INSERT INTO data_validations(dataset, schema, passed, report, time_ns, actor) VALUES(x'$id', 's.yaml', 0, NULL, 2, 't')"
    run cairn gate bert@v2 --policy data.yaml
    assert_failure 3
    assert_output --partial "failed its latest validation"
}

@test "gate and promote: options anywhere, '--' ends them, missing values are usage errors" {
    commit_model bert 0.913
    # Options before the REF.
    run --separate-stderr cairn gate --json --policy regress.yaml bert@v2
    assert_success
    jq -e '.verdict == "pass" and .ref == "bert@v2" and (.gate_id | type) == "number"' <<<"$output"
    run --separate-stderr cairn promote --to=production --json bert@v2 --policy regress.yaml
    assert_success
    jq -e '.changed and .version == 2 and .alias == "production" and (.forced | not)' <<<"$output"
    # After '--' "--json" is the REF.
    run -2 --separate-stderr cairn gate --policy regress.yaml -- --json
    assert_equal "$stderr" "cairn: invalid ref '--json': use NAME, NAME@vN, NAME@ALIAS, NAME@TAG or an id prefix of 7+ hex digits"
    run -2 --separate-stderr cairn gate bert --policy
    assert_equal "$stderr" "cairn: --policy needs a value (FILE) (see 'cairn gate --help')"
    run -2 --separate-stderr cairn gate bert
    assert_equal "$stderr" "cairn: missing --policy FILE (see 'cairn gate --help')"
    run -2 --separate-stderr cairn promote bert --to
    assert_equal "$stderr" "cairn: --to needs a value (ALIAS) (see 'cairn promote --help')"
    run -2 --separate-stderr cairn promote bert --to production --force
    assert_equal "$stderr" "cairn: --force needs --reason TEXT (see 'cairn promote --help')"
    run cairn gate --help
    assert_line "usage: cairn gate REF --policy FILE [--json]"
}
