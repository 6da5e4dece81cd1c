/*
 * Dataset schema parsing: YAML (through util/yaml.h, which gives every node
 * its line and column) into struct cairn_data_schema. The format:
 *
 *   columns:
 *     pixel_0: {type: float, range: [0, 16], max_null_rate: 0.0}
 *     label:   {type: category, values: [0, 1, 2], required: true}
 *     id:      {type: int, unique: true}
 *     name:    {type: string, regex: '^[a-z]+$'}
 *   rows: {min: 100, max: 1000000}
 *   label: {column: label, min_class_share: 0.05}
 *   nulls: ["", "NA"]
 *
 * Every mistake is reported with the file, line and column of the node at
 * fault, and a schema that parsed is internally consistent (a range only on
 * numbers, a label column that exists, regexes that compile), so validation
 * never has to re-check it. Also here: the value parsers that validation and
 * drift share, so both agree on what "a number" is.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "data/schema.h"
#include "util/fs.h"
#include "util/yaml.h"

#define SCHEMA_MAX_BYTES ((size_t)4 << 20)
#define SCHEMA_MAX_NODES 200000

static const char *const type_names[] = {
    [CAIRN_DATA_STRING] = "string",     [CAIRN_DATA_INT] = "int",
    [CAIRN_DATA_FLOAT] = "float",       [CAIRN_DATA_BOOL] = "bool",
    [CAIRN_DATA_CATEGORY] = "category",
};

const char *cairn_data_type_name(enum cairn_data_type t)
{
    if ((size_t)t < sizeof(type_names) / sizeof(type_names[0]))
        return type_names[t];
    return "unknown";
}

int cairn__parse_int(long long *out, const char *s, size_t len)
{
    size_t i = 0;
    bool neg = false;
    unsigned long long v = 0, lim;

    if (len > 0 && (s[0] == '-' || s[0] == '+')) {
        neg = s[0] == '-';
        i++;
    }
    if (i == len)
        return -1;
    lim = neg ? (unsigned long long)LLONG_MAX + 1 : (unsigned long long)LLONG_MAX;
    for (; i < len; i++) {
        unsigned d = (unsigned)(unsigned char)s[i] - '0';
        if (d > 9 || v > (lim - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = neg ? (long long)(0 - v) : (long long)v;
    return 0;
}

int cairn__parse_float(double *out, const char *s, size_t len)
{
    char tmp[64];
    const char *p = s;
    bool neg = false;

    if (len == 0)
        return -1;
    /* cairn_parse_double wants a C string; fields are NUL-terminated, but be safe. */
    if (s[len] != '\0') {
        if (len >= sizeof(tmp))
            return -1;
        memcpy(tmp, s, len);
        tmp[len] = '\0';
        s = tmp;
    }
    if (cairn_parse_double(out, s) == 0)
        return 0;
    /* What numeric tools write for the non-finite values. */
    p = s;
    if (*p == '-' || *p == '+')
        neg = *p++ == '-';
    if (strcasecmp(p, "nan") == 0) {
        *out = NAN;
        return 0;
    }
    if (strcasecmp(p, "inf") == 0 || strcasecmp(p, "infinity") == 0) {
        *out = neg ? -INFINITY : INFINITY;
        return 0;
    }
    return -1;
}

int cairn__parse_bool(bool *out, const char *s, size_t len)
{
    static const char *const yes[] = { "true", "t", "yes", "y", "1" };
    static const char *const no[] = { "false", "f", "no", "n", "0" };
    for (size_t i = 0; i < 5; i++) {
        if (strlen(yes[i]) == len && strncasecmp(s, yes[i], len) == 0) {
            *out = true;
            return 0;
        }
        if (strlen(no[i]) == len && strncasecmp(s, no[i], len) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

ssize_t cairn__schema_find(const struct cairn_data_schema *s, const char *name, size_t len)
{
    for (size_t i = 0; i < s->ncols; i++)
        if (strlen(s->cols[i].name) == len && memcmp(s->cols[i].name, name, len) == 0)
            return (ssize_t)i;
    return -1;
}

bool cairn__schema_is_null(const struct cairn_data_schema *s, const char *v, size_t len)
{
    for (size_t i = 0; i < s->nnulls; i++)
        if (strlen(s->nulls[i]) == len && memcmp(s->nulls[i], v, len) == 0)
            return true;
    return false;
}

static void column_release(struct cairn__column_rule *c)
{
    free(c->name);
    for (size_t i = 0; i < c->nvalues; i++)
        free(c->values[i]);
    free(c->values);
    free(c->numvalues);
    free(c->regex_src);
    if (c->has_regex)
        regfree(&c->regex);
}

void cairn_data_schema_free(struct cairn_data_schema *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->ncols; i++)
        column_release(&s->cols[i]);
    free(s->cols);
    for (size_t i = 0; i < s->nnulls; i++)
        free(s->nulls[i]);
    free(s->nulls);
    free(s->name);
    free(s);
}

static int oom(void)
{
    return cairn_error_set(CAIRN_ENOMEM, "out of memory");
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* A sequence of scalars into a string array. */
static int parse_strings(char ***out, size_t *nout, const struct cairn_yaml_node *node)
{
    int error = 0;
    char **v = NULL;
    size_t n = 0;

    if ((error = cairn_yaml_expect(node, CAIRN_YAML_SEQ)) < 0)
        return error;
    if (node->count && !(v = calloc(node->count, sizeof(*v))))
        return oom();
    for (; n < node->count; n++) {
        const struct cairn_yaml_node *it = node->items[n];
        if ((error = cairn_yaml_expect(it, CAIRN_YAML_SCALAR)) < 0)
            goto done;
        if (strlen(it->str) != it->len) {
            error = cairn_yaml_error(it->doc, it, "value contains a NUL byte");
            goto done;
        }
        if (!(v[n] = strdup(it->str))) {
            error = oom();
            goto done;
        }
    }
done:
    if (error < 0) {
        for (size_t i = 0; i < n; i++)
            free(v[i]);
        free(v);
        return error;
    }
    *out = v;
    *nout = n;
    return 0;
}

static int parse_type(enum cairn_data_type *out, const struct cairn_yaml_node *node)
{
    const char *s;
    int error;
    if ((error = cairn_yaml_str(&s, node)) < 0)
        return error;
    for (size_t i = 0; i < sizeof(type_names) / sizeof(type_names[0]); i++) {
        if (strcmp(s, type_names[i]) == 0) {
            *out = (enum cairn_data_type)i;
            return 0;
        }
    }
    return cairn_yaml_error(
        node->doc, node, "unknown type '%.60s' (expected int, float, string, bool or category)", s);
}

static int parse_rate(double *out, const struct cairn_yaml_node *node)
{
    int error;
    if ((error = cairn_yaml_double(out, node)) < 0)
        return error;
    if (*out < 0 || *out > 1)
        return cairn_yaml_error(node->doc, node, "expected a rate between 0 and 1");
    return 0;
}

/*
 * A schema is outside input, and glibc's regcomp() copies the parse tree of
 * every repetition: '(a+)+' stacked a few dozen times, or 'a{1000}{1000}',
 * takes gigabytes before matching a single row (found by fuzz_schema).
 * Regexes are refused past these bounds, which no column pattern needs.
 */
#define REGEX_MAX_LEN         1024
#define REGEX_MAX_QUANT       64
#define REGEX_MAX_COUNT       100
#define REGEX_MAX_GROUP_QUANT 3
#define REGEX_MAX_GROUP_COUNT 10

static bool regex_bounded(const char *re)
{
    int quants = 0, group_quants = 0, after_quant = 0;

    if (strlen(re) > REGEX_MAX_LEN)
        return false;
    for (const char *p = re; *p; p++) {
        if (*p == '\\' && p[1]) {
            p++;
            after_quant = 0;
            continue;
        }
        if (*p == '[') { /* a bracket expression: ']' first is literal, [:class:] nests */
            p++;
            if (*p == '^')
                p++;
            if (*p == ']')
                p++;
            while (*p && *p != ']') {
                if (p[0] == '[' && (p[1] == ':' || p[1] == '.' || p[1] == '=')) {
                    const char *end = strstr(p + 2, p[1] == ':' ? ":]" : p[1] == '.' ? ".]" : "=]");
                    if (!end)
                        return true; /* unterminated: regcomp reports it */
                    p = end + 1;
                }
                p++;
            }
            if (!*p)
                return true;
            after_quant = 0;
            continue;
        }
        if (*p == '*' || *p == '+' || *p == '?' || *p == '{') {
            /* A repeated group multiplies everything inside it: fewer, smaller. */
            int group = p > re && p[-1] == ')';
            if (after_quant || ++quants > REGEX_MAX_QUANT ||
                (group && ++group_quants > REGEX_MAX_GROUP_QUANT))
                return false;
            if (*p == '{') {
                for (p++; *p && *p != '}'; p++) {
                    if (*p >= '0' && *p <= '9') {
                        /* strtol saturates where atoi would overflow on a long count */
                        char *end;
                        long count = strtol(p, &end, 10);
                        if (count > (group ? REGEX_MAX_GROUP_COUNT : REGEX_MAX_COUNT))
                            return false;
                        p = end - 1;
                    }
                }
                if (!*p)
                    return true;
            }
            after_quant = 1;
            continue;
        }
        after_quant = 0;
    }
    return true;
}

static int parse_column(struct cairn__column_rule *c, const struct cairn_yaml_node *key,
                        const struct cairn_yaml_node *spec)
{
    static const char *const keys[] = { "type",          "required", "range", "values",
                                        "max_null_rate", "unique",   "regex", NULL };
    const struct cairn_yaml_node *n;
    int error;

    c->line = key->line;
    c->col = key->col;
    if (strlen(key->str) != key->len || key->len == 0)
        return cairn_yaml_error(key->doc, key, "column names must be non-empty text");
    if (!(c->name = strdup(key->str)))
        return oom();
    if ((error = cairn_yaml_expect(spec, CAIRN_YAML_MAP)) < 0 ||
        (error = cairn_yaml_check_keys(spec, keys)) < 0)
        return error;

    if (!(n = cairn_yaml_map_get(spec, "type")))
        return cairn_yaml_error(spec->doc, key, "column '%.100s' needs a type", c->name);
    if ((error = parse_type(&c->type, n)) < 0)
        return error;
    if ((n = cairn_yaml_map_get(spec, "required")) &&
        (error = cairn_yaml_bool(&c->required, n)) < 0)
        return error;
    if ((n = cairn_yaml_map_get(spec, "unique")) && (error = cairn_yaml_bool(&c->unique, n)) < 0)
        return error;
    if ((n = cairn_yaml_map_get(spec, "max_null_rate"))) {
        if ((error = parse_rate(&c->max_null_rate, n)) < 0)
            return error;
        c->has_null_rate = true;
    }
    if ((n = cairn_yaml_map_get(spec, "range"))) {
        if (c->type != CAIRN_DATA_INT && c->type != CAIRN_DATA_FLOAT)
            return cairn_yaml_error(n->doc, n, "range needs an int or float column, not %s",
                                    type_names[c->type]);
        if ((error = cairn_yaml_expect(n, CAIRN_YAML_SEQ)) < 0)
            return error;
        if (n->count != 2)
            return cairn_yaml_error(n->doc, n, "range is [min, max], found %zu items", n->count);
        if ((error = cairn_yaml_double(&c->min, n->items[0])) < 0 ||
            (error = cairn_yaml_double(&c->max, n->items[1])) < 0)
            return error;
        if (c->min > c->max)
            return cairn_yaml_error(n->doc, n, "empty range: min is above max");
        c->has_range = true;
    }
    if ((n = cairn_yaml_map_get(spec, "values"))) {
        if (c->type == CAIRN_DATA_BOOL)
            return cairn_yaml_error(n->doc, n, "values does not apply to a bool column");
        if ((error = parse_strings(&c->values, &c->nvalues, n)) < 0)
            return error;
        if (c->nvalues == 0)
            return cairn_yaml_error(n->doc, n, "values is empty: no value could pass");
        if (c->type == CAIRN_DATA_INT || c->type == CAIRN_DATA_FLOAT) {
            if (!(c->numvalues = malloc(c->nvalues * sizeof(double))))
                return oom();
            for (size_t i = 0; i < c->nvalues; i++)
                if ((error = cairn_yaml_double(&c->numvalues[i], n->items[i])) < 0)
                    return error;
            qsort(c->numvalues, c->nvalues, sizeof(double), cmp_double);
        }
    }
    if ((n = cairn_yaml_map_get(spec, "regex"))) {
        const char *src;
        int rc;
        if (c->type != CAIRN_DATA_STRING && c->type != CAIRN_DATA_CATEGORY)
            return cairn_yaml_error(n->doc, n, "regex needs a string or category column, not %s",
                                    type_names[c->type]);
        if ((error = cairn_yaml_str(&src, n)) < 0)
            return error;
        if (!regex_bounded(src))
            return cairn_yaml_error(n->doc, n,
                                    "regex '%.100s' is too complex: at most %d bytes, %d"
                                    " repetitions (%d of groups), counts up to %d (%d for"
                                    " groups), no repetition of a repetition",
                                    src, REGEX_MAX_LEN, REGEX_MAX_QUANT, REGEX_MAX_GROUP_QUANT,
                                    REGEX_MAX_COUNT, REGEX_MAX_GROUP_COUNT);
        if (!(c->regex_src = strdup(src)))
            return oom();
        if ((rc = regcomp(&c->regex, src, REG_EXTENDED | REG_NOSUB)) != 0) {
            char msg[160];
            regerror(rc, &c->regex, msg, sizeof(msg));
            return cairn_yaml_error(n->doc, n, "bad regex '%.100s': %s", src, msg);
        }
        c->has_regex = true;
    }
    return 0;
}

static int parse_count(uint64_t *out, const struct cairn_yaml_node *node)
{
    long long v;
    int error;
    if ((error = cairn_yaml_int(&v, node)) < 0)
        return error;
    if (v < 0)
        return cairn_yaml_error(node->doc, node, "expected a count of at least 0");
    *out = (uint64_t)v;
    return 0;
}

static int parse_doc(struct cairn_data_schema *s, const struct cairn_yaml_doc *doc)
{
    static const char *const top_keys[] = { "columns", "rows", "label", "nulls", NULL };
    static const char *const rows_keys[] = { "min", "max", NULL };
    static const char *const label_keys[] = { "column", "min_class_share", NULL };
    const struct cairn_yaml_node *root = cairn_yaml_root(doc), *cols, *n, *m;
    int error;

    if (!root)
        return cairn_yaml_error(doc, NULL, "empty schema");
    if ((error = cairn_yaml_expect(root, CAIRN_YAML_MAP)) < 0 ||
        (error = cairn_yaml_check_keys(root, top_keys)) < 0)
        return error;
    if (!(cols = cairn_yaml_map_get(root, "columns")))
        return cairn_yaml_error(doc, root, "schema needs a 'columns' mapping");
    if ((error = cairn_yaml_expect(cols, CAIRN_YAML_MAP)) < 0)
        return error;
    if (cols->count == 0)
        return cairn_yaml_error(doc, cols, "'columns' is empty");
    if (!(s->cols = calloc(cols->count, sizeof(*s->cols))))
        return oom();
    for (size_t i = 0; i < cols->count; i++) {
        s->ncols = i + 1;
        if ((error = parse_column(&s->cols[i], cols->keys[i], cols->items[i])) < 0)
            return error;
    }

    if ((n = cairn_yaml_map_get(root, "rows"))) {
        if ((error = cairn_yaml_expect(n, CAIRN_YAML_MAP)) < 0 ||
            (error = cairn_yaml_check_keys(n, rows_keys)) < 0)
            return error;
        if ((m = cairn_yaml_map_get(n, "min"))) {
            if ((error = parse_count(&s->rows_min, m)) < 0)
                return error;
            s->has_rows_min = true;
        }
        if ((m = cairn_yaml_map_get(n, "max"))) {
            if ((error = parse_count(&s->rows_max, m)) < 0)
                return error;
            s->has_rows_max = true;
        }
        if (s->has_rows_min && s->has_rows_max && s->rows_min > s->rows_max)
            return cairn_yaml_error(doc, n, "rows: min is above max");
    }

    s->label = -1;
    if ((n = cairn_yaml_map_get(root, "label"))) {
        const char *name;
        if ((error = cairn_yaml_expect(n, CAIRN_YAML_MAP)) < 0 ||
            (error = cairn_yaml_check_keys(n, label_keys)) < 0)
            return error;
        if (!(m = cairn_yaml_map_get(n, "column")))
            return cairn_yaml_error(doc, n, "label needs a 'column'");
        if ((error = cairn_yaml_str(&name, m)) < 0)
            return error;
        if ((s->label = cairn__schema_find(s, name, strlen(name))) < 0)
            return cairn_yaml_error(doc, m, "label column '%.100s' is not in 'columns'", name);
        if ((m = cairn_yaml_map_get(n, "min_class_share"))) {
            if ((error = parse_rate(&s->min_class_share, m)) < 0)
                return error;
        }
    }

    if ((n = cairn_yaml_map_get(root, "nulls"))) {
        if ((error = parse_strings(&s->nulls, &s->nnulls, n)) < 0)
            return error;
    } else {
        if (!(s->nulls = calloc(1, sizeof(char *))) || !(s->nulls[0] = strdup("")))
            return oom();
        s->nnulls = 1;
    }
    return 0;
}

int cairn_data_schema_parse(struct cairn_data_schema **out, const char *name, const void *data,
                            size_t len)
{
    struct cairn_yaml_limits lim = { 0, SCHEMA_MAX_NODES, SCHEMA_MAX_BYTES };
    struct cairn_yaml_doc *doc = NULL;
    struct cairn_data_schema *s = NULL;
    int error;

    *out = NULL;
    if ((error = cairn_yaml_parse(&doc, name, data, len, &lim)) < 0)
        goto done;
    if (!(s = calloc(1, sizeof(*s))) || !(s->name = strdup(name))) {
        error = oom();
        goto done;
    }
    if ((error = parse_doc(s, doc)) < 0)
        goto done;
    *out = s;
    s = NULL;
done:
    cairn_data_schema_free(s);
    cairn_yaml_doc_free(doc);
    return error;
}

int cairn_data_schema_load(struct cairn_data_schema **out, const char *path)
{
    struct cairn_buf b = CAIRN_BUF_INIT;
    int error;

    *out = NULL;
    if ((error = cairn_fs_read_file(&b, path, SCHEMA_MAX_BYTES)) < 0)
        goto done;
    error = cairn_data_schema_parse(out, path, b.ptr ? b.ptr : "", b.len);
done:
    cairn_buf_release(&b);
    return error;
}

/* ---- shared helpers: hash, string map, file listing -------------------- */

static inline uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

uint64_t cairn__hash64(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ (len * 0xff51afd7ed558ccdULL);
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = mix64(h ^ w) + 0x9e3779b97f4a7c15ULL;
        p += 8;
        len -= 8;
    }
    if (len) {
        uint64_t w = 0;
        memcpy(&w, p, len);
        h = mix64(h ^ w ^ ((uint64_t)len << 56));
    }
    h = mix64(h);
    return h ? h : 1;
}

void cairn__strmap_init(struct cairn__strmap *m, size_t max_entries, size_t max_bytes)
{
    memset(m, 0, sizeof(*m));
    m->max_entries = max_entries ? max_entries : (size_t)1 << 20;
    if (m->max_entries > UINT32_MAX - 1)
        m->max_entries = UINT32_MAX - 1;
    cairn_buf_init(&m->keys, max_bytes ? max_bytes : (size_t)64 << 20);
}

void cairn__strmap_release(struct cairn__strmap *m)
{
    free(m->slots);
    free(m->entries);
    cairn_buf_release(&m->keys);
    memset(m, 0, sizeof(*m));
}

static size_t strmap_probe(const struct cairn__strmap *m, uint64_t h, const char *key, size_t len)
{
    size_t mask = m->nslots - 1, i = (size_t)h & mask;
    for (;;) {
        uint32_t s = m->slots[i];
        if (s == 0)
            return i;
        const struct cairn__strmap_entry *e = &m->entries[s - 1];
        if (e->hash == h && e->len == len && memcmp(m->keys.ptr + e->off, key, len) == 0)
            return i;
        i = (i + 1) & mask;
    }
}

ssize_t cairn__strmap_find(const struct cairn__strmap *m, const char *key, size_t len)
{
    if (m->n == 0)
        return -1;
    uint32_t s = m->slots[strmap_probe(m, cairn__hash64(key, len), key, len)];
    return s ? (ssize_t)s - 1 : -1;
}

int cairn__strmap_add(struct cairn__strmap *m, size_t *index_out, bool *inserted_out,
                      const char *key, size_t len)
{
    uint64_t h = cairn__hash64(key, len);
    size_t i;

    *inserted_out = false;
    if (m->n > 0) {
        i = strmap_probe(m, h, key, len);
        if (m->slots[i]) {
            *index_out = m->slots[i] - 1;
            return 0;
        }
    }
    if (m->n >= m->max_entries)
        return CAIRN_ENOMEM;
    if ((m->n + 1) * 2 > m->nslots) { /* keep the load at most 1/2 */
        size_t ns = m->nslots ? m->nslots * 2 : 16;
        uint32_t *slots = calloc(ns, sizeof(*slots));
        if (!slots)
            return CAIRN_ENOMEM;
        free(m->slots);
        m->slots = slots;
        m->nslots = ns;
        for (size_t k = 0; k < m->n; k++) {
            size_t j = (size_t)m->entries[k].hash & (ns - 1);
            while (slots[j])
                j = (j + 1) & (ns - 1);
            slots[j] = (uint32_t)k + 1;
        }
    }
    if (CAIRN_ARRAY_GROW(m->entries, m->cap, m->n) < 0)
        return CAIRN_ENOMEM;
    size_t off = m->keys.len;
    if (cairn_buf_put(&m->keys, key, len) < 0 || cairn_buf_putc(&m->keys, '\0') < 0) {
        m->keys.len = off;
        cairn_error_clear();
        return CAIRN_ENOMEM;
    }
    i = strmap_probe(m, h, key, len);
    m->entries[m->n] = (struct cairn__strmap_entry){ h, off, len, 0 };
    m->slots[i] = (uint32_t)m->n + 1;
    *index_out = m->n++;
    *inserted_out = true;
    return 0;
}

struct filelist {
    char **v;
    size_t n, cap;
};

#define MAX_FILES 1000000
#define MAX_DEPTH 64

static bool is_data_name(const char *name)
{
    size_t n = strlen(name);
    return n > 4 &&
           (strcasecmp(name + n - 4, ".csv") == 0 || strcasecmp(name + n - 4, ".tsv") == 0);
}

static int list_add(struct filelist *l, const char *path)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 16;
        char **v;
        if (nc > MAX_FILES)
            return cairn_error_set(CAIRN_ENOMEM, "more than %d dataset files", MAX_FILES);
        if (!(v = realloc(l->v, nc * sizeof(*v))))
            return oom();
        l->v = v;
        l->cap = nc;
    }
    if (!(l->v[l->n] = strdup(path)))
        return oom();
    l->n++;
    return 0;
}

static int walk(struct filelist *l, const char *dir, int depth)
{
    DIR *d;
    struct dirent *de;
    struct cairn_buf p = CAIRN_BUF_INIT;
    int error = 0;

    if (depth > MAX_DEPTH)
        return cairn_error_set(CAIRN_EINVALID, "directories nested too deep under '%s'", dir);
    if (!(d = opendir(dir)))
        return cairn_error_set_errno(CAIRN_ERROR, "cannot open directory '%s'", dir);
    while ((errno = 0, de = readdir(d)) != NULL) {
        struct stat st;
        if (de->d_name[0] == '.' && (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
            continue;
        cairn_buf_clear(&p);
        if ((error = cairn_fs_join(&p, dir, de->d_name)) < 0)
            goto done;
        if (lstat(p.ptr, &st) < 0) {
            error = cairn_error_set_errno(CAIRN_ERROR, "cannot stat '%s'", p.ptr);
            goto done;
        }
        if (S_ISDIR(st.st_mode)) {
            if ((error = walk(l, p.ptr, depth + 1)) < 0)
                goto done;
        } else if (is_data_name(de->d_name)) {
            /* Symlinked files are read; symlinked directories never entered (no loops). */
            if (S_ISLNK(st.st_mode) && (stat(p.ptr, &st) < 0 || !S_ISREG(st.st_mode)))
                continue;
            if (S_ISREG(st.st_mode) && (error = list_add(l, p.ptr)) < 0)
                goto done;
        }
    }
    if (errno) {
        error = cairn_error_set_errno(CAIRN_ERROR, "cannot read directory '%s'", dir);
        goto done;
    }
done:
    cairn_buf_release(&p);
    closedir(d);
    return error;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int cairn__data_files(char ***out, size_t *nout, const char *path)
{
    struct filelist l = { 0 };
    struct stat st;
    int error = 0;

    *out = NULL;
    *nout = 0;
    if (stat(path, &st) < 0) {
        error = cairn_error_set_errno(errno == ENOENT ? CAIRN_ENOTFOUND : CAIRN_ERROR,
                                      "cannot open '%s'", path);
        goto done;
    }
    if (S_ISDIR(st.st_mode)) {
        if ((error = walk(&l, path, 0)) < 0)
            goto done;
        if (l.n == 0) {
            error = cairn_error_set(CAIRN_ENOTFOUND, "no .csv or .tsv file in '%s'", path);
            goto done;
        }
        qsort(l.v, l.n, sizeof(*l.v), cmp_str);
    } else if ((error = list_add(&l, path)) < 0) {
        goto done;
    }
    *out = l.v;
    *nout = l.n;
    l.v = NULL;
    l.n = 0;
done:
    for (size_t i = 0; i < l.n; i++)
        free(l.v[i]);
    free(l.v);
    return error;
}
