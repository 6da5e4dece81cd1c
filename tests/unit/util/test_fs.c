/* Unit tests for lib/util/fs.c: atomic writes, bounded reads, path validation, locks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cairn/common.h"
#include "util/fs.h"

static char dir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/cairn-test-fs-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return cairn_fs_rm_rf(dir);
}

static void test_atomic_write_and_read(void **state)
{
    (void)state;
    struct cairn_buf path = CAIRN_BUF_INIT, got = CAIRN_BUF_INIT;
    struct stat st;
    assert_int_equal(cairn_fs_join(&path, dir, "a/b/c"), 0);
    assert_int_equal(cairn_fs_mkdir_p(path.ptr), 0);
    assert_int_equal(cairn_fs_mkdir_p(path.ptr), 0); /* exists: fine */
    assert_int_equal(cairn_fs_join(&path, dir, "a/b/c/file"), 0);
    assert_int_equal(cairn_fs_write_atomic(path.ptr, "hello", 5, 0600), 0);
    assert_int_equal(stat(path.ptr, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(cairn_fs_read_file(&got, path.ptr, 100), 0);
    assert_string_equal(got.ptr, "hello");
    cairn_buf_clear(&got);
    assert_int_equal(cairn_fs_read_file(&got, path.ptr, 4), CAIRN_EINVALID);
    cairn_buf_clear(&got);
    assert_int_equal(cairn_fs_read_file(&got, "/nonexistent/x", 4), CAIRN_ENOTFOUND);
    assert_non_null(strstr(cairn_error_last(), "No such file"));
    cairn_buf_clear(&got);
    assert_int_equal(cairn_fs_read_file(&got, dir, 4), CAIRN_EINVALID);
    cairn_buf_release(&path);
    cairn_buf_release(&got);
}

static void test_path_valid(void **state)
{
    /* Paths the rule takes, then paths it refuses (docs/remotes.md). */
    static const char *const good[] = {
        "model.safetensors",
        "a/b/c.bin",
        "..data/x",
        ".cairn-tmp.1/x",
        ".gitignore",
        ".github/workflows/ci.yml",
        "caf\xc3\xa9/\xe6\xa8\xa1\xe5\x9e\x8b",
    };
    static const char *const bad[] = {
        "",
        "/etc/passwd",
        "../x",
        "a/../x",
        "a/./x",
        "a//x",
        "a/",
        "a\\b",
        /* reserved components at any depth, in any case */
        ".cairn/config",
        "a/.git/hooks/post-checkout",
        "a/.GiT",
        ".CAIRN/x",
        /* control characters (C0, DEL, C1) and text that is not UTF-8 */
        "a\nb",
        "a\x1b[31m",
        "del\x7f",
        "c1\xc2\x9b",
        "bad\xff",
        "overlong\xc0\xaf",
        "surrogate\xed\xa0\x80",
    };
    char longc[300], longp[CAIRN_PATH_MAX + 2];
    (void)state;

    for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++)
        assert_int_equal(cairn_fs_path_valid(good[i]), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
        assert_int_equal(cairn_fs_path_valid(bad[i]), CAIRN_EINVALID);
    assert_true(cairn_fs_reserved_name(".Git"));
    assert_false(cairn_fs_reserved_name(".github"));
    memset(longc, 'x', 256);
    longc[256] = '\0';
    assert_int_equal(cairn_fs_path_valid(longc), CAIRN_EINVALID);
    longc[255] = '\0';
    assert_int_equal(cairn_fs_path_valid(longc), 0);
    for (size_t i = 0; i < sizeof(longp) - 1; i++)
        longp[i] = (i % 100 == 99) ? '/' : 'y';
    longp[sizeof(longp) - 1] = '\0';
    assert_int_equal(cairn_fs_path_valid(longp), CAIRN_EINVALID);
}

static void test_lock(void **state)
{
    (void)state;
    struct cairn_buf path = CAIRN_BUF_INIT;
    int a, b;
    cairn_fs_join(&path, dir, "lock");
    assert_int_equal(cairn_fs_lock(&a, path.ptr, 1, 1), 0);
    /* flock locks are per open file description: a second open conflicts. */
    assert_int_equal(cairn_fs_lock(&b, path.ptr, 0, 1), CAIRN_ELOCKED);
    cairn_fs_unlock(a);
    assert_int_equal(cairn_fs_lock(&a, path.ptr, 0, 1), 0);
    assert_int_equal(cairn_fs_lock(&b, path.ptr, 0, 1), 0);
    cairn_fs_unlock(a);
    cairn_fs_unlock(b);
    cairn_buf_release(&path);
}

static void test_mkdtemp(void **state)
{
    (void)state;
    struct cairn_buf a = CAIRN_BUF_INIT, b = CAIRN_BUF_INIT;
    struct stat st;
    assert_int_equal(cairn_fs_mkdtemp(&a, dir, "x"), 0);
    assert_int_equal(cairn_fs_mkdtemp(&b, dir, "x"), 0);
    assert_true(strncmp(a.ptr, dir, strlen(dir)) == 0);
    assert_non_null(strstr(a.ptr, "/x-"));
    assert_string_not_equal(a.ptr, b.ptr);
    assert_int_equal(stat(a.ptr, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(cairn_fs_mkdtemp(&a, "/nonexistent-cairn-dir", "x"), CAIRN_ERROR);
    assert_non_null(strstr(cairn_error_last(), "/nonexistent-cairn-dir"));
    cairn_buf_release(&a);
    cairn_buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_atomic_write_and_read),
        cmocka_unit_test(test_path_valid),
        cmocka_unit_test(test_lock),
        cmocka_unit_test(test_mkdtemp),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
