/*
 * Unit tests for lib/serve/loadgen.c and the URL side of oipclient.c. A
 * stub router runs on its own loop on a second thread: it answers OIP v2
 * requests with X-Request-Id and X-Cairn-Version (the version chosen by the
 * sticky key, so a key always lands on one version), fails every 10th with
 * 503, and accepts feedback only with the right bearer token. The tests
 * check the open-loop count, the per-version split, the error counts, the
 * delayed feedback and the latency histogram's resolution.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include "cairn/common.h"
#include "serve/http.h"
#include "serve/loadgen.h"
#include "serve/oip.h"
#include "serve/oipclient.h"
#include "util/buf.h"
#include "util/fs.h"

static uv_loop_t srv_loop;
static uv_async_t stop_async;
static struct cairn_http_server *srv;
static pthread_t srv_thread;
static int srv_port;
static unsigned long n_infer, n_feedback, n_feedback_bad;
static atomic_ulong fb_ok;
static char datafile[64];

static void handler(struct cairn_http_req *req, void *ud)
{
    (void)ud;
    if (!strcmp(req->path, "/api/v1/feedback")) {
        const char *auth = cairn_http_header_find(req->headers, req->nheaders, "Authorization");
        json_t *j = json_loads(req->body, 0, NULL);
        n_feedback++;
        if (!auth || strcmp(auth, "Bearer tok") ||
            !json_is_string(json_object_get(j, "request_id")) ||
            !json_is_integer(json_object_get(j, "label"))) {
            n_feedback_bad++;
            cairn_http_respond_simple(req, 401, "application/json", "{}", 2);
        } else {
            atomic_fetch_add(&fb_ok, 1);
            cairn_http_respond_simple(req, 200, "application/json", "{}", 2);
        }
        json_decref(j);
        return;
    }
    if (!strcmp(req->path, "/v2/models/m/infer")) {
        struct cairn_oip_request r;
        struct cairn_buf body = CAIRN_BUF_INIT, hdr = CAIRN_BUF_INIT;
        const char *key = cairn_http_header_find(req->headers, req->nheaders, "X-User");
        unsigned long n = n_infer++;
        /* The key's number picks the version: user-K goes to v(K % 2 + 1). */
        int ver = key ? atoi(key + 5) % 2 + 1 : (int)(n % 2) + 1;
        cairn_buf_printf(&hdr, "X-Request-Id: r%lu\r\nX-Cairn-Version: v%d\r\n", n, ver);
        if (n % 10 == 9 || cairn_oip_decode_infer(&r, req->body, req->body_len, 1024) < 0) {
            struct cairn_http_response resp = { 503, "application/json", hdr.ptr, "{}", 2, NULL };
            cairn_http_respond(req, &resp);
        } else {
            size_t label = r.data[0] > 0;
            float probs[2] = { label ? 0.1f : 0.9f, label ? 0.9f : 0.1f };
            cairn_oip_encode_infer(&body, "m", "x", NULL, probs, &label, 1, 2, NULL);
            struct cairn_http_response resp = { 200,      "application/json", hdr.ptr,
                                                body.ptr, body.len,           NULL };
            cairn_http_respond(req, &resp);
            cairn_oip_request_release(&r);
        }
        cairn_buf_release(&body);
        cairn_buf_release(&hdr);
        return;
    }
    cairn_http_respond_simple(req, 404, "application/json", "{}", 2);
}

static void on_stop(uv_async_t *a)
{
    cairn_http_server_shutdown(srv);
    uv_close((uv_handle_t *)a, NULL);
}

static void *serve_thread(void *arg)
{
    (void)arg;
    uv_run(&srv_loop, UV_RUN_DEFAULT);
    return NULL;
}

static int setup(void **state)
{
    (void)state;
    struct cairn_buf b = CAIRN_BUF_INIT;
    snprintf(datafile, sizeof(datafile), "/tmp/cairn-loadgen-XXXXXX");
    if (mkstemp(datafile) < 0)
        return -1;
    /* 10 rows; the label is x > 0 except on row 0, where it is wrong. */
    cairn_buf_puts(&b, "x,label\n");
    for (int i = 0; i < 10; i++)
        cairn_buf_printf(&b, "%g,%d\n", i - 4.5, i == 0 ? 1 : i - 4.5 > 0);
    if (cairn_fs_write_atomic(datafile, b.ptr, b.len, 0644) < 0)
        return -1;
    cairn_buf_release(&b);
    uv_loop_init(&srv_loop);
    uv_async_init(&srv_loop, &stop_async, on_stop);
    if (cairn_http_server_new(&srv, &srv_loop, "127.0.0.1:0", NULL, handler, NULL) < 0)
        return -1;
    srv_port = cairn_http_server_port(srv);
    return pthread_create(&srv_thread, NULL, serve_thread, NULL) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    uv_async_send(&stop_async);
    pthread_join(srv_thread, NULL);
    unlink(datafile);
    return uv_loop_close(&srv_loop) == 0 ? 0 : -1;
}

static void test_histogram(void **state)
{
    (void)state;
    for (double ms = 0.01; ms < 60000; ms *= 1.37) {
        double back = cairn__loadgen_bucket_ms(cairn__loadgen_bucket(ms));
        assert_true(fabs(back - ms) / ms < 0.02);
    }
    assert_true(cairn__loadgen_bucket(0.5) < cairn__loadgen_bucket(0.6));
    assert_int_equal(cairn__loadgen_bucket(0), 0);
    assert_int_equal(cairn__loadgen_bucket(1e12), 1023);
}

static void test_urls(void **state)
{
    (void)state;
    struct cairn_oip_target t;
    assert_int_equal(cairn_oip_target_parse(&t, "http://localhost:8081", "digits"), 0);
    assert_string_equal(t.addr, "127.0.0.1:8081");
    assert_string_equal(t.path, "/v2/models/digits/infer");
    cairn_oip_target_release(&t);
    assert_int_equal(
        cairn_oip_target_parse(&t, "http://127.0.0.1:9/pre/v2/models/d/versions/3/", NULL), 0);
    assert_string_equal(t.path, "/pre/v2/models/d/versions/3/infer");
    assert_string_equal(t.model, "d");
    cairn_oip_target_release(&t);
    assert_int_equal(cairn_oip_target_parse(&t, "http://[::1]:9/v2/models/d/infer", "d"), 0);
    assert_string_equal(t.addr, "[::1]:9");
    assert_string_equal(t.path, "/v2/models/d/infer");
    cairn_oip_target_release(&t);
    assert_int_equal(cairn_oip_target_parse(&t, "http://127.0.0.1:9/v2/models/d", "e"),
                     CAIRN_EINVALID);
    assert_int_equal(cairn_oip_target_parse(&t, "http://127.0.0.1:99999", "d"), CAIRN_EINVALID);
    assert_int_equal(cairn_oip_target_parse(&t, "ftp://x/", "d"), CAIRN_EINVALID);
    assert_int_equal(cairn_oip_url_resolve(&t, "http://127.0.0.1"), 0);
    assert_string_equal(t.addr, "127.0.0.1:80");
    assert_string_equal(t.path, "/");
    cairn_oip_target_release(&t);
}

static void test_run(void **state)
{
    (void)state;
    struct cairn_loadgen_opts o;
    struct cairn_loadgen_report *r = NULL;
    char url[64], *json = NULL;
    uint64_t total = 0, errors503 = 0, ok = 0;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d", srv_port);
    cairn_loadgen_opts_init(&o);
    o.url = url;
    o.model = "m";
    o.data_path = datafile;
    o.rate = 100;
    o.duration_s = 1;
    o.feedback = true;
    o.feedback_delay_s = 0.1;
    o.token = "tok";
    o.sticky_header = "X-User";
    o.sticky_keys = 10;
    if (cairn_loadgen_run(&r, &o) < 0)
        fail_msg("%s", cairn_error_last());
    /* Open loop: exactly rate * duration requests, whatever the answers. */
    assert_int_equal(r->scheduled, 100);
    assert_int_equal(r->sent, 100);
    assert_int_equal(r->answered, 100);
    assert_int_equal(r->nversions, 2);
    for (size_t i = 0; i < r->nversions; i++) {
        const struct cairn_loadgen_version *v = &r->versions[i];
        assert_true(!strcmp(v->version, "v1") || !strcmp(v->version, "v2"));
        total += v->requests;
        ok += v->ok;
        for (size_t j = 0; j < v->nstatus; j++) {
            assert_int_equal(v->status[j].status, 503);
            errors503 += v->status[j].count;
        }
        assert_true(v->latency_p50_ms > 0 && v->latency_p50_ms <= v->latency_p99_ms);
        assert_true(v->accuracy >= 0.8 && v->accuracy <= 1.0);
    }
    assert_int_equal(total, 100);
    assert_int_equal(errors503, 10);
    assert_int_equal(ok, 90);
    assert_int_equal(r->sticky_split, 0);
    /* Every answered request's label was posted, with the token, after the delay. */
    assert_int_equal(r->fb_queued, 90);
    assert_int_equal(r->fb_sent, 90);
    assert_int_equal(r->fb_ok, 90);
    assert_int_equal(r->fb_failed, 0);
    assert_int_equal(r->fb_unsent, 0);
    assert_int_equal(atomic_load(&fb_ok), 90);
    assert_int_equal(cairn_loadgen_report_json(&json, r), 0);
    assert_non_null(strstr(json, "\"sticky_split\":0"));
    free(json);
    cairn_loadgen_report_free(r);

    /* A wrong token: feedback is refused and counted as failed. */
    o.token = "nope";
    o.duration_s = 0.2;
    if (cairn_loadgen_run(&r, &o) < 0)
        fail_msg("%s", cairn_error_last());
    assert_int_equal(r->sent, 20);
    assert_int_equal(r->fb_ok, 0);
    assert_int_equal(r->fb_failed, r->fb_sent);
    assert_non_null(strstr(r->fb_first_error, "401"));
    cairn_loadgen_report_free(r);

    /* Nothing listening: every request is counted without an answer; the run still ends. */
    snprintf(url, sizeof(url), "http://127.0.0.1:1");
    o.feedback = false;
    o.timeout_ms = 500;
    if (cairn_loadgen_run(&r, &o) < 0)
        fail_msg("%s", cairn_error_last());
    assert_int_equal(r->no_answer, r->sent);
    assert_int_equal(r->nversions, 1);
    assert_string_equal(r->versions[0].version, "");
    cairn_loadgen_report_free(r);

    o.rate = 0;
    assert_int_equal(cairn_loadgen_run(&r, &o), CAIRN_EINVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_histogram),
        cmocka_unit_test(test_urls),
        cmocka_unit_test(test_run),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
