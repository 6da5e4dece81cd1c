/*
 * The table-driven option parser of opt.h. Two passes over argv: options
 * are taken wherever they stand, everything else (and everything after
 * "--") is a positional argument, then the positionals are handed to the
 * table's ARG entries in order. Nothing is allocated but the value lists.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "opt.h"

static int add_item(struct cli_optval *v, const char *s)
{
    const char **n = realloc(v->items, (v->nitems + 1) * sizeof(*n));
    if (!n)
        return -1;
    n[v->nitems++] = s;
    v->items = n;
    return 0;
}

/* The table entry for "--name" (len bytes of it) or "-x". */
static int find_long(const struct cli_opt *opts, const char *name, size_t len)
{
    for (int i = 0; opts[i].type != CLI_OPT_END; i++)
        if (opts[i].type != CLI_OPT_ARG && strlen(opts[i].name) == len &&
            !strncmp(opts[i].name, name, len))
            return i;
    return -1;
}

static int find_short(const struct cli_opt *opts, char c)
{
    for (int i = 0; opts[i].type != CLI_OPT_END; i++)
        if (opts[i].type != CLI_OPT_ARG && opts[i].alias == c)
            return i;
    return -1;
}

static int take_value(struct cli_optval *v, const struct cli_opt *o, const char *cmd,
                      const char *value)
{
    char *end;
    switch (o->type) {
    case CLI_OPT_STRING:
        v->str = value;
        break;
    case CLI_OPT_COUNT:
        errno = 0;
        v->num = strtol(value, &end, 10);
        if (errno || end == value || *end || v->num < 0)
            return cli_usage(cmd, "--%s takes a non-negative whole number, not '%s'", o->name,
                             value);
        break;
    case CLI_OPT_LIST:
        if (add_item(v, value) < 0) {
            cli_error("out of memory");
            return EXIT_RUNTIME;
        }
        break;
    default:
        break;
    }
    v->count++;
    return 0;
}

int cli_opt_parse(struct cli_parsed *out, const char *cmd, const struct cli_opt *opts, int argc,
                  char **argv)
{
    const char **pos = NULL;
    size_t npos = 0, next = 0;
    int nopts = 0, dashdash = 0, rc = 0;

    memset(out, 0, sizeof(*out));
    while (opts[nopts].type != CLI_OPT_END)
        nopts++;
    if (nopts > CLI_OPTS_MAX) {
        cli_error("internal error: '%s' has more than %d options", cmd, CLI_OPTS_MAX);
        return EXIT_RUNTIME;
    }
    if (argc > 1 && !(pos = calloc((size_t)argc, sizeof(*pos)))) {
        cli_error("out of memory");
        return EXIT_RUNTIME;
    }
    for (int i = 1; i < argc && !rc; i++) {
        const char *a = argv[i], *value = NULL, *eq;
        int k;

        if (dashdash || a[0] != '-' || !a[1]) {
            pos[npos++] = a; /* "-" alone is an argument (stdin) */
            continue;
        }
        if (!strcmp(a, "--")) {
            dashdash = 1;
            continue;
        }
        if (a[1] == '-') {
            eq = strchr(a + 2, '=');
            k = find_long(opts, a + 2, eq ? (size_t)(eq - a - 2) : strlen(a + 2));
            if (eq)
                value = eq + 1;
        } else {
            k = a[2] ? -1 : find_short(opts, a[1]);
        }
        if (k < 0) {
            rc = cli_usage(cmd, "unknown option '%s'", a);
            break;
        }
        if (opts[k].type == CLI_OPT_FLAG) {
            if (value) {
                rc = cli_usage(cmd, "--%s takes no value", opts[k].name);
                break;
            }
            out->v[k].count++;
            continue;
        }
        if (!value) {
            if (i + 1 >= argc) {
                rc = cli_usage(cmd, "--%s needs a value (%s)", opts[k].name,
                               opts[k].value_name ? opts[k].value_name : "VALUE");
                break;
            }
            value = argv[++i];
        }
        rc = take_value(&out->v[k], &opts[k], cmd, value);
    }
    /*
     * Positionals to the ARG entries, in order; a REPEAT entry takes the
     * rest. A required option missing is reported in table order too.
     */
    for (int k = 0; k < nopts && !rc; k++) {
        struct cli_optval *v = &out->v[k];
        if (opts[k].type != CLI_OPT_ARG) {
            if (!v->count && (opts[k].flags & CLI_OPT_REQUIRED))
                rc = cli_usage(cmd, "missing --%s%s%s", opts[k].name,
                               opts[k].type == CLI_OPT_FLAG ? "" : " ",
                               opts[k].type == CLI_OPT_FLAG
                                   ? ""
                                   : (opts[k].value_name ? opts[k].value_name : "VALUE"));
            continue;
        }
        while (next < npos && (v->count == 0 || (opts[k].flags & CLI_OPT_REPEAT))) {
            if (!v->str)
                v->str = pos[next];
            if (add_item(v, pos[next++]) < 0) {
                cli_error("out of memory");
                rc = EXIT_RUNTIME;
                break;
            }
            v->count++;
        }
        if (!rc && !v->count && (opts[k].flags & CLI_OPT_REQUIRED))
            rc = cli_usage(cmd, "missing %s%s", opts[k].name,
                           opts[k].flags & CLI_OPT_REPEAT ? " (one or more)" : "");
    }
    if (!rc && next < npos)
        rc = cli_usage(cmd, "unexpected argument '%s'", pos[next]);
    free(pos);
    if (rc)
        cli_parsed_release(out);
    return rc;
}

void cli_parsed_release(struct cli_parsed *p)
{
    for (int i = 0; i < CLI_OPTS_MAX; i++)
        free(p->v[i].items);
    memset(p, 0, sizeof(*p));
}

/* "--model NAME", "-n, --count N", "PATH..." */
static int opt_label(char *buf, size_t cap, const struct cli_opt *o)
{
    if (o->type == CLI_OPT_ARG)
        return snprintf(buf, cap, "%s%s", o->name, o->flags & CLI_OPT_REPEAT ? "..." : "");
    return snprintf(buf, cap, "%s%s%s--%s%s%s", o->alias ? "-" : "",
                    o->alias ? (char[2]){ o->alias, 0 } : "", o->alias ? ", " : "", o->name,
                    o->type == CLI_OPT_FLAG ? "" : " ",
                    o->type == CLI_OPT_FLAG ? "" : (o->value_name ? o->value_name : "VALUE"));
}

/* One word of a usage line: "REF", "[PATH...]", "--to ALIAS", "[--json]", "[--data REF]...". */
static void usage_word(char *buf, size_t cap, const struct cli_opt *o)
{
    int req = (o->flags & CLI_OPT_REQUIRED) != 0;
    char label[96];

    if (o->type == CLI_OPT_ARG) {
        opt_label(label, sizeof(label), o);
        snprintf(buf, cap, req ? "%s" : "[%s]", label);
        return;
    }
    snprintf(label, sizeof(label), "--%s%s%s", o->name, o->type == CLI_OPT_FLAG ? "" : " ",
             o->type == CLI_OPT_FLAG ? "" : (o->value_name ? o->value_name : "VALUE"));
    snprintf(buf, cap, req ? "%s%s" : "[%s]%s", label, o->type == CLI_OPT_LIST ? "..." : "");
}

/*
 * One usage line: "LEADcairn CMD[ SUB] ARGS [--opt VALUE]...", arguments
 * first, wrapped at 80 columns with continuation lines under the first
 * argument.
 */
static void usage_line(FILE *f, const char *lead, const char *cmd, const char *sub,
                       const struct cli_opt *opts)
{
    int col = fprintf(f, "%scairn %s%s%s", lead, cmd, sub ? " " : "", sub ? sub : "");
    int indent = col + 1;

    for (int pass = 0; pass < 2; pass++)
        for (const struct cli_opt *o = opts; o->type != CLI_OPT_END; o++) {
            char word[160];
            if ((o->flags & CLI_OPT_HIDDEN) || (pass == 0) != (o->type == CLI_OPT_ARG))
                continue;
            usage_word(word, sizeof(word), o);
            if (col + 1 + (int)strlen(word) > 80 && col > indent)
                col = fprintf(f, "\n%*s%s", indent, "", word) - 1;
            else
                col += fprintf(f, " %s", word);
        }
    fputc('\n', f);
}

void cli_opt_print_usage(FILE *f, const char *cmd, const struct cli_opt *opts)
{
    usage_line(f, "usage: ", cmd, NULL, opts);
}

void cli_opt_print_options(FILE *f, const struct cli_opt *opts)
{
    for (const struct cli_opt *o = opts; o->type != CLI_OPT_END; o++) {
        char label[96];
        if ((o->flags & CLI_OPT_HIDDEN) || !o->help)
            continue;
        opt_label(label, sizeof(label), o);
        fprintf(f, "  %-22s %s\n", label, o->help);
    }
}

void cli_opt_print_sub_usage(FILE *f, const char *cmd, const struct cli_subcommand *subs)
{
    for (const struct cli_subcommand *s = subs; s->name; s++)
        usage_line(f, s == subs ? "usage: " : "       ", cmd, s->name, s->opts);
}

void cli_opt_print_sub_options(FILE *f, const struct cli_subcommand *subs)
{
    for (const struct cli_subcommand *s = subs; s->name; s++) {
        fprintf(f, "%s%s: %s\n", s == subs ? "" : "\n", s->name, s->summary);
        cli_opt_print_options(f, s->opts);
    }
}

int cli_subcommand_run(const char *cmd, const struct cli_subcommand *subs, int argc, char **argv)
{
    char names[256];
    size_t n = 0;
    int count = 0;

    for (const struct cli_subcommand *s = subs; s->name; s++) {
        if (argc >= 2 && !strcmp(argv[1], s->name))
            return s->run(argc - 1, argv + 1);
        count++;
    }
    /* "a, b or c" */
    names[0] = '\0';
    for (int i = 0; i < count && n < sizeof(names); i++) {
        int w = snprintf(names + n, sizeof(names) - n, "%s%s",
                         i == 0 ? "" : (i == count - 1 ? " or " : ", "), subs[i].name);
        n += w > 0 ? (size_t)w : 0;
    }
    if (argc < 2)
        return cli_usage(cmd, "give a subcommand: %s", names);
    return cli_usage(cmd, "unknown subcommand '%s' (expected %s)", argv[1], names);
}
