/* cond_ae.c: the conditioning image autoencoder of stage 2: configs, the ResNet-50 encoder with its diagonal
 * Gaussian posterior, and the BigGAN-style decoder (stage2_cINN/AE/modules/AE.py, generator.py,
 * distributions.py) and its training step (AE/modules/loss.py, AE/main.py).
 *
 * What it is: modules built with the official state_dict names and PyTorch's initialisation, and their
 * forward passes as recorded tape ops (the backward comes from the tape). Read top to bottom: configs,
 * encoder, posterior, decoder pieces (spectral norm wrapper, conditional batch norm, GBlock, attention),
 * decoder, training step. What it is not: the PatchGAN (patchgan.c), LPIPS (lpips.c), the cINN (flow.c),
 * data loading or the epoch loop.
 * Dimension legend: N batch, C channels, H, W height and width, S = in_size, Z = z_dim, K classes, E class
 * embedding, c the condition width of a GBlock (split + E).
 */
#include "networks/cond_ae.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/conv.h"
#include "ops/init.h"
#include "ops/norm.h"
#include "formats/safetensors.h"

/* ==================================================================================================== */
/* configs                                                                                                */
/* ==================================================================================================== */

/* The values every official AE config shares (bair_config.yaml), before the per-dataset differences. */
static CondAeConfig config_common(int in_size, const char *norm, int z_dim, double w_kl, int n_epochs,
                                  const char *dataset) {
    CondAeConfig c;
    memset(&c, 0, sizeof c);
    CondAeNetConfig *a = &c.AE;
    a->deterministic = 0;
    a->in_size = in_size;
    snprintf(a->norm, sizeof a->norm, "%s", norm);
    snprintf(a->encoder_type, sizeof a->encoder_type, "resnet50");
    a->use_actnorm_in_dec = 0;
    a->z_dim = z_dim;
    a->enc_width = 64;
    const int blocks[CAE_STAGES] = {3, 4, 6, 3};
    memcpy(a->enc_blocks, blocks, sizeof blocks);
    a->n_enc_blocks = CAE_STAGES;
    a->dec_chn = 96;
    a->n_dec_mults = 0;   /* the official generator for in_size */
    a->dec_split = 0;
    a->dec_attn_index = 4;
    a->n_class = 1000;
    a->class_hidden = 2000;
    a->class_emb = 128;
    c.Discriminator_Patch = patchgan_config_default();
    c.Training.w_kl = w_kl;
    c.Training.n_epochs = n_epochs;
    c.Training.lr = 2e-4;
    c.Training.bs = 30;
    c.Training.weight_decay = 0;
    c.Training.workers = 30;
    c.Training.pretrain = 20;
    c.Training.perceptual = 1;
    c.Data.sequence_length = 1;
    c.Data.img_size = in_size;
    snprintf(c.Data.dataset, sizeof c.Data.dataset, "%s", dataset);
    return c;
}

/* load_variable_latsize_generator: VariableDimGenerator64 has GBlocks 16->16, 16->8, 8->4, 4->1 (x chn)
 * and codes of 10; VariableDimGenerator128 16->16, 16->8, 8->4, 4->2, 2->1 and codes of 20. */
void cond_ae_net_resolve(CondAeNetConfig *a) {
    const int m64[4] = {16, 8, 4, 1}, m128[5] = {16, 8, 4, 2, 1};
    if (a->n_dec_mults == 0 && a->in_size == 64) {
        memcpy(a->dec_mults, m64, sizeof m64);
        a->n_dec_mults = 4;
    } else if (a->n_dec_mults == 0 && a->in_size == 128) {
        memcpy(a->dec_mults, m128, sizeof m128);
        a->n_dec_mults = 5;
    }
    if (a->dec_split == 0 && (a->in_size == 64 || a->in_size == 128)) a->dec_split = a->in_size == 64 ? 10 : 20;
}

CondAeConfig cond_ae_config_bair(void) { return config_common(64, "in", 64, 1e-5, 60, "BAIR"); }
CondAeConfig cond_ae_config_iper(void) { return config_common(64, "in", 128, 1e-5, 140, "iPER"); }
CondAeConfig cond_ae_config_landscape(void) { return config_common(128, "bn", 128, 1e-4, 200, "landscape"); }

/* DTDB: n_epochs clouds 200, fire 120, vegetation 60, waterfall 100; BatchNorm only for waterfall */
CondAeConfig cond_ae_config_dtdb(const char *texture) {
    int epochs = 100;
    if (!strcmp(texture, "clouds")) epochs = 200;
    else if (!strcmp(texture, "fire")) epochs = 120;
    else if (!strcmp(texture, "vegetation")) epochs = 60;
    return config_common(128, strcmp(texture, "waterfall") ? "in" : "bn", 128, 1e-5, epochs, "DTDB");
}

CondAeConfig cond_ae_config_small(void) {
    CondAeConfig c = config_common(64, "in", 32, 1e-5, 20, "synthetic");
    CondAeNetConfig *a = &c.AE;
    a->enc_width = 16;
    for (int i = 0; i < CAE_STAGES; i++) a->enc_blocks[i] = 1;
    a->dec_chn = 8;
    a->dec_split = 4;
    a->n_class = 64;
    a->class_hidden = 128;
    a->class_emb = 32;
    c.Discriminator_Patch.ndf = 16;
    c.Training.lr = 1e-3;
    c.Training.bs = 16;
    c.Training.workers = 2;
    c.Training.pretrain = 5;
    c.Training.perceptual = 0;
    return c;
}

CondAeConfig cond_ae_config_tiny(void) {
    CondAeConfig c = config_common(32, "bn", 32, 1e-5, 10, "synthetic");
    CondAeNetConfig *a = &c.AE;
    a->enc_width = 8;
    for (int i = 0; i < CAE_STAGES; i++) a->enc_blocks[i] = 1;
    a->dec_chn = 4;
    const int m[3] = {16, 4, 1};
    memcpy(a->dec_mults, m, sizeof m);
    a->n_dec_mults = 3;
    a->dec_split = 2;
    a->n_class = 32;
    a->class_hidden = 64;
    a->class_emb = 16;
    c.Discriminator_Patch.ndf = 8;
    c.Training.lr = 1e-3;
    c.Training.bs = 16;
    c.Training.workers = 2;
    c.Training.pretrain = 3;
    c.Training.perceptual = 0;
    return c;
}

int cond_ae_config_named(const char *name, CondAeConfig *out, I2vError *e) {
    static const char *const textures[4] = {"clouds", "fire", "vegetation", "waterfall"};
    if (!strcmp(name, "bair")) *out = cond_ae_config_bair();
    else if (!strcmp(name, "iper")) *out = cond_ae_config_iper();
    else if (!strcmp(name, "landscape")) *out = cond_ae_config_landscape();
    else if (!strcmp(name, "small")) *out = cond_ae_config_small();
    else if (!strcmp(name, "tiny")) *out = cond_ae_config_tiny();
    else {
        for (int i = 0; i < 4; i++) {
            char full[32];
            snprintf(full, sizeof full, "dtdb_%s", textures[i]);
            if (!strcmp(name, full)) {
                *out = cond_ae_config_dtdb(textures[i]);
                return 0;
            }
        }
        return err_set(e, "unknown conditioning-AE config '%s': expected bair, iper, landscape, dtdb_clouds, "
                          "dtdb_fire, dtdb_vegetation, dtdb_waterfall, small or tiny", name);
    }
    return 0;
}

int cond_ae_config_check(const CondAeConfig *cfg, I2vError *e) {
    CondAeNetConfig resolved = cfg->AE;
    cond_ae_net_resolve(&resolved);
    const CondAeNetConfig *a = &resolved;
    if (strcmp(a->encoder_type, "resnet50"))
        return err_set(e, "AE.encoder_type: '%s' is not supported (expected resnet50, the type every official "
                          "config uses)", a->encoder_type);
    if (strcmp(a->norm, "in") && strcmp(a->norm, "bn"))
        return err_set(e, "AE.norm: '%s' is not supported (expected \"in\" or \"bn\")", a->norm);
    if (a->use_actnorm_in_dec)
        return err_set(e, "AE.use_actnorm_in_dec: True is not supported (False in every official config)");
    if (a->n_enc_blocks != CAE_STAGES)
        return err_set(e, "AE.enc_blocks: expected %d stages, got %d", CAE_STAGES, a->n_enc_blocks);
    for (int i = 0; i < CAE_STAGES; i++)
        if (a->enc_blocks[i] < 1) return err_set(e, "AE.enc_blocks[%d] = %d: at least one block", i, a->enc_blocks[i]);
    if (a->enc_width < 1 || a->dec_chn < 1 || a->n_class < 1 || a->class_hidden < 1 || a->class_emb < 1 ||
        a->z_dim < 1)
        return err_set(e, "AE: widths (enc_width %d, dec_chn %d, n_class %d, class_hidden %d, class_emb %d, z_dim "
                          "%d) must be positive", a->enc_width, a->dec_chn, a->n_class, a->class_hidden, a->class_emb,
                       a->z_dim);
    if (a->n_dec_mults == 0)
        return err_set(e, "AE.in_size: %d has no official generator (64 or 128); set dec_mults and dec_split",
                       a->in_size);
    if (a->n_dec_mults < 1 || a->n_dec_mults > CAE_MAX_GBLOCKS)
        return err_set(e, "AE.dec_mults: 1 to %d GBlocks, got %d", CAE_MAX_GBLOCKS, a->n_dec_mults);
    if (4 << a->n_dec_mults != a->in_size)
        return err_set(e, "AE.in_size: %d, but %d GBlocks upsample 4x4 to %d", a->in_size, a->n_dec_mults,
                       4 << a->n_dec_mults);
    if (cfg->Data.img_size != a->in_size)
        return err_set(e, "Data.img_size: %d differs from AE.in_size %d", cfg->Data.img_size, a->in_size);
    if (a->in_size % 32 != 0)
        return err_set(e, "AE.in_size: %d is not a multiple of 32 (the ResNet halves it 5 times)", a->in_size);
    if (a->dec_split < 1 || a->z_dim - a->n_dec_mults * a->dec_split < 1)
        return err_set(e, "AE.z_dim: %d cannot be split into a first code and %d codes of %d", a->z_dim,
                       a->n_dec_mults, a->dec_split);
    if (a->dec_attn_index < a->n_dec_mults && a->dec_attn_index > 0 &&
        a->dec_mults[a->dec_attn_index - 1] != 2)
        return err_set(e, "AE.dec_mults: the self-attention runs on 2 chn channels, but GBlock %d receives %d chn",
                       a->dec_attn_index, a->dec_mults[a->dec_attn_index - 1]);
    if (2 * a->dec_chn < 8)
        return err_set(e, "AE.dec_chn: %d is too narrow for the attention block (2 chn / 8 channels)", a->dec_chn);
    if (cfg->Data.sequence_length != 1)
        return err_set(e, "Data.sequence_length: %d, the conditioning AE trains on single frames (1)",
                       cfg->Data.sequence_length);
    if (cfg->Training.bs < 2)
        return err_set(e, "Training.bs: %d, batch statistics need at least 2 images", cfg->Training.bs);
    return 0;
}

/* ==================================================================================================== */
/* initialisation helpers                                                                                */
/* ==================================================================================================== */


/* ==================================================================================================== */
/* encoder: torchvision resnet50(norm_layer = InstanceNorm2d | BatchNorm2d) + DenseEncoderLayer          */
/* ==================================================================================================== */

#define ENC_EPS 1e-5
#define ENC_MOMENTUM 0.1
#define BOTTLENECK_EXPANSION 4

/* norm_layer(C): BatchNorm2d, or InstanceNorm2d(affine=False, track_running_stats=False), which has no keys */
static void norm_declare(BatchNorm *n, ParamSet *ps, int batch_norm, const char *name, int C) {
    memset(n, 0, sizeof *n);
    if (batch_norm) batch_norm_declare(n, ps, name, C, 1);
}

/* a bias-free k x k Conv2d's weight */
static Tensor *conv_weight_declare(ParamSet *ps, const char *name, int cout, int cin, int k) {
    char full[LAYER_NAME_MAX];
    layer_name(full, name, "weight");
    return param_new(ps, full, 4, DIMS(cout, cin, k, k));
}

/* ResNet._make_layer: block 0 of a stage gets the stride and, when the shape changes, the 1x1 projection. */
void cond_encoder_declare(CondEncoder *enc, const CondAeNetConfig *cfg, const char *prefix) {
    memset(enc, 0, sizeof *enc);
    enc->cfg = *cfg;
    enc->batch_norm = !strcmp(cfg->norm, "bn");
    paramset_init(&enc->ps);
    ParamSet *ps = &enc->ps;
    const char *p = prefix ? prefix : "";
    char name[256];
    int w = cfg->enc_width;
    snprintf(name, sizeof name, "%smodel.conv1", p);
    enc->conv1 = conv_weight_declare(ps, name, w, 3, 7);
    snprintf(name, sizeof name, "%smodel.bn1", p);
    norm_declare(&enc->bn1, ps, enc->batch_norm, name, w);
    enc->nblocks = 0;
    for (int s = 0; s < CAE_STAGES; s++) enc->nblocks += cfg->enc_blocks[s];
    enc->blocks = xcalloc((size_t)enc->nblocks, sizeof *enc->blocks);
    int inplanes = w, k = 0;
    for (int s = 0; s < CAE_STAGES; s++) {
        int width = w << s, cout = width * BOTTLENECK_EXPANSION;
        for (int j = 0; j < cfg->enc_blocks[s]; j++, k++) {
            CaeBottleneck *b = &enc->blocks[k];
            b->cin = inplanes;
            b->width = width;
            b->cout = cout;
            b->stride = (j == 0 && s > 0) ? 2 : 1;
            char base[192];
            snprintf(base, sizeof base, "%smodel.layer%d.%d", p, s + 1, j);
            /* registration order of torchvision's Bottleneck: conv1, bn1, conv2, bn2, conv3, bn3, downsample */
            snprintf(name, sizeof name, "%s.conv1", base);
            b->conv1 = conv_weight_declare(ps, name, width, inplanes, 1);
            snprintf(name, sizeof name, "%s.bn1", base);
            norm_declare(&b->bn1, ps, enc->batch_norm, name, width);
            snprintf(name, sizeof name, "%s.conv2", base);
            b->conv2 = conv_weight_declare(ps, name, width, width, 3);
            snprintf(name, sizeof name, "%s.bn2", base);
            norm_declare(&b->bn2, ps, enc->batch_norm, name, width);
            snprintf(name, sizeof name, "%s.conv3", base);
            b->conv3 = conv_weight_declare(ps, name, cout, width, 1);
            snprintf(name, sizeof name, "%s.bn3", base);
            norm_declare(&b->bn3, ps, enc->batch_norm, name, cout);
            if (j == 0 && (b->stride != 1 || inplanes != cout)) {
                snprintf(name, sizeof name, "%s.downsample.0", base);
                b->down = conv_weight_declare(ps, name, cout, inplanes, 1);
                snprintf(name, sizeof name, "%s.downsample.1", base);
                norm_declare(&b->down_bn, ps, enc->batch_norm, name, cout);
            }
            inplanes = cout;
        }
    }
    /* model.fc = DenseEncoderLayer(in_channels = 2048, out_size = 2 z_dim, kernel = spatial size 1) */
    snprintf(name, sizeof name, "%smodel.fc.sub_layers.0.weight", p);
    enc->fc_w = param_new(ps, name, 4, DIMS(2 * cfg->z_dim, inplanes, 1, 1));
    snprintf(name, sizeof name, "%smodel.fc.sub_layers.0.bias", p);
    enc->fc_b = param_new(ps, name, 1, DIMS(2 * cfg->z_dim));
}

static void norm_init(BatchNorm *n) {
    if (n->weight) batch_norm_init(n);
}

void cond_encoder_init(CondEncoder *enc, Rng *rng) {
    paramset_alloc(&enc->ps);
    init_kaiming_normal_fan_out(enc->conv1, rng);
    norm_init(&enc->bn1);
    for (int k = 0; k < enc->nblocks; k++) {
        CaeBottleneck *b = &enc->blocks[k];
        init_kaiming_normal_fan_out(b->conv1, rng);
        init_kaiming_normal_fan_out(b->conv2, rng);
        init_kaiming_normal_fan_out(b->conv3, rng);
        norm_init(&b->bn1);
        norm_init(&b->bn2);
        norm_init(&b->bn3);
        if (b->down) {
            init_kaiming_normal_fan_out(b->down, rng);
            norm_init(&b->down_bn);
        }
    }
    init_default(enc->fc_w, enc->fc_b, rng);
    /* ResnetEncoder._get_spatial_size: features(torch.randn(1, 3, S, S)) in training mode. Below 64 px layer4
     * is 1x1, where the official constructor fails (BatchNorm2d with one value per channel); i2v skips it. */
    if (enc->batch_norm && enc->cfg.in_size / 32 >= 2) {
        Ctx c;
        ctx_init(&c);
        c.grad_enabled = 0;
        c.training = 1;
        int S = enc->cfg.in_size;
        Tensor *x = tensor_new(&c, 4, DIMS(1, 3, S, S));
        tensor_fill_normal(x, rng, 0, 1);
        cond_encoder_forward(&c, enc, x);
        ctx_free(&c);
    }
}

void cond_encoder_build(CondEncoder *enc, const CondAeNetConfig *cfg, const char *prefix, Rng *rng) {
    cond_encoder_declare(enc, cfg, prefix);
    cond_encoder_init(enc, rng);
}

void cond_encoder_free(CondEncoder *enc) {
    paramset_free(&enc->ps);
    free(enc->blocks);
    memset(enc, 0, sizeof *enc);
}

int cond_encoder_load(CondEncoder *enc, const char *path, I2vError *e) {
    StLoadOpts opts = {NULL, 1, 0};
    return st_load_paramset_file(path, &enc->ps, &opts, e) < 0 ? -1 : 0;
}

/* norm_layer(C): InstanceNorm2d (per sample and channel, eps 1e-5) or BatchNorm2d. x (N, C, H, W). */
static Tensor *enc_norm(Ctx *c, const CondEncoder *enc, const BatchNorm *n, Tensor *x) {
    if (!enc->batch_norm) return t_instance_norm(c, x, (real)ENC_EPS);
    return batch_norm_apply(c, n, x, (real)ENC_EPS, (real)ENC_MOMENTUM);
}

/* torchvision Bottleneck.forward: x (N, cin, H, W) -> (N, cout, H / stride, W / stride) */
Tensor *cond_bottleneck_forward(Ctx *c, const CondEncoder *enc, const CaeBottleneck *b, Tensor *x) {
    int st[2] = {b->stride, b->stride};
    Tensor *h = t_relu(c, enc_norm(c, enc, &b->bn1, t_conv2d(c, x, b->conv1, NULL, DIMS(1, 1), DIMS(0, 0))));
    h = t_relu(c, enc_norm(c, enc, &b->bn2, t_conv2d(c, h, b->conv2, NULL, st, DIMS(1, 1))));
    h = enc_norm(c, enc, &b->bn3, t_conv2d(c, h, b->conv3, NULL, DIMS(1, 1), DIMS(0, 0)));
    Tensor *identity = b->down ? enc_norm(c, enc, &b->down_bn, t_conv2d(c, x, b->down, NULL, st, DIMS(0, 0))) : x;
    return t_relu(c, t_add(c, h, identity));
}

/* ResnetEncoder.forward = model.fc(features(x)) */
Tensor *cond_encoder_forward(Ctx *c, CondEncoder *enc, Tensor *x) {
    int S = enc->cfg.in_size;
    I2V_ASSERT(x->ndim == 4 && x->shape[1] == 3 && x->shape[2] == S && x->shape[3] == S,
               "conditioning encoder: input must be (N, 3, %d, %d)", S, S);
    /* stem: conv 7x7 s2 p3, norm, ReLU, max pool 3x3 s2 p1 */
    Tensor *h = t_conv2d(c, x, enc->conv1, NULL, DIMS(2, 2), DIMS(3, 3));
    h = t_relu(c, enc_norm(c, enc, &enc->bn1, h));
    h = t_maxpool2d(c, h, DIMS(3, 3), DIMS(2, 2), DIMS(1, 1));
    for (int k = 0; k < enc->nblocks; k++) h = cond_bottleneck_forward(c, enc, &enc->blocks[k], h);
    h = t_global_avgpool(c, h);                                    /* AdaptiveAvgPool2d((1, 1)): (N, 2048, 1, 1) */
    return t_conv2d(c, h, enc->fc_w, enc->fc_b, DIMS(1, 1), DIMS(0, 0));   /* (N, 2Z, 1, 1) */
}

/* DiagonalGaussianDistribution.__init__: torch.chunk(parameters, 2, dim=1), logvar clamped */
void cond_posterior(Ctx *c, Tensor *h, Tensor **mean, Tensor **logvar) {
    int Z = h->shape[1] / 2;
    *mean = t_slice(c, h, 1, 0, Z);
    *logvar = t_clamp(c, t_slice(c, h, 1, Z, Z), -30, 10);
}

Tensor *cond_encoder_embed(Ctx *c, CondEncoder *enc, Tensor *x0) {
    Tensor *mean, *logvar;
    cond_posterior(c, cond_encoder_forward(c, enc, x0), &mean, &logvar);
    return t_reshape(c, mean, 2, DIMS(x0->shape[0], enc->cfg.z_dim));
}

/* ==================================================================================================== */
/* decoder pieces                                                                                         */
/* ==================================================================================================== */

#define DEC_BN_EPS 1e-4
#define DEC_BN_MOMENTUM 0.1
#define CLASSUP_SLOPE 0.01   /* nn.LeakyReLU() default */

/* SpectralNorm(module): `<name>.module.bias` (if the layer has one), `weight_u`, `weight_v`, `weight_bar`.
 * shape: the weight's shape, (Cout, Cin) or (Cout, Cin, k, k). */
static void sn_declare(BgSnLayer *l, ParamSet *ps, const char *name, int has_bias, int ndim, const int *shape) {
    char full[448];
    memset(l, 0, sizeof *l);
    int cout = shape[0];
    if (has_bias) {
        snprintf(full, sizeof full, "%s.module.bias", name);
        l->bias = param_new(ps, full, 1, DIMS(cout));
    }
    snprintf(full, sizeof full, "%s.module.weight_u", name);
    l->u = buffer_new(ps, full, DT_REAL, 1, DIMS(cout));
    snprintf(full, sizeof full, "%s.module.weight_v", name);
    l->v = buffer_new(ps, full, DT_REAL, 1, DIMS(cout));
    snprintf(full, sizeof full, "%s.module.weight_bar", name);
    l->w = param_new(ps, full, ndim, shape);
}

static void sn_init(BgSnLayer *l, Rng *rng) {
    init_default(l->w, l->bias, rng);
    spectral_norm_biggan_init_uv(l->u, l->v, rng);   /* _make_params: u, v = l2normalize(normal_(0, 1)) */
}

/* SpectralNorm._update_u_v: one power iteration from the stored u (never written back), every call. */
Tensor *bg_sn_weight(Ctx *c, BgSnLayer *l) { return t_spectral_norm_biggan(c, l->w, l->u); }

static void cbn_declare(CondBatchNorm *bn, ParamSet *ps, const char *name, int C, int cond_dim) {
    char full[384];
    layer_name(full, name, "bn");
    batch_norm_declare(&bn->bn, ps, full, C, 0);
    snprintf(full, sizeof full, "%s.gamma_embed", name);
    sn_declare(&bn->gamma, ps, full, 0, 2, DIMS(C, cond_dim));
    snprintf(full, sizeof full, "%s.beta_embed", name);
    sn_declare(&bn->beta, ps, full, 0, 2, DIMS(C, cond_dim));
}

static void cbn_init(CondBatchNorm *bn, Rng *rng) {
    batch_norm_init(&bn->bn);
    sn_init(&bn->gamma, rng);
    sn_init(&bn->beta, rng);
}

/* ConditionalBatchNorm2d.forward: bn(x) * (gamma_embed(y) + 1) + beta_embed(y).
 * x (N, C, H, W), cond (N, c) -> (N, C, H, W) */
Tensor *cond_batch_norm_forward(Ctx *c, CondBatchNorm *bn, Tensor *x, Tensor *cond) {
    int N = x->shape[0], C = x->shape[1];
    Tensor *h = batch_norm_apply(c, &bn->bn, x, (real)DEC_BN_EPS, (real)DEC_BN_MOMENTUM);
    Tensor *gamma = t_add_scalar(c, t_linear(c, cond, bg_sn_weight(c, &bn->gamma), NULL), 1);
    Tensor *beta = t_linear(c, cond, bg_sn_weight(c, &bn->beta), NULL);
    gamma = t_reshape(c, gamma, 4, DIMS(N, C, 1, 1));
    beta = t_reshape(c, beta, 4, DIMS(N, C, 1, 1));
    return t_add(c, t_mul(c, h, gamma), beta);
}

static void gblock_declare(GBlock *b, ParamSet *ps, const char *name, int cin, int cout, int cond_dim) {
    char full[320];
    b->cin = cin;
    b->cout = cout;
    snprintf(full, sizeof full, "%s.conv0", name);
    sn_declare(&b->conv0, ps, full, 1, 4, DIMS(cout, cin, 3, 3));
    snprintf(full, sizeof full, "%s.conv1", name);
    sn_declare(&b->conv1, ps, full, 1, 4, DIMS(cout, cout, 3, 3));
    snprintf(full, sizeof full, "%s.conv_sc", name);
    sn_declare(&b->conv_sc, ps, full, 1, 4, DIMS(cout, cin, 1, 1));
    snprintf(full, sizeof full, "%s.HyperBN", name);
    cbn_declare(&b->bn0, ps, full, cin, cond_dim);
    snprintf(full, sizeof full, "%s.HyperBN_1", name);
    cbn_declare(&b->bn1, ps, full, cout, cond_dim);
}

static void gblock_init(GBlock *b, Rng *rng) {
    sn_init(&b->conv0, rng);
    sn_init(&b->conv1, rng);
    sn_init(&b->conv_sc, rng);
    cbn_init(&b->bn0, rng);
    cbn_init(&b->bn1, rng);
}

/* GBlock.forward (bn, upsample, no downsample):
 *   out = conv1(relu(HyperBN_1(conv0(up(relu(HyperBN(x, c)))), c))) + conv_sc(up(x))
 * x (N, cin, H, W), cond (N, c) -> (N, cout, 2H, 2W); up = nearest x2 (F.interpolate(scale_factor=2)). */
Tensor *gblock_forward(Ctx *c, GBlock *b, Tensor *x, Tensor *cond) {
    Tensor *h = t_relu(c, cond_batch_norm_forward(c, &b->bn0, x, cond));
    h = t_upsample_nearest2d(c, h, DIMS(2, 2));
    h = t_conv2d(c, h, bg_sn_weight(c, &b->conv0), b->conv0.bias, DIMS(1, 1), DIMS(1, 1));
    h = t_relu(c, cond_batch_norm_forward(c, &b->bn1, h, cond));
    h = t_conv2d(c, h, bg_sn_weight(c, &b->conv1), b->conv1.bias, DIMS(1, 1), DIMS(1, 1));
    Tensor *skip = t_upsample_nearest2d(c, x, DIMS(2, 2));
    skip = t_conv2d(c, skip, bg_sn_weight(c, &b->conv_sc), b->conv_sc.bias, DIMS(1, 1), DIMS(0, 0));
    return t_add(c, h, skip);
}

static void attn_declare(SelfAttn *a, ParamSet *ps, const char *name, int C) {
    char full[320];
    a->C = C;
    snprintf(full, sizeof full, "%s.gamma", name);
    a->gamma = param_new(ps, full, 1, DIMS(1));
    snprintf(full, sizeof full, "%s.theta", name);
    sn_declare(&a->theta, ps, full, 0, 4, DIMS(C / 8, C, 1, 1));
    snprintf(full, sizeof full, "%s.phi", name);
    sn_declare(&a->phi, ps, full, 0, 4, DIMS(C / 8, C, 1, 1));
    snprintf(full, sizeof full, "%s.g", name);
    sn_declare(&a->g, ps, full, 0, 4, DIMS(C / 2, C, 1, 1));
    snprintf(full, sizeof full, "%s.o_conv", name);
    sn_declare(&a->o, ps, full, 0, 4, DIMS(C, C / 2, 1, 1));
}

/* SelfAttention.forward (SAGAN, with max-pooled keys and values), x (N, C, H, W), P = H W:
 *   theta (N, C/8, P), phi = pool(phi(x)) (N, C/8, P/4), attention = softmax(theta^T phi) (N, P, P/4),
 *   g = pool(g(x)) (N, C/2, P/4), attn_g = g attention^T (N, C/2, P) -> (N, C/2, H, W),
 *   out = gamma o_conv(attn_g) + x */
Tensor *self_attn_forward(Ctx *c, SelfAttn *a, Tensor *x) {
    int N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3], P = H * W;
    I2V_ASSERT(C == a->C && H % 2 == 0 && W % 2 == 0, "self-attention: input must be (N, %d, even H, even W)", a->C);
    Tensor *theta = t_conv2d(c, x, bg_sn_weight(c, &a->theta), NULL, DIMS(1, 1), DIMS(0, 0));
    Tensor *phi = t_conv2d(c, x, bg_sn_weight(c, &a->phi), NULL, DIMS(1, 1), DIMS(0, 0));
    phi = t_maxpool2d(c, phi, DIMS(2, 2), DIMS(2, 2), DIMS(0, 0));
    theta = t_reshape(c, theta, 3, DIMS(N, C / 8, P));
    phi = t_reshape(c, phi, 3, DIMS(N, C / 8, P / 4));
    Tensor *attention = t_softmax(c, t_bmm(c, theta, phi, 1, 0), 2);          /* (N, P, P/4) */
    Tensor *g = t_conv2d(c, x, bg_sn_weight(c, &a->g), NULL, DIMS(1, 1), DIMS(0, 0));
    g = t_reshape(c, t_maxpool2d(c, g, DIMS(2, 2), DIMS(2, 2), DIMS(0, 0)), 3, DIMS(N, C / 2, P / 4));
    Tensor *attn_g = t_reshape(c, t_bmm(c, g, attention, 0, 1), 4, DIMS(N, C / 2, H, W));
    Tensor *out = t_conv2d(c, attn_g, bg_sn_weight(c, &a->o), NULL, DIMS(1, 1), DIMS(0, 0));
    return t_add(c, t_mul(c, a->gamma, out), x);
}

/* ==================================================================================================== */
/* decoder: BigGANDecoderWrapper = ClassUp + VariableDimGenerator64/128                                   */
/* ==================================================================================================== */

void cond_decoder_declare(CondDecoder *dec, const CondAeNetConfig *config, const char *prefix) {
    memset(dec, 0, sizeof *dec);
    dec->cfg = *config;
    cond_ae_net_resolve(&dec->cfg);
    const CondAeNetConfig *cfg = &dec->cfg;
    I2V_ASSERT(cfg->n_dec_mults >= 1 && cfg->n_dec_mults <= CAE_MAX_GBLOCKS && cfg->dec_split >= 1,
               "conditioning decoder: no generator for in_size %d (cond_ae_config_check explains)", cfg->in_size);
    paramset_init(&dec->ps);
    ParamSet *ps = &dec->ps;
    const char *p = prefix ? prefix : "";
    char name[256];
    int Z = cfg->z_dim, Hc = cfg->class_hidden, K = cfg->n_class, E = cfg->class_emb, chn = cfg->dec_chn;
    /* map_to_class_embedding = ClassUp(Z, depth 2, hidden 2K', out K): main.0, .2, .4, .6 */
    const int din[4] = {Z, Hc, Hc, Hc}, dout[4] = {Hc, Hc, Hc, K};
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "%sdecoder.map_to_class_embedding.main.%d.weight", p, 2 * i);
        dec->class_w[i] = param_new(ps, name, 2, DIMS(dout[i], din[i]));
        snprintf(name, sizeof name, "%sdecoder.map_to_class_embedding.main.%d.bias", p, 2 * i);
        dec->class_b[i] = param_new(ps, name, 1, DIMS(dout[i]));
    }
    /* the generator: linear, G_linear, GBlock, attention, ScaledCrossReplicaBN, colorize */
    snprintf(name, sizeof name, "%sdecoder.decoder.linear.weight", p);
    dec->linear = param_new(ps, name, 2, DIMS(E, K));
    dec->nblocks = cfg->n_dec_mults;
    dec->split[0] = Z - dec->nblocks * cfg->dec_split;
    for (int i = 1; i <= dec->nblocks; i++) dec->split[i] = cfg->dec_split;
    int first_view = cfg->dec_mults[0] * chn;
    snprintf(name, sizeof name, "%sdecoder.decoder.G_linear", p);
    sn_declare(&dec->g_linear, ps, name, 1, 2, DIMS(4 * 4 * first_view, dec->split[0]));
    int cond_dim = cfg->dec_split + E, cin = first_view;
    for (int i = 0; i < dec->nblocks; i++) {
        int cout = cfg->dec_mults[i] * chn;
        snprintf(name, sizeof name, "%sdecoder.decoder.GBlock.%d", p, i);
        gblock_declare(&dec->blocks[i], ps, name, cin, cout, cond_dim);
        cin = cout;
    }
    snprintf(name, sizeof name, "%sdecoder.decoder.attention", p);
    attn_declare(&dec->attn, ps, name, 2 * chn);
    snprintf(name, sizeof name, "%sdecoder.decoder.ScaledCrossReplicaBN", p);
    batch_norm_declare(&dec->bn, ps, name, cin, 1);
    snprintf(name, sizeof name, "%sdecoder.decoder.colorize", p);
    sn_declare(&dec->colorize, ps, name, 1, 4, DIMS(3, cin, 3, 3));
}

void cond_decoder_init(CondDecoder *dec, Rng *rng) {
    paramset_alloc(&dec->ps);
    for (int i = 0; i < 4; i++) init_default(dec->class_w[i], dec->class_b[i], rng);
    init_default(dec->linear, NULL, rng);
    sn_init(&dec->g_linear, rng);
    for (int i = 0; i < dec->nblocks; i++) gblock_init(&dec->blocks[i], rng);
    tensor_fill(dec->attn.gamma, 0);
    sn_init(&dec->attn.theta, rng);
    sn_init(&dec->attn.phi, rng);
    sn_init(&dec->attn.g, rng);
    sn_init(&dec->attn.o, rng);
    batch_norm_init(&dec->bn);
    sn_init(&dec->colorize, rng);
}

void cond_decoder_build(CondDecoder *dec, const CondAeNetConfig *cfg, const char *prefix, Rng *rng) {
    cond_decoder_declare(dec, cfg, prefix);
    cond_decoder_init(dec, rng);
}

void cond_decoder_free(CondDecoder *dec) {
    paramset_free(&dec->ps);
    memset(dec, 0, sizeof *dec);
}

/* ClassUp.forward: softmax(MLP(z)) over the K classes. z (N, Z) -> (N, K) */
static Tensor *class_up(Ctx *c, CondDecoder *dec, Tensor *z) {
    Tensor *h = z;
    for (int i = 0; i < 4; i++) {
        h = t_linear(c, h, dec->class_w[i], dec->class_b[i]);
        if (i < 3) h = t_leaky_relu(c, h, (real)CLASSUP_SLOPE);
    }
    return t_softmax(c, h, 1);
}

/* BigGANDecoderWrapper.forward(z) = decoder(z, map_to_class_embedding(z)) with VariableDimGenerator.forward */
Tensor *cond_decoder_forward(Ctx *c, CondDecoder *dec, Tensor *z) {
    const CondAeNetConfig *cfg = &dec->cfg;
    int N = z->shape[0], first_view = cfg->dec_mults[0] * cfg->dec_chn;
    I2V_ASSERT(z->ndim == 2 && z->shape[1] == cfg->z_dim, "conditioning decoder: z must be (N, %d)", cfg->z_dim);
    Tensor *class_emb = t_linear(c, class_up(c, dec, z), dec->linear, NULL);        /* (N, E) */
    Tensor *codes[CAE_MAX_GBLOCKS + 1];
    t_split(c, z, 1, dec->nblocks + 1, dec->split, codes);
    /* G_linear, then out.view(-1, 4, 4, 16 chn).permute(0, 3, 1, 2): a channel-last reshape */
    Tensor *h = t_linear(c, codes[0], bg_sn_weight(c, &dec->g_linear), dec->g_linear.bias);
    h = t_permute(c, t_reshape(c, h, 4, DIMS(N, 4, 4, first_view)), DIMS(0, 3, 1, 2));
    for (int i = 0; i < dec->nblocks; i++) {
        if (i == cfg->dec_attn_index) h = self_attn_forward(c, &dec->attn, h);
        Tensor *parts[2] = {codes[i + 1], class_emb};
        h = gblock_forward(c, &dec->blocks[i], h, t_concat(c, 2, parts, 1));
    }
    h = batch_norm_apply(c, &dec->bn, h, (real)DEC_BN_EPS, (real)DEC_BN_MOMENTUM);
    h = t_conv2d(c, t_relu(c, h), bg_sn_weight(c, &dec->colorize), dec->colorize.bias, DIMS(1, 1), DIMS(1, 1));
    return t_tanh(c, h);
}

/* ==================================================================================================== */
/* training: AE/modules/loss.py Loss.forward, AE/main.py                                                  */
/* ==================================================================================================== */

#define LAMBDA_EPS 1e-4   /* calculate_adaptive_weight: |g_nll| / (|g_g| + 1e-4) */
#define LAMBDA_MAX 1e4    /* torch.clamp(d_weight, 0.0, 1e4) */

int cond_ae_init(CondAe *s, const CondAeConfig *cfg, const char *lpips_path, uint64_t seed, I2vError *e) {
    if (cond_ae_config_check(cfg, e)) return -1;
    memset(s, 0, sizeof *s);
    s->cfg = *cfg;
    if (cfg->Training.perceptual) {
        if (lpips_open(&s->lpips, lpips_path, e)) return -1;
        s->has_lpips = 1;
    }
    Rng init;
    rng_seed(&init, seed);
    cond_encoder_build(&s->enc, &cfg->AE, NULL, &init);
    cond_decoder_build(&s->dec, &cfg->AE, NULL, &init);
    patchgan_build(&s->disc, &cfg->Discriminator_Patch, NULL, &init);
    rng_seed(&s->rng_dropout, seed ^ 0x6c70697073ULL);
    /* torch.optim.Adam(network.parameters(), lr, weight_decay): betas (0.9, 0.999), eps 1e-8 */
    const CondAeTrainingConfig *t = &cfg->Training;
    adam_init(&s->opt_ae, t->lr, 0.9, 0.999, 1e-8, t->weight_decay, 0);
    adam_add_params(&s->opt_ae, &s->enc.ps);
    adam_add_params(&s->opt_ae, &s->dec.ps);
    adam_init(&s->opt_d, t->lr, 0.9, 0.999, 1e-8, t->weight_decay, 0);
    adam_add_params(&s->opt_d, &s->disc.ps);
    /* ReduceLROnPlateau(mode='min', factor=0.5, patience=1, min_lr=1e-8, threshold=1e-4, threshold_mode='abs') */
    plateau_init(&s->sched_ae, 0, 0.5, 1, 1e-4, 1, 0, 1e-8);
    plateau_init(&s->sched_d, 0, 0.5, 1, 1e-4, 1, 0, 1e-8);
    ctx_init(&s->ctx);
    s->lambda_in_warmup = 1;
    return 0;
}

void cond_ae_free(CondAe *s) {
    ctx_free(&s->ctx);
    adam_free(&s->opt_ae);
    adam_free(&s->opt_d);
    cond_encoder_free(&s->enc);
    cond_decoder_free(&s->dec);
    patchgan_free(&s->disc);
    if (s->has_lpips) lpips_free(&s->lpips);
    memset(s, 0, sizeof *s);
}

static double l2_norm(const Tensor *t) {
    double s = 0;
    for (size_t i = 0; i < t->numel; i++) s += (double)t->data[i] * t->data[i];
    return sqrt(s);
}

static double value(const Tensor *t) { return t->data[0]; }

/* Loss.forward on one batch. training: the update step (network.train(), gradients, both optimisers);
 * otherwise the validator's call (network.eval(), torch.no_grad(), no updates). In a dry run (ctx.dry) the
 * same graph is built without arithmetic, updates or statistics, to size the arena. */
static void ae_step(CondAe *s, const Tensor *xin, int epoch, int training, CondAeStats *st, Tensor *recon) {
    Ctx *c = &s->ctx;
    const CondAeConfig *cfg = &s->cfg;
    int N = xin->shape[0], S = cfg->AE.in_size, Z = cfg->AE.z_dim;
    I2V_ASSERT(xin->ndim == 4 && xin->shape[1] == 3 && xin->shape[2] == S && xin->shape[3] == S,
               "conditioning AE: batch must be (N, 3, %d, %d)", S, S);
    double disc_factor = epoch < cfg->Training.pretrain ? 0 : 1;   /* adopt_weight(1, epoch, pretrain) */
    c->grad_enabled = training;
    Tensor *x = tensor_from_host(c, 4, xin->shape, xin->data);

    /* 1. x^ = decode(encode(x).mode()): the posterior mean is decoded, nothing is sampled */
    c->training = training;
    Tensor *mean, *logvar;
    cond_posterior(c, cond_encoder_forward(c, &s->enc, x), &mean, &logvar);
    Tensor *xr = cond_decoder_forward(c, &s->dec, t_reshape(c, mean, 2, DIMS(N, Z)));   /* (N, 3, S, S) */

    /* 2. rec = |x - x^| + LPIPS(x, x^) broadcast over (3, S, S); the Loss module (LPIPS with its dropout)
     *    and the PatchGAN are never switched to eval mode */
    c->training = 1;
    Tensor *rec = t_abs(c, t_sub(c, x, xr));
    Tensor *p = NULL;
    if (s->has_lpips) {
        p = lpips_forward(c, &s->lpips, x, xr, &s->rng_dropout);   /* (N, 1, 1, 1) */
        rec = t_add(c, rec, p);
    }
    /* 3. KL of the posterior (0 when deterministic) */
    Tensor *kl = cfg->AE.deterministic ? tensor_zeros(c, 0, NULL) : t_kl_normal(c, mean, logvar);
    /* 4. nll = sum(rec / exp(logvar) + logvar) / N with the loss's logvar = 0 (in no optimiser) */
    Tensor *nll = t_scale(c, t_sum_all(c, rec), (real)(1.0 / N));
    /* 5. generator hinge loss */
    Tensor *g = t_hinge_g(c, patchgan_forward(c, &s->disc, xr));
    /* 6. adaptive weight with W = the last parameter of BigAE, colorize.module.weight_bar; the validator's
     *    autograd.grad fails under no_grad and the official code then uses 0 */
    double lambda = 0;
    if (training && (disc_factor > 0 || s->lambda_in_warmup)) {
        Tensor *W = s->dec.colorize.w, *g_nll, *g_g;
        grad_of(c, nll, 1, &W, &g_nll);
        grad_of(c, g, 1, &W, &g_g);
        if (!c->dry) {
            ctx_sync(c);   /* the two gradients are read on the host */
            lambda = l2_norm(g_nll) / (l2_norm(g_g) + LAMBDA_EPS);
            lambda = lambda < 0 ? 0 : lambda > LAMBDA_MAX ? LAMBDA_MAX : lambda;
        }
    }
    /* 7. loss = nll + w_kl KL + lambda disc_factor g; the last term is skipped while disc_factor = 0, where its
     *    gradient is exactly zero */
    Tensor *loss = t_add(c, nll, t_scale(c, kl, (real)cfg->Training.w_kl));
    if (disc_factor > 0) loss = t_add(c, loss, t_scale(c, g, (real)(lambda * disc_factor)));
    if (training) {
        paramset_zero_grad(&s->enc.ps);
        paramset_zero_grad(&s->dec.ps);
        backward(c, loss);
        if (!c->dry) adam_step(&s->opt_ae);
    }
    /* 8. discriminator on x and x^ detached; d_loss = disc_factor * hinge; a step only when d_loss > 0 */
    Tensor *logits_real = patchgan_forward(c, &s->disc, x);
    Tensor *logits_fake = patchgan_forward(c, &s->disc, t_detach(c, xr));
    Tensor *hinge = t_scale(c, t_add(c, t_hinge_d_real(c, logits_real), t_hinge_d_fake(c, logits_fake)), 0.5);
    Tensor *d_loss = t_scale(c, hinge, (real)disc_factor);
    if (!c->dry) ctx_sync(c);   /* d_loss decides on the host whether the discriminator steps */
    int d_step = training && (c->dry ? disc_factor > 0 : value(d_loss) > 0);
    if (d_step) {
        paramset_zero_grad(&s->disc.ps);
        backward(c, d_loss);
        if (!c->dry) adam_step(&s->opt_d);
    }
    if (c->dry) return;
    ctx_sync(c);   /* the statistics are read on the host */
    if (st) {
        memset(st, 0, sizeof *st);
        st->loss = value(loss);
        st->loss_nll = value(nll);
        st->loss_recon = st->loss_nll / (3.0 * S * S);   /* rec.mean() = sum(rec) / (N 3 S S) */
        st->logvar = 0;
        st->kl = value(kl);
        st->loss_g = value(g);
        st->disc = value(d_loss);
        double sr = 0, sf = 0;
        for (size_t i = 0; i < logits_real->numel; i++) sr += logits_real->data[i];
        for (size_t i = 0; i < logits_fake->numel; i++) sf += logits_fake->data[i];
        st->logits_real = sr / (double)logits_real->numel;
        st->logits_fake = sf / (double)logits_fake->numel;
        st->disc_weight = lambda;
        st->disc_factor = disc_factor;
        if (p)
            for (int i = 0; i < N; i++) st->lpips += p->data[i] / N;
        double se = 0;
        for (size_t i = 0; i < x->numel; i++) se += ((double)x->data[i] - xr->data[i]) * (x->data[i] - xr->data[i]);
        st->psnr = 10 * log10(4.0 / (se / (double)x->numel + 1e-20));
    }
    if (recon) {
        I2V_ASSERT(recon->numel == xr->numel, "conditioning AE: recon must be (N, 3, %d, %d)", S, S);
        tensor_to_host(xr, recon->data);
    }
}

/* A dry run of the training step sizes the arena before the first real step with this batch size, so the
 * steps that follow allocate nothing. */
static void size_arena(CondAe *s, const Tensor *x, int epoch) {
    if (s->sized_n == x->shape[0]) return;
    ctx_reset(&s->ctx);
    s->ctx.dry = 1;
    ae_step(s, x, epoch < s->cfg.Training.pretrain ? s->cfg.Training.pretrain : epoch, 1, NULL, NULL);
    s->arena_bytes = ctx_dry_finish(&s->ctx);
    s->sized_n = x->shape[0];
}

size_t cond_ae_plan_step(CondAe *s, const Tensor *x) {
    size_arena(s, x, 0);
    return s->arena_bytes + s->ctx.peak_scratch;
}

void cond_ae_train_step(CondAe *s, const Tensor *x, int epoch, CondAeStats *st, Tensor *recon) {
    size_arena(s, x, epoch);
    ae_step(s, x, epoch, 1, st, recon);
    ctx_reset(&s->ctx);
}

void cond_ae_eval_step(CondAe *s, const Tensor *x, int epoch, CondAeStats *st, Tensor *recon) {
    ae_step(s, x, epoch, 0, st, recon);
    ctx_reset(&s->ctx);
    s->ctx.grad_enabled = 1;
}

void cond_ae_end_epoch(CondAe *s, double last_loss_recon) {
    plateau_step(&s->sched_ae, &s->opt_ae, last_loss_recon);
    plateau_step(&s->sched_d, &s->opt_d, last_loss_recon);
}
