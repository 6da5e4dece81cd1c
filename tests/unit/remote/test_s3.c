/*
 * Unit tests for lib/remote/s3.c: the XML extractor, the AWS INI reader and
 * endpoint parsing on good and hostile input; credential and region lookup;
 * and the request engine against a scripted HTTP server on 127.0.0.1 (a
 * thread here): retries on 503, a broken download resumed from the first
 * missing byte, and error messages for clock skew, wrong credentials and a
 * missing bucket.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cairn/common.h"
#include "remote/backend.h"
#include "remote/s3.h"
#include "util/buf.h"
#include "util/fs.h"

static void test_xml(void **state)
{
    (void)state;
    const char *x =
        "<?xml version='1.0'?><R><KeyCount>2</KeyCount><Contents><Key>a&amp;b"
        "&#x2F;&#233;&lt;</Key><Size>5</Size></Contents><Contents><Key>c</Key>"
        "<Size>7</Size></Contents><Prefix/></R>";
    struct cairn_buf b = CAIRN_BUF_INIT;
    const char *body;
    size_t blen, pos = 0;
    int n = 0;

    while (cairn__s3_xml_next(&body, &blen, x, strlen(x), "Contents", &pos))
        n++;
    assert_int_equal(n, 2);
    assert_int_equal(cairn__s3_xml_text(&b, x, strlen(x), "Key"), 1);
    assert_string_equal(b.ptr, "a&b/\xc3\xa9<");
    cairn_buf_clear(&b);
    assert_int_equal(cairn__s3_xml_text(&b, x, strlen(x), "KeyCount"), 1);
    assert_string_equal(b.ptr, "2");
    cairn_buf_clear(&b);
    assert_int_equal(cairn__s3_xml_text(&b, x, strlen(x), "Prefix"), 1);
    assert_string_equal(b.ptr, "");
    assert_int_equal(cairn__s3_xml_text(&b, x, strlen(x), "Missing"), 0);
    cairn_buf_release(&b);
}

static void test_xml_hostile(void **state)
{
    (void)state;
    const char *bad[] = {
        "<Key>a&bogus;</Key>", "<Key>&#0;</Key>", "<Key>&#xD800;</Key>", "<Key>&#99999999;</Key>",
        "<Key>&#;</Key>",      "<Key>&amp</Key>", "<Key>&</Key>",
    };
    const char *odd[] = { "<Key>", "<Key>abc",   "</Key>",      "<", "<Key",
                          "<Key/", "<Key>x</Ke", "<Key>x</Key", "" };
    struct cairn_buf b;
    cairn_buf_init(&b, 16);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cairn_buf_clear(&b);
        assert_int_equal(cairn__s3_xml_text(&b, bad[i], strlen(bad[i]), "Key"), CAIRN_EINVALID);
    }
    for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
        cairn_buf_clear(&b);
        assert_int_equal(cairn__s3_xml_text(&b, odd[i], strlen(odd[i]), "Key"), 0);
    }
    /* A value beyond the buffer's limit fails instead of growing. */
    const char *big = "<Key>0123456789abcdefghij</Key>";
    cairn_buf_clear(&b);
    assert_int_equal(cairn__s3_xml_text(&b, big, strlen(big), "Key"), CAIRN_ENOMEM);
    /* Not NUL-terminated: the length is respected. */
    assert_int_equal(cairn__s3_xml_text(&b, "<Key>x</Key>", 8, "Key"), 0);
    cairn_buf_release(&b);
}

static void test_ini(void **state)
{
    (void)state;
    const char *t =
        "# comment\n[default]\naws_access_key_id = AKID\n"
        "aws_secret_access_key=se=cret \r\n\n[profile dev]\n region = eu-west-1\n"
        "[dev]\n; x\naws_access_key_id=DEV\n[broken\nfoo=bar\n";
    struct cairn_buf b = CAIRN_BUF_INIT;
    assert_int_equal(cairn__s3_ini_get(&b, t, strlen(t), "default", "aws_access_key_id"), 1);
    assert_string_equal(b.ptr, "AKID");
    cairn_buf_clear(&b);
    assert_int_equal(cairn__s3_ini_get(&b, t, strlen(t), "default", "aws_secret_access_key"), 1);
    assert_string_equal(b.ptr, "se=cret");
    cairn_buf_clear(&b);
    assert_int_equal(cairn__s3_ini_get(&b, t, strlen(t), "profile dev", "region"), 1);
    assert_string_equal(b.ptr, "eu-west-1");
    cairn_buf_clear(&b);
    assert_int_equal(cairn__s3_ini_get(&b, t, strlen(t), "dev", "aws_access_key_id"), 1);
    assert_string_equal(b.ptr, "DEV");
    assert_int_equal(cairn__s3_ini_get(&b, t, strlen(t), "dev", "region"), 0);
    assert_int_equal(cairn__s3_ini_get(&b, t, strlen(t), "broken", "foo"), 0);
    assert_int_equal(cairn__s3_ini_get(&b, "[", 1, "", "x"), 0);
    assert_int_equal(cairn__s3_ini_get(&b, "]\n=\n[]\n=", 8, "", ""), 1);
    cairn_buf_release(&b);
}

static void test_endpoint(void **state)
{
    (void)state;
    char *s, *h;
    assert_int_equal(cairn__s3_parse_endpoint(&s, &h, "http://127.0.0.1:8080/"), 0);
    assert_string_equal(s, "http");
    assert_string_equal(h, "127.0.0.1:8080");
    free(s);
    free(h);
    assert_int_equal(cairn__s3_parse_endpoint(&s, &h, "https://s3.eu-west-1.amazonaws.com"), 0);
    assert_string_equal(s, "https");
    free(s);
    free(h);
    const char *bad[] = { "ftp://x",    "http://",         "http:///",         "127.0.0.1:80",
                          "http://a b", "http://u:p@host", "http://host/path", "http://h\r\nX: y" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(cairn__s3_parse_endpoint(&s, &h, bad[i]), CAIRN_EINVALID);
        assert_null(s);
        assert_null(h);
    }
}

static void clear_aws_env(void)
{
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_SESSION_TOKEN");
    unsetenv("AWS_REGION");
    unsetenv("AWS_DEFAULT_REGION");
    unsetenv("AWS_PROFILE");
    unsetenv("CAIRN_S3_ENDPOINT");
    unsetenv("AWS_ENDPOINT_URL");
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/cairn/credentials", 1);
    setenv("AWS_CONFIG_FILE", "/nonexistent/cairn/config", 1);
}

static void test_credentials(void **state)
{
    (void)state;
    char dir[] = "/tmp/cairn-s3-creds.XXXXXX", path[128], cfg[128];
    struct cairn_remote *r = NULL;
    struct cairn_remote_opts o = { 0 };

    clear_aws_env();
    assert_int_equal(cairn_remote_open(&r, "s3://bucket/p", NULL), CAIRN_EINVALID);
    assert_non_null(strstr(cairn_error_last(), "AWS_ACCESS_KEY_ID"));
    assert_null(r);

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/credentials", dir);
    snprintf(cfg, sizeof(cfg), "%s/config", dir);
    const char *creds =
        "[default]\naws_access_key_id=A\naws_secret_access_key=B\n"
        "[dev]\naws_access_key_id=C\n";
    const char *config = "[profile dev]\nregion=eu-west-3\n";
    assert_int_equal(cairn_fs_write_atomic(path, creds, strlen(creds), 0600), 0);
    assert_int_equal(cairn_fs_write_atomic(cfg, config, strlen(config), 0600), 0);
    setenv("AWS_SHARED_CREDENTIALS_FILE", path, 1);
    setenv("AWS_CONFIG_FILE", cfg, 1);
    assert_int_equal(cairn_remote_open(&r, "s3://bucket/p", NULL), 0);
    cairn_remote_free(r);
    /* A profile without a secret is an error naming the profile, never showing keys. */
    setenv("AWS_PROFILE", "dev", 1);
    assert_int_equal(cairn_remote_open(&r, "s3://bucket/p", NULL), CAIRN_EINVALID);
    assert_non_null(strstr(cairn_error_last(), "'dev'"));
    o.profile = "default";
    assert_int_equal(cairn_remote_open(&r, "s3://bucket/p", &o), 0);
    cairn_remote_free(r);
    o.endpoint = "ftp://nope";
    assert_int_equal(cairn_remote_open(&r, "s3://bucket/p", &o), CAIRN_EINVALID);
    cairn_fs_rm_rf(dir);
    clear_aws_env();
}

/* ---- a scripted HTTP server ---- */

struct server {
    int fd;
    int port;
    const char *const *responses; /* one per request, sent whole, then the connection closes */
    size_t n;
    struct cairn_buf log; /* request heads, separated by "----\n" */
    pthread_t thread;
};

static void *serve(void *arg)
{
    struct server *s = arg;
    for (size_t i = 0; i < s->n; i++) {
        int c = accept(s->fd, NULL, NULL);
        char buf[8192];
        size_t got = 0;
        if (c < 0)
            break;
        for (;;) {
            ssize_t k = read(c, buf + got, sizeof(buf) - 1 - got);
            if (k <= 0)
                break;
            got += (size_t)k;
            buf[got] = 0;
            char *end = strstr(buf, "\r\n\r\n");
            if (end) {
                const char *cl = strcasestr(buf, "content-length:");
                size_t body = cl && cl < end ? strtoul(cl + 15, NULL, 10) : 0;
                if (got >= (size_t)(end + 4 - buf) + body || got == sizeof(buf) - 1) {
                    cairn_buf_put(&s->log, buf, (size_t)(end - buf));
                    break;
                }
            }
        }
        cairn_buf_puts(&s->log, "\n----\n");
        cairn_fs_write_all(c, s->responses[i], strlen(s->responses[i]));
        shutdown(c, SHUT_WR);
        close(c);
    }
    return NULL;
}

static void server_start(struct server *s, const char *const *responses, size_t n)
{
    struct sockaddr_in a = { 0 };
    socklen_t len = sizeof(a);
    int one = 1;
    memset(s, 0, sizeof(*s));
    s->responses = responses;
    s->n = n;
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s->fd, 8), 0);
    getsockname(s->fd, (struct sockaddr *)&a, &len);
    s->port = ntohs(a.sin_port);
    pthread_create(&s->thread, NULL, serve, s);
}

/* After pthread_join(s->thread). */
static void server_stop(struct server *s)
{
    close(s->fd);
    cairn_buf_release(&s->log);
}

static struct cairn_remote *open_fake(struct server *s)
{
    struct cairn_remote *r = NULL;
    struct cairn_remote_opts o = { 0 };
    char ep[64];
    clear_aws_env();
    setenv("AWS_ACCESS_KEY_ID", "AKID", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "very-secret", 1);
    snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", s->port);
    o.endpoint = ep;
    o.timeout_s = 5;
    assert_int_equal(cairn_remote_open(&r, "s3://bucket/pre", &o), 0);
    return r;
}

static int buf_sink(void *payload, const void *data, size_t len)
{
    return cairn_buf_put(payload, data, len);
}

static void test_retry_and_resume(void **state)
{
    (void)state;
    static const char *const script[] = {
        "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        /* Promises 10 bytes, sends 4, then the connection drops. */
        "HTTP/1.1 206 Partial Content\r\nContent-Length: 10\r\nContent-Range: bytes 0-9/10\r\n"
        "Connection: close\r\n\r\n0123",
        "HTTP/1.1 206 Partial Content\r\nContent-Length: 6\r\nContent-Range: bytes 4-9/10\r\n"
        "Connection: close\r\n\r\n456789",
    };
    struct server s;
    struct cairn_buf out = CAIRN_BUF_INIT;
    uint64_t sent, recv;
    server_start(&s, script, 3);
    struct cairn_remote *r = open_fake(&s);
    assert_int_equal(cairn_remote_get_range(r, "obj", 0, 10, buf_sink, &out), 0);
    assert_int_equal(out.len, 10);
    assert_memory_equal(out.ptr, "0123456789", 10);
    cairn_remote_stats(r, &sent, &recv);
    assert_true(recv == 10);
    cairn_remote_free(r);
    pthread_join(s.thread, NULL);
    /* Path style, signed, and the retry asked only for what was missing. */
    assert_non_null(strstr(s.log.ptr, "GET /bucket/pre/obj HTTP/1.1"));
    assert_non_null(strstr(s.log.ptr, "Authorization: AWS4-HMAC-SHA256 Credential=AKID/"));
    assert_non_null(strstr(s.log.ptr, "range: bytes=4-9"));
    server_stop(&s);
    cairn_buf_release(&out);
}

static void test_error_messages(void **state)
{
    (void)state;
    static const char *const script[] = {
        "HTTP/1.1 403 Forbidden\r\nContent-Length: 140\r\nConnection: close\r\n\r\n"
        "<?xml version='1.0'?><Error><Code>RequestTimeTooSkewed</Code><Message>The difference "
        "is too large.</Message></Error>                        ",
        "HTTP/1.1 403 Forbidden\r\nContent-Length: 120\r\nConnection: close\r\n\r\n"
        "<Error><Code>InvalidAccessKeyId</Code><Message>The AWS Access Key Id you provided does "
        "not exist.</Message></Error>                     ",
        "HTTP/1.1 404 Not Found\r\nContent-Length: 60\r\nConnection: close\r\n\r\n"
        "<Error><Code>NoSuchBucket</Code><Message>x</Message></Error>",
        "HTTP/1.1 200 OK\r\nContent-Length: 61\r\nConnection: close\r\n\r\n"
        "<Error><Code>InternalError</Code><Message>x</Message></Error>",
    };
    struct server s;
    server_start(&s, script, 4);
    struct cairn_remote *r = open_fake(&s);
    int rc = cairn_remote_put_buf(r, "k", "data", 4);
    assert_int_equal(rc, CAIRN_ERROR);
    assert_non_null(strstr(cairn_error_last(), "clock skew"));
    rc = cairn_remote_delete(r, "k");
    assert_int_equal(rc, CAIRN_ERROR);
    assert_non_null(strstr(cairn_error_last(), "InvalidAccessKeyId"));
    assert_non_null(strstr(cairn_error_last(), "does not exist"));
    assert_null(strstr(cairn_error_last(), "very-secret"));
    assert_int_equal(cairn_remote_list(r, "", NULL, NULL), CAIRN_ENOTFOUND);
    assert_non_null(strstr(cairn_error_last(), "bucket 'bucket' does not exist"));
    assert_int_equal(cairn_remote_list(r, "", NULL, NULL), CAIRN_ERROR);
    assert_non_null(strstr(cairn_error_last(), "InternalError"));
    cairn_remote_free(r);
    pthread_join(s.thread, NULL);
    /* The PUT carried the real payload hash and Content-MD5 of "data". */
    assert_non_null(strstr(s.log.ptr,
                           "x-amz-content-sha256: "
                           "3a6eb0790f39ac87c94f3856b2dd2c5d110e6811602261a9a923d3bb23adc8b7"));
    assert_non_null(strstr(s.log.ptr, "content-md5: jXd/OF09/siBXSD3SWAm3A=="));
    assert_null(strstr(s.log.ptr, "very-secret"));
    server_stop(&s);
}

static void test_unreachable(void **state)
{
    (void)state;
    struct cairn_remote *r = NULL;
    struct cairn_remote_opts o = { 0 };
    struct cairn_buf out = CAIRN_BUF_INIT;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { 0 };
    socklen_t len = sizeof(a);
    char ep[64];
    /* A port that was just free: bind, read it, close. */
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, (struct sockaddr *)&a, sizeof(a));
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    clear_aws_env();
    setenv("AWS_ACCESS_KEY_ID", "AKID", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "s", 1);
    snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", ntohs(a.sin_port));
    o.endpoint = ep;
    assert_int_equal(cairn_remote_open(&r, "s3://bucket", &o), 0);
    assert_int_equal(cairn_remote_get_range(r, "x", 0, 1, buf_sink, &out), CAIRN_ERROR);
    assert_non_null(strstr(cairn_error_last(), "cannot reach"));
    cairn_remote_free(r);
    cairn_buf_release(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xml),
        cmocka_unit_test(test_xml_hostile),
        cmocka_unit_test(test_ini),
        cmocka_unit_test(test_endpoint),
        cmocka_unit_test(test_credentials),
        cmocka_unit_test(test_retry_and_resume),
        cmocka_unit_test(test_error_messages),
        cmocka_unit_test(test_unreachable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
