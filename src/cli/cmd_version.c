/* cairn version: the program's version. */
#include <jansson.h>
#include <stdio.h>

#include "cli.h"
#include "opt.h"

const char cmd_version_summary[] = "print the version of cairn";
const char cmd_version_help[] = "Print the version of cairn.\n";

enum { VERSION_JSON };
const struct cli_opt cmd_version_opts[] = {
    [VERSION_JSON] = { CLI_OPT_FLAG, "json", 0, NULL, "print {\"version\": \"X.Y.Z\"}", 0 },
    CLI_OPTS_END,
};

int cmd_version(int argc, char **argv)
{
    struct cli_parsed args;
    int rc;

    if ((rc = cli_opt_parse(&args, "version", cmd_version_opts, argc, argv)) != 0)
        return rc;
    if (args.v[VERSION_JSON].count)
        cli_print_json(json_pack("{s:s}", "version", CAIRN_VERSION));
    else
        printf("cairn %s\n", CAIRN_VERSION);
    cli_parsed_release(&args);
    return EXIT_OK;
}
