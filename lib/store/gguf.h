/*
 * GGUF (llama.cpp) headers, versions 2 and 3: parse the magic, counts, the
 * typed key/value metadata (every value type including nested arrays is
 * walked with bounds and skipped, except general.alignment) and the tensor
 * infos into a struct cairn_tensor_table with absolute byte ranges.
 *
 * GGUF does not say how long its header is, so the parser works on a prefix
 * of the file and says when it needs more; the caller rereads a longer one.
 * Everything is outside input: counts and lengths are checked against the
 * bytes actually present before being used, so a hostile count costs at most
 * one pass over the prefix and never an allocation of its size.
 */
#ifndef CAIRN_STORE_GGUF_H
#define CAIRN_STORE_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "store/layout.h"
#include "util/buf.h"

/* Returned (positive) by cairn_gguf_parse() when the header runs past `len`. */
#define CAIRN_GGUF_MORE 1

/* Largest tensor count and key count accepted; real models have a few thousand. */
#define CAIRN_GGUF_MAX_TENSORS ((uint64_t)1 << 20)
#define CAIRN_GGUF_MAX_KV      ((uint64_t)1 << 20)
/* Deepest nesting of arrays of arrays walked. */
#define CAIRN_GGUF_MAX_DEPTH 4

/*
 * Parse a GGUF header. `data` holds the first `len` bytes of a file of
 * `file_size` bytes. Returns 0 with `out` filled (header order, absolute
 * offsets; out->data_start is the aligned start of the data section);
 * CAIRN_GGUF_MORE when the header continues past `len` and `len <
 * file_size` (out is then empty: call again with a longer prefix); or
 * CAIRN_EINVALID with a message: bad magic, version other than 2 or 3,
 * absurd counts, lengths past the end, bad value types, alignment not a
 * power of two, rank over 8, unknown GGML types, element counts not a whole
 * number of blocks, offsets unaligned, out of the file or overlapping,
 * duplicate tensor names, names that are not UTF-8.
 */
int cairn_gguf_parse(struct cairn_tensor_table *out, const void *data, size_t len,
                     uint64_t file_size);

/* The dtype of GGML type number `ggml_type`, or CAIRN_DT_UNKNOWN. */
int cairn_gguf_dtype(uint32_t ggml_type);
/* The GGML type number of `dtype`, or UINT32_MAX if GGUF has none. */
uint32_t cairn_gguf_type_of(int dtype);

/*
 * The header of a rewritten GGUF file (cairn quantize and prune): `hdr` is
 * the first `len` bytes of the original file of `file_size` bytes, which
 * cairn_gguf_parse() accepted whole. Appends to `out` the same magic and
 * version, every metadata pair verbatim except `key`, then `key` = `val` as
 * a string, then the tensor infos of `ot` (names, shapes, dtypes as GGML
 * types), padded to the file's alignment. Lays the data out in table order,
 * each tensor aligned, and fills in ot's offsets (absolute, as the parser
 * gives them) and data_start. Returns 0, CAIRN_EINVALID for a dtype GGUF
 * cannot hold, or CAIRN_ENOMEM.
 */
int cairn_gguf_write_header(struct cairn_buf *out, struct cairn_tensor_table *ot, const void *hdr,
                            size_t len, uint64_t file_size, const char *key, const char *val);

#endif
