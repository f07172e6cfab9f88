/* resize.h (ops): the tape op of the bilinear resizes in kernels/resize.h.
 * x (..., H, W) with at least 3 dimensions (N, C, H, W images or N, C, T, H, W videos: every frame of every
 * channel is resized) -> (..., oh, ow). Differentiable in x. */
#ifndef I2V_OPS_RESIZE_H
#define I2V_OPS_RESIZE_H

#include "kernels/resize.h"
#include "tensor.h"

Tensor *t_resize_bilinear_mode(Ctx *c, Tensor *x, int oh, int ow, ResizeMode m);

#endif
