#!/usr/bin/env bats
# t2500: compressed versions (issue #7). `cairn quantize` and `cairn prune`
# derive a new version of a model; it is served by `cairn serve-model`, its
# accuracy is measured against the server and recorded, and the gate of
# examples/digits/compressed-policy.yaml lets the int8 version replace
# production and stops an over-pruned one. Lineage shows the derivation.
#
# The model is the digits trainer's MLP (64-32-10), trained in well under a
# second on examples/digits/data when fetch-data.sh and split.sh have been
# run, else on a synthetic set in the same layout generated here, so the
# test never needs the network. Accuracy is measured with
# `cairn eval --endpoint` when this build has it, else with `cairn eval
# --cmd` running a curl + jq scorer against the same server.

load helpers
load digits_helpers

bats_require_minimum_version 1.5.0

POLICY="$REPO_ROOT/examples/digits/compressed-policy.yaml"

setup_file() {
    local d="$BATS_FILE_TMPDIR"
    digits_fixture "$d"
    # The scorer for `eval --cmd`: one OIP v2 request with every test row,
    # accuracy = share of rows whose `label` output equals the CSV label.
    cat >"$d/score.sh" <<'EOF'
#!/bin/sh
# score.sh URL CSV: print {"accuracy": A, "rows": N} for the model at URL.
set -e
url=$1 csv=$2 tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
awk -F, 'NR > 1 { printf "%s%s", (n++ ? "," : ""), "["; for (i = 1; i < NF; i++) printf "%s%s", (i > 1 ? "," : ""), $i; printf "]" }
         END { }' "$csv" >"$tmp/rows"
rows=$(awk 'END { print NR - 1 }' "$csv")
feat=$(awk -F, 'NR == 1 { print NF - 1 }' "$csv")
printf '{"inputs":[{"name":"input","shape":[%d,%d],"datatype":"FP32","data":[%s]}]}' \
    "$rows" "$feat" "$(cat "$tmp/rows")" >"$tmp/req.json"
curl -sf -H 'Content-Type: application/json' --data-binary @"$tmp/req.json" "$url/infer" >"$tmp/resp.json"
awk -F, 'NR > 1 { print $NF }' "$csv" | jq -s . >"$tmp/labels.json"
jq -c --slurpfile want "$tmp/labels.json" '(.outputs[] | select(.name == "label") | .data) as $got
    | [range(0; $got | length) | select($got[.] == $want[0][.])] | length
    | {accuracy: (. / ($got | length)), rows: ($got | length)}' "$tmp/resp.json"
EOF
    chmod +x "$d/score.sh"
}

setup() {
    cairn_setup
    cairn init >/dev/null
}

# serve REF: start serve-model for REF on a free port; sets URL (the model's
# OIP base) and SERVE_PID.
serve() {
    local port
    port=$(free_port)
    run_bg serve.log cairn serve-model "$1" --listen "127.0.0.1:$port"
    SERVE_PID=$BG_PID
    URL="http://127.0.0.1:$port/v2/models/digits"
    wait_until 20 curl -sf "http://127.0.0.1:$port/v2/health/ready" || { cat serve.log >&2; return 1; }
}

unserve() {
    kill -TERM "$SERVE_PID" 2>/dev/null || true
    wait "$SERVE_PID" 2>/dev/null || true
}

# measure REF: serve REF, measure its accuracy on the test set and record it.
measure() {
    serve "$1"
    if cairn eval --help 2>/dev/null | grep -q -- '--endpoint'; then
        cairn eval "$1" --endpoint "$URL" --data digits-test --record >eval.log 2>&1 ||
            { cat eval.log >&2; return 1; }
    else
        cairn eval "$1" --cmd "$BATS_FILE_TMPDIR/score.sh $URL $BATS_FILE_TMPDIR/test/test.csv" \
            --record >eval.log 2>&1 || { cat eval.log >&2; return 1; }
    fi
    unserve
}

metric() {
    cairn show "$1" --json | jq -r ".metrics.$2"
}

# The source: the trained model as digits@v1 at production, its accuracy
# measured the same way as every derived version's.
source_version() {
    cp -r "$BATS_FILE_TMPDIR/test" test
    cairn add test/test.csv >/dev/null
    cairn commit digits-test --kind dataset -m "held-out digits" >/dev/null
    cp "$BATS_FILE_TMPDIR/model/model.safetensors" .
    cairn add model.safetensors >/dev/null
    cairn commit digits -m "fp32 MLP" --params "$BATS_FILE_TMPDIR/model/params.json" \
        --data digits-test >/dev/null
    cairn alias set digits production digits@v1 >/dev/null
    measure digits@v1
}

gate_available() {
    cairn gate --help >/dev/null 2>&1
}

@test "quantize int8: a derived version that serves, keeps its accuracy and passes the gate" {
    source_version
    run --separate-stderr cairn quantize digits@production --to int8 --json
    assert_success
    echo "$output" >q.json
    [ "$(jq -r .ref q.json)" = digits@v2 ]
    [ "$(jq -r .source.ref q.json)" = digits@v1 ]
    [ "$(jq -r .detail q.json)" = "quantize int8" ]
    [ "$(jq -r .version.message q.json)" = "quantize digits@v1 to int8" ]
    # 10,072 bytes of F32 become 3,344: int8 weights plus F32 scales and biases.
    run jq -e '.size_ratio < 0.4 and .raw_bytes_after < .raw_bytes_before and .stored_bytes_new > 0' q.json
    assert_success
    run jq -r '.files[0].report.tensors[] | [.name, .action, .dtype_after, (.reason // "-")] | join(" ")' q.json
    assert_output - <<'EOF'
layers.0.weight int8 I8 -
layers.0.bias kept F32 bias
layers.1.weight int8 I8 -
layers.1.bias kept F32 bias
EOF
    # The largest error per tensor is at most half a quantisation step.
    run jq -e '[.files[0].report.tensors[] | select(.action == "int8") | .max_abs_error > 0 and .max_abs_error < 0.05] | all' q.json
    assert_success

    # serve-model answers for the int8 version.
    serve digits@v2
    run curl -s -o resp.json -w '%{http_code}' -H 'Content-Type: application/json' \
        --data-binary "{\"inputs\":[{\"name\":\"input\",\"shape\":[1,64],\"datatype\":\"FP32\",\"data\":[$(sed -n 2p test/test.csv | cut -d, -f1-64)]}]}" \
        "$URL/infer"
    assert_output 200
    run jq -e '(.outputs[] | select(.name == "probabilities") | .shape) == [1, 10]' resp.json
    assert_success
    run jq -e '(.outputs[] | select(.name == "label") | .data | length) == 1' resp.json
    assert_success
    unserve

    measure digits@v2
    run jq -n --argjson a "$(metric digits@v2 accuracy)" --argjson b "$(metric digits@v1 accuracy)" \
        '($a - $b) | fabs <= 0.01'
    assert_output true
    [ "$(metric digits@v2 size_bytes)" = "$(jq -r .raw_bytes_after q.json)" ]

    gate_available || skip "cairn gate not built yet"
    run cairn gate digits@v2 --policy "$POLICY"
    assert_success
    assert_output --regexp 'pass +metric +size_bytes'
}

@test "an over-pruned version fails the same gate" {
    source_version
    run cairn prune digits@production --sparsity 0.95 --structured
    assert_success
    assert_output --partial "[digits v2 "
    assert_output --partial "derived from digits@v1 (prune magnitude-structured 0.95)"
    assert_output --regexp 'layers\.0\.weight +pruned +F32'
    measure digits@v2
    run jq -n --argjson a "$(metric digits@v2 accuracy)" '$a < 0.5'
    assert_output true

    gate_available || skip "cairn gate not built yet"
    run --separate-stderr cairn gate digits@v2 --policy "$POLICY" --json
    [ "$status" -eq 3 ]
    [ "$(jq -r .verdict <<<"$output")" = fail ]
    # Both accuracy checks fail (the bar and the regression against
    # production); the size check fails too, since pruning keeps the raw size.
    run jq -r '[.checks[] | select(.verdict == "fail") | .metric] | join(",")' <<<"$output"
    assert_output accuracy,accuracy,size_bytes
}

@test "lineage, params and metrics of a derived version" {
    source_version
    cairn quantize digits --to fp16 -m "half precision" >/dev/null
    run cairn show digits@v2 --json
    assert_success
    echo "$output" >show.json
    local v1
    v1=$(cairn show digits@v1 --json | jq -r .id)
    [ "$(jq -r .message show.json)" = "half precision" ]
    [ "$(jq -r .parent show.json)" = "$v1" ]
    [ "$(jq -r '.lineage[] | select(.kind == "derived") | .detail' show.json)" = "quantize fp16" ]
    [ "$(jq -r '.lineage[] | select(.kind == "derived") | .id // .target' show.json)" = "$v1" ]
    [ "$(jq -r '.params["derived.method"]' show.json)" = quantize ]
    [ "$(jq -r '.params["derived.to"]' show.json)" = fp16 ]
    [ "$(jq -r '.params["derived.from"]' show.json)" = digits@v1 ]
    # The source's training params are kept; its metrics are not.
    [ "$(jq -r .params.hidden show.json)" = 32 ]
    [ "$(jq -r '.metrics | keys | join(",")' show.json)" = size_bytes ]
    run cairn lineage digits@v2
    assert_success
    assert_output --regexp 'derived +digits@v1 .*quantize fp16'

    # A derived version of a derived version: prune the fp16 model.
    run --separate-stderr cairn prune digits@v2 --sparsity 0.5 --json
    assert_success
    run jq -e '.files[0].report.tensors[] | select(.action == "pruned") | .zeros_after * 2 == .elements' <<<"$output"
    assert_success
    [ "$(cairn show digits@v3 --json | jq -r '.params["derived.structured"]')" = false ]
    [ "$(cairn show digits@v3 --json | jq -r '.params["derived.method"]')" = prune ]
}

@test "other files are carried over unchanged; non-float tensors are kept and named" {
    # A safetensors file with an I32 weight next to an F32 one.
    local hdr='{"__metadata__":{"format":"pt"},"a.weight":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]},"b.weight":{"dtype":"F32","shape":[2,2],"data_offsets":[16,32]}}'
    while (((${#hdr} + 8) % 8)); do hdr+=" "; done
    mkdir m
    {
        printf "\\x$(printf %02x $((${#hdr} & 255)))\\x$(printf %02x $((${#hdr} >> 8)))\\x00\\x00\\x00\\x00\\x00\\x00"
        printf '%s' "$hdr"
        printf '\x01\x00\x00\x00\x02\x00\x00\x00\x03\x00\x00\x00\x04\x00\x00\x00'
        printf '\x00\x00\x80\x3f\x00\x00\x00\xc0\x00\x00\x40\x40\x00\x00\x80\xc0'
    } >m/weights.safetensors
    echo '{"vocab": 4}' >m/config.json
    cairn add m >/dev/null
    cairn commit tiny -m "mixed dtypes" >/dev/null
    run --separate-stderr cairn quantize tiny --to bf16 --json
    assert_success
    echo "$output" >q.json
    [ "$(jq -r .copied_files q.json)" = 1 ]
    run jq -r '.files[0].report.tensors[] | [.name, .action, .dtype_after, (.reason // "-")] | join(" ")' q.json
    assert_output - <<'EOF'
a.weight kept I32 not a float tensor
b.weight bf16 BF16 -
EOF
    run cairn quantize tiny@v1 --to int8
    assert_success
    assert_output --regexp 'a\.weight +kept +I32 .*not a float tensor'
    cairn checkout tiny@v2 --to out >/dev/null
    files_equal m/config.json out/m/config.json
    run cmp -s m/weights.safetensors out/m/weights.safetensors
    assert_failure
}

@test "GGUF: int8 becomes Q8_0 and fp16 halves the weights, as another reader sees them" {
    local dump="$REPO_ROOT/tests/helper/gguf-dump.py"
    cairn-test-tool gen-gguf model.gguf 7 3 16 64 f32
    cairn add model.gguf >/dev/null
    cairn commit llm -m "fp32 gguf" >/dev/null
    run --separate-stderr cairn quantize llm --to int8 --json
    assert_success
    echo "$output" >q.json
    run jq -r '.files[0].report.tensors[] | [.name, .action, .dtype_after, (.reason // "-")] | join(" ")' q.json
    assert_output - <<'EOF'
blk.0.ffn_up.weight int8 Q8_0 -
blk.1.ffn_up.weight int8 Q8_0 -
blk.2.ffn_up.weight int8 Q8_0 -
output_norm.weight kept F32 normalisation parameter
EOF
    cairn checkout llm@v2 --to q8 >/dev/null
    "$dump" q8/model.gguf >after.json
    # The metadata is kept and the method recorded; types and shapes as GGUF says.
    [ "$(jq -r '.metadata["tokenizer.ggml.tokens"]' after.json)" = 3 ]
    [ "$(jq -r '.metadata["cairn.quantization"]' after.json)" = int8-q8_0 ]
    [ "$(jq -c '[.tensors[] | [.name, .type, .dims]]' after.json)" = \
        '[["blk.0.ffn_up.weight","Q8_0",[64,16]],["blk.1.ffn_up.weight","Q8_0",[64,16]],["blk.2.ffn_up.weight","Q8_0",[64,16]],["output_norm.weight","F32",[64]]]' ]
    # Dequantised by the independent reader, every weight is within half a
    # block scale (max|w| / 127 / 2 < 0.01 for these N(0, 0.02) weights),
    # the error is not zero, and the norm is bit for bit the same.
    for t in blk.1.ffn_up.weight output_norm.weight; do
        "$dump" model.gguf "$t" >a.json
        "$dump" q8/model.gguf "$t" >b.json
        jq -n --slurpfile a a.json --slurpfile b b.json \
            '[range(0; $a[0] | length) as $i | ($a[0][$i] - $b[0][$i]) | fabs] | max' >err
        if [[ $t == output_norm.weight ]]; then
            [ "$(cat err)" = 0 ]
        else
            awk '{ exit !($1 > 0 && $1 < 0.01) }' err || fail "$t: error $(cat err)"
        fi
    done
    [ "$(jq '.files[0].report.file_bytes_after < .files[0].report.file_bytes_before / 3' q.json)" = true ]

    run cairn quantize llm@v1 --to fp16
    assert_success
    cairn checkout llm@v3 --to f16 >/dev/null
    "$dump" f16/model.gguf >f16.json
    [ "$(jq -r '[.tensors[].type] | join(" ")' f16.json)" = "F16 F16 F16 F32" ]
    run cairn lineage llm@v3
    assert_output --partial "quantize fp16"

    # Structured pruning: half the 16 rows of 64 contiguous values are zero.
    run cairn prune llm@v1 --sparsity 0.5 --structured
    assert_success
    cairn checkout llm@v4 --to p >/dev/null
    "$dump" p/model.gguf blk.0.ffn_up.weight >pr.json
    [ "$(jq '. as $v | [range(0; 16) as $r | $v[$r * 64:($r + 1) * 64] | map(select(. != 0)) | length | select(. == 0)] | length' pr.json)" = 8 ]
}

@test "bad input is a usage error (exit 2)" {
    echo hello >notes.txt
    cairn add notes.txt >/dev/null
    cairn commit docs -m "no tensors" >/dev/null
    cp "$BATS_FILE_TMPDIR/model/model.safetensors" .
    cairn add model.safetensors >/dev/null
    cairn commit digits -m "fp32" >/dev/null

    run --separate-stderr cairn quantize digits --to int4
    [ "$status" -eq 2 ]
    [[ $stderr == *"unknown quantisation 'int4'"* ]]
    run --separate-stderr cairn quantize digits
    [ "$status" -eq 2 ]
    [[ $stderr == *"--to"* ]]
    run --separate-stderr cairn quantize --to int8
    [ "$status" -eq 2 ]
    for f in 0 1 1.5 -0.5 abc 0.5x ""; do
        run --separate-stderr cairn prune digits --sparsity "$f"
        [ "$status" -eq 2 ] || fail "sparsity '$f' gave status $status"
    done
    run --separate-stderr cairn prune digits
    [ "$status" -eq 2 ]
    run --separate-stderr cairn quantize docs --to int8
    [ "$status" -eq 2 ]
    [[ $stderr == *"docs@v1 has no *.safetensors or *.gguf file"* ]]
    run --separate-stderr cairn prune docs --sparsity 0.5
    [ "$status" -eq 2 ]
    run --separate-stderr cairn quantize nosuch --to int8
    [ "$status" -eq 1 ]
    # Nothing was committed by any of these.
    [ "$(cairn log digits --json | jq length)" = 1 ]
    [ "$(cairn log docs --json | jq length)" = 1 ]
}

@test "prune: options anywhere, '--' ends them, missing values are usage errors" {
    cp "$BATS_FILE_TMPDIR/model/model.safetensors" .
    cairn add model.safetensors >/dev/null
    cairn commit digits -m "fp32" >/dev/null
    run --separate-stderr cairn prune --json --sparsity 0.5 -m "half zeros" digits --structured
    assert_success
    jq -e '.files[0].report.tensors | map(select(.action == "pruned")) | length > 0' <<<"$output"
    [ "$(cairn show digits@v2 --json | jq -r .message)" = "half zeros" ]
    [ "$(cairn show digits@v2 --json | jq -r '.params["derived.structured"]')" = true ]
    # After '--' "--json" is the REF.
    run -2 --separate-stderr cairn prune --sparsity 0.5 -- --json
    assert_equal "$output" ""
    [[ $stderr == *"'--json'"* ]]
    run -2 --separate-stderr cairn prune digits --sparsity
    assert_equal "$stderr" "cairn: --sparsity needs a value (F) (see 'cairn prune --help')"
    run -2 --separate-stderr cairn prune digits
    assert_equal "$stderr" "cairn: missing --sparsity F (see 'cairn prune --help')"
    run -2 --separate-stderr cairn prune digits --sparsity 1.5
    assert_equal "$stderr" "cairn: sparsity '1.5' is not a number between 0 and 1 (see 'cairn prune --help')"
    [ "$(cairn log digits --json | jq length)" = 2 ]
}

@test "a damaged tensor file is a runtime error (exit 1) naming the version and the file" {
    mkdir m
    printf '\x10\x00\x00\x00\x00\x00\x00\x00{"a":1' >m/model.safetensors
    cairn add m/model.safetensors 2>/dev/null >/dev/null
    cairn commit broken -m "damaged" >/dev/null
    run --separate-stderr cairn quantize broken --to int8
    [ "$status" -eq 1 ] || fail "status $status: $stderr"
    [[ $stderr == *"version broken@v1: not a valid safetensors file 'm/model.safetensors'"* ]] ||
        fail "$stderr"
    [[ $stderr != *cairn-derive* ]] || fail "names the scratch copy: $stderr"
    run --separate-stderr cairn prune broken --sparsity 0.5
    [ "$status" -eq 1 ]
    [ "$(cairn log broken --json | jq length)" = 1 ]
}
