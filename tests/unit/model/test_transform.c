/*
 * Unit tests for lib/model/transform.c: quantise and prune small safetensors
 * files written here by hand (not with the library's serializer, so the two
 * check each other), then read the result back and check tensors, values,
 * metadata and the report; hostile inputs and options are refused without
 * touching the destination.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cairn/common.h"
#include "cairn/model.h"
#include "model/half.h"
#include "model/quant.h"
#include "model/transform.h"
#include "store/gguf.h"
#include "store/layout.h"
#include "store/safetensors.h"
#include "util/buf.h"
#include "util/fs.h"

struct spec {
    const char *name;
    const char *dtype;
    unsigned rank;
    uint64_t shape[2];
    const void *data;
    size_t len;
};

/* Write a safetensors file: JSON header (space-padded to 8) then the data in order. */
static void write_st(const char *path, const struct spec *t, size_t n, const char *meta_json)
{
    struct cairn_buf h = CAIRN_BUF_INIT, file = CAIRN_BUF_INIT;
    size_t off = 0;
    assert_int_equal(cairn_buf_puts(&h, "{"), 0);
    if (meta_json)
        assert_int_equal(cairn_buf_printf(&h, "\"__metadata__\":%s,", meta_json), 0);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(cairn_buf_printf(&h, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[",
                                          i ? "," : "", t[i].name, t[i].dtype),
                         0);
        for (unsigned d = 0; d < t[i].rank; d++)
            assert_int_equal(
                cairn_buf_printf(&h, "%s%llu", d ? "," : "", (unsigned long long)t[i].shape[d]), 0);
        assert_int_equal(cairn_buf_printf(&h, "],\"data_offsets\":[%zu,%zu]}", off, off + t[i].len),
                         0);
        off += t[i].len;
    }
    assert_int_equal(cairn_buf_puts(&h, "}"), 0);
    while (h.len % 8)
        assert_int_equal(cairn_buf_putc(&h, ' '), 0);
    assert_int_equal(cairn_buf_put_u64le(&file, h.len), 0);
    assert_int_equal(cairn_buf_put(&file, h.ptr, h.len), 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(cairn_buf_put(&file, t[i].data, t[i].len), 0);
    assert_int_equal(cairn_fs_write_atomic(path, file.ptr, file.len, 0644), 0);
    cairn_buf_release(&h);
    cairn_buf_release(&file);
}

/* Read a file and parse its header. */
static void read_st(struct cairn_buf *file, struct cairn_tensor_table *t, const char *path)
{
    cairn_buf_clear(file);
    assert_int_equal(cairn_fs_read_file(file, path, 1 << 20), 0);
    if (cairn_safetensors_parse(t, file->ptr, file->len, file->len) < 0)
        fail_msg("output does not parse: %s", cairn_error_last());
}

static const char *meta(const struct cairn_tensor_table *t, const char *key)
{
    for (size_t i = 0; i < t->meta_count; i++)
        if (!strcmp(t->meta_keys[i], key))
            return t->meta_vals[i];
    return NULL;
}

static float f32_at(const struct cairn_buf *file, const struct cairn_tensor *x, size_t i)
{
    return cairn_quant_load(file->ptr + x->start, CAIRN_QF_F32, i);
}

static char dir[64];
static char src[128], dst[128];

/* The fixture: a two-layer MLP plus tensors the transforms must leave alone. */
static float w0[12], b0[4], w1f[8], b1[2], nrm[4], ln[4], pw[6];
static unsigned char w1[16], pwb[12];
static int32_t emb[4] = { 1, 2, 3, 4 };

static void make_fixture(const char *path)
{
    for (int i = 0; i < 12; i++)
        w0[i] = (float)((i * 37) % 11 - 5) / 4.0f; /* includes zeros and ties */
    for (int i = 0; i < 4; i++) {
        b0[i] = 0.1f * (float)i;
        nrm[i] = 1.0f + (float)i;
        ln[i] = 0.5f;
    }
    for (int i = 0; i < 8; i++) {
        w1f[i] = (float)(i - 4) * 0.3f;
        uint16_t h = cairn_fp32_to_fp16(w1f[i]);
        w1[2 * i] = (unsigned char)h;
        w1[2 * i + 1] = (unsigned char)(h >> 8);
    }
    b1[0] = -1.0f;
    b1[1] = 1.0f;
    for (int i = 0; i < 6; i++) {
        pw[i] = (float)(i + 1) * (i % 2 ? -0.25f : 0.25f);
        uint16_t h = cairn_fp32_to_bf16(pw[i]);
        pwb[2 * i] = (unsigned char)h;
        pwb[2 * i + 1] = (unsigned char)(h >> 8);
    }
    const struct spec t[] = {
        { "layers.0.weight", "F32", 2, { 4, 3 }, w0, sizeof(w0) },
        { "layers.0.bias", "F32", 1, { 4 }, b0, sizeof(b0) },
        { "layers.1.weight", "F16", 2, { 2, 4 }, w1, sizeof(w1) },
        { "layers.1.bias", "F32", 1, { 2 }, b1, sizeof(b1) },
        { "norm.weight", "F32", 1, { 4 }, nrm, sizeof(nrm) },
        { "layer_norm.weight", "F32", 2, { 2, 2 }, ln, sizeof(ln) },
        { "emb.weight", "I32", 2, { 2, 2 }, emb, sizeof(emb) },
        { "proj.weight", "BF16", 2, { 3, 2 }, pwb, sizeof(pwb) },
    };
    write_st(path, t, sizeof(t) / sizeof(t[0]),
             "{\"cairn.arch\":\"mlp\",\"cairn.pruning\":\"old\"}");
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/cairn-test-transform-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(src, sizeof(src), "%s/in.safetensors", dir);
    snprintf(dst, sizeof(dst), "%s/out.safetensors", dir);
    make_fixture(src);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return cairn_fs_rm_rf(dir) < 0 ? -1 : 0;
}

/* No temporary file may be left next to the output. */
static void assert_no_temp_files(void)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    assert_non_null(d);
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".tmp."))
            fail_msg("temporary file '%s' left behind", e->d_name);
    closedir(d);
}

static const struct cairn_tensor_report *rep_of(const struct cairn_transform_report *r,
                                                const char *name)
{
    for (size_t i = 0; i < r->count; i++)
        if (!strcmp(r->tensors[i].name, name))
            return &r->tensors[i];
    fail_msg("tensor '%s' missing from the report", name);
    return NULL;
}

static void test_skip_rules(void **state)
{
    (void)state;
    struct cairn_transform_opts o;
    assert_int_equal(cairn_transform_opts_quantize(&o, "fp16"), 0);
    assert_string_equal(cairn__transform_skip_reason("a.bias", CAIRN_DT_F32, 1, &o), "bias");
    assert_string_equal(cairn__transform_skip_reason("x.LayerNorm.weight", CAIRN_DT_F32, 2, &o),
                        "normalisation parameter");
    assert_string_equal(cairn__transform_skip_reason("x.w", CAIRN_DT_F32, 2, &o), "not a weight");
    assert_string_equal(cairn__transform_skip_reason("x.weight", CAIRN_DT_F32, 1, &o),
                        "fewer than 2 dimensions");
    assert_string_equal(cairn__transform_skip_reason("x.weight", CAIRN_DT_I8, 2, &o),
                        "not a float tensor");
    assert_string_equal(cairn__transform_skip_reason("x.weight", CAIRN_DT_F16, 2, &o),
                        "already F16");
    assert_string_equal(cairn__transform_skip_reason("x.weight_scale", CAIRN_DT_F32, 1, &o),
                        "not a weight");
    assert_null(cairn__transform_skip_reason("x.weight", CAIRN_DT_BF16, 4, &o));
    assert_null(cairn__transform_skip_reason("weight", CAIRN_DT_F32, 2, &o));
}

static void test_opts(void **state)
{
    (void)state;
    struct cairn_transform_opts o;
    assert_int_equal(cairn_transform_opts_quantize(&o, "int8"), 0);
    assert_int_equal(o.target, CAIRN_QUANT_INT8);
    assert_int_equal(cairn_transform_opts_quantize(&o, "int4"), CAIRN_EINVALID);
    assert_non_null(strstr(cairn_error_last(), "'int4'"));
    assert_int_equal(cairn_transform_opts_quantize(&o, NULL), CAIRN_EINVALID);
    assert_int_equal(cairn_transform_opts_prune(&o, "0.25", 1), 0);
    assert_true(o.sparsity == 0.25 && o.structured == 1 && o.op == CAIRN_TRANSFORM_PRUNE);
    assert_int_equal(cairn_transform_opts_prune(&o, "1", 0), 0);
    const char *bad[] = { "", "1.5", "-0.1", "abc", "0.5x", "nan", "inf", " 0.5", "-0", "1e400" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (cairn_transform_opts_prune(&o, bad[i], 0) != CAIRN_EINVALID)
            fail_msg("sparsity '%s' accepted", bad[i]);
}

static void test_int8(void **state)
{
    (void)state;
    struct cairn_transform_opts o;
    struct cairn_transform_report r;
    struct cairn_tensor_table t = { 0 };
    struct cairn_buf file = CAIRN_BUF_INIT;
    assert_int_equal(cairn_transform_opts_quantize(&o, "int8"), 0);
    if (cairn_transform_file(&r, src, dst, &o) < 0)
        fail_msg("%s", cairn_error_last());
    assert_no_temp_files();
    read_st(&file, &t, dst);

    assert_string_equal(meta(&t, "cairn.quantization"), "int8-per-row-symmetric");
    assert_string_equal(meta(&t, "cairn.arch"), "mlp");
    assert_string_equal(meta(&t, "cairn.pruning"), "old");
    /* Weight then scale, in the input's order. */
    const char *names[] = { "layers.0.weight", "layers.0.weight_scale", "layers.0.bias",
                            "layers.1.weight", "layers.1.weight_scale", "layers.1.bias",
                            "norm.weight",     "layer_norm.weight",     "emb.weight",
                            "proj.weight",     "proj.weight_scale" };
    assert_int_equal(t.count, sizeof(names) / sizeof(names[0]));
    for (size_t i = 0; i < t.count; i++)
        assert_string_equal(t.tensors[i].name, names[i]);

    const struct cairn_tensor *q = &t.tensors[0], *s = &t.tensors[1];
    assert_int_equal(q->dtype, CAIRN_DT_I8);
    assert_int_equal(s->dtype, CAIRN_DT_F32);
    assert_int_equal(s->rank, 1);
    assert_int_equal(s->shape[0], 4);
    for (size_t row = 0; row < 4; row++) {
        float sc = f32_at(&file, s, row);
        for (size_t c = 0; c < 3; c++) {
            float v = (float)(int8_t)file.ptr[q->start + row * 3 + c] * sc;
            assert_true(fabsf(v - w0[row * 3 + c]) <= sc / 2 * 1.000001f);
        }
    }
    /* fp16 input weights quantise from their own values. */
    q = &t.tensors[3];
    s = &t.tensors[4];
    for (size_t i = 0; i < 8; i++) {
        float sc = f32_at(&file, s, i / 4);
        float v = (float)(int8_t)file.ptr[q->start + i] * sc;
        assert_true(fabsf(v - cairn_fp16_to_fp32(cairn_fp32_to_fp16(w1f[i]))) <=
                    sc / 2 * 1.000001f);
    }
    /* Biases, norms and integer tensors are bit-identical. */
    assert_memory_equal(file.ptr + t.tensors[2].start, b0, sizeof(b0));
    assert_memory_equal(file.ptr + t.tensors[6].start, nrm, sizeof(nrm));
    assert_memory_equal(file.ptr + t.tensors[7].start, ln, sizeof(ln));
    assert_memory_equal(file.ptr + t.tensors[8].start, emb, sizeof(emb));

    /* The report. */
    assert_string_equal(r.mode, "int8-per-row-symmetric");
    assert_int_equal(r.count, 8);
    assert_int_equal(r.changed, 3);
    assert_int_equal(r.file_bytes_after, file.len);
    assert_int_equal(r.data_bytes_before, 48 + 16 + 16 + 8 + 16 + 16 + 16 + 12);
    assert_int_equal(r.data_bytes_after, (12 + 16) + 16 + (8 + 8) + 8 + 16 + 16 + 16 + (6 + 12));
    assert_string_equal(rep_of(&r, "layers.0.bias")->reason, "bias");
    assert_string_equal(rep_of(&r, "norm.weight")->reason, "normalisation parameter");
    assert_string_equal(rep_of(&r, "layer_norm.weight")->reason, "normalisation parameter");
    assert_string_equal(rep_of(&r, "emb.weight")->reason, "not a float tensor");
    const struct cairn_tensor_report *tr = rep_of(&r, "layers.0.weight");
    assert_null(tr->reason);
    assert_string_equal(tr->action, "int8");
    assert_string_equal(tr->dtype_after, "I8");
    assert_int_equal(tr->bytes_after, 12 + 16);
    assert_true(tr->max_abs_error > 0 && tr->max_abs_error <= r.max_abs_error);

    /* JSON report parses and carries the per-tensor rows. */
    struct cairn_buf js = CAIRN_BUF_INIT;
    json_error_t je;
    assert_int_equal(cairn_transform_report_json(&js, &r), 0);
    json_t *root = json_loads(js.ptr, 0, &je);
    assert_non_null(root);
    assert_string_equal(json_string_value(json_object_get(root, "mode")), "int8-per-row-symmetric");
    assert_int_equal(json_integer_value(json_object_get(root, "changed")), 3);
    assert_int_equal(json_integer_value(json_object_get(root, "kept")), 5);
    json_t *arr = json_object_get(root, "tensors");
    assert_int_equal(json_array_size(arr), 8);
    assert_true(json_is_null(json_object_get(json_array_get(arr, 0), "reason")));
    assert_string_equal(json_string_value(json_object_get(json_array_get(arr, 1), "reason")),
                        "bias");
    json_decref(root);
    cairn_buf_release(&js);

    cairn_transform_report_release(&r);
    cairn_transform_report_release(&r); /* idempotent */
    cairn_transform_report_release(NULL);
    cairn_tensor_table_release(&t);
    cairn_buf_release(&file);
}

static void test_fp16_bf16(void **state)
{
    (void)state;
    struct cairn_transform_opts o;
    struct cairn_transform_report r;
    struct cairn_tensor_table t = { 0 };
    struct cairn_buf file = CAIRN_BUF_INIT;

    assert_int_equal(cairn_transform_opts_quantize(&o, "fp16"), 0);
    if (cairn_transform_file(&r, src, dst, &o) < 0)
        fail_msg("%s", cairn_error_last());
    read_st(&file, &t, dst);
    assert_string_equal(meta(&t, "cairn.quantization"), "fp16");
    assert_int_equal(t.count, 8);
    const struct cairn_tensor *x = cairn_tensor_table_find(&t, "layers.0.weight");
    assert_int_equal(x->dtype, CAIRN_DT_F16);
    for (size_t i = 0; i < 12; i++)
        assert_true(cairn_quant_load(file.ptr + x->start, CAIRN_QF_F16, i) ==
                    cairn_fp16_to_fp32(cairn_fp32_to_fp16(w0[i])));
    /* Already fp16: untouched. bf16 converted. Bias stays F32. */
    assert_string_equal(rep_of(&r, "layers.1.weight")->reason, "already F16");
    assert_memory_equal(file.ptr + cairn_tensor_table_find(&t, "layers.1.weight")->start, w1,
                        sizeof(w1));
    x = cairn_tensor_table_find(&t, "proj.weight");
    assert_int_equal(x->dtype, CAIRN_DT_F16);
    for (size_t i = 0; i < 6; i++)
        assert_true(cairn_quant_load(file.ptr + x->start, CAIRN_QF_F16, i) ==
                    cairn_bf16_to_fp32(cairn_fp32_to_bf16(pw[i])));
    assert_int_equal(cairn_tensor_table_find(&t, "layers.0.bias")->dtype, CAIRN_DT_F32);
    assert_int_equal(r.changed, 2);
    cairn_transform_report_release(&r);
    cairn_tensor_table_release(&t);

    /* bf16 in place (dst == src) on a copy. */
    char copy[160];
    snprintf(copy, sizeof(copy), "%s/copy.safetensors", dir);
    make_fixture(copy);
    assert_int_equal(cairn_transform_opts_quantize(&o, "bf16"), 0);
    if (cairn_transform_file(&r, copy, copy, &o) < 0)
        fail_msg("%s", cairn_error_last());
    read_st(&file, &t, copy);
    x = cairn_tensor_table_find(&t, "layers.0.weight");
    assert_int_equal(x->dtype, CAIRN_DT_BF16);
    assert_int_equal(cairn_tensor_table_find(&t, "layers.1.weight")->dtype, CAIRN_DT_BF16);
    assert_string_equal(rep_of(&r, "proj.weight")->reason, "already BF16");
    assert_int_equal(r.file_bytes_after, file.len);
    assert_true(r.data_bytes_after == r.data_bytes_before - 24);
    cairn_transform_report_release(&r);
    cairn_tensor_table_release(&t);
    cairn_buf_release(&file);
    assert_no_temp_files();
}

static void test_prune(void **state)
{
    (void)state;
    struct cairn_transform_opts o;
    struct cairn_transform_report r;
    struct cairn_tensor_table t = { 0 };
    struct cairn_buf file = CAIRN_BUF_INIT;

    assert_int_equal(cairn_transform_opts_prune(&o, "0.5", 0), 0);
    if (cairn_transform_file(&r, src, dst, &o) < 0)
        fail_msg("%s", cairn_error_last());
    read_st(&file, &t, dst);
    assert_string_equal(meta(&t, "cairn.pruning"), "magnitude-unstructured:0.5");
    assert_int_equal(t.count, 8);
    const struct cairn_tensor *x = cairn_tensor_table_find(&t, "layers.0.weight");
    size_t zeros = 0;
    for (size_t i = 0; i < 12; i++) {
        float v = f32_at(&file, x, i);
        if (v == 0.0f)
            zeros++;
        else
            assert_true(v == w0[i]);
    }
    assert_int_equal(zeros, 6);
    const struct cairn_tensor_report *tr = rep_of(&r, "layers.0.weight");
    assert_int_equal(tr->zeros_after, 6);
    assert_string_equal(tr->action, "pruned");
    assert_string_equal(tr->dtype_after, "F32");
    /* fp16 weights pruned in their own dtype: 4 of 8 zero. */
    x = cairn_tensor_table_find(&t, "layers.1.weight");
    assert_int_equal(x->dtype, CAIRN_DT_F16);
    zeros = 0;
    for (size_t i = 0; i < 8; i++)
        zeros += cairn_quant_load(file.ptr + x->start, CAIRN_QF_F16, i) == 0.0f;
    assert_int_equal(zeros, 4);
    assert_int_equal(r.file_bytes_after, file.len);
    assert_int_equal(r.data_bytes_after, r.data_bytes_before);
    cairn_transform_report_release(&r);
    cairn_tensor_table_release(&t);

    /* Structured: half the output rows of each weight, whole. */
    assert_int_equal(cairn_transform_opts_prune(&o, "0.5", 1), 0);
    if (cairn_transform_file(&r, src, dst, &o) < 0)
        fail_msg("%s", cairn_error_last());
    read_st(&file, &t, dst);
    assert_string_equal(meta(&t, "cairn.pruning"), "magnitude-structured:0.5");
    x = cairn_tensor_table_find(&t, "layers.0.weight");
    size_t zero_rows = 0;
    for (size_t row = 0; row < 4; row++) {
        size_t z = 0;
        for (size_t c = 0; c < 3; c++)
            z += f32_at(&file, x, row * 3 + c) == 0.0f;
        if (z == 3)
            zero_rows++;
        else
            for (size_t c = 0; c < 3; c++)
                assert_true(f32_at(&file, x, row * 3 + c) == w0[row * 3 + c]);
    }
    assert_int_equal(zero_rows, 2);
    cairn_transform_report_release(&r);
    cairn_tensor_table_release(&t);
    cairn_buf_release(&file);
}

static void assert_dst_unchanged(const char *what)
{
    struct cairn_buf b = CAIRN_BUF_INIT;
    assert_int_equal(cairn_fs_read_file(&b, dst, 1 << 20), 0);
    if (b.len != 8 || memcmp(b.ptr, "sentinel", 8))
        fail_msg("%s: destination was modified", what);
    cairn_buf_release(&b);
    assert_no_temp_files();
}

static void test_hostile_inputs(void **state)
{
    (void)state;
    struct cairn_transform_opts o;
    struct cairn_transform_report r;
    char bad[160];
    snprintf(bad, sizeof(bad), "%s/bad.safetensors", dir);
    assert_int_equal(cairn_fs_write_atomic(dst, "sentinel", 8, 0644), 0);
    assert_int_equal(cairn_transform_opts_quantize(&o, "int8"), 0);

    /* Not safetensors at all, empty, a header length past the end, truncated data. */
    const char *blobs[] = { "hello world, not a model", "", "\xff\xff\xff\xff\x00\x00\x00\x00{}" };
    const size_t lens[] = { 24, 0, 10 };
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(cairn_fs_write_atomic(bad, blobs[i], lens[i], 0644), 0);
        assert_int_equal(cairn_transform_file(&r, bad, dst, &o), CAIRN_EINVALID);
        assert_non_null(strstr(cairn_error_last(), "bad.safetensors"));
        cairn_transform_report_release(&r);
        assert_dst_unchanged("garbage");
    }
    struct cairn_buf file = CAIRN_BUF_INIT;
    assert_int_equal(cairn_fs_read_file(&file, src, 1 << 20), 0);
    assert_int_equal(cairn_fs_write_atomic(bad, file.ptr, file.len - 5, 0644), 0);
    assert_int_equal(cairn_transform_file(&r, bad, dst, &o), CAIRN_EINVALID);
    cairn_transform_report_release(&r);
    assert_dst_unchanged("truncated");
    cairn_buf_release(&file);

    /* A file that does not exist. */
    assert_int_equal(cairn_transform_file(&r, "/nonexistent/x.safetensors", dst, &o), CAIRN_ERROR);
    cairn_transform_report_release(&r);

    /* A NaN in a weight has no int8 scale: refused, naming the tensor. */
    float w[4] = { 1.0f, NAN, 2.0f, 3.0f };
    const struct spec nan_t[] = { { "a.weight", "F32", 2, { 2, 2 }, w, sizeof(w) } };
    write_st(bad, nan_t, 1, NULL);
    assert_int_equal(cairn_transform_file(&r, bad, dst, &o), CAIRN_EINVALID);
    assert_non_null(strstr(cairn_error_last(), "'a.weight'"));
    cairn_transform_report_release(&r);
    assert_dst_unchanged("nan");

    /* The scale's name is taken already. */
    float s[2] = { 1.0f, 1.0f };
    w[1] = 0.5f;
    const struct spec clash[] = { { "a.weight", "F32", 2, { 2, 2 }, w, sizeof(w) },
                                  { "a.weight_scale", "F32", 1, { 2 }, s, sizeof(s) } };
    write_st(bad, clash, 2, NULL);
    assert_int_equal(cairn_transform_file(&r, bad, dst, &o), CAIRN_EINVALID);
    assert_non_null(strstr(cairn_error_last(), "a.weight_scale"));
    cairn_transform_report_release(&r);
    assert_dst_unchanged("clash");

    /* Bad options are refused before anything is read. */
    o.target = 42;
    assert_int_equal(cairn_transform_file(&r, src, dst, &o), CAIRN_EINVALID);
    cairn_transform_report_release(&r);
    o.op = CAIRN_TRANSFORM_PRUNE;
    o.sparsity = 2.0;
    assert_int_equal(cairn_transform_file(&r, src, dst, &o), CAIRN_EINVALID);
    cairn_transform_report_release(&r);
    assert_dst_unchanged("options");
}

static void test_empty_file(void **state)
{
    (void)state;
    /* No tensors at all: a valid file, nothing to do, metadata still written. */
    struct cairn_transform_opts o;
    struct cairn_transform_report r;
    struct cairn_tensor_table t = { 0 };
    struct cairn_buf file = CAIRN_BUF_INIT;
    char e[160];
    snprintf(e, sizeof(e), "%s/empty.safetensors", dir);
    write_st(e, NULL, 0, NULL);
    assert_int_equal(cairn_transform_opts_prune(&o, "0.9", 0), 0);
    if (cairn_transform_file(&r, e, dst, &o) < 0)
        fail_msg("%s", cairn_error_last());
    read_st(&file, &t, dst);
    assert_int_equal(t.count, 0);
    assert_string_equal(meta(&t, "cairn.pruning"), "magnitude-unstructured:0.9");
    assert_int_equal(r.count, 0);
    assert_int_equal(r.file_bytes_after, file.len);
    cairn_transform_report_release(&r);
    cairn_tensor_table_release(&t);
    cairn_buf_release(&file);
}

/*
 * GGUF: a v3 file written here by hand (a string, an array and the
 * alignment among its metadata, a weight of 64 x 3 F32, a norm, a weight
 * whose rows are not whole Q8_0 blocks, and a leftover cairn key), then
 * quantised to int8 (Q8_0) and to fp16 and pruned, and read back with the
 * library's parser.
 */
static void gstr(struct cairn_buf *b, const char *s)
{
    assert_int_equal(cairn_buf_put_u64le(b, strlen(s)), 0);
    assert_int_equal(cairn_buf_put(b, s, strlen(s)), 0);
}

static float gw[192], gn[8], godd[40];

static void write_gguf(const char *path)
{
    struct cairn_buf b = CAIRN_BUF_INIT;
    struct {
        const char *name;
        uint32_t nd;
        uint64_t dims[2];
        const float *data;
        size_t n;
    } t[] = {
        { "blk.0.ffn_up.weight", 2, { 64, 3 }, gw, 192 },
        { "blk.0.attn_norm.weight", 1, { 8 }, gn, 8 },
        { "blk.0.odd.weight", 2, { 20, 2 }, godd, 40 },
    };
    uint64_t off = 0;
    for (int i = 0; i < 192; i++)
        gw[i] = (float)((i * 29) % 23 - 11) * 0.01f + (i == 5 ? 0.5f : 0.0f);
    for (int i = 0; i < 8; i++)
        gn[i] = 1.0f + (float)i;
    for (int i = 0; i < 40; i++)
        godd[i] = (float)i * 0.125f;
    assert_int_equal(cairn_buf_put(&b, "GGUF", 4), 0);
    assert_int_equal(cairn_buf_put_u32le(&b, 3), 0);
    assert_int_equal(cairn_buf_put_u64le(&b, 3), 0);
    assert_int_equal(cairn_buf_put_u64le(&b, 4), 0);
    gstr(&b, "general.architecture");
    assert_int_equal(cairn_buf_put_u32le(&b, 8), 0);
    gstr(&b, "llama");
    gstr(&b, "cairn.quantization");
    assert_int_equal(cairn_buf_put_u32le(&b, 8), 0);
    gstr(&b, "stale");
    gstr(&b, "tokenizer.ggml.scores");
    assert_int_equal(cairn_buf_put_u32le(&b, 9), 0);
    assert_int_equal(cairn_buf_put_u32le(&b, 6), 0);
    assert_int_equal(cairn_buf_put_u64le(&b, 2), 0);
    assert_int_equal(cairn_buf_put_u32le(&b, 0x3f800000), 0);
    assert_int_equal(cairn_buf_put_u32le(&b, 0x40000000), 0);
    gstr(&b, "general.alignment");
    assert_int_equal(cairn_buf_put_u32le(&b, 4), 0);
    assert_int_equal(cairn_buf_put_u32le(&b, 64), 0);
    for (int i = 0; i < 3; i++) {
        gstr(&b, t[i].name);
        assert_int_equal(cairn_buf_put_u32le(&b, t[i].nd), 0);
        for (uint32_t d = 0; d < t[i].nd; d++)
            assert_int_equal(cairn_buf_put_u64le(&b, t[i].dims[d]), 0);
        assert_int_equal(cairn_buf_put_u32le(&b, 0), 0); /* F32 */
        assert_int_equal(cairn_buf_put_u64le(&b, off), 0);
        off += (t[i].n * 4 + 63) / 64 * 64;
    }
    while (b.len % 64)
        assert_int_equal(cairn_buf_putc(&b, 0), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(cairn_buf_put(&b, t[i].data, t[i].n * 4), 0);
        while (b.len % 64)
            assert_int_equal(cairn_buf_putc(&b, 0), 0);
    }
    assert_int_equal(cairn_fs_write_atomic(path, b.ptr, b.len, 0644), 0);
    cairn_buf_release(&b);
}

static void read_gguf(struct cairn_buf *file, struct cairn_tensor_table *t, const char *path)
{
    cairn_buf_clear(file);
    assert_int_equal(cairn_fs_read_file(file, path, 1 << 20), 0);
    if (cairn_gguf_parse(t, file->ptr, file->len, file->len) != 0)
        fail_msg("output does not parse: %s", cairn_error_last());
}

/* How often `needle` occurs in the file: metadata keys are kept verbatim. */
static int count_of(const struct cairn_buf *file, const char *needle)
{
    int n = 0;
    for (size_t i = 0; i + strlen(needle) <= file->len; i++)
        n += !memcmp(file->ptr + i, needle, strlen(needle));
    return n;
}

static void test_gguf(void **state)
{
    (void)state;
    struct cairn_transform_opts o;
    struct cairn_transform_report r;
    struct cairn_tensor_table t = { 0 };
    struct cairn_buf file = CAIRN_BUF_INIT;
    const struct cairn_tensor *x;
    char g[160], go[160];
    snprintf(g, sizeof(g), "%s/m.gguf", dir);
    snprintf(go, sizeof(go), "%s/out.gguf", dir);
    write_gguf(g);

    /* int8: Q8_0 blocks, each element within half its block's scale. */
    assert_int_equal(cairn_transform_opts_quantize(&o, "int8"), 0);
    if (cairn_transform_file(&r, g, go, &o) < 0)
        fail_msg("%s", cairn_error_last());
    read_gguf(&file, &t, go);
    assert_int_equal(t.count, 3);
    x = cairn_tensor_table_find(&t, "blk.0.ffn_up.weight");
    assert_int_equal(x->dtype, CAIRN_DT_Q8_0);
    assert_int_equal(x->end - x->start, 192 / 32 * 34);
    assert_int_equal(x->start % 64, 0);
    double worst = 0;
    for (int blk = 0; blk < 6; blk++) {
        const unsigned char *p = (const unsigned char *)file.ptr + x->start + blk * 34;
        float d = cairn_fp16_to_fp32((uint16_t)(p[0] | p[1] << 8));
        for (int i = 0; i < 32; i++) {
            float w = gw[blk * 32 + i], back = (float)(int8_t)p[2 + i] * d;
            assert_true(fabsf(w - back) <= d / 2 * 1.0001f);
            if (fabs(w - back) > worst)
                worst = fabs(w - back);
        }
    }
    assert_true(rep_of(&r, "blk.0.ffn_up.weight")->max_abs_error >= worst * 0.999);
    assert_string_equal(rep_of(&r, "blk.0.ffn_up.weight")->dtype_after, "Q8_0");
    /* The norm and the weight with rows of 20 are kept, bit for bit. */
    x = cairn_tensor_table_find(&t, "blk.0.attn_norm.weight");
    assert_int_equal(x->dtype, CAIRN_DT_F32);
    assert_memory_equal(file.ptr + x->start, gn, sizeof(gn));
    x = cairn_tensor_table_find(&t, "blk.0.odd.weight");
    assert_int_equal(x->dtype, CAIRN_DT_F32);
    assert_memory_equal(file.ptr + x->start, godd, sizeof(godd));
    assert_string_equal(rep_of(&r, "blk.0.odd.weight")->reason, "rows not whole Q8_0 blocks of 32");
    /* Metadata kept verbatim, the cairn key replaced, not repeated. */
    assert_int_equal(count_of(&file, "tokenizer.ggml.scores"), 1);
    assert_int_equal(count_of(&file, "cairn.quantization"), 1);
    assert_int_equal(count_of(&file, "int8-q8_0"), 1);
    assert_int_equal(count_of(&file, "stale"), 0);
    assert_int_equal(r.file_bytes_after, file.len);
    cairn_transform_report_release(&r);
    cairn_tensor_table_release(&t);

    /* fp16: sizes halve, values round to nearest even. */
    assert_int_equal(cairn_transform_opts_quantize(&o, "fp16"), 0);
    if (cairn_transform_file(&r, g, go, &o) < 0)
        fail_msg("%s", cairn_error_last());
    read_gguf(&file, &t, go);
    x = cairn_tensor_table_find(&t, "blk.0.odd.weight");
    assert_int_equal(x->dtype, CAIRN_DT_F16);
    for (int i = 0; i < 40; i++) {
        const unsigned char *p = (const unsigned char *)file.ptr + x->start + 2 * i;
        assert_int_equal(p[0] | p[1] << 8, cairn_fp32_to_fp16(godd[i]));
    }
    cairn_transform_report_release(&r);
    cairn_tensor_table_release(&t);

    /* Structured pruning: a GGUF row is shape[0] contiguous elements. */
    assert_int_equal(cairn_transform_opts_prune(&o, "0.5", 1), 0);
    if (cairn_transform_file(&r, g, go, &o) < 0)
        fail_msg("%s", cairn_error_last());
    read_gguf(&file, &t, go);
    x = cairn_tensor_table_find(&t, "blk.0.odd.weight");
    {
        const float *v = (const float *)(file.ptr + x->start);
        int zero_rows = 0;
        for (int row = 0; row < 2; row++) {
            int z = 1;
            for (int i = 0; i < 20; i++)
                z &= v[row * 20 + i] == 0.0f;
            zero_rows += z;
        }
        assert_int_equal(zero_rows, 1);
        assert_true(v[20 + 19] == godd[39]); /* the larger row survives */
    }
    cairn_transform_report_release(&r);
    cairn_tensor_table_release(&t);
    cairn_buf_release(&file);
    assert_no_temp_files();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_skip_rules),
        cmocka_unit_test(test_opts),
        cmocka_unit_test_setup_teardown(test_int8, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fp16_bf16, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prune, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_inputs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gguf, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
