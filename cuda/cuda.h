/* cuda.h: the GPU backend of i2v (make CUDA=1), as C functions.
 *
 * What it is: the device (finding it, memory, the one stream every kernel runs on, timing), and a `_cuda`
 * twin of every raw-array kernel the op layer calls, with the CPU kernel's name plus `_cuda` and, as far
 * as the data allows, its arguments: same order, same sizes, pointers into device memory instead of host
 * memory. Forwards write (=), backwards accumulate (+=), as on the CPU. The op layer (tensor.c and ops/) is
 * the only caller: it decides per context which kernel runs.
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
#include "kernels/conv_geom.h"    /* ConvGeom */
#include "kernels/elementwise.h"  /* BroadcastPlan */
#include "kernels/formulas.h"     /* AdamHyper */
#include "kernels/reduce.h"       /* ReducePlan */
#include "kernels/shape.h"        /* PermutePlan */

#ifdef __cplusplus
extern "C" {
#endif


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
/* What cuda_alloc may still hand out: the memory free when the GPU was opened (less a margin for the
 * libraries) minus what this process holds. */
size_t cuda_available(void);
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

/* ==== elementwise (kernels/elementwise.h) ============================================================= */
void unary_forward_cuda(real *y, const real *x, size_t n, int kind, real p0, real p1);
void unary_backward_cuda(real *dx, const real *dy, const real *x, const real *y, size_t n, int kind, real p0,
                         real p1);
void unary_jvp_forward_cuda(real *y, const real *x, const real *dx, size_t n, int kind, real slope);
void unary_jvp_backward_cuda(real *gx, real *gdx, const real *g, const real *x, const real *dx, size_t n, int kind,
                             real slope);
void dropout_forward_cuda(real *y, const real *x, size_t n, real p, uint64_t seed);
void dropout_backward_cuda(real *dx, const real *dy, size_t n, real p, uint64_t seed);
/* The backward sums, for each element of a broadcast input, every output element it was broadcast to. */
void binary_forward_cuda(real *y, const real *a, const real *b, const BroadcastPlan *p, int kind);
void binary_backward_cuda(real *da, real *db, const real *dy, const real *a, const real *b, const BroadcastPlan *p,
                          int kind);

/* ==== reductions (kernels/reduce.h) =================================================================== */
/* acc is not used (the sums are the GPU's own, in double). */
void sum_forward_cuda(real *y, double *acc, const real *x, const ReducePlan *r, real scale);
void sum_backward_cuda(real *dx, const real *dy, const ReducePlan *r, real scale);
void softmax_forward_cuda(real *y, const real *x, size_t outer, int len, size_t inner);
void softmax_backward_cuda(real *dx, const real *dy, const real *y, size_t outer, int len, size_t inner);
void count_negative_forward_cuda(real *y, const real *x, int rows, size_t len, double weight);

/* ==== shapes and copies (kernels/shape.h) ============================================================= */
void permute_forward_cuda(real *y, const real *x, const PermutePlan *p);
void permute_backward_cuda(real *dx, const real *dy, const PermutePlan *p);
void concat_forward_cuda(real *y, const real *x, size_t outer, size_t row, size_t start, size_t len);
void concat_backward_cuda(real *dx, const real *dy, size_t outer, size_t row, size_t start, size_t len);
void slice_forward_cuda(real *y, const real *x, size_t outer, int total, int start, int len, size_t inner);
void slice_backward_cuda(real *dx, const real *dy, size_t outer, int total, int start, int len, size_t inner);
/* idx (nidx) in device memory; the backward gathers repeated indices in index order. */
void index_select_forward_cuda(real *y, const real *x, const int64_t *idx, int nidx, size_t outer, int total,
                               size_t inner);
void index_select_backward_cuda(real *dx, const real *dy, const int64_t *idx, int nidx, size_t outer, int total,
                                size_t inner);
void reshape_backward_cuda(real *dx, const real *dy, size_t n);

/* ==== GEMMs (kernels/gemm.h, kernels/linear.h), by cuBLAS ============================================ */
/* Row-major C = alpha op(A) op(B) + beta C with gemm()'s arguments; beta 0 never reads C. */
void gemm_cuda(int ta, int tb, int m, int n, int k, real alpha, const real *A, int lda, const real *B, int ldb,
               real beta, real *C, int ldc);
void linear_forward_cuda(real *y, const real *x, const real *w, const real *b, int M, int din, int dout);
void linear_backward_cuda(real *dx, real *dw, real *db, const real *dy, const real *x, const real *w, int M, int din,
                          int dout, real beta_w);
void bmm_forward_cuda(real *y, const real *a, const real *b, int B, int M, int N, int K, int ta, int tb);
void bmm_backward_cuda(real *da, real *db, const real *dy, const real *a, const real *b, int B, int M, int N, int K,
                       int ta, int tb);

/* ==== losses (kernels/loss.h): the 0-D results and the incoming gradients stay on the GPU ============== */
void loss_forward_cuda(real *y, const real *a, const real *b, size_t n, int kind, real scale);
void loss_backward_cuda(real *da, real *db, const real *dy, const real *a, const real *b, size_t n, int kind,
                        real scale);
void kl_normal_forward_cuda(real *y, const real *mu, const real *lv, size_t n, real inv_n);
void kl_normal_backward_cuda(real *dmu, real *dlv, const real *dy, const real *mu, const real *lv, size_t n,
                             real inv_n);
void gaussian_nll_forward_cuda(real *y, const real *x, int N, size_t D);
void gaussian_nll_backward_cuda(real *dx, const real *dy, const real *x, int N, size_t D);

/* ==== convolutions (kernels/conv.h), by cuDNN ========================================================= */
/* ws is not used (cuDNN's workspace is the backend's own). The backward adds into each non-NULL gradient. */
void conv3d_forward_cuda(real *y, const real *x, const real *w, const real *b, const ConvGeom *g, real *ws);
void conv3d_backward_cuda(real *dx, real *dw, real *db, const real *dy, const real *x, const real *w,
                          const ConvGeom *g, real *ws);

/* ==== pooling and resampling (kernels/pool.h) ========================================================= */
void maxpool3d_forward_cuda(real *y, const real *x, const ConvGeom *g);
void maxpool3d_backward_cuda(real *dx, const real *dy, const real *x, const ConvGeom *g);
void maxpool3d_jvp_cuda(real *ty, const real *x, const real *tx, const ConvGeom *g);
void avgpool3d_forward_cuda(real *y, const real *x, const ConvGeom *g);
void avgpool3d_backward_cuda(real *dx, const real *dy, const ConvGeom *g);
void upsample_nearest3d_forward_cuda(real *y, const real *x, size_t nc, const int in[3], const int f[3]);
void upsample_nearest3d_backward_cuda(real *dx, const real *dy, size_t nc, const int in[3], const int f[3]);
void resize_bilinear_forward_cuda(real *y, const real *x, size_t nc, int ih, int iw, int oh, int ow);
void resize_bilinear_backward_cuda(real *dx, const real *dy, size_t nc, int ih, int iw, int oh, int ow);
void global_avgpool_forward_cuda(real *y, const real *x, size_t nc, size_t len);
void global_avgpool_backward_cuda(real *dx, const real *dy, size_t nc, size_t len);

/* ==== normalisations (kernels/norm.h) ================================================================= */
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
/* sigma (1) in device memory: written by the forward, read by the backward (the CPU's takes its value). */
void spectral_norm_forward_cuda(real *w, real *sigma, const real *w_orig, const real *u, const real *v, int Cout,
                                size_t K);
void spectral_norm_backward_cuda(real *dw_orig, const real *sigma, const real *u, const real *v, const real *dw,
                                 const real *w_orig, int Cout, size_t K);
void spectral_norm_sigma_forward_cuda(real *sigma, const real *w, const real *u, const real *v, int Cout, size_t K);
void spectral_norm_sigma_backward_cuda(real *dw, const real *dsigma, const real *u, const real *v, int Cout,
                                       size_t K);
/* stats (3) in device memory. */
void spectral_norm_biggan_forward_cuda(real *w, real *a, real *b, real *stats, const real *w_bar, const real *u,
                                       int Cout, size_t K);
void spectral_norm_biggan_backward_cuda(real *dw_bar, const real *a, const real *b, const real *stats,
                                        const real *dw, const real *w_bar, const real *u, int Cout, size_t K);

/* ==== the SPADE / AdaIN modulation (kernels/modulate.h) ================================================ */
void norm_modulate_lrelu_forward_cuda(real *y, real *mean, real *rstd, const real *x, const real *scale,
                                      const real *shift, int N, int C, int T, size_t HW, size_t P, int G, double eps,
                                      real one, real slope);
void norm_modulate_lrelu_backward_cuda(real *dx, real *dscale, real *dshift, const real *mean, const real *rstd,
                                       const real *dy, const real *x, const real *scale, const real *shift, int N,
                                       int C, int T, size_t HW, size_t P, int G, real one, real slope);

/* ==== Adam / AMSGrad (kernels/adam.h): one fused pass over a block of parameters ========================= */
void adam_update_cuda(real *p, const real *g, real *m, real *v, real *vmax, size_t n, const AdamHyper *h);

#ifdef __cplusplus
}
#endif

#endif
