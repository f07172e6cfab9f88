/* layers.c: the layer helpers the networks share (see layers.h): names, a spectral-normalisable
 * convolution, group norm and batch norm, with their PyTorch initialisation and their forward.
 *
 * Not here: the networks themselves (ae.c, networks/). Everything is built from the op layer's ops and
 * initialisers. Dimension legend: N batch, C channels, T frames, H, W; K = Cin kT kH kW.
 */
#include "networks/layers.h"

#include <stdio.h>
#include <string.h>

#include "ops/conv.h"
#include "ops/init.h"
#include "ops/norm.h"

void layer_name(char name[LAYER_NAME_MAX], const char *prefix, const char *suffix) {
    int n = snprintf(name, LAYER_NAME_MAX, "%s.%s", prefix, suffix);
    I2V_ASSERT(n > 0 && n < LAYER_NAME_MAX, "parameter name %s.%s is too long", prefix, suffix);
}

/* ==== convolution ======================================================================================= */

void conv_declare(Conv *l, ParamSet *ps, const char *prefix, int cout, int cin, int nd, const int k[3],
                  const int stride[3], const int pad[3], int bias, int spectral) {
    char name[LAYER_NAME_MAX];
    int shape[5] = {cout, cin, k[0], k[1], k[2]};
    if (nd == 2) {
        shape[2] = k[1];
        shape[3] = k[2];
    }
    memset(l, 0, sizeof *l);
    for (int a = 0; a < 3; a++) {
        l->stride[a] = stride[a];
        l->pad[a] = pad[a];
    }
    if (!spectral) {
        layer_name(name, prefix, "weight");
        l->weight = param_new(ps, name, nd + 2, shape);
    }
    if (bias) {
        layer_name(name, prefix, "bias");
        l->bias = param_new(ps, name, 1, DIMS(cout));
    }
    if (spectral) {
        size_t K = (size_t)cin * (size_t)k[0] * (size_t)k[1] * (size_t)k[2];
        if (nd == 2) K = (size_t)cin * (size_t)k[1] * (size_t)k[2];
        layer_name(name, prefix, "weight_orig");
        l->weight = param_new(ps, name, nd + 2, shape);
        layer_name(name, prefix, "weight_u");
        l->u = buffer_new(ps, name, DT_REAL, 1, DIMS(cout));
        layer_name(name, prefix, "weight_v");
        l->v = buffer_new(ps, name, DT_REAL, 1, DIMS((int)K));
    }
}

void conv_init_default(Conv *l, Rng *r) {
    init_default(l->weight, l->bias, r);
    if (l->u) spectral_norm_init_uv(l->u, l->v, r);
}

Tensor *conv_weight(Ctx *c, Conv *l) { return l->u ? t_spectral_norm(c, l->weight, l->u, l->v) : l->weight; }

Tensor *conv_apply(Ctx *c, const Conv *l, Tensor *W, Tensor *x, int with_bias) {
    Tensor *b = with_bias ? l->bias : NULL;
    if (W->ndim == 4) return t_conv2d(c, x, W, b, l->stride + 1, l->pad + 1);
    return t_conv3d(c, x, W, b, l->stride, l->pad);
}

/* ==== group norm ========================================================================================= */

void group_norm_declare(GroupNorm *n, ParamSet *ps, const char *prefix, int C, int groups) {
    char name[LAYER_NAME_MAX];
    layer_name(name, prefix, "weight");
    n->weight = param_new(ps, name, 1, DIMS(C));
    layer_name(name, prefix, "bias");
    n->bias = param_new(ps, name, 1, DIMS(C));
    n->groups = groups;
}

void group_norm_init(GroupNorm *n) {
    tensor_fill(n->weight, 1);
    tensor_fill(n->bias, 0);
}

Tensor *group_norm_apply(Ctx *c, const GroupNorm *n, Tensor *x, real eps) {
    return t_group_norm(c, x, n->groups, eps, n->weight, n->bias);
}

/* ==== batch norm ========================================================================================= */

void batch_norm_declare(BatchNorm *n, ParamSet *ps, const char *prefix, int C, int affine) {
    char name[LAYER_NAME_MAX];
    memset(n, 0, sizeof *n);
    if (affine) {
        layer_name(name, prefix, "weight");
        n->weight = param_new(ps, name, 1, DIMS(C));
        layer_name(name, prefix, "bias");
        n->bias = param_new(ps, name, 1, DIMS(C));
    }
    layer_name(name, prefix, "running_mean");
    n->running_mean = buffer_new(ps, name, DT_REAL, 1, DIMS(C));
    layer_name(name, prefix, "running_var");
    n->running_var = buffer_new(ps, name, DT_REAL, 1, DIMS(C));
    layer_name(name, prefix, "num_batches_tracked");
    n->num_batches_tracked = buffer_new(ps, name, DT_I64, 0, NULL);
}

void batch_norm_init(BatchNorm *n) {
    if (n->weight) tensor_fill(n->weight, 1);
    if (n->bias) tensor_fill(n->bias, 0);
    tensor_fill(n->running_mean, 0);
    tensor_fill(n->running_var, 1);
    ((int64_t *)n->num_batches_tracked->ibuf)[0] = 0;
}

Tensor *batch_norm_apply(Ctx *c, const BatchNorm *n, Tensor *x, real eps, real momentum) {
    return t_batch_norm(c, x, n->weight, n->bias, n->running_mean, n->running_var, n->num_batches_tracked, eps,
                        momentum);
}
