#!/usr/bin/env bats
# t0005: shell completion (cairn completion bash|zsh) through bash's own
# completion machinery: commands, subcommands, options from the commands'
# tables, and references from the repository.

load helpers

bats_require_minimum_version 1.5.0

setup() {
    cairn_setup
    cairn init >/dev/null
    make_file m.bin 1K 1
    cairn add m.bin >/dev/null
    cairn commit bert -m one >/dev/null
    cairn tag bert@v1 paper >/dev/null
    cairn alias set bert production bert@v1 >/dev/null
}

teardown() {
    cairn_teardown
}

# complete WORD...: what bash offers for the last word of `cairn WORD...`.
complete_words() {
    bash -c 'source <(cairn completion bash)
        COMP_WORDS=(cairn "$@"); COMP_CWORD=$#; COMP_LINE="cairn $*"; COMP_POINT=${#COMP_LINE}
        _cairn; printf "%s\n" "${COMPREPLY[@]}"' complete "$@"
}

@test "bash: the script registers _cairn and completes commands and subcommands" {
    run bash -c 'source <(cairn completion bash) && complete -p cairn'
    assert_output "complete -o bashdefault -o default -F _cairn cairn"
    run complete_words ro
    assert_output $'rollback\nrollout'
    run complete_words alias ""
    assert_output $'set\nlist\nhistory'
}

@test "options come from the command's table" {
    run complete_words log --
    assert_line --max-count
    assert_line --json
    assert_line --help
    run complete_words add --m
    assert_output --model
}

@test "references come from the repository where a REF or NAME is taken" {
    run complete_words gate bert@
    assert_line bert@v1
    assert_line bert@paper
    assert_line bert@production
    run complete_words promote bert@v1 --to ""
    assert_output ""
    run complete_words gate b
    assert_output bert
    # Outside a repository there is nothing to offer, and no error.
    cd /
    run complete_words gate b
    assert_success
    assert_output ""
}

@test "zsh gets the same completion through bashcompinit; a bad shell is a usage error" {
    run cairn completion zsh
    assert_success
    assert_line --partial "bashcompinit"
    assert_line --partial "complete -o default -o bashdefault -F _cairn cairn"
    run -2 cairn completion fish
    assert_output --partial "unknown shell 'fish'"
}
