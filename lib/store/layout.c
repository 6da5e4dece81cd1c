/*
 * Tensor tables, dtype geometry and file layouts (see layout.h).
 *
 * cairn_layout_detect() is called once per file on `add`, so it reads only
 * the header: 8 bytes then the declared safetensors header, or a growing
 * prefix for GGUF (whose header length is only known by walking it), never
 * more than CAIRN_LAYOUT_HEADER_MAX. A header that fails any check is not an
 * error: the file is still stored, just chunked generically, and the user is
 * warned once. Only I/O errors and out-of-memory propagate.
 */
#include <stdlib.h>
#include <string.h>

#include "store/gguf.h"
#include "store/layout.h"
#include "store/safetensors.h"
#include "util/buf.h"
#include "util/fs.h"

static const struct cairn_dtype_info dtypes[CAIRN_DT__COUNT] = {
    [CAIRN_DT_BOOL] = { "BOOL", 1, 1, 1 },
    [CAIRN_DT_U8] = { "U8", 1, 1, 1 },
    [CAIRN_DT_I8] = { "I8", 1, 1, 1 },
    [CAIRN_DT_U16] = { "U16", 1, 2, 1 },
    [CAIRN_DT_I16] = { "I16", 1, 2, 1 },
    [CAIRN_DT_U32] = { "U32", 1, 4, 1 },
    [CAIRN_DT_I32] = { "I32", 1, 4, 1 },
    [CAIRN_DT_U64] = { "U64", 1, 8, 1 },
    [CAIRN_DT_I64] = { "I64", 1, 8, 1 },
    [CAIRN_DT_F8_E4M3] = { "F8_E4M3", 1, 1, 1 },
    [CAIRN_DT_F8_E5M2] = { "F8_E5M2", 1, 1, 1 },
    [CAIRN_DT_F8_E8M0] = { "F8_E8M0", 1, 1, 1 },
    [CAIRN_DT_F16] = { "F16", 1, 2, 2 },
    [CAIRN_DT_BF16] = { "BF16", 1, 2, 2 },
    [CAIRN_DT_F32] = { "F32", 1, 4, 4 },
    [CAIRN_DT_F64] = { "F64", 1, 8, 8 },
    /* GGML block sizes, from ggml-common.h's block_* structs. */
    [CAIRN_DT_Q4_0] = { "Q4_0", 32, 18, 1 },
    [CAIRN_DT_Q4_1] = { "Q4_1", 32, 20, 1 },
    [CAIRN_DT_Q5_0] = { "Q5_0", 32, 22, 1 },
    [CAIRN_DT_Q5_1] = { "Q5_1", 32, 24, 1 },
    [CAIRN_DT_Q8_0] = { "Q8_0", 32, 34, 1 },
    [CAIRN_DT_Q8_1] = { "Q8_1", 32, 36, 1 },
    [CAIRN_DT_Q2_K] = { "Q2_K", 256, 84, 1 },
    [CAIRN_DT_Q3_K] = { "Q3_K", 256, 110, 1 },
    [CAIRN_DT_Q4_K] = { "Q4_K", 256, 144, 1 },
    [CAIRN_DT_Q5_K] = { "Q5_K", 256, 176, 1 },
    [CAIRN_DT_Q6_K] = { "Q6_K", 256, 210, 1 },
    [CAIRN_DT_Q8_K] = { "Q8_K", 256, 292, 1 },
    [CAIRN_DT_IQ2_XXS] = { "IQ2_XXS", 256, 66, 1 },
    [CAIRN_DT_IQ2_XS] = { "IQ2_XS", 256, 74, 1 },
    [CAIRN_DT_IQ3_XXS] = { "IQ3_XXS", 256, 98, 1 },
    [CAIRN_DT_IQ1_S] = { "IQ1_S", 256, 50, 1 },
    [CAIRN_DT_IQ4_NL] = { "IQ4_NL", 32, 18, 1 },
    [CAIRN_DT_IQ3_S] = { "IQ3_S", 256, 110, 1 },
    [CAIRN_DT_IQ2_S] = { "IQ2_S", 256, 82, 1 },
    [CAIRN_DT_IQ4_XS] = { "IQ4_XS", 256, 136, 1 },
    [CAIRN_DT_IQ1_M] = { "IQ1_M", 256, 56, 1 },
    [CAIRN_DT_TQ1_0] = { "TQ1_0", 256, 54, 1 },
    [CAIRN_DT_TQ2_0] = { "TQ2_0", 256, 66, 1 },
    [CAIRN_DT_MXFP4] = { "MXFP4", 32, 17, 1 },
};

const struct cairn_dtype_info *cairn_dtype_info(int dtype)
{
    if (dtype <= CAIRN_DT_UNKNOWN || dtype >= CAIRN_DT__COUNT)
        return NULL;
    return &dtypes[dtype];
}

int cairn_dtype_nbytes(uint64_t *out, int dtype, uint64_t nelems)
{
    const struct cairn_dtype_info *di = cairn_dtype_info(dtype);
    uint64_t blocks;

    if (!di)
        return cairn_error_set(CAIRN_EINVALID, "unknown dtype %d", dtype);
    if (nelems % di->block_elems)
        return cairn_error_set(CAIRN_EINVALID, "%llu elements are not a whole number of %s blocks",
                               (unsigned long long)nelems, di->name);
    blocks = nelems / di->block_elems;
    if (__builtin_mul_overflow(blocks, (uint64_t)di->block_bytes, out))
        return cairn_error_set(CAIRN_EINVALID, "byte length of %llu %s elements overflows",
                               (unsigned long long)nelems, di->name);
    return 0;
}

void cairn_tensor_table_init(struct cairn_tensor_table *t)
{
    memset(t, 0, sizeof(*t));
}

void cairn_tensor_table_release(struct cairn_tensor_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->count; i++)
        free(t->tensors[i].name);
    for (size_t i = 0; i < t->meta_count; i++) {
        free(t->meta_keys[i]);
        free(t->meta_vals[i]);
    }
    free(t->tensors);
    free(t->meta_keys);
    free(t->meta_vals);
    cairn_tensor_table_init(t);
}

/* Grow an array of `elem`-sized items to hold one more; amortised doubling. */
static int grow(void **arr, size_t *alloc, size_t count, size_t elem)
{
    size_t n;
    void *p;

    if (count < *alloc)
        return 0;
    n = *alloc ? *alloc * 2 : 16;
    if (n > SIZE_MAX / elem)
        return cairn_error_set(CAIRN_ENOMEM, "tensor table too large");
    p = realloc(*arr, n * elem);
    if (!p)
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    *arr = p;
    *alloc = n;
    return 0;
}

int cairn_tensor_table_add(struct cairn_tensor_table *t, const char *name, int dtype, unsigned rank,
                           const uint64_t *shape, uint64_t start, uint64_t end)
{
    struct cairn_tensor *x;
    int error;

    if (rank > CAIRN_TENSOR_MAX_RANK)
        return cairn_error_set(CAIRN_EINVALID, "tensor '%s' has rank %u (at most %d)", name, rank,
                               CAIRN_TENSOR_MAX_RANK);
    if (strlen(name) > CAIRN_TENSOR_NAME_MAX)
        return cairn_error_set(CAIRN_EINVALID,
                               "tensor name '%.40s...' is %zu bytes long (at most %d)", name,
                               strlen(name), CAIRN_TENSOR_NAME_MAX);
    if ((error = grow((void **)&t->tensors, &t->alloc, t->count, sizeof(*t->tensors))) < 0)
        return error;
    x = &t->tensors[t->count];
    memset(x, 0, sizeof(*x));
    if (!(x->name = strdup(name)))
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    x->dtype = dtype;
    x->rank = rank;
    if (rank)
        memcpy(x->shape, shape, rank * sizeof(*shape));
    x->start = start;
    x->end = end;
    t->count++;
    return 0;
}

int cairn_tensor_table_add_meta(struct cairn_tensor_table *t, const char *key, const char *val)
{
    size_t alloc = t->meta_alloc;
    char *k = NULL, *v = NULL;
    int error;

    if ((error = grow((void **)&t->meta_keys, &alloc, t->meta_count, sizeof(char *))) < 0)
        goto done;
    alloc = t->meta_alloc;
    if ((error = grow((void **)&t->meta_vals, &alloc, t->meta_count, sizeof(char *))) < 0)
        goto done;
    t->meta_alloc = alloc;
    if (!(k = strdup(key)) || !(v = strdup(val))) {
        error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
        goto done;
    }
    t->meta_keys[t->meta_count] = k;
    t->meta_vals[t->meta_count] = v;
    t->meta_count++;
    k = v = NULL;
done:
    free(k);
    free(v);
    return error;
}

const struct cairn_tensor *cairn_tensor_table_find(const struct cairn_tensor_table *t,
                                                   const char *name)
{
    for (size_t i = 0; i < t->count; i++)
        if (!strcmp(t->tensors[i].name, name))
            return &t->tensors[i];
    return NULL;
}

int cairn_tensor_nelems(uint64_t *out, const struct cairn_tensor *x)
{
    uint64_t n = 1;

    for (unsigned i = 0; i < x->rank; i++)
        if (__builtin_mul_overflow(n, x->shape[i], &n))
            return cairn_error_set(CAIRN_EINVALID, "element count of tensor '%s' overflows",
                                   x->name);
    *out = n;
    return 0;
}

static int cmp_start(const void *a, const void *b)
{
    const struct cairn_tensor *x = *(const struct cairn_tensor *const *)a;
    const struct cairn_tensor *y = *(const struct cairn_tensor *const *)b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    /* Zero-length tensors first, so one sitting at another's start is not an overlap. */
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return 0;
}

/* Sorted pointers into t->tensors (caller frees); NULL with an error set on failure. */
static const struct cairn_tensor **sorted_tensors(const struct cairn_tensor_table *t)
{
    const struct cairn_tensor **v;

    if (!(v = calloc(t->count ? t->count : 1, sizeof(*v)))) {
        cairn_error_set(CAIRN_ENOMEM, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < t->count; i++)
        v[i] = &t->tensors[i];
    qsort(v, t->count, sizeof(*v), cmp_start);
    return v;
}

int cairn__tensor_table_check(const struct cairn_tensor_table *t, uint64_t file_size)
{
    const struct cairn_tensor **v = NULL;
    uint64_t prev_end;
    int error = 0;

    if (t->data_start > file_size) {
        error = cairn_error_set(CAIRN_EINVALID, "data section starts past the end of the file");
        goto done;
    }
    for (size_t i = 0; i < t->count; i++) {
        const struct cairn_tensor *x = &t->tensors[i];
        uint64_t n, bytes;
        if ((error = cairn_tensor_nelems(&n, x)) < 0 ||
            (error = cairn_dtype_nbytes(&bytes, x->dtype, n)) < 0) {
            cairn_error_prefix("tensor '%s'", x->name);
            goto done;
        }
        if (x->end < x->start || x->start < t->data_start || x->end > file_size) {
            error = cairn_error_set(CAIRN_EINVALID, "tensor '%s' lies outside the data section",
                                    x->name);
            goto done;
        }
        if (x->end - x->start != bytes) {
            error = cairn_error_set(
                CAIRN_EINVALID, "tensor '%s' spans %llu bytes but its shape needs %llu", x->name,
                (unsigned long long)(x->end - x->start), (unsigned long long)bytes);
            goto done;
        }
    }
    if (!(v = sorted_tensors(t))) {
        error = CAIRN_ENOMEM;
        goto done;
    }
    prev_end = t->data_start;
    for (size_t i = 0; i < t->count; i++) {
        if (v[i]->start < prev_end) {
            error =
                cairn_error_set(CAIRN_EINVALID, "tensor '%s' overlaps another tensor", v[i]->name);
            goto done;
        }
        if (v[i]->end > prev_end)
            prev_end = v[i]->end;
    }
done:
    free(v);
    return error;
}

/* ---- layouts ---- */

static int add_region(struct cairn_layout *l, size_t *alloc, int kind, uint64_t off, uint64_t len,
                      const struct cairn_tensor *x)
{
    struct cairn_region *r;
    int error;

    if (!len)
        return 0;
    if ((error = grow((void **)&l->regions, alloc, l->count, sizeof(*l->regions))) < 0)
        return error;
    r = &l->regions[l->count++];
    memset(r, 0, sizeof(*r));
    r->kind = kind;
    r->offset = off;
    r->len = len;
    r->tensor = x;
    if (x) {
        const struct cairn_dtype_info *di = cairn_dtype_info(x->dtype);
        r->group = di->group;
        r->unit = di->block_bytes;
    }
    return 0;
}

/* Regions from a checked table: opaque gaps between the tensors sorted by offset. */
static int build_regions(struct cairn_layout *l, uint64_t file_size)
{
    const struct cairn_tensor **v = NULL;
    size_t alloc = 0;
    uint64_t pos = 0;
    int error = 0;

    if (!(v = sorted_tensors(&l->table))) {
        error = CAIRN_ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < l->table.count; i++) {
        if (v[i]->start == v[i]->end)
            continue;
        if ((error = add_region(l, &alloc, CAIRN_REGION_OPAQUE, pos, v[i]->start - pos, NULL)) <
                0 ||
            (error = add_region(l, &alloc, CAIRN_REGION_TENSOR, v[i]->start,
                                v[i]->end - v[i]->start, v[i])) < 0)
            goto done;
        pos = v[i]->end;
    }
    error = add_region(l, &alloc, CAIRN_REGION_OPAQUE, pos, file_size - pos, NULL);
done:
    free(v);
    return error;
}

static int whole_file(struct cairn_layout *l, uint64_t file_size)
{
    size_t alloc = 0;

    cairn_tensor_table_release(&l->table);
    free(l->regions);
    l->regions = NULL;
    l->count = 0;
    l->format = CAIRN_FORMAT_NONE;
    return add_region(l, &alloc, CAIRN_REGION_OPAQUE, 0, file_size, NULL);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = s ? strlen(s) : 0, b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

/* Which format the first bytes (and the name) suggest; NONE if neither. */
static int sniff(const char *name, const unsigned char *p, size_t len, uint64_t file_size)
{
    if (len >= 4 && !memcmp(p, "GGUF", 4))
        return CAIRN_FORMAT_GGUF;
    if (len >= 9 && p[8] == '{') {
        uint64_t n = cairn_get_u64le(p);
        if (n <= CAIRN_SAFETENSORS_HEADER_MAX && n <= file_size - 8)
            return CAIRN_FORMAT_SAFETENSORS;
    }
    if (ends_with(name, ".gguf"))
        return CAIRN_FORMAT_GGUF;
    if (ends_with(name, ".safetensors"))
        return CAIRN_FORMAT_SAFETENSORS;
    return CAIRN_FORMAT_NONE;
}

/*
 * Parse with the reader for `fmt`. Returns 0 (table filled), CAIRN_GGUF_MORE,
 * CAIRN_EINVALID (damaged: fall back) or another negative error.
 */
static int parse(struct cairn_tensor_table *t, int fmt, const void *p, size_t len,
                 uint64_t file_size)
{
    if (fmt == CAIRN_FORMAT_GGUF)
        return cairn_gguf_parse(t, p, len, file_size);
    return cairn_safetensors_parse(t, p, len, file_size);
}

/* After a parse: regions, or the fallback with a warning when damaged. */
static int finish(struct cairn_layout *out, const char *name, int fmt, int perr, uint64_t file_size)
{
    int error;

    if (perr == CAIRN_GGUF_MORE)
        perr = cairn_error_set(CAIRN_EINVALID, "header longer than %zu bytes",
                               CAIRN_LAYOUT_HEADER_MAX);
    if (perr == 0) {
        out->format = fmt;
        if ((error = build_regions(out, file_size)) == 0)
            return 0;
        if (error != CAIRN_EINVALID)
            return error;
        perr = error;
    }
    if (perr != CAIRN_EINVALID)
        return perr;
    cairn_warn("'%s': damaged %s header (%s), falling back to generic chunking",
               name ? name : "(unnamed)", fmt == CAIRN_FORMAT_GGUF ? "GGUF" : "safetensors",
               cairn_error_last());
    cairn_error_clear();
    return whole_file(out, file_size);
}

int cairn_layout_from_prefix(struct cairn_layout *out, const char *name_for_msgs,
                             const void *prefix, size_t prefix_len, uint64_t file_size)
{
    int fmt, perr;

    memset(out, 0, sizeof(*out));
    if (prefix_len > file_size)
        prefix_len = (size_t)file_size;
    fmt = sniff(name_for_msgs, prefix, prefix_len, file_size);
    if (fmt == CAIRN_FORMAT_NONE)
        return whole_file(out, file_size);
    perr = parse(&out->table, fmt, prefix, prefix_len, file_size);
    return finish(out, name_for_msgs, fmt, perr, file_size);
}

/* Read [0, want) of fd into buf (replacing its contents). */
static int read_prefix(struct cairn_buf *buf, const char *name, int fd, size_t want)
{
    ssize_t got;
    int error;

    cairn_buf_clear(buf);
    if ((error = cairn_buf_grow(buf, want)) < 0)
        return error;
    got = cairn_fs_pread_full(fd, buf->ptr, want, 0);
    if (got < 0)
        return cairn_error_set_errno(CAIRN_ERROR, "cannot read '%s'", name ? name : "(unnamed)");
    buf->len = (size_t)got;
    return 0;
}

int cairn_layout_detect(struct cairn_layout *out, const char *name_for_msgs, int fd,
                        uint64_t file_size)
{
    struct cairn_buf buf;
    size_t want;
    int fmt, perr, error;

    memset(out, 0, sizeof(*out));
    cairn_buf_init(&buf, CAIRN_LAYOUT_HEADER_MAX + 16);
    want = file_size < 64 ? (size_t)file_size : 64;
    if ((error = read_prefix(&buf, name_for_msgs, fd, want)) < 0)
        goto done;
    fmt = sniff(name_for_msgs, (const unsigned char *)buf.ptr, buf.len, file_size);
    if (fmt == CAIRN_FORMAT_NONE) {
        error = whole_file(out, file_size);
        goto done;
    }
    if (fmt == CAIRN_FORMAT_SAFETENSORS) {
        uint64_t hsize;
        perr = cairn_safetensors_header_size(&hsize, buf.ptr, buf.len, file_size);
        if (perr == 0) {
            if ((error = read_prefix(&buf, name_for_msgs, fd, (size_t)hsize)) < 0)
                goto done;
            perr = parse(&out->table, fmt, buf.ptr, buf.len, file_size);
        }
    } else {
        /* GGUF: start with 1 MiB (enough for most headers without a big
         * vocabulary) and double; each retry reparses, so the total cost
         * stays under twice the final prefix. */
        want = (size_t)1 << 20;
        for (;;) {
            if (want > file_size)
                want = (size_t)file_size;
            if ((error = read_prefix(&buf, name_for_msgs, fd, want)) < 0)
                goto done;
            perr = parse(&out->table, fmt, buf.ptr, buf.len, file_size);
            if (perr != CAIRN_GGUF_MORE || want >= CAIRN_LAYOUT_HEADER_MAX || want >= file_size)
                break;
            want = want * 2 > CAIRN_LAYOUT_HEADER_MAX ? CAIRN_LAYOUT_HEADER_MAX : want * 2;
        }
    }
    error = finish(out, name_for_msgs, fmt, perr, file_size);
done:
    cairn_buf_release(&buf);
    if (error < 0)
        cairn_layout_release(out);
    return error;
}

void cairn_layout_release(struct cairn_layout *l)
{
    if (!l)
        return;
    cairn_tensor_table_release(&l->table);
    free(l->regions);
    memset(l, 0, sizeof(*l));
}

size_t cairn_layout_piece_size(const struct cairn_region *r)
{
    size_t piece;

    if (r->kind != CAIRN_REGION_TENSOR || !r->unit)
        return 0;
    piece = CAIRN_LAYOUT_PIECE - CAIRN_LAYOUT_PIECE % r->unit;
    return piece ? piece : r->unit;
}
