/* pool_ext.c (ops): records the pooling variants of kernels/pool_ext.c on the tape.
 * What it is not: the kernels. Dimension legend: N batch, C channels, T, H, W. */
#include "ops/pool_ext.h"

#include "kernels/pool_ext.h"

/* iarg: k (3), s (3), p (3) */
static ConvGeom ceil_geom(const Tensor *x, const int *k, const int *s) {
    return pool_geom_ceil(x->shape[0], x->shape[1], x->shape + 2, k, s);
}

static ConvGeom avg2d_geom(const Tensor *x, const int *k, const int *s, const int *p) {
    for (int a = 0; a < 3; a++)
        I2V_ASSERT(2 * p[a] <= k[a], "avgpool_exclude_pad: padding %d larger than half the kernel %d", p[a], k[a]);
    return conv_geom(x->shape[0], x->shape[1], x->shape[1], (const int[3]){1, x->shape[2], x->shape[3]}, k, s, p);
}

static void maxpool_ceil_backward_op(Ctx *c, Node *n) {
    Tensor *x = n->in[0];
    ConvGeom g = ceil_geom(x, n->iarg, n->iarg + 3);
    maxpool3d_backward(grad_buf(c, x), n->out->grad, x->data, &g);
}
static const OpInfo OP_MAXPOOL_CEIL = {"maxpool3d_ceil", maxpool_ceil_backward_op};

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

Tensor *t_maxpool3d_ceil(Ctx *c, Tensor *x, const int k[3], const int s[3]) {
    I2V_ASSERT(x->ndim == 5, "maxpool3d_ceil of a %d-D tensor (needs (N, C, T, H, W))", x->ndim);
    ConvGeom g = ceil_geom(x, k, s);
    Tensor *y = tensor_new(c, 5, DIMS(g.n, g.cin, g.out[0], g.out[1], g.out[2]));
    if (!c->dry) maxpool3d_forward(y->data, x->data, &g);
    Node *n = record(c, &OP_MAXPOOL_CEIL, y, 1, &x);
    if (n) save_args(n, k, s, (const int[3]){0, 0, 0});
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
