/* loss.h: the raw-array kernels of the losses: the elementwise losses (L1, MSE, the hinge losses), the KL
 * divergence of a diagonal Gaussian from N(0, I), and the Gaussian negative log-likelihood per sample.
 *
 * Forward kernels write (=) their output; backward kernels accumulate (+=) into every gradient they are
 * given (NULL: not wanted). The terms are those of kernels/formulas.h; sums run in double. The tape ops
 * over them are in tensor.c. Dimension legend: n elements, N samples, D = n / N values per sample.
 */
#ifndef I2V_LOSS_H
#define I2V_LOSS_H

#include <stddef.h>

#include "base/base.h"
#include "kernels/formulas.h"   /* enum LossKind */

/* y (1) = scale * sum_i loss_term(kind, a_i, b_i); b (n) or NULL (the hinge losses: b = 0) */
void loss_forward(real *y, const real *a, const real *b, size_t n, int kind, real scale);
/* da += g d term / da, db -= the same (L1, MSE), with g = dy[0] * scale */
void loss_backward(real *da, real *db, const real *dy, const real *a, const real *b, size_t n, int kind,
                   real scale);

/* y (1) = -0.5 inv_n sum_i (1 + lv_i - mu_i^2 - exp(lv_i)); mu, lv (n) */
void kl_normal_forward(real *y, const real *mu, const real *lv, size_t n, real inv_n);
/* dmu += g mu, dlv += g (-0.5) (1 - exp(lv)), g = dy[0] inv_n; dmu or dlv may be NULL */
void kl_normal_backward(real *dmu, real *dlv, const real *dy, const real *mu, const real *lv, size_t n, real inv_n);

/* y (N) = 0.5 sum_d x^2 per sample; x (N, D) */
void gaussian_nll_forward(real *y, const real *x, int N, size_t D);
/* dx += dy[n] x */
void gaussian_nll_backward(real *dx, const real *dy, const real *x, int N, size_t D);

#endif
