/* conv.c: convolutions (2-D and 3-D), max / average / global pooling, nearest upsampling and bilinear
 * resizing as tape ops over the raw-array kernels of kernels/conv.c.
 *
 * Each t_xxx checks shapes, allocates its output in the arena, runs the forward kernel unless the context
 * is a dry run and records the node; the node's backward, defined right above the wrapper, calls the
 * backward kernel. A 2-D op is its 3-D kernel with T = 1 and a kernel/stride of 1 and padding 0 along T.
 * Dimension legend: N batch, C channels, T frames, H, W.
 */
#include "ops/conv.h"

#include <string.h>

#include "cuda/cuda.h"
#include "kernels/conv.h"
#include "kernels/pool.h"

/* which pooling op a node is */
enum PoolKind { POOL_MAX_FWD, POOL_MAX_JVP, POOL_AVG_FWD };

/* The (T, H, W) view of a 4-D image tensor is (1, H, W); axis parameters of a 2-D op get T entries of
 * kernel 1, stride 1, padding 0. */
static void spatial3(const Tensor *x, int dims[3]) {
    I2V_ASSERT(x->ndim == 4 || x->ndim == 5, "expected (N, C, H, W) or (N, C, T, H, W), got %d-D", x->ndim);
    int off = x->ndim - 3;
    dims[0] = x->ndim == 5 ? x->shape[2] : 1;
    dims[1] = x->shape[off + 1];
    dims[2] = x->shape[off + 2];
}

static void axes3(const int *v, int nd, int fill, int out[3]) {
    out[0] = nd == 3 ? v[0] : fill;
    out[1] = v[nd - 2];
    out[2] = v[nd - 1];
}

static Tensor *new_5d_or_4d(Ctx *c, int ndim, int n, int ch, const int sp[3]) {
    return ndim == 5 ? tensor_new(c, 5, DIMS(n, ch, sp[0], sp[1], sp[2])) : tensor_new(c, 4, DIMS(n, ch, sp[1], sp[2]));
}

/* ---- convolution: iarg[0..2] stride, iarg[3..5] padding (T, H, W) ---------------------------------- */
static ConvGeom conv_geom_of(const Tensor *x, const Tensor *w, const int *stride, const int *pad) {
    int in[3], k[3];
    spatial3(x, in);
    spatial3(w, k);
    return conv_geom(x->shape[0], x->shape[1], w->shape[0], in, k, stride, pad);
}

static void t_conv_backward(Ctx *c, Node *n) {
    Tensor *x = n->in[0], *w = n->in[1], *b = n->in[2];
    ConvGeom g = conv_geom_of(x, w, n->iarg, n->iarg + 3);
    real *dx = needs_grad(c, x) ? grad_buf(c, x) : NULL;
    real *dw = needs_grad(c, w) ? grad_buf(c, w) : NULL;
    real *db = needs_grad(c, b) ? grad_buf(c, b) : NULL;
    if (on_gpu(c)) {   /* cuDNN's workspace is the GPU backend's own */
        conv3d_backward_cuda(dx, dw, db, n->out->grad, x->data, w->data, &g, NULL);
        return;
    }
    real *ws = ctx_scratch(c, conv3d_workspace(&g) * sizeof(real));
    conv3d_backward(dx, dw, db, n->out->grad, x->data, w->data, &g, ws);
}
static const OpInfo OP_CONV = {"conv", t_conv_backward};

static Tensor *conv_op(Ctx *c, Tensor *x, Tensor *w, Tensor *b, const int stride[3], const int pad[3], int nd) {
    I2V_ASSERT(x->ndim == nd + 2 && w->ndim == nd + 2, "conv%dd: input and weight must be %d-D, got %d-D and %d-D",
               nd, nd + 2, x->ndim, w->ndim);
    I2V_ASSERT(w->shape[1] == x->shape[1], "conv%dd: input has %d channels, weight expects %d", nd, x->shape[1],
               w->shape[1]);
    I2V_ASSERT(!b || (b->ndim == 1 && b->shape[0] == w->shape[0]), "conv%dd: bias must be (%d)", nd, w->shape[0]);
    ConvGeom g = conv_geom_of(x, w, stride, pad);
    Tensor *y = new_5d_or_4d(c, x->ndim, g.n, g.cout, g.out);
    if (on_gpu(c)) {
        if (!c->dry) conv3d_forward_cuda(y->data, x->data, w->data, b ? b->data : NULL, &g, NULL);
    } else {
        /* the workspace covers the backward too, so a dry run leaves the scratch at its final size */
        real *ws = ctx_scratch(c, conv3d_workspace(&g) * sizeof(real));
        if (!c->dry) conv3d_forward(y->data, x->data, w->data, b ? b->data : NULL, &g, ws);
    }
    Tensor *in[3] = {x, w, b};
    Node *n = record(c, &OP_CONV, y, 3, in);
    if (n)
        for (int a = 0; a < 3; a++) {
            n->iarg[a] = stride[a];
            n->iarg[3 + a] = pad[a];
        }
    return y;
}

Tensor *t_conv2d(Ctx *c, Tensor *x, Tensor *w, Tensor *b, const int stride[2], const int pad[2]) {
    int s[3], p[3];
    axes3(stride, 2, 1, s);
    axes3(pad, 2, 0, p);
    return conv_op(c, x, w, b, s, p, 2);
}

Tensor *t_conv3d(Ctx *c, Tensor *x, Tensor *w, Tensor *b, const int stride[3], const int pad[3]) {
    return conv_op(c, x, w, b, stride, pad, 3);
}

/* ---- pooling: iarg[0..2] kernel, [3..5] stride, [6..8] padding (T, H, W) --------------------------- */
static ConvGeom pool_geom_of(const Tensor *x, const int *k, const int *s, const int *p) {
    int in[3];
    spatial3(x, in);
    for (int a = 0; a < 3; a++)
        I2V_ASSERT(2 * p[a] <= k[a], "pooling: padding %d larger than half the kernel %d (axis %d)", p[a], k[a], a);
    return conv_geom(x->shape[0], x->shape[1], x->shape[1], in, k, s, p);
}

static void pool_save_args(Node *n, const int *k, const int *s, const int *p) {
    for (int a = 0; a < 3; a++) {
        n->iarg[a] = k[a];
        n->iarg[3 + a] = s[a];
        n->iarg[6 + a] = p[a];
    }
}

static void t_maxpool_backward(Ctx *c, Node *n) {
    Tensor *x = n->in[0];
    ConvGeom g = pool_geom_of(x, n->iarg, n->iarg + 3, n->iarg + 6);
    if (on_gpu(c)) maxpool3d_backward_cuda(grad_buf(c, x), n->out->grad, x->data, &g);
    else maxpool3d_backward(grad_buf(c, x), n->out->grad, x->data, &g);
}
static const OpInfo OP_MAXPOOL = {"maxpool", t_maxpool_backward};

static void t_avgpool_backward(Ctx *c, Node *n) {
    Tensor *x = n->in[0];
    ConvGeom g = pool_geom_of(x, n->iarg, n->iarg + 3, n->iarg + 6);
    if (on_gpu(c)) avgpool3d_backward_cuda(grad_buf(c, x), n->out->grad, &g);
    else avgpool3d_backward(grad_buf(c, x), n->out->grad, &g);
}
static const OpInfo OP_AVGPOOL = {"avgpool", t_avgpool_backward};

/* the tangent op: in[0] = tx (the only differentiable input), aux[0] = x (selects the argmax) */
static void t_maxpool_jvp_backward(Ctx *c, Node *n) {
    Tensor *tx = n->in[0], *x = n->aux[0];
    ConvGeom g = pool_geom_of(x, n->iarg, n->iarg + 3, n->iarg + 6);
    if (on_gpu(c)) maxpool3d_backward_cuda(grad_buf(c, tx), n->out->grad, x->data, &g);
    else maxpool3d_backward(grad_buf(c, tx), n->out->grad, x->data, &g);
}
static const OpInfo OP_MAXPOOL_JVP = {"maxpool_jvp", t_maxpool_jvp_backward};

static Tensor *pool_op(Ctx *c, int kind, Tensor *x, Tensor *tx, const int *k, const int *s, const int *p) {
    ConvGeom g = pool_geom_of(x, k, s, p);
    Tensor *y = new_5d_or_4d(c, x->ndim, g.n, g.cout, g.out);
    Node *n;
    if (kind == POOL_MAX_JVP) {
        I2V_ASSERT(shape_equal(x, tx), "maxpool_jvp: x and its tangent differ in shape");
        if (!c->dry && on_gpu(c)) maxpool3d_jvp_cuda(y->data, x->data, tx->data, &g);
        else if (!c->dry) maxpool3d_jvp(y->data, x->data, tx->data, &g);
        n = record(c, &OP_MAXPOOL_JVP, y, 1, &tx);
        if (n) n->aux[0] = x;
    } else if (kind == POOL_MAX_FWD) {
        if (!c->dry && on_gpu(c)) maxpool3d_forward_cuda(y->data, x->data, &g);
        else if (!c->dry) maxpool3d_forward(y->data, x->data, &g);
        n = record(c, &OP_MAXPOOL, y, 1, &x);
    } else {
        if (!c->dry && on_gpu(c)) avgpool3d_forward_cuda(y->data, x->data, &g);
        else if (!c->dry) avgpool3d_forward(y->data, x->data, &g);
        n = record(c, &OP_AVGPOOL, y, 1, &x);
    }
    if (n) pool_save_args(n, k, s, p);
    return y;
}

static Tensor *pool2d(Ctx *c, int kind, Tensor *x, Tensor *tx, const int k[2], const int s[2], const int p[2]) {
    I2V_ASSERT(x->ndim == 4, "2-D pooling of a %d-D tensor (needs (N, C, H, W))", x->ndim);
    int k3[3], s3[3], p3[3];
    axes3(k, 2, 1, k3);
    axes3(s, 2, 1, s3);
    axes3(p, 2, 0, p3);
    return pool_op(c, kind, x, tx, k3, s3, p3);
}

static Tensor *pool3d(Ctx *c, int kind, Tensor *x, Tensor *tx, const int k[3], const int s[3], const int p[3]) {
    I2V_ASSERT(x->ndim == 5, "3-D pooling of a %d-D tensor (needs (N, C, T, H, W))", x->ndim);
    return pool_op(c, kind, x, tx, k, s, p);
}

Tensor *t_maxpool2d(Ctx *c, Tensor *x, const int k[2], const int s[2], const int p[2]) {
    return pool2d(c, POOL_MAX_FWD, x, NULL, k, s, p);
}
Tensor *t_avgpool2d(Ctx *c, Tensor *x, const int k[2], const int s[2], const int p[2]) {
    return pool2d(c, POOL_AVG_FWD, x, NULL, k, s, p);
}
Tensor *t_maxpool3d(Ctx *c, Tensor *x, const int k[3], const int s[3], const int p[3]) {
    return pool3d(c, POOL_MAX_FWD, x, NULL, k, s, p);
}
Tensor *t_avgpool3d(Ctx *c, Tensor *x, const int k[3], const int s[3], const int p[3]) {
    return pool3d(c, POOL_AVG_FWD, x, NULL, k, s, p);
}
Tensor *t_maxpool2d_jvp(Ctx *c, Tensor *x, Tensor *tx, const int k[2], const int s[2], const int p[2]) {
    return pool2d(c, POOL_MAX_JVP, x, tx, k, s, p);
}
Tensor *t_maxpool3d_jvp(Ctx *c, Tensor *x, Tensor *tx, const int k[3], const int s[3], const int p[3]) {
    return pool3d(c, POOL_MAX_JVP, x, tx, k, s, p);
}

/* ---- global average pooling: the mean of each (sample, channel) plane ------------------------------ */
static void t_global_avgpool_backward(Ctx *c, Node *n) {
    Tensor *x = n->in[0];
    size_t nc = n->out->numel;
    if (on_gpu(c)) global_avgpool_backward_cuda(grad_buf(c, x), n->out->grad, nc, nc ? x->numel / nc : 0);
    else global_avgpool_backward(grad_buf(c, x), n->out->grad, nc, nc ? x->numel / nc : 0);
}
static const OpInfo OP_GLOBAL_AVGPOOL = {"global_avgpool", t_global_avgpool_backward};

Tensor *t_global_avgpool(Ctx *c, Tensor *x) {
    I2V_ASSERT(x->ndim >= 3, "global_avgpool needs (N, C, ...), got %d-D", x->ndim);
    int shape[I2V_MAXDIM];
    for (int i = 0; i < x->ndim; i++) shape[i] = i < 2 ? x->shape[i] : 1;
    Tensor *y = tensor_new(c, x->ndim, shape);
    size_t nc = y->numel, len = nc ? x->numel / nc : 0;
    if (!c->dry && on_gpu(c)) global_avgpool_forward_cuda(y->data, x->data, nc, len);
    else if (!c->dry) global_avgpool_forward(y->data, x->data, nc, len);
    record(c, &OP_GLOBAL_AVGPOOL, y, 1, &x);
    return y;
}

/* ---- nearest upsampling: iarg[0..2] factors (T, H, W) ---------------------------------------------- */
static void t_upsample_nearest_backward(Ctx *c, Node *n) {
    Tensor *x = n->in[0];
    int in[3];
    spatial3(x, in);
    size_t nc = (size_t)x->shape[0] * x->shape[1];
    if (on_gpu(c)) upsample_nearest3d_backward_cuda(grad_buf(c, x), n->out->grad, nc, in, n->iarg);
    else upsample_nearest3d_backward(grad_buf(c, x), n->out->grad, nc, in, n->iarg);
}
static const OpInfo OP_UPSAMPLE = {"upsample_nearest", t_upsample_nearest_backward};

static Tensor *upsample_op(Ctx *c, Tensor *x, const int f[3]) {
    int in[3], out[3];
    spatial3(x, in);
    for (int a = 0; a < 3; a++) {
        I2V_ASSERT(f[a] >= 1, "upsample: factor %d on axis %d", f[a], a);
        out[a] = in[a] * f[a];
    }
    Tensor *y = new_5d_or_4d(c, x->ndim, x->shape[0], x->shape[1], out);
    size_t nc = (size_t)x->shape[0] * x->shape[1];
    if (!c->dry && on_gpu(c)) upsample_nearest3d_forward_cuda(y->data, x->data, nc, in, f);
    else if (!c->dry) upsample_nearest3d_forward(y->data, x->data, nc, in, f);
    Node *n = record(c, &OP_UPSAMPLE, y, 1, &x);
    if (n)
        for (int a = 0; a < 3; a++) n->iarg[a] = f[a];
    return y;
}

Tensor *t_upsample_nearest2d(Ctx *c, Tensor *x, const int f[2]) {
    I2V_ASSERT(x->ndim == 4, "upsample_nearest2d of a %d-D tensor (needs (N, C, H, W))", x->ndim);
    int f3[3];
    axes3(f, 2, 1, f3);
    return upsample_op(c, x, f3);
}

Tensor *t_upsample_nearest3d(Ctx *c, Tensor *x, const int f[3]) {
    I2V_ASSERT(x->ndim == 5, "upsample_nearest3d of a %d-D tensor (needs (N, C, T, H, W))", x->ndim);
    return upsample_op(c, x, f);
}

/* ---- bilinear resize ------------------------------------------------------------------------------ */
static void t_resize_bilinear_backward(Ctx *c, Node *n) {
    Tensor *x = n->in[0], *y = n->out;
    size_t nc = (size_t)x->shape[0] * x->shape[1];
    if (on_gpu(c))
        resize_bilinear_backward_cuda(grad_buf(c, x), y->grad, nc, x->shape[2], x->shape[3], y->shape[2], y->shape[3]);
    else resize_bilinear_backward(grad_buf(c, x), y->grad, nc, x->shape[2], x->shape[3], y->shape[2], y->shape[3]);
}
static const OpInfo OP_RESIZE = {"resize_bilinear", t_resize_bilinear_backward};

Tensor *t_resize_bilinear(Ctx *c, Tensor *x, int oh, int ow) {
    I2V_ASSERT(x->ndim == 4, "resize_bilinear of a %d-D tensor (needs (N, C, H, W))", x->ndim);
    I2V_ASSERT(oh >= 1 && ow >= 1 && x->shape[2] >= 1 && x->shape[3] >= 1, "resize_bilinear to %dx%d", oh, ow);
    Tensor *y = tensor_new(c, 4, DIMS(x->shape[0], x->shape[1], oh, ow));
    size_t nc = (size_t)x->shape[0] * x->shape[1];
    if (!c->dry && on_gpu(c)) resize_bilinear_forward_cuda(y->data, x->data, nc, x->shape[2], x->shape[3], oh, ow);
    else if (!c->dry) resize_bilinear_forward(y->data, x->data, nc, x->shape[2], x->shape[3], oh, ow);
    record(c, &OP_RESIZE, y, 1, &x);
    return y;
}
