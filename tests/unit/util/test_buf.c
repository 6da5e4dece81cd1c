/* Unit tests for lib/util/buf.c: growth, limits, encoders and the bounded reader. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/common.h"
#include "util/buf.h"

static void test_put_and_printf(void **state)
{
    (void)state;
    struct cairn_buf b = CAIRN_BUF_INIT;
    assert_int_equal(cairn_buf_puts(&b, "abc"), 0);
    assert_int_equal(cairn_buf_printf(&b, "-%d-%s", 42, "x"), 0);
    assert_string_equal(b.ptr, "abc-42-x");
    assert_int_equal(b.len, 8);
    cairn_buf_clear(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.ptr, "");
    cairn_buf_release(&b);
    cairn_buf_release(NULL);
}

static void test_limit(void **state)
{
    (void)state;
    struct cairn_buf b;
    char big[100] = { 0 };
    cairn_buf_init(&b, 64);
    assert_int_equal(cairn_buf_put(&b, big, 64), 0);
    assert_int_equal(cairn_buf_put(&b, big, 1), CAIRN_ENOMEM);
    assert_int_equal(b.len, 64);
    assert_int_equal(cairn_buf_grow(&b, SIZE_MAX), CAIRN_ENOMEM);
    cairn_buf_release(&b);
}

static void test_varint_roundtrip(void **state)
{
    (void)state;
    uint64_t vals[] = { 0, 1, 127, 128, 300, 1ULL << 32, UINT64_MAX };
    struct cairn_buf b = CAIRN_BUF_INIT;
    struct cairn_reader r;
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++)
        assert_int_equal(cairn_buf_put_varint(&b, vals[i]), 0);
    assert_int_equal(cairn_buf_put_u32le(&b, 0xdeadbeef), 0);
    assert_int_equal(cairn_buf_put_u64le(&b, 0x0102030405060708ULL), 0);
    cairn_reader_init(&r, b.ptr, b.len);
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        uint64_t v;
        assert_int_equal(cairn_reader_varint(&r, &v), 0);
        assert_true(v == vals[i]);
    }
    uint32_t u32;
    uint64_t u64;
    assert_int_equal(cairn_reader_u32le(&r, &u32), 0);
    assert_true(u32 == 0xdeadbeef);
    assert_int_equal(cairn_reader_u64le(&r, &u64), 0);
    assert_true(u64 == 0x0102030405060708ULL);
    /* Past the end: every read fails and the error sticks. */
    assert_int_equal(cairn_reader_u8(&r, (uint8_t *)&u32), -1);
    assert_int_equal(r.err, 1);
    cairn_buf_release(&b);
}

static void test_reader_truncated_varint(void **state)
{
    (void)state;
    const unsigned char bad[] = { 0x80, 0x80, 0x80 };
    const unsigned char overlong[11] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                         0xff, 0xff, 0xff, 0xff, 0x01 };
    struct cairn_reader r;
    uint64_t v;
    const void *p;
    cairn_reader_init(&r, bad, sizeof(bad));
    assert_int_equal(cairn_reader_varint(&r, &v), -1);
    cairn_reader_init(&r, overlong, sizeof(overlong));
    assert_int_equal(cairn_reader_varint(&r, &v), -1);
    cairn_reader_init(&r, bad, sizeof(bad));
    assert_int_equal(cairn_reader_bytes(&r, &p, 4), -1);
}

static void test_detach(void **state)
{
    (void)state;
    struct cairn_buf b = CAIRN_BUF_INIT;
    size_t len;
    char *s;
    cairn_buf_puts(&b, "owned");
    s = cairn_buf_detach(&b, &len);
    assert_string_equal(s, "owned");
    assert_int_equal(len, 5);
    assert_null(b.ptr);
    free(s);
}

static void test_array_grow(void **state)
{
    struct pair {
        int a;
        double b;
    } *v = NULL;
    size_t n = 0, cap = 0;
    char **huge = NULL;
    size_t hcap = 0;
    (void)state;

    for (int i = 0; i < 1000; i++) {
        assert_int_equal(CAIRN_ARRAY_GROW(v, cap, n), 0);
        assert_true(cap > n);
        v[n].a = i;
        v[n++].b = i / 2.0;
    }
    assert_true(cap >= 1000 && cap <= 2048);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(v[i].a, i);
    /* Room already: nothing moves. */
    {
        struct pair *before = v;
        size_t c = cap;
        assert_int_equal(CAIRN_ARRAY_GROW(v, cap, 10), 0);
        assert_ptr_equal(v, before);
        assert_int_equal(cap, c);
    }
    /* A size that would overflow fails, leaving the array as it was. */
    assert_int_equal(cairn_array_grow(&huge, &hcap, SIZE_MAX / 4, 64), CAIRN_ENOMEM);
    assert_null(huge);
    assert_int_equal(hcap, 0);
    free(v);
}

static void test_utf8_valid(void **state)
{
    (void)state;
    assert_true(cairn_utf8_valid("", 0));
    assert_true(cairn_utf8_valid("plain/a.bin", 11));
    assert_true(cairn_utf8_valid("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14));
    assert_false(cairn_utf8_valid("caf\xe9", 4));          /* Latin-1 */
    assert_false(cairn_utf8_valid("\xc0\xaf", 2));         /* overlong '/' */
    assert_false(cairn_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
    assert_false(cairn_utf8_valid("\xf4\x90\x80\x80", 4)); /* past U+10FFFF */
    assert_false(cairn_utf8_valid("\xe2\x82", 2));         /* truncated */
    assert_false(cairn_utf8_valid("a\0b", 3));             /* NUL */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_and_printf),   cmocka_unit_test(test_limit),
        cmocka_unit_test(test_varint_roundtrip), cmocka_unit_test(test_reader_truncated_varint),
        cmocka_unit_test(test_detach),           cmocka_unit_test(test_array_grow),
        cmocka_unit_test(test_utf8_valid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
