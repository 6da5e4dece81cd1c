/* Unit tests for lib/store/pack.c: the writer's output, idx validation, entry parsing, names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cairn/common.h"
#include "cairn/store.h"
#include "store/pack.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/hash.h"

struct built {
    char dir[64];
    struct cairn_buf idx, pack;
    struct cairn__pack_pending p;
};

/* Write a pack of `n` small RAW entries (every third with a base) and read both files back. */
static void build(struct built *b, int n)
{
    struct cairn__pack_writer w;

    memset(b, 0, sizeof(*b));
    snprintf(b->dir, sizeof(b->dir), "/tmp/cairn-test-pack-XXXXXX");
    assert_non_null(mkdtemp(b->dir));
    cairn__pack_writer_init(&w);
    assert_int_equal(cairn__pack_writer_open(&w, b->dir), 0);
    for (int i = 0; i < n; i++) {
        struct cairn__pack_entry e;
        char data[64];
        int len = snprintf(data, sizeof(data), "chunk number %d", i);
        memset(&e, 0, sizeof(e));
        cairn_hash(&e.id, data, (size_t)len);
        e.codec = CAIRN_CODEC_RAW;
        e.raw_len = e.stored_len = (uint64_t)len;
        if (i % 3 == 2) {
            e.flags = CAIRN__PACK_F_BASE;
            cairn_hash(&e.base, "base", 4);
        }
        assert_int_equal(cairn__pack_writer_append(&w, &e, data, NULL), 0);
    }
    assert_int_equal(cairn__pack_writer_finish(&w, &b->p, b->dir), 0);
    assert_int_equal(cairn_fs_read_file(&b->idx, b->p.tmp_idx, 1 << 20), 0);
    assert_int_equal(cairn_fs_read_file(&b->pack, b->p.tmp_pack, 1 << 20), 0);
    cairn__pack_writer_release(&w);
}

static void unbuild(struct built *b)
{
    cairn__pack_pending_release(&b->p);
    cairn_buf_release(&b->idx);
    cairn_buf_release(&b->pack);
    cairn_fs_rm_rf(b->dir);
}

static void test_writer_output_validates(void **state)
{
    (void)state;
    struct built b;
    uint32_t count;
    uint64_t size;
    cairn_oid name;

    build(&b, 10);
    assert_int_equal(b.p.count, 10);
    assert_true(b.p.size == b.pack.len);
    assert_memory_equal(b.pack.ptr, CAIRN__PACK_MAGIC, 8);
    assert_int_equal(cairn__idx_validate(&count, &size, &name, b.idx.ptr, b.idx.len, b.pack.len),
                     0);
    assert_int_equal(count, 10);
    assert_true(size == b.pack.len);
    assert_memory_equal(&name, &b.p.name, sizeof(name));
    /* Each idx entry points at a self-describing entry with a valid check. */
    for (uint32_t i = 0; i < count; i++) {
        struct cairn__pack_entry ie, pe;
        const uint8_t *at;
        size_t hl;
        cairn__idx_entry(&ie, b.idx.ptr, i);
        at = (const uint8_t *)b.pack.ptr + ie.offset;
        assert_int_equal(cairn__entry_header_parse(&pe, at, b.pack.len - ie.offset, ie.offset), 0);
        assert_memory_equal(&pe.id, &ie.id, 32);
        assert_true(pe.raw_len == ie.raw_len && pe.stored_len == ie.stored_len);
        assert_int_equal(pe.flags, ie.flags);
        hl = cairn__entry_hdr_len(pe.flags);
        assert_int_equal(
            cairn__entry_check_verify(at + hl + pe.stored_len, at, hl, at + hl, pe.stored_len), 0);
        assert_int_equal(cairn__idx_find(b.idx.ptr, count, &ie.id), (long)i);
    }
    {
        cairn_oid nope;
        memset(&nope, 0xff, sizeof(nope));
        assert_int_equal(cairn__idx_find(b.idx.ptr, count, &nope), -1);
    }
    /* A wrong pack size is refused. */
    assert_int_equal(
        cairn__idx_validate(&count, &size, &name, b.idx.ptr, b.idx.len, b.pack.len + 1),
        CAIRN_ECORRUPT);
    unbuild(&b);
}

static void test_every_flipped_idx_byte_is_caught(void **state)
{
    (void)state;
    struct built b;
    uint32_t count;
    uint64_t size;
    cairn_oid name;

    build(&b, 5);
    for (size_t i = 0; i < b.idx.len; i++) {
        b.idx.ptr[i] ^= 0x01;
        assert_int_equal(
            cairn__idx_validate(&count, &size, &name, b.idx.ptr, b.idx.len, UINT64_MAX),
            CAIRN_ECORRUPT);
        b.idx.ptr[i] ^= 0x01;
    }
    /* Every truncation too. */
    for (size_t l = 0; l < b.idx.len; l++)
        assert_int_equal(cairn__idx_validate(&count, &size, &name, b.idx.ptr, l, UINT64_MAX),
                         CAIRN_ECORRUPT);
    unbuild(&b);
}

/* Re-seal an edited idx with a correct trailer, so the deeper checks must catch it. */
static void reseal(struct cairn_buf *idx)
{
    cairn_oid h;
    cairn_hash(&h, idx->ptr, idx->len - 32);
    memcpy(idx->ptr + idx->len - 32, h.id, 32);
}

static void test_sealed_but_wrong_idx(void **state)
{
    (void)state;
    struct built b;
    uint32_t count;
    uint64_t size;
    cairn_oid name;
    uint8_t *e0, *e1, tmp[96];

    build(&b, 4);
    e0 = (uint8_t *)b.idx.ptr + CAIRN__IDX_HDR_LEN;
    e1 = e0 + CAIRN__IDX_ENTRY_LEN;
    /* Unsorted. */
    memcpy(tmp, e0, 96);
    memcpy(e0, e1, 96);
    memcpy(e1, tmp, 96);
    reseal(&b.idx);
    assert_int_equal(cairn__idx_validate(&count, &size, &name, b.idx.ptr, b.idx.len, UINT64_MAX),
                     CAIRN_ECORRUPT);
    memcpy(e1, e0, 96);
    memcpy(e0, tmp, 96);
    /* Duplicate id. */
    memcpy(e1, e0, 32);
    reseal(&b.idx);
    assert_int_equal(cairn__idx_validate(&count, &size, &name, b.idx.ptr, b.idx.len, UINT64_MAX),
                     CAIRN_ECORRUPT);
    unbuild(&b);
    /* Offset past the pack, huge length, unknown flags, count that lies. */
    for (int k = 0; k < 5; k++) {
        build(&b, 4);
        e0 = (uint8_t *)b.idx.ptr + CAIRN__IDX_HDR_LEN;
        if (k == 0)
            cairn_put_u64le(e0 + 32, b.pack.len);
        else if (k == 1)
            cairn_put_u64le(e0 + 40, UINT64_MAX - 4);
        else if (k == 2)
            e0[57] = 0x80;
        else if (k == 3)
            cairn_put_u32le(b.idx.ptr + 8, 0xffffffffu);
        else
            cairn_put_u64le(e0 + 32, 3); /* inside the pack header */
        reseal(&b.idx);
        assert_int_equal(
            cairn__idx_validate(&count, &size, &name, b.idx.ptr, b.idx.len, UINT64_MAX),
            CAIRN_ECORRUPT);
        unbuild(&b);
    }
}

static void test_entry_header_adversarial(void **state)
{
    (void)state;
    struct cairn__pack_entry e, out;
    uint8_t hdr[CAIRN__ENTRY_HDR_MAX];
    size_t hl;

    memset(&e, 0, sizeof(e));
    cairn_hash(&e.id, "x", 1);
    e.codec = CAIRN_CODEC_ZSTD;
    e.raw_len = 100;
    e.stored_len = 50;
    hl = cairn__entry_header_write(hdr, &e);
    assert_int_equal(hl, CAIRN__ENTRY_HDR_LEN);
    assert_int_equal(cairn__entry_header_parse(&out, hdr, hl, 8), 0);
    assert_true(out.offset == 8 && out.raw_len == 100 && out.stored_len == 50);
    for (size_t l = 0; l < hl; l++)
        assert_int_equal(cairn__entry_header_parse(&out, hdr, l, 8), CAIRN_ECORRUPT);
    /* Base flag needs the longer header. */
    hdr[37] = CAIRN__PACK_F_BASE;
    assert_int_equal(cairn__entry_header_parse(&out, hdr, hl, 8), CAIRN_ECORRUPT);
    hdr[37] = 0x02;
    assert_int_equal(cairn__entry_header_parse(&out, hdr, hl, 8), CAIRN_ECORRUPT);
    hdr[37] = 0;
    hdr[0] ^= 1;
    assert_int_equal(cairn__entry_header_parse(&out, hdr, hl, 8), CAIRN_ECORRUPT);
    hdr[0] ^= 1;
    cairn_put_u64le(hdr + 40, UINT64_MAX);
    assert_int_equal(cairn__entry_header_parse(&out, hdr, hl, 8), CAIRN_ECORRUPT);
    /* RAW with lengths that disagree. */
    e.codec = CAIRN_CODEC_RAW;
    cairn__entry_header_write(hdr, &e);
    assert_int_equal(cairn__entry_header_parse(&out, hdr, hl, 8), CAIRN_ECORRUPT);
    /* The check catches a changed header or data byte. */
    {
        uint8_t check[16], data[4] = { 1, 2, 3, 4 };
        cairn__entry_check_compute(check, hdr, hl, data, 4);
        assert_int_equal(cairn__entry_check_verify(check, hdr, hl, data, 4), 0);
        data[2] ^= 1;
        assert_int_equal(cairn__entry_check_verify(check, hdr, hl, data, 4), CAIRN_ECORRUPT);
    }
}

static void test_names(void **state)
{
    (void)state;
    cairn_oid id;
    char good[80];

    snprintf(good, sizeof(good), "pack-%064d.idx", 0);
    assert_int_equal(cairn__pack_parse_name(&id, good, "idx"), 1);
    assert_int_equal(cairn__pack_parse_name(&id, good, "pack"), 0);
    assert_int_equal(cairn__pack_parse_name(&id, "pack-.idx", "idx"), 0);
    good[10] = 'A';
    assert_int_equal(cairn__pack_parse_name(&id, good, "idx"), 0);
    assert_int_equal(cairn__pack_parse_name(&id, "x", "idx"), 0);
    assert_int_equal(cairn__pack_is_temp_name("tmp-12-3-4.pack"), 1);
    assert_int_equal(cairn__pack_is_temp_name("pack-ab.idx.tmp.12.0"), 1);
    assert_int_equal(cairn__pack_is_temp_name(good), 0);
}

/*
 * A pack many times the writer's buffers: the buffers are written by two
 * threads at their own offsets and the files fsynced by another, so check
 * every entry's bytes and check where the idx says, after sync(). Half the
 * entries come with their check computed by the caller.
 */
static void test_large_pack_through_the_buffer_queue(void **state)
{
    (void)state;
    enum { N = 48, LEN = (1 << 20) + 17 };
    struct cairn__pack_writer w;
    struct cairn__pack_pending p;
    struct cairn_buf idx = CAIRN_BUF_INIT, pack = CAIRN_BUF_INIT;
    unsigned char *data = malloc(LEN);
    char dir[64];
    uint32_t count;
    uint64_t size;
    cairn_oid name;

    assert_non_null(data);
    snprintf(dir, sizeof(dir), "/tmp/cairn-test-pack-XXXXXX");
    assert_non_null(mkdtemp(dir));
    cairn__pack_writer_init(&w);
    assert_int_equal(cairn__pack_writer_open(&w, dir), 0);
    for (int i = 0; i < N; i++) {
        struct cairn__pack_entry e;
        uint8_t hdr[CAIRN__ENTRY_HDR_MAX], check[CAIRN__ENTRY_CHECK_LEN];
        memset(data, i, LEN);
        memcpy(data + i, &i, sizeof(i));
        memset(&e, 0, sizeof(e));
        cairn_hash(&e.id, data, LEN);
        e.codec = CAIRN_CODEC_RAW;
        e.raw_len = e.stored_len = LEN;
        cairn__entry_check_compute(check, hdr, cairn__entry_header_write(hdr, &e), data, LEN);
        assert_int_equal(cairn__pack_writer_append(&w, &e, data, i % 2 ? check : NULL), 0);
    }
    assert_int_equal(cairn__pack_writer_finish(&w, &p, dir), 0);
    assert_int_equal(cairn__pack_writer_sync(&w), 0);
    assert_int_equal(cairn_fs_read_file(&idx, p.tmp_idx, 1 << 20), 0);
    assert_int_equal(cairn_fs_read_file(&pack, p.tmp_pack, (size_t)N * LEN * 2), 0);
    assert_true(p.size == pack.len);
    assert_int_equal(cairn__idx_validate(&count, &size, &name, idx.ptr, idx.len, pack.len), 0);
    assert_int_equal(count, N);
    for (uint32_t i = 0; i < count; i++) {
        struct cairn__pack_entry ie, pe;
        const uint8_t *at;
        size_t hl;
        cairn_oid got;
        cairn__idx_entry(&ie, idx.ptr, i);
        at = (const uint8_t *)pack.ptr + ie.offset;
        assert_int_equal(cairn__entry_header_parse(&pe, at, pack.len - ie.offset, ie.offset), 0);
        hl = cairn__entry_hdr_len(pe.flags);
        assert_int_equal(
            cairn__entry_check_verify(at + hl + pe.stored_len, at, hl, at + hl, pe.stored_len), 0);
        cairn_hash(&got, at + hl, pe.stored_len);
        assert_memory_equal(&got, &ie.id, sizeof(got));
    }
    /* The writer reopens for another pack after finish, with its threads still there. */
    assert_int_equal(cairn__pack_writer_open(&w, dir), 0);
    cairn__pack_writer_release(&w);
    cairn__pack_pending_release(&p);
    cairn_buf_release(&idx);
    cairn_buf_release(&pack);
    cairn_fs_rm_rf(dir);
    free(data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_writer_output_validates),
        cmocka_unit_test(test_large_pack_through_the_buffer_queue),
        cmocka_unit_test(test_every_flipped_idx_byte_is_caught),
        cmocka_unit_test(test_sealed_but_wrong_idx),
        cmocka_unit_test(test_entry_header_adversarial),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
