/*
 * Flat sets of typed values (include/cairn/values.h): params and metrics of
 * versions, the JSON object an eval command prints on stdout, and the
 * --metrics/--params files of `commit` (JSON or YAML of the same shape).
 *
 * Both inputs come from outside (a user's script, a user's file), so the
 * reader is strict: a size cap before parsing, one level only, no null, no
 * duplicate keys (jansson's JSON_REJECT_DUPLICATES; the YAML reader rejects
 * them itself), names from a small alphabet, finite numbers only. A failed
 * parse leaves the output set empty so a caller can never record half of a
 * bad file.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "cairn/common.h"
#include "cairn/values.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/values.h"
#include "util/yaml.h"

void cairn_values_init(struct cairn_values *m)
{
    memset(m, 0, sizeof(*m));
}

static void metric_release(struct cairn_value *e)
{
    free(e->name);
    free(e->string);
}

void cairn_values_release(struct cairn_values *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->count; i++)
        metric_release(&m->items[i]);
    free(m->items);
    memset(m, 0, sizeof(*m));
}

int cairn_value_name_valid(const char *name)
{
    size_t i;
    for (i = 0; name[i]; i++) {
        char c = name[i];
        if (i >= CAIRN_VALUE_NAME_MAX)
            return 0;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == ':' || c == '-'))
            return 0;
    }
    return i > 0;
}

const struct cairn_value *cairn_values_get(const struct cairn_values *m, const char *name)
{
    for (size_t i = 0; i < m->count; i++)
        if (strcmp(m->items[i].name, name) == 0)
            return &m->items[i];
    return NULL;
}

/* Find or append the slot for `name`; a replaced slot is emptied first. */
static int slot(struct cairn_value **out, struct cairn_values *m, const char *name)
{
    struct cairn_value *e = (struct cairn_value *)cairn_values_get(m, name);
    char *copy;

    if (!cairn_value_name_valid(name))
        return cairn_error_set(
            CAIRN_EINVALID, "invalid metric name '%.140s' (allowed: [A-Za-z0-9_.:-]{1,128})", name);
    if (e) {
        free(e->string);
        e->string = NULL;
        *out = e;
        return 0;
    }
    if (m->count >= CAIRN_VALUES_MAX_COUNT)
        return cairn_error_set(CAIRN_EINVALID, "more than %d metrics", CAIRN_VALUES_MAX_COUNT);
    if (CAIRN_ARRAY_GROW(m->items, m->cap, m->count) < 0)
        return CAIRN_ENOMEM;
    if (!(copy = strdup(name)))
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    e = &m->items[m->count++];
    memset(e, 0, sizeof(*e));
    e->name = copy;
    *out = e;
    return 0;
}

int cairn_values_set_number(struct cairn_values *m, const char *name, double v)
{
    struct cairn_value *e = NULL;
    int error;
    if (!isfinite(v))
        return cairn_error_set(CAIRN_EINVALID, "metric '%s' is not a finite number", name);
    if ((error = slot(&e, m, name)) < 0)
        return error;
    e->type = CAIRN_VALUE_NUMBER;
    e->number = v;
    return 0;
}

int cairn_values_set_string(struct cairn_values *m, const char *name, const char *v)
{
    struct cairn_value *e = NULL;
    char *copy;
    int error;
    if (strlen(v) > CAIRN_VALUE_STRING_MAX)
        return cairn_error_set(CAIRN_EINVALID, "value of '%.140s' is longer than %d bytes", name,
                               CAIRN_VALUE_STRING_MAX);
    if (!(copy = strdup(v)))
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    if ((error = slot(&e, m, name)) < 0) {
        free(copy);
        return error;
    }
    e->type = CAIRN_VALUE_STRING;
    e->string = copy;
    return 0;
}

int cairn_values_set_bool(struct cairn_values *m, const char *name, bool v)
{
    struct cairn_value *e = NULL;
    int error;
    if ((error = slot(&e, m, name)) < 0)
        return error;
    e->type = CAIRN_VALUE_BOOL;
    e->boolean = v;
    return 0;
}

int cairn_values_set(struct cairn_values *m, const struct cairn_value *v)
{
    switch (v->type) {
    case CAIRN_VALUE_NUMBER:
        return cairn_values_set_number(m, v->name, v->number);
    case CAIRN_VALUE_STRING:
        return cairn_values_set_string(m, v->name, v->string ? v->string : "");
    default:
        return cairn_values_set_bool(m, v->name, v->boolean);
    }
}

const char *cairn_value_format(const struct cairn_value *v, char *buf, size_t cap)
{
    switch (v->type) {
    case CAIRN_VALUE_NUMBER:
        snprintf(buf, cap, "%.6g", v->number);
        break;
    case CAIRN_VALUE_BOOL:
        snprintf(buf, cap, "%s", v->boolean ? "true" : "false");
        break;
    default:
        snprintf(buf, cap, "%s", v->string ? v->string : "");
    }
    return buf;
}

static const char *json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_NULL:
        return "null";
    default:
        return "not a number, string or boolean";
    }
}

int cairn_values_parse_json(struct cairn_values *out, const char *source, const void *data,
                            size_t len)
{
    json_error_t jerr;
    json_t *root = NULL, *v;
    const char *key;
    size_t before = out->count;
    int error = 0;

    if (len > CAIRN_VALUES_MAX_BYTES) {
        error = cairn_error_set(CAIRN_EINVALID, "%s: larger than %zu bytes", source,
                                CAIRN_VALUES_MAX_BYTES);
        goto done;
    }
    /* Without JSON_DECODE_ANY jansson insists on an object or array at the top. */
    root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        if (jerr.line > 0)
            error = cairn_error_set(CAIRN_EINVALID, "%s:%d:%d: %s", source, jerr.line, jerr.column,
                                    jerr.text);
        else
            error = cairn_error_set(CAIRN_EINVALID, "%s: %s", source, jerr.text);
        goto done;
    }
    if (!json_is_object(root)) {
        error = cairn_error_set(CAIRN_EINVALID, "%s: expected a JSON object of metrics, found %s",
                                source, json_type_name(root));
        goto done;
    }
    json_object_foreach(root, key, v)
    {
        if (!cairn_value_name_valid(key)) {
            error = cairn_error_set(
                CAIRN_EINVALID,
                "%s: invalid metric name '%.140s' (allowed: [A-Za-z0-9_.:-]{1,128})", source, key);
            goto done;
        }
        if (cairn_values_get(out, key)) {
            error = cairn_error_set(CAIRN_EINVALID, "%s: duplicate metric '%s'", source, key);
            goto done;
        }
        if (!json_is_number(v) && !json_is_boolean(v) && !json_is_string(v)) {
            error = cairn_error_set(CAIRN_EINVALID,
                                    "%s: metric '%s' is %s; only numbers, strings and booleans "
                                    "are allowed",
                                    source, key, json_type_name(v));
            goto done;
        }
        if (json_is_integer(v))
            error = cairn_values_set_number(out, key, (double)json_integer_value(v));
        else if (json_is_real(v))
            error = cairn_values_set_number(out, key, json_real_value(v));
        else if (json_is_boolean(v))
            error = cairn_values_set_bool(out, key, json_is_true(v));
        else
            error = cairn_values_set_string(out, key, json_string_value(v));
        if (error < 0) {
            cairn_error_prefix("%s", source);
            goto done;
        }
    }

done:
    json_decref(root);
    if (error < 0) {
        for (size_t i = before; i < out->count; i++)
            metric_release(&out->items[i]);
        out->count = before;
    }
    return error;
}

/* A plain scalar strtod would read whole but we refuse: inf, nan, 0x10, 1e999. */
static bool looks_numeric(const char *s)
{
    char *end;
    if (*s == '\0')
        return false;
    strtod(s, &end);
    return *end == '\0';
}

int cairn_values_parse_yaml(struct cairn_values *out, const char *source, const void *data,
                            size_t len)
{
    struct cairn_yaml_limits lim = { .max_bytes = CAIRN_VALUES_MAX_BYTES,
                                     .max_nodes = 2 * CAIRN_VALUES_MAX_COUNT + 2,
                                     .max_depth = 4 };
    struct cairn_yaml_doc *doc = NULL;
    const struct cairn_yaml_node *root;
    size_t before = out->count;
    int error;

    if ((error = cairn_yaml_parse(&doc, source, data, len, &lim)) < 0)
        goto done;
    root = cairn_yaml_root(doc);
    if (!root)
        goto done;
    if ((error = cairn_yaml_expect(root, CAIRN_YAML_MAP)) < 0)
        goto done;
    for (size_t i = 0; i < root->count && error == 0; i++) {
        const struct cairn_yaml_node *k = root->keys[i], *v = root->items[i];
        double d;
        if (strlen(k->str) != k->len || !cairn_value_name_valid(k->str)) {
            error = cairn_yaml_error(
                doc, k, "invalid metric name '%.140s' (allowed: [A-Za-z0-9_.:-]{1,128})", k->str);
        } else if (v->type != CAIRN_YAML_SCALAR) {
            error = cairn_yaml_error(doc, v,
                                     "metric '%s' is a %s; only numbers, strings and booleans "
                                     "are allowed",
                                     k->str, cairn_yaml_type_name(v->type));
        } else if (cairn_yaml_is_null(v)) {
            error = cairn_yaml_error(doc, v, "metric '%s' has no value", k->str);
        } else if (strlen(v->str) != v->len) {
            error = cairn_yaml_error(doc, v, "value of '%s' contains a NUL byte", k->str);
        } else if (!v->quoted &&
                   (looks_numeric(v->str) || strcasecmp(v->str, ".nan") == 0 ||
                    strcasecmp(v->str, ".inf") == 0 || strcasecmp(v->str, "-.inf") == 0 ||
                    strcasecmp(v->str, "+.inf") == 0) &&
                   cairn_parse_double(&d, v->str) < 0) {
            error = cairn_yaml_error(doc, v,
                                     "metric '%s' is not a finite decimal number (quote "
                                     "it to keep it as text)",
                                     k->str);
        } else {
            if (v->quoted)
                error = cairn_values_set_string(out, k->str, v->str);
            else if (!strcmp(v->str, "true") || !strcmp(v->str, "True") || !strcmp(v->str, "TRUE"))
                error = cairn_values_set_bool(out, k->str, true);
            else if (!strcmp(v->str, "false") || !strcmp(v->str, "False") ||
                     !strcmp(v->str, "FALSE"))
                error = cairn_values_set_bool(out, k->str, false);
            else if (cairn_parse_double(&d, v->str) == 0)
                error = cairn_values_set_number(out, k->str, d);
            else
                error = cairn_values_set_string(out, k->str, v->str);
            if (error < 0) {
                char msg[512];
                snprintf(msg, sizeof(msg), "%s", cairn_error_last());
                error = cairn_yaml_error(doc, v, "%s", msg);
            }
        }
    }

done:
    cairn_yaml_doc_free(doc);
    if (error < 0) {
        for (size_t i = before; i < out->count; i++)
            metric_release(&out->items[i]);
        out->count = before;
    }
    return error;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

int cairn_values_load_file(struct cairn_values *out, const char *path)
{
    struct cairn_buf buf = CAIRN_BUF_INIT;
    int error;

    if ((error = cairn_fs_read_file(&buf, path, CAIRN_VALUES_MAX_BYTES)) < 0)
        goto done;
    if (ends_with(path, ".yaml") || ends_with(path, ".yml"))
        error = cairn_values_parse_yaml(out, path, buf.ptr, buf.len);
    else
        error = cairn_values_parse_json(out, path, buf.ptr, buf.len);
done:
    cairn_buf_release(&buf);
    return error;
}

json_t *cairn__value_json(const struct cairn_value *v)
{
    switch (v->type) {
    case CAIRN_VALUE_NUMBER:
        return json_real(v->number);
    case CAIRN_VALUE_STRING:
        return json_string(v->string ? v->string : "");
    default:
        return json_boolean(v->boolean);
    }
}

json_t *cairn__values_json(const struct cairn_values *set)
{
    json_t *obj = json_object();

    for (size_t i = 0; obj && set && i < set->count; i++) {
        json_t *v = cairn__value_json(&set->items[i]);
        if (!v || json_object_set_new(obj, set->items[i].name, v) < 0) {
            json_decref(obj);
            obj = NULL;
        }
    }
    return obj;
}

int cairn_values_to_json(char **out, const struct cairn_values *m)
{
    json_t *obj = cairn__values_json(m);
    int error = 0;

    *out = NULL;
    if (!obj)
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    if (!(*out = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17))))
        error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
    json_decref(obj);
    return error;
}
