/* loss.c: the raw-array kernels of the losses (see loss.h).
 *
 * Not here: the tape ops (tensor.c) or the per-element terms (formulas.h). Single-threaded sums in double,
 * in element order. Dimension legend: n elements, N samples, D values per sample.
 */
#include "kernels/loss.h"

void loss_forward(real *y, const real *a, const real *b, size_t n, int kind, real scale) {
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += loss_term(kind, a[i], b ? b[i] : 0);
    y[0] = (real)(sum * scale);
}

void loss_backward(real *da, real *db, const real *dy, const real *a, const real *b, size_t n, int kind,
                   real scale) {
    real g = dy[0] * scale;
    for (size_t i = 0; i < n; i++) {
        real d = g * loss_term_grad(kind, a[i], b ? b[i] : 0);
        if (da) da[i] += d;
        if (db) db[i] -= d;
    }
}

void kl_normal_forward(real *y, const real *mu, const real *lv, size_t n, real inv_n) {
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += kl_term(mu[i], lv[i]);
    y[0] = (real)(-0.5 * sum * inv_n);
}

void kl_normal_backward(real *dmu, real *dlv, const real *dy, const real *mu, const real *lv, size_t n, real inv_n) {
    real g = dy[0] * inv_n;
    for (size_t i = 0; i < n; i++) {
        if (dmu) dmu[i] += g * mu[i];
        if (dlv) dlv[i] += kl_logvar_grad(lv[i], g);
    }
}

void gaussian_nll_forward(real *y, const real *x, int N, size_t D) {
    for (int b = 0; b < N; b++) {
        double s = 0;
        for (size_t i = 0; i < D; i++) s += (double)x[b * D + i] * x[b * D + i];
        y[b] = (real)(0.5 * s);
    }
}

void gaussian_nll_backward(real *dx, const real *dy, const real *x, int N, size_t D) {
    for (size_t i = 0; i < (size_t)N * D; i++) dx[i] += dy[i / D] * x[i];
}
