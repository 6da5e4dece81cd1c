/*
 * Unit tests for what push and pull share (lib/remote/sync.c) and the store
 * calls they rely on: alias entries (good and malformed), the remote chunk
 * index built from idx files over a file:// remote (cache use, a damaged
 * cache entry replaced, a damaged remote idx refused), and
 * cairn_store_read_encoded / cairn_store_check_encoded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cairn/common.h"
#include "cairn/store.h"
#include "remote/backend.h"
#include "remote/sync.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/hash.h"

static void test_alias_parse(void **state)
{
    struct cairn__alias_head h;
    const char good[] =
        "{\"model\":\"m\",\"alias\":\"prod\",\"version\":\"00112233445566778899aabbccddeeff"
        "00112233445566778899aabbccddeeff\",\"prev\":null}";
    const char *k7 = "aliases/m/prod/0000000000000007-abcdef0123456789.json";
    (void)state;
    assert_int_equal(cairn__sync_alias_parse(&h, k7, "m", "prod", good, strlen(good)), 0);
    assert_int_equal(h.found, 1);
    assert_int_equal(h.seq, 7);
    assert_int_equal(h.version.id[1], 0x11);
    assert_string_equal(h.prev, "");
    /* The body must name the model and alias of its key. */
    assert_int_equal(cairn__sync_alias_parse(&h, k7, "other", "prod", good, strlen(good)),
                     CAIRN_ECORRUPT);
    assert_int_equal(cairn__sync_alias_parse(&h, k7, "m", "staging", good, strlen(good)),
                     CAIRN_ECORRUPT);
    assert_int_equal(
        cairn__sync_alias_parse(&h, "aliases/m/prod/x.json", NULL, NULL, good, strlen(good)),
        CAIRN_ECORRUPT);
    /* Names: 16 digits, '-', 16 lowercase hex digits. */
    assert_int_equal(cairn__sync_alias_parse(&h, "aliases/m/prod/0000000000000001-a.json", NULL,
                                             NULL, good, strlen(good)),
                     CAIRN_ECORRUPT);
    assert_int_equal(cairn__sync_alias_seq("aliases/m/prod/10000000000000000-abcdef0123456789.json",
                                           "aliases/m/prod/"),
                     0);
    assert_int_equal(cairn__sync_alias_seq("aliases/m/prod/0000000000000002-ABCDEF0123456789.json",
                                           "aliases/m/prod/"),
                     0);
    assert_int_equal(cairn__sync_alias_parse(&h, k7, NULL, NULL, "{\"version\":\"zz\"}", 16),
                     CAIRN_ECORRUPT);
    assert_int_equal(cairn__sync_alias_parse(&h, k7, NULL, NULL, "[", 1), CAIRN_ECORRUPT);
    assert_int_equal(cairn__sync_alias_parse(&h, k7, NULL, NULL,
                                             "{\"version\":\"00112233445566778899aabbccddeeff"
                                             "00112233445566778899aabbccddeeff\",\"prev\":7}",
                                             90),
                     CAIRN_ECORRUPT);
}

struct fixture {
    char dir[64];
    char store[128], remote[128], cache[128];
    cairn_oid ids[3];
};

static void make_chunk(unsigned char *b, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)((i * 31 + seed * 7) ^ (i >> 3));
}

/* A store with three chunks, its pack and idx copied into a file:// remote's packs/. */
static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct cairn_store *s = NULL;
    struct cairn_store_writer *w = NULL;
    unsigned char buf[70000];
    char cmd[512];

    snprintf(f->dir, sizeof(f->dir), "/tmp/cairn-sync-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->store, sizeof(f->store), "%s/store", f->dir);
    snprintf(f->remote, sizeof(f->remote), "%s/remote", f->dir);
    snprintf(f->cache, sizeof(f->cache), "%s/cache", f->dir);
    assert_int_equal(cairn_store_init(f->store), 0);
    assert_int_equal(cairn_fs_mkdir_p(f->cache), 0);
    assert_int_equal(cairn_store_open(&s, f->store), 0);
    assert_int_equal(cairn_store_writer_new(&w, s), 0);
    for (unsigned i = 0; i < 3; i++) {
        make_chunk(buf, sizeof(buf), i);
        assert_int_equal(cairn_store_writer_put(w, buf, sizeof(buf) - i * 1000, &f->ids[i]), 0);
    }
    assert_int_equal(cairn_store_writer_commit(w), 0);
    cairn_store_writer_free(w);
    cairn_store_free(s);
    snprintf(cmd, sizeof(cmd), "mkdir -p %s/packs && cp %s/packs/pack-* %s/packs/", f->remote,
             f->store, f->remote);
    assert_int_equal(system(cmd), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    cairn_fs_rm_rf(f->dir);
    free(f);
    return 0;
}

/* Entry N of m@prod by writer W (one hex digit repeated), naming version byte V. */
static void put_entry(struct cairn_remote *r, char *key, size_t cap, unsigned long long seq, char w,
                      const char *prev, int v, const char *model)
{
    char body[512], hex[65], writer[17];
    memset(writer, w, 16);
    writer[16] = '\0';
    for (int i = 0; i < 64; i++)
        hex[i] = "0123456789abcdef"[(v >> ((i & 1) ? 0 : 4)) & 15];
    hex[64] = '\0';
    snprintf(key, cap, "aliases/m/prod/%016llu-%s.json", seq, writer);
    snprintf(body, sizeof(body),
             "{\"model\":\"%s\",\"alias\":\"prod\",\"version\":\"%s\",\"prev\":%s%s%s}", model, hex,
             prev ? "\"" : "", prev ? prev : "null", prev ? "\"" : "");
    assert_int_equal(cairn_remote_put_buf(r, key, body, strlen(body)), 0);
}

static int count_warnings;
static void count_warn(const char *msg, void *payload)
{
    (void)msg;
    (void)payload;
    count_warnings++;
}

static void head_of(struct cairn__alias_head *h, struct cairn_remote *r, const char *prefer)
{
    struct cairn__sync_keys k;
    assert_int_equal(cairn__sync_list(&k, r, "aliases/m/prod/"), 0);
    assert_int_equal(cairn__sync_alias_head(h, r, "origin", "m", "prod", k.keys, k.n, prefer), 0);
    cairn__sync_keys_free(&k);
}

/* The remote alias rule: an unbroken run from 1, prev links, same model, ties. */
static void test_alias_head(void **state)
{
    struct fixture *f = *state;
    struct cairn_remote *r = NULL;
    struct cairn__alias_head h;
    char url[160], k1[128], k2[128], k2b[128], k3[128], kx[128];
    bool desc;

    snprintf(url, sizeof(url), "file://%s", f->remote);
    assert_int_equal(cairn_remote_open(&r, url, NULL), 0);
    cairn_set_warn_handler(count_warn, NULL);
    head_of(&h, r, NULL);
    assert_int_equal(h.found, 0);

    put_entry(r, k1, sizeof(k1), 1, 'a', NULL, 1, "m");
    put_entry(r, k2, sizeof(k2), 2, 'a', k1, 2, "m");
    head_of(&h, r, NULL);
    assert_int_equal(h.found, 1);
    assert_int_equal(h.seq, 2);
    assert_string_equal(h.key, k2);
    assert_int_equal(h.tied, 0);

    /* An entry that jumps the sequence is ignored (it would freeze the alias). */
    count_warnings = 0;
    put_entry(r, kx, sizeof(kx), 9999999999999999ULL, 'f', k2, 9, "m");
    head_of(&h, r, NULL);
    assert_int_equal(h.seq, 2);
    assert_true(count_warnings > 0);

    /* Next in line, but naming another model, or a prev that is not one below: ignored. */
    put_entry(r, k3, sizeof(k3), 3, 'b', k2, 3, "other");
    head_of(&h, r, NULL);
    assert_int_equal(h.seq, 2);
    assert_int_equal(cairn_remote_delete(r, k3), 0);
    put_entry(r, k3, sizeof(k3), 3, 'b', k1, 3, "m");
    head_of(&h, r, NULL);
    assert_int_equal(h.seq, 2);
    assert_int_equal(cairn_remote_delete(r, k3), 0);

    /* Two writers at one number: a tie, the last key unless one is preferred. */
    put_entry(r, k2b, sizeof(k2b), 2, 'c', k1, 4, "m");
    head_of(&h, r, NULL);
    assert_int_equal(h.tied, 1);
    assert_string_equal(h.key, k2b);
    head_of(&h, r, k2);
    assert_string_equal(h.key, k2);

    /* Descent follows prev links down to the ancestor's number. */
    put_entry(r, k3, sizeof(k3), 3, 'b', k2, 3, "m");
    head_of(&h, r, NULL);
    assert_int_equal(h.seq, 3);
    assert_int_equal(cairn__sync_alias_descends(&desc, r, "m", "prod", &h, k2), 0);
    assert_true(desc);
    assert_int_equal(cairn__sync_alias_descends(&desc, r, "m", "prod", &h, k1), 0);
    assert_true(desc);
    assert_int_equal(cairn__sync_alias_descends(&desc, r, "m", "prod", &h, k2b), 0);
    assert_false(desc);
    cairn_set_warn_handler(NULL, NULL);
    cairn_remote_free(r);
}

static void test_rindex_load(void **state)
{
    struct fixture *f = *state;
    struct cairn_remote *r = NULL;
    struct cairn__rindex ix;
    char url[160], cmd[512];
    cairn_oid other;

    snprintf(url, sizeof(url), "file://%s", f->remote);
    assert_int_equal(cairn_remote_open(&r, url, NULL), 0);
    assert_int_equal(cairn__rindex_load(&ix, r, f->cache), 0);
    assert_int_equal(ix.n, 3);
    assert_int_equal(ix.npacks, 1);
    for (int i = 0; i < 3; i++)
        assert_non_null(cairn__rindex_find(&ix, &f->ids[i]));
    memset(&other, 0x5a, sizeof(other));
    assert_null(cairn__rindex_find(&ix, &other));
    cairn__rindex_release(&ix);

    /* A damaged cached idx is dropped and read again from the remote. */
    snprintf(cmd, sizeof(cmd),
             "for f in %s/pack-*.idx; do printf XX | dd of=$f bs=1 seek=40 "
             "conv=notrunc 2>/dev/null; done",
             f->cache);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(cairn__rindex_load(&ix, r, f->cache), 0);
    assert_int_equal(ix.n, 3);
    cairn__rindex_release(&ix);

    /* A damaged idx on the remote is refused, naming it. */
    snprintf(cmd, sizeof(cmd),
             "rm -f %s/pack-*.idx; for f in %s/packs/pack-*.idx; do printf XX | dd "
             "of=$f bs=1 seek=40 conv=notrunc 2>/dev/null; done",
             f->cache, f->remote);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(cairn__rindex_load(&ix, r, f->cache), CAIRN_ECORRUPT);
    assert_non_null(strstr(cairn_error_last(), "remote object 'packs/pack-"));

    /* A pack without its idx is an unfinished upload: nothing indexed. */
    snprintf(cmd, sizeof(cmd), "rm -f %s/packs/pack-*.idx", f->remote);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(cairn__rindex_load(&ix, r, f->cache), 0);
    assert_int_equal(ix.n, 0);
    cairn__rindex_release(&ix);
    cairn_remote_free(r);
}

static void test_encoded_roundtrip(void **state)
{
    struct fixture *f = *state;
    struct cairn_store *s = NULL;
    struct cairn_buf enc = CAIRN_BUF_INIT;
    struct cairn_chunk_info info;

    assert_int_equal(cairn_store_open(&s, f->store), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(cairn_store_read_encoded(s, &f->ids[i], &info, &enc), 0);
        assert_int_equal(enc.len, info.stored_len);
        assert_int_equal(cairn_store_check_encoded(s, &f->ids[i], info.codec, NULL, info.raw_len,
                                                   enc.ptr, enc.len),
                         0);
        /* The bytes of another chunk, or one flipped byte, fail verification. */
        assert_int_equal(cairn_store_check_encoded(s, &f->ids[(i + 1) % 3], info.codec, NULL,
                                                   info.raw_len, enc.ptr, enc.len),
                         CAIRN_ECORRUPT);
        enc.ptr[enc.len / 2] ^= 0x40;
        assert_int_equal(cairn_store_check_encoded(s, &f->ids[i], info.codec, NULL, info.raw_len,
                                                   enc.ptr, enc.len),
                         CAIRN_ECORRUPT);
    }
    /* A codec that needs a base, given none, and an unknown codec. */
    assert_int_equal(
        cairn_store_check_encoded(s, &f->ids[0], CAIRN_CODEC_XORDELTA, NULL, 10, "0123456789", 10),
        CAIRN_ECORRUPT);
    assert_int_equal(cairn_store_check_encoded(s, &f->ids[0], 99, NULL, 10, "0123456789", 10),
                     CAIRN_ECORRUPT);
    cairn_buf_release(&enc);
    cairn_store_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alias_parse),
        cmocka_unit_test_setup_teardown(test_rindex_load, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alias_head, setup, teardown),
        cmocka_unit_test_setup_teardown(test_encoded_roundtrip, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
