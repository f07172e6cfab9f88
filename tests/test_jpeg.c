/* test_jpeg.c: the JPEG decoder against libjpeg-turbo's djpeg, its error handling, and the encoder.
 *
 * The fixtures in tests/data/jpeg were made by cjpeg from one natural-looking 45x33 image (odd sizes, so
 * MCUs are partial) and decoded by djpeg with its defaults (fancy upsampling, islow IDCT) into the .ppm /
 * .pgm next to them (tools/make_codec_fixtures.py). Our float IDCT differs from islow by rounding, so
 * the decoder must match within a mean absolute difference of 1 level and a maximum of 8 (0..255).
 * The encoder is checked by decoding its output (and, on the author's machine, with djpeg) and by PSNR
 * against the source. The codec does not depend on `real`, so the double build runs everything again.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "formats/files.h"
#include "formats/png.h"
#include "formats/jpeg.h"
#include "formats/ppm.h"
#include "formats/image.h"

#define DATA "tests/data/"

static int contains(const char *s, const char *sub) { return strstr(s, sub) != NULL; }

static double cpu_seconds(void) { return (double)clock() / CLOCKS_PER_SEC; }   /* not inflated by waiting */

static void test_fixtures(void) {
    const char *names[] = {"base_444", "base_422", "base_420", "base_440", "base_411", "grey", "restart_rows",
                           "restart_blocks", "prog_420", "prog_444", "prog_grey", "prog_restart", "nonint", "rgb"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char jp[128], rp[128];
        int grey = strstr(names[i], "grey") != NULL;
        snprintf(jp, sizeof jp, DATA "jpeg/%s.jpg", names[i]);
        snprintf(rp, sizeof rp, DATA "jpeg/%s.%s", names[i], grey ? "pgm" : "ppm");
        Image got, ref;
        I2vError e;
        if (!check(jpeg_read(jp, &got, &e) == 0, "%s: %s", jp, e.msg)) continue;
        if (!check(ppm_read(rp, &ref, &e) == 0, "%s: %s", rp, e.msg)) {
            image_free(&got);
            continue;
        }
        int same = got.width == ref.width && got.height == ref.height && got.channels == ref.channels;
        check(same, "%s: %zux%zux%d, djpeg gives %zux%zux%d", names[i], got.width, got.height, got.channels, ref.width,
              ref.height, ref.channels);
        if (same) {
            size_t n = image_bytes(&got);
            double sum = 0;
            int maxd = 0;
            for (size_t k = 0; k < n; k++) {
                int d = abs((int)got.data[k] - (int)ref.data[k]);
                sum += d;
                if (d > maxd) maxd = d;
            }
            double mad = sum / (double)n;
            printf("  %-15s vs djpeg: mean |diff| %.3f, max %d\n", names[i], mad, maxd);
            check(mad <= 1.0 && maxd <= 8, "%s: mean |diff| %.3f (<= 1), max %d (<= 8)", names[i], mad, maxd);
        }
        image_free(&got);
        image_free(&ref);
    }
}

static uint8_t *load(const char *path, size_t *n) {
    uint8_t *b;
    I2vError e;
    if (read_file_bytes(path, &b, n, &e)) {
        check(0, "cannot read %s: %s", path, e.msg);
        return NULL;
    }
    return b;
}

static size_t find_marker(const uint8_t *b, size_t n, int m) {
    for (size_t i = 2; i + 1 < n; i++)
        if (b[i] == 0xFF && b[i + 1] == m) return i;
    return 0;
}

static void expect_error(const uint8_t *b, size_t n, const char *name, const char *needle) {
    Image im;
    I2vError e;
    e.msg[0] = 0;
    int rc = jpeg_decode(b, n, name, &im, &e);
    check(rc != 0 && contains(e.msg, name) && contains(e.msg, needle), "%s: expected an error about '%s', got rc=%d '%s'",
          name, needle, rc, e.msg);
    if (rc == 0) image_free(&im);
}

static void test_errors(void) {
    size_t n, an;
    uint8_t *orig = load(DATA "jpeg/base_420.jpg", &n), *arith = load(DATA "jpeg/arith.jpg", &an);
    if (!orig || !arith) return;
    expect_error(arith, an, "arith.jpg", "arithmetic");
    uint8_t *b = xmalloc(n);
    size_t sof = find_marker(orig, n, 0xC0), dht = find_marker(orig, n, 0xC4), sos = find_marker(orig, n, 0xDA);
    check(sof && dht && sos, "markers found");

    memcpy(b, orig, n);
    b[sof + 4] = 12;
    expect_error(b, n, "twelve.jpg", "12-bit");
    memcpy(b, orig, n);   /* 60000 x 60000: rejected before allocation */
    b[sof + 5] = 0xEA, b[sof + 6] = 0x60, b[sof + 7] = 0xEA, b[sof + 8] = 0x60;
    expect_error(b, n, "huge.jpg", "cap of 2^28");
    memcpy(b, orig, n);
    b[sof + 1] = 0xC3;
    expect_error(b, n, "lossless.jpg", "lossless");
    memcpy(b, orig, n);
    b[sof + 9] = 4;
    expect_error(b, n, "cmyk.jpg", "4 components");
    memcpy(b, orig, n);   /* three codes of length 1 cannot exist (the total count is kept) */
    b[dht + 5] = (uint8_t)(b[dht + 5] + 3);
    b[dht + 7] = (uint8_t)(b[dht + 7] - 3);
    expect_error(b, n, "huff.jpg", "Huffman table");
    memcpy(b, orig, n);   /* the scan names a Huffman table that was never defined */
    b[sos + 6] = 0x33;
    expect_error(b, n, "notable.jpg", "not defined");
    expect_error(orig, n - 2, "noeoi.jpg", "EOI");
    expect_error(orig, sos + 40, "cut.jpg", "truncated");
    for (size_t cut = 2; cut < n; cut += n / 9 + 1) expect_error(orig, cut, "short.jpg", "JPEG");
    expect_error((const uint8_t *)"\x89PNG", 4, "png.jpg", "SOI");
    /* restart markers out of order */
    size_t rn;
    uint8_t *rst = load(DATA "jpeg/restart_rows.jpg", &rn);
    if (rst) {
        size_t r0 = find_marker(rst, rn, 0xD0);
        check(r0 > 0, "restart_rows.jpg has an RST0");
        rst[r0 + 1] = 0xD3;
        expect_error(rst, rn, "rst.jpg", "RST0");
        free(rst);
    }
    free(b);
    free(orig);
    free(arith);
}

static double psnr(const Image *a, const Image *b) {
    size_t n = image_bytes(a);
    double se = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a->data[i] - b->data[i];
        se += d * d;
    }
    return 10 * log10(255.0 * 255.0 / (se / (double)n + 1e-12));
}

static void test_encoder(void) {
    Image src;
    I2vError e;
    if (!check(png_read(DATA "png/natural.png", &src, &e) == 0, "%s", e.msg)) return;
    struct {
        int q, sub;
        double min_psnr;
    } cases[] = {{95, JPEG_444, 36.5}, {90, JPEG_444, 33.3}, {90, JPEG_420, 30.3}, {75, JPEG_420, 28.2},
                 {50, JPEG_444, 29.5}, {10, JPEG_420, 23.2}};
    /* cjpeg (libjpeg-turbo 2.1.5, islow) on the same image: 36.93, 33.83, 30.80, 28.74, 30.06 and 23.73 dB;
     * the thresholds sit 0.5 dB below those */
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n;
        uint8_t *jp = jpeg_encode(&src, cases[i].q, cases[i].sub, &n);
        Image back;
        if (check(jpeg_decode(jp, n, "enc.jpg", &back, &e) == 0, "decoding our JPEG: %s", e.msg)) {
            double p = psnr(&src, &back);
            printf("  encode q%d %s: %zu bytes, PSNR %.2f dB\n", cases[i].q, cases[i].sub == JPEG_420 ? "4:2:0" : "4:4:4", n,
                   p);
            check(back.width == src.width && back.height == src.height && back.channels == 3 && p >= cases[i].min_psnr,
                  "q%d: PSNR %.2f dB (want >= %.1f)", cases[i].q, p, cases[i].min_psnr);
            image_free(&back);
        }
        if (i == 2 && getenv("I2V_JPEG_OUT")) {   /* for checking with djpeg by hand */
            I2vError we;
            write_file_bytes(getenv("I2V_JPEG_OUT"), jp, n, &we);
        }
        free(jp);
    }
    /* odd sizes, greyscale and grey+alpha input */
    size_t sizes[][2] = {{1, 1}, {17, 9}, {8, 16}, {33, 1}};
    for (int s = 0; s < 4; s++)
        for (int c = 1; c <= 4; c++) {
            Image im, back;
            image_alloc(&im, sizes[s][0], sizes[s][1], c, 8);
            for (size_t k = 0; k < image_bytes(&im); k++) im.data[k] = (uint8_t)(k * 7 % 251);
            size_t n;
            uint8_t *jp = jpeg_encode(&im, 90, JPEG_420, &n);
            int rc = jpeg_decode(jp, n, "odd.jpg", &back, &e);
            check(rc == 0 && back.width == im.width && back.height == im.height && back.channels == (c <= 2 ? 1 : 3),
                  "encode/decode %zux%zu c%d: %s", im.width, im.height, c, rc ? e.msg : "");
            if (rc == 0) image_free(&back);
            free(jp);
            image_free(&im);
        }
    /* a flat grey image survives exactly */
    Image flat, back;
    image_alloc(&flat, 24, 16, 3, 8);
    memset(flat.data, 77, image_bytes(&flat));
    size_t n;
    uint8_t *jp = jpeg_encode(&flat, 75, JPEG_420, &n);
    if (check(jpeg_decode(jp, n, "flat.jpg", &back, &e) == 0, "%s", e.msg)) {
        int maxd = 0;
        for (size_t k = 0; k < image_bytes(&flat); k++) maxd = abs(back.data[k] - 77) > maxd ? abs(back.data[k] - 77) : maxd;
        check(maxd <= 1, "flat image: max error %d", maxd);
        image_free(&back);
    }
    free(jp);
    image_free(&flat);
    image_free(&src);
}

static void test_speed(void) {
    Image src, big;
    I2vError e;
    if (png_read(DATA "png/natural.png", &src, &e)) return;
    image_alloc(&big, 128, 128, 3, 8);
    for (size_t y = 0; y < 128; y++)
        for (size_t x = 0; x < 128; x++) memcpy(big.data + (y * 128 + x) * 3, src.data + ((y % 64) * 64 + x % 64) * 3, 3);
    int subs[2] = {JPEG_420, JPEG_444};
    for (int s = 0; s < 2; s++) {
        size_t n;
        uint8_t *jp = jpeg_encode(&big, 90, subs[s], &n);
        /* CPU time, best of 7 batches: robust to other processes sharing the machine */
        int reps = quick_mode() ? 5 : 40;
        double per = 1e9;
        for (int batch = 0; batch < 7; batch++) {
            double t0 = cpu_seconds();
            for (int r = 0; r < reps; r++) {
                Image im;
                if (jpeg_decode(jp, n, "speed.jpg", &im, &e) == 0) image_free(&im);
            }
            double t = (cpu_seconds() - t0) / reps;
            per = t < per ? t : per;
        }
        printf("  jpeg 128x128 %s q90 (%zu bytes): decode %.1f us\n", s ? "4:4:4" : "4:2:0", n, per * 1e6);
        if (!quick_mode()) check(per < 1e-3, "decoding a 128x128 JPEG takes %.3f ms (want < 1 ms)", per * 1e3);
        free(jp);
    }
    image_free(&src);
    image_free(&big);
}

int main(void) {
    test_fixtures();
    test_errors();
    test_encoder();
    test_speed();
    return check_summary("test_jpeg");
}
