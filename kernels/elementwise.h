/* elementwise.h: the raw-array kernels of the elementwise ops: unary functions (activations, exp, log,
 * ...), their forward-mode tangents, dropout, and the binary ops with NumPy broadcasting.
 *
 * Forward kernels write (=) their output; backward kernels accumulate (+=) into every gradient they are
 * given (NULL: not wanted). The per-element formulas are those of kernels/formulas.h. The tape ops over
 * these kernels are in tensor.c. Dimension legend: n elements; a broadcast plan sees every tensor as 5-D.
 */
#ifndef I2V_ELEMENTWISE_H
#define I2V_ELEMENTWISE_H

#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "kernels/formulas.h"   /* enum UnaryKind, enum BinaryKind */

/* ---- unary: y = f(x), f chosen by kind with constants p0, p1 ----------------------------------------- */
/* y, x (n) */
void unary_forward(real *y, const real *x, size_t n, int kind, real p0, real p1);
/* dx += dy f'(x), from x or from y = f(x), whichever gives the derivative more cheaply. dx, dy, x, y (n). */
void unary_backward(real *dx, const real *dy, const real *x, const real *y, size_t n, int kind, real p0, real p1);

/* ---- the tangent of an activation (UNARY_RELU, _LEAKY_RELU with slope, _TANH, _SIGMOID) ------------
 * y = f'(x) dx. Backward, with g the gradient arriving at y: gdx += g f'(x), gx += g dx f''(x).
 * y, x, dx, g, gx, gdx (n); gx or gdx may be NULL. */
void unary_jvp_forward(real *y, const real *x, const real *dx, size_t n, int kind, real slope);
void unary_jvp_backward(real *gx, real *gdx, const real *g, const real *x, const real *dx, size_t n, int kind,
                        real slope);

/* ---- dropout: y = x mask, mask[i] = formulas.h's dropout_factor(seed, i, p), 0 or 1/(1-p) ------------------
 * A pure function of (seed, i): the backward recomputes the mask instead of storing it, and any device
 * draws the same one. */
void dropout_forward(real *y, const real *x, size_t n, real p, uint64_t seed);
void dropout_backward(real *dx, const real *dy, size_t n, real p, uint64_t seed);

/* ---- binary ops with broadcasting ---------------------------------------------------------------------- */

/* Both inputs and the output seen as 5-D (leading axes of size 1 added, as NumPy aligns shapes from the
 * right); sa, sb are the inputs' strides in elements per output axis, 0 along an axis where the input is
 * broadcast. */
typedef struct BroadcastPlan {
    int shape[5];             /* the output's shape, right-aligned in 5 axes */
    size_t sa[5], sb[5];
} BroadcastPlan;

/* y (the output shape) = a op b */
void binary_forward(real *y, const real *a, const real *b, const BroadcastPlan *p, int kind);
/* da (a's shape) += and db (b's shape) += the gradients of a and b from dy (the output shape); da or db
 * may be NULL. A broadcast input sums the gradient over the axes it was repeated along. */
void binary_backward(real *da, real *db, const real *dy, const real *a, const real *b, const BroadcastPlan *p,
                     int kind);

#endif
