/*
 * Output helpers shared by the commands: one-line errors, exit-code mapping,
 * help pages, human-friendly sizes and times.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <stdlib.h>

#include "cairn/repo.h"
#include "cli.h"
#include "opt.h"
#include "print.h"
#include "util/hash.h"

/*
 * Messages name paths, tensors and refs that may come from a file or a
 * remote: control characters in them are quoted (print.h), so that an
 * error never moves the cursor, rewrites the line or fakes a second one.
 */
static void put_quoted(const char *fmt, va_list ap)
{
    char small[1024], *big = NULL;
    va_list copy;
    int n;

    va_copy(copy, ap);
    n = vsnprintf(small, sizeof(small), fmt, ap);
    if (n >= (int)sizeof(small) && (big = malloc((size_t)n + 1)))
        vsnprintf(big, (size_t)n + 1, fmt, copy);
    va_end(copy);
    fputs(cli_esc(big ? big : n < 0 ? "" : small), stderr);
    free(big);
}

void cli_error(const char *fmt, ...)
{
    va_list ap;
    fputs("cairn: ", stderr);
    va_start(ap, fmt);
    put_quoted(fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

const char *cli_url_userinfo(const char *url)
{
    const char *p = strstr(url, "://");
    size_t n;
    if (!p)
        return NULL;
    p += 3;
    n = strcspn(p, "/?#");
    return memchr(p, '@', n);
}

const char cli_url_userinfo_refusal[] =
    "credentials in a URL would be stored in the registry; give them in AWS_ACCESS_KEY_ID and"
    " AWS_SECRET_ACCESS_KEY or an AWS_PROFILE instead";

int cli_exit_code(int error)
{
    switch (error) {
    case 0:
        return EXIT_OK;
    case CAIRN_EINVALID:
    case CAIRN_EAMBIGUOUS:
        return EXIT_USAGE;
    case CAIRN_ECHECK:
        return EXIT_CHECK;
    default:
        return EXIT_RUNTIME;
    }
}

int cli_fail(int error)
{
    cli_error("%s", cairn_error_last());
    return cli_exit_code(error);
}

int cli_usage(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fputs("cairn: ", stderr);
    va_start(ap, fmt);
    put_quoted(fmt, ap);
    va_end(ap);
    if (cmd)
        fprintf(stderr, " (see 'cairn %s --help')\n", cmd);
    else
        fputs(" (see 'cairn --help')\n", stderr);
    return EXIT_USAGE;
}

int cli_print_help(const char *name)
{
    if (name) {
        const struct cli_command *c = cli_find(name);
        if (!c)
            return cli_usage(NULL, "'%s' is not a cairn command", name);
        cli_print_command_help(c);
        return EXIT_OK;
    }
    printf(
        "usage: cairn [-C DIR] [--progress|--no-progress] COMMAND [ARGS]\n\n"
        "cairn versions, gates and rolls out AI models.\n\ncommands:\n");
    for (const struct cli_command *c = cli_commands; c->name; c++)
        printf("  %-14s %s\n", c->name, c->summary);
    printf("\nRun 'cairn help COMMAND' or 'cairn COMMAND --help' for a command's page.\n");
    return EXIT_OK;
}

void cli_print_command_help(const struct cli_command *cmd)
{
    if (cmd->subs) {
        cli_opt_print_sub_usage(stdout, cmd->name, cmd->subs);
        printf("\n%s\n", cmd->help);
        cli_opt_print_sub_options(stdout, cmd->subs);
        return;
    }
    if (!cmd->opts) {
        fputs(cmd->help, stdout);
        return;
    }
    cli_opt_print_usage(stdout, cmd->name, cmd->opts);
    printf("\n%s\n", cmd->help);
    cli_opt_print_options(stdout, cmd->opts);
}

int cli_help_requested(const struct cli_command *cmd, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--"))
            break;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            cli_print_command_help(cmd);
            return 1;
        }
    }
    return 0;
}

const char *cli_fmt_bytes(char *buf, size_t cap, unsigned long long n)
{
    static const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 5) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, cap, "%llu B", n);
    else
        snprintf(buf, cap, "%.1f %s", v, units[u]);
    return buf;
}

const char *cli_fmt_time(char *buf, size_t cap, long long ns)
{
    time_t t = (time_t)(ns / 1000000000LL);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(buf, cap, "%Y-%m-%d %H:%M:%S", &tm);
    return buf;
}

int cli_open_repo(struct cairn_repo **out)
{
    int error = cairn_repo_open(out, cli_g.dir);
    if (error < 0)
        return cli_fail(error);
    return 0;
}

void cli_print_json(void *json)
{
    json_t *j = json;
    if (!j)
        return;
    json_dumpf(j, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
    fputc('\n', stdout);
    json_decref(j);
}

const char *cli_short_id(char *buf, const cairn_oid *id)
{
    char hex[CAIRN_OID_HEXSZ + 1];
    cairn_oid_fmt(hex, id);
    memcpy(buf, hex, 12);
    buf[12] = '\0';
    return buf;
}

long cli_parse_count(const char *s)
{
    char *end;
    long v;
    if (!s || !*s)
        return -1;
    v = strtol(s, &end, 10);
    if (*end || v < 0)
        return -1;
    return v;
}

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
