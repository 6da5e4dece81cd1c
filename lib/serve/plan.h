/*
 * Rollout plans (SPEC §6, docs/serving.md): the YAML that says how a new
 * version takes traffic and what the analysis must see.
 *
 *   strategy: canary | bluegreen | ab | shadow
 *   steps: [{weight: 5, pause: 30s}, {weight: 25, pause: 60s}, {weight: 100}]
 *   analysis: {interval: 5s, min_requests: 100, min_labels: 50, failure_limit: 1,
 *              checks: [{metric: error_rate, max: 0.01}, ...]}
 *   sticky: {header: X-User-Id} | {cookie: uid}
 *   on_failure: rollback | pause
 *   ab: {weight: 50, duration: 10m, samples: 2000}
 *   shadow: {duration: 5m, samples: 2000}
 *
 * A plan is a release rule, so every mistake is an error with
 * "FILE:LINE:COL": unknown keys, bad types, weights outside 1..100 or going
 * down, a check without a bound. Pure functions, thread-safe.
 */
#ifndef CAIRN_SERVE_PLAN_H
#define CAIRN_SERVE_PLAN_H

#include <stddef.h>
#include <stdint.h>

#define CAIRN_PLAN_MAX_STEPS  32
#define CAIRN_PLAN_MAX_CHECKS 16

enum cairn_strategy {
    CAIRN_STRATEGY_CANARY,
    CAIRN_STRATEGY_BLUEGREEN,
    CAIRN_STRATEGY_AB,
    CAIRN_STRATEGY_SHADOW,
};

enum cairn_metric {
    CAIRN_METRIC_ERROR_RATE,
    CAIRN_METRIC_LATENCY_P99,
    CAIRN_METRIC_ACCURACY,
    CAIRN_METRIC_SHADOW_AGREEMENT,
};

/* Each bound is used only when its has_ flag is set. */
struct cairn_plan_check {
    enum cairn_metric metric;
    int has_min, has_max, has_ratio, has_drop;
    double min, max;
    double max_ratio_to_stable; /* latency_p99_ms */
    double max_drop_vs_stable;  /* accuracy */
};

struct cairn_plan_step {
    int weight;        /* candidate share in percent, 1..100 */
    uint64_t pause_ms; /* time at this step before the next one */
};

enum cairn_sticky { CAIRN_STICKY_NONE, CAIRN_STICKY_HEADER, CAIRN_STICKY_COOKIE };

struct cairn_plan {
    enum cairn_strategy strategy;
    struct cairn_plan_step steps[CAIRN_PLAN_MAX_STEPS];
    size_t nsteps;
    uint64_t interval_ms;  /* analysis period */
    uint64_t min_requests; /* candidate requests in the window before judging */
    uint64_t min_labels;   /* feedback labels in the window before judging accuracy */
    int failure_limit;     /* failed analyses that trigger on_failure */
    struct cairn_plan_check checks[CAIRN_PLAN_MAX_CHECKS];
    size_t nchecks;
    enum cairn_sticky sticky;
    char sticky_name[64];
    int on_failure_pause;      /* 0: rollback (default), 1: pause */
    uint64_t test_duration_ms; /* ab / shadow: run this long (0: no limit) */
    uint64_t test_samples;     /* ab / shadow: or until the candidate saw this many */
};

/*
 * The plan used when none is given: canary 10% (30 s), 50% (30 s), 100%;
 * analysis every 10 s from 50 requests, failure_limit 1, error_rate <= 0.05.
 */
void cairn_plan_default(struct cairn_plan *out);

/*
 * Parse a plan from `len` bytes of YAML; `name` prefixes error messages.
 * Returns 0 or CAIRN_EINVALID ("NAME:LINE:COL: ...").
 */
int cairn_plan_parse(struct cairn_plan *out, const char *name, const char *text, size_t len);

const char *cairn_strategy_name(enum cairn_strategy s);
const char *cairn_metric_name(enum cairn_metric m);

#endif
