/*
 * BLAKE3-256 for chunk ids, file digests and object ids, and the hex form of
 * an id. The BLAKE3 implementation picks its SIMD variant once, at first use
 * (see extern/meson.build).
 */
#ifndef CAIRN_UTIL_HASH_H
#define CAIRN_UTIL_HASH_H

#include <stddef.h>

#include "cairn/common.h"

/* Streaming hasher; the state is opaque storage sized for blake3_hasher. */
struct cairn_hasher {
    _Alignas(16) unsigned char state[2048];
};

void cairn_hasher_init(struct cairn_hasher *h);
void cairn_hasher_update(struct cairn_hasher *h, const void *data, size_t len);
void cairn_hasher_final(struct cairn_hasher *h, cairn_oid *out);

/* One-shot hash of a byte range. */
void cairn_hash(cairn_oid *out, const void *data, size_t len);

/* Lowercase hex; `out` must hold CAIRN_OID_HEXSZ + 1 bytes. Returns out. */
char *cairn_oid_fmt(char *out, const cairn_oid *id);
/* Parse exactly 64 hex digits. */
int cairn_oid_parse(cairn_oid *out, const char *hex);
int cairn_oid_cmp(const cairn_oid *a, const cairn_oid *b);
int cairn_oid_is_zero(const cairn_oid *id);

/* Hex helpers for any length. `out` holds 2*len+1. */
void cairn_hex_encode(char *out, const void *data, size_t len);
/* Returns 0 when `hex` is exactly 2*len hex digits. */
int cairn_hex_decode(void *out, const char *hex, size_t len);

#endif
