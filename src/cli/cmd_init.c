/* cairn init [DIR]: create a repository. */
#include <stdio.h>
#include <string.h>

#include "cairn/repo.h"
#include "cli.h"

const char cmd_init_summary[] = "create an empty repository";
const char cmd_init_help[] =
    "usage: cairn init [DIR]\n"
    "\n"
    "Create an empty cairn repository in DIR (default: the current directory,\n"
    "or -C DIR): a .cairn/ folder with the chunk store, the registry database\n"
    "and the config. DIR is created if missing. Fails if DIR already holds one.\n";

int cmd_init(int argc, char **argv)
{
    const char *dir = cli_g.dir ? cli_g.dir : ".";
    int error;

    if (argc > 2)
        return cli_usage("init", "too many arguments");
    if (argc == 2) {
        if (argv[1][0] == '-')
            return cli_usage("init", "unknown option '%s'", argv[1]);
        dir = argv[1];
    }
    if ((error = cairn_repo_init(dir)) < 0)
        return cli_fail(error);
    printf("initialised empty cairn repository in %s/.cairn\n", strcmp(dir, ".") ? dir : ".");
    return EXIT_OK;
}
