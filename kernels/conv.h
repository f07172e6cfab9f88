/* conv.h: the raw-array kernels of convolutions, pooling and resampling of images (N, C, H, W) and videos
 * (N, C, T, H, W); the tape ops over them are in ops/conv.h. Pooling and resampling: kernels/pool.h.
 *
 * Kernels work on raw contiguous arrays, argument order (outputs, saved values, inputs, parameters, sizes,
 * workspace); forward writes (=), backward accumulates (+=) into every non-NULL gradient.
 * A 2-D op is its 3-D kernel with T = 1 and a kernel/stride of 1 and padding 0 along T, so there is one
 * kernel per op. Layouts follow PyTorch: weights (Cout, Cin, kT, kH, kW) / (Cout, Cin, kH, kW), no groups,
 * no dilation. Output sizes: out = floor((in + 2 p - k) / s) + 1 per axis.
 * Dimension legend: N batch, C channels, T frames, H height, W width, K = Cin kT kH kW (the reduction
 * length of a convolution), P = To Ho Wo (output positions per sample).
 */
#ifndef I2V_CONV_H
#define I2V_CONV_H

#include <stddef.h>

#include "base/base.h"
#include "kernels/conv_geom.h"

/* ---- convolution kernels ---------------------------------------------------------------------------
 * x (N, Cin, T, H, W), w (Cout, Cin, kT, kH, kW), b (Cout) or NULL, y (N, Cout, To, Ho, Wo).
 * The naive direct loops are the test oracles (double accumulators); the fast kernels lower to gemm()
 * (vol2col into a tiled column workspace; a plain GEMM per sample for 1x1x1 stride-1 kernels; one GEMM
 * per tap on padded frames when the H and W strides are 1; the input gradient of a stride-1 convolution
 * as the forward convolution of dy with the flipped kernel), split over the thread pool. Their results
 * depend only on the inputs and the thread count. */
void conv3d_forward_naive(real *y, const real *x, const real *w, const real *b, const ConvGeom *g);
/* dx (N, Cin, T, H, W), dw (Cout, Cin, kT, kH, kW), db (Cout): each may be NULL; dy like y. */
void conv3d_backward_naive(real *dx, real *dw, real *db, const real *dy, const real *x, const real *w,
                           const ConvGeom *g);
/* Reals of workspace conv3d_forward / conv3d_backward need for g: at most 32 MB of columns or padded
 * frames, plus one rearranged copy of w when w is at most 32 MB (larger kernels are read in place). */
size_t conv3d_workspace(const ConvGeom *g);
/* The lowering kernels/conv.c chooses for g, for the forward (what 'y'), the weight gradient ('w') or the
 * input gradient ('x'): "pointwise", "shifted", "vol2col" or "col2vol". For tests and benchmarks. */
const char *conv3d_lowering(const ConvGeom *g, char what);
void conv3d_forward(real *y, const real *x, const real *w, const real *b, const ConvGeom *g, real *ws);
void conv3d_backward(real *dx, real *dw, real *db, const real *dy, const real *x, const real *w,
                     const ConvGeom *g, real *ws);

#endif
