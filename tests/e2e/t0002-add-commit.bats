#!/usr/bin/env bats
# t0002: add, status, commit, log, show and their bad input.

load helpers

bats_require_minimum_version 1.5.0

setup() {
    cairn_setup
    cairn init >/dev/null
}

@test "add + commit + log + show: a version with files, sizes and b3sum digests" {
    make_file model.bin 3M 1
    echo '{"lr": 0.01, "opt": "adam", "amp": true}' > params.json
    printf 'accuracy: 0.91\nloss: 0.3\n' > metrics.yaml
    run cairn add model.bin params.json
    assert_success
    assert_output --partial "staged 2 files"
    run cairn commit bert -m "first model" --params params.json --metrics metrics.yaml
    assert_success
    assert_output --regexp '^\[bert v1 [0-9a-f]{12}\] first model'
    run cairn log bert
    assert_success
    assert_output --partial "bert@v1"
    run cairn show bert
    assert_success
    assert_output --partial "version  bert@v1 (model)"
    assert_output --partial "$(b3sum --no-names model.bin | cut -c1-16)  model.bin"
    assert_output --regexp 'lr +0.01'
    assert_output --regexp 'opt +adam'
    assert_output --regexp 'amp +true'
    assert_output --regexp 'accuracy +0.91'
    run cairn show bert --json
    assert_success
    [ "$(jq -r .params.opt <<<"$output")" = adam ]
    [ "$(jq -r .metrics.accuracy <<<"$output")" = 0.91 ]
    [ "$(jq -r '.file_list[] | select(.path=="model.bin") | .blake3' <<<"$output")" = "$(b3sum --no-names model.bin)" ]
}

@test "versions number per model; the parent is the previous version" {
    echo one > f
    cairn add f && cairn commit m -m one
    echo two > f
    cairn add f && cairn commit m -m two
    run cairn show m@v2 --json
    assert_success
    local v1
    v1=$(cairn show m@v1 --json | jq -r .id)
    [ "$(jq -r .parent <<<"$output")" = "$v1" ]
    [ "$(jq -r '.lineage[0].kind' <<<"$output")" = parent ]
    run cairn log m -n 1
    assert_success
    assert_output --partial "m@v2"
    refute_output --partial "m@v1"
}

@test "commit records the git commit of the working tree and whether it is dirty" {
    git init -q . && git config user.email t@e && git config user.name t
    echo code > train.py && git add train.py && git commit -qm code
    echo w > weights
    cairn add weights && cairn commit m -m clean
    [ "$(cairn show m --json | jq -r .code_commit)" = "$(git rev-parse HEAD)" ]
    [ "$(cairn show m --json | jq -r .code_dirty)" = false ]
    echo change >> train.py
    echo w2 > weights
    cairn add weights && cairn commit m -m dirty
    [ "$(cairn show m --json | jq -r .code_dirty)" = true ]
    cairn add weights && run cairn commit m -m explicit --code-commit abcdef1
    assert_success
    [ "$(cairn show m --json | jq -r .code_commit)" = abcdef1 ]
}

@test "status: staged, modified, deleted, untracked, .cairnignore" {
    echo a > a; echo b > b; echo c > c; echo tmp > scratch.tmp
    echo '*.tmp' > .cairnignore
    cairn add a b
    cairn commit m -m one
    cairn add c
    echo changed > a
    rm b
    run cairn status
    assert_success
    assert_line --regexp '^staged .* c$'
    assert_line --regexp '^modified .* a$'
    assert_line --regexp '^deleted .* b$'
    assert_line --regexp '^untracked .* \.cairnignore$'
    refute_output --partial scratch.tmp
    run cairn status --json
    assert_success
    [ "$(jq -r '.[] | select(.path=="c") | .status' <<<"$output")" = staged ]
}

@test "add --model keeps separate stages per model" {
    echo a > a; echo b > b
    cairn add --model ma a
    cairn add --model mb b
    cairn commit mb -m b-only
    run cairn show mb --json
    [ "$(jq -r '.file_list | map(.path) | join(",")' <<<"$output")" = b ]
    cairn commit ma -m a-only
    [ "$(cairn show ma --json | jq -r '.file_list | map(.path) | join(",")')" = a ]
}

@test "datasets: --kind dataset and --data lineage" {
    printf 'x,label\n1,0\n' > train.csv
    cairn add train.csv && cairn commit digits --kind dataset -m data
    echo w > w.bin
    cairn add w.bin
    run cairn commit clf -m model --data digits
    assert_success
    run cairn show clf --json
    [ "$(jq -r '.lineage[] | select(.kind=="data") | .ref' <<<"$output")" = digits@v1 ]
    # A model is not a dataset, and a dataset stays a dataset.
    echo w2 > w.bin; cairn add w.bin
    run --separate-stderr cairn commit clf2 -m x --data clf
    assert_failure 2
    [[ $stderr == *"is a model, not a dataset"* ]]
    run --separate-stderr cairn commit digits -m x
    assert_failure 2
    [[ $stderr == *"is a dataset; commit it with --kind dataset"* ]]
}

@test "bad input to add: one-line errors, nothing staged" {
    run --separate-stderr cairn add missing.bin
    assert_failure 1
    [ "$stderr" = "cairn: cannot open 'missing.bin': No such file or directory" ]
    run --separate-stderr cairn add /etc/hostname
    assert_failure 2
    [[ $stderr == "cairn: '/etc/hostname' is outside the repository"* ]]
    run --separate-stderr cairn add .cairn/config
    assert_failure 2
    [[ $stderr == *"is inside .cairn"* ]]
    ln -s /etc/hostname link
    run --separate-stderr cairn add link
    assert_failure 2
    [[ $stderr == *"is a symbolic link"* ]]
    run --separate-stderr cairn add --model 'Bad Name' link
    assert_failure 2
    [[ $stderr == "cairn: invalid model name 'Bad Name'"* ]]
    if [ "$(id -u)" != 0 ]; then
        echo secret > unreadable && chmod 000 unreadable
        run --separate-stderr cairn add unreadable
        assert_failure 1
        [[ $stderr == *"Permission denied"* ]]
    fi
    run cairn status --json
    [ "$(jq '[.[] | select(.status=="staged")] | length' <<<"$output")" = 0 ]
}

@test "bad input to commit: names, messages, empty stage, bad params files" {
    run --separate-stderr cairn commit m -m x
    assert_failure 2
    [ "$stderr" = "cairn: nothing staged for 'm'; use 'cairn add' first" ]
    echo a > a && cairn add a
    run --separate-stderr cairn commit 'UPPER' -m x
    assert_failure 2
    [[ $stderr == "cairn: invalid model name 'UPPER': use 1-64 of a-z 0-9 . _ -"* ]]
    run --separate-stderr cairn commit m
    assert_failure 2
    run --separate-stderr cairn commit m -m x --kind weights
    assert_failure 2
    echo '{"nested": {"a": 1}}' > p.json
    run --separate-stderr cairn commit m -m x --params p.json
    assert_failure 2
    [[ $stderr == *"p.json"* ]]
    run --separate-stderr cairn commit m -m x --params nope.json
    assert_failure
    [[ $stderr == *"nope.json"* ]]
    run --separate-stderr cairn commit m -m x --parent nosuch
    assert_failure 1
    [ "$stderr" = "cairn: no model named 'nosuch'" ]
    # Nothing was committed by any of that, and the stage is intact.
    run cairn commit m -m finally
    assert_success
    assert_output --partial "[m v1 "
}

@test "add takes options anywhere; '--' ends them" {
    cairn init r >/dev/null && cd r
    make_file f.bin 10K 1
    make_file ./--json 1K 2
    run cairn add f.bin --json
    assert_success
    [ "$(jq -r .files <<<"$output")" = 1 ]
    run cairn add -- --json
    assert_success
    assert_output --partial "staged 1 file"
    run -2 cairn add --model
    assert_output "cairn: --model needs a value (NAME) (see 'cairn add --help')"
    run -2 cairn add
    assert_output "cairn: missing PATH (one or more) (see 'cairn add --help')"
}

@test "commit and log take options anywhere; '--' ends them; usage errors name the option" {
    cairn init r >/dev/null && cd r
    make_file f.bin 10K 1
    cairn add f.bin >/dev/null
    run cairn commit m --json -m one
    assert_success
    [ "$(jq -r .ref <<<"$output")" = m@v1 ]
    make_file f.bin 10K 2
    cairn add f.bin >/dev/null
    run cairn commit -m two -- m
    assert_success
    assert_output --partial "[m v2 "
    run cairn log m -n 1
    assert_success
    local page="$output"
    [ "$(wc -l <<<"$page")" -eq 1 ]
    [[ $page == "m@v2 "* ]]
    run cairn log -n 1 m
    [ "$output" = "$page" ]
    run cairn log --max-count=1 -- m
    [ "$output" = "$page" ]
    run -2 cairn log -- -n
    assert_output --partial "invalid model name '-n'"
    run -2 cairn commit -m three -- m -m
    assert_output "cairn: unexpected argument '-m' (see 'cairn commit --help')"
    run -2 cairn commit m -m
    assert_output "cairn: --message needs a value (MSG) (see 'cairn commit --help')"
    run -2 cairn commit m
    assert_output "cairn: a message is required (-m MSG) (see 'cairn commit --help')"
    run -2 cairn commit -m three
    assert_output "cairn: missing NAME (see 'cairn commit --help')"
    run -2 cairn log -n
    assert_output "cairn: --max-count needs a value (N) (see 'cairn log --help')"
    run -2 cairn log m -n 0
    assert_output "cairn: -n takes a positive number, not '0' (see 'cairn log --help')"
    run cairn log m
    [ "$(wc -l <<<"$output")" -eq 2 ]
}
