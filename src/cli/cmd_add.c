/* cairn add PATH... [--model NAME]: stage files or directories. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>

#include "cairn/repo.h"
#include "cli.h"

const char cmd_add_summary[] = "stage files or directories for the next commit";
const char cmd_add_help[] =
    "usage: cairn add PATH... [--model NAME] [--json]\n"
    "\n"
    "Chunk, deduplicate and compress the files (directories recursively) into\n"
    "the store and stage them. Tensor files (safetensors, GGUF) are chunked per\n"
    "tensor; other files with content-defined chunking. A file whose size,\n"
    "times and inode did not change since it was last added is not read again.\n"
    "Inside a directory, symbolic links, FIFOs, sockets and devices are skipped\n"
    "with a warning naming each. A file name that is not valid UTF-8 is refused\n"
    "(exit 2): paths are stored and sent to remotes as UTF-8.\n"
    "\n"
    "  --model NAME   stage for NAME only; 'cairn commit NAME' takes this stage\n"
    "                 (otherwise the default stage, shared by all models)\n"
    "  --json         print the statistics as JSON\n"
    "  --progress, --no-progress   force the progress bar on or off\n";

int cmd_add(int argc, char **argv)
{
    static const struct option opts[] = { { "model", required_argument, NULL, 'm' },
                                          { "json", no_argument, NULL, 'j' },
                                          { NULL, 0, NULL, 0 } };
    struct cairn_add_opts ao = { 0 };
    struct cairn_add_stats st;
    struct cairn_repo *repo = NULL;
    struct cli_progress *pb;
    int c, json = 0, error, rc;
    double t0;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
        switch (c) {
        case 'm':
            ao.model = optarg;
            break;
        case 'j':
            json = 1;
            break;
        default:
            return cli_usage("add", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return cli_usage("add", "nothing to add: give one or more paths");
    if ((rc = cli_open_repo(&repo)) != 0)
        return rc;
    pb = cli_progress_start("add", 0);
    ao.progress = cli_progress_cb;
    ao.progress_payload = pb;
    t0 = cli_now();
    error =
        cairn_repo_add(repo, (const char *const *)argv + optind, (size_t)(argc - optind), &ao, &st);
    cli_progress_finish(pb);
    if (error < 0) {
        cairn_repo_free(repo);
        return cli_fail(error);
    }
    if (json) {
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
    cairn_repo_free(repo);
    return EXIT_OK;
}
