/* formulas.h: the per-element formulas of i2v's ops, written once for every backend.
 *
 * What it is: small `static inline` functions of one element (an activation and its derivative, a loss
 * term, the normalisations' affine steps, one Adam/AMSGrad update) that the CPU loops in kernels/ call,
 * and that a device kernel would call too (there is none yet), so that backends cannot drift apart. Each is marked I2V_HD, empty for
 * a C compiler and `__host__ __device__` under nvcc, and calls only the libm functions below (float or
 * double by `real`, as <tgmath.h> would pick them).
 * What it is not: loops, reductions or memory layouts; those belong to the kernels around the formulas.
 *
 * Each formula keeps the exact arithmetic of the loop it came from, including the precision of every
 * step: a few return double because their expression is evaluated in double before it is added to a real
 * (the caller's `+=` then rounds once, as before). The C build compiles with -std=c11, which does not
 * contract a * b + c into a fused multiply-add; a device build that wants the CPU's bits must not either.
 */
#ifndef I2V_FORMULAS_H
#define I2V_FORMULAS_H

#include <math.h>

#include "base/base.h"

#ifdef __CUDACC__
#define I2V_HD __host__ __device__
#else
#define I2V_HD
#endif

/* ---- libm by precision ---------------------------------------------------------------------------- */
#ifdef I2V_DOUBLE
static inline I2V_HD real r_exp(real x) { return exp(x); }
static inline I2V_HD real r_log(real x) { return log(x); }
static inline I2V_HD real r_tanh(real x) { return tanh(x); }
static inline I2V_HD real r_sqrt(real x) { return sqrt(x); }
static inline I2V_HD real r_fabs(real x) { return fabs(x); }
#else
static inline I2V_HD real r_exp(real x) { return expf(x); }
static inline I2V_HD real r_log(real x) { return logf(x); }
static inline I2V_HD real r_tanh(real x) { return tanhf(x); }
static inline I2V_HD real r_sqrt(real x) { return sqrtf(x); }
static inline I2V_HD real r_fabs(real x) { return fabsf(x); }
#endif

/* ---- activations: f(x), and f'(x) dy from whichever of x and y = f(x) is cheaper --------------------- */
static inline I2V_HD real relu_f(real x) { return x > 0 ? x : 0; }
static inline I2V_HD real relu_grad(real x, real dy) { return x > 0 ? dy : 0; }

static inline I2V_HD real leaky_relu_f(real x, real slope) { return x > 0 ? x : slope * x; }
static inline I2V_HD real leaky_relu_grad(real x, real dy, real slope) { return x > 0 ? dy : slope * dy; }

static inline I2V_HD real sigmoid_f(real x) { return 1 / (1 + r_exp(-x)); }
/* y = sigmoid(x) */
static inline I2V_HD real sigmoid_grad(real y, real dy) { return dy * y * (1 - y); }

/* y = tanh(x) */
static inline I2V_HD real tanh_grad(real y, real dy) { return dy * (1 - y * y); }

/* y = sqrt(x); evaluated in double */
static inline I2V_HD double sqrt_grad(real y, real dy) { return dy * 0.5 / y; }

static inline I2V_HD real abs_grad(real x, real dy) { return x > 0 ? dy : x < 0 ? -dy : 0; }

static inline I2V_HD real clamp_f(real x, real lo, real hi) { return x < lo ? lo : x > hi ? hi : x; }
/* gradient 1 inside [lo, hi], 0 outside */
static inline I2V_HD real clamp_grad(real x, real dy, real lo, real hi) { return (x >= lo && x <= hi) ? dy : 0; }

/* The first and second derivatives of tanh, sigmoid and (leaky) relu at x, for forward-mode tangents. */
static inline I2V_HD void tanh_d12(real x, real *d1, real *d2) {
    real t = r_tanh(x);
    *d1 = 1 - t * t;
    *d2 = -2 * t * *d1;
}
static inline I2V_HD void sigmoid_d12(real x, real *d1, real *d2) {
    real s = 1 / (1 + r_exp(-x));
    *d1 = s * (1 - s);
    *d2 = *d1 * (1 - 2 * s);
}
/* relu is leaky relu with slope 0; the second derivative is 0 away from the kink */
static inline I2V_HD real leaky_relu_d1(real x, real slope) { return x > 0 ? 1 : slope; }

/* ---- losses ---------------------------------------------------------------------------------------- */
/* The elementwise losses: loss = scale * sum_i term(a_i, b_i) (b = 0 for the hinge losses). */
enum LossKind { LOSS_L1, LOSS_MSE, LOSS_HINGE_REAL, LOSS_HINGE_FAKE, LOSS_HINGE_G };

static inline I2V_HD double loss_term(int kind, real a, real b) {
    switch (kind) {
    case LOSS_L1: return r_fabs(a - b);
    case LOSS_MSE: return (double)(a - b) * (a - b);
    case LOSS_HINGE_REAL: return a < 1 ? 1 - a : 0;     /* relu(1 - x) */
    case LOSS_HINGE_FAKE: return a > -1 ? 1 + a : 0;    /* relu(1 + x) */
    case LOSS_HINGE_G: return -a;
    }
    return 0;
}

/* d term / d a (the derivative with respect to b is its negative for L1 and MSE) */
static inline I2V_HD real loss_term_grad(int kind, real a, real b) {
    switch (kind) {
    case LOSS_L1: return a > b ? 1 : a < b ? -1 : 0;
    case LOSS_MSE: return 2 * (a - b);
    case LOSS_HINGE_REAL: return a < 1 ? -1 : 0;
    case LOSS_HINGE_FAKE: return a > -1 ? 1 : 0;
    case LOSS_HINGE_G: return -1;
    }
    return 0;
}

/* KL(N(mu, e^lv) || N(0, 1)) before the -0.5 and the sums, in double: 1 + lv - mu^2 - e^lv */
static inline I2V_HD double kl_term(real mu, real lv) { return 1 + lv - (double)mu * mu - exp((double)lv); }
/* d/d lv of -0.5 (1 + lv - mu^2 - e^lv), times g */
static inline I2V_HD real kl_logvar_grad(real lv, real g) { return g * (real)-0.5 * (1 - r_exp(lv)); }

/* ---- normalisation ------------------------------------------------------------------------------------ */
/* the affine step of group / batch norm: (x - mean) * scale + shift, with scale = rstd * weight */
static inline I2V_HD real norm_affine(real x, real mean, real scale, real shift) { return (x - mean) * scale + shift; }
/* the input gradient of group / batch norm per element: rstd (dy w - mean(dy w) - xhat mean(dy w xhat)),
 * with mh = mean(dy w) and mhx = mean(dy w xhat) over the group */
static inline I2V_HD real norm_input_grad(real x, real dy, real w, real mean, real rstd, real mh, real mhx) {
    return rstd * (dy * w - mh - (x - mean) * rstd * mhx);
}
/* the same from the normalised value xn = (x - mean) rstd and h = dy w */
static inline I2V_HD real norm_input_grad_xn(real h, real xn, real rstd, real mh, real mhx) {
    return rstd * (h - mh - xn * mhx);
}
/* SPADE / AdaIN: the modulated value xn sc + shift, sc = scale + 1 (SPADE) or scale (AdaIN) */
static inline I2V_HD real modulate_f(real xn, real sc, real shift) { return xn * sc + shift; }
/* ActNorm: y = scale (x + loc) and its inverse x = y / scale - loc */
static inline I2V_HD real actnorm_f(real x, real loc, real scale) { return scale * (x + loc); }
static inline I2V_HD real actnorm_inverse_f(real y, real loc, real scale) { return y / scale - loc; }

/* ---- Adam / AMSGrad (torch.optim.Adam, non-foreach) ---------------------------------------------------- */
typedef struct AdamHyper {
    real b1, b2, wd, eps;
    real step_size;   /* lr / (1 - b1^step) */
    real sqrt_bc2;    /* sqrt(1 - b2^step) */
} AdamHyper;

/* One element: g += wd p; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; AMSGrad: vmax = max(vmax, v);
 * p -= step_size m / (sqrt(v or vmax) / sqrt_bc2 + eps), in the order of PyTorch's addcdiv. Returns the new
 * p; m, v (and vmax when amsgrad) are updated in place. */
static inline I2V_HD real adam_f(const AdamHyper *h, real p, real g, real *m, real *v, real *vmax, int amsgrad) {
    real gi = g + h->wd * p;
    real mi = h->b1 * *m + (1 - h->b1) * gi;
    real vi = h->b2 * *v + (1 - h->b2) * gi * gi;
    *m = mi;
    *v = vi;
    if (amsgrad) {
        real vm = vi > *vmax ? vi : *vmax;
        *vmax = vm;
        vi = vm;
    }
    return p + -h->step_size * (mi / (r_sqrt(vi) / h->sqrt_bc2 + h->eps));
}

#endif
