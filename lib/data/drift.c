/*
 * Drift between a reference dataset and a current one (include/cairn/data.h,
 * docs/data.md): per column, PSI plus the two-sample Kolmogorov-Smirnov test
 * for numbers, PSI plus a chi-square test of homogeneity for categories.
 *
 * One streaming pass over each side. Per column and side we keep: counts of
 * values and nulls; whether every value so far parsed as a number; a
 * reservoir sample of at most CAIRN_DRIFT_SAMPLE numbers (Algorithm R with a
 * fixed seed per column, so runs are reproducible); and counts of up to
 * CAIRN_DRIFT_MAX_CATEGORIES distinct values. Memory is therefore bounded by
 * columns x (800 KB + the category table), whatever the row count; the
 * numeric statistics are computed on the samples, which the report notes
 * when a column had more values than the sample holds.
 *
 * The distribution functions (Kolmogorov, regularised incomplete gamma) are
 * implemented here from their series and continued fractions, as in
 * Numerical Recipes ch. 6.2 and 14.3.
 */
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/data.h"
#include "data/csv.h"
#include "data/drift.h"
#include "data/schema.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/yaml.h"

/* ---- statistics ------------------------------------------------------ */

double cairn__psi(const double *p, const double *q, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        double a = p[i] < CAIRN_PSI_EPSILON ? CAIRN_PSI_EPSILON : p[i];
        double b = q[i] < CAIRN_PSI_EPSILON ? CAIRN_PSI_EPSILON : q[i];
        s += (b - a) * log(b / a);
    }
    return s;
}

double cairn__psi_counts(const uint64_t *a, const uint64_t *b, size_t n)
{
    uint64_t ta = 0, tb = 0;
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        ta += a[i];
        tb += b[i];
    }
    if (ta == 0 || tb == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        double p = (double)a[i] / (double)ta, q = (double)b[i] / (double)tb;
        s += cairn__psi(&p, &q, 1);
    }
    return s;
}

/* Number of elements of sorted v[0..n) that are < x (strict) or <= x. */
static size_t count_below(const double *v, size_t n, double x, bool inclusive)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid] < x || (inclusive && v[mid] == x))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

double cairn__psi_numeric(const double *ref, size_t n, const double *cur, size_t m)
{
    double edges[9];
    uint64_t a[10] = { 0 }, b[10] = { 0 };
    size_t k = 0;

    if (n == 0 || m == 0)
        return 0;
    /* Edge i is the value below or at which about i/10 of the reference lies. */
    for (size_t i = 1; i <= 9; i++) {
        size_t idx = (i * n + 9) / 10;
        double e = ref[idx ? idx - 1 : 0];
        if (k == 0 || e > edges[k - 1])
            edges[k++] = e;
    }
    /* Bin j holds (edges[j-1], edges[j]]: counts from the sorted samples by search. */
    size_t prev_a = 0, prev_b = 0;
    for (size_t j = 0; j < k; j++) {
        size_t ca = count_below(ref, n, edges[j], true), cb = count_below(cur, m, edges[j], true);
        a[j] = ca - prev_a;
        b[j] = cb - prev_b;
        prev_a = ca;
        prev_b = cb;
    }
    a[k] = n - prev_a;
    b[k] = m - prev_b;
    return cairn__psi_counts(a, b, k + 1);
}

double cairn__ks_statistic(const double *a, size_t n, const double *b, size_t m)
{
    size_t i = 0, j = 0;
    double d = 0;
    if (n == 0 || m == 0)
        return 0;
    while (i < n && j < m) {
        double x = a[i] < b[j] ? a[i] : b[j];
        /* Step past every copy of x on both sides before comparing (ties). */
        while (i < n && a[i] == x)
            i++;
        while (j < m && b[j] == x)
            j++;
        double diff = fabs((double)i / (double)n - (double)j / (double)m);
        if (diff > d)
            d = diff;
    }
    return d;
}

double cairn__kolmogorov_q(double lambda)
{
    double sum = 0, sign = 1;
    if (lambda < 0.2)
        return 1.0; /* the series is 1 to double precision here (1 - 1e-27) */
    for (int j = 1; j <= 100; j++) {
        double term = exp(-2.0 * j * j * lambda * lambda);
        sum += sign * term;
        if (term < 1e-16 * sum)
            break;
        sign = -sign;
    }
    sum *= 2;
    return sum < 0 ? 0 : sum > 1 ? 1 : sum;
}

double cairn__ks_pvalue(double d, size_t n, size_t m)
{
    if (n == 0 || m == 0)
        return 1.0;
    double en = sqrt((double)n * (double)m / ((double)n + (double)m));
    return cairn__kolmogorov_q(d * en);
}

static double log_gamma(double a)
{
    int sign;
    return lgamma_r(a, &sign);
}

double cairn__gamma_q(double a, double x)
{
    const double tiny = 1e-300;
    double front;

    if (!(a > 0) || isnan(x))
        return NAN;
    if (x <= 0)
        return 1.0;
    front = exp(-x + a * log(x) - log_gamma(a));
    if (x < a + 1) {
        /* Series for P(a, x), then Q = 1 - P. */
        double ap = a, del = 1.0 / a, sum = del;
        for (int n = 0; n < 10000; n++) {
            ap += 1;
            del *= x / ap;
            sum += del;
            if (fabs(del) < fabs(sum) * 1e-16)
                break;
        }
        double q = 1.0 - sum * front;
        return q < 0 ? 0 : q;
    }
    /* Continued fraction for Q(a, x), modified Lentz. */
    double b = x + 1 - a, c = 1 / tiny, d = 1 / b, h = d;
    for (int i = 1; i < 10000; i++) {
        double an = -i * (i - a);
        b += 2;
        d = an * d + b;
        if (fabs(d) < tiny)
            d = tiny;
        c = b + an / c;
        if (fabs(c) < tiny)
            c = tiny;
        d = 1 / d;
        double del = d * c;
        h *= del;
        if (fabs(del - 1) < 1e-16)
            break;
    }
    double q = front * h;
    return q > 1 ? 1 : q;
}

double cairn__chi2_sf(double x, double df)
{
    if (df <= 0)
        return 1.0;
    return cairn__gamma_q(df / 2, x / 2);
}

void cairn__chi2_homogeneity(double *chi2_out, unsigned *df_out, double *p_out, double *v_out,
                             const uint64_t *a, const uint64_t *b, size_t n)
{
    double ta = 0, tb = 0, chi2 = 0;
    size_t k = 0;

    for (size_t i = 0; i < n; i++) {
        ta += (double)a[i];
        tb += (double)b[i];
    }
    for (size_t i = 0; i < n && ta > 0 && tb > 0; i++) {
        double col = (double)a[i] + (double)b[i];
        if (col == 0)
            continue;
        double ea = col * ta / (ta + tb), eb = col * tb / (ta + tb);
        chi2 += ((double)a[i] - ea) * ((double)a[i] - ea) / ea;
        chi2 += ((double)b[i] - eb) * ((double)b[i] - eb) / eb;
        k++;
    }
    *chi2_out = chi2;
    *df_out = k > 1 ? (unsigned)(k - 1) : 0;
    *p_out = k > 1 ? cairn__chi2_sf(chi2, (double)(k - 1)) : 1.0;
    *v_out = (k > 1 && ta + tb > 0) ? sqrt(chi2 / (ta + tb)) : 0.0;
}

/* ---- thresholds ------------------------------------------------------ */

void cairn_drift_thresholds_init(struct cairn_drift_thresholds *t)
{
    memset(t, 0, sizeof(*t));
    t->psi = 0.2;
    t->ks_statistic = 0.1;
    t->ks_pvalue = 0.01;
    t->chi2_pvalue = 0.01;
    t->cramers_v = 0.1;
}

void cairn_drift_thresholds_release(struct cairn_drift_thresholds *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->nignore; i++)
        free(t->ignore[i]);
    free(t->ignore);
    t->ignore = NULL;
    t->nignore = 0;
}

int cairn_drift_thresholds_parse(struct cairn_drift_thresholds *t, const char *name,
                                 const void *data, size_t len)
{
    static const char *const keys[] = { "psi",       "ks_statistic", "ks_pvalue", "chi2_pvalue",
                                        "cramers_v", "ignore",       NULL };
    struct cairn_yaml_limits lim = { 0, 100000, (size_t)1 << 20 };
    struct cairn_yaml_doc *doc = NULL;
    const struct cairn_yaml_node *root, *n;
    double *fields[] = { &t->psi, &t->ks_statistic, &t->ks_pvalue, &t->chi2_pvalue, &t->cramers_v };
    int error;

    if ((error = cairn_yaml_parse(&doc, name, data, len, &lim)) < 0)
        goto done;
    if (!(root = cairn_yaml_root(doc)))
        goto done; /* an empty file keeps the defaults */
    if ((error = cairn_yaml_expect(root, CAIRN_YAML_MAP)) < 0 ||
        (error = cairn_yaml_check_keys(root, keys)) < 0)
        goto done;
    for (size_t i = 0; i < 5; i++) {
        double v;
        if (!(n = cairn_yaml_map_get(root, keys[i])))
            continue;
        if ((error = cairn_yaml_double(&v, n)) < 0)
            goto done;
        if (i != 0 && v > 1) {
            error = cairn_yaml_error(doc, n, "%s is at most 1", keys[i]);
            goto done;
        }
        *fields[i] = v;
    }
    if ((n = cairn_yaml_map_get(root, "ignore"))) {
        if ((error = cairn_yaml_expect(n, CAIRN_YAML_SEQ)) < 0)
            goto done;
        for (size_t i = 0; i < n->count; i++) {
            const char *s;
            char **v;
            if ((error = cairn_yaml_str(&s, n->items[i])) < 0)
                goto done;
            if (!(v = realloc(t->ignore, (t->nignore + 1) * sizeof(*v))) ||
                !(v[t->nignore] = strdup(s))) {
                if (v)
                    t->ignore = v;
                error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
                goto done;
            }
            t->ignore = v;
            t->nignore++;
        }
    }
done:
    cairn_yaml_doc_free(doc);
    return error;
}

int cairn_drift_thresholds_load(struct cairn_drift_thresholds *t, const char *path)
{
    struct cairn_buf b = CAIRN_BUF_INIT;
    int error;
    if ((error = cairn_fs_read_file(&b, path, (size_t)1 << 20)) == 0)
        error = cairn_drift_thresholds_parse(t, path, b.ptr ? b.ptr : "", b.len);
    cairn_buf_release(&b);
    return error;
}

/* ---- collection ------------------------------------------------------ */

struct side_col {
    char *name;
    uint64_t values, nulls, numeric_seen;
    bool numeric; /* every value so far parsed as a number */
    double *sample;
    size_t nsample;
    uint64_t rng;
    struct cairn__strmap cats;
    bool cats_overflow;
};

struct side {
    struct side_col *cols;
    size_t ncols, cap;
    uint64_t rows;
};

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void side_release(struct side *s)
{
    for (size_t i = 0; i < s->ncols; i++) {
        free(s->cols[i].name);
        free(s->cols[i].sample);
        cairn__strmap_release(&s->cols[i].cats);
    }
    free(s->cols);
    memset(s, 0, sizeof(*s));
}

static ssize_t side_col_get(struct side *s, const char *name, size_t len)
{
    struct side_col *c;
    for (size_t i = 0; i < s->ncols; i++)
        if (strlen(s->cols[i].name) == len && memcmp(s->cols[i].name, name, len) == 0)
            return (ssize_t)i;
    if (CAIRN_ARRAY_GROW(s->cols, s->cap, s->ncols) < 0)
        return CAIRN_ENOMEM;
    c = &s->cols[s->ncols];
    memset(c, 0, sizeof(*c));
    if (!(c->name = strndup(name, len)))
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    c->numeric = true;
    c->rng = cairn__hash64(name, len); /* fixed seed per column name */
    cairn__strmap_init(&c->cats, CAIRN_DRIFT_MAX_CATEGORIES, (size_t)16 << 20);
    return (ssize_t)s->ncols++;
}

static int add_value(struct side_col *c, const struct cairn_data_schema *schema,
                     const struct cairn_csv_field *f)
{
    double d;
    if (schema ? cairn__schema_is_null(schema, f->ptr, f->len) : f->len == 0) {
        c->nulls++;
        return 0;
    }
    c->values++;
    if (c->numeric) {
        if (cairn__parse_float(&d, f->ptr, f->len) < 0) {
            c->numeric = false;
            free(c->sample);
            c->sample = NULL;
            c->nsample = 0;
        } else if (!isnan(d)) {
            uint64_t seen = c->numeric_seen++;
            if (!c->sample && !(c->sample = malloc(CAIRN_DRIFT_SAMPLE * sizeof(double))))
                return cairn_error_set(CAIRN_ENOMEM, "out of memory");
            if (c->nsample < CAIRN_DRIFT_SAMPLE) {
                c->sample[c->nsample++] = d;
            } else {
                uint64_t r = splitmix(&c->rng) % (seen + 1);
                if (r < CAIRN_DRIFT_SAMPLE)
                    c->sample[r] = d;
            }
        }
    }
    if (!c->cats_overflow) {
        size_t idx;
        bool ins;
        if (cairn__strmap_add(&c->cats, &idx, &ins, f->ptr, f->len) < 0)
            c->cats_overflow = true;
        else
            c->cats.entries[idx].count++;
    }
    return 0;
}

static int collect(struct side *s, const char *path, const struct cairn_data_schema *schema)
{
    char **files = NULL;
    size_t nfiles = 0;
    ssize_t *map = NULL;
    int error;

    if ((error = cairn__data_files(&files, &nfiles, path)) < 0)
        goto done;
    for (size_t fi = 0; fi < nfiles; fi++) {
        struct cairn_csv *csv = NULL;
        const struct cairn_csv_field *f;
        size_t n, ncols;
        int r;
        if ((error = cairn_csv_open(&csv, files[fi], NULL)) < 0)
            goto done;
        if ((r = cairn_csv_next(csv, &f, &n)) <= 0) {
            cairn_csv_free(csv);
            if (r == 0)
                continue; /* an empty file adds nothing */
            error = r;
            goto done;
        }
        ncols = n;
        free(map);
        if (!(map = malloc(ncols * sizeof(*map)))) {
            cairn_csv_free(csv);
            error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
            goto done;
        }
        for (size_t j = 0; j < ncols; j++) {
            if ((map[j] = side_col_get(s, f[j].ptr, f[j].len)) < 0) {
                error = (int)map[j];
                cairn_csv_free(csv);
                goto done;
            }
        }
        while ((r = cairn_csv_next(csv, &f, &n)) == 1) {
            s->rows++;
            for (size_t j = 0; j < n; j++)
                if ((error = add_value(&s->cols[map[j]], schema, &f[j])) < 0)
                    break;
            if (error < 0)
                break;
        }
        cairn_csv_free(csv);
        if (r < 0 || error < 0) {
            error = error < 0 ? error : r;
            goto done;
        }
    }
done:
    free(map);
    for (size_t i = 0; i < nfiles; i++)
        free(files[i]);
    free(files);
    return error;
}

/* ---- comparison ------------------------------------------------------ */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int add_note(struct cairn_drift_report *rep, char *note)
{
    char **v;
    if (!note || !(v = realloc(rep->notes, (rep->nnotes + 1) * sizeof(*v)))) {
        free(note);
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    }
    rep->notes = v;
    rep->notes[rep->nnotes++] = note;
    return 0;
}

static int compare_numeric(struct cairn_drift_column *out, struct side_col *a, struct side_col *b,
                           const struct cairn_drift_thresholds *t)
{
    qsort(a->sample, a->nsample, sizeof(double), cmp_double);
    qsort(b->sample, b->nsample, sizeof(double), cmp_double);
    out->kind = CAIRN_DRIFT_NUMERIC;
    out->psi = cairn__psi_numeric(a->sample, a->nsample, b->sample, b->nsample);
    out->statistic = cairn__ks_statistic(a->sample, a->nsample, b->sample, b->nsample);
    out->pvalue = cairn__ks_pvalue(out->statistic, a->nsample, b->nsample);
    if (t->psi >= 0 && out->psi > t->psi) {
        out->drifted = true;
        out->reason = cairn_buf_strdupf("psi %.4f > %g", out->psi, t->psi);
    } else if (t->ks_pvalue >= 0 && t->ks_statistic >= 0 && out->pvalue < t->ks_pvalue &&
               out->statistic > t->ks_statistic) {
        out->drifted = true;
        out->reason = cairn_buf_strdupf("ks D %.4f > %g with p %.3g < %g", out->statistic,
                                        t->ks_statistic, out->pvalue, t->ks_pvalue);
    }
    return out->drifted && !out->reason ? cairn_error_set(CAIRN_ENOMEM, "out of memory") : 0;
}

static int compare_categorical(struct cairn_drift_column *out, struct side_col *a,
                               struct side_col *b, const struct cairn_drift_thresholds *t)
{
    struct cairn__strmap all;
    uint64_t *ca = NULL, *cb = NULL;
    int error = 0;
    size_t idx;
    bool ins;

    out->kind = CAIRN_DRIFT_CATEGORICAL;
    cairn__strmap_init(&all, 2 * CAIRN_DRIFT_MAX_CATEGORIES, (size_t)32 << 20);
    for (size_t i = 0; i < a->cats.n; i++)
        if (cairn__strmap_add(&all, &idx, &ins, cairn__strmap_key(&a->cats, i),
                              a->cats.entries[i].len) < 0)
            goto nomem;
    for (size_t i = 0; i < b->cats.n; i++)
        if (cairn__strmap_add(&all, &idx, &ins, cairn__strmap_key(&b->cats, i),
                              b->cats.entries[i].len) < 0)
            goto nomem;
    if (!(ca = calloc(all.n + 1, sizeof(*ca))) || !(cb = calloc(all.n + 1, sizeof(*cb))))
        goto nomem;
    for (size_t i = 0; i < a->cats.n; i++)
        ca[i] = a->cats.entries[i].count; /* a's keys were inserted first, in order */
    for (size_t i = 0; i < b->cats.n; i++) {
        ssize_t k =
            cairn__strmap_find(&all, cairn__strmap_key(&b->cats, i), b->cats.entries[i].len);
        cb[k] = b->cats.entries[i].count;
    }
    out->psi = cairn__psi_counts(ca, cb, all.n);
    cairn__chi2_homogeneity(&out->statistic, &out->df, &out->pvalue, &out->cramers_v, ca, cb,
                            all.n);
    if (t->psi >= 0 && out->psi > t->psi) {
        out->drifted = true;
        out->reason = cairn_buf_strdupf("psi %.4f > %g", out->psi, t->psi);
    } else if (t->chi2_pvalue >= 0 && t->cramers_v >= 0 && out->pvalue < t->chi2_pvalue &&
               out->cramers_v > t->cramers_v) {
        out->drifted = true;
        out->reason = cairn_buf_strdupf("chi2 %.4g (df %u, p %.3g < %g), Cramer's V %.4f > %g",
                                        out->statistic, out->df, out->pvalue, t->chi2_pvalue,
                                        out->cramers_v, t->cramers_v);
    }
    if (out->drifted && !out->reason)
        goto nomem;
    goto done;
nomem:
    error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
done:
    free(ca);
    free(cb);
    cairn__strmap_release(&all);
    return error;
}

static bool ignored(const struct cairn_drift_thresholds *t, const char *name)
{
    for (size_t i = 0; i < t->nignore; i++)
        if (strcmp(t->ignore[i], name) == 0)
            return true;
    return false;
}

static int compare_column(struct cairn_drift_report *rep, struct side_col *a, struct side_col *b,
                          const char *name, const struct cairn_drift_thresholds *t,
                          const struct cairn_data_schema *schema)
{
    struct cairn_drift_column *out = &rep->columns[rep->ncolumns++];
    ssize_t si;
    bool numeric;

    memset(out, 0, sizeof(*out));
    if (!(out->name = strdup(name)))
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    if (a) {
        out->count_ref = a->values;
        out->nulls_ref = a->nulls;
    }
    if (b) {
        out->count_cur = b->values;
        out->nulls_cur = b->nulls;
    }
    if (ignored(t, name)) {
        out->kind = CAIRN_DRIFT_SKIPPED;
        out->reason = strdup("ignored");
        return out->reason ? 0 : cairn_error_set(CAIRN_ENOMEM, "out of memory");
    }
    if (!a || !b) {
        out->kind = CAIRN_DRIFT_MISSING;
        out->drifted = true;
        out->reason =
            strdup(a ? "missing from the current dataset" : "missing from the reference dataset");
        return out->reason ? 0 : cairn_error_set(CAIRN_ENOMEM, "out of memory");
    }
    si = schema ? cairn__schema_find(schema, name, strlen(name)) : -1;
    if (si >= 0)
        numeric =
            schema->cols[si].type == CAIRN_DATA_INT || schema->cols[si].type == CAIRN_DATA_FLOAT;
    else
        numeric = a->numeric && b->numeric && a->values > 0;
    if (numeric && (!a->numeric || !b->numeric)) {
        out->kind = CAIRN_DRIFT_SKIPPED;
        out->drifted = true;
        out->reason = cairn_buf_strdupf("declared numeric but %s has values that are not numbers",
                                        a->numeric ? "the current dataset" : "the reference");
        return out->reason ? 0 : cairn_error_set(CAIRN_ENOMEM, "out of memory");
    }
    if (numeric) {
        if (a->nsample == 0 || b->nsample == 0) {
            out->kind = CAIRN_DRIFT_SKIPPED;
            out->reason = strdup("no values to compare");
            return out->reason ? 0 : cairn_error_set(CAIRN_ENOMEM, "out of memory");
        }
        if (a->numeric_seen > a->nsample || b->numeric_seen > b->nsample) {
            char *note =
                cairn_buf_strdupf("'%s': numeric statistics on samples of %zu and %zu values", name,
                                  a->nsample, b->nsample);
            int e = add_note(rep, note);
            if (e < 0)
                return e;
        }
        return compare_numeric(out, a, b, t);
    }
    if (a->cats_overflow || b->cats_overflow) {
        out->kind = CAIRN_DRIFT_SKIPPED;
        out->reason = cairn_buf_strdupf("more than %d distinct values", CAIRN_DRIFT_MAX_CATEGORIES);
        return out->reason ? 0 : cairn_error_set(CAIRN_ENOMEM, "out of memory");
    }
    if (a->values == 0 || b->values == 0) {
        out->kind = CAIRN_DRIFT_SKIPPED;
        out->reason = strdup("no values to compare");
        return out->reason ? 0 : cairn_error_set(CAIRN_ENOMEM, "out of memory");
    }
    return compare_categorical(out, a, b, t);
}

void cairn_drift_report_free(struct cairn_drift_report *rep)
{
    if (!rep)
        return;
    for (size_t i = 0; i < rep->ncolumns; i++) {
        free(rep->columns[i].name);
        free(rep->columns[i].reason);
    }
    free(rep->columns);
    for (size_t i = 0; i < rep->nnotes; i++)
        free(rep->notes[i]);
    free(rep->notes);
    free(rep);
}

int cairn_data_drift(struct cairn_drift_report **out, const char *ref, const char *cur,
                     const struct cairn_drift_thresholds *thresholds,
                     const struct cairn_data_schema *schema)
{
    struct cairn_drift_thresholds defaults;
    struct side a = { 0 }, b = { 0 };
    struct cairn_drift_report *rep = NULL;
    int error;

    *out = NULL;
    cairn_drift_thresholds_init(&defaults);
    if (!thresholds)
        thresholds = &defaults;
    if ((error = collect(&a, ref, schema)) < 0 || (error = collect(&b, cur, schema)) < 0)
        goto done;
    if (!(rep = calloc(1, sizeof(*rep))) ||
        !(rep->columns = calloc(a.ncols + b.ncols + 1, sizeof(*rep->columns)))) {
        error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
        goto done;
    }
    rep->rows_ref = a.rows;
    rep->rows_cur = b.rows;
    rep->thresholds = *thresholds;
    rep->thresholds.ignore = NULL;
    rep->thresholds.nignore = 0;
    for (size_t i = 0; i < a.ncols; i++) {
        struct side_col *bc = NULL;
        for (size_t j = 0; j < b.ncols && !bc; j++)
            if (strcmp(a.cols[i].name, b.cols[j].name) == 0)
                bc = &b.cols[j];
        if ((error = compare_column(rep, &a.cols[i], bc, a.cols[i].name, thresholds, schema)) < 0)
            goto done;
    }
    for (size_t j = 0; j < b.ncols; j++) {
        bool found = false;
        for (size_t i = 0; i < a.ncols && !found; i++)
            found = strcmp(a.cols[i].name, b.cols[j].name) == 0;
        if (!found &&
            (error = compare_column(rep, NULL, &b.cols[j], b.cols[j].name, thresholds, schema)) < 0)
            goto done;
    }
    for (size_t i = 0; i < rep->ncolumns; i++)
        if (rep->columns[i].drifted)
            rep->drifted = true;
    *out = rep;
    rep = NULL;
done:
    side_release(&a);
    side_release(&b);
    cairn_drift_report_free(rep);
    return error;
}

static const char *kind_name(enum cairn_drift_kind k)
{
    switch (k) {
    case CAIRN_DRIFT_NUMERIC:
        return "numeric";
    case CAIRN_DRIFT_CATEGORICAL:
        return "categorical";
    case CAIRN_DRIFT_MISSING:
        return "missing";
    default:
        return "skipped";
    }
}

/* JSON has no NaN or infinity: such a number becomes null. */
static json_t *jreal(double d)
{
    return isfinite(d) ? json_real(d) : json_null();
}

int cairn_drift_report_json(char **out, const struct cairn_drift_report *rep)
{
    const struct cairn_drift_thresholds *t = &rep->thresholds;
    json_t *root, *cols = json_array(), *notes = json_array();
    int error = 0;

    *out = NULL;
    root = json_pack("{s:b, s:I, s:I, s:{s:o, s:o, s:o, s:o, s:o}}", "drifted", rep->drifted,
                     "rows_ref", (json_int_t)rep->rows_ref, "rows_cur", (json_int_t)rep->rows_cur,
                     "thresholds", "psi", jreal(t->psi), "ks_statistic", jreal(t->ks_statistic),
                     "ks_pvalue", jreal(t->ks_pvalue), "chi2_pvalue", jreal(t->chi2_pvalue),
                     "cramers_v", jreal(t->cramers_v));
    if (!root || !cols || !notes) {
        json_decref(cols);
        json_decref(notes);
        error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
        goto done;
    }
    json_object_set_new(root, "columns", cols);
    json_object_set_new(root, "notes", notes);
    for (size_t i = 0; i < rep->nnotes; i++)
        json_array_append_new(notes, json_string(rep->notes[i]));
    for (size_t i = 0; i < rep->ncolumns; i++) {
        const struct cairn_drift_column *c = &rep->columns[i];
        bool stats = c->kind == CAIRN_DRIFT_NUMERIC || c->kind == CAIRN_DRIFT_CATEGORICAL;
        json_t *o = json_pack(
            "{s:s, s:s, s:b, s:I, s:I, s:I, s:I, s:o}", "name", c->name, "kind", kind_name(c->kind),
            "drifted", c->drifted, "count_ref", (json_int_t)c->count_ref, "count_cur",
            (json_int_t)c->count_cur, "nulls_ref", (json_int_t)c->nulls_ref, "nulls_cur",
            (json_int_t)c->nulls_cur, "reason", c->reason ? json_string(c->reason) : json_null());
        if (!o) {
            error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
            goto done;
        }
        if (stats) {
            json_object_set_new(o, "psi", jreal(c->psi));
            json_object_set_new(o, "test",
                                json_string(c->kind == CAIRN_DRIFT_NUMERIC ? "ks" : "chi2"));
            json_object_set_new(o, "statistic", jreal(c->statistic));
            json_object_set_new(o, "pvalue", jreal(c->pvalue));
            if (c->kind == CAIRN_DRIFT_CATEGORICAL) {
                json_object_set_new(o, "df", json_integer(c->df));
                json_object_set_new(o, "cramers_v", jreal(c->cramers_v));
            }
        }
        json_array_append_new(cols, o);
    }
    if (!(*out = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER)))
        error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
done:
    json_decref(root);
    return error;
}
