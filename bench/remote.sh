#!/usr/bin/env bash
# Remotes (issue #5, SPEC section 9): push and clone of a model to a local
# S3 server (OpenStack Swift + s3api from scripts/s3-server.sh) against
# `rclone copy` of the raw file to the same server, then the bytes and time
# of pushing a version with 10% of its tensors retrained.
#
# Usage: bench/remote.sh         (BENCH_SIZE=1G by default; see bench/lib.sh
#                                 for CAIRN_BUILD_DIR, BENCH_TMP)
#
# The model is bench/gen_model's llama-shaped bf16 safetensors (cached in
# bench/cache/), v2 = `gen_model retrain v1 v2 0.1 2`. The server runs for
# the whole script in its own directory and is stopped (by PID) at exit.
# rclone gets an s3 remote from RCLONE_CONFIG_BENCH_* variables (provider
# Other, path style), so nothing is written to ~/.config. Page cache warm.
source "$(dirname "$0")/lib.sh"

bench_init remote
bench_size BYTES 1G
bench_have swift-proxy-server || bench_die "the S3 server needs swift: run scripts/install-deps.sh"
P=$CACHE/remote-llama-bf16-$SIZE_LABEL
bench_cached "$P-v1.safetensors" "$GEN" base "$P-v1.safetensors.tmp" 1 "$BYTES"
bench_cached "$P-v2.safetensors" "$GEN" retrain "$P-v1.safetensors" "$P-v2.safetensors.tmp" 0.1 2

export CAIRN_S3_DIR=$OUT/s3
trap '"$ROOT/scripts/s3-server.sh" stop' EXIT
"$ROOT/scripts/s3-server.sh" start --bucket bench > "$OUT/s3-start.log" 2>&1 ||
    { cat "$OUT/s3-start.log" >&2; bench_die "cannot start the S3 server"; }
eval "$("$ROOT/scripts/s3-server.sh" env)"
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_REGION CAIRN_S3_ENDPOINT
echo "server:  Swift s3api at $CAIRN_S3_ENDPOINT (bucket bench)"
export RCLONE_CONFIG_BENCH_TYPE=s3 RCLONE_CONFIG_BENCH_PROVIDER=Other
export RCLONE_CONFIG_BENCH_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID
export RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY
export RCLONE_CONFIG_BENCH_ENDPOINT=$CAIRN_S3_ENDPOINT RCLONE_CONFIG_BENCH_REGION=us-east-1
export RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE=true
# The endpoint is plain http on loopback; a CA bundle from the environment
# only makes rclone's S3 client refuse its own transport.
unset AWS_CA_BUNDLE

mkdir -p "$OUT/src" "$OUT/raw"
bench_link "$P-v1.safetensors" "$OUT/raw/model.safetensors"
"$CAIRN" init "$OUT/src" > /dev/null
bench_link "$P-v1.safetensors" "$OUT/src/model.safetensors"
(cd "$OUT/src" && "$CAIRN" add model.safetensors > /dev/null && "$CAIRN" commit m -m v1 > /dev/null &&
    "$CAIRN" remote add origin s3://bench/cairn > /dev/null)
STORED1=$(cd "$OUT/src" && "$CAIRN" show m --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["stored_bytes"])')

echo
echo "## full push and clone of v1 ($SIZE_LABEL)"
bench_cache "$OUT/raw" "$OUT/src/.cairn"
if bench_have rclone; then
    bench_run rclone-copy "$BYTES" "$OUT" rclone copy --s3-upload-concurrency 8 raw bench:bench/rclone
fi
bench_run cairn-push "$BYTES" "$OUT/src" "$CAIRN" --no-progress push --json
SENT1=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["bytes_sent"])' "$OUT/cairn-push.out")
bench_run cairn-clone "$BYTES" "$OUT" "$CAIRN" --no-progress clone s3://bench/cairn clone
if bench_have rclone; then
    bench_run rclone-copy-down "$BYTES" "$OUT" rclone copy bench:bench/rclone down
fi

echo
echo "## push of v2 (10% of tensors retrained)"
bench_link "$P-v2.safetensors" "$OUT/src/model.safetensors"
(cd "$OUT/src" && "$CAIRN" add model.safetensors > /dev/null && "$CAIRN" commit m -m v2 > /dev/null)
NEW2=$(cd "$OUT/src" && "$CAIRN" show m@v2 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["stored_bytes"])')
bench_run cairn-push-v2 "$NEW2" "$OUT/src" "$CAIRN" --no-progress push --json
SENT2=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["bytes_sent"])' "$OUT/cairn-push-v2.out")

echo
bench_table rclone-copy cairn-push cairn-clone rclone-copy-down cairn-push-v2
echo
printf '%-34s %14s\n' "v1 stored by cairn (bytes)" "$STORED1"
printf '%-34s %14s\n' "v1 push: bytes sent" "$SENT1"
printf '%-34s %14s\n' "v2 new stored bytes" "$NEW2"
printf '%-34s %14s\n' "v2 push: bytes sent" "$SENT2"
echo
echo "## targets (SPEC section 9)"
if [[ -n $(bench_result rclone-copy wall) ]]; then
    bench_target "full push time / rclone copy" \
        "$(awk -v a="$(bench_result cairn-push wall)" -v b="$(bench_result rclone-copy wall)" 'BEGIN {print a / b}')" \
        '<=' 1.0 ratio
    bench_target "clone time / rclone copy down" \
        "$(awk -v a="$(bench_result cairn-clone wall)" -v b="$(bench_result rclone-copy-down wall)" 'BEGIN {print a / b}')" \
        '<=' 1.0 ratio
fi
bench_target "v2 bytes sent / new stored bytes" "$(awk -v a="$SENT2" -v b="$NEW2" 'BEGIN {print a / b}')" \
    '<=' 1.05 ratio
