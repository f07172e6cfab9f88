/* test_metrics.c: PSNR and SSIM against values known in closed form; the object measures (shape IoU and
 * colour error) on drawn frames whose answers are known. */
#include "check.h"
#include "program/metrics.h"

/* a frame (3, H, W) of background bg with a w x h rectangle of colour col at (x, y) (top-left, px) */
enum { OH = 24, OW = 20 };
static void draw_rect(real *f, const double bg[3], const double col[3], int x, int y, int w, int h) {
    for (int ch = 0; ch < 3; ch++)
        for (int i = 0; i < OH; i++)
            for (int j = 0; j < OW; j++)
                f[(ch * OH + i) * OW + j] = (real)(j >= x && j < x + w && i >= y && i < y + h ? col[ch] : bg[ch]);
}

static void test_object(void) {
    static real x0[3 * OH * OW], f[3 * OH * OW];
    const double bg[3] = {-0.2, -0.2, -0.2}, col[3] = {0.8, -0.6, 0.4}, col2[3] = {0.6, -0.6, 0.4};
    draw_rect(x0, bg, col, 2, 3, 6, 5);
    x0[5] = x0[6] = (real)-0.1;   /* two faint stray pixels: neither background nor object */
    ObjectRef r;
    object_ref_init(&r, x0, OH, OW);
    check(fabs(r.bg[0] + 0.2) < 1e-6 && fabs(r.bg[1] + 0.2) < 1e-6, "the background is the most common colour");
    double d = sqrt(1.0 * 1.0 + 0.4 * 0.4 + 0.6 * 0.6);   /* |col - bg| */
    check_close(r.threshold, 0.5 * d, 0.02, 0, "threshold: half the object's distance from the background");
    double iou, ce;
    draw_rect(f, bg, col, 11, 14, 6, 5);   /* moved by whole pixels */
    object_compare(&r, f, &iou, &ce);
    check_close(iou, 1.0, 1e-9, 0, "the same shape moved: IoU 1");
    check(ce < 0.02, "the same colour moved: colour error %.4f", ce);
    draw_rect(f, bg, col2, 11, 14, 6, 5);
    object_compare(&r, f, &iou, &ce);
    check_close(ce, 0.2, 0.02, 0, "a colour 0.2 away");
    draw_rect(f, bg, col, 11, 14, 10, 3);   /* 30 px against 30 px: overlap 3 x 6 = 18 after centring */
    object_compare(&r, f, &iou, &ce);
    check(iou > 0.3 && iou < 0.6, "another shape of the same area: IoU %.3f", iou);
    draw_rect(f, bg, bg, 0, 0, 0, 0);   /* the object vanished */
    object_compare(&r, f, &iou, &ce);
    check(iou == 0 && fabs(ce - 2 * r.threshold) < 1e-12, "an empty mask: IoU 0, colour error |c - bg|");
    object_ref_free(&r);
    /* half a pixel: the mask moved bilinearly overlaps 5 of 6 columns in full and two halves */
    draw_rect(x0, bg, col, 2, 3, 6, 5);
    object_ref_init(&r, x0, OH, OW);
    r.centroid[0] -= 0.5;   /* as if x0's object sat half a pixel further left */
    draw_rect(f, bg, col, 2, 3, 6, 5);
    object_compare(&r, f, &iou, &ce);
    check_close(iou, 5.5 / 6.5, 1e-9, 0, "half a pixel off: IoU (5 + 1/2) / (6 + 1/2)");
    object_ref_free(&r);
}

int main(void) {
    test_object();
    enum { N = 2, C = 3, H = 16, W = 20 };
    static real a[N * C * H * W], b[N * C * H * W];
    size_t n = sizeof a / sizeof *a;
    Rng r;
    rng_seed(&r, 3);
    for (size_t i = 0; i < n; i++) a[i] = (real)(rng_uniform(&r) * 2 - 1);
    /* PSNR: a constant offset d gives mse = d^2 */
    for (size_t i = 0; i < n; i++) b[i] = a[i] + (real)0.1;
    check_close(metric_psnr(b, a, n, 2.0), 10 * log10(4 / 0.01), 1e-4, 1e-5, "psnr of an offset of 0.1, range 2");
    check_close(metric_l1(b, a, n), 0.1, 1e-6, 1e-5, "l1 of an offset");
    check(isinf(metric_psnr(a, a, n, 2.0)), "psnr of identical inputs is infinite");
    check_close(metric_ssim(a, a, N, C, H, W, 0), 1.0, 1e-9, 0, "ssim of identical images");
    /* constant images x = p, y = q: no variance, so SSIM = (2pq + c1) / (p^2 + q^2 + c1) everywhere */
    for (size_t i = 0; i < n; i++) {
        a[i] = (real)0.3;
        b[i] = (real)-0.2;
    }
    double c1 = (0.01 * 2) * (0.01 * 2);
    check_close(metric_ssim(a, b, N, C, H, W, 2.0), (2 * 0.3 * -0.2 + c1) / (0.09 + 0.04 + c1), 1e-6, 1e-5,
                "ssim of two constant images");
    /* SSIM is symmetric and drops with noise */
    for (size_t i = 0; i < n; i++) {
        a[i] = (real)sin(0.3 * (double)(i % W)) * (real)0.8;
        b[i] = a[i] + (real)(0.05 * rng_normal(&r));
    }
    double s1 = metric_ssim(a, b, N, C, H, W, 0), s2 = metric_ssim(b, a, N, C, H, W, 0);
    for (size_t i = 0; i < n; i++) b[i] = a[i] + (real)(0.3 * rng_normal(&r));
    double s3 = metric_ssim(a, b, N, C, H, W, 0);
    check(fabs(s1 - s2) < 1e-12 && s1 < 1 && s3 < s1 && s3 > -1, "ssim is symmetric and falls with noise (%.4f > %.4f)",
          s1, s3);
    return check_summary("test_metrics");
}
