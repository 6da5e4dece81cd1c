/*
 * Unit tests for lib/store/gguf.c: a valid v3 (and v2) file with every
 * metadata value kind, the "need more bytes" protocol at every prefix
 * length, truncated files, and hostile headers: bad magic and versions,
 * absurd counts and string lengths, bad value types, deep arrays, bad
 * alignment, unknown GGML types, overflowing shapes, unaligned, overlapping
 * or out-of-file offsets, duplicate and non-UTF-8 names.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/common.h"
#include "store/gguf.h"
#include "util/buf.h"

static void put32(struct cairn_buf *b, uint32_t v)
{
    assert_int_equal(cairn_buf_put_u32le(b, v), 0);
}

static void put64(struct cairn_buf *b, uint64_t v)
{
    assert_int_equal(cairn_buf_put_u64le(b, v), 0);
}

static void putstr(struct cairn_buf *b, const char *s)
{
    put64(b, strlen(s));
    assert_int_equal(cairn_buf_put(b, s, strlen(s)), 0);
}

static void put_header(struct cairn_buf *b, uint32_t version, uint64_t nt, uint64_t nkv)
{
    cairn_buf_init(b, 0);
    assert_int_equal(cairn_buf_put(b, "GGUF", 4), 0);
    put32(b, version);
    put64(b, nt);
    put64(b, nkv);
}

static void put_tensor(struct cairn_buf *b, const char *name, uint32_t ndims, const uint64_t *dims,
                       uint32_t type, uint64_t off)
{
    putstr(b, name);
    put32(b, ndims);
    for (uint32_t i = 0; i < ndims; i++)
        put64(b, dims[i]);
    put32(b, type);
    put64(b, off);
}

/* Pad to `align` and append `n` data bytes. */
static void put_data(struct cairn_buf *b, size_t align, size_t n)
{
    while (b->len % align)
        assert_int_equal(cairn_buf_putc(b, 0), 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(cairn_buf_putc(b, (char)i), 0);
}

/* A valid file; `*hdr_len` gets the length of the header proper. */
static void make_valid(struct cairn_buf *b, uint32_t version, size_t *hdr_len)
{
    uint64_t d1[2] = { 64, 2 }, d2[1] = { 256 };
    put_header(b, version, 2, 6);
    putstr(b, "general.architecture");
    put32(b, 8);
    putstr(b, "llama");
    putstr(b, "general.alignment");
    put32(b, 4);
    put32(b, 64);
    putstr(b, "tokenizer.ggml.tokens");
    put32(b, 9);
    put32(b, 8);
    put64(b, 3);
    putstr(b, "a");
    putstr(b, "\xff raw bytes are fine in values");
    putstr(b, "");
    putstr(b, "nested");
    put32(b, 9);
    put32(b, 9);
    put64(b, 2);
    for (int i = 0; i < 2; i++) {
        put32(b, 0);
        put64(b, 3);
        assert_int_equal(cairn_buf_put(b, "xyz", 3), 0);
    }
    putstr(b, "f");
    put32(b, 12);
    put64(b, 0x7ff8000000000000ULL);
    putstr(b, "b");
    put32(b, 7);
    assert_int_equal(cairn_buf_putc(b, 1), 0);
    put_tensor(b, "token_embd.weight", 2, d1, 0, 0);
    put_tensor(b, "blk.0.attn_q.weight", 1, d2, 12, 512);
    *hdr_len = b->len;
    put_data(b, 64, 512 + 144);
}

static void test_valid(void **state)
{
    (void)state;
    struct cairn_buf b;
    struct cairn_tensor_table t;
    size_t hl;
    uint64_t ds;

    for (uint32_t v = 2; v <= 3; v++) {
        make_valid(&b, v, &hl);
        ds = (hl + 63) / 64 * 64;
        assert_int_equal(cairn_gguf_parse(&t, b.ptr, b.len, b.len), 0);
        assert_int_equal(t.format, CAIRN_FORMAT_GGUF);
        assert_int_equal(t.version, v);
        assert_int_equal(t.data_start, ds);
        assert_int_equal(t.count, 2);
        assert_string_equal(t.tensors[0].name, "token_embd.weight");
        assert_int_equal(t.tensors[0].dtype, CAIRN_DT_F32);
        assert_int_equal(t.tensors[0].rank, 2);
        assert_int_equal(t.tensors[0].shape[0], 64);
        assert_int_equal(t.tensors[0].start, ds);
        assert_int_equal(t.tensors[0].end, ds + 512);
        assert_int_equal(t.tensors[1].dtype, CAIRN_DT_Q4_K);
        assert_int_equal(t.tensors[1].start, ds + 512);
        assert_int_equal(t.tensors[1].end, ds + 512 + 144);
        assert_int_equal(t.tensors[1].end, b.len);
        cairn_tensor_table_release(&t);
        cairn_buf_release(&b);
    }
}

/* Every prefix shorter than the header asks for more; a file cut there is damaged. */
static void test_prefixes_and_truncation(void **state)
{
    (void)state;
    struct cairn_buf b;
    struct cairn_tensor_table t;
    size_t hl;

    make_valid(&b, 3, &hl);
    for (size_t k = 0; k < hl; k++) {
        assert_int_equal(cairn_gguf_parse(&t, b.ptr, k, b.len), CAIRN_GGUF_MORE);
        assert_int_equal(t.count, 0);
        assert_int_equal(cairn_gguf_parse(&t, b.ptr, k, k), CAIRN_EINVALID);
        assert_int_equal(t.count, 0);
    }
    /* The header complete, the data cut short. */
    assert_int_equal(cairn_gguf_parse(&t, b.ptr, hl, hl), CAIRN_EINVALID);
    assert_int_equal(cairn_gguf_parse(&t, b.ptr, b.len - 1, b.len - 1), CAIRN_EINVALID);
    /* The header alone is enough to parse a complete file. */
    assert_int_equal(cairn_gguf_parse(&t, b.ptr, hl, b.len), 0);
    cairn_tensor_table_release(&t);
    cairn_buf_release(&b);
}

static void expect_invalid(struct cairn_buf *b)
{
    struct cairn_tensor_table t;
    assert_int_equal(cairn_gguf_parse(&t, b->ptr, b->len, b->len), CAIRN_EINVALID);
    assert_int_equal(t.count, 0);
    assert_null(t.tensors);
    cairn_buf_release(b);
}

static void test_bad_preamble(void **state)
{
    (void)state;
    struct cairn_buf b;

    put_header(&b, 3, 0, 0);
    b.ptr[0] = 'g';
    expect_invalid(&b);
    put_header(&b, 1, 0, 0);
    expect_invalid(&b);
    put_header(&b, 4, 0, 0);
    expect_invalid(&b);
    put_header(&b, 0x03000000, 0, 0); /* big-endian file */
    expect_invalid(&b);
    put_header(&b, 3, (uint64_t)1 << 60, 0);
    put_data(&b, 1, 4096);
    expect_invalid(&b);
    put_header(&b, 3, 0, UINT64_MAX);
    put_data(&b, 1, 4096);
    expect_invalid(&b);
    /* Plausible count but not enough bytes for that many tensor infos. */
    put_header(&b, 3, 100, 0);
    put_data(&b, 1, 100);
    expect_invalid(&b);
}

static void test_bad_metadata(void **state)
{
    (void)state;
    struct cairn_buf b;

    /* Key length past EOF (and 2^64 - 1). */
    put_header(&b, 3, 0, 1);
    put64(&b, 1000);
    put_data(&b, 1, 40);
    expect_invalid(&b);
    put_header(&b, 3, 0, 1);
    put64(&b, UINT64_MAX);
    put_data(&b, 1, 40);
    expect_invalid(&b);
    /* String value length absurd. */
    put_header(&b, 3, 0, 1);
    putstr(&b, "k");
    put32(&b, 8);
    put64(&b, (uint64_t)1 << 63);
    put_data(&b, 1, 40);
    expect_invalid(&b);
    /* Unknown value type. */
    put_header(&b, 3, 0, 1);
    putstr(&b, "k");
    put32(&b, 13);
    put_data(&b, 1, 40);
    expect_invalid(&b);
    /* Array of u64 whose byte size overflows; of strings longer than the file. */
    put_header(&b, 3, 0, 1);
    putstr(&b, "k");
    put32(&b, 9);
    put32(&b, 10);
    put64(&b, (uint64_t)1 << 62);
    put_data(&b, 1, 40);
    expect_invalid(&b);
    put_header(&b, 3, 0, 1);
    putstr(&b, "k");
    put32(&b, 9);
    put32(&b, 8);
    put64(&b, 1000000);
    put_data(&b, 1, 4000);
    expect_invalid(&b);
    /* Unknown array element type. */
    put_header(&b, 3, 0, 1);
    putstr(&b, "k");
    put32(&b, 9);
    put32(&b, 77);
    put64(&b, 1);
    put_data(&b, 1, 40);
    expect_invalid(&b);
    /* Arrays nested too deep. */
    put_header(&b, 3, 0, 1);
    putstr(&b, "k");
    put32(&b, 9);
    for (int i = 0; i < 6; i++) {
        put32(&b, 9);
        put64(&b, 1);
    }
    put32(&b, 0);
    put64(&b, 0);
    put_data(&b, 1, 40);
    expect_invalid(&b);
    /* Key not UTF-8. */
    put_header(&b, 3, 0, 1);
    putstr(&b, "k\xc3");
    put32(&b, 0);
    assert_int_equal(cairn_buf_putc(&b, 0), 0);
    expect_invalid(&b);
}

static void put_alignment(struct cairn_buf *b, uint32_t type, uint32_t v)
{
    put_header(b, 3, 0, 1);
    putstr(b, "general.alignment");
    put32(b, type);
    put32(b, v);
    put_data(b, 1, 64);
}

static void test_bad_alignment(void **state)
{
    (void)state;
    struct cairn_buf b;
    struct cairn_tensor_table t;

    put_alignment(&b, 4, 0);
    expect_invalid(&b);
    put_alignment(&b, 4, 48);
    expect_invalid(&b);
    put_alignment(&b, 5, 32);
    expect_invalid(&b);
    put_alignment(&b, 4, 16);
    assert_int_equal(cairn_gguf_parse(&t, b.ptr, b.len, b.len), 0);
    cairn_tensor_table_release(&t);
    cairn_buf_release(&b);
}

/* A file with one tensor described by the arguments and `data` bytes of data. */
static void one_tensor(struct cairn_buf *b, const char *name, uint32_t ndims, const uint64_t *dims,
                       uint32_t type, uint64_t off, size_t data)
{
    put_header(b, 3, 1, 0);
    put_tensor(b, name, ndims, dims, type, off);
    put_data(b, 32, data);
}

static void test_bad_tensors(void **state)
{
    (void)state;
    struct cairn_buf b;
    struct cairn_tensor_table t;
    uint64_t d[9] = { 8, 1, 1, 1, 1, 1, 1, 1, 1 };
    uint64_t big[2] = { (uint64_t)1 << 32, (uint64_t)1 << 32 };
    uint64_t huge[1] = { (uint64_t)1 << 62 };
    uint64_t q[1] = { 33 };
    uint64_t d1[1] = { 8 }, d2[1] = { 16 };

    one_tensor(&b, "ok", 1, d, 0, 0, 32);
    assert_int_equal(cairn_gguf_parse(&t, b.ptr, b.len, b.len), 0);
    cairn_tensor_table_release(&t);
    cairn_buf_release(&b);

    one_tensor(&b, "t", 1, d, 4, 0, 32); /* retired type Q4_2 */
    expect_invalid(&b);
    one_tensor(&b, "t", 1, d, 99, 0, 32);
    expect_invalid(&b);
    one_tensor(&b, "t", 1, d, UINT32_MAX, 0, 32);
    expect_invalid(&b);
    one_tensor(&b, "t", 9, d, 0, 0, 32);
    expect_invalid(&b);
    one_tensor(&b, "t", 2, big, 0, 0, 32); /* element count overflows */
    expect_invalid(&b);
    one_tensor(&b, "t", 1, huge, 0, 0, 32); /* byte count overflows */
    expect_invalid(&b);
    one_tensor(&b, "t", 1, q, 2, 0, 32); /* 33 is not whole Q4_0 blocks */
    expect_invalid(&b);
    one_tensor(&b, "t", 1, d, 0, 4, 64); /* unaligned */
    expect_invalid(&b);
    one_tensor(&b, "t", 1, d, 0, 32, 32); /* past EOF */
    expect_invalid(&b);
    one_tensor(&b, "t", 1, d, 0, UINT64_MAX - 31, 32);
    expect_invalid(&b);
    one_tensor(&b, "t\xed\xa0\x80", 1, d, 0, 0, 32); /* a UTF-16 surrogate */
    expect_invalid(&b);

    /* Two tensors overlapping, and two with the same name. */
    put_header(&b, 3, 2, 0);
    put_tensor(&b, "a", 1, d2, 0, 0);
    put_tensor(&b, "b", 1, d1, 0, 32);
    put_data(&b, 32, 64);
    expect_invalid(&b);
    put_header(&b, 3, 2, 0);
    put_tensor(&b, "a", 1, d1, 0, 0);
    put_tensor(&b, "a", 1, d1, 0, 32);
    put_data(&b, 32, 64);
    expect_invalid(&b);
    /* Listed out of order but disjoint: fine. */
    put_header(&b, 3, 2, 0);
    put_tensor(&b, "late", 1, d1, 0, 32);
    put_tensor(&b, "early", 1, d1, 0, 0);
    put_data(&b, 32, 64);
    assert_int_equal(cairn_gguf_parse(&t, b.ptr, b.len, b.len), 0);
    assert_int_equal(t.count, 2);
    cairn_tensor_table_release(&t);
    cairn_buf_release(&b);
}

static void test_dtype_map(void **state)
{
    (void)state;
    assert_int_equal(cairn_gguf_dtype(0), CAIRN_DT_F32);
    assert_int_equal(cairn_gguf_dtype(1), CAIRN_DT_F16);
    assert_int_equal(cairn_gguf_dtype(8), CAIRN_DT_Q8_0);
    assert_int_equal(cairn_gguf_dtype(30), CAIRN_DT_BF16);
    assert_int_equal(cairn_gguf_dtype(5), CAIRN_DT_UNKNOWN);
    assert_int_equal(cairn_gguf_dtype(31), CAIRN_DT_UNKNOWN);
    assert_int_equal(cairn_gguf_dtype(1000), CAIRN_DT_UNKNOWN);
    assert_int_equal(cairn_dtype_info(CAIRN_DT_Q8_0)->block_bytes, 34);
    assert_int_equal(cairn_dtype_info(CAIRN_DT_Q6_K)->block_bytes, 210);
    assert_null(cairn_dtype_info(CAIRN_DT_UNKNOWN));
    assert_null(cairn_dtype_info(CAIRN_DT__COUNT));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),         cmocka_unit_test(test_prefixes_and_truncation),
        cmocka_unit_test(test_bad_preamble),  cmocka_unit_test(test_bad_metadata),
        cmocka_unit_test(test_bad_alignment), cmocka_unit_test(test_bad_tensors),
        cmocka_unit_test(test_dtype_map),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
