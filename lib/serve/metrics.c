/*
 * Prometheus text format writers (metrics.h). Values are printed with %.17g
 * so counters stay exact up to 2^53, and histograms are rendered cumulative
 * with the +Inf bucket equal to _count, as the format requires.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "serve/metrics.h"

const double cairn_prom_bounds_s[CAIRN_PROM_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};

void cairn_prom_hist_add(struct cairn_prom_hist *h, uint64_t latency_us)
{
    double s = (double)latency_us / 1e6;
    for (int i = 0; i < CAIRN_PROM_BUCKETS; i++) {
        if (s <= cairn_prom_bounds_s[i]) {
            h->bucket[i]++;
            break;
        }
    }
    h->count++;
    h->sum_s += s;
}

void cairn_status_counts_add(struct cairn_status_counts *c, int status)
{
    for (int i = 1; i < CAIRN_STATUS_SLOTS; i++) {
        if (c->code[i] == status) {
            c->n[i]++;
            return;
        }
        if (!c->code[i]) {
            c->code[i] = status;
            c->n[i] = 1;
            return;
        }
    }
    c->n[0]++;
}

int cairn_prom_family(struct cairn_buf *out, const char *name, const char *type, const char *help)
{
    return cairn_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

int cairn_prom_sample(struct cairn_buf *out, const char *name, const char *labels, double value)
{
    if (!isfinite(value))
        return cairn_buf_printf(out, "%s{%s} %s\n", name, labels, isnan(value) ? "NaN" : "+Inf");
    if (!*labels)
        return cairn_buf_printf(out, "%s %.17g\n", name, value);
    return cairn_buf_printf(out, "%s{%s} %.17g\n", name, labels, value);
}

int cairn_prom_hist_render(struct cairn_buf *out, const char *name, const char *labels,
                           const struct cairn_prom_hist *h)
{
    uint64_t cum = 0;
    int error = 0;
    const char *sep = *labels ? "," : "";
    for (int i = 0; i < CAIRN_PROM_BUCKETS && !error; i++) {
        cum += h->bucket[i];
        error = cairn_buf_printf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep,
                                 cairn_prom_bounds_s[i], (unsigned long long)cum);
    }
    if (!error)
        error = cairn_buf_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
                                 (unsigned long long)h->count);
    if (!error)
        error = cairn_buf_printf(out, "%s_sum{%s} %.17g\n%s_count{%s} %llu\n", name, labels,
                                 h->sum_s, name, labels, (unsigned long long)h->count);
    return error;
}

const char *cairn_prom_escape(char *out, size_t cap, const char *value)
{
    size_t o = 0;
    for (const char *p = value; *p && o + 3 < cap; p++) {
        if (*p == '\\' || *p == '"') {
            out[o++] = '\\';
            out[o++] = *p;
        } else if (*p == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else {
            out[o++] = *p;
        }
    }
    out[o] = '\0';
    return out;
}
