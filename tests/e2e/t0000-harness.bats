#!/usr/bin/env bats
# t0000: the test harness itself: the binary under test, the helpers and
# cairn-test-tool. If these fail, no other e2e result means anything.

load helpers

bats_require_minimum_version 1.5.0

@test "cairn on PATH is the freshly built binary" {
    run command -v cairn
    assert_success
    assert_output "$CAIRN_BUILD_DIR/cairn"
}

@test "cairn --version prints the version" {
    run --separate-stderr cairn --version
    assert_success
    assert_output --regexp '^cairn [0-9]+\.[0-9]+\.[0-9]+'
    [ -z "$stderr" ]
}

@test "cairn help lists the commands and each has a page" {
    run cairn help
    assert_success
    assert_line --regexp '^  help +'
    assert_line --regexp '^  version +'

    run cairn help version
    assert_success
    local page="$output"
    run cairn version --help
    assert_success
    assert_output "$page"
}

@test "an unknown command exits 2 with one line on stderr" {
    run --separate-stderr cairn no-such-command
    assert_failure 2
    [ -z "$output" ]
    [ "${#stderr_lines[@]}" -eq 1 ]
    [[ $stderr == "cairn: "*"no-such-command"* ]]
}

@test "an unknown option exits 2" {
    run --separate-stderr cairn --no-such-option
    assert_failure 2
    [ "${#stderr_lines[@]}" -eq 1 ]
}

@test "each test runs in its own empty directory with HOME inside it" {
    [ "$PWD" = "$TEST_DIR" ]
    [[ $HOME == "$TEST_DIR"/* ]]
    run ls -A
    assert_output ".home"
}

@test "test-tool gen is deterministic and exact in size" {
    make_file a.bin 100000 7
    make_file sub/b.bin 100000 7
    make_file c.bin 100000 8
    make_file d.bin 1K 7
    [ "$(stat -c %s a.bin)" -eq 100000 ]
    [ "$(stat -c %s d.bin)" -eq 1024 ]
    files_equal a.bin sub/b.bin
    run cmp -s a.bin c.bin
    assert_failure
    # A prefix of the same stream: same seed, shorter size.
    cmp -n 1024 a.bin d.bin
}

@test "test-tool flip changes exactly one byte and files_equal notices" {
    make_file a.bin 4096 1
    cp a.bin b.bin
    cairn-test-tool flip b.bin 100
    run files_equal a.bin b.bin
    assert_failure
    run cmp -l a.bin b.bin
    [ "${#lines[@]}" -eq 1 ]
    cairn-test-tool flip b.bin 100
    files_equal a.bin b.bin
    run cairn-test-tool flip b.bin 4096
    assert_failure 1
}

@test "test-tool gen-safetensors writes a well-formed header" {
    cairn-test-tool gen-safetensors m.safetensors 3 4 4096 bf16
    local hlen
    hlen=$(od -An -t u8 -N 8 m.safetensors | tr -d ' ')
    [ $(((8 + hlen) % 8)) -eq 0 ]
    dd if=m.safetensors bs=1 skip=8 count="$hlen" status=none >header.json
    run jq -r '."layers.3.weight" | "\(.dtype) \(.shape) \(.data_offsets)"' header.json
    assert_success
    assert_output 'BF16 [64,64] [24576,32768]'
    [ "$(stat -c %s m.safetensors)" -eq $((8 + hlen + 4 * 4096 * 2)) ]

    # Tensor i is the same whatever the number of tensors in the file.
    cairn-test-tool gen-safetensors n.safetensors 3 1 4096 bf16
    local hlen2
    hlen2=$(od -An -t u8 -N 8 n.safetensors | tr -d ' ')
    cmp <(tail -c +$((9 + hlen)) m.safetensors | head -c 8192) \
        <(tail -c +$((9 + hlen2)) n.safetensors)
}

@test "test-tool rejects bad arguments with status 2" {
    run cairn-test-tool gen x.bin 10Q 1
    assert_failure 2
    run cairn-test-tool gen-floats x.bin 10 1 f64
    assert_failure 2
    run cairn-test-tool nope
    assert_failure 2
}

@test "test-tool rss-exec reports peak RSS, wall and CPU time and passes the exit status on" {
    run cairn-test-tool rss-exec -o rss.txt sh -c 'exit 3'
    assert_failure 3
    run cat rss.txt
    assert_output --regexp '^[0-9]+$'
    # -t: wall and CPU seconds of the command alone; a busy loop shows CPU.
    run cairn-test-tool rss-exec -o rss.txt -t times.txt sh -c 'i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done'
    assert_success
    run cat times.txt
    assert_output --regexp '^[0-9]+\.[0-9]{6} [0-9]+\.[0-9]{6}$'
    awk '{ exit !($1 > 0 && $2 > 0) }' times.txt
}

@test "teardown stops tracked background processes" {
    run_bg sleep.log sleep 300
    local pid=$BG_PID
    kill -0 "$pid"
    cairn_kill_tracked
    run kill -0 "$pid"
    assert_failure
}

@test "stress iteration count defaults to a number" {
    run stress_iters
    assert_output --regexp '^[0-9]+$'
}
