#!/usr/bin/env bash
# Deduplication across versions of a model (issue #3, SPEC section 9): how
# many bytes cairn, Git LFS, restic, borg, casync and plain `zstd -3` store
# after each version of a model, and how long each ingest takes, in one run.
#
# Usage: bench/dedup.sh         (BENCH_SIZE=1G by default; see bench/lib.sh
#                                for CAIRN_BUILD_DIR, BENCH_TMP, BENCH_DROP_CACHES)
#
# Scenario S1, made by bench/gen_model with fixed seeds and cached in
# bench/cache/: a llama-shaped bf16 safetensors file of about BENCH_SIZE
# bytes, normal weights with a scale per tensor, then
#   v2  10% of the tensors (by count, chosen by seed) retrained: new values
#   v3  one tensor inserted at the front: every byte after it moves
#   v4  full fine-tune: every weight w becomes w * (1 + 0.01 n), n ~ N(0, 1),
#       about one bf16 ulp
#   v5  the same model converted to fp16
# Each tool ingests v1..v5 in order into its own store, from a directory
# holding the version as model.safetensors (a hard link to the cached file).
# "stored" is `du -sb` of the tool's repository (for casync: the chunk store
# and the .caidx indexes; for zstd: the sum of the compressed files).
#
# Scenario S2: the same five versions as GGUF v3 files (`gen_model to-gguf`
# of each S1 file: the same tensors, bytes and order, 32-byte aligned data),
# ingested as model.gguf by the same tools into fresh stores. The v2
# reference (zstd -3 of the changed tensors) is the same bytes as in S1.
# S1's stores are deleted before S2 starts, so the disk needs about 12x
# BENCH_SIZE at a time (plus the cached inputs, 10x BENCH_SIZE).
#
# BENCH_SCENARIOS (default "s1 s2") picks which scenarios run.
source "$(dirname "$0")/lib.sh"

bench_init dedup
bench_size BYTES 1G
V=(v1 v2 v3 v4 v5)
declare -A SRC
P=$CACHE/dedup-s1-llama-bf16-$SIZE_LABEL
for v in "${V[@]}"; do SRC[$v]=$P-$v.safetensors; done
bench_cached "${SRC[v1]}" "$GEN" base "${SRC[v1]}.tmp" 1 "$BYTES"
bench_cached "${SRC[v2]}" "$GEN" retrain "${SRC[v1]}" "${SRC[v2]}.tmp" 0.1 2
bench_cached "${SRC[v3]}" "$GEN" prepend "${SRC[v2]}" "${SRC[v3]}.tmp" 3
bench_cached "${SRC[v4]}" "$GEN" finetune "${SRC[v3]}" "${SRC[v4]}.tmp" 4
bench_cached "${SRC[v5]}" "$GEN" to-fp16 "${SRC[v4]}" "${SRC[v5]}.tmp"
declare -A GGUF
for v in "${V[@]}"; do
    GGUF[$v]=${P/dedup-s1-/dedup-s2-}-$v.gguf
    bench_cached "${GGUF[$v]}" "$GEN" to-gguf "${SRC[$v]}" "${GGUF[$v]}.tmp"
done

# The reference for v2: zstd -3 of just the tensors that changed.
"$GEN" changed "${SRC[v1]}" "${SRC[v2]}" "$OUT/v2-changed.bin" > "$OUT/v2-changed.txt"
zstd -q -3 -f "$OUT/v2-changed.bin" -o "$OUT/v2-changed.bin.zst"
read -r CHANGED_N CHANGED_RAW < "$OUT/v2-changed.txt"
CHANGED_ZST=$(stat -c %s "$OUT/v2-changed.bin.zst")
echo "input:   $P-v{1..5}.safetensors (S1), ${P/dedup-s1-/dedup-s2-}-v{1..5}.gguf (S2)"
for v in "${V[@]}"; do echo "  $v $(stat -c %s "${SRC[$v]}") bytes, $(stat -c %s "${GGUF[$v]}") as GGUF"; done
echo "v2 changed $CHANGED_N tensors: $CHANGED_RAW bytes raw ($(awk -v a="$CHANGED_RAW" -v b="$(stat -c %s "${SRC[v2]}")" 'BEGIN {printf "%.1f%%", 100 * a / b}') of v2), $CHANGED_ZST bytes as zstd -3:"
bench_show "$GEN" changed "${SRC[v1]}" "${SRC[v2]}" "$OUT/v2-changed.bin"
bench_show zstd -q -3 -f "$OUT/v2-changed.bin" -o "$OUT/v2-changed.bin.zst"
echo

export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.invalid
export GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.invalid
export RESTIC_PASSWORD=bench RESTIC_CACHE_DIR=$OUT/restic-cache
export BORG_BASE_DIR=$OUT/borg-base BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes
export BORG_RELOCATED_REPO_ACCESS_IS_OK=yes

# scenario S MODEL: S1 or S2 in $OUT/S/ with each version as MODEL.
scenario() {
    S=$1 MODEL=$2 SO=$OUT/$1
    mkdir -p "$SO"
    # Set-up, untimed. Each tool: a working dir $SO/TOOL/ with $MODEL,
    # a store, and the function that says how many bytes the store holds.
    TOOLS=(cairn)
    mkdir -p "$SO/cairn/work"
    "$CAIRN" -C "$SO/cairn/work" init > /dev/null
    stored_cairn() { bench_du "$SO/cairn/work/.cairn"; }
    if bench_have git git-lfs; then
        TOOLS+=(git-lfs)
        mkdir -p "$SO/git-lfs/work"
        (cd "$SO/git-lfs/work" && git init -q && git lfs install --local > /dev/null &&
            git lfs track '*.safetensors' '*.gguf' > /dev/null && git add .gitattributes && git commit -q -m init)
    fi
    stored_git-lfs() { bench_du "$SO/git-lfs/work/.git"; }
    if bench_have restic; then
        TOOLS+=(restic)
        mkdir -p "$SO/restic/work"
        restic init -q -r "$SO/restic/repo" > /dev/null
    fi
    stored_restic() { bench_du "$SO/restic/repo"; }
    if bench_have borg; then
        TOOLS+=(borg)
        mkdir -p "$SO/borg/work"
        borg init -e none "$SO/borg/repo"
    fi
    stored_borg() { bench_du "$SO/borg/repo"; }
    if bench_have casync; then
        TOOLS+=(casync)
        mkdir -p "$SO/casync/work" "$SO/casync/store"
    fi
    stored_casync() { bench_du "$SO/casync/store" "$SO"/casync/*.caidx; }
    if bench_have zstd; then
        TOOLS+=(zstd)
        mkdir -p "$SO/zstd/work" "$SO/zstd/store"
    fi
    stored_zstd() { bench_du "$SO/zstd/store"; }
    echo "set-up (untimed):"
    bench_show -C "$SO/cairn/work" "$CAIRN" init
    bench_show -C "$SO/git-lfs/work" bash -c "git init -q && git lfs install --local && git lfs track '*.safetensors' '*.gguf' && git add .gitattributes && git commit -q -m init"
    bench_show env RESTIC_PASSWORD=bench restic init -q -r "$SO/restic/repo"
    bench_show borg init -e none "$SO/borg/repo"
    echo

    # ingest TOOL VERSION: one timed ingest of VERSION by TOOL.
    ingest() {
        local t=$1 v=$2 w=$SO/$1/work bytes
        local src=${SRC[$v]}
        [[ $S = s2 ]] && src=${GGUF[$v]}
        bytes=$(stat -c %s "$src")
        bench_link "$src" "$w/$MODEL"
        bench_cache "$src"
        case $t in
        cairn)
            bench_run "$S-$t-$v-add" "$bytes" "$w" "$CAIRN" add --no-progress "$MODEL"
            bench_run "$S-$t-$v-commit" "$bytes" "$w" "$CAIRN" commit "$S" -m "$v"
            bench_sum "$S-$t-$v-add" "$S-$t-$v-commit"
            sed -i "s/^$SUM_LABEL\t/$S-$t-$v\t/" "$RESULTS"
            ;;
        git-lfs) bench_run "$S-$t-$v" "$bytes" "$w" bash -c "git add $MODEL && git commit -q -m $v" ;;
        restic) bench_run "$S-$t-$v" "$bytes" "$w" restic backup -q -r "$SO/restic/repo" . ;;
        borg) bench_run "$S-$t-$v" "$bytes" "$w" borg create "$SO/borg/repo::$v" . ;;
        casync) bench_run "$S-$t-$v" "$bytes" "$w" casync make --store="$SO/casync/store" "$SO/casync/$v.caidx" . ;;
        zstd) bench_run "$S-$t-$v" "$bytes" "$w" zstd -q -3 -f "$MODEL" -o "$SO/zstd/store/$v.zst" ;;
        esac
        printf '%s\t%s\t%s\n' "$t" "$v" "$("stored_$t")" >> "$SO/stored.tsv"
    }

    echo "$S commands (per version; $MODEL is a hard link to the version's file):"
    : > "$SO/stored.tsv"
    for v in "${V[@]}"; do
        for t in "${TOOLS[@]}"; do
            ingest "$t" "$v"
        done
    done

    # Tables: one per version.
    echo
    for v in "${V[@]}"; do
        src=${SRC[$v]}
        [[ $S = s2 ]] && src=${GGUF[$v]}
        raw=$(stat -c %s "$src")
        echo "$S $v: raw $raw bytes"
        printf '  %-8s %14s %14s %10s %9s %9s %9s\n' tool stored increment 'incr/raw' wall-s MB/s 'RSS MiB'
        for t in "${TOOLS[@]}"; do
            awk -F'\t' -v s="$S" -v t="$t" -v v="$v" -v raw="$raw" -v cz="$CHANGED_ZST" -v res="$RESULTS" '
                BEGIN {
                    while ((getline line < res) > 0) {
                        split(line, f, "\t")
                        if (f[1] == s "-" t "-" v) { wall = f[3]; rss = f[5] }
                    }
                }
                $1 == t { prev = cur; cur = $3; if ($2 == v) { found = 1; exit } }
                END {
                    if (!found) exit
                    inc = cur - prev
                    extra = v == "v2" ? sprintf("%.2fx changed.zst", inc / cz) : ""
                    printf "  %-8s %14.0f %14.0f %9.1f%% %9.3f %9.1f %9.1f %s\n", t, cur, inc,
                        100 * inc / raw, wall, (wall > 0 ? raw / 1e6 / wall : 0), rss / 1024, extra
                }' "$SO/stored.tsv"
        done
        echo
    done

    raw4=$(stat -c %s "${SRC[v4]}")
    [[ $S = s2 ]] && raw4=$(stat -c %s "${GGUF[v4]}")
    inc() {
        awk -F'\t' -v t="$1" -v v="$2" '$1 == t { prev = cur; cur = $3; if ($2 == v) { print cur - prev; exit } }' \
            "$SO/stored.tsv"
    }
    echo "$S targets (SPEC section 9):"
    bench_target "v2 cairn increment / changed.zst" "$(awk -v a="$(inc cairn v2)" -v b="$CHANGED_ZST" 'BEGIN {print a / b}')" '<=' 1.05 x
    for t in restic borg casync; do
        [[ " ${TOOLS[*]} " = *" $t "* ]] || continue
        bench_target "v2 $t increment / cairn's" "$(awk -v a="$(inc "$t" v2)" -v b="$(inc cairn v2)" 'BEGIN {print a / b}')" '>' 1 x
    done
    bench_target "v4 cairn increment / raw v4" "$(awk -v a="$(inc cairn v4)" -v b="$raw4" 'BEGIN {print 100 * a / b}')" '<=' 40 %
}

for s in ${BENCH_SCENARIOS:-s1 s2}; do
    case $s in
    s1) scenario s1 model.safetensors ;;
    s2) scenario s2 model.gguf ;;
    *) bench_die "unknown scenario '$s' in BENCH_SCENARIOS" ;;
    esac
    echo
    rm -rf "${OUT:?}/$s"
done
if ((BYTES < (1 << 30))); then
    echo
    echo "note: BENCH_SIZE=$SIZE_LABEL is a smoke size; the targets are for about 1 GiB"
fi
