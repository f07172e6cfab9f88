/* formulas.h: per-element formulas that the CPU loops and the CUDA kernels both evaluate, written once.
 *
 * What it is: static inline functions of scalars, marked I2V_HD so that nvcc compiles them for the GPU too
 * (cc sees plain C): the counter-based random numbers of dropout, the elementwise activations and their
 * derivatives, the loss terms and the Adam update. Keeping them here means the two backends cannot drift.
 * What it is not: a kernel (no arrays, no loops) or a place for anything with state.
 *
 * Precision: arguments and results are `real`; transcendental functions follow the type (expf for float,
 * exp for double), in C through the type-generic macros of tgmath.h, in CUDA through the overloads.
 */
#ifndef I2V_FORMULAS_H
#define I2V_FORMULAS_H

#include <stdint.h>

#include "base/base.h"

#ifndef __CUDACC__
#include <tgmath.h>
#endif

/* ---- counter-based random numbers ---------------------------------------------------------------------
 * The i-th number of stream `seed` is splitmix64's finaliser of seed + (i + 1) * golden gamma: a pure function
 * of (seed, i), so any thread computes any element, and the GPU draws exactly what the CPU draws. This is
 * SplitMix64 itself (Steele, Lea and Flood 2014), which passes BigCrush. */
I2V_HD static inline uint64_t counter_hash64(uint64_t seed, uint64_t i) {
    uint64_t z = seed + (i + 1) * 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* uniform in [0, 1) with 53 random bits */
I2V_HD static inline double counter_uniform(uint64_t seed, uint64_t i) {
    return (double)(counter_hash64(seed, i) >> 11) * (1.0 / 9007199254740992.0);
}

/* Inverted dropout's factor for element i: 0 with probability p, else 1 / (1 - p). */
I2V_HD static inline real dropout_factor(uint64_t seed, uint64_t i, real p) {
    return counter_uniform(seed, i) < (double)p ? (real)0 : (real)(1 / (1 - (double)p));
}

/* ---- unary elementwise ops (tensor.c's t_relu ... t_add_scalar) --------------------------------------- */
enum UnaryKind {
    U_RELU, U_LEAKY_RELU, U_TANH, U_SIGMOID, U_EXP, U_LOG, U_ABS, U_SQRT, U_SQUARE, U_CLAMP, U_SCALE,
    U_ADD_SCALAR
};

/* y = f(x); p0 and p1 are the function's constants (slope, clamp bounds, scale, addend). */
I2V_HD static inline real unary_value(int kind, real x, real p0, real p1) {
    switch (kind) {
    case U_RELU: return x > 0 ? x : 0;
    case U_LEAKY_RELU: return x > 0 ? x : p0 * x;
    case U_TANH: return tanh(x);
    case U_SIGMOID: return 1 / (1 + exp(-x));
    case U_EXP: return exp(x);
    case U_LOG: return log(x);
    case U_ABS: return fabs(x);
    case U_SQRT: return sqrt(x);
    case U_SQUARE: return x * x;
    case U_CLAMP: return x < p0 ? p0 : x > p1 ? p1 : x;
    case U_SCALE: return p0 * x;
    case U_ADD_SCALAR: return x + p0;
    }
    return 0;
}

/* The term dy f'(x) the backward adds to dx, from whichever of x and y = f(x) gives it most cheaply. */
I2V_HD static inline real unary_dx(int kind, real dy, real x, real y, real p0, real p1) {
    switch (kind) {
    case U_RELU: return x > 0 ? dy : 0;
    case U_LEAKY_RELU: return x > 0 ? dy : p0 * dy;
    case U_TANH: return dy * (1 - y * y);
    case U_SIGMOID: return dy * y * (1 - y);
    case U_EXP: return dy * y;
    case U_LOG: return dy / x;
    case U_ABS: return x > 0 ? dy : x < 0 ? -dy : 0;
    case U_SQRT: return dy * (real)0.5 / y;
    case U_SQUARE: return 2 * x * dy;
    case U_CLAMP: return (x >= p0 && x <= p1) ? dy : 0;
    case U_SCALE: return p0 * dy;
    case U_ADD_SCALAR: return dy;
    }
    return 0;
}

/* The tangents of the activations (the gradient penalty's forward mode): f'(x) and f''(x) for relu,
 * leaky relu (slope), tanh and sigmoid. */
I2V_HD static inline void activation_derivatives(int kind, real x, real slope, real *d1, real *d2) {
    if (kind == U_TANH) {
        real t = tanh(x);
        *d1 = 1 - t * t;
        *d2 = -2 * t * *d1;
    } else if (kind == U_SIGMOID) {
        real s = 1 / (1 + exp(-x));
        *d1 = s * (1 - s);
        *d2 = *d1 * (1 - 2 * s);
    } else {
        *d1 = x > 0 ? 1 : (kind == U_RELU ? 0 : slope);
        *d2 = 0;
    }
}

/* ---- binary elementwise ops (t_add, t_sub, t_mul, t_div) -------------------------------------------------- */
enum BinaryKind { B_ADD, B_SUB, B_MUL, B_DIV };

I2V_HD static inline real binary_value(int kind, real a, real b) {
    switch (kind) {
    case B_ADD: return a + b;
    case B_SUB: return a - b;
    case B_MUL: return a * b;
    case B_DIV: return a / b;
    }
    return 0;
}

/* The term the backward adds to the gradient of input `which` (0: a, 1: b). */
I2V_HD static inline real binary_grad(int kind, int which, real dy, real a, real b) {
    switch (kind) {
    case B_ADD: return dy;
    case B_SUB: return which == 0 ? dy : -dy;
    case B_MUL: return which == 0 ? dy * b : dy * a;
    case B_DIV: return which == 0 ? dy / b : -(dy * a / (b * b));
    }
    return 0;
}

/* ---- losses (t_l1_loss, t_mse_loss, the hinge losses) ------------------------------------------------------ */
enum LossKind { L_L1, L_MSE, L_HINGE_REAL, L_HINGE_FAKE, L_HINGE_G };

/* f(a, b), summed in double by the callers */
I2V_HD static inline double loss_term(int kind, real a, real b) {
    switch (kind) {
    case L_L1: return fabs(a - b);
    case L_MSE: return (double)(a - b) * (a - b);
    case L_HINGE_REAL: return a < 1 ? 1 - a : 0;     /* relu(1 - x) */
    case L_HINGE_FAKE: return a > -1 ? 1 + a : 0;    /* relu(1 + x) */
    case L_HINGE_G: return -a;
    }
    return 0;
}

/* d f / d a (the derivative with respect to b is its negative for L1 and MSE) */
I2V_HD static inline real loss_term_grad(int kind, real a, real b) {
    switch (kind) {
    case L_L1: return a > b ? 1 : a < b ? -1 : 0;
    case L_MSE: return 2 * (a - b);
    case L_HINGE_REAL: return a < 1 ? -1 : 0;
    case L_HINGE_FAKE: return a > -1 ? 1 : 0;
    case L_HINGE_G: return -1;
    }
    return 0;
}

/* ---- Adam / AMSGrad (torch.optim.Adam, ops/optim.c) ---------------------------------------------------------
 * One element: g = grad + wd p; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; [vmax = max(vmax, v)];
 * p += -step_size (m / (sqrt(v or vmax) / sqrt_bc2 + eps)) in the order of PyTorch's addcdiv. vmax is NULL
 * without AMSGrad. */
I2V_HD static inline void adam_element(real *p, real grad, real *m, real *v, real *vmax, real b1, real b2, real eps,
                                       real wd, real step_size, real sqrt_bc2) {
    real gi = grad + wd * *p;
    real mi = b1 * *m + (1 - b1) * gi;
    real vi = b2 * *v + (1 - b2) * gi * gi;
    real vd = vi;
    if (vmax) {
        vd = vi > *vmax ? vi : *vmax;
        *vmax = vd;
    }
    *m = mi;
    *v = vi;
    *p += -step_size * (mi / (sqrt(vd) / sqrt_bc2 + eps));
}

#endif
