/* linalg.c: double-precision matrix product, pivoted Cholesky and symmetric eigenvalues (linalg.h).
 *
 * What it is: the numerics under the Frechet distance, written for clarity first: a cache-blocked i-k-j
 * product whose inner loop the compiler vectorises, the textbook outer-product pivoted Cholesky, and the
 * two-step symmetric eigenvalue method (Golub & Van Loan, "Matrix Computations", 8.3: Householder
 * tridiagonalisation, then implicit symmetric QL steps with Wilkinson's shift).
 * What it is not: a tuned BLAS; the float GEMM in gemm.c serves the networks.
 * Dimension legend: m, n, k matrix sizes; r a rank. */
#include "kernels/linalg.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/threads.h"
#include "tensor.h"

/* ---- matrix product ------------------------------------------------------------------------------- */
#define DMM_KB 256    /* k-block: a panel of B rows stays in L2 while a row block of C is formed */
#define DMM_ROWS 16   /* rows of C per task */

typedef struct DmmJob {
    int m, n, k;
    const double *A, *B;  /* row-major (m, k) and (k, n), contiguous */
    double *C;
    int ldc;
} DmmJob;

static void dmm_task(void *arg, int part, int thread) {
    (void)thread;
    const DmmJob *j = arg;
    int i0 = part * DMM_ROWS, i1 = i0 + DMM_ROWS < j->m ? i0 + DMM_ROWS : j->m;
    for (int i = i0; i < i1; i++) memset(j->C + (size_t)i * j->ldc, 0, (size_t)j->n * sizeof(double));
    for (int k0 = 0; k0 < j->k; k0 += DMM_KB) {
        int k1 = k0 + DMM_KB < j->k ? k0 + DMM_KB : j->k;
        for (int i = i0; i < i1; i++) {
            double *c = j->C + (size_t)i * j->ldc;
            const double *a = j->A + (size_t)i * j->k;
            for (int kk = k0; kk < k1; kk++) {
                double s = a[kk];
                const double *b = j->B + (size_t)kk * j->n;
                for (int x = 0; x < j->n; x++) c[x] += s * b[x];
            }
        }
    }
}

/* A copy of op(X) as a contiguous row-major (rows, cols) matrix. */
static double *dense_copy(int t, int rows, int cols, const double *X, int ld) {
    double *d = xmalloc((size_t)rows * cols * sizeof(double) + 1);
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) d[(size_t)r * cols + c] = t ? X[(size_t)c * ld + r] : X[(size_t)r * ld + c];
    return d;
}

void dmatmul(int ta, int tb, int m, int n, int k, const double *A, int lda, const double *B, int ldb, double *C,
             int ldc) {
    I2V_ASSERT(m >= 0 && n >= 0 && k >= 0 && ldc >= n, "dmatmul sizes m %d n %d k %d ldc %d", m, n, k, ldc);
    if (m == 0 || n == 0) return;
    double *a = dense_copy(ta, m, k, A, lda), *b = dense_copy(tb, k, n, B, ldb);
    DmmJob j = {m, n, k, a, b, C, ldc};
    parallel_for((m + DMM_ROWS - 1) / DMM_ROWS, dmm_task, &j);
    free(a);
    free(b);
}

/* ---- pivoted Cholesky ----------------------------------------------------------------------------- */
/* Outer-product form: at step j pick the largest remaining diagonal, swap it to position j, take column j
 * of L from it, and subtract that column's outer product from the trailing block. */
int pivoted_cholesky(double *a, int n, double tol, double *f, int ldf) {
    I2V_ASSERT(n >= 1 && ldf >= n, "pivoted_cholesky n %d ldf %d", n, ldf);
    int *perm = xmalloc((size_t)n * sizeof(int));
    for (int i = 0; i < n; i++) perm[i] = i;
    double dmax = 0;
    for (int i = 0; i < n; i++)
        if (a[(size_t)i * n + i] > dmax) dmax = a[(size_t)i * n + i];
    if (tol < 0) tol = n * DBL_EPSILON * dmax;
    /* mirror the lower triangle so rows can be swapped as whole rows and columns */
    for (int i = 0; i < n; i++)
        for (int c = i + 1; c < n; c++) a[(size_t)i * n + c] = a[(size_t)c * n + i];
    int r = 0;
    for (; r < n; r++) {
        int p = r;
        for (int i = r + 1; i < n; i++)
            if (a[(size_t)i * n + i] > a[(size_t)p * n + p]) p = i;
        double piv = a[(size_t)p * n + p];
        if (!(piv > tol)) break;
        if (p != r) {   /* symmetric swap of rows and columns r and p */
            for (int c = 0; c < n; c++) {
                double t = a[(size_t)r * n + c];
                a[(size_t)r * n + c] = a[(size_t)p * n + c];
                a[(size_t)p * n + c] = t;
            }
            for (int i = 0; i < n; i++) {
                double t = a[(size_t)i * n + r];
                a[(size_t)i * n + r] = a[(size_t)i * n + p];
                a[(size_t)i * n + p] = t;
            }
            int t = perm[r];
            perm[r] = perm[p];
            perm[p] = t;
        }
        double s = sqrt(piv);
        /* column r of L: a[i][r] / s for i >= r; stored back into a's column r */
        for (int i = r; i < n; i++) a[(size_t)i * n + r] /= s;
        for (int i = r + 1; i < n; i++) {
            double li = a[(size_t)i * n + r];
            double *row = a + (size_t)i * n;
            for (int c = r + 1; c < n; c++) row[c] -= li * a[(size_t)c * n + r];
        }
    }
    /* F = P L: row perm[i] of F is row i of L (columns 0..r-1, upper part zero) */
    for (int i = 0; i < n; i++) {
        double *dst = f + (size_t)perm[i] * ldf;
        for (int c = 0; c < r; c++) dst[c] = c <= i ? a[(size_t)i * n + c] : 0;
    }
    free(perm);
    return r;
}

/* ---- symmetric eigenvalues ----------------------------------------------------------------------- */
typedef struct TriJob {
    double *a;            /* (n, n), the trailing block [k1, n) is being reduced */
    const double *v, *q;  /* Householder vector and the update vector */
    int n, k1;
    double beta;
    double *p;            /* matvec output */
    int rows_per;
} TriJob;

static void tri_matvec_task(void *arg, int part, int thread) {
    (void)thread;
    const TriJob *j = arg;
    int i0 = j->k1 + part * j->rows_per, i1 = i0 + j->rows_per < j->n ? i0 + j->rows_per : j->n;
    for (int i = i0; i < i1; i++) {
        const double *row = j->a + (size_t)i * j->n;
        double s = 0;
        for (int c = j->k1; c < j->n; c++) s += row[c] * j->v[c];
        j->p[i] = j->beta * s;
    }
}

static void tri_update_task(void *arg, int part, int thread) {
    (void)thread;
    const TriJob *j = arg;
    int i0 = j->k1 + part * j->rows_per, i1 = i0 + j->rows_per < j->n ? i0 + j->rows_per : j->n;
    for (int i = i0; i < i1; i++) {
        double *row = j->a + (size_t)i * j->n;
        double vi = j->v[i], qi = j->q[i];
        for (int c = j->k1; c < j->n; c++) row[c] -= vi * j->q[c] + qi * j->v[c];
    }
}

/* Householder tridiagonalisation (Golub & Van Loan, Algorithm 8.3.1): for k = 0 .. n-3, the reflector
 * H = I - beta v v^T that zeroes a[k+2.., k] is applied from both sides to the trailing block as the
 * symmetric rank-2 update A <- A - v q^T - q v^T with p = beta A v, q = p - (beta p.v / 2) v.
 * d (n) gets the diagonal, e (n) the sub-diagonal (e[i] couples i and i+1; e[n-1] = 0). */
static void tridiagonalise(double *a, int n, double *d, double *e) {
    double *v = xmalloc(3 * (size_t)n * sizeof(double)), *p = v + n, *q = p + n;
    int nth = threads_count();
    for (int k = 0; k + 2 < n; k++) {
        int k1 = k + 1;
        /* x = a[k1.., k]; v = x + sign(x0) |x| e0 (so no cancellation) */
        double norm2 = 0, scale = 0;
        for (int i = k1; i < n; i++) scale = fmax(scale, fabs(a[(size_t)i * n + k]));
        if (scale == 0) {
            e[k] = 0;
            continue;
        }
        for (int i = k1; i < n; i++) {
            v[i] = a[(size_t)i * n + k] / scale;
            norm2 += v[i] * v[i];
        }
        double alpha = sqrt(norm2);
        if (v[k1] < 0) alpha = -alpha;
        v[k1] += alpha;                                   /* v^T v = 2 alpha v[k1] */
        double beta = 1 / (alpha * v[k1]);
        e[k] = -alpha * scale;                            /* H x = -alpha |x|/.. e0, back in x's scale */
        TriJob j = {a, v, q, n, k1, beta, p, 0};
        int rows = n - k1, parts = nth < rows / 32 ? nth : (rows / 32 ? rows / 32 : 1);
        j.rows_per = (rows + parts - 1) / parts;
        parts = (rows + j.rows_per - 1) / j.rows_per;
        parallel_for(parts, tri_matvec_task, &j);
        double pv = 0;
        for (int i = k1; i < n; i++) pv += p[i] * v[i];
        double K = beta * pv / 2;
        for (int i = k1; i < n; i++) q[i] = p[i] - K * v[i];
        parallel_for(parts, tri_update_task, &j);
    }
    for (int i = 0; i < n; i++) d[i] = a[(size_t)i * n + i];
    if (n >= 2) e[n - 2] = a[(size_t)(n - 1) * n + (n - 2)];
    e[n - 1] = 0;
    free(v);
}

static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* Implicit QL on the tridiagonal (d, e) (Golub & Van Loan 8.3.3, the QL variant): for each l, find the
 * first negligible e[m] at or after l; if m > l, chase a bulge from m up to l with Givens rotations,
 * shifted by the eigenvalue of the leading 2x2 block closer to d[l] (Wilkinson), until e[l] vanishes. */
static int tridiagonal_ql(double *d, double *e, int n) {
    /* an off-diagonal is negligible beside its neighbours' diagonal or, when those are tiny (eigenvalues
     * near 0), beside the matrix as a whole: the reduction's rounding (eps |A|) is already that large */
    double anorm = 0;
    for (int i = 0; i < n; i++) anorm = fmax(anorm, fabs(d[i]) + fabs(e[i]) + (i ? fabs(e[i - 1]) : 0));
    for (int l = 0; l < n; l++) {
        for (int iter = 0;; iter++) {
            int m = l;
            for (; m < n - 1; m++)
                if (fabs(e[m]) <= DBL_EPSILON * (fabs(d[m]) + fabs(d[m + 1])) || fabs(e[m]) <= DBL_EPSILON * anorm)
                    break;
            if (m == l) break;
            if (iter == 30) return -1;
            /* shift: d[l] - the Wilkinson eigenvalue of [[d_l, e_l], [e_l, d_l+1]], set up as g = d_m - shift */
            double g = (d[l + 1] - d[l]) / (2 * e[l]);
            double r = hypot(g, 1.0);
            g = d[m] - d[l] + e[l] / (g + copysign(r, g));
            double s = 1, c = 1, p = 0;
            int i = m - 1, deflated = 0;
            for (; i >= l; i--) {
                double f = s * e[i], b = c * e[i];
                r = hypot(f, g);
                e[i + 1] = r;
                if (r == 0) {   /* an exact zero appeared: the block splits here */
                    d[i + 1] -= p;
                    e[m] = 0;
                    deflated = 1;
                    break;
                }
                s = f / r;
                c = g / r;
                g = d[i + 1] - p;
                r = (d[i] - g) * s + 2 * c * b;
                p = s * r;
                d[i + 1] = g + p;
                g = c * r - b;
            }
            if (deflated) continue;
            d[l] -= p;
            e[l] = g;
            e[m] = 0;
        }
    }
    qsort(d, (size_t)n, sizeof(double), cmp_double);
    return 0;
}

int sym_eigvals(double *a, int n, double *w) {
    I2V_ASSERT(n >= 1, "sym_eigvals of a %dx%d matrix", n, n);
    double *e = xmalloc((size_t)n * sizeof(double));
    tridiagonalise(a, n, w, e);
    int rc = tridiagonal_ql(w, e, n);
    free(e);
    return rc;
}
