#!/usr/bin/env bats
# t4300: cairn serve under hostile clients and hung backends (issue #21, D6
# and D16), with real processes on 127.0.0.1 only.
#
# - D6: sixteen connections sending 63 MB bodies once took the router from
#   10 MiB to 971 MiB; now its peak RSS stays under its buffered-bytes
#   budget plus a margin, and what does not fit is refused (429/503).
# - The soak: big bodies fast and slow, slowloris headers, a connection
#   flood and oversize bodies, beside normal inference traffic, through
#   `cairn serve` to a real `cairn serve-model`. It prints the router's peak
#   RSS (VmHWM) and the normal traffic's error rate, which must be 0: the
#   normal requests are small (their bodies fit the per-connection room
#   that is never charged) and come from an address of their own, so the
#   per-client caps stop the hostile ones long before the global caps would
#   shed them. CAIRN_SOAK_SECONDS (default 20) sets its length; the figures
#   are also left in $CAIRN_BUILD_DIR/t4300-soak.txt.
# - D16: a SIGSTOPped backend is taken out of rotation by its health
#   probes within a few seconds: a candidate's traffic goes to stable and no
#   request fails; a stable version with nothing to fall back on answers
#   503 at once. SIGCONT brings it back.
#
# Memory is measured, never timing: the loops wait on conditions.

load helpers
load serve_helpers

setup() {
    cairn_setup
    serve_fixture
}

# The budget the soak config sets, and the margin over it the peak RSS may
# take: the router's own ~10 MiB, the fixed cost of up to 256 connections
# (at most ~56 KiB each with their header buffers), the shadow of one 63 MB body
# being read while another is refused, and malloc's slack.
BUFFERED_MIB=128
MARGIN_MIB=80

write_config() {
    cat >serve.yaml <<EOF
limits:
  connections: 256
  client_connections: 64
  buffered: ${BUFFERED_MIB}MiB
  client_buffered: 64MiB
  body: 64MiB
  header_timeout: 2s
  body_timeout: 5s
health: {interval: 500ms, timeout: 500ms, failures: 2}
EOF
}

# figure NAME FILE: the value of a "NAME value" line.
figure() {
    awk -v k="$1" '$1 == k { print $2 }' "$2"
}

@test "D6: sixteen 63 MB uploads leave the router's memory under its budget" {
    write_config
    start_serve --config serve.yaml
    cairn-soak-tool --target "127.0.0.1:$PORT" --path /v2/models/clf/infer --body "$BODY" \
        --duration 8 --pid "$SERVE_PID" --normal 2 --big 16 >soak.out
    cat soak.out
    hwm="$(figure server_vmhwm_kib soak.out)"
    echo "router peak RSS: $((hwm / 1024)) MiB (budget $BUFFERED_MIB MiB + $MARGIN_MIB MiB margin)"
    [ "$hwm" -lt $(((BUFFERED_MIB + MARGIN_MIB) * 1024)) ]
    # Refusals happened (the attack did not fit) and normal traffic was never refused.
    run grep -E '^big .*(429|503)' soak.out
    assert_success
    [ "$(figure normal_errors soak.out)" -eq 0 ]
    [ "$(figure normal_requests soak.out)" -gt 0 ]
    # The router counts what it refused.
    run curl -sf "$CAIRN_SERVER/metrics"
    assert_output --regexp 'cairn_http_refused_total\{what="bytes",limit="(client|global)"\} [1-9]'
}

@test "soak: hostile clients beside normal traffic; bounded memory, no normal error" {
    write_config
    start_serve --config serve.yaml
    secs="${CAIRN_SOAK_SECONDS:-20}"
    cairn-soak-tool --target "127.0.0.1:$PORT" --path /v2/models/clf/infer --body "$BODY" \
        --duration "$secs" --pid "$SERVE_PID" --normal 4 --big 8 --slow-big 4 \
        --slowloris 80 --flood 4 --oversize 2 >soak.out
    hwm="$(figure server_vmhwm_kib soak.out)"
    {
        echo "# t4300 soak, $secs s: caps 256 connections (64 per client), $BUFFERED_MIB MiB buffered (64 MiB per client)"
        cat soak.out
        echo "router_peak_rss_mib $((hwm / 1024))"
    } | tee "$CAIRN_BUILD_DIR/t4300-soak.txt"
    [ "$hwm" -lt $(((BUFFERED_MIB + MARGIN_MIB) * 1024)) ]
    [ "$(figure normal_errors soak.out)" -eq 0 ]
    [ "$(figure normal_requests soak.out)" -gt 100 ]
    # Every hostile class was stopped by something: 413 for oversize, 408 or a
    # close for slowloris and slow bodies, 429 for the connections over the
    # per-client cap, 503 for bodies over the global budget (which, on a loaded
    # machine, the slow uploads can reach before their per-client cap).
    run grep -E '^oversize .*413' soak.out
    assert_success
    run grep -E '^slowloris .*(408|429)' soak.out
    assert_success
    run grep -E '^slow_big .*(408|429|503|closed)' soak.out
    assert_success
    # The router is fine afterwards and holds nothing for the clients that left.
    run curl -s -o /dev/null -w '%{http_code}' -X POST -d "$BODY" "$CAIRN_SERVER/v2/models/clf/infer"
    assert_output 200
    wait_until 10 bash -c "curl -s $CAIRN_SERVER/metrics | grep -qx 'cairn_http_buffered_bytes 0'"
}

# upstream_ready ROLE: whether clf's ROLE upstream is in rotation, per the status API.
upstream_ready() {
    [[ "$(cairn rollout status clf --json | jq -r ".$1.ready")" == "$2" ]]
}

# ask KEY: one inference as user KEY; prints "STATUS VERSION".
ask() {
    curl -s -m 15 -o /dev/null -w '%{http_code} %header{x-cairn-version}\n' -H "X-User: $1" \
        -X POST -d "$BODY" "$CAIRN_SERVER/v2/models/clf/infer"
}

@test "D16: a SIGSTOPped candidate leaves rotation within seconds and no request fails" {
    write_config
    start_serve --config serve.yaml
    cat >plan.yaml <<'EOF'
strategy: canary
steps: [{weight: 50, pause: 1h}, {weight: 100}]
analysis: {interval: 1h, checks: [{metric: error_rate, max: 0.5}]}
sticky: {header: X-User}
EOF
    cairn rollout start clf@v2 --alias production --plan plan.yaml >/dev/null
    wait_until 20 upstream_ready candidate true
    # A user the sticky split sends to the candidate.
    key=
    for i in $(seq 1 64); do
        if [[ "$(ask "u$i")" == "200 clf@v2" ]]; then
            key="u$i"
            break
        fi
    done
    [ -n "$key" ]
    pid="$(cairn rollout status clf --json | jq -r .candidate.pid)"
    kill -STOP "$pid"
    # That user keeps asking while the candidate hangs. The first requests are
    # caught on it until the probes take it out of rotation; they are then
    # retried on stable. None may fail.
    (while [[ ! -e stop ]]; do ask "$key"; done) >answers &
    load=$!
    wait_until 15 upstream_ready candidate false
    run ask "$key"
    assert_output "200 clf@v1"
    kill -CONT "$pid"
    wait_until 15 upstream_ready candidate true
    touch stop
    wait "$load"
    run grep -vc '^200 ' answers
    assert_output 0
    run grep -c '^200 clf@v1' answers
    [ "$output" -gt 0 ]
    run ask "$key"
    assert_output "200 clf@v2"
    grep -q 'clf@v2 out of rotation' "$TEST_DIR/serve.log"
    grep -q 'clf@v2 back in rotation' "$TEST_DIR/serve.log"
    # What it could not serve counts against it.
    [ "$(cairn rollout status clf --json | jq -r .candidate.errors)" -gt 0 ]
}

@test "D16: a SIGSTOPped stable version with no fallback answers 503 at once, then recovers" {
    write_config
    start_serve --config serve.yaml
    pid="$(curl -s -H "Authorization: Bearer $CAIRN_TOKEN" "$CAIRN_SERVER/api/v1/rollouts/clf" |
        jq -r .stable.pid)"
    kill -STOP "$pid"
    wait_until 15 upstream_ready stable false
    run curl -s -m 3 -o /dev/null -w '%{http_code}' -X POST -d "$BODY" \
        "$CAIRN_SERVER/v2/models/clf/infer"
    assert_output 503
    kill -CONT "$pid"
    wait_until 15 upstream_ready stable true
    run curl -s -m 5 -o /dev/null -w '%{http_code}' -X POST -d "$BODY" \
        "$CAIRN_SERVER/v2/models/clf/infer"
    assert_output 200
}

@test "limits and health settings are checked, naming the line" {
    printf 'limits:\n  buffered: 1MiB\n' >bad.yaml
    run cairn serve --config bad.yaml --listen 127.0.0.1:0
    assert_failure
    assert_output --partial "bad.yaml:2:3"
    assert_output --partial "at least body"
    printf 'limits: {client_buffered: 12 parsecs}\n' >bad.yaml
    run cairn serve --config bad.yaml --listen 127.0.0.1:0
    assert_failure
    assert_output --partial "expected a byte count"
    printf 'health:\n  failures: 0\n' >bad.yaml
    run cairn serve --config bad.yaml --listen 127.0.0.1:0
    assert_failure
    assert_output --partial "bad.yaml:2:13: failures must be from 1 to 100"
    printf 'limits: {connextions: 5}\n' >bad.yaml
    run cairn serve --config bad.yaml --listen 127.0.0.1:0
    assert_failure
    assert_output --partial "connextions"
}
