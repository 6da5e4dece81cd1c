#!/usr/bin/env bats
# t2003: eval --cmd runs a command on checked-out versions, records metrics
# with --record, and records nothing when the command fails in any way.

load helpers

bats_require_minimum_version 1.5.0

setup() {
    cairn_setup
    cairn init >/dev/null
    echo '{"scale": 2}' > w.json
    cairn add w.json >/dev/null
    cairn commit bert -m one >/dev/null
    echo 'a,b' > rows.csv
    cairn add rows.csv >/dev/null
    cairn commit digits --kind dataset -m data >/dev/null
}

metric_count() {
    cairn show bert --json | jq '.metrics | length'
}

@test "eval runs the command with CAIRN_MODEL_DIR and CAIRN_DATA_DIR and prints the metrics" {
    cat > ev.sh <<'SH'
test -f "$CAIRN_MODEL_DIR/w.json" || exit 9
test -f "$CAIRN_DATA_DIR/rows.csv" || exit 8
echo "ran on $CAIRN_MODEL_REF" >&2
printf '{"accuracy": 0.93, "model_ok": true, "note": "fine"}\n'
SH
    run cairn eval bert --data digits --cmd 'sh ev.sh'
    assert_success
    assert_output --partial "ran on bert@v1"
    assert_output --regexp 'accuracy +0.93'
    assert_output --regexp 'model_ok +true'
    [ "$(metric_count)" = 0 ]
    run --separate-stderr cairn eval bert --data digits --cmd 'sh ev.sh' --json
    assert_success
    [ "$(jq -r .metrics.accuracy <<<"$output")" = 0.93 ]
    [ "$(jq -r .recorded <<<"$output")" = false ]
    [ "$(jq -r .data <<<"$output")" = digits@v1 ]
    # the temporary checkouts are gone afterwards
    run cairn eval bert --cmd 'echo "{\"dir\": \"$CAIRN_MODEL_DIR\"}"' --json
    assert_success
    [ ! -e "$(jq -r .metrics.dir <<<"$output")" ]
}

@test "eval --record stores the metrics (source eval, audited) and gate then uses them" {
    run cairn eval bert --cmd 'echo "{\"accuracy\": 0.91, \"latency_p99_ms\": 12}"' --record
    assert_success
    assert_output --partial "recorded on bert@v1"
    [ "$(cairn show bert --json | jq .metrics.accuracy)" = 0.91 ]
    run cairn audit --json
    [ "$(jq -r '.[-1].action' <<<"$output")" = metrics ]
    [ "$(jq -r '.[-1].details.source' <<<"$output")" = eval ]
    printf 'checks:\n  - metric: accuracy\n    min: 0.9\n  - metric: latency_p99_ms\n    max: 50\n' > p.yaml
    run cairn gate bert --policy p.yaml
    assert_success
    printf 'checks:\n  - metric: accuracy\n    min: 0.95\n' > strict.yaml
    run cairn gate bert --policy strict.yaml
    assert_failure 3
}

@test "eval: a command that times out is killed and records nothing" {
    run cairn eval bert --cmd 'sleep 30; echo "{\"accuracy\": 1}"' --timeout 1 --record
    assert_failure 1
    assert_output --partial "timed out"
    assert_output --partial "nothing recorded"
    [ "$(metric_count)" = 0 ]
}

@test "eval: a non-zero exit records nothing" {
    run cairn eval bert --cmd 'echo "{\"accuracy\": 1}"; exit 4' --record
    assert_failure 1
    assert_output --partial "status 4"
    [ "$(metric_count)" = 0 ]
}

@test "eval: a crash records nothing" {
    run cairn eval bert --cmd 'echo "{\"accuracy\": 1}"; kill -SEGV $$' --record
    assert_failure 1
    assert_output --partial "signal"
    [ "$(metric_count)" = 0 ]
}

@test "eval: output that is not a flat JSON object records nothing" {
    run cairn eval bert --cmd 'echo accuracy=0.9' --record
    assert_failure 1
    assert_output --partial "command output"
    run cairn eval bert --cmd 'echo "{\"a\": {\"b\": 1}}"' --record
    assert_failure 1
    run cairn eval bert --cmd 'true' --record
    assert_failure 1
    assert_output --partial "printed nothing"
    run cairn eval bert --cmd 'echo "{}"' --record
    assert_failure 1
    [ "$(metric_count)" = 0 ]
    run cairn audit --json
    [ "$(jq '[.[] | select(.action == "metrics")] | length' <<<"$output")" = 0 ]
}

@test "eval bad input" {
    run cairn eval bert
    assert_failure 2
    assert_output --partial "--cmd"
    run cairn eval --cmd true
    assert_failure 2
    run cairn eval bert --cmd true --timeout soon
    assert_failure 2
    run cairn eval bert@v5 --cmd true
    assert_failure 1
    run cairn eval bert --data nosuch --cmd true
    assert_failure 1
    run cairn eval bert --cmd true --bogus
    assert_failure 2
}

@test "eval: options anywhere, '--' ends them, missing values are usage errors" {
    run --separate-stderr cairn eval --json --cmd 'echo "{\"n\": 1}"' bert --record
    assert_success
    jq -e '.ref == "bert@v1" and .metrics.n == 1 and .recorded' <<<"$output"
    # After '--' "--json" is the REF.
    run -2 --separate-stderr cairn eval --cmd true -- --json
    assert_equal "$output" ""
    assert_equal "$stderr" "cairn: invalid ref '--json': use NAME, NAME@vN, NAME@ALIAS, NAME@TAG or an id prefix of 7+ hex digits"
    run -2 --separate-stderr cairn eval bert --cmd
    assert_equal "$stderr" "cairn: --cmd needs a value (COMMAND) (see 'cairn eval --help')"
    run -2 --separate-stderr cairn eval bert --cmd true --timeout soon
    assert_equal "$stderr" "cairn: --timeout takes whole seconds, not 'soon' (see 'cairn eval --help')"
    run -2 --separate-stderr cairn eval bert --endpoint http://127.0.0.1:9 --data digits --batch 0
    assert_equal "$stderr" "cairn: --batch takes a whole number above 0 (see 'cairn eval --help')"
    run -2 --separate-stderr cairn eval
    assert_equal "$stderr" "cairn: missing REF (see 'cairn eval --help')"
}
