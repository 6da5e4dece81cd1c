/*
 * Unit tests for lib/data/drift.c: PSI, the KS statistic and p-value, the
 * incomplete gamma / chi-square tail and the homogeneity test, each against
 * values worked out by hand (the working is in the comments), then drift
 * between small datasets and the thresholds file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cairn/data.h"
#include "data/drift.h"
#include "util/fs.h"

#define near(a, b, tol)                                         \
    do {                                                        \
        double a_ = (a), b_ = (b);                              \
        if (!(fabs(a_ - b_) <= (tol)))                          \
            fail_msg("%s = %.10g, expected %.10g", #a, a_, b_); \
    } while (0)

static void test_psi(void **state)
{
    (void)state;
    /* (0.4-0.5) ln(0.4/0.5) + (0.6-0.5) ln(0.6/0.5) = 0.0223144 + 0.0182322 */
    double p[] = { 0.5, 0.5 }, q[] = { 0.4, 0.6 };
    near(cairn__psi(p, q, 2), 0.0405465, 1e-6);
    near(cairn__psi(p, p, 2), 0.0, 1e-15);
    /* An empty bin uses epsilon 1e-4: (1e-4 - 0.5) ln(1e-4/0.5) + (1 - 0.5) ln(1/0.5)
     * = 0.4999 * 8.5171932 + 0.5 * 0.6931472 = 4.2577449 + 0.3465736 */
    double q2[] = { 0.0, 1.0 };
    near(cairn__psi(p, q2, 2), 4.6043185, 1e-6);
    uint64_t a[] = { 50, 50 }, b[] = { 40, 60 };
    near(cairn__psi_counts(a, b, 2), 0.0405465, 1e-6);
}

static void test_psi_numeric(void **state)
{
    (void)state;
    /* Reference 1..10: edges 1..9, one value per bin (p = 0.1 each). Current: ten
     * values <= 1 fall in bin 0 (q = 1) and nine bins are empty (q = eps):
     * 0.9 ln(10) + 9 (1e-4 - 0.1) ln(1e-3) = 2.0723266 + 6.2107628 */
    double ref[10], cur[10];
    for (int i = 0; i < 10; i++) {
        ref[i] = i + 1;
        cur[i] = 0.5;
    }
    near(cairn__psi_numeric(ref, 10, cur, 10), 8.2830894, 1e-6);
    near(cairn__psi_numeric(ref, 10, ref, 10), 0.0, 1e-15);
    /* All-equal reference: a single edge, two bins; 5 of 10 current values above it:
     * bins p = (1, eps), q = (0.5, 0.5): (0.5-1) ln(0.5) + (0.5-1e-4) ln(0.5/1e-4)
     * = 0.3465736 + 4.2577449 */
    double flat[10], half[10];
    for (int i = 0; i < 10; i++) {
        flat[i] = 3;
        half[i] = i < 5 ? 3 : 4;
    }
    near(cairn__psi_numeric(flat, 10, half, 10), 4.6043185, 1e-6);
    assert_true(cairn__psi_numeric(ref, 0, cur, 10) == 0);
}

static void test_ks(void **state)
{
    (void)state;
    /* F_a - F_b after 2: 0.4 - 0; after 3: 0.6 - 0.2; after 5: 1 - 0.6: D = 0.4. */
    double a[] = { 1, 2, 3, 4, 5 }, b[] = { 3, 4, 5, 6, 7 };
    near(cairn__ks_statistic(a, 5, b, 5), 0.4, 1e-15);
    near(cairn__ks_statistic(a, 5, a, 5), 0.0, 1e-15);
    /* Ties across samples are stepped together: {1,1,2} vs {1,2,2}: after 1: 2/3 - 1/3. */
    double t1[] = { 1, 1, 2 }, t2[] = { 1, 2, 2 };
    near(cairn__ks_statistic(t1, 3, t2, 3), 1.0 / 3, 1e-15);
    double lo[] = { 1, 2 }, hi[] = { 3, 4, 5 };
    near(cairn__ks_statistic(lo, 2, hi, 3), 1.0, 1e-15);

    /* lambda = 0.4 sqrt(25/10) = 0.6324555, 2 lambda^2 = 0.8:
     * Q = 2 (e^-0.8 - e^-3.2 + e^-7.2 - e^-12.8 ...) = 2 (0.4493290 - 0.0407622 + 0.0007466
     * - 0.0000028) = 0.8186212 */
    near(cairn__ks_pvalue(0.4, 5, 5), 0.8186212, 1e-6);
    near(cairn__kolmogorov_q(0.1), 1.0, 0);
    /* lambda = 1.3581 is the classic 5% point. */
    near(cairn__kolmogorov_q(1.3581), 0.05, 1e-4);
    near(cairn__kolmogorov_q(10), 0.0, 1e-40);
}

static void test_gamma_chi2(void **state)
{
    (void)state;
    /* df = 2: Q = e^(-x/2). df = 4: Q = e^(-x/2) (1 + x/2); x = 10: 6 e^-5 = 0.0404277. */
    near(cairn__chi2_sf(5.991465, 2), 0.05, 1e-7);
    near(cairn__chi2_sf(10, 4), 6 * exp(-5), 1e-12);
    near(cairn__chi2_sf(1, 4), exp(-0.5) * 1.5, 1e-12);
    /* df = 1: Q = erfc(sqrt(x/2)); 3.841459 is the 5% point. */
    near(cairn__chi2_sf(3.841459, 1), 0.05, 1e-7);
    near(cairn__chi2_sf(0.5, 1), erfc(0.5), 1e-12);
    near(cairn__chi2_sf(200, 1), erfc(10), 1e-50);
    near(cairn__gamma_q(1, 3), exp(-3), 1e-14);
    near(cairn__gamma_q(3, 0), 1.0, 0);
    assert_true(isnan(cairn__gamma_q(0, 1)));
    near(cairn__chi2_sf(5, 0), 1.0, 0);

    /* Homogeneity of (30, 70) vs (50, 50): expected 40 and 60 in each row;
     * chi2 = 100/40 + 100/60 + 100/40 + 100/60 = 8.3333333, df 1,
     * p = erfc(sqrt(4.1666667)) = 0.0038924, V = sqrt(8.3333/200) = 0.2041241. */
    uint64_t a[] = { 30, 70, 0 }, b[] = { 50, 50, 0 };
    double chi2, p, v;
    unsigned df;
    cairn__chi2_homogeneity(&chi2, &df, &p, &v, a, b, 3);
    near(chi2, 25.0 / 3, 1e-12);
    assert_int_equal(df, 1);
    near(p, erfc(sqrt(25.0 / 6)), 1e-12);
    near(p, 0.0038924, 1e-6);
    near(v, 0.2041241, 1e-6);
    uint64_t one[] = { 10 }, other[] = { 20 };
    cairn__chi2_homogeneity(&chi2, &df, &p, &v, one, other, 1);
    assert_int_equal(df, 0);
    near(p, 1.0, 0);
}

static char dir[64];

static void put(const char *name, const char *text)
{
    char path[256];
    FILE *f;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    assert_non_null(f = fopen(path, "w"));
    fputs(text, f);
    fclose(f);
}

static const struct cairn_drift_column *col(const struct cairn_drift_report *r, const char *n)
{
    for (size_t i = 0; i < r->ncolumns; i++)
        if (strcmp(r->columns[i].name, n) == 0)
            return &r->columns[i];
    fail_msg("no column %s", n);
    return NULL;
}

static void test_drift_datasets(void **state)
{
    (void)state;
    struct cairn_buf ref = CAIRN_BUF_INIT, cur = CAIRN_BUF_INIT;
    char pr[256], pc[256];
    cairn_buf_puts(&ref, "x,same,color,id,onlyref\n");
    cairn_buf_puts(&cur, "x,same,color,id,onlycur\n");
    for (int i = 0; i < 1000; i++) {
        cairn_buf_printf(&ref, "%d,%d,%s,%d,1\n", i % 100, i % 10, i % 2 ? "red" : "blue", i);
        cairn_buf_printf(&cur, "%d,%d,%s,%d,1\n", 50 + i % 100, i % 10, i % 10 < 3 ? "red" : "blue",
                         i + 5000);
    }
    snprintf(pr, sizeof(pr), "%s/ref.csv", dir);
    snprintf(pc, sizeof(pc), "%s/cur.csv", dir);
    assert_int_equal(cairn_fs_write_atomic(pr, ref.ptr, ref.len, 0644), 0);
    assert_int_equal(cairn_fs_write_atomic(pc, cur.ptr, cur.len, 0644), 0);

    struct cairn_drift_thresholds t;
    struct cairn_drift_report *r;
    cairn_drift_thresholds_init(&t);
    const char *yaml = "psi: 0.25\nignore: [id]\n";
    assert_int_equal(cairn_drift_thresholds_parse(&t, "t.yaml", yaml, strlen(yaml)), 0);
    near(t.psi, 0.25, 0);
    near(t.ks_pvalue, 0.01, 0);
    assert_int_equal(cairn_data_drift(&r, pr, pc, &t, NULL), 0);
    assert_true(r->drifted);
    assert_int_equal(r->rows_ref, 1000);

    const struct cairn_drift_column *c = col(r, "x");
    assert_int_equal(c->kind, CAIRN_DRIFT_NUMERIC);
    assert_true(c->drifted);
    near(c->statistic, 0.5, 1e-12); /* half of the current values lie above every reference one */
    c = col(r, "same");
    assert_int_equal(c->kind, CAIRN_DRIFT_NUMERIC);
    assert_false(c->drifted);
    near(c->psi, 0.0, 1e-12);
    near(c->statistic, 0.0, 1e-12);
    near(c->pvalue, 1.0, 1e-12);
    c = col(r, "color");
    assert_int_equal(c->kind, CAIRN_DRIFT_CATEGORICAL);
    assert_true(c->drifted);
    /* red/blue 500/500 vs 300/700: PSI = -0.2 ln(0.6) + 0.2 ln(1.4) = 0.1021651 + 0.0672944 */
    near(c->psi, 0.1694596, 1e-6);
    assert_int_equal(c->df, 1);
    assert_int_equal(col(r, "id")->kind, CAIRN_DRIFT_SKIPPED);
    assert_false(col(r, "id")->drifted);
    assert_int_equal(col(r, "onlyref")->kind, CAIRN_DRIFT_MISSING);
    assert_true(col(r, "onlycur")->drifted);

    char *json;
    assert_int_equal(cairn_drift_report_json(&json, r), 0);
    assert_non_null(strstr(json, "\"test\": \"chi2\""));
    free(json);
    cairn_drift_report_free(r);

    /* Same data on both sides: no drift anywhere. */
    assert_int_equal(cairn_data_drift(&r, pr, pr, NULL, NULL), 0);
    assert_false(r->drifted);
    cairn_drift_report_free(r);

    /* A broken file is an error with the line. */
    put("bad.csv", "a,b\n1,2\n3\n");
    snprintf(pc, sizeof(pc), "%s/bad.csv", dir);
    assert_int_equal(cairn_data_drift(&r, pr, pc, NULL, NULL), CAIRN_EINVALID);
    assert_non_null(strstr(cairn_error_last(), "bad.csv:3:"));
    cairn_drift_thresholds_release(&t);
    cairn_buf_release(&ref);
    cairn_buf_release(&cur);
}

static int tparse(struct cairn_drift_thresholds *t, const char *text)
{
    return cairn_drift_thresholds_parse(t, "t.yaml", text, strlen(text));
}

static void test_thresholds_errors(void **state)
{
    (void)state;
    struct cairn_drift_thresholds t;
    cairn_drift_thresholds_init(&t);
    assert_int_equal(tparse(&t, "psi: 0.1\nksp: 1\n"), CAIRN_EINVALID);
    assert_non_null(strstr(cairn_error_last(), "t.yaml:2:1: unknown key 'ksp'"));
    assert_int_equal(tparse(&t, "ks_pvalue: x\n"), CAIRN_EINVALID);
    assert_non_null(strstr(cairn_error_last(), "t.yaml:1:12: expected a number"));
    assert_int_equal(tparse(&t, "ks_pvalue: 2\n"), CAIRN_EINVALID);
    assert_int_equal(tparse(&t, "ignore: [a, [b]]\n"), CAIRN_EINVALID);
    assert_non_null(strstr(cairn_error_last(), "t.yaml:1:13:"));
    cairn_drift_thresholds_release(&t);
    cairn_drift_thresholds_release(NULL);
}

static int setup_dir(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/cairn-test-drift-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown_dir(void **state)
{
    (void)state;
    return cairn_fs_rm_rf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_psi),
        cmocka_unit_test(test_psi_numeric),
        cmocka_unit_test(test_ks),
        cmocka_unit_test(test_gamma_chi2),
        cmocka_unit_test(test_drift_datasets),
        cmocka_unit_test(test_thresholds_errors),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
