/* modulate.h: the raw-array kernels of SPADE's and AdaIN's normalise-modulate-activate step, fused:
 *     y = lrelu_slope(xn (scale + one) + shift),  xn = GroupNorm_G(x) without affine parameters,
 * scale and shift repeated over T (and over H, W when P = 1). SPADE: P = HW, one = 1; AdaIN: P = 1, G = C,
 * one = 0. The tape op is t_norm_modulate_lrelu (ops/norm.h).
 * Dimension legend: N batch, C channels, G groups, T frames, HW = H W, P = HW or 1.
 */
#ifndef I2V_MODULATE_H
#define I2V_MODULATE_H

#include <stddef.h>

#include "base/base.h"

/* y, x (N, C, T, HW); scale, shift (N, C, P); mean, rstd (N, G) saved for the backward. */
void norm_modulate_lrelu_forward(real *y, real *mean, real *rstd, const real *x, const real *scale, const real *shift,
                                 int N, int C, int T, size_t HW, size_t P, int G, double eps, real one, real slope);
/* dx (N, C, T, HW), dscale, dshift (N, C, P): each may be NULL; the pre-activation is recomputed from x,
 * the statistics, scale and shift. */
void norm_modulate_lrelu_backward(real *dx, real *dscale, real *dshift, const real *mean, const real *rstd,
                                  const real *dy, const real *x, const real *scale, const real *shift, int N, int C,
                                  int T, size_t HW, size_t P, int G, real one, real slope);

#endif
