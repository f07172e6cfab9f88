/* test_optim.c: Adam / AMSGrad against values computed by hand from PyTorch's update rule, and the
 * learning-rate schedulers against PyTorch's documented sequences. */
#include "check.h"
#include "optim.h"

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
    test_schedulers();
    return check_summary("test_optim");
}
