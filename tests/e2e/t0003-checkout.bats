#!/usr/bin/env bats
# t0003: checkout round trips bit for bit, --to, --include, refs, tags, diff.

load helpers

bats_require_minimum_version 1.5.0

setup() {
    cairn_setup
    cairn init >/dev/null
}

@test "round trip: sizes 0, 1, chunk bounds +-1, 1 MiB pieces +-1, 64 MiB" {
    local sizes=(0 1 16383 16384 16385 65535 65536 65537 262143 262144 262145
                 1048575 1048576 1048577 67108864)
    mkdir in
    for s in "${sizes[@]}"; do make_file "in/f$s" "$s" "$s"; done
    cairn-test-tool gen-safetensors in/model.safetensors 7 5 300000 bf16
    cairn add in
    cairn commit m -m sizes
    run cairn checkout m --to out
    assert_success
    assert_output --partial "all verified"
    for s in "${sizes[@]}"; do files_equal "in/f$s" "out/in/f$s"; done
    files_equal in/model.safetensors out/in/model.safetensors
    run cairn fsck
    assert_success
}

@test "checkout --force into the working tree restores overwritten files; modes are kept" {
    make_file w.bin 200K 3
    printf '#!/bin/sh\necho hi\n' > run.sh && chmod 755 run.sh
    cairn add w.bin run.sh && cairn commit m -m one
    cp w.bin keep.bin
    make_file w.bin 200K 4
    run cairn checkout m --force
    assert_success
    files_equal w.bin keep.bin
    [ -x run.sh ]
}

@test "checkout refuses to overwrite modified or untracked files; --force overwrites" {
    make_file w.bin 200K 3
    make_file u.bin 10K 5
    echo same > same.txt
    cairn add w.bin u.bin same.txt && cairn commit m -m one
    cp w.bin w.orig
    rm u.bin && cairn add w.bin same.txt && cairn commit m -m two
    # A tracked file edited since (status: modified).
    make_file w.bin 200K 4
    cp w.bin w.mine
    run cairn status
    assert_output --regexp 'modified +m +.*w.bin'
    run --separate-stderr cairn checkout m@v1
    assert_failure 1
    [[ $stderr == *"would overwrite 1 file"*"'w.bin'"*"--force"* ]]
    files_equal w.bin w.mine
    [ ! -e u.bin ]
    # An untracked file where the checkout would write (v1 has u.bin).
    make_file w.bin 200K 3
    make_file u.bin 10K 6
    cp u.bin u.mine
    run --separate-stderr cairn checkout m@v1
    assert_failure 1
    [[ $stderr == *"'u.bin'"* ]]
    [[ $stderr != *"'w.bin'"* ]]
    files_equal u.bin u.mine
    # Also into a --to directory.
    mkdir out && cp u.mine out/u.bin
    run --separate-stderr cairn checkout m@v1 --to out
    assert_failure 1
    [[ $stderr == *"'u.bin'"* ]]
    run cairn checkout m@v1 --force
    assert_success
    files_equal w.bin w.orig
    [ "$(b3sum --no-names u.bin)" != "$(b3sum --no-names u.mine)" ]
}

@test "checkout over unmodified files or files of another version is fine" {
    make_file w.bin 200K 3
    echo one > f.txt
    cairn add w.bin f.txt && cairn commit m -m one
    make_file w.bin 200K 4
    echo two > f.txt
    cairn add w.bin f.txt && cairn commit m -m two
    run cairn checkout m
    assert_success
    # Back to v1: the files on disk are v2's, kept by the repository.
    run cairn checkout m@v1
    assert_success
    [ "$(cat f.txt)" = one ]
    # And forward again: v1's content (status says modified) is kept too.
    run cairn checkout m@v2
    assert_success
    [ "$(cat f.txt)" = two ]
    # A staged but uncommitted content is kept as well.
    echo three > f.txt && cairn add f.txt
    run cairn checkout m@v1
    assert_success
    [ "$(cat f.txt)" = one ]
    cairn checkout m@v1 --to out && cairn checkout m@v2 --to out
    [ "$(cat out/f.txt)" = two ]
}

@test "checkout applies the umask to stored modes; add stores only 0644 or 0755" {
    printf '#!/bin/sh\n' > run.sh && chmod 0754 run.sh
    echo data > d.bin && chmod 0664 d.bin
    printf 'x\n' > grp.sh && chmod 0650 grp.sh
    cairn add run.sh d.bin grp.sh && cairn commit m -m one
    run cairn show m --json
    [ "$(jq -r '.file_list[] | "\(.path) \(.mode)"' <<<"$output" | sort | tr '\n' ' ')" = \
        "d.bin 644 grp.sh 755 run.sh 755 " ]
    (umask 077 && cairn checkout m --to o77)
    [ "$(stat -c %a o77/run.sh o77/d.bin | tr '\n' ' ')" = "700 600 " ]
    (umask 022 && cairn checkout m --to o22)
    [ "$(stat -c %a o22/run.sh o22/d.bin | tr '\n' ' ')" = "755 644 " ]
}

@test "--include takes only matching paths; a directory name takes its subtree" {
    mkdir -p a/b c
    echo 1 > a/b/x.bin; echo 2 > a/y.txt; echo 3 > c/z.bin
    cairn add a c && cairn commit m -m tree
    run cairn checkout m --to o1 --include '*.txt' --include 'c/*'
    assert_success
    [ -f o1/c/z.bin ] && [ ! -e o1/a/b/x.bin ] && [ ! -e o1/a/y.txt ]
    run cairn checkout m --to o2 --include a
    assert_success
    [ -f o2/a/b/x.bin ] && [ -f o2/a/y.txt ] && [ ! -e o2/c ]
    run --separate-stderr cairn checkout m --to o3 --include 'nothing*'
    assert_failure 1
    [[ $stderr == *"matches --include"* ]]
}

@test "refs: NAME, NAME@vN, NAME@TAG, id prefixes; tags are immutable" {
    echo one > f && cairn add f && cairn commit m -m one
    echo two > f && cairn add f && cairn commit m -m two
    local id1
    id1=$(cairn show m@v1 --json | jq -r .id)
    cairn tag m@v1 golden
    cairn checkout m@golden --to t1 && [ "$(cat t1/f)" = one ]
    cairn checkout "${id1:0:7}" --to t2 && [ "$(cat t2/f)" = one ]
    cairn checkout "$id1" --to t3 && [ "$(cat t3/f)" = one ]
    cairn checkout m --to t4 && [ "$(cat t4/f)" = two ]
    run --separate-stderr cairn tag m@v2 golden
    assert_failure 1
    [[ $stderr == *"tags are immutable"* ]]
    run --separate-stderr cairn checkout m@v9 --to x
    assert_failure 1
    [ "$stderr" = "cairn: 'm' has no version v9" ]
    run --separate-stderr cairn checkout m@nosuch --to x
    assert_failure 1
    [ "$stderr" = "cairn: 'm' has no version, alias or tag 'nosuch'" ]
    run --separate-stderr cairn checkout 'M@v1' --to x
    assert_failure 2
    run --separate-stderr cairn checkout abc --to x
    assert_failure 2
    [[ $stderr == *"neither a model nor a long enough id prefix"* ]]
    run --separate-stderr cairn checkout 'a/b' --to x
    assert_failure 2
    [[ $stderr == *"invalid ref 'a/b'"* ]]
}

@test "an ambiguous id prefix is a usage error naming the prefix" {
    # Two real ids sharing 7 hex digits would take ~2^14 versions to find, so
    # make the registry's hex index of one id clash with the other's prefix.
    local i ids a b
    for i in 1 2; do
        echo "$i" > f && cairn add f >/dev/null && cairn commit m -m "$i" >/dev/null
    done
    ids=$(cairn log m --json | jq -r '.[].id')
    a=$(sed -n 1p <<<"$ids"); b=$(sed -n 2p <<<"$ids")
    sqlite3 .cairn/cairn.db "UPDATE versions SET hex='${a:0:7}' || substr(hex, 8) WHERE hex='$b'"
    run --separate-stderr cairn show "${a:0:7}"
    assert_failure 2
    [ "$stderr" = "cairn: '${a:0:7}' matches more than one version; give more digits" ]
}

@test "diff: files, params, metrics, code; --json" {
    echo a > a; echo b > b
    echo '{"lr": 0.1}' > p.json; echo '{"accuracy": 0.8}' > m.json
    cairn add a b && cairn commit m -m one --params p.json --metrics m.json
    echo a2 > a; echo c > c; rm b
    echo '{"lr": 0.05}' > p.json; echo '{"accuracy": 0.85}' > m.json
    cairn add a c && cairn commit m -m two --params p.json --metrics m.json
    run cairn diff m@v1 m@v2
    assert_success
    assert_line --regexp '^  changed +a'
    assert_line --regexp '^  removed +b'
    assert_line --regexp '^  added +c'
    assert_output --regexp 'param +lr +0.1 -> 0.05'
    assert_output --regexp 'metric accuracy +0.8 -> 0.85 \(\+0.05\)'
    run cairn diff m@v1 m@v2 --json
    assert_success
    [ "$(jq -r '.files | map(.change) | join(",")' <<<"$output")" = "changed,removed,added" ]
    [ "$(jq -r '.metrics.accuracy.new' <<<"$output")" = 0.85 ]
}

@test "diff --tensors and show --tensors name tensors, dtypes and shapes" {
    cairn-test-tool gen-safetensors w.safetensors 1 4 100000 f32
    cairn add w.safetensors && cairn commit m -m one
    run cairn show m --tensors
    assert_success
    assert_output --regexp 'layers\.0\.weight +F32 +\[3125, 32\]'
    cairn-test-tool gen-safetensors w.safetensors 2 5 100000 f32
    cairn add w.safetensors && cairn commit m -m two
    run cairn diff m@v1 m@v2 --tensors
    assert_success
    assert_output --partial "added tensor layers.4.weight"
}
