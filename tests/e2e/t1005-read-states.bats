#!/usr/bin/env bats
# How `add` reads tensor pieces (docs/design.md, Ingest): each worker reads
# its piece with pread() at the piece's offset, after whatever the reading
# thread's window already held of it. The chunks, the digest and the bytes
# restored must not depend on what the page cache held, where the tensors
# start, or whether packs could be written with O_DIRECT.
load helpers

setup() {
    cairn_setup
    # 16 tensors of 1572871 bf16 values (3 MiB + 14 bytes): four pieces
    # each (the last of 14 bytes), and every tensor after the first starts
    # off a 4 KiB block. 48 MiB: more than the reading thread's first window.
    cairn-test-tool gen-safetensors m.safetensors 7 16 1572871 bf16
    touch -d '-1 minute' m.safetensors
}

teardown() {
    cairn_teardown
}

# Drop the file's pages from the page cache (clean pages only, so sync first).
uncache() {
    sync "$1"
    dd if="$1" iflag=nocache count=0 status=none
}

# ingest DIR FILE [ENV...]: add + commit FILE, its pages dropped from the
# cache, into a fresh repository DIR.
ingest() {
    local dir=$1 file=$2
    shift 2
    mkdir "$dir"
    cairn -C "$dir" init >/dev/null
    cp --reflink=never "$file" "$dir/m.safetensors"
    touch -d '-1 minute' "$dir/m.safetensors"
    uncache "$dir/m.safetensors"
    (cd "$dir" && "$@" cairn add --json --no-progress m.safetensors) >"$dir.add.json"
    cairn -C "$dir" commit m -m v1 >/dev/null
}

@test "a cold file with unaligned tensors restores bit for bit, its digest b3sum's" {
    ingest cold m.safetensors
    run cairn -C cold show m --json
    assert_success
    [ "$(jq -r '.file_list[0].blake3' <<<"$output")" = "$(b3sum --no-names m.safetensors)" ]
    run cairn -C cold fsck
    assert_success
    cairn -C cold checkout m --to "$TEST_DIR/out"
    cmp m.safetensors out/m.safetensors
}

@test "cached, partly cached and uncached reads store the same chunks" {
    ingest cold m.safetensors
    # All of it in the cache.
    mkdir warm && cairn -C warm init >/dev/null
    cp m.safetensors warm/m.safetensors && touch -d '-1 minute' warm/m.safetensors
    cat warm/m.safetensors >/dev/null
    (cd warm && cairn add --json --no-progress m.safetensors) >warm.add.json
    cairn -C warm commit m -m v1 >/dev/null
    # Some of it: a few scattered MiB warmed, the rest cold.
    mkdir part && cairn -C part init >/dev/null
    cp m.safetensors part/m.safetensors && touch -d '-1 minute' part/m.safetensors
    uncache part/m.safetensors
    dd if=part/m.safetensors of=/dev/null bs=1M skip=1 count=2 status=none
    dd if=part/m.safetensors of=/dev/null bs=1M skip=29 count=3 status=none
    (cd part && cairn add --json --no-progress m.safetensors) >part.add.json
    cairn -C part commit m -m v1 >/dev/null
    # One chunk list, whichever way the bytes came in.
    for d in warm part; do
        [ "$(cairn -C $d show m --json | jq -c '.file_list')" = "$(cairn -C cold show m --json | jq -c '.file_list')" ]
        cairn -C $d fsck >/dev/null
    done
}

@test "packs written through the cache (CAIRN_NO_DIRECT_IO=1) hold the same chunks" {
    ingest cold m.safetensors
    ingest buffered m.safetensors env CAIRN_NO_DIRECT_IO=1
    cairn -C buffered fsck >/dev/null
    [ "$(cairn -C buffered show m --json | jq -c '.file_list')" = "$(cairn -C cold show m --json | jq -c '.file_list')" ]
}

@test "a repository on a file system without O_DIRECT (tmpfs) stores the same chunks" {
    [ -d /dev/shm ] && [ -w /dev/shm ] || skip "no writable /dev/shm"
    shm=$(mktemp -d /dev/shm/cairn-e2e.XXXXXXXX)
    cp m.safetensors "$shm/m.safetensors"
    ingest cold m.safetensors
    cairn -C "$shm" init >/dev/null
    touch -d '-1 minute' "$shm/m.safetensors"
    run bash -c "cd '$shm' && cairn add --json --no-progress m.safetensors"
    status_add=$status
    cairn -C "$shm" commit m -m v1 >/dev/null
    list=$(cairn -C "$shm" show m --json | jq -c '.file_list')
    fsck_status=0
    cairn -C "$shm" fsck >/dev/null || fsck_status=$?
    rm -rf "$shm"
    [ "$status_add" -eq 0 ]
    [ "$fsck_status" -eq 0 ]
    [ "$list" = "$(cairn -C cold show m --json | jq -c '.file_list')" ]
}

@test "a file truncated while add reads it: add fails naming it or stages all of it; fsck is clean" {
    cairn init >/dev/null
    # Truncate at a different moment of each add; whether a run notices
    # depends on timing, but one that does must fail with the file's name,
    # and the repository must stay clean either way.
    for i in $(seq 1 5); do
        cp m.safetensors n.safetensors
        uncache n.safetensors
        (sleep 0.0$i; truncate -s 5000000 n.safetensors) &
        run cairn add --no-progress n.safetensors
        wait
        if [ "$status" -ne 0 ]; then
            assert_output --partial "n.safetensors"
        fi
        run cairn fsck
        assert_success
    done
}
