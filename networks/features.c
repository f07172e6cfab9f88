/* features.c: the metric feature networks behind one interface (features.h): kinds, loading and checking
 * weight files, each metric's preprocessing, and embedding clips a few at a time.
 *
 * What it is: the glue between raw clips in [-1, 1] and networks/i3d.c, inception.c, vgg16.c, with the
 * preprocessing that the official metric code applies before each network (resize convention, value
 * mapping, frame repetition) written out in one place.
 * What it is not: the networks themselves, or any statistic over the features (program layer).
 * Dimension legend: n clips or images, T frames, H, W input size, S = 224 or 299 the network's input size,
 * D feature dimension.
 */
#include "networks/features.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/safetensors.h"
#include "kernels/resize.h"
#include "networks/i3d.h"
#include "networks/inception.h"
#include "networks/vgg16.h"

static const char *const kind_names[FEAT_NKINDS] = {"i3d", "i3d-monitor", "dti3d16", "dti3d32", "inception", "vgg16"};

/* The published file each kind loads and the converter that makes its safetensors, for messages. */
static const char *const kind_source[FEAT_NKINDS] = {
    "the Kinetics-400 I3D port model_rgb.pth: python3 tools/convert_metric_nets.py i3d model_rgb.pth OUT",
    "the Kinetics-400 I3D port model_rgb.pth: python3 tools/convert_metric_nets.py i3d model_rgb.pth OUT",
    "the authors' I3D_16.pth.tar: python3 tools/convert_metric_nets.py dti3d I3D_16.pth.tar OUT",
    "the authors' I3D_32.pth.tar: python3 tools/convert_metric_nets.py dti3d I3D_32.pth.tar OUT",
    "pytorch-fid's pt_inception-2015-12-05-6726825d.pth: python3 tools/convert_metric_nets.py inception "
    "pt_inception-2015-12-05-6726825d.pth OUT",
    "torchvision's vgg16-397923af.pth: python3 tools/convert_metric_nets.py vgg16 vgg16-397923af.pth OUT",
};

const char *feature_kind_name(FeatureKind kind) {
    I2V_ASSERT((unsigned)kind < FEAT_NKINDS, "feature kind %d", (int)kind);
    return kind_names[kind];
}

int feature_kind_parse(const char *name, FeatureKind *kind, I2vError *e) {
    for (int k = 0; k < FEAT_NKINDS; k++)
        if (!strcmp(name, kind_names[k])) {
            *kind = (FeatureKind)k;
            return 0;
        }
    if (!strcmp(name, "i3d_monitor")) {
        *kind = FEAT_I3D_MONITOR;
        return 0;
    }
    return err_set(e, "unknown feature network '%s': expected one of i3d, i3d-monitor, dti3d16, dti3d32, inception, "
                      "vgg16", name);
}

int feature_dim(FeatureKind kind) {
    static const int dims[FEAT_NKINDS] = {400, 400, 1024, 1024, 2048, 0};
    I2V_ASSERT((unsigned)kind < FEAT_NKINDS, "feature kind %d", (int)kind);
    return dims[kind];
}

int feature_is_video(FeatureKind kind) { return kind == FEAT_I3D || kind == FEAT_I3D_MONITOR || kind == FEAT_DTI3D16 || kind == FEAT_DTI3D32; }

int feature_net_dim(const FeatureNet *f) { return f->dim; }

static ParamSet *net_params(FeatureNet *f) {
    return f->i3d ? &f->i3d->ps : f->inception ? &f->inception->ps : &f->vgg->ps;
}

/* Declares the network of `kind` at width_div, every tensor zero. */
static void net_build(FeatureNet *f, FeatureKind kind, int width_div) {
    I2V_ASSERT((unsigned)kind < FEAT_NKINDS && width_div >= 1, "feature net: kind %d, width divisor %d", (int)kind,
               width_div);
    memset(f, 0, sizeof *f);
    f->kind = kind;
    f->width_div = width_div;
    if (feature_is_video(kind)) {
        I3dConfig cfg = kind == FEAT_I3D || kind == FEAT_I3D_MONITOR ? i3d_config_kinetics(width_div)
                                                                     : i3d_config_dti3d(kind == FEAT_DTI3D32 ? 32 : 16,
                                                                                        width_div);
        f->i3d = xmalloc(sizeof *f->i3d);
        i3d_build(f->i3d, &cfg);
        f->dim = cfg.num_classes ? cfg.num_classes : f->i3d->mixed[I3D_MIXED - 1].cout;
    } else if (kind == FEAT_INCEPTION) {
        f->inception = xmalloc(sizeof *f->inception);
        inception_build(f->inception, width_div);
        f->dim = f->inception->dim;
    } else {
        f->vgg = xmalloc(sizeof *f->vgg);
        vgg16_build(f->vgg, width_div);
        f->dim = 0;
    }
    f->map_to_unit = kind == FEAT_I3D_MONITOR;
}

void feature_net_free(FeatureNet *f) {
    if (f->i3d) i3d_free(f->i3d);
    if (f->inception) inception_free(f->inception);
    if (f->vgg) vgg16_free(f->vgg);
    free(f->i3d);
    free(f->inception);
    free(f->vgg);
    memset(f, 0, sizeof *f);
}

int feature_net_load_width(FeatureNet *f, FeatureKind kind, int width_div, const char *path, I2vError *e) {
    if ((unsigned)kind >= FEAT_NKINDS || width_div < 1)
        return err_set(e, "%s: feature network kind %d, width divisor %d", path, (int)kind, width_div);
    net_build(f, kind, width_div);
    StFile file;
    if (st_open(&file, path, e)) {
        size_t len = e ? strlen(e->msg) : 0;
        if (e) snprintf(e->msg + len, sizeof e->msg - len, "\n---> HINT: %s needs a safetensors file converted from %s",
                 kind_names[kind], kind_source[kind]);
        feature_net_free(f);
        return -1;
    }
    ParamSet *ps = net_params(f);
    /* A file of another network shares no names with this one: say so instead of listing every name. */
    const char *first = ps->t[0]->name;
    if (!st_find(&file, first)) {
        err_set(e, "%s: not weights of the %s network (no tensor %s)\n---> HINT: %s needs a file converted from %s",
                path, kind_names[kind], first, kind_names[kind], kind_source[kind]);
        st_close(&file);
        feature_net_free(f);
        return -1;
    }
    StLoadOpts opts = {NULL, 1, 1};   /* every tensor of the net; unused ones in the file are ignored */
    int n = st_load_paramset(&file, ps, &opts, e);
    st_close(&file);
    if (n < 0) {
        feature_net_free(f);
        return -1;
    }
    return 0;
}

int feature_net_load(FeatureNet *f, FeatureKind kind, const char *path, I2vError *e) {
    return feature_net_load_width(f, kind, 1, path, e);
}

void feature_net_init_random(FeatureNet *f, FeatureKind kind, int width_div, uint64_t seed) {
    net_build(f, kind, width_div);
    Rng r;
    rng_seed(&r, seed);
    if (f->i3d) i3d_init_random(f->i3d, &r);
    if (f->inception) inception_init_random(f->inception, &r);
    if (f->vgg) vgg16_init_random(f->vgg, &r);
}

int feature_net_save(const FeatureNet *f, const char *path, I2vError *e) {
    char width[16];
    snprintf(width, sizeof width, "%d", f->width_div);
    StMeta meta[2] = {{"network", kind_names[f->kind]}, {"width_div", width}};
    return st_save_paramset(path, net_params((FeatureNet *)f), NULL, 2, meta, e);
}

/* ---- input checks ------------------------------------------------------------------------------------ */

int feature_input_check(FeatureKind kind, int T, int H, int W, I2vError *e) {
    if ((unsigned)kind >= FEAT_NKINDS) return err_set(e, "feature network kind %d", (int)kind);
    if (H < 1 || W < 1) return err_set(e, "frames of %d x %d pixels: expected at least 1 x 1", H, W);
    switch (kind) {
    case FEAT_I3D:
    case FEAT_I3D_MONITOR:
        if (T < 9) return err_set(e, "%d frames per clip: %s needs at least 9", T, kind_names[kind]);
        break;
    case FEAT_DTI3D16:
        if (T < 3) return err_set(e, "%d frames per clip: dti3d16 needs at least 3 (it repeats the clip 3 times)", T);
        break;
    case FEAT_DTI3D32:
        if (T != 32) return err_set(e, "%d frames per clip: dti3d32 takes exactly 32", T);
        break;
    default:
        if (T > 1) return err_set(e, "%d frames: %s embeds images, pass (n, 3, H, W) frames", T, kind_names[kind]);
    }
    return 0;
}

/* ---- preprocessing ------------------------------------------------------------------------------------ */

/* The network input's frame count for a clip of T frames. */
static int net_frames(FeatureKind kind, int T) {
    if (kind == FEAT_DTI3D16) return 3 * T < 16 ? 3 * T : 16;   /* .repeat(1, 3, 1, 1, 1)[:, :16] */
    return feature_is_video(kind) ? T : 0;
}

Tensor *feature_net_preprocess(FeatureNet *f, Ctx *c, const real *x, int n, int T, int H, int W) {
    FeatureKind kind = f->kind;
    I2vError err;
    I2V_ASSERT(!feature_input_check(kind, T, H, W, &err), "%s: %s", kind_names[kind], err.msg);
    I2V_ASSERT(!c->dry, "feature_net_preprocess: not in a dry run");
    int video = feature_is_video(kind), S = kind == FEAT_INCEPTION ? 299 : 224;
    int Tin = video ? T : 1, Tout = video ? net_frames(kind, T) : 1;
    size_t nplanes = (size_t)n * Tin * 3, in_sz = (size_t)H * W, out_sz = (size_t)S * S;
    /* the input planes (n, T, 3) of (H, W), mapped before the resize where the metric maps first */
    const real *src = x;
    if (kind == FEAT_I3D || kind == FEAT_VGG16) {
        Tensor *pre = tensor_new(c, 3, DIMS((int)nplanes, H, W));
        static const double mean[3] = {0.485, 0.456, 0.406}, std[3] = {0.229, 0.224, 0.225};
        for (size_t p = 0; p < nplanes; p++) {
            int ch = (int)(p % 3);
            const real *a = x + p * in_sz;
            real *b = pre->data + p * in_sz;
            if (kind == FEAT_I3D) /* FVD: ((x + 1) * 127.5) into the TF graph's [0, 255] */
                for (size_t i = 0; i < in_sz; i++) b[i] = (a[i] + (real)1) * (real)127.5;
            else /* VGG score: (x + 1) / 2, then kornia's Normalize (x - mean) / std */
                for (size_t i = 0; i < in_sz; i++)
                    b[i] = ((a[i] + (real)1) / (real)2 - (real)mean[ch]) / (real)std[ch];
        }
        src = pre->data;
    }
    ResizeMode mode = kind == FEAT_I3D ? RESIZE_TF1
                      : kind == FEAT_INCEPTION || kind == FEAT_VGG16 ? RESIZE_HALF_PIXEL
                                                                     : RESIZE_ALIGN_CORNERS;
    Tensor *rs = tensor_new(c, 3, DIMS((int)nplanes, S, S));
    resize_bilinear_mode(rs->data, src, nplanes, H, W, S, S, mode);
    if (!video) {
        Tensor *y = tensor_new(c, 4, DIMS(n, 3, S, S));
        memcpy(y->data, rs->data, nplanes * out_sz * sizeof(real));
        return y;
    }
    /* (n, T, 3, S, S) -> (n, 3, T', S, S), with the frame repetition of dti3d16 and the value maps after
     * the resize: FVD's 2 y / 255 - 1, the monitor's (y + 1) / 2 */
    Tensor *y = tensor_new(c, 5, DIMS(n, 3, Tout, S, S));
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < 3; ch++)
            for (int t = 0; t < Tout; t++) {
                const real *a = rs->data + (((size_t)i * Tin + (size_t)(t % Tin)) * 3 + ch) * out_sz;
                real *b = y->data + (((size_t)i * 3 + ch) * Tout + t) * out_sz;
                if (kind == FEAT_I3D)
                    for (size_t k = 0; k < out_sz; k++) b[k] = (real)2 * a[k] / (real)255 - (real)1;
                else if (kind == FEAT_I3D_MONITOR && f->map_to_unit)
                    for (size_t k = 0; k < out_sz; k++) b[k] = (a[k] + (real)1) / (real)2;
                else
                    memcpy(b, a, out_sz * sizeof(real));
            }
    return y;
}

/* ---- forward and embedding ---------------------------------------------------------------------------- */

Tensor *feature_net_forward(FeatureNet *f, Ctx *c, Tensor *x) {
    int grad = c->grad_enabled, training = c->training;
    c->grad_enabled = 0;
    c->training = 0;
    Tensor *y;
    if (f->i3d) {
        y = i3d_forward(c, f->i3d, x);
    } else if (f->inception) {
        y = inception_forward(c, f->inception, x);
    } else {
        Tensor *maps[VGG16_SLICES];
        vgg16_forward(c, f->vgg, x, maps);
        y = maps[VGG16_SLICES - 1];
    }
    c->grad_enabled = grad;
    c->training = training;
    return y;
}

void feature_net_embed(FeatureNet *f, Ctx *c, const real *x, int n, int T, int H, int W, real *out) {
    I2V_ASSERT(f->kind != FEAT_VGG16, "feature_net_embed: vgg16 gives feature maps (feature_net_vgg_layers)");
    I2V_ASSERT(!c->dry, "feature_net_embed: not in a dry run");
    int video = feature_is_video(f->kind);
    size_t per = (size_t)(video ? T : 1) * 3 * H * W;
    /* a few clips at a time bound the activation memory (one I3D clip at 224 x 224 x 16 needs hundreds of MB) */
    int group = video ? 1 : 4;
    for (int i = 0; i < n; i += group) {
        int g = n - i < group ? n - i : group;
        Tensor *in = feature_net_preprocess(f, c, x + (size_t)i * per, g, T, H, W);
        Tensor *y = feature_net_forward(f, c, in);
        I2V_ASSERT(y->numel == (size_t)g * f->dim, "%s: the network gives %zu values for %d clips, not %d each "
                   "(input larger than %dx%d?)", kind_names[f->kind], y->numel, g, f->dim, 224, 224);
        memcpy(out + (size_t)i * f->dim, y->data, y->numel * sizeof(real));
        ctx_reset(c);
    }
}

void feature_net_vgg_layers(FeatureNet *f, Ctx *c, const real *x, int n, int H, int W, Tensor *maps[5]) {
    I2V_ASSERT(f->kind == FEAT_VGG16 && f->vgg, "feature_net_vgg_layers: not a vgg16 network");
    int grad = c->grad_enabled, training = c->training;
    c->grad_enabled = 0;
    c->training = 0;
    Tensor *in = feature_net_preprocess(f, c, x, n, 0, H, W);
    vgg16_forward(c, f->vgg, in, maps);
    c->grad_enabled = grad;
    c->training = training;
}
