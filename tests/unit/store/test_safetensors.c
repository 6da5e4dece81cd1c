/*
 * Unit tests for lib/store/safetensors.c: a valid header with metadata, every
 * kind of hostile header (lengths over the cap or past the end, truncation,
 * bad JSON and UTF-8, duplicate keys, unknown dtypes, bad shapes and
 * offsets, overflowing shapes, overlaps) and the writer's round trip.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/common.h"
#include "store/safetensors.h"
#include "util/buf.h"

/* A file image: 8-byte length, `json`, then `data_len` zero bytes. */
static void make_file(struct cairn_buf *b, const char *json, size_t data_len)
{
    cairn_buf_init(b, 0);
    assert_int_equal(cairn_buf_put_u64le(b, strlen(json)), 0);
    assert_int_equal(cairn_buf_puts(b, json), 0);
    for (size_t i = 0; i < data_len; i++)
        assert_int_equal(cairn_buf_putc(b, 0), 0);
}

/* Parse `json` followed by `data_len` bytes; returns the parse result. */
static int parse_json(struct cairn_tensor_table *t, const char *json, size_t data_len)
{
    struct cairn_buf b;
    int r;
    make_file(&b, json, data_len);
    r = cairn_safetensors_parse(t, b.ptr, b.len, b.len);
    cairn_buf_release(&b);
    return r;
}

static void expect_invalid(const char *json, size_t data_len)
{
    struct cairn_tensor_table t;
    assert_int_equal(parse_json(&t, json, data_len), CAIRN_EINVALID);
    assert_int_equal(t.count, 0);
    assert_null(t.tensors);
    cairn_tensor_table_release(&t);
}

static void test_valid(void **state)
{
    (void)state;
    const char *json =
        "{\"__metadata__\":{\"format\":\"pt\"},"
        "\"b\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[16,28]},"
        "\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
        "\"s\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[28,36]},"
        "\"e\":{\"dtype\":\"F8_E4M3\",\"shape\":[0,5],\"data_offsets\":[36,36]}}  ";
    struct cairn_tensor_table t;
    uint64_t hs = 8 + strlen(json);

    assert_int_equal(parse_json(&t, json, 36), 0);
    assert_int_equal(t.format, CAIRN_FORMAT_SAFETENSORS);
    assert_int_equal(t.data_start, hs);
    assert_int_equal(t.count, 4);
    assert_string_equal(t.tensors[0].name, "b");
    assert_int_equal(t.tensors[0].dtype, CAIRN_DT_BF16);
    assert_int_equal(t.tensors[0].rank, 2);
    assert_int_equal(t.tensors[0].shape[1], 3);
    assert_int_equal(t.tensors[0].start, hs + 16);
    assert_int_equal(t.tensors[0].end, hs + 28);
    assert_string_equal(t.tensors[1].name, "a");
    assert_int_equal(t.tensors[1].dtype, CAIRN_DT_F32);
    assert_int_equal(t.tensors[2].rank, 0);
    assert_int_equal(t.tensors[3].start, t.tensors[3].end);
    assert_int_equal(t.meta_count, 1);
    assert_string_equal(t.meta_keys[0], "format");
    assert_string_equal(t.meta_vals[0], "pt");
    assert_non_null(cairn_tensor_table_find(&t, "s"));
    assert_null(cairn_tensor_table_find(&t, "zz"));
    cairn_tensor_table_release(&t);
    cairn_tensor_table_release(NULL);

    /* An empty object is a valid file with no tensors. */
    assert_int_equal(parse_json(&t, "{}", 0), 0);
    assert_int_equal(t.count, 0);
    cairn_tensor_table_release(&t);
}

static void test_header_length(void **state)
{
    (void)state;
    unsigned char file[64] = { 0 };
    struct cairn_tensor_table t;
    uint64_t hs;

    /* Shorter than the length prefix. */
    assert_int_equal(cairn_safetensors_parse(&t, file, 5, 5), CAIRN_EINVALID);
    /* N = 2^64 - 1, N = 100 MiB + 1, N past EOF. */
    memset(file, 0xff, 8);
    file[8] = '{';
    assert_int_equal(cairn_safetensors_parse(&t, file, sizeof(file), sizeof(file)), CAIRN_EINVALID);
    cairn_put_u64le(file, CAIRN_SAFETENSORS_HEADER_MAX + 1);
    assert_int_equal(cairn_safetensors_header_size(&hs, file, 8, (uint64_t)1 << 40),
                     CAIRN_EINVALID);
    cairn_put_u64le(file, 57);
    assert_int_equal(cairn_safetensors_parse(&t, file, sizeof(file), sizeof(file)), CAIRN_EINVALID);
    cairn_put_u64le(file, 56);
    assert_int_equal(cairn_safetensors_header_size(&hs, file, 8, sizeof(file)), 0);
    assert_int_equal(hs, 64);
    /* Header present in the file but not in the buffer given. */
    assert_int_equal(cairn_safetensors_parse(&t, file, 20, sizeof(file)), CAIRN_EINVALID);
    assert_int_equal(t.count, 0);
}

static void test_bad_json(void **state)
{
    (void)state;
    expect_invalid("{", 0);
    expect_invalid("[]", 0);
    expect_invalid("{\"a\":1} x", 0);
    expect_invalid(
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
        "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
        8); /* duplicate */
    expect_invalid("{\"\xff\xfe\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
    expect_invalid("{\"\xc0\xaf\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
    expect_invalid("{\"a\\u0000b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
    expect_invalid("{\"__metadata__\":{\"k\":1}}", 0);
    expect_invalid("{\"__metadata__\":[]}", 0);
    expect_invalid("{\"a\":[]}", 0);
    /* Embedded NUL byte inside the JSON. */
    {
        struct cairn_buf b;
        struct cairn_tensor_table t;
        make_file(&b, "{\"a\":1}", 0);
        b.ptr[10] = '\0';
        assert_int_equal(cairn_safetensors_parse(&t, b.ptr, b.len, b.len), CAIRN_EINVALID);
        cairn_buf_release(&b);
    }
}

static void test_bad_tensors(void **state)
{
    (void)state;
    /* Unknown and sub-byte dtypes. */
    expect_invalid("{\"a\":{\"dtype\":\"F128\",\"shape\":[1],\"data_offsets\":[0,16]}}", 16);
    expect_invalid("{\"a\":{\"dtype\":\"Q4_0\",\"shape\":[32],\"data_offsets\":[0,18]}}", 18);
    expect_invalid("{\"a\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
    /* Missing fields, rank 9, negative, fractional and huge dimensions. */
    expect_invalid("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4);
    expect_invalid(
        "{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],"
        "\"data_offsets\":[0,1]}}",
        1);
    expect_invalid("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4);
    expect_invalid("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}}", 4);
    expect_invalid(
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],"
        "\"data_offsets\":[0,4]}}",
        4);
    /* Product of the shape overflows 64 bits; element count fine but bytes overflow. */
    expect_invalid(
        "{\"a\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296],"
        "\"data_offsets\":[0,0]}}",
        0);
    expect_invalid(
        "{\"a\":{\"dtype\":\"F64\",\"shape\":[4611686018427387904],"
        "\"data_offsets\":[0,0]}}",
        0);
    /* Offsets: reversed, wrong count, past EOF, wrong length, negative. */
    expect_invalid("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4);
    expect_invalid("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4);
    expect_invalid("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 3);
    expect_invalid("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 8);
    expect_invalid("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4);
    expect_invalid(
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],"
        "\"data_offsets\":[9223372036854775804,9223372036854775808]}}",
        4);
    /* Overlapping ranges, in either order. */
    expect_invalid(
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
        "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
        12);
    expect_invalid(
        "{\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]},"
        "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
        12);
    expect_invalid(
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
        "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
        4);
}

static void test_unsorted_and_gaps_ok(void **state)
{
    (void)state;
    struct cairn_tensor_table t;
    /* Listed out of order, with a gap: valid (the gap becomes opaque bytes). */
    assert_int_equal(parse_json(&t,
                                "{\"z\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[8,12]},"
                                "\"y\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}",
                                16),
                     0);
    assert_int_equal(t.count, 2);
    cairn_tensor_table_release(&t);
}

/* A name the manifest can store parses; one byte more is refused (it could never be committed). */
static void test_name_limit(void **state)
{
    (void)state;
    struct cairn_tensor_table t;
    struct cairn_buf json = CAIRN_BUF_INIT;
    for (size_t extra = 0; extra < 2; extra++) {
        cairn_buf_clear(&json);
        assert_int_equal(cairn_buf_putc(&json, '{'), 0);
        assert_int_equal(cairn_buf_putc(&json, '"'), 0);
        for (size_t i = 0; i < CAIRN_TENSOR_NAME_MAX + extra; i++)
            assert_int_equal(cairn_buf_putc(&json, 'n'), 0);
        assert_int_equal(
            cairn_buf_puts(&json, "\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}}"),
            0);
        if (extra) {
            expect_invalid(json.ptr, 4);
            assert_non_null(strstr(cairn_error_last(), "65537 bytes long"));
        } else {
            assert_int_equal(parse_json(&t, json.ptr, 4), 0);
            assert_int_equal(strlen(t.tensors[0].name), CAIRN_TENSOR_NAME_MAX);
            cairn_tensor_table_release(&t);
        }
    }
    cairn_buf_release(&json);
}

static void test_serialize_roundtrip(void **state)
{
    (void)state;
    struct cairn_tensor_table t, back;
    struct cairn_buf b = CAIRN_BUF_INIT;
    uint64_t s1[2] = { 3, 5 }, s2[1] = { 7 }, total;

    cairn_tensor_table_init(&t);
    assert_int_equal(cairn_tensor_table_add(&t, "layer.0.weight", CAIRN_DT_BF16, 2, s1, 0, 0), 0);
    assert_int_equal(cairn_tensor_table_add(&t, "layer.0.bias", CAIRN_DT_F32, 1, s2, 0, 0), 0);
    assert_int_equal(cairn_tensor_table_add(&t, "scalar", CAIRN_DT_F64, 0, NULL, 0, 0), 0);
    assert_int_equal(cairn_tensor_table_add_meta(&t, "format", "pt"), 0);
    assert_int_equal(cairn_tensor_table_add_meta(&t, "note", "caf\xc3\xa9"), 0);
    assert_int_equal(cairn_safetensors_serialize(&b, &t), 0);
    assert_int_equal(b.len % 8, 0);
    assert_int_equal(t.data_start, b.len);
    assert_int_equal(t.tensors[0].start, b.len);
    assert_int_equal(t.tensors[0].end, b.len + 30);
    assert_int_equal(t.tensors[1].end, b.len + 58);
    total = t.tensors[2].end;
    assert_int_equal(total, b.len + 66);

    assert_int_equal(cairn_safetensors_parse(&back, b.ptr, b.len, total), 0);
    assert_int_equal(back.count, 3);
    assert_int_equal(back.data_start, t.data_start);
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal(back.tensors[i].name, t.tensors[i].name);
        assert_int_equal(back.tensors[i].dtype, t.tensors[i].dtype);
        assert_int_equal(back.tensors[i].rank, t.tensors[i].rank);
        for (unsigned d = 0; d < t.tensors[i].rank; d++)
            assert_int_equal(back.tensors[i].shape[d], t.tensors[i].shape[d]);
        assert_int_equal(back.tensors[i].start, t.tensors[i].start);
        assert_int_equal(back.tensors[i].end, t.tensors[i].end);
    }
    assert_int_equal(back.meta_count, 2);
    assert_string_equal(back.meta_vals[1], "caf\xc3\xa9");
    cairn_tensor_table_release(&back);
    cairn_tensor_table_release(&t);

    /* A GGUF-only dtype, and a name that is not UTF-8, cannot be written. */
    cairn_buf_clear(&b);
    cairn_tensor_table_init(&t);
    s2[0] = 32;
    assert_int_equal(cairn_tensor_table_add(&t, "q", CAIRN_DT_Q4_0, 1, s2, 0, 0), 0);
    assert_int_equal(cairn_safetensors_serialize(&b, &t), CAIRN_EINVALID);
    cairn_tensor_table_release(&t);
    assert_int_equal(cairn_tensor_table_add(&t, "bad\xff", CAIRN_DT_U8, 1, s2, 0, 0), 0);
    assert_int_equal(cairn_safetensors_serialize(&b, &t), CAIRN_EINVALID);
    cairn_tensor_table_release(&t);
    assert_int_equal(cairn_tensor_table_add(&t, "x", CAIRN_DT_U8, 1, s2, 0, 0), 0);
    assert_int_equal(cairn_tensor_table_add(&t, "x", CAIRN_DT_U8, 1, s2, 0, 0), 0);
    assert_int_equal(cairn_safetensors_serialize(&b, &t), CAIRN_EINVALID);
    cairn_tensor_table_release(&t);
    cairn_buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_header_length),
        cmocka_unit_test(test_bad_json),
        cmocka_unit_test(test_bad_tensors),
        cmocka_unit_test(test_unsorted_and_gaps_ok),
        cmocka_unit_test(test_name_limit),
        cmocka_unit_test(test_serialize_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
