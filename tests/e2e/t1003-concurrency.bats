#!/usr/bin/env bats
# t1003: several cairn processes on one repository at once serialise where
# they must and lose nothing (SPEC §4).

load helpers

bats_require_minimum_version 1.5.0

writer() {
    local k=$1 j
    for j in 1 2 3; do
        make_file "w$k/model.bin" $((200 + k * 50 + j))K $((k * 100 + j))
        cairn add --model "p$k" "w$k" >/dev/null || return 1
        cairn commit "p$k" -m "p$k-$j" >/dev/null || return 1
        b3sum --no-names "w$k/model.bin" > "expect-p$k-$j"
    done
}

@test "4 processes committing at once, with a gc running: all 12 versions, fsck clean" {
    cairn init >/dev/null
    local pids=() k
    for k in 1 2 3 4; do
        writer "$k" &
        pids+=($!)
    done
    (sleep 0.2; cairn gc >/dev/null) &
    pids+=($!)
    for k in "${pids[@]}"; do
        wait "$k" || fail "a writer failed"
    done
    run cairn log --json
    assert_success
    [ "$(jq length <<<"$output")" -eq 12 ]
    for k in 1 2 3 4; do
        for j in 1 2 3; do
            rm -rf out
            cairn checkout "p$k@v$j" --to out >/dev/null
            [ "$(b3sum --no-names "out/w$k/model.bin")" = "$(cat "expect-p$k-$j")" ] ||
                fail "p$k@v$j does not restore what was committed"
        done
    done
    run cairn fsck
    assert_success
}

@test "two processes committing the same model number their versions without gaps" {
    cairn init >/dev/null
    (for i in 1 2 3 4 5; do echo "a$i" > a.txt; cairn add --model m a.txt >/dev/null && cairn commit m -m "a$i" >/dev/null 2>&1 || true; done) &
    local p1=$!
    (for i in 1 2 3 4 5; do echo "b$i" > b.txt; cairn add --model m b.txt >/dev/null && cairn commit m -m "b$i" >/dev/null 2>&1 || true; done) &
    local p2=$!
    wait "$p1"; wait "$p2"
    run cairn log m --json
    # Commits may find the other's file already committed: some commits have
    # nothing staged. Every landed version has a unique number 1..N, no gaps.
    local n
    n=$(jq length <<<"$output")
    [ "$n" -ge 2 ]
    [ "$(jq -r '[.[].number] | sort | join(",")' <<<"$output")" = "$(seq -s, 1 "$n")" ]
    run cairn fsck
    assert_success
}
