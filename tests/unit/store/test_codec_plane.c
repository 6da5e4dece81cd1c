/* Unit tests for lib/store/codec_plane.c: the PLANE codec (byte planes + order-1 rANS). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/common.h"
#include "cairn/store.h"
#include "store/codec.h"
#include "store/codec_plane.h"
#include "util/buf.h"

static uint64_t rng_state = 1;

static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

/* Standard normal by Box-Muller. */
static double normal(void)
{
    double u = (rnd() + 1.0) / 4294967297.0, v = rnd() / 4294967296.0;
    return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

/* IEEE half from a float (round to nearest even is not needed: any bits do). */
static uint16_t to_half(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = x >> 16 & 0x8000, e = x >> 23 & 0xff, m = x & 0x7fffff;
    int ne = (int)e - 127 + 15;
    if (e == 0xff)
        return (uint16_t)(sign | 0x7c00 | (m ? 0x200 : 0));
    if (ne >= 31)
        return (uint16_t)(sign | 0x7c00);
    if (ne <= 0) {
        if (ne < -10)
            return (uint16_t)sign;
        m |= 0x800000;
        return (uint16_t)(sign | m >> (14 - ne));
    }
    return (uint16_t)(sign | (uint32_t)ne << 10 | m >> 13);
}

/*
 * fp16 weights with structure the order-1 modes exploit: rows of 64 values
 * share a scale drawn from a wide range, and values are rounded to a coarse
 * grid per row, as quantised trained weights are.
 */
static void fill_fp16_weights(uint8_t *p, size_t n_values)
{
    double scale = 0.01;
    for (size_t i = 0; i < n_values; i++) {
        if (i % 64 == 0)
            scale = 0.001 * pow(2, (rnd() % 80) / 8.0);
        double v = normal() * scale;
        v = round(v / scale * 16) * scale / 16;
        uint16_t h = to_half((float)v);
        memcpy(p + 2 * i, &h, 2);
    }
}

static void roundtrip_forced(struct cairn_codec_ctx *ctx, const uint8_t *data, size_t len,
                             unsigned w)
{
    struct cairn_buf enc = CAIRN_BUF_INIT;
    uint8_t *dec = malloc(len + 1);
    size_t limit = 3 * len + 4096;
    int r;

    assert_int_equal(cairn_buf_puts(&enc, "xy"), 0);
    r = cairn__plane_encode(ctx, &enc, data, len, w, limit, 1, NULL);
    assert_int_equal(r, 0);
    assert_memory_equal(enc.ptr, "xy", 2);
    assert_int_equal(cairn__plane_decode(ctx, dec, len, enc.ptr + 2, enc.len - 2), 0);
    if (len)
        assert_memory_equal(dec, data, len);
    cairn_buf_release(&enc);
    free(dec);
}

static void test_roundtrip_adversarial(void **state)
{
    (void)state;
    struct cairn_codec_ctx *ctx;
    const size_t sizes[] = { 0, 1, 2, 3, 5, 7, 8, 9, 15, 17, 255, 1023, 4097, 65537, 1 << 20 };
    uint8_t *data = malloc((1 << 20) + 16);
    static const float specials[] = { NAN,    INFINITY, -INFINITY, 0.0f,     -0.0f, 1e-45f,
                                      1e-40f, -1e-39f,  3.4e38f,   -3.4e38f, 1.0f,  -1.0f };

    assert_int_equal(cairn_codec_ctx_new(&ctx, 3), 0);
    for (unsigned w = 1; w <= 8; w++) {
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
            size_t len = sizes[i];
            /* random bytes */
            for (size_t j = 0; j < len; j++)
                data[j] = (uint8_t)rnd();
            roundtrip_forced(ctx, data, len, w);
            /* all equal bytes */
            memset(data, 0xa5, len);
            roundtrip_forced(ctx, data, len, w);
            /* special floats, fp32 and their fp16 forms, interleaved */
            for (size_t j = 0; j + 4 <= len; j += 4) {
                float f = specials[rnd() % (sizeof(specials) / sizeof(specials[0]))];
                memcpy(data + j, &f, 4);
            }
            roundtrip_forced(ctx, data, len, w);
            for (size_t j = 0; j + 2 <= len; j += 2) {
                uint16_t h = to_half(specials[rnd() % (sizeof(specials) / sizeof(specials[0]))]);
                memcpy(data + j, &h, 2);
            }
            roundtrip_forced(ctx, data, len, w);
            /* two symbols with a skewed split: frequencies near 1 and TOTAL - 1 */
            for (size_t j = 0; j < len; j++)
                data[j] = rnd() % 5000 == 0 ? 7 : 0;
            roundtrip_forced(ctx, data, len, w);
            /* every byte value in each context */
            for (size_t j = 0; j < len; j++)
                data[j] = (uint8_t)(j * 131 + j / 256);
            roundtrip_forced(ctx, data, len, w);
        }
    }
    cairn_codec_ctx_free(ctx);
    free(data);
}

static void test_weights_pick_plane(void **state)
{
    (void)state;
    struct cairn_codec_ctx *ctx;
    struct cairn_codec_args a = { 2, NULL, 0 };
    struct cairn_buf enc = CAIRN_BUF_INIT, bg = CAIRN_BUF_INIT;
    size_t len = 1 << 20;
    uint8_t *data = malloc(len), *dec = malloc(len);
    unsigned char modes[2] = { 0, 0 };
    int codec = -1;

    assert_int_equal(cairn_codec_ctx_new(&ctx, 3), 0);
    fill_fp16_weights(data, len / 2);
    /* The codec alone: not forced, it must accept these weights and use
     * a context for at least one plane. */
    assert_int_equal(cairn__plane_encode(ctx, &enc, data, len, 2, len, 0, modes), 0);
    assert_true(modes[0] >= CAIRN_PLANE_PREV || modes[1] >= CAIRN_PLANE_PREV);
    /* It beats byte planes + zstd on them, and the chooser takes it. */
    assert_int_equal(cairn__codec_ops(CAIRN_CODEC_BGZSTD)->encode(ctx, &bg, data, len, &a, len), 0);
    assert_true(enc.len < bg.len);
    cairn_buf_clear(&enc);
    assert_int_equal(cairn__codec_encode_best(ctx, &enc, &codec, data, len, &a), 0);
    assert_int_equal(codec, CAIRN_CODEC_PLANE);
    assert_int_equal(cairn__codec_decode(ctx, codec, dec, len, enc.ptr, enc.len, &a), 0);
    assert_memory_equal(dec, data, len);
    cairn_buf_release(&enc);
    cairn_buf_release(&bg);
    cairn_codec_ctx_free(ctx);
    free(data);
    free(dec);
}

/*
 * fp32 weights drawn from a normal distribution: the plane below the
 * exponent looks random on its own, but given the byte above (sign masked
 * off) its top bit and leading mantissa bits are skewed, so the codec codes
 * it in mode ABOVE, and the two mantissa planes stay raw. Round trip.
 */
static void test_fp32_plane_below_exponent(void **state)
{
    (void)state;
    struct cairn_codec_ctx *ctx;
    struct cairn_buf enc = CAIRN_BUF_INIT;
    size_t n = 1 << 18, len = 4 * n;
    uint8_t *data = malloc(len), *dec = malloc(len);
    unsigned char modes[4] = { 0, 0, 0, 0 };

    assert_int_equal(cairn_codec_ctx_new(&ctx, 3), 0);
    for (size_t i = 0; i < n; i++) {
        float f = (float)(normal() * 0.02);
        memcpy(data + 4 * i, &f, 4);
    }
    assert_int_equal(cairn__plane_encode(ctx, &enc, data, len, 4, len, 0, modes), 0);
    assert_int_equal(modes[2], CAIRN_PLANE_ABOVE);
    assert_int_equal(modes[1], CAIRN_PLANE_RAW);
    assert_int_equal(modes[0], CAIRN_PLANE_RAW);
    assert_true(enc.len < len);
    assert_int_equal(cairn__plane_decode(ctx, dec, len, enc.ptr, enc.len), 0);
    assert_memory_equal(dec, data, len);
    cairn_buf_release(&enc);
    cairn_codec_ctx_free(ctx);
    free(data);
    free(dec);
}

static void test_declines_random_and_limit(void **state)
{
    (void)state;
    struct cairn_codec_ctx *ctx;
    struct cairn_buf enc = CAIRN_BUF_INIT;
    size_t len = 1 << 18;
    uint8_t *data = malloc(len);
    int codec = -1;
    struct cairn_codec_args a = { 2, NULL, 0 };

    assert_int_equal(cairn_codec_ctx_new(&ctx, 3), 0);
    for (size_t j = 0; j < len; j++)
        data[j] = (uint8_t)rnd();
    /* Random: nothing to win, it declines; the chooser stores raw. */
    assert_int_equal(cairn__plane_encode(ctx, &enc, data, len, 2, len, 0, NULL), 1);
    assert_int_equal(enc.len, 0);
    assert_int_equal(cairn__codec_encode_best(ctx, &enc, &codec, data, len, &a), 0);
    assert_int_equal(codec, CAIRN_CODEC_RAW);
    /* Weights under a limit too small for them: declined, out unchanged. */
    cairn_buf_clear(&enc);
    fill_fp16_weights(data, len / 2);
    assert_int_equal(cairn__plane_encode(ctx, &enc, data, len, 2, 1000, 1, NULL), 1);
    assert_int_equal(enc.len, 0);
    cairn_buf_release(&enc);
    cairn_codec_ctx_free(ctx);
    free(data);
}

static void test_damaged_input(void **state)
{
    (void)state;
    struct cairn_codec_ctx *ctx;
    struct cairn_buf enc = CAIRN_BUF_INIT;
    size_t len = 1 << 16;
    uint8_t *data = malloc(len), *dec = malloc(len), *bad;

    assert_int_equal(cairn_codec_ctx_new(&ctx, 3), 0);
    fill_fp16_weights(data, len / 2);
    assert_int_equal(cairn__plane_encode(ctx, &enc, data, len, 2, len, 1, NULL), 0);
    bad = malloc(enc.len);
    /* Every truncation fails cleanly. */
    for (size_t cut = 0; cut < enc.len; cut += 1 + cut / 16)
        assert_int_equal(cairn__plane_decode(ctx, dec, len, enc.ptr, cut), CAIRN_ECORRUPT);
    /* Bit flips anywhere never crash; most are reported, none overrun dec. */
    for (size_t i = 0; i < 4000; i++) {
        memcpy(bad, enc.ptr, enc.len);
        bad[rnd() % enc.len] ^= (uint8_t)(1u << (rnd() % 8));
        int r = cairn__plane_decode(ctx, dec, len, bad, enc.len);
        assert_true(r == 0 || r == CAIRN_ECORRUPT);
    }
    /* Wrong raw length, bad width, bad mode. */
    assert_int_equal(cairn__plane_decode(ctx, dec, len - 2, enc.ptr, enc.len), CAIRN_ECORRUPT);
    memcpy(bad, enc.ptr, enc.len);
    bad[0] = 9;
    assert_int_equal(cairn__plane_decode(ctx, dec, len, bad, enc.len), CAIRN_ECORRUPT);
    memcpy(bad, enc.ptr, enc.len);
    bad[2] = 5;
    assert_int_equal(cairn__plane_decode(ctx, dec, len, bad, enc.len), CAIRN_ECORRUPT);
    /* The top plane cannot take its context from a plane above it. */
    memcpy(bad, enc.ptr, enc.len);
    bad[2] = CAIRN_PLANE_ABOVE;
    assert_int_equal(cairn__plane_decode(ctx, dec, len, bad, enc.len), CAIRN_ECORRUPT);
    assert_int_equal(cairn__codec_decode(ctx, CAIRN_CODEC_PLANE, dec, 0, "", 0, NULL),
                     CAIRN_ECORRUPT);
    free(bad);
    cairn_buf_release(&enc);
    cairn_codec_ctx_free(ctx);
    free(data);
    free(dec);
}

/*
 * The PLANE state the chunks of one tensor share (cairn_chunk_hint): two
 * declines and no win skip the estimate for the rest of the tensor; a
 * tensor PLANE wins on is never skipped, however many chunks it declined.
 */
static void test_tensor_plane_state(void **state)
{
    (void)state;
    const size_t n = 1 << 16;
    uint8_t *bf = malloc(2 * n), *fp = malloc(2 * n);
    struct cairn_codec_ctx *ctx;
    struct cairn_buf enc = CAIRN_BUF_INIT;
    int st = 0, codec;
    struct cairn_chunk_hint h = { 2, NULL, &st };

    assert_non_null(bf);
    assert_non_null(fp);
    for (size_t i = 0; i < n; i++) {
        float f = (float)(normal() * 0.02);
        uint32_t x;
        memcpy(&x, &f, 4);
        uint16_t top = (uint16_t)(x >> 16);
        memcpy(bf + 2 * i, &top, 2);
    }
    fill_fp16_weights(fp, n);
    assert_int_equal(cairn_codec_ctx_new(&ctx, 0), 0);
    /* Plain normal bf16: PLANE declines, twice, then is not asked. */
    for (int k = 1; k <= 3; k++) {
        cairn_buf_clear(&enc);
        assert_int_equal(cairn_store_encode(NULL, ctx, bf, 2 * n, &h, &enc, &codec, NULL), 0);
        assert_int_equal(codec, CAIRN_CODEC_BGZSTD);
        assert_int_equal(st, k < 2 ? k : 2);
    }
    /* Quantised fp16 rows: PLANE wins every chunk, and keeps being asked. */
    st = 0;
    for (int k = 1; k <= 3; k++) {
        cairn_buf_clear(&enc);
        assert_int_equal(cairn_store_encode(NULL, ctx, fp, 2 * n, &h, &enc, &codec, NULL), 0);
        assert_int_equal(codec, CAIRN_CODEC_PLANE);
    }
    assert_int_equal(st & 0xffff, 0);
    /* A win, then declines: still asked (each decline counted). */
    for (int k = 1; k <= 3; k++) {
        int before = st;
        cairn_buf_clear(&enc);
        assert_int_equal(cairn_store_encode(NULL, ctx, bf, 2 * n, &h, &enc, &codec, NULL), 0);
        assert_int_equal(st, before + 1);
    }
    cairn_buf_release(&enc);
    cairn_codec_ctx_free(ctx);
    free(bf);
    free(fp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_adversarial),
        cmocka_unit_test(test_weights_pick_plane),
        cmocka_unit_test(test_fp32_plane_below_exponent),
        cmocka_unit_test(test_declines_random_and_limit),
        cmocka_unit_test(test_damaged_input),
        cmocka_unit_test(test_tensor_plane_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
