/* cairn gc [--dry-run]: remove what no version or stage references. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cairn/repo.h"
#include "cli.h"

const char cmd_gc_summary[] = "remove chunks no version or stage needs";
const char cmd_gc_help[] =
    "usage: cairn gc [--dry-run] [--json]\n"
    "\n"
    "Remove every chunk that no version and no staged file references (keeping\n"
    "delta bases that live chunks need), rewrite packs that are partly dead, and\n"
    "delete temp files that killed processes left. Safe while other cairn\n"
    "commands run: it takes the repository lock exclusively, they wait.\n"
    "\n"
    "  --dry-run   report what would be removed, remove nothing\n"
    "  --json      print the statistics as JSON\n";

int cmd_gc(int argc, char **argv)
{
    struct cairn_repo *repo = NULL;
    struct cairn_repo_gc_stats st = { 0 };
    int dry = 0, json = 0, error, rc;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--dry-run"))
            dry = 1;
        else if (!strcmp(argv[i], "--json"))
            json = 1;
        else
            return cli_usage("gc", "unknown argument '%s'", argv[i]);
    }
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
