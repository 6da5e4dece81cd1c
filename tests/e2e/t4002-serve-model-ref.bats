#!/usr/bin/env bats
# t4002: cairn serve-model REF finds the model file wherever the version
# keeps it: a version committed as m/model.safetensors keeps its folder when
# checked out; several *.safetensors files need --file PATH.
#
# The model is t4000's two-layer MLP (the input [2, 1] gets label 1).

load helpers

BODY='{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[2,1]}]}'

# write_model FILE SEED: the network of tests/unit/serve, last bias nudged by SEED.
write_model() {
    mkdir -p "$(dirname "$1")"
    perl -e '
        my ($out, $seed) = @ARGV;
        my $hdr = q({"__metadata__":{"cairn.arch":"mlp","cairn.activation":"relu","cairn.output":"softmax"},)
                . q("layers.0.weight":{"dtype":"F32","shape":[3,2],"data_offsets":[0,24]},)
                . q("layers.0.bias":{"dtype":"F32","shape":[3],"data_offsets":[24,36]},)
                . q("layers.1.weight":{"dtype":"F32","shape":[2,3],"data_offsets":[36,60]},)
                . q("layers.1.bias":{"dtype":"F32","shape":[2],"data_offsets":[60,68]}});
        my @v = (1,0,0,1,1,1,0,-1,0.5,1,0,0,0,1,1,0,$seed*0.001);
        open(my $f, ">", $out) or die; binmode $f;
        print $f pack("Q<", length $hdr), $hdr, pack("f<*", @v);' "$1" "$2"
}

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
