/*
 * Unit test for lib/registry/sqlite_serve.c: tokens limited to models, and a
 * registry whose api_tokens and rollouts tables predate scopes and the
 * rollout's forced/policy columns (made here with the old statements) being
 * migrated on first use, its old tokens keeping every model.
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
#include "cairn/serve.h"
#include "util/fs.h"
#include "util/hash.h"

static void test_token_scopes(void **state)
{
    (void)state;
    char dir[] = "/tmp/cairn-regserve-XXXXXX", path[128];
    struct cairn_registry *r = NULL;
    struct cairn_token_info t;
    const char *models[] = { "fraud", "clf" };
    const char *bad[] = { "Bad Name" };
    cairn_oid h1, h2, h3;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/cairn.db", dir);
    assert_int_equal(cairn_registry_open(&r, path, 1), 0);
    cairn_hash(&h1, "one", 3);
    cairn_hash(&h2, "two", 3);
    cairn_hash(&h3, "three", 5);
    assert_int_equal(cairn_registry_token_add(r, &h1, "all", CAIRN_ROLE_WRITE, NULL, 0, "t"), 0);
    assert_int_equal(cairn_registry_token_add(r, &h2, "two", CAIRN_ROLE_PROMOTE, models, 2, "t"),
                     0);
    assert_int_equal(cairn_registry_token_add(r, &h3, "bad", CAIRN_ROLE_READ, bad, 1, "t"),
                     CAIRN_EINVALID);

    assert_int_equal(cairn_registry_token_find(r, &h1, &t), 0);
    assert_int_equal(t.role, CAIRN_ROLE_WRITE);
    assert_string_equal(t.name, "all");
    assert_int_equal(t.nmodels, 0);
    assert_int_equal(cairn_registry_token_find(r, &h2, &t), 0);
    assert_int_equal(t.role, CAIRN_ROLE_PROMOTE);
    assert_int_equal(t.nmodels, 2);
    assert_string_equal(t.models[0], "clf"); /* sorted */
    assert_string_equal(t.models[1], "fraud");
    assert_int_equal(cairn_registry_token_find(r, &h3, &t), CAIRN_ENOTFOUND);
    cairn_registry_free(r);
    cairn_fs_rm_rf(dir);
}

static void test_old_tables_migrate(void **state)
{
    (void)state;
    char dir[] = "/tmp/cairn-regserve-XXXXXX", path[128];
    struct cairn_registry *r = NULL;
    struct cairn_token_info t;
    struct cairn_rollout_state s, got;
    sqlite3 *db = NULL;
    cairn_oid h;
    char sql[1024], hex[CAIRN_OID_HEXSZ + 1];

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/cairn.db", dir);
    assert_int_equal(cairn_registry_open(&r, path, 1), 0);
    cairn_registry_free(r);
    /* The serve tables as the first serving release made them, with one token and rollout. */
    cairn_hash(&h, "old", 3);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    snprintf(sql, sizeof(sql),
             "CREATE TABLE api_tokens(hash BLOB PRIMARY KEY, name TEXT UNIQUE NOT NULL,"
             " role INTEGER NOT NULL, author TEXT NOT NULL, time_ns INTEGER NOT NULL);"
             "INSERT INTO api_tokens VALUES(x'%s', 'old', 4, 'root', 1);"
             "CREATE TABLE rollouts(model TEXT PRIMARY KEY, alias TEXT NOT NULL,"
             " stable BLOB NOT NULL, candidate BLOB NOT NULL, plan TEXT NOT NULL,"
             " phase TEXT NOT NULL, step INTEGER NOT NULL, step_elapsed_ms INTEGER NOT NULL,"
             " failures INTEGER NOT NULL, step_passed INTEGER NOT NULL,"
             " started_ns INTEGER NOT NULL, updated_ns INTEGER NOT NULL, reason TEXT);"
             "INSERT INTO rollouts VALUES('clf', 'production', x'00', x'00', '', 'running',"
             " 0, 0, 0, 0, 1, 1, NULL);",
             cairn_oid_fmt(hex, &h));
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    assert_int_equal(cairn_registry_open(&r, path, 0), 0);
    /* The old token: every model. */
    assert_int_equal(cairn_registry_token_find(r, &h, &t), 0);
    assert_int_equal(t.role, CAIRN_ROLE_ADMIN);
    assert_int_equal(t.nmodels, 0);
    /* The old rollout reads back without forced or policy; new ones keep them. */
    assert_int_equal(cairn_registry_rollout_get(r, "clf", &got), 0);
    assert_null(got.forced);
    assert_null(got.policy);
    assert_string_equal(got.phase, "running");
    cairn_rollout_state_release(&got);
    memset(&s, 0, sizeof(s));
    snprintf(s.model, sizeof(s.model), "clf");
    snprintf(s.alias, sizeof(s.alias), "production");
    snprintf(s.phase, sizeof(s.phase), "running");
    s.plan = "";
    s.forced = "hotfix";
    s.policy = "/srv/gates/p.yaml";
    assert_int_equal(cairn_registry_rollout_put(r, &s), 0);
    assert_int_equal(cairn_registry_rollout_get(r, "clf", &got), 0);
    assert_string_equal(got.forced, "hotfix");
    assert_string_equal(got.policy, "/srv/gates/p.yaml");
    cairn_rollout_state_release(&got);
    cairn_registry_free(r);
    /* A second open finds the columns there and adds nothing. */
    assert_int_equal(cairn_registry_open(&r, path, 0), 0);
    assert_int_equal(cairn_registry_rollout_get(r, "clf", &got), 0);
    assert_string_equal(got.forced, "hotfix");
    cairn_rollout_state_release(&got);
    cairn_registry_free(r);
    cairn_fs_rm_rf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_token_scopes),
        cmocka_unit_test(test_old_tables_migrate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
