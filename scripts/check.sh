#!/usr/bin/env bash
#
# The test part of `make check` (the Makefile builds build/ and build-asan/
# first): every suite runs even when an earlier one failed, so one run shows
# everything that is broken, and the script exits non-zero if anything failed
# or did not run.
#
#   1. unit tests (cmocka, meson suite 'unit') in build/
#   2. fuzz corpus replay (meson suite 'fuzz-replay') in build/
#   3. both again in build-asan/ (AddressSanitizer + UndefinedBehaviorSanitizer)
#   4. end-to-end tests (bats, tests/e2e/*.bats) against build/cairn
#   5. the format check (counts as one test)
#   6. every unit test and fuzz target named by a meson.build (one test)
#
# Each suite's counts go to $BUILD/check-summary, one line per suite:
#   SUITE PASSED FAILED SKIPPED
# followed by a final line `complete` once every suite has run; .ci/run sums
# these lines and prints the closing `N passed, N failed`.
#
# Environment: BUILD (build), ASAN_BUILD (build-asan), CAIRN_STRESS_ITERS
# (50), CLANG_FORMAT (clang-format-14), CHECK_SKIP_ASAN=1 to skip step 3
# (the summary then says so and the run counts as incomplete).
set -uo pipefail

cd "$(dirname "$0")/.."
BUILD="${BUILD:-build}"
ASAN_BUILD="${ASAN_BUILD:-build-asan}"
export CAIRN_STRESS_ITERS="${CAIRN_STRESS_ITERS:-50}"
summary="$BUILD/check-summary"
logdir="$BUILD/check-logs"
mkdir -p "$logdir"
: >"$summary"
status=0

# record SUITE PASSED FAILED SKIPPED
record() {
    echo "$1 $2 $3 $4" >>"$summary"
    printf 'check: %-22s %4d passed, %d failed%s\n' "$1" "$2" "$3" \
        "$([[ $4 != 0 ]] && echo ", $4 skipped")"
    if (($3 > 0)); then
        status=1
    fi
}

# meson_suite NAME BUILDDIR SUITE [ALLOW_EMPTY]: run one meson test suite and
# record the counts from its closing summary.
meson_suite() {
    local name=$1 dir=$2 suite=$3 allow_empty=${4:-0} log="$logdir/$1.log" rc
    echo "check: == $name: meson test -C $dir --suite $suite"
    meson test -C "$dir" --no-rebuild --print-errorlogs --suite "$suite" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    if grep -q '^No suitable tests defined' "$log"; then
        if ((allow_empty)); then
            record "$name" 0 0 0
        else
            echo "check: $name: no tests ran" >&2
            record "$name" 0 1 0
        fi
        return
    fi
    local ok xfail fail xpass skip timeout
    ok=$(awk '/^Ok:/ {print $2}' "$log")
    xfail=$(awk '/^Expected Fail:/ {print $3}' "$log")
    fail=$(awk '/^Fail:/ {print $2}' "$log")
    xpass=$(awk '/^Unexpected Pass:/ {print $3}' "$log")
    skip=$(awk '/^Skipped:/ {print $2}' "$log")
    timeout=$(awk '/^Timeout:/ {print $2}' "$log")
    if [[ -z $ok || -z $fail ]]; then
        # meson itself failed (a missing build, a crash): no summary to read.
        echo "check: $name: meson test ended without a summary (status $rc)" >&2
        record "$name" 0 1 0
        return
    fi
    local passed=$((ok + ${xfail:-0})) failed=$((fail + ${xpass:-0} + ${timeout:-0}))
    if ((rc != 0 && failed == 0)); then
        failed=1
    fi
    record "$name" "$passed" "$failed" "${skip:-0}"
}

meson_suite unit "$BUILD" unit
meson_suite fuzz-replay "$BUILD" fuzz-replay 1

if [[ ${CHECK_SKIP_ASAN:-0} == 1 ]]; then
    echo "check: == asan: skipped (CHECK_SKIP_ASAN=1)"
else
    # Leaks fail the test; UBSan stops at the first report instead of
    # printing and carrying on, so undefined behaviour fails the test too.
    export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0"
    export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
    meson_suite asan-unit "$ASAN_BUILD" unit
    meson_suite asan-fuzz-replay "$ASAN_BUILD" fuzz-replay 1
    unset ASAN_OPTIONS UBSAN_OPTIONS
fi

echo "check: == e2e: bats tests/e2e (CAIRN_STRESS_ITERS=$CAIRN_STRESS_ITERS)"
bats_args=(--tap)
if command -v parallel >/dev/null; then
    bats_args+=(--jobs 2)
fi
log="$logdir/e2e.log"
CAIRN_BUILD_DIR="$PWD/$BUILD" bats "${bats_args[@]}" tests/e2e 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
passed=$(grep -cE '^ok [0-9]+' "$log")
skipped=$(grep -cE '^ok [0-9]+ .*# skip' "$log")
failed=$(grep -cE '^not ok [0-9]+' "$log")
plan=$(sed -nE 's/^1\.\.([0-9]+)$/\1/p' "$log" | head -n 1)
passed=$((passed - skipped))
if [[ -z $plan || $plan -eq 0 ]]; then
    echo "check: e2e: bats ran no test (status $rc)" >&2
    failed=$((failed + 1))
elif ((passed + skipped + failed != plan)); then
    # A test that crashed bats itself leaves its line out: count it failed.
    echo "check: e2e: bats planned $plan tests but reported $((passed + skipped + failed))" >&2
    failed=$((plan - passed - skipped))
elif ((rc != 0 && failed == 0)); then
    failed=1
fi
record e2e "$passed" "$failed" "$skipped"

echo "check: == format: scripts/format.sh --check"
if scripts/format.sh --check; then
    record format 1 0 0
else
    record format 0 1 0
fi

# A test file that no meson.build names never runs and never fails: twice a
# rewrite of a tests/unit/*/meson.build dropped some silently. Every
# tests/unit/*/test_*.c and fuzz/fuzz_*.c must be named by its folder's
# meson.build (counts as one test).
echo "check: == registered: every unit test and fuzz target is built"
unregistered=0
for f in tests/unit/*/test_*.c fuzz/fuzz_*.c; do
    if ! grep -qF "$(basename "$f")" "$(dirname "$f")/meson.build"; then
        echo "check: $f is not named in $(dirname "$f")/meson.build: it never runs" >&2
        unregistered=1
    fi
done
record registered $((1 - unregistered)) "$unregistered" 0

if [[ ${CHECK_SKIP_ASAN:-0} != 1 ]]; then
    echo complete >>"$summary"
fi
awk '$1 != "complete" {p += $2; f += $3; s += $4}
     END {printf "check: total %d passed, %d failed%s\n", p, f, s ? ", " s " skipped" : ""}' \
    "$summary"
exit $status
