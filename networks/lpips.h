/* lpips.h: the LPIPS perceptual distance (Zhang et al. 2018, "vgg" variant, version 0.1) used as a training
 * loss by stage 1 and the conditioning autoencoder: stage2_cINN/AE/modules/LPIPS.py and vgg16.py, a
 * stripped copy of richzhang/PerceptualSimilarity.
 *
 *   d(x, y) = sum_k mean_hw  lin_k( dropout( (f_k(x) / |f_k(x)| - f_k(y) / |f_k(y)|)^2 ) )
 *
 * with f_k the VGG16 relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 features of the scaled inputs
 * (x - shift) / scale, |.| the per-pixel norm over channels, lin_k a 1x1 conv C_k -> 1 without bias.
 * Every weight is frozen: the tensors are buffers of the ParamSet (no gradient is ever computed for them),
 * gradients flow to the inputs only.
 *
 * Weights: one safetensors file with the official names (`scaling_layer.shift`, `scaling_layer.scale`,
 * `net.slice1.0.weight`, `net.slice1.0.bias`, ..., `net.slice5.28.bias`, `lin0.model.1.weight`, ...,
 * `lin4.model.1.weight`), made by `tools/convert_official.py lpips` from the LPIPS `vgg.pth` and torchvision's
 * `vgg16-397923af.pth`. Nothing is downloaded.
 * Dimension legend: N batch, C channels, H, W image size; C_k the width of slice k.
 */
#ifndef I2V_LPIPS_H
#define I2V_LPIPS_H

#include "base/base.h"
#include "tensor.h"

#define LPIPS_SLICES 5
#define LPIPS_CONVS 13
/* The file lpips_load() reads when the caller names none. */
#define LPIPS_DEFAULT_PATH "models/lpips_vgg.safetensors"

/* Widths of the five VGG16 slices: {64, 128, 256, 512, 512} for the real network; smaller widths give a
 * randomly initialised stand-in for tests and CPU configs (an i2v extension, the official class is fixed). */
typedef struct LpipsConfig {
    int widths[LPIPS_SLICES];
} LpipsConfig;

typedef struct Lpips {
    LpipsConfig cfg;
    ParamSet ps;                     /* buffers only, official state_dict names and order */
    Tensor *shift, *scale;           /* scaling_layer buffers (1, 3, 1, 1) */
    Tensor *conv_w[LPIPS_CONVS];     /* (C_out, C_in, 3, 3): VGG16 features 0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28 */
    Tensor *conv_b[LPIPS_CONVS];     /* (C_out) */
    Tensor *lin[LPIPS_SLICES];       /* lin<k>.model.1.weight (1, C_k, 1, 1), non-negative in the released file */
    int dropout;                     /* 1 (official): Dropout(p = 0.5) in front of each lin when c->training;
                                        0: the deterministic variant, the expectation of the official value */
} Lpips;

LpipsConfig lpips_config_vgg16(void);
/* Declares and allocates the tensors: the scaling constants of LPIPS.py, every weight zero. dropout = 1. */
void lpips_build(Lpips *l, const LpipsConfig *cfg);
void lpips_free(Lpips *l);
/* Random weights for a stand-in network (tests, CPU configs without the weights file): convs as torchvision's
 * VGG init (Kaiming-normal fan_out, bias 0), lin weights U(0, 2 / C_k). */
void lpips_init_random(Lpips *l, Rng *rng);
/* Loads every tensor by name from a safetensors file (path NULL: LPIPS_DEFAULT_PATH). A missing file gives an
 * error that explains how to make it; a missing or mis-shaped tensor is named. Returns 0 or -1. */
int lpips_load(Lpips *l, const char *path, I2vError *e);
/* lpips_build with the VGG16 widths followed by lpips_load. On failure l is freed. */
int lpips_open(Lpips *l, const char *path, I2vError *e);

/* LPIPS.forward(input, target): x, y (N, 3, H, W) in [-1, 1] -> (N, 1, 1, 1). rng drives the dropout masks
 * (used only when l->dropout and c->training; may be NULL otherwise). Differentiable in x and y. */
Tensor *lpips_forward(Ctx *c, Lpips *l, Tensor *x, Tensor *y, Rng *rng);

#endif
