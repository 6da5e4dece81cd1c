/*
 * Model transforms: quantise or prune the weights of a safetensors or GGUF
 * file into a new file of the same format, with a per-tensor report of what changed and the
 * error it introduced (`cairn quantize`, `cairn prune`, issue #7).
 *
 * Which tensors change: only those named `*.weight` with two or more
 * dimensions and a float dtype (F32, F16, BF16). Biases, anything whose name
 * contains "norm" (normalisation parameters), tensors of fewer than two
 * dimensions and tensors of other dtypes are copied unchanged and listed in
 * the report with the reason. A safetensors weight's first dimension is its
 * output row; in GGUF dimension 0 is the contiguous one, so a row is
 * shape[0] elements.
 *
 * - fp16 / bf16: the weight is converted (round to nearest even).
 * - int8: the weight becomes dtype I8 plus a tensor `NAME_scale` (F32, one
 *   value per output row) right after it, with w ~ q * scale[row],
 *   scale = max|w_row| / 127, q = round-half-even(w / scale) in [-127, 127].
 *   In GGUF it becomes GGML's Q8_0 instead (model/quant.h), which every GGUF
 *   runtime reads; a weight whose rows are not whole blocks of 32 is kept.
 * - prune: the weight keeps its dtype; unstructured pruning zeroes exactly
 *   round(F * n) elements of smallest magnitude per tensor, structured
 *   pruning zeroes round(F * rows) whole output rows of smallest L2 norm.
 *
 * The new file keeps the input's metadata and adds `cairn.quantization`
 * (`fp16`, `bf16`, `int8-per-row-symmetric`) or `cairn.pruning`
 * (`magnitude-unstructured:F`, `magnitude-structured:F`), replacing an
 * earlier value of the same key. It is written to a temporary file next to
 * the destination, fsynced and renamed into place, so it appears whole or
 * not at all.
 *
 * Memory is bounded by the largest tensor: one tensor is read, transformed
 * and written at a time (about three times its size at worst, for pruning).
 */
#ifndef CAIRN_MODEL_H
#define CAIRN_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/common.h"
#include "cairn/repo.h"

struct cairn_buf;

enum cairn_transform_op {
    CAIRN_TRANSFORM_QUANTIZE = 1,
    CAIRN_TRANSFORM_PRUNE = 2,
};

enum cairn_quant_target {
    CAIRN_QUANT_FP16 = 1,
    CAIRN_QUANT_BF16 = 2,
    CAIRN_QUANT_INT8 = 3,
};

/* What to do. Fill with the two helpers below or by hand. */
struct cairn_transform_opts {
    int op;          /* enum cairn_transform_op */
    int target;      /* enum cairn_quant_target, for QUANTIZE */
    double sparsity; /* share of elements (or rows) to zero, in [0, 1], for PRUNE */
    int structured;  /* PRUNE: whole output rows instead of single elements */
};

/*
 * Options for `--to TO` ("fp16", "bf16" or "int8"). Returns 0, or
 * CAIRN_EINVALID with a message listing what is allowed.
 */
int cairn_transform_opts_quantize(struct cairn_transform_opts *out, const char *to);

/*
 * Options for `--sparsity TEXT [--structured]`: TEXT is a decimal number in
 * [0, 1] and nothing else. Returns 0 or CAIRN_EINVALID.
 */
int cairn_transform_opts_prune(struct cairn_transform_opts *out, const char *sparsity,
                               int structured);

/* One tensor of the input, and what became of it. */
struct cairn_tensor_report {
    char *name;            /* owned by the report */
    const char *action;    /* static: "fp16", "bf16", "int8", "pruned" or "kept" */
    const char *reason;    /* static: why it was kept ("bias", ...); NULL if changed */
    char dtype_before[12]; /* safetensors spelling: "F32", "BF16", ... */
    char dtype_after[12];
    uint64_t elements;
    uint64_t bytes_before; /* raw data bytes */
    uint64_t bytes_after;  /* including the scale tensor for int8 */
    double max_abs_error;  /* largest |before - after| over finite elements */
    uint64_t overflowed;   /* finite values that became +-Inf (fp16) */
    uint64_t nonfinite;    /* NaN or Inf in the input, carried over */
    uint64_t zeros_before; /* pruning: elements equal to zero before and after */
    uint64_t zeros_after;
};

struct cairn_transform_report {
    char *mode;                          /* the metadata value written, e.g. "fp16"; owned */
    struct cairn_tensor_report *tensors; /* in the input's header order; owned */
    size_t count;
    size_t changed; /* tensors transformed (count - changed were kept) */
    uint64_t file_bytes_before, file_bytes_after;
    uint64_t data_bytes_before, data_bytes_after; /* sum of tensor data, headers left out */
    double max_abs_error;                         /* over all tensors */
    uint64_t zeros_before, zeros_after;           /* over the changed tensors */
    uint64_t elements_changed;                    /* elements of the changed tensors */
};

/*
 * Transform the safetensors or GGUF file `src` (told apart by GGUF's magic)
 * into `dst` as `opts` says and fill
 * `out` (initialised here; release it with cairn_transform_report_release()
 * whatever the result). `dst` may equal `src`. Returns 0; CAIRN_EINVALID for
 * bad options, a file that is not valid safetensors or GGUF (the message
 * says why),
 * an int8 weight row holding NaN or Inf, or an output name that already
 * exists (`NAME_scale`); CAIRN_ENOMEM if a tensor does not fit in memory;
 * CAIRN_ERROR for I/O failures. On failure `dst` is untouched. Thread-safe
 * for distinct files.
 */
int cairn_transform_file(struct cairn_transform_report *out, const char *src, const char *dst,
                         const struct cairn_transform_opts *opts);

/* Free what the report owns; it is empty afterwards. Accepts NULL. */
void cairn_transform_report_release(struct cairn_transform_report *r);

/*
 * Append the report as a JSON object to `out`: {"mode", "file_bytes_before",
 * "file_bytes_after", "data_bytes_before", "data_bytes_after",
 * "max_abs_error", "changed", "kept", "zeros_before", "zeros_after",
 * "elements_changed", "tensors": [{"name", "action", "reason" (null when
 * changed), "dtype_before", "dtype_after", "elements", "bytes_before",
 * "bytes_after", "max_abs_error", "overflowed", "nonfinite", "zeros_before",
 * "zeros_after"}]}, indented by two spaces, keys in that order. Returns 0 or
 * CAIRN_ENOMEM.
 */
int cairn_transform_report_json(struct cairn_buf *out, const struct cairn_transform_report *r);

/* ---- derived versions (lib/model/derive.c) ---------------------------- */

/*
 * `cairn quantize` and `cairn prune` in one call: check out a version into a
 * scratch directory, transform every `*.safetensors` and `*.gguf` file of it (other files
 * are carried over unchanged), and commit the result as a new version of the
 * same model whose parent is the source, with a lineage edge "derived" to the
 * source (detail "quantize int8", "prune magnitude-unstructured 0.5", ...).
 *
 * The new version's params are the source's params plus `derived.method`
 * ("quantize" or "prune"), `derived.from` (MODEL@vN of the source) and
 * `derived.to` (fp16, bf16, int8) or `derived.sparsity` and
 * `derived.structured`; any `derived.*` param of the source is replaced. Its
 * metrics are only `size_bytes`, the sum of its file sizes, so a gate can
 * bound the size; the source's metrics are not carried over, because a
 * compressed model must be measured again. Its datasets are the source's.
 */

struct cairn_derive_opts {
    const char *ref; /* the source version (any REF) */
    struct cairn_transform_opts transform;
    const char *message; /* NULL: "quantize MODEL@vN to int8", "prune MODEL@vN to sparsity 0.5" */
    const char *tmpdir;  /* parent of the scratch directory; NULL: $TMPDIR, else /tmp */
    cairn_progress_fn progress; /* checkout of the source: bytes written of bytes to write */
    void *progress_payload;
};

/* One transformed file of the version. */
struct cairn_derive_file {
    char *path; /* relative path in the version; owned */
    struct cairn_transform_report report;
};

struct cairn_derive_result {
    struct cairn_version source;     /* the version derived from */
    struct cairn_version version;    /* the new version, as committed */
    char *detail;                    /* the lineage edge's detail; owned */
    struct cairn_derive_file *files; /* the tensor files, in tree order; owned */
    size_t nfiles;
    size_t copied;                  /* other files, carried over unchanged */
    uint64_t raw_before, raw_after; /* sums of every file's size */
    double max_abs_error;           /* over every tensor of every file */
};

/*
 * Derive a new version from `opts->ref` as `opts->transform` says and fill
 * `out` (initialised here; release it with cairn_derive_result_release()
 * whatever the result). The scratch directory is removed before returning.
 * Returns 0; CAIRN_EINVALID for bad options (a sparsity outside (0, 1)), a
 * version without a `*.safetensors` file or a file the transform refuses;
 * CAIRN_ENOTFOUND / CAIRN_EAMBIGUOUS for the ref; otherwise what checkout or
 * commit return. Nothing is committed on failure. Not thread-safe on one
 * repo (see repo.h).
 */
int cairn_model_derive(struct cairn_derive_result *out, struct cairn_repo *repo,
                       const struct cairn_derive_opts *opts);

/* Free what the result owns; it is empty afterwards. Accepts NULL. */
void cairn_derive_result_release(struct cairn_derive_result *r);

/*
 * Append the result as a JSON object to `out`: {"source": {"id", "ref"},
 * "id", "ref", "detail", "raw_bytes_before", "raw_bytes_after", "size_ratio",
 * "stored_bytes_new", "copied_files", "max_abs_error", "files": [{"path",
 * "report": <cairn_transform_report_json object>}]}, indented by two spaces.
 * Returns 0 or CAIRN_ENOMEM.
 */
int cairn_derive_result_json(struct cairn_buf *out, const struct cairn_derive_result *r);

#endif
