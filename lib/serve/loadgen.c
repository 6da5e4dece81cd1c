/*
 * Open-loop OIP v2 load with delayed feedback labels (see loadgen.h).
 *
 * One libuv loop, one pooled client, one timer. Every tick (1000/rate ms,
 * between 1 and 20 ms) sends every request that has fallen due since the
 * start, so timer jitter never changes the offered rate, posts the labels
 * whose delay has passed, and checks for the end. Request slots come from a
 * fixed pool sized by `concurrency`; labels wait in a fixed ring.
 */
#include "serve/loadgen.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <uv.h>

#include "cairn/common.h"
#include "serve/http.h"
#include "serve/oip.h"
#include "serve/oipclient.h"

#define HIST_BUCKETS 1024
#define HIST_BASE    1.02
#define RID_MAX      128
#define MAX_STICKY   100000

void cairn_loadgen_opts_init(struct cairn_loadgen_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->sticky_keys = 100;
    o->concurrency = 256;
    o->timeout_ms = 10000;
    o->max_pending_feedback = 65536;
}

size_t cairn__loadgen_bucket(double ms)
{
    double us = ms * 1000.0;
    double b;
    if (!(us > 1.0))
        return 0;
    b = floor(log(us) / log(HIST_BASE));
    return b >= HIST_BUCKETS - 1 ? HIST_BUCKETS - 1 : (size_t)b;
}

double cairn__loadgen_bucket_ms(size_t b)
{
    return pow(HIST_BASE, (double)b + 0.5) / 1000.0;
}

static double hist_percentile(const uint32_t *h, double p)
{
    uint64_t total = 0, need, seen = 0;
    for (size_t b = 0; b < HIST_BUCKETS; b++)
        total += h[b];
    if (!total)
        return 0;
    need = (uint64_t)ceil(p / 100.0 * (double)total);
    if (need < 1)
        need = 1;
    for (size_t b = 0; b < HIST_BUCKETS; b++) {
        seen += h[b];
        if (seen >= need)
            return cairn__loadgen_bucket_ms(b);
    }
    return cairn__loadgen_bucket_ms(HIST_BUCKETS - 1);
}

struct lg;

struct slot {
    struct lg *g;
    struct slot *next_free;
    size_t row;
    size_t key;
    uint64_t t0;
    bool feedback; /* a feedback POST, not an inference request */
};

struct fb {
    uint64_t due;
    size_t row;
    char rid[RID_MAX];
};

struct lg {
    const struct cairn_loadgen_opts *o;
    uv_loop_t loop;
    uv_timer_t timer;
    struct cairn_http_client *client;
    struct cairn_oip_target target, fbtarget;
    struct cairn_oip_table t;
    struct cairn_buf body, headers, fbheaders, ver;
    struct slot *slots, *free_slots;
    size_t inflight, fb_inflight;
    struct fb *ring;
    size_t ring_cap, ring_head, ring_len;
    int32_t *sticky_ver; /* per key: version index + 1, 0 unseen, -1 split */
    uint64_t start, end_send, deadline, seq, total;
    bool sending_done;
    int fatal;
    struct cairn_loadgen_report *r;
};

static int oom(void)
{
    return cairn_error_set(CAIRN_ENOMEM, "out of memory");
}

static struct cairn_loadgen_version *version_of(struct lg *g, const char *name, size_t *idx)
{
    struct cairn_loadgen_report *r = g->r;
    size_t i;
    for (i = 0; i < r->nversions; i++)
        if (!strcmp(r->versions[i].version, name))
            break;
    if (i == r->nversions) {
        char *copy;
        if (r->nversions == CAIRN_LOADGEN_MAX_VERSIONS) {
            i = r->nversions - 1; /* more versions than slots: the last one takes the rest */
            goto found;
        }
        if (!(copy = strdup(name)))
            return NULL;
        memset(&r->versions[i], 0, sizeof(r->versions[i]));
        r->versions[i].version = copy;
        r->nversions++;
    }
found:
    *idx = i;
    return &r->versions[i];
}

static void count_status(struct cairn_loadgen_version *v, int status)
{
    size_t i;
    for (i = 0; i < v->nstatus; i++)
        if (v->status[i].status == status)
            break;
    if (i == v->nstatus) {
        if (v->nstatus == CAIRN_LOADGEN_MAX_STATUSES)
            i = v->nstatus - 1;
        else
            v->status[v->nstatus++] = (struct cairn_loadgen_status){ status, 0 };
    }
    v->status[i].count++;
}

static void release_slot(struct lg *g, struct slot *s)
{
    s->next_free = g->free_slots;
    g->free_slots = s;
}

struct pred1 {
    const char *label;
    bool correct;
};

static int on_pred(size_t row, const char *label, void *arg)
{
    struct pred1 *p = arg;
    (void)row;
    p->correct = !strcmp(label, p->label);
    return 0;
}

static void queue_feedback(struct lg *g, const char *rid, size_t row)
{
    struct fb *f;
    if (!g->o->feedback)
        return;
    if (!rid || !*rid || strlen(rid) >= RID_MAX) {
        g->r->fb_no_id++;
        return;
    }
    if (g->ring_len == g->ring_cap) {
        g->r->fb_dropped++;
        return;
    }
    f = &g->ring[(g->ring_head + g->ring_len) % g->ring_cap];
    f->due = uv_hrtime() + (uint64_t)(g->o->feedback_delay_s * 1e9);
    f->row = row;
    snprintf(f->rid, sizeof(f->rid), "%s", rid);
    g->ring_len++;
    g->r->fb_queued++;
}

static void on_infer(int error, const struct cairn_http_resp *resp, void *arg)
{
    struct slot *s = arg;
    struct lg *g = s->g;
    struct cairn_loadgen_version *v;
    double ms = (double)(uv_hrtime() - s->t0) / 1e6;
    const char *ver = NULL, *rid = NULL;
    size_t vi;

    g->inflight--;
    if (error < 0) {
        g->r->no_answer++;
        if (!(v = version_of(g, "", &vi))) {
            g->fatal = oom();
            goto out;
        }
        v->requests++;
        count_status(v, 0);
        goto out;
    }
    g->r->answered++;
    ver = cairn_http_header_find(resp->headers, resp->nheaders, "X-Cairn-Version");
    rid = cairn_http_header_find(resp->headers, resp->nheaders, "X-Request-Id");
    if (resp->status == 200) {
        struct pred1 p = { cairn_oip_table_label(&g->t, s->row), false };
        int rc = cairn_oip_parse_predictions(
            resp->body, resp->body_len, 1,
            g->o->match_index ? CAIRN_OIP_MATCH_INDEX : CAIRN_OIP_MATCH_AUTO, on_pred, &p, &g->ver);
        if (!ver)
            ver = g->ver.len ? g->ver.ptr : "unknown";
        if (!(v = version_of(g, ver, &vi))) {
            g->fatal = oom();
            goto out;
        }
        v->requests++;
        if (rc < 0) {
            v->bad_body++;
        } else {
            v->ok++;
            v->correct += p.correct;
            queue_feedback(g, rid, s->row);
        }
    } else {
        if (!(v = version_of(g, ver ? ver : "unknown", &vi))) {
            g->fatal = oom();
            goto out;
        }
        v->requests++;
        count_status(v, resp->status);
    }
    v->hist[cairn__loadgen_bucket(ms)]++;
    if (g->sticky_ver) {
        int32_t *k = &g->sticky_ver[s->key];
        if (*k == 0)
            *k = (int32_t)vi + 1;
        else if (*k > 0 && *k != (int32_t)vi + 1) {
            *k = -1;
            g->r->sticky_split++;
        }
    }
out:
    release_slot(g, s);
}

static void on_feedback(int error, const struct cairn_http_resp *resp, void *arg)
{
    struct slot *s = arg;
    struct lg *g = s->g;
    g->fb_inflight--;
    if (error == 0 && resp->status >= 200 && resp->status < 300) {
        g->r->fb_ok++;
    } else {
        g->r->fb_failed++;
        if (!g->r->fb_first_error) {
            char msg[300];
            if (error < 0)
                snprintf(msg, sizeof(msg), "no answer: %s", cairn_error_last());
            else
                snprintf(msg, sizeof(msg), "status %d: %.200s", resp->status,
                         resp->body ? resp->body : "");
            g->r->fb_first_error = strdup(msg);
        }
    }
    release_slot(g, s);
}

static int send_infer(struct lg *g)
{
    struct slot *s = g->free_slots;
    const char *hdr = g->headers.ptr;
    char key[64];
    int error;

    if (!s) {
        g->r->skipped++;
        g->seq++;
        return 0;
    }
    g->free_slots = s->next_free;
    s->g = g;
    s->feedback = false;
    s->row = (size_t)(g->seq % g->t.rows);
    s->key = g->o->sticky_header ? (size_t)(g->seq % g->o->sticky_keys) : 0;
    g->seq++;
    cairn_buf_clear(&g->body);
    if ((error =
             cairn_oip_encode_rows(&g->body, NULL, g->o->input_name ? g->o->input_name : "input",
                                   g->t.x + s->row * g->t.cols, 1, g->t.cols)) < 0)
        goto fail;
    if (g->o->sticky_header) {
        size_t keep = g->headers.len;
        snprintf(key, sizeof(key), "user-%zu", s->key);
        if ((error = cairn_buf_printf(&g->headers, "%s: %s\r\n", g->o->sticky_header, key)) < 0)
            goto fail;
        hdr = g->headers.ptr;
        s->t0 = uv_hrtime();
        error = cairn_http_client_request(g->client, g->target.addr, "POST", g->target.path, hdr,
                                          g->body.ptr, g->body.len, g->o->timeout_ms, on_infer, s);
        g->headers.len = keep;
        g->headers.ptr[keep] = '\0';
    } else {
        s->t0 = uv_hrtime();
        error = cairn_http_client_request(g->client, g->target.addr, "POST", g->target.path, hdr,
                                          g->body.ptr, g->body.len, g->o->timeout_ms, on_infer, s);
    }
    if (error < 0)
        goto fail;
    g->inflight++;
    g->r->sent++;
    return 0;
fail:
    release_slot(g, s);
    return error;
}

static int send_feedback(struct lg *g, const struct fb *f)
{
    struct slot *s = g->free_slots;
    const char *label = cairn_oip_table_label(&g->t, f->row);
    const char *p = label[0] == '-' ? label + 1 : label;
    int error;

    if (!s)
        return 1; /* no slot now: try again next tick */
    g->free_slots = s->next_free;
    s->g = g;
    s->feedback = true;
    cairn_buf_clear(&g->body);
    if ((error = cairn_buf_puts(&g->body, "{\"request_id\":")) < 0 ||
        (error = cairn_json_put_string(&g->body, f->rid)) < 0 ||
        (error = cairn_buf_puts(&g->body, ",\"label\":")) < 0)
        goto fail;
    /* Integer labels go as JSON numbers, anything else as a string. */
    if (*p && strspn(p, "0123456789") == strlen(p) && strlen(p) < 19)
        error = cairn_buf_puts(&g->body, label);
    else
        error = cairn_json_put_string(&g->body, label);
    if (error < 0 || (error = cairn_buf_putc(&g->body, '}')) < 0)
        goto fail;
    if ((error = cairn_http_client_request(g->client, g->fbtarget.addr, "POST", g->fbtarget.path,
                                           g->fbheaders.ptr, g->body.ptr, g->body.len,
                                           g->o->timeout_ms, on_feedback, s)) < 0)
        goto fail;
    g->fb_inflight++;
    g->r->fb_sent++;
    return 0;
fail:
    release_slot(g, s);
    return error;
}

static void on_tick(uv_timer_t *t)
{
    struct lg *g = t->data;
    uint64_t now = uv_hrtime();
    int error = 0;

    if (g->o->stop && *g->o->stop) {
        g->sending_done = true;
        g->deadline = now; /* a stop request ends the run now */
    }
    if (!g->sending_done) {
        double el = (double)(now - g->start) / 1e9;
        uint64_t due = (uint64_t)floor(el * g->o->rate) + 1;
        if (due > g->total)
            due = g->total;
        while (g->r->scheduled < due && error == 0) {
            g->r->scheduled++;
            error = send_infer(g);
        }
        if (now >= g->end_send || g->r->scheduled >= g->total) {
            g->sending_done = true;
            g->end_send = now;
        }
    }
    while (error == 0 && g->ring_len > 0 && g->ring[g->ring_head].due <= now) {
        int rc = send_feedback(g, &g->ring[g->ring_head]);
        if (rc > 0)
            break;
        error = rc;
        if (rc == 0) {
            g->ring_head = (g->ring_head + 1) % g->ring_cap;
            g->ring_len--;
        }
    }
    if (error < 0 && !g->fatal)
        g->fatal = error;
    if (g->fatal || now >= g->deadline ||
        (g->sending_done && g->inflight == 0 && g->fb_inflight == 0 && g->ring_len == 0)) {
        g->r->fb_unsent = g->ring_len;
        uv_timer_stop(&g->timer);
        uv_stop(&g->loop);
    }
}

void cairn_loadgen_report_free(struct cairn_loadgen_report *r)
{
    if (!r)
        return;
    free(r->url);
    free(r->feedback_url);
    free(r->fb_first_error);
    for (size_t i = 0; i < r->nversions; i++)
        free(r->versions[i].version);
    free(r->versions);
    free(r);
}

static int check_opts(const struct cairn_loadgen_opts *o)
{
    if (!o->url || !o->data_path)
        return cairn_error_set(CAIRN_EINVALID, "a URL and a dataset are required");
    if (!(o->rate > 0 && o->rate <= 100000))
        return cairn_error_set(CAIRN_EINVALID, "rate %g out of range (0, 100000]", o->rate);
    if (!(o->duration_s > 0 && o->duration_s <= 86400))
        return cairn_error_set(CAIRN_EINVALID, "duration %g out of range (0, 86400]",
                               o->duration_s);
    if (!(o->feedback_delay_s >= 0 && o->feedback_delay_s <= 3600))
        return cairn_error_set(CAIRN_EINVALID, "feedback delay %g out of range [0, 3600]",
                               o->feedback_delay_s);
    if (o->concurrency > 65536 || o->sticky_keys > MAX_STICKY ||
        o->max_pending_feedback > ((size_t)1 << 24))
        return cairn_error_set(CAIRN_EINVALID, "concurrency, sticky keys or queue out of range");
    if (o->sticky_header && (!*o->sticky_header || strpbrk(o->sticky_header, ":\r\n ")))
        return cairn_error_set(CAIRN_EINVALID, "bad header name '%s'", o->sticky_header);
    if (o->token && strpbrk(o->token, "\r\n"))
        return cairn_error_set(CAIRN_EINVALID, "bad token");
    return 0;
}

int cairn_loadgen_run(struct cairn_loadgen_report **out, const struct cairn_loadgen_opts *opts)
{
    struct cairn_loadgen_opts o = *opts;
    struct cairn_http_client_opts copts;
    struct lg *g;
    bool loop_ok = false, timer_ok = false;
    size_t nslots;
    uint64_t tick_ms, grace_ms;
    int error;

    *out = NULL;
    if (!o.sticky_keys)
        o.sticky_keys = 100;
    if (!o.concurrency)
        o.concurrency = 256;
    if (!o.timeout_ms)
        o.timeout_ms = 10000;
    if (!o.max_pending_feedback)
        o.max_pending_feedback = 65536;
    if ((error = check_opts(&o)) < 0)
        return error;
    if (!(g = calloc(1, sizeof(*g))) || !(g->r = calloc(1, sizeof(*g->r)))) {
        free(g);
        return oom();
    }
    g->o = &o;
    if (!(g->r->versions = calloc(CAIRN_LOADGEN_MAX_VERSIONS, sizeof(*g->r->versions)))) {
        error = oom();
        goto done;
    }
    g->r->rate = o.rate;
    g->r->duration_s = o.duration_s;
    if ((error = cairn_oip_target_parse(&g->target, o.url, o.model)) < 0)
        goto done;
    if ((error = cairn_buf_printf(&g->body, "%s%s", g->target.origin, g->target.path)) < 0)
        goto done;
    g->r->url = cairn_buf_detach(&g->body, NULL);
    if (o.feedback) {
        struct cairn_buf u = CAIRN_BUF_INIT;
        if (o.feedback_url)
            error = cairn_oip_url_resolve(&g->fbtarget, o.feedback_url);
        else if ((error = cairn_buf_printf(&u, "%s/api/v1/feedback", g->target.origin)) == 0)
            error = cairn_oip_url_resolve(&g->fbtarget, u.ptr);
        cairn_buf_release(&u);
        if (error < 0)
            goto done;
        if ((error = cairn_buf_printf(&u, "%s%s", g->fbtarget.origin, g->fbtarget.path)) < 0)
            goto done;
        g->r->feedback_url = cairn_buf_detach(&u, NULL);
        if ((error = cairn_buf_puts(&g->fbheaders, "Content-Type: application/json\r\n")) < 0 ||
            (o.token && (error = cairn_buf_printf(&g->fbheaders, "Authorization: Bearer %s\r\n",
                                                  o.token)) < 0))
            goto done;
        g->ring_cap = o.max_pending_feedback;
        if (!(g->ring = malloc(g->ring_cap * sizeof(*g->ring)))) {
            error = oom();
            goto done;
        }
    }
    if ((error = cairn_buf_puts(&g->headers, "Content-Type: application/json\r\n")) < 0)
        goto done;
    if ((error = cairn_oip_table_load(&g->t, o.data_path, o.label_column, 0)) < 0)
        goto done;
    if (o.sticky_header && !(g->sticky_ver = calloc(o.sticky_keys, sizeof(int32_t)))) {
        error = oom();
        goto done;
    }
    /* Inference and feedback share the pool: twice the in-flight cap. */
    nslots = o.concurrency * 2;
    if (!(g->slots = calloc(nslots, sizeof(*g->slots)))) {
        error = oom();
        goto done;
    }
    for (size_t i = 0; i < nslots; i++)
        release_slot(g, &g->slots[nslots - 1 - i]);

    if (uv_loop_init(&g->loop) != 0) {
        error = cairn_error_set(CAIRN_ERROR, "cannot start an event loop");
        goto done;
    }
    loop_ok = true;
    cairn_http_client_opts_init(&copts);
    copts.max_conns_per_upstream = o.concurrency;
    copts.max_body = (size_t)16 << 20;
    if ((error = cairn_http_client_new(&g->client, &g->loop, &copts)) < 0)
        goto done;
    uv_timer_init(&g->loop, &g->timer);
    timer_ok = true;
    g->timer.data = g;
    tick_ms = (uint64_t)(1000.0 / o.rate);
    tick_ms = tick_ms < 1 ? 1 : tick_ms > 20 ? 20 : tick_ms;
    grace_ms = o.timeout_ms;
    if (o.feedback && (uint64_t)(o.feedback_delay_s * 1000) > grace_ms)
        grace_ms = (uint64_t)(o.feedback_delay_s * 1000);
    g->total = (uint64_t)ceil(o.rate * o.duration_s);
    g->start = uv_hrtime();
    g->end_send = g->start + (uint64_t)(o.duration_s * 1e9);
    g->deadline = g->end_send + (grace_ms + 1000) * 1000000ULL;
    uv_timer_start(&g->timer, on_tick, 0, tick_ms);
    uv_run(&g->loop, UV_RUN_DEFAULT);
    g->r->elapsed_s = (double)(g->end_send - g->start) / 1e9;
    error = g->fatal;
done:
    /* Requests still in flight at the deadline fail here and are counted as unanswered. */
    if (g->client)
        cairn_http_client_free(g->client);
    if (timer_ok)
        uv_close((uv_handle_t *)&g->timer, NULL);
    if (loop_ok) {
        uv_run(&g->loop, UV_RUN_DEFAULT);
        uv_loop_close(&g->loop);
    }
    for (size_t i = 0; error == 0 && i < g->r->nversions; i++) {
        struct cairn_loadgen_version *v = &g->r->versions[i];
        v->accuracy = v->ok ? (double)v->correct / (double)v->ok : 0;
        v->latency_p50_ms = hist_percentile(v->hist, 50);
        v->latency_p99_ms = hist_percentile(v->hist, 99);
    }
    if (error == 0 && g->fatal)
        error = g->fatal;
    cairn_oip_target_release(&g->target);
    cairn_oip_target_release(&g->fbtarget);
    cairn_oip_table_release(&g->t);
    cairn_buf_release(&g->body);
    cairn_buf_release(&g->headers);
    cairn_buf_release(&g->fbheaders);
    cairn_buf_release(&g->ver);
    free(g->slots);
    free(g->ring);
    free(g->sticky_ver);
    if (error < 0)
        cairn_loadgen_report_free(g->r);
    else
        *out = g->r;
    free(g);
    return error;
}

int cairn_loadgen_report_json(char **out, const struct cairn_loadgen_report *r)
{
    json_t *root = json_object(), *vers = json_array(), *fb;
    int error = 0;

    *out = NULL;
    if (!root || !vers) {
        json_decref(root);
        json_decref(vers);
        return oom();
    }
    json_object_set_new(root, "url", json_string(r->url));
    json_object_set_new(root, "rate", json_real(r->rate));
    json_object_set_new(root, "duration_s", json_real(r->duration_s));
    json_object_set_new(root, "elapsed_s", json_real(r->elapsed_s));
    json_object_set_new(root, "scheduled", json_integer((json_int_t)r->scheduled));
    json_object_set_new(root, "sent", json_integer((json_int_t)r->sent));
    json_object_set_new(root, "skipped", json_integer((json_int_t)r->skipped));
    json_object_set_new(root, "answered", json_integer((json_int_t)r->answered));
    json_object_set_new(root, "no_answer", json_integer((json_int_t)r->no_answer));
    json_object_set_new(root, "sticky_split", json_integer((json_int_t)r->sticky_split));
    for (size_t i = 0; i < r->nversions; i++) {
        const struct cairn_loadgen_version *v = &r->versions[i];
        json_t *st = json_object();
        for (size_t j = 0; j < v->nstatus; j++) {
            char k[16];
            if (v->status[j].status)
                snprintf(k, sizeof(k), "%d", v->status[j].status);
            else
                snprintf(k, sizeof(k), "no_answer");
            json_object_set_new(st, k, json_integer((json_int_t)v->status[j].count));
        }
        if (v->bad_body)
            json_object_set_new(st, "bad_body", json_integer((json_int_t)v->bad_body));
        json_array_append_new(
            vers, json_pack("{s:s?, s:I, s:I, s:o, s:I, s:f, s:f, s:f}", "version",
                            *v->version ? v->version : NULL, "requests", (json_int_t)v->requests,
                            "ok", (json_int_t)v->ok, "errors", st, "correct",
                            (json_int_t)v->correct, "accuracy", v->accuracy, "latency_p50_ms",
                            v->latency_p50_ms, "latency_p99_ms", v->latency_p99_ms));
    }
    json_object_set_new(root, "versions", vers);
    fb = json_pack("{s:s?, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:s?}", "url", r->feedback_url,
                   "queued", (json_int_t)r->fb_queued, "sent", (json_int_t)r->fb_sent, "ok",
                   (json_int_t)r->fb_ok, "failed", (json_int_t)r->fb_failed, "dropped",
                   (json_int_t)r->fb_dropped, "unsent", (json_int_t)r->fb_unsent, "no_id",
                   (json_int_t)r->fb_no_id, "first_error", r->fb_first_error);
    json_object_set_new(root, "feedback", fb ? fb : json_null());
    if (!(*out = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(10))))
        error = oom();
    json_decref(root);
    return error;
}
