/*
 * Unit tests for lib/serve/plan.c: the SPEC §6 example, strategy defaults,
 * and the errors a release owner would make, each with its position.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "cairn/common.h"
#include "serve/plan.h"

static int parse(struct cairn_plan *p, const char *text)
{
    return cairn_plan_parse(p, "plan.yaml", text, strlen(text));
}

static void test_spec_example(void **state)
{
    struct cairn_plan p;
    (void)state;
    assert_int_equal(parse(&p,
                           "strategy: canary\n"
                           "steps: [{weight: 5, pause: 30s}, {weight: 25, pause: 60s}, "
                           "{weight: 100}]\n"
                           "analysis:\n"
                           "  interval: 5s\n"
                           "  min_requests: 100\n"
                           "  failure_limit: 2\n"
                           "  checks:\n"
                           "    - {metric: error_rate, max: 0.01}\n"
                           "    - {metric: latency_p99_ms, max: 200, max_ratio_to_stable: 1.5}\n"
                           "    - {metric: accuracy, min: 0.90, max_drop_vs_stable: 0.02}\n"
                           "sticky: {header: X-User-Id}\n"
                           "on_failure: rollback\n"),
                     0);
    assert_int_equal(p.strategy, CAIRN_STRATEGY_CANARY);
    assert_int_equal(p.nsteps, 3);
    assert_int_equal(p.steps[0].weight, 5);
    assert_int_equal(p.steps[0].pause_ms, 30000);
    assert_int_equal(p.steps[1].pause_ms, 60000);
    assert_int_equal(p.steps[2].weight, 100);
    assert_int_equal(p.steps[2].pause_ms, 0);
    assert_int_equal(p.interval_ms, 5000);
    assert_int_equal(p.min_requests, 100);
    assert_int_equal(p.min_labels, 100);
    assert_int_equal(p.failure_limit, 2);
    assert_int_equal(p.nchecks, 3);
    assert_int_equal(p.checks[1].metric, CAIRN_METRIC_LATENCY_P99);
    assert_true(p.checks[1].has_ratio);
    assert_true(p.checks[1].max_ratio_to_stable == 1.5);
    assert_true(p.checks[2].has_drop && p.checks[2].has_min);
    assert_int_equal(p.sticky, CAIRN_STICKY_HEADER);
    assert_string_equal(p.sticky_name, "X-User-Id");
    assert_int_equal(p.on_failure_pause, 0);
}

static void test_strategies(void **state)
{
    struct cairn_plan p;
    (void)state;
    assert_int_equal(parse(&p, "strategy: bluegreen\n"), 0);
    assert_int_equal(p.nsteps, 1);
    assert_int_equal(p.steps[0].weight, 100);
    assert_int_equal(parse(&p,
                           "strategy: ab\nab: {weight: 30, duration: 1h, samples: 500}\n"
                           "sticky: {cookie: uid}\n"),
                     0);
    assert_int_equal(p.steps[0].weight, 30);
    assert_int_equal(p.test_duration_ms, 3600000);
    assert_int_equal(p.test_samples, 500);
    assert_int_equal(p.sticky, CAIRN_STICKY_COOKIE);
    assert_int_equal(parse(&p,
                           "strategy: shadow\nanalysis:\n  min_labels: 5\n"
                           "  checks: [{metric: shadow_agreement, min: 0.9}]\n"),
                     0);
    assert_int_equal(p.min_labels, 5);
    assert_int_equal(p.checks[0].metric, CAIRN_METRIC_SHADOW_AGREEMENT);
    assert_int_equal(parse(&p, "on_failure: pause\n"), 0);
    assert_int_equal(p.on_failure_pause, 1);
    assert_int_equal(p.nsteps, 3); /* the default canary */
    /* No analysis block: the default analysis, error_rate at most 0.05. */
    assert_int_equal(p.nchecks, 1);
    assert_int_equal(p.checks[0].metric, CAIRN_METRIC_ERROR_RATE);
    assert_true(p.checks[0].has_max && p.checks[0].max == 0.05);
    /* checks: [] judges nothing: steps advance on their pauses alone. */
    assert_int_equal(parse(&p, "analysis: {interval: 1s, checks: []}\n"), 0);
    assert_int_equal(p.nchecks, 0);
}

static void expect_error(const char *text, const char *where, const char *what)
{
    struct cairn_plan p;
    assert_int_equal(parse(&p, text), CAIRN_EINVALID);
    if (!strstr(cairn_error_last(), where) || !strstr(cairn_error_last(), what))
        fail_msg("for %s: got '%s', expected '%s' and '%s'", text, cairn_error_last(), where, what);
}

static void test_errors(void **state)
{
    (void)state;
    expect_error("strategy: linear\n", "plan.yaml:1:11", "unknown strategy 'linear'");
    expect_error("steps: [{weight: 50}, {weight: 10}]\n", "plan.yaml:1:32", "below the previous");
    expect_error("steps: [{weight: 0}]\n", "plan.yaml:1:18", "from 1 to 100");
    expect_error("steps: [{weight: 5, pause: 3x}]\n", "plan.yaml:1:28", "");
    expect_error("steps: [{wieght: 5}]\n", "plan.yaml:1:10", "unknown key 'wieght'");
    expect_error("analysis:\n  checks: [{metric: error_rate}]\n", "plan.yaml:2:12", "no bound");
    expect_error("analysis:\n  checks: [{metric: accuracy, max_ratio_to_stable: 2}]\n",
                 "plan.yaml:2:", "only goes with latency_p99_ms");
    expect_error("analysis:\n  checks: [{metric: shadow_agreement, min: 0.9}]\n",
                 "plan.yaml:2:", "needs strategy shadow");
    expect_error("analysis: {interval: 10ms}\n", "plan.yaml:1:", "interval must be");
    /* An analysis block must say what it judges: no silent default check. */
    expect_error("analysis: {interval: 1s, min_requests: 10}\n", "plan.yaml:1:11",
                 "analysis has no 'checks'");
    expect_error("strategy: canary\nanalysis:\n  interval: 5s\n", "plan.yaml:3:3",
                 "write 'checks: []' to advance on pauses alone");
    expect_error("sticky: {header: a, cookie: b}\n", "plan.yaml:1:9", "one of");
    expect_error("on_failure: ignore\n", "plan.yaml:1:13", "rollback or pause");
    expect_error("strategy: bluegreen\nsteps: [{weight: 50}]\n", "plan.yaml:2:", "weight 100");
    expect_error("strategy: ab\nsteps: [{weight: 50}]\n", "plan.yaml:2:", "do not apply");
    expect_error("", "plan.yaml", "empty plan");
    expect_error("[1, 2]\n", "plan.yaml:1:1", "expected a mapping");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_example),
        cmocka_unit_test(test_strategies),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
