/*
 * Unit tests for lib/remote/backend.c and file.c: remote URL parsing (good
 * and hostile), key and range validation, and the file:// backend's
 * put/get/range/head/list/delete/batch semantics, including atomic
 * replacement, temp files hidden from listings and short objects.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cairn/common.h"
#include "remote/backend.h"
#include "util/buf.h"
#include "util/fs.h"

static void check_url(const char *url, const char *scheme, const char *a, const char *b)
{
    char *s = NULL, *x = NULL, *y = NULL;
    assert_int_equal(cairn_remote_parse_url(&s, &x, &y, url), 0);
    assert_string_equal(s, scheme);
    assert_string_equal(x, a);
    assert_string_equal(y, b);
    free(s);
    free(x);
    free(y);
}

static void test_parse_url(void **state)
{
    (void)state;
    check_url("s3://bucket/prefix", "s3", "bucket", "prefix/");
    check_url("s3://my.bucket-1/a/b/", "s3", "my.bucket-1", "a/b/");
    check_url("s3://bucket", "s3", "bucket", "");
    check_url("s3://bucket/", "s3", "bucket", "");
    check_url("file:///srv/remote", "file", "/srv/remote", "");
    check_url("file:///srv/remote//", "file", "/srv/remote", "");
    check_url("file:///", "file", "/", "");
}

static void test_parse_url_bad(void **state)
{
    (void)state;
    const char *bad[] = {
        "",
        "s3://",
        "s3://ab",
        "s3://Bucket/x",
        "s3://-bucket",
        "s3://bucket-",
        "s3://a..b",
        "s3://bu_cket",
        "s3://bucket/../x",
        "s3://bucket/a//b",
        "s3://bucket/./x",
        "file://relative/path",
        "file://",
        "http://host/x",
        "oci://host/repo",
        "/plain/path",
        "s3://bucket\n/x",
        "S3://bucket",
    };
    char *s, *a, *b;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(cairn_remote_parse_url(&s, &a, &b, bad[i]), CAIRN_EINVALID);
        assert_null(s);
        assert_null(a);
        assert_null(b);
    }
    assert_int_equal(cairn_remote_parse_url(&s, &a, &b, NULL), CAIRN_EINVALID);
    /* The message says what is allowed. */
    assert_int_equal(cairn_remote_parse_url(&s, &a, &b, "ftp://x"), CAIRN_EINVALID);
    assert_non_null(strstr(cairn_error_last(), "s3://bucket/prefix"));
}

struct fixture {
    char dir[64];
    char url[80];
    struct cairn_remote *r;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/cairn-remote-test.XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->url, sizeof(f->url), "file://%s", f->dir);
    if (cairn_remote_open(&f->r, f->url, NULL) < 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    cairn_remote_free(f->r);
    cairn_fs_rm_rf(f->dir);
    free(f);
    return 0;
}

static int buf_sink(void *payload, const void *data, size_t len)
{
    return cairn_buf_put(payload, data, len);
}

static int get(struct cairn_remote *r, struct cairn_buf *out, const char *key, uint64_t off,
               uint64_t len)
{
    cairn_buf_clear(out);
    return cairn_remote_get_range(r, key, off, len, buf_sink, out);
}

static void test_file_put_get(void **state)
{
    struct fixture *f = *state;
    struct cairn_buf b = CAIRN_BUF_INIT;
    uint64_t size = 0, sent = 0, recv = 0;

    assert_int_equal(cairn_remote_put_buf(f->r, "a/b/c.txt", "hello world", 11), 0);
    assert_int_equal(get(f->r, &b, "a/b/c.txt", 0, CAIRN_REMOTE_TO_END), 0);
    assert_int_equal(b.len, 11);
    assert_memory_equal(b.ptr, "hello world", 11);
    assert_int_equal(get(f->r, &b, "a/b/c.txt", 6, 5), 0);
    assert_string_equal(b.ptr, "world");
    assert_int_equal(get(f->r, &b, "a/b/c.txt", 11, CAIRN_REMOTE_TO_END), 0);
    assert_int_equal(b.len, 0);
    assert_int_equal(get(f->r, &b, "a/b/c.txt", 6, 6), CAIRN_ECORRUPT);
    assert_int_equal(get(f->r, &b, "a/b/c.txt", 12, 0), CAIRN_ECORRUPT);
    assert_int_equal(cairn_remote_head(f->r, &size, "a/b/c.txt"), 0);
    assert_int_equal(size, 11);
    /* Replacing is atomic and complete. */
    assert_int_equal(cairn_remote_put_buf(f->r, "a/b/c.txt", "bye", 3), 0);
    assert_int_equal(get(f->r, &b, "a/b/c.txt", 0, CAIRN_REMOTE_TO_END), 0);
    assert_int_equal(b.len, 3);
    assert_int_equal(cairn_remote_head(f->r, &size, "missing"), CAIRN_ENOTFOUND);
    assert_int_equal(get(f->r, &b, "missing", 0, 1), CAIRN_ENOTFOUND);
    assert_int_equal(get(f->r, &b, "a/b/c.txt/x", 0, 1), CAIRN_ENOTFOUND);
    assert_int_equal(cairn_remote_head(f->r, &size, "a/b"), CAIRN_ENOTFOUND);
    cairn_remote_stats(f->r, &sent, &recv);
    assert_true(sent == 14);
    assert_true(recv == 19);
    cairn_buf_release(&b);
}

static void test_file_put_file_range(void **state)
{
    struct fixture *f = *state;
    struct cairn_buf b = CAIRN_BUF_INIT;
    char path[128];
    unsigned char *data = malloc(3 << 20);
    int fd;

    for (size_t i = 0; i < (3u << 20); i++)
        data[i] = (unsigned char)(i * 7 + (i >> 13));
    snprintf(path, sizeof(path), "%s/src", f->dir);
    assert_int_equal(cairn_fs_write_atomic(path, data, 3 << 20, 0644), 0);
    fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    /* A range spanning the 1 MiB copy blocks. */
    assert_int_equal(cairn_remote_put_file(f->r, "obj", fd, 1000, (2 << 20) + 5), 0);
    assert_int_equal(get(f->r, &b, "obj", 0, CAIRN_REMOTE_TO_END), 0);
    assert_int_equal(b.len, (2 << 20) + 5);
    assert_memory_equal(b.ptr, data + 1000, (2 << 20) + 5);
    /* Past the end of the source: nothing is stored. */
    assert_int_equal(cairn_remote_put_file(f->r, "obj2", fd, 3 << 20, 1), CAIRN_EINVALID);
    assert_int_equal(get(f->r, &b, "obj2", 0, 1), CAIRN_ENOTFOUND);
    assert_int_equal(cairn_remote_put_file(f->r, "obj2", -1, 0, 1), CAIRN_EINVALID);
    assert_int_equal(cairn_remote_put_file(f->r, "obj2", fd, 0, CAIRN_REMOTE_TO_END),
                     CAIRN_EINVALID);
    assert_int_equal(cairn_remote_put_file(f->r, "obj2", fd, UINT64_MAX - 2, 2), CAIRN_EINVALID);
    close(fd);
    free(data);
    cairn_buf_release(&b);
}

static void test_bad_keys(void **state)
{
    struct fixture *f = *state;
    struct cairn_buf b = CAIRN_BUF_INIT;
    char longkey[CAIRN_REMOTE_KEY_MAX + 2];
    uint64_t size;
    const char *bad[] = { "", "/abs", "a/../b", "..", "a//b", "./a", "a/", "a\\b" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(cairn_remote_put_buf(f->r, bad[i], "x", 1), CAIRN_EINVALID);
        assert_int_equal(cairn_remote_head(f->r, &size, bad[i]), CAIRN_EINVALID);
        assert_int_equal(cairn_remote_delete(f->r, bad[i]), CAIRN_EINVALID);
        assert_int_equal(get(f->r, &b, bad[i], 0, 1), CAIRN_EINVALID);
    }
    memset(longkey, 'k', sizeof(longkey) - 1);
    longkey[sizeof(longkey) - 1] = 0;
    assert_int_equal(cairn_remote_put_buf(f->r, longkey, "x", 1), CAIRN_EINVALID);
    assert_int_equal(cairn_remote_put_buf(f->r, "k", "x", 1), 0);
    assert_int_equal(get(f->r, &b, "k", UINT64_MAX - 1, 5), CAIRN_EINVALID);
    assert_int_equal(cairn_remote_list(f->r, "/x", NULL, NULL), CAIRN_EINVALID);
    cairn_buf_release(&b);
}

static int collect(void *payload, const char *key, uint64_t size)
{
    return cairn_buf_printf(payload, "%s=%llu;", key, (unsigned long long)size);
}

static int stop_early(void *payload, const char *key, uint64_t size)
{
    (void)payload;
    (void)key;
    (void)size;
    return cairn_error_set(CAIRN_ECHECK, "stop");
}

static void test_file_list_delete(void **state)
{
    struct fixture *f = *state;
    struct cairn_buf b = CAIRN_BUF_INIT;
    char tmp[160];
    const char *keys[] = { "chunks/ab/x", "chunks/ab-c", "chunks/a", "refs/main", "chunksz" };
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        assert_int_equal(cairn_remote_put_buf(f->r, keys[i], keys[i], strlen(keys[i])), 0);
    /* A writer's leftover temp file is never listed. */
    snprintf(tmp, sizeof(tmp), "%s/chunks/.cairn-tmp.abc", f->dir);
    assert_int_equal(cairn_fs_write_atomic(tmp, "x", 1, 0644), 0);

    assert_int_equal(cairn_remote_list(f->r, "", collect, &b), 0);
    /* S3 order: bytewise, so "chunks/ab-c" < "chunks/ab/x". */
    assert_string_equal(b.ptr, "chunks/a=8;chunks/ab-c=11;chunks/ab/x=11;chunksz=7;refs/main=9;");
    cairn_buf_clear(&b);
    assert_int_equal(cairn_remote_list(f->r, "chunks/ab", collect, &b), 0);
    assert_string_equal(b.ptr, "chunks/ab-c=11;chunks/ab/x=11;");
    cairn_buf_clear(&b);
    assert_int_equal(cairn_remote_list(f->r, "chunks/", collect, &b), 0);
    assert_string_equal(b.ptr, "chunks/a=8;chunks/ab-c=11;chunks/ab/x=11;");
    cairn_buf_clear(&b);
    assert_int_equal(cairn_remote_list(f->r, "nothing", collect, &b), 0);
    assert_int_equal(b.len, 0);
    assert_int_equal(cairn_remote_list(f->r, "", stop_early, NULL), CAIRN_ECHECK);

    assert_int_equal(cairn_remote_delete(f->r, "chunks/ab/x"), 0);
    assert_int_equal(cairn_remote_delete(f->r, "chunks/ab/x"), 0);
    assert_int_equal(cairn_remote_delete(f->r, "never/was"), 0);
    assert_int_equal(cairn_remote_list(f->r, "chunks/ab", collect, &b), 0);
    assert_string_equal(b.ptr, "chunks/ab-c=11;");
    cairn_buf_release(&b);
}

static void test_file_batch(void **state)
{
    struct fixture *f = *state;
    struct cairn_remote_xfer x[4];
    char path[128];
    int out;

    memset(x, 0, sizeof(x));
    x[0] = (struct cairn_remote_xfer){
        .op = CAIRN_REMOTE_PUT_BUF, .key = "b/one", .data = "1111", .len = 4
    };
    x[1] = (struct cairn_remote_xfer){
        .op = CAIRN_REMOTE_PUT_BUF, .key = "b/two", .data = "22", .len = 2
    };
    x[2] = (struct cairn_remote_xfer){ .op = CAIRN_REMOTE_HEAD, .key = "b/none" };
    x[3] = (struct cairn_remote_xfer){
        .op = CAIRN_REMOTE_PUT_BUF, .key = "../bad", .data = "x", .len = 1
    };
    /* Every transfer runs; the first failure in array order is returned. */
    assert_int_equal(cairn_remote_batch(f->r, x, 4), CAIRN_ENOTFOUND);
    assert_int_equal(x[0].result, 0);
    assert_int_equal(x[1].result, 0);
    assert_int_equal(x[2].result, CAIRN_ENOTFOUND);
    assert_non_null(strstr(x[2].error, "b/none"));
    assert_int_equal(x[3].result, CAIRN_EINVALID);

    snprintf(path, sizeof(path), "%s/out", f->dir);
    out = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    assert_true(out >= 0);
    memset(x, 0, sizeof(x));
    x[0] = (struct cairn_remote_xfer){ .op = CAIRN_REMOTE_GET_FD,
                                       .key = "b/one",
                                       .fd = out,
                                       .len = CAIRN_REMOTE_TO_END,
                                       .fd_off = 2 };
    x[1] = (struct cairn_remote_xfer){
        .op = CAIRN_REMOTE_GET_FD, .key = "b/two", .fd = out, .off = 1, .len = 1, .fd_off = 0
    };
    x[2] = (struct cairn_remote_xfer){ .op = CAIRN_REMOTE_HEAD, .key = "b/one" };
    x[3] = (struct cairn_remote_xfer){ .op = CAIRN_REMOTE_DELETE, .key = "b/two" };
    assert_int_equal(cairn_remote_batch(f->r, x, 4), 0);
    assert_int_equal(x[0].size, 4);
    assert_int_equal(x[1].size, 1);
    assert_int_equal(x[2].size, 4);
    char got[8] = { 0 };
    assert_int_equal(pread(out, got, sizeof(got), 0), 6);
    assert_memory_equal(got,
                        "2\0"
                        "1111",
                        6);
    close(out);
    uint64_t size;
    assert_int_equal(cairn_remote_head(f->r, &size, "b/two"), CAIRN_ENOTFOUND);
    assert_int_equal(cairn_remote_batch(f->r, x, 0), 0);
}

static void test_open_errors(void **state)
{
    (void)state;
    struct cairn_remote *r = (struct cairn_remote *)1;
    struct cairn_remote_opts o = { 0 };
    assert_int_equal(cairn_remote_open(&r, "file:///nonexistent/cairn/dir", NULL), CAIRN_ENOTFOUND);
    assert_null(r);
    assert_int_equal(cairn_remote_open(&r, "gopher://x", NULL), CAIRN_EINVALID);
    o.concurrency = -1;
    assert_int_equal(cairn_remote_open(&r, "file:///tmp", &o), CAIRN_EINVALID);
    o.concurrency = 0;
    o.part_size = (uint64_t)6 << 30;
    assert_int_equal(cairn_remote_open(&r, "file:///tmp", &o), CAIRN_EINVALID);
    cairn_remote_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_url),
        cmocka_unit_test(test_parse_url_bad),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test_setup_teardown(test_file_put_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_put_file_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_list_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_batch, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
