/* gradcheck.h: finite-difference checks of backward passes, shared by the test programs.
 *
 * gradcheck(name, f, n, in, user, nsample) builds out = f(ctx, in, user), seeds the backward with a fixed
 * random tensor R of out's shape (so the checked scalar is L = sum(R * out) and every output element
 * matters), and compares the analytic dL/d in[i] with central differences
 *     (L(x + h e_j) - L(x - h e_j)) / 2h,   h = 1e-6,
 * for up to nsample elements of each input (all of them if nsample <= 0). It runs only in the double build
 * (-DI2V_DOUBLE): there the truncation error is O(h^2) ~ 1e-12 and rounding O(eps |L| / h) ~ 1e-9, so
 * analytic and numeric values agree to |a - n| <= 1e-6 + 1e-5 max(|a|, |n|) unless the backward is wrong.
 * Elements sitting on a kink (relu, abs, max, clamp, hinge), where the one-sided differences disagree, are
 * skipped as ggml's test-grad0 does; an element that disagrees without a visible kink is measured again
 * with h / 4, which a kink between h / 4 and h away no longer reaches. The inputs must be persistent tensors (tensor_alloc); parameters
 * (is_param) are allowed. Returns 1 when the check passed (it also counts one test). */
#ifndef I2V_GRADCHECK_H
#define I2V_GRADCHECK_H

#include "check.h"
#include "tensor.h"

typedef Tensor *(*GradFn)(Ctx *c, Tensor **in, void *user);

static inline double gradcheck_loss(GradFn f, Tensor **in, void *user, const real *R, int training) {
    Ctx c;
    ctx_init(&c);
    c.grad_enabled = 0;
    c.training = training;
    Tensor *out = f(&c, in, user);
    double L = 0;
    for (size_t i = 0; i < out->numel; i++) L += (double)R[i] * out->data[i];
    ctx_free(&c);
    return L;
}

/* training: the context's mode for every evaluation (deterministic ops only: no dropout here). */
static inline int gradcheck_mode(const char *name, GradFn f, int n, Tensor **in, void *user, int nsample, int training) {
    if (!is_double_build()) return 1;
    Rng rng;
    rng_seed(&rng, 1234);
    /* analytic */
    Ctx c;
    ctx_init(&c);
    c.training = training;
    unsigned char saved_rg[16];
    I2V_ASSERT(n <= 16, "gradcheck takes at most 16 inputs");
    for (int i = 0; i < n; i++) {
        saved_rg[i] = in[i]->requires_grad;
        in[i]->requires_grad = 1;
    }
    Tensor *out = f(&c, in, user);
    real *R = xmalloc(out->numel * sizeof(real));
    for (size_t i = 0; i < out->numel; i++) R[i] = (real)(rng_uniform(&rng) * 2 - 1);
    Tensor *grads[16];
    /* L = sum(R * out) through the tape's own ops, then grad_of: parameters' .grad stay untouched. */
    Tensor *Rt = tensor_new(&c, out->ndim, out->shape);
    memcpy(Rt->data, R, out->numel * sizeof(real));
    Tensor *L = t_sum_all(&c, t_mul(&c, out, Rt));
    grad_of(&c, L, n, in, grads);
    int ok = 1;
    char buf[64];
    for (int i = 0; i < n && ok; i++) {
        Tensor *x = in[i];
        size_t count = (nsample <= 0 || (size_t)nsample >= x->numel) ? x->numel : (size_t)nsample;
        for (size_t s = 0; s < count; s++) {
            size_t j = count == x->numel ? s : (size_t)rng_below(&rng, (uint32_t)x->numel);
            real v = x->data[j];
            const double h = 1e-6;
            x->data[j] = (real)(v + h);
            double lp = gradcheck_loss(f, in, user, R, training);
            x->data[j] = (real)(v - h);
            double lm = gradcheck_loss(f, in, user, R, training);
            x->data[j] = v;
            double numeric = (lp - lm) / (2 * h);
            double analytic = grads[i]->data[j];
            if (close_enough(analytic, numeric, 1e-6, 1e-5)) continue;
            double l0 = gradcheck_loss(f, in, user, R, training);
            double right = (lp - l0) / h, left = (l0 - lm) / h;
            if (fabs(right - left) > 1e-3 * (1 + fabs(right) + fabs(left))) continue;  /* a kink */
            /* A kink inside (x - h, x + h) whose jump is small next to a large gradient passes the test
             * above: a step of h / 4 no longer straddles it unless it lies closer still. A wrong backward
             * disagrees at any step. */
            const double h4 = h / 4;
            x->data[j] = (real)(v + h4);
            double lp4 = gradcheck_loss(f, in, user, R, training);
            x->data[j] = (real)(v - h4);
            double lm4 = gradcheck_loss(f, in, user, R, training);
            x->data[j] = v;
            if (close_enough(analytic, (lp4 - lm4) / (2 * h4), 1e-6, 1e-5)) continue;
            shape_str(x, buf, sizeof buf);
            check(0, "gradcheck %s: input %d %s element %zu: analytic %.10g, numeric %.10g", name, i, buf, j,
                  analytic, numeric);
            ok = 0;
            break;
        }
    }
    if (ok) check(1, "gradcheck %s", name);
    for (int i = 0; i < n; i++) in[i]->requires_grad = saved_rg[i];
    free(R);
    ctx_free(&c);
    return ok;
}

static inline int gradcheck(const char *name, GradFn f, int n, Tensor **in, void *user, int nsample) {
    return gradcheck_mode(name, f, n, in, user, nsample, 1);
}

#endif
