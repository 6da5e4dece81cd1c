/*
 * Unit tests for lib/store/bytegroup.c: split/merge round trips for every
 * length 0..67 and widths 1..9 (so the SIMD blocks, the portable remainder
 * and the tail all run), the exact plane layout against a naive reference,
 * float bit patterns that trip up code which treats bytes as numbers (NaN,
 * infinities, denormals, -0), and XOR.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "store/bytegroup.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_lengths_and_widths),
        cmocka_unit_test(test_long_buffers),
        cmocka_unit_test(test_float_specials),
        cmocka_unit_test(test_plane_layout),
        cmocka_unit_test(test_xor),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
