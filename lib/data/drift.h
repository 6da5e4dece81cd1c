/*
 * The statistics behind dataset drift (drift.c), exposed to the unit tests
 * which check them against hand-computed values. All are pure functions of
 * their arguments and thread-safe.
 */
#ifndef CAIRN_DATA_DRIFT_H
#define CAIRN_DATA_DRIFT_H

#include <stddef.h>
#include <stdint.h>

/* Proportions below this are replaced by it before taking logarithms. */
#define CAIRN_PSI_EPSILON 1e-4
/* Values kept per column and side for the numeric statistics. */
#define CAIRN_DRIFT_SAMPLE 100000
/* Distinct values counted per column and side before a string column is skipped. */
#define CAIRN_DRIFT_MAX_CATEGORIES 10000

/* PSI = sum (q_i - p_i) * ln(q_i / p_i) over n bins of proportions p (reference) and q. */
double cairn__psi(const double *p, const double *q, size_t n);

/* PSI over count vectors (each normalised by its own total). */
double cairn__psi_counts(const uint64_t *a, const uint64_t *b, size_t n);

/*
 * PSI of two sorted samples with bin edges at the reference deciles (ties
 * merge bins). Returns 0 when either sample is empty.
 */
double cairn__psi_numeric(const double *ref, size_t n, const double *cur, size_t m);

/* Two-sample Kolmogorov-Smirnov statistic D = sup |F_ref - F_cur| of sorted samples. */
double cairn__ks_statistic(const double *a, size_t n, const double *b, size_t m);

/* Q_KS(lambda) = 2 sum_{j>=1} (-1)^(j-1) exp(-2 j^2 lambda^2), the Kolmogorov survival function. */
double cairn__kolmogorov_q(double lambda);

/* Asymptotic p-value of D for sample sizes n and m: Q_KS(D * sqrt(n m / (n + m))). */
double cairn__ks_pvalue(double d, size_t n, size_t m);

/* Regularised upper incomplete gamma function Q(a, x) = Gamma(a, x) / Gamma(a). */
double cairn__gamma_q(double a, double x);

/* Survival function of the chi-square distribution with `df` degrees of freedom. */
double cairn__chi2_sf(double x, double df);

/*
 * Chi-square test of homogeneity of two count vectors over the same n
 * categories (categories empty in both are left out). Sets the statistic,
 * its degrees of freedom and p-value, and Cramer's V = sqrt(chi2 / N).
 */
void cairn__chi2_homogeneity(double *chi2_out, unsigned *df_out, double *p_out, double *v_out,
                             const uint64_t *a, const uint64_t *b, size_t n);

#endif
