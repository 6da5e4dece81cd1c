/*
 * Gate evaluation: the built-in check kinds (metric bounds, no regression
 * against an alias, signature, validated data), the kind table, the
 * evaluator and the JSON form of a result.
 *
 * The evaluator knows nothing about storage: every fact comes through the
 * caller's struct cairn_gate_ctx callbacks, so the registry (or a test) can
 * supply them. A check whose fact is absent fails with a reason; a check
 * whose lookup broke (I/O error) is an ERROR, never a pass. Comparisons
 * allow a relative slack of 1e-9 so that "0.907 >= 0.912 - 0.005" does not
 * fail on floating-point rounding.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cairn/common.h"
#include "cairn/gate.h"
#include "gate/gate.h"
#include "gate/policy.h"
#include "util/hash.h"
#include "util/yaml.h"

#define NUMSZ 48

const struct cairn_check_kind *const cairn__check_kinds[] = {
    &cairn__check_metric,
    &cairn__check_signature,
    &cairn__check_data,
    NULL,
};

const char *cairn_verdict_name(enum cairn_verdict v)
{
    switch (v) {
    case CAIRN_VERDICT_PASS:
        return "pass";
    case CAIRN_VERDICT_FAIL:
        return "fail";
    case CAIRN_VERDICT_ERROR:
        return "error";
    }
    return "error";
}

int cairn_verdict_parse(const char *s)
{
    if (strcmp(s, "pass") == 0)
        return CAIRN_VERDICT_PASS;
    if (strcmp(s, "fail") == 0)
        return CAIRN_VERDICT_FAIL;
    if (strcmp(s, "error") == 0)
        return CAIRN_VERDICT_ERROR;
    return -1;
}

static bool at_least(double v, double bound)
{
    double a = fabs(bound) > 1 ? fabs(bound) : 1;
    return v >= bound - 1e-9 * a;
}

static bool at_most(double v, double bound)
{
    double a = fabs(bound) > 1 ? fabs(bound) : 1;
    return v <= bound + 1e-9 * a;
}

/* ---- metric: NAME ------------------------------------------------------ */

struct metric_check {
    char *metric;
    bool has_min, has_max;
    double min, max;
    char *alias; /* no_regression_vs */
    double tolerance;
    bool higher_is_better;
    bool missing_baseline_pass; /* on_missing_baseline: pass */
};

static const char *const metric_keys[] = {
    "metric", "min", "max", "no_regression_vs", "tolerance", "direction", "on_missing_baseline",
    NULL
};

/* Names that measure a cost: lower is better unless the policy says otherwise. */
static bool lower_is_better_by_name(const char *name)
{
    static const char *const suffixes[] = { "_ms", "latency", "loss", "error", "size", "bytes" };
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        size_t m = strlen(suffixes[i]);
        if (n >= m && strcmp(name + n - m, suffixes[i]) == 0)
            return true;
    }
    return false;
}

static bool alias_name_valid(const char *s)
{
    size_t i;
    if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
        return false;
    for (i = 1; s[i]; i++) {
        char c = s[i];
        if (i >= 64 ||
            !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static void metric_release(struct cairn_check *check)
{
    struct metric_check *m = check->priv;
    if (m) {
        free(m->metric);
        free(m->alias);
        free(m);
    }
    check->priv = NULL;
}

static int metric_parse(struct cairn_check *out, const struct cairn_yaml_node *map)
{
    const struct cairn_yaml_node *n;
    const char *s;
    struct metric_check *m = calloc(1, sizeof(*m));
    int error = 0;

    if (!m)
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    n = cairn_yaml_map_get(map, "metric");
    if ((error = cairn_yaml_expect(n, CAIRN_YAML_SCALAR)) < 0)
        goto done;
    if (strlen(n->str) != n->len || !cairn_value_name_valid(n->str)) {
        error = cairn_yaml_error(
            map->doc, n, "invalid metric name '%.140s' (allowed: [A-Za-z0-9_.:-]{1,128})", n->str);
        goto done;
    }
    if (!(m->metric = strdup(n->str))) {
        error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
        goto done;
    }
    m->higher_is_better = !lower_is_better_by_name(m->metric);
    if ((n = cairn_yaml_map_get(map, "min"))) {
        if ((error = cairn_yaml_double(&m->min, n)) < 0)
            goto done;
        m->has_min = true;
    }
    if ((n = cairn_yaml_map_get(map, "max"))) {
        if ((error = cairn_yaml_double(&m->max, n)) < 0)
            goto done;
        m->has_max = true;
        if (m->has_min && m->max < m->min) {
            error = cairn_yaml_error(map->doc, n, "'max' is below 'min'");
            goto done;
        }
    }
    if ((n = cairn_yaml_map_get(map, "no_regression_vs"))) {
        if (m->has_min || m->has_max) {
            error = cairn_yaml_error(map->doc, cairn_yaml_map_key(map, "no_regression_vs"),
                                     "'no_regression_vs' cannot be combined with 'min' or 'max' "
                                     "(write two checks)");
            goto done;
        }
        if ((error = cairn_yaml_str(&s, n)) < 0)
            goto done;
        if (strlen(s) != n->len || !alias_name_valid(s)) {
            error = cairn_yaml_error(
                map->doc, n, "invalid alias '%.100s' (allowed: [a-z0-9][a-z0-9._-]{0,63})", s);
            goto done;
        }
        if (!(m->alias = strdup(s))) {
            error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
            goto done;
        }
    }
    if ((n = cairn_yaml_map_get(map, "tolerance"))) {
        if (!m->alias) {
            error = cairn_yaml_error(map->doc, cairn_yaml_map_key(map, "tolerance"),
                                     "'tolerance' needs 'no_regression_vs'");
            goto done;
        }
        if ((error = cairn_yaml_double(&m->tolerance, n)) < 0)
            goto done;
        if (m->tolerance < 0) {
            error = cairn_yaml_error(map->doc, n, "'tolerance' must not be negative");
            goto done;
        }
    }
    if ((n = cairn_yaml_map_get(map, "direction"))) {
        if (!m->alias) {
            error = cairn_yaml_error(map->doc, cairn_yaml_map_key(map, "direction"),
                                     "'direction' needs 'no_regression_vs'");
            goto done;
        }
        if ((error = cairn_yaml_str(&s, n)) < 0)
            goto done;
        if (strcmp(s, "higher_is_better") == 0) {
            m->higher_is_better = true;
        } else if (strcmp(s, "lower_is_better") == 0) {
            m->higher_is_better = false;
        } else {
            error = cairn_yaml_error(map->doc, n,
                                     "direction must be higher_is_better or lower_is_better");
            goto done;
        }
    }
    if ((n = cairn_yaml_map_get(map, "on_missing_baseline"))) {
        if (!m->alias) {
            error = cairn_yaml_error(map->doc, cairn_yaml_map_key(map, "on_missing_baseline"),
                                     "'on_missing_baseline' needs 'no_regression_vs'");
            goto done;
        }
        if ((error = cairn_yaml_str(&s, n)) < 0)
            goto done;
        if (strcmp(s, "pass") == 0) {
            m->missing_baseline_pass = true;
        } else if (strcmp(s, "fail") != 0) {
            error = cairn_yaml_error(map->doc, n, "on_missing_baseline must be pass or fail");
            goto done;
        }
    }
    if (!m->has_min && !m->has_max && !m->alias)
        error = cairn_yaml_error(map->doc, map,
                                 "metric check needs 'min', 'max' or 'no_regression_vs'");
done:
    out->priv = m;
    if (error < 0)
        metric_release(out);
    return error;
}

static json_t *metric_to_json(const struct cairn_check *check)
{
    const struct metric_check *m = check->priv;
    json_t *o = json_object();
    int bad = 0;

    if (!o)
        return NULL;
    bad |= json_object_set_new(o, "metric", json_string(m->metric));
    if (m->has_min)
        bad |= json_object_set_new(o, "min", json_real(m->min));
    if (m->has_max)
        bad |= json_object_set_new(o, "max", json_real(m->max));
    if (m->alias) {
        bad |= json_object_set_new(o, "no_regression_vs", json_string(m->alias));
        bad |= json_object_set_new(o, "tolerance", json_real(m->tolerance));
        bad |= json_object_set_new(
            o, "direction",
            json_string(m->higher_is_better ? "higher_is_better" : "lower_is_better"));
        /*
         * Only the non-default value is canonical: policies written before
         * the option existed keep their digest, so their stored gate
         * results still count for promote.
         */
        if (m->missing_baseline_pass)
            bad |= json_object_set_new(o, "on_missing_baseline", json_string("pass"));
    }
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static int set_error_reason(struct cairn_check_result *out)
{
    out->verdict = CAIRN_VERDICT_ERROR;
    return cairn__strdupf(&out->reason, "%s", cairn_error_last());
}

static int metric_bound_text(char **out, const struct metric_check *m, const char *base,
                             bool base_known)
{
    char a[NUMSZ], b[NUMSZ];
    if (m->alias) {
        const char *op = m->higher_is_better ? "≥" : "≤";
        const char *sign = m->higher_is_better ? "-" : "+";
        if (m->tolerance > 0)
            return cairn__strdupf(out, "%s %s %s %s %s", op, m->alias, base_known ? base : "(none)",
                                  sign, cairn__fmt_number(a, sizeof(a), m->tolerance));
        return cairn__strdupf(out, "%s %s %s", op, m->alias, base_known ? base : "(none)");
    }
    if (m->has_min && m->has_max)
        return cairn__strdupf(out, "≥ %s, ≤ %s", cairn__fmt_number(a, sizeof(a), m->min),
                              cairn__fmt_number(b, sizeof(b), m->max));
    if (m->has_min)
        return cairn__strdupf(out, "≥ %s", cairn__fmt_number(a, sizeof(a), m->min));
    return cairn__strdupf(out, "≤ %s", cairn__fmt_number(a, sizeof(a), m->max));
}

static int metric_evaluate(struct cairn_check_result *out, const struct cairn_check *check,
                           const struct cairn_gate_ctx *ctx, const char *version)
{
    const struct metric_check *m = check->priv;
    char num[NUMSZ], base_text[NUMSZ] = "";
    double value = 0, base = 0;
    bool found = false, alias_found = false, base_found = false;
    int error;

    if (!(out->metric = strdup(m->metric)))
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    if (!ctx->metric) {
        out->verdict = CAIRN_VERDICT_ERROR;
        error = cairn__strdupf(&out->reason, "no source of metrics");
        goto bound;
    }
    if (ctx->metric(ctx, version, m->metric, &value, &found) < 0) {
        error = set_error_reason(out);
        goto bound;
    }
    if (found && !isfinite(value)) {
        out->verdict = CAIRN_VERDICT_ERROR;
        error = cairn__strdupf(&out->reason, "metric '%s' is not a finite number", m->metric);
        goto bound;
    }
    if (found) {
        out->has_value = true;
        out->value = value;
    }
    if ((error = cairn__strdupf(&out->value_text, "%s",
                                found ? cairn__fmt_number(num, sizeof(num), value) : "missing")) <
        0)
        return error;

    if (m->alias) {
        if (!ctx->alias_metric) {
            out->verdict = CAIRN_VERDICT_ERROR;
            error = cairn__strdupf(&out->reason, "no source of alias metrics");
            goto bound;
        }
        if (ctx->alias_metric(ctx, m->alias, m->metric, &base, &alias_found, &base_found) < 0) {
            error = set_error_reason(out);
            goto bound;
        }
        if (alias_found && base_found && isfinite(base))
            cairn__fmt_number(base_text, sizeof(base_text), base);
    }

    if (!found) {
        out->verdict = CAIRN_VERDICT_FAIL;
        error = cairn__strdupf(&out->reason, "metric '%s' not recorded", m->metric);
    } else if (m->alias && (!alias_found || !base_found || !isfinite(base))) {
        char why[256];
        if (!alias_found)
            snprintf(why, sizeof(why), "alias '%s' is not set", m->alias);
        else
            snprintf(why, sizeof(why), "the version at '%s' has no metric '%s'", m->alias,
                     m->metric);
        /*
         * No baseline to compare with: a fail unless the policy opted in,
         * and then a pass that says so, so nobody mistakes it for a
         * comparison that was made.
         */
        out->verdict = m->missing_baseline_pass ? CAIRN_VERDICT_PASS : CAIRN_VERDICT_FAIL;
        error = m->missing_baseline_pass ? cairn__strdupf(&out->reason,
                                                          "baseline missing: %s; passed because of "
                                                          "on_missing_baseline: pass",
                                                          why)
                                         : cairn__strdupf(&out->reason, "%s", why);
    } else if (m->alias) {
        bool ok = m->higher_is_better ? at_least(value, base - m->tolerance)
                                      : at_most(value, base + m->tolerance);
        char d[NUMSZ];
        out->verdict = ok ? CAIRN_VERDICT_PASS : CAIRN_VERDICT_FAIL;
        error = ok ? 0
                   : cairn__strdupf(&out->reason, "%s regressed by %s against %s", m->metric,
                                    cairn__fmt_number(d, sizeof(d), fabs(value - base)), m->alias);
    } else if (m->has_min && !at_least(value, m->min)) {
        out->verdict = CAIRN_VERDICT_FAIL;
        error = cairn__strdupf(&out->reason, "%s is below the minimum", m->metric);
    } else if (m->has_max && !at_most(value, m->max)) {
        out->verdict = CAIRN_VERDICT_FAIL;
        error = cairn__strdupf(&out->reason, "%s is above the maximum", m->metric);
    } else {
        out->verdict = CAIRN_VERDICT_PASS;
        error = 0;
    }
bound:
    if (error < 0)
        return error;
    return metric_bound_text(&out->bound, m, base_text, base_text[0] != '\0');
}

const struct cairn_check_kind cairn__check_metric = {
    .key = "metric",
    .keys = metric_keys,
    .parse = metric_parse,
    .evaluate = metric_evaluate,
    .to_json = metric_to_json,
    .release = metric_release,
};

/* ---- signature: required / data: validated ----------------------------- */

/* Both kinds take exactly one fixed word; nothing to store. */
static int fixed_word(const struct cairn_yaml_node *map, const char *key, const char *word)
{
    const struct cairn_yaml_node *n = cairn_yaml_map_get(map, key);
    if (n->type != CAIRN_YAML_SCALAR || strcmp(n->str, word) != 0)
        return cairn_yaml_error(map->doc, n, "'%s' must be '%s'", key, word);
    return 0;
}

static const char *const signature_keys[] = { "signature", NULL };

static int signature_parse(struct cairn_check *out, const struct cairn_yaml_node *map)
{
    out->priv = NULL;
    return fixed_word(map, "signature", "required");
}

static json_t *signature_to_json(const struct cairn_check *check)
{
    (void)check;
    return json_pack("{s:s}", "signature", "required");
}

static int signature_evaluate(struct cairn_check_result *out, const struct cairn_check *check,
                              const struct cairn_gate_ctx *ctx, const char *version)
{
    enum cairn_sig_status status = CAIRN_SIG_MISSING;
    char *detail = NULL;
    int error;

    (void)check;
    if ((error = cairn__strdupf(&out->bound, "required")) < 0)
        return error;
    if (!ctx->signature_status) {
        out->verdict = CAIRN_VERDICT_ERROR;
        return cairn__strdupf(&out->reason, "no source of signatures");
    }
    if (ctx->signature_status(ctx, version, &status, &detail) < 0) {
        free(detail);
        return set_error_reason(out);
    }
    switch (status) {
    case CAIRN_SIG_VALID:
        out->verdict = CAIRN_VERDICT_PASS;
        error = cairn__strdupf(&out->value_text, "signed%s%s", detail ? " by " : "",
                               detail ? detail : "");
        break;
    case CAIRN_SIG_UNTRUSTED:
        out->verdict = CAIRN_VERDICT_FAIL;
        if ((error = cairn__strdupf(&out->value_text, "untrusted")) == 0)
            error = cairn__strdupf(&out->reason, "signed by a key that is not trusted%s%s",
                                   detail ? ": " : "", detail ? detail : "");
        break;
    case CAIRN_SIG_INVALID:
        out->verdict = CAIRN_VERDICT_FAIL;
        if ((error = cairn__strdupf(&out->value_text, "invalid")) == 0)
            error = cairn__strdupf(&out->reason, "signature does not verify%s%s",
                                   detail ? ": " : "", detail ? detail : "");
        break;
    default:
        out->verdict = CAIRN_VERDICT_FAIL;
        if ((error = cairn__strdupf(&out->value_text, "missing")) == 0)
            error = cairn__strdupf(&out->reason, "version is not signed");
        break;
    }
    free(detail);
    return error;
}

const struct cairn_check_kind cairn__check_signature = {
    .key = "signature",
    .keys = signature_keys,
    .parse = signature_parse,
    .evaluate = signature_evaluate,
    .to_json = signature_to_json,
    .release = NULL,
};

static const char *const data_keys[] = { "data", NULL };

static int data_parse(struct cairn_check *out, const struct cairn_yaml_node *map)
{
    out->priv = NULL;
    return fixed_word(map, "data", "validated");
}

static json_t *data_to_json(const struct cairn_check *check)
{
    (void)check;
    return json_pack("{s:s}", "data", "validated");
}

static int data_evaluate(struct cairn_check_result *out, const struct cairn_check *check,
                         const struct cairn_gate_ctx *ctx, const char *version)
{
    bool ok = false;
    char *detail = NULL;
    int error;

    (void)check;
    if ((error = cairn__strdupf(&out->bound, "validated")) < 0)
        return error;
    if (!ctx->data_validated) {
        out->verdict = CAIRN_VERDICT_ERROR;
        return cairn__strdupf(&out->reason, "no source of data validation results");
    }
    if (ctx->data_validated(ctx, version, &ok, &detail) < 0) {
        free(detail);
        return set_error_reason(out);
    }
    out->verdict = ok ? CAIRN_VERDICT_PASS : CAIRN_VERDICT_FAIL;
    if ((error = cairn__strdupf(&out->value_text, "%s", ok ? "validated" : "not validated")) == 0 &&
        !ok)
        error = cairn__strdupf(&out->reason, "%s",
                               detail ? detail : "the version's datasets did not pass validation");
    free(detail);
    return error;
}

const struct cairn_check_kind cairn__check_data = {
    .key = "data",
    .keys = data_keys,
    .parse = data_parse,
    .evaluate = data_evaluate,
    .to_json = data_to_json,
    .release = NULL,
};

/* ---- evaluation and results ---------------------------------------------- */

static void check_result_release(struct cairn_check_result *c)
{
    free(c->kind);
    free(c->metric);
    free(c->value_text);
    free(c->bound);
    free(c->reason);
}

void cairn_gate_result_free(struct cairn_gate_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->count; i++)
        check_result_release(&r->checks[i]);
    free(r->checks);
    free(r->version);
    free(r);
}

static enum cairn_verdict overall(const struct cairn_gate_result *r)
{
    bool any_error = false;
    for (size_t i = 0; i < r->count; i++) {
        if (r->checks[i].verdict == CAIRN_VERDICT_FAIL)
            return CAIRN_VERDICT_FAIL;
        if (r->checks[i].verdict != CAIRN_VERDICT_PASS)
            any_error = true;
    }
    return any_error ? CAIRN_VERDICT_ERROR : CAIRN_VERDICT_PASS;
}

int cairn_gate_evaluate(struct cairn_gate_result **out, const struct cairn_policy *p,
                        const struct cairn_gate_ctx *ctx, const char *version)
{
    struct cairn_gate_result *r = calloc(1, sizeof(*r));
    int error = 0;

    *out = NULL;
    if (!r || !(r->version = strdup(version)) ||
        !(r->checks = calloc(p->count ? p->count : 1, sizeof(*r->checks)))) {
        error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
        goto done;
    }
    if ((error = cairn_policy_digest(&r->policy, p)) < 0)
        goto done;
    for (size_t i = 0; i < p->count; i++) {
        const struct cairn_check *c = &p->checks[i];
        struct cairn_check_result *cr = &r->checks[i];
        r->count++;
        cr->line = c->line;
        cr->col = c->col;
        if (!(cr->kind = strdup(c->kind->key))) {
            error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
            goto done;
        }
        if ((error = c->kind->evaluate(cr, c, ctx, version)) < 0)
            goto done;
    }
    r->verdict = overall(r);
    *out = r;
    r = NULL;
done:
    cairn_gate_result_free(r);
    return error;
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

int cairn_gate_result_to_json(char **out, const struct cairn_gate_result *r)
{
    char hex[CAIRN_OID_HEXSZ + 1];
    json_t *root = NULL, *list = json_array();
    int error = 0;

    *out = NULL;
    cairn_oid_fmt(hex, &r->policy);
    if (!list)
        goto nomem;
    for (size_t i = 0; i < r->count; i++) {
        const struct cairn_check_result *c = &r->checks[i];
        json_t *o = json_pack("{s:s, s:o, s:o, s:o, s:o, s:s, s:o, s:i, s:i}", "kind", c->kind,
                              "metric", str_or_null(c->metric), "value",
                              c->has_value ? json_real(c->value) : json_null(), "value_text",
                              str_or_null(c->value_text), "bound", str_or_null(c->bound), "verdict",
                              cairn_verdict_name(c->verdict), "reason", str_or_null(c->reason),
                              "line", c->line, "col", c->col);
        if (!o || json_array_append_new(list, o) < 0)
            goto nomem;
    }
    root = json_pack("{s:s, s:s, s:s, s:O}", "version", r->version, "policy", hex, "verdict",
                     cairn_verdict_name(r->verdict), "checks", list);
    if (!root)
        goto nomem;
    if (!(*out = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17))))
        goto nomem;
    goto done;
nomem:
    error = cairn_error_set(CAIRN_ENOMEM, "cannot encode gate result");
done:
    json_decref(list);
    json_decref(root);
    return error;
}

static int dup_opt(char **out, json_t *o, const char *key, bool required)
{
    json_t *v = json_object_get(o, key);
    *out = NULL;
    if (!v || json_is_null(v)) {
        if (required)
            return cairn_error_set(CAIRN_ECORRUPT, "gate result: missing '%s'", key);
        return 0;
    }
    if (!json_is_string(v))
        return cairn_error_set(CAIRN_ECORRUPT, "gate result: '%s' is not a string", key);
    if (!(*out = strdup(json_string_value(v))))
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    return 0;
}

int cairn_gate_result_from_json(struct cairn_gate_result **out, const char *json, size_t len)
{
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr), *list, *v;
    struct cairn_gate_result *r = calloc(1, sizeof(*r));
    char *tmp = NULL;
    int error = 0, verdict;

    *out = NULL;
    if (!r) {
        error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
        goto done;
    }
    if (!root || !json_is_object(root)) {
        error =
            cairn_error_set(CAIRN_ECORRUPT, "gate result: %s", root ? "not an object" : jerr.text);
        goto done;
    }
    if ((error = dup_opt(&r->version, root, "version", true)) < 0 ||
        (error = dup_opt(&tmp, root, "policy", true)) < 0)
        goto done;
    if (cairn_oid_parse(&r->policy, tmp) < 0) {
        error = cairn_error_set(CAIRN_ECORRUPT, "gate result: bad policy digest");
        goto done;
    }
    free(tmp);
    if ((error = dup_opt(&tmp, root, "verdict", true)) < 0)
        goto done;
    if ((verdict = cairn_verdict_parse(tmp)) < 0) {
        error = cairn_error_set(CAIRN_ECORRUPT, "gate result: bad verdict '%.20s'", tmp);
        goto done;
    }
    r->verdict = (enum cairn_verdict)verdict;
    list = json_object_get(root, "checks");
    if (!json_is_array(list)) {
        error = cairn_error_set(CAIRN_ECORRUPT, "gate result: 'checks' is not an array");
        goto done;
    }
    if (!(r->checks = calloc(json_array_size(list) + 1, sizeof(*r->checks)))) {
        error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < json_array_size(list); i++) {
        json_t *o = json_array_get(list, i);
        struct cairn_check_result *c = &r->checks[i];
        r->count++;
        if (!json_is_object(o)) {
            error = cairn_error_set(CAIRN_ECORRUPT, "gate result: check %zu is not an object", i);
            goto done;
        }
        free(tmp);
        tmp = NULL;
        if ((error = dup_opt(&c->kind, o, "kind", true)) < 0 ||
            (error = dup_opt(&c->metric, o, "metric", false)) < 0 ||
            (error = dup_opt(&c->value_text, o, "value_text", false)) < 0 ||
            (error = dup_opt(&c->bound, o, "bound", false)) < 0 ||
            (error = dup_opt(&c->reason, o, "reason", false)) < 0 ||
            (error = dup_opt(&tmp, o, "verdict", true)) < 0)
            goto done;
        if ((verdict = cairn_verdict_parse(tmp)) < 0) {
            error = cairn_error_set(CAIRN_ECORRUPT, "gate result: bad verdict '%.20s'", tmp);
            goto done;
        }
        c->verdict = (enum cairn_verdict)verdict;
        if ((v = json_object_get(o, "value")) && json_is_number(v)) {
            c->has_value = true;
            c->value = json_number_value(v);
        }
        if ((v = json_object_get(o, "line")) && json_is_integer(v))
            c->line = (int)json_integer_value(v);
        if ((v = json_object_get(o, "col")) && json_is_integer(v))
            c->col = (int)json_integer_value(v);
    }
    *out = r;
    r = NULL;
done:
    free(tmp);
    cairn_gate_result_free(r);
    json_decref(root);
    return error;
}
