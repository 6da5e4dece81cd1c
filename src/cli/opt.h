/*
 * One table of options per command, and one parser for all of them (after
 * libgit2's src/cli/opt.h and git's parse-options.h). A command declares a
 * static array of struct cli_opt ending with CLI_OPT_END; the parser, the
 * usage line and the option list of --help come from it, and so can shell
 * completion and man pages, because the table is data that needs no running
 * command.
 *
 * Rules: options may come anywhere among the arguments; "--" ends them
 * (everything after is an argument, even "--json"); "--name=value" and
 * "--name value" are the same; "-x value" for a short alias; a flag given
 * twice counts twice; an option flagged CLI_OPT_REQUIRED must be given
 * (and shows without brackets in the usage line). Errors are usage errors
 * (exit 2) with one line on stderr that says what is wrong and points to
 * --help.
 */
#ifndef CAIRN_CLI_OPT_H
#define CAIRN_CLI_OPT_H

#include <stddef.h>
#include <stdio.h>

enum cli_opt_type {
    CLI_OPT_FLAG,   /* --name: counted */
    CLI_OPT_STRING, /* --name VALUE: the last one wins */
    CLI_OPT_COUNT,  /* --name N: a non-negative integer */
    CLI_OPT_LIST,   /* --name VALUE, repeatable: every value kept in order */
    CLI_OPT_ARG,    /* a positional argument (name is its placeholder, e.g. "REF") */
    CLI_OPT_END,
};

enum {
    CLI_OPT_REQUIRED = 1, /* an ARG or option that must be given */
    CLI_OPT_REPEAT = 2,   /* an ARG that takes every remaining argument ("PATH...") */
    CLI_OPT_HIDDEN = 4,   /* parsed but left out of usage and completion */
};

struct cli_opt {
    enum cli_opt_type type;
    const char *name;       /* long name without "--", or an ARG's placeholder */
    char alias;             /* short letter, or 0 */
    const char *value_name; /* "NAME" in "--model NAME" */
    const char *help;       /* one line for the option list */
    unsigned flags;
};

#define CLI_OPTS_END                        \
    {                                       \
        CLI_OPT_END, NULL, 0, NULL, NULL, 0 \
    }

/* What the parser found for one table entry. */
struct cli_optval {
    int count;          /* how many times given (ARG: how many values) */
    const char *str;    /* STRING: the last value; ARG: the first value */
    long num;           /* COUNT */
    const char **items; /* LIST and repeatable ARG: every value (owned by the result) */
    size_t nitems;
};

#define CLI_OPTS_MAX 32

struct cli_parsed {
    struct cli_optval v[CLI_OPTS_MAX]; /* indexed like the table */
};

/*
 * Parse argv[1..argc-1] (argv[0] is the command) against `opts`. On success
 * returns 0 and fills `out` (release it with cli_parsed_release); on a usage
 * error prints the message for command `cmd` and returns EXIT_USAGE.
 * `--help` is not handled here (main answers it before the command runs).
 */
int cli_opt_parse(struct cli_parsed *out, const char *cmd, const struct cli_opt *opts, int argc,
                  char **argv);
void cli_parsed_release(struct cli_parsed *p);

/*
 * "usage: cairn CMD ARGS [--opt VALUE]..." and the option list, as --help
 * prints them, into `f`.
 */
void cli_opt_print_usage(FILE *f, const char *cmd, const struct cli_opt *opts);
void cli_opt_print_options(FILE *f, const struct cli_opt *opts);

/*
 * A command made of subcommands ("cairn data validate ...") declares one
 * table per subcommand in an array ending with CLI_SUBCOMMANDS_END; the
 * command dispatches on its first argument and parses the rest against
 * that subcommand's table.
 */
struct cli_subcommand {
    const char *name;                  /* "validate" */
    int (*run)(int argc, char **argv); /* argv[0] is the subcommand */
    const char *summary;               /* one line, heads its option list in --help */
    const struct cli_opt *opts;        /* its table */
};

#define CLI_SUBCOMMANDS_END    \
    {                          \
        NULL, NULL, NULL, NULL \
    }

/*
 * Run the subcommand named by argv[1] with argv + 1; a missing or unknown
 * one is a usage error naming every subcommand.
 */
int cli_subcommand_run(const char *cmd, const struct cli_subcommand *subs, int argc, char **argv);

/*
 * --help of a command with subcommands: one usage line per subcommand
 * ("usage: cairn CMD SUB ..." then "       cairn CMD SUB ..."), and per
 * subcommand its summary and option list.
 */
void cli_opt_print_sub_usage(FILE *f, const char *cmd, const struct cli_subcommand *subs);
void cli_opt_print_sub_options(FILE *f, const struct cli_subcommand *subs);

#endif
