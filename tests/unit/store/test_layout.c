/*
 * Unit tests for lib/store/layout.c: regions cover a file exactly for
 * safetensors, GGUF (read through a file descriptor, including a header long
 * enough to need a second, longer read), damaged headers (one opaque region
 * and a warning), files that are not tensor files (no warning), empty files
 * and random bytes; piece sizes per dtype.
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
#include "store/layout.h"
#include "util/buf.h"

static int warnings;
static char last_warning[1024];

static void on_warn(const char *msg, void *payload)
{
    (void)payload;
    warnings++;
    snprintf(last_warning, sizeof(last_warning), "%s", msg);
}

static void check_cover(const struct cairn_layout *l, uint64_t file_size)
{
    uint64_t pos = 0;
    for (size_t i = 0; i < l->count; i++) {
        const struct cairn_region *r = &l->regions[i];
        assert_int_equal(r->offset, pos);
        assert_true(r->len > 0);
        if (r->kind == CAIRN_REGION_TENSOR) {
            assert_non_null(r->tensor);
            assert_int_equal(r->tensor->start, r->offset);
            assert_int_equal(r->tensor->end, r->offset + r->len);
            assert_true(r->unit > 0);
            assert_int_equal(cairn_layout_piece_size(r) % r->unit, 0);
        } else {
            assert_null(r->tensor);
            assert_int_equal(cairn_layout_piece_size(r), 0);
        }
        pos += r->len;
    }
    assert_int_equal(pos, file_size);
}

/* A safetensors image: two tensors out of order, a 4-byte gap, 3 trailing bytes. */
static void make_safetensors(struct cairn_buf *b)
{
    const char *json =
        "{\"w\":{\"dtype\":\"BF16\",\"shape\":[4,2],\"data_offsets\":[20,36]},"
        "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
        "\"z\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[36,36]}}";
    cairn_buf_init(b, 0);
    assert_int_equal(cairn_buf_put_u64le(b, strlen(json)), 0);
    assert_int_equal(cairn_buf_puts(b, json), 0);
    for (int i = 0; i < 39; i++)
        assert_int_equal(cairn_buf_putc(b, (char)i), 0);
}

static void test_safetensors_regions(void **state)
{
    (void)state;
    struct cairn_buf b;
    struct cairn_layout l;
    uint64_t hs;

    make_safetensors(&b);
    hs = b.len - 39;
    warnings = 0;
    assert_int_equal(cairn_layout_from_prefix(&l, "m.bin", b.ptr, b.len, b.len), 0);
    assert_int_equal(warnings, 0);
    assert_int_equal(l.format, CAIRN_FORMAT_SAFETENSORS);
    check_cover(&l, b.len);
    /* header | b | gap | w | trailing; the empty "z" has no region */
    assert_int_equal(l.count, 5);
    assert_int_equal(l.regions[0].kind, CAIRN_REGION_OPAQUE);
    assert_int_equal(l.regions[0].len, hs);
    assert_string_equal(l.regions[1].tensor->name, "b");
    assert_int_equal(l.regions[1].group, 4);
    assert_int_equal(l.regions[2].kind, CAIRN_REGION_OPAQUE);
    assert_int_equal(l.regions[2].len, 4);
    assert_string_equal(l.regions[3].tensor->name, "w");
    assert_int_equal(l.regions[3].group, 2);
    assert_int_equal(l.regions[3].unit, 2);
    assert_int_equal(l.regions[4].len, 3);
    assert_int_equal(l.table.count, 3);
    cairn_layout_release(&l);
    cairn_layout_release(NULL);

    /* The same header cut short in memory: damaged, warned, one region. */
    assert_int_equal(cairn_layout_from_prefix(&l, "m.safetensors", b.ptr, 40, b.len), 0);
    assert_int_equal(warnings, 1);
    assert_non_null(strstr(last_warning, "'m.safetensors': damaged safetensors header"));
    assert_non_null(strstr(last_warning, "falling back to generic chunking"));
    assert_int_equal(l.format, CAIRN_FORMAT_NONE);
    assert_int_equal(l.count, 1);
    check_cover(&l, b.len);
    cairn_layout_release(&l);
    cairn_buf_release(&b);
}

static void test_damaged_and_foreign(void **state)
{
    (void)state;
    unsigned char junk[4096];
    struct cairn_layout l;
    uint64_t seed = 12345;

    for (size_t i = 0; i < sizeof(junk); i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        junk[i] = (unsigned char)(seed >> 56);
    }
    /* Random bytes with a neutral name: not a tensor file, no warning. */
    junk[8] = 'x';
    warnings = 0;
    assert_int_equal(cairn_layout_from_prefix(&l, "data.bin", junk, sizeof(junk), sizeof(junk)), 0);
    assert_int_equal(warnings, 0);
    assert_int_equal(l.count, 1);
    check_cover(&l, sizeof(junk));
    cairn_layout_release(&l);
    /* The same bytes named .safetensors (N is absurd) and with a GGUF magic: warned. */
    assert_int_equal(
        cairn_layout_from_prefix(&l, "x.safetensors", junk, sizeof(junk), sizeof(junk)), 0);
    assert_int_equal(warnings, 1);
    check_cover(&l, sizeof(junk));
    cairn_layout_release(&l);
    memcpy(junk, "GGUF", 4);
    assert_int_equal(cairn_layout_from_prefix(&l, "x", junk, sizeof(junk), sizeof(junk)), 0);
    assert_int_equal(warnings, 2);
    assert_non_null(strstr(last_warning, "damaged GGUF header"));
    check_cover(&l, sizeof(junk));
    cairn_layout_release(&l);
    /* Structurally safetensors (length fits, then '{') but not JSON. */
    cairn_put_u64le(junk, 100);
    junk[8] = '{';
    assert_int_equal(cairn_layout_from_prefix(&l, "x", junk, sizeof(junk), sizeof(junk)), 0);
    assert_int_equal(warnings, 3);
    check_cover(&l, sizeof(junk));
    cairn_layout_release(&l);
    /* Empty and tiny files. */
    assert_int_equal(cairn_layout_from_prefix(&l, "e.safetensors", junk, 0, 0), 0);
    assert_int_equal(l.count, 0);
    cairn_layout_release(&l);
    assert_int_equal(cairn_layout_from_prefix(&l, "t", "GG", 2, 2), 0);
    check_cover(&l, 2);
    cairn_layout_release(&l);
}

static int tmpfile_with(const void *data, size_t len)
{
    char path[] = "/tmp/cairn-test-layout-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    return fd;
}

/* A GGUF file whose metadata holds a 1.5 MiB string, so the first 1 MiB read is short. */
static void make_gguf(struct cairn_buf *b, size_t big)
{
    uint64_t dims[1] = { 64 };
    cairn_buf_init(b, 0);
    assert_int_equal(cairn_buf_put(b, "GGUF", 4), 0);
    assert_int_equal(cairn_buf_put_u32le(b, 3), 0);
    assert_int_equal(cairn_buf_put_u64le(b, 2), 0);
    assert_int_equal(cairn_buf_put_u64le(b, 1), 0);
    assert_int_equal(cairn_buf_put_u64le(b, 3), 0);
    assert_int_equal(cairn_buf_put(b, "big", 3), 0);
    assert_int_equal(cairn_buf_put_u32le(b, 8), 0);
    assert_int_equal(cairn_buf_put_u64le(b, big), 0);
    for (size_t i = 0; i < big; i++)
        assert_int_equal(cairn_buf_putc(b, 'a'), 0);
    for (int t = 0; t < 2; t++) {
        assert_int_equal(cairn_buf_put_u64le(b, 1), 0);
        assert_int_equal(cairn_buf_putc(b, t ? 'q' : 'f'), 0);
        assert_int_equal(cairn_buf_put_u32le(b, 1), 0);
        assert_int_equal(cairn_buf_put_u64le(b, dims[0]), 0);
        assert_int_equal(cairn_buf_put_u32le(b, t ? 8 : 0), 0); /* F32, Q8_0 */
        assert_int_equal(cairn_buf_put_u64le(b, t ? 256 : 0), 0);
    }
    while (b->len % 32)
        assert_int_equal(cairn_buf_putc(b, 0), 0);
    for (int i = 0; i < 256 + 68; i++)
        assert_int_equal(cairn_buf_putc(b, (char)i), 0);
}

static void test_fd_gguf_and_safetensors(void **state)
{
    (void)state;
    struct cairn_buf b;
    struct cairn_layout l;
    int fd;

    make_gguf(&b, (size_t)3 << 19);
    fd = tmpfile_with(b.ptr, b.len);
    warnings = 0;
    assert_int_equal(cairn_layout_detect(&l, "m.gguf", fd, b.len), 0);
    assert_int_equal(warnings, 0);
    assert_int_equal(l.format, CAIRN_FORMAT_GGUF);
    check_cover(&l, b.len);
    assert_int_equal(l.count, 3);
    assert_string_equal(l.regions[1].tensor->name, "f");
    assert_int_equal(l.regions[2].tensor->dtype, CAIRN_DT_Q8_0);
    assert_int_equal(l.regions[2].unit, 34);
    assert_int_equal(l.regions[2].group, 1);
    cairn_layout_release(&l);
    /* The same file claimed to be longer than it is: the data is missing. */
    assert_int_equal(cairn_layout_detect(&l, "m.gguf", fd, b.len - 10), 0);
    assert_int_equal(warnings, 1);
    assert_int_equal(l.count, 1);
    cairn_layout_release(&l);
    close(fd);
    cairn_buf_release(&b);

    make_safetensors(&b);
    fd = tmpfile_with(b.ptr, b.len);
    assert_int_equal(cairn_layout_detect(&l, "m.safetensors", fd, b.len), 0);
    assert_int_equal(l.count, 5);
    check_cover(&l, b.len);
    cairn_layout_release(&l);
    close(fd);
    cairn_buf_release(&b);

    /* A bad descriptor is an I/O error, not a fallback. */
    assert_true(cairn_layout_detect(&l, "gone", -1, 100) < 0);
}

static void test_piece_size(void **state)
{
    (void)state;
    struct cairn_region r = { CAIRN_REGION_TENSOR, 0, 10, NULL, 4, 4 };
    assert_int_equal(cairn_layout_piece_size(&r), 1 << 20);
    r.unit = 18; /* Q4_0 blocks */
    assert_int_equal(cairn_layout_piece_size(&r), (1 << 20) - (1 << 20) % 18);
    r.unit = 292;
    assert_int_equal(cairn_layout_piece_size(&r) % 292, 0);
    r.kind = CAIRN_REGION_OPAQUE;
    assert_int_equal(cairn_layout_piece_size(&r), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_safetensors_regions),
        cmocka_unit_test(test_damaged_and_foreign),
        cmocka_unit_test(test_fd_gguf_and_safetensors),
        cmocka_unit_test(test_piece_size),
    };
    cairn_set_warn_handler(on_warn, NULL);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
