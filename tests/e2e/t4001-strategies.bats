#!/usr/bin/env bats
# t4001: what t4000 leaves out: blue-green (all traffic at once, rollback
# instant because the old version never stopped), pausing and resuming a
# rollout from the CLI, and `cairn rollback NAME` through the running daemon
# after a promotion (the alias goes back to its previous target, in the
# alias history and the audit log), and the audited breach that starts the
# report's time to restore.
#
# Fixture and helpers are t4000's, from serve_helpers.bash (the input
# [2, 1] gets label 1 from both versions).

load helpers
load serve_helpers

setup() {
    cairn_setup
    serve_fixture
    start_serve
}

# infer N: N requests on one connection; prints "STATUS VERSION" lines.
infer() {
    curl -s -o /dev/null -X POST -H 'Content-Type: application/json' -d "$BODY" \
        -w '%{http_code} %header{x-cairn-version}\n' "$CAIRN_SERVER/v2/models/clf/infer?[1-$1]"
}

# candidate_ready: the rollout's candidate answers health checks.
candidate_ready() {
    status | jq -e '.candidate.ready' >/dev/null
}

@test "blue-green moves all traffic at once; rollback is instant" {
    cat >plan.yaml <<'EOF'
strategy: bluegreen
steps: [{weight: 100, pause: 60s}]
analysis: {interval: 1s, min_requests: 5, checks: [{metric: error_rate, max: 0.05}]}
EOF
    cairn rollout start clf@v2 --alias production --plan plan.yaml >/dev/null
    run status
    assert_equal "$(jq -r .strategy <<<"$output")" bluegreen
    assert_equal "$(jq -r .weight <<<"$output")" 100
    wait_until 20 candidate_ready
    run infer 20
    assert_success
    assert_equal "$(grep -c '^200 clf@v2$' <<<"$output")" 20
    # The old stack never stopped: the first requests after the rollback are
    # all answered by it, with no wait for a start or a health check.
    assert_equal "$(status | jq -r .stable.ready)" true
    run cairn rollback clf
    assert_success
    run infer 20
    assert_equal "$(grep -c '^200 clf@v1$' <<<"$output")" 20
    run status
    assert_equal "$(jq -r .phase <<<"$output")" rolled_back
    assert_equal "$(jq -r .weight <<<"$output")" 0
    run cairn alias list clf
    assert_output --regexp 'production +v1'
}

@test "rollout pause and resume from the CLI" {
    cat >plan.yaml <<'EOF'
strategy: canary
steps: [{weight: 30, pause: 1s}, {weight: 100}]
analysis: {interval: 500ms, min_requests: 1, checks: [{metric: error_rate, max: 0.05}]}
EOF
    cairn rollout start clf@v2 --alias production --plan plan.yaml >/dev/null
    run cairn rollout pause clf
    assert_success
    assert_output --partial paused
    # Well past the step's pause: a paused rollout does not advance.
    sleep 2.5
    run status
    assert_equal "$(jq -r .phase <<<"$output")" paused
    assert_equal "$(jq -r .step <<<"$output")" 1
    assert_equal "$(jq -r .weight <<<"$output")" 30
    wait_until 20 candidate_ready
    run infer 60
    refute_output --regexp '^(4|5)'
    assert_output --partial clf@v2
    run cairn rollout resume clf
    assert_success
    assert_output --partial running
    # Each step needs a passing analysis (the default error_rate check): keep traffic going.
    for ((i = 0; i < 50; i++)); do
        infer 10 >/dev/null
        phase_is promoted && break
        sleep 0.2
    done
    assert_equal "$(status | jq -r .phase)" promoted
    assert_equal "$(status | jq -r .stable.version)" clf@v2
    run cairn audit
    assert_output --partial rollout.pause
    assert_output --partial rollout.resume
    assert_output --partial rollout.promote
}

@test "cairn rollback after a promotion moves the alias back through the daemon" {
    cairn rollout start clf@v2 --alias production >/dev/null
    wait_until 20 candidate_ready
    run cairn rollout promote clf
    assert_success
    run cairn alias list clf
    assert_output --regexp 'production +v2'
    run infer 10
    assert_equal "$(grep -c '^200 clf@v2$' <<<"$output")" 10

    run cairn rollback clf
    assert_success
    # Traffic switched at once to the version kept warm as previous.
    run infer 10
    assert_equal "$(grep -c '^200 clf@v1$' <<<"$output")" 10
    run status
    assert_equal "$(jq -r .stable.version <<<"$output")" clf@v1
    assert_equal "$(jq -r .previous.version <<<"$output")" clf@v2
    run cairn alias list clf
    assert_output --regexp 'production +v1'
    run cairn alias history clf production
    assert_success
    assert_output --partial rollback
    run cairn audit
    assert_output --partial rollback
    assert_output --partial rollout.promote
}

# The rollout engine audits every failed analysis as rollout.breach (when,
# which failure of the limit, both windows' figures) before it rolls back,
# and `cairn report` measures time to restore from the first breach to the
# rollback, not from the rollout's start.
@test "a failed analysis is an audited breach; the report restores from the first one" {
    kill -TERM "$BG_PID"
    wait_until 15 bash -c "! kill -0 $BG_PID 2>/dev/null"
    bad="$(free_port)"
    run_bg "$TEST_DIR/bad.log" cairn serve-model clf@v2 --listen "127.0.0.1:$bad" --fail-rate 1
    wait_until 20 curl -sf "http://127.0.0.1:$bad/v2/health/ready"
    printf 'models:\n  clf:\n    bind: {v2: "http://127.0.0.1:%s"}\n' "$bad" >serve.yaml
    start_serve --config serve.yaml
    cat >plan.yaml <<'YAML'
strategy: canary
steps: [{weight: 50, pause: 600s}, {weight: 100}]
analysis:
  interval: 1s
  min_requests: 5
  failure_limit: 2
  checks: [{metric: error_rate, max: 0.05}]
YAML
    run cairn rollout start clf@v2 --alias production --plan plan.yaml
    assert_success
    wait_until 20 candidate_ready
    for ((i = 0; i < 300; i++)); do
        infer 10 >/dev/null
        phase_is rolled_back && break
        sleep 0.1
    done
    assert_equal "$(status | jq -r .phase)" rolled_back

    cairn audit --json >audit.json
    # Two breaches (failure_limit 2), then the rollback, in that order.
    run jq -c '[.[] | select(.subject == "clf@production" and (.action | startswith("rollout.")))
                | .action]' audit.json
    assert_output '["rollout.start","rollout.breach","rollout.breach","rollout.rollback"]'
    run jq -e '[.[] | select(.action == "rollout.breach")] | .[0].details
               | .failures == 1 and .failure_limit == 2 and .time_ns > 0 and .weight == 50
                 and .candidate.version == "clf@v2" and .candidate.error_rate == 1
                 and .stable.version == "clf@v1" and (.reason | test("error_rate 1 > max 0.05"))' \
        audit.json
    assert_success
    run jq -e '[.[] | select(.action == "rollout.breach")] | .[1].details.failures == 2' audit.json
    assert_success
    run cairn audit --verify
    assert_success

    # The report: restore runs from the first breach to the rollback.
    start_ns="$(jq '[.[] | select(.action == "rollout.start")][0].time_ns' audit.json)"
    breach_ns="$(jq '[.[] | select(.action == "rollout.breach")][0].time_ns' audit.json)"
    back_ns="$(jq '[.[] | select(.action == "rollout.rollback")][0].time_ns' audit.json)"
    cairn report clf --json | jq '.models[0]' >report.json
    run jq -c '[.changes[] | [.outcome, .failed]]' report.json
    assert_output '[["rolled_back",true]]'
    run jq -e --argjson b "$breach_ns" '.changes[0].breach_ns == $b and .changes[0].breach != null' report.json
    assert_success
    # restore_s is (rollback - first breach), not (rollback - start).
    run jq -e --argjson b "$breach_ns" --argjson e "$back_ns" --argjson s "$start_ns" '
        .changes[0].restore_s as $r
        | (($r - ($e - $b) / 1e9) | fabs) < 1e-6 and $b > $s
          and (($r - ($e - $s) / 1e9) | fabs) > 1e-6
          and .metrics.restores == 1 and .metrics.time_to_restore_median_s == $r' report.json
    assert_success
    run cairn report clf
    assert_output --regexp 'v2 +canary +rolled_back +[0-9.]+[smhd] +[0-9.]+[smhd] '
}

@test "a plan whose analysis lists no checks is refused, naming the line" {
    printf 'strategy: canary\nanalysis:\n  interval: 1s\n  min_requests: 5\n' >nochecks.yaml
    run cairn rollout start clf@v2 --alias production --plan nochecks.yaml
    assert_failure 2
    assert_output --partial "nochecks.yaml:3:3: analysis has no 'checks'"
    assert_output --partial "checks: []"
    run cairn rollout status clf --json
    assert_equal "$(jq -r .phase <<<"$output")" none
    # checks: [] is the explicit "judge nothing": accepted, steps advance on pauses.
    printf 'strategy: canary\nsteps: [{weight: 50, pause: 500ms}, {weight: 100}]\nanalysis: {interval: 200ms, checks: []}\n' >nothing.yaml
    run cairn rollout start clf@v2 --alias production --plan nothing.yaml
    assert_success
    wait_until 30 phase_is promoted
}
