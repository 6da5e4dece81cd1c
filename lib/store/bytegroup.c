/*
 * Byte-plane split/merge and XOR (see bytegroup.h), and the two codecs built
 * on them, BGZSTD and XORDELTA, which codec.c's table dispatches to.
 *
 * Widths 2, 4 and 8 (fp16/bf16, fp32, fp64: nearly all weights) have SSE2
 * loops, which x86-64 always has, so no run-time dispatch is needed;
 * everything else, and other CPUs, take the portable loops. The SIMD loops
 * handle whole blocks of 16 values and the portable code finishes the rest,
 * so both paths produce identical bytes by construction (the tests run both).
 *
 * The codecs choose raw or zstd per plane, as ZipNN does: the exponent plane
 * of trained weights compresses to a third, the mantissa planes hardly at
 * all, so a byte histogram decides first and only planes that look
 * compressible pay for a zstd pass. Measured on random-normal weights
 * (scratch program, not a test): zstd over the whole grouped buffer and per
 * plane give the same size within 0.1%, so per plane wins on speed alone.
 */
#include <math.h>
#include <string.h>

#include <zstd.h>
#include <zstd_errors.h>

#include "cairn/common.h"
#include "store/bytegroup.h"
#include "store/codec.h"
#include "util/buf.h"

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

/* Width 8 as two width-4 problems: separate the low and high 32-bit halves of
 * each value (shuffle_ps picks dwords 0,2 or 1,3 of a pair of vectors), then
 * the low halves give planes 0-3 and the high halves planes 4-7. */
static inline __m128i dwords(__m128i a, __m128i b, int hi)
{
    __m128 x = _mm_castsi128_ps(a), y = _mm_castsi128_ps(b);
    return _mm_castps_si128(hi ? _mm_shuffle_ps(x, y, _MM_SHUFFLE(3, 1, 3, 1))
                               : _mm_shuffle_ps(x, y, _MM_SHUFFLE(2, 0, 2, 0)));
}

static size_t split8_sse2(unsigned char *dst, const unsigned char *src, size_t n)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const unsigned char *s = src + 8 * i;
        __m128i v[8], lo[4], hi[4];
        for (int j = 0; j < 8; j++)
            v[j] = _mm_loadu_si128((const __m128i *)(s + 16 * j));
        for (int j = 0; j < 4; j++) {
            lo[j] = dwords(v[2 * j], v[2 * j + 1], 0);
            hi[j] = dwords(v[2 * j], v[2 * j + 1], 1);
        }
        for (int k = 0; k < 4; k++) {
            _mm_storeu_si128((__m128i *)(dst + k * n + i),
                             plane4(lo[0], lo[1], lo[2], lo[3], 8 * k));
            _mm_storeu_si128((__m128i *)(dst + (k + 4) * n + i),
                             plane4(hi[0], hi[1], hi[2], hi[3], 8 * k));
        }
    }
    return i;
}

static size_t merge8_sse2(unsigned char *dst, const unsigned char *src, size_t n)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m128i p[8], half[2][4];
        for (int k = 0; k < 8; k++)
            p[k] = _mm_loadu_si128((const __m128i *)(src + k * n + i));
        /* Rebuild the low and high dwords of the 16 values, four per vector. */
        for (int h = 0; h < 2; h++) {
            __m128i *q = p + 4 * h;
            __m128i l01 = _mm_unpacklo_epi8(q[0], q[1]), h01 = _mm_unpackhi_epi8(q[0], q[1]);
            __m128i l23 = _mm_unpacklo_epi8(q[2], q[3]), h23 = _mm_unpackhi_epi8(q[2], q[3]);
            half[h][0] = _mm_unpacklo_epi16(l01, l23);
            half[h][1] = _mm_unpackhi_epi16(l01, l23);
            half[h][2] = _mm_unpacklo_epi16(h01, h23);
            half[h][3] = _mm_unpackhi_epi16(h01, h23);
        }
        unsigned char *d = dst + 8 * i;
        for (int j = 0; j < 4; j++) {
            _mm_storeu_si128((__m128i *)(d + 32 * j), _mm_unpacklo_epi32(half[0][j], half[1][j]));
            _mm_storeu_si128((__m128i *)(d + 32 * j + 16),
                             _mm_unpackhi_epi32(half[0][j], half[1][j]));
        }
    }
    return i;
}
#endif

/* 1 to use the SIMD loops where there are some; tests turn it off to check
 * the portable ones give the same bytes. */
static int use_simd = 1;

void cairn__bytegroup_set_simd(int on)
{
    use_simd = on;
}

/* The specialised loops; return how many of the n values they did. */
static size_t split_fast(unsigned char *dst, const unsigned char *src, size_t n, unsigned w)
{
#ifdef CAIRN_HAVE_SSE2
    if (use_simd && w == 2)
        return split2_sse2(dst, src, n);
    if (use_simd && w == 4)
        return split4_sse2(dst, src, n);
    if (use_simd && w == 8)
        return split8_sse2(dst, src, n);
#endif
    if (w == 8) {
        split8(dst, src, n);
        return n;
    }
    return 0;
}

static size_t merge_fast(unsigned char *dst, const unsigned char *src, size_t n, unsigned w)
{
#ifdef CAIRN_HAVE_SSE2
    if (use_simd && w == 2)
        return merge2_sse2(dst, src, n);
    if (use_simd && w == 4)
        return merge4_sse2(dst, src, n);
    if (use_simd && w == 8)
        return merge8_sse2(dst, src, n);
#endif
    if (w == 8) {
        merge8(dst, src, n);
        return n;
    }
    return 0;
}

void cairn_bytegroup_split(void *dst_, const void *src_, size_t len, unsigned w)
{
    unsigned char *dst = dst_;
    const unsigned char *src = src_;
    size_t n, done;

    if (w <= 1 || len < w) {
        if (len)
            memcpy(dst, src, len);
        return;
    }
    n = len / w;
    done = split_fast(dst, src, n, w);
    if (done < n)
        split_generic(dst, src, n, w, done);
    if (len % w)
        memcpy(dst + n * w, src + n * w, len % w);
}

void cairn_bytegroup_merge(void *dst_, const void *src_, size_t len, unsigned w)
{
    unsigned char *dst = dst_;
    const unsigned char *src = src_;
    size_t n, done;

    if (w <= 1 || len < w) {
        if (len)
            memcpy(dst, src, len);
        return;
    }
    n = len / w;
    done = merge_fast(dst, src, n, w);
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

/* ---- codecs ---- */

/*
 * Encoding of both codecs (all integers little-endian):
 *   u8  w         plane width, 1..8
 *   u8  0         reserved
 *   u32 clen[w]   zstd frame length of plane k, 0 when the plane is stored raw
 *   planes 0..w-1 in order (n = raw_len / w bytes each when raw)
 *   the raw_len % w tail bytes, raw
 * The width is recorded so that fsck can decode without any hint.
 */
#define BG_MAX_W 8

static size_t bg_header_len(unsigned w)
{
    return 2 + 4 * (size_t)w;
}

/* Histogram bytes [0, n) of p into h, four tables to break store dependencies. */
static void histogram4(uint32_t h[4][256], const unsigned char *p, size_t n)
{
    size_t i = 0;

    for (; i + 4 <= n; i += 4) {
        h[0][p[i]]++;
        h[1][p[i + 1]]++;
        h[2][p[i + 2]]++;
        h[3][p[i + 3]]++;
    }
    for (; i < n; i++)
        h[0][p[i]]++;
}

/*
 * See bytegroup.h; the codecs use it to skip mantissa planes. Inputs above
 * PROBE_SAMPLE bytes are sampled: PROBE_BLOCKS blocks spread evenly over
 * the input. A sample can only underestimate order-0 entropy (by about
 * 255 / (2 m ln 2) bits a byte for m sampled bytes: 0.2% of 8 bits at 32 KiB),
 * so sampling errs towards trying zstd, never towards storing raw what
 * would have compressed. Histogramming every byte was 9% of `add`'s CPU.
 */
#define PROBE_BLOCKS 32
#define PROBE_BLOCK  ((size_t)1024)
#define PROBE_SAMPLE (PROBE_BLOCKS * PROBE_BLOCK)

int cairn__plane_scratch(struct cairn_codec_ctx *ctx, size_t len, unsigned char **out)
{
    struct cairn_buf *sp = &ctx->scratch[0];
    int error;
    cairn_buf_clear(sp);
    if ((error = cairn_buf_grow(sp, len)) < 0)
        return error;
    *out = (unsigned char *)sp->ptr;
    return 0;
}

int cairn__looks_random(const void *p_, size_t n)
{
    const unsigned char *p = p_;
    uint32_t h[4][256] = { { 0 } };
    double bits = 0;
    size_t m = n;

    if (n < 256)
        return 0; /* too short to estimate; let zstd try */
    if (n <= 2 * PROBE_SAMPLE) {
        histogram4(h, p, n);
    } else {
        size_t stride = (n - PROBE_BLOCK) / (PROBE_BLOCKS - 1);
        for (size_t b = 0; b < PROBE_BLOCKS; b++)
            histogram4(h, p + b * stride, PROBE_BLOCK);
        m = PROBE_SAMPLE;
    }
    for (int b = 0; b < 256; b++) {
        uint32_t c = h[0][b] + h[1][b] + h[2][b] + h[3][b];
        if (c)
            bits += c * log2((double)m / c);
    }
    return bits > 0.97 * 8.0 * (double)m;
}

/*
 * zstd for one plane, with parameters of its own: level 1 with the smallest
 * hash table and 7-byte minimum matches, which leaves zstd mostly doing
 * Huffman coding of literals - what a plane of exponents needs (ZipNN uses
 * Huffman alone). Measured on bf16 exponent planes: 0.34 of raw at about 4x
 * the speed of level 3, which gives 0.42. The context's parameters are reset
 * on each call; cairn__zstd_encode() ignores them (ZSTD_compressCCtx). Returns
 * as cairn__zstd_encode().
 */
static int plane_zstd(struct cairn_codec_ctx *ctx, struct cairn_buf *out, const void *p, size_t n,
                      size_t limit)
{
    size_t bound = ZSTD_compressBound(n), r;
    int error;

    if (limit == 0)
        return 1;
    if (limit > bound)
        limit = bound;
    if (!ctx->cctx && !(ctx->cctx = ZSTD_createCCtx()))
        return cairn_error_set(CAIRN_ENOMEM, "out of memory creating a zstd context");
    if (ZSTD_isError(ZSTD_CCtx_reset(ctx->cctx, ZSTD_reset_session_and_parameters)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(ctx->cctx, ZSTD_c_compressionLevel, 1)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(ctx->cctx, ZSTD_c_hashLog, 6)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(ctx->cctx, ZSTD_c_minMatch, 7)))
        return cairn_error_set(CAIRN_ERROR, "cannot set zstd parameters");
    if ((error = cairn_buf_grow(out, limit)) < 0)
        return error;
    r = ZSTD_compress2(ctx->cctx, out->ptr + out->len, limit, p, n);
    if (ZSTD_isError(r)) {
        if (ZSTD_getErrorCode(r) == ZSTD_error_dstSize_tooSmall)
            return 1;
        return cairn_error_set(CAIRN_ERROR, "zstd compression failed: %s", ZSTD_getErrorName(r));
    }
    out->len += r;
    out->ptr[out->len] = '\0';
    return 0;
}

/* Group `raw` into `w` planes and append the encoding (format above), at most `limit` bytes. */
static int bg_encode_w(struct cairn_codec_ctx *ctx, struct cairn_buf *out, const void *raw,
                       size_t len, unsigned w, size_t limit)
{
    const size_t start = out->len, hdr = bg_header_len(w);
    const size_t n = len / w, tail = len % w;
    const unsigned char *planes = raw;
    size_t used = hdr;
    int error = 0;

    if (hdr > limit)
        return 1;
    if (w > 1) {
        unsigned char *sp;
        if ((error = cairn__plane_scratch(ctx, len, &sp)) < 0)
            return error;
        cairn_bytegroup_split(sp, raw, len, w);
        planes = sp;
    }
    if ((error = cairn_buf_grow(out, hdr)) < 0)
        return error;
    memset(out->ptr + start, 0, hdr);
    out->ptr[start] = (char)w;
    out->len += hdr;
    for (unsigned k = 0; k < w; k++) {
        const unsigned char *p = planes + (size_t)k * n;
        size_t budget = limit - used, before = out->len;
        if (n && !cairn__looks_random(p, n)) {
            error = plane_zstd(ctx, out, p, n, n - 1 < budget ? n - 1 : budget);
            if (error < 0)
                goto fail;
            if (error == 0) {
                cairn_put_u32le(out->ptr + start + 2 + 4 * k, (uint32_t)(out->len - before));
                used += out->len - before;
                continue;
            }
        }
        if (n > budget) {
            error = 1;
            goto fail;
        }
        if ((error = cairn_buf_put(out, p, n)) < 0)
            goto fail;
        used += n;
    }
    if (tail > limit - used) {
        error = 1;
        goto fail;
    }
    if ((error = cairn_buf_put(out, planes + n * w, tail)) < 0)
        goto fail;
    return 0;
fail:
    out->len = start;
    if (out->ptr)
        out->ptr[start] = '\0';
    return error;
}

static int bg_decode(struct cairn_codec_ctx *ctx, void *dst, size_t raw_len, const void *src_,
                     size_t src_len)
{
    const unsigned char *src = src_;
    unsigned char *planes = dst;
    size_t n, tail, pos;
    unsigned w;
    int error;

    if (src_len < 2 || src[0] < 1 || src[0] > BG_MAX_W || src[1] != 0)
        return cairn_error_set(CAIRN_ECORRUPT, "bad byte-plane header");
    w = src[0];
    pos = bg_header_len(w);
    if (src_len < pos)
        return cairn_error_set(CAIRN_ECORRUPT, "truncated byte-plane header");
    n = raw_len / w;
    tail = raw_len % w;
    if (w > 1 && (error = cairn__plane_scratch(ctx, raw_len, &planes)) < 0)
        return error;
    for (unsigned k = 0; k < w; k++) {
        uint32_t clen = cairn_get_u32le(src + 2 + 4 * k);
        unsigned char *p = planes + (size_t)k * n;
        if (clen == 0) {
            if (src_len - pos < n)
                return cairn_error_set(CAIRN_ECORRUPT, "byte plane %u truncated", k);
            if (n)
                memcpy(p, src + pos, n);
            pos += n;
            continue;
        }
        if (clen > src_len - pos)
            return cairn_error_set(CAIRN_ECORRUPT, "byte plane %u truncated", k);
        if ((error = cairn__zstd_decode(ctx, p, n, src + pos, clen)) < 0)
            return error;
        pos += clen;
    }
    if (src_len - pos != tail)
        return cairn_error_set(CAIRN_ECORRUPT,
                               "byte-plane encoding has %zu bytes left, expected %zu",
                               src_len - pos, tail);
    if (tail)
        memcpy(planes + n * w, src + pos, tail);
    if (w > 1)
        cairn_bytegroup_merge(dst, planes, raw_len, w);
    return 0;
}

/* Plane width for elem_size: the float widths group, anything else is one plane. */
static unsigned width_of(const struct cairn_codec_args *a)
{
    return a->elem_size >= 2 && a->elem_size <= BG_MAX_W ? a->elem_size : 1;
}

static int bgzstd_encode(struct cairn_codec_ctx *ctx, struct cairn_buf *out, const void *raw,
                         size_t len, const struct cairn_codec_args *a, size_t limit)
{
    unsigned w = width_of(a);
    if (w < 2 || len < 2 * (size_t)w)
        return 1; /* nothing to group: plain zstd covers it */
    return bg_encode_w(ctx, out, raw, len, w, limit);
}

static int bgzstd_decode(struct cairn_codec_ctx *ctx, void *dst, size_t raw_len, const void *src,
                         size_t src_len, const struct cairn_codec_args *a)
{
    (void)a;
    return bg_decode(ctx, dst, raw_len, src, src_len);
}

/*
 * XOR against the base (the same piece of the same tensor in the parent
 * version), then the planes. A base of another length is not the same piece:
 * the codec does not apply.
 */
static int xordelta_encode(struct cairn_codec_ctx *ctx, struct cairn_buf *out, const void *raw,
                           size_t len, const struct cairn_codec_args *a, size_t limit)
{
    struct cairn_buf *x = &ctx->scratch[1];
    int error;

    if (!a->base || a->base_len != len || len == 0)
        return 1;
    cairn_buf_clear(x);
    if ((error = cairn_buf_grow(x, len)) < 0)
        return error;
    cairn_xor(x->ptr, raw, a->base, len);
    return bg_encode_w(ctx, out, x->ptr, len, width_of(a), limit);
}

static int xordelta_decode(struct cairn_codec_ctx *ctx, void *dst, size_t raw_len, const void *src,
                           size_t src_len, const struct cairn_codec_args *a)
{
    int error;

    if (!a->base || a->base_len != raw_len)
        return cairn_error_set(CAIRN_ECORRUPT, "delta base holds %zu bytes, expected %zu",
                               a->base ? a->base_len : 0, raw_len);
    if ((error = bg_decode(ctx, dst, raw_len, src, src_len)) < 0)
        return error;
    cairn_xor(dst, dst, a->base, raw_len);
    return 0;
}

const struct cairn_codec_ops cairn__bgzstd_ops = { "bgzstd", 0, bgzstd_encode, bgzstd_decode };
const struct cairn_codec_ops cairn__xordelta_ops = { "xordelta", 1, xordelta_encode,
                                                     xordelta_decode };
