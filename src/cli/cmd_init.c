/* cairn init [DIR]: create a repository. */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/repo.h"
#include "cli.h"
#include "opt.h"

const char cmd_init_summary[] = "create an empty repository";
const char cmd_init_help[] =
    "Create an empty cairn repository in DIR (default: the current directory,\n"
    "or -C DIR): a .cairn/ folder with the chunk store, the registry database\n"
    "and the config. DIR is created if missing. Fails if DIR already holds one.\n";

enum { INIT_DIR, INIT_JSON };
const struct cli_opt cmd_init_opts[] = {
    [INIT_DIR] = { CLI_OPT_ARG, "DIR", 0, NULL, "where to create it", 0 },
    [INIT_JSON] = { CLI_OPT_FLAG, "json", 0, NULL, "print the repository's paths as JSON", 0 },
    CLI_OPTS_END,
};

int cmd_init(int argc, char **argv)
{
    struct cli_parsed args;
    const char *dir;
    char abs[PATH_MAX];
    int error, rc;

    if ((rc = cli_opt_parse(&args, "init", cmd_init_opts, argc, argv)) != 0)
        return rc;
    dir = args.v[INIT_DIR].str ? args.v[INIT_DIR].str : cli_g.dir ? cli_g.dir : ".";
    if ((error = cairn_repo_init(dir)) < 0) {
        rc = cli_fail(error);
    } else if (!args.v[INIT_JSON].count) {
        printf("initialised empty cairn repository in %s/.cairn\n", strcmp(dir, ".") ? dir : ".");
    } else if (!realpath(dir, abs)) {
        cli_error("cannot resolve '%s': %s", dir, strerror(errno));
        rc = EXIT_RUNTIME;
    } else {
        cli_print_json(
            json_pack("{s:s, s:s+}", "dir", abs, "cairn_dir", abs, abs[1] ? "/.cairn" : ".cairn"));
    }
    cli_parsed_release(&args);
    return rc;
}
