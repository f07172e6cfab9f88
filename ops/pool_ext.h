/* pool_ext.h (ops): tape ops over kernels/pool_ext.h.
 *   t_maxpool3d_ceil            x (N, C, T, H, W) -> (N, C, To, Ho, Wo): MaxPool3d(k, s, padding=0,
 *                               ceil_mode=True); out sizes as pool_geom_ceil.
 *   t_avgpool2d_exclude_pad     x (N, C, H, W) -> (N, C, Ho, Wo): avg_pool2d(k, s, p,
 *                               count_include_pad=False); p <= k / 2; out = floor((in + 2p - k) / s) + 1.
 * Both differentiable in x. */
#ifndef I2V_OPS_POOL_EXT_H
#define I2V_OPS_POOL_EXT_H

#include "tensor.h"

Tensor *t_maxpool3d_ceil(Ctx *c, Tensor *x, const int k[3], const int s[3]);
Tensor *t_avgpool2d_exclude_pad(Ctx *c, Tensor *x, const int k[2], const int s[2], const int p[2]);

#endif
