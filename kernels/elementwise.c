/* elementwise.c: the raw-array kernels of the elementwise ops (see elementwise.h): unary functions and
 * their tangents, dropout, binary ops with broadcasting.
 *
 * Not here: the tape ops (tensor.c) or the formulas themselves (formulas.h). Each kind has its own loop,
 * so that the compiler vectorises every one. Single-threaded: these ops are memory-bound and small next to
 * the convolutions. Dimension legend: n elements; a plan's 5 axes i0..i4, i4 the innermost (a row).
 */
#include "kernels/elementwise.h"

#include "kernels/formulas.h"

/* ==================================================================================================== */
/* unary functions                                                                                       */
/* ==================================================================================================== */

void unary_forward(real *y, const real *x, size_t n, int kind, real p0, real p1) {
    switch (kind) {
    case UNARY_RELU: for (size_t i = 0; i < n; i++) y[i] = relu_f(x[i]); break;
    case UNARY_LEAKY_RELU: for (size_t i = 0; i < n; i++) y[i] = leaky_relu_f(x[i], p0); break;
    case UNARY_TANH: for (size_t i = 0; i < n; i++) y[i] = r_tanh(x[i]); break;
    case UNARY_SIGMOID: for (size_t i = 0; i < n; i++) y[i] = sigmoid_f(x[i]); break;
    case UNARY_EXP: for (size_t i = 0; i < n; i++) y[i] = r_exp(x[i]); break;
    case UNARY_LOG: for (size_t i = 0; i < n; i++) y[i] = r_log(x[i]); break;
    case UNARY_ABS: for (size_t i = 0; i < n; i++) y[i] = r_fabs(x[i]); break;
    case UNARY_SQRT: for (size_t i = 0; i < n; i++) y[i] = r_sqrt(x[i]); break;
    case UNARY_SQUARE: for (size_t i = 0; i < n; i++) y[i] = x[i] * x[i]; break;
    case UNARY_CLAMP: for (size_t i = 0; i < n; i++) y[i] = clamp_f(x[i], p0, p1); break;
    case UNARY_SCALE: for (size_t i = 0; i < n; i++) y[i] = p0 * x[i]; break;
    case UNARY_ADD_SCALAR: for (size_t i = 0; i < n; i++) y[i] = x[i] + p0; break;
    default: I2V_ASSERT(0, "unary kind %d", kind);
    }
}

void unary_backward(real *dx, const real *dy, const real *x, const real *y, size_t n, int kind, real p0, real p1) {
    switch (kind) {
    case UNARY_RELU: for (size_t i = 0; i < n; i++) dx[i] += relu_grad(x[i], dy[i]); break;
    case UNARY_LEAKY_RELU: for (size_t i = 0; i < n; i++) dx[i] += leaky_relu_grad(x[i], dy[i], p0); break;
    case UNARY_TANH: for (size_t i = 0; i < n; i++) dx[i] += tanh_grad(y[i], dy[i]); break;
    case UNARY_SIGMOID: for (size_t i = 0; i < n; i++) dx[i] += sigmoid_grad(y[i], dy[i]); break;
    case UNARY_EXP: for (size_t i = 0; i < n; i++) dx[i] += dy[i] * y[i]; break;
    case UNARY_LOG: for (size_t i = 0; i < n; i++) dx[i] += dy[i] / x[i]; break;
    case UNARY_ABS: for (size_t i = 0; i < n; i++) dx[i] += abs_grad(x[i], dy[i]); break;
    case UNARY_SQRT: for (size_t i = 0; i < n; i++) dx[i] += sqrt_grad(y[i], dy[i]); break;
    case UNARY_SQUARE: for (size_t i = 0; i < n; i++) dx[i] += 2 * x[i] * dy[i]; break;
    case UNARY_CLAMP: for (size_t i = 0; i < n; i++) dx[i] += clamp_grad(x[i], dy[i], p0, p1); break;
    case UNARY_SCALE: for (size_t i = 0; i < n; i++) dx[i] += p0 * dy[i]; break;
    case UNARY_ADD_SCALAR: for (size_t i = 0; i < n; i++) dx[i] += dy[i]; break;
    default: I2V_ASSERT(0, "unary kind %d", kind);
    }
}

void unary_jvp_forward(real *y, const real *x, const real *dx, size_t n, int kind, real slope) {
    I2V_ASSERT(kind == UNARY_RELU || kind == UNARY_LEAKY_RELU || kind == UNARY_TANH || kind == UNARY_SIGMOID,
               "no tangent for unary kind %d", kind);
    for (size_t i = 0; i < n; i++) {
        real d1, d2;
        activation_d12(kind, x[i], slope, &d1, &d2);
        y[i] = d1 * dx[i];
    }
}

void unary_jvp_backward(real *gx, real *gdx, const real *g, const real *x, const real *dx, size_t n, int kind,
                        real slope) {
    for (size_t i = 0; i < n; i++) {
        real d1, d2;
        activation_d12(kind, x[i], slope, &d1, &d2);
        if (gdx) gdx[i] += g[i] * d1;
        if (gx) gx[i] += g[i] * dx[i] * d2;
    }
}

/* ==================================================================================================== */
/* dropout                                                                                               */
/* ==================================================================================================== */

void dropout_forward(real *y, const real *x, size_t n, real p, uint64_t seed) {
    for (size_t i = 0; i < n; i++) y[i] = x[i] * dropout_factor(seed, i, p);
}

void dropout_backward(real *dx, const real *dy, size_t n, real p, uint64_t seed) {
    for (size_t i = 0; i < n; i++) dx[i] += dy[i] * dropout_factor(seed, i, p);
}

/* ==================================================================================================== */
/* binary ops with broadcasting                                                                          */
/* ==================================================================================================== */

/* One output row (the last axis): y[i] = a[i*sa] op b[i*sb]. */
static void binary_row(int kind, int n, real *y, const real *a, size_t sa, const real *b, size_t sb) {
    switch (kind) {
    case BINARY_ADD: for (int i = 0; i < n; i++) y[i] = a[i * sa] + b[i * sb]; break;
    case BINARY_SUB: for (int i = 0; i < n; i++) y[i] = a[i * sa] - b[i * sb]; break;
    case BINARY_MUL: for (int i = 0; i < n; i++) y[i] = a[i * sa] * b[i * sb]; break;
    case BINARY_DIV: for (int i = 0; i < n; i++) y[i] = a[i * sa] / b[i * sb]; break;
    default: I2V_ASSERT(0, "binary kind %d", kind);
    }
}

/* One row of the backward: accumulate into da (which = 0) or db (which = 1). */
static void binary_row_backward(int kind, int which, int n, const real *dy, const real *a, size_t sa,
                                const real *b, size_t sb, real *d, size_t sd) {
    switch (kind) {
    case BINARY_ADD: for (int i = 0; i < n; i++) d[i * sd] += dy[i]; break;
    case BINARY_SUB:
        if (which == 0) for (int i = 0; i < n; i++) d[i * sd] += dy[i];
        else for (int i = 0; i < n; i++) d[i * sd] -= dy[i];
        break;
    case BINARY_MUL:
        if (which == 0) for (int i = 0; i < n; i++) d[i * sd] += dy[i] * b[i * sb];
        else for (int i = 0; i < n; i++) d[i * sd] += dy[i] * a[i * sa];
        break;
    case BINARY_DIV:
        if (which == 0) for (int i = 0; i < n; i++) d[i * sd] += dy[i] / b[i * sb];
        else for (int i = 0; i < n; i++) d[i * sd] -= dy[i] * a[i * sa] / (b[i * sb] * b[i * sb]);
        break;
    default: I2V_ASSERT(0, "binary kind %d", kind);
    }
}

/* Visits the output row by row (the 4 outer axes), with the matching offsets into a and b: the forward
 * (which < 0) or the backward into d for a (which = 0) or b (which = 1). */
static void binary_apply(const BroadcastPlan *p, int kind, int which, real *y, const real *dy, const real *a,
                         const real *b, real *d) {
    const int *s = p->shape;
    size_t row = 0;
    for (int i0 = 0; i0 < s[0]; i0++)
        for (int i1 = 0; i1 < s[1]; i1++)
            for (int i2 = 0; i2 < s[2]; i2++)
                for (int i3 = 0; i3 < s[3]; i3++, row += (size_t)s[4]) {
                    size_t oa = i0 * p->sa[0] + i1 * p->sa[1] + i2 * p->sa[2] + i3 * p->sa[3];
                    size_t ob = i0 * p->sb[0] + i1 * p->sb[1] + i2 * p->sb[2] + i3 * p->sb[3];
                    if (which < 0) {
                        binary_row(kind, s[4], y + row, a + oa, p->sa[4], b + ob, p->sb[4]);
                    } else {
                        size_t od = which == 0 ? oa : ob, sd = which == 0 ? p->sa[4] : p->sb[4];
                        binary_row_backward(kind, which, s[4], dy + row, a + oa, p->sa[4], b + ob, p->sb[4], d + od,
                                            sd);
                    }
                }
}

void binary_forward(real *y, const real *a, const real *b, const BroadcastPlan *p, int kind) {
    binary_apply(p, kind, -1, y, NULL, a, b, NULL);
}

void binary_backward(real *da, real *db, const real *dy, const real *a, const real *b, const BroadcastPlan *p,
                     int kind) {
    if (da) binary_apply(p, kind, 0, NULL, dy, a, b, da);
    if (db) binary_apply(p, kind, 1, NULL, dy, a, b, db);
}
