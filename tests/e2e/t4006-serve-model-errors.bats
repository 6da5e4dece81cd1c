#!/usr/bin/env bats
# t4006: models that cannot be served and answers JSON cannot carry (issue
# 21, D10 and D21). serve-model checks the model before it listens, so a bad
# file exits 1 without a "serving" line and names the version, never its
# temporary checkout; weights with NaN or Inf are refused; an input whose
# answer overflows gets a JSON error, never "nan".

load helpers
load serve_helpers

setup() {
    cairn_setup
    serve_fixture
}

# poison FILE: its first weight becomes +Inf.
poison() {
    perl -e 'open(my $f, "+<", $ARGV[0]) or die; binmode $f; read($f, my $l, 8);
             seek($f, 8 + unpack("Q<", $l), 0); print $f pack("f<", 9**9**9); close $f' "$1"
}

# commit_v3 FILE: FILE committed as clf@v3.
commit_v3() {
    cp "$1" model.safetensors
    cairn add --model clf model.safetensors >/dev/null
    cairn commit clf -m v3 >/dev/null
}

@test "serve-model refuses weights with Inf before serving, naming the version" {
    write_model bad.safetensors 3
    poison bad.safetensors
    commit_v3 bad.safetensors
    run cairn serve-model clf@v3 --listen 127.0.0.1:0
    assert_equal "$status" 1
    assert_output --partial "version clf@v3: 'model.safetensors': tensor 'layers.0.weight' holds a non-finite value (Inf"
    refute_output --partial serving
    refute_output --partial /tmp
    assert_equal "${#lines[@]}" 1
}

@test "serve-model of a damaged file exits 1 before serving" {
    printf '\x10\x00\x00\x00\x00\x00\x00\x00{"a":' >bad.safetensors
    commit_v3 bad.safetensors
    run cairn serve-model clf@v3 --listen 127.0.0.1:0
    assert_equal "$status" 1
    assert_output --partial "version clf@v3: 'model.safetensors'"
    refute_output --partial serving
    refute_output --partial /tmp
    # A bad address is still a usage error.
    run cairn serve-model clf@v1 --listen nowhere
    assert_equal "$status" 2
}

@test "cairn serve reports a version whose serve-model cannot load it" {
    write_model bad.safetensors 3
    poison bad.safetensors
    commit_v3 bad.safetensors
    cairn alias set clf production clf@v3 >/dev/null
    PORT="$(free_port)"
    run_bg serve.log cairn serve --listen "127.0.0.1:$PORT"
    wait_until 20 grep -q 'serve-model exited (status 1' serve.log
    grep -q "clf@v3: cairn: version clf@v3: 'model.safetensors': tensor 'layers.0.weight' holds a non-finite" serve.log
    run curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/v2/health/ready"
    assert_output 503
}

@test "an input whose answer overflows gets a JSON error, not nan" {
    start_serve
    local big='{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[3e38,3e38]}]}'
    run curl -s -w '\n%{http_code}' -H 'Content-Type: application/json' -d "$big" \
        "$CAIRN_SERVER/v2/models/clf/infer"
    assert_equal "${lines[1]}" 422
    jq -e '.error | test("not finite")' <<<"${lines[0]}"
    refute_output --partial nan
}
