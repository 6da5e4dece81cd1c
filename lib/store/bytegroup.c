/*
 * Byte-plane split/merge and XOR (see bytegroup.h). Widths 2 and 4 (fp16,
 * bf16, fp32: nearly all weights) have SSE2 loops, which x86-64 always has,
 * so no run-time dispatch is needed; everything else, and other CPUs, take
 * the portable loops, which the compiler unrolls well enough for the rare
 * widths. The SIMD loops handle whole blocks of 16 values; the portable code
 * finishes the rest, so both paths produce identical bytes by construction.
 */
#include <string.h>

#include "store/bytegroup.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#define CAIRN_HAVE_SSE2 1
#endif

static void split_generic(unsigned char *dst, const unsigned char *src, size_t n, unsigned w,
                          size_t from)
{
    for (unsigned k = 0; k < w; k++) {
        unsigned char *plane = dst + (size_t)k * n;
        const unsigned char *s = src + k;
        for (size_t i = from; i < n; i++)
            plane[i] = s[i * w];
    }
}

static void merge_generic(unsigned char *dst, const unsigned char *src, size_t n, unsigned w,
                          size_t from)
{
    for (unsigned k = 0; k < w; k++) {
        const unsigned char *plane = src + (size_t)k * n;
        unsigned char *d = dst + k;
        for (size_t i = from; i < n; i++)
            d[i * w] = plane[i];
    }
}

static void split8(unsigned char *dst, const unsigned char *src, size_t n)
{
    /* Load one 8-byte value and scatter its bytes: a single load per value
     * instead of eight strided loads. */
    for (size_t i = 0; i < n; i++) {
        uint64_t v;
        memcpy(&v, src + i * 8, 8);
        for (unsigned k = 0; k < 8; k++)
            dst[(size_t)k * n + i] = (unsigned char)(v >> (8 * k));
    }
}

static void merge8(unsigned char *dst, const unsigned char *src, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t v = 0;
        for (unsigned k = 0; k < 8; k++)
            v |= (uint64_t)src[(size_t)k * n + i] << (8 * k);
        memcpy(dst + i * 8, &v, 8);
    }
}

#ifdef CAIRN_HAVE_SSE2
/* Returns how many values were done (a multiple of 16). */
static size_t split2_sse2(unsigned char *dst, const unsigned char *src, size_t n)
{
    const __m128i lo = _mm_set1_epi16(0x00ff);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m128i a = _mm_loadu_si128((const __m128i *)(src + 2 * i));
        __m128i b = _mm_loadu_si128((const __m128i *)(src + 2 * i + 16));
        __m128i p0 = _mm_packus_epi16(_mm_and_si128(a, lo), _mm_and_si128(b, lo));
        __m128i p1 = _mm_packus_epi16(_mm_srli_epi16(a, 8), _mm_srli_epi16(b, 8));
        _mm_storeu_si128((__m128i *)(dst + i), p0);
        _mm_storeu_si128((__m128i *)(dst + n + i), p1);
    }
    return i;
}

static size_t merge2_sse2(unsigned char *dst, const unsigned char *src, size_t n)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m128i p0 = _mm_loadu_si128((const __m128i *)(src + i));
        __m128i p1 = _mm_loadu_si128((const __m128i *)(src + n + i));
        _mm_storeu_si128((__m128i *)(dst + 2 * i), _mm_unpacklo_epi8(p0, p1));
        _mm_storeu_si128((__m128i *)(dst + 2 * i + 16), _mm_unpackhi_epi8(p0, p1));
    }
    return i;
}

/* Byte k of each 32-bit lane of four vectors, packed into 16 bytes. The
 * intermediate values are 0..255, so the signed 32->16 saturation of
 * packs_epi32 never clips. */
static inline __m128i plane4(__m128i a, __m128i b, __m128i c, __m128i d, int shift)
{
    const __m128i m = _mm_set1_epi32(0xff);
    __m128i x = _mm_and_si128(_mm_srli_epi32(a, shift), m);
    __m128i y = _mm_and_si128(_mm_srli_epi32(b, shift), m);
    __m128i z = _mm_and_si128(_mm_srli_epi32(c, shift), m);
    __m128i t = _mm_and_si128(_mm_srli_epi32(d, shift), m);
    return _mm_packus_epi16(_mm_packs_epi32(x, y), _mm_packs_epi32(z, t));
}

static size_t split4_sse2(unsigned char *dst, const unsigned char *src, size_t n)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const unsigned char *s = src + 4 * i;
        __m128i a = _mm_loadu_si128((const __m128i *)s);
        __m128i b = _mm_loadu_si128((const __m128i *)(s + 16));
        __m128i c = _mm_loadu_si128((const __m128i *)(s + 32));
        __m128i d = _mm_loadu_si128((const __m128i *)(s + 48));
        _mm_storeu_si128((__m128i *)(dst + i), plane4(a, b, c, d, 0));
        _mm_storeu_si128((__m128i *)(dst + n + i), plane4(a, b, c, d, 8));
        _mm_storeu_si128((__m128i *)(dst + 2 * n + i), plane4(a, b, c, d, 16));
        _mm_storeu_si128((__m128i *)(dst + 3 * n + i), plane4(a, b, c, d, 24));
    }
    return i;
}

static size_t merge4_sse2(unsigned char *dst, const unsigned char *src, size_t n)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m128i p0 = _mm_loadu_si128((const __m128i *)(src + i));
        __m128i p1 = _mm_loadu_si128((const __m128i *)(src + n + i));
        __m128i p2 = _mm_loadu_si128((const __m128i *)(src + 2 * n + i));
        __m128i p3 = _mm_loadu_si128((const __m128i *)(src + 3 * n + i));
        __m128i l01 = _mm_unpacklo_epi8(p0, p1), h01 = _mm_unpackhi_epi8(p0, p1);
        __m128i l23 = _mm_unpacklo_epi8(p2, p3), h23 = _mm_unpackhi_epi8(p2, p3);
        unsigned char *d = dst + 4 * i;
        _mm_storeu_si128((__m128i *)d, _mm_unpacklo_epi16(l01, l23));
        _mm_storeu_si128((__m128i *)(d + 16), _mm_unpackhi_epi16(l01, l23));
        _mm_storeu_si128((__m128i *)(d + 32), _mm_unpacklo_epi16(h01, h23));
        _mm_storeu_si128((__m128i *)(d + 48), _mm_unpackhi_epi16(h01, h23));
    }
    return i;
}
#endif

void cairn_bytegroup_split(void *dst_, const void *src_, size_t len, unsigned w)
{
    unsigned char *dst = dst_;
    const unsigned char *src = src_;
    size_t n, done = 0;

    if (w <= 1 || len < w) {
        if (len)
            memcpy(dst, src, len);
        return;
    }
    n = len / w;
    switch (w) {
#ifdef CAIRN_HAVE_SSE2
    case 2:
        done = split2_sse2(dst, src, n);
        break;
    case 4:
        done = split4_sse2(dst, src, n);
        break;
#endif
    case 8:
        split8(dst, src, n);
        done = n;
        break;
    default:
        break;
    }
    if (done < n)
        split_generic(dst, src, n, w, done);
    if (len % w)
        memcpy(dst + n * w, src + n * w, len % w);
}

void cairn_bytegroup_merge(void *dst_, const void *src_, size_t len, unsigned w)
{
    unsigned char *dst = dst_;
    const unsigned char *src = src_;
    size_t n, done = 0;

    if (w <= 1 || len < w) {
        if (len)
            memcpy(dst, src, len);
        return;
    }
    n = len / w;
    switch (w) {
#ifdef CAIRN_HAVE_SSE2
    case 2:
        done = merge2_sse2(dst, src, n);
        break;
    case 4:
        done = merge4_sse2(dst, src, n);
        break;
#endif
    case 8:
        merge8(dst, src, n);
        done = n;
        break;
    default:
        break;
    }
    if (done < n)
        merge_generic(dst, src, n, w, done);
    if (len % w)
        memcpy(dst + n * w, src + n * w, len % w);
}

void cairn_xor(void *dst_, const void *a_, const void *b_, size_t len)
{
    unsigned char *dst = dst_;
    const unsigned char *a = a_, *b = b_;
    size_t i = 0;

    /* Word at a time through memcpy: alias-safe and vectorised by the compiler. */
    for (; i + 8 <= len; i += 8) {
        uint64_t x, y;
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        x ^= y;
        memcpy(dst + i, &x, 8);
    }
    for (; i < len; i++)
        dst[i] = a[i] ^ b[i];
}
