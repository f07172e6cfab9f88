/* pad.c (ops): t_pad3d records the zero padding of kernels/pad.c on the tape.
 * What it is not: the kernel (kernels/pad.c). Dimension legend: N batch, C channels, T, H, W. */
#include "ops/pad.h"

#include "kernels/pad.h"

/* iarg: in T, H, W; front (3); back (3) */
static void pad_backward_op(Ctx *c, Node *n) {
    Tensor *x = n->in[0];
    pad3d_backward(grad_buf(c, x), n->out->grad, (size_t)x->shape[0] * x->shape[1], n->iarg, n->iarg + 3,
                   n->iarg + 6);
}
static const OpInfo OP_PAD3D = {"pad3d", pad_backward_op};

Tensor *t_pad3d(Ctx *c, Tensor *x, const int front[3], const int back[3]) {
    I2V_ASSERT(x->ndim == 4 || x->ndim == 5, "pad3d of a %d-D tensor (needs (N, C, [T,] H, W))", x->ndim);
    I2V_ASSERT(x->ndim == 5 || (front[0] == 0 && back[0] == 0), "pad3d: a 4-D tensor has no T axis to pad");
    int in[3] = {x->ndim == 5 ? x->shape[2] : 1, x->shape[x->ndim - 2], x->shape[x->ndim - 1]};
    int shape[I2V_MAXDIM] = {x->shape[0], x->shape[1]};
    for (int a = 0; a < 3; a++) I2V_ASSERT(front[a] >= 0 && back[a] >= 0, "pad3d: negative padding on axis %d", a);
    for (int a = 3 - (x->ndim - 2); a < 3; a++) shape[x->ndim - 3 + a] = in[a] + front[a] + back[a];
    Tensor *y = tensor_new(c, x->ndim, shape);
    if (!c->dry) pad3d_forward(y->data, x->data, (size_t)x->shape[0] * x->shape[1], in, front, back);
    Node *n = record(c, &OP_PAD3D, y, 1, &x);
    if (n)
        for (int a = 0; a < 3; a++) {
            n->iarg[a] = in[a];
            n->iarg[3 + a] = front[a];
            n->iarg[6 + a] = back[a];
        }
    return y;
}
