/* norm.c: the normalisation layers as tape ops: group/instance norm and its tangent, ActNorm, batch norm,
 * spectral normalisation (PyTorch's and the BigGAN decoder's), and the initialisation of their buffers.
 *
 * Not here: the raw-array kernels each op records (kernels/norm.c), the modules that use them (ae.c,
 * flow.c, networks/). Each t_xxx checks shapes, allocates its output in the arena, runs the forward kernel
 * unless the context is a dry run and records the node; the node's backward, defined right above the
 * wrapper, calls the backward kernel.
 *
 * Dimension legend: N batch, C channels, S the spatial size (product of the axes after C), G groups,
 * Cout x K a weight seen as a matrix.
 */
#include "ops/norm.h"

#include <math.h>
#include <string.h>

#include "kernels/modulate.h"
#include "cuda/cuda.h"
#include "kernels/norm.h"
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

static void t_group_norm_backward(Ctx *c, Node *n) {
    Tensor *x = n->in[0], *w = n->in[1], *b = n->in[2];
    int N, C;
    size_t S;
    ncs(x, "group_norm", &N, &C, &S);
    if (on_gpu(c))
        group_norm_backward_cuda(grad_or_null(c, x), grad_or_null(c, w), grad_or_null(c, b), n->aux[0]->data,
                                 n->aux[1]->data, n->out->grad, x->data, data_or_null(w), N, C, S, n->iarg[0]);
    else
        group_norm_backward(grad_or_null(c, x), grad_or_null(c, w), grad_or_null(c, b), n->aux[0]->data,
                            n->aux[1]->data, n->out->grad, x->data, data_or_null(w), N, C, S, n->iarg[0]);
}
static const OpInfo OP_GROUP_NORM = {"group_norm", t_group_norm_backward};

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
    if (!c->dry && on_gpu(c))
        group_norm_forward_cuda(y->data, mean->data, rstd->data, x->data, data_or_null(weight), data_or_null(bias), N,
                                C, S, G, eps);
    else if (!c->dry)
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

static void t_group_norm_jvp_backward(Ctx *c, Node *n) {
    Tensor *x = n->in[0], *t = n->in[1], *w = n->in[2];
    int N, C;
    size_t S;
    ncs(x, "group_norm_jvp", &N, &C, &S);
    if (on_gpu(c))
        group_norm_jvp_backward_cuda(grad_or_null(c, x), grad_or_null(c, t), grad_or_null(c, w), n->aux[0]->data,
                                     n->out->grad, x->data, t->data, data_or_null(w), N, C, S, n->iarg[0]);
    else
        group_norm_jvp_backward(grad_or_null(c, x), grad_or_null(c, t), grad_or_null(c, w), n->aux[0]->data,
                                n->out->grad, x->data, t->data, data_or_null(w), N, C, S, n->iarg[0]);
}
static const OpInfo OP_GROUP_NORM_JVP = {"group_norm_jvp", t_group_norm_jvp_backward};

Tensor *t_group_norm_jvp(Ctx *c, Tensor *x, Tensor *dx, int G, real eps, Tensor *weight) {
    int N, C;
    size_t S;
    ncs(x, "group_norm_jvp", &N, &C, &S);
    I2V_ASSERT(shape_equal(x, dx), "group_norm_jvp: x and its tangent dx must have one shape");
    I2V_ASSERT(G >= 1 && C % G == 0, "group_norm_jvp: %d channels do not split into %d groups", C, G);
    check_per_channel(weight, C, "group_norm_jvp", "weight");
    Tensor *y = tensor_new_like(c, x);
    Tensor *saved = tensor_new(c, 3, DIMS(4, N, G));
    if (!c->dry && on_gpu(c))
        group_norm_jvp_forward_cuda(y->data, saved->data, x->data, dx->data, data_or_null(weight), N, C, S, G, eps);
    else if (!c->dry)
        group_norm_jvp_forward(y->data, saved->data, x->data, dx->data, data_or_null(weight), N, C, S, G, eps);
    Tensor *in[3] = {x, dx, weight};
    Node *n = record(c, &OP_GROUP_NORM_JVP, y, 3, in);
    if (n) {
        n->iarg[0] = G;
        n->aux[0] = saved;
    }
    return y;
}

static void t_actnorm_backward(Ctx *c, Node *n) {
    Tensor *x = n->in[0], *loc = n->in[1], *scale = n->in[2];
    int N, C;
    size_t S;
    ncs(x, "actnorm", &N, &C, &S);
    if (on_gpu(c) && n->iarg[0])
        actnorm_affine_inverse_backward_cuda(grad_or_null(c, x), grad_or_null(c, loc), grad_or_null(c, scale),
                                             n->out->grad, x->data, scale->data, N, C, S);
    else if (on_gpu(c))
        actnorm_affine_backward_cuda(grad_or_null(c, x), grad_or_null(c, loc), grad_or_null(c, scale), n->out->grad,
                                     x->data, loc->data, scale->data, N, C, S);
    else if (n->iarg[0])
        actnorm_affine_inverse_backward(grad_or_null(c, x), grad_or_null(c, loc), grad_or_null(c, scale), n->out->grad,
                                 x->data, scale->data, N, C, S);
    else
        actnorm_affine_backward(grad_or_null(c, x), grad_or_null(c, loc), grad_or_null(c, scale), n->out->grad, x->data,
                         loc->data, scale->data, N, C, S);
}
static const OpInfo OP_ACTNORM = {"actnorm", t_actnorm_backward};

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
    if (!c->dry && on_gpu(c)) {
        if (inverse) actnorm_affine_inverse_forward_cuda(y->data, x->data, loc->data, scale->data, N, C, S);
        else actnorm_affine_forward_cuda(y->data, x->data, loc->data, scale->data, N, C, S);
    } else if (!c->dry) {
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

int actnorm_init(Tensor *loc, Tensor *scale, const Tensor *x) {
    int N, C;
    size_t S;
    ncs(x, "actnorm_init", &N, &C, &S);
    check_per_channel(loc, C, "actnorm_init", "loc");
    check_per_channel(scale, C, "actnorm_init", "scale");
    if (I2V_CUDA && x->device == DEVICE_CUDA) cuda_sync();   /* read on the host, once, when training starts */
    return actnorm_init_data(loc->data, scale->data, x->data, N, C, S);
}

static void t_batch_norm_backward(Ctx *c, Node *n) {
    Tensor *x = n->in[0], *w = n->in[1], *b = n->in[2];
    int N, C;
    size_t S;
    ncs(x, "batch_norm", &N, &C, &S);
    if (on_gpu(c))
        batch_norm_backward_cuda(grad_or_null(c, x), grad_or_null(c, w), grad_or_null(c, b), n->aux[0]->data,
                                 n->aux[1]->data, n->out->grad, x->data, data_or_null(w), N, C, S, n->iarg[0]);
    else
        batch_norm_backward(grad_or_null(c, x), grad_or_null(c, w), grad_or_null(c, b), n->aux[0]->data,
                            n->aux[1]->data, n->out->grad, x->data, data_or_null(w), N, C, S, n->iarg[0]);
}
static const OpInfo OP_BATCH_NORM = {"batch_norm", t_batch_norm_backward};

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
        if (on_gpu(c))
            batch_norm_forward_cuda(y->data, mean->data, rstd->data, running_mean ? running_mean->data : NULL,
                                    running_var ? running_var->data : NULL, x->data, data_or_null(weight),
                                    data_or_null(bias), N, C, S, eps, momentum, batch);
        else
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

static void weight_matrix(const Tensor *w, const char *op, int *Cout, size_t *K) {
    I2V_ASSERT(w->ndim >= 1 && w->dtype == DT_REAL && w->numel > 0, "%s: weight must be a real (Cout, ...) tensor",
               op);
    *Cout = w->shape[0];
    *K = w->numel / (size_t)w->shape[0];
}

/* Copies of the u (Cout) and v (K) a call used, in aux[0] and aux[1], for its backward. */
static void save_uv(Ctx *c, Node *n, const Tensor *u, const Tensor *v, int Cout, size_t K) {
    n->aux[0] = tensor_new(c, 1, DIMS(Cout));
    n->aux[1] = tensor_new(c, 1, DIMS((int)K));
    if (!c->dry) {
        ctx_memcpy(c, n->aux[0]->data, u->data, (size_t)Cout * sizeof(real));
        ctx_memcpy(c, n->aux[1]->data, v->data, K * sizeof(real));
    }
}

static void t_spectral_norm_backward(Ctx *c, Node *n) {
    Tensor *w = n->in[0];
    int Cout;
    size_t K;
    weight_matrix(w, "spectral_norm", &Cout, &K);
    if (on_gpu(c))   /* sigma stayed on the GPU: n->saved points to it */
        spectral_norm_backward_cuda(grad_buf(c, w), n->saved, n->aux[0]->data, n->aux[1]->data, n->out->grad, w->data,
                                    Cout, K);
    else
        spectral_norm_backward(grad_buf(c, w), n->rarg[0], n->aux[0]->data, n->aux[1]->data, n->out->grad, w->data,
                               Cout, K);
}
static const OpInfo OP_SPECTRAL_NORM = {"spectral_norm", t_spectral_norm_backward};

Tensor *t_spectral_norm(Ctx *c, Tensor *weight_orig, Tensor *u, Tensor *v) {
    int Cout;
    size_t K;
    weight_matrix(weight_orig, "spectral_norm", &Cout, &K);
    I2V_ASSERT(u->dtype == DT_REAL && u->numel == (size_t)Cout, "spectral_norm: weight_u must hold %d values", Cout);
    I2V_ASSERT(v->dtype == DT_REAL && v->numel == K, "spectral_norm: weight_v must hold %zu values", K);
    Tensor *y = tensor_new_like(c, weight_orig);
    real sigma = 0;
    Tensor *gpu_sigma = on_gpu(c) ? tensor_new(c, 0, NULL) : NULL;   /* the GPU's sigma stays there */
    if (!c->dry && on_gpu(c)) {
        if (c->training)
            spectral_norm_power_iteration_cuda(u->data, v->data, weight_orig->data, Cout, K, SPECTRAL_NORM_EPS);
        spectral_norm_forward_cuda(y->data, gpu_sigma->data, weight_orig->data, u->data, v->data, Cout, K);
    } else if (!c->dry) {
        if (c->training) spectral_norm_power_iteration(u->data, v->data, weight_orig->data, Cout, K, SPECTRAL_NORM_EPS);
        spectral_norm_forward(y->data, &sigma, weight_orig->data, u->data, v->data, Cout, K);
    }
    Node *n = record(c, &OP_SPECTRAL_NORM, y, 1, &weight_orig);
    if (n) {   /* PyTorch clones u and v after the iteration for the same reason */
        n->rarg[0] = sigma;
        n->saved = gpu_sigma ? gpu_sigma->data : NULL;
        save_uv(c, n, u, v, Cout, K);
    }
    return y;
}

/* ---- sigma alone, for a layer that divides its output instead of its weight -------------------------- */
static void t_spectral_norm_sigma_backward(Ctx *c, Node *n) {
    Tensor *w = n->in[0];
    int Cout;
    size_t K;
    weight_matrix(w, "spectral_norm_sigma", &Cout, &K);
    if (on_gpu(c))
        spectral_norm_sigma_backward_cuda(grad_buf(c, w), n->out->grad, n->aux[0]->data, n->aux[1]->data, Cout, K);
    else spectral_norm_sigma_backward(grad_buf(c, w), n->out->grad, n->aux[0]->data, n->aux[1]->data, Cout, K);
}
static const OpInfo OP_SPECTRAL_NORM_SIGMA = {"spectral_norm_sigma", t_spectral_norm_sigma_backward};

Tensor *t_spectral_norm_sigma(Ctx *c, Tensor *weight_orig, Tensor *u, Tensor *v) {
    int Cout;
    size_t K;
    weight_matrix(weight_orig, "spectral_norm_sigma", &Cout, &K);
    I2V_ASSERT(u->dtype == DT_REAL && u->numel == (size_t)Cout && v->dtype == DT_REAL && v->numel == K,
               "spectral_norm_sigma: weight_u must hold %d values and weight_v %zu", Cout, K);
    Tensor *sigma = tensor_new(c, 0, NULL);
    if (!c->dry && on_gpu(c)) {
        if (c->training)
            spectral_norm_power_iteration_cuda(u->data, v->data, weight_orig->data, Cout, K, SPECTRAL_NORM_EPS);
        spectral_norm_sigma_forward_cuda(sigma->data, weight_orig->data, u->data, v->data, Cout, K);
    } else if (!c->dry) {
        if (c->training) spectral_norm_power_iteration(u->data, v->data, weight_orig->data, Cout, K, SPECTRAL_NORM_EPS);
        spectral_norm_sigma_forward(sigma->data, weight_orig->data, u->data, v->data, Cout, K);
    }
    Node *n = record(c, &OP_SPECTRAL_NORM_SIGMA, sigma, 1, &weight_orig);
    if (n) save_uv(c, n, u, v, Cout, K);   /* a later call's power iteration changes the buffers */
    return sigma;
}

double spectral_norm_sigma(const Tensor *weight_orig, const Tensor *u, const Tensor *v) {
    int Cout;
    size_t K;
    weight_matrix(weight_orig, "spectral_norm_sigma", &Cout, &K);
    I2V_ASSERT(u->numel == (size_t)Cout && v->numel == K, "spectral_norm_sigma: u (%d) and v (%zu) expected", Cout, K);
    return spectral_norm_sigma_d(weight_orig->data, u->data, v->data, Cout, K);
}

static void normal_unit(Tensor *t, Rng *r, double eps, int max_guard) {
    for (size_t i = 0; i < t->numel; i++) t->data[i] = (real)rng_normal(r);
    double nrm = sqrt(dot_d(t->data, t->data, t->numel));
    double d = max_guard ? (nrm > eps ? nrm : eps) : nrm + eps;
    for (size_t i = 0; i < t->numel; i++) t->data[i] = (real)(t->data[i] / d);
}

void spectral_norm_init_uv(Tensor *u, Tensor *v, Rng *r) {
    normal_unit(u, r, SPECTRAL_NORM_EPS, 1);
    normal_unit(v, r, SPECTRAL_NORM_EPS, 1);
}

static void t_spectral_norm_biggan_backward(Ctx *c, Node *n) {
    Tensor *w = n->in[0];
    int Cout;
    size_t K;
    weight_matrix(w, "spectral_norm_biggan", &Cout, &K);
    const real *bu = n->aux[1]->data;   /* (2, Cout): b, then the u this call read */
    if (on_gpu(c))   /* the stats stayed on the GPU: n->saved points to them */
        spectral_norm_biggan_backward_cuda(grad_buf(c, w), n->aux[0]->data, bu, n->saved, n->out->grad, w->data,
                                           bu + Cout, Cout, K);
    else
        spectral_norm_biggan_backward(grad_buf(c, w), n->aux[0]->data, bu, n->rarg, n->out->grad, w->data, bu + Cout,
                                      Cout, K);
}
static const OpInfo OP_SPECTRAL_NORM_BIGGAN = {"spectral_norm_biggan", t_spectral_norm_biggan_backward};

Tensor *t_spectral_norm_biggan(Ctx *c, Tensor *weight_bar, Tensor *u) {
    int Cout;
    size_t K;
    weight_matrix(weight_bar, "spectral_norm_biggan", &Cout, &K);
    I2V_ASSERT(u->dtype == DT_REAL && u->numel == (size_t)Cout, "spectral_norm_biggan: weight_u must hold %d values",
               Cout);
    Tensor *y = tensor_new_like(c, weight_bar);
    Tensor *a = tensor_new(c, 1, DIMS((int)K)), *bu = tensor_new(c, 2, DIMS(2, Cout));
    real stats[3] = {0, 0, 0};
    Tensor *gpu_stats = on_gpu(c) ? tensor_new(c, 1, DIMS(3)) : NULL;   /* the GPU's stats stay there */
    if (!c->dry && on_gpu(c)) {
        spectral_norm_biggan_forward_cuda(y->data, a->data, bu->data, gpu_stats->data, weight_bar->data, u->data, Cout,
                                          K);
        ctx_memcpy(c, bu->data + Cout, u->data, (size_t)Cout * sizeof(real));
    } else if (!c->dry) {
        spectral_norm_biggan_forward(y->data, a->data, bu->data, stats, weight_bar->data, u->data, Cout, K);
        memcpy(bu->data + Cout, u->data, (size_t)Cout * sizeof(real));
    }
    Node *n = record(c, &OP_SPECTRAL_NORM_BIGGAN, y, 1, &weight_bar);
    if (n) {
        for (int i = 0; i < 3; i++) n->rarg[i] = stats[i];
        n->saved = gpu_stats ? gpu_stats->data : NULL;
        n->aux[0] = a;
        n->aux[1] = bu;
    }
    return y;
}

void spectral_norm_biggan_init_uv(Tensor *u, Tensor *v, Rng *r) {
    normal_unit(u, r, SPECTRAL_NORM_BIGGAN_EPS, 0);
    normal_unit(v, r, SPECTRAL_NORM_BIGGAN_EPS, 0);
}

/* ==== SPADE's and AdaIN's normalise-modulate-activate step (kernels/modulate.h) ========================= */

static void t_norm_modulate_lrelu_backward(Ctx *c, Node *n) {
    Tensor *x = n->in[0], *scale = n->in[1], *shift = n->in[2];
    int N = x->shape[0], C = x->shape[1];
    size_t HW = (size_t)x->shape[3] * (size_t)x->shape[4], P = scale->numel / ((size_t)N * (size_t)C);
    if (on_gpu(c))
        norm_modulate_lrelu_backward_cuda(grad_or_null(c, x), grad_or_null(c, scale), grad_or_null(c, shift),
                                          n->aux[0]->data, n->aux[1]->data, n->out->grad, x->data, scale->data,
                                          shift->data, N, C, x->shape[2], HW, P, n->iarg[0], n->rarg[0], n->rarg[1]);
    else
        norm_modulate_lrelu_backward(grad_or_null(c, x), grad_or_null(c, scale), grad_or_null(c, shift),
                                     n->aux[0]->data, n->aux[1]->data, n->out->grad, x->data, scale->data, shift->data,
                                     N, C, x->shape[2], HW, P, n->iarg[0], n->rarg[0], n->rarg[1]);
}
static const OpInfo OP_NORM_MODULATE_LRELU = {"norm_modulate_lrelu", t_norm_modulate_lrelu_backward};

Tensor *t_norm_modulate_lrelu(Ctx *c, Tensor *x, int G, real eps, Tensor *scale, Tensor *shift, real one, real slope) {
    I2V_ASSERT(x->ndim == 5 && shape_equal(scale, shift) && scale->ndim == 5 && scale->shape[0] == x->shape[0] &&
                   scale->shape[1] == x->shape[1] && scale->shape[2] == 1 &&
                   ((scale->shape[3] == x->shape[3] && scale->shape[4] == x->shape[4]) ||
                    (scale->shape[3] == 1 && scale->shape[4] == 1)) &&
                   G >= 1 && x->shape[1] % G == 0,
               "norm_modulate: scale and shift must be (N, C, 1, H, W) or (N, C, 1, 1, 1) for x (N, C, T, H, W), "
               "and C a multiple of the %d groups", G);
    int N = x->shape[0], C = x->shape[1];
    Tensor *y = tensor_new_like(c, x), *mean = tensor_new(c, 1, DIMS(N * G)), *rstd = tensor_new(c, 1, DIMS(N * G));
    size_t HW = (size_t)x->shape[3] * (size_t)x->shape[4], P = scale->numel / ((size_t)N * (size_t)C);
    if (!c->dry && on_gpu(c))
        norm_modulate_lrelu_forward_cuda(y->data, mean->data, rstd->data, x->data, scale->data, shift->data, N, C,
                                         x->shape[2], HW, P, G, eps, one, slope);
    else if (!c->dry)
        norm_modulate_lrelu_forward(y->data, mean->data, rstd->data, x->data, scale->data, shift->data, N, C,
                                    x->shape[2], HW, P, G, eps, one, slope);
    Tensor *in[3] = {x, scale, shift};
    Node *n = record(c, &OP_NORM_MODULATE_LRELU, y, 3, in);
    if (n) {
        n->iarg[0] = G;
        n->rarg[0] = one;
        n->rarg[1] = slope;
        n->aux[0] = mean;
        n->aux[1] = rstd;
    }
    return y;
}
