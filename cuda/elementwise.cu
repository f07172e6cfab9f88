/* elementwise.cu: the GPU twins of tensor.c's elementwise ops, copies and shape ops.
 *
 * What it is: unary functions and their tangents, dropout, binary ops with broadcasting, the row copies of
 * concat / slice / reshape, permutes, index_select, and a linear layer's bias. Every per-element formula
 * comes from kernels/formulas.h, the same the CPU loops use.
 * What it is not: a reduction over many values per output (reduce.cu), or anything with a Tensor.
 *
 * One thread per output element in a grid-stride loop. A gradient that sums several output elements into
 * one input element (a broadcast input, a repeated index) is gathered by the thread of the input element,
 * in index order, never scattered with atomics. Dimension legend: n elements; (outer, len, inner) the view of
 * a tensor around one axis.
 */
#include "cuda/sum.cuh"
#include "kernels/formulas.h"

/* ---- unary functions ---------------------------------------------------------------------------------- */

__global__ static void unary_forward_kernel(real *y, const real *x, size_t n, int kind, real p0, real p1) {
    for (size_t i = thread_index(); i < n; i += grid_stride()) y[i] = unary_f(kind, x[i], p0, p1);
}

__global__ static void unary_backward_kernel(real *dx, const real *dy, const real *x, const real *y, size_t n,
                                             int kind, real p0, real p1) {
    for (size_t i = thread_index(); i < n; i += grid_stride()) dx[i] += unary_dx(kind, dy[i], x[i], y[i], p0, p1);
}

void unary_forward_cuda(real *y, const real *x, size_t n, int kind, real p0, real p1) {
    int prof = prof_begin("unary_forward", LIB_OWN, 0);
    unary_forward_kernel<<<grid_for(n), THREADS, 0, cuda_stream()>>>(y, x, n, kind, p0, p1);
    cuda_launched("unary_forward");
    prof_end(prof);
}

void unary_backward_cuda(real *dx, const real *dy, const real *x, const real *y, size_t n, int kind, real p0,
                         real p1) {
    int prof = prof_begin("unary_backward", LIB_OWN, 0);
    unary_backward_kernel<<<grid_for(n), THREADS, 0, cuda_stream()>>>(dx, dy, x, y, n, kind, p0, p1);
    cuda_launched("unary_backward");
    prof_end(prof);
}

/* ---- tangents of the activations (the gradient penalty) ------------------------------------------------ */

__global__ static void jvp_forward_kernel(real *y, const real *x, const real *dx, size_t n, int kind, real slope) {
    for (size_t i = thread_index(); i < n; i += grid_stride()) {
        real d1, d2;
        activation_d12(kind, x[i], slope, &d1, &d2);
        y[i] = d1 * dx[i];
    }
}

/* y = f'(x) dx: d/d dx = f'(x), d/dx = dx f''(x) */
__global__ static void jvp_backward_kernel(real *gx, real *gdx, const real *gy, const real *x, const real *dx,
                                           size_t n, int kind, real slope) {
    for (size_t i = thread_index(); i < n; i += grid_stride()) {
        real d1, d2;
        activation_d12(kind, x[i], slope, &d1, &d2);
        if (gdx) gdx[i] += gy[i] * d1;
        if (gx) gx[i] += gy[i] * dx[i] * d2;
    }
}

void unary_jvp_forward_cuda(real *y, const real *x, const real *dx, size_t n, int kind, real slope) {
    int prof = prof_begin("unary_jvp_forward", LIB_OWN, 0);
    jvp_forward_kernel<<<grid_for(n), THREADS, 0, cuda_stream()>>>(y, x, dx, n, kind, slope);
    cuda_launched("unary_jvp_forward");
    prof_end(prof);
}

void unary_jvp_backward_cuda(real *gx, real *gdx, const real *g, const real *x, const real *dx, size_t n, int kind,
                             real slope) {
    int prof = prof_begin("unary_jvp_backward", LIB_OWN, 0);
    jvp_backward_kernel<<<grid_for(n), THREADS, 0, cuda_stream()>>>(gx, gdx, g, x, dx, n, kind, slope);
    cuda_launched("unary_jvp_backward");
    prof_end(prof);
}

/* ---- dropout ---------------------------------------------------------------------------------------------- */

__global__ static void dropout_kernel(real *out, const real *in, size_t n, real p, uint64_t seed, int accumulate) {
    for (size_t i = thread_index(); i < n; i += grid_stride()) {
        real v = in[i] * dropout_factor(seed, i, p);
        if (accumulate) out[i] += v;
        else out[i] = v;
    }
}

void dropout_forward_cuda(real *y, const real *x, size_t n, real p, uint64_t seed) {
    int prof = prof_begin("dropout_forward", LIB_OWN, 0);
    dropout_kernel<<<grid_for(n), THREADS, 0, cuda_stream()>>>(y, x, n, p, seed, 0);
    cuda_launched("dropout_forward");
    prof_end(prof);
}

void dropout_backward_cuda(real *dx, const real *dy, size_t n, real p, uint64_t seed) {
    int prof = prof_begin("dropout_backward", LIB_OWN, 0);
    dropout_kernel<<<grid_for(n), THREADS, 0, cuda_stream()>>>(dx, dy, n, p, seed, 1);
    cuda_launched("dropout_backward");
    prof_end(prof);
}

/* ---- binary ops with broadcasting ------------------------------------------------------------------------ */

/* y (contiguous over `shape`) = a op b, with a and b read through their broadcast strides. */
__global__ static void binary_forward_kernel(real *y, const real *a, const real *b, Axes ax, size_t n, int kind) {
    for (size_t i = thread_index(); i < n; i += grid_stride()) {
        size_t off[3];
        axes_offsets(ax, i, off);
        y[off[0]] = binary_f(kind, a[off[1]], b[off[2]]);
    }
}

void binary_forward_cuda(real *y, const real *a, const real *b, const BroadcastPlan *p, int kind) {
    const int *shape = p->shape;
    for (int i = 0; i < 5; i++)
        if (shape[i] == 0) return;
    size_t sy[5];
    contiguous_strides(shape, sy);
    Axes ax = axes_plan(shape, sy, p->sa, p->sb, NULL);
    size_t n = axes_count(&ax);
    int prof = prof_begin("binary_forward", LIB_OWN, 0);
    binary_forward_kernel<<<grid_for(n), THREADS, 0, cuda_stream()>>>(y, a, b, ax, n, kind);
    cuda_launched("binary_forward");
    prof_end(prof);
}

/* The gradient of input `which`: each of its elements sums binary_grad over the output positions it was
 * broadcast to (one position when it is not broadcast). The plan's arrays: 0 dy, 1 a, 2 b. */
struct BinaryGradOp {
    real *d;
    const real *dy, *a, *b;
    int kind, which;
    __device__ double term(const size_t off[3]) const {
        return binary_grad(kind, which, dy[off[0]], a[off[1]], b[off[2]]);
    }
    __device__ void store(size_t o, double s) const { d[o] += (real)s; }
};

__global__ static void binary_grad_kernel(BinaryGradOp op, Axes ax, size_t n) {
    for (size_t i = thread_index(); i < n; i += grid_stride()) {
        size_t off[3];
        axes_offsets(ax, i, off);
        op.d[i] += binary_grad(op.kind, op.which, op.dy[off[0]], op.a[off[1]], op.b[off[2]]);
    }
}

/* the gradient of one input (which: 0 a, 1 b) */
static void binary_grad_of(real *d, int which, const real *dy, const real *a, const real *b, const int shape[5],
                           const size_t sa[5], const size_t sb[5], int kind) {
    size_t sy[5];
    contiguous_strides(shape, sy);
    const size_t *own = which ? sb : sa;
    int keep[5], red[5], broadcast = 0;
    for (int i = 0; i < 5; i++) {
        keep[i] = own[i] != 0;
        red[i] = !keep[i];
        if (red[i] && shape[i] > 1) broadcast = 1;
    }
    BinaryGradOp op = {d, dy, a, b, kind, which};
    if (!broadcast) {   /* one output position per element of d: plain elementwise */
        Axes ax = axes_plan(shape, sy, sa, sb, NULL);
        size_t n = axes_count(&ax);
        binary_grad_kernel<<<grid_for(n), THREADS, 0, cuda_stream()>>>(op, ax, n);
        cuda_launched("binary_backward");
    } else {
        SumPlan p;
        p.keep = axes_plan(shape, sy, sa, sb, keep);
        p.red = axes_plan(shape, sy, sa, sb, red);
        run_sum(p, op, "binary_backward");
    }
}

void binary_backward_cuda(real *da, real *db, const real *dy, const real *a, const real *b, const BroadcastPlan *p,
                          int kind) {
    for (int i = 0; i < 5; i++)
        if (p->shape[i] == 0) return;
    int prof = prof_begin("binary_backward", LIB_OWN, 0);
    if (da) binary_grad_of(da, 0, dy, a, b, p->shape, p->sa, p->sb, kind);
    if (db) binary_grad_of(db, 1, dy, a, b, p->shape, p->sa, p->sb, kind);
    prof_end(prof);
}

/* ---- copies ------------------------------------------------------------------------------------------------ */

__global__ static void copy_rows_kernel(real *dst, size_t ds, const real *src, size_t ss, size_t rows, size_t len,
                                        int accumulate) {
    size_t n = rows * len;
    for (size_t i = thread_index(); i < n; i += grid_stride()) {
        size_t r = i / len, c = i % len;
        real v = src[r * ss + c];
        if (accumulate) dst[r * ds + c] += v;
        else dst[r * ds + c] = v;
    }
}

/* dst[o * dst_stride + i] (+)= src[o * src_stride + i] for o < rows, i < len */
static void copy_rows(real *dst, size_t dst_stride, const real *src, size_t src_stride, size_t rows, size_t len,
                      int accumulate) {
    if (rows * len == 0) return;
    if (!accumulate && (rows == 1 || (dst_stride == len && src_stride == len))) {   /* one block of memory */
        cuda_copy(dst, src, rows * len * sizeof(real));
        return;
    }
    int prof = prof_begin("copy_rows", LIB_OWN, 0);
    copy_rows_kernel<<<grid_for(rows * len), THREADS, 0, cuda_stream()>>>(dst, dst_stride, src, src_stride, rows,
                                                                         len, accumulate);
    cuda_launched("copy_rows");
    prof_end(prof);
}

void concat_forward_cuda(real *y, const real *x, size_t outer, size_t row, size_t start, size_t len) {
    copy_rows(y + start, row, x, len, outer, len, 0);
}

void concat_backward_cuda(real *dx, const real *dy, size_t outer, size_t row, size_t start, size_t len) {
    copy_rows(dx, len, dy + start, row, outer, len, 1);
}

void slice_forward_cuda(real *y, const real *x, size_t outer, int total, int start, int len, size_t inner) {
    copy_rows(y, (size_t)len * inner, x + (size_t)start * inner, (size_t)total * inner, outer, (size_t)len * inner, 0);
}

void slice_backward_cuda(real *dx, const real *dy, size_t outer, int total, int start, int len, size_t inner) {
    copy_rows(dx + (size_t)start * inner, (size_t)total * inner, dy, (size_t)len * inner, outer, (size_t)len * inner, 1);
}

void reshape_backward_cuda(real *dx, const real *dy, size_t n) { copy_rows(dx, 0, dy, 0, 1, n, 1); }

/* out position i (contiguous over the output shape) <-> input offset; each thread owns one output position,
 * and a permutation maps positions one to one, so the backward's += has no conflicts. */
__global__ static void permute_kernel(real *dst, const real *src, Axes ax, size_t n, int to_out) {
    for (size_t i = thread_index(); i < n; i += grid_stride()) {
        size_t off[3];
        axes_offsets(ax, i, off);
        if (to_out) dst[off[0]] = src[off[1]];
        else dst[off[1]] += src[off[0]];
    }
}

static void permute_copy(real *dst, const real *src, const PermutePlan *p, int to_out) {
    const int *shape = p->shape;
    for (int i = 0; i < 5; i++)
        if (shape[i] == 0) return;
    size_t so[5];
    contiguous_strides(shape, so);
    Axes ax = axes_plan(shape, so, p->st, NULL, NULL);
    size_t n = axes_count(&ax);
    int prof = prof_begin("permute", LIB_OWN, 0);
    permute_kernel<<<grid_for(n), THREADS, 0, cuda_stream()>>>(dst, src, ax, n, to_out);
    cuda_launched("permute");
    prof_end(prof);
}

void permute_forward_cuda(real *y, const real *x, const PermutePlan *p) { permute_copy(y, x, p, 1); }
void permute_backward_cuda(real *dx, const real *dy, const PermutePlan *p) { permute_copy(dx, dy, p, 0); }

/* ---- index_select --------------------------------------------------------------------------------------------- */

__global__ static void index_select_kernel(real *y, const real *x, const int64_t *idx, int nidx, size_t outer,
                                           int total, size_t inner) {
    size_t n = outer * (size_t)nidx * inner;
    for (size_t i = thread_index(); i < n; i += grid_stride()) {
        size_t k = i % inner, j = (i / inner) % (size_t)nidx, o = i / (inner * (size_t)nidx);
        y[i] = x[(o * (size_t)total + (size_t)idx[j]) * inner + k];
    }
}

/* dx row r gathers every output row j with idx[j] == r, in the order of j */
__global__ static void index_select_grad_kernel(real *dx, const real *dy, const int64_t *idx, int nidx, size_t outer,
                                                int total, size_t inner) {
    size_t n = outer * (size_t)total * inner;
    for (size_t i = thread_index(); i < n; i += grid_stride()) {
        size_t k = i % inner, r = (i / inner) % (size_t)total, o = i / (inner * (size_t)total);
        real acc = 0;
        int hit = 0;
        for (int j = 0; j < nidx; j++)
            if ((size_t)idx[j] == r) {
                acc += dy[(o * (size_t)nidx + (size_t)j) * inner + k];
                hit = 1;
            }
        if (hit) dx[i] += acc;
    }
}

void index_select_forward_cuda(real *y, const real *x, const int64_t *idx, int nidx, size_t outer, int total,
                               size_t inner) {
    size_t n = outer * (size_t)nidx * inner;
    if (n == 0) return;
    int prof = prof_begin("index_select_forward", LIB_OWN, 0);
    index_select_kernel<<<grid_for(n), THREADS, 0, cuda_stream()>>>(y, x, idx, nidx, outer, total, inner);
    cuda_launched("index_select_forward");
    prof_end(prof);
}

void index_select_backward_cuda(real *dx, const real *dy, const int64_t *idx, int nidx, size_t outer, int total,
                                size_t inner) {
    size_t n = outer * (size_t)total * inner;
    if (n == 0) return;
    int prof = prof_begin("index_select_backward", LIB_OWN, 0);
    index_select_grad_kernel<<<grid_for(n), THREADS, 0, cuda_stream()>>>(dx, dy, idx, nidx, outer, total, inner);
    cuda_launched("index_select_backward");
    prof_end(prof);
}

/* ---- a linear layer's bias ----------------------------------------------------------------------------------- */

__global__ static void add_bias_rows_kernel(real *y, const real *b, size_t rows, size_t cols) {
    size_t n = rows * cols;
    for (size_t i = thread_index(); i < n; i += grid_stride()) y[i] += b[i % cols];
}

/* y (rows, cols) += b (cols) on every row; db (cols) += the column sums of dy (the linear layer's bias, gemm.cu) */
void add_bias_rows_cuda(real *y, const real *b, size_t rows, size_t cols) {
    if (rows * cols == 0) return;
    int prof = prof_begin("add_bias", LIB_OWN, 0);
    add_bias_rows_kernel<<<grid_for(rows * cols), THREADS, 0, cuda_stream()>>>(y, b, rows, cols);
    cuda_launched("add_bias");
    prof_end(prof);
}

/* db[j] += sum_i dy[i][j]: the columns of dy, a sum per output. */
struct ColumnSumOp {
    real *db;
    const real *dy;
    __device__ double term(const size_t off[3]) const { return dy[off[0]]; }
    __device__ void store(size_t o, double s) const { db[o] += (real)s; }
};

void bias_rows_backward_cuda(real *db, const real *dy, size_t rows, size_t cols) {
    if (cols == 0) return;
    int shape[5] = {1, 1, 1, (int)rows, (int)cols}, keep[5] = {0, 0, 0, 0, 1}, red[5] = {0, 0, 0, 1, 0};
    size_t st[5];
    contiguous_strides(shape, st);
    SumPlan p;
    p.keep = axes_plan(shape, st, NULL, NULL, keep);
    p.red = axes_plan(shape, st, NULL, NULL, red);
    ColumnSumOp op = {db, dy};
    int prof = prof_begin("bias_backward", LIB_OWN, 0);
    run_sum(p, op, "bias_backward");
    prof_end(prof);
}
