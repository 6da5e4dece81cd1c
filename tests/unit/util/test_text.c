/*
 * Unit tests for lib/util/text.c: UTF-8 well-formedness (overlongs,
 * surrogates, out of range, truncated sequences), control detection
 * (C0, DEL, C1) and the terminal-safe quoting, including its cut.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "util/buf.h"
#include "util/text.h"

static void test_utf8(void **state)
{
    (void)state;
    assert_true(cairn_utf8_valid("", 0));
    assert_true(cairn_utf8_valid("plain", 5));
    assert_true(cairn_utf8_valid("caf\xc3\xa9", 5));
    assert_true(cairn_utf8_valid("\xf0\x9f\x98\x80", 4));  /* U+1F600 */
    assert_true(cairn_utf8_valid("\xf4\x8f\xbf\xbf", 4));  /* U+10FFFF */
    assert_false(cairn_utf8_valid("\xf4\x90\x80\x80", 4)); /* above U+10FFFF */
    assert_false(cairn_utf8_valid("\xc0\xaf", 2));         /* overlong '/' */
    assert_false(cairn_utf8_valid("\xe0\x80\xaf", 3));     /* overlong */
    assert_false(cairn_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
    assert_false(cairn_utf8_valid("\xc3", 1));             /* truncated */
    assert_false(cairn_utf8_valid("\x80", 1));             /* lone continuation */
    assert_false(cairn_utf8_valid("\xff", 1));
    assert_false(cairn_utf8_valid("caf\xe9", 4)); /* Latin-1 */
    assert_false(cairn_utf8_valid("a\0b", 3));    /* NUL: never part of a name */
}

static void test_control(void **state)
{
    (void)state;
    assert_false(cairn_text_has_control("name.bin", 8));
    assert_true(cairn_text_has_control("a\nb", 3));
    assert_true(cairn_text_has_control("\x1b[2J", 4));
    assert_true(cairn_text_has_control("\x7f", 1));
    assert_true(cairn_text_has_control("\xc2\x9b", 2));  /* C1 CSI */
    assert_false(cairn_text_has_control("\xc2\xa0", 2)); /* NBSP is printable */
    assert_true(
        cairn_text_has_control("a\xe2\x80\xae"
                               "b",
                               5));                          /* RIGHT-TO-LEFT OVERRIDE */
    assert_true(cairn_text_has_control("\xe2\x81\xa6", 3));  /* LEFT-TO-RIGHT ISOLATE */
    assert_false(cairn_text_has_control("\xe2\x82\xac", 3)); /* EURO SIGN */
}

static void test_quote(void **state)
{
    struct cairn_buf b = CAIRN_BUF_INIT;
    char out[64], tiny[8];
    (void)state;
    assert_string_equal(cairn_text_quote(out, sizeof(out), "ok/caf\xc3\xa9"), "ok/caf\xc3\xa9");
    assert_string_equal(cairn_text_quote(out, sizeof(out), "a\nb\x1b[31m"), "a\\x0ab\\x1b[31m");
    assert_string_equal(cairn_text_quote(out, sizeof(out), "back\\slash"), "back\\\\slash");
    assert_string_equal(cairn_text_quote(out, sizeof(out), "bad\xff"), "bad\\xff");
    assert_string_equal(cairn_text_quote(out, sizeof(out), "c1\xc2\x9b"), "c1\\xc2\\x9b");
    /* Cut with "..." and never in the middle of an escape. */
    assert_string_equal(cairn_text_quote(tiny, sizeof(tiny), "abcdefghij"), "abcd...");
    assert_string_equal(cairn_text_quote(tiny, sizeof(tiny), "ab\n\n"), "ab...");
    assert_string_equal(cairn_text_quote(tiny, sizeof(tiny), "abcdefg"), "abcdefg");
    assert_string_equal(cairn_text_quote(tiny, 1, "abc"), "");
    /* Whole, into a buffer; newlines kept on request. */
    assert_int_equal(cairn_text_quote_buf(&b, "l1\nl2\x1b", true), 0);
    assert_string_equal(b.ptr, "l1\nl2\\x1b");
    assert_int_equal(cairn_text_quote_buf(&b, "l1\n\xe2\x80\xae", false), 0);
    assert_string_equal(b.ptr, "l1\\x0a\\xe2\\x80\\xae");
    cairn_buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_control),
        cmocka_unit_test(test_quote),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
