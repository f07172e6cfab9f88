/* pool_ext.h: the pooling variants that TensorFlow-ported networks need beyond the PyTorch defaults of
 * conv.h: max pooling in PyTorch's ceil mode (MaxPool3d(ceil_mode=True), the Kinetics I3D port) and average
 * pooling that divides by the number of input elements a window covers (count_include_pad=False,
 * TensorFlow's average pool, which pytorch-fid's Inception blocks reproduce); and a max pooling forward
 * that runs one axis at a time, for the metric networks, whose pools are a large part of their time.
 *
 * Kernels only (outputs, saved values, inputs, geometry); forward writes (=), backward accumulates (+=).
 * The tape ops are in ops/pool_ext.h. Geometries are conv.h's ConvGeom with cin == cout == C.
 * Dimension legend: N batch, C channels, (T, H, W) input, (To, Ho, Wo) output. */
#ifndef I2V_KERNELS_POOL_EXT_H
#define I2V_KERNELS_POOL_EXT_H

#include "kernels/conv.h"

/* PyTorch's ceil mode: out = ceil((in + 2 p - k) / s) + 1 per axis, less one when that last window would
 * start at or past the end of the input and its left padding. The last window may hang over the end; the
 * part outside is ignored. conv.h's maxpool3d_forward / maxpool3d_backward take this geometry as it is. */
ConvGeom pool_geom_ceil(int n, int ch, const int in[3], const int k[3], const int s[3], const int p[3]);

/* Max pooling with PyTorch's values (padding and the overhang of a ceil-mode window count as -inf, a NaN in
 * the window wins) for any geometry of conv_geom or pool_geom_ceil, computed one axis at a time: the
 * maximum over a box is the maximum over T of the maxima over H of the maxima over W, so a window costs
 * kT + kH + kW comparisons instead of kT kH kW. Values equal maxpool3d_forward's; its backward is conv.h's
 * maxpool3d_backward (which finds the argmax from x). x (N, C, T, H, W) -> y (N, C, To, Ho, Wo); ws holds
 * maxpool3d_separable_workspace(g) reals (the partial maxima of each thread's current plane). */
size_t maxpool3d_separable_workspace(const ConvGeom *g);
void maxpool3d_separable_forward(real *y, const real *x, const ConvGeom *g, real *ws);

/* Average over the in-range part of each window: y = sum / count, count = the input elements the window
 * covers (padding excluded). x (N, C, T, H, W), y (N, C, To, Ho, Wo). */
void avgpool3d_exclude_pad_forward(real *y, const real *x, const ConvGeom *g);
/* dx (N, C, T, H, W) += dy / count spread over each window's in-range elements. */
void avgpool3d_exclude_pad_backward(real *dx, const real *dy, const ConvGeom *g);

#endif
