/* test_patchgan.c: the PatchGAN discriminator. State-dict names, order and parameter count of the official
 * NLayerDiscriminator, output shapes at 64 and 128 px (dry run), ActNorm's first-call initialisation, finite-difference gradients of a
 * layer and of a small network, agreement with the official NLayerDiscriminator (forward, input and
 * parameter gradients, power iteration, eval mode) and loading by official names. */
#include <math.h>

#include "compare.h"
#include "ops/conv.h"
#include "gradcheck.h"
#include "ops/norm.h"
#include "networks/patchgan.h"
#include "formats/safetensors.h"

static Rng rng;

/* ---- names, order, count (the official state dict) -------------------------------------------------------- */
static void test_names_and_counts(void) {
    static const struct { const char *name; int ndim, shape[4]; } want[] = {
        {"main.0.bias", 1, {64}}, {"main.0.weight_orig", 4, {64, 3, 4, 4}}, {"main.0.weight_u", 1, {64}},
        {"main.0.weight_v", 1, {48}}, {"main.2.bias", 1, {128}}, {"main.2.weight_orig", 4, {128, 64, 4, 4}},
        {"main.2.weight_u", 1, {128}}, {"main.2.weight_v", 1, {1024}}, {"main.3.loc", 4, {1, 128, 1, 1}},
        {"main.3.scale", 4, {1, 128, 1, 1}}, {"main.3.initialized", 0, {0}}, {"main.5.bias", 1, {256}},
        {"main.5.weight_orig", 4, {256, 128, 4, 4}}, {"main.5.weight_u", 1, {256}}, {"main.5.weight_v", 1, {2048}},
        {"main.6.loc", 4, {1, 256, 1, 1}}, {"main.6.scale", 4, {1, 256, 1, 1}}, {"main.6.initialized", 0, {0}},
        {"main.8.bias", 1, {512}}, {"main.8.weight_orig", 4, {512, 256, 4, 4}}, {"main.8.weight_u", 1, {512}},
        {"main.8.weight_v", 1, {4096}}, {"main.9.loc", 4, {1, 512, 1, 1}}, {"main.9.scale", 4, {1, 512, 1, 1}},
        {"main.9.initialized", 0, {0}}, {"main.11.bias", 1, {1}}, {"main.11.weight_orig", 4, {1, 512, 4, 4}},
        {"main.11.weight_u", 1, {1}}, {"main.11.weight_v", 1, {8192}},
    };
    PatchGanConfig cfg = patchgan_config_default();
    PatchGan d;
    patchgan_declare(&d, &cfg, NULL);
    int n = (int)(sizeof want / sizeof want[0]);
    check(d.ps.n == n, "PatchGAN has %d state-dict entries (%d)", n, d.ps.n);
    int ok = 1;
    for (int i = 0; i < n && i < d.ps.n; i++) {
        const Tensor *t = d.ps.t[i];
        int same = !strcmp(t->name, want[i].name) && t->ndim == want[i].ndim;
        for (int k = 0; k < t->ndim && same; k++) same = t->shape[k] == want[i].shape[k];
        if (!same) printf("  entry %d: %s, want %s\n", i, t->name, want[i].name);
        ok &= same;
    }
    check(ok, "PatchGAN names, order and shapes as the official state dict");
    check(paramset_count(&d.ps) == 2766529, "PatchGAN has 2,766,529 parameters (%zu)", paramset_count(&d.ps));
    check(((Tensor *)paramset_find(&d.ps, "main.3.initialized"))->dtype == DT_U8, "initialized is a U8 buffer");
    patchgan_free(&d);
    /* with a prefix, as inside a larger checkpoint */
    patchgan_declare(&d, &cfg, "disc.");
    check(d.ps.n == n && !strcmp(d.ps.t[1]->name, "disc.main.0.weight_orig"), "prefix is prepended");
    patchgan_free(&d);
}

/* ---- shapes at the official sizes (dry run: nothing allocated) ---------------------------------------- */
static void test_shapes(void) {
    PatchGanConfig cfg = patchgan_config_default();
    int sizes[2] = {64, 128}, want[2] = {6, 14};
    for (int i = 0; i < 2; i++) {
        PatchGan d;
        patchgan_declare(&d, &cfg, NULL);
        Ctx c;
        ctx_init(&c);
        c.dry = 1;
        c.training = 1;
        Tensor *x = tensor_new(&c, 4, DIMS(5, 3, sizes[i], sizes[i]));
        Tensor *y = patchgan_forward(&c, &d, x);
        int ho, wo;
        patchgan_output_size(&cfg, sizes[i], sizes[i], &ho, &wo);
        check(y->ndim == 4 && y->shape[0] == 5 && y->shape[1] == 1 && y->shape[2] == want[i] &&
                  y->shape[3] == want[i] && ho == want[i] && wo == want[i],
              "PatchGAN on %dx%d gives (5, 1, %d, %d) logits", sizes[i], sizes[i], want[i], want[i]);
        backward(&c, t_mean_all(&c, y));
        size_t bytes = ctx_dry_finish(&c);
        check(bytes > 0, "dry run of forward + backward sizes the arena (%zu bytes)", bytes);
        ctx_free(&c);
        patchgan_free(&d);
    }
}

/* ---- ActNorm initialisation: first call in training mode only ------------------------------------------ */
static void test_actnorm_init(void) {
    PatchGanConfig cfg = {3, 4, 3, 1, 1};
    PatchGan d;
    patchgan_build(&d, &cfg, NULL, &rng);
    Ctx c;
    ctx_init(&c);
    c.grad_enabled = 0;
    Tensor *x = tensor_new(&c, 4, DIMS(3, 3, 32, 32));
    tensor_fill_normal(x, &rng, 0.2, 0.8);
    c.training = 0;
    patchgan_forward(&c, &d, x);
    uint8_t *init1 = d.conv[1].initialized->ibuf;
    check(init1[0] == 0 && d.conv[1].scale->data[0] == 1, "eval mode does not initialise ActNorm");
    c.training = 1;
    patchgan_forward(&c, &d, x);
    int all = 1;
    for (int i = 1; i < d.nconv - 1; i++) all &= ((uint8_t *)d.conv[i].initialized->ibuf)[0] == 1;
    check(all && d.actnorm_degenerate == 0, "the first training call initialises every ActNorm");
    /* After initialisation, the normalised activations of the init batch have mean 0 and (unbiased) std 1. */
    Tensor *h = x;
    for (int i = 0; i < 2; i++) {
        PatchGanConv *cv = &d.conv[i];
        c.training = 0;
        Tensor *w = t_spectral_norm(&c, cv->conv.weight, cv->conv.u, cv->conv.v);
        h = t_conv2d(&c, h, w, cv->conv.bias, DIMS(2, 2), DIMS(1, 1));
        if (i == 1) h = t_actnorm(&c, h, cv->loc, cv->scale);
        else h = t_leaky_relu(&c, h, 0.2);
    }
    int C = h->shape[1];
    size_t S = (size_t)h->shape[2] * h->shape[3];
    double worst = 0;
    for (int ch = 0; ch < C; ch++) {
        double s = 0, ss = 0, m = (double)h->shape[0] * S;
        for (int n = 0; n < h->shape[0]; n++)
            for (size_t j = 0; j < S; j++) s += h->data[((size_t)n * C + ch) * S + j];
        double mu = s / m;
        for (int n = 0; n < h->shape[0]; n++)
            for (size_t j = 0; j < S; j++) {
                double e = h->data[((size_t)n * C + ch) * S + j] - mu;
                ss += e * e;
            }
        double dev = fabs(mu) + fabs(sqrt(ss / (m - 1)) - 1);
        if (dev > worst) worst = dev;
    }
    /* (The forward above is the first layer pair only, and the power iteration moved u, v once since the
     * initialisation, so agreement is to the power iteration's change of sigma, not to rounding.) */
    check(worst < 0.05, "ActNorm normalises its initialisation batch (deviation %.3g)", worst);
    ctx_free(&c);
    patchgan_free(&d);
}

/* ---- finite differences (double build) ------------------------------------------------------------------ */
typedef struct LayerArgs {
    int stride;
    Tensor *u, *v;   /* weight_u (4), weight_v (48): constants of the backward, as in torch */
} LayerArgs;

/* one PatchGAN layer: spectral norm (stored u, v: eval mode) -> conv k4 p1 -> ActNorm -> LReLU(0.2)
 * in: x (2, 3, 7, 6), weight_orig (4, 3, 4, 4), bias (4), loc, scale (1, 4, 1, 1) */
static Tensor *layer_fn(Ctx *c, Tensor **in, void *user) {
    LayerArgs *a = user;
    Tensor *w = t_spectral_norm(c, in[1], a->u, a->v);
    Tensor *h = t_conv2d(c, in[0], w, in[2], DIMS(a->stride, a->stride), DIMS(1, 1));
    return t_leaky_relu(c, t_actnorm(c, h, in[3], in[4]), 0.2);
}

static Tensor *net_fn(Ctx *c, Tensor **in, void *user) {
    return patchgan_forward(c, (PatchGan *)user, in[0]);
}

static void test_gradients(void) {
    if (!is_double_build()) return;
    Tensor *in[5] = {tensor_alloc(4, DIMS(2, 3, 7, 6)), tensor_alloc(4, DIMS(4, 3, 4, 4)), tensor_alloc(1, DIMS(4)),
                     tensor_alloc(4, DIMS(1, 4, 1, 1)), tensor_alloc(4, DIMS(1, 4, 1, 1))};
    for (int i = 0; i < 5; i++) tensor_fill_normal(in[i], &rng, 0, 1);
    LayerArgs a = {1, tensor_alloc(1, DIMS(4)), tensor_alloc(1, DIMS(48))};
    spectral_norm_init_uv(a.u, a.v, &rng);
    gradcheck_mode("PatchGAN layer (SN conv, ActNorm, LReLU), stride 1", layer_fn, 5, in, &a, 0, 0);
    a.stride = 2;
    gradcheck_mode("PatchGAN layer (SN conv, ActNorm, LReLU), stride 2", layer_fn, 5, in, &a, 0, 0);
    for (int i = 0; i < 5; i++) tensor_free(in[i]);
    tensor_free(a.u);
    tensor_free(a.v);

    /* the whole (tiny) network in eval mode (stored u, v) after an initialising call, w.r.t. the input and
     * the parameters of its middle layer */
    PatchGanConfig cfg = {2, 2, 2, 1, 1};
    PatchGan d;
    patchgan_build(&d, &cfg, NULL, &rng);
    Tensor *x = tensor_alloc(4, DIMS(2, 2, 16, 13));
    tensor_fill_normal(x, &rng, 0, 1);
    Ctx c;
    ctx_init(&c);
    c.training = 1;
    c.grad_enabled = 0;
    patchgan_forward(&c, &d, x);
    ctx_free(&c);
    Tensor *nin[5] = {x, d.conv[1].conv.weight, d.conv[1].conv.bias, d.conv[1].loc, d.conv[1].scale};
    gradcheck_mode("PatchGAN (2 layers) w.r.t. input and middle-layer parameters", net_fn, 5, nin, &d, 40, 0);
    tensor_free(x);
    patchgan_free(&d);
}

/* ---- equal to the official NLayerDiscriminator ---------------------------------------------------------- */
static double compare(const StFile *f, const char *name, const Tensor *got, const char *what) {
    I2vError err;
    Tensor *want = st_read_new(f, name, DT_REAL, &err);
    if (!want) {
        check(0, "%s", err.msg);
        return INFINITY;
    }
    double e = INFINITY;
    if (want->numel == got->numel) e = max_abs_diff(got->data, want->data, got->numel) / (max_abs(want->data, want->numel) + 1e-30);
    check(e <= 1e-4, "official NLayerDiscriminator: %s relative error %.2g", what, e);
    tensor_free(want);
    return e;
}

static Tensor *read_input(const StFile *f, const char *name) {
    I2vError err;
    Tensor *t = st_read_new(f, name, DT_REAL, &err);
    if (!t) check(0, "%s", err.msg);
    return t;
}

/* tests/data/patchgan_reference.safetensors: tools/make_cond_ae_reference.py ran the official module
 * (PyTorch 1.13, CPU) with ndf 4, n_layers 3 on 32x32 inputs: a first training-mode call (ActNorm
 * initialisation, a power iteration) with a backward seeded by linspace(-1, 1), a second training-mode call
 * and an eval-mode call. */
static void test_official(void) {
    const char *path = "tests/data/patchgan_reference.safetensors";
    StFile f;
    I2vError err;
    if (st_open(&f, path, &err)) {
        check(0, "%s", err.msg);
        return;
    }
    PatchGanConfig cfg = {3, 4, 3, 1, 1};
    PatchGan d;
    patchgan_build(&d, &cfg, NULL, &rng);
    StLoadOpts opts = {"init.", 1, 0};
    int loaded = st_load_paramset(&f, &d.ps, &opts, &err);
    check(loaded == d.ps.n, "every official tensor loads by name: %s", loaded < 0 ? err.msg : "ok");
    Tensor *x1 = read_input(&f, "x1"), *x2 = read_input(&f, "x2");
    if (!x1 || !x2) return;
    double worst = 0, e;
    Ctx c;
    ctx_init(&c);
    c.training = 1;
    x1->requires_grad = 1;
    Tensor *y1 = patchgan_forward(&c, &d, x1);
    e = compare(&f, "y1", y1, "first training call (ActNorm init)");
    worst = e > worst ? e : worst;
    Tensor *seed = tensor_new(&c, y1->ndim, y1->shape);
    for (size_t i = 0; i < seed->numel; i++) seed->data[i] = (real)(-1.0 + 2.0 * (double)i / (double)(seed->numel - 1));
    paramset_zero_grad(&d.ps);
    backward(&c, t_sum_all(&c, t_mul(&c, y1, seed)));
    Tensor dx = *x1;
    dx.data = x1->grad;
    e = compare(&f, "dx1", &dx, "input gradient");
    worst = e > worst ? e : worst;
    char name[128];
    for (int i = 0; i < d.ps.n; i++) {
        Tensor *p = d.ps.t[i];
        if (!p->is_param) continue;
        Tensor g = *p;
        g.data = p->grad;
        snprintf(name, sizeof name, "grad1.%s", p->name);
        e = compare(&f, name, &g, name);
        worst = e > worst ? e : worst;
    }
    ctx_reset(&c);
    c.grad_enabled = 0;
    Tensor *y2 = patchgan_forward(&c, &d, x2);
    e = compare(&f, "y2", y2, "second training call");
    worst = e > worst ? e : worst;
    for (int i = 0; i < d.ps.n; i++) {
        Tensor *p = d.ps.t[i];
        snprintf(name, sizeof name, "after2.%s", p->name);
        if (!st_find(&f, name) || p->dtype != DT_REAL) continue;
        e = compare(&f, name, p, name);
        worst = e > worst ? e : worst;
    }
    c.training = 0;
    Tensor *y3 = patchgan_forward(&c, &d, x2);
    e = compare(&f, "y3", y3, "eval mode");
    worst = e > worst ? e : worst;
    printf("official NLayerDiscriminator: worst relative error %.2g\n", worst);
    ctx_free(&c);
    tensor_free(x1);
    tensor_free(x2);
    patchgan_free(&d);
    st_close(&f);
}

/* ---- loading: a missing or mis-shaped tensor is named ----------------------------------------------- */
static void test_loading(void) {
    PatchGanConfig cfg = {3, 4, 3, 1, 1};
    PatchGan a, b;
    patchgan_build(&a, &cfg, NULL, &rng);
    patchgan_build(&b, &cfg, NULL, &rng);
    for (int i = 0; i < a.ps.n; i++)
        if (a.ps.t[i]->dtype == DT_REAL) tensor_fill_normal(a.ps.t[i], &rng, 0, 1);
    ((uint8_t *)a.conv[2].initialized->ibuf)[0] = 1;
    unsigned char *bytes;
    size_t size;
    I2vError err;
    StWriter w;
    st_writer_init(&w);
    st_writer_add_paramset(&w, &a.ps, NULL);
    check(st_writer_serialize(&w, &bytes, &size, &err) == 0, "serialise a PatchGAN");
    st_writer_free(&w);
    StFile f;
    check(st_parse(&f, bytes, size, "patchgan.safetensors", &err) == 0, "parse it back");
    int loaded = st_load_paramset(&f, &b.ps, NULL, &err);
    int same = loaded == b.ps.n;
    for (int i = 0; i < b.ps.n && same; i++) {
        const Tensor *ta = a.ps.t[i], *tb = b.ps.t[i];
        if (ta->dtype != DT_REAL) {
            same = !memcmp(ta->ibuf, tb->ibuf, ta->numel * dtype_size(ta->dtype));
            continue;
        }
        /* files hold F32, also in the double build */
        for (size_t j = 0; j < ta->numel && same; j++) same = (float)ta->data[j] == (float)tb->data[j];
    }
    check(same, "loading restores every tensor of the PatchGAN (incl. weight_u/v and initialized)");
    st_close(&f);
    free(bytes);
    patchgan_free(&b);
    /* a PatchGAN of another width: every mismatch is named */
    PatchGanConfig wide = {3, 5, 3, 1, 1};
    patchgan_build(&b, &wide, NULL, &rng);
    st_writer_init(&w);
    for (int i = 0; i < a.ps.n; i++)
        if (strcmp(a.ps.t[i]->name, "main.11.bias")) st_writer_add(&w, a.ps.t[i]->name, a.ps.t[i]);
    st_writer_serialize(&w, &bytes, &size, &err);
    st_writer_free(&w);
    st_parse(&f, bytes, size, "narrow.safetensors", &err);
    loaded = st_load_paramset(&f, &b.ps, NULL, &err);
    check(loaded < 0 && strstr(err.msg, "main.11.bias") && strstr(err.msg, "main.0.weight_orig"),
          "a missing and a mis-shaped tensor are reported by name: %s", err.msg);
    st_close(&f);
    free(bytes);
    patchgan_free(&a);
    patchgan_free(&b);
}

int main(void) {
    rng_seed(&rng, 11);
    test_names_and_counts();
    test_shapes();
    test_actnorm_init();
    test_gradients();
    test_official();
    test_loading();
    return check_summary("test_patchgan");
}
