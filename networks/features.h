/* features.h: the feature networks behind the evaluation metrics, behind one interface.
 *
 * What it is: loading the published weights of each metric network (converted to safetensors by the
 * scripts in tools/), and embedding raw clips or frames with the preprocessing of the metric that uses the
 * network, so that a caller passes videos exactly as the data sets and the samplers produce them:
 * (n, T, 3, H, W) values in [-1, 1], any H and W.
 * What it is not: the metrics themselves (Frechet distance, KID, diversity scores, clip assembly and batch
 * rules live in the program layer), nor a downloader: the weight files are published elsewhere (see
 * docs/metrics.md).
 *
 *   kind           network (weights)                               metric          preprocessing inside embed      D
 *   i3d            Kinetics-400 I3D (PyTorch port model_rgb.pth,   FVD (paper)     (x+1) 127.5, TF1 resize_bilinear 400
 *                  or the TF-Hub module converted to its names)                    to 224, 2 y / 255 - 1
 *   i3d-monitor    the same network and weights                    training-time   bilinear align_corners=True to   400
 *                                                                  FVD monitor     224, then (y + 1) / 2 into [0, 1]
 *   dti3d16        the authors' dynamic-texture I3D, 16 frames     DTFVD           align_corners=True to 224, the   1024
 *                  (I3D_16.pth.tar)                                                clip repeated 3x along time and
 *                                                                                  cut to its first 16 frames
 *   dti3d32        the same, 32 frames (I3D_32.pth.tar)            DTFVD, T > 16   align_corners=True to 224,       1024
 *                                                                                  exactly 32 frames
 *   inception      pytorch-fid's InceptionV3 with the TF FID       FID             bilinear align_corners=False to  2048
 *                  weights (pt_inception-2015-12-05-*.pth)                         299, values left in [-1, 1]
 *   vgg16          torchvision's ImageNet VGG16 (vgg16-*.pth)       VGG diversity   (x + 1) / 2, ImageNet mean/std   (maps)
 *                                                                                  normalisation, then bilinear
 *                                                                                  align_corners=False to 224
 *
 * Outputs: i3d, i3d-monitor: the 400 Kinetics logits averaged over time; dti3d16/32: the 1024 features of
 * the average pool before the logits; inception: the 2048 globally average-pooled features of the last
 * block; vgg16: no vector but five feature maps (feature_net_vgg_layers).
 *
 * Reduced widths: every channel count of the real network divided by width_div (integer division, at least
 * 1; input channels follow from the reduced outputs of the layer before) gives a stand-in with the same
 * tensor names, layer structure and preprocessing, for tests and for the program's tests of the metrics
 * (tools/make_features_reference.py builds the same stand-ins in PyTorch). width_div = 1 is the published
 * network. The output dimension D does not change with width_div for the I3D kinds (the logit count stays
 * 400) and does for the others (1024 / width_div, 2048 / width_div: use feature_net_dim).
 *
 * Dimension legend: n clips or images, T frames, H, W input size, D feature dimension.
 */
#ifndef I2V_FEATURES_H
#define I2V_FEATURES_H

#include <stdint.h>

#include "base/base.h"
#include "tensor.h"

typedef enum FeatureKind {
    FEAT_I3D,          /* Kinetics-400 I3D with the paper's FVD preprocessing */
    FEAT_I3D_MONITOR,  /* the same network with the official training-time monitor's preprocessing */
    FEAT_DTI3D16,      /* dynamic-texture I3D, 16 frames (DTFVD) */
    FEAT_DTI3D32,      /* dynamic-texture I3D, 32 frames */
    FEAT_INCEPTION,    /* pytorch-fid InceptionV3 (FID) */
    FEAT_VGG16,        /* torchvision VGG16 features (VGG diversity score) */
    FEAT_NKINDS
} FeatureKind;

/* The command-line spelling: "i3d", "i3d-monitor", "dti3d16", "dti3d32", "inception", "vgg16". */
const char *feature_kind_name(FeatureKind kind);
/* Parses that spelling (also "i3d_monitor"); returns 0, or -1 with a message listing the valid names. */
int feature_kind_parse(const char *name, FeatureKind *kind, I2vError *e);
/* D of the published network: 400, 400, 1024, 1024, 2048; 0 for vgg16 (it gives maps, not a vector). */
int feature_dim(FeatureKind kind);
/* 1 for the video networks (the I3D kinds), 0 for the image networks (inception, vgg16). */
int feature_is_video(FeatureKind kind);

typedef struct I3d I3d;              /* networks/i3d.h */
typedef struct Inception Inception;  /* networks/inception.h */
typedef struct Vgg16 Vgg16;          /* networks/vgg16.h */

typedef struct FeatureNet {
    FeatureKind kind;
    int width_div;       /* 1: the published network; > 1: a reduced-width stand-in */
    int dim;             /* D of this net (feature_dim(kind) scaled by width_div where it scales) */
    I3d *i3d;            /* the network of `kind`; the other two are NULL */
    Inception *inception;
    Vgg16 *vgg;
    /* i3d-monitor only, 1 after loading: map the resized clips to [0, 1] by (y + 1) / 2. The official
     * monitor maps only when the minimum of the whole set it embeds is negative (always the case for
     * videos in [-1, 1] in practice); a caller that embeds a set with no negative value sets this to 0
     * to reproduce that branch exactly. */
    int map_to_unit;
} FeatureNet;

/* Loads a network from a safetensors file with the weight file's own tensor names (tools/convert_*.py
 * make such files from the published ones). Every tensor the network needs must be in the file with its
 * exact shape: a missing tensor, a mis-shaped one (the file of another network, or of another width) is
 * an error naming the file, the tensor and both shapes. Tensors the network does not use (num_batches_
 * tracked, the classifiers the features stop before) are ignored. Returns 0, or -1 with f left empty. */
int feature_net_load(FeatureNet *f, FeatureKind kind, const char *weights_path, I2vError *e);
/* The same for a reduced-width stand-in (width_div >= 1). */
int feature_net_load_width(FeatureNet *f, FeatureKind kind, int width_div, const char *weights_path, I2vError *e);
/* A network of the given width with random weights (deterministic in seed), for tests and benchmarks:
 * convolutions Kaiming-normal, batch-norm statistics and affine parameters drawn around their neutral
 * values so that every layer matters. */
void feature_net_init_random(FeatureNet *f, FeatureKind kind, int width_div, uint64_t seed);
/* Writes the network's tensors under their names (what feature_net_load reads back). */
int feature_net_save(const FeatureNet *f, const char *path, I2vError *e);
void feature_net_free(FeatureNet *f);
/* D of this net (f->dim). */
int feature_net_dim(const FeatureNet *f);

/* Checks that clips of T frames of H x W pixels can be embedded by this kind: the I3D kinds need T >= 9
 * (their time axis is pooled down by 8 and then averaged over windows of 2 frames), dti3d16 T >= 3 (the
 * clip is repeated 3 times), dti3d32 exactly T = 32, the image nets T = 0 or 1 (callers pass frames as
 * images); H, W >= 1 everywhere. Returns 0, or -1 with a message saying what was expected (the caller
 * prefixes the file name). feature_net_embed asserts the same. */
int feature_input_check(FeatureKind kind, int T, int H, int W, I2vError *e);

/* Embeds n clips: x (n, T, 3, H, W) for the video kinds, (n, 3, H, W) for the image kinds (T = 0 or 1),
 * values in [-1, 1] -> out (n, D). The net applies its own preprocessing (table above). No gradient is
 * recorded; the clips go through the network a few at a time and c is reset (ctx_reset) after each group,
 * so c must hold nothing the caller still needs. Deterministic for a given thread count, and each clip's
 * features do not depend on the other clips of the call. Not for vgg16. */
void feature_net_embed(FeatureNet *f, Ctx *c, const real *x, int n, int T, int H, int W, real *out);

/* VGG16 only: images x (n, 3, H, W) in [-1, 1] -> (x + 1) / 2, ImageNet normalisation ((v - mean_c) /
 * std_c with mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225)), bilinear resize (align_corners
 * False) to 224 x 224, then the VGG16 features at relu1_2, relu2_2, relu3_3, relu4_3, relu5_3:
 * maps[k] (n, C_k, 224 / 2^k, 224 / 2^k), C = 64, 128, 256, 512, 512 (divided by width_div), arena
 * tensors of c valid until the caller resets it. No gradient is recorded. */
void feature_net_vgg_layers(FeatureNet *f, Ctx *c, const real *x, int n, int H, int W, Tensor *maps[5]);

/* ---- lower level, for tests and for callers that preprocess themselves ---------------------------- */
/* The network input of feature_net_embed as an arena tensor of c: (n, 3, T', 224, 224) for the I3D kinds
 * (T' = T, or min(3 T, 16) for dti3d16), (n, 3, 299, 299) for inception, (n, 3, 224, 224) for vgg16. */
Tensor *feature_net_preprocess(FeatureNet *f, Ctx *c, const real *x, int n, int T, int H, int W);
/* The network on an already preprocessed input of any size the network accepts, in no-grad mode, as its
 * PyTorch module returns it: i3d kinds (n, 400, H'', W'') (the port's logits averaged over time, with the
 * unit axes that the port squeezes kept: (n, 400, 1, 1) at 224 x 224); dti3d kinds the
 * final average pool (n, 1024, T'', H'', W''), which is (n, 1024, 1, 1, 1) at 224 x 224 and 16 (32)
 * frames (get_representation squeezes the unit axes; the values are the same); inception (n, 2048, 1, 1);
 * vgg16 relu5_3. */
Tensor *feature_net_forward(FeatureNet *f, Ctx *c, Tensor *x);

#endif
