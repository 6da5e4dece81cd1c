#!/usr/bin/env bash
#
# `make fuzz-long`: the fuzz campaign. Runs every libFuzzer target of
# $FUZZ_BUILD (built with -Dfuzz=true) for $FUZZ_LONG_SECONDS wall-clock
# seconds, $FUZZ_JOBS targets at a time, at `nice -n $FUZZ_NICE` so it can run
# beside other work. For each target it:
#
#   1. fuzzes a fresh working copy of fuzz/corpus/NAME in
#      $FUZZ_BUILD/fuzz-long/NAME/; a crash, leak, timeout or OOM stops
#      libFuzzer, which then starts again on the grown copy for the rest of
#      the time, up to $FUZZ_MAX_FINDINGS (5) findings;
#   2. keeps every finding under fuzz/findings/NAME-KIND-HASH (ignored by git);
#   3. merges the working copy back into fuzz/corpus/NAME with -merge=1
#      -use_counters=0, which adds only inputs that reach an edge the corpus
#      does not, so the corpus stays small;
#   4. appends a line (date, target, seconds, execs, new corpus files,
#      findings) to fuzz/CAMPAIGN.md and recomputes its table of cumulative
#      minutes per target from all lines.
#
# FUZZ_TARGETS="http csv" runs only those targets, in that order. The log of each
# run is $FUZZ_BUILD/fuzz-long/NAME.log. Exits 1 if anything was found.
set -euo pipefail

cd "$(dirname "$0")/.."
FUZZ_BUILD="${FUZZ_BUILD:-build-fuzz}"
FUZZ_LONG_SECONDS="${FUZZ_LONG_SECONDS:-600}"
FUZZ_JOBS="${FUZZ_JOBS:-2}"
FUZZ_NICE="${FUZZ_NICE:-19}"
FUZZ_TARGETS="${FUZZ_TARGETS:-}"
# Per-input limits: an input slower than this many seconds is a timeout
# finding (generous: the runs are niced on shared machines), one needing more
# than this much memory an OOM finding.
FUZZ_INPUT_TIMEOUT="${FUZZ_INPUT_TIMEOUT:-25}"
FUZZ_RSS_MB="${FUZZ_RSS_MB:-2048}"
FUZZ_MAX_FINDINGS="${FUZZ_MAX_FINDINGS:-5}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"

CAMPAIGN=fuzz/CAMPAIGN.md
FINDINGS=fuzz/findings
WORK="$FUZZ_BUILD/fuzz-long"

shopt -s nullglob
names=()
if [[ -n $FUZZ_TARGETS ]]; then
    for name in $FUZZ_TARGETS; do
        if [[ ! -x $FUZZ_BUILD/fuzz/fuzz_$name ]]; then
            echo "fuzz-long: no fuzz target $FUZZ_BUILD/fuzz/fuzz_$name" >&2
            exit 1
        fi
        names+=("$name")
    done
else
    for exe in "$FUZZ_BUILD"/fuzz/fuzz_*; do
        [[ -x $exe && -f $exe ]] && names+=("${exe##*/fuzz_}")
    done
fi
if ((${#names[@]} == 0)); then
    echo "fuzz-long: no fuzz targets in $FUZZ_BUILD/fuzz" >&2
    exit 1
fi
mkdir -p "$FINDINGS" "$WORK"

# Rewrites $CAMPAIGN: the header, the cumulative table computed from the log
# lines, then the log lines themselves (every row of the table under "## Log",
# plus the new row $1 if given), then the "## Notes" section, kept as it is
# (what the findings were).
campaign_rewrite() {
    local log notes
    log=$(mktemp)
    notes=$(mktemp)
    if [[ -f $CAMPAIGN ]]; then
        awk '/^## / { inlog = ($0 ~ /^## Log/) } inlog && /^\| [0-9]/ { print }' "$CAMPAIGN" >"$log"
        awk '/^## / { innotes = ($0 ~ /^## Notes/) } innotes { print }' "$CAMPAIGN" >"$notes"
    fi
    if [[ -n ${1:-} ]]; then
        printf '%s\n' "$1" >>"$log"
    fi
    {
        echo "# Fuzz campaign"
        echo
        echo "Every libFuzzer target of \`fuzz/\`, run by \`make fuzz-long\`"
        echo "(\`scripts/fuzz-long.sh\`; see docs/development.md). The table is"
        echo "recomputed from the log below after every run: wall-clock minutes"
        echo "and executions summed over all runs. Runs are niced beside other"
        echo "work, so compare execs, not minutes, for depth. Findings are"
        echo "crash, leak, timeout and OOM inputs (kept in \`fuzz/findings/\`,"
        echo "not in git); each fixed one is in \`fuzz/corpus/NAME/\`."
        echo
        echo "| target | minutes | execs | runs | findings |"
        echo "| --- | ---: | ---: | ---: | ---: |"
        awk -F'|' '{
                t = $3; gsub(/ /, "", t)
                s[t] += $4; e[t] += $5; f[t] += $7; r[t]++
            }
            END {
                for (t in s) printf "| %s | %.1f | %.0f | %d | %d |\n", t, s[t] / 60, e[t], r[t], f[t]
            }' "$log" | sort
        echo
        echo "## Log"
        echo
        echo "| date (UTC) | target | seconds | execs | new corpus files | findings |"
        echo "| --- | --- | ---: | ---: | ---: | ---: |"
        cat "$log"
        if [[ -s $notes ]]; then
            echo
            cat "$notes"
        fi
    } >"$CAMPAIGN.tmp"
    mv "$CAMPAIGN.tmp" "$CAMPAIGN"
    rm -f "$log" "$notes"
}

# Fuzzes one target for $FUZZ_LONG_SECONDS, merges, logs. Prints one summary
# line; returns 1 if it found anything.
run_target() {
    local name=$1 exe="$FUZZ_BUILD/fuzz/fuzz_$1"
    local dir="$WORK/$name" log="$WORK/$name.log"
    local corpus="fuzz/corpus/$name"
    local start end seconds execs before after found stamp
    rm -rf "$dir"
    mkdir -p "$dir" "$corpus"
    cp "$corpus"/* "$dir"/ 2>/dev/null || true
    stamp="$WORK/$name.start"
    touch "$stamp"
    start=$(date +%s)
    end=$((start + FUZZ_LONG_SECONDS))
    : >"$log"
    # A finding stops libFuzzer: start it again on the grown corpus for the
    # rest of the time, at most $FUZZ_MAX_FINDINGS times. Any other failure
    # (interrupted, killed) ends the target's run.
    local left=$FUZZ_LONG_SECONDS rc n=0
    while ((left > 0)); do
        rc=0
        nice -n "$FUZZ_NICE" "$exe" -max_total_time="$left" -print_final_stats=1 \
            -timeout="$FUZZ_INPUT_TIMEOUT" -rss_limit_mb="$FUZZ_RSS_MB" \
            -artifact_prefix="$FINDINGS/$name-" "$dir" >>"$log" 2>&1 || rc=$?
        left=$((end - $(date +%s)))
        ((rc != 0)) || break
        found=$(find "$FINDINGS" -maxdepth 1 -name "$name-*" -newer "$stamp" | wc -l)
        ((found > n && found < FUZZ_MAX_FINDINGS)) || break
        n=$found
    done
    end=$(date +%s)
    seconds=$((end - start))
    # Every libFuzzer run prints its executions when it ends, also after a
    # finding or an interrupt (SIGINT, SIGTERM).
    execs=$(awk '/^stat::number_of_executed_units:/ { n += $2 } END { printf "%.0f", n }' "$log")
    found=$(find "$FINDINGS" -maxdepth 1 -name "$name-*" -newer "$stamp" | wc -l)
    before=$(find "$corpus" -type f | wc -l)
    # -use_counters=0: an input is new only if it reaches an edge the corpus
    # does not (not merely a new hit count), which keeps the corpus small.
    nice -n "$FUZZ_NICE" "$exe" -merge=1 -use_counters=0 -timeout="$FUZZ_INPUT_TIMEOUT" \
        -rss_limit_mb="$FUZZ_RSS_MB" "$corpus" "$dir" >>"$log" 2>&1 || true
    after=$(find "$corpus" -type f | wc -l)
    rm -f "$stamp"
    (
        flock 9
        campaign_rewrite "$(printf '| %s | %s | %d | %d | %d | %d |' \
            "$(date -u -d "@$start" '+%Y-%m-%d %H:%M')" "$name" "$seconds" "$execs" \
            "$((after - before))" "$found")"
    ) 9>"$WORK/.campaign.lock"
    echo "fuzz-long: $name: ${seconds}s, $execs execs, $((after - before)) new corpus files," \
        "$found findings (log $log)"
    ((found == 0))
}

echo "fuzz-long: ${#names[@]} targets, ${FUZZ_LONG_SECONDS}s each, $FUZZ_JOBS at a time," \
    "nice $FUZZ_NICE"
failed=()
running=0
declare -A pid_name=()
reap() {
    local pid
    wait -n -p pid "${!pid_name[@]}" && true
    local status=$?
    ((status == 0)) || failed+=("${pid_name[$pid]}")
    unset "pid_name[$pid]"
    running=$((running - 1))
}
for name in "${names[@]}"; do
    while ((running >= FUZZ_JOBS)); do
        reap
    done
    run_target "$name" &
    pid_name[$!]=$name
    running=$((running + 1))
done
while ((running > 0)); do
    reap
done
if ((${#failed[@]})); then
    echo "fuzz-long: findings in: ${failed[*]} (inputs in $FINDINGS/)" >&2
    exit 1
fi
echo "fuzz-long: no findings"
