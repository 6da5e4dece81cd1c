/*
 * Unit tests for lib/serve/serve_model.c: a real server on a loopback port
 * (run on a second thread, stopped with SIGTERM as in production) serving a
 * hand-computed two-layer network; routes, errors, and fault injection.
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
#include "serve/http.h"
#include "serve/serve_model.h"
#include "mlp_fixture.h"
#include "util/buf.h"
#include "util/fs.h"

static char dir[64];
static atomic_int port;
static int run_result;
static struct cairn_serve_model_opts opts;

/* mlp_fixture.h's network: x=[2,1] gives p1 = 1/(1+e^-1.5); x=[-1,3] p0 = 1/(1+e^4.5). */
static void write_model(void)
{
    mlp_fixture_write(dir);
}

static void on_listening(int p, void *arg)
{
    (void)arg;
    atomic_store(&port, p);
}

static void *run_thread(void *arg)
{
    (void)arg;
    run_result = cairn_serve_model_run(dir, "clf", "127.0.0.1:0", &opts);
    return NULL;
}

static int request(struct cairn_http_result *res, const char *method, const char *path,
                   const char *body)
{
    char url[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", atomic_load(&port), path);
    return cairn_http_request_sync(res, url, method,
                                   body ? "Content-Type: application/json\r\n" : NULL, body,
                                   body ? strlen(body) : 0, 5000);
}

static pthread_t start(void)
{
    pthread_t t;
    struct cairn_http_result res;
    atomic_store(&port, 0);
    assert_int_equal(pthread_create(&t, NULL, run_thread, NULL), 0);
    while (!atomic_load(&port))
        usleep(1000);
    for (int i = 0; i < 500; i++) {
        assert_int_equal(request(&res, "GET", "/v2/health/ready", NULL), 0);
        int st = res.status;
        cairn_http_result_release(&res);
        if (st == 200)
            break;
        assert_int_equal(st, 503);
        usleep(2000);
    }
    return t;
}

static void stop(pthread_t t)
{
    kill(getpid(), SIGTERM);
    pthread_join(t, NULL);
    assert_int_equal(run_result, 0);
}

static json_t *infer(int *status, const char *body)
{
    struct cairn_http_result res;
    json_error_t e;
    json_t *j;
    assert_int_equal(request(&res, "POST", "/v2/models/clf/infer", body), 0);
    *status = res.status;
    j = json_loads(res.body.ptr ? res.body.ptr : "", 0, &e);
    assert_non_null(j);
    cairn_http_result_release(&res);
    return j;
}

/* An infer request answered `status` with a JSON error containing `what`. */
static void expect_error(const char *body, int status, const char *what)
{
    int got;
    json_t *j = infer(&got, body);
    const char *msg = json_string_value(json_object_get(j, "error"));
    assert_int_equal(got, status);
    assert_non_null(msg);
    assert_non_null(strstr(msg, what));
    json_decref(j);
}

static const char *two_rows =
    "{\"id\":\"q\",\"inputs\":[{\"name\":\"input\",\"shape\":[2,2],"
    "\"datatype\":\"FP32\",\"data\":[[2,1],[-1,3]]}]}";

static void test_routes_and_infer(void **state)
{
    (void)state;
    struct cairn_http_result res;
    int status;
    cairn_serve_model_opts_init(&opts);
    opts.version = "abc1234";
    opts.on_listening = on_listening;
    pthread_t t = start();

    assert_int_equal(request(&res, "GET", "/v2/health/live", NULL), 0);
    assert_int_equal(res.status, 200);
    cairn_http_result_release(&res);
    assert_int_equal(request(&res, "GET", "/v2/models/clf", NULL), 0);
    assert_int_equal(res.status, 200);
    assert_non_null(strstr(res.body.ptr, "\"platform\":\"cairn-mlp\""));
    assert_non_null(strstr(res.body.ptr, "\"versions\":[\"abc1234\"]"));
    assert_non_null(strstr(res.body.ptr, "\"shape\":[-1,2]"));
    cairn_http_result_release(&res);
    assert_int_equal(request(&res, "GET", "/v2/models/other", NULL), 0);
    assert_int_equal(res.status, 404);
    cairn_http_result_release(&res);
    assert_int_equal(request(&res, "POST", "/v2/models/other/infer", two_rows), 0);
    assert_int_equal(res.status, 404);
    cairn_http_result_release(&res);
    assert_int_equal(request(&res, "GET", "/v2/models/clf/infer", NULL), 0);
    assert_int_equal(res.status, 405);
    cairn_http_result_release(&res);
    assert_int_equal(request(&res, "POST", "/v2/models/clf/versions/abc1234/infer", two_rows), 0);
    assert_int_equal(res.status, 200);
    cairn_http_result_release(&res);

    json_t *j = infer(&status, two_rows);
    assert_int_equal(status, 200);
    assert_string_equal(json_string_value(json_object_get(j, "id")), "q");
    json_t *outs = json_object_get(j, "outputs");
    json_t *p = json_object_get(json_array_get(outs, 0), "data");
    assert_float_equal(json_number_value(json_array_get(p, 1)), 1.0 / (1.0 + exp(-1.5)), 1e-5);
    assert_float_equal(json_number_value(json_array_get(p, 2)), 1.0 / (1.0 + exp(4.5)), 1e-5);
    json_t *l = json_object_get(json_array_get(outs, 1), "data");
    assert_int_equal(json_integer_value(json_array_get(l, 0)), 1);
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(json_array_get(outs, 2), "data"), 0)),
        "yes");
    json_decref(j);

    /* Wrong feature count, bad JSON: 400 with a JSON error. */
    expect_error(
        "{\"inputs\":[{\"name\":\"input\",\"shape\":[1,3],\"datatype\":\"FP32\","
        "\"data\":[1,2,3]}]}",
        400, "features");
    expect_error("{\"inputs\":", 400, "");
    /* Inputs that overflow fp32 inside the network: a JSON error, never "nan" (D10). */
    expect_error(
        "{\"inputs\":[{\"name\":\"input\",\"shape\":[1,2],\"datatype\":\"FP32\","
        "\"data\":[3e38,3e38]}]}",
        422, "not finite");
    stop(t);
}

static int listened;

static void count_listening(int p, void *arg)
{
    (void)p;
    (void)arg;
    listened++;
}

/* A model that cannot be served fails the start before listening: no "serving" line (D21). */
static void test_bad_model_never_listens(void **state)
{
    (void)state;
    char bad[80];
    struct cairn_buf path = CAIRN_BUF_INIT, file = CAIRN_BUF_INIT;
    float nan = NAN;
    snprintf(bad, sizeof(bad), "%s/bad", dir);
    assert_int_equal(cairn_fs_mkdir_p(bad), 0);
    mlp_fixture_write(bad);
    assert_int_equal(cairn_fs_join(&path, bad, "model.safetensors"), 0);
    /* The fixture's first weight becomes NaN: the last 68 bytes are the 17 floats. */
    assert_int_equal(cairn_fs_read_file(&file, path.ptr, 1 << 20), 0);
    memcpy(file.ptr + file.len - 68, &nan, 4);
    assert_int_equal(cairn_fs_write_atomic(path.ptr, file.ptr, file.len, 0644), 0);
    cairn_buf_release(&file);
    cairn_serve_model_opts_init(&opts);
    opts.on_listening = count_listening;
    listened = 0;
    assert_int_equal(cairn_serve_model_run(bad, "clf", "127.0.0.1:0", &opts), CAIRN_EINVALID);
    assert_non_null(strstr(cairn_error_last(), "non-finite"));
    /* Truncated: a damaged file. */
    assert_int_equal(cairn_fs_write_atomic(path.ptr, "\x10\0\0\0\0\0\0\0{", 9, 0644), 0);
    assert_int_equal(cairn_serve_model_run(bad, "clf", "127.0.0.1:0", &opts), CAIRN_EINVALID);
    assert_int_equal(listened, 0);
    cairn_buf_release(&path);
}

static void test_faults(void **state)
{
    (void)state;
    int status, n500 = 0;
    cairn_serve_model_opts_init(&opts);
    opts.on_listening = on_listening;
    opts.error_rate = 0.5;
    opts.seed = 42;
    pthread_t t = start();
    for (int i = 0; i < 40; i++) {
        json_t *j = infer(&status, two_rows);
        n500 += status == 500;
        assert_true(status == 200 || status == 500);
        json_decref(j);
    }
    assert_true(n500 > 5 && n500 < 35);
    stop(t);

    cairn_serve_model_opts_init(&opts);
    opts.on_listening = on_listening;
    opts.wrong_rate = 1.0;
    opts.extra_latency_ms = 30;
    t = start();
    double t0 = cairn_time_monotonic();
    json_t *j = infer(&status, two_rows);
    assert_true(cairn_time_monotonic() - t0 >= 0.025);
    assert_int_equal(status, 200);
    json_t *l = json_object_get(json_array_get(json_object_get(j, "outputs"), 1), "data");
    assert_int_equal(json_integer_value(json_array_get(l, 0)), 0); /* the right answer is 1 */
    assert_int_equal(json_integer_value(json_array_get(l, 1)), 0);
    json_decref(j);
    stop(t);

    /* Out-of-range options and a missing model are errors, not servers. */
    opts.wrong_rate = 2;
    assert_int_equal(cairn_serve_model_run(dir, "clf", "127.0.0.1:0", &opts), CAIRN_EINVALID);
    opts.wrong_rate = 0;
    opts.on_listening = NULL;
    assert_int_equal(cairn_serve_model_run("/nonexistent-cairn", "clf", "127.0.0.1:0", &opts),
                     CAIRN_ENOTFOUND);
    assert_int_equal(cairn_serve_model_run(dir, "clf", "bad-addr", &opts), CAIRN_EINVALID);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/cairn-sm-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    write_model();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return cairn_fs_rm_rf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes_and_infer),
        cmocka_unit_test(test_faults),
        cmocka_unit_test(test_bad_model_never_listens),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
