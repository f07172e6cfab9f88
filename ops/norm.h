/* norm.h: the normalisation layers of i2v as tape ops, each over a pair of raw-array kernels
 * (kernels/norm.h, which also states the formulas).
 *
 * What it is: group norm (and instance norm, G = C) with its forward-mode tangent for the gradient penalty,
 * ActNorm's per-channel affine map with its data initialisation, batch norm in training and eval mode,
 * PyTorch's spectral normalisation and the BigGAN decoder's own SpectralNorm wrapper, with the
 * initialisation of their buffers.
 * What it is not: the modules around them (SPADE, AdaIN, conditional BN live in ae.c and networks/, the
 * cINN's ActNorm block in flow.c); those own the parameters, the `initialized` flags and the order of calls.
 *
 * Dimension legend: N batch, C channels, S = product of the spatial axes, G groups, Cout/K the rows/columns
 * of a weight seen as a matrix (K = numel / Cout). Inputs are (N, C, *) with 2 to 5 axes. Per-channel
 * parameters and buffers may have any shape with C elements, so the official (1, C, 1, 1) ActNorm
 * parameters are used as they are.
 */
#ifndef I2V_OPS_NORM_H
#define I2V_OPS_NORM_H

#include "tensor.h"

/* ==== group norm (torch.nn.GroupNorm; InstanceNorm2d/3d with affine=False is G = C) ================== */
/* x (N, C, *), weight, bias (C) or NULL -> (N, C, *). C must be a multiple of G. */
Tensor *t_group_norm(Ctx *c, Tensor *x, int G, real eps, Tensor *weight, Tensor *bias);
/* InstanceNorm2d/3d(affine=False, track_running_stats=False), as in AdaIN and the conditioning encoder:
 * x (N, C, *) -> (N, C, *). */
Tensor *t_instance_norm(Ctx *c, Tensor *x, real eps);

/* The forward-mode tangent of t_group_norm at x along dx, differentiable in x, dx and weight (the
 * temporal discriminator's gradient penalty). x, dx (N, C, *), weight (C) or NULL -> dy (N, C, *). */
Tensor *t_group_norm_jvp(Ctx *c, Tensor *x, Tensor *dx, int G, real eps, Tensor *weight);

/* ==== ActNorm (stage2_cINN/AE/modules/util.py ActNorm; the cINN's and the PatchGAN's) ================ */
/* x (N, C, *), loc, scale (C elements, any shape) -> (N, C, *); gradients to x, loc and scale. */
Tensor *t_actnorm(Ctx *c, Tensor *x, Tensor *loc, Tensor *scale);
/* y (N, C, *) -> x = y / scale - loc (N, C, *); gradients to y, loc and scale. */
Tensor *t_actnorm_inverse(Ctx *c, Tensor *y, Tensor *loc, Tensor *scale);
/* The log-determinant of t_actnorm per sample: spatial * sum_c log|scale_c| (0-D; spatial = H*W, 1 for
 * the cINN's vectors). The inverse's is its negative. Built from tape ops, so it has a gradient. */
Tensor *t_actnorm_logdet(Ctx *c, Tensor *scale, size_t spatial);

/* ActNorm.initialize (kernels/norm.h actnorm_init_data): loc, scale (C elements); x (N, C, *). Returns the
 * number of channels the 1e-6 guard set. Not recorded on the tape. */
int actnorm_init(Tensor *loc, Tensor *scale, const Tensor *x);

/* ==== batch norm (torch.nn.BatchNorm2d/3d) ============================================================ */
/* Mode from c->training. x (N, C, *) with N * S >= 2 in training; weight, bias (C) or NULL; running_mean,
 * running_var (C, real buffers) or both NULL (track_running_stats=False: batch statistics in both modes);
 * num_batches_tracked (0-D DT_I64 buffer) or NULL, incremented once per training call. eps 1e-5
 * (torchvision) or 1e-4 (BigGAN decoder); momentum 0.1. A dry run updates nothing. */
Tensor *t_batch_norm(Ctx *c, Tensor *x, Tensor *weight, Tensor *bias, Tensor *running_mean, Tensor *running_var,
                     Tensor *num_batches_tracked, real eps, real momentum);

/* ==== spectral normalisation (torch.nn.utils.spectral_norm: dim 0, 1 power iteration, eps 1e-12) ====== */
/* weight_orig (Cout, ...) -> W (Cout, ...) = weight_orig / sigma. u (Cout), v (K) are the buffers
 * weight_u, weight_v. In training mode (c->training, not a dry run) one power iteration first updates u and
 * v in place; the backward uses copies of the u, v this call used, so a layer called twice in one step
 * (real and fake batches) differentiates each call with its own vectors. Gradient to weight_orig only.
 * Call it once per network forward and reuse W for anything else in that forward (e.g. the tangent pass of
 * the gradient penalty): a second training-mode call would run a second power iteration. */
Tensor *t_spectral_norm(Ctx *c, Tensor *weight_orig, Tensor *u, Tensor *v);
/* sigma = u . (W_mat v) as a 0-D tensor, after one power iteration in training mode, as t_spectral_norm
 * computes it: conv(x, weight_orig / sigma) = conv(x, weight_orig) / sigma, so a layer whose weight is
 * larger than its output divides the output instead. Gradient to weight_orig: dsigma u v^T with this
 * call's u, v. */
Tensor *t_spectral_norm_sigma(Ctx *c, Tensor *weight_orig, Tensor *u, Tensor *v);
/* sigma = u . (W_mat v) with the stored vectors (what eval mode divides by). */
double spectral_norm_sigma(const Tensor *weight_orig, const Tensor *u, const Tensor *v);
/* As SpectralNorm.apply: u = normalize(N(0, 1) draws), then v likewise (eps 1e-12). u (Cout), v (K). */
void spectral_norm_init_uv(Tensor *u, Tensor *v, Rng *r);

/* ---- the BigGAN decoder's SpectralNorm wrapper (stage2_cINN/AE/modules/generator.py) ----------------- */
/* weight_bar (Cout, ...) -> (Cout, ...); u (Cout) is read only. Gradient to weight_bar. */
Tensor *t_spectral_norm_biggan(Ctx *c, Tensor *weight_bar, Tensor *u);
/* As SpectralNorm._make_params: u, then v, each N(0, 1) draws divided by (|.| + 1e-4); both (Cout). */
void spectral_norm_biggan_init_uv(Tensor *u, Tensor *v, Rng *r);

/* ==== SPADE's and AdaIN's normalise-modulate-activate step, fused (kernels/modulate.h) ================= */
/* y = lrelu_slope(GroupNorm_G(x) (scale + one) + shift), the group norm without affine parameters (eps):
 * x (N, C, T, H, W); scale, shift (N, C, 1, H, W) (SPADE, one = 1) or (N, C, 1, 1, 1) (AdaIN with G = C,
 * one = 0), repeated over T -> (N, C, T, H, W). Gradients to x, scale and shift; keeps only x and the group
 * statistics for the backward. */
Tensor *t_norm_modulate_lrelu(Ctx *c, Tensor *x, int G, real eps, Tensor *scale, Tensor *shift, real one, real slope);

#endif
