/*
 * fp16 and bf16 <-> fp32 conversions by bit manipulation; see half.h.
 *
 * Done in integer arithmetic rather than with F16C or compiler _Float16 so
 * the results are the same on every machine and the rounding is provably
 * round-to-nearest-even (the unit tests check all 65536 patterns and every
 * midpoint between neighbouring 16-bit values). Loading converts a tensor
 * once, so the few extra cycles per value never sit on an inference path.
 */
#include <string.h>

#include "model/half.h"

static uint32_t f2u(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    return u;
}

static float u2f(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

float cairn_fp16_to_fp32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t e = (h >> 10) & 0x1f;
    uint32_t m = h & 0x3ff;

    if (e == 0x1f)
        return u2f(sign | 0x7f800000 | m << 13);
    if (e == 0) {
        if (m == 0)
            return u2f(sign);
        /* A denormal m * 2^-24: normalise so the leading 1 becomes implicit. */
        e = 113;
        while (!(m & 0x400)) {
            m <<= 1;
            e--;
        }
        return u2f(sign | e << 23 | (m & 0x3ff) << 13);
    }
    return u2f(sign | (e + 112) << 23 | m << 13);
}

uint16_t cairn_fp32_to_fp16(float f)
{
    uint32_t x = f2u(f);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t ax = x & 0x7fffffff;
    uint32_t r, rem, half;

    if (ax >= 0x7f800000) {
        if (ax == 0x7f800000)
            return (uint16_t)(sign | 0x7c00);
        /* NaN: keep the top ten payload bits, but never let it become Inf. */
        r = (ax >> 13) & 0x3ff;
        return (uint16_t)(sign | 0x7c00 | (r ? r : 0x200));
    }
    /* 65520 is the midpoint between 65504 (odd mantissa) and 2^16: ties to Inf. */
    if (ax >= 0x477ff000)
        return (uint16_t)(sign | 0x7c00);
    if (ax < 0x38800000) {
        /* Below 2^-14: an fp16 denormal q * 2^-24, or zero below 2^-25 (inclusive, by evenness). */
        if (ax <= 0x33000000)
            return (uint16_t)sign;
        uint32_t e = ax >> 23;
        uint32_t m = (ax & 0x7fffff) | 0x800000;
        uint32_t shift = 126 - e; /* 14..24 here */
        r = m >> shift;
        rem = m & ((1u << shift) - 1);
        half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1)))
            r++;
        return (uint16_t)(sign | r); /* r == 0x400 is the smallest normal: still correct */
    }
    r = (ax - 0x38000000) >> 13;
    rem = ax & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (r & 1)))
        r++; /* a carry into the exponent is the correct next binade */
    return (uint16_t)(sign | r);
}

float cairn_bf16_to_fp32(uint16_t h)
{
    return u2f((uint32_t)h << 16);
}

uint16_t cairn_fp32_to_bf16(float f)
{
    uint32_t x = f2u(f);

    if ((x & 0x7fffffff) > 0x7f800000) {
        uint32_t r = x >> 16;
        if (!(r & 0x7f))
            r |= 0x40; /* the payload lived in the dropped bits: stay a NaN */
        return (uint16_t)r;
    }
    /* Adding 0x7fff plus the kept lsb rounds to nearest even; overflow carries to Inf. */
    return (uint16_t)((x + 0x7fff + ((x >> 16) & 1)) >> 16);
}

static uint16_t get16(const unsigned char *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static void put16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

void cairn_fp16_to_fp32_n(float *out, const void *in, size_t n)
{
    const unsigned char *p = in;
    for (size_t i = 0; i < n; i++)
        out[i] = cairn_fp16_to_fp32(get16(p + 2 * i));
}

void cairn_bf16_to_fp32_n(float *out, const void *in, size_t n)
{
    const unsigned char *p = in;
    for (size_t i = 0; i < n; i++)
        out[i] = cairn_bf16_to_fp32(get16(p + 2 * i));
}

void cairn_fp32_to_fp16_n(void *out, const float *in, size_t n)
{
    unsigned char *p = out;
    for (size_t i = 0; i < n; i++)
        put16(p + 2 * i, cairn_fp32_to_fp16(in[i]));
}

void cairn_fp32_to_bf16_n(void *out, const float *in, size_t n)
{
    unsigned char *p = out;
    for (size_t i = 0; i < n; i++)
        put16(p + 2 * i, cairn_fp32_to_bf16(in[i]));
}
