/*
 * The live input window (livewin.h): a reservoir of input rows per served
 * model and its PSI against a reference dataset.
 *
 * Sampling is Algorithm R over rows, thinned so that a full reservoir costs
 * the loop almost nothing: while fewer than `cap` rows were seen every
 * request is decoded; after that a request is decoded with probability
 * q = min(1, est * cap / seen), est being the row count of the last decoded
 * request, and each of its rows then enters with probability
 * (cap / seen) / q, replacing a random slot. Every row thus enters with
 * Algorithm R's probability cap / seen, up to the error of `est` (the rows of
 * skipped requests are counted as `est` each). The window covers everything
 * since the daemon started; old traffic fades out as cap / seen shrinks.
 * Decoding (jansson) happens for about cap * est / seen of the requests.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/data.h"
#include "cairn/repo.h"
#include "data/drift.h"
#include "serve/livewin.h"
#include "serve/metrics.h"
#include "serve/oip.h"
#include "util/fs.h"

struct psi_work {
    uv_work_t w;
    struct cairn_livewin *lw;
    float *data; /* snapshot: rows * cols */
    size_t rows, cols;
    double *psi; /* cols results; NAN where the reference has no column */
};

struct ref_work {
    uv_work_t w;
    struct cairn_livewin *lw;
    char *workdir, *ref, *label;
    struct cairn_data_sample *sample;
    int error;
    char msg[512];
};

struct cairn_livewin {
    uv_loop_t *loop;
    char model[65];
    cairn_livewin_log_fn log;
    void *log_arg;
    uint64_t rng;
    /* the reservoir */
    float *data;
    size_t cap, n, cols;
    uint64_t seen;  /* rows offered (estimated for skipped requests) */
    size_t est;     /* rows of the last decoded request */
    double q;       /* decode probability of the request being sampled */
    uint64_t epoch; /* bumped on every change, for refresh */
    /* the reference and the last PSI */
    struct cairn_data_sample *ref;
    int busy;
    uint64_t psi_epoch;
    double *psi;
    size_t npsi;
};

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double uniform(uint64_t *s)
{
    return (double)(splitmix(s) >> 11) * (1.0 / 9007199254740992.0);
}

static void logf_(struct cairn_livewin *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void logf_(struct cairn_livewin *w, const char *fmt, ...)
{
    char msg[700];
    va_list ap;
    if (!w->log)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    w->log(msg, w->log_arg);
}

int cairn_livewin_new(struct cairn_livewin **out, uv_loop_t *loop, const char *model,
                      cairn_livewin_log_fn log, void *log_arg)
{
    struct cairn_livewin *w = calloc(1, sizeof(*w));
    uint64_t h = 0xcbf29ce484222325ULL;
    *out = NULL;
    if (!w)
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    w->loop = loop;
    snprintf(w->model, sizeof(w->model), "%s", model);
    w->log = log;
    w->log_arg = log_arg;
    for (const char *p = model; *p; p++)
        h = (h ^ (unsigned char)*p) * 0x100000001b3ULL; /* FNV-1a: a fixed seed per model */
    w->rng = h;
    w->est = 1;
    *out = w;
    return 0;
}

void cairn_livewin_free(struct cairn_livewin *w)
{
    if (!w)
        return;
    free(w->data);
    free(w->psi);
    cairn_data_sample_free(w->ref);
    free(w);
}

size_t cairn_livewin_rows(const struct cairn_livewin *w)
{
    return w->n;
}

uint64_t cairn_livewin_seen(const struct cairn_livewin *w)
{
    return w->seen;
}

/* Whether to decode the next request; counts the request's rows when not. */
static int want(struct cairn_livewin *w)
{
    double q;
    if (w->seen < w->cap || !w->cap) {
        w->q = 1;
        return 1;
    }
    q = (double)w->est * (double)w->cap / (double)w->seen;
    w->q = q < 1 ? q : 1;
    if (w->q >= 1 || uniform(&w->rng) < w->q)
        return 1;
    w->seen += w->est;
    return 0;
}

static void add_rows(struct cairn_livewin *w, const float *data, size_t rows, size_t cols)
{
    if (!w->cols) {
        size_t cap = CAIRN_LIVEWIN_MAX_ELEMS / cols;
        if (cap > CAIRN_LIVEWIN_ROWS)
            cap = CAIRN_LIVEWIN_ROWS;
        if (!cap || !(w->data = malloc(cap * cols * sizeof(float))))
            return;
        w->cols = cols;
        w->cap = cap;
    }
    if (cols != w->cols)
        return;
    w->est = rows ? rows : 1;
    for (size_t i = 0; i < rows; i++) {
        size_t slot = SIZE_MAX;
        if (w->n < w->cap) {
            slot = w->n++;
        } else {
            double p = (double)w->cap / (double)(w->seen + 1) / w->q;
            if (p >= 1 || uniform(&w->rng) < p)
                slot = (size_t)(splitmix(&w->rng) % w->cap);
        }
        w->seen++;
        if (slot != SIZE_MAX) {
            memcpy(w->data + slot * cols, data + i * cols, cols * sizeof(float));
            w->epoch++;
        }
    }
}

void cairn_livewin_sample(struct cairn_livewin *w, const char *body, size_t len)
{
    struct cairn_oip_request r;
    if (!w || !want(w))
        return;
    if (cairn_oip_decode_infer(&r, body, len, CAIRN_LIVEWIN_MAX_ELEMS) == 0 && r.cols > 0)
        add_rows(w, r.data, r.rows, r.cols);
    else
        cairn_error_clear();
    cairn_oip_request_release(&r);
}

/* ---- reference ------------------------------------------------------- */

static void ref_work(uv_work_t *req)
{
    struct ref_work *rw = req->data;
    struct cairn_repo *repo = NULL;
    char tmp[4096] = "";
    const char *path = rw->ref;

    if (!strchr(rw->ref, '/')) {
        struct cairn_buf b = CAIRN_BUF_INIT;
        rw->error = cairn_fs_mkdtemp(&b, NULL, "cairn-ref");
        if (!rw->error && b.len >= sizeof(tmp))
            rw->error = cairn_error_set(CAIRN_EINVALID, "temporary path too long");
        if (!rw->error)
            memcpy(tmp, b.ptr, b.len + 1);
        cairn_buf_release(&b);
        if (rw->error < 0)
            goto done;
        if ((rw->error = cairn_repo_open(&repo, rw->workdir)) < 0 ||
            (rw->error = cairn_repo_checkout(repo, rw->ref, tmp, NULL, NULL)) < 0)
            goto done;
        path = tmp;
    }
    rw->error = cairn_data_numeric_sample(&rw->sample, path, rw->label);
done:
    if (rw->error < 0)
        snprintf(rw->msg, sizeof(rw->msg), "%s", cairn_error_last());
    cairn_repo_free(repo);
    if (tmp[0])
        cairn_fs_rm_rf(tmp);
}

static void ref_after(uv_work_t *req, int status)
{
    struct ref_work *rw = req->data;
    struct cairn_livewin *w = rw->lw;
    if (status == 0 && rw->error == 0) {
        cairn_data_sample_free(w->ref);
        w->ref = rw->sample;
        rw->sample = NULL;
        w->psi_epoch = 0;
        logf_(w, "%s: live drift reference %s: %zu numeric features, %llu rows", w->model, rw->ref,
              w->ref->ncols, (unsigned long long)w->ref->rows);
    } else {
        logf_(w, "%s: cannot load live drift reference %s: %s", w->model, rw->ref,
              status ? uv_strerror(status) : rw->msg);
    }
    w->busy = 0;
    cairn_data_sample_free(rw->sample);
    free(rw->workdir);
    free(rw->ref);
    free(rw->label);
    free(rw);
}

int cairn_livewin_set_reference(struct cairn_livewin *w, const char *workdir, const char *ref,
                                const char *label_column)
{
    struct ref_work *rw = calloc(1, sizeof(*rw));
    int rc;
    if (!rw || !(rw->workdir = strdup(workdir)) || !(rw->ref = strdup(ref)) ||
        (label_column && !(rw->label = strdup(label_column)))) {
        if (rw) {
            free(rw->workdir);
            free(rw->ref);
        }
        free(rw);
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    }
    rw->lw = w;
    rw->w.data = rw;
    w->busy = 1; /* no PSI before the reference is there */
    if ((rc = uv_queue_work(w->loop, &rw->w, ref_work, ref_after)) < 0) {
        w->busy = 0;
        free(rw->workdir);
        free(rw->ref);
        free(rw->label);
        free(rw);
        return cairn_error_set(CAIRN_ERROR, "cannot queue work: %s", uv_strerror(rc));
    }
    return 0;
}

/* ---- PSI ------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void psi_work(uv_work_t *req)
{
    struct psi_work *pw = req->data;
    const struct cairn_data_sample *ref = pw->lw->ref; /* read-only while busy */
    double *col = malloc(pw->rows * sizeof(double));
    for (size_t c = 0; c < pw->cols; c++) {
        size_t m = 0;
        pw->psi[c] = NAN;
        if (!col || c >= ref->ncols || ref->ncols != pw->cols)
            continue;
        for (size_t i = 0; i < pw->rows; i++) {
            float v = pw->data[i * pw->cols + c];
            if (!isnan(v))
                col[m++] = v;
        }
        qsort(col, m, sizeof(double), cmp_double);
        pw->psi[c] = cairn__psi_numeric(ref->values[c], ref->counts[c], col, m);
    }
    free(col);
}

static void psi_after(uv_work_t *req, int status)
{
    struct psi_work *pw = req->data;
    struct cairn_livewin *w = pw->lw;
    if (status == 0) {
        free(w->psi);
        w->psi = pw->psi;
        w->npsi = pw->cols;
        pw->psi = NULL;
    }
    w->busy = 0;
    free(pw->psi);
    free(pw->data);
    free(pw);
}

void cairn_livewin_refresh(struct cairn_livewin *w)
{
    struct psi_work *pw;
    if (!w || w->busy || !w->ref || !w->n || w->psi_epoch == w->epoch + 1)
        return;
    if (!(pw = calloc(1, sizeof(*pw))) || !(pw->data = malloc(w->n * w->cols * sizeof(float))) ||
        !(pw->psi = malloc(w->cols * sizeof(double)))) {
        if (pw)
            free(pw->data);
        free(pw);
        return;
    }
    memcpy(pw->data, w->data, w->n * w->cols * sizeof(float));
    pw->rows = w->n;
    pw->cols = w->cols;
    pw->lw = w;
    pw->w.data = pw;
    w->busy = 1;
    w->psi_epoch = w->epoch + 1; /* +1: 0 means never computed */
    if (uv_queue_work(w->loop, &pw->w, psi_work, psi_after) < 0) {
        w->busy = 0;
        w->psi_epoch = 0;
        free(pw->psi);
        free(pw->data);
        free(pw);
    }
}

/* ---- output ---------------------------------------------------------- */

static const char *feature_name(const struct cairn_livewin *w, size_t c, char *tmp, size_t cap)
{
    if (w->ref && w->ref->ncols == w->cols)
        return w->ref->names[c];
    snprintf(tmp, cap, "f%zu", c);
    return tmp;
}

static int put_csv_field(struct cairn_buf *b, const char *s)
{
    if (!strpbrk(s, ",\"\r\n") && *s)
        return cairn_buf_puts(b, s);
    if (cairn_buf_putc(b, '"') < 0)
        return CAIRN_ENOMEM;
    for (; *s; s++)
        if ((*s == '"' && cairn_buf_putc(b, '"') < 0) || cairn_buf_putc(b, *s) < 0)
            return CAIRN_ENOMEM;
    return cairn_buf_putc(b, '"');
}

int cairn_livewin_csv(struct cairn_buf *out, const struct cairn_livewin *w)
{
    char tmp[32];
    for (size_t c = 0; c < w->cols; c++)
        if ((c && cairn_buf_putc(out, ',') < 0) ||
            put_csv_field(out, feature_name(w, c, tmp, sizeof(tmp))) < 0)
            return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    if (w->cols && cairn_buf_putc(out, '\n') < 0)
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    for (size_t i = 0; i < w->n; i++) {
        for (size_t c = 0; c < w->cols; c++) {
            float v = w->data[i * w->cols + c];
            if ((c && cairn_buf_putc(out, ',') < 0) ||
                (!isnan(v) && cairn_buf_printf(out, "%.9g", (double)v) < 0))
                return cairn_error_set(CAIRN_ENOMEM, "out of memory");
        }
        if (cairn_buf_putc(out, '\n') < 0)
            return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    }
    return 0;
}

int cairn_livewin_prom_psi(struct cairn_buf *out, const struct cairn_livewin *w,
                           const char *model_label)
{
    char tmp[32], fe[300], lab[512];
    if (!w->ref)
        return 0;
    for (size_t c = 0; c < w->npsi && c < w->cols; c++) {
        if (isnan(w->psi[c]))
            continue;
        cairn_prom_escape(fe, sizeof(fe), feature_name(w, c, tmp, sizeof(tmp)));
        snprintf(lab, sizeof(lab), "model=\"%s\",feature=\"%s\"", model_label, fe);
        if (cairn_prom_sample(out, "cairn_input_drift_psi", lab, w->psi[c]) < 0)
            return CAIRN_ENOMEM;
    }
    return 0;
}
