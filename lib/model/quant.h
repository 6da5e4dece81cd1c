/*
 * Quantisation and pruning numerics on tensor buffers: the arithmetic behind
 * `cairn quantize` and `cairn prune`, kept apart from files so it can be
 * tested bit for bit.
 *
 * - Float conversion of a whole tensor between fp32, fp16 and bf16 (round to
 *   nearest, ties to even, via model/half.h), reporting the largest absolute
 *   error it introduced.
 * - int8 symmetric per-row quantisation: for each output row r,
 *   scale[r] = max|w[r,:]| / 127 and q = round-half-even(w / scale[r])
 *   clamped to [-127, 127], so |w - q * scale[r]| <= scale[r] / 2 (plus the
 *   rounding of one float multiply). A row of zeros gets scale 0.
 * - Magnitude pruning: unstructured sets exactly round(F * n) elements with
 *   the smallest |w| to zero (ties go to the lower index, so the result is a
 *   function of the input alone); structured zeroes round(F * rows) whole
 *   rows with the smallest L2 norm (same tie rule).
 *
 * Tensor data is passed as it lies in a safetensors file: little-endian
 * bytes at any alignment, described by an enum cairn_qfmt. Scales and
 * dequantised values are host floats. NaN and Inf in the input are carried
 * through, counted in the stats and left out of the error; pruning treats NaN
 * as larger than any number, so it goes last.
 *
 * All functions are pure (no globals), thread-safe on distinct buffers. Only
 * the pruning functions allocate (a key per element or row), and say so.
 */
#ifndef CAIRN_MODEL_QUANT_H
#define CAIRN_MODEL_QUANT_H

#include <stddef.h>
#include <stdint.h>

/* Float element formats the numerics understand. */
enum cairn_qfmt {
    CAIRN_QF_F32 = 0,
    CAIRN_QF_F16 = 1,
    CAIRN_QF_BF16 = 2,
};

/* Bytes per element of a format (4 or 2); 0 for an unknown value. */
size_t cairn_qfmt_size(int fmt);

/* What one operation did to one tensor. Zero it before the first call; calls only add to it. */
struct cairn_quant_stats {
    double max_abs_error;  /* largest |before - after| over elements finite both times */
    uint64_t overflowed;   /* finite values that became +-Inf (fp16 above 65504) */
    uint64_t nonfinite;    /* NaN or Inf already in the input */
    uint64_t zeros_before; /* elements equal to +-0 before (pruning) */
    uint64_t zeros_after;  /* and after */
    uint64_t pruned;       /* elements the pruning selected and set to zero */
};

/* Element i of a tensor of format `fmt` as a float (no bounds check: i < n is the caller's). */
float cairn_quant_load(const void *data, int fmt, size_t i);

/*
 * Convert `n` elements from `src` (format `src_fmt`) to `dst` (format
 * `dst_fmt`, which must not overlap `src` unless they are the same buffer of
 * the same element size). Adds the largest error to `st`, which may be NULL.
 * Returns 0, or CAIRN_EINVALID for an unknown format.
 */
int cairn_quant_convert(void *dst, int dst_fmt, const void *src, int src_fmt, size_t n,
                        struct cairn_quant_stats *st);

/*
 * int8 per-row symmetric quantisation of a [rows, cols] tensor at `src` of
 * format `src_fmt` into caller-owned `q` (rows * cols bytes) and `scale`
 * (rows floats). `st` (may be NULL) gets the largest |w - q * scale| of any
 * element. Returns 0, or CAIRN_EINVALID (unknown format, or a row holding
 * NaN or Inf, which has no meaningful scale; the message names the row).
 */
int cairn_quant_int8(int8_t *q, float *scale, const void *src, int src_fmt, size_t rows,
                     size_t cols, struct cairn_quant_stats *st);

/* Inverse: out[r * cols + c] = q[r * cols + c] * scale[r], as an inference loader computes it. */
void cairn_quant_int8_dequant(float *out, const int8_t *q, const float *scale, size_t rows,
                              size_t cols);

/*
 * GGML's Q8_0, the int8 of GGUF files: blocks of 32 consecutive elements,
 * each stored as its scale d = max|w| / 127 in fp16 (2 bytes, little-endian)
 * then 32 int8 q = round-half-even(w / d) clamped to [-127, 127]; a reader
 * computes w' = q * d. `n` must be a multiple of 32; `out` gets n / 32 * 34
 * bytes. The scale is rounded to fp16 before quantising, so |w - w'| <= d / 2
 * holds for the stored d. Returns 0, or CAIRN_EINVALID (unknown format, n
 * not whole blocks, a block holding NaN or Inf, or a scale past fp16's range).
 */
#define CAIRN_Q8_0_BLOCK 32
#define CAIRN_Q8_0_BYTES 34
int cairn_quant_q8_0(unsigned char *out, const void *src, int src_fmt, size_t n,
                     struct cairn_quant_stats *st);

/*
 * Number of elements (or rows) pruned for sparsity `f` out of `n`:
 * round(f * n), halves away from zero. `f` must be in [0, 1].
 */
uint64_t cairn_prune_count(double f, uint64_t n);

/*
 * Unstructured magnitude pruning in place: the round(f * n) elements of
 * smallest magnitude (lower index first among equal magnitudes) become +0.
 * Elements that were already zero count among the smallest, so the tensor
 * ends with max(round(f * n), zeros before) zeros. Uses an introselect
 * (expected O(n), O(n log n) worst case), not a sort, and allocates 8 bytes
 * per element for the keys. Returns 0, CAIRN_EINVALID for f outside [0, 1]
 * or an unknown format, CAIRN_ENOMEM if the keys cannot be allocated or n
 * does not fit the 32-bit index of a key.
 */
int cairn_prune_magnitude(void *data, int fmt, size_t n, double f, struct cairn_quant_stats *st);

/*
 * Structured pruning in place: the round(f * rows) rows of smallest L2 norm
 * (lower row first among equal norms; a NaN norm is the largest) become
 * all +0. Allocates two words per row. Same errors as cairn_prune_magnitude().
 */
int cairn_prune_rows(void *data, int fmt, size_t rows, size_t cols, double f,
                     struct cairn_quant_stats *st);

#endif
