/*
 * Unit test for lib/gate/repoctx.c: a policy evaluated against a real
 * temporary repository (metrics recorded at commit, an alias that is not
 * set, signatures stored beside the registry).
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

#include "cairn/gate.h"
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

static void test_repo_facts(void **state)
{
    (void)state;
    char dir[] = "/tmp/cairn-repoctx-XXXXXX", old[4096], hex[CAIRN_OID_HEXSZ + 1];
    char sec[256], pub[256];
    const char *paths[] = { "w.bin" };
    struct cairn_repo *repo = NULL;
    struct cairn_version v;
    struct cairn_gate_repo_ctx x;
    struct cairn_policy *p = NULL;
    struct cairn_gate_result *r = NULL;
    struct cairn_seckey sk;
    struct cairn_signature sig;
    const char *policy =
        "checks:\n"
        "  - metric: accuracy\n    min: 0.9\n"
        "  - metric: latency_p99_ms\n    max: 50\n"
        "  - metric: optimizer\n    min: 0\n"
        "  - metric: accuracy\n    no_regression_vs: production\n"
        "  - signature: required\n"
        "  - data: validated\n";
    struct cairn_commit_opts co = { .model = "demo",
                                    .message = "first",
                                    .metrics_file = "metrics.json" };

    assert_non_null(getcwd(old, sizeof(old)));
    assert_non_null(mkdtemp(dir));
    assert_int_equal(chdir(dir), 0);
    setenv("CAIRN_USER", "tester", 1);
    assert_int_equal(cairn_repo_init("."), 0);
    assert_int_equal(cairn_repo_open(&repo, "."), 0);
    write_file("w.bin", "weights");
    write_file("metrics.json", "{\"accuracy\": 0.93, \"optimizer\": \"adam\"}");
    assert_int_equal(cairn_repo_add(repo, paths, 1, NULL, NULL), 0);
    if (cairn_repo_commit(repo, &co, &v) < 0)
        fail_msg("commit: %s", cairn_error_last());
    cairn_oid_fmt(hex, &v.id);

    cairn_gate_repo_ctx_init(&x, repo, v.model);
    assert_int_equal(cairn_policy_parse(&p, "p.yaml", policy, strlen(policy)), 0);
    assert_int_equal(cairn_gate_evaluate(&r, p, &x.ctx, hex), 0);
    assert_int_equal(r->checks[0].verdict, CAIRN_VERDICT_PASS);
    assert_true(r->checks[0].value == 0.93);
    assert_int_equal(r->checks[1].verdict, CAIRN_VERDICT_FAIL);
    assert_string_equal(r->checks[1].reason, "metric 'latency_p99_ms' not recorded");
    assert_int_equal(r->checks[2].verdict, CAIRN_VERDICT_ERROR);
    assert_string_equal(r->checks[2].reason, "metric 'optimizer' is not a number");
    assert_int_equal(r->checks[3].verdict, CAIRN_VERDICT_FAIL);
    assert_string_equal(r->checks[3].reason, "alias 'production' is not set");
    assert_int_equal(r->checks[4].verdict, CAIRN_VERDICT_FAIL);
    assert_string_equal(r->checks[4].reason, "version is not signed");
    assert_int_equal(r->checks[5].verdict, CAIRN_VERDICT_ERROR);
    cairn_gate_result_free(r);

    /* Sign with a trusted key: the signature check passes. */
    snprintf(sec, sizeof(sec), "%s/k.key", dir);
    snprintf(pub, sizeof(pub), "%s/" CAIRN_TRUSTED_KEYS_DIR, cairn_repo_cairndir(repo));
    assert_int_equal(cairn_fs_mkdir_p(pub), 0);
    snprintf(pub, sizeof(pub), "%s/" CAIRN_TRUSTED_KEYS_DIR "/k.pub", cairn_repo_cairndir(repo));
    assert_int_equal(cairn_keygen(NULL, sec, pub), 0);
    assert_int_equal(cairn_seckey_load(&sk, sec), 0);
    assert_int_equal(cairn_sign_version(&sig, &sk, &v.id), 0);
    assert_int_equal(cairn_signature_store(cairn_repo_cairndir(repo), &v.id, &sig), 0);
    cairn_seckey_release(&sk);
    assert_int_equal(cairn_gate_evaluate(&r, p, &x.ctx, hex), 0);
    assert_int_equal(r->checks[4].verdict, CAIRN_VERDICT_PASS);
    cairn_gate_result_free(r);

    cairn_policy_free(p);
    cairn_version_release(&v);
    cairn_repo_free(repo);
    assert_int_equal(chdir(old), 0);
    cairn_fs_rm_rf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_repo_facts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
