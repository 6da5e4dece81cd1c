/*
 * Dataset validation: stream every row of every file once and check it
 * against a schema (include/cairn/data.h, docs/data.md).
 *
 * Per column, each rule of the schema becomes one check in the report,
 * created before the first row so that a rule that never fails still shows
 * as checked. Per-value rules (type, required, range, values, regex, unique)
 * count failures and keep the first CAIRN_DATA_MAX_EXAMPLES places; the
 * aggregate rules (null rate, rows, class share) are decided at the end.
 *
 * Memory is bounded whatever the row count: the CSV reader holds one record,
 * and uniqueness keeps values exactly up to UNIQUE_EXACT_MAX distinct values
 * (or UNIQUE_EXACT_BYTES of text), then only their 64-bit hashes up to
 * UNIQUE_HASH_MAX; both switches are stated in the report's notes. Label
 * classes are counted up to MAX_CLASSES distinct values.
 */
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/data.h"
#include "data/csv.h"
#include "data/schema.h"
#include "util/buf.h"

#define UNIQUE_EXACT_MAX   ((size_t)1 << 20)
#define UNIQUE_EXACT_BYTES ((size_t)32 << 20)
#define UNIQUE_HASH_MAX    ((size_t)8 << 20)
#define MAX_CLASSES        100000

enum rule {
    R_PRESENT,
    R_TYPE,
    R_REQUIRED,
    R_RANGE,
    R_VALUES,
    R_REGEX,
    R_UNIQUE,
    R_NULL_RATE,
    R_COUNT
};

static const char *const rule_names[R_COUNT] = {
    "present", "type", "required", "range", "values", "regex", "unique", "null_rate",
};

/* The set behind a "unique" rule: exact strings first, hashes when that grows too big. */
struct uniq {
    bool by_hash;
    bool saturated; /* hit UNIQUE_HASH_MAX: later values unchecked */
    struct cairn__strmap exact;
    uint64_t *slots;
    size_t nslots, n;
};

struct colstate {
    const struct cairn__column_rule *rule;
    ssize_t check[R_COUNT]; /* index into report->checks, -1 when the rule does not apply */
    uint64_t values, nulls;
    struct uniq uniq;
    struct cairn__strmap allowed; /* string/category values lists */
    struct cairn__strmap classes; /* label column only */
    bool classes_overflow;
};

struct vctx {
    const struct cairn_data_schema *schema;
    struct cairn_data_report *rep;
    struct colstate *cols;
    size_t checks_cap;
    ssize_t parse_check, rows_check, class_check;
};

static int oom(void)
{
    return cairn_error_set(CAIRN_ENOMEM, "out of memory");
}

static int add_note(struct cairn_data_report *rep, char *note)
{
    char **v;
    if (!note)
        return oom();
    if (!(v = realloc(rep->notes, (rep->nnotes + 1) * sizeof(*v)))) {
        free(note);
        return oom();
    }
    rep->notes = v;
    rep->notes[rep->nnotes++] = note;
    return 0;
}

/* Append a check; `expect` is taken over (NULL means out of memory). */
static ssize_t add_check(struct vctx *v, const char *column, const char *rule, char *expect)
{
    struct cairn_data_report *rep = v->rep;
    struct cairn_data_check *c;

    if (!expect)
        return oom();
    if (rep->nchecks == v->checks_cap) {
        size_t nc = v->checks_cap ? v->checks_cap * 2 : 32;
        struct cairn_data_check *n = realloc(rep->checks, nc * sizeof(*n));
        if (!n) {
            free(expect);
            return oom();
        }
        rep->checks = n;
        v->checks_cap = nc;
    }
    c = &rep->checks[rep->nchecks++];
    memset(c, 0, sizeof(*c));
    c->rule = rule;
    c->expect = expect;
    c->passed = true;
    if (column && !(c->column = strdup(column)))
        return oom();
    return (ssize_t)rep->nchecks - 1;
}

static void record_fail(struct cairn_data_check *c, size_t file, uint64_t line)
{
    c->failed++;
    c->passed = false;
    if (c->nexamples < CAIRN_DATA_MAX_EXAMPLES) {
        c->examples[c->nexamples].file = file;
        c->examples[c->nexamples].line = line;
        c->nexamples++;
    }
}

static char *fmt_num(double d)
{
    return cairn_buf_strdupf("%.17g", d);
}

static char *join_values(const struct cairn__column_rule *r)
{
    struct cairn_buf b;
    cairn_buf_init(&b, 4096);
    cairn_buf_puts(&b, "one of ");
    for (size_t i = 0; i < r->nvalues; i++) {
        if (b.len > 200) {
            cairn_buf_printf(&b, ", ... (%zu values)", r->nvalues);
            break;
        }
        cairn_buf_printf(&b, "%s'%s'", i ? ", " : "", r->values[i]);
    }
    cairn_error_clear();
    return cairn_buf_detach(&b, NULL);
}

static int setup(struct vctx *v)
{
    const struct cairn_data_schema *s = v->schema;
    int error = 0;

    if (!(v->cols = calloc(s->ncols, sizeof(*v->cols))))
        return oom();
    v->parse_check = v->rows_check = v->class_check = -1;
    if ((v->parse_check = add_check(v, NULL, "parse", strdup("well-formed CSV"))) < 0)
        return (int)v->parse_check;
    for (size_t i = 0; i < s->ncols; i++) {
        const struct cairn__column_rule *r = &s->cols[i];
        struct colstate *cs = &v->cols[i];
        cs->rule = r;
        for (int k = 0; k < R_COUNT; k++)
            cs->check[k] = -1;
        cairn__strmap_init(&cs->allowed, 0, 0);
        cairn__strmap_init(&cs->classes, MAX_CLASSES, 0);
        cairn__strmap_init(&cs->uniq.exact, UNIQUE_EXACT_MAX, UNIQUE_EXACT_BYTES);

#define ADD(k, expr)                                                           \
    do {                                                                       \
        if ((cs->check[k] = add_check(v, r->name, rule_names[k], (expr))) < 0) \
            return (int)cs->check[k];                                          \
    } while (0)
        ADD(R_PRESENT, strdup("in the header"));
        if (r->type != CAIRN_DATA_STRING && r->type != CAIRN_DATA_CATEGORY)
            ADD(R_TYPE, strdup(cairn_data_type_name(r->type)));
        if (r->required)
            ADD(R_REQUIRED, strdup("no nulls"));
        if (r->has_range) {
            char *lo = fmt_num(r->min), *hi = fmt_num(r->max);
            ADD(R_RANGE, lo && hi ? cairn_buf_strdupf("[%s, %s]", lo, hi) : NULL);
            free(lo);
            free(hi);
        }
        if (r->nvalues) {
            ADD(R_VALUES, join_values(r));
            if (!r->numvalues) {
                for (size_t j = 0; j < r->nvalues; j++) {
                    size_t idx;
                    bool ins;
                    if (cairn__strmap_add(&cs->allowed, &idx, &ins, r->values[j],
                                          strlen(r->values[j])) < 0)
                        return oom();
                }
            }
        }
        if (r->has_regex)
            ADD(R_REGEX, cairn_buf_strdupf("matches '%s'", r->regex_src));
        if (r->unique)
            ADD(R_UNIQUE, strdup("no duplicates"));
        if (r->has_null_rate)
            ADD(R_NULL_RATE, cairn_buf_strdupf("<= %g", r->max_null_rate));
#undef ADD
    }
    if (s->has_rows_min || s->has_rows_max) {
        char *e;
        if (s->has_rows_min && s->has_rows_max)
            e = cairn_buf_strdupf("[%llu, %llu]", (unsigned long long)s->rows_min,
                                  (unsigned long long)s->rows_max);
        else if (s->has_rows_min)
            e = cairn_buf_strdupf(">= %llu", (unsigned long long)s->rows_min);
        else
            e = cairn_buf_strdupf("<= %llu", (unsigned long long)s->rows_max);
        if ((v->rows_check = add_check(v, NULL, "rows", e)) < 0)
            return (int)v->rows_check;
    }
    if (s->label >= 0) {
        const struct cairn__column_rule *r = &s->cols[s->label];
        if ((v->class_check =
                 add_check(v, r->name, "class_share",
                           cairn_buf_strdupf("every class >= %g", s->min_class_share))) < 0)
            return (int)v->class_check;
    }
    return error;
}

static void uniq_release(struct uniq *u)
{
    cairn__strmap_release(&u->exact);
    free(u->slots);
}

/* Insert a hash; 1 when it was already there, 0 when new, <0 when the table may not grow. */
static int hset_add(struct uniq *u, uint64_t h)
{
    if ((u->n + 1) * 2 > u->nslots) {
        size_t ns = u->nslots ? u->nslots * 2 : 1024;
        uint64_t *slots;
        if (u->n >= UNIQUE_HASH_MAX || !(slots = calloc(ns, sizeof(*slots))))
            return -1;
        for (size_t i = 0; i < u->nslots; i++) {
            uint64_t x = u->slots[i];
            if (!x)
                continue;
            size_t j = (size_t)x & (ns - 1);
            while (slots[j])
                j = (j + 1) & (ns - 1);
            slots[j] = x;
        }
        free(u->slots);
        u->slots = slots;
        u->nslots = ns;
    }
    size_t i = (size_t)h & (u->nslots - 1);
    while (u->slots[i]) {
        if (u->slots[i] == h)
            return 1;
        i = (i + 1) & (u->nslots - 1);
    }
    u->slots[i] = h;
    u->n++;
    return 0;
}

/* 1 when `val` was seen before, else 0. */
static int uniq_seen(struct vctx *v, const struct cairn__column_rule *r, struct uniq *u,
                     const char *val, size_t len)
{
    int dup;
    if (u->saturated)
        return 0;
    if (!u->by_hash) {
        size_t idx;
        bool ins;
        if (cairn__strmap_add(&u->exact, &idx, &ins, val, len) == 0)
            return !ins;
        /* Too many to keep exactly: move to hashes and say so. */
        for (size_t i = 0; i < u->exact.n; i++)
            if (hset_add(u, u->exact.entries[i].hash) < 0)
                break;
        cairn__strmap_release(&u->exact);
        u->by_hash = true;
        if (add_note(v->rep,
                     cairn_buf_strdupf("uniqueness of '%s' checked by 64-bit hash after %zu "
                                       "distinct values",
                                       r->name, UNIQUE_EXACT_MAX)) < 0)
            cairn_error_clear();
    }
    dup = hset_add(u, cairn__hash64(val, len));
    if (dup < 0) {
        u->saturated = true;
        if (add_note(v->rep,
                     cairn_buf_strdupf("uniqueness of '%s' checked for the first %zu distinct "
                                       "values only",
                                       r->name, u->n)) < 0)
            cairn_error_clear();
        return 0;
    }
    return dup;
}

static bool num_allowed(const struct cairn__column_rule *r, double d)
{
    size_t lo = 0, hi = r->nvalues;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->numvalues[mid] < d)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < r->nvalues && r->numvalues[lo] == d;
}

static void check_value(struct vctx *v, struct colstate *cs, const struct cairn_csv_field *f,
                        size_t file, uint64_t line)
{
    const struct cairn__column_rule *r = cs->rule;
    struct cairn_data_check *ch = v->rep->checks;
    double d = 0;
    bool numeric = false;

    if (cairn__schema_is_null(v->schema, f->ptr, f->len)) {
        cs->nulls++;
        if (cs->check[R_REQUIRED] >= 0)
            record_fail(&ch[cs->check[R_REQUIRED]], file, line);
        return;
    }
    cs->values++;
    if (cs->check[R_TYPE] >= 0)
        ch[cs->check[R_TYPE]].checked++;
    switch (r->type) {
    case CAIRN_DATA_INT: {
        long long x;
        if (cairn__parse_int(&x, f->ptr, f->len) < 0) {
            record_fail(&ch[cs->check[R_TYPE]], file, line);
            return;
        }
        d = (double)x;
        numeric = true;
        break;
    }
    case CAIRN_DATA_FLOAT:
        if (cairn__parse_float(&d, f->ptr, f->len) < 0) {
            record_fail(&ch[cs->check[R_TYPE]], file, line);
            return;
        }
        numeric = true;
        break;
    case CAIRN_DATA_BOOL: {
        bool b;
        if (cairn__parse_bool(&b, f->ptr, f->len) < 0) {
            record_fail(&ch[cs->check[R_TYPE]], file, line);
            return;
        }
        break;
    }
    default:
        break;
    }
    if (numeric && cs->check[R_RANGE] >= 0) {
        ch[cs->check[R_RANGE]].checked++;
        if (!(d >= r->min && d <= r->max)) /* NaN is out of every range */
            record_fail(&ch[cs->check[R_RANGE]], file, line);
    }
    if (cs->check[R_VALUES] >= 0) {
        bool ok =
            numeric ? num_allowed(r, d) : cairn__strmap_find(&cs->allowed, f->ptr, f->len) >= 0;
        ch[cs->check[R_VALUES]].checked++;
        if (!ok)
            record_fail(&ch[cs->check[R_VALUES]], file, line);
    }
    if (cs->check[R_REGEX] >= 0) {
        ch[cs->check[R_REGEX]].checked++;
        if (regexec(&r->regex, f->ptr, 0, NULL, 0) != 0)
            record_fail(&ch[cs->check[R_REGEX]], file, line);
    }
    if (cs->check[R_UNIQUE] >= 0) {
        ch[cs->check[R_UNIQUE]].checked++;
        if (uniq_seen(v, r, &cs->uniq, f->ptr, f->len))
            record_fail(&ch[cs->check[R_UNIQUE]], file, line);
    }
    if (v->schema->label >= 0 && r == &v->schema->cols[v->schema->label] && !cs->classes_overflow) {
        size_t idx;
        bool ins;
        if (cairn__strmap_add(&cs->classes, &idx, &ins, f->ptr, f->len) < 0)
            cs->classes_overflow = true;
        else
            cs->classes.entries[idx].count++;
    }
}

static void parse_failed(struct vctx *v, size_t file, const char *msg)
{
    struct cairn_data_check *c = &v->rep->checks[v->parse_check];
    c->failed++;
    c->passed = false;
    if (!c->message)
        c->message = strdup(msg);
    if (add_note(v->rep, strdup(msg)) < 0)
        cairn_error_clear();
    (void)file;
}

static int validate_file(struct vctx *v, size_t fi)
{
    const struct cairn_data_schema *s = v->schema;
    const char *path = v->rep->files[fi];
    struct cairn_csv *csv = NULL;
    const struct cairn_csv_field *f;
    ssize_t *map = NULL; /* file column -> schema column */
    size_t n, ncols;
    int r, error = 0;

    v->rep->checks[v->parse_check].checked++;
    if ((error = cairn_csv_open(&csv, path, NULL)) < 0)
        goto done;
    r = cairn_csv_next(csv, &f, &n);
    if (r <= 0) {
        if (r == 0 || r == CAIRN_EINVALID || r == CAIRN_ENOMEM) {
            char *m =
                r == 0 ? cairn_buf_strdupf("%s: no header row", path) : strdup(cairn_error_last());
            parse_failed(v, fi, m ? m : "out of memory");
            free(m);
            error = 0;
        } else {
            error = r;
        }
        goto done;
    }
    ncols = n;
    if (!(map = malloc(ncols * sizeof(*map)))) {
        error = oom();
        goto done;
    }
    for (size_t j = 0; j < ncols; j++) {
        map[j] = cairn__schema_find(s, f[j].ptr, f[j].len);
        for (size_t k = 0; k < j && map[j] >= 0; k++)
            if (map[k] == map[j])
                map[j] = -1; /* a repeated header name: the first one is checked */
    }
    for (size_t i = 0; i < s->ncols; i++) {
        struct cairn_data_check *c = &v->rep->checks[v->cols[i].check[R_PRESENT]];
        bool found = false;
        for (size_t j = 0; j < ncols && !found; j++)
            found = map[j] == (ssize_t)i;
        c->checked++;
        if (!found)
            record_fail(c, fi, cairn_csv_line(csv));
    }
    while ((r = cairn_csv_next(csv, &f, &n)) == 1) {
        uint64_t line = cairn_csv_line(csv);
        v->rep->rows++;
        for (size_t j = 0; j < n; j++)
            if (map[j] >= 0)
                check_value(v, &v->cols[map[j]], &f[j], fi, line);
    }
    if (r == CAIRN_EINVALID || r == CAIRN_ENOMEM) {
        parse_failed(v, fi, cairn_error_last());
    } else if (r < 0) {
        error = r;
        goto done;
    }
done:
    free(map);
    cairn_csv_free(csv);
    return error;
}

static int finish(struct vctx *v)
{
    const struct cairn_data_schema *s = v->schema;
    struct cairn_data_report *rep = v->rep;

    for (size_t i = 0; i < s->ncols; i++) {
        struct colstate *cs = &v->cols[i];
        if (cs->check[R_NULL_RATE] >= 0) {
            struct cairn_data_check *c = &rep->checks[cs->check[R_NULL_RATE]];
            uint64_t total = cs->values + cs->nulls;
            double rate = total ? (double)cs->nulls / (double)total : 0.0;
            c->checked = total;
            c->failed = cs->nulls;
            c->passed = rate <= cs->rule->max_null_rate;
            if (!(c->observed = cairn_buf_strdupf("%.6g", rate)))
                return oom();
        }
    }
    if (v->rows_check >= 0) {
        struct cairn_data_check *c = &rep->checks[v->rows_check];
        c->checked = rep->rows;
        c->passed = (!s->has_rows_min || rep->rows >= s->rows_min) &&
                    (!s->has_rows_max || rep->rows <= s->rows_max);
        c->failed = c->passed ? 0 : 1;
        if (!(c->observed = cairn_buf_strdupf("%llu", (unsigned long long)rep->rows)))
            return oom();
    }
    if (v->class_check >= 0) {
        struct colstate *cs = &v->cols[s->label];
        const struct cairn__column_rule *r = cs->rule;
        struct cairn_data_check *c = &rep->checks[v->class_check];
        struct cairn_buf low;
        double min_share = INFINITY;
        size_t idx;
        bool ins;

        cairn_buf_init(&low, 1024);
        /* Listed values that never occur are classes with a share of 0. */
        for (size_t j = 0; j < r->nvalues && !cs->classes_overflow; j++)
            if (cairn__strmap_add(&cs->classes, &idx, &ins, r->values[j], strlen(r->values[j])) < 0)
                cs->classes_overflow = true;
        c->checked = cs->classes.n;
        if (cs->classes_overflow) {
            c->passed = false;
            c->failed = 1;
            c->message =
                cairn_buf_strdupf("more than %d distinct classes in '%s'", MAX_CLASSES, r->name);
        } else {
            for (size_t j = 0; j < cs->classes.n; j++) {
                double share =
                    cs->values ? (double)cs->classes.entries[j].count / (double)cs->values : 0.0;
                if (share < min_share)
                    min_share = share;
                if (share < s->min_class_share) {
                    c->failed++;
                    c->passed = false;
                    if (low.len < 300)
                        cairn_buf_printf(&low, "%s'%s' %.4g", low.len ? ", " : "",
                                         cairn__strmap_key(&cs->classes, j), share);
                }
            }
            if (cs->classes.n == 0) {
                c->passed = s->min_class_share <= 0;
                c->failed = c->passed ? 0 : 1;
                c->message = cairn_buf_strdupf("no labels");
            } else {
                c->observed =
                    cairn_buf_strdupf("min %.4g over %zu classes", min_share, cs->classes.n);
                if (low.len)
                    c->message = cairn_buf_strdupf("below the minimum: %s", low.ptr);
            }
        }
        cairn_buf_release(&low);
        cairn_error_clear();
    }
    rep->passed = true;
    for (size_t i = 0; i < rep->nchecks; i++)
        if (!rep->checks[i].passed)
            rep->passed = false;
    return 0;
}

void cairn_data_report_free(struct cairn_data_report *rep)
{
    if (!rep)
        return;
    for (size_t i = 0; i < rep->nfiles; i++)
        free(rep->files[i]);
    free(rep->files);
    for (size_t i = 0; i < rep->nchecks; i++) {
        free(rep->checks[i].column);
        free(rep->checks[i].expect);
        free(rep->checks[i].observed);
        free(rep->checks[i].message);
    }
    free(rep->checks);
    for (size_t i = 0; i < rep->nnotes; i++)
        free(rep->notes[i]);
    free(rep->notes);
    free(rep);
}

int cairn_data_validate(struct cairn_data_report **out, const char *path,
                        const struct cairn_data_schema *schema)
{
    struct vctx v = { 0 };
    int error;

    *out = NULL;
    v.schema = schema;
    if (!(v.rep = calloc(1, sizeof(*v.rep)))) {
        error = oom();
        goto done;
    }
    if ((error = cairn__data_files(&v.rep->files, &v.rep->nfiles, path)) < 0)
        goto done;
    if ((error = setup(&v)) < 0)
        goto done;
    for (size_t i = 0; i < v.rep->nfiles; i++)
        if ((error = validate_file(&v, i)) < 0)
            goto done;
    if ((error = finish(&v)) < 0)
        goto done;
    *out = v.rep;
    v.rep = NULL;
done:
    if (v.cols) {
        for (size_t i = 0; i < schema->ncols; i++) {
            uniq_release(&v.cols[i].uniq);
            cairn__strmap_release(&v.cols[i].allowed);
            cairn__strmap_release(&v.cols[i].classes);
        }
        free(v.cols);
    }
    cairn_data_report_free(v.rep);
    return error;
}

static json_t *jstr_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

int cairn_data_report_json(char **out, const struct cairn_data_report *rep)
{
    json_t *root = NULL, *files, *checks, *notes;
    int error = 0;

    *out = NULL;
    root = json_object();
    files = json_array();
    checks = json_array();
    notes = json_array();
    if (!root || !files || !checks || !notes) {
        json_decref(files);
        json_decref(checks);
        json_decref(notes);
        error = oom();
        goto done;
    }
    json_object_set_new(root, "passed", json_boolean(rep->passed));
    json_object_set_new(root, "rows", json_integer((json_int_t)rep->rows));
    json_object_set_new(root, "files", files);
    json_object_set_new(root, "checks", checks);
    json_object_set_new(root, "notes", notes);
    for (size_t i = 0; i < rep->nfiles; i++)
        json_array_append_new(files, json_string(rep->files[i]));
    for (size_t i = 0; i < rep->nnotes; i++)
        json_array_append_new(notes, json_string(rep->notes[i]));
    for (size_t i = 0; i < rep->nchecks; i++) {
        const struct cairn_data_check *c = &rep->checks[i];
        json_t *ex = json_array(), *o;
        for (size_t k = 0; ex && k < c->nexamples; k++)
            json_array_append_new(ex,
                                  json_pack("{s:s, s:I}", "file", rep->files[c->examples[k].file],
                                            "line", (json_int_t)c->examples[k].line));
        o = json_pack("{s:o, s:s, s:o, s:o, s:o, s:I, s:I, s:b, s:o}", "column",
                      jstr_or_null(c->column), "rule", c->rule, "expect", jstr_or_null(c->expect),
                      "observed", jstr_or_null(c->observed), "message", jstr_or_null(c->message),
                      "checked", (json_int_t)c->checked, "failed", (json_int_t)c->failed, "passed",
                      c->passed, "examples", ex ? ex : json_null());
        if (!o || json_array_append_new(checks, o) < 0) {
            error = oom();
            goto done;
        }
    }
    if (!(*out = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER)))
        error = oom();
done:
    json_decref(root);
    return error;
}
