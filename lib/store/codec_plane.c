/*
 * The PLANE codec (see codec_plane.h): byte planes coded by a semi-static
 * order-0/order-1 rANS coder.
 *
 * The coder is ryg_rans's byte-wise rANS with 32-bit states, 12-bit
 * frequencies and four interleaved states: a plane of n bytes is cut into
 * four segments of q = n / 4 (the last one also takes the n % 4 leftovers),
 * state s codes segment s, and the decoder takes one byte of each segment in
 * turn, so the four multiply-add chains run in parallel. For the PREV mode
 * the first byte of each segment has context 0, which keeps the segments
 * independent.
 *
 * Frequency tables are sent as 256 little-endian u16 per context, the low
 * bytes of every table first and then the high bytes, compressed with zstd:
 * absent symbols are runs of zeros, so a table costs about a byte per symbol
 * present. That is the price of order 1 on small chunks, and the estimate
 * counts it.
 */
#include <math.h>
#include <pthread.h>
#include <string.h>

#include <zstd.h>
#include <zstd_errors.h>

#include "cairn/common.h"
#include "store/bytegroup.h"
#include "store/codec.h"
#include "store/codec_plane.h"
#include "util/buf.h"

#define PREC          12
#define TOTAL         (1u << PREC)
#define RANS_L        (1u << 15) /* states live in [RANS_L, RANS_L << 16) */
#define MAX_W         8
#define NSTATES       4
#define BITMAP_LEN    32    /* one bit per context */
#define SAMPLE_BLOCK  2048  /* the estimate reads blocks of this many values ... */
#define SAMPLE_VALUES 65536 /* ... about this many in all */
#define RANDOM_BITS   7.9   /* order-0 bits per byte above which order 1 is not tried */

/* ---- entropy estimate ---- */

static float xlog2x_tab[4096];
static pthread_once_t xlog2x_once = PTHREAD_ONCE_INIT;

static void xlog2x_init(void)
{
    xlog2x_tab[0] = 0;
    for (int i = 1; i < 4096; i++)
        xlog2x_tab[i] = (float)(i * log2((double)i));
}

static inline double xlog2x(uint32_t c)
{
    return c < 4096 ? xlog2x_tab[c] : c * log2((double)c);
}

/* Bits to code the symbols counted in h[0..256) with their own empirical
 * distribution; *present gets how many symbols occur. */
static double row_bits(const uint32_t *h, unsigned *present)
{
    uint64_t t = 0;
    double s = 0;
    unsigned np = 0;

    for (int i = 0; i < 256; i++) {
        if (h[i]) {
            t += h[i];
            s += xlog2x(h[i]);
            np++;
        }
    }
    *present = np;
    return t ? xlog2x((uint32_t)(t > UINT32_MAX ? UINT32_MAX : t)) - s : 0;
}

/* Estimated bytes of a frequency table holding `present` symbols. */
static double table_cost(unsigned present)
{
    return 2 + 1.1 * present;
}

/* Bytes a coded plane costs besides its data and tables: mode, lengths, states. */
#define CODED_OVERHEAD (1 + 4 + 4 + 4 * NSTATES)

/*
 * The mask applied to a context byte of plane k of w-byte values in `mode`:
 * 0x7f when the context byte comes from the top plane of a float (PREV on
 * plane w-1, ABOVE on plane w-2), whose top bit is the sign. A weight's
 * sign says nothing about its neighbour's magnitude or about its own
 * mantissa (the distributions are symmetric), and dropping it halves the
 * contexts, so each table sees twice the data and half as many are paid for.
 */
static unsigned ctx_mask(unsigned w, unsigned k, int mode)
{
    unsigned source = mode == CAIRN_PLANE_ABOVE ? k + 1 : k;
    return w > 1 && source == w - 1 ? 0x7f : 0xff;
}

/*
 * Estimated bytes of an order-1 plane from its counts h[ctx][sym] (scaled
 * by `scale` to the plane's size): the bitmap, one table per context that
 * pays for itself, and one shared table for all the others. A context gets
 * its own table when coding its bytes with it, plus the table, is cheaper
 * than coding them with the plane's order-0 distribution (which stands in for
 * the shared table). own[c] (when not NULL) gets 1 for those contexts.
 */
static double context_cost(const uint32_t *h, double scale, unsigned char *own)
{
    uint32_t h0[256] = { 0 }, rest[256] = { 0 };
    double l0[256], bytes = BITMAP_LEN, bits;
    uint64_t t = 0;
    unsigned present;

    for (int c = 0; c < 256; c++)
        for (int i = 0; i < 256; i++)
            h0[i] += h[256 * c + i];
    for (int i = 0; i < 256; i++)
        t += h0[i];
    for (int i = 0; i < 256; i++)
        l0[i] = h0[i] ? log2((double)t / h0[i]) : 0;
    for (int c = 0; c < 256; c++) {
        const uint32_t *row = h + 256 * c;
        double shared = 0, mine;
        uint32_t n = 0;
        for (int i = 0; i < 256; i++) {
            shared += row[i] * l0[i];
            n += row[i];
        }
        if (own)
            own[c] = 0;
        if (!n)
            continue;
        mine = row_bits(row, &present) / 8 * scale + table_cost(present);
        if (mine < shared / 8 * scale) {
            bytes += mine;
            if (own)
                own[c] = 1;
        } else {
            for (int i = 0; i < 256; i++)
                rest[i] += row[i];
        }
    }
    bits = row_bits(rest, &present);
    return bytes + bits / 8 * scale + table_cost(present);
}

struct estimate {
    double bytes[4]; /* per mode, CAIRN_PLANE_* */
};

/*
 * Estimate each mode's size for plane k of the n w-byte values at raw (the
 * bytes are read in place, before any split, so that a chunk the codec
 * declines costs only the sample) from blocks of SAMPLE_BLOCK values, about
 * SAMPLE_VALUES in all; hp and ha are 65536-entry scratch counters.
 */
static void estimate_plane(struct estimate *e, const unsigned char *raw, unsigned w, unsigned k,
                           size_t n, uint32_t *hp, uint32_t *ha)
{
    uint32_t h0[256] = { 0 };
    const unsigned char *p = raw + k, *above = k + 1 < w ? raw + k + 1 : NULL;
    size_t nblocks = (n + SAMPLE_BLOCK - 1) / SAMPLE_BLOCK;
    size_t step = n <= SAMPLE_VALUES ? 1 : nblocks / (SAMPLE_VALUES / SAMPLE_BLOCK), sampled = 0;
    unsigned present, mp = ctx_mask(w, k, CAIRN_PLANE_PREV), ma = ctx_mask(w, k, CAIRN_PLANE_ABOVE);
    double scale, b0;
    int only_above;

    if (step == 0)
        step = 1;
    for (int m = 0; m < 4; m++)
        e->bytes[m] = INFINITY;
    e->bytes[CAIRN_PLANE_RAW] = 1 + (double)n;
    if (n == 0)
        return;
    for (size_t b = 0; b < nblocks; b += step) {
        size_t from = b * SAMPLE_BLOCK, to = from + SAMPLE_BLOCK < n ? from + SAMPLE_BLOCK : n;
        for (size_t i = from; i < to; i++)
            h0[p[i * w]]++;
        sampled += to - from;
    }
    scale = (double)n / (double)sampled;
    b0 = row_bits(h0, &present);
    e->bytes[CAIRN_PLANE_O0] = CODED_OVERHEAD + table_cost(present) + b0 / 8 * scale;
    /*
     * Near-random on its own: one byte of context cannot pay for its tables,
     * except in the plane just below the top one, whose top bit is the
     * exponent's lowest (fp32, bf16): given the byte above, that bit and
     * the leading mantissa bits are skewed (weights are denser towards zero
     * within each binade), though the plane alone looks random.
     */
    only_above = b0 > RANDOM_BITS * (double)sampled;
    if (only_above && !(above && k + 2 == w && w >= 4))
        return;

    if (!only_above)
        memset(hp, 0, 65536 * sizeof(*hp));
    if (above)
        memset(ha, 0, 65536 * sizeof(*ha));
    for (size_t b = 0; b < nblocks; b += step) {
        size_t from = b * SAMPLE_BLOCK, to = from + SAMPLE_BLOCK < n ? from + SAMPLE_BLOCK : n;
        unsigned prev = from ? p[(from - 1) * w] & mp : 0;
        for (size_t i = from; i < to; i++) {
            unsigned c = p[i * w];
            if (!only_above)
                hp[prev << 8 | c]++;
            if (above)
                ha[((unsigned)above[i * w] & ma) << 8 | c]++;
            prev = c & mp;
        }
    }
    for (int m = only_above ? CAIRN_PLANE_ABOVE : CAIRN_PLANE_PREV; m <= CAIRN_PLANE_ABOVE; m++) {
        if (m == CAIRN_PLANE_ABOVE && !above)
            break;
        e->bytes[m] = CODED_OVERHEAD + context_cost(m == CAIRN_PLANE_PREV ? hp : ha, scale, NULL);
    }
}

/* ---- frequency tables ---- */

/* Scale counts c[0..256) (total > 0) to frequencies f summing to TOTAL, every
 * symbol present keeping at least 1. */
static void normalize(uint16_t *f, const uint32_t *c)
{
    uint64_t t = 0;
    int64_t sum = 0, diff;
    int best = 0;

    for (int i = 0; i < 256; i++)
        t += c[i];
    for (int i = 0; i < 256; i++) {
        if (!c[i]) {
            f[i] = 0;
            continue;
        }
        uint64_t v = ((uint64_t)c[i] * TOTAL + t / 2) / t;
        f[i] = (uint16_t)(v ? v : 1);
        sum += f[i];
        if (c[i] > c[best])
            best = i;
    }
    diff = (int64_t)TOTAL - sum;
    if (diff > 0) {
        f[best] = (uint16_t)(f[best] + diff);
        return;
    }
    while (diff < 0) {
        /* Take from the largest frequency; with at most 256 symbols it holds
         * at least TOTAL / 256 > 1, so this ends. */
        int m = 0;
        for (int i = 1; i < 256; i++)
            if (f[i] > f[m])
                m = i;
        int64_t take = f[m] - 1 < -diff ? f[m] - 1 : -diff;
        f[m] = (uint16_t)(f[m] - take);
        diff += take;
    }
}

/* ---- rANS ---- */

/*
 * One symbol's encoder entry (ryg_rans's RansEncSymbol): division by the
 * frequency is a multiply by its reciprocal and a shift.
 */
struct enc_sym {
    uint32_t x_max;     /* renormalise while the state is at least this */
    uint32_t rcp_freq;  /* fixed-point reciprocal of the frequency */
    uint32_t bias;      /* cum, or cum + TOTAL - 1 for frequency 1 */
    uint16_t cmpl_freq; /* TOTAL - freq */
    uint16_t rcp_shift;
};

/* Encoder entries of the frequencies f (zero frequencies get no entry use). */
static void set_enc(struct enc_sym *e, const uint16_t *f)
{
    uint32_t cum = 0;

    for (int s = 0; s < 256; s++) {
        uint32_t freq = f[s];
        memset(&e[s], 0, sizeof(e[s]));
        if (freq) {
            e[s].x_max = ((RANS_L >> PREC) << 16) * freq;
            e[s].cmpl_freq = (uint16_t)(TOTAL - freq);
            if (freq < 2) {
                e[s].rcp_freq = ~0u;
                e[s].rcp_shift = 0;
                e[s].bias = cum + TOTAL - 1;
            } else {
                uint32_t shift = 0;
                while (freq > (1u << shift))
                    shift++;
                e[s].rcp_freq = (uint32_t)(((1ull << (shift + 31)) + freq - 1) / freq);
                e[s].rcp_shift = (uint16_t)(shift - 1);
                e[s].bias = cum;
            }
        }
        cum += freq;
    }
}

static inline void rans_put(uint32_t *x, unsigned char **ptr, const struct enc_sym *e)
{
    uint32_t v = *x, q;
    if (v >= e->x_max) {
        *ptr -= 2;
        (*ptr)[0] = (unsigned char)v;
        (*ptr)[1] = (unsigned char)(v >> 8);
        v >>= 16;
    }
    q = (uint32_t)(((uint64_t)v * e->rcp_freq) >> 32) >> e->rcp_shift;
    *x = v + e->bias + q * e->cmpl_freq;
}

/*
 * Code plane p[0..n) in `mode` with the per-context tables tab[c] into the
 * buffer ending at `end`; returns the start of the stream (states first).
 * Always inlined with a constant mode, so each mode gets its own loop.
 */
static inline __attribute__((always_inline)) unsigned char *
rans_encode(unsigned char *end, const unsigned char *p, const unsigned char *above, size_t n,
            const int mode, unsigned cm, const struct enc_sym *const *tab)
{
    uint32_t x[NSTATES] = { RANS_L, RANS_L, RANS_L, RANS_L };
    unsigned char *ptr = end;
    size_t q = n / NSTATES;

#define CTX(pos, start)                                                     \
    (mode == CAIRN_PLANE_PREV    ? ((pos) == (start) ? 0 : p[(pos)-1] & cm) \
     : mode == CAIRN_PLANE_ABOVE ? above[pos] & cm                          \
                                 : 0)
    for (size_t j = n; j-- > NSTATES * q;)
        rans_put(&x[3], &ptr, &tab[CTX(j, 0)][p[j]]);
    for (size_t i = q; i-- > 0;) {
        /* Unrolled by hand: -O2 keeps a loop over the four states. */
        rans_put(&x[3], &ptr, &tab[CTX(3 * q + i, 3 * q)][p[3 * q + i]]);
        rans_put(&x[2], &ptr, &tab[CTX(2 * q + i, 2 * q)][p[2 * q + i]]);
        rans_put(&x[1], &ptr, &tab[CTX(q + i, q)][p[q + i]]);
        rans_put(&x[0], &ptr, &tab[CTX(i, 0)][p[i]]);
    }
#undef CTX
    for (int s = NSTATES - 1; s >= 0; s--) {
        ptr -= 4;
        cairn_put_u32le(ptr, x[s]);
    }
    return ptr;
}

/*
 * Decode entry of a slot: symbol | (freq - 1) << 8 | (slot - cum) << 20;
 * tab[c] is context c's table of TOTAL slots. Renormalisation reads are
 * bounds-checked; returns 0, or -1 on a stream that runs out, has states
 * out of range, or does not end where the encoder began.
 */
static int rans_decode(unsigned char *out, const unsigned char *above, size_t n, int mode,
                       unsigned cm, const uint32_t *const *tab, const unsigned char *src,
                       size_t len)
{
    const unsigned char *ptr = src + 4 * NSTATES, *end = src + len;
    uint32_t x[NSTATES];
    size_t q = n / NSTATES;

    if (len < 4 * NSTATES || (len - 4 * NSTATES) % 2)
        return -1;
    for (int s = 0; s < NSTATES; s++) {
        x[s] = cairn_get_u32le(src + 4 * s);
        if (x[s] < RANS_L || x[s] >= RANS_L << 16)
            return -1;
    }
#define STEP(s, ctx, pos)                                                     \
    do {                                                                      \
        uint32_t e_ = tab[ctx][x[s] & (TOTAL - 1)];                           \
        out[pos] = (unsigned char)e_;                                         \
        x[s] = (((e_ >> 8) & (TOTAL - 1)) + 1) * (x[s] >> PREC) + (e_ >> 20); \
        if (x[s] < RANS_L) {                                                  \
            if (ptr == end)                                                   \
                return -1;                                                    \
            x[s] = x[s] << 16 | (uint32_t)ptr[0] | (uint32_t)ptr[1] << 8;     \
            ptr += 2;                                                         \
        }                                                                     \
    } while (0)
    if (mode == CAIRN_PLANE_PREV) {
        unsigned c0 = 0, c1 = 0, c2 = 0, c3 = 0;
        for (size_t i = 0; i < q; i++) {
            STEP(0, c0, i);
            STEP(1, c1, q + i);
            STEP(2, c2, 2 * q + i);
            STEP(3, c3, 3 * q + i);
            c0 = out[i] & cm;
            c1 = out[q + i] & cm;
            c2 = out[2 * q + i] & cm;
            c3 = out[3 * q + i] & cm;
        }
        for (size_t j = NSTATES * q; j < n; j++)
            STEP(3, j ? out[j - 1] & cm : 0, j);
    } else if (mode == CAIRN_PLANE_ABOVE) {
        for (size_t i = 0; i < q; i++) {
            STEP(0, above[i] & cm, i);
            STEP(1, above[q + i] & cm, q + i);
            STEP(2, above[2 * q + i] & cm, 2 * q + i);
            STEP(3, above[3 * q + i] & cm, 3 * q + i);
        }
        for (size_t j = NSTATES * q; j < n; j++)
            STEP(3, above[j] & cm, j);
    } else {
        for (size_t i = 0; i < q; i++) {
            STEP(0, 0, i);
            STEP(1, 0, q + i);
            STEP(2, 0, 2 * q + i);
            STEP(3, 0, 3 * q + i);
        }
        for (size_t j = NSTATES * q; j < n; j++)
            STEP(3, 0, j);
    }
#undef STEP
    for (int s = 0; s < NSTATES; s++)
        if (x[s] != RANS_L)
            return -1;
    return ptr == end ? 0 : -1;
}

/* ---- encoder ---- */

/* Scratch layout in ctx->scratch[1] for encoding (offsets in bytes). */
#define SC_HIST 0                         /* u32 [256][256] counts of the chosen mode */
#define SC_HA   (SC_HIST + 65536 * 4)     /* u32 [256][256] sample counts, context above */
#define SC_ENC  (SC_HA + 65536 * 4)       /* struct enc_sym [257][256] */
#define SC_FREQ (SC_ENC + 257 * 256 * 16) /* u16 [257][256] frequencies */
#define SC_TAB  (SC_FREQ + 257 * 256 * 2) /* table bytes: 257 * 512 */
#define SC_OUT  (SC_TAB + 257 * 512)      /* rANS stream, written backwards */

/* Full counts of plane p in `mode`, with the segment starts of PREV at context 0. */
static void count_plane(uint32_t *h, const unsigned char *p, const unsigned char *above, size_t n,
                        int mode, unsigned cm)
{
    size_t q = n / NSTATES;

    memset(h, 0, 65536 * sizeof(*h));
    if (mode == CAIRN_PLANE_O0) {
        for (size_t i = 0; i < n; i++)
            h[p[i]]++;
    } else if (mode == CAIRN_PLANE_ABOVE) {
        for (size_t i = 0; i < n; i++)
            h[((unsigned)above[i] & cm) << 8 | p[i]]++;
    } else {
        unsigned prev = 0;
        for (size_t i = 0; i < n; i++) {
            h[prev << 8 | p[i]]++;
            prev = p[i] & cm;
        }
        for (int s = 1; q && s < NSTATES; s++) {
            size_t j = (size_t)s * q;
            h[((unsigned)p[j - 1] & cm) << 8 | p[j]]--;
            h[p[j]]++;
        }
    }
}

/*
 * Append plane p coded in `mode` (not RAW) to out if that takes fewer than
 * `room` bytes; returns 0 when appended, 1 when not (out unchanged), or a
 * negative CAIRN_E*.
 */
static int encode_plane(struct cairn_codec_ctx *ctx, struct cairn_buf *out, const unsigned char *p,
                        const unsigned char *above, size_t n, int mode, unsigned cm, size_t room)
{
    struct cairn_buf *sc = &ctx->scratch[1];
    uint32_t *h = (uint32_t *)(void *)(sc->ptr + SC_HIST);
    struct enc_sym *enc = (struct enc_sym *)(void *)(sc->ptr + SC_ENC);
    const struct enc_sym *tp[256];
    uint16_t *freqs = (uint16_t *)(void *)(sc->ptr + SC_FREQ);
    unsigned char *tab = (unsigned char *)sc->ptr + SC_TAB;
    unsigned char *stream_end = (unsigned char *)sc->ptr + SC_OUT + 2 * n + 4 * NSTATES;
    unsigned char bitmap[BITMAP_LEN] = { 0 };
    uint16_t map[256] = { 0 }, f[256];
    uint32_t rest[256] = { 0 };
    unsigned char own[256] = { 0 };
    const size_t start = out->len;
    unsigned nctx = 0;
    size_t hdr = 1 + (mode == CAIRN_PLANE_O0 ? 0 : BITMAP_LEN) + 4, tpos, dlen;
    unsigned char *stream;
    int error;

    count_plane(h, p, above, n, mode, cm);
    if (mode == CAIRN_PLANE_O0) {
        memcpy(rest, h, sizeof(rest));
    } else {
        context_cost(h, 1.0, own);
        for (unsigned c = 0; c < 256; c++) {
            const uint32_t *row = h + 256 * c;
            if (own[c]) {
                normalize(f, row);
                set_enc(enc + 256 * nctx, f);
                memcpy(freqs + 256 * nctx, f, sizeof(f));
                map[c] = (uint16_t)nctx;
                bitmap[c / 8] |= (unsigned char)(1u << (c % 8));
                nctx++;
            } else {
                for (int s = 0; s < 256; s++)
                    rest[s] += row[s];
            }
        }
    }
    /* The shared table, last; a valid one (all on symbol 0) if nothing uses it. */
    for (unsigned c = 0; c < 256; c++)
        if (mode == CAIRN_PLANE_O0 || !own[c])
            map[c] = (uint16_t)nctx;
    {
        uint32_t any = 0;
        for (int s = 0; s < 256; s++)
            any |= rest[s];
        if (!any)
            rest[0] = 1;
    }
    normalize(f, rest);
    set_enc(enc + 256 * nctx, f);
    memcpy(freqs + 256 * nctx, f, sizeof(f));
    nctx++;
    /* Tables: the low bytes of every context's frequencies, then the high bytes. */
    for (unsigned t = 0; t < nctx; t++) {
        for (int s = 0; s < 256; s++) {
            uint32_t fr = freqs[256 * t + s];
            tab[256 * t + s] = (unsigned char)fr;
            tab[256 * (nctx + t) + s] = (unsigned char)(fr >> 8);
        }
    }
    if (hdr >= room)
        return 1;
    if ((error = cairn_buf_grow(out, hdr)) < 0)
        return error;
    out->ptr[out->len++] = (char)mode;
    if (mode != CAIRN_PLANE_O0) {
        memcpy(out->ptr + out->len, bitmap, BITMAP_LEN);
        out->len += BITMAP_LEN;
    }
    out->len += 4;
    tpos = out->len;
    error = cairn__zstd_encode(ctx, out, tab, 512 * (size_t)nctx, room - hdr);
    if (error != 0)
        goto fail;
    cairn_put_u32le(out->ptr + tpos - 4, (uint32_t)(out->len - tpos));
    for (unsigned c = 0; c < 256; c++)
        tp[c] = enc + 256 * map[c];
    if (mode == CAIRN_PLANE_PREV)
        stream = rans_encode(stream_end, p, above, n, CAIRN_PLANE_PREV, cm, tp);
    else if (mode == CAIRN_PLANE_ABOVE)
        stream = rans_encode(stream_end, p, above, n, CAIRN_PLANE_ABOVE, cm, tp);
    else
        stream = rans_encode(stream_end, p, above, n, CAIRN_PLANE_O0, cm, tp);
    dlen = (size_t)(stream_end - stream);
    if (out->len - start + 4 + dlen >= room) {
        error = 1;
        goto fail;
    }
    if ((error = cairn_buf_put_u32le(out, (uint32_t)dlen)) < 0 ||
        (error = cairn_buf_put(out, stream, dlen)) < 0)
        goto fail;
    return 0;
fail:
    out->len = start;
    if (out->ptr)
        out->ptr[start] = '\0';
    return error;
}

/*
 * zstd for a plane the coder leaves alone, with the parameters BGZSTD's
 * planes use (bytegroup.c's plane_zstd: level 1, hash log 6, min match 7,
 * mostly Huffman coding of literals). Appends u32 length + frame; returns 0,
 * 1 when the frame would not be smaller than `room`, or negative CAIRN_E*.
 */
static int zstd_plane(struct cairn_codec_ctx *ctx, struct cairn_buf *out, const void *p, size_t n,
                      size_t room)
{
    const size_t start = out->len;
    size_t bound = ZSTD_compressBound(n), r, cap;
    int error;

    if (room <= 5)
        return 1;
    cap = room - 5 < bound ? room - 5 : bound;
    if (!ctx->cctx && !(ctx->cctx = ZSTD_createCCtx()))
        return cairn_error_set(CAIRN_ENOMEM, "out of memory creating a zstd context");
    if (ZSTD_isError(ZSTD_CCtx_reset(ctx->cctx, ZSTD_reset_session_and_parameters)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(ctx->cctx, ZSTD_c_compressionLevel, 1)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(ctx->cctx, ZSTD_c_hashLog, 6)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(ctx->cctx, ZSTD_c_minMatch, 7)))
        return cairn_error_set(CAIRN_ERROR, "cannot set zstd parameters");
    if ((error = cairn_buf_grow(out, 5 + cap)) < 0)
        return error;
    r = ZSTD_compress2(ctx->cctx, out->ptr + start + 5, cap, p, n);
    if (ZSTD_isError(r)) {
        if (ZSTD_getErrorCode(r) == ZSTD_error_dstSize_tooSmall)
            return 1;
        return cairn_error_set(CAIRN_ERROR, "zstd compression failed: %s", ZSTD_getErrorName(r));
    }
    out->ptr[start] = CAIRN_PLANE_ZSTD;
    cairn_put_u32le(out->ptr + start + 1, (uint32_t)r);
    out->len += 5 + r;
    out->ptr[out->len] = '\0';
    return 0;
}

int cairn__plane_encode(struct cairn_codec_ctx *ctx, struct cairn_buf *out, const void *raw,
                        size_t len, unsigned w, size_t limit, int force, unsigned char *modes)
{
    const size_t start = out->len, n = w ? len / w : 0;
    const unsigned char *planes = raw;
    struct cairn_buf *sc = &ctx->scratch[1];
    int mode[MAX_W], coded = 0;
    double est = 2 + (double)(len - n * w);
    int error = 0;

    if (w < 1 || w > MAX_W)
        return 1;
    if (n > UINT32_MAX / 2)
        return 1; /* a chunk is never this large; keeps the u32 lengths exact */
    pthread_once(&xlog2x_once, xlog2x_init);
    cairn_buf_clear(sc);
    if ((error = cairn_buf_grow(sc, SC_OUT + 2 * n + 4 * NSTATES)) < 0)
        return error;
    /*
     * Per plane: the rANS mode with the smallest estimate, if it beats what
     * BGZSTD does with the plane (about order 0 with zstd, or raw when the
     * bytes look random) by a margin of the plane; otherwise the
     * plane is treated as BGZSTD treats it (mode -1 until the split).
     */
    for (unsigned k = 0; k < w; k++) {
        struct estimate e;
        double base, margin;
        int m = CAIRN_PLANE_O0;
        estimate_plane(&e, raw, w, k, n, (uint32_t *)(void *)(sc->ptr + SC_HIST),
                       (uint32_t *)(void *)(sc->ptr + SC_HA));
        for (int c = CAIRN_PLANE_PREV; c <= CAIRN_PLANE_ABOVE; c++)
            if (e.bytes[c] < e.bytes[m])
                m = c;
        base = e.bytes[CAIRN_PLANE_O0] - CODED_OVERHEAD;
        margin = CAIRN_PLANE_MARGIN_ZSTD;
        if (base > 0.97 * (double)n) {
            base = (double)n; /* the probe would call it random: stored raw */
            /* One plane of w is 2/w of what a 16-bit float's plane is of
             * the chunk: its coding time is spread over w bytes per value. */
            margin = (double)CAIRN_PLANE_MARGIN_RAW * 2 / (w > 2 ? w : 2);
        }
        mode[k] = -1;
        if (e.bytes[m] <= base - (force ? 0 : (double)n * margin / 1000)) {
            mode[k] = m;
            coded++;
        }
        est += mode[k] < 0 ? base : e.bytes[m];
    }
    if (est > (double)limit)
        return 1;
    if (!coded && !force)
        return 1; /* BGZSTD would do exactly the same, faster to decode */
    if (w > 1) {
        unsigned char *sp;
        if ((error = cairn__plane_scratch(ctx, len, &sp)) < 0)
            return error;
        cairn_bytegroup_split(sp, raw, len, w);
        planes = sp;
    }

    if ((error = cairn_buf_grow(out, 2)) < 0)
        return error;
    out->ptr[out->len++] = (char)w;
    out->ptr[out->len++] = 0;
    for (unsigned kk = w; kk-- > 0;) {
        const unsigned char *p = planes + (size_t)kk * n;
        const unsigned char *above = kk + 1 < w ? p + n : NULL;
        size_t used = out->len - start, room;
        if (used >= limit) {
            error = 1;
            goto fail;
        }
        room = limit - used < 1 + n ? limit - used : 1 + n;
        if (mode[kk] < 0) {
            mode[kk] = CAIRN_PLANE_RAW;
            if (n && !cairn__looks_random(p, n)) {
                if ((error = zstd_plane(ctx, out, p, n, room)) < 0)
                    goto fail;
                if (error == 0) {
                    mode[kk] = CAIRN_PLANE_ZSTD;
                    goto next;
                }
            }
        } else {
            error = encode_plane(ctx, out, p, above, n, mode[kk], ctx_mask(w, kk, mode[kk]), room);
            if (error < 0)
                goto fail;
            if (error == 0)
                goto next;
            mode[kk] = CAIRN_PLANE_RAW;
        }
        if (1 + n > limit - used) {
            error = 1;
            goto fail;
        }
        if ((error = cairn_buf_putc(out, CAIRN_PLANE_RAW)) < 0 ||
            (error = cairn_buf_put(out, p, n)) < 0)
            goto fail;
next:
        if (modes)
            modes[kk] = (unsigned char)mode[kk];
    }
    if (len - n * w > limit - (out->len - start)) {
        error = 1;
        goto fail;
    }
    if ((error = cairn_buf_put(out, planes + n * w, len - n * w)) < 0)
        goto fail;
    return 0;
fail:
    out->len = start;
    if (out->ptr)
        out->ptr[start] = '\0';
    return error;
}

/* ---- decoder ---- */

int cairn__plane_decode(struct cairn_codec_ctx *ctx, void *dst, size_t raw_len, const void *src_,
                        size_t src_len)
{
    const unsigned char *src = src_;
    unsigned char *planes = dst;
    struct cairn_buf *sc = &ctx->scratch[1];
    size_t n, tail, pos = 2;
    unsigned w;
    int error;

    if (src_len < 2 || src[0] < 1 || src[0] > MAX_W || src[1] != 0)
        return cairn_error_set(CAIRN_ECORRUPT, "bad plane-codec header");
    w = src[0];
    n = raw_len / w;
    tail = raw_len % w;
    if (w > 1 && (error = cairn__plane_scratch(ctx, raw_len, &planes)) < 0)
        return error;
    for (unsigned k = w; k-- > 0;) {
        unsigned char *p = planes + (size_t)k * n;
        const unsigned char *above = k + 1 < w ? p + n : NULL;
        unsigned char bitmap[BITMAP_LEN];
        uint16_t map[256];
        const uint32_t *tp[256];
        unsigned nctx = 0, mode;
        uint32_t tlen, dlen;

        if (pos >= src_len)
            return cairn_error_set(CAIRN_ECORRUPT, "plane %u missing", k);
        mode = src[pos++];
        if (mode == CAIRN_PLANE_RAW) {
            if (src_len - pos < n)
                return cairn_error_set(CAIRN_ECORRUPT, "raw plane %u truncated", k);
            if (n)
                memcpy(p, src + pos, n);
            pos += n;
            continue;
        }
        if (mode == CAIRN_PLANE_ZSTD) {
            if (src_len - pos < 4)
                return cairn_error_set(CAIRN_ECORRUPT, "zstd plane %u truncated", k);
            tlen = cairn_get_u32le(src + pos);
            pos += 4;
            if (tlen > src_len - pos)
                return cairn_error_set(CAIRN_ECORRUPT, "zstd plane %u truncated", k);
            if ((error = cairn__zstd_decode(ctx, p, n, src + pos, tlen)) < 0)
                return error;
            pos += tlen;
            continue;
        }
        if (mode > CAIRN_PLANE_ABOVE || (mode == CAIRN_PLANE_ABOVE && !above))
            return cairn_error_set(CAIRN_ECORRUPT, "bad mode %u for plane %u", mode, k);
        if (mode == CAIRN_PLANE_O0) {
            memset(bitmap, 0, sizeof(bitmap));
        } else {
            if (src_len - pos < BITMAP_LEN)
                return cairn_error_set(CAIRN_ECORRUPT, "plane %u truncated", k);
            memcpy(bitmap, src + pos, BITMAP_LEN);
            pos += BITMAP_LEN;
        }
        /* Contexts with a bit have their own table, in order; the rest share
         * the last one. */
        for (unsigned c = 0; c < 256; c++)
            if (bitmap[c / 8] >> (c % 8) & 1)
                map[c] = (uint16_t)nctx++;
        for (unsigned c = 0; c < 256; c++)
            if (!(bitmap[c / 8] >> (c % 8) & 1))
                map[c] = (uint16_t)nctx;
        nctx++;
        if (src_len - pos < 4)
            return cairn_error_set(CAIRN_ECORRUPT, "plane %u truncated", k);
        tlen = cairn_get_u32le(src + pos);
        pos += 4;
        if (tlen > src_len - pos)
            return cairn_error_set(CAIRN_ECORRUPT, "plane %u tables truncated", k);
        cairn_buf_clear(sc);
        if ((error = cairn_buf_grow(sc, (size_t)nctx * (TOTAL * 4 + 512))) < 0)
            return error;
        uint32_t *dt = (uint32_t *)(void *)sc->ptr;
        unsigned char *tab = (unsigned char *)sc->ptr + (size_t)nctx * TOTAL * 4;
        if ((error = cairn__zstd_decode(ctx, tab, 512 * (size_t)nctx, src + pos, tlen)) < 0)
            return error;
        pos += tlen;
        for (unsigned t = 0; t < nctx; t++) {
            uint32_t cum = 0, *d = dt + ((size_t)t << PREC);
            for (unsigned s = 0; s < 256; s++) {
                uint32_t f = tab[256 * t + s] | (uint32_t)tab[256 * (nctx + t) + s] << 8;
                if (f > TOTAL - cum)
                    return cairn_error_set(CAIRN_ECORRUPT, "bad frequency table in plane %u", k);
                for (uint32_t j = 0; j < f; j++)
                    d[cum + j] = s | (f - 1) << 8 | j << 20;
                cum += f;
            }
            if (cum != TOTAL)
                return cairn_error_set(CAIRN_ECORRUPT, "bad frequency table in plane %u", k);
        }
        if (src_len - pos < 4)
            return cairn_error_set(CAIRN_ECORRUPT, "plane %u truncated", k);
        dlen = cairn_get_u32le(src + pos);
        pos += 4;
        if (dlen > src_len - pos)
            return cairn_error_set(CAIRN_ECORRUPT, "plane %u truncated", k);
        for (unsigned c = 0; c < 256; c++)
            tp[c] = dt + ((size_t)map[c] << PREC);
        if (rans_decode(p, above, n, (int)mode, ctx_mask(w, k, (int)mode), tp, src + pos, dlen) < 0)
            return cairn_error_set(CAIRN_ECORRUPT, "bad rANS stream in plane %u", k);
        pos += dlen;
    }
    if (src_len - pos != tail)
        return cairn_error_set(CAIRN_ECORRUPT, "plane encoding has %zu bytes left, expected %zu",
                               src_len - pos, tail);
    if (tail)
        memcpy(planes + n * w, src + pos, tail);
    if (w > 1)
        cairn_bytegroup_merge(dst, planes, raw_len, w);
    return 0;
}

/* ---- the codec ---- */

static int plane_encode(struct cairn_codec_ctx *ctx, struct cairn_buf *out, const void *raw,
                        size_t len, const struct cairn_codec_args *a, size_t limit)
{
    unsigned w = a->elem_size;
    if (w < 2 || w > MAX_W || len < 2 * (size_t)w)
        return 1;
    return cairn__plane_encode(ctx, out, raw, len, w, limit, 0, NULL);
}

static int plane_decode(struct cairn_codec_ctx *ctx, void *dst, size_t raw_len, const void *src,
                        size_t src_len, const struct cairn_codec_args *a)
{
    (void)a;
    return cairn__plane_decode(ctx, dst, raw_len, src, src_len);
}

const struct cairn_codec_ops cairn__plane_ops = { "plane", 0, plane_encode, plane_decode };
