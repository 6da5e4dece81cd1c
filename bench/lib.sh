# Shared helpers of the storage benchmarks (bench/ingest.sh, bench/dedup.sh).
# Sourced, not run. Plain bash; every measured command goes through
# bench_run, which prints it exactly (shell-quoted) and records its wall
# time, CPU time and peak resident memory, so a reader can repeat any number
# in a table by hand.
#
# Environment:
#   CAIRN_BUILD_DIR    the build directory (default: build/ of this tree)
#   BENCH_SIZE         model size, K/M/G suffixes (each script has a default)
#   BENCH_TMP          scratch directory (default: bench/out/NAME)
#   BENCH_DROP_CACHES  auto (default): drop the page cache before each timed
#                      run when /proc/sys/vm/drop_caches is writable, else
#                      warm the inputs; 1: drop or fail; 0: always warm
#   BENCH_PREFAULT     auto (default): on a VM that gives free memory back to
#                      its host (free page reporting), touch memory before
#                      each timed run (cairn-test-tool prefault) so that no
#                      run pays for the host taking pages back; 0: never; 1:
#                      always. Size: half of MemAvailable, at most 6 GiB.
#
# Measurements, all by `cairn-test-tool rss-exec` around the command alone
# (spawning `date` and /usr/bin/time took 20 ms here, half a re-add): wall
# time from fork to wait4(); user+sys CPU time and peak RSS from wait4()'s
# rusage, which covers the command and everything it waited for (for a
# `bash -c` pipeline, the RSS of the largest process in it).

set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
BUILD=${CAIRN_BUILD_DIR:-$ROOT/build}
# Absolute, since the timed commands run in other directories.
[[ $BUILD = /* ]] || BUILD=$PWD/$BUILD
CAIRN=$BUILD/cairn
TOOL=$BUILD/tests/helper/cairn-test-tool
GEN=$BUILD/bench/gen_model
CACHE=$BENCH_DIR/cache
export LC_ALL=C

bench_die() {
    echo "bench: $*" >&2
    exit 1
}

# bench_init NAME: check the build, make a fresh scratch dir $OUT, decide
# the cache mode, print the machine.
bench_init() {
    local name=$1 x
    for x in "$CAIRN" "$TOOL" "$GEN"; do
        [[ -x $x ]] || bench_die "'$x' is missing: build first (make, or ninja -C \$CAIRN_BUILD_DIR)"
    done
    OUT=${BENCH_TMP:-$BENCH_DIR/out/$name}
    rm -rf "$OUT"
    mkdir -p "$OUT" "$CACHE"
    OUT=$(cd "$OUT" && pwd)
    RESULTS=$OUT/results.tsv
    : > "$RESULTS"

    case ${BENCH_DROP_CACHES:-auto} in
    0) DROP=0 CACHE_NOTE="page cache: warmed (cat FILE > /dev/null) before each timed run (BENCH_DROP_CACHES=0)" ;;
    1 | auto)
        if (sync && echo 3 > /proc/sys/vm/drop_caches) 2> /dev/null; then
            DROP=1 CACHE_NOTE="page cache: dropped (sync; echo 3 > /proc/sys/vm/drop_caches) before each timed run: inputs are read from disk"
        elif [[ ${BENCH_DROP_CACHES:-auto} = 1 ]]; then
            bench_die "cannot write /proc/sys/vm/drop_caches (not root, or a container)"
        else
            DROP=0 CACHE_NOTE="page cache: cannot be dropped here (/proc/sys/vm/drop_caches not writable: not root or a container), so inputs are warmed (cat FILE > /dev/null) before each timed run"
        fi
        ;;
    *) bench_die "BENCH_DROP_CACHES must be auto, 0 or 1" ;;
    esac

    echo "# $name: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "machine: $(uname -srm), $(nproc) CPUs, $(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
    echo "memory:  $(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo); load: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "scratch: $OUT ($(df -hT "$OUT" | awk 'NR == 2 {print $2 ", " $5 " free"}'))"
    echo "cairn:   $CAIRN ($("$CAIRN" version 2> /dev/null | head -n 1 || echo unknown))"
    echo "$CACHE_NOTE"
    if bench_prefault_on; then
        echo "memory:  touched before each timed run (free page reporting: see bench_prefault in bench/lib.sh)"
    fi
}

# bench_size VAR DEFAULT: bytes of BENCH_SIZE (K/M/G suffixes) into VAR.
bench_size() {
    local s=${BENCH_SIZE:-$2} n unit
    [[ $s =~ ^([0-9]+)([KkMmGg]?)$ ]] || bench_die "BENCH_SIZE '$s' is not a number with an optional K, M or G"
    n=${BASH_REMATCH[1]} unit=${BASH_REMATCH[2],,}
    case $unit in
    k) n=$((n << 10)) ;;
    m) n=$((n << 20)) ;;
    g) n=$((n << 30)) ;;
    esac
    printf -v "$1" %s "$n"
    SIZE_LABEL=$s
}

# bench_have CMD...: true when every command exists; otherwise says which
# peer is skipped, so a machine without one still runs the others.
bench_have() {
    local c
    for c; do
        if ! command -v "$c" > /dev/null 2>&1; then
            echo "note: '$c' not installed, its rows are skipped (scripts/install-deps.sh installs it)"
            return 1
        fi
    done
}

# bench_cached FILE CMD...: run CMD (which must write FILE.tmp) unless FILE
# exists; renamed into place only when complete, so an interrupted run never
# leaves a truncated input behind.
bench_cached() {
    local file=$1
    shift
    [[ -f $file ]] && return 0
    echo "generating $file"
    bench_show "$@"
    "$@" || bench_die "cannot generate '$file'"
    mv -f "$file.tmp" "$file"
}

# bench_link SRC DST: hard link (same file system) or copy.
bench_link() {
    rm -f "$2"
    ln "$1" "$2" 2> /dev/null || cp "$1" "$2"
}

# bench_show [-C DIR] CMD...: print a command the way a shell would take it back
# (nothing while BENCH_QUIET=1: later rounds of a repeated measurement).
bench_show() {
    [[ ${BENCH_QUIET:-0} = 1 ]] && return 0
    local a q= pre=
    if [[ $1 = -C ]]; then
        printf -v pre 'cd %q && ' "$2"
        shift 2
    fi
    for a; do
        if [[ $a =~ ^[A-Za-z0-9_./=:@%+,-]+$ ]]; then
            q+="$a "
        elif [[ $a != *\'* ]]; then
            q+="'$a' "
        else
            printf -v a '%q' "$a"
            q+="$a "
        fi
    done
    echo "  \$ $pre${q% }"
}

# bench_cache FILE...: the cache state before a timed run (see BENCH_DROP_CACHES).
bench_cache() {
    if ((DROP)); then
        sync
        echo 3 > /proc/sys/vm/drop_caches
    else
        local f
        for f; do
            if [[ -d $f ]]; then
                find "$f" -type f -exec cat {} + > /dev/null
            else
                cat "$f" > /dev/null
            fi
        done
    fi
    bench_prefault
}

# bench_prefault_on: whether bench_prefault touches memory (BENCH_PREFAULT).
bench_prefault_on() {
    case ${BENCH_PREFAULT:-auto} in
    0) return 1 ;;
    1) return 0 ;;
    auto) [[ -e /sys/module/page_reporting/parameters/page_reporting_order ]] ;;
    *) bench_die "BENCH_PREFAULT must be auto, 0 or 1" ;;
    esac
}

# On a VM with free page reporting, memory freed two seconds earlier (a
# dropped cache, a deleted checkout) faults into the hypervisor when it is
# used again: the same cold b3sum took 0.45 s or 2.5 s here, and a checkout
# 0.9 s or 4.7 s, depending on what the run before had freed. Touching
# memory just before a run gives every tool the same start.
bench_prefault() {
    local kib
    bench_prefault_on || return 0
    kib=$(awk '/^MemAvailable/ {k = int($2 / 2); if (k > 6 * 1048576) k = 6 * 1048576; print k}' /proc/meminfo)
    "$TOOL" prefault "${kib}K"
}

# bench_run LABEL BYTES DIR CMD...: run CMD in DIR once, print it, append
# "LABEL BYTES wall cpu rss_kib" to $RESULTS and set LAST_WALL, LAST_CPU,
# LAST_RSS_KIB. CMD's stdout goes to $OUT/LABEL.out, its stderr to
# $OUT/LABEL.err; a failure prints that stderr and stops the benchmark.
bench_run() {
    local label=$1 bytes=$2 dir=$3 t0 t1 rc=0
    shift 3
    bench_show -C "$dir" "$@"
    (cd "$dir" && "$TOOL" rss-exec -o "$OUT/$label.rss" -t "$OUT/$label.times" \
        "$@" > "$OUT/$label.out" 2> "$OUT/$label.err") || rc=$?
    if ((rc)); then
        echo "bench: '$label' failed with status $rc:" >&2
        tail -n 20 "$OUT/$label.err" >&2
        exit 1
    fi
    LAST_WALL=$(awk '{printf "%.6f", $1}' "$OUT/$label.times")
    LAST_CPU=$(awk '{printf "%.2f", $2}' "$OUT/$label.times")
    LAST_RSS_KIB=$(cat "$OUT/$label.rss")
    printf '%s\t%s\t%s\t%s\t%s\n' "$label" "$bytes" "$LAST_WALL" "$LAST_CPU" "$LAST_RSS_KIB" >> "$RESULTS"
}

# bench_result LABEL FIELD: a field (bytes wall cpu rss) of a recorded run.
bench_result() {
    awk -F'\t' -v l="$1" -v f="$2" '
        $1 == l { v = f == "bytes" ? $2 : f == "wall" ? $3 : f == "cpu" ? $4 : $5 }
        END { print v }' "$RESULTS"
}

# bench_sum LABEL... : add up runs as one row (e.g. add + commit), named by
# the first label with "+"; wall and cpu summed, bytes of the first, rss max.
bench_sum() {
    local name=$1 l
    for l in "${@:2}"; do name+="+${l}"; done
    awk -F'\t' -v name="$name" -v labels="$*" '
        BEGIN { n = split(labels, want, " "); for (i = 1; i <= n; i++) w[want[i]] = 1 }
        $1 in w { if (bytes == "") bytes = $2; wall += $3; cpu += $4; if ($5 > rss) rss = $5 }
        END { printf "%s\t%s\t%.6f\t%.2f\t%s\n", name, bytes, wall, cpu, rss }' "$RESULTS" >> "$RESULTS"
    SUM_LABEL=$name
}

# bench_median LABEL: a row LABEL from the runs recorded as LABEL#1, LABEL#2,
# ...: the run with the median wall time (its CPU time with it), the largest
# RSS of them all. The machines we measure on are shared and a single run
# can be off by half; the median of three is what the tables report.
bench_median() {
    awk -F'\t' -v l="$1#" 'index($1, l) == 1 && substr($1, length(l) + 1) ~ /^[0-9]+$/' "$RESULTS" |
        sort -t "$(printf '\t')" -k3,3g |
        awk -F'\t' -v l="$1" '
            { row[NR] = $0; if ($5 > rss) rss = $5 }
            END {
                if (!NR) exit 1
                split(row[int((NR + 1) / 2)], f, "\t")
                printf "%s\t%s\t%s\t%s\t%s\n", l, f[2], f[3], f[4], rss
            }' >> "$RESULTS"
}

# bench_walls LABEL: the wall times of runs LABEL#1, LABEL#2, ..., in order.
bench_walls() {
    awk -F'\t' -v l="$1#" 'index($1, l) == 1 && substr($1, length(l) + 1) ~ /^[0-9]+$/ {
        printf "%s%.3f", (n++ ? " " : ""), $3 } END { print "" }' "$RESULTS"
}

# bench_table LABEL...: the throughput table of recorded runs.
bench_table() {
    printf '%-26s %12s %10s %8s %10s %10s\n' run bytes wall-s cpu-s MB/s 'RSS MiB'
    local l
    for l; do
        awk -F'\t' -v l="$l" '$1 == l {
            printf "%-26s %12d %10.3f %8.2f %10.1f %10.1f\n", $1, $2, $3, $4,
                ($3 > 0 ? $2 / 1e6 / $3 : 0), $5 / 1024 }' "$RESULTS"
    done
}

# bench_target NAME VALUE OP LIMIT UNIT: one line of the targets table.
bench_target() {
    awk -v n="$1" -v v="$2" -v op="$3" -v lim="$4" -v u="$5" 'BEGIN {
        ok = op == ">=" ? v >= lim : op == "<=" ? v <= lim : op == "<" ? v < lim : v > lim
        printf "%-34s %12.3f %-6s target %s %s %s\n", n, v, u, op, lim, ok ? "(met)" : "(MISSED)" }'
}

# bench_du DIR...: bytes used by the directories and files, as du -sb counts them.
bench_du() {
    du -scb "$@" | awk 'END {print $1}'
}
