/* cairn pull [REMOTE] [REF...] [--include GLOB]...: fetch versions and only the chunks they need.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/registry.h"
#include "cairn/remote.h"
#include "cairn/repo.h"
#include "cli.h"

const char cmd_pull_summary[] = "fetch versions from a remote (only the chunks needed)";
const char cmd_pull_help[] =
    "usage: cairn pull [REMOTE] [REF...] [--include GLOB]... [--json]\n"
    "\n"
    "Fetch version records from REMOTE (default: 'origin', or the only\n"
    "remote), then only the chunks the selected versions need, with ranged\n"
    "reads from the remote's packs; every chunk is verified before it is\n"
    "stored. REF is NAME (every version of a model), NAME@vN (the remote's\n"
    "number), NAME@TAG, NAME@ALIAS or an id prefix; none means everything.\n"
    "A version keeps the remote's number vN when it is free here.\n"
    "Remote aliases are recorded as REMOTE/ALIAS; a local alias follows when\n"
    "it was unset or still at the remote's previous value.\n"
    "\n"
    "  --include GLOB  only the chunks of paths matching GLOB (as in checkout)\n"
    "  --json          print what was fetched\n";

int cli_pull_print(const struct cairn_pull_stats *st, int json, double seconds);

int cli_pull_print(const struct cairn_pull_stats *st, int json, double seconds)
{
    if (json) {
        json_t *o = json_object();
        json_object_set_new(o, "versions", json_integer((json_int_t)st->versions));
        json_object_set_new(o, "versions_new", json_integer((json_int_t)st->versions_new));
        json_object_set_new(o, "chunks_fetched", json_integer((json_int_t)st->chunks_fetched));
        json_object_set_new(o, "ranges", json_integer((json_int_t)st->ranges));
        json_object_set_new(o, "bytes_received", json_integer((json_int_t)st->bytes_received));
        json_object_set_new(o, "tags_new", json_integer((json_int_t)st->tags_new));
        json_object_set_new(o, "aliases_updated", json_integer((json_int_t)st->aliases_updated));
        json_object_set_new(o, "signatures_new", json_integer((json_int_t)st->signatures_new));
        json_object_set_new(o, "seconds", json_real(seconds));
        cli_print_json(o);
    } else {
        char b[32];
        printf(
            "pulled %llu version%s (%llu new): %llu chunks in %llu ranged read%s, %s"
            " received\n",
            (unsigned long long)st->versions, st->versions == 1 ? "" : "s",
            (unsigned long long)st->versions_new, (unsigned long long)st->chunks_fetched,
            (unsigned long long)st->ranges, st->ranges == 1 ? "" : "s",
            cli_fmt_bytes(b, sizeof(b), st->bytes_received));
    }
    return EXIT_OK;
}

int cmd_pull(int argc, char **argv)
{
    static const struct option opts[] = { { "include", required_argument, NULL, 'i' },
                                          { "json", no_argument, NULL, 'j' },
                                          { NULL, 0, NULL, 0 } };
    struct cairn_pull_opts po = { 0 };
    struct cairn_pull_stats st;
    struct cairn_remote_config cfg;
    struct cairn_repo *repo = NULL;
    struct cli_progress *pb;
    const char **inc = calloc((size_t)argc + 1, sizeof(*inc));
    int c, json = 0, error, rc;
    double t0;

    if (!inc)
        return cli_fail(cairn_error_set(CAIRN_ENOMEM, "out of memory"));
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'i':
            inc[po.ninclude++] = optarg;
            break;
        case 'j':
            json = 1;
            break;
        default:
            free(inc);
            return cli_usage("pull", "unknown option or missing value '%s'", argv[optind - 1]);
        }
    }
    po.include = inc;
    if ((rc = cli_open_repo(&repo)) != 0) {
        free(inc);
        return rc;
    }
    if (optind < argc &&
        cairn_registry_remote_get(cairn_repo_registry(repo), argv[optind], &cfg) == 0) {
        cairn_remote_config_release(&cfg);
        po.remote = argv[optind++];
    }
    cairn_error_clear();
    po.refs = (const char *const *)argv + optind;
    po.nrefs = (size_t)(argc - optind);
    pb = cli_progress_start("pull", 0);
    po.progress = cli_progress_cb;
    po.progress_payload = pb;
    t0 = cli_now();
    error = cairn_pull(repo, &po, &st);
    cli_progress_finish(pb);
    cairn_repo_free(repo);
    free(inc);
    if (error < 0)
        return cli_fail(error);
    return cli_pull_print(&st, json, cli_now() - t0);
}
