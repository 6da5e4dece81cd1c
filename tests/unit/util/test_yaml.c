/* Unit tests for lib/util/yaml.c: tree shape, positions, limits, hostile input, conversions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/common.h"
#include "util/buf.h"
#include "util/yaml.h"

static struct cairn_yaml_doc *parse_ok(const char *text)
{
    struct cairn_yaml_doc *doc = NULL;
    int error = cairn_yaml_parse(&doc, "t.yaml", text, strlen(text), NULL);
    if (error < 0)
        fail_msg("unexpected error: %s", cairn_error_last());
    return doc;
}

static void expect_error(const char *text, const struct cairn_yaml_limits *lim, const char *msg)
{
    struct cairn_yaml_doc *doc = (struct cairn_yaml_doc *)0x1;
    assert_int_equal(cairn_yaml_parse(&doc, "t.yaml", text, strlen(text), lim), CAIRN_EINVALID);
    assert_null(doc);
    if (strstr(cairn_error_last(), msg) == NULL)
        fail_msg("expected '%s' in '%s'", msg, cairn_error_last());
}

static void test_tree(void **state)
{
    (void)state;
    struct cairn_yaml_doc *doc = parse_ok(
        "checks:\n"
        "  - metric: accuracy\n"
        "    min: 0.9\n"
        "  - signature: \"required\"\n"
        "name: x\n");
    const struct cairn_yaml_node *root = cairn_yaml_root(doc), *checks, *c0, *v;
    assert_non_null(root);
    assert_int_equal(root->type, CAIRN_YAML_MAP);
    assert_int_equal(root->count, 2);
    assert_string_equal(root->keys[0]->str, "checks");
    assert_string_equal(root->keys[1]->str, "name");
    checks = cairn_yaml_map_get(root, "checks");
    assert_int_equal(checks->type, CAIRN_YAML_SEQ);
    assert_int_equal(checks->count, 2);
    c0 = checks->items[0];
    assert_int_equal(c0->line, 2);
    assert_int_equal(c0->col, 5);
    v = cairn_yaml_map_get(c0, "min");
    assert_int_equal(v->line, 3);
    assert_int_equal(v->col, 10);
    assert_false(v->quoted);
    assert_int_equal(cairn_yaml_map_key(c0, "min")->col, 5);
    v = cairn_yaml_map_get(checks->items[1], "signature");
    assert_true(v->quoted);
    assert_string_equal(v->str, "required");
    assert_null(cairn_yaml_map_get(root, "nope"));
    assert_null(cairn_yaml_map_get(checks, "checks"));
    assert_string_equal(cairn_yaml_name(doc), "t.yaml");
    cairn_yaml_doc_free(doc);
    cairn_yaml_doc_free(NULL);
}

static void test_empty_and_flow(void **state)
{
    (void)state;
    struct cairn_yaml_doc *doc = parse_ok("");
    assert_null(cairn_yaml_root(doc));
    cairn_yaml_doc_free(doc);
    doc = parse_ok("# only a comment\n");
    assert_null(cairn_yaml_root(doc));
    cairn_yaml_doc_free(doc);
    doc = parse_ok("{a: [1, 2, {b: ~}], c: ''}");
    const struct cairn_yaml_node *root = cairn_yaml_root(doc);
    assert_int_equal(cairn_yaml_map_get(root, "a")->count, 3);
    assert_true(
        cairn_yaml_is_null(cairn_yaml_map_get(cairn_yaml_map_get(root, "a")->items[2], "b")));
    assert_false(cairn_yaml_is_null(cairn_yaml_map_get(root, "c")));
    cairn_yaml_doc_free(doc);
}

static void test_syntax_error_position(void **state)
{
    (void)state;
    /* Bad indentation on line 3. */
    expect_error("a: 1\nb:\n  - x\n - y\n", NULL, "t.yaml:4:");
    expect_error("a: [1, 2\n", NULL, "t.yaml:2:1:");
    expect_error("a: \"unterminated\n", NULL, "t.yaml:");
}

static void test_duplicates_aliases_docs(void **state)
{
    (void)state;
    expect_error("a: 1\nb: 2\na: 3\n", NULL, "t.yaml:3:1: duplicate key 'a' (first at line 1)");
    expect_error("a: &x 1\nb: *x\n", NULL, "t.yaml:2:4: aliases are not supported");
    expect_error("a: 1\n---\nb: 2\n", NULL, "t.yaml:2:1: more than one document");
    expect_error("? [a]\n: 1\n", NULL, "t.yaml:1:3: mapping keys must be scalars");
}

static void test_limits(void **state)
{
    (void)state;
    struct cairn_yaml_limits lim = { .max_depth = 4, .max_nodes = 8, .max_bytes = 64 };
    struct cairn_yaml_doc *doc = NULL;
    expect_error("[[[[[1]]]]]", &lim, "t.yaml:1:5: nesting deeper than 4 levels");
    expect_error("[1, 2, 3, 4, 5, 6, 7, 8, 9]", &lim, "too many nodes (limit 8)");
    expect_error("a: 0123456789012345678901234567890123456789012345678901234567890123456789", &lim,
                 "t.yaml: larger than 64 bytes");
    /* Default depth limit: deep nesting fails cleanly instead of using stack. */
    struct cairn_buf b = CAIRN_BUF_INIT;
    for (int i = 0; i < 5000; i++)
        cairn_buf_putc(&b, '[');
    assert_int_equal(cairn_yaml_parse(&doc, "deep", b.ptr, b.len, NULL), CAIRN_EINVALID);
    assert_non_null(strstr(cairn_error_last(), "nesting deeper than 32"));
    cairn_buf_release(&b);
}

static void test_hostile_bytes(void **state)
{
    (void)state;
    static const char *inputs[] = {
        "\xff\xfe\x00", "a: \x01\n", "\"\\",    "{",          "]",
        "- - - - -",    ":",         "a: b: c", "!!binary ~", "%YAML 9.9\n---\n"
    };
    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        struct cairn_yaml_doc *doc = NULL;
        size_t len = i == 0 ? 3 : strlen(inputs[i]);
        int error = cairn_yaml_parse(&doc, "h", inputs[i], len, NULL);
        assert_true(error == 0 || error == CAIRN_EINVALID);
        cairn_yaml_doc_free(doc);
    }
}

static void test_check_keys(void **state)
{
    (void)state;
    static const char *const allowed[] = { "metric", "min", "max", NULL };
    struct cairn_yaml_doc *doc = parse_ok("metric: a\nmin: 1\n  \nmaxx: 2\n");
    assert_int_equal(cairn_yaml_check_keys(cairn_yaml_root(doc), allowed), CAIRN_EINVALID);
    assert_string_equal(cairn_error_last(),
                        "t.yaml:4:1: unknown key 'maxx' (expected one of: metric, min, max)");
    cairn_yaml_doc_free(doc);
    doc = parse_ok("[1]");
    assert_int_equal(cairn_yaml_check_keys(cairn_yaml_root(doc), allowed), CAIRN_EINVALID);
    assert_string_equal(cairn_error_last(), "t.yaml:1:1: expected a mapping, found a sequence");
    cairn_yaml_doc_free(doc);
}

static void test_scalars(void **state)
{
    (void)state;
    struct cairn_yaml_doc *doc = parse_ok(
        "a: 0.9\nb: -1e3\nc: '0.9'\nd: .nan\ne: 1e999\nf: 42\n"
        "g: 99999999999999999999\nh: yes\ni: FALSE\nj: maybe\n"
        "k: [1]\nl: 0x10\n");
    const struct cairn_yaml_node *r = cairn_yaml_root(doc);
    double d;
    long long ll;
    bool bo;
    const char *s;
    assert_int_equal(cairn_yaml_double(&d, cairn_yaml_map_get(r, "a")), 0);
    assert_true(d == 0.9);
    assert_int_equal(cairn_yaml_double(&d, cairn_yaml_map_get(r, "b")), 0);
    assert_true(d == -1000);
    assert_int_equal(cairn_yaml_double(&d, cairn_yaml_map_get(r, "c")), CAIRN_EINVALID);
    assert_string_equal(cairn_error_last(), "t.yaml:3:4: expected a number, found a quoted string");
    assert_int_equal(cairn_yaml_double(&d, cairn_yaml_map_get(r, "d")), CAIRN_EINVALID);
    assert_int_equal(cairn_yaml_double(&d, cairn_yaml_map_get(r, "e")), CAIRN_EINVALID);
    assert_int_equal(cairn_yaml_double(&d, cairn_yaml_map_get(r, "k")), CAIRN_EINVALID);
    assert_string_equal(cairn_error_last(), "t.yaml:11:4: expected a number, found sequence");
    assert_int_equal(cairn_yaml_double(&d, cairn_yaml_map_get(r, "l")), CAIRN_EINVALID);
    assert_int_equal(cairn_yaml_int(&ll, cairn_yaml_map_get(r, "f")), 0);
    assert_int_equal(ll, 42);
    assert_int_equal(cairn_yaml_int(&ll, cairn_yaml_map_get(r, "a")), CAIRN_EINVALID);
    assert_int_equal(cairn_yaml_int(&ll, cairn_yaml_map_get(r, "g")), CAIRN_EINVALID);
    assert_non_null(strstr(cairn_error_last(), "out of range"));
    assert_int_equal(cairn_yaml_int(&ll, cairn_yaml_map_get(r, "k")), CAIRN_EINVALID);
    assert_int_equal(cairn_yaml_bool(&bo, cairn_yaml_map_get(r, "h")), 0);
    assert_true(bo);
    assert_int_equal(cairn_yaml_bool(&bo, cairn_yaml_map_get(r, "i")), 0);
    assert_false(bo);
    assert_int_equal(cairn_yaml_bool(&bo, cairn_yaml_map_get(r, "j")), CAIRN_EINVALID);
    assert_int_equal(cairn_yaml_str(&s, cairn_yaml_map_get(r, "j")), 0);
    assert_string_equal(s, "maybe");
    assert_int_equal(cairn_yaml_str(&s, cairn_yaml_map_get(r, "k")), CAIRN_EINVALID);
    cairn_yaml_doc_free(doc);
}

static void test_durations(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        uint64_t ms;
    } ok[] = { { "500ms", 500 },   { "30s", 30000 },        { "5m", 300000 },   { "2h", 7200000 },
               { "1d", 86400000 }, { "1.5s", 1500 },        { "1m30s", 90000 }, { "0", 0 },
               { "0.0001s", 0 },   { "1h1m1s1ms", 3661001 } };
    static const char *bad[] = { "",    "30",   "s",  "-1s",  "5x",           "1e999s",
                                 "5 m", "1.s5", "ms", "30sm", "999999999999d" };
    uint64_t ms;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        assert_int_equal(cairn_parse_duration_ms(&ms, ok[i].s), 0);
        assert_true(ms == ok[i].ms);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (cairn_parse_duration_ms(&ms, bad[i]) != CAIRN_EINVALID)
            fail_msg("'%s' accepted", bad[i]);

    struct cairn_yaml_doc *doc = parse_ok("t: 30s\nu: '30s'\nv: 10\n");
    const struct cairn_yaml_node *r = cairn_yaml_root(doc);
    assert_int_equal(cairn_yaml_duration_ms(&ms, cairn_yaml_map_get(r, "t")), 0);
    assert_true(ms == 30000);
    assert_int_equal(cairn_yaml_duration_ms(&ms, cairn_yaml_map_get(r, "u")), CAIRN_EINVALID);
    assert_int_equal(cairn_yaml_duration_ms(&ms, cairn_yaml_map_get(r, "v")), CAIRN_EINVALID);
    assert_string_equal(cairn_error_last(),
                        "t.yaml:3:4: expected a duration such as 500ms, 30s, 5m, 2h or 1d");
    cairn_yaml_doc_free(doc);
}

static void test_load_file(void **state)
{
    (void)state;
    struct cairn_yaml_doc *doc = NULL;
    assert_int_equal(cairn_yaml_load_file(&doc, "/nonexistent/p.yaml", NULL), CAIRN_ENOTFOUND);
    assert_null(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tree),
        cmocka_unit_test(test_empty_and_flow),
        cmocka_unit_test(test_syntax_error_position),
        cmocka_unit_test(test_duplicates_aliases_docs),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_hostile_bytes),
        cmocka_unit_test(test_check_keys),
        cmocka_unit_test(test_scalars),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_load_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
