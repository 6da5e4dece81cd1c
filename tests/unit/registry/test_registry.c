/*
 * Unit tests for the SQLite registry core: versions and numbering, prefix
 * lookups, tags, stage and stat cache, typed values, and the audit chain
 * (an edited or deleted row breaks verification).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cairn/registry.h"
#include "cairn/repo.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/hash.h"

static char dir[64], db[96];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/cairn-test-reg-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(db, sizeof(db), "%s/cairn.db", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return cairn_fs_rm_rf(dir);
}

static void insert(struct cairn_registry *r, const char *model, int seed, struct cairn_version *v)
{
    struct cairn_values params = { 0 };
    char rec[64];
    memset(v, 0, sizeof(*v));
    snprintf(v->model, sizeof(v->model), "%s", model);
    snprintf(v->kind, sizeof(v->kind), "model");
    snprintf(rec, sizeof(rec), "record-%s-%d", model, seed);
    cairn_hash(&v->id, rec, strlen(rec));
    cairn_hash(&v->tree, &seed, sizeof(seed));
    v->message = "m";
    v->author = "a";
    v->host = "h";
    v->code_dirty = -1;
    v->time_ns = 1000 + seed;
    assert_int_equal(cairn_values_set_number(&params, "lr", 0.5), 0);
    assert_int_equal(cairn_values_set_string(&params, "opt", "adam"), 0);
    assert_int_equal(cairn_values_set_bool(&params, "amp", true), 0);
    assert_int_equal(cairn_registry_begin(r), 0);
    assert_int_equal(cairn_registry_version_insert(r, v, rec, &params, NULL, NULL, 0), 0);
    assert_int_equal(cairn_registry_commit(r), 0);
    cairn_values_release(&params);
}

static void test_versions(void **state)
{
    struct cairn_registry *r;
    struct cairn_version v1, v2, w, got;
    struct cairn_values p = { 0 };
    char hex[CAIRN_OID_HEXSZ + 1];
    cairn_oid id;
    (void)state;
    assert_int_equal(cairn_registry_open(&r, db, 1), 0);
    insert(r, "m", 1, &v1);
    insert(r, "m", 2, &v2);
    insert(r, "other", 3, &w);
    assert_int_equal(v1.number, 1);
    assert_int_equal(v2.number, 2);
    assert_int_equal(w.number, 1);
    assert_int_equal(cairn_registry_version_latest(r, "m", &got), 0);
    assert_int_equal(got.number, 2);
    cairn_version_release(&got);
    assert_int_equal(cairn_registry_version_by_number(r, "m", 1, &got), 0);
    assert_int_equal(cairn_oid_cmp(&got.id, &v1.id), 0);
    cairn_version_release(&got);
    assert_int_equal(cairn_registry_version_by_number(r, "m", 9, &got), CAIRN_ENOTFOUND);
    cairn_oid_fmt(hex, &v2.id);
    hex[10] = '\0';
    assert_int_equal(cairn_registry_version_prefix(r, hex, &id), 0);
    assert_int_equal(cairn_oid_cmp(&id, &v2.id), 0);
    assert_int_equal(cairn_registry_version_prefix(r, "", &id), CAIRN_EAMBIGUOUS);
    assert_int_equal(cairn_registry_version_prefix(r, "zzzzzzz", &id), CAIRN_ENOTFOUND);
    assert_int_equal(cairn_registry_params(r, &v1.id, &p), 0);
    assert_int_equal(p.count, 3);
    assert_int_equal(cairn_values_get(&p, "amp")->type, CAIRN_VALUE_BOOL);
    assert_true(cairn_values_get(&p, "amp")->boolean);
    assert_string_equal(cairn_values_get(&p, "opt")->string, "adam");
    cairn_values_release(&p);
    /* The same id twice is refused. */
    assert_int_equal(cairn_registry_begin(r), 0);
    assert_int_equal(cairn_registry_version_insert(r, &v1, "x", NULL, NULL, NULL, 0),
                     CAIRN_EEXISTS);
    cairn_registry_rollback(r);
    /* Kind is fixed per model. */
    {
        struct cairn_model_info mi;
        assert_int_equal(cairn_registry_model_ensure(r, "m", "dataset", &mi), CAIRN_EINVALID);
        assert_int_equal(cairn_registry_model_ensure(r, "m", "model", &mi), 0);
        assert_int_equal(mi.nversions, 2);
    }
    /* Tags are immutable. */
    assert_int_equal(cairn_registry_tag_add(r, "m", "gold", &v1.id, "a"), 0);
    assert_int_equal(cairn_registry_tag_add(r, "m", "gold", &v2.id, "a"), CAIRN_EEXISTS);
    assert_int_equal(cairn_registry_tag_get(r, "m", "gold", &id), 0);
    assert_int_equal(cairn_oid_cmp(&id, &v1.id), 0);
    cairn_registry_free(r);
    cairn_registry_free(NULL);
}

static int count_stage(const struct cairn_stage_entry *e, void *payload)
{
    (void)e;
    (*(int *)payload)++;
    return 0;
}

static void test_stage_and_statcache(void **state)
{
    struct cairn_registry *r;
    struct cairn_stage_entry e = { 0 };
    struct cairn_stat_entry s = { 0 }, got;
    int n = 0;
    (void)state;
    assert_int_equal(cairn_registry_open(&r, db, 1), 0);
    e.model = "";
    e.path = "a.bin";
    e.size = 5;
    e.mode = 0644;
    assert_int_equal(cairn_registry_stage_put(r, &e), 0);
    e.path = "b.bin";
    assert_int_equal(cairn_registry_stage_put(r, &e), 0);
    assert_int_equal(cairn_registry_stage_put(r, &e), 0); /* replace, not duplicate */
    assert_int_equal(cairn_registry_stage_list(r, "", count_stage, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(cairn_registry_stage_clear(r, ""), 0);
    n = 0;
    assert_int_equal(cairn_registry_stage_list(r, NULL, count_stage, &n), 0);
    assert_int_equal(n, 0);
    s.size = 7;
    s.mtime_ns = 123456789012345LL;
    s.ino = 42;
    assert_int_equal(cairn_registry_statcache_put(r, "a.bin", &s), 0);
    assert_int_equal(cairn_registry_statcache_get(r, "a.bin", &got), 0);
    assert_int_equal(got.mtime_ns, s.mtime_ns);
    assert_int_equal(got.ino, 42);
    assert_int_equal(cairn_registry_statcache_get(r, "zz", &got), CAIRN_ENOTFOUND);
    cairn_registry_free(r);
}

static void test_audit_chain(void **state)
{
    struct cairn_registry *r;
    sqlite3 *raw;
    int64_t bad = 0;
    (void)state;
    assert_int_equal(cairn_registry_open(&r, db, 1), 0);
    assert_int_equal(cairn_registry_begin(r), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(cairn_registry_audit_append(r, "alice", "commit", "m@v1", "{\"n\":1}"), 0);
    assert_int_equal(cairn_registry_commit(r), 0);
    assert_int_equal(cairn_registry_audit_verify(r, &bad), 0);

    /* Edit a row behind the registry's back: verification names it. */
    assert_int_equal(sqlite3_open(db, &raw), SQLITE_OK);
    assert_int_equal(sqlite3_exec(raw, "UPDATE audit SET actor='mallory' WHERE seq=3", 0, 0, 0),
                     SQLITE_OK);
    assert_int_equal(cairn_registry_audit_verify(r, &bad), CAIRN_ECHECK);
    assert_int_equal(bad, 3);
    assert_non_null(strstr(cairn_error_last(), "entry 3"));
    /* Deleting a row in the middle breaks the chain at the gap. */
    assert_int_equal(sqlite3_exec(raw,
                                  "UPDATE audit SET actor='alice' WHERE seq=3;"
                                  "DELETE FROM audit WHERE seq=2",
                                  0, 0, 0),
                     SQLITE_OK);
    assert_int_equal(cairn_registry_audit_verify(r, &bad), CAIRN_ECHECK);
    assert_int_equal(bad, 2);
    sqlite3_close(raw);
    cairn_registry_free(r);
}

/* The head file: pinned after commit only, forward only, checked by verify. */
static void test_audit_head(void **state)
{
    struct cairn_registry *r;
    struct cairn_buf head = CAIRN_BUF_INIT;
    char path[128];
    sqlite3 *raw;
    int64_t bad = 0;
    (void)state;
    snprintf(path, sizeof(path), "%s/audit-head", dir);
    assert_int_equal(cairn_registry_open(&r, db, 1), 0);
    assert_int_equal(cairn_registry_begin(r), 0);
    assert_int_equal(cairn_registry_audit_append(r, "alice", "commit", "m@v1", "{}"), 0);
    assert_int_equal(cairn_registry_audit_append(r, "alice", "tag", "m@t", "{}"), 0);
    /* Not pinned before the commit: a crash here leaves no head ahead of the log. */
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(cairn_registry_commit(r), 0);
    assert_int_equal(cairn_fs_read_file(&head, path, 4096), 0);
    assert_non_null(strstr(head.ptr, "\nseq 2\n"));
    /* A rolled-back append does not move it. */
    assert_int_equal(cairn_registry_begin(r), 0);
    assert_int_equal(cairn_registry_audit_append(r, "alice", "tag", "m@u", "{}"), 0);
    cairn_registry_rollback(r);
    cairn_buf_clear(&head);
    assert_int_equal(cairn_fs_read_file(&head, path, 4096), 0);
    assert_non_null(strstr(head.ptr, "\nseq 2\n"));
    /* An append outside a transaction is pinned when it commits by itself. */
    assert_int_equal(cairn_registry_audit_append(r, "bob", "alias", "m@prod", "{}"), 0);
    cairn_buf_clear(&head);
    assert_int_equal(cairn_fs_read_file(&head, path, 4096), 0);
    assert_non_null(strstr(head.ptr, "\nseq 3\n"));
    assert_int_equal(cairn_registry_audit_verify(r, &bad), 0);
    /* The newest entry deleted: the chain is whole, the head is not there. */
    assert_int_equal(sqlite3_open(db, &raw), SQLITE_OK);
    assert_int_equal(sqlite3_exec(raw, "DELETE FROM audit WHERE seq=3", 0, 0, 0), SQLITE_OK);
    sqlite3_close(raw);
    assert_int_equal(cairn_registry_audit_verify(r, &bad), CAIRN_ECHECK);
    assert_int_equal(bad, 3);
    assert_non_null(strstr(cairn_error_last(), "audit head pins entry 3"));
    /* A damaged head file is an error naming it, not a silent pass. */
    assert_int_equal(cairn_fs_write_atomic(path, "junk\n", 5, 0644), 0);
    assert_int_equal(cairn_registry_audit_verify(r, &bad), CAIRN_ECORRUPT);
    assert_non_null(strstr(cairn_error_last(), "audit-head"));
    cairn_buf_release(&head);
    cairn_registry_free(r);
}

static void test_damaged_file(void **state)
{
    struct cairn_registry *r;
    char path[128];
    FILE *f;
    (void)state;
    snprintf(path, sizeof(path), "%s/garbage.db", dir);
    f = fopen(path, "w");
    fputs("this is not a database, not even close to one, really not at all", f);
    fclose(f);
    assert_int_equal(cairn_registry_open(&r, path, 0), CAIRN_ECORRUPT);
    assert_non_null(strstr(cairn_error_last(), "damaged"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_versions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stage_and_statcache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_head, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_file, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
