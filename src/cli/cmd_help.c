/* cairn help [COMMAND]: the command list, or one command's page. */
#include "cli.h"

const char cmd_help_summary[] = "show the command list or a command's help page";
const char cmd_help_help[] =
    "usage: cairn help [COMMAND]\n"
    "\n"
    "Without COMMAND, list every command with a one-line summary. With COMMAND,\n"
    "print the same page as 'cairn COMMAND --help'.\n";

int cmd_help(int argc, char **argv)
{
    if (argc > 2)
        return cli_usage("help", "too many arguments");
    return cli_print_help(argc == 2 ? argv[1] : NULL);
}
