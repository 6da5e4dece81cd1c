/*
 * YAML reader: libyaml events into a bounded node tree; see yaml.h.
 *
 * Every node is also recorded in one flat array owned by the document, so
 * freeing never recurses and an error half-way through a parse leaks
 * nothing. Building is driven by an explicit stack of open collections whose
 * height is the depth limit, so hostile nesting costs no C stack either.
 * Duplicate keys are found by a linear scan of the mapping; the node limit
 * keeps that quadratic cost small (10000 nodes: at most ~12M comparisons).
 */
#include <ctype.h>
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <yaml.h>

#include "cairn/common.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/yaml.h"

#define DEFAULT_MAX_DEPTH 32
#define DEFAULT_MAX_NODES 10000
#define DEFAULT_MAX_BYTES ((size_t)1 << 20)

struct cairn_yaml_doc {
    char *name;
    struct cairn_yaml_node *root;
    struct cairn_yaml_node **all; /* every node, for freeing */
    size_t nall;
    size_t capall;
};

struct frame {
    struct cairn_yaml_node *node;
    struct cairn_yaml_node *key; /* mapping: key waiting for its value */
};

struct builder {
    struct cairn_yaml_doc *doc;
    struct frame *stack;
    size_t depth;
    size_t max_depth;
    size_t max_nodes;
    int ndocs;
};

int cairn_yaml_error(const struct cairn_yaml_doc *doc, const struct cairn_yaml_node *node,
                     const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    const char *name = doc && doc->name ? doc->name : "<yaml>";

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (node)
        return cairn_error_set(CAIRN_EINVALID, "%s:%d:%d: %s", name, node->line, node->col, msg);
    return cairn_error_set(CAIRN_EINVALID, "%s: %s", name, msg);
}

static int error_at(const struct cairn_yaml_doc *doc, yaml_mark_t mark, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int error_at(const struct cairn_yaml_doc *doc, yaml_mark_t mark, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return cairn_error_set(CAIRN_EINVALID, "%s:%zu:%zu: %s", doc->name, mark.line + 1,
                           mark.column + 1, msg);
}

const char *cairn_yaml_type_name(enum cairn_yaml_type t)
{
    switch (t) {
    case CAIRN_YAML_SCALAR:
        return "scalar";
    case CAIRN_YAML_SEQ:
        return "sequence";
    case CAIRN_YAML_MAP:
        return "mapping";
    }
    return "node";
}

static int new_node(struct cairn_yaml_node **out, struct builder *b, enum cairn_yaml_type type,
                    yaml_mark_t mark)
{
    struct cairn_yaml_doc *doc = b->doc;
    struct cairn_yaml_node *n;

    if (doc->nall >= b->max_nodes)
        return error_at(doc, mark, "too many nodes (limit %zu)", b->max_nodes);
    if (doc->nall == doc->capall) {
        size_t cap = doc->capall ? doc->capall * 2 : 16;
        struct cairn_yaml_node **all = realloc(doc->all, cap * sizeof(*all));
        if (!all)
            return cairn_error_set(CAIRN_ENOMEM, "out of memory");
        doc->all = all;
        doc->capall = cap;
    }
    n = calloc(1, sizeof(*n));
    if (!n)
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    doc->all[doc->nall++] = n;
    n->type = type;
    n->doc = doc;
    /* libyaml marks are 0-based and bounded by the input size (≤ max_bytes). */
    n->line = (int)mark.line + 1;
    n->col = (int)mark.column + 1;
    *out = n;
    return 0;
}

static void free_node(struct cairn_yaml_node *n)
{
    free(n->str);
    free(n->items);
    free(n->keys);
    free(n);
}

void cairn_yaml_doc_free(struct cairn_yaml_doc *doc)
{
    if (!doc)
        return;
    for (size_t i = 0; i < doc->nall; i++)
        free_node(doc->all[i]);
    free(doc->all);
    free(doc->name);
    free(doc);
}

const struct cairn_yaml_node *cairn_yaml_root(const struct cairn_yaml_doc *doc)
{
    return doc ? doc->root : NULL;
}

const char *cairn_yaml_name(const struct cairn_yaml_doc *doc)
{
    return doc ? doc->name : NULL;
}

static int append(struct cairn_yaml_node *parent, struct cairn_yaml_node *key,
                  struct cairn_yaml_node *child)
{
    if (parent->count == parent->cap) {
        size_t cap = parent->cap ? parent->cap * 2 : 4;
        struct cairn_yaml_node **items = realloc(parent->items, cap * sizeof(*items));
        if (!items)
            return cairn_error_set(CAIRN_ENOMEM, "out of memory");
        parent->items = items;
        if (parent->type == CAIRN_YAML_MAP) {
            struct cairn_yaml_node **keys = realloc(parent->keys, cap * sizeof(*keys));
            if (!keys)
                return cairn_error_set(CAIRN_ENOMEM, "out of memory");
            parent->keys = keys;
        }
        parent->cap = cap;
    }
    if (parent->type == CAIRN_YAML_MAP)
        parent->keys[parent->count] = key;
    parent->items[parent->count++] = child;
    return 0;
}

/* Attach a finished (or just opened) node to the innermost open collection. */
static int attach(struct builder *b, struct cairn_yaml_node *n)
{
    struct frame *f;

    if (b->depth == 0) {
        b->doc->root = n;
        return 0;
    }
    f = &b->stack[b->depth - 1];
    if (f->node->type == CAIRN_YAML_SEQ)
        return append(f->node, NULL, n);
    if (!f->key) {
        if (n->type != CAIRN_YAML_SCALAR)
            return cairn_yaml_error(b->doc, n, "mapping keys must be scalars, found a %s",
                                    cairn_yaml_type_name(n->type));
        for (size_t i = 0; i < f->node->count; i++) {
            const struct cairn_yaml_node *k = f->node->keys[i];
            if (k->len == n->len && memcmp(k->str, n->str, n->len) == 0)
                return cairn_yaml_error(b->doc, n, "duplicate key '%.100s' (first at line %d)",
                                        n->str, k->line);
        }
        f->key = n;
        return 0;
    }
    {
        int error = append(f->node, f->key, n);
        f->key = NULL;
        return error;
    }
}

static int open_collection(struct builder *b, enum cairn_yaml_type type, yaml_mark_t mark)
{
    struct cairn_yaml_node *n;
    int error;

    if (b->depth >= b->max_depth)
        return error_at(b->doc, mark, "nesting deeper than %zu levels", b->max_depth);
    if ((error = new_node(&n, b, type, mark)) < 0 || (error = attach(b, n)) < 0)
        return error;
    b->stack[b->depth].node = n;
    b->stack[b->depth].key = NULL;
    b->depth++;
    return 0;
}

static int on_scalar(struct builder *b, const yaml_event_t *ev)
{
    struct cairn_yaml_node *n;
    int error;
    size_t len = ev->data.scalar.length;
    const char *tag = (const char *)ev->data.scalar.tag;

    if ((error = new_node(&n, b, CAIRN_YAML_SCALAR, ev->start_mark)) < 0)
        return error;
    n->str = malloc(len + 1);
    if (!n->str)
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    memcpy(n->str, ev->data.scalar.value, len);
    n->str[len] = '\0';
    n->len = len;
    /* An explicit !!str tag makes a plain scalar a string, as quoting does. */
    n->quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE ||
                (tag && strcmp(tag, "tag:yaml.org,2002:str") == 0);
    return attach(b, n);
}

static int on_event(struct builder *b, const yaml_event_t *ev)
{
    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (++b->ndocs > 1)
            return error_at(b->doc, ev->start_mark, "more than one document");
        return 0;
    case YAML_ALIAS_EVENT:
        return error_at(b->doc, ev->start_mark, "aliases are not supported");
    case YAML_SCALAR_EVENT:
        return on_scalar(b, ev);
    case YAML_SEQUENCE_START_EVENT:
        return open_collection(b, CAIRN_YAML_SEQ, ev->start_mark);
    case YAML_MAPPING_START_EVENT:
        return open_collection(b, CAIRN_YAML_MAP, ev->start_mark);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        /* libyaml guarantees balanced events; a mismatch would be its bug. */
        if (b->depth == 0)
            return error_at(b->doc, ev->start_mark, "unbalanced collection end");
        b->depth--;
        return 0;
    default:
        return 0;
    }
}

int cairn_yaml_parse(struct cairn_yaml_doc **out, const char *name, const void *data, size_t len,
                     const struct cairn_yaml_limits *limits)
{
    struct builder b = { 0 };
    struct cairn_yaml_doc *doc = NULL;
    yaml_parser_t parser;
    bool parser_ready = false;
    size_t max_bytes = limits && limits->max_bytes ? limits->max_bytes : DEFAULT_MAX_BYTES;
    int error = 0;

    *out = NULL;
    if (!name)
        name = "<yaml>";
    if (len > max_bytes) {
        error = cairn_error_set(CAIRN_EINVALID, "%s: larger than %zu bytes", name, max_bytes);
        goto done;
    }
    doc = calloc(1, sizeof(*doc));
    if (!doc || !(doc->name = strdup(name))) {
        error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
        goto done;
    }
    b.doc = doc;
    b.max_depth = limits && limits->max_depth ? limits->max_depth : DEFAULT_MAX_DEPTH;
    b.max_nodes = limits && limits->max_nodes ? limits->max_nodes : DEFAULT_MAX_NODES;
    b.stack = calloc(b.max_depth, sizeof(*b.stack));
    if (!b.stack || !yaml_parser_initialize(&parser)) {
        error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
        goto done;
    }
    parser_ready = true;
    yaml_parser_set_input_string(&parser, data, len);
    yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING);
    for (;;) {
        yaml_event_t ev;
        bool end;
        if (!yaml_parser_parse(&parser, &ev)) {
            const char *problem = parser.problem ? parser.problem : "invalid yaml";
            if (parser.context)
                error = error_at(doc, parser.problem_mark, "%s %s", problem, parser.context);
            else
                error = error_at(doc, parser.problem_mark, "%s", problem);
            if (parser.error == YAML_MEMORY_ERROR)
                error = cairn_error_set(CAIRN_ENOMEM, "%s: out of memory", name);
            goto done;
        }
        end = ev.type == YAML_STREAM_END_EVENT;
        error = on_event(&b, &ev);
        yaml_event_delete(&ev);
        if (error < 0 || end)
            break;
    }

done:
    if (parser_ready)
        yaml_parser_delete(&parser);
    free(b.stack);
    if (error < 0)
        cairn_yaml_doc_free(doc);
    else
        *out = doc;
    return error;
}

int cairn_yaml_load_file(struct cairn_yaml_doc **out, const char *path,
                         const struct cairn_yaml_limits *limits)
{
    struct cairn_buf buf = CAIRN_BUF_INIT;
    size_t max_bytes = limits && limits->max_bytes ? limits->max_bytes : DEFAULT_MAX_BYTES;
    int error;

    *out = NULL;
    if ((error = cairn_fs_read_file(&buf, path, max_bytes)) >= 0)
        error = cairn_yaml_parse(out, path, buf.ptr, buf.len, limits);
    cairn_buf_release(&buf);
    return error;
}

int cairn_yaml_expect(const struct cairn_yaml_node *node, enum cairn_yaml_type t)
{
    if (node->type == t)
        return 0;
    return cairn_yaml_error(node->doc, node, "expected a %s, found a %s", cairn_yaml_type_name(t),
                            cairn_yaml_type_name(node->type));
}

static ssize_t map_index(const struct cairn_yaml_node *map, const char *key)
{
    size_t klen = strlen(key);
    if (!map || map->type != CAIRN_YAML_MAP)
        return -1;
    for (size_t i = 0; i < map->count; i++)
        if (map->keys[i]->len == klen && memcmp(map->keys[i]->str, key, klen) == 0)
            return (ssize_t)i;
    return -1;
}

const struct cairn_yaml_node *cairn_yaml_map_get(const struct cairn_yaml_node *map, const char *key)
{
    ssize_t i = map_index(map, key);
    return i < 0 ? NULL : map->items[i];
}

const struct cairn_yaml_node *cairn_yaml_map_key(const struct cairn_yaml_node *map, const char *key)
{
    ssize_t i = map_index(map, key);
    return i < 0 ? NULL : map->keys[i];
}

int cairn_yaml_check_keys(const struct cairn_yaml_node *map, const char *const *allowed)
{
    int error;

    if ((error = cairn_yaml_expect(map, CAIRN_YAML_MAP)) < 0)
        return error;
    for (size_t i = 0; i < map->count; i++) {
        const struct cairn_yaml_node *k = map->keys[i];
        bool ok = false;
        struct cairn_buf list = CAIRN_BUF_INIT;
        for (size_t j = 0; allowed[j]; j++) {
            if (strlen(allowed[j]) == k->len && memcmp(allowed[j], k->str, k->len) == 0) {
                ok = true;
                break;
            }
        }
        if (ok)
            continue;
        cairn_buf_init(&list, 512);
        for (size_t j = 0; allowed[j]; j++)
            cairn_buf_printf(&list, "%s%s", j ? ", " : "", allowed[j]);
        error = cairn_yaml_error(map->doc, k, "unknown key '%.100s' (expected one of: %s)", k->str,
                                 list.ptr ? list.ptr : "");
        cairn_buf_release(&list);
        return error;
    }
    return 0;
}

bool cairn_yaml_is_null(const struct cairn_yaml_node *node)
{
    if (!node || node->type != CAIRN_YAML_SCALAR || node->quoted)
        return false;
    return node->len == 0 || strcmp(node->str, "~") == 0 || strcmp(node->str, "null") == 0 ||
           strcmp(node->str, "Null") == 0 || strcmp(node->str, "NULL") == 0;
}

int cairn_yaml_str(const char **out, const struct cairn_yaml_node *node)
{
    int error;
    if ((error = cairn_yaml_expect(node, CAIRN_YAML_SCALAR)) < 0)
        return error;
    *out = node->str;
    return 0;
}

/* strtod in the C locale whatever the process locale is ("0.9", never "0,9"). */
static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static void c_locale_init(void)
{
    c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
}

/* Length of a YAML 1.2 core-schema decimal at s, or 0:
 * [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? */
static size_t number_span(const char *s, bool allow_sign)
{
    size_t i = 0, digits = 0;
    if (allow_sign && (s[i] == '-' || s[i] == '+'))
        i++;
    while (isdigit((unsigned char)s[i]))
        i++, digits++;
    if (s[i] == '.') {
        i++;
        while (isdigit((unsigned char)s[i]))
            i++, digits++;
    }
    if (digits == 0)
        return 0;
    if (s[i] == 'e' || s[i] == 'E') {
        size_t j = i + 1, ed = 0;
        if (s[j] == '-' || s[j] == '+')
            j++;
        while (isdigit((unsigned char)s[j]))
            j++, ed++;
        if (ed == 0)
            return 0;
        i = j;
    }
    return i;
}

int cairn_parse_double(double *out, const char *s)
{
    size_t n = number_span(s, true);
    double v;
    char *end;

    if (n == 0 || s[n] != '\0')
        return CAIRN_EINVALID;
    pthread_once(&c_locale_once, c_locale_init);
    errno = 0;
    v = c_locale ? strtod_l(s, &end, c_locale) : strtod(s, &end);
    if (end != s + n || !isfinite(v))
        return CAIRN_EINVALID;
    *out = v;
    return 0;
}

int cairn_yaml_double(double *out, const struct cairn_yaml_node *node)
{
    if (node->type != CAIRN_YAML_SCALAR || node->quoted || strlen(node->str) != node->len ||
        cairn_parse_double(out, node->str) < 0)
        return cairn_yaml_error(node->doc, node, "expected a number, found %s",
                                node->type == CAIRN_YAML_SCALAR
                                    ? (node->quoted ? "a quoted string" : "text")
                                    : cairn_yaml_type_name(node->type));
    return 0;
}

int cairn_yaml_int(long long *out, const struct cairn_yaml_node *node)
{
    const char *s = node->str;
    size_t i = 0;
    long long v;
    char *end;

    if (node->type != CAIRN_YAML_SCALAR || node->quoted)
        goto bad;
    if (s[i] == '-' || s[i] == '+')
        i++;
    if (!isdigit((unsigned char)s[i]))
        goto bad;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno == ERANGE)
        return cairn_yaml_error(node->doc, node, "integer '%.40s' out of range", s);
    if (*end != '\0' || (size_t)(end - s) != node->len)
        goto bad;
    *out = v;
    return 0;
bad:
    return cairn_yaml_error(node->doc, node, "expected an integer");
}

int cairn_yaml_bool(bool *out, const struct cairn_yaml_node *node)
{
    static const char *const yes[] = { "true", "yes", "on" }, *const no[] = { "false", "no",
                                                                              "off" };

    if (node->type == CAIRN_YAML_SCALAR && !node->quoted) {
        for (size_t i = 0; i < 3; i++) {
            if (strcasecmp(node->str, yes[i]) == 0) {
                *out = true;
                return 0;
            }
            if (strcasecmp(node->str, no[i]) == 0) {
                *out = false;
                return 0;
            }
        }
    }
    return cairn_yaml_error(node->doc, node, "expected true or false");
}

int cairn_parse_duration_ms(uint64_t *out, const char *s)
{
    static const struct {
        const char *unit;
        double ms;
    } units[] = { { "ms", 1 }, { "s", 1e3 }, { "m", 60e3 }, { "h", 3600e3 }, { "d", 86400e3 } };
    double total = 0;

    if (strcmp(s, "0") == 0) {
        *out = 0;
        return 0;
    }
    if (*s == '\0')
        return CAIRN_EINVALID;
    while (*s) {
        size_t n = number_span(s, false), best = 0, ulen = 0;
        char num[64];
        double v;
        if (n == 0 || n >= sizeof(num))
            return CAIRN_EINVALID;
        memcpy(num, s, n);
        num[n] = '\0';
        if (cairn_parse_double(&v, num) < 0)
            return CAIRN_EINVALID;
        s += n;
        /* Longest unit first, so "ms" is not read as "m" followed by junk. */
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
            size_t l = strlen(units[i].unit);
            if (strncmp(s, units[i].unit, l) == 0 && l > ulen) {
                best = i;
                ulen = l;
            }
        }
        if (ulen == 0)
            return CAIRN_EINVALID;
        total += v * units[best].ms;
        s += ulen;
    }
    /* Beyond 2^53 ms (~285000 years) doubles stop being exact: reject. */
    if (!(total >= 0) || total > 9007199254740992.0)
        return CAIRN_EINVALID;
    *out = (uint64_t)(total + 0.5);
    return 0;
}

int cairn_yaml_duration_ms(uint64_t *out, const struct cairn_yaml_node *node)
{
    if (node->type != CAIRN_YAML_SCALAR || node->quoted || strlen(node->str) != node->len ||
        cairn_parse_duration_ms(out, node->str) < 0)
        return cairn_yaml_error(node->doc, node,
                                "expected a duration such as 500ms, 30s, 5m, 2h or 1d");
    return 0;
}
