/*
 * Open Inference Protocol v2 (KServe / Triton "v2") bodies for tabular
 * classifiers: decode an inference request into a dense fp32 batch, encode
 * the answer, the model metadata and errors.
 *
 * Request: {"id"?, "parameters"?, "inputs": [{"name", "shape": [rows,
 * features] (or [features] for one row), "datatype": FP16|FP32|FP64|INT8..64|
 * UINT8..64, "data": flat or nested numbers}], "outputs"?}. Exactly one input.
 * Response outputs: "probabilities" FP32 [rows, classes], "label" INT64
 * [rows] (the argmax), and "class" BYTES [rows] when the model names its
 * classes.
 *
 * The body is outside input: any bytes give either a request or
 * CAIRN_EINVALID with a message fit to return to the client; the element
 * count is checked against the caller's cap and the body length before
 * anything is allocated. Pure functions: thread-safe.
 */
#ifndef CAIRN_SERVE_OIP_H
#define CAIRN_SERVE_OIP_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

struct cairn_oip_request {
    char *id;         /* NULL when the request had none; owned */
    char *input_name; /* owned */
    size_t rows, cols;
    float *data; /* rows * cols, row-major; owned */
};

/*
 * Decode an inference request body of `len` bytes into `out` (initialised
 * here; release with cairn_oip_request_release() on success and failure).
 * `max_elems` caps rows * cols. Errors: CAIRN_EINVALID (message says what is
 * wrong: JSON, missing field, bad datatype, shape/data mismatch, values out
 * of fp32 range), CAIRN_ENOMEM.
 */
int cairn_oip_decode_infer(struct cairn_oip_request *out, const char *body, size_t len,
                           size_t max_elems);
void cairn_oip_request_release(struct cairn_oip_request *r);

/*
 * Append the response for `rows` rows of `classes` probabilities (row-major)
 * and their argmax `labels`. `id` may be NULL; `class_names` may be NULL or
 * hold `classes` strings (the "class" output is then added). A NaN or
 * infinite probability, which JSON cannot carry, is CAIRN_EINVALID ("model
 * output is not finite") with nothing appended.
 */
int cairn_oip_encode_infer(struct cairn_buf *out, const char *model_name, const char *model_version,
                           const char *id, const float *probs, const size_t *labels, size_t rows,
                           size_t classes, const char *const *class_names);

/* Append model metadata: name, versions [version], platform, inputs/outputs. */
int cairn_oip_encode_metadata(struct cairn_buf *out, const char *model_name,
                              const char *model_version, const char *platform, size_t features,
                              size_t classes, int has_class_names);

/* Append {"error": MSG}. */
int cairn_oip_encode_error(struct cairn_buf *out, const char *msg);

/* Append `s` as a JSON string literal (quotes included), escaping as needed. */
int cairn_json_put_string(struct cairn_buf *out, const char *s);

#endif
