/* reduce.h: the raw-array kernels of the reductions: sums and means over any set of axes, softmax along
 * one axis, and the per-sample count of negative entries (the invertible leaky ReLU's log-determinant).
 *
 * Forward kernels write (=) their output; backward kernels accumulate (+=). The tape ops over them are
 * in tensor.c. Sums accumulate in double. Dimension legend: a plan sees x as 5-D (leading axes of size 1
 * added); (outer, len, inner) is x around one axis.
 */
#ifndef I2V_REDUCE_H
#define I2V_REDUCE_H

#include <stddef.h>

#include "base/base.h"

/* x seen as 5-D, and the output likewise with the reduced axes of size 1: os[] are the output's strides per
 * x axis, 0 along a reduced axis, so element (i0..i4) of x goes to output offset sum_k i_k os[k]. */
typedef struct ReducePlan {
    int shape[5];              /* x, right-aligned in 5 axes */
    size_t os[5];
    size_t nout, count;        /* output elements; x elements per output element */
} ReducePlan;

/* y (nout) = scale * the sums; acc (nout doubles) is workspace. */
void sum_forward(real *y, double *acc, const real *x, const ReducePlan *r, real scale);
/* dx (x's shape) += scale * dy repeated along the reduced axes */
void sum_backward(real *dx, const real *dy, const ReducePlan *r, real scale);

/* softmax along the middle axis of x (outer, len, inner): y = exp(x - max) / sum; backward
 * dx += y (dy - sum(dy y)). */
void softmax_forward(real *y, const real *x, size_t outer, int len, size_t inner);
void softmax_backward(real *dx, const real *dy, const real *y, size_t outer, int len, size_t inner);

/* y[i] = (real)(weight * (number of entries of row i < 0)), x (rows, len), the product taken in double.
 * Piecewise constant in x: it has no backward. */
void count_negative_forward(real *y, const real *x, int rows, size_t len, double weight);

#endif
