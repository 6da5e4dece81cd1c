/*
 * Unit tests for lib/gate/evalendpoint.c: the metric arithmetic against
 * hand-computed figures (including a class never predicted and one never
 * true), the nearest-rank percentile, the perturbation's determinism and
 * scale, perturbation specs, and real round trips against an in-process
 * `cairn_serve_model_run` server (on a second thread, stopped with SIGTERM)
 * serving a two-input network whose answers the test computes itself.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cairn/common.h"
#include "cairn/evalep.h"
#include "cairn/gate.h"
#include "gate/evalendpoint.h"
#include "serve/serve_model.h"
#include "mlp_fixture.h"
#include "util/buf.h"
#include "util/fs.h"

#define EPS 1e-12

/* ---- arithmetic ---- */

static void test_scores_by_hand(void **state)
{
    (void)state;
    /*
     * true\pred  A  B  C  D
     *   A        2  1  0  0
     *   B        0  3  0  0
     *   C        1  1  0  1     C is never predicted
     *   D        0  0  0  0     D is never true
     */
    const uint64_t m[16] = { 2, 1, 0, 0, 0, 3, 0, 0, 1, 1, 0, 1, 0, 0, 0, 0 };
    struct cairn_evalep_class c[4];
    double acc, p, r, f;
    memset(c, 0, sizeof(c));
    cairn__evalep_scores(c, 4, m, &acc, &p, &r, &f);
    assert_true(fabs(acc - 5.0 / 9.0) < EPS);
    /* A: tp 2 of 3 predicted, 3 true. */
    assert_int_equal(c[0].support, 3);
    assert_int_equal(c[0].predicted, 3);
    assert_true(fabs(c[0].precision - 2.0 / 3.0) < EPS);
    assert_true(fabs(c[0].recall - 2.0 / 3.0) < EPS);
    assert_true(fabs(c[0].f1 - 2.0 / 3.0) < EPS);
    /* B: tp 3 of 5 predicted, 3 true: P 0.6, R 1, F1 0.75. */
    assert_true(fabs(c[1].precision - 0.6) < EPS);
    assert_true(fabs(c[1].recall - 1.0) < EPS);
    assert_true(fabs(c[1].f1 - 0.75) < EPS);
    /* C: never predicted: precision 0 (0/0), recall 0/3. */
    assert_int_equal(c[2].predicted, 0);
    assert_int_equal(c[2].support, 3);
    assert_true(c[2].precision == 0 && c[2].recall == 0 && c[2].f1 == 0);
    /* D: never true, predicted once: precision 0/1, recall 0 (0/0). */
    assert_int_equal(c[3].support, 0);
    assert_int_equal(c[3].predicted, 1);
    assert_true(c[3].precision == 0 && c[3].recall == 0 && c[3].f1 == 0);
    /* Macro averages run over all four classes. */
    assert_true(fabs(p - (2.0 / 3.0 + 0.6) / 4.0) < EPS);
    assert_true(fabs(r - (2.0 / 3.0 + 1.0) / 4.0) < EPS);
    assert_true(fabs(f - (2.0 / 3.0 + 0.75) / 4.0) < EPS);

    /* No rows at all: every figure 0, nothing divides by zero. */
    const uint64_t z[4] = { 0, 0, 0, 0 };
    cairn__evalep_scores(c, 2, z, &acc, &p, &r, &f);
    assert_true(acc == 0 && p == 0 && r == 0 && f == 0);
}

static void test_percentile(void **state)
{
    (void)state;
    double v[100];
    for (int i = 0; i < 100; i++)
        v[i] = i + 1;
    assert_true(cairn__percentile(v, 10, 50) == 5);
    assert_true(cairn__percentile(v, 10, 95) == 10);
    assert_true(cairn__percentile(v, 10, 99) == 10);
    assert_true(cairn__percentile(v, 10, 0) == 1);
    assert_true(cairn__percentile(v, 10, 100) == 10);
    assert_true(cairn__percentile(v, 100, 50) == 50);
    assert_true(cairn__percentile(v, 100, 95) == 95);
    assert_true(cairn__percentile(v, 100, 99) == 99);
    assert_true(cairn__percentile(v, 1, 99) == 1);
    assert_true(cairn__percentile(v, 0, 50) == 0);
    /* 51st percentile of 2 values: ceil(1.02) = 2nd. */
    assert_true(cairn__percentile(v, 2, 51) == 2);
    assert_true(cairn__percentile(v, 2, 50) == 1);
}

static void test_perturb(void **state)
{
    (void)state;
    enum { N = 20000 };
    float *a = malloc(N * 3 * sizeof(float)), *b = malloc(N * 3 * sizeof(float));
    float *c = malloc(N * 3 * sizeof(float)), *orig = malloc(N * 3 * sizeof(float));
    double mean = 0, ss = 0;
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_non_null(orig);
    for (int i = 0; i < N; i++) {
        orig[i * 3 + 0] = (float)(i % 2 ? 2 : 0);  /* std exactly 1 */
        orig[i * 3 + 1] = 7;                       /* constant: std 0, never moves */
        orig[i * 3 + 2] = (float)(i % 2 ? 20 : 0); /* std 10 */
    }
    memcpy(a, orig, N * 3 * sizeof(float));
    memcpy(b, orig, N * 3 * sizeof(float));
    memcpy(c, orig, N * 3 * sizeof(float));
    cairn__evalep_perturb(a, N, 3, 0.5, 42);
    cairn__evalep_perturb(b, N, 3, 0.5, 42);
    cairn__evalep_perturb(c, N, 3, 0.5, 43);
    assert_memory_equal(a, b, N * 3 * sizeof(float));
    assert_true(memcmp(a, c, N * 3 * sizeof(float)) != 0);
    for (int i = 0; i < N; i++) {
        double d = a[i * 3] - orig[i * 3];
        assert_true(a[i * 3 + 1] == 7.0f);
        mean += d;
        ss += d * d;
    }
    mean /= N;
    /* Noise of column 0 is N(0, 0.5^2): sample mean and std within a few standard errors. */
    assert_true(fabs(mean) < 0.02);
    assert_true(fabs(sqrt(ss / N) - 0.5) < 0.02);
    ss = 0;
    for (int i = 0; i < N; i++) {
        double d = a[i * 3 + 2] - orig[i * 3 + 2];
        ss += d * d;
    }
    assert_true(fabs(sqrt(ss / N) - 5.0) < 0.2);
    free(a);
    free(b);
    free(c);
    free(orig);
}

static void test_parse_perturb(void **state)
{
    (void)state;
    double s = 0;
    assert_int_equal(cairn_evalep_parse_perturb(&s, "gaussian:0.05"), 0);
    assert_true(s == 0.05);
    assert_int_equal(cairn_evalep_parse_perturb(&s, "gaussian:0"), CAIRN_EINVALID);
    assert_int_equal(cairn_evalep_parse_perturb(&s, "gaussian:-1"), CAIRN_EINVALID);
    assert_int_equal(cairn_evalep_parse_perturb(&s, "gaussian:"), CAIRN_EINVALID);
    assert_int_equal(cairn_evalep_parse_perturb(&s, "gaussian:nan"), CAIRN_EINVALID);
    assert_int_equal(cairn_evalep_parse_perturb(&s, "uniform:0.1"), CAIRN_EINVALID);
    assert_non_null(strstr(cairn_error_last(), "'uniform:0.1'"));
}

/* ---- round trips against serve-model ---- */

static char dir[64];
static char datadir[128];
static atomic_int port;
static int run_result;
static struct cairn_serve_model_opts sopts;

/* The network of test_serve_model.c: h = relu(x0, x1 - 1, x0 + x1 + 0.5); "yes" if h1 + h2 > h0. */
static int predicts_yes(double x0, double x1)
{
    double h0 = x0 > 0 ? x0 : 0, h1 = x1 - 1 > 0 ? x1 - 1 : 0;
    double h2 = x0 + x1 + 0.5 > 0 ? x0 + x1 + 0.5 : 0;
    return h1 + h2 > h0;
}

static void write_model(void)
{
    mlp_fixture_write(dir);
}

/*
 * 50 rows split over two files (exercising the directory layout and a
 * partial last batch); the true label is the model's answer except on
 * every 10th row, where it is flipped. Rows 0, 10, 20, 30, 40 are wrong.
 * `numeric` writes 0/1 instead of no/yes. Returns the expected confusion
 * counts [true][pred] (0 = no).
 */
static void write_data(int numeric, uint64_t conf[2][2])
{
    struct cairn_buf a = CAIRN_BUF_INIT, b = CAIRN_BUF_INIT, p = CAIRN_BUF_INIT;
    memset(conf, 0, 4 * sizeof(uint64_t));
    cairn_buf_puts(&a, "x0,label,x1\n");
    cairn_buf_puts(&b, "x0,label,x1\n");
    for (int i = 0; i < 50; i++) {
        double x0 = i % 7 - 3, x1 = (i % 5 - 2) * 1.5;
        int pred = predicts_yes(x0, x1), truth = i % 10 == 0 ? !pred : pred;
        const char *l = numeric ? (truth ? "1" : "0") : (truth ? "yes" : "no");
        cairn_buf_printf(i < 30 ? &a : &b, "%g,%s,%g\n", x0, l, x1);
        conf[truth][pred]++;
    }
    cairn_fs_join(&p, datadir, "a.csv");
    assert_int_equal(cairn_fs_write_atomic(p.ptr, a.ptr, a.len, 0644), 0);
    cairn_buf_clear(&p);
    cairn_fs_join(&p, datadir, "b.csv");
    assert_int_equal(cairn_fs_write_atomic(p.ptr, b.ptr, b.len, 0644), 0);
    cairn_buf_release(&a);
    cairn_buf_release(&b);
    cairn_buf_release(&p);
}

static void on_listening(int p, void *arg)
{
    (void)arg;
    atomic_store(&port, p);
}

static void *run_thread(void *arg)
{
    (void)arg;
    run_result = cairn_serve_model_run(dir, "clf", "127.0.0.1:0", &sopts);
    return NULL;
}

static pthread_t start(double error_rate)
{
    pthread_t t;
    cairn_serve_model_opts_init(&sopts);
    sopts.on_listening = on_listening;
    sopts.error_rate = error_rate;
    sopts.seed = 7;
    atomic_store(&port, 0);
    assert_int_equal(pthread_create(&t, NULL, run_thread, NULL), 0);
    while (!atomic_load(&port))
        usleep(1000);
    return t;
}

static void stop(pthread_t t)
{
    kill(getpid(), SIGTERM);
    pthread_join(t, NULL);
    assert_int_equal(run_result, 0);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/cairn-evalep-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(datadir, sizeof(datadir), "%s/data", dir);
    assert_int_equal(cairn_fs_mkdir_p(datadir), 0);
    write_model();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cairn_fs_rm_rf(dir);
    return 0;
}

static double metric(const struct cairn_values *m, const char *name)
{
    const struct cairn_value *e = cairn_values_get(m, name);
    assert_non_null(e);
    return e->number;
}

static void test_round_trip(void **state)
{
    (void)state;
    struct cairn_evalep_opts o;
    struct cairn_evalep_result *r = NULL, *r2 = NULL;
    struct cairn_values m;
    uint64_t conf[2][2];
    char url[128], *json = NULL;
    json_t *j;

    write_data(0, conf);
    pthread_t t = start(0);
    /* A base URL with the model name, then a full model URL: the same answers. */
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", atomic_load(&port));
    cairn_evalep_opts_init(&o);
    o.model = "clf";
    o.batch_size = 8;
    o.concurrency = 3;
    o.perturb_sigma = 0.3;
    o.seed = 5;
    if (cairn_evalep_run(&r, datadir, url, &o) < 0)
        fail_msg("%s", cairn_error_last());
    if (r->rows != 50 || r->errors)
        fail_msg("%llu rows answered, %llu errors: %s", (unsigned long long)r->rows,
                 (unsigned long long)r->errors, r->first_error ? r->first_error : "-");
    assert_int_equal(r->rows, 50);
    assert_int_equal(r->requests, 7);
    assert_int_equal(r->errors, 0);
    assert_int_equal(r->features, 2);
    assert_int_equal(r->nclasses, 2);
    assert_string_equal(r->classes[0].name, "no");
    assert_string_equal(r->classes[1].name, "yes");
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++)
            assert_int_equal(r->confusion[a * 2 + b], conf[a][b]);
    assert_true(fabs(r->accuracy - 45.0 / 50.0) < EPS);
    assert_true(r->latency_p50_ms > 0 && r->latency_p50_ms <= r->latency_p95_ms &&
                r->latency_p95_ms <= r->latency_p99_ms);
    assert_true(r->throughput_rps > 0);
    assert_true(r->perturbed && r->robust_rows == 50);

    cairn_values_init(&m);
    assert_int_equal(cairn_evalep_result_metrics(&m, r), 0);
    assert_true(fabs(metric(&m, "accuracy") - 0.9) < EPS);
    assert_true(metric(&m, "rows") == 50);
    assert_true(metric(&m, "f1_class_no") == r->classes[0].f1);
    assert_true(metric(&m, "f1_class_yes") == r->classes[1].f1);
    metric(&m, "precision_macro");
    metric(&m, "recall_macro");
    metric(&m, "f1_macro");
    metric(&m, "latency_p50_ms");
    metric(&m, "latency_p95_ms");
    metric(&m, "latency_p99_ms");
    metric(&m, "throughput_rps");
    assert_true(metric(&m, "robust_accuracy") == r->robust_accuracy);
    cairn_values_release(&m);

    assert_int_equal(cairn_evalep_result_json(&json, r), 0);
    j = json_loads(json, 0, NULL);
    assert_non_null(j);
    assert_int_equal(
        json_integer_value(json_array_get(
            json_array_get(json_object_get(json_object_get(j, "confusion"), "matrix"), 1), 0)),
        conf[1][0]);
    json_decref(j);
    free(json);

    /* The same seed gives the same noisy inputs, hence the same robust accuracy. */
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v2/models/clf", atomic_load(&port));
    o.model = NULL;
    o.batch_size = 50;
    o.concurrency = 1;
    if (cairn_evalep_run(&r2, datadir, url, &o) < 0)
        fail_msg("%s", cairn_error_last());
    assert_true(r2->accuracy == r->accuracy);
    assert_true(r2->robust_accuracy == r->robust_accuracy);
    assert_int_equal(r2->requests, 1);
    cairn_evalep_result_free(r2);
    cairn_evalep_result_free(r);

    /* Integer labels match the `label` index of the answer with match_index. */
    write_data(1, conf);
    o.perturb_sigma = 0;
    o.match_index = true;
    assert_int_equal(cairn_evalep_run(&r, datadir, url, &o), 0);
    assert_true(fabs(r->accuracy - 0.9) < EPS);
    assert_string_equal(r->classes[0].name, "0");
    assert_false(r->perturbed);
    cairn_evalep_result_free(r);

    /* Wrong model name in the URL: the server's 404s are all failures. */
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v2/models/nope", atomic_load(&port));
    assert_int_equal(cairn_evalep_run(&r, datadir, url, &o), CAIRN_ERROR);
    assert_non_null(strstr(cairn_error_last(), "404"));
    stop(t);
}

static void test_failures_counted(void **state)
{
    (void)state;
    struct cairn_evalep_opts o;
    struct cairn_evalep_result *r = NULL;
    uint64_t conf[2][2];
    char url[128];

    write_data(0, conf);
    pthread_t t = start(0.5);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v2/models/clf/infer", atomic_load(&port));
    cairn_evalep_opts_init(&o);
    o.batch_size = 2;
    if (cairn_evalep_run(&r, datadir, url, &o) < 0)
        fail_msg("%s", cairn_error_last());
    assert_int_equal(r->requests, 25);
    assert_true(r->errors > 0 && r->errors < 25);
    assert_int_equal(r->rows + r->rows_failed, 50);
    assert_int_equal(r->rows_failed, r->errors * 2);
    assert_int_equal(r->nerror_status, 1);
    assert_int_equal(r->error_status[0].status, 500);
    assert_int_equal(r->error_status[0].count, r->errors);
    assert_non_null(strstr(r->first_error, "injected fault"));
    cairn_evalep_result_free(r);
    stop(t);

    /* Every request failing is an error naming the first failure. */
    t = start(1.0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", atomic_load(&port));
    o.model = "clf";
    assert_int_equal(cairn_evalep_run(&r, datadir, url, &o), CAIRN_ERROR);
    assert_non_null(strstr(cairn_error_last(), "every request failed"));
    stop(t);
}

static void test_bad_inputs(void **state)
{
    (void)state;
    struct cairn_evalep_opts o;
    struct cairn_evalep_result *r = NULL;
    struct cairn_buf p = CAIRN_BUF_INIT;
    char bad[160];

    cairn_evalep_opts_init(&o);
    assert_int_equal(cairn_evalep_run(&r, datadir, "https://x/v2/models/m", &o), CAIRN_EINVALID);
    assert_int_equal(cairn_evalep_run(&r, datadir, "http://127.0.0.1:1", &o), CAIRN_EINVALID);
    assert_non_null(strstr(cairn_error_last(), "names no model"));
    o.model = "m";
    o.label_column = "target";
    assert_int_equal(cairn_evalep_run(&r, datadir, "http://127.0.0.1:1", &o), CAIRN_EINVALID);
    assert_non_null(strstr(cairn_error_last(), "no label column 'target'"));

    snprintf(bad, sizeof(bad), "%s/bad.csv", dir);
    cairn_buf_puts(&p, "a,label\n1,x\nfoo,y\n");
    assert_int_equal(cairn_fs_write_atomic(bad, p.ptr, p.len, 0644), 0);
    o.label_column = NULL;
    assert_int_equal(cairn_evalep_run(&r, bad, "http://127.0.0.1:1", &o), CAIRN_EINVALID);
    assert_non_null(strstr(cairn_error_last(), "bad.csv:3: column 'a' value 'foo'"));
    assert_null(r);
    cairn_buf_release(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scores_by_hand), cmocka_unit_test(test_percentile),
        cmocka_unit_test(test_perturb),        cmocka_unit_test(test_parse_perturb),
        cmocka_unit_test(test_round_trip),     cmocka_unit_test(test_failures_counted),
        cmocka_unit_test(test_bad_inputs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
