/*
 * The PLANE codec: byte planes of w-byte values (as BGZSTD), each coded with
 * a semi-static rANS coder that may condition every byte on one byte of
 * context - the previous byte of the same plane, or the same value's byte in
 * the plane above (the next more significant byte). On trained fp16 weights
 * the exponent plane given the previous exponent, and the low plane given the
 * high byte, cost about 8 points less than their order-0 entropy, which is
 * what byte planes + zstd reach (bench/RESULTS.md, "Real weights").
 *
 * Per plane the encoder estimates, from a sample, the size of each mode (raw,
 * order 0, order 1 on the previous byte, order 1 on the byte above) with its
 * frequency tables, and codes the plane with the smallest. Because rANS
 * decodes slower than a raw or Huffman plane, the encoder declines the chunk
 * (returns 1, so the chooser falls back to BGZSTD) unless the estimate for at
 * least one plane beats what BGZSTD would do with it by a margin
 * (CAIRN_PLANE_MARGIN_*); the other planes are coded as BGZSTD codes them. Registered in
 * codec.c's table as CAIRN_CODEC_PLANE; the format is in docs/formats.md.
 *
 * Decoding survives any input: every length is checked against the input,
 * frequency tables must sum exactly to the coder's total, the coder's states
 * must stay in range and end where the encoder started, and nothing is
 * written past the raw length.
 */
#ifndef CAIRN_STORE_CODEC_PLANE_H
#define CAIRN_STORE_CODEC_PLANE_H

#include <stddef.h>

#include "util/buf.h"

struct cairn_codec_ctx;
struct cairn_codec_ops;

/* Plane coding modes, one byte per plane on disk. */
enum cairn_plane_mode {
    CAIRN_PLANE_RAW = 0,   /* the plane's bytes as they are */
    CAIRN_PLANE_O0 = 1,    /* rANS, one frequency table */
    CAIRN_PLANE_PREV = 2,  /* rANS, table chosen by the previous byte of the plane */
    CAIRN_PLANE_ABOVE = 3, /* rANS, table chosen by the same value's byte in the plane above */
    CAIRN_PLANE_ZSTD = 4,  /* zstd, as BGZSTD codes a plane: for planes order 1 does not help */
};

/*
 * Estimated saving a plane needs over BGZSTD's coding of it to be rANS-coded,
 * in 1/1000 of the plane: more when BGZSTD would store the plane raw (a
 * memcpy to decode) than when it would zstd it (Huffman decoding, itself
 * several times slower than a copy). The raw margin is for 16-bit floats and
 * scales with 2/w for wider ones: the time to rANS-code one plane of a fp32
 * chunk is spread over four bytes per value, not two, so half the saving
 * pays for it. Synthetic normal bf16 weights gain about 8/1000 on their raw
 * low plane and nothing on the high one, so they stay with BGZSTD and ingest
 * and checkout keep their speed; the plane below the exponent of real fp32
 * weights gains 0.8-3% and is coded.
 */
#define CAIRN_PLANE_MARGIN_RAW  15
#define CAIRN_PLANE_MARGIN_ZSTD 5

extern const struct cairn_codec_ops cairn__plane_ops;

/*
 * Encode raw[0..len) as w-byte values (1..8) and append at most `limit`
 * bytes to `out`. With force = 0 this is the codec's encode (it may decline,
 * returning 1); force = 1 skips the margin test (tests and fuzzing). When
 * `modes` is not NULL, modes[k] gets the mode chosen for plane k. Returns 0,
 * 1 (does not fit in limit or declined; out unchanged) or negative CAIRN_E*.
 */
int cairn__plane_encode(struct cairn_codec_ctx *ctx, struct cairn_buf *out, const void *raw,
                        size_t len, unsigned w, size_t limit, int force, unsigned char *modes);

/* Decode exactly raw_len bytes (the codec's decode); CAIRN_ECORRUPT on bad input. */
int cairn__plane_decode(struct cairn_codec_ctx *ctx, void *dst, size_t raw_len, const void *src,
                        size_t src_len);

#endif
