/* reduce.cu: the GPU twins of tensor.c's reductions and losses: sums and means over axes, softmax, the
 * elementwise losses, the KL term, the Gaussian NLL and the count of negative entries (the invertible leaky
 * ReLU's log-determinant).
 *
 * What it is not: the generic summing machinery (sum.cuh), which every file shares. All sums run in
 * double, like the CPU loops, in an order fixed by the sizes. A loss is a 0-D tensor that stays on the GPU;
 * its backward reads the incoming gradient there. Dimension legend: n elements; rows x per a matrix of
 * per-sample vectors; (outer, len, inner) the view around the softmax axis.
 */
#include "cuda/sum.cuh"
#include "kernels/formulas.h"

/* One axis of n contiguous elements (n may exceed an int). */
static Axes axes_line(size_t n) {
    Axes a;
    a.n = n > 1 ? 1 : 0;
    a.ext[0] = n;
    for (int k = 0; k < 3; k++) a.st[k][0] = 1;
    return a;
}

static Axes axes_none(void) {
    Axes a;
    a.n = 0;
    return a;
}

/* ---- sums and means over axes ------------------------------------------------------------------------------ */

struct ScaledSumOp {
    real *y;
    const real *x;
    real scale;
    __device__ double term(const size_t off[3]) const { return x[off[0]]; }
    __device__ void store(size_t o, double s) const { y[o] = (real)(s * scale); }
};

void sum_forward_cuda(real *y, double *acc, const real *x, const ReducePlan *r, real scale) {
    (void)acc;
    const int *shape = r->shape;
    const size_t *os = r->os;
    for (int i = 0; i < 5; i++)
        if (shape[i] == 0) {   /* nothing to sum: every output is 0 */
            cuda_memset0(y, r->nout * sizeof(real));
            return;
        }
    size_t xs[5];
    contiguous_strides(shape, xs);
    int keep[5], red[5];
    for (int i = 0; i < 5; i++) {
        keep[i] = os[i] != 0;
        red[i] = os[i] == 0;
    }
    SumPlan p;
    p.keep = axes_plan(shape, xs, NULL, NULL, keep);
    p.red = axes_plan(shape, xs, NULL, NULL, red);
    ScaledSumOp op = {y, x, scale};
    int prof = prof_begin("reduce_sum", LIB_OWN, 0);
    run_sum(p, op, "reduce_sum");
    prof_end(prof);
}

__global__ static void reduce_backward_kernel(real *dx, const real *dy, Axes ax, size_t n, real scale) {
    for (size_t i = thread_index(); i < n; i += grid_stride()) {
        size_t off[3];
        axes_offsets(ax, i, off);
        dx[off[0]] += scale * dy[off[1]];
    }
}

void sum_backward_cuda(real *dx, const real *dy, const ReducePlan *r, real scale) {
    const int *shape = r->shape;
    const size_t *os = r->os;
    for (int i = 0; i < 5; i++)
        if (shape[i] == 0) return;
    size_t xs[5];
    contiguous_strides(shape, xs);
    Axes ax = axes_plan(shape, xs, os, NULL, NULL);
    size_t n = axes_count(&ax);
    int prof = prof_begin("reduce_backward", LIB_OWN, 0);
    reduce_backward_kernel<<<grid_for(n), THREADS, 0, cuda_stream()>>>(dx, dy, ax, n, scale);
    cuda_launched("reduce_backward");
    prof_end(prof);
}

/* ---- softmax along the middle axis: one thread per (outer, inner) line --------------------------------------- */

__global__ static void softmax_forward_kernel(real *y, const real *x, size_t outer, int len, size_t inner) {
    size_t lines = outer * inner;
    for (size_t l = thread_index(); l < lines; l += grid_stride()) {
        size_t base = (l / inner) * (size_t)len * inner + l % inner;
        real mx = x[base];
        for (int k = 1; k < len; k++)
            if (x[base + k * inner] > mx) mx = x[base + k * inner];
        double sum = 0;
        for (int k = 0; k < len; k++) {
            real e = r_exp(x[base + k * inner] - mx);
            y[base + k * inner] = e;
            sum += e;
        }
        for (int k = 0; k < len; k++) y[base + k * inner] = (real)(y[base + k * inner] / sum);
    }
}

__global__ static void softmax_backward_kernel(real *dx, const real *dy, const real *y, size_t outer, int len,
                                               size_t inner) {
    size_t lines = outer * inner;
    for (size_t l = thread_index(); l < lines; l += grid_stride()) {
        size_t base = (l / inner) * (size_t)len * inner + l % inner;
        double dot = 0;
        for (int k = 0; k < len; k++) dot += dy[base + k * inner] * y[base + k * inner];
        for (int k = 0; k < len; k++) dx[base + k * inner] += y[base + k * inner] * (dy[base + k * inner] - (real)dot);
    }
}

void softmax_forward_cuda(real *y, const real *x, size_t outer, int len, size_t inner) {
    if (outer * inner == 0 || len == 0) return;
    int prof = prof_begin("softmax_forward", LIB_OWN, 0);
    softmax_forward_kernel<<<grid_for(outer * inner), THREADS, 0, cuda_stream()>>>(y, x, outer, len, inner);
    cuda_launched("softmax_forward");
    prof_end(prof);
}

void softmax_backward_cuda(real *dx, const real *dy, const real *y, size_t outer, int len, size_t inner) {
    if (outer * inner == 0 || len == 0) return;
    int prof = prof_begin("softmax_backward", LIB_OWN, 0);
    softmax_backward_kernel<<<grid_for(outer * inner), THREADS, 0, cuda_stream()>>>(dx, dy, y, outer, len, inner);
    cuda_launched("softmax_backward");
    prof_end(prof);
}

/* ---- the elementwise losses: y = scale * sum f(a, b) ------------------------------------------------------------ */

struct LossOp {
    real *y;
    const real *a, *b;
    int kind;
    real scale;
    __device__ double term(const size_t off[3]) const { return loss_term(kind, a[off[0]], b ? b[off[0]] : 0); }
    __device__ void store(size_t o, double s) const { y[o] = (real)(s * scale); }
};

void loss_forward_cuda(real *y, const real *a, const real *b, size_t n, int kind, real scale) {
    SumPlan p;
    p.keep = axes_none();
    p.red = axes_line(n);
    LossOp op = {y, a, b, kind, scale};
    int prof = prof_begin("loss_forward", LIB_OWN, 0);
    run_sum(p, op, "loss_forward");
    prof_end(prof);
}

__global__ static void loss_backward_kernel(real *da, real *db, const real *dy, const real *a, const real *b,
                                            size_t n, int kind, real scale) {
    real g = dy[0] * scale;
    for (size_t i = thread_index(); i < n; i += grid_stride()) {
        real d = g * loss_term_grad(kind, a[i], b ? b[i] : 0);
        if (da) da[i] += d;
        if (db) db[i] -= d;
    }
}

void loss_backward_cuda(real *da, real *db, const real *dy, const real *a, const real *b, size_t n, int kind,
                        real scale) {
    if (n == 0 || (!da && !db)) return;
    int prof = prof_begin("loss_backward", LIB_OWN, 0);
    loss_backward_kernel<<<grid_for(n), THREADS, 0, cuda_stream()>>>(da, db, dy, a, b, n, kind, scale);
    cuda_launched("loss_backward");
    prof_end(prof);
}

/* ---- KL(N(mu, e^lv) || N(0, 1)) ------------------------------------------------------------------------------------ */

struct KlOp {
    real *y;
    const real *mu, *lv;
    real inv_n;
    __device__ double term(const size_t off[3]) const { return kl_term(mu[off[0]], lv[off[0]]); }
    __device__ void store(size_t o, double s) const { y[o] = (real)(-0.5 * s * inv_n); }
};

void kl_normal_forward_cuda(real *y, const real *mu, const real *lv, size_t n, real inv_n) {
    SumPlan p;
    p.keep = axes_none();
    p.red = axes_line(n);
    KlOp op = {y, mu, lv, inv_n};
    int prof = prof_begin("kl_forward", LIB_OWN, 0);
    run_sum(p, op, "kl_forward");
    prof_end(prof);
}

__global__ static void kl_backward_kernel(real *dmu, real *dlv, const real *dy, const real *mu, const real *lv,
                                          size_t n, real inv_n) {
    real g = dy[0] * inv_n;
    for (size_t i = thread_index(); i < n; i += grid_stride()) {
        if (dmu) dmu[i] += g * mu[i];
        if (dlv) dlv[i] += kl_logvar_grad(lv[i], g);
    }
}

void kl_normal_backward_cuda(real *dmu, real *dlv, const real *dy, const real *mu, const real *lv, size_t n,
                             real inv_n) {
    if (n == 0 || (!dmu && !dlv)) return;
    int prof = prof_begin("kl_backward", LIB_OWN, 0);
    kl_backward_kernel<<<grid_for(n), THREADS, 0, cuda_stream()>>>(dmu, dlv, dy, mu, lv, n, inv_n);
    cuda_launched("kl_backward");
    prof_end(prof);
}

/* ---- per-row sums: the Gaussian NLL and the count of negative entries --------------------------------------------- */

/* rows x per, contiguous: the kept axis walks the rows, the summed one the columns */
static SumPlan row_plan(size_t rows, size_t per) {
    SumPlan p;
    p.keep = axes_line(rows);
    p.keep.st[0][0] = p.keep.st[1][0] = p.keep.st[2][0] = per;
    p.red = axes_line(per);
    return p;
}

struct NllOp {
    real *y;
    const real *x;
    __device__ double term(const size_t off[3]) const { return (double)x[off[0]] * x[off[0]]; }
    __device__ void store(size_t o, double s) const { y[o] = (real)(0.5 * s); }
};

void gaussian_nll_forward_cuda(real *y, const real *x, int N, size_t D) {
    NllOp op = {y, x};
    int prof = prof_begin("gaussian_nll_forward", LIB_OWN, 0);
    run_sum(row_plan((size_t)N, D), op, "gaussian_nll_forward");
    prof_end(prof);
}

__global__ static void nll_backward_kernel(real *dx, const real *dy, const real *x, size_t rows, size_t per) {
    size_t n = rows * per;
    for (size_t i = thread_index(); i < n; i += grid_stride()) dx[i] += dy[i / per] * x[i];
}

void gaussian_nll_backward_cuda(real *dx, const real *dy, const real *x, int N, size_t D) {
    size_t rows = (size_t)N, per = D;
    if (rows * per == 0) return;
    int prof = prof_begin("gaussian_nll_backward", LIB_OWN, 0);
    nll_backward_kernel<<<grid_for(rows * per), THREADS, 0, cuda_stream()>>>(dx, dy, x, rows, per);
    cuda_launched("gaussian_nll_backward");
    prof_end(prof);
}

struct NegativeCountOp {
    real *y;
    const real *v;
    double coef;
    __device__ double term(const size_t off[3]) const { return v[off[0]] < 0 ? 1.0 : 0.0; }
    __device__ void store(size_t o, double s) const { y[o] = (real)(coef * s); }
};

void count_negative_forward_cuda(real *y, const real *x, int rows, size_t len, double weight) {
    NegativeCountOp op = {y, x, weight};
    int prof = prof_begin("count_negative", LIB_OWN, 0);
    run_sum(row_plan((size_t)rows, len), op, "count_negative");
    prof_end(prof);
}
