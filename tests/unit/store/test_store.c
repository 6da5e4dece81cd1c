/*
 * Unit tests for lib/store/store.c: round trips, dedup, codec choice, damage
 * (flipped byte, truncated pack, missing and garbage idx, stray temp files),
 * gc including a crash between its steps, and concurrent reads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
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

struct fixture {
    char dir[64];
    char packs[96];
    struct cairn_store *s;
};

static void fill_random(uint8_t *p, size_t n, uint64_t seed)
{
    uint64_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (uint8_t)(x >> 24);
    }
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/cairn-test-store-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->packs, sizeof(f->packs), "%s/packs", f->dir);
    assert_int_equal(cairn_store_init(f->dir), 0);
    assert_int_equal(cairn_store_init(f->dir), 0); /* idempotent */
    assert_int_equal(cairn_store_open(&f->s, f->dir), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    cairn_store_free(f->s);
    cairn_fs_rm_rf(f->dir);
    free(f);
    cairn__gc_stop_after = 0;
    cairn__pack_target = CAIRN__PACK_TARGET;
    return 0;
}

static void reopen(struct fixture *f)
{
    cairn_store_free(f->s);
    assert_int_equal(cairn_store_open(&f->s, f->dir), 0);
}

/* Write chunks of the given sizes (content from seeds) in one commit. */
static void put_chunks(struct fixture *f, const size_t *sizes, size_t n, uint64_t seed,
                       cairn_oid *ids, int compressible)
{
    struct cairn_store_writer *w;
    for (size_t i = 0; i < n; i++) {
        uint8_t *d = malloc(sizes[i] + 1);
        fill_random(d, sizes[i], seed + i);
        if (compressible)
            memset(d, 'z', sizes[i] / 2);
        if (i == 0)
            assert_int_equal(cairn_store_writer_new(&w, f->s), 0);
        assert_int_equal(cairn_store_writer_put(w, d, sizes[i], &ids[i]), 0);
        free(d);
    }
    assert_int_equal(cairn_store_writer_commit(w), 0);
    cairn_store_writer_free(w);
}

static void check_chunk(struct fixture *f, const cairn_oid *id, size_t size, uint64_t seed,
                        int compressible)
{
    struct cairn_buf b = CAIRN_BUF_INIT;
    uint8_t *d = malloc(size + 1);
    fill_random(d, size, seed);
    if (compressible)
        memset(d, 'z', size / 2);
    assert_int_equal(cairn_buf_puts(&b, "x"), 0);
    assert_int_equal(cairn_store_get(f->s, id, &b), 0);
    assert_int_equal(b.len, size + 1);
    assert_memory_equal(b.ptr + 1, d, size);
    cairn_buf_release(&b);
    free(d);
}

static int count_files(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.' &&
            (!suffix || (strlen(de->d_name) > strlen(suffix) &&
                         strcmp(de->d_name + strlen(de->d_name) - strlen(suffix), suffix) == 0)))
            n++;
    closedir(d);
    return n;
}

/* Path of the first file in `dir` ending with suffix. */
static void first_file(char *out, size_t cap, const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    out[0] = '\0';
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l > strlen(suffix) && strcmp(de->d_name + l - strlen(suffix), suffix) == 0) {
            snprintf(out, cap, "%s/%s", dir, de->d_name);
            break;
        }
    }
    closedir(d);
    assert_true(out[0] != '\0');
}

static void flip_byte(const char *path, off_t off)
{
    int fd = open(path, O_RDWR);
    uint8_t c;
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &c, 1, off), 1);
    c ^= 0x40;
    assert_int_equal(pwrite(fd, &c, 1, off), 1);
    close(fd);
}

struct msgs {
    int problems, notes;
    char last[512];
};

static void on_problem(const char *msg, void *p)
{
    struct msgs *m = p;
    m->problems++;
    snprintf(m->last, sizeof(m->last), "%s", msg);
}

static void on_note(const char *msg, void *p)
{
    struct msgs *m = p;
    m->notes++;
    (void)msg;
}

static int verify(struct fixture *f, struct msgs *m)
{
    memset(m, 0, sizeof(*m));
    return cairn_store_verify_ex(f->s, on_problem, on_note, m);
}

static const size_t sizes[] = { 0, 1, 65535, 65536, 65537, 4 << 20 };
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))

static void test_roundtrip(void **state)
{
    struct fixture *f = *state;
    cairn_oid ids[NSIZES], zero_id;
    struct cairn_chunk_info info;
    struct cairn_store_stats st;
    struct msgs m;

    put_chunks(f, sizes, NSIZES, 100, ids, 1);
    for (size_t i = 0; i < NSIZES; i++)
        check_chunk(f, &ids[i], sizes[i], 100 + i, 1);
    reopen(f);
    for (size_t i = 0; i < NSIZES; i++) {
        check_chunk(f, &ids[i], sizes[i], 100 + i, 1);
        assert_int_equal(cairn_store_has(f->s, &ids[i]), 1);
        assert_int_equal(cairn_store_info(f->s, &ids[i], &info), 0);
        assert_true(info.raw_len == sizes[i]);
        assert_int_equal(info.has_base, 0);
        if (sizes[i] >= 65535)
            assert_int_equal(info.codec, CAIRN_CODEC_ZSTD);
    }
    memset(&zero_id, 0, sizeof(zero_id));
    assert_int_equal(cairn_store_has(f->s, &zero_id), 0);
    assert_int_equal(cairn_store_info(f->s, &zero_id, &info), CAIRN_ENOTFOUND);
    assert_int_equal(cairn_store_stats(f->s, &st), 0);
    assert_true(st.chunks == NSIZES);
    assert_true(st.packs == 1);
    assert_true(st.stored_bytes < st.raw_bytes);
    assert_int_equal(verify(f, &m), 0);
    assert_int_equal(m.notes, 0);
}

static void test_dedup_and_raw(void **state)
{
    struct fixture *f = *state;
    struct cairn_store_writer *w;
    struct cairn_chunk_info info;
    uint8_t *d = malloc(100000);
    cairn_oid id, id2;
    uint64_t before;

    fill_random(d, 100000, 5);
    assert_int_equal(cairn_store_writer_new(&w, f->s), 0);
    assert_int_equal(cairn_store_writer_put(w, d, 100000, &id), 0);
    before = cairn_store_writer_bytes(w);
    assert_true(before >= 100000);
    assert_int_equal(cairn_store_writer_put(w, d, 100000, &id2), 0);
    assert_memory_equal(&id, &id2, sizeof(id));
    assert_true(cairn_store_writer_bytes(w) == before);
    /* Not visible before commit. */
    assert_int_equal(cairn_store_has(f->s, &id), 0);
    assert_int_equal(cairn_store_writer_commit(w), 0);
    assert_int_equal(cairn_store_has(f->s, &id), 1);
    cairn_store_writer_free(w);
    /* Incompressible: RAW. */
    assert_int_equal(cairn_store_info(f->s, &id, &info), 0);
    assert_int_equal(info.codec, CAIRN_CODEC_RAW);
    assert_true(info.stored_len == 100000);
    /* A later writer adds nothing for a stored id, through put or add. */
    assert_int_equal(cairn_store_writer_new(&w, f->s), 0);
    assert_int_equal(cairn_store_writer_put(w, d, 100000, &id2), 0);
    assert_int_equal(cairn_store_writer_add(w, &id, CAIRN_CODEC_RAW, NULL, 100000, d, 100000), 0);
    assert_true(cairn_store_writer_bytes(w) == 0);
    /* Bad arguments are refused. */
    assert_int_equal(cairn_store_writer_add(w, &id, 99, NULL, 1, d, 1), CAIRN_EINVALID);
    assert_int_equal(cairn_store_writer_add(w, &id, CAIRN_CODEC_RAW, NULL, 5, d, 4),
                     CAIRN_EINVALID);
    assert_int_equal(cairn_store_writer_commit(w), 0);
    cairn_store_writer_free(w);
    assert_int_equal(count_files(f->packs, ".pack"), 1);
    assert_int_equal(count_files(f->packs, NULL), 2);
    free(d);
}

static void test_uncommitted_writer_leaves_nothing(void **state)
{
    struct fixture *f = *state;
    struct cairn_store_writer *w;
    cairn_oid id;

    assert_int_equal(cairn_store_writer_new(&w, f->s), 0);
    assert_int_equal(cairn_store_writer_put(w, "hello", 5, &id), 0);
    assert_int_equal(count_files(f->packs, NULL), 1); /* the temp pack */
    cairn_store_writer_free(w);
    assert_int_equal(count_files(f->packs, NULL), 0);
    assert_int_equal(cairn_store_has(f->s, &id), 0);
    cairn_store_writer_free(NULL);
}

static void test_rotation(void **state)
{
    struct fixture *f = *state;
    size_t sz[40];
    cairn_oid ids[40];
    struct msgs m;

    cairn__pack_target = 256 << 10;
    for (int i = 0; i < 40; i++)
        sz[i] = 50000;
    put_chunks(f, sz, 40, 900, ids, 0);
    assert_true(count_files(f->packs, ".pack") >= 6);
    assert_int_equal(count_files(f->packs, ".pack"), count_files(f->packs, ".idx"));
    reopen(f);
    for (int i = 0; i < 40; i++)
        check_chunk(f, &ids[i], 50000, 900 + i, 0);
    assert_int_equal(verify(f, &m), 0);
}

static void test_flipped_byte(void **state)
{
    struct fixture *f = *state;
    size_t sz[2] = { 70000, 70000 };
    cairn_oid ids[2];
    struct cairn_buf b = CAIRN_BUF_INIT;
    char pack[256];
    struct msgs m;
    struct cairn_chunk_info info;

    put_chunks(f, sz, 1, 10, ids, 0);         /* raw */
    put_chunks(f, sz + 1, 1, 11, ids + 1, 1); /* zstd */
    for (int k = 0; k < 2; k++) {
        char dir[128];
        assert_int_equal(cairn_store_info(f->s, &ids[k], &info), 0);
        assert_int_equal(info.codec, k == 0 ? CAIRN_CODEC_RAW : CAIRN_CODEC_ZSTD);
        /* Find the pack holding it: the only one whose idx names it. */
        (void)dir;
    }
    /* Damage the middle of every pack: the data part of the single entry. */
    {
        DIR *d = opendir(f->packs);
        struct dirent *de;
        while ((de = readdir(d))) {
            size_t l = strlen(de->d_name);
            if (l > 5 && strcmp(de->d_name + l - 5, ".pack") == 0) {
                snprintf(pack, sizeof(pack), "%s/%s", f->packs, de->d_name);
                flip_byte(pack, 8 + 56 + 1000);
            }
        }
        closedir(d);
    }
    reopen(f);
    for (int k = 0; k < 2; k++) {
        cairn_buf_puts(&b, "keep");
        assert_int_equal(cairn_store_get(f->s, &ids[k], &b), CAIRN_ECORRUPT);
        assert_int_equal(b.len, 4);
        assert_string_equal(b.ptr, "keep");
        assert_non_null(strstr(cairn_error_last(), "is corrupt"));
        assert_non_null(strstr(cairn_error_last(), "pack-"));
        cairn_buf_clear(&b);
    }
    assert_true(verify(f, &m) >= 2);
    assert_non_null(strstr(m.last, "pack-"));
    cairn_buf_release(&b);
}

static void test_truncated_pack(void **state)
{
    struct fixture *f = *state;
    size_t sz[3] = { 30000, 30000, 30000 };
    cairn_oid ids[3];
    char pack[256];
    struct cairn_buf b = CAIRN_BUF_INIT;
    struct stat st;
    struct msgs m;

    put_chunks(f, sz, 3, 20, ids, 0);
    first_file(pack, sizeof(pack), f->packs, ".pack");
    assert_int_equal(stat(pack, &st), 0);
    assert_int_equal(truncate(pack, st.st_size - 100), 0);
    reopen(f);
    /* The idx no longer matches the pack: its chunks are missing, never misread. */
    for (int i = 0; i < 3; i++)
        assert_int_equal(cairn_store_get(f->s, &ids[i], &b), CAIRN_ENOTFOUND);
    assert_true(verify(f, &m) >= 1);
    cairn_buf_release(&b);
}

static int never_live(const cairn_oid *id, void *p)
{
    (void)id;
    (void)p;
    return 0;
}

static void test_missing_idx_is_interrupted_write(void **state)
{
    struct fixture *f = *state;
    size_t sz[2] = { 1000, 2000 };
    cairn_oid ids[2];
    char idx[256];
    struct msgs m;
    struct cairn_gc_stats gs;

    put_chunks(f, sz, 2, 30, ids, 0);
    first_file(idx, sizeof(idx), f->packs, ".idx");
    assert_int_equal(unlink(idx), 0);
    /* A stray temp file as a killed writer leaves it. */
    {
        char tmp[256];
        snprintf(tmp, sizeof(tmp), "%s/tmp-1-2-3.pack", f->packs);
        assert_int_equal(cairn_fs_write_atomic(tmp, "junk", 4, 0644), 0);
    }
    reopen(f);
    assert_int_equal(cairn_store_has(f->s, &ids[0]), 0);
    assert_int_equal(verify(f, &m), 0);
    assert_int_equal(m.notes, 2);
    /* Plain verify does not count them either. */
    assert_int_equal(cairn_store_verify(f->s, NULL, NULL), 0);
    assert_int_equal(cairn_store_gc(f->s, never_live, NULL, 0, &gs), 0);
    assert_int_equal(count_files(f->packs, NULL), 0);
    assert_int_equal(verify(f, &m), 0);
    assert_int_equal(m.notes, 0);
}

static void test_garbage_idx(void **state)
{
    struct fixture *f = *state;
    size_t sz[2] = { 1000, 2000 };
    cairn_oid ids[2];
    char idx[256];
    uint8_t junk[4096];
    struct msgs m;

    put_chunks(f, sz, 2, 40, ids, 0);
    first_file(idx, sizeof(idx), f->packs, ".idx");
    for (int round = 0; round < 4; round++) {
        size_t len = round == 0 ? 0 : round == 1 ? 10 : round == 2 ? 56 + 96 : sizeof(junk);
        fill_random(junk, sizeof(junk), 50 + round);
        if (round >= 2)
            memcpy(junk, CAIRN__IDX_MAGIC, 8);
        if (round == 2)
            cairn_put_u32le(junk + 8, 1), cairn_put_u32le(junk + 12, 0);
        unlink(idx);
        assert_int_equal(cairn_fs_write_atomic(idx, junk, len, 0644), 0);
        reopen(f);
        assert_int_equal(cairn_store_has(f->s, &ids[0]), 0);
        assert_int_equal(verify(f, &m), 1);
        assert_non_null(strstr(m.last, "index"));
    }
    /* gc leaves a damaged pair alone for fsck. */
    {
        struct cairn_gc_stats gs;
        assert_int_equal(cairn_store_gc(f->s, never_live, NULL, 0, &gs), 0);
        assert_int_equal(count_files(f->packs, NULL), 2);
    }
}

struct live_set {
    cairn_oid *ids;
    size_t n;
};

static int is_live(const cairn_oid *id, void *p)
{
    struct live_set *ls = p;
    for (size_t i = 0; i < ls->n; i++)
        if (memcmp(ls->ids[i].id, id->id, 32) == 0)
            return 1;
    return 0;
}

/* Three packs: A all live, B all dead, C half live. */
static void make_gc_store(struct fixture *f, cairn_oid *a, cairn_oid *b, cairn_oid *c,
                          struct live_set *ls)
{
    size_t sz[4] = { 20000, 30000, 40000, 50000 };
    put_chunks(f, sz, 4, 1000, a, 1);
    put_chunks(f, sz, 4, 2000, b, 1);
    put_chunks(f, sz, 4, 3000, c, 1);
    ls->ids = calloc(6, sizeof(cairn_oid));
    memcpy(ls->ids, a, 4 * sizeof(cairn_oid));
    ls->ids[4] = c[0];
    ls->ids[5] = c[2];
    ls->n = 6;
}

static void check_gc_result(struct fixture *f, const cairn_oid *a, const cairn_oid *b,
                            const cairn_oid *c)
{
    size_t sz[4] = { 20000, 30000, 40000, 50000 };
    struct msgs m;
    for (int i = 0; i < 4; i++) {
        check_chunk(f, &a[i], sz[i], 1000 + i, 1);
        assert_int_equal(cairn_store_has(f->s, &b[i]), 0);
    }
    check_chunk(f, &c[0], sz[0], 3000, 1);
    check_chunk(f, &c[2], sz[2], 3002, 1);
    assert_int_equal(cairn_store_has(f->s, &c[1]), 0);
    assert_int_equal(cairn_store_has(f->s, &c[3]), 0);
    assert_int_equal(verify(f, &m), 0);
    assert_int_equal(m.notes, 0);
    assert_int_equal(count_files(f->packs, ".pack"), 2);
    assert_int_equal(count_files(f->packs, ".idx"), 2);
}

static void test_gc(void **state)
{
    struct fixture *f = *state;
    cairn_oid a[4], b[4], c[4];
    struct live_set ls;
    struct cairn_gc_stats gs, dry;
    struct cairn_store_stats st;

    make_gc_store(f, a, b, c, &ls);
    assert_int_equal(cairn_store_gc(f->s, is_live, &ls, 1, &dry), 0);
    assert_int_equal(count_files(f->packs, ".pack"), 3);
    assert_int_equal(cairn_store_gc(f->s, is_live, &ls, 0, &gs), 0);
    assert_true(gs.chunks_kept == 6);
    assert_true(gs.chunks_removed == 6);
    assert_true(gs.packs_removed == 2);
    assert_true(gs.packs_written == 1);
    assert_true(gs.bytes_after < gs.bytes_before);
    assert_true(dry.chunks_kept == gs.chunks_kept && dry.packs_removed == gs.packs_removed &&
                dry.packs_written == gs.packs_written);
    assert_int_equal(cairn_store_stats(f->s, &st), 0);
    assert_true(st.stored_bytes == gs.bytes_after);
    check_gc_result(f, a, b, c);
    reopen(f);
    check_gc_result(f, a, b, c);
    /* A second gc has nothing to do. */
    assert_int_equal(cairn_store_gc(f->s, is_live, &ls, 0, &gs), 0);
    assert_true(gs.packs_removed == 0 && gs.packs_written == 0);
    check_gc_result(f, a, b, c);
    free(ls.ids);
}

static void test_gc_crash_between_steps(void **state)
{
    struct fixture *f = *state;
    cairn_oid a[4], b[4], c[4];
    struct live_set ls;
    struct cairn_gc_stats gs;
    struct msgs m;

    make_gc_store(f, a, b, c, &ls);
    for (int step = 1; step <= 2; step++) {
        cairn__gc_stop_after = step;
        assert_int_equal(cairn_store_gc(f->s, is_live, &ls, 0, &gs), CAIRN_ERROR);
        cairn__gc_stop_after = 0;
        reopen(f);
        /* Every live chunk still reads back, and fsck calls the store clean. */
        for (int i = 0; i < 4; i++)
            check_chunk(f, &a[i], 20000 + 10000 * (size_t)i, 1000 + (uint64_t)i, 1);
        check_chunk(f, &c[0], 20000, 3000, 1);
        check_chunk(f, &c[2], 40000, 3002, 1);
        assert_int_equal(verify(f, &m), 0);
    }
    assert_int_equal(cairn_store_gc(f->s, is_live, &ls, 0, &gs), 0);
    check_gc_result(f, a, b, c);
    free(ls.ids);
}

struct reader_arg {
    struct fixture *f;
    cairn_oid *ids;
    int n, ok;
};

static void *reader(void *p)
{
    struct reader_arg *r = p;
    struct cairn_buf b = CAIRN_BUF_INIT;
    r->ok = 1;
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < r->n; i++) {
            uint8_t d[9000];
            size_t size = 1000 + (size_t)i * 40;
            cairn_buf_clear(&b);
            fill_random(d, size, 5000 + (uint64_t)i);
            if (i % 2)
                memset(d, 'z', size / 2);
            if (cairn_store_get(r->f->s, &r->ids[i], &b) != 0 || b.len != size ||
                memcmp(b.ptr, d, size) != 0)
                r->ok = 0;
        }
    }
    cairn_buf_release(&b);
    return NULL;
}

static void test_concurrent_get(void **state)
{
    struct fixture *f = *state;
    struct cairn_store_writer *w;
    cairn_oid ids[200];
    pthread_t th[4];
    struct reader_arg args[4];

    assert_int_equal(cairn_store_writer_new(&w, f->s), 0);
    for (int i = 0; i < 200; i++) {
        uint8_t d[9000];
        size_t size = 1000 + (size_t)i * 40;
        fill_random(d, size, 5000 + (uint64_t)i);
        if (i % 2)
            memset(d, 'z', size / 2);
        assert_int_equal(cairn_store_writer_put(w, d, size, &ids[i]), 0);
    }
    assert_int_equal(cairn_store_writer_commit(w), 0);
    cairn_store_writer_free(w);
    reopen(f);
    assert_int_equal(cairn_store_load_index(f->s), 0);
    for (int t = 0; t < 4; t++) {
        args[t] = (struct reader_arg){ f, ids, 200, 0 };
        assert_int_equal(pthread_create(&th[t], NULL, reader, &args[t]), 0);
    }
    for (int t = 0; t < 4; t++) {
        pthread_join(th[t], NULL);
        assert_int_equal(args[t].ok, 1);
    }
}

/* ---- repair ---- */

static int repair(struct fixture *f, struct cairn_store_repair_stats *rs)
{
    struct msgs m;
    memset(&m, 0, sizeof(m));
    return cairn_store_repair(f->s, on_note, &m, rs);
}

static void test_repair_missing_idx(void **state)
{
    struct fixture *f = *state;
    size_t sz[3] = { 30000, 1000, 50000 };
    cairn_oid ids[3];
    char idx[256], again[256];
    struct cairn_store_repair_stats rs;
    struct msgs m;

    put_chunks(f, sz, 3, 60, ids, 1);
    first_file(idx, sizeof(idx), f->packs, ".idx");
    assert_int_equal(unlink(idx), 0);
    reopen(f);
    assert_int_equal(cairn_store_has(f->s, &ids[0]), 0);
    assert_true(repair(f, &rs) > 0);
    assert_int_equal(rs.packs_written, 1);
    assert_int_equal(rs.chunks_dropped, 0);
    assert_int_equal(rs.files_moved, 0);
    /* The pack was intact: the rebuilt idx is the lost one, under the same name. */
    first_file(again, sizeof(again), f->packs, ".idx");
    assert_string_equal(again, idx);
    assert_int_equal(count_files(f->packs, ".pack"), 1);
    for (int i = 0; i < 3; i++)
        check_chunk(f, &ids[i], sz[i], 60 + (uint64_t)i, 1);
    assert_int_equal(verify(f, &m), 0);
    assert_int_equal(m.notes, 0);
    /* Nothing left to do. */
    assert_int_equal(repair(f, &rs), 0);
}

static void test_repair_drops_corrupt_chunk(void **state)
{
    struct fixture *f = *state;
    size_t sz[3] = { 30000, 30000, 30000 };
    cairn_oid ids[3];
    char pack[256], damaged[128];
    struct cairn_store_repair_stats rs;
    struct cairn_buf b = CAIRN_BUF_INIT;
    struct msgs m;

    put_chunks(f, sz, 3, 70, ids, 0); /* raw: entries of 56 + 30000 + 16 bytes */
    first_file(pack, sizeof(pack), f->packs, ".pack");
    flip_byte(pack, 8 + 30072 + 56 + 100);
    reopen(f);
    assert_true(verify(f, &m) >= 1);
    assert_true(repair(f, &rs) > 0);
    assert_int_equal(rs.chunks_dropped, 1);
    assert_int_equal(rs.packs_written, 1);
    assert_int_equal(rs.files_moved, 2);
    /* The old pack and idx are kept aside, not deleted. */
    snprintf(damaged, sizeof(damaged), "%s/damaged", f->dir);
    assert_int_equal(count_files(damaged, ".pack"), 1);
    assert_int_equal(count_files(damaged, ".idx"), 1);
    /* Which chunk was damaged does not matter to the others; it is now missing, not corrupt. */
    check_chunk(f, &ids[0], sz[0], 70, 0);
    check_chunk(f, &ids[2], sz[2], 72, 0);
    assert_int_equal(cairn_store_has(f->s, &ids[1]), 0);
    assert_int_equal(cairn_store_get(f->s, &ids[1], &b), CAIRN_ENOTFOUND);
    assert_int_equal(verify(f, &m), 0);
    /* Storing it again works: it is new to the store. */
    put_chunks(f, sz + 1, 1, 71, ids + 1, 0);
    check_chunk(f, &ids[1], sz[1], 71, 0);
    assert_int_equal(verify(f, &m), 0);
    cairn_buf_release(&b);
}

static void test_repair_truncated_pack_without_idx(void **state)
{
    struct fixture *f = *state;
    size_t sz[3] = { 30000, 30000, 30000 };
    cairn_oid ids[3];
    char pack[256], idx[256];
    struct cairn_store_repair_stats rs;
    struct stat st;
    struct msgs m;

    put_chunks(f, sz, 3, 80, ids, 0);
    first_file(pack, sizeof(pack), f->packs, ".pack");
    first_file(idx, sizeof(idx), f->packs, ".idx");
    assert_int_equal(stat(pack, &st), 0);
    assert_int_equal(truncate(pack, st.st_size - 100), 0);
    flip_byte(idx, 30); /* and a damaged idx */
    reopen(f);
    assert_true(repair(f, &rs) > 0);
    assert_int_equal(rs.packs_written, 1);
    assert_int_equal(rs.files_moved, 2);
    check_chunk(f, &ids[0], sz[0], 80, 0);
    check_chunk(f, &ids[1], sz[1], 81, 0);
    assert_int_equal(cairn_store_has(f->s, &ids[2]), 0);
    assert_int_equal(verify(f, &m), 0);
    assert_int_equal(m.notes, 0);
}

static void test_repair_idx_without_pack(void **state)
{
    struct fixture *f = *state;
    size_t sz[1] = { 1000 };
    cairn_oid ids[1];
    char pack[256];
    struct cairn_store_repair_stats rs;
    struct msgs m;

    put_chunks(f, sz, 1, 90, ids, 0);
    first_file(pack, sizeof(pack), f->packs, ".pack");
    assert_int_equal(unlink(pack), 0);
    reopen(f);
    assert_true(verify(f, &m) >= 1);
    assert_int_equal(repair(f, &rs), 1);
    assert_int_equal(rs.files_moved, 1);
    assert_int_equal(count_files(f->packs, NULL), 0);
    assert_int_equal(verify(f, &m), 0);
}

static void test_open_missing(void **state)
{
    (void)state;
    struct cairn_store *s;
    assert_int_equal(cairn_store_open(&s, "/nonexistent/cairn/store"), CAIRN_ENOTFOUND);
    assert_null(s);
    cairn_store_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dedup_and_raw, setup, teardown),
        cmocka_unit_test_setup_teardown(test_uncommitted_writer_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flipped_byte, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_pack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_idx_is_interrupted_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_idx, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gc_crash_between_steps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_repair_missing_idx, setup, teardown),
        cmocka_unit_test_setup_teardown(test_repair_drops_corrupt_chunk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_repair_truncated_pack_without_idx, setup, teardown),
        cmocka_unit_test_setup_teardown(test_repair_idx_without_pack, setup, teardown),
        cmocka_unit_test(test_open_missing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
