/*
 * Prometheus text exposition helpers for `cairn serve`'s /metrics: a fixed
 * latency histogram cheap enough to feed on every request (one short scan
 * of 14 bounds), a status-code counter, and writers for the # HELP/# TYPE
 * lines, samples and histograms in the text format promtool checks.
 *
 * Loop thread only; nothing here allocates but the output buffer.
 */
#ifndef CAIRN_SERVE_METRICS_H
#define CAIRN_SERVE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define CAIRN_PROM_BUCKETS 14

/* Upper bounds in seconds: 0.5 ms ... 10 s. */
extern const double cairn_prom_bounds_s[CAIRN_PROM_BUCKETS];

struct cairn_prom_hist {
    uint64_t bucket[CAIRN_PROM_BUCKETS]; /* not cumulative; rendered cumulative */
    uint64_t count;
    double sum_s;
};
void cairn_prom_hist_add(struct cairn_prom_hist *h, uint64_t latency_us);

/* Counts by HTTP status; codes beyond the first CAIRN_STATUS_SLOTS seen go to slot 0 ("other"). */
#define CAIRN_STATUS_SLOTS 12
struct cairn_status_counts {
    int code[CAIRN_STATUS_SLOTS]; /* 0: unused */
    uint64_t n[CAIRN_STATUS_SLOTS];
};
void cairn_status_counts_add(struct cairn_status_counts *c, int status);

/* "# HELP NAME HELP\n# TYPE NAME TYPE\n" */
int cairn_prom_family(struct cairn_buf *out, const char *name, const char *type, const char *help);
/*
 * One sample: NAME{LABELS} VALUE. `labels` is the inside of the braces,
 * already escaped (see cairn_prom_escape()), or "" for none.
 */
int cairn_prom_sample(struct cairn_buf *out, const char *name, const char *labels, double value);
/* NAME_bucket{LABELS,le=...}, NAME_sum and NAME_count of a histogram. */
int cairn_prom_hist_render(struct cairn_buf *out, const char *name, const char *labels,
                           const struct cairn_prom_hist *h);
/* Escape a label value (backslash, quote, newline) into `out` of `cap` bytes. */
const char *cairn_prom_escape(char *out, size_t cap, const char *value);

#endif
