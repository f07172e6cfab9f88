/* pool_ext.c: ceil-mode pooling geometry and the average pool that leaves padding out of its count
 * (pool_ext.h).
 *
 * What it is: plain loops over (sample, channel) planes, split across the thread pool; every output is
 * computed the same way whatever the thread count. What it is not: the max pooling kernel itself (conv.c's
 * handles windows that hang over the end), or a fast path (these pools are a small part of the networks
 * that use them).
 * Dimension legend: N batch, C channels, (T, H, W) input, (To, Ho, Wo) output, k kernel, s stride, p padding. */
#include "kernels/pool_ext.h"

#include "kernels/gemm.h"
#include "kernels/threads.h"

ConvGeom pool_geom_ceil(int n, int ch, const int in[3], const int k[3], const int s[3]) {
    ConvGeom g = conv_geom(n, ch, ch, in, k, s, (const int[3]){0, 0, 0});
    for (int a = 0; a < 3; a++) {
        int span = in[a] - k[a];
        int out = (span + s[a] - 1) / s[a] + 1;            /* span >= 0, checked by conv_geom */
        if ((out - 1) * s[a] >= in[a]) out--;               /* the last window must start inside the input */
        g.out[a] = out;
    }
    return g;
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
