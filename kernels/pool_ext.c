/* pool_ext.c: ceil-mode pooling geometry, the average pool that leaves padding out of its count, and max
 * pooling one axis at a time (pool_ext.h).
 *
 * What it is: plain loops over (sample, channel) planes, split across the thread pool; every output is
 * computed the same way whatever the thread count. What it is not: a max pooling backward (conv.c's, which
 * handles windows that hang over the end, serves every geometry here).
 * Dimension legend: N batch, C channels, (T, H, W) input, (To, Ho, Wo) output, k kernel, s stride, p padding. */
#include "kernels/pool_ext.h"

#include <math.h>

#include "kernels/threads.h"

ConvGeom pool_geom_ceil(int n, int ch, const int in[3], const int k[3], const int s[3], const int p[3]) {
    ConvGeom g = conv_geom(n, ch, ch, in, k, s, p);
    for (int a = 0; a < 3; a++) {
        int span = in[a] + 2 * p[a] - k[a];
        int out = (span + s[a] - 1) / s[a] + 1;            /* span >= 0, checked by conv_geom */
        if ((out - 1) * s[a] >= in[a] + p[a]) out--;        /* the last window must start inside input or left pad */
        g.out[a] = out;
    }
    return g;
}

/* ---- max pooling one axis at a time ---------------------------------------------------------------------- */

/* out (outer, o, inner) = the maximum over the in-range part of each window along the middle axis of
 * in (outer, n, inner): out[a][j][i] = max over d < k with 0 <= j s - p + d < n of in[a][j s - p + d][i].
 * -inf for an empty window; a NaN wins (v > m fails for it, v != v does not). Tap by tap, each over the
 * outputs whose window holds it in range, so the innermost loop is branch-free: over contiguous i, or
 * over j (stride s in the input) when inner is 1. */
static void max_axis(real *out, const real *in, size_t outer, int n, size_t inner, int k, int s, int p, int o) {
    for (size_t a = 0; a < outer; a++) {
        real *y = out + a * (size_t)o * inner;
        const real *x = in + a * (size_t)n * inner;
        for (size_t i = 0; i < (size_t)o * inner; i++) y[i] = -INFINITY;
        for (int d = 0; d < k; d++) {
            /* j s - p + d in [0, n)  <=>  j in [ceil((p - d) / s), floor((n - 1 + p - d) / s)] */
            int lo = p - d > 0 ? (p - d + s - 1) / s : 0;
            int hi = (n - 1 + p - d) >= 0 ? (n - 1 + p - d) / s + 1 : 0;
            if (hi > o) hi = o;
            if (inner == 1) {
                const real *xs = x + (lo * s - p + d);
                for (int j = lo; j < hi; j++) {
                    real v = xs[(size_t)(j - lo) * s], m = y[j];
                    y[j] = (v > m || v != v) ? v : m;
                }
                continue;
            }
            for (int j = lo; j < hi; j++) {
                const real *xr = x + (size_t)(j * s - p + d) * inner;
                real *yr = y + (size_t)j * inner;
                for (size_t i = 0; i < inner; i++) {
                    real v = xr[i], m = yr[i];
                    yr[i] = (v > m || v != v) ? v : m;
                }
            }
        }
    }
}

typedef struct SepJob {
    real *y;
    const real *x;
    const ConvGeom *g;
    real *ws;            /* per task: T H Wo + T Ho Wo reals */
    size_t ws_per;
    int nparts;
} SepJob;

static void sep_task(void *arg, int part, int thread) {
    (void)thread;
    const SepJob *j = arg;
    const ConvGeom *g = j->g;
    const int *I = g->in, *O = g->out, *k = g->k, *s = g->s, *p = g->p;
    size_t nplanes = (size_t)g->n * (size_t)g->cin;
    size_t isz = (size_t)I[0] * I[1] * I[2], osz = (size_t)O[0] * O[1] * O[2];
    real *a = j->ws + (size_t)part * j->ws_per, *b = a + (size_t)I[0] * I[1] * O[2];
    size_t p0 = nplanes * (size_t)part / (size_t)j->nparts, p1 = nplanes * (size_t)(part + 1) / (size_t)j->nparts;
    for (size_t pl = p0; pl < p1; pl++) {
        max_axis(a, j->x + pl * isz, (size_t)I[0] * I[1], I[2], 1, k[2], s[2], p[2], O[2]);   /* W: (T, H, Wo) */
        max_axis(b, a, (size_t)I[0], I[1], (size_t)O[2], k[1], s[1], p[1], O[1]);          /* H: (T, Ho, Wo) */
        max_axis(j->y + pl * osz, b, 1, I[0], (size_t)O[1] * O[2], k[0], s[0], p[0], O[0]); /* T */
    }
}

static size_t sep_per_task(const ConvGeom *g) {
    return (size_t)g->in[0] * g->in[1] * g->out[2] + (size_t)g->in[0] * g->out[1] * g->out[2];
}

static int sep_tasks(const ConvGeom *g) {
    size_t nplanes = (size_t)g->n * (size_t)g->cin;
    int n = threads_count();
    return (size_t)n > nplanes ? (nplanes ? (int)nplanes : 1) : n;
}

size_t maxpool3d_separable_workspace(const ConvGeom *g) { return (size_t)sep_tasks(g) * sep_per_task(g); }

void maxpool3d_separable_forward(real *y, const real *x, const ConvGeom *g, real *ws) {
    SepJob j = {y, x, g, ws, sep_per_task(g), sep_tasks(g)};
    parallel_for(j.nparts, sep_task, &j);
}

/* The in-range index interval [lo, hi) of output o's window along one axis. */
static void window(int o, int k, int s, int p, int in, int *lo, int *hi) {
    int start = o * s - p;
    *lo = start < 0 ? 0 : start;
    *hi = start + k < in ? start + k : in;
}

typedef struct AvgJob {
    real *out;
    const real *in;
    const ConvGeom *g;
    int backward, nparts;
} AvgJob;

static void avg_task(void *arg, int part, int thread) {
    (void)thread;
    const AvgJob *j = arg;
    const ConvGeom *g = j->g;
    const int *I = g->in, *O = g->out, *k = g->k, *s = g->s, *p = g->p;
    size_t nplanes = (size_t)g->n * (size_t)g->cin;
    size_t isz = (size_t)I[0] * I[1] * I[2], osz = (size_t)O[0] * O[1] * O[2];
    size_t p0 = nplanes * (size_t)part / (size_t)j->nparts, p1 = nplanes * (size_t)(part + 1) / (size_t)j->nparts;
    for (size_t pl = p0; pl < p1; pl++) {
        size_t o = 0;
        for (int ot = 0; ot < O[0]; ot++)
            for (int oh = 0; oh < O[1]; oh++)
                for (int ow = 0; ow < O[2]; ow++, o++) {
                    int t0, t1, h0, h1, w0, w1;
                    window(ot, k[0], s[0], p[0], I[0], &t0, &t1);
                    window(oh, k[1], s[1], p[1], I[1], &h0, &h1);
                    window(ow, k[2], s[2], p[2], I[2], &w0, &w1);
                    double count = (double)(t1 - t0) * (h1 - h0) * (w1 - w0);
                    if (count <= 0) {   /* a window of padding only: PyTorch divides by zero; there is none here */
                        if (!j->backward) j->out[pl * osz + o] = 0;
                        continue;
                    }
                    if (!j->backward) {
                        const real *x = j->in + pl * isz;
                        double acc = 0;
                        for (int t = t0; t < t1; t++)
                            for (int h = h0; h < h1; h++)
                                for (int w = w0; w < w1; w++) acc += x[((size_t)t * I[1] + h) * I[2] + w];
                        j->out[pl * osz + o] = (real)(acc / count);
                    } else {
                        real *dx = j->out + pl * isz, gy = (real)(j->in[pl * osz + o] / count);
                        for (int t = t0; t < t1; t++)
                            for (int h = h0; h < h1; h++)
                                for (int w = w0; w < w1; w++) dx[((size_t)t * I[1] + h) * I[2] + w] += gy;
                    }
                }
    }
}

static void avg_run(real *out, const real *in, const ConvGeom *g, int backward) {
    size_t nplanes = (size_t)g->n * (size_t)g->cin;
    int n = threads_count();
    if ((size_t)n > nplanes) n = nplanes ? (int)nplanes : 1;
    AvgJob j = {out, in, g, backward, n};
    parallel_for(n, avg_task, &j);
}

void avgpool3d_exclude_pad_forward(real *y, const real *x, const ConvGeom *g) { avg_run(y, x, g, 0); }
void avgpool3d_exclude_pad_backward(real *dx, const real *dy, const ConvGeom *g) { avg_run(dx, dy, g, 1); }
