/*
 * The codec table and the RAW and ZSTD codecs; see codec.h.
 *
 * Choosing a codec is the ingest hot path, so cairn__codec_encode_best()
 * does not try everything: a delta when there is a base, then for float
 * chunks PLANE (order-1 rANS planes, only where a sampled estimate says it
 * wins; codec_plane.h) or else byte planes (whole-chunk zstd only if the
 * planes failed to shrink it), or zstd for everything else unless an entropy
 * probe calls the bytes random. That is one compression pass per chunk in
 * the common cases; the old try-every-codec rule cost two on every float
 * chunk for a ratio that byte planes always beat on weights. Each candidate
 * gets as output limit one byte less than the best so far, so a codec that
 * cannot win stops early (zstd returns dstSize_tooSmall) instead of
 * finishing a useless frame.
 */
#include <stdlib.h>
#include <string.h>

#include <zstd.h>
#include <zstd_errors.h>

#include "cairn/common.h"
#include "store/bytegroup.h"
#include "store/codec.h"
#include "store/codec_plane.h"
#include "util/buf.h"

int cairn_codec_ctx_new(struct cairn_codec_ctx **out, int level)
{
    struct cairn_codec_ctx *ctx = calloc(1, sizeof(*ctx));

    *out = NULL;
    if (!ctx)
        return cairn_error_set(CAIRN_ENOMEM, "out of memory allocating a codec context");
    if (level == 0)
        level = ZSTD_CLEVEL_DEFAULT;
    if (level < ZSTD_minCLevel())
        level = ZSTD_minCLevel();
    if (level > ZSTD_maxCLevel())
        level = ZSTD_maxCLevel();
    ctx->level = level;
    for (int i = 0; i < 2; i++) {
        cairn_buf_init(&ctx->cand[i], CAIRN_CODEC_SCRATCH_LIMIT);
        cairn_buf_init(&ctx->scratch[i], CAIRN_CODEC_SCRATCH_LIMIT);
    }
    cairn_buf_init(&ctx->base, CAIRN_CODEC_SCRATCH_LIMIT);
    *out = ctx;
    return 0;
}

void cairn_codec_ctx_free(struct cairn_codec_ctx *ctx)
{
    if (!ctx)
        return;
    ZSTD_freeCCtx(ctx->cctx);
    ZSTD_freeDCtx(ctx->dctx);
    for (int i = 0; i < 2; i++) {
        cairn_buf_release(&ctx->cand[i]);
        cairn_buf_release(&ctx->scratch[i]);
    }
    cairn_buf_release(&ctx->base);
    free(ctx);
}

int cairn__zstd_encode(struct cairn_codec_ctx *ctx, struct cairn_buf *out, const void *raw,
                       size_t len, size_t limit)
{
    size_t bound = ZSTD_compressBound(len), r;
    int error;

    if (limit == 0)
        return 1;
    if (limit > bound)
        limit = bound;
    if (!ctx->cctx && !(ctx->cctx = ZSTD_createCCtx()))
        return cairn_error_set(CAIRN_ENOMEM, "out of memory creating a zstd context");
    if ((error = cairn_buf_grow(out, limit)) < 0)
        return error;
    r = ZSTD_compressCCtx(ctx->cctx, out->ptr + out->len, limit, raw, len, ctx->level);
    if (ZSTD_isError(r)) {
        if (ZSTD_getErrorCode(r) == ZSTD_error_dstSize_tooSmall)
            return 1;
        return cairn_error_set(CAIRN_ERROR, "zstd compression failed: %s", ZSTD_getErrorName(r));
    }
    out->len += r;
    out->ptr[out->len] = '\0';
    return 0;
}

int cairn__zstd_decode(struct cairn_codec_ctx *ctx, void *dst, size_t raw_len, const void *src,
                       size_t src_len)
{
    unsigned char dummy;
    size_t r;

    if (!ctx->dctx && !(ctx->dctx = ZSTD_createDCtx()))
        return cairn_error_set(CAIRN_ENOMEM, "out of memory creating a zstd context");
    if (src_len == 0)
        return cairn_error_set(CAIRN_ECORRUPT, "empty zstd frame");
    r = ZSTD_decompressDCtx(ctx->dctx, raw_len ? dst : &dummy, raw_len, src, src_len);
    if (ZSTD_isError(r))
        return cairn_error_set(CAIRN_ECORRUPT, "bad zstd frame: %s", ZSTD_getErrorName(r));
    if (r != raw_len)
        return cairn_error_set(CAIRN_ECORRUPT, "zstd frame holds %zu bytes, expected %zu", r,
                               raw_len);
    return 0;
}

static int raw_encode(struct cairn_codec_ctx *ctx, struct cairn_buf *out, const void *raw,
                      size_t len, const struct cairn_codec_args *a, size_t limit)
{
    (void)ctx;
    (void)a;
    if (len > limit)
        return 1;
    return cairn_buf_put(out, raw, len);
}

static int raw_decode(struct cairn_codec_ctx *ctx, void *dst, size_t raw_len, const void *src,
                      size_t src_len, const struct cairn_codec_args *a)
{
    (void)ctx;
    (void)a;
    if (src_len != raw_len)
        return cairn_error_set(CAIRN_ECORRUPT, "raw chunk of %zu bytes, expected %zu", src_len,
                               raw_len);
    if (raw_len && dst != src)
        memmove(dst, src, raw_len);
    return 0;
}

static int zstd_encode(struct cairn_codec_ctx *ctx, struct cairn_buf *out, const void *raw,
                       size_t len, const struct cairn_codec_args *a, size_t limit)
{
    (void)a;
    return cairn__zstd_encode(ctx, out, raw, len, limit);
}

static int zstd_decode(struct cairn_codec_ctx *ctx, void *dst, size_t raw_len, const void *src,
                       size_t src_len, const struct cairn_codec_args *a)
{
    (void)a;
    return cairn__zstd_decode(ctx, dst, raw_len, src, src_len);
}

static const struct cairn_codec_ops raw_ops = { "raw", 0, raw_encode, raw_decode };
static const struct cairn_codec_ops zstd_ops = { "zstd", 0, zstd_encode, zstd_decode };

/*
 * One slot per on-disk codec id. The byte-grouping codecs of bytegroup.c
 * take the slots CAIRN_CODEC_BGZSTD and CAIRN_CODEC_XORDELTA with their own
 * ops (declared in bytegroup.h); an empty slot is an unknown codec.
 */
static const struct cairn_codec_ops *const codec_table[CAIRN_CODEC_SLOTS] = {
    [CAIRN_CODEC_RAW] = &raw_ops,
    [CAIRN_CODEC_ZSTD] = &zstd_ops,
    [CAIRN_CODEC_BGZSTD] = &cairn__bgzstd_ops,
    [CAIRN_CODEC_XORDELTA] = &cairn__xordelta_ops,
    [CAIRN_CODEC_PLANE] = &cairn__plane_ops,
};

const struct cairn_codec_ops *cairn__codec_ops(int codec)
{
    if (codec < 0 || codec >= CAIRN_CODEC_SLOTS)
        return NULL;
    return codec_table[codec];
}

const char *cairn__codec_name(int codec)
{
    const struct cairn_codec_ops *ops = cairn__codec_ops(codec);
    return ops ? ops->name : "unknown";
}

/*
 * Try codec `c` on raw[0..len) into the free candidate buffer; when it beats
 * the best so far, it becomes the best. Returns 0 or negative CAIRN_E*.
 */
struct pick {
    struct cairn_buf *best;
    size_t best_len;
    int best_codec, cur;
};

static int try_codec(struct cairn_codec_ctx *ctx, struct pick *pk, int c, const void *raw,
                     size_t len, const struct cairn_codec_args *a)
{
    const struct cairn_codec_ops *ops = codec_table[c];
    struct cairn_buf *cand = &ctx->cand[pk->cur];
    int error;

    if (!ops || (ops->uses_base && !a->base) || pk->best_len == 0)
        return 0;
    cairn_buf_clear(cand);
    error = ops->encode(ctx, cand, raw, len, a, pk->best_len - 1);
    if (error < 0)
        return error;
    if (error == 1 || cand->len >= pk->best_len)
        return 0;
    pk->best = cand;
    pk->best_len = cand->len;
    pk->best_codec = c;
    pk->cur ^= 1; /* keep `best`, encode the next candidate into the other buffer */
    return 0;
}

int cairn__codec_encode_best(struct cairn_codec_ctx *ctx, struct cairn_buf *out, int *codec_out,
                             const void *raw, size_t len, const struct cairn_codec_args *a)
{
    struct pick pk = { NULL, len, CAIRN_CODEC_RAW, 0 };
    int error = 0;
    static const struct cairn_codec_args none = { 0, NULL, 0 };

    if (!a)
        a = &none;
    /*
     * The delta first: against a close parent it is several times smaller
     * than anything else, and every later candidate then gets a tight limit
     * and gives up early.
     */
    if ((error = try_codec(ctx, &pk, CAIRN_CODEC_XORDELTA, raw, len, a)) < 0)
        goto done;
    if (a->elem_size >= 2) {
        /*
         * Floats: byte planes beat plain zstd on weights (0.67 against 0.78
         * of raw on bf16) at a fraction of its cost, since mantissa planes are
         * skipped by a histogram. Whole-chunk zstd only when the planes did
         * not shrink the chunk at all (a float tensor holding repetitive
         * bytes); trying it always would double the ingest CPU for nothing.
         */
        /*
         * PLANE (rANS with one byte of context per plane) first: it estimates
         * from a sample whether any plane beats BGZSTD's coding of it by a
         * margin and declines otherwise (synthetic or already well-coded
         * weights), so on most chunks it costs one sampled histogram pass
         * and BGZSTD runs as before. When taken, BGZSTD is not tried: PLANE
         * codes the planes it does not rANS-code exactly as BGZSTD does.
         */
        if (!a->skip_plane && (error = try_codec(ctx, &pk, CAIRN_CODEC_PLANE, raw, len, a)) < 0)
            goto done;
        if (pk.best_codec != CAIRN_CODEC_PLANE &&
            (error = try_codec(ctx, &pk, CAIRN_CODEC_BGZSTD, raw, len, a)) < 0)
            goto done;
        if (pk.best_codec == CAIRN_CODEC_RAW &&
            (error = try_codec(ctx, &pk, CAIRN_CODEC_ZSTD, raw, len, a)) < 0)
            goto done;
    } else if (!cairn__looks_random(raw, len)) {
        /* Bytes of unknown structure: zstd, unless an order-0 entropy probe
         * says it cannot save 3% (compressed or encrypted data), which costs
         * one histogram pass instead of a failed zstd pass. */
        if ((error = try_codec(ctx, &pk, CAIRN_CODEC_ZSTD, raw, len, a)) < 0)
            goto done;
    }
    if (pk.best && out->len == 0) {
        /* Hand the winner over rather than copy it (each keeps its own limit). */
        struct cairn_buf t = *out;
        out->ptr = pk.best->ptr;
        out->len = pk.best->len;
        out->cap = pk.best->cap;
        pk.best->ptr = t.ptr;
        pk.best->len = 0;
        pk.best->cap = t.cap;
        if (pk.best->ptr)
            pk.best->ptr[0] = '\0';
    } else {
        error =
            pk.best ? cairn_buf_put(out, pk.best->ptr, pk.best->len) : cairn_buf_put(out, raw, len);
        if (error < 0)
            goto done;
    }
    *codec_out = pk.best_codec;
done:
    return error < 0 ? error : 0;
}

int cairn__codec_decode(struct cairn_codec_ctx *ctx, int codec, void *dst, size_t raw_len,
                        const void *src, size_t src_len, const struct cairn_codec_args *a)
{
    const struct cairn_codec_ops *ops = cairn__codec_ops(codec);
    static const struct cairn_codec_args none = { 0, NULL, 0 };

    if (!a)
        a = &none;
    if (!ops)
        return cairn_error_set(CAIRN_ECORRUPT, "unknown codec %d", codec);
    if (ops->uses_base && !a->base)
        return cairn_error_set(CAIRN_ECORRUPT, "%s chunk without a base", ops->name);
    return ops->decode(ctx, dst, raw_len, src, src_len, a);
}
