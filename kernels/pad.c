/* pad.c: zero padding with separate amounts before and after each axis (pad.h).
 *
 * What it is: two loops over rows, the forward copying each input row into the middle of a zeroed output
 * row, the backward adding the middle of each gradient row back; planes are split across the thread pool.
 * What it is not: reflection or replication padding, or negative padding (cropping).
 * Dimension legend: nc planes, (T, H, W) input, (To, Ho, Wo) output. */
#include "kernels/pad.h"

#include <string.h>

#include "kernels/threads.h"

typedef struct PadJob {
    real *out;
    const real *in;
    size_t nc;
    const int *I, *f, *b;
    int backward, nparts;
} PadJob;

static void pad_task(void *arg, int part, int thread) {
    (void)thread;
    const PadJob *j = arg;
    const int *I = j->I, *f = j->f;
    int To = I[0] + f[0] + j->b[0], Ho = I[1] + f[1] + j->b[1], Wo = I[2] + f[2] + j->b[2];
    size_t isz = (size_t)I[0] * I[1] * I[2], osz = (size_t)To * Ho * Wo;
    size_t p0 = j->nc * (size_t)part / (size_t)j->nparts, p1 = j->nc * (size_t)(part + 1) / (size_t)j->nparts;
    for (size_t p = p0; p < p1; p++) {
        if (!j->backward) {
            real *y = j->out + p * osz;
            const real *x = j->in + p * isz;
            memset(y, 0, osz * sizeof(real));
            for (int t = 0; t < I[0]; t++)
                for (int h = 0; h < I[1]; h++)
                    memcpy(y + ((size_t)(t + f[0]) * Ho + (size_t)(h + f[1])) * Wo + f[2],
                           x + ((size_t)t * I[1] + h) * I[2], (size_t)I[2] * sizeof(real));
        } else {
            real *dx = j->out + p * isz;
            const real *dy = j->in + p * osz;
            for (int t = 0; t < I[0]; t++)
                for (int h = 0; h < I[1]; h++) {
                    real *d = dx + ((size_t)t * I[1] + h) * I[2];
                    const real *g = dy + ((size_t)(t + f[0]) * Ho + (size_t)(h + f[1])) * Wo + f[2];
                    for (int w = 0; w < I[2]; w++) d[w] += g[w];
                }
        }
    }
}

static void pad_run(real *out, const real *in, size_t nc, const int in3[3], const int front[3], const int back[3],
                    int backward) {
    for (int a = 0; a < 3; a++)
        I2V_ASSERT(in3[a] >= 1 && front[a] >= 0 && back[a] >= 0, "pad3d: axis %d: size %d, padding %d and %d", a,
                   in3[a], front[a], back[a]);
    int n = threads_count();
    if ((size_t)n > nc) n = nc ? (int)nc : 1;
    PadJob j = {out, in, nc, in3, front, back, backward, n};
    parallel_for(n, pad_task, &j);
}

void pad3d_forward(real *y, const real *x, size_t nc, const int in[3], const int front[3], const int back[3]) {
    pad_run(y, x, nc, in, front, back, 0);
}

void pad3d_backward(real *dx, const real *dy, size_t nc, const int in[3], const int front[3], const int back[3]) {
    pad_run(dx, dy, nc, in, front, back, 1);
}
