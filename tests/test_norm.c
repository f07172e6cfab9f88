/* test_norm.c: tests of norm.c: group/instance norm and its tangent, ActNorm, batch norm, spectral norm.
 *
 * Gradient checks (double build) cover every op with respect to every input on small odd 2-D to 5-D
 * shapes; value tests compare with naive double-precision references written out here, with hand-computed
 * running statistics and with a matrix of known singular values. Dimension legend: N batch, C channels,
 * S spatial size, G groups. */
#include <math.h>
#include <string.h>

#include "check.h"
#include "compare.h"
#include "gradcheck.h"
#include "kernels/threads.h"
#include "kernels/norm.h"
#include "ops/norm.h"

static Rng rng;

static Tensor *rand_tensor(int ndim, const int *shape, double lo, double hi) {
    Tensor *t = tensor_alloc(ndim, shape);
    tensor_fill_uniform(t, &rng, lo, hi);
    return t;
}

static void dims_ncs(const Tensor *x, int *N, int *C, size_t *S) {
    *N = x->shape[0];
    *C = x->shape[1];
    *S = 1;
    for (int i = 2; i < x->ndim; i++) *S *= (size_t)x->shape[i];
}

/* tolerances of value tests: float rounding in the float build, near-exact in the double build */
static double tol(void) { return is_double_build() ? 1e-10 : 2e-5; }

/* ==== group norm ======================================================================================= */

/* naive group norm in double: out (N, C, S) */
static void gn_reference(double *out, const Tensor *x, int G, double eps, const Tensor *w, const Tensor *b) {
    int N, C;
    size_t S;
    dims_ncs(x, &N, &C, &S);
    int cpg = C / G;
    for (int n = 0; n < N; n++)
        for (int g = 0; g < G; g++) {
            double s = 0, v = 0;
            size_t m = (size_t)cpg * S, base = ((size_t)n * C + (size_t)g * cpg) * S;
            for (size_t j = 0; j < m; j++) s += x->data[base + j];
            double mu = s / m;
            for (size_t j = 0; j < m; j++) v += (x->data[base + j] - mu) * (x->data[base + j] - mu);
            double r = 1 / sqrt(v / m + eps);
            for (size_t j = 0; j < m; j++) {
                int ch = g * cpg + (int)(j / S);
                out[base + j] = (x->data[base + j] - mu) * r * (w ? w->data[ch] : 1) + (b ? b->data[ch] : 0);
            }
        }
}

typedef struct GnCase {
    int ndim, shape[5], G;
    int affine;
} GnCase;

static const GnCase gn_cases[] = {
    {3, {2, 6, 5}, 3, 1},          {3, {2, 6, 5}, 1, 0},         {4, {3, 4, 3, 5}, 2, 1},
    {4, {2, 6, 3, 1}, 6, 0},       {5, {2, 6, 3, 2, 3}, 3, 1},   {5, {2, 3, 2, 3, 2}, 3, 0}, /* instance norm */
};
#define N_GN_CASES (sizeof gn_cases / sizeof gn_cases[0])

typedef struct GnUser {
    int G;
    real eps;
    int affine;
} GnUser;

static Tensor *f_group_norm(Ctx *c, Tensor **in, void *user) {
    GnUser *u = user;
    return t_group_norm(c, in[0], u->G, u->eps, u->affine ? in[1] : NULL, u->affine ? in[2] : NULL);
}

static void test_group_norm(void) {
    for (size_t k = 0; k < N_GN_CASES; k++) {
        const GnCase *gc = &gn_cases[k];
        Tensor *x = rand_tensor(gc->ndim, gc->shape, -2, 3);
        int N, C;
        size_t S;
        dims_ncs(x, &N, &C, &S);
        Tensor *w = rand_tensor(1, DIMS(C), 0.5, 1.5), *b = rand_tensor(1, DIMS(C), -1, 1);
        Ctx c;
        ctx_init(&c);
        /* values: a naive double reference */
        Tensor *y = t_group_norm(&c, x, gc->G, (real)1e-5, gc->affine ? w : NULL, gc->affine ? b : NULL);
        double *ref = xmalloc(x->numel * sizeof(double));
        gn_reference(ref, x, gc->G, 1e-5, gc->affine ? w : NULL, gc->affine ? b : NULL);
        double err = 0;
        for (size_t i = 0; i < x->numel; i++) err = fmax(err, fabs(y->data[i] - ref[i]));
        check(err < tol() * 10, "group_norm case %zu: max error %g against the naive reference", k, err);
        /* non-affine: zero mean and (almost) unit biased variance per group */
        if (!gc->affine) {
            size_t m = x->numel / ((size_t)N * gc->G);
            double worst_mean = 0, worst_var = 0;
            for (size_t grp = 0; grp < (size_t)N * gc->G; grp++) {
                double s = 0, v = 0, vx = 0, sx = 0;
                for (size_t j = 0; j < m; j++) {
                    s += y->data[grp * m + j];
                    sx += x->data[grp * m + j];
                }
                for (size_t j = 0; j < m; j++) {
                    v += (y->data[grp * m + j] - s / m) * (y->data[grp * m + j] - s / m);
                    vx += (x->data[grp * m + j] - sx / m) * (x->data[grp * m + j] - sx / m);
                }
                worst_mean = fmax(worst_mean, fabs(s / m));
                double want = (vx / m) / (vx / m + 1e-5);  /* var/(var+eps): exactly 1 only without eps */
                worst_var = fmax(worst_var, fabs(v / m - want));
            }
            check(worst_mean < 1e-5 && worst_var < 1e-4, "group_norm case %zu: group mean %g, variance error %g", k,
                  worst_mean, worst_var);
        }
        free(ref);
        ctx_free(&c);
        /* gradients */
        GnUser u = {gc->G, (real)1e-5, gc->affine};
        Tensor *in[3] = {x, w, b};
        char name[64];
        snprintf(name, sizeof name, "group_norm case %zu", k);
        gradcheck(name, f_group_norm, gc->affine ? 3 : 1, in, &u, 0);
        tensor_free(x);
        tensor_free(w);
        tensor_free(b);
    }
    /* t_instance_norm is group norm with G = C */
    Tensor *x = rand_tensor(4, DIMS(2, 3, 4, 5), -1, 1);
    Ctx c;
    ctx_init(&c);
    Tensor *a = t_instance_norm(&c, x, (real)1e-5), *b = t_group_norm(&c, x, 3, (real)1e-5, NULL, NULL);
    check(max_abs_diff(a->data, b->data, x->numel) == 0, "instance_norm equals group_norm with G = C");
    ctx_free(&c);
    tensor_free(x);
}

/* A 16 x 64 x 64 x 2 group with a large mean: double statistics keep the float output normalised. */
static void test_group_norm_large(void) {
    Tensor *x = tensor_alloc(5, DIMS(1, 32, 16, 64, 64));
    for (size_t i = 0; i < x->numel; i++) x->data[i] = (real)(50 + rng_normal(&rng));
    Ctx c;
    ctx_init(&c);
    c.grad_enabled = 0;
    Tensor *y = t_group_norm(&c, x, 16, (real)1e-5, NULL, NULL);
    size_t m = x->numel / 16;
    double worst_mean = 0, worst_var = 0;
    for (int g = 0; g < 16; g++) {
        double s = 0, v = 0;
        for (size_t j = 0; j < m; j++) s += y->data[g * m + j];
        for (size_t j = 0; j < m; j++) v += (y->data[g * m + j] - s / m) * (y->data[g * m + j] - s / m);
        worst_mean = fmax(worst_mean, fabs(s / m));
        worst_var = fmax(worst_var, fabs(v / m - 1));
    }
    check(worst_mean < 1e-4 && worst_var < 1e-4, "group_norm over 131072 values with mean 50: mean %g, var error %g",
          worst_mean, worst_var);
    ctx_free(&c);
    tensor_free(x);
}

/* ==== group norm tangent =============================================================================== */

static Tensor *f_gn_jvp(Ctx *c, Tensor **in, void *user) {
    GnUser *u = user;
    return t_group_norm_jvp(c, in[0], in[1], u->G, u->eps, u->affine ? in[2] : NULL);
}

static void test_group_norm_jvp(void) {
    for (size_t k = 0; k < N_GN_CASES; k++) {
        const GnCase *gc = &gn_cases[k];
        Tensor *x = rand_tensor(gc->ndim, gc->shape, -2, 3), *t = rand_tensor(gc->ndim, gc->shape, -1, 1);
        int N, C;
        size_t S;
        dims_ncs(x, &N, &C, &S);
        Tensor *w = rand_tensor(1, DIMS(C), 0.5, 1.5), *b = rand_tensor(1, DIMS(C), -1, 1);
        /* value: central differences of group norm itself along t */
        double h = is_double_build() ? 1e-5 : 1e-2;
        Tensor *xp = tensor_alloc(x->ndim, x->shape), *xm = tensor_alloc(x->ndim, x->shape);
        for (size_t i = 0; i < x->numel; i++) {
            xp->data[i] = (real)(x->data[i] + h * t->data[i]);
            xm->data[i] = (real)(x->data[i] - h * t->data[i]);
        }
        Ctx c;
        ctx_init(&c);
        Tensor *wa = gc->affine ? w : NULL;
        Tensor *dy = t_group_norm_jvp(&c, x, t, gc->G, (real)1e-5, wa);
        Tensor *yp = t_group_norm(&c, xp, gc->G, (real)1e-5, wa, gc->affine ? b : NULL);
        Tensor *ym = t_group_norm(&c, xm, gc->G, (real)1e-5, wa, gc->affine ? b : NULL);
        double err = 0, scale = 0;
        for (size_t i = 0; i < x->numel; i++) {
            double fd = (yp->data[i] - ym->data[i]) / (2 * h);
            err = fmax(err, fabs(dy->data[i] - fd));
            scale = fmax(scale, fabs(fd));
        }
        double lim = is_double_build() ? 1e-7 : 3e-3;
        check(err < lim * (1 + scale), "group_norm_jvp case %zu: differs from finite differences of group_norm by %g",
              k, err);
        ctx_free(&c);
        GnUser u = {gc->G, (real)1e-5, gc->affine};
        Tensor *in[3] = {x, t, w};
        char name[64];
        snprintf(name, sizeof name, "group_norm_jvp case %zu", k);
        gradcheck(name, f_gn_jvp, gc->affine ? 3 : 2, in, &u, 0);
        tensor_free(x);
        tensor_free(t);
        tensor_free(w);
        tensor_free(b);
        tensor_free(xp);
        tensor_free(xm);
    }
}

/* ==== ActNorm ========================================================================================== */

static Tensor *f_actnorm(Ctx *c, Tensor **in, void *user) {
    (void)user;
    return t_actnorm(c, in[0], in[1], in[2]);
}
static Tensor *f_actnorm_inverse(Ctx *c, Tensor **in, void *user) {
    (void)user;
    return t_actnorm_inverse(c, in[0], in[1], in[2]);
}
static Tensor *f_actnorm_logdet(Ctx *c, Tensor **in, void *user) {
    return t_actnorm_logdet(c, in[0], *(size_t *)user);
}

static void test_actnorm(void) {
    /* the cINN's (N, D) vectors with (1, D, 1, 1) parameters, and PatchGAN-like (N, C, H, W) maps */
    static const int shapes[][5] = {{2, 5, 4}, {4, 3, 4, 2, 3}, {3, 2, 3, 2, 2}};
    for (int k = 0; k < 3; k++) {
        int ndim = shapes[k][0];
        Tensor *x = rand_tensor(ndim, shapes[k] + 1, -2, 2);
        int N, C;
        size_t S;
        dims_ncs(x, &N, &C, &S);
        Tensor *loc = rand_tensor(4, DIMS(1, C, 1, 1), -1, 1), *scale = rand_tensor(4, DIMS(1, C, 1, 1), 0.5, 2);
        scale->data[0] = -scale->data[0];   /* a negative scale: the log-det takes |scale| */
        Tensor *in[3] = {x, loc, scale};
        char name[64];
        snprintf(name, sizeof name, "actnorm %d-D", ndim);
        gradcheck(name, f_actnorm, 3, in, NULL, 0);
        snprintf(name, sizeof name, "actnorm_inverse %d-D", ndim);
        gradcheck(name, f_actnorm_inverse, 3, in, NULL, 0);
        size_t spatial = S;
        snprintf(name, sizeof name, "actnorm_logdet %d-D", ndim);
        gradcheck(name, f_actnorm_logdet, 1, &in[2], &spatial, 0);
        Ctx c;
        ctx_init(&c);
        Tensor *y = t_actnorm(&c, x, loc, scale), *back = t_actnorm_inverse(&c, y, loc, scale);
        check(max_abs_diff(back->data, x->data, x->numel) < 10 * tol(), "actnorm %d-D: inverse(forward(x)) = x", ndim);
        double want = 0;
        for (int ch = 0; ch < C; ch++) want += log(fabs(scale->data[ch]));
        Tensor *ld = t_actnorm_logdet(&c, scale, spatial);
        check_close(ld->data[0], S * want, 1e-5, 1e-5, "actnorm log-det = S sum log|scale|");
        ctx_free(&c);
        tensor_free(x);
        tensor_free(loc);
        tensor_free(scale);
    }

    /* data initialisation: channels with different means and spreads come out with zero mean and unit
     * unbiased variance on the batch they were initialised with */
    Tensor *x = tensor_alloc(4, DIMS(5, 3, 2, 3));
    for (int n = 0; n < 5; n++)
        for (int ch = 0; ch < 3; ch++)
            for (int j = 0; j < 6; j++)
                x->data[(n * 3 + ch) * 6 + j] = (real)(ch * 10 - 4 + (ch + 0.5) * rng_normal(&rng));
    Tensor *loc = tensor_alloc(4, DIMS(1, 3, 1, 1)), *scale = tensor_alloc(4, DIMS(1, 3, 1, 1));
    int bad = actnorm_init(loc, scale, x);
    check(bad == 0, "actnorm_init on good data reports %d degenerate channels", bad);
    Ctx c;
    ctx_init(&c);
    Tensor *y = t_actnorm(&c, x, loc, scale);
    for (int ch = 0; ch < 3; ch++) {
        double s = 0, v = 0;
        for (int n = 0; n < 5; n++)
            for (int j = 0; j < 6; j++) s += y->data[(n * 3 + ch) * 6 + j];
        for (int n = 0; n < 5; n++)
            for (int j = 0; j < 6; j++) v += pow(y->data[(n * 3 + ch) * 6 + j] - s / 30, 2);
        check_close(s / 30, 0, 1e-5, 0, "actnorm_init: channel mean after init");
        check_close(v / 29, 1, 1e-4, 0, "actnorm_init: channel unbiased variance after init");
    }
    ctx_free(&c);
    /* a constant channel: PyTorch's values (loc = -c, scale = 1 / 1e-6), reported through the return value */
    for (int n = 0; n < 5; n++)
        for (int j = 0; j < 6; j++) x->data[(n * 3 + 1) * 6 + j] = (real)0.1;
    bad = actnorm_init(loc, scale, x);
    check(bad == 1, "actnorm_init reports the constant channel (got %d)", bad);
    check_close(scale->data[1], 1e6, 0, 1e-6, "actnorm_init: scale of a constant channel as PyTorch");
    check_close(loc->data[1], -0.1, 1e-7, 1e-6, "actnorm_init: loc of a constant channel");
    /* one value per channel (a batch of one vector): no spread, every channel reported, scale 1 / 1e-6 */
    Tensor *one = tensor_alloc(2, DIMS(1, 3));
    for (int ch = 0; ch < 3; ch++) one->data[ch] = (real)(ch - 1.5);
    bad = actnorm_init(loc, scale, one);
    check(bad == 3 && scale->data[2] == (real)1e6 && loc->data[2] == (real)-0.5,
          "actnorm_init on one value per channel: 3 degenerate channels (got %d), scale 1e6, loc -x", bad);
    tensor_free(one);
    tensor_free(x);
    tensor_free(loc);
    tensor_free(scale);
}

/* ==== batch norm ======================================================================================= */

typedef struct BnUser {
    Tensor *rm, *rv, *nbt;
    int affine;
    real eps;
} BnUser;

static Tensor *f_batch_norm(Ctx *c, Tensor **in, void *user) {
    BnUser *u = user;
    return t_batch_norm(c, in[0], u->affine ? in[1] : NULL, u->affine ? in[2] : NULL, u->rm, u->rv, u->nbt, u->eps,
                        (real)0.1);
}

/* per-channel mean and (biased or unbiased) variance in double */
static void channel_stats(const Tensor *x, int ch, double *mean, double *var, int unbiased) {
    int N, C;
    size_t S;
    dims_ncs(x, &N, &C, &S);
    double s = 0, v = 0, cnt = (double)N * S;
    for (int n = 0; n < N; n++)
        for (size_t j = 0; j < S; j++) s += x->data[((size_t)n * C + ch) * S + j];
    for (int n = 0; n < N; n++)
        for (size_t j = 0; j < S; j++) v += pow(x->data[((size_t)n * C + ch) * S + j] - s / cnt, 2);
    *mean = s / cnt;
    *var = v / (unbiased ? cnt - 1 : cnt);
}

static void test_batch_norm(void) {
    static const int shapes[][6] = {{3, 4, 3, 5}, {4, 3, 2, 3, 2}, {5, 2, 3, 2, 2, 3}, {2, 5, 3}};
    for (int k = 0; k < 4; k++) {
        int ndim = shapes[k][0];
        Tensor *x = rand_tensor(ndim, shapes[k] + 1, -1, 2);
        int N, C;
        size_t S;
        dims_ncs(x, &N, &C, &S);
        Tensor *w = rand_tensor(1, DIMS(C), 0.5, 1.5), *b = rand_tensor(1, DIMS(C), -1, 1);
        Tensor *rm = rand_tensor(1, DIMS(C), -0.5, 0.5), *rv = rand_tensor(1, DIMS(C), 0.5, 2);
        Tensor *in[3] = {x, w, b};
        char name[64];
        for (int affine = 0; affine <= 1; affine++) {
            BnUser u = {rm, rv, NULL, affine, (real)(k == 3 ? 1e-4 : 1e-5)};
            snprintf(name, sizeof name, "batch_norm train %d-D affine %d", ndim, affine);
            gradcheck_mode(name, f_batch_norm, affine ? 3 : 1, in, &u, 0, 1);
            snprintf(name, sizeof name, "batch_norm eval %d-D affine %d", ndim, affine);
            gradcheck_mode(name, f_batch_norm, affine ? 3 : 1, in, &u, 0, 0);
            BnUser nostats = {NULL, NULL, NULL, affine, (real)1e-5};
            snprintf(name, sizeof name, "batch_norm without running stats %d-D affine %d", ndim, affine);
            gradcheck_mode(name, f_batch_norm, affine ? 3 : 1, in, &nostats, 0, 0);
        }
        tensor_free(x);
        tensor_free(w);
        tensor_free(b);
        tensor_free(rm);
        tensor_free(rv);
    }

    /* running statistics after two training steps, by hand: momentum 0.1, unbiased variance */
    ParamSet ps;
    paramset_init(&ps);
    Tensor *w = param_new(&ps, "bn.weight", 1, DIMS(3)), *b = param_new(&ps, "bn.bias", 1, DIMS(3));
    Tensor *rm = buffer_new(&ps, "bn.running_mean", DT_REAL, 1, DIMS(3));
    Tensor *rv = buffer_new(&ps, "bn.running_var", DT_REAL, 1, DIMS(3));
    Tensor *nbt = buffer_new(&ps, "bn.num_batches_tracked", DT_I64, 0, NULL);
    paramset_alloc(&ps);
    tensor_fill(rv, 1);   /* PyTorch's initial state: mean 0, var 1, count 0 */
    tensor_fill_uniform(w, &rng, 0.5, 1.5);
    tensor_fill_uniform(b, &rng, -1, 1);
    Tensor *x1 = rand_tensor(4, DIMS(4, 3, 2, 3), -1, 3), *x2 = rand_tensor(4, DIMS(4, 3, 2, 3), -2, 1);
    Ctx c;
    ctx_init(&c);
    c.grad_enabled = 0;
    Tensor *y1 = t_batch_norm(&c, x1, w, b, rm, rv, nbt, (real)1e-5, (real)0.1);
    t_batch_norm(&c, x2, w, b, rm, rv, nbt, (real)1e-5, (real)0.1);
    check(((int64_t *)nbt->ibuf)[0] == 2, "batch_norm: num_batches_tracked = %lld after two steps",
          (long long)((int64_t *)nbt->ibuf)[0]);
    double worst = 0;
    for (int ch = 0; ch < 3; ch++) {
        double m1, v1, m2, v2, mb, vb;
        channel_stats(x1, ch, &m1, &v1, 1);
        channel_stats(x2, ch, &m2, &v2, 1);
        double want_m = 0.9 * (0.9 * 0 + 0.1 * m1) + 0.1 * m2, want_v = 0.9 * (0.9 * 1 + 0.1 * v1) + 0.1 * v2;
        check_close(rm->data[ch], want_m, 1e-6, 1e-6, "batch_norm running_mean after two steps");
        check_close(rv->data[ch], want_v, 1e-6, 1e-6, "batch_norm running_var after two steps (unbiased)");
        /* the training output itself is normalised with the biased batch variance */
        channel_stats(x1, ch, &mb, &vb, 0);
        for (int n = 0; n < 4; n++)
            for (int j = 0; j < 6; j++) {
                size_t i = (size_t)(n * 3 + ch) * 6 + j;
                double want = (x1->data[i] - mb) / sqrt(vb + 1e-5) * w->data[ch] + b->data[ch];
                worst = fmax(worst, fabs(y1->data[i] - want));
            }
    }
    check(worst < 10 * tol(), "batch_norm training output: max error %g", worst);
    /* eval: running statistics, and nothing is updated */
    c.training = 0;
    real rm0[3], rv0[3];
    memcpy(rm0, rm->data, sizeof rm0);
    memcpy(rv0, rv->data, sizeof rv0);
    Tensor *ye = t_batch_norm(&c, x1, w, b, rm, rv, nbt, (real)1e-5, (real)0.1);
    worst = 0;
    for (size_t i = 0; i < x1->numel; i++) {
        int ch = (int)(i / 6 % 3);
        double want = (x1->data[i] - rm->data[ch]) / sqrt(rv->data[ch] + 1e-5) * w->data[ch] + b->data[ch];
        worst = fmax(worst, fabs(ye->data[i] - want));
    }
    check(worst < 10 * tol(), "batch_norm eval output uses the running statistics: max error %g", worst);
    check(!memcmp(rm0, rm->data, sizeof rm0) && !memcmp(rv0, rv->data, sizeof rv0) &&
              ((int64_t *)nbt->ibuf)[0] == 2,
          "batch_norm eval leaves the running statistics and the counter alone");
    /* a dry run computes nothing and updates nothing */
    c.training = 1;
    c.dry = 1;
    t_batch_norm(&c, x1, w, b, rm, rv, nbt, (real)1e-5, (real)0.1);
    check(!memcmp(rm0, rm->data, sizeof rm0) && ((int64_t *)nbt->ibuf)[0] == 2, "batch_norm dry run updates nothing");
    ctx_free(&c);
    tensor_free(x1);
    tensor_free(x2);
    paramset_free(&ps);
}

/* ==== spectral norm ==================================================================================== */

/* naive helpers in double on a (rows, k) matrix */
static void ref_mat_t_vec(double *out, const real *w, const double *u, int rows, size_t k) {
    for (size_t j = 0; j < k; j++) out[j] = 0;
    for (int i = 0; i < rows; i++)
        for (size_t j = 0; j < k; j++) out[j] += w[(size_t)i * k + j] * u[i];
}
static void ref_mat_vec(double *out, const real *w, const double *v, int rows, size_t k) {
    for (int i = 0; i < rows; i++) {
        out[i] = 0;
        for (size_t j = 0; j < k; j++) out[i] += w[(size_t)i * k + j] * v[j];
    }
}
static double ref_norm(const double *a, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * a[i];
    return sqrt(s);
}

/* the expected gradient of sum(R * W_orig / sigma) with u, v constant, accumulated into d */
static void ref_sn_grad(double *d, const real *R, const real *w, const double *u, const double *v, int rows,
                        size_t k) {
    double *wv = xmalloc((size_t)rows * sizeof(double));
    ref_mat_vec(wv, w, v, rows, k);
    double sigma = 0, dot = 0;
    for (int i = 0; i < rows; i++) sigma += u[i] * wv[i];
    for (size_t p = 0; p < (size_t)rows * k; p++) dot += (double)R[p] * w[p];
    for (int i = 0; i < rows; i++)
        for (size_t j = 0; j < k; j++)
            d[(size_t)i * k + j] += R[(size_t)i * k + j] / sigma - dot / (sigma * sigma) * u[i] * v[j];
    free(wv);
}

typedef struct SnUser {
    Tensor *u, *v;
} SnUser;

static Tensor *f_spectral_norm(Ctx *c, Tensor **in, void *user) {
    SnUser *s = user;
    return t_spectral_norm(c, in[0], s->u, s->v);
}
static Tensor *f_spectral_norm_biggan(Ctx *c, Tensor **in, void *user) {
    SnUser *s = user;
    return t_spectral_norm_biggan(c, in[0], s->u);
}

static void to_double(double *d, const real *r, size_t n) {
    for (size_t i = 0; i < n; i++) d[i] = r[i];
}

/* Householder reflection H = I - 2 q q^T / |q|^2 (orthogonal), n x n */
static void householder(double *H, int n) {
    double q[16], qq = 0;
    for (int i = 0; i < n; i++) {
        q[i] = rng_normal(&rng);
        qq += q[i] * q[i];
    }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) H[i * n + j] = (i == j) - 2 * q[i] * q[j] / qq;
}

static void test_spectral_norm(void) {
    /* gradients with u and v held fixed: eval mode does no iteration */
    static const int shapes[][6] = {{4, 4, 3, 2, 2}, {2, 5, 7}, {5, 3, 2, 1, 3, 2}};
    for (int k = 0; k < 3; k++) {
        int ndim = shapes[k][0];
        Tensor *w = rand_tensor(ndim, shapes[k] + 1, -1, 1);
        int rows = w->shape[0];
        Tensor *u = tensor_alloc(1, DIMS(rows)), *v = tensor_alloc(1, DIMS((int)(w->numel / rows)));
        spectral_norm_init_uv(u, v, &rng);
        SnUser s = {u, v};
        char name[64];
        snprintf(name, sizeof name, "spectral_norm %d-D (eval: u, v fixed)", ndim);
        gradcheck_mode(name, f_spectral_norm, 1, &w, &s, 0, 0);
        snprintf(name, sizeof name, "spectral_norm_biggan %d-D", ndim);
        gradcheck(name, f_spectral_norm_biggan, 1, &w, &s, 0);
        tensor_free(w);
        tensor_free(u);
        tensor_free(v);
    }

    /* a 5 x 7 matrix with singular values 3, 2.5, 1, 0.5, 0.2: W = H5 diag(s) H7[:5] */
    enum { R = 5, K = 7 };
    double H5[R * R], H7[K * K], sv[R] = {3, 2.5, 1, 0.5, 0.2};
    householder(H5, R);
    householder(H7, K);
    ParamSet ps;
    paramset_init(&ps);
    Tensor *w = param_new(&ps, "conv.weight_orig", 2, DIMS(R, K));
    Tensor *u = buffer_new(&ps, "conv.weight_u", DT_REAL, 1, DIMS(R));
    Tensor *v = buffer_new(&ps, "conv.weight_v", DT_REAL, 1, DIMS(K));
    paramset_alloc(&ps);
    for (int i = 0; i < R; i++)
        for (int j = 0; j < K; j++) {
            double s = 0;
            for (int p = 0; p < R; p++) s += H5[i * R + p] * sv[p] * H7[p * K + j];
            w->data[i * K + j] = (real)s;
        }
    spectral_norm_init_uv(u, v, &rng);
    check_close(ref_norm((double[]){u->data[0], u->data[1], u->data[2], u->data[3], u->data[4]}, R), 1, 1e-6, 0,
                "spectral_norm_init_uv: |u| = 1");

    Ctx c;
    ctx_init(&c);
    /* eval mode: the stored u, v are used and not changed */
    c.training = 0;
    real u0[R], v0[K];
    memcpy(u0, u->data, sizeof u0);
    memcpy(v0, v->data, sizeof v0);
    Tensor *We = t_spectral_norm(&c, w, u, v);
    check(!memcmp(u0, u->data, sizeof u0) && !memcmp(v0, v->data, sizeof v0), "spectral_norm eval keeps u and v");
    double ud[R], vd[K], wv[R], wtu[K];
    to_double(ud, u0, R);
    to_double(vd, v0, K);
    ref_mat_vec(wv, w->data, vd, R, K);
    double sigma = 0;
    for (int i = 0; i < R; i++) sigma += ud[i] * wv[i];
    double worst = 0;
    for (int p = 0; p < R * K; p++) worst = fmax(worst, fabs(We->data[p] - w->data[p] / sigma));
    check(worst < 10 * tol(), "spectral_norm eval = weight_orig / (u . W v): max error %g", worst);
    check_close(spectral_norm_sigma(w, u, v), sigma, 1e-6, 1e-6, "spectral_norm_sigma");

    /* training mode: exactly one power iteration per call, then the gradient uses the new u, v */
    c.training = 1;
    Tensor *Rt = rand_tensor(2, DIMS(R, K), -1, 1);
    Tensor *W1 = t_spectral_norm(&c, w, u, v);
    ref_mat_t_vec(wtu, w->data, ud, R, K);
    double nv = ref_norm(wtu, K);
    for (int j = 0; j < K; j++) vd[j] = wtu[j] / nv;
    ref_mat_vec(wv, w->data, vd, R, K);
    double nu = ref_norm(wv, R);
    for (int i = 0; i < R; i++) ud[i] = wv[i] / nu;
    worst = 0;
    for (int i = 0; i < R; i++) worst = fmax(worst, fabs(u->data[i] - ud[i]));
    for (int j = 0; j < K; j++) worst = fmax(worst, fabs(v->data[j] - vd[j]));
    check(worst < 10 * tol(), "spectral_norm training: u, v after one call = one power iteration (error %g)", worst);
    double u1[R], v1[K];
    memcpy(u1, ud, sizeof u1);
    memcpy(v1, vd, sizeof v1);
    /* a second call in the same graph (a discriminator on real and on fake) iterates once more */
    Tensor *R2 = rand_tensor(2, DIMS(R, K), -1, 1);
    Tensor *W2 = t_spectral_norm(&c, w, u, v);
    double u2[R], v2[K];
    to_double(u2, u->data, R);
    to_double(v2, v->data, K);
    Tensor *L = t_add(&c, t_sum_all(&c, t_mul(&c, W1, Rt)), t_sum_all(&c, t_mul(&c, W2, R2)));
    paramset_zero_grad(&ps);
    backward(&c, L);
    double *want = xcalloc((size_t)R * K, sizeof(double));
    ref_sn_grad(want, Rt->data, w->data, u1, v1, R, K);
    ref_sn_grad(want, R2->data, w->data, u2, v2, R, K);
    worst = 0;
    for (int p = 0; p < R * K; p++) worst = fmax(worst, fabs(w->grad[p] - want[p]));
    check(worst < 1e-4 * (is_double_build() ? 1e-4 : 1), "spectral_norm: each call's gradient uses its own u, v (%g)",
          worst);
    free(want);
    ctx_reset(&c);

    /* sigma converges to the largest singular value */
    c.grad_enabled = 0;
    for (int it = 0; it < 200; it++) {
        t_spectral_norm(&c, w, u, v);
        ctx_reset(&c);
    }
    check_close(spectral_norm_sigma(w, u, v), 3.0, 1e-5, 1e-5, "spectral_norm sigma -> largest singular value 3");
    Tensor *Wn = t_spectral_norm(&c, w, u, v);
    check_close(w->data[0] / Wn->data[0], 3.0, 1e-5, 1e-5, "spectral_norm output = weight_orig / 3");

    ctx_free(&c);
    tensor_free(Rt);
    tensor_free(R2);
    paramset_free(&ps);
}

/* sigma alone (a layer dividing its output): the same sigma as t_spectral_norm, one power iteration per
 * training-mode call, and the gradient dsigma u v^T. */
static Tensor *f_spectral_norm_sigma(Ctx *c, Tensor **in, void *user) {
    SnUser *s = user;
    return t_spectral_norm_sigma(c, in[0], s->u, s->v);
}

static void test_spectral_norm_sigma(void) {
    static const int shapes[][6] = {{4, 3, 3, 2, 2}, {2, 5, 7}, {5, 2, 1, 3, 2, 3}};
    for (int k = 0; k < 3; k++) {
        int ndim = shapes[k][0];
        Tensor *w = rand_tensor(ndim, shapes[k] + 1, -1, 1);
        int rows = w->shape[0];
        size_t K = w->numel / (size_t)rows;
        Tensor *u = tensor_alloc(1, DIMS(rows)), *v = tensor_alloc(1, DIMS((int)K));
        spectral_norm_init_uv(u, v, &rng);
        SnUser s = {u, v};
        char name[64];
        snprintf(name, sizeof name, "spectral_norm_sigma %d-D (eval: u, v fixed)", ndim);
        gradcheck_mode(name, f_spectral_norm_sigma, 1, &w, &s, 0, 0);

        /* eval: sigma = u . W v, and weight_orig / sigma is t_spectral_norm's weight */
        Ctx c;
        ctx_init(&c);
        c.training = 0;
        c.grad_enabled = 0;
        double *ud = xmalloc((size_t)rows * sizeof(double)), *vd = xmalloc(K * sizeof(double));
        double *wv = xmalloc((size_t)rows * sizeof(double));
        to_double(ud, u->data, (size_t)rows);
        to_double(vd, v->data, K);
        ref_mat_vec(wv, w->data, vd, rows, K);
        double want = 0;
        for (int i = 0; i < rows; i++) want += ud[i] * wv[i];
        Tensor *sigma = t_spectral_norm_sigma(&c, w, u, v);
        check(sigma->ndim == 0, "spectral_norm_sigma is 0-D");
        check_close(sigma->data[0], want, 0, 10 * tol(), "spectral_norm_sigma eval = u . W v");
        Tensor *W = t_spectral_norm(&c, w, u, v);
        double worst = 0;
        for (size_t p = 0; p < w->numel; p++) worst = fmax(worst, fabs(w->data[p] / sigma->data[0] - W->data[p]));
        check(worst < 10 * tol(), "spectral_norm_sigma: weight_orig / sigma = t_spectral_norm (error %g)", worst);
        ctx_reset(&c);

        /* training: one power iteration, as t_spectral_norm does, then sigma with the new vectors */
        Tensor *u2 = tensor_alloc(1, DIMS(rows)), *v2 = tensor_alloc(1, DIMS((int)K));
        tensor_copy_data(u2, u);
        tensor_copy_data(v2, v);
        c.training = 1;
        Tensor *s1 = t_spectral_norm_sigma(&c, w, u, v);
        Tensor *W2 = t_spectral_norm(&c, w, u2, v2);
        int same = !memcmp(u->data, u2->data, (size_t)rows * sizeof(real)) && !memcmp(v->data, v2->data, K * sizeof(real));
        check(same, "spectral_norm_sigma training: u, v after the call as after t_spectral_norm's");
        worst = 0;
        for (size_t p = 0; p < w->numel; p++) worst = fmax(worst, fabs(w->data[p] / s1->data[0] - W2->data[p]));
        check(worst < 10 * tol(), "spectral_norm_sigma training: the same sigma as t_spectral_norm (error %g)", worst);
        ctx_free(&c);
        free(ud);
        free(vd);
        free(wv);
        tensor_free(w);
        tensor_free(u);
        tensor_free(v);
        tensor_free(u2);
        tensor_free(v2);
    }
}

/* The BigGAN decoder's wrapper: one iteration from the stored u in every call and mode, u never written. */
static void test_spectral_norm_biggan(void) {
    enum { R = 6, K = 6 };
    Tensor *w = rand_tensor(3, DIMS(R, 2, 3), -1, 1);
    Tensor *u = tensor_alloc(1, DIMS(R)), *v = tensor_alloc(1, DIMS(R));
    spectral_norm_biggan_init_uv(u, v, &rng);
    double ud[R], a[K], vv[K], b[R];
    to_double(ud, u->data, R);
    double nu = ref_norm(ud, R);
    check(nu < 1 && nu > 1 - 1e-3, "spectral_norm_biggan_init_uv: |u| = |g| / (|g| + 1e-4), got %g", nu);
    ref_mat_t_vec(a, w->data, ud, R, K);
    double na = ref_norm(a, K);
    for (int j = 0; j < K; j++) vv[j] = a[j] / (na + 1e-4);
    ref_mat_vec(b, w->data, vv, R, K);
    double nb = ref_norm(b, R), sigma = 0;
    for (int i = 0; i < R; i++) sigma += b[i] / (nb + 1e-4) * b[i];
    real u0[R];
    memcpy(u0, u->data, sizeof u0);
    Ctx c;
    ctx_init(&c);
    for (int mode = 1; mode >= 0; mode--) {
        c.training = mode;
        for (int call = 0; call < 2; call++) {
            Tensor *y = t_spectral_norm_biggan(&c, w, u);
            double worst = 0;
            for (int p = 0; p < R * K; p++) worst = fmax(worst, fabs(y->data[p] - w->data[p] / sigma));
            check(worst < 10 * tol(), "spectral_norm_biggan (training %d, call %d) = weight_bar / sigma: error %g",
                  mode, call, worst);
        }
        check(!memcmp(u0, u->data, sizeof u0), "spectral_norm_biggan never writes u (training %d)", mode);
    }
    ctx_free(&c);
    tensor_free(w);
    tensor_free(u);
    tensor_free(v);
}

/* Results must not depend on the number of threads; a dry run allocates what the real step needs. */
/* ==== SPADE's and AdaIN's fused normalise-modulate-activate =========================================== */

typedef struct ModUser {
    int G;
    real one, slope;
} ModUser;

static Tensor *f_modulate(Ctx *c, Tensor **in, void *user) {
    ModUser *m = user;
    return t_norm_modulate_lrelu(c, in[0], m->G, (real)1e-5, in[1], in[2], m->one, m->slope);
}

/* the same computation with the separate ops: lrelu(group_norm(x) (scale + one) + shift) */
static Tensor *f_modulate_parts(Ctx *c, Tensor **in, void *user) {
    ModUser *m = user;
    Tensor *xn = t_group_norm(c, in[0], m->G, (real)1e-5, NULL, NULL);
    Tensor *z = t_add(c, t_mul(c, xn, t_add_scalar(c, in[1], m->one)), in[2]);
    return t_leaky_relu(c, z, m->slope);
}

static void test_norm_modulate_lrelu(void) {
    /* SPADE: scale per (n, c, h, w), one = 1, groups; AdaIN: scale per (n, c), one = 0, G = C */
    static const struct { int shape[5], spatial_scale, G; real one; } cases[] = {
        {{2, 6, 3, 3, 5}, 1, 3, 1}, {{3, 4, 2, 5, 3}, 0, 4, 0}, {{1, 6, 1, 4, 4}, 1, 2, 1}, {{2, 3, 3, 1, 7}, 0, 3, 0}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const int *sh = cases[k].shape;
        Tensor *in[3];
        in[0] = rand_tensor(5, sh, -2, 2);
        int ss[5] = {sh[0], sh[1], 1, cases[k].spatial_scale ? sh[3] : 1, cases[k].spatial_scale ? sh[4] : 1};
        in[1] = rand_tensor(5, ss, -1, 1);
        in[2] = rand_tensor(5, ss, -1, 1);
        ModUser m = {cases[k].G, cases[k].one, (real)0.2};
        char name[96];
        snprintf(name, sizeof name, "norm_modulate_lrelu (%d, %d, %d, %d, %d) %s", sh[0], sh[1], sh[2], sh[3], sh[4],
                 cases[k].spatial_scale ? "SPADE" : "AdaIN");
        gradcheck(name, f_modulate, 3, in, &m, 0);

        /* values and gradients against the separate ops (the fused op keeps only x and the statistics) */
        Ctx c;
        ctx_init(&c);
        for (int i = 0; i < 3; i++) in[i]->requires_grad = 1;
        Tensor *y = f_modulate(&c, in, &m), *yp = f_modulate_parts(&c, in, &m);
        check(!memcmp(y->data, yp->data, y->numel * sizeof(real)), "%s: bitwise the separate ops' values", name);
        Tensor *Rt = rand_tensor(5, sh, -1, 1);
        Tensor *g[3], *gp[3];
        grad_of(&c, t_sum_all(&c, t_mul(&c, y, Rt)), 3, in, g);
        grad_of(&c, t_sum_all(&c, t_mul(&c, yp, Rt)), 3, in, gp);
        double worst = 0;
        for (int i = 0; i < 3; i++)
            for (size_t p = 0; p < in[i]->numel; p++) worst = fmax(worst, fabs(g[i]->data[p] - gp[i]->data[p]));
        check(worst < 100 * tol(), "%s: gradients of the separate ops (error %g)", name, worst);
        ctx_free(&c);
        tensor_free(Rt);
        for (int i = 0; i < 3; i++) tensor_free(in[i]);
    }
}

static void test_threads_and_dry_run(void) {
    Tensor *x = rand_tensor(5, DIMS(3, 32, 3, 5, 7), -1, 1), *t = rand_tensor(5, DIMS(3, 32, 3, 5, 7), -1, 1);
    Tensor *gw = rand_tensor(1, DIMS(32), 0.5, 1.5), *gb = rand_tensor(1, DIMS(32), -1, 1);
    Tensor *w = rand_tensor(4, DIMS(70, 33, 3, 3), -1, 1);
    Tensor *u = tensor_alloc(1, DIMS(70)), *v = tensor_alloc(1, DIMS(33 * 9));
    spectral_norm_init_uv(u, v, &rng);
    real *results[2];
    size_t total = 3 * x->numel + w->numel;
    int saved_threads = threads_count();
    for (int run = 0; run < 2; run++) {
        threads_set(run == 0 ? 1 : 5);
        Tensor *uc = tensor_alloc(1, DIMS(70)), *vc = tensor_alloc(1, DIMS(33 * 9));
        tensor_copy_data(uc, u);
        tensor_copy_data(vc, v);
        Ctx c;
        ctx_init(&c);
        x->requires_grad = 1;
        Tensor *y = t_group_norm(&c, x, 16, (real)1e-5, gw, gb);
        Tensor *j = t_group_norm_jvp(&c, x, t, 16, (real)1e-5, gw);
        Tensor *ws = t_spectral_norm(&c, w, uc, vc);
        backward(&c, t_add(&c, t_sum_all(&c, t_square(&c, y)), t_sum_all(&c, t_square(&c, j))));
        results[run] = xmalloc(total * sizeof(real));
        memcpy(results[run], y->data, x->numel * sizeof(real));
        memcpy(results[run] + x->numel, j->data, x->numel * sizeof(real));
        memcpy(results[run] + 2 * x->numel, x->grad, x->numel * sizeof(real));
        memcpy(results[run] + 3 * x->numel, ws->data, w->numel * sizeof(real));
        x->requires_grad = 0;
        ctx_free(&c);
        tensor_free(uc);
        tensor_free(vc);
    }
    threads_set(saved_threads);
    check(!memcmp(results[0], results[1], total * sizeof(real)), "norm ops give identical results on 1 and 5 threads");
    free(results[0]);
    free(results[1]);

    /* dry run: shapes only, u and v untouched, and the real step then fits in the reserved arena */
    ParamSet ps;
    paramset_init(&ps);
    Tensor *pw = param_new(&ps, "w", 1, DIMS(32)), *pb = param_new(&ps, "b", 1, DIMS(32));
    Tensor *rm = buffer_new(&ps, "rm", DT_REAL, 1, DIMS(32)), *rv = buffer_new(&ps, "rv", DT_REAL, 1, DIMS(32));
    Tensor *nbt = buffer_new(&ps, "nbt", DT_I64, 0, NULL);
    Tensor *wo = param_new(&ps, "weight_orig", 4, DIMS(70, 33, 3, 3));
    paramset_alloc(&ps);
    tensor_copy_data(wo, w);
    tensor_fill(pw, 1);
    tensor_fill(rv, 1);
    Tensor *ub = tensor_alloc(1, DIMS(70));
    tensor_copy_data(ub, u);
    Ctx c;
    ctx_init(&c);
    size_t cap = 0;
    for (int dry = 1; dry >= 0; dry--) {
        c.dry = dry;
        Tensor *y = t_group_norm(&c, x, 8, (real)1e-5, pw, pb);
        y = t_group_norm_jvp(&c, y, t, 4, (real)1e-5, pw);
        y = t_batch_norm(&c, y, pw, pb, rm, rv, nbt, (real)1e-5, (real)0.1);
        y = t_actnorm(&c, y, pw, pb);
        y = t_actnorm_inverse(&c, y, pw, pb);
        y = t_instance_norm(&c, y, (real)1e-5);
        Tensor *a = t_spectral_norm(&c, wo, u, v), *bw = t_spectral_norm_biggan(&c, wo, ub);
        check(y->ndim == 5 && shape_equal(y, x) && shape_equal(a, wo) && shape_equal(bw, wo),
              "norm ops keep shapes (dry %d)", dry);
        Tensor *L = t_add(&c, t_add(&c, t_sum_all(&c, t_square(&c, y)), t_sum_all(&c, t_square(&c, a))),
                          t_sum_all(&c, t_square(&c, bw)));
        backward(&c, L);
        if (dry) {
            check(y->data == NULL && ((int64_t *)nbt->ibuf)[0] == 0 && rv->data[0] == 1,
                  "a dry run computes and updates nothing");
            ctx_dry_finish(&c);
            cap = c.arena.capacity;
        } else {
            check(c.arena.capacity == cap && ((int64_t *)nbt->ibuf)[0] == 1,
                  "the real step fits in what the dry run reserved (%zu vs %zu bytes)", c.arena.capacity, cap);
            ctx_reset(&c);
        }
    }
    ctx_free(&c);
    paramset_free(&ps);
    tensor_free(ub);
    tensor_free(x);
    tensor_free(t);
    tensor_free(gw);
    tensor_free(gb);
    tensor_free(w);
    tensor_free(u);
    tensor_free(v);
}

int main(void) {
    rng_seed(&rng, 20210601);
    double t0 = now_seconds();
    test_group_norm();
    test_group_norm_large();
    test_group_norm_jvp();
    test_actnorm();
    test_batch_norm();
    test_spectral_norm();
    test_spectral_norm_sigma();
    test_spectral_norm_biggan();
    test_norm_modulate_lrelu();
    test_threads_and_dry_run();
    printf("test_norm: %.2f s\n", now_seconds() - t0);
    return check_summary("test_norm");
}
