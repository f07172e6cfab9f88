/* resize.c: TEMPORARY stand-in for the bilinear resize kernels that the metric-protocols branch owns
 * (same header, same prototype); it is deleted when that branch is merged. Plain loops, no threads.
 * Dimension legend: nc planes, ih iw input size, oh ow output size. */
#include "kernels/resize.h"

#include <math.h>

const char *resize_mode_name(ResizeMode m) {
    return m == RESIZE_ALIGN_CORNERS ? "align_corners" : m == RESIZE_HALF_PIXEL ? "half_pixel" : "tf1";
}

/* output index i along an axis in -> out: lower source index and the weight of the upper one */
static void tap(int i, int in, int out, ResizeMode m, int *lo, int *hi, real *w) {
    real src;
    if (m == RESIZE_TF1) {
        float s = (float)i * ((float)in / (float)out);
        src = (real)s;
        *lo = (int)floorf(s);
        *w = (real)(s - floorf(s));
    } else {
        if (m == RESIZE_ALIGN_CORNERS) src = out > 1 ? (real)(in - 1) / (real)(out - 1) * (real)i : 0;
        else {
            src = (real)in / (real)out * ((real)i + (real)0.5) - (real)0.5;
            if (src < 0) src = 0;
        }
        *lo = (int)src;
        *w = src - (real)*lo;
    }
    if (*lo > in - 1) *lo = in - 1;
    *hi = *lo < in - 1 ? *lo + 1 : *lo;
}

static void run(real *out, const real *in, size_t nc, int ih, int iw, int oh, int ow, ResizeMode m, int bwd) {
    for (size_t p = 0; p < nc; p++)
        for (int h = 0; h < oh; h++) {
            int h0, h1, w0, w1;
            real lh, lw;
            tap(h, ih, oh, m, &h0, &h1, &lh);
            for (int w = 0; w < ow; w++) {
                tap(w, iw, ow, m, &w0, &w1, &lw);
                const size_t b = p * (size_t)ih * iw, o = (p * (size_t)oh + h) * ow + w;
                if (!bwd) {
                    const real *x = in + b;
                    out[o] = (1 - lh) * ((1 - lw) * x[h0 * iw + w0] + lw * x[h0 * iw + w1]) +
                             lh * ((1 - lw) * x[h1 * iw + w0] + lw * x[h1 * iw + w1]);
                } else {
                    real *dx = out + b, g = in[o];
                    dx[h0 * iw + w0] += (1 - lh) * (1 - lw) * g;
                    dx[h0 * iw + w1] += (1 - lh) * lw * g;
                    dx[h1 * iw + w0] += lh * (1 - lw) * g;
                    dx[h1 * iw + w1] += lh * lw * g;
                }
            }
        }
}

void resize_bilinear_mode(real *y, const real *x, size_t nc, int ih, int iw, int oh, int ow, ResizeMode m) {
    run(y, x, nc, ih, iw, oh, ow, m, 0);
}
void resize_bilinear_mode_backward(real *dx, const real *dy, size_t nc, int ih, int iw, int oh, int ow,
                                   ResizeMode m) {
    run(dx, dy, nc, ih, iw, oh, ow, m, 1);
}
