/* layers.h: the layer helpers the networks share (ae.c, networks/cond_ae.c, networks/patchgan.c).
 *
 * What it is: the official state_dict names of a module's tensors; a convolution (2-D or 3-D) with an
 * optional bias and PyTorch's spectral norm; group norm and batch norm layers with their parameters and
 * buffers; their initialisation as PyTorch's constructors do it; their forward as tape ops.
 * What it is not: the networks' own layers (SPADE, AdaIN, the BigGAN decoder's spectral norm, ActNorm
 * with its data initialisation), which stay with the network that owns them.
 * Dimension legend: N batch, C channels, T frames, H, W; K = Cin kT kH kW (a weight seen as a matrix).
 */
#ifndef I2V_LAYERS_H
#define I2V_LAYERS_H

#include "tensor.h"

/* prefix + "." + suffix: official module paths are short, so a longer one is a bug (asserted). */
#define LAYER_NAME_MAX 256
void layer_name(char name[LAYER_NAME_MAX], const char *prefix, const char *suffix);

/* ---- convolution, optionally spectral-normalised (torch.nn.utils.spectral_norm) ------------------------ */
typedef struct Conv {
    Tensor *weight;        /* (Cout, Cin, kT, kH, kW) or (Cout, Cin, kH, kW): `weight_orig` under spectral norm */
    Tensor *bias;          /* (Cout) or NULL */
    Tensor *u, *v;         /* weight_u (Cout), weight_v (K): spectral norm's buffers, or NULL */
    int stride[3], pad[3]; /* (T, H, W); a 2-D convolution uses the H, W entries */
} Conv;

/* Registers under `prefix` in state_dict order: weight, bias without spectral norm; bias, weight_orig,
 * weight_u, weight_v with it (torch's hook re-registers the weight after the bias). nd: 2 or 3; k, stride,
 * pad per (T, H, W). */
void conv_declare(Conv *l, ParamSet *ps, const char *prefix, int cout, int cin, int nd, const int k[3],
                  const int stride[3], const int pad[3], int bias, int spectral);
/* PyTorch's default weight and bias (ops/init.h init_default), then u and v as SpectralNorm.apply draws them. */
void conv_init_default(Conv *l, Rng *r);
/* The effective weight: weight_orig / sigma (one power iteration first when c->training) or the weight.
 * Call it once per network forward. */
Tensor *conv_weight(Ctx *c, Conv *l);
/* x (N, Cin, [T,] H, W) convolved with the effective weight W (conv_weight, or weight_orig itself for
 * a layer that divides its output by sigma) -> (N, Cout, [T',] H', W'); the bias added if with_bias. */
Tensor *conv_apply(Ctx *c, const Conv *l, Tensor *W, Tensor *x, int with_bias);

/* ---- torch.nn.GroupNorm(groups, C) with affine parameters ------------------------------------------------ */
typedef struct GroupNorm {
    Tensor *weight, *bias; /* (C) */
    int groups;
} GroupNorm;

void group_norm_declare(GroupNorm *n, ParamSet *ps, const char *prefix, int C, int groups);
void group_norm_init(GroupNorm *n);   /* weight 1, bias 0 */
Tensor *group_norm_apply(Ctx *c, const GroupNorm *n, Tensor *x, real eps);   /* x (N, C, *) */

/* ---- torch.nn.BatchNorm2d(C, affine) ------------------------------------------------------------------ */
typedef struct BatchNorm {
    Tensor *weight, *bias;                  /* (C), or NULL when not affine */
    Tensor *running_mean, *running_var;     /* (C) */
    Tensor *num_batches_tracked;            /* I64 () */
} BatchNorm;

/* Registers [weight, bias,] running_mean, running_var, num_batches_tracked under `prefix`. */
void batch_norm_declare(BatchNorm *n, ParamSet *ps, const char *prefix, int C, int affine);
/* weight 1, bias 0, running mean 0 and variance 1, no batches tracked */
void batch_norm_init(BatchNorm *n);
/* Batch statistics in training mode (updating the running ones), the running ones in eval mode (t_batch_norm).
 * x (N, C, *). */
Tensor *batch_norm_apply(Ctx *c, const BatchNorm *n, Tensor *x, real eps, real momentum);

#endif
