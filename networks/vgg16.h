/* vgg16.h: torchvision's VGG16 feature extractor (`features`, 13 convs with bias and ReLU, 5 max pools),
 * cut at relu1_2, relu2_2, relu3_3, relu4_3 and relu5_3 as the official VGG diversity score cuts it
 * (stage2_cINN/AE/modules/vgg16.py, the same slicing as the LPIPS backbone).
 *
 * Tensor names are torchvision's (vgg16-397923af.pth): features.<i>.weight / .bias for the convs at
 * positions 0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28 of the Sequential; the classifier is not used.
 * What it is not: LPIPS (networks/lpips.h has its own copy of these layers under LPIPS's names), or the
 * diversity score's preprocessing (networks/features.c).
 * Dimension legend: N batch, C channels, H, W image size; C_k the width of slice k.
 */
#ifndef I2V_VGG16_H
#define I2V_VGG16_H

#include "tensor.h"

#define VGG16_CONVS 13
#define VGG16_SLICES 5

typedef struct Vgg16 {
    int width_div;                    /* 1: the published widths 64, 128, 256, 512, 512; k > 1: / k */
    int widths[VGG16_SLICES];
    ParamSet ps;                      /* buffers only (frozen) */
    Tensor *w[VGG16_CONVS];           /* (C_out, C_in, 3, 3) */
    Tensor *b[VGG16_CONVS];           /* (C_out) */
} Vgg16;

void vgg16_build(Vgg16 *m, int width_div);
void vgg16_free(Vgg16 *m);
/* Random weights as torchvision initialises VGG: Kaiming-normal (fan_out) convs; biases N(0, 0.1) here
 * (torchvision: 0) so that they matter in tests. */
void vgg16_init_random(Vgg16 *m, Rng *r);
/* Eval forward, x (N, 3, H, W) (already normalised) -> maps[k] (N, C_k, H >> k, W >> k) (max pools 2x2,
 * stride 2, floor), the ReLU outputs ending each slice. */
void vgg16_forward(Ctx *c, Vgg16 *m, Tensor *x, Tensor *maps[VGG16_SLICES]);

#endif
