/* lpips.c: the LPIPS perceptual loss (stage2_cINN/AE/modules/LPIPS.py with vgg16.py), forward as recorded
 * tape ops so that its gradient with respect to the images comes from the tape.
 *
 * What it is: the scaling layer, VGG16's first 30 feature layers cut into 5 slices, unit normalisation over
 * channels, squared differences, the dropout + 1x1 "lin" layers, spatial means and their sum; weights from
 * a safetensors file with the official names. What it is not: the evaluation metric of the `lpips` package
 * (the same network), a downloader, or trainable (every tensor is a frozen buffer).
 * Dimension legend: N batch, C channels, H, W spatial size; k the slice (0..4), C_k its width.
 */
#include "networks/lpips.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ops/conv.h"
#include "ops/init.h"
#include "formats/safetensors.h"

/* VGG16 `features` convs used by the 5 slices: position in the Sequential and slice */
static const int vgg_index[LPIPS_CONVS] = {0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28};
static const int vgg_slice[LPIPS_CONVS] = {0, 0, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4};

LpipsConfig lpips_config_vgg16(void) {
    LpipsConfig c = {{64, 128, 256, 512, 512}};
    return c;
}

/* LPIPS.__init__: scaling_layer, net (vgg16 slices), lin0..lin4, in that registration order. */
void lpips_build(Lpips *l, const LpipsConfig *cfg) {
    memset(l, 0, sizeof *l);
    l->cfg = *cfg;
    l->dropout = 1;
    paramset_init(&l->ps);
    ParamSet *ps = &l->ps;
    char name[128];
    l->shift = buffer_new(ps, "scaling_layer.shift", DT_REAL, 4, DIMS(1, 3, 1, 1));
    l->scale = buffer_new(ps, "scaling_layer.scale", DT_REAL, 4, DIMS(1, 3, 1, 1));
    int cin = 3;
    for (int i = 0; i < LPIPS_CONVS; i++) {
        int k = vgg_slice[i], cout = cfg->widths[k];
        I2V_ASSERT(cout > 0, "LPIPS: slice %d has width %d", k + 1, cout);
        snprintf(name, sizeof name, "net.slice%d.%d.weight", k + 1, vgg_index[i]);
        l->conv_w[i] = buffer_new(ps, name, DT_REAL, 4, DIMS(cout, cin, 3, 3));
        snprintf(name, sizeof name, "net.slice%d.%d.bias", k + 1, vgg_index[i]);
        l->conv_b[i] = buffer_new(ps, name, DT_REAL, 1, DIMS(cout));
        cin = cout;
    }
    for (int k = 0; k < LPIPS_SLICES; k++) {
        snprintf(name, sizeof name, "lin%d.model.1.weight", k);
        l->lin[k] = buffer_new(ps, name, DT_REAL, 4, DIMS(1, cfg->widths[k], 1, 1));
    }
    paramset_alloc(ps);
    /* ScalingLayer: shift (-.030, -.088, -.188), scale (.458, .448, .450) */
    const float shift[3] = {-.030f, -.088f, -.188f}, scale[3] = {.458f, .448f, .450f};
    for (int ch = 0; ch < 3; ch++) {
        l->shift->data[ch] = (real)shift[ch];
        l->scale->data[ch] = (real)scale[ch];
    }
}

void lpips_free(Lpips *l) {
    paramset_free(&l->ps);
    memset(l, 0, sizeof *l);
}

void lpips_init_random(Lpips *l, Rng *rng) {
    for (int i = 0; i < LPIPS_CONVS; i++) {
        init_kaiming_normal_fan_out(l->conv_w[i], rng);
        tensor_fill(l->conv_b[i], 0);
    }
    for (int k = 0; k < LPIPS_SLICES; k++) tensor_fill_uniform(l->lin[k], rng, 0, 2.0 / l->cfg.widths[k]);
}

int lpips_load(Lpips *l, const char *path, I2vError *e) {
    if (!path) path = LPIPS_DEFAULT_PATH;
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        return err_set(e,
                       "%s: cannot open the LPIPS weights (%s).\n"
                       "---> HINT: the perceptual loss needs the VGG16 ImageNet weights and the LPIPS lin layers in one\n"
                       "     safetensors file. Obtain `vgg.pth` (LPIPS v0.1 'vgg' lin layers, md5 d507d7349b931f0638a25a48a722f98a,\n"
                       "     from richzhang/PerceptualSimilarity: lpips/weights/v0.1/vgg.pth) and torchvision's\n"
                       "     `vgg16-397923af.pth` (download.pytorch.org/models/vgg16-397923af.pth), then run\n"
                       "         python3 tools/convert_official.py lpips --lin vgg.pth --vgg vgg16-397923af.pth --out %s",
                       path, strerror(errno), path);
    }
    fclose(fp);
    StLoadOpts opts = {NULL, 1, 1};   /* strict; other tensors in the file are ignored */
    int n = st_load_paramset_file(path, &l->ps, &opts, e);
    return n < 0 ? -1 : 0;
}

int lpips_open(Lpips *l, const char *path, I2vError *e) {
    LpipsConfig cfg = lpips_config_vgg16();
    lpips_build(l, &cfg);
    if (lpips_load(l, path, e)) {
        lpips_free(l);
        return -1;
    }
    return 0;
}

/* vgg16.forward: the five slices, each ending at a ReLU. x (N, 3, H, W) scaled -> feats[k] (N, C_k, H_k, W_k)
 * with H_k = H / 2^k (max pooling 2x2, stride 2, floor). */
static void vgg_features(Ctx *c, const Lpips *l, Tensor *x, Tensor *feats[LPIPS_SLICES]) {
    Tensor *h = x;
    for (int i = 0; i < LPIPS_CONVS; i++) {
        int k = vgg_slice[i];
        if (i > 0 && vgg_slice[i - 1] != k) h = t_maxpool2d(c, h, DIMS(2, 2), DIMS(2, 2), DIMS(0, 0));
        h = t_relu(c, t_conv2d(c, h, l->conv_w[i], l->conv_b[i], DIMS(1, 1), DIMS(1, 1)));
        if (i == LPIPS_CONVS - 1 || vgg_slice[i + 1] != k) feats[k] = h;
    }
}

/* normalize_tensor: f / (sqrt(sum_c f^2) + 1e-10), f (N, C, H, W).
 * i2v adds 1e-20 under the square root: the value is unchanged (the sum is 0 only where f is 0, which then
 * stays 0), but a pixel whose features are all zero gets a zero gradient instead of PyTorch's 0 * inf = NaN. */
static Tensor *normalize_channels(Ctx *c, Tensor *f) {
    Tensor *norm = t_sqrt(c, t_add_scalar(c, t_sum(c, t_square(c, f), 1u << 1, 1), (real)1e-20));
    return t_div(c, f, t_add_scalar(c, norm, (real)1e-10));
}

/* LPIPS.forward */
Tensor *lpips_forward(Ctx *c, Lpips *l, Tensor *x, Tensor *y, Rng *rng) {
    I2V_ASSERT(x->ndim == 4 && x->shape[1] == 3 && shape_equal(x, y), "LPIPS: x and y must be (N, 3, H, W) alike");
    /* ScalingLayer: (inp - shift) / scale */
    Tensor *xs = t_div(c, t_sub(c, x, l->shift), l->scale);
    Tensor *ys = t_div(c, t_sub(c, y, l->shift), l->scale);
    Tensor *fx[LPIPS_SLICES], *fy[LPIPS_SLICES];
    vgg_features(c, l, xs, fx);
    vgg_features(c, l, ys, fy);
    Tensor *val = NULL;
    for (int k = 0; k < LPIPS_SLICES; k++) {
        Tensor *d = t_square(c, t_sub(c, normalize_channels(c, fx[k]), normalize_channels(c, fy[k])));
        /* NetLinLayer: Dropout() (p = 0.5, active in training mode), Conv2d(C_k, 1, 1, bias=False) */
        if (l->dropout && c->training) {
            I2V_ASSERT(rng, "LPIPS: dropout in training mode needs a random generator");
            d = t_dropout(c, d, (real)0.5, rng);
        }
        Tensor *r = t_conv2d(c, d, l->lin[k], NULL, DIMS(1, 1), DIMS(0, 0));
        r = t_mean(c, r, (1u << 2) | (1u << 3), 1);   /* spatial_average, keepdim: (N, 1, 1, 1) */
        val = val ? t_add(c, val, r) : r;
    }
    return val;
}
