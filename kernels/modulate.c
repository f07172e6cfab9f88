/* modulate.c: the raw-array kernels of the normalise-modulate-activate step that SPADE and AdaIN share
 * (decoder.py / normalization_layer.py of the stage-1 generator), as one op:
 *     y = lrelu_slope(xn (scale + one) + shift),  xn = GroupNorm_G(x) without affine parameters,
 * with scale and shift per (n, c, h, w) (SPADE, one = 1) or per (n, c) (AdaIN: instance norm, G = C,
 * one = 0), repeated over T. One op instead of group_norm + modulate + leaky relu because neither the
 * normalised xn nor the product and sum, each as large as x (100-270 MB at BAIR's full-resolution blocks),
 * then need to be kept for the backward pass: xn is recomputed from x and the group statistics. The
 * forward computes xn exactly as the group-norm kernel does (it is that kernel), so the numbers are those
 * of the separate ops.
 *
 * Not here: the tape op (ops/norm.c, t_norm_modulate_lrelu) or the modules (ae.c). Threads: one task per
 * (n, c) in the forward, per (n, g) in the backward; every sum in a fixed order.
 * Dimension legend: N batch, C channels, G groups, T frames, HW = H W, P = HW (SPADE) or 1 (AdaIN).
 */
#include "kernels/modulate.h"

#include "kernels/formulas.h"
#include "kernels/norm.h"
#include "kernels/sums.h"
#include "kernels/threads.h"

typedef struct ModArgs {
    real *y, *dx, *ds, *db;          /* (N, C, T, HW), (N, C, T, HW), (N, C, P), (N, C, P); gradients may be NULL */
    const real *x, *s, *b, *dy;      /* x (xn in the forward's in-place pass), scale, shift, dL/dy */
    const real *mean, *rstd;         /* (N, G) group statistics */
    int C, G, T;
    size_t HW, P;
    real one, slope;
} ModArgs;

/* y = lrelu(y (s + one) + b) in place on the normalised values; one task per (n, c) */
static void modulate_forward_task(void *arg, int nc, int thread) {
    (void)thread;
    const ModArgs *a = arg;
    const real *s = a->s + (size_t)nc * a->P, *b = a->b + (size_t)nc * a->P;
    for (int t = 0; t < a->T; t++) {
        real *y = a->y + ((size_t)nc * (size_t)a->T + (size_t)t) * a->HW;
        for (size_t p = 0; p < a->HW; p++) {
            size_t q = a->P == 1 ? 0 : p;
            y[p] = leaky_relu_f(modulate_f(y[p], s[q] + a->one, b[q]), a->slope);
        }
    }
}

/* dL/dxn of one element, from x (xn recomputed as the forward made it); sc = scale + one */
static inline real modulate_dxn(const ModArgs *a, real x, real mean, real rstd, real sc, real shift, real dy,
                                real *xn_out, real *g_out) {
    real xn = (x - mean) * rstd;
    real z = modulate_f(xn, sc, shift);
    real g = leaky_relu_grad(z, dy, a->slope);
    *xn_out = xn;
    *g_out = g;
    return g * sc;
}

/* Pass 1 over positions p0 .. p0 + lanes - 1 of one frame of one channel: lane l of the sums takes
 * position p0 + l. AdaIN (P = 1): the scale and shift gradients go to acc_s, acc_b; SPADE: to ds[p], db[p].
 * No branch inside a loop, so that the compiler vectorises the lanes. */
static inline void modulate_block_sums(const ModArgs *a, size_t p0, int lanes, const real *restrict x,
                                       const real *restrict dy, const real *restrict s, const real *restrict b,
                                       real mean, real rstd, real *restrict ds, real *restrict db,
                                       double *restrict sh, double *restrict shx, double *restrict acc_s,
                                       double *restrict acc_b) {
    real xn[SUM_LANES], gl[SUM_LANES];
    x += p0;
    dy += p0;
    if (a->P == 1) {
        for (int l = 0; l < lanes; l++) {
            real dxn = modulate_dxn(a, x[l], mean, rstd, s[0] + a->one, b[0], dy[l], &xn[l], &gl[l]);
            sh[l] += dxn;
            shx[l] += (double)dxn * xn[l];
            acc_s[l] += (double)gl[l] * xn[l];
            acc_b[l] += gl[l];
        }
        return;
    }
    s += p0;
    b += p0;
    for (int l = 0; l < lanes; l++) {
        real dxn = modulate_dxn(a, x[l], mean, rstd, s[l] + a->one, b[l], dy[l], &xn[l], &gl[l]);
        sh[l] += dxn;
        shx[l] += (double)dxn * xn[l];
    }
    if (ds)
        for (int l = 0; l < lanes; l++) ds[p0 + (size_t)l] += gl[l] * xn[l];
    if (db)
        for (int l = 0; l < lanes; l++) db[p0 + (size_t)l] += gl[l];
}

/* Pass 1 over one frame of one channel (HW values), lane l taking the positions p = l mod SUM_LANES:
 * whole blocks of SUM_LANES (a constant trip count, which the compiler vectorises), then the rest. */
static void modulate_frame_sums(const ModArgs *a, const real *x, const real *dy, const real *s, const real *b,
                                real mean, real rstd, real *ds, real *db, double *sh, double *shx, double *acc_s,
                                double *acc_b) {
    size_t p0 = 0;
    for (; p0 + SUM_LANES <= a->HW; p0 += SUM_LANES)
        modulate_block_sums(a, p0, SUM_LANES, x, dy, s, b, mean, rstd, ds, db, sh, shx, acc_s, acc_b);
    modulate_block_sums(a, p0, (int)(a->HW - p0), x, dy, s, b, mean, rstd, ds, db, sh, shx, acc_s, acc_b);
}

/* One task per (n, g), which owns the channels of its group: pass 1 accumulates the scale and shift
 * gradients and the two group sums of the group-norm backward, pass 2 writes
 * dx = rstd (dxn - mean(dxn) - xn mean(dxn xn)) (kernels/norm.c's group-norm backward without affine parameters). */
static void modulate_backward_task(void *arg, int i, int thread) {
    (void)thread;
    const ModArgs *a = arg;
    int n = i / a->G, g = i % a->G, cpg = a->C / a->G;
    real mean = a->mean[i], rstd = a->rstd[i];
    double sh[SUM_LANES] = {0}, shx[SUM_LANES] = {0};   /* partial sums by p mod SUM_LANES (sums.h) */
    for (int k = 0; k < cpg; k++) {
        int nc = n * a->C + g * cpg + k;
        const real *s = a->s + (size_t)nc * a->P, *b = a->b + (size_t)nc * a->P;
        real *ds = a->ds ? a->ds + (size_t)nc * a->P : NULL, *db = a->db ? a->db + (size_t)nc * a->P : NULL;
        double acc_s[SUM_LANES] = {0}, acc_b[SUM_LANES] = {0};   /* P = 1: the sums over T H W */
        for (int t = 0; t < a->T; t++) {
            size_t off = ((size_t)nc * (size_t)a->T + (size_t)t) * a->HW;
            modulate_frame_sums(a, a->x + off, a->dy + off, s, b, mean, rstd, ds, db, sh, shx, acc_s, acc_b);
        }
        if (a->P == 1) {
            if (ds) ds[0] += (real)sum_lanes(acc_s, 0);
            if (db) db[0] += (real)sum_lanes(acc_b, 0);
        }
    }
    if (!a->dx) return;
    double m = (double)cpg * (double)a->T * (double)a->HW;
    real mh = (real)(sum_lanes(sh, 0) / m), mhx = (real)(sum_lanes(shx, 0) / m);
    for (int k = 0; k < cpg; k++) {
        int nc = n * a->C + g * cpg + k;
        const real *s = a->s + (size_t)nc * a->P, *b = a->b + (size_t)nc * a->P;
        for (int t = 0; t < a->T; t++) {
            size_t off = ((size_t)nc * (size_t)a->T + (size_t)t) * a->HW;
            const real *x = a->x + off, *dy = a->dy + off;
            real *dx = a->dx + off;
            for (size_t p = 0; p < a->HW; p++) {
                size_t q = a->P == 1 ? 0 : p;
                real xn, gl, dxn = modulate_dxn(a, x[p], mean, rstd, s[q] + a->one, b[q], dy[p], &xn, &gl);
                dx[p] += norm_input_grad_xn(dxn, xn, rstd, mh, mhx);
            }
        }
    }
}

void norm_modulate_lrelu_forward(real *y, real *mean, real *rstd, const real *x, const real *scale, const real *shift,
                                 int N, int C, int T, size_t HW, size_t P, int G, double eps, real one, real slope) {
    group_norm_forward(y, mean, rstd, x, NULL, NULL, N, C, (size_t)T * HW, G, eps);
    ModArgs a = {.y = y, .s = scale, .b = shift, .C = C, .G = G, .T = T, .HW = HW, .P = P, .one = one, .slope = slope};
    parallel_for(N * C, modulate_forward_task, &a);
}

void norm_modulate_lrelu_backward(real *dx, real *dscale, real *dshift, const real *mean, const real *rstd,
                                  const real *dy, const real *x, const real *scale, const real *shift, int N, int C,
                                  int T, size_t HW, size_t P, int G, real one, real slope) {
    ModArgs a = {.dx = dx, .ds = dscale, .db = dshift, .x = x, .s = scale, .b = shift, .dy = dy, .mean = mean,
                 .rstd = rstd, .C = C, .G = G, .T = T, .HW = HW, .P = P, .one = one, .slope = slope};
    parallel_for(N * G, modulate_backward_task, &a);
}
