/* cairn pull [REMOTE] [REF...] [--include GLOB]...: fetch versions and only the chunks they need.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/registry.h"
#include "cairn/remote.h"
#include "cairn/repo.h"
#include "cli.h"
#include "opt.h"

const char cmd_pull_summary[] = "fetch versions from a remote (only the chunks needed)";
const char cmd_pull_help[] =
    "Fetch version records from REMOTE (default: 'origin', or the only\n"
    "remote), then only the chunks the selected versions need, with ranged\n"
    "reads from the remote's packs; every chunk is verified before it is\n"
    "stored. REF is NAME (every version of a model), NAME@vN (the remote's\n"
    "number), NAME@TAG, NAME@ALIAS or an id prefix; none means everything.\n"
    "A version keeps the remote's number vN when it is free here.\n"
    "Remote aliases are recorded as REMOTE/ALIAS; a local alias follows when\n"
    "it was unset or still at the remote's previous value.\n";

enum { PULL_REMOTE, PULL_REFS, PULL_INCLUDE, PULL_JSON };
const struct cli_opt cmd_pull_opts[] = {
    [PULL_REMOTE] = { CLI_OPT_ARG, "REMOTE", 0, NULL, "a configured remote (else the first REF)",
                      0 },
    [PULL_REFS] = { CLI_OPT_ARG, "REF", 0, NULL, "versions or models to fetch (none: everything)",
                    CLI_OPT_REPEAT },
    [PULL_INCLUDE] = { CLI_OPT_LIST, "include", 0, "GLOB",
                       "only the chunks of paths matching GLOB (as in checkout)", 0 },
    [PULL_JSON] = { CLI_OPT_FLAG, "json", 0, NULL, "print what was fetched", 0 },
    CLI_OPTS_END,
};

int cli_remote_refs(const char **remote, const char ***refs, size_t *nrefs, struct cairn_repo *repo,
                    const struct cli_optval *first, const struct cli_optval *rest);

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
    struct cairn_pull_opts po = { 0 };
    struct cairn_pull_stats st;
    struct cairn_repo *repo = NULL;
    struct cli_progress *pb;
    struct cli_parsed args;
    const char **refs = NULL;
    int error, rc;
    double t0;

    if ((rc = cli_opt_parse(&args, "pull", cmd_pull_opts, argc, argv)) != 0)
        return rc;
    po.include = args.v[PULL_INCLUDE].items;
    po.ninclude = args.v[PULL_INCLUDE].nitems;
    if ((rc = cli_open_repo(&repo)) != 0 ||
        (rc = cli_remote_refs(&po.remote, &refs, &po.nrefs, repo, &args.v[PULL_REMOTE],
                              &args.v[PULL_REFS])) != 0)
        goto done;
    po.refs = refs;
    pb = cli_progress_start("pull", 0);
    po.progress = cli_progress_cb;
    po.progress_payload = pb;
    t0 = cli_now();
    error = cairn_pull(repo, &po, &st);
    cli_progress_finish(pb);
    rc = error < 0 ? cli_fail(error) : cli_pull_print(&st, args.v[PULL_JSON].count, cli_now() - t0);
done:
    cairn_repo_free(repo);
    free(refs);
    cli_parsed_release(&args);
    return rc;
}
