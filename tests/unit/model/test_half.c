/*
 * Unit tests for lib/model/half.c: every fp16 and bf16 bit pattern through
 * fp32 and back, every midpoint between neighbouring 16-bit values (ties to
 * even, one fp32 ulp either side of the tie), special values, and a
 * comparison with the compiler's _Float16 where it exists.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/half.h"

static uint32_t bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    return u;
}

static float fromb(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

/* The value of an fp16 pattern computed the slow, obvious way. */
static double fp16_value(uint16_t h)
{
    int e = (h >> 10) & 0x1f, m = h & 0x3ff;
    double v = e ? ldexp(1024 + m, e - 25) : ldexp(m, -24);
    return (h & 0x8000) ? -v : v;
}

static void test_fp16_all_patterns(void **state)
{
    (void)state;
    for (uint32_t i = 0; i < 65536; i++) {
        uint16_t h = (uint16_t)i;
        float f = cairn_fp16_to_fp32(h);
        int e = (h >> 10) & 0x1f;
        if (e == 0x1f && (h & 0x3ff)) {
            assert_true(isnan(f));
        } else if (e == 0x1f) {
            assert_true(isinf(f));
            assert_int_equal(signbit(f) != 0, (h & 0x8000) != 0);
        } else {
            assert_true((double)f == fp16_value(h));
            assert_int_equal(signbit(f) != 0, (h & 0x8000) != 0);
        }
        assert_int_equal(cairn_fp32_to_fp16(f), h);
    }
}

static void test_bf16_all_patterns(void **state)
{
    (void)state;
    for (uint32_t i = 0; i < 65536; i++) {
        uint16_t h = (uint16_t)i;
        float f = cairn_bf16_to_fp32(h);
        assert_int_equal(bits(f), i << 16);
        assert_int_equal(cairn_fp32_to_bf16(f), h);
    }
}

typedef float (*to32_fn)(uint16_t);
typedef uint16_t (*to16_fn)(float);

/* For each finite h up to `maxfin`: the midpoint to h+1 rounds to the even one. */
static void check_midpoints(to32_fn to32, to16_fn to16, uint16_t maxfin)
{
    for (uint32_t sign = 0; sign <= 0x8000; sign += 0x8000) {
        for (uint32_t h = 0; h <= maxfin; h++) {
            uint16_t a = (uint16_t)(sign | h), b = (uint16_t)(sign | (h + 1));
            float lo = to32(a);
            float hi = h + 1 > maxfin ? (sign ? -INFINITY : INFINITY) : to32(b);
            float mid;
            if (h + 1 > maxfin) {
                /* The tie to Inf is one half-ulp of the top binade above max. */
                mid = lo + (lo - to32((uint16_t)(sign | (h - 1)))) / 2;
            } else {
                mid = (float)(((double)lo + (double)hi) / 2);
                assert_true((double)mid == ((double)lo + (double)hi) / 2);
            }
            uint16_t even = (h & 1) ? b : a;
            assert_int_equal(to16(mid), even);
            assert_int_equal(to16(nextafterf(mid, 0.0f)), a);
            assert_int_equal(to16(nextafterf(mid, hi)), b);
        }
    }
}

static void test_fp16_midpoints(void **state)
{
    (void)state;
    check_midpoints(cairn_fp16_to_fp32, cairn_fp32_to_fp16, 0x7bff);
}

static void test_bf16_midpoints(void **state)
{
    (void)state;
    check_midpoints(cairn_bf16_to_fp32, cairn_fp32_to_bf16, 0x7f7f);
}

static void test_specials(void **state)
{
    (void)state;
    assert_int_equal(cairn_fp32_to_fp16(1.0f), 0x3c00);
    assert_int_equal(cairn_fp32_to_fp16(-2.0f), 0xc000);
    assert_int_equal(cairn_fp32_to_fp16(65504.0f), 0x7bff);
    assert_int_equal(cairn_fp32_to_fp16(65519.0f), 0x7bff);
    assert_int_equal(cairn_fp32_to_fp16(65520.0f), 0x7c00);
    assert_int_equal(cairn_fp32_to_fp16(1e10f), 0x7c00);
    assert_int_equal(cairn_fp32_to_fp16(-1e10f), 0xfc00);
    assert_int_equal(cairn_fp32_to_fp16(-0.0f), 0x8000);
    assert_int_equal(cairn_fp32_to_fp16(ldexpf(1, -24)), 0x0001);
    assert_int_equal(cairn_fp32_to_fp16(ldexpf(1, -25)), 0x0000);
    assert_int_equal(cairn_fp32_to_fp16(ldexpf(3, -26)), 0x0001);
    assert_int_equal(cairn_fp32_to_fp16(ldexpf(1, -14)), 0x0400);
    assert_int_equal(cairn_fp32_to_fp16(fromb(0x00000001)), 0x0000); /* fp32 denormal */
    assert_int_equal(cairn_fp32_to_fp16(-fromb(0x00000001)), 0x8000);
    assert_int_equal(cairn_fp32_to_fp16(INFINITY), 0x7c00);
    assert_int_equal(cairn_fp32_to_fp16(-INFINITY), 0xfc00);
    /* NaNs stay NaNs even when their payload sits in the dropped bits. */
    assert_true((cairn_fp32_to_fp16(fromb(0x7f800001)) & 0x7fff) > 0x7c00);
    assert_true((cairn_fp32_to_fp16(fromb(0xffc00000)) & 0x7fff) > 0x7c00);
    assert_true((cairn_fp32_to_bf16(fromb(0x7f800001)) & 0x7fff) > 0x7f80);
    assert_int_equal(cairn_fp32_to_bf16(1.0f), 0x3f80);
    assert_int_equal(cairn_fp32_to_bf16(fromb(0x7f7fffff)), 0x7f80); /* FLT_MAX rounds up */
    assert_int_equal(cairn_fp32_to_bf16(fromb(0x00000001)), 0x0000);
    assert_int_equal(cairn_fp32_to_bf16(fromb(0x00008000)), 0x0000); /* tie, even */
    assert_int_equal(cairn_fp32_to_bf16(fromb(0x00018000)), 0x0002); /* tie, odd -> up */
    assert_int_equal(cairn_fp32_to_bf16(-INFINITY), 0xff80);
}

static void test_arrays(void **state)
{
    (void)state;
    const float in[5] = { 1.0f, -0.5f, 3.140625f, 0.0f, 1000.0f };
    unsigned char raw[1 + 10];
    float out[5];
    /* Odd offset: the array forms must not assume alignment. */
    cairn_fp32_to_fp16_n(raw + 1, in, 5);
    assert_int_equal(raw[1], 0x00);
    assert_int_equal(raw[2], 0x3c);
    cairn_fp16_to_fp32_n(out, raw + 1, 5);
    assert_memory_equal(out, in, sizeof(in));
    cairn_fp32_to_bf16_n(raw + 1, in, 5);
    assert_int_equal(raw[1], 0x80);
    assert_int_equal(raw[2], 0x3f);
    cairn_bf16_to_fp32_n(out, raw + 1, 5);
    assert_memory_equal(out, in, sizeof(in));
}

#ifdef __FLT16_MAX__
/* The compiler's own conversion (libgcc or F16C) as an independent oracle. */
static void test_against_compiler(void **state)
{
    (void)state;
    uint32_t x = 12345;
    for (int i = 0; i < 1000000; i++) {
        x = x * 1664525u + 1013904223u;
        float f = fromb(x);
        if (isnan(f))
            continue;
        _Float16 c = (_Float16)f;
        uint16_t cb;
        memcpy(&cb, &c, sizeof(cb));
        assert_int_equal(cairn_fp32_to_fp16(f), cb);
    }
}
#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fp16_all_patterns), cmocka_unit_test(test_bf16_all_patterns),
        cmocka_unit_test(test_fp16_midpoints),    cmocka_unit_test(test_bf16_midpoints),
        cmocka_unit_test(test_specials),          cmocka_unit_test(test_arrays),
#ifdef __FLT16_MAX__
        cmocka_unit_test(test_against_compiler),
#endif
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
