/*
 * Unit tests for lib/serve/http.c on a real loopback port: the server runs
 * its loop on a second thread while this thread talks to it with the
 * blocking helper, the pooled client and raw sockets (pipelining, split
 * writes, oversized bodies and headers, slow clients, idle timeouts,
 * answers given later from a timer, answers after the client left).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <uv.h>

#include "cairn/common.h"
#include "serve/http.h"

static uv_loop_t srv_loop;
static uv_async_t stop_async;
static struct cairn_http_server *srv;
static pthread_t srv_thread;
static int port;
static atomic_int nrequests;
static atomic_uintptr_t last_req;
static atomic_int late_result = 1;
static char url[64];

struct deferred {
    uv_timer_t timer;
    struct cairn_http_req *req;
    int late;
};

static void on_deferred_closed(uv_handle_t *h)
{
    free(h->data);
}

static void deferred_fire(uv_timer_t *t)
{
    struct deferred *d = t->data;
    const char *b = d->late ? "late" : "slow";
    int r = cairn_http_respond_simple(d->req, 200, "text/plain", b, 4);
    if (d->late)
        atomic_store(&late_result, r);
    uv_close((uv_handle_t *)&d->timer, on_deferred_closed);
}

static void free_body(void *p)
{
    free(p);
}

/*
 * /echo answers "METHOD PATH?QUERY|X-Test|BODY"; /slow answers 30 ms later
 * from a timer; /late 400 ms later (after the client gave up); /big sends
 * 1 MiB owned by the engine; anything else is 404.
 */
static void handler(struct cairn_http_req *req, void *ud)
{
    (void)ud;
    atomic_fetch_add(&nrequests, 1);
    atomic_store(&last_req, (uintptr_t)req);
    if (!strcmp(req->path, "/echo")) {
        char out[4096];
        const char *x = cairn_http_header_find(req->headers, req->nheaders, "x-test");
        int n = snprintf(out, sizeof(out), "%s %s?%s|%s|%.*s", req->method, req->path, req->query,
                         x ? x : "-", (int)req->body_len, req->body);
        struct cairn_http_response r = {
            200, "text/plain", "X-Reply: yes\r\n", out, (size_t)n, NULL
        };
        cairn_http_respond(req, &r);
    } else if (!strcmp(req->path, "/slow") || !strcmp(req->path, "/late")) {
        struct deferred *d = calloc(1, sizeof(*d));
        d->req = req;
        d->late = req->path[1] == 'l';
        uv_timer_init(&srv_loop, &d->timer);
        d->timer.data = d;
        uv_timer_start(&d->timer, deferred_fire, d->late ? 400 : 30, 0);
    } else if (!strcmp(req->path, "/big")) {
        size_t n = 1 << 20;
        char *b = malloc(n);
        memset(b, 'b', n);
        struct cairn_http_response r = { 200, NULL, NULL, b, n, free_body };
        cairn_http_respond(req, &r);
    } else {
        cairn_http_respond_simple(req, 404, "text/plain", "no\n", 3);
    }
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
    struct cairn_http_server_opts o;
    (void)state;
    cairn_http_server_opts_init(&o);
    o.max_body = 4096;
    o.max_header_bytes = 2048;
    o.header_timeout_ms = 300;
    o.idle_timeout_ms = 500;
    uv_loop_init(&srv_loop);
    uv_async_init(&srv_loop, &stop_async, on_stop);
    if (cairn_http_server_new(&srv, &srv_loop, "127.0.0.1:0", &o, handler, NULL) < 0)
        return -1;
    port = cairn_http_server_port(srv);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
    return pthread_create(&srv_thread, NULL, serve_thread, NULL);
}

static int teardown(void **state)
{
    (void)state;
    uv_async_send(&stop_async);
    pthread_join(srv_thread, NULL);
    return uv_loop_close(&srv_loop) == 0 ? 0 : -1;
}

static int raw_connect(void)
{
    struct sockaddr_in sa;
    struct timeval tv = { 3, 0 };
    int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static void raw_send(int fd, const char *s, size_t n)
{
    assert_int_equal(send(fd, s, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* Read until the peer closes, `want` occurrences of "HTTP/1.1 " arrived with
 * their bodies ending in `tail`, or the timeout. */
static size_t raw_read_all(int fd, char *out, size_t cap)
{
    size_t n = 0;
    for (;;) {
        ssize_t r = recv(fd, out + n, cap - 1 - n, 0);
        if (r <= 0)
            break;
        n += (size_t)r;
        if (n >= cap - 1)
            break;
    }
    out[n] = '\0';
    return n;
}

static void test_sync_roundtrip(void **state)
{
    (void)state;
    struct cairn_http_result res;
    char u[128];
    snprintf(u, sizeof(u), "%s/echo?a=1&b=2", url);
    assert_int_equal(
        cairn_http_request_sync(&res, u, "POST", "X-Test: hello\r\n", "payload", 7, 2000), 0);
    assert_int_equal(res.status, 200);
    assert_string_equal(res.body.ptr, "POST /echo?a=1&b=2|hello|payload");
    assert_string_equal(cairn_http_result_header(&res, "x-reply"), "yes");
    assert_string_equal(cairn_http_result_header(&res, "Content-Type"), "text/plain");
    assert_null(cairn_http_result_header(&res, "x-nothing"));
    cairn_http_result_release(&res);

    snprintf(u, sizeof(u), "%s/nothing", url);
    assert_int_equal(cairn_http_request_sync(&res, u, "GET", NULL, NULL, 0, 2000), 0);
    assert_int_equal(res.status, 404);
    cairn_http_result_release(&res);

    snprintf(u, sizeof(u), "http://localhost:%d/echo", port);
    assert_int_equal(cairn_http_request_sync(&res, u, "HEAD", NULL, NULL, 0, 2000), 0);
    assert_int_equal(res.status, 200);
    assert_int_equal(res.body.len, 0);
    cairn_http_result_release(&res);

    snprintf(u, sizeof(u), "%s/big", url);
    assert_int_equal(cairn_http_request_sync(&res, u, "GET", NULL, NULL, 0, 5000), 0);
    assert_int_equal(res.body.len, 1 << 20);
    assert_int_equal(res.body.ptr[12345], 'b');
    cairn_http_result_release(&res);

    assert_int_equal(cairn_http_request_sync(&res, "ftp://x/", "GET", NULL, NULL, 0, 100),
                     CAIRN_EINVALID);
    assert_int_equal(
        cairn_http_request_sync(&res, "http://127.0.0.1:1/", "GET", NULL, NULL, 0, 2000),
        CAIRN_ERROR);
}

/* ---- the pooled client on this thread's own loop ---- */

struct chain {
    struct cairn_http_client *c;
    char addr[64];
    int left;
    int ok;
    int errors;
    uintptr_t reqs[8];
    int n;
};

static void chain_cb(int error, const struct cairn_http_resp *resp, void *arg)
{
    struct chain *ch = arg;
    if (error < 0) {
        ch->errors++;
        return;
    }
    if (resp->status == 200 && !strncmp(resp->body, "GET /echo?", 10))
        ch->ok++;
    ch->reqs[ch->n++] = atomic_load(&last_req);
    if (--ch->left > 0)
        cairn_http_client_request(ch->c, ch->addr, "GET", "/echo", NULL, NULL, 0, 2000, chain_cb,
                                  ch);
}

static void test_client_keepalive_reuse(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct chain ch = { 0 };
    uv_loop_init(&loop);
    assert_int_equal(cairn_http_client_new(&ch.c, &loop, NULL), 0);
    snprintf(ch.addr, sizeof(ch.addr), "127.0.0.1:%d", port);
    ch.left = 4;
    assert_int_equal(cairn_http_client_request(ch.c, ch.addr, "GET", "/echo", NULL, NULL, 0, 2000,
                                               chain_cb, &ch),
                     0);
    while (ch.left > 0 && ch.errors == 0 && uv_run(&loop, UV_RUN_ONCE))
        ;
    assert_int_equal(ch.ok, 4);
    /* One connection served all four: the server saw the same request slot. */
    for (int i = 1; i < 4; i++)
        assert_true(ch.reqs[i] == ch.reqs[0]);
    /* Bad input is refused at once, without a callback. */
    assert_int_equal(
        cairn_http_client_request(ch.c, "nohost", "GET", "/", NULL, NULL, 0, 0, chain_cb, &ch),
        CAIRN_EINVALID);
    assert_int_equal(
        cairn_http_client_request(ch.c, ch.addr, "GET", "x y", NULL, NULL, 0, 0, chain_cb, &ch),
        CAIRN_EINVALID);
    cairn_http_client_free(ch.c);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_int_equal(ch.errors, 0);
}

struct one {
    int done, error, status;
};

static void one_cb(int error, const struct cairn_http_resp *resp, void *arg)
{
    struct one *o = arg;
    o->done++;
    o->error = error;
    o->status = resp ? resp->status : 0;
}

static void test_client_timeout_and_late_answer(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct cairn_http_client *c;
    struct one o = { 0 }, q[3] = { { 0 } };
    struct cairn_http_client_opts opts;
    char addr[64];
    uv_loop_init(&loop);
    cairn_http_client_opts_init(&opts);
    opts.max_conns_per_upstream = 1; /* the next requests queue behind the first */
    assert_int_equal(cairn_http_client_new(&c, &loop, &opts), 0);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    atomic_store(&late_result, 1);
    assert_int_equal(
        cairn_http_client_request(c, addr, "GET", "/late", NULL, NULL, 0, 100, one_cb, &o), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(
            cairn_http_client_request(c, addr, "GET", "/slow", NULL, NULL, 0, 3000, one_cb, &q[i]),
            0);
    while (!(o.done && q[2].done) && uv_run(&loop, UV_RUN_ONCE))
        ;
    assert_int_equal(o.done, 1);
    assert_int_equal(o.error, CAIRN_ERROR);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(q[i].error, 0);
        assert_int_equal(q[i].status, 200);
    }
    /* A request to a port nobody listens on fails through the callback. */
    memset(&o, 0, sizeof(o));
    assert_int_equal(
        cairn_http_client_request(c, "127.0.0.1:1", "GET", "/", NULL, NULL, 0, 1000, one_cb, &o),
        0);
    while (!o.done && uv_run(&loop, UV_RUN_ONCE))
        ;
    assert_int_equal(o.error, CAIRN_ERROR);
    /* Freeing with a request in flight fails it. */
    memset(&o, 0, sizeof(o));
    assert_int_equal(
        cairn_http_client_request(c, addr, "GET", "/slow", NULL, NULL, 0, 1000, one_cb, &o), 0);
    cairn_http_client_free(c);
    assert_int_equal(o.done, 1);
    assert_int_equal(o.error, CAIRN_ERROR);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    /* The server answered /late after the client left, without harm. */
    usleep(500 * 1000);
    assert_int_not_equal(atomic_load(&late_result), 1);
}

static void test_pipelined_in_order(void **state)
{
    (void)state;
    char buf[8192];
    const char *reqs =
        "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"
        "GET /echo?n=2 HTTP/1.1\r\nHost: x\r\n\r\n"
        "POST /echo?n=3 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
        "GET /echo?n=4 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    int fd = raw_connect();
    raw_send(fd, reqs, strlen(reqs));
    raw_read_all(fd, buf, sizeof(buf));
    close(fd);
    char *a = strstr(buf, "slow"), *b = strstr(buf, "?n=2|"), *c = strstr(buf, "?n=3|-|abc"),
         *d = strstr(buf, "?n=4|");
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_non_null(d);
    assert_true(a < b && b < c && c < d);
    assert_non_null(strstr(d, "") ? strstr(buf, "Connection: close") : NULL);
}

static void test_split_writes(void **state)
{
    (void)state;
    char buf[4096];
    const char *req =
        "POST /echo?split=1 HTTP/1.1\r\nHost: x\r\nX-Test: pieces\r\n"
        "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
        "GET /echo HTTP/1.0\r\n\r\n";
    int fd = raw_connect();
    /* One byte at a time: every token is split across reads. */
    for (size_t i = 0; req[i]; i++) {
        raw_send(fd, req + i, 1);
        if (i % 16 == 0)
            usleep(200);
    }
    raw_read_all(fd, buf, sizeof(buf));
    close(fd);
    assert_non_null(strstr(buf, "POST /echo?split=1|pieces|abcde"));
    assert_non_null(strstr(buf, "GET /echo?|-|"));
}

static void expect_status_and_close(const char *req, size_t len, const char *status)
{
    char buf[4096];
    int fd = raw_connect();
    raw_send(fd, req, len);
    raw_read_all(fd, buf, sizeof(buf));
    close(fd);
    assert_memory_equal(buf, status, strlen(status));
}

static void test_limits(void **state)
{
    (void)state;
    char big[8192];
    int n;
    /* Declared body over the 4096-byte limit: 413 before reading it. */
    n = snprintf(big, sizeof(big), "POST /echo HTTP/1.1\r\nContent-Length: 100000\r\n\r\n");
    memset(big + n, 'x', 3000);
    expect_status_and_close(big, (size_t)n + 3000, "HTTP/1.1 413 ");
    /* Chunked body that grows over the limit. */
    n = snprintf(big, sizeof(big),
                 "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "1388\r\n");
    memset(big + n, 'y', 5000);
    expect_status_and_close(big, (size_t)n + 5000, "HTTP/1.1 413 ");
    /* Headers over 2048 bytes, URL over the default 8 KiB cap is also a header overflow. */
    n = snprintf(big, sizeof(big), "GET /echo HTTP/1.1\r\nX-Big: ");
    memset(big + n, 'h', 3000);
    memcpy(big + n + 3000, "\r\n\r\n", 4);
    expect_status_and_close(big, (size_t)n + 3004, "HTTP/1.1 431 ");
    /* Garbage. */
    expect_status_and_close("\x01\x02 nonsense\r\n\r\n", 16, "HTTP/1.1 400 ");
    expect_status_and_close("GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 57,
                            "HTTP/1.1 400 ");
    /* The server still works. */
    struct cairn_http_result res;
    char u[128];
    snprintf(u, sizeof(u), "%s/echo", url);
    assert_int_equal(cairn_http_request_sync(&res, u, "GET", NULL, NULL, 0, 2000), 0);
    assert_int_equal(res.status, 200);
    cairn_http_result_release(&res);
}

static void test_timeouts(void **state)
{
    (void)state;
    char buf[1024];
    double t0;
    int fd = raw_connect();
    /* Half a request, then silence: 408 after the 300 ms header timeout. */
    raw_send(fd, "GET /echo HTTP/1.1\r\nHost", 24);
    raw_read_all(fd, buf, sizeof(buf));
    close(fd);
    assert_memory_equal(buf, "HTTP/1.1 408 ", 13);
    /* A connection that never sends: closed after the 500 ms idle timeout. */
    fd = raw_connect();
    t0 = uv_hrtime() / 1e9;
    assert_int_equal(raw_read_all(fd, buf, sizeof(buf)), 0);
    assert_true(uv_hrtime() / 1e9 - t0 < 2.5); /* closed by us, not by SO_RCVTIMEO */
    close(fd);
}

static void test_parse_addr(void **state)
{
    (void)state;
    struct sockaddr_storage sa;
    assert_int_equal(cairn_http_parse_addr(&sa, "127.0.0.1:8080"), 0);
    assert_int_equal(ntohs(((struct sockaddr_in *)&sa)->sin_port), 8080);
    assert_int_equal(cairn_http_parse_addr(&sa, "[::1]:80"), 0);
    assert_int_equal(sa.ss_family, AF_INET6);
    assert_int_equal(cairn_http_parse_addr(&sa, ":9"), 0);
    assert_int_equal(cairn_http_parse_addr(&sa, "localhost:1"), 0);
    const char *bad[] = { "",        "1.2.3.4",         "1.2.3.4:",   "1.2.3.4:99999", "::1:80",
                          "[::1]80", "host.example:80", "1.2.3.4:8x", "[::1:80",       ":-1" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(cairn_http_parse_addr(&sa, bad[i]), CAIRN_EINVALID);
    assert_string_equal(cairn_http_reason(404), "Not Found");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_addr),
        cmocka_unit_test(test_sync_roundtrip),
        cmocka_unit_test(test_client_keepalive_reuse),
        cmocka_unit_test(test_client_timeout_and_late_answer),
        cmocka_unit_test(test_pipelined_in_order),
        cmocka_unit_test(test_split_writes),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_timeouts),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
