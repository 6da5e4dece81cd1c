/* cairn fsck: check every pack, chunk, manifest, version record and the audit chain. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cairn/repo.h"
#include "cli.h"

const char cmd_fsck_summary[] = "verify the store, the registry and the audit chain";
const char cmd_fsck_help[] =
    "usage: cairn fsck [--json]\n"
    "\n"
    "Check the whole repository: every pack and index, every chunk decoded and\n"
    "its BLAKE3 verified, every manifest and version record (each id recomputed),\n"
    "every chunk a version needs present, the registry database's integrity and\n"
    "the audit log's hash chain. Prints each problem on a line and exits 3 if\n"
    "there is any. Interrupted writes (temp files a killed process left) are not\n"
    "problems; 'cairn gc' removes them.\n";

struct fsck_out {
    int json;
    json_t *arr;
};

static void report(const char *msg, void *payload)
{
    struct fsck_out *o = payload;
    if (o->json)
        json_array_append_new(o->arr, json_string(msg));
    else
        printf("problem: %s\n", msg);
}

int cmd_fsck(int argc, char **argv)
{
    struct cairn_repo *repo = NULL;
    struct fsck_out o = { 0 };
    int n, rc;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            o.json = 1;
        else
            return cli_usage("fsck", "unknown argument '%s'", argv[i]);
    }
    if ((rc = cli_open_repo(&repo)) != 0)
        return rc;
    if (o.json)
        o.arr = json_array();
    n = cairn_repo_fsck(repo, report, &o);
    cairn_repo_free(repo);
    if (n < 0) {
        json_decref(o.arr);
        return cli_fail(n);
    }
    if (o.json) {
        json_t *j = json_object();
        json_object_set_new(j, "clean", json_boolean(n == 0));
        json_object_set_new(j, "problems", o.arr);
        cli_print_json(j);
    } else if (n == 0) {
        printf("repository is clean\n");
    } else {
        fprintf(stderr, "cairn: fsck found %d problem%s\n", n, n == 1 ? "" : "s");
    }
    return n ? EXIT_CHECK : EXIT_OK;
}
