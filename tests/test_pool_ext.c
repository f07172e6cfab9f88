/* test_pool_ext.c: the ops added for the TensorFlow-style metric networks: asymmetric zero padding
 * (kernels/pad.c, ops/pad.c), max pooling in floor and ceil mode computed one axis at a time, and average pooling
 * without the padding in its count (kernels/pool_ext.c, ops/pool_ext.c). Values against direct definitions
 * written here and against conv.h's max pooling, output sizes against PyTorch's on cases it computed, and
 * finite-difference gradients of the three tape ops. */
#include <math.h>

#include <string.h>

#include "check.h"
#include "compare.h"
#include "gradcheck.h"
#include "kernels/pad.h"
#include "kernels/conv.h"
#include "ops/conv.h"
#include "kernels/pool_ext.h"
#include "ops/pad.h"
#include "ops/pool_ext.h"

static Rng rng;

static Tensor *random_tensor(int ndim, const int *shape) {
    Tensor *t = tensor_alloc(ndim, shape);
    tensor_fill_uniform(t, &rng, -1, 1);
    return t;
}

/* ---- padding ---------------------------------------------------------------------------------------------- */
static void test_pad(void) {
    int front[3] = {1, 0, 2}, back[3] = {2, 1, 0};
    Tensor *x = random_tensor(5, DIMS(2, 3, 2, 3, 4));
    Ctx c;
    ctx_init(&c);
    c.grad_enabled = 0;
    Tensor *y = t_pad3d(&c, x, front, back);
    check(y->shape[2] == 5 && y->shape[3] == 4 && y->shape[4] == 6, "pad3d: (2, 3) -> (5, 4, 6)");
    int ok = 1;
    size_t i = 0;
    for (int p = 0; p < 6; p++)
        for (int t = 0; t < 5; t++)
            for (int h = 0; h < 4; h++)
                for (int w = 0; w < 6; w++, i++) {
                    int ti = t - front[0], hi = h - front[1], wi = w - front[2];
                    int inside = ti >= 0 && ti < 2 && hi >= 0 && hi < 3 && wi >= 0 && wi < 4;
                    real want = inside ? x->data[((size_t)(p * 2 + ti) * 3 + hi) * 4 + wi] : 0;
                    ok &= y->data[i] == want;
                }
    check(ok, "pad3d: the input in the middle, zeros around (F.pad)");
    /* 4-D: the (H, W) entries */
    Tensor *x4 = random_tensor(4, DIMS(1, 2, 3, 3));
    Tensor *y4 = t_pad3d(&c, x4, DIMS(0, 1, 0), DIMS(0, 0, 2));
    check(y4->ndim == 4 && y4->shape[2] == 4 && y4->shape[3] == 5 && y4->data[5 + 0] == x4->data[0] &&
              y4->data[0] == 0 && y4->data[5 + 3] == 0,
          "pad3d of (N, C, H, W)");
    ctx_free(&c);
    tensor_free(x);
    tensor_free(x4);
}

static Tensor *f_pad(Ctx *c, Tensor **in, void *user) {
    (void)user;
    return t_pad3d(c, in[0], DIMS(1, 0, 2), DIMS(2, 1, 0));
}

/* ---- max pooling: ceil mode, and the separable forward ------------------------------------------------------ */
/* PyTorch: out = ceil((in + 2p - k) / s) + 1, less one if that window starts at or past the end. */
static void test_ceil_geometry(void) {
    static const int cases[][5] = {/* in, k, s, p, out */
        {8, 3, 2, 0, 4},  {7, 3, 2, 0, 3}, {99, 3, 2, 0, 49}, {50, 3, 2, 0, 25}, {26, 3, 2, 0, 13}, {5, 1, 3, 0, 2},
        {13, 2, 2, 0, 7}, {14, 2, 2, 0, 7}, {5, 3, 3, 0, 2}, {4, 4, 1, 0, 1}, {6, 2, 4, 0, 2}, {7, 3, 2, 1, 4},
        {6, 3, 2, 1, 4},  {8, 2, 3, 1, 3}, {5, 3, 3, 1, 2}};
    int ok = 1;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ConvGeom g = pool_geom_ceil(1, 1, DIMS(1, 1, cases[i][0]), DIMS(1, 1, cases[i][1]), DIMS(1, 1, cases[i][2]),
                                    DIMS(0, 0, cases[i][3]));
        if (g.out[2] != cases[i][4]) {
            ok = 0;
            printf("  in %d k %d s %d p %d: got %d, want %d\n", cases[i][0], cases[i][1], cases[i][2], cases[i][3],
                   g.out[2], cases[i][4]);
        }
    }
    check(ok, "pool_geom_ceil: the sizes of torch max_pool1d(ceil_mode=True) on 15 cases");
}

static void test_maxpool_ceil(void) {
    Tensor *x = random_tensor(5, DIMS(2, 2, 5, 7, 6));
    Ctx c;
    ctx_init(&c);
    c.grad_enabled = 0;
    int k[3] = {3, 3, 2}, s[3] = {2, 2, 2};
    Tensor *y = t_maxpool_nd(&c, x, k, s, DIMS(0, 0, 0), 1);
    /* ceil((5-3)/2)+1 = 2, ceil((7-3)/2)+1 = 3, ceil((6-2)/2)+1 = 3 */
    check(y->shape[2] == 2 && y->shape[3] == 3 && y->shape[4] == 3, "maxpool_nd ceil mode: output (2, 3, 3)");
    int ok = 1;
    size_t o = 0;
    for (int p = 0; p < 4; p++)
        for (int t = 0; t < 2; t++)
            for (int h = 0; h < 3; h++)
                for (int w = 0; w < 3; w++, o++) {
                    real m = -INFINITY;
                    for (int a = t * 2; a < t * 2 + 3 && a < 5; a++)
                        for (int b = h * 2; b < h * 2 + 3 && b < 7; b++)
                            for (int d = w * 2; d < w * 2 + 2 && d < 6; d++) {
                                real v = x->data[((size_t)(p * 5 + a) * 7 + b) * 6 + d];
                                if (v > m) m = v;
                            }
                    ok &= y->data[o] == m;
                }
    check(ok, "maxpool_nd ceil mode: the maximum of each window's part inside the input");
    ctx_free(&c);
    tensor_free(x);
}

/* Floor mode equals conv.h's t_maxpool3d / t_maxpool2d bit for bit, padding, ties and NaN included. */
static void test_separable_equals_conv(void) {
    Ctx c;
    ctx_init(&c);
    c.grad_enabled = 0;
    static const int geo[][9] = {{3, 3, 3, 1, 1, 1, 1, 1, 1}, {1, 3, 3, 1, 2, 2, 0, 1, 1}, {2, 2, 2, 2, 2, 2, 0, 0, 0},
                                 {3, 2, 3, 2, 1, 3, 1, 1, 0}};
    int ok = 1;
    for (size_t i = 0; i < sizeof geo / sizeof geo[0]; i++) {
        Tensor *x = tensor_new(&c, 5, DIMS(2, 3, 6, 9, 8));
        for (size_t j = 0; j < x->numel; j++) x->data[j] = (real)(rng_below(&rng, 7)) - 3;   /* many ties */
        x->data[17] = NAN;
        x->data[100] = -INFINITY;
        Tensor *a = t_maxpool_nd(&c, x, geo[i], geo[i] + 3, geo[i] + 6, 0);
        Tensor *b = t_maxpool3d(&c, x, geo[i], geo[i] + 3, geo[i] + 6);
        ok &= shape_equal(a, b);
        for (size_t j = 0; ok && j < a->numel; j++)
            ok &= a->data[j] == b->data[j] || (isnan(a->data[j]) && isnan(b->data[j]));
    }
    Tensor *x4 = random_tensor(4, DIMS(2, 3, 11, 10));
    Tensor *a = t_maxpool_nd(&c, x4, DIMS(1, 3, 3), DIMS(1, 2, 2), DIMS(0, 1, 1), 0);
    Tensor *b = t_maxpool2d(&c, x4, DIMS(3, 3), DIMS(2, 2), DIMS(1, 1));
    ok &= a->ndim == 4 && shape_equal(a, b) && !memcmp(a->data, b->data, a->numel * sizeof(real));
    check(ok, "maxpool_nd (one axis at a time) equals t_maxpool3d / t_maxpool2d, ties, NaN and -inf included");
    tensor_free(x4);
    ctx_free(&c);
}

static Tensor *f_maxpool_pad(Ctx *c, Tensor **in, void *user) {
    (void)user;
    return t_maxpool_nd(c, in[0], DIMS(3, 2, 3), DIMS(2, 1, 2), DIMS(1, 1, 1), 1);
}

static Tensor *f_maxpool_ceil(Ctx *c, Tensor **in, void *user) {
    (void)user;
    return t_maxpool_nd(c, in[0], DIMS(3, 3, 2), DIMS(2, 2, 2), DIMS(0, 0, 0), 1);
}

/* ---- average pooling without the padding in the count ------------------------------------------------------- */
static void test_avg_exclude(void) {
    Tensor *x = random_tensor(4, DIMS(2, 3, 5, 4));
    Ctx c;
    ctx_init(&c);
    c.grad_enabled = 0;
    Tensor *y = t_avgpool2d_exclude_pad(&c, x, DIMS(3, 3), DIMS(1, 1), DIMS(1, 1));
    check(y->shape[2] == 5 && y->shape[3] == 4, "avgpool2d_exclude_pad keeps the size (k 3, s 1, p 1)");
    int ok = 1;
    size_t o = 0;
    for (int p = 0; p < 6; p++)
        for (int h = 0; h < 5; h++)
            for (int w = 0; w < 4; w++, o++) {
                double sum = 0;
                int count = 0;
                for (int a = h - 1; a <= h + 1; a++)
                    for (int b = w - 1; b <= w + 1; b++)
                        if (a >= 0 && a < 5 && b >= 0 && b < 4) {
                            sum += x->data[((size_t)p * 5 + a) * 4 + b];
                            count++;
                        }
                ok &= close_enough(y->data[o], sum / count, 1e-6, 1e-6);
            }
    check(ok, "avgpool2d_exclude_pad: a corner averages 4 values, an edge 6, the inside 9");
    /* strided, uneven padding coverage */
    Tensor *y2 = t_avgpool2d_exclude_pad(&c, x, DIMS(2, 3), DIMS(2, 2), DIMS(1, 1));
    check(y2->shape[2] == 3 && y2->shape[3] == 2, "avgpool2d_exclude_pad k (2, 3) s 2 p 1: (3, 2)");
    check_close(y2->data[0], x->data[0] * 0.5 + x->data[1] * 0.5, 1e-6, 1e-6, "first window: 2 in-range values");
    ctx_free(&c);
    tensor_free(x);
}

static Tensor *f_avg_exclude(Ctx *c, Tensor **in, void *user) {
    (void)user;
    return t_avgpool2d_exclude_pad(c, in[0], DIMS(3, 3), DIMS(2, 1), DIMS(1, 1));
}

int main(void) {
    rng_seed(&rng, 77);
    test_pad();
    test_ceil_geometry();
    test_maxpool_ceil();
    test_avg_exclude();
    test_separable_equals_conv();
    Tensor *x5 = random_tensor(5, DIMS(2, 2, 3, 4, 3));
    Tensor *x5b = random_tensor(5, DIMS(1, 2, 5, 7, 6));
    Tensor *x4 = random_tensor(4, DIMS(2, 2, 5, 4));
    gradcheck("pad3d", f_pad, 1, &x5, NULL, 0);
    gradcheck("maxpool_nd ceil mode", f_maxpool_ceil, 1, &x5b, NULL, 0);
    gradcheck("maxpool_nd ceil mode, padded", f_maxpool_pad, 1, &x5b, NULL, 0);
    gradcheck("avgpool2d_exclude_pad", f_avg_exclude, 1, &x4, NULL, 0);
    tensor_free(x5);
    tensor_free(x5b);
    tensor_free(x4);
    return check_summary("test_pool_ext");
}
