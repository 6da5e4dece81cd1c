#!/bin/sh
# CSV reader throughput (issue #8 target: >= 200 MB/s) against peers that
# read the same file: `wc -l` (a line count, the floor any reader pays),
# mawk splitting every field, and Python's csv module when python3 is there.
#
# Usage: bench/csv.sh [MB]   (default 500; CSV_BENCH_DIR picks the scratch dir)
# Prints the exact commands and a table of MB/s with the ratio of cairn to
# each peer. The file is read once untimed first so every run is from the
# page cache. Each tool is timed by wall clock and by CPU time (user + sys):
# on a shared, busy machine the CPU time is the fairer comparison, so the
# ratios use it; both are printed.
set -eu

MB=${1:-500}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${CSV_BENCH_DIR:-${TMPDIR:-/tmp}/cairn-csv-bench}
CC=${CC:-cc}
mkdir -p "$DIR"
BIN=$DIR/csv_bench
FILE=$DIR/bench-$MB.csv

# Built straight from the sources so the benchmark does not depend on a build dir.
$CC -std=gnu11 -O2 -D_GNU_SOURCE -include "$ROOT/lib/util/banned.h" -I"$ROOT/include" \
    -I"$ROOT/lib" "$ROOT/bench/csv_bench.c" "$ROOT/lib/data/csv.c" "$ROOT/lib/util/buf.c" \
    "$ROOT/lib/util/error.c" -o "$BIN"
[ -f "$FILE" ] || "$BIN" gen "$FILE" "$MB" 1
cat "$FILE" > /dev/null
BYTES=$(stat -c %s "$FILE")

# time_cmd NAME CMD...: run once, print "NAME wall-seconds cpu-seconds"
time_cmd() {
    name=$1; shift
    /usr/bin/time -f "$name %e %U %S" -o "$DIR/time.txt" "$@" > /dev/null
    awk '{printf "%s %s %.6f\n", $1, $2, $3 + $4}' "$DIR/time.txt"
}

echo "file: $FILE ($BYTES bytes)"
echo "commands:"
echo "  cairn   $BIN read $FILE"
echo "  wc      wc -l $FILE"
echo "  mawk    mawk -F, '{n += NF} END {print n}' $FILE"
HAVE_PY=0
if command -v python3 > /dev/null 2>&1 && python3 -c 'import csv' 2> /dev/null; then
    HAVE_PY=1
    echo "  python  python3 -c 'import csv,sys; sum(1 for _ in csv.reader(open(sys.argv[1], newline=\"\")))' $FILE"
fi

RES=$DIR/results.txt
: > "$RES"
"$BIN" read "$FILE" | awk '{print "cairn", $3, $4}' >> "$RES"
cairn_s=$(awk '{print $3}' "$RES")
time_cmd wc wc -l "$FILE" >> "$RES"
if command -v mawk > /dev/null 2>&1; then
    time_cmd mawk mawk -F, '{n += NF} END {print n}' "$FILE" >> "$RES"
fi
if [ "$HAVE_PY" = 1 ]; then
    time_cmd python python3 -c 'import csv,sys; sum(1 for _ in csv.reader(open(sys.argv[1], newline="")))' "$FILE" >> "$RES"
fi

echo
printf '%-8s %9s %9s %12s %14s\n' tool wall-s cpu-s 'MB/s (cpu)' 'cairn speedup'
awk -v bytes="$BYTES" -v c="$cairn_s" '{
    cpu = $3 > 0 ? $3 : 1e-6
    printf "%-8s %9.3f %9.3f %12.1f %13.2fx\n", $1, $2, $3, bytes / 1e6 / cpu, cpu / c
}' "$RES"
