/* cuda.h: the GPU backend of i2v (make CUDA=1), as C functions.
 *
 * What it is: the device (finding it, memory, the one stream every kernel runs on, timing), and a `_cuda`
 * twin of every raw-array kernel the op layer calls, with the CPU kernel's name plus `_cuda` and, as far
 * as the data allows, its arguments: same order, same sizes, pointers into device memory instead of host
 * memory. Forwards write (=), backwards accumulate (+=), as on the CPU. The op layer (tensor.c, the tape
 * ops under ops/ and kernels/) is the only caller: it decides per context which twin runs.
 * What it is not: a tensor library. Nothing here knows a Tensor, a Ctx or the tape. The plain build
 * compiles none of it; its callers sit behind `if (I2V_CUDA && ...)`, which that build never takes.
 *
 * Memory: CUDA managed memory preferring the GPU, so the same pointer is valid on both sides; the GPU keeps
 * it resident while kernels use it, and the host may read it after cuda_sync() (checkpoints, logs).
 * Order: every kernel, copy and library call goes on one stream in program order; the host waits only in
 * cuda_sync(). Reductions are summed in a fixed order that depends on the sizes only (no atomics), and the
 * cuDNN algorithms are chosen among the deterministic ones, so a run repeats bitwise on the same GPU.
 * Scalars the GPU computes (a loss, sigma of a spectral norm) stay on the GPU: where a CPU kernel takes such
 * a scalar by value, its twin takes its address in device memory.
 *
 * Dimension legend as in the CPU headers: N batch, C channels, T frames, H, W, S spatial size, G groups,
 * K a weight's columns, D features.
 */
#ifndef I2V_CUDA_H
#define I2V_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "kernels/conv_geom.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ConvGeom: one convolution or pooling window geometry (kernels/conv_geom.h) */

/* ==== the device ===================================================================================== */
/* Opens GPU 0 (or I2V_CUDA_DEVICE=k): 0 on success; else -1 with the runtime's reason in why (no driver,
 * no device, a device too old for this build). Calling it again after success does nothing. */
int cuda_open(char *why, size_t cap);
const char *cuda_device_name(void);
/* The GPU's peak FP32 arithmetic (TFLOP/s, without tensor cores) and memory bandwidth (GB/s), from its
 * properties, for the benchmark's "fraction of peak"; 0 where the runtime does not say. */
double cuda_peak_tflops(void);
double cuda_peak_bandwidth(void);
/* Free and total device memory (bytes), as the driver reports them. */
void cuda_memory(size_t *free_bytes, size_t *total_bytes);
/* Bytes this process holds through cuda_alloc and the libraries' workspaces: now, and the most so far. */
size_t cuda_allocated(void);
size_t cuda_peak_allocated(void);
void cuda_reset_peak(void);

/* Managed memory preferring the GPU, 256-byte aligned; NULL when the GPU has no room. */
void *cuda_alloc(size_t bytes);
void cuda_free(void *p);
/* Page-locked host memory (the data loader's batches), so uploads run asynchronously. */
void *cuda_alloc_host(size_t bytes);
void cuda_free_host(void *p);
/* On the stream: dst = 0 / dst = src (any two pointers, host or device). */
void cuda_memset0(void *dst, size_t bytes);
void cuda_copy(void *dst, const void *src, size_t bytes);
/* Waits until everything queued so far has run; a kernel's error shows here at the latest. */
void cuda_sync(void);
/* I2V_CUDA_SYNC=1: wait after every kernel, so an error is reported by the kernel that caused it. */
int cuda_debug_sync(void);
/* TF32 tensor cores for the convolutions and GEMMs (I2V_TF32=1 or cuda_set_tf32(1)): about 3 decimal
 * digits per product instead of 7, several times faster. Off by default: the CPU build's numbers. */
void cuda_set_tf32(int on);
int cuda_tf32(void);

/* ---- timing: where the GPU's time goes --------------------------------------------------------------
 * While profiling is on, every twin records a pair of events around its work, labelled with the twin's
 * name and its library (cuBLAS, cuDNN, or our kernels) and counted FLOPs. cuda_profile_report gathers
 * them (it synchronises). */
typedef enum CudaLib { LIB_OWN = 0, LIB_CUBLAS, LIB_CUDNN, LIB_COPY, LIB_COUNT } CudaLib;
typedef struct CudaProfileRow {
    const char *name;
    CudaLib lib;
    double ms;        /* GPU time between the pair of events, summed */
    double flops;     /* arithmetic counted for GEMMs and convolutions (2 per multiply-add) */
    double bytes;     /* memory traffic counted for the memory-bound kernels (the optimiser) */
    long calls;
} CudaProfileRow;
void cuda_profile_start(void);
/* Fills at most cap rows sorted by time (largest first), returns their count; lib_ms[LIB_COUNT] gets the
 * time per library and *total_ms the time between cuda_profile_start and now on the stream. Stops profiling. */
int cuda_profile_report(CudaProfileRow *rows, int cap, double lib_ms[LIB_COUNT], double *total_ms);

/* ==== elementwise (tensor.c) ========================================================================== */
/* kind: tensor.c's UnaryKind (relu, leaky_relu, tanh, sigmoid, exp, log, abs, sqrt, square, clamp, scale,
 * add_scalar), p0 and p1 its constants. y, x, dx, dy (n). */
void unary_forward_cuda(real *y, const real *x, size_t n, int kind, real p0, real p1);
void unary_backward_cuda(real *dx, const real *dy, const real *x, const real *y, size_t n, int kind, real p0,
                         real p1);
/* The tangent f'(x) dx of relu, leaky_relu, tanh, sigmoid and its backward (gx, gdx may be NULL). */
void unary_jvp_forward_cuda(real *y, const real *x, const real *dx, size_t n, int kind, real slope);
void unary_jvp_backward_cuda(real *gx, real *gdx, const real *gy, const real *x, const real *dx, size_t n, int kind,
                             real slope);
/* Inverted dropout with the counter-based mask of tensor.c (the same on both devices): element i is kept
 * when the uniform number of (seed, i) is at least p, and then scaled by 1/(1-p). */
void dropout_forward_cuda(real *y, const real *x, size_t n, real p, uint64_t seed);
void dropout_backward_cuda(real *dx, const real *dy, size_t n, real p, uint64_t seed);
/* Binary ops with NumPy broadcasting on a 5-axis view: shape is the output's, sa and sb the inputs'
 * element strides along each output axis (0 where an input is broadcast). kind: tensor.c's BinaryKind
 * (add, sub, mul, div). The backward adds into the gradient of input `which` (0: a, 1: b), summing over
 * the axes that input is broadcast along. */
void binary_forward_cuda(real *y, const real *a, const real *b, const int shape[5], const size_t sa[5],
                         const size_t sb[5], int kind);
void binary_backward_cuda(real *d, int which, const real *dy, const real *a, const real *b, const int shape[5],
                          const size_t sa[5], const size_t sb[5], int kind);

/* ==== reductions (tensor.c) =========================================================================== */
/* y[o] = scale * sum of the x elements whose 5-axis index maps to o: shape is x's (right-aligned in 5 axes),
 * os the output's strides per x axis (0 along a reduced axis), nout the output's size. Summed in double. */
void reduce_sum_cuda(real *y, const real *x, const int shape[5], const size_t os[5], size_t nout, real scale);
/* dx[i] += scale * dy[o(i)] */
void reduce_backward_cuda(real *dx, const real *dy, const int shape[5], const size_t os[5], real scale);
/* Along the middle axis of x (outer, len, inner). */
void softmax_forward_cuda(real *y, const real *x, size_t outer, int len, size_t inner);
void softmax_backward_cuda(real *dx, const real *dy, const real *y, size_t outer, int len, size_t inner);

/* ==== copies and shapes (tensor.c) ==================================================================== */
/* dst[o * dst_stride + i] (+)= src[o * src_stride + i] for o < rows, i < len: concat, slice, reshape. */
void copy_rows_cuda(real *dst, size_t dst_stride, const real *src, size_t src_stride, size_t rows, size_t len,
                    int accumulate);
/* Permute copy on a 5-axis view: out index (j0..j4) of `shape` (the output's) reads the input at
 * sum j_k stride[k]. to_out = 1: dst (output) = src (input); 0: dst (input) += src (output). */
void permute_copy_cuda(real *dst, const real *src, const int shape[5], const size_t stride[5], int to_out);
/* y (outer, nidx, inner) = x (outer, total, inner) at rows idx (device memory, nidx entries); the backward
 * sums every output row that read a given input row (indices may repeat) in index order. */
void index_select_forward_cuda(real *y, const real *x, const int64_t *idx, size_t outer, int total, int nidx,
                               size_t inner);
void index_select_backward_cuda(real *dx, const real *dy, const int64_t *idx, size_t outer, int total, int nidx,
                                size_t inner);
/* y (rows, cols) += b (cols) on every row; db (cols) += column sums of dy. */
void add_bias_rows_cuda(real *y, const real *b, size_t rows, size_t cols);
void bias_rows_backward_cuda(real *db, const real *dy, size_t rows, size_t cols);

/* ==== GEMM (gemm.h, by cuBLAS) ======================================================================== */
/* Row-major C = alpha op(A) op(B) + beta C with gemm()'s arguments; beta 0 never reads C. */
void gemm_cuda(int ta, int tb, int m, int n, int k, real alpha, const real *A, int lda, const real *B, int ldb,
               real beta, real *C, int ldc);
/* nb products: A + i sA, B + i sB, C + i sC (element strides). */
void gemm_batched_cuda(int ta, int tb, int m, int n, int k, real alpha, const real *A, int lda, size_t sA,
                       const real *B, int ldb, size_t sB, real beta, real *C, int ldc, size_t sC, int nb);

/* ==== losses (tensor.c) =============================================================================== */
/* kind: tensor.c's LossKind (l1, mse, hinge_d_real, hinge_d_fake, hinge_g); b may be NULL (hinge).
 * y (1) = scale * sum_i f(a_i, b_i); the backward reads dy (1) on the device: da += dy scale f'_a,
 * db -= dy scale f'_a. */
void loss_forward_cuda(real *y, const real *a, const real *b, size_t n, int kind, real scale);
void loss_backward_cuda(real *da, real *db, const real *dy, const real *a, const real *b, size_t n, int kind,
                        real scale);
/* KL of N(mu, e^lv) to N(0, 1): y (1) = -0.5 inv_n sum (1 + lv - mu^2 - e^lv). */
void kl_forward_cuda(real *y, const real *mu, const real *lv, size_t n, real inv_n);
void kl_backward_cuda(real *dmu, real *dlv, const real *dy, const real *mu, const real *lv, size_t n, real inv_n);
/* y (rows) = 0.5 sum_d x^2 per row of x (rows, per); dx += dy_row x. */
void gaussian_nll_forward_cuda(real *y, const real *x, size_t rows, size_t per);
void gaussian_nll_backward_cuda(real *dx, const real *dy, const real *x, size_t rows, size_t per);
/* y (rows) = coef * (the number of negative entries in each row of v (rows, per)). */
void count_negative_forward_cuda(real *y, const real *v, size_t rows, size_t per, double coef);

/* ==== convolutions (conv.h, by cuDNN) ================================================================= */
/* ws is not used (cuDNN's workspace is the backend's own). The backward adds into each non-NULL gradient. */
void conv3d_forward_cuda(real *y, const real *x, const real *w, const real *b, const ConvGeom *g, real *ws);
void conv3d_backward_cuda(real *dx, real *dw, real *db, const real *dy, const real *x, const real *w,
                          const ConvGeom *g, real *ws);

/* ==== pooling and resampling (conv.h) ================================================================= */
void maxpool3d_forward_cuda(real *y, const real *x, const ConvGeom *g);
void maxpool3d_backward_cuda(real *dx, const real *dy, const real *x, const ConvGeom *g);
void maxpool3d_jvp_cuda(real *ty, const real *x, const real *tx, const ConvGeom *g);
void avgpool3d_forward_cuda(real *y, const real *x, const ConvGeom *g);
void avgpool3d_backward_cuda(real *dx, const real *dy, const ConvGeom *g);
void upsample_nearest3d_forward_cuda(real *y, const real *x, size_t nc, const int in[3], const int f[3]);
void upsample_nearest3d_backward_cuda(real *dx, const real *dy, size_t nc, const int in[3], const int f[3]);
void resize_bilinear_forward_cuda(real *y, const real *x, size_t nc, int ih, int iw, int oh, int ow);
void resize_bilinear_backward_cuda(real *dx, const real *dy, size_t nc, int ih, int iw, int oh, int ow);

/* ==== normalisations (norm.h) ========================================================================= */
void group_norm_forward_cuda(real *y, real *mean, real *rstd, const real *x, const real *weight, const real *bias,
                             int N, int C, size_t S, int G, double eps);
void group_norm_backward_cuda(real *dx, real *dweight, real *dbias, const real *mean, const real *rstd,
                              const real *dy, const real *x, const real *weight, int N, int C, size_t S, int G);
void group_norm_jvp_forward_cuda(real *dy, real *saved, const real *x, const real *t, const real *weight, int N,
                                 int C, size_t S, int G, double eps);
void group_norm_jvp_backward_cuda(real *dx, real *dt, real *dweight, const real *saved, const real *g,
                                  const real *x, const real *t, const real *weight, int N, int C, size_t S, int G);
void actnorm_affine_forward_cuda(real *y, const real *x, const real *loc, const real *scale, int N, int C, size_t S);
void actnorm_affine_backward_cuda(real *dx, real *dloc, real *dscale, const real *dy, const real *x,
                                  const real *loc, const real *scale, int N, int C, size_t S);
void actnorm_affine_inverse_forward_cuda(real *x, const real *y, const real *loc, const real *scale, int N, int C,
                                         size_t S);
void actnorm_affine_inverse_backward_cuda(real *dy, real *dloc, real *dscale, const real *dx, const real *y,
                                          const real *scale, int N, int C, size_t S);
void batch_norm_forward_cuda(real *y, real *mean, real *rstd, real *running_mean, real *running_var, const real *x,
                             const real *weight, const real *bias, int N, int C, size_t S, double eps,
                             double momentum, int use_batch_stats);
void batch_norm_backward_cuda(real *dx, real *dweight, real *dbias, const real *mean, const real *rstd,
                              const real *dy, const real *x, const real *weight, int N, int C, size_t S,
                              int use_batch_stats);
void spectral_norm_power_iteration_cuda(real *u, real *v, const real *w, int Cout, size_t K, double eps);
/* sigma (1) in device memory: written by the forward, read by the backward. */
void spectral_norm_forward_cuda(real *w, real *sigma, const real *w_orig, const real *u, const real *v, int Cout,
                                size_t K);
void spectral_norm_backward_cuda(real *dw_orig, const real *sigma, const real *u, const real *v, const real *dw,
                                 const real *w_orig, int Cout, size_t K);
/* sigma (1) = u . (W v) alone (ae.c's spectral norm on the output side). */
void spectral_norm_sigma_cuda(real *sigma, const real *w, const real *u, const real *v, int Cout, size_t K);
/* dw (Cout, K) += dsigma (1, device) u v^T: the gradient of sigma = u . W v. */
void spectral_sigma_backward_cuda(real *dw, const real *dsigma, const real *u, const real *v, int Cout, size_t K);
/* stats (3) in device memory. */
void spectral_norm_biggan_forward_cuda(real *w, real *a, real *b, real *stats, const real *w_bar, const real *u,
                                       int Cout, size_t K);
void spectral_norm_biggan_backward_cuda(real *dw_bar, const real *a, const real *b, const real *stats,
                                        const real *dw, const real *w_bar, const real *u, int Cout, size_t K);

/* ==== the SPADE / AdaIN modulation (ae.c): y = lrelu(GroupNorm(x) (scale + one) + shift) ============== */
/* x, y (N, C, T, HW); scale, shift (N, C, P) with P = HW (SPADE) or 1 (AdaIN); mean, rstd (N, G). */
void norm_modulate_lrelu_forward_cuda(real *y, real *mean, real *rstd, const real *x, const real *scale,
                                      const real *shift, int N, int C, int T, size_t HW, size_t P, int G, double eps,
                                      real one, real slope);
void norm_modulate_lrelu_backward_cuda(real *dx, real *dscale, real *dshift, const real *dy, const real *x,
                                       const real *scale, const real *shift, const real *mean, const real *rstd,
                                       int N, int C, int T, size_t HW, size_t P, int G, real one, real slope);

/* ==== Adam / AMSGrad (optim.h): one fused pass over a block of parameters ============================== */
/* g = grad + wd p; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; [vmax = max(vmax, v)];
 * p -= step_size m / (sqrt(v or vmax) / sqrt_bc2 + eps). vmax NULL without AMSGrad. */
void adam_update_cuda(real *p, const real *grad, real *m, real *v, real *vmax, size_t n, double beta1, double beta2,
                      double eps, double weight_decay, double step_size, double sqrt_bc2);

#ifdef __cplusplus
}
#endif

#endif
