/* metrics.c: L1, PSNR and SSIM (metrics.h). SSIM follows pytorch_lightning's functional ssim: a separable
 * Gaussian filter applied to x, y, x^2, y^2 and xy on reflect-padded images, the SSIM map from the local
 * statistics, its padded border cropped, and the mean. Then the object measures of the synthetic world:
 * whether a generated frame keeps the start frame's object shape and colour (no official counterpart; the
 * paper judges this by eye). Dimension legend: C channels (3 for the object measures), H, W. */
#include "program/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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

/* ---- the object of the synthetic world: shape and colour kept ---------------------------------------------- */

static double colour_distance(const double a[3], const double b[3]) {
    return sqrt((a[0] - b[0]) * (a[0] - b[0]) + (a[1] - b[1]) * (a[1] - b[1]) + (a[2] - b[2]) * (a[2] - b[2]));
}

static void pixel_colour(const real *img, size_t hw, size_t i, double out[3]) {
    for (int ch = 0; ch < 3; ch++) out[ch] = img[(size_t)ch * hw + i];
}

/* a value in [-1, 1] at 8 bits, as an image file stores it */
static unsigned level8(real v) {
    double u = ((double)v + 1) * 127.5;
    return u <= 0 ? 0 : u >= 255 ? 255 : (unsigned)lround(u);
}

static int cmp_u32(const void *a, const void *b) {
    unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;
    return x < y ? -1 : x > y;
}

/* the mask of img's pixels farther than thr from bg, and its centroid; returns its pixel count */
static size_t object_mask(const real *img, int H, int W, const double bg[3], double thr, unsigned char *mask,
                          double centroid[2]) {
    size_t hw = (size_t)H * W, n = 0;
    double sx = 0, sy = 0;
    for (size_t i = 0; i < hw; i++) {
        double p[3];
        pixel_colour(img, hw, i, p);
        mask[i] = colour_distance(p, bg) > thr;
        if (mask[i]) {
            n++;
            sx += (double)(i % (size_t)W) + 0.5;
            sy += (double)(i / (size_t)W) + 0.5;
        }
    }
    centroid[0] = n ? sx / (double)n : 0;
    centroid[1] = n ? sy / (double)n : 0;
    return n;
}

void object_ref_init(ObjectRef *r, const real *x0, int H, int W) {
    size_t hw = (size_t)H * W;
    memset(r, 0, sizeof *r);
    r->H = H;
    r->W = W;
    r->mask = xmalloc(hw);
    /* the background: the most common 8-bit colour, then the mean of the pixels that have it */
    unsigned *key = xmalloc(hw * sizeof(unsigned)), *sorted = xmalloc(hw * sizeof(unsigned));
    for (size_t i = 0; i < hw; i++) key[i] = level8(x0[i]) << 16 | level8(x0[hw + i]) << 8 | level8(x0[2 * hw + i]);
    memcpy(sorted, key, hw * sizeof(unsigned));
    qsort(sorted, hw, sizeof(unsigned), cmp_u32);
    unsigned mode = sorted[0];
    size_t best = 0;
    for (size_t i = 0, j; i < hw; i = j) {
        for (j = i; j < hw && sorted[j] == sorted[i]; j++) {
        }
        if (j - i > best) {
            best = j - i;
            mode = sorted[i];
        }
    }
    for (size_t i = 0; i < hw; i++)
        if (key[i] == mode)
            for (int ch = 0; ch < 3; ch++) r->bg[ch] += x0[(size_t)ch * hw + i] / (double)best;
    free(key);
    free(sorted);
    /* the object's colour: the mean of the pixels farther than half the largest distance */
    double contrast = 0, p[3];
    for (size_t i = 0; i < hw; i++) {
        pixel_colour(x0, hw, i, p);
        contrast = fmax(contrast, colour_distance(p, r->bg));
    }
    size_t n = 0;
    for (size_t i = 0; i < hw && contrast > 0; i++) {
        pixel_colour(x0, hw, i, p);
        if (colour_distance(p, r->bg) > 0.5 * contrast) {
            for (int ch = 0; ch < 3; ch++) r->colour[ch] += p[ch];
            n++;
        }
    }
    for (int ch = 0; ch < 3; ch++) r->colour[ch] = n ? r->colour[ch] / (double)n : r->bg[ch];
    r->threshold = 0.5 * colour_distance(r->colour, r->bg);
    object_mask(x0, H, W, r->bg, r->threshold, r->mask, r->centroid);
}

void object_ref_free(ObjectRef *r) {
    free(r->mask);
    memset(r, 0, sizeof *r);
}

/* x0's mask at (x, y) px shifted by (dx, dy): bilinear between pixel centres, 0 outside */
static double shifted_mask(const ObjectRef *r, double x, double y, double dx, double dy) {
    double u = x - dx - 0.5, v = y - dy - 0.5, fu = floor(u), fv = floor(v), a = u - fu, b = v - fv, s = 0;
    for (int j = 0; j < 2; j++)
        for (int i = 0; i < 2; i++) {
            long px = (long)fu + i, py = (long)fv + j;
            if (px < 0 || py < 0 || px >= r->W || py >= r->H) continue;
            s += (i ? a : 1 - a) * (j ? b : 1 - b) * r->mask[(size_t)py * r->W + px];
        }
    return s;
}

void object_compare(const ObjectRef *r, const real *frame, double *iou, double *colour_error) {
    size_t hw = (size_t)r->H * r->W;
    unsigned char *mask = xmalloc(hw);
    double centroid[2];
    size_t n = object_mask(frame, r->H, r->W, r->bg, r->threshold, mask, centroid);
    *iou = 0;
    *colour_error = 2 * r->threshold;   /* |c - bg|: a vanished object scores worst */
    if (n && r->threshold > 0) {
        double dx = centroid[0] - r->centroid[0], dy = centroid[1] - r->centroid[1], inter = 0, uni = 0;
        double mean[3] = {0, 0, 0};
        for (size_t i = 0; i < hw; i++) {
            double a = shifted_mask(r, (double)(i % (size_t)r->W) + 0.5, (double)(i / (size_t)r->W) + 0.5, dx, dy);
            inter += fmin(a, mask[i]);
            uni += fmax(a, mask[i]);
            if (mask[i])
                for (int ch = 0; ch < 3; ch++) mean[ch] += frame[(size_t)ch * hw + i] / (double)n;
        }
        *iou = uni > 0 ? inter / uni : 0;
        *colour_error = colour_distance(mean, r->colour);
    }
    free(mask);
}
