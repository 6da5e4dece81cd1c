/*
 * Unit tests for XOR deltas at the store level (lib/store/store.c with the
 * XORDELTA codec): a fine-tuned chunk is encoded against its base and read
 * back through it; chains stop at CAIRN_STORE_MAX_CHAIN (the encoder falls
 * back to a plain codec rather than build a longer one); a missing or damaged
 * base makes the delta unreadable and is reported by verify.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cairn/common.h"
#include "cairn/store.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/hash.h"

#define N_ELEMS 65536 /* bf16 values per chunk: 128 KiB */
#define CHUNK   (2 * N_ELEMS)

struct fixture {
    char dir[64];
    char packs[96];
    struct cairn_store *s;
    struct cairn_codec_ctx *ctx;
};

static uint64_t rng_next(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* bf16 weights, roughly N(0, 0.02): the sum of four uniforms, scaled. */
static void fill_weights(uint8_t *p, uint64_t seed)
{
    uint64_t x = seed * 2654435761u + 99;
    for (size_t i = 0; i < N_ELEMS; i++) {
        double u = 0;
        float f;
        uint32_t bits;
        for (int k = 0; k < 4; k++)
            u += (double)(rng_next(&x) >> 11) / 9007199254740992.0 - 0.5;
        f = (float)(u * 0.035);
        memcpy(&bits, &f, 4);
        p[2 * i] = (uint8_t)(bits >> 16);
        p[2 * i + 1] = (uint8_t)(bits >> 24);
    }
}

/* A fine-tune step: about half the values move by one ulp. */
static void nudge(uint8_t *p, uint64_t seed)
{
    uint64_t x = seed * 11400714819323198485u + 7;
    for (size_t i = 0; i < N_ELEMS; i++)
        if (rng_next(&x) & 1)
            p[2 * i] ^= 1;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/cairn-test-delta-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->packs, sizeof(f->packs), "%s/packs", f->dir);
    assert_int_equal(cairn_store_init(f->dir), 0);
    assert_int_equal(cairn_store_open(&f->s, f->dir), 0);
    assert_int_equal(cairn_codec_ctx_new(&f->ctx, 3), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    cairn_codec_ctx_free(f->ctx);
    cairn_store_free(f->s);
    cairn_fs_rm_rf(f->dir);
    free(f);
    return 0;
}

static void reopen(struct fixture *f)
{
    cairn_store_free(f->s);
    assert_int_equal(cairn_store_open(&f->s, f->dir), 0);
}

/*
 * Encode `data` (with `base` as the delta hint, or none), write it in a pack
 * of its own and commit. Returns the codec chosen; the id goes to `id`.
 */
static int put(struct fixture *f, const uint8_t *data, const cairn_oid *base, cairn_oid *id)
{
    struct cairn_chunk_hint hint = { 2, base };
    struct cairn_buf enc = CAIRN_BUF_INIT;
    struct cairn_store_writer *w;
    cairn_oid used;
    int codec = -1;

    cairn_hash(id, data, CHUNK);
    assert_int_equal(cairn_store_encode(f->s, f->ctx, data, CHUNK, &hint, &enc, &codec, &used), 0);
    if (codec == CAIRN_CODEC_XORDELTA)
        assert_memory_equal(used.id, base->id, CAIRN_OID_RAWSZ);
    else
        assert_true(cairn_oid_is_zero(&used));
    assert_int_equal(cairn_store_writer_new(&w, f->s), 0);
    assert_int_equal(cairn_store_writer_add(w, id, codec,
                                            codec == CAIRN_CODEC_XORDELTA ? &used : NULL, CHUNK,
                                            enc.ptr, enc.len),
                     0);
    assert_int_equal(cairn_store_writer_commit(w), 0);
    cairn_store_writer_free(w);
    cairn_buf_release(&enc);
    /* The writer's chunks are visible to this handle after a reload. */
    reopen(f);
    return codec;
}

static void check(struct fixture *f, const cairn_oid *id, const uint8_t *want)
{
    struct cairn_buf got = CAIRN_BUF_INIT;
    assert_int_equal(cairn_store_get(f->s, id, &got), 0);
    assert_int_equal(got.len, CHUNK);
    assert_memory_equal(got.ptr, want, CHUNK);
    cairn_buf_release(&got);
}

static void test_delta_roundtrip(void **state)
{
    struct fixture *f = *state;
    uint8_t *a = malloc(CHUNK), *b = malloc(CHUNK);
    struct cairn_chunk_info ia, ib;
    cairn_oid ida, idb;

    fill_weights(a, 1);
    memcpy(b, a, CHUNK);
    nudge(b, 2);
    assert_int_equal(put(f, a, NULL, &ida), CAIRN_CODEC_BGZSTD);
    assert_int_equal(put(f, b, &ida, &idb), CAIRN_CODEC_XORDELTA);
    assert_int_equal(cairn_store_info(f->s, &ida, &ia), 0);
    assert_int_equal(cairn_store_info(f->s, &idb, &ib), 0);
    assert_int_equal(ib.codec, CAIRN_CODEC_XORDELTA);
    assert_true(ib.has_base);
    assert_memory_equal(ib.base.id, ida.id, CAIRN_OID_RAWSZ);
    /* One flipped low bit in half the values: far smaller than on its own. */
    assert_true(ib.stored_len * 3 < ia.stored_len);
    check(f, &ida, a);
    check(f, &idb, b);
    assert_int_equal(cairn_store_verify(f->s, NULL, NULL), 0);

    /* A base of another length is no base: the codec does not apply. */
    {
        struct cairn_chunk_hint hint = { 2, &ida };
        struct cairn_buf enc = CAIRN_BUF_INIT;
        int codec;
        cairn_oid used;
        assert_int_equal(cairn_store_encode(f->s, f->ctx, b, CHUNK - 2, &hint, &enc, &codec, &used),
                         0);
        assert_int_not_equal(codec, CAIRN_CODEC_XORDELTA);
        assert_true(cairn_oid_is_zero(&used));
        cairn_buf_release(&enc);
    }
    free(a);
    free(b);
}

static void test_chain_limit(void **state)
{
    struct fixture *f = *state;
    uint8_t *cur = malloc(CHUNK), *saved[CAIRN_STORE_MAX_CHAIN + 3];
    cairn_oid ids[CAIRN_STORE_MAX_CHAIN + 3];
    const int n = CAIRN_STORE_MAX_CHAIN + 3;

    fill_weights(cur, 3);
    for (int i = 0; i < n; i++) {
        struct cairn_chunk_info info;
        int codec;
        if (i)
            nudge(cur, 100 + (uint64_t)i);
        saved[i] = malloc(CHUNK);
        memcpy(saved[i], cur, CHUNK);
        codec = put(f, cur, i ? &ids[i - 1] : NULL, &ids[i]);
        assert_int_equal(cairn_store_info(f->s, &ids[i], &info), 0);
        /*
         * Chunk i sits on a chain of i links while that stays within the
         * limit; the chunk after the longest allowed chain starts afresh, and
         * the next one may delta against it again.
         */
        if (i == 0 || i == CAIRN_STORE_MAX_CHAIN + 1) {
            assert_int_not_equal(codec, CAIRN_CODEC_XORDELTA);
            assert_false(info.has_base);
        } else {
            assert_int_equal(codec, CAIRN_CODEC_XORDELTA);
            assert_true(info.has_base);
        }
    }
    for (int i = 0; i < n; i++) {
        check(f, &ids[i], saved[i]);
        free(saved[i]);
    }
    assert_int_equal(cairn_store_verify(f->s, NULL, NULL), 0);
    free(cur);
}

struct problems {
    int n, base;
    char last[512];
};

static void on_problem(const char *msg, void *p)
{
    struct problems *pr = p;
    pr->n++;
    if (strstr(msg, "delta base"))
        pr->base++;
    snprintf(pr->last, sizeof(pr->last), "%s", msg);
}

/* Names of pack-*.pack files in the packs dir, in `out` (count returned). */
static int list_packs(struct fixture *f, char out[][160], int max)
{
    DIR *d = opendir(f->packs);
    struct dirent *e;
    int n = 0;
    assert_non_null(d);
    while ((e = readdir(d)) && n < max) {
        size_t l = strlen(e->d_name);
        if (l > 5 && !strcmp(e->d_name + l - 5, ".pack"))
            snprintf(out[n++], 160, "%s/%s", f->packs, e->d_name);
    }
    closedir(d);
    return n;
}

/* Base in one pack, delta in another; returns the base's pack path in `base_pack`. */
static void base_and_delta(struct fixture *f, cairn_oid *ida, cairn_oid *idb, char *base_pack)
{
    uint8_t *a = malloc(CHUNK), *b = malloc(CHUNK);
    char packs[4][160];

    fill_weights(a, 5);
    memcpy(b, a, CHUNK);
    nudge(b, 6);
    put(f, a, NULL, ida);
    assert_int_equal(list_packs(f, packs, 4), 1);
    snprintf(base_pack, 160, "%s", packs[0]);
    assert_int_equal(put(f, b, ida, idb), CAIRN_CODEC_XORDELTA);
    free(a);
    free(b);
}

static void test_missing_base(void **state)
{
    struct fixture *f = *state;
    struct problems pr = { 0, 0, "" };
    struct cairn_buf got = CAIRN_BUF_INIT, idx = CAIRN_BUF_INIT;
    char base_pack[160], hex[CAIRN_OID_HEXSZ + 1];
    cairn_oid ida, idb;

    base_and_delta(f, &ida, &idb, base_pack);
    assert_int_equal(cairn_buf_printf(&idx, "%.*s.idx", (int)(strlen(base_pack) - 5), base_pack),
                     0);
    assert_int_equal(unlink(base_pack), 0);
    assert_int_equal(unlink(idx.ptr), 0);
    reopen(f);
    assert_int_equal(cairn_store_get(f->s, &idb, &got), CAIRN_ECORRUPT);
    assert_int_equal(got.len, 0);
    assert_true(cairn_store_verify(f->s, on_problem, &pr) >= 1);
    assert_int_equal(pr.base, 1);
    cairn_oid_fmt(hex, &ida);
    hex[12] = '\0';
    assert_non_null(strstr(pr.last, hex));
    assert_non_null(strstr(pr.last, "missing"));
    cairn_buf_release(&got);
    cairn_buf_release(&idx);
}

static void test_damaged_base(void **state)
{
    struct fixture *f = *state;
    struct problems pr = { 0, 0, "" };
    struct cairn_buf got = CAIRN_BUF_INIT;
    char base_pack[160];
    cairn_oid ida, idb;
    unsigned char byte;
    off_t size;
    int fd;

    base_and_delta(f, &ida, &idb, base_pack);
    chmod(base_pack, 0644);
    fd = open(base_pack, O_RDWR);
    assert_true(fd >= 0);
    size = lseek(fd, 0, SEEK_END);
    assert_int_equal(pread(fd, &byte, 1, size / 2), 1);
    byte ^= 0x40;
    assert_int_equal(pwrite(fd, &byte, 1, size / 2), 1);
    close(fd);
    reopen(f);
    assert_int_equal(cairn_store_get(f->s, &idb, &got), CAIRN_ECORRUPT);
    assert_non_null(strstr(cairn_error_last(), "delta base"));
    /* The base itself and the delta that needs it are both reported. */
    assert_true(cairn_store_verify(f->s, on_problem, &pr) >= 2);
    assert_int_equal(pr.base, 1);
    cairn_buf_release(&got);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_delta_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chain_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_base, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_base, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
