#!/usr/bin/env bats
# How `add` reads tensor pieces (docs/design.md, Ingest): a piece the page
# cache holds whole is copied from it, any other is read with O_DIRECT in
# aligned blocks around it. Both must give the same chunks, digest and bytes
# back, whatever the alignment of the tensors in the file, and `add --json`
# says how many bytes went past the cache.
load helpers

setup() {
    cairn_setup
    # 16 tensors of 1572871 bf16 values (3 MiB + 14 bytes): three 1 MiB
    # pieces each, and every tensor after the first starts off a 4 KiB
    # block. 48 MiB: more than the first read of the header and the
    # kernel's readahead after it bring into the cache.
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

# ingest DIR FILE [ENV...]: add + commit FILE into a fresh repository DIR;
# leaves add's --json output in $TEST_DIR/DIR.add.json.
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

direct_bytes() {
    jq -r .bytes_direct "$1.add.json"
}

@test "a cold file is read past the cache and restores bit for bit" {
    ingest cold m.safetensors
    [ "$(direct_bytes cold)" -gt 0 ]
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
    [ "$(direct_bytes warm)" -eq 0 ]
    # Some of it: a few scattered MiB warmed, the rest cold.
    mkdir part && cairn -C part init >/dev/null
    cp m.safetensors part/m.safetensors && touch -d '-1 minute' part/m.safetensors
    uncache part/m.safetensors
    dd if=part/m.safetensors of=/dev/null bs=1M skip=1 count=2 status=none
    dd if=part/m.safetensors of=/dev/null bs=1M skip=29 count=3 status=none
    (cd part && cairn add --json --no-progress m.safetensors) >part.add.json
    cairn -C part commit m -m v1 >/dev/null
    total=$(stat -c %s m.safetensors)
    [ "$(direct_bytes part)" -gt 0 ]
    [ "$(direct_bytes part)" -lt "$total" ]
    # One chunk list, whichever way the bytes came in.
    for d in warm part; do
        [ "$(cairn -C $d show m --json | jq -c '.file_list')" = "$(cairn -C cold show m --json | jq -c '.file_list')" ]
        cairn -C $d fsck >/dev/null
    done
}

@test "CAIRN_NO_DIRECT_IO=1 reads through the cache, with the same result" {
    ingest cold m.safetensors
    ingest buffered m.safetensors env CAIRN_NO_DIRECT_IO=1
    [ "$(direct_bytes buffered)" -eq 0 ]
    [ "$(cairn -C buffered show m --json | jq -c '.file_list')" = "$(cairn -C cold show m --json | jq -c '.file_list')" ]
}

@test "a file system without O_DIRECT (tmpfs) reads through the cache" {
    [ -d /dev/shm ] && [ -w /dev/shm ] || skip "no writable /dev/shm"
    shm=$(mktemp -d /dev/shm/cairn-e2e.XXXXXXXX)
    cp m.safetensors "$shm/m.safetensors"
    ingest cold m.safetensors
    cairn -C "$shm" init >/dev/null
    touch -d '-1 minute' "$shm/m.safetensors"
    run bash -c "cd '$shm' && cairn add --json --no-progress m.safetensors"
    status_add=$status
    direct=$(jq -r .bytes_direct <<<"$output")
    cairn -C "$shm" commit m -m v1 >/dev/null
    list=$(cairn -C "$shm" show m --json | jq -c '.file_list')
    rm -rf "$shm"
    [ "$status_add" -eq 0 ]
    [ "$direct" -eq 0 ]
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
