/*
 * MLP classifier: safetensors loading, weight conversion and batched
 * inference; see mlp.h and docs/serve-model.md.
 *
 * The file is outside input. The loader reads the 8-byte header length,
 * caps it, parses the JSON header with duplicate keys rejected, and checks
 * every tensor it uses: known dtype, rank, shape against the previous layer,
 * byte range inside the data section and exactly as long as dtype and shape
 * say. Only the tensors a layer needs are read (pread), each once, straight
 * into its fp32 form. This is a private reader of the safetensors subset the
 * MLP needs; lib/store/safetensors.c is the general one.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "cairn/common.h"
#include "model/half.h"
#include "model/blas.h"
#include "model/mlp.h"
#include "util/buf.h"
#include "util/fs.h"

#define HEADER_MAX  ((uint64_t)100 << 20)
#define CLASSES_MAX 65536

enum wdtype { WD_F32, WD_F16, WD_BF16, WD_I8 };
static const char *const wd_names[] = { "F32", "F16", "BF16", "I8" };
static const unsigned wd_size[] = { 4, 2, 2, 1 };

struct layer {
    size_t in, out;
    float *w; /* [out][in] */
    float *b; /* [out] */
};

struct cairn_mlp {
    struct layer layers[CAIRN_MLP_MAX_LAYERS];
    size_t nlayers;
    size_t max_width;
    int activation;
    int wdtype;
    char **labels; /* NULL or num_classes strings */
};

struct stfile {
    const char *path;
    int fd;
    uint64_t size;
    uint64_t data_start;
    json_t *root;
};

static int parse_dtype(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, wd_names[i]))
            return i;
    return -1;
}

#define ANY_FLOAT (-1)
#define ANY_DTYPE (-2)

/*
 * Look up tensor `name` and check its dtype (`want`: one dtype, ANY_FLOAT or
 * ANY_DTYPE), rank and dims (a nonzero dims[i] is required, a zero one is
 * filled in), and that its bytes lie in the file. Returns the absolute offset.
 */
static int tensor_get(const struct stfile *f, const char *name, int want, unsigned rank,
                      uint64_t *dims, int *dtype_out, uint64_t *off_out)
{
    json_t *t = json_object_get(f->root, name), *shape, *offs;
    const char *ds;
    int dt;
    uint64_t n = 1, a, b;

    if (!t || !json_is_object(t))
        return cairn_error_set(CAIRN_EINVALID, "'%s': missing tensor '%s'", f->path, name);
    ds = json_string_value(json_object_get(t, "dtype"));
    shape = json_object_get(t, "shape");
    offs = json_object_get(t, "data_offsets");
    if (!ds || !json_is_array(shape) || !json_is_array(offs) || json_array_size(offs) != 2)
        return cairn_error_set(CAIRN_EINVALID, "'%s': malformed entry for tensor '%s'", f->path,
                               name);
    dt = parse_dtype(ds);
    if (dt < 0 || (want >= 0 && dt != want) || (want == ANY_FLOAT && dt == WD_I8))
        return cairn_error_set(CAIRN_EINVALID, "'%s': tensor '%s' has unsupported dtype '%s'",
                               f->path, name, ds);
    if (json_array_size(shape) != rank)
        return cairn_error_set(CAIRN_EINVALID, "'%s': tensor '%s' must have rank %u", f->path, name,
                               rank);
    for (unsigned i = 0; i < rank; i++) {
        json_t *d = json_array_get(shape, i);
        json_int_t v = json_is_integer(d) ? json_integer_value(d) : -1;
        if (v < 1 || (uint64_t)v > CAIRN_MLP_MAX_WIDTH)
            return cairn_error_set(CAIRN_EINVALID, "'%s': tensor '%s' has a bad dimension", f->path,
                                   name);
        if (dims[i] && dims[i] != (uint64_t)v)
            return cairn_error_set(CAIRN_EINVALID,
                                   "'%s': tensor '%s' dimension %u is %lld, expected %llu", f->path,
                                   name, i, (long long)v, (unsigned long long)dims[i]);
        dims[i] = (uint64_t)v;
        n *= (uint64_t)v; /* <= 2^40 for rank 2: no overflow */
    }
    if (!json_is_integer(json_array_get(offs, 0)) || !json_is_integer(json_array_get(offs, 1)) ||
        json_integer_value(json_array_get(offs, 0)) < 0 ||
        json_integer_value(json_array_get(offs, 1)) < 0)
        return cairn_error_set(CAIRN_EINVALID, "'%s': tensor '%s' has bad data_offsets", f->path,
                               name);
    a = (uint64_t)json_integer_value(json_array_get(offs, 0));
    b = (uint64_t)json_integer_value(json_array_get(offs, 1));
    if (a > b || b > f->size - f->data_start || b - a != n * wd_size[dt])
        return cairn_error_set(
            CAIRN_EINVALID, "'%s': tensor '%s' data range does not match its shape", f->path, name);
    *dtype_out = dt;
    *off_out = f->data_start + a;
    return 0;
}

/* Read `n` elements of dtype `dt` at `off` and convert to fp32 into `out`. */
static int read_floats(const struct stfile *f, float *out, int dt, uint64_t off, size_t n)
{
    size_t bytes = n * wd_size[dt];
    void *raw = dt == WD_F32 ? (void *)out : malloc(bytes ? bytes : 1);
    ssize_t got;
    int error = 0;

    if (!raw)
        return cairn_error_set(CAIRN_ENOMEM, "out of memory reading '%s'", f->path);
    got = cairn_fs_pread_full(f->fd, raw, bytes, (off_t)off);
    if (got < 0 || (size_t)got != bytes) {
        error = cairn_error_set(CAIRN_ERROR, "cannot read '%s'", f->path);
        goto done;
    }
    switch (dt) {
    case WD_F32: {
        /* In place, from little-endian file order: a no-op on little-endian hosts. */
        const unsigned char *p = raw;
        for (size_t i = 0; i < n; i++) {
            uint32_t u = cairn_get_u32le(p + 4 * i);
            memcpy(&out[i], &u, 4);
        }
        break;
    }
    case WD_F16:
        cairn_fp16_to_fp32_n(out, raw, n);
        break;
    case WD_BF16:
        cairn_bf16_to_fp32_n(out, raw, n);
        break;
    case WD_I8:
        for (size_t i = 0; i < n; i++)
            out[i] = (float)((const int8_t *)raw)[i];
        break;
    }
done:
    if (raw != (void *)out)
        free(raw);
    return error;
}

/* A NaN or Inf in a tensor would poison every answer: refuse the model at load. */
static int check_finite(const struct stfile *f, const char *name, const float *v, size_t n)
{
    for (size_t k = 0; k < n; k++)
        if (!isfinite(v[k]))
            return cairn_error_set(CAIRN_EINVALID,
                                   "'%s': tensor '%s' holds a non-finite value (%s at element %zu)",
                                   f->path, name, isnan(v[k]) ? "NaN" : "Inf", k);
    return 0;
}

static int load_layer(struct cairn_mlp *m, const struct stfile *f, size_t i, uint64_t in,
                      uint64_t *params)
{
    char name[64];
    uint64_t wdims[2] = { 0, in }, bdims[1], sdims[1];
    int wdt, bdt, sdt, error;
    uint64_t woff, boff, soff;
    struct layer *l = &m->layers[i];
    float *scale = NULL;

    snprintf(name, sizeof(name), "layers.%zu.weight", i);
    /* Every layer must store its weights like the first: one model, one dtype. */
    if ((error = tensor_get(f, name, i ? m->wdtype : ANY_DTYPE, 2, wdims, &wdt, &woff)) < 0)
        goto done;
    if (i == 0)
        m->wdtype = wdt;
    if (wdims[0] * wdims[1] > CAIRN_MLP_MAX_PARAMS - *params) {
        error = cairn_error_set(CAIRN_EINVALID, "'%s': more than %llu parameters", f->path,
                                (unsigned long long)CAIRN_MLP_MAX_PARAMS);
        goto done;
    }
    *params += wdims[0] * wdims[1] + wdims[0];
    bdims[0] = sdims[0] = wdims[0];
    snprintf(name, sizeof(name), "layers.%zu.bias", i);
    if ((error = tensor_get(f, name, ANY_FLOAT, 1, bdims, &bdt, &boff)) < 0)
        goto done;
    l->in = (size_t)wdims[1];
    l->out = (size_t)wdims[0];
    l->w = malloc(l->in * l->out * sizeof(float));
    l->b = malloc(l->out * sizeof(float));
    if (!l->w || !l->b) {
        error = cairn_error_set(CAIRN_ENOMEM, "out of memory loading '%s'", f->path);
        goto done;
    }
    if ((error = read_floats(f, l->b, bdt, boff, l->out)) < 0 ||
        (error = check_finite(f, name, l->b, l->out)) < 0 ||
        (error = read_floats(f, l->w, wdt, woff, l->in * l->out)) < 0)
        goto done;
    if (wdt == WD_I8) {
        snprintf(name, sizeof(name), "layers.%zu.weight_scale", i);
        if ((error = tensor_get(f, name, ANY_FLOAT, 1, sdims, &sdt, &soff)) < 0)
            goto done;
        if (!(scale = malloc(l->out * sizeof(float)))) {
            error = cairn_error_set(CAIRN_ENOMEM, "out of memory loading '%s'", f->path);
            goto done;
        }
        if ((error = read_floats(f, scale, sdt, soff, l->out)) < 0 ||
            (error = check_finite(f, name, scale, l->out)) < 0)
            goto done;
        for (size_t r = 0; r < l->out; r++)
            for (size_t c = 0; c < l->in; c++)
                l->w[r * l->in + c] *= scale[r];
    }
    /* After scaling: a finite int8 weight times a huge scale may overflow. */
    snprintf(name, sizeof(name), "layers.%zu.weight", i);
    error = check_finite(f, name, l->w, l->in * l->out);
done:
    free(scale);
    return error;
}

static const char *meta_get(const struct stfile *f, const char *key)
{
    return json_string_value(json_object_get(json_object_get(f->root, "__metadata__"), key));
}

static int parse_meta(struct cairn_mlp *m, const struct stfile *f)
{
    json_t *meta = json_object_get(f->root, "__metadata__");
    const char *arch, *act, *outp, *classes;
    const char *k;
    json_t *v;

    if (meta) {
        if (!json_is_object(meta))
            return cairn_error_set(CAIRN_EINVALID, "'%s': __metadata__ is not an object", f->path);
        json_object_foreach(meta, k, v) if (!json_is_string(v)) return cairn_error_set(
            CAIRN_EINVALID, "'%s': metadata '%s' is not a string", f->path, k);
    }
    arch = meta_get(f, "cairn.arch");
    act = meta_get(f, "cairn.activation");
    outp = meta_get(f, "cairn.output");
    classes = meta_get(f, "cairn.classes");
    if (!arch || strcmp(arch, "mlp"))
        return cairn_error_set(CAIRN_EINVALID, "'%s': cairn.arch must be 'mlp'", f->path);
    if (!act || !strcmp(act, "relu"))
        m->activation = CAIRN_MLP_RELU;
    else if (!strcmp(act, "tanh"))
        m->activation = CAIRN_MLP_TANH;
    else if (!strcmp(act, "sigmoid"))
        m->activation = CAIRN_MLP_SIGMOID;
    else
        return cairn_error_set(CAIRN_EINVALID, "'%s': unknown cairn.activation '%s'", f->path, act);
    if (outp && strcmp(outp, "softmax"))
        return cairn_error_set(CAIRN_EINVALID, "'%s': unknown cairn.output '%s'", f->path, outp);
    (void)classes; /* checked against the output width once the layers are known */
    return 0;
}

/* Split `cairn.classes` on commas; the count must equal the output width. */
static int parse_classes(struct cairn_mlp *m, const struct stfile *f, size_t n)
{
    const char *s = meta_get(f, "cairn.classes"), *p;
    size_t count = 1, i = 0;

    if (!s)
        return 0;
    for (p = s; *p; p++)
        count += *p == ',';
    if (count != n)
        return cairn_error_set(CAIRN_EINVALID,
                               "'%s': cairn.classes names %zu classes, the "
                               "model has %zu",
                               f->path, count, n);
    if (!(m->labels = calloc(n, sizeof(*m->labels))))
        return cairn_error_set(CAIRN_ENOMEM, "out of memory loading '%s'", f->path);
    for (p = s; i < n; i++) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (!(m->labels[i] = strndup(p, len)))
            return cairn_error_set(CAIRN_ENOMEM, "out of memory loading '%s'", f->path);
        p += len + 1;
    }
    return 0;
}

/* Read and parse the header of `f->path` into f->root. */
static int open_header(struct stfile *f)
{
    unsigned char len8[8];
    struct stat st;
    uint64_t n;
    char *hdr = NULL;
    json_error_t jerr;
    int error = 0;

    if ((f->fd = open(f->path, O_RDONLY | O_CLOEXEC)) < 0) {
        error = cairn_error_set_errno(errno == ENOENT ? CAIRN_ENOTFOUND : CAIRN_ERROR,
                                      "cannot open '%s'", f->path);
        goto done;
    }
    if (fstat(f->fd, &st) < 0) {
        error = cairn_error_set_errno(CAIRN_ERROR, "cannot stat '%s'", f->path);
        goto done;
    }
    f->size = (uint64_t)st.st_size;
    if (cairn_fs_pread_full(f->fd, len8, 8, 0) != 8) {
        error = cairn_error_set(CAIRN_EINVALID, "'%s': not a safetensors file", f->path);
        goto done;
    }
    n = cairn_get_u64le(len8);
    if (n < 2 || n > HEADER_MAX || n > f->size - 8) {
        error = cairn_error_set(CAIRN_EINVALID, "'%s': bad safetensors header length", f->path);
        goto done;
    }
    f->data_start = 8 + n;
    if (!(hdr = malloc((size_t)n))) {
        error = cairn_error_set(CAIRN_ENOMEM, "out of memory reading '%s'", f->path);
        goto done;
    }
    if (cairn_fs_pread_full(f->fd, hdr, (size_t)n, 8) != (ssize_t)n) {
        error = cairn_error_set(CAIRN_ERROR, "cannot read '%s'", f->path);
        goto done;
    }
    f->root = json_loadb(hdr, (size_t)n, JSON_REJECT_DUPLICATES | JSON_DISABLE_EOF_CHECK, &jerr);
    if (!f->root || !json_is_object(f->root)) {
        error = cairn_error_set(CAIRN_EINVALID, "'%s': bad safetensors header: %s", f->path,
                                f->root ? "not an object" : jerr.text);
        goto done;
    }
done:
    free(hdr);
    return error;
}

/* Number of layers: consecutive layers.{i}.weight from 0; none may lie beyond. */
static int count_layers(size_t *out, const struct stfile *f)
{
    size_t n = 0;
    const char *k;
    json_t *v;
    char name[64];

    for (;;) {
        snprintf(name, sizeof(name), "layers.%zu.weight", n);
        if (!json_object_get(f->root, name))
            break;
        if (++n > CAIRN_MLP_MAX_LAYERS)
            return cairn_error_set(CAIRN_EINVALID, "'%s': more than %d layers", f->path,
                                   CAIRN_MLP_MAX_LAYERS);
    }
    if (n == 0)
        return cairn_error_set(CAIRN_EINVALID, "'%s': no tensor 'layers.0.weight'", f->path);
    json_object_foreach(f->root, k, v)
    {
        char *end;
        unsigned long idx;
        if (strncmp(k, "layers.", 7))
            continue;
        errno = 0;
        idx = strtoul(k + 7, &end, 10);
        if (end == k + 7 || errno || idx >= n)
            return cairn_error_set(CAIRN_EINVALID,
                                   "'%s': tensor '%s' is not part of layers "
                                   "0..%zu",
                                   f->path, k, n - 1);
    }
    *out = n;
    return 0;
}

int cairn_mlp_load(struct cairn_mlp **out, const char *path)
{
    struct stfile f = { path, -1, 0, 0, NULL };
    struct cairn_mlp *m = NULL;
    uint64_t params = 0;
    size_t n = 0;
    int error;

    *out = NULL;
    if (!(m = calloc(1, sizeof(*m)))) {
        error = cairn_error_set(CAIRN_ENOMEM, "out of memory loading '%s'", path);
        goto done;
    }
    if ((error = open_header(&f)) < 0 || (error = parse_meta(m, &f)) < 0 ||
        (error = count_layers(&n, &f)) < 0)
        goto done;
    for (size_t i = 0; i < n; i++) {
        if ((error = load_layer(m, &f, i, i ? m->layers[i - 1].out : 0, &params)) < 0)
            goto done;
        m->nlayers = i + 1;
        if (m->layers[i].out > m->max_width)
            m->max_width = m->layers[i].out;
    }
    if (m->layers[0].in > m->max_width)
        m->max_width = m->layers[0].in;
    if (m->layers[n - 1].out > CLASSES_MAX) {
        error = cairn_error_set(CAIRN_EINVALID, "'%s': more than %d classes", path, CLASSES_MAX);
        goto done;
    }
    if ((error = parse_classes(m, &f, m->layers[n - 1].out)) < 0)
        goto done;
    *out = m;
    m = NULL;
done:
    if (f.fd >= 0)
        close(f.fd);
    json_decref(f.root);
    cairn_mlp_free(m);
    return error;
}

static int has_suffix(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

/*
 * Collect the paths (relative to the walk's root) of the *.safetensors files
 * under `dir`, skipping hidden entries and not following symlinks. Stops
 * once `names` holds FIND_MAX_LIST, which is enough to say "several".
 */
#define FIND_MAX_LIST  8
#define FIND_MAX_DEPTH 32

struct find_state {
    struct cairn_buf names[FIND_MAX_LIST];
    size_t n, total;
};

static int find_walk(struct find_state *fs, const char *root, const char *rel, int depth)
{
    struct cairn_buf path = CAIRN_BUF_INIT, sub = CAIRN_BUF_INIT;
    char **names = NULL;
    size_t n = 0;
    int error;

    if (depth > FIND_MAX_DEPTH)
        return 0;
    if ((error = rel[0] ? cairn_fs_join(&path, root, rel) : cairn_buf_puts(&path, root)) < 0 ||
        (error = cairn_fs_list_dir(&names, &n, path.ptr)) < 0)
        goto done;
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        if (names[i][0] == '.')
            continue;
        cairn_buf_clear(&sub);
        if ((error = rel[0] ? cairn_fs_join(&sub, rel, names[i]) : cairn_buf_puts(&sub, names[i])) <
            0)
            goto done;
        cairn_buf_clear(&path);
        if ((error = cairn_fs_join(&path, root, sub.ptr)) < 0)
            goto done;
        if (lstat(path.ptr, &st) < 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            if ((error = find_walk(fs, root, sub.ptr, depth + 1)) < 0)
                goto done;
        } else if (S_ISREG(st.st_mode) && has_suffix(names[i], ".safetensors")) {
            if (fs->n < FIND_MAX_LIST && (error = cairn_buf_puts(&fs->names[fs->n++], sub.ptr)) < 0)
                goto done;
            fs->total++;
        }
    }
done:
    cairn_fs_names_free(names, n);
    cairn_buf_release(&path);
    cairn_buf_release(&sub);
    return error;
}

int cairn_mlp_find(struct cairn_buf *out, const char *dir)
{
    struct find_state fs;
    struct cairn_buf path = CAIRN_BUF_INIT, list = CAIRN_BUF_INIT;
    struct stat st;
    int error = 0;

    memset(&fs, 0, sizeof(fs));
    if ((error = cairn_fs_join(&path, dir, "model.safetensors")) < 0)
        goto done;
    if (stat(path.ptr, &st) == 0 && S_ISREG(st.st_mode)) {
        error = cairn_buf_puts(out, "model.safetensors");
        goto done;
    }
    if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
        error = cairn_error_set_errno(errno == ENOENT ? CAIRN_ENOTFOUND : CAIRN_ERROR,
                                      "cannot open '%s'", dir);
        goto done;
    }
    if ((error = find_walk(&fs, dir, "", 0)) < 0)
        goto done;
    if (fs.total == 0) {
        error = cairn_error_set(CAIRN_ENOTFOUND, "no *.safetensors file in '%s'", dir);
        goto done;
    }
    if (fs.total > 1) {
        for (size_t i = 0; i < fs.n; i++)
            cairn_buf_printf(&list, "%s'%s'", i ? ", " : "", fs.names[i].ptr);
        if (fs.total > fs.n)
            cairn_buf_printf(&list, " and %zu more", fs.total - fs.n);
        error = cairn_error_set(CAIRN_EINVALID,
                                "'%s' holds several *.safetensors files and no "
                                "model.safetensors: %s",
                                dir, list.ptr ? list.ptr : "");
        goto done;
    }
    error = cairn_buf_puts(out, fs.names[0].ptr);
done:
    for (size_t i = 0; i < FIND_MAX_LIST; i++)
        cairn_buf_release(&fs.names[i]);
    cairn_buf_release(&path);
    cairn_buf_release(&list);
    return error;
}

int cairn_mlp_load_dir(struct cairn_mlp **out, const char *dir)
{
    struct cairn_buf rel = CAIRN_BUF_INIT, path = CAIRN_BUF_INIT;
    int error;

    *out = NULL;
    if ((error = cairn_mlp_find(&rel, dir)) == 0 &&
        (error = cairn_fs_join(&path, dir, rel.ptr)) == 0)
        error = cairn_mlp_load(out, path.ptr);
    cairn_buf_release(&rel);
    cairn_buf_release(&path);
    return error;
}

void cairn_mlp_free(struct cairn_mlp *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < CAIRN_MLP_MAX_LAYERS; i++) {
        free(m->layers[i].w);
        free(m->layers[i].b);
    }
    if (m->labels)
        for (size_t i = 0; i < m->layers[m->nlayers - 1].out; i++)
            free(m->labels[i]);
    free(m->labels);
    free(m);
}

size_t cairn_mlp_num_inputs(const struct cairn_mlp *m)
{
    return m->layers[0].in;
}

size_t cairn_mlp_num_classes(const struct cairn_mlp *m)
{
    return m->layers[m->nlayers - 1].out;
}

size_t cairn_mlp_num_layers(const struct cairn_mlp *m)
{
    return m->nlayers;
}

int cairn_mlp_activation(const struct cairn_mlp *m)
{
    return m->activation;
}

const char *cairn_mlp_weight_dtype(const struct cairn_mlp *m)
{
    return wd_names[m->wdtype];
}

const char *cairn_mlp_class_label(const struct cairn_mlp *m, size_t i)
{
    return m->labels && i < cairn_mlp_num_classes(m) ? m->labels[i] : NULL;
}

size_t cairn_mlp_argmax(const float *v, size_t n)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (v[i] > v[best] || (isnan(v[best]) && !isnan(v[i])))
            best = i;
    return best;
}

static void activate(float *y, size_t n, int act)
{
    switch (act) {
    case CAIRN_MLP_RELU:
        for (size_t i = 0; i < n; i++)
            y[i] = y[i] > 0.0f ? y[i] : 0.0f;
        break;
    case CAIRN_MLP_TANH:
        for (size_t i = 0; i < n; i++)
            y[i] = tanhf(y[i]);
        break;
    case CAIRN_MLP_SIGMOID:
        for (size_t i = 0; i < n; i++)
            y[i] = 1.0f / (1.0f + expf(-y[i]));
        break;
    }
}

/* Softmax of each row in place; subtracting the row maximum keeps expf finite. */
static void softmax_rows(float *y, size_t rows, size_t n)
{
    for (size_t r = 0; r < rows; r++, y += n) {
        float mx = y[cairn_mlp_argmax(y, n)], sum = 0.0f;
        for (size_t i = 0; i < n; i++)
            sum += (y[i] = expf(y[i] - mx));
        for (size_t i = 0; i < n; i++)
            y[i] /= sum;
    }
}

int cairn_mlp_infer(const struct cairn_mlp *m, float *out, const float *x, size_t rows)
{
    float *scratch = NULL, *bufs[2];
    const float *in = x;
    size_t cells;
    int error = 0;

    if (rows == 0)
        goto done;
    if (rows > INT_MAX || rows > SIZE_MAX / 2 / sizeof(float) / m->max_width) {
        error = cairn_error_set(CAIRN_ENOMEM, "batch of %zu rows is too large", rows);
        goto done;
    }
    cells = rows * m->max_width;
    /* Two ping-pong activation buffers; the last layer writes straight to `out`. */
    if (m->nlayers > 1 && !(scratch = malloc(2 * cells * sizeof(float)))) {
        error = cairn_error_set(CAIRN_ENOMEM, "out of memory for a batch of %zu rows", rows);
        goto done;
    }
    bufs[0] = scratch;
    bufs[1] = scratch ? scratch + cells : NULL;
    for (size_t i = 0; i < m->nlayers; i++) {
        const struct layer *l = &m->layers[i];
        float *y = i + 1 == m->nlayers ? out : bufs[i & 1];
        for (size_t r = 0; r < rows; r++)
            memcpy(y + r * l->out, l->b, l->out * sizeof(float));
        if ((error = cairn__sgemm_abt((int)rows, (int)l->out, (int)l->in, 1.0f, in, (int)l->in,
                                      l->w, (int)l->in, 1.0f, y, (int)l->out)) < 0)
            goto done;
        if (i + 1 < m->nlayers)
            activate(y, rows * l->out, m->activation);
        in = y;
    }
    softmax_rows(out, rows, cairn_mlp_num_classes(m));
done:
    free(scratch);
    return error;
}
