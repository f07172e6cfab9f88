/* test_lpips.c: the LPIPS perceptual loss. Names and sizes of the weight file, agreement with the official
 * LPIPS module (value and input gradients, at reduced widths with random weights), finite-difference
 * gradients with respect to both images, the dropout's expectation, frozen weights, and the loader's
 * messages for a missing file and a mis-shaped tensor. */
#include <math.h>

#include "compare.h"
#include "gradcheck.h"
#include "networks/lpips.h"
#include "formats/safetensors.h"

static Rng rng;

static const LpipsConfig small = {{4, 8, 16, 32, 32}};

/* ---- names and sizes ---------------------------------------------------------------------------------- */
static void test_names(void) {
    LpipsConfig cfg = lpips_config_vgg16();
    Lpips l;
    lpips_build(&l, &cfg);
    check(l.ps.n == 33, "LPIPS holds 33 tensors (%d)", l.ps.n);
    check(paramset_count(&l.ps) == 0, "every LPIPS tensor is frozen (no trainable parameters)");
    size_t total = 0;
    for (int i = 0; i < l.ps.n; i++) total += l.ps.t[i]->numel;
    check(total == 14714688 + 1472 + 6, "VGG16 features 14,714,688 + lin 1,472 + scaling 6 values (%zu)", total);
    const char *names[] = {"scaling_layer.shift", "scaling_layer.scale", "net.slice1.0.weight", "net.slice1.0.bias",
                           "net.slice1.2.weight"};
    int ok = 1;
    for (int i = 0; i < 5; i++) ok &= !strcmp(l.ps.t[i]->name, names[i]);
    Tensor *w = paramset_find(&l.ps, "net.slice5.28.weight"), *lin = paramset_find(&l.ps, "lin4.model.1.weight");
    Tensor *w10 = paramset_find(&l.ps, "net.slice3.10.weight"), *w24 = paramset_find(&l.ps, "net.slice5.24.bias");
    ok &= w && w->shape[0] == 512 && w->shape[1] == 512 && lin && lin->shape[1] == 512 && w10 &&
          w10->shape[0] == 256 && w10->shape[1] == 128 && w24 && w24->numel == 512;
    ok &= !strcmp(l.ps.t[l.ps.n - 1]->name, "lin4.model.1.weight");
    check(ok, "official names, order and shapes (net.sliceK.N.*, linK.model.1.weight)");
    check(fabs(l.shift->data[2] + 0.188) < 1e-7 && fabs(l.scale->data[0] - 0.458) < 1e-7, "scaling constants");
    /* output shape at 64 and 128 px, dry run */
    for (int s = 64; s <= 128; s *= 2) {
        Ctx c;
        ctx_init(&c);
        c.dry = 1;
        Tensor *x = tensor_new(&c, 4, DIMS(3, 3, s, s)), *y = tensor_new(&c, 4, DIMS(3, 3, s, s));
        x->requires_grad = 1;
        Tensor *d = lpips_forward(&c, &l, x, y, &rng);
        check(d->ndim == 4 && d->shape[0] == 3 && d->shape[1] == 1 && d->shape[2] == 1 && d->shape[3] == 1,
              "LPIPS of %dx%d images is (N, 1, 1, 1)", s, s);
        ctx_dry_finish(&c);
        ctx_free(&c);
    }
    lpips_free(&l);
}

/* ---- equal to the official LPIPS ------------------------------------------------------------------------ */
static double compare(const StFile *f, const char *name, const real *got, size_t n, const char *what) {
    I2vError err;
    Tensor *want = st_read_new(f, name, DT_REAL, &err);
    if (!want) {
        check(0, "%s", err.msg);
        return INFINITY;
    }
    double e = want->numel == n ? max_abs_diff(got, want->data, n) / (max_abs(want->data, n) + 1e-30) : INFINITY;
    check(e <= 1e-4, "official LPIPS: %s relative error %.2g", what, e);
    tensor_free(want);
    return e;
}

/* tests/data/lpips_reference.safetensors: tools/make_cond_ae_reference.py ran the official LPIPS module
 * (dropout layers present, module in eval mode) with slice widths 4, 8, 16, 32, 32 and random weights on
 * two pairs of 24x20 images, with a backward of d . (1, -0.5). */
static void test_official(void) {
    StFile f;
    I2vError err;
    if (st_open(&f, "tests/data/lpips_reference.safetensors", &err)) {
        check(0, "%s", err.msg);
        return;
    }
    Lpips l;
    lpips_build(&l, &small);
    StLoadOpts opts = {"lpips.", 1, 0};
    int n = st_load_paramset(&f, &l.ps, &opts, &err);
    check(n == l.ps.n, "every official LPIPS tensor loads by name: %s", n < 0 ? err.msg : "ok");
    Tensor *x = st_read_new(&f, "x", DT_REAL, &err), *y = st_read_new(&f, "y", DT_REAL, &err);
    if (!x || !y) {
        check(0, "%s", err.msg);
        return;
    }
    Ctx c;
    ctx_init(&c);
    c.training = 0;
    x->requires_grad = y->requires_grad = 1;
    Tensor *d = lpips_forward(&c, &l, x, y, NULL);
    double worst = compare(&f, "d", d->data, d->numel, "value");
    const double dval[2] = {d->data[0], d->data[1]};   /* d lives in the arena, which is reset below */
    Tensor *seed = tensor_new(&c, 4, DIMS(2, 1, 1, 1));
    seed->data[0] = 1;
    seed->data[1] = -0.5;
    backward(&c, t_sum_all(&c, t_mul(&c, d, seed)));
    double e = compare(&f, "dx", x->grad, x->numel, "gradient w.r.t. the first image");
    worst = e > worst ? e : worst;
    e = compare(&f, "dy", y->grad, y->numel, "gradient w.r.t. the second image");
    worst = e > worst ? e : worst;
    ctx_reset(&c);
    c.grad_enabled = 0;
    Tensor *d0 = lpips_forward(&c, &l, x, x, NULL);
    check(d0->data[0] == 0 && d0->data[1] == 0, "LPIPS(x, x) = 0");
    printf("official LPIPS: worst relative error %.2g\n", worst);

    /* Dropout (training mode, as the official training runs it): random, and its mean is the eval value
     * (within 4 standard errors of the mean of the draws) */
    c.training = 1;
    enum { DRAWS = 200 };
    double sum[2] = {0, 0}, sq[2] = {0, 0}, lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < DRAWS; i++) {
        ctx_reset(&c);
        Tensor *dd = lpips_forward(&c, &l, x, y, &rng);
        for (int k = 0; k < 2; k++) {
            sum[k] += dd->data[k];
            sq[k] += (double)dd->data[k] * dd->data[k];
        }
        lo = dd->data[0] < lo ? dd->data[0] : lo;
        hi = dd->data[0] > hi ? dd->data[0] : hi;
    }
    check(hi > lo * 1.01, "dropout makes the training-mode value random (%.4g .. %.4g)", lo, hi);
    int unbiased = 1;
    for (int k = 0; k < 2; k++) {
        double mean = sum[k] / DRAWS, se = sqrt((sq[k] / DRAWS - mean * mean) / (DRAWS - 1));
        unbiased &= fabs(mean - dval[k]) <= 4 * se;
        printf("dropout: mean of %d draws %.5g, deterministic value %.5g, standard error %.2g\n", DRAWS, mean, dval[k],
               se);
    }
    check(unbiased, "the mean of the dropout draws is the deterministic value");
    l.dropout = 0;
    ctx_reset(&c);
    Tensor *dd = lpips_forward(&c, &l, x, y, NULL);
    check(dd->data[0] == (real)dval[0] && dd->data[1] == (real)dval[1],
          "the deterministic variant ignores the training mode");
    ctx_free(&c);
    tensor_free(x);
    tensor_free(y);
    lpips_free(&l);
    st_close(&f);
}

/* ---- finite differences w.r.t. both images (double build) ----------------------------------------------- */
static Tensor *lpips_fn(Ctx *c, Tensor **in, void *user) { return lpips_forward(c, (Lpips *)user, in[0], in[1], NULL); }

static void test_gradients(void) {
    if (!is_double_build()) return;
    LpipsConfig tiny = {{3, 4, 4, 5, 3}};
    Lpips l;
    lpips_build(&l, &tiny);
    lpips_init_random(&l, &rng);
    Tensor *in[2] = {tensor_alloc(4, DIMS(2, 3, 17, 16)), tensor_alloc(4, DIMS(2, 3, 17, 16))};
    tensor_fill_uniform(in[0], &rng, -1, 1);
    tensor_fill_uniform(in[1], &rng, -1, 1);
    gradcheck_mode("LPIPS w.r.t. both images", lpips_fn, 2, in, &l, 60, 0);
    tensor_free(in[0]);
    tensor_free(in[1]);
    lpips_free(&l);
}

/* ---- frozen weights, loader messages ----------------------------------------------------------------------- */
static void test_loader(void) {
    Lpips l;
    I2vError err;
    int rc = lpips_open(&l, "tests/data/no_such_lpips.safetensors", &err);
    check(rc != 0 && strstr(err.msg, "no_such_lpips.safetensors") && strstr(err.msg, "convert_official.py lpips") &&
              strstr(err.msg, "vgg16-397923af.pth"),
          "a missing weight file says how to make it");
    /* a file of the small network does not fit the VGG16 widths: every mismatch is named */
    Lpips s;
    lpips_build(&s, &small);
    lpips_init_random(&s, &rng);
    unsigned char *bytes;
    size_t size;
    StWriter w;
    st_writer_init(&w);
    for (int i = 0; i < s.ps.n; i++)
        if (strcmp(s.ps.t[i]->name, "lin2.model.1.weight")) st_writer_add(&w, s.ps.t[i]->name, s.ps.t[i]);
    st_writer_serialize(&w, &bytes, &size, &err);
    st_writer_free(&w);
    StFile f;
    st_parse(&f, bytes, size, "small_lpips.safetensors", &err);
    Lpips big;
    LpipsConfig cfg = {{4, 8, 16, 32, 33}};
    lpips_build(&big, &cfg);
    StLoadOpts opts = {NULL, 1, 1};
    int n = st_load_paramset(&f, &big.ps, &opts, &err);
    check(n < 0 && strstr(err.msg, "lin2.model.1.weight") && strstr(err.msg, "net.slice5.24.weight"),
          "a missing and a mis-shaped LPIPS tensor are named: %s", err.msg);
    st_close(&f);
    free(bytes);
    lpips_free(&big);
    /* the weights never receive gradients, the inputs do */
    Ctx c;
    ctx_init(&c);
    c.training = 1;
    Tensor *x = tensor_new(&c, 4, DIMS(2, 3, 16, 16)), *y = tensor_new(&c, 4, DIMS(2, 3, 16, 16));
    tensor_fill_uniform(x, &rng, -1, 1);
    tensor_fill_uniform(y, &rng, -1, 1);
    x->requires_grad = 1;
    backward(&c, t_sum_all(&c, lpips_forward(&c, &s, x, y, &rng)));
    int frozen = 1;
    for (int i = 0; i < s.ps.n; i++) frozen &= !s.ps.t[i]->requires_grad && !s.ps.t[i]->grad;
    check(frozen && max_abs(x->grad, x->numel) > 0, "gradients reach the input only");
    /* dead features (a slice whose ReLUs are all off): the value is finite and the gradient too, where
     * PyTorch's sqrt backward would give 0 * inf = NaN */
    for (int i = 10; i < LPIPS_CONVS; i++) tensor_fill(s.conv_b[i], -100);
    ctx_reset(&c);   /* x and y lived in the arena: make new ones */
    x = tensor_new(&c, 4, DIMS(2, 3, 16, 16));
    y = tensor_new(&c, 4, DIMS(2, 3, 16, 16));
    tensor_fill_uniform(x, &rng, -1, 1);
    tensor_fill_uniform(y, &rng, -1, 1);
    x->requires_grad = 1;
    Tensor *d = lpips_forward(&c, &s, x, y, &rng);
    backward(&c, t_sum_all(&c, d));
    int finite = isfinite(d->data[0]) && isfinite(d->data[1]);
    for (size_t i = 0; i < x->numel; i++) finite &= isfinite(x->grad[i]) != 0;
    check(finite, "all-zero features give a finite value and finite gradients");
    ctx_free(&c);
    lpips_free(&s);
}

int main(void) {
    rng_seed(&rng, 5);
    test_names();
    test_official();
    test_gradients();
    test_loader();
    return check_summary("test_lpips");
}
