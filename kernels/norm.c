/* norm.c: normalisation layers as tape ops: group/instance norm and its tangent, ActNorm, batch norm,
 * spectral normalisation (PyTorch's and the BigGAN decoder's).
 *
 * Not here: the modules that use them (ae.c, flow.c), convolutions (conv.c). Each op is a pair of kernels
 * on raw arrays (xxx_forward / xxx_backward, so a CUDA file can mirror them one to one) and a t_xxx
 * wrapper that checks shapes, allocates in the arena, runs the forward unless the context is a dry run and
 * records the node; the node's backward, defined right above the wrapper, calls the backward kernel.
 *
 * Dimension legend: N batch, C channels, S the spatial size (product of the axes after C), G groups,
 * M = (C/G) * S the values in one group, Cout x K a weight seen as a matrix. Every reduction accumulates in
 * double: a group of the stage-1 generator holds up to 16 channels x 16 x 64 x 64 = 1M values.
 */
#include "kernels/norm.h"

#include <math.h>
#include <string.h>

#include "kernels/threads.h"
#include "kernels/sums.h"

/* x (N, C, *) as N, C, S */
static void ncs(const Tensor *x, const char *op, int *N, int *C, size_t *S) {
    I2V_ASSERT(x->ndim >= 2 && x->dtype == DT_REAL, "%s: input must be a real (N, C, ...) tensor, got %d-D", op,
               x->ndim);
    *N = x->shape[0];
    *C = x->shape[1];
    *S = 1;
    for (int i = 2; i < x->ndim; i++) *S *= (size_t)x->shape[i];
}

static void check_per_channel(const Tensor *p, int C, const char *op, const char *what) {
    if (!p) return;
    I2V_ASSERT(p->dtype == DT_REAL && p->numel == (size_t)C, "%s: %s must hold %d real values, it holds %zu", op,
               what, C, p->numel);
}

static const real *data_or_null(const Tensor *t) { return t ? t->data : NULL; }
static real *grad_or_null(Ctx *c, Tensor *t) { return needs_grad(c, t) ? grad_buf(c, t) : NULL; }

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
        for (size_t s = 0; s < a->S; s++) yc[s] = (xc[s] - mean) * scale + shift;
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
            dx[s] += rstd * (dy[s] * w - mh - (x[s] - mean) * rstd * mhx);
    }
}

void group_norm_backward(real *dx, real *dweight, real *dbias, const real *mean, const real *rstd, const real *dy,
                         const real *x, const real *weight, int N, int C, size_t S, int G) {
    GroupArgs a = {.dx = dx, .dweight = dweight, .dbias = dbias, .cmean = mean, .crstd = rstd, .dy = dy, .x = x,
                   .weight = weight, .N = N, .C = C, .G = G, .S = S};
    if (dweight || dbias) parallel_for(C, gn_param_grad_task, &a);
    if (dx) parallel_for(N * G, gn_backward_task, &a);
}

static void group_norm_node_backward(Ctx *c, Node *n) {
    Tensor *x = n->in[0], *w = n->in[1], *b = n->in[2];
    int N, C;
    size_t S;
    ncs(x, "group_norm", &N, &C, &S);
    group_norm_backward(grad_or_null(c, x), grad_or_null(c, w), grad_or_null(c, b), n->aux[0]->data,
                        n->aux[1]->data, n->out->grad, x->data, data_or_null(w), N, C, S, n->iarg[0]);
}
static const OpInfo OP_GROUP_NORM = {"group_norm", group_norm_node_backward};

Tensor *t_group_norm(Ctx *c, Tensor *x, int G, real eps, Tensor *weight, Tensor *bias) {
    int N, C;
    size_t S;
    ncs(x, "group_norm", &N, &C, &S);
    I2V_ASSERT(G >= 1 && C % G == 0, "group_norm: %d channels do not split into %d groups", C, G);
    I2V_ASSERT(S >= 1, "group_norm: empty spatial size");
    check_per_channel(weight, C, "group_norm", "weight");
    check_per_channel(bias, C, "group_norm", "bias");
    Tensor *y = tensor_new_like(c, x);
    Tensor *mean = tensor_new(c, 2, DIMS(N, G)), *rstd = tensor_new(c, 2, DIMS(N, G));
    if (!c->dry)
        group_norm_forward(y->data, mean->data, rstd->data, x->data, data_or_null(weight), data_or_null(bias), N, C,
                           S, G, eps);
    Tensor *in[3] = {x, weight, bias};
    Node *n = record(c, &OP_GROUP_NORM, y, 3, in);
    if (n) {
        n->iarg[0] = G;
        n->aux[0] = mean;
        n->aux[1] = rstd;
    }
    return y;
}

Tensor *t_instance_norm(Ctx *c, Tensor *x, real eps) {
    I2V_ASSERT(x->ndim >= 3, "instance_norm: input must be (N, C, spatial...), got %d-D", x->ndim);
    return t_group_norm(c, x, x->shape[1], eps, NULL, NULL);
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

static void group_norm_jvp_node_backward(Ctx *c, Node *n) {
    Tensor *x = n->in[0], *t = n->in[1], *w = n->in[2];
    int N, C;
    size_t S;
    ncs(x, "group_norm_jvp", &N, &C, &S);
    group_norm_jvp_backward(grad_or_null(c, x), grad_or_null(c, t), grad_or_null(c, w), n->aux[0]->data,
                            n->out->grad, x->data, t->data, data_or_null(w), N, C, S, n->iarg[0]);
}
static const OpInfo OP_GROUP_NORM_JVP = {"group_norm_jvp", group_norm_jvp_node_backward};

Tensor *t_group_norm_jvp(Ctx *c, Tensor *x, Tensor *dx, int G, real eps, Tensor *weight) {
    int N, C;
    size_t S;
    ncs(x, "group_norm_jvp", &N, &C, &S);
    I2V_ASSERT(shape_equal(x, dx), "group_norm_jvp: x and its tangent dx must have one shape");
    I2V_ASSERT(G >= 1 && C % G == 0, "group_norm_jvp: %d channels do not split into %d groups", C, G);
    check_per_channel(weight, C, "group_norm_jvp", "weight");
    Tensor *y = tensor_new_like(c, x);
    Tensor *saved = tensor_new(c, 3, DIMS(4, N, G));
    if (!c->dry)
        group_norm_jvp_forward(y->data, saved->data, x->data, dx->data, data_or_null(weight), N, C, S, G, eps);
    Tensor *in[3] = {x, dx, weight};
    Node *n = record(c, &OP_GROUP_NORM_JVP, y, 3, in);
    if (n) {
        n->iarg[0] = G;
        n->aux[0] = saved;
    }
    return y;
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
    for (size_t s = 0; s < a->S; s++) y[s] = sc * (x[s] + l);
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
    for (size_t s = 0; s < a->S; s++) x[s] = y[s] / sc - l;
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

static void actnorm_node_backward(Ctx *c, Node *n) {
    Tensor *x = n->in[0], *loc = n->in[1], *scale = n->in[2];
    int N, C;
    size_t S;
    ncs(x, "actnorm", &N, &C, &S);
    if (n->iarg[0])
        actnorm_affine_inverse_backward(grad_or_null(c, x), grad_or_null(c, loc), grad_or_null(c, scale), n->out->grad,
                                 x->data, scale->data, N, C, S);
    else
        actnorm_affine_backward(grad_or_null(c, x), grad_or_null(c, loc), grad_or_null(c, scale), n->out->grad, x->data,
                         loc->data, scale->data, N, C, S);
}
static const OpInfo OP_ACTNORM = {"actnorm", actnorm_node_backward};

/* One node type for both directions; iarg[0] = 1 marks the inverse. */
static Tensor *actnorm_op(Ctx *c, Tensor *x, Tensor *loc, Tensor *scale, int inverse) {
    const char *op = inverse ? "actnorm_inverse" : "actnorm";
    int N, C;
    size_t S;
    ncs(x, op, &N, &C, &S);
    I2V_ASSERT(loc && scale, "%s: loc and scale are required", op);
    check_per_channel(loc, C, op, "loc");
    check_per_channel(scale, C, op, "scale");
    Tensor *y = tensor_new_like(c, x);
    if (!c->dry) {
        if (inverse) actnorm_affine_inverse_forward(y->data, x->data, loc->data, scale->data, N, C, S);
        else actnorm_affine_forward(y->data, x->data, loc->data, scale->data, N, C, S);
    }
    Tensor *in[3] = {x, loc, scale};
    Node *n = record(c, &OP_ACTNORM, y, 3, in);
    if (n) n->iarg[0] = inverse;
    return y;
}

Tensor *t_actnorm(Ctx *c, Tensor *x, Tensor *loc, Tensor *scale) { return actnorm_op(c, x, loc, scale, 0); }
Tensor *t_actnorm_inverse(Ctx *c, Tensor *y, Tensor *loc, Tensor *scale) { return actnorm_op(c, y, loc, scale, 1); }

Tensor *t_actnorm_logdet(Ctx *c, Tensor *scale, size_t spatial) {
    return t_scale(c, t_sum_all(c, t_log(c, t_abs(c, scale))), (real)spatial);
}

/* The guard ActNorm.initialize adds to the std; a std at or below it means the data did not set the scale. */
#define ACTNORM_STD_GUARD 1e-6

int actnorm_init_data(real *loc, real *scale, const real *x, int N, int C, size_t S) {
    size_t count = (size_t)N * S;
    I2V_ASSERT(count >= 2, "actnorm_init: the unbiased std needs at least 2 values per channel, got %zu", count);
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
        double std = sqrt(v / (double)(count - 1));
        if (std <= ACTNORM_STD_GUARD) degenerate++;
        loc[ch] = (real)-mu;
        scale[ch] = (real)(1.0 / (std + ACTNORM_STD_GUARD));
    }
    return degenerate;
}

int actnorm_init(Tensor *loc, Tensor *scale, const Tensor *x) {
    int N, C;
    size_t S;
    ncs(x, "actnorm_init", &N, &C, &S);
    check_per_channel(loc, C, "actnorm_init", "loc");
    check_per_channel(scale, C, "actnorm_init", "scale");
    return actnorm_init_data(loc->data, scale->data, x->data, N, C, S);
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
        for (size_t j = 0; j < a->S; j++) a->y[off + j] = (a->x[off + j] - mean) * scale + shift;
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
            a->dx[off + j] += rstd * (a->dy[off + j] * w - mh - (a->x[off + j] - mean) * rstd * mhx);
    }
}

void batch_norm_backward(real *dx, real *dweight, real *dbias, const real *mean, const real *rstd, const real *dy,
                         const real *x, const real *weight, int N, int C, size_t S, int use_batch_stats) {
    BatchArgs a = {.dx = dx, .dweight = dweight, .dbias = dbias, .cmean = mean, .crstd = rstd, .dy = dy, .x = x,
                   .weight = weight, .N = N, .C = C, .S = S, .batch = use_batch_stats};
    parallel_for(C, bn_backward_task, &a);
}

static void batch_norm_node_backward(Ctx *c, Node *n) {
    Tensor *x = n->in[0], *w = n->in[1], *b = n->in[2];
    int N, C;
    size_t S;
    ncs(x, "batch_norm", &N, &C, &S);
    batch_norm_backward(grad_or_null(c, x), grad_or_null(c, w), grad_or_null(c, b), n->aux[0]->data,
                        n->aux[1]->data, n->out->grad, x->data, data_or_null(w), N, C, S, n->iarg[0]);
}
static const OpInfo OP_BATCH_NORM = {"batch_norm", batch_norm_node_backward};

Tensor *t_batch_norm(Ctx *c, Tensor *x, Tensor *weight, Tensor *bias, Tensor *running_mean, Tensor *running_var,
                     Tensor *num_batches_tracked, real eps, real momentum) {
    int N, C;
    size_t S;
    ncs(x, "batch_norm", &N, &C, &S);
    check_per_channel(weight, C, "batch_norm", "weight");
    check_per_channel(bias, C, "batch_norm", "bias");
    I2V_ASSERT(!running_mean == !running_var, "batch_norm: running_mean and running_var come together");
    check_per_channel(running_mean, C, "batch_norm", "running_mean");
    check_per_channel(running_var, C, "batch_norm", "running_var");
    I2V_ASSERT(!num_batches_tracked || (num_batches_tracked->dtype == DT_I64 && num_batches_tracked->numel == 1),
               "batch_norm: num_batches_tracked must be a 0-D int64 buffer");
    int batch = c->training || !running_mean;
    Tensor *y = tensor_new_like(c, x);
    Tensor *mean = tensor_new(c, 1, DIMS(C)), *rstd = tensor_new(c, 1, DIMS(C));
    if (!c->dry) {
        /* training updates the running statistics, eval reads them; without them both use the batch */
        batch_norm_forward(y->data, mean->data, rstd->data, running_mean ? running_mean->data : NULL,
                           running_var ? running_var->data : NULL, x->data, data_or_null(weight), data_or_null(bias),
                           N, C, S, eps, momentum, batch);
        if (c->training && running_mean && num_batches_tracked) ((int64_t *)num_batches_tracked->ibuf)[0] += 1;
    }
    Tensor *in[3] = {x, weight, bias};
    Node *n = record(c, &OP_BATCH_NORM, y, 3, in);
    if (n) {
        n->iarg[0] = batch;
        n->aux[0] = mean;
        n->aux[1] = rstd;
    }
    return y;
}

/* ==================================================================================================== */
/* spectral normalisation                                                                                */
/* ==================================================================================================== */

/* Matrix-vector products over a (Cout, K) weight, split into a fixed number of row blocks or into column
 * blocks of SN_COLS, each summed in double in a fixed order, so results do not depend on the threads. */
#define SN_BLOCKS 64   /* row blocks: enough to feed every core, few enough for partial sums on the stack */
#define SN_COLS 256    /* column block: the double accumulators of one task fit in 2 KiB of stack */

static const double SN_EPS = 1e-12;     /* torch.nn.utils.spectral_norm's eps */
static const double BIGGAN_EPS = 1e-4;  /* generator.py's l2normalize */

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

static void weight_matrix(const Tensor *w, const char *op, int *Cout, size_t *K) {
    I2V_ASSERT(w->ndim >= 1 && w->dtype == DT_REAL && w->numel > 0, "%s: weight must be a real (Cout, ...) tensor",
               op);
    *Cout = w->shape[0];
    *K = w->numel / (size_t)w->shape[0];
}

static void spectral_norm_node_backward(Ctx *c, Node *n) {
    Tensor *w = n->in[0];
    int Cout;
    size_t K;
    weight_matrix(w, "spectral_norm", &Cout, &K);
    spectral_norm_backward(grad_buf(c, w), n->rarg[0], n->aux[0]->data, n->aux[1]->data, n->out->grad, w->data, Cout,
                           K);
}
static const OpInfo OP_SPECTRAL_NORM = {"spectral_norm", spectral_norm_node_backward};

Tensor *t_spectral_norm(Ctx *c, Tensor *weight_orig, Tensor *u, Tensor *v) {
    int Cout;
    size_t K;
    weight_matrix(weight_orig, "spectral_norm", &Cout, &K);
    I2V_ASSERT(u->dtype == DT_REAL && u->numel == (size_t)Cout, "spectral_norm: weight_u must hold %d values", Cout);
    I2V_ASSERT(v->dtype == DT_REAL && v->numel == K, "spectral_norm: weight_v must hold %zu values", K);
    Tensor *y = tensor_new_like(c, weight_orig);
    real sigma = 0;
    if (!c->dry) {
        if (c->training) spectral_norm_power_iteration(u->data, v->data, weight_orig->data, Cout, K, SN_EPS);
        spectral_norm_forward(y->data, &sigma, weight_orig->data, u->data, v->data, Cout, K);
    }
    Node *n = record(c, &OP_SPECTRAL_NORM, y, 1, &weight_orig);
    if (n) {   /* PyTorch clones u and v after the iteration for the same reason */
        n->rarg[0] = sigma;
        n->aux[0] = tensor_new(c, 1, DIMS(Cout));
        n->aux[1] = tensor_new(c, 1, DIMS((int)K));
        if (!c->dry) {
            memcpy(n->aux[0]->data, u->data, (size_t)Cout * sizeof(real));
            memcpy(n->aux[1]->data, v->data, K * sizeof(real));
        }
    }
    return y;
}

double spectral_norm_sigma(const Tensor *weight_orig, const Tensor *u, const Tensor *v) {
    int Cout;
    size_t K;
    weight_matrix(weight_orig, "spectral_norm_sigma", &Cout, &K);
    I2V_ASSERT(u->numel == (size_t)Cout && v->numel == K, "spectral_norm_sigma: u (%d) and v (%zu) expected", Cout, K);
    SnArgs s = {.w = weight_orig->data, .u = u->data, .v = v->data, .rows = Cout, .nblocks = sn_blocks(Cout), .k = K};
    parallel_for(s.nblocks, sigma_task, &s);
    return sum_partials(&s);
}

static void normal_unit(Tensor *t, Rng *r, double eps, int max_guard) {
    for (size_t i = 0; i < t->numel; i++) t->data[i] = (real)rng_normal(r);
    double nrm = norm2(t->data, t->numel);
    double d = max_guard ? (nrm > eps ? nrm : eps) : nrm + eps;
    for (size_t i = 0; i < t->numel; i++) t->data[i] = (real)(t->data[i] / d);
}

void spectral_norm_init_uv(Tensor *u, Tensor *v, Rng *r) {
    normal_unit(u, r, SN_EPS, 1);
    normal_unit(v, r, SN_EPS, 1);
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

static void spectral_norm_biggan_node_backward(Ctx *c, Node *n) {
    Tensor *w = n->in[0];
    int Cout;
    size_t K;
    weight_matrix(w, "spectral_norm_biggan", &Cout, &K);
    const real *bu = n->aux[1]->data;   /* (2, Cout): b, then the u this call read */
    spectral_norm_biggan_backward(grad_buf(c, w), n->aux[0]->data, bu, n->rarg, n->out->grad, w->data, bu + Cout, Cout,
                                  K);
}
static const OpInfo OP_SPECTRAL_NORM_BIGGAN = {"spectral_norm_biggan", spectral_norm_biggan_node_backward};

Tensor *t_spectral_norm_biggan(Ctx *c, Tensor *weight_bar, Tensor *u) {
    int Cout;
    size_t K;
    weight_matrix(weight_bar, "spectral_norm_biggan", &Cout, &K);
    I2V_ASSERT(u->dtype == DT_REAL && u->numel == (size_t)Cout, "spectral_norm_biggan: weight_u must hold %d values",
               Cout);
    Tensor *y = tensor_new_like(c, weight_bar);
    Tensor *a = tensor_new(c, 1, DIMS((int)K)), *bu = tensor_new(c, 2, DIMS(2, Cout));
    real stats[3] = {0, 0, 0};
    if (!c->dry) {
        spectral_norm_biggan_forward(y->data, a->data, bu->data, stats, weight_bar->data, u->data, Cout, K);
        memcpy(bu->data + Cout, u->data, (size_t)Cout * sizeof(real));
    }
    Node *n = record(c, &OP_SPECTRAL_NORM_BIGGAN, y, 1, &weight_bar);
    if (n) {
        for (int i = 0; i < 3; i++) n->rarg[i] = stats[i];
        n->aux[0] = a;
        n->aux[1] = bu;
    }
    return y;
}

void spectral_norm_biggan_init_uv(Tensor *u, Tensor *v, Rng *r) {
    normal_unit(u, r, BIGGAN_EPS, 0);
    normal_unit(v, r, BIGGAN_EPS, 0);
}
