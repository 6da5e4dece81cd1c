/* cairn push [REMOTE] [REF...] [--force] [--json]: send versions and the chunks the remote lacks.
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

const char cmd_push_summary[] = "send versions to a remote (only the chunks it lacks)";
const char cmd_push_help[] =
    "usage: cairn push [REMOTE] [REF...] [--force] [--json]\n"
    "\n"
    "Send versions, their chunks, tags, aliases and signatures to REMOTE\n"
    "(default: 'origin', or the only remote). With no REF every version is\n"
    "pushed; a model NAME pushes all its versions. Only chunks the remote\n"
    "lacks are sent; an interrupted push resumes where it stopped.\n"
    "\n"
    "An alias that someone else moved on the remote since we last saw it is\n"
    "not overwritten (exit 1) unless --force is given.\n"
    "\n"
    "  --force   overwrite aliases changed on the remote\n"
    "  --json    print what was sent: bytes_sent, chunks_sent, packs_sent, ...\n";

/* Is `arg` the name of a configured remote? */
static int is_remote(struct cairn_repo *repo, const char *arg)
{
    struct cairn_remote_config c;
    if (cairn_registry_remote_get(cairn_repo_registry(repo), arg, &c) < 0) {
        cairn_error_clear();
        return 0;
    }
    cairn_remote_config_release(&c);
    return 1;
}

int cmd_push(int argc, char **argv)
{
    static const struct option opts[] = { { "force", no_argument, NULL, 'f' },
                                          { "json", no_argument, NULL, 'j' },
                                          { NULL, 0, NULL, 0 } };
    struct cairn_push_opts po = { 0 };
    struct cairn_push_stats st;
    struct cairn_repo *repo = NULL;
    struct cli_progress *pb;
    int c, json = 0, error, rc;
    double t0;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            po.force = 1;
            break;
        case 'j':
            json = 1;
            break;
        default:
            return cli_usage("push", "unknown option or missing value '%s'", argv[optind - 1]);
        }
    }
    if ((rc = cli_open_repo(&repo)) != 0)
        return rc;
    if (optind < argc && is_remote(repo, argv[optind]))
        po.remote = argv[optind++];
    po.refs = (const char *const *)argv + optind;
    po.nrefs = (size_t)(argc - optind);
    pb = cli_progress_start("push", 0);
    po.progress = cli_progress_cb;
    po.progress_payload = pb;
    t0 = cli_now();
    error = cairn_push(repo, &po, &st);
    cli_progress_finish(pb);
    cairn_repo_free(repo);
    if (error < 0 && error != CAIRN_EEXISTS)
        return cli_fail(error);
    if (json) {
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
        return cli_fail(error);
    return EXIT_OK;
}
