/*
 * Unit test for lib/repo/config.c: parsing sections, subsections, quoted
 * values and comments; errors with line numbers; set replacing or adding a
 * line while keeping comments; atomic write and reload.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cairn/config.h"
#include "util/fs.h"

static const char sample[] =
    "# cairn repository configuration\n"
    "[core]\n"
    "\tformat = 1\n"
    "\n"
    "; gates\n"
    "[alias \"production\"]\n"
    "    policy = gates/prod.yaml  \n"
    "    note = \"  spaced # kept \"\n"
    "[Alias \"staging\"]\n"
    "\tpolicy=gates/staging.yaml\r\n"
    "\tpolicy = gates/staging2.yaml\n";

static void test_parse_and_get(void **state)
{
    struct cairn_config *c = NULL;
    (void)state;
    assert_int_equal(cairn_config_parse(&c, "config", sample, strlen(sample)), 0);
    assert_string_equal(cairn_config_get(c, "core", NULL, "format"), "1");
    assert_string_equal(cairn_config_get(c, "CORE", NULL, "Format"), "1");
    assert_string_equal(cairn_config_get(c, "alias", "production", "policy"), "gates/prod.yaml");
    assert_string_equal(cairn_config_get(c, "alias", "production", "note"), "  spaced # kept ");
    /* the last of two settings wins; section names ignore case */
    assert_string_equal(cairn_config_get(c, "alias", "staging", "policy"), "gates/staging2.yaml");
    assert_null(cairn_config_get(c, "alias", "Production", "policy"));
    assert_null(cairn_config_get(c, "alias", NULL, "policy"));
    assert_null(cairn_config_get(c, "core", NULL, "missing"));
    cairn_config_free(c);
    cairn_config_free(NULL);
}

static void expect_error_n(const char *text, size_t len, const char *where)
{
    struct cairn_config *c = NULL;
    assert_int_equal(cairn_config_parse(&c, "cfg", text, len), CAIRN_EINVALID);
    assert_null(c);
    if (!strstr(cairn_error_last(), where))
        fail_msg("expected '%s' in '%s'", where, cairn_error_last());
}

static void expect_error(const char *text, const char *where)
{
    expect_error_n(text, strlen(text), where);
}

static void test_errors_name_the_line(void **state)
{
    (void)state;
    expect_error("key = 1\n", "cfg:1: key outside a section");
    expect_error("[core]\nformat 1\n", "cfg:2: expected '='");
    expect_error("[core\n", "cfg:1: expected ']'");
    expect_error("[]\n", "cfg:1: missing section name");
    expect_error("[alias production]\n", "cfg:1: expected '\"'");
    expect_error("[alias \"\"]\n", "cfg:1: bad subsection");
    expect_error("[core] junk\n", "cfg:1: unexpected text");
    expect_error("[core]\nx = \"open\n", "cfg:2: unterminated");
    expect_error("[core]\n\n= 3\n", "cfg:3:");
    expect_error_n("[core]\nx = 1\0\n", 14, "cfg:2: NUL");
}

static void test_set_keeps_comments(void **state)
{
    struct cairn_config *c = NULL;
    char *text = NULL;
    (void)state;
    assert_int_equal(cairn_config_parse(&c, "config", sample, strlen(sample)), 0);
    /* replace an existing key in place */
    assert_int_equal(cairn_config_set(c, "alias", "production", "policy", "p2.yaml"), 0);
    /* add a key to an existing section, and a new section */
    assert_int_equal(cairn_config_set(c, "core", NULL, "owner", "ml team"), 0);
    assert_int_equal(cairn_config_set(c, "alias", "canary", "policy", " padded "), 0);
    assert_int_equal(cairn_config_format(&text, c), 0);
    assert_non_null(strstr(text,
                           "# cairn repository configuration\n[core]\n\tformat = 1\n"
                           "\towner = ml team\n\n; gates\n"));
    assert_non_null(strstr(text, "[alias \"production\"]\n\tpolicy = p2.yaml\n"));
    assert_non_null(strstr(text, "[alias \"canary\"]\n\tpolicy = \" padded \"\n"));
    free(text);
    assert_string_equal(cairn_config_get(c, "alias", "canary", "policy"), " padded ");

    assert_int_equal(cairn_config_set(c, "bad section", NULL, "k", "v"), CAIRN_EINVALID);
    assert_int_equal(cairn_config_set(c, "core", "a\"b", "k", "v"), CAIRN_EINVALID);
    assert_int_equal(cairn_config_set(c, "core", NULL, "k k", "v"), CAIRN_EINVALID);
    assert_int_equal(cairn_config_set(c, "core", NULL, "k", "two\nlines"), CAIRN_EINVALID);
    cairn_config_free(c);
}

static void test_write_and_reload(void **state)
{
    char dir[] = "/tmp/cairn-config-XXXXXX", path[64];
    struct cairn_config *c = NULL, *d = NULL;
    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/config", dir);
    /* a missing file is an empty config */
    assert_int_equal(cairn_config_load(&c, path), 0);
    assert_null(cairn_config_get(c, "core", NULL, "format"));
    assert_int_equal(cairn_config_set(c, "alias", "production", "policy", "q\"uote\\d"), 0);
    assert_int_equal(cairn_config_set(c, "alias", "production", "policy", "\"x\""), 0);
    assert_int_equal(cairn_config_write(c, path), 0);
    assert_int_equal(cairn_config_load(&d, path), 0);
    assert_string_equal(cairn_config_get(d, "alias", "production", "policy"), "\"x\"");
    cairn_config_free(c);
    cairn_config_free(d);
    cairn_fs_rm_rf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_and_get),
        cmocka_unit_test(test_errors_name_the_line),
        cmocka_unit_test(test_set_keeps_comments),
        cmocka_unit_test(test_write_and_reload),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
