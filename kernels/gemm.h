/* gemm.h: matrix multiplication, the kernel every heavy op lowers to.
 *
 * gemm is the BLIS-structured, packed, SIMD kernel; gemm_naive is the triple loop kept forever as the
 * test oracle. Both are row-major: op(A) is m x k, op(B) is k x n, C is m x n.
 *   ta == 0: A is m x k with row stride lda;  ta == 1: A is k x m (so op(A) = A^T) with row stride lda.
 *   tb == 0: B is k x n with row stride ldb;  tb == 1: B is n x k with row stride ldb.
 * C = alpha op(A) op(B) + beta C. With beta == 0, C is never read (it may hold NaN). With k == 0 or
 * alpha == 0, A and B are not read either (C = beta C, as in BLAS).
 * gemm splits C across the pool; each element is summed in the same order whatever the thread count, so
 * the result is bitwise the same for any I2V_THREADS. Called from inside a parallel_for task, it runs on
 * the calling thread alone (kernels/threads.h). Packing buffers are per thread and kept between calls.
 */
#ifndef I2V_GEMM_H
#define I2V_GEMM_H

#include "base/base.h"

void gemm(int ta, int tb, int m, int n, int k, real alpha, const real *A, int lda, const real *B, int ldb,
          real beta, real *C, int ldc);
/* C[t] = alpha op(A) op(B[t]) + beta C[t] for t < nb: nb products that share A, which is packed once per
 * block for all of them instead of once per product (the shifted convolution's weight gradient: one dy
 * frame against every tap's shifted input). Same sizes and strides for every product. */
void gemm_shared_a(int ta, int tb, int m, int n, int k, real alpha, const real *A, int lda,
                   const real *const *B, int ldb, real beta, real *const *C, int ldc, int nb);
/* The width of the GEMM's column panels: a caller that may compute a few columns past n (into space it
 * owns) rounds n up to a multiple of it, so that no panel is partly empty and packed apart. */
int gemm_panel_width(void);
void gemm_naive(int ta, int tb, int m, int n, int k, real alpha, const real *A, int lda, const real *B,
                int ldb, real beta, real *C, int ldc);

/* dst[c * ldd + r] = src[r * lds + c] for a rows x cols region (GEMM packing and the convolutions). */
void transpose_copy(const real *src, size_t lds, size_t rows, size_t cols, real *dst, size_t ldd);

#endif
