/*
 * safetensors header reader and writer (see safetensors.h), on jansson.
 *
 * The JSON is parsed from a caller-provided, already bounded buffer
 * (N <= 100 MiB and N <= file size - 8, checked before the caller reads it),
 * so the only allocation sized by the file is jansson's tree for at most
 * that many bytes. jansson rejects invalid UTF-8, NUL escapes and (with the
 * flag) duplicate keys; everything else - dtypes, shapes, offsets - is
 * checked here, and the ranges against each other by
 * cairn__tensor_table_check().
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "store/safetensors.h"
#include "util/buf.h"

static int dtype_from_name(const char *s)
{
    for (int d = CAIRN_DT_UNKNOWN + 1; d <= CAIRN_DT_F64; d++)
        if (!strcmp(cairn_dtype_info(d)->name, s))
            return d;
    return CAIRN_DT_UNKNOWN;
}

/* A JSON integer in [0, 2^63) into `*out`. */
static int get_u64(uint64_t *out, const json_t *v)
{
    json_int_t i;

    if (!json_is_integer(v))
        return -1;
    i = json_integer_value(v);
    if (i < 0)
        return -1;
    *out = (uint64_t)i;
    return 0;
}

int cairn_safetensors_header_size(uint64_t *out, const void *first8, size_t len, uint64_t file_size)
{
    uint64_t n;

    if (len < 8 || file_size < 8)
        return cairn_error_set(CAIRN_EINVALID, "file too short for a safetensors header");
    n = cairn_get_u64le(first8);
    if (n > CAIRN_SAFETENSORS_HEADER_MAX)
        return cairn_error_set(CAIRN_EINVALID, "header length %llu exceeds the %llu byte limit",
                               (unsigned long long)n,
                               (unsigned long long)CAIRN_SAFETENSORS_HEADER_MAX);
    if (n > file_size - 8)
        return cairn_error_set(CAIRN_EINVALID, "header length %llu runs past the end of the file",
                               (unsigned long long)n);
    if (n < 2)
        return cairn_error_set(CAIRN_EINVALID, "header length %llu is too short",
                               (unsigned long long)n);
    *out = 8 + n;
    return 0;
}

static int parse_metadata(struct cairn_tensor_table *t, json_t *meta)
{
    const char *key;
    json_t *val;

    if (!json_is_object(meta))
        return cairn_error_set(CAIRN_EINVALID, "__metadata__ is not an object");
    json_object_foreach(meta, key, val)
    {
        int error;
        if (!json_is_string(val))
            return cairn_error_set(CAIRN_EINVALID, "__metadata__ value of '%s' is not a string",
                                   key);
        if ((error = cairn_tensor_table_add_meta(t, key, json_string_value(val))) < 0)
            return error;
    }
    return 0;
}

static int parse_tensor(struct cairn_tensor_table *t, const char *name, json_t *obj)
{
    uint64_t shape[CAIRN_TENSOR_MAX_RANK], begin, end;
    json_t *dt, *sh, *offs;
    int dtype;
    size_t rank;

    if (!json_is_object(obj))
        return cairn_error_set(CAIRN_EINVALID, "entry '%s' is not an object", name);
    dt = json_object_get(obj, "dtype");
    sh = json_object_get(obj, "shape");
    offs = json_object_get(obj, "data_offsets");
    if (!json_is_string(dt) || !json_is_array(sh) || !json_is_array(offs))
        return cairn_error_set(CAIRN_EINVALID, "tensor '%s' lacks a dtype, shape or data_offsets",
                               name);
    if ((dtype = dtype_from_name(json_string_value(dt))) == CAIRN_DT_UNKNOWN)
        return cairn_error_set(CAIRN_EINVALID, "tensor '%s' has unknown dtype '%.32s'", name,
                               json_string_value(dt));
    rank = json_array_size(sh);
    if (rank > CAIRN_TENSOR_MAX_RANK)
        return cairn_error_set(CAIRN_EINVALID, "tensor '%s' has rank %zu (at most %d)", name, rank,
                               CAIRN_TENSOR_MAX_RANK);
    for (size_t i = 0; i < rank; i++)
        if (get_u64(&shape[i], json_array_get(sh, i)) < 0)
            return cairn_error_set(CAIRN_EINVALID, "tensor '%s' has a bad shape", name);
    if (json_array_size(offs) != 2 || get_u64(&begin, json_array_get(offs, 0)) < 0 ||
        get_u64(&end, json_array_get(offs, 1)) < 0 || end < begin)
        return cairn_error_set(CAIRN_EINVALID, "tensor '%s' has bad data_offsets", name);
    /* Offsets are < 2^63 and data_start <= 2^27, so the sums cannot wrap. */
    return cairn_tensor_table_add(t, name, dtype, (unsigned)rank, shape, t->data_start + begin,
                                  t->data_start + end);
}

int cairn_safetensors_parse(struct cairn_tensor_table *out, const void *header, size_t len,
                            uint64_t file_size)
{
    json_t *root = NULL, *val;
    json_error_t jerr;
    const char *key;
    uint64_t hsize;
    int error;

    cairn_tensor_table_init(out);
    out->format = CAIRN_FORMAT_SAFETENSORS;
    if ((error = cairn_safetensors_header_size(&hsize, header, len, file_size)) < 0)
        goto done;
    if (len < hsize) {
        error = cairn_error_set(CAIRN_EINVALID, "header truncated");
        goto done;
    }
    out->data_start = hsize;
    root = json_loadb((const char *)header + 8, (size_t)hsize - 8, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        error = cairn_error_set(CAIRN_EINVALID, "invalid JSON at byte %d: %s", jerr.position,
                                jerr.text);
        goto done;
    }
    if (!json_is_object(root)) {
        error = cairn_error_set(CAIRN_EINVALID, "header is not a JSON object");
        goto done;
    }
    json_object_foreach(root, key, val)
    {
        if (!strcmp(key, "__metadata__"))
            error = parse_metadata(out, val);
        else
            error = parse_tensor(out, key, val);
        if (error < 0)
            goto done;
    }
    error = cairn__tensor_table_check(out, file_size);
done:
    json_decref(root);
    if (error < 0) {
        cairn_tensor_table_release(out);
        out->format = CAIRN_FORMAT_SAFETENSORS;
    }
    return error;
}

/* Build the JSON object for `t` with offsets relative to the data section. */
static int build_json(json_t **out, const struct cairn_tensor_table *t)
{
    json_t *root = json_object(), *meta = NULL;
    int error = 0;

    if (!root)
        goto nomem;
    if (t->meta_count) {
        if (!(meta = json_object()) || json_object_set_new(root, "__metadata__", meta) < 0)
            goto nomem;
        for (size_t i = 0; i < t->meta_count; i++) {
            json_t *s = json_string(t->meta_vals[i]);
            if (!s || json_object_set_new(meta, t->meta_keys[i], s) < 0) {
                error = cairn_error_set(CAIRN_EINVALID, "metadata '%s' is not valid UTF-8",
                                        t->meta_keys[i]);
                goto done;
            }
        }
    }
    for (size_t i = 0; i < t->count; i++) {
        const struct cairn_tensor *x = &t->tensors[i];
        json_t *obj = json_object(), *sh = json_array(), *offs = json_array();
        int bad = !obj || !sh || !offs;
        for (unsigned d = 0; !bad && d < x->rank; d++)
            bad = x->shape[d] > INT64_MAX ||
                  json_array_append_new(sh, json_integer((json_int_t)x->shape[d])) < 0;
        bad = bad ||
              json_array_append_new(offs, json_integer((json_int_t)(x->start - t->data_start))) < 0;
        bad = bad ||
              json_array_append_new(offs, json_integer((json_int_t)(x->end - t->data_start))) < 0;
        bad = bad ||
              json_object_set_new(obj, "dtype", json_string(cairn_dtype_info(x->dtype)->name)) < 0;
        bad = bad || json_object_set(obj, "shape", sh) < 0;
        bad = bad || json_object_set(obj, "data_offsets", offs) < 0;
        json_decref(sh);
        json_decref(offs);
        if (bad || json_object_get(root, x->name) || !strcmp(x->name, "__metadata__")) {
            json_decref(obj);
            error = cairn_error_set(CAIRN_EINVALID, "cannot encode tensor '%s'", x->name);
            goto done;
        }
        /* set_new takes `obj` even when it fails (a name that is not UTF-8). */
        if (json_object_set_new(root, x->name, obj) < 0) {
            error = cairn_error_set(CAIRN_EINVALID, "cannot encode tensor '%s'", x->name);
            goto done;
        }
    }
    *out = root;
    return 0;
nomem:
    error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
done:
    json_decref(root);
    return error;
}

int cairn_safetensors_serialize(struct cairn_buf *out, struct cairn_tensor_table *t)
{
    json_t *root = NULL;
    char *text = NULL;
    uint64_t rel = 0, n, bytes;
    size_t tlen, pad;
    int error = 0;

    /* Sizes first (relative offsets), then the JSON, whose length fixes data_start. */
    for (size_t i = 0; i < t->count; i++) {
        struct cairn_tensor *x = &t->tensors[i];
        if (x->dtype > CAIRN_DT_F64 || x->dtype <= CAIRN_DT_UNKNOWN) {
            error = cairn_error_set(CAIRN_EINVALID, "tensor '%s' has a dtype safetensors lacks",
                                    x->name);
            goto done;
        }
        if ((error = cairn_tensor_nelems(&n, x)) < 0 ||
            (error = cairn_dtype_nbytes(&bytes, x->dtype, n)) < 0)
            goto done;
        if (bytes > INT64_MAX - rel) {
            error = cairn_error_set(CAIRN_EINVALID, "tensors too large for one file");
            goto done;
        }
        x->start = rel;
        x->end = rel + bytes;
        rel += bytes;
    }
    t->data_start = 0;
    t->format = CAIRN_FORMAT_SAFETENSORS;
    if ((error = build_json(&root, t)) < 0)
        goto done;
    if (!(text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER))) {
        error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
        goto done;
    }
    tlen = strlen(text);
    pad = (8 - tlen % 8) % 8;
    if (tlen + pad > CAIRN_SAFETENSORS_HEADER_MAX) {
        error = cairn_error_set(CAIRN_EINVALID, "safetensors header too large");
        goto done;
    }
    if ((error = cairn_buf_put_u64le(out, tlen + pad)) < 0 ||
        (error = cairn_buf_put(out, text, tlen)) < 0)
        goto done;
    for (size_t i = 0; i < pad; i++)
        if ((error = cairn_buf_putc(out, ' ')) < 0)
            goto done;
    t->data_start = 8 + tlen + pad;
    for (size_t i = 0; i < t->count; i++) {
        t->tensors[i].start += t->data_start;
        t->tensors[i].end += t->data_start;
    }
done:
    free(text);
    json_decref(root);
    return error;
}
