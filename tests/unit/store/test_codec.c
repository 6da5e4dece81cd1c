/* Unit tests for lib/store/codec.c: the dispatch table, RAW and ZSTD, choice of the smallest. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/common.h"
#include "cairn/store.h"
#include "store/codec.h"
#include "util/buf.h"
#include "util/hash.h"

static void fill_random(uint8_t *p, size_t n, uint64_t seed)
{
    uint64_t x = seed ? seed : 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (uint8_t)(x >> 24);
    }
}

static void roundtrip(struct cairn_codec_ctx *ctx, const uint8_t *data, size_t len, int want_codec)
{
    struct cairn_buf enc = CAIRN_BUF_INIT;
    uint8_t *dec = malloc(len + 1);
    int codec = -1;

    assert_int_equal(cairn_buf_puts(&enc, "prefix"), 0);
    assert_int_equal(cairn__codec_encode_best(ctx, &enc, &codec, data, len, NULL), 0);
    if (want_codec >= 0)
        assert_int_equal(codec, want_codec);
    /* Appended, never more than the raw size. */
    assert_memory_equal(enc.ptr, "prefix", 6);
    assert_true(enc.len - 6 <= len);
    assert_int_equal(cairn__codec_decode(ctx, codec, dec, len, enc.ptr + 6, enc.len - 6, NULL), 0);
    if (len)
        assert_memory_equal(dec, data, len);
    cairn_buf_release(&enc);
    free(dec);
}

static void test_roundtrip_sizes(void **state)
{
    (void)state;
    struct cairn_codec_ctx *ctx;
    size_t sizes[] = { 0, 1, 2, 100, 65535, 65536, 65537, 4 << 20 };
    uint8_t *data = malloc(4 << 20);

    assert_int_equal(cairn_codec_ctx_new(&ctx, 3), 0);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        /* Half random, half zeros: compressible but not trivially. */
        memset(data, 0, sizes[i]);
        fill_random(data, sizes[i] / 2, i + 1);
        roundtrip(ctx, data, sizes[i], sizes[i] >= 100 ? CAIRN_CODEC_ZSTD : -1);
    }
    cairn_codec_ctx_free(ctx);
    free(data);
}

static void test_incompressible_is_raw(void **state)
{
    (void)state;
    struct cairn_codec_ctx *ctx;
    uint8_t *data = malloc(1 << 20);

    assert_int_equal(cairn_codec_ctx_new(&ctx, 3), 0);
    fill_random(data, 1 << 20, 77);
    roundtrip(ctx, data, 1 << 20, CAIRN_CODEC_RAW);
    roundtrip(ctx, data, 0, CAIRN_CODEC_RAW);
    cairn_codec_ctx_free(ctx);
    free(data);
}

static void test_levels(void **state)
{
    (void)state;
    struct cairn_codec_ctx *ctx;
    uint8_t data[10000];

    memset(data, 'a', sizeof(data));
    /* Negative fast levels are allowed; silly levels are clamped. */
    assert_int_equal(cairn_codec_ctx_new(&ctx, -5), 0);
    assert_int_equal(ctx->level, -5);
    roundtrip(ctx, data, sizeof(data), CAIRN_CODEC_ZSTD);
    cairn_codec_ctx_free(ctx);
    assert_int_equal(cairn_codec_ctx_new(&ctx, 1000), 0);
    assert_true(ctx->level <= 22);
    roundtrip(ctx, data, sizeof(data), CAIRN_CODEC_ZSTD);
    cairn_codec_ctx_free(ctx);
    assert_int_equal(cairn_codec_ctx_new(&ctx, 0), 0);
    assert_int_equal(ctx->level, 3);
    cairn_codec_ctx_free(ctx);
    cairn_codec_ctx_free(NULL);
}

static void test_decode_bad_input(void **state)
{
    (void)state;
    struct cairn_codec_ctx *ctx;
    struct cairn_buf enc = CAIRN_BUF_INIT;
    uint8_t data[5000], out[6000];
    int codec;

    assert_int_equal(cairn_codec_ctx_new(&ctx, 3), 0);
    memset(data, 'x', sizeof(data));
    assert_int_equal(cairn__codec_encode_best(ctx, &enc, &codec, data, sizeof(data), NULL), 0);
    assert_int_equal(codec, CAIRN_CODEC_ZSTD);
    /* Unknown codec ids (from disk) are corruption, not a crash. */
    assert_int_equal(cairn__codec_decode(ctx, 15, out, 10, enc.ptr, enc.len, NULL), CAIRN_ECORRUPT);
    assert_int_equal(cairn__codec_decode(ctx, 200, out, 10, enc.ptr, enc.len, NULL),
                     CAIRN_ECORRUPT);
    assert_int_equal(cairn__codec_decode(ctx, -1, out, 10, enc.ptr, enc.len, NULL), CAIRN_ECORRUPT);
    assert_null(cairn__codec_ops(99));
    assert_string_equal(cairn__codec_name(99), "unknown");
    /* The recorded raw length bounds the output both ways. */
    assert_int_equal(
        cairn__codec_decode(ctx, CAIRN_CODEC_ZSTD, out, sizeof(data) - 1, enc.ptr, enc.len, NULL),
        CAIRN_ECORRUPT);
    assert_int_equal(
        cairn__codec_decode(ctx, CAIRN_CODEC_ZSTD, out, sizeof(data) + 1, enc.ptr, enc.len, NULL),
        CAIRN_ECORRUPT);
    /* Truncated and garbage frames. */
    assert_int_equal(
        cairn__codec_decode(ctx, CAIRN_CODEC_ZSTD, out, sizeof(data), enc.ptr, enc.len - 1, NULL),
        CAIRN_ECORRUPT);
    assert_int_equal(cairn__codec_decode(ctx, CAIRN_CODEC_ZSTD, out, sizeof(data), data, 100, NULL),
                     CAIRN_ECORRUPT);
    assert_int_equal(cairn__codec_decode(ctx, CAIRN_CODEC_ZSTD, out, 0, data, 0, NULL),
                     CAIRN_ECORRUPT);
    /* RAW lengths must agree. */
    assert_int_equal(cairn__codec_decode(ctx, CAIRN_CODEC_RAW, out, 10, data, 11, NULL),
                     CAIRN_ECORRUPT);
    assert_int_equal(cairn__codec_decode(ctx, CAIRN_CODEC_RAW, out, 10, data, 10, NULL), 0);
    /* Random bytes of every length never crash the zstd decoder. */
    for (size_t n = 1; n < 300; n++) {
        uint8_t junk[300];
        fill_random(junk, n, n * 31);
        junk[0] = 0x28; /* zstd magic, so the frame parser runs */
        if (n > 3) {
            junk[1] = 0xb5;
            junk[2] = 0x2f;
            junk[3] = 0xfd;
        }
        (void)cairn__codec_decode(ctx, CAIRN_CODEC_ZSTD, out, sizeof(out), junk, n, NULL);
    }
    cairn_buf_release(&enc);
    cairn_codec_ctx_free(ctx);
}

static void test_store_encode_without_store(void **state)
{
    (void)state;
    struct cairn_codec_ctx *ctx;
    struct cairn_buf out = CAIRN_BUF_INIT;
    struct cairn_chunk_hint hint = { 2, NULL };
    uint8_t data[4096];
    cairn_oid base;
    int codec;

    memset(data, 7, sizeof(data));
    assert_int_equal(cairn_codec_ctx_new(&ctx, 3), 0);
    assert_int_equal(cairn_store_encode(NULL, ctx, data, sizeof(data), &hint, &out, &codec, &base),
                     0);
    assert_int_not_equal(codec, CAIRN_CODEC_RAW);
    assert_true(cairn_oid_is_zero(&base) || codec == CAIRN_CODEC_XORDELTA);
    assert_true(out.len < sizeof(data));
    cairn_buf_release(&out);
    cairn_codec_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_sizes),
        cmocka_unit_test(test_incompressible_is_raw),
        cmocka_unit_test(test_levels),
        cmocka_unit_test(test_decode_bad_input),
        cmocka_unit_test(test_store_encode_without_store),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
