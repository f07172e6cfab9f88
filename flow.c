/* flow.c: the conditional invertible network (cINN) of "Stochastic Image-to-Video Synthesis using cINNs"
 * (Dorkenwald et al., CVPR 2021, section 3.2), read top to bottom in the order of the paper's equations.
 *
 * What it is: the flow nu = f(z; c) of stage 2 exactly as the official ConditionalFlow
 * (stage2_cINN/modules/flow_blocks.py): n_flows blocks, each
 *     ActNorm -> invertible leaky ReLU -> double affine coupling (MLPs on [kept half, c]) -> fixed shuffle,
 * its exact inverse, its log-determinant, the stage-2 objective, a training step and sampling.
 * What it is not: the networks that produce z (the stage-1 video encoder) and c (the conditioning image
 * encoder) -- those are in ae.c; this file sees only vectors.
 *
 * Every layer comes as a forward/inverse pair written with the tensor library's recorded ops, so the
 * backward pass (for training) comes from the tape, and the inverse is the forward's algebra run
 * backwards (no iteration). Dimension legend: N batch, D = z_dim (64), E = condition width.
 */
#include "flow.h"

#include "ops/init.h"
#include "ops/norm.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ==================================================================================================== */
/* building the network                                                                                  */
/* ==================================================================================================== */

FlowConfig flow_config_bair(void) {
    FlowConfig c = {.z_dim = 64, .embed_dim = 64, .hidden = 512, .depth = 2, .n_flows = 20,
                    .control = 0, .official_logdet = 0};
    return c;
}

/* BasicFullyConnectedNet(dim_in, depth, hidden, out): linear layers at Sequential indices 0, 2, 4, ... */
static void mlp_declare(FlowMlp *m, ParamSet *ps, const char *prefix, int in, int hidden, int depth, int out) {
    char name[256];
    m->nlin = depth + 2;
    I2V_ASSERT(m->nlin <= FLOW_MLP_MAX, "MLP depth %d is more than this build supports", depth);
    for (int k = 0; k < m->nlin; k++) {
        int fan_in = k == 0 ? in : hidden, fan_out = k == m->nlin - 1 ? out : hidden;
        snprintf(name, sizeof name, "%s.main.%d.weight", prefix, 2 * k);
        m->w[k] = param_new(ps, name, 2, DIMS(fan_out, fan_in));
        snprintf(name, sizeof name, "%s.main.%d.bias", prefix, 2 * k);
        m->b[k] = param_new(ps, name, 1, DIMS(fan_out));
    }
}

void flow_build(Flow *f, const FlowConfig *cfg, Rng *rng) {
    I2V_ASSERT(cfg->z_dim >= 2 && cfg->z_dim % 2 == 0, "the flow splits z in halves: z_dim %d must be even",
               cfg->z_dim);
    memset(f, 0, sizeof *f);
    f->cfg = *cfg;
    f->cond_dim = cfg->embed_dim + (cfg->control ? FLOW_CONTROL_DIM : 0);
    f->blocks = xcalloc((size_t)cfg->n_flows, sizeof *f->blocks);
    paramset_init(&f->ps);
    int D = cfg->z_dim, half = D / 2;
    char prefix[128], name[256];
    /* Registration order = the official state_dict order: norm_layer, coupling (s, t), shuffle. */
    for (int i = 0; i < cfg->n_flows; i++) {
        FlowBlock *b = &f->blocks[i];
        b->cond_mode = cfg->control && i % 4 != 0;
        snprintf(prefix, sizeof prefix, "sub_layers.%d", i);
        snprintf(name, sizeof name, "%s.norm_layer.loc", prefix);
        b->loc = param_new(&f->ps, name, 4, DIMS(1, D, 1, 1));
        snprintf(name, sizeof name, "%s.norm_layer.scale", prefix);
        b->scale = param_new(&f->ps, name, 4, DIMS(1, D, 1, 1));
        snprintf(name, sizeof name, "%s.norm_layer.initialized", prefix);
        b->initialized = buffer_new(&f->ps, name, DT_U8, 0, NULL);
        int mlp_in = b->cond_mode ? f->cond_dim : half + f->cond_dim;
        for (int k = 0; k < 2; k++) {
            snprintf(name, sizeof name, "%s.coupling.s.%d", prefix, k);
            mlp_declare(&b->s[k], &f->ps, name, mlp_in, cfg->hidden, cfg->depth, half);
        }
        for (int k = 0; k < 2; k++) {
            snprintf(name, sizeof name, "%s.coupling.t.%d", prefix, k);
            mlp_declare(&b->t[k], &f->ps, name, mlp_in, cfg->hidden, cfg->depth, half);
        }
        snprintf(name, sizeof name, "%s.shuffle.forward_shuffle_idx", prefix);
        b->perm = buffer_new(&f->ps, name, DT_I64, 1, DIMS(D));
        snprintf(name, sizeof name, "%s.shuffle.backward_shuffle_idx", prefix);
        b->perm_inv = buffer_new(&f->ps, name, DT_I64, 1, DIMS(D));
    }
    paramset_alloc(&f->ps);
    for (int i = 0; i < cfg->n_flows; i++) {
        FlowBlock *b = &f->blocks[i];
        tensor_fill(b->loc, 0);
        tensor_fill(b->scale, 1);
        FlowMlp *mlps[4] = {&b->s[0], &b->s[1], &b->t[0], &b->t[1]};
        for (int m = 0; m < 4; m++)
            for (int k = 0; k < mlps[m]->nlin; k++) init_default(mlps[m]->w[k], mlps[m]->b[k], rng);   /* nn.Linear */
        /* Shuffle: p = randperm(D), and its inverse argsort(p) */
        int64_t *p = b->perm->ibuf, *pinv = b->perm_inv->ibuf;
        rng_permutation(rng, D, p);
        for (int j = 0; j < D; j++) pinv[p[j]] = j;
    }
}

void flow_free(Flow *f) {
    paramset_free(&f->ps);
    free(f->blocks);
    memset(f, 0, sizeof *f);
}

/* ==================================================================================================== */
/* 1. ActNorm (Glow, Kingma and Dhariwal 2018): y = scale * (x + loc), log|det| = sum_d log|scale_d|       */
/* ==================================================================================================== */

int actnorm_initialize(FlowBlock *b, const Tensor *x) {
    int degenerate = actnorm_init(b->loc, b->scale, x);   /* loc = -mean, scale = 1 / (std + 1e-6) */
    ((uint8_t *)b->initialized->ibuf)[0] = 1;
    return degenerate ? -1 : 0;
}

Tensor *actnorm_forward(Ctx *ctx, FlowBlock *b, Tensor *x, Tensor **logdet) {
    int D = x->shape[1];
    if (!ctx->dry && ((uint8_t *)b->initialized->ibuf)[0] == 0) actnorm_initialize(b, x);
    Tensor *loc = t_reshape(ctx, b->loc, 1, DIMS(D)), *scale = t_reshape(ctx, b->scale, 1, DIMS(D));
    Tensor *y = t_mul(ctx, t_add(ctx, x, loc), scale);
    Tensor *ld = t_sum_all(ctx, t_log(ctx, t_abs(ctx, scale)));             /* 0-D, same for every sample */
    *logdet = t_add(ctx, tensor_zeros(ctx, 1, DIMS(x->shape[0])), ld);
    return y;
}

Tensor *actnorm_inverse(Ctx *ctx, FlowBlock *b, Tensor *y, Tensor **logdet) {
    int D = y->shape[1];
    Tensor *loc = t_reshape(ctx, b->loc, 1, DIMS(D)), *scale = t_reshape(ctx, b->scale, 1, DIMS(D));
    Tensor *x = t_sub(ctx, t_div(ctx, y, scale), loc);
    Tensor *ld = t_scale(ctx, t_sum_all(ctx, t_log(ctx, t_abs(ctx, scale))), -1);
    *logdet = t_add(ctx, tensor_zeros(ctx, 1, DIMS(y->shape[0])), ld);
    return x;
}

/* ==================================================================================================== */
/* 2. Invertible leaky ReLU, slope 0.9: y = x (x >= 0), 0.9 x (x < 0)                                      */
/* ==================================================================================================== */
/* Its Jacobian is diagonal with entries 1 or 0.9, so log|det| = (number of negative entries) * log 0.9.
 * The official InvLeakyRelu returns 0 instead. The term is piecewise constant in the parameters, so the
 * gradients (and therefore training) are the same either way; only the reported likelihood differs.
 * i2v reports the true value unless FlowConfig.official_logdet asks for the official one. */
#define INVLEAKY_SLOPE 0.9

static Tensor *count_negative_logdet(Ctx *ctx, Tensor *v, int official, double sign) {
    if (official) return tensor_zeros(ctx, 1, DIMS(v->shape[0]));
    return t_count_negative(ctx, v, sign * log(INVLEAKY_SLOPE));
}

Tensor *invleaky_forward(Ctx *ctx, Tensor *x, int official, Tensor **logdet) {
    *logdet = count_negative_logdet(ctx, x, official, 1);
    return t_leaky_relu(ctx, x, INVLEAKY_SLOPE);
}

/* y < 0 exactly where x < 0, so the inverse is a leaky ReLU with slope 1/0.9. */
Tensor *invleaky_inverse(Ctx *ctx, Tensor *y, int official, Tensor **logdet) {
    *logdet = count_negative_logdet(ctx, y, official, -1);
    return t_leaky_relu(ctx, y, (real)(1.0 / INVLEAKY_SLOPE));
}

/* ==================================================================================================== */
/* 3. Double affine coupling (RealNVP, Dinh et al. 2017; paper Eq. 5)                                   */
/* ==================================================================================================== */
/* x = [a | b] (halves of D/2). Step 0 keeps a and transforms b, step 1 keeps the new b and transforms a:
 *     b' = b * exp(s0(u0)) + t0(u0),  u0 = [a, c]
 *     a' = a * exp(s1(u1)) + t1(u1),  u1 = [b', c]         output [b' | a'],  log|det| = sum s0 + sum s1
 * ('cond' blocks of the control mode use u = c only). The s and t nets never need inverting, which is
 * what makes the inverse exact: a = (a' - t1(u1)) exp(-s1(u1)), then b = (b' - t0(u0)) exp(-s0(u0)). */
#define MLP_SLOPE 0.01   /* nn.LeakyReLU's default slope in BasicFullyConnectedNet */

static Tensor *mlp_forward(Ctx *ctx, const FlowMlp *m, Tensor *u) {
    Tensor *h = u;
    for (int k = 0; k < m->nlin; k++) {
        h = t_linear(ctx, h, m->w[k], m->b[k]);
        if (k < m->nlin - 1) h = t_leaky_relu(ctx, h, MLP_SLOPE);
    }
    return h;
}

/* The input of the step-k nets: [kept half, condition] or, in a 'cond' block, the condition alone. */
static Tensor *conditioner_input(Ctx *ctx, const FlowBlock *b, Tensor *kept, Tensor *c) {
    if (b->cond_mode) return c;
    Tensor *parts[2] = {kept, c};
    return t_concat(ctx, 2, parts, 1);
}

/* y = x * exp(s(u)) + t(u) for one step; adds sum(s) to *ld */
static Tensor *affine_step_forward(Ctx *ctx, const FlowMlp *s_net, const FlowMlp *t_net, Tensor *x, Tensor *u,
                                   Tensor **ld) {
    Tensor *s = mlp_forward(ctx, s_net, u);
    Tensor *y = t_add(ctx, t_mul(ctx, x, t_exp(ctx, s)), mlp_forward(ctx, t_net, u));
    Tensor *sum_s = t_sum(ctx, s, 2u, 0);   /* (N) */
    *ld = *ld ? t_add(ctx, *ld, sum_s) : sum_s;
    return y;
}

/* x = (y - t(u)) * exp(-s(u)); adds -sum(s) to *ld */
static Tensor *affine_step_inverse(Ctx *ctx, const FlowMlp *s_net, const FlowMlp *t_net, Tensor *y, Tensor *u,
                                   Tensor **ld) {
    Tensor *s = mlp_forward(ctx, s_net, u);
    Tensor *x = t_mul(ctx, t_sub(ctx, y, mlp_forward(ctx, t_net, u)), t_exp(ctx, t_scale(ctx, s, -1)));
    Tensor *sum_s = t_scale(ctx, t_sum(ctx, s, 2u, 0), -1);
    *ld = *ld ? t_add(ctx, *ld, sum_s) : sum_s;
    return x;
}

Tensor *coupling_forward(Ctx *ctx, FlowBlock *b, Tensor *x, Tensor *c, Tensor **logdet) {
    int half = x->shape[1] / 2;
    Tensor *a = t_slice(ctx, x, 1, 0, half), *bb = t_slice(ctx, x, 1, half, half);
    Tensor *ld = NULL;
    Tensor *b1 = affine_step_forward(ctx, &b->s[0], &b->t[0], bb, conditioner_input(ctx, b, a, c), &ld);
    Tensor *a1 = affine_step_forward(ctx, &b->s[1], &b->t[1], a, conditioner_input(ctx, b, b1, c), &ld);
    *logdet = ld;
    Tensor *halves[2] = {b1, a1};
    return t_concat(ctx, 2, halves, 1);
}

Tensor *coupling_inverse(Ctx *ctx, FlowBlock *b, Tensor *y, Tensor *c, Tensor **logdet) {
    int half = y->shape[1] / 2;
    Tensor *b1 = t_slice(ctx, y, 1, 0, half), *a1 = t_slice(ctx, y, 1, half, half);
    Tensor *ld = NULL;
    Tensor *a = affine_step_inverse(ctx, &b->s[1], &b->t[1], a1, conditioner_input(ctx, b, b1, c), &ld);
    Tensor *bb = affine_step_inverse(ctx, &b->s[0], &b->t[0], b1, conditioner_input(ctx, b, a, c), &ld);
    *logdet = ld;
    Tensor *halves[2] = {a, bb};
    return t_concat(ctx, 2, halves, 1);
}

/* ==================================================================================================== */
/* 4. Fixed shuffle: y[:, j] = x[:, p[j]], a permutation, log|det| = 0                                    */
/* ==================================================================================================== */

Tensor *shuffle_forward(Ctx *ctx, FlowBlock *b, Tensor *x, Tensor **logdet) {
    *logdet = tensor_zeros(ctx, 1, DIMS(x->shape[0]));
    return t_index_select(ctx, x, 1, x->shape[1], b->perm->ibuf);
}

Tensor *shuffle_inverse(Ctx *ctx, FlowBlock *b, Tensor *y, Tensor **logdet) {
    *logdet = tensor_zeros(ctx, 1, DIMS(y->shape[0]));
    return t_index_select(ctx, y, 1, y->shape[1], b->perm_inv->ibuf);
}

/* ==================================================================================================== */
/* one block and the whole flow                                                                          */
/* ==================================================================================================== */

Tensor *block_forward(Ctx *ctx, const Flow *f, FlowBlock *b, Tensor *x, Tensor *c, Tensor **logdet) {
    Tensor *ld[4];
    Tensor *h = actnorm_forward(ctx, b, x, &ld[0]);
    h = invleaky_forward(ctx, h, f->cfg.official_logdet, &ld[1]);
    h = coupling_forward(ctx, b, h, c, &ld[2]);
    h = shuffle_forward(ctx, b, h, &ld[3]);
    *logdet = t_add(ctx, t_add(ctx, ld[0], ld[1]), ld[2]);   /* the shuffle adds nothing */
    return h;
}

Tensor *block_inverse(Ctx *ctx, const Flow *f, FlowBlock *b, Tensor *y, Tensor *c, Tensor **logdet) {
    Tensor *ld[4];
    Tensor *h = shuffle_inverse(ctx, b, y, &ld[3]);
    h = coupling_inverse(ctx, b, h, c, &ld[2]);
    h = invleaky_inverse(ctx, h, f->cfg.official_logdet, &ld[1]);
    h = actnorm_inverse(ctx, b, h, &ld[0]);
    *logdet = t_add(ctx, t_add(ctx, ld[0], ld[1]), ld[2]);
    return h;
}

static void check_inputs(const Flow *f, const Tensor *x, const Tensor *c) {
    I2V_ASSERT(x->ndim == 2 && x->shape[1] == f->cfg.z_dim, "the flow takes (N, %d) latents", f->cfg.z_dim);
    I2V_ASSERT(c->ndim == 2 && c->shape[0] == x->shape[0] && c->shape[1] == f->cond_dim,
               "the flow takes (N, %d) conditions", f->cond_dim);
}

/* nu = f(z; c): blocks 0 .. n-1 in order, log-determinants summed (paper Eq. 3). */
Tensor *flow_forward(Ctx *ctx, Flow *f, Tensor *z, Tensor *c, Tensor **logdet) {
    check_inputs(f, z, c);
    Tensor *h = z, *total = NULL;
    for (int i = 0; i < f->cfg.n_flows; i++) {
        Tensor *ld;
        h = block_forward(ctx, f, &f->blocks[i], h, c, &ld);
        total = total ? t_add(ctx, total, ld) : ld;
    }
    *logdet = total;
    return h;
}

/* z = f^-1(nu; c): blocks n-1 .. 0, each inverted exactly. */
Tensor *flow_inverse(Ctx *ctx, Flow *f, Tensor *nu, Tensor *c) {
    check_inputs(f, nu, c);
    Tensor *h = nu;
    for (int i = f->cfg.n_flows - 1; i >= 0; i--) {
        Tensor *ld;
        h = block_inverse(ctx, f, &f->blocks[i], h, c, &ld);
    }
    return h;
}

/* ==================================================================================================== */
/* the stage-2 objective, training and sampling                                                           */
/* ==================================================================================================== */

/* -log p(z | c) = 0.5 |nu|^2 - log|det J| (+ 0.5 D log 2 pi, left out as in the official FlowLoss). */
Tensor *flow_loss(Ctx *ctx, Tensor *nu, Tensor *logdet) {
    return t_sub(ctx, t_mean_all(ctx, t_gaussian_nll(ctx, nu)), t_mean_all(ctx, logdet));
}

double flow_nll(double loss, int z_dim) { return loss + 0.5 * z_dim * log(2 * I2V_PI); }

double flow_bits_per_dim(double loss, int z_dim) { return flow_nll(loss, z_dim) / (z_dim * log(2.0)); }

void flow_embed_endpoint(const double p[3], real out[FLOW_CONTROL_DIM]) {
    for (int k = 0; k < FLOW_CONTROL_DIM; k++) out[k] = 0;
    for (int axis = 0; axis < 3; axis++) {
        int bin = (int)(10 * p[axis] - 1e-4);   /* C's cast truncates toward zero, like torch's .long() */
        if (bin < 0) bin = 0;
        if (bin > 9) bin = 9;
        out[axis * 10 + bin] = 1;
    }
}

static Tensor *batch_tensor(Ctx *ctx, const real *values, int n, int d) {
    return tensor_from_host(ctx, 2, DIMS(n, d), values);
}

static void fill_stats(Ctx *ctx, Tensor *logdet, Tensor *loss, int z_dim, FlowStepStats *st) {
    int n = logdet->shape[0];
    ctx_sync(ctx);   /* read on the host */
    double ld = 0;
    for (int i = 0; i < n; i++) ld += logdet->data[i];
    st->loss = loss->data[0];
    st->nll = flow_nll(st->loss, z_dim);
    st->logdet = ld / n;
    st->bits_per_dim = flow_bits_per_dim(st->loss, z_dim);
}

void flow_train_step(Ctx *ctx, Flow *f, Adam *opt, const real *z, const real *cond, int n, FlowStepStats *st) {
    Tensor *zt = batch_tensor(ctx, z, n, f->cfg.z_dim), *ct = batch_tensor(ctx, cond, n, f->cond_dim);
    Tensor *logdet;
    Tensor *nu = flow_forward(ctx, f, zt, ct, &logdet);
    Tensor *loss = flow_loss(ctx, nu, logdet);
    paramset_zero_grad(&f->ps);
    adam_backward_step(opt, ctx, loss);   /* backward, then Adam; each weight updated as its gradient is made */
    if (st) fill_stats(ctx, logdet, loss, f->cfg.z_dim, st);
    ctx_reset(ctx);
}

void flow_eval_batch(Ctx *ctx, Flow *f, const real *z, const real *cond, int n, FlowStepStats *st) {
    int saved = ctx->grad_enabled;
    ctx->grad_enabled = 0;
    Tensor *zt = batch_tensor(ctx, z, n, f->cfg.z_dim), *ct = batch_tensor(ctx, cond, n, f->cond_dim);
    Tensor *logdet;
    Tensor *nu = flow_forward(ctx, f, zt, ct, &logdet);
    fill_stats(ctx, logdet, flow_loss(ctx, nu, logdet), f->cfg.z_dim, st);
    ctx_reset(ctx);
    ctx->grad_enabled = saved;
}

void flow_sample(Ctx *ctx, Flow *f, Rng *rng, double temperature, const real *nu_in, const real *cond, int n,
                 real *z_out) {
    int D = f->cfg.z_dim, saved = ctx->grad_enabled;
    ctx->grad_enabled = 0;
    Tensor *nu = nu_in ? batch_tensor(ctx, nu_in, n, D) : tensor_randn(ctx, 2, DIMS(n, D), temperature, rng);
    Tensor *z = flow_inverse(ctx, f, nu, batch_tensor(ctx, cond, n, f->cond_dim));
    tensor_to_host(z, z_out);
    ctx_reset(ctx);
    ctx->grad_enabled = saved;
}
