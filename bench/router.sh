#!/usr/bin/env bash
# bench/router.sh: cairn serve against nginx-light doing the same weighted
# proxying (SPEC section 9: >= 1.0x nginx requests/s with one worker each,
# <= 100 us p99 overhead at half load).
#
# Both routers split POST /v2/models/clf/infer 90/10 between the same two
# upstreams over keep-alive connections: nginx with split_clients on
# $request_id and an upstream keepalive pool, cairn with a canary rollout
# held at 10% whose versions are bound to the upstreams by a serve config.
# The upstreams are one more nginx (two workers) answering a fixed OIP v2
# body, so they are never the bottleneck and the figures measure routing.
#
#   saturation: wrk -t1 -cN for D seconds against each target: requests/s,
#               p50, p99 (wrk's --latency)
#   half load:  cairn loadgen (open loop, fixed rate) at half of nginx's
#               saturated rate against each target: p50, p99; the overhead
#               is p99(router) - p99(direct upstream)
#
# Usage: bench/router.sh [--duration S] [--connections N]
# Environment: CAIRN_BUILD_DIR (default build/), BENCH_TMP (scratch dir).
# Needs wrk and nginx (Debian packages wrk, nginx-light). Run it on a quiet
# machine; the numbers of a loaded one are only a smoke test.
set -euo pipefail

DUR=10
CONN=64
while (($#)); do
    case $1 in
    --duration) DUR=$2; shift 2 ;;
    --connections) CONN=$2; shift 2 ;;
    *) echo "usage: bench/router.sh [--duration S] [--connections N]" >&2; exit 2 ;;
    esac
done

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
BUILD=${CAIRN_BUILD_DIR:-$ROOT/build}
[[ $BUILD = /* ]] || BUILD=$PWD/$BUILD
CAIRN=$BUILD/cairn
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
export LC_ALL=C
[[ -x $CAIRN ]] || { echo "bench: no $CAIRN: build first" >&2; exit 1; }
[[ -x $NGINX ]] || { echo "bench: nginx missing (Debian package nginx-light)" >&2; exit 1; }
command -v wrk >/dev/null || { echo "bench: wrk missing (Debian package wrk)" >&2; exit 1; }

OUT=${BENCH_TMP:-$BENCH_DIR/out/router}
rm -rf "$OUT"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    [[ -f $OUT/up/nginx.pid ]] && kill -TERM "$(cat "$OUT/up/nginx.pid")" 2>/dev/null || true
    [[ -f $OUT/px/nginx.pid ]] && kill -TERM "$(cat "$OUT/px/nginx.pid")" 2>/dev/null || true
    wait 2>/dev/null || true
}
trap cleanup EXIT

free_port() {
    local port
    while :; do
        port=$((20000 + RANDOM % 40000))
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
    done
}
wait_http() {
    for ((i = 0; i < 100; i++)); do
        curl -sf -o /dev/null "$1" && return 0
        sleep 0.1
    done
    echo "bench: $1 did not come up" >&2
    return 1
}
show() {
    printf '$'
    printf ' %q' "$@"
    printf '\n'
}

U1=$(free_port) U2=$(free_port) NGX=$(free_port) CRN=$(free_port)
RESP='{"model_name":"clf","model_version":"1","outputs":[{"name":"label","shape":[1],"datatype":"INT64","data":[1]}]}'
BODY='{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[2,1]}]}'

echo "# machine: $(uname -srm), $(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p')"
echo "# load: $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- upstreams: one nginx, two ports ----
mkdir -p "$OUT/up" "$OUT/px"
cat >"$OUT/up/nginx.conf" <<EOF
worker_processes 2;
pid $OUT/up/nginx.pid;
error_log $OUT/up/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $OUT/up; proxy_temp_path $OUT/up; fastcgi_temp_path $OUT/up;
    uwsgi_temp_path $OUT/up; scgi_temp_path $OUT/up;
    keepalive_requests 1000000;
    server { listen 127.0.0.1:$U1; location / { default_type application/json; return 200 '$RESP'; } }
    server { listen 127.0.0.1:$U2; location / { default_type application/json; return 200 '$RESP'; } }
}
EOF
# ---- nginx as the router: one worker, 90/10, keep-alive both sides ----
cat >"$OUT/px/nginx.conf" <<EOF
worker_processes 1;
pid $OUT/px/nginx.pid;
error_log $OUT/px/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $OUT/px; proxy_temp_path $OUT/px; fastcgi_temp_path $OUT/px;
    uwsgi_temp_path $OUT/px; scgi_temp_path $OUT/px;
    keepalive_requests 1000000;
    upstream v1 { server 127.0.0.1:$U1; keepalive 128; }
    upstream v2 { server 127.0.0.1:$U2; keepalive 128; }
    split_clients "\$request_id" \$up { 90% v1; * v2; }
    server {
        listen 127.0.0.1:$NGX;
        location / {
            proxy_pass http://\$up;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
show "$NGINX" -c "$OUT/up/nginx.conf" -p "$OUT/up"
"$NGINX" -c "$OUT/up/nginx.conf" -p "$OUT/up" -g 'daemon on;' 2>"$OUT/up/start.log"
show "$NGINX" -c "$OUT/px/nginx.conf" -p "$OUT/px"
"$NGINX" -c "$OUT/px/nginx.conf" -p "$OUT/px" -g 'daemon on;' 2>"$OUT/px/start.log"
wait_http "http://127.0.0.1:$U1/"
wait_http "http://127.0.0.1:$NGX/"

# ---- cairn serve: two versions bound to the upstreams, a canary held at 10% ----
REPO=$OUT/repo
mkdir -p "$REPO"
(
    cd "$REPO"
    "$CAIRN" init . >/dev/null
    for i in 1 2; do
        echo "weights $i" >weights.bin
        "$CAIRN" add --model clf weights.bin >/dev/null
        "$CAIRN" commit clf -m "v$i" >/dev/null
    done
    "$CAIRN" alias set clf production clf@v1 >/dev/null
)
printf 'models:\n  clf:\n    bind: {v1: "http://127.0.0.1:%s", v2: "http://127.0.0.1:%s"}\n' \
    "$U1" "$U2" >"$OUT/serve.yaml"
printf 'strategy: canary\nsteps: [{weight: 10, pause: 24h}, {weight: 100}]\n' >"$OUT/plan.yaml"
TOKEN=$(cd "$REPO" && "$CAIRN" token create --role admin --name bench 2>/dev/null)
show cairn serve --config "$OUT/serve.yaml" --listen "127.0.0.1:$CRN"
(cd "$REPO" && exec "$CAIRN" serve --config "$OUT/serve.yaml" --listen "127.0.0.1:$CRN" \
    >"$OUT/serve.log" 2>&1) &
PIDS+=($!)
wait_http "http://127.0.0.1:$CRN/v2/health/ready"
show cairn rollout start clf@v2 --alias production --plan "$OUT/plan.yaml"
(cd "$REPO" && CAIRN_TOKEN=$TOKEN CAIRN_SERVER=http://127.0.0.1:$CRN \
    "$CAIRN" rollout start clf@v2 --alias production --plan "$OUT/plan.yaml" >/dev/null)
for ((i = 0; i < 100; i++)); do
    curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$CRN/api/v1/rollouts/clf" |
        grep -q '"candidate":{[^}]*"ready":true' && break
    sleep 0.1
done

cat >"$OUT/post.lua" <<EOF
wrk.method = "POST"
wrk.body = '$BODY'
wrk.headers["Content-Type"] = "application/json"
EOF
printf 'a,b,label\n2,1,1\n' >"$OUT/rows.csv"

# wrk latency "1.23ms" / "456.00us" / "1.01s" -> microseconds
to_us() {
    awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000;
                           else if (v ~ /s$/) print n * 1000000; else print n }'
}

declare -A RPS P50 P99 HP50 HP99
TARGETS=(direct nginx cairn)
declare -A URL=([direct]="http://127.0.0.1:$U1" [nginx]="http://127.0.0.1:$NGX"
                [cairn]="http://127.0.0.1:$CRN")

echo
echo "## saturation: wrk -t1 -c$CONN -d${DUR}s"
for t in "${TARGETS[@]}"; do
    show wrk -t1 -c"$CONN" -d"${DUR}s" --latency -s "$OUT/post.lua" "${URL[$t]}/v2/models/clf/infer"
    wrk -t1 -c"$CONN" -d"${DUR}s" --latency -s "$OUT/post.lua" "${URL[$t]}/v2/models/clf/infer" \
        >"$OUT/wrk-$t.txt"
    RPS[$t]=$(awk '/^Requests\/sec/ { printf "%.0f", $2 }' "$OUT/wrk-$t.txt")
    P50[$t]=$(to_us "$(awk '$1 == "50%" { print $2 }' "$OUT/wrk-$t.txt")")
    P99[$t]=$(to_us "$(awk '$1 == "99%" { print $2 }' "$OUT/wrk-$t.txt")")
    if grep -q 'Non-2xx' "$OUT/wrk-$t.txt"; then
        echo "bench: $t answered errors:" >&2
        grep 'Non-2xx' "$OUT/wrk-$t.txt" >&2
    fi
done

RATE=$((RPS[nginx] / 2))
echo
echo "## half load: cairn loadgen --rate $RATE (half of nginx's saturated rate) for ${DUR}s"
for t in "${TARGETS[@]}"; do
    show cairn loadgen --url "${URL[$t]}" --model clf --data "$OUT/rows.csv" --rate "$RATE" \
        --duration "$DUR" --json
    "$CAIRN" loadgen --url "${URL[$t]}" --model clf --data "$OUT/rows.csv" --rate "$RATE" \
        --duration "$DUR" --json >"$OUT/loadgen-$t.json"
    # Latency of the largest version group (the 90% side for the routers).
    HP50[$t]=$(jq '[.versions[]] | max_by(.requests) | .latency_p50_ms * 1000 | floor' \
        "$OUT/loadgen-$t.json")
    HP99[$t]=$(jq '[.versions[]] | max_by(.requests) | .latency_p99_ms * 1000 | floor' \
        "$OUT/loadgen-$t.json")
done

echo
echo "## results (latencies in microseconds)"
printf '%-8s %10s %9s %9s %12s %12s %14s\n' target req/s p50 p99 "half p50" "half p99" \
    "p99 overhead"
for t in "${TARGETS[@]}"; do
    printf '%-8s %10s %9s %9s %12s %12s %14s\n' "$t" "${RPS[$t]}" "${P50[$t]%.*}" \
        "${P99[$t]%.*}" "${HP50[$t]}" "${HP99[$t]}" \
        "$([[ $t == direct ]] && echo - || echo $((HP99[$t] - HP99[direct])))"
done
echo
awk -v c="${RPS[cairn]}" -v n="${RPS[nginx]}" \
    'BEGIN { printf "cairn / nginx requests/s: %.2fx (target >= 1.0x)\n", c / n }'
echo "cairn p99 overhead at half load: $((HP99[cairn] - HP99[direct])) us (target <= 100 us);" \
    "nginx: $((HP99[nginx] - HP99[direct])) us"
