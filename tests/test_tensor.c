/* test_tensor.c: the core of the tensor library: random numbers, arena, tape semantics, every op of
 * tensor.c against hand-computed values and central finite differences, the gradient penalty design,
 * dry runs and the arena's steady state. */
#include "gradcheck.h"
#include "tensor.h"

static Rng rng;

static Tensor *rand_tensor(int ndim, const int *shape, double lo, double hi) {
    Tensor *t = tensor_alloc(ndim, shape);
    tensor_fill_uniform(t, &rng, lo, hi);
    return t;
}

/* ---- random numbers ------------------------------------------------------------------------------- */
static void test_rng(void) {
    Rng a, b;
    rng_seed(&a, 42);
    rng_seed(&b, 42);
    int same = 1;
    for (int i = 0; i < 1000; i++) same &= rng_u64(&a) == rng_u64(&b);
    check(same, "same seed gives the same stream");
    rng_seed(&b, 43);
    check(rng_u64(&a) != rng_u64(&b), "different seeds differ");
    /* moments of 200k normals: standard errors are 0.0022 (mean) and 0.0032 (variance); allow 5 sigma */
    double s = 0, s2 = 0;
    int n = 200000;
    for (int i = 0; i < n; i++) {
        double x = rng_normal(&a);
        s += x;
        s2 += x * x;
    }
    double mean = s / n, var = s2 / n - mean * mean;
    check_close(mean, 0, 0.011, 0, "normal mean");
    check_close(var, 1, 0.016, 0, "normal variance");
    double u = 0;
    for (int i = 0; i < n; i++) u += rng_uniform(&a);
    check_close(u / n, 0.5, 0.0033, 0, "uniform mean (5 sigma)");
    int ones = 0;
    for (int i = 0; i < n; i++) ones += rng_bernoulli(&a, 0.3);
    check_close((double)ones / n, 0.3, 0.0052, 0, "bernoulli(0.3) frequency (5 sigma)");
    int64_t perm[64];
    int seen[64] = {0}, ok = 1, moved = 0;
    rng_permutation(&a, 64, perm);
    for (int i = 0; i < 64; i++) {
        if (perm[i] < 0 || perm[i] >= 64 || seen[perm[i]]) ok = 0;
        else seen[perm[i]] = 1;
        moved += perm[i] != i;
    }
    check(ok && moved > 32, "permutation is a shuffled permutation (%d moved)", moved);
    int counts[5] = {0};
    for (int i = 0; i < 50000; i++) counts[rng_below(&a, 5)]++;
    int fair = 1;
    for (int i = 0; i < 5; i++) fair &= abs(counts[i] - 10000) < 5 * 89.4;  /* sd = sqrt(50000*.2*.8) */
    check(fair, "rng_below(5) is uniform");
}

/* ---- arena ---------------------------------------------------------------------------------------- */
static void test_arena(void) {
    Arena a;
    arena_init(&a, 1000);
    void *p1 = arena_alloc(&a, 3), *p2 = arena_alloc(&a, 100);
    check(((uintptr_t)p1 % 64) == 0 && ((uintptr_t)p2 % 64) == 0, "arena allocations are 64-byte aligned");
    check((char *)p2 >= (char *)p1 + 64, "allocations do not overlap");
    void *big = arena_alloc(&a, 5 << 20);
    memset(big, 1, 5 << 20);
    size_t cap = a.capacity;
    arena_reset(&a);
    check(a.used == 0, "reset empties the arena");
    void *q1 = arena_alloc(&a, 3);
    check(q1 == p1, "after a reset the same memory is handed out again");
    arena_alloc(&a, 100);
    arena_alloc(&a, 5 << 20);
    check(a.capacity == cap, "a repeated pattern allocates no new chunk");
    arena_free(&a);
}

/* ---- exact values --------------------------------------------------------------------------------- */
static Tensor *from_values(Ctx *c, int ndim, const int *shape, const double *v) {
    Tensor *t = tensor_new(c, ndim, shape);
    for (size_t i = 0; i < t->numel; i++) t->data[i] = (real)v[i];
    return t;
}

static int values_equal(const Tensor *t, const double *v, double tol) {
    for (size_t i = 0; i < t->numel; i++)
        if (!close_enough(t->data[i], v[i], tol, tol)) return 0;
    return 1;
}

static void test_values(void) {
    Ctx c;
    ctx_init(&c);
    Tensor *a = from_values(&c, 2, DIMS(2, 3), (double[]){1, 2, 3, 4, 5, 6});
    Tensor *row = from_values(&c, 1, DIMS(3), (double[]){10, 20, 30});
    Tensor *col = from_values(&c, 2, DIMS(2, 1), (double[]){100, 200});
    check(values_equal(t_add(&c, a, row), (double[]){11, 22, 33, 14, 25, 36}, 1e-6), "add broadcasts a row");
    check(values_equal(t_mul(&c, a, col), (double[]){100, 200, 300, 800, 1000, 1200}, 1e-6),
          "mul broadcasts a column");
    Tensor *outer = t_sub(&c, col, row);
    check(outer->ndim == 2 && outer->shape[0] == 2 && outer->shape[1] == 3 &&
              values_equal(outer, (double[]){90, 80, 70, 190, 180, 170}, 1e-6),
          "sub of (2,1) and (3) broadcasts to (2,3)");
    check(values_equal(t_div(&c, a, row), (double[]){0.1, 0.1, 0.1, 0.4, 0.25, 0.2}, 1e-6), "div");
    Tensor *s0 = t_sum(&c, a, 1u, 0), *s1 = t_sum(&c, a, 2u, 1);
    check(s0->ndim == 1 && s0->shape[0] == 3 && values_equal(s0, (double[]){5, 7, 9}, 1e-6), "sum over axis 0");
    check(s1->ndim == 2 && s1->shape[1] == 1 && values_equal(s1, (double[]){6, 15}, 1e-6), "sum over axis 1 keepdim");
    check(values_equal(t_mean_all(&c, a), (double[]){3.5}, 1e-6) && t_mean_all(&c, a)->ndim == 0, "mean of all");
    Tensor *p = t_transpose(&c, a, 0, 1);
    check(p->shape[0] == 3 && values_equal(p, (double[]){1, 4, 2, 5, 3, 6}, 0), "transpose");
    Tensor *x3 = from_values(&c, 3, DIMS(2, 2, 2), (double[]){0, 1, 2, 3, 4, 5, 6, 7});
    Tensor *p3 = t_permute(&c, x3, (int[]){2, 0, 1});
    check(values_equal(p3, (double[]){0, 2, 4, 6, 1, 3, 5, 7}, 0), "permute (2,0,1)");
    Tensor *cat = t_concat(&c, 2, (Tensor *[]){a, col}, 1);
    check(cat->shape[1] == 4 && values_equal(cat, (double[]){1, 2, 3, 100, 4, 5, 6, 200}, 0), "concat on axis 1");
    check(values_equal(t_slice(&c, a, 1, 1, 2), (double[]){2, 3, 5, 6}, 0), "slice");
    check(values_equal(t_index_select(&c, a, 1, 3, (int64_t[]){2, 0, 2}), (double[]){3, 1, 3, 6, 4, 6}, 0),
          "index_select with repeats");
    Tensor *sm = t_softmax(&c, from_values(&c, 1, DIMS(3), (double[]){0, log(2.0), log(5.0)}), 0);
    check(values_equal(sm, (double[]){0.125, 0.25, 0.625}, 1e-6), "softmax");
    Tensor *w = from_values(&c, 2, DIMS(2, 3), (double[]){1, 0, -1, 2, 1, 0});
    Tensor *b = from_values(&c, 1, DIMS(2), (double[]){0.5, -0.5});
    check(values_equal(t_linear(&c, a, w, b), (double[]){-1.5, 3.5, -1.5, 12.5}, 1e-6), "linear");
    check(values_equal(t_linear(&c, a, w, NULL), (double[]){-2, 4, -2, 13}, 1e-6), "linear without bias");
    Tensor *bm = t_bmm(&c, t_reshape(&c, a, 3, DIMS(1, 2, 3)), t_reshape(&c, w, 3, DIMS(1, 2, 3)), 0, 1);
    check(values_equal(bm, (double[]){-2, 4, -2, 13}, 1e-6), "bmm with b transposed");
    Tensor *r = from_values(&c, 1, DIMS(4), (double[]){-2, -0.5, 0.5, 2});
    check(values_equal(t_relu(&c, r), (double[]){0, 0, 0.5, 2}, 0), "relu");
    check(values_equal(t_leaky_relu(&c, r, 0.2), (double[]){-0.4, -0.1, 0.5, 2}, 1e-7), "leaky relu");
    check(values_equal(t_clamp(&c, r, -1, 1), (double[]){-1, -0.5, 0.5, 1}, 0), "clamp");
    check(values_equal(t_abs(&c, r), (double[]){2, 0.5, 0.5, 2}, 0), "abs");
    Tensor *z = from_values(&c, 1, DIMS(4), (double[]){0, 0, 0, 0});
    check(values_equal(t_l1_loss(&c, r, z), (double[]){1.25}, 1e-7), "l1 loss");
    check(values_equal(t_mse_loss(&c, r, z), (double[]){2.125}, 1e-7), "mse loss");
    check(values_equal(t_hinge_d_real(&c, r), (double[]){(3 + 1.5 + 0.5 + 0) / 4.0}, 1e-7), "hinge D real");
    check(values_equal(t_hinge_d_fake(&c, r), (double[]){(0 + 0.5 + 1.5 + 3) / 4.0}, 1e-7), "hinge D fake");
    check(values_equal(t_hinge_g(&c, r), (double[]){0}, 1e-7), "hinge G");
    /* KL of N(1, e^0) and N(0, e^{log 2}) per feature, batch of 1: 0.5 (1 + 0 - 1 - 1) ... by formula */
    Tensor *mu = from_values(&c, 2, DIMS(1, 2), (double[]){1, 0});
    Tensor *lv = from_values(&c, 2, DIMS(1, 2), (double[]){0, log(2.0)});
    double kl = -0.5 * ((1 + 0 - 1 - 1) + (1 + log(2.0) - 0 - 2));
    check(values_equal(t_kl_normal(&c, mu, lv), (double[]){kl}, 1e-6), "KL to N(0, I)");
    Tensor *nl = t_gaussian_nll(&c, from_values(&c, 2, DIMS(2, 2), (double[]){1, 2, 3, 0}));
    check(nl->shape[0] == 2 && values_equal(nl, (double[]){2.5, 4.5}, 1e-7), "gaussian nll per sample");
    Rng r1;
    rng_seed(&r1, 5);
    Tensor *ones = tensor_new(&c, 1, DIMS(10000));
    tensor_fill(ones, 1);
    Tensor *d = t_dropout(&c, ones, 0.25, &r1);
    int zeros = 0, scaled = 1;
    for (size_t i = 0; i < d->numel; i++) {
        if (d->data[i] == 0) zeros++;
        else scaled &= fabs(d->data[i] - 1 / 0.75) < 1e-6;
    }
    check(scaled && abs(zeros - 2500) < 5 * 43, "dropout zeroes p of the elements and scales the rest (%d)", zeros);
    c.training = 0;
    check(t_dropout(&c, ones, 0.25, &r1) == ones, "dropout is the identity in eval mode");
    ctx_free(&c);
}

/* ---- finite-difference checks of every op ---------------------------------------------------------- */
typedef struct OpCase {
    int kind;
    real p0, p1;
    unsigned axes;
    int keepdim;
} OpCase;

enum {
    K_ADD, K_SUB, K_MUL, K_DIV, K_RELU, K_LEAKY, K_TANH, K_SIGMOID, K_EXP, K_LOG, K_ABS, K_SQRT, K_SQUARE,
    K_CLAMP, K_SCALE, K_ADDS, K_SUM, K_MEAN, K_SOFTMAX, K_PERMUTE, K_CONCAT, K_SLICE, K_INDEX, K_RESHAPE,
    K_LINEAR, K_LINEAR_NOBIAS, K_BMM00, K_BMM01, K_BMM10, K_BMM11, K_L1, K_MSE, K_HREAL, K_HFAKE, K_HG, K_KL,
    K_NLL, K_SPLIT, K_TANH_JVP, K_LEAKY_JVP, K_SIGMOID_JVP
};

static Tensor *op_case(Ctx *c, Tensor **in, void *user) {
    OpCase *oc = user;
    switch (oc->kind) {
    case K_ADD: return t_add(c, in[0], in[1]);
    case K_SUB: return t_sub(c, in[0], in[1]);
    case K_MUL: return t_mul(c, in[0], in[1]);
    case K_DIV: return t_div(c, in[0], in[1]);
    case K_RELU: return t_relu(c, in[0]);
    case K_LEAKY: return t_leaky_relu(c, in[0], oc->p0);
    case K_TANH: return t_tanh(c, in[0]);
    case K_SIGMOID: return t_sigmoid(c, in[0]);
    case K_EXP: return t_exp(c, in[0]);
    case K_LOG: return t_log(c, in[0]);
    case K_ABS: return t_abs(c, in[0]);
    case K_SQRT: return t_sqrt(c, in[0]);
    case K_SQUARE: return t_square(c, in[0]);
    case K_CLAMP: return t_clamp(c, in[0], oc->p0, oc->p1);
    case K_SCALE: return t_scale(c, in[0], oc->p0);
    case K_ADDS: return t_add_scalar(c, in[0], oc->p0);
    case K_SUM: return t_sum(c, in[0], oc->axes, oc->keepdim);
    case K_MEAN: return t_mean(c, in[0], oc->axes, oc->keepdim);
    case K_SOFTMAX: return t_softmax(c, in[0], (int)oc->axes);
    case K_PERMUTE: return t_permute(c, in[0], (int[]){3, 1, 0, 2});
    case K_CONCAT: return t_concat(c, 3, (Tensor *[]){in[0], in[1], in[0]}, 1);
    case K_SLICE: return t_slice(c, in[0], 2, 1, 2);
    case K_INDEX: return t_index_select(c, in[0], 1, 5, (int64_t[]){3, 0, 3, 2, 1});
    case K_RESHAPE: return t_reshape(c, in[0], 2, DIMS(-1, 6));
    case K_LINEAR: return t_linear(c, in[0], in[1], in[2]);
    case K_LINEAR_NOBIAS: return t_linear(c, in[0], in[1], NULL);
    case K_BMM00: return t_bmm(c, in[0], in[1], 0, 0);
    case K_BMM01: return t_bmm(c, in[0], in[1], 0, 1);
    case K_BMM10: return t_bmm(c, in[0], in[1], 1, 0);
    case K_BMM11: return t_bmm(c, in[0], in[1], 1, 1);
    case K_L1: return t_l1_loss(c, in[0], in[1]);
    case K_MSE: return t_mse_loss(c, in[0], in[1]);
    case K_HREAL: return t_hinge_d_real(c, in[0]);
    case K_HFAKE: return t_hinge_d_fake(c, in[0]);
    case K_HG: return t_hinge_g(c, in[0]);
    case K_KL: return t_kl_normal(c, in[0], in[1]);
    case K_NLL: return t_gaussian_nll(c, in[0]);
    case K_SPLIT: {
        Tensor *parts[3];
        t_split(c, in[0], 1, 3, (int[]){1, 2, 1}, parts);
        return t_add(c, t_mul(c, parts[0], parts[2]), t_sum(c, parts[1], 2u, 1));
    }
    case K_TANH_JVP: return t_tanh_jvp(c, in[0], in[1]);
    case K_LEAKY_JVP: return t_leaky_relu_jvp(c, in[0], in[1], 0.2);
    case K_SIGMOID_JVP: return t_sigmoid_jvp(c, in[0], in[1]);
    }
    return NULL;
}

static void gc(const char *name, int kind, int n, Tensor **in, real p0, real p1, unsigned axes, int keepdim) {
    OpCase oc = {kind, p0, p1, axes, keepdim};
    gradcheck(name, op_case, n, in, &oc, 0);
}

static void test_gradients(void) {
    if (!is_double_build()) return;
    const int *s235 = DIMS(2, 3, 5);
    Tensor *a = rand_tensor(3, s235, -1, 1), *b = rand_tensor(3, s235, -1, 1);
    Tensor *bc = rand_tensor(3, DIMS(1, 3, 1), 0.5, 1.5);  /* broadcast over axes 0 and 2 */
    Tensor *row = rand_tensor(1, DIMS(5), 0.5, 1.5);       /* a missing leading axis */
    Tensor *pos = rand_tensor(3, s235, 0.2, 2);
    gc("add", K_ADD, 2, (Tensor *[]){a, b}, 0, 0, 0, 0);
    gc("add broadcast (1,3,1)", K_ADD, 2, (Tensor *[]){a, bc}, 0, 0, 0, 0);
    gc("sub broadcast (5)", K_SUB, 2, (Tensor *[]){row, a}, 0, 0, 0, 0);
    gc("mul broadcast (1,3,1)", K_MUL, 2, (Tensor *[]){bc, a}, 0, 0, 0, 0);
    gc("mul same tensor twice", K_MUL, 2, (Tensor *[]){a, a}, 0, 0, 0, 0);
    gc("div broadcast (5)", K_DIV, 2, (Tensor *[]){a, row}, 0, 0, 0, 0);
    gc("div", K_DIV, 2, (Tensor *[]){a, pos}, 0, 0, 0, 0);
    gc("relu", K_RELU, 1, &a, 0, 0, 0, 0);
    gc("leaky relu 0.2", K_LEAKY, 1, &a, 0.2, 0, 0, 0);
    gc("leaky relu 0.9", K_LEAKY, 1, &a, 0.9, 0, 0, 0);
    gc("tanh", K_TANH, 1, &a, 0, 0, 0, 0);
    gc("sigmoid", K_SIGMOID, 1, &a, 0, 0, 0, 0);
    gc("exp", K_EXP, 1, &a, 0, 0, 0, 0);
    gc("log", K_LOG, 1, &pos, 0, 0, 0, 0);
    gc("abs", K_ABS, 1, &a, 0, 0, 0, 0);
    gc("sqrt", K_SQRT, 1, &pos, 0, 0, 0, 0);
    gc("square", K_SQUARE, 1, &a, 0, 0, 0, 0);
    gc("clamp", K_CLAMP, 1, &a, -0.5, 0.5, 0, 0);
    gc("scale", K_SCALE, 1, &a, -2.5, 0, 0, 0);
    gc("add scalar", K_ADDS, 1, &a, 3, 0, 0, 0);
    gc("sum all", K_SUM, 1, &a, 0, 0, AXES_ALL, 0);
    gc("sum axis 1 keepdim", K_SUM, 1, &a, 0, 0, 2u, 1);
    gc("sum axes 0,2", K_SUM, 1, &a, 0, 0, 5u, 0);
    gc("mean per sample", K_MEAN, 1, &a, 0, 0, AXES_PER_SAMPLE, 0);
    gc("mean axis 2 keepdim", K_MEAN, 1, &a, 0, 0, 4u, 1);
    gc("softmax axis 1", K_SOFTMAX, 1, &a, 0, 0, 1, 0);
    gc("softmax axis 2", K_SOFTMAX, 1, &a, 0, 0, 2, 0);
    Tensor *a4 = rand_tensor(4, DIMS(2, 3, 4, 3), -1, 1);
    gc("permute (3,1,0,2)", K_PERMUTE, 1, &a4, 0, 0, 0, 0);
    Tensor *c2 = rand_tensor(3, DIMS(2, 2, 5), -1, 1);
    gc("concat a,b,a (a used twice)", K_CONCAT, 2, (Tensor *[]){a, c2}, 0, 0, 0, 0);
    gc("slice", K_SLICE, 1, &a, 0, 0, 0, 0);
    Tensor *a45 = rand_tensor(3, DIMS(2, 4, 3), -1, 1);
    gc("index_select with repeats", K_INDEX, 1, &a45, 0, 0, 0, 0);
    gc("reshape", K_RESHAPE, 1, &a45, 0, 0, 0, 0);
    gc("split", K_SPLIT, 1, &a45, 0, 0, 0, 0);
    Tensor *x = rand_tensor(3, DIMS(2, 3, 7), -1, 1), *w = rand_tensor(2, DIMS(5, 7), -1, 1);
    Tensor *bias = rand_tensor(1, DIMS(5), -1, 1);
    gc("linear (2,3,7)x(5,7)", K_LINEAR, 3, (Tensor *[]){x, w, bias}, 0, 0, 0, 0);
    gc("linear without bias", K_LINEAR_NOBIAS, 2, (Tensor *[]){x, w}, 0, 0, 0, 0);
    Tensor *m34 = rand_tensor(3, DIMS(2, 3, 4), -1, 1), *m43 = rand_tensor(3, DIMS(2, 4, 3), -1, 1);
    Tensor *m45 = rand_tensor(3, DIMS(2, 4, 5), -1, 1), *m54 = rand_tensor(3, DIMS(2, 5, 4), -1, 1);
    gc("bmm", K_BMM00, 2, (Tensor *[]){m34, m45}, 0, 0, 0, 0);
    gc("bmm b^T", K_BMM01, 2, (Tensor *[]){m34, m54}, 0, 0, 0, 0);
    gc("bmm a^T", K_BMM10, 2, (Tensor *[]){m43, m45}, 0, 0, 0, 0);
    gc("bmm a^T b^T", K_BMM11, 2, (Tensor *[]){m43, m54}, 0, 0, 0, 0);
    Tensor *logits = rand_tensor(2, DIMS(3, 4), -2, 2);
    gc("l1 loss", K_L1, 2, (Tensor *[]){a, b}, 0, 0, 0, 0);
    gc("mse loss", K_MSE, 2, (Tensor *[]){a, b}, 0, 0, 0, 0);
    gc("hinge D real", K_HREAL, 1, &logits, 0, 0, 0, 0);
    gc("hinge D fake", K_HFAKE, 1, &logits, 0, 0, 0, 0);
    gc("hinge G", K_HG, 1, &logits, 0, 0, 0, 0);
    Tensor *mu = rand_tensor(2, DIMS(3, 5), -1, 1), *lv = rand_tensor(2, DIMS(3, 5), -1, 1);
    gc("KL", K_KL, 2, (Tensor *[]){mu, lv}, 0, 0, 0, 0);
    gc("gaussian nll", K_NLL, 1, &a, 0, 0, 0, 0);
    gc("tanh tangent", K_TANH_JVP, 2, (Tensor *[]){a, b}, 0, 0, 0, 0);
    gc("leaky relu tangent", K_LEAKY_JVP, 2, (Tensor *[]){a, b}, 0, 0, 0, 0);
    gc("sigmoid tangent", K_SIGMOID_JVP, 2, (Tensor *[]){a, b}, 0, 0, 0, 0);
    Tensor *all[] = {a, b, bc, row, pos, a4, c2, a45, x, w, bias, m34, m43, m45, m54, logits, mu, lv};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) tensor_free(all[i]);
}

/* A weight gradient written by a GEMM with beta 0 (grad_buf_beta) after zero_grad: the first op to take
 * it in a pass (the linear, last on the tape) overwrites whatever the buffer held, the next (a bmm on the
 * same weight) adds, and a pass without zero_grad adds to the previous one. */
static void test_lazy_zero_grad(void) {
    ParamSet ps;
    paramset_init(&ps);
    Tensor *w = param_new(&ps, "w", 2, DIMS(2, 3));
    paramset_alloc(&ps);
    for (int i = 0; i < 6; i++) w->data[i] = (real)(0.25 * i - 0.5);
    real xs[12], vs[8];
    for (int i = 0; i < 12; i++) xs[i] = (real)(0.1 * i - 0.3);
    for (int i = 0; i < 8; i++) vs[i] = (real)(0.2 * i - 0.7);
    /* L = sum(v W) + sum(x W^T): dL/dW_jk = sum_n v_nj + sum_n x_nk */
    double want[6];
    for (int j = 0; j < 2; j++)
        for (int k = 0; k < 3; k++) {
            want[j * 3 + k] = 0;
            for (int n = 0; n < 4; n++) want[j * 3 + k] += vs[n * 2 + j] + xs[n * 3 + k];
        }
    Ctx c;
    ctx_init(&c);
    for (int pass = 0; pass < 3; pass++) {
        if (pass != 1) {
            for (int i = 0; i < 6; i++) w->grad[i] = 1e6;   /* stale values the GEMM must not add to */
            paramset_zero_grad(&ps);
        }
        Tensor *x = tensor_new(&c, 2, DIMS(4, 3)), *v = tensor_new(&c, 3, DIMS(1, 4, 2));
        memcpy(x->data, xs, sizeof xs);
        memcpy(v->data, vs, sizeof vs);
        Tensor *first = t_sum_all(&c, t_bmm(&c, v, t_reshape(&c, w, 3, DIMS(1, 2, 3)), 0, 0));
        Tensor *L = t_add(&c, first, t_sum_all(&c, t_linear(&c, x, w, NULL)));
        backward(&c, L);
        int ok = !w->grad_zero;
        double times = pass == 1 ? 2 : 1;   /* pass 1 did not zero: it adds to pass 0 */
        for (int i = 0; i < 6; i++) ok &= close_enough(w->grad[i], times * want[i], 1e-5, 1e-5);
        check(ok, "pass %d: the weight gradient is %g x the analytic one (first use overwrites, then adds)", pass,
              times);
        ctx_reset(&c);
    }
    ctx_free(&c);
    paramset_free(&ps);
}

/* ---- tape semantics -------------------------------------------------------------------------------- */
static void test_tape(void) {
    ParamSet ps;
    paramset_init(&ps);
    Tensor *w = param_new(&ps, "w", 1, DIMS(3));
    Tensor *u = param_new(&ps, "u", 1, DIMS(3));
    paramset_alloc(&ps);
    for (int i = 0; i < 3; i++) {
        w->data[i] = (real)(i + 1);     /* 1 2 3 */
        u->data[i] = (real)(0.5 * i);   /* 0 .5 1 */
    }
    Ctx c;
    ctx_init(&c);
    /* L = sum(w * w) + sum(w * u) + sum(tanh(w) * u): w used by three ops, two branches join */
    Tensor *l1 = t_sum_all(&c, t_mul(&c, w, w));
    Tensor *l2 = t_sum_all(&c, t_mul(&c, w, u));
    Tensor *l3 = t_sum_all(&c, t_mul(&c, t_tanh(&c, w), u));
    Tensor *L = t_add(&c, t_add(&c, l1, l2), l3);
    backward(&c, L);
    int ok = 1;
    for (int i = 0; i < 3; i++) {
        double wi = i + 1, ui = 0.5 * i, t = tanh(wi);
        ok &= close_enough(w->grad[i], 2 * wi + ui + (1 - t * t) * ui, 1e-6, 1e-6);
        ok &= close_enough(u->grad[i], wi + t, 1e-6, 1e-6);
    }
    check(ok, "a DAG with a tensor used three times and joining branches gets the summed gradients");
    backward(&c, L);
    ok = 1;
    for (int i = 0; i < 3; i++) ok &= close_enough(u->grad[i], 2 * ((i + 1) + tanh(i + 1.0)), 1e-6, 1e-6);
    check(ok, "a second backward over the same forward accumulates again");
    real saved[3];
    memcpy(saved, u->grad, sizeof saved);
    Tensor *g;
    grad_of(&c, L, 1, &w, &g);
    ok = !memcmp(saved, u->grad, sizeof saved);
    for (int i = 0; i < 3; i++) {
        double wi = i + 1, ui = 0.5 * i, t = tanh(wi);
        ok &= close_enough(g->data[i], 2 * wi + ui + (1 - t * t) * ui, 1e-6, 1e-6);
    }
    check(ok, "grad_of returns d L / d w and leaves every .grad untouched");
    grad_of(&c, l3, 1, &u, &g);
    ok = 1;
    for (int i = 0; i < 3; i++) ok &= close_enough(g->data[i], tanh(i + 1.0), 1e-6, 1e-6);
    check(ok, "grad_of of an intermediate scalar");
    /* gradient with respect to an activation */
    Tensor *h = t_tanh(&c, w);
    Tensor *L2 = t_sum_all(&c, t_mul(&c, h, h));
    grad_of(&c, L2, 1, &h, &g);
    ok = 1;
    for (int i = 0; i < 3; i++) ok &= close_enough(g->data[i], 2 * tanh(i + 1.0), 1e-6, 1e-6);
    check(ok, "grad_of with respect to an activation");
    paramset_zero_grad(&ps);
    check(w->grad_zero && u->grad_zero && param_grad(w)[0] == 0 && param_grad(u)[2] == 0,
          "zero_grad marks the parameter set, and param_grad reads zeros");
    paramset_zero_grad(&ps);
    /* detach: no gradient flows through */
    Tensor *L3 = t_sum_all(&c, t_mul(&c, t_detach(&c, w), u));
    backward(&c, L3);
    check(w->grad_zero && param_grad(w)[1] == 0 && !u->grad_zero && close_enough(u->grad[1], 2, 1e-7, 0),
          "detach stops the gradient (w's stays unwritten and reads zero)");
    /* a marked input gets its gradient */
    ctx_reset(&c);
    Tensor *x = tensor_new(&c, 1, DIMS(3));
    tensor_fill(x, 2);
    x->requires_grad = 1;
    backward(&c, t_sum_all(&c, t_mul(&c, x, w)));
    check(x->grad && x->grad_pass == c.pass && x->grad[2] == w->data[2], "an input marked requires_grad gets x->grad");
    /* no-grad mode records nothing */
    ctx_reset(&c);
    c.grad_enabled = 0;
    Tensor *y = t_tanh(&c, t_mul(&c, w, u));
    check(c.ntape == 0 && !y->requires_grad, "no-grad mode records no tape nodes");
    c.grad_enabled = 1;
    ctx_free(&c);
    paramset_free(&ps);
}

/* ---- parameter sets --------------------------------------------------------------------------------- */
static void test_paramset(void) {
    ParamSet ps;
    paramset_init(&ps);
    Tensor *a = param_new(&ps, "layer.0.weight", 2, DIMS(4, 3));
    Tensor *f = buffer_new(&ps, "layer.0.initialized", DT_U8, 0, NULL);
    Tensor *p = buffer_new(&ps, "shuffle.forward_shuffle_idx", DT_I64, 1, DIMS(7));
    Tensor *b = param_new(&ps, "layer.0.bias", 1, DIMS(3));
    paramset_alloc(&ps);
    check(paramset_count(&ps) == 15, "parameter count excludes buffers (%zu)", paramset_count(&ps));
    check(paramset_find(&ps, "layer.0.bias") == b && paramset_find(&ps, "nope") == NULL, "find by name");
    check(f->numel == 1 && f->ndim == 0 && f->ibuf && !f->requires_grad, "0-D U8 buffer");
    check(p->ibuf && ((int64_t *)p->ibuf)[6] == 0 && !p->is_param, "I64 buffer");
    check(((uintptr_t)a->data % 64) == 0 && ((uintptr_t)b->data % 64) == 0, "parameters are 64-byte aligned");
    check(b->data >= a->data + 12 && b->grad != a->grad, "parameters do not overlap");
    paramset_free(&ps);
}

/* ---- gradient penalty: forward-over-reverse vs finite differences of the penalty ---------------------- */
/* D(x) = w3 . tanh(W2 lrelu(W1 x + b1) + b2), a tiny discriminator on x (B, 4). The penalty as the
 * official code computes it: g = d/dx mean_b D(x_b), P = mean_b sum_d g^2. */
typedef struct Disc {
    Tensor *w1, *b1, *w2, *b2, *w3;
} Disc;

static Tensor *disc_forward(Ctx *c, Disc *d, Tensor *x) {
    Tensor *h = t_leaky_relu(c, t_linear(c, x, d->w1, d->b1), 0.2);
    h = t_tanh(c, t_linear(c, h, d->w2, d->b2));
    return t_linear(c, h, d->w3, NULL);   /* (B, 1) */
}

/* The tangent of D at x along v: every layer applied to (h, dh) pairs. */
static Tensor *disc_tangent(Ctx *c, Disc *d, Tensor *x, Tensor *v) {
    Tensor *a1 = t_linear(c, x, d->w1, d->b1), *da1 = t_linear(c, v, d->w1, NULL);
    Tensor *h1 = t_leaky_relu(c, a1, 0.2), *dh1 = t_leaky_relu_jvp(c, a1, da1, 0.2);
    Tensor *a2 = t_linear(c, h1, d->w2, d->b2), *da2 = t_linear(c, dh1, d->w2, NULL);
    Tensor *dh2 = t_tanh_jvp(c, a2, da2);
    return t_linear(c, dh2, d->w3, NULL);  /* (B, 1): J_x D(x_b) . v_b */
}

static double penalty_value(Disc *d, Tensor *xin) {
    Ctx c;
    ctx_init(&c);
    Tensor *x = tensor_new(&c, 2, xin->shape);
    memcpy(x->data, xin->data, x->numel * sizeof(real));
    x->requires_grad = 1;
    Tensor *g;
    grad_of(&c, t_mean_all(&c, disc_forward(&c, d, x)), 1, &x, &g);
    double p = 0;
    for (size_t i = 0; i < g->numel; i++) p += (double)g->data[i] * g->data[i];
    p /= x->shape[0];
    ctx_free(&c);
    return p;
}

static void test_gradient_penalty(void) {
    if (!is_double_build()) return;
    ParamSet ps;
    paramset_init(&ps);
    Disc d = {param_new(&ps, "w1", 2, DIMS(6, 4)), param_new(&ps, "b1", 1, DIMS(6)),
              param_new(&ps, "w2", 2, DIMS(5, 6)), param_new(&ps, "b2", 1, DIMS(5)),
              param_new(&ps, "w3", 2, DIMS(1, 5))};
    paramset_alloc(&ps);
    for (int i = 0; i < ps.n; i++) tensor_fill_uniform(ps.t[i], &rng, -1, 1);
    int B = 3;
    Tensor *xin = rand_tensor(2, DIMS(B, 4), -1, 1);
    /* analytic: (1) g = grad of mean D w.r.t. x, (2) tangent along v = g (constant), (3) backward */
    Ctx c;
    ctx_init(&c);
    Tensor *x = tensor_new(&c, 2, xin->shape);
    memcpy(x->data, xin->data, x->numel * sizeof(real));
    x->requires_grad = 1;
    Tensor *g;
    grad_of(&c, t_mean_all(&c, disc_forward(&c, &d, x)), 1, &x, &g);
    Tensor *v = t_detach(&c, g);
    Tensor *h = disc_tangent(&c, &d, x, v);   /* (B, 1) */
    /* d/dB of mean_b D has a 1/B per sample already inside g; the tangent of mean_b D along v is
     * mean_b h_b, and P = (1/B) sum |g|^2 -> dP/dtheta = (2/B) d/dtheta (mean_b h_b). */
    Tensor *obj = t_scale(&c, t_mean_all(&c, h), (real)(2.0 / B));
    paramset_zero_grad(&ps);
    backward(&c, obj);
    /* the tangent's value equals |g|^2 summed over the batch (J v with v = g) */
    double hv = 0, gg = 0;
    for (int b = 0; b < B; b++) hv += h->data[b] / B;
    for (size_t i = 0; i < g->numel; i++) gg += (double)g->data[i] * g->data[i];
    check_close(hv, gg, 1e-12, 1e-9, "tangent along g equals |g|^2");
    int ok = 1;
    for (int i = 0; i < ps.n && ok; i++) {
        Tensor *p = ps.t[i];
        for (size_t j = 0; j < p->numel; j++) {
            real s = p->data[j];
            p->data[j] = s + 1e-6;
            double pp = penalty_value(&d, xin);
            p->data[j] = s - 1e-6;
            double pm = penalty_value(&d, xin);
            p->data[j] = s;
            double num = (pp - pm) / 2e-6;
            if (!close_enough(p->grad[j], num, 1e-7, 1e-5)) {
                check(0, "penalty gradient %s[%zu]: analytic %.10g numeric %.10g", p->name, j, p->grad[j], num);
                ok = 0;
                break;
            }
        }
    }
    if (ok) check(1, "gradient penalty's parameter gradient matches finite differences of the penalty");
    ctx_free(&c);
    tensor_free(xin);
    paramset_free(&ps);
}

/* ---- dry run and the arena's steady state ------------------------------------------------------------- */
typedef struct Mlp {
    ParamSet ps;
    Tensor *w1, *b1, *w2, *b2;
} Mlp;

static Tensor *mlp_step(Ctx *c, Mlp *m, Tensor *x, Tensor *y) {
    Tensor *h = t_tanh(c, t_linear(c, x, m->w1, m->b1));
    Tensor *loss = t_mse_loss(c, t_linear(c, h, m->w2, m->b2), y);
    backward(c, loss);
    return loss;
}

/* The host doors (tensor_from_host, tensor_to_host, tensor_randn) and the not-recorded t_count_negative. */
static void test_host_doors_and_counts(void) {
    Ctx c;
    ctx_init(&c);
    const real v[6] = {1.5, -2, 0, -0.25, 3, -7};
    Tensor *t = tensor_from_host(&c, 2, DIMS(2, 3), v);
    check(t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3 && !memcmp(t->data, v, sizeof v),
          "tensor_from_host copies the values into a (2, 3) tensor");
    real back[6] = {0};
    tensor_to_host(t, back);
    check(!memcmp(back, v, sizeof v), "tensor_to_host reads them back");

    /* the same draws, scaled, as rng_normal in row-major order */
    Rng r1, r2;
    rng_seed(&r1, 77);
    rng_seed(&r2, 77);
    Tensor *n = tensor_randn(&c, 3, DIMS(2, 3, 5), 0.5, &r1);
    int same = 1;
    for (size_t i = 0; i < n->numel; i++) same &= n->data[i] == (real)(0.5 * rng_normal(&r2));
    check(same, "tensor_randn draws (real)(scale * rng_normal) in row-major order");

    /* per sample: weight * number of negative entries; zero stays non-negative */
    t->requires_grad = 1;
    Tensor *k = t_count_negative(&c, t, -0.5);
    check(k->ndim == 1 && k->shape[0] == 2 && k->data[0] == (real)-0.5 && k->data[1] == (real)-1.0,
          "t_count_negative: (1, 2) negatives per row times -0.5, got (%g, %g)", k->data[0], k->data[1]);
    check(!k->requires_grad && c.ntape == 0, "t_count_negative records nothing and requires no gradient");
    double w = log(0.9);
    Tensor *k3 = t_count_negative(&c, tensor_from_host(&c, 3, DIMS(1, 2, 3), v), w);
    check(k3->data[0] == (real)(3 * w), "t_count_negative over (1, 2, 3): 3 log 0.9, the product in double");

    /* a dry run copies and draws nothing */
    ctx_reset(&c);
    c.dry = 1;
    Rng r3 = r1;
    Tensor *d1 = tensor_from_host(&c, 2, DIMS(2, 3), v), *d2 = tensor_randn(&c, 1, DIMS(4), 1, &r1);
    Tensor *d3 = t_count_negative(&c, d1, 1);
    check(!d1->data && !d2->data && !d3->data && !memcmp(&r1, &r3, sizeof r1), "a dry run copies and draws nothing");
    ctx_free(&c);
}

static void test_dry_run_and_steady_state(void) {
    Mlp m;
    paramset_init(&m.ps);
    m.w1 = param_new(&m.ps, "w1", 2, DIMS(16, 8));
    m.b1 = param_new(&m.ps, "b1", 1, DIMS(16));
    m.w2 = param_new(&m.ps, "w2", 2, DIMS(2, 16));
    m.b2 = param_new(&m.ps, "b2", 1, DIMS(2));
    paramset_alloc(&m.ps);
    for (int i = 0; i < m.ps.n; i++) tensor_fill_uniform(m.ps.t[i], &rng, -0.5, 0.5);
    Tensor *xs = rand_tensor(2, DIMS(32, 8), -1, 1), *ys = rand_tensor(2, DIMS(32, 2), -1, 1);
    Ctx c;
    ctx_init(&c);
    c.dry = 1;
    Tensor *x = tensor_new(&c, 2, xs->shape), *y = tensor_new(&c, 2, ys->shape);
    Tensor *loss = mlp_step(&c, &m, x, y);
    check(loss->ndim == 0 && loss->data == NULL && x->data == NULL, "a dry run computes shapes and no data");
    size_t need = ctx_dry_finish(&c);
    size_t cap = c.arena.capacity;
    check(need > 0 && cap >= need, "the dry run reserved the arena (%zu bytes)", need);
    double first = 0, last = 0;
    size_t peak1 = 0;
    int steady = 1;
    for (int step = 0; step < 1000; step++) {
        x = tensor_new(&c, 2, xs->shape);
        y = tensor_new(&c, 2, ys->shape);
        tensor_copy_data(x, xs);
        tensor_copy_data(y, ys);
        paramset_zero_grad(&m.ps);
        loss = mlp_step(&c, &m, x, y);
        for (size_t i = 0; i < m.ps.nvalues; i++) m.ps.values[i] -= (real)0.1 * m.ps.grads[i];
        if (step == 0) {
            first = loss->data[0];
            peak1 = c.arena.peak;
            check(c.arena.used <= need, "the real step fits in what the dry run measured (%zu <= %zu)",
                  c.arena.used, need);
        }
        last = loss->data[0];
        steady &= c.arena.peak == peak1 && c.arena.capacity == cap;
        ctx_reset(&c);
    }
    check(steady, "1000 steps keep the arena's peak and capacity constant");
    check(last < 0.5 * first, "the MLP learns (loss %.4f -> %.4f)", first, last);
    ctx_free(&c);
    tensor_free(xs);
    tensor_free(ys);
    paramset_free(&m.ps);
}

int main(void) {
    rng_seed(&rng, 20211);
    test_rng();
    test_arena();
    test_values();
    test_gradients();
    test_tape();
    test_lazy_zero_grad();
    test_paramset();
    test_gradient_penalty();
    test_dry_run_and_steady_state();
    test_host_doors_and_counts();
    return check_summary("test_tensor");
}
