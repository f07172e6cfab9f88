/* pool_ext.h (ops): tape ops over kernels/pool_ext.h.
 *   t_maxpool_nd               PyTorch's MaxPool2d / MaxPool3d(k, s, p, ceil_mode): x (N, C, T, H, W) ->
 *                              (N, C, To, Ho, Wo), or x (N, C, H, W) -> (N, C, Ho, Wo) with the (H, W) entries
 *                              [1] and [2] of k, s, p ([0] must be 1, 1, 0). Floor mode: out = floor((in + 2p - k)
 *                              / s) + 1; ceil mode: as pool_geom_ceil. p <= k / 2. The forward runs one axis at a
 *                              time (maxpool3d_separable_forward); values and gradient equal conv.h's
 *                              t_maxpool2d / t_maxpool3d where those apply (floor mode).
 *   t_avgpool2d_exclude_pad    x (N, C, H, W) -> (N, C, Ho, Wo): avg_pool2d(k, s, p,
 *                              count_include_pad=False); p <= k / 2; out = floor((in + 2p - k) / s) + 1.
 * Both differentiable in x. */
#ifndef I2V_OPS_POOL_EXT_H
#define I2V_OPS_POOL_EXT_H

#include "tensor.h"

Tensor *t_maxpool_nd(Ctx *c, Tensor *x, const int k[3], const int s[3], const int p[3], int ceil_mode);
Tensor *t_avgpool2d_exclude_pad(Ctx *c, Tensor *x, const int k[2], const int s[2], const int p[2]);

#endif
