#!/usr/bin/env bash
#
# `make fuzz`: run every libFuzzer target of $FUZZ_BUILD (built with
# -Dfuzz=true) for $FUZZ_SECONDS seconds each. Each target works on a copy of
# its seed corpus in $FUZZ_BUILD/fuzz-corpus/NAME (kept between runs, so what
# one run finds seeds the next) and never writes into fuzz/corpus/, which
# holds the small hand-picked seeds under version control. Crashing inputs
# land in fuzz/crashes/ (ignored by git): add them to the seed corpus once
# the bug is fixed, so `make check` replays them for ever.
set -euo pipefail

cd "$(dirname "$0")/.."
FUZZ_BUILD="${FUZZ_BUILD:-build-fuzz}"
FUZZ_SECONDS="${FUZZ_SECONDS:-60}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"

shopt -s nullglob
targets=("$FUZZ_BUILD"/fuzz/fuzz_*)
if ((${#targets[@]} == 0)); then
    echo "fuzz: no fuzz targets in $FUZZ_BUILD/fuzz (is fuzz/meson.build's list empty?)" >&2
    exit 1
fi
mkdir -p fuzz/crashes
failed=()
for exe in "${targets[@]}"; do
    [[ -x $exe && -f $exe ]] || continue
    name=${exe##*/fuzz_}
    work="$FUZZ_BUILD/fuzz-corpus/$name"
    mkdir -p "$work"
    if [[ -d fuzz/corpus/$name ]]; then
        cp -n fuzz/corpus/"$name"/* "$work"/ 2>/dev/null || true
    fi
    echo "fuzz: == $name for ${FUZZ_SECONDS}s ($work)"
    if ! "$exe" -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 \
        -artifact_prefix="fuzz/crashes/$name-" "$work"; then
        failed+=("$name")
    fi
done
if ((${#failed[@]})); then
    echo "fuzz: failures in: ${failed[*]} (inputs in fuzz/crashes/)" >&2
    exit 1
fi
echo "fuzz: all targets ran ${FUZZ_SECONDS}s without a finding"
