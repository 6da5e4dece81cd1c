/*
 * cairn metrics NAME [--metric a,b] [--json]: one model's metrics across its
 * versions, a row per version and a column per metric, with the best value
 * of each numeric column marked, so "which version was best at what" reads
 * off one screen.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/gate.h"
#include "cairn/registry.h"
#include "cairn/repo.h"
#include "cli.h"
#include "opt.h"
#include "print.h"
#include "util/buf.h"
#include "util/hash.h"
#include "util/values.h"

#define MAX_COLUMNS 64

const char cmd_metrics_summary[] = "compare metrics across the versions of a model";
const char cmd_metrics_help[] =
    "Show the metrics of every version of model NAME, oldest first: a row per\n"
    "version, a column per metric (all metrics any version has, or those\n"
    "given with --metric). Metrics recorded at commit and by 'eval --record'\n"
    "are both shown; '-' means the version has no such metric.\n";

enum { METRICS_NAME, METRICS_METRIC, METRICS_METRICS, METRICS_JSON };
const struct cli_opt cmd_metrics_opts[] = {
    [METRICS_NAME] = { CLI_OPT_ARG, "NAME", 0, NULL, "the model", CLI_OPT_REQUIRED },
    [METRICS_METRIC] = { CLI_OPT_STRING, "metric", 0, "LIST",
                         "only these metrics, in this order (comma-separated)", 0 },
    [METRICS_METRICS] = { CLI_OPT_STRING, "metrics", 0, "LIST", NULL, CLI_OPT_HIDDEN },
    [METRICS_JSON] = { CLI_OPT_FLAG, "json", 0, NULL, "machine-readable (see docs/cli-json.md)",
                       0 },
    CLI_OPTS_END,
};

struct row {
    struct cairn_version v;
    struct cairn_values kv;
};

struct table {
    struct cairn_repo *repo;
    struct row *rows;
    size_t n, cap;
    int error;
};

static int collect(const struct cairn_version *v, void *payload)
{
    struct table *t = payload;
    struct row *r;
    int error;
    if (CAIRN_ARRAY_GROW(t->rows, t->cap, t->n) < 0)
        return CAIRN_ENOMEM;
    r = &t->rows[t->n];
    memset(r, 0, sizeof(*r));
    if ((error = cairn_registry_version_get(cairn_repo_registry(t->repo), &v->id, &r->v)) < 0)
        return error;
    t->n++;
    return cairn_registry_metrics(cairn_repo_registry(t->repo), &v->id, &r->kv);
}

static int add_column(char **cols, int *ncols, const char *name)
{
    for (int i = 0; i < *ncols; i++)
        if (!strcmp(cols[i], name))
            return 0;
    if (*ncols >= MAX_COLUMNS)
        return cairn_error_set(CAIRN_EINVALID, "more than %d metrics; choose some with --metric",
                               MAX_COLUMNS);
    if (!(cols[*ncols] = strdup(name)))
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    (*ncols)++;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A metric whose name says lower is better (the same rule as gates). */
static int lower_is_better(const char *name)
{
    static const char *suffixes[] = { "_ms", "latency", "loss", "error", "size", "bytes" };
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        size_t k = strlen(suffixes[i]);
        if (n >= k && !strcmp(name + n - k, suffixes[i]))
            return 1;
    }
    return 0;
}

int cmd_metrics(int argc, char **argv)
{
    struct cairn_repo *repo = NULL;
    struct cairn_model_info m;
    struct table t;
    char *cols[MAX_COLUMNS], *list = NULL;
    const char *name, *only;
    struct cli_parsed args;
    int ncols = 0, json, error = 0, rc = EXIT_OK;

    memset(&t, 0, sizeof(t));
    if ((rc = cli_opt_parse(&args, "metrics", cmd_metrics_opts, argc, argv)) != 0)
        return rc;
    name = args.v[METRICS_NAME].str;
    only = args.v[METRICS_METRIC].count ? args.v[METRICS_METRIC].str : args.v[METRICS_METRICS].str;
    json = args.v[METRICS_JSON].count > 0;
    if ((error = cairn_name_valid(name, "model name")) < 0)
        goto done;
    if (only) {
        char *save = NULL;
        if (!(list = strdup(only))) {
            error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
            goto done;
        }
        for (char *p = strtok_r(list, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
            if (!cairn_value_name_valid(p)) {
                error = cairn_error_set(CAIRN_EINVALID, "invalid metric name '%s'", p);
                goto done;
            }
            if ((error = add_column(cols, &ncols, p)) < 0)
                goto done;
        }
        if (!ncols) {
            error = cairn_error_set(CAIRN_EINVALID, "--metric needs at least one name");
            goto done;
        }
    }
    if ((rc = cli_open_repo(&repo)) != 0)
        goto done;
    t.repo = repo;
    if ((error = cairn_registry_model_get(cairn_repo_registry(repo), name, &m)) < 0 ||
        (error = cairn_registry_version_list(cairn_repo_registry(repo), name, 0, collect, &t)) < 0)
        goto done;
    if (!only) {
        for (size_t i = 0; i < t.n && !error; i++)
            for (size_t k = 0; k < t.rows[i].kv.count && !error; k++)
                error = add_column(cols, &ncols, t.rows[i].kv.items[k].name);
        if (error < 0)
            goto done;
        qsort(cols, (size_t)ncols, sizeof(cols[0]), cmp_str);
    }
    if (json) {
        json_t *o = json_object(), *names = json_array(), *vers = json_array();
        for (int c = 0; c < ncols; c++)
            json_array_append_new(names, json_string(cols[c]));
        for (size_t i = t.n; i-- > 0;) {
            json_t *r = json_object(), *vals = json_object();
            for (int c = 0; c < ncols; c++) {
                const struct cairn_value *kv = cairn_values_get(&t.rows[i].kv, cols[c]);
                json_object_set_new(vals, cols[c], kv ? cairn__value_json(kv) : json_null());
            }
            json_object_set_new(r, "id", cli_oid_json(&t.rows[i].v.id));
            json_object_set_new(r, "version", json_integer(t.rows[i].v.number));
            json_object_set_new(r, "ref", json_sprintf("%s@v%d", name, t.rows[i].v.number));
            json_object_set_new(r, "time_ns", json_integer(t.rows[i].v.time_ns));
            json_object_set_new(r, "metrics", vals);
            json_array_append_new(vers, r);
        }
        json_object_set_new(o, "model", json_string(name));
        json_object_set_new(o, "metrics", names);
        json_object_set_new(o, "versions", vers);
        cli_print_json(o);
        goto done;
    }
    if (!t.n) {
        printf("%s has no versions\n", name);
        goto done;
    }
    printf("%-8s %-12s", "VERSION", "ID");
    for (int c = 0; c < ncols; c++)
        printf("  %14.14s", cols[c]);
    printf("\n");
    for (size_t i = t.n; i-- > 0;) {
        char sid[16], buf[64], val[40];
        printf("v%-7d %-12s", t.rows[i].v.number, cli_short_id(sid, &t.rows[i].v.id));
        for (int c = 0; c < ncols; c++) {
            const struct cairn_value *kv = cairn_values_get(&t.rows[i].kv, cols[c]);
            int best = kv && kv->type == CAIRN_VALUE_NUMBER && t.n > 1;
            for (size_t j = 0; j < t.n && best; j++) {
                const struct cairn_value *o = cairn_values_get(&t.rows[j].kv, cols[c]);
                if (o && o->type == CAIRN_VALUE_NUMBER &&
                    (lower_is_better(cols[c]) ? o->number < kv->number : o->number > kv->number))
                    best = 0;
            }
            if (kv)
                snprintf(buf, sizeof(buf), "%s%s", cairn_value_format(kv, val, sizeof(val)),
                         best ? " *" : "");
            printf("  %14.14s", kv ? buf : "-");
        }
        printf("\n");
    }
    if (t.n > 1)
        printf("(* best value of the column)\n");
done:
    for (size_t i = 0; i < t.n; i++) {
        cairn_version_release(&t.rows[i].v);
        cairn_values_release(&t.rows[i].kv);
    }
    free(t.rows);
    for (int i = 0; i < ncols; i++)
        free(cols[i]);
    free(list);
    cairn_repo_free(repo);
    cli_parsed_release(&args);
    return error < 0 ? cli_fail(error) : rc;
}
