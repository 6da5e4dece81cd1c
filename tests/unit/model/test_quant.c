/*
 * Unit tests for lib/model/quant.c: fp16/bf16 rounding on exact bit patterns
 * (ties, overflow, NaN, denormals), the int8 round-trip bound, and pruning
 * that leaves exactly the requested share of zeros, including ties, crafted
 * orders and NaN, checked against a sorted reference.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/common.h"
#include "model/half.h"
#include "model/quant.h"

static float f_of(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

static uint32_t u_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    return u;
}

/* One fp32 bit pattern through cairn_quant_convert() to a 16-bit format. */
static uint16_t conv16(int fmt, uint32_t bits, struct cairn_quant_stats *st)
{
    unsigned char src[4], dst[2];
    src[0] = (unsigned char)bits;
    src[1] = (unsigned char)(bits >> 8);
    src[2] = (unsigned char)(bits >> 16);
    src[3] = (unsigned char)(bits >> 24);
    assert_int_equal(cairn_quant_convert(dst, fmt, src, CAIRN_QF_F32, 1, st), 0);
    return (uint16_t)(dst[0] | dst[1] << 8);
}

static void test_fp16_rounding(void **state)
{
    (void)state;
    struct cairn_quant_stats st = { 0 };
    static const struct {
        uint32_t in;
        uint16_t out;
    } cases[] = {
        { 0x3f800000, 0x3c00 }, /* 1.0 */
        { 0xbf800000, 0xbc00 }, /* -1.0 */
        { 0x3f801000, 0x3c00 }, /* 1 + 2^-11: halfway, ties to even (down) */
        { 0x3f803000, 0x3c02 }, /* 1 + 3 * 2^-11: halfway, ties to even (up) */
        { 0x3f801001, 0x3c01 }, /* just above halfway */
        { 0x3f800fff, 0x3c00 }, /* just below halfway */
        { 0x477fe000, 0x7bff }, /* 65504, largest finite */
        { 0x477fefff, 0x7bff }, /* just below the midpoint to 2^16 */
        { 0x477ff000, 0x7c00 }, /* 65520: midpoint, ties to even = Inf */
        { 0x7f7fffff, 0x7c00 }, /* FLT_MAX overflows */
        { 0xff800000, 0xfc00 }, /* -Inf stays -Inf */
        { 0x38800000, 0x0400 }, /* 2^-14, smallest normal */
        { 0x33800000, 0x0001 }, /* 2^-24, smallest denormal */
        { 0xb3800000, 0x8001 }, /* -2^-24 */
        { 0x33000000, 0x0000 }, /* 2^-25: halfway to zero, ties to even */
        { 0x33000001, 0x0001 }, /* just above */
        { 0x33c00000, 0x0002 }, /* 1.5 * 2^-24: ties to even (up) */
        { 0x34200000, 0x0002 }, /* 2.5 * 2^-24: ties to even (down) */
        { 0x387fc000, 0x03ff }, /* 1023 * 2^-24, largest denormal */
        { 0x387fe000, 0x0400 }, /* 1023.5 * 2^-24: ties to even, up into the normals */
        { 0x80000000, 0x8000 }, /* -0 keeps its sign */
        { 0x00000001, 0x0000 }, /* fp32 denormal underflows */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint16_t h = conv16(CAIRN_QF_F16, cases[i].in, &st);
        if (h != cases[i].out)
            fail_msg("fp16 of 0x%08x: got 0x%04x, want 0x%04x", (unsigned)cases[i].in, (unsigned)h,
                     (unsigned)cases[i].out);
    }
    /* Two finite inputs overflowed; the -Inf was already non-finite. */
    assert_int_equal(st.overflowed, 2);
    assert_int_equal(st.nonfinite, 1);

    /* NaN stays NaN, quiet or signalling. */
    uint16_t h = conv16(CAIRN_QF_F16, 0x7fc00000, NULL);
    assert_true((h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0);
    h = conv16(CAIRN_QF_F16, 0x7f800001, NULL);
    assert_true((h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0);
    h = conv16(CAIRN_QF_F16, 0xffc00000, NULL);
    assert_true((h & 0xfc00) == 0xfc00 && (h & 0x3ff) != 0);

    /* The error report is the exact distance to the rounded value. */
    memset(&st, 0, sizeof(st));
    conv16(CAIRN_QF_F16, 0x3f801000, &st);
    assert_true(st.max_abs_error == ldexp(1.0, -11));
    conv16(CAIRN_QF_F16, 0x3f800000, &st);
    assert_true(st.max_abs_error == ldexp(1.0, -11));
}

static void test_bf16_rounding(void **state)
{
    (void)state;
    struct cairn_quant_stats st = { 0 };
    static const struct {
        uint32_t in;
        uint16_t out;
    } cases[] = {
        { 0x3f800000, 0x3f80 }, /* 1.0 */
        { 0x3f808000, 0x3f80 }, /* halfway, ties to even (down) */
        { 0x3f818000, 0x3f82 }, /* halfway, ties to even (up) */
        { 0x3f808001, 0x3f81 }, /* above halfway */
        { 0x3f807fff, 0x3f80 }, /* below halfway */
        { 0x7f7f7fff, 0x7f7f }, /* stays finite */
        { 0x7f7fffff, 0x7f80 }, /* FLT_MAX rounds to Inf */
        { 0x7f7f8000, 0x7f80 }, /* halfway above the largest bf16 (odd): Inf */
        { 0x00010000, 0x0001 }, /* denormal, exact */
        { 0x00018000, 0x0002 }, /* denormal halfway, ties to even (up) */
        { 0x00008000, 0x0000 }, /* denormal halfway, ties to even (down) */
        { 0x80000000, 0x8000 }, /* -0 */
        { 0xff800000, 0xff80 }, /* -Inf */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint16_t h = conv16(CAIRN_QF_BF16, cases[i].in, &st);
        if (h != cases[i].out)
            fail_msg("bf16 of 0x%08x: got 0x%04x, want 0x%04x", (unsigned)cases[i].in, (unsigned)h,
                     (unsigned)cases[i].out);
    }
    assert_int_equal(st.overflowed, 2);
    assert_int_equal(st.nonfinite, 1);
    /* A NaN whose payload sits only in the dropped bits must not become Inf. */
    uint16_t h = conv16(CAIRN_QF_BF16, 0x7f800001, NULL);
    assert_true((h & 0x7f80) == 0x7f80 && (h & 0x7f) != 0);
    h = conv16(CAIRN_QF_BF16, 0x7fc00000, NULL);
    assert_true((h & 0x7f80) == 0x7f80 && (h & 0x7f) != 0);
}

static void test_convert_roundtrip_and_bad_format(void **state)
{
    (void)state;
    /* Every fp16 value converts to fp32 and back to itself with zero error. */
    static unsigned char h[2 * 65536], f[4 * 65536], back[2 * 65536];
    struct cairn_quant_stats st = { 0 };
    for (unsigned i = 0; i < 65536; i++) {
        h[2 * i] = (unsigned char)i;
        h[2 * i + 1] = (unsigned char)(i >> 8);
    }
    assert_int_equal(cairn_quant_convert(f, CAIRN_QF_F32, h, CAIRN_QF_F16, 65536, &st), 0);
    assert_int_equal(cairn_quant_convert(back, CAIRN_QF_F16, f, CAIRN_QF_F32, 65536, &st), 0);
    for (unsigned i = 0; i < 65536; i++) {
        unsigned got = back[2 * i] | back[2 * i + 1] << 8;
        int nan = (i & 0x7c00) == 0x7c00 && (i & 0x3ff);
        if (!nan && got != i)
            fail_msg("fp16 0x%04x came back as 0x%04x", i, got);
    }
    assert_true(st.max_abs_error == 0.0);
    assert_int_equal(cairn_quant_convert(back, 7, f, CAIRN_QF_F32, 1, NULL), CAIRN_EINVALID);
    assert_int_equal(cairn_qfmt_size(CAIRN_QF_BF16), 2);
    assert_int_equal(cairn_qfmt_size(-1), 0);
}

/* Deterministic pseudo-random floats in [-1, 1). */
static uint64_t rng_state;
static float rnd(void)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((double)(rng_state >> 40) / (double)(1ULL << 24) * 2.0 - 1.0);
}

static void test_int8_roundtrip(void **state)
{
    (void)state;
    enum { R = 17, C = 33 };
    float w[R * C], deq[R * C], scale[R];
    int8_t q[R * C];
    struct cairn_quant_stats st = { 0 };
    rng_state = 42;
    for (size_t i = 0; i < R * C; i++)
        w[i] = rnd() * (float)(1 + (i / C) * 10); /* rows of very different ranges */
    for (size_t c = 0; c < C; c++)
        w[3 * C + c] = 0.0f; /* an all-zero row */
    w[5 * C + 7] = 1e-30f;   /* a tiny row apart from one value */
    assert_int_equal(cairn_quant_int8(q, scale, w, CAIRN_QF_F32, R, C, &st), 0);
    cairn_quant_int8_dequant(deq, q, scale, R, C);
    double worst = 0.0;
    for (size_t r = 0; r < R; r++) {
        int qmax = 0;
        for (size_t c = 0; c < C; c++) {
            size_t i = r * C + c;
            double e = fabs((double)w[i] - (double)deq[i]);
            if (e > (double)scale[r] / 2 * (1 + 1e-6) + 1e-37)
                fail_msg("row %zu col %zu: |%g - %g| > %g / 2", r, c, w[i], deq[i], scale[r]);
            if (e > worst)
                worst = e;
            assert_true(q[i] >= -127 && q[i] <= 127);
            if (abs(q[i]) > qmax)
                qmax = abs(q[i]);
        }
        if (r == 3) {
            assert_true(scale[r] == 0.0f);
            assert_int_equal(qmax, 0);
        } else {
            assert_int_equal(qmax, 127); /* the largest |w| of a row maps to 127 */
        }
    }
    assert_true(st.max_abs_error == worst);
    assert_true(st.max_abs_error > 0.0);
}

static void test_int8_ties_and_formats(void **state)
{
    (void)state;
    /* Scale 1 exactly, so halves hit the tie rule: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, -0.5 -> 0. */
    float w[6] = { 127.0f, 0.5f, 1.5f, 2.5f, -0.5f, -3.5f };
    int8_t q[6];
    float scale;
    assert_int_equal(cairn_quant_int8(q, &scale, w, CAIRN_QF_F32, 1, 6, NULL), 0);
    assert_true(scale == 1.0f);
    assert_int_equal(q[0], 127);
    assert_int_equal(q[1], 0);
    assert_int_equal(q[2], 2);
    assert_int_equal(q[3], 2);
    assert_int_equal(q[4], 0);
    assert_int_equal(q[5], -4);

    /* bf16 input: 2.0, -1.0 -> scale 2/127, q = 127, round(-63.5) = -64. */
    unsigned char bf[4] = { 0x00, 0x40, 0x80, 0xbf };
    int8_t q2[2];
    assert_int_equal(cairn_quant_int8(q2, &scale, bf, CAIRN_QF_BF16, 1, 2, NULL), 0);
    assert_true(scale == 2.0f / 127.0f);
    assert_int_equal(q2[0], 127);
    assert_int_equal(q2[1], -64);

    /* A non-finite value has no scale: refused, with the row named. */
    float bad[4] = { 1.0f, 2.0f, NAN, 3.0f };
    int8_t q3[4];
    float s3[2];
    assert_int_equal(cairn_quant_int8(q3, s3, bad, CAIRN_QF_F32, 2, 2, NULL), CAIRN_EINVALID);
    assert_non_null(strstr(cairn_error_last(), "row 1"));
    bad[2] = INFINITY;
    assert_int_equal(cairn_quant_int8(q3, s3, bad, CAIRN_QF_F32, 2, 2, NULL), CAIRN_EINVALID);
}

static size_t zeros_f32(const float *w, size_t n)
{
    size_t z = 0;
    for (size_t i = 0; i < n; i++)
        z += w[i] == 0.0f;
    return z;
}

struct ref_key {
    float mag;
    size_t idx;
};

static int cmp_ref(const void *pa, const void *pb)
{
    const struct ref_key *a = pa, *b = pb;
    if (a->mag != b->mag)
        return a->mag < b->mag ? -1 : 1;
    return (a->idx > b->idx) - (a->idx < b->idx);
}

/* Prune a copy with the library and a copy by full sort; they must agree bit for bit. */
static void check_against_reference(const float *w, size_t n, double f)
{
    float *got = malloc(n * sizeof(*got)), *want = malloc(n * sizeof(*want));
    struct ref_key *keys = malloc(n * sizeof(*keys));
    struct cairn_quant_stats st = { 0 };
    assert_non_null(got);
    assert_non_null(want);
    assert_non_null(keys);
    memcpy(got, w, n * sizeof(*w));
    memcpy(want, w, n * sizeof(*w));
    for (size_t i = 0; i < n; i++) {
        keys[i].mag = fabsf(w[i]);
        keys[i].idx = i;
    }
    qsort(keys, n, sizeof(*keys), cmp_ref);
    size_t k = (size_t)cairn_prune_count(f, n);
    for (size_t j = 0; j < k; j++)
        want[keys[j].idx] = 0.0f;
    assert_int_equal(cairn_prune_magnitude(got, CAIRN_QF_F32, n, f, &st), 0);
    for (size_t i = 0; i < n; i++)
        if (u_of(got[i]) != u_of(want[i]))
            fail_msg("n %zu f %g: element %zu is %g, want %g", n, f, i, got[i], want[i]);
    assert_int_equal(st.pruned, k);
    assert_int_equal(st.zeros_after, zeros_f32(got, n));
    free(got);
    free(want);
    free(keys);
}

static void test_prune_exact_share(void **state)
{
    (void)state;
    enum { N = 1000 };
    static float w[N];
    rng_state = 7;
    for (size_t i = 0; i < N; i++) {
        w[i] = rnd();
        if (w[i] == 0.0f)
            w[i] = 0.5f;
    }
    const double fs[] = { 0.0, 0.001, 0.1, 0.3, 0.5, 0.77, 0.999, 1.0 };
    for (size_t j = 0; j < sizeof(fs) / sizeof(fs[0]); j++) {
        float c[N];
        struct cairn_quant_stats st = { 0 };
        memcpy(c, w, sizeof(c));
        assert_int_equal(cairn_prune_magnitude(c, CAIRN_QF_F32, N, fs[j], &st), 0);
        size_t want = (size_t)floor(fs[j] * N + 0.5);
        assert_int_equal(zeros_f32(c, N), want);
        assert_int_equal(st.zeros_before, 0);
        assert_int_equal(st.zeros_after, want);
        /* Everything kept is at least as large as everything pruned. */
        float min_kept = INFINITY;
        double max_pruned = 0.0;
        for (size_t i = 0; i < N; i++) {
            if (c[i] != 0.0f) {
                assert_true(u_of(c[i]) == u_of(w[i]));
                if (fabsf(c[i]) < min_kept)
                    min_kept = fabsf(c[i]);
            } else if (fabs(w[i]) > max_pruned) {
                max_pruned = fabs(w[i]);
            }
        }
        assert_true(max_pruned <= min_kept);
        assert_true(st.max_abs_error == max_pruned);
        check_against_reference(w, N, fs[j]);
    }
    /* round(f * n) rounds halves up: 0.25 * 10 = 2.5 -> 3; 0.05 * 7 = 0.35 -> 0. */
    assert_int_equal(cairn_prune_count(0.25, 10), 3);
    assert_int_equal(cairn_prune_count(0.05, 7), 0);
    assert_int_equal(cairn_prune_count(1.0, 7), 7);
}

static void test_prune_ties_and_orders(void **state)
{
    (void)state;
    /* All equal magnitudes, either sign: the lower indices go first. */
    float w[8] = { 1, -1, 1, -1, 1, -1, 1, -1 };
    assert_int_equal(cairn_prune_magnitude(w, CAIRN_QF_F32, 8, 0.5, NULL), 0);
    for (size_t i = 0; i < 8; i++)
        assert_true(i < 4 ? w[i] == 0.0f : fabsf(w[i]) == 1.0f);
    /* -0 counts as zero; pruned elements become +0. */
    float z[4] = { -0.0f, 3.0f, -2.0f, 1.0f };
    struct cairn_quant_stats st = { 0 };
    assert_int_equal(cairn_prune_magnitude(z, CAIRN_QF_F32, 4, 0.5, &st), 0);
    assert_int_equal(st.zeros_before, 1);
    assert_int_equal(st.zeros_after, 2);
    assert_true(u_of(z[3]) == 0 && z[1] == 3.0f && z[2] == -2.0f);

    /* Crafted orders that defeat naive pivots, and a big plateau of ties. */
    enum { N = 20000 };
    static float a[N];
    for (int kind = 0; kind < 5; kind++) {
        for (size_t i = 0; i < N; i++) {
            switch (kind) {
            case 0:
                a[i] = (float)(i + 1);
                break;
            case 1:
                a[i] = (float)(N - i);
                break;
            case 2:
                a[i] = (float)(i < N / 2 ? i + 1 : N - i);
                break;
            case 3:
                a[i] = 0.25f;
                break;
            default:
                a[i] = (float)(1 + (i % 3));
                break;
            }
        }
        check_against_reference(a, N, 0.37);
        check_against_reference(a, N, 0.5);
    }
    /* Small sizes across every k. */
    rng_state = 99;
    for (size_t n = 1; n < 40; n++) {
        float s[40];
        for (size_t i = 0; i < n; i++)
            s[i] = (float)((int)(rnd() * 4)); /* many ties and zeros */
        for (size_t k = 0; k <= n; k++)
            check_against_reference(s, n, (double)k / (double)n);
    }
}

static void test_prune_nan_half_and_errors(void **state)
{
    (void)state;
    /* NaN is the largest magnitude: kept unless everything goes. */
    float w[4] = { NAN, 1.0f, 2.0f, 3.0f };
    struct cairn_quant_stats st = { 0 };
    assert_int_equal(cairn_prune_magnitude(w, CAIRN_QF_F32, 4, 0.75, &st), 0);
    assert_true(isnan(w[0]) && w[1] == 0 && w[2] == 0 && w[3] == 0);
    assert_int_equal(st.nonfinite, 1);
    assert_true(st.max_abs_error == 3.0);

    /* fp16 tensors are pruned in place in their own format. */
    unsigned char h[8] = { 0x00, 0x3c, 0x00, 0xbc, 0x00, 0x40, 0x00, 0x38 }; /* 1 -1 2 0.5 */
    assert_int_equal(cairn_prune_magnitude(h, CAIRN_QF_F16, 4, 0.5, NULL), 0);
    const unsigned char want[8] = { 0x00, 0x00, 0x00, 0xbc, 0x00, 0x40, 0x00, 0x00 };
    assert_memory_equal(h, want, 8);

    assert_int_equal(cairn_prune_magnitude(w, CAIRN_QF_F32, 4, 1.5, NULL), CAIRN_EINVALID);
    assert_int_equal(cairn_prune_magnitude(w, CAIRN_QF_F32, 4, -0.1, NULL), CAIRN_EINVALID);
    assert_int_equal(cairn_prune_magnitude(w, CAIRN_QF_F32, 4, NAN, NULL), CAIRN_EINVALID);
    assert_int_equal(cairn_prune_magnitude(w, 9, 4, 0.5, NULL), CAIRN_EINVALID);
    assert_int_equal(cairn_prune_rows(w, CAIRN_QF_F32, 2, 2, 2.0, NULL), CAIRN_EINVALID);
    assert_int_equal(cairn_prune_magnitude(w, CAIRN_QF_F32, 0, 0.5, NULL), 0);
}

static void test_prune_rows(void **state)
{
    (void)state;
    enum { R = 10, C = 4 };
    float w[R * C], orig[R * C];
    /* Row r has norm proportional to (r * 7) % 10 + 1, except rows 2 and 6 tie. */
    for (size_t r = 0; r < R; r++)
        for (size_t c = 0; c < C; c++)
            w[r * C + c] = (float)((r * 7) % 10 + 1) * (c % 2 ? -1.0f : 1.0f);
    for (size_t c = 0; c < C; c++)
        w[6 * C + c] = w[2 * C + c];
    memcpy(orig, w, sizeof(w));
    struct cairn_quant_stats st = { 0 };
    assert_int_equal(cairn_prune_rows(w, CAIRN_QF_F32, R, C, 0.3, &st), 0);
    /* Norm factors: r0 1, r1 8, r2 5, r3 2, r4 9, r5 6, r6 5 (tie), r7 10, r8 7, r9 4. */
    /* Three smallest: r0 (1), r3 (2), r9 (4). */
    for (size_t r = 0; r < R; r++) {
        int pruned = r == 0 || r == 3 || r == 9;
        for (size_t c = 0; c < C; c++) {
            if (pruned)
                assert_true(u_of(w[r * C + c]) == 0);
            else
                assert_true(w[r * C + c] == orig[r * C + c]);
        }
    }
    assert_int_equal(st.pruned, 3 * C);
    assert_int_equal(st.zeros_after, 3 * C);
    assert_true(st.max_abs_error == 4.0);

    /* With 4 rows pruned the tie between rows 2 and 6 goes to row 2. */
    memcpy(w, orig, sizeof(w));
    assert_int_equal(cairn_prune_rows(w, CAIRN_QF_F32, R, C, 0.4, NULL), 0);
    for (size_t c = 0; c < C; c++) {
        assert_true(w[2 * C + c] == 0.0f);
        assert_true(w[6 * C + c] == orig[6 * C + c]);
    }
    /* A NaN row is never preferred over a finite one. */
    memcpy(w, orig, sizeof(w));
    w[0] = f_of(0x7fc00000);
    assert_int_equal(cairn_prune_rows(w, CAIRN_QF_F32, R, C, 0.1, NULL), 0);
    assert_true(isnan(w[0]));
    for (size_t c = 0; c < C; c++)
        assert_true(w[3 * C + c] == 0.0f);
}

/* Q8_0: the fp16 scale per block of 32, the bound against the stored scale, refusals. */
static void test_q8_0(void **state)
{
    (void)state;
    float w[64];
    unsigned char q[68];
    struct cairn_quant_stats st = { 0 };
    for (int i = 0; i < 32; i++)
        w[i] = (float)(i - 16) * 0.0371f;
    for (int i = 32; i < 64; i++)
        w[i] = 0.0f; /* an all-zero block: scale 0, every q 0 */
    assert_int_equal(cairn_quant_q8_0(q, w, CAIRN_QF_F32, 64, &st), 0);
    float d = cairn_fp16_to_fp32((uint16_t)(q[0] | q[1] << 8));
    assert_true(d > 0.0f);
    assert_int_equal(cairn_fp32_to_fp16(16 * 0.0371f / 127.0f), (uint16_t)(q[0] | q[1] << 8));
    for (int i = 0; i < 32; i++)
        assert_true(fabsf(w[i] - (float)(int8_t)q[2 + i] * d) <= d / 2 * 1.0001f);
    assert_int_equal((int8_t)q[2], -127); /* the largest magnitude maps to the end */
    assert_int_equal(q[34] | q[35] << 8, 0);
    for (int i = 0; i < 32; i++)
        assert_int_equal(q[36 + i], 0);
    assert_true(st.max_abs_error <= d / 2 * 1.0001f);
    /* Not whole blocks, NaN, and a scale past fp16 are refused. */
    assert_int_equal(cairn_quant_q8_0(q, w, CAIRN_QF_F32, 40, NULL), CAIRN_EINVALID);
    w[3] = NAN;
    assert_int_equal(cairn_quant_q8_0(q, w, CAIRN_QF_F32, 32, NULL), CAIRN_EINVALID);
    w[3] = 1e9f;
    assert_int_equal(cairn_quant_q8_0(q, w, CAIRN_QF_F32, 32, NULL), CAIRN_EINVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fp16_rounding),
        cmocka_unit_test(test_bf16_rounding),
        cmocka_unit_test(test_convert_roundtrip_and_bad_format),
        cmocka_unit_test(test_int8_roundtrip),
        cmocka_unit_test(test_int8_ties_and_formats),
        cmocka_unit_test(test_prune_exact_share),
        cmocka_unit_test(test_prune_ties_and_orders),
        cmocka_unit_test(test_prune_nan_half_and_errors),
        cmocka_unit_test(test_prune_rows),
        cmocka_unit_test(test_q8_0),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
