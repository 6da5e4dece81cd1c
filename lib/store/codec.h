/*
 * Chunk codecs: a dispatch table keyed by enum cairn_codec (include/cairn/
 * store.h) with one encode and one decode function per codec.
 *
 * Why a table: the store picks, per chunk, the smallest of every codec that
 * applies (cairn__codec_encode_best), and reads whatever codec id a pack
 * records; new codecs (byte-grouped zstd and XOR delta, lib/store/
 * bytegroup.c) are added by filling their slot in codec.c's table without
 * touching the store. An id with no slot is CAIRN_ECORRUPT on decode, never
 * a crash: the id comes from disk.
 *
 * Contexts: a struct cairn_codec_ctx belongs to one thread at a time; it
 * holds the reusable zstd contexts (created on first use) and scratch
 * buffers, so encoding and decoding allocate nothing per chunk once warm.
 */
#ifndef CAIRN_STORE_CODEC_H
#define CAIRN_STORE_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include <zstd.h>

#include "cairn/store.h"
#include "util/buf.h"

/* Codec ids are one byte on disk; the table has room for this many. */
#define CAIRN_CODEC_SLOTS 16

/* Scratch buffers stay below this; a chunk never exceeds it either. */
#define CAIRN_CODEC_SCRATCH_LIMIT ((size_t)1 << 30)

struct cairn_codec_ctx {
    int level;                /* zstd level: 1..22, or negative for the fast levels */
    ZSTD_CCtx *cctx;          /* created on first encode */
    ZSTD_DCtx *dctx;          /* created on first decode */
    struct cairn_buf cand[2]; /* candidate encodings while picking the smallest */
    struct cairn_buf base;    /* raw bytes of a delta base (cairn_store_encode) */
    /* Free for any codec's use within one encode or decode call (planes). */
    struct cairn_buf scratch[2];
};

/* What a codec may know besides the bytes. */
struct cairn_codec_args {
    unsigned elem_size; /* bytes per element, 0 unknown */
    const void *base;   /* raw bytes of the delta base, NULL if none */
    size_t base_len;
    int skip_plane; /* do not try PLANE (its estimate keeps declining this tensor) */
};

struct cairn_codec_ops {
    const char *name;
    int uses_base; /* 1: decode needs the base's raw bytes, and the entry records its id */
    /*
     * Append the encoding of raw[0..len) to `out`, at most `limit` bytes.
     * Returns 0 when appended, 1 when the codec does not apply or cannot beat
     * `limit` (out unchanged), negative CAIRN_E* on a real failure.
     */
    int (*encode)(struct cairn_codec_ctx *ctx, struct cairn_buf *out, const void *raw, size_t len,
                  const struct cairn_codec_args *a, size_t limit);
    /*
     * Decode src[0..src_len) into exactly raw_len bytes at dst. Anything that
     * does not decode to exactly raw_len bytes is CAIRN_ECORRUPT. Must survive
     * any input bytes and never write past dst + raw_len.
     */
    int (*decode)(struct cairn_codec_ctx *ctx, void *dst, size_t raw_len, const void *src,
                  size_t src_len, const struct cairn_codec_args *a);
};

/* The ops of `codec`, or NULL if the id is unknown. */
const struct cairn_codec_ops *cairn__codec_ops(int codec);

/* Name of a codec for messages ("raw", "zstd", ...; "unknown" otherwise). */
const char *cairn__codec_name(int codec);

/*
 * Encode with the codecs likely to win for this chunk (codec.c says which)
 * and append the smallest encoding to `out` (RAW, a copy, when nothing
 * shrinks the input). `*codec_out` gets the codec chosen. On error `out` is
 * unchanged.
 */
int cairn__codec_encode_best(struct cairn_codec_ctx *ctx, struct cairn_buf *out, int *codec_out,
                             const void *raw, size_t len, const struct cairn_codec_args *a);

/* Dispatch a decode; CAIRN_ECORRUPT for an unknown codec id. */
int cairn__codec_decode(struct cairn_codec_ctx *ctx, int codec, void *dst, size_t raw_len,
                        const void *src, size_t src_len, const struct cairn_codec_args *a);

/*
 * Plain zstd at the context's level, for codecs built on it: append at most
 * `limit` bytes to out (1 when the frame would not fit), and decode exactly
 * raw_len bytes.
 */
int cairn__zstd_encode(struct cairn_codec_ctx *ctx, struct cairn_buf *out, const void *raw,
                       size_t len, size_t limit);
int cairn__zstd_decode(struct cairn_codec_ctx *ctx, void *dst, size_t raw_len, const void *src,
                       size_t src_len);

#endif
