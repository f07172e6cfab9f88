/* pad.h (ops): the tape op of kernels/pad.h, zero padding with separate amounts before and after.
 * x (N, C, T, H, W) -> (N, C, T + f0 + b0, H + f1 + b1, W + f2 + b2); x (N, C, H, W) takes the (H, W)
 * entries [1] and [2] of front and back (entry [0] must be 0). Differentiable in x. */
#ifndef I2V_OPS_PAD_H
#define I2V_OPS_PAD_H

#include "tensor.h"

Tensor *t_pad3d(Ctx *c, Tensor *x, const int front[3], const int back[3]);

#endif
