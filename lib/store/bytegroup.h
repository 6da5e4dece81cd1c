/*
 * Byte grouping (ZipNN's "byte planes"): rearrange an array of w-byte values
 * so that byte k of every value sits together in plane k. Float weights have
 * a low-entropy exponent byte and near-random mantissa bytes; grouping them
 * lets zstd compress the exponent plane well and lets the encoder store the
 * mantissa planes raw instead of wasting time on them. XOR against the
 * parent version's bytes before grouping turns a fine-tune's small nudges
 * into mostly-zero high planes.
 *
 * These are pure functions on caller-owned buffers, on the ingest and
 * checkout hot paths: no allocation, SSE2 paths for widths 2 and 4. Thread-safe.
 */
#ifndef CAIRN_STORE_BYTEGROUP_H
#define CAIRN_STORE_BYTEGROUP_H

#include <stddef.h>
#include <stdint.h>

/*
 * Split `len` bytes of `src` into `w` planes in `dst` (`len` bytes, must not
 * overlap `src`): with n = len / w, plane k is dst[k*n .. k*n+n) and holds
 * byte k of every value; the len % w tail bytes follow the planes unchanged.
 * w = 0 or 1 is a copy. Any w up to 255 works; 2, 4 and 8 are fast.
 */
void cairn_bytegroup_split(void *dst, const void *src, size_t len, unsigned w);

/* The inverse of cairn_bytegroup_split() with the same `len` and `w`. */
void cairn_bytegroup_merge(void *dst, const void *src, size_t len, unsigned w);

/* dst[i] = a[i] ^ b[i] for i < len; dst may be a or b. */
void cairn_xor(void *dst, const void *a, const void *b, size_t len);

/*
 * 1 when an order-0 entropy estimate of p[0..n) says zstd cannot save even
 * 3% (near-random bytes: mantissa planes, compressed data). One histogram
 * pass, several times cheaper than a zstd attempt that fails. Short inputs
 * (under 256 bytes) are never called random.
 */
int cairn__looks_random(const void *p, size_t n);

struct cairn_codec_ctx;
/*
 * The codec context's plane scratch (scratch[0]), emptied and grown to
 * `len` bytes, for the planes of one chunk: what byte grouping splits into
 * and what its decoders decode into before merging. 0 or CAIRN_ENOMEM.
 */
int cairn__plane_scratch(struct cairn_codec_ctx *ctx, size_t len, unsigned char **out);

/* For tests: 0 forces the portable loops, 1 (the default) allows SIMD. Not
 * thread-safe; call before any other thread uses these functions. */
void cairn__bytegroup_set_simd(int on);

/*
 * The BGZSTD and XORDELTA codecs (struct cairn_codec_ops, lib/store/codec.h),
 * registered in codec.c's table. BGZSTD groups by the hint's elem_size (2..8;
 * otherwise it does not apply) and stores each plane zstd-compressed or raw,
 * whichever is smaller. XORDELTA XORs with the base's raw bytes (same length
 * required) and then does the same, with one plane when the width is unknown.
 * Both encodings record their width, so decoding needs no hint; decoding
 * checks every length against the input and the recorded raw length.
 */
struct cairn_codec_ops;
extern const struct cairn_codec_ops cairn__bgzstd_ops;
extern const struct cairn_codec_ops cairn__xordelta_ops;

#endif
