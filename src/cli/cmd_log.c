/* cairn log [NAME] [-n N] [--metrics a,b] [--json]: versions, newest first. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/registry.h"
#include "cairn/repo.h"
#include "cli.h"
#include "opt.h"
#include "print.h"

const char cmd_log_summary[] = "list versions, newest first";
const char cmd_log_help[] =
    "List the versions of NAME (or of every model and dataset), newest first:\n"
    "version, id, date, author, size, bytes it added to the store, message.\n";

enum { LOG_NAME, LOG_MAX, LOG_METRICS, LOG_JSON };
const struct cli_opt cmd_log_opts[] = {
    [LOG_NAME] = { CLI_OPT_ARG, "NAME", 0, NULL, "the model or dataset (default: all)", 0 },
    [LOG_MAX] = { CLI_OPT_STRING, "max-count", 'n', "N", "show at most N versions", 0 },
    [LOG_METRICS] = { CLI_OPT_STRING, "metrics", 0, "LIST",
                      "add a column per metric (comma-separated names)", 0 },
    [LOG_JSON] = { CLI_OPT_FLAG, "json", 0, NULL,
                   "an array of version objects (see docs/cli-json.md)", 0 },
    CLI_OPTS_END,
};

struct log_state {
    struct cairn_repo *repo;
    int json;
    json_t *arr;
    char *metrics[32];
    int nmetrics;
};

static int print_version(const struct cairn_version *v, void *payload)
{
    struct log_state *s = payload;
    char sid[16], when[64], size[32], stored[32], ref[96];

    if (s->json) {
        json_array_append_new(s->arr, cli_version_json(s->repo, v, 0));
        return 0;
    }
    snprintf(ref, sizeof(ref), "%s@v%d", v->model, v->number);
    printf("%-20s %s  %s  %-10s %10s %10s", cli_esc(ref), cli_short_id(sid, &v->id),
           cli_fmt_time(when, sizeof(when), v->time_ns), cli_esc(v->author),
           cli_fmt_bytes(size, sizeof(size), v->raw_size),
           cli_fmt_bytes(stored, sizeof(stored), v->stored_new));
    if (s->nmetrics) {
        struct cairn_values m = { 0 };
        cairn_registry_metrics(cairn_repo_registry(s->repo), &v->id, &m);
        for (int i = 0; i < s->nmetrics; i++) {
            const struct cairn_value *kv = cairn_values_get(&m, s->metrics[i]);
            char val[64];
            printf(" %12s", kv ? cli_esc(cairn_value_format(kv, val, sizeof(val))) : "-");
        }
        cairn_values_release(&m);
    }
    printf("  %s\n", cli_esc(v->message));
    return 0;
}

int cmd_log(int argc, char **argv)
{
    struct log_state s = { 0 };
    struct cairn_repo *repo = NULL;
    struct cli_parsed args;
    const char *model = NULL, *n;
    char *mlist = NULL;
    long limit = 0;
    int error, rc;

    if ((rc = cli_opt_parse(&args, "log", cmd_log_opts, argc, argv)) != 0)
        return rc;
    s.json = args.v[LOG_JSON].count > 0;
    model = args.v[LOG_NAME].str;
    if ((n = args.v[LOG_MAX].str) && ((limit = cli_parse_count(n)) <= 0 || limit > 1000000000)) {
        rc = cli_usage("log", "-n takes a positive number, not '%s'", n);
        goto done;
    }
    if (model && cairn_name_valid(model, "model name") < 0) {
        rc = cli_fail(CAIRN_EINVALID);
        goto done;
    }
    if (args.v[LOG_METRICS].str && !(mlist = strdup(args.v[LOG_METRICS].str))) {
        rc = cli_fail(cairn_error_set(CAIRN_ENOMEM, "out of memory"));
        goto done;
    }
    if ((rc = cli_open_repo(&repo)) != 0)
        goto done;
    s.repo = repo;
    if (model) {
        struct cairn_model_info m;
        if ((error = cairn_registry_model_get(cairn_repo_registry(repo), model, &m)) < 0) {
            rc = cli_fail(error);
            goto done;
        }
    }
    if (mlist) {
        for (char *p = mlist, *save = NULL, *tok;
             (tok = strtok_r(p, ",", &save)) && s.nmetrics < 32; p = NULL)
            s.metrics[s.nmetrics++] = tok;
    }
    if (s.json)
        s.arr = json_array();
    else if (s.nmetrics) {
        printf("%-20s %-12s  %-19s  %-10s %10s %10s", "VERSION", "ID", "DATE", "AUTHOR", "SIZE",
               "STORED");
        for (int i = 0; i < s.nmetrics; i++)
            printf(" %12.12s", s.metrics[i]);
        printf("  MESSAGE\n");
    }
    error = cairn_registry_version_list(cairn_repo_registry(repo), model, (int)limit, print_version,
                                        &s);
    if (error < 0)
        rc = cli_fail(error);
    else if (s.json) {
        cli_print_json(s.arr);
        s.arr = NULL;
    }
done:
    json_decref(s.arr);
    free(mlist);
    cairn_repo_free(repo);
    cli_parsed_release(&args);
    return rc;
}
