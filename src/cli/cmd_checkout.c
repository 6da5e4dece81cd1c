/* cairn checkout REF [--to DIR] [--include GLOB]...: write a version's files. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "cairn/repo.h"
#include "cli.h"

const char cmd_checkout_summary[] = "write the files of a version, verified";
const char cmd_checkout_help[] =
    "usage: cairn checkout REF [--to DIR] [--include GLOB]... [--force] [--json]\n"
    "\n"
    "Write the files of REF into DIR (default: the repository's working\n"
    "directory). Every chunk is decoded and its BLAKE3 checked before it is\n"
    "written; each file is written under a temporary name and renamed into\n"
    "place only when complete, so a damaged store never leaves a wrong file.\n"
    "\n"
    "A file in the way whose content the repository does not keep (edited\n"
    "since it was added, or untracked) stops the checkout before anything is\n"
    "written (exit 1, naming a few of them). Files with REF's content or a\n"
    "content that is staged or in any version are replaced. Modes are 0644 or\n"
    "0755, narrowed by the umask.\n"
    "\n"
    "  --to DIR        target directory (created if missing)\n"
    "  --include GLOB  only paths matching GLOB (fnmatch; a directory name takes\n"
    "                  everything below it); repeatable\n"
    "  --force         overwrite local changes and replace non-regular files in\n"
    "                  the way\n"
    "  --json          print what was written as JSON\n";

int cmd_checkout(int argc, char **argv)
{
    static const struct option opts[] = { { "to", required_argument, NULL, 't' },
                                          { "include", required_argument, NULL, 'i' },
                                          { "force", no_argument, NULL, 'f' },
                                          { "json", no_argument, NULL, 'j' },
                                          { NULL, 0, NULL, 0 } };
    struct cairn_checkout_opts co = { 0 };
    struct cairn_checkout_stats st = { 0 };
    struct cairn_repo *repo = NULL;
    struct cli_progress *pb;
    const char **inc = calloc((size_t)argc, sizeof(*inc));
    const char *to = NULL;
    int c, json = 0, error, rc;
    double t0;

    if (!inc)
        return cli_fail(cairn_error_set(CAIRN_ENOMEM, "out of memory"));
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 't':
            to = optarg;
            break;
        case 'i':
            inc[co.ninclude++] = optarg;
            break;
        case 'f':
            co.force = 1;
            break;
        case 'j':
            json = 1;
            break;
        default:
            free(inc);
            return cli_usage("checkout", "unknown option or missing value '%s'", argv[optind - 1]);
        }
    }
    co.include = inc;
    if (optind != argc - 1) {
        free(inc);
        return cli_usage("checkout",
                         optind >= argc ? "which version? give a REF" : "too many arguments");
    }
    if ((rc = cli_open_repo(&repo)) != 0) {
        free(inc);
        return rc;
    }
    pb = cli_progress_start("checkout", 0);
    co.progress = cli_progress_cb;
    co.progress_payload = pb;
    t0 = cli_now();
    error = cairn_repo_checkout(repo, argv[optind], to ? to : cairn_repo_workdir(repo), &co, &st);
    cli_progress_finish(pb);
    free(inc);
    cairn_repo_free(repo);
    if (error < 0)
        return cli_fail(error);
    if (json) {
        json_t *o = json_object();
        json_object_set_new(o, "files", json_integer((json_int_t)st.files));
        json_object_set_new(o, "bytes", json_integer((json_int_t)st.bytes));
        json_object_set_new(o, "seconds", json_real(cli_now() - t0));
        cli_print_json(o);
    } else {
        char b[32];
        printf("checked out %llu file%s, %s, all verified\n", (unsigned long long)st.files,
               st.files == 1 ? "" : "s", cli_fmt_bytes(b, sizeof(b), st.bytes));
    }
    return EXIT_OK;
}
