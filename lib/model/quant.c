/*
 * Quantisation and pruning numerics; see quant.h for the contract.
 *
 * Elements are read and written one at a time through little-endian loads
 * so tensor bytes can come straight from a file at any alignment; the cost
 * (a few cycles per element) is nothing next to reading the file. Errors are
 * measured in double so that the reported maximum is the true one, not one
 * more rounding away.
 *
 * Pruning selects with an introselect over 64-bit keys (magnitude bits in
 * the high word, index in the low word): IEEE magnitudes order like their
 * bit patterns with the sign cleared, so no float compare is needed, and the
 * index makes every key distinct, which gives the deterministic tie rule for
 * free and keeps the partition free of the equal-key worst case. A bad pivot
 * run (crafted weights) falls back to heapsort of what is left, so the worst
 * case is O(n log n).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/common.h"
#include "model/half.h"
#include "model/quant.h"
#include "util/buf.h"

size_t cairn_qfmt_size(int fmt)
{
    switch (fmt) {
    case CAIRN_QF_F32:
        return 4;
    case CAIRN_QF_F16:
    case CAIRN_QF_BF16:
        return 2;
    default:
        return 0;
    }
}

static uint16_t get_u16le(const unsigned char *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static void put_u16le(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static float bits_to_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

static uint32_t f32_to_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    return u;
}

float cairn_quant_load(const void *data, int fmt, size_t i)
{
    const unsigned char *p = data;
    switch (fmt) {
    case CAIRN_QF_F32:
        return bits_to_f32(cairn_get_u32le(p + 4 * i));
    case CAIRN_QF_F16:
        return cairn_fp16_to_fp32(get_u16le(p + 2 * i));
    case CAIRN_QF_BF16:
        return cairn_bf16_to_fp32(get_u16le(p + 2 * i));
    default:
        return NAN;
    }
}

static void store(void *data, int fmt, size_t i, float v)
{
    unsigned char *p = data;
    switch (fmt) {
    case CAIRN_QF_F32:
        cairn_put_u32le(p + 4 * i, f32_to_bits(v));
        break;
    case CAIRN_QF_F16:
        put_u16le(p + 2 * i, cairn_fp32_to_fp16(v));
        break;
    case CAIRN_QF_BF16:
        put_u16le(p + 2 * i, cairn_fp32_to_bf16(v));
        break;
    default:
        break;
    }
}

/* Magnitude bits of element i: the pattern with the sign cleared, which orders like |w|. */
static uint32_t mag_bits(const void *data, int fmt, size_t i)
{
    const unsigned char *p = data;
    if (fmt == CAIRN_QF_F32)
        return cairn_get_u32le(p + 4 * i) & 0x7fffffffu;
    return get_u16le(p + 2 * i) & 0x7fffu;
}

static void note_error(struct cairn_quant_stats *st, float before, float after)
{
    if (!isfinite(before)) {
        st->nonfinite++;
        return;
    }
    if (!isfinite(after)) {
        st->overflowed++;
        return;
    }
    double e = fabs((double)before - (double)after);
    if (e > st->max_abs_error)
        st->max_abs_error = e;
}

int cairn_quant_convert(void *dst, int dst_fmt, const void *src, int src_fmt, size_t n,
                        struct cairn_quant_stats *st)
{
    struct cairn_quant_stats dummy = { 0 };
    if (!st)
        st = &dummy;
    if (!cairn_qfmt_size(dst_fmt) || !cairn_qfmt_size(src_fmt))
        return cairn_error_set(CAIRN_EINVALID, "unknown float format %d -> %d", src_fmt, dst_fmt);
    for (size_t i = 0; i < n; i++) {
        float v = cairn_quant_load(src, src_fmt, i);
        store(dst, dst_fmt, i, v);
        note_error(st, v, cairn_quant_load(dst, dst_fmt, i));
    }
    return 0;
}

int cairn_quant_int8(int8_t *q, float *scale, const void *src, int src_fmt, size_t rows,
                     size_t cols, struct cairn_quant_stats *st)
{
    struct cairn_quant_stats dummy = { 0 };
    if (!st)
        st = &dummy;
    if (!cairn_qfmt_size(src_fmt))
        return cairn_error_set(CAIRN_EINVALID, "unknown float format %d", src_fmt);
    for (size_t r = 0; r < rows; r++) {
        size_t base = r * cols;
        float amax = 0.0f;
        for (size_t c = 0; c < cols; c++) {
            float v = cairn_quant_load(src, src_fmt, base + c);
            if (!isfinite(v))
                return cairn_error_set(CAIRN_EINVALID,
                                       "row %zu holds a non-finite value, it has no int8 scale", r);
            if (fabsf(v) > amax)
                amax = fabsf(v);
        }
        float s = amax / 127.0f;
        scale[r] = s;
        for (size_t c = 0; c < cols; c++) {
            float v = cairn_quant_load(src, src_fmt, base + c);
            double x = s > 0.0f ? (double)v / (double)s : 0.0;
            /* nearbyint rounds half to even in the default rounding mode. */
            x = nearbyint(x);
            if (x > 127.0)
                x = 127.0;
            if (x < -127.0)
                x = -127.0;
            q[base + c] = (int8_t)x;
            note_error(st, v, (float)q[base + c] * s);
        }
    }
    return 0;
}

void cairn_quant_int8_dequant(float *out, const int8_t *q, const float *scale, size_t rows,
                              size_t cols)
{
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++)
            out[r * cols + c] = (float)q[r * cols + c] * scale[r];
}

int cairn_quant_q8_0(unsigned char *out, const void *src, int src_fmt, size_t n,
                     struct cairn_quant_stats *st)
{
    struct cairn_quant_stats dummy = { 0 };
    if (!st)
        st = &dummy;
    if (!cairn_qfmt_size(src_fmt))
        return cairn_error_set(CAIRN_EINVALID, "unknown float format %d", src_fmt);
    if (n % CAIRN_Q8_0_BLOCK)
        return cairn_error_set(CAIRN_EINVALID, "%zu elements are not whole Q8_0 blocks of %d", n,
                               CAIRN_Q8_0_BLOCK);
    for (size_t b = 0; b < n / CAIRN_Q8_0_BLOCK; b++) {
        size_t base = b * CAIRN_Q8_0_BLOCK;
        unsigned char *blk = out + b * CAIRN_Q8_0_BYTES;
        float amax = 0.0f, d;
        uint16_t dh;
        for (size_t i = 0; i < CAIRN_Q8_0_BLOCK; i++) {
            float v = cairn_quant_load(src, src_fmt, base + i);
            if (!isfinite(v))
                return cairn_error_set(
                    CAIRN_EINVALID, "block %zu holds a non-finite value, it has no Q8_0 scale", b);
            if (fabsf(v) > amax)
                amax = fabsf(v);
        }
        /* The scale is stored as fp16: quantise against the stored value so
         * the error bound holds for what a reader computes. */
        dh = cairn_fp32_to_fp16(amax / 127.0f);
        d = cairn_fp16_to_fp32(dh);
        if (!isfinite(d))
            return cairn_error_set(CAIRN_EINVALID,
                                   "block %zu: scale %g does not fit fp16 (values above 8.3e6)", b,
                                   (double)(amax / 127.0f));
        blk[0] = (unsigned char)(dh & 0xff);
        blk[1] = (unsigned char)(dh >> 8);
        for (size_t i = 0; i < CAIRN_Q8_0_BLOCK; i++) {
            float v = cairn_quant_load(src, src_fmt, base + i);
            double x = d > 0.0f ? nearbyint((double)v / (double)d) : 0.0;
            if (x > 127.0)
                x = 127.0;
            if (x < -127.0)
                x = -127.0;
            blk[2 + i] = (unsigned char)(int8_t)x;
            note_error(st, v, (float)(int8_t)x * d);
        }
    }
    return 0;
}

uint64_t cairn_prune_count(double f, uint64_t n)
{
    if (!(f > 0.0))
        return 0;
    if (f >= 1.0)
        return n;
    double k = floor(f * (double)n + 0.5);
    if (k >= (double)n)
        return n;
    return (uint64_t)k;
}

static int check_prune_args(int fmt, double f)
{
    if (!cairn_qfmt_size(fmt))
        return cairn_error_set(CAIRN_EINVALID, "unknown float format %d", fmt);
    if (!(f >= 0.0 && f <= 1.0))
        return cairn_error_set(CAIRN_EINVALID, "sparsity '%g' is not between 0 and 1", f);
    return 0;
}

static uint64_t count_zeros(const void *data, int fmt, size_t n)
{
    uint64_t z = 0;
    for (size_t i = 0; i < n; i++)
        z += mag_bits(data, fmt, i) == 0;
    return z;
}

static void zero_elem(void *data, int fmt, size_t i, struct cairn_quant_stats *st)
{
    float v = cairn_quant_load(data, fmt, i);
    if (isfinite(v) && fabs((double)v) > st->max_abs_error)
        st->max_abs_error = fabs((double)v);
    memset((unsigned char *)data + i * cairn_qfmt_size(fmt), 0, cairn_qfmt_size(fmt));
}

static void swap_keys(uint64_t *a, size_t i, size_t j)
{
    uint64_t t = a[i];
    a[i] = a[j];
    a[j] = t;
}

static void sift_down(uint64_t *a, size_t root, size_t n)
{
    for (;;) {
        size_t child = 2 * root + 1;
        if (child >= n)
            return;
        if (child + 1 < n && a[child + 1] > a[child])
            child++;
        if (a[root] >= a[child])
            return;
        swap_keys(a, root, child);
        root = child;
    }
}

static void heap_sort(uint64_t *a, size_t n)
{
    if (n < 2)
        return;
    for (size_t i = n / 2; i-- > 0;)
        sift_down(a, i, n);
    for (size_t end = n - 1; end > 0; end--) {
        swap_keys(a, 0, end);
        sift_down(a, 0, end);
    }
}

static void insertion_sort(uint64_t *a, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        uint64_t v = a[i];
        size_t j = i;
        while (j > 0 && a[j - 1] > v) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = v;
    }
}

/*
 * Rearrange the distinct keys a[0..n) so that a[0..k) are the k smallest
 * (in no particular order). Invariant: everything in [0, lo) is smaller than
 * everything in [lo, hi), which is smaller than everything in [hi, n).
 */
static void select_smallest(uint64_t *a, size_t n, size_t k)
{
    size_t lo = 0, hi = n;
    unsigned budget = 8;
    for (size_t m = n; m > 1; m >>= 1)
        budget += 2;
    while (hi - lo > 16) {
        if (budget-- == 0) {
            heap_sort(a + lo, hi - lo);
            return;
        }
        size_t mid = lo + (hi - lo) / 2;
        /* Median of three to a[hi - 1]. */
        if (a[mid] < a[lo])
            swap_keys(a, mid, lo);
        if (a[hi - 1] < a[lo])
            swap_keys(a, hi - 1, lo);
        if (a[mid] < a[hi - 1])
            swap_keys(a, mid, hi - 1);
        uint64_t pv = a[hi - 1];
        size_t p = lo;
        for (size_t j = lo; j < hi - 1; j++)
            if (a[j] < pv)
                swap_keys(a, p++, j);
        swap_keys(a, p, hi - 1);
        if (k < p)
            hi = p;
        else if (k > p + 1)
            lo = p + 1;
        else
            return; /* k == p: [0, p) smallest; k == p + 1: [0, p] smallest */
    }
    insertion_sort(a + lo, hi - lo);
}

int cairn_prune_magnitude(void *data, int fmt, size_t n, double f, struct cairn_quant_stats *st)
{
    struct cairn_quant_stats dummy = { 0 };
    uint64_t *keys = NULL;
    int error;
    if (!st)
        st = &dummy;
    if ((error = check_prune_args(fmt, f)) < 0)
        goto done;
    if (n > UINT32_MAX) {
        error = cairn_error_set(CAIRN_ENOMEM, "tensor of %zu elements is too large to prune", n);
        goto done;
    }
    size_t k = (size_t)cairn_prune_count(f, n);
    st->zeros_before += count_zeros(data, fmt, n);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(cairn_quant_load(data, fmt, i)))
            st->nonfinite++;
    if (k > 0) {
        keys = malloc(n * sizeof(*keys));
        if (!keys) {
            error = cairn_error_set(CAIRN_ENOMEM, "out of memory for %zu pruning keys", n);
            goto done;
        }
        for (size_t i = 0; i < n; i++)
            keys[i] = (uint64_t)mag_bits(data, fmt, i) << 32 | (uint64_t)i;
        if (k < n)
            select_smallest(keys, n, k);
        for (size_t j = 0; j < k; j++)
            zero_elem(data, fmt, (size_t)(keys[j] & 0xffffffffu), st);
        st->pruned += k;
    }
    st->zeros_after += count_zeros(data, fmt, n);
    error = 0;
done:
    free(keys);
    return error;
}

struct row_key {
    double norm; /* NaN sorts last */
    size_t row;
};

static int cmp_row_key(const void *pa, const void *pb)
{
    const struct row_key *a = pa, *b = pb;
    int an = isnan(a->norm), bn = isnan(b->norm);
    if (an != bn)
        return an - bn;
    if (!an && a->norm != b->norm)
        return a->norm < b->norm ? -1 : 1;
    return (a->row > b->row) - (a->row < b->row);
}

int cairn_prune_rows(void *data, int fmt, size_t rows, size_t cols, double f,
                     struct cairn_quant_stats *st)
{
    struct cairn_quant_stats dummy = { 0 };
    struct row_key *keys = NULL;
    int error;
    if (!st)
        st = &dummy;
    if ((error = check_prune_args(fmt, f)) < 0)
        goto done;
    if (cols && rows > SIZE_MAX / cols) {
        error = cairn_error_set(CAIRN_EINVALID, "tensor of %zu x %zu elements is too large", rows,
                                cols);
        goto done;
    }
    size_t n = rows * cols;
    size_t k = (size_t)cairn_prune_count(f, rows);
    st->zeros_before += count_zeros(data, fmt, n);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(cairn_quant_load(data, fmt, i)))
            st->nonfinite++;
    if (k > 0 && cols > 0) {
        keys = calloc(rows, sizeof(*keys));
        if (!keys) {
            error = cairn_error_set(CAIRN_ENOMEM, "out of memory for %zu row norms", rows);
            goto done;
        }
        for (size_t r = 0; r < rows; r++) {
            double s = 0.0;
            for (size_t c = 0; c < cols; c++) {
                double v = cairn_quant_load(data, fmt, r * cols + c);
                s += v * v;
            }
            keys[r].norm = sqrt(s);
            keys[r].row = r;
        }
        qsort(keys, rows, sizeof(*keys), cmp_row_key);
        for (size_t j = 0; j < k; j++)
            for (size_t c = 0; c < cols; c++)
                zero_elem(data, fmt, keys[j].row * cols + c, st);
        st->pruned += (uint64_t)k * cols;
    }
    st->zeros_after += count_zeros(data, fmt, n);
    error = 0;
done:
    free(keys);
    return error;
}
