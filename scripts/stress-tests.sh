#!/usr/bin/env bash
#
# Run the serving (t4xxx) and remote (t3xxx) end-to-end test files N times
# while stress-ng keeps every core busy, and count the failures of each test:
# a test that fails once in thirty loaded runs costs a whole landing, so the
# target is 0. Timing-dependent tests (a readiness check, an analysis tick, a
# registry write behind the answer) fail here first.
#
# Each round runs every file once with `bats --tap`, one file at a time,
# under `timeout` (a hung file is killed with its process group and counts
# as one failure). stress-ng runs for the whole run and is stopped by its PID
# on exit, also on Ctrl-C, TERM or an error (the file under way too); its own
# --timeout is a backstop.
# Failing files keep their TAP output in $LOGDIR.
#
# Usage: scripts/stress-tests.sh N [FILE...]
#   N       rounds (e.g. 30)
#   FILE    test files instead of tests/e2e/t3*.bats tests/e2e/t4*.bats
#
# Environment: CAIRN_BUILD_DIR (build/), STRESS_CPUS (stress-ng workers,
# default the number of cores), STRESS_FILE_TIMEOUT (seconds per file, 900),
# STRESS_MAX_SECONDS (start no round after this many seconds; 0 = no limit),
# LOGDIR ($CAIRN_BUILD_DIR/stress-tests).
#
# Prints one line per round, then the failures of each test that failed
# (FAILED/RUNS), the skips, and the flake rate: failed test runs / test
# runs. Exits 1 if any test failed, 2 on a usage error.
set -euo pipefail

cd "$(dirname "$0")/.."
usage() { sed -n '3,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
if [[ ${1:-} == -h || ${1:-} == --help ]]; then
    usage
    exit 0
fi
if [[ ! ${1:-} =~ ^[1-9][0-9]*$ ]]; then
    echo "stress-tests: usage: $0 N [FILE...] (N rounds, at least 1)" >&2
    exit 2
fi
rounds=$1
shift
files=("$@")
if ((${#files[@]} == 0)); then
    files=(tests/e2e/t3*.bats tests/e2e/t4*.bats)
fi

export CAIRN_BUILD_DIR="${CAIRN_BUILD_DIR:-$PWD/build}"
cpus="${STRESS_CPUS:-$(nproc)}"
file_timeout="${STRESS_FILE_TIMEOUT:-900}"
max_seconds="${STRESS_MAX_SECONDS:-0}"
logdir="${LOGDIR:-$CAIRN_BUILD_DIR/stress-tests}"

for tool in stress-ng bats timeout; do
    command -v "$tool" >/dev/null || {
        echo "stress-tests: needs $tool: run scripts/install-deps.sh" >&2
        exit 2
    }
done
if [[ ! -x $CAIRN_BUILD_DIR/cairn ]]; then
    echo "stress-tests: no cairn in $CAIRN_BUILD_DIR: run 'make' first" >&2
    exit 2
fi
for f in "${files[@]}"; do
    [[ -f $f ]] || {
        echo "stress-tests: no test file '$f'" >&2
        exit 2
    }
done
mkdir -p "$logdir"

stress_pid='' file_pid=''
stop_stress() {
    if [[ -n $file_pid ]]; then
        kill -TERM "$file_pid" 2>/dev/null || true # timeout passes it to its group
        wait "$file_pid" 2>/dev/null || true
        file_pid=
    fi
    if [[ -n $stress_pid ]]; then
        kill -TERM "$stress_pid" 2>/dev/null || true
        wait "$stress_pid" 2>/dev/null || true
        stress_pid=
    fi
}
trap stop_stress EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The backstop: never outlive the longest run this could be.
backstop=$((rounds * ${#files[@]} * (file_timeout + 60) + 60))
if ((max_seconds > 0 && max_seconds + ${#files[@]} * (file_timeout + 60) < backstop)); then
    backstop=$((max_seconds + ${#files[@]} * (file_timeout + 60)))
fi
stress-ng --cpu "$cpus" --timeout "${backstop}s" >"$logdir/stress-ng.log" 2>&1 &
stress_pid=$!
echo "stress-tests: $rounds round(s) of ${#files[@]} file(s) under stress-ng --cpu $cpus (pid $stress_pid)"

declare -A runs=() fails=() skips=()
order=()
total_runs=0 total_fails=0 total_skips=0 failed_rounds=0 done_rounds=0
start=$SECONDS

for ((round = 1; round <= rounds; round++)); do
    if ((max_seconds > 0 && SECONDS - start >= max_seconds)); then
        echo "stress-tests: time limit of ${max_seconds}s reached; stopping after $done_rounds round(s)"
        break
    fi
    round_fails=0
    round_start=$SECONDS
    for f in "${files[@]}"; do
        name=$(basename "$f" .bats)
        tap="$logdir/round$round-$name.tap"
        rc=0
        # In the background and waited for, so that Ctrl-C or TERM stop it at once.
        timeout -k 30 "$file_timeout" bats --tap "$f" >"$tap" 2>&1 &
        file_pid=$!
        wait "$file_pid" || rc=$?
        file_pid=
        seen=0
        while IFS= read -r line; do
            if [[ $line =~ ^(not\ )?ok\ [0-9]+\ (.*)$ ]]; then
                test="${BASH_REMATCH[2]}"
                failed=0
                [[ -z ${BASH_REMATCH[1]} ]] || failed=1
                skipped=0
                if [[ $test =~ ^(.*)\ \#\ skip ]]; then
                    test="${BASH_REMATCH[1]}"
                    skipped=1
                fi
                key="$name: $test"
                [[ -v "runs[$key]" ]] || {
                    order+=("$key")
                    runs[$key]=0 fails[$key]=0 skips[$key]=0
                }
                seen=1
                if ((skipped)); then
                    skips[$key]=$((skips[$key] + 1))
                    total_skips=$((total_skips + 1))
                    continue
                fi
                runs[$key]=$((runs[$key] + 1))
                total_runs=$((total_runs + 1))
                if ((failed)); then
                    fails[$key]=$((fails[$key] + 1))
                    total_fails=$((total_fails + 1))
                    round_fails=$((round_fails + 1))
                fi
            fi
        done <"$tap"
        # A file that timed out or broke before its tests counts once.
        if ((rc != 0 && (rc == 124 || rc == 137 || !seen))); then
            why="exit $rc"
            ((rc != 124 && rc != 137)) || why="timed out after ${file_timeout}s"
            key="$name: (the whole file: $why)"
            [[ -v "runs[$key]" ]] || {
                order+=("$key")
                runs[$key]=0 fails[$key]=0 skips[$key]=0
            }
            runs[$key]=$((runs[$key] + 1))
            fails[$key]=$((fails[$key] + 1))
            total_runs=$((total_runs + 1))
            total_fails=$((total_fails + 1))
            round_fails=$((round_fails + 1))
        fi
        if ((rc == 0)); then
            rm -f "$tap"
        fi
    done
    done_rounds=$round
    ((round_fails == 0)) || failed_rounds=$((failed_rounds + 1))
    echo "stress-tests: round $round: $round_fails failure(s) in $((SECONDS - round_start))s"
done
stop_stress

echo
echo "stress-tests: $done_rounds round(s), $total_runs test runs, $total_fails failed, $total_skips skipped"
for key in "${order[@]}"; do
    if ((fails[$key] > 0)); then
        printf '  FAILED %d/%d  %s\n' "${fails[$key]}" "${runs[$key]}" "$key"
    fi
done
for key in "${order[@]}"; do
    if ((skips[$key] > 0)); then
        printf '  skipped %d  %s\n' "${skips[$key]}" "$key"
    fi
done
if ((total_fails > 0)); then
    echo "  failing TAP output: $logdir/round*.tap"
fi
rate=$(awk -v f="$total_fails" -v n="$total_runs" 'BEGIN { printf "%.2f", n ? 100 * f / n : 0 }')
echo "stress-tests: flake rate $total_fails/$total_runs test runs ($rate%), $failed_rounds/$done_rounds rounds with a failure"
((total_fails == 0))
