/*
 * The rollout plan parser (plan.h). The YAML tree comes from util/yaml.h;
 * this file checks every key against a list, converts values, and checks
 * what only makes sense together (weights that go up, a bound per check,
 * shadow_agreement only with the shadow strategy).
 */
#include <stdio.h>
#include <string.h>

#include "cairn/common.h"
#include "serve/plan.h"
#include "util/yaml.h"

#define PLAN_MAX_BYTES ((size_t)64 << 10)

static const char *const strategy_names[] = { "canary", "bluegreen", "ab", "shadow" };
static const char *const metric_names[] = { "error_rate", "latency_p99_ms", "accuracy",
                                            "shadow_agreement" };

const char *cairn_strategy_name(enum cairn_strategy s)
{
    return (unsigned)s < 4 ? strategy_names[s] : "unknown";
}

const char *cairn_metric_name(enum cairn_metric m)
{
    return (unsigned)m < 4 ? metric_names[m] : "unknown";
}

void cairn_plan_default(struct cairn_plan *out)
{
    memset(out, 0, sizeof(*out));
    out->strategy = CAIRN_STRATEGY_CANARY;
    out->steps[0] = (struct cairn_plan_step){ 10, 30000 };
    out->steps[1] = (struct cairn_plan_step){ 50, 30000 };
    out->steps[2] = (struct cairn_plan_step){ 100, 0 };
    out->nsteps = 3;
    out->interval_ms = 10000;
    out->min_requests = 50;
    out->min_labels = 50;
    out->failure_limit = 1;
    out->checks[0].metric = CAIRN_METRIC_ERROR_RATE;
    out->checks[0].has_max = 1;
    out->checks[0].max = 0.05;
    out->nchecks = 1;
}

static int get_count(uint64_t *out, const struct cairn_yaml_node *n, long long lo, long long hi)
{
    long long v;
    int error;
    if ((error = cairn_yaml_int(&v, n)) < 0)
        return error;
    if (v < lo || v > hi)
        return cairn_yaml_error(n->doc, n, "expected a whole number from %lld to %lld", lo, hi);
    *out = (uint64_t)v;
    return 0;
}

static int get_rate(double *out, const struct cairn_yaml_node *n, double hi)
{
    int error;
    if ((error = cairn_yaml_double(out, n)) < 0)
        return error;
    if (*out < 0 || *out > hi)
        return cairn_yaml_error(n->doc, n, "expected a number from 0 to %g", hi);
    return 0;
}

static int parse_steps(struct cairn_plan *p, const struct cairn_yaml_node *seq)
{
    static const char *const keys[] = { "weight", "pause", NULL };
    int error;
    if ((error = cairn_yaml_expect(seq, CAIRN_YAML_SEQ)) < 0)
        return error;
    if (seq->count == 0)
        return cairn_yaml_error(seq->doc, seq, "steps is empty");
    if (seq->count > CAIRN_PLAN_MAX_STEPS)
        return cairn_yaml_error(seq->doc, seq, "more than %d steps", CAIRN_PLAN_MAX_STEPS);
    for (size_t i = 0; i < seq->count; i++) {
        const struct cairn_yaml_node *s = seq->items[i], *w, *pa;
        uint64_t weight = 0;
        if ((error = cairn_yaml_expect(s, CAIRN_YAML_MAP)) < 0 ||
            (error = cairn_yaml_check_keys(s, keys)) < 0)
            return error;
        if (!(w = cairn_yaml_map_get(s, "weight")))
            return cairn_yaml_error(s->doc, s, "step is missing 'weight'");
        if ((error = get_count(&weight, w, 1, 100)) < 0)
            return error;
        if (i > 0 && (int)weight < p->steps[i - 1].weight)
            return cairn_yaml_error(w->doc, w, "weight %d is below the previous step's %d",
                                    (int)weight, p->steps[i - 1].weight);
        p->steps[i].weight = (int)weight;
        p->steps[i].pause_ms = 0;
        if ((pa = cairn_yaml_map_get(s, "pause")) &&
            (error = cairn_yaml_duration_ms(&p->steps[i].pause_ms, pa)) < 0)
            return error;
    }
    p->nsteps = seq->count;
    return 0;
}

static int parse_check(struct cairn_plan_check *c, const struct cairn_yaml_node *n)
{
    static const char *const keys[] = {
        "metric", "min", "max", "max_ratio_to_stable", "max_drop_vs_stable", NULL
    };
    const struct cairn_yaml_node *m, *v;
    const char *name;
    int error, found = -1;

    memset(c, 0, sizeof(*c));
    if ((error = cairn_yaml_expect(n, CAIRN_YAML_MAP)) < 0 ||
        (error = cairn_yaml_check_keys(n, keys)) < 0)
        return error;
    if (!(m = cairn_yaml_map_get(n, "metric")))
        return cairn_yaml_error(n->doc, n, "check is missing 'metric'");
    if ((error = cairn_yaml_str(&name, m)) < 0)
        return error;
    for (int i = 0; i < 4; i++)
        if (!strcmp(name, metric_names[i]))
            found = i;
    if (found < 0)
        return cairn_yaml_error(m->doc, m,
                                "unknown metric '%.64s' (expected one of: error_rate, "
                                "latency_p99_ms, accuracy, shadow_agreement)",
                                name);
    c->metric = (enum cairn_metric)found;
    if ((v = cairn_yaml_map_get(n, "min"))) {
        if ((error = cairn_yaml_double(&c->min, v)) < 0)
            return error;
        c->has_min = 1;
    }
    if ((v = cairn_yaml_map_get(n, "max"))) {
        if ((error = cairn_yaml_double(&c->max, v)) < 0)
            return error;
        c->has_max = 1;
    }
    if ((v = cairn_yaml_map_get(n, "max_ratio_to_stable"))) {
        if (c->metric != CAIRN_METRIC_LATENCY_P99)
            return cairn_yaml_error(v->doc, v, "max_ratio_to_stable only goes with latency_p99_ms");
        if ((error = cairn_yaml_double(&c->max_ratio_to_stable, v)) < 0)
            return error;
        if (c->max_ratio_to_stable <= 0)
            return cairn_yaml_error(v->doc, v, "max_ratio_to_stable must be above 0");
        c->has_ratio = 1;
    }
    if ((v = cairn_yaml_map_get(n, "max_drop_vs_stable"))) {
        if (c->metric != CAIRN_METRIC_ACCURACY)
            return cairn_yaml_error(v->doc, v, "max_drop_vs_stable only goes with accuracy");
        if ((error = get_rate(&c->max_drop_vs_stable, v, 1)) < 0)
            return error;
        c->has_drop = 1;
    }
    if (!c->has_min && !c->has_max && !c->has_ratio && !c->has_drop)
        return cairn_yaml_error(n->doc, n, "check of '%s' has no bound (min, max, ...)", name);
    return 0;
}

static int parse_analysis(struct cairn_plan *p, const struct cairn_yaml_node *a)
{
    static const char *const keys[] = { "interval",      "min_requests", "min_labels",
                                        "failure_limit", "checks",       NULL };
    const struct cairn_yaml_node *v;
    uint64_t n = 0;
    int error, labels_set = 0;

    if ((error = cairn_yaml_expect(a, CAIRN_YAML_MAP)) < 0 ||
        (error = cairn_yaml_check_keys(a, keys)) < 0)
        return error;
    if ((v = cairn_yaml_map_get(a, "interval"))) {
        if ((error = cairn_yaml_duration_ms(&p->interval_ms, v)) < 0)
            return error;
        if (p->interval_ms < 100 || p->interval_ms > 86400000)
            return cairn_yaml_error(v->doc, v, "interval must be from 100ms to 1d");
    }
    if ((v = cairn_yaml_map_get(a, "min_requests")) &&
        (error = get_count(&p->min_requests, v, 0, 1000000000)) < 0)
        return error;
    if ((v = cairn_yaml_map_get(a, "min_labels"))) {
        if ((error = get_count(&p->min_labels, v, 1, 1000000000)) < 0)
            return error;
        labels_set = 1;
    }
    if (!labels_set)
        p->min_labels = p->min_requests ? p->min_requests : 1;
    if ((v = cairn_yaml_map_get(a, "failure_limit"))) {
        if ((error = get_count(&n, v, 1, 1000)) < 0)
            return error;
        p->failure_limit = (int)n;
    }
    if ((v = cairn_yaml_map_get(a, "checks"))) {
        if ((error = cairn_yaml_expect(v, CAIRN_YAML_SEQ)) < 0)
            return error;
        if (v->count > CAIRN_PLAN_MAX_CHECKS)
            return cairn_yaml_error(v->doc, v, "more than %d checks", CAIRN_PLAN_MAX_CHECKS);
        for (size_t i = 0; i < v->count; i++) {
            if ((error = parse_check(&p->checks[i], v->items[i])) < 0)
                return error;
            if (p->checks[i].metric == CAIRN_METRIC_SHADOW_AGREEMENT &&
                p->strategy != CAIRN_STRATEGY_SHADOW)
                return cairn_yaml_error(v->doc, v->items[i],
                                        "shadow_agreement needs strategy shadow");
        }
        p->nchecks = v->count;
    } else {
        /*
         * An analysis block says how to judge the candidate; without checks
         * it would judge only the default error rate, which nobody who wrote
         * the block asked for. Say so rather than guess.
         */
        return cairn_yaml_error(a->doc, a,
                                "analysis has no 'checks' (list what to judge, such as "
                                "[{metric: error_rate, max: 0.01}], or write 'checks: []' "
                                "to advance on pauses alone)");
    }
    return 0;
}

static int parse_sticky(struct cairn_plan *p, const struct cairn_yaml_node *s)
{
    static const char *const keys[] = { "header", "cookie", NULL };
    const struct cairn_yaml_node *h, *c, *v;
    const char *name;
    int error;
    if ((error = cairn_yaml_expect(s, CAIRN_YAML_MAP)) < 0 ||
        (error = cairn_yaml_check_keys(s, keys)) < 0)
        return error;
    h = cairn_yaml_map_get(s, "header");
    c = cairn_yaml_map_get(s, "cookie");
    if (!!h == !!c)
        return cairn_yaml_error(s->doc, s, "sticky takes one of 'header' or 'cookie'");
    v = h ? h : c;
    if ((error = cairn_yaml_str(&name, v)) < 0)
        return error;
    if (!*name || strlen(name) >= sizeof(p->sticky_name) || strpbrk(name, " \t\r\n:;=,"))
        return cairn_yaml_error(v->doc, v, "bad %s name", h ? "header" : "cookie");
    snprintf(p->sticky_name, sizeof(p->sticky_name), "%s", name);
    p->sticky = h ? CAIRN_STICKY_HEADER : CAIRN_STICKY_COOKIE;
    return 0;
}

static int parse_test(struct cairn_plan *p, const struct cairn_yaml_node *t, int with_weight)
{
    static const char *const ab_keys[] = { "weight", "duration", "samples", NULL };
    const struct cairn_yaml_node *v;
    uint64_t n = 0;
    int error;
    if ((error = cairn_yaml_expect(t, CAIRN_YAML_MAP)) < 0 ||
        (error = cairn_yaml_check_keys(t, with_weight ? ab_keys : ab_keys + 1)) < 0)
        return error;
    if ((v = cairn_yaml_map_get(t, "weight"))) {
        if ((error = get_count(&n, v, 1, 99)) < 0)
            return error;
        p->steps[0].weight = (int)n;
        p->nsteps = 1;
    }
    if ((v = cairn_yaml_map_get(t, "duration")) &&
        (error = cairn_yaml_duration_ms(&p->test_duration_ms, v)) < 0)
        return error;
    if ((v = cairn_yaml_map_get(t, "samples")) &&
        (error = get_count(&p->test_samples, v, 1, 1000000000000LL)) < 0)
        return error;
    return 0;
}

int cairn_plan_parse(struct cairn_plan *out, const char *name, const char *text, size_t len)
{
    static const char *const keys[] = { "strategy",   "steps", "analysis", "sticky",
                                        "on_failure", "ab",    "shadow",   NULL };
    struct cairn_yaml_limits lim = { 16, 4096, PLAN_MAX_BYTES };
    struct cairn_yaml_doc *doc = NULL;
    const struct cairn_yaml_node *root, *v;
    struct cairn_plan p;
    const char *s;
    int error = 0, found = -1;

    cairn_plan_default(&p);
    if ((error = cairn_yaml_parse(&doc, name, text, len, &lim)) < 0)
        return error;
    root = cairn_yaml_root(doc);
    if (!root) {
        error = cairn_yaml_error(doc, NULL, "empty plan (expected 'strategy:')");
        goto done;
    }
    if ((error = cairn_yaml_expect(root, CAIRN_YAML_MAP)) < 0 ||
        (error = cairn_yaml_check_keys(root, keys)) < 0)
        goto done;
    if ((v = cairn_yaml_map_get(root, "strategy"))) {
        if ((error = cairn_yaml_str(&s, v)) < 0)
            goto done;
        for (int i = 0; i < 4; i++)
            if (!strcmp(s, strategy_names[i]))
                found = i;
        if (found < 0) {
            error = cairn_yaml_error(doc, v,
                                     "unknown strategy '%.64s' (expected one of: canary, "
                                     "bluegreen, ab, shadow)",
                                     s);
            goto done;
        }
        p.strategy = (enum cairn_strategy)found;
    }
    /* Strategy defaults before the keys that refine them. */
    if (p.strategy == CAIRN_STRATEGY_BLUEGREEN) {
        p.steps[0] = (struct cairn_plan_step){ 100, 0 };
        p.nsteps = 1;
    } else if (p.strategy == CAIRN_STRATEGY_AB) {
        p.steps[0] = (struct cairn_plan_step){ 50, 0 };
        p.nsteps = 1;
    } else if (p.strategy == CAIRN_STRATEGY_SHADOW) {
        p.steps[0] = (struct cairn_plan_step){ 100, 0 };
        p.nsteps = 1;
    }
    if ((v = cairn_yaml_map_get(root, "steps"))) {
        if (p.strategy == CAIRN_STRATEGY_AB || p.strategy == CAIRN_STRATEGY_SHADOW) {
            error = cairn_yaml_error(doc, v, "steps do not apply to strategy %s (use '%s:')",
                                     strategy_names[p.strategy], strategy_names[p.strategy]);
            goto done;
        }
        if ((error = parse_steps(&p, v)) < 0)
            goto done;
        if (p.strategy == CAIRN_STRATEGY_BLUEGREEN && (p.nsteps != 1 || p.steps[0].weight != 100)) {
            error = cairn_yaml_error(doc, v, "bluegreen takes one step of weight 100");
            goto done;
        }
    }
    if ((v = cairn_yaml_map_get(root, "ab"))) {
        if (p.strategy != CAIRN_STRATEGY_AB) {
            error = cairn_yaml_error(doc, v, "'ab' needs strategy ab");
            goto done;
        }
        if ((error = parse_test(&p, v, 1)) < 0)
            goto done;
    }
    if ((v = cairn_yaml_map_get(root, "shadow"))) {
        if (p.strategy != CAIRN_STRATEGY_SHADOW) {
            error = cairn_yaml_error(doc, v, "'shadow' needs strategy shadow");
            goto done;
        }
        if ((error = parse_test(&p, v, 0)) < 0)
            goto done;
    }
    if ((v = cairn_yaml_map_get(root, "analysis")) && (error = parse_analysis(&p, v)) < 0)
        goto done;
    if ((v = cairn_yaml_map_get(root, "sticky")) && (error = parse_sticky(&p, v)) < 0)
        goto done;
    if ((v = cairn_yaml_map_get(root, "on_failure"))) {
        if ((error = cairn_yaml_str(&s, v)) < 0)
            goto done;
        if (!strcmp(s, "rollback")) {
            p.on_failure_pause = 0;
        } else if (!strcmp(s, "pause")) {
            p.on_failure_pause = 1;
        } else {
            error = cairn_yaml_error(doc, v,
                                     "unknown on_failure '%.64s' (expected rollback or pause)", s);
            goto done;
        }
    }
    *out = p;
done:
    cairn_yaml_doc_free(doc);
    return error;
}
