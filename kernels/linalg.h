/* linalg.h: dense double-precision linear algebra for the distances between feature sets.
 *
 * What it is: a row-major double matrix product, a pivoted Cholesky factorisation of a positive
 * semi-definite matrix (rank-revealing), and the eigenvalues of a symmetric matrix (Householder reduction
 * to tridiagonal form, then implicit QL with Wilkinson shifts). Double precision always, whatever `real`
 * is: the Frechet distance subtracts large traces and needs the digits.
 * What it is not: LAPACK. No eigenvectors, no general (non-symmetric) matrices.
 * Dimension legend: m, n, k matrix sizes; lda/ldb/ldc row strides. */
#ifndef I2V_LINALG_H
#define I2V_LINALG_H

#include <stddef.h>

/* C (m, n) = op(A) op(B): ta == 0: A is (m, k); ta == 1: A is (k, m). tb == 0: B is (k, n); tb == 1: B is
 * (n, k). C is written, never read. Packed and blocked; tiles of C are split over the thread pool, and each
 * element is summed in the same order whatever the thread count. A Gram product (B the same matrix as A,
 * one of them transposed: A^T A or A A^T) forms only the lower tiles and mirrors them, with the same bits. */
void dmatmul(int ta, int tb, int m, int n, int k, const double *A, int lda, const double *B, int ldb, double *C,
             int ldc);
/* The same by the triple loop, one thread: the test oracle of dmatmul. */
void dmatmul_naive(int ta, int tb, int m, int n, int k, const double *A, int lda, const double *B, int ldb, double *C,
                   int ldc);

/* Pivoted Cholesky of a symmetric positive semi-definite a (n, n) (only the lower triangle is read; a is
 * destroyed): finds P and a lower-trapezoidal L (n, r) with P^T a P = L L^T, stopping when the largest
 * remaining diagonal is <= tol (a rank-deficient matrix gives r < n). Writes the factor of a itself,
 * F = P L, into f (n, r) with row stride ldf >= n (so f f^T = a up to the dropped remainder) and returns
 * r. Negative tol means n * eps * max diag (LAPACK dpstrf's default). */
int pivoted_cholesky(double *a, int n, double tol, double *f, int ldf);

/* Eigenvalues of a symmetric a (n, n) (a is destroyed) into w (n), ascending. Returns 0, or -1 if the QL
 * iteration did not converge (30 iterations per eigenvalue; never seen for finite input). */
int sym_eigvals(double *a, int n, double *w);

#endif
