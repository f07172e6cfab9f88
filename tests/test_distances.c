/* test_distances.c: the double-precision linear algebra (kernels/linalg.c) and the distances between
 * feature sets (program/distances.c). Eigenvalues of matrices whose spectrum is known; the pivoted
 * Cholesky factor of full-rank and singular matrices; the matrix product against the triple loop; the
 * Frechet distance against closed forms for Gaussians with known covariances (commuting, non-commuting
 * 2 x 2, singular) and against the official scipy sqrtm path on full-rank and rank-deficient sets
 * (tests/data/distances, written by tools/make_distance_reference.py); frequency weights as repeated rows;
 * KID against its closed form; the bootstrap's determinism. */
#include <math.h>
#include <string.h>

#include "check.h"
#include "tensor.h"
#include "formats/npy.h"
#include "kernels/gemm.h"
#include "kernels/threads.h"
#include "kernels/linalg.h"
#include "program/distances.h"

static Rng rng;

/* a (n, n) = Q diag(lam) Q^T with a random orthogonal Q (Gram-Schmidt of a Gaussian matrix) */
static void random_spectrum(double *a, int n, const double *lam) {
    double *q = xmalloc((size_t)n * n * sizeof(double));
    for (int i = 0; i < n * n; i++) q[i] = rng_normal(&rng);
    for (int i = 0; i < n; i++) {          /* rows of q orthonormal */
        for (int j = 0; j < i; j++) {
            double dot = 0;
            for (int k = 0; k < n; k++) dot += q[i * n + k] * q[j * n + k];
            for (int k = 0; k < n; k++) q[i * n + k] -= dot * q[j * n + k];
        }
        double nr = 0;
        for (int k = 0; k < n; k++) nr += q[i * n + k] * q[i * n + k];
        for (int k = 0; k < n; k++) q[i * n + k] /= sqrt(nr);
    }
    for (int r = 0; r < n; r++)
        for (int c = 0; c < n; c++) {
            double s = 0;
            for (int k = 0; k < n; k++) s += q[k * n + r] * lam[k] * q[k * n + c];
            a[r * n + c] = s;
        }
    free(q);
}

static int cmpd(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void test_eigen(void) {
    /* the (n, n) second-difference matrix: eigenvalues 2 - 2 cos(k pi / (n + 1)) */
    int n = 37;
    double *a = xcalloc((size_t)n * n, sizeof(double)), *w = xmalloc((size_t)n * sizeof(double));
    for (int i = 0; i < n; i++) {
        a[i * n + i] = 2;
        if (i) a[i * n + i - 1] = a[(i - 1) * n + i] = -1;
    }
    check(sym_eigvals(a, n, w) == 0, "second-difference matrix converges");
    double err = 0;
    for (int k = 1; k <= n; k++) err = fmax(err, fabs(w[k - 1] - (2 - 2 * cos(k * I2V_PI / (n + 1)))));
    check(err < 1e-13, "second-difference eigenvalues 2 - 2 cos(k pi / (n+1)): max error %.3g", err);
    free(a), free(w);
    /* dense matrices with chosen spectra: spread, repeated, zero and negative eigenvalues */
    int sizes[] = {1, 2, 5, 64, 130};
    for (int s = 0; s < 5; s++) {
        n = sizes[s];
        double *lam = xmalloc((size_t)n * sizeof(double));
        a = xmalloc((size_t)n * n * sizeof(double));
        w = xmalloc((size_t)n * sizeof(double));
        for (int i = 0; i < n; i++) lam[i] = i % 3 == 0 ? 0 : i % 3 == 1 ? pow(10, (i % 7) - 3) : -(double)(i % 5);
        if (n >= 5) lam[1] = lam[4] = 2.5;   /* a repeated eigenvalue */
        random_spectrum(a, n, lam);
        qsort(lam, (size_t)n, sizeof(double), cmpd);
        check(sym_eigvals(a, n, w) == 0, "n = %d converges", n);
        err = 0;
        for (int i = 0; i < n; i++) err = fmax(err, fabs(w[i] - lam[i]));
        check(err < 1e-12 * n, "eigenvalues of Q diag(lam) Q^T, n = %d: max error %.3g", n, err);
        free(lam), free(a), free(w);
    }
    /* two diagonal blocks: the columns below the first block are zero, so those steps reflect nothing */
    n = 9;
    a = xcalloc((size_t)n * n, sizeof(double));
    w = xmalloc((size_t)n * sizeof(double));
    double want[9] = {-3, -1, 0.5, 1, 2, 4, 5, 7, 8};
    for (int i = 0; i < n; i++) a[i * n + i] = want[(i * 4) % 9];
    a[1 * n + 0] = a[0 * n + 1] = 0;   /* already diagonal: every x is zero */
    check(sym_eigvals(a, n, w) == 0 && !memcmp(w, want, sizeof want), "a diagonal matrix: its diagonal, sorted");
    free(a), free(w);
    /* the same bits from 1 and 2 threads, at a size where the rows are split */
    n = 300;
    double *lam = xmalloc((size_t)n * sizeof(double)), *w2 = xmalloc((size_t)n * sizeof(double));
    a = xmalloc((size_t)n * n * sizeof(double));
    double *a2 = xmalloc((size_t)n * n * sizeof(double));
    w = xmalloc((size_t)n * sizeof(double));
    for (int i = 0; i < n; i++) lam[i] = (i % 11) - 3.5;
    random_spectrum(a, n, lam);
    memcpy(a2, a, (size_t)n * n * sizeof(double));
    int saved = threads_count();
    threads_set(1);
    sym_eigvals(a, n, w);
    threads_set(2);
    sym_eigvals(a2, n, w2);
    threads_set(saved);
    qsort(lam, (size_t)n, sizeof(double), cmpd);
    err = 0;
    for (int i = 0; i < n; i++) err = fmax(err, fabs(w[i] - lam[i]));
    check(err < 1e-12 * n && !memcmp(w, w2, (size_t)n * sizeof(double)),
          "n = 300: max error %.3g, the same bits from 1 and 2 threads", err);
    free(lam), free(a), free(a2), free(w), free(w2);
}

static void test_cholesky(void) {
    /* a = B B^T with B (n, r): rank r; the factor reproduces a and reveals r */
    int cases[][2] = {{6, 6}, {9, 4}, {40, 13}, {3, 1}};
    for (int t = 0; t < 4; t++) {
        int n = cases[t][0], r = cases[t][1];
        double *b = xmalloc((size_t)n * r * sizeof(double)), *a = xmalloc((size_t)n * n * sizeof(double));
        double *a0 = xmalloc((size_t)n * n * sizeof(double)), *f = xmalloc((size_t)n * n * sizeof(double));
        for (int i = 0; i < n * r; i++) b[i] = rng_normal(&rng);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) {
                double s = 0;
                for (int k = 0; k < r; k++) s += b[i * r + k] * b[j * r + k];
                a[i * n + j] = a0[i * n + j] = s;
            }
        int got = pivoted_cholesky(a, n, -1, f, n);
        double err = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) {
                double s = 0;
                for (int k = 0; k < got; k++) s += f[i * n + k] * f[j * n + k];
                err = fmax(err, fabs(s - a0[i * n + j]));
            }
        check(got == r && err < 1e-12 * n, "pivoted Cholesky of a rank-%d %dx%d matrix: rank %d, |F F^T - a| %.3g", r,
              n, n, got, err);
        free(b), free(a), free(a0), free(f);
    }
    /* a size where the columns are split over threads: the same factor from 1 and 2 threads */
    int n = 400, r = 310;
    double *b = xmalloc((size_t)n * r * sizeof(double)), *a = xmalloc((size_t)n * n * sizeof(double));
    double *a2 = xmalloc((size_t)n * n * sizeof(double)), *a0 = xmalloc((size_t)n * n * sizeof(double));
    double *f = xmalloc((size_t)n * n * sizeof(double)), *f2 = xmalloc((size_t)n * n * sizeof(double));
    for (int i = 0; i < n * r; i++) b[i] = rng_normal(&rng);
    dmatmul_naive(0, 1, n, n, r, b, r, b, r, a, n);
    memcpy(a2, a, (size_t)n * n * sizeof(double));
    memcpy(a0, a, (size_t)n * n * sizeof(double));
    int saved = threads_count();
    threads_set(1);
    int got = pivoted_cholesky(a, n, -1, f, n);
    threads_set(2);
    int got2 = pivoted_cholesky(a2, n, -1, f2, n);
    threads_set(saved);
    double err = 0;
    dmatmul_naive(0, 1, n, n, got, f, n, f, n, a, n);
    for (int i = 0; i < n * n; i++) err = fmax(err, fabs(a[i] - a0[i]));
    int same = got == got2;
    for (int i = 0; i < n && same; i++) same = !memcmp(f + (size_t)i * n, f2 + (size_t)i * n, (size_t)got * sizeof(double));
    check(got == r && err < 1e-12 * n && same, "rank %d of a %dx%d matrix (%d), |F F^T - a| %.3g, the same bits from 1 "
          "and 2 threads", r, n, n, got, err);
    free(b), free(a), free(a2), free(a0), free(f), free(f2);
}

/* max |x - y| / (1 + max |y|) over an (m, n) block with row strides ldx, ldy */
static double max_err(const double *x, int ldx, const double *y, int ldy, int m, int n) {
    double e = 0, big = 0;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            e = fmax(e, fabs(x[(size_t)i * ldx + j] - y[(size_t)i * ldy + j]));
            big = fmax(big, fabs(y[(size_t)i * ldy + j]));
        }
    return e / (1 + big);
}

/* dmatmul against the triple loop (dmatmul_naive) on sizes that are not multiples of its blocks (register
 * tile 6 x 8, tasks of 96 x 256, k-blocks of 256), every transposition, row strides wider than the matrix,
 * C full of NaN (written, never read), the Gram products A^T A and A A^T (the lower tiles mirrored), and the
 * same bits from 1 and 2 threads. */
static void test_matmul(void) {
    const int sizes[][3] = {{1, 1, 1}, {5, 7, 3}, {37, 29, 300}, {97, 257, 513}, {200, 9, 1}, {13, 300, 260}};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        int m = sizes[s][0], n = sizes[s][1], k = sizes[s][2], pad = 3;
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                int lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
                double *A = xmalloc((size_t)(ta ? k : m) * lda * sizeof(double));
                double *B = xmalloc((size_t)(tb ? n : k) * ldb * sizeof(double));
                double *C = xmalloc((size_t)m * ldc * sizeof(double)), *R = xmalloc((size_t)m * n * sizeof(double));
                for (size_t i = 0; i < (size_t)(ta ? k : m) * lda; i++) A[i] = rng_normal(&rng);
                for (size_t i = 0; i < (size_t)(tb ? n : k) * ldb; i++) B[i] = rng_normal(&rng);
                memset(C, 0xff, (size_t)m * ldc * sizeof(double));   /* NaN */
                dmatmul(ta, tb, m, n, k, A, lda, B, ldb, C, ldc);
                dmatmul_naive(ta, tb, m, n, k, A, lda, B, ldb, R, n);
                double err = max_err(C, ldc, R, n, m, n);
                int pad_kept = 1;   /* the columns past n are not C's */
                for (int i = 0; i < m; i++)
                    for (int j = n; j < ldc; j++) pad_kept &= isnan(C[(size_t)i * ldc + j]);
                check(err < 1e-14 * k && pad_kept, "dmatmul %dx%dx%d ta %d tb %d against the triple loop: %.3g", m, n,
                      k, ta, tb, err);
                free(A), free(B), free(C), free(R);
            }
    }
    /* Gram products, at sizes that cross the task tiles' diagonal unevenly */
    int n = 301, k = 203;
    double *X = xmalloc((size_t)n * k * sizeof(double)), *G = xmalloc((size_t)n * n * sizeof(double));
    double *R = xmalloc((size_t)n * n * sizeof(double));
    for (int i = 0; i < n * k; i++) X[i] = rng_normal(&rng);
    for (int t = 0; t < 2; t++) {
        /* t = 0: X (n, k), G = X X^T (n, n); t = 1: X read as (k, n), G = X^T X */
        int ld = t ? n : k;
        memset(G, 0xff, (size_t)n * n * sizeof(double));
        dmatmul(t, !t, n, n, k, X, ld, X, ld, G, n);
        dmatmul_naive(t, !t, n, n, k, X, ld, X, ld, R, n);
        int sym = 1;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < i; j++) sym &= G[(size_t)i * n + j] == G[(size_t)j * n + i];
        check(max_err(G, n, R, n, n, n) < 1e-14 * k && sym, "dmatmul Gram product %s (%dx%d): %.3g, symmetric",
              t ? "A^T A" : "A A^T", n, n, max_err(G, n, R, n, n, n));
    }
    /* the mirrored tiles hold the bits the full product gives: the same product with B a copy of A */
    double *Xc = xmalloc((size_t)n * k * sizeof(double));
    memcpy(Xc, X, (size_t)n * k * sizeof(double));
    dmatmul(0, 1, n, n, k, X, k, X, k, G, n);
    dmatmul(0, 1, n, n, k, X, k, Xc, k, R, n);
    check(!memcmp(G, R, (size_t)n * n * sizeof(double)), "the Gram product's mirrored half is bitwise the full one");
    free(Xc);
    /* k = 0: the empty sum */
    memset(G, 0xff, 4 * sizeof(double));
    dmatmul(0, 0, 2, 2, 0, X, 1, X, 2, G, 2);
    check(G[0] == 0 && G[1] == 0 && G[2] == 0 && G[3] == 0, "dmatmul with k = 0 writes zeros");
    int saved = threads_count();
    threads_set(1);
    dmatmul(0, 0, n, n, k, X, k, X, n, G, n);   /* (n, k) times X read as (k, n) */
    threads_set(2);
    dmatmul(0, 0, n, n, k, X, k, X, n, R, n);
    threads_set(saved);
    check(!memcmp(G, R, (size_t)n * n * sizeof(double)), "dmatmul: 1 and 2 threads give the same bits");
    free(X), free(G), free(R);
}

/* ---- Frechet distance: closed forms ----------------------------------------------------------------- */
static void test_closed_forms(void) {
    /* commuting covariances Q diag(a) Q^T, Q diag(b) Q^T: d^2 = |mu1 - mu2|^2 + sum (sqrt a - sqrt b)^2 */
    int d = 7;
    double a[7] = {4, 1, 0.25, 9, 2, 0, 0.5}, b[7] = {1, 1, 1, 16, 0, 0, 3};
    double mu1[7], mu2[7], want = 0;
    for (int i = 0; i < d; i++) {
        mu1[i] = i * 0.5;
        mu2[i] = 1 - i * 0.25;
        want += (mu1[i] - mu2[i]) * (mu1[i] - mu2[i]) + (sqrt(a[i]) - sqrt(b[i])) * (sqrt(a[i]) - sqrt(b[i]));
    }
    /* the same orthogonal basis for both: build Q once through random_spectrum's seed */
    double *S1 = xmalloc(49 * sizeof(double)), *S2 = xmalloc(49 * sizeof(double));
    Rng keep = rng;
    random_spectrum(S1, d, a);
    rng = keep;
    random_spectrum(S2, d, b);
    double got = frechet_from_stats(mu1, S1, mu2, S2, d);
    check_close(got, want, 1e-12, 1e-12, "commuting covariances (some singular): closed form");
    /* non-commuting 2 x 2: tr sqrt(S1 S2) = sqrt(tr(S1 S2) + 2 sqrt(det S1 det S2)) */
    double P[4] = {2, 0.7, 0.7, 1}, R[4] = {0.5, -0.3, -0.3, 3}, m0[2] = {0, 0}, m1[2] = {1, -2};
    double trPR = P[0] * R[0] + P[1] * R[2] + P[2] * R[1] + P[3] * R[3];
    double det = (P[0] * P[3] - P[1] * P[2]) * (R[0] * R[3] - R[1] * R[2]);
    want = 5 + (P[0] + P[3]) + (R[0] + R[3]) - 2 * sqrt(trPR + 2 * sqrt(det));
    check_close(frechet_from_stats(m0, P, m1, R, 2), want, 1e-13, 1e-13, "non-commuting 2x2 closed form");
    /* singular non-commuting: S1 = u u^T (rank 1): tr sqrt(S1 S2) = sqrt(u^T S2 u) */
    double u[2] = {1.5, -0.5}, U[4] = {u[0] * u[0], u[0] * u[1], u[1] * u[0], u[1] * u[1]};
    double uRu = u[0] * (R[0] * u[0] + R[1] * u[1]) + u[1] * (R[2] * u[0] + R[3] * u[1]);
    want = (U[0] + U[3]) + (R[0] + R[3]) - 2 * sqrt(uRu);
    check_close(frechet_from_stats(m0, U, m0, R, 2), want, 1e-13, 1e-13, "rank-1 covariance: sqrt(u^T S2 u)");
    check_close(frechet_from_stats(m1, R, m1, R, 2), 0, 1e-12, 0, "identical statistics: 0");
    free(S1), free(S2);
}

/* the rows route (fewer rows than dimensions) and the statistics route (pivoted Cholesky) on the same rows:
 * both exact, through different factorisations */
static void test_routes_agree(void) {
    int cases[][3] = {{50, 40, 8}, {12, 15, 30}, {30, 9, 20}};
    for (int t = 0; t < 3; t++) {
        int n1 = cases[t][0], n2 = cases[t][1], d = cases[t][2];
        double *x1 = xmalloc((size_t)n1 * d * sizeof(double)), *x2 = xmalloc((size_t)n2 * d * sizeof(double));
        for (int i = 0; i < n1 * d; i++) x1[i] = rng_normal(&rng) * (1 + i % 3);
        for (int i = 0; i < n2 * d; i++) x2[i] = rng_normal(&rng) + 0.2;
        double *mu = xcalloc(2 * (size_t)d, sizeof(double)), *S = xcalloc(2 * (size_t)d * d, sizeof(double));
        const double *xs[2] = {x1, x2};
        int ns[2] = {n1, n2};
        for (int s = 0; s < 2; s++) {
            for (int i = 0; i < ns[s]; i++)
                for (int k = 0; k < d; k++) mu[s * d + k] += xs[s][i * d + k] / ns[s];
            for (int i = 0; i < ns[s]; i++)
                for (int p = 0; p < d; p++)
                    for (int q = 0; q < d; q++)
                        S[(size_t)s * d * d + p * d + q] +=
                            (xs[s][i * d + p] - mu[s * d + p]) * (xs[s][i * d + q] - mu[s * d + q]) / (ns[s] - 1);
        }
        double rows = frechet_distance(x1, n1, NULL, x2, n2, NULL, d);
        double stats = frechet_from_stats(mu, S, mu + d, S + (size_t)d * d, d);
        /* given as rounded matrices, a rank-deficient covariance has eigenvalues of +-eps |S| where 0 belongs,
         * and the statistics route's trace moves by about their square root; the rows route has no such
         * term (test_shifted_copy, and the 40-digit references below) */
        int deficient = n1 <= d || n2 <= d;
        check_close(rows, stats, 0, deficient ? 1e-8 : 1e-13, "rows route = statistics route");
        free(x1), free(x2), free(mu), free(S);
    }
}

/* A set against a shifted copy of itself: S1 = S2 = S, so d^2 = |shift|^2 + 2 tr S - 2 tr S exactly. With
 * fewer rows than dimensions the centred rows have one direction less than their count: left in, it comes
 * back from the eigen-solver as a rounding-sized eigenvalue whose square root (about 1e-8 tr S) would be
 * added; the factor drops it. */
static void test_shifted_copy(void) {
    int ok = 1;
    double worst = 0;
    for (int t = 0; t < 12; t++) {
        int n = 6 + 3 * t, d = 2 * n + t;
        double *x = xmalloc((size_t)n * d * sizeof(double)), *y = xmalloc((size_t)n * d * sizeof(double));
        double shift2 = 0, trS = 0;
        for (int i = 0; i < n * d; i++) x[i] = rng_normal(&rng) * (1 + i % 5);
        for (int k = 0; k < d; k++) {
            double s = 0.01 * (k % 3);
            shift2 += s * s;
            for (int i = 0; i < n; i++) y[(size_t)i * d + k] = x[(size_t)i * d + k] + s;
        }
        for (int k = 0; k < d; k++) {
            double m = 0, v = 0;
            for (int i = 0; i < n; i++) m += x[(size_t)i * d + k] / n;
            for (int i = 0; i < n; i++) v += (x[(size_t)i * d + k] - m) * (x[(size_t)i * d + k] - m) / (n - 1);
            trS += v;
        }
        double err = fabs(frechet_distance(x, n, NULL, y, n, NULL, d) - shift2) / trS;
        worst = fmax(worst, err);
        ok &= err < 1e-13;
        free(x), free(y);
    }
    check(ok, "a set against its shifted copy, fewer rows than dimensions: |shift|^2 to %.2g tr S", worst);
}

/* ---- against the official code --------------------------------------------------------------------- */
static double *load_features(const char *path, int *n, int *d) {
    NpyArray a;
    I2vError e;
    if (npy_read(path, &a, &e)) {
        check(0, "%s", e.msg);
        return NULL;
    }
    *n = (int)a.shape[0];
    *d = (int)a.shape[1];
    double *x = xmalloc(a.count * sizeof(double));
    for (size_t i = 0; i < a.count; i++) x[i] = a.dtype == NPY_F64 ? ((double *)a.data)[i] : ((float *)a.data)[i];
    npy_free(&a);
    return x;
}

static void test_reference(void) {
    FILE *f = fopen("tests/data/distances/expected.txt", "r");
    if (!check(f != NULL, "tests/data/distances/expected.txt opens")) return;
    char line[512];
    int cases = 0;
    while (fgets(line, sizeof line, f)) {
        char name[64];
        double fd_scipy, fd_eigen, fd_exact, kid_full;
        if (line[0] == '#' ||
            sscanf(line, "%63s %lf %lf %lf %lf", name, &fd_scipy, &fd_eigen, &fd_exact, &kid_full) != 5)
            continue;
        char pa[256], pb[256];
        snprintf(pa, sizeof pa, "tests/data/distances/%s_a.npy", name);
        snprintf(pb, sizeof pb, "tests/data/distances/%s_b.npy", name);
        int n1, n2, d, d2;
        double *a = load_features(pa, &n1, &d), *b = load_features(pb, &n2, &d2);
        if (!a || !b || d != d2) break;
        double fd = frechet_distance(a, n1, NULL, b, n2, NULL, d);
        /* scipy's sqrtm and numpy's eigh route are only this close to the exact value (rank-deficient sets) */
        check_close(fd, fd_scipy, 0, 1e-6, name);
        check_close(fd, fd_eigen, 0, 1e-6, name);
        check_close(fd, fd_exact, 0, 1e-13, name);
        double km, ks;
        kid_score(a, n1, b, n2, d, 3, n1 < n2 ? n1 : n2, 1, &km, &ks);
        if (n1 == n2) {   /* subsets of the whole sets are the sets: the closed form, every time */
            check_close(km, kid_full, 1e-12, is_double_build() ? 1e-10 : 1e-5, name);
            check(ks < 1e-9 * fabs(km) + 1e-12, "%s: KID of identical subsets has std 0 (%g)", name, ks);
        }
        cases++;
        free(a), free(b);
    }
    fclose(f);
    check(cases == 4, "4 reference cases read (%d)", cases);
}

/* KID by hand on a tiny case: x = {0, 1}, y = {2} ... with d = 1: k(x, y) = (xy + 1)^3 */
static void test_kid_small(void) {
    double x[3] = {0, 1, -1}, y[3] = {2, 0.5, 1};
    /* unbiased: (sum_{i!=j} k(xi,xj) + sum_{i!=j} k(yi,yj)) / 6 - 2 sum k(xi,yj) / 9 */
    double sxx = 0, syy = 0, sxy = 0;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
            if (i != j) sxx += pow(x[i] * x[j] + 1, 3), syy += pow(y[i] * y[j] + 1, 3);
            sxy += pow(x[i] * y[j] + 1, 3);
        }
    double want = (sxx + syy) / 6 - 2 * sxy / 9, mean, std;
    kid_score(x, 3, y, 3, 1, 5, 0, 42, &mean, &std);
    check_close(mean, want, 1e-6, 1e-6, "KID of 3 + 3 scalars by hand");
}

/* ---- weights and bootstrap --------------------------------------------------------------------------- */
static void test_weights_and_bootstrap(void) {
    int n = 12, d = 5, rows = 3;
    double *x1 = xmalloc((size_t)n * rows * d * sizeof(double)), *x2 = xmalloc((size_t)n * rows * d * sizeof(double));
    for (int i = 0; i < n * rows * d; i++) x1[i] = rng_normal(&rng), x2[i] = rng_normal(&rng) * 1.3 + 0.1;
    /* weights 0, 1, 2, 3 ... as explicit repeated rows */
    double *w = xmalloc((size_t)n * rows * sizeof(double));
    int total = 0;
    for (int i = 0; i < n * rows; i++) total += (int)(w[i] = (i * 7) % 4);
    double *r1 = xmalloc((size_t)total * d * sizeof(double)), *r2 = xmalloc((size_t)total * d * sizeof(double));
    int at = 0;
    for (int i = 0; i < n * rows; i++)
        for (int c = 0; c < (int)w[i]; c++, at++) {
            memcpy(r1 + (size_t)at * d, x1 + (size_t)i * d, d * sizeof(double));
            memcpy(r2 + (size_t)at * d, x2 + (size_t)i * d, d * sizeof(double));
        }
    check_close(frechet_distance(x1, n * rows, w, x2, n * rows, w, d), frechet_distance(r1, total, NULL, r2, total, NULL, d),
                1e-12, 1e-11, "frequency weights = repeated rows");
    double lo, hi, lo2, hi2;
    frechet_bootstrap(x1, x2, n, rows, d, 200, 249, &lo, &hi);
    frechet_bootstrap(x1, x2, n, rows, d, 200, 249, &lo2, &hi2);
    check(lo == lo2 && hi == hi2 && lo < hi && lo > 0, "bootstrap: same seed, same interval [%g, %g]", lo, hi);
    frechet_bootstrap(x1, x1, n, rows, d, 50, 7, &lo, &hi);
    check(fabs(lo) < 1e-9 && fabs(hi) < 1e-9, "bootstrap of a set against itself: [%g, %g] = 0", lo, hi);
    free(x1), free(x2), free(w), free(r1), free(r2);
}

static void test_check(void) {
    double x[6] = {1, 2, 3, 4, NAN, 6};
    I2vError e;
    check(distances_check(x, 3, 2, 2, "f.npy", &e) != 0 && strstr(e.msg, "f.npy") && strstr(e.msg, "row 2"),
          "a NaN feature is named with its file and row: %s", e.msg);
    check(distances_check(x, 2, 2, 16, "g.npy", &e) != 0 && strstr(e.msg, "at least 16"),
          "too few rows: %s", e.msg);
    check(distances_check(x, 2, 2, 2, "h.npy", &e) == 0, "finite rows pass");
}

int main(void) {
    rng_seed(&rng, 5);
    test_eigen();
    test_cholesky();
    test_matmul();
    test_closed_forms();
    test_routes_agree();
    test_shifted_copy();
    test_reference();
    test_kid_small();
    test_weights_and_bootstrap();
    test_check();
    return check_summary("test_distances");
}
