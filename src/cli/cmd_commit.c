/* cairn commit NAME -m MSG: record the stage as a new immutable version. */
#include <stdio.h>

#include "cairn/repo.h"
#include "cli.h"
#include "opt.h"
#include "print.h"

const char cmd_commit_summary[] = "record staged files as a new version of a model or dataset";
const char cmd_commit_help[] =
    "Create version vN+1 of NAME from its stage (files added with --model NAME),\n"
    "or from the default stage if NAME has none. The version id is the BLAKE3 of\n"
    "its canonical record, which commits to every file, chunk, param and metric.\n"
    "Lineage is recorded automatically: the parent (NAME's latest version unless\n"
    "--parent), the git commit of the working tree and whether it was dirty (if\n"
    "the repository is inside a git checkout), the user, the host and the time.\n";

enum {
    COMMIT_NAME,
    COMMIT_MESSAGE,
    COMMIT_KIND,
    COMMIT_PARAMS,
    COMMIT_METRICS,
    COMMIT_DATA,
    COMMIT_PARENT,
    COMMIT_CODE,
    COMMIT_JSON
};
const struct cli_opt cmd_commit_opts[] = {
    [COMMIT_NAME] = { CLI_OPT_ARG, "NAME", 0, NULL, "the model or dataset", CLI_OPT_REQUIRED },
    [COMMIT_MESSAGE] = { CLI_OPT_STRING, "message", 'm', "MSG", "what changed and why (required)",
                         0 },
    [COMMIT_KIND] = { CLI_OPT_STRING, "kind", 0, "KIND", "model (default) or dataset", 0 },
    [COMMIT_PARAMS] = { CLI_OPT_STRING, "params", 0, "FILE",
                        "flat JSON or YAML object of training parameters", 0 },
    [COMMIT_METRICS] = { CLI_OPT_STRING, "metrics", 0, "FILE",
                         "flat JSON or YAML object of metrics", 0 },
    [COMMIT_DATA] = { CLI_OPT_LIST, "data", 0, "REF",
                      "a dataset version this was trained on (repeatable)", 0 },
    [COMMIT_PARENT] = { CLI_OPT_STRING, "parent", 0, "REF", "the version this one derives from",
                        0 },
    [COMMIT_CODE] = { CLI_OPT_STRING, "code-commit", 0, "SHA",
                      "the code commit, instead of asking git", 0 },
    [COMMIT_JSON] = { CLI_OPT_FLAG, "json", 0, NULL, "print the new version as JSON", 0 },
    CLI_OPTS_END,
};

int cmd_commit(int argc, char **argv)
{
    struct cairn_commit_opts co = { 0 };
    struct cairn_version v;
    struct cairn_repo *repo = NULL;
    struct cli_parsed args;
    int error, rc;
    char sid[16];

    if ((rc = cli_opt_parse(&args, "commit", cmd_commit_opts, argc, argv)) != 0)
        return rc;
    co.model = args.v[COMMIT_NAME].str;
    co.message = args.v[COMMIT_MESSAGE].str;
    co.kind = args.v[COMMIT_KIND].str;
    co.params_file = args.v[COMMIT_PARAMS].str;
    co.metrics_file = args.v[COMMIT_METRICS].str;
    co.data_refs = args.v[COMMIT_DATA].items;
    co.ndata = args.v[COMMIT_DATA].nitems;
    co.parent_ref = args.v[COMMIT_PARENT].str;
    co.code_commit = args.v[COMMIT_CODE].str;
    if (!co.message) {
        rc = cli_usage("commit", "a message is required (-m MSG)");
        goto done;
    }
    if ((rc = cli_open_repo(&repo)) != 0)
        goto done;
    if ((error = cairn_repo_commit(repo, &co, &v)) < 0) {
        rc = cli_fail(error);
        goto done;
    }
    if (args.v[COMMIT_JSON].count) {
        cli_print_json(cli_version_json(repo, &v, 1));
    } else {
        char a[32], b[32];
        printf("[%s v%d %s] %s\n", v.model, v.number, cli_short_id(sid, &v.id), v.message);
        printf(" %llu file%s, %s, %s new in the store\n", (unsigned long long)v.nfiles,
               v.nfiles == 1 ? "" : "s", cli_fmt_bytes(a, sizeof(a), v.raw_size),
               cli_fmt_bytes(b, sizeof(b), v.stored_new));
    }
    cairn_version_release(&v);
done:
    cairn_repo_free(repo);
    cli_parsed_release(&args);
    return rc;
}
