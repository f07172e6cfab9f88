/* norm.h: the normalisation layers of i2v as tape ops, each over a pair of raw-array kernels.
 *
 * What it is: group norm (and instance norm, G = C) with its forward-mode tangent for the gradient penalty,
 * ActNorm's per-channel affine map with its data initialisation, batch norm in training and eval mode,
 * PyTorch's spectral normalisation and the BigGAN decoder's own SpectralNorm wrapper.
 * What it is not: the modules around them (SPADE, AdaIN, conditional BN live in ae.c, the cINN's ActNorm
 * block in flow.c); those own the parameters, the `initialized` flags and the order of calls.
 *
 * Dimension legend: N batch, C channels, S = product of the spatial axes (T*H*W, H*W, or 1), G groups,
 * Cout/K the rows/columns of a weight seen as a matrix (K = numel / Cout). Inputs are (N, C, *) with
 * 2 to 5 axes, contiguous. Per-channel parameters and buffers may have any shape with C elements, so the
 * official (1, C, 1, 1) ActNorm parameters are used as they are.
 *
 * Kernels: argument order (outputs, saved values, inputs, parameters, sizes); forwards write (=),
 * backwards accumulate (+=) into every non-NULL gradient they are given. Reductions run in double.
 * Threads: parallel_for over (n, g) groups, channels or row/column blocks; results are deterministic.
 */
#ifndef I2V_NORM_H
#define I2V_NORM_H

#include "tensor.h"

/* ==== group norm (torch.nn.GroupNorm; InstanceNorm2d/3d with affine=False is G = C) ================== */
/* y = (x - mean_ng) * rstd_ng * weight_c + bias_c, mean and biased variance over the (C/G) * S values of
 * group g of sample n, rstd = 1 / sqrt(var + eps).
 *   y, x (N, C, S); mean, rstd (N, G) saved for the backward; weight, bias (C) or NULL (1 and 0). */
void group_norm_forward(real *y, real *mean, real *rstd, const real *x, const real *weight, const real *bias,
                        int N, int C, size_t S, int G, double eps);
/* dx (N, C, S), dweight, dbias (C): each may be NULL; mean, rstd (N, G) from the forward; dy, x (N, C, S). */
void group_norm_backward(real *dx, real *dweight, real *dbias, const real *mean, const real *rstd, const real *dy,
                         const real *x, const real *weight, int N, int C, size_t S, int G);

/* x (N, C, *), weight, bias (C) or NULL -> (N, C, *). C must be a multiple of G. */
Tensor *t_group_norm(Ctx *c, Tensor *x, int G, real eps, Tensor *weight, Tensor *bias);
/* InstanceNorm2d/3d(affine=False, track_running_stats=False), as in AdaIN and the conditioning encoder:
 * x (N, C, *) -> (N, C, *). */
Tensor *t_instance_norm(Ctx *c, Tensor *x, real eps);

/* ---- forward-mode tangent of group norm, for the temporal discriminator's gradient penalty ----------
 * dy = weight_c * rstd * (t - mean_g(t) - xhat * mean_g(xhat * t)), the directional derivative of
 * t_group_norm at x along t = dx (the bias does not move it). A differentiable op: its backward gives
 * the gradients with respect to x, dx and weight.
 *   dy, x, t (N, C, S); saved (4, N, G): mean, rstd, sum_g(t), sum_g(xhat * t); weight (C) or NULL. */
void group_norm_jvp_forward(real *dy, real *saved, const real *x, const real *t, const real *weight, int N, int C,
                            size_t S, int G, double eps);
/* dx, dt (N, C, S), dweight (C), each may be NULL; g = the gradient arriving at dy (N, C, S). */
void group_norm_jvp_backward(real *dx, real *dt, real *dweight, const real *saved, const real *g, const real *x,
                             const real *t, const real *weight, int N, int C, size_t S, int G);
/* x, dx (N, C, *), weight (C) or NULL -> dy (N, C, *). */
Tensor *t_group_norm_jvp(Ctx *c, Tensor *x, Tensor *dx, int G, real eps, Tensor *weight);

/* ==== ActNorm (stage2_cINN/AE/modules/util.py ActNorm; the cINN's and the PatchGAN's) ================ */
/* y = scale_c * (x_c + loc_c).  y, x (N, C, S); loc, scale (C). */
void actnorm_affine_forward(real *y, const real *x, const real *loc, const real *scale, int N, int C, size_t S);
void actnorm_affine_backward(real *dx, real *dloc, real *dscale, const real *dy, const real *x, const real *loc,
                             const real *scale, int N, int C, size_t S);
/* The inverse x = y / scale_c - loc_c (ActNorm.reverse).  x, y (N, C, S). */
void actnorm_affine_inverse_forward(real *x, const real *y, const real *loc, const real *scale, int N, int C,
                                    size_t S);
void actnorm_affine_inverse_backward(real *dy, real *dloc, real *dscale, const real *dx, const real *y,
                                     const real *scale, int N, int C, size_t S);

/* x (N, C, *), loc, scale (C elements, any shape) -> (N, C, *); gradients to x, loc and scale. */
Tensor *t_actnorm(Ctx *c, Tensor *x, Tensor *loc, Tensor *scale);
/* y (N, C, *) -> x = y / scale - loc (N, C, *); gradients to y, loc and scale. */
Tensor *t_actnorm_inverse(Ctx *c, Tensor *y, Tensor *loc, Tensor *scale);
/* The log-determinant of t_actnorm per sample: spatial * sum_c log|scale_c| (0-D; spatial = H*W, 1 for
 * the cINN's vectors). The inverse's is its negative. Built from tape ops, so it has a gradient. */
Tensor *t_actnorm_logdet(Ctx *c, Tensor *scale, size_t spatial);

/* Data initialisation (ActNorm.initialize), not an op: per channel over batch and space,
 * loc = -mean, scale = 1 / (std + 1e-6) with the UNBIASED std (torch .std()).
 *   loc, scale (C); x (N, C, S) with N * S >= 2 (asserted: PyTorch would produce NaN).
 * Returns the number of channels whose std is <= 1e-6, i.e. where the 1e-6 guard rather than the data
 * sets the scale (a constant channel gets scale 1e6, exactly as PyTorch). 0 means a good initialisation;
 * the caller decides whether a non-zero count is fatal (flow.c and the PatchGAN should report it). */
int actnorm_init_data(real *loc, real *scale, const real *x, int N, int C, size_t S);
/* loc, scale (C elements); x (N, C, *). Same return value. Not recorded on the tape. */
int actnorm_init(Tensor *loc, Tensor *scale, const Tensor *x);

/* ==== batch norm (torch.nn.BatchNorm2d/3d) ============================================================ */
/* use_batch_stats = 1 (training, or no running statistics): mean and biased variance over (N, S) per
 * channel normalise x; running_mean/var (if not NULL) become (1 - momentum) * old + momentum * new with
 * the UNBIASED variance. use_batch_stats = 0 (eval): mean = running_mean, rstd from running_var.
 *   y, x (N, C, S); mean, rstd (C) saved; running_mean, running_var (C) or NULL; weight, bias (C) or NULL. */
void batch_norm_forward(real *y, real *mean, real *rstd, real *running_mean, real *running_var, const real *x,
                        const real *weight, const real *bias, int N, int C, size_t S, double eps, double momentum,
                        int use_batch_stats);
/* dx (N, C, S), dweight, dbias (C), each may be NULL. With use_batch_stats the gradient flows through the
 * batch statistics; in eval mode the statistics are constants. */
void batch_norm_backward(real *dx, real *dweight, real *dbias, const real *mean, const real *rstd, const real *dy,
                         const real *x, const real *weight, int N, int C, size_t S, int use_batch_stats);

/* Mode from c->training. x (N, C, *) with N * S >= 2 in training; weight, bias (C) or NULL; running_mean,
 * running_var (C, real buffers) or both NULL (track_running_stats=False: batch statistics in both modes);
 * num_batches_tracked (0-D DT_I64 buffer) or NULL, incremented once per training call. eps 1e-5
 * (torchvision) or 1e-4 (BigGAN decoder); momentum 0.1. A dry run updates nothing. */
Tensor *t_batch_norm(Ctx *c, Tensor *x, Tensor *weight, Tensor *bias, Tensor *running_mean, Tensor *running_var,
                     Tensor *num_batches_tracked, real eps, real momentum);

/* ==== spectral normalisation (torch.nn.utils.spectral_norm: dim 0, 1 power iteration, eps 1e-12) ====== */
/* One power iteration in place, without gradient: v = normalize(W^T u), u = normalize(W v),
 * normalize(a) = a / max(|a|, eps).  u (Cout), v (K), w (Cout, K). */
void spectral_norm_power_iteration(real *u, real *v, const real *w, int Cout, size_t K, double eps);
/* sigma = u . (W v), w = w_orig / sigma.  w, w_orig (Cout, K); sigma (1); u (Cout), v (K). */
void spectral_norm_forward(real *w, real *sigma, const real *w_orig, const real *u, const real *v, int Cout,
                           size_t K);
/* u and v constant (torch's spectral_norm does not differentiate through the power iteration): dw_orig += dw / sigma - (sum dw * w_orig) / sigma^2 u v^T. */
void spectral_norm_backward(real *dw_orig, real sigma, const real *u, const real *v, const real *dw,
                            const real *w_orig, int Cout, size_t K);

/* weight_orig (Cout, ...) -> W (Cout, ...) = weight_orig / sigma. u (Cout), v (K) are the buffers
 * weight_u, weight_v. In training mode (c->training, not a dry run) one power iteration first updates u and
 * v in place; the backward uses copies of the u, v this call used, so a layer called twice in one step
 * (real and fake batches) differentiates each call with its own vectors. Gradient to weight_orig only.
 * Call it once per network forward and reuse W for anything else in that forward (e.g. the tangent pass of
 * the gradient penalty): a second training-mode call would run a second power iteration. */
Tensor *t_spectral_norm(Ctx *c, Tensor *weight_orig, Tensor *u, Tensor *v);
/* sigma = u . (W_mat v) with the stored vectors (what eval mode divides by). */
double spectral_norm_sigma(const Tensor *weight_orig, const Tensor *u, const Tensor *v);
/* As SpectralNorm.apply: u = normalize(N(0, 1) draws), then v likewise (eps 1e-12). u (Cout), v (K). */
void spectral_norm_init_uv(Tensor *u, Tensor *v, Rng *r);

/* ---- the BigGAN decoder's SpectralNorm wrapper (stage2_cINN/AE/modules/generator.py) -----------------
 * Every call, in any mode: v = l2n(W^T u), b = W v, u' = l2n(b), sigma = u' . b, W_out = weight_bar / sigma
 * with l2n(a) = a / (|a| + 1e-4). The stored u is never written back and weight_v is never read. Unlike
 * PyTorch's version the iteration is NOT detached in the official code: the gradient flows through v and
 * u' as well, and so it does here (the exact derivative of weight_bar / sigma(weight_bar)).
 *   w, w_bar (Cout, K); a = W^T u (K) and b = W v (Cout) saved; stats (3) = {sigma, |a|, |b|}; u (Cout). */
void spectral_norm_biggan_forward(real *w, real *a, real *b, real *stats, const real *w_bar, const real *u, int Cout,
                                  size_t K);
void spectral_norm_biggan_backward(real *dw_bar, const real *a, const real *b, const real *stats, const real *dw,
                                   const real *w_bar, const real *u, int Cout, size_t K);
/* weight_bar (Cout, ...) -> (Cout, ...); u (Cout) is read only. Gradient to weight_bar. */
Tensor *t_spectral_norm_biggan(Ctx *c, Tensor *weight_bar, Tensor *u);
/* As SpectralNorm._make_params: u, then v, each N(0, 1) draws divided by (|.| + 1e-4); both (Cout). */
void spectral_norm_biggan_init_uv(Tensor *u, Tensor *v, Rng *r);

#endif
