/* test_metrics.c: PSNR and SSIM against values known in closed form. */
#include "check.h"
#include "program/metrics.h"

int main(void) {
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
