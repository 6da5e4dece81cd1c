/*
 * Unit tests for lib/store/bytegroup.c: split/merge round trips for every
 * length 0..67 and widths 1..9 (so the SIMD blocks, the portable remainder
 * and the tail all run), the exact plane layout against a naive reference,
 * float bit patterns that trip up code which treats bytes as numbers (NaN,
 * infinities, denormals, -0), and XOR; once with the SIMD loops and once with
 * the portable ones. Then the BGZSTD and XORDELTA codecs: round trips on
 * random, special-value and weight-like data, that they win where they
 * should, and that damaged encodings and wrong bases fail cleanly.
 */
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
#include "store/bytegroup.h"
#include "store/codec.h"
#include "util/buf.h"

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint8_t next_byte(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint8_t)(rng >> 24);
}

/* The definition, written the obvious way. */
static void ref_split(uint8_t *dst, const uint8_t *src, size_t len, unsigned w)
{
    size_t n = w > 1 ? len / w : 0;
    if (w <= 1) {
        memcpy(dst, src, len);
        return;
    }
    for (size_t i = 0; i < n; i++)
        for (unsigned k = 0; k < w; k++)
            dst[k * n + i] = src[i * w + k];
    memcpy(dst + n * w, src + n * w, len - n * w);
}

static void check_roundtrip(const uint8_t *src, size_t len, unsigned w)
{
    uint8_t *split = malloc(len + 1), *ref = malloc(len + 1), *back = malloc(len + 1);
    assert_non_null(split);
    assert_non_null(ref);
    assert_non_null(back);
    memset(split, 0xAA, len + 1);
    memset(back, 0x55, len + 1);
    cairn_bytegroup_split(split, src, len, w);
    ref_split(ref, src, len, w);
    if (len)
        assert_memory_equal(split, ref, len);
    assert_int_equal(split[len], 0xAA); /* nothing written past len */
    cairn_bytegroup_merge(back, split, len, w);
    if (len)
        assert_memory_equal(back, src, len);
    assert_int_equal(back[len], 0x55);
    free(split);
    free(ref);
    free(back);
}

static void test_all_lengths_and_widths(void **state)
{
    (void)state;
    uint8_t src[68];
    for (unsigned w = 0; w <= 9; w++)
        for (size_t len = 0; len <= 67; len++) {
            for (size_t i = 0; i < len; i++)
                src[i] = next_byte();
            check_roundtrip(src, len, w);
        }
}

/* Lengths around the 16-value SIMD blocks, big enough for several of them. */
static void test_long_buffers(void **state)
{
    (void)state;
    size_t lens[] = { 4096, 4097, 4099, 4101, 4103, 65536 + 5, 1 << 20 };
    unsigned widths[] = { 2, 4, 8, 3 };
    for (size_t li = 0; li < sizeof(lens) / sizeof(lens[0]); li++) {
        uint8_t *src = malloc(lens[li]);
        assert_non_null(src);
        for (size_t i = 0; i < lens[li]; i++)
            src[i] = next_byte();
        for (size_t wi = 0; wi < sizeof(widths) / sizeof(widths[0]); wi++)
            check_roundtrip(src, lens[li], widths[wi]);
        free(src);
    }
}

static void test_float_specials(void **state)
{
    (void)state;
    /* fp32, fp16/bf16 and fp64 special values, little-endian bit patterns. */
    const uint32_t f32[] = { 0x7fc00000, 0xffc00001, 0x7f800000, 0xff800000, 0x00000001,
                             0x807fffff, 0x80000000, 0x00000000, 0x3f800000, 0x7f7fffff,
                             0x7fa00000, 0x00800000, 0xbf800000 };
    const uint16_t f16[] = { 0x7e00, 0xfe01, 0x7c00, 0xfc00, 0x0001, 0x83ff,
                             0x8000, 0x0000, 0x7f80, 0xff80, 0x7fc1, 0x0080 };
    const uint64_t f64[] = { 0x7ff8000000000000ULL, 0xfff0000000000000ULL, 0x7ff0000000000000ULL,
                             0x0000000000000001ULL, 0x8000000000000000ULL, 0x000fffffffffffffULL };
    uint8_t buf[512];

    for (size_t reps = 1; reps <= 7; reps++) {
        size_t len = 0;
        for (size_t r = 0; r < reps; r++)
            for (size_t i = 0; i < sizeof(f32) / 4; i++, len += 4)
                memcpy(buf + len, &f32[i], 4);
        check_roundtrip(buf, len, 4);
        check_roundtrip(buf, len - 1, 4); /* odd length: a 3-byte tail */
        len = 0;
        for (size_t r = 0; r < reps; r++)
            for (size_t i = 0; i < sizeof(f16) / 2; i++, len += 2)
                memcpy(buf + len, &f16[i], 2);
        check_roundtrip(buf, len, 2);
        check_roundtrip(buf, len + 1, 2);
        len = 0;
        for (size_t r = 0; r < reps && len + sizeof(f64) <= sizeof(buf); r++)
            for (size_t i = 0; i < sizeof(f64) / 8; i++, len += 8)
                memcpy(buf + len, &f64[i], 8);
        check_roundtrip(buf, len, 8);
        check_roundtrip(buf, len - 5, 8);
    }
}

static void test_plane_layout(void **state)
{
    (void)state;
    /* Two fp32 1.0f values and a tail byte: planes are 00 00 | 00 00 | 80 80 | 3f 3f | 7 */
    const uint8_t src[9] = { 0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x80, 0x3f, 0x07 };
    const uint8_t want[9] = { 0x00, 0x00, 0x00, 0x00, 0x80, 0x80, 0x3f, 0x3f, 0x07 };
    uint8_t out[9];
    cairn_bytegroup_split(out, src, sizeof(src), 4);
    assert_memory_equal(out, want, sizeof(want));
}

static void test_xor(void **state)
{
    (void)state;
    uint8_t a[67] = { 0 }, b[67] = { 0 }, x[67], back[67];
    for (size_t len = 0; len <= sizeof(a); len++) {
        for (size_t i = 0; i < len; i++) {
            a[i] = next_byte();
            b[i] = next_byte();
        }
        cairn_xor(x, a, b, len);
        for (size_t i = 0; i < len; i++)
            assert_int_equal(x[i], a[i] ^ b[i]);
        cairn_xor(back, x, b, len);
        if (len)
            assert_memory_equal(back, a, len);
        /* In place, dst == a. */
        cairn_xor(x, x, a, len);
        if (len)
            assert_memory_equal(x, b, len);
    }
}

/* The same checks through the portable loops, which other CPUs run. */
static void test_portable_paths(void **state)
{
    cairn__bytegroup_set_simd(0);
    test_all_lengths_and_widths(state);
    test_long_buffers(state);
    test_float_specials(state);
    test_plane_layout(state);
    cairn__bytegroup_set_simd(1);
}

/* ---- codecs ---- */

static struct cairn_codec_ctx *ctx;

static int codec_setup(void **state)
{
    (void)state;
    return cairn_codec_ctx_new(&ctx, 3);
}

static int codec_teardown(void **state)
{
    (void)state;
    cairn_codec_ctx_free(ctx);
    ctx = NULL;
    return 0;
}

/* Encode with `codec` (no size limit), decode, compare; returns the encoded length. */
static size_t codec_roundtrip(int codec, const uint8_t *raw, size_t len, unsigned w,
                              const uint8_t *base)
{
    const struct cairn_codec_ops *ops = cairn__codec_ops(codec);
    struct cairn_codec_args a = { w, base, base ? len : 0 };
    struct cairn_buf enc = CAIRN_BUF_INIT;
    uint8_t *back = malloc(len + 1);
    size_t n;

    assert_non_null(ops);
    assert_non_null(back);
    assert_int_equal(ops->encode(ctx, &enc, raw, len, &a, SIZE_MAX), 0);
    back[len] = 0x5a;
    assert_int_equal(cairn__codec_decode(ctx, codec, back, len, enc.ptr, enc.len, &a), 0);
    if (len)
        assert_memory_equal(back, raw, len);
    assert_int_equal(back[len], 0x5a);
    n = enc.len;
    cairn_buf_release(&enc);
    free(back);
    return n;
}

static void test_codec_small_roundtrips(void **state)
{
    (void)state;
    uint8_t raw[4200], base[4200];
    unsigned widths[] = { 2, 4, 8 };

    for (size_t wi = 0; wi < 3; wi++) {
        unsigned w = widths[wi];
        for (size_t len = 2 * w; len <= 67 + 4096; len += len < 67 ? 1 : 4096 - 67 + 3) {
            for (size_t i = 0; i < len; i++) {
                raw[i] = next_byte();
                base[i] = (i % 3) ? raw[i] : next_byte();
            }
            codec_roundtrip(CAIRN_CODEC_BGZSTD, raw, len, w, NULL);
            codec_roundtrip(CAIRN_CODEC_XORDELTA, raw, len, w, base);
            codec_roundtrip(CAIRN_CODEC_XORDELTA, raw, len, 0, base);
            memset(raw, 0, len); /* all-zero: every plane compresses */
            codec_roundtrip(CAIRN_CODEC_BGZSTD, raw, len, w, NULL);
            codec_roundtrip(CAIRN_CODEC_XORDELTA, raw, len, w, raw);
        }
    }
    /* Lengths 1..67 for the delta (empty chunks are never deltas), width up to 4. */
    for (size_t len = 1; len <= 67; len++) {
        for (size_t i = 0; i < len; i++)
            raw[i] = next_byte(), base[i] = next_byte();
        codec_roundtrip(CAIRN_CODEC_XORDELTA, raw, len, 4, base);
    }
}

static void test_codec_specials(void **state)
{
    (void)state;
    /* NaN payloads, infinities, denormals, -0 repeated: fp32 and fp16 patterns. */
    const uint32_t f32[] = { 0x7fc00000, 0xffc00001, 0x7f800000, 0xff800000,
                             0x00000001, 0x807fffff, 0x80000000, 0x7fa00000 };
    const uint16_t f16[] = { 0x7e00, 0xfe01, 0x7c00, 0xfc00, 0x0001, 0x83ff, 0x8000, 0x7f80 };
    size_t n = 3001; /* odd: a tail */
    uint8_t *buf = malloc(n * 4 + 3);
    assert_non_null(buf);
    for (size_t i = 0; i < n; i++)
        memcpy(buf + 4 * i, &f32[(i * 7) % 8], 4);
    buf[n * 4] = 1, buf[n * 4 + 1] = 2, buf[n * 4 + 2] = 3;
    assert_true(codec_roundtrip(CAIRN_CODEC_BGZSTD, buf, n * 4 + 3, 4, NULL) < n * 4 / 4);
    for (size_t i = 0; i < 2 * n; i++)
        memcpy(buf + 2 * i, &f16[(i * 5) % 8], 2);
    codec_roundtrip(CAIRN_CODEC_BGZSTD, buf, n * 4 + 1, 2, NULL);
    codec_roundtrip(CAIRN_CODEC_XORDELTA, buf, n * 4 + 1, 2, buf + 1);
    free(buf);
}

static uint64_t nstate = 42;

static double uniform(void)
{
    nstate = nstate * 6364136223846793005ULL + 1442695040888963407ULL;
    return ((nstate >> 11) + 0.5) / 9007199254740992.0;
}

/* bf16 of x, round to nearest even. */
static uint16_t to_bf16(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    return (uint16_t)((u + 0x7fff + ((u >> 16) & 1)) >> 16);
}

/* Weight-like data: bf16 N(0, 0.02), and a fine-tuned copy (each weight nudged by ~1%). */
static void make_weights(uint8_t *w0, uint8_t *w1, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        double g = sqrt(-2 * log(uniform())) * cos(6.283185307179586 * uniform());
        double e = sqrt(-2 * log(uniform())) * cos(6.283185307179586 * uniform());
        float x = (float)(0.02 * g);
        uint16_t a = to_bf16(x), b = to_bf16(x * (float)(1 + 0.01 * e));
        memcpy(w0 + 2 * i, &a, 2);
        memcpy(w1 + 2 * i, &b, 2);
    }
}

static void test_codec_choice_on_weights(void **state)
{
    (void)state;
    size_t n = 1 << 18, len = 2 * n;
    uint8_t *w0 = malloc(len), *w1 = malloc(len), *back = malloc(len);
    struct cairn_codec_args plain = { 2, NULL, 0 }, delta = { 2, w0, len };
    struct cairn_buf out = CAIRN_BUF_INIT;
    size_t zstd_len, bg_len;
    int codec = -1;

    assert_non_null(w0);
    assert_non_null(w1);
    assert_non_null(back);
    make_weights(w0, w1, n);

    /* zstd alone, for comparison. */
    assert_int_equal(cairn__zstd_encode(ctx, &out, w1, len, SIZE_MAX), 0);
    zstd_len = out.len;
    cairn_buf_clear(&out);

    /* Without a base, byte grouping must win and beat zstd by a margin. */
    assert_int_equal(cairn__codec_encode_best(ctx, &out, &codec, w1, len, &plain), 0);
    assert_int_equal(codec, CAIRN_CODEC_BGZSTD);
    bg_len = out.len;
    assert_true(bg_len < zstd_len * 95 / 100);
    assert_int_equal(cairn__codec_decode(ctx, codec, back, len, out.ptr, out.len, &plain), 0);
    assert_memory_equal(back, w1, len);
    cairn_buf_clear(&out);

    /* With the parent as base, the delta must win and beat grouping alone. */
    assert_int_equal(cairn__codec_encode_best(ctx, &out, &codec, w1, len, &delta), 0);
    assert_int_equal(codec, CAIRN_CODEC_XORDELTA);
    assert_true(out.len < bg_len * 60 / 100);
    memset(back, 0, len);
    assert_int_equal(cairn__codec_decode(ctx, codec, back, len, out.ptr, out.len, &delta), 0);
    assert_memory_equal(back, w1, len);

    /* Decoding against the wrong base gives other bytes; a base of the wrong length fails. */
    delta.base = w1;
    assert_int_equal(cairn__codec_decode(ctx, codec, back, len, out.ptr, out.len, &delta), 0);
    assert_memory_not_equal(back, w1, len);
    delta.base_len = len - 2;
    assert_int_equal(cairn__codec_decode(ctx, codec, back, len, out.ptr, out.len, &delta),
                     CAIRN_ECORRUPT);
    assert_int_equal(cairn__codec_decode(ctx, codec, back, len, out.ptr, out.len, &plain),
                     CAIRN_ECORRUPT);
    cairn_buf_release(&out);
    free(w0);
    free(w1);
    free(back);
}

static void test_codec_not_applicable(void **state)
{
    (void)state;
    const struct cairn_codec_ops *bg = cairn__codec_ops(CAIRN_CODEC_BGZSTD);
    const struct cairn_codec_ops *xd = cairn__codec_ops(CAIRN_CODEC_XORDELTA);
    uint8_t raw[64] = { 0 }, base[64] = { 0 };
    struct cairn_codec_args a = { 1, NULL, 0 };
    struct cairn_buf out = CAIRN_BUF_INIT;

    assert_string_equal(cairn__codec_name(CAIRN_CODEC_BGZSTD), "bgzstd");
    assert_string_equal(cairn__codec_name(CAIRN_CODEC_XORDELTA), "xordelta");
    assert_int_equal(xd->uses_base, 1);
    /* Width 1 or unknown: nothing to group. */
    assert_int_equal(bg->encode(ctx, &out, raw, sizeof(raw), &a, SIZE_MAX), 1);
    a.elem_size = 16;
    assert_int_equal(bg->encode(ctx, &out, raw, sizeof(raw), &a, SIZE_MAX), 1);
    /* No base, or a base of another length. */
    a.elem_size = 2;
    assert_int_equal(xd->encode(ctx, &out, raw, sizeof(raw), &a, SIZE_MAX), 1);
    a.base = base;
    a.base_len = 32;
    assert_int_equal(xd->encode(ctx, &out, raw, sizeof(raw), &a, SIZE_MAX), 1);
    /* A limit below the header, and one a raw plane cannot fit: out untouched. */
    a.base_len = 64;
    assert_int_equal(xd->encode(ctx, &out, raw, sizeof(raw), &a, 5), 1);
    for (size_t i = 0; i < sizeof(raw); i++)
        raw[i] = next_byte();
    a.base = NULL;
    assert_int_equal(bg->encode(ctx, &out, raw, sizeof(raw), &a, 40), 1);
    assert_int_equal(out.len, 0);
    cairn_buf_release(&out);
}

static void test_codec_damaged(void **state)
{
    (void)state;
    size_t len = 4000;
    uint8_t *raw = malloc(len), *back = malloc(len + 1), *junk = malloc(len);
    struct cairn_codec_args a = { 4, NULL, 0 };
    struct cairn_buf enc = CAIRN_BUF_INIT;

    assert_non_null(raw);
    assert_non_null(back);
    assert_non_null(junk);
    for (size_t i = 0; i < len; i++)
        raw[i] = (i % 4 == 3) ? 0x3c : next_byte(); /* one compressible plane, three raw */
    assert_int_equal(
        cairn__codec_ops(CAIRN_CODEC_BGZSTD)->encode(ctx, &enc, raw, len, &a, SIZE_MAX), 0);
    assert_true(cairn_get_u32le(enc.ptr + 2 + 4 * 3) != 0);
    assert_int_equal(cairn_get_u32le(enc.ptr + 2), 0);
    /* Every truncation fails cleanly and never writes past the output. */
    for (size_t cut = 0; cut < enc.len; cut++) {
        back[len] = 0x77;
        assert_int_equal(
            cairn__codec_decode(ctx, CAIRN_CODEC_BGZSTD, back, len, enc.ptr, cut, NULL),
            CAIRN_ECORRUPT);
        assert_int_equal(back[len], 0x77);
    }
    /* Wrong raw length, bad width, reserved byte set, huge frame length. */
    assert_int_equal(
        cairn__codec_decode(ctx, CAIRN_CODEC_BGZSTD, back, len - 4, enc.ptr, enc.len, NULL),
        CAIRN_ECORRUPT);
    enc.ptr[0] = 0;
    assert_int_equal(
        cairn__codec_decode(ctx, CAIRN_CODEC_BGZSTD, back, len, enc.ptr, enc.len, NULL),
        CAIRN_ECORRUPT);
    enc.ptr[0] = 9;
    assert_int_equal(
        cairn__codec_decode(ctx, CAIRN_CODEC_BGZSTD, back, len, enc.ptr, enc.len, NULL),
        CAIRN_ECORRUPT);
    enc.ptr[0] = 4;
    enc.ptr[1] = 1;
    assert_int_equal(
        cairn__codec_decode(ctx, CAIRN_CODEC_BGZSTD, back, len, enc.ptr, enc.len, NULL),
        CAIRN_ECORRUPT);
    enc.ptr[1] = 0;
    cairn_put_u32le(enc.ptr + 2 + 4 * 3, UINT32_MAX);
    assert_int_equal(
        cairn__codec_decode(ctx, CAIRN_CODEC_BGZSTD, back, len, enc.ptr, enc.len, NULL),
        CAIRN_ECORRUPT);
    /* Random bytes behind a valid-looking header: an error or some bytes, never a crash. */
    for (int r = 0; r < 200; r++) {
        size_t jl = 2 + (size_t)next_byte() * 15;
        for (size_t i = 0; i < jl; i++)
            junk[i] = next_byte();
        junk[0] = (uint8_t)(1 + r % 8);
        junk[1] = 0;
        back[len] = 0x77;
        (void)cairn__codec_decode(ctx, CAIRN_CODEC_BGZSTD, back, len, junk, jl, NULL);
        (void)cairn__codec_decode(ctx, CAIRN_CODEC_BGZSTD, back, (size_t)next_byte(), junk, jl,
                                  NULL);
        assert_int_equal(back[len], 0x77);
    }
    cairn_buf_release(&enc);
    free(raw);
    free(back);
    free(junk);
}

/* The entropy probe, exact below 64 KiB and sampled above. */
static void test_looks_random(void **state)
{
    const size_t sizes[] = { 255, 4096, 65536, 65537, 1 << 20, (1 << 20) + 12345 };
    uint64_t x = 0x9e3779b97f4a7c15ull;
    unsigned char *p = malloc((1 << 20) + 12345);

    (void)state;
    assert_non_null(p);
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        size_t n = sizes[k];
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            p[i] = (unsigned char)(x >> 24);
        }
        /* Uniform bytes are random; under 256 bytes nothing is. */
        assert_int_equal(cairn__looks_random(p, n), n >= 256);
        /* 16 symbols carry 4 bits a byte: far from random. */
        for (size_t i = 0; i < n; i++)
            p[i] &= 0x0f;
        assert_int_equal(cairn__looks_random(p, n), 0);
        /* Random but for a run of zeros in the middle third: not random. */
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            p[i] = i > n / 3 && i < 2 * n / 3 ? 0 : (unsigned char)(x >> 24);
        }
        assert_int_equal(cairn__looks_random(p, n), 0);
    }
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_lengths_and_widths),
        cmocka_unit_test(test_long_buffers),
        cmocka_unit_test(test_float_specials),
        cmocka_unit_test(test_plane_layout),
        cmocka_unit_test(test_xor),
        cmocka_unit_test(test_looks_random),
        cmocka_unit_test(test_portable_paths),
    };
    const struct CMUnitTest codec_tests[] = {
        cmocka_unit_test(test_codec_small_roundtrips),  cmocka_unit_test(test_codec_specials),
        cmocka_unit_test(test_codec_choice_on_weights), cmocka_unit_test(test_codec_not_applicable),
        cmocka_unit_test(test_codec_damaged),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    return failed + cmocka_run_group_tests(codec_tests, codec_setup, codec_teardown);
}
