/* norm.h: the raw-array kernels of i2v's normalisation layers (the tape ops over them are in ops/norm.h).
 *
 * What it is: group norm (and instance norm, G = C) with its forward-mode tangent for the gradient penalty,
 * ActNorm's per-channel affine map with its data initialisation, batch norm in training and eval mode,
 * PyTorch's spectral normalisation and the BigGAN decoder's own SpectralNorm wrapper.
 * What it is not: tensors, the tape, or the modules around them (SPADE, AdaIN, conditional BN live in
 * ae.c and networks/, the cINN's ActNorm block in flow.c).
 *
 * Dimension legend: N batch, C channels, S = product of the spatial axes (T*H*W, H*W, or 1), G groups,
 * Cout/K the rows/columns of a weight seen as a matrix (K = numel / Cout). Arrays are contiguous.
 *
 * Kernels: argument order (outputs, saved values, inputs, parameters, sizes); forwards write (=),
 * backwards accumulate (+=) into every non-NULL gradient they are given. Reductions run in double.
 * Threads: parallel_for over (n, g) groups, channels or row/column blocks; results are deterministic.
 */
#ifndef I2V_NORM_H
#define I2V_NORM_H

#include <stddef.h>

#include "base/base.h"

/* ==== group norm (torch.nn.GroupNorm; InstanceNorm2d/3d with affine=False is G = C) ================== */
/* y = (x - mean_ng) * rstd_ng * weight_c + bias_c, mean and biased variance over the (C/G) * S values of
 * group g of sample n, rstd = 1 / sqrt(var + eps).
 *   y, x (N, C, S); mean, rstd (N, G) saved for the backward; weight, bias (C) or NULL (1 and 0). */
void group_norm_forward(real *y, real *mean, real *rstd, const real *x, const real *weight, const real *bias,
                        int N, int C, size_t S, int G, double eps);
/* dx (N, C, S), dweight, dbias (C): each may be NULL; mean, rstd (N, G) from the forward; dy, x (N, C, S). */
void group_norm_backward(real *dx, real *dweight, real *dbias, const real *mean, const real *rstd, const real *dy,
                         const real *x, const real *weight, int N, int C, size_t S, int G);

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

/* Data initialisation (ActNorm.initialize), not an op: per channel over batch and space,
 * loc = -mean, scale = 1 / (std + 1e-6) with the UNBIASED std (torch .std()).
 *   loc, scale (C); x (N, C, S). With a single value per channel (N * S = 1) the std counts as 0, where
 *   PyTorch would produce NaN.
 * Returns the number of channels whose std is <= 1e-6, i.e. where the 1e-6 guard rather than the data
 * sets the scale (a constant channel gets scale 1e6, exactly as PyTorch). 0 means a good initialisation;
 * the caller decides whether a non-zero count is fatal (flow.c and the PatchGAN should report it). */
int actnorm_init_data(real *loc, real *scale, const real *x, int N, int C, size_t S);

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

/* ==== spectral normalisation (torch.nn.utils.spectral_norm: dim 0, 1 power iteration, eps 1e-12) ====== */
#define SPECTRAL_NORM_EPS 1e-12        /* torch.nn.utils.spectral_norm's eps */
#define SPECTRAL_NORM_BIGGAN_EPS 1e-4  /* the BigGAN decoder's l2normalize (generator.py) */
/* One power iteration in place, without gradient: v = normalize(W^T u), u = normalize(W v),
 * normalize(a) = a / max(|a|, eps).  u (Cout), v (K), w (Cout, K). */
void spectral_norm_power_iteration(real *u, real *v, const real *w, int Cout, size_t K, double eps);
/* sigma = u . (W v), w = w_orig / sigma.  w, w_orig (Cout, K); sigma (1); u (Cout), v (K). */
void spectral_norm_forward(real *w, real *sigma, const real *w_orig, const real *u, const real *v, int Cout,
                           size_t K);
/* sigma = u . (W v) in double.  w (Cout, K), u (Cout), v (K). */
double spectral_norm_sigma_d(const real *w, const real *u, const real *v, int Cout, size_t K);
/* sigma (1) = u . (W v) alone, as a differentiable value: dw (Cout, K) += dsigma[0] u v^T (u, v constant). */
void spectral_norm_sigma_forward(real *sigma, const real *w, const real *u, const real *v, int Cout, size_t K);
void spectral_norm_sigma_backward(real *dw, const real *dsigma, const real *u, const real *v, int Cout, size_t K);
/* u and v constant (torch's spectral_norm does not differentiate through the power iteration):
 * dw_orig += dw / sigma - (sum dw * w_orig) / sigma^2 u v^T. */
void spectral_norm_backward(real *dw_orig, real sigma, const real *u, const real *v, const real *dw,
                            const real *w_orig, int Cout, size_t K);

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

#endif
