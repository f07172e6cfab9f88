/* patchgan.c: the spatial PatchGAN discriminator, NLayerDiscriminator of stage1_VAE/modules/patch_disc.py.
 *
 * What it is: building the Sequential `main` with the official names, PyTorch's initialisation, and the
 * forward pass (spectral norm -> conv -> ActNorm -> LeakyReLU(0.2) per layer) as recorded tape ops, so the
 * backward comes from the tape. What it is not: losses or update steps (the callers own those).
 * Dimension legend: N batch, C channels, H, W spatial size; K = Cin * 4 * 4 (a conv weight as a matrix).
 */
#include "networks/patchgan.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ops/norm.h"

#define PATCH_KERNEL 4   /* kw = 4 */
#define PATCH_PAD 1      /* padw = 1 */
#define PATCH_SLOPE 0.2  /* nn.LeakyReLU(0.2, True) */
#define PATCH_BN_EPS 1e-5
#define PATCH_BN_MOMENTUM 0.1

enum { NORM_NONE = 0, NORM_ACTNORM = 1, NORM_BATCH = 2 };

PatchGanConfig patchgan_config_default(void) {
    PatchGanConfig c = {.in_channels = 3, .ndf = 64, .n_layers = 3, .use_actnorm = 1, .spectral_norm = 1};
    return c;
}

static int imin(int a, int b) { return a < b ? a : b; }

/* Declares one conv at `main.<index>` (and its norm at `main.<index + 1>`), in state_dict order. */
static void declare_conv(PatchGan *d, const char *prefix, int index, int cin, int cout, int stride, int has_bias,
                         int norm) {
    I2V_ASSERT(d->nconv < PATCHGAN_MAX_CONVS, "PatchGAN: more than %d convs", PATCHGAN_MAX_CONVS);
    PatchGanConv *cv = &d->conv[d->nconv++];
    memset(cv, 0, sizeof *cv);
    cv->index = index;
    cv->cin = cin;
    cv->cout = cout;
    cv->stride = stride;
    cv->norm = norm;
    char name[256], base[256];
    const char *p = prefix ? prefix : "";
    ParamSet *ps = &d->ps;
    snprintf(base, sizeof base, "%smain.%d", p, index);
    conv_declare(&cv->conv, ps, base, cout, cin, 2, (const int[]){1, PATCH_KERNEL, PATCH_KERNEL},
                 (const int[]){1, stride, stride}, (const int[]){0, PATCH_PAD, PATCH_PAD}, has_bias,
                 d->cfg.spectral_norm);
    if (norm == NORM_ACTNORM) {
        snprintf(name, sizeof name, "%smain.%d.loc", p, index + 1);
        cv->loc = param_new(ps, name, 4, DIMS(1, cout, 1, 1));
        snprintf(name, sizeof name, "%smain.%d.scale", p, index + 1);
        cv->scale = param_new(ps, name, 4, DIMS(1, cout, 1, 1));
        snprintf(name, sizeof name, "%smain.%d.initialized", p, index + 1);
        cv->initialized = buffer_new(ps, name, DT_U8, 0, NULL);
    } else if (norm == NORM_BATCH) {
        snprintf(base, sizeof base, "%smain.%d", p, index + 1);
        batch_norm_declare(&cv->bn, ps, base, cout, 1);
    }
}

/* NLayerDiscriminator.__init__: the Sequential, index by index. */
void patchgan_declare(PatchGan *d, const PatchGanConfig *cfg, const char *prefix) {
    I2V_ASSERT(cfg->in_channels > 0 && cfg->ndf > 0 && cfg->n_layers >= 1, "PatchGAN: bad config (%d, %d, %d)",
               cfg->in_channels, cfg->ndf, cfg->n_layers);
    memset(d, 0, sizeof *d);
    d->cfg = *cfg;
    paramset_init(&d->ps);
    int norm = cfg->use_actnorm ? NORM_ACTNORM : NORM_BATCH;
    int mid_bias = cfg->use_actnorm;   /* use_bias = norm_layer != nn.BatchNorm2d */
    int index = 0;
    declare_conv(d, prefix, index, cfg->in_channels, cfg->ndf, 2, 1, NORM_NONE);
    index += 2;   /* conv, LeakyReLU */
    int mult = 1, mult_prev;
    for (int n = 1; n < cfg->n_layers; n++) {
        mult_prev = mult;
        mult = imin(1 << imin(n, 3), 8);
        declare_conv(d, prefix, index, cfg->ndf * mult_prev, cfg->ndf * mult, 2, mid_bias, norm);
        index += 3;   /* conv, norm, LeakyReLU */
    }
    mult_prev = mult;
    mult = imin(1 << imin(cfg->n_layers, 3), 8);
    declare_conv(d, prefix, index, cfg->ndf * mult_prev, cfg->ndf * mult, 1, mid_bias, norm);
    index += 3;
    declare_conv(d, prefix, index, cfg->ndf * mult, 1, 1, 1, NORM_NONE);
}

void patchgan_init(PatchGan *d, Rng *rng) {
    paramset_alloc(&d->ps);
    for (int i = 0; i < d->nconv; i++) {
        PatchGanConv *cv = &d->conv[i];
        conv_init_default(&cv->conv, rng);   /* PyTorch's default Conv2d init, spectral norm's u and v */
        if (cv->norm == NORM_ACTNORM) {
            tensor_fill(cv->loc, 0);
            tensor_fill(cv->scale, 1);
            ((uint8_t *)cv->initialized->ibuf)[0] = 0;
        } else if (cv->norm == NORM_BATCH) {
            batch_norm_init(&cv->bn);
        }
    }
}

void patchgan_build(PatchGan *d, const PatchGanConfig *cfg, const char *prefix, Rng *rng) {
    patchgan_declare(d, cfg, prefix);
    patchgan_init(d, rng);
}

void patchgan_free(PatchGan *d) {
    paramset_free(&d->ps);
    memset(d, 0, sizeof *d);
}

void patchgan_output_size(const PatchGanConfig *cfg, int H, int W, int *ho, int *wo) {
    PatchGan d;
    patchgan_declare(&d, cfg, NULL);
    for (int i = 0; i < d.nconv; i++) {
        H = (H + 2 * PATCH_PAD - PATCH_KERNEL) / d.conv[i].stride + 1;
        W = (W + 2 * PATCH_PAD - PATCH_KERNEL) / d.conv[i].stride + 1;
    }
    patchgan_free(&d);
    *ho = H;
    *wo = W;
}

/* ActNorm.forward of patch_disc.py: initialise from this batch on the first training-mode call, then
 * scale * (x + loc). h (N, C, H, W). */
static Tensor *actnorm_layer(Ctx *c, PatchGan *d, PatchGanConv *cv, Tensor *h) {
    uint8_t *init = cv->initialized->ibuf;
    if (c->training && !c->dry && init[0] == 0) {
        d->actnorm_degenerate += actnorm_init(cv->loc, cv->scale, h);
        init[0] = 1;
    }
    return t_actnorm(c, h, cv->loc, cv->scale);
}

/* NLayerDiscriminator.forward = self.main(input). x (N, Cin, H, W) -> (N, 1, h', w'). */
Tensor *patchgan_forward(Ctx *c, PatchGan *d, Tensor *x) {
    I2V_ASSERT(x->ndim == 4 && x->shape[1] == d->cfg.in_channels, "PatchGAN: input must be (N, %d, H, W)",
               d->cfg.in_channels);
    Tensor *h = x;
    for (int i = 0; i < d->nconv; i++) {
        PatchGanConv *cv = &d->conv[i];
        /* spectral_norm's pre-forward hook: one power iteration in training mode, W = weight_orig / sigma */
        h = conv_apply(c, &cv->conv, conv_weight(c, &cv->conv), h, 1);
        if (cv->norm == NORM_ACTNORM) h = actnorm_layer(c, d, cv, h);
        else if (cv->norm == NORM_BATCH)
            h = batch_norm_apply(c, &cv->bn, h, (real)PATCH_BN_EPS, (real)PATCH_BN_MOMENTUM);
        if (i < d->nconv - 1) h = t_leaky_relu(c, h, (real)PATCH_SLOPE);
    }
    return h;
}
