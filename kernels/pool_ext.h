/* pool_ext.h: the pooling variants that TensorFlow-ported networks need beyond the PyTorch defaults of
 * conv.h: max pooling in PyTorch's ceil mode (MaxPool3d(ceil_mode=True), the Kinetics I3D port) and average
 * pooling that divides by the number of input elements a window covers (count_include_pad=False,
 * TensorFlow's average pool, which pytorch-fid's Inception blocks reproduce).
 *
 * Kernels only (outputs, saved values, inputs, geometry); forward writes (=), backward accumulates (+=).
 * The tape ops are in ops/pool_ext.h. Geometries are conv.h's ConvGeom with cin == cout == C.
 * Dimension legend: N batch, C channels, (T, H, W) input, (To, Ho, Wo) output. */
#ifndef I2V_KERNELS_POOL_EXT_H
#define I2V_KERNELS_POOL_EXT_H

#include "kernels/conv.h"

/* PyTorch's ceil mode without padding: out = ceil((in - k) / s) + 1 per axis, less one when that last
 * window would start at or past the end of the input. The last window may hang over the end; the part
 * outside is ignored. conv.h's maxpool3d_forward / maxpool3d_backward take this geometry as it is. */
ConvGeom pool_geom_ceil(int n, int ch, const int in[3], const int k[3], const int s[3]);

/* Average over the in-range part of each window: y = sum / count, count = the input elements the window
 * covers (padding excluded). x (N, C, T, H, W), y (N, C, To, Ho, Wo). */
void avgpool3d_exclude_pad_forward(real *y, const real *x, const ConvGeom *g);
/* dx (N, C, T, H, W) += dy / count spread over each window's in-range elements. */
void avgpool3d_exclude_pad_backward(real *dx, const real *dy, const ConvGeom *g);

#endif
