#!/usr/bin/env bash
# Compression benchmark (issue #7 "Measure"): for each method of
# `cairn quantize` / `cairn prune` (fp16, bf16, int8, prune 0.5, prune 0.5
# structured), the size ratio of the derived version, the bytes it added to
# the store, the CPU time of the whole command and the accuracy change.
#
# Two models:
#   - the digits MLP (examples/digits trainer; examples/digits/data when
#     fetch-data.sh and split.sh have been run, else a synthetic set in the
#     same layout): accuracy on the test set through `cairn serve-model`;
#   - a large safetensors file (`cairn-test-tool gen-safetensors`, BF16,
#     BENCH_SIZE, default 256M) of 2-D `layers.N.weight` tensors: no labels,
#     so the largest absolute weight error stands in for accuracy.
#
# Time is user+sys CPU time from /usr/bin/time, not wall time, since the
# machines this runs on are shared; GB/s is the source's raw bytes over that
# time. It covers the whole command: verified checkout of the source, the
# transform, and the commit of the result (chunking, hashing, compression).
#
# Environment: CAIRN_BUILD_DIR (default build/), BENCH_SIZE (default 256M),
# BENCH_TMP (scratch, default bench/out/compress).
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
BUILD=${CAIRN_BUILD_DIR:-$ROOT/build}
[[ $BUILD = /* ]] || BUILD=$PWD/$BUILD
CAIRN=$BUILD/cairn
TOOL=$BUILD/tests/helper/cairn-test-tool
TRAINER=$BUILD/examples/digits/cairn-digits-train
SIZE=${BENCH_SIZE:-256M}
OUT=${BENCH_TMP:-$BENCH_DIR/out/compress}
export LC_ALL=C NO_COLOR=1

die() {
    echo "bench: $*" >&2
    exit 1
}
for x in "$CAIRN" "$TOOL" "$TRAINER" /usr/bin/time; do
    [[ -x $x ]] || die "'$x' is missing: build first (ninja -C \$CAIRN_BUILD_DIR)"
done
for x in jq curl awk; do
    command -v $x >/dev/null || die "$x is needed"
done
rm -rf "$OUT"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
SERVE_PID=

cleanup() {
    [[ -z $SERVE_PID ]] || kill "$SERVE_PID" 2>/dev/null || true
}
trap cleanup EXIT

# show CMD...: print a command exactly as it is run.
show() {
    printf '$'
    printf ' %q' "$@"
    printf '\n'
}

# timed JSON CMD...: run CMD with its stdout in JSON; CPU seconds in $CPU.
timed() {
    local json=$1
    shift
    show "$@"
    /usr/bin/time -f '%U %S' -o "$OUT/time" "$@" >"$json"
    CPU=$(awk '{ printf "%.3f", $1 + $2 }' "$OUT/time")
}

free_port() {
    local port
    while :; do
        port=$((20000 + (RANDOM * 32768 + RANDOM) % 12768)) # below the ephemeral range
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
    done
}

# accuracy REF: serve REF with serve-model and score the test set in one request.
accuracy() {
    local port i
    port=$(free_port)
    "$CAIRN" serve-model "$1" --listen "127.0.0.1:$port" >"$OUT/serve.log" 2>&1 &
    SERVE_PID=$!
    for ((i = 0; i < 200; i++)); do
        curl -sf "http://127.0.0.1:$port/v2/health/ready" >/dev/null 2>&1 && break
        sleep 0.1
    done
    awk -F, -v n="$(awk 'END { print NR - 1 }' "$TEST")" 'NR > 1 {
            printf "%s[", (k++ ? "," : "{\"inputs\":[{\"name\":\"input\",\"shape\":[" n ",64],\"datatype\":\"FP32\",\"data\":[")
            for (i = 1; i < NF; i++) printf "%s%s", (i > 1 ? "," : ""), $i
            printf "]"
        } END { print "]}]}" }' "$TEST" >"$OUT/req.json"
    curl -sf -H 'Content-Type: application/json' --data-binary @"$OUT/req.json" \
        "http://127.0.0.1:$port/v2/models/digits/infer" >"$OUT/resp.json" || {
        cat "$OUT/serve.log" >&2
        return 1
    }
    kill "$SERVE_PID"
    wait "$SERVE_PID" 2>/dev/null || true
    SERVE_PID=
    awk -F, 'NR > 1 { print $NF }' "$TEST" | jq -s . >"$OUT/labels.json"
    jq -r --slurpfile want "$OUT/labels.json" '(.outputs[] | select(.name == "label") | .data) as $got
        | [range(0; $got | length) | select($got[.] == $want[0][.])] | length / ($got | length)
        | . * 10000 | round / 10000' "$OUT/resp.json"
}

ROWS=()
# run_methods MODEL REF RAWBYTES WITH_ACCURACY BASE_ACCURACY
run_methods() {
    local model=$1 ref=$2 with_acc=$3 base=$4 m args acc delta gbs
    local -a methods=("--to fp16" "--to bf16" "--to int8" "--sparsity 0.5" "--sparsity 0.5 --structured")
    for m in "${methods[@]}"; do
        if [[ $m == --to* ]]; then
            # shellcheck disable=SC2086
            timed "$OUT/r.json" "$CAIRN" quantize "$ref" $m --json
        else
            # shellcheck disable=SC2086
            timed "$OUT/r.json" "$CAIRN" prune "$ref" $m --json
        fi
        acc=- delta=-
        if [[ $with_acc = 1 ]]; then
            acc=$(accuracy "$(jq -r .ref "$OUT/r.json")") || die "cannot measure the accuracy of $(jq -r .ref "$OUT/r.json")"
            delta=$(awk -v a="$acc" -v b="$base" 'BEGIN { printf "%+.4f", a - b }')
        fi
        # GB/s of a 10 KB model says nothing but the process start-up cost.
        gbs=$(jq -r --arg cpu "$CPU" 'if .raw_bytes_before < 1000000 then "-"
            else .raw_bytes_before / ($cpu | tonumber) / 1e9 | . * 1000 | round / 1000 end' "$OUT/r.json")
        ROWS+=("$(jq -r --arg model "$model" --arg m "${m#--}" --arg cpu "$CPU" --arg gbs "$gbs" \
            --arg acc "$acc" --arg delta "$delta" \
            '"| \($model) | \($m) | \(.raw_bytes_before) | \(.raw_bytes_after) | \(.size_ratio * 1000 | round / 1000) | \(.stored_bytes_new) | \($cpu) | \($gbs) | \($acc) | \($delta) | \(.max_abs_error * 1e6 | round / 1e6) |"' \
            "$OUT/r.json")")
    done
}

echo "# machine: $(uname -srm), $(nproc) CPUs, $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p')"
echo "# cairn: $("$CAIRN" version 2>/dev/null | head -1)"

# ---- digits MLP --------------------------------------------------------
cd "$OUT"
mkdir digits && cd digits
D=$ROOT/examples/digits/data
if [[ -s $D/train.csv && -s $D/test.csv ]]; then
    DATA_NOTE="UCI digits (examples/digits/data, 359 test rows)"
    cp "$D/train.csv" "$D/test.csv" .
else
    DATA_NOTE="synthetic digits (examples/digits/data missing: run fetch-data.sh and split.sh)"
    "$ROOT/examples/digits/gen-synthetic.sh" train.csv 600 1
    "$ROOT/examples/digits/gen-synthetic.sh" test.csv 200 2
fi
TEST=$PWD/test.csv
show "$TRAINER" --train train.csv --test test.csv --out model
"$TRAINER" --train train.csv --test test.csv --out model >train.log 2>&1
"$CAIRN" init >/dev/null
cp model/model.safetensors .
show "$CAIRN" add model.safetensors
"$CAIRN" add model.safetensors >/dev/null
show "$CAIRN" commit digits -m "fp32 MLP" --params model/params.json
"$CAIRN" commit digits -m "fp32 MLP" --params model/params.json >/dev/null
BASE=$(accuracy digits@v1) || die "cannot measure the accuracy of digits@v1"
run_methods "digits MLP" digits@v1 1 "$BASE"

# ---- large safetensors -------------------------------------------------
cd "$OUT"
mkdir large && cd large
BYTES=$(numfmt --from=iec "$SIZE")
NT=64
ELEMS=$((BYTES / 2 / NT))
show "$TOOL" gen-safetensors model.safetensors 7 "$NT" "$ELEMS" bf16
"$TOOL" gen-safetensors model.safetensors 7 "$NT" "$ELEMS" bf16
"$CAIRN" init >/dev/null
show "$CAIRN" add model.safetensors
"$CAIRN" add model.safetensors >/dev/null
show "$CAIRN" commit big -m "bf16 $SIZE"
"$CAIRN" commit big -m "bf16 $SIZE" >/dev/null
run_methods "bf16 $SIZE" big@v1 0 -

echo
echo "digits data: $DATA_NOTE; baseline accuracy $BASE (F32, through serve-model)"
echo
echo "| model | method | raw bytes before | raw bytes after | size ratio | stored new (bytes) | CPU s (user+sys) | GB/s | accuracy | Δ accuracy | max abs error |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
printf '%s\n' "${ROWS[@]}"
