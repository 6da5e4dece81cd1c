#!/usr/bin/env bash
# Ingest, checkout and re-add of one large safetensors file (issue #2,
# SPEC section 9): cairn against the hashing limit (`b3sum --no-mmap`) and
# Git LFS, in one run on one machine, as ratios.
#
# Usage: bench/ingest.sh        (BENCH_SIZE=2G by default; see bench/lib.sh
#                                for CAIRN_BUILD_DIR, BENCH_TMP, BENCH_DROP_CACHES)
#
# The input is a llama-shaped bf16 safetensors file of about BENCH_SIZE bytes
# with normal weights and a scale per tensor, made by bench/gen_model (seed 1)
# and cached in bench/cache/. Each timed run starts from the same page-cache
# state (dropped, or the input warmed). Measured, each once:
#   cairn add + commit   into a fresh repository (the two times summed)
#   b3sum --no-mmap      hashing the file: the floor of any verified ingest
#   git lfs              git init, lfs install --local, track, add, commit
#   re-add               cairn add of the unchanged file (stat cache; the file
#                        is touched 5 s into the past before the first add)
#   cairn checkout       to a fresh directory (into the page cache), verified
#                        by cairn; the result is compared with cmp, untimed
source "$(dirname "$0")/lib.sh"

bench_init ingest
bench_size BYTES 2G
FILE=$CACHE/ingest-llama-bf16-$SIZE_LABEL-s1.safetensors
bench_cached "$FILE" "$GEN" base "$FILE.tmp" 1 "$BYTES"
BYTES=$(stat -c %s "$FILE")
echo "input:   $FILE ($BYTES bytes)"
echo

export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.invalid
export GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.invalid

echo "commands:"
# cairn add + commit into a fresh repository.
mkdir "$OUT/cairn"
"$CAIRN" -C "$OUT/cairn" init > /dev/null
bench_link "$FILE" "$OUT/cairn/model.safetensors"
touch -d '-5 seconds' "$OUT/cairn/model.safetensors"
bench_cache "$FILE"
bench_run cairn-add "$BYTES" "$OUT/cairn" "$CAIRN" add --no-progress model.safetensors
bench_run cairn-commit "$BYTES" "$OUT/cairn" "$CAIRN" commit bench -m v1
bench_sum cairn-add cairn-commit
ROWS=(cairn-add cairn-commit "$SUM_LABEL")
STORED=$(bench_du "$OUT/cairn/.cairn")

# The stat cache: nothing is read again.
bench_run cairn-re-add "$BYTES" "$OUT/cairn" "$CAIRN" add --no-progress --json model.safetensors
if ! grep -q '"bytes_read": 0' "$OUT/cairn-re-add.out"; then
    echo "warning: the re-add read the file again:" >&2
    cat "$OUT/cairn-re-add.out" >&2
fi

# The hashing limit.
HAVE_B3=0
if bench_have b3sum; then
    HAVE_B3=1
    bench_cache "$FILE"
    bench_run b3sum "$BYTES" "$OUT" b3sum --no-mmap "$FILE"
    ROWS+=(b3sum)
fi

# Git LFS into a scratch repository.
HAVE_LFS=0
if bench_have git git-lfs; then
    HAVE_LFS=1
    mkdir "$OUT/lfs"
    bench_link "$FILE" "$OUT/lfs/model.safetensors"
    bench_cache "$FILE"
    LFS_CMD='git init -q && git lfs install --local >/dev/null && git lfs track "*.safetensors" >/dev/null'
    LFS_CMD+=' && git add .gitattributes model.safetensors && git commit -q -m v1'
    bench_run git-lfs "$BYTES" "$OUT/lfs" bash -c "$LFS_CMD"
    ROWS+=(git-lfs)
fi

# Checkout to a fresh directory: the store is warmed (or the cache dropped) first.
bench_cache "$OUT/cairn/.cairn"
bench_run cairn-checkout "$BYTES" "$OUT/cairn" "$CAIRN" checkout bench@v1 --to "$OUT/checkout"
cmp "$FILE" "$OUT/checkout/model.safetensors" || bench_die "checkout differs from the input"
ROWS+=(cairn-checkout)

echo
bench_table "${ROWS[@]}"
echo
echo "cairn store: $STORED bytes ($(awk -v s="$STORED" -v b="$BYTES" 'BEGIN {printf "%.3f", s / b}') of raw)"
echo

rate() { awk -v b="$BYTES" -v w="$(bench_result "$1" wall)" 'BEGIN {print b / 1e6 / w}'; }
INGEST=$(rate "$SUM_LABEL")
echo "targets (SPEC section 9):"
if ((HAVE_B3)); then
    bench_target "ingest / b3sum throughput" "$(awk -v a="$INGEST" -v b="$(rate b3sum)" 'BEGIN {print a / b}')" '>=' 0.5 x
fi
if ((HAVE_LFS)); then
    bench_target "ingest / git lfs throughput" "$(awk -v a="$INGEST" -v b="$(rate git-lfs)" 'BEGIN {print a / b}')" '>=' 10 x
fi
bench_target "checkout" "$(rate cairn-checkout | awk '{print $1 / 1000}')" '>=' 1.5 GB/s
bench_target "re-add of the unchanged file" "$(bench_result cairn-re-add wall | awk '{print $1 * 1000}')" '<' 50 ms
RSS=$(for r in cairn-add cairn-commit cairn-re-add cairn-checkout; do bench_result "$r" rss; done | sort -n | tail -n 1)
bench_target "cairn peak RSS (add/commit/checkout)" "$(awk -v r="$RSS" 'BEGIN {print r / 1024}')" '<=' 256 MiB
if ((BYTES < (1 << 30))); then
    echo
    echo "note: BENCH_SIZE=$SIZE_LABEL is a smoke size; the targets are for 2 GiB (10 GiB for re-add)"
fi
