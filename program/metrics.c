/* metrics.c: L1, PSNR and SSIM (metrics.h). SSIM follows pytorch_lightning's functional ssim: a separable
 * Gaussian filter applied to x, y, x^2, y^2 and xy on reflect-padded images, the SSIM map from the local
 * statistics, its padded border cropped, and the mean. */
#include "program/metrics.h"

#include <math.h>
#include <stdlib.h>

double metric_l1(const real *a, const real *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += fabs((double)a[i] - b[i]);
    return n ? s / n : 0;
}

static void min_max(const real *x, size_t n, double *lo, double *hi) {
    *lo = INFINITY;
    *hi = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        if (x[i] < *lo) *lo = x[i];
        if (x[i] > *hi) *hi = x[i];
    }
}

double metric_psnr(const real *pred, const real *target, size_t n, double range) {
    if (range <= 0) {
        double lo, hi;
        min_max(target, n, &lo, &hi);
        range = hi - lo;
    }
    double mse = 0;
    for (size_t i = 0; i < n; i++) mse += ((double)pred[i] - target[i]) * ((double)pred[i] - target[i]);
    mse /= n ? n : 1;
    return 10 * log10(range * range / mse);
}

#define SSIM_K 11
#define SSIM_PAD (SSIM_K / 2)

/* reflect (not repeating the edge), as torch.nn.functional.pad(mode='reflect') */
static int reflect(int i, int n) {
    if (n == 1) return 0;
    while (i < 0 || i >= n) i = i < 0 ? -i : 2 * (n - 1) - i;
    return i;
}

/* out = Gaussian-filtered src over the valid region of the padded image: (H, W) -> (H, W) */
static void gauss_filter(const double *src, int H, int W, const double *g, double *tmp, double *out) {
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            double s = 0;
            for (int k = 0; k < SSIM_K; k++) s += g[k] * src[y * W + reflect(x + k - SSIM_PAD, W)];
            tmp[y * W + x] = s;
        }
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            double s = 0;
            for (int k = 0; k < SSIM_K; k++) s += g[k] * tmp[reflect(y + k - SSIM_PAD, H) * W + x];
            out[y * W + x] = s;
        }
}

double metric_ssim(const real *pred, const real *target, int nimg, int C, int H, int W, double range) {
    size_t n = (size_t)nimg * C * H * W;
    if (range <= 0) {
        double a, b, c, d;
        min_max(pred, n, &a, &b);
        min_max(target, n, &c, &d);
        range = (b - a) > (d - c) ? b - a : d - c;
    }
    double g[SSIM_K], gs = 0;
    for (int k = 0; k < SSIM_K; k++) {
        double t = k - SSIM_PAD;
        g[k] = exp(-t * t / (2 * 1.5 * 1.5));
        gs += g[k];
    }
    for (int k = 0; k < SSIM_K; k++) g[k] /= gs;
    double c1 = (0.01 * range) * (0.01 * range), c2 = (0.03 * range) * (0.03 * range);
    size_t hw = (size_t)H * W;
    double *buf = malloc(hw * 11 * sizeof(double));
    if (!buf) return NAN;
    double *x = buf, *y = x + hw, *xx = y + hw, *yy = xx + hw, *xy = yy + hw, *tmp = xy + hw;
    double *mx = tmp + hw, *my = mx + hw, *sxx = my + hw, *syy = sxx + hw, *sxy = syy + hw;
    double total = 0;
    size_t count = 0;
    for (int img = 0; img < nimg; img++)
        for (int ch = 0; ch < C; ch++) {
            const real *p = pred + ((size_t)img * C + ch) * hw, *t = target + ((size_t)img * C + ch) * hw;
            for (size_t i = 0; i < hw; i++) {
                x[i] = p[i];
                y[i] = t[i];
                xx[i] = x[i] * x[i];
                yy[i] = y[i] * y[i];
                xy[i] = x[i] * y[i];
            }
            gauss_filter(x, H, W, g, tmp, mx);
            gauss_filter(y, H, W, g, tmp, my);
            gauss_filter(xx, H, W, g, tmp, sxx);
            gauss_filter(yy, H, W, g, tmp, syy);
            gauss_filter(xy, H, W, g, tmp, sxy);
            /* the map's border, where the window reached into the padding, is cropped as PL does */
            for (int r = SSIM_PAD; r < H - SSIM_PAD; r++)
                for (int q = SSIM_PAD; q < W - SSIM_PAD; q++) {
                    size_t i = (size_t)r * W + q;
                    double vx = sxx[i] - mx[i] * mx[i], vy = syy[i] - my[i] * my[i], cv = sxy[i] - mx[i] * my[i];
                    total += ((2 * mx[i] * my[i] + c1) * (2 * cv + c2)) /
                             ((mx[i] * mx[i] + my[i] * my[i] + c1) * (vx + vy + c2));
                    count++;
                }
        }
    free(buf);
    return count ? total / count : NAN;
}
