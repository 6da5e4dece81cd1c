/*
 * OpenBLAS, loaded on first use.
 *
 * Linking OpenBLAS into the cairn binary made every command pay for it: the
 * pthread build starts a spinning thread pool from a library constructor,
 * before main(), which cost a no-op `cairn add` thousands of sched_yield
 * calls. Only model inference needs BLAS, so it is dlopen()ed the first time
 * a matrix product is asked for, with OPENBLAS_NUM_THREADS=1 unless the user
 * set it (the router runs one backend process per version, each with its
 * own core share).
 */
#ifndef CAIRN_MODEL_BLAS_H
#define CAIRN_MODEL_BLAS_H

#include <stddef.h>

/*
 * C = alpha · A · Bᵀ + beta · C, row-major: A is m×k, B is n×k, C is m×n
 * (the one product an MLP layer needs). Returns 0, or CAIRN_ERROR if
 * OpenBLAS cannot be loaded. Thread-safe.
 */
int cairn__sgemm_abt(int m, int n, int k, float alpha, const float *a, int lda, const float *b,
                     int ldb, float beta, float *c, int ldc);

#endif
