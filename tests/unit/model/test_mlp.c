/*
 * Unit tests for lib/model/mlp.c: a hand-computed two-layer network stored as
 * F32, F16, BF16 and I8 (with per-row scales), the hidden activations, class
 * labels, directory lookup, and hostile files (bad lengths, duplicate keys,
 * shape chains that do not line up, ranges past the end, byte flips).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cairn/common.h"
#include "model/half.h"
#include "model/mlp.h"
#include "util/buf.h"
#include "util/fs.h"

static char tmpdir[64];

/* A tensor for the file builder: values given as floats, stored as `dtype`. */
struct t {
    const char *name, *dtype;
    int rank;
    int shape[2];
    const float *vals;
};

/* Plain stdio, no fsync: these files are scratch and many are written. */
static void write_raw(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* Write a safetensors file from tensors and a JSON metadata body (or NULL). */
static void write_st(const char *path, const struct t *ts, int n, const char *meta)
{
    struct cairn_buf hdr = CAIRN_BUF_INIT, data = CAIRN_BUF_INIT, file = CAIRN_BUF_INIT;
    assert_int_equal(cairn_buf_putc(&hdr, '{'), 0);
    if (meta)
        assert_int_equal(cairn_buf_printf(&hdr, "\"__metadata__\":{%s},", meta), 0);
    for (int i = 0; i < n; i++) {
        size_t cnt = (size_t)ts[i].shape[0] * (size_t)(ts[i].rank == 2 ? ts[i].shape[1] : 1);
        size_t start = data.len;
        for (size_t k = 0; k < cnt; k++) {
            unsigned char b[4];
            float v = ts[i].vals[k];
            if (!strcmp(ts[i].dtype, "F32")) {
                uint32_t u;
                memcpy(&u, &v, 4);
                cairn_put_u32le(b, u);
                assert_int_equal(cairn_buf_put(&data, b, 4), 0);
            } else if (!strcmp(ts[i].dtype, "F16")) {
                cairn_fp32_to_fp16_n(b, &v, 1);
                assert_int_equal(cairn_buf_put(&data, b, 2), 0);
            } else if (!strcmp(ts[i].dtype, "BF16")) {
                cairn_fp32_to_bf16_n(b, &v, 1);
                assert_int_equal(cairn_buf_put(&data, b, 2), 0);
            } else {
                assert_int_equal(cairn_buf_putc(&data, (char)(int8_t)v), 0);
            }
        }
        if (ts[i].rank == 2)
            cairn_buf_printf(&hdr,
                             "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[%d,%d],"
                             "\"data_offsets\":[%zu,%zu]}",
                             i ? "," : "", ts[i].name, ts[i].dtype, ts[i].shape[0], ts[i].shape[1],
                             start, data.len);
        else
            cairn_buf_printf(&hdr,
                             "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[%d],"
                             "\"data_offsets\":[%zu,%zu]}",
                             i ? "," : "", ts[i].name, ts[i].dtype, ts[i].shape[0], start,
                             data.len);
    }
    assert_int_equal(cairn_buf_putc(&hdr, '}'), 0);
    assert_int_equal(cairn_buf_put_u64le(&file, hdr.len), 0);
    assert_int_equal(cairn_buf_put(&file, hdr.ptr, hdr.len), 0);
    assert_int_equal(cairn_buf_put(&file, data.ptr, data.len), 0);
    write_raw(path, file.ptr, file.len);
    cairn_buf_release(&hdr);
    cairn_buf_release(&data);
    cairn_buf_release(&file);
}

static const char *tpath(const char *name)
{
    static char p[128];
    snprintf(p, sizeof(p), "%s/%s", tmpdir, name);
    return p;
}

/*
 * The network: h = relu(W0 x + b0), p = softmax(W1 h + b1) with
 * W0 = [[1,0],[0,1],[1,1]], b0 = [0,-1,0.5], W1 = [[1,0,0],[0,1,1]], b1 = 0.
 * x = [2,1]: h = [2,0,3.5], logits [2,3.5]. x = [-1,3]: h = [0,2,2.5], logits [0,4.5].
 * Every weight is exact in fp16, bf16 and int8 with scale 0.5.
 */
static const float w0[] = { 1, 0, 0, 1, 1, 1 }, b0[] = { 0, -1, 0.5f };
static const float w1[] = { 1, 0, 0, 0, 1, 1 }, b1[] = { 0, 0 };
static const float q0[] = { 2, 0, 0, 2, 2, 2 }, s0[] = { 0.5f, 0.5f, 0.5f };
static const float q1[] = { 1, 0, 0, 0, 1, 1 }, s1[] = { 1, 1 };
#define META "\"cairn.arch\":\"mlp\",\"cairn.activation\":\"relu\",\"cairn.output\":\"softmax\""

static void write_net(const char *path, const char *dt, const char *meta)
{
    if (!strcmp(dt, "I8")) {
        struct t ts[] = {
            { "layers.0.weight", "I8", 2, { 3, 2 }, q0 },
            { "layers.0.weight_scale", "F32", 1, { 3, 0 }, s0 },
            { "layers.0.bias", "F32", 1, { 3, 0 }, b0 },
            { "layers.1.weight", "I8", 2, { 2, 3 }, q1 },
            { "layers.1.weight_scale", "F32", 1, { 2, 0 }, s1 },
            { "layers.1.bias", "F32", 1, { 2, 0 }, b1 },
        };
        write_st(path, ts, 6, meta);
    } else {
        struct t ts[] = {
            { "layers.0.weight", dt, 2, { 3, 2 }, w0 },
            { "layers.0.bias", dt, 1, { 3, 0 }, b0 },
            { "layers.1.weight", dt, 2, { 2, 3 }, w1 },
            { "layers.1.bias", "F32", 1, { 2, 0 }, b1 },
        };
        write_st(path, ts, 4, meta);
    }
}

static void check_forward(const char *dt)
{
    struct cairn_mlp *m = NULL;
    const float x[] = { 2, 1, -1, 3 };
    float p[4];
    write_net(tpath("net.safetensors"), dt, META);
    assert_int_equal(cairn_mlp_load(&m, tpath("net.safetensors")), 0);
    assert_int_equal(cairn_mlp_num_inputs(m), 2);
    assert_int_equal(cairn_mlp_num_classes(m), 2);
    assert_int_equal(cairn_mlp_num_layers(m), 2);
    assert_string_equal(cairn_mlp_weight_dtype(m), dt);
    assert_null(cairn_mlp_class_label(m, 0));
    assert_int_equal(cairn_mlp_infer(m, p, x, 2), 0);
    assert_float_equal(p[1], 1.0 / (1.0 + exp(-1.5)), 1e-5);
    assert_float_equal(p[0] + p[1], 1.0, 1e-6);
    assert_float_equal(p[2], 1.0 / (1.0 + exp(4.5)), 1e-5);
    assert_int_equal(cairn_mlp_argmax(p, 2), 1);
    assert_int_equal(cairn_mlp_argmax(p + 2, 2), 1);
    /* A batch of zero rows is allowed and writes nothing. */
    assert_int_equal(cairn_mlp_infer(m, p, x, 0), 0);
    cairn_mlp_free(m);
}

static void test_forward_f32(void **state)
{
    (void)state;
    check_forward("F32");
}
static void test_forward_f16(void **state)
{
    (void)state;
    check_forward("F16");
}
static void test_forward_bf16(void **state)
{
    (void)state;
    check_forward("BF16");
}
static void test_forward_i8(void **state)
{
    (void)state;
    check_forward("I8");
}

static void test_activations_and_labels(void **state)
{
    (void)state;
    struct cairn_mlp *m = NULL;
    const float x[] = { 2, 1 };
    float p[2];
    double h[3], l0, l1;
    write_net(tpath("net.safetensors"), "F32",
              "\"cairn.arch\":\"mlp\","
              "\"cairn.activation\":\"tanh\",\"cairn.classes\":\"cat,dog\"");
    assert_int_equal(cairn_mlp_load(&m, tpath("net.safetensors")), 0);
    assert_int_equal(cairn_mlp_activation(m), CAIRN_MLP_TANH);
    assert_string_equal(cairn_mlp_class_label(m, 0), "cat");
    assert_string_equal(cairn_mlp_class_label(m, 1), "dog");
    assert_null(cairn_mlp_class_label(m, 2));
    assert_int_equal(cairn_mlp_infer(m, p, x, 1), 0);
    h[0] = tanh(2), h[1] = tanh(0), h[2] = tanh(3.5);
    l0 = h[0], l1 = h[1] + h[2];
    assert_float_equal(p[0], 1.0 / (1.0 + exp(l1 - l0)), 1e-5);
    cairn_mlp_free(m);

    write_net(tpath("net.safetensors"), "F32",
              "\"cairn.arch\":\"mlp\","
              "\"cairn.activation\":\"sigmoid\"");
    assert_int_equal(cairn_mlp_load(&m, tpath("net.safetensors")), 0);
    assert_int_equal(cairn_mlp_infer(m, p, x, 1), 0);
    for (int i = 0; i < 3; i++)
        h[i] = 1.0 / (1.0 + exp(-(i == 0 ? 2.0 : i == 1 ? 0.0 : 3.5)));
    l0 = h[0], l1 = h[1] + h[2];
    assert_float_equal(p[0], 1.0 / (1.0 + exp(l1 - l0)), 1e-5);
    cairn_mlp_free(m);
}

static void test_load_dir(void **state)
{
    (void)state;
    struct cairn_mlp *m = NULL;
    char d[128];
    snprintf(d, sizeof(d), "%s/dir", tmpdir);
    assert_int_equal(cairn_fs_mkdir_p(d), 0);
    assert_int_equal(cairn_mlp_load_dir(&m, d), CAIRN_ENOTFOUND);
    write_net(tpath("dir/a.safetensors"), "F32", META);
    assert_int_equal(cairn_mlp_load_dir(&m, d), 0);
    cairn_mlp_free(m);
    write_net(tpath("dir/b.safetensors"), "F32", META);
    assert_int_equal(cairn_mlp_load_dir(&m, d), CAIRN_EINVALID);
    write_net(tpath("dir/model.safetensors"), "F16", META);
    assert_int_equal(cairn_mlp_load_dir(&m, d), 0);
    assert_string_equal(cairn_mlp_weight_dtype(m), "F16");
    cairn_mlp_free(m);
    assert_int_equal(cairn_mlp_load(&m, tpath("missing.safetensors")), CAIRN_ENOTFOUND);
    assert_null(m);
}

/* A version committed as folder/file.safetensors keeps its folder when checked out. */
static void test_find_nested(void **state)
{
    (void)state;
    struct cairn_buf rel = CAIRN_BUF_INIT;
    struct cairn_mlp *m = NULL;
    char d[128];
    snprintf(d, sizeof(d), "%s/nested", tmpdir);
    assert_int_equal(cairn_fs_mkdir_p(tpath("nested/m/deep")), 0);
    assert_int_equal(cairn_fs_mkdir_p(tpath("nested/.hidden")), 0);
    write_net(tpath("nested/.hidden/x.safetensors"), "F32", META);
    assert_int_equal(cairn_mlp_find(&rel, d), CAIRN_ENOTFOUND);
    write_net(tpath("nested/m/deep/net.safetensors"), "F32", META);
    assert_int_equal(cairn_mlp_find(&rel, d), 0);
    assert_string_equal(rel.ptr, "m/deep/net.safetensors");
    assert_int_equal(cairn_mlp_load_dir(&m, d), 0);
    cairn_mlp_free(m);
    write_net(tpath("nested/m/other.safetensors"), "F32", META);
    cairn_buf_clear(&rel);
    assert_int_equal(cairn_mlp_find(&rel, d), CAIRN_EINVALID);
    assert_non_null(strstr(cairn_error_last(), "'m/deep/net.safetensors', 'm/other.safetensors'"));
    write_net(tpath("nested/model.safetensors"), "F32", META);
    assert_int_equal(cairn_mlp_find(&rel, d), 0);
    assert_string_equal(rel.ptr, "model.safetensors");
    cairn_buf_release(&rel);
}

static void expect_invalid(const struct t *ts, int n, const char *meta)
{
    struct cairn_mlp *m = NULL;
    write_st(tpath("bad.safetensors"), ts, n, meta);
    assert_int_equal(cairn_mlp_load(&m, tpath("bad.safetensors")), CAIRN_EINVALID);
    assert_null(m);
}

static void test_bad_models(void **state)
{
    (void)state;
    /* Second layer expects 4 inputs, the first gives 3. */
    const float z[12] = { 0 };
    struct t chain[] = {
        { "layers.0.weight", "F32", 2, { 3, 2 }, w0 },
        { "layers.0.bias", "F32", 1, { 3, 0 }, b0 },
        { "layers.1.weight", "F32", 2, { 2, 4 }, z },
        /* Zeros, not b1: later cases lengthen this bias past b1's two values. */
        { "layers.1.bias", "F32", 1, { 2, 0 }, z },
    };
    expect_invalid(chain, 4, META);
    chain[2].shape[1] = 3;
    /* Missing bias, wrong bias length, a gap in layer numbers. */
    expect_invalid(chain, 3, META);
    chain[3].shape[0] = 3;
    expect_invalid(chain, 4, META);
    chain[3].shape[0] = 2;
    chain[2].name = "layers.2.weight";
    chain[3].name = "layers.2.bias";
    expect_invalid(chain, 4, META);
    chain[2].name = "layers.1.weight";
    chain[3].name = "layers.1.bias";
    /* Mixed weight dtypes, int weights as bias, metadata. */
    chain[2].dtype = "F16";
    expect_invalid(chain, 4, META);
    chain[2].dtype = "F32";
    chain[1].dtype = "I8";
    expect_invalid(chain, 4, META);
    chain[1].dtype = "F32";
    expect_invalid(chain, 4, NULL);
    expect_invalid(chain, 4, "\"cairn.arch\":\"cnn\"");
    expect_invalid(chain, 4, "\"cairn.arch\":\"mlp\",\"cairn.activation\":\"gelu\"");
    expect_invalid(chain, 4, "\"cairn.arch\":\"mlp\",\"cairn.output\":\"none\"");
    expect_invalid(chain, 4, "\"cairn.arch\":\"mlp\",\"cairn.classes\":\"a,b,c\"");
    expect_invalid(chain, 4, "\"cairn.arch\":\"mlp\",\"x\":1");
    /* The good one loads, so the failures above are the edits. */
    struct cairn_mlp *m = NULL;
    write_st(tpath("good.safetensors"), chain, 4, META);
    assert_int_equal(cairn_mlp_load(&m, tpath("good.safetensors")), 0);
    cairn_mlp_free(m);
}

/* NaN or Inf in any tensor, stored in any float dtype, fails the load and names the tensor. */
static void test_non_finite_weights(void **state)
{
    (void)state;
    float bad_w[6], bad_b[3], bad_s[3];
    const float nan_inf[] = { NAN, INFINITY, -INFINITY };
    struct cairn_mlp *m = NULL;
    for (int k = 0; k < 3; k++) {
        const char *dts[] = { "F32", "F16", "BF16" };
        for (int d = 0; d < 3; d++) {
            memcpy(bad_w, w0, sizeof(bad_w));
            bad_w[4] = nan_inf[k];
            struct t net[] = {
                { "layers.0.weight", dts[d], 2, { 3, 2 }, bad_w },
                { "layers.0.bias", "F32", 1, { 3, 0 }, b0 },
                { "layers.1.weight", dts[d], 2, { 2, 3 }, w1 },
                { "layers.1.bias", "F32", 1, { 2, 0 }, b1 },
            };
            expect_invalid(net, 4, META);
            assert_non_null(
                strstr(cairn_error_last(), "tensor 'layers.0.weight' holds a non-finite"));
        }
    }
    memcpy(bad_b, b0, sizeof(bad_b));
    bad_b[2] = NAN;
    struct t bias[] = {
        { "layers.0.weight", "F32", 2, { 3, 2 }, w0 },
        { "layers.0.bias", "F32", 1, { 3, 0 }, bad_b },
        { "layers.1.weight", "F32", 2, { 2, 3 }, w1 },
        { "layers.1.bias", "F32", 1, { 2, 0 }, b1 },
    };
    expect_invalid(bias, 4, META);
    assert_non_null(strstr(cairn_error_last(), "'layers.0.bias' holds a non-finite value (NaN"));
    /* int8: an Inf scale, and a finite scale whose product with q overflows. */
    memcpy(bad_s, s0, sizeof(bad_s));
    bad_s[1] = INFINITY;
    struct t i8[] = {
        { "layers.0.weight", "I8", 2, { 3, 2 }, q0 },
        { "layers.0.weight_scale", "F32", 1, { 3, 0 }, bad_s },
        { "layers.0.bias", "F32", 1, { 3, 0 }, b0 },
        { "layers.1.weight", "I8", 2, { 2, 3 }, q1 },
        { "layers.1.weight_scale", "F32", 1, { 2, 0 }, s1 },
        { "layers.1.bias", "F32", 1, { 2, 0 }, b1 },
    };
    expect_invalid(i8, 6, META);
    assert_non_null(strstr(cairn_error_last(), "'layers.0.weight_scale' holds a non-finite"));
    bad_s[1] = 3e38f;
    expect_invalid(i8, 6, META);
    assert_non_null(strstr(cairn_error_last(), "'layers.0.weight' holds a non-finite value (Inf"));
    /* The same files with finite values load. */
    bad_s[1] = 0.5f;
    write_st(tpath("good.safetensors"), i8, 6, META);
    assert_int_equal(cairn_mlp_load(&m, tpath("good.safetensors")), 0);
    cairn_mlp_free(m);
}

static void test_hostile_headers(void **state)
{
    (void)state;
    struct cairn_mlp *m = NULL;
    const char *hdrs[] = {
        "{\"__metadata__\":{\"cairn.arch\":\"mlp\"},\"__metadata__\":{}}",
        "{\"layers.0.weight\":{\"dtype\":\"F32\",\"shape\":[1,1],\"data_offsets\":[0,400]},"
        "\"layers.0.bias\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
        "\"__metadata__\":{\"cairn.arch\":\"mlp\"}}",
        "{\"layers.0.weight\":{\"dtype\":\"F32\",\"shape\":[1,-1],\"data_offsets\":[0,4]},"
        "\"__metadata__\":{\"cairn.arch\":\"mlp\"}}",
        "{\"layers.0.weight\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],"
        "\"data_offsets\":[0,4]},\"__metadata__\":{\"cairn.arch\":\"mlp\"}}",
        "{\"layers.0.weight\":{\"dtype\":\"F32\",\"shape\":[1,1],\"data_offsets\":[4,0]},"
        "\"__metadata__\":{\"cairn.arch\":\"mlp\"}}",
        "[1,2,3]",
        "{\"a\":",
    };
    for (size_t i = 0; i < sizeof(hdrs) / sizeof(hdrs[0]); i++) {
        struct cairn_buf f = CAIRN_BUF_INIT;
        size_t n = strlen(hdrs[i]);
        cairn_buf_put_u64le(&f, n);
        cairn_buf_put(&f, hdrs[i], n);
        cairn_buf_put(&f, "\0\0\0\0\0\0\0\0", 8);
        write_raw(tpath("h.safetensors"), f.ptr, f.len);
        assert_int_equal(cairn_mlp_load(&m, tpath("h.safetensors")), CAIRN_EINVALID);
        cairn_buf_release(&f);
    }
    /* Length prefixes: too short a file, huge N, N past the end. */
    unsigned char small[8] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
    write_raw(tpath("h.safetensors"), small, 4);
    assert_int_equal(cairn_mlp_load(&m, tpath("h.safetensors")), CAIRN_EINVALID);
    write_raw(tpath("h.safetensors"), small, 8);
    assert_int_equal(cairn_mlp_load(&m, tpath("h.safetensors")), CAIRN_EINVALID);
    small[0] = 100, memset(small + 1, 0, 7);
    write_raw(tpath("h.safetensors"), small, 8);
    assert_int_equal(cairn_mlp_load(&m, tpath("h.safetensors")), CAIRN_EINVALID);
}

/* Flip bytes all over a valid file: every load must succeed or fail cleanly. */
static void test_byte_flips(void **state)
{
    (void)state;
    struct cairn_buf orig = CAIRN_BUF_INIT;
    uint32_t seed = 7;
    write_net(tpath("net.safetensors"), "I8", META);
    assert_int_equal(cairn_fs_read_file(&orig, tpath("net.safetensors"), 1 << 20), 0);
    for (int it = 0; it < 300; it++) {
        struct cairn_mlp *m = NULL;
        char *copy = malloc(orig.len);
        memcpy(copy, orig.ptr, orig.len);
        for (int k = 0; k < 3; k++) {
            seed = seed * 1103515245u + 12345u;
            copy[(seed >> 8) % orig.len] ^= (char)(1u << ((seed >> 4) & 7));
        }
        write_raw(tpath("flip.safetensors"), copy, orig.len);
        if (cairn_mlp_load(&m, tpath("flip.safetensors")) == 0) {
            float x[64] = { 0 }, *p = calloc(cairn_mlp_num_classes(m), sizeof(float));
            if (cairn_mlp_num_inputs(m) <= 64)
                assert_int_equal(cairn_mlp_infer(m, p, x, 1), 0);
            free(p);
        }
        cairn_mlp_free(m);
        free(copy);
    }
    cairn_buf_release(&orig);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/cairn-mlp-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return cairn_fs_rm_rf(tmpdir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forward_f32),
        cmocka_unit_test(test_forward_f16),
        cmocka_unit_test(test_forward_bf16),
        cmocka_unit_test(test_forward_i8),
        cmocka_unit_test(test_activations_and_labels),
        cmocka_unit_test(test_load_dir),
        cmocka_unit_test(test_find_nested),
        cmocka_unit_test(test_bad_models),
        cmocka_unit_test(test_non_finite_weights),
        cmocka_unit_test(test_hostile_headers),
        cmocka_unit_test(test_byte_flips),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
