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

/* The object of a start frame x0 on a flat background, and how well a later frame keeps its shape and colour.
 * Colours are RGB vectors in [-1, 1], distances Euclidean. The background is x0's most common colour
 * (colours compared at 8 bits per channel); the object's contrast is the largest distance of an x0 pixel
 * from it; the object's colour c is the mean of the x0 pixels farther than half that contrast from the
 * background; a frame's object mask holds its pixels farther than half of |c - background| from the
 * background. */
typedef struct ObjectRef {
    int H, W;
    double bg[3];            /* the background colour */
    double colour[3];        /* c, the object's colour in x0 */
    double threshold;        /* |c - bg| / 2: the mask's distance from the background */
    double centroid[2];      /* (x, y) of x0's mask, px (pixel centres at i + 0.5) */
    unsigned char *mask;     /* (H, W) x0's mask */
} ObjectRef;
/* x0 (3, H, W); object_ref_free releases the mask. */
void object_ref_init(ObjectRef *r, const real *x0, int H, int W);
void object_ref_free(ObjectRef *r);
/* For a frame (3, H, W): *iou, the IoU of its mask with x0's mask translated (bilinearly) so the two
 * centroids coincide, as sum(min) / sum(max) of the two masks; *colour_error, the distance between the
 * frame's mean colour inside its mask and c. An empty mask gives IoU 0 and colour error |c - bg|. */
void object_compare(const ObjectRef *r, const real *frame, double *iou, double *colour_error);

#endif
