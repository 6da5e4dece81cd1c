/*
 * The HTTP/1.1 engine of `cairn serve` and `cairn serve-model`: a server and
 * a pooled client on one libuv loop, parsing with llhttp callbacks.
 *
 * Built for the router's budget (SPEC §9: nginx's requests/s with one
 * worker, <= 100 us p99 overhead), so the common path allocates nothing:
 * each connection keeps its parser, header table and buffers across
 * keep-alive requests, reads land in one buffer per server, and a response
 * goes out with a single uv_try_write() of [head, body] (the body is not
 * copied unless the socket would block). Every size that comes from the
 * peer is capped: header bytes and count (431), URL (414), body (413).
 *
 * Threading: everything here runs on the loop thread that owns the server or
 * client; no function may be called from another thread, except
 * cairn_http_request_sync(), which runs its own loop on the calling thread.
 */
#ifndef CAIRN_SERVE_HTTP_H
#define CAIRN_SERVE_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <uv.h>

#include "util/buf.h"

/* A header as parsed: both strings NUL-terminated, owned by the engine. */
struct cairn_http_header {
    const char *name;
    const char *value;
};

/*
 * Parse "HOST:PORT", "[V6]:PORT" or ":PORT" (all interfaces, IPv4) into a
 * socket address. HOST must be a numeric address or "localhost"
 * (127.0.0.1): name resolution would block the loop. Returns 0 or
 * CAIRN_EINVALID naming the address.
 */
int cairn_http_parse_addr(struct sockaddr_storage *out, const char *addr);

/* Case-insensitive lookup of a header in a parsed list; NULL when absent. */
const char *cairn_http_header_find(const struct cairn_http_header *h, size_t n, const char *name);

/* The standard reason phrase of a status code ("Not Found"), "Unknown" otherwise. */
const char *cairn_http_reason(int status);

/* ---- server ---- */

struct cairn_http_server;

/*
 * A request being handled. Every field is read-only for the handler and
 * valid until cairn_http_respond() returns.
 */
struct cairn_http_req {
    const char *method; /* "GET", "POST", ... */
    const char *path;   /* decoded nothing: the raw path, without the query */
    const char *query;  /* the part after '?', or "" */
    const struct cairn_http_header *headers;
    size_t nheaders;
    const char *body; /* NUL-terminated for convenience; body_len excludes the NUL */
    size_t body_len;
    int http_minor; /* 0 or 1 */
    int keep_alive; /* the client allows another request on this connection */
    void *userdata; /* as given to cairn_http_server_new() */
};

/*
 * Called once per complete request, on the loop thread. The handler must call
 * cairn_http_respond() exactly once, now or at any later time (an upstream
 * reply, a timer): requests on one connection are answered in order, so the
 * next pipelined request waits until this one is answered.
 */
typedef void (*cairn_http_handler_fn)(struct cairn_http_req *req, void *userdata);

/*
 * Called if the client connection fails before the handler responded (reset,
 * write error, server shutdown), so long work can be abandoned. The handler
 * must still call cairn_http_respond(), which then only releases the request.
 */
typedef void (*cairn_http_cancel_fn)(struct cairn_http_req *req, void *arg);
void cairn_http_req_on_cancel(struct cairn_http_req *req, cairn_http_cancel_fn fn, void *arg);

struct cairn_http_server_opts {
    size_t max_header_bytes;    /* URL plus all header names and values; 431 beyond */
    size_t max_headers;         /* count; 431 beyond (at most CAIRN_HTTP_MAX_HEADERS) */
    size_t max_url;             /* 414 beyond */
    size_t max_body;            /* 413 beyond */
    uint64_t idle_timeout_ms;   /* keep-alive connection with no request under way */
    uint64_t header_timeout_ms; /* first byte of a request to the end of its headers */
    uint64_t body_timeout_ms;   /* end of headers to end of body; also each response write */
    int backlog;
    /*
     * Caps on what clients make the server hold (limits.h). Connections over
     * max_conns get 503, over max_client_conns (per client IP) 429, both
     * with Retry-After: 1, and are closed without a request being read.
     * Buffered bytes are request bodies (a body of known length is charged
     * in full when its headers arrive; the first BODY_FREE = 16 KiB of body
     * room per connection is part of its fixed cost), pipelined input
     * and answers queued for clients that do not read; a request that
     * would exceed max_buffered gets 503, max_client_buffered 429.
     * 0 for a byte cap or max_client_conns: no cap.
     */
    size_t max_conns;
    size_t max_buffered;
    size_t max_client_conns;
    size_t max_client_buffered;
};
#define CAIRN_HTTP_MAX_HEADERS 128

/*
 * Defaults: 16 KiB headers, 64 headers, 8 KiB URL, 1 MiB body, 60 s idle,
 * 10 s header and body; 1024 connections, 256 MiB buffered; per client IP
 * 256 connections, 64 MiB buffered. A new connection must start its first
 * request within the header timeout.
 */
void cairn_http_server_opts_init(struct cairn_http_server_opts *o);

/*
 * Listen on `addr` (see cairn_http_parse_addr(); port 0 picks a free port,
 * see cairn_http_server_port()) and call `handler` for each request.
 * `opts` may be NULL for the defaults. On success `*out` is the server; stop
 * it with cairn_http_server_shutdown(). Errors: CAIRN_EINVALID for a bad
 * address, CAIRN_ERROR with the system's reason when it cannot bind.
 */
int cairn_http_server_new(struct cairn_http_server **out, uv_loop_t *loop, const char *addr,
                          const struct cairn_http_server_opts *opts, cairn_http_handler_fn handler,
                          void *userdata);

/* The port the server listens on. */
int cairn_http_server_port(const struct cairn_http_server *s);

/*
 * The server's accounting (limits.h), for figures and to charge bytes the
 * handler buffers on the server's behalf (client NULL). Valid until the
 * server is shut down.
 */
struct cairn_limits;
struct cairn_limits *cairn_http_server_limits(struct cairn_http_server *s);

/*
 * Graceful stop: close the listener and idle connections at once, answer the
 * requests under way (then close their connections). The server frees itself
 * once its last handle closed; keep running the loop until then. Accepts NULL.
 */
void cairn_http_server_shutdown(struct cairn_http_server *s);

/*
 * The response. `headers` is NULL or extra raw header lines, each ending in
 * "\r\n" (the engine adds Content-Length and, when it closes, Connection).
 * With `body_free` set, the engine takes ownership of `body` and calls
 * body_free(body) once it is written (zero copy even when the socket
 * blocks); without it the engine copies whatever it cannot send at once.
 */
struct cairn_http_response {
    int status;
    const char *content_type; /* NULL: no Content-Type header */
    const char *headers;
    const void *body;
    size_t body_len;
    void (*body_free)(void *body);
};

/*
 * Answer `req`. After this call `req` must not be used. Returns 0, or a
 * negative code when the response could not be queued (the connection is then
 * closed); either way the request is released.
 */
int cairn_http_respond(struct cairn_http_req *req, const struct cairn_http_response *resp);

/* cairn_http_respond() with a copied body and no extra headers. */
int cairn_http_respond_simple(struct cairn_http_req *req, int status, const char *content_type,
                              const void *body, size_t len);

/*
 * For tests and fuzzing only: serve an already connected stream socket `fd`
 * (a socketpair end, say) as if it had been accepted. The server owns it.
 */
int cairn__http_server_adopt(struct cairn_http_server *s, uv_os_sock_t fd);

/* ---- client ---- */

struct cairn_http_client;

struct cairn_http_client_opts {
    size_t max_conns_per_upstream; /* further requests queue */
    size_t max_body;               /* responses larger fail with CAIRN_ENOMEM */
    size_t max_header_bytes;
    uint64_t idle_timeout_ms; /* pooled connections unused this long are closed */
    /* A new connection not established this long fails its request (0: only the request's
     * own timeout). Shorter than request timeouts, which must cover the upstream's work. */
    uint64_t connect_timeout_ms;
};
/* Defaults: 64 connections per upstream, 64 MiB body, 64 KiB headers, 30 s idle, 3 s connect. */
void cairn_http_client_opts_init(struct cairn_http_client_opts *o);

/* A response as the client received it; valid only during the callback. */
struct cairn_http_resp {
    int status;
    const struct cairn_http_header *headers;
    size_t nheaders;
    const char *body; /* NUL-terminated */
    size_t body_len;
};

/*
 * Completion of a client request: `error` is 0 and `resp` the response, or a
 * negative code (connect failure, reset, timeout: CAIRN_ERROR; oversized
 * response: CAIRN_ENOMEM; client freed: CAIRN_ERROR) and `resp` NULL.
 * Called exactly once, never from inside cairn_http_client_request().
 */
typedef void (*cairn_http_client_cb)(int error, const struct cairn_http_resp *resp, void *arg);

int cairn_http_client_new(struct cairn_http_client **out, uv_loop_t *loop,
                          const struct cairn_http_client_opts *opts);

/*
 * Send `method` `path` to the upstream at `addr` ("HOST:PORT" as for
 * cairn_http_parse_addr()) on a pooled keep-alive connection, connecting a
 * new one when none is idle. `headers` is NULL or raw "Name: value\r\n"
 * lines (Host and Content-Length are added); `body` is copied. The whole
 * exchange must finish within `timeout_ms` (0: no limit). A request that
 * fails on a reused connection before any response byte arrived is retried
 * once on a new connection (the upstream may have closed it while idle).
 * Returns 0 once queued (`cb` will be called) or a negative code (`cb` will
 * not be called).
 */
int cairn_http_client_request(struct cairn_http_client *c, const char *addr, const char *method,
                              const char *path, const char *headers, const void *body, size_t len,
                              uint64_t timeout_ms, cairn_http_client_cb cb, void *arg);

/*
 * As cairn_http_client_request(), but `body` is not copied: the caller keeps
 * it valid and unchanged until `cb` has been called. A proxy's way to send a
 * large body it already holds without a second copy.
 */
int cairn_http_client_request_borrowed(struct cairn_http_client *c, const char *addr,
                                       const char *method, const char *path, const char *headers,
                                       const void *body, size_t len, uint64_t timeout_ms,
                                       cairn_http_client_cb cb, void *arg);

/*
 * A health probe: GET `path` on a connection of its own, opened for it and
 * closed after it, outside the pool and its per-upstream cap, so a probe
 * never queues behind requests that a hung upstream holds. `timeout_ms`
 * covers connect to last byte. Returns and calls back as
 * cairn_http_client_request().
 */
int cairn_http_client_probe(struct cairn_http_client *c, const char *addr, const char *path,
                            uint64_t timeout_ms, cairn_http_client_cb cb, void *arg);

/*
 * Fail every request to `addr` now, queued or under way (not probes), with
 * CAIRN_ERROR "request to 'ADDR' aborted: WHY"; their connections are
 * closed. Callbacks run before this returns and may send new requests.
 */
void cairn_http_client_abort(struct cairn_http_client *c, const char *addr, const char *why);

/*
 * Fail every pending request (their callbacks run with CAIRN_ERROR), close
 * the pooled connections and free the client once they closed; keep running
 * the loop until then. Accepts NULL.
 */
void cairn_http_client_free(struct cairn_http_client *c);

/* ---- blocking helper for command-line tools and tests ---- */

/* A response owned by the caller; release with cairn_http_result_release(). */
struct cairn_http_result {
    int status;
    struct cairn_buf body;
    struct cairn_buf headers; /* "name\0value\0" pairs, in order */
    size_t nheaders;
};
void cairn_http_result_init(struct cairn_http_result *r);
void cairn_http_result_release(struct cairn_http_result *r);
/* Case-insensitive header lookup in a result; NULL when absent. */
const char *cairn_http_result_header(const struct cairn_http_result *r, const char *name);

/*
 * Perform one request to `url` ("http://HOST[:PORT]/PATH?QUERY"; HOST may be
 * a name, resolved with getaddrinfo) on a private loop, blocking the calling
 * thread. `headers` as for cairn_http_client_request(); `body` may be NULL.
 * `out` is initialised here. Returns 0 with any HTTP status, or a negative
 * code for a bad URL (CAIRN_EINVALID) or a failed exchange (CAIRN_ERROR).
 * Thread-safe (each call has its own loop).
 */
int cairn_http_request_sync(struct cairn_http_result *out, const char *url, const char *method,
                            const char *headers, const void *body, size_t len, uint64_t timeout_ms);

#endif
