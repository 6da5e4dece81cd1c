/*
 * Unit tests for lib/serve/http.c on a real loopback port: the server runs
 * its loop on a second thread while this thread talks to it with the
 * blocking helper, the pooled client and raw sockets (pipelining, split
 * writes, oversized bodies and headers, slow clients, idle timeouts,
 * answers given later from a timer, answers after the client left).
 *
 * A second group runs a server per test with small caps (limits.h): the
 * connection caps (429 per client, 503 in all), the buffered-bytes budget
 * refusing a body at its headers, a silent new connection dropped after
 * the header timeout, and the bytes given back once clients leave. Raw
 * clients there come from their own loopback addresses (127.0.0.N), which
 * is how the server tells clients apart.
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
#include "serve/limits.h"

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

static void echo_cb(int error, const struct cairn_http_resp *resp, void *arg)
{
    char *out = arg;
    snprintf(out, 256, "%.*s", error ? 5 : (int)resp->body_len, error ? "error" : resp->body);
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

/* The probe gets its own connection while the pool's only one is busy; abort fails what is
 * under way at once; a borrowed body goes out as it is. */
static void test_client_probe_abort_borrowed(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct cairn_http_client *c;
    struct cairn_http_client_opts opts;
    static const char payload[] = "borrowed body, not copied";
    struct one busy = { 0 }, probe = { 0 };
    char echo[256] = "";
    char addr[64];

    uv_loop_init(&loop);
    cairn_http_client_opts_init(&opts);
    opts.max_conns_per_upstream = 1;
    assert_int_equal(cairn_http_client_new(&c, &loop, &opts), 0);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    assert_int_equal(
        cairn_http_client_request(c, addr, "GET", "/late", NULL, NULL, 0, 5000, one_cb, &busy), 0);
    assert_int_equal(cairn_http_client_probe(c, addr, "/echo", 2000, one_cb, &probe), 0);
    while (!probe.done && uv_run(&loop, UV_RUN_ONCE))
        ;
    assert_int_equal(probe.status, 200);
    assert_int_equal(busy.done, 0); /* /late still holds the pool's connection */
    cairn_http_client_abort(c, addr, "test abort");
    assert_int_equal(busy.done, 1);
    assert_int_equal(busy.error, CAIRN_ERROR);
    assert_non_null(strstr(cairn_error_last(), "aborted: test abort"));
    cairn_http_client_abort(c, "127.0.0.1:1", "never used"); /* unknown upstream: nothing */

    assert_int_equal(cairn_http_client_request_borrowed(c, addr, "POST", "/echo", NULL, payload,
                                                        sizeof(payload) - 1, 2000, echo_cb, echo),
                     0);
    while (!echo[0] && uv_run(&loop, UV_RUN_ONCE))
        ;
    assert_string_equal(echo, "POST /echo?|-|borrowed body, not copied");
    cairn_http_client_free(c);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    usleep(500 * 1000); /* let /late answer the connection that left */
}

/*
 * An upstream that answers before it read the whole request (an early 400,
 * keep-alive) and then reads nothing: raw, on a thread. It counts the
 * connections it accepted; a second connection gets a 200 and is closed.
 */
struct early {
    int lfd;
    int accepted;
};

static void *early_thread(void *arg)
{
    struct early *e = arg;
    char buf[4096];
    int fds[2] = { -1, -1 };
    for (int i = 0; i < 2; i++) {
        size_t n = 0;
        if ((fds[i] = accept(e->lfd, NULL, NULL)) < 0)
            break;
        e->accepted++;
        buf[0] = '\0';
        while (n < sizeof(buf) - 1 && !strstr(buf, "\r\n\r\n")) {
            ssize_t r = recv(fds[i], buf + n, 1, 0); /* byte by byte: not a byte of body */
            if (r <= 0)
                break;
            n += (size_t)r;
            buf[n] = '\0';
        }
        {
            const char *answer =
                i == 0 ? "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"
                       : "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
            send(fds[i], answer, strlen(answer), MSG_NOSIGNAL);
        }
    }
    for (int i = 0; i < 2; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    return NULL;
}

/* An early answer must not pool a connection whose request is still being written (from a
 * borrowed body the caller frees once answered): the next request gets a new connection. */
static void test_client_early_answer_not_pooled(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct cairn_http_client *c;
    struct early e = { -1, 0 };
    struct one first = { 0 }, second = { 0 };
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    size_t big = 32u << 20; /* far more than the socket buffers take */
    char *body = malloc(big), addr[64];
    pthread_t th;

    assert_non_null(body);
    memset(body, 'z', big);
    e.lfd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(e.lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(e.lfd, 4), 0);
    assert_int_equal(getsockname(e.lfd, (struct sockaddr *)&sa, &sl), 0);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", ntohs(sa.sin_port));
    assert_int_equal(pthread_create(&th, NULL, early_thread, &e), 0);
    uv_loop_init(&loop);
    assert_int_equal(cairn_http_client_new(&c, &loop, NULL), 0);
    assert_int_equal(cairn_http_client_request_borrowed(c, addr, "POST", "/", NULL, body, big,
                                                        10000, one_cb, &first),
                     0);
    while (!first.done && uv_run(&loop, UV_RUN_ONCE))
        ;
    assert_int_equal(first.status, 400);
    memset(body, 0, big); /* answered: the caller may reuse or free its body */
    free(body);
    assert_int_equal(
        cairn_http_client_request(c, addr, "GET", "/", NULL, NULL, 0, 10000, one_cb, &second), 0);
    while (!second.done && uv_run(&loop, UV_RUN_ONCE))
        ;
    assert_int_equal(second.status, 200);
    assert_int_equal(e.accepted, 2);
    cairn_http_client_free(c);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    pthread_join(th, NULL);
    close(e.lfd);
}

/* A connect that hangs (a listener whose accept queue is full drops SYNs) fails after
 * connect_timeout_ms, long before the request's own timeout. */
static void test_client_connect_timeout(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct cairn_http_client *c;
    struct cairn_http_client_opts opts;
    struct one o = { 0 };
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    int lfd = socket(AF_INET, SOCK_STREAM, 0), fill[3];
    char addr[64];
    uint64_t t0;

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(lfd, 0), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &sl), 0);
    for (int i = 0; i < 3; i++) {
        fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(fill[i], (struct sockaddr *)&sa, sizeof(sa));
    }
    usleep(50 * 1000);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", ntohs(sa.sin_port));
    uv_loop_init(&loop);
    cairn_http_client_opts_init(&opts);
    opts.connect_timeout_ms = 200;
    assert_int_equal(cairn_http_client_new(&c, &loop, &opts), 0);
    t0 = uv_hrtime();
    assert_int_equal(
        cairn_http_client_request(c, addr, "GET", "/", NULL, NULL, 0, 20000, one_cb, &o), 0);
    while (!o.done && uv_run(&loop, UV_RUN_ONCE))
        ;
    assert_int_equal(o.error, CAIRN_ERROR);
    assert_non_null(strstr(cairn_error_last(), "timed out"));
    assert_true((uv_hrtime() - t0) / 1000000 < 10000); /* not the request's 20 s */
    cairn_http_client_free(c);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    for (int i = 0; i < 3; i++)
        close(fill[i]);
    close(lfd);
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

/* ---- a server with small caps, one per test ---- */

#define CAP_CONNS         10
#define CAP_CLIENT_CONNS  4
#define CAP_BUFFERED      150000
#define CAP_CLIENT_BUFFER 100000
#define FREE_ROOM         16384 /* body room per connection never charged (http.c BODY_FREE) */

static struct cairn_http_req *held[8];
static int nheld;

/*
 * /hold keeps the request (and its charged body) unanswered; /release
 * answers every held one, then itself; /stats answers "CONNS BYTES" of the
 * server's accounting; anything else answers the body's length.
 */
static void cap_handler(struct cairn_http_req *req, void *ud)
{
    char out[64];
    int n;
    (void)ud;
    if (!strcmp(req->path, "/hold") && nheld < 8) {
        held[nheld++] = req;
        return;
    }
    if (!strcmp(req->path, "/release")) {
        while (nheld > 0)
            cairn_http_respond_simple(held[--nheld], 200, "text/plain", "released", 8);
    }
    if (!strcmp(req->path, "/stats")) {
        struct cairn_limits_stats st;
        cairn_limits_stats(cairn_http_server_limits(srv), &st);
        n = snprintf(out, sizeof(out), "%zu %zu", st.conns, st.bytes);
    } else {
        n = snprintf(out, sizeof(out), "%zu", req->body_len);
    }
    cairn_http_respond_simple(req, 200, "text/plain", out, (size_t)n);
}

static int setup_caps(void **state)
{
    struct cairn_http_server_opts o;
    (void)state;
    cairn_http_server_opts_init(&o);
    o.max_body = 200000;
    o.max_conns = CAP_CONNS;
    o.max_client_conns = CAP_CLIENT_CONNS;
    o.max_buffered = CAP_BUFFERED;
    o.max_client_buffered = CAP_CLIENT_BUFFER;
    o.header_timeout_ms = 4000;
    o.idle_timeout_ms = 60000;
    nheld = 0;
    uv_loop_init(&srv_loop);
    uv_async_init(&srv_loop, &stop_async, on_stop);
    if (cairn_http_server_new(&srv, &srv_loop, "127.0.0.1:0", &o, cap_handler, NULL) < 0)
        return -1;
    port = cairn_http_server_port(srv);
    return pthread_create(&srv_thread, NULL, serve_thread, NULL);
}

/* A raw connection from 127.0.0.SRC. */
static int raw_connect_from(int src)
{
    struct sockaddr_in sa;
    struct timeval tv = { 3, 0 };
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(0x7f000000u | (uint32_t)src);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

/* Read what arrives until the first response's end of headers (or close, or 3 s). */
static void raw_read_head(int fd, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    while (n < cap - 1 && !strstr(out, "\r\n\r\n")) {
        ssize_t r = recv(fd, out + n, cap - 1 - n, 0);
        if (r <= 0)
            break;
        n += (size_t)r;
        out[n] = '\0';
    }
}

/* GET PATH from 127.0.0.9 on a connection of its own; the body in out. */
static void cap_get(const char *path, char *out, size_t cap)
{
    char req[128], buf[1024];
    int fd = raw_connect_from(9), n;
    char *body;
    n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nConnection: close\r\n\r\n", path);
    raw_send(fd, req, (size_t)n);
    raw_read_all(fd, buf, sizeof(buf));
    close(fd);
    body = strstr(buf, "\r\n\r\n");
    snprintf(out, cap, "%s", body ? body + 4 : "");
}

/* The server's "CONNS BYTES" until they are `conns`, `bytes` (or 3 s). */
static void wait_stats(size_t conns, size_t bytes)
{
    char got[64], want[64];
    for (int i = 0; i < 300; i++) {
        cap_get("/stats", got, sizeof(got));
        /* The /stats connection itself is open while it answers. */
        snprintf(want, sizeof(want), "%zu %zu", conns + 1, bytes);
        if (!strcmp(got, want))
            return;
        usleep(10 * 1000);
    }
    assert_string_equal(got, want);
}

static void post_head(int fd, const char *path, size_t len)
{
    char head[256];
    int n =
        snprintf(head, sizeof(head), "POST %s HTTP/1.1\r\nContent-Length: %zu\r\n\r\n", path, len);
    raw_send(fd, head, (size_t)n);
}

static void post_body(int fd, size_t len)
{
    static char blob[200000];
    memset(blob, 'b', len);
    raw_send(fd, blob, len);
}

static void test_caps_connections(void **state)
{
    (void)state;
    char buf[1024];
    int fds[CAP_CONNS + 2], n = 0, fd;

    /* A client's fifth connection gets 429 at once, without a request. */
    for (int i = 0; i < CAP_CLIENT_CONNS; i++)
        fds[n++] = raw_connect_from(2);
    fd = raw_connect_from(2);
    raw_read_head(fd, buf, sizeof(buf));
    close(fd);
    assert_memory_equal(buf, "HTTP/1.1 429 ", 13);
    assert_non_null(strstr(buf, "Retry-After: 1\r\n"));
    /* Other clients up to ten connections in all (/stats's own is the tenth), then 503. */
    while (n < CAP_CONNS - 1) {
        fds[n] = raw_connect_from(3 + n / CAP_CLIENT_CONNS);
        n++;
    }
    wait_stats(CAP_CONNS - 1, 0);
    fds[n++] = raw_connect_from(6);
    fd = raw_connect_from(7);
    raw_read_head(fd, buf, sizeof(buf));
    close(fd);
    assert_memory_equal(buf, "HTTP/1.1 503 ", 13);
    assert_non_null(strstr(buf, "Retry-After: 1\r\n"));
    for (int i = 0; i < n; i++)
        close(fds[i]);
    /* Closed connections make room again. */
    wait_stats(0, 0);
}

static void test_caps_buffered_bytes(void **state)
{
    (void)state;
    char buf[1024];
    const size_t small = 60000, large = 90000;
    const size_t c_small = small + 1 - FREE_ROOM, c_large = large + 1 - FREE_ROOM;
    int a1, a2, b1, c1, c2;

    /* Client .2 holds a 60000-byte body: charged beyond the free room. */
    a1 = raw_connect_from(2);
    post_head(a1, "/hold", small);
    post_body(a1, small);
    wait_stats(1, c_small);
    /* Its second body would pass its 100000-byte cap: 429 at the headers, before the body. */
    a2 = raw_connect_from(2);
    post_head(a2, "/hold", large);
    raw_read_head(a2, buf, sizeof(buf));
    close(a2);
    assert_memory_equal(buf, "HTTP/1.1 429 ", 13);
    assert_non_null(strstr(buf, "Retry-After: 1\r\n"));
    /* Client .3 fits under everything. */
    b1 = raw_connect_from(3);
    post_head(b1, "/hold", large);
    post_body(b1, large);
    wait_stats(2, c_small + c_large);
    /* Client .4 is under its own cap but the server's 150000 are spent: 503. */
    c1 = raw_connect_from(4);
    post_head(c1, "/hold", small);
    raw_read_head(c1, buf, sizeof(buf));
    close(c1);
    assert_memory_equal(buf, "HTTP/1.1 503 ", 13);
    assert_non_null(strstr(buf, "Retry-After: 1\r\n"));
    /* Oversize stays 413. */
    c1 = raw_connect_from(4);
    post_head(c1, "/x", 300000);
    raw_read_head(c1, buf, sizeof(buf));
    close(c1);
    assert_memory_equal(buf, "HTTP/1.1 413 ", 13);
    /* Answered and gone: everything given back, and .4 fits now. */
    cap_get("/release", buf, sizeof(buf));
    raw_read_head(a1, buf, sizeof(buf));
    assert_memory_equal(buf, "HTTP/1.1 200 ", 13);
    raw_read_head(b1, buf, sizeof(buf));
    assert_memory_equal(buf, "HTTP/1.1 200 ", 13);
    close(a1);
    close(b1);
    wait_stats(0, 0);
    c2 = raw_connect_from(4);
    post_head(c2, "/x", small);
    post_body(c2, small);
    raw_read_all(c2, buf, sizeof(buf));
    close(c2);
    assert_memory_equal(buf, "HTTP/1.1 200 ", 13);
    assert_non_null(strstr(buf, "\r\n\r\n60000"));
}

/* A chunked body is charged as it grows, and refused mid-way once over its client's cap. */
static void test_caps_chunked(void **state)
{
    (void)state;
    char buf[1024], chunk[16];
    int fd = raw_connect_from(2), n;
    raw_send(fd, "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 48);
    for (int i = 0; i < 12; i++) {
        n = snprintf(chunk, sizeof(chunk), "%x\r\n", 10000);
        if (send(fd, chunk, (size_t)n, MSG_NOSIGNAL) != n)
            break;
        post_body(fd, 10000);
        if (send(fd, "\r\n", 2, MSG_NOSIGNAL) != 2)
            break;
    }
    raw_read_head(fd, buf, sizeof(buf));
    close(fd);
    /* 120000 bytes double the buffer to 131072: past the 100000 per client. */
    assert_memory_equal(buf, "HTTP/1.1 429 ", 13);
    wait_stats(0, 0);
}

/* A connection that never sends is dropped after the header timeout, not the idle one. */
static void test_caps_silent_connection(void **state)
{
    (void)state;
    char buf[64];
    int fd = raw_connect_from(2);
    struct timeval tv = { 10, 0 };
    uint64_t t0 = uv_hrtime();
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    assert_int_equal(recv(fd, buf, sizeof(buf), 0), 0); /* closed by the server */
    assert_true((uv_hrtime() - t0) / 1000000 < 9000);   /* long before the 60 s idle */
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_addr),
        cmocka_unit_test(test_sync_roundtrip),
        cmocka_unit_test(test_client_keepalive_reuse),
        cmocka_unit_test(test_client_timeout_and_late_answer),
        cmocka_unit_test(test_client_probe_abort_borrowed),
        cmocka_unit_test(test_client_connect_timeout),
        cmocka_unit_test(test_client_early_answer_not_pooled),
        cmocka_unit_test(test_pipelined_in_order),
        cmocka_unit_test(test_split_writes),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_timeouts),
    };
    const struct CMUnitTest caps[] = {
        cmocka_unit_test_setup_teardown(test_caps_connections, setup_caps, teardown),
        cmocka_unit_test_setup_teardown(test_caps_buffered_bytes, setup_caps, teardown),
        cmocka_unit_test_setup_teardown(test_caps_chunked, setup_caps, teardown),
        cmocka_unit_test_setup_teardown(test_caps_silent_connection, setup_caps, teardown),
    };
    return cmocka_run_group_tests(tests, setup, teardown) |
           cmocka_run_group_tests(caps, NULL, NULL);
}
