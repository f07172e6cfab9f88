/* resize.c (ops): records the bilinear resize of kernels/resize.c on the tape.
 * Shapes: x (..., H, W) -> y (..., oh, ow); the leading axes are flattened into planes. iarg[0] = mode. */
#include "ops/resize.h"

static void planes_of(const Tensor *x, size_t *nc, int *h, int *w) {
    *h = x->shape[x->ndim - 2];
    *w = x->shape[x->ndim - 1];
    *nc = x->numel / ((size_t)*h * (size_t)*w);
}

static void resize_mode_backward_op(Ctx *c, Node *n) {
    Tensor *x = n->in[0], *y = n->out;
    size_t nc;
    int ih, iw;
    planes_of(x, &nc, &ih, &iw);
    resize_bilinear_mode_backward(grad_buf(c, x), y->grad, nc, ih, iw, y->shape[y->ndim - 2], y->shape[y->ndim - 1],
                                  (ResizeMode)n->iarg[0]);
}
static const OpInfo OP_RESIZE_MODE = {"resize_bilinear_mode", resize_mode_backward_op};

Tensor *t_resize_bilinear_mode(Ctx *c, Tensor *x, int oh, int ow, ResizeMode m) {
    I2V_ASSERT(x->ndim >= 3, "resize of a %d-D tensor (needs (..., H, W) with a leading axis)", x->ndim);
    I2V_ASSERT(oh >= 1 && ow >= 1 && x->shape[x->ndim - 2] >= 1 && x->shape[x->ndim - 1] >= 1,
               "resize to %dx%d", oh, ow);
    int shape[I2V_MAXDIM];
    for (int a = 0; a < x->ndim; a++) shape[a] = x->shape[a];
    shape[x->ndim - 2] = oh;
    shape[x->ndim - 1] = ow;
    Tensor *y = tensor_new(c, x->ndim, shape);
    size_t nc;
    int ih, iw;
    planes_of(x, &nc, &ih, &iw);
    if (!c->dry) resize_bilinear_mode(y->data, x->data, nc, ih, iw, oh, ow, m);
    Node *n = record(c, &OP_RESIZE_MODE, y, 1, &x);
    if (n) n->iarg[0] = (int)m;
    return y;
}
