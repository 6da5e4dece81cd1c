/* cairn log [NAME] [-n N] [--metrics a,b] [--json]: versions, newest first. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/registry.h"
#include "cairn/repo.h"
#include "cli.h"
#include "print.h"

const char cmd_log_summary[] = "list versions, newest first";
const char cmd_log_help[] =
    "usage: cairn log [NAME] [-n N] [--metrics NAME,NAME...] [--json]\n"
    "\n"
    "List the versions of NAME (or of every model and dataset), newest first:\n"
    "version, id, date, author, size, bytes it added to the store, message.\n"
    "\n"
    "  -n N              show at most N versions\n"
    "  --metrics LIST    add a column per metric (comma-separated names)\n"
    "  --json            an array of version objects (see docs/cli-json.md)\n";

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
    static const struct option opts[] = { { "json", no_argument, NULL, 'j' },
                                          { "metrics", required_argument, NULL, 'M' },
                                          { NULL, 0, NULL, 0 } };
    struct log_state s = { 0 };
    struct cairn_repo *repo = NULL;
    const char *model = NULL;
    char *mlist = NULL;
    long limit = 0;
    int c, error, rc;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "n:", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            if ((limit = cli_parse_count(optarg)) <= 0 || limit > 1000000000)
                return cli_usage("log", "-n takes a positive number, not '%s'", optarg);
            break;
        case 'j':
            s.json = 1;
            break;
        case 'M':
            mlist = optarg;
            break;
        default:
            return cli_usage("log", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc - 1)
        return cli_usage("log", "too many arguments");
    if (optind == argc - 1) {
        model = argv[optind];
        if (cairn_name_valid(model, "model name") < 0)
            return cli_fail(CAIRN_EINVALID);
    }
    if ((rc = cli_open_repo(&repo)) != 0)
        return rc;
    s.repo = repo;
    if (model) {
        struct cairn_model_info m;
        if ((error = cairn_registry_model_get(cairn_repo_registry(repo), model, &m)) < 0) {
            cairn_repo_free(repo);
            return cli_fail(error);
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
    cairn_repo_free(repo);
    if (error < 0) {
        json_decref(s.arr);
        return cli_fail(error);
    }
    if (s.json)
        cli_print_json(s.arr);
    return EXIT_OK;
}
