/* cairn commit NAME -m MSG: record the stage as a new immutable version. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cairn/repo.h"
#include "cli.h"
#include "print.h"

const char cmd_commit_summary[] = "record staged files as a new version of a model or dataset";
const char cmd_commit_help[] =
    "usage: cairn commit NAME -m MSG [--kind model|dataset] [--params FILE]\n"
    "                    [--metrics FILE] [--data REF]... [--parent REF]\n"
    "                    [--code-commit SHA] [--json]\n"
    "\n"
    "Create version vN+1 of NAME from its stage (files added with --model NAME),\n"
    "or from the default stage if NAME has none. The version id is the BLAKE3 of\n"
    "its canonical record, which commits to every file, chunk, param and metric.\n"
    "Lineage is recorded automatically: the parent (NAME's latest version unless\n"
    "--parent), the git commit of the working tree and whether it was dirty (if\n"
    "the repository is inside a git checkout), the user, the host and the time.\n"
    "\n"
    "  -m, --message MSG    what changed and why (required)\n"
    "  --kind KIND          model (default) or dataset\n"
    "  --params FILE        flat JSON or YAML object of training parameters\n"
    "  --metrics FILE       flat JSON or YAML object of metrics\n"
    "  --data REF           a dataset version this was trained on (repeatable)\n"
    "  --parent REF         the version this one derives from\n"
    "  --code-commit SHA    the code commit, instead of asking git\n"
    "  --json               print the new version as JSON\n";

int cmd_commit(int argc, char **argv)
{
    static const struct option opts[] = { { "message", required_argument, NULL, 'm' },
                                          { "kind", required_argument, NULL, 'k' },
                                          { "params", required_argument, NULL, 'p' },
                                          { "metrics", required_argument, NULL, 'M' },
                                          { "data", required_argument, NULL, 'd' },
                                          { "parent", required_argument, NULL, 'P' },
                                          { "code-commit", required_argument, NULL, 'c' },
                                          { "json", no_argument, NULL, 'j' },
                                          { NULL, 0, NULL, 0 } };
    struct cairn_commit_opts co = { 0 };
    struct cairn_version v;
    struct cairn_repo *repo = NULL;
    const char **data = calloc((size_t)argc, sizeof(*data));
    int c, json = 0, error, rc;
    char sid[16];

    if (!data)
        return cli_fail(cairn_error_set(CAIRN_ENOMEM, "out of memory"));
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "m:", opts, NULL)) != -1) {
        switch (c) {
        case 'm':
            co.message = optarg;
            break;
        case 'k':
            co.kind = optarg;
            break;
        case 'p':
            co.params_file = optarg;
            break;
        case 'M':
            co.metrics_file = optarg;
            break;
        case 'd':
            data[co.ndata++] = optarg;
            break;
        case 'P':
            co.parent_ref = optarg;
            break;
        case 'c':
            co.code_commit = optarg;
            break;
        case 'j':
            json = 1;
            break;
        default:
            free(data);
            if (optopt && optopt != '?')
                return cli_usage("commit", "option '%s' needs a value", argv[optind - 1]);
            return cli_usage("commit", "unknown option '%s'", argv[optind - 1]);
        }
    }
    co.data_refs = data;
    if (optind != argc - 1) {
        free(data);
        return cli_usage("commit",
                         optind >= argc ? "which model? give NAME" : "too many arguments");
    }
    co.model = argv[optind];
    if (!co.message) {
        free(data);
        return cli_usage("commit", "a message is required (-m MSG)");
    }
    if ((rc = cli_open_repo(&repo)) != 0) {
        free(data);
        return rc;
    }
    error = cairn_repo_commit(repo, &co, &v);
    free(data);
    if (error < 0) {
        cairn_repo_free(repo);
        return cli_fail(error);
    }
    if (json) {
        cli_print_json(cli_version_json(repo, &v, 1));
    } else {
        char a[32], b[32];
        printf("[%s v%d %s] %s\n", v.model, v.number, cli_short_id(sid, &v.id), v.message);
        printf(" %llu file%s, %s, %s new in the store\n", (unsigned long long)v.nfiles,
               v.nfiles == 1 ? "" : "s", cli_fmt_bytes(a, sizeof(a), v.raw_size),
               cli_fmt_bytes(b, sizeof(b), v.stored_new));
    }
    cairn_version_release(&v);
    cairn_repo_free(repo);
    return EXIT_OK;
}
