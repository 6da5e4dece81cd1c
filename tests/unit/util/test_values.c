/* Unit tests for lib/util/values.c: typed value sets and the flat JSON and YAML readers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cairn/common.h"
#include "cairn/values.h"
#include "util/values.h"
#include "util/buf.h"

static int parse_json(struct cairn_values *m, const char *text)
{
    return cairn_values_parse_json(m, "out", text, strlen(text));
}

static void expect_json_error(const char *text, const char *msg)
{
    struct cairn_values m;
    cairn_values_init(&m);
    assert_int_equal(parse_json(&m, text), CAIRN_EINVALID);
    assert_int_equal(m.count, 0);
    if (!strstr(cairn_error_last(), msg))
        fail_msg("input %s: expected '%s' in '%s'", text, msg, cairn_error_last());
    cairn_values_release(&m);
}

static void test_json_ok(void **state)
{
    (void)state;
    struct cairn_values m;
    const struct cairn_value *e;
    char *json;
    cairn_values_init(&m);
    assert_int_equal(parse_json(&m,
                                " {\"accuracy\": 0.91, \"n\": 1000, \"ok\": true, "
                                "\"opt\": \"adam\", \"a.b:c-d_E\": -1e-3}\n"),
                     0);
    assert_int_equal(m.count, 5);
    e = cairn_values_get(&m, "accuracy");
    assert_int_equal(e->type, CAIRN_VALUE_NUMBER);
    assert_true(e->number == 0.91);
    assert_true(cairn_values_get(&m, "n")->number == 1000);
    assert_int_equal(cairn_values_get(&m, "ok")->type, CAIRN_VALUE_BOOL);
    assert_true(cairn_values_get(&m, "ok")->boolean);
    assert_string_equal(cairn_values_get(&m, "opt")->string, "adam");
    assert_null(cairn_values_get(&m, "missing"));
    assert_int_equal(cairn_values_to_json(&json, &m), 0);
    assert_string_equal(json,
                        "{\"accuracy\":0.91000000000000003,\"n\":1000.0,\"ok\":true,"
                        "\"opt\":\"adam\",\"a.b:c-d_E\":-0.001}");
    free(json);
    cairn_values_release(&m);
    cairn_values_release(NULL);
}

static void test_json_rejects(void **state)
{
    (void)state;
    expect_json_error("{\"a\": {\"b\": 1}}", "metric 'a' is an object");
    expect_json_error("{\"a\": [1]}", "metric 'a' is an array");
    expect_json_error("{\"a\": null}", "metric 'a' is null");
    expect_json_error("{\"a\": 1, \"a\": 2}", "duplicate");
    expect_json_error("[1, 2]", "out: expected a JSON object of metrics, found an array");
    expect_json_error("{\"a\": NaN}", "out:1:");
    expect_json_error("{\"a\": 1e999}", "out:1:");
    expect_json_error("{\"a\": 99999999999999999999999}", "out:1:");
    expect_json_error("{\"bad name\": 1}", "invalid metric name 'bad name'");
    expect_json_error("{\"\": 1}", "invalid metric name ''");
    expect_json_error("{\"a\": \"x\\u0000y\"}", "out:1:");
    expect_json_error("", "out:");
    expect_json_error("not json", "out:1:");
    expect_json_error("{\"a\": 1} trailing", "out:1:");
    expect_json_error("{\"a\": 1}\n{\"b\": 2}", "out:2:");
}

static void test_json_limits(void **state)
{
    (void)state;
    struct cairn_values m;
    struct cairn_buf b = CAIRN_BUF_INIT;
    char name[200];
    cairn_values_init(&m);
    /* A 129-byte name is one too long. */
    memset(name, 'x', 129);
    name[129] = '\0';
    cairn_buf_printf(&b, "{\"%s\": 1}", name);
    assert_int_equal(parse_json(&m, b.ptr), CAIRN_EINVALID);
    name[128] = '\0';
    cairn_buf_clear(&b);
    cairn_buf_printf(&b, "{\"%s\": 1}", name);
    assert_int_equal(parse_json(&m, b.ptr), 0);
    cairn_values_release(&m);
    /* Too many entries, and too many bytes. */
    cairn_buf_clear(&b);
    cairn_buf_putc(&b, '{');
    for (int i = 0; i <= CAIRN_VALUES_MAX_COUNT; i++)
        cairn_buf_printf(&b, "%s\"m%d\": %d", i ? ", " : "", i, i);
    cairn_buf_putc(&b, '}');
    assert_int_equal(parse_json(&m, b.ptr), CAIRN_EINVALID);
    assert_non_null(strstr(cairn_error_last(), "more than 4096 metrics"));
    assert_int_equal(m.count, 0);
    cairn_buf_clear(&b);
    cairn_buf_puts(&b, "{\"s\": \"");
    for (size_t i = 0; i < CAIRN_VALUES_MAX_BYTES; i++)
        cairn_buf_putc(&b, 'a');
    cairn_buf_puts(&b, "\"}");
    assert_int_equal(parse_json(&m, b.ptr), CAIRN_EINVALID);
    assert_non_null(strstr(cairn_error_last(), "larger than"));
    /* Deep nesting is rejected without blowing the stack. */
    cairn_buf_clear(&b);
    cairn_buf_puts(&b, "{\"a\": ");
    for (int i = 0; i < 100000; i++)
        cairn_buf_putc(&b, '[');
    assert_int_equal(parse_json(&m, b.ptr), CAIRN_EINVALID);
    cairn_buf_release(&b);
    cairn_values_release(&m);
}

static void test_yaml(void **state)
{
    (void)state;
    struct cairn_values m;
    const char *ok = "accuracy: 0.9\nepochs: 10\nopt: adam\nquoted: '0.5'\nflag: false\n";
    cairn_values_init(&m);
    assert_int_equal(cairn_values_parse_yaml(&m, "p.yaml", ok, strlen(ok)), 0);
    assert_int_equal(m.count, 5);
    assert_int_equal(cairn_values_get(&m, "accuracy")->type, CAIRN_VALUE_NUMBER);
    assert_int_equal(cairn_values_get(&m, "opt")->type, CAIRN_VALUE_STRING);
    assert_int_equal(cairn_values_get(&m, "quoted")->type, CAIRN_VALUE_STRING);
    assert_string_equal(cairn_values_get(&m, "quoted")->string, "0.5");
    assert_int_equal(cairn_values_get(&m, "flag")->type, CAIRN_VALUE_BOOL);
    cairn_values_release(&m);

    static const struct {
        const char *text, *msg;
    } bad[] = {
        { "a:\n  b: 1\n", "p.yaml:2:3: metric 'a' is a mapping" },
        { "a: [1]\n", "p.yaml:1:4: metric 'a' is a sequence" },
        { "a:\n", "metric 'a' has no value" },
        { "a: 1\na: 2\n", "p.yaml:2:1: duplicate key 'a'" },
        { "a: .nan\n", "p.yaml:1:4: metric 'a' is not a finite" },
        { "a: 1e999\n", "not a finite" },
        { "bad name: 1\n", "p.yaml:1:1: invalid metric name" },
        { "- 1\n", "expected a mapping" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cairn_values_init(&m);
        assert_int_equal(cairn_values_parse_yaml(&m, "p.yaml", bad[i].text, strlen(bad[i].text)),
                         CAIRN_EINVALID);
        if (!strstr(cairn_error_last(), bad[i].msg))
            fail_msg("expected '%s' in '%s'", bad[i].msg, cairn_error_last());
        assert_int_equal(m.count, 0);
        cairn_values_release(&m);
    }
}

/* Copying, formatting and the JSON form: what registry rows, `show` and records use. */
static void test_set_format_json(void **state)
{
    struct cairn_values a, b;
    struct cairn_value v = { 0 };
    char buf[64], *text = NULL;
    json_t *j;
    (void)state;

    cairn_values_init(&a);
    cairn_values_init(&b);
    assert_int_equal(cairn_values_set_number(&a, "lr", 0.001), 0);
    assert_int_equal(cairn_values_set_string(&a, "opt", "adam"), 0);
    assert_int_equal(cairn_values_set_bool(&a, "amp", true), 0);
    for (size_t i = 0; i < a.count; i++)
        assert_int_equal(cairn_values_set(&b, &a.items[i]), 0);
    assert_int_equal(b.count, 3);
    assert_string_equal(cairn_value_format(cairn_values_get(&b, "lr"), buf, sizeof(buf)), "0.001");
    assert_string_equal(cairn_value_format(cairn_values_get(&b, "opt"), buf, sizeof(buf)), "adam");
    assert_string_equal(cairn_value_format(cairn_values_get(&b, "amp"), buf, sizeof(buf)), "true");
    /* A copy validates like any other set: a bad name is refused. */
    v.name = "bad name";
    v.type = CAIRN_VALUE_NUMBER;
    assert_int_equal(cairn_values_set(&b, &v), CAIRN_EINVALID);
    /* Replacing keeps the position. */
    assert_int_equal(cairn_values_set_number(&b, "lr", 2), 0);
    assert_string_equal(b.items[0].name, "lr");
    assert_non_null(j = cairn__values_json(&b));
    assert_true(json_is_real(json_object_get(j, "lr")));
    assert_true(json_is_true(json_object_get(j, "amp")));
    assert_string_equal(json_string_value(json_object_get(j, "opt")), "adam");
    json_decref(j);
    assert_non_null(j = cairn__values_json(NULL));
    assert_int_equal(json_object_size(j), 0);
    json_decref(j);
    assert_int_equal(cairn_values_to_json(&text, &b), 0);
    assert_string_equal(text, "{\"lr\":2.0,\"opt\":\"adam\",\"amp\":true}");
    free(text);
    cairn_values_release(&a);
    cairn_values_release(&b);
}

static void test_load_file_and_set(void **state)
{
    (void)state;
    char dir[] = "/tmp/cairn-metrics-XXXXXX", path[256];
    struct cairn_values m;
    FILE *f;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/m.yml", dir);
    f = fopen(path, "w");
    fputs("loss: 0.25\n", f);
    fclose(f);
    cairn_values_init(&m);
    assert_int_equal(cairn_values_load_file(&m, path), 0);
    assert_true(cairn_values_get(&m, "loss")->number == 0.25);
    unlink(path);
    snprintf(path, sizeof(path), "%s/m.json", dir);
    f = fopen(path, "w");
    fputs("{\"loss\": 0.5}", f);
    fclose(f);
    /* Appending a duplicate of an existing entry is refused. */
    assert_int_equal(cairn_values_load_file(&m, path), CAIRN_EINVALID);
    assert_int_equal(m.count, 1);
    /* set_* replace. */
    assert_int_equal(cairn_values_set_string(&m, "loss", "x"), 0);
    assert_int_equal(m.count, 1);
    assert_string_equal(cairn_values_get(&m, "loss")->string, "x");
    assert_int_equal(cairn_values_set_number(&m, "loss", 1.0 / 0.0), CAIRN_EINVALID);
    assert_int_equal(cairn_values_set_bool(&m, "no spaces", true), CAIRN_EINVALID);
    cairn_values_release(&m);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_ok),           cmocka_unit_test(test_json_rejects),
        cmocka_unit_test(test_json_limits),       cmocka_unit_test(test_yaml),
        cmocka_unit_test(test_load_file_and_set), cmocka_unit_test(test_set_format_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
