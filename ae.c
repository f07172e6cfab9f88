/* ae.c: stage 1 of "Stochastic Image-to-Video Synthesis using cINNs" (Dorkenwald et al., CVPR 2021,
 * section 3.1): a video autoencoder q(z | x1..xT), p(x1..xT | x0, z) trained as a VAE-GAN.
 *
 * What it is, top to bottom: the stage-1 configs; the convolutions the 3-D networks build on (the shared
 * layers of networks/layers.h, and spectral norm on the output side); the 3-D ResNet BasicBlock with its
 * forward-mode tangent; the video encoder (resnet3D.py Encoder); the generator (decoder.py Generator: SPADE
 * on the start frame, AdaIN on z); the temporal discriminator (resnet3D.py Discriminator) with its tangent
 * and the gradient penalty; then one training step of stage 1 in the order of loss.py Backward.
 * What it is not: the PatchGAN (networks/patchgan.c), LPIPS (networks/lpips.c), data loading or the epoch
 * loop (program/).
 *
 * Every forward is written with the op layer's recorded ops, so the backward passes come from the tape.
 * Two of those ops exist to keep large tensors out of memory: SPADE's and AdaIN's modulation fused with
 * the LeakyReLU after it (t_norm_modulate_lrelu), and spectral norm's sigma for layers that divide their
 * output rather than their weight (t_spectral_norm_sigma). Names of parameters and buffers are the
 * official state_dict keys of resnet3D.py's Encoder and Discriminator and decoder.py's Generator.
 * Dimension legend: N batch, C channels, T frames, H height, W width, Z = z_dim, K = Cin kT kH kW.
 */
#include "ae.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "networks/layers.h"
#include "ops/conv.h"
#include "ops/init.h"
#include "ops/norm.h"

#define GN_EPS ((real)1e-5)
#define LRELU_SLOPE ((real)0.2)

/* ==================================================================================================== */
/* 1. configs (stage1_VAE/configs/<name>_config.yaml)                                                   */
/* ==================================================================================================== */

static void set_list(int *dst, int *count, int n, const int *values) {
    for (int i = 0; i < n; i++) dst[i] = values[i];
    *count = n;
}

/* bair_config.yaml: every other config is this one with a few keys changed. */
Stage1Config stage1_config_bair(void) {
    Stage1Config c;
    memset(&c, 0, sizeof c);
    EncoderConfig *e = &c.Encoder;
    snprintf(e->res_type_encoder, sizeof e->res_type_encoder, "resnet18");
    e->deterministic = 0;
    e->use_max_pool = 0;
    e->z_dim = 64;
    set_list(e->channels, &e->n_channels, 5, (const int[]){64, 128, 256, 512, 512});
    set_list(e->stride_t, &e->n_stride_t, 4, (const int[]){1, 2, 2, 2});
    set_list(e->stride_s, &e->n_stride_s, 4, (const int[]){1, 2, 2, 2});
    e->norm_groups = 16;

    DecoderConfig *d = &c.Decoder;
    d->channel_factor = 64;
    d->z_dim = 64;
    set_list(d->upsample_s, &d->n_upsample_s, 2, (const int[]){2, 1});
    set_list(d->upsample_t, &d->n_upsample_t, 2, (const int[]){2, 1});
    d->spectral_norm = 1;
    d->norm_groups = 16;
    d->spade_hidden = 128;

    DiscTConfig *t = &c.Discriminator_Temporal;
    t->eval_seq_length = 16;
    snprintf(t->res_type_encoder, sizeof t->res_type_encoder, "resnet18");
    t->deterministic = 0;
    t->use_max_pool = 1;
    set_list(t->channels, &t->n_channels, 5, (const int[]){64, 64, 128, 256, 512});
    set_list(t->stride_t, &t->n_stride_t, 4, (const int[]){2, 2, 2, 2});
    set_list(t->stride_s, &t->n_stride_s, 4, (const int[]){1, 1, 2, 2});
    t->spectral_norm = 1;
    t->norm_groups = 16;

    c.Discriminator_Patch = patchgan_config_default();

    TrainingConfig *r = &c.Training;
    snprintf(r->patch_GAN, sizeof r->patch_GAN, "basic");
    snprintf(r->GAN_Loss, sizeof r->GAN_Loss, "hinge");
    r->w_coup_s = 1;
    r->w_coup_t = 1;
    r->w_fmap_t = 10;
    r->w_percep = 30;
    r->w_recon = 10;
    r->w_GP = 10;
    r->w_kl = 1e-5;
    r->subsample_length = 12;
    r->pretrain = 1;
    r->disc_in_warmup = 1;
    r->n_epochs = 55;
    r->lr = 2e-4;
    r->workers = 20;
    r->bs = 10;
    r->bs_eval = 10;
    r->verbose_idx = 30;
    r->weight_decay = 1e-5;
    r->lr_gamma = 0.98;
    snprintf(r->FVD, sizeof r->FVD, "FVD");

    c.Data.sequence_length = 17;
    c.Data.img_size = 64;
    snprintf(c.Data.dataset, sizeof c.Data.dataset, "BAIR");
    return c;
}

/* iPER_config.yaml */
Stage1Config stage1_config_iper(void) {
    Stage1Config c = stage1_config_bair();
    c.Training.w_percep = 40;
    c.Training.w_kl = 1e-4;
    c.Training.n_epochs = 100;
    snprintf(c.Data.dataset, sizeof c.Data.dataset, "iPER");
    return c;
}

/* The 128-px architecture of landscape_config.yaml and the DTDB configs. */
static Stage1Config config_128px(void) {
    Stage1Config c = stage1_config_bair();
    c.Decoder.channel_factor = 32;
    set_list(c.Decoder.upsample_s, &c.Decoder.n_upsample_s, 2, (const int[]){2, 2});
    set_list(c.Encoder.stride_s, &c.Encoder.n_stride_s, 4, (const int[]){2, 2, 2, 2});
    set_list(c.Discriminator_Temporal.stride_s, &c.Discriminator_Temporal.n_stride_s, 4, (const int[]){1, 2, 2, 2});
    c.Training.w_kl = 1e-6;
    c.Training.bs = 7;
    snprintf(c.Training.FVD, sizeof c.Training.FVD, "DTFVD");
    c.Data.img_size = 128;
    return c;
}

/* landscape_config.yaml */
Stage1Config stage1_config_landscape(void) {
    Stage1Config c = config_128px();
    set_list(c.Encoder.channels, &c.Encoder.n_channels, 5, (const int[]){64, 128, 128, 256, 512});
    c.Training.w_recon = 20;
    c.Training.n_epochs = 100;
    c.Training.workers = 14;
    snprintf(c.Data.dataset, sizeof c.Data.dataset, "landscape");
    return c;
}

/* DTDB_<texture>_config.yaml (the four differ only in their Data section) */
Stage1Config stage1_config_dtdb(const char *texture) {
    (void)texture;
    Stage1Config c = config_128px();
    set_list(c.Encoder.channels, &c.Encoder.n_channels, 5, (const int[]){64, 64, 128, 256, 512});
    c.Training.n_epochs = 60;
    c.Training.workers = 12;
    snprintf(c.Data.dataset, sizeof c.Data.dataset, "DTDB");
    return c;
}

/* 8 frames of 32x32: the generator's upsampling before g_3 and g_4 is switched off (8 = 1 2 2 2 frames,
 * 32 = 4 2 2 2 pixels); the encoder's stem halves T and H, stages 1 and 2 halve them again, so T 8 -> 4 ->
 * 4 -> 2 -> 1 -> 1 and H 32 -> 16 -> 16 -> 8 -> 4 -> 4 reach the 4x4 heads; the temporal discriminator sees
 * all 8 frames (fewer than 16: no window), T 8 -> 4 -> 2 -> 1 -> 1, H 32 -> 16 (stem) -> 8 (max pool) ->
 * 8 -> 8 -> 8 -> 4. */
Stage1Config stage1_config_small(void) {
    Stage1Config c = stage1_config_bair();
    c.Decoder.channel_factor = 16;
    set_list(c.Decoder.upsample_s, &c.Decoder.n_upsample_s, 2, (const int[]){1, 1});
    set_list(c.Decoder.upsample_t, &c.Decoder.n_upsample_t, 2, (const int[]){1, 1});
    set_list(c.Encoder.channels, &c.Encoder.n_channels, 5, (const int[]){16, 32, 64, 64, 64});
    set_list(c.Encoder.stride_t, &c.Encoder.n_stride_t, 4, (const int[]){1, 2, 2, 1});
    set_list(c.Encoder.stride_s, &c.Encoder.n_stride_s, 4, (const int[]){1, 2, 2, 1});
    set_list(c.Discriminator_Temporal.channels, &c.Discriminator_Temporal.n_channels, 5,
             (const int[]){16, 16, 32, 64, 64});
    set_list(c.Discriminator_Temporal.stride_s, &c.Discriminator_Temporal.n_stride_s, 4, (const int[]){1, 1, 1, 2});
    c.Discriminator_Patch.ndf = 16;
    c.Training.w_percep = 0;
    c.Training.bs = 4;
    c.Training.bs_eval = 4;
    c.Training.workers = 2;
    c.Data.sequence_length = 9;
    c.Data.img_size = 32;
    snprintf(c.Data.dataset, sizeof c.Data.dataset, "synthetic");
    return c;
}

/* The small config at narrow widths with 4 GroupNorm groups (generator nf 4, encoder 16 channels). */
Stage1Config stage1_config_tiny(void) {
    Stage1Config c = stage1_config_small();
    c.Decoder.channel_factor = 4;
    c.Decoder.norm_groups = 4;
    c.Decoder.spade_hidden = 16;
    c.Decoder.z_dim = 16;
    c.Encoder.z_dim = 16;
    set_list(c.Encoder.channels, &c.Encoder.n_channels, 5, (const int[]){16, 16, 16, 16, 16});
    c.Encoder.norm_groups = 4;
    set_list(c.Discriminator_Temporal.channels, &c.Discriminator_Temporal.n_channels, 5,
             (const int[]){8, 8, 8, 16, 16});
    c.Discriminator_Temporal.norm_groups = 4;
    c.Discriminator_Patch.ndf = 8;
    return c;
}

int stage1_config_named(const char *name, Stage1Config *out, I2vError *e) {
    static const char *dtdb[] = {"clouds", "fire", "vegetation", "waterfall"};
    if (!strcmp(name, "bair")) *out = stage1_config_bair();
    else if (!strcmp(name, "iper")) *out = stage1_config_iper();
    else if (!strcmp(name, "landscape")) *out = stage1_config_landscape();
    else if (!strcmp(name, "small")) *out = stage1_config_small();
    else if (!strcmp(name, "tiny")) *out = stage1_config_tiny();
    else {
        for (int i = 0; i < 4; i++)
            if (!strncmp(name, "dtdb_", 5) && !strcmp(name + 5, dtdb[i])) {
                *out = stage1_config_dtdb(dtdb[i]);
                return 0;
            }
        return err_set(e, "stage-1 config '%s' is unknown; expected one of bair, iper, landscape, dtdb_clouds, "
                          "dtdb_fire, dtdb_vegetation, dtdb_waterfall, small, tiny", name);
    }
    return 0;
}

int decoder_frames(const DecoderConfig *d) { return 8 * d->upsample_t[0] * d->upsample_t[1]; }
int decoder_size(const DecoderConfig *d) { return 32 * d->upsample_s[0] * d->upsample_s[1]; }

/* conv/pool output size: floor((in + 2p - k) / s) + 1 */
static int out_size(int in, int k, int s, int p) { return (in + 2 * p - k) / s + 1; }

static int check_resnet_section(const char *section, const char *type, const int *ch, int nch, const int *st, int nst,
                                const int *ss, int nss, int groups, I2vError *e) {
    if (strcmp(type, "resnet18"))
        return err_set(e, "%s.res_type_encoder is '%s'; i2v implements 'resnet18' (the only type the official "
                          "configs use)", section, type);
    if (nch != AE_STAGES + 1 || nst != AE_STAGES || nss != AE_STAGES)
        return err_set(e, "%s: channels needs 5 numbers and stride_t, stride_s 4 each (got %d, %d, %d)", section, nch,
                       nst, nss);
    if (groups < 1) return err_set(e, "%s: GroupNorm groups must be positive", section);
    for (int i = 0; i < nch; i++)
        if (ch[i] < 1 || ch[i] % groups)
            return err_set(e, "%s.channels[%d] = %d must be a positive multiple of %d (GroupNorm groups)", section, i,
                           ch[i], groups);
    for (int i = 0; i < AE_STAGES; i++)
        if (st[i] < 1 || ss[i] < 1) return err_set(e, "%s: strides must be positive (stage %d)", section, i);
    return 0;
}

int stage1_config_check(const Stage1Config *cfg, I2vError *e) {
    const EncoderConfig *en = &cfg->Encoder;
    const DecoderConfig *de = &cfg->Decoder;
    const DiscTConfig *dt = &cfg->Discriminator_Temporal;
    if (check_resnet_section("Encoder", en->res_type_encoder, en->channels, en->n_channels, en->stride_t,
                             en->n_stride_t, en->stride_s, en->n_stride_s, en->norm_groups, e))
        return -1;
    if (check_resnet_section("Discriminator_Temporal", dt->res_type_encoder, dt->channels, dt->n_channels, dt->stride_t,
                             dt->n_stride_t, dt->stride_s, dt->n_stride_s, dt->norm_groups, e))
        return -1;
    if (de->n_upsample_s != 2 || de->n_upsample_t != 2)
        return err_set(e, "Decoder.upsample_s and upsample_t need 2 numbers each (got %d and %d)", de->n_upsample_s,
                       de->n_upsample_t);
    if (de->channel_factor < 1 || de->norm_groups < 1 || de->spade_hidden < 1)
        return err_set(e, "Decoder.channel_factor must be positive (got %d)", de->channel_factor);
    if ((2 * de->channel_factor) % de->norm_groups)
        return err_set(e, "Decoder.channel_factor %d: 2 * channel_factor must be a multiple of %d (the GroupNorm of "
                          "g_4's shortcut)", de->channel_factor, de->norm_groups);
    for (int i = 0; i < 2; i++)
        if (de->upsample_s[i] < 1 || de->upsample_t[i] < 1)
            return err_set(e, "Decoder.upsample_s/upsample_t must be positive");
    if (de->z_dim != en->z_dim)
        return err_set(e, "Decoder.z_dim (%d) must equal Encoder.z_dim (%d)", de->z_dim, en->z_dim);
    int T = cfg->Data.sequence_length - 1, S = cfg->Data.img_size;
    if (decoder_frames(de) != T || decoder_size(de) != S)
        return err_set(e, "the generator makes %d frames of %dx%d (8 upsample_t[0] upsample_t[1], 32 upsample_s[0] "
                          "upsample_s[1]) but Data asks for sequence_length - 1 = %d frames of img_size %d",
                       decoder_frames(de), decoder_size(de), decoder_size(de), T, S);
    /* encoder geometry */
    int t = out_size(T, 3, 2, 1), h = out_size(S, 7, 2, 3);
    if (en->use_max_pool) {
        t = out_size(t, 3, 1, 1);
        h = out_size(h, 3, 2, 1);
    }
    for (int i = 0; i < AE_STAGES; i++) {
        int in = en->channels[i], out = en->channels[i + 1];
        int shortcut = en->stride_s[i] != 1 || in != out;
        if (!shortcut && en->stride_t[i] != 1)
            return err_set(e, "Encoder stage %d: stride_t %d with stride_s 1 and equal widths has no shortcut in the "
                              "official encoder (its rule ignores stride_t), so the residual shapes would not match",
                           i, en->stride_t[i]);
        t = out_size(t, 3, en->stride_t[i], 1);
        h = out_size(h, 3, en->stride_s[i], 1);
    }
    if (t != 1 || h != 4)
        return err_set(e, "Encoder: %d frames of %dx%d end as %d frames of %dx%d; the heads need 1 frame of 4x4 "
                          "(check Encoder.stride_t / stride_s)", T, S, S, t, h, h);
    /* temporal discriminator geometry, on its window */
    int tw = T >= 16 ? cfg->Training.subsample_length : T;
    if (T >= 16 && (tw < 1 || tw > T))
        return err_set(e, "Training.subsample_length %d must be in 1..%d", tw, T);
    t = tw;
    h = out_size(S, 7, 2, 3);
    if (dt->use_max_pool) h = out_size(h, 3, 2, 1);
    for (int i = 0; i < AE_STAGES; i++) {
        t = out_size(t, 3, dt->stride_t[i], 1);
        h = out_size(h, 3, dt->stride_s[i], 1);
    }
    if (t != 1 || h != 4)
        return err_set(e, "Discriminator_Temporal: a window of %d frames of %dx%d ends as %d frames of %dx%d; its "
                          "average pool and fc need 1 frame of 4x4 (check stride_t / stride_s)", tw, S, S, t, h, h);
    if (cfg->Training.pretrain < 0 || cfg->Training.lr <= 0 || cfg->Training.lr_gamma <= 0)
        return err_set(e, "Training: pretrain must be >= 0, lr and lr_gamma positive");
    return 0;
}

/* ==================================================================================================== */
/* 2. convolutions: the shared layers, and spectral norm on the output side                             */
/* ==================================================================================================== */

/* Conv3d kernel 3x3x3, padding 1, strides (t, s, s) (resnet3D.py conv3x3x3 and the shortcut convs). */
static void conv333_declare(Conv *l, ParamSet *ps, const char *prefix, int cout, int cin, int stride_t,
                            int stride_s, int bias, int spectral) {
    conv_declare(l, ps, prefix, cout, cin, 3, (const int[]){3, 3, 3}, (const int[]){stride_t, stride_s, stride_s},
                 (const int[]){1, 1, 1}, bias, spectral);
}

static Tensor *norm_apply(Ctx *c, const GroupNorm *n, Tensor *x) { return group_norm_apply(c, n, x, GN_EPS); }

/* ---- spectral norm applied on the output side ------------------------------------------------------------
 * conv(x, weight_orig / sigma) + b = conv(x, weight_orig) / sigma + b. For a layer whose weight is larger than
 * its output (the generator's 1024-channel convolutions at 4x4 to 16x16) dividing the output stores neither the
 * normalised copy of the weight nor its gradient (about 900 MB at the BAIR config), and the gradient is the
 * same: with y = conv(x, weight_orig), d/dW of L(y / sigma) is conv_dW(x, dy) / sigma - (dy . y) / sigma^2 u v^T,
 * which is spectral_norm_backward applied to the weight gradient conv_dW(x, dy) (bilinearity of conv). */

/* A 3-D convolution with its spectral norm (if any) on the weight or on the output side, whichever stores
 * less: x (N, Cin, T, H, W) -> (N, Cout, T', H', W'). */
static Tensor *sn_conv3d(Ctx *c, Conv *l, Tensor *x, int with_bias) {
    if (!l->u) return conv_apply(c, l, l->weight, x, with_bias);
    size_t out = (size_t)x->shape[0] * (size_t)l->weight->shape[0];
    for (int a = 0; a < 3; a++)
        out *= (size_t)out_size(x->shape[2 + a], l->weight->shape[2 + a], l->stride[a], l->pad[a]);
    if (out >= l->weight->numel) return conv_apply(c, l, conv_weight(c, l), x, with_bias);
    Tensor *y = t_div(c, conv_apply(c, l, l->weight, x, 0), t_spectral_norm_sigma(c, l->weight, l->u, l->v));
    if (with_bias && l->bias) y = t_add(c, y, t_reshape(c, l->bias, 4, DIMS(l->bias->shape[0], 1, 1, 1)));
    return y;
}

/* ==================================================================================================== */
/* 3. BasicBlock (resnet3D.py) and its tangent                                                           */
/* ==================================================================================================== */

void basic_block_declare(BasicBlock *b, ParamSet *ps, const char *prefix, int in, int out, int stride_s,
                         int stride_t, int has_down, int spectral, int down_spectral, int groups) {
    char name[LAYER_NAME_MAX];
    memset(b, 0, sizeof *b);
    b->in = in;
    b->out = out;
    layer_name(name, prefix, "conv1");
    conv333_declare(&b->conv1, ps, name, out, in, stride_t, stride_s, 0, spectral);
    layer_name(name, prefix, "bn1");
    group_norm_declare(&b->bn1, ps, name, out, groups);
    layer_name(name, prefix, "conv2");
    conv333_declare(&b->conv2, ps, name, out, out, 1, 1, 0, spectral);
    layer_name(name, prefix, "bn2");
    group_norm_declare(&b->bn2, ps, name, out, groups);
    b->has_down = has_down;
    if (has_down) {
        layer_name(name, prefix, "downsample.0");
        conv333_declare(&b->down, ps, name, out, in, stride_t, stride_s, 0, down_spectral);
        layer_name(name, prefix, "downsample.1");
        group_norm_declare(&b->down_norm, ps, name, out, groups);
    }
}

/* resnet3D.py BasicBlock.forward: relu(bn2(conv2(relu(bn1(conv1(x))))) + residual) */
Tensor *basic_block_forward(Ctx *c, BasicBlock *b, Tensor *x, BlockTrace *tr) {
    BlockTrace t;
    memset(&t, 0, sizeof t);
    t.W1 = conv_weight(c, &b->conv1);
    t.a1 = conv_apply(c, &b->conv1, t.W1, x, 0);
    t.n1 = norm_apply(c, &b->bn1, t.a1);
    Tensor *r1 = t_relu(c, t.n1);
    t.W2 = conv_weight(c, &b->conv2);
    t.a2 = conv_apply(c, &b->conv2, t.W2, r1, 0);
    Tensor *n2 = norm_apply(c, &b->bn2, t.a2);
    Tensor *residual = x;
    if (b->has_down) {
        t.Wd = conv_weight(c, &b->down);
        t.ad = conv_apply(c, &b->down, t.Wd, x, 0);
        residual = norm_apply(c, &b->down_norm, t.ad);
    }
    I2V_ASSERT(shape_equal(n2, residual), "BasicBlock %d->%d: the residual does not match the block's output (a stride "
               "without a shortcut)", b->in, b->out);
    t.s = t_add(c, n2, residual);
    if (tr) *tr = t;
    return t_relu(c, t.s);
}

/* The same block differentiated along tx: each conv is linear (its tangent is the conv without bias on the
 * tangent), GroupNorm and ReLU have their jvp ops, evaluated at the traced activations. */
Tensor *basic_block_tangent(Ctx *c, const BasicBlock *b, const BlockTrace *tr, Tensor *tx) {
    Tensor *t = conv_apply(c, &b->conv1, tr->W1, tx, 0);
    t = t_group_norm_jvp(c, tr->a1, t, b->bn1.groups, GN_EPS, b->bn1.weight);
    t = t_relu_jvp(c, tr->n1, t);
    t = conv_apply(c, &b->conv2, tr->W2, t, 0);
    t = t_group_norm_jvp(c, tr->a2, t, b->bn2.groups, GN_EPS, b->bn2.weight);
    Tensor *tres = tx;
    if (b->has_down) {
        tres = conv_apply(c, &b->down, tr->Wd, tx, 0);
        tres = t_group_norm_jvp(c, tr->ad, tres, b->down_norm.groups, GN_EPS, b->down_norm.weight);
    }
    return t_relu_jvp(c, tr->s, t_add(c, t, tres));
}

static void basic_block_init_kaiming(BasicBlock *b, Rng *r) {
    init_kaiming_normal_fan_out(b->conv1.weight, r);
    group_norm_init(&b->bn1);
    init_kaiming_normal_fan_out(b->conv2.weight, r);
    group_norm_init(&b->bn2);
    if (b->has_down) {
        init_kaiming_normal_fan_out(b->down.weight, r);
        group_norm_init(&b->down_norm);
    }
}

static void basic_block_init_orthogonal(BasicBlock *b, Rng *r) {
    Conv *convs[3] = {&b->conv1, &b->conv2, b->has_down ? &b->down : NULL};
    for (int i = 0; i < 3; i++) {
        if (!convs[i]) continue;
        init_orthogonal(convs[i]->weight, r);
        if (convs[i]->u) spectral_norm_init_uv(convs[i]->u, convs[i]->v, r);
    }
    group_norm_init(&b->bn1);
    group_norm_init(&b->bn2);
    if (b->has_down) group_norm_init(&b->down_norm);
}

/* ==================================================================================================== */
/* 4. the video encoder (resnet3D.py Encoder)                                                            */
/* ==================================================================================================== */

void video_encoder_declare(VideoEncoder *e, const EncoderConfig *cfg) {
    memset(e, 0, sizeof *e);
    e->cfg = *cfg;
    paramset_init(&e->ps);
    ParamSet *ps = &e->ps;
    const int *ch = cfg->channels, G = cfg->norm_groups;
    conv_declare(&e->conv1, ps, "conv1", ch[0], 3, 3, (const int[]){3, 7, 7}, (const int[]){2, 2, 2},
                 (const int[]){1, 3, 3}, 0, 0);
    group_norm_declare(&e->norm1, ps, "norm1", ch[0], G);
    char prefix[64];
    for (int i = 0; i < AE_STAGES; i++) {
        /* Encoder._make_layer: the shortcut rule looks at the spatial stride and the widths only */
        int down = cfg->stride_s[i] != 1 || ch[i] != ch[i + 1];
        snprintf(prefix, sizeof prefix, "layer.%d.0", i);
        basic_block_declare(&e->layer[i][0], ps, prefix, ch[i], ch[i + 1], cfg->stride_s[i], cfg->stride_t[i], down,
                            0, 0, G);
        snprintf(prefix, sizeof prefix, "layer.%d.1", i);
        basic_block_declare(&e->layer[i][1], ps, prefix, ch[i + 1], ch[i + 1], 1, 1, 0, 0, 0, G);
    }
    const int k4[3] = {1, 4, 4}, s1[3] = {1, 1, 1}, p0[3] = {0, 0, 0};
    conv_declare(&e->conv_mu, ps, "conv_mu", cfg->z_dim, ch[AE_STAGES], 2, k4, s1, p0, 1, 0);
    conv_declare(&e->conv_var, ps, "conv_var", cfg->z_dim, ch[AE_STAGES], 2, k4, s1, p0, 1, 0);
}

void video_encoder_init(VideoEncoder *e, Rng *r) {
    paramset_alloc(&e->ps);
    if (!r) return;
    init_kaiming_normal_fan_out(e->conv1.weight, r);
    group_norm_init(&e->norm1);
    for (int i = 0; i < AE_STAGES; i++)
        for (int j = 0; j < 2; j++) basic_block_init_kaiming(&e->layer[i][j], r);
    conv_init_default(&e->conv_mu, r);
    conv_init_default(&e->conv_var, r);
}

void video_encoder_build(VideoEncoder *e, const EncoderConfig *cfg, Rng *r) {
    video_encoder_declare(e, cfg);
    video_encoder_init(e, r);
}

void video_encoder_free(VideoEncoder *e) { paramset_free(&e->ps); }

/* Encoder.forward up to the heads of Encoder.reparameterize */
void video_encoder_forward(Ctx *c, VideoEncoder *e, Tensor *x, Tensor **mu, Tensor **logvar) {
    I2V_ASSERT(x->ndim == 5 && x->shape[1] == 3, "video encoder: input must be (N, 3, T, H, W)");
    Tensor *h = t_relu(c, norm_apply(c, &e->norm1, conv_apply(c, &e->conv1, e->conv1.weight, x, 0)));
    if (e->cfg.use_max_pool)
        h = t_maxpool3d(c, h, (const int[]){3, 3, 3}, (const int[]){1, 2, 2}, (const int[]){1, 1, 1});
    for (int i = 0; i < AE_STAGES; i++)
        for (int j = 0; j < 2; j++) h = basic_block_forward(c, &e->layer[i][j], h, NULL);
    I2V_ASSERT(h->shape[2] == 1, "video encoder: the time axis ends with %d frames, not 1 (x.squeeze(2))",
               h->shape[2]);
    int N = h->shape[0];
    h = t_reshape(c, h, 4, DIMS(N, h->shape[1], h->shape[3], h->shape[4]));
    *mu = t_reshape(c, conv_apply(c, &e->conv_mu, e->conv_mu.weight, h, 1), 2, DIMS(N, -1));
    *logvar = t_reshape(c, conv_apply(c, &e->conv_var, e->conv_var.weight, h, 1), 2, DIMS(N, -1));
}

/* Encoder.reparameterize: eps.mul(std).add_(mu), std = exp(0.5 logvar) */
Tensor *video_encoder_sample(Ctx *c, Tensor *mu, Tensor *logvar, Rng *r) {
    Tensor *eps = tensor_randn(c, mu->ndim, mu->shape, 1, r);
    return t_add(c, t_mul(c, eps, t_exp(c, t_scale(c, logvar, (real)0.5))), mu);
}

/* ==================================================================================================== */
/* 5. the generator (decoder.py, normalization_layer.py)                                                  */
/* ==================================================================================================== */

/* Spade: GroupNorm groups start at `groups` and go down until they divide C (normalization_layer.py). */
static void spade_declare(Spade *s, ParamSet *ps, const char *prefix, int C, int groups, int hidden) {
    char name[LAYER_NAME_MAX];
    s->C = C;
    s->hidden = hidden;
    s->groups = groups;
    while (C % s->groups) s->groups--;
    const int k[3] = {1, 3, 3}, st[3] = {1, 1, 1}, p[3] = {0, 1, 1};
    layer_name(name, prefix, "conv");
    conv_declare(&s->conv, ps, name, hidden, 3, 2, k, st, p, 1, 0);
    layer_name(name, prefix, "conv_gamma");
    conv_declare(&s->conv_gamma, ps, name, C, hidden, 2, k, st, p, 1, 0);
    layer_name(name, prefix, "conv_beta");
    conv_declare(&s->conv_beta, ps, name, C, hidden, 2, k, st, p, 1, 0);
}

/* lrelu_0.2(Spade.forward(x, x0)): GN(x) (1 + gamma) + beta with gamma, beta = convs of the bilinearly resized
 * start frame (align_corners=True), repeated over T.  x (N, C, T, H, W), x0 (N, 3, H0, W0). */
static Tensor *spade_lrelu_forward(Ctx *c, Spade *s, Tensor *x, Tensor *x0) {
    int N = x->shape[0], C = x->shape[1], H = x->shape[3], W = x->shape[4];
    Tensor *y = (x0->shape[2] == H && x0->shape[3] == W) ? x0 : t_resize_bilinear(c, x0, H, W);
    y = t_leaky_relu(c, conv_apply(c, &s->conv, s->conv.weight, y, 1), LRELU_SLOPE);
    Tensor *gamma = conv_apply(c, &s->conv_gamma, s->conv_gamma.weight, y, 1);
    Tensor *beta = conv_apply(c, &s->conv_beta, s->conv_beta.weight, y, 1);
    gamma = t_reshape(c, gamma, 5, DIMS(N, C, 1, H, W));
    beta = t_reshape(c, beta, 5, DIMS(N, C, 1, H, W));
    return t_norm_modulate_lrelu(c, x, s->groups, GN_EPS, gamma, beta, 1, LRELU_SLOPE);
}

static void adain_declare(AdaIN *a, ParamSet *ps, const char *prefix, int C, int z_dim) {
    char name[LAYER_NAME_MAX];
    a->C = C;
    layer_name(name, prefix, "linear.weight");
    a->weight = param_new(ps, name, 2, DIMS(2 * C, z_dim));
    layer_name(name, prefix, "linear.bias");
    a->bias = param_new(ps, name, 1, DIMS(2 * C));
}

/* lrelu_0.2(ADAIN.forward(x, z)): gamma IN(x) + beta, (gamma, beta) = linear(z).chunk(2, 1) (no "1 +").
 * x (N, C, T, H, W), z (N, Z) */
static Tensor *adain_lrelu_forward(Ctx *c, AdaIN *a, Tensor *x, Tensor *z) {
    int N = x->shape[0], C = a->C;
    Tensor *gb = t_linear(c, z, a->weight, a->bias);   /* (N, 2C) */
    Tensor *gamma = t_reshape(c, t_slice(c, gb, 1, 0, C), 5, DIMS(N, C, 1, 1, 1));
    Tensor *beta = t_reshape(c, t_slice(c, gb, 1, C, C), 5, DIMS(N, C, 1, 1, 1));
    return t_norm_modulate_lrelu(c, x, C, GN_EPS, gamma, beta, 0, LRELU_SLOPE);
}

void gen_block_declare(GenBlock *b, ParamSet *ps, const char *prefix, int n_in, int n_out, int z_dim, int spectral,
                       int groups, int spade_hidden) {
    char name[LAYER_NAME_MAX];
    memset(b, 0, sizeof *b);
    b->n_in = n_in;
    b->n_out = n_out;
    b->n_mid = n_in < n_out ? n_in : n_out;
    b->learned_shortcut = n_in != n_out;
    /* GeneratorBlock.__init__ registers conv_0, conv_1, conv_s, norm_0, norm_1, norm_s in this order */
    layer_name(name, prefix, "conv_0");
    conv333_declare(&b->conv_0, ps, name, b->n_mid, n_in, 1, 1, 1, spectral);
    layer_name(name, prefix, "conv_1");
    conv333_declare(&b->conv_1, ps, name, n_out, b->n_mid, 1, 1, 1, spectral);
    if (b->learned_shortcut) {
        layer_name(name, prefix, "conv_s");
        conv_declare(&b->conv_s, ps, name, n_out, n_in, 3, (const int[]){1, 1, 1}, (const int[]){1, 1, 1},
                     (const int[]){0, 0, 0}, 0, spectral);
    }
    layer_name(name, prefix, "norm_0");
    spade_declare(&b->norm_0, ps, name, n_in, groups, spade_hidden);
    layer_name(name, prefix, "norm_1");
    adain_declare(&b->norm_1, ps, name, b->n_mid, z_dim);
    if (b->learned_shortcut) {
        layer_name(name, prefix, "norm_s.bn");
        group_norm_declare(&b->norm_s, ps, name, n_in, groups);
    }
}

/* GeneratorBlock.forward(x, z, x0): shortcut(x) + conv_1(lrelu(AdaIN(conv_0(lrelu(SPADE(x, x0))), z))) */
Tensor *gen_block_forward(Ctx *c, GenBlock *b, Tensor *x, Tensor *z, Tensor *x0) {
    Tensor *shortcut = x;
    if (b->learned_shortcut) shortcut = sn_conv3d(c, &b->conv_s, norm_apply(c, &b->norm_s, x), 0);
    Tensor *h = sn_conv3d(c, &b->conv_0, spade_lrelu_forward(c, &b->norm_0, x, x0), 1);
    h = sn_conv3d(c, &b->conv_1, adain_lrelu_forward(c, &b->norm_1, h, z), 1);
    return t_add(c, shortcut, h);
}

static void gen_block_init(GenBlock *b, Rng *r) {
    conv_init_default(&b->conv_0, r);
    conv_init_default(&b->conv_1, r);
    if (b->learned_shortcut) conv_init_default(&b->conv_s, r);
    /* Generator.reset_params: only the Conv2d (the SPADE convs) get Xavier uniform, gain 0.02, bias 0 */
    Conv *sp[3] = {&b->norm_0.conv, &b->norm_0.conv_gamma, &b->norm_0.conv_beta};
    for (int i = 0; i < 3; i++) {
        init_xavier_uniform(sp[i]->weight, 0.02, r);
        tensor_fill(sp[i]->bias, 0);
    }
    init_default(b->norm_1.weight, b->norm_1.bias, r);
    if (b->learned_shortcut) group_norm_init(&b->norm_s);
}

static const char *const gen_block_names[GEN_BLOCKS] = {"head_0", "g_0", "g_1", "g_2", "g_3", "g_4"};

void generator_declare(Generator *g, const DecoderConfig *cfg) {
    memset(g, 0, sizeof *g);
    g->cfg = *cfg;
    paramset_init(&g->ps);
    int nf = cfg->channel_factor, Z = cfg->z_dim;
    g->fc_w = param_new(&g->ps, "fc.weight", 2, DIMS(16 * 16 * nf, Z));
    g->fc_b = param_new(&g->ps, "fc.bias", 1, DIMS(16 * 16 * nf));
    const int widths[GEN_BLOCKS + 1] = {16 * nf, 16 * nf, 16 * nf, 8 * nf, 4 * nf, 2 * nf, nf};
    for (int i = 0; i < GEN_BLOCKS; i++)
        gen_block_declare(&g->blocks[i], &g->ps, gen_block_names[i], widths[i], widths[i + 1], Z, cfg->spectral_norm,
                          cfg->norm_groups, cfg->spade_hidden);
    conv333_declare(&g->conv_img, &g->ps, "conv_img", 3, nf, 1, 1, 1, 0);
}

void generator_init(Generator *g, Rng *r) {
    paramset_alloc(&g->ps);
    if (!r) return;
    init_default(g->fc_w, g->fc_b, r);
    for (int i = 0; i < GEN_BLOCKS; i++) gen_block_init(&g->blocks[i], r);
    conv_init_default(&g->conv_img, r);
}

void generator_build(Generator *g, const DecoderConfig *cfg, Rng *r) {
    generator_declare(g, cfg);
    generator_init(g, r);
}

void generator_free(Generator *g) { paramset_free(&g->ps); }

/* Generator.forward(img, motion) */
Tensor *generator_forward(Ctx *c, Generator *g, Tensor *x0, Tensor *z) {
    I2V_ASSERT(x0->ndim == 4 && x0->shape[1] == 3 && z->ndim == 2 && z->shape[0] == x0->shape[0] &&
                   z->shape[1] == g->cfg.z_dim,
               "generator: x0 must be (N, 3, H, W) and z (N, %d)", g->cfg.z_dim);
    int N = x0->shape[0], nf = g->cfg.channel_factor;
    const int *us = g->cfg.upsample_s, *ut = g->cfg.upsample_t;
    /* the upsampling in front of each block: none before head_0, x2 before g_0..g_2, then the config's */
    const int up[GEN_BLOCKS][3] = {{1, 1, 1}, {2, 2, 2}, {2, 2, 2}, {2, 2, 2}, {ut[0], us[0], us[0]},
                                   {ut[1], us[1], us[1]}};
    Tensor *x = t_reshape(c, t_linear(c, z, g->fc_w, g->fc_b), 5, DIMS(N, 16 * nf, 1, 4, 4));
    for (int i = 0; i < GEN_BLOCKS; i++) {
        if (up[i][0] != 1 || up[i][1] != 1 || up[i][2] != 1) x = t_upsample_nearest3d(c, x, up[i]);
        x = gen_block_forward(c, &g->blocks[i], x, z, x0);
    }
    x = conv_apply(c, &g->conv_img, g->conv_img.weight, t_leaky_relu(c, x, LRELU_SLOPE), 1);
    return t_transpose(c, t_tanh(c, x), 1, 2);   /* (N, 3, T, H, W) -> (N, T, 3, H, W) */
}

/* ==================================================================================================== */
/* 6. the temporal discriminator (resnet3D.py Discriminator), its tangent and the gradient penalty        */
/* ==================================================================================================== */

void disc_t_declare(TemporalDisc *d, const DiscTConfig *cfg) {
    memset(d, 0, sizeof *d);
    d->cfg = *cfg;
    paramset_init(&d->ps);
    ParamSet *ps = &d->ps;
    const int *ch = cfg->channels, G = cfg->norm_groups;
    conv_declare(&d->conv1, ps, "conv1", ch[0], 3, 3, (const int[]){3, 7, 7}, (const int[]){1, 2, 2},
                 (const int[]){1, 3, 3}, 0, 0);
    group_norm_declare(&d->norm1, ps, "norm1", ch[0], G);
    char prefix[64];
    for (int i = 0; i < AE_STAGES; i++) {
        /* Discriminator._make_layer: a (spectral-normalised) shortcut whenever a stride or the width changes;
         * spectral norm on the first block only (the second is built with spectral=False) */
        int down = cfg->stride_s[i] != 1 || cfg->stride_t[i] != 1 || ch[i] != ch[i + 1];
        snprintf(prefix, sizeof prefix, "layer.%d.0", i);
        basic_block_declare(&d->layer[i][0], ps, prefix, ch[i], ch[i + 1], cfg->stride_s[i], cfg->stride_t[i], down,
                            cfg->spectral_norm, 1, G);
        snprintf(prefix, sizeof prefix, "layer.%d.1", i);
        basic_block_declare(&d->layer[i][1], ps, prefix, ch[i + 1], ch[i + 1], 1, 1, 0, 0, 0, G);
    }
    d->fc_w = param_new(ps, "fc.weight", 2, DIMS(1, ch[AE_STAGES]));
}

void disc_t_init(TemporalDisc *d, Rng *r) {
    paramset_alloc(&d->ps);
    if (!r) return;
    init_orthogonal(d->conv1.weight, r);
    group_norm_init(&d->norm1);
    for (int i = 0; i < AE_STAGES; i++)
        for (int j = 0; j < 2; j++) basic_block_init_orthogonal(&d->layer[i][j], r);
    init_default(d->fc_w, NULL, r);
}

void disc_t_build(TemporalDisc *d, const DiscTConfig *cfg, Rng *r) {
    disc_t_declare(d, cfg);
    disc_t_init(d, r);
}

void disc_t_free(TemporalDisc *d) { paramset_free(&d->ps); }

static const int DT_POOL_K[3] = {3, 3, 3}, DT_POOL_S[3] = {1, 2, 2}, DT_POOL_P[3] = {1, 1, 1};
static const int DT_AVG_K[3] = {1, 4, 4}, DT_AVG_S[3] = {1, 1, 1}, DT_AVG_P[3] = {0, 0, 0};

/* Discriminator.forward */
Tensor *disc_t_forward(Ctx *c, TemporalDisc *d, Tensor *x, Tensor *fmap[AE_STAGES], DiscTrace *tr) {
    I2V_ASSERT(x->ndim == 5 && x->shape[1] == 3, "temporal discriminator: input must be (N, 3, T, H, W)");
    DiscTrace t;
    memset(&t, 0, sizeof t);
    t.W0 = d->conv1.weight;
    t.a0 = conv_apply(c, &d->conv1, t.W0, x, 0);
    t.n0 = norm_apply(c, &d->norm1, t.a0);
    t.r0 = t_relu(c, t.n0);
    Tensor *h = d->cfg.use_max_pool ? t_maxpool3d(c, t.r0, DT_POOL_K, DT_POOL_S, DT_POOL_P) : t.r0;
    for (int i = 0; i < AE_STAGES; i++) {
        for (int j = 0; j < 2; j++) h = basic_block_forward(c, &d->layer[i][j], h, &t.blk[i][j]);
        if (fmap) fmap[i] = h;
    }
    h = t_avgpool3d(c, h, DT_AVG_K, DT_AVG_S, DT_AVG_P);
    h = t_reshape(c, h, 2, DIMS(h->shape[0], -1));
    if (tr) *tr = t;
    return t_linear(c, h, d->fc_w, NULL);
}

Tensor *disc_t_tangent(Ctx *c, TemporalDisc *d, const DiscTrace *tr, Tensor *v) {
    Tensor *t = conv_apply(c, &d->conv1, tr->W0, v, 0);
    t = t_group_norm_jvp(c, tr->a0, t, d->norm1.groups, GN_EPS, d->norm1.weight);
    t = t_relu_jvp(c, tr->n0, t);
    if (d->cfg.use_max_pool) t = t_maxpool3d_jvp(c, tr->r0, t, DT_POOL_K, DT_POOL_S, DT_POOL_P);
    for (int i = 0; i < AE_STAGES; i++)
        for (int j = 0; j < 2; j++) t = basic_block_tangent(c, &d->layer[i][j], &tr->blk[i][j], t);
    t = t_avgpool3d(c, t, DT_AVG_K, DT_AVG_S, DT_AVG_P);
    t = t_reshape(c, t, 2, DIMS(t->shape[0], -1));
    return t_linear(c, t, d->fc_w, NULL);
}

/* loss.py gradient_penalty(pred, x): grad of pred.mean() w.r.t. x, squared, summed per sample, averaged */
double disc_t_gradient_penalty(Ctx *c, TemporalDisc *d, Tensor *x, Tensor *logits, const DiscTrace *tr,
                               Tensor **surrogate) {
    I2V_ASSERT(x->requires_grad, "gradient penalty: the input must be marked as requiring a gradient before the "
               "discriminator's forward");
    int N = x->shape[0];
    Tensor *g;
    grad_of(c, t_mean_all(c, logits), 1, &x, &g);
    double gp = 0;   /* the logged value, summed in double on the host as it always was */
    if (g->data) {
        real *gh = xmalloc(g->numel * sizeof *gh);
        tensor_to_host(g, gh);
        for (size_t i = 0; i < g->numel; i++) gp += (double)gh[i] * gh[i];
        free(gh);
    }
    gp /= N;
    if (surrogate) {
        Tensor *h = disc_t_tangent(c, d, tr, t_detach(c, g));   /* (N, 1): h_n = J_x D(x_n) . g_n */
        *surrogate = t_scale(c, t_mean_all(c, h), (real)(2.0 / N));
    }
    return gp;
}

/* ==================================================================================================== */
/* 7. stage-1 training (stage1_VAE/modules/loss.py Backward, stage1_VAE/main.py)                          */
/* ==================================================================================================== */

/* LPIPS.forward(seq_orig, seq_gen).mean() over the N T frame pairs (the module stays in training mode in the
 * official code, so its dropout is active: docs/official-quirks.md, training 3).  orig, fake (M, 3, H, W) -> 0-D. */
static Tensor *perceptual_loss(Stage1 *s, Ctx *c, Tensor *orig, Tensor *fake) {
    return t_mean_all(c, lpips_forward(c, &s->lpips, orig, fake, &s->rng_dropout));
}

/* Freezing a network for the AE step: its parameters stop requiring gradients, so its layers record only
 * what the generator's gradient needs (PyTorch computes and later discards the discriminators' gradients). */
static void set_trainable(ParamSet *ps, int on) {
    for (int i = 0; i < ps->n; i++)
        if (ps->t[i]->is_param) ps->t[i]->requires_grad = (unsigned char)on;
}

int stage1_init(Stage1 *s, const Stage1Config *cfg, const char *lpips_path, uint64_t seed, I2vError *e) {
    memset(s, 0, sizeof *s);
    if (stage1_config_check(cfg, e)) return -1;
    s->cfg = *cfg;
    if (cfg->Training.w_percep > 0) {
        if (lpips_open(&s->lpips, lpips_path, e)) return -1;
        s->has_lpips = 1;
    }
    const TrainingConfig *tc = &cfg->Training;
    /* main.py builds the generator, the PatchGAN, the temporal discriminator, then the encoder */
    Rng init;
    rng_seed(&init, seed);
    generator_build(&s->gen, &cfg->Decoder, &init);
    patchgan_build(&s->disc_s, &cfg->Discriminator_Patch, NULL, &init);
    disc_t_build(&s->disc_t, &cfg->Discriminator_Temporal, &init);
    video_encoder_build(&s->enc, &cfg->Encoder, &init);
    rng_seed(&s->rng_noise, seed + 1);
    rng_seed(&s->rng_sample, seed + 2);
    rng_seed(&s->rng_dropout, seed + 3);
    adam_init(&s->opt_ae, tc->lr, 0.5, 0.9, 1e-8, tc->weight_decay, 0);
    adam_add_params(&s->opt_ae, &s->gen.ps);
    adam_add_params(&s->opt_ae, &s->enc.ps);
    adam_init(&s->opt_dt, tc->lr, 0.5, 0.9, 1e-8, tc->weight_decay, 0);
    adam_add_params(&s->opt_dt, &s->disc_t.ps);
    adam_init(&s->opt_ds, tc->lr, 0.5, 0.9, 1e-8, tc->weight_decay, 0);
    adam_add_params(&s->opt_ds, &s->disc_s.ps);
    explr_init(&s->sched_ae, tc->lr_gamma);
    explr_init(&s->sched_dt, tc->lr_gamma);
    explr_init(&s->sched_ds, tc->lr_gamma);
    ctx_init(&s->ctx);
    return 0;
}

void stage1_free(Stage1 *s) {
    ctx_free(&s->ctx);
    adam_free(&s->opt_ae);
    adam_free(&s->opt_dt);
    adam_free(&s->opt_ds);
    video_encoder_free(&s->enc);
    generator_free(&s->gen);
    disc_t_free(&s->disc_t);
    patchgan_free(&s->disc_s);
    if (s->has_lpips) lpips_free(&s->lpips);
    memset(s, 0, sizeof *s);
}

void stage1_end_epoch(Stage1 *s, int epoch) {
    explr_step(&s->sched_ae, &s->opt_ae);
    if (epoch >= s->cfg.Training.pretrain) {
        explr_step(&s->sched_dt, &s->opt_dt);
        explr_step(&s->sched_ds, &s->opt_ds);
    }
}

static double value_of(const Tensor *t) { return t && t->data ? (double)t->data[0] : 0; }

static double mean_of(const Tensor *t) {
    if (!t || !t->data) return 0;
    double s = 0;
    for (size_t i = 0; i < t->numel; i++) s += t->data[i];
    return s / (double)t->numel;
}

/* PSNR of fake against real over the whole batch: with data_range = max - min of `range_of` (the official
 * log calls pytorch_lightning psnr(seq_orig, seq_gen), whose target, seq_gen, sets the range), or range 2. */
static void batch_psnr(const Tensor *orig, const Tensor *fake, double *official, double *fixed) {
    if (!orig->data || !fake->data) return;
    double se = 0, lo = fake->data[0], hi = fake->data[0];
    for (size_t i = 0; i < orig->numel; i++) {
        double d = (double)orig->data[i] - fake->data[i];
        se += d * d;
        if (fake->data[i] < lo) lo = fake->data[i];
        if (fake->data[i] > hi) hi = fake->data[i];
    }
    double mse = se / (double)orig->numel;
    *official = 10 * log10((hi - lo) * (hi - lo) / mse);
    *fixed = 10 * log10(4.0 / mse);
}

/* The batch at the data boundary: seq (N, S, 3, H, W) -> real (N, S - 1, 3, H, W), x0 (N, 3, H, W). */
static void split_batch(Ctx *c, const Stage1Config *cfg, const Tensor *seq, Tensor **orig, Tensor **x0) {
    int N = seq->shape[0], S = cfg->Data.sequence_length, H = cfg->Data.img_size;
    I2V_ASSERT(seq->ndim == 5 && seq->shape[1] == S && seq->shape[2] == 3 && seq->shape[3] == H && seq->shape[4] == H,
               "stage 1: the batch must be (N, %d, 3, %d, %d)", S, H, H);
    Tensor *video = tensor_from_host(c, 5, seq->shape, seq->data);
    *orig = t_slice(c, video, 1, 1, S - 1);
    *x0 = t_reshape(c, t_slice(c, video, 1, 0, 1), 4, DIMS(N, 3, H, H));
}

#define SPATIAL_FRAMES 20   /* frames the PatchGAN sees per iteration (loss.py: np.random.randint(..., 20)) */

/* loss.py Backward.forward: one stage-1 iteration, in the official order of its six steps. */
static void train_step_body(Stage1 *s, const Tensor *seq, int epoch, Stage1Stats *st) {
    Ctx *c = &s->ctx;
    const TrainingConfig *tc = &s->cfg.Training;
    int gan = epoch >= tc->pretrain, disc = gan || tc->disc_in_warmup;
    c->training = 1;
    c->grad_enabled = 1;
    Tensor *orig, *x0;
    split_batch(c, &s->cfg, seq, &orig, &x0);
    int N = orig->shape[0], T = orig->shape[1], H = orig->shape[3], W = orig->shape[4];

    /* 1. encoder on x1..xT, generator on (x0, z) */
    Tensor *mu, *logvar;
    video_encoder_forward(c, &s->enc, t_transpose(c, orig, 1, 2), &mu, &logvar);
    Tensor *z = video_encoder_sample(c, mu, logvar, &s->rng_noise);
    Tensor *fake = generator_forward(c, &s->gen, x0, z);   /* (N, T, 3, H, W) */

    /* 2. the temporal window (only for clips of 16 frames or more) and the spatial frames */
    int len = T, start = 0;
    if (T >= 16) {
        len = tc->subsample_length;
        start = (int)rng_below(&s->rng_sample, (uint32_t)(T - len + 1));
    }
    int64_t idx[SPATIAL_FRAMES];
    for (int k = 0; k < SPATIAL_FRAMES; k++) idx[k] = rng_below(&s->rng_sample, (uint32_t)(N * T));
    Tensor *fake_win = t_transpose(c, t_slice(c, fake, 1, start, len), 1, 2);   /* (N, 3, len, H, W) */
    Tensor *real_win = t_transpose(c, t_slice(c, orig, 1, start, len), 1, 2);
    Tensor *fake_frames = t_index_select(c, t_reshape(c, fake, 4, DIMS(N * T, 3, H, W)), 0, SPATIAL_FRAMES, idx);
    Tensor *real_frames = t_index_select(c, t_reshape(c, orig, 4, DIMS(N * T, 3, H, W)), 0, SPATIAL_FRAMES, idx);

    /* 3-4. D_t step: hinge loss on (fake, orig) windows and the gradient penalty at the real window */
    Tensor *loss_dt = NULL, *dt_real = NULL, *loss_ds = NULL, *ds_real = NULL;
    double gp = 0;
    if (disc) {
        c->grad_enabled = gan;
        Tensor *dt_fake = disc_t_forward(c, &s->disc_t, t_detach(c, fake_win), NULL, NULL);
        c->grad_enabled = gan || tc->w_GP != 0;
        if (tc->w_GP != 0) real_win->requires_grad = 1;
        DiscTrace trace;
        dt_real = disc_t_forward(c, &s->disc_t, real_win, NULL, &trace);
        loss_dt = t_scale(c, t_add(c, t_hinge_d_real(c, dt_real), t_hinge_d_fake(c, dt_fake)), (real)0.5);
        Tensor *gp_surrogate = NULL;
        if (tc->w_GP != 0) {
            gp = disc_t_gradient_penalty(c, &s->disc_t, real_win, dt_real, &trace, gan ? &gp_surrogate : NULL);
            real_win->requires_grad = 0;   /* x's own gradient is not needed by anything that follows */
        }
        if (gan) {
            Tensor *obj = gp_surrogate ? t_add(c, loss_dt, t_scale(c, gp_surrogate, (real)tc->w_GP)) : loss_dt;
            paramset_zero_grad(&s->disc_t.ps);
            backward(c, obj);
            if (!c->dry) adam_step(&s->opt_dt);
        }

        /* 5. D_s step on the 20 frames */
        c->grad_enabled = gan;
        Tensor *ds_fake = patchgan_forward(c, &s->disc_s, t_detach(c, fake_frames));
        ds_real = patchgan_forward(c, &s->disc_s, real_frames);
        loss_ds = t_scale(c, t_add(c, t_hinge_d_real(c, ds_real), t_hinge_d_fake(c, ds_fake)), (real)0.5);
        if (gan) {
            paramset_zero_grad(&s->disc_s.ps);
            backward(c, loss_ds);
            if (!c->dry) adam_step(&s->opt_ds);
        }
        c->grad_enabled = 1;
    }

    /* 6. AE step against the updated discriminators (during warm-up their terms are only logged) */
    set_trainable(&s->disc_t.ps, 0);
    set_trainable(&s->disc_s.ps, 0);
    Tensor *gen_s = NULL, *gen_t = NULL, *fmap = NULL, *ds_fake2 = NULL, *dt_fake2 = NULL, *dt_real2 = NULL;
    if (disc) {
        ds_fake2 = patchgan_forward(c, &s->disc_s, gan ? fake_frames : t_detach(c, fake_frames));
        gen_s = t_hinge_g(c, ds_fake2);
        Tensor *fm_fake[AE_STAGES], *fm_real[AE_STAGES];
        dt_fake2 = disc_t_forward(c, &s->disc_t, gan ? fake_win : t_detach(c, fake_win), fm_fake, NULL);
        dt_real2 = disc_t_forward(c, &s->disc_t, real_win, fm_real, NULL);
        gen_t = t_hinge_g(c, dt_fake2);
        for (int l = 0; l < AE_STAGES; l++) {   /* loss.py fmap_loss(metric='L1'): the mean of the stage L1 means */
            Tensor *term = t_l1_loss(c, fm_fake[l], fm_real[l]);
            fmap = fmap ? t_add(c, fmap, term) : term;
        }
        fmap = t_scale(c, fmap, (real)(1.0 / AE_STAGES));
    }
    Tensor *percep = NULL;
    if (tc->w_percep != 0) {
        Tensor *all_real = t_reshape(c, orig, 4, DIMS(N * T, 3, H, W)),
               *all_fake = t_reshape(c, fake, 4, DIMS(N * T, 3, H, W));
        percep = perceptual_loss(s, c, all_real, all_fake);
    }
    Tensor *l1 = t_l1_loss(c, fake, orig);
    Tensor *kl = t_kl_normal(c, mu, logvar);
    Tensor *loss = t_add(c, t_scale(c, l1, (real)tc->w_recon), t_scale(c, kl, (real)tc->w_kl));
    if (percep) loss = t_add(c, loss, t_scale(c, percep, (real)tc->w_percep));
    if (gan) {
        loss = t_add(c, loss, gen_s);   /* weight 1: w_coup_s is never applied (docs/official-quirks.md) */
        loss = t_add(c, loss, t_scale(c, gen_t, (real)tc->w_coup_t));
        loss = t_add(c, loss, t_scale(c, fmap, (real)tc->w_fmap_t));
    }
    paramset_zero_grad(&s->enc.ps);
    paramset_zero_grad(&s->gen.ps);
    backward(c, loss);
    if (!c->dry) adam_step(&s->opt_ae);
    set_trainable(&s->disc_t.ps, 1);
    set_trainable(&s->disc_s.ps, 1);

    if (st && !c->dry) {
        ctx_sync(c);   /* the values below are read on the host */
        memset(st, 0, sizeof *st);
        st->loss_vae = value_of(loss);
        st->l1 = value_of(l1);
        st->lpips = value_of(percep);
        st->kl = value_of(kl);
        st->gen_s = value_of(gen_s);
        st->gen_t = value_of(gen_t);
        st->fmap_t = value_of(fmap);
        st->disc_t = value_of(loss_dt);
        st->gp = gp;
        st->logits_real_t = mean_of(dt_real2);
        st->logits_fake_t = mean_of(dt_fake2);
        st->disc_s = value_of(loss_ds);
        st->logits_real_s = mean_of(ds_real);
        st->logits_fake_s = mean_of(ds_fake2);
        batch_psnr(orig, fake, &st->psnr, &st->psnr_fixed);
    }
}

/* A dry run of the step sizes the arena before the first real step with this batch size (and the real
 * step then allocates nothing). It always builds the larger post-warm-up graph; the random streams are
 * put back afterwards, so sizing changes no result. */
static void size_arena(Stage1 *s, const Tensor *seq, int train) {
    Rng saved[3] = {s->rng_noise, s->rng_sample, s->rng_dropout};
    Ctx *c = &s->ctx;
    c->dry = 1;
    if (train) train_step_body(s, seq, s->cfg.Training.pretrain, NULL);
    else stage1_eval_step(s, seq, NULL, NULL);
    size_t need = ctx_dry_finish(c);
    if (need > s->arena_bytes) s->arena_bytes = need;
    s->rng_noise = saved[0];
    s->rng_sample = saved[1];
    s->rng_dropout = saved[2];
}

size_t stage1_plan_step(Stage1 *s, const Tensor *seq) {
    size_arena(s, seq, 1);
    s->sized_train_n = seq->shape[0];
    return s->arena_bytes + s->ctx.peak_scratch;
}

size_t stage1_step_bytes(Stage1 *s, const Tensor *seq) {
    Rng saved[3] = {s->rng_noise, s->rng_sample, s->rng_dropout};
    Ctx *c = &s->ctx;
    c->dry = 1;
    train_step_body(s, seq, s->cfg.Training.pretrain, NULL);
    ctx_dry_measure(c);
    s->rng_noise = saved[0];
    s->rng_sample = saved[1];
    s->rng_dropout = saved[2];
    return ctx_dry_data_bytes(c);
}

void stage1_train_step(Stage1 *s, const Tensor *seq, int epoch, Stage1Stats *st) {
    if (s->sized_train_n != seq->shape[0]) {
        size_arena(s, seq, 1);
        s->sized_train_n = seq->shape[0];
    }
    train_step_body(s, seq, epoch, st);
    ctx_reset(&s->ctx);
}

/* loss.py Backward.eval with the generator in eval mode (main.py validator) */
void stage1_eval_step(Stage1 *s, const Tensor *seq, Stage1Stats *st, Tensor *recon) {
    Ctx *c = &s->ctx;
    if (!c->dry && s->sized_eval_n != seq->shape[0]) {
        size_arena(s, seq, 0);
        s->sized_eval_n = seq->shape[0];
    }
    const TrainingConfig *tc = &s->cfg.Training;
    c->grad_enabled = 0;
    Tensor *orig, *x0;
    split_batch(c, &s->cfg, seq, &orig, &x0);
    int N = orig->shape[0], T = orig->shape[1], H = orig->shape[3], W = orig->shape[4];
    c->training = 1;   /* the encoder is never switched to eval (it has nothing that depends on the mode) */
    Tensor *mu, *logvar;
    video_encoder_forward(c, &s->enc, t_transpose(c, orig, 1, 2), &mu, &logvar);
    Tensor *z = video_encoder_sample(c, mu, logvar, &s->rng_noise);
    c->training = 0;   /* generator.eval(): spectral norm with the stored u, v */
    Tensor *fake = generator_forward(c, &s->gen, x0, z);
    c->training = 1;
    Tensor *percep = NULL;
    if (tc->w_percep != 0)
        percep = perceptual_loss(s, c, t_reshape(c, orig, 4, DIMS(N * T, 3, H, W)),
                                 t_reshape(c, fake, 4, DIMS(N * T, 3, H, W)));
    Tensor *l1 = t_l1_loss(c, fake, orig);
    Tensor *kl = t_kl_normal(c, mu, logvar);
    if (!c->dry) {
        ctx_sync(c);   /* the values below are read on the host */
        if (st) {
            memset(st, 0, sizeof *st);
            st->l1 = value_of(l1);
            st->lpips = value_of(percep);
            st->kl = value_of(kl);
            batch_psnr(orig, fake, &st->psnr, &st->psnr_fixed);
        }
        if (recon) {
            I2V_ASSERT(recon->numel == fake->numel, "stage1_eval_step: recon must be (N, %d, 3, %d, %d)", T, H, W);
            tensor_to_host(fake, recon->data);
        }
        ctx_reset(c);
    }
    c->grad_enabled = 1;
}
