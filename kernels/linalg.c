/* linalg.c: double-precision matrix product, pivoted Cholesky and symmetric eigenvalues (linalg.h).
 *
 * What it is: the numerics under the Frechet distance (FID's are 2048 x 2048), written for clarity first
 * and then for the memory hierarchy: a packed, blocked product whose register tile the compiler vectorises
 * (the triple loop beside it is its test oracle), the left-looking pivoted Cholesky, and the two-step
 * symmetric eigenvalue method (Golub & Van Loan, "Matrix Computations", 8.3: Householder
 * tridiagonalisation, then implicit symmetric QL steps with Wilkinson's shift). Work is split over the
 * thread pool by rows or tiles, never by a sum, so the bits do not depend on the thread count.
 * What it is not: a tuned BLAS (no intrinsics; the float GEMM in gemm.c serves the networks), nor LAPACK's
 * blocked factorisations.
 * Dimension legend: m, n, k matrix sizes; r a rank. */
#include "kernels/linalg.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/threads.h"
#include "base/base.h"

/* ---- matrix product ------------------------------------------------------------------------------- */
/* op(X)[r][c] of a row-major X with row stride ld */
static inline double op_at(int t, const double *X, int ld, int r, int c) {
    return t ? X[(size_t)c * ld + r] : X[(size_t)r * ld + c];
}

void dmatmul_naive(int ta, int tb, int m, int n, int k, const double *A, int lda, const double *B, int ldb, double *C,
                   int ldc) {
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int p = 0; p < k; p++) s += op_at(ta, A, lda, i, p) * op_at(tb, B, ldb, p, j);
            C[(size_t)i * ldc + j] = s;
        }
}

/* The blocked product (BLIS's loops, kept few): op(A) and op(B) are packed once into panels, a task forms
 * one DMM_MC x DMM_NC tile of C, and inside it a register tile of DMM_MR x DMM_NR sums over a k-block.
 * The compiler vectorises the register tile (no intrinsics: the SIMD width is the target's). */
#define DMM_MR 6      /* rows of the register tile: 6 x 8 sums are 12 of AVX2's 16 registers */
#define DMM_NR 8      /* columns: two 4-double vectors, or four SSE2 / NEON ones */
#define DMM_KC 256    /* k-block: a DMM_KC x DMM_NR sliver of B (16 KB) stays in L1 while the rows go by */
#define DMM_MC 96     /* rows of C per task: their packed k-block of A (192 KB) stays in L2 */
#define DMM_NC 256    /* columns of C per task: small enough for tiles to share out evenly over threads */

typedef struct DmmJob {
    int m, n, k;
    const double *pa;     /* op(A) packed: panel i (rows i MR ..) is (k, MR), zero rows past m */
    const double *pb;     /* op(B) packed: panel j (columns j NR ..) is (k, NR), zero columns past n */
    double *C;
    int ldc;
    int *tiles;           /* (bi, bj) pairs of the tiles to form */
    /* packing: the source */
    int t, rows, cols, ld, w;
    const double *X;
    double *dst;
} DmmJob;

/* Packs panel `part` of op(X) (rows, cols), w (MR or NR) of its columns at a time, each as (rows, w). */
static void dmm_pack_task(void *arg, int part, int thread) {
    (void)thread;
    const DmmJob *j = arg;
    double *d = j->dst + (size_t)part * j->rows * j->w;
    int c0 = part * j->w;
    for (int r = 0; r < j->rows; r++)
        for (int c = 0; c < j->w; c++) d[(size_t)r * j->w + c] = c0 + c < j->cols ? op_at(j->t, j->X, j->ld, r, c0 + c) : 0;
}

/* Packs op(X) (rows, cols) as ceil(cols / w) panels of (rows, w), the last one padded with zeros. */
static double *dmm_pack(int t, int rows, int cols, const double *X, int ld, int w) {
    int panels = (cols + w - 1) / w;
    double *d = xmalloc((size_t)panels * rows * w * sizeof(double) + 1);
    DmmJob j = {0};
    j.t = t, j.rows = rows, j.cols = cols, j.ld = ld, j.w = w, j.X = X, j.dst = d;
    parallel_for(panels, dmm_pack_task, &j);
    return d;
}

/* acc (MR, NR) = the sum over p < kc of a[p] (MR) times b[p] (NR): the register tile. Written so that the
 * compiler keeps t in registers and broadcasts each a[i] (a row of b loaded once, a[i] read as a scalar). */
static void dmm_kernel(int kc, const double *a, const double *b, double acc[DMM_MR][DMM_NR]) {
    double t[DMM_MR][DMM_NR] = {{0}};
    for (int p = 0; p < kc; p++, a += DMM_MR, b += DMM_NR) {
        double bp[DMM_NR];
        for (int x = 0; x < DMM_NR; x++) bp[x] = b[x];
        for (int i = 0; i < DMM_MR; i++) {
            const double ai = a[i];
            for (int x = 0; x < DMM_NR; x++) t[i][x] += ai * bp[x];
        }
    }
    memcpy(acc, t, sizeof t);
}

static void dmm_tile_task(void *arg, int part, int thread) {
    (void)thread;
    const DmmJob *j = arg;
    int i0 = j->tiles[2 * part] * DMM_MC, c0 = j->tiles[2 * part + 1] * DMM_NC;
    int i1 = i0 + DMM_MC < j->m ? i0 + DMM_MC : j->m, c1 = c0 + DMM_NC < j->n ? c0 + DMM_NC : j->n;
    double acc[DMM_MR][DMM_NR];
    for (int k0 = 0; k0 < j->k; k0 += DMM_KC) {
        int kc = j->k - k0 < DMM_KC ? j->k - k0 : DMM_KC;
        for (int c = c0; c < c1; c += DMM_NR) {
            const double *b = j->pb + ((size_t)(c / DMM_NR) * j->k + k0) * DMM_NR;
            int nc = c1 - c < DMM_NR ? c1 - c : DMM_NR;
            for (int i = i0; i < i1; i += DMM_MR) {
                dmm_kernel(kc, j->pa + ((size_t)(i / DMM_MR) * j->k + k0) * DMM_MR, b, acc);
                int mr = i1 - i < DMM_MR ? i1 - i : DMM_MR;
                /* each element: ((block 0) + block 1) + ..., the same order whatever the tiles' threads */
                for (int r = 0; r < mr; r++) {
                    double *out = j->C + (size_t)(i + r) * j->ldc + c;
                    if (k0 == 0) memcpy(out, acc[r], (size_t)nc * sizeof(double));
                    else
                        for (int x = 0; x < nc; x++) out[x] += acc[r][x];
                }
            }
        }
    }
}

void dmatmul(int ta, int tb, int m, int n, int k, const double *A, int lda, const double *B, int ldb, double *C,
             int ldc) {
    I2V_ASSERT(m >= 0 && n >= 0 && k >= 0 && ldc >= n, "dmatmul sizes m %d n %d k %d ldc %d", m, n, k, ldc);
    if (m == 0 || n == 0) return;
    if (k == 0) {
        for (int i = 0; i < m; i++) memset(C + (size_t)i * ldc, 0, (size_t)n * sizeof(double));
        return;
    }
    /* A^T A or A A^T: C is symmetric, so only the tiles that reach the diagonal or below it are formed and
     * the rest mirrored (a b = b a exactly and the sums run in the same order, so the bits are those the
     * full product would give) */
    int gram = A == B && ta != tb && lda == ldb && m == n;
    /* op(A) (m, k): its rows as panels of MR, i.e. op(A)^T (k, m) packed by columns */
    double *pa = dmm_pack(!ta, k, m, A, lda, DMM_MR), *pb = dmm_pack(tb, k, n, B, ldb, DMM_NR);
    int tm = (m + DMM_MC - 1) / DMM_MC, tn = (n + DMM_NC - 1) / DMM_NC, nt = 0;
    int *tiles = xmalloc((size_t)tm * tn * 2 * sizeof(int));
    for (int bi = 0; bi < tm; bi++)
        for (int bj = 0; bj < tn; bj++)
            if (!gram || bj * DMM_NC < (bi + 1) * DMM_MC) tiles[2 * nt] = bi, tiles[2 * nt + 1] = bj, nt++;
    DmmJob j = {0};
    j.m = m, j.n = n, j.k = k, j.pa = pa, j.pb = pb, j.C = C, j.ldc = ldc, j.tiles = tiles;
    parallel_for(nt, dmm_tile_task, &j);
    if (gram)
        for (int i = 0; i < m; i++)
            for (int c = i + 1; c < n; c++) C[(size_t)i * ldc + c] = C[(size_t)c * ldc + i];
    free(tiles);
    free(pa);
    free(pb);
}

/* ---- pivoted Cholesky ----------------------------------------------------------------------------- */
/* x . y over n elements with 8 running sums (fixed order: the same bits on every thread), so the compiler
 * can keep them in vector registers; a single running sum would wait on each addition. */
static double ddot(const double *x, const double *y, int n) {
    double s[8] = {0};
    int k = 0;
    for (; k + 8 <= n; k += 8)
        for (int l = 0; l < 8; l++) s[l] += x[k + l] * y[k + l];
    for (; k < n; k++) s[k % 8] += x[k] * y[k];
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

typedef struct CholJob {
    const double *arow;   /* row p of a: a[p][q] */
    double *f, *dd;
    const int *rest;      /* the rows not yet pivoted */
    int nrest, j, p, ldf, per;
    double ljj;
} CholJob;

/* column j of the factor for the rows rest[part per ..]: f[q][j] = (a[p][q] - f[q][<j] . f[p][<j]) / f[p][j],
 * and the remaining diagonal dd[q] -= f[q][j]^2 */
static void chol_column_task(void *arg, int part, int thread) {
    (void)thread;
    const CholJob *c = arg;
    const double *fp = c->f + (size_t)c->p * c->ldf;
    int i1 = (part + 1) * c->per < c->nrest ? (part + 1) * c->per : c->nrest;
    for (int i = part * c->per; i < i1; i++) {
        int q = c->rest[i];
        double *fq = c->f + (size_t)q * c->ldf;
        double l = (c->arow[q] - ddot(fq, fp, c->j)) / c->ljj;
        fq[c->j] = l;
        c->dd[q] -= l * l;
    }
}

/* Left-looking (Crout) form, in the rows' own order: at step j the largest remaining diagonal of the Schur
 * complement, dd[p], picks row p; column j of the factor is then row p of a less the dot products of the
 * rows' earlier columns. The rows are never swapped, so f is P L directly; each step reads the factor's
 * rows once, contiguously. */
int pivoted_cholesky(double *a, int n, double tol, double *f, int ldf) {
    I2V_ASSERT(n >= 1 && ldf >= n, "pivoted_cholesky n %d ldf %d", n, ldf);
    double *dd = xmalloc((size_t)n * sizeof(double));
    int *rest = xmalloc((size_t)n * sizeof(int)), *order = xmalloc((size_t)n * sizeof(int));
    double dmax = 0;
    for (int i = 0; i < n; i++) {
        dd[i] = a[(size_t)i * n + i];
        rest[i] = i;
        if (dd[i] > dmax) dmax = dd[i];
    }
    if (tol < 0) tol = n * DBL_EPSILON * dmax;
    /* mirror the lower triangle: row p then holds a[p][q] for every q */
    for (int i = 0; i < n; i++)
        for (int c = i + 1; c < n; c++) a[(size_t)i * n + c] = a[(size_t)c * n + i];
    int nth = threads_count(), nrest = n, r = 0;
    for (; r < n; r++) {
        int at = 0;   /* the first largest, in rest's (deterministic) order */
        for (int i = 1; i < nrest; i++)
            if (dd[rest[i]] > dd[rest[at]]) at = i;
        int p = rest[at];
        if (!(dd[p] > tol)) break;
        rest[at] = rest[--nrest];
        order[r] = p;
        double *fp = f + (size_t)p * ldf;
        fp[r] = sqrt(dd[p]);
        CholJob c = {a + (size_t)p * n, f, dd, rest, nrest, r, p, ldf, nrest, fp[r]};
        /* threads when there is work for them: nrest dot products of length r */
        int parts = (double)nrest * r > 65536 ? nth : 1;
        c.per = (nrest + parts - 1) / parts;
        if (nrest) parallel_for((nrest + c.per - 1) / c.per, chol_column_task, &c);
    }
    /* the pivoted rows are zero past their own column; the rows never pivoted have all r columns */
    for (int k = 0; k < r; k++)
        for (int c = k + 1; c < r; c++) f[(size_t)order[k] * ldf + c] = 0;
    free(dd), free(rest), free(order);
    return r;
}

/* ---- symmetric eigenvalues ----------------------------------------------------------------------- */
typedef struct TriJob {
    double *a;             /* (n, n) */
    const double *u, *w;   /* the previous step's update a -= u w^T + w u^T (zero at the first step) */
    const double *v;       /* this step's Householder vector */
    double *p;             /* p = beta a v */
    double beta;
    int n, k1, per;
} TriJob;

/* Rows [k1 + part per, ..): the previous step's rank-2 update on columns [k1, n), then this step's
 * product p_i = beta a[i][k1..] . v. One pass over each row per step instead of two. */
static void tri_row_task(void *arg, int part, int thread) {
    (void)thread;
    const TriJob *j = arg;
    int i0 = j->k1 + part * j->per, i1 = i0 + j->per < j->n ? i0 + j->per : j->n, len = j->n - j->k1;
    for (int i = i0; i < i1; i++) {
        double *row = j->a + (size_t)i * j->n + j->k1;
        const double *u = j->u + j->k1, *w = j->w + j->k1;
        double ui = j->u[i], wi = j->w[i];
        for (int c = 0; c < len; c++) row[c] -= ui * w[c] + wi * u[c];
        j->p[i] = j->beta * ddot(row, j->v + j->k1, len);
    }
}

/* Householder tridiagonalisation (Golub & Van Loan, Algorithm 8.3.1): for k = 0 .. n-3, the reflector
 * H = I - beta v v^T that zeroes a[k+2.., k] is applied from both sides to the trailing block [k+1, n) as
 * the symmetric rank-2 update A <- A - v q^T - q v^T with p = beta A v, q = p - (beta p.v / 2) v.
 * The update of step k is carried into step k + 1 and made there row by row, just before each row's
 * product with the next v, so each step reads the block once. The update keeps a exactly symmetric
 * (v_i q_c + q_i v_c = v_c q_i + q_c v_i bit for bit), so row k stands for column k.
 * d (n) gets the diagonal, e (n) the sub-diagonal (e[i] couples i and i+1; e[n-1] = 0). */
static void tridiagonalise(double *a, int n, double *d, double *e) {
    /* v, q: this step's; u, w: the previous step's (zero before the first) */
    double *buf = xcalloc(5 * (size_t)n, sizeof(double)), *v = buf, *q = v + n, *p = q + n, *u = p + n, *w = u + n;
    int nth = threads_count();
    for (int i = 0; i < n; i++)   /* the lower triangle is the matrix */
        for (int c = i + 1; c < n; c++) a[(size_t)i * n + c] = a[(size_t)c * n + i];
    for (int k = 0; k + 2 < n; k++) {
        int k1 = k + 1;
        /* row k gets the previous update (columns k ..): its diagonal is final, the rest is x */
        double *rk = a + (size_t)k * n;
        for (int c = k; c < n; c++) rk[c] -= u[k] * w[c] + w[k] * u[c];
        /* x = a[k][k1..]; v = x + sign(x0) |x| e0 (so no cancellation); x = 0 gives v = 0, no reflection */
        double norm2 = 0, scale = 0, beta = 0;
        for (int i = k1; i < n; i++) scale = fmax(scale, fabs(rk[i]));
        for (int i = k1; i < n; i++) {
            v[i] = scale > 0 ? rk[i] / scale : 0;
            norm2 += v[i] * v[i];
        }
        e[k] = 0;
        if (scale > 0) {
            double alpha = sqrt(norm2);
            if (v[k1] < 0) alpha = -alpha;
            v[k1] += alpha;                               /* v^T v = 2 alpha v[k1] */
            beta = 1 / (alpha * v[k1]);
            e[k] = -alpha * scale;                        /* H x = -alpha |x|/.. e0, back in x's scale */
        }
        TriJob j = {a, u, w, v, p, beta, n, k1, 0};
        int rows = n - k1, parts = nth < rows / 32 ? nth : (rows / 32 ? rows / 32 : 1);
        j.per = (rows + parts - 1) / parts;
        parallel_for((rows + j.per - 1) / j.per, tri_row_task, &j);
        double pv = 0;
        for (int i = k1; i < n; i++) pv += p[i] * v[i];
        double K = beta * pv / 2;
        for (int i = k1; i < n; i++) q[i] = p[i] - K * v[i];
        /* this step's update becomes the pending one */
        double *t = u;
        u = v, v = t;
        t = w;
        w = q, q = t;
    }
    /* the last pending update, on the trailing 2 x 2 (or the whole matrix when n < 3: u = w = 0) */
    int k0 = n - 2 > 0 ? n - 2 : 0;
    for (int i = k0; i < n; i++)
        for (int c = k0; c < n; c++) a[(size_t)i * n + c] -= u[i] * w[c] + w[i] * u[c];
    for (int i = 0; i < n; i++) d[i] = a[(size_t)i * n + i];
    if (n >= 2) e[n - 2] = a[(size_t)(n - 1) * n + (n - 2)];
    e[n - 1] = 0;
    free(buf);
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
