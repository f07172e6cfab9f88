/* inception.h: pytorch-fid's InceptionV3 for FID (mseitzer/pytorch-fid, copied into the official
 * metrics/FID/inception.py), the network behind the FID of the paper.
 *
 * It is torchvision's Inception3 (num_classes 1008, no aux logits) with the TensorFlow FID graph's
 * differences patched in: the FIDInceptionA and FIDInceptionC blocks and the first InceptionE block
 * average-pool without counting the padding (count_include_pad=False, as TensorFlow does), and the last
 * InceptionE block max-pools where torchvision average-pools. Every conv is BasicConv2d: conv (no bias)
 * -> BatchNorm (eps 1e-3, running statistics) -> ReLU. The features are block 3 of pytorch-fid's
 * InceptionV3: everything up to Mixed_7c, then the global average pool, (N, 2048, 1, 1).
 *   Conv2d_1a_3x3 (32, s2), Conv2d_2a_3x3 (32), Conv2d_2b_3x3 (64, pad 1), MaxPool 3 s2,
 *   Conv2d_3b_1x1 (80), Conv2d_4a_3x3 (192), MaxPool 3 s2,
 *   Mixed_5b, 5c, 5d (FIDInceptionA, pool features 32, 64, 64), Mixed_6a (InceptionB),
 *   Mixed_6b, 6c, 6d, 6e (FIDInceptionC, 7x7 channels 128, 160, 160, 192), Mixed_7a (InceptionD),
 *   Mixed_7b (FIDInceptionE_1), Mixed_7c (FIDInceptionE_2), AdaptiveAvgPool2d(1).
 * Tensor names are torchvision's (pt_inception-2015-12-05-6726825d.pth): Conv2d_1a_3x3.conv.weight,
 * Conv2d_1a_3x3.bn.running_var, Mixed_5b.branch5x5_1.conv.weight, Mixed_7c.branch_pool.bn.bias, ...;
 * the classifier fc.* is not used.
 * Dimension legend: N batch, C channels, H, W image size.
 */
#ifndef I2V_INCEPTION_H
#define I2V_INCEPTION_H

#include "tensor.h"

/* BasicConv2d */
typedef struct IncConv {
    int cin, cout, k[2], s[2], p[2];
    Tensor *w;                                  /* (Cout, Cin, kH, kW) */
    Tensor *bn_w, *bn_b, *bn_mean, *bn_var;     /* (Cout) */
} IncConv;

typedef enum IncBlockType { INC_A, INC_B, INC_C, INC_D, INC_E1, INC_E2 } IncBlockType;

#define INC_MAX_CONVS 10
#define INC_BLOCKS 11

/* One Mixed block: its convs in torchvision's registration order (see inception.c for each type's list). */
typedef struct IncBlock {
    IncBlockType type;
    int nconv;
    IncConv conv[INC_MAX_CONVS];
    int cin, cout;
} IncBlock;

typedef struct Inception {
    int width_div;                              /* 1: the published widths; k > 1: every width / k */
    ParamSet ps;                                /* buffers only (frozen), torchvision's names */
    IncConv stem[5];                            /* Conv2d_1a_3x3, 2a, 2b, 3b_1x1, 4a_3x3 */
    IncBlock block[INC_BLOCKS];                 /* Mixed_5b, 5c, 5d, 6a, 6b, 6c, 6d, 6e, 7a, 7b, 7c */
    int dim;                                    /* output channels of Mixed_7c (2048 published) */
} Inception;

void inception_build(Inception *m, int width_div);
void inception_free(Inception *m);
/* Random weights: convs Kaiming-normal (fan_out), BatchNorm as i3d_init_random. */
void inception_init_random(Inception *m, Rng *r);
/* Eval mode, x (N, 3, H, W) (already resized and in the range the weights expect) -> (N, dim, 1, 1).
 * H and W must be at least 75 (the smallest input every stride-2 layer accepts). */
Tensor *inception_forward(Ctx *c, Inception *m, Tensor *x);

#endif
