/* gemm.cu: gemm()'s GPU twin, by cuBLAS.
 *
 * What it is: the row-major GEMM of kernels/gemm.h (same arguments, same meaning of ta, tb, lda, beta) on
 * cuBLAS, which is column-major: a row-major m x n matrix with row stride ld is the column-major n x m matrix
 * with leading dimension ld, its transpose. So C = op(A) op(B) is computed as C^T = op(B)^T op(A)^T, which is
 * cuBLAS's product of B and A with the same transpose flags, sizes (n, m, k) and strides.
 * What it is not: our own GEMM kernel (cuBLAS is the field's standard, as it is for llm.c and PyTorch).
 *
 * Numbers: FP32 (or FP64 in the double build) arithmetic; TF32 tensor cores only with cuda_set_tf32(1).
 * cuBLAS gives the same bits run to run on one GPU with one stream, which is how i2v calls it.
 */
#include <cublas_v2.h>

#include "cuda/common.cuh"

static cublasHandle_t g_handle;
static int g_handle_tf32 = -1;   /* the math mode the handle was last given */

static void cublas_check(cublasStatus_t st, const char *call) {
    if (st != CUBLAS_STATUS_SUCCESS) i2v_fail(__FILE__, __LINE__, call, "cuBLAS error %d", (int)st);
}

static cublasHandle_t handle(void) {
    if (!g_handle) {
        cublas_check(cublasCreate(&g_handle), "cublasCreate");
        cublas_check(cublasSetStream(g_handle, cuda_stream()), "cublasSetStream");
    }
    if (g_handle_tf32 != cuda_tf32()) {
        g_handle_tf32 = cuda_tf32();
        cublas_check(cublasSetMathMode(g_handle, g_handle_tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH),
                     "cublasSetMathMode");
    }
    return g_handle;
}

void gemm_cuda(int ta, int tb, int m, int n, int k, real alpha, const real *A, int lda, const real *B, int ldb,
               real beta, real *C, int ldc) {
    if (m == 0 || n == 0) return;
    cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    int prof = prof_begin("gemm", LIB_CUBLAS, 2.0 * m * n * k);
#ifdef I2V_DOUBLE
    cublas_check(cublasDgemm(handle(), opb, opa, n, m, k, &alpha, B, ldb, A, lda, &beta, C, ldc), "cublasDgemm");
#else
    cublas_check(cublasSgemm(handle(), opb, opa, n, m, k, &alpha, B, ldb, A, lda, &beta, C, ldc), "cublasSgemm");
#endif
    prof_end(prof);
    cuda_launched("gemm");
}

/* nb products: A + i sA, B + i sB, C + i sC (element strides) */
static void gemm_batched(int ta, int tb, int m, int n, int k, real alpha, const real *A, int lda, size_t sA,
                         const real *B, int ldb, size_t sB, real beta, real *C, int ldc, size_t sC, int nb) {
    if (m == 0 || n == 0 || nb == 0) return;
    cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    int prof = prof_begin("gemm_batched", LIB_CUBLAS, 2.0 * m * n * k * nb);
#ifdef I2V_DOUBLE
    cublas_check(cublasDgemmStridedBatched(handle(), opb, opa, n, m, k, &alpha, B, ldb, (long long)sB, A, lda,
                                           (long long)sA, &beta, C, ldc, (long long)sC, nb),
                 "cublasDgemmStridedBatched");
#else
    cublas_check(cublasSgemmStridedBatched(handle(), opb, opa, n, m, k, &alpha, B, ldb, (long long)sB, A, lda,
                                           (long long)sA, &beta, C, ldc, (long long)sC, nb),
                 "cublasSgemmStridedBatched");
#endif
    prof_end(prof);
    cuda_launched("gemm_batched");
}

/* ---- the linear layer and the batched product (kernels/linear.c's arithmetic, by cuBLAS) ---------------------- */

void linear_forward_cuda(real *y, const real *x, const real *w, const real *b, int M, int din, int dout) {
    gemm_cuda(0, 1, M, dout, din, 1, x, din, w, din, 0, y, dout);
    if (b) add_bias_rows_cuda(y, b, (size_t)M, (size_t)dout);
}

void linear_backward_cuda(real *dx, real *dw, real *db, const real *dy, const real *x, const real *w, int M, int din,
                          int dout, real beta_w) {
    if (dx) gemm_cuda(0, 0, M, din, dout, 1, dy, dout, w, din, 1, dx, din);
    if (dw) gemm_cuda(1, 0, dout, din, M, 1, dy, dout, x, din, beta_w, dw, din);
    if (db) bias_rows_backward_cuda(db, dy, (size_t)M, (size_t)dout);
}

void bmm_forward_cuda(real *y, const real *a, const real *b, int B, int M, int N, int K, int ta, int tb) {
    int lda = ta ? M : K, ldb = tb ? K : N;
    gemm_batched(ta, tb, M, N, K, 1, a, lda, (size_t)M * K, b, ldb, (size_t)K * N, 0, y, N, (size_t)M * N, B);
}

void bmm_backward_cuda(real *da, real *db, const real *dy, const real *a, const real *b, int B, int M, int N, int K,
                       int ta, int tb) {
    size_t sa = (size_t)M * K, sb = (size_t)K * N, sy = (size_t)M * N;
    int lda = ta ? M : K, ldb = tb ? K : N;
    if (da && !ta) gemm_batched(0, !tb, M, K, N, 1, dy, N, sy, b, ldb, sb, 1, da, lda, sa, B);   /* (M, K) */
    if (da && ta) gemm_batched(tb, 1, K, M, N, 1, b, ldb, sb, dy, N, sy, 1, da, lda, sa, B);     /* (K, M) */
    if (db && !tb) gemm_batched(!ta, 0, K, N, M, 1, a, lda, sa, dy, N, sy, 1, db, ldb, sb, B);   /* (K, N) */
    if (db && tb) gemm_batched(1, ta, N, K, M, 1, dy, N, sy, a, lda, sa, 1, db, ldb, sb, B);     /* (N, K) */
}
