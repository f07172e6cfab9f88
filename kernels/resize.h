/* resize.h: bilinear resizing of image planes in the three conventions the metric protocols need.
 *
 * x holds nc planes (ih, iw) one after another, y holds nc planes (oh, ow). Output pixel (i, j) reads the
 * source coordinate (sy(i), sx(j)) and mixes the 2 x 2 neighbours around it; coordinates past the last
 * pixel use the last one. The source coordinate of output index i along an axis of size in -> out:
 *   RESIZE_ALIGN_CORNERS  i (in - 1) / (out - 1)                 PyTorch bilinear, align_corners=True
 *                                                                 (0 when out == 1)
 *   RESIZE_HALF_PIXEL     max((i + 0.5) in / out - 0.5, 0)         PyTorch bilinear, align_corners=False
 *   RESIZE_TF1            i in / out                               TensorFlow 1 tf.image.resize_bilinear
 *                                                                 (align_corners=False, no half-pixel
 *                                                                 centres), the paper's FVD graph
 * None of them filters before downsampling (no antialias), as in the official metric code.
 * The PyTorch modes compute coordinates in `real` (PyTorch computes them in the input's precision); the TF1
 * mode computes them in float in both builds, as TensorFlow's kernel does.
 * Forward writes y; backward accumulates into dx (+=), the adjoint of the same linear map.
 * Dimension legend: nc planes (N C, or N C T for videos), ih iw input height and width, oh ow output. */
#ifndef I2V_RESIZE_H
#define I2V_RESIZE_H

#include <stddef.h>

#include "tensor.h"

typedef enum ResizeMode { RESIZE_ALIGN_CORNERS, RESIZE_HALF_PIXEL, RESIZE_TF1 } ResizeMode;

const char *resize_mode_name(ResizeMode m);   /* "align_corners", "half_pixel", "tf1" */

/* x (nc, ih, iw) -> y (nc, oh, ow) */
void resize_bilinear_mode(real *y, const real *x, size_t nc, int ih, int iw, int oh, int ow, ResizeMode m);
/* dx (nc, ih, iw) += adjoint applied to dy (nc, oh, ow) */
void resize_bilinear_mode_backward(real *dx, const real *dy, size_t nc, int ih, int iw, int oh, int ow,
                                   ResizeMode m);

#endif
