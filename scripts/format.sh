#!/usr/bin/env bash
#
# Apply (default) or check (--check) .clang-format on our own C sources:
# lib src include tests fuzz bench examples. extern/ holds only build glue
# around Debian's sources and is never touched. Files come from git (tracked
# plus untracked-but-not-ignored), so build directories and ignored caches
# are skipped; outside a git checkout every *.c and *.h under those folders.
#
# --check prints each file that would change and exits 1 if there is any.
set -euo pipefail

cd "$(dirname "$0")/.."
CLANG_FORMAT="${CLANG_FORMAT:-clang-format-14}"
dirs=(lib src include tests fuzz bench examples)

if ! command -v "$CLANG_FORMAT" >/dev/null; then
    echo "format: $CLANG_FORMAT not found (scripts/install-deps.sh installs it)" >&2
    exit 1
fi

files=()
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    while IFS= read -r -d '' f; do
        [[ -f $f ]] && files+=("$f")
    done < <(git ls-files -z -c -o --exclude-standard -- \
        "${dirs[@]/%//*.c}" "${dirs[@]/%//*.h}" | sort -zu)
else
    while IFS= read -r -d '' f; do
        files+=("$f")
    done < <(find "${dirs[@]}" -name '*.[ch]' -type f -print0 2>/dev/null | sort -z)
fi
if ((${#files[@]} == 0)); then
    echo "format: no C files found" >&2
    exit 1
fi

case "${1:-}" in
"")
    "$CLANG_FORMAT" -i "${files[@]}"
    ;;
--check)
    bad=()
    for f in "${files[@]}"; do
        if ! "$CLANG_FORMAT" --dry-run --Werror "$f" >/dev/null 2>&1; then
            bad+=("$f")
        fi
    done
    if ((${#bad[@]})); then
        printf 'format: not clang-formatted (run make format): %s\n' "${bad[@]}" >&2
        exit 1
    fi
    echo "format: ${#files[@]} files clean"
    ;;
*)
    echo "usage: scripts/format.sh [--check]" >&2
    exit 2
    ;;
esac
