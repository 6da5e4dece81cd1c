/*
 * Unit tests for lib/gate/policy.c and gate.c: every policy error with its
 * exact line:col, the digest, and evaluation against a fake context.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/common.h"
#include "cairn/gate.h"
#include "util/hash.h"

static struct cairn_policy *parse_ok(const char *text)
{
    struct cairn_policy *p = NULL;
    if (cairn_policy_parse(&p, "p.yaml", text, strlen(text)) < 0)
        fail_msg("unexpected error: %s", cairn_error_last());
    return p;
}

static void test_parse_errors(void **state)
{
    (void)state;
    static const struct {
        const char *text, *msg;
    } cases[] = {
        { "", "p.yaml: empty policy (expected 'checks:')" },
        { "checks:\n", "p.yaml:1:8: empty check list" },
        { "checks: []\n", "p.yaml:1:9: empty check list" },
        { "checks: {}\n", "p.yaml:1:9: expected a sequence, found a mapping" },
        { "- metric: a\n", "p.yaml:1:1: expected a mapping, found a sequence" },
        { "name: x\n", "p.yaml:1:1: unknown key 'name' (expected one of: checks, description)" },
        { "description: x\n", "p.yaml:1:1: missing 'checks'" },
        { "checks:\n  - metric: acc\n    mni: 0.9\n",
          "p.yaml:3:5: unknown key 'mni' (expected one of: metric, min, max, no_regression_vs, "
          "tolerance, direction, on_missing_baseline)" },
        { "checks:\n  - metric: acc\n    min: high\n",
          "p.yaml:3:10: expected a number, found text" },
        { "checks:\n  - metric: acc\n    min: '0.9'\n",
          "p.yaml:3:10: expected a number, found a quoted string" },
        { "checks:\n  - min: 0.9\n", "p.yaml:2:5: check is missing 'metric'" },
        { "checks:\n  - metric: acc\n",
          "p.yaml:2:5: metric check needs 'min', 'max' or "
          "'no_regression_vs'" },
        { "checks:\n  - flavour: vanilla\n",
          "p.yaml:2:5: unknown check 'flavour' (expected one of: metric, signature, data)" },
        { "checks:\n  - {}\n", "p.yaml:2:5: empty check" },
        { "checks:\n  - metric: acc\n    min: 1\n    signature: required\n",
          "p.yaml:4:5: a check has one kind; found both 'metric' and 'signature'" },
        { "checks:\n  - signature: optional\n", "p.yaml:2:16: 'signature' must be 'required'" },
        { "checks:\n  - data: [validated]\n", "p.yaml:2:11: 'data' must be 'validated'" },
        { "checks:\n  - metric: [acc]\n    min: 1\n",
          "p.yaml:2:13: expected a scalar, found a sequence" },
        { "checks:\n  - metric: 'bad name'\n    min: 1\n", "p.yaml:2:13: invalid metric name" },
        { "checks:\n  - metric: a\n    min: 2\n    max: 1\n", "p.yaml:4:10: 'max' is below 'min'" },
        { "checks:\n  - metric: a\n    min: 1\n    no_regression_vs: production\n",
          "p.yaml:4:5: 'no_regression_vs' cannot be combined" },
        { "checks:\n  - metric: a\n    no_regression_vs: Prod!\n", "p.yaml:3:23: invalid alias" },
        { "checks:\n  - metric: a\n    min: 1\n    tolerance: 0.1\n",
          "p.yaml:4:5: 'tolerance' needs 'no_regression_vs'" },
        { "checks:\n  - metric: a\n    no_regression_vs: prod\n    tolerance: -1\n",
          "p.yaml:4:16: 'tolerance' must not be negative" },
        { "checks:\n  - metric: a\n    no_regression_vs: prod\n    direction: up\n",
          "p.yaml:4:16: direction must be higher_is_better or lower_is_better" },
        { "checks:\n  - metric: a\n    min: 1\n    on_missing_baseline: pass\n",
          "p.yaml:4:5: 'on_missing_baseline' needs 'no_regression_vs'" },
        { "checks:\n  - metric: a\n    no_regression_vs: prod\n    on_missing_baseline: skip\n",
          "p.yaml:4:26: on_missing_baseline must be pass or fail" },
        { "checks:\n  - metric: a\n    no_regression_vs: prod\n    on_missing_baseline: [pass]\n",
          "p.yaml:4:26: expected" },
        { "checks:\n  - metric: a\n    min: 1\n    min: 2\n", "p.yaml:4:5: duplicate key 'min'" },
        { "checks:\n  - metric: a\n   min: 1\n", "p.yaml:3:" },
        { "checks:\n  - 42\n", "p.yaml:2:5: expected a mapping, found a scalar" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cairn_policy *p = (struct cairn_policy *)0x1;
        int error = cairn_policy_parse(&p, "p.yaml", cases[i].text, strlen(cases[i].text));
        if (error != CAIRN_EINVALID)
            fail_msg("case %zu parsed (%d)", i, error);
        assert_null(p);
        if (strncmp(cairn_error_last(), cases[i].msg, strlen(cases[i].msg)) != 0)
            fail_msg("case %zu: expected '%s', got '%s'", i, cases[i].msg, cairn_error_last());
    }
}

static const char *spec_policy =
    "# SPEC §5 example\n"
    "checks:\n"
    "  - metric: accuracy\n"
    "    min: 0.90\n"
    "  - metric: accuracy\n"
    "    no_regression_vs: production   # alias\n"
    "    tolerance: 0.005\n"
    "  - metric: latency_p99_ms\n"
    "    max: 50\n"
    "  - signature: required\n"
    "  - data: validated\n";

static void test_digest(void **state)
{
    (void)state;
    struct cairn_policy *a = parse_ok(spec_policy);
    struct cairn_policy *b = parse_ok(
        "checks:\n"
        "- {min: 9.0e-1, metric: accuracy}\n"
        "- {metric: accuracy, tolerance: 0.0050, no_regression_vs: production, "
        "direction: higher_is_better}\n"
        "- {max: 50.0, metric: latency_p99_ms}\n"
        "- {signature: required}\n"
        "- {data: validated}\n");
    struct cairn_policy *c = parse_ok("checks:\n  - metric: accuracy\n    min: 0.91\n");
    cairn_oid da, db, dc;
    char *json;
    assert_int_equal(cairn_policy_count(a), 5);
    assert_int_equal(cairn_policy_digest(&da, a), 0);
    assert_int_equal(cairn_policy_digest(&db, b), 0);
    assert_int_equal(cairn_policy_digest(&dc, c), 0);
    assert_int_equal(cairn_oid_cmp(&da, &db), 0);
    assert_int_not_equal(cairn_oid_cmp(&da, &dc), 0);
    assert_int_equal(cairn_policy_to_json(&json, c), 0);
    assert_string_equal(json,
                        "{\"checks\":[{\"kind\":\"metric\",\"metric\":\"accuracy\","
                        "\"min\":0.91000000000000003}],\"format\":1}");
    free(json);

    /*
     * on_missing_baseline: fail is the default, so writing it keeps the
     * digest policies had before the option; pass is another policy.
     */
    {
        static const char *nr = "checks:\n  - metric: accuracy\n    no_regression_vs: production\n";
        struct cairn_policy *d = parse_ok(nr);
        struct cairn_policy *e = parse_ok(
            "checks:\n  - metric: accuracy\n"
            "    no_regression_vs: production\n"
            "    on_missing_baseline: fail\n");
        struct cairn_policy *g = parse_ok(
            "checks:\n  - metric: accuracy\n"
            "    no_regression_vs: production\n"
            "    on_missing_baseline: pass\n");
        cairn_oid dd, de, dg;
        assert_int_equal(cairn_policy_digest(&dd, d), 0);
        assert_int_equal(cairn_policy_digest(&de, e), 0);
        assert_int_equal(cairn_policy_digest(&dg, g), 0);
        assert_int_equal(cairn_oid_cmp(&dd, &de), 0);
        assert_int_not_equal(cairn_oid_cmp(&dd, &dg), 0);
        assert_int_equal(cairn_policy_to_json(&json, d), 0);
        assert_null(strstr(json, "on_missing_baseline"));
        free(json);
        assert_int_equal(cairn_policy_to_json(&json, g), 0);
        assert_non_null(strstr(json, "\"on_missing_baseline\":\"pass\""));
        free(json);
        cairn_policy_free(d);
        cairn_policy_free(e);
        cairn_policy_free(g);
    }
    cairn_policy_free(a);
    cairn_policy_free(b);
    cairn_policy_free(c);
    cairn_policy_free(NULL);
}

/* ---- a fake registry ------------------------------------------------ */

struct fake {
    const char *names[8];
    double values[8];
    bool alias_set;
    double alias_accuracy;
    bool alias_has_metric;
    enum cairn_sig_status sig;
    bool data_ok;
    bool fail_lookup;
};

static int fake_metric(const struct cairn_gate_ctx *ctx, const char *version, const char *name,
                       double *value, bool *found)
{
    const struct fake *f = ctx->payload;
    assert_string_equal(version, "abc123");
    if (f->fail_lookup)
        return cairn_error_set(CAIRN_ERROR, "database is locked");
    *found = false;
    for (size_t i = 0; i < 8 && f->names[i]; i++) {
        if (strcmp(f->names[i], name) == 0) {
            *value = f->values[i];
            *found = true;
        }
    }
    return 0;
}

static int fake_alias_metric(const struct cairn_gate_ctx *ctx, const char *alias, const char *name,
                             double *value, bool *alias_found, bool *found)
{
    const struct fake *f = ctx->payload;
    assert_string_equal(alias, "production");
    *alias_found = f->alias_set;
    *found = f->alias_set && f->alias_has_metric && strcmp(name, "accuracy") == 0;
    *value = f->alias_accuracy;
    return 0;
}

static int fake_sig(const struct cairn_gate_ctx *ctx, const char *version,
                    enum cairn_sig_status *status, char **detail)
{
    const struct fake *f = ctx->payload;
    (void)version;
    *status = f->sig;
    if (f->sig == CAIRN_SIG_VALID)
        *detail = strdup("key 0123456789abcdef");
    return 0;
}

static int fake_data(const struct cairn_gate_ctx *ctx, const char *version, bool *ok, char **detail)
{
    const struct fake *f = ctx->payload;
    (void)version;
    (void)detail;
    *ok = f->data_ok;
    return 0;
}

static struct cairn_gate_result *run(struct fake *f, const char *policy_text)
{
    struct cairn_gate_ctx ctx = { f, fake_metric, fake_alias_metric, fake_sig, fake_data };
    struct cairn_policy *p = parse_ok(policy_text);
    struct cairn_gate_result *r = NULL;
    assert_int_equal(cairn_gate_evaluate(&r, p, &ctx, "abc123"), 0);
    cairn_policy_free(p);
    return r;
}

static void test_evaluate_pass(void **state)
{
    (void)state;
    struct fake f = { .names = { "accuracy", "latency_p99_ms" },
                      .values = { 0.908, 41 },
                      .alias_set = true,
                      .alias_accuracy = 0.912,
                      .alias_has_metric = true,
                      .sig = CAIRN_SIG_VALID,
                      .data_ok = true };
    struct cairn_gate_result *r = run(&f, spec_policy);
    assert_int_equal(r->verdict, CAIRN_VERDICT_PASS);
    assert_int_equal(r->count, 5);
    assert_string_equal(r->checks[0].kind, "metric");
    assert_string_equal(r->checks[0].metric, "accuracy");
    assert_string_equal(r->checks[0].bound, "≥ 0.900");
    assert_string_equal(r->checks[0].value_text, "0.908");
    assert_null(r->checks[0].reason);
    assert_int_equal(r->checks[0].line, 3);
    assert_int_equal(r->checks[0].col, 5);
    /* 0.908 ≥ 0.912 - 0.005 = 0.907: within tolerance. */
    assert_int_equal(r->checks[1].verdict, CAIRN_VERDICT_PASS);
    assert_string_equal(r->checks[1].bound, "≥ production 0.912 - 0.005");
    assert_string_equal(r->checks[2].bound, "≤ 50");
    assert_string_equal(r->checks[3].value_text, "signed by key 0123456789abcdef");
    assert_string_equal(r->checks[4].bound, "validated");
    cairn_gate_result_free(r);

    /* Exactly on the tolerance edge still passes despite rounding. */
    f.values[0] = 0.907;
    r = run(&f, spec_policy);
    assert_int_equal(r->checks[1].verdict, CAIRN_VERDICT_PASS);
    cairn_gate_result_free(r);
}

static void test_evaluate_fail(void **state)
{
    (void)state;
    struct fake f = { .names = { "accuracy", "latency_p99_ms" },
                      .values = { 0.9, 51 },
                      .alias_set = true,
                      .alias_accuracy = 0.912,
                      .alias_has_metric = true,
                      .sig = CAIRN_SIG_MISSING,
                      .data_ok = false };
    struct cairn_gate_result *r = run(&f, spec_policy);
    assert_int_equal(r->verdict, CAIRN_VERDICT_FAIL);
    assert_int_equal(r->checks[0].verdict, CAIRN_VERDICT_PASS); /* 0.9 ≥ 0.90 */
    assert_int_equal(r->checks[1].verdict, CAIRN_VERDICT_FAIL); /* beyond tolerance */
    assert_string_equal(r->checks[1].reason, "accuracy regressed by 0.012 against production");
    assert_int_equal(r->checks[2].verdict, CAIRN_VERDICT_FAIL);
    assert_string_equal(r->checks[2].reason, "latency_p99_ms is above the maximum");
    assert_int_equal(r->checks[3].verdict, CAIRN_VERDICT_FAIL);
    assert_string_equal(r->checks[3].reason, "version is not signed");
    assert_int_equal(r->checks[4].verdict, CAIRN_VERDICT_FAIL);
    cairn_gate_result_free(r);

    /* Lower-is-better regression by name: latency may grow by the tolerance only. */
    r = run(&f,
            "checks:\n  - metric: latency_p99_ms\n    no_regression_vs: production\n"
            "    tolerance: 2\n");
    assert_int_equal(r->checks[0].verdict, CAIRN_VERDICT_FAIL); /* alias has no such metric */
    assert_string_equal(r->checks[0].reason,
                        "the version at 'production' has no metric 'latency_p99_ms'");
    assert_string_equal(r->checks[0].bound, "≤ production (none) + 2");
    cairn_gate_result_free(r);
}

static void test_evaluate_missing(void **state)
{
    (void)state;
    struct fake f = { .names = { "accuracy" }, .values = { 0.95 }, .alias_set = false };
    struct cairn_gate_result *r = run(&f,
                                      "checks:\n  - metric: latency_p99_ms\n    max: 50\n"
                                      "  - metric: accuracy\n    no_regression_vs: "
                                      "production\n");
    assert_int_equal(r->verdict, CAIRN_VERDICT_FAIL);
    assert_int_equal(r->checks[0].verdict, CAIRN_VERDICT_FAIL);
    assert_false(r->checks[0].has_value);
    assert_string_equal(r->checks[0].value_text, "missing");
    assert_string_equal(r->checks[0].reason, "metric 'latency_p99_ms' not recorded");
    assert_int_equal(r->checks[1].verdict, CAIRN_VERDICT_FAIL);
    assert_string_equal(r->checks[1].reason, "alias 'production' is not set");
    cairn_gate_result_free(r);

    /* The first release: no baseline, and the policy says that passes. */
    static const char *first =
        "checks:\n  - metric: accuracy\n    no_regression_vs: production\n"
        "    tolerance: 0.005\n    on_missing_baseline: pass\n";
    r = run(&f, first);
    assert_int_equal(r->verdict, CAIRN_VERDICT_PASS);
    assert_int_equal(r->checks[0].verdict, CAIRN_VERDICT_PASS);
    assert_string_equal(r->checks[0].value_text, "0.950");
    assert_string_equal(r->checks[0].bound, "≥ production (none) - 0.005");
    assert_string_equal(r->checks[0].reason,
                        "baseline missing: alias 'production' is not set; passed because of "
                        "on_missing_baseline: pass");
    cairn_gate_result_free(r);
    /* An alias whose version lacks the metric is a missing baseline too. */
    f.alias_set = true;
    f.alias_has_metric = false;
    r = run(&f, first);
    assert_int_equal(r->checks[0].verdict, CAIRN_VERDICT_PASS);
    assert_string_equal(r->checks[0].reason,
                        "baseline missing: the version at 'production' has no metric 'accuracy'; "
                        "passed because of on_missing_baseline: pass");
    cairn_gate_result_free(r);
    /* With a baseline the option changes nothing: a regression still fails. */
    f.alias_has_metric = true;
    f.alias_accuracy = 0.97;
    r = run(&f, first);
    assert_int_equal(r->checks[0].verdict, CAIRN_VERDICT_FAIL);
    assert_string_equal(r->checks[0].reason, "accuracy regressed by 0.020 against production");
    cairn_gate_result_free(r);
    /* Nor does it excuse a candidate that has no such metric. */
    f.names[0] = "loss";
    r = run(&f, first);
    assert_int_equal(r->checks[0].verdict, CAIRN_VERDICT_FAIL);
    assert_string_equal(r->checks[0].reason, "metric 'accuracy' not recorded");
    cairn_gate_result_free(r);
    f.names[0] = "accuracy";
    f.alias_set = false;

    /* A broken lookup is an error, never a pass; a missing callback too. */
    f.fail_lookup = true;
    r = run(&f, "checks:\n  - metric: accuracy\n    min: 0\n");
    assert_int_equal(r->verdict, CAIRN_VERDICT_ERROR);
    assert_string_equal(r->checks[0].reason, "database is locked");
    cairn_gate_result_free(r);

    struct cairn_gate_ctx empty = { 0 };
    struct cairn_policy *p = parse_ok("checks:\n  - signature: required\n  - data: validated\n");
    assert_int_equal(cairn_gate_evaluate(&r, p, &empty, "abc123"), 0);
    assert_int_equal(r->verdict, CAIRN_VERDICT_ERROR);
    assert_int_equal(r->checks[0].verdict, CAIRN_VERDICT_ERROR);
    cairn_gate_result_free(r);
    cairn_policy_free(p);
}

static void test_signature_states(void **state)
{
    (void)state;
    struct fake f = { .sig = CAIRN_SIG_UNTRUSTED };
    struct cairn_gate_result *r = run(&f, "checks:\n  - signature: required\n");
    assert_int_equal(r->verdict, CAIRN_VERDICT_FAIL);
    assert_string_equal(r->checks[0].reason, "signed by a key that is not trusted");
    cairn_gate_result_free(r);
    f.sig = CAIRN_SIG_INVALID;
    r = run(&f, "checks:\n  - signature: required\n");
    assert_string_equal(r->checks[0].reason, "signature does not verify");
    cairn_gate_result_free(r);
}

static void test_result_json_roundtrip(void **state)
{
    (void)state;
    struct fake f = { .names = { "accuracy", "latency_p99_ms" },
                      .values = { 0.9, 51 },
                      .alias_set = true,
                      .alias_accuracy = 0.912,
                      .alias_has_metric = true,
                      .sig = CAIRN_SIG_VALID,
                      .data_ok = true };
    struct cairn_gate_result *r = run(&f, spec_policy), *back = NULL;
    char *json, *json2;
    assert_int_equal(cairn_gate_result_to_json(&json, r), 0);
    assert_non_null(strstr(json, "\"verdict\":\"fail\""));
    assert_non_null(strstr(json, "\"bound\":\"≥ 0.900\""));
    assert_int_equal(cairn_gate_result_from_json(&back, json, strlen(json)), 0);
    assert_int_equal(back->count, 5);
    assert_int_equal(back->verdict, CAIRN_VERDICT_FAIL);
    assert_int_equal(cairn_oid_cmp(&back->policy, &r->policy), 0);
    assert_int_equal(cairn_gate_result_to_json(&json2, back), 0);
    assert_string_equal(json, json2);
    free(json);
    free(json2);
    cairn_gate_result_free(back);
    cairn_gate_result_free(r);

    static const char *bad[] = { "", "[]", "{\"version\":\"x\"}",
                                 "{\"version\":\"x\",\"policy\":\"zz\",\"verdict\":\"pass\","
                                 "\"checks\":[]}",
                                 "{\"version\":\"x\",\"policy\":\""
                                 "0000000000000000000000000000"
                                 "000000000000000000000000000000000000\",\"verdict\":\"maybe\","
                                 "\"checks\":[]}" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        back = (struct cairn_gate_result *)0x1;
        assert_int_equal(cairn_gate_result_from_json(&back, bad[i], strlen(bad[i])),
                         CAIRN_ECORRUPT);
        assert_null(back);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_errors),          cmocka_unit_test(test_digest),
        cmocka_unit_test(test_evaluate_pass),         cmocka_unit_test(test_evaluate_fail),
        cmocka_unit_test(test_evaluate_missing),      cmocka_unit_test(test_signature_states),
        cmocka_unit_test(test_result_json_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
