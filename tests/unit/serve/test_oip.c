/*
 * Unit tests for lib/serve/oip.c: flat and nested inputs of every datatype
 * family, one-row shapes, malformed and hostile bodies, and encodings that
 * jansson parses back to the same numbers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cairn/common.h"
#include "serve/oip.h"
#include "serve/oipclient.h"

static int decode(struct cairn_oip_request *r, const char *body)
{
    return cairn_oip_decode_infer(r, body, strlen(body), 1 << 20);
}

static void test_decode_flat_and_nested(void **state)
{
    (void)state;
    struct cairn_oip_request r;
    assert_int_equal(decode(&r,
                            "{\"id\":\"r1\",\"inputs\":[{\"name\":\"x\",\"shape\":[2,3],"
                            "\"datatype\":\"FP32\",\"data\":[1,2,3,4.5,5,-6]}]}"),
                     0);
    assert_string_equal(r.id, "r1");
    assert_string_equal(r.input_name, "x");
    assert_int_equal(r.rows, 2);
    assert_int_equal(r.cols, 3);
    assert_true(r.data[3] == 4.5f && r.data[5] == -6.0f);
    cairn_oip_request_release(&r);

    assert_int_equal(decode(&r,
                            "{\"inputs\":[{\"name\":\"x\",\"shape\":[2,2],"
                            "\"datatype\":\"INT64\",\"data\":[[1,2],[3,4]]}]}"),
                     0);
    assert_null(r.id);
    assert_true(r.data[0] == 1.0f && r.data[3] == 4.0f);
    cairn_oip_request_release(&r);

    assert_int_equal(decode(&r,
                            "{\"inputs\":[{\"name\":\"x\",\"shape\":[3],"
                            "\"datatype\":\"FP64\",\"data\":[0.25,1e3,-2]}]}"),
                     0);
    assert_int_equal(r.rows, 1);
    assert_int_equal(r.cols, 3);
    assert_true(r.data[1] == 1000.0f);
    cairn_oip_request_release(&r);

    /* An empty batch is a valid request. */
    assert_int_equal(decode(&r,
                            "{\"inputs\":[{\"name\":\"x\",\"shape\":[0,4],"
                            "\"datatype\":\"FP32\",\"data\":[]}]}"),
                     0);
    assert_int_equal(r.rows, 0);
    cairn_oip_request_release(&r);
}

static void test_decode_rejects(void **state)
{
    (void)state;
    const char *bad[] = {
        "",
        "not json",
        "[]",
        "{}",
        "{\"inputs\":[]}",
        "{\"inputs\":{}}",
        "{\"id\":5,\"inputs\":[{\"name\":\"x\",\"shape\":[1,1],\"datatype\":\"FP32\",\"data\":[1]}]"
        "}",
        "{\"inputs\":[{\"name\":\"x\",\"shape\":[1,1],\"datatype\":\"FP32\",\"data\":[1]},"
        "{\"name\":\"y\",\"shape\":[1,1],\"datatype\":\"FP32\",\"data\":[1]}]}",
        "{\"inputs\":[{\"shape\":[1,1],\"datatype\":\"FP32\",\"data\":[1]}]}",
        "{\"inputs\":[{\"name\":\"x\",\"shape\":[1,1],\"datatype\":\"BYTES\",\"data\":[1]}]}",
        "{\"inputs\":[{\"name\":\"x\",\"shape\":[1,2],\"datatype\":\"FP32\",\"data\":[1]}]}",
        "{\"inputs\":[{\"name\":\"x\",\"shape\":[1,1],\"datatype\":\"FP32\",\"data\":[1,2]}]}",
        "{\"inputs\":[{\"name\":\"x\",\"shape\":[1,1,1],\"datatype\":\"FP32\",\"data\":[1]}]}",
        "{\"inputs\":[{\"name\":\"x\",\"shape\":[-1,1],\"datatype\":\"FP32\",\"data\":[1]}]}",
        "{\"inputs\":[{\"name\":\"x\",\"shape\":[1.5,1],\"datatype\":\"FP32\",\"data\":[1]}]}",
        "{\"inputs\":[{\"name\":\"x\",\"shape\":[1,1],\"datatype\":\"FP32\",\"data\":[\"a\"]}]}",
        "{\"inputs\":[{\"name\":\"x\",\"shape\":[1,1],\"datatype\":\"FP32\",\"data\":[1e300]}]}",
        "{\"inputs\":[{\"name\":\"x\",\"shape\":[1,1],\"datatype\":\"INT32\",\"data\":[1.5]}]}",
        "{\"inputs\":[{\"name\":\"x\",\"shape\":[1,1],\"datatype\":\"UINT8\",\"data\":[-1]}]}",
        "{\"inputs\":[{\"name\":\"x\",\"shape\":[1,1],\"datatype\":\"FP32\",\"data\":[null]}]}",
        "{\"inputs\":[{\"name\":\"x\",\"shape\":[1,1],\"datatype\":\"FP32\","
        "\"data\":[[[[[[[[[[1]]]]]]]]]]}]}",
        /* A shape that claims billions of elements is refused before allocating. */
        "{\"inputs\":[{\"name\":\"x\",\"shape\":[100000,100000],\"datatype\":\"FP32\",\"data\":[1]}"
        "]}",
        "{\"inputs\":[{\"name\":\"x\",\"shape\":[1000,1000],\"datatype\":\"FP32\",\"data\":[1]}]}",
        "{\"inputs\":[{\"name\":\"x\",\"shape\":[1,1],\"datatype\":\"FP32\",\"data\":[1]}],"
        "\"inputs\":[]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct cairn_oip_request r;
        assert_int_equal(decode(&r, bad[i]), CAIRN_EINVALID);
        cairn_oip_request_release(&r);
    }
    /* Bytes that are not text at all, and a NUL in the middle. */
    struct cairn_oip_request r;
    assert_int_equal(cairn_oip_decode_infer(&r, "{\"a\0\":1}", 8, 10), CAIRN_EINVALID);
    cairn_oip_request_release(&r);
    assert_int_equal(cairn_oip_decode_infer(&r, "\xff\xfe", 2, 10), CAIRN_EINVALID);
    cairn_oip_request_release(&r);
}

static void test_encode_roundtrip(void **state)
{
    (void)state;
    struct cairn_buf b = CAIRN_BUF_INIT;
    const float p[] = { 0.1f, 0.9f, 0.75f, 0.25f };
    const size_t labels[] = { 1, 0 };
    const char *names[] = { "cat", "d\"og" };
    json_error_t e;
    json_t *j, *outs;

    assert_int_equal(cairn_oip_encode_infer(&b, "m", "v1", "id\n1", p, labels, 2, 2, names), 0);
    j = json_loads(b.ptr, 0, &e);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "model_name")), "m");
    assert_string_equal(json_string_value(json_object_get(j, "id")), "id\n1");
    outs = json_object_get(j, "outputs");
    assert_int_equal(json_array_size(outs), 3);
    json_t *probs = json_object_get(json_array_get(outs, 0), "data");
    for (size_t i = 0; i < 4; i++)
        assert_true((float)json_number_value(json_array_get(probs, i)) == p[i]);
    assert_int_equal(
        json_integer_value(json_array_get(json_object_get(json_array_get(outs, 1), "data"), 0)), 1);
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(json_array_get(outs, 2), "data"), 1)),
        "cat");
    json_decref(j);

    /* JSON has no NaN or Inf: such an output is an error and appends nothing. */
    const float bad[][4] = { { 0.1f, NAN, 0.5f, 0.5f },
                             { 0.1f, 0.9f, INFINITY, 0 },
                             { 0.1f, 0.9f, 0.5f, -INFINITY } };
    for (size_t k = 0; k < 3; k++) {
        cairn_buf_clear(&b);
        assert_int_equal(cairn_oip_encode_infer(&b, "m", "v1", NULL, bad[k], labels, 2, 2, NULL),
                         CAIRN_EINVALID);
        assert_int_equal(b.len, 0);
        assert_non_null(strstr(cairn_error_last(), "model output is not finite"));
    }

    /* Nor does a request carry one: the client refuses, naming row and feature. */
    const float x[] = { 1, 2, 3, NAN };
    cairn_buf_clear(&b);
    assert_int_equal(cairn_oip_encode_rows(&b, NULL, "x", x, 2, 2), CAIRN_EINVALID);
    assert_non_null(strstr(cairn_error_last(), "row 1 feature 1 is not finite"));
    cairn_buf_clear(&b);
    assert_int_equal(cairn_oip_encode_rows(&b, NULL, "x", x, 1, 2), 0);
    assert_non_null(j = json_loads(b.ptr, 0, &e));
    json_decref(j);

    cairn_buf_clear(&b);
    assert_int_equal(cairn_oip_encode_metadata(&b, "m", "v1", "cairn-mlp", 4, 3, 0), 0);
    assert_non_null(j = json_loads(b.ptr, 0, &e));
    assert_int_equal(
        json_integer_value(json_array_get(
            json_object_get(json_array_get(json_object_get(j, "inputs"), 0), "shape"), 1)),
        4);
    json_decref(j);

    cairn_buf_clear(&b);
    assert_int_equal(cairn_oip_encode_error(&b, "bad \"x\"\x01"), 0);
    assert_non_null(j = json_loads(b.ptr, 0, &e));
    assert_string_equal(json_string_value(json_object_get(j, "error")), "bad \"x\"\x01");
    json_decref(j);
    cairn_buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_flat_and_nested),
        cmocka_unit_test(test_decode_rejects),
        cmocka_unit_test(test_encode_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
