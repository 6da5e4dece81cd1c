/*
 * Shared declarations of the cairn command-line front end. Commands are thin:
 * parse options, call the library, print. Only src/ prints or exits.
 *
 * Exit status (SPEC §3): 0 success, 1 runtime error, 2 usage error, 3 a check
 * ran and failed.
 */
#ifndef CAIRN_CLI_H
#define CAIRN_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "cairn/common.h"

enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2, EXIT_CHECK = 3 };

struct cli_opt;
struct cli_subcommand;
struct cli_command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;               /* one line for `cairn help` */
    const char *help;                  /* the page for `cairn CMD --help` (prose only with opts) */
    const struct cli_opt *opts;        /* the option table (opt.h), or NULL */
    const struct cli_subcommand *subs; /* or one table per subcommand (opt.h), or NULL */
};

extern const struct cli_command cli_commands[];
const struct cli_command *cli_find(const char *name);

/* Global options parsed by main (before the command name). */
struct cli_globals {
    const char *dir; /* -C DIR or CAIRN_DIR */
    int progress;    /* -1 auto (stderr is a tty), 0 off, 1 on */
    bool color;
};
extern struct cli_globals cli_g;

/* Print "cairn: MSG" on stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print the library's last error and return the exit code its code maps to. */
int cli_fail(int error);
/* Print "cairn: MSG" plus a hint to --help and return EXIT_USAGE. */
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Map a library error code to an exit status. */
int cli_exit_code(int error);

/*
 * The '@' ending the userinfo (user:password@) of URL's authority, or NULL.
 * remote add and clone refuse such URLs (with cli_url_userinfo_refusal):
 * they would be stored in the registry and printed by remote list.
 */
const char *cli_url_userinfo(const char *url);
extern const char cli_url_userinfo_refusal[];

/*
 * Common option handling: returns 1 if argv asks for --help (and prints the
 * page), 0 otherwise. Every command calls it first.
 */
int cli_help_requested(const struct cli_command *cmd, int argc, char **argv);
/* A command's help page on stdout: from its table when it has one. */
void cli_print_command_help(const struct cli_command *cmd);
int cli_print_help(const char *name);

/* Human-friendly sizes ("1.5 GiB") into buf of at least 16 bytes. */
const char *cli_fmt_bytes(char *buf, size_t cap, unsigned long long n);
/* Local time "2026-11-23 14:05:09" from ns since the epoch. */
const char *cli_fmt_time(char *buf, size_t cap, long long ns);

/* Progress bar on stderr (bytes, rate, ETA) when enabled. */
struct cli_progress;
struct cli_progress *cli_progress_start(const char *what, unsigned long long total);
void cli_progress_update(struct cli_progress *p, unsigned long long done);
void cli_progress_finish(struct cli_progress *p);
/* Adapter matching the library's progress callback type. */
void cli_progress_cb(unsigned long long done, unsigned long long total, void *payload);

/* Open the repository at -C DIR / CAIRN_DIR / the cwd; prints the error and returns the exit code.
 */
struct cairn_repo;
int cli_open_repo(struct cairn_repo **out);

/* Print a JSON value (jansson json_t *) on stdout, indented, and free it. */
void cli_print_json(void *json);

/* Short id: the first 12 hex digits. buf >= 13 bytes. */
const char *cli_short_id(char *buf, const cairn_oid *id);

/* Seconds on the monotonic clock. */
double cli_now(void);

/* Parse a non-negative integer option value; returns -1 if not one. */
long cli_parse_count(const char *s);

#endif
