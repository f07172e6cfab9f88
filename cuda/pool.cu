/* pool.cu: the GPU twins of conv.h's pooling and resampling kernels: max pooling (with its tangent),
 * average pooling (count_include_pad = True), nearest upsampling by integer factors and bilinear resizing
 * with align_corners = True.
 *
 * What it is not: a convolution (conv.cu). Semantics are the CPU kernels', read from the same geometry
 * (ConvGeom): padding counts as -inf for max pooling, ties keep the first maximum in window order (t, then h,
 * then w), NaN wins.
 *
 * Forwards run one thread per output. Backwards gather: one thread per input element adds up the outputs
 * whose windows (or taps) contain it, in output order, so no two threads write one element. The max
 * pooling backward first stores each window's argmax (an int per output, in the workspace) and then lets
 * every input element look only at the windows that cover it.
 * Dimension legend: NC planes (sample x channel), (T, H, W) input and (To, Ho, Wo) output sizes, k kernel,
 * s stride, p padding per axis.
 */
#include <math.h>

#include "cuda/sum.cuh"


/* Calls visit(in-plane index) for each input element of output (ot, oh, ow)'s window, in window order (t, then
 * h, then w), skipping the padding: the one walk of max and average pooling. */
template <class Visit>
__device__ static void window_walk(const ConvGeom &g, int ot, int oh, int ow, Visit visit) {
    for (int a = 0; a < g.k[0]; a++) {
        int ti = ot * g.s[0] - g.p[0] + a;
        if (ti < 0 || ti >= g.in[0]) continue;
        for (int b = 0; b < g.k[1]; b++) {
            int hi = oh * g.s[1] - g.p[1] + b;
            if (hi < 0 || hi >= g.in[1]) continue;
            for (int d = 0; d < g.k[2]; d++) {
                int wi = ow * g.s[2] - g.p[2] + d;
                if (wi >= 0 && wi < g.in[2]) visit(((long)ti * g.in[1] + hi) * g.in[2] + wi);
            }
        }
    }
}

/* The in-plane index of the first maximum of output (ot, oh, ow)'s window, -1 if it holds only padding. */
__device__ static long window_argmax(const real *xp, const ConvGeom &g, int ot, int oh, int ow) {
    long best_i = -1;
    real best = 0;
    window_walk(g, ot, oh, ow, [&](long idx) {
        real v = xp[idx];
        if (best_i < 0 || v > best || isnan(v)) {
            best = v;
            best_i = idx;
        }
    });
    return best_i;
}

/* Output (plane, ot, oh, ow) of output index i. */
__device__ static void out_coords(const ConvGeom &g, size_t i, size_t *plane, int *ot, int *oh, int *ow) {
    *ow = (int)(i % (size_t)g.out[2]);
    i /= (size_t)g.out[2];
    *oh = (int)(i % (size_t)g.out[1]);
    i /= (size_t)g.out[1];
    *ot = (int)(i % (size_t)g.out[0]);
    *plane = i / (size_t)g.out[0];
}

/* mode 0: y = max (or -inf); mode 1: ty = tx at the argmax of x (or 0); mode 2: argmax[i] = the index */
__global__ static void maxpool_kernel(real *out, int *argmax, const real *x, const real *sel, ConvGeom g, size_t n,
                                      int mode) {
    size_t isz = (size_t)g.in[0] * g.in[1] * g.in[2];
    for (size_t i = thread_index(); i < n; i += grid_stride()) {
        size_t plane;
        int ot, oh, ow;
        out_coords(g, i, &plane, &ot, &oh, &ow);
        long a = window_argmax(x + plane * isz, g, ot, oh, ow);
        if (mode == 0) out[i] = a >= 0 ? x[plane * isz + (size_t)a] : -INFINITY;
        else if (mode == 1) out[i] = a >= 0 ? sel[plane * isz + (size_t)a] : 0;
        else argmax[i] = (int)a;
    }
}

/* The outputs along one axis whose windows contain input position i: [lo, hi]. */
__device__ static void covering(int i, int k, int s, int p, int out, int *lo, int *hi) {
    int a = i + p - k + 1;   /* o s >= a */
    *lo = a <= 0 ? 0 : (a + s - 1) / s;
    *hi = (i + p) / s;       /* o s <= i + p */
    if (*hi > out - 1) *hi = out - 1;
}

/* dx[i] += sum of dy over the windows whose argmax is i (mode 0), or over every covering window times
 * 1 / (kT kH kW) (mode 1: average pooling). */
__global__ static void pool_backward_kernel(real *dx, const real *dy, const int *argmax, ConvGeom g, size_t n,
                                            int average) {
    size_t osz = (size_t)g.out[0] * g.out[1] * g.out[2];
    real inv = (real)(1.0 / ((double)g.k[0] * g.k[1] * g.k[2]));
    for (size_t i = thread_index(); i < n; i += grid_stride()) {
        size_t r = i;
        int wi = (int)(r % (size_t)g.in[2]);
        r /= (size_t)g.in[2];
        int hi = (int)(r % (size_t)g.in[1]);
        r /= (size_t)g.in[1];
        int ti = (int)(r % (size_t)g.in[0]);
        size_t plane = r / (size_t)g.in[0];
        long own = ((long)ti * g.in[1] + hi) * g.in[2] + wi;
        int t0, t1, h0, h1, w0, w1;
        covering(ti, g.k[0], g.s[0], g.p[0], g.out[0], &t0, &t1);
        covering(hi, g.k[1], g.s[1], g.p[1], g.out[1], &h0, &h1);
        covering(wi, g.k[2], g.s[2], g.p[2], g.out[2], &w0, &w1);
        real acc = 0;
        for (int ot = t0; ot <= t1; ot++)
            for (int oh = h0; oh <= h1; oh++)
                for (int ow = w0; ow <= w1; ow++) {
                    size_t o = plane * osz + ((size_t)ot * g.out[1] + oh) * g.out[2] + ow;
                    if (average) acc += dy[o] * inv;
                    else if (argmax[o] == own) acc += dy[o];
                }
        dx[i] += acc;
    }
}

void maxpool3d_forward_cuda(real *y, const real *x, const ConvGeom *g) {
    size_t n = (size_t)g->n * g->cin * vol3(g->out);
    if (n == 0) return;
    int prof = prof_begin("maxpool_forward", LIB_OWN, 0);
    maxpool_kernel<<<grid_for(n), THREADS, 0, cuda_stream()>>>(y, NULL, x, NULL, *g, n, 0);
    cuda_launched("maxpool_forward");
    prof_end(prof);
}

void maxpool3d_jvp_cuda(real *ty, const real *x, const real *tx, const ConvGeom *g) {
    size_t n = (size_t)g->n * g->cin * vol3(g->out);
    if (n == 0) return;
    int prof = prof_begin("maxpool_jvp", LIB_OWN, 0);
    maxpool_kernel<<<grid_for(n), THREADS, 0, cuda_stream()>>>(ty, NULL, x, tx, *g, n, 1);
    cuda_launched("maxpool_jvp");
    prof_end(prof);
}

void maxpool3d_backward_cuda(real *dx, const real *dy, const real *x, const ConvGeom *g) {
    size_t nout = (size_t)g->n * g->cin * vol3(g->out), nin = (size_t)g->n * g->cin * vol3(g->in);
    if (nout == 0 || nin == 0) return;
    int prof = prof_begin("maxpool_backward", LIB_OWN, 0);
    int *argmax = (int *)cuda_workspace(WS_KERNEL, nout * sizeof(int));
    maxpool_kernel<<<grid_for(nout), THREADS, 0, cuda_stream()>>>(NULL, argmax, x, NULL, *g, nout, 2);
    cuda_launched("maxpool_argmax");
    pool_backward_kernel<<<grid_for(nin), THREADS, 0, cuda_stream()>>>(dx, dy, argmax, *g, nin, 0);
    cuda_launched("maxpool_backward");
    prof_end(prof);
}

__global__ static void avgpool_kernel(real *y, const real *x, ConvGeom g, size_t n) {
    size_t isz = (size_t)g.in[0] * g.in[1] * g.in[2];
    double inv = 1.0 / ((double)g.k[0] * g.k[1] * g.k[2]);
    for (size_t i = thread_index(); i < n; i += grid_stride()) {
        size_t plane;
        int ot, oh, ow;
        out_coords(g, i, &plane, &ot, &oh, &ow);
        const real *xp = x + plane * isz;
        double acc = 0;
        window_walk(g, ot, oh, ow, [&](long idx) { acc += xp[idx]; });
        y[i] = (real)(acc * inv);
    }
}

void avgpool3d_forward_cuda(real *y, const real *x, const ConvGeom *g) {
    size_t n = (size_t)g->n * g->cin * vol3(g->out);
    if (n == 0) return;
    int prof = prof_begin("avgpool_forward", LIB_OWN, 0);
    avgpool_kernel<<<grid_for(n), THREADS, 0, cuda_stream()>>>(y, x, *g, n);
    cuda_launched("avgpool_forward");
    prof_end(prof);
}

void avgpool3d_backward_cuda(real *dx, const real *dy, const ConvGeom *g) {
    size_t nin = (size_t)g->n * g->cin * vol3(g->in);
    if (nin == 0 || vol3(g->out) == 0) return;
    int prof = prof_begin("avgpool_backward", LIB_OWN, 0);
    pool_backward_kernel<<<grid_for(nin), THREADS, 0, cuda_stream()>>>(dx, dy, NULL, *g, nin, 1);
    cuda_launched("avgpool_backward");
    prof_end(prof);
}

/* ---- nearest upsampling by integer factors ------------------------------------------------------------------- */

typedef struct Up {
    int in[3], f[3];
} Up;

__global__ static void upsample_kernel(real *y, const real *x, Up u, size_t n) {
    int OT = u.in[0] * u.f[0], OH = u.in[1] * u.f[1], OW = u.in[2] * u.f[2];
    size_t isz = (size_t)u.in[0] * u.in[1] * u.in[2];
    for (size_t i = thread_index(); i < n; i += grid_stride()) {
        size_t r = i;
        int w = (int)(r % (size_t)OW);
        r /= (size_t)OW;
        int h = (int)(r % (size_t)OH);
        r /= (size_t)OH;
        int t = (int)(r % (size_t)OT);
        size_t plane = r / (size_t)OT;
        y[i] = x[plane * isz + ((size_t)(t / u.f[0]) * u.in[1] + (size_t)(h / u.f[1])) * u.in[2] + (size_t)(w / u.f[2])];
    }
}

__global__ static void upsample_backward_kernel(real *dx, const real *dy, Up u, size_t n) {
    int OH = u.in[1] * u.f[1], OW = u.in[2] * u.f[2];
    size_t osz = (size_t)u.in[0] * u.f[0] * OH * OW;
    for (size_t i = thread_index(); i < n; i += grid_stride()) {
        size_t r = i;
        int w = (int)(r % (size_t)u.in[2]);
        r /= (size_t)u.in[2];
        int h = (int)(r % (size_t)u.in[1]);
        r /= (size_t)u.in[1];
        int t = (int)(r % (size_t)u.in[0]);
        size_t plane = r / (size_t)u.in[0];
        real acc = 0;
        for (int a = 0; a < u.f[0]; a++)
            for (int b = 0; b < u.f[1]; b++) {
                const real *row = dy + plane * osz + ((size_t)(t * u.f[0] + a) * OH + (size_t)(h * u.f[1] + b)) * OW;
                for (int d = 0; d < u.f[2]; d++) acc += row[w * u.f[2] + d];
            }
        dx[i] += acc;
    }
}

void upsample_nearest3d_forward_cuda(real *y, const real *x, size_t nc, const int in[3], const int f[3]) {
    Up u = {{in[0], in[1], in[2]}, {f[0], f[1], f[2]}};
    size_t n = nc * vol3(in) * vol3(f);
    if (n == 0) return;
    int prof = prof_begin("upsample_forward", LIB_OWN, 0);
    upsample_kernel<<<grid_for(n), THREADS, 0, cuda_stream()>>>(y, x, u, n);
    cuda_launched("upsample_forward");
    prof_end(prof);
}

void upsample_nearest3d_backward_cuda(real *dx, const real *dy, size_t nc, const int in[3], const int f[3]) {
    Up u = {{in[0], in[1], in[2]}, {f[0], f[1], f[2]}};
    size_t n = nc * vol3(in);
    if (n == 0) return;
    int prof = prof_begin("upsample_backward", LIB_OWN, 0);
    upsample_backward_kernel<<<grid_for(n), THREADS, 0, cuda_stream()>>>(dx, dy, u, n);
    cuda_launched("upsample_backward");
    prof_end(prof);
}

/* ---- bilinear resize, align_corners = True ------------------------------------------------------------------- */

/* conv.c's bilinear_tap: output i reads source i (in - 1) / (out - 1) between i0 and i1 = i0 + 1 */
__device__ static void bilinear_tap(int i, int in, int out, int *i0, int *i1, real *frac) {
    double src = out > 1 ? (double)i * (in - 1) / (out - 1) : 0;
    int lo = (int)src;
    if (lo > in - 1) lo = in - 1;
    *i0 = lo;
    *i1 = lo < in - 1 ? lo + 1 : lo;
    *frac = (real)(src - lo);
}

/* The weight output o gives to input i along one axis (both taps may be i at the last row). */
__device__ static real tap_weight(int o, int i, int in, int out) {
    int i0, i1;
    real f;
    bilinear_tap(o, in, out, &i0, &i1, &f);
    return (i0 == i ? 1 - f : 0) + (i1 == i ? f : 0);
}

/* The outputs along one axis that may read input i: a little wider than exact, tap_weight decides. */
__device__ static void tap_range(int i, int in, int out, int *lo, int *hi) {
    if (in == 1 || out == 1) {
        *lo = 0;
        *hi = out - 1;
        return;
    }
    double scale = (double)(out - 1) / (in - 1);
    *lo = (int)floor((i - 1) * scale) - 1;
    *hi = (int)ceil((i + 1) * scale) + 1;
    if (*lo < 0) *lo = 0;
    if (*hi > out - 1) *hi = out - 1;
}

typedef struct Rs {
    int ih, iw, oh, ow;
} Rs;

__global__ static void resize_kernel(real *y, const real *x, Rs r, size_t n) {
    size_t isz = (size_t)r.ih * r.iw, osz = (size_t)r.oh * r.ow;
    for (size_t i = thread_index(); i < n; i += grid_stride()) {
        size_t plane = i / osz, o = i % osz;
        int h = (int)(o / (size_t)r.ow), w = (int)(o % (size_t)r.ow), h0, h1, w0, w1;
        real lh, lw;
        bilinear_tap(h, r.ih, r.oh, &h0, &h1, &lh);
        bilinear_tap(w, r.iw, r.ow, &w0, &w1, &lw);
        const real *xp = x + plane * isz;
        y[i] = (1 - lh) * ((1 - lw) * xp[(size_t)h0 * r.iw + w0] + lw * xp[(size_t)h0 * r.iw + w1]) +
               lh * ((1 - lw) * xp[(size_t)h1 * r.iw + w0] + lw * xp[(size_t)h1 * r.iw + w1]);
    }
}

__global__ static void resize_backward_kernel(real *dx, const real *dy, Rs r, size_t n) {
    size_t isz = (size_t)r.ih * r.iw, osz = (size_t)r.oh * r.ow;
    for (size_t i = thread_index(); i < n; i += grid_stride()) {
        size_t plane = i / isz, q = i % isz;
        int hi = (int)(q / (size_t)r.iw), wi = (int)(q % (size_t)r.iw), h0, h1, w0, w1;
        tap_range(hi, r.ih, r.oh, &h0, &h1);
        tap_range(wi, r.iw, r.ow, &w0, &w1);
        real acc = 0;
        for (int h = h0; h <= h1; h++) {
            real wh = tap_weight(h, hi, r.ih, r.oh);
            if (wh == 0) continue;
            for (int w = w0; w <= w1; w++) {
                real ww = tap_weight(w, wi, r.iw, r.ow);
                if (ww != 0) acc += wh * ww * dy[plane * osz + (size_t)h * r.ow + w];
            }
        }
        dx[i] += acc;
    }
}

void resize_bilinear_forward_cuda(real *y, const real *x, size_t nc, int ih, int iw, int oh, int ow) {
    Rs r = {ih, iw, oh, ow};
    size_t n = nc * (size_t)oh * ow;
    if (n == 0) return;
    int prof = prof_begin("resize_forward", LIB_OWN, 0);
    resize_kernel<<<grid_for(n), THREADS, 0, cuda_stream()>>>(y, x, r, n);
    cuda_launched("resize_forward");
    prof_end(prof);
}

void resize_bilinear_backward_cuda(real *dx, const real *dy, size_t nc, int ih, int iw, int oh, int ow) {
    Rs r = {ih, iw, oh, ow};
    size_t n = nc * (size_t)ih * iw;
    if (n == 0) return;
    int prof = prof_begin("resize_backward", LIB_OWN, 0);
    resize_backward_kernel<<<grid_for(n), THREADS, 0, cuda_stream()>>>(dx, dy, r, n);
    cuda_launched("resize_backward");
    prof_end(prof);
}

/* ---- global average pooling: y (NC) = the mean of each plane of x (NC, len) ----------------------------------- */

struct PlaneMeanOp {
    real *y;
    const real *x;
    double len;
    __device__ double term(const size_t off[3]) const { return x[off[0]]; }
    __device__ void store(size_t o, double s) const { y[o] = (real)(s / len); }
};

void global_avgpool_forward_cuda(real *y, const real *x, size_t nc, size_t len) {
    if (nc == 0) return;
    SumPlan p;
    p.keep.n = nc > 1 ? 1 : 0;
    p.keep.ext[0] = nc;
    p.red.n = len > 1 ? 1 : 0;
    p.red.ext[0] = len;
    for (int k = 0; k < 3; k++) {
        p.keep.st[k][0] = k == 0 ? len : 0;
        p.red.st[k][0] = k == 0 ? 1 : 0;
    }
    PlaneMeanOp op = {y, x, (double)(len ? len : 1)};
    int prof = prof_begin("global_avgpool_forward", LIB_OWN, 0);
    run_sum(p, op, "global_avgpool_forward");
    prof_end(prof);
}

__global__ static void plane_broadcast_kernel(real *dx, const real *dy, size_t n, size_t len, real inv) {
    for (size_t i = thread_index(); i < n; i += grid_stride()) {
        real g = dy[i / len] * inv;
        dx[i] += g;
    }
}

void global_avgpool_backward_cuda(real *dx, const real *dy, size_t nc, size_t len) {
    size_t n = nc * len;
    if (n == 0) return;
    real inv = (real)(1.0 / (double)(len ? len : 1));
    int prof = prof_begin("global_avgpool_backward", LIB_OWN, 0);
    plane_broadcast_kernel<<<grid_for(n), THREADS, 0, cuda_stream()>>>(dx, dy, n, len, inv);
    cuda_launched("global_avgpool_backward");
    prof_end(prof);
}
