/* sums.h: reductions of real arrays accumulated in double, for the normalisation layers and spectral norm.
 *
 * A plain `for (...) s += x[i]` is one chain of dependent additions: one element per FP-add latency
 * (4 cycles), and the compiler may not reorder it. These keep SUM_LANES independent partial sums, which
 * the compiler vectorises, and add them up in a fixed tree at the end: the result depends only on the
 * data, not on threads, and is at least as accurate as the single chain. n is any size; the last
 * n % SUM_LANES elements go to a separate tail sum.
 */
#ifndef I2V_SUMS_H
#define I2V_SUMS_H

#include <stddef.h>

#include "base/base.h"

enum { SUM_LANES = 8 };

static inline double sum_lanes(const double acc[SUM_LANES], double tail) {
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])) + tail;
}

/* sum_i x_i */
static inline double sum_d(const real *x, size_t n) {
    double acc[SUM_LANES] = {0}, tail = 0;
    size_t i = 0;
    for (; i + SUM_LANES <= n; i += SUM_LANES)
        for (int l = 0; l < SUM_LANES; l++) acc[l] += x[i + l];
    for (; i < n; i++) tail += x[i];
    return sum_lanes(acc, tail);
}

/* sum_i (x_i - c)^2 */
static inline double sum_sq_dev_d(const real *x, size_t n, double c) {
    double acc[SUM_LANES] = {0}, tail = 0;
    size_t i = 0;
    for (; i + SUM_LANES <= n; i += SUM_LANES)
        for (int l = 0; l < SUM_LANES; l++) {
            double d = x[i + l] - c;
            acc[l] += d * d;
        }
    for (; i < n; i++) tail += (x[i] - c) * (x[i] - c);
    return sum_lanes(acc, tail);
}

/* sum_i a_i b_i */
static inline double dot_d(const real *a, const real *b, size_t n) {
    double acc[SUM_LANES] = {0}, tail = 0;
    size_t i = 0;
    for (; i + SUM_LANES <= n; i += SUM_LANES)
        for (int l = 0; l < SUM_LANES; l++) acc[l] += (double)a[i + l] * b[i + l];
    for (; i < n; i++) tail += (double)a[i] * b[i];
    return sum_lanes(acc, tail);
}

/* sum_i a_i (b_i - c) */
static inline double dot_dev_d(const real *a, const real *b, size_t n, double c) {
    double acc[SUM_LANES] = {0}, tail = 0;
    size_t i = 0;
    for (; i + SUM_LANES <= n; i += SUM_LANES)
        for (int l = 0; l < SUM_LANES; l++) acc[l] += (double)a[i + l] * (b[i + l] - c);
    for (; i < n; i++) tail += (double)a[i] * (b[i] - c);
    return sum_lanes(acc, tail);
}

#endif
