/*
 * Unit test for cairn_repo_release_check() (lib/repo/release.c), the one
 * rule `cairn promote`, the rollouts of `cairn serve` and `rollback --to`
 * apply before an alias moves: no policy, no gate result, a passed one, a
 * failed one under an explicit policy, which failures force may override,
 * and the audit details it adds.
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

#include <jansson.h>

#include "cairn/gate.h"
#include "cairn/release.h"
#include "cairn/repo.h"
#include "util/fs.h"
#include "util/hash.h"

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Evaluate `policy` on `v` and store the result as `cairn gate` does; its id. */
static int64_t gate(struct cairn_repo *repo, const struct cairn_version *v, const char *policy)
{
    struct cairn_gate_repo_ctx x;
    struct cairn_policy *p = NULL;
    struct cairn_gate_result *r = NULL;
    char hex[CAIRN_OID_HEXSZ + 1];
    int64_t id = 0;
    cairn_repo_gate_ctx_init(&x, repo, v->model);
    assert_int_equal(cairn_policy_load_file(&p, policy), 0);
    assert_int_equal(cairn_gate_evaluate(&r, p, &x.ctx, cairn_oid_fmt(hex, &v->id)), 0);
    assert_int_equal(cairn_repo_gate_record(repo, v, r, policy, &id), 0);
    cairn_gate_result_free(r);
    cairn_policy_free(p);
    return id;
}

static void test_release_check(void **state)
{
    (void)state;
    char dir[] = "/tmp/cairn-relcheck-XXXXXX", old[4096];
    const char *paths[] = { "w.bin" };
    struct cairn_repo *repo = NULL;
    struct cairn_version v;
    struct cairn_release_check c;
    struct cairn_promote_result pr;
    struct cairn_promote_opts po = { .alias = "production" };
    struct cairn_commit_opts co = { .model = "demo", .message = "m", .metrics_file = "m.json" };
    json_t *d;
    char *details;
    int64_t passed_id, failed_id;

    assert_non_null(getcwd(old, sizeof(old)));
    assert_non_null(mkdtemp(dir));
    assert_int_equal(chdir(dir), 0);
    setenv("CAIRN_USER", "tester", 1);
    assert_int_equal(cairn_repo_init("."), 0);
    assert_int_equal(cairn_repo_open(&repo, "."), 0);
    write_file("w.bin", "weights");
    write_file("m.json", "{\"accuracy\": 0.93}");
    write_file("lenient.yaml", "checks:\n  - metric: accuracy\n    min: 0.9\n");
    write_file("strict.yaml", "checks:\n  - metric: accuracy\n    min: 0.95\n");
    assert_int_equal(cairn_repo_add(repo, paths, 1, NULL, NULL), 0);
    if (cairn_repo_commit(repo, &co, &v) < 0)
        fail_msg("commit: %s", cairn_error_last());

    /* No policy for the alias: CAIRN_EINVALID, saying how to set one; force may override it. */
    assert_int_equal(cairn_repo_release_check(&c, repo, &v, "production", NULL, "roll out"),
                     CAIRN_EINVALID);
    assert_non_null(strstr(cairn_error_last(),
                           "refusing to roll out demo@v1 to 'production': "
                           "alias 'production' has no gate policy"));
    assert_null(c.policy_name);
    assert_true(cairn_release_check_forcible(CAIRN_EINVALID));
    cairn_release_check_release(&c);

    /* A policy, no gate result under its digest. */
    assert_int_equal(cairn_repo_alias_policy_set(repo, "production", "lenient.yaml"), 0);
    assert_int_equal(cairn_repo_release_check(&c, repo, &v, "production", NULL, "roll out"),
                     CAIRN_ECHECK);
    assert_non_null(strstr(cairn_error_last(), "it has no gate result for policy"));
    assert_non_null(strstr(c.policy_name, "lenient.yaml"));
    assert_false(cairn_oid_is_zero(&c.policy));
    assert_int_equal(c.have_gate, 0);
    cairn_release_check_release(&c);

    /* A gate under another policy does not count; one under the alias's does. */
    failed_id = gate(repo, &v, "strict.yaml");
    assert_int_equal(cairn_repo_release_check(&c, repo, &v, "production", NULL, "promote"),
                     CAIRN_ECHECK);
    cairn_release_check_release(&c);
    passed_id = gate(repo, &v, "lenient.yaml");
    assert_int_equal(cairn_repo_release_check(&c, repo, &v, "production", NULL, "promote"), 0);
    assert_int_equal(c.have_gate, 1);
    assert_int_equal(c.gate_passed, 1);
    assert_true(c.gate_id == passed_id);

    /* The audit details promote records, added to the caller's. */
    details = strdup("{\"step\":2}");
    assert_int_equal(cairn_release_check_annotate(&details, &c, 1, "hotfix"), 0);
    d = json_loads(details, 0, NULL);
    assert_non_null(d);
    assert_int_equal(json_integer_value(json_object_get(d, "step")), 2);
    assert_true(json_is_true(json_object_get(d, "forced")));
    assert_string_equal(json_string_value(json_object_get(d, "reason")), "hotfix");
    assert_true(json_integer_value(json_object_get(d, "gate")) == passed_id);
    assert_non_null(strstr(json_string_value(json_object_get(d, "policy_name")), "lenient.yaml"));
    assert_int_equal(strlen(json_string_value(json_object_get(d, "policy"))), CAIRN_OID_HEXSZ);
    json_decref(d);
    free(details);
    cairn_release_check_release(&c);

    /* An explicit policy wins over the alias's: its latest result failed. */
    assert_int_equal(cairn_repo_release_check(&c, repo, &v, "production", "strict.yaml", "promote"),
                     CAIRN_ECHECK);
    assert_non_null(strstr(cairn_error_last(), "its latest gate for policy 'strict.yaml'"));
    assert_int_equal(c.have_gate, 1);
    assert_int_equal(c.gate_passed, 0);
    assert_true(c.gate_id == failed_id);
    cairn_release_check_release(&c);

    /* Only the check's own refusals may be forced, never a runtime failure. */
    assert_true(cairn_release_check_forcible(CAIRN_ECHECK));
    assert_true(cairn_release_check_forcible(CAIRN_ENOTFOUND));
    assert_false(cairn_release_check_forcible(CAIRN_ERROR));
    assert_false(cairn_release_check_forcible(CAIRN_ENOMEM));

    /* promote applies the same check: the alias's policy passed, so it moves unforced. */
    assert_int_equal(cairn_repo_promote(&pr, repo, &v, &po), 0);
    assert_int_equal(pr.moved, 1);
    assert_int_equal(pr.forced, 0);
    assert_true(pr.gate_id == passed_id);
    po.policy = "strict.yaml";
    assert_int_equal(cairn_repo_promote(&pr, repo, &v, &po), CAIRN_ECHECK);
    assert_non_null(strstr(cairn_error_last(), "refusing to promote demo@v1 to 'production'"));

    cairn_version_release(&v);
    cairn_repo_free(repo);
    assert_int_equal(chdir(old), 0);
    cairn_fs_rm_rf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_release_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
