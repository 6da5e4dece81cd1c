#!/usr/bin/env bash
# Ingest, checkout and re-add of one large safetensors file (issue #2,
# SPEC section 9): cairn against the hashing limit (`b3sum --no-mmap`) and
# Git LFS, in one run on one machine, as ratios.
#
# Usage: bench/ingest.sh        (BENCH_SIZE=2G, BENCH_RUNS=3 by default; see
#                                bench/lib.sh for CAIRN_BUILD_DIR, BENCH_TMP,
#                                BENCH_DROP_CACHES)
#
# The input is a llama-shaped bf16 safetensors file of about BENCH_SIZE bytes
# with normal weights and a scale per tensor, made by bench/gen_model (seed 1)
# and cached in bench/cache/. Each timed run starts from the same page-cache
# state (dropped, or the input warmed). Every measurement is made BENCH_RUNS
# times, round after round, and the tables give the median run (the walls of
# all runs are listed under the table):
#   cairn add + commit   into a fresh repository (the two times summed)
#   b3sum --no-mmap      hashing the file: the floor of any verified ingest
#   git lfs              git init, lfs install --local, track, add, commit
#   re-add               cairn add of the unchanged file (stat cache; the file
#                        is touched 5 s into the past before the first add)
#   cairn checkout       to a fresh directory (into the page cache), verified
#                        by cairn; the result is compared with cmp, untimed
#   device floor         what the disk alone needs for an ingest that keeps
#                        what it stores: the input read with O_DIRECT while
#                        as many bytes as cairn stored are written with
#                        O_DIRECT and fsynced, at once (two dd; with the
#                        input warmed, the write alone). No tool that
#                        stores the model durably on this disk can beat it;
#                        b3sum's time over it bounds the ingest/b3sum ratio
#                        any such tool can reach here.
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

RUNS=${BENCH_RUNS:-3}
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || bench_die "BENCH_RUNS must be a positive number"
HAVE_B3=0 HAVE_LFS=0 HAVE_DIRECT=0
bench_have b3sum && HAVE_B3=1
bench_have git git-lfs && HAVE_LFS=1
# The device floor needs O_DIRECT where the input and the scratch directory are.
if dd if="$FILE" of=/dev/null bs=4096 count=1 iflag=direct status=none 2> /dev/null &&
    dd if=/dev/zero of="$OUT/direct.probe" bs=4096 count=1 oflag=direct status=none 2> /dev/null; then
    HAVE_DIRECT=1
fi
rm -f "$OUT/direct.probe"

# round R: every measurement once, recorded as LABEL#R.
round() {
    local r=$1
    rm -rf "$OUT/cairn" "$OUT/lfs" "$OUT/checkout" "$OUT/floor.bin"
    # cairn add + commit into a fresh repository.
    mkdir "$OUT/cairn"
    "$CAIRN" -C "$OUT/cairn" init > /dev/null
    bench_link "$FILE" "$OUT/cairn/model.safetensors"
    touch -d '-5 seconds' "$OUT/cairn/model.safetensors"
    bench_cache "$FILE"
    bench_run "cairn-add#$r" "$BYTES" "$OUT/cairn" "$CAIRN" add --no-progress model.safetensors
    bench_run "cairn-commit#$r" "$BYTES" "$OUT/cairn" "$CAIRN" commit bench -m v1
    STORED=$(bench_du "$OUT/cairn/.cairn")

    # The stat cache: nothing is read again.
    bench_run "cairn-re-add#$r" "$BYTES" "$OUT/cairn" "$CAIRN" add --no-progress --json model.safetensors
    if ! grep -q '"bytes_read": 0' "$OUT/cairn-re-add#$r.out"; then
        echo "warning: the re-add read the file again:" >&2
        cat "$OUT/cairn-re-add#$r.out" >&2
    fi

    # The hashing limit.
    if ((HAVE_B3)); then
        bench_cache "$FILE"
        bench_run "b3sum#$r" "$BYTES" "$OUT" b3sum --no-mmap "$FILE"
    fi

    # Git LFS into a scratch repository.
    if ((HAVE_LFS)); then
        mkdir "$OUT/lfs"
        bench_link "$FILE" "$OUT/lfs/model.safetensors"
        bench_cache "$FILE"
        LFS_CMD='git init -q && git lfs install --local >/dev/null && git lfs track "*.safetensors" >/dev/null'
        LFS_CMD+=' && git add .gitattributes model.safetensors && git commit -q -m v1'
        bench_run "git-lfs#$r" "$BYTES" "$OUT/lfs" bash -c "$LFS_CMD"
    fi

    # Checkout to a fresh directory: the store is warmed (or the cache dropped) first.
    bench_cache "$OUT/cairn/.cairn"
    bench_run "cairn-checkout#$r" "$BYTES" "$OUT/cairn" "$CAIRN" checkout bench@v1 --to "$OUT/checkout"
    cmp "$FILE" "$OUT/checkout/model.safetensors" || bench_die "checkout differs from the input"

    # The device floor: read the input and write the store's bytes, at once.
    ((HAVE_DIRECT)) || return 0
    bench_cache "$FILE"
    # With the input warmed (BENCH_DROP_CACHES=0) the tools read it from the
    # cache, so the floor is the write alone.
    FLOOR_CMD=
    ((DROP)) && FLOOR_CMD="dd if=$(printf %q "$FILE") of=/dev/null bs=4M iflag=direct status=none &"
    FLOOR_CMD+=" dd if=/dev/zero of=floor.bin bs=4M count=$(((STORED + (4 << 20) - 1) / (4 << 20)))"
    FLOOR_CMD+=" oflag=direct conv=fsync status=none; wait"
    bench_run "device-floor#$r" "$BYTES" "$OUT" bash -c "$FLOOR_CMD"
    rm -f "$OUT/floor.bin"
}

echo "commands (each run $RUNS times, round after round):"
for ((r = 1; r <= RUNS; r++)); do
    round "$r"
    BENCH_QUIET=1
done
BENCH_QUIET=0

ROWS=()
for l in cairn-add cairn-commit; do bench_median "$l"; done
bench_sum cairn-add cairn-commit
ROWS+=(cairn-add cairn-commit "$SUM_LABEL")
bench_median cairn-re-add
if ((HAVE_B3)); then bench_median b3sum; ROWS+=(b3sum); fi
if ((HAVE_LFS)); then bench_median git-lfs; ROWS+=(git-lfs); fi
bench_median cairn-checkout
ROWS+=(cairn-checkout)
if ((HAVE_DIRECT)); then bench_median device-floor; ROWS+=(device-floor); fi

echo
bench_table "${ROWS[@]}"
echo
echo "wall times of the $RUNS runs (s):"
for l in cairn-add cairn-commit cairn-re-add b3sum git-lfs cairn-checkout device-floor; do
    w=$(bench_walls "$l")
    [[ -n $w ]] && printf '  %-16s %s\n' "$l" "$w"
done
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
((HAVE_DIRECT)) || exit 0
echo
FLOOR=$(bench_result device-floor wall)
if ((DROP)); then
    echo "the disk's share (device floor: input read + store written, O_DIRECT, at once):"
else
    echo "the disk's share (device floor: the store written, O_DIRECT; the input is in the cache):"
fi
printf '  %-40s %8.3f s\n' "device floor" "$FLOOR"
printf '  %-40s %8.3f   (1.0: as fast as the disk allows)\n' "cairn add+commit / device floor" \
    "$(awk -v a="$(bench_result "$SUM_LABEL" wall)" -v f="$FLOOR" 'BEGIN {print a / f}')"
if ((HAVE_B3)); then
    printf '  %-40s %8.3f x (any tool storing %d bytes durably)\n' "best ingest / b3sum this disk allows" \
        "$(awk -v b="$(bench_result b3sum wall)" -v f="$FLOOR" 'BEGIN {print b / f}')" "$STORED"
fi
if ((HAVE_LFS)); then
    printf '  %-40s %8.3f x\n' "best ingest / git lfs this disk allows" \
        "$(awk -v g="$(bench_result git-lfs wall)" -v f="$FLOOR" 'BEGIN {print g / f}')"
fi
if ((BYTES < (1 << 30))); then
    echo
    echo "note: BENCH_SIZE=$SIZE_LABEL is a smoke size; the targets are for 2 GiB (10 GiB for re-add)"
fi
