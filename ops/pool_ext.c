/* pool_ext.c (ops): records the pooling variants of kernels/pool_ext.c on the tape.
 * What it is not: the kernels. Dimension legend: N batch, C channels, T, H, W. */
#include "ops/pool_ext.h"

#include "kernels/pool.h"
#include "kernels/pool_ext.h"

/* iarg: k (3), s (3), p (3), ceil mode */
static ConvGeom max_geom(const Tensor *x, const int *k, const int *s, const int *p, int ceil_mode) {
    int in[3] = {x->ndim == 5 ? x->shape[2] : 1, x->shape[x->ndim - 2], x->shape[x->ndim - 1]};
    for (int a = 0; a < 3; a++)
        I2V_ASSERT(2 * p[a] <= k[a], "maxpool: padding %d larger than half the kernel %d (axis %d)", p[a], k[a], a);
    if (ceil_mode) return pool_geom_ceil(x->shape[0], x->shape[1], in, k, s, p);
    return conv_geom(x->shape[0], x->shape[1], x->shape[1], in, k, s, p);
}

static ConvGeom avg2d_geom(const Tensor *x, const int *k, const int *s, const int *p) {
    for (int a = 0; a < 3; a++)
        I2V_ASSERT(2 * p[a] <= k[a], "avgpool_exclude_pad: padding %d larger than half the kernel %d", p[a], k[a]);
    return conv_geom(x->shape[0], x->shape[1], x->shape[1], (const int[3]){1, x->shape[2], x->shape[3]}, k, s, p);
}

static void maxpool_nd_backward_op(Ctx *c, Node *n) {
    Tensor *x = n->in[0];
    ConvGeom g = max_geom(x, n->iarg, n->iarg + 3, n->iarg + 6, n->iarg[9]);
    maxpool3d_backward(grad_buf(c, x), n->out->grad, x->data, &g);
}
static const OpInfo OP_MAXPOOL_ND = {"maxpool_nd", maxpool_nd_backward_op};

static void avgpool_exclude_backward_op(Ctx *c, Node *n) {
    Tensor *x = n->in[0];
    ConvGeom g = avg2d_geom(x, n->iarg, n->iarg + 3, n->iarg + 6);
    avgpool3d_exclude_pad_backward(grad_buf(c, x), n->out->grad, &g);
}
static const OpInfo OP_AVGPOOL_EXCLUDE = {"avgpool2d_exclude_pad", avgpool_exclude_backward_op};

static void save_args(Node *n, const int *k, const int *s, const int *p) {
    for (int a = 0; a < 3; a++) {
        n->iarg[a] = k[a];
        n->iarg[3 + a] = s[a];
        n->iarg[6 + a] = p[a];
    }
}

Tensor *t_maxpool_nd(Ctx *c, Tensor *x, const int k[3], const int s[3], const int p[3], int ceil_mode) {
    I2V_ASSERT(x->ndim == 5 || (x->ndim == 4 && k[0] == 1 && s[0] == 1 && p[0] == 0),
               "maxpool_nd of a %d-D tensor (needs (N, C, T, H, W), or (N, C, H, W) with no window along T)", x->ndim);
    ConvGeom g = max_geom(x, k, s, p, ceil_mode);
    Tensor *y = x->ndim == 5 ? tensor_new(c, 5, DIMS(g.n, g.cin, g.out[0], g.out[1], g.out[2]))
                             : tensor_new(c, 4, DIMS(g.n, g.cin, g.out[1], g.out[2]));
    if (!c->dry) {
        real *ws = ctx_scratch(c, maxpool3d_separable_workspace(&g) * sizeof(real));
        maxpool3d_separable_forward(y->data, x->data, &g, ws);
    }
    Node *n = record(c, &OP_MAXPOOL_ND, y, 1, &x);
    if (n) {
        save_args(n, k, s, p);
        n->iarg[9] = ceil_mode;
    }
    return y;
}

Tensor *t_avgpool2d_exclude_pad(Ctx *c, Tensor *x, const int k[2], const int s[2], const int p[2]) {
    I2V_ASSERT(x->ndim == 4, "avgpool2d_exclude_pad of a %d-D tensor (needs (N, C, H, W))", x->ndim);
    int k3[3] = {1, k[0], k[1]}, s3[3] = {1, s[0], s[1]}, p3[3] = {0, p[0], p[1]};
    ConvGeom g = avg2d_geom(x, k3, s3, p3);
    Tensor *y = tensor_new(c, 4, DIMS(g.n, g.cin, g.out[1], g.out[2]));
    if (!c->dry) avgpool3d_exclude_pad_forward(y->data, x->data, &g);
    Node *n = record(c, &OP_AVGPOOL_EXCLUDE, y, 1, &x);
    if (n) save_args(n, k3, s3, p3);
    return y;
}
