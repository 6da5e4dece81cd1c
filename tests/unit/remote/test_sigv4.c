/*
 * Unit tests for lib/remote/sigv4.c against AWS's published vectors: the
 * SigV4 test suite (get-vanilla, get-vanilla-query-order-key-case, get-utf8,
 * post-vanilla, post-x-www-form-urlencoded; region us-east-1, service
 * "service", 20150830T123600Z) and the S3 examples of the S3 API guide
 * (examplebucket, 20130524T000000Z), plus the encoding rules S3 needs and
 * hostile query strings.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/common.h"
#include "remote/sigv4.h"

static const struct cairn_sigv4_key suite_key = {
    "AKIDEXAMPLE",      "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "us-east-1", "service",
    "20150830T123600Z",
};

static const struct cairn_sigv4_key s3_key = {
    "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "us-east-1", "s3",
    "20130524T000000Z",
};

static void check_sig(const struct cairn_sigv4_key *key, const struct cairn_sigv4_request *req,
                      const char *want)
{
    char sig[65];
    assert_int_equal(cairn_sigv4_signature(sig, key, req), 0);
    assert_string_equal(sig, want);
}

static void test_get_vanilla(void **state)
{
    (void)state;
    struct cairn_sigv4_header h[] = {
        { "Host", "example.amazonaws.com" },
        { "X-Amz-Date", "20150830T123600Z" },
    };
    struct cairn_sigv4_request req = { "GET", "/", "", h, 2, CAIRN_SIGV4_EMPTY_SHA256 };
    struct cairn_buf b = CAIRN_BUF_INIT;

    assert_int_equal(cairn_sigv4_canonical_request(&b, &req), 0);
    assert_string_equal(b.ptr,
                        "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
                        "host;x-amz-date\n" CAIRN_SIGV4_EMPTY_SHA256);
    cairn_buf_clear(&b);
    assert_int_equal(cairn_sigv4_string_to_sign(&b, &suite_key, &req), 0);
    assert_string_equal(b.ptr,
                        "AWS4-HMAC-SHA256\n20150830T123600Z\n"
                        "20150830/us-east-1/service/aws4_request\n"
                        "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63");
    cairn_buf_clear(&b);
    assert_int_equal(cairn_sigv4_authorization(&b, &suite_key, &req), 0);
    assert_string_equal(b.ptr,
                        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/"
                        "aws4_request, SignedHeaders=host;x-amz-date, Signature="
                        "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
    cairn_buf_release(&b);
}

static void test_get_vanilla_query_order_key_case(void **state)
{
    (void)state;
    struct cairn_sigv4_header h[] = {
        { "Host", "example.amazonaws.com" },
        { "X-Amz-Date", "20150830T123600Z" },
    };
    struct cairn_sigv4_request req = { "GET", "/", "Param2=value2&Param1=value1",
                                       h,     2,   CAIRN_SIGV4_EMPTY_SHA256 };
    check_sig(&suite_key, &req, "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
}

static void test_get_utf8(void **state)
{
    (void)state;
    struct cairn_sigv4_header h[] = {
        { "Host", "example.amazonaws.com" },
        { "X-Amz-Date", "20150830T123600Z" },
    };
    struct cairn_buf path = CAIRN_BUF_INIT;
    assert_int_equal(cairn_sigv4_uri_encode(&path, "/\xe1\x88\xb4", 4, true), 0);
    assert_string_equal(path.ptr, "/%E1%88%B4");
    struct cairn_sigv4_request req = { "GET", path.ptr, NULL, h, 2, CAIRN_SIGV4_EMPTY_SHA256 };
    check_sig(&suite_key, &req, "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85");
    cairn_buf_release(&path);
}

static void test_post_vanilla(void **state)
{
    (void)state;
    struct cairn_sigv4_header h[] = {
        { "X-Amz-Date", "20150830T123600Z" },
        { "Host", "example.amazonaws.com" },
    };
    struct cairn_sigv4_request req = { "POST", "/", NULL, h, 2, CAIRN_SIGV4_EMPTY_SHA256 };
    check_sig(&suite_key, &req, "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
}

static void test_post_x_www_form_urlencoded(void **state)
{
    (void)state;
    char body_hash[65];
    struct cairn_sigv4_header h[] = {
        { "Content-Type", "application/x-www-form-urlencoded" },
        { "Host", "example.amazonaws.com" },
        { "X-Amz-Date", "20150830T123600Z" },
    };
    struct cairn_buf b = CAIRN_BUF_INIT;
    cairn_sigv4_sha256_hex(body_hash, "Param1=value1", 13);
    assert_string_equal(body_hash,
                        "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e");
    struct cairn_sigv4_request req = { "POST", "/", "", h, 3, body_hash };
    assert_int_equal(cairn_sigv4_string_to_sign(&b, &suite_key, &req), 0);
    assert_non_null(
        strstr(b.ptr, "\n42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281"));
    check_sig(&suite_key, &req, "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a");
    cairn_buf_release(&b);
}

/* S3 guide, GET Object with a Range header. */
static void test_s3_get_object_range(void **state)
{
    (void)state;
    struct cairn_sigv4_header h[] = {
        { "Host", "examplebucket.s3.amazonaws.com" },
        { "Range", "bytes=0-9" },
        { "x-amz-content-sha256", CAIRN_SIGV4_EMPTY_SHA256 },
        { "x-amz-date", "20130524T000000Z" },
    };
    struct cairn_sigv4_request req = { "GET", "/test.txt", NULL, h, 4, CAIRN_SIGV4_EMPTY_SHA256 };
    struct cairn_buf b = CAIRN_BUF_INIT;
    assert_int_equal(cairn_sigv4_string_to_sign(&b, &s3_key, &req), 0);
    assert_non_null(
        strstr(b.ptr, "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972"));
    check_sig(&s3_key, &req, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
    cairn_buf_release(&b);
}

/* S3 guide, PUT Object "test$file.text": '$' in a key is encoded in the path. */
static void test_s3_put_object(void **state)
{
    (void)state;
    char body_hash[65];
    struct cairn_buf path = CAIRN_BUF_INIT;
    cairn_sigv4_sha256_hex(body_hash, "Welcome to Amazon S3.", 21);
    assert_string_equal(body_hash,
                        "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
    struct cairn_sigv4_header h[] = {
        { "Host", "examplebucket.s3.amazonaws.com" },
        { "Date", "Fri, 24 May 2013 00:00:00 GMT" },
        { "x-amz-date", "20130524T000000Z" },
        { "x-amz-storage-class", "REDUCED_REDUNDANCY" },
        { "x-amz-content-sha256", body_hash },
    };
    assert_int_equal(cairn_buf_puts(&path, "/"), 0);
    assert_int_equal(cairn_sigv4_uri_encode(&path, "test$file.text", 14, true), 0);
    assert_string_equal(path.ptr, "/test%24file.text");
    struct cairn_sigv4_request req = { "PUT", path.ptr, NULL, h, 5, body_hash };
    check_sig(&s3_key, &req, "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
    cairn_buf_release(&path);
}

/* S3 guide, GET ?lifecycle: a bare query name signs as "lifecycle=" (as ?uploads must). */
static void test_s3_bare_query_name(void **state)
{
    (void)state;
    struct cairn_sigv4_header h[] = {
        { "Host", "examplebucket.s3.amazonaws.com" },
        { "x-amz-content-sha256", CAIRN_SIGV4_EMPTY_SHA256 },
        { "x-amz-date", "20130524T000000Z" },
    };
    struct cairn_sigv4_request req = { "GET", "/", "lifecycle", h, 3, CAIRN_SIGV4_EMPTY_SHA256 };
    struct cairn_buf b = CAIRN_BUF_INIT;
    check_sig(&s3_key, &req, "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
    req.query = "prefix=J&max-keys=2";
    check_sig(&s3_key, &req, "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
    assert_int_equal(cairn_sigv4_canonical_query(&b, "uploads"), 0);
    assert_string_equal(b.ptr, "uploads=");
    cairn_buf_release(&b);
}

static void test_uri_encode_rules(void **state)
{
    (void)state;
    struct cairn_buf b = CAIRN_BUF_INIT;
    assert_int_equal(cairn_sigv4_uri_encode(&b, "a/b c+d~e_f.g-h*", 16, true), 0);
    assert_string_equal(b.ptr, "a/b%20c%2Bd~e_f.g-h%2A");
    cairn_buf_clear(&b);
    assert_int_equal(cairn_sigv4_uri_encode(&b, "a/b=\xff", 5, false), 0);
    assert_string_equal(b.ptr, "a%2Fb%3D%FF");
    cairn_buf_clear(&b);
    /* Query values: '/' encoded, already-encoded input normalised, sort by name then value. */
    assert_int_equal(cairn_sigv4_canonical_query(&b, "prefix=a/b&list-type=2&a=2&a=1&x=%2f%7E"), 0);
    assert_string_equal(b.ptr, "a=1&a=2&list-type=2&prefix=a%2Fb&x=%2F~");
    cairn_buf_clear(&b);
    assert_int_equal(cairn_sigv4_canonical_query(&b, "&&uploadId=x+y&"), 0);
    assert_string_equal(b.ptr, "uploadId=x%2By");
    cairn_buf_release(&b);
}

static void test_hostile_query(void **state)
{
    (void)state;
    struct cairn_buf b = CAIRN_BUF_INIT;
    assert_int_equal(cairn_sigv4_canonical_query(&b, "a=%"), CAIRN_EINVALID);
    assert_int_equal(cairn_sigv4_canonical_query(&b, "a=%4"), CAIRN_EINVALID);
    assert_int_equal(cairn_sigv4_canonical_query(&b, "a=%zz"), CAIRN_EINVALID);
    assert_int_equal(cairn_sigv4_canonical_query(&b, "%=1"), CAIRN_EINVALID);
    cairn_buf_clear(&b);
    assert_int_equal(cairn_sigv4_canonical_query(&b, "==&=%00"), 0);
    assert_string_equal(b.ptr, "=%00&=%3D");
    cairn_buf_release(&b);
}

static void test_headers_trim_and_duplicates(void **state)
{
    (void)state;
    struct cairn_sigv4_header h[] = {
        { "My-Header1", "  value2  " },
        { "host", "example.amazonaws.com" },
        { "my-header1", "a   b\t c" },
        { "x-amz-date", "20150830T123600Z" },
    };
    struct cairn_sigv4_request req = { "GET", "/", NULL, h, 4, CAIRN_SIGV4_EMPTY_SHA256 };
    struct cairn_buf b = CAIRN_BUF_INIT;
    assert_int_equal(cairn_sigv4_canonical_request(&b, &req), 0);
    assert_non_null(strstr(b.ptr, "\nmy-header1:value2,a b c\nx-amz-date"));
    assert_non_null(strstr(b.ptr, "\n\nhost;my-header1;x-amz-date\n"));
    cairn_buf_clear(&b);
    struct cairn_sigv4_key bad = suite_key;
    bad.amz_date = "2015";
    char sig[65];
    assert_int_equal(cairn_sigv4_signature(sig, &bad, &req), CAIRN_EINVALID);
    cairn_buf_release(&b);
}

static void test_amz_date(void **state)
{
    (void)state;
    char d[17];
    cairn_sigv4_amz_date(d, 1440938160);
    assert_string_equal(d, "20150830T123600Z");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_vanilla),
        cmocka_unit_test(test_get_vanilla_query_order_key_case),
        cmocka_unit_test(test_get_utf8),
        cmocka_unit_test(test_post_vanilla),
        cmocka_unit_test(test_post_x_www_form_urlencoded),
        cmocka_unit_test(test_s3_get_object_range),
        cmocka_unit_test(test_s3_put_object),
        cmocka_unit_test(test_s3_bare_query_name),
        cmocka_unit_test(test_uri_encode_rules),
        cmocka_unit_test(test_hostile_query),
        cmocka_unit_test(test_headers_trim_and_duplicates),
        cmocka_unit_test(test_amz_date),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
