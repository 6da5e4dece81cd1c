/*
 * cairn: version, gate and roll out AI models.
 *
 * main() parses the global options (-C DIR, --progress/--no-progress,
 * --version, --help), finds the command in the table and runs it. Commands
 * return an exit status; errors are printed once, as one line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "print.h"

struct cli_globals cli_g = { NULL, -1, false };

static void print_warning(const char *msg, void *payload)
{
    (void)payload;
    fprintf(stderr, "cairn: warning: %s\n", cli_esc(msg));
}

int main(int argc, char **argv)
{
    const struct cli_command *cmd;
    int i;

    cairn_set_warn_handler(print_warning, NULL);
    cli_g.dir = getenv("CAIRN_DIR");
    cli_g.color = isatty(STDOUT_FILENO) && !getenv("NO_COLOR");

    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-C")) {
            if (++i >= argc)
                return cli_usage(NULL, "option '-C' needs a directory");
            cli_g.dir = argv[i];
        } else if (!strncmp(a, "-C", 2)) {
            cli_g.dir = a + 2;
        } else if (!strcmp(a, "--progress")) {
            cli_g.progress = 1;
        } else if (!strcmp(a, "--no-progress")) {
            cli_g.progress = 0;
        } else if (!strcmp(a, "--version")) {
            return cli_find("version")->run(1, (char *[]){ "version", NULL });
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            return cli_print_help(NULL);
        } else {
            return cli_usage(NULL, "unknown option '%s'", a);
        }
    }
    if (i >= argc) {
        cli_print_help(NULL);
        return EXIT_USAGE;
    }
    if (!(cmd = cli_find(argv[i])))
        return cli_usage(NULL, "'%s' is not a cairn command", argv[i]);
    /* Per-command --progress/--no-progress are accepted anywhere. */
    for (int j = i + 1; j < argc; j++) {
        if (!strcmp(argv[j], "--"))
            break;
        if (!strcmp(argv[j], "--progress") || !strcmp(argv[j], "--no-progress")) {
            cli_g.progress = argv[j][2] == 'p';
            memmove(&argv[j], &argv[j + 1], (size_t)(argc - j) * sizeof(*argv));
            argc--;
            j--;
        }
    }
    if (cli_help_requested(cmd, argc - i, argv + i))
        return EXIT_OK;
    return cmd->run(argc - i, argv + i);
}
