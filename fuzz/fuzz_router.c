/*
 * Fuzz target for the request path of `cairn serve` (lib/serve/router.c):
 * the input is sent through a socketpair into a real server connection
 * whose handler is the router's, cut into reads at places chosen by the
 * first input byte, so llhttp, the data plane (model lookup, weighted and
 * sticky choice, shadow mirroring, forwarding, X-Request-Id), the control
 * API (bearer tokens, roles, pause/resume/promote/abort, rollback, feedback
 * JSON) and /metrics all see hostile bytes.
 *
 * The router comes from cairn__router_new(): no registry, no children;
 * every version is bound to a small upstream on the same loop that answers
 * infer requests like serve-model (a label derived from the body, or a 500
 * when the body says "boom"). Tokens: fuzz-read, fuzz-write, fuzz-promote,
 * fuzz-admin. Responses are drained and dropped. Must not crash, leak or
 * hang; prints nothing.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "cairn/common.h"
#include "socket_feed.h"
#include "serve/http.h"
#include "serve/router.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void upstream_handler(struct cairn_http_req *req, void *ud)
{
    char body[256];
    size_t plen = strlen(req->path);
    int n;
    (void)ud;
    if (plen >= 6 && !strcmp(req->path + plen - 6, "/ready")) {
        cairn_http_respond_simple(req, 200, "application/json", "{\"ready\":true}", 14);
        return;
    }
    if (req->body_len && memmem(req->body, req->body_len, "boom", 4)) {
        cairn_http_respond_simple(req, 500, "application/json", "{\"error\":\"boom\"}", 16);
        return;
    }
    n = snprintf(body, sizeof(body),
                 "{\"model_name\":\"m\",\"outputs\":[{\"name\":\"label\",\"shape\":[1],"
                 "\"datatype\":\"INT64\",\"data\":[%zu]}]}",
                 req->body_len % 3);
    cairn_http_respond_simple(req, 200, "application/json", body, (size_t)n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const tokens[4] = { "fuzz-read", "fuzz-write", "fuzz-promote",
                                           "fuzz-admin" };
    uv_loop_t loop;
    struct cairn_http_server *front = NULL, *up = NULL;
    struct cairn_http_server_opts o;
    struct router *r = NULL;
    char addr[64];
    int sv[2] = { -1, -1 };
    size_t step;

    if (size < 1)
        return 0;
    step = (size_t)(data[0] % 31) + 1;
    data++;
    size--;
    if (uv_loop_init(&loop) < 0)
        return 0;
    cairn_http_server_opts_init(&o);
    o.max_body = 4096;
    o.max_header_bytes = 2048;
    o.max_headers = 16;
    o.max_url = 256;
    o.idle_timeout_ms = o.header_timeout_ms = o.body_timeout_ms = 50;
    if (cairn_http_server_new(&up, &loop, "127.0.0.1:0", &o, upstream_handler, NULL) < 0)
        goto done;
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", cairn_http_server_port(up));
    if (cairn__router_new(&r, &loop, addr, tokens) < 0)
        goto done;
    if (cairn_http_server_new(&front, &loop, "127.0.0.1:0", &o, cairn__router_handle, r) < 0)
        goto done;
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        goto done;
    if (cairn__http_server_adopt(front, sv[0]) < 0)
        close(sv[0]);
    feed(&loop, sv[1], data, size, step, 16);
done:
    if (sv[1] >= 0)
        close(sv[1]);
    cairn_http_server_shutdown(front);
    cairn_http_server_shutdown(up);
    if (r)
        cairn__router_stop(r);
    uv_run(&loop, UV_RUN_DEFAULT);
    cairn__router_free(r);
    uv_loop_close(&loop);
    cairn_error_clear();
    return 0;
}
