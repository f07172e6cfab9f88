/* cond_ae.h: the conditioning image autoencoder of stage 2, `BigAE` (stage2_cINN/AE/modules/AE.py,
 * generator.py, distributions.py) and its training step (stage2_cINN/AE/modules/loss.py, AE/main.py).
 *
 * What it is: the config (one struct per YAML section of stage2_cINN/AE/configs/<name>_config.yaml), the
 * ResNet-50 encoder `ResnetEncoder` whose posterior mean is the start-frame embedding e of the cINN, the
 * BigGAN-style decoder `BigGANDecoderWrapper` that only exists to train it, and one training / evaluation
 * step in the official order with the PatchGAN (patchgan.h) and LPIPS (lpips.h).
 * What it is not: the cINN (flow.h), data loading or the epoch loop (i2v.c).
 *
 * Names: the encoder's ParamSet holds the keys of ResnetEncoder.state_dict() (`model.conv1.weight`, ...,
 * `model.fc.sub_layers.0.bias`), so an official `encoder_stage2.pth` converted to
 * safetensors loads as it is; the decoder's holds the keys it has inside BigAE (`decoder.map_to_class_
 * embedding.main.0.weight`, ..., `decoder.decoder.colorize.module.weight_bar`). BigAE's own state_dict
 * is `encoder.` + the first followed by the second.
 * Dimension legend: N batch, C channels, H, W height and width (S = in_size), Z = z_dim, K classes
 * (n_class, 1000), E class embedding (128), s split size (10 / 20), c = s + E condition width of a GBlock.
 */
#ifndef I2V_COND_AE_H
#define I2V_COND_AE_H

#include "base/base.h"
#include "networks/layers.h"
#include "networks/lpips.h"
#include "ops/optim.h"
#include "networks/patchgan.h"
#include "tensor.h"

/* ==== configs ===========================================================================================
 * Field names are the YAML keys. Fields marked "not a YAML key" are constants of the official code that
 * i2v makes adjustable so that CPU configs and tests can use narrower networks: every official config sets
 * them to the official values (resnet50 widths and depths, chn = 96, 1000 classes, hidden 2000, embedding
 * 128), and cond_ae_config_check() derives nothing from them silently. */

#define CAE_STAGES 4       /* ResNet stages */
#define CAE_MAX_GBLOCKS 6  /* GBlocks of the decoder (4 at 64 px, 5 at 128 px) */

typedef struct CondAeNetConfig {   /* section AE */
    int deterministic;             /* False everywhere; True: the posterior has zero variance and KL = 0 */
    int in_size;                   /* S: 64 (BAIR, iPER) or 128 */
    char norm[8];                  /* "in": InstanceNorm2d(affine=False), "bn": BatchNorm2d */
    char encoder_type[16];         /* "resnet50" (the only type the configs use) */
    int use_actnorm_in_dec;        /* False everywhere (the ActNorm decoder variant is not implemented) */
    int z_dim;                     /* Z: 64 (BAIR) or 128 */
    int enc_width;                 /* not a YAML key: ResNet base width 64 (stage widths w, 2w, 4w, 8w, expansion 4) */
    int enc_blocks[CAE_STAGES];    /* not a YAML key: bottlenecks per stage, 3, 4, 6, 3 */
    int n_enc_blocks;
    int dec_chn;                   /* not a YAML key: BigGAN width chn, 96 */
    int dec_mults[CAE_MAX_GBLOCKS];/* not a YAML key: output width of each GBlock / chn; the first feature map
                                      is dec_mults[0] chn at 4x4. n_dec_mults = 0 selects the official generator
                                      for in_size: VariableDimGenerator64 (16, 8, 4, 1) or ...128 (16, 8, 4, 2, 1) */
    int n_dec_mults;               /* GBlocks: output size 4 * 2^n must equal in_size */
    int dec_split;                 /* not a YAML key: code size per GBlock; 0 selects the official 10 (64 px) or
                                      20 (128 px) */
    int dec_attn_index;            /* not a YAML key: self-attention before GBlock 4 (sa_id), on 2 chn channels */
    int n_class;                   /* not a YAML key: K = 1000 */
    int class_hidden;              /* not a YAML key: ClassUp hidden width 2000 */
    int class_emb;                 /* not a YAML key: E = 128 (Generator.linear) */
} CondAeNetConfig;

typedef struct CondAeTrainingConfig {  /* section Training */
    double w_kl;                   /* 1e-5 (landscape 1e-4) */
    int n_epochs;
    double lr;                     /* 2e-4 */
    int bs;                        /* 30 */
    double weight_decay;           /* 0 */
    int workers;
    int pretrain;                  /* 20: disc_factor = 0 for epochs < pretrain */
    int perceptual;                /* not a YAML key: 1 (official) adds LPIPS to the reconstruction term; the
                                      CPU configs set 0 so that no LPIPS weights file is needed */
} CondAeTrainingConfig;

typedef struct CondAeDataConfig {  /* the part of section Data that the AE needs (data.h binds the rest) */
    int sequence_length;           /* 1: single frames */
    int img_size;                  /* S */
    char dataset[32];
} CondAeDataConfig;

typedef struct CondAeConfig {
    CondAeNetConfig AE;
    PatchGanConfig Discriminator_Patch;
    CondAeTrainingConfig Training;
    CondAeDataConfig Data;
} CondAeConfig;

/* The official configs (configs/stage2_cINN_AE/<name>_config.yaml). */
CondAeConfig cond_ae_config_bair(void);
CondAeConfig cond_ae_config_iper(void);
CondAeConfig cond_ae_config_landscape(void);
CondAeConfig cond_ae_config_dtdb(const char *texture);   /* "clouds", "fire", "vegetation", "waterfall" */
/* CPU configs on the built-in synthetic data (no LPIPS, lr 1e-3, batch 16):
 * small: 64 px, InstanceNorm, Z 32, encoder width 16 with one bottleneck per stage, chn 8, 64 classes,
 *        hidden 128, embedding 32, split 4, PatchGAN ndf 16;
 * tiny:  32 px, BatchNorm (InstanceNorm would see 1x1 maps in layer4), Z 32, encoder width 8, chn 4 with
 *        three GBlocks (16, 4, 1), 32 classes, hidden 64, embedding 16, split 2, PatchGAN ndf 8. */
CondAeConfig cond_ae_config_small(void);
CondAeConfig cond_ae_config_tiny(void);
/* Fills the fields left 0 to mean "official": dec_mults and dec_split from in_size (no change for other
 * sizes, which cond_ae_config_check then rejects). The declare functions resolve their copy themselves. */
void cond_ae_net_resolve(CondAeNetConfig *a);
/* By name: bair, iper, landscape, dtdb_clouds, dtdb_fire, dtdb_vegetation, dtdb_waterfall, small, tiny. */
int cond_ae_config_named(const char *name, CondAeConfig *out, I2vError *e);
/* Checks that the networks can be built: encoder type and norm, sizes, the z split, the GBlock count against
 * in_size and Data.img_size, the attention width. The message names the key. Returns 0 or -1. */
int cond_ae_config_check(const CondAeConfig *cfg, I2vError *e);

/* ==== the encoder (AE.py ResnetEncoder: torchvision resnet50 + DenseEncoderLayer) ====================== */

/* torchvision Bottleneck (v1.5: the stride sits on the 3x3 conv). */
typedef struct CaeBottleneck {
    int cin, width, cout, stride;
    Tensor *conv1;          /* (width, cin, 1, 1) */
    Tensor *conv2;          /* (width, width, 3, 3), stride */
    Tensor *conv3;          /* (cout, width, 1, 1), cout = 4 width */
    BatchNorm bn1, bn2, bn3;   /* norm_layer: BatchNorm2d, or all NULL for InstanceNorm2d(affine=False) */
    Tensor *down;           /* downsample.0: (cout, cin, 1, 1) stride, or NULL (identity) */
    BatchNorm down_bn;      /* downsample.1 */
} CaeBottleneck;

typedef struct CondEncoder {
    CondAeNetConfig cfg;
    int batch_norm;         /* cfg.norm == "bn" */
    ParamSet ps;            /* prefix + `model....` in state_dict order */
    Tensor *conv1;          /* (w, 3, 7, 7) stride 2, pad 3 */
    BatchNorm bn1;          /* as in the bottlenecks */
    int nblocks;
    CaeBottleneck *blocks;  /* layer1.0 ... layer4.(n-1), in order */
    Tensor *fc_w, *fc_b;    /* model.fc.sub_layers.0: (2Z, 32 w, 1, 1), (2Z) */
} CondEncoder;

/* Declares the tensors (names, shapes) without allocating them: counts, listings and dry runs at full size. */
void cond_encoder_declare(CondEncoder *enc, const CondAeNetConfig *cfg, const char *prefix);
/* Allocates and initialises as torchvision (convs Kaiming-normal fan_out / relu, BatchNorm 1 and 0) and
 * PyTorch (head conv U(+-1/sqrt(fan_in))). With BatchNorm it then runs the forward once on N(0, 1) noise of
 * shape (1, 3, S, S) in training mode, as ResnetEncoder.__init__ does to measure the spatial size, which moves
 * the running statistics and sets num_batches_tracked to 1 exactly as there (skipped below 64 px, where
 * the official constructor fails). */
void cond_encoder_init(CondEncoder *enc, Rng *rng);
void cond_encoder_build(CondEncoder *enc, const CondAeNetConfig *cfg, const char *prefix, Rng *rng);
void cond_encoder_free(CondEncoder *enc);
/* Loads an encoder checkpoint (safetensors with ResnetEncoder's names, e.g. a converted encoder_stage2.pth;
 * strict).
 * Returns 0 or -1 with a message naming missing or mis-shaped tensors. */
int cond_encoder_load(CondEncoder *enc, const char *path, I2vError *e);

/* ResnetEncoder.forward: x (N, 3, S, S) in [-1, 1] (no ImageNet normalisation: the official transform is
 * built but never applied) -> h (N, 2Z, 1, 1). Norms use batch statistics when c->training (BatchNorm then
 * also updates its running statistics), the running ones otherwise. */
Tensor *cond_encoder_forward(Ctx *c, CondEncoder *enc, Tensor *x);
/* One bottleneck of enc (exposed for tests): x (N, cin, H, W) -> (N, cout, H / stride, W / stride). */
Tensor *cond_bottleneck_forward(Ctx *c, const CondEncoder *enc, const CaeBottleneck *b, Tensor *x);
/* DiagonalGaussianDistribution(h): mean = first Z channels, logvar = the rest clamped to [-30, 10];
 * h (N, 2Z, 1, 1) -> mean, logvar (N, Z, 1, 1). */
void cond_posterior(Ctx *c, Tensor *h, Tensor **mean, Tensor **logvar);
/* The cINN's condition: encode(x0).mode() reshaped to (N, Z). x0 (N, 3, S, S). */
Tensor *cond_encoder_embed(Ctx *c, CondEncoder *enc, Tensor *x0);

/* ==== the decoder (AE.py BigGANDecoderWrapper, generator.py VariableDimGenerator64/128) ================ */

/* A layer wrapped in the repository's SpectralNorm: `<name>.module.bias` (or none), `.weight_u`,
 * `.weight_v` (both (Cout), not trainable), `.weight_bar` (the raw weight, trainable). */
typedef struct BgSnLayer {
    Tensor *bias;           /* (Cout) or NULL */
    Tensor *u, *v;          /* (Cout); v is stored but never read (generator.py) */
    Tensor *w;              /* weight_bar: (Cout, Cin) for a Linear, (Cout, Cin, k, k) for a Conv2d */
} BgSnLayer;

/* ConditionalBatchNorm2d: BatchNorm2d(C, affine=False, eps 1e-4) then (1 + gamma(c)) x + beta(c). */
typedef struct CondBatchNorm {
    BatchNorm bn;           /* `bn`: running statistics only (affine = False) */
    BgSnLayer gamma, beta;  /* SN Linear c -> C without bias */
} CondBatchNorm;

typedef struct GBlock {
    int cin, cout;
    BgSnLayer conv0;        /* (cout, cin, 3, 3) + bias, after the x2 upsampling */
    BgSnLayer conv1;        /* (cout, cout, 3, 3) + bias */
    BgSnLayer conv_sc;      /* (cout, cin, 1, 1) + bias: the shortcut (always present: upsample = True) */
    CondBatchNorm bn0, bn1; /* HyperBN (cin), HyperBN_1 (cout) */
} GBlock;

/* SelfAttention (SAGAN) on C channels. */
typedef struct SelfAttn {
    int C;
    Tensor *gamma;          /* (1), 0 at init */
    BgSnLayer theta, phi;   /* 1x1 convs C -> C/8, no bias */
    BgSnLayer g;            /* 1x1 conv C -> C/2, no bias */
    BgSnLayer o;            /* o_conv: 1x1 conv C/2 -> C, no bias */
} SelfAttn;

typedef struct CondDecoder {
    CondAeNetConfig cfg;
    ParamSet ps;            /* prefix + `decoder....` in state_dict order */
    Tensor *class_w[4], *class_b[4];   /* ClassUp main.0, .2, .4, .6: Z -> H -> H -> H -> K */
    Tensor *linear;         /* decoder.decoder.linear.weight (E, K), no bias */
    BgSnLayer g_linear;     /* G_linear: (16 chn 16, Z - n s) + bias */
    int nblocks;
    GBlock blocks[CAE_MAX_GBLOCKS];
    SelfAttn attn;          /* built always; used before GBlock dec_attn_index if that block exists */
    BatchNorm bn;           /* ScaledCrossReplicaBN: BatchNorm2d(chn, eps 1e-4) */
    BgSnLayer colorize;     /* (3, chn, 3, 3) + bias: BigAE's last parameter (the adaptive weight's W) */
    int split[CAE_MAX_GBLOCKS + 1];   /* z split sizes: Z - n s, s, ..., s */
} CondDecoder;

void cond_decoder_declare(CondDecoder *dec, const CondAeNetConfig *cfg, const char *prefix);
/* PyTorch defaults (Linear/Conv U(+-1/sqrt(fan_in)) for weights and biases), SN vectors normal draws divided
 * by (|.| + 1e-4), BatchNorm 1, 0 and running statistics 0, 1, attention gamma 0. */
void cond_decoder_init(CondDecoder *dec, Rng *rng);
void cond_decoder_build(CondDecoder *dec, const CondAeNetConfig *cfg, const char *prefix, Rng *rng);
void cond_decoder_free(CondDecoder *dec);

/* Pieces of the decoder, exposed for tests. cond: (N, c); x (N, C, H, W). */
Tensor *bg_sn_weight(Ctx *c, BgSnLayer *l);     /* weight_bar / sigma (one power iteration from the stored u) */
Tensor *cond_batch_norm_forward(Ctx *c, CondBatchNorm *bn, Tensor *x, Tensor *cond);
Tensor *gblock_forward(Ctx *c, GBlock *b, Tensor *x, Tensor *cond);               /* -> (N, cout, 2H, 2W) */
Tensor *self_attn_forward(Ctx *c, SelfAttn *a, Tensor *x);                        /* -> (N, C, H, W) */
/* BigAE.decode: z (N, Z) -> image (N, 3, S, S) in (-1, 1): ClassUp + softmax -> class embedding, z split,
 * G_linear, GBlocks (attention before block sa_id), BatchNorm, ReLU, colorize, tanh. */
Tensor *cond_decoder_forward(Ctx *c, CondDecoder *dec, Tensor *z);

/* ==== training (AE/modules/loss.py Loss, AE/main.py) ================================================== */

/* Every value loss.py logs, for one step. */
typedef struct CondAeStats {
    double loss;            /* "Loss": nll + w_kl KL + lambda disc_factor g */
    double loss_recon;      /* "Loss_recon": mean of |x - x^| + LPIPS over all N 3 H W elements */
    double loss_nll;        /* "Loss_nll": sum(rec) / N */
    double logvar;          /* "Logvar": the loss module's log-variance, always 0 (in no optimiser) */
    double kl;              /* "L_KL" */
    double loss_g;          /* "Loss_G": -mean D(x^) */
    double disc;            /* "L_disc": disc_factor * hinge loss of D */
    double logits_real;     /* "Logits_real": mean D(x) */
    double logits_fake;     /* "Logits_fake": mean D(x^ detached) */
    double disc_weight;     /* "Disc_weight": the adaptive lambda (0 in evaluation) */
    double disc_factor;     /* "Disc_factor": 0 before Training.pretrain epochs, then 1 */
    double lpips;           /* mean LPIPS over the batch (0 without the perceptual term) */
    double psnr;            /* of x^ against x, data range 2 (not logged officially) */
} CondAeStats;

typedef struct CondAe {
    CondAeConfig cfg;
    CondEncoder enc;
    CondDecoder dec;
    PatchGan disc;
    Lpips lpips;            /* the perceptual loss; used when has_lpips (tests may install a stand-in) */
    int has_lpips;
    Adam opt_ae, opt_d;     /* Adam(lr, (0.9, 0.999), eps 1e-8, weight_decay) each */
    ReduceLROnPlateau sched_ae, sched_d;   /* min, factor 0.5, patience 1, threshold 1e-4 abs, min_lr 1e-8 */
    Rng rng_dropout;        /* LPIPS dropout masks */
    Ctx ctx;
    int lambda_in_warmup;   /* 1 (official): the adaptive weight is computed (and logged) also while
                               disc_factor = 0, where it cannot change the update; 0 skips it there */
    int sized_n;            /* the batch size the arena was last sized for by a dry run (0: none) */
    size_t arena_bytes;
} CondAe;

/* Builds encoder, decoder and PatchGAN (initialised from seed), the optimisers and schedulers. lpips_path:
 * the LPIPS weights (NULL: LPIPS_DEFAULT_PATH), read only when Training.perceptual. Returns 0, or -1 with a
 * message (bad config, missing or bad LPIPS weights). */
int cond_ae_init(CondAe *s, const CondAeConfig *cfg, const char *lpips_path, uint64_t seed, I2vError *e);
void cond_ae_free(CondAe *s);
/* One iteration of loss.py Loss.forward(training=True) on x (N, 3, S, S) in [-1, 1]: AE forward (decoding the
 * posterior mean), reconstruction + LPIPS, KL, nll, generator hinge loss, the adaptive weight
 *     lambda = clamp(|d nll / d W| / (|d g / d W| + 1e-4), 0, 1e4),  W = colorize weight_bar,
 * the AE update with nll + w_kl KL + lambda disc_factor g, then D(x), D(x^ detached) and the discriminator
 * update when d_loss > 0. The AE is in training mode, the PatchGAN and LPIPS always are. recon (N, 3, S, S)
 * receives x^ when not NULL. */
void cond_ae_train_step(CondAe *s, const Tensor *x, int epoch, CondAeStats *st, Tensor *recon);
/* Sizes the arena for training steps on batches shaped like x (the dry run the first step would do) and
 * returns the bytes one step needs beyond the parameters: the arena and the largest workspace. */
size_t cond_ae_plan_step(CondAe *s, const Tensor *x);
/* The same code with training=False, as the validator runs it: AE in eval mode, no gradients and no
 * updates, lambda = 0, but the PatchGAN still in training mode (its power iterations move u and v) and the
 * LPIPS dropout active. */
void cond_ae_eval_step(CondAe *s, const Tensor *x, int epoch, CondAeStats *st, Tensor *recon);
/* End of a training epoch: both plateau schedulers step on the LAST training batch's loss_recon. */
void cond_ae_end_epoch(CondAe *s, double last_loss_recon);

#endif
