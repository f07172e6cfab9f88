/* i3d.c: the I3D networks of the metrics (i3d.h): the Kinetics-400 PyTorch port behind FVD and the
 * authors' dynamic-texture I3D behind DTFVD, built from tape ops in eval mode.
 *
 * What it is: the layer table, tensor names of both weight files, the two "SAME" padding rules and the
 * forward pass (InceptionI3d.forward / get_representation, I3D.forward of the port).
 * What it is not: the preprocessing of any metric (networks/features.c), a classifier (the softmax of the
 * port and the DTI3D logits are never computed), or trainable (every tensor is a frozen buffer).
 * Dimension legend: N batch, C channels, T frames, H, W; k kernel, s stride (per axis T, H, W).
 */
#include "networks/i3d.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ops/conv.h"
#include "ops/norm.h"
#include "ops/pad.h"
#include "ops/pool_ext.h"

/* Output channels of the Mixed blocks' branches, published widths: b0, b1a, b1b, b2a, b2b, b3b
 * (InceptionI3d.__init__ / I3D.__init__). */
static const int mixed_widths[I3D_MIXED][6] = {
    {64, 96, 128, 16, 32, 32},    {128, 128, 192, 32, 96, 64},  {192, 96, 208, 16, 48, 64},
    {160, 112, 224, 24, 64, 64},  {128, 128, 256, 24, 64, 64},  {112, 144, 288, 32, 64, 64},
    {256, 160, 320, 32, 128, 128}, {256, 160, 320, 32, 128, 128}, {384, 192, 384, 48, 128, 128},
};
static const char *const mixed_id[I3D_MIXED] = {"3b", "3c", "4b", "4c", "4d", "4e", "4f", "5b", "5c"};
/* Branch names inside a Mixed block: the port's Sequential indices, piergiaj's attribute names. */
static const char *const port_branch[6] = {"branch_0", "branch_1.0", "branch_1.1", "branch_2.0", "branch_2.1",
                                           "branch_3.1"};
static const char *const piergiaj_branch[6] = {"b0", "b1a", "b1b", "b2a", "b2b", "b3b"};

I3dConfig i3d_config_kinetics(int width_div) {
    I3dConfig c = {I3D_PORT, width_div, 400, 2, 1e-3};
    return c;
}

I3dConfig i3d_config_dti3d(int frames, int width_div) {
    I3dConfig c = {I3D_PIERGIAJ, width_div, 0, frames > 16 ? 4 : 2, 1e-5};
    return c;
}

static int reduced(int width, int div) { return width / div > 0 ? width / div : 1; }

/* Declares one unit's tensors under `prefix` (e.g. "mixed_3b.branch_1.0"). */
static void unit_declare(I3d *m, I3dUnit *u, const char *prefix, int cin, int cout, int k, int s, int bn) {
    char name[160];
    ParamSet *ps = &m->ps;
    u->cin = cin;
    u->cout = cout;
    for (int a = 0; a < 3; a++) {
        u->k[a] = k;
        u->s[a] = s;
    }
    snprintf(name, sizeof name, "%s.conv3d.weight", prefix);
    u->w = buffer_new(ps, name, DT_REAL, 5, DIMS(cout, cin, k, k, k));
    if (!bn) {
        snprintf(name, sizeof name, "%s.conv3d.bias", prefix);
        u->b = buffer_new(ps, name, DT_REAL, 1, DIMS(cout));
        return;
    }
    const char *bn_name = m->cfg.style == I3D_PORT ? "batch3d" : "bn";
    const char *part[4] = {"weight", "bias", "running_mean", "running_var"};
    Tensor **dst[4] = {&u->bn_w, &u->bn_b, &u->bn_mean, &u->bn_var};
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "%s.%s.%s", prefix, bn_name, part[i]);
        *dst[i] = buffer_new(ps, name, DT_REAL, 1, DIMS(cout));
    }
}

void i3d_build(I3d *m, const I3dConfig *cfg) {
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    I2V_ASSERT(cfg->width_div >= 1 && cfg->num_classes >= 0 && cfg->avg_t >= 1, "i3d: bad config");
    paramset_init(&m->ps);
    int port = cfg->style == I3D_PORT, d = cfg->width_div;
    char prefix[96];
    unit_declare(m, &m->conv1a, port ? "conv3d_1a_7x7" : "Conv3d_1a_7x7", 3, reduced(64, d), 7, 2, 1);
    unit_declare(m, &m->conv2b, port ? "conv3d_2b_1x1" : "Conv3d_2b_1x1", m->conv1a.cout, reduced(64, d), 1, 1, 1);
    unit_declare(m, &m->conv2c, port ? "conv3d_2c_3x3" : "Conv3d_2c_3x3", m->conv2b.cout, reduced(192, d), 3, 1, 1);
    int cin = m->conv2c.cout;
    for (int b = 0; b < I3D_MIXED; b++) {
        I3dMixed *mx = &m->mixed[b];
        int w[6];
        for (int i = 0; i < 6; i++) w[i] = reduced(mixed_widths[b][i], d);
        /* inputs: b0, b1a, b2a and b3b read the block input; b1b reads b1a, b2b reads b2a */
        const int from[6] = {cin, cin, w[1], cin, w[3], cin}, ks[6] = {1, 1, 3, 1, 3, 1};
        for (int i = 0; i < 6; i++) {
            snprintf(prefix, sizeof prefix, "%s_%s.%s", port ? "mixed" : "Mixed", mixed_id[b],
                     port ? port_branch[i] : piergiaj_branch[i]);
            unit_declare(m, &mx->u[i], prefix, from[i], w[i], ks[i], 1, 1);
        }
        mx->cout = w[0] + w[2] + w[4] + w[5];
        cin = mx->cout;
    }
    if (cfg->num_classes > 0) unit_declare(m, &m->logits, port ? "conv3d_0c_1x1" : "logits", cin, cfg->num_classes, 1, 1, 0);
    paramset_alloc(&m->ps);
}

void i3d_free(I3d *m) {
    paramset_free(&m->ps);
    memset(m, 0, sizeof *m);
}

static void unit_random(I3dUnit *u, Rng *r) {
    if (!u->w) return;
    double fan_out = (double)u->cout * u->k[0] * u->k[1] * u->k[2];
    tensor_fill_normal(u->w, r, 0, sqrt(2.0 / fan_out));
    if (u->b) tensor_fill_normal(u->b, r, 0, 0.1);
    if (u->bn_w) {
        tensor_fill_uniform(u->bn_w, r, 0.5, 1.5);
        tensor_fill_normal(u->bn_b, r, 0, 0.1);
        tensor_fill_normal(u->bn_mean, r, 0, 0.1);
        tensor_fill_uniform(u->bn_var, r, 0.5, 1.5);
    }
}

void i3d_init_random(I3d *m, Rng *r) {
    unit_random(&m->conv1a, r);
    unit_random(&m->conv2b, r);
    unit_random(&m->conv2c, r);
    for (int b = 0; b < I3D_MIXED; b++)
        for (int i = 0; i < 6; i++) unit_random(&m->mixed[b].u[i], r);
    unit_random(&m->logits, r);
}

/* ---- "SAME" padding ---------------------------------------------------------------------------------- */

/* Total zero padding along one axis of size `size` for a window k, stride s.
 * piergiaj (compute_pad): TensorFlow's rule from the actual size.
 * port (get_padding_shape): max(k - s, 0) from kernel and stride alone, except along time (axis 0), where
 * the port picks its padding by T mod s, which is TensorFlow's rule again. Its shortcut for layers padded
 * equally on every side (a symmetric conv padding) only occurs here for stride-1 layers, where it agrees. */
static int same_pad(I3dStyle style, int axis, int size, int k, int s) {
    int pad;
    if (style == I3D_PORT && axis > 0) pad = k - s;
    else pad = size % s == 0 ? k - s : k - size % s;
    return pad > 0 ? pad : 0;
}

/* Splits the padding of x's (T, H, W) for window k, stride s into front (pad // 2) and back (the rest). */
static void same_pads(I3dStyle style, const int in[3], const int k[3], const int s[3], int front[3], int back[3]) {
    for (int a = 0; a < 3; a++) {
        int pad = same_pad(style, a, in[a], k[a], s[a]);
        front[a] = pad / 2;
        back[a] = pad - front[a];
    }
}

/* Unit3D.forward / Unit3Dpy.forward: pad, conv (no padding of its own), BatchNorm, ReLU.
 * When the padding is the same on both sides of every axis it is the conv's own zero padding (the same
 * values without a padded copy); otherwise F.pad's copy comes first. */
static Tensor *unit_forward(Ctx *c, const I3d *m, const I3dUnit *u, Tensor *x) {
    int front[3], back[3], pad[3] = {0, 0, 0}, sym = 1;
    same_pads(m->cfg.style, x->shape + 2, u->k, u->s, front, back);
    for (int a = 0; a < 3; a++) sym &= front[a] == back[a];
    if (sym) {
        for (int a = 0; a < 3; a++) pad[a] = front[a];
    } else {
        x = t_pad3d(c, x, front, back);
    }
    Tensor *y = t_conv3d(c, x, u->w, u->b, u->s, pad);
    if (!u->bn_w) return y;   /* the logits: no BatchNorm, no activation */
    y = t_batch_norm(c, y, u->bn_w, u->bn_b, u->bn_mean, u->bn_var, NULL, (real)m->cfg.eps, (real)0.1);
    return t_relu(c, y);
}

/* MaxPool3dSamePadding / MaxPool3dTFPadding: zero padding (F.pad / ConstantPad3d), then max pooling
 * without padding: floor mode (piergiaj) or ceil mode (the port). */
static Tensor *maxpool_same(Ctx *c, const I3d *m, Tensor *x, const int k[3], const int s[3]) {
    int front[3], back[3], any = 0;
    same_pads(m->cfg.style, x->shape + 2, k, s, front, back);
    for (int a = 0; a < 3; a++) any |= front[a] | back[a];
    if (any) x = t_pad3d(c, x, front, back);
    return t_maxpool_nd(c, x, k, s, DIMS(0, 0, 0), m->cfg.style == I3D_PORT);
}

/* InceptionModule.forward / Mixed.forward */
static Tensor *mixed_forward(Ctx *c, const I3d *m, const I3dMixed *mx, Tensor *x) {
    Tensor *b[4];
    b[0] = unit_forward(c, m, &mx->u[0], x);
    b[1] = unit_forward(c, m, &mx->u[2], unit_forward(c, m, &mx->u[1], x));
    b[2] = unit_forward(c, m, &mx->u[4], unit_forward(c, m, &mx->u[3], x));
    b[3] = unit_forward(c, m, &mx->u[5], maxpool_same(c, m, x, DIMS(3, 3, 3), DIMS(1, 1, 1)));
    return t_concat(c, 4, b, 1);
}

/* The sizes after each pooling stage, without running anything: conv1a (s2), the four max pools, and
 * the average pool. */
void i3d_output_size(const I3dConfig *cfg, const int in[3], int out[3]) {
    /* (kernel, stride) of the strided layers in order; stride-1 layers keep the size */
    static const int ks[5][2][3] = {{{7, 7, 7}, {2, 2, 2}}, {{1, 3, 3}, {1, 2, 2}}, {{1, 3, 3}, {1, 2, 2}},
                                    {{3, 3, 3}, {2, 2, 2}}, {{2, 2, 2}, {2, 2, 2}}};
    for (int a = 0; a < 3; a++) {
        int n = in[a];
        for (int l = 0; l < 5 && n > 0; l++) {
            int k = ks[l][0][a], s = ks[l][1][a];
            int padded = n + same_pad(cfg->style, a, n, k, s);
            if (padded < k) {
                n = 0;
                break;
            }
            if (cfg->style == I3D_PORT && l > 0) {   /* the port's max pools: ceil mode */
                int o = (padded - k + s - 1) / s + 1;
                n = (o - 1) * s >= padded ? o - 1 : o;
            } else {
                n = (padded - k) / s + 1;
            }
        }
        int avg_k = a == 0 ? cfg->avg_t : 7;
        out[a] = n >= avg_k ? n - avg_k + 1 : 0;
    }
}

/* InceptionI3d.get_representation (piergiaj) / I3D.forward up to the time-averaged logits (port). */
Tensor *i3d_forward(Ctx *c, I3d *m, Tensor *x) {
    I2V_ASSERT(!c->training, "i3d: the metric networks run in eval mode");
    I2V_ASSERT(x->ndim == 5 && x->shape[1] == 3, "i3d: input must be (N, 3, T, H, W)");
    int out[3];
    i3d_output_size(&m->cfg, x->shape + 2, out);
    I2V_ASSERT(out[0] > 0 && out[1] > 0 && out[2] > 0, "i3d: input (T %d, H %d, W %d) too small for the network",
               x->shape[2], x->shape[3], x->shape[4]);
    Tensor *h = unit_forward(c, m, &m->conv1a, x);
    h = maxpool_same(c, m, h, DIMS(1, 3, 3), DIMS(1, 2, 2));     /* MaxPool3d_2a_3x3 */
    h = unit_forward(c, m, &m->conv2b, h);
    h = unit_forward(c, m, &m->conv2c, h);
    h = maxpool_same(c, m, h, DIMS(1, 3, 3), DIMS(1, 2, 2));     /* MaxPool3d_3a_3x3 */
    for (int b = 0; b < I3D_MIXED; b++) {
        if (b == 2) h = maxpool_same(c, m, h, DIMS(3, 3, 3), DIMS(2, 2, 2));   /* MaxPool3d_4a_3x3 */
        if (b == 7) h = maxpool_same(c, m, h, DIMS(2, 2, 2), DIMS(2, 2, 2));   /* MaxPool3d_5a_2x2 */
        h = mixed_forward(c, m, &m->mixed[b], h);
    }
    /* AvgPool3d((avg_t, 7, 7), stride 1, no padding); the dropout that follows keeps everything */
    h = t_avgpool3d(c, h, DIMS(m->cfg.avg_t, 7, 7), DIMS(1, 1, 1), DIMS(0, 0, 0));
    if (m->cfg.style == I3D_PIERGIAJ || m->cfg.num_classes == 0) return h;
    /* conv3d_0c_1x1 (bias, no BatchNorm, no ReLU), then squeeze(3), squeeze(3) and mean(2): the logits
     * averaged over time, (N, classes, H'', W'') */
    h = unit_forward(c, m, &m->logits, h);
    return t_mean(c, h, 1u << 2, 0);
}
