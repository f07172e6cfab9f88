/* resize.c: bilinear resizing in three coordinate conventions (resize.h).
 *
 * What it is: the raw kernels. Each call first tabulates, for every output row and column, the two source
 * indices and the weight of the second one (the resize is separable, so oh + ow taps describe it), then
 * mixes the 2 x 2 neighbours of every output pixel. Planes are split across the thread pool; each plane is
 * computed the same way whatever the thread count.
 * What it is not: an antialiasing resize, or a tape op (ops/resize.c records this one).
 * Dimension legend: nc planes, ih iw input size, oh ow output size. */
#include "kernels/resize.h"

#include <math.h>
#include <stdlib.h>

#include "kernels/threads.h"

const char *resize_mode_name(ResizeMode m) {
    switch (m) {
    case RESIZE_ALIGN_CORNERS: return "align_corners";
    case RESIZE_HALF_PIXEL: return "half_pixel";
    case RESIZE_TF1: return "tf1";
    }
    return "?";
}

/* One axis' taps: output i = (1 - w[i]) x[lo[i]] + w[i] x[hi[i]]. */
typedef struct Taps {
    int *lo, *hi;
    real *w;
} Taps;

static void taps_fill(Taps *t, int in, int out, ResizeMode m) {
    for (int i = 0; i < out; i++) {
        int lo;
        real w;
        if (m == RESIZE_TF1) {
            /* TensorFlow's legacy scaler: scale = in / out and source = i * scale, both in float; the upper
             * index is ceil(source) capped at in - 1, which equals lo + 1 unless the weight is 0 anyway. */
            float scale = (float)in / (float)out;
            float src = (float)i * scale;
            float fl = floorf(src);
            lo = (int)fl;
            w = (real)(src - fl);
        } else {
            /* PyTorch's area_pixel_compute_scale / area_pixel_compute_source_index, in the input's precision. */
            real src;
            if (m == RESIZE_ALIGN_CORNERS) {
                real scale = out > 1 ? (real)(in - 1) / (real)(out - 1) : 0;
                src = scale * (real)i;
            } else {
                real scale = (real)in / (real)out;
                src = scale * ((real)i + (real)0.5) - (real)0.5;
                if (src < 0) src = 0;
            }
            lo = (int)src;   /* src >= 0: truncation is floor */
            w = src - (real)lo;
        }
        if (lo > in - 1) lo = in - 1;
        if (w < 0) w = 0;
        if (w > 1) w = 1;
        t->lo[i] = lo;
        t->hi[i] = lo < in - 1 ? lo + 1 : lo;
        t->w[i] = w;
    }
}

typedef struct ResizeJob {
    real *out;
    const real *in;
    size_t nc;
    int ih, iw, oh, ow, backward, nparts;
    Taps th, tw;
} ResizeJob;

static void resize_task(void *arg, int part, int thread) {
    (void)thread;
    const ResizeJob *j = arg;
    size_t isz = (size_t)j->ih * j->iw, osz = (size_t)j->oh * j->ow;
    size_t c0 = j->nc * (size_t)part / (size_t)j->nparts, c1 = j->nc * (size_t)(part + 1) / (size_t)j->nparts;
    const int *wlo = j->tw.lo, *whi = j->tw.hi;
    const real *ww = j->tw.w;
    for (size_t pl = c0; pl < c1; pl++)
        for (int h = 0; h < j->oh; h++) {
            real lh = j->th.w[h];
            size_t r0 = (size_t)j->th.lo[h] * j->iw, r1 = (size_t)j->th.hi[h] * j->iw;
            if (!j->backward) {
                const real *x0 = j->in + pl * isz + r0, *x1 = j->in + pl * isz + r1;
                real *y = j->out + pl * osz + (size_t)h * j->ow;
                /* PyTorch's order: h0 (w0 x00 + w1 x01) + h1 (w0 x10 + w1 x11) */
                for (int w = 0; w < j->ow; w++) {
                    real lw = ww[w];
                    y[w] = (1 - lh) * ((1 - lw) * x0[wlo[w]] + lw * x0[whi[w]]) +
                           lh * ((1 - lw) * x1[wlo[w]] + lw * x1[whi[w]]);
                }
            } else {
                const real *dy = j->in + pl * osz + (size_t)h * j->ow;
                real *dx0 = j->out + pl * isz + r0, *dx1 = j->out + pl * isz + r1;
                for (int w = 0; w < j->ow; w++) {
                    real lw = ww[w], g = dy[w];
                    dx0[wlo[w]] += (1 - lh) * (1 - lw) * g;
                    dx0[whi[w]] += (1 - lh) * lw * g;
                    dx1[wlo[w]] += lh * (1 - lw) * g;
                    dx1[whi[w]] += lh * lw * g;
                }
            }
        }
}

static void resize_run(real *out, const real *in, size_t nc, int ih, int iw, int oh, int ow, ResizeMode m,
                       int backward) {
    I2V_ASSERT(ih >= 1 && iw >= 1 && oh >= 1 && ow >= 1, "resize from %dx%d to %dx%d", ih, iw, oh, ow);
    I2V_ASSERT(m == RESIZE_ALIGN_CORNERS || m == RESIZE_HALF_PIXEL || m == RESIZE_TF1, "resize mode %d", (int)m);
    if (nc == 0) return;
    /* one block for both axes' tables: (oh + ow) * (2 ints + 1 real) */
    size_t n = (size_t)oh + (size_t)ow;
    void *block = xmalloc(n * (2 * sizeof(int) + sizeof(real)));
    real *wts = block;
    int *idx = (int *)(wts + n);
    ResizeJob j = {out, in, nc, ih, iw, oh, ow, backward, 0,
                   {idx, idx + n, wts}, {idx + oh, idx + n + oh, wts + oh}};
    taps_fill(&j.th, ih, oh, m);
    taps_fill(&j.tw, iw, ow, m);
    int nth = threads_count();
    j.nparts = (size_t)nth < nc ? nth : (int)nc;
    parallel_for(j.nparts, resize_task, &j);
    free(block);
}

void resize_bilinear_mode(real *y, const real *x, size_t nc, int ih, int iw, int oh, int ow, ResizeMode m) {
    resize_run(y, x, nc, ih, iw, oh, ow, m, 0);
}

void resize_bilinear_mode_backward(real *dx, const real *dy, size_t nc, int ih, int iw, int oh, int ow,
                                   ResizeMode m) {
    resize_run(dx, dy, nc, ih, iw, oh, ow, m, 1);
}
