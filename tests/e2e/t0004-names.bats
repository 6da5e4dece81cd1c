#!/usr/bin/env bats
# t0004: hostile names from files: control characters are quoted in human
# output and exact in JSON; over-long tensor names; odd files in a directory.

load helpers

bats_require_minimum_version 1.5.0

setup() {
    cairn_setup
    cairn init >/dev/null
}

# st_with_names FILE NAME...: a safetensors file with one 4-element F32
# tensor per NAME (NAMEs are JSON string bodies, so "\u001b" is an ESC).
st_with_names() {
    python3 - "$@" <<'PY'
import json, struct, sys
path, names = sys.argv[1], [json.loads('"%s"' % n) for n in sys.argv[2:]]
hdr, off = {}, 0
for n in names:
    hdr[n] = {"dtype": "F32", "shape": [4], "data_offsets": [off, off + 16]}
    off += 16
h = json.dumps(hdr).encode()
h += b" " * (-len(h) % 8)
with open(path, "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h + bytes(off))
PY
}

# No byte below 0x20 but the line ends, no DEL, no C1 (0xc2 0x80-0x9f) in FILE.
no_raw_controls() {
    ! LC_ALL=C grep -qP '[\x00-\x09\x0b-\x1f\x7f]|\xc2[\x80-\x9f]' "$1"
}

@test "show, diff and status quote control characters; JSON keeps them exact" {
    st_with_names w.safetensors 'ok.weight' 'evil\u001b[2J\u001b[31m\nfake line' 'c1\u009bx'
    cairn add w.safetensors && cairn commit m -m one
    st_with_names w.safetensors 'ok.weight' 'evil\u001b[2J\u001b[31m\nfake line' 'other\u0007'
    cairn add w.safetensors && cairn commit m -m two
    cairn show m --tensors >show.out
    no_raw_controls show.out
    grep -qF 'evil\x1b[2J\x1b[31m\x0afake line' show.out
    grep -qF 'c1\xc2\x9bx' show.out || grep -qF 'other\x07' show.out
    cairn diff m@v1 m@v2 --tensors >diff.out
    no_raw_controls diff.out
    grep -qF 'tensor other\x07' diff.out
    # JSON is exact: jansson escapes, a reader gets the real name back.
    cairn show m --tensors --json >show.json
    jq -e '[.. | .name? // empty] | index("evil\u001b[2J\u001b[31m\nfake line")' show.json
    # status: an untracked file whose name has an escape sequence and a newline
    touch "$(printf 'bad\033[1;1Hname\nx')"
    cairn status >status.out
    no_raw_controls status.out
    grep -qF 'bad\x1b[1;1Hname\x0ax' status.out
    [ "$(cairn status --json | jq -r '.[] | select(.status == "untracked") | .path' |
        grep -c bad)" -ge 1 ]
    # an error message naming a ref
    run --separate-stderr cairn checkout "$(printf 'm@\033]0;pwned\007')"
    assert_failure
    [[ $stderr != *$'\033'* ]]
    [[ $stderr == *'\x1b]0;pwned\x07'* ]]
}

@test "invalid UTF-8 and bidi overrides are quoted as bytes, valid UTF-8 is kept" {
    touch "$(printf 'caf\xc3\xa9.bin')" "$(printf 'raw\xff.bin')" "$(printf 'rl\xe2\x80\xaeo.bin')"
    cairn status >status.out
    grep -qF "$(printf 'caf\xc3\xa9.bin')" status.out
    grep -qF 'raw\xff.bin' status.out
    grep -qF 'rl\xe2\x80\xaeo.bin' status.out
}

@test "a tensor name longer than a manifest can hold: add warns and chunks the file opaquely, commit works" {
    st_with_names long.safetensors "$(head -c 70000 /dev/zero | tr '\0' n)" 'short'
    st_with_names max.safetensors "$(head -c 65536 /dev/zero | tr '\0' m)"
    run --separate-stderr cairn add long.safetensors max.safetensors
    assert_success
    [[ $stderr == *"'long.safetensors': damaged safetensors header"*"70000 bytes long (at most 65536)"*"generic chunking"* ]]
    [[ $stderr != *max.safetensors* ]]
    run --separate-stderr cairn commit m -m long
    assert_success
    cairn checkout m --to out
    files_equal long.safetensors out/long.safetensors
    files_equal max.safetensors out/max.safetensors
    [ "$(cairn show m --tensors --json | jq '[.. | .name? // empty | length] | max')" = 65536 ]
    run cairn fsck
    assert_success
}

@test "add warns for each FIFO, socket or device it skips in a directory" {
    mkdir -p d/sub
    echo data > d/a.bin
    mkfifo d/pipe d/sub/pipe2
    python3 -c 'import socket; socket.socket(socket.AF_UNIX).bind("d/sock")'
    run --separate-stderr cairn add d
    assert_success
    [[ $stderr == *"warning: skipping named pipe (FIFO) '"*"d/pipe'"* ]]
    [[ $stderr == *"warning: skipping named pipe (FIFO) '"*"d/sub/pipe2'"* ]]
    [[ $stderr == *"warning: skipping socket '"*"d/sock'"* ]]
    cairn commit m -m one
    [ "$(cairn show m --json | jq -r '.file_list[].path')" = d/a.bin ]
}

@test "add refuses a file name that is not valid UTF-8, naming it" {
    mkdir d
    echo ok > d/good.bin
    echo bad > "$(printf 'd/caf\xe9.bin')"
    run --separate-stderr cairn add d
    assert_failure 2
    [[ $stderr == *"'d/caf\xe9.bin' is not a valid UTF-8 file name"* ]]
    run cairn status --json
    [ "$(jq '[.[] | select(.status == "staged")] | length' <<<"$output")" = 0 ]
    rm "$(printf 'd/caf\xe9.bin')"
    echo fine > "$(printf 'd/caf\xc3\xa9.bin')"
    cairn add d && cairn commit m -m utf8
    [ "$(cairn show m --json | jq -r '.file_list[].path' | sort | tr '\n' ' ')" = \
        "$(printf 'd/caf\xc3\xa9.bin d/good.bin ')" ]
}
