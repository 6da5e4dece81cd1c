#!/usr/bin/env bats
# t1001: damaged stores are found and never produce a wrong file:
# flipped bytes, truncated packs, missing indexes, a damaged registry.

load helpers

bats_require_minimum_version 1.5.0

setup() {
    cairn_setup
    cairn init >/dev/null
    make_file w.bin 3M 11
    cairn add w.bin >/dev/null
    cairn commit m -m one >/dev/null
}

pack() {
    ls .cairn/store/packs/*.pack | head -n 1
}

@test "a clean repository passes fsck" {
    run cairn fsck
    assert_success
    assert_output "repository is clean"
}

@test "one flipped byte in a pack: fsck exits 3 naming it, checkout exits 1 and writes nothing" {
    local p size
    p=$(pack)
    size=$(stat -c %s "$p")
    chmod u+w "$p"
    cairn-test-tool flip "$p" $((size / 2))
    run --separate-stderr cairn fsck
    assert_failure 3
    assert_output --partial "problem:"
    run --separate-stderr cairn checkout m --to out
    assert_failure 1
    [[ $stderr == "cairn: cannot check out 'w.bin'"* ]]
    [ ! -e out/w.bin ]
    [ -z "$(ls -A out 2>/dev/null)" ]
}

@test "a truncated pack: fsck exits 3, checkout exits 1, nothing written" {
    local p
    p=$(pack)
    chmod u+w "$p"
    truncate -s $(($(stat -c %s "$p") / 3)) "$p"
    run cairn fsck
    assert_failure 3
    run cairn checkout m --to out
    assert_failure 1
    [ ! -e out/w.bin ]
}

@test "a deleted pack index: the chunks are reported missing" {
    rm -f .cairn/store/packs/*.idx
    run cairn fsck
    assert_failure 3
    assert_output --regexp "m@v1: tree [0-9a-f]{12}: chunk [0-9a-f]{12} not found"
    run cairn checkout m --to out
    assert_failure 1
}

@test "a damaged registry database is a one-line error" {
    chmod u+w .cairn/cairn.db
    printf 'garbage garbage garbage garbage garbage garbage garbage garbage' |
        dd of=.cairn/cairn.db bs=1 seek=0 conv=notrunc 2>/dev/null
    rm -f .cairn/cairn.db-wal .cairn/cairn.db-shm
    run --separate-stderr cairn log
    assert_failure
    [[ $stderr == "cairn: registry '"*"' is damaged"* ]]
    [ "$(printf '%s\n' "$stderr" | wc -l)" -eq 1 ]
}

@test "an edited version record no longer hashes to its id" {
    sqlite3 .cairn/cairn.db "UPDATE versions SET record = replace(record, 'one', 'two')"
    run cairn fsck
    assert_failure 3
    assert_output --partial "version record does not hash to its id"
}

@test "re-adding an unchanged file reads nothing (stat cache)" {
    touch -d '-5 seconds' w.bin
    cairn add w.bin >/dev/null  # first add after the touch records the cache
    run cairn add --json w.bin
    assert_success
    [ "$(jq .bytes_read <<<"$output")" = 0 ]
    [ "$(jq .files_unchanged <<<"$output")" = 1 ]
    # A change of content with the same size is noticed (mtime moves).
    make_file w.bin 3M 12
    run cairn add --json w.bin
    [ "$(jq .bytes_read <<<"$output")" = 3145728 ]
}

@test "gc removes what nothing references and keeps every version whole" {
    make_file junk.bin 2M 5
    cairn add junk.bin >/dev/null
    # Unstage by committing something else from another stage, then drop the stage.
    sqlite3 .cairn/cairn.db "DELETE FROM stage"
    run cairn gc --dry-run --json
    assert_success
    [ "$(jq .chunks_removed <<<"$output")" -gt 0 ]
    local before
    before=$(du -sb .cairn/store | cut -f1)
    run cairn gc
    assert_success
    [ "$(du -sb .cairn/store | cut -f1)" -lt "$before" ]
    cairn checkout m --to out
    files_equal w.bin out/w.bin
    run cairn fsck
    assert_success
}
