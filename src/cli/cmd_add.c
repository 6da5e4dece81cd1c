/* cairn add PATH... [--model NAME]: stage files or directories. */
#include <jansson.h>
#include <stdio.h>

#include "cairn/repo.h"
#include "cli.h"
#include "opt.h"

const char cmd_add_summary[] = "stage files or directories for the next commit";
const char cmd_add_help[] =
    "Chunk, deduplicate and compress the files (directories recursively) into\n"
    "the store and stage them. Tensor files (safetensors, GGUF) are chunked per\n"
    "tensor; other files with content-defined chunking. A file whose size,\n"
    "times and inode did not change since it was last added is not read again.\n"
    "Inside a directory, symbolic links, FIFOs, sockets and devices are skipped\n"
    "with a warning naming each. A file name that is not valid UTF-8 is refused\n"
    "(exit 2): paths are stored and sent to remotes as UTF-8.\n"
    "Options may stand anywhere; '--' ends them. --progress and --no-progress\n"
    "force the progress bar on or off.\n";

enum { ADD_PATHS, ADD_MODEL, ADD_JSON };
const struct cli_opt cmd_add_opts[] = {
    [ADD_PATHS] = { CLI_OPT_ARG, "PATH", 0, NULL, "files or directories to stage",
                    CLI_OPT_REQUIRED | CLI_OPT_REPEAT },
    [ADD_MODEL] = { CLI_OPT_STRING, "model", 0, "NAME",
                    "stage for NAME only; 'cairn commit NAME' takes this stage", 0 },
    [ADD_JSON] = { CLI_OPT_FLAG, "json", 0, NULL, "print the statistics as JSON", 0 },
    CLI_OPTS_END,
};

int cmd_add(int argc, char **argv)
{
    struct cairn_add_opts ao = { 0 };
    struct cairn_add_stats st;
    struct cairn_repo *repo = NULL;
    struct cli_progress *pb;
    struct cli_parsed args;
    int error, rc;
    double t0;

    if ((rc = cli_opt_parse(&args, "add", cmd_add_opts, argc, argv)) != 0)
        return rc;
    ao.model = args.v[ADD_MODEL].str;
    if ((rc = cli_open_repo(&repo)) != 0)
        goto done;
    pb = cli_progress_start("add", 0);
    ao.progress = cli_progress_cb;
    ao.progress_payload = pb;
    t0 = cli_now();
    error = cairn_repo_add(repo, args.v[ADD_PATHS].items, args.v[ADD_PATHS].nitems, &ao, &st);
    cli_progress_finish(pb);
    if (error < 0) {
        rc = cli_fail(error);
        goto done;
    }
    if (args.v[ADD_JSON].count) {
        json_t *o = json_object();
        json_object_set_new(o, "files", json_integer((json_int_t)st.files));
        json_object_set_new(o, "files_unchanged", json_integer((json_int_t)st.files_unchanged));
        json_object_set_new(o, "bytes_total", json_integer((json_int_t)st.bytes_total));
        json_object_set_new(o, "bytes_read", json_integer((json_int_t)st.bytes_read));
        json_object_set_new(o, "bytes_stored", json_integer((json_int_t)st.bytes_stored));
        json_object_set_new(o, "chunks_new", json_integer((json_int_t)st.chunks_new));
        json_object_set_new(o, "chunks_dedup", json_integer((json_int_t)st.chunks_dedup));
        json_object_set_new(o, "seconds", json_real(cli_now() - t0));
        cli_print_json(o);
    } else {
        char a[32], b[32];
        printf("staged %llu file%s (%llu unchanged): %s read, %s new in the store\n",
               (unsigned long long)st.files, st.files == 1 ? "" : "s",
               (unsigned long long)st.files_unchanged, cli_fmt_bytes(a, sizeof(a), st.bytes_read),
               cli_fmt_bytes(b, sizeof(b), st.bytes_stored));
    }
done:
    cairn_repo_free(repo);
    cli_parsed_release(&args);
    return rc;
}
