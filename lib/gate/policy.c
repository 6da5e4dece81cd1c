/*
 * Gate policy files (SPEC §5): YAML with a `checks:` list, each entry one
 * check of a kind from cairn__check_kinds[]. This file finds the kind of
 * each entry and leaves the rest of the entry to the kind's parser, so a new
 * kind never touches it.
 *
 * A policy is a release rule, so every mistake is a hard error with the
 * file, line and column: an unknown key or kind, a wrong type, a metric
 * check without `metric`, an empty list. Silently ignoring a misspelled
 * `mni: 0.9` would let a model through a gate its owner thinks exists.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cairn/common.h"
#include "cairn/gate.h"
#include "gate/policy.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/yaml.h"

#define POLICY_MAX_BYTES ((size_t)256 << 10)
#define POLICY_VERSION   1

static const char *const top_keys[] = { "checks", "description", NULL };

int cairn__strdupf(char **out, const char *fmt, ...)
{
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vasprintf(out, fmt, ap);
    va_end(ap);
    if (n < 0) {
        *out = NULL;
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    }
    return 0;
}

const char *cairn__fmt_number(char *buf, size_t cap, double v)
{
    double a = v < 0 ? -v : v;
    if (a < 1e15 && v == (double)(long long)v) {
        snprintf(buf, cap, "%lld", (long long)v);
    } else if (a >= 1e-3 && a < 1e15) {
        /*
         * Three decimals unless that would hide a digit that matters; the
         * relative slack keeps 0.912 - 0.9 printing as 0.012.
         */
        for (int p = 3; p <= 12; p++) {
            snprintf(buf, cap, "%.*f", p, v);
            if (fabs(strtod(buf, NULL) - v) <= 1e-9 * a)
                break;
        }
    } else {
        snprintf(buf, cap, "%.6g", v);
    }
    return buf;
}

static bool has_key(const struct cairn_check_kind *k, const char *key, size_t len)
{
    for (size_t i = 0; k->keys[i]; i++)
        if (strlen(k->keys[i]) == len && memcmp(k->keys[i], key, len) == 0)
            return true;
    return false;
}

/* Pick the kind of one entry: exactly one kind key must be present. */
static int find_kind(const struct cairn_check_kind **out, const struct cairn_yaml_node *entry)
{
    const struct cairn_check_kind *found = NULL;
    struct cairn_buf names = CAIRN_BUF_INIT;
    int error = 0;

    for (size_t i = 0; cairn__check_kinds[i]; i++) {
        const struct cairn_check_kind *k = cairn__check_kinds[i];
        const struct cairn_yaml_node *key = cairn_yaml_map_key(entry, k->key);
        if (!key)
            continue;
        if (found) {
            error =
                cairn_yaml_error(entry->doc, key, "a check has one kind; found both '%s' and '%s'",
                                 found->key, k->key);
            goto done;
        }
        found = k;
    }
    if (found) {
        *out = found;
        goto done;
    }
    cairn_buf_init(&names, 512);
    for (size_t i = 0; cairn__check_kinds[i]; i++)
        cairn_buf_printf(&names, "%s%s", i ? ", " : "", cairn__check_kinds[i]->key);
    if (entry->count == 0) {
        error = cairn_yaml_error(entry->doc, entry, "empty check (expected one of: %s)",
                                 names.ptr ? names.ptr : "");
        goto done;
    }
    /* `min: 0.9` without `metric:` is a missing key, not an unknown kind. */
    for (size_t i = 0; cairn__check_kinds[i]; i++) {
        const struct cairn_check_kind *k = cairn__check_kinds[i];
        for (size_t j = 0; j < entry->count; j++) {
            if (has_key(k, entry->keys[j]->str, entry->keys[j]->len)) {
                error = cairn_yaml_error(entry->doc, entry, "check is missing '%s'", k->key);
                goto done;
            }
        }
    }
    error =
        cairn_yaml_error(entry->doc, entry->keys[0], "unknown check '%.100s' (expected one of: %s)",
                         entry->keys[0]->str, names.ptr ? names.ptr : "");
done:
    cairn_buf_release(&names);
    return error;
}

void cairn_policy_free(struct cairn_policy *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->count; i++)
        if (p->checks[i].kind && p->checks[i].kind->release)
            p->checks[i].kind->release(&p->checks[i]);
    free(p->checks);
    free(p->name);
    free(p);
}

int cairn_policy_parse(struct cairn_policy **out, const char *name, const void *data, size_t len)
{
    struct cairn_yaml_limits lim = { .max_bytes = POLICY_MAX_BYTES, .max_depth = 8 };
    struct cairn_yaml_doc *doc = NULL;
    const struct cairn_yaml_node *root, *checks;
    struct cairn_policy *p = NULL;
    int error;

    *out = NULL;
    if ((error = cairn_yaml_parse(&doc, name, data, len, &lim)) < 0)
        goto done;
    root = cairn_yaml_root(doc);
    if (!root) {
        error = cairn_yaml_error(doc, NULL, "empty policy (expected 'checks:')");
        goto done;
    }
    if ((error = cairn_yaml_check_keys(root, top_keys)) < 0)
        goto done;
    if ((checks = cairn_yaml_map_get(root, "description")) &&
        (error = cairn_yaml_expect(checks, CAIRN_YAML_SCALAR)) < 0)
        goto done;
    checks = cairn_yaml_map_get(root, "checks");
    if (!checks) {
        error = cairn_yaml_error(doc, root, "missing 'checks'");
        goto done;
    }
    if (cairn_yaml_is_null(checks) || (checks->type == CAIRN_YAML_SEQ && checks->count == 0)) {
        error = cairn_yaml_error(doc, checks, "empty check list");
        goto done;
    }
    if ((error = cairn_yaml_expect(checks, CAIRN_YAML_SEQ)) < 0)
        goto done;

    p = calloc(1, sizeof(*p));
    if (!p || !(p->name = strdup(name ? name : "<policy>")) ||
        !(p->checks = calloc(checks->count, sizeof(*p->checks)))) {
        error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < checks->count; i++) {
        const struct cairn_yaml_node *entry = checks->items[i];
        struct cairn_check *c = &p->checks[i];
        const struct cairn_check_kind *kind = NULL;
        if ((error = cairn_yaml_expect(entry, CAIRN_YAML_MAP)) < 0 ||
            (error = find_kind(&kind, entry)) < 0 ||
            (error = cairn_yaml_check_keys(entry, kind->keys)) < 0)
            goto done;
        c->line = entry->line;
        c->col = entry->col;
        if ((error = kind->parse(c, entry)) < 0)
            goto done;
        /* Only now does release() have something to free. */
        c->kind = kind;
        p->count++;
    }
    *out = p;
    p = NULL;

done:
    cairn_policy_free(p);
    cairn_yaml_doc_free(doc);
    return error;
}

int cairn_policy_load_file(struct cairn_policy **out, const char *path)
{
    struct cairn_buf buf = CAIRN_BUF_INIT;
    int error;

    *out = NULL;
    if ((error = cairn_fs_read_file(&buf, path, POLICY_MAX_BYTES)) >= 0)
        error = cairn_policy_parse(out, path, buf.ptr, buf.len);
    cairn_buf_release(&buf);
    return error;
}

size_t cairn_policy_count(const struct cairn_policy *p)
{
    return p ? p->count : 0;
}

int cairn_policy_to_json(char **out, const struct cairn_policy *p)
{
    json_t *root = json_object(), *list = json_array();
    int error = 0;

    *out = NULL;
    if (!root || !list || json_object_set_new(root, "format", json_integer(POLICY_VERSION)) < 0) {
        error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < p->count; i++) {
        json_t *c = p->checks[i].kind->to_json(&p->checks[i]);
        if (!c || json_object_set_new(c, "kind", json_string(p->checks[i].kind->key)) < 0 ||
            json_array_append_new(list, c) < 0) {
            json_decref(c);
            error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
            goto done;
        }
    }
    if (json_object_set(root, "checks", list) < 0 ||
        !(*out = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(17))))
        error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
done:
    json_decref(list);
    json_decref(root);
    return error;
}

int cairn_policy_digest(cairn_oid *out, const struct cairn_policy *p)
{
    char *json = NULL;
    int error;
    if ((error = cairn_policy_to_json(&json, p)) < 0)
        return error;
    cairn_hash(out, json, strlen(json));
    free(json);
    return 0;
}
