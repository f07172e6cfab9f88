/* patchgan.h: the spatial PatchGAN discriminator `NLayerDiscriminator` (stage1_VAE/modules/patch_disc.py),
 * shared by stage 1 (spatial discriminator D_s) and the conditioning autoencoder of stage 2.
 *
 * What it is: the pix2pix PatchGAN with the repository's changes: every conv spectral-normalised
 * (torch.nn.utils.spectral_norm: weight_orig, weight_u, weight_v), ActNorm instead of BatchNorm after the
 * middle convs (data-dependent initialisation on the first call made in training mode), so every conv has a
 * bias. With the official config the Sequential is
 *     0 conv 3->64 k4 s2 p1, 1 LReLU(0.2),
 *     2 conv 64->128 k4 s2 p1, 3 ActNorm, 4 LReLU,   5 conv 128->256 s2, 6 ActNorm, 7 LReLU,
 *     8 conv 256->512 k4 s1 p1, 9 ActNorm, 10 LReLU, 11 conv 512->1 k4 s1 p1
 * giving (N, 1, 6, 6) logits for 64x64 frames and (N, 1, 14, 14) for 128x128. State-dict names
 * `main.<i>.bias`, `main.<i>.weight_orig`, `main.<i>.weight_u`, `main.<i>.weight_v`, `main.<i>.loc`,
 * `main.<i>.scale`, `main.<i>.initialized` in that order, as the official state dict.
 * What it is not: the hinge losses (tensor.h t_hinge_*) or any training step (ae.c, cond_ae.c).
 *
 * Modes come from the context: c->training = 1 runs one power iteration per conv per call (updating
 * weight_u / weight_v in place) and initialises each ActNorm on its first such call; c->training = 0 uses
 * the stored vectors and never initialises. The official training loops never put this network in eval
 * mode, so callers normally keep c->training = 1 when they call it, also while validating.
 * Dimension legend: N batch, C channels, H, W image size; h', w' the logit map size.
 */
#ifndef I2V_PATCHGAN_H
#define I2V_PATCHGAN_H

#include "networks/layers.h"
#include "tensor.h"

/* The `Discriminator_Patch` section of every official config. */
typedef struct PatchGanConfig {
    int in_channels;    /* 3 */
    int ndf;            /* 64: width of the first conv; later widths ndf * min(2^n, 8) */
    int n_layers;       /* 3: number of stride-2 convs (the last middle conv has stride 1) */
    int use_actnorm;    /* 1: ActNorm, convs with bias; 0: BatchNorm2d (eps 1e-5), middle convs without bias */
    int spectral_norm;  /* 1: every conv wrapped in torch.nn.utils.spectral_norm */
} PatchGanConfig;

#define PATCHGAN_MAX_CONVS 12

/* One conv of the Sequential, with the normalisation that follows it (none for the first and last). */
typedef struct PatchGanConv {
    int index;          /* position of the conv in `main` (0, 2, 5, 8, 11 for the official config) */
    int cin, cout, stride;
    Conv conv;          /* 4 x 4, padding 1: weight (Cout, Cin, 4, 4), `weight_orig` with spectral norm and its
                           weight_u (Cout), weight_v (Cin * 16); bias (Cout) or NULL */
    int norm;           /* 0 none, 1 ActNorm, 2 BatchNorm2d; at `main.<index + 1>` */
    Tensor *loc, *scale;            /* ActNorm (1, Cout, 1, 1) */
    Tensor *initialized;            /* ActNorm U8 () */
    BatchNorm bn;                   /* BatchNorm2d (Cout) */
} PatchGanConv;

typedef struct PatchGan {
    PatchGanConfig cfg;
    ParamSet ps;        /* owned; names prefix + "main.<i>...." in state_dict order */
    int nconv;
    PatchGanConv conv[PATCHGAN_MAX_CONVS];
    int actnorm_degenerate;   /* channels whose ActNorm initialisation met a zero std (scale 1e6, as PyTorch) */
} PatchGan;

/* in_channels 3, ndf 64, n_layers 3, ActNorm, spectral norm: every official config. */
PatchGanConfig patchgan_config_default(void);

/* Declares the parameters and buffers (names, shapes) without allocating them: enough for parameter
 * counts, state-dict listings and dry runs at full size. prefix may be NULL. */
void patchgan_declare(PatchGan *d, const PatchGanConfig *cfg, const char *prefix);
/* Allocates and initialises as PyTorch does: conv weights and biases U(+-1/sqrt(fan_in)) (the repository's
 * N(0, 0.02) `weights_init` is applied to the Sequential itself and does nothing), spectral-norm u and v
 * normalised N(0, 1) draws, ActNorm loc 0 / scale 1 / initialized 0, BatchNorm weight 1, bias 0. */
void patchgan_init(PatchGan *d, Rng *rng);
/* Both of the above. */
void patchgan_build(PatchGan *d, const PatchGanConfig *cfg, const char *prefix, Rng *rng);
void patchgan_free(PatchGan *d);

/* x (N, in_channels, H, W) -> logits (N, 1, h', w'). Computes each conv's spectral-normalised weight once
 * per call. In training mode the first call initialises the ActNorms from this batch (x must then hold at
 * least 2 values per channel at every layer). Gradients flow to x and to the parameters. */
Tensor *patchgan_forward(Ctx *c, PatchGan *d, Tensor *x);

/* The logit map size for an H x W input: (4 convs of kernel 4, padding 1, strides 2, ..., 1, 1). */
void patchgan_output_size(const PatchGanConfig *cfg, int H, int W, int *ho, int *wo);

#endif
