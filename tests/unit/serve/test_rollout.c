/*
 * Unit tests for lib/serve/rollout.c: weighted and sticky choice, cookies,
 * latency quantiles, analysis verdicts, and the feedback join (including
 * forgetting the oldest answers in bounded memory).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "cairn/common.h"
#include "serve/plan.h"
#include "serve/rollout.h"

static void test_weighted(void **state)
{
    uint64_t rng = 42;
    int n = 200000, hits = 0;
    (void)state;
    for (int i = 0; i < n; i++)
        hits += cairn_route_pick(1000, NULL, 0, &rng);
    /* 10% within a generous 0.5% for 200k draws. */
    assert_in_range(hits, n / 10 - n / 200, n / 10 + n / 200);
    assert_int_equal(cairn_route_pick(0, NULL, 0, &rng), 0);
    assert_int_equal(cairn_route_pick(10000, NULL, 0, &rng), 1);
}

static void test_sticky(void **state)
{
    uint64_t rng = 1;
    int on_cand = 0;
    (void)state;
    for (int k = 0; k < 2000; k++) {
        char key[32];
        int first, now;
        snprintf(key, sizeof(key), "user-%d", k);
        first = cairn_route_pick(2500, key, strlen(key), &rng);
        on_cand += first;
        for (int i = 0; i < 20; i++) {
            now = cairn_route_pick(2500, key, strlen(key), &rng);
            assert_int_equal(now, first);
        }
        /* A key on the candidate at 25% stays there when the weight grows. */
        if (first)
            assert_int_equal(cairn_route_pick(5000, key, strlen(key), &rng), 1);
    }
    assert_in_range(on_cand, 2000 / 4 - 100, 2000 / 4 + 100);
}

static void test_cookie(void **state)
{
    const char *v;
    size_t n;
    (void)state;
    n = cairn_cookie_find(&v, "a=1; uid=abc42; b=2", "uid");
    assert_int_equal(n, 5);
    assert_memory_equal(v, "abc42", 5);
    n = cairn_cookie_find(&v, "xuid=1;uid=z", "uid");
    assert_int_equal(n, 1);
    assert_int_equal(*v, 'z');
    assert_int_equal(cairn_cookie_find(&v, "a=1", "uid"), 0);
    assert_int_equal(cairn_cookie_find(&v, "uid", "uid"), 0);
}

static void test_quantile(void **state)
{
    struct cairn_window w;
    double q;
    (void)state;
    memset(&w, 0, sizeof(w));
    assert_true(cairn_window_quantile_ms(&w, 0.99) == 0);
    for (int i = 0; i < 99; i++)
        cairn_window_add(&w, 200, 1000);
    cairn_window_add(&w, 200, 50000);
    q = cairn_window_quantile_ms(&w, 0.99);
    assert_true(q >= 1.0 && q <= 1.25);
    q = cairn_window_quantile_ms(&w, 1.0);
    assert_true(q >= 50.0 && q <= 62.5);
    assert_int_equal(w.requests, 100);
    assert_int_equal(w.errors, 0);
    cairn_window_add(&w, 503, 10);
    cairn_window_add(&w, 0, 10);
    assert_int_equal(w.errors, 2);
}

static void fill(struct cairn_window *w, int n, int errors, uint64_t us)
{
    for (int i = 0; i < n; i++)
        cairn_window_add(w, i < errors ? 500 : 200, us);
}

static void test_analysis(void **state)
{
    struct cairn_plan p;
    struct cairn_window c, s;
    char rep[512];
    (void)state;
    assert_int_equal(
        cairn_plan_parse(&p, "p",
                         "analysis:\n  min_requests: 50\n  min_labels: 20\n"
                         "  checks:\n"
                         "    - {metric: error_rate, max: 0.05}\n"
                         "    - {metric: latency_p99_ms, max: 100, "
                         "max_ratio_to_stable: 2}\n"
                         "    - {metric: accuracy, min: 0.8, max_drop_vs_stable: 0.05}\n",
                         strlen("analysis:\n  min_requests: 50\n  min_labels: 20\n"
                                "  checks:\n"
                                "    - {metric: error_rate, max: 0.05}\n"
                                "    - {metric: latency_p99_ms, max: 100, "
                                "max_ratio_to_stable: 2}\n"
                                "    - {metric: accuracy, min: 0.8, "
                                "max_drop_vs_stable: 0.05}\n")),
        0);
    memset(&c, 0, sizeof(c));
    memset(&s, 0, sizeof(s));
    /* Too few requests: nothing judged, even with every request failing. */
    fill(&c, 49, 49, 1000);
    assert_int_equal(cairn_analyse(&p, &c, &s, rep, sizeof(rep)), CAIRN_VERDICT_WAIT);
    assert_non_null(strstr(rep, "49 of 50"));
    /* Enough requests, errors over the bound: fail at once, labels or not. */
    fill(&c, 1, 1, 1000);
    assert_int_equal(cairn_analyse(&p, &c, &s, rep, sizeof(rep)), CAIRN_VERDICT_FAIL);
    assert_non_null(strstr(rep, "error_rate 1 > max 0.05"));
    /* Healthy, but accuracy not judged yet: wait. */
    memset(&c, 0, sizeof(c));
    fill(&c, 100, 1, 1000);
    fill(&s, 100, 0, 1000);
    assert_int_equal(cairn_analyse(&p, &c, &s, rep, sizeof(rep)), CAIRN_VERDICT_WAIT);
    assert_non_null(strstr(rep, "accuracy waiting"));
    /* Labels in: 18/20 passes min 0.8 and the drop vs stable's 0.9. */
    c.labels = 20;
    c.correct = 18;
    s.labels = 20;
    s.correct = 18;
    assert_int_equal(cairn_analyse(&p, &c, &s, rep, sizeof(rep)), CAIRN_VERDICT_PASS);
    /* A drop of 0.1 against stable fails though it is above min. */
    s.correct = 20;
    c.correct = 18;
    assert_int_equal(cairn_analyse(&p, &c, &s, rep, sizeof(rep)), CAIRN_VERDICT_FAIL);
    assert_non_null(strstr(rep, "max_drop_vs_stable"));
    /* Latency 2.5x stable's fails the ratio though under the absolute max. */
    memset(&c, 0, sizeof(c));
    memset(&s, 0, sizeof(s));
    fill(&c, 100, 0, 25000);
    fill(&s, 100, 0, 10000);
    c.labels = s.labels = 20;
    c.correct = s.correct = 20;
    assert_int_equal(cairn_analyse(&p, &c, &s, rep, sizeof(rep)), CAIRN_VERDICT_FAIL);
    assert_non_null(strstr(rep, "max_ratio_to_stable"));
}

static void test_feedback(void **state)
{
    struct cairn_feedback *fb;
    uint32_t model;
    int32_t version;
    int correct;
    char id[32];
    (void)state;
    assert_int_equal(cairn_feedback_new(&fb, 100), 0);
    cairn_feedback_record(fb, "req-1", 5, 3, 7, 4);
    assert_int_equal(cairn_feedback_join(fb, "req-1", 5, 4, &model, &version, &correct), 0);
    assert_int_equal(model, 3);
    assert_int_equal(version, 7);
    assert_int_equal(correct, 1);
    assert_int_equal(cairn_feedback_join(fb, "req-1", 5, 4, &model, &version, &correct),
                     CAIRN_EEXISTS);
    assert_int_equal(cairn_feedback_join(fb, "nope", 4, 4, &model, &version, &correct),
                     CAIRN_ENOTFOUND);
    cairn_feedback_record(fb, "req-2", 5, 0, 1, 2);
    assert_int_equal(cairn_feedback_join(fb, "req-2", 5, 3, &model, &version, &correct), 0);
    assert_int_equal(correct, 0);
    /* Fill past capacity: the oldest are forgotten, the newest 100 remain. */
    for (int i = 0; i < 1000; i++) {
        snprintf(id, sizeof(id), "r%d", i);
        cairn_feedback_record(fb, id, strlen(id), 0, i, i % 10);
    }
    for (int i = 0; i < 1000; i++) {
        int rc;
        snprintf(id, sizeof(id), "r%d", i);
        rc = cairn_feedback_join(fb, id, strlen(id), i % 10, &model, &version, &correct);
        if (i < 900) {
            assert_int_equal(rc, CAIRN_ENOTFOUND);
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal(version, i);
            assert_int_equal(correct, 1);
        }
    }
    /* An id longer than the limit is not remembered. */
    cairn_feedback_record(fb, "0123456789012345678901234567890123456789012345678", 49, 0, 1, 1);
    assert_int_equal(cairn_feedback_join(fb, "0123456789012345678901234567890123456789012345678",
                                         49, 1, &model, &version, &correct),
                     CAIRN_ENOTFOUND);
    cairn_feedback_free(fb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_weighted), cmocka_unit_test(test_sticky),
        cmocka_unit_test(test_cookie),   cmocka_unit_test(test_quantile),
        cmocka_unit_test(test_analysis), cmocka_unit_test(test_feedback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
