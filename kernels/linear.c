/* linear.c: the raw-array kernels of the linear layer and the batched matrix product (see linear.h).
 *
 * Not here: the tape ops (tensor.c), nor the weight gradient of a linear layer updated block by block by
 * the optimiser inside the backward pass (tensor.c, backward_update): that is the same GEMM cut in rows.
 * Dimension legend: M rows, Din, Dout features; B products of (M, K) by (K, N).
 */
#include "kernels/linear.h"

#include <stddef.h>

#include "kernels/gemm.h"

void linear_forward(real *y, const real *x, const real *w, const real *b, int M, int din, int dout) {
    gemm(0, 1, M, dout, din, 1, x, din, w, din, 0, y, dout);
    if (b)
        for (int i = 0; i < M; i++)
            for (int j = 0; j < dout; j++) y[(size_t)i * dout + j] += b[j];
}

void linear_backward(real *dx, real *dw, real *db, const real *dy, const real *x, const real *w, int M, int din,
                     int dout, real beta_w) {
    if (dx) gemm(0, 0, M, din, dout, 1, dy, dout, w, din, 1, dx, din);
    if (dw) gemm(1, 0, dout, din, M, 1, dy, dout, x, din, beta_w, dw, din);
    if (db)
        for (int i = 0; i < M; i++)
            for (int j = 0; j < dout; j++) db[j] += dy[(size_t)i * dout + j];
}

void bmm_forward(real *y, const real *a, const real *b, int B, int M, int N, int K, int ta, int tb) {
    int lda = ta ? M : K, ldb = tb ? K : N;
    for (int i = 0; i < B; i++)
        gemm(ta, tb, M, N, K, 1, a + (size_t)i * M * K, lda, b + (size_t)i * K * N, ldb, 0, y + (size_t)i * M * N, N);
}

void bmm_backward(real *da, real *db, const real *dy, const real *a, const real *b, int B, int M, int N, int K,
                  int ta, int tb) {
    size_t sa = (size_t)M * K, sb = (size_t)K * N, sy = (size_t)M * N;
    int lda = ta ? M : K, ldb = tb ? K : N;
    for (int i = 0; i < B; i++) {
        const real *g = dy + i * sy;
        if (da) {
            if (!ta) gemm(0, !tb, M, K, N, 1, g, N, b + i * sb, ldb, 1, da + i * sa, lda);   /* (M, K) */
            else gemm(tb, 1, K, M, N, 1, b + i * sb, ldb, g, N, 1, da + i * sa, lda);        /* (K, M) */
        }
        if (db) {
            if (!tb) gemm(!ta, 0, K, N, M, 1, a + i * sa, lda, g, N, 1, db + i * sb, ldb);   /* (K, N) */
            else gemm(1, ta, N, K, M, 1, g, N, a + i * sa, lda, 1, db + i * sb, ldb);        /* (N, K) */
        }
    }
}
