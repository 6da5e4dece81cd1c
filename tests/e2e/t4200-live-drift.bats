#!/usr/bin/env bats
# t4200: live drift (issue #8). cairn serve keeps a sampled window of the
# inputs each model receives; `cairn data drift REF --live MODEL` compares a
# dataset version with it, and /metrics shows PSI per feature when the
# config names a reference dataset.
#
# The model is t4000's two-input MLP. The reference dataset has columns x0
# (about normal), x1 (uniform 0..4) and a label; traffic is sent in batches of
# 100 or 500 rows per request, drawn like the reference or shifted by +3.

load helpers
load serve_helpers

# rows SEED N SHIFT: N rows "x0 x1" drawn like the reference, plus SHIFT.
rows() {
    awk -v seed="$1" -v n="$2" -v shift="$3" 'BEGIN {
        srand(seed)
        for (i = 0; i < n; i++) {
            x0 = rand() + rand() + rand() + rand() - 2
            printf "%.5f %.5f\n", x0 + shift, 4 * rand() + shift
        }
    }'
}

setup() {
    cairn_setup
    cairn init . >/dev/null
    write_model model.safetensors
    cairn add --model clf model.safetensors >/dev/null
    cairn commit clf -m v1 >/dev/null
    cairn alias set clf production clf@v1 >/dev/null
    { echo x0,x1,label; rows 1 2000 0 | awk '{ print $1 "," $2 "," ($1 > 0) }'; } >ref.csv
    cairn add ref.csv >/dev/null
    cairn commit ds --kind dataset -m reference >/dev/null
    export CAIRN_TOKEN="$(cairn token create --role read --name reader 2>/dev/null)"
}

# traffic SEED REQUESTS SHIFT [ROWS]: REQUESTS inference requests of ROWS (100) rows each.
traffic() {
    local i n="${4:-100}"
    for ((i = 0; i < $2; i++)); do
        rows "$(($1 * 1000 + i))" "$n" "$3" |
            awk -v n="$n" 'BEGIN { printf "{\"inputs\":[{\"name\":\"x\",\"shape\":[%d,2],\"datatype\":\"FP32\",\"data\":[", n }
                 { printf "%s%s,%s", (NR > 1 ? "," : ""), $1, $2 }
                 END { print "]}]}" }' >body.json
        curl -sf -o /dev/null -X POST -H 'Content-Type: application/json' -d @body.json \
            "$CAIRN_SERVER/v2/models/clf/infer" || return 1
    done
}

psi_above() {
    curl -sf "$CAIRN_SERVER/metrics" |
        awk -v lim="$1" '/^cairn_input_drift_psi\{/ && $2 > lim { found = 1 } END { exit !found }'
}

@test "live drift appears after traffic with shifted inputs" {
    printf 'models:\n  clf:\n    reference: ds\n' >serve.yaml
    start_serve --config serve.yaml
    wait_until 20 grep -q 'live drift reference ds' serve.log
    traffic 2 5 0
    run cairn data drift ds --live clf
    assert_success
    assert_output --partial "ds -> clf (live): 2000 -> 500 rows: no drift"
    assert_output --regexp 'x0 +numeric'
    assert_output --regexp 'label +skipped'
    # Like the reference: PSI is small once computed (every 2 s).
    wait_until 10 bash -c "curl -sf $CAIRN_SERVER/metrics | grep -q '^cairn_input_drift_psi{model=\"clf\",feature=\"x0\"}'"
    run psi_above 0.2
    assert_failure

    traffic 3 6 3 500
    run cairn data drift ds --live clf --json
    assert_equal "$status" 3
    assert_equal "$(jq -r .drifted <<<"$output")" true
    assert_equal "$(jq -r .rows_cur <<<"$output")" 3500
    assert_equal "$(jq -r '.columns[] | select(.name == "x0") | .drifted' <<<"$output")" true
    wait_until 10 psi_above 0.2
    curl -sf "$CAIRN_SERVER/metrics" >metrics.txt
    grep -q '^cairn_input_window_rows{model="clf"} 3500$' metrics.txt
    grep -q '^cairn_input_drift_psi{model="clf",feature="x1"}' metrics.txt
    if command -v promtool >/dev/null; then
        run promtool check metrics <metrics.txt
        assert_success
    fi
}

@test "without a reference the window is numbered, needs a token, and still compares" {
    start_serve
    traffic 4 3 0
    run curl -s -o /dev/null -w '%{http_code}' "$CAIRN_SERVER/api/v1/models/clf/inputs"
    assert_output 401
    run curl -sf -D headers.txt -H "Authorization: Bearer $CAIRN_TOKEN" \
        "$CAIRN_SERVER/api/v1/models/clf/inputs"
    assert_success
    assert_line --index 0 f0,f1
    assert_equal "${#lines[@]}" 301
    grep -qi '^X-Cairn-Window-Rows: 300' headers.txt
    curl -sf "$CAIRN_SERVER/metrics" >metrics.txt
    grep -q '^cairn_input_window_rows{model="clf"} 300$' metrics.txt
    run grep -c '^cairn_input_drift_psi{' metrics.txt
    assert_output 0
    # f0, f1 take the reference's names (x0, x1) in order, the label left out.
    run cairn data drift ds --live clf
    assert_success
    assert_output --regexp 'x1 +numeric'
    traffic 5 2 3 500
    run cairn data drift ds --live clf
    assert_equal "$status" 3
    assert_output --partial DRIFT
    run cairn data drift ds --live nope
    assert_failure
    assert_output --partial "unknown model 'nope'"
}
