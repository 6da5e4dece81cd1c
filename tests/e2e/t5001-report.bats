#!/usr/bin/env bats
# t5001: `cairn report` replays a scripted release history — commits, a gate
# that passes and one that fails, a promote, an offline rollback, a forced
# promote — into its tables and delivery metrics, human and --json. The
# first release passes a no_regression_vs check with no production yet
# (on_missing_baseline: pass), so it is not a failed change.

load helpers

bats_require_minimum_version 1.5.0

commit_model() {
    local acc="$1"
    echo "digits $acc $RANDOM" > w.bin
    printf '{"accuracy": %s}\n' "$acc" > metrics.json
    cairn add w.bin >/dev/null
    cairn commit digits -m "acc $acc" --metrics metrics.json >/dev/null
}

setup() {
    cairn_setup
    cairn init >/dev/null
    printf 'checks:\n  - metric: accuracy\n    min: 0.9\n  - metric: accuracy\n    no_regression_vs: production\n    tolerance: 0.005\n    on_missing_baseline: pass\n' > policy.yaml
    commit_model 0.95
    cairn gate digits@v1 --policy policy.yaml > gate-v1.txt
    cairn promote digits@v1 --to production --policy policy.yaml >/dev/null
    commit_model 0.96
    cairn gate digits@v2 --policy policy.yaml >/dev/null
    cairn promote digits@v2 --to production --policy policy.yaml >/dev/null
    cairn rollback digits --alias production --server http://127.0.0.1:1 >/dev/null
    commit_model 0.50
    run cairn gate digits@v3 --policy policy.yaml
    assert_failure 3
    cairn promote digits@v3 --to production --force --reason "hotfix" 2>/dev/null >/dev/null
}

teardown() {
    cairn_teardown
}

@test "report prints versions with gates, alias history, changes and the metrics" {
    run cairn report digits
    assert_success
    assert_output --partial "report digits (deliveries to @production)"
    assert_output --regexp 'v1 +[0-9a-f]{12} .* pass '
    assert_output --regexp 'v3 +[0-9a-f]{12} .* fail '
    assert_output --regexp 'production +v2 +v1 +[^ ]+ +rollback'
    assert_output --regexp 'v3 +promote +forced .* hotfix'
    assert_output --regexp 'deployment frequency +3.00 per day \(3 deployments\)'
    assert_output --regexp 'change failure rate +0.67 \(2 of 3 changes\)'
    assert_output --regexp 'time to restore +[0-9.]+s median over 1 restore'
    assert_output --regexp 'lead time to @production +[0-9.]+s median over 3 versions'
}

@test "the first release passed its gate with no baseline, and said so" {
    run cat gate-v1.txt
    assert_output --regexp 'pass +metric +accuracy +0\.950 +≥ production \(none\) - 0\.005'
    assert_output --partial "baseline missing: alias 'production' is not set; passed because of on_missing_baseline: pass"
    run cairn audit --json
    echo "$output" | jq -e '[.[] | select(.action == "promote")][0].details.forced == false'
}

@test "report --json has the same figures" {
    run cairn report --json
    assert_success
    echo "$output" | jq -e '.alias == "production" and (.models | length) == 1'
    m=$(echo "$output" | jq -c '.models[0]')
    echo "$m" | jq -e '[.versions[].gate] == ["pass", "pass", "fail"]'
    echo "$m" | jq -e '[.changes[].outcome] == ["promoted", "promoted", "forced"]'
    echo "$m" | jq -e '[.changes[].failed] == [false, true, true]'
    echo "$m" | jq -e '.changes[1].restore_s >= 0 and .changes[2].restore_s == null'
    echo "$m" | jq -e '[.alias_history[] | [.from, .to]] == [[null, 1], [1, 2], [2, 1], [1, 3]]'
    echo "$m" | jq -e '.metrics.deployments == 3 and .metrics.changes == 3 and .metrics.failed_changes == 2'
    echo "$m" | jq -e '.metrics.window_days == 1 and .metrics.deployment_frequency_per_day == 3'
    echo "$m" | jq -e '.metrics.lead_time_count == 3 and .metrics.restores == 1'
    echo "$m" | jq -e '(.metrics.per_day | length) == 1 and .metrics.per_day[0].changes == 3'
}

@test "report of an unknown model fails; a bad name is a usage error" {
    run cairn report nope
    assert_failure 1
    run cairn report 'Bad Name'
    assert_failure 2
    run -2 cairn report digits --alias
    assert_output "cairn: --alias needs a value (ALIAS) (see 'cairn report --help')"
    run -2 cairn report digits extra
    assert_output "cairn: unexpected argument 'extra' (see 'cairn report --help')"
}

@test "report takes options anywhere" {
    run cairn report digits --json --alias production
    assert_success
    echo "$output" | jq -e '.alias == "production" and .models[0].model == "digits"'
    run cairn report --alias=staging -- digits
    assert_success
    assert_line --index 0 "report digits (deliveries to @staging)"
}
