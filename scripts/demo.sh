#!/usr/bin/env bash
# make demo: a short narrated story of what cairn does with model files,
# on a generated model, in a scratch repository. Exits non-zero if any step
# does not behave as narrated. Leaves nothing running and nothing behind.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${CAIRN_BUILD_DIR:-$ROOT/build}"
PATH="$BUILD:$BUILD/tests/helper:$PATH"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/cairn-demo.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

bold() { if [[ -t 1 && -z ${NO_COLOR:-} ]]; then printf '\n\033[1m== %s\033[0m\n' "$*"; else printf '\n== %s\n' "$*"; fi; }
run() { printf '$ %s\n' "$*"; "$@"; }
expect() { if ! eval "$1"; then echo "demo: expected: $2" >&2; exit 1; fi; }
stored() { cairn show "$1" --json | jq -r .stored_bytes; }

bold "1. A repository: chunk store + registry, in .cairn/"
run cairn init

bold "2. A model: 24 bf16 tensors of 1M elements (48 MiB of safetensors)"
run cairn-test-tool gen-safetensors model.safetensors 1 24 1048576 bf16
echo '{"lr": 0.001, "epochs": 3, "optimizer": "adam"}' > params.json
echo '{"accuracy": 0.912, "loss": 0.31}' > metrics.json
run cairn add model.safetensors
run cairn commit llama-tiny -m "first training run" --params params.json --metrics metrics.json
raw=$(cairn show llama-tiny --json | jq -r .raw_bytes)
v1=$(stored llama-tiny@v1)
echo "-> stored $v1 bytes for $raw raw: tensors are chunked one by one and"
echo "   each chunk compressed with the best of zstd and byte-plane grouping"
expect "[ $v1 -lt $raw ]" "v1 compressed below its raw size"

bold "3. Add a tensor: the header and every offset move, the tensors do not"
run cairn-test-tool gen-safetensors model.safetensors 1 25 1048576 bf16
echo '{"accuracy": 0.925, "loss": 0.27}' > metrics.json
run cairn add model.safetensors
run cairn commit llama-tiny -m "extra head" --params params.json --metrics metrics.json
v2=$(stored llama-tiny@v2)
echo "-> v2 added only $v2 bytes to the store: the one new tensor and a header"
expect "[ $v2 -lt $((v1 / 10)) ]" "v2 stores less than a tenth of v1"
run cairn diff llama-tiny@v1 llama-tiny@v2 --tensors

bold "4. History, names and lineage"
run cairn tag llama-tiny@v1 baseline
run cairn log llama-tiny --metrics accuracy,loss
run cairn show llama-tiny@baseline

bold "5. Unchanged files are not read again (stat cache)"
touch -d '-5 seconds' model.safetensors
cairn add model.safetensors >/dev/null
run cairn add model.safetensors
expect "[ \"\$(cairn add --json model.safetensors | jq .bytes_read)\" = 0 ]" "re-add reads 0 bytes"

bold "6. Restore both versions bit for bit, every chunk verified"
run cairn checkout llama-tiny@baseline --to restore/v1
run cairn checkout llama-tiny@v2 --to restore/v2
run b3sum restore/v2/model.safetensors model.safetensors
expect "cmp -s restore/v2/model.safetensors model.safetensors" "v2 restores bit for bit"
expect "[ \"\$(b3sum --no-names restore/v1/model.safetensors)\" = \"\$(cairn show llama-tiny@v1 --json | jq -r '.file_list[0].blake3')\" ]" \
    "v1 restores to the digest it was committed with"

bold "7. Integrity: fsck checks every chunk, manifest, record and the audit chain"
run cairn fsck
pack=$(ls .cairn/store/packs/*.pack | head -n 1)
chmod u+w "$pack"
cairn-test-tool flip "$pack" $(($(stat -c %s "$pack") / 2))
echo "(flipped one byte in $(basename "$pack"))"
set +e
cairn fsck >fsck.out 2>&1; rc=$?
set -e
head -n 3 fsck.out
expect "[ $rc -eq 3 ]" "fsck exits 3 on a damaged pack"
set +e
cairn checkout llama-tiny@v2 --to restore/bad 2>&1; rc=$?
set -e
expect "[ $rc -eq 1 ] && [ ! -e restore/bad/model.safetensors ]" "checkout refuses and writes no wrong file"

bold "done: versioned, deduplicated, compressed, verified"
