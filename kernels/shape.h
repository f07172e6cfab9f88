/* shape.h: the raw-array kernels of the shape ops: axis permutation, concatenation, slicing, gathering
 * along an axis, and the gradient of a reshape (which itself moves no data).
 *
 * Forward kernels write (=) their output; backward kernels accumulate (+=). The tape ops over them are in
 * tensor.c. Dimension legend: a tensor around one axis is (outer, n, inner); a permutation plan sees the
 * output as 5-D.
 */
#ifndef I2V_SHAPE_H
#define I2V_SHAPE_H

#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

/* The output of a permutation as 5-D (leading axes of size 1), with st[k] the stride in x of output axis
 * k (0 for the added axes). */
typedef struct PermutePlan {
    int shape[5];
    size_t st[5];
} PermutePlan;

/* y (the output, walked in order) = x read through the strides; dx += dy scattered back */
void permute_forward(real *y, const real *x, const PermutePlan *p);
void permute_backward(real *dx, const real *dy, const PermutePlan *p);

/* One input of a concatenation: x (outer, len) is the slab [start, start + len) of every row of the output
 * y (outer, row), lengths in elements (the axis times inner). */
void concat_forward(real *y, const real *x, size_t outer, size_t row, size_t start, size_t len);
void concat_backward(real *dx, const real *dy, size_t outer, size_t row, size_t start, size_t len);

/* y (outer, len, inner) = x (outer, total, inner)[:, start:start + len, :] */
void slice_forward(real *y, const real *x, size_t outer, int total, int start, int len, size_t inner);
void slice_backward(real *dx, const real *dy, size_t outer, int total, int start, int len, size_t inner);

/* y (outer, nidx, inner) = x (outer, total, inner)[:, idx, :], idx (nidx) in [0, total) */
void index_select_forward(real *y, const real *x, const int64_t *idx, int nidx, size_t outer, int total,
                          size_t inner);
void index_select_backward(real *dx, const real *dy, const int64_t *idx, int nidx, size_t outer, int total,
                           size_t inner);

/* The gradient of a reshape: dx (n) += dy (n). */
void reshape_backward(real *dx, const real *dy, size_t n);

#endif
