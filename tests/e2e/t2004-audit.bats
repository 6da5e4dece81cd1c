#!/usr/bin/env bats
# t2004: the audit log lists every mutating action and --verify finds edits.

load helpers

bats_require_minimum_version 1.5.0

setup() {
    cairn_setup
    cairn init >/dev/null
    echo one > w.bin
    cairn add w.bin >/dev/null
    cairn commit bert -m one >/dev/null
    echo two > w.bin
    cairn add w.bin >/dev/null
    cairn commit bert -m two >/dev/null
    cairn tag bert@v1 golden >/dev/null
    cairn alias set bert production bert@v1 --reason launch >/dev/null
}

@test "audit lists commit, tag and alias events in order with actor and details" {
    run cairn audit
    assert_success
    assert_output --regexp 'commit +bert@v1'
    assert_output --regexp 'tag +bert@golden'
    assert_output --regexp 'alias +bert@production'
    run cairn audit --json
    assert_success
    [ "$(jq -r '[.[].action] | join(",")' <<<"$output")" = "commit,commit,tag,alias" ]
    [ "$(jq -r '.[3].details.reason' <<<"$output")" = launch ]
    [ "$(jq -r '.[1].prev' <<<"$output")" = "$(jq -r '.[0].hash' <<<"$output")" ]
}

@test "audit --verify passes on an untouched log" {
    run cairn audit --verify
    assert_success
    assert_output "audit log intact: 4 entries"
    run cairn audit --verify --json
    assert_success
    [ "$(jq -r .ok <<<"$output")" = true ]
    [ "$(jq -r .entries <<<"$output")" = 4 ]
}

@test "an audit row edited with sqlite3 fails --verify (exit 3) naming the entry" {
    sqlite3 .cairn/cairn.db "UPDATE audit SET actor = 'mallory' WHERE seq = 3"
    run cairn audit --verify
    assert_failure 3
    assert_output --partial "entry 3 was modified"
    run --separate-stderr cairn audit --verify --json
    assert_failure 3
    [ "$(jq -r .ok <<<"$output")" = false ]
    [ "$(jq -r .bad_seq <<<"$output")" = 3 ]
}

@test "a deleted audit row in the middle fails --verify" {
    sqlite3 .cairn/cairn.db "DELETE FROM audit WHERE seq = 2"
    run cairn audit --verify
    assert_failure 3
    assert_output --partial "entry 2 is missing"
}

@test "the newest entries deleted with sqlite3 fail --verify: the audit head pins them" {
    grep -qx 'seq 4' .cairn/audit-head
    sqlite3 .cairn/cairn.db "DELETE FROM audit WHERE seq >= 3"
    run cairn audit --verify
    assert_failure 3
    assert_output "cairn: audit log broken: entries 3 to 4 are missing (the audit head pins entry 4)"
    run --separate-stderr cairn audit --verify --json
    assert_failure 3
    [ "$(jq -r .bad_seq <<<"$output")" = 3 ]
}

@test "the newest entry replaced by a forged one fails --verify" {
    # Delete entry 4 and let cairn append a different, well-linked entry 4.
    sqlite3 .cairn/cairn.db "DELETE FROM audit WHERE seq = 4"
    cairn alias set bert production bert@v2 --reason forged >/dev/null
    [ "$(cairn audit --json | jq length)" = 4 ]
    run cairn audit --verify
    assert_failure 3
    assert_output --partial "entry 4 is not the one the audit head pins"
}

@test "the head follows every writer; a log without a head file still verifies" {
    for i in 1 2 3 4; do
        cairn tag bert@v2 "t$i" &
    done
    wait
    grep -qx 'seq 8' .cairn/audit-head
    run cairn audit --verify
    assert_success
    assert_output "audit log intact: 8 entries"
    rm .cairn/audit-head
    run cairn audit --verify
    assert_success
    # The next change pins the head again.
    cairn tag bert@v1 again >/dev/null
    grep -qx 'seq 9' .cairn/audit-head
}

@test "audit bad input is a usage error" {
    run cairn audit --bogus
    assert_failure 2
    run cairn audit extra
    assert_failure 2
}
