/*
 * What live drift (issue #8) needs from a reference dataset: its column
 * names, and each numeric column as a sorted sample. `cairn serve` loads the
 * sample once per model at start (on the thread pool) and compares the
 * window of inputs it keeps with it; `cairn data drift --live` uses the names
 * to label a window whose columns are only numbered. One pass over the rows
 * in bounded memory: at most CAIRN_DRIFT_SAMPLE values per column, kept by
 * Algorithm R seeded from the column name, as drift.c does.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/data.h"
#include "data/csv.h"
#include "data/drift.h"
#include "data/schema.h"

static void names_free(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

void cairn_data_columns_free(char **cols, size_t n)
{
    names_free(cols, n);
}

static int header_of(char ***out, size_t *nout, const char *file, struct cairn_csv **keep)
{
    struct cairn_csv *csv = NULL;
    const struct cairn_csv_field *f;
    size_t n;
    char **names = NULL;
    int r, error = 0;

    *out = NULL;
    *nout = 0;
    if ((error = cairn_csv_open(&csv, file, NULL)) < 0)
        return error;
    if ((r = cairn_csv_next(csv, &f, &n)) <= 0) {
        error = r < 0 ? r : 0;
        goto done;
    }
    if (!(names = calloc(n, sizeof(*names)))) {
        error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        if (!(names[i] = strndup(f[i].ptr, f[i].len))) {
            names_free(names, i);
            names = NULL;
            error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
            goto done;
        }
    }
    *out = names;
    *nout = n;
done:
    if (keep && error == 0 && names)
        *keep = csv;
    else
        cairn_csv_free(csv);
    return error;
}

int cairn_data_columns(char ***out, size_t *nout, const char *path)
{
    char **files = NULL;
    size_t nfiles = 0;
    int error;

    *out = NULL;
    *nout = 0;
    if ((error = cairn__data_files(&files, &nfiles, path)) < 0)
        return error;
    for (size_t i = 0; i < nfiles && !*nout && error == 0; i++)
        error = header_of(out, nout, files[i], NULL);
    names_free(files, nfiles);
    if (error == 0 && !*nout)
        error = cairn_error_set(CAIRN_ENOTFOUND, "no header row in '%s'", path);
    return error;
}

struct col {
    char *name;
    double *v;
    size_t n;
    uint64_t seen, rng;
    int numeric;
};

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int add(struct col *c, const struct cairn_csv_field *f)
{
    double d;
    if (!c->numeric || f->len == 0)
        return 0;
    if (cairn__parse_float(&d, f->ptr, f->len) < 0) {
        c->numeric = 0;
        return 0;
    }
    if (isnan(d))
        return 0;
    if (!c->v && !(c->v = malloc(CAIRN_DRIFT_SAMPLE * sizeof(double))))
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    if (c->n < CAIRN_DRIFT_SAMPLE) {
        c->v[c->n++] = d;
    } else {
        uint64_t r = splitmix(&c->rng) % (c->seen + 1);
        if (r < CAIRN_DRIFT_SAMPLE)
            c->v[r] = d;
    }
    c->seen++;
    return 0;
}

int cairn_data_numeric_sample(struct cairn_data_sample **out, const char *path,
                              const char *skip_column)
{
    char **files = NULL, **hdr = NULL;
    size_t nfiles = 0, ncols = 0, nhdr = 0;
    struct col *cols = NULL;
    ssize_t *map = NULL;
    struct cairn_data_sample *s = NULL;
    uint64_t rows = 0;
    int error;

    *out = NULL;
    if ((error = cairn__data_files(&files, &nfiles, path)) < 0)
        return error;
    for (size_t fi = 0; fi < nfiles; fi++) {
        struct cairn_csv *csv = NULL;
        const struct cairn_csv_field *f;
        size_t n;
        int r;
        names_free(hdr, nhdr);
        if ((error = header_of(&hdr, &nhdr, files[fi], &csv)) < 0)
            goto done;
        if (!nhdr)
            continue;
        if (!cols) {
            /* The first file's header fixes the columns; later files map by name. */
            if (!(cols = calloc(nhdr, sizeof(*cols)))) {
                cairn_csv_free(csv);
                error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
                goto done;
            }
            ncols = nhdr;
            for (size_t j = 0; j < nhdr; j++) {
                cols[j].name = hdr[j];
                hdr[j] = NULL;
                cols[j].numeric = !skip_column || strcmp(cols[j].name, skip_column);
                cols[j].rng = cairn__hash64(cols[j].name, strlen(cols[j].name));
            }
        }
        free(map);
        if (!(map = malloc(nhdr * sizeof(*map)))) {
            cairn_csv_free(csv);
            error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
            goto done;
        }
        for (size_t j = 0; j < nhdr; j++) {
            map[j] = -1;
            for (size_t k = 0; k < ncols && hdr[j]; k++)
                if (!strcmp(cols[k].name, hdr[j]))
                    map[j] = (ssize_t)k;
            if (!hdr[j]) /* the first file: columns in order */
                map[j] = (ssize_t)j;
        }
        while ((r = cairn_csv_next(csv, &f, &n)) == 1) {
            rows++;
            for (size_t j = 0; j < n && j < nhdr && error == 0; j++)
                if (map[j] >= 0)
                    error = add(&cols[map[j]], &f[j]);
            if (error < 0)
                break;
        }
        cairn_csv_free(csv);
        if (r < 0 && error == 0)
            error = r;
        if (error < 0)
            goto done;
    }
    if (!cols) {
        error = cairn_error_set(CAIRN_ENOTFOUND, "no header row in '%s'", path);
        goto done;
    }
    if (!(s = calloc(1, sizeof(*s))) || !(s->names = calloc(ncols, sizeof(*s->names))) ||
        !(s->values = calloc(ncols, sizeof(*s->values))) ||
        !(s->counts = calloc(ncols, sizeof(*s->counts)))) {
        error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
        goto done;
    }
    s->rows = rows;
    for (size_t j = 0; j < ncols; j++) {
        if (!cols[j].numeric || !cols[j].n)
            continue;
        qsort(cols[j].v, cols[j].n, sizeof(double), cmp_double);
        s->names[s->ncols] = cols[j].name;
        s->values[s->ncols] = cols[j].v;
        s->counts[s->ncols] = cols[j].n;
        s->ncols++;
        cols[j].name = NULL;
        cols[j].v = NULL;
    }
    *out = s;
    s = NULL;
done:
    for (size_t j = 0; j < ncols; j++) {
        free(cols[j].name);
        free(cols[j].v);
    }
    free(cols);
    free(map);
    names_free(hdr, nhdr);
    names_free(files, nfiles);
    cairn_data_sample_free(s);
    return error;
}

void cairn_data_sample_free(struct cairn_data_sample *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->ncols; i++) {
        free(s->names[i]);
        free(s->values[i]);
    }
    free(s->names);
    free(s->values);
    free(s->counts);
    free(s);
}
