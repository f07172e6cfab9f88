/* gpu_ops.c: every op on the GPU against the same op on the CPU (make CUDA=1 test-gpu).
 *
 * Each case builds random inputs of odd sizes (primes and sizes that are no multiple of any block or tile),
 * runs the op forward on a CPU context and on a GPU context from identical copies of the inputs, seeds the
 * backward with one random gradient, and compares the outputs, the input gradients and the inputs themselves
 * afterwards (spectral norm's power iteration and batch norm's running statistics change them in place).
 * The error of a result is max |gpu - cpu| / max |cpu| over its elements, so a tolerance reads as "digits
 * that agree relative to the result's scale". Tolerances, by what the two backends do differently:
 *   COPY   0          copies, gathers and selections move values without arithmetic
 *   ELEM   3e-6       one elementwise formula per value, the same text on both (kernels/formulas.h, no fused
 *                     multiply-adds on either side), but CUDA's expf/tanhf/logf differ from the C library's by
 *                     up to 2 ulp (1e-7)
 *   SUM    2e-5       sums in double of float terms, in another order; the terms carry the ELEM differences
 *   MATMUL 1e-4       cuBLAS and cuDNN accumulate in float in their own order over K up to ~2000 terms:
 *                     sqrt(K) ulp of the largest terms, about 3e-6 of the result's scale, with margin
 *   NORM   1e-4       normalisations divide by a standard deviation computed from such sums, and the
 *                     backward of a normalisation cancels terms of similar size
 * In the double build the same sources run in double: every class is 1e-10 there.
 * Without a GPU (or without the GPU build) the program says `skipped: no GPU` and passes.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cuda/cuda.h"
#include "ops/conv.h"
#include "ops/norm.h"
#include "tensor.h"

enum Tol { COPY, ELEM, SUM, MATMUL, NORM };
static double tolerance(int t) {
    static const double f32[] = {0, 3e-6, 2e-5, 1e-4, 1e-4};
    return is_double_build() ? (t == COPY ? 0 : 1e-10) : f32[t];
}

static Rng rng;
static Ctx cpu, gpu;

/* ---- the harness -------------------------------------------------------------------------------------- */

#define MAXIN 6
typedef Tensor *(*OpFn)(Ctx *c, Tensor **in, const void *arg);

typedef struct Case {
    const char *name;
    OpFn f;
    const void *arg;
    int nin;
    Tensor *in[MAXIN];     /* the inputs' values (host-initialised, copied for each device) */
    int grad[MAXIN];       /* which inputs get a gradient */
    int tol;
} Case;

static Tensor *clone(const Tensor *t) {
    Tensor *c = tensor_alloc_dtype(t->dtype, t->ndim, t->shape);
    if (t->dtype == DT_REAL) memcpy(c->data, t->data, t->numel * sizeof(real));
    else memcpy(c->ibuf, t->ibuf, t->numel * dtype_size(t->dtype));
    return c;
}

/* What one device produced: output values, input gradients, inputs after the call. */
typedef struct Result {
    Tensor *out;            /* host copies */
    Tensor *grad[MAXIN];
    Tensor *after[MAXIN];
} Result;

static void result_free(Result *r) {
    tensor_free(r->out);
    for (int i = 0; i < MAXIN; i++) {
        tensor_free(r->grad[i]);
        tensor_free(r->after[i]);
    }
}

static Tensor *host_copy(const Tensor *t, const real *values) {
    Tensor *c = tensor_alloc(t->ndim, t->shape);
    memcpy(c->data, values, t->numel * sizeof(real));
    return c;
}

static Result run_on(Ctx *c, const Case *k) {
    Result r;
    memset(&r, 0, sizeof r);
    Tensor *in[MAXIN];
    int any = 0;
    for (int i = 0; i < k->nin; i++) {
        in[i] = k->in[i] ? clone(k->in[i]) : NULL;
        if (in[i] && k->grad[i]) {
            in[i]->requires_grad = 1;
            any = 1;
        }
    }
    ctx_reset(c);
    Tensor *out = k->f(c, in, k->arg);
    if (any && out->requires_grad) {
        real *seed = xmalloc(out->numel * sizeof(real));
        Rng gr;
        rng_seed(&gr, 99);
        for (size_t j = 0; j < out->numel; j++) seed[j] = (real)(2 * rng_uniform(&gr) - 1);
        backward_seed(c, out, seed);
        free(seed);
    }
    ctx_sync(c);
    r.out = host_copy(out, out->data);
    for (int i = 0; i < k->nin; i++) {
        if (!in[i]) continue;
        if (k->grad[i]) {
            r.grad[i] = tensor_alloc(in[i]->ndim, in[i]->shape);   /* zeros where no gradient arrived */
            if (in[i]->grad_pass == c->pass && in[i]->grad)
                memcpy(r.grad[i]->data, in[i]->grad, in[i]->numel * sizeof(real));
        }
        if (in[i]->dtype == DT_REAL) r.after[i] = clone(in[i]);
    }
    ctx_reset(c);
    for (int i = 0; i < k->nin; i++) tensor_free(in[i]);
    return r;
}

/* max |a - b| / max |b|: 0 for identical results, NaN anywhere fails */
static double rel_error(const Tensor *a, const Tensor *b) {
    double scale = 0, err = 0;
    for (size_t i = 0; i < b->numel; i++) {
        if (isnan(a->data[i]) != isnan(b->data[i])) return INFINITY;
        if (isnan(b->data[i])) continue;
        double d = fabs((double)a->data[i] - b->data[i]);
        if (d > err) err = d;
        if (fabs(b->data[i]) > scale) scale = fabs(b->data[i]);
    }
    return err == 0 ? 0 : err / (scale > 0 ? scale : 1);
}

static void run_case(const Case *k) {
    Result a = run_on(&cpu, k), b = run_on(&gpu, k);
    double tol = tolerance(k->tol), worst = rel_error(b.out, a.out);
    int ok = check(worst <= tol, "%s: forward differs from the CPU by %.3g (tolerance %.1g)", k->name, worst, tol);
    for (int i = 0; i < k->nin && ok; i++) {
        if (a.grad[i]) {
            double e = rel_error(b.grad[i], a.grad[i]);
            ok = check(e <= tol, "%s: gradient of input %d differs from the CPU by %.3g (tolerance %.1g)", k->name, i, e,
                       tol);
            if (e > worst) worst = e;
        }
        if (a.after[i]) {
            double e = rel_error(b.after[i], a.after[i]);
            ok = check(e <= tol, "%s: input %d after the call differs from the CPU by %.3g (tolerance %.1g)", k->name,
                       i, e, tol);
        }
    }
    if (ok) printf("  %-34s worst relative difference %.2g\n", k->name, worst);
    result_free(&a);
    result_free(&b);
}

static Tensor *rand_tensor(int ndim, const int *shape, double lo, double hi) {
    Tensor *t = tensor_alloc(ndim, shape);
    tensor_fill_uniform(t, &rng, lo, hi);
    return t;
}
#define RAND(lo, hi, ...) rand_tensor((int)(sizeof((int[]){__VA_ARGS__}) / sizeof(int)), DIMS(__VA_ARGS__), lo, hi)

static void case_free(Case *k) {
    for (int i = 0; i < k->nin; i++) tensor_free(k->in[i]);
}

/* one input, with a gradient */
static void test1(const char *name, OpFn f, const void *arg, Tensor *x, int tol) {
    Case k = {name, f, arg, 1, {x}, {1}, tol};
    run_case(&k);
    case_free(&k);
}

/* two inputs, both with gradients */
static void test2(const char *name, OpFn f, const void *arg, Tensor *a, Tensor *b, int tol) {
    Case k = {name, f, arg, 2, {a, b}, {1, 1}, tol};
    run_case(&k);
    case_free(&k);
}

/* ---- elementwise ----------------------------------------------------------------------------------------- */

static Tensor *f_relu(Ctx *c, Tensor **in, const void *a) { (void)a; return t_relu(c, in[0]); }
static Tensor *f_leaky(Ctx *c, Tensor **in, const void *a) { (void)a; return t_leaky_relu(c, in[0], (real)0.2); }
static Tensor *f_tanh(Ctx *c, Tensor **in, const void *a) { (void)a; return t_tanh(c, in[0]); }
static Tensor *f_sigmoid(Ctx *c, Tensor **in, const void *a) { (void)a; return t_sigmoid(c, in[0]); }
static Tensor *f_exp(Ctx *c, Tensor **in, const void *a) { (void)a; return t_exp(c, in[0]); }
static Tensor *f_log(Ctx *c, Tensor **in, const void *a) { (void)a; return t_log(c, in[0]); }
static Tensor *f_abs(Ctx *c, Tensor **in, const void *a) { (void)a; return t_abs(c, in[0]); }
static Tensor *f_sqrt(Ctx *c, Tensor **in, const void *a) { (void)a; return t_sqrt(c, in[0]); }
static Tensor *f_square(Ctx *c, Tensor **in, const void *a) { (void)a; return t_square(c, in[0]); }
static Tensor *f_clamp(Ctx *c, Tensor **in, const void *a) { (void)a; return t_clamp(c, in[0], (real)-0.3, (real)0.6); }
static Tensor *f_scale(Ctx *c, Tensor **in, const void *a) { (void)a; return t_scale(c, in[0], (real)-1.7); }
static Tensor *f_add_scalar(Ctx *c, Tensor **in, const void *a) { (void)a; return t_add_scalar(c, in[0], (real)0.3); }

static Tensor *f_add(Ctx *c, Tensor **in, const void *a) { (void)a; return t_add(c, in[0], in[1]); }
static Tensor *f_sub(Ctx *c, Tensor **in, const void *a) { (void)a; return t_sub(c, in[0], in[1]); }
static Tensor *f_mul(Ctx *c, Tensor **in, const void *a) { (void)a; return t_mul(c, in[0], in[1]); }
static Tensor *f_div(Ctx *c, Tensor **in, const void *a) { (void)a; return t_div(c, in[0], in[1]); }

static Tensor *f_relu_jvp(Ctx *c, Tensor **in, const void *a) { (void)a; return t_relu_jvp(c, in[0], in[1]); }
static Tensor *f_leaky_jvp(Ctx *c, Tensor **in, const void *a) {
    (void)a;
    return t_leaky_relu_jvp(c, in[0], in[1], (real)0.2);
}
static Tensor *f_tanh_jvp(Ctx *c, Tensor **in, const void *a) { (void)a; return t_tanh_jvp(c, in[0], in[1]); }
static Tensor *f_sigmoid_jvp(Ctx *c, Tensor **in, const void *a) { (void)a; return t_sigmoid_jvp(c, in[0], in[1]); }

/* dropout draws its mask from a stream seeded by one draw of the generator: the same on both devices */
static Tensor *f_dropout(Ctx *c, Tensor **in, const void *a) {
    (void)a;
    Rng r;
    rng_seed(&r, 5);
    return t_dropout(c, in[0], (real)0.3, &r);
}

static void test_elementwise(void) {
    printf("elementwise\n");
    test1("relu", f_relu, NULL, RAND(-1, 1, 3, 37, 11), ELEM);
    test1("leaky_relu", f_leaky, NULL, RAND(-1, 1, 1001), ELEM);
    test1("tanh", f_tanh, NULL, RAND(-3, 3, 7, 13, 5), ELEM);
    test1("sigmoid", f_sigmoid, NULL, RAND(-4, 4, 257, 3), ELEM);
    test1("exp", f_exp, NULL, RAND(-2, 2, 5, 41), ELEM);
    test1("log", f_log, NULL, RAND(0.1, 3, 9, 29), ELEM);
    test1("abs", f_abs, NULL, RAND(-1, 1, 2, 3, 5, 7, 11), ELEM);
    test1("sqrt", f_sqrt, NULL, RAND(0.1, 4, 333), ELEM);
    test1("square", f_square, NULL, RAND(-2, 2, 17, 19), ELEM);
    test1("clamp", f_clamp, NULL, RAND(-1, 1, 1031), ELEM);
    test1("scale", f_scale, NULL, RAND(-1, 1, 3, 1, 77), ELEM);
    test1("add_scalar", f_add_scalar, NULL, RAND(-1, 1, 61), ELEM);
    test1("dropout (the CPU's mask)", f_dropout, NULL, RAND(-1, 1, 4, 1009), COPY);
    /* broadcasting: equal shapes, a trailing axis, a middle axis, both inputs broadcast, a scalar */
    test2("add (equal shapes)", f_add, NULL, RAND(-1, 1, 5, 7, 9), RAND(-1, 1, 5, 7, 9), ELEM);
    test2("add (bias over the last axis)", f_add, NULL, RAND(-1, 1, 37, 53), RAND(-1, 1, 53), SUM);
    test2("sub (per-channel (1, C, 1, 1, 1))", f_sub, NULL, RAND(-1, 1, 3, 5, 7, 11, 13), RAND(-1, 1, 1, 5, 1, 1, 1),
          SUM);
    test2("mul (both broadcast)", f_mul, NULL, RAND(-1, 1, 3, 1, 7, 5), RAND(-1, 1, 1, 11, 7, 1), SUM);
    test2("mul (0-D)", f_mul, NULL, RAND(-1, 1, 13, 17), RAND(-1, 1, 1), SUM);
    test2("div", f_div, NULL, RAND(-1, 1, 9, 23, 3), RAND(0.5, 2, 9, 1, 3), SUM);
    test2("relu_jvp", f_relu_jvp, NULL, RAND(-1, 1, 3, 101), RAND(-1, 1, 3, 101), ELEM);
    test2("leaky_relu_jvp", f_leaky_jvp, NULL, RAND(-1, 1, 211), RAND(-1, 1, 211), ELEM);
    test2("tanh_jvp", f_tanh_jvp, NULL, RAND(-2, 2, 5, 43), RAND(-1, 1, 5, 43), ELEM);
    test2("sigmoid_jvp", f_sigmoid_jvp, NULL, RAND(-3, 3, 7, 31), RAND(-1, 1, 7, 31), ELEM);
}

/* ---- reductions, losses ------------------------------------------------------------------------------------ */

typedef struct AxesArg {
    unsigned axes;
    int keepdim, mean;
} AxesArg;

static Tensor *f_reduce(Ctx *c, Tensor **in, const void *a) {
    const AxesArg *r = a;
    return r->mean ? t_mean(c, in[0], r->axes, r->keepdim) : t_sum(c, in[0], r->axes, r->keepdim);
}
static Tensor *f_sum_all(Ctx *c, Tensor **in, const void *a) { (void)a; return t_sum_all(c, in[0]); }
static Tensor *f_softmax(Ctx *c, Tensor **in, const void *a) { return t_softmax(c, in[0], *(const int *)a); }
static Tensor *f_l1(Ctx *c, Tensor **in, const void *a) { (void)a; return t_l1_loss(c, in[0], in[1]); }
static Tensor *f_mse(Ctx *c, Tensor **in, const void *a) { (void)a; return t_mse_loss(c, in[0], in[1]); }
static Tensor *f_hinge_real(Ctx *c, Tensor **in, const void *a) { (void)a; return t_hinge_d_real(c, in[0]); }
static Tensor *f_hinge_fake(Ctx *c, Tensor **in, const void *a) { (void)a; return t_hinge_d_fake(c, in[0]); }
static Tensor *f_hinge_g(Ctx *c, Tensor **in, const void *a) { (void)a; return t_hinge_g(c, in[0]); }
static Tensor *f_kl(Ctx *c, Tensor **in, const void *a) { (void)a; return t_kl_normal(c, in[0], in[1]); }
static Tensor *f_nll(Ctx *c, Tensor **in, const void *a) { (void)a; return t_gaussian_nll(c, in[0]); }
static Tensor *f_count(Ctx *c, Tensor **in, const void *a) { (void)a; return t_count_negative(c, in[0], -0.105); }

static void test_reductions(void) {
    printf("reductions and losses\n");
    static const AxesArg last = {0x4u, 0, 0}, first = {0x1u, 1, 1}, mid = {0x2u, 0, 1}, two = {0x5u, 0, 0},
                         per_sample = {AXES_PER_SAMPLE, 1, 1};
    test1("sum over the last axis", f_reduce, &last, RAND(-1, 1, 7, 11, 13), SUM);
    test1("mean over the first axis (keepdim)", f_reduce, &first, RAND(-1, 1, 37, 3, 5), SUM);
    test1("mean over a middle axis", f_reduce, &mid, RAND(-1, 1, 3, 301, 7), SUM);
    test1("sum over axes 0 and 2", f_reduce, &two, RAND(-1, 1, 9, 5, 11, 3), SUM);
    test1("mean per sample", f_reduce, &per_sample, RAND(-1, 1, 3, 5, 7, 9, 11), SUM);
    test1("sum of 300007 values (split sums)", f_sum_all, NULL, RAND(-1, 1, 300007), SUM);
    static const int ax1 = 1, ax2 = 2;
    test1("softmax (middle axis)", f_softmax, &ax1, RAND(-3, 3, 3, 17, 5), SUM);
    test1("softmax (last axis)", f_softmax, &ax2, RAND(-3, 3, 2, 3, 29), SUM);
    test2("l1_loss", f_l1, NULL, RAND(-1, 1, 3, 7, 101), RAND(-1, 1, 3, 7, 101), SUM);
    test2("mse_loss", f_mse, NULL, RAND(-1, 1, 4099), RAND(-1, 1, 4099), SUM);
    test1("hinge_d_real", f_hinge_real, NULL, RAND(-2, 2, 5, 1, 13, 13), SUM);
    test1("hinge_d_fake", f_hinge_fake, NULL, RAND(-2, 2, 5, 1, 13, 13), SUM);
    test1("hinge_g", f_hinge_g, NULL, RAND(-2, 2, 77), SUM);
    test2("kl_normal", f_kl, NULL, RAND(-1, 1, 7, 64), RAND(-1, 1, 7, 64), SUM);
    test1("gaussian_nll", f_nll, NULL, RAND(-2, 2, 13, 64), SUM);
    Case k = {"count_negative (no gradient)", f_count, NULL, 1, {RAND(-1, 1, 11, 63)}, {0}, SUM};
    run_case(&k);
    case_free(&k);
}

/* ---- shapes and copies ------------------------------------------------------------------------------------- */

static Tensor *f_reshape(Ctx *c, Tensor **in, const void *a) {
    (void)a;
    return t_square(c, t_reshape(c, in[0], 2, DIMS(-1, 7)));   /* the square gives the reshape a backward to run */
}
static Tensor *f_permute(Ctx *c, Tensor **in, const void *a) { return t_permute(c, in[0], (const int *)a); }
static Tensor *f_concat(Ctx *c, Tensor **in, const void *a) {
    (void)a;
    Tensor *parts[3] = {in[0], in[1], in[2]};
    return t_concat(c, 3, parts, 1);
}
static Tensor *f_slice(Ctx *c, Tensor **in, const void *a) { (void)a; return t_slice(c, in[0], 2, 3, 5); }
static Tensor *f_index_select(Ctx *c, Tensor **in, const void *a) {
    (void)a;
    static const int64_t idx[9] = {4, 0, 4, 2, 6, 6, 6, 1, 0};   /* repeats: the backward must add them up */
    return t_index_select(c, in[0], 1, 9, idx);
}

static void test_shapes(void) {
    printf("shapes and copies\n");
    test1("reshape (backward)", f_reshape, NULL, RAND(-1, 1, 3, 5, 7), ELEM);
    static const int p3[3] = {2, 0, 1}, p5[5] = {0, 2, 1, 4, 3};
    test1("permute (3 axes)", f_permute, p3, RAND(-1, 1, 5, 7, 11), COPY);
    test1("permute (5 axes)", f_permute, p5, RAND(-1, 1, 2, 3, 5, 7, 4), COPY);
    Case k = {"concat (3 parts, axis 1)", f_concat, NULL, 3,
              {RAND(-1, 1, 3, 2, 5), RAND(-1, 1, 3, 7, 5), RAND(-1, 1, 3, 1, 5)}, {1, 1, 1}, COPY};
    run_case(&k);
    case_free(&k);
    test1("slice", f_slice, NULL, RAND(-1, 1, 3, 4, 11, 2), COPY);
    test1("index_select (repeated indices)", f_index_select, NULL, RAND(-1, 1, 3, 7, 5), SUM);
}

/* ---- linear algebra ------------------------------------------------------------------------------------------ */

static Tensor *f_linear(Ctx *c, Tensor **in, const void *a) { (void)a; return t_linear(c, in[0], in[1], in[2]); }
static Tensor *f_bmm(Ctx *c, Tensor **in, const void *a) {
    const int *t = a;
    return t_bmm(c, in[0], in[1], t[0], t[1]);
}

static void test_linear_algebra(void) {
    printf("linear algebra (cuBLAS)\n");
    Case k = {"linear (bias)", f_linear, NULL, 3, {RAND(-1, 1, 37, 53), RAND(-1, 1, 29, 53), RAND(-1, 1, 29)},
              {1, 1, 1}, MATMUL};
    run_case(&k);
    case_free(&k);
    Case k2 = {"linear (3-D input, no bias)", f_linear, NULL, 3, {RAND(-1, 1, 3, 5, 97), RAND(-1, 1, 513, 97), NULL},
               {1, 1, 0}, MATMUL};
    run_case(&k2);
    case_free(&k2);
    static const int tt[4][2] = {{0, 0}, {1, 0}, {0, 1}, {1, 1}};
    for (int i = 0; i < 4; i++) {
        int ta = tt[i][0], tb = tt[i][1], m = 7, n = 11, kk = 13;
        char name[64];
        snprintf(name, sizeof name, "bmm (ta %d, tb %d)", ta, tb);
        Tensor *a = ta ? RAND(-1, 1, 3, kk, m) : RAND(-1, 1, 3, m, kk), *b = tb ? RAND(-1, 1, 3, n, kk) : RAND(-1, 1, 3, kk, n);
        Case kb = {name, f_bmm, tt[i], 2, {a, b}, {1, 1}, MATMUL};
        run_case(&kb);
        case_free(&kb);
    }
}

/* ---- convolutions, pooling, resampling ----------------------------------------------------------------------- */

typedef struct ConvArg {
    int stride[3], pad[3];
} ConvArg;

static Tensor *f_conv2d(Ctx *c, Tensor **in, const void *a) {
    const ConvArg *g = a;
    return t_conv2d(c, in[0], in[1], in[2], g->stride, g->pad);
}
static Tensor *f_conv3d(Ctx *c, Tensor **in, const void *a) {
    const ConvArg *g = a;
    return t_conv3d(c, in[0], in[1], in[2], g->stride, g->pad);
}

typedef struct PoolArg {
    int k[3], s[3], p[3];
} PoolArg;

static Tensor *f_maxpool2d(Ctx *c, Tensor **in, const void *a) {
    const PoolArg *p = a;
    return t_maxpool2d(c, in[0], p->k, p->s, p->p);
}
static Tensor *f_avgpool2d(Ctx *c, Tensor **in, const void *a) {
    const PoolArg *p = a;
    return t_avgpool2d(c, in[0], p->k, p->s, p->p);
}
static Tensor *f_maxpool3d(Ctx *c, Tensor **in, const void *a) {
    const PoolArg *p = a;
    return t_maxpool3d(c, in[0], p->k, p->s, p->p);
}
static Tensor *f_avgpool3d(Ctx *c, Tensor **in, const void *a) {
    const PoolArg *p = a;
    return t_avgpool3d(c, in[0], p->k, p->s, p->p);
}
static Tensor *f_maxpool3d_jvp(Ctx *c, Tensor **in, const void *a) {
    const PoolArg *p = a;
    return t_maxpool3d_jvp(c, in[0], in[1], p->k, p->s, p->p);
}
static Tensor *f_global_avgpool(Ctx *c, Tensor **in, const void *a) { (void)a; return t_global_avgpool(c, in[0]); }
static Tensor *f_upsample2d(Ctx *c, Tensor **in, const void *a) { return t_upsample_nearest2d(c, in[0], (const int *)a); }
static Tensor *f_upsample3d(Ctx *c, Tensor **in, const void *a) { return t_upsample_nearest3d(c, in[0], (const int *)a); }
static Tensor *f_resize(Ctx *c, Tensor **in, const void *a) {
    const int *o = a;
    return t_resize_bilinear(c, in[0], o[0], o[1]);
}

static void test_conv(void) {
    printf("convolutions (cuDNN), pooling, resampling\n");
    static const ConvArg c2 = {{1, 2, 2}, {0, 1, 1}}, c2b = {{1, 1, 1}, {0, 2, 0}}, c3 = {{1, 2, 2}, {1, 1, 1}},
                         c3b = {{2, 1, 1}, {0, 0, 0}}, c1 = {{1, 1, 1}, {0, 0, 0}};
    Case k[] = {
        {"conv2d 3x3 stride 2 (bias)", f_conv2d, &c2, 3, {RAND(-1, 1, 2, 3, 11, 9), RAND(-1, 1, 5, 3, 3, 3), RAND(-1, 1, 5)},
         {1, 1, 1}, MATMUL},
        {"conv2d 5x3 pad (2, 0)", f_conv2d, &c2b, 3, {RAND(-1, 1, 3, 7, 13, 10), RAND(-1, 1, 6, 7, 5, 3), NULL},
         {1, 1, 0}, MATMUL},
        {"conv2d 1x1 (bias)", f_conv2d, &c1, 3, {RAND(-1, 1, 2, 19, 7, 5), RAND(-1, 1, 11, 19, 1, 1), RAND(-1, 1, 11)},
         {1, 1, 1}, MATMUL},
        {"conv3d 3x3x3 stride (1, 2, 2)", f_conv3d, &c3, 3,
         {RAND(-1, 1, 2, 3, 5, 7, 6), RAND(-1, 1, 4, 3, 3, 3, 3), RAND(-1, 1, 4)}, {1, 1, 1}, MATMUL},
        {"conv3d 2x1x3 stride (2, 1, 1)", f_conv3d, &c3b, 3,
         {RAND(-1, 1, 3, 5, 6, 5, 7), RAND(-1, 1, 7, 5, 2, 1, 3), NULL}, {1, 1, 0}, MATMUL},
        {"conv3d 1x1x1 (bias)", f_conv3d, &c1, 3, {RAND(-1, 1, 2, 13, 3, 5, 4), RAND(-1, 1, 9, 13, 1, 1, 1), RAND(-1, 1, 9)},
         {1, 1, 1}, MATMUL},
    };
    for (size_t i = 0; i < sizeof k / sizeof *k; i++) {
        run_case(&k[i]);
        case_free(&k[i]);
    }
    static const PoolArg p2 = {{1, 3, 3}, {1, 2, 2}, {0, 1, 1}}, p2b = {{1, 2, 3}, {1, 2, 1}, {0, 1, 0}},
                         p3 = {{3, 3, 3}, {2, 2, 2}, {1, 1, 1}}, p3b = {{2, 3, 2}, {1, 2, 2}, {0, 1, 1}};
    test1("maxpool2d 3x3 stride 2 pad 1", f_maxpool2d, &p2, RAND(-1, 1, 2, 3, 11, 9), COPY);
    test1("maxpool2d 2x3 stride (2, 1)", f_maxpool2d, &p2b, RAND(-1, 1, 3, 2, 9, 8), COPY);
    test1("avgpool2d 3x3 stride 2 pad 1", f_avgpool2d, &p2, RAND(-1, 1, 2, 3, 11, 9), SUM);
    test1("maxpool3d 3x3x3 stride 2 pad 1", f_maxpool3d, &p3, RAND(-1, 1, 2, 3, 7, 9, 5), COPY);
    test1("avgpool3d 2x3x2", f_avgpool3d, &p3b, RAND(-1, 1, 2, 3, 5, 7, 9), SUM);
    test2("maxpool3d_jvp", f_maxpool3d_jvp, &p3, RAND(-1, 1, 2, 3, 7, 9, 5), RAND(-1, 1, 2, 3, 7, 9, 5), COPY);
    test1("global_avgpool", f_global_avgpool, NULL, RAND(-1, 1, 3, 5, 7, 9, 11), SUM);
    static const int f2[2] = {2, 3}, f3[3] = {2, 2, 3}, up[2] = {13, 17}, down[2] = {5, 4}, one[2] = {1, 7};
    test1("upsample_nearest2d (2, 3)", f_upsample2d, f2, RAND(-1, 1, 2, 3, 5, 7), SUM);
    test1("upsample_nearest3d (2, 2, 3)", f_upsample3d, f3, RAND(-1, 1, 2, 3, 3, 5, 4), SUM);
    test1("resize_bilinear up to 13x17", f_resize, up, RAND(-1, 1, 2, 3, 7, 9), SUM);
    test1("resize_bilinear down to 5x4", f_resize, down, RAND(-1, 1, 2, 3, 11, 13), SUM);
    test1("resize_bilinear to 1x7", f_resize, one, RAND(-1, 1, 1, 2, 6, 5), SUM);
}

/* ---- normalisations ----------------------------------------------------------------------------------------- */

static Tensor *f_group_norm(Ctx *c, Tensor **in, const void *a) {
    return t_group_norm(c, in[0], *(const int *)a, (real)1e-5, in[1], in[2]);
}
static Tensor *f_instance_norm(Ctx *c, Tensor **in, const void *a) { (void)a; return t_instance_norm(c, in[0], (real)1e-5); }
static Tensor *f_group_norm_jvp(Ctx *c, Tensor **in, const void *a) {
    return t_group_norm_jvp(c, in[0], in[1], *(const int *)a, (real)1e-5, in[2]);
}
static Tensor *f_actnorm(Ctx *c, Tensor **in, const void *a) { (void)a; return t_actnorm(c, in[0], in[1], in[2]); }
static Tensor *f_actnorm_inverse(Ctx *c, Tensor **in, const void *a) {
    (void)a;
    return t_actnorm_inverse(c, in[0], in[1], in[2]);
}
static Tensor *f_batch_norm(Ctx *c, Tensor **in, const void *a) {
    c->training = *(const int *)a;
    Tensor *y = t_batch_norm(c, in[0], in[1], in[2], in[3], in[4], NULL, (real)1e-5, (real)0.1);
    c->training = 1;
    return y;
}
static Tensor *f_spectral_norm(Ctx *c, Tensor **in, const void *a) {
    c->training = *(const int *)a;
    Tensor *y = t_spectral_norm(c, in[0], in[1], in[2]);
    c->training = 1;
    return y;
}
static Tensor *f_spectral_biggan(Ctx *c, Tensor **in, const void *a) {
    (void)a;
    return t_spectral_norm_biggan(c, in[0], in[1]);
}

typedef struct ModArg {
    int G;
    real one;
} ModArg;
static Tensor *f_modulate(Ctx *c, Tensor **in, const void *a) {
    const ModArg *m = a;
    return t_norm_modulate_lrelu(c, in[0], m->G, (real)1e-5, in[1], in[2], m->one, (real)0.2);
}
static Tensor *f_sigma(Ctx *c, Tensor **in, const void *a) {
    c->training = *(const int *)a;
    Tensor *y = t_spectral_norm_sigma(c, in[0], in[1], in[2]);
    c->training = 1;
    return y;
}

static void unit(Tensor *t) {
    double s = 0;
    for (size_t i = 0; i < t->numel; i++) s += (double)t->data[i] * t->data[i];
    for (size_t i = 0; i < t->numel; i++) t->data[i] = (real)(t->data[i] / sqrt(s));
}

static void test_norms(void) {
    printf("normalisations\n");
    static const int g3 = 3, g1 = 1, train = 1, eval = 0;
    Case k[] = {
        {"group_norm (3 groups, affine)", f_group_norm, &g3, 3,
         {RAND(-1, 2, 2, 6, 5, 7), RAND(0.5, 1.5, 6), RAND(-1, 1, 6)}, {1, 1, 1}, NORM},
        {"group_norm (1 group, 5-D, no affine)", f_group_norm, &g1, 3, {RAND(-1, 2, 3, 4, 3, 5, 7), NULL, NULL},
         {1, 0, 0}, NORM},
        {"group_norm_jvp (3 groups)", f_group_norm_jvp, &g3, 3,
         {RAND(-1, 2, 2, 6, 5, 7), RAND(-1, 1, 2, 6, 5, 7), RAND(0.5, 1.5, 6)}, {1, 1, 1}, NORM},
        {"actnorm", f_actnorm, NULL, 3, {RAND(-1, 1, 5, 7, 3, 3), RAND(-1, 1, 7), RAND(0.5, 2, 7)}, {1, 1, 1}, SUM},
        {"actnorm_inverse", f_actnorm_inverse, NULL, 3, {RAND(-1, 1, 13, 64), RAND(-1, 1, 64), RAND(0.5, 2, 64)},
         {1, 1, 1}, SUM},
        {"batch_norm (training: running stats)", f_batch_norm, &train, 5,
         {RAND(-1, 2, 3, 5, 7, 3), RAND(0.5, 1.5, 5), RAND(-1, 1, 5), RAND(-0.1, 0.1, 5), RAND(0.9, 1.1, 5)},
         {1, 1, 1, 0, 0}, NORM},
        {"batch_norm (eval)", f_batch_norm, &eval, 5,
         {RAND(-1, 2, 3, 5, 7, 3), RAND(0.5, 1.5, 5), RAND(-1, 1, 5), RAND(-0.1, 0.1, 5), RAND(0.9, 1.1, 5)},
         {1, 1, 1, 0, 0}, NORM},
    };
    for (size_t i = 0; i < sizeof k / sizeof *k; i++) {
        run_case(&k[i]);
        case_free(&k[i]);
    }
    test1("instance_norm", f_instance_norm, NULL, RAND(-1, 1, 2, 5, 3, 11), NORM);
    for (int mode = 0; mode < 2; mode++) {
        Tensor *u = RAND(-1, 1, 23), *v = RAND(-1, 1, 3 * 3 * 7);
        unit(u);
        unit(v);
        Case ks = {mode ? "spectral_norm (training: power iteration)" : "spectral_norm (eval)", f_spectral_norm,
                   mode ? &train : &eval, 3, {RAND(-1, 1, 23, 7, 3, 3), u, v}, {1, 0, 0}, NORM};
        run_case(&ks);
        case_free(&ks);
    }
    Tensor *u = RAND(-1, 1, 17);
    unit(u);
    Case kb = {"spectral_norm_biggan", f_spectral_biggan, NULL, 2, {RAND(-1, 1, 17, 5, 3, 3), u}, {1, 0}, NORM};
    run_case(&kb);
    case_free(&kb);
    Tensor *su = RAND(-1, 1, 19), *sv = RAND(-1, 1, 7 * 3 * 3 * 3);
    unit(su);
    unit(sv);
    Case ksig = {"spectral_norm_sigma (training)", f_sigma, &train, 3, {RAND(-1, 1, 19, 7, 3, 3, 3), su, sv},
                 {1, 0, 0}, NORM};
    run_case(&ksig);
    case_free(&ksig);
    /* SPADE: scale and shift per position (P = H W), one = 1; AdaIN: per channel (P = 1), instance norm, one = 0 */
    static const ModArg spade = {3, 1}, adain = {6, 0};
    Case km[] = {
        {"norm_modulate_lrelu (SPADE)", f_modulate, &spade, 3,
         {RAND(-1, 2, 2, 6, 3, 5, 7), RAND(-1, 1, 2, 6, 1, 5, 7), RAND(-1, 1, 2, 6, 1, 5, 7)}, {1, 1, 1}, NORM},
        {"norm_modulate_lrelu (AdaIN)", f_modulate, &adain, 3,
         {RAND(-1, 2, 3, 6, 2, 9, 5), RAND(-1, 1, 3, 6, 1, 1, 1), RAND(-1, 1, 3, 6, 1, 1, 1)}, {1, 1, 1}, NORM},
    };
    for (size_t i = 0; i < sizeof km / sizeof *km; i++) {
        run_case(&km[i]);
        case_free(&km[i]);
    }
}

int main(void) {
    I2vError e;
    if (device_select("cuda", &e)) {
        printf("skipped: no GPU (%s)\n", e.msg);
        return check_summary("gpu_ops");
    }
    if (I2V_CUDA) printf("GPU: %s\n", cuda_device_name());
    rng_seed(&rng, 2024);
    ctx_init_device(&cpu, DEVICE_CPU);
    ctx_init_device(&gpu, DEVICE_CUDA);
    test_elementwise();
    test_reductions();
    test_shapes();
    test_linear_algebra();
    test_conv();
    test_norms();
    ctx_free(&cpu);
    ctx_free(&gpu);
    return check_summary("gpu_ops");
}
