/* cairn gc [--dry-run]: remove what no version or stage references. */
#include <jansson.h>
#include <stdio.h>

#include "cairn/repo.h"
#include "cli.h"
#include "opt.h"

const char cmd_gc_summary[] = "remove chunks no version or stage needs";
const char cmd_gc_help[] =
    "Remove every chunk that no version and no staged file references (keeping\n"
    "delta bases that live chunks need), rewrite packs that are partly dead, and\n"
    "delete temp files that killed processes left. Safe while other cairn\n"
    "commands run: it takes the repository lock exclusively, they wait.\n";

enum { GC_DRY_RUN, GC_JSON };
const struct cli_opt cmd_gc_opts[] = {
    [GC_DRY_RUN] = { CLI_OPT_FLAG, "dry-run", 0, NULL,
                     "report what would be removed, remove nothing", 0 },
    [GC_JSON] = { CLI_OPT_FLAG, "json", 0, NULL, "print the statistics as JSON", 0 },
    CLI_OPTS_END,
};

int cmd_gc(int argc, char **argv)
{
    struct cairn_repo *repo = NULL;
    struct cairn_repo_gc_stats st = { 0 };
    struct cli_parsed args;
    int dry, json, error, rc;

    if ((rc = cli_opt_parse(&args, "gc", cmd_gc_opts, argc, argv)) != 0)
        return rc;
    dry = args.v[GC_DRY_RUN].count > 0;
    json = args.v[GC_JSON].count > 0;
    cli_parsed_release(&args);
    if ((rc = cli_open_repo(&repo)) != 0)
        return rc;
    error = cairn_repo_gc(repo, dry, &st);
    cairn_repo_free(repo);
    if (error < 0)
        return cli_fail(error);
    if (json) {
        json_t *o = json_object();
        json_object_set_new(o, "dry_run", json_boolean(dry));
        json_object_set_new(o, "chunks_kept", json_integer((json_int_t)st.chunks_kept));
        json_object_set_new(o, "chunks_removed", json_integer((json_int_t)st.chunks_removed));
        json_object_set_new(o, "bytes_before", json_integer((json_int_t)st.bytes_before));
        json_object_set_new(o, "bytes_after", json_integer((json_int_t)st.bytes_after));
        json_object_set_new(o, "packs_removed", json_integer((json_int_t)st.packs_removed));
        cli_print_json(o);
    } else {
        char a[32], b[32];
        printf("%s %llu chunk%s, kept %llu; store %s -> %s\n", dry ? "would remove" : "removed",
               (unsigned long long)st.chunks_removed, st.chunks_removed == 1 ? "" : "s",
               (unsigned long long)st.chunks_kept, cli_fmt_bytes(a, sizeof(a), st.bytes_before),
               cli_fmt_bytes(b, sizeof(b), st.bytes_after));
    }
    return EXIT_OK;
}
