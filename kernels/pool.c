/* pool.c: the raw-array kernels of max and average pooling (with max pooling's forward-mode tangent),
 * global average pooling, nearest upsampling and bilinear resizing, each with its backward.
 *
 * What it is not: the tape ops over them (ops/conv.c), or convolutions (kernels/conv.c). Threads own whole
 * (sample, channel) planes, so no two threads add into one element and results are reproducible.
 * Dimension legend: N batch, C channels, T frames, H, W; a plane is one (sample, channel) of (T, H, W).
 */
#include "kernels/pool.h"

#include <math.h>

#include "kernels/threads.h"

/* ==================================================================================================== */
/* pooling                                                                                               */
/* ==================================================================================================== */

/* The index in the plane (T, H, W) of the first maximum of output (ot, oh, ow)'s window, or -1 when the
 * window holds only padding. Strictly greater keeps the first of equal values; a NaN wins (PyTorch's
 * `val > maxval || isnan(val)`). */
static long window_argmax(const real *xp, const ConvGeom *g, int ot, int oh, int ow) {
    const int *I = g->in, *k = g->k, *s = g->s, *p = g->p;
    long best_i = -1;
    real best = -INFINITY;
    for (int a = 0; a < k[0]; a++) {
        int ti = ot * s[0] - p[0] + a;
        if (ti < 0 || ti >= I[0]) continue;
        for (int bb = 0; bb < k[1]; bb++) {
            int hi = oh * s[1] - p[1] + bb;
            if (hi < 0 || hi >= I[1]) continue;
            for (int d = 0; d < k[2]; d++) {
                int wi = ow * s[2] - p[2] + d;
                if (wi < 0 || wi >= I[2]) continue;
                long idx = ((long)ti * I[1] + hi) * I[2] + wi;
                real v = xp[idx];
                if (best_i < 0 || v > best || isnan(v)) {
                    best = v;
                    best_i = idx;
                }
            }
        }
    }
    return best_i;
}

enum PoolKind { POOL_MAX_FWD, POOL_MAX_BWD, POOL_MAX_JVP, POOL_AVG_FWD, POOL_AVG_BWD };

/* One (sample, channel) plane. out/in by kind: MAX_FWD y/x, MAX_BWD dx/dy (x in xsel), MAX_JVP ty/tx
 * (x in xsel), AVG_FWD y/x, AVG_BWD dx/dy. */
static void pool_plane(int kind, real *out, const real *in, const real *xsel, const ConvGeom *g) {
    const int *I = g->in, *O = g->out, *k = g->k, *s = g->s, *p = g->p;
    real inv = (real)(1.0 / (double)vol3(k));
    size_t o = 0;
    for (int ot = 0; ot < O[0]; ot++)
        for (int oh = 0; oh < O[1]; oh++)
            for (int ow = 0; ow < O[2]; ow++, o++) {
                if (kind == POOL_MAX_FWD || kind == POOL_MAX_BWD || kind == POOL_MAX_JVP) {
                    long i = window_argmax(kind == POOL_MAX_FWD ? in : xsel, g, ot, oh, ow);
                    if (kind == POOL_MAX_FWD) out[o] = i >= 0 ? in[i] : -INFINITY;
                    else if (kind == POOL_MAX_JVP) out[o] = i >= 0 ? in[i] : 0;
                    else if (i >= 0) out[i] += in[o];
                    continue;
                }
                double acc = 0;
                real gy = kind == POOL_AVG_BWD ? in[o] * inv : 0;
                for (int a = 0; a < k[0]; a++) {
                    int ti = ot * s[0] - p[0] + a;
                    if (ti < 0 || ti >= I[0]) continue;
                    for (int bb = 0; bb < k[1]; bb++) {
                        int hi = oh * s[1] - p[1] + bb;
                        if (hi < 0 || hi >= I[1]) continue;
                        size_t row = ((size_t)ti * I[1] + hi) * I[2];
                        for (int d = 0; d < k[2]; d++) {
                            int wi = ow * s[2] - p[2] + d;
                            if (wi < 0 || wi >= I[2]) continue;
                            if (kind == POOL_AVG_FWD) acc += in[row + wi];
                            else out[row + wi] += gy;
                        }
                    }
                }
                if (kind == POOL_AVG_FWD) out[o] = (real)(acc * inv);
            }
}

typedef struct PoolJob {
    int kind;
    real *out;
    const real *in, *xsel;
    const ConvGeom *g;
    int nparts;
} PoolJob;

static void pool_task(void *arg, int part, int thread) {
    (void)thread;
    const PoolJob *j = arg;
    const ConvGeom *g = j->g;
    size_t isz = vol3(g->in), osz = vol3(g->out), c0, c1;
    split_range((size_t)g->n * (size_t)g->cin, j->nparts, part, 1, &c0, &c1);
    int backward = j->kind == POOL_MAX_BWD || j->kind == POOL_AVG_BWD;
    for (size_t pl = c0; pl < c1; pl++)
        pool_plane(j->kind, j->out + pl * (backward ? isz : osz), j->in + pl * (backward ? osz : isz),
                   j->xsel ? j->xsel + pl * isz : NULL, g);
}

static void pool_run(int kind, real *out, const real *in, const real *xsel, const ConvGeom *g) {
    int nth = threads_count();
    PoolJob j = {kind, out, in, xsel, g, nth};
    parallel_for(nth, pool_task, &j);
}

void maxpool3d_forward(real *y, const real *x, const ConvGeom *g) { pool_run(POOL_MAX_FWD, y, x, NULL, g); }
void maxpool3d_backward(real *dx, const real *dy, const real *x, const ConvGeom *g) {
    pool_run(POOL_MAX_BWD, dx, dy, x, g);
}
void maxpool3d_jvp(real *ty, const real *x, const real *tx, const ConvGeom *g) { pool_run(POOL_MAX_JVP, ty, tx, x, g); }
void avgpool3d_forward(real *y, const real *x, const ConvGeom *g) { pool_run(POOL_AVG_FWD, y, x, NULL, g); }
void avgpool3d_backward(real *dx, const real *dy, const ConvGeom *g) { pool_run(POOL_AVG_BWD, dx, dy, NULL, g); }

/* ==================================================================================================== */
/* resampling                                                                                            */
/* ==================================================================================================== */

typedef struct UpJob {
    real *out;
    const real *in;
    size_t nc;
    const int *I, *f;
    int backward, nparts;
} UpJob;

static void upsample_task(void *arg, int part, int thread) {
    (void)thread;
    const UpJob *j = arg;
    const int *I = j->I, *f = j->f;
    int OT = I[0] * f[0], OH = I[1] * f[1], OW = I[2] * f[2];
    size_t isz = vol3(I), osz = (size_t)OT * OH * OW, c0, c1;
    split_range(j->nc, j->nparts, part, 1, &c0, &c1);
    for (size_t pl = c0; pl < c1; pl++)
        for (int t = 0; t < OT; t++)
            for (int h = 0; h < OH; h++) {
                size_t src = ((size_t)(t / f[0]) * I[1] + (size_t)(h / f[1])) * I[2];
                size_t dst = ((size_t)t * OH + h) * OW;
                if (!j->backward) {
                    const real *x = j->in + pl * isz + src;
                    real *y = j->out + pl * osz + dst;
                    for (int w = 0; w < I[2]; w++)
                        for (int r = 0; r < f[2]; r++) y[w * f[2] + r] = x[w];
                } else {
                    const real *dy = j->in + pl * osz + dst;
                    real *dx = j->out + pl * isz + src;
                    for (int w = 0; w < I[2]; w++)
                        for (int r = 0; r < f[2]; r++) dx[w] += dy[w * f[2] + r];
                }
            }
}

void upsample_nearest3d_forward(real *y, const real *x, size_t nc, const int in[3], const int f[3]) {
    UpJob j = {y, x, nc, in, f, 0, threads_count()};
    parallel_for(j.nparts, upsample_task, &j);
}

void upsample_nearest3d_backward(real *dx, const real *dy, size_t nc, const int in[3], const int f[3]) {
    UpJob j = {dx, dy, nc, in, f, 1, threads_count()};
    parallel_for(j.nparts, upsample_task, &j);
}

/* align_corners = True: output i reads source coordinate i (in - 1) / (out - 1) between i0 and i0 + 1 */
static void bilinear_tap(int i, int in, int out, int *i0, int *i1, real *frac) {
    double src = out > 1 ? (double)i * (in - 1) / (out - 1) : 0;
    int lo = (int)src;
    if (lo > in - 1) lo = in - 1;
    *i0 = lo;
    *i1 = lo < in - 1 ? lo + 1 : lo;
    *frac = (real)(src - lo);
}

typedef struct ResizeJob {
    real *out;
    const real *in;
    size_t nc;
    int ih, iw, oh, ow, backward, nparts;
} ResizeJob;

static void resize_task(void *arg, int part, int thread) {
    (void)thread;
    const ResizeJob *j = arg;
    size_t isz = (size_t)j->ih * j->iw, osz = (size_t)j->oh * j->ow, c0, c1;
    split_range(j->nc, j->nparts, part, 1, &c0, &c1);
    for (size_t pl = c0; pl < c1; pl++)
        for (int h = 0; h < j->oh; h++) {
            int h0, h1;
            real lh;
            bilinear_tap(h, j->ih, j->oh, &h0, &h1, &lh);
            for (int w = 0; w < j->ow; w++) {
                int w0, w1;
                real lw;
                bilinear_tap(w, j->iw, j->ow, &w0, &w1, &lw);
                size_t o = (size_t)h * j->ow + w;
                size_t i00 = (size_t)h0 * j->iw + w0, i01 = (size_t)h0 * j->iw + w1;
                size_t i10 = (size_t)h1 * j->iw + w0, i11 = (size_t)h1 * j->iw + w1;
                if (!j->backward) {
                    const real *x = j->in + pl * isz;
                    j->out[pl * osz + o] = (1 - lh) * ((1 - lw) * x[i00] + lw * x[i01]) +
                                           lh * ((1 - lw) * x[i10] + lw * x[i11]);
                } else {
                    real g = j->in[pl * osz + o], *dx = j->out + pl * isz;
                    dx[i00] += (1 - lh) * (1 - lw) * g;
                    dx[i01] += (1 - lh) * lw * g;
                    dx[i10] += lh * (1 - lw) * g;
                    dx[i11] += lh * lw * g;
                }
            }
        }
}

void resize_bilinear_forward(real *y, const real *x, size_t nc, int ih, int iw, int oh, int ow) {
    ResizeJob j = {y, x, nc, ih, iw, oh, ow, 0, threads_count()};
    parallel_for(j.nparts, resize_task, &j);
}

void resize_bilinear_backward(real *dx, const real *dy, size_t nc, int ih, int iw, int oh, int ow) {
    ResizeJob j = {dx, dy, nc, ih, iw, oh, ow, 1, threads_count()};
    parallel_for(j.nparts, resize_task, &j);
}

/* ==================================================================================================== */
/* global average pooling                                                                                */
/* ==================================================================================================== */

void global_avgpool_forward(real *y, const real *x, size_t nc, size_t len) {
    for (size_t pl = 0; pl < nc; pl++) {
        double acc = 0;
        for (size_t i = 0; i < len; i++) acc += x[pl * len + i];
        y[pl] = (real)(acc / (double)(len ? len : 1));
    }
}

void global_avgpool_backward(real *dx, const real *dy, size_t nc, size_t len) {
    real inv = (real)(1.0 / (double)(len ? len : 1));
    for (size_t pl = 0; pl < nc; pl++) {
        real g = dy[pl] * inv;
        for (size_t i = 0; i < len; i++) dx[pl * len + i] += g;
    }
}
