/* Unit tests for lib/util/pool.c: every job runs once, wait waits, a tiny queue still works. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdatomic.h>

#include "util/pool.h"

static atomic_int counter;

static void job(void *arg)
{
    atomic_fetch_add(&counter, (int)(intptr_t)arg);
}

static void test_all_jobs_run(void **state)
{
    (void)state;
    struct cairn_pool *p;
    atomic_store(&counter, 0);
    assert_int_equal(cairn_pool_new(&p, 3, 2), 0);
    for (int i = 1; i <= 1000; i++)
        cairn_pool_submit(p, job, (void *)(intptr_t)i);
    cairn_pool_wait(p);
    assert_int_equal(atomic_load(&counter), 500500);
    for (int i = 0; i < 10; i++)
        cairn_pool_submit(p, job, (void *)(intptr_t)1);
    cairn_pool_free(p); /* finishes queued jobs */
    assert_int_equal(atomic_load(&counter), 500510);
    cairn_pool_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_jobs_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
