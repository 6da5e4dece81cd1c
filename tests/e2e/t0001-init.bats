#!/usr/bin/env bats
# t0001: cairn init, repository discovery, -C and CAIRN_DIR, help pages.

load helpers

bats_require_minimum_version 1.5.0

@test "init creates .cairn with a store, a registry and a config" {
    run cairn init
    assert_success
    assert_output --partial "initialised empty cairn repository"
    [ -d .cairn/store ]
    [ -f .cairn/cairn.db ]
    [ -f .cairn/config ]
}

@test "init DIR creates the directory; a second init fails and keeps the first" {
    run cairn init sub/repo
    assert_success
    [ -d sub/repo/.cairn ]
    echo data > sub/repo/f
    (cd sub/repo && cairn add f && cairn commit m -m one)
    run --separate-stderr cairn init sub/repo
    assert_failure 1
    [ "$stderr" = "cairn: 'sub/repo' is already a cairn repository" ]
    run cairn -C sub/repo log
    assert_success
    assert_output --partial "m@v1"
}

@test "commands find the repository from a subdirectory, -C and CAIRN_DIR" {
    cairn init
    mkdir -p a/b
    echo x > a/b/f
    (cd a/b && cairn add f && cairn commit m -m from-subdir)
    run cairn -C a/b log
    assert_success
    assert_output --partial "from-subdir"
    CAIRN_DIR="$TEST_DIR/a" run cairn log
    assert_success
    assert_output --partial "from-subdir"
}

@test "outside a repository: one-line error, exit 1" {
    run --separate-stderr cairn log
    assert_failure 1
    [[ $stderr == "cairn: not a cairn repository"* ]]
    [ "$(printf '%s\n' "$stderr" | wc -l)" -eq 1 ]
}

@test "every command has --help and 'cairn help CMD' shows the same page" {
    local cmds
    cmds=$(cairn help | awk '/^  [a-z]/ {print $1}')
    [ -n "$cmds" ]
    for c in $cmds; do
        run cairn "$c" --help
        assert_success
        assert_output --partial "usage: cairn $c"
        local page="$output"
        run cairn help "$c"
        assert_success
        [ "$output" = "$page" ]
    done
}

@test "unknown commands and options are usage errors (exit 2)" {
    cairn init
    run --separate-stderr cairn frobnicate
    assert_failure 2
    [[ $stderr == "cairn: 'frobnicate' is not a cairn command"* ]]
    run --separate-stderr cairn log --bogus
    assert_failure 2
    [[ $stderr == *"unknown option '--bogus'"* ]]
}

@test "init and version --json; '--' ends options; help takes one command" {
    run cairn init --json r
    assert_success
    [ "$(jq -r .dir <<<"$output")" = "$(cd r && pwd -P)" ]
    [ "$(jq -r .cairn_dir <<<"$output")" = "$(cd r && pwd -P)/.cairn" ]
    [ -d r/.cairn ]
    run cairn init -- --json
    assert_success
    [ -d ./--json/.cairn ]
    run -2 cairn init a b
    assert_output "cairn: unexpected argument 'b' (see 'cairn init --help')"
    run cairn version --json
    assert_success
    [ "cairn $(jq -r .version <<<"$output")" = "$(cairn --version)" ]
    run -2 cairn version extra
    assert_output "cairn: unexpected argument 'extra' (see 'cairn version --help')"
    run -2 cairn help log extra
    assert_output "cairn: unexpected argument 'extra' (see 'cairn help --help')"
}
