/*
 * Tensor files as the chunker sees them: a table of tensors (shared by the
 * safetensors and GGUF readers) and a layout, the list of byte regions that
 * cover a file exactly, each either a tensor or opaque bytes.
 *
 * Why: SPEC §4 wants every tensor chunked on its own, with boundaries at
 * tensor starts, so a tensor that did not change is stored once whatever
 * moved around it, and each tensor's chunks carry the element width the
 * byte-grouping codecs need. Opaque regions (headers, padding, trailing
 * bytes, or a whole file that is not a tensor file or whose header is
 * damaged) are chunked with FastCDC by the caller.
 *
 * The piece contract (binding for the ingest pipeline and for delta bases):
 * a tensor region is cut into fixed pieces of cairn_layout_piece_size()
 * bytes counted from the tensor's first byte, the last piece taking the
 * remainder. So piece i of a tensor covers the same elements in every
 * version of the file, and the parent's piece i is the natural XOR-delta base
 * of the child's piece i when name, dtype and shape match.
 *
 * Nothing here is thread-shared: a table or layout belongs to one thread at a
 * time; different ones may be used from different threads.
 */
#ifndef CAIRN_STORE_LAYOUT_H
#define CAIRN_STORE_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/common.h"

/*
 * Element types of both formats. The float and integer types are shared;
 * CAIRN_DT_Q* and CAIRN_DT_IQ* are GGML block-quantised types that only
 * GGUF files carry.
 */
enum cairn_dtype {
    CAIRN_DT_UNKNOWN = 0,
    CAIRN_DT_BOOL,
    CAIRN_DT_U8,
    CAIRN_DT_I8,
    CAIRN_DT_U16,
    CAIRN_DT_I16,
    CAIRN_DT_U32,
    CAIRN_DT_I32,
    CAIRN_DT_U64,
    CAIRN_DT_I64,
    CAIRN_DT_F8_E4M3,
    CAIRN_DT_F8_E5M2,
    CAIRN_DT_F8_E8M0,
    CAIRN_DT_F16,
    CAIRN_DT_BF16,
    CAIRN_DT_F32,
    CAIRN_DT_F64,
    /* GGML quantised block types (GGUF only). */
    CAIRN_DT_Q4_0,
    CAIRN_DT_Q4_1,
    CAIRN_DT_Q5_0,
    CAIRN_DT_Q5_1,
    CAIRN_DT_Q8_0,
    CAIRN_DT_Q8_1,
    CAIRN_DT_Q2_K,
    CAIRN_DT_Q3_K,
    CAIRN_DT_Q4_K,
    CAIRN_DT_Q5_K,
    CAIRN_DT_Q6_K,
    CAIRN_DT_Q8_K,
    CAIRN_DT_IQ2_XXS,
    CAIRN_DT_IQ2_XS,
    CAIRN_DT_IQ3_XXS,
    CAIRN_DT_IQ1_S,
    CAIRN_DT_IQ4_NL,
    CAIRN_DT_IQ3_S,
    CAIRN_DT_IQ2_S,
    CAIRN_DT_IQ4_XS,
    CAIRN_DT_IQ1_M,
    CAIRN_DT_TQ1_0,
    CAIRN_DT_TQ2_0,
    CAIRN_DT_MXFP4,
    CAIRN_DT__COUNT
};

/*
 * Storage geometry of a dtype: `block_elems` elements take `block_bytes`
 * bytes (1 and the element size for plain types). `group` is the width the
 * byte-grouping codec should split by: the element size of float types
 * (2, 4, 8) and 1 for fp8, integers and quantised blocks, where planes do not
 * help. Returns NULL for CAIRN_DT_UNKNOWN or an out-of-range value.
 */
struct cairn_dtype_info {
    const char *name; /* safetensors spelling ("F32", "BF16") or GGML's ("Q4_0") */
    unsigned block_elems;
    unsigned block_bytes;
    unsigned group;
};
const struct cairn_dtype_info *cairn_dtype_info(int dtype);

/* Byte length of `nelems` elements of `dtype` into `*out`; CAIRN_EINVALID on
 * overflow, an unknown dtype, or a count that is not a whole number of blocks. */
int cairn_dtype_nbytes(uint64_t *out, int dtype, uint64_t nelems);

#define CAIRN_TENSOR_MAX_RANK 8
/*
 * Longest tensor name in bytes: the file object (manifest) stores region
 * names up to this and refuses longer ones when decoding, so the parsers
 * refuse them too and such a file is chunked as an opaque one.
 */
#define CAIRN_TENSOR_NAME_MAX 65536

struct cairn_tensor {
    char *name;                            /* NUL-terminated UTF-8, owned by the table */
    int dtype;                             /* enum cairn_dtype */
    unsigned rank;                         /* 0 (a scalar) .. CAIRN_TENSOR_MAX_RANK */
    uint64_t shape[CAIRN_TENSOR_MAX_RANK]; /* as the file lists them */
    uint64_t start;                        /* absolute byte offsets in the file: [start, end) */
    uint64_t end;
};

enum cairn_tensor_format {
    CAIRN_FORMAT_NONE = 0,
    CAIRN_FORMAT_SAFETENSORS,
    CAIRN_FORMAT_GGUF,
};

/*
 * The tensors of one file, in the order the header lists them, and the
 * safetensors `__metadata__` string map (empty for GGUF, whose typed
 * metadata is validated but not kept). A zeroed struct is an empty table.
 */
struct cairn_tensor_table {
    int format;          /* enum cairn_tensor_format */
    uint32_t version;    /* GGUF version (2 or 3); 0 for safetensors */
    uint64_t data_start; /* absolute offset of the data section */
    struct cairn_tensor *tensors;
    size_t count, alloc;
    char **meta_keys; /* owned; meta_keys[i] maps to meta_vals[i] */
    char **meta_vals;
    size_t meta_count, meta_alloc;
};

void cairn_tensor_table_init(struct cairn_tensor_table *t);
/* Free everything the table owns; it is empty and reusable after. Accepts NULL. */
void cairn_tensor_table_release(struct cairn_tensor_table *t);
/*
 * Append a tensor (name copied) with the given geometry and byte range.
 * Returns 0, CAIRN_ENOMEM, or CAIRN_EINVALID for a rank above
 * CAIRN_TENSOR_MAX_RANK or a name longer than CAIRN_TENSOR_NAME_MAX.
 */
int cairn_tensor_table_add(struct cairn_tensor_table *t, const char *name, int dtype, unsigned rank,
                           const uint64_t *shape, uint64_t start, uint64_t end);
/* Append a metadata pair (both copied). */
int cairn_tensor_table_add_meta(struct cairn_tensor_table *t, const char *key, const char *val);
/* The tensor named `name`, or NULL. Linear; tables are small. */
const struct cairn_tensor *cairn_tensor_table_find(const struct cairn_tensor_table *t,
                                                   const char *name);
/* Number of elements (product of the shape) into `*out`; CAIRN_EINVALID on overflow. */
int cairn_tensor_nelems(uint64_t *out, const struct cairn_tensor *x);

/*
 * Sort a copy of the byte ranges and check that every tensor lies inside
 * [data_start, file_size), has the byte length its dtype and shape demand,
 * and overlaps no other. Used by both readers. Returns 0 or CAIRN_EINVALID
 * with a message naming the offending tensor.
 */
int cairn__tensor_table_check(const struct cairn_tensor_table *t, uint64_t file_size);

enum cairn_region_kind {
    CAIRN_REGION_OPAQUE = 0, /* chunk with FastCDC */
    CAIRN_REGION_TENSOR = 1, /* chunk in fixed pieces from its start */
};

struct cairn_region {
    int kind;                          /* enum cairn_region_kind */
    uint64_t offset, len;              /* [offset, offset + len) of the file; len > 0 */
    const struct cairn_tensor *tensor; /* NULL for opaque; points into the layout's table */
    unsigned group;                    /* byte-grouping width (struct cairn_dtype_info) or 0 */
    unsigned unit;                     /* pieces are a multiple of this many bytes; 0 opaque */
};

/*
 * The regions of one file, in file order, covering [0, file_size) with no
 * gap or overlap. Zero-length tensors have no region (they are in `table`).
 */
struct cairn_layout {
    int format; /* enum cairn_tensor_format; NONE when the file is chunked generically */
    struct cairn_tensor_table table;
    struct cairn_region *regions;
    size_t count;
};

/* Upper bound on the header bytes cairn_layout_detect() will read. */
#define CAIRN_LAYOUT_HEADER_MAX ((size_t)100 << 20)
/* Target piece length for tensor regions (rounded down to a multiple of `unit`). */
#define CAIRN_LAYOUT_PIECE ((size_t)1 << 20)

/*
 * Work out the layout of the open file `fd` of `file_size` bytes. Reads the
 * header only, with pread (the file position is untouched), at most
 * CAIRN_LAYOUT_HEADER_MAX bytes. Safetensors is recognised by structure (an
 * 8-byte length then '{') or by a ".safetensors" name; GGUF by its magic or a
 * ".gguf" name. A file that is neither gets one opaque region, silently; a
 * tensor file whose header fails any check gets one opaque region and a
 * cairn_warn() naming `name_for_msgs` and the reason. Only I/O errors and
 * out-of-memory are errors. `out` is initialised here; release it with
 * cairn_layout_release(). Thread-safe for distinct `out`.
 */
int cairn_layout_detect(struct cairn_layout *out, const char *name_for_msgs, int fd,
                        uint64_t file_size);

/*
 * As cairn_layout_detect(), for a header already in memory: `prefix` holds the
 * first `prefix_len` bytes of the file (all of the header, or the parse
 * fails and falls back). For tests and for callers that mapped the file.
 */
int cairn_layout_from_prefix(struct cairn_layout *out, const char *name_for_msgs,
                             const void *prefix, size_t prefix_len, uint64_t file_size);

void cairn_layout_release(struct cairn_layout *l);

/*
 * Length of the fixed pieces a tensor region is cut into: CAIRN_LAYOUT_PIECE
 * rounded down to a multiple of r->unit (the element or quantisation block
 * size), never less than one unit. 0 for an opaque region (use FastCDC).
 */
size_t cairn_layout_piece_size(const struct cairn_region *r);

#endif
