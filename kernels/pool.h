/* pool.h: the raw-array kernels of pooling (windowed and global) and resampling of images (N, C, H, W) and videos
 * (N, C, T, H, W); the tape ops over them are in ops/conv.h.
 *
 * Kernels work on raw contiguous arrays, argument order (outputs, saved values, inputs, sizes); forward
 * writes (=), backward accumulates (+=). A 2-D op is its 3-D kernel with T = 1. Window geometries are
 * ConvGeom (kernels/conv_geom.h) with cin == cout == C.
 * Dimension legend: N batch, C channels, T frames, H, W; x (N, C, T, H, W), y (N, C, To, Ho, Wo).
 */
#ifndef I2V_POOL_H
#define I2V_POOL_H

#include <stddef.h>

#include "kernels/conv_geom.h"

/* Max pooling, PyTorch semantics: padding counts as -inf, ties keep the first maximum in window order
 * (t, then h, then w), NaN wins. The backward recomputes the argmax from x instead of saving it. */
void maxpool3d_forward(real *y, const real *x, const ConvGeom *g);
void maxpool3d_backward(real *dx, const real *dy, const real *x, const ConvGeom *g);
/* Forward-mode tangent: ty = tx gathered at the argmax of x (argmax is piecewise constant, so ty is
 * linear in tx; its transpose, the backward w.r.t. tx, is maxpool3d_backward). */
void maxpool3d_jvp(real *ty, const real *x, const real *tx, const ConvGeom *g);
/* Average pooling with count_include_pad = True: every window divides by kT kH kW. */
void avgpool3d_forward(real *y, const real *x, const ConvGeom *g);
void avgpool3d_backward(real *dx, const real *dy, const ConvGeom *g);
/* Nearest upsampling by integer factors f: y (NC, T f0, H f1, W f2), y[i] = x[floor(i / f)] per axis. */
void upsample_nearest3d_forward(real *y, const real *x, size_t nc, const int in[3], const int f[3]);
void upsample_nearest3d_backward(real *dx, const real *dy, size_t nc, const int in[3], const int f[3]);
/* Bilinear resize with align_corners = True: x (NC, ih, iw) -> y (NC, oh, ow); output index i samples
 * the source coordinate i (in - 1) / (out - 1), or 0 when out == 1. */
void resize_bilinear_forward(real *y, const real *x, size_t nc, int ih, int iw, int oh, int ow);
void resize_bilinear_backward(real *dx, const real *dy, size_t nc, int ih, int iw, int oh, int ow);

/* Global average pooling: y (NC) = the mean of each plane of x (NC, len); dx += dy / len. */
void global_avgpool_forward(real *y, const real *x, size_t nc, size_t len);
void global_avgpool_backward(real *dx, const real *dy, size_t nc, size_t len);

#endif
