#include <errno.h>
/* Unit tests for lib/util/error.c: the per-thread error slot. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "cairn/common.h"

/* Wrapping the previous message must not read the slot while writing it. */
static void test_set_with_last_as_argument(void **state)
{
    (void)state;
    cairn_error_set(CAIRN_EINVALID, "path 'a/../b' contains '..'");
    assert_int_equal(
        cairn_error_set(CAIRN_ECORRUPT, "unsafe path in manifest: %s", cairn_error_last()),
        CAIRN_ECORRUPT);
    assert_string_equal(cairn_error_last(), "unsafe path in manifest: path 'a/../b' contains '..'");
    assert_int_equal(cairn_error_last_code(), CAIRN_ECORRUPT);
}

static void test_set_errno_with_last_as_argument(void **state)
{
    (void)state;
    cairn_error_set(CAIRN_ERROR, "first");
    errno = ENOENT;
    cairn_error_set_errno(CAIRN_ERROR, "second (%s)", cairn_error_last());
    assert_string_equal(cairn_error_last(), "second (first): No such file or directory");
}

static void test_long_message_is_cut(void **state)
{
    (void)state;
    char big[3000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    cairn_error_set(CAIRN_EINVALID, "%s", big);
    cairn_error_set(CAIRN_EINVALID, "again: %s", cairn_error_last());
    assert_memory_equal(cairn_error_last(), "again: xxx", 10);
    assert_true(strlen(cairn_error_last()) < sizeof(big));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_with_last_as_argument),
        cmocka_unit_test(test_set_errno_with_last_as_argument),
        cmocka_unit_test(test_long_message_is_cut),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
