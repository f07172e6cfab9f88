/* test_optim.c: Adam / AMSGrad against values computed by hand from PyTorch's update rule, Adam fused
 * into the backward pass against backward then Adam, and the learning-rate schedulers against PyTorch's
 * documented sequences. */
#include "check.h"
#include "kernels/threads.h"
#include "ops/optim.h"

/* The reference: PyTorch's Adam written out in double for one scalar parameter. */
static double ref_adam(double p, const double *grads, int steps, double lr, double b1, double b2, double eps,
                       double wd, int amsgrad) {
    double m = 0, v = 0, vmax = 0;
    for (int t = 1; t <= steps; t++) {
        double g = grads[t - 1] + wd * p;
        m = b1 * m + (1 - b1) * g;
        v = b2 * v + (1 - b2) * g * g;
        if (v > vmax) vmax = v;
        double denom = sqrt(amsgrad ? vmax : v) / sqrt(1 - pow(b2, t)) + eps;
        p -= lr / (1 - pow(b1, t)) * m / denom;
    }
    return p;
}

static void test_adam(int amsgrad, double wd) {
    ParamSet ps;
    paramset_init(&ps);
    Tensor *w = param_new(&ps, "w", 1, DIMS(3));
    Tensor *unused = param_new(&ps, "unused", 1, DIMS(2));
    paramset_alloc(&ps);
    double p0[3] = {0.5, -1.0, 2.0};
    /* gradients chosen so that AMSGrad's max differs from v at step 3 (a large gradient, then small ones) */
    double grads[3][3] = {{0.3, -2.0, 0.0}, {-0.1, 0.05, 1e-3}, {0.02, 0.01, -0.5}};
    for (int i = 0; i < 3; i++) w->data[i] = (real)p0[i];
    unused->data[0] = 7;
    Adam opt;
    adam_init(&opt, 1e-2, 0.9, 0.99, 1e-8, wd, amsgrad);
    adam_add_params(&opt, &ps);
    w->grad_seen = 1;   /* as a backward pass would set it; `unused` never gets a gradient */
    for (int t = 0; t < 3; t++) {
        for (int i = 0; i < 3; i++) w->grad[i] = (real)grads[t][i];
        adam_step(&opt);
    }
    int ok = 1;
    for (int i = 0; i < 3; i++) {
        double g[3] = {grads[0][i], grads[1][i], grads[2][i]};
        double want = ref_adam(p0[i], g, 3, 1e-2, 0.9, 0.99, 1e-8, wd, amsgrad);
        ok &= close_enough(w->data[i], want, 1e-6, 1e-5);
        if (!close_enough(w->data[i], want, 1e-6, 1e-5))
            printf("  w[%d] = %.9g, want %.9g\n", i, (double)w->data[i], want);
    }
    check(ok, "Adam (amsgrad %d, weight decay %g): three steps equal the hand-computed values", amsgrad, wd);
    check(unused->data[0] == 7, "a parameter that never received a gradient is not updated");
    adam_free(&opt);
    paramset_free(&ps);
}

/* ---- Adam inside the backward pass (adam_backward_step) ------------------------------------------------ */

/* A small network that meets every case of backward_update: w1 has 45 rows, so its fused update runs in
 * blocks of 20, 20 and 5 rows; w2 is used twice (its gradient is final only after its first use, and both
 * uses read its value for the input gradient); `late` is used only in step 0, so later steps update it
 * from a zero gradient as PyTorch does; `foreign` is on the tape but belongs to no optimiser. */
typedef struct FusedNet {
    ParamSet ps, other;
    Tensor *w1, *b1, *w2, *late, *foreign;
} FusedNet;

static void fused_net_build(FusedNet *n, uint64_t seed) {
    paramset_init(&n->ps);
    paramset_init(&n->other);
    n->w1 = param_new(&n->ps, "w1", 2, DIMS(45, 7));
    n->b1 = param_new(&n->ps, "b1", 1, DIMS(45));
    n->w2 = param_new(&n->ps, "w2", 2, DIMS(3, 45));
    n->late = param_new(&n->ps, "late", 1, DIMS(4));
    n->foreign = param_new(&n->other, "foreign", 1, DIMS(3));
    paramset_alloc(&n->ps);
    paramset_alloc(&n->other);
    Rng r;
    rng_seed(&r, seed);
    Tensor *all[5] = {n->w1, n->b1, n->w2, n->late, n->foreign};
    for (int i = 0; i < 5; i++) tensor_fill_normal(all[i], &r, 0, 0.5);
}

static Tensor *fused_net_loss(Ctx *c, FusedNet *n, int step) {
    Rng r;
    rng_seed(&r, 100 + (uint64_t)step);   /* the same batch for both runs */
    Tensor *x = tensor_new(c, 2, DIMS(5, 7));
    tensor_fill_normal(x, &r, 0, 1);
    Tensor *h = t_leaky_relu(c, t_linear(c, x, n->w1, n->b1), 0.1f);
    Tensor *y1 = t_linear(c, h, n->w2, NULL), *y2 = t_linear(c, t_square(c, h), n->w2, NULL);
    Tensor *loss = t_add(c, t_sum_all(c, t_mul(c, t_tanh(c, y1), y2)), t_sum_all(c, t_mul(c, y1, n->foreign)));
    if (step == 0) loss = t_add(c, loss, t_sum_all(c, t_square(c, n->late)));
    return loss;
}

/* values and gradients bitwise equal */
static int same_values(const Tensor *a, const Tensor *b, const real *ga, const real *gb) {
    return !memcmp(a->data, b->data, a->numel * sizeof(real)) && !memcmp(ga, gb, a->numel * sizeof(real));
}

static void test_fused(int amsgrad, double wd) {
    FusedNet a, b;
    fused_net_build(&a, 5);
    fused_net_build(&b, 5);
    Adam oa, ob;
    adam_init(&oa, 1e-2, 0.9, 0.99, 1e-8, wd, amsgrad);
    adam_init(&ob, 1e-2, 0.9, 0.99, 1e-8, wd, amsgrad);
    adam_add_params(&oa, &a.ps);
    adam_add_params(&ob, &b.ps);
    Ctx c;
    ctx_init(&c);
    real w1_before = a.w1->data[0], late_before = a.late->data[0];
    int all_same = 1, in_pass = 1;
    for (int step = 0; step < 3; step++) {
        paramset_zero_grad(&a.ps);
        paramset_zero_grad(&a.other);
        backward(&c, fused_net_loss(&c, &a, step));
        adam_step(&oa);
        ctx_reset(&c);
        threads_set(step % 2 ? 1 : 2);   /* the fused update's row blocks on one thread and on two */
        paramset_zero_grad(&b.ps);
        paramset_zero_grad(&b.other);
        adam_backward_step(&ob, &c, fused_net_loss(&c, &b, step));
        in_pass &= b.w1->update_pass == c.pass && b.b1->update_pass == c.pass && b.w2->update_pass == c.pass &&
                   (b.late->update_pass == c.pass) == (step == 0);
        ctx_reset(&c);
        Tensor *ta[5] = {a.w1, a.b1, a.w2, a.late, a.foreign}, *tb[5] = {b.w1, b.b1, b.w2, b.late, b.foreign};
        for (int i = 0; i < 5; i++) {
            int same = same_values(ta[i], tb[i], param_grad(ta[i]), param_grad(tb[i]));
            if (!same) printf("  step %d: '%s' differs\n", step, ta[i]->name);
            all_same &= same;
        }
    }
    threads_set(1);
    check(all_same, "Adam in the backward pass (amsgrad %d, weight decay %g): parameters and gradients bitwise "
          "equal to backward then adam_step over three steps", amsgrad, wd);
    check(in_pass, "the parameters on the tape were updated inside the backward pass, the others after it");
    check(a.w1->data[0] != w1_before && a.late->data[0] != late_before && ob.step == 3,
          "the steps moved the parameters (also one whose gradient was zero) and were counted");
    check(!memcmp(a.foreign->data, b.foreign->data, 3 * sizeof(real)) && a.foreign->grad[0] != 0,
          "a parameter of no optimiser on the tape gets its gradient and is not updated");
    ctx_free(&c);
    adam_free(&oa);
    adam_free(&ob);
    paramset_free(&a.ps);
    paramset_free(&a.other);
    paramset_free(&b.ps);
    paramset_free(&b.other);
}

/* AMSGrad must differ from Adam on this sequence, otherwise the test above proves nothing about the max. */
static void test_amsgrad_matters(void) {
    double g[3] = {-2.0, 0.05, 0.01};
    double a = ref_adam(-1, g, 3, 1e-2, 0.9, 0.99, 1e-8, 0, 0), b = ref_adam(-1, g, 3, 1e-2, 0.9, 0.99, 1e-8, 0, 1);
    check(fabs(a - b) > 1e-5, "the AMSGrad test sequence separates AMSGrad from Adam (%g vs %g)", a, b);
}

static void test_schedulers(void) {
    Adam opt;
    adam_init(&opt, 1e-5, 0.9, 0.99, 1e-8, 0, 1);
    StepLR s;
    steplr_init(&s, 7, 0.5);
    int ok = 1;
    for (int epoch = 1; epoch <= 31; epoch++) {
        steplr_step(&s, &opt);
        ok &= close_enough(opt.lr, 1e-5 * pow(0.5, epoch / 7), 0, 1e-12);
    }
    check(ok, "StepLR(7, 0.5): lr = 1e-5 * 0.5^floor(epoch / 7)");
    adam_init(&opt, 2e-4, 0.5, 0.9, 1e-8, 1e-5, 0);
    ExponentialLR e;
    explr_init(&e, 0.98);
    for (int i = 0; i < 10; i++) explr_step(&e, &opt);
    check_close(opt.lr, 2e-4 * pow(0.98, 10), 0, 1e-12, "ExponentialLR(0.98) after 10 epochs");
    /* ReduceLROnPlateau(min, factor 0.5, patience 1, threshold 1e-4 abs, min_lr 1e-8), as the AE uses it:
     * losses 1.0, 0.9 (better), 0.89995 (not better by 1e-4: bad 1), 0.95 (bad 2 > patience: halve),
     * 0.95 (bad 1), 0.95 (bad 2: halve), 0.5 (better) */
    adam_init(&opt, 2e-4, 0.9, 0.999, 1e-8, 0, 0);
    ReduceLROnPlateau p;
    plateau_init(&p, 0, 0.5, 1, 1e-4, 1, 0, 1e-8);
    double metrics[] = {1.0, 0.9, 0.89995, 0.95, 0.95, 0.95, 0.5};
    double want[] = {2e-4, 2e-4, 2e-4, 1e-4, 1e-4, 5e-5, 5e-5};
    ok = 1;
    for (int i = 0; i < 7; i++) {
        plateau_step(&p, &opt, metrics[i]);
        ok &= close_enough(opt.lr, want[i], 0, 1e-12);
    }
    check(ok, "ReduceLROnPlateau follows PyTorch's sequence (lr %g)", opt.lr);
    /* halvings from 1e-6: ... 3.125e-8 -> 1.5625e-8; the next (to max(7.8e-9, min_lr 1e-8)) would change lr
     * by less than eps = 1e-8, which PyTorch ignores, so the lr stays at 1.5625e-8 */
    adam_init(&opt, 1e-6, 0.9, 0.999, 1e-8, 0, 0);
    plateau_init(&p, 0, 0.5, 0, 1e-4, 1, 0, 1e-8);
    for (int i = 0; i < 20; i++) plateau_step(&p, &opt, 1.0);
    check_close(opt.lr, 1.5625e-8, 0, 1e-12, "ReduceLROnPlateau stops where a change would be below eps");
}

int main(void) {
    test_adam(0, 0);
    test_adam(1, 0);
    test_adam(1, 1e-2);
    test_adam(0, 1e-5);
    test_amsgrad_matters();
    test_fused(1, 0);
    test_fused(0, 1e-2);
    test_schedulers();
    return check_summary("test_optim");
}
