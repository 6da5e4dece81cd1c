/*
 * Unit tests for lib/serve/livewin.c (and the reference side in
 * lib/data/live.c): the window fills, stays bounded and samples uniformly
 * once full; odd widths and bad bodies are left out; CSV output; a reference
 * loaded on the thread pool names the features and gives PSI near 0 for
 * like inputs and above 0.2 for shifted ones.
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

#include "cairn/data.h"
#include "serve/livewin.h"

static void offer(struct cairn_livewin *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void offer(struct cairn_livewin *w, const char *fmt, ...)
{
    char body[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof(body), fmt, ap);
    va_end(ap);
    cairn_livewin_sample(w, body, strlen(body));
}

#define ONE "{\"inputs\":[{\"name\":\"x\",\"shape\":[1,2],\"datatype\":\"FP32\",\"data\":[%d,%d]}]}"

static void test_fill_and_csv(void **state)
{
    uv_loop_t loop;
    struct cairn_livewin *w;
    struct cairn_buf b = CAIRN_BUF_INIT;
    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(cairn_livewin_new(&w, &loop, "m", NULL, NULL), 0);
    offer(w, ONE, 1, 2);
    offer(w,
          "{\"inputs\":[{\"name\":\"x\",\"shape\":[2,2],\"datatype\":\"INT64\","
          "\"data\":[[3,4],[5,6]]}]}");
    offer(w,
          "{\"inputs\":[{\"name\":\"x\",\"shape\":[1,3],\"datatype\":\"FP32\","
          "\"data\":[1,2,3]}]}"); /* another width: left out */
    offer(w, "not json");
    assert_int_equal(cairn_livewin_rows(w), 3);
    assert_int_equal(cairn_livewin_csv(&b, w), 0);
    assert_int_equal(b.len, strlen("f0,f1\n1,2\n3,4\n5,6\n"));
    assert_memory_equal(b.ptr, "f0,f1\n1,2\n3,4\n5,6\n", b.len);
    cairn_buf_release(&b);
    cairn_livewin_free(w);
    uv_loop_close(&loop);
}

static void test_bounded_uniform(void **state)
{
    uv_loop_t loop;
    struct cairn_livewin *w;
    struct cairn_buf b = CAIRN_BUF_INIT;
    const int n = 40000;
    double sum = 0;
    size_t late = 0, rows = 0;
    char *p;
    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(cairn_livewin_new(&w, &loop, "m", NULL, NULL), 0);
    for (int i = 0; i < n; i++)
        offer(w, ONE, i, 0);
    assert_int_equal(cairn_livewin_rows(w), CAIRN_LIVEWIN_ROWS);
    assert_int_equal(cairn_livewin_seen(w), n);
    assert_int_equal(cairn_livewin_csv(&b, w), 0);
    cairn_buf_putc(&b, '\0');
    for (p = strchr(b.ptr, '\n') + 1; *p; p = strchr(p, '\n') + 1) {
        long v = strtol(p, NULL, 10);
        sum += (double)v;
        late += v >= 3 * n / 4;
        rows++;
    }
    assert_int_equal(rows, CAIRN_LIVEWIN_ROWS);
    /* Uniform over 0..n-1: mean n/2 (sd of the mean about 180), a quarter late. */
    assert_true(sum / (double)rows > n / 2 - 1000 && sum / (double)rows < n / 2 + 1000);
    assert_true(late > rows / 4 - 200 && late < rows / 4 + 200);
    cairn_buf_release(&b);
    cairn_livewin_free(w);
    uv_loop_close(&loop);
}

static double psi_of(const char *prom, const char *feature)
{
    char key[128];
    const char *p;
    snprintf(key, sizeof(key), "cairn_input_drift_psi{model=\"m\",feature=\"%s\"} ", feature);
    p = strstr(prom, key);
    return p ? strtod(p + strlen(key), NULL) : -1;
}

static void test_reference_psi(void **state)
{
    uv_loop_t loop;
    struct cairn_livewin *w;
    struct cairn_buf b = CAIRN_BUF_INIT;
    char dir[] = "/tmp/cairn-livewin-XXXXXX", path[64];
    FILE *f;
    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/ref.csv", dir);
    assert_non_null(f = fopen(path, "w"));
    fprintf(f, "a,name,label,b\n");
    for (int i = 0; i < 1000; i++)
        fprintf(f, "%d,n%d,%d,%d\n", i % 100, i, i & 1, (i * 7) % 100);
    fclose(f);

    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(cairn_livewin_new(&w, &loop, "m", NULL, NULL), 0);
    assert_int_equal(cairn_livewin_set_reference(w, dir, path, "label"), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    for (int i = 0; i < 500; i++)
        offer(w, ONE, (i * 13) % 100, (i * 31) % 100);
    cairn_livewin_refresh(w);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(cairn_livewin_csv(&b, w), 0);
    assert_memory_equal(b.ptr, "a,b\n", 4); /* the string and label columns are not inputs */
    cairn_buf_clear(&b);
    assert_int_equal(cairn_livewin_prom_psi(&b, w, "m"), 0);
    cairn_buf_putc(&b, '\0');
    assert_true(psi_of(b.ptr, "a") >= 0 && psi_of(b.ptr, "a") < 0.05);
    assert_true(psi_of(b.ptr, "b") >= 0 && psi_of(b.ptr, "b") < 0.05);
    cairn_livewin_free(w);

    /* Shifted by half the range: PSI well above 0.2. */
    assert_int_equal(cairn_livewin_new(&w, &loop, "m", NULL, NULL), 0);
    assert_int_equal(cairn_livewin_set_reference(w, dir, path, "label"), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    for (int i = 0; i < 500; i++)
        offer(w, ONE, 50 + (i * 13) % 100, (i * 31) % 100);
    cairn_livewin_refresh(w);
    uv_run(&loop, UV_RUN_DEFAULT);
    cairn_buf_clear(&b);
    assert_int_equal(cairn_livewin_prom_psi(&b, w, "m"), 0);
    cairn_buf_putc(&b, '\0');
    assert_true(psi_of(b.ptr, "a") > 0.2);
    assert_true(psi_of(b.ptr, "b") < 0.05);
    cairn_livewin_free(w);
    cairn_buf_release(&b);
    uv_loop_close(&loop);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fill_and_csv),
        cmocka_unit_test(test_bounded_uniform),
        cmocka_unit_test(test_reference_psi),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
