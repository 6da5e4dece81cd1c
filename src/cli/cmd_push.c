/* cairn push [REMOTE] [REF...] [--force] [--json]: send versions and the chunks the remote lacks.
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

const char cmd_push_summary[] = "send versions to a remote (only the chunks it lacks)";
const char cmd_push_help[] =
    "Send versions, their chunks, tags, aliases and signatures to REMOTE\n"
    "(default: 'origin', or the only remote). With no REF every version is\n"
    "pushed; a model NAME pushes all its versions. Only chunks the remote\n"
    "lacks are sent; an interrupted push resumes where it stopped.\n"
    "\n"
    "An alias that someone else moved on the remote since we last saw it is\n"
    "not overwritten (exit 1) unless --force is given.\n";

enum { PUSH_REMOTE, PUSH_REFS, PUSH_FORCE, PUSH_JSON };
const struct cli_opt cmd_push_opts[] = {
    [PUSH_REMOTE] = { CLI_OPT_ARG, "REMOTE", 0, NULL, "a configured remote (else the first REF)",
                      0 },
    [PUSH_REFS] = { CLI_OPT_ARG, "REF", 0, NULL, "versions or models to push (none: every version)",
                    CLI_OPT_REPEAT },
    [PUSH_FORCE] = { CLI_OPT_FLAG, "force", 0, NULL, "overwrite aliases changed on the remote", 0 },
    [PUSH_JSON] = { CLI_OPT_FLAG, "json", 0, NULL,
                    "print what was sent: bytes_sent, chunks_sent, packs_sent, ...", 0 },
    CLI_OPTS_END,
};

int cli_remote_refs(const char **remote, const char ***refs, size_t *nrefs, struct cairn_repo *repo,
                    const struct cli_optval *first, const struct cli_optval *rest);

/*
 * [REMOTE] [REF...] of push and pull: the first argument is the remote only
 * when a remote of that name is configured, else it is the first REF.
 * *refs is allocated (free it), even on error.
 */
int cli_remote_refs(const char **remote, const char ***refs, size_t *nrefs, struct cairn_repo *repo,
                    const struct cli_optval *first, const struct cli_optval *rest)
{
    struct cairn_remote_config c;

    *remote = NULL;
    *nrefs = 0;
    if (!(*refs = calloc(rest->nitems + 1, sizeof(**refs))))
        return cli_fail(cairn_error_set(CAIRN_ENOMEM, "out of memory"));
    if (first->count && cairn_registry_remote_get(cairn_repo_registry(repo), first->str, &c) == 0) {
        cairn_remote_config_release(&c);
        *remote = first->str;
    } else if (first->count) {
        (*refs)[(*nrefs)++] = first->str;
    }
    cairn_error_clear();
    for (size_t i = 0; i < rest->nitems; i++)
        (*refs)[(*nrefs)++] = rest->items[i];
    return EXIT_OK;
}

int cmd_push(int argc, char **argv)
{
    struct cairn_push_opts po = { 0 };
    struct cairn_push_stats st;
    struct cairn_repo *repo = NULL;
    struct cli_progress *pb;
    struct cli_parsed args;
    const char **refs = NULL;
    int error, rc;
    double t0;

    if ((rc = cli_opt_parse(&args, "push", cmd_push_opts, argc, argv)) != 0)
        return rc;
    po.force = args.v[PUSH_FORCE].count > 0;
    if ((rc = cli_open_repo(&repo)) != 0 ||
        (rc = cli_remote_refs(&po.remote, &refs, &po.nrefs, repo, &args.v[PUSH_REMOTE],
                              &args.v[PUSH_REFS])) != 0)
        goto done;
    po.refs = refs;
    pb = cli_progress_start("push", 0);
    po.progress = cli_progress_cb;
    po.progress_payload = pb;
    t0 = cli_now();
    error = cairn_push(repo, &po, &st);
    cli_progress_finish(pb);
    if (error < 0 && error != CAIRN_EEXISTS) {
        rc = cli_fail(error);
        goto done;
    }
    if (args.v[PUSH_JSON].count) {
        json_t *o = json_object();
        json_object_set_new(o, "versions", json_integer((json_int_t)st.versions));
        json_object_set_new(o, "versions_sent", json_integer((json_int_t)st.versions_sent));
        json_object_set_new(o, "chunks_needed", json_integer((json_int_t)st.chunks_needed));
        json_object_set_new(o, "chunks_sent", json_integer((json_int_t)st.chunks_sent));
        json_object_set_new(o, "packs_sent", json_integer((json_int_t)st.packs_sent));
        json_object_set_new(o, "pack_bytes", json_integer((json_int_t)st.pack_bytes));
        json_object_set_new(o, "bytes_sent", json_integer((json_int_t)st.bytes_sent));
        json_object_set_new(o, "tags_sent", json_integer((json_int_t)st.tags_sent));
        json_object_set_new(o, "aliases_sent", json_integer((json_int_t)st.aliases_sent));
        json_object_set_new(o, "aliases_rejected", json_integer((json_int_t)st.aliases_rejected));
        json_object_set_new(o, "signatures_sent", json_integer((json_int_t)st.signatures_sent));
        json_object_set_new(o, "seconds", json_real(cli_now() - t0));
        cli_print_json(o);
    } else {
        char b[32];
        printf("pushed %llu version%s (%llu new): %llu of %llu chunks in %llu pack%s, %s sent\n",
               (unsigned long long)st.versions, st.versions == 1 ? "" : "s",
               (unsigned long long)st.versions_sent, (unsigned long long)st.chunks_sent,
               (unsigned long long)st.chunks_needed, (unsigned long long)st.packs_sent,
               st.packs_sent == 1 ? "" : "s", cli_fmt_bytes(b, sizeof(b), st.bytes_sent));
    }
    if (error < 0)
        rc = cli_fail(error);
done:
    cairn_repo_free(repo);
    free(refs);
    cli_parsed_release(&args);
    return rc;
}
