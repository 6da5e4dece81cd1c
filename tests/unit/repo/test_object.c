/*
 * Unit tests for lib/repo/object.c: file and tree objects round trip, and
 * every kind of damage a hostile manifest can carry is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "repo/object.h"
#include "store/layout.h"
#include "util/hash.h"

static void make_file(struct cairn_file_object *f)
{
    cairn_oid id;
    struct cairn_file_region r1 = { 0 }, r2 = { 0 };
    memset(f, 0, sizeof(*f));
    f->size = 300;
    f->format = CAIRN_FORMAT_SAFETENSORS;
    cairn_hash(&f->digest, "x", 1);
    for (int i = 0; i < 3; i++) {
        cairn_hash(&id, &i, sizeof(i));
        assert_int_equal(cairn_file_object_add_chunk(f, &id, 100), 0);
    }
    r1.kind = CAIRN_REGION_OPAQUE;
    r1.offset = 0;
    r1.len = 100;
    r1.first_chunk = 0;
    r1.nchunks = 1;
    r2.kind = CAIRN_REGION_TENSOR;
    r2.name = "layers.0.weight";
    r2.dtype = CAIRN_DT_BF16;
    r2.group = 2;
    r2.offset = 100;
    r2.len = 200;
    r2.first_chunk = 1;
    r2.nchunks = 2;
    r2.rank = 2;
    r2.shape[0] = 10;
    r2.shape[1] = 10;
    assert_int_equal(cairn_file_object_add_region(f, &r1), 0);
    assert_int_equal(cairn_file_object_add_region(f, &r2), 0);
}

static void test_file_roundtrip(void **state)
{
    struct cairn_file_object f, g;
    struct cairn_buf b = CAIRN_BUF_INIT, b2 = CAIRN_BUF_INIT;
    (void)state;
    make_file(&f);
    assert_int_equal(cairn_file_object_encode(&b, &f), 0);
    assert_int_equal(cairn_file_object_decode(&g, b.ptr, b.len), 0);
    assert_int_equal(g.size, 300);
    assert_int_equal(g.nchunks, 3);
    assert_int_equal(g.chunks[2].offset, 200);
    assert_int_equal(g.nregions, 2);
    assert_string_equal(g.regions[1].name, "layers.0.weight");
    assert_int_equal(g.regions[1].rank, 2);
    assert_non_null(cairn_file_object_region(&g, "layers.0.weight"));
    assert_null(cairn_file_object_region(&g, "nope"));
    /* Canonical: re-encoding gives the same bytes. */
    assert_int_equal(cairn_file_object_encode(&b2, &g), 0);
    assert_int_equal(b.len, b2.len);
    assert_memory_equal(b.ptr, b2.ptr, b.len);
    cairn_file_object_release(&f);
    cairn_file_object_release(&g);
    cairn_file_object_release(NULL);
    cairn_buf_release(&b);
    cairn_buf_release(&b2);
}

static void test_file_damage(void **state)
{
    struct cairn_file_object f, g;
    struct cairn_buf b = CAIRN_BUF_INIT;
    (void)state;
    make_file(&f);
    f.size = 301; /* chunk lengths no longer add up */
    assert_int_equal(cairn_file_object_encode(&b, &f), 0);
    assert_int_equal(cairn_file_object_decode(&g, b.ptr, b.len), CAIRN_ECORRUPT);
    cairn_buf_clear(&b);
    f.size = 300;
    f.regions[1].offset = 99; /* regions overlap */
    assert_int_equal(cairn_file_object_encode(&b, &f), 0);
    assert_int_equal(cairn_file_object_decode(&g, b.ptr, b.len), CAIRN_ECORRUPT);
    cairn_buf_clear(&b);
    f.regions[1].offset = 100;
    assert_int_equal(cairn_file_object_encode(&b, &f), 0);
    /* Every truncation is refused, never read past. */
    for (size_t n = 0; n < b.len; n++)
        assert_int_equal(cairn_file_object_decode(&g, b.ptr, n), CAIRN_ECORRUPT);
    /* Trailing bytes too. */
    cairn_buf_putc(&b, 0);
    assert_int_equal(cairn_file_object_decode(&g, b.ptr, b.len), CAIRN_ECORRUPT);
    cairn_file_object_release(&f);
    cairn_buf_release(&b);
}

static void test_tree_roundtrip_and_paths(void **state)
{
    struct cairn_tree t = { 0 }, u;
    struct cairn_buf b = CAIRN_BUF_INIT;
    size_t cap = 0;
    cairn_oid id;
    (void)state;
    cairn_hash(&id, "y", 1);
    assert_int_equal(cairn_tree_add(&t, &cap, "b/x.bin", 0644, 10, &id, &id), 0);
    assert_int_equal(cairn_tree_add(&t, &cap, "a.bin", 0755, 0, &id, &id), 0);
    assert_int_equal(cairn_tree_sort(&t), 0);
    assert_string_equal(t.entries[0].path, "a.bin");
    assert_int_equal(cairn_tree_encode(&b, &t), 0);
    assert_int_equal(cairn_tree_decode(&u, b.ptr, b.len), 0);
    assert_int_equal(u.n, 2);
    assert_int_equal(u.entries[0].mode, 0755);
    assert_non_null(cairn_tree_find(&u, "b/x.bin"));
    assert_null(cairn_tree_find(&u, "c"));
    cairn_tree_release(&u);
    for (size_t n = 0; n < b.len; n++)
        assert_int_equal(cairn_tree_decode(&u, b.ptr, n), CAIRN_ECORRUPT);
    /* Duplicates are refused when sorting. */
    assert_int_equal(cairn_tree_add(&t, &cap, "a.bin", 0644, 1, &id, &id), 0);
    assert_int_equal(cairn_tree_sort(&t), CAIRN_EINVALID);
    cairn_tree_release(&t);
    cairn_buf_release(&b);
}

/* A manifest from a remote may name any path; the unsafe ones never decode. */
static void test_tree_unsafe_paths(void **state)
{
    const char *bad[] = { "/etc/passwd", "../x", "a/../../x", "a//b", "./a", "a/", "a\\b" };
    cairn_oid id;
    (void)state;
    cairn_hash(&id, "z", 1);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct cairn_tree t = { 0 }, u;
        struct cairn_buf b = CAIRN_BUF_INIT;
        size_t cap = 0;
        assert_int_equal(cairn_tree_add(&t, &cap, bad[i], 0644, 1, &id, &id), 0);
        assert_int_equal(cairn_tree_encode(&b, &t), 0);
        assert_int_equal(cairn_tree_decode(&u, b.ptr, b.len), CAIRN_ECORRUPT);
        assert_non_null(strstr(cairn_error_last(), "unsafe path"));
        cairn_tree_release(&t);
        cairn_buf_release(&b);
    }
}

/* Only regular 0644 and 0755 are representable: 0777, setuid, dirs never decode. */
static void test_tree_modes(void **state)
{
    const uint32_t bad[] = { 0777, 04755, 0600, 0664, 0 };
    cairn_oid id;
    (void)state;
    cairn_hash(&id, "m", 1);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct cairn_tree t = { 0 }, u;
        struct cairn_buf b = CAIRN_BUF_INIT;
        size_t cap = 0;
        assert_int_equal(cairn_tree_add(&t, &cap, "run.sh", bad[i], 1, &id, &id), 0);
        assert_int_equal(cairn_tree_encode(&b, &t), 0);
        assert_int_equal(cairn_tree_decode(&u, b.ptr, b.len), CAIRN_ECORRUPT);
        assert_non_null(strstr(cairn_error_last(), "mode"));
        assert_non_null(strstr(cairn_error_last(), "'run.sh'"));
        cairn_tree_release(&t);
        cairn_buf_release(&b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_roundtrip),
        cmocka_unit_test(test_file_damage),
        cmocka_unit_test(test_tree_roundtrip_and_paths),
        cmocka_unit_test(test_tree_unsafe_paths),
        cmocka_unit_test(test_tree_modes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
