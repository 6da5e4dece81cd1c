/*
 * Unit tests for lib/gate/evalcmd.c: real child processes, exit statuses,
 * signals, timeouts (the sleeping child must be gone afterwards), output
 * caps and the metrics path. Every test finishes in well under a second.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cairn/common.h"
#include "cairn/gate.h"
#include "util/fs.h"

/* Running and not a zombie (a container's init may never reap one). */
static bool alive(long pid)
{
    char path[64], buf[256];
    FILE *f;
    char *p;
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    if (!(f = fopen(path, "r")))
        return false;
    p = fgets(buf, sizeof(buf), f);
    fclose(f);
    if (!p || !(p = strrchr(buf, ')')))
        return false;
    return p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

static void test_exit_zero_json(void **state)
{
    (void)state;
    const char *env[] = { "CAIRN_MODEL_DIR=/models/x", "CAIRN_DATA_DIR=/data/y", NULL };
    struct cairn_evalcmd_opts o = {
        .command =
            "printf '{\"acc\": 0.9, \"dir\": \"%s\", \"data\": \"%s\"}' "
            "\"$CAIRN_MODEL_DIR\" \"$CAIRN_DATA_DIR\"",
        .env = env,
        .timeout_ms = 5000,
    };
    struct cairn_values m;
    cairn_values_init(&m);
    assert_int_equal(cairn_evalcmd_metrics(&m, &o), 0);
    assert_true(cairn_values_get(&m, "acc")->number == 0.9);
    assert_string_equal(cairn_values_get(&m, "dir")->string, "/models/x");
    assert_string_equal(cairn_values_get(&m, "data")->string, "/data/y");
    cairn_values_release(&m);
}

static void test_env_override_and_cwd(void **state)
{
    (void)state;
    const char *env[] = { "HOME=/nowhere", NULL };
    struct cairn_evalcmd_opts o = { .command = "echo \"$HOME\"; pwd; read x || echo eof",
                                    .env = env,
                                    .cwd = "/tmp",
                                    .timeout_ms = 5000 };
    struct cairn_evalcmd_result r;
    assert_int_equal(cairn_evalcmd_run(&r, &o), 0);
    assert_true(r.exited);
    assert_int_equal(r.exit_code, 0);
    /* stdin is /dev/null: read sees end of file at once. */
    assert_string_equal(r.out, "/nowhere\n/tmp\neof\n");
    assert_int_equal(cairn_evalcmd_check(&r), 0);
    cairn_evalcmd_result_release(&r);
}

static void test_nonzero_exit(void **state)
{
    (void)state;
    struct cairn_evalcmd_opts o = { .command =
                                        "echo '{\"a\": 1}'; echo 'boom: bad data' >&2; "
                                        "exit 3",
                                    .stderr_tail = 1024 };
    struct cairn_evalcmd_result r;
    struct cairn_values m;
    assert_int_equal(cairn_evalcmd_run(&r, &o), 0);
    assert_true(r.exited);
    assert_int_equal(r.exit_code, 3);
    assert_string_equal(r.err_tail, "boom: bad data\n");
    assert_int_equal(cairn_evalcmd_check(&r), CAIRN_ERROR);
    assert_string_equal(cairn_error_last(), "command exited with status 3; stderr: boom: bad data");
    cairn_evalcmd_result_release(&r);
    /* Nothing recorded even though stdout held valid JSON. */
    cairn_values_init(&m);
    assert_int_equal(cairn_evalcmd_metrics(&m, &o), CAIRN_ERROR);
    assert_int_equal(m.count, 0);
    cairn_values_release(&m);
}

static void test_signal(void **state)
{
    (void)state;
    struct cairn_evalcmd_opts o = { .command = "kill -SEGV $$" };
    struct cairn_evalcmd_result r;
    assert_int_equal(cairn_evalcmd_run(&r, &o), 0);
    assert_true(r.signaled);
    assert_int_equal(r.term_signal, SIGSEGV);
    assert_int_equal(cairn_evalcmd_check(&r), CAIRN_ERROR);
    assert_non_null(strstr(cairn_error_last(), "command killed by signal 11"));
    cairn_evalcmd_result_release(&r);
}

static void test_timeout_kills_group(void **state)
{
    (void)state;
    char pidfile[] = "/tmp/cairn-evalcmd-XXXXXX", cmd[256];
    int fd = mkstemp(pidfile);
    struct cairn_evalcmd_result r;
    FILE *f;
    long child = 0;
    assert_true(fd >= 0);
    close(fd);
    /* A grandchild sleeping in the background, and a shell that ignores TERM. */
    snprintf(cmd, sizeof(cmd), "trap '' TERM; sleep 30 & echo $! > %s; wait; sleep 30", pidfile);
    struct cairn_evalcmd_opts o = { .command = cmd, .timeout_ms = 200, .kill_grace_ms = 100 };
    double t0 = cairn_time_monotonic();
    assert_int_equal(cairn_evalcmd_run(&r, &o), 0);
    assert_true(cairn_time_monotonic() - t0 < 5);
    assert_true(r.timed_out);
    assert_true(r.signaled);
    assert_int_equal(r.term_signal, SIGKILL); /* TERM was ignored: the grace ran out */
    assert_int_equal(cairn_evalcmd_check(&r), CAIRN_ERROR);
    assert_non_null(strstr(cairn_error_last(), "command timed out after"));
    cairn_evalcmd_result_release(&r);
    f = fopen(pidfile, "r");
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%ld", &child), 1);
    fclose(f);
    unlink(pidfile);
    /* The background sleep was in the group and is gone (or a zombie being reaped by init). */
    assert_true(child > 0);
    for (int i = 0; i < 100 && alive(child); i++)
        usleep(10000);
    assert_false(alive(child));
}

static void test_output_cap(void **state)
{
    (void)state;
    struct cairn_evalcmd_opts o = {
        .command = "yes 0123456789", .stdout_limit = 4096, .timeout_ms = 5000, .kill_grace_ms = 100
    };
    struct cairn_evalcmd_result r;
    assert_int_equal(cairn_evalcmd_run(&r, &o), 0);
    assert_true(r.truncated);
    assert_true(r.out_len <= 4096);
    assert_false(r.timed_out);
    assert_int_equal(cairn_evalcmd_check(&r), CAIRN_ERROR);
    assert_non_null(strstr(cairn_error_last(), "output larger than the limit"));
    cairn_evalcmd_result_release(&r);

    /* Exactly at the limit is fine. */
    o.command = "head -c 4096 /dev/zero | tr '\\0' x";
    assert_int_equal(cairn_evalcmd_run(&r, &o), 0);
    assert_false(r.truncated);
    assert_int_equal(r.out_len, 4096);
    cairn_evalcmd_result_release(&r);
}

static void test_bad_output(void **state)
{
    (void)state;
    static const char *cmds[] = {
        "echo 'accuracy=0.9'",        "true",     "echo '[1,2]'",
        "echo '{\"a\": {\"b\": 1}}'", "exit 127", "/nonexistent/evaluator"
    };
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        struct cairn_evalcmd_opts o = { .command = cmds[i], .stderr_tail = 256 };
        struct cairn_values m;
        cairn_values_init(&m);
        assert_true(cairn_evalcmd_metrics(&m, &o) < 0);
        assert_int_equal(m.count, 0);
        cairn_values_release(&m);
    }
    struct cairn_evalcmd_opts o = { .command = "true" };
    struct cairn_values m;
    cairn_values_init(&m);
    assert_int_equal(cairn_evalcmd_metrics(&m, &o), CAIRN_EINVALID);
    assert_string_equal(cairn_error_last(),
                        "command printed nothing; expected a JSON object of metrics");
    o.command = "exit 127";
    assert_int_equal(cairn_evalcmd_metrics(&m, &o), CAIRN_ERROR);
    assert_non_null(strstr(cairn_error_last(), "status 127"));
    cairn_values_release(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exit_zero_json),      cmocka_unit_test(test_env_override_and_cwd),
        cmocka_unit_test(test_nonzero_exit),        cmocka_unit_test(test_signal),
        cmocka_unit_test(test_timeout_kills_group), cmocka_unit_test(test_output_cap),
        cmocka_unit_test(test_bad_output),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
