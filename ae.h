/* ae.h: stage 1 of "Stochastic Image-to-Video Synthesis using cINNs": the video-to-video VAE-GAN.
 *
 * What it is: the configs of stage 1 (one struct per section of stage1_VAE/configs/<name>_config.yaml), the video
 * encoder (resnet3D.py Encoder), the generator (decoder.py Generator with SPADE on x0 and AdaIN on z),
 * the temporal 3-D discriminator (resnet3D.py Discriminator) with the forward-mode tangent that its
 * gradient penalty needs, and one training step of stage 1 in the official order (loss.py Backward).
 * The spatial PatchGAN and LPIPS come from patchgan.h and lpips.h; stage 1 only calls them.
 * What it is not: file formats, data sets, the command line or the epoch loop.
 *
 * Parameter and buffer names are the official state_dict keys, so converted
 * official checkpoints load with st_load_paramset. Layouts: inside the networks videos are (N, C, T, H, W);
 * at the data boundary they are (N, T, C, H, W), values in [-1, 1], as in the official code.
 * Dimension legend: N batch, C channels, T frames, H height, W width, Z = z_dim.
 */
#ifndef I2V_AE_H
#define I2V_AE_H

#include "base/base.h"
#include "networks/layers.h"
#include "networks/lpips.h"
#include "ops/optim.h"
#include "networks/patchgan.h"
#include "tensor.h"

/* ==== configs (stage1_VAE/configs/<name>_config.yaml) ============================================================
 * One struct per YAML section; field names are the YAML keys. Lists are fixed arrays with a count (for
 * config.h's F_INT_LIST). Fields marked "not a YAML key" are constants of the official code that i2v makes
 * adjustable only so that tests can run the official modules at reduced widths; every config returned
 * below sets them to the official values (16 groups, SPADE width 128). */

#define AE_STAGES 4   /* residual stages of the 3-D ResNet-18s */

typedef struct EncoderConfig {          /* section Encoder */
    char res_type_encoder[16];          /* "resnet18" (BasicBlock, 2 per stage): the only type used */
    int deterministic;                  /* unused by the official code */
    int use_max_pool;                   /* false in every config (MaxPool3d 3, stride (1, 2, 2), pad 1) */
    int z_dim;                          /* Z, 64 */
    int channels[AE_STAGES + 1];        /* stem width, then the 4 stage widths */
    int n_channels;
    int stride_t[AE_STAGES];
    int n_stride_t;
    int stride_s[AE_STAGES];
    int n_stride_s;
    int norm_groups;                    /* not a YAML key: GroupNorm groups, 16 */
} EncoderConfig;

typedef struct DecoderConfig {          /* section Decoder */
    int channel_factor;                 /* nf: widths 16nf, 16nf, 16nf, 8nf, 4nf, 2nf, nf */
    int z_dim;                          /* Z */
    int upsample_s[2];                  /* spatial factors before g_3 and g_4 */
    int n_upsample_s;
    int upsample_t[2];                  /* temporal factors before g_3 and g_4 */
    int n_upsample_t;
    int spectral_norm;                  /* True everywhere */
    int norm_groups;                    /* not a YAML key: groups of GN_s and (at most) of SPADE's GN, 16 */
    int spade_hidden;                   /* not a YAML key: SPADE's hidden width, 128 */
} DecoderConfig;

typedef struct DiscTConfig {            /* section Discriminator_Temporal */
    int eval_seq_length;                /* unused */
    char res_type_encoder[16];          /* "resnet18" */
    int deterministic;                  /* unused */
    int use_max_pool;                   /* True everywhere */
    int channels[AE_STAGES + 1];
    int n_channels;
    int stride_t[AE_STAGES];
    int n_stride_t;
    int stride_s[AE_STAGES];
    int n_stride_s;
    int spectral_norm;                  /* True everywhere: first block of each stage and its shortcut */
    int norm_groups;                    /* not a YAML key: 16 */
} DiscTConfig;

typedef struct TrainingConfig {         /* section Training */
    char patch_GAN[16];                 /* 'basic' (unused) */
    char GAN_Loss[16];                  /* 'hinge' (the hinge loss is hard-coded) */
    double w_coup_s;                    /* read but never applied: the spatial term has weight 1 */
    double w_coup_t;
    double w_fmap_t;
    double w_percep;
    double w_recon;
    double w_GP;
    double w_kl;
    int subsample_length;               /* temporal window of D_t (12) when the clip has >= 16 frames */
    int pretrain;                       /* warm-up epochs without GAN terms and discriminator updates */
    int n_epochs;
    double lr;
    int workers;
    int bs;
    int bs_eval;
    int verbose_idx;
    double weight_decay;
    double lr_gamma;
    char FVD[16];                       /* 'FVD' or 'DTFVD': the monitor's I3D */
    int disc_in_warmup;                 /* not a YAML key of the official files: 1 (official) runs both
                                           discriminators during the warm-up epochs too, only to log their
                                           losses; 0 skips them there (a CPU speed option: the updates and
                                           the AE loss are the same, only those logged values are 0) */
} TrainingConfig;

typedef struct AeDataConfig {           /* the part of section Data that stage 1 needs */
    int sequence_length;                /* 17: x0 and 16 frames to encode */
    int img_size;                       /* 64 or 128 */
    char dataset[32];
} AeDataConfig;

typedef struct Stage1Config {
    EncoderConfig Encoder;
    DecoderConfig Decoder;
    DiscTConfig Discriminator_Temporal;
    PatchGanConfig Discriminator_Patch; /* patchgan.h */
    TrainingConfig Training;
    AeDataConfig Data;
} Stage1Config;

/* The official configs (configs/stage1_VAE/<name>_config.yaml). */
Stage1Config stage1_config_bair(void);
Stage1Config stage1_config_iper(void);
Stage1Config stage1_config_landscape(void);
Stage1Config stage1_config_dtdb(const char *texture);   /* "clouds", "fire", "vegetation", "waterfall" */
/* CPU configs on the built-in synthetic data: 8 frames of 32x32 (sequence_length 9).
 * small: nf 16, encoder channels 16,32,64,64,64, temporal D 16,16,32,64,64, PatchGAN ndf 16.
 * tiny: nf 4, encoder 16 channels, temporal D 8,8,8,16,16, PatchGAN ndf 8, 4 GroupNorm groups, SPADE width
 * 16, z_dim 16 (for tests). Both use
 * w_percep = 0 (no LPIPS weights needed). */
Stage1Config stage1_config_small(void);
Stage1Config stage1_config_tiny(void);
/* By name: bair, iper, landscape, dtdb_clouds, dtdb_fire, dtdb_vegetation, dtdb_waterfall, small, tiny.
 * Returns 0, or -1 with a message listing the names. */
int stage1_config_named(const char *name, Stage1Config *out, I2vError *e);
/* Checks that the networks can be built and fit together: list lengths, the ResNet type, GroupNorm
 * divisibility, the encoder's shortcut rule, the time axis collapsing to 1 and the 4x4 heads, the
 * generator's frame count and size against Data. The message names the key. Returns 0 or -1. */
int stage1_config_check(const Stage1Config *cfg, I2vError *e);
/* Output frames of the generator: 8 * upsample_t[0] * upsample_t[1]; size: 32 * upsample_s[0] * upsample_s[1]. */
int decoder_frames(const DecoderConfig *d);
int decoder_size(const DecoderConfig *d);

/* ==== building blocks ================================================================================ */

/* The convolutions (optionally spectral-normalised) and GroupNorms (affine, eps 1e-5) are the shared layers
 * of networks/layers.h: Conv and GroupNorm. */

/* resnet3D.py BasicBlock: relu(GN(conv2(relu(GN(conv1(x))))) + shortcut(x)); shortcut = GN(conv3x3x3(x)) or x. */
typedef struct BasicBlock {
    int in, out;
    Conv conv1, conv2;   /* conv1 carries the strides */
    GroupNorm bn1, bn2;
    int has_down;
    Conv down;           /* downsample.0: 3x3x3 projection with the strides */
    GroupNorm down_norm;      /* downsample.1 */
} BasicBlock;

/* What a BasicBlock forward keeps for its tangent (the gradient penalty). */
typedef struct BlockTrace {
    Tensor *W1, *W2, *Wd;  /* the effective (spectral-normalised) weights used by this call */
    Tensor *a1, *n1;       /* conv1 output and GN output (N, out, T', H', W') */
    Tensor *a2;            /* conv2 output */
    Tensor *ad;            /* shortcut conv output, or NULL */
    Tensor *s;             /* the sum before the last ReLU */
} BlockTrace;

/* Declares the parameters under `prefix` ("layer.0.0"); spectral: SN on conv1, conv2; down_spectral: SN
 * on the shortcut conv. */
void basic_block_declare(BasicBlock *b, ParamSet *ps, const char *prefix, int in, int out, int stride_s,
                         int stride_t, int has_down, int spectral, int down_spectral, int groups);
/* x (N, in, T, H, W) -> (N, out, T', H', W'); tr may be NULL. */
Tensor *basic_block_forward(Ctx *c, BasicBlock *b, Tensor *x, BlockTrace *tr);
/* The block's directional derivative at the traced point along tx (same shape as x). */
Tensor *basic_block_tangent(Ctx *c, const BasicBlock *b, const BlockTrace *tr, Tensor *tx);

/* normalization_layer.py Spade(C): GN(x) (1 + gamma(x0)) + beta(x0). */
typedef struct Spade {
    int C, groups, hidden;
    Conv conv, conv_gamma, conv_beta;   /* Conv2d 3->hidden, hidden->C, hidden->C; 3x3, pad 1 */
} Spade;

/* normalization_layer.py ADAIN(C, Z): gamma(z) IN(x) + beta(z). */
typedef struct AdaIN {
    int C;
    Tensor *weight, *bias; /* linear: (2C, Z), (2C) */
} AdaIN;

/* decoder.py GeneratorBlock(n_in, n_out). */
typedef struct GenBlock {
    int n_in, n_out, n_mid, learned_shortcut;
    Conv conv_0, conv_1, conv_s;  /* 3x3x3 with bias, 3x3x3 with bias, 1x1x1 without */
    Spade norm_0;
    AdaIN norm_1;
    GroupNorm norm_s;                  /* norm_s.bn */
} GenBlock;

void gen_block_declare(GenBlock *b, ParamSet *ps, const char *prefix, int n_in, int n_out, int z_dim, int spectral,
                       int groups, int spade_hidden);
/* x (N, n_in, T, H, W), z (N, Z), x0 (N, 3, H0, W0) -> (N, n_out, T, H, W) */
Tensor *gen_block_forward(Ctx *c, GenBlock *b, Tensor *x, Tensor *z, Tensor *x0);


/* ==== the networks =================================================================================== */

/* resnet3D.py Encoder: the stage-1 video encoder q(z | x1..xT). */
typedef struct VideoEncoder {
    EncoderConfig cfg;
    ParamSet ps;                       /* Encoder.state_dict() names */
    Conv conv1;                      /* stem (C0, 3, 3, 7, 7), stride (2, 2, 2), pad (1, 3, 3) */
    GroupNorm norm1;
    BasicBlock layer[AE_STAGES][2];
    Conv conv_mu, conv_var;          /* Conv2d (Z, C4, 4, 4) with bias */
} VideoEncoder;

/* Each network has declare (names and shapes, nothing allocated: enough for parameter counts, state-dict
 * listings and dry runs at full size), init (allocates; initialises as the official code from rng, or
 * leaves zeros when rng is NULL, e.g. before loading a checkpoint) and build (both).
 * Encoder init: Kaiming normal fan_out for every Conv3d, PyTorch defaults for the heads and GroupNorm. */
void video_encoder_declare(VideoEncoder *e, const EncoderConfig *cfg);
void video_encoder_init(VideoEncoder *e, Rng *rng);
void video_encoder_build(VideoEncoder *e, const EncoderConfig *cfg, Rng *rng);
void video_encoder_free(VideoEncoder *e);
/* x (N, 3, T, H, W) -> mu, logvar (N, Z). */
void video_encoder_forward(Ctx *c, VideoEncoder *e, Tensor *x, Tensor **mu, Tensor **logvar);
/* Encoder.reparameterize: z = mu + eps exp(0.5 logvar), eps ~ N(0, I) from rng, drawn row-major (N, Z). */
Tensor *video_encoder_sample(Ctx *c, Tensor *mu, Tensor *logvar, Rng *rng);

/* decoder.py Generator: (x0, z) -> x1..xT. */
#define GEN_BLOCKS 6   /* head_0, g_0 .. g_4 */
typedef struct Generator {
    DecoderConfig cfg;
    ParamSet ps;                       /* Generator.state_dict() names */
    Tensor *fc_w, *fc_b;               /* (16 nf 16, Z), (16 nf 16) */
    GenBlock blocks[GEN_BLOCKS];
    Conv conv_img;                   /* (3, nf, 3, 3, 3) with bias */
} Generator;

/* Init: PyTorch defaults for Conv3d and Linear (spectral norm: default init of weight_orig, normalised
 * N(0, 1) u and v), Xavier uniform (gain 0.02) with zero bias for the SPADE Conv2d, GroupNorm 1 and 0. */
void generator_declare(Generator *g, const DecoderConfig *cfg);
void generator_init(Generator *g, Rng *rng);
void generator_build(Generator *g, const DecoderConfig *cfg, Rng *rng);
void generator_free(Generator *g);
/* x0 (N, 3, H, W), z (N, Z) -> (N, T, 3, H, W) in (-1, 1). Spectral norm follows c->training; a layer whose
 * weight is larger than its output divides the output by sigma instead of the weight (same values and
 * gradients, less memory). */
Tensor *generator_forward(Ctx *c, Generator *g, Tensor *x0, Tensor *z);

/* resnet3D.py Discriminator: the temporal 3-D discriminator. */
typedef struct TemporalDisc {
    DiscTConfig cfg;
    ParamSet ps;                       /* Discriminator.state_dict() names */
    Conv conv1;                      /* stem (C0, 3, 3, 7, 7), stride (1, 2, 2), no spectral norm */
    GroupNorm norm1;
    BasicBlock layer[AE_STAGES][2];
    Tensor *fc_w;                      /* (1, C4), no bias */
} TemporalDisc;

/* The values the tangent pass needs, filled by the forward. */
typedef struct DiscTrace {
    Tensor *W0, *a0, *n0, *r0;         /* stem weight, conv output, GN output, ReLU output */
    BlockTrace blk[AE_STAGES][2];
} DiscTrace;

/* Init: orthogonal (gain 1) for every Conv3d (weight_orig under spectral norm), defaults for fc and GN. */
void disc_t_declare(TemporalDisc *d, const DiscTConfig *cfg);
void disc_t_init(TemporalDisc *d, Rng *rng);
void disc_t_build(TemporalDisc *d, const DiscTConfig *cfg, Rng *rng);
void disc_t_free(TemporalDisc *d);
/* x (N, 3, T, H, W) -> logits (N, 1) and the four post-ReLU stage outputs fmap[l] (N, C_l, T_l, H_l, W_l).
 * fmap and tr may be NULL. One spectral-norm power iteration per call in training mode. */
Tensor *disc_t_forward(Ctx *c, TemporalDisc *d, Tensor *x, Tensor *fmap[AE_STAGES], DiscTrace *tr);
/* The directional derivative of the logits at the traced input along v (N, 3, T, H, W) -> (N, 1), with
 * the weights of that forward call. Differentiable in the parameters (used for the penalty's gradient). */
Tensor *disc_t_tangent(Ctx *c, TemporalDisc *d, const DiscTrace *tr, Tensor *v);

/* loss.py gradient_penalty on D_t at x (N, 3, T, H, W), which must require a gradient, with the logits and
 * trace of the forward call at x:
 *     g = d/dx mean_n D(x_n),   GP = mean_n sum g_n^2   (the official 1/N^2 quirk included).
 * Returns GP's value. If surrogate is not NULL it receives a 0-D tensor whose value is 2 GP and whose
 * parameter gradient is exactly dGP/dtheta: (2/N) mean_n [tangent of D(x_n) along g_n], g held constant
 * (forward-over-reverse, tensor.h). */
double disc_t_gradient_penalty(Ctx *c, TemporalDisc *d, Tensor *x, Tensor *logits, const DiscTrace *tr,
                               Tensor **surrogate);

/* ==== stage-1 training (stage1_VAE/modules/loss.py Backward, stage1_VAE/main.py) ===================== */

/* Every value the official Backward logs, for one step. */
typedef struct Stage1Stats {
    double loss_vae;        /* the AE objective as applied (GAN terms only after warm-up) */
    double l1;              /* mean |fake - real| */
    double lpips;           /* mean LPIPS over the N T frame pairs (0 when w_percep = 0) */
    double kl;
    double gen_s, gen_t;    /* -mean D_s(fake frames), -mean D_t(fake window) */
    double fmap_t;          /* temporal feature matching */
    double disc_t, gp;      /* hinge loss of D_t, gradient penalty */
    double logits_real_t, logits_fake_t;
    double disc_s;
    double logits_real_s, logits_fake_s;
    double psnr;            /* as logged officially: pytorch_lightning psnr(real, fake), range of fake */
    double psnr_fixed;      /* with the data range fixed to 2 ([-1, 1]) */
} Stage1Stats;

typedef struct Stage1 {
    Stage1Config cfg;
    VideoEncoder enc;
    Generator gen;
    TemporalDisc disc_t;
    PatchGan disc_s;
    Lpips lpips;               /* the perceptual loss, loaded only when w_percep > 0 */
    int has_lpips;
    Adam opt_ae, opt_dt, opt_ds;
    ExponentialLR sched_ae, sched_dt, sched_ds;
    Rng rng_noise;             /* reparameterisation noise (torch's generator in the official code) */
    Rng rng_sample;            /* the temporal window and the spatial frame indices (NumPy's) */
    Rng rng_dropout;           /* LPIPS dropout */
    Ctx ctx;
    int sized_train_n;         /* batch sizes the arena was sized for by a dry run (0: none yet) */
    int sized_eval_n;
    size_t arena_bytes;        /* what the last dry run measured (and reserved) for one step */
} Stage1;

/* Builds the four networks (initialised from seed), the optimisers (Adam lr, betas (0.5, 0.9),
 * weight_decay) and the schedulers. lpips_path: the LPIPS weights (safetensors, lpips.h; NULL means
 * LPIPS_DEFAULT_PATH), read only when Training.w_percep > 0. Returns 0, or -1 with a message (bad config,
 * missing or bad LPIPS weights). */
int stage1_init(Stage1 *s, const Stage1Config *cfg, const char *lpips_path, uint64_t seed, I2vError *e);
void stage1_free(Stage1 *s);
/* One iteration of loss.py Backward.forward on seq (N, S, 3, H, W) in [-1, 1], S = Data.sequence_length:
 * encoder and generator forward; window and frame indices; D_t step (hinge + w_GP GP); D_s step; AE step
 * against the updated discriminators. Discriminator updates and GAN terms only when epoch >= pretrain. */
void stage1_train_step(Stage1 *s, const Tensor *seq, int epoch, Stage1Stats *st);
/* Sizes the arena for training steps on batches shaped like seq (the dry run the first step would do) and
 * returns the bytes one step needs beyond the parameters: the arena and the largest convolution workspace. */
size_t stage1_plan_step(Stage1 *s, const Tensor *seq);
/* The bytes of tensor data (activations and their gradients) one post-warm-up training step on a batch of
 * seq's shape needs, from a dry run that computes nothing and allocates nothing: what a device must hold
 * beside the parameters, so that a run too big for it can be refused before it starts. */
size_t stage1_step_bytes(Stage1 *s, const Tensor *seq);
/* loss.py Backward.eval: generator in eval mode (stored u, v), z sampled; L1, LPIPS, KL, PSNR without
 * gradients. recon (N, S - 1, 3, H, W) receives the reconstruction when not NULL. */
void stage1_eval_step(Stage1 *s, const Tensor *seq, Stage1Stats *st, Tensor *recon);
/* End of epoch (main.py): the AE scheduler steps; the discriminators' only when epoch >= pretrain. */
void stage1_end_epoch(Stage1 *s, int epoch);

#endif
