/*
 * FastCDC content-defined chunking (Xia et al., USENIX ATC 2016) with
 * normalised chunking level 2, used by the ingest pipeline for every byte
 * range that is not a tensor (and for whole files whose header is unknown or
 * damaged).
 *
 * The chunker is a pure function of the bytes: it keeps no state between
 * calls and never allocates, so one `struct cairn_cdc` may be shared by any
 * number of threads. The caller owns the input buffer and slides it: after
 * cairn_cdc_next() returns n > 0, the next chunk starts at data[n].
 *
 * Boundaries must never change between releases: chunk ids of an unchanged
 * region must be the same in every version ever written, or dedup across
 * versions (and across repositories sharing a remote) silently breaks. The
 * gear table, the masks and the cut rule below are therefore part of the
 * on-disk format; change them only with a new format version.
 */
#ifndef CAIRN_STORE_CHUNKER_H
#define CAIRN_STORE_CHUNKER_H

#include <stddef.h>
#include <stdint.h>

#define CAIRN_CDC_MIN_DEFAULT ((size_t)16 << 10)
#define CAIRN_CDC_AVG_DEFAULT ((size_t)64 << 10)
#define CAIRN_CDC_MAX_DEFAULT ((size_t)256 << 10)

struct cairn_cdc {
    size_t min, avg, max;
    uint64_t mask_s; /* harder mask, used before the normal size (avg) */
    uint64_t mask_l; /* easier mask, used after it */
};

/*
 * Set up chunk bounds. Zero for any size picks its default (16 KiB, 64 KiB,
 * 256 KiB). Sizes are clamped so that 64 <= min <= avg <= max; avg is
 * rounded down to a power of two (the masks need one).
 */
void cairn_cdc_init(struct cairn_cdc *c, size_t min, size_t avg, size_t max);

/*
 * Length of the next chunk starting at data[0]. Returns a value in
 * [1, max] when len > 0 and a boundary is decided; returns 0 when len == 0,
 * or when !eof and no cut point was found within len bytes while len < max
 * (call again with more data: the scan restarts from data[0], so feed at
 * least `max` bytes whenever the input has them). At eof the last chunk may
 * be shorter than min.
 */
size_t cairn_cdc_next(const struct cairn_cdc *c, const uint8_t *data, size_t len, int eof);

/* The 256-entry gear table (exposed for tests and documentation). */
extern const uint64_t cairn__cdc_gear[256];

#endif
