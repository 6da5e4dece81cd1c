/*
 * OIP v2 request decoding (jansson) and response encoding (direct printf
 * into a buffer, which is several times faster than building a jansson tree
 * for a few thousand floats); see oip.h.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cairn/common.h"
#include "serve/oip.h"

#define MAX_NEST 8

enum kind { K_FLOAT, K_INT, K_UINT };

static int parse_datatype(const char *s, enum kind *k)
{
    static const char *const fl[] = { "FP16", "FP32", "FP64", "BF16" };
    static const char *const in[] = { "INT8", "INT16", "INT32", "INT64" };
    static const char *const un[] = { "UINT8", "UINT16", "UINT32", "UINT64" };
    for (int i = 0; i < 4; i++) {
        if (!strcmp(s, fl[i])) {
            *k = K_FLOAT;
            return 0;
        }
        if (!strcmp(s, in[i])) {
            *k = K_INT;
            return 0;
        }
        if (!strcmp(s, un[i])) {
            *k = K_UINT;
            return 0;
        }
    }
    return -1;
}

struct flat {
    float *out;
    size_t n, cap;
    enum kind kind;
};

/* Flatten nested arrays of numbers into f->out, checking count, type and range. */
static int flatten(struct flat *f, json_t *v, int depth)
{
    size_t i;
    json_t *e;

    if (depth > MAX_NEST)
        return cairn_error_set(CAIRN_EINVALID, "input data nested too deeply");
    json_array_foreach(v, i, e)
    {
        double d;
        if (json_is_array(e)) {
            int error = flatten(f, e, depth + 1);
            if (error < 0)
                return error;
            continue;
        }
        if (f->kind == K_FLOAT ? !json_is_number(e) : !json_is_integer(e))
            return cairn_error_set(CAIRN_EINVALID, "input data element %zu is not %s", f->n,
                                   f->kind == K_FLOAT ? "a number" : "an integer");
        if (f->kind == K_UINT && json_integer_value(e) < 0)
            return cairn_error_set(CAIRN_EINVALID, "input data element %zu is negative", f->n);
        d = json_number_value(e);
        if (!isfinite(d) || fabs(d) > FLT_MAX)
            return cairn_error_set(CAIRN_EINVALID, "input data element %zu is out of range", f->n);
        if (f->n >= f->cap)
            return cairn_error_set(CAIRN_EINVALID,
                                   "input data has more elements than its "
                                   "shape");
        f->out[f->n++] = (float)d;
    }
    return 0;
}

void cairn_oip_request_release(struct cairn_oip_request *r)
{
    if (!r)
        return;
    free(r->id);
    free(r->input_name);
    free(r->data);
    memset(r, 0, sizeof(*r));
}

int cairn_oip_decode_infer(struct cairn_oip_request *out, const char *body, size_t len,
                           size_t max_elems)
{
    json_t *root = NULL, *inputs, *in, *shape, *data, *idv;
    json_error_t jerr;
    const char *name, *dt;
    json_int_t dims[2];
    size_t rank;
    enum kind kind;
    struct flat f;
    int error = 0;

    memset(out, 0, sizeof(*out));
    root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        error = cairn_error_set(CAIRN_EINVALID, "invalid JSON: %s", jerr.text);
        goto done;
    }
    if (!json_is_object(root)) {
        error = cairn_error_set(CAIRN_EINVALID, "request must be a JSON object");
        goto done;
    }
    idv = json_object_get(root, "id");
    if (idv && !json_is_string(idv)) {
        error = cairn_error_set(CAIRN_EINVALID, "'id' must be a string");
        goto done;
    }
    inputs = json_object_get(root, "inputs");
    if (!json_is_array(inputs) || json_array_size(inputs) != 1) {
        error = cairn_error_set(CAIRN_EINVALID, "'inputs' must be an array of exactly one input");
        goto done;
    }
    in = json_array_get(inputs, 0);
    name = json_string_value(json_object_get(in, "name"));
    dt = json_string_value(json_object_get(in, "datatype"));
    shape = json_object_get(in, "shape");
    data = json_object_get(in, "data");
    if (!json_is_object(in) || !name || !dt || !json_is_array(shape) || !json_is_array(data)) {
        error = cairn_error_set(CAIRN_EINVALID,
                                "an input needs 'name', 'shape', 'datatype' "
                                "and 'data'");
        goto done;
    }
    if (parse_datatype(dt, &kind) < 0) {
        error = cairn_error_set(CAIRN_EINVALID, "unsupported datatype '%s'", dt);
        goto done;
    }
    rank = json_array_size(shape);
    if (rank < 1 || rank > 2) {
        error = cairn_error_set(CAIRN_EINVALID, "input shape must be [rows, features]");
        goto done;
    }
    for (size_t i = 0; i < rank; i++) {
        json_t *d = json_array_get(shape, i);
        dims[i] = json_is_integer(d) ? json_integer_value(d) : -1;
        if (dims[i] < 0 || (uint64_t)dims[i] > max_elems) {
            error = cairn_error_set(CAIRN_EINVALID, "bad input shape dimension %zu", i);
            goto done;
        }
    }
    out->rows = rank == 2 ? (size_t)dims[0] : 1;
    out->cols = (size_t)dims[rank - 1];
    /* Both <= max_elems, so the product cannot overflow 64 bits for sane caps. */
    if (out->cols && out->rows > max_elems / out->cols) {
        error = cairn_error_set(CAIRN_EINVALID, "input has more than %zu elements", max_elems);
        goto done;
    }
    f.cap = out->rows * out->cols;
    /* Each JSON number takes at least one byte: a count over the body length is a lie. */
    if (f.cap > len) {
        error = cairn_error_set(CAIRN_EINVALID, "input shape does not match its data");
        goto done;
    }
    f.out = out->data = malloc(f.cap ? f.cap * sizeof(float) : 1);
    f.n = 0;
    f.kind = kind;
    if (!out->data) {
        error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
        goto done;
    }
    if ((error = flatten(&f, data, 0)) < 0)
        goto done;
    if (f.n != f.cap) {
        error = cairn_error_set(CAIRN_EINVALID, "input data has %zu elements, shape says %zu", f.n,
                                f.cap);
        goto done;
    }
    if (!(out->input_name = strdup(name)) || (idv && !(out->id = strdup(json_string_value(idv))))) {
        error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
        goto done;
    }
done:
    json_decref(root);
    return error;
}

int cairn_json_put_string(struct cairn_buf *out, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    int error;
    if ((error = cairn_buf_putc(out, '"')) < 0)
        return error;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        const char *esc = NULL;
        char u[7];
        switch (*p) {
        case '"':
            esc = "\\\"";
            break;
        case '\\':
            esc = "\\\\";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\r':
            esc = "\\r";
            break;
        case '\t':
            esc = "\\t";
            break;
        default:
            if (*p < 0x20) {
                memcpy(u, "\\u00", 4);
                u[4] = hex[*p >> 4];
                u[5] = hex[*p & 15];
                u[6] = '\0';
                esc = u;
            }
        }
        if ((error = esc ? cairn_buf_puts(out, esc) : cairn_buf_putc(out, (char)*p)) < 0)
            return error;
    }
    return cairn_buf_putc(out, '"');
}

int cairn_oip_encode_infer(struct cairn_buf *out, const char *model_name, const char *model_version,
                           const char *id, const float *probs, const size_t *labels, size_t rows,
                           size_t classes, const char *const *class_names)
{
    int error = 0;

    /* JSON has no NaN or Inf: an answer holding one would not parse (issue 21, D10). */
    for (size_t i = 0; i < rows * classes; i++)
        if (!isfinite(probs[i]))
            return cairn_error_set(
                CAIRN_EINVALID, "model output is not finite (row %zu): are the inputs too large?",
                i / classes);
#define PUT(expr)                 \
    do {                          \
        if ((error = (expr)) < 0) \
            goto done;            \
    } while (0)
    PUT(cairn_buf_puts(out, "{\"model_name\":"));
    PUT(cairn_json_put_string(out, model_name));
    PUT(cairn_buf_puts(out, ",\"model_version\":"));
    PUT(cairn_json_put_string(out, model_version));
    if (id) {
        PUT(cairn_buf_puts(out, ",\"id\":"));
        PUT(cairn_json_put_string(out, id));
    }
    PUT(cairn_buf_printf(out,
                         ",\"outputs\":[{\"name\":\"probabilities\",\"shape\":[%zu,%zu],"
                         "\"datatype\":\"FP32\",\"data\":[",
                         rows, classes));
    for (size_t i = 0; i < rows * classes; i++)
        PUT(cairn_buf_printf(out, i ? ",%.9g" : "%.9g", (double)probs[i]));
    PUT(cairn_buf_printf(out,
                         "]},{\"name\":\"label\",\"shape\":[%zu],\"datatype\":\"INT64\","
                         "\"data\":[",
                         rows));
    for (size_t i = 0; i < rows; i++)
        PUT(cairn_buf_printf(out, i ? ",%zu" : "%zu", labels[i]));
    PUT(cairn_buf_puts(out, "]}"));
    if (class_names) {
        PUT(cairn_buf_printf(out,
                             ",{\"name\":\"class\",\"shape\":[%zu],\"datatype\":\"BYTES\","
                             "\"data\":[",
                             rows));
        for (size_t i = 0; i < rows; i++) {
            if (i)
                PUT(cairn_buf_putc(out, ','));
            PUT(cairn_json_put_string(out, labels[i] < classes ? class_names[labels[i]] : ""));
        }
        PUT(cairn_buf_puts(out, "]}"));
    }
    PUT(cairn_buf_puts(out, "]}"));
done:
    return error;
}

int cairn_oip_encode_metadata(struct cairn_buf *out, const char *model_name,
                              const char *model_version, const char *platform, size_t features,
                              size_t classes, int has_class_names)
{
    int error = 0;
    PUT(cairn_buf_puts(out, "{\"name\":"));
    PUT(cairn_json_put_string(out, model_name));
    PUT(cairn_buf_puts(out, ",\"versions\":["));
    PUT(cairn_json_put_string(out, model_version));
    PUT(cairn_buf_puts(out, "],\"platform\":"));
    PUT(cairn_json_put_string(out, platform));
    PUT(cairn_buf_printf(out,
                         ",\"inputs\":[{\"name\":\"input\",\"datatype\":\"FP32\","
                         "\"shape\":[-1,%zu]}],\"outputs\":[{\"name\":\"probabilities\","
                         "\"datatype\":\"FP32\",\"shape\":[-1,%zu]},{\"name\":\"label\","
                         "\"datatype\":\"INT64\",\"shape\":[-1]}%s]}",
                         features, classes,
                         has_class_names ? ",{\"name\":\"class\",\"datatype\":\"BYTES\","
                                           "\"shape\":[-1]}"
                                         : ""));
done:
    return error;
}

int cairn_oip_encode_error(struct cairn_buf *out, const char *msg)
{
    int error = 0;
    PUT(cairn_buf_puts(out, "{\"error\":"));
    PUT(cairn_json_put_string(out, msg));
    PUT(cairn_buf_putc(out, '}'));
done:
    return error;
#undef PUT
}
