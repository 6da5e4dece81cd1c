#!/usr/bin/env bats
# t4005: crash consistency of `cairn serve` (issue 21, D8 and D9). A daemon
# killed in the middle of a promotion (CAIRN_TEST_CRASH_AT, a hook of test
# builds that _exit()s at a named instant of the registry write) must leave
# the alias and the stored rollout in agreement; a restart must not resume a
# rollout whose alias already moved; and a daemon killed with -9 must take
# its serve-model children with it.

load helpers
load serve_helpers

setup() {
    cairn_setup
    serve_fixture
    # Waits at 50% until promoted by hand: the analysis never has enough requests.
    cat >plan.yaml <<'EOF'
strategy: canary
steps: [{weight: 50, pause: 1h}, {weight: 100}]
analysis: {interval: 1s, min_requests: 1000000, checks: [{metric: error_rate, max: 0.05}]}
EOF
}

stop_serve() {
    kill -TERM "$SERVE_PID"
    wait_until 15 bash -c "! kill -0 $SERVE_PID 2>/dev/null"
}

# production_is VERSION: what `cairn alias list` says production points at.
production_is() {
    cairn alias list clf | grep -Eq " production +$1 "
}

# crash_in_promotion POINT: a rollout of clf@v2 at 50%, promoted by hand
# with the daemon set to die at POINT of the promotion's registry write.
crash_in_promotion() {
    CAIRN_TEST_CRASH_AT="$1" start_serve
    cairn rollout start clf@v2 --alias production --plan plan.yaml >/dev/null
    cairn rollout promote clf >/dev/null 2>&1 || true
    wait_until 15 bash -c "! kill -0 $SERVE_PID 2>/dev/null"
    local rc=0
    wait "$SERVE_PID" || rc=$?
    assert_equal "$rc" 9
}

# The router's view and the registry's agree: status's stable version is
# what production points at.
assert_agree() {
    local stable
    stable="$(status | jq -r .stable.version)"
    production_is "${stable#clf@}" || {
        cairn alias list clf >&2
        fail "serve says stable $stable, the registry does not"
    }
}

# restart_after_alias_set REF PHASE: a rollout of clf@v2 stored by a stopped
# daemon, production set to REF meanwhile; the restarted daemon shows the
# rollout in PHASE with REF stable, as the registry says.
restart_after_alias_set() {
    start_serve
    cairn rollout start clf@v2 --alias production --plan plan.yaml >/dev/null
    stop_serve
    cairn alias set clf production "$1" >/dev/null
    start_serve
    run status
    assert_equal "$(jq -r .phase <<<"$output")" "$2"
    assert_equal "$(jq -r .stable.version <<<"$output")" "$1"
    assert_equal "$(jq -r .candidate <<<"$output")" null
    assert_agree
}

@test "a crash after the alias move of a promotion rolls both back; a restart resumes at 50%" {
    crash_in_promotion after-alias-move
    run cairn alias list clf
    assert_output --regexp 'production +v1'
    start_serve
    assert_equal "$(status | jq -r .phase)" running
    assert_equal "$(status | jq -r .weight)" 50
    assert_agree
    cairn rollout promote clf >/dev/null
    wait_until 10 production_is v2
    assert_equal "$(status | jq -r .phase)" promoted
    assert_agree
}

@test "a crash after the state save of a promotion rolls both back" {
    crash_in_promotion after-state-save
    run cairn alias list clf
    assert_output --regexp 'production +v1'
    run sqlite3 .cairn/cairn.db "SELECT phase FROM rollouts WHERE model = 'clf'"
    assert_output running
    start_serve
    assert_equal "$(status | jq -r .phase)" running
    assert_agree
}

@test "a restart finishes a rollout whose alias already points at the candidate" {
    # What an older daemon left after a crash: the alias moved, the state not.
    restart_after_alias_set clf@v2 promoted
    assert_equal "$(status | jq -r .weight)" 0
    run sqlite3 .cairn/cairn.db "SELECT phase FROM rollouts WHERE model = 'clf'"
    assert_output promoted
    grep -q 'rollout promoted: clf@production already pointed at clf@v2' serve.log
    run cairn audit
    assert_output --partial rollout.promote
    # Restarting again changes nothing.
    stop_serve
    start_serve
    assert_equal "$(status | jq -r .stable.version)" clf@v2
}

@test "a restart ends a rollout whose alias was moved to a third version" {
    write_model model.safetensors 3
    cairn add --model clf model.safetensors >/dev/null
    cairn commit clf -m v3 >/dev/null
    restart_after_alias_set clf@v3 aborted
}

# children: the serve-model processes running in this test's repository.
children() {
    local pid
    for pid in $(pgrep -f 'cairn serve-model'); do
        [[ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" == "$TEST_DIR" ]] && echo "$pid"
    done
    return 0
}

@test "kill -9 of cairn serve takes its serve-model children along; a restart runs one" {
    start_serve
    local child
    child="$(status | jq -r .stable.pid)"
    [[ "$child" -gt 1 ]]
    assert_equal "$(children)" "$child"
    kill -KILL "$SERVE_PID"
    wait_until 10 bash -c "! kill -0 $child 2>/dev/null"
    start_serve
    run children
    assert_equal "${#lines[@]}" 1
    assert_equal "${lines[0]}" "$(status | jq -r .stable.pid)"
}

@test "serve-model started for a parent that is gone exits at once" {
    CAIRN_SERVE_PARENT=1 run cairn serve-model clf@v1 --listen 127.0.0.1:0
    assert_failure
    assert_output --partial "is not a process id"
    CAIRN_SERVE_PARENT=$$ run cairn serve-model clf@v1 --listen 127.0.0.1:0
    assert_failure
    assert_output --partial "exited before serve-model started"
}
