/*
 * Fuzz target for the HTTP server (lib/serve/http.c): the input is sent
 * through a socketpair into a real server connection, cut into reads at
 * places chosen by the first input byte, so llhttp callbacks, header and
 * body limits, pipelining and answers given later (from a zero timer) all
 * see hostile bytes. The responses are drained and dropped. Must not crash,
 * leak or hang.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "cairn/common.h"
#include "socket_feed.h"
#include "serve/http.h"

struct later {
    uv_timer_t timer;
    struct cairn_http_req *req;
};

static void later_closed(uv_handle_t *h)
{
    free(h->data);
}

static void later_fire(uv_timer_t *t)
{
    struct later *l = t->data;
    cairn_http_respond_simple(l->req, 202, "text/plain", "later", 5);
    uv_close((uv_handle_t *)&l->timer, later_closed);
}

static void handler(struct cairn_http_req *req, void *ud)
{
    uv_loop_t *loop = ud;
    struct later *l;
    if (req->path[0] && req->path[1] == 'a' && (l = calloc(1, sizeof(*l)))) {
        l->req = req;
        uv_timer_init(loop, &l->timer);
        l->timer.data = l;
        uv_timer_start(&l->timer, later_fire, 0, 0);
        return;
    }
    cairn_http_respond_simple(req, 200, "text/plain", req->body, req->body_len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uv_loop_t loop;
    struct cairn_http_server *s = NULL;
    struct cairn_http_server_opts o;
    int sv[2];
    size_t step;

    if (size < 1)
        return 0;
    step = (size_t)(data[0] % 31) + 1;
    data++;
    size--;
    if (uv_loop_init(&loop) < 0)
        return 0;
    cairn_http_server_opts_init(&o);
    o.max_body = 512;
    o.max_header_bytes = 1024;
    o.max_headers = 16;
    o.max_url = 256;
    o.idle_timeout_ms = o.header_timeout_ms = o.body_timeout_ms = 50;
    if (cairn_http_server_new(&s, &loop, "127.0.0.1:0", &o, handler, &loop) < 0)
        goto done;
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
        cairn_http_server_shutdown(s);
        goto done;
    }
    if (cairn__http_server_adopt(s, sv[0]) < 0)
        close(sv[0]);
    feed(&loop, sv[1], data, size, step, 8);
    close(sv[1]);
    cairn_http_server_shutdown(s);
done:
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    cairn_error_clear();
    return 0;
}
