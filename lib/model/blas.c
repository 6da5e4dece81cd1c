/* Lazy OpenBLAS: see blas.h for why. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include <cblas.h>

#include "cairn/common.h"
#include "model/blas.h"

typedef void (*sgemm_fn)(const enum CBLAS_ORDER, const enum CBLAS_TRANSPOSE,
                         const enum CBLAS_TRANSPOSE, const blasint, const blasint, const blasint,
                         const float, const float *, const blasint, const float *, const blasint,
                         const float, float *, const blasint);

static pthread_once_t once = PTHREAD_ONCE_INIT;
static sgemm_fn sgemm;
static char load_error[256];

static void load(void)
{
    static const char *names[] = { "libopenblas.so.0", "libopenblas.so", "libcblas.so.3",
                                   "libblas.so.3" };
    void *h = NULL;

    /* Before the library's constructor runs: one thread unless told otherwise. */
    setenv("OPENBLAS_NUM_THREADS", "1", 0);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]) && !h; i++)
        h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(load_error, sizeof(load_error), "%s", e ? e : "not found");
        return;
    }
    sgemm = (sgemm_fn)dlsym(h, "cblas_sgemm");
    if (!sgemm)
        snprintf(load_error, sizeof(load_error), "no cblas_sgemm in the BLAS library");
}

int cairn__sgemm_abt(int m, int n, int k, float alpha, const float *a, int lda, const float *b,
                     int ldb, float beta, float *c, int ldc)
{
    pthread_once(&once, load);
    if (!sgemm)
        return cairn_error_set(CAIRN_ERROR, "cannot load OpenBLAS (install libopenblas0): %s",
                               load_error);
    sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return 0;
}
