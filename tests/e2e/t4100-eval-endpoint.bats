#!/usr/bin/env bats
# t4100: evaluation against an OIP v2 endpoint (include/cairn/evalep.h,
# through tests/helper/evalep-tool.c) and `cairn loadgen`, against a real
# `cairn serve-model` process serving a digits MLP trained by
# examples/digits' trainer. The data is examples/digits/data/{train,test}.csv
# when fetch-data.sh and split.sh have been run; otherwise a synthetic set in
# the same layout (64 pixels 0..16, label 0..9) generated here, so the test
# never needs the network.

load helpers
load digits_helpers

bats_require_minimum_version 1.5.0


setup_file() {
    local d="$BATS_FILE_TMPDIR"
    digits_fixture "$d"
}

# serve [FLAGS...]: start serve-model on a free port; sets PORT and URL.
serve() {
    PORT=$(free_port)
    run_bg serve.log cairn serve-model --dir "$BATS_FILE_TMPDIR/model" --name digits \
        --listen "127.0.0.1:$PORT" "$@"
    URL="http://127.0.0.1:$PORT"
    wait_until 20 curl -sf "$URL/v2/health/ready" || { cat serve.log >&2; return 1; }
}

trainer_accuracy() {
    jq -r .accuracy "$BATS_FILE_TMPDIR/model/metrics.json"
}

@test "endpoint accuracy matches the trainer's own test accuracy" {
    serve
    run --separate-stderr cairn-evalep-tool --url "$URL" --model digits \
        --data "$BATS_FILE_TMPDIR/test" --perturb gaussian:0.05
    assert_success
    echo "$output" >metrics.json
    local want got
    want=$(trainer_accuracy)
    got=$(jq -r .accuracy metrics.json)
    # The server runs OpenBLAS sgemm, the trainer its own loops: allow a tie or two.
    run jq -n --argjson a "$got" --argjson b "$want" '($a - $b) | fabs < 0.006'
    assert_output true
    for k in precision_macro recall_macro f1_macro f1_class_0 f1_class_9 latency_p50_ms \
        latency_p95_ms latency_p99_ms throughput_rps robust_accuracy rows; do
        run jq -e --arg k "$k" 'has($k)' metrics.json
        assert_success
    done
    run jq -r .rows metrics.json
    assert_output "$(($(wc -l <"$BATS_FILE_TMPDIR/test/test.csv") - 1))"
    run jq -e '.robust_accuracy > 0.5 and .errors == 0' metrics.json
    assert_success
}

@test "the report holds a confusion matrix whose diagonal is the correct rows" {
    serve
    run --separate-stderr cairn-evalep-tool --url "$URL/v2/models/digits" \
        --data "$BATS_FILE_TMPDIR/test/test.csv" --batch 7 --concurrency 2 --report
    assert_success
    echo "$output" >report.json
    run jq -r '.confusion.labels | join(",")' report.json
    assert_output "0,1,2,3,4,5,6,7,8,9"
    run jq -e '([range(10) as $i | .confusion.matrix[$i][$i]] | add) / .rows == .metrics.accuracy' report.json
    assert_success
    run jq -e '([.confusion.matrix[][]] | add) == .rows and .requests == ((.rows + 6) / 7 | floor)' report.json
    assert_success
}

@test "a server that answers wrongly half the time scores clearly lower" {
    serve --wrong-rate 0.5 --seed 3
    run --separate-stderr cairn-evalep-tool --url "$URL" --model digits --data "$BATS_FILE_TMPDIR/test"
    assert_success
    run jq -n --argjson a "$(echo "$output" | jq .accuracy)" --argjson b "$(trainer_accuracy)" \
        '$a < $b - 0.3'
    assert_output true
}

@test "failed requests are counted by status, and all failing is an error" {
    serve --fail-rate 0.5 --seed 4
    run --separate-stderr cairn-evalep-tool --url "$URL" --model digits \
        --data "$BATS_FILE_TMPDIR/test" --batch 10 --report
    assert_success
    echo "$output" >report.json
    # Only the last batch may be short, by at most 9 rows.
    run jq -e --argjson n "$(($(wc -l <"$BATS_FILE_TMPDIR/test/test.csv") - 1))" \
        '.errors > 0 and .errors_by_status["500"] == .errors and .rows + .rows_failed == $n and
        .rows_failed <= .errors * 10 and .rows_failed > .errors * 10 - 10 and
        (.first_error | test("injected fault"))' report.json
    assert_success
    kill "$BG_PID"
    wait "$BG_PID" || true
    serve --fail-rate 1
    run --separate-stderr cairn-evalep-tool --url "$URL" --model digits --data "$BATS_FILE_TMPDIR/test"
    assert_failure
    assert_equal "$stderr" "cairn-evalep-tool: every request failed: '$URL/v2/models/digits/infer' answered 500: {\"error\":\"injected fault\"}"
}

@test "loadgen sends 50 requests a second for 2 seconds and reports per version" {
    serve
    run --separate-stderr cairn loadgen --url "$URL" --model digits \
        --data "$BATS_FILE_TMPDIR/test/test.csv" --rate 50 --duration 2 --json
    assert_success
    echo "$output" >lg.json
    run jq -e '.scheduled == 100 and .sent == 100 and .answered == 100 and .skipped == 0' lg.json
    assert_success
    # serve-model --dir reports version "1" in its answers (no router, no X-Cairn-Version).
    run jq -e '.versions | length == 1 and .[0].version == "1" and .[0].requests == 100 and
        .[0].ok == 100 and .[0].accuracy > 0.8 and .[0].latency_p50_ms > 0' lg.json
    assert_success
    run --separate-stderr cairn loadgen --url "$URL/v2/models/digits" \
        --data "$BATS_FILE_TMPDIR/test/test.csv" --rate 20 --duration 0.5
    assert_success
    assert_line --regexp '^VERSION +REQUESTS +OK +ERRORS +P50_MS +P99_MS +ACCURACY'
    assert_line --regexp '^1 +10 +10 +0 '
    assert_line "sent 10 of 10 scheduled in 0.5 s (0 skipped, 0 without answer)"
}

@test "loadgen counts errors by status and refuses bad usage" {
    serve --fail-rate 1
    run --separate-stderr cairn loadgen --url "$URL" --model digits \
        --data "$BATS_FILE_TMPDIR/test/test.csv" --rate 40 --duration 0.5 --json
    assert_success
    run jq -e '.versions[0].errors["500"] == 20 and .versions[0].ok == 0' <<<"$output"
    assert_success
    run --separate-stderr cairn loadgen --url "$URL" --model digits --rate 5 --duration 1
    assert_failure 2
    run --separate-stderr cairn loadgen --url "$URL" --model digits \
        --data "$BATS_FILE_TMPDIR/test/test.csv" --rate 0 --duration 1
    assert_failure 2
    run --separate-stderr cairn loadgen --url "$URL" --model digits \
        --data nosuch.csv --rate 5 --duration 1
    assert_failure 1
    assert_equal "$stderr" "cairn: cannot open 'nosuch.csv': No such file or directory"
    # No positional arguments: after '--' "--json" is one, and refused.
    run --separate-stderr cairn loadgen --url "$URL" --model digits \
        --data "$BATS_FILE_TMPDIR/test/test.csv" --rate 5 --duration 1 -- --json
    assert_failure 2
    assert_equal "$stderr" "cairn: unexpected argument '--json' (see 'cairn loadgen --help')"
    run --separate-stderr cairn loadgen --url "$URL" --data x.csv --duration 1 --rate
    assert_failure 2
    assert_equal "$stderr" "cairn: --rate needs a value (R) (see 'cairn loadgen --help')"
    run --separate-stderr cairn loadgen --url "$URL" --data x.csv --rate 5
    assert_failure 2
    assert_equal "$stderr" "cairn: missing --duration S (see 'cairn loadgen --help')"
    run --separate-stderr cairn loadgen --url "$URL" --data x.csv --rate 5 --duration 1 \
        --concurrency 0
    assert_failure 2
    assert_equal "$stderr" "cairn: --concurrency takes a whole number above 0 (see 'cairn loadgen --help')"
}

@test "cairn eval --endpoint records the metrics on the version; partial runs record nothing" {
    mkdir -p ds mdl
    cp "$BATS_FILE_TMPDIR/test/test.csv" ds/
    cp "$BATS_FILE_TMPDIR/model/model.safetensors" mdl/
    cairn init >/dev/null
    cairn add ds/test.csv >/dev/null
    cairn commit digits-data --kind dataset -m "test rows" >/dev/null
    cairn add mdl/model.safetensors >/dev/null
    cairn commit digits -m "mlp" >/dev/null
    serve
    run --separate-stderr cairn eval digits --endpoint "$URL" --data digits-data \
        --perturb gaussian:0.05 --record --json
    assert_success
    run jq -e '.recorded and .metrics.rows > 0 and (.metrics | has("robust_accuracy")) and
        (.report.confusion.labels | length) == 10' <<<"$output"
    assert_success
    run --separate-stderr cairn metrics digits --json
    assert_success
    assert_output --partial '"f1_macro"'
    run --separate-stderr cairn eval digits --endpoint "$URL" --cmd true --data digits-data
    assert_failure 2
    run --separate-stderr cairn eval digits --endpoint "$URL"
    assert_failure 2
    assert_equal "$stderr" "cairn: --endpoint needs the dataset: --data REF (see 'cairn eval --help')"

    kill "$BG_PID"
    wait "$BG_PID" || true
    serve --fail-rate 0.5 --seed 9
    run --separate-stderr cairn eval digits@v1 --endpoint "$URL/v2/models/digits" \
        --data digits-data --batch 16 --record
    assert_failure 1
    assert_output --partial "accuracy"
    assert_line --index 0 --partial "eval digits@v1"
    refute_output --partial "recorded on"
    [[ $stderr == *"requests to '$URL/v2/models/digits/infer' failed (first: '$URL/v2/models/digits/infer' answered 500"*"nothing recorded" ]]
}
