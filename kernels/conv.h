/* conv.h: the raw-array kernels of convolutions, pooling and resampling of images (N, C, H, W) and videos
 * (N, C, T, H, W); the tape ops over them are in ops/conv.h.
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

/* ---- geometry -------------------------------------------------------------------------------------- */
/* One convolution or pooling window geometry; axes are always (T, H, W). Pooling: cin == cout == C. */
typedef struct ConvGeom {
    int n, cin, cout;     /* batch, input channels, output channels */
    int in[3];            /* input T, H, W */
    int k[3], s[3], p[3]; /* kernel, stride, zero padding per axis */
    int out[3];           /* output T, H, W */
} ConvGeom;

/* Fills out[] and checks k >= 1, s >= 1, p >= 0 and that the padded input holds one window. */
ConvGeom conv_geom(int n, int cin, int cout, const int in[3], const int k[3], const int s[3], const int p[3]);

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
/* The budget for a column tile or the padded frames of the shifted walk (0: the default, 32 MB). Tests
 * make it tiny to get many tiles from small shapes (which also turns the shifted walk off). */
void conv_set_tile_bytes(size_t bytes);
/* The lowering conv.c chooses for g, for the forward (what 'y'), the weight gradient ('w') or the input
 * gradient ('x'): "pointwise", "shifted", "vol2col" or "col2vol". For tests and benchmarks. */
const char *conv3d_lowering(const ConvGeom *g, char what);
void conv3d_forward(real *y, const real *x, const real *w, const real *b, const ConvGeom *g, real *ws);
void conv3d_backward(real *dx, real *dw, real *db, const real *dy, const real *x, const real *w,
                     const ConvGeom *g, real *ws);

/* ---- pooling and resampling kernels (x (N, C, T, H, W), y (N, C, To, Ho, Wo)) ---------------------- */
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

#endif
