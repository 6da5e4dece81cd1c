/*
 * Unit test for lib/registry/sqlite_report.c: the delivery metrics computed
 * from a hand-made history (cairn_report_compute), and the replay of audit
 * events from a real registry (cairn_report_load).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cairn/registry.h"
#include "cairn/report.h"
#include "cairn/repo.h"
#include "util/fs.h"

#define S   1000000000LL
#define DAY (86400LL * S)

static void test_median(void **state)
{
    double a[] = { 5, 1, 3 }, b[] = { 4, 1, 3, 2 };
    (void)state;
    assert_true(cairn_report_median(a, 3) == 3);
    assert_true(cairn_report_median(b, 4) == 2.5);
    assert_true(cairn_report_median(NULL, 0) == -1);
}

static struct cairn_report_change change(int64_t t, int version, int deployed, int failed,
                                         int64_t restored)
{
    struct cairn_report_change c;
    memset(&c, 0, sizeof(c));
    c.time_ns = c.end_ns = t;
    c.version = version;
    c.deployed = deployed;
    c.failed = failed;
    c.restored_ns = restored;
    return c;
}

/* Three days: v1 promoted, v2 rolled out, v3 rolled back after 40 s, v4 forced and undone after 100
 * s. */
static void test_metrics(void **state)
{
    struct cairn_report r;
    struct cairn_report_version v[4];
    struct cairn_report_change c[4];
    int64_t t0 = 20000 * DAY + 3600 * S;
    (void)state;

    memset(&r, 0, sizeof(r));
    memset(v, 0, sizeof(v));
    for (int i = 0; i < 4; i++) {
        v[i].number = i + 1;
        v[i].time_ns = t0 + i * DAY;
    }
    v[0].live_ns = v[0].time_ns + 60 * S;  /* lead 60 s */
    v[1].live_ns = v[1].time_ns + 300 * S; /* lead 300 s */
    v[3].live_ns = v[3].time_ns + 10 * S;  /* lead 10 s */
    c[0] = change(v[0].live_ns, 1, 1, 0, 0);
    c[1] = change(v[1].time_ns + 100 * S, 2, 1, 0, 0);
    c[2] = change(v[2].time_ns + 10 * S, 3, 0, 1, v[2].time_ns + 50 * S);
    c[3] = change(v[3].live_ns, 4, 1, 1, v[3].live_ns + 100 * S);
    r.versions = v;
    r.nversions = 4;
    r.changes = c;
    r.nchanges = 4;
    r.to_ns = t0 + 3 * DAY + 7200 * S; /* 3 days and 2 hours after the first commit: 4 days */
    assert_int_equal(cairn_report_compute(&r), 0);
    assert_int_equal(r.from_ns, t0);
    assert_int_equal(r.m.days, 4);
    assert_int_equal(r.m.deployments, 3);
    assert_true(r.m.deploys_per_day == 0.75);
    assert_int_equal(r.m.lead_count, 3);
    assert_true(r.m.lead_median_s == 60);
    assert_int_equal(r.m.changes, 4);
    assert_int_equal(r.m.failed, 2);
    assert_true(r.m.change_failure_rate == 0.5);
    assert_int_equal(r.m.restores, 2);
    assert_true(r.m.restore_median_s == 70); /* (40 + 100) / 2 */
    assert_int_equal(r.m.ndays, 4);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(r.m.per_day[i].day, 20000 + i);
        assert_int_equal(r.m.per_day[i].changes, 1);
        assert_int_equal(r.m.per_day[i].failed, i >= 2);
    }
    free(r.m.per_day);
}

/*
 * A rollout whose analysis first failed 30 s after it started and was rolled
 * back 45 s after it started restored in 15 s: from the breach, not the start.
 * A change without a breach (an undone promote) still counts from its start.
 */
static void test_restore_from_breach(void **state)
{
    struct cairn_report r;
    struct cairn_report_change c[2];
    int64_t t0 = 20000 * DAY;
    (void)state;

    memset(&r, 0, sizeof(r));
    c[0] = change(t0, 2, 0, 1, t0 + 45 * S);
    c[0].breach_ns = t0 + 30 * S;
    c[1] = change(t0 + 100 * S, 3, 1, 1, t0 + 125 * S);
    assert_int_equal(cairn_report_restore_from(&c[0]), t0 + 30 * S);
    assert_int_equal(cairn_report_restore_from(&c[1]), t0 + 100 * S);
    r.changes = c;
    r.nchanges = 1;
    r.to_ns = t0 + DAY;
    assert_int_equal(cairn_report_compute(&r), 0);
    assert_int_equal(r.m.restores, 1);
    assert_true(r.m.restore_median_s == 15);
    r.nchanges = 2;
    assert_int_equal(cairn_report_compute(&r), 0);
    assert_int_equal(r.m.restores, 2);
    assert_true(r.m.restore_median_s == 20); /* (15 + 25) / 2 */
    free(r.m.per_day);
}

static void test_empty(void **state)
{
    struct cairn_report r;
    (void)state;
    memset(&r, 0, sizeof(r));
    r.to_ns = 5 * DAY;
    assert_int_equal(cairn_report_compute(&r), 0);
    assert_int_equal(r.m.days, 1);
    assert_int_equal(r.m.changes, 0);
    assert_true(r.m.change_failure_rate == -1);
    assert_true(r.m.lead_median_s == -1);
    assert_true(r.m.restore_median_s == -1);
    assert_true(r.m.deploys_per_day == 0);
    free(r.m.per_day);
}

/* Events out of day order still give sorted days. */
static void test_days_sorted(void **state)
{
    struct cairn_report r;
    struct cairn_report_change c[3];
    (void)state;
    memset(&r, 0, sizeof(r));
    c[0] = change(12 * DAY, 1, 1, 0, 0);
    c[1] = change(10 * DAY + 5, 2, 1, 1, 0);
    c[2] = change(11 * DAY, 3, 1, 0, 0);
    r.changes = c;
    r.nchanges = 3;
    r.to_ns = 13 * DAY;
    assert_int_equal(cairn_report_compute(&r), 0);
    assert_int_equal(r.m.ndays, 3);
    assert_int_equal(r.m.per_day[0].day, 10);
    assert_int_equal(r.m.per_day[0].failed, 1);
    assert_int_equal(r.m.per_day[2].day, 12);
    assert_int_equal(r.m.restores, 0); /* failed but never restored */
    assert_int_equal(r.m.days, 3);
    free(r.m.per_day);
}

/* A registry with audit events: promote v1, rollout v2 promoted, rollout v3 rolled back,
 * forced promote of v3 then an offline rollback. */
static void test_load(void **state)
{
    char dir[64], path[128];
    struct cairn_registry *reg;
    struct cairn_model_info m;
    struct cairn_report r;
    cairn_oid id[3];
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/cairn-report-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/cairn.db", dir);
    assert_int_equal(cairn_registry_open(&reg, path, 1), 0);
    assert_int_equal(cairn_registry_begin(reg), 0);
    assert_int_equal(cairn_registry_model_ensure(reg, "digits", "model", &m), 0);
    for (int i = 0; i < 3; i++) {
        struct cairn_version v;
        memset(&v, 0, sizeof(v));
        memset(v.id.id, i + 1, sizeof(v.id.id));
        snprintf(v.model, sizeof(v.model), "digits");
        snprintf(v.kind, sizeof(v.kind), "model");
        v.message = "m";
        v.author = "t";
        v.host = "h";
        v.code_dirty = -1;
        assert_int_equal(cairn_registry_version_insert(reg, &v, "{}", NULL, NULL, NULL, 0), 0);
        id[i] = v.id;
    }
    assert_int_equal(cairn_registry_audit_append(reg, "t", "promote", "digits@production",
                                                 "{\"version\":1,\"forced\":false}"),
                     0);
    assert_int_equal(cairn_registry_alias_set(reg, "digits", "production", &id[0], "t", NULL), 1);
    assert_int_equal(
        cairn_registry_audit_append(reg, "t", "rollout.start", "digits@production",
                                    "{\"strategy\":\"canary\",\"candidate\":{\"version\":"
                                    "\"digits@v2\"}}"),
        0);
    assert_int_equal(cairn_registry_audit_append(reg, "s", "rollout.promote", "digits@production",
                                                 "{\"strategy\":\"canary\"}"),
                     0);
    assert_int_equal(
        cairn_registry_audit_append(reg, "t", "rollout.start", "digits@production",
                                    "{\"strategy\":\"canary\",\"candidate\":{\"version\":"
                                    "\"digits@v3\"}}"),
        0);
    /* Two failed analyses (failure_limit 2): the first one is the breach. */
    for (int i = 0; i < 2; i++)
        assert_int_equal(cairn_registry_audit_append(reg, "s", "rollout.breach",
                                                     "digits@production",
                                                     "{\"reason\":\"accuracy 0.5 < 0.9\"}"),
                         0);
    assert_int_equal(cairn_registry_audit_append(reg, "s", "rollout.rollback", "digits@production",
                                                 "{\"reason\":\"accuracy 0.5 < 0.9\"}"),
                     0);
    assert_int_equal(cairn_registry_audit_append(reg, "t", "promote", "digits@production",
                                                 "{\"version\":3,\"forced\":true,"
                                                 "\"reason\":\"hotfix\"}"),
                     0);
    assert_int_equal(cairn_registry_audit_append(reg, "t", "rollback", "digits@production", "{}"),
                     0);
    /* Another alias's events are not changes of production. */
    assert_int_equal(cairn_registry_audit_append(reg, "t", "promote", "digits@staging",
                                                 "{\"version\":3,\"forced\":true}"),
                     0);
    assert_int_equal(cairn_registry_commit(reg), 0);

    assert_int_equal(cairn_report_load(&r, reg, "digits", "production", cairn_time_now_ns()), 0);
    assert_int_equal(r.nversions, 3);
    assert_int_equal(r.nmoves, 1);
    assert_int_equal(r.moves[0].to, 1);
    assert_int_equal(r.nchanges, 4);
    assert_string_equal(r.changes[0].outcome, "promoted");
    assert_string_equal(r.changes[1].outcome, "promoted");
    assert_int_equal(r.changes[1].version, 2);
    assert_true(r.changes[1].deployed);
    assert_string_equal(r.changes[2].outcome, "rolled_back");
    assert_string_equal(r.changes[2].reason, "accuracy 0.5 < 0.9");
    assert_false(r.changes[2].deployed);
    /* The breach is the first rollout.breach: after the start, before the rollback. */
    assert_true(r.changes[2].breach_ns > 0);
    assert_true(r.changes[2].breach_ns >= r.changes[2].time_ns);
    assert_true(r.changes[2].breach_ns <= r.changes[2].restored_ns);
    assert_int_equal(r.changes[0].breach_ns, 0);
    assert_int_equal(r.changes[1].breach_ns, 0);
    assert_int_equal(r.changes[3].breach_ns, 0);
    assert_string_equal(r.changes[3].outcome, "forced");
    assert_string_equal(r.changes[3].reason, "hotfix");
    assert_true(r.changes[3].restored_ns > 0);
    assert_int_equal(r.m.deployments, 3);
    assert_int_equal(r.m.failed, 2);
    assert_int_equal(r.m.restores, 2);
    assert_true(r.versions[1].live_ns > 0);
    assert_true(r.versions[2].live_ns > 0);
    cairn_report_release(&r);
    cairn_report_release(NULL);
    assert_int_equal(cairn_report_load(&r, reg, "nope", "production", 0), CAIRN_ENOTFOUND);
    cairn_registry_free(reg);
    cairn_fs_rm_rf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_median), cmocka_unit_test(test_metrics),
        cmocka_unit_test(test_empty),  cmocka_unit_test(test_days_sorted),
        cmocka_unit_test(test_load),   cmocka_unit_test(test_restore_from_breach),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
