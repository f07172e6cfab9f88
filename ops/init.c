/* init.c: PyTorch's parameter initialisers (torch.nn.init and the layers' default reset_parameters),
 * written once for every network, each drawing from the seeded generator it is given.
 *
 * What it is not: which initialiser a network uses (ae.c, networks/, flow.c say that, as the official
 * modules do), or the buffers' constants (ones, zeros), which tensor_fill sets. The values match PyTorch's
 * distributions, not its random streams. Dimension legend: a weight (Cout, Cin, k...) seen as the matrix
 * (Cout, K), K = Cin k...; fan_in = K, fan_out = Cout k....
 */
#include "ops/init.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/gemm.h"

/* Elements of one output unit's receptive field: Cin k... (fan_in); fan_out = Cout * receptive / Cin. */
static size_t receptive(const Tensor *w) { return w->numel / (size_t)w->shape[0]; }

void init_kaiming_normal_fan_out(Tensor *w, Rng *r) {
    size_t fan_out = (size_t)w->shape[0] * (w->numel / ((size_t)w->shape[0] * (size_t)w->shape[1]));
    tensor_fill_normal(w, r, 0, sqrt(2.0 / (double)fan_out));
}

void init_default(Tensor *w, Tensor *b, Rng *r) {
    double bound = 1.0 / sqrt((double)receptive(w));
    tensor_fill_uniform(w, r, -bound, bound);
    if (b) tensor_fill_uniform(b, r, -bound, bound);
}

void init_xavier_uniform(Tensor *w, double gain, Rng *r) {
    size_t k = w->numel / ((size_t)w->shape[0] * (size_t)w->shape[1]);
    double fan_in = (double)w->shape[1] * (double)k, fan_out = (double)w->shape[0] * (double)k;
    double bound = gain * sqrt(6.0 / (fan_in + fan_out));
    tensor_fill_uniform(w, r, -bound, bound);
}

/* Q of a Gaussian (m x n) matrix A, m >= n, with orthonormal columns and R's diagonal positive (the
 * unique QR that torch.nn.init.orthogonal_ produces after its sign correction), by CholeskyQR2: R from the
 * Cholesky factor of A^T A, Q = A R^-1, done twice so Q is orthonormal to rounding. The m x n products run
 * on gemm; the n x n work is done in double. a (m, n) row-major is replaced by Q. */
static void orthonormalise_columns(real *a, int m, int n) {
    real *gram = xmalloc((size_t)n * (size_t)n * sizeof(real));
    real *rinv = xmalloc((size_t)n * (size_t)n * sizeof(real));
    real *q = xmalloc((size_t)m * (size_t)n * sizeof(real));
    double *L = xmalloc((size_t)n * (size_t)n * sizeof(double));
    double *Li = xmalloc((size_t)n * (size_t)n * sizeof(double));
    for (int pass = 0; pass < 2; pass++) {
        gemm(1, 0, n, n, m, 1, a, n, a, n, 0, gram, n);   /* A^T A */
        /* Cholesky A^T A = L L^T (R = L^T) */
        for (int j = 0; j < n; j++) {
            for (int i = j; i < n; i++) {
                double s = gram[(size_t)i * n + j];
                for (int k = 0; k < j; k++) s -= L[(size_t)i * n + k] * L[(size_t)j * n + k];
                if (i == j) {
                    I2V_ASSERT(s > 0, "orthogonal init: the Gaussian matrix is rank deficient");
                    L[(size_t)j * n + j] = sqrt(s);
                } else {
                    L[(size_t)i * n + j] = s / L[(size_t)j * n + j];
                }
            }
        }
        /* Li = L^-1 (lower triangular), so R^-1 = Li^T */
        for (int j = 0; j < n; j++)
            for (int i = 0; i < n; i++) {
                if (i < j) {
                    Li[(size_t)i * n + j] = 0;
                    continue;
                }
                double s = i == j ? 1 : 0;
                for (int k = j; k < i; k++) s -= L[(size_t)i * n + k] * Li[(size_t)k * n + j];
                Li[(size_t)i * n + j] = s / L[(size_t)i * n + i];
            }
        for (size_t i = 0; i < (size_t)n * n; i++) rinv[i] = (real)Li[i];
        gemm(0, 1, m, n, n, 1, a, n, rinv, n, 0, q, n);   /* Q = A Li^T */
        memcpy(a, q, (size_t)m * (size_t)n * sizeof(real));
    }
    free(gram);
    free(rinv);
    free(q);
    free(L);
    free(Li);
}

void init_orthogonal(Tensor *w, Rng *r) {
    int rows = w->shape[0];
    int cols = (int)(w->numel / (size_t)rows);
    /* orthogonal_ draws (rows, cols), transposes when rows < cols, takes Q of the tall matrix and transposes
     * back; drawing the tall matrix directly gives the same distribution. */
    int m = rows >= cols ? rows : cols, n = rows >= cols ? cols : rows;
    real *a = xmalloc((size_t)m * (size_t)n * sizeof(real));
    for (size_t i = 0; i < (size_t)m * n; i++) a[i] = (real)rng_normal(r);
    orthonormalise_columns(a, m, n);
    if (rows >= cols) {
        memcpy(w->data, a, w->numel * sizeof(real));
    } else {   /* w (rows = n, cols = m) = Q^T */
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) w->data[(size_t)j * m + i] = a[(size_t)i * n + j];
    }
    free(a);
}
