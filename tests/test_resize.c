/* test_resize.c: the three bilinear resizes (kernels/resize.c, ops/resize.c). Agreement at odd sizes with
 * PyTorch's bilinear interpolation (align_corners True and False) and with a NumPy re-implementation of
 * TensorFlow 1's resize_bilinear (tests/data/resize_reference.safetensors, written by
 * tools/make_resize_reference.py); hand-computed values of each convention; the backward as the adjoint of
 * the forward (<dy, R x> = <R^T dy, x>) in both builds and against finite differences (double build);
 * results that do not depend on the thread count; the tape op on 5-D videos. */
#include <math.h>
#include <string.h>

#include "compare.h"
#include "gradcheck.h"
#include "formats/safetensors.h"
#include "kernels/gemm.h"
#include "kernels/threads.h"
#include "ops/resize.h"

static const ResizeMode MODES[3] = {RESIZE_ALIGN_CORNERS, RESIZE_HALF_PIXEL, RESIZE_TF1};

static void test_reference(void) {
    StFile f;
    I2vError err;
    if (st_open(&f, "tests/data/resize_reference.safetensors", &err)) {
        check(0, "%s", err.msg);
        return;
    }
    const char *ncases = st_meta_get(&f, "cases");
    int n = ncases ? atoi(ncases) : 0;
    check(n >= 6, "the reference holds the cases (%d)", n);
    double tol = is_double_build() ? 1e-12 : 2e-6;
    for (int k = 0; k < n; k++) {
        char name[64];
        snprintf(name, sizeof name, "case%d.x", k);
        Tensor *x = st_read_new(&f, name, DT_REAL, &err);
        snprintf(name, sizeof name, "case%d.size", k);
        Tensor *size = st_read_new(&f, name, DT_I64, &err);
        if (!x || !size) {
            check(0, "%s", err.msg);
            break;
        }
        int oh = (int)((int64_t *)size->ibuf)[0], ow = (int)((int64_t *)size->ibuf)[1];
        int ih = x->shape[1], iw = x->shape[2];
        size_t nc = (size_t)x->shape[0];
        real *y = xmalloc(nc * oh * ow * sizeof(real));
        for (int m = 0; m < 3; m++) {
            snprintf(name, sizeof name, "case%d.%s", k, resize_mode_name(MODES[m]));
            Tensor *want = st_read_new(&f, name, DT_REAL, &err);
            if (!want) {
                check(0, "%s", err.msg);
                continue;
            }
            resize_bilinear_mode(y, x->data, nc, ih, iw, oh, ow, MODES[m]);
            double d = max_abs_diff(y, want->data, want->numel);
            check(d <= tol, "%s resize %dx%d -> %dx%d equals the reference: max difference %.3g",
                  resize_mode_name(MODES[m]), ih, iw, oh, ow, d);
            tensor_free(want);
        }
        free(y);
        tensor_free(x);
        tensor_free(size);
    }
    st_close(&f);
}

/* A row 0 1 2 3 (4 pixels) resized to 6 pixels, worked by hand from each convention's source coordinate. */
static void test_by_hand(void) {
    real x[4] = {0, 10, 20, 30}, y[6];
    /* align_corners: src = i * 3/5 -> 0, 0.6, 1.2, 1.8, 2.4, 3.0 */
    real ac[6] = {0, 6, 12, 18, 24, 30};
    /* half pixel: src = (i + .5) 4/6 - .5 -> 0 (clamped from -1/6), 0.5, 7/6, 11/6, 2.5, 3 (19/6 capped) */
    real hp[6] = {0, 5, (real)(70.0 / 6), (real)(110.0 / 6), 25, 30};
    /* TF1: src = i * 4/6 -> 0, 2/3, 4/3, 2, 8/3, 10/3 (past the last pixel: the last one) */
    real tf[6] = {0, (real)(20.0 / 3), (real)(40.0 / 3), 20, (real)(80.0 / 3), 30};
    const real *want[3] = {ac, hp, tf};
    for (int m = 0; m < 3; m++) {
        resize_bilinear_mode(y, x, 1, 1, 4, 1, 6, MODES[m]);
        check(max_abs_diff(y, want[m], 6) < 1e-5, "%s: 0 10 20 30 -> %g %g %g %g %g %g", resize_mode_name(MODES[m]),
              y[0], y[1], y[2], y[3], y[4], y[5]);
    }
    /* identity sizes are the identity in every convention */
    real img[15], out[15];
    for (int i = 0; i < 15; i++) img[i] = (real)(i * i % 7) - 3;
    for (int m = 0; m < 3; m++) {
        resize_bilinear_mode(out, img, 1, 3, 5, 3, 5, MODES[m]);
        check(max_abs_diff(out, img, 15) == 0, "%s resize to the same size is the identity", resize_mode_name(MODES[m]));
    }
}

/* <dy, R x> == <R^T dy, x> for random x, dy: the backward is the forward's adjoint; and it accumulates. */
static void test_adjoint(void) {
    Rng rng;
    rng_seed(&rng, 7);
    int sizes[][4] = {{5, 7, 11, 13}, {13, 9, 4, 6}, {6, 1, 3, 8}, {3, 3, 1, 1}};
    for (int s = 0; s < 4; s++)
        for (int m = 0; m < 3; m++) {
            int ih = sizes[s][0], iw = sizes[s][1], oh = sizes[s][2], ow = sizes[s][3];
            size_t nc = 3, ni = nc * ih * iw, no = nc * oh * ow;
            real *x = xmalloc(ni * sizeof(real)), *dx = xmalloc(ni * sizeof(real));
            real *y = xmalloc(no * sizeof(real)), *dy = xmalloc(no * sizeof(real));
            for (size_t i = 0; i < ni; i++) x[i] = (real)(rng_uniform(&rng) * 2 - 1), dx[i] = 1;
            for (size_t i = 0; i < no; i++) dy[i] = (real)(rng_uniform(&rng) * 2 - 1);
            resize_bilinear_mode(y, x, nc, ih, iw, oh, ow, MODES[m]);
            resize_bilinear_mode_backward(dx, dy, nc, ih, iw, oh, ow, MODES[m]);
            double a = 0, b = 0;
            for (size_t i = 0; i < no; i++) a += (double)dy[i] * y[i];
            for (size_t i = 0; i < ni; i++) b += (double)(dx[i] - 1) * x[i];
            check_close(b, a, 1e-5, 1e-5, "backward is the adjoint (after adding to 1s)");
            free(x), free(dx), free(y), free(dy);
        }
}

static void test_threads(void) {
    int saved = threads_count();
    size_t nc = 7;
    int ih = 9, iw = 11, oh = 23, ow = 17;
    real *x = xmalloc(nc * ih * iw * sizeof(real)), *y1 = xmalloc(nc * oh * ow * sizeof(real));
    real *y2 = xmalloc(nc * oh * ow * sizeof(real));
    for (size_t i = 0; i < nc * ih * iw; i++) x[i] = (real)sin((double)i);
    int same = 1;
    for (int m = 0; m < 3; m++) {
        threads_set(1);
        resize_bilinear_mode(y1, x, nc, ih, iw, oh, ow, MODES[m]);
        threads_set(2);
        resize_bilinear_mode(y2, x, nc, ih, iw, oh, ow, MODES[m]);
        same &= !memcmp(y1, y2, nc * oh * ow * sizeof(real));
    }
    threads_set(saved);
    check(same, "1 and 2 threads give the same bits");
    free(x), free(y1), free(y2);
}

typedef struct { int oh, ow; ResizeMode m; } ResizeArgs;
static Tensor *f_resize(Ctx *c, Tensor **in, void *user) {
    const ResizeArgs *a = user;
    return t_resize_bilinear_mode(c, in[0], a->oh, a->ow, a->m);
}

static void test_op(void) {
    /* a video (N, C, T, H, W): every frame resized as its own plane */
    Tensor *v = tensor_alloc(5, DIMS(2, 3, 2, 5, 4));
    Rng rng;
    rng_seed(&rng, 3);
    tensor_fill_uniform(v, &rng, -1, 1);
    Ctx c;
    ctx_init(&c);
    Tensor *y = t_resize_bilinear_mode(&c, v, 7, 9, RESIZE_TF1);
    check(y->ndim == 5 && y->shape[2] == 2 && y->shape[3] == 7 && y->shape[4] == 9, "video (2,3,2,5,4) -> (2,3,2,7,9)");
    real *want = xmalloc(y->numel * sizeof(real));
    resize_bilinear_mode(want, v->data, 12, 5, 4, 7, 9, RESIZE_TF1);
    check(max_abs_diff(y->data, want, y->numel) == 0, "the op is the kernel on N C T planes");
    free(want);
    ctx_free(&c);
    for (int m = 0; m < 3; m++) {
        ResizeArgs up = {7, 9, MODES[m]}, down = {3, 2, MODES[m]};
        char name[64];
        snprintf(name, sizeof name, "resize %s up", resize_mode_name(MODES[m]));
        gradcheck(name, f_resize, 1, &v, &up, 0);
        snprintf(name, sizeof name, "resize %s down", resize_mode_name(MODES[m]));
        gradcheck(name, f_resize, 1, &v, &down, 0);
    }
    tensor_free(v);
}

int main(void) {
    test_reference();
    test_by_hand();
    test_adjoint();
    test_threads();
    test_op();
    return check_summary("test_resize");
}
