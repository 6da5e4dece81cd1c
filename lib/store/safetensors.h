/*
 * safetensors headers: parse one into a struct cairn_tensor_table, and write
 * one back out (quantize and prune produce new files).
 *
 * The format: an 8-byte little-endian length N, N bytes of UTF-8 JSON (an
 * object mapping tensor names to {"dtype", "shape", "data_offsets"} and an
 * optional "__metadata__" object of strings), then the data, with offsets
 * relative to byte 8 + N. The header is outside input: every length, offset
 * and shape is checked before anything is sized from it.
 */
#ifndef CAIRN_STORE_SAFETENSORS_H
#define CAIRN_STORE_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "store/layout.h"

struct cairn_buf;

/* Largest JSON header accepted (the reference implementation's limit). */
#define CAIRN_SAFETENSORS_HEADER_MAX ((uint64_t)100 << 20)

/*
 * Parse the header at the start of a file of `file_size` bytes. `header`
 * holds the file's first `len` bytes; it must include all 8 + N header bytes
 * (CAIRN_EINVALID "truncated" otherwise). Rejected with CAIRN_EINVALID and a
 * message saying why: N over the cap or past the end of the file, invalid
 * JSON or UTF-8, duplicate keys, unknown dtypes, rank over 8, shapes whose
 * element count or byte length overflows, offsets that are reversed, past
 * the end of the file, of the wrong length for dtype and shape, or
 * overlapping. `out` is initialised here and left empty on failure; on
 * success it holds the tensors in header order with absolute offsets.
 */
int cairn_safetensors_parse(struct cairn_tensor_table *out, const void *header, size_t len,
                            uint64_t file_size);

/*
 * Read the 8-byte length prefix: the total header size 8 + N into `*out`.
 * CAIRN_EINVALID when fewer than 8 bytes are given, or N exceeds the cap or
 * the file.
 */
int cairn_safetensors_header_size(uint64_t *out, const void *first8, size_t len,
                                  uint64_t file_size);

/*
 * Serialise `t` as a safetensors header appended to `out`: tensors laid out
 * contiguously in table order, each sized from its dtype and shape, JSON
 * padded with spaces so the data starts 8-byte aligned. Rewrites each
 * tensor's start/end and t->data_start to the absolute positions the caller
 * must then write the data at. GGUF-only dtypes are CAIRN_EINVALID.
 */
int cairn_safetensors_serialize(struct cairn_buf *out, struct cairn_tensor_table *t);

#endif
