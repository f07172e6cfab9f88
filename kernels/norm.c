/* norm.c: the raw-array kernels of the normalisation layers: group norm and its forward-mode tangent,
 * ActNorm's affine map and data initialisation, batch norm, spectral normalisation (PyTorch's and the
 * BigGAN decoder's).
 *
 * Not here: the tape ops over them (ops/norm.c), the modules that use them (ae.c, flow.c, networks/).
 * Every kernel works on raw arrays: forwards write (=), backwards accumulate (+=) into every non-NULL
 * gradient; they know nothing of tensors or the tape.
 *
 * Dimension legend: N batch, C channels, S the spatial size (product of the axes after C), G groups,
 * M = (C/G) * S the values in one group, Cout x K a weight seen as a matrix. Every reduction accumulates in
 * double: a group of the stage-1 generator holds up to 16 channels x 16 x 64 x 64 = 1M values.
 */
#include "kernels/norm.h"

#include <math.h>
#include <string.h>

#include "kernels/formulas.h"
#include "kernels/sums.h"
#include "kernels/threads.h"

/* ==================================================================================================== */
/* group norm                                                                                            */
/* ==================================================================================================== */

/* The (n, g) block of x is contiguous: M values starting at (n * G + g) * M. */
typedef struct GroupArgs {
    real *y, *mean, *rstd, *dx, *dt, *dweight, *dbias, *saved;
    const real *x, *t, *dy, *weight, *bias, *cmean, *crstd, *csaved;
    int N, C, G;
    size_t S;
    double eps;
} GroupArgs;

/* Two passes (mean, then the squared deviations) so a large mean does not cancel the variance. */
static void group_stats(const real *x, size_t m, double eps, double *mean, double *rstd) {
    double mu = sum_d(x, m) / (double)m;
    *mean = mu;
    *rstd = 1.0 / sqrt(sum_sq_dev_d(x, m, mu) / (double)m + eps);
}

static void gn_forward_task(void *arg, int i, int thread) {
    (void)thread;
    const GroupArgs *a = arg;
    int g = i % a->G, cpg = a->C / a->G;
    size_t m = (size_t)cpg * a->S;
    const real *x = a->x + (size_t)i * m;
    real *y = a->y + (size_t)i * m;
    double mu, r;
    group_stats(x, m, a->eps, &mu, &r);
    real mean = (real)mu, rstd = (real)r;   /* the backward sees exactly these */
    a->mean[i] = mean;
    a->rstd[i] = rstd;
    for (int k = 0; k < cpg; k++) {
        int ch = g * cpg + k;
        real scale = rstd * (a->weight ? a->weight[ch] : 1), shift = a->bias ? a->bias[ch] : 0;
        const real *xc = x + (size_t)k * a->S;
        real *yc = y + (size_t)k * a->S;
        for (size_t s = 0; s < a->S; s++) yc[s] = norm_affine(xc[s], mean, scale, shift);
    }
}

void group_norm_forward(real *y, real *mean, real *rstd, const real *x, const real *weight, const real *bias,
                        int N, int C, size_t S, int G, double eps) {
    GroupArgs a = {.y = y, .mean = mean, .rstd = rstd, .x = x, .weight = weight, .bias = bias, .N = N, .C = C,
                   .G = G, .S = S, .eps = eps};
    parallel_for(N * G, gn_forward_task, &a);
}

/* dweight_c += sum_n,s dy * xhat, dbias_c += sum_n,s dy: one task per channel, so no two tasks share a sum. */
static void gn_param_grad_task(void *arg, int ch, int thread) {
    (void)thread;
    const GroupArgs *a = arg;
    int g = ch / (a->C / a->G);
    double sw = 0, sb = 0;
    for (int n = 0; n < a->N; n++) {
        size_t off = ((size_t)n * a->C + ch) * a->S;
        real mean = a->cmean[n * a->G + g], rstd = a->crstd[n * a->G + g];
        const real *x = a->x + off, *dy = a->dy + off;
        sw += rstd * dot_dev_d(dy, x, a->S, mean);
        sb += sum_d(dy, a->S);
    }
    if (a->dweight) a->dweight[ch] += (real)sw;
    if (a->dbias) a->dbias[ch] += (real)sb;
}

/* With h = dy * weight: dx = rstd * (h - mean(h) - xhat * mean(h * xhat)), exact for any eps. */
static void gn_backward_task(void *arg, int i, int thread) {
    (void)thread;
    const GroupArgs *a = arg;
    int g = i % a->G, cpg = a->C / a->G;
    size_t m = (size_t)cpg * a->S;
    const real *x = a->x + (size_t)i * m, *dy = a->dy + (size_t)i * m;
    real *dx = a->dx + (size_t)i * m;
    real mean = a->cmean[i], rstd = a->crstd[i];
    double sh = 0, shx = 0;
    for (int k = 0; k < cpg; k++) {
        real w = a->weight ? a->weight[g * cpg + k] : 1;
        const real *dyc = dy + (size_t)k * a->S, *xc = x + (size_t)k * a->S;
        sh += w * sum_d(dyc, a->S);
        shx += w * rstd * dot_dev_d(dyc, xc, a->S, mean);
    }
    real mh = (real)(sh / (double)m), mhx = (real)(shx / (double)m);
    for (int k = 0; k < cpg; k++) {
        real w = a->weight ? a->weight[g * cpg + k] : 1;
        for (size_t s = k * a->S; s < (k + 1) * a->S; s++)
            dx[s] += norm_input_grad(x[s], dy[s], w, mean, rstd, mh, mhx);
    }
}

void group_norm_backward(real *dx, real *dweight, real *dbias, const real *mean, const real *rstd, const real *dy,
                         const real *x, const real *weight, int N, int C, size_t S, int G) {
    GroupArgs a = {.dx = dx, .dweight = dweight, .dbias = dbias, .cmean = mean, .crstd = rstd, .dy = dy, .x = x,
                   .weight = weight, .N = N, .C = C, .G = G, .S = S};
    if (dweight || dbias) parallel_for(C, gn_param_grad_task, &a);
    if (dx) parallel_for(N * G, gn_backward_task, &a);
}

/* ---- the tangent ------------------------------------------------------------------------------------
 * Per group, with r = rstd, xhat = (x - mean) r, st = sum t, bt = sum xhat t:
 *   dyhat = r (t - st/M - xhat bt/M),  dy = weight * dyhat.
 * Backward with h = g * weight, sh = sum h, A = sum h xhat, K = sum h t - sh st/M - A bt/M:
 *   dt += r (h - sh/M - xhat A/M)                       (the map t -> dyhat is a symmetric projection)
 *   dx += -(r^2/M) [bt (h - sh/M) + A (t - st/M) + (K - 2 A bt/M) xhat]
 *   dweight_c += sum g * dyhat
 * (dx follows from L = r K as a function of r and xhat, with dr = -(r^2/M) sum xhat dx and
 * dxhat = r (dx - mean dx) + xhat dr / r; it holds for any eps.) saved: (4, N, G) = mean, rstd, st, bt. */

static void gn_jvp_forward_task(void *arg, int i, int thread) {
    (void)thread;
    const GroupArgs *a = arg;
    int g = i % a->G, cpg = a->C / a->G;
    size_t m = (size_t)cpg * a->S, ng = (size_t)a->N * a->G;
    const real *x = a->x + (size_t)i * m, *t = a->t + (size_t)i * m;
    real *dy = a->y + (size_t)i * m;
    double mu, rd;
    group_stats(x, m, a->eps, &mu, &rd);
    real mean = (real)mu, r = (real)rd;
    double st = 0, bt = 0;
    for (size_t j = 0; j < m; j++) {
        st += t[j];
        bt += (x[j] - mean) * r * t[j];
    }
    a->saved[i] = mean;
    a->saved[ng + i] = r;
    a->saved[2 * ng + i] = (real)st;
    a->saved[3 * ng + i] = (real)bt;
    real mt = (real)(st / (double)m), mbt = (real)(bt / (double)m);
    for (int k = 0; k < cpg; k++) {
        real w = a->weight ? a->weight[g * cpg + k] : 1;
        for (size_t s = k * a->S; s < (k + 1) * a->S; s++) dy[s] = w * r * (t[s] - mt - (x[s] - mean) * r * mbt);
    }
}

void group_norm_jvp_forward(real *dy, real *saved, const real *x, const real *t, const real *weight, int N, int C,
                            size_t S, int G, double eps) {
    GroupArgs a = {.y = dy, .saved = saved, .x = x, .t = t, .weight = weight, .N = N, .C = C, .G = G, .S = S,
                   .eps = eps};
    parallel_for(N * G, gn_jvp_forward_task, &a);
}

static void gn_jvp_weight_task(void *arg, int ch, int thread) {
    (void)thread;
    const GroupArgs *a = arg;
    int g = ch / (a->C / a->G);
    size_t m = (size_t)(a->C / a->G) * a->S, ng = (size_t)a->N * a->G;
    double sw = 0;
    for (int n = 0; n < a->N; n++) {
        size_t i = (size_t)n * a->G + g, off = ((size_t)n * a->C + ch) * a->S;
        real mean = a->csaved[i], r = a->csaved[ng + i];
        real mt = (real)(a->csaved[2 * ng + i] / (double)m), mbt = (real)(a->csaved[3 * ng + i] / (double)m);
        const real *x = a->x + off, *t = a->t + off, *gy = a->dy + off;
        for (size_t s = 0; s < a->S; s++) sw += gy[s] * (r * (t[s] - mt - (x[s] - mean) * r * mbt));
    }
    a->dweight[ch] += (real)sw;
}

static void gn_jvp_backward_task(void *arg, int i, int thread) {
    (void)thread;
    const GroupArgs *a = arg;
    int g = i % a->G, cpg = a->C / a->G;
    size_t m = (size_t)cpg * a->S, ng = (size_t)a->N * a->G;
    const real *x = a->x + (size_t)i * m, *t = a->t + (size_t)i * m, *gy = a->dy + (size_t)i * m;
    real mean = a->csaved[i], r = a->csaved[ng + i];
    double st = a->csaved[2 * ng + i], bt = a->csaved[3 * ng + i], dm = (double)m;
    double sh = 0, sa = 0, sht = 0;
    for (int k = 0; k < cpg; k++) {
        real w = a->weight ? a->weight[g * cpg + k] : 1;
        for (size_t s = k * a->S; s < (k + 1) * a->S; s++) {
            double h = gy[s] * w;
            sh += h;
            sa += h * ((x[s] - mean) * r);
            sht += h * t[s];
        }
    }
    double K = sht - sh * st / dm - sa * bt / dm;
    real mh = (real)(sh / dm), ma = (real)(sa / dm), mt = (real)(st / dm);
    real cx = (real)(-(double)r * r / dm), cb = (real)bt, ca = (real)sa, ck = (real)(K - 2 * sa * bt / dm);
    for (int k = 0; k < cpg; k++) {
        real w = a->weight ? a->weight[g * cpg + k] : 1;
        for (size_t s = k * a->S; s < (k + 1) * a->S; s++) {
            real h = gy[s] * w, xhat = (x[s] - mean) * r;
            if (a->dt) a->dt[(size_t)i * m + s] += r * (h - mh - xhat * ma);
            if (a->dx) a->dx[(size_t)i * m + s] += cx * (cb * (h - mh) + ca * (t[s] - mt) + ck * xhat);
        }
    }
}

void group_norm_jvp_backward(real *dx, real *dt, real *dweight, const real *saved, const real *g, const real *x,
                             const real *t, const real *weight, int N, int C, size_t S, int G) {
    GroupArgs a = {.dx = dx, .dt = dt, .dweight = dweight, .csaved = saved, .dy = g, .x = x, .t = t,
                   .weight = weight, .N = N, .C = C, .G = G, .S = S};
    if (dweight) parallel_for(C, gn_jvp_weight_task, &a);
    if (dx || dt) parallel_for(N * G, gn_jvp_backward_task, &a);
}

/* ==================================================================================================== */
/* ActNorm                                                                                               */
/* ==================================================================================================== */

typedef struct ActArgs {
    real *out, *dloc, *dscale, *din;
    const real *in, *dout, *loc, *scale;
    int N, C;
    size_t S;
} ActArgs;

static void actnorm_forward_task(void *arg, int row, int thread) {
    (void)thread;
    const ActArgs *a = arg;
    int ch = row % a->C;
    const real *x = a->in + (size_t)row * a->S;
    real *y = a->out + (size_t)row * a->S, l = a->loc[ch], sc = a->scale[ch];
    for (size_t s = 0; s < a->S; s++) y[s] = actnorm_f(x[s], l, sc);
}

void actnorm_affine_forward(real *y, const real *x, const real *loc, const real *scale, int N, int C, size_t S) {
    ActArgs a = {.out = y, .in = x, .loc = loc, .scale = scale, .N = N, .C = C, .S = S};
    parallel_for(N * C, actnorm_forward_task, &a);
}

/* dx = scale dy, dloc = scale sum dy, dscale = sum dy (x + loc): one task per channel. */
static void actnorm_backward_task(void *arg, int ch, int thread) {
    (void)thread;
    const ActArgs *a = arg;
    real l = a->loc[ch], sc = a->scale[ch];
    double sdy = 0, sdyx = 0;
    for (int n = 0; n < a->N; n++) {
        size_t off = ((size_t)n * a->C + ch) * a->S;
        const real *x = a->in + off, *dy = a->dout + off;
        if (a->din)
            for (size_t s = 0; s < a->S; s++) a->din[off + s] += sc * dy[s];
        for (size_t s = 0; s < a->S; s++) {
            sdy += dy[s];
            sdyx += dy[s] * (x[s] + l);
        }
    }
    if (a->dloc) a->dloc[ch] += (real)(sc * sdy);
    if (a->dscale) a->dscale[ch] += (real)sdyx;
}

void actnorm_affine_backward(real *dx, real *dloc, real *dscale, const real *dy, const real *x, const real *loc,
                             const real *scale, int N, int C, size_t S) {
    ActArgs a = {.din = dx, .dloc = dloc, .dscale = dscale, .dout = dy, .in = x, .loc = loc, .scale = scale, .N = N,
                 .C = C, .S = S};
    parallel_for(C, actnorm_backward_task, &a);
}

static void actnorm_inverse_task(void *arg, int row, int thread) {
    (void)thread;
    const ActArgs *a = arg;
    int ch = row % a->C;
    const real *y = a->in + (size_t)row * a->S;
    real *x = a->out + (size_t)row * a->S, l = a->loc[ch], sc = a->scale[ch];
    for (size_t s = 0; s < a->S; s++) x[s] = actnorm_inverse_f(y[s], l, sc);
}

void actnorm_affine_inverse_forward(real *x, const real *y, const real *loc, const real *scale, int N, int C,
                                    size_t S) {
    ActArgs a = {.out = x, .in = y, .loc = loc, .scale = scale, .N = N, .C = C, .S = S};
    parallel_for(N * C, actnorm_inverse_task, &a);
}

/* x = y / scale - loc: dy = dx / scale, dloc = -sum dx, dscale = -sum dx y / scale^2. */
static void actnorm_inverse_backward_task(void *arg, int ch, int thread) {
    (void)thread;
    const ActArgs *a = arg;
    real sc = a->scale[ch];
    double sdx = 0, sdxy = 0;
    for (int n = 0; n < a->N; n++) {
        size_t off = ((size_t)n * a->C + ch) * a->S;
        const real *y = a->in + off, *dx = a->dout + off;
        if (a->din)
            for (size_t s = 0; s < a->S; s++) a->din[off + s] += dx[s] / sc;
        for (size_t s = 0; s < a->S; s++) {
            sdx += dx[s];
            sdxy += dx[s] * y[s];
        }
    }
    if (a->dloc) a->dloc[ch] -= (real)sdx;
    if (a->dscale) a->dscale[ch] -= (real)(sdxy / ((double)sc * sc));
}

void actnorm_affine_inverse_backward(real *dy, real *dloc, real *dscale, const real *dx, const real *y,
                                     const real *scale, int N, int C, size_t S) {
    ActArgs a = {.din = dy, .dloc = dloc, .dscale = dscale, .dout = dx, .in = y, .scale = scale, .N = N, .C = C,
                 .S = S};
    parallel_for(C, actnorm_inverse_backward_task, &a);
}

/* The guard ActNorm.initialize adds to the std; a std at or below it means the data did not set the scale. */
#define ACTNORM_STD_GUARD 1e-6

int actnorm_init_data(real *loc, real *scale, const real *x, int N, int C, size_t S) {
    size_t count = (size_t)N * S;
    int degenerate = 0;
    for (int ch = 0; ch < C; ch++) {
        double s = 0;
        for (int n = 0; n < N; n++)
            for (size_t j = 0; j < S; j++) s += x[((size_t)n * C + ch) * S + j];
        double mu = s / (double)count, v = 0;
        for (int n = 0; n < N; n++)
            for (size_t j = 0; j < S; j++) {
                double d = x[((size_t)n * C + ch) * S + j] - mu;
                v += d * d;
            }
        double std = count > 1 ? sqrt(v / (double)(count - 1)) : 0;   /* one value: no spread to measure */
        if (std <= ACTNORM_STD_GUARD) degenerate++;
        loc[ch] = (real)-mu;
        scale[ch] = (real)(1.0 / (std + ACTNORM_STD_GUARD));
    }
    return degenerate;
}

/* ==================================================================================================== */
/* batch norm                                                                                            */
/* ==================================================================================================== */

typedef struct BatchArgs {
    real *y, *mean, *rstd, *rmean, *rvar, *dx, *dweight, *dbias;
    const real *x, *dy, *weight, *bias, *cmean, *crstd;
    int N, C, batch;
    size_t S;
    double eps, momentum;
} BatchArgs;

static void bn_forward_task(void *arg, int ch, int thread) {
    (void)thread;
    const BatchArgs *a = arg;
    size_t count = (size_t)a->N * a->S;
    real mean, rstd;
    if (a->batch) {
        double s = 0;
        for (int n = 0; n < a->N; n++) s += sum_d(a->x + ((size_t)n * a->C + ch) * a->S, a->S);
        double mu = s / (double)count, v = 0;
        for (int n = 0; n < a->N; n++) v += sum_sq_dev_d(a->x + ((size_t)n * a->C + ch) * a->S, a->S, mu);
        mean = (real)mu;
        rstd = (real)(1.0 / sqrt(v / (double)count + a->eps));
        if (a->rmean) {   /* normalise with the biased variance, track the unbiased one (as PyTorch) */
            a->rmean[ch] = (real)((1 - a->momentum) * a->rmean[ch] + a->momentum * mu);
            a->rvar[ch] = (real)((1 - a->momentum) * a->rvar[ch] + a->momentum * v / (double)(count - 1));
        }
    } else {
        mean = a->rmean[ch];
        rstd = (real)(1.0 / sqrt((double)a->rvar[ch] + a->eps));
    }
    a->mean[ch] = mean;
    a->rstd[ch] = rstd;
    real scale = rstd * (a->weight ? a->weight[ch] : 1), shift = a->bias ? a->bias[ch] : 0;
    for (int n = 0; n < a->N; n++) {
        size_t off = ((size_t)n * a->C + ch) * a->S;
        for (size_t j = 0; j < a->S; j++) a->y[off + j] = norm_affine(a->x[off + j], mean, scale, shift);
    }
}

void batch_norm_forward(real *y, real *mean, real *rstd, real *running_mean, real *running_var, const real *x,
                        const real *weight, const real *bias, int N, int C, size_t S, double eps, double momentum,
                        int use_batch_stats) {
    I2V_ASSERT(use_batch_stats || (running_mean && running_var), "batch_norm: eval mode needs running statistics");
    I2V_ASSERT(!use_batch_stats || (size_t)N * S >= 2,
               "batch_norm: training needs more than 1 value per channel (got N = %d, S = %zu)", N, S);
    BatchArgs a = {.y = y, .mean = mean, .rstd = rstd, .rmean = running_mean, .rvar = running_var, .x = x,
                   .weight = weight, .bias = bias, .N = N, .C = C, .S = S, .eps = eps, .momentum = momentum,
                   .batch = use_batch_stats};
    parallel_for(C, bn_forward_task, &a);
}

/* Per channel, with h = dy * weight: training dx = rstd (h - mean(h) - xhat mean(h xhat)), eval
 * dx = rstd h; dweight += sum dy xhat, dbias += sum dy. */
static void bn_backward_task(void *arg, int ch, int thread) {
    (void)thread;
    const BatchArgs *a = arg;
    size_t count = (size_t)a->N * a->S;
    real mean = a->cmean[ch], rstd = a->crstd[ch], w = a->weight ? a->weight[ch] : 1;
    double sdy = 0, sdyx = 0;
    for (int n = 0; n < a->N; n++) {
        size_t off = ((size_t)n * a->C + ch) * a->S;
        sdy += sum_d(a->dy + off, a->S);
        sdyx += rstd * dot_dev_d(a->dy + off, a->x + off, a->S, mean);
    }
    if (a->dweight) a->dweight[ch] += (real)sdyx;
    if (a->dbias) a->dbias[ch] += (real)sdy;
    if (!a->dx) return;
    real mh = a->batch ? (real)(w * sdy / (double)count) : 0, mhx = a->batch ? (real)(w * sdyx / (double)count) : 0;
    for (int n = 0; n < a->N; n++) {
        size_t off = ((size_t)n * a->C + ch) * a->S;
        for (size_t j = 0; j < a->S; j++)
            a->dx[off + j] += norm_input_grad(a->x[off + j], a->dy[off + j], w, mean, rstd, mh, mhx);
    }
}

void batch_norm_backward(real *dx, real *dweight, real *dbias, const real *mean, const real *rstd, const real *dy,
                         const real *x, const real *weight, int N, int C, size_t S, int use_batch_stats) {
    BatchArgs a = {.dx = dx, .dweight = dweight, .dbias = dbias, .cmean = mean, .crstd = rstd, .dy = dy, .x = x,
                   .weight = weight, .N = N, .C = C, .S = S, .batch = use_batch_stats};
    parallel_for(C, bn_backward_task, &a);
}

/* ==================================================================================================== */
/* spectral normalisation                                                                                */
/* ==================================================================================================== */

/* Matrix-vector products over a (Cout, K) weight, split into a fixed number of row blocks or into column
 * blocks of SN_COLS, each summed in double in a fixed order, so results do not depend on the threads. */
#define SN_BLOCKS 64   /* row blocks: enough to feed every core, few enough for partial sums on the stack */
#define SN_COLS 256    /* column block: the double accumulators of one task fit in 2 KiB of stack */

#define BIGGAN_EPS SPECTRAL_NORM_BIGGAN_EPS

typedef struct SnArgs {
    real *out, *vec, *dw_out;
    const real *w, *u, *v, *a, *b, *dw;
    int rows, nblocks;
    size_t k;
    double partial[SN_BLOCKS];
    double scale, coef, na, bgb, sigma;
} SnArgs;

static void row_range(const SnArgs *s, int blk, int *r0, int *r1) {
    int per = (s->rows + s->nblocks - 1) / s->nblocks;
    *r0 = blk * per;
    *r1 = *r0 + per < s->rows ? *r0 + per : s->rows;
}

static int sn_blocks(int rows) { return rows < SN_BLOCKS ? rows : SN_BLOCKS; }
static int col_blocks(size_t k) { return (int)((k + SN_COLS - 1) / SN_COLS); }

/* vec[j] = scale * sum_i w[i][j] u[i] for the columns of one block */
static void mat_t_vec_task(void *arg, int blk, int thread) {
    (void)thread;
    const SnArgs *s = arg;
    size_t j0 = (size_t)blk * SN_COLS, j1 = j0 + SN_COLS < s->k ? j0 + SN_COLS : s->k;
    double acc[SN_COLS] = {0};
    for (int i = 0; i < s->rows; i++) {
        double ui = s->u[i];
        const real *row = s->w + (size_t)i * s->k;
        for (size_t j = j0; j < j1; j++) acc[j - j0] += ui * row[j];
    }
    for (size_t j = j0; j < j1; j++) s->vec[j] = (real)(s->scale * acc[j - j0]);
}

/* vec[i] = scale * sum_j w[i][j] v[j] for the rows of one block */
static void mat_vec_task(void *arg, int blk, int thread) {
    (void)thread;
    const SnArgs *s = arg;
    int r0, r1;
    row_range(s, blk, &r0, &r1);
    for (int i = r0; i < r1; i++) s->vec[i] = (real)(s->scale * dot_d(s->w + (size_t)i * s->k, s->v, s->k));
}

static double norm2(const real *x, size_t n) { return sqrt(dot_d(x, x, n)); }

void spectral_norm_power_iteration(real *u, real *v, const real *w, int Cout, size_t K, double eps) {
    SnArgs s = {.vec = v, .w = w, .u = u, .rows = Cout, .nblocks = sn_blocks(Cout), .k = K, .scale = 1};
    parallel_for(col_blocks(K), mat_t_vec_task, &s);
    double nv = norm2(v, K);
    for (size_t j = 0; j < K; j++) v[j] = (real)(v[j] / (nv > eps ? nv : eps));
    s.vec = u;
    s.v = v;
    parallel_for(s.nblocks, mat_vec_task, &s);
    double nu = norm2(u, (size_t)Cout);
    for (int i = 0; i < Cout; i++) u[i] = (real)(u[i] / (nu > eps ? nu : eps));
}

/* partial[blk] = sum over the block's rows of u_i (W v)_i */
static void sigma_task(void *arg, int blk, int thread) {
    (void)thread;
    SnArgs *s = arg;
    int r0, r1;
    row_range(s, blk, &r0, &r1);
    double acc = 0;
    for (int i = r0; i < r1; i++) acc += s->u[i] * dot_d(s->w + (size_t)i * s->k, s->v, s->k);
    s->partial[blk] = acc;
}

/* partial[blk] = sum over the block's rows of dw . w */
static void dot_task(void *arg, int blk, int thread) {
    (void)thread;
    SnArgs *s = arg;
    int r0, r1;
    row_range(s, blk, &r0, &r1);
    s->partial[blk] = 0;
    if (r1 <= r0) return;   /* the last blocks may be empty */
    size_t p0 = (size_t)r0 * s->k;
    s->partial[blk] = dot_d(s->dw + p0, s->w + p0, (size_t)(r1 - r0) * s->k);
}

static double sum_partials(const SnArgs *s) {
    double t = 0;
    for (int b = 0; b < s->nblocks; b++) t += s->partial[b];
    return t;
}

static void divide_task(void *arg, int blk, int thread) {
    (void)thread;
    const SnArgs *s = arg;
    int r0, r1;
    row_range(s, blk, &r0, &r1);
    real sigma = (real)s->sigma;
    for (size_t p = (size_t)r0 * s->k; p < (size_t)r1 * s->k; p++) s->out[p] = s->w[p] / sigma;
}

void spectral_norm_forward(real *w, real *sigma, const real *w_orig, const real *u, const real *v, int Cout,
                           size_t K) {
    SnArgs s = {.out = w, .w = w_orig, .u = u, .v = v, .rows = Cout, .nblocks = sn_blocks(Cout), .k = K};
    parallel_for(s.nblocks, sigma_task, &s);
    s.sigma = (real)sum_partials(&s);
    *sigma = (real)s.sigma;
    parallel_for(s.nblocks, divide_task, &s);
}

double spectral_norm_sigma_d(const real *w, const real *u, const real *v, int Cout, size_t K) {
    SnArgs s = {.w = w, .u = u, .v = v, .rows = Cout, .nblocks = sn_blocks(Cout), .k = K};
    parallel_for(s.nblocks, sigma_task, &s);
    return sum_partials(&s);
}

void spectral_norm_sigma_forward(real *sigma, const real *w, const real *u, const real *v, int Cout, size_t K) {
    sigma[0] = (real)spectral_norm_sigma_d(w, u, v, Cout, K);
}

void spectral_norm_sigma_backward(real *dw, const real *dsigma, const real *u, const real *v, int Cout, size_t K) {
    real g = dsigma[0];
    for (int i = 0; i < Cout; i++) {
        real gu = g * u[i];
        real *row = dw + (size_t)i * K;
        for (size_t j = 0; j < K; j++) row[j] += gu * v[j];
    }
}

/* dw_orig += dw / sigma - coef u_i v_j with coef = (dw . w_orig) / sigma^2 */
static void sn_backward_task(void *arg, int blk, int thread) {
    (void)thread;
    const SnArgs *s = arg;
    int r0, r1;
    row_range(s, blk, &r0, &r1);
    real sigma = (real)s->sigma;
    for (int i = r0; i < r1; i++) {
        real cu = (real)(s->coef * s->u[i]);
        size_t o = (size_t)i * s->k;
        for (size_t j = 0; j < s->k; j++) s->dw_out[o + j] += s->dw[o + j] / sigma - cu * s->v[j];
    }
}

void spectral_norm_backward(real *dw_orig, real sigma, const real *u, const real *v, const real *dw,
                            const real *w_orig, int Cout, size_t K) {
    SnArgs s = {.dw_out = dw_orig, .w = w_orig, .u = u, .v = v, .dw = dw, .rows = Cout, .nblocks = sn_blocks(Cout),
                .k = K, .sigma = sigma};
    parallel_for(s.nblocks, dot_task, &s);
    s.coef = sum_partials(&s) / ((double)sigma * sigma);
    parallel_for(s.nblocks, sn_backward_task, &s);
}

/* ---- BigGAN variant ----------------------------------------------------------------------------------
 * Forward: a = W^T u, v = a / (|a| + e), b = W v, sigma = |b|^2 / (|b| + e) (= u' . b with u' = b / (|b| + e)).
 * Backward of W_out = W / sigma(W), G the gradient at W_out:
 *   gs = -(G . W) / sigma^2;  d sigma / d b = f'(|b|) b / |b| with f(s) = s^2 / (s + e), so gb = coef b,
 *   coef = gs f'(|b|) / |b|;  gv = W^T gb;  ga = gv / (|a| + e) - a (a . gv) / (|a| (|a| + e)^2), where
 *   a . gv = (W a) . gb = (|a| + e) b . gb, so no K-vector has to be stored;
 *   dW = G / sigma + gb v^T + u ga^T. */

static void biggan_backward_task(void *arg, int blk, int thread) {
    (void)thread;
    const SnArgs *s = arg;
    size_t j0 = (size_t)blk * SN_COLS, j1 = j0 + SN_COLS < s->k ? j0 + SN_COLS : s->k;
    double gv[SN_COLS] = {0};
    for (int i = 0; i < s->rows; i++) {
        double gbi = s->coef * s->b[i];
        const real *row = s->w + (size_t)i * s->k;
        for (size_t j = j0; j < j1; j++) gv[j - j0] += gbi * row[j];
    }
    real va[SN_COLS], ga[SN_COLS];
    double ae = s->na + BIGGAN_EPS;
    for (size_t j = j0; j < j1; j++) {
        va[j - j0] = (real)(s->a[j] / ae);
        ga[j - j0] = (real)(gv[j - j0] / ae - (s->na > 0 ? s->a[j] * s->bgb / (s->na * ae) : 0));
    }
    real sigma = (real)s->sigma;
    for (int i = 0; i < s->rows; i++) {
        real gbi = (real)(s->coef * s->b[i]), ui = s->u[i];
        size_t o = (size_t)i * s->k;
        for (size_t j = j0; j < j1; j++) s->dw_out[o + j] += s->dw[o + j] / sigma + gbi * va[j - j0] + ui * ga[j - j0];
    }
}

void spectral_norm_biggan_forward(real *w, real *a, real *b, real *stats, const real *w_bar, const real *u, int Cout,
                                  size_t K) {
    SnArgs s = {.out = w, .vec = a, .w = w_bar, .u = u, .rows = Cout, .nblocks = sn_blocks(Cout), .k = K, .scale = 1};
    parallel_for(col_blocks(K), mat_t_vec_task, &s);
    double na = norm2(a, K);
    s.vec = b;
    s.v = a;
    s.scale = 1.0 / (na + BIGGAN_EPS);   /* b = W v = W a / (|a| + e) */
    parallel_for(s.nblocks, mat_vec_task, &s);
    double nb = norm2(b, (size_t)Cout);
    s.sigma = (real)(nb * nb / (nb + BIGGAN_EPS));
    stats[0] = (real)s.sigma;
    stats[1] = (real)na;
    stats[2] = (real)nb;
    parallel_for(s.nblocks, divide_task, &s);
}

void spectral_norm_biggan_backward(real *dw_bar, const real *a, const real *b, const real *stats, const real *dw,
                                   const real *w_bar, const real *u, int Cout, size_t K) {
    SnArgs s = {.dw_out = dw_bar, .w = w_bar, .u = u, .a = a, .b = b, .dw = dw, .rows = Cout,
                .nblocks = sn_blocks(Cout), .k = K, .sigma = stats[0], .na = stats[1]};
    double sigma = stats[0], nb = stats[2], e = BIGGAN_EPS;
    parallel_for(s.nblocks, dot_task, &s);
    double gs = -sum_partials(&s) / (sigma * sigma);
    double fprime = nb * (nb + 2 * e) / ((nb + e) * (nb + e));
    s.coef = nb > 0 ? gs * fprime / nb : 0;
    s.bgb = s.coef * nb * nb;
    parallel_for(col_blocks(K), biggan_backward_task, &s);
}

