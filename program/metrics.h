/* metrics.h: image-quality measures for evaluation and logging, as the official stage-1 code computes
 * them (pytorch_lightning.metrics.functional psnr and ssim, PL 1.x, on frames in [-1, 1]). */
#ifndef I2V_METRICS_H
#define I2V_METRICS_H

#include <stddef.h>

#include "tensor.h"

/* mean |a - b| */
double metric_l1(const real *a, const real *b, size_t n);
/* 10 log10(range^2 / mse) over all n values; range <= 0 means target.max() - target.min() (PL's default) */
double metric_psnr(const real *pred, const real *target, size_t n, double range);
/* SSIM (Wang et al. 2004) of nimg images (C, H, W): 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03,
 * reflect padding whose border is cropped from the map, the mean over everything; range <= 0 means
 * max(pred range, target range) (PL's default). */
double metric_ssim(const real *pred, const real *target, int nimg, int C, int H, int W, double range);

#endif
