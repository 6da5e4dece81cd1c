#!/usr/bin/env bash
# make demo: the whole cairn story on real data, narrated step by step, on
# the embedded defaults (local store, SQLite, local serving):
#   data (UCI digits from Debian's python3-sklearn) -> dataset versions,
#   validated -> v1 trained, committed with lineage, evaluated against a
#   served copy, gated, promoted -> cairn serve -> v2 canaried under
#   generated traffic with delayed labels until promoted automatically ->
#   v3 (corrupted labels) blocked by the gate, canaried anyway, rolled back
#   automatically on live accuracy -> v2 quantised to int8, evaluated, gated,
#   rolled out -> pushed to a file:// remote, cloned, checked out bit for
#   bit -> the delivery report.
# Exits non-zero if any step does not behave as narrated. Leaves nothing
# running (every background process is killed by PID on exit) and nothing
# behind but the fetched data in examples/digits/data/ (ignored by git).
#
# CAIRN_DEMO_QUICK=1: shorter pauses, fewer requests (the e2e test uses it).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${CAIRN_BUILD_DIR:-$ROOT/build}"
PATH="$BUILD:$PATH"
QUICK="${CAIRN_DEMO_QUICK:-0}"
TRAIN="$BUILD/examples/digits/cairn-digits-train"
EX="$ROOT/examples/digits"
DATA="$EX/data"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/cairn-demo.XXXXXX")"
PIDS=()
T0=$SECONDS

cleanup() {
    local p
    for p in "${PIDS[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    for p in "${PIDS[@]}"; do
        wait "$p" 2>/dev/null || true
    done
    chmod -R u+w "$WORK" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bold() { if [[ -t 1 && -z ${NO_COLOR:-} ]]; then printf '\n\033[1m== %s\033[0m\n' "$*"; else printf '\n== %s\n' "$*"; fi; }
say() { printf -- '-> %s\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }
die() { echo "demo: $*" >&2; exit 1; }
expect() { if ! eval "$1"; then echo "demo: expected: $2" >&2; exit 1; fi; say "ok: $2"; }
# run_rc CMD...: run, print, and leave the exit status in $rc without stopping.
run_rc() { printf '$ %s\n' "$*"; set +e; "$@"; rc=$?; set -e; }
bg() { "$@" & PIDS+=($!); }
free_port() {
    local port i
    for ((i = 0; i < 200; i++)); do
        port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    die "no free port"
}
# wait_for SECONDS CMD...: poll every 0.2 s until CMD succeeds.
wait_for() {
    local limit=$(($1 * 5)) i
    shift
    for ((i = 0; i < limit; i++)); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.2
    done
    return 1
}
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
train() {
    local out=$1
    shift
    printf '$ cairn-digits-train %s --out %s && cp %s/model.safetensors .\n' "$*" "$out" "$out"
    "$TRAIN" --train "$DATA/train.csv" --test "$DATA/test.csv" --out "$WORK/$out" "$@" 2>&1 | tail -n 1
    cp "$WORK/$out/model.safetensors" "$WORK/model.safetensors"
}
metric() { jq -r ".metrics.$2" <<<"$(cairn show "$1" --json)"; }
phase() { cairn rollout status digits --json | jq -r .phase; }

[[ -x $BUILD/cairn && -x $TRAIN ]] || die "no cairn build in $BUILD: run 'make' first"
for tool in jq curl b3sum; do
    command -v "$tool" >/dev/null || die "'$tool' is missing: run scripts/install-deps.sh build"
done

if ((QUICK)); then RATE=60; STEP_PAUSE=1s; else RATE=60; STEP_PAUSE=3s; fi

bold "0. Data: the UCI handwritten digits, from Debian's python3-sklearn package"
if [[ ! -s $DATA/digits.csv ]]; then
    "$EX/fetch-data.sh" "$DATA" ||
        die "cannot fetch the digits data: 'apt-get download python3-sklearn' failed (run 'sudo apt-get update' and retry)"
fi
"$EX/split.sh" "$DATA"
cd "$WORK"
mkdir train test
cp "$DATA/train.csv" train/
cp "$DATA/test.csv" test/

bold "1. A repository: chunk store + registry, in .cairn/"
run cairn init

bold "2. The data as dataset versions, validated against a schema"
run cairn add train/train.csv >/dev/null
run cairn commit digits-train --kind dataset -m "UCI digits, 4 of every 5 images"
run cairn add test/test.csv >/dev/null
run cairn commit digits-test --kind dataset -m "UCI digits, every 5th image held out"
run cairn data validate digits-train --schema "$EX/schema.yaml"
run cairn data validate digits-test --schema "$EX/schema.yaml"
say "64 pixel columns in 0..16, a label in 0..9, every class at least 5% of the rows"

bold "3. v1: a small MLP, committed with its data, params and metrics"
train v1 --hidden 16 --epochs 5
run cairn add model.safetensors >/dev/null
run cairn commit digits -m "MLP 16 hidden, 5 epochs" --params v1/params.json \
    --metrics v1/metrics.json --data digits-train --data digits-test
run cairn lineage digits@v1

bold "4. Evaluate v1 against a served copy (Open Inference Protocol v2)"
P=$(free_port)
bg cairn serve-model digits@v1 --listen "127.0.0.1:$P" 2>"$WORK/serve-model.log"
SM=${PIDS[-1]}
wait_for 20 curl -sf "http://127.0.0.1:$P/v2/health/ready" || die "serve-model did not start"
run cairn eval digits@v1 --endpoint "http://127.0.0.1:$P" --data digits-test --record
stop "$SM"
acc1=$(metric digits@v1 accuracy)
expect "jq -e '$acc1 >= 0.90' <<<null >/dev/null" "v1 scores $acc1 on the 359 held-out images"

bold "5. Gate v1 and promote it to production"
run cairn gate digits@v1 --policy "$EX/policy.yaml"
expect "cairn gate digits@v1 --policy '$EX/policy.yaml' --json |
    jq -e '.verdict == \"pass\" and .checks[2].verdict == \"pass\" and
           (.checks[2].reason | startswith(\"baseline missing\"))' >/dev/null" \
    "v1 passes the gate; 'no regression vs production' had no baseline and passed by on_missing_baseline"
run cairn promote digits@v1 --to production --policy "$EX/policy.yaml" --reason "first release"
expect "[ \"\$(cairn show digits@production --json | jq -r .number)\" = 1 ]" "production is digits@v1"

bold "6. Serve production: cairn serve routes OIP v2 traffic, runs serve-model children"
PORT=$(free_port)
export CAIRN_SERVER="http://127.0.0.1:$PORT"
CAIRN_TOKEN="$(cairn token create --role admin --name demo)"
export CAIRN_TOKEN
bg cairn serve --listen "127.0.0.1:$PORT" 2>"$WORK/serve.log"
SERVE=${PIDS[-1]}
wait_for 30 curl -sf "$CAIRN_SERVER/v2/health/ready" || { cat "$WORK/serve.log" >&2; die "serve did not start"; }
say "serving digits@production on $CAIRN_SERVER (pid $SERVE)"

# A short canary plan for the demo (examples/digits/rollout.yaml is the real-life one).
cat >good-plan.yaml <<EOF
strategy: canary
steps: [{weight: 25, pause: $STEP_PAUSE}, {weight: 50, pause: $STEP_PAUSE}, {weight: 100}]
analysis:
  interval: 1s
  min_requests: 10
  min_labels: 30
  failure_limit: 2
  checks:
    - {metric: error_rate, max: 0.05}
    - {metric: accuracy, min: 0.80, max_drop_vs_stable: 0.15}
on_failure: rollback
EOF
# The same checks, but a long first step: only the analysis can end it.
sed -e 's/pause: [0-9]*s}, {weight: 50/pause: 120s}, {weight: 50/' \
    -e 's/min: 0.80, max_drop_vs_stable: 0.15/min: 0.90, max_drop_vs_stable: 0.05/' \
    good-plan.yaml >bad-plan.yaml

# loadgen_bg SECONDS: traffic with labels posted 1 s after each answer.
loadgen_bg() {
    bg cairn loadgen --url "$CAIRN_SERVER" --model digits --data test/test.csv --rate "$RATE" \
        --duration "$1" --feedback-delay 1 >"$WORK/loadgen.out" 2>"$WORK/loadgen.err"
    LG=${PIDS[-1]}
}
# watch_rollout SECONDS: print the phase and weight until the rollout ends.
watch_rollout() {
    local limit=$(($1 * 2)) i p last=""
    for ((i = 0; i < limit; i++)); do
        p=$(cairn rollout status digits --json | jq -r '"\(.phase) \(.weight // 0)%"')
        [[ $p != "$last" ]] && echo "   rollout: $p"
        last=$p
        case $p in running* | paused*) sleep 0.5 ;; *) break ;; esac
    done
    cairn rollout status digits | grep -E '^(reason|last analysis):' || true
}

bold "7. v2: more hidden units, more epochs — gated, then canaried under live traffic"
train v2 --hidden 48 --epochs 30
run cairn add model.safetensors >/dev/null
run cairn commit digits -m "MLP 48 hidden, 30 epochs" --params v2/params.json \
    --metrics v2/metrics.json --data digits-train --data digits-test
run cairn gate digits@v2 --policy "$EX/policy.yaml"
loadgen_bg 60
run cairn rollout start digits@v2 --alias production --plan good-plan.yaml
watch_rollout 60
stop "$LG"
expect "[ \"\$(phase)\" = promoted ]" "the canary passed every analysis and was promoted automatically"
expect "[ \"\$(cairn show digits@production --json | jq -r .number)\" = 2 ]" "production is digits@v2"

bold "8. v3: trained on corrupted labels — the gate blocks it"
train v3 --corrupt-labels 0.6 --epochs 5
run cairn add model.safetensors >/dev/null
run cairn commit digits -m "trained on 60% corrupted labels" --params v3/params.json \
    --metrics v3/metrics.json --data digits-train --data digits-test
run_rc cairn gate digits@v3 --policy "$EX/policy.yaml"
expect "[ $rc -eq 3 ]" "the gate fails v3 (exit 3)"

bold "9. Canary v3 anyway (--force --reason): live accuracy from delayed labels rolls it back"
run_rc cairn rollout start digits@v3 --alias production --plan bad-plan.yaml
expect "[ $rc -eq 3 ]" "rollout start refuses v3 too: no passed gate of production's policy (exit 3)"
say "only --force with a reason (promote role) starts it, and the audit log records forced=true"
loadgen_bg 60
run cairn rollout start digits@v3 --alias production --plan bad-plan.yaml \
    --force --reason "demo: see the canary catch what the gate caught"
expect "cairn audit --json | jq -e '[.[] | select(.action == \"rollout.start\")][-1].details.forced' >/dev/null" \
    "the forced start is audited as forced"
watch_rollout 60
stop "$LG"
expect "[ \"\$(phase)\" = rolled_back ]" "the analysis failed twice and rolled v3 back automatically"
run cairn rollout status digits
expect "[ \"\$(cairn show digits@production --json | jq -r .number)\" = 2 ]" "production is still digits@v2"

bold "10. Quantise v2 to int8: measured again, gated, rolled out"
run cairn quantize digits@v2 --to int8 -m "int8 weights of v2"
P=$(free_port)
bg cairn serve-model digits@v4 --listen "127.0.0.1:$P" 2>"$WORK/serve-model.log"
SM=${PIDS[-1]}
wait_for 20 curl -sf "http://127.0.0.1:$P/v2/health/ready" || die "serve-model did not start"
run cairn eval digits@v4 --endpoint "http://127.0.0.1:$P" --data digits-test --record
stop "$SM"
run cairn gate digits@v4 --policy "$EX/compressed-policy.yaml"
say "the compressed version is held to the compressed-model policy: --policy (promote role)"
loadgen_bg 60
run cairn rollout start digits@v4 --alias production --plan good-plan.yaml \
    --policy "$EX/compressed-policy.yaml"
watch_rollout 60
stop "$LG"
expect "[ \"\$(phase)\" = promoted ]" "the int8 version was promoted automatically"
run cairn alias history digits production

bold "11. Share: push to a file:// remote, clone it, restore v2 bit for bit"
stop "$SERVE"
run cairn remote add origin "file://$WORK/remote"
run cairn push origin
run cairn clone "file://$WORK/remote" "$WORK/clone"
(cd "$WORK/clone" && run cairn checkout digits@v2 --to "$WORK/restored")
run b3sum --no-names "$WORK/v2/model.safetensors" "$WORK/restored/model.safetensors"
expect "cmp -s '$WORK/v2/model.safetensors' '$WORK/restored/model.safetensors'" \
    "the clone restores digits@v2 bit for bit"

bold "12. The delivery report"
run cairn report digits
cairn report digits --json | jq '.models[0]' >report.json
expect "jq -e '[.changes[].outcome] == [\"promoted\", \"promoted\", \"rolled_back\", \"promoted\"]' report.json >/dev/null" \
    "4 changes: v1 promoted through the gate, v2 promoted, v3 rolled back, v4 promoted"
expect "jq -e '.metrics.change_failure_rate == 0.25 and .metrics.deployments == 3' report.json >/dev/null" \
    "change failure rate 0.25, 3 deployments"
expect "jq -e '.changes[2].breach != null and .changes[2].restore_s < .changes[2].duration_s' report.json >/dev/null" \
    "v3's time to restore runs from its first failed analysis (the breach), not from the rollout's start"
expect "cairn audit --verify >/dev/null" "the audit chain verifies"

bold "done in $((SECONDS - T0)) s: versioned, validated, gated, served, canaried, rolled back, compressed, shared, reported"
