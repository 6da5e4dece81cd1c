/* cairn version: the program's version. */
#include <stdio.h>

#include "cli.h"

const char cmd_version_summary[] = "print the version of cairn";
const char cmd_version_help[] =
    "usage: cairn version\n"
    "\n"
    "Print the version of cairn.\n";

int cmd_version(int argc, char **argv)
{
    (void)argv;
    if (argc > 1)
        return cli_usage("version", "too many arguments");
    printf("cairn %s\n", CAIRN_VERSION);
    return EXIT_OK;
}
