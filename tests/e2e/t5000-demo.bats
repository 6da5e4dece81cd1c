#!/usr/bin/env bats
# t5000: `make demo` (scripts/demo.sh, quick mode) tells the whole story on
# the real digits data and every narrated outcome holds: the script checks
# each one and exits non-zero otherwise, and this test checks the output for
# the gate verdicts, the automatic promotion and rollback, the alias history
# and the report's figures. Needs the digits data (examples/digits/fetch-data.sh
# runs `apt-get download python3-sklearn` the first time).

load helpers

bats_require_minimum_version 1.5.0

@test "the demo runs end to end and each step behaves as narrated" {
    CAIRN_DEMO_QUICK=1 run bash "$REPO_ROOT/scripts/demo.sh"
    assert_success
    # data and lineage
    assert_output --regexp 'digits-train: 1 file, 1438 rows, [0-9]+ checks: passed'
    assert_output --regexp 'digits-test: 1 file, 359 rows, [0-9]+ checks: passed'
    # gate verdicts
    # v1, the first release, passes a real gate: no production to compare
    # with, and the policy's on_missing_baseline: pass says so in the output
    assert_output --partial "ok: v1 passes the gate; 'no regression vs production' had no baseline"
    assert_output --regexp 'pass +metric +accuracy +0\.[0-9]+ +≥ production \(none\) - 0\.005'
    assert_output --partial "baseline missing: alias 'production' is not set; passed because of on_missing_baseline: pass"
    assert_output --regexp 'promoted digits@v1 \([0-9a-f]{12}\) to digits@production'
    refute_output --partial '(forced)'
    refute_output --partial 'forced past the gate'
    assert_output --partial "ok: the gate fails v3 (exit 3)"
    assert_output --regexp 'fail +metric +loss +1\.5'
    assert_output --regexp 'pass +metric +size_bytes +[0-9]+ +≤ 6000'
    # automatic promotion and rollback
    assert_output --partial "ok: the canary passed every analysis and was promoted automatically"
    assert_output --partial "ok: the analysis failed twice and rolled v3 back automatically"
    assert_output --regexp 'digits@production: rolled_back, canary step 1 of 3'
    assert_output --partial "ok: the int8 version was promoted automatically"
    # alias history: v1 (promoted through the gate), v2 and v4 by the rollouts, never v3
    assert_output --regexp 'root +- +v1 +first release'
    assert_output --regexp 'cairn-serve +v1 +v2 +rollout.promote'
    assert_output --regexp 'cairn-serve +v2 +v4 +rollout.promote'
    refute_output --regexp 'cairn-serve +v[0-9] +v3 '
    # remote
    assert_output --partial "ok: the clone restores digits@v2 bit for bit"
    # the report
    assert_output --regexp 'v1 +promote +promoted .* first release'
    assert_output --regexp 'v3 +canary +rolled_back '
    assert_output --regexp 'change failure rate +0\.25 \(1 of 4 changes\)'
    assert_output --regexp 'deployment frequency +[0-9.]+ per day \(3 deployments\)'
    assert_output --regexp 'time to restore +[0-9.]+s median over 1 restore'
    assert_output --partial "ok: v3's time to restore runs from its first failed analysis (the breach)"
    assert_output --partial "ok: the audit chain verifies"
    assert_output --regexp 'done in [0-9]+ s'
}
