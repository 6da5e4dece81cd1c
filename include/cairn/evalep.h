/*
 * Evaluation against a model server (`cairn eval --endpoint`, SPEC §5): send
 * the rows of a labelled CSV dataset to any Open Inference Protocol v2
 * server (KServe, Triton, MLServer, `cairn serve-model`) in batches, with a
 * set number of requests in flight, and compute accuracy, precision, recall
 * and F1 (per class and macro), the confusion matrix, request latency
 * percentiles and throughput; optionally repeat on inputs with Gaussian
 * noise to measure robustness. docs/eval.md defines the dataset layout and
 * every figure exactly.
 *
 * The run blocks the calling thread (it drives its own libuv loop with the
 * pooled keep-alive client). Distinct runs may go on in distinct threads.
 * Nothing is printed.
 */
#ifndef CAIRN_EVALEP_H
#define CAIRN_EVALEP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cairn/common.h"
#include "cairn/gate.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CAIRN_EVALEP_DEFAULT_BATCH       32
#define CAIRN_EVALEP_DEFAULT_CONCURRENCY 4
#define CAIRN_EVALEP_DEFAULT_TIMEOUT_MS  30000
#define CAIRN_EVALEP_MAX_BATCH           65536
#define CAIRN_EVALEP_MAX_CONCURRENCY     1024
#define CAIRN_EVALEP_MAX_CLASSES         65536

struct cairn_evalep_opts {
    const char *model;         /* model name when the URL has no /v2/models/NAME; may be NULL */
    const char *label_column;  /* NULL: "label" */
    const char *input_name;    /* OIP input name; NULL: "input" */
    size_t batch_size;         /* rows per request; 0: CAIRN_EVALEP_DEFAULT_BATCH */
    size_t concurrency;        /* requests in flight; 0: CAIRN_EVALEP_DEFAULT_CONCURRENCY */
    uint64_t timeout_ms;       /* per request; 0: CAIRN_EVALEP_DEFAULT_TIMEOUT_MS */
    bool match_index;          /* compare labels with the `label` index, never `class` */
    double perturb_sigma;      /* > 0: also run with gaussian:SIGMA noise (robust_accuracy) */
    uint64_t seed;             /* noise seed; 0 is used as is */
    size_t max_elements;       /* rows * features cap; 0: 2^28 */
    const char *extra_headers; /* raw "Name: value\r\n" lines sent with every request, or NULL */
    /* Called on the running thread after each answered request; may be NULL. */
    void (*progress)(uint64_t done_rows, uint64_t total_rows, void *arg);
    void *progress_arg;
};

/* Zero everything, then the defaults above (seed 1). */
void cairn_evalep_opts_init(struct cairn_evalep_opts *o);

/*
 * Parse a perturbation spec: "gaussian:S" with S a finite number > 0 and at
 * most 100. Errors: CAIRN_EINVALID naming the spec.
 */
int cairn_evalep_parse_perturb(double *sigma_out, const char *spec);

struct cairn_evalep_class {
    char *name;         /* canonical label (docs/eval.md) */
    uint64_t support;   /* rows whose true label is this class */
    uint64_t predicted; /* rows predicted as this class */
    uint64_t tp;
    double precision, recall, f1; /* 0 where the denominator is 0 */
};

/* An HTTP status and how many requests ended with it; status 0: no answer. */
struct cairn_evalep_status_count {
    int status;
    uint64_t count;
};

struct cairn_evalep_result {
    char *url;     /* the infer URL used */
    uint64_t rows; /* rows answered and scored */
    uint64_t rows_failed;
    uint64_t requests; /* requests sent (first pass) */
    uint64_t errors;   /* requests that failed: no answer, a non-200 status, a bad body */
    size_t nerror_status;
    struct cairn_evalep_status_count *error_status; /* 0 = transport, -1 = bad body */
    char *first_error;                              /* message of the first failure, or NULL */
    size_t features;
    size_t nclasses; /* classes in true labels or predictions, sorted (docs/eval.md) */
    struct cairn_evalep_class *classes;
    uint64_t *confusion; /* nclasses * nclasses; [true * nclasses + predicted] */
    double accuracy, precision_macro, recall_macro, f1_macro;
    double latency_p50_ms, latency_p95_ms, latency_p99_ms, latency_mean_ms;
    double throughput_rps; /* rows answered / elapsed_s */
    double elapsed_s;      /* first request sent to last answer */
    bool perturbed;
    double perturb_sigma;
    uint64_t seed;
    double robust_accuracy; /* over rows answered in the perturbed pass */
    uint64_t robust_rows, robust_errors;
};

/*
 * Evaluate the dataset at `data_path` (a CSV/TSV file or a directory of
 * them) against the OIP v2 model at `url` (see docs/eval.md for the forms).
 * Returns 0 when the evaluation ran, even if some requests failed (see
 * `errors`); a negative code when it could not: a bad URL or option
 * (CAIRN_EINVALID), a dataset error (file and line in the message), every
 * request failing (CAIRN_ERROR with the first failure), out of memory.
 * `*out` is a new result the caller frees with cairn_evalep_result_free().
 */
int cairn_evalep_run(struct cairn_evalep_result **out, const char *data_path, const char *url,
                     const struct cairn_evalep_opts *opts);
void cairn_evalep_result_free(struct cairn_evalep_result *r);

/*
 * Append the flat metrics: accuracy, precision_macro, recall_macro,
 * f1_macro, f1_class_K (K the class name with characters outside
 * [A-Za-z0-9_.:-] replaced by '_'), latency_p50_ms, latency_p95_ms,
 * latency_p99_ms, throughput_rps, rows, errors, and robust_accuracy when
 * perturbed. `out` must be initialised.
 */
int cairn_evalep_result_metrics(struct cairn_values *out, const struct cairn_evalep_result *r);

/*
 * The whole report as JSON (docs/eval.md): the metrics, per-class figures,
 * the confusion matrix with its class order, errors by status. *out is
 * malloc'd and owned by the caller.
 */
int cairn_evalep_result_json(char **out, const struct cairn_evalep_result *r);

#ifdef __cplusplus
}
#endif

#endif
