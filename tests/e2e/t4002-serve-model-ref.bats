#!/usr/bin/env bats
# t4002: cairn serve-model REF finds the model file wherever the version
# keeps it: a version committed as m/model.safetensors keeps its folder when
# checked out; several *.safetensors files need --file PATH, which `cairn
# serve` passes on from its config (file:, files:).
#
# The model is t4000's two-layer MLP (the input [2, 1] gets label 1).

load helpers
load serve_helpers

setup() {
    cairn_setup
    cairn init . >/dev/null
}

# serve_ref REF [ARGS...]: serve-model REF on a free port, wait until ready; $URL.
serve_ref() {
    local port
    port="$(free_port)"
    URL="http://127.0.0.1:$port"
    run_bg "$TEST_DIR/serve-model.log" cairn serve-model "$@" --listen "127.0.0.1:$port"
    wait_until 20 curl -sf "$URL/v2/health/ready" || { cat "$TEST_DIR/serve-model.log" >&2; return 1; }
}

@test "a model committed inside a folder is served by REF" {
    write_model m/model.safetensors 1
    cairn add --model clf m/model.safetensors >/dev/null
    cairn commit clf -m v1 >/dev/null
    serve_ref clf@v1
    run curl -s -o answer.json -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
        -d "$BODY" "$URL/v2/models/clf/infer"
    assert_output 200
    run jq -c '.outputs[] | select(.name == "label") | .data' answer.json
    assert_output '[1]'
}

@test "one safetensors file deep in the tree is found without --file" {
    write_model models/clf/weights/net.safetensors 2
    echo "notes" >models/README.md
    cairn add --model clf models >/dev/null
    cairn commit clf -m v1 >/dev/null
    serve_ref clf@v1
    run curl -s -o /dev/null -w '%{http_code}' -X POST -d "$BODY" "$URL/v2/models/clf/infer"
    assert_output 200
}

@test "several safetensors files: an error naming them, then --file picks one" {
    write_model m/a.safetensors 1
    write_model m/b/c.safetensors 2
    cairn add --model clf m >/dev/null
    cairn commit clf -m v1 >/dev/null
    run cairn serve-model clf@v1 --listen 127.0.0.1:0
    assert_failure
    assert_output --partial "several *.safetensors files"
    assert_output --partial "'m/a.safetensors'"
    assert_output --partial "'m/b/c.safetensors'"
    assert_output --partial "--file PATH"
    run cairn serve-model clf@v1 --file m/nope.safetensors --listen 127.0.0.1:0
    assert_failure
    assert_output --partial "no file 'm/nope.safetensors' in version 'clf@v1'"
    run cairn serve-model clf@v1 --file ../etc/passwd --listen 127.0.0.1:0
    assert_failure
    serve_ref clf@v1 --file m/b/c.safetensors
    run curl -s -o /dev/null -w '%{http_code}' -X POST -d "$BODY" "$URL/v2/models/clf/infer"
    assert_output 200
}

# cairn serve starts its children with the config's file: (every version of
# the model) or files: vN (one version), so versions holding several
# safetensors files can be served and rolled out.
@test "cairn serve passes the config's file to its serve-model children" {
    printf '{"accuracy": 0.9}\n' >metrics.json
    for i in 1 2; do
        write_model m/a.safetensors "$i"
        write_model m/b/c.safetensors "$((i + 2))"
        cairn add --model clf m >/dev/null
        cairn commit clf -m "v$i" --metrics metrics.json >/dev/null
    done
    cairn alias set clf production clf@v1 >/dev/null
    production_gate clf@v2
    CAIRN_TOKEN="$(cairn token create --role admin --name adm 2>/dev/null)"
    export CAIRN_TOKEN
    cat >serve.yaml <<'YAML'
models:
  clf:
    file: m/a.safetensors
    files: {v2: m/b/c.safetensors}
YAML
    port="$(free_port)"
    export CAIRN_SERVER="http://127.0.0.1:$port"
    run_bg "$TEST_DIR/serve.log" cairn serve --config serve.yaml --listen "127.0.0.1:$port"
    wait_until 30 curl -sf "$CAIRN_SERVER/v2/health/ready" || { cat "$TEST_DIR/serve.log" >&2; false; }
    run curl -s -o /dev/null -w '%{http_code} %header{x-cairn-version}' -X POST -d "$BODY" \
        "$CAIRN_SERVER/v2/models/clf/infer"
    assert_output '200 clf@v1'
    printf 'strategy: bluegreen\nsteps: [{weight: 100, pause: 600s}]\n' >plan.yaml
    run cairn rollout start clf@v2 --alias production --plan plan.yaml
    assert_success
    wait_until 30 bash -c "cairn rollout status clf --json | jq -e '.candidate.ready' >/dev/null" ||
        { cat "$TEST_DIR/serve.log" >&2; false; }
    run curl -s -o /dev/null -w '%{http_code} %header{x-cairn-version}' -X POST -d "$BODY" \
        "$CAIRN_SERVER/v2/models/clf/infer"
    assert_output '200 clf@v2'
    run cat "$TEST_DIR/serve.log"
    assert_output --regexp 'clf@v1: started serve-model \(pid [0-9]+\) serving m/a\.safetensors'
    assert_output --regexp 'clf@v2: started serve-model \(pid [0-9]+\) serving m/b/c\.safetensors'
    refute_output --partial 'several *.safetensors files'
}

@test "a serve config's file must be a relative path, files keys version numbers" {
    printf 'models:\n  clf:\n    file: ../etc/passwd\n' >bad1.yaml
    run cairn serve --config bad1.yaml --listen 127.0.0.1:0
    assert_failure 2
    assert_output --partial "bad1.yaml:3:11: file must be a relative path inside the version"
    printf 'models:\n  clf:\n    files: {three: m/a.safetensors}\n' >bad2.yaml
    run cairn serve --config bad2.yaml --listen 127.0.0.1:0
    assert_failure 2
    assert_output --partial "bad2.yaml:3:13: files keys are version numbers such as 'v3'"
}
