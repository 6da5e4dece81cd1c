#!/usr/bin/env bats
# t1004: fsck --repair rebuilds lost or damaged pack indexes from their
# packs, drops corrupt chunks so that adding the file again restores them,
# names the versions it cannot restore, and deletes nothing.

load helpers

bats_require_minimum_version 1.5.0

setup() {
    cairn_setup
    cairn init >/dev/null
    make_file w.bin 3M 11
    cairn add w.bin >/dev/null
    cairn commit m -m one >/dev/null
}

# The pack that holds the file's data (the largest).
big_pack() {
    ls -S .cairn/store/packs/*.pack | head -n 1
}

@test "a clean repository: --repair changes nothing and exits 0" {
    local before
    before=$(ls -l .cairn/store/packs)
    run cairn fsck --repair
    assert_success
    assert_output "repository is clean"
    [ "$(ls -l .cairn/store/packs)" = "$before" ]
    [ ! -e .cairn/store/damaged ]
}

@test "deleted pack indexes are rebuilt from the packs, under the same names" {
    local names
    names=$(ls .cairn/store/packs)
    rm -f .cairn/store/packs/*.idx
    run cairn fsck
    assert_failure 3
    run cairn fsck --repair
    assert_success
    assert_output --partial "repaired: rebuilt the index of 'packs/pack-"
    assert_output --partial "repository is clean"
    refute_output --partial "lost:"
    [ "$(ls .cairn/store/packs)" = "$names" ]
    cairn checkout m --to out >/dev/null
    files_equal out/w.bin w.bin
    run cairn audit
    assert_output --partial "fsck.repair"
}

@test "a damaged index is rebuilt; the damaged file is kept aside" {
    local idx
    idx=$(ls -S .cairn/store/packs/*.idx | head -n 1)
    chmod u+w "$idx"
    cairn-test-tool flip "$idx" 40
    run cairn fsck
    assert_failure 3
    run cairn fsck --repair
    assert_success
    assert_output --partial "repaired: rebuilt the index of"
    cairn checkout m --to out >/dev/null
    files_equal out/w.bin w.bin
}

@test "a flipped byte in a pack: the chunk is dropped, the version reported lost, re-adding restores it" {
    local p size
    p=$(big_pack)
    size=$(stat -c %s "$p")
    chmod u+w "$p"
    cairn-test-tool flip "$p" $((size / 2))
    run --separate-stderr cairn fsck --repair
    assert_failure 3
    assert_output --partial "repaired: dropped unreadable chunk"
    assert_output --partial "repaired: cleared the stat cache"
    assert_output --partial "lost: m@v1: 'w.bin': 1 chunk missing"
    assert_output --regexp "problem: m@v1:w.bin: chunk [0-9a-f]{12} is missing"
    # Nothing deleted: the old pack and idx are in store/damaged/.
    [ -e ".cairn/store/damaged/$(basename "$p")" ]
    [ -e ".cairn/store/damaged/$(basename "${p%.pack}.idx")" ]
    # The damaged chunk is missing now, never misread.
    run cairn checkout m --to out
    assert_failure 1
    [ ! -e out/w.bin ]
    # The same file, added again (unchanged: the cleared stat cache makes add read it).
    cairn add w.bin >/dev/null
    run cairn fsck
    assert_success
    cairn checkout m --to out2 >/dev/null
    files_equal out2/w.bin w.bin
}

@test "a truncated pack: the chunks before the cut are kept, the rest reported lost" {
    local p
    p=$(big_pack)
    chmod u+w "$p"
    truncate -s $(($(stat -c %s "$p") / 2)) "$p"
    run cairn fsck --repair
    assert_failure 3
    assert_output --partial "repaired: copied the sound chunks of"
    assert_output --partial "lost: m@v1: 'w.bin': "
    # The rewritten pack holds about half of the file's bytes.
    [ "$(stat -c %s "$(big_pack)")" -gt 1000000 ]
    cairn add w.bin >/dev/null
    run cairn fsck
    assert_success
    cairn checkout m --to out >/dev/null
    files_equal out/w.bin w.bin
}

@test "an index without its pack is moved aside" {
    local p
    p=$(big_pack)
    mv "$p" "$BATS_TEST_TMPDIR/saved.pack"
    run cairn fsck --repair
    assert_failure 3
    assert_output --partial "repaired: moved 'packs/$(basename "${p%.pack}.idx")' to 'damaged/"
    assert_output --partial "lost: m@v1"
    # Putting the pack back (it was only misplaced) and repairing again restores everything.
    mv "$BATS_TEST_TMPDIR/saved.pack" "$p"
    run cairn fsck --repair
    assert_success
    cairn checkout m --to out >/dev/null
    files_equal out/w.bin w.bin
}

@test "--repair --json lists what was repaired and what is lost" {
    rm -f .cairn/store/packs/*.idx
    run cairn fsck --repair --json
    assert_success
    [ "$(jq -r .clean <<<"$output")" = true ]
    [ "$(jq -r '.repaired | length' <<<"$output")" -ge 1 ]
    [ "$(jq -r '.lost | length' <<<"$output")" = 0 ]
}

@test "fsck --help documents --repair" {
    run cairn fsck --help
    assert_success
    assert_output --partial "--repair"
}

@test "kill -9 during --repair: the next --repair finishes, other versions never lose a chunk" {
    local p size i rounds
    make_file x.bin 2M 12
    cairn add x.bin >/dev/null
    cairn commit other -m two >/dev/null
    rounds=$(stress_iters)
    ((rounds > 10)) && rounds=10
    for ((i = 1; i <= rounds; i++)); do
        # Damage the pack that holds w.bin's data, if it is still there.
        p=$(ls -S .cairn/store/packs/*.pack | head -n 1)
        size=$(stat -c %s "$p")
        chmod u+w "$p"
        cairn-test-tool flip "$p" $((size / 2 + i))
        kill_at_random cairn fsck --repair
        cairn fsck --repair >/dev/null || true
        # The other version is whole without any help.
        rm -rf out
        cairn checkout other --to out >/dev/null
        files_equal out/x.bin x.bin
        # Adding the damaged file again restores the first.
        cairn add w.bin >/dev/null
        run cairn fsck
        assert_success
        rm -rf out
        cairn checkout m --to out >/dev/null
        files_equal out/w.bin w.bin
    done
}
