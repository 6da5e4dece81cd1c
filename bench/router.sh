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
# body, so the figures measure routing.
#
# CPUs: saturation runs unpinned (whatever CPU a router saves is left to
# wrk and the upstreams, as on a real host). For the half-load latencies,
# with two or more CPUs, the router under test (nginx or cairn) runs alone
# on CPU 1 and the load generator and the upstreams on CPU 0 (taskset -a),
# the same for both routers, so the proxy does not wait for a core behind
# the load; --no-pin leaves the scheduler to it there too.
#
# Priority, when allowed (root): everything the script starts runs at nice
# -10, and the half-load processes (routers, upstreams, load generator) under
# SCHED_FIFO 50 (chrt), so that other tenants of a shared VM do not sit
# between a request and its answer. Both routers get the same treatment.
#
#   saturation: wrk -t1 -cN for D seconds against each target, in R rounds
#               (direct, nginx, cairn, direct, ...; interleaved so that
#               background load drifts over all targets alike): requests/s
#               per round, the median, and cairn/nginx per round
#   half load:  bench/openloop (open loop, fixed rate, requests due one by
#               one, latency from the time each was due, 1 us buckets) at
#               half of nginx's median saturated rate, R rounds against each
#               target: p50, p99; overhead = median p99(router) - median
#               p99(direct upstream)
#
# Usage: bench/router.sh [--duration S] [--connections N] [--rounds R] [--no-pin]
# Environment: CAIRN_BUILD_DIR (default build/), BENCH_TMP (scratch dir).
# Needs wrk and nginx (Debian packages wrk, nginx-light). Run it on a quiet
# machine; the numbers of a loaded one are only a smoke test.
set -euo pipefail

DUR=10
CONN=64
ROUNDS=3
PIN=1
while (($#)); do
    case $1 in
    --duration) DUR=$2; shift 2 ;;
    --connections) CONN=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --no-pin) PIN=0; shift ;;
    *) echo "usage: bench/router.sh [--duration S] [--connections N] [--rounds R] [--no-pin]" >&2
       exit 2 ;;
    esac
done

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
BUILD=${CAIRN_BUILD_DIR:-$ROOT/build}
[[ $BUILD = /* ]] || BUILD=$PWD/$BUILD
CAIRN=$BUILD/cairn
OPENLOOP=$BUILD/bench/openloop
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
export LC_ALL=C
[[ -x $CAIRN ]] || { echo "bench: no $CAIRN: build first" >&2; exit 1; }
[[ -x $NGINX ]] || { echo "bench: nginx missing (Debian package nginx-light)" >&2; exit 1; }
command -v wrk >/dev/null || { echo "bench: wrk missing (Debian package wrk)" >&2; exit 1; }
[[ -x $OPENLOOP ]] || { echo "bench: no $OPENLOOP: build first" >&2; exit 1; }
# LOAD: how the half-load generator runs (on CPU 0 with the upstreams).
LOAD=()
if ((PIN)) && (($(nproc) >= 2)) && command -v taskset >/dev/null; then
    LOAD=(taskset -c 0)
else
    PIN=0
fi
RT=0
if renice -n -10 -p $$ >/dev/null 2>&1 && chrt -f 50 true 2>/dev/null; then
    RT=1
    LOAD+=(chrt -f 50)
fi

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
echo "# pinning at half load: $( ((PIN)) &&
    echo "router alone on CPU 1; load generator and upstreams on CPU 0" || echo none)"
echo "# priority: $( ((RT)) && echo "nice -10; SCHED_FIFO 50 at half load" || echo "default")"

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
    echo '{"accuracy": 0.9}' >metrics.json
    for i in 1 2; do
        echo "weights $i" >weights.bin
        "$CAIRN" add --model clf weights.bin >/dev/null
        "$CAIRN" commit clf -m "v$i" --metrics metrics.json >/dev/null
    done
    "$CAIRN" alias set clf production clf@v1 >/dev/null
    # Rollouts need a candidate that passed the alias's gate (docs/serving.md).
    printf 'checks:\n  - metric: accuracy\n    min: 0.5\n' >gate.yaml
    printf '[alias "production"]\n\tpolicy = gate.yaml\n' >>.cairn/config
    "$CAIRN" gate clf@v2 --policy gate.yaml >/dev/null
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

# wrk latency "1.23ms" / "456.00us" / "1.01s" -> microseconds
to_us() {
    awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000;
                           else if (v ~ /s$/) print n * 1000000; else print n }'
}
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
# CPU time (user + system, every thread, in clock ticks) of the process serving a target.
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
last() { echo "$1" | awk '{ print $NF }'; }
rps_of() { awk '/^Requests\/sec/ { printf "%.0f", $2 }' "$1"; }
field() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" "$2"; }

declare -A RPS P50 P99 HP50 HP99 ALL_RPS ALL_HP99 ALL_HP50 OV99 OV50
TARGETS=(direct nginx cairn)
declare -A URL=([direct]="http://127.0.0.1:$U1" [nginx]="http://127.0.0.1:$NGX"
                [cairn]="http://127.0.0.1:$CRN")
declare -A ADDR=([direct]="127.0.0.1:$U1" [nginx]="127.0.0.1:$NGX" [cairn]="127.0.0.1:$CRN")
RATIOS=()

# Whose CPU time counts per target: the upstream nginx workers for direct (both
# ports are one nginx), the router's worker for nginx, the daemon for cairn.
declare -A CPU_PIDS=([direct]="$(pgrep -P "$(cat "$OUT/up/nginx.pid")" | tr '\n' ' ')"
                     [nginx]="$(pgrep -P "$(cat "$OUT/px/nginx.pid")" | tr '\n' ' ')"
                     [cairn]="${PIDS[0]}")
declare -A ALL_CPU
HZ=$(getconf CLK_TCK)

echo
echo "## saturation: wrk -t1 -c$CONN -d${DUR}s, $ROUNDS rounds"
for ((round = 1; round <= ROUNDS; round++)); do
    for t in "${TARGETS[@]}"; do
        f=$OUT/wrk-$t-$round.txt
        ((round > 1)) || show wrk -t1 -c"$CONN" -d"${DUR}s" --latency -s "$OUT/post.lua" \
            "${URL[$t]}/v2/models/clf/infer"
        t0=0 t1=0
        for p in ${CPU_PIDS[$t]}; do t0=$((t0 + $(ticks "$p"))); done
        wrk -t1 -c"$CONN" -d"${DUR}s" --latency -s "$OUT/post.lua" \
            "${URL[$t]}/v2/models/clf/infer" >"$f"
        for p in ${CPU_PIDS[$t]}; do t1=$((t1 + $(ticks "$p"))); done
        ALL_RPS[$t]+="$(rps_of "$f") "
        # microseconds of CPU per request: ticks / (req/s * duration)
        ALL_CPU[$t]+="$(awk -v t=$((t1 - t0)) -v hz="$HZ" -v r="$(rps_of "$f")" -v d="$DUR" \
            'BEGIN { printf "%.1f", t / hz * 1e6 / (r * d) }') "
        if grep -q 'Non-2xx' "$f"; then
            echo "bench: $t answered errors:" >&2
            grep 'Non-2xx' "$f" >&2
        fi
    done
    d=$(rps_of "$OUT/wrk-direct-$round.txt") n=$(rps_of "$OUT/wrk-nginx-$round.txt")
    c=$(rps_of "$OUT/wrk-cairn-$round.txt")
    r=$(awk -v c="$c" -v n="$n" 'BEGIN { printf "%.3f", c / n }')
    RATIOS+=("$r")
    echo "round $round: direct $d nginx $n cairn $c req/s (cairn/nginx $r); CPU us/request:" \
        "upstream $(last "${ALL_CPU[direct]}") nginx $(last "${ALL_CPU[nginx]}")" \
        "cairn $(last "${ALL_CPU[cairn]}")"
done
for t in "${TARGETS[@]}"; do
    # shellcheck disable=SC2086
    RPS[$t]=$(median ${ALL_RPS[$t]})
    # p50/p99 under saturation from the median round of this target
    for ((round = 1; round <= ROUNDS; round++)); do
        f=$OUT/wrk-$t-$round.txt
        [[ $(rps_of "$f") == "${RPS[$t]}" ]] || continue
        P50[$t]=$(to_us "$(awk '$1 == "50%" { print $2 }' "$f")")
        P99[$t]=$(to_us "$(awk '$1 == "99%" { print $2 }' "$f")")
        break
    done
done

# For the latency runs: the routers (every thread) on CPU 1, the upstreams on
# CPU 0; SCHED_FIFO when allowed.
pin() {
    local cpu=$1 p
    shift
    for p in "$@" $(pgrep -P "$1" || true); do
        ((PIN)) && taskset -a -p -c "$cpu" "$p" >/dev/null
        ((RT)) && chrt -a -f -p 50 "$p"
    done
}
if ((PIN || RT)); then
    ((PIN)) && show taskset -a -p -c 1 "<nginx router master and worker, cairn serve>"
    ((PIN)) && show taskset -a -p -c 0 "<upstream nginx master and workers>"
    ((RT)) && show chrt -a -f -p 50 "<each of them>"
    pin 1 "$(cat "$OUT/px/nginx.pid")"
    pin 1 "${PIDS[0]}"
    pin 0 "$(cat "$OUT/up/nginx.pid")"
fi

RATE=$((RPS[nginx] / 2))
BODY_ARG=$BODY
echo
echo "## half load: bench/openloop at $RATE req/s (half of nginx's median), ${DUR}s + 1s warm-up," \
    "$ROUNDS rounds"
for ((round = 1; round <= ROUNDS; round++)); do
    line="round $round:"
    for t in "${TARGETS[@]}"; do
        f=$OUT/openloop-$t-$round.txt
        ((round > 1)) || show "${LOAD[@]}" "$OPENLOOP" -a "${ADDR[$t]}" -p /v2/models/clf/infer \
            -b "$BODY_ARG" -r "$RATE" -d "$DUR" -w 1 -c 64
        "${LOAD[@]}" "$OPENLOOP" -a "${ADDR[$t]}" -p /v2/models/clf/infer -b "$BODY_ARG" \
            -r "$RATE" -d "$DUR" -w 1 -c 64 >"$f" || echo "bench: $t: $(cat "$f")" >&2
        ALL_HP50[$t]+="$(field p50 "$f") "
        ALL_HP99[$t]+="$(field p99 "$f") "
        line+=" $t p50 $(field p50 "$f") p99 $(field p99 "$f");"
    done
    # The overhead of each round against the direct run just before it.
    for t in nginx cairn; do
        OV99[$t]+="$(($(field p99 "$OUT/openloop-$t-$round.txt") -
            $(field p99 "$OUT/openloop-direct-$round.txt"))) "
        OV50[$t]+="$(($(field p50 "$OUT/openloop-$t-$round.txt") -
            $(field p50 "$OUT/openloop-direct-$round.txt"))) "
    done
    echo "$line"
done
for t in "${TARGETS[@]}"; do
    # shellcheck disable=SC2086
    HP50[$t]=$(median ${ALL_HP50[$t]})
    # shellcheck disable=SC2086
    HP99[$t]=$(median ${ALL_HP99[$t]})
done

echo
echo "## results (medians of $ROUNDS rounds; latencies in microseconds)"
printf '%-8s %10s %9s %9s %12s %12s %14s\n' target req/s p50 p99 "half p50" "half p99" \
    "p99 overhead"
for t in "${TARGETS[@]}"; do
    printf '%-8s %10s %9s %9s %12s %12s %14s\n' "$t" "${RPS[$t]}" "${P50[$t]%.*}" \
        "${P99[$t]%.*}" "${HP50[$t]}" "${HP99[$t]}" \
        "$([[ $t == direct ]] && echo - || echo $((HP99[$t] - HP99[direct])))"
done
echo
echo "cairn / nginx requests/s per round: ${RATIOS[*]}; median $(median "${RATIOS[@]}")x" \
    "(target >= 1.0x)"
# shellcheck disable=SC2086
echo "router CPU time per request at saturation (us, user+system, per round): nginx" \
    "${ALL_CPU[nginx]}(median $(median ${ALL_CPU[nginx]})); cairn ${ALL_CPU[cairn]}(median" \
    "$(median ${ALL_CPU[cairn]}))"
# shellcheck disable=SC2086
echo "half-load overhead over direct, per round (us): cairn p99 ${OV99[cairn]}(median" \
    "$(median ${OV99[cairn]})), p50 ${OV50[cairn]}(median $(median ${OV50[cairn]}));" \
    "nginx p99 ${OV99[nginx]}(median $(median ${OV99[nginx]})), p50 ${OV50[nginx]}(median" \
    "$(median ${OV50[nginx]}))"
echo "cairn p99 overhead at half load: $((HP99[cairn] - HP99[direct])) us (target <= 100 us);" \
    "nginx: $((HP99[nginx] - HP99[direct])) us (medians of rounds)"
