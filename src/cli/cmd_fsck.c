/*
 * cairn fsck: check every pack, chunk, manifest, version record and the audit
 * chain; with --repair, first repair the store and say what cannot be restored.
 */
#include <jansson.h>
#include <stdio.h>

#include "cairn/repo.h"
#include "cli.h"
#include "opt.h"
#include "print.h"

const char cmd_fsck_summary[] = "verify the store, the registry and the audit chain";
const char cmd_fsck_help[] =
    "Check the whole repository: every pack and index, every chunk decoded and\n"
    "its BLAKE3 verified, every manifest and version record (each id recomputed),\n"
    "every chunk a version needs present, the registry database's integrity and\n"
    "the audit log's hash chain. Prints each problem on a line and exits 3 if\n"
    "there is any. Interrupted writes (temp files a killed process left) are not\n"
    "problems; 'cairn gc' removes them.\n"
    "\n"
    "--repair first repairs the store, keeping every chunk that can still be\n"
    "read: it rebuilds a missing or damaged pack index by scanning its pack;\n"
    "leaves damaged or corrupt chunks out of the index, so that adding the file\n"
    "again stores them anew (the stat cache is cleared for that); writes changed\n"
    "packs anew, durably, and moves the old files to .cairn/store/damaged/\n"
    "(nothing is deleted). It prints each change ('repaired: ...') and each\n"
    "version that cannot be restored ('lost: ...': re-add its files and commit,\n"
    "or pull it from a remote), then checks the repository as without --repair;\n"
    "the exit status is that check's.\n";

enum { FSCK_REPAIR, FSCK_JSON };
const struct cli_opt cmd_fsck_opts[] = {
    [FSCK_REPAIR] = { CLI_OPT_FLAG, "repair", 0, NULL,
                      "first repair the store, then check it (see above)", 0 },
    [FSCK_JSON] = { CLI_OPT_FLAG, "json", 0, NULL,
                    "one JSON object: clean, problems (and repaired, lost)", 0 },
    CLI_OPTS_END,
};

struct fsck_out {
    int json;
    json_t *arr, *repaired, *lost;
};

static void report(const char *msg, void *payload)
{
    struct fsck_out *o = payload;
    if (o->json)
        json_array_append_new(o->arr, json_string(msg));
    else
        printf("problem: %s\n", cli_esc(msg));
}

static void say(json_t *arr, const char *prefix, const char *msg)
{
    if (arr)
        json_array_append_new(arr, json_string(msg));
    else
        printf("%s: %s\n", prefix, cli_esc(msg));
}

static void repaired(const char *msg, void *payload)
{
    say(((struct fsck_out *)payload)->repaired, "repaired", msg);
}

static void lost(const char *msg, void *payload)
{
    say(((struct fsck_out *)payload)->lost, "lost", msg);
}

int cmd_fsck(int argc, char **argv)
{
    struct cairn_repo *repo = NULL;
    struct fsck_out o = { 0 };
    struct cairn_repo_repair_stats rs;
    struct cli_parsed args;
    int n, rc, repair;

    if ((rc = cli_opt_parse(&args, "fsck", cmd_fsck_opts, argc, argv)) != 0)
        return rc;
    o.json = args.v[FSCK_JSON].count > 0;
    repair = args.v[FSCK_REPAIR].count > 0;
    cli_parsed_release(&args);
    if ((rc = cli_open_repo(&repo)) != 0)
        return rc;
    if (o.json) {
        o.arr = json_array();
        if (repair) {
            o.repaired = json_array();
            o.lost = json_array();
        }
    }
    n = repair ? cairn_repo_repair(repo, repaired, lost, &o, &rs) : 0;
    if (n >= 0)
        n = cairn_repo_fsck(repo, report, &o);
    cairn_repo_free(repo);
    if (n < 0) {
        json_decref(o.arr);
        json_decref(o.repaired);
        json_decref(o.lost);
        return cli_fail(n);
    }
    if (o.json) {
        json_t *j = json_object();
        json_object_set_new(j, "clean", json_boolean(n == 0));
        json_object_set_new(j, "problems", o.arr);
        if (repair) {
            json_object_set_new(j, "repaired", o.repaired);
            json_object_set_new(j, "lost", o.lost);
        }
        cli_print_json(j);
    } else if (n == 0) {
        printf("repository is clean\n");
    } else {
        fprintf(stderr, "cairn: fsck found %d problem%s\n", n, n == 1 ? "" : "s");
    }
    return n ? EXIT_CHECK : EXIT_OK;
}
