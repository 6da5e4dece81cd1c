/*
 * GGUF v2/v3 header reader (see gguf.h).
 *
 * A cursor walks the prefix. Every length is checked twice before use:
 * against the file size (past it: the header is damaged) and against the
 * prefix (past it, but inside the file: ask the caller for more). Counts are
 * checked against the bytes left, assuming the smallest possible encoding of
 * each item, so a loop over a hostile count ends with the file and a table
 * never grows faster than the header bytes that back it.
 *
 * Metadata values are walked and skipped; only general.alignment is kept.
 * Keys and tensor names must be UTF-8 without NUL; string values are not
 * checked (real vocabularies carry raw bytes) beyond their bounds.
 */
#include <stdlib.h>
#include <string.h>

#include "store/gguf.h"
#include "util/buf.h"
#include "util/text.h"

#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_NAME_MAX          4096

enum gguf_vtype {
    GV_U8 = 0,
    GV_I8,
    GV_U16,
    GV_I16,
    GV_U32,
    GV_I32,
    GV_F32,
    GV_BOOL,
    GV_STRING,
    GV_ARRAY,
    GV_U64,
    GV_I64,
    GV_F64,
    GV__COUNT
};

/* Encoded size of each scalar type; 0 for the variable ones. */
static const unsigned vsize[GV__COUNT] = {
    [GV_U8] = 1,  [GV_I8] = 1,   [GV_U16] = 2, [GV_I16] = 2, [GV_U32] = 4, [GV_I32] = 4,
    [GV_F32] = 4, [GV_BOOL] = 1, [GV_U64] = 8, [GV_I64] = 8, [GV_F64] = 8,
};

/* GGML type numbers (ggml.h enum ggml_type); holes are retired types. */
static const int ggml_types[] = {
    [0] = CAIRN_DT_F32,     [1] = CAIRN_DT_F16,      [2] = CAIRN_DT_Q4_0,
    [3] = CAIRN_DT_Q4_1,    [6] = CAIRN_DT_Q5_0,     [7] = CAIRN_DT_Q5_1,
    [8] = CAIRN_DT_Q8_0,    [9] = CAIRN_DT_Q8_1,     [10] = CAIRN_DT_Q2_K,
    [11] = CAIRN_DT_Q3_K,   [12] = CAIRN_DT_Q4_K,    [13] = CAIRN_DT_Q5_K,
    [14] = CAIRN_DT_Q6_K,   [15] = CAIRN_DT_Q8_K,    [16] = CAIRN_DT_IQ2_XXS,
    [17] = CAIRN_DT_IQ2_XS, [18] = CAIRN_DT_IQ3_XXS, [19] = CAIRN_DT_IQ1_S,
    [20] = CAIRN_DT_IQ4_NL, [21] = CAIRN_DT_IQ3_S,   [22] = CAIRN_DT_IQ2_S,
    [23] = CAIRN_DT_IQ4_XS, [24] = CAIRN_DT_I8,      [25] = CAIRN_DT_I16,
    [26] = CAIRN_DT_I32,    [27] = CAIRN_DT_I64,     [28] = CAIRN_DT_F64,
    [29] = CAIRN_DT_IQ1_M,  [30] = CAIRN_DT_BF16,    [34] = CAIRN_DT_TQ1_0,
    [35] = CAIRN_DT_TQ2_0,  [39] = CAIRN_DT_MXFP4,
};

int cairn_gguf_dtype(uint32_t ggml_type)
{
    if (ggml_type >= sizeof(ggml_types) / sizeof(ggml_types[0]))
        return CAIRN_DT_UNKNOWN;
    return ggml_types[ggml_type];
}

struct cursor {
    const unsigned char *p;
    size_t len;         /* bytes present */
    uint64_t file_size; /* >= len */
    size_t pos;
};

/* 0 if `n` more bytes are present, CAIRN_GGUF_MORE if only the file has them. */
static int need(struct cursor *c, uint64_t n)
{
    if (n <= c->len - c->pos)
        return 0;
    if (n > c->file_size - c->pos)
        return cairn_error_set(CAIRN_EINVALID, "header runs past the end of the file");
    return CAIRN_GGUF_MORE;
}

/* Bytes the file holds after the cursor. */
static uint64_t left(const struct cursor *c)
{
    return c->file_size - c->pos;
}

static int get_u32(struct cursor *c, uint32_t *out)
{
    int r = need(c, 4);
    if (r)
        return r;
    *out = cairn_get_u32le(c->p + c->pos);
    c->pos += 4;
    return 0;
}

static int get_u64(struct cursor *c, uint64_t *out)
{
    int r = need(c, 8);
    if (r)
        return r;
    *out = cairn_get_u64le(c->p + c->pos);
    c->pos += 8;
    return 0;
}

/* A length-prefixed string: `*s` points into the prefix (not NUL-terminated). */
static int get_str(struct cursor *c, const char **s, uint64_t *n)
{
    int r;
    if ((r = get_u64(c, n)) || (r = need(c, *n)))
        return r;
    *s = (const char *)c->p + c->pos;
    c->pos += (size_t)*n;
    return 0;
}

static int skip_value(struct cursor *c, uint32_t type, int depth);

static int skip_array(struct cursor *c, int depth)
{
    uint32_t etype;
    uint64_t count, bytes;
    int r;

    if (depth >= CAIRN_GGUF_MAX_DEPTH)
        return cairn_error_set(CAIRN_EINVALID, "arrays nested deeper than %d",
                               CAIRN_GGUF_MAX_DEPTH);
    if ((r = get_u32(c, &etype)) || (r = get_u64(c, &count)))
        return r;
    if (etype >= GV__COUNT)
        return cairn_error_set(CAIRN_EINVALID, "unknown array element type %u", etype);
    if (vsize[etype]) {
        if (__builtin_mul_overflow(count, (uint64_t)vsize[etype], &bytes))
            return cairn_error_set(CAIRN_EINVALID, "array of %llu elements is absurd",
                                   (unsigned long long)count);
        if ((r = need(c, bytes)))
            return r;
        c->pos += (size_t)bytes;
        return 0;
    }
    /* Strings take at least 8 bytes, arrays at least 12: a count the file
     * cannot hold is rejected before the loop. */
    if (count > left(c) / (etype == GV_STRING ? 8 : 12))
        return cairn_error_set(CAIRN_EINVALID, "array of %llu elements is longer than the file",
                               (unsigned long long)count);
    for (uint64_t i = 0; i < count; i++)
        if ((r = skip_value(c, etype, depth + 1)))
            return r;
    return 0;
}

static int skip_value(struct cursor *c, uint32_t type, int depth)
{
    const char *s;
    uint64_t n;
    int r;

    if (type >= GV__COUNT)
        return cairn_error_set(CAIRN_EINVALID, "unknown value type %u", type);
    if (type == GV_STRING)
        return get_str(c, &s, &n);
    if (type == GV_ARRAY)
        return skip_array(c, depth);
    if ((r = need(c, vsize[type])))
        return r;
    c->pos += vsize[type];
    return 0;
}

static int parse_kv(struct cursor *c, uint32_t *alignment, int *seen_alignment)
{
    const char *key;
    uint64_t klen;
    uint32_t type, v;
    int r;

    if ((r = get_str(c, &key, &klen)))
        return r;
    if (klen > GGUF_NAME_MAX || !cairn_utf8_valid(key, (size_t)klen))
        return cairn_error_set(CAIRN_EINVALID, "metadata key is not short UTF-8");
    if ((r = get_u32(c, &type)))
        return r;
    if (klen == 17 && !memcmp(key, "general.alignment", 17)) {
        if (type != GV_U32)
            return cairn_error_set(CAIRN_EINVALID, "general.alignment is not a uint32");
        if (*seen_alignment)
            return cairn_error_set(CAIRN_EINVALID, "general.alignment given twice");
        if ((r = get_u32(c, &v)))
            return r;
        if (v == 0 || (v & (v - 1)))
            return cairn_error_set(CAIRN_EINVALID, "alignment %u is not a power of two", v);
        *alignment = v;
        *seen_alignment = 1;
        return 0;
    }
    return skip_value(c, type, 0);
}

static int parse_tensor_info(struct cursor *c, struct cairn_tensor_table *t, uint64_t *offset)
{
    uint64_t nlen, shape[CAIRN_TENSOR_MAX_RANK];
    uint32_t ndims, gtype;
    const char *name;
    char namebuf[GGUF_NAME_MAX + 1];
    int dtype, r;

    if ((r = get_str(c, &name, &nlen)))
        return r;
    if (nlen > GGUF_NAME_MAX || !cairn_utf8_valid(name, (size_t)nlen))
        return cairn_error_set(CAIRN_EINVALID, "tensor name is not short UTF-8");
    memcpy(namebuf, name, (size_t)nlen);
    namebuf[nlen] = '\0';
    if ((r = get_u32(c, &ndims)))
        return r;
    if (ndims > CAIRN_TENSOR_MAX_RANK)
        return cairn_error_set(CAIRN_EINVALID, "tensor '%s' has %u dimensions (at most %d)",
                               namebuf, ndims, CAIRN_TENSOR_MAX_RANK);
    for (uint32_t i = 0; i < ndims; i++)
        if ((r = get_u64(c, &shape[i])))
            return r;
    if ((r = get_u32(c, &gtype)) || (r = get_u64(c, offset)))
        return r;
    if ((dtype = cairn_gguf_dtype(gtype)) == CAIRN_DT_UNKNOWN)
        return cairn_error_set(CAIRN_EINVALID, "tensor '%s' has unknown GGML type %u", namebuf,
                               gtype);
    /* GGML stores rows of whole blocks: the first dimension must divide. */
    if (ndims && shape[0] % cairn_dtype_info(dtype)->block_elems)
        return cairn_error_set(CAIRN_EINVALID, "tensor '%s' rows are not whole %s blocks", namebuf,
                               cairn_dtype_info(dtype)->name);
    return cairn_tensor_table_add(t, namebuf, dtype, ndims, shape, 0, 0);
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int check_unique_names(const struct cairn_tensor_table *t)
{
    char **v;
    int error = 0;

    if (t->count < 2)
        return 0;
    if (!(v = malloc(t->count * sizeof(*v))))
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    for (size_t i = 0; i < t->count; i++)
        v[i] = t->tensors[i].name;
    qsort(v, t->count, sizeof(*v), cmp_name);
    for (size_t i = 1; i < t->count; i++)
        if (!strcmp(v[i - 1], v[i])) {
            error = cairn_error_set(CAIRN_EINVALID, "tensor '%s' appears twice", v[i]);
            break;
        }
    free(v);
    return error;
}

int cairn_gguf_parse(struct cairn_tensor_table *out, const void *data, size_t len,
                     uint64_t file_size)
{
    struct cursor c = { data, len < file_size ? len : (size_t)file_size, file_size, 0 };
    uint64_t n_tensors, n_kv, *offsets = NULL, ds;
    uint32_t magic, alignment = GGUF_DEFAULT_ALIGNMENT;
    int seen_alignment = 0, error;

    cairn_tensor_table_init(out);
    out->format = CAIRN_FORMAT_GGUF;
    if ((error = get_u32(&c, &magic)))
        goto done;
    if (magic != 0x46554747) { /* "GGUF" little-endian */
        error = cairn_error_set(CAIRN_EINVALID, "bad GGUF magic");
        goto done;
    }
    if ((error = get_u32(&c, &out->version)))
        goto done;
    if (out->version != 2 && out->version != 3) {
        error = cairn_error_set(CAIRN_EINVALID, "unsupported GGUF version %u", out->version);
        goto done;
    }
    if ((error = get_u64(&c, &n_tensors)) || (error = get_u64(&c, &n_kv)))
        goto done;
    /* Smallest encodings: a kv is 8 + 4 + 1 bytes, a tensor info 8 + 4 + 4 + 8. */
    if (n_kv > CAIRN_GGUF_MAX_KV || n_kv > left(&c) / 13 || n_tensors > CAIRN_GGUF_MAX_TENSORS ||
        n_tensors > left(&c) / 24) {
        error = cairn_error_set(CAIRN_EINVALID, "absurd counts: %llu tensors, %llu keys",
                                (unsigned long long)n_tensors, (unsigned long long)n_kv);
        goto done;
    }
    for (uint64_t i = 0; i < n_kv; i++)
        if ((error = parse_kv(&c, &alignment, &seen_alignment)))
            goto done;
    if (n_tensors > left(&c) / 24) {
        error = cairn_error_set(CAIRN_EINVALID, "%llu tensors cannot fit in the file",
                                (unsigned long long)n_tensors);
        goto done;
    }
    if (!(offsets = malloc((n_tensors ? n_tensors : 1) * sizeof(*offsets)))) {
        error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
        goto done;
    }
    for (uint64_t i = 0; i < n_tensors; i++)
        if ((error = parse_tensor_info(&c, out, &offsets[i])))
            goto done;
    ds = c.pos + (alignment - c.pos % alignment) % alignment;
    if (ds > file_size) {
        if (n_tensors) {
            error = cairn_error_set(CAIRN_EINVALID, "data section starts past the end of the file");
            goto done;
        }
        ds = file_size;
    }
    out->data_start = ds;
    for (size_t i = 0; i < out->count; i++) {
        struct cairn_tensor *x = &out->tensors[i];
        uint64_t n, bytes;
        if (offsets[i] % alignment || offsets[i] > file_size - ds) {
            error = cairn_error_set(CAIRN_EINVALID,
                                    "tensor '%s' offset %llu is unaligned or past the end", x->name,
                                    (unsigned long long)offsets[i]);
            goto done;
        }
        if ((error = cairn_tensor_nelems(&n, x)) < 0 ||
            (error = cairn_dtype_nbytes(&bytes, x->dtype, n)) < 0)
            goto done;
        x->start = ds + offsets[i];
        if (bytes > file_size - x->start) {
            error = cairn_error_set(CAIRN_EINVALID, "tensor '%s' runs past the end of the file",
                                    x->name);
            goto done;
        }
        x->end = x->start + bytes;
    }
    if ((error = check_unique_names(out)) < 0 ||
        (error = cairn__tensor_table_check(out, file_size)) < 0)
        goto done;
done:
    free(offsets);
    if (error) {
        cairn_tensor_table_release(out);
        out->format = CAIRN_FORMAT_GGUF;
    }
    return error;
}

uint32_t cairn_gguf_type_of(int dtype)
{
    for (uint32_t t = 0; t < sizeof(ggml_types) / sizeof(ggml_types[0]); t++)
        if (ggml_types[t] == dtype && dtype != CAIRN_DT_UNKNOWN)
            return t;
    return UINT32_MAX;
}

static int put_str(struct cairn_buf *out, const char *s, size_t n)
{
    int error;
    if ((error = cairn_buf_put_u64le(out, n)) < 0)
        return error;
    return cairn_buf_put(out, s, n);
}

int cairn_gguf_write_header(struct cairn_buf *out, struct cairn_tensor_table *ot, const void *hdr,
                            size_t len, uint64_t file_size, const char *key, const char *val)
{
    struct cursor c = { hdr, len < file_size ? len : (size_t)file_size, file_size, 0 };
    uint64_t n_tensors, n_kv, kept = 0, rel = 0;
    uint32_t magic, version, alignment = GGUF_DEFAULT_ALIGNMENT;
    size_t count_at;
    int seen_alignment = 0, error;

    /* The input was parsed whole before; any error here is a caller's bug or
     * a file that changed under us, and reads as damage. */
    if ((error = get_u32(&c, &magic)) || (error = get_u32(&c, &version)) ||
        (error = get_u64(&c, &n_tensors)) || (error = get_u64(&c, &n_kv)))
        goto bad;
    if ((error = cairn_buf_put(out, "GGUF", 4)) < 0 ||
        (error = cairn_buf_put_u32le(out, version)) < 0 ||
        (error = cairn_buf_put_u64le(out, ot->count)) < 0)
        return error;
    count_at = out->len;
    if ((error = cairn_buf_put_u64le(out, 0)) < 0)
        return error;
    /* Every key/value pair verbatim, but the one we set. */
    for (uint64_t i = 0; i < n_kv; i++) {
        size_t start = c.pos;
        const char *k;
        uint64_t klen;
        struct cursor peek = c;
        if ((error = get_str(&peek, &k, &klen)))
            goto bad;
        if ((error = parse_kv(&c, &alignment, &seen_alignment)))
            goto bad;
        if (klen == strlen(key) && !memcmp(k, key, (size_t)klen))
            continue;
        if ((error = cairn_buf_put(out, c.p + start, c.pos - start)) < 0)
            return error;
        kept++;
    }
    if ((error = put_str(out, key, strlen(key))) < 0 ||
        (error = cairn_buf_put_u32le(out, GV_STRING)) < 0 ||
        (error = put_str(out, val, strlen(val))) < 0)
        return error;
    cairn_put_u64le((unsigned char *)out->ptr + count_at, kept + 1);

    /* Tensor infos in table order, data laid out in the same order. */
    for (size_t i = 0; i < ot->count; i++) {
        struct cairn_tensor *x = &ot->tensors[i];
        uint32_t type = cairn_gguf_type_of(x->dtype);
        uint64_t n, bytes;
        if (type == UINT32_MAX)
            return cairn_error_set(CAIRN_EINVALID, "tensor '%s': no GGML type for dtype %d",
                                   x->name, x->dtype);
        if ((error = cairn_tensor_nelems(&n, x)) < 0 ||
            (error = cairn_dtype_nbytes(&bytes, x->dtype, n)) < 0)
            return error;
        if ((error = put_str(out, x->name, strlen(x->name))) < 0 ||
            (error = cairn_buf_put_u32le(out, x->rank)) < 0)
            return error;
        for (unsigned d = 0; d < x->rank; d++)
            if ((error = cairn_buf_put_u64le(out, x->shape[d])) < 0)
                return error;
        if ((error = cairn_buf_put_u32le(out, type)) < 0 ||
            (error = cairn_buf_put_u64le(out, rel)) < 0)
            return error;
        x->start = rel;
        x->end = rel + bytes;
        rel += bytes + (alignment - bytes % alignment) % alignment;
    }
    while (out->len % alignment)
        if ((error = cairn_buf_putc(out, 0)) < 0)
            return error;
    ot->format = CAIRN_FORMAT_GGUF;
    ot->version = version;
    ot->data_start = out->len;
    for (size_t i = 0; i < ot->count; i++) {
        ot->tensors[i].start += ot->data_start;
        ot->tensors[i].end += ot->data_start;
    }
    return 0;
bad:
    if (error > 0)
        error = cairn_error_set(CAIRN_EINVALID, "GGUF header is shorter than it says");
    cairn_error_prefix("cannot rewrite the GGUF header");
    return error;
}
