/* cairn help [COMMAND]: the command list, or one command's page. */
#include "cli.h"
#include "opt.h"

const char cmd_help_summary[] = "show the command list or a command's help page";
const char cmd_help_help[] =
    "Without COMMAND, list every command with a one-line summary. With COMMAND,\n"
    "print the same page as 'cairn COMMAND --help'.\n";

enum { HELP_COMMAND };
const struct cli_opt cmd_help_opts[] = {
    [HELP_COMMAND] = { CLI_OPT_ARG, "COMMAND", 0, NULL, "the command whose page to show", 0 },
    CLI_OPTS_END,
};

int cmd_help(int argc, char **argv)
{
    struct cli_parsed args;
    int rc;

    if ((rc = cli_opt_parse(&args, "help", cmd_help_opts, argc, argv)) != 0)
        return rc;
    rc = cli_print_help(args.v[HELP_COMMAND].str);
    cli_parsed_release(&args);
    return rc;
}
