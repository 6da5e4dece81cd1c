/*
 * Unit tests for the table-driven option parser (src/cli/opt.c): options
 * anywhere, "--" ending them, --name=value, short aliases, repeatable
 * lists, counts, positionals (required, optional, repeated), and each
 * usage error with its message; the usage line made from the table;
 * subcommands (dispatch, their usage lines and option lists).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "../../../src/cli/cli.h"
#include "../../../src/cli/opt.h"

/* Stand-ins for src/cli/util.c: keep the last message. */
static char last[256];
int cli_usage(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    (void)cmd;
    va_start(ap, fmt);
    vsnprintf(last, sizeof(last), fmt, ap);
    va_end(ap);
    return EXIT_USAGE;
}
void cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last, sizeof(last), fmt, ap);
    va_end(ap);
}

enum { T_REF, T_PATHS, T_MODEL, T_JSON, T_COUNT, T_DATA };
static const struct cli_opt table[] = {
    [T_REF] = { CLI_OPT_ARG, "REF", 0, NULL, "the version", CLI_OPT_REQUIRED },
    [T_PATHS] = { CLI_OPT_ARG, "PATH", 0, NULL, "paths", CLI_OPT_REPEAT },
    [T_MODEL] = { CLI_OPT_STRING, "model", 'm', "NAME", "a model", 0 },
    [T_JSON] = { CLI_OPT_FLAG, "json", 0, NULL, "JSON", 0 },
    [T_COUNT] = { CLI_OPT_COUNT, "count", 'n', "N", "how many", 0 },
    [T_DATA] = { CLI_OPT_LIST, "data", 0, "REF", "datasets", 0 },
    CLI_OPTS_END,
};

static int parse(struct cli_parsed *p, int argc, const char **argv)
{
    last[0] = '\0';
    return cli_opt_parse(p, "t", table, argc, (char **)argv);
}

static void test_anywhere(void **state)
{
    struct cli_parsed p;
    const char *argv[] = { "t",         "--json", "m@v1", "a",         "-m", "x",      "b",
                           "--count=3", "--data", "d1",   "--data=d2", "--", "--json", "-" };
    (void)state;
    assert_int_equal(parse(&p, 14, argv), 0);
    assert_int_equal(p.v[T_JSON].count, 1);
    assert_string_equal(p.v[T_REF].str, "m@v1");
    assert_int_equal(p.v[T_PATHS].nitems, 4);
    assert_string_equal(p.v[T_PATHS].items[0], "a");
    assert_string_equal(p.v[T_PATHS].items[1], "b");
    assert_string_equal(p.v[T_PATHS].items[2], "--json"); /* after "--": an argument */
    assert_string_equal(p.v[T_PATHS].items[3], "-");
    assert_string_equal(p.v[T_MODEL].str, "x");
    assert_int_equal(p.v[T_COUNT].num, 3);
    assert_int_equal(p.v[T_DATA].nitems, 2);
    assert_string_equal(p.v[T_DATA].items[1], "d2");
    cli_parsed_release(&p);
}

static void test_errors(void **state)
{
    static const struct {
        int argc;
        const char *argv[4], *message;
    } cases[] = {
        { 1, { "t" }, "missing REF" },
        { 3, { "t", "r", "--bogus" }, "unknown option '--bogus'" },
        { 3, { "t", "r", "--model" }, "--model needs a value (NAME)" },
        { 3, { "t", "r", "--json=yes" }, "--json takes no value" },
        { 4, { "t", "r", "-n", "-1" }, "--count takes a non-negative whole number, not '-1'" },
        { 3, { "t", "r", "-mx" }, "unknown option '-mx'" },
    };
    struct cli_parsed p;
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        assert_int_equal(parse(&p, cases[i].argc, (const char **)cases[i].argv), EXIT_USAGE);
        assert_string_equal(last, cases[i].message);
    }
}

static void test_too_many(void **state)
{
    static const struct cli_opt one[] = {
        { CLI_OPT_ARG, "REF", 0, NULL, NULL, CLI_OPT_REQUIRED },
        CLI_OPTS_END,
    };
    struct cli_parsed p;
    const char *argv[] = { "t", "a", "b" };
    (void)state;
    assert_int_equal(cli_opt_parse(&p, "t", one, 3, (char **)argv), EXIT_USAGE);
    assert_string_equal(last, "unexpected argument 'b'");
}

/* A required option: no brackets in the usage line, "missing" when absent. */
static void test_required_option(void **state)
{
    static const struct cli_opt req[] = {
        { CLI_OPT_ARG, "REF", 0, NULL, NULL, CLI_OPT_REQUIRED },
        { CLI_OPT_STRING, "policy", 0, "FILE", NULL, CLI_OPT_REQUIRED },
        { CLI_OPT_FLAG, "json", 0, NULL, NULL, 0 },
        CLI_OPTS_END,
    };
    char buf[128] = "";
    FILE *f = fmemopen(buf, sizeof(buf), "w");
    struct cli_parsed p;
    const char *none[] = { "t" }, *noopt[] = { "t", "r", "--json" },
               *ok[] = { "t", "--policy=x", "r" };
    (void)state;
    cli_opt_print_usage(f, "t", req);
    fclose(f);
    assert_string_equal(buf, "usage: cairn t REF --policy FILE [--json]\n");
    assert_int_equal(cli_opt_parse(&p, "t", req, 1, (char **)none), EXIT_USAGE);
    assert_string_equal(last, "missing REF"); /* the table's order */
    assert_int_equal(cli_opt_parse(&p, "t", req, 3, (char **)noopt), EXIT_USAGE);
    assert_string_equal(last, "missing --policy FILE");
    assert_int_equal(cli_opt_parse(&p, "t", req, 3, (char **)ok), 0);
    assert_string_equal(p.v[1].str, "x");
    cli_parsed_release(&p);
}

static void test_usage_wraps(void **state)
{
    static const struct cli_opt many[] = {
        { CLI_OPT_ARG, "REF", 0, NULL, NULL, CLI_OPT_REQUIRED },
        { CLI_OPT_STRING, "first-long-option", 0, "VALUE", NULL, 0 },
        { CLI_OPT_STRING, "second-long-option", 0, "VALUE", NULL, CLI_OPT_REQUIRED },
        { CLI_OPT_LIST, "third-long-option", 0, "VALUE", NULL, 0 },
        CLI_OPTS_END,
    };
    char buf[512] = "";
    FILE *f = fmemopen(buf, sizeof(buf), "w");
    (void)state;
    cli_opt_print_usage(f, "cmd", many);
    fclose(f);
    /* 76 columns fit; the next word would pass 80. */
    assert_string_equal(
        buf,
        "usage: cairn cmd REF [--first-long-option VALUE] --second-long-option VALUE\n"
        "                 [--third-long-option VALUE]...\n");
}

static void test_usage(void **state)
{
    char buf[512] = "";
    FILE *f = fmemopen(buf, sizeof(buf), "w");
    (void)state;
    cli_opt_print_usage(f, "t", table);
    fclose(f);
    assert_string_equal(buf,
                        "usage: cairn t REF [PATH...] [--model NAME] [--json] [--count N]"
                        " [--data REF]...\n");
}

/* Subcommands: dispatch on the first argument, usage lines and option lists. */
static const char *ran;
static int ran_argc;
static int run_a(int argc, char **argv)
{
    ran = argv[0];
    ran_argc = argc;
    return 0;
}

static const struct cli_opt sub_a[] = {
    { CLI_OPT_ARG, "NAME", 0, NULL, "the model", CLI_OPT_REQUIRED },
    { CLI_OPT_FLAG, "json", 0, NULL, "JSON", 0 },
    CLI_OPTS_END,
};
static const struct cli_opt sub_b[] = {
    { CLI_OPT_STRING, "reason", 0, "TEXT", "why", 0 },
    CLI_OPTS_END,
};
static const struct cli_subcommand subs[] = {
    { "set", run_a, "set one", sub_a },
    { "list", run_a, "list them", sub_b },
    { "history", run_a, "show changes", sub_b },
    CLI_SUBCOMMANDS_END,
};

static void test_subcommands(void **state)
{
    const char *ok[] = { "t", "list", "x", "--json" }, *none[] = { "t" },
               *bad[] = { "t", "rename" };
    (void)state;
    assert_int_equal(cli_subcommand_run("t", subs, 4, (char **)ok), 0);
    assert_string_equal(ran, "list");
    assert_int_equal(ran_argc, 3);
    last[0] = '\0';
    assert_int_equal(cli_subcommand_run("t", subs, 1, (char **)none), EXIT_USAGE);
    assert_string_equal(last, "give a subcommand: set, list or history");
    assert_int_equal(cli_subcommand_run("t", subs, 2, (char **)bad), EXIT_USAGE);
    assert_string_equal(last, "unknown subcommand 'rename' (expected set, list or history)");
}

static void test_sub_help(void **state)
{
    char buf[512] = "";
    FILE *f = fmemopen(buf, sizeof(buf), "w");
    (void)state;
    cli_opt_print_sub_usage(f, "t", subs);
    cli_opt_print_sub_options(f, subs);
    fclose(f);
    assert_string_equal(buf,
                        "usage: cairn t set NAME [--json]\n"
                        "       cairn t list [--reason TEXT]\n"
                        "       cairn t history [--reason TEXT]\n"
                        "set: set one\n"
                        "  NAME                   the model\n"
                        "  --json                 JSON\n"
                        "\n"
                        "list: list them\n"
                        "  --reason TEXT          why\n"
                        "\n"
                        "history: show changes\n"
                        "  --reason TEXT          why\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_anywhere),    cmocka_unit_test(test_errors),
        cmocka_unit_test(test_too_many),    cmocka_unit_test(test_required_option),
        cmocka_unit_test(test_usage),       cmocka_unit_test(test_usage_wraps),
        cmocka_unit_test(test_subcommands), cmocka_unit_test(test_sub_help),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
