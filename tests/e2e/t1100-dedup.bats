#!/usr/bin/env bats
# t1100: tensor-aware dedup and deltas, end to end. A version with one
# changed tensor costs about that tensor; a tensor added at the front of a
# safetensors file (every offset shifts) still dedups the others; a damaged
# header falls back to generic chunking with a warning and restores
# bit-exact; a missing or damaged delta base is reported by fsck; gc keeps
# a delta's base while the delta is live. Sizes are asserted with generous
# tolerances, never timings.

load helpers

bats_require_minimum_version 1.5.0

# st_edit IN OUT MODE [ARG]: rewrite a safetensors file with python3.
#   retrain NAME  tensor NAME gets fresh N(0, 0.02) bf16 weights
#   front         a 64 KiB bf16 tensor is added before all others
#   nudge         about half the bf16 weights move by one ulp (a fine-tune)
st_edit() {
    python3 - "$@" <<'EOF'
import json, random, struct, sys
src, dst, mode = sys.argv[1:4]
data = bytearray(open(src, 'rb').read())
n = struct.unpack('<Q', data[:8])[0]
hdr = json.loads(data[8:8 + n])
base = 8 + n
rnd = random.Random(7)
def bf16(count):
    out = bytearray()
    for _ in range(count):
        out += struct.pack('<f', rnd.gauss(0, 0.02))[2:4]
    return out
if mode == 'retrain':
    a, b = hdr[sys.argv[4]]['data_offsets']
    data[base + a:base + b] = bf16((b - a) // 2)
elif mode == 'nudge':
    for i in range(base, len(data), 2):
        if rnd.random() < 0.5:
            data[i] ^= 1
elif mode == 'front':
    extra = 1 << 16
    new = {'aaa.front': {'dtype': 'BF16', 'shape': [extra // 2], 'data_offsets': [0, extra]}}
    for k, v in hdr.items():
        if k != '__metadata__':
            v = dict(v, data_offsets=[o + extra for o in v['data_offsets']])
        new[k] = v
    h = json.dumps(new).encode()
    h += b' ' * (-len(h) % 8)
    data = struct.pack('<Q', len(h)) + h + bf16(extra // 2) + data[base:]
open(dst, 'wb').write(data)
EOF
}

# A file older than the racy-timestamp window, so its stat cache entry (and
# with it the delta base for the next version at this path) is recorded.
settle() {
    touch -d '-1 minute' "$@"
}

stored_bytes() {
    cairn show "$1" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["stored_bytes"])'
}

# codecs IDX...: "codec count" lines over the entries of pack indexes
# (docs/formats.md: 96-byte entries from offset 24, codec at byte 56).
codecs() {
    python3 - "$@" <<'EOF'
import struct, sys, collections
c = collections.Counter()
for p in sys.argv[1:]:
    d = open(p, 'rb').read()
    n = struct.unpack('<I', d[8:12])[0]
    for i in range(n):
        c[d[24 + 96 * i + 56]] += 1
for k in sorted(c):
    print(k, c[k])
EOF
}

# first_base IDX...: short hex (12) of the first delta base recorded.
first_base() {
    python3 - "$@" <<'EOF'
import struct, sys
for p in sys.argv[1:]:
    d = open(p, 'rb').read()
    n = struct.unpack('<I', d[8:12])[0]
    for i in range(n):
        e = d[24 + 96 * i:24 + 96 * (i + 1)]
        if e[57] & 1:
            print(e[64:96].hex()[:12])
            sys.exit(0)
sys.exit(1)
EOF
}

setup() {
    cairn_setup
    cairn init >/dev/null
    # 8 tensors of 256 Ki bf16 weights: 4 MiB, each tensor 512 KiB raw.
    cairn-test-tool gen-safetensors w.safetensors 5 8 262144 bf16
    settle w.safetensors
    cairn add w.safetensors >/dev/null
    cairn commit m -m v1 >/dev/null
    cp w.safetensors v1.orig
}

@test "a version with one retrained tensor grows the store by about that tensor" {
    local before after v1 v2 per_tensor
    before=$(du -sb .cairn/store | cut -f1)
    st_edit v1.orig w.safetensors retrain layers.3.weight
    settle w.safetensors
    cairn add w.safetensors >/dev/null
    cairn commit m -m v2 >/dev/null
    after=$(du -sb .cairn/store | cut -f1)
    v1=$(stored_bytes m@v1)
    v2=$(stored_bytes m@v2)
    per_tensor=$((v1 / 8))
    echo "v1 stored $v1, v2 stored $v2, store grew $((after - before))" >&3
    # Compressed, the tensor is about 0.67 of its 512 KiB; the store grows
    # by it plus two small manifests, and nowhere near a second copy.
    [ "$v2" -gt $((per_tensor / 2)) ]
    [ "$v2" -lt $((per_tensor * 3 / 2)) ]
    [ $((after - before)) -lt $((per_tensor * 3 / 2 + 65536)) ]
    [ "$v2" -lt 524288 ]
    run cairn diff m@v1 m@v2 --tensors
    assert_success
    assert_output --partial "changed tensor layers.3.weight (BF16"
    refute_output --partial "layers.2.weight"
    cairn checkout m@v2 --to out >/dev/null
    cmp out/w.safetensors w.safetensors
}

@test "a tensor added at the front (every offset shifts) dedups the others" {
    local v1 v2
    st_edit v1.orig w.safetensors front
    settle w.safetensors
    run --separate-stderr cairn add w.safetensors
    assert_success
    [ -z "$stderr" ]
    cairn commit m -m v2 >/dev/null
    v1=$(stored_bytes m@v1)
    v2=$(stored_bytes m@v2)
    echo "v1 stored $v1, v2 stored $v2" >&3
    # New: the 64 KiB tensor and the header's chunk; everything else is shared.
    [ "$v2" -lt $((v1 / 10)) ]
    run cairn diff m@v1 m@v2 --tensors --json
    assert_success
    assert_output --partial '"aaa.front"'
    assert_output --partial '"added"'
    refute_output --partial '"layers.'
    cairn checkout m@v2 --to out >/dev/null
    cmp out/w.safetensors w.safetensors
    cairn checkout m@v1 --to out1 >/dev/null
    cmp out1/w.safetensors v1.orig
}

@test "a damaged header commits with a warning and restores bit-exact" {
    # Byte 40 is inside the JSON header: make it a character JSON rejects.
    python3 -c '
import sys
d = bytearray(open("v1.orig", "rb").read())
d[40:44] = b"\x01\xff\x00{"
open("w.safetensors", "wb").write(d)'
    run --separate-stderr cairn add w.safetensors
    assert_success
    [[ $stderr == *"damaged safetensors header"*"falling back to generic chunking"* ]]
    run cairn commit m -m damaged
    assert_success
    cairn checkout m@v2 --to out >/dev/null
    cmp out/w.safetensors w.safetensors
    run cairn fsck
    assert_success
}

@test "a fine-tune is stored as deltas; fsck reports a deleted or damaged base" {
    local -a old_idx new_idx
    local p base v1 v2
    old_idx=(.cairn/store/packs/*.idx)
    st_edit v1.orig w.safetensors nudge
    settle w.safetensors
    cairn add w.safetensors >/dev/null
    cairn commit m -m v2 >/dev/null
    for p in .cairn/store/packs/*.idx; do
        [[ " ${old_idx[*]} " == *" $p "* ]] || new_idx+=("$p")
    done
    # The pieces of v2 were stored as XOR deltas (codec 3) against v1's.
    run codecs "${new_idx[@]}"
    assert_line --regexp '^3 [0-9]+$'
    v1=$(stored_bytes m@v1)
    v2=$(stored_bytes m@v2)
    echo "v1 stored $v1, fine-tune v2 stored $v2" >&3
    [ "$v2" -lt $((v1 / 2)) ]
    run cairn diff m@v1 m@v2 --tensors
    assert_success
    assert_output --partial "of 262144 elements differ, max |diff|"
    base=$(first_base "${new_idx[@]}")

    # Damage every pack of v1 (the bases): the deltas cannot be rebuilt.
    mkdir saved
    for p in "${old_idx[@]}"; do
        cp -p "${p%.idx}.pack" "$p" saved/
        chmod u+w "${p%.idx}.pack"
        cairn-test-tool flip "${p%.idx}.pack" $(($(stat -c %s "${p%.idx}.pack") / 2))
    done
    run --separate-stderr cairn fsck
    assert_failure 3
    assert_output --partial "delta base"
    run --separate-stderr cairn checkout m@v2 --to bad
    assert_failure 1

    # Delete them: fsck names the missing base.
    for p in "${old_idx[@]}"; do
        rm -f "${p%.idx}.pack" "$p"
    done
    run --separate-stderr cairn fsck
    assert_failure 3
    assert_output --partial "delta base $base is missing"

    # Put them back: clean again, and v2 restores bit-exact.
    chmod -R u+w .cairn/store/packs
    cp -p saved/* .cairn/store/packs/
    run cairn fsck
    assert_success
    cairn checkout m@v2 --to out >/dev/null
    cmp out/w.safetensors w.safetensors
}

@test "gc keeps the base of a live delta after its version is gone" {
    local v1id
    st_edit v1.orig w.safetensors nudge
    settle w.safetensors
    cairn add w.safetensors >/dev/null
    cairn commit m -m v2 >/dev/null
    cp w.safetensors v2.orig
    # Forget v1: only its version row named its tree (the stat cache and the
    # stage name v2's file object by now).
    v1id=$(sqlite3 .cairn/cairn.db "SELECT hex FROM versions WHERE number = 1")
    [ -n "$v1id" ]
    sqlite3 .cairn/cairn.db "DELETE FROM versions WHERE number = 1"
    run cairn gc
    assert_success
    # v1's tree and file object went; its tensor pieces are v2's bases and stay.
    assert_output --regexp '^removed [1-9][0-9]* chunks?, kept'
    rm -f w.safetensors
    cairn checkout m@v2 --to out >/dev/null
    cmp out/w.safetensors v2.orig
    run cairn fsck
    assert_success
}

@test "a model written and added at once is still the delta base of its next version" {
    cairn init >/dev/null 2>&1 || true
    cairn-test-tool gen-safetensors fresh.safetensors 3 8 262144 bf16
    cairn add fresh.safetensors >/dev/null   # written this instant: racy, not trusted
    cairn commit fresh -m v1 >/dev/null
    cairn-test-tool flip fresh.safetensors 1000000
    run cairn add --json fresh.safetensors
    assert_success
    # One flipped byte in one piece: an XOR delta, not a new 1 MiB piece.
    [ "$(jq .bytes_stored <<<"$output")" -lt 65536 ]
}
