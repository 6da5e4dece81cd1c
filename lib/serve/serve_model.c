/*
 * serve-model: an OIP v2 server for one MLP; see serve_model.h.
 *
 * One loop, one HTTP server; the model is loaded and checked before the
 * server listens, so a file that cannot be served fails the start (exit 1,
 * the loader's message) and never prints "serving". Fault injection draws
 * from a seeded xorshift generator so a rollout test can count on the share
 * of failures it asked for; injected latency answers from a timer, so slow
 * answers do not stall other connections.
 */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "cairn/common.h"
#include "model/mlp.h"
#include "serve/http.h"
#include "serve/oip.h"
#include "serve/serve_model.h"
#include "util/buf.h"
#include "util/fs.h"

struct sm {
    uv_loop_t loop;
    struct cairn_http_server *srv;
    uv_signal_t sigint, sigterm;
    const char *dir, *name, *version;
    struct cairn_serve_model_opts opts;
    struct cairn_mlp *mlp;
    int ready;
    int load_error;
    char load_msg[512];
    uint64_t rng;
    size_t delayed; /* answers waiting on a latency timer */
};

struct delayed {
    uv_timer_t timer;
    struct cairn_http_req *req;
    int status;
    char *body;
    size_t len;
    struct sm *sm;
};

void cairn_serve_model_opts_init(struct cairn_serve_model_opts *o)
{
    memset(o, 0, sizeof(*o));
}

static double rng_unit(struct sm *s)
{
    /* xorshift64*: plenty for fault draws; never zero once seeded non-zero. */
    s->rng ^= s->rng >> 12;
    s->rng ^= s->rng << 25;
    s->rng ^= s->rng >> 27;
    return (double)((s->rng * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

static void body_free(void *p)
{
    free(p);
}

static void on_delayed_closed(uv_handle_t *h)
{
    free(h->data);
}

static void delayed_fire(uv_timer_t *t)
{
    struct delayed *d = t->data;
    struct cairn_http_response r = {
        d->status, "application/json", NULL, d->body, d->len, body_free
    };
    d->sm->delayed--;
    cairn_http_respond(d->req, &r);
    uv_close((uv_handle_t *)&d->timer, on_delayed_closed);
}

/* Send `b` as the JSON answer, now or after the injected latency. */
static void answer(struct sm *s, struct cairn_http_req *req, int status, struct cairn_buf *b,
                   int is_infer)
{
    struct delayed *d;
    if (is_infer && s->opts.extra_latency_ms && (d = calloc(1, sizeof(*d)))) {
        d->req = req;
        d->status = status;
        d->sm = s;
        d->body = cairn_buf_detach(b, &d->len);
        uv_timer_init(&s->loop, &d->timer);
        d->timer.data = d;
        uv_timer_start(&d->timer, delayed_fire, s->opts.extra_latency_ms, 0);
        s->delayed++;
        return;
    }
    cairn_http_respond_simple(req, status, "application/json", b->ptr ? b->ptr : "{}",
                              b->ptr ? b->len : 2);
}

static void answer_error(struct sm *s, struct cairn_http_req *req, int status, const char *msg,
                         int is_infer)
{
    struct cairn_buf b = CAIRN_BUF_INIT;
    if (cairn_oip_encode_error(&b, msg) < 0)
        cairn_buf_clear(&b);
    answer(s, req, status, &b, is_infer);
    cairn_buf_release(&b);
}

/* Replace the argmax of a row by another class, swapping their probabilities. */
static void make_wrong(struct sm *s, float *p, size_t classes, size_t *label)
{
    size_t other;
    float t;
    if (classes < 2)
        return;
    other = (*label + 1 + (size_t)(rng_unit(s) * (double)(classes - 1))) % classes;
    if (other == *label)
        other = (*label + 1) % classes;
    t = p[*label];
    p[*label] = p[other];
    p[other] = t;
    *label = other;
}

static void do_infer(struct sm *s, struct cairn_http_req *req)
{
    struct cairn_oip_request in;
    struct cairn_buf b = CAIRN_BUF_INIT;
    size_t classes = cairn_mlp_num_classes(s->mlp), feats = cairn_mlp_num_inputs(s->mlp);
    size_t max_rows = s->opts.max_rows ? s->opts.max_rows : 65536;
    float *probs = NULL;
    size_t *labels = NULL;
    const char **names = NULL;
    char msg[256];
    int error;

    if (s->opts.error_rate > 0 && rng_unit(s) < s->opts.error_rate) {
        answer_error(s, req, 500, "injected fault", 1);
        return;
    }
    if (cairn_oip_decode_infer(&in, req->body, req->body_len, max_rows * feats) < 0) {
        answer_error(s, req, 400, cairn_error_last(), 1);
        goto done;
    }
    if (in.cols != feats) {
        snprintf(msg, sizeof(msg), "model '%s' takes %zu features, the input has %zu", s->name,
                 feats, in.cols);
        answer_error(s, req, 400, msg, 1);
        goto done;
    }
    if (in.rows > max_rows) {
        snprintf(msg, sizeof(msg), "at most %zu rows per request", max_rows);
        answer_error(s, req, 400, msg, 1);
        goto done;
    }
    probs = malloc((in.rows ? in.rows : 1) * classes * sizeof(float));
    labels = malloc((in.rows ? in.rows : 1) * sizeof(size_t));
    if (!probs || !labels || cairn_mlp_infer(s->mlp, probs, in.data, in.rows) < 0) {
        answer_error(s, req, 500, "out of memory", 1);
        goto done;
    }
    for (size_t r = 0; r < in.rows; r++) {
        labels[r] = cairn_mlp_argmax(probs + r * classes, classes);
        if (s->opts.wrong_rate > 0 && rng_unit(s) < s->opts.wrong_rate)
            make_wrong(s, probs + r * classes, classes, &labels[r]);
    }
    if (cairn_mlp_class_label(s->mlp, 0)) {
        if (!(names = malloc(classes * sizeof(*names)))) {
            answer_error(s, req, 500, "out of memory", 1);
            goto done;
        }
        for (size_t c = 0; c < classes; c++)
            names[c] = cairn_mlp_class_label(s->mlp, c);
    }
    if ((error = cairn_oip_encode_infer(&b, s->name, s->version, in.id, probs, labels, in.rows,
                                        classes, names)) < 0) {
        /* A finite model overflows only on huge inputs: the request's fault, not the model's. */
        answer_error(s, req, error == CAIRN_EINVALID ? 422 : 500, cairn_error_last(), 1);
        goto done;
    }
    answer(s, req, 200, &b, 1);
done:
    free(names);
    free(probs);
    free(labels);
    cairn_oip_request_release(&in);
    cairn_buf_release(&b);
}

/* Match "/v2/models/NAME[/versions/V]" + `tail`; returns 1 and sets *known. */
static int match_model(struct sm *s, const char *path, const char *tail, int *known)
{
    const char *p = path + 11, *slash;
    size_t n;
    if (strncmp(path, "/v2/models/", 11))
        return 0;
    slash = strchr(p, '/');
    n = slash ? (size_t)(slash - p) : strlen(p);
    if (n == 0)
        return 0;
    *known = n == strlen(s->name) && !memcmp(p, s->name, n);
    p += n;
    if (!strncmp(p, "/versions/", 10)) {
        const char *v = p + 10, *e = strchr(v, '/');
        size_t vn = e ? (size_t)(e - v) : strlen(v);
        if (vn == 0)
            return 0;
        *known = *known && vn == strlen(s->version) && !memcmp(v, s->version, vn);
        p = v + vn;
    }
    return !strcmp(p, tail);
}

static void handler(struct cairn_http_req *req, void *ud)
{
    struct sm *s = ud;
    int get = !strcmp(req->method, "GET") || !strcmp(req->method, "HEAD");
    int post = !strcmp(req->method, "POST");
    int known = 0;
    struct cairn_buf b = CAIRN_BUF_INIT;

    if (!strcmp(req->path, "/v2/health/live")) {
        if (!get)
            goto method;
        cairn_http_respond_simple(req, 200, "application/json", "{\"live\":true}", 13);
    } else if (!strcmp(req->path, "/v2/health/ready")) {
        if (!get)
            goto method;
        if (s->ready)
            cairn_http_respond_simple(req, 200, "application/json", "{\"ready\":true}", 14);
        else
            cairn_http_respond_simple(req, 503, "application/json", "{\"ready\":false}", 15);
    } else if (!strcmp(req->path, "/v2")) {
        if (!get)
            goto method;
        cairn_http_respond_simple(req, 200, "application/json",
                                  "{\"name\":\"cairn-serve-model\",\"extensions\":[]}", 44);
    } else if (match_model(s, req->path, "/infer", &known)) {
        if (!post)
            goto method;
        if (!known)
            answer_error(s, req, 404, "unknown model", 0);
        else if (!s->ready)
            answer_error(s, req, 503, "model is loading", 0);
        else
            do_infer(s, req);
    } else if (match_model(s, req->path, "/ready", &known)) {
        if (!get)
            goto method;
        if (!known)
            answer_error(s, req, 404, "unknown model", 0);
        else
            cairn_http_respond_simple(req, s->ready ? 200 : 503, "application/json",
                                      s->ready ? "{\"ready\":true}" : "{\"ready\":false}",
                                      s->ready ? 14 : 15);
    } else if (match_model(s, req->path, "", &known)) {
        if (!get)
            goto method;
        if (!known)
            answer_error(s, req, 404, "unknown model", 0);
        else if (!s->ready)
            answer_error(s, req, 503, "model is loading", 0);
        else if (cairn_oip_encode_metadata(
                     &b, s->name, s->version, "cairn-mlp", cairn_mlp_num_inputs(s->mlp),
                     cairn_mlp_num_classes(s->mlp), cairn_mlp_class_label(s->mlp, 0) != NULL) < 0)
            answer_error(s, req, 500, "out of memory", 0);
        else
            answer(s, req, 200, &b, 0);
    } else {
        answer_error(s, req, 404, "not found", 0);
    }
    cairn_buf_release(&b);
    return;
method:
    answer_error(s, req, 405, "method not allowed", 0);
}

/* Load and check the model: before listening, so a bad file never says "serving". */
static void load_model(struct sm *s)
{
    if (s->opts.model_file) {
        struct cairn_buf path = CAIRN_BUF_INIT;
        if ((s->load_error = cairn_fs_join(&path, s->dir, s->opts.model_file)) == 0)
            s->load_error = cairn_mlp_load(&s->mlp, path.ptr);
        cairn_buf_release(&path);
    } else {
        s->load_error = cairn_mlp_load_dir(&s->mlp, s->dir);
    }
    if (s->load_error < 0)
        snprintf(s->load_msg, sizeof(s->load_msg), "%s", cairn_error_last());
}

static void stop(struct sm *s)
{
    if (!uv_is_closing((uv_handle_t *)&s->sigint)) {
        uv_close((uv_handle_t *)&s->sigint, NULL);
        uv_close((uv_handle_t *)&s->sigterm, NULL);
    }
    if (s->srv) {
        cairn_http_server_shutdown(s->srv);
        s->srv = NULL;
    }
}

static void on_signal(uv_signal_t *h, int signum)
{
    (void)signum;
    stop(h->data);
}

int cairn_serve_model_run(const char *model_dir, const char *model_name, const char *listen,
                          const struct cairn_serve_model_opts *opts)
{
    struct sm *s = calloc(1, sizeof(*s));
    struct cairn_http_server_opts ho;
    int error = 0, loop_ok = 0;

    if (!s)
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    if (opts)
        s->opts = *opts;
    if (!(s->opts.error_rate >= 0 && s->opts.error_rate <= 1) ||
        !(s->opts.wrong_rate >= 0 && s->opts.wrong_rate <= 1)) {
        error = cairn_error_set(CAIRN_EINVALID, "fault rates must lie between 0 and 1");
        goto done;
    }
    s->dir = model_dir;
    s->name = model_name;
    s->version = s->opts.version ? s->opts.version : "1";
    s->rng = s->opts.seed * 0x9e3779b97f4a7c15ULL + 0x2545f4914f6cdd1dULL;
    if (!s->rng)
        s->rng = 1;
    if (uv_loop_init(&s->loop) < 0) {
        error = cairn_error_set(CAIRN_ERROR, "cannot create an event loop");
        goto done;
    }
    loop_ok = 1;
    load_model(s);
    if (s->load_error < 0) {
        error = cairn_error_set(s->load_error, "%s", s->load_msg);
        goto done;
    }
    s->ready = 1;
    cairn_http_server_opts_init(&ho);
    ho.max_body = s->opts.max_body ? s->opts.max_body : (size_t)16 << 20;
    if ((error = cairn_http_server_new(&s->srv, &s->loop, listen, &ho, handler, s)) < 0)
        goto done;
    uv_signal_init(&s->loop, &s->sigint);
    uv_signal_init(&s->loop, &s->sigterm);
    s->sigint.data = s->sigterm.data = s;
    uv_signal_start(&s->sigint, on_signal, SIGINT);
    uv_signal_start(&s->sigterm, on_signal, SIGTERM);
    if (s->opts.on_listening)
        s->opts.on_listening(cairn_http_server_port(s->srv), s->opts.arg);
    uv_run(&s->loop, UV_RUN_DEFAULT);
done:
    if (loop_ok) {
        if (s->srv) {
            stop(s);
            uv_run(&s->loop, UV_RUN_DEFAULT);
        }
        uv_loop_close(&s->loop);
    }
    cairn_mlp_free(s->mlp);
    free(s);
    return error;
}
