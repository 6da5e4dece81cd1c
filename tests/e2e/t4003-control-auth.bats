#!/usr/bin/env bats
# t4003: who may do what through the control API of cairn serve (issue #21,
# D2 and "token scopes"): the release check on every rollout (a candidate
# must have passed the gate of the alias's policy; only --force with a
# reason, promote role, gets past it, audited), the roles of each action
# (docs/serving.md, "Roles"), tokens limited to models, and what a bad ref
# is told.
#
# Fixture: serve_helpers' clf v1 (production) and v2, both passed
# production's gate (gate.yaml); v3 never gated; v4 failed it. Tokens of
# each role: reader, writer, promoter (and the fixture's admin).

load helpers
load serve_helpers

bats_require_minimum_version 1.5.0

setup() {
    cairn_setup
    serve_fixture
    write_model model.safetensors 3
    cairn add --model clf model.safetensors >/dev/null
    cairn commit clf -m v3 --metrics metrics.json >/dev/null
    printf '{"accuracy": 0.1}\n' >bad-metrics.json
    write_model model.safetensors 4
    cairn add --model clf model.safetensors >/dev/null
    cairn commit clf -m v4 --metrics bad-metrics.json >/dev/null
    run cairn gate clf@v4 --policy gate.yaml
    assert_failure 3
    READER="$(cairn token create --role read --name reader 2>/dev/null)"
    WRITER="$(cairn token create --role write --name writer 2>/dev/null)"
    PROMOTER="$(cairn token create --role promote --name promoter 2>/dev/null)"
    start_serve
}

teardown() {
    cairn_teardown
}

# api TOKEN METHOD PATH [BODY]: the answer's body, then its status on a line of its own.
api() {
    local token="$1" method="$2" path="$3" body="${4:-}"
    curl -s -X "$method" -H "Authorization: Bearer $token" ${body:+-d "$body"} \
        -w '\n%{http_code}\n' "$CAIRN_SERVER/api/v1$path"
}

# start_body REF PLAN [EXTRA]: a rollout start request for production.
start_body() {
    local extra="${3:-}"
    jq -cn --arg ref "$1" --arg plan "$2" "{ref: \$ref, alias: \"production\", plan: \$plan} + ${extra:-{\}}"
}

ONE_STEP_NO_CHECKS=$'strategy: canary\nsteps: [{weight: 100}]\nanalysis: {interval: 100ms, checks: []}\n'
LONG_WITH_CHECKS=$'strategy: canary\nsteps: [{weight: 50, pause: 600s}, {weight: 100}]\nanalysis: {interval: 1s, min_requests: 5, checks: [{metric: error_rate, max: 0.5}]}\n'

production_is() {
    cairn alias list clf | grep -Eq "production +$1 "
}

@test "D2: a write token's one-step weight-100 plan without checks is refused; production unchanged" {
    for ref in clf@v2 clf@v3; do
        run api "$WRITER" POST /rollouts "$(start_body "$ref" "$ONE_STEP_NO_CHECKS")"
        assert_line --index 1 403
        assert_output --partial "a rollout whose plan promotes without analysis checks needs the promote role; the token has write"
    done
    # The same plan as YAML the CLI sends, bluegreen without checks: the same refusal.
    printf 'strategy: bluegreen\nanalysis: {checks: []}\n' >bg.yaml
    CAIRN_TOKEN="$WRITER" run cairn rollout start clf@v2 --alias production --plan bg.yaml
    assert_failure 1
    assert_output --partial "needs the promote role"
    # Even with the promote role, the never-gated v3 does not start: the release check.
    run api "$PROMOTER" POST /rollouts "$(start_body clf@v3 "$ONE_STEP_NO_CHECKS")"
    assert_line --index 1 409
    assert_output --partial "refusing to roll out clf@v3 to 'production': it has no gate result for policy"
    jq -e '.policy | endswith("gate.yaml")' <<<"${lines[0]}"
    jq -e '.gate == null' <<<"${lines[0]}"
    # Nothing moved: no candidate, no weight, no audit event, production still v1.
    run status
    jq -e '.phase == "none" and .candidate == null and .weight == 0' <<<"$output"
    production_is v1
    run cairn audit --json
    jq -e '[.[] | select(.action | startswith("rollout."))] | length == 0' <<<"$output"
}

@test "a never-gated or failed candidate is refused even with a promote token unless forced; forced is audited" {
    printf '%s' "$LONG_WITH_CHECKS" >plan.yaml
    CAIRN_TOKEN="$PROMOTER" run cairn rollout start clf@v3 --alias production --plan plan.yaml
    assert_failure 3
    assert_output --partial "it has no gate result for policy"
    assert_output --partial "cairn gate clf@v3 --policy"
    CAIRN_TOKEN="$PROMOTER" run cairn rollout start clf@v4 --alias production --plan plan.yaml
    assert_failure 3
    assert_output --regexp "its latest gate for policy '.*gate.yaml' \([0-9a-f]{12}\) failed"
    run api "$PROMOTER" POST /rollouts "$(start_body clf@v4 "$LONG_WITH_CHECKS")"
    assert_line --index 1 409
    jq -e '.gate != null and .gate_passed == false' <<<"${lines[0]}"
    run status
    jq -e '.phase == "none" and .candidate == null' <<<"$output"

    # force needs a reason, and the promote role.
    CAIRN_TOKEN="$PROMOTER" run cairn rollout start clf@v3 --alias production --force
    assert_failure 2
    assert_output --partial -- "--force needs --reason"
    run api "$PROMOTER" POST /rollouts "$(start_body clf@v3 "$LONG_WITH_CHECKS" '{force: true}')"
    assert_line --index 1 400
    assert_output --partial "force needs a 'reason'"
    CAIRN_TOKEN="$WRITER" run cairn rollout start clf@v3 --alias production --plan plan.yaml \
        --force --reason "hotfix"
    assert_failure 1
    assert_output --partial "force past the release check needs the promote role; the token has write"

    CAIRN_TOKEN="$PROMOTER" run cairn rollout start clf@v3 --alias production --plan plan.yaml \
        --force --reason "hotfix for incident 7"
    assert_success
    assert_output --partial "running, canary step 1 of 2"
    assert_output --partial "forced past the release check: hotfix for incident 7"
    run cairn audit --json
    jq -e '[.[] | select(.action == "rollout.start")][-1]
           | .actor == "token:promoter" and .subject == "clf@production"
             and .details.forced == true and .details.reason == "hotfix for incident 7"
             and (.details.policy_name | endswith("gate.yaml")) and .details.gate == null
             and (.details.policy | length) == 64' <<<"$output"
    # It stays forced: the promotion is audited forced too.
    CAIRN_TOKEN="$PROMOTER" run cairn rollout promote clf
    assert_success
    production_is v3
    run cairn audit --json
    jq -e '[.[] | select(.action == "rollout.promote")][-1].details.forced == true' <<<"$output"
}

@test "a gated candidate's rollout promotes; a gate that failed since the start stops the promotion" {
    printf 'strategy: canary\nsteps: [{weight: 100}]\nanalysis: {interval: 200ms, min_requests: 3, checks: [{metric: error_rate, max: 0.5}]}\n' >plan.yaml
    CAIRN_TOKEN="$WRITER" run cairn rollout start clf@v2 --alias production --plan plan.yaml
    assert_success
    wait_until 20 bash -c "cairn rollout status clf --json | jq -e '.candidate.ready' >/dev/null"
    for ((i = 0; i < 100; i++)); do
        curl -s -o /dev/null -d "$BODY" "$CAIRN_SERVER/v2/models/clf/infer?[1-5]"
        phase_is promoted && break
        sleep 0.1
    done
    phase_is promoted
    production_is v2
    run cairn audit --json
    jq -e '[.[] | select(.action == "rollout.promote")][-1].details
           | .forced == false and (.gate | type) == "number" and (.policy_name | endswith("gate.yaml"))' \
        <<<"$output"

    # Back to v1, then v3 signed and gated under a policy that wants a
    # trusted signature; the key is withdrawn and the gate re-run (failed)
    # while the rollout waits for traffic: the promotion is refused.
    cairn alias set clf production clf@v1 >/dev/null
    printf 'checks:\n  - metric: accuracy\n    min: 0.5\n  - signature: required\n' >gate.yaml
    cairn keygen --trust >/dev/null 2>&1
    cairn sign clf@v3 >/dev/null 2>&1
    cairn gate clf@v3 --policy gate.yaml >/dev/null
    CAIRN_TOKEN="$WRITER" run cairn rollout start clf@v3 --alias production --plan plan.yaml
    assert_success
    wait_until 20 bash -c "cairn rollout status clf --json | jq -e '.candidate.ready' >/dev/null"
    rm .cairn/trusted_keys/*.pub
    run cairn gate clf@v3 --policy gate.yaml
    assert_failure 3
    for ((i = 0; i < 100; i++)); do
        curl -s -o /dev/null -d "$BODY" "$CAIRN_SERVER/v2/models/clf/infer?[1-5]"
        phase_is running || break
        sleep 0.1
    done
    run status
    jq -e '.phase == "rolled_back" and .candidate == null' <<<"$output"
    assert_output --partial "refusing to promote clf@v3 to 'production': its latest gate for policy"
    production_is v1
    run cairn audit --json
    jq -e '[.[] | select(.action == "rollout.promote")] | length == 1' <<<"$output"
    grep -q "promotion of clf@v3 refused" "$TEST_DIR/serve.log"
}

@test "each role: what it may do and the first thing it may not" {
    # read
    run api "$READER" GET /rollouts
    assert_line --index 1 200
    run api "$READER" GET /rollouts/clf
    assert_line --index 1 200
    run api "$READER" POST /feedback '{"request_id": "x", "label": 1}'
    assert_line --index 1 403
    assert_output --partial "feedback needs the write role; the token has read"
    run api "$READER" POST /rollouts "$(start_body clf@v2 "$LONG_WITH_CHECKS")"
    assert_line --index 1 403
    assert_output --partial "rollout start needs the write role"

    # write: feedback, start with analysis, pause, resume, abort, rollback to stable
    run api "$WRITER" POST /feedback '{"request_id": "x", "label": 1}'
    assert_line --index 1 200
    run api "$WRITER" POST /rollouts "$(start_body clf@v2 "$LONG_WITH_CHECKS")"
    assert_line --index 1 201
    for action in pause resume; do
        run api "$WRITER" POST "/rollouts/clf/$action" '{}'
        assert_line --index 1 200
    done
    run api "$WRITER" POST /rollouts/clf/promote '{}'
    assert_line --index 1 403
    assert_output --partial "rollout promote needs the promote role; the token has write"
    run api "$WRITER" POST /rollback '{"model": "clf", "to": "clf@v2"}'
    assert_line --index 1 403
    assert_output --partial "rollback to a chosen version (--to) needs the promote role"
    run api "$WRITER" POST /rollouts/clf/abort '{}'
    assert_line --index 1 200
    run api "$WRITER" POST /rollouts "$(start_body clf@v2 "$LONG_WITH_CHECKS")"
    assert_line --index 1 201
    CAIRN_TOKEN="$WRITER" run cairn rollback clf
    assert_success
    phase_is rolled_back
    production_is v1

    # promote: promote now, rollback --to (through the release check), a plan without checks
    run api "$PROMOTER" POST /rollouts "$(start_body clf@v2 "$LONG_WITH_CHECKS")"
    assert_line --index 1 201
    CAIRN_TOKEN="$PROMOTER" run cairn rollout promote clf
    assert_success
    production_is v2
    CAIRN_TOKEN="$PROMOTER" run cairn rollback clf --to clf@v1
    assert_success
    production_is v1
    CAIRN_TOKEN="$PROMOTER" run cairn rollback clf --to clf@v4
    assert_failure 3
    assert_output --partial "refusing to roll back clf@v4 to 'production': its latest gate"
    production_is v1
    CAIRN_TOKEN="$PROMOTER" run cairn rollback clf --to clf@v4 --force --reason "known good in staging"
    assert_success
    production_is v4
    run cairn audit --json
    jq -e '[.[] | select(.action == "rollback")][-1].details
           | .forced == true and .reason == "known good in staging" and (.gate | type) == "number"
             and .to == "clf@v4"' <<<"$output"
    run api "$PROMOTER" POST /rollouts "$(start_body clf@v2 "$ONE_STEP_NO_CHECKS")"
    assert_line --index 1 201
    wait_until 20 phase_is promoted
    production_is v2
    # A token in the registry since before scopes, or made now without --model: every model.
    run api "$TOKEN" GET /rollouts
    assert_line --index 1 200
}

@test "a token limited to a model is refused on another model's control API" {
    write_model other.safetensors 5
    cairn add --model other other.safetensors >/dev/null
    cairn commit other -m v1 --metrics metrics.json >/dev/null
    cairn alias set other production other@v1 >/dev/null
    # Served from the start, as a model of the repository.
    kill -TERM "$SERVE_PID"
    wait_until 15 bash -c "! kill -0 $SERVE_PID 2>/dev/null"
    start_serve
    scoped="$(cairn token create --role promote --name other-only --model other 2>err)"
    grep -q "created token 'other-only' with role promote limited to model other" err
    run cairn token create --role write --model 'Bad Name'
    assert_failure 2

    run api "$scoped" GET /rollouts/clf
    assert_line --index 1 403
    assert_output --partial "is limited to model 'other', not 'clf'"
    run api "$scoped" POST /rollouts "$(start_body clf@v2 "$LONG_WITH_CHECKS")"
    assert_line --index 1 403
    assert_output --partial "limited to model 'other', not 'clf'"
    run api "$scoped" POST /rollouts/clf/abort '{}'
    assert_line --index 1 403
    run api "$scoped" POST /rollback '{"model": "clf"}'
    assert_line --index 1 403
    run api "$scoped" GET /models/clf/inputs
    assert_line --index 1 403
    # Its own model is fine, and the list shows only it.
    run api "$scoped" GET /rollouts/other
    assert_line --index 1 200
    run api "$scoped" GET /rollouts
    jq -e '[.[].model] == ["other"]' <<<"${lines[0]}"
    # Labels for clf's answers are refused, not joined.
    id="$(curl -s -o /dev/null -w '%header{x-request-id}' -d "$BODY" "$CAIRN_SERVER/v2/models/clf/infer")"
    run api "$scoped" POST /feedback "{\"request_id\": \"$id\", \"label\": 1}"
    assert_line --index 1 200
    jq -e '.joined == 0 and .refused == 1' <<<"${lines[0]}"
    run api "$TOKEN" POST /feedback "{\"request_id\": \"$id\", \"label\": 1}"
    jq -e '.joined == 1' <<<"${lines[0]}"
    run cairn audit --json
    jq -e '[.[] | select(.action == "token.create" and .subject == "other-only")][0].details.models == ["other"]' <<<"$output"
}

@test "a 5000-byte ref is reported as too long, with the forms a ref takes" {
    long="$(head -c 5000 /dev/zero | tr '\0' a)"
    run api "$TOKEN" POST /rollouts "$(start_body "$long" "$LONG_WITH_CHECKS")"
    assert_line --index 1 400
    assert_output --partial "'ref' is too long (5000 bytes, at most 255): MODEL, MODEL@vN, MODEL@ALIAS, MODEL@TAG or a version id"
    refute_output --partial "is required"
    CAIRN_TOKEN="$TOKEN" run cairn rollout start "$long" --alias production
    assert_failure 2
    assert_output --partial "'ref' is too long (5000 bytes"
    run api "$TOKEN" POST /rollback "{\"model\": \"clf\", \"to\": \"$long\"}"
    assert_line --index 1 400
    assert_output --partial "'to' is too long (5000 bytes"
    run api "$TOKEN" POST /rollouts '{"alias": "production"}'
    assert_line --index 1 400
    assert_output --partial "'ref' is required: MODEL, MODEL@vN"
    run api "$TOKEN" POST /rollouts '{"ref": 7}'
    assert_output --partial "'ref' must be a string"
}
