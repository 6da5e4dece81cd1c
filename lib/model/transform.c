/*
 * File-level quantisation and pruning of safetensors and GGUF files; the
 * contract is in include/cairn/model.h, the arithmetic in quant.c.
 *
 * The output header depends only on the input header (names, dtypes and
 * shapes decide every size), so it is built and written first and the
 * tensors then stream through one at a time: read with pread, transformed,
 * written at the offset the serializer assigned. Memory is therefore the
 * largest tensor plus its output (and pruning keys), whatever the file size.
 * The header is outside input and goes through cairn_safetensors_parse() or
 * cairn_gguf_parse(), which bound every length and offset by the real file
 * size before anything is allocated from it.
 *
 * GGUF keeps its metadata verbatim (plus the cairn key) and gets its tensor
 * infos rewritten with the new types and offsets. Its int8 is GGML's Q8_0
 * (blocks of 32 along the contiguous dimension, an fp16 scale per block),
 * which llama.cpp and every GGUF runtime read, rather than the separate
 * scale tensors of the safetensors layout; GGUF's dimension 0 is the
 * contiguous one, so its output rows for structured pruning are the
 * product of the other dimensions.
 *
 * The file appears whole or not at all: a temporary file next to the
 * destination (matching the repository's `*.tmp.*` ignore rule), fsync,
 * rename, fsync of the directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cairn/model.h"
#include "model/quant.h"
#include "model/transform.h"
#include "store/gguf.h"
#include "store/layout.h"
#include "store/safetensors.h"
#include "util/buf.h"
#include "util/fs.h"

enum action {
    ACT_KEEP = 0,
    ACT_CONVERT,
    ACT_INT8,
    ACT_PRUNE,
};

int cairn_transform_opts_quantize(struct cairn_transform_opts *out, const char *to)
{
    memset(out, 0, sizeof(*out));
    out->op = CAIRN_TRANSFORM_QUANTIZE;
    if (to && !strcmp(to, "fp16"))
        out->target = CAIRN_QUANT_FP16;
    else if (to && !strcmp(to, "bf16"))
        out->target = CAIRN_QUANT_BF16;
    else if (to && !strcmp(to, "int8"))
        out->target = CAIRN_QUANT_INT8;
    else
        return cairn_error_set(CAIRN_EINVALID, "unknown quantisation '%s' (use fp16, bf16 or int8)",
                               to ? to : "");
    return 0;
}

int cairn_transform_opts_prune(struct cairn_transform_opts *out, const char *sparsity,
                               int structured)
{
    char *end = NULL;
    double f;
    memset(out, 0, sizeof(*out));
    out->op = CAIRN_TRANSFORM_PRUNE;
    out->structured = structured != 0;
    if (!sparsity || !*sparsity)
        return cairn_error_set(CAIRN_EINVALID, "sparsity '' is not a number between 0 and 1");
    errno = 0;
    f = strtod(sparsity, &end);
    if (errno || *end || end == sparsity || !(f >= 0.0 && f <= 1.0) ||
        !strchr("0123456789.", sparsity[0]))
        return cairn_error_set(CAIRN_EINVALID, "sparsity '%s' is not a number between 0 and 1",
                               sparsity);
    out->sparsity = f;
    return 0;
}

static int check_opts(const struct cairn_transform_opts *o)
{
    if (o->op == CAIRN_TRANSFORM_QUANTIZE) {
        if (o->target < CAIRN_QUANT_FP16 || o->target > CAIRN_QUANT_INT8)
            return cairn_error_set(CAIRN_EINVALID, "unknown quantisation target %d", o->target);
        return 0;
    }
    if (o->op == CAIRN_TRANSFORM_PRUNE) {
        if (!(o->sparsity >= 0.0 && o->sparsity <= 1.0))
            return cairn_error_set(CAIRN_EINVALID, "sparsity '%g' is not between 0 and 1",
                                   o->sparsity);
        return 0;
    }
    return cairn_error_set(CAIRN_EINVALID, "unknown model transform %d", o->op);
}

static int qfmt_of(int dtype)
{
    switch (dtype) {
    case CAIRN_DT_F32:
        return CAIRN_QF_F32;
    case CAIRN_DT_F16:
        return CAIRN_QF_F16;
    case CAIRN_DT_BF16:
        return CAIRN_QF_BF16;
    default:
        return -1;
    }
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

const char *cairn__transform_skip_reason(const char *name, int dtype, unsigned rank,
                                         const struct cairn_transform_opts *opts)
{
    if (ends_with(name, ".bias") || !strcmp(name, "bias"))
        return "bias";
    if (strcasestr(name, "norm"))
        return "normalisation parameter";
    if (!ends_with(name, ".weight") && strcmp(name, "weight"))
        return "not a weight";
    if (rank < 2)
        return "fewer than 2 dimensions";
    if (dtype == CAIRN_DT_F64)
        return "dtype F64 not supported";
    if (dtype == CAIRN_DT_F8_E4M3 || dtype == CAIRN_DT_F8_E5M2 || dtype == CAIRN_DT_F8_E8M0)
        return "fp8 not supported";
    if (qfmt_of(dtype) < 0)
        return "not a float tensor";
    if (opts->op == CAIRN_TRANSFORM_QUANTIZE) {
        if (opts->target == CAIRN_QUANT_FP16 && dtype == CAIRN_DT_F16)
            return "already F16";
        if (opts->target == CAIRN_QUANT_BF16 && dtype == CAIRN_DT_BF16)
            return "already BF16";
    }
    return NULL;
}

static const char *dtype_name(int dtype)
{
    const struct cairn_dtype_info *di = cairn_dtype_info(dtype);
    return di ? di->name : "?";
}

static const char *mode_key(const struct cairn_transform_opts *o)
{
    return o->op == CAIRN_TRANSFORM_QUANTIZE ? "cairn.quantization" : "cairn.pruning";
}

static int mode_value(struct cairn_buf *out, const struct cairn_transform_opts *o, int format)
{
    if (o->op == CAIRN_TRANSFORM_PRUNE)
        return cairn_buf_printf(out, "magnitude-%s:%g",
                                o->structured ? "structured" : "unstructured", o->sparsity);
    switch (o->target) {
    case CAIRN_QUANT_FP16:
        return cairn_buf_puts(out, "fp16");
    case CAIRN_QUANT_BF16:
        return cairn_buf_puts(out, "bf16");
    default:
        return cairn_buf_puts(out,
                              format == CAIRN_FORMAT_GGUF ? "int8-q8_0" : "int8-per-row-symmetric");
    }
}

static const char *action_name(const struct cairn_transform_opts *o, int act)
{
    if (act == ACT_KEEP)
        return "kept";
    if (act == ACT_PRUNE)
        return "pruned";
    if (act == ACT_INT8)
        return "int8";
    return o->target == CAIRN_QUANT_FP16 ? "fp16" : "bf16";
}

/* The output dtype of a weight that changes. */
static int out_dtype(const struct cairn_transform_opts *o, int in_dtype, int format)
{
    if (o->op == CAIRN_TRANSFORM_PRUNE)
        return in_dtype;
    switch (o->target) {
    case CAIRN_QUANT_FP16:
        return CAIRN_DT_F16;
    case CAIRN_QUANT_BF16:
        return CAIRN_DT_BF16;
    default:
        return format == CAIRN_FORMAT_GGUF ? CAIRN_DT_Q8_0 : CAIRN_DT_I8;
    }
}

/*
 * A GGUF header: read a growing prefix until the parser has all of it (GGUF
 * does not say how long its header is). `hdr` keeps the bytes for the
 * rewrite.
 */
static int read_gguf_header(struct cairn_tensor_table *in, struct cairn_buf *hdr, int fd,
                            uint64_t size)
{
    size_t want = 1 << 20;
    ssize_t got;
    int error;

    for (;;) {
        if (want > size)
            want = (size_t)size;
        cairn_buf_clear(hdr);
        if ((error = cairn_buf_grow(hdr, want)) < 0)
            return error;
        if ((got = cairn_fs_pread_full(fd, hdr->ptr, want, 0)) < 0)
            return (int)got;
        hdr->len = (size_t)got;
        error = cairn_gguf_parse(in, hdr->ptr, hdr->len, size);
        if (error != CAIRN_GGUF_MORE)
            return error;
        if (want >= CAIRN_LAYOUT_HEADER_MAX || (uint64_t)got < want)
            return cairn_error_set(CAIRN_EINVALID, "header is longer than %zu MiB",
                                   CAIRN_LAYOUT_HEADER_MAX >> 20);
        want *= 4;
        if (want > CAIRN_LAYOUT_HEADER_MAX)
            want = CAIRN_LAYOUT_HEADER_MAX;
    }
}

/*
 * The header of `src`, safetensors or GGUF (by its magic): parsed into `in`
 * with every offset checked against the file. For GGUF `gguf_hdr` gets the
 * header bytes.
 */
static int read_header(struct cairn_tensor_table *in, struct cairn_buf *gguf_hdr, int fd,
                       const char *src, uint64_t size)
{
    unsigned char first8[8];
    struct cairn_buf hdr = CAIRN_BUF_INIT;
    uint64_t hsz = 0;
    ssize_t got;
    int error;

    if ((got = cairn_fs_pread_full(fd, first8, sizeof(first8), 0)) < 0) {
        error = (int)got;
        goto done;
    }
    if (got >= 4 && !memcmp(first8, "GGUF", 4)) {
        if ((error = read_gguf_header(in, gguf_hdr, fd, size)) < 0)
            cairn_error_prefix("not a valid GGUF file '%s'", src);
        return error;
    }
    if ((error = cairn_safetensors_header_size(&hsz, first8, (size_t)got, size)) < 0)
        goto done;
    cairn_buf_init(&hdr, (size_t)hsz + 1);
    if ((error = cairn_buf_grow(&hdr, (size_t)hsz)) < 0)
        goto done;
    if ((got = cairn_fs_pread_full(fd, hdr.ptr, (size_t)hsz, 0)) < 0) {
        error = (int)got;
        goto done;
    }
    if ((uint64_t)got != hsz) {
        error = cairn_error_set(CAIRN_EINVALID, "header is truncated");
        goto done;
    }
    error = cairn_safetensors_parse(in, hdr.ptr, (size_t)hsz, size);
done:
    if (error < 0)
        cairn_error_prefix("not a valid safetensors file '%s'", src);
    cairn_buf_release(&hdr);
    return error;
}

/* Copy the input metadata to `ot`, replacing our key, then add it. */
static int build_meta(struct cairn_tensor_table *ot, const struct cairn_tensor_table *in,
                      const char *key, const char *val)
{
    int error;
    for (size_t i = 0; i < in->meta_count; i++) {
        if (!strcmp(in->meta_keys[i], key))
            continue;
        if ((error = cairn_tensor_table_add_meta(ot, in->meta_keys[i], in->meta_vals[i])) < 0)
            return error;
    }
    return cairn_tensor_table_add_meta(ot, key, val);
}

static int read_tensor(unsigned char **out, int fd, const struct cairn_tensor *x, const char *src)
{
    uint64_t len = x->end - x->start;
    ssize_t got;
    *out = NULL;
    if (len > SIZE_MAX - 1)
        return cairn_error_set(CAIRN_ENOMEM, "tensor '%s' is too large", x->name);
    /* len was checked against the real file size by the header parser. */
    if (!(*out = malloc(len ? (size_t)len : 1)))
        return cairn_error_set(CAIRN_ENOMEM, "out of memory for tensor '%s' (%llu bytes)", x->name,
                               (unsigned long long)len);
    if ((got = cairn_fs_pread_full(fd, *out, (size_t)len, (off_t)x->start)) < 0)
        return (int)got;
    if ((uint64_t)got != len)
        return cairn_error_set(CAIRN_ERROR, "'%s' shrank while reading tensor '%s'", src, x->name);
    return 0;
}

/*
 * Transform tensor `x` (its bytes in `data`, which pruning modifies) and
 * write the result at the offsets of `ox` (and `ox + 1`, the scale, for
 * int8), recording what happened in `rep`.
 */
static int do_tensor(int tfd, unsigned char *data, const struct cairn_tensor *x,
                     const struct cairn_tensor *ox, int act,
                     const struct cairn_transform_opts *opts, int format,
                     struct cairn_tensor_report *rep)
{
    struct cairn_quant_stats st = { 0 };
    unsigned char *obuf = NULL, *sbuf = NULL;
    float *scale = NULL;
    uint64_t n64 = 0;
    size_t n, rows, cols;
    int fmt = qfmt_of(x->dtype), error = 0;

    if ((error = cairn_tensor_nelems(&n64, x)) < 0)
        goto done;
    n = (size_t)n64;
    if (format == CAIRN_FORMAT_GGUF) {
        /* ne0 is the contiguous dimension: a row is ne0 elements. */
        cols = x->rank ? (size_t)x->shape[0] : 1;
        rows = cols ? n / cols : 0;
    } else {
        rows = x->rank ? (size_t)x->shape[0] : 1;
        cols = rows ? n / rows : 0;
    }
    rep->elements = n64;

    switch (act) {
    case ACT_KEEP:
        error = cairn_fs_pwrite_all(tfd, data, (size_t)(x->end - x->start), (off_t)ox->start);
        break;
    case ACT_CONVERT:
        if (!(obuf = malloc(n ? n * 2 : 1))) {
            error = cairn_error_set(CAIRN_ENOMEM, "out of memory converting '%s'", x->name);
            goto done;
        }
        int to = opts->target == CAIRN_QUANT_FP16 ? CAIRN_QF_F16 : CAIRN_QF_BF16;
        if ((error = cairn_quant_convert(obuf, to, data, fmt, n, &st)) < 0)
            goto done;
        error = cairn_fs_pwrite_all(tfd, obuf, n * 2, (off_t)ox->start);
        break;
    case ACT_INT8:
        if (format == CAIRN_FORMAT_GGUF) {
            size_t qbytes = n / CAIRN_Q8_0_BLOCK * CAIRN_Q8_0_BYTES;
            if (!(obuf = malloc(qbytes ? qbytes : 1))) {
                error = cairn_error_set(CAIRN_ENOMEM, "out of memory quantising '%s'", x->name);
                goto done;
            }
            if ((error = cairn_quant_q8_0(obuf, data, fmt, n, &st)) < 0)
                goto done;
            error = cairn_fs_pwrite_all(tfd, obuf, qbytes, (off_t)ox->start);
            break;
        }
        obuf = malloc(n ? n : 1);
        scale = malloc(rows ? rows * sizeof(*scale) : 1);
        sbuf = malloc(rows ? rows * 4 : 1);
        if (!obuf || !scale || !sbuf) {
            error = cairn_error_set(CAIRN_ENOMEM, "out of memory quantising '%s'", x->name);
            goto done;
        }
        if ((error = cairn_quant_int8((int8_t *)obuf, scale, data, fmt, rows, cols, &st)) < 0)
            goto done;
        for (size_t r = 0; r < rows; r++) {
            uint32_t bits;
            memcpy(&bits, &scale[r], sizeof(bits));
            cairn_put_u32le(sbuf + 4 * r, bits);
        }
        if ((error = cairn_fs_pwrite_all(tfd, obuf, n, (off_t)ox->start)) < 0)
            goto done;
        error = cairn_fs_pwrite_all(tfd, sbuf, rows * 4, (off_t)ox[1].start);
        break;
    case ACT_PRUNE:
        if (opts->structured)
            error = cairn_prune_rows(data, fmt, rows, cols, opts->sparsity, &st);
        else
            error = cairn_prune_magnitude(data, fmt, n, opts->sparsity, &st);
        if (error < 0)
            goto done;
        error = cairn_fs_pwrite_all(tfd, data, (size_t)(x->end - x->start), (off_t)ox->start);
        break;
    }
    if (error < 0)
        goto done;
    rep->max_abs_error = st.max_abs_error;
    rep->overflowed = st.overflowed;
    rep->nonfinite = st.nonfinite;
    rep->zeros_before = st.zeros_before;
    rep->zeros_after = st.zeros_after;
    rep->bytes_after =
        (ox->end - ox->start) +
        (act == ACT_INT8 && format != CAIRN_FORMAT_GGUF ? ox[1].end - ox[1].start : 0);
done:
    if (error < 0 && act != ACT_KEEP)
        cairn_error_prefix("cannot %s '%s'",
                           opts->op == CAIRN_TRANSFORM_PRUNE ? "prune" : "quantise", x->name);
    free(obuf);
    free(sbuf);
    free(scale);
    return error;
}

int cairn_transform_file(struct cairn_transform_report *out, const char *src, const char *dst,
                         const struct cairn_transform_opts *opts)
{
    struct cairn_tensor_table in, ot;
    struct cairn_buf hdr = CAIRN_BUF_INIT, mode = CAIRN_BUF_INIT, tmp = CAIRN_BUF_INIT;
    struct cairn_buf ghdr = CAIRN_BUF_INIT;
    uint64_t file_end;
    int gguf;
    struct stat sb;
    unsigned char *data = NULL;
    int *acts = NULL;
    int fd = -1, tfd = -1, error;

    memset(out, 0, sizeof(*out));
    cairn_tensor_table_init(&in);
    cairn_tensor_table_init(&ot);
    if ((error = check_opts(opts)) < 0)
        goto done;
    if ((fd = open(src, O_RDONLY | O_CLOEXEC)) < 0) {
        error = cairn_error_set_errno(CAIRN_ERROR, "cannot open '%s'", src);
        goto done;
    }
    if (fstat(fd, &sb) < 0) {
        error = cairn_error_set_errno(CAIRN_ERROR, "cannot stat '%s'", src);
        goto done;
    }
    cairn_buf_init(&ghdr, CAIRN_LAYOUT_HEADER_MAX);
    if ((error = read_header(&in, &ghdr, fd, src, (uint64_t)sb.st_size)) < 0)
        goto done;
    gguf = in.format == CAIRN_FORMAT_GGUF;
    out->file_bytes_before = (uint64_t)sb.st_size;

    if ((error = mode_value(&mode, opts, in.format)) < 0 ||
        (!gguf && (error = build_meta(&ot, &in, mode_key(opts), mode.ptr)) < 0))
        goto done;
    out->mode = cairn_buf_detach(&mode, NULL);
    out->tensors = calloc(in.count ? in.count : 1, sizeof(*out->tensors));
    acts = calloc(in.count ? in.count : 1, sizeof(*acts));
    if (!out->tensors || !acts) {
        error = cairn_error_set(CAIRN_ENOMEM, "out of memory for %zu tensors", in.count);
        goto done;
    }

    /* Plan every tensor and lay out the output header. */
    for (size_t i = 0; i < in.count; i++) {
        const struct cairn_tensor *x = &in.tensors[i];
        struct cairn_tensor_report *rep = &out->tensors[out->count];
        const char *why = cairn__transform_skip_reason(x->name, x->dtype, x->rank, opts);
        if (!why && gguf && opts->op == CAIRN_TRANSFORM_QUANTIZE &&
            opts->target == CAIRN_QUANT_INT8 && x->shape[0] % CAIRN_Q8_0_BLOCK)
            why = "rows not whole Q8_0 blocks of 32";
        int act = why                                 ? ACT_KEEP
                  : opts->op == CAIRN_TRANSFORM_PRUNE ? ACT_PRUNE
                  : opts->target == CAIRN_QUANT_INT8  ? ACT_INT8
                                                      : ACT_CONVERT;
        int odt = act == ACT_KEEP ? x->dtype : out_dtype(opts, x->dtype, in.format);

        if (!(rep->name = strdup(x->name))) {
            error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
            goto done;
        }
        out->count++;
        acts[i] = act;
        rep->action = action_name(opts, act);
        rep->reason = why;
        snprintf(rep->dtype_before, sizeof(rep->dtype_before), "%s", dtype_name(x->dtype));
        snprintf(rep->dtype_after, sizeof(rep->dtype_after), "%s", dtype_name(odt));
        rep->bytes_before = x->end - x->start;
        rep->bytes_after = rep->bytes_before;
        if ((error = cairn_tensor_table_add(&ot, x->name, odt, x->rank, x->shape, 0, 0)) < 0)
            goto done;
        if (act == ACT_INT8 && !gguf) {
            struct cairn_buf sname = CAIRN_BUF_INIT;
            if ((error = cairn_buf_printf(&sname, "%s_scale", x->name)) < 0)
                goto done;
            if (cairn_tensor_table_find(&in, sname.ptr)) {
                error = cairn_error_set(CAIRN_EINVALID,
                                        "cannot quantise '%s': tensor '%s' exists already", x->name,
                                        sname.ptr);
                cairn_buf_release(&sname);
                goto done;
            }
            error = cairn_tensor_table_add(&ot, sname.ptr, CAIRN_DT_F32, 1, x->shape, 0, 0);
            cairn_buf_release(&sname);
            if (error < 0)
                goto done;
        }
        if (act != ACT_KEEP)
            out->changed++;
    }
    if (gguf)
        error = cairn_gguf_write_header(&hdr, &ot, ghdr.ptr, ghdr.len, (uint64_t)sb.st_size,
                                        mode_key(opts), out->mode);
    else
        error = cairn_safetensors_serialize(&hdr, &ot);
    if (error < 0)
        goto done;
    file_end = ot.data_start;
    for (size_t i = 0; i < ot.count; i++)
        if (ot.tensors[i].end > file_end)
            file_end = ot.tensors[i].end;

    if ((error = cairn_buf_printf(&tmp, "%s.tmp.XXXXXX", dst)) < 0)
        goto done;
    if ((tfd = mkostemp(tmp.ptr, O_CLOEXEC)) < 0) {
        error = cairn_error_set_errno(CAIRN_ERROR, "cannot create '%s'", tmp.ptr);
        goto done;
    }
    if (fchmod(tfd, 0644) < 0) {
        error = cairn_error_set_errno(CAIRN_ERROR, "cannot chmod '%s'", tmp.ptr);
        goto done;
    }
    if ((error = cairn_fs_pwrite_all(tfd, hdr.ptr, hdr.len, 0)) < 0)
        goto done;

    /* Stream the tensors: one in memory at a time. */
    for (size_t i = 0, oi = 0; i < in.count; i++) {
        const struct cairn_tensor *x = &in.tensors[i];
        struct cairn_tensor_report *rep = &out->tensors[i];
        if ((error = read_tensor(&data, fd, x, src)) < 0)
            goto done;
        if ((error = do_tensor(tfd, data, x, &ot.tensors[oi], acts[i], opts, in.format, rep)) < 0)
            goto done;
        free(data);
        data = NULL;
        oi += acts[i] == ACT_INT8 && !gguf ? 2 : 1;
        out->data_bytes_before += rep->bytes_before;
        out->data_bytes_after += rep->bytes_after;
        if (acts[i] != ACT_KEEP) {
            if (rep->max_abs_error > out->max_abs_error)
                out->max_abs_error = rep->max_abs_error;
            out->zeros_before += rep->zeros_before;
            out->zeros_after += rep->zeros_after;
            out->elements_changed += rep->elements;
        }
    }
    /* The data section may be empty: make the file as long as the header says. */
    if (ftruncate(tfd, (off_t)file_end) < 0 || fsync(tfd) < 0) {
        error = cairn_error_set_errno(CAIRN_ERROR, "cannot write '%s'", tmp.ptr);
        goto done;
    }
    out->file_bytes_after = file_end;
    if (close(tfd) < 0) {
        tfd = -1;
        error = cairn_error_set_errno(CAIRN_ERROR, "cannot write '%s'", tmp.ptr);
        goto done;
    }
    tfd = -1;
    if (rename(tmp.ptr, dst) < 0) {
        error = cairn_error_set_errno(CAIRN_ERROR, "cannot rename '%s' to '%s'", tmp.ptr, dst);
        goto done;
    }
    cairn_buf_clear(&tmp);
    error = cairn_fs_fsync_parent(dst);
done:
    if (tfd >= 0)
        close(tfd);
    if (tmp.len)
        unlink(tmp.ptr);
    if (fd >= 0)
        close(fd);
    free(data);
    free(acts);
    cairn_buf_release(&hdr);
    cairn_buf_release(&ghdr);
    cairn_buf_release(&mode);
    cairn_buf_release(&tmp);
    cairn_tensor_table_release(&in);
    cairn_tensor_table_release(&ot);
    return error;
}

void cairn_transform_report_release(struct cairn_transform_report *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->count; i++)
        free(r->tensors[i].name);
    free(r->tensors);
    free(r->mode);
    memset(r, 0, sizeof(*r));
}

/* json_integer takes a signed 64-bit value; byte counts never come near the top bit. */
static json_t *jint(uint64_t v)
{
    return json_integer(v > (uint64_t)INT64_MAX ? INT64_MAX : (json_int_t)v);
}

static int jset(json_t *o, const char *key, json_t *v)
{
    return v ? json_object_set_new(o, key, v) : -1;
}

int cairn_transform_report_json(struct cairn_buf *out, const struct cairn_transform_report *r)
{
    json_t *root = json_object(), *arr = json_array();
    char *text = NULL;
    int bad = !root || !arr, error = 0;

    bad |= jset(root, "mode", json_string(r->mode ? r->mode : "")) < 0;
    bad |= jset(root, "file_bytes_before", jint(r->file_bytes_before)) < 0;
    bad |= jset(root, "file_bytes_after", jint(r->file_bytes_after)) < 0;
    bad |= jset(root, "data_bytes_before", jint(r->data_bytes_before)) < 0;
    bad |= jset(root, "data_bytes_after", jint(r->data_bytes_after)) < 0;
    bad |= jset(root, "max_abs_error", json_real(r->max_abs_error)) < 0;
    bad |= jset(root, "changed", jint(r->changed)) < 0;
    bad |= jset(root, "kept", jint(r->count - r->changed)) < 0;
    bad |= jset(root, "zeros_before", jint(r->zeros_before)) < 0;
    bad |= jset(root, "zeros_after", jint(r->zeros_after)) < 0;
    bad |= jset(root, "elements_changed", jint(r->elements_changed)) < 0;
    for (size_t i = 0; i < r->count && !bad; i++) {
        const struct cairn_tensor_report *t = &r->tensors[i];
        json_t *o = json_object();
        bad |= !o || json_array_append_new(arr, o) < 0;
        if (bad)
            break;
        bad |= jset(o, "name", json_string(t->name)) < 0;
        bad |= jset(o, "action", json_string(t->action)) < 0;
        bad |= jset(o, "reason", t->reason ? json_string(t->reason) : json_null()) < 0;
        bad |= jset(o, "dtype_before", json_string(t->dtype_before)) < 0;
        bad |= jset(o, "dtype_after", json_string(t->dtype_after)) < 0;
        bad |= jset(o, "elements", jint(t->elements)) < 0;
        bad |= jset(o, "bytes_before", jint(t->bytes_before)) < 0;
        bad |= jset(o, "bytes_after", jint(t->bytes_after)) < 0;
        bad |= jset(o, "max_abs_error", json_real(t->max_abs_error)) < 0;
        bad |= jset(o, "overflowed", jint(t->overflowed)) < 0;
        bad |= jset(o, "nonfinite", jint(t->nonfinite)) < 0;
        bad |= jset(o, "zeros_before", jint(t->zeros_before)) < 0;
        bad |= jset(o, "zeros_after", jint(t->zeros_after)) < 0;
    }
    if (!bad) {
        bad |= json_object_set(root, "tensors", arr) < 0;
        if (!bad && !(text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER)))
            bad = 1;
    }
    if (bad)
        error = cairn_error_set(CAIRN_ENOMEM, "cannot encode the transform report as JSON");
    else
        error = cairn_buf_puts(out, text);
    free(text);
    json_decref(arr);
    json_decref(root);
    return error;
}
