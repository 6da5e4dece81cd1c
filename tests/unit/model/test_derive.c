/*
 * Unit tests for lib/model/derive.c: derive versions in a scratch
 * repository and check what was committed (parent, the derived edge and
 * its detail, params, the size_bytes metric, carried-over files) and that
 * refused requests (sparsity 0 or 1, a version without a tensor file)
 * commit nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cairn/common.h"
#include "cairn/model.h"
#include "cairn/registry.h"
#include "cairn/repo.h"
#include "util/buf.h"
#include "util/fs.h"

struct fx {
    char dir[64];
    struct cairn_repo *repo;
};

/* A 2x2 F32 weight and its bias, with the bytes written by hand. */
static void write_model(const char *path)
{
    static const char hdr[] =
        "{\"l.weight\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
        "\"l.bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[16,24]}}";
    struct cairn_buf b = CAIRN_BUF_INIT;
    float v[6] = { 1.0f, -0.5f, 0.25f, 2.0f, 0.1f, -0.1f };
    size_t hl = strlen(hdr), pad = (8 - hl % 8) % 8;
    assert_int_equal(cairn_buf_put_u64le(&b, hl + pad), 0);
    assert_int_equal(cairn_buf_puts(&b, hdr), 0);
    for (size_t i = 0; i < pad; i++)
        assert_int_equal(cairn_buf_putc(&b, ' '), 0);
    assert_int_equal(cairn_buf_put(&b, v, sizeof(v)), 0);
    assert_int_equal(cairn_fs_write_atomic(path, b.ptr, b.len, 0644), 0);
    cairn_buf_release(&b);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct cairn_buf p = CAIRN_BUF_INIT;
    struct cairn_commit_opts co = { 0 };
    struct cairn_version v;
    const char *tmp = getenv("TMPDIR");
    snprintf(f->dir, sizeof(f->dir), "%s/derive-XXXXXX", tmp && strlen(tmp) < 40 ? tmp : "/tmp");
    assert_non_null(mkdtemp(f->dir));
    assert_int_equal(cairn_repo_init(f->dir), 0);
    assert_int_equal(cairn_repo_open(&f->repo, f->dir), 0);
    /* m@v1: a model and a text file; docs@v1: no tensor file. */
    assert_int_equal(cairn_buf_printf(&p, "%s/src", f->dir), 0);
    assert_int_equal(cairn_fs_mkdir_p(p.ptr), 0);
    assert_int_equal(cairn_buf_puts(&p, "/model.safetensors"), 0);
    write_model(p.ptr);
    cairn_buf_clear(&p);
    assert_int_equal(cairn_buf_printf(&p, "%s/src/notes.txt", f->dir), 0);
    assert_int_equal(cairn_fs_write_atomic(p.ptr, "hi\n", 3, 0644), 0);
    cairn_buf_clear(&p);
    assert_int_equal(cairn_buf_printf(&p, "%s/src", f->dir), 0);
    co.model = "m";
    co.message = "fp32";
    co.from_dir = p.ptr;
    assert_int_equal(cairn_repo_commit(f->repo, &co, &v), 0);
    cairn_version_release(&v);
    cairn_buf_clear(&p);
    assert_int_equal(cairn_buf_printf(&p, "%s/docs", f->dir), 0);
    assert_int_equal(cairn_fs_mkdir_p(p.ptr), 0);
    assert_int_equal(cairn_buf_puts(&p, "/a.txt"), 0);
    assert_int_equal(cairn_fs_write_atomic(p.ptr, "x", 1, 0644), 0);
    cairn_buf_clear(&p);
    assert_int_equal(cairn_buf_printf(&p, "%s/docs", f->dir), 0);
    co.model = "docs";
    co.from_dir = p.ptr;
    assert_int_equal(cairn_repo_commit(f->repo, &co, &v), 0);
    cairn_version_release(&v);
    cairn_buf_release(&p);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    cairn_repo_free(f->repo);
    cairn_fs_rm_rf(f->dir);
    free(f);
    return 0;
}

struct edge_seen {
    int derived;
    char detail[64];
    cairn_oid target;
};

static int edge_cb(const struct cairn_lineage_edge *e, void *payload)
{
    struct edge_seen *s = payload;
    if (!strcmp(e->kind, "derived")) {
        s->derived++;
        snprintf(s->detail, sizeof(s->detail), "%s", e->detail ? e->detail : "");
        s->target = e->target;
    }
    return 0;
}

static void test_quantize_int8(void **state)
{
    struct fx *f = *state;
    struct cairn_derive_opts o = { 0 };
    struct cairn_derive_result r;
    struct cairn_values params = { 0 }, metrics = { 0 };
    struct edge_seen seen = { 0 };
    const struct cairn_value *kv;
    struct cairn_buf json = CAIRN_BUF_INIT;

    o.ref = "m@v1";
    o.tmpdir = f->dir;
    assert_int_equal(cairn_transform_opts_quantize(&o.transform, "int8"), 0);
    assert_int_equal(cairn_model_derive(&r, f->repo, &o), 0);
    assert_string_equal(r.version.model, "m");
    assert_int_equal(r.version.number, 2);
    assert_string_equal(r.version.message, "quantize m@v1 to int8");
    assert_true(r.version.has_parent);
    assert_memory_equal(&r.version.parent, &r.source.id, sizeof(cairn_oid));
    assert_string_equal(r.detail, "quantize int8");
    assert_int_equal(r.nfiles, 1);
    assert_int_equal(r.copied, 1);
    assert_string_equal(r.files[0].path, "model.safetensors");
    assert_int_equal(r.files[0].report.changed, 1);
    /* The header grows by the scale tensor; the data shrinks. */
    assert_true(r.files[0].report.data_bytes_after < r.files[0].report.data_bytes_before);
    assert_int_equal(r.version.raw_size, r.raw_after);
    /* Half a step of 2/127 at most. */
    assert_true(r.max_abs_error > 0 && r.max_abs_error <= 1.0 / 127 + 1e-6);

    assert_int_equal(
        cairn_registry_lineage(cairn_repo_registry(f->repo), &r.version.id, edge_cb, &seen), 0);
    assert_int_equal(seen.derived, 1);
    assert_string_equal(seen.detail, "quantize int8");
    assert_memory_equal(&seen.target, &r.source.id, sizeof(cairn_oid));

    assert_int_equal(cairn_registry_params(cairn_repo_registry(f->repo), &r.version.id, &params),
                     0);
    assert_non_null(kv = cairn_values_get(&params, "derived.method"));
    assert_string_equal(kv->string, "quantize");
    assert_non_null(kv = cairn_values_get(&params, "derived.to"));
    assert_string_equal(kv->string, "int8");
    assert_non_null(kv = cairn_values_get(&params, "derived.from"));
    assert_string_equal(kv->string, "m@v1");
    assert_int_equal(cairn_registry_metrics(cairn_repo_registry(f->repo), &r.version.id, &metrics),
                     0);
    assert_int_equal(metrics.count, 1);
    assert_string_equal(metrics.items[0].name, "size_bytes");
    assert_true(metrics.items[0].number == (double)r.raw_after);

    assert_int_equal(cairn_derive_result_json(&json, &r), 0);
    assert_non_null(strstr(json.ptr, "\"detail\": \"quantize int8\""));
    assert_non_null(strstr(json.ptr, "\"ref\": \"m@v2\""));

    cairn_buf_release(&json);
    cairn_values_release(&params);
    cairn_values_release(&metrics);
    cairn_derive_result_release(&r);
    cairn_derive_result_release(&r); /* empty afterwards: a second release is harmless */
}

static void test_prune_detail_and_params(void **state)
{
    struct fx *f = *state;
    struct cairn_derive_opts o = { 0 };
    struct cairn_derive_result r;
    struct cairn_values params = { 0 };
    const struct cairn_value *kv;

    o.ref = "m@v1";
    o.tmpdir = f->dir;
    o.message = "pruned";
    assert_int_equal(cairn_transform_opts_prune(&o.transform, "0.5", 1), 0);
    assert_int_equal(cairn_model_derive(&r, f->repo, &o), 0);
    assert_string_equal(r.detail, "prune magnitude-structured 0.5");
    assert_string_equal(r.version.message, "pruned");
    assert_int_equal(r.files[0].report.zeros_after, 2); /* one of two rows of the 2x2 weight */
    assert_int_equal(cairn_registry_params(cairn_repo_registry(f->repo), &r.version.id, &params),
                     0);
    assert_non_null(kv = cairn_values_get(&params, "derived.sparsity"));
    assert_true(kv->type == CAIRN_VALUE_NUMBER && kv->number == 0.5);
    assert_non_null(kv = cairn_values_get(&params, "derived.structured"));
    assert_true(kv->type == CAIRN_VALUE_BOOL && kv->boolean == 1);
    cairn_values_release(&params);
    cairn_derive_result_release(&r);
}

static void test_refused(void **state)
{
    struct fx *f = *state;
    struct cairn_derive_opts o = { 0 };
    struct cairn_derive_result r;
    struct cairn_version latest;

    o.ref = "m@v1";
    o.tmpdir = f->dir;
    assert_int_equal(cairn_transform_opts_prune(&o.transform, "0", 0), 0);
    assert_int_equal(cairn_model_derive(&r, f->repo, &o), CAIRN_EINVALID);
    cairn_derive_result_release(&r);
    assert_int_equal(cairn_transform_opts_prune(&o.transform, "1", 0), 0);
    assert_int_equal(cairn_model_derive(&r, f->repo, &o), CAIRN_EINVALID);
    cairn_derive_result_release(&r);
    o.ref = "docs";
    assert_int_equal(cairn_transform_opts_quantize(&o.transform, "fp16"), 0);
    assert_int_equal(cairn_model_derive(&r, f->repo, &o), CAIRN_EINVALID);
    assert_non_null(strstr(cairn_error_last(), "no *.safetensors or *.gguf file"));
    cairn_derive_result_release(&r);
    o.ref = "nosuch";
    assert_int_equal(cairn_model_derive(&r, f->repo, &o), CAIRN_ENOTFOUND);
    cairn_derive_result_release(&r);
    assert_int_equal(cairn_repo_resolve(f->repo, "docs", &latest), 0);
    assert_int_equal(latest.number, 1);
    cairn_version_release(&latest);
    assert_int_equal(cairn_repo_resolve(f->repo, "m", &latest), 0);
    assert_int_equal(latest.number, 1);
    cairn_version_release(&latest);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_quantize_int8, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prune_detail_and_params, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
