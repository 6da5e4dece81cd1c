/*
 * Unit tests for lib/data/csv.c: the RFC 4180 dialect, line numbers in
 * errors, UTF-8 validation, size caps, and that every result is the same
 * whatever the read size (tiny reads force a refill inside every token).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cairn/common.h"
#include "data/csv.h"
#include "util/buf.h"

static const size_t read_sizes[] = { 1, 2, 3, 5, 8, 64, 0 };
#define NSIZES (sizeof(read_sizes) / sizeof(read_sizes[0]))

/*
 * Parse `in` and render it as fields joined by '|' and records ended by ';'
 * (with "<n>" before each record where n is its line). Returns the reader's
 * final status: 0 at a clean end, else the error code (message in the slot).
 */
static int render(struct cairn_buf *out, const char *in, size_t len, const char *name,
                  const struct cairn_csv_opts *base, size_t read_size)
{
    struct cairn_csv_opts o = { 0 };
    struct cairn_csv *c;
    const struct cairn_csv_field *f;
    size_t n;
    int r;
    if (base)
        o = *base;
    o.read_size = read_size;
    cairn_buf_clear(out);
    assert_int_equal(cairn_csv_new_mem(&c, in, len, name, &o), 0);
    while ((r = cairn_csv_next(c, &f, &n)) == 1) {
        cairn_buf_printf(out, "<%llu>", (unsigned long long)cairn_csv_line(c));
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(f[i].ptr[f[i].len], '\0');
            assert_int_equal(strlen(f[i].ptr), f[i].len);
            cairn_buf_printf(out, "%s%s", i ? "|" : "", f[i].ptr);
        }
        cairn_buf_putc(out, ';');
    }
    /* An exhausted or failed reader keeps saying so. */
    assert_int_equal(cairn_csv_next(c, &f, &n), r);
    cairn_csv_free(c);
    return r;
}

/* Expect the same rendering for every read size. */
static void check(const char *in, const char *want)
{
    struct cairn_buf out = CAIRN_BUF_INIT;
    for (size_t i = 0; i < NSIZES; i++) {
        int r = render(&out, in, strlen(in), "t.csv", NULL, read_sizes[i]);
        if (r != 0)
            fail_msg("read size %zu: %s", read_sizes[i], cairn_error_last());
        if (strcmp(out.ptr ? out.ptr : "", want) != 0)
            fail_msg("read size %zu: got '%s' want '%s'", read_sizes[i], out.ptr, want);
    }
    cairn_buf_release(&out);
}

/* Expect an error whose message contains `msg` for every read size. */
static void check_error_len(const char *in, size_t len, const char *name, int code, const char *msg)
{
    struct cairn_buf out = CAIRN_BUF_INIT;
    for (size_t i = 0; i < NSIZES; i++) {
        int r = render(&out, in, len, name, NULL, read_sizes[i]);
        if (r != code)
            fail_msg("read size %zu: got %d want %d (%s)", read_sizes[i], r, code,
                     cairn_error_last());
        if (!strstr(cairn_error_last(), msg))
            fail_msg("read size %zu: message '%s' lacks '%s'", read_sizes[i], cairn_error_last(),
                     msg);
    }
    cairn_buf_release(&out);
}

static void check_error(const char *in, int code, const char *msg)
{
    check_error_len(in, strlen(in), "t.csv", code, msg);
}

static void test_plain(void **state)
{
    (void)state;
    check("a,b,c\n1,2,3\n4,5,6\n", "<1>a|b|c;<2>1|2|3;<3>4|5|6;");
    check("a,b\n1,2", "<1>a|b;<2>1|2;"); /* no final newline */
    check("", "");
    check("\n\n", "");
    check("x\n", "<1>x;");
    check("a,b\n,\n", "<1>a|b;<2>|;"); /* empty fields */
    check("a,b,c\n,,\n1,,3\n", "<1>a|b|c;<2>||;<3>1||3;");
}

static void test_crlf_and_blank_lines(void **state)
{
    (void)state;
    check("a,b\r\n1,2\r\n", "<1>a|b;<2>1|2;");
    check("a,b\r\n\r\n\n1,2\r\n\n", "<1>a|b;<4>1|2;");
    check("a,b\r\n1,2\r", "<1>a|b;<2>1|2;");
    check("a,\"b\"\r\n\"1\",\"2\"\r\n", "<1>a|b;<2>1|2;");
    /* A lone CR inside a field is data. */
    check("a,b\nx\ry,z\n", "<1>a|b;<2>x\ry|z;");
}

static void test_quotes(void **state)
{
    (void)state;
    check("a,b\n\"x,y\",z\n", "<1>a|b;<2>x,y|z;");
    check("a,b\n\"say \"\"hi\"\"\",\"\"\n", "<1>a|b;<2>say \"hi\"|;");
    check("a\n\"\"\"\"\n", "<1>a;<2>\";");
    check("a,b\n\"\",\"\"\n", "<1>a|b;<2>|;");
    /* Embedded newlines: the next record's line number counts them. */
    check("a,b\n\"one\ntwo\nthree\",x\n1,2\n", "<1>a|b;<2>one\ntwo\nthree|x;<5>1|2;");
    check("a,b\n\"one\r\ntwo\",x\r\n1,2", "<1>a|b;<2>one\r\ntwo|x;<4>1|2;");
    /* A quote inside an unquoted field is data. */
    check("a,b\nab\"c,d\n", "<1>a|b;<2>ab\"c|d;");
    /* Quoted last field at end of input, with and without escapes. */
    check("a,b\n1,\"2\"", "<1>a|b;<2>1|2;");
    check("a,b\n1,\"2\"\"\"", "<1>a|b;<2>1|2\";");
    /* Several escaped fields in one record (scratch buffer growth). */
    check("a,b,c\n\"\"\"x\",\"y\"\"\",\"z\"\"z\"\n", "<1>a|b|c;<2>\"x|y\"|z\"z;");
}

static void test_bom_and_utf8(void **state)
{
    (void)state;
    check(
        "\xef\xbb\xbf"
        "a,b\n1,2\n",
        "<1>a|b;<2>1|2;");
    check("\xef\xbb\xbf", "");
    check("name\nJos\xc3\xa9\n\xe2\x82\xac\n\xf0\x9f\x98\x80\n",
          "<1>name;<2>Jos\xc3\xa9;<3>\xe2\x82\xac;<4>\xf0\x9f\x98\x80;");
}

static void test_bom_midfile_is_data(void **state)
{
    (void)state;
    check("a\n\xef\xbb\xbfx\n", "<1>a;<2>\xef\xbb\xbfx;");
}

static void test_invalid_utf8(void **state)
{
    (void)state;
    check_error("a,b\n1,\xff\n", CAIRN_EINVALID, "t.csv:2: invalid UTF-8 at column 3");
    check_error("a,b\nxxxxxxxxxxxxxxxxxx\xc3,2\n", CAIRN_EINVALID, "t.csv:2: invalid UTF-8");
    check_error("\xc0\xaf\n", CAIRN_EINVALID, "t.csv:1: invalid UTF-8 at column 1"); /* overlong */
    check_error("a\n\xed\xa0\x80\n", CAIRN_EINVALID, "t.csv:2:");                    /* surrogate */
    check_error("a\n\xf4\x90\x80\x80\n", CAIRN_EINVALID, "t.csv:2:"); /* > U+10FFFF */
    check_error("a\nb\n\xe2\x82\n", CAIRN_EINVALID, "t.csv:3:");      /* truncated */
    check_error("a\nb\nok\xe2\x82", CAIRN_EINVALID, "t.csv:3:");      /* truncated at EOF */
    /* Inside a quoted field with newlines: the line of the bad byte. */
    check_error("a\n\"x\ny\nz\x80\"\n", CAIRN_EINVALID, "t.csv:4: invalid UTF-8 at column 2");
    check_error_len("a\nx\0y\n", 6, "t.csv", CAIRN_EINVALID, "t.csv:2: NUL byte at column 2");
}

static void test_utf8_check(void **state)
{
    (void)state;
    assert_int_equal(cairn_utf8_check("hello world, plain", 18), 18);
    assert_int_equal(cairn_utf8_check("0123456789\xc3", 11), 10);
    assert_int_equal(cairn_utf8_check("01234567\x80", 9), 8);
    assert_int_equal(cairn_utf8_check("\xf5\x80\x80\x80", 4), 0);
    assert_int_equal(cairn_utf8_check("\xe0\x9f\xbf", 3), 0); /* overlong 3-byte */
    assert_int_equal(cairn_utf8_check("\xe0\xa0\x80", 3), 3);
    assert_int_equal(cairn_utf8_check("\xf0\x8f\xbf\xbf", 4), 0);
    assert_int_equal(cairn_utf8_check("\xf4\x8f\xbf\xbf", 4), 4);
    assert_int_equal(cairn_utf8_check("ab\xe2\x28\xa1", 5), 2);
}

static void test_ragged(void **state)
{
    (void)state;
    check_error("a,b,c\n1,2,3\n4,5\n", CAIRN_EINVALID,
                "t.csv:3: record has 2 fields, header has 3");
    check_error("a,b\n1,2\n\n3,4,5\n", CAIRN_EINVALID,
                "t.csv:4: record has 3 fields, header has 2");
    check_error("a,b\n\"x\ny\",1\n2\n", CAIRN_EINVALID,
                "t.csv:4: record has 1 field, header has 2");
}

static void test_unterminated_and_garbage(void **state)
{
    (void)state;
    check_error("a,b\n1,2\n3,\"oops\n4,5\n", CAIRN_EINVALID, "t.csv:3: unterminated quoted field");
    check_error("a\n\"", CAIRN_EINVALID, "t.csv:2: unterminated quoted field");
    check_error("a,b\n\"x\"y,2\n", CAIRN_EINVALID,
                "t.csv:2: unexpected character after closing quote of field 1");
    check_error("a,b\n\"x\"\rz,2\n", CAIRN_EINVALID, "unexpected character after closing quote");
}

static void test_tsv_and_delims(void **state)
{
    (void)state;
    struct cairn_buf out = CAIRN_BUF_INIT;
    struct cairn_csv_opts o = { 0 };
    const char *in = "a\tb,c\n1\t\"2\t3\"\n";
    assert_int_equal(render(&out, in, strlen(in), "x.TSV", NULL, 0), 0);
    assert_string_equal(out.ptr, "<1>a|b,c;<2>1|2\t3;");
    o.delim = ';';
    in = "a;b\n1,5;2\n";
    assert_int_equal(render(&out, in, strlen(in), "x.csv", &o, 3), 0);
    assert_string_equal(out.ptr, "<1>a|b;<2>1,5|2;");
    cairn_buf_release(&out);

    struct cairn_csv *c = NULL;
    o.delim = '"';
    assert_int_equal(cairn_csv_new_mem(&c, "", 0, "x", &o), CAIRN_EINVALID);
    assert_null(c);
    o.delim = '\n';
    assert_int_equal(cairn_csv_new_mem(&c, "", 0, "x", &o), CAIRN_EINVALID);
}

static void test_caps(void **state)
{
    (void)state;
    struct cairn_buf in = CAIRN_BUF_INIT, out = CAIRN_BUF_INIT;
    struct cairn_csv_opts o = { 0 };
    o.max_field = 100;
    o.max_record = 1000;
    o.max_fields = 8;

    /* A field of exactly the cap is fine; one byte more is not, quoted or not. */
    cairn_buf_puts(&in, "a,b\n1,");
    for (int i = 0; i < 100; i++)
        cairn_buf_putc(&in, 'x');
    cairn_buf_puts(&in, "\n");
    for (size_t k = 0; k < NSIZES; k++)
        assert_int_equal(render(&out, in.ptr, in.len, "t.csv", &o, read_sizes[k]), 0);

    cairn_buf_clear(&in);
    cairn_buf_puts(&in, "a,b\n1,");
    for (int i = 0; i < 101; i++)
        cairn_buf_putc(&in, 'x');
    cairn_buf_puts(&in, "\n");
    for (size_t k = 0; k < NSIZES; k++) {
        assert_int_equal(render(&out, in.ptr, in.len, "t.csv", &o, read_sizes[k]), CAIRN_ENOMEM);
        assert_non_null(strstr(cairn_error_last(), "t.csv:2: field"));
    }

    cairn_buf_clear(&in);
    cairn_buf_puts(&in, "a,b\n1,\"");
    for (int i = 0; i < 300; i++)
        cairn_buf_putc(&in, 'y');
    cairn_buf_puts(&in, "\"\n");
    for (size_t k = 0; k < NSIZES; k++) {
        assert_int_equal(render(&out, in.ptr, in.len, "t.csv", &o, read_sizes[k]), CAIRN_ENOMEM);
        assert_non_null(strstr(cairn_error_last(), "t.csv:2: field"));
    }

    /* A record of many small fields hits the record cap, not the field cap. */
    o.max_fields = 10000;
    cairn_buf_clear(&in);
    for (int i = 0; i < 600; i++)
        cairn_buf_puts(&in, "ab,");
    cairn_buf_puts(&in, "z\n");
    for (size_t k = 0; k < NSIZES; k++) {
        assert_int_equal(render(&out, in.ptr, in.len, "t.csv", &o, read_sizes[k]), CAIRN_ENOMEM);
        assert_non_null(strstr(cairn_error_last(), "t.csv:1: record larger than 1000 bytes"));
    }

    /* Too many fields. */
    o.max_fields = 8;
    assert_int_equal(render(&out, "1,2,3,4,5,6,7,8,9\n", 18, "t.csv", &o, 0), CAIRN_ENOMEM);
    assert_non_null(strstr(cairn_error_last(), "more than 8 fields"));
    cairn_buf_release(&in);
    cairn_buf_release(&out);
}

static void test_fd_and_counters(void **state)
{
    (void)state;
    char path[] = "/tmp/cairn-test-csv-XXXXXX";
    int fd = mkstemp(path);
    const char *text = "h1,h2\n1,2\n\"3\n\",4\n";
    struct cairn_csv *c;
    const struct cairn_csv_field *f;
    size_t n;
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);

    assert_int_equal(cairn_csv_open(&c, path, NULL), 0);
    assert_int_equal(cairn_csv_delim(c), ',');
    assert_int_equal(cairn_csv_next(c, &f, &n), 1);
    assert_int_equal(n, 2);
    assert_string_equal(f[1].ptr, "h2");
    assert_int_equal(cairn_csv_next(c, &f, &n), 1);
    assert_int_equal(cairn_csv_next(c, &f, &n), 1);
    assert_string_equal(f[0].ptr, "3\n");
    assert_int_equal(cairn_csv_line(c), 3);
    assert_int_equal(cairn_csv_next(c, &f, &n), 0);
    assert_int_equal(cairn_csv_records(c), 3);
    assert_int_equal(cairn_csv_bytes(c), strlen(text));
    cairn_csv_free(c);
    unlink(path);

    assert_int_equal(cairn_csv_open(&c, "/nonexistent/x.csv", NULL), CAIRN_ENOTFOUND);
    assert_null(c);
    cairn_csv_free(NULL);
}

/* Deterministic random inputs over a small alphabet: must never crash, and
 * tiny reads must agree with one big read (same rows or the same error). */
static void test_random_agree(void **state)
{
    (void)state;
    static const char alphabet[] = { 'a', ',', '"', '\n', '\r', 'b', '\xc3', '\xa9' };
    struct cairn_buf a = CAIRN_BUF_INIT, b = CAIRN_BUF_INIT;
    uint64_t x = 88172645463325252ULL;
    char in[64];
    for (int iter = 0; iter < 3000; iter++) {
        size_t len = (size_t)(iter % 48);
        for (size_t i = 0; i < len; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            in[i] = alphabet[x % sizeof(alphabet)];
        }
        int ra = render(&a, in, len, "r.csv", NULL, 0);
        char msg[256];
        snprintf(msg, sizeof(msg), "%s", cairn_error_last());
        int rb = render(&b, in, len, "r.csv", NULL, 1);
        assert_int_equal(ra, rb);
        if (ra == 0)
            assert_string_equal(a.ptr ? a.ptr : "", b.ptr ? b.ptr : "");
        else
            assert_string_equal(msg, cairn_error_last());
    }
    cairn_buf_release(&a);
    cairn_buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain),
        cmocka_unit_test(test_crlf_and_blank_lines),
        cmocka_unit_test(test_quotes),
        cmocka_unit_test(test_bom_and_utf8),
        cmocka_unit_test(test_bom_midfile_is_data),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_utf8_check),
        cmocka_unit_test(test_ragged),
        cmocka_unit_test(test_unterminated_and_garbage),
        cmocka_unit_test(test_tsv_and_delims),
        cmocka_unit_test(test_caps),
        cmocka_unit_test(test_fd_and_counters),
        cmocka_unit_test(test_random_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
