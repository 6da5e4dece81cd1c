/*
 * Unit test for lib/registry/sqlite_alias.c and sqlite_gate.c: aliases and
 * their history, stored gate results (latest per policy), and dataset
 * validation results, against a registry in a temporary directory.
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

#include "cairn/registry.h"
#include "cairn/repo.h"
#include "util/fs.h"
#include "util/hash.h"

struct fixture {
    char dir[64];
    struct cairn_registry *r;
    cairn_oid v[3];
};

/* A model with three versions whose ids are 0x01.., 0x02.., 0x03... */
static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct cairn_model_info m;
    char path[128];
    snprintf(f->dir, sizeof(f->dir), "/tmp/cairn-regrel-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(path, sizeof(path), "%s/cairn.db", f->dir);
    assert_int_equal(cairn_registry_open(&f->r, path, 1), 0);
    assert_int_equal(cairn_registry_begin(f->r), 0);
    assert_int_equal(cairn_registry_model_ensure(f->r, "bert", "model", &m), 0);
    for (int i = 0; i < 3; i++) {
        struct cairn_version v;
        memset(&v, 0, sizeof(v));
        memset(v.id.id, i + 1, sizeof(v.id.id));
        snprintf(v.model, sizeof(v.model), "bert");
        snprintf(v.kind, sizeof(v.kind), "model");
        v.message = "m";
        v.author = "t";
        v.host = "h";
        v.code_dirty = -1;
        assert_int_equal(cairn_registry_version_insert(f->r, &v, "{}", NULL, NULL, NULL, 0), 0);
        assert_int_equal(v.number, i + 1);
        f->v[i] = v.id;
    }
    assert_int_equal(cairn_registry_commit(f->r), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    cairn_registry_free(f->r);
    cairn_fs_rm_rf(f->dir);
    free(f);
    return 0;
}

struct seen {
    int n;
    int numbers[8];
    int old_numbers[8];
    char reasons[8][32];
};

static int on_event(const struct cairn_alias_event *e, void *payload)
{
    struct seen *s = payload;
    s->numbers[s->n] = e->new_number;
    s->old_numbers[s->n] = e->has_old ? e->old_number : 0;
    snprintf(s->reasons[s->n], sizeof(s->reasons[0]), "%s", e->reason ? e->reason : "");
    s->n++;
    return 0;
}

static int on_alias(const struct cairn_alias_entry *e, void *payload)
{
    struct seen *s = payload;
    s->numbers[s->n++] = e->number;
    assert_string_equal(e->model, "bert");
    return 0;
}

static void test_alias_set_and_history(void **state)
{
    struct fixture *f = *state;
    struct seen s;
    cairn_oid got;

    assert_int_equal(cairn_registry_alias_get(f->r, "bert", "production", &got), CAIRN_ENOTFOUND);
    assert_int_equal(cairn_registry_begin(f->r), 0);
    assert_int_equal(cairn_registry_alias_set(f->r, "bert", "production", &f->v[0], "a", "one"), 1);
    assert_int_equal(cairn_registry_alias_set(f->r, "bert", "production", &f->v[1], "b", NULL), 1);
    /* unchanged: nothing written */
    assert_int_equal(cairn_registry_alias_set(f->r, "bert", "production", &f->v[1], "b", "x"), 0);
    assert_int_equal(cairn_registry_alias_set(f->r, "bert", "production", &f->v[0], "c", "back"),
                     1);
    assert_int_equal(cairn_registry_alias_set(f->r, "bert", "staging", &f->v[2], "c", NULL), 1);
    assert_int_equal(cairn_registry_commit(f->r), 0);

    assert_int_equal(cairn_registry_alias_get(f->r, "bert", "production", &got), 0);
    assert_memory_equal(got.id, f->v[0].id, CAIRN_OID_RAWSZ);

    memset(&s, 0, sizeof(s));
    assert_int_equal(cairn_registry_alias_history(f->r, "bert", "production", on_event, &s), 0);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.old_numbers[0], 0);
    assert_int_equal(s.numbers[0], 1);
    assert_int_equal(s.old_numbers[1], 1);
    assert_int_equal(s.numbers[1], 2);
    assert_int_equal(s.numbers[2], 1);
    assert_string_equal(s.reasons[0], "one");
    assert_string_equal(s.reasons[1], "");
    assert_string_equal(s.reasons[2], "back");

    memset(&s, 0, sizeof(s));
    assert_int_equal(cairn_registry_alias_list(f->r, "bert", on_alias, &s), 0);
    assert_int_equal(s.n, 2); /* production, staging */
    assert_int_equal(s.numbers[0], 1);
    assert_int_equal(s.numbers[1], 3);
    memset(&s, 0, sizeof(s));
    assert_int_equal(cairn_registry_alias_list(f->r, "other", on_alias, &s), 0);
    assert_int_equal(s.n, 0);

    assert_int_equal(cairn_registry_alias_history(f->r, "nosuch", "x", on_event, &s),
                     CAIRN_ENOTFOUND);
}

static void test_alias_rollback_leaves_nothing(void **state)
{
    struct fixture *f = *state;
    struct seen s;
    cairn_oid got;
    assert_int_equal(cairn_registry_begin(f->r), 0);
    assert_int_equal(cairn_registry_alias_set(f->r, "bert", "canary", &f->v[2], "a", NULL), 1);
    cairn_registry_rollback(f->r);
    assert_int_equal(cairn_registry_alias_get(f->r, "bert", "canary", &got), CAIRN_ENOTFOUND);
    memset(&s, 0, sizeof(s));
    assert_int_equal(cairn_registry_alias_history(f->r, "bert", "canary", on_event, &s), 0);
    assert_int_equal(s.n, 0);
}

static int count_gate(const struct cairn_gate_record *g, void *payload)
{
    (void)g;
    (*(int *)payload)++;
    return 0;
}

static void test_gate_results_latest_per_policy(void **state)
{
    struct fixture *f = *state;
    struct cairn_gate_record rec, got;
    cairn_oid pa, pb;
    int n = 0;

    memset(pa.id, 0xaa, sizeof(pa.id));
    memset(pb.id, 0xbb, sizeof(pb.id));
    assert_int_equal(cairn_registry_gate_latest(f->r, &f->v[0], &pa, &got), CAIRN_ENOTFOUND);

    memset(&rec, 0, sizeof(rec));
    rec.version = f->v[0];
    rec.policy = pa;
    rec.policy_name = "a.yaml";
    rec.passed = 1;
    rec.result = "{\"verdict\":\"pass\"}";
    rec.actor = "t";
    assert_int_equal(cairn_registry_gate_add(f->r, &rec), 0);
    assert_true(rec.id > 0);
    rec.policy = pb;
    rec.passed = 0;
    rec.result = "{\"verdict\":\"fail\"}";
    rec.time_ns = 0;
    assert_int_equal(cairn_registry_gate_add(f->r, &rec), 0);

    assert_int_equal(cairn_registry_gate_latest(f->r, &f->v[0], &pa, &got), 0);
    assert_int_equal(got.passed, 1);
    assert_string_equal(got.policy_name, "a.yaml");
    assert_string_equal(got.result, "{\"verdict\":\"pass\"}");
    cairn_gate_record_release(&got);
    assert_int_equal(cairn_registry_gate_latest(f->r, &f->v[0], NULL, &got), 0);
    assert_int_equal(got.passed, 0); /* the newest of any policy */
    assert_memory_equal(got.policy.id, pb.id, CAIRN_OID_RAWSZ);
    cairn_gate_record_release(&got);

    /* a later failing run under policy a supersedes the pass */
    rec.policy = pa;
    rec.passed = 0;
    assert_int_equal(cairn_registry_gate_add(f->r, &rec), 0);
    assert_int_equal(cairn_registry_gate_latest(f->r, &f->v[0], &pa, &got), 0);
    assert_int_equal(got.passed, 0);
    cairn_gate_record_release(&got);

    assert_int_equal(cairn_registry_gate_latest(f->r, &f->v[1], &pa, &got), CAIRN_ENOTFOUND);
    assert_int_equal(cairn_registry_gate_list(f->r, &f->v[0], count_gate, &n), 0);
    assert_int_equal(n, 3);
    cairn_gate_record_release(NULL);
}

static void test_data_validations(void **state)
{
    struct fixture *f = *state;
    int passed = -1;
    long long t = 0;

    assert_int_equal(cairn_registry_data_validation_latest(f->r, &f->v[2], &passed, &t),
                     CAIRN_ENOTFOUND);
    assert_int_equal(cairn_registry_data_validation_add(f->r, &f->v[2], "s.yaml", 1, "{}", "t"), 0);
    assert_int_equal(cairn_registry_data_validation_latest(f->r, &f->v[2], &passed, &t), 0);
    assert_int_equal(passed, 1);
    assert_true(t > 0);
    assert_int_equal(cairn_registry_data_validation_add(f->r, &f->v[2], "s.yaml", 0, NULL, "t"), 0);
    assert_int_equal(cairn_registry_data_validation_latest(f->r, &f->v[2], &passed, NULL), 0);
    assert_int_equal(passed, 0);
}

static void test_tables_created_on_reopen(void **state)
{
    struct fixture *f = *state;
    char path[128];
    struct cairn_registry *r2 = NULL;
    struct cairn_gate_record got;
    snprintf(path, sizeof(path), "%s/cairn.db", f->dir);
    assert_int_equal(cairn_registry_open(&r2, path, 0), 0);
    assert_int_equal(cairn_registry_gate_latest(r2, &f->v[0], NULL, &got), CAIRN_ENOTFOUND);
    cairn_registry_free(r2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_alias_set_and_history, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alias_rollback_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gate_results_latest_per_policy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_data_validations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tables_created_on_reopen, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
