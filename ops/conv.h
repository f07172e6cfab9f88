/* conv.h: convolutions, pooling and resampling of images (N, C, H, W) and videos (N, C, T, H, W) as tape
 * ops; the raw-array kernels under them are in kernels/conv.h.
 *
 * Each op checks shapes, allocates its output in the arena, runs its kernel unless the context is a dry run
 * and records itself for the backward pass. Layouts follow PyTorch: weights (Cout, Cin, kT, kH, kW) /
 * (Cout, Cin, kH, kW), no groups, no dilation. Output sizes: out = floor((in + 2 p - k) / s) + 1 per axis.
 * Dimension legend: N batch, C channels, T frames, H height, W width.
 */
#ifndef I2V_OPS_CONV_H
#define I2V_OPS_CONV_H

#include "tensor.h"

/* x (N, Cin, H, W), w (Cout, Cin, kH, kW), b (Cout) or NULL, stride/pad (H, W) -> (N, Cout, Ho, Wo) */
Tensor *t_conv2d(Ctx *c, Tensor *x, Tensor *w, Tensor *b, const int stride[2], const int pad[2]);
/* x (N, Cin, T, H, W), w (Cout, Cin, kT, kH, kW), b (Cout) or NULL, stride/pad (T, H, W)
 * -> (N, Cout, To, Ho, Wo) */
Tensor *t_conv3d(Ctx *c, Tensor *x, Tensor *w, Tensor *b, const int stride[3], const int pad[3]);

/* x (N, C, H, W) -> (N, C, Ho, Wo); k, s, p per axis (H, W); p <= k / 2 as in PyTorch */
Tensor *t_maxpool2d(Ctx *c, Tensor *x, const int k[2], const int s[2], const int p[2]);
Tensor *t_avgpool2d(Ctx *c, Tensor *x, const int k[2], const int s[2], const int p[2]);
/* x (N, C, T, H, W) -> (N, C, To, Ho, Wo); k, s, p per axis (T, H, W) */
Tensor *t_maxpool3d(Ctx *c, Tensor *x, const int k[3], const int s[3], const int p[3]);
Tensor *t_avgpool3d(Ctx *c, Tensor *x, const int k[3], const int s[3], const int p[3]);
/* Tangent of max pooling (for forward-mode derivatives): x and tx of one shape -> ty like the pooled x.
 * The gradient flows to tx only; x just selects the argmax. */
Tensor *t_maxpool2d_jvp(Ctx *c, Tensor *x, Tensor *tx, const int k[2], const int s[2], const int p[2]);
Tensor *t_maxpool3d_jvp(Ctx *c, Tensor *x, Tensor *tx, const int k[3], const int s[3], const int p[3]);
/* Global average pooling (adaptive to size 1): x (N, C, ...) -> (N, C, 1, ...) with the rank kept. */
Tensor *t_global_avgpool(Ctx *c, Tensor *x);

/* Nearest upsampling: x (N, C, H, W) -> (N, C, H f0, W f1); x (N, C, T, H, W) -> (N, C, T f0, H f1, W f2) */
Tensor *t_upsample_nearest2d(Ctx *c, Tensor *x, const int f[2]);
Tensor *t_upsample_nearest3d(Ctx *c, Tensor *x, const int f[3]);
/* Bilinear resize, align_corners = True: x (N, C, H, W) -> (N, C, oh, ow) */
Tensor *t_resize_bilinear(Ctx *c, Tensor *x, int oh, int ow);

#endif
