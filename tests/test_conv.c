/* test_conv.c: convolutions, pooling, upsampling and bilinear resizing (conv.h).
 *
 * 1. exact values worked out by hand: a small 2-D and 3-D convolution with its gradients, nearest
 *    upsampling, align_corners bilinear 2x2 -> 3x3, pooling with ties, padding and negative values;
 * 2. the fast convolution kernels against the naive oracle (forward, dx, dw, db, accumulation into
 *    existing gradients) on odd shapes and on every stride/padding the networks use, with tiny and
 *    default tiles, 1 and 2 threads, and bit-identical reruns;
 * 3. finite-difference gradient checks of every tape op w.r.t. every input (double build);
 * 4. the max-pooling tangent, the 2-D wrappers and a dry run.
 * Dimension legend: N batch, C channels, T frames, H, W.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kernels/conv.h"
#include "kernels/pool.h"
#include "ops/conv.h"
#include "kernels/threads.h"
#include "gradcheck.h"
#include "tensor.h"

static Rng rng;

static real *rand_array(size_t n) {
    real *a = xmalloc(n * sizeof(real));
    for (size_t i = 0; i < n; i++) a[i] = (real)(rng_uniform(&rng) * 2 - 1);
    return a;
}

static real *copy_array(const real *src, size_t n) {
    real *a = xmalloc(n * sizeof(real));
    memcpy(a, src, n * sizeof(real));
    return a;
}

static Tensor *rand_tensor(int ndim, const int *shape) {
    Tensor *t = tensor_alloc(ndim, shape);
    for (size_t i = 0; i < t->numel; i++) t->data[i] = (real)(rng_uniform(&rng) * 2 - 1);
    return t;
}

static Tensor *tensor_of(int ndim, const int *shape, const real *v) {
    Tensor *t = tensor_alloc(ndim, shape);
    memcpy(t->data, v, t->numel * sizeof(real));
    return t;
}

static size_t vol(const int d[3]) { return (size_t)d[0] * d[1] * d[2]; }

/* max |a - b| / max(max |ref|, 1): the error of a fast result relative to the oracle's scale */
static double rel_err(const real *got, const real *ref, size_t n) {
    double err = 0, scale = 1;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - ref[i]);
        if (isnan(d)) return INFINITY;
        if (d > err) err = d;
        if (fabs(ref[i]) > scale) scale = fabs(ref[i]);
    }
    return err / scale;
}

/* Float: 1e-5 relative for a reduction of 100 terms, growing linearly with the length. */
static double tol_for(size_t reduction) {
    double per_term = is_double_build() ? 1e-14 : 1e-7;
    return per_term * (double)(reduction > 10 ? reduction : 10);
}

/* ==================================================================================================== */
/* 1. exact values                                                                                       */
/* ==================================================================================================== */

static void test_exact_conv(void) {
    Ctx c;
    ctx_init(&c);
    /* x = 1..9 in 3x3, w = ones 3x3, bias 0.5, stride 2, pad 1: the four corner 2x2 sums + 0.5 */
    real xv[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    real wv[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    real bv[1] = {0.5};
    Tensor *x = tensor_of(4, DIMS(1, 1, 3, 3), xv), *w = tensor_of(4, DIMS(1, 1, 3, 3), wv);
    Tensor *b = tensor_of(1, DIMS(1), bv);
    x->requires_grad = 1;
    Tensor *y = t_conv2d(&c, x, w, b, DIMS(2, 2), DIMS(1, 1));
    check(y->ndim == 4 && y->shape[2] == 2 && y->shape[3] == 2, "conv2d exact: output 2x2");
    real want[4] = {12.5, 16.5, 24.5, 28.5};
    for (int i = 0; i < 4; i++) check_close(y->data[i], want[i], 1e-6, 0, "conv2d exact forward");
    /* L = sum(y): dx counts how many windows cover each pixel, dw sums the pixels under each tap */
    backward(&c, t_sum_all(&c, y));
    real dxw[9] = {1, 2, 1, 2, 4, 2, 1, 2, 1};
    for (int i = 0; i < 9; i++) check_close(x->grad[i], dxw[i], 1e-6, 0, "conv2d exact dx");
    ctx_reset(&c);
    /* a 3-D case with w = (1, -1) along T only (kernel (2,1,1)): y = x[t] - x[t+1] */
    real x3[8] = {1, 2, 3, 4, 10, 20, 30, 40};
    real w3[2] = {1, -1};
    Tensor *xx = tensor_of(5, DIMS(1, 1, 2, 2, 2), x3), *ww = tensor_of(5, DIMS(1, 1, 2, 1, 1), w3);
    Tensor *yy = t_conv3d(&c, xx, ww, NULL, DIMS(1, 1, 1), DIMS(0, 0, 0));
    check(yy->ndim == 5 && yy->shape[2] == 1 && yy->shape[3] == 2 && yy->shape[4] == 2, "conv3d exact: shape");
    real w3want[4] = {-9, -18, -27, -36};
    for (int i = 0; i < 4; i++) check_close(yy->data[i], w3want[i], 1e-6, 0, "conv3d exact forward");
    tensor_free(x);
    tensor_free(w);
    tensor_free(b);
    tensor_free(xx);
    tensor_free(ww);
    ctx_free(&c);
}

static void test_exact_resample(void) {
    Ctx c;
    ctx_init(&c);
    c.grad_enabled = 0;
    /* nearest x2 (H) x3 (W) of [[1, 2]] */
    real v[2] = {1, 2};
    Tensor *x = tensor_of(4, DIMS(1, 1, 1, 2), v);
    Tensor *y = t_upsample_nearest2d(&c, x, DIMS(2, 3));
    real want[12] = {1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2};
    check(y->shape[2] == 2 && y->shape[3] == 6, "upsample2d shape");
    for (int i = 0; i < 12; i++) check_close(y->data[i], want[i], 0, 0, "upsample2d values");
    /* 3-D: factors (2, 1, 2) of a (1, 1, 2, 1, 2) tensor */
    real v3[4] = {1, 2, 3, 4};
    Tensor *x3 = tensor_of(5, DIMS(1, 1, 2, 1, 2), v3);
    Tensor *y3 = t_upsample_nearest3d(&c, x3, DIMS(2, 1, 2));
    real want3[16] = {1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4};
    check(y3->shape[2] == 4 && y3->shape[3] == 1 && y3->shape[4] == 4, "upsample3d shape");
    for (int i = 0; i < 16; i++) check_close(y3->data[i], want3[i], 0, 0, "upsample3d values");
    /* backward of sum(y * y): each input receives 2 x from each of its 4 copies */
    c.grad_enabled = 1;
    x3->requires_grad = 1;
    Tensor *u = t_upsample_nearest3d(&c, x3, DIMS(2, 1, 2));
    backward(&c, t_sum_all(&c, t_mul(&c, u, u)));
    for (int i = 0; i < 4; i++) check_close(x3->grad[i], 8 * v3[i], 1e-6, 0, "upsample3d backward");
    c.grad_enabled = 0;
    /* bilinear, align_corners: [[0, 1], [2, 3]] -> 3x3 */
    real b[4] = {0, 1, 2, 3};
    Tensor *xb = tensor_of(4, DIMS(1, 1, 2, 2), b);
    Tensor *yb = t_resize_bilinear(&c, xb, 3, 3);
    real wantb[9] = {0, 0.5, 1, 1, 1.5, 2, 2, 2.5, 3};
    for (int i = 0; i < 9; i++) check_close(yb->data[i], wantb[i], 1e-6, 0, "bilinear 2x2 -> 3x3");
    /* 3 -> 2 samples the ends; size 1 samples index 0; identity when the size does not change */
    real r[3] = {5, 7, 11};
    Tensor *xr = tensor_of(4, DIMS(1, 1, 1, 3), r);
    Tensor *yr = t_resize_bilinear(&c, xr, 1, 2);
    check_close(yr->data[0], 5, 1e-6, 0, "bilinear 3 -> 2 first");
    check_close(yr->data[1], 11, 1e-6, 0, "bilinear 3 -> 2 last");
    Tensor *y1 = t_resize_bilinear(&c, xr, 1, 1);
    check_close(y1->data[0], 5, 0, 0, "bilinear to size 1");
    Tensor *yi = t_resize_bilinear(&c, xr, 1, 3);
    for (int i = 0; i < 3; i++) check_close(yi->data[i], r[i], 0, 0, "bilinear identity");
    Tensor *y5 = t_resize_bilinear(&c, xr, 1, 5);
    real want5[5] = {5, 6, 7, 9, 11};
    for (int i = 0; i < 5; i++) check_close(y5->data[i], want5[i], 1e-6, 0, "bilinear 3 -> 5");
    tensor_free(x);
    tensor_free(x3);
    tensor_free(xb);
    tensor_free(xr);
    ctx_free(&c);
}

static void test_exact_pool(void) {
    Ctx c;
    ctx_init(&c);
    /* ties: all equal, kernel 2, stride 1, pad 1 -> each window's gradient goes to its first in-bounds
     * element: dx = [[4, 2], [2, 1]] */
    real ones[4] = {1, 1, 1, 1};
    Tensor *x = tensor_of(4, DIMS(1, 1, 2, 2), ones);
    x->requires_grad = 1;
    Tensor *y = t_maxpool2d(&c, x, DIMS(2, 2), DIMS(1, 1), DIMS(1, 1));
    check(y->shape[2] == 3 && y->shape[3] == 3, "maxpool with padding: 3x3");
    for (int i = 0; i < 9; i++) check_close(y->data[i], 1, 0, 0, "maxpool ties value");
    backward(&c, t_sum_all(&c, y));
    real dxw[4] = {4, 2, 2, 1};
    for (int i = 0; i < 4; i++) check_close(x->grad[i], dxw[i], 0, 0, "maxpool ties: first maximum");
    ctx_reset(&c);
    /* padding is -inf, not 0: a negative plane keeps its values */
    real neg[4] = {-5, -6, -7, -8};
    Tensor *xn = tensor_of(4, DIMS(1, 1, 2, 2), neg);
    Tensor *yn = t_maxpool2d(&c, xn, DIMS(2, 2), DIMS(2, 2), DIMS(1, 1));
    real wantn[4] = {-5, -6, -7, -8};
    for (int i = 0; i < 4; i++) check_close(yn->data[i], wantn[i], 0, 0, "maxpool pads with -inf");
    /* ties inside one window: [[3, 1], [3, 3]] -> the gradient of the single output goes to index 0 */
    real tie[4] = {3, 1, 3, 3};
    Tensor *xt = tensor_of(4, DIMS(1, 1, 2, 2), tie);
    xt->requires_grad = 1;
    Tensor *yt = t_maxpool2d(&c, xt, DIMS(2, 2), DIMS(2, 2), DIMS(0, 0));
    backward(&c, t_sum_all(&c, yt));
    real dtw[4] = {1, 0, 0, 0};
    for (int i = 0; i < 4; i++) check_close(xt->grad[i], dtw[i], 0, 0, "maxpool tie in one window");
    ctx_reset(&c);
    /* average pooling counts the padding: [[1, 2], [3, 4]], kernel 2, stride 1, pad 1 */
    real av[4] = {1, 2, 3, 4};
    Tensor *xa = tensor_of(4, DIMS(1, 1, 2, 2), av);
    Tensor *ya = t_avgpool2d(&c, xa, DIMS(2, 2), DIMS(1, 1), DIMS(1, 1));
    real wanta[9] = {0.25, 0.75, 0.5, 1, 2.5, 1.5, 0.75, 1.75, 1};
    for (int i = 0; i < 9; i++) check_close(ya->data[i], wanta[i], 1e-6, 0, "avgpool count_include_pad");
    /* backward of sum(y): every pixel lies in 4 windows, each passing 1/4 */
    xa->requires_grad = 1;
    Tensor *ya2 = t_avgpool2d(&c, xa, DIMS(2, 2), DIMS(1, 1), DIMS(1, 1));
    backward(&c, t_sum_all(&c, ya2));
    for (int i = 0; i < 4; i++) check_close(xa->grad[i], 1, 1e-6, 0, "avgpool backward");
    /* the temporal discriminator's AvgPool3d (1, 4, 4) stride 1 on (512, 1, 4, 4) is a plain mean */
    Tensor *xd = rand_tensor(5, DIMS(2, 3, 1, 4, 4));
    Tensor *yd = t_avgpool3d(&c, xd, DIMS(1, 4, 4), DIMS(1, 1, 1), DIMS(0, 0, 0));
    Tensor *yg = t_global_avgpool(&c, xd);
    check(yd->numel == 6 && yg->numel == 6 && yg->ndim == 5, "avgpool (1,4,4) and global: 6 values");
    for (int i = 0; i < 6; i++) {
        double m = 0;
        for (int j = 0; j < 16; j++) m += xd->data[i * 16 + j];
        check_close(yd->data[i], m / 16, 1e-6, 1e-6, "avgpool3d (1,4,4)");
        check_close(yg->data[i], m / 16, 1e-6, 1e-6, "global avgpool");
    }
    /* 3-D max pool of the discriminator: kernel 3, stride (1, 2, 2), pad 1 -> output shape */
    Tensor *xm = rand_tensor(5, DIMS(1, 2, 4, 7, 8));
    Tensor *ym = t_maxpool3d(&c, xm, DIMS(3, 3, 3), DIMS(1, 2, 2), DIMS(1, 1, 1));
    check(ym->shape[2] == 4 && ym->shape[3] == 4 && ym->shape[4] == 4, "maxpool3d shape");
    tensor_free(x);
    tensor_free(xn);
    tensor_free(xt);
    tensor_free(xa);
    tensor_free(xd);
    tensor_free(xm);
    ctx_free(&c);
}

/* ==================================================================================================== */
/* 2. fast kernels against the oracle                                                                    */
/* ==================================================================================================== */

typedef struct Case {
    const char *name;
    int n, cin, cout, in[3], k[3], s[3], p[3];
} Case;

/* the geometries of the networks (small channel counts) and odd ones */
static const Case cases[] = {
    {"encoder stem (3,7,7) s2 p(1,3,3)", 2, 3, 5, {5, 13, 11}, {3, 7, 7}, {2, 2, 2}, {1, 3, 3}},
    {"disc stem (3,7,7) s(1,2,2)", 1, 3, 4, {4, 9, 10}, {3, 7, 7}, {1, 2, 2}, {1, 3, 3}},
    {"3x3x3 s1 p1", 2, 4, 6, {3, 5, 7}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}},
    {"3x3x3 s2 p1", 2, 5, 3, {5, 7, 6}, {3, 3, 3}, {2, 2, 2}, {1, 1, 1}},
    {"3x3x3 s(2,1,1) p1", 1, 4, 5, {5, 6, 5}, {3, 3, 3}, {2, 1, 1}, {1, 1, 1}},
    {"3x3x3 s(1,2,2) p1", 1, 3, 4, {3, 7, 6}, {3, 3, 3}, {1, 2, 2}, {1, 1, 1}},
    {"1x1x1", 2, 7, 5, {3, 4, 5}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}},
    {"1x1x1 stride 2", 1, 4, 3, {3, 5, 5}, {1, 1, 1}, {2, 2, 2}, {0, 0, 0}},
    {"PatchGAN 4x4 s2 p1", 2, 3, 4, {1, 9, 10}, {1, 4, 4}, {1, 2, 2}, {0, 1, 1}},
    {"PatchGAN 4x4 s1 p1", 1, 5, 3, {1, 7, 6}, {1, 4, 4}, {1, 1, 1}, {0, 1, 1}},
    {"conv_mu 4x4 valid", 3, 7, 5, {1, 4, 4}, {1, 4, 4}, {1, 1, 1}, {0, 0, 0}},
    {"3x3 s1 p1 2-D", 2, 6, 4, {1, 8, 7}, {1, 3, 3}, {1, 1, 1}, {0, 1, 1}},
    {"odd (2,3,1) s(1,2,3) p(0,1,0)", 2, 3, 4, {4, 7, 8}, {2, 3, 1}, {1, 2, 3}, {0, 1, 0}},
    {"odd (3,2,4) s(3,1,2) p(1,1,2)", 1, 2, 3, {7, 5, 9}, {3, 2, 4}, {3, 1, 2}, {1, 1, 2}},
    {"stride > kernel (1,2,2) s(1,3,3)", 1, 3, 2, {2, 8, 7}, {1, 2, 2}, {1, 3, 3}, {0, 0, 0}},
    {"padding > kernel - 1 (1,2,2) p2", 1, 2, 3, {2, 4, 3}, {1, 2, 2}, {1, 1, 1}, {0, 2, 2}},
    /* vol2col skipping padding frames: output frames with no input frame at all, one-frame clips */
    {"vol2col frames of padding only (1,3,3) p1", 2, 4, 3, {2, 3, 5}, {1, 3, 3}, {1, 1, 1}, {1, 1, 1}},
    {"vol2col one frame 4x4, T padding", 2, 6, 5, {1, 4, 4}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}},
    {"vol2col (3,3,3) p(2,1,1) on one frame", 1, 5, 4, {1, 4, 4}, {3, 3, 3}, {1, 1, 1}, {2, 1, 1}},
    /* small frames put several samples side by side in one GEMM; with a 64 KB budget this one goes 2 + 1,
     * in frame groups of 1, 3 and 1 frames */
    {"vol2col samples side by side, 3 samples", 3, 6, 5, {5, 3, 3}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}},
    /* Cin >= 16 on frames with enough positions for the shifted walk (see conv.c), which compare_case checks
     * for the cases named "shifted"; some also flip into it. Below 32 input channels the weight gradient
     * goes through vol2col. */
    {"shifted 3x3x3 s1 p1", 2, 16, 5, {3, 10, 12}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}},
    {"shifted 3x3x3 s1 p1, dx shifted too", 1, 16, 17, {4, 10, 14}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}},
    {"shifted 3x3x3 s(2,1,1) p1", 1, 16, 4, {5, 10, 12}, {3, 3, 3}, {2, 1, 1}, {1, 1, 1}},
    {"shifted 2-D 4x4 s1 p1", 2, 16, 3, {1, 12, 13}, {1, 4, 4}, {1, 1, 1}, {0, 1, 1}},
    {"shifted one frame, T padding (head_0)", 1, 16, 16, {1, 10, 12}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}},
    {"p > k - 1 (1,2,2) p(0,2,2): vol2col, rows cannot share padding", 1, 16, 3, {2, 4, 12}, {1, 2, 2}, {1, 1, 1},
     {0, 2, 2}},
    {"shifted p = k - 1 (1,3,3) p(0,2,2): no dropped columns", 1, 16, 3, {2, 10, 12}, {1, 3, 3}, {1, 1, 1}, {0, 2, 2}},
    {"shifted 3x3x3 p(1,1,0): no W padding", 1, 16, 4, {2, 12, 12}, {3, 3, 3}, {1, 1, 1}, {1, 1, 0}},
    {"shifted 1x5x5 p2 on 8x16 frames", 1, 16, 5, {1, 8, 16}, {1, 5, 5}, {1, 1, 1}, {0, 2, 2}},
    {"shifted frames of padding only (1,3,3) p1", 1, 16, 3, {2, 10, 12}, {1, 3, 3}, {1, 1, 1}, {1, 1, 1}},
    /* Cin >= 32: the weight gradient by the shifted walk too (threads split each frame's taps), with an
     * even number of (sample, frame) pairs (whole frames to the threads) and an odd one (frames split) */
    {"shifted dw 3x3x3 s1 p1, 2 x 3 frames", 2, 32, 5, {3, 10, 12}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}},
    {"shifted dw 3x3x3 s1 p1, 1 x 3 frames", 1, 32, 7, {3, 10, 13}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}},
    {"shifted dw one frame, T padding", 1, 33, 6, {1, 10, 12}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}},
};

typedef struct Results {
    real *y, *dx, *dw, *db;
} Results;

static void run_fast(Results *r, const ConvGeom *g, const real *x, const real *w, const real *b, const real *dy,
                     const real *dx0, const real *dw0, const real *db0) {
    size_t nx = (size_t)g->n * g->cin * vol(g->in), ny = (size_t)g->n * g->cout * vol(g->out);
    size_t nw = (size_t)g->cout * g->cin * vol(g->k);
    r->y = xmalloc(ny * sizeof(real));
    for (size_t i = 0; i < ny; i++) r->y[i] = NAN;   /* the forward must write every element */
    r->dx = copy_array(dx0, nx);
    r->dw = copy_array(dw0, nw);
    r->db = copy_array(db0, (size_t)g->cout);
    real *ws = xmalloc((conv3d_workspace(g) + 1) * sizeof(real));
    conv3d_forward(r->y, x, w, b, g, ws);
    conv3d_backward(r->dx, r->dw, r->db, dy, x, w, g, ws);
    free(ws);
}

static void free_results(Results *r) {
    free(r->y);
    free(r->dx);
    free(r->dw);
    free(r->db);
}

static int same_bits(const real *a, const real *b, size_t n) { return memcmp(a, b, n * sizeof(real)) == 0; }

static void compare_case(const Case *cs, int nthreads, size_t tile_bytes) {
    threads_set(nthreads);
    conv_set_tile_bytes(tile_bytes);
    ConvGeom g = conv_geom(cs->n, cs->cin, cs->cout, cs->in, cs->k, cs->s, cs->p);
    size_t nx = (size_t)g.n * g.cin * vol(g.in), ny = (size_t)g.n * g.cout * vol(g.out);
    size_t nw = (size_t)g.cout * g.cin * vol(g.k);
    real *x = rand_array(nx), *w = rand_array(nw), *b = rand_array((size_t)g.cout), *dy = rand_array(ny);
    /* gradients start from random values: the backward must add, not overwrite */
    real *dx0 = rand_array(nx), *dw0 = rand_array(nw), *db0 = rand_array((size_t)g.cout);
    real *y_ref = xmalloc(ny * sizeof(real));
    real *dx_ref = copy_array(dx0, nx), *dw_ref = copy_array(dw0, nw), *db_ref = copy_array(db0, (size_t)g.cout);
    conv3d_forward_naive(y_ref, x, w, b, &g);
    conv3d_backward_naive(dx_ref, dw_ref, db_ref, dy, x, w, &g);
    Results r, r2;
    run_fast(&r, &g, x, w, b, dy, dx0, dw0, db0);
    size_t kred = (size_t)g.cin * vol(g.k), pred = (size_t)g.n * vol(g.out), dred = (size_t)g.cout * vol(g.k);
    char what[200];
    snprintf(what, sizeof what, "%s (threads %d, tile %zu bytes)", cs->name, nthreads, tile_bytes);
    double e;
    e = rel_err(r.y, y_ref, ny);
    check(e <= tol_for(kred), "%s: forward relative error %.3g", what, e);
    e = rel_err(r.dx, dx_ref, nx);
    check(e <= tol_for(dred), "%s: dx relative error %.3g", what, e);
    e = rel_err(r.dw, dw_ref, nw);
    check(e <= tol_for(pred), "%s: dw relative error %.3g", what, e);
    e = rel_err(r.db, db_ref, (size_t)g.cout);
    check(e <= tol_for(pred), "%s: db relative error %.3g", what, e);
    if (tile_bytes == 0 && !strncmp(cs->name, "shifted", 7)) {   /* the case reaches the path it names */
        int dw_shifted = !strncmp(cs->name, "shifted dw", 10), dx_shifted = strstr(cs->name, "dx shifted") != NULL;
        check(!strcmp(conv3d_lowering(&g, 'y'), "shifted") &&
                  !strcmp(conv3d_lowering(&g, 'w'), dw_shifted ? "shifted" : "vol2col") &&
                  (!dx_shifted || !strcmp(conv3d_lowering(&g, 'x'), "shifted")),
              "%s: forward by %s, weight gradient by %s, input gradient by %s", what, conv3d_lowering(&g, 'y'),
              conv3d_lowering(&g, 'w'), conv3d_lowering(&g, 'x'));
    }
    /* a rerun with the same thread count gives the same bits */
    run_fast(&r2, &g, x, w, b, dy, dx0, dw0, db0);
    check(same_bits(r.y, r2.y, ny) && same_bits(r.dx, r2.dx, nx) && same_bits(r.dw, r2.dw, nw) &&
              same_bits(r.db, r2.db, (size_t)g.cout),
          "%s: rerun differs", what);
    free_results(&r2);
    /* each gradient on its own (NULL for the others) is the same as all together */
    real *dxa = copy_array(dx0, nx), *dwa = copy_array(dw0, nw);
    real *ws = xmalloc((conv3d_workspace(&g) + 1) * sizeof(real));
    conv3d_backward(dxa, NULL, NULL, dy, x, w, &g, ws);
    conv3d_backward(NULL, dwa, NULL, dy, x, w, &g, ws);
    check(same_bits(dxa, r.dx, nx) && same_bits(dwa, r.dw, nw), "%s: dx / dw alone differ", what);
    free(ws);
    free(dxa);
    free(dwa);
    free_results(&r);
    free(x);
    free(w);
    free(b);
    free(dy);
    free(dx0);
    free(dw0);
    free(db0);
    free(y_ref);
    free(dx_ref);
    free(dw_ref);
    free(db_ref);
    conv_set_tile_bytes(0);
    threads_set(1);
}

static void test_fast_vs_naive(void) {
    int ncases = (int)(sizeof cases / sizeof cases[0]);
    for (int i = 0; i < ncases; i++)
        for (int th = 1; th <= 2; th++) {
            compare_case(&cases[i], th, 0);      /* default budget: one tile, or the shifted walk */
            compare_case(&cases[i], th, 2048);   /* tiny budget: vol2col tiles of 16 positions, starting mid-row */
            compare_case(&cases[i], th, 16384);  /* all positions, the rows in chunks of whole channels */
            compare_case(&cases[i], th, 65536);  /* fewer samples side by side than the batch holds */
        }
}

/* A generator-like layer at a real channel count (many tiles with the default budget), fast paths only:
 * 1 vs 2 threads must agree closely; the oracle is too slow here. */
static void test_threads_agree(void) {
    Case cs = {"3x3x3 64->32 on 4x16x16", 1, 64, 32, {4, 16, 16}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}};
    ConvGeom g = conv_geom(cs.n, cs.cin, cs.cout, cs.in, cs.k, cs.s, cs.p);
    size_t nx = (size_t)g.n * g.cin * vol(g.in), ny = (size_t)g.n * g.cout * vol(g.out);
    size_t nw = (size_t)g.cout * g.cin * vol(g.k);
    real *x = rand_array(nx), *w = rand_array(nw), *b = rand_array((size_t)g.cout), *dy = rand_array(ny);
    real *dx0 = rand_array(nx), *dw0 = rand_array(nw), *db0 = rand_array((size_t)g.cout);
    Results r1, r2;
    conv_set_tile_bytes(64 * 1024);
    threads_set(1);
    run_fast(&r1, &g, x, w, b, dy, dx0, dw0, db0);
    threads_set(2);
    run_fast(&r2, &g, x, w, b, dy, dx0, dw0, db0);
    threads_set(1);
    conv_set_tile_bytes(0);
    size_t kred = (size_t)g.cin * vol(g.k);
    check(rel_err(r2.y, r1.y, ny) <= tol_for(kred), "1 vs 2 threads: forward");
    check(rel_err(r2.dx, r1.dx, nx) <= tol_for(kred), "1 vs 2 threads: dx");
    check(rel_err(r2.dw, r1.dw, nw) <= tol_for(vol(g.out)), "1 vs 2 threads: dw");
    check(rel_err(r2.db, r1.db, (size_t)g.cout) <= tol_for(vol(g.out)), "1 vs 2 threads: db");
    /* spot-check the oracle on a few outputs: the full naive forward of this layer is cheap enough */
    real *y_ref = xmalloc(ny * sizeof(real));
    conv3d_forward_naive(y_ref, x, w, b, &g);
    check(rel_err(r1.y, y_ref, ny) <= tol_for(kred), "64->32 layer: forward vs oracle");
    free(y_ref);
    free_results(&r1);
    free_results(&r2);
    free(x);
    free(w);
    free(b);
    free(dy);
    free(dx0);
    free(dw0);
    free(db0);
}

/* The pooling, upsampling and resize kernels give the same bits with 1 and 2 threads (each thread owns
 * whole planes). */
static void test_other_kernels_threads(void) {
    int in[3] = {3, 9, 8}, k[3] = {3, 3, 3}, s[3] = {1, 2, 2}, p[3] = {1, 1, 1}, f[3] = {2, 2, 3};
    ConvGeom g = conv_geom(2, 3, 3, in, k, s, p);
    size_t nx = 6 * vol(in), ny = 6 * vol(g.out), nu = nx * 12;
    real *x = rand_array(nx), *dy = rand_array(ny), *du = rand_array(nu);
    real *out[2][6];
    for (int t = 0; t < 2; t++) {
        threads_set(t + 1);
        out[t][0] = xmalloc(ny * sizeof(real));
        maxpool3d_forward(out[t][0], x, &g);
        out[t][1] = xcalloc(nx, sizeof(real));
        maxpool3d_backward(out[t][1], dy, x, &g);
        out[t][2] = xmalloc(ny * sizeof(real));
        avgpool3d_forward(out[t][2], x, &g);
        out[t][3] = xcalloc(nx, sizeof(real));
        avgpool3d_backward(out[t][3], dy, &g);
        out[t][4] = xmalloc(nu * sizeof(real));
        upsample_nearest3d_forward(out[t][4], x, 6, in, f);
        out[t][5] = xcalloc(nx, sizeof(real));
        upsample_nearest3d_backward(out[t][5], du, 6, in, f);
    }
    threads_set(1);
    size_t sizes[6] = {ny, nx, ny, nx, nu, nx};
    const char *names[6] = {"maxpool fwd", "maxpool bwd", "avgpool fwd", "avgpool bwd", "upsample fwd", "upsample bwd"};
    for (int i = 0; i < 6; i++) {
        check(same_bits(out[0][i], out[1][i], sizes[i]), "%s: 1 and 2 threads differ", names[i]);
        free(out[0][i]);
        free(out[1][i]);
    }
    free(x);
    free(dy);
    free(du);
}

/* ==================================================================================================== */
/* 3. gradient checks of the tape ops (double build)                                                     */
/* ==================================================================================================== */

typedef struct OpArgs {
    int k[3], s[3], p[3];
    int nd;          /* 2 or 3 */
    int oh, ow;      /* resize */
} OpArgs;

static Tensor *f_conv(Ctx *c, Tensor **in, void *user) {
    OpArgs *a = user;
    if (a->nd == 2) return t_conv2d(c, in[0], in[1], in[2], a->s + 1, a->p + 1);
    return t_conv3d(c, in[0], in[1], in[2], a->s, a->p);
}

static Tensor *f_maxpool(Ctx *c, Tensor **in, void *user) {
    OpArgs *a = user;
    if (a->nd == 2) return t_maxpool2d(c, in[0], a->k + 1, a->s + 1, a->p + 1);
    return t_maxpool3d(c, in[0], a->k, a->s, a->p);
}

static Tensor *f_avgpool(Ctx *c, Tensor **in, void *user) {
    OpArgs *a = user;
    if (a->nd == 2) return t_avgpool2d(c, in[0], a->k + 1, a->s + 1, a->p + 1);
    return t_avgpool3d(c, in[0], a->k, a->s, a->p);
}

/* the tangent is linear in tx; x only picks the argmax (its derivative is zero almost everywhere) */
static Tensor *f_maxpool_jvp(Ctx *c, Tensor **in, void *user) {
    OpArgs *a = user;
    if (a->nd == 2) return t_maxpool2d_jvp(c, in[0], in[1], a->k + 1, a->s + 1, a->p + 1);
    return t_maxpool3d_jvp(c, in[0], in[1], a->k, a->s, a->p);
}

static Tensor *f_global(Ctx *c, Tensor **in, void *user) {
    (void)user;
    return t_global_avgpool(c, in[0]);
}

static Tensor *f_upsample(Ctx *c, Tensor **in, void *user) {
    OpArgs *a = user;
    if (a->nd == 2) return t_upsample_nearest2d(c, in[0], a->k + 1);
    return t_upsample_nearest3d(c, in[0], a->k);
}

static Tensor *f_resize(Ctx *c, Tensor **in, void *user) {
    OpArgs *a = user;
    return t_resize_bilinear(c, in[0], a->oh, a->ow);
}

static void gradcheck_conv(const char *name, int nd, int n, int cin, int cout, const int in[3], const int k[3],
                           const int s[3], const int p[3], int with_bias) {
    OpArgs a = {{k[0], k[1], k[2]}, {s[0], s[1], s[2]}, {p[0], p[1], p[2]}, nd, 0, 0};
    Tensor *x = nd == 3 ? rand_tensor(5, DIMS(n, cin, in[0], in[1], in[2])) : rand_tensor(4, DIMS(n, cin, in[1], in[2]));
    Tensor *w = nd == 3 ? rand_tensor(5, DIMS(cout, cin, k[0], k[1], k[2])) : rand_tensor(4, DIMS(cout, cin, k[1], k[2]));
    Tensor *b = with_bias ? rand_tensor(1, DIMS(cout)) : NULL;
    Tensor *ins[3] = {x, w, b};
    gradcheck(name, f_conv, with_bias ? 3 : 2, ins, &a, 40);
    tensor_free(x);
    tensor_free(w);
    tensor_free(b);
}

static void test_gradchecks(void) {
    if (!is_double_build()) return;
    gradcheck_conv("conv3d 3x3x3 s1 p1 (flipped dx)", 3, 2, 3, 2, DIMS(3, 4, 5), DIMS(3, 3, 3), DIMS(1, 1, 1),
                   DIMS(1, 1, 1), 1);
    gradcheck_conv("conv3d (3,7,7) s2 p(1,3,3) (col2vol dx)", 3, 1, 2, 3, DIMS(3, 7, 6), DIMS(3, 7, 7), DIMS(2, 2, 2),
                   DIMS(1, 3, 3), 0);
    gradcheck_conv("conv3d 3x3x3 s(2,1,1)", 3, 1, 2, 2, DIMS(5, 3, 4), DIMS(3, 3, 3), DIMS(2, 1, 1), DIMS(1, 1, 1), 1);
    gradcheck_conv("conv3d 1x1x1", 3, 2, 3, 4, DIMS(2, 3, 3), DIMS(1, 1, 1), DIMS(1, 1, 1), DIMS(0, 0, 0), 1);
    gradcheck_conv("conv2d 4x4 s2 p1", 2, 2, 3, 2, DIMS(1, 7, 6), DIMS(1, 4, 4), DIMS(1, 2, 2), DIMS(0, 1, 1), 1);
    gradcheck_conv("conv2d 4x4 s1 p1", 2, 1, 2, 3, DIMS(1, 5, 6), DIMS(1, 4, 4), DIMS(1, 1, 1), DIMS(0, 1, 1), 1);
    gradcheck_conv("conv2d 3x2 s(2,1) p(0,1)", 2, 1, 2, 2, DIMS(1, 5, 4), DIMS(1, 3, 2), DIMS(1, 2, 1), DIMS(0, 0, 1), 1);

    OpArgs pool3 = {{3, 3, 3}, {1, 2, 2}, {1, 1, 1}, 3, 0, 0};
    OpArgs pool2 = {{1, 3, 2}, {1, 2, 1}, {0, 1, 1}, 2, 0, 0};
    Tensor *x3 = rand_tensor(5, DIMS(2, 2, 3, 5, 4)), *x2 = rand_tensor(4, DIMS(2, 3, 5, 4));
    Tensor *t3 = rand_tensor(5, DIMS(2, 2, 3, 5, 4)), *t2 = rand_tensor(4, DIMS(2, 3, 5, 4));
    gradcheck("maxpool3d", f_maxpool, 1, &x3, &pool3, 0);
    gradcheck("maxpool2d", f_maxpool, 1, &x2, &pool2, 0);
    gradcheck("avgpool3d", f_avgpool, 1, &x3, &pool3, 0);
    gradcheck("avgpool2d", f_avgpool, 1, &x2, &pool2, 0);
    Tensor *j3[2] = {x3, t3}, *j2[2] = {x2, t2};
    gradcheck("maxpool3d_jvp", f_maxpool_jvp, 2, j3, &pool3, 0);
    gradcheck("maxpool2d_jvp", f_maxpool_jvp, 2, j2, &pool2, 0);
    gradcheck("global_avgpool 5-D", f_global, 1, &x3, NULL, 0);
    gradcheck("global_avgpool 4-D", f_global, 1, &x2, NULL, 0);
    OpArgs up3 = {{2, 1, 3}, {0}, {0}, 3, 0, 0}, up2 = {{1, 3, 2}, {0}, {0}, 2, 0, 0};
    gradcheck("upsample_nearest3d", f_upsample, 1, &x3, &up3, 0);
    gradcheck("upsample_nearest2d", f_upsample, 1, &x2, &up2, 0);
    OpArgs rs_up = {{0}, {0}, {0}, 2, 7, 9}, rs_down = {{0}, {0}, {0}, 2, 3, 2}, rs_one = {{0}, {0}, {0}, 2, 1, 3};
    gradcheck("resize_bilinear up", f_resize, 1, &x2, &rs_up, 0);
    gradcheck("resize_bilinear down", f_resize, 1, &x2, &rs_down, 0);
    gradcheck("resize_bilinear to 1 row", f_resize, 1, &x2, &rs_one, 0);
    tensor_free(x3);
    tensor_free(x2);
    tensor_free(t3);
    tensor_free(t2);
}

/* ==================================================================================================== */
/* 4. tangent, wrappers, dry run                                                                         */
/* ==================================================================================================== */

static void test_maxpool_jvp(void) {
    /* the tangent equals the directional derivative of max pooling: (pool(x + e tx) - pool(x)) / e for
     * a step small enough to keep every argmax */
    Ctx c;
    ctx_init(&c);
    c.grad_enabled = 0;
    int k[3] = {3, 3, 3}, s[3] = {1, 2, 2}, p[3] = {1, 1, 1};
    Tensor *x = rand_tensor(5, DIMS(1, 2, 3, 6, 5)), *tx = rand_tensor(5, DIMS(1, 2, 3, 6, 5));
    Tensor *xe = tensor_alloc(5, x->shape);
    const double e = is_double_build() ? 1e-7 : 1e-3;
    for (size_t i = 0; i < x->numel; i++) xe->data[i] = x->data[i] + (real)e * tx->data[i];
    Tensor *y = t_maxpool3d(&c, x, k, s, p), *ye = t_maxpool3d(&c, xe, k, s, p);
    Tensor *ty = t_maxpool3d_jvp(&c, x, tx, k, s, p);
    int ok = 1;
    for (size_t i = 0; i < y->numel; i++)
        if (!close_enough(ty->data[i], (ye->data[i] - y->data[i]) / e, 1e-3, 1e-2)) ok = 0;
    check(ok, "maxpool3d_jvp matches the directional derivative");
    tensor_free(x);
    tensor_free(tx);
    tensor_free(xe);
    ctx_free(&c);
}

static void test_tape_conv_vs_oracle(void) {
    /* the tape op's backward gives the oracle's gradients (float and double) */
    Ctx c;
    ctx_init(&c);
    int s[3] = {2, 1, 1}, p[3] = {1, 1, 1};
    Tensor *x = rand_tensor(5, DIMS(2, 3, 5, 4, 6)), *w = rand_tensor(5, DIMS(4, 3, 3, 3, 3));
    Tensor *b = rand_tensor(1, DIMS(4));
    x->requires_grad = w->requires_grad = b->requires_grad = 1;   /* marked inputs: x->grad holds this pass */
    Tensor *y = t_conv3d(&c, x, w, b, s, p);
    Tensor *dy = tensor_new_like(&c, y);
    for (size_t i = 0; i < dy->numel; i++) dy->data[i] = (real)(rng_uniform(&rng) * 2 - 1);
    backward_seed(&c, y, dy->data);
    ConvGeom g = conv_geom(2, 3, 4, DIMS(5, 4, 6), DIMS(3, 3, 3), s, p);
    real *yr = xmalloc(y->numel * sizeof(real)), *dxr = xcalloc(x->numel, sizeof(real));
    real *dwr = xcalloc(w->numel, sizeof(real)), *dbr = xcalloc(4, sizeof(real));
    conv3d_forward_naive(yr, x->data, w->data, b->data, &g);
    conv3d_backward_naive(dxr, dwr, dbr, dy->data, x->data, w->data, &g);
    check(rel_err(y->data, yr, y->numel) <= tol_for(81), "t_conv3d forward vs oracle");
    check(rel_err(x->grad, dxr, x->numel) <= tol_for(108), "t_conv3d dx vs oracle");
    check(rel_err(w->grad, dwr, w->numel) <= tol_for(y->numel), "t_conv3d dw vs oracle");
    check(rel_err(b->grad, dbr, 4) <= tol_for(y->numel), "t_conv3d db vs oracle");
    free(yr);
    free(dxr);
    free(dwr);
    free(dbr);
    tensor_free(x);
    tensor_free(w);
    tensor_free(b);
    ctx_free(&c);
}

static void test_dry_run(void) {
    /* a dry run computes shapes without data and reserves what the real step needs */
    Ctx c;
    ctx_init(&c);
    Tensor *x = rand_tensor(5, DIMS(1, 3, 16, 64, 64)), *w = rand_tensor(5, DIMS(8, 3, 3, 7, 7));
    x->requires_grad = 1;
    c.dry = 1;
    Tensor *y = t_conv3d(&c, x, w, NULL, DIMS(2, 2, 2), DIMS(1, 3, 3));
    Tensor *m = t_maxpool3d(&c, y, DIMS(3, 3, 3), DIMS(1, 2, 2), DIMS(1, 1, 1));
    Tensor *u = t_upsample_nearest3d(&c, m, DIMS(2, 2, 2));
    Tensor *r = t_resize_bilinear(&c, t_reshape(&c, u, 4, DIMS(8, 16, 32, 32)), 16, 16);
    check(y->data == NULL && y->shape[2] == 8 && y->shape[3] == 32 && y->shape[4] == 32, "dry conv3d shape");
    check(m->shape[2] == 8 && m->shape[3] == 16 && m->shape[4] == 16, "dry maxpool3d shape");
    check(u->shape[2] == 16 && u->shape[3] == 32 && r->shape[2] == 16 && r->shape[3] == 16, "dry resample shapes");
    backward(&c, t_sum_all(&c, r));
    size_t need = ctx_dry_finish(&c);
    check(need > 0 && c.dry == 0, "dry run reserves %zu bytes", need);
    tensor_free(x);
    tensor_free(w);
    ctx_free(&c);
}

int main(void) {
    rng_seed(&rng, 42);
    double t0 = now_seconds();
    test_exact_conv();
    test_exact_resample();
    test_exact_pool();
    test_fast_vs_naive();
    test_threads_agree();
    test_other_kernels_threads();
    test_gradchecks();
    test_maxpool_jvp();
    test_tape_conv_vs_oracle();
    test_dry_run();
    printf("test_conv: %.1f s\n", now_seconds() - t0);
    return check_summary("test_conv");
}
