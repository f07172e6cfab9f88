/* inception.c: pytorch-fid's FID InceptionV3 (inception.h) from tape ops, eval mode.
 *
 * What it is: each Mixed block as a table of its BasicConv2d layers (torchvision's attribute names, inputs,
 * widths, kernels) and the list of outputs it concatenates, so one loop runs every block type; the stem;
 * the global average pool of pytorch-fid's block 3.
 * What it is not: the resize to 299 x 299 or any value mapping (networks/features.c), the classifier
 * (fc) or the aux logits (absent in the FID network).
 * Dimension legend: N batch, C channels, H, W image size.
 */
#include "networks/inception.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ops/conv.h"
#include "ops/norm.h"
#include "ops/pool_ext.h"

/* One BasicConv2d of a block. from: the conv whose output it reads, FROM_X the block input, FROM_POOL
 * the block's pooled input. cout 0: the block's parameter (pool_features of A, channels_7x7 of C). */
enum { FROM_X = -1, FROM_POOL = -2 };
typedef struct ConvSpec {
    const char *name;
    int from, cout, kh, kw, s, ph, pw;
} ConvSpec;

/* FIDInceptionA (torchvision InceptionA's layers) */
static const ConvSpec spec_a[] = {
    {"branch1x1", FROM_X, 64, 1, 1, 1, 0, 0},      {"branch5x5_1", FROM_X, 48, 1, 1, 1, 0, 0},
    {"branch5x5_2", 1, 64, 5, 5, 1, 2, 2},         {"branch3x3dbl_1", FROM_X, 64, 1, 1, 1, 0, 0},
    {"branch3x3dbl_2", 3, 96, 3, 3, 1, 1, 1},      {"branch3x3dbl_3", 4, 96, 3, 3, 1, 1, 1},
    {"branch_pool", FROM_POOL, 0, 1, 1, 1, 0, 0},
};
/* InceptionB */
static const ConvSpec spec_b[] = {
    {"branch3x3", FROM_X, 384, 3, 3, 2, 0, 0},     {"branch3x3dbl_1", FROM_X, 64, 1, 1, 1, 0, 0},
    {"branch3x3dbl_2", 1, 96, 3, 3, 1, 1, 1},      {"branch3x3dbl_3", 2, 96, 3, 3, 2, 0, 0},
};
/* FIDInceptionC */
static const ConvSpec spec_c[] = {
    {"branch1x1", FROM_X, 192, 1, 1, 1, 0, 0},     {"branch7x7_1", FROM_X, 0, 1, 1, 1, 0, 0},
    {"branch7x7_2", 1, 0, 1, 7, 1, 0, 3},          {"branch7x7_3", 2, 192, 7, 1, 1, 3, 0},
    {"branch7x7dbl_1", FROM_X, 0, 1, 1, 1, 0, 0},  {"branch7x7dbl_2", 4, 0, 7, 1, 1, 3, 0},
    {"branch7x7dbl_3", 5, 0, 1, 7, 1, 0, 3},       {"branch7x7dbl_4", 6, 0, 7, 1, 1, 3, 0},
    {"branch7x7dbl_5", 7, 192, 1, 7, 1, 0, 3},     {"branch_pool", FROM_POOL, 192, 1, 1, 1, 0, 0},
};
/* InceptionD */
static const ConvSpec spec_d[] = {
    {"branch3x3_1", FROM_X, 192, 1, 1, 1, 0, 0},   {"branch3x3_2", 0, 320, 3, 3, 2, 0, 0},
    {"branch7x7x3_1", FROM_X, 192, 1, 1, 1, 0, 0}, {"branch7x7x3_2", 2, 192, 1, 7, 1, 0, 3},
    {"branch7x7x3_3", 3, 192, 7, 1, 1, 3, 0},      {"branch7x7x3_4", 4, 192, 3, 3, 2, 0, 0},
};
/* FIDInceptionE_1 and FIDInceptionE_2 (torchvision InceptionE's layers) */
static const ConvSpec spec_e[] = {
    {"branch1x1", FROM_X, 320, 1, 1, 1, 0, 0},     {"branch3x3_1", FROM_X, 384, 1, 1, 1, 0, 0},
    {"branch3x3_2a", 1, 384, 1, 3, 1, 0, 1},       {"branch3x3_2b", 1, 384, 3, 1, 1, 1, 0},
    {"branch3x3dbl_1", FROM_X, 448, 1, 1, 1, 0, 0}, {"branch3x3dbl_2", 4, 384, 3, 3, 1, 1, 1},
    {"branch3x3dbl_3a", 5, 384, 1, 3, 1, 0, 1},    {"branch3x3dbl_3b", 5, 384, 3, 1, 1, 1, 0},
    {"branch_pool", FROM_POOL, 192, 1, 1, 1, 0, 0},
};

/* What each block type concatenates, in order: conv indices, or CAT_POOL for the max-pooled input
 * (B and D pass it through); -1 ends the list. */
enum { CAT_POOL = 100 };
static const int cat_a[] = {0, 2, 5, 6, -1}, cat_b[] = {0, 3, CAT_POOL, -1}, cat_c[] = {0, 3, 8, 9, -1},
                 cat_d[] = {1, 5, CAT_POOL, -1}, cat_e[] = {0, 2, 3, 6, 7, 8, -1};

typedef struct BlockType {
    const ConvSpec *spec;
    int nconv;
    const int *cat;
} BlockType;

static const BlockType block_types[] = {
    [INC_A] = {spec_a, 7, cat_a},  [INC_B] = {spec_b, 4, cat_b},  [INC_C] = {spec_c, 10, cat_c},
    [INC_D] = {spec_d, 6, cat_d},  [INC_E1] = {spec_e, 9, cat_e}, [INC_E2] = {spec_e, 9, cat_e},
};

/* The Mixed blocks of fid_inception_v3: name, type, parameter (pool_features / channels_7x7). */
static const struct {
    const char *name;
    IncBlockType type;
    int param;
} blocks[INC_BLOCKS] = {
    {"Mixed_5b", INC_A, 32},  {"Mixed_5c", INC_A, 64},  {"Mixed_5d", INC_A, 64},  {"Mixed_6a", INC_B, 0},
    {"Mixed_6b", INC_C, 128}, {"Mixed_6c", INC_C, 160}, {"Mixed_6d", INC_C, 160}, {"Mixed_6e", INC_C, 192},
    {"Mixed_7a", INC_D, 0},   {"Mixed_7b", INC_E1, 0},  {"Mixed_7c", INC_E2, 0},
};

static int reduced(int width, int div) { return width / div > 0 ? width / div : 1; }

static void conv_declare(ParamSet *ps, IncConv *cv, const char *prefix, int cin, int cout, int kh, int kw, int s,
                         int ph, int pw) {
    char name[160];
    cv->cin = cin;
    cv->cout = cout;
    cv->k[0] = kh;
    cv->k[1] = kw;
    cv->s[0] = cv->s[1] = s;
    cv->p[0] = ph;
    cv->p[1] = pw;
    snprintf(name, sizeof name, "%s.conv.weight", prefix);
    cv->w = buffer_new(ps, name, DT_REAL, 4, DIMS(cout, cin, kh, kw));
    const char *part[4] = {"weight", "bias", "running_mean", "running_var"};
    Tensor **dst[4] = {&cv->bn_w, &cv->bn_b, &cv->bn_mean, &cv->bn_var};
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "%s.bn.%s", prefix, part[i]);
        *dst[i] = buffer_new(ps, name, DT_REAL, 1, DIMS(cout));
    }
}

void inception_build(Inception *m, int width_div) {
    memset(m, 0, sizeof *m);
    I2V_ASSERT(width_div >= 1, "inception: width divisor %d", width_div);
    m->width_div = width_div;
    paramset_init(&m->ps);
    ParamSet *ps = &m->ps;
    int d = width_div;
    /* Inception3.__init__'s stem */
    conv_declare(ps, &m->stem[0], "Conv2d_1a_3x3", 3, reduced(32, d), 3, 3, 2, 0, 0);
    conv_declare(ps, &m->stem[1], "Conv2d_2a_3x3", m->stem[0].cout, reduced(32, d), 3, 3, 1, 0, 0);
    conv_declare(ps, &m->stem[2], "Conv2d_2b_3x3", m->stem[1].cout, reduced(64, d), 3, 3, 1, 1, 1);
    conv_declare(ps, &m->stem[3], "Conv2d_3b_1x1", m->stem[2].cout, reduced(80, d), 1, 1, 1, 0, 0);
    conv_declare(ps, &m->stem[4], "Conv2d_4a_3x3", m->stem[3].cout, reduced(192, d), 3, 3, 1, 0, 0);
    int cin = m->stem[4].cout;
    char prefix[96];
    for (int b = 0; b < INC_BLOCKS; b++) {
        IncBlock *blk = &m->block[b];
        const BlockType *bt = &block_types[blocks[b].type];
        blk->type = blocks[b].type;
        blk->nconv = bt->nconv;
        blk->cin = cin;
        for (int i = 0; i < bt->nconv; i++) {
            const ConvSpec *sp = &bt->spec[i];
            int from = sp->from < 0 ? cin : blk->conv[sp->from].cout;
            int cout = reduced(sp->cout ? sp->cout : blocks[b].param, d);
            snprintf(prefix, sizeof prefix, "%s.%s", blocks[b].name, sp->name);
            conv_declare(ps, &blk->conv[i], prefix, from, cout, sp->kh, sp->kw, sp->s, sp->ph, sp->pw);
        }
        blk->cout = 0;
        for (const int *k = bt->cat; *k >= 0; k++) blk->cout += *k == CAT_POOL ? cin : blk->conv[*k].cout;
        cin = blk->cout;
    }
    m->dim = cin;
    paramset_alloc(ps);
}

void inception_free(Inception *m) {
    paramset_free(&m->ps);
    memset(m, 0, sizeof *m);
}

static void conv_random(IncConv *cv, Rng *r) {
    double fan_out = (double)cv->cout * cv->k[0] * cv->k[1];
    tensor_fill_normal(cv->w, r, 0, sqrt(2.0 / fan_out));
    tensor_fill_uniform(cv->bn_w, r, 0.5, 1.5);
    tensor_fill_normal(cv->bn_b, r, 0, 0.1);
    tensor_fill_normal(cv->bn_mean, r, 0, 0.1);
    tensor_fill_uniform(cv->bn_var, r, 0.5, 1.5);
}

void inception_init_random(Inception *m, Rng *r) {
    for (int i = 0; i < 5; i++) conv_random(&m->stem[i], r);
    for (int b = 0; b < INC_BLOCKS; b++)
        for (int i = 0; i < m->block[b].nconv; i++) conv_random(&m->block[b].conv[i], r);
}

/* BasicConv2d.forward: conv (no bias), BatchNorm2d(eps 0.001) with running statistics, ReLU */
static Tensor *conv_forward(Ctx *c, const IncConv *cv, Tensor *x) {
    Tensor *y = t_conv2d(c, x, cv->w, NULL, cv->s, cv->p);
    y = t_batch_norm(c, y, cv->bn_w, cv->bn_b, cv->bn_mean, cv->bn_var, NULL, (real)1e-3, (real)0.1);
    return t_relu(c, y);
}

/* FIDInceptionA/C/E_1/E_2.forward and InceptionB/D._forward */
static Tensor *block_forward(Ctx *c, const IncBlock *blk, Tensor *x) {
    const BlockType *bt = &block_types[blk->type];
    Tensor *pooled = NULL, *out[INC_MAX_CONVS];
    switch (blk->type) {
    case INC_A:
    case INC_C:
    case INC_E1:   /* the FID patch: TensorFlow's average pool leaves the padding out of the count */
        pooled = t_avgpool2d_exclude_pad(c, x, DIMS(3, 3), DIMS(1, 1), DIMS(1, 1));
        break;
    case INC_E2:   /* the FID patch: max pooling where torchvision average-pools */
        pooled = t_maxpool_nd(c, x, DIMS(1, 3, 3), DIMS(1, 1, 1), DIMS(0, 1, 1), 0);
        break;
    case INC_B:
    case INC_D:    /* the pass-through branch */
        pooled = t_maxpool_nd(c, x, DIMS(1, 3, 3), DIMS(1, 2, 2), DIMS(0, 0, 0), 0);
        break;
    }
    for (int i = 0; i < blk->nconv; i++) {
        int from = bt->spec[i].from;
        Tensor *in = from == FROM_X ? x : from == FROM_POOL ? pooled : out[from];
        out[i] = conv_forward(c, &blk->conv[i], in);
    }
    Tensor *parts[INC_MAX_CONVS];
    int n = 0;
    for (const int *k = bt->cat; *k >= 0; k++) parts[n++] = *k == CAT_POOL ? pooled : out[*k];
    return t_concat(c, n, parts, 1);
}

/* pytorch-fid InceptionV3.forward up to block 3 (resize and normalisation are the caller's) */
Tensor *inception_forward(Ctx *c, Inception *m, Tensor *x) {
    I2V_ASSERT(!c->training, "inception: the metric networks run in eval mode");
    I2V_ASSERT(x->ndim == 4 && x->shape[1] == 3, "inception: input must be (N, 3, H, W)");
    I2V_ASSERT(x->shape[2] >= 75 && x->shape[3] >= 75, "inception: input %dx%d smaller than 75x75", x->shape[2],
               x->shape[3]);
    /* block 0 */
    Tensor *h = conv_forward(c, &m->stem[0], x);
    h = conv_forward(c, &m->stem[1], h);
    h = conv_forward(c, &m->stem[2], h);
    h = t_maxpool_nd(c, h, DIMS(1, 3, 3), DIMS(1, 2, 2), DIMS(0, 0, 0), 0);
    /* block 1 */
    h = conv_forward(c, &m->stem[3], h);
    h = conv_forward(c, &m->stem[4], h);
    h = t_maxpool_nd(c, h, DIMS(1, 3, 3), DIMS(1, 2, 2), DIMS(0, 0, 0), 0);
    /* blocks 2 and 3 */
    for (int b = 0; b < INC_BLOCKS; b++) h = block_forward(c, &m->block[b], h);
    return t_global_avgpool(c, h);   /* AdaptiveAvgPool2d((1, 1)) */
}
