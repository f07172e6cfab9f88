/* formulas.h: the per-element formulas of i2v's ops, written once for every backend.
 *
 * What it is: small `static inline` functions of one element (an activation and its derivative, a loss
 * term, the normalisations' affine steps, one Adam/AMSGrad update) that the CPU loops in kernels/ call,
 * and that the CUDA kernels in cuda/ call too, so that the backends cannot drift apart. Each is marked I2V_HD, empty for
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
#include <stdint.h>

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

/* The unary functions of kernels/elementwise.h: the kinds, p0 and p1 the constants (leaky relu's slope, the
 * clamp's bounds, the scale, the added scalar). */
enum UnaryKind {
    UNARY_RELU, UNARY_LEAKY_RELU,  /* leaky: slope p0 */
    UNARY_TANH, UNARY_SIGMOID, UNARY_EXP, UNARY_LOG, UNARY_ABS, UNARY_SQRT, UNARY_SQUARE,
    UNARY_CLAMP,                   /* to [p0, p1] */
    UNARY_SCALE,                   /* p0 x */
    UNARY_ADD_SCALAR,              /* x + p0 */
    UNARY_KINDS
};

/* The same chosen by kind, for a kernel that handles every kind in one
 * loop (the GPU's): the same formulas as the CPU's per-kind loops. unary_dx is the term dx += receives;
 * sqrt's is evaluated in double and rounded once by the +=, as there. */
static inline I2V_HD real unary_f(int kind, real x, real p0, real p1) {
    switch (kind) {
    case UNARY_RELU: return relu_f(x);
    case UNARY_LEAKY_RELU: return leaky_relu_f(x, p0);
    case UNARY_TANH: return r_tanh(x);
    case UNARY_SIGMOID: return sigmoid_f(x);
    case UNARY_EXP: return r_exp(x);
    case UNARY_LOG: return r_log(x);
    case UNARY_ABS: return r_fabs(x);
    case UNARY_SQRT: return r_sqrt(x);
    case UNARY_SQUARE: return x * x;
    case UNARY_CLAMP: return clamp_f(x, p0, p1);
    case UNARY_SCALE: return p0 * x;
    case UNARY_ADD_SCALAR: return x + p0;
    }
    return 0;
}
static inline I2V_HD double unary_dx(int kind, real dy, real x, real y, real p0, real p1) {
    switch (kind) {
    case UNARY_RELU: return relu_grad(x, dy);
    case UNARY_LEAKY_RELU: return leaky_relu_grad(x, dy, p0);
    case UNARY_TANH: return tanh_grad(y, dy);
    case UNARY_SIGMOID: return sigmoid_grad(y, dy);
    case UNARY_EXP: return (real)(dy * y);
    case UNARY_LOG: return (real)(dy / x);
    case UNARY_ABS: return abs_grad(x, dy);
    case UNARY_SQRT: return sqrt_grad(y, dy);
    case UNARY_SQUARE: return (real)(2 * x * dy);
    case UNARY_CLAMP: return clamp_grad(x, dy, p0, p1);
    case UNARY_SCALE: return (real)(p0 * dy);
    case UNARY_ADD_SCALAR: return dy;
    }
    return 0;
}
/* f'(x) and f''(x) of the activations that have tangents: (leaky) relu (slope), tanh, sigmoid */
static inline I2V_HD void activation_d12(int kind, real x, real slope, real *d1, real *d2) {
    if (kind == UNARY_TANH) {
        tanh_d12(x, d1, d2);
    } else if (kind == UNARY_SIGMOID) {
        sigmoid_d12(x, d1, d2);
    } else {
        *d1 = leaky_relu_d1(x, slope);
        *d2 = 0;
    }
}

/* ---- binary ops, chosen by kind -------------------------------------------------------------------------- */
enum BinaryKind { BINARY_ADD, BINARY_SUB, BINARY_MUL, BINARY_DIV };

static inline I2V_HD real binary_f(int kind, real a, real b) {
    switch (kind) {
    case BINARY_ADD: return a + b;
    case BINARY_SUB: return a - b;
    case BINARY_MUL: return a * b;
    case BINARY_DIV: return a / b;
    }
    return 0;
}
/* the term the gradient of input `which` (0: a, 1: b) receives from one output element */
static inline I2V_HD real binary_grad(int kind, int which, real dy, real a, real b) {
    switch (kind) {
    case BINARY_ADD: return dy;
    case BINARY_SUB: return which == 0 ? dy : -dy;
    case BINARY_MUL: return which == 0 ? dy * b : dy * a;
    case BINARY_DIV: return which == 0 ? dy / b : -(dy * a / (b * b));
    }
    return 0;
}

/* ---- counter-based random numbers (dropout) --------------------------------------------------------------
 * The i-th number of stream `seed` is SplitMix64's finaliser of seed + (i + 1) golden gamma (Steele, Lea and
 * Flood 2014; it passes BigCrush): a pure function of (seed, i), so any thread draws any element, the GPU
 * draws what the CPU draws, and a backward recomputes a mask instead of storing it. */
static inline I2V_HD uint64_t counter_hash64(uint64_t seed, uint64_t i) {
    uint64_t z = seed + (i + 1) * 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
/* Inverted dropout's factor for element i: 0 with probability p (a uniform draw with 53 bits below p),
 * else 1 / (1 - p). */
static inline I2V_HD real dropout_factor(uint64_t seed, uint64_t i, real p) {
    double u = (double)(counter_hash64(seed, i) >> 11) * (1.0 / 9007199254740992.0);
    return u < (double)p ? (real)0 : (real)(1 / (1 - (double)p));
}

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
