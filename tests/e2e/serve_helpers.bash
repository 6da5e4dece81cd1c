# Shared by the serving tests (t4000, t4001, t4002, t4200): the model they
# serve, a request for it, and starting `cairn serve`. Load after helpers.
#
# The model is a tiny two-layer MLP written by perl in serve-model's layout
# (docs/serve-model.md), the network of tests/unit/serve: the input [2, 1]
# gets label 1, whatever SEED nudges.

BODY='{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[2,1]}]}'

# write_model FILE [SEED]: the network, its last bias nudged by SEED/1000
# (0 by default); FILE's folder is made if missing.
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
        print $f pack("Q<", length $hdr), $hdr, pack("f<*", @v);' "$1" "${2:-0}"
}

# serve_fixture: a repository here holding clf v1 and v2 (SEEDs 1 and 2),
# both passed production's gate (gate.yaml, set as the alias's policy:
# rollouts need a candidate that passed it), production pointing at v1, and
# an admin token in CAIRN_TOKEN.
serve_fixture() {
    cairn init . >/dev/null
    printf '{"accuracy": 0.9}\n' >metrics.json
    for i in 1 2; do
        write_model model.safetensors "$i"
        cairn add --model clf model.safetensors >/dev/null
        cairn commit clf -m "v$i" --metrics metrics.json >/dev/null
    done
    cairn alias set clf production clf@v1 >/dev/null
    production_gate clf@v1 clf@v2
    TOKEN="$(cairn token create --role admin --name adm 2>/dev/null)"
    export CAIRN_TOKEN="$TOKEN"
}

# production_gate REF...: production's gate policy (gate.yaml: accuracy at
# least 0.5, set in .cairn/config) and a passed gate of it for each REF
# (committed with --metrics metrics.json). Rollouts need it (docs/serving.md).
production_gate() {
    printf 'checks:\n  - metric: accuracy\n    min: 0.5\n' >gate.yaml
    printf '[alias "production"]\n\tpolicy = gate.yaml\n' >>.cairn/config
    for ref in "$@"; do
        cairn gate "$ref" --policy gate.yaml >/dev/null
    done
}

# start_serve [ARGS...]: cairn serve on a free port, waited for until ready;
# sets CAIRN_SERVER (exported, for the CLI) and SERVE_PID.
start_serve() {
    PORT="$(free_port)"
    export CAIRN_SERVER="http://127.0.0.1:$PORT"
    run_bg "$TEST_DIR/serve.log" cairn serve --listen "127.0.0.1:$PORT" "$@"
    SERVE_PID=$BG_PID
    wait_until 30 curl -sf "$CAIRN_SERVER/v2/health/ready" || { cat "$TEST_DIR/serve.log" >&2; return 1; }
}

# status: clf's rollout as JSON; phase_is PHASE: whether it is in PHASE.
status() {
    cairn rollout status clf --json
}

phase_is() {
    [[ "$(status | jq -r .phase)" == "$1" ]]
}
