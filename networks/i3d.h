/* i3d.h: the Inflated 3D ConvNet (Carreira & Zisserman 2017: Inception-v1 inflated to 3-D) in the two
 * PyTorch versions the official metric code runs.
 *
 *   I3D_PORT       the PyTorch port of DeepMind's Kinetics-400 I3D (hassony2/kinetics_i3d_pytorch, copied
 *                  into the official metrics/PyTorch_FVD/I3D.py; weights model_rgb.pth). BatchNorm eps 1e-3.
 *                  "SAME" padding fixed per layer from kernel and stride (pad max(k - s, 0), the odd element
 *                  after), except along time where the amount follows T mod stride; max pools pad with
 *                  zeros and run in ceil mode. Output: the 1x1x1 logits conv after the average pool, averaged
 *                  over time. Names conv3d_1a_7x7.conv3d.weight, conv3d_1a_7x7.batch3d.running_mean,
 *                  mixed_3b.branch_1.0.conv3d.weight, ..., conv3d_0c_1x1.conv3d.bias.
 *   I3D_PIERGIAJ   piergiaj/pytorch-i3d's InceptionI3d, as the authors trained it on dynamic textures
 *                  (metrics/DTFVD/ID3.py and ID3_32.py; weights I3D_16.pth.tar, I3D_32.pth.tar). BatchNorm
 *                  eps 1e-5 (PyTorch's default). TensorFlow's "SAME" padding computed at run time from the
 *                  input size on every axis (pad = max(k - s, 0) if the size divides by s, else
 *                  max(k - size mod s, 0), the odd element after); max pools pad with zeros, floor mode.
 *                  Output: get_representation, the average pool before the logits. Names
 *                  Conv3d_1a_7x7.conv3d.weight, Conv3d_1a_7x7.bn.weight, Mixed_3b.b1a.conv3d.weight, ...
 *
 * At 224 x 224 and 16 frames both paddings equal TensorFlow's, and the port computes what the TF-Hub module
 * computes with the same weights.
 * Layers (output channels, of the published network): Conv 7^3 s2 (64), MaxPool (1,3,3) s(1,2,2),
 * Conv 1^3 (64), Conv 3^3 (192), MaxPool (1,3,3) s(1,2,2), Mixed_3b, 3c, MaxPool 3^3 s2, Mixed_4b..4f,
 * MaxPool 2^3 s2, Mixed_5b, 5c (1024), AvgPool (avg_t, 7, 7) s1; a Mixed block concatenates the branches
 * 1^3 | 1^3 -> 3^3 | 1^3 -> 3^3 | MaxPool 3^3 s1 -> 1^3. Every conv but the logits is conv (no bias) ->
 * BatchNorm (eval: running statistics) -> ReLU.
 * Dimension legend: N batch, C channels, T frames, H, W; T'', H'', W'' the average pool's output size.
 */
#ifndef I2V_I3D_H
#define I2V_I3D_H

#include "tensor.h"

typedef enum I3dStyle { I3D_PORT, I3D_PIERGIAJ } I3dStyle;

typedef struct I3dConfig {
    I3dStyle style;
    int width_div;     /* 1: the published widths; k > 1: every width / k (at least 1) */
    int num_classes;   /* logits of the port (400); 0: no logits layer (the DTI3D features stop before it) */
    int avg_t;         /* the average pool's kernel along time: 2 (16-frame models), 4 (I3D_32) */
    double eps;        /* BatchNorm eps: 1e-3 (port), 1e-5 (piergiaj) */
} I3dConfig;

/* The Kinetics-400 port (FVD) and the dynamic-texture models for 16 or 32 frames (DTFVD). */
I3dConfig i3d_config_kinetics(int width_div);
I3dConfig i3d_config_dti3d(int frames, int width_div);

/* One conv unit (Unit3D / Unit3Dpy). */
typedef struct I3dUnit {
    int cin, cout, k[3], s[3];
    Tensor *w;                          /* (Cout, Cin, kT, kH, kW) */
    Tensor *b;                          /* (Cout): the logits only; NULL elsewhere */
    Tensor *bn_w, *bn_b, *bn_mean, *bn_var;   /* (Cout) each; NULL for the logits */
} I3dUnit;

#define I3D_MIXED 9

/* An Inception module: branches b0 | b1a -> b1b | b2a -> b2b | maxpool -> b3b. */
typedef struct I3dMixed {
    I3dUnit u[6];                       /* b0, b1a, b1b, b2a, b2b, b3b */
    int cout;                           /* b0 + b1b + b2b + b3b */
} I3dMixed;

typedef struct I3d {
    I3dConfig cfg;
    ParamSet ps;                        /* buffers only (frozen), the weight file's names, state_dict order */
    I3dUnit conv1a, conv2b, conv2c;
    I3dMixed mixed[I3D_MIXED];          /* 3b, 3c, 4b, 4c, 4d, 4e, 4f, 5b, 5c */
    I3dUnit logits;                     /* port only (num_classes > 0) */
} I3d;

/* Declares and allocates every tensor (zero). */
void i3d_build(I3d *m, const I3dConfig *cfg);
void i3d_free(I3d *m);
/* Random weights: convs Kaiming-normal (fan_out), BatchNorm weight U(0.5, 1.5), bias N(0, 0.1), running
 * mean N(0, 0.1), running variance U(0.5, 1.5); the logits' bias N(0, 0.1). */
void i3d_init_random(I3d *m, Rng *r);

/* Eval-mode forward (the caller's context must not be training), x (N, 3, T, H, W):
 *   port      the logits averaged over time, (N, num_classes, H'', W'') ((N, 400, 1, 1) at 224 x 224);
 *   piergiaj  the average pool, (N, 1024 / width_div..., T'', H'', W'').
 * Asserts that the input is large enough for the average pool (T'' >= 1, H'', W'' >= 1). */
Tensor *i3d_forward(Ctx *c, I3d *m, Tensor *x);
/* T'', H'', W'' for an input of T, H, W (0 where the network cannot take that input). */
void i3d_output_size(const I3dConfig *cfg, const int in[3], int out[3]);

#endif
