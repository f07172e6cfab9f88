/* linear.h: the raw-array kernels of the linear layer and the batched matrix product, both over gemm().
 *
 * Forward kernels write (=) their output; backward kernels accumulate (+=) into every gradient they are
 * given (NULL: not wanted), except where a beta says the gradient buffer holds nothing yet. The tape ops
 * over them are in tensor.c. Dimension legend: M rows (every axis but the last), Din, Dout features;
 * B products of (M, K) by (K, N).
 */
#ifndef I2V_LINEAR_H
#define I2V_LINEAR_H

#include "base/base.h"

/* y (M, Dout) = x (M, Din) W^T + b, w (Dout, Din), b (Dout) or NULL */
void linear_forward(real *y, const real *x, const real *w, const real *b, int M, int din, int dout);
/* dx (M, Din) += dy W;  dw (Dout, Din) = beta dw + dy^T x;  db (Dout) += column sums of dy. */
void linear_backward(real *dx, real *dw, real *db, const real *dy, const real *x, const real *w, int M, int din,
                     int dout, real beta_w);

/* y (B, M, N) = op(a) op(b) per batch: a (B, M, K), or (B, K, M) if ta; b (B, K, N), or (B, N, K) if tb */
void bmm_forward(real *y, const real *a, const real *b, int B, int M, int N, int K, int ta, int tb);
/* da (a's layout), db (b's layout) += the gradients from dy (B, M, N) */
void bmm_backward(real *da, real *db, const real *dy, const real *a, const real *b, int B, int M, int N, int K,
                  int ta, int tb);

#endif
