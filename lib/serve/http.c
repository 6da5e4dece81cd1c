/*
 * HTTP/1.1 server and pooled client on libuv + llhttp; see http.h.
 *
 * Both roles share `struct msg`: the llhttp parser plus a header area that
 * keeps the URL and every header name and value NUL-terminated in one
 * buffer (offsets while parsing, since llhttp may split a token across
 * reads and the buffer may move; pointers once the headers are complete).
 * The buffers keep their capacity across keep-alive requests, so a
 * connection that has served one request serves the next without malloc.
 *
 * Server connection life: IDLE -> READING (first byte; header timer) ->
 * HANDLING (handler owns the request; no timer, input is stashed) ->
 * WRITING (only if the socket would block) -> IDLE, or LINGER when the
 * connection is to close: the write side is shut down and input drained
 * for a moment so the peer sees our answer instead of a reset. A
 * connection is freed when both its handles closed and no request is out
 * (`refs`), which is what lets a handler answer after the client left.
 */
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <llhttp.h>
#include <uv.h>

#include "cairn/common.h"
#include "serve/http.h"
#include "serve/limits.h"

#define container_of(p, type, member) ((type *)(void *)((char *)(p)-offsetof(type, member)))
#define LINGER_MS                     2000
#define READ_BUF                      65536
#define CREQ_POOL                     256          /* finished client requests kept for reuse */
#define BODY_KEEP                     (256 * 1024) /* larger body buffers are freed after use */
#define BODY_FREE                     16384        /* body capacity per connection not charged */

/* ---- appending without printf: a proxied request is cheaper than one vsnprintf ---- */

static char *put_mem(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}
#define PUT_LIT(p, lit) put_mem((p), (lit), sizeof(lit) - 1)

/* Decimal digits of v; at most 20. */
static char *put_u64(char *p, uint64_t v)
{
    char t[20];
    size_t n = 0;
    do {
        t[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *p++ = t[--n];
    return p;
}

/* ---- shared parsing ---- */

struct msg {
    llhttp_t parser;
    struct cairn_buf head; /* url\0name\0value\0... */
    size_t hbytes;         /* raw URL + header bytes, what the limit counts */
    size_t url_len;
    int in_field, in_value;
    size_t nh;
    size_t name_off[CAIRN_HTTP_MAX_HEADERS], value_off[CAIRN_HTTP_MAX_HEADERS];
    struct cairn_http_header hdrs[CAIRN_HTTP_MAX_HEADERS];
    struct cairn_buf body;
    size_t max_headers, max_url, max_header_bytes, max_body;
    int error_status; /* 413, 414, 431, 429, 503 when a limit stopped the parse */
    int keep_alive;
    int complete;
    /* Server side: make the body hold `need` bytes (NUL included) if the budget allows;
     * 0 or the status to answer. NULL: the body grows as cairn_buf does. */
    int (*body_room)(struct msg *m, size_t need);
};

static void msg_init(struct msg *m, size_t max_headers, size_t max_url, size_t max_header_bytes,
                     size_t max_body)
{
    cairn_buf_init(&m->head, 0);
    cairn_buf_init(&m->body, max_body ? max_body : 1);
    m->max_headers = max_headers > CAIRN_HTTP_MAX_HEADERS ? CAIRN_HTTP_MAX_HEADERS : max_headers;
    m->max_url = max_url;
    m->max_header_bytes = max_header_bytes;
    m->max_body = max_body;
}

static void msg_reset(struct msg *m)
{
    /* A large body's buffer is not kept: one big request must not pin memory. */
    if (m->body.cap > BODY_KEEP)
        cairn_buf_release(&m->body);
    cairn_buf_clear(&m->body);
    cairn_buf_clear(&m->head);
    m->hbytes = m->url_len = m->nh = 0;
    m->in_field = m->in_value = 0;
    m->error_status = 0;
    m->keep_alive = 0;
    m->complete = 0;
}

static void msg_release(struct msg *m)
{
    cairn_buf_release(&m->head);
    cairn_buf_release(&m->body);
}

static struct msg *msg_of(llhttp_t *p)
{
    return container_of(p, struct msg, parser);
}

/*
 * cairn_buf_put() when the bytes fit, without its calls: the parser appends
 * some forty tokens per proxied request. Keeps the buffer NUL-terminated.
 */
static inline int buf_append(struct cairn_buf *b, const char *at, size_t len)
{
    if (b->cap - b->len <= len)
        return cairn_buf_put(b, at, len);
    memcpy(b->ptr + b->len, at, len);
    b->len += len;
    b->ptr[b->len] = '\0';
    return 0;
}

static int head_put(struct msg *m, const char *at, size_t len, int status)
{
    if (len > m->max_header_bytes - m->hbytes || buf_append(&m->head, at, len) < 0) {
        m->error_status = status;
        return HPE_USER;
    }
    m->hbytes += len;
    return 0;
}

static int head_nul(struct msg *m)
{
    if (buf_append(&m->head, "", 1) < 0) {
        m->error_status = 431;
        return HPE_USER;
    }
    return 0;
}

static int on_message_begin(llhttp_t *p)
{
    msg_reset(msg_of(p));
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    struct msg *m = msg_of(p);
    if (len > m->max_url - m->url_len) {
        m->error_status = 414;
        return HPE_USER;
    }
    m->url_len += len;
    return head_put(m, at, len, 414);
}

static int on_url_complete(llhttp_t *p)
{
    return head_nul(msg_of(p));
}

static int on_status_complete(llhttp_t *p)
{
    /* Responses have no URL: keep the layout (an empty first string). */
    return head_nul(msg_of(p));
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    struct msg *m = msg_of(p);
    if (!m->in_field) {
        if (m->nh >= m->max_headers) {
            m->error_status = 431;
            return HPE_USER;
        }
        m->name_off[m->nh] = m->head.len;
        m->value_off[m->nh] = SIZE_MAX;
        m->in_field = 1;
    }
    return head_put(m, at, len, 431);
}

static int on_header_field_complete(llhttp_t *p)
{
    struct msg *m = msg_of(p);
    if (!m->in_field) { /* an empty name cannot parse, but stay consistent */
        m->error_status = 400;
        return HPE_USER;
    }
    m->in_field = 0;
    return head_nul(m);
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    struct msg *m = msg_of(p);
    if (!m->in_value) {
        m->value_off[m->nh] = m->head.len;
        m->in_value = 1;
    }
    return head_put(m, at, len, 431);
}

static int on_header_value_complete(llhttp_t *p)
{
    struct msg *m = msg_of(p);
    if (!m->in_value)
        m->value_off[m->nh] = m->head.len; /* an empty value gets no data callback */
    m->in_value = 0;
    m->nh++;
    return head_nul(m);
}

/* Turn offsets into pointers; the header area does not move after this. */
static void msg_headers_done(struct msg *m)
{
    if (!m->head.ptr && cairn_buf_putc(&m->head, '\0') < 0)
        m->nh = 0;
    for (size_t i = 0; i < m->nh; i++) {
        m->hdrs[i].name = m->head.ptr + m->name_off[i];
        m->hdrs[i].value = m->head.ptr + m->value_off[i];
    }
    m->keep_alive = llhttp_should_keep_alive(&m->parser);
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    struct msg *m = msg_of(p);
    int status;
    if (m->body_room && m->body.cap - m->body.len <= len) {
        if (len > m->max_body - m->body.len) {
            m->error_status = 413;
            return HPE_USER;
        }
        if ((status = m->body_room(m, m->body.len + len + 1))) {
            m->error_status = status;
            return HPE_USER;
        }
    }
    if (buf_append(&m->body, at, len) < 0) {
        m->error_status = 413;
        return HPE_USER;
    }
    return 0;
}

const char *cairn_http_header_find(const struct cairn_http_header *h, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcasecmp(h[i].name, name))
            return h[i].value;
    return NULL;
}

const char *cairn_http_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Unknown";
    }
}

int cairn_http_parse_addr(struct sockaddr_storage *out, const char *addr)
{
    char host[64];
    const char *colon, *hs = addr, *he;
    char *end;
    unsigned long port;
    int r;

    memset(out, 0, sizeof(*out));
    if (addr[0] == '[') {
        hs = addr + 1;
        if (!(he = strchr(hs, ']')) || he[1] != ':')
            goto bad;
        colon = he + 1;
    } else {
        if (!(colon = strrchr(addr, ':')) || memchr(addr, ':', (size_t)(colon - addr)))
            goto bad;
        he = colon;
    }
    if ((size_t)(he - hs) >= sizeof(host))
        goto bad;
    memcpy(host, hs, (size_t)(he - hs));
    host[he - hs] = '\0';
    errno = 0;
    port = strtoul(colon + 1, &end, 10);
    if (!isdigit((unsigned char)colon[1]) || *end || errno || port > 65535)
        goto bad;
    if (addr[0] == '[')
        r = uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)out);
    else if (!host[0])
        r = uv_ip4_addr("0.0.0.0", (int)port, (struct sockaddr_in *)out);
    else if (!strcmp(host, "localhost"))
        r = uv_ip4_addr("127.0.0.1", (int)port, (struct sockaddr_in *)out);
    else
        r = uv_ip4_addr(host, (int)port, (struct sockaddr_in *)out);
    if (r == 0)
        return 0;
bad:
    return cairn_error_set(CAIRN_EINVALID,
                           "bad address '%s' (expected HOST:PORT, [V6]:PORT or "
                           ":PORT with a numeric host)",
                           addr);
}

/* ---- server ---- */

enum { ST_IDLE, ST_READING, ST_HANDLING, ST_WRITING, ST_LINGER };

struct conn {
    struct msg m;
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wreq;
    uv_shutdown_t sreq;
    struct cairn_http_server *srv;
    struct conn *prev, *next;
    struct cairn_http_req req;
    int state;
    int refs;        /* open handles + the request out with the handler */
    int closing;     /* uv_close called */
    int close_after; /* close once the current response is written */
    int in_feed;     /* inside llhttp_execute: do not recurse into the feed */
    int reading;
    int peer_eof;
    int is_head;
    uint64_t deadline; /* loop time the current timeout expires; 0 none */
    uint64_t armed;    /* loop time the timer is set to fire; 0 not set */
    cairn_http_cancel_fn cancel;
    void *cancel_arg;
    struct cairn_buf out; /* response head, plus any body bytes we copied */
    void (*body_free)(void *);
    void *body_owned;
    struct cairn_buf pending, work; /* input received while a request was out */
    /* Accounting (limits.h): the client's entry (NULL: refused, not counted) and the
     * bytes taken for it: body capacity beyond BODY_FREE, pending, work, copied bodies. */
    struct cairn_limits_client *client;
    size_t charged, out_charged;
};

struct cairn_http_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    struct cairn_http_server_opts opts;
    cairn_http_handler_fn handler;
    void *userdata;
    struct conn *conns;
    size_t nconns;
    struct cairn_limits *limits;
    int listener_open;
    int shutting_down;
    int port;
    char rbuf[READ_BUF];
};

static const llhttp_settings_t *server_settings(void);
static void conn_feed(struct conn *c, const char *data, size_t len);
static void conn_close(struct conn *c);

void cairn_http_server_opts_init(struct cairn_http_server_opts *o)
{
    o->max_header_bytes = 16 * 1024;
    o->max_headers = 64;
    o->max_url = 8 * 1024;
    o->max_body = 1024 * 1024;
    o->idle_timeout_ms = 60000;
    o->header_timeout_ms = 10000;
    o->body_timeout_ms = 10000;
    o->backlog = 511;
    o->max_conns = 1024;
    o->max_buffered = 256u << 20;
    o->max_client_conns = 256;
    o->max_client_buffered = 64u << 20;
}

static void server_maybe_free(struct cairn_http_server *s)
{
    if (s->shutting_down && !s->listener_open && s->nconns == 0) {
        cairn_limits_free(s->limits);
        free(s);
    }
}

/* ---- the budget: every buffer a client can grow is charged before it grows ---- */

static size_t body_charge(size_t cap)
{
    return cap > BODY_FREE ? cap - BODY_FREE : 0;
}

static int limit_status(enum cairn_limit l)
{
    return l == CAIRN_LIMIT_CLIENT ? 429 : 503;
}

/* Take `n` bytes for connection `c`; 0 or the status that refuses them (429, 503). */
static int conn_charge(struct conn *c, size_t n)
{
    enum cairn_limit l;
    if (!n)
        return 0;
    if ((l = cairn_limits_take(c->srv->limits, c->client, n)) != CAIRN_LIMIT_OK)
        return limit_status(l);
    c->charged += n;
    return 0;
}

static void conn_uncharge(struct conn *c, size_t n)
{
    cairn_limits_give(c->srv->limits, c->client, n);
    c->charged -= n;
}

/* Resize `b` to exactly `cap` bytes (cap > b->len), charging the growth first. */
static int conn_buf_resize(struct conn *c, struct cairn_buf *b, size_t cap, int is_body)
{
    size_t before = is_body ? body_charge(b->cap) : b->cap;
    size_t after = is_body ? body_charge(cap) : cap;
    char *p;
    int status;
    if (after > before && (status = conn_charge(c, after - before)))
        return status;
    if (!(p = realloc(b->ptr, cap))) {
        if (after > before)
            conn_uncharge(c, after - before);
        return 503;
    }
    if (before > after)
        conn_uncharge(c, before - after);
    b->ptr = p;
    b->cap = cap;
    return 0;
}

/* Free `b` and give back what it was charged. */
static void conn_buf_drop(struct conn *c, struct cairn_buf *b, int is_body)
{
    conn_uncharge(c, is_body ? body_charge(b->cap) : b->cap);
    cairn_buf_release(b);
}

/*
 * msg.body_room of server connections: a body of known length gets exactly
 * its size at once (one allocation, no doubling slack); a chunked one
 * doubles, each growth charged before it happens.
 */
static int conn_body_room(struct msg *m, size_t need)
{
    struct conn *c = container_of(m, struct conn, m);
    size_t cap = m->body.cap ? m->body.cap : 64;
    if (need <= m->body.cap)
        return 0;
    if (!(m->parser.flags & F_CONTENT_LENGTH))
        while (cap < need)
            cap = cap > m->max_body / 2 ? m->max_body + 1 : cap * 2;
    if (cap < need)
        cap = need;
    return conn_buf_resize(c, &m->body, cap, 1);
}

static void timer_set(struct conn *c, uint64_t ms);
static void conn_reject(struct conn *c, int status);

static void conn_unref(struct conn *c)
{
    struct cairn_http_server *s = c->srv;
    if (--c->refs > 0)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    if (c->charged)
        cairn_limits_give(s->limits, c->client, c->charged);
    cairn_limits_close(s->limits, c->client);
    msg_release(&c->m);
    cairn_buf_release(&c->out);
    cairn_buf_release(&c->pending);
    cairn_buf_release(&c->work);
    free(c);
    server_maybe_free(s);
}

static void on_conn_handle_closed(uv_handle_t *h)
{
    conn_unref(h->data);
}

static void conn_close(struct conn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    if (c->state == ST_HANDLING && c->cancel)
        c->cancel(&c->req, c->cancel_arg);
    c->cancel = NULL;
    uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
}

static void on_timer(uv_timer_t *t)
{
    struct conn *c = t->data;
    uint64_t now = uv_now(c->srv->loop);
    c->armed = 0;
    if (!c->deadline)
        return; /* the timeout was lifted after the timer was set */
    if (now < c->deadline) {
        timer_set(c, c->deadline - now); /* moved later since: wait on */
        return;
    }
    c->deadline = 0;
    if (c->state == ST_READING) {
        /* Too slow to send its request (slowloris): say so, then close. */
        conn_reject(c, 408);
        return;
    }
    conn_close(c);
}

/*
 * Set the connection's one timeout to `ms` from now (0: none). Lazily: a
 * request moves it several times (header, body, none, idle), so the timer
 * is re-armed only when the new deadline is earlier than the one it is set
 * for; when it fires early, on_timer() sets it again for the real deadline.
 */
static void timer_set(struct conn *c, uint64_t ms)
{
    if (c->closing)
        return;
    if (!ms) {
        c->deadline = 0;
        return;
    }
    c->deadline = uv_now(c->srv->loop) + ms;
    if (c->armed && c->armed <= c->deadline)
        return;
    c->armed = c->deadline;
    uv_timer_start(&c->timer, on_timer, ms, 0);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct conn *c = h->data;
    (void)suggested;
    /* One buffer per server: read_cb always consumes or copies what it got. */
    buf->base = c->srv->rbuf;
    buf->len = sizeof(c->srv->rbuf);
}

static void on_shutdown(uv_shutdown_t *r, int status)
{
    (void)r;
    (void)status;
}

/* The last response is out: half-close and drain so the peer reads it, then close. */
static void conn_linger(struct conn *c)
{
    c->state = ST_LINGER;
    if (c->peer_eof || uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, on_shutdown) < 0) {
        conn_close(c);
        return;
    }
    timer_set(c, LINGER_MS);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

/* Called when a response has been written completely (or abandoned). */
static void response_done(struct conn *c)
{
    c->cancel = NULL;
    if (c->body_free) {
        c->body_free(c->body_owned);
        c->body_free = NULL;
    }
    /* Nothing large stays with a connection between requests (an idle keep-alive
     * connection must not pin a big body until its next request). */
    if (c->out_charged) {
        conn_uncharge(c, c->out_charged);
        c->out_charged = 0;
        cairn_buf_release(&c->out);
    }
    if (c->m.body.cap > BODY_KEEP)
        conn_buf_drop(c, &c->m.body, 1);
    if (c->closing) {
        conn_unref(c);
        return;
    }
    c->refs--; /* the handles still hold references: c stays valid */
    if (c->close_after || c->srv->shutting_down) {
        if (!c->reading && uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
            c->reading = 1;
        conn_linger(c);
        return;
    }
    c->state = ST_IDLE;
    timer_set(c, c->srv->opts.idle_timeout_ms);
    if (!c->reading && uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
        c->reading = 1;
    if (c->in_feed)
        return; /* the feed loop that called the handler carries on */
    if (c->pending.len) {
        struct cairn_buf t = c->work;
        c->work = c->pending;
        c->pending = t;
        cairn_buf_clear(&c->pending);
        conn_feed(c, c->work.ptr, c->work.len);
        cairn_buf_clear(&c->work);
    }
    /* The client sent its last bytes: once everything it sent is answered, close. */
    if (!c->closing && c->peer_eof && (c->state == ST_IDLE || c->state == ST_READING))
        conn_close(c);
}

static void on_write(uv_write_t *w, int status)
{
    struct conn *c = w->data;
    if (status < 0)
        conn_close(c);
    response_done(c);
}

static void release_owned_body(const struct cairn_http_response *resp)
{
    if (resp->body_free)
        resp->body_free((void *)resp->body);
}

int cairn_http_respond(struct cairn_http_req *req, const struct cairn_http_response *resp)
{
    struct conn *c = container_of(req, struct conn, req);
    size_t body_len = c->is_head ? 0 : resp->body_len;
    uv_buf_t iov[2];
    size_t total, done, rlen, ctlen, hlen, connlen;
    const char *reason, *conn_hdr;
    char *p;
    int n, error = 0;

    assert(c->state == ST_HANDLING);
    if (c->closing) {
        release_owned_body(resp);
        error = cairn_error_set(CAIRN_ERROR, "client connection closed before the response");
        response_done(c);
        return error;
    }
    if (!req->keep_alive || c->srv->shutting_down)
        c->close_after = 1;
    /* The head in one pass: its size is known before anything is copied. */
    reason = cairn_http_reason(resp->status);
    rlen = strlen(reason);
    ctlen = resp->content_type ? strlen(resp->content_type) : 0;
    hlen = resp->headers ? strlen(resp->headers) : 0;
    conn_hdr = c->close_after         ? "Connection: close\r\n"
               : req->http_minor == 0 ? "Connection: keep-alive\r\n"
                                      : "";
    connlen = strlen(conn_hdr);
    cairn_buf_clear(&c->out);
    if (resp->status < 100 || resp->status > 999 ||
        cairn_buf_grow(&c->out, 9 + 4 + rlen + 2 + (ctlen ? 14 + ctlen + 2 : 0) + hlen + 16 + 20 +
                                    2 + connlen + 2) < 0) {
        release_owned_body(resp);
        error = resp->status < 100 || resp->status > 999
                    ? cairn_error_set(CAIRN_EINVALID, "bad status %d", resp->status)
                    : CAIRN_ENOMEM;
        conn_close(c);
        response_done(c);
        return error;
    }
    p = PUT_LIT(c->out.ptr, "HTTP/1.1 ");
    p = put_u64(p, (uint64_t)resp->status);
    *p++ = ' ';
    p = put_mem(p, reason, rlen);
    p = PUT_LIT(p, "\r\n");
    if (ctlen) {
        p = PUT_LIT(p, "Content-Type: ");
        p = put_mem(p, resp->content_type, ctlen);
        p = PUT_LIT(p, "\r\n");
    }
    if (hlen)
        p = put_mem(p, resp->headers, hlen);
    p = PUT_LIT(p, "Content-Length: ");
    p = put_u64(p, resp->body_len);
    p = PUT_LIT(p, "\r\n");
    p = put_mem(p, conn_hdr, connlen);
    p = PUT_LIT(p, "\r\n");
    c->out.len = (size_t)(p - c->out.ptr);
    c->out.ptr[c->out.len] = '\0';
    iov[0] = uv_buf_init(c->out.ptr, (unsigned)c->out.len);
    iov[1] = uv_buf_init((char *)resp->body, (unsigned)body_len);
    total = c->out.len + body_len;
    n = uv_try_write((uv_stream_t *)&c->tcp, iov, body_len ? 2 : 1);
    if (n < 0 && n != UV_EAGAIN) {
        release_owned_body(resp);
        error = cairn_error_set(CAIRN_ERROR, "cannot write response: %s", uv_strerror(n));
        conn_close(c);
        response_done(c);
        return error;
    }
    done = n > 0 ? (size_t)n : 0;
    if (done == total) {
        release_owned_body(resp);
        response_done(c);
        return 0;
    }
    /* The socket would block: queue the rest, copying the body only if we must. */
    if (resp->body_free && done < c->out.len) {
        iov[0] = uv_buf_init(c->out.ptr + done, (unsigned)(c->out.len - done));
        iov[1] = uv_buf_init((char *)resp->body, (unsigned)body_len);
    } else if (resp->body_free) {
        iov[0] = uv_buf_init((char *)resp->body + (done - c->out.len), (unsigned)(total - done));
        iov[1] = uv_buf_init(NULL, 0);
    } else {
        /* A client that does not read makes us hold its answer: charged, or it is dropped. */
        char *grown = NULL;
        if (conn_charge(c, body_len) ||
            (c->out_charged = body_len,
             !(grown = realloc(c->out.ptr, c->out.len + body_len + 1)))) {
            error =
                cairn_error_set(CAIRN_ENOMEM, "no room to queue a response of %zu bytes", body_len);
            conn_close(c);
            response_done(c);
            return error;
        }
        c->out.ptr = grown;
        c->out.cap = c->out.len + body_len + 1;
        memcpy(c->out.ptr + c->out.len, resp->body, body_len);
        c->out.len += body_len;
        c->out.ptr[c->out.len] = '\0';
        iov[0] = uv_buf_init(c->out.ptr + done, (unsigned)(total - done));
        iov[1] = uv_buf_init(NULL, 0);
    }
    c->body_free = resp->body_free;
    c->body_owned = (void *)resp->body;
    c->state = ST_WRITING;
    c->wreq.data = c;
    if ((n = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, iov, iov[1].len ? 2 : 1, on_write)) < 0) {
        error = cairn_error_set(CAIRN_ERROR, "cannot write response: %s", uv_strerror(n));
        c->state = ST_HANDLING;
        conn_close(c);
        response_done(c);
        return error;
    }
    timer_set(c, c->srv->opts.body_timeout_ms);
    return 0;
}

int cairn_http_respond_simple(struct cairn_http_req *req, int status, const char *content_type,
                              const void *body, size_t len)
{
    struct cairn_http_response r = { status, content_type, NULL, body, len, NULL };
    return cairn_http_respond(req, &r);
}

void cairn_http_req_on_cancel(struct cairn_http_req *req, cairn_http_cancel_fn fn, void *arg)
{
    struct conn *c = container_of(req, struct conn, req);
    c->cancel = fn;
    c->cancel_arg = arg;
}

static int srv_on_message_begin(llhttp_t *p)
{
    struct conn *c = container_of(msg_of(p), struct conn, m);
    if (c->m.body.cap > BODY_KEEP)
        conn_buf_drop(c, &c->m.body, 1);
    on_message_begin(p);
    c->state = ST_READING;
    timer_set(c, c->srv->opts.header_timeout_ms);
    return 0;
}

static int srv_on_headers_complete(llhttp_t *p)
{
    struct msg *m = msg_of(p);
    struct conn *c = container_of(m, struct conn, m);
    const char *expect;

    msg_headers_done(m);
    if (p->upgrade) {
        m->error_status = 400; /* no protocol switching here (CONNECT, WebSocket, h2c) */
        return -1;
    }
    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > m->max_body) {
        m->error_status = 413;
        return -1;
    }
    /* Room for a body of known length now, before the client sends it: a refusal
     * (503 when the server's budget is spent, 429 when this client's is) costs nothing. */
    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > 0 &&
        (m->error_status = conn_body_room(m, (size_t)p->content_length + 1)))
        return -1;
    expect = cairn_http_header_find(m->hdrs, m->nh, "expect");
    if (expect && !strcasecmp(expect, "100-continue")) {
        /* curl waits for this before sending a body over 1 KiB. */
        uv_buf_t b = uv_buf_init("HTTP/1.1 100 Continue\r\n\r\n", 25);
        uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    }
    timer_set(c, c->srv->opts.body_timeout_ms);
    return 0;
}

static int srv_on_message_complete(llhttp_t *p)
{
    struct msg *m = msg_of(p);
    struct conn *c = container_of(m, struct conn, m);
    struct cairn_http_req *r = &c->req;
    char *q;

    m->complete = 1;
    timer_set(c, 0);
    /* A body is NUL-terminated as it grows; only an empty one has no storage yet. */
    if (!m->body.ptr)
        r->body = "";
    else
        r->body = m->body.ptr;
    r->method = llhttp_method_name((llhttp_method_t)p->method);
    r->path = m->head.ptr;
    q = strchr(m->head.ptr, '?');
    if (q) {
        *q = '\0';
        r->query = q + 1;
    } else {
        r->query = "";
    }
    r->headers = m->hdrs;
    r->nheaders = m->nh;
    r->body_len = m->body.len;
    r->http_minor = p->http_minor;
    r->keep_alive = m->keep_alive;
    r->userdata = c->srv->userdata;
    c->is_head = p->method == HTTP_HEAD;
    c->state = ST_HANDLING;
    c->refs++;
    c->srv->handler(r, c->srv->userdata);
    return HPE_PAUSED;
}

static const llhttp_settings_t *server_settings(void)
{
    static llhttp_settings_t s;
    static int init;
    if (!init) {
        llhttp_settings_init(&s);
        s.on_message_begin = srv_on_message_begin;
        s.on_url = on_url;
        s.on_url_complete = on_url_complete;
        s.on_header_field = on_header_field;
        s.on_header_field_complete = on_header_field_complete;
        s.on_header_value = on_header_value;
        s.on_header_value_complete = on_header_value_complete;
        s.on_headers_complete = srv_on_headers_complete;
        s.on_body = on_body;
        s.on_message_complete = srv_on_message_complete;
        init = 1;
    }
    return &s;
}

/* Answer a request the parser rejected, then close. */
static void conn_reject(struct conn *c, int status)
{
    static const char *const msgs[] = { "bad request\n",
                                        "content too large\n",
                                        "uri too long\n",
                                        "request header fields too large\n",
                                        "request timeout\n",
                                        "server busy: buffered bytes at their limit\n",
                                        "too many bytes buffered for this client\n" };
    const char *body = status == 413   ? msgs[1]
                       : status == 414 ? msgs[2]
                       : status == 431 ? msgs[3]
                       : status == 408 ? msgs[4]
                       : status == 503 ? msgs[5]
                       : status == 429 ? msgs[6]
                                       : msgs[0];
    struct cairn_http_response r = { status, "text/plain", NULL, body, strlen(body), NULL };
    c->state = ST_HANDLING;
    c->refs++;
    c->close_after = 1;
    c->is_head = 0;
    c->req.keep_alive = 0;
    c->req.http_minor = 1;
    if (status == 503 || status == 429)
        r.headers = "Retry-After: 1\r\n";
    cairn_http_respond(&c->req, &r);
}

/*
 * Keep input that arrived while a request is out (pipelining) and stop
 * reading until it is answered: at most one read is kept, charged to the
 * client, so a pipelining client holds no more than READ_BUF.
 */
static void stash(struct conn *c, const char *data, size_t len)
{
    if (!len)
        return;
    if ((c->pending.cap - c->pending.len <= len &&
         conn_buf_resize(c, &c->pending, c->pending.len + len + 1, 0)) ||
        buf_append(&c->pending, data, len) < 0) {
        conn_close(c); /* no room for what it pipelined */
        return;
    }
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    }
}

static void conn_feed(struct conn *c, const char *data, size_t len)
{
    while (!c->closing && len) {
        llhttp_errno_t e;
        if (c->state == ST_HANDLING || c->state == ST_WRITING || c->state == ST_LINGER) {
            if (c->state != ST_LINGER)
                stash(c, data, len);
            return;
        }
        c->in_feed = 1;
        e = llhttp_execute(&c->m.parser, data, len);
        c->in_feed = 0;
        if (e == HPE_OK)
            return;
        if (e == HPE_PAUSED) {
            size_t used = (size_t)(llhttp_get_error_pos(&c->m.parser) - data);
            data += used;
            len -= used;
            llhttp_resume(&c->m.parser);
            /* A response written inside the handler finished in the feed: go on. */
            continue;
        }
        if (c->state == ST_HANDLING || c->state == ST_WRITING) {
            c->close_after = 1; /* the handler has the request: just stop reading */
            return;
        }
        conn_reject(c, c->m.error_status ? c->m.error_status : 400);
        return;
    }
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = stream->data;
    if (nread == 0)
        return;
    if (nread < 0) {
        if (nread != UV_EOF) {
            conn_close(c);
            return;
        }
        c->peer_eof = 1;
        uv_read_stop(stream);
        c->reading = 0;
        /* Nothing to answer, or an incomplete request: close. Otherwise answer
         * what is under way and pipelined first (response_done closes). */
        if (c->state == ST_IDLE || c->state == ST_LINGER || c->state == ST_READING)
            conn_close(c);
        return;
    }
    if (c->state == ST_LINGER)
        return;
    conn_feed(c, buf->base, (size_t)nread);
}

/*
 * A connection over a cap: answer at once without reading a request, then
 * close. What the client already sent is read and dropped first, so the
 * close is a FIN and the client sees the answer rather than a reset.
 */
static void conn_refuse(struct conn *c, enum cairn_limit why)
{
    static const char busy[] =
        "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n"
        "Content-Type: text/plain\r\nContent-Length: 38\r\n"
        "Connection: close\r\n\r\nserver busy: connections at their limit\n";
    static const char many[] =
        "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\n"
        "Content-Type: text/plain\r\nContent-Length: 38\r\n"
        "Connection: close\r\n\r\ntoo many connections from this client\n";
    uv_buf_t b = why == CAIRN_LIMIT_CLIENT ? uv_buf_init((char *)many, sizeof(many) - 1)
                                           : uv_buf_init((char *)busy, sizeof(busy) - 1);
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
        for (int i = 0; i < 4 && recv(fd, c->srv->rbuf, sizeof(c->srv->rbuf), MSG_DONTWAIT) > 0;
             i++)
            ;
    uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    conn_close(c);
}

/* Set up a connection around an accepted socket (server != NULL) or `fd`. */
static int conn_start(struct cairn_http_server *s, uv_stream_t *server, uv_os_sock_t fd)
{
    struct conn *c;
    struct sockaddr_storage peer;
    int peerlen = sizeof(peer);
    enum cairn_limit why;

    if (!(c = calloc(1, sizeof(*c))))
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->srv = s;
    c->refs = 2;
    s->nconns++;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    msg_init(&c->m, s->opts.max_headers, s->opts.max_url, s->opts.max_header_bytes,
             s->opts.max_body);
    c->m.body_room = conn_body_room;
    llhttp_init(&c->m.parser, HTTP_REQUEST, server_settings());
    cairn_buf_init(&c->out, 0);
    c->state = ST_IDLE;
    if (server ? uv_accept(server, (uv_stream_t *)&c->tcp) < 0 : uv_tcp_open(&c->tcp, fd) < 0) {
        conn_close(c);
        return cairn_error_set(CAIRN_ERROR, "cannot accept a connection");
    }
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&peer, &peerlen) < 0)
        peerlen = 0;
    why = cairn_limits_open(s->limits, peerlen ? (struct sockaddr *)&peer : NULL,
                            (socklen_t)peerlen, &c->client);
    if (why != CAIRN_LIMIT_OK) {
        conn_refuse(c, why);
        return 0;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    /* The first request must begin within the header timeout, not the idle one:
     * a connection that never speaks is a slowloris too. */
    timer_set(c, s->opts.header_timeout_ms);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
        c->reading = 1;
    else
        conn_close(c);
    return 0;
}

static void on_connection(uv_stream_t *server, int status)
{
    if (status == 0)
        conn_start(server->data, server, -1);
}

int cairn__http_server_adopt(struct cairn_http_server *s, uv_os_sock_t fd)
{
    return conn_start(s, NULL, fd);
}

int cairn_http_server_new(struct cairn_http_server **out, uv_loop_t *loop, const char *addr,
                          const struct cairn_http_server_opts *opts, cairn_http_handler_fn handler,
                          void *userdata)
{
    struct cairn_http_server *s = NULL;
    struct sockaddr_storage sa;
    int r, namelen = sizeof(sa), error = 0;

    *out = NULL;
    if ((error = cairn_http_parse_addr(&sa, addr)) < 0)
        goto done;
    if (!(s = calloc(1, sizeof(*s)))) {
        error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
        goto done;
    }
    s->loop = loop;
    s->handler = handler;
    s->userdata = userdata;
    if (opts)
        s->opts = *opts;
    else
        cairn_http_server_opts_init(&s->opts);
    {
        struct cairn_limits_opts lo = { s->opts.max_conns, s->opts.max_buffered,
                                        s->opts.max_client_conns, s->opts.max_client_buffered };
        if ((error = cairn_limits_new(&s->limits, &lo, uv_hrtime() ^ (uintptr_t)s)) < 0) {
            free(s);
            s = NULL;
            goto done;
        }
    }
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    s->listener_open = 1;
    if ((r = uv_tcp_bind(&s->listener, (struct sockaddr *)&sa, 0)) < 0 ||
        (r = uv_listen((uv_stream_t *)&s->listener, s->opts.backlog, on_connection)) < 0 ||
        (r = uv_tcp_getsockname(&s->listener, (struct sockaddr *)&sa, &namelen)) < 0) {
        error = cairn_error_set(CAIRN_ERROR, "cannot listen on '%s': %s", addr, uv_strerror(r));
        cairn_http_server_shutdown(s);
        s = NULL;
        goto done;
    }
    s->port = sa.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&sa)->sin6_port)
                                       : ntohs(((struct sockaddr_in *)&sa)->sin_port);
    *out = s;
done:
    return error;
}

int cairn_http_server_port(const struct cairn_http_server *s)
{
    return s->port;
}

struct cairn_limits *cairn_http_server_limits(struct cairn_http_server *s)
{
    return s->limits;
}

static void on_listener_closed(uv_handle_t *h)
{
    struct cairn_http_server *s = h->data;
    s->listener_open = 0;
    server_maybe_free(s);
}

void cairn_http_server_shutdown(struct cairn_http_server *s)
{
    struct conn *c, *next;
    if (!s || s->shutting_down)
        return;
    s->shutting_down = 1;
    uv_close((uv_handle_t *)&s->listener, on_listener_closed);
    for (c = s->conns; c; c = next) {
        next = c->next;
        if (c->state == ST_IDLE || c->state == ST_READING)
            conn_close(c);
        else
            c->close_after = 1;
    }
}

/* ---- client ---- */

struct creq;
struct upstream;

struct cconn {
    struct msg m;
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_connect_t connect;
    uv_write_t wreq;
    struct upstream *up;
    struct creq *req;
    struct cconn *next, *prev;   /* idle list of the upstream */
    struct cconn *anext, *aprev; /* every connection of the upstream */
    int idle;
    int connected;
    int closing;
    int reused;    /* served a request before: a failure may be a stale connection */
    int got_bytes; /* any response byte for the current request */
    int probe;     /* a health probe's own connection: outside the pool and its cap */
    int writing;   /* a uv_write of the request is under way */
    int handles;
    uint64_t deadline; /* loop time: request deadline, or idle expiry when pooled; 0 none */
    uint64_t armed;    /* loop time the timer is set to fire; 0 not set */
};

struct creq {
    struct upstream *up;
    struct cairn_buf data; /* the serialised request (its body too, unless borrowed) */
    const char *body;      /* a borrowed body sent after `data`, or NULL */
    size_t body_len;
    cairn_http_client_cb cb;
    void *arg;
    uint64_t deadline; /* uv_now() based; 0 none */
    int retried;
    int is_head;
    struct creq *next;
};

struct upstream {
    char *addr;
    size_t addr_len;
    struct sockaddr_storage sa;
    struct cairn_http_client *client;
    struct cconn *idle;
    struct cconn *all;
    struct creq *qhead, *qtail;
    size_t nconns;
    struct upstream *next;
};

struct cairn_http_client {
    uv_loop_t *loop;
    struct cairn_http_client_opts opts;
    struct upstream *ups;
    size_t handles;
    int freeing;
    struct creq *free_reqs; /* finished requests, buffers kept: no malloc per request */
    size_t nfree;
    char rbuf[READ_BUF];
};

static void pump(struct upstream *up);
static void cconn_close(struct cconn *cc);

void cairn_http_client_opts_init(struct cairn_http_client_opts *o)
{
    o->max_conns_per_upstream = 64;
    o->max_body = 64u << 20;
    o->max_header_bytes = 64 * 1024;
    o->idle_timeout_ms = 30000;
    o->connect_timeout_ms = 3000;
}

int cairn_http_client_new(struct cairn_http_client **out, uv_loop_t *loop,
                          const struct cairn_http_client_opts *opts)
{
    struct cairn_http_client *c = calloc(1, sizeof(*c));
    *out = NULL;
    if (!c)
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    c->loop = loop;
    if (opts)
        c->opts = *opts;
    else
        cairn_http_client_opts_init(&c->opts);
    *out = c;
    return 0;
}

static void client_maybe_free(struct cairn_http_client *c)
{
    struct upstream *up, *next;
    if (!c->freeing || c->handles)
        return;
    for (up = c->ups; up; up = next) {
        next = up->next;
        free(up->addr);
        free(up);
    }
    while (c->free_reqs) {
        struct creq *r = c->free_reqs;
        c->free_reqs = r->next;
        cairn_buf_release(&r->data);
        free(r);
    }
    free(c);
}

static struct creq *creq_get(struct cairn_http_client *c)
{
    struct creq *r = c->free_reqs;
    if (r) {
        c->free_reqs = r->next;
        c->nfree--;
        cairn_buf_clear(&r->data);
        r->body = NULL;
        r->body_len = 0;
        r->retried = 0;
        r->next = NULL;
        return r;
    }
    if ((r = calloc(1, sizeof(*r))))
        cairn_buf_init(&r->data, 0);
    return r;
}

static void creq_put(struct cairn_http_client *c, struct creq *r)
{
    /* Keep small ones only: one large upload must not pin its buffer. */
    if (c->nfree >= CREQ_POOL || r->data.cap > 64 * 1024) {
        cairn_buf_release(&r->data);
        free(r);
        return;
    }
    r->next = c->free_reqs;
    c->free_reqs = r;
    c->nfree++;
}

/* Back to the pool first: the callback may free the client or send the next request. */
static void creq_finish(struct creq *r, int error, const struct cairn_http_resp *resp)
{
    cairn_http_client_cb cb = r->cb;
    void *arg = r->arg;
    creq_put(r->up->client, r);
    cb(error, resp, arg);
}

static void idle_remove(struct cconn *cc)
{
    if (!cc->idle)
        return;
    if (cc->prev)
        cc->prev->next = cc->next;
    else
        cc->up->idle = cc->next;
    if (cc->next)
        cc->next->prev = cc->prev;
    cc->next = cc->prev = NULL;
    cc->idle = 0;
}

static void on_cconn_closed(uv_handle_t *h)
{
    struct cconn *cc = h->data;
    struct cairn_http_client *c = cc->up->client;
    if (--cc->handles > 0)
        return;
    if (cc->aprev)
        cc->aprev->anext = cc->anext;
    else
        cc->up->all = cc->anext;
    if (cc->anext)
        cc->anext->aprev = cc->aprev;
    msg_release(&cc->m);
    free(cc);
    c->handles--;
    client_maybe_free(c);
}

static void cconn_close(struct cconn *cc)
{
    if (cc->closing)
        return;
    cc->closing = 1;
    idle_remove(cc);
    if (!cc->probe)
        cc->up->nconns--;
    uv_close((uv_handle_t *)&cc->tcp, on_cconn_closed);
    uv_close((uv_handle_t *)&cc->timer, on_cconn_closed);
}

/* The connection failed under its request: retry once if it may have been stale. */
static void cconn_fail(struct cconn *cc, int error)
{
    struct creq *r = cc->req;
    struct upstream *up = cc->up;
    cc->req = NULL;
    cconn_close(cc);
    if (r && cc->reused && !cc->got_bytes && !r->retried && !up->client->freeing) {
        r->retried = 1;
        r->next = up->qhead;
        up->qhead = r;
        if (!up->qtail)
            up->qtail = r;
    } else if (r) {
        creq_finish(r, error, NULL);
    }
    pump(up);
}

static void on_cconn_timer(uv_timer_t *t);

/* As timer_set() for server connections: re-arm only for an earlier deadline. */
static void cconn_timer_at(struct cconn *cc, uint64_t when)
{
    uint64_t now;
    cc->deadline = when;
    if (!when || (cc->armed && cc->armed <= when))
        return;
    cc->armed = when;
    now = uv_now(cc->up->client->loop);
    uv_timer_start(&cc->timer, on_cconn_timer, when > now ? when - now : 0, 0);
}

static void on_cconn_timer(uv_timer_t *t)
{
    struct cconn *cc = t->data;
    cc->armed = 0;
    if (!cc->deadline)
        return;
    if (uv_now(cc->up->client->loop) < cc->deadline) {
        cconn_timer_at(cc, cc->deadline);
        return;
    }
    cc->deadline = 0;
    if (cc->req) {
        struct creq *r = cc->req;
        cc->req = NULL;
        cconn_close(cc);
        creq_finish(
            r,
            cc->connected
                ? cairn_error_set(CAIRN_ERROR, "request to '%s' timed out", cc->up->addr)
                : cairn_error_set(CAIRN_ERROR, "cannot connect to '%s': timed out", cc->up->addr),
            NULL);
        pump(cc->up);
    } else {
        cconn_close(cc); /* idle too long */
    }
}

static void on_cconn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct cconn *cc = h->data;
    (void)suggested;
    /* One buffer per client: each read is consumed before the next alloc. */
    buf->base = cc->up->client->rbuf;
    buf->len = sizeof(cc->up->client->rbuf);
}

static int cli_on_headers_complete(llhttp_t *p)
{
    struct msg *m = msg_of(p);
    struct cconn *cc = container_of(m, struct cconn, m);
    msg_headers_done(m);
    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > m->max_body) {
        m->error_status = 413;
        return -1;
    }
    /* 1xx interim answers and replies to HEAD carry no body. */
    return (p->status_code >= 100 && p->status_code < 200) || (cc->req && cc->req->is_head);
}

static int cli_on_message_complete(llhttp_t *p)
{
    struct msg *m = msg_of(p);
    if (p->status_code >= 100 && p->status_code < 200)
        return 0; /* wait for the real response */
    m->complete = 1;
    return HPE_PAUSED;
}

static const llhttp_settings_t *client_settings(void)
{
    static llhttp_settings_t s;
    static int init;
    if (!init) {
        llhttp_settings_init(&s);
        s.on_message_begin = on_message_begin;
        s.on_status_complete = on_status_complete;
        s.on_header_field = on_header_field;
        s.on_header_field_complete = on_header_field_complete;
        s.on_header_value = on_header_value;
        s.on_header_value_complete = on_header_value_complete;
        s.on_headers_complete = cli_on_headers_complete;
        s.on_body = on_body;
        s.on_message_complete = cli_on_message_complete;
        init = 1;
    }
    return &s;
}

/* A whole response arrived: hand it over, then pool or close the connection. */
static void cconn_complete(struct cconn *cc, int reusable)
{
    struct msg *m = &cc->m;
    struct creq *r = cc->req;
    struct cairn_http_resp resp;

    cc->req = NULL;
    cc->deadline = 0;
    if (cairn_buf_putc(&m->body, '\0') == 0)
        m->body.len--;
    resp.status = m->parser.status_code;
    resp.headers = m->hdrs;
    resp.nheaders = m->nh;
    resp.body = m->body.ptr ? m->body.ptr : "";
    resp.body_len = m->body.len;
    /* An answer that came before the request was all sent (an early error): the rest of
     * the request would still go out on a pooled connection, from memory the callback
     * may free. Closing cancels the write. */
    reusable = reusable && m->keep_alive && !cc->probe && !cc->writing && !cc->up->client->freeing;
    /* Pool the connection before the callback, which may well send the next request. */
    if (reusable) {
        cc->reused = 1;
        cc->idle = 1;
        cc->prev = NULL;
        cc->next = cc->up->idle;
        if (cc->next)
            cc->next->prev = cc;
        cc->up->idle = cc;
        if (cc->up->client->opts.idle_timeout_ms)
            cconn_timer_at(cc, uv_now(cc->up->client->loop) + cc->up->client->opts.idle_timeout_ms);
    } else {
        cconn_close(cc);
    }
    creq_finish(r, 0, &resp);
    /* An idle pooled connection must not pin a large answer until its next one. */
    if (m->body.cap > BODY_KEEP)
        cairn_buf_release(&m->body);
    pump(cc->up);
}

static void on_cconn_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct cconn *cc = s->data;
    llhttp_errno_t e;

    if (nread == 0)
        return;
    if (!cc->req) {
        cconn_close(cc); /* EOF or stray bytes on an idle connection */
        return;
    }
    if (nread < 0) {
        if (nread == UV_EOF && cc->got_bytes && llhttp_finish(&cc->m.parser) == HPE_PAUSED &&
            cc->m.complete) {
            cconn_complete(cc, 0); /* a response delimited by the close */
            return;
        }
        cconn_fail(cc, cairn_error_set(CAIRN_ERROR, "connection to '%s' failed: %s", cc->up->addr,
                                       uv_strerror((int)nread)));
        return;
    }
    cc->got_bytes = 1;
    e = llhttp_execute(&cc->m.parser, buf->base, (size_t)nread);
    if (e == HPE_PAUSED && cc->m.complete) {
        /* Bytes after the response would be a protocol error: do not reuse. */
        const char *end = llhttp_get_error_pos(&cc->m.parser);
        cconn_complete(cc, end == buf->base + nread);
        return;
    }
    if (e != HPE_OK) {
        int code = cc->m.error_status == 413 ? CAIRN_ENOMEM : CAIRN_ERROR;
        cc->got_bytes = 1; /* never retry a request the upstream answered */
        cconn_fail(cc,
                   cairn_error_set(code, "bad response from '%s': %s", cc->up->addr,
                                   cc->m.error_status == 413 ? "too large" : llhttp_errno_name(e)));
    }
}

static void on_cconn_write(uv_write_t *w, int status)
{
    struct cconn *cc = w->data;
    cc->writing = 0;
    if (status < 0 && cc->req && !cc->closing)
        cconn_fail(cc, cairn_error_set(CAIRN_ERROR, "cannot send to '%s': %s", cc->up->addr,
                                       uv_strerror(status)));
}

static void cconn_send(struct cconn *cc)
{
    struct creq *r = cc->req;
    uv_buf_t b[2] = { uv_buf_init(r->data.ptr, (unsigned)r->data.len),
                      uv_buf_init((char *)r->body, (unsigned)r->body_len) };
    unsigned nb = r->body_len ? 2 : 1;
    uint64_t now = uv_now(cc->up->client->loop);
    int n;

    if (r->deadline && now >= r->deadline) {
        cc->req = NULL;
        creq_finish(r, cairn_error_set(CAIRN_ERROR, "request to '%s' timed out", cc->up->addr),
                    NULL);
        /* The connection is fine: put it back (pump picks it up). */
        cc->idle = 1;
        cc->prev = NULL;
        cc->next = cc->up->idle;
        if (cc->next)
            cc->next->prev = cc;
        cc->up->idle = cc;
        return;
    }
    /* No msg_reset here: this may run inside the previous response's callback,
     * which still reads that response; on_message_begin resets later. */
    llhttp_init(&cc->m.parser, HTTP_RESPONSE, client_settings());
    cc->got_bytes = 0;
    cconn_timer_at(cc, r->deadline);
    n = uv_try_write((uv_stream_t *)&cc->tcp, b, nb);
    if (n >= 0 && (size_t)n == r->data.len + r->body_len)
        return;
    if (n < 0 && n != UV_EAGAIN) {
        cconn_fail(cc, cairn_error_set(CAIRN_ERROR, "cannot send to '%s': %s", cc->up->addr,
                                       uv_strerror(n)));
        return;
    }
    /* Queue the rest; a borrowed body stays valid until the request finishes. */
    if (n > 0 && (size_t)n >= r->data.len) {
        b[0] = uv_buf_init((char *)r->body + ((size_t)n - r->data.len),
                           (unsigned)(r->body_len - ((size_t)n - r->data.len)));
        nb = 1;
    } else if (n > 0) {
        b[0] = uv_buf_init(r->data.ptr + n, (unsigned)(r->data.len - (size_t)n));
    }
    cc->wreq.data = cc;
    if ((n = uv_write(&cc->wreq, (uv_stream_t *)&cc->tcp, b, nb, on_cconn_write)) < 0) {
        cconn_fail(cc, cairn_error_set(CAIRN_ERROR, "cannot send to '%s': %s", cc->up->addr,
                                       uv_strerror(n)));
        return;
    }
    cc->writing = 1;
}

static void on_cconn_connect(uv_connect_t *creq, int status)
{
    struct cconn *cc = creq->data;
    if (cc->closing)
        return;
    if (status < 0) {
        cconn_fail(cc, cairn_error_set(CAIRN_ERROR, "cannot connect to '%s': %s", cc->up->addr,
                                       uv_strerror(status)));
        return;
    }
    cc->connected = 1;
    uv_tcp_nodelay(&cc->tcp, 1);
    if (uv_read_start((uv_stream_t *)&cc->tcp, on_cconn_alloc, on_cconn_read) < 0) {
        cconn_fail(cc, cairn_error_set(CAIRN_ERROR, "cannot read from '%s'", cc->up->addr));
        return;
    }
    if (cc->req)
        cconn_send(cc);
}

static struct cconn *cconn_new(struct upstream *up)
{
    struct cairn_http_client *c = up->client;
    struct cconn *cc = calloc(1, sizeof(*cc));
    if (!cc)
        return NULL;
    cc->up = up;
    uv_tcp_init(c->loop, &cc->tcp);
    uv_timer_init(c->loop, &cc->timer);
    cc->tcp.data = cc->timer.data = cc->connect.data = cc;
    cc->handles = 2;
    c->handles++;
    cc->anext = up->all;
    if (up->all)
        up->all->aprev = cc;
    up->all = cc;
    up->nconns++;
    msg_init(&cc->m, CAIRN_HTTP_MAX_HEADERS, SIZE_MAX, c->opts.max_header_bytes, c->opts.max_body);
    if (uv_tcp_connect(&cc->connect, &cc->tcp, (struct sockaddr *)&up->sa, on_cconn_connect) < 0) {
        cconn_close(cc);
        return NULL;
    }
    return cc;
}

/* A connection being made: give up on it after connect_timeout_ms (or the request's deadline). */
static void cconn_connect_deadline(struct cconn *cc)
{
    struct cairn_http_client *c = cc->up->client;
    uint64_t when = c->opts.connect_timeout_ms ? uv_now(c->loop) + c->opts.connect_timeout_ms : 0;
    if (cc->req->deadline && (!when || cc->req->deadline < when))
        when = cc->req->deadline;
    cconn_timer_at(cc, when);
}

/* Give queued requests to idle connections, opening new ones up to the cap. */
static void pump(struct upstream *up)
{
    struct cairn_http_client *c = up->client;
    while (up->qhead && !c->freeing) {
        struct cconn *cc = up->idle;
        struct creq *r;
        if (cc) {
            idle_remove(cc);
        } else if (up->nconns < c->opts.max_conns_per_upstream) {
            if (!(cc = cconn_new(up))) {
                r = up->qhead;
                up->qhead = r->next;
                if (!up->qhead)
                    up->qtail = NULL;
                creq_finish(r, cairn_error_set(CAIRN_ERROR, "cannot connect to '%s'", up->addr),
                            NULL);
                continue;
            }
        } else {
            return;
        }
        r = up->qhead;
        up->qhead = r->next;
        if (!up->qhead)
            up->qtail = NULL;
        r->next = NULL;
        cc->req = r;
        if (cc->connected)
            cconn_send(cc);
        else
            cconn_connect_deadline(cc);
    }
}

enum { REQ_COPY, REQ_BORROW, REQ_PROBE };

static struct upstream *upstream_get(struct cairn_http_client *c, const char *addr)
{
    struct upstream *up;
    for (up = c->ups; up; up = up->next)
        if (!strcmp(up->addr, addr))
            return up;
    return NULL;
}

static int client_request(struct cairn_http_client *c, const char *addr, const char *method,
                          const char *path, const char *headers, const void *body, size_t len,
                          uint64_t timeout_ms, cairn_http_client_cb cb, void *arg, int how)
{
    struct upstream *up;
    struct creq *r = NULL;
    struct cconn *cc;
    size_t mlen, plen, hlen;
    char *p;
    int error = 0;

    if (!(up = upstream_get(c, addr))) {
        struct sockaddr_storage sa;
        if ((error = cairn_http_parse_addr(&sa, addr)) < 0)
            goto done;
        if (!(up = calloc(1, sizeof(*up))) || !(up->addr = strdup(addr))) {
            free(up);
            error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
            goto done;
        }
        up->addr_len = strlen(addr);
        up->sa = sa;
        up->client = c;
        up->next = c->ups;
        c->ups = up;
    }
    if (strpbrk(method, " \r\n") || strpbrk(path, " \r\n") || path[0] != '/') {
        error = cairn_error_set(CAIRN_EINVALID, "bad request line '%s %s'", method, path);
        goto done;
    }
    if (!(r = creq_get(c))) {
        error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
        goto done;
    }
    mlen = strlen(method);
    plen = strlen(path);
    hlen = headers ? strlen(headers) : 0;
    if (len > SIZE_MAX / 2 ||
        (error = cairn_buf_grow(&r->data, mlen + plen + up->addr_len + hlen +
                                              (how == REQ_COPY ? len : 0) + 64)) < 0) {
        error = error < 0 ? error : cairn_error_set(CAIRN_ENOMEM, "request body too large");
        goto done;
    }
    p = put_mem(r->data.ptr, method, mlen);
    *p++ = ' ';
    p = put_mem(p, path, plen);
    p = PUT_LIT(p, " HTTP/1.1\r\nHost: ");
    p = put_mem(p, up->addr, up->addr_len);
    p = PUT_LIT(p, "\r\n");
    if (hlen)
        p = put_mem(p, headers, hlen);
    p = PUT_LIT(p, "Content-Length: ");
    p = put_u64(p, len);
    p = PUT_LIT(p, "\r\n\r\n");
    if (len && how == REQ_COPY)
        p = put_mem(p, body, len);
    else if (len) {
        r->body = body;
        r->body_len = len;
    }
    r->data.len = (size_t)(p - r->data.ptr);
    r->data.ptr[r->data.len] = '\0';
    r->up = up;
    r->cb = cb;
    r->arg = arg;
    r->is_head = !strcmp(method, "HEAD");
    uv_update_time(c->loop);
    r->deadline = timeout_ms ? uv_now(c->loop) + timeout_ms : 0;
    if (how == REQ_PROBE) {
        /* Its own connection, never queued behind requests a hung upstream holds. */
        if (!(cc = cconn_new(up))) {
            error = cairn_error_set(CAIRN_ERROR, "cannot connect to '%s'", up->addr);
            goto done;
        }
        up->nconns--;
        cc->probe = 1;
        cc->req = r;
        cconn_connect_deadline(cc);
        return 0;
    }
    if (up->qtail)
        up->qtail->next = r;
    else
        up->qhead = r;
    up->qtail = r;
    r = NULL;
    pump(up);
done:
    if (r)
        creq_put(c, r);
    return error;
}

int cairn_http_client_request(struct cairn_http_client *c, const char *addr, const char *method,
                              const char *path, const char *headers, const void *body, size_t len,
                              uint64_t timeout_ms, cairn_http_client_cb cb, void *arg)
{
    return client_request(c, addr, method, path, headers, body, len, timeout_ms, cb, arg, REQ_COPY);
}

int cairn_http_client_request_borrowed(struct cairn_http_client *c, const char *addr,
                                       const char *method, const char *path, const char *headers,
                                       const void *body, size_t len, uint64_t timeout_ms,
                                       cairn_http_client_cb cb, void *arg)
{
    return client_request(c, addr, method, path, headers, body, len, timeout_ms, cb, arg,
                          REQ_BORROW);
}

int cairn_http_client_probe(struct cairn_http_client *c, const char *addr, const char *path,
                            uint64_t timeout_ms, cairn_http_client_cb cb, void *arg)
{
    return client_request(c, addr, "GET", path, "Connection: close\r\n", NULL, 0, timeout_ms, cb,
                          arg, REQ_PROBE);
}

void cairn_http_client_abort(struct cairn_http_client *c, const char *addr, const char *why)
{
    struct upstream *up = upstream_get(c, addr);
    struct creq *list = NULL, *r;

    if (!up)
        return;
    /* Collect first: a callback may send again (to another upstream, or this one). */
    while ((r = up->qhead)) {
        up->qhead = r->next;
        r->next = list;
        list = r;
    }
    up->qtail = NULL;
    for (struct cconn *cc = up->all; cc; cc = cc->anext) {
        if (!(r = cc->req) || cc->probe)
            continue;
        cc->req = NULL;
        cconn_close(cc);
        r->next = list;
        list = r;
    }
    while ((r = list)) {
        list = r->next;
        r->next = NULL;
        creq_finish(r, cairn_error_set(CAIRN_ERROR, "request to '%s' aborted: %s", addr, why),
                    NULL);
    }
}

void cairn_http_client_free(struct cairn_http_client *c)
{
    if (!c)
        return;
    c->freeing = 1;
    for (struct upstream *up = c->ups; up; up = up->next) {
        while (up->qhead) {
            struct creq *r = up->qhead;
            up->qhead = r->next;
            creq_finish(r, cairn_error_set(CAIRN_ERROR, "http client shut down"), NULL);
        }
        up->qtail = NULL;
        for (struct cconn *cc = up->all; cc; cc = cc->anext) {
            struct creq *r = cc->req;
            cc->req = NULL;
            cconn_close(cc);
            if (r)
                creq_finish(r, cairn_error_set(CAIRN_ERROR, "http client shut down"), NULL);
        }
    }
    client_maybe_free(c);
}

/* ---- blocking helper ---- */

void cairn_http_result_init(struct cairn_http_result *r)
{
    r->status = 0;
    cairn_buf_init(&r->body, 0);
    cairn_buf_init(&r->headers, 0);
    r->nheaders = 0;
}

void cairn_http_result_release(struct cairn_http_result *r)
{
    if (!r)
        return;
    cairn_buf_release(&r->body);
    cairn_buf_release(&r->headers);
    r->nheaders = 0;
}

const char *cairn_http_result_header(const struct cairn_http_result *r, const char *name)
{
    const char *p = r->headers.ptr;
    for (size_t i = 0; i < r->nheaders; i++) {
        const char *v = p + strlen(p) + 1;
        if (!strcasecmp(p, name))
            return v;
        p = v + strlen(v) + 1;
    }
    return NULL;
}

struct sync_state {
    struct cairn_http_result *out;
    int done;
    int error;
    char msg[256];
};

static void sync_cb(int error, const struct cairn_http_resp *resp, void *arg)
{
    struct sync_state *st = arg;
    st->done = 1;
    st->error = error;
    if (error < 0) {
        snprintf(st->msg, sizeof(st->msg), "%s", cairn_error_last());
        return;
    }
    st->out->status = resp->status;
    if (cairn_buf_put(&st->out->body, resp->body, resp->body_len) < 0) {
        st->error = CAIRN_ENOMEM;
        snprintf(st->msg, sizeof(st->msg), "%s", cairn_error_last());
        return;
    }
    for (size_t i = 0; i < resp->nheaders; i++) {
        if (cairn_buf_put(&st->out->headers, resp->headers[i].name,
                          strlen(resp->headers[i].name) + 1) < 0 ||
            cairn_buf_put(&st->out->headers, resp->headers[i].value,
                          strlen(resp->headers[i].value) + 1) < 0) {
            st->error = CAIRN_ENOMEM;
            return;
        }
        st->out->nheaders++;
    }
}

/* Split "http://host[:port]/path" into a numeric "ADDR:PORT" and the path. */
static int parse_url(char *addr, size_t addr_cap, const char **path, const char *url)
{
    const char *h = url + 7, *hend, *pstart, *port = NULL;
    char host[256], portbuf[8] = "80";
    struct addrinfo hints, *res = NULL;
    int v6 = 0, r;

    if (strncmp(url, "http://", 7))
        goto bad;
    pstart = h + strcspn(h, "/?");
    if (*h == '[') {
        if (!(hend = memchr(h, ']', (size_t)(pstart - h))))
            goto bad;
        h++;
        v6 = 1;
        if (hend[1] == ':')
            port = hend + 2;
        else if (hend + 1 != pstart)
            goto bad;
    } else {
        hend = memchr(h, ':', (size_t)(pstart - h));
        if (hend)
            port = hend + 1;
        else
            hend = pstart;
    }
    if (hend == h || (size_t)(hend - h) >= sizeof(host))
        goto bad;
    memcpy(host, h, (size_t)(hend - h));
    host[hend - h] = '\0';
    if (port) {
        size_t n = (size_t)(pstart - port);
        if (n == 0 || n > 5 || strspn(port, "0123456789") < n)
            goto bad;
        memcpy(portbuf, port, n);
        portbuf[n] = '\0';
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = v6 ? AF_INET6 : AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    if ((r = getaddrinfo(host, portbuf, &hints, &res)) != 0)
        return cairn_error_set(CAIRN_ERROR, "cannot resolve '%s': %s", host, gai_strerror(r));
    if (res->ai_family == AF_INET6) {
        char ip[INET6_ADDRSTRLEN];
        uv_ip6_name((struct sockaddr_in6 *)res->ai_addr, ip, sizeof(ip));
        snprintf(addr, addr_cap, "[%s]:%s", ip, portbuf);
    } else {
        char ip[INET_ADDRSTRLEN];
        uv_ip4_name((struct sockaddr_in *)res->ai_addr, ip, sizeof(ip));
        snprintf(addr, addr_cap, "%s:%s", ip, portbuf);
    }
    freeaddrinfo(res);
    *path = pstart;
    return 0;
bad:
    return cairn_error_set(CAIRN_EINVALID, "bad url '%s' (expected http://HOST[:PORT]/PATH)", url);
}

int cairn_http_request_sync(struct cairn_http_result *out, const char *url, const char *method,
                            const char *headers, const void *body, size_t len, uint64_t timeout_ms)
{
    uv_loop_t loop;
    struct cairn_http_client *c = NULL;
    struct sync_state st = { out, 0, 0, "" };
    struct cairn_buf path = CAIRN_BUF_INIT;
    char addr[300];
    const char *p = "";
    int error, loop_ok = 0;

    cairn_http_result_init(out);
    if ((error = parse_url(addr, sizeof(addr), &p, url)) < 0)
        goto done;
    /* "http://h?q" has an empty path: the request line needs "/?q". */
    if ((error = cairn_buf_printf(&path, "%s%s", *p == '/' ? "" : "/", p)) < 0)
        goto done;
    if (uv_loop_init(&loop) < 0) {
        error = cairn_error_set(CAIRN_ERROR, "cannot create an event loop");
        goto done;
    }
    loop_ok = 1;
    if ((error = cairn_http_client_new(&c, &loop, NULL)) < 0)
        goto done;
    if ((error = cairn_http_client_request(c, addr, method, path.ptr, headers, body, len,
                                           timeout_ms, sync_cb, &st)) < 0)
        goto done;
    while (!st.done && uv_run(&loop, UV_RUN_ONCE))
        ;
    error =
        st.done ? st.error : cairn_error_set(CAIRN_ERROR, "request to '%s' never finished", url);
    if (st.error < 0)
        cairn_error_set(st.error, "%s", st.msg);
done:
    if (loop_ok) {
        cairn_http_client_free(c);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
    }
    cairn_buf_release(&path);
    if (error < 0)
        cairn_http_result_release(out);
    return error;
}
