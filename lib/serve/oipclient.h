/*
 * The client side of the Open Inference Protocol v2, shared by `cairn eval
 * --endpoint` (lib/gate/evalendpoint.c) and `cairn loadgen`
 * (lib/serve/loadgen.c): where to send (URL → numeric address and infer
 * path), what to send (rows of a labelled CSV table as an FP32 batch), and
 * what came back (one predicted class per row, whatever the server's output
 * names).
 *
 * Label matching (docs/eval.md): a prediction is the row's `class` output
 * when the answer has one, else its `label` output, else the first output
 * (a [rows] vector as is, a [rows, C] matrix by its argmax); with
 * CAIRN_OIP_MATCH_INDEX the `label` index (or argmax) is always used. Labels
 * on both sides are canonicalised: text that is an integral number ("3",
 * "3.0", "+3") becomes its integer in decimal, anything else is compared
 * byte for byte.
 *
 * Blocking: cairn_oip_target_parse() resolves the host name with
 * getaddrinfo(), so call it before the event loop runs. Everything else is
 * pure and thread-safe.
 */
#ifndef CAIRN_SERVE_OIPCLIENT_H
#define CAIRN_SERVE_OIPCLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

enum cairn_oip_match { CAIRN_OIP_MATCH_AUTO = 0, CAIRN_OIP_MATCH_INDEX = 1 };

/* Where an OIP v2 model answers. All strings owned; release with _release(). */
struct cairn_oip_target {
    char addr[80];    /* numeric "IP:PORT" or "[IP6]:PORT" for the async client */
    char origin[300]; /* "http://HOST:PORT" as given, for messages and default URLs */
    char *path;       /* "/v2/models/NAME[/versions/V]/infer" (with any prefix) */
    char *model;      /* NAME */
};

/*
 * Parse `url`: either "http://HOST[:PORT][/PREFIX]" plus `model` (the path
 * becomes PREFIX/v2/models/MODEL/infer), or a URL whose path holds
 * "/v2/models/NAME" (optionally "/versions/V", optionally ending in
 * "/infer"), in which case `model` may be NULL and must otherwise equal
 * NAME. The port defaults to 80. Only http is supported. Errors:
 * CAIRN_EINVALID (message names the URL), CAIRN_ENOTFOUND (host does not
 * resolve). `out` is initialised here.
 */
int cairn_oip_target_parse(struct cairn_oip_target *out, const char *url, const char *model);
void cairn_oip_target_release(struct cairn_oip_target *t);

/*
 * Resolve any "http://HOST[:PORT][/PATH]" URL (a feedback endpoint, say):
 * addr and origin as above, path the URL's path ("/" when empty), model
 * NULL. Same errors as cairn_oip_target_parse().
 */
int cairn_oip_url_resolve(struct cairn_oip_target *out, const char *url);

/*
 * Append an inference request for `nrows` rows of `cols` FP32 features
 * (row-major `x`) under input `input_name`, with `id` when not NULL. Values
 * are printed with 9 significant digits, so the server reads back the exact
 * floats. A NaN or infinite value (JSON has neither) is CAIRN_EINVALID naming
 * its row and feature; `out` then holds a partial body to discard.
 */
int cairn_oip_encode_rows(struct cairn_buf *out, const char *id, const char *input_name,
                          const float *x, size_t nrows, size_t cols);

/*
 * Called for each row of an answer with its canonical predicted label
 * (NUL-terminated, valid during the call).
 */
typedef int (*cairn_oip_pred_fn)(size_t row, const char *label, void *arg);

/*
 * Parse an inference answer of `len` bytes that must hold `nrows` rows and
 * call `fn` for each, in order. `version_out` (may be NULL) receives the
 * answer's "model_version" (cleared when absent). Errors: CAIRN_EINVALID
 * with a message saying what is wrong (not JSON, no outputs, wrong row
 * count); a non-zero return of `fn` stops and is returned.
 */
int cairn_oip_parse_predictions(const char *body, size_t len, size_t nrows,
                                enum cairn_oip_match match, cairn_oip_pred_fn fn, void *arg,
                                struct cairn_buf *version_out);

/*
 * Canonicalise a label into `out` (cleared first): integral numbers as
 * decimal integers, other text unchanged.
 */
int cairn_oip_label_canon(struct cairn_buf *out, const char *s, size_t len);

/*
 * A labelled table: every column but the label is a feature (header order),
 * every feature value a finite number within fp32 range. Labels are stored
 * canonicalised, NUL-separated in `labels`, at offsets `label_off[row]`.
 */
struct cairn_oip_table {
    size_t rows, cols;
    float *x; /* rows * cols */
    char **feature_names;
    struct cairn_buf labels;
    size_t *label_off;
    size_t nfiles;
};

/*
 * Load the CSV/TSV file or directory of such files at `path` (directories:
 * every *.csv / *.tsv below, in path order; all must have the same header).
 * `label_column` names the label (NULL: "label"). `max_elements` caps
 * rows * columns (0: 2^28), beyond which CAIRN_ENOMEM. Errors name the file
 * and line: a missing label column, a header that differs between files, a
 * value that is not a finite fp32 number, an empty label, no rows.
 * `out` is initialised here; release it on success and failure.
 */
int cairn_oip_table_load(struct cairn_oip_table *out, const char *path, const char *label_column,
                         size_t max_elements);
void cairn_oip_table_release(struct cairn_oip_table *t);

static inline const char *cairn_oip_table_label(const struct cairn_oip_table *t, size_t row)
{
    return t->labels.ptr + t->label_off[row];
}

#endif
