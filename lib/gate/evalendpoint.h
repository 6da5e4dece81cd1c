/*
 * Internals of lib/gate/evalendpoint.c shared with its unit tests: the
 * metric arithmetic, the percentile rule and the perturbation, each a pure
 * function so the figures docs/eval.md defines can be checked by hand.
 */
#ifndef CAIRN_GATE_EVALENDPOINT_H
#define CAIRN_GATE_EVALENDPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/evalep.h"

/*
 * From a k×k confusion matrix ([true * k + predicted]) fill support,
 * predicted, tp, precision, recall and f1 of each of `classes` (names are
 * left alone) and the accuracy and macro averages (over all k classes). A
 * zero denominator gives 0. With no rows everything is 0.
 */
void cairn__evalep_scores(struct cairn_evalep_class *classes, size_t k, const uint64_t *confusion,
                          double *accuracy, double *precision_macro, double *recall_macro,
                          double *f1_macro);

/*
 * Nearest-rank percentile of `n` ascending values: the smallest value with
 * at least p% of the values at or below it, i.e. sorted[ceil(p/100 * n) - 1]
 * (index 0 for p = 0). 0 when n is 0.
 */
double cairn__percentile(const double *sorted, size_t n, double p);

/*
 * Add N(0, (sigma * std_j)^2) noise to every value of column j of the
 * row-major `x` in place, std_j being the population standard deviation of
 * column j before the noise; draws come from splitmix64(seed) in row-major
 * order (docs/eval.md). Results are clamped to the fp32 range.
 */
void cairn__evalep_perturb(float *x, size_t rows, size_t cols, double sigma, uint64_t seed);

#endif
