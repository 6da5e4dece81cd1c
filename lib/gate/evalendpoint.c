/*
 * `cairn eval --endpoint`: score a labelled dataset against an OIP v2 model
 * server (include/cairn/evalep.h, docs/eval.md).
 *
 * The dataset is loaded into memory once (capped by max_elements) because
 * the perturbed pass needs each column's standard deviation before the
 * first noisy row is sent, and because rows are re-sent in batches. The
 * requests go out on a private libuv loop through the pooled keep-alive
 * client, `concurrency` at a time: the next batch is queued the moment an
 * answer arrives, so the server never idles between requests and latency
 * is measured per request from queueing to the last byte of the answer.
 *
 * Predictions are recorded per row as an index into one map of class names
 * (true labels first, then new predictions), and the confusion matrix is
 * built once at the end over the classes sorted (numerically when every
 * name is an integer).
 */
#include "gate/evalendpoint.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include "data/schema.h"
#include "serve/http.h"
#include "serve/oipclient.h"
#include "util/buf.h"
#include "util/fs.h"

#define MAX_ERROR_STATUSES 64

void cairn_evalep_opts_init(struct cairn_evalep_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->batch_size = CAIRN_EVALEP_DEFAULT_BATCH;
    o->concurrency = CAIRN_EVALEP_DEFAULT_CONCURRENCY;
    o->timeout_ms = CAIRN_EVALEP_DEFAULT_TIMEOUT_MS;
    o->seed = 1;
}

int cairn_evalep_parse_perturb(double *sigma_out, const char *spec)
{
    double v;
    const char *p = "gaussian:";
    if (strncmp(spec, p, strlen(p)) != 0 ||
        cairn__parse_float(&v, spec + strlen(p), strlen(spec + strlen(p))) < 0 || !isfinite(v) ||
        v <= 0 || v > 100)
        return cairn_error_set(
            CAIRN_EINVALID, "bad perturbation '%s': expected gaussian:S with 0 < S <= 100", spec);
    *sigma_out = v;
    return 0;
}

/* ---- arithmetic ---- */

void cairn__evalep_scores(struct cairn_evalep_class *classes, size_t k, const uint64_t *confusion,
                          double *accuracy, double *precision_macro, double *recall_macro,
                          double *f1_macro)
{
    uint64_t total = 0, correct = 0;
    double ps = 0, rs = 0, fs = 0;

    for (size_t c = 0; c < k; c++) {
        classes[c].support = classes[c].predicted = 0;
        classes[c].tp = confusion[c * k + c];
    }
    for (size_t t = 0; t < k; t++)
        for (size_t p = 0; p < k; p++) {
            uint64_t v = confusion[t * k + p];
            classes[t].support += v;
            classes[p].predicted += v;
            total += v;
            if (t == p)
                correct += v;
        }
    for (size_t c = 0; c < k; c++) {
        struct cairn_evalep_class *e = &classes[c];
        e->precision = e->predicted ? (double)e->tp / (double)e->predicted : 0;
        e->recall = e->support ? (double)e->tp / (double)e->support : 0;
        e->f1 = e->precision + e->recall > 0
                    ? 2 * e->precision * e->recall / (e->precision + e->recall)
                    : 0;
        ps += e->precision;
        rs += e->recall;
        fs += e->f1;
    }
    *accuracy = total ? (double)correct / (double)total : 0;
    *precision_macro = k ? ps / (double)k : 0;
    *recall_macro = k ? rs / (double)k : 0;
    *f1_macro = k ? fs / (double)k : 0;
}

double cairn__percentile(const double *sorted, size_t n, double p)
{
    double r;
    size_t i;
    if (n == 0)
        return 0;
    r = ceil(p / 100.0 * (double)n);
    i = r < 1 ? 0 : (size_t)r - 1;
    return sorted[i < n ? i : n - 1];
}

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A uniform double in (0, 1): 53 random bits, centred in their cell. */
static double uniform(uint64_t *s)
{
    return ((double)(splitmix64(s) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

void cairn__evalep_perturb(float *x, size_t rows, size_t cols, double sigma, uint64_t seed)
{
    uint64_t s = seed;
    double *sd = calloc(cols ? cols : 1, sizeof(double));
    if (!sd || rows == 0) {
        free(sd);
        return;
    }
    /* Two passes per column (mean, then squared deviations): exact enough in double. */
    for (size_t j = 0; j < cols; j++) {
        double mean = 0, ss = 0;
        for (size_t i = 0; i < rows; i++)
            mean += x[i * cols + j];
        mean /= (double)rows;
        for (size_t i = 0; i < rows; i++) {
            double d = x[i * cols + j] - mean;
            ss += d * d;
        }
        sd[j] = sqrt(ss / (double)rows);
    }
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < cols; j++) {
            double u1 = uniform(&s), u2 = uniform(&s);
            double z = sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
            double v = x[i * cols + j] + sigma * sd[j] * z;
            if (v > FLT_MAX)
                v = FLT_MAX;
            if (v < -FLT_MAX)
                v = -FLT_MAX;
            x[i * cols + j] = (float)v;
        }
    free(sd);
}

/*
 * Wait until the model says it is ready (OIP's GET .../ready answers 200),
 * for at most `timeout_ms`. A server that has just started listens before
 * its model is loaded and answers 503 "model is loading" meanwhile; those
 * answers would count as errors and skew every metric. Only a 503 is waited
 * out: a server without the endpoint (404), an unreachable one or any other
 * answer goes on to the measurement, which reports what goes wrong.
 */
static void wait_ready(const struct cairn_oip_target *target, const char *extra_headers,
                       uint64_t timeout_ms)
{
    struct cairn_buf url = CAIRN_BUF_INIT;
    size_t plen = strlen(target->path);
    double deadline = cairn_time_monotonic() + (double)timeout_ms / 1e3;

    if (plen < 6 || strcmp(target->path + plen - 6, "/infer") ||
        cairn_buf_printf(&url, "%s%.*s/ready", target->origin, (int)(plen - 6), target->path) < 0)
        goto done;
    for (;;) {
        struct cairn_http_result res;
        int status = 0;
        if (cairn_http_request_sync(&res, url.ptr, "GET", extra_headers, NULL, 0, 2000) == 0) {
            status = res.status;
            cairn_http_result_release(&res);
        }
        if (status != 503 || cairn_time_monotonic() > deadline)
            break;
        usleep(50 * 1000);
    }
done:
    cairn_error_clear();
    cairn_buf_release(&url);
}

/* ---- one pass over the rows ---- */

struct pass;

struct req {
    struct pass *p;
    size_t batch;
    uint64_t t0;
};

struct pass {
    uv_loop_t *loop;
    struct cairn_http_client *client;
    const struct cairn_oip_target *target;
    const struct cairn_evalep_opts *o;
    const char *headers;
    const float *x;
    const struct cairn_oip_table *t;
    struct cairn__strmap *classes; /* grows with new predictions when `learn` */
    bool learn;
    int32_t *pred; /* per row: class index, -1 no answer, -2 unknown class */
    size_t batch, nbatches, next, inflight;
    struct req *reqs;
    double *lat_ms;
    size_t nlat;
    uint64_t rows_done, rows_failed, errors, correct;
    struct cairn_evalep_status_count status[MAX_ERROR_STATUSES];
    size_t nstatus;
    char *first_error;
    int fatal;
    struct cairn_buf body;
    uint64_t t_start, t_end;
    bool progress;
};

static void count_status(struct pass *p, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void count_status(struct pass *p, int status, const char *fmt, ...)
{
    size_t i;
    for (i = 0; i < p->nstatus; i++)
        if (p->status[i].status == status)
            break;
    if (i == p->nstatus && p->nstatus < MAX_ERROR_STATUSES)
        p->status[p->nstatus++] = (struct cairn_evalep_status_count){ status, 0 };
    if (i < p->nstatus)
        p->status[i].count++;
    if (!p->first_error) {
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        p->first_error = strdup(msg);
    }
}

static int submit(struct pass *p);

struct pred_ctx {
    struct pass *p;
    size_t first;
};

static int on_pred(size_t row, const char *label, void *arg)
{
    struct pred_ctx *c = arg;
    struct pass *p = c->p;
    size_t r = c->first + row, idx;
    bool inserted;
    ssize_t f;

    if (p->learn) {
        if (cairn__strmap_add(p->classes, &idx, &inserted, label, strlen(label)) < 0)
            return cairn_error_set(CAIRN_ENOMEM, "more than %d classes", CAIRN_EVALEP_MAX_CLASSES);
        p->pred[r] = (int32_t)idx;
    } else {
        f = cairn__strmap_find(p->classes, label, strlen(label));
        p->pred[r] = f < 0 ? -2 : (int32_t)f;
    }
    if (!strcmp(label, cairn_oip_table_label(p->t, r)))
        p->correct++;
    return 0;
}

static void on_answer(int error, const struct cairn_http_resp *resp, void *arg)
{
    struct req *q = arg;
    struct pass *p = q->p;
    size_t first = q->batch * p->batch;
    size_t n = first + p->batch > p->t->rows ? p->t->rows - first : p->batch;
    uint64_t now = uv_hrtime();

    p->inflight--;
    p->t_end = now;
    if (error < 0) {
        count_status(p, 0, "no answer from '%s%s': %s", p->target->origin, p->target->path,
                     cairn_error_last());
        p->errors++;
        p->rows_failed += n;
    } else if (resp->status != 200) {
        count_status(p, resp->status, "'%s%s' answered %d: %.200s", p->target->origin,
                     p->target->path, resp->status, resp->body ? resp->body : "");
        p->errors++;
        p->rows_failed += n;
    } else {
        struct pred_ctx c = { p, first };
        int rc = cairn_oip_parse_predictions(
            resp->body, resp->body_len, n,
            p->o->match_index ? CAIRN_OIP_MATCH_INDEX : CAIRN_OIP_MATCH_AUTO, on_pred, &c, NULL);
        if (rc == CAIRN_ENOMEM) {
            p->fatal = rc;
        } else if (rc < 0) {
            count_status(p, -1, "bad answer from '%s%s': %s", p->target->origin, p->target->path,
                         cairn_error_last());
            p->errors++;
            p->rows_failed += n;
            for (size_t i = 0; i < n; i++)
                p->pred[first + i] = -1;
        } else {
            p->lat_ms[p->nlat++] = (double)(now - q->t0) / 1e6;
            p->rows_done += n;
        }
    }
    if (p->progress && p->o->progress)
        p->o->progress(p->rows_done + p->rows_failed, p->t->rows, p->o->progress_arg);
    if (!p->fatal && p->next < p->nbatches)
        p->fatal = submit(p);
    if (p->inflight == 0)
        uv_stop(p->loop);
}

static int submit(struct pass *p)
{
    struct req *q = &p->reqs[p->next];
    size_t first = p->next * p->batch;
    size_t n = first + p->batch > p->t->rows ? p->t->rows - first : p->batch;
    int error;

    q->p = p;
    q->batch = p->next;
    cairn_buf_clear(&p->body);
    if ((error =
             cairn_oip_encode_rows(&p->body, NULL, p->o->input_name ? p->o->input_name : "input",
                                   p->x + first * p->t->cols, n, p->t->cols)) < 0)
        return error;
    q->t0 = uv_hrtime();
    if ((error = cairn_http_client_request(p->client, p->target->addr, "POST", p->target->path,
                                           p->headers, p->body.ptr, p->body.len, p->o->timeout_ms,
                                           on_answer, q)) < 0)
        return error;
    p->next++;
    p->inflight++;
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int run_pass(struct pass *p)
{
    int error = 0;

    p->nbatches = (p->t->rows + p->batch - 1) / p->batch;
    p->reqs = calloc(p->nbatches, sizeof(*p->reqs));
    p->lat_ms = calloc(p->nbatches, sizeof(double));
    p->pred = malloc(p->t->rows * sizeof(int32_t));
    if (!p->reqs || !p->lat_ms || !p->pred)
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    for (size_t i = 0; i < p->t->rows; i++)
        p->pred[i] = -1;
    p->t_start = p->t_end = uv_hrtime();
    while (p->next < p->nbatches && p->inflight < p->o->concurrency)
        if ((error = submit(p)) < 0)
            break;
    if (p->inflight > 0)
        uv_run(p->loop, UV_RUN_DEFAULT);
    if (error == 0)
        error = p->fatal;
    if (error == 0 && p->rows_done == 0)
        error = cairn_error_set(CAIRN_ERROR, "every request failed: %s",
                                p->first_error ? p->first_error : "no answer");
    qsort(p->lat_ms, p->nlat, sizeof(double), cmp_double);
    return error;
}

static void pass_release(struct pass *p)
{
    free(p->reqs);
    free(p->lat_ms);
    free(p->pred);
    free(p->first_error);
    cairn_buf_release(&p->body);
}

/* ---- results ---- */

void cairn_evalep_result_free(struct cairn_evalep_result *r)
{
    if (!r)
        return;
    free(r->url);
    free(r->error_status);
    free(r->first_error);
    for (size_t i = 0; i < r->nclasses; i++)
        free(r->classes[i].name);
    free(r->classes);
    free(r->confusion);
    free(r);
}

struct sort_ctx {
    const struct cairn__strmap *m;
    bool numeric;
};
/* qsort has no user pointer: the context of the sort under way on this thread. */
static _Thread_local struct sort_ctx *sort_ctx;

static int cmp_class(const void *a, const void *b)
{
    const char *x = cairn__strmap_key(sort_ctx->m, *(const size_t *)a);
    const char *y = cairn__strmap_key(sort_ctx->m, *(const size_t *)b);
    if (sort_ctx->numeric) {
        long long u = strtoll(x, NULL, 10), v = strtoll(y, NULL, 10);
        return (u > v) - (u < v);
    }
    return strcmp(x, y);
}

static bool is_integer(const char *s)
{
    if (*s == '-')
        s++;
    return *s && strspn(s, "0123456789") == strlen(s) && strlen(s) < 19;
}

/* Build classes (sorted) and the confusion matrix from the first pass. */
static int build_confusion(struct cairn_evalep_result *r, const struct pass *p,
                           const struct cairn__strmap *m, const size_t *label_idx)
{
    size_t k = m->n, *order = NULL, *rank = NULL;
    struct sort_ctx sc = { m, true };
    int error = 0;

    order = malloc((k ? k : 1) * sizeof(size_t));
    rank = malloc((k ? k : 1) * sizeof(size_t));
    r->classes = calloc(k ? k : 1, sizeof(*r->classes));
    r->confusion = calloc(k ? k * k : 1, sizeof(uint64_t));
    if (!order || !rank || !r->classes || !r->confusion) {
        error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < k; i++) {
        order[i] = i;
        if (!is_integer(cairn__strmap_key(m, i)))
            sc.numeric = false;
    }
    sort_ctx = &sc;
    qsort(order, k, sizeof(size_t), cmp_class);
    sort_ctx = NULL;
    for (size_t i = 0; i < k; i++) {
        rank[order[i]] = i;
        if (!(r->classes[i].name = strdup(cairn__strmap_key(m, order[i])))) {
            error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
            goto done;
        }
    }
    r->nclasses = k;
    for (size_t row = 0; row < p->t->rows; row++)
        if (p->pred[row] >= 0)
            r->confusion[rank[label_idx[row]] * k + rank[p->pred[row]]]++;
    cairn__evalep_scores(r->classes, k, r->confusion, &r->accuracy, &r->precision_macro,
                         &r->recall_macro, &r->f1_macro);
done:
    free(order);
    free(rank);
    return error;
}

int cairn_evalep_run(struct cairn_evalep_result **out, const char *data_path, const char *url,
                     const struct cairn_evalep_opts *opts)
{
    struct cairn_evalep_opts o;
    struct cairn_oip_target target;
    struct cairn_oip_table t;
    struct cairn__strmap classes;
    struct cairn_evalep_result *r = NULL;
    struct cairn_http_client_opts copts;
    struct cairn_http_client *client = NULL;
    struct cairn_buf headers = CAIRN_BUF_INIT;
    struct pass p1, p2;
    size_t *label_idx = NULL;
    float *noisy = NULL;
    uv_loop_t loop;
    bool loop_ok = false;
    int error;

    *out = NULL;
    memset(&p1, 0, sizeof(p1));
    memset(&p2, 0, sizeof(p2));
    memset(&t, 0, sizeof(t));
    memset(&target, 0, sizeof(target));
    cairn__strmap_init(&classes, CAIRN_EVALEP_MAX_CLASSES, 0);
    if (opts)
        o = *opts;
    else
        cairn_evalep_opts_init(&o);
    if (!o.batch_size)
        o.batch_size = CAIRN_EVALEP_DEFAULT_BATCH;
    if (!o.concurrency)
        o.concurrency = CAIRN_EVALEP_DEFAULT_CONCURRENCY;
    if (!o.timeout_ms)
        o.timeout_ms = CAIRN_EVALEP_DEFAULT_TIMEOUT_MS;
    if (o.batch_size > CAIRN_EVALEP_MAX_BATCH || o.concurrency > CAIRN_EVALEP_MAX_CONCURRENCY)
        return cairn_error_set(CAIRN_EINVALID, "batch size %zu or concurrency %zu out of range",
                               o.batch_size, o.concurrency);
    if (!(o.perturb_sigma >= 0) || o.perturb_sigma > 100)
        return cairn_error_set(CAIRN_EINVALID, "perturbation sigma out of range");

    if ((error = cairn_oip_target_parse(&target, url, o.model)) < 0)
        goto done;
    if ((error = cairn_oip_table_load(&t, data_path, o.label_column, o.max_elements)) < 0)
        goto done;
    if (!(label_idx = malloc(t.rows * sizeof(size_t)))) {
        error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < t.rows; i++) {
        bool ins;
        const char *l = cairn_oip_table_label(&t, i);
        if (cairn__strmap_add(&classes, &label_idx[i], &ins, l, strlen(l)) < 0) {
            error = cairn_error_set(CAIRN_EINVALID, "'%s' has more than %d classes", data_path,
                                    CAIRN_EVALEP_MAX_CLASSES);
            goto done;
        }
    }
    if ((error = cairn_buf_puts(&headers, "Content-Type: application/json\r\n")) < 0 ||
        (o.extra_headers && (error = cairn_buf_puts(&headers, o.extra_headers)) < 0))
        goto done;

    if (uv_loop_init(&loop) != 0) {
        error = cairn_error_set(CAIRN_ERROR, "cannot start an event loop");
        goto done;
    }
    loop_ok = true;
    cairn_http_client_opts_init(&copts);
    copts.max_conns_per_upstream = o.concurrency;
    if ((error = cairn_http_client_new(&client, &loop, &copts)) < 0)
        goto done;

    wait_ready(&target, o.extra_headers, o.timeout_ms);
    p1 = (struct pass){ .loop = &loop,
                        .client = client,
                        .target = &target,
                        .o = &o,
                        .headers = headers.ptr,
                        .x = t.x,
                        .t = &t,
                        .classes = &classes,
                        .learn = true,
                        .batch = o.batch_size,
                        .progress = true };
    if ((error = run_pass(&p1)) < 0)
        goto done;
    if (o.perturb_sigma > 0) {
        if (!(noisy = malloc(t.rows * t.cols * sizeof(float)))) {
            error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
            goto done;
        }
        memcpy(noisy, t.x, t.rows * t.cols * sizeof(float));
        cairn__evalep_perturb(noisy, t.rows, t.cols, o.perturb_sigma, o.seed);
        p2 = (struct pass){ .loop = &loop,
                            .client = client,
                            .target = &target,
                            .o = &o,
                            .headers = headers.ptr,
                            .x = noisy,
                            .t = &t,
                            .classes = &classes,
                            .learn = false,
                            .batch = o.batch_size };
        if ((error = run_pass(&p2)) < 0) {
            cairn_error_prefix("perturbed pass");
            goto done;
        }
    }

    if (!(r = calloc(1, sizeof(*r)))) {
        error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
        goto done;
    }
    if ((error = build_confusion(r, &p1, &classes, label_idx)) < 0)
        goto done;
    {
        struct cairn_buf u = CAIRN_BUF_INIT;
        if ((error = cairn_buf_printf(&u, "%s%s", target.origin, target.path)) < 0)
            goto done;
        r->url = cairn_buf_detach(&u, NULL);
    }
    r->rows = p1.rows_done;
    r->rows_failed = p1.rows_failed;
    r->requests = p1.nbatches;
    r->errors = p1.errors;
    r->features = t.cols;
    if (p1.nstatus) {
        if (!(r->error_status = malloc(p1.nstatus * sizeof(*r->error_status)))) {
            error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
            goto done;
        }
        memcpy(r->error_status, p1.status, p1.nstatus * sizeof(*r->error_status));
        r->nerror_status = p1.nstatus;
    }
    r->first_error = p1.first_error;
    p1.first_error = NULL;
    r->latency_p50_ms = cairn__percentile(p1.lat_ms, p1.nlat, 50);
    r->latency_p95_ms = cairn__percentile(p1.lat_ms, p1.nlat, 95);
    r->latency_p99_ms = cairn__percentile(p1.lat_ms, p1.nlat, 99);
    for (size_t i = 0; i < p1.nlat; i++)
        r->latency_mean_ms += p1.lat_ms[i] / (double)p1.nlat;
    r->elapsed_s = (double)(p1.t_end - p1.t_start) / 1e9;
    r->throughput_rps = r->elapsed_s > 0 ? (double)r->rows / r->elapsed_s : 0;
    r->seed = o.seed;
    if (o.perturb_sigma > 0) {
        r->perturbed = true;
        r->perturb_sigma = o.perturb_sigma;
        r->robust_rows = p2.rows_done;
        r->robust_errors = p2.errors;
        r->robust_accuracy = p2.rows_done ? (double)p2.correct / (double)p2.rows_done : 0;
    }
done:
    if (client)
        cairn_http_client_free(client);
    if (loop_ok) {
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
    }
    pass_release(&p1);
    pass_release(&p2);
    free(noisy);
    free(label_idx);
    cairn_buf_release(&headers);
    cairn__strmap_release(&classes);
    cairn_oip_table_release(&t);
    cairn_oip_target_release(&target);
    if (error < 0)
        cairn_evalep_result_free(r);
    else
        *out = r;
    return error;
}

static void metric_name(char *out, size_t cap, const char *prefix, const char *cls)
{
    size_t n = (size_t)snprintf(out, cap, "%s%s", prefix, cls);
    for (size_t i = strlen(prefix); i < n && i < cap; i++) {
        char c = out[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == ':' || c == '-'))
            out[i] = '_';
    }
}

int cairn_evalep_result_metrics(struct cairn_values *out, const struct cairn_evalep_result *r)
{
    int error;
#define SET(name, v)                                               \
    do {                                                           \
        if ((error = cairn_values_set_number(out, name, (v))) < 0) \
            return error;                                          \
    } while (0)
    SET("accuracy", r->accuracy);
    SET("precision_macro", r->precision_macro);
    SET("recall_macro", r->recall_macro);
    SET("f1_macro", r->f1_macro);
    for (size_t i = 0; i < r->nclasses; i++) {
        char name[CAIRN_VALUE_NAME_MAX + 16];
        metric_name(name, sizeof(name), "f1_class_", r->classes[i].name);
        if (cairn_value_name_valid(name))
            SET(name, r->classes[i].f1);
    }
    SET("latency_p50_ms", r->latency_p50_ms);
    SET("latency_p95_ms", r->latency_p95_ms);
    SET("latency_p99_ms", r->latency_p99_ms);
    SET("throughput_rps", r->throughput_rps);
    if (r->perturbed)
        SET("robust_accuracy", r->robust_accuracy);
    SET("rows", (double)r->rows);
    SET("errors", (double)r->errors);
#undef SET
    return 0;
}

int cairn_evalep_result_json(char **out, const struct cairn_evalep_result *r)
{
    struct cairn_values m;
    json_t *root = NULL, *metrics = NULL, *classes, *names, *matrix, *errs;
    char *mj = NULL;
    int error;

    *out = NULL;
    cairn_values_init(&m);
    if ((error = cairn_evalep_result_metrics(&m, r)) < 0 ||
        (error = cairn_values_to_json(&mj, &m)) < 0)
        goto done;
    metrics = json_loads(mj, 0, NULL);
    root = json_object();
    classes = json_array();
    names = json_array();
    matrix = json_array();
    errs = json_object();
    if (!metrics || !root || !classes || !names || !matrix || !errs) {
        json_decref(classes);
        json_decref(names);
        json_decref(matrix);
        json_decref(errs);
        error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
        goto done;
    }
    json_object_set_new(root, "url", json_string(r->url));
    json_object_set(root, "metrics", metrics);
    json_object_set_new(root, "rows", json_integer((json_int_t)r->rows));
    json_object_set_new(root, "rows_failed", json_integer((json_int_t)r->rows_failed));
    json_object_set_new(root, "features", json_integer((json_int_t)r->features));
    json_object_set_new(root, "requests", json_integer((json_int_t)r->requests));
    json_object_set_new(root, "errors", json_integer((json_int_t)r->errors));
    for (size_t i = 0; i < r->nerror_status; i++) {
        char k[16];
        int st = r->error_status[i].status;
        if (st == 0)
            snprintf(k, sizeof(k), "transport");
        else if (st < 0)
            snprintf(k, sizeof(k), "bad_body");
        else
            snprintf(k, sizeof(k), "%d", st);
        json_object_set_new(errs, k, json_integer((json_int_t)r->error_status[i].count));
    }
    json_object_set_new(root, "errors_by_status", errs);
    json_object_set_new(root, "first_error",
                        r->first_error ? json_string(r->first_error) : json_null());
    json_object_set_new(root, "elapsed_s", json_real(r->elapsed_s));
    json_object_set_new(root, "latency_mean_ms", json_real(r->latency_mean_ms));
    for (size_t i = 0; i < r->nclasses; i++) {
        const struct cairn_evalep_class *c = &r->classes[i];
        json_t *row = json_array();
        json_array_append_new(names, json_string(c->name));
        json_array_append_new(classes, json_pack("{s:s, s:I, s:I, s:f, s:f, s:f}", "name", c->name,
                                                 "support", (json_int_t)c->support, "predicted",
                                                 (json_int_t)c->predicted, "precision",
                                                 c->precision, "recall", c->recall, "f1", c->f1));
        for (size_t j = 0; j < r->nclasses; j++)
            json_array_append_new(row, json_integer((json_int_t)r->confusion[i * r->nclasses + j]));
        json_array_append_new(matrix, row);
    }
    json_object_set_new(root, "classes", classes);
    json_object_set_new(root, "confusion",
                        json_pack("{s:o, s:o}", "labels", names, "matrix", matrix));
    if (r->perturbed)
        json_object_set_new(root, "perturb",
                            json_pack("{s:s, s:f, s:I, s:f, s:I, s:I}", "kind", "gaussian", "sigma",
                                      r->perturb_sigma, "seed", (json_int_t)r->seed,
                                      "robust_accuracy", r->robust_accuracy, "rows",
                                      (json_int_t)r->robust_rows, "errors",
                                      (json_int_t)r->robust_errors));
    else
        json_object_set_new(root, "perturb", json_null());
    if (!(*out = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(17))))
        error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
done:
    json_decref(metrics);
    json_decref(root);
    free(mj);
    cairn_values_release(&m);
    return error;
}
