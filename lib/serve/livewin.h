/*
 * The live input window of one served model (issue #8, docs/serving.md
 * "Live drift"): a bounded reservoir sample of the rows of the first input
 * tensor of the inference requests the model receives, optionally compared
 * with a reference dataset by PSI per feature.
 *
 * Hot path: cairn_livewin_sample() runs on the loop thread for every
 * inference request. Once the reservoir is full it costs one random draw for
 * most requests: a request is decoded only when it is likely to give the
 * sample a row (see livewin.c). Loading the reference (a checkout and one
 * pass over the dataset) and computing PSI run on the libuv thread pool; the
 * loop only copies the window (at most CAIRN_LIVEWIN_MAX_ELEMS floats).
 *
 * Everything but the thread-pool work runs on the loop thread that created
 * the window. Free it only after that loop stopped running.
 */
#ifndef CAIRN_SERVE_LIVEWIN_H
#define CAIRN_SERVE_LIVEWIN_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "util/buf.h"

/* Rows kept per model, and the cap on rows * features (4 MiB of floats). */
#define CAIRN_LIVEWIN_ROWS      4096
#define CAIRN_LIVEWIN_MAX_ELEMS ((size_t)1 << 20)

struct cairn_livewin;

typedef void (*cairn_livewin_log_fn)(const char *msg, void *arg);

/*
 * A window for `model` (the name seeds the sampler, so a run repeats). `log`
 * (may be NULL) gets a line when the reference is loaded or cannot be.
 */
int cairn_livewin_new(struct cairn_livewin **out, uv_loop_t *loop, const char *model,
                      cairn_livewin_log_fn log, void *log_arg);
void cairn_livewin_free(struct cairn_livewin *w);

/*
 * Offer the body of an inference request (OIP v2 JSON). Rows of another
 * width than the first sampled request's, requests with more than
 * CAIRN_LIVEWIN_MAX_ELEMS numbers and bodies that do not decode are left out.
 */
void cairn_livewin_sample(struct cairn_livewin *w, const char *body, size_t len);

/*
 * Check out dataset `ref` (a version, or a path when it contains '/') of the
 * repository at `workdir` on the thread pool, keep its numeric columns but
 * `label_column` as the reference, and name the features after them.
 */
int cairn_livewin_set_reference(struct cairn_livewin *w, const char *workdir, const char *ref,
                                const char *label_column);

/* Recompute PSI on the thread pool when the window changed since last time. */
void cairn_livewin_refresh(struct cairn_livewin *w);

size_t cairn_livewin_rows(const struct cairn_livewin *w);
uint64_t cairn_livewin_seen(const struct cairn_livewin *w);

/*
 * Append the window as CSV: a header (the reference's feature names when it
 * has as many as the window has columns, else f0..fN-1), then one line per
 * row. Returns 0 or CAIRN_ENOMEM.
 */
int cairn_livewin_csv(struct cairn_buf *out, const struct cairn_livewin *w);

/*
 * Append cairn_input_drift_psi samples (one per feature, labels
 * `model="M",feature="F"`) from the last computation; nothing without a
 * reference. `model_label` is the escaped model name.
 */
int cairn_livewin_prom_psi(struct cairn_buf *out, const struct cairn_livewin *w,
                           const char *model_label);

#endif
