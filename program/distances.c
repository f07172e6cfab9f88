/* distances.c: Frechet distance, KID and bootstrap intervals between feature sets (distances.h).
 *
 * What it is: the official metric code's distances, computed in double precision without scipy's sqrtm.
 * The Frechet distance needs tr sqrt(S1^1/2 S2 S1^1/2) = sum of sqrt(eigenvalues of F1^T S2 F1) for any
 * factor F1 with F1 F1^T = S1 (the nonzero eigenvalues of F1^T S2 F1 and of S1 S2 are the same). Two
 * factors are at hand: the scaled, centred rows themselves, A1 (r1, d) with S1 = A1^T A1, which makes the
 * problem r1 x r2 (fewer clips than dimensions: FVD, DTFVD); or a pivoted Cholesky factor of S1 (d, d)
 * when there are more rows than dimensions (FID). Either way the matrix whose eigenvalues are taken is
 * symmetric positive semi-definite, so the result is real and exact up to rounding; scipy's sqrtm of the
 * non-symmetric S1 S2 is an approximation of it (small imaginary parts, lost digits when S1 S2 is singular).
 * What it is not: the feature networks, or the protocols deciding which features are compared.
 * Dimension legend: n rows (clips or frames), d feature dimension, r rows of nonzero weight. */
#include "program/distances.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/gemm.h"
#include "kernels/linalg.h"
#include "tensor.h"

int distances_check(const double *x, int n, int d, int min_rows, const char *label, I2vError *e) {
    if (n < min_rows)
        return err_set(e, "%s: %d feature rows, expected at least %d (a covariance needs 2; a protocol's batch "
                          "needs more)", label, n, min_rows);
    if (d < 1) return err_set(e, "%s: feature dimension %d, expected at least 1", label, d);
    for (size_t i = 0; i < (size_t)n * d; i++)
        if (!isfinite(x[i]))
            return err_set(e, "%s: row %zu, column %zu holds %g, expected finite features", label, i / d, i % d,
                           x[i]);
    return 0;
}

/* Weighted mean (d) and a factor A (r - 1, d) of the unbiased covariance, A^T A = S, r = rows of nonzero
 * weight. The scaled centred rows y_i = sqrt(w_i / (W - 1)) (x_i - mu) give A^T A = S with r rows, but
 * they are orthogonal to s = (sqrt(w_i)) (the weighted deviations sum to 0): a direction in which the
 * eigen-solver would see a rounding-sized eigenvalue instead of 0, whose square root (about sqrt(eps) |S|)
 * would be added to the trace. A Householder reflection H with H s along e_0 keeps the Gram matrix
 * (H is orthogonal) and makes row 0 s^T Y / |s| = 0; that row is dropped. Returns r - 1. */
static int centred_rows(const double *x, int n, const double *w, int d, double *mu, double *A) {
    double W = 0;
    memset(mu, 0, (size_t)d * sizeof(double));
    for (int i = 0; i < n; i++) {
        double wi = w ? w[i] : 1;
        if (wi == 0) continue;
        W += wi;
        for (int k = 0; k < d; k++) mu[k] += wi * x[(size_t)i * d + k];
    }
    I2V_ASSERT(W > 1, "a covariance of %g rows", W);
    for (int k = 0; k < d; k++) mu[k] /= W;
    int r = 0;
    double *u = xmalloc((size_t)n * sizeof(double));   /* s / |s|, then the reflector's vector */
    for (int i = 0; i < n; i++) {
        double wi = w ? w[i] : 1;
        if (wi == 0) continue;
        double s = sqrt(wi / (W - 1));
        for (int k = 0; k < d; k++) A[(size_t)r * d + k] = s * (x[(size_t)i * d + k] - mu[k]);
        u[r++] = sqrt(wi / W);
    }
    /* H = I - u u^T / (1 + s0) with u = s/|s| + e_0 (s0 > 0: no cancellation); H Y = Y - u (u^T Y) / (1 + s0) */
    double beta = 1 / (1 + u[0]);
    u[0] += 1;
    double *t = xcalloc((size_t)d, sizeof(double));
    for (int i = 0; i < r; i++)
        for (int k = 0; k < d; k++) t[k] += u[i] * A[(size_t)i * d + k];
    for (int i = 1; i < r; i++)
        for (int k = 0; k < d; k++) A[(size_t)(i - 1) * d + k] = A[(size_t)i * d + k] - beta * u[i] * t[k];
    free(u);
    free(t);
    return r - 1;
}

/* sum of sqrt of the eigenvalues of the symmetric PSD m (n, n); rounding's tiny negative ones count 0 */
static double trace_sqrt_psd(double *m, int n) {
    if (n == 0) return 0;
    double *w = xmalloc((size_t)n * sizeof(double));
    int rc = sym_eigvals(m, n, w);
    I2V_ASSERT(rc == 0, "the eigenvalue iteration did not converge on a %dx%d matrix", n, n);
    double s = 0;
    for (int i = 0; i < n; i++) s += w[i] > 0 ? sqrt(w[i]) : 0;
    free(w);
    return s;
}

static double sq_dist(const double *a, const double *b, int d) {
    double s = 0;
    for (int k = 0; k < d; k++) s += (a[k] - b[k]) * (a[k] - b[k]);
    return s;
}

/* tr sqrt(S1^1/2 S2 S1^1/2) from a factor F1 (d, r) of S1 and the rows A2 (r2, d) of S2 = A2^T A2:
 * the eigenvalues of F1^T S2 F1 = B^T B with B = A2 F1 (r2, r), or of B B^T, which has the same nonzero
 * ones: the smaller of the two, which has no zero eigenvalue by construction (the larger one has |r - r2|,
 * and rounding would make them tiny positive numbers with non-negligible square roots). */
static double trace_sqrt_factored(const double *F1, int r, const double *A2, int r2, int d) {
    int m = r < r2 ? r : r2;
    double *B = xmalloc(((size_t)r2 * r + 1) * sizeof(double)), *M = xmalloc(((size_t)m * m + 1) * sizeof(double));
    dmatmul(0, 0, r2, r, d, A2, d, F1, r, B, r);
    if (r <= r2) dmatmul(1, 0, r, r, r2, B, r, B, r, M, r);
    else dmatmul(0, 1, r2, r2, r, B, r, B, r, M, r2);
    double t = trace_sqrt_psd(M, m);
    free(B);
    free(M);
    return t;
}

double frechet_distance(const double *x1, int n1, const double *w1, const double *x2, int n2, const double *w2,
                        int d) {
    double *mu1 = xmalloc(2 * (size_t)d * sizeof(double)), *mu2 = mu1 + d;
    double *A1 = xmalloc((size_t)n1 * d * sizeof(double)), *A2 = xmalloc((size_t)n2 * d * sizeof(double));
    int r1 = centred_rows(x1, n1, w1, d, mu1, A1), r2 = centred_rows(x2, n2, w2, d, mu2, A2);
    double tr1 = 0, tr2 = 0, ts;
    for (size_t i = 0; i < (size_t)r1 * d; i++) tr1 += A1[i] * A1[i];
    for (size_t i = 0; i < (size_t)r2 * d; i++) tr2 += A2[i] * A2[i];
    if ((r1 < r2 ? r1 : r2) <= d) {
        /* rows as the factor: F1 = A1^T, and F1^T S2 F1 = (A1 A2^T)(A1 A2^T)^T, of size r1 (or, transposed,
         * r2: the nonzero eigenvalues of C C^T and C^T C are the same) */
        if (r1 > r2) {
            double *tA = A1;
            A1 = A2, A2 = tA;
            int t = r1;
            r1 = r2, r2 = t;
        }
        double *C = xmalloc(((size_t)r1 * r2 + 1) * sizeof(double)), *K = xmalloc(((size_t)r1 * r1 + 1) * sizeof(double));
        dmatmul(0, 1, r1, r2, d, A1, d, A2, d, C, r2);
        dmatmul(0, 1, r1, r1, r2, C, r2, C, r2, K, r1);
        ts = trace_sqrt_psd(K, r1);
        free(C);
        free(K);
    } else {
        double *S1 = xmalloc((size_t)d * d * sizeof(double)), *F1 = xmalloc((size_t)d * d * sizeof(double));
        dmatmul(1, 0, d, d, r1, A1, d, A1, d, S1, d);
        int r = pivoted_cholesky(S1, d, -1, F1, d);
        /* F1 is (d, r) with row stride d: compact it to stride r */
        for (int i = 1; i < d; i++) memmove(F1 + (size_t)i * r, F1 + (size_t)i * d, (size_t)r * sizeof(double));
        ts = trace_sqrt_factored(F1, r, A2, r2, d);
        free(S1);
        free(F1);
    }
    double d2 = sq_dist(mu1, mu2, d) + tr1 + tr2 - 2 * ts;
    free(mu1);
    free(A1);
    free(A2);
    return d2;
}

double frechet_from_stats(const double *mu1, const double *S1, const double *mu2, const double *S2, int d) {
    double *a = xmalloc((size_t)d * d * sizeof(double)), *F1 = xmalloc((size_t)d * d * sizeof(double));
    double *b = xmalloc((size_t)d * d * sizeof(double)), *F2 = xmalloc((size_t)d * d * sizeof(double));
    memcpy(a, S1, (size_t)d * d * sizeof(double));
    memcpy(b, S2, (size_t)d * d * sizeof(double));
    int r = pivoted_cholesky(a, d, -1, F1, d);
    int r2 = pivoted_cholesky(b, d, -1, F2, d);
    for (int i = 1; i < d; i++) memmove(F1 + (size_t)i * r, F1 + (size_t)i * d, (size_t)r * sizeof(double));
    /* S2 = F2 F2^T, so A2 = F2^T (r2, d) */
    double *A2 = xmalloc(((size_t)r2 * d + 1) * sizeof(double));
    for (int i = 0; i < r2; i++)
        for (int k = 0; k < d; k++) A2[(size_t)i * d + k] = F2[(size_t)k * d + i];
    double ts = trace_sqrt_factored(F1, r, A2, r2, d);
    double tr1 = 0, tr2 = 0;
    for (int k = 0; k < d; k++) tr1 += S1[(size_t)k * d + k], tr2 += S2[(size_t)k * d + k];
    free(a), free(b), free(F1), free(F2), free(A2);
    return sq_dist(mu1, mu2, d) + tr1 + tr2 - 2 * ts;
}

/* ---- KID ------------------------------------------------------------------------------------------ */
/* sum over the (m, m) kernel matrix of rows X and Y (m, d) (real), without its diagonal when offdiag */
static double kernel_sum(const real *X, const real *Y, int m, int d, real *K, int offdiag) {
    gemm(0, 1, m, m, d, (real)(1.0 / d), X, d, Y, d, 0, K, m);
    double s = 0;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < m; j++) {
            if (offdiag && i == j) continue;
            double k = (double)K[(size_t)i * m + j] + 1;
            s += k * k * k;
        }
    return s;
}

void kid_score(const double *x1, int n1, const double *x2, int n2, int d, int subsets, int size, uint64_t seed,
               double *mean, double *std) {
    int m = size > 0 ? size : 1000;
    if (m > n1) m = n1;
    if (m > n2) m = n2;
    I2V_ASSERT(m >= 2 && subsets >= 1, "KID of subsets of %d rows", m);
    Rng rng;
    rng_seed(&rng, seed);
    int64_t *p1 = xmalloc((size_t)n1 * sizeof(int64_t)), *p2 = xmalloc((size_t)n2 * sizeof(int64_t));
    real *X = xmalloc((size_t)m * d * sizeof(real)), *Y = xmalloc((size_t)m * d * sizeof(real));
    real *K = xmalloc((size_t)m * m * sizeof(real));
    double *v = xmalloc((size_t)subsets * sizeof(double));
    for (int s = 0; s < subsets; s++) {
        rng_permutation(&rng, n1, p1);
        rng_permutation(&rng, n2, p2);
        for (int i = 0; i < m; i++)
            for (int k = 0; k < d; k++) {
                X[(size_t)i * d + k] = (real)x1[(size_t)p1[i] * d + k];
                Y[(size_t)i * d + k] = (real)x2[(size_t)p2[i] * d + k];
            }
        double kxx = kernel_sum(X, X, m, d, K, 1), kyy = kernel_sum(Y, Y, m, d, K, 1);
        double kxy = kernel_sum(X, Y, m, d, K, 0);
        v[s] = (kxx + kyy) / ((double)m * (m - 1)) - 2 * kxy / ((double)m * m);
    }
    double mu = 0, var = 0;
    for (int s = 0; s < subsets; s++) mu += v[s];
    mu /= subsets;
    for (int s = 0; s < subsets; s++) var += (v[s] - mu) * (v[s] - mu);
    *mean = mu;
    *std = sqrt(var / subsets);
    free(p1), free(p2), free(X), free(Y), free(K), free(v);
}

/* ---- bootstrap ------------------------------------------------------------------------------------ */
static double percentile(const double *sorted, int n, double q) {
    double pos = q / 100 * (n - 1);
    int i = (int)floor(pos);
    if (i >= n - 1) return sorted[n - 1];
    return sorted[i] + (pos - i) * (sorted[i + 1] - sorted[i]);
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void frechet_bootstrap(const double *x1, const double *x2, int nclips, int rows, int d, int resamples,
                       uint64_t seed, double *lo, double *hi) {
    I2V_ASSERT(nclips >= 2 && rows >= 1 && resamples >= 1, "bootstrap of %d clips", nclips);
    Rng rng;
    rng_seed(&rng, seed);
    int n = nclips * rows;
    double *w = xmalloc((size_t)n * sizeof(double)), *vals = xmalloc((size_t)resamples * sizeof(double));
    int *count = xmalloc((size_t)nclips * sizeof(int));
    for (int b = 0; b < resamples; b++) {
        memset(count, 0, (size_t)nclips * sizeof(int));
        for (int i = 0; i < nclips; i++) count[rng_below(&rng, (uint32_t)nclips)]++;
        int distinct = 0;
        for (int i = 0; i < nclips; i++) distinct += count[i] > 0;
        if (distinct * rows < 2) {   /* one clip of one row drawn nclips times: no covariance; draw again */
            b--;
            continue;
        }
        for (int i = 0; i < n; i++) w[i] = count[i / rows];
        vals[b] = frechet_distance(x1, n, w, x2, n, w, d);
    }
    qsort(vals, (size_t)resamples, sizeof(double), cmp_d);
    *lo = percentile(vals, resamples, 2.5);
    *hi = percentile(vals, resamples, 97.5);
    free(w), free(vals), free(count);
}
