#!/usr/bin/env bats
# t1002: crash safety (SPEC §4). SIGKILL `cairn add`, `cairn commit` and
# `cairn gc` at random moments; after every kill `cairn fsck` must call the
# repository clean, and at the end every version that was committed must
# restore bit for bit. `make check` runs 50 rounds, `make stress` 1000.

load helpers

bats_require_minimum_version 1.5.0

check_fsck() {
    run cairn fsck
    if [ "$status" -ne 0 ]; then
        fail "fsck after killing $1 in round $2: $output"
    fi
}

@test "kill -9 during add, commit and gc: fsck clean, every committed version restores" {
    local rounds i size
    rounds=$(stress_iters)
    cairn init >/dev/null
    declare -A expect
    for ((i = 1; i <= rounds; i++)); do
        size=$(((i * 7919) % 3000 + 1))K
        make_file f.bin "$size" "$i"
        make_file "d/part$((i % 4)).bin" $(((i * 131) % 700 + 1))K $((i + 1000))
        kill_at_random cairn add f.bin d
        check_fsck add "$i"
        expect["r$i"]="$(b3sum --no-names f.bin)"
        cairn add f.bin >/dev/null
        kill_at_random cairn commit m -m "r$i"
        check_fsck commit "$i"
        if ((i % 5 == 0)); then
            kill_at_random cairn gc
            check_fsck gc "$i"
        fi
    done
    # One last clean commit so at least one version surely exists.
    expect[final]="$(b3sum --no-names f.bin)"
    cairn add f.bin >/dev/null
    cairn commit m -m final >/dev/null
    cairn gc >/dev/null
    check_fsck final-gc "$rounds"

    local versions n=0 msg ref
    versions=$(cairn log m --json | jq -r '.[] | "\(.ref) \(.message)"')
    while read -r ref msg; do
        rm -rf out
        cairn checkout "$ref" --to out >/dev/null
        [ "$(b3sum --no-names out/f.bin)" = "${expect[$msg]}" ] ||
            fail "$ref ($msg) does not restore what was committed"
        n=$((n + 1))
    done <<<"$versions"
    [ "$n" -ge 1 ]
}
