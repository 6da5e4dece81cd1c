/* Unit tests for lib/repo/oidset.c: membership through growth. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "repo/oidset.h"
#include "util/hash.h"

static void test_add_has(void **state)
{
    struct cairn_oidset s = { 0 };
    cairn_oid id;
    (void)state;
    for (int i = 0; i < 20000; i++) {
        cairn_hash(&id, &i, sizeof(i));
        assert_int_equal(cairn_oidset_add(&s, &id), 1);
    }
    for (int i = 0; i < 20000; i++) {
        cairn_hash(&id, &i, sizeof(i));
        assert_int_equal(cairn_oidset_add(&s, &id), 0);
        assert_true(cairn_oidset_has(&s, &id));
    }
    for (int i = 20000; i < 20100; i++) {
        cairn_hash(&id, &i, sizeof(i));
        assert_false(cairn_oidset_has(&s, &id));
    }
    assert_int_equal(s.n, 20000);
    cairn_oidset_release(&s);
    assert_false(cairn_oidset_has(&s, &id));
    cairn_oidset_release(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_has),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
