/* pad.h: constant zero padding of planes along (T, H, W) with different amounts before and after,
 * as torch.nn.functional.pad(x, (w0, w1, h0, h1, t0, t1)) with value 0.
 *
 * TensorFlow's "SAME" padding puts the odd element after the data, so the I3D networks need asymmetric
 * padding, which a convolution's symmetric `padding` argument cannot express.
 * Kernels only (argument order: outputs, inputs, sizes); the tape op is in ops/pad.h. Forward writes (=),
 * backward accumulates (+=).
 * Dimension legend: nc planes (N C), in[3] = (T, H, W) input sizes, front[3] / back[3] the zeros added
 * before / after each axis; out = in + front + back. */
#ifndef I2V_KERNELS_PAD_H
#define I2V_KERNELS_PAD_H

#include <stddef.h>

#include "tensor.h"

/* x (nc, T, H, W) -> y (nc, T + f0 + b0, H + f1 + b1, W + f2 + b2) */
void pad3d_forward(real *y, const real *x, size_t nc, const int in[3], const int front[3], const int back[3]);
/* dx (nc, T, H, W) += the interior of dy (nc, To, Ho, Wo) */
void pad3d_backward(real *dx, const real *dy, size_t nc, const int in[3], const int front[3], const int back[3]);

#endif
