#!/usr/bin/env bats
# t4000: cairn serve with real processes on 127.0.0.1: routing, canary
# promotion, automatic rollback on errors and on live accuracy, sticky
# routing, shadow, a killed backend, a restarted daemon, weight changes under
# load, tokens and roles, /metrics, and rollback without a daemon.
#
# The models are serve_helpers' two-layer MLP: the input [2, 1] gets label
# 1. Requests go out in batches from one curl process (URL globbing:
# keep-alive, one line of status, version and request id per request).

load helpers
load serve_helpers

setup() {
    cairn_setup
    serve_fixture
}

stop_serve() {
    kill -TERM "$SERVE_PID"
    wait_until 15 bash -c "! kill -0 $SERVE_PID 2>/dev/null"
}

# start_backend VAR ARGS...: a serve-model of clf@v2 with fault flags; its port in $VAR.
start_backend() {
    local var="$1" port
    shift
    port="$(free_port)"
    run_bg "$TEST_DIR/backend-$port.log" cairn serve-model clf@v2 --listen "127.0.0.1:$port" "$@"
    wait_until 20 curl -sf "http://127.0.0.1:$port/v2/health/ready"
    printf -v "$var" '%s' "$port"
}

# infer N [CURL ARGS...]: N requests on one connection; prints "STATUS VERSION ID LABEL" lines.
infer() {
    local n="$1"
    shift
    curl -s -X POST -H 'Content-Type: application/json' -d "$BODY" "$@" \
        -w '\n@@ %{http_code} %header{x-cairn-version} %header{x-request-id}\n' \
        "$CAIRN_SERVER/v2/models/clf/infer?[1-$n]" |
        awk '/"name":"label"/ { s = substr($0, index($0, "\"name\":\"label\""));
                                s = substr(s, index(s, "\"data\":[") + 8);
                                match(s, /^[0-9]+/); l = substr(s, 1, RLENGTH) }
             /^@@ / { print $2, $3, $4, l; l = "" }'
}

write_plan() {
    cat >plan.yaml
}

@test "routing headers, a healthy canary promotes itself, metrics pass promtool" {
    start_serve
    run infer 5 -H 'X-Request-Id: my-id-1'
    assert_success
    assert_line --index 0 "200 clf@v1 my-id-1 1"
    run curl -s -D - -o /dev/null -X POST -d "$BODY" "$CAIRN_SERVER/v2/models/clf/infer"
    assert_output --regexp 'X-Request-Id: [0-9a-f]{32}'
    run curl -s -o /dev/null -w '%{http_code}' "$CAIRN_SERVER/v2/models/nope/infer" -d '{}'
    assert_output 404

    write_plan <<'EOF'
strategy: canary
steps: [{weight: 30, pause: 1s}, {weight: 70, pause: 1s}, {weight: 100}]
analysis:
  interval: 1s
  min_requests: 5
  checks:
    - {metric: error_rate, max: 0.05}
    - {metric: latency_p99_ms, max: 5000}
EOF
    run cairn rollout start clf@v2 --alias production --plan plan.yaml
    assert_success
    assert_output --partial "running, canary step 1 of 3"
    for ((i = 0; i < 60; i++)); do
        infer 40 >>answers
        phase_is promoted && break
        sleep 0.2
    done
    run status
    assert_equal "$(jq -r .phase <<<"$output")" promoted
    assert_equal "$(jq -r .stable.version <<<"$output")" clf@v2
    run grep -vc '^200 ' answers
    assert_output 0
    run cairn alias list clf
    assert_output --regexp 'production +v2'
    run cairn audit
    assert_output --partial rollout.promote
    assert_output --partial rollout.step

    curl -sf "$CAIRN_SERVER/metrics" >metrics.txt
    grep -q 'cairn_requests_total{model="clf",version="v2",role="stable",code="200"}' metrics.txt
    grep -q 'cairn_rollout_phase{model="clf",phase="promoted"} 1' metrics.txt
    grep -q 'cairn_request_duration_seconds_bucket' metrics.txt
    if command -v promtool >/dev/null; then
        run promtool check metrics <metrics.txt
        assert_success
    else
        echo "# promtool not installed (Debian package prometheus): metrics format not checked" >&3
    fi
}

@test "a candidate answering 5xx is rolled back within one interval" {
    start_backend BAD --fail-rate 1
    printf 'models:\n  clf:\n    bind: {v2: "http://127.0.0.1:%s"}\n' "$BAD" >serve.yaml
    start_serve --config serve.yaml
    write_plan <<'EOF'
strategy: canary
steps: [{weight: 50, pause: 60s}, {weight: 100}]
analysis:
  interval: 1s
  min_requests: 10
  failure_limit: 1
  checks: [{metric: error_rate, max: 0.05}]
EOF
    cairn rollout start clf@v2 --alias production --plan plan.yaml >/dev/null
    wait_until 10 bash -c "cairn rollout status clf --json | jq -e '.candidate.ready' >/dev/null"
    infer 60 >answers
    grep -q '^500 clf@v2' answers
    # Judged at the next tick (<= 1 interval) once min_requests were seen.
    wait_until 3 phase_is rolled_back
    run status
    assert_output --partial "error_rate 1 > max 0.05"
    run infer 20
    refute_output --partial clf@v2
    refute_output --regexp '^(5|4)'
    run cairn audit
    assert_output --partial rollout.rollback
    assert_output --partial '"error_rate":1'
    run cairn alias list clf
    assert_output --regexp 'production +v1'
}

@test "a candidate with wrong answers is rolled back on feedback labels" {
    start_backend WRONG --wrong-rate 1
    printf 'models:\n  clf:\n    bind: {v2: "http://127.0.0.1:%s"}\n' "$WRONG" >serve.yaml
    start_serve --config serve.yaml
    write_plan <<'EOF'
strategy: canary
steps: [{weight: 50, pause: 60s}, {weight: 100}]
analysis:
  interval: 1s
  min_requests: 10
  min_labels: 10
  checks:
    - {metric: error_rate, max: 0.05}
    - {metric: accuracy, min: 0.8, max_drop_vs_stable: 0.1}
EOF
    cairn rollout start clf@v2 --alias production --plan plan.yaml >/dev/null
    wait_until 10 bash -c "cairn rollout status clf --json | jq -e '.candidate.ready' >/dev/null"
    infer 80 >answers
    # Every answer is a 200: only the labels tell the candidate is wrong.
    run grep -vc '^200 ' answers
    assert_output 0
    grep -q '^200 clf@v2 [0-9a-f]* 0$' answers
    phase_is running
    jq -Rn '[inputs | split(" ") | {request_id: .[2], label: 1}]' <answers >feedback.json
    run curl -s -H "Authorization: Bearer $TOKEN" -d @feedback.json "$CAIRN_SERVER/api/v1/feedback"
    assert_output --partial '"joined":80'
    wait_until 3 phase_is rolled_back
    run status
    assert_output --partial "accuracy 0 < min 0.8"
    assert_equal "$(jq -r .stable.accuracy <<<"$output")" 1
}

@test "a sticky key always lands on one version; shadow answers never reach clients" {
    start_serve
    write_plan <<'EOF'
strategy: canary
steps: [{weight: 50, pause: 60s}, {weight: 100}]
sticky: {header: X-User-Id}
EOF
    cairn rollout start clf@v2 --alias production --plan plan.yaml >/dev/null
    wait_until 20 bash -c "cairn rollout status clf --json | jq -e '.candidate.ready' >/dev/null"
    for u in $(seq 1 12); do
        infer 15 -H "X-User-Id: user-$u" | cut -d' ' -f2 | sort -u >"versions-$u"
        run wc -l <"versions-$u"
        assert_output 1
    done
    # Twelve keys at 50%: both versions got some.
    run sort -u versions-*
    assert_line clf@v1
    assert_line clf@v2
    cairn rollout abort clf >/dev/null
    phase_is aborted
    stop_serve

    start_backend WRONG --wrong-rate 1
    printf 'models:\n  clf:\n    bind: {v2: "http://127.0.0.1:%s"}\n' "$WRONG" >serve.yaml
    start_serve --config serve.yaml
    write_plan <<'EOF'
strategy: shadow
analysis:
  interval: 1s
  min_requests: 20
  checks: [{metric: shadow_agreement, min: 0.9}]
EOF
    cairn rollout start clf@v2 --alias production --plan plan.yaml >/dev/null
    wait_until 10 bash -c "cairn rollout status clf --json | jq -e '.candidate.ready' >/dev/null"
    infer 40 >answers
    # Every client answer comes from stable with stable's label, never the candidate's 0.
    run grep -vc '^200 clf@v1 [0-9a-f]* 1$' answers
    assert_output 0
    wait_until 5 phase_is rolled_back
    run status
    assert_output --partial "shadow_agreement 0 < min 0.9"
}

@test "a killed candidate backend and weight changes under load lose no request" {
    start_serve
    write_plan <<'EOF'
strategy: canary
steps: [{weight: 50, pause: 2s}, {weight: 100, pause: 60s}]
analysis:
  interval: 1s
  min_requests: 5
  checks: [{metric: error_rate, max: 0.5}]
EOF
    cairn rollout start clf@v2 --alias production --plan plan.yaml >/dev/null
    wait_until 20 bash -c "cairn rollout status clf --json | jq -e '.candidate.ready' >/dev/null"
    pid="$(status | jq -r .candidate.pid)"
    (for i in $(seq 1 30); do infer 30; done) >answers &
    load=$!
    sleep 0.5
    kill -KILL "$pid"
    # The child is restarted; the weight goes 50% -> 100% meanwhile.
    wait_until 20 bash -c "cairn rollout status clf --json | jq -e '.candidate.ready and .candidate.pid != $pid' >/dev/null"
    wait "$load"
    run grep -vc '^200 ' answers
    assert_output 0
    run wc -l <answers
    assert_output 900
    wait_until 10 bash -c "cairn rollout status clf --json | jq -e '.weight == 100' >/dev/null"
    run infer 20
    refute_output --regexp '^(5|4)'
}

@test "a restarted serve resumes the rollout where it was" {
    start_serve
    write_plan <<'EOF'
strategy: canary
steps: [{weight: 20, pause: 1s}, {weight: 60, pause: 60s}, {weight: 100}]
analysis: {interval: 1s, min_requests: 3, checks: [{metric: error_rate, max: 0.05}]}
EOF
    cairn rollout start clf@v2 --alias production --plan plan.yaml >/dev/null
    for ((i = 0; i < 40; i++)); do
        infer 20 >/dev/null
        [[ "$(status | jq -r .step)" == 2 ]] && break
        sleep 0.2
    done
    assert_equal "$(status | jq -r .step)" 2
    stop_serve
    start_serve
    run status
    assert_equal "$(jq -r .phase <<<"$output")" running
    assert_equal "$(jq -r .step <<<"$output")" 2
    assert_equal "$(jq -r .weight <<<"$output")" 60
    assert_equal "$(jq -r .candidate.version <<<"$output")" clf@v2
    grep -q 'resumed rollout of clf@v2 at step 2' serve.log
}

@test "the control API needs a token (401) with the role (403)" {
    start_serve
    run curl -s -o /dev/null -w '%{http_code}' "$CAIRN_SERVER/api/v1/rollouts"
    assert_output 401
    run curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer cairn_bogus' \
        "$CAIRN_SERVER/api/v1/rollouts"
    assert_output 401
    reader="$(cairn token create --role read --name reader 2>/dev/null)"
    writer="$(cairn token create --role write 2>/dev/null)"
    run curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $reader" \
        "$CAIRN_SERVER/api/v1/rollouts/clf"
    assert_output 200
    run curl -s -w ' %{http_code}' -H "Authorization: Bearer $reader" -d '{}' \
        "$CAIRN_SERVER/api/v1/rollouts/clf/pause"
    assert_output --partial 403
    assert_output --partial "needs the write role"
    CAIRN_TOKEN="$writer" run cairn rollout start clf@v2 --alias production
    assert_success
    CAIRN_TOKEN="$writer" run cairn rollout promote clf
    assert_failure
    assert_output --partial "needs the promote role"
    CAIRN_TOKEN= run cairn rollout status clf
    assert_failure
    assert_output --partial "CAIRN_TOKEN"
    # A token the registry never saw is refused; the stored hash is not the token.
    # The daemon and its children open the registry meanwhile: wait for their locks
    # as cairn does (sqlite3 alone answers "database is locked" at once).
    run sqlite3 -cmd '.timeout 30000' .cairn/cairn.db "SELECT count(*) FROM api_tokens WHERE hex(hash) LIKE '%' || upper(substr('$reader', 7, 16)) || '%'"
    assert_output 0
}

# hold_registry_lock: take the registry's write lock in a sqlite3 fed from
# fd 4, as another writer or a slow disk would; 'echo COMMIT; >&4' and
# 'exec 4>&-' release it.
hold_registry_lock() {
    mkfifo lock.sql
    sqlite3 -cmd '.timeout 30000' .cairn/cairn.db <lock.sql >lock.out 2>&1 &
    track_pid $!
    exec 4>lock.sql
    printf 'BEGIN IMMEDIATE;\n.shell touch lock.held\n' >&4
    wait_until 10 test -e lock.held
}

@test "the control API answers a change once the registry holds it" {
    start_serve
    write_plan <<'EOF'
strategy: canary
steps: [{weight: 50, pause: 60s}, {weight: 100}]
EOF
    cairn rollout start clf@v2 --alias production --plan plan.yaml >/dev/null
    # The daemon's save of the promotion waits for the lock.
    hold_registry_lock
    (cairn rollout promote clf >promote.out 2>&1; echo $? >promote.rc) &
    track_pid $!
    # The promotion is a registry job (the release check, the alias move and the
    # state in one transaction), waiting for the lock: no answer says so yet.
    wait_until 20 bash -c "curl -sf $CAIRN_SERVER/metrics | grep -Eq '^cairn_registry_jobs [1-9]'"
    if wait_until 2 test -e promote.rc; then
        fail "promote answered before the registry held it: $(cat promote.out)"
    fi
    run cairn alias list clf
    assert_output --regexp 'production +v1'
    echo 'COMMIT;' >&4
    exec 4>&-
    wait_until 30 test -e promote.rc
    assert_equal "$(cat promote.rc)" 0
    run cairn alias list clf
    assert_output --regexp 'production +v2'
    run cairn audit
    assert_output --partial rollout.promote
}

@test "a registry slower than the analysis keeps one save queued, not one a tick" {
    start_serve
    write_plan <<'EOF'
strategy: canary
steps: [{weight: 50, pause: 60s}, {weight: 100}]
analysis: {interval: 100ms, min_requests: 5, checks: [{metric: error_rate, max: 0.05}]}
EOF
    cairn rollout start clf@v2 --alias production --plan plan.yaml >/dev/null
    hold_registry_lock
    queued_is() {
        [[ $(curl -sf "$CAIRN_SERVER/metrics" | awk '$1 == "cairn_registry_jobs" { print $2 }') == "$1" ]]
    }
    # One save runs (waiting for the lock), the next one waits for its turn.
    wait_until 10 queued_is 2
    # Ten more ticks: the waiting save takes each one's state. (However long
    # this lasts, the count must not grow: the sleep only gives it ticks.)
    sleep 1
    queued_is 2 || fail "saves piled up: $(curl -sf "$CAIRN_SERVER/metrics" | grep registry_jobs)"
    echo 'COMMIT;' >&4
    exec 4>&-
    # The status answer waits for those two saves only. (Not for an empty
    # queue: on a disk slower than 100 ms a save is always under way.)
    run status
    assert_equal "$(jq -r .phase <<<"$output")" running
}

@test "rollback without a daemon moves the alias back, audited" {
    cairn alias set clf production clf@v2 >/dev/null
    export CAIRN_SERVER="http://127.0.0.1:$(free_port)"
    run cairn rollback clf
    assert_success
    assert_output --partial "production -> clf@v1"
    run cairn alias list clf
    assert_output --regexp 'production +v1'
    run cairn audit
    assert_output --partial rollback
    run cairn rollback clf --to clf@v2
    assert_success
    run cairn alias list clf
    assert_output --regexp 'production +v2'
}
