/* test_image.c: the PNG, zlib, PPM/PGM, NPY and GIF codecs, the Image conversions and the grid helpers.
 *
 * PNG fixtures (tests/data/png, made by tools/make_codec_fixtures.py and checked against PIL there) cover
 * every colour type and bit depth, PLTE + tRNS, Adam7, all five filters, stored/fixed/dynamic deflate and
 * split IDATs; each must decode to the exact pixels stored beside it. Writers are checked by exact round
 * trips; the PNG writer's size is checked against zlib level 6 (PIL's output, the fixture itself). The GIF
 * writer is checked by an independent LZW decoder written here, not the library's. Bad input must give an
 * error that names the file and the problem. The codecs do not depend on `real`, so the double build simply
 * runs everything again.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/resource.h>

#include "check.h"
#include "formats/files.h"
#include "formats/imageio.h"
#include "formats/png.h"
#include "formats/ppm.h"
#include "formats/npy.h"
#include "formats/gif.h"
#include "formats/deflate.h"
#include "formats/image.h"

#define DATA "tests/data/"

static uint8_t *load(const char *path, size_t *n) {
    uint8_t *b;
    I2vError e;
    if (read_file_bytes(path, &b, n, &e)) {
        check(0, "cannot read fixture %s: %s", path, e.msg);
        return NULL;
    }
    return b;
}

static uint64_t rng_state = 0x1234567887654321ull;
static uint32_t rnd(void) {   /* xorshift64*, enough for test data */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 2685821657736338717ull) >> 32);
}

static int contains(const char *s, const char *sub) { return strstr(s, sub) != NULL; }

static double cpu_seconds(void) { return (double)clock() / CLOCKS_PER_SEC; }   /* not inflated by waiting */

/* ==================================================================================================== */
/* zlib                                                                                                  */
/* ==================================================================================================== */

static void test_zlib_roundtrip(void) {
    size_t sizes[] = {0, 1, 2, 3, 100, 4096, 70000, 300000};
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        size_t n = sizes[si];
        for (int kind = 0; kind < 4; kind++) {
            uint8_t *src = xmalloc(n + 1);
            for (size_t i = 0; i < n; i++) {
                if (kind == 0) src[i] = (uint8_t)rnd();                         /* incompressible */
                else if (kind == 1) src[i] = 'a';                               /* one long run */
                else if (kind == 2) src[i] = (uint8_t)("abcabdabe"[i % 9] + (i / 5000) % 3);   /* text-like */
                else src[i] = (uint8_t)((rnd() % 4) * 60);                      /* few symbols */
            }
            for (int level = 1; level <= 9; level += 4) {
                size_t zn, dn;
                uint8_t *z = zlib_compress(src, n, level, &zn);
                uint8_t *d = xmalloc(n + 1);
                I2vError e;
                int rc = zlib_decompress(z, zn, d, n, &dn, "rt", &e);
                int ok = rc == 0 && dn == n && (n == 0 || memcmp(src, d, n) == 0);
                check(ok, "zlib round trip n=%zu kind=%d level=%d: rc=%d %s", n, kind, level, rc, rc ? e.msg : "");
                if (kind == 0 && n > 1000) check(zn < n + n / 100 + 64, "incompressible data grows too much: %zu -> %zu", n, zn);
                if (kind == 1 && n > 1000) check(zn < n / 100 + 64, "a run of %zu bytes compresses to %zu", n, zn);
                free(z);
                free(d);
            }
            free(src);
        }
    }
    check(crc32_update(0, (const uint8_t *)"123456789", 9) == 0xCBF43926u, "CRC-32 check value");
    check(adler32_update(1, (const uint8_t *)"Wikipedia", 9) == 0x11E60398u, "Adler-32 check value");
}

static void test_zlib_errors(void) {
    I2vError e;
    uint8_t out[64];
    size_t dn;
    /* a dynamic block whose code length code is over-subscribed: HCLEN = 4 lengths, all 1 bit */
    const uint8_t bad_huff[] = {0x78, 0x9C, 0x05, 0x00, 0x92, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    check(zlib_decompress(bad_huff, sizeof bad_huff, out, sizeof out, &dn, "bad.z", &e) != 0 &&
              contains(e.msg, "bad.z") && contains(e.msg, "code length"),
          "over-subscribed Huffman code is rejected: %s", e.msg);
    const uint8_t bad_type[] = {0x78, 0x9C, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00};
    check(zlib_decompress(bad_type, sizeof bad_type, out, sizeof out, &dn, "t.z", &e) != 0 &&
              contains(e.msg, "block type 3"), "block type 3 is rejected: %s", e.msg);
    const uint8_t bad_hdr[] = {0x78, 0x9D, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01};
    check(zlib_decompress(bad_hdr, sizeof bad_hdr, out, sizeof out, &dn, "h.z", &e) != 0 && contains(e.msg, "31"),
          "zlib header check is verified: %s", e.msg);
    size_t zn;
    const uint8_t msg[] = "hello hello hello hello";
    uint8_t *z = zlib_compress(msg, sizeof msg, 6, &zn);
    z[zn - 1] ^= 1;
    check(zlib_decompress(z, zn, out, sizeof out, &dn, "a.z", &e) != 0 && contains(e.msg, "Adler"),
          "a wrong Adler-32 is detected: %s", e.msg);
    z[zn - 1] ^= 1;
    check(zlib_decompress(z, zn - 6, out, sizeof out, &dn, "tr.z", &e) != 0 && contains(e.msg, "truncated"),
          "a truncated stream is detected: %s", e.msg);
    check(zlib_decompress(z, zn, out, 5, &dn, "cap.z", &e) != 0 && contains(e.msg, "more data"),
          "output beyond the capacity is refused: %s", e.msg);
    free(z);
}

/* ==================================================================================================== */
/* PNG                                                                                                   */
/* ==================================================================================================== */

static void test_png_fixtures(void) {
    FILE *f = fopen(DATA "png/manifest.txt", "r");
    check(f != NULL, "cannot open %s", DATA "png/manifest.txt");
    if (!f) return;
    char line[256];
    int count = 0;
    while (fgets(line, sizeof line, f)) {
        char name[64];
        int w, h, c, d;
        if (line[0] == '#' || sscanf(line, "%63s %d %d %d %d", name, &w, &h, &c, &d) != 5) continue;
        char path[256];
        snprintf(path, sizeof path, DATA "png/%s.png", name);
        Image im;
        I2vError e;
        int rc = png_read(path, &im, &e);
        if (!check(rc == 0, "%s: %s", path, rc ? e.msg : "")) continue;
        check((int)im.width == w && (int)im.height == h && im.channels == c && im.depth == d,
              "%s: got %zux%zu c%d d%d, want %dx%d c%d d%d", name, im.width, im.height, im.channels, im.depth, w, h, c, d);
        snprintf(path, sizeof path, DATA "png/%s.raw", name);
        size_t rn;
        uint8_t *raw = load(path, &rn);
        size_t count_s = (size_t)w * (size_t)h * (size_t)c, bad = 0;
        if (raw && rn == count_s * (size_t)(d / 8) && image_bytes(&im) == rn) {
            for (size_t i = 0; i < count_s; i++) {
                unsigned want = d == 16 ? (unsigned)raw[2 * i] << 8 | raw[2 * i + 1] : raw[i];
                unsigned got = image_sample(&im, i / ((size_t)c * (size_t)w), (i / (size_t)c) % (size_t)w, (int)(i % (size_t)c));
                bad += want != got;
            }
            check(bad == 0, "%s: %zu of %zu samples differ from the expected pixels", name, bad, count_s);
        } else {
            check(0, "%s: expected-pixel file has %zu bytes, image %zu", name, rn, image_bytes(&im));
        }
        free(raw);
        image_free(&im);
        count++;
    }
    fclose(f);
    check(count >= 30, "only %d PNG fixtures were listed", count);
}

static void random_image(Image *im, size_t w, size_t h, int c, int d, int smooth) {
    image_alloc(im, w, h, c, d);
    size_t n = w * h * (size_t)c;
    for (size_t i = 0; i < n; i++) {
        unsigned v = smooth ? (unsigned)((i / (size_t)c) % w * 3 + (i / ((size_t)c * w)) * 2 + (size_t)(i % (size_t)c) * 50 +
                                         rnd() % 8)
                            : rnd();
        if (d == 16) ((uint16_t *)(void *)im->data)[i] = (uint16_t)(smooth ? v * 257 : v);
        else im->data[i] = (uint8_t)v;
    }
}

static void test_png_roundtrip(void) {
    size_t dims[][2] = {{1, 1}, {7, 3}, {64, 48}, {3, 70}, {200, 2}};
    for (size_t di = 0; di < 5; di++)
        for (int c = 1; c <= 4; c++)
            for (int d = 8; d <= 16; d += 8)
                for (int smooth = 0; smooth < 2; smooth++) {
                    Image im, back;
                    random_image(&im, dims[di][0], dims[di][1], c, d, smooth);
                    size_t n;
                    uint8_t *png = png_encode(&im, &n);
                    I2vError e;
                    int rc = png_decode(png, n, "mem.png", &back, &e);
                    int ok = rc == 0 && back.width == im.width && back.height == im.height && back.channels == c &&
                             back.depth == d && memcmp(back.data, im.data, image_bytes(&im)) == 0;
                    check(ok, "PNG round trip %zux%zu c%d d%d smooth%d: %s", im.width, im.height, c, d, smooth, rc ? e.msg : "");
                    free(png);
                    image_free(&im);
                    if (rc == 0) image_free(&back);
                }
    /* file round trip through png_write / image_read */
    Image im, back;
    random_image(&im, 33, 17, 3, 8, 1);
    char path[64];
    snprintf(path, sizeof path, "/tmp/i2v_test_image_%d.png", (int)getpid());
    I2vError e;
    check(image_write(path, &im, &e) == 0, "image_write %s: %s", path, e.msg);
    check(image_read(path, &back, &e) == 0 && memcmp(back.data, im.data, image_bytes(&im)) == 0,
          "image_read after image_write: %s", e.msg);
    remove(path);
    image_free(&im);
    image_free(&back);
}

/* The synthetic fixture's pixels, the same integer formulas as synthetic() in tools/make_codec_fixtures.py. */
static void synth_pixel(int x, int y, uint8_t *p) {
    p[0] = (uint8_t)((x * 2 + y) & 255);
    p[1] = (uint8_t)(((x / 8 + y / 8) % 2) * 200 + 20);
    p[2] = (uint8_t)((x - 64) * (x - 64) + (y - 64) * (y - 64) < 40 * 40 ? 230 : (y * 2) & 255);
}

static void test_png_ratio(void) {
    const char *names[] = {"natural", "synth"};
    for (int k = 0; k < 2; k++) {
        char path[128];
        snprintf(path, sizeof path, DATA "png/%s.png", names[k]);
        size_t zlib6;   /* the fixture was written by PIL with zlib level 6: its size is the reference */
        uint8_t *buf = load(path, &zlib6);
        if (!buf) continue;
        Image im;
        I2vError e;
        if (!check(png_decode(buf, zlib6, path, &im, &e) == 0, "%s", e.msg)) {
            free(buf);
            continue;
        }
        if (k == 1) {
            size_t bad = 0;
            for (int y = 0; y < 128; y++)
                for (int x = 0; x < 128; x++) {
                    uint8_t p[3];
                    synth_pixel(x, y, p);
                    bad += memcmp(p, im.data + ((size_t)y * 128 + (size_t)x) * 3, 3) != 0;
                }
            check(bad == 0, "synth.png differs from the C formula in %zu pixels", bad);
        }
        size_t n;
        uint8_t *ours = png_encode(&im, &n);
        double ratio = (double)n / (double)zlib6;
        printf("  png size %s %zux%zu: ours %zu bytes, zlib level 6 (PIL) %zu bytes, ratio %.3f\n", names[k], im.width,
               im.height, n, zlib6, ratio);
        check(ratio <= 1.3, "%s: PNG is %.3f times the zlib level 6 size (at most 1.3)", names[k], ratio);
        free(ours);
        free(buf);
        image_free(&im);
    }
}

/* Rebuilds a chunk's CRC after a deliberate change, so the test reaches the check after the CRC one. */
static void fix_crc(uint8_t *chunk) {
    uint32_t len = (uint32_t)chunk[0] << 24 | (uint32_t)chunk[1] << 16 | (uint32_t)chunk[2] << 8 | chunk[3];
    uint32_t c = crc32_update(0, chunk + 4, (size_t)len + 4);
    uint8_t *p = chunk + 8 + len;
    p[0] = (uint8_t)(c >> 24);
    p[1] = (uint8_t)(c >> 16);
    p[2] = (uint8_t)(c >> 8);
    p[3] = (uint8_t)c;
}

static size_t find_chunk(const uint8_t *png, size_t n, const char *type) {
    for (size_t pos = 8; pos + 12 <= n;) {
        uint32_t len = (uint32_t)png[pos] << 24 | (uint32_t)png[pos + 1] << 16 | (uint32_t)png[pos + 2] << 8 | png[pos + 3];
        if (!memcmp(png + pos + 4, type, 4)) return pos;
        pos += 12 + (size_t)len;
    }
    return 0;
}

static void expect_png_error(const uint8_t *buf, size_t n, const char *name, const char *needle) {
    Image im;
    I2vError e;
    e.msg[0] = 0;
    int rc = png_decode(buf, n, name, &im, &e);
    check(rc != 0 && contains(e.msg, name) && contains(e.msg, needle), "%s: expected an error about '%s', got rc=%d '%s'",
          name, needle, rc, e.msg);
    if (rc == 0) image_free(&im);
}

static void test_png_errors(void) {
    size_t n;
    uint8_t *orig = load(DATA "png/rgb8.png", &n);
    if (!orig) return;
    uint8_t *b = xmalloc(n);
    size_t ihdr = find_chunk(orig, n, "IHDR"), idat = find_chunk(orig, n, "IDAT");
    check(ihdr && idat, "fixture chunks found");

    memcpy(b, orig, n);
    b[idat + 10] ^= 0x40;
    expect_png_error(b, n, "badcrc.png", "CRC");
    for (size_t cut = 0; cut < n; cut += n / 7 + 1) expect_png_error(orig, cut, "short.png", "PNG");
    expect_png_error(orig, n - 12, "noiend.png", "truncated");

    memcpy(b, orig, n);   /* 60000 x 60000: rejected from the header, before any allocation */
    b[ihdr + 8] = 0, b[ihdr + 9] = 0, b[ihdr + 10] = 0xEA, b[ihdr + 11] = 0x60;
    b[ihdr + 12] = 0, b[ihdr + 13] = 0, b[ihdr + 14] = 0xEA, b[ihdr + 15] = 0x60;
    fix_crc(b + ihdr);
    expect_png_error(b, n, "huge.png", "cap of 2^28");

    memcpy(b, orig, n);
    b[ihdr + 16] = 3;   /* bit depth 3 */
    fix_crc(b + ihdr);
    expect_png_error(b, n, "depth.png", "bit depth 3");

    memcpy(b, orig, n);   /* corrupt the Adler-32 (last 4 bytes of the IDAT data) */
    uint32_t len = (uint32_t)b[idat] << 24 | (uint32_t)b[idat + 1] << 16 | (uint32_t)b[idat + 2] << 8 | b[idat + 3];
    b[idat + 8 + len - 1] ^= 0x01;
    fix_crc(b + idat);
    expect_png_error(b, n, "adler.png", "Adler-32");

    memcpy(b, orig, n);   /* an unknown critical chunk: rename the tEXt chunk to "TEXT" */
    size_t text = find_chunk(orig, n, "tEXt");
    memcpy(b + text + 4, "TEXT", 4);
    fix_crc(b + text);
    expect_png_error(b, n, "critical.png", "critical chunk");

    /* a filter type of 5: encode an image, then rewrite the stream with a bad filter byte */
    Image im;
    random_image(&im, 4, 4, 1, 8, 0);
    uint8_t raw[4 * 5];
    for (int y = 0; y < 4; y++) {
        raw[y * 5] = (uint8_t)(y == 2 ? 5 : 0);
        memcpy(raw + y * 5 + 1, im.data + y * 4, 4);
    }
    size_t zn;
    uint8_t *z = zlib_compress(raw, sizeof raw, 6, &zn);
    uint8_t png[256];
    size_t k = 0;
    memcpy(png, "\x89PNG\r\n\x1a\n", 8);
    k = 8;
    const uint8_t ih[] = {0, 0, 0, 13, 'I', 'H', 'D', 'R', 0, 0, 0, 4, 0, 0, 0, 4, 8, 0, 0, 0, 0, 0, 0, 0, 0};
    memcpy(png + k, ih, sizeof ih);
    fix_crc(png + k);
    k += sizeof ih;
    png[k] = 0, png[k + 1] = 0, png[k + 2] = (uint8_t)(zn >> 8), png[k + 3] = (uint8_t)zn;
    memcpy(png + k + 4, "IDAT", 4);
    memcpy(png + k + 8, z, zn);
    fix_crc(png + k);
    k += 12 + zn;
    memcpy(png + k, "\0\0\0\0IEND\xae\x42\x60\x82", 12);
    k += 12;
    expect_png_error(png, k, "filter.png", "filter type 5");
    free(z);
    image_free(&im);

    /* palette index out of range: pal1 has 2 entries; shrink PLTE to 1 entry */
    size_t pn;
    uint8_t *pal = load(DATA "png/pal1.png", &pn);
    if (pal) {
        size_t plte = find_chunk(pal, pn, "PLTE");
        uint8_t *q = xmalloc(pn);
        /* copy everything, replacing PLTE (length 6) by a 3-byte PLTE */
        memcpy(q, pal, plte);
        memcpy(q + plte, "\0\0\0\x03PLTE", 8);
        memcpy(q + plte + 8, pal + plte + 8, 3);
        fix_crc(q + plte);
        memcpy(q + plte + 15, pal + plte + 18, pn - plte - 18);
        expect_png_error(q, pn - 3, "palidx.png", "palette index");
        free(q);
        free(pal);
    }
    expect_png_error((const uint8_t *)"GIF89a", 6, "notpng.png", "signature");
    free(b);
    free(orig);
}

static void test_png_speed(void) {
    size_t n;
    uint8_t *buf = load(DATA "png/natural.png", &n);
    if (!buf) return;
    Image small, big;
    I2vError e;
    if (png_decode(buf, n, "natural.png", &small, &e)) {
        free(buf);
        return;
    }
    image_alloc(&big, 128, 128, 3, 8);   /* 2 x 2 tiles of the 64 x 64 fixture */
    for (size_t y = 0; y < 128; y++)
        for (size_t x = 0; x < 128; x++) memcpy(big.data + (y * 128 + x) * 3, small.data + ((y % 64) * 64 + x % 64) * 3, 3);
    size_t pn;
    uint8_t *png = png_encode(&big, &pn);
    /* CPU time, best of 7 batches: robust to other processes sharing the machine */
    int reps = quick_mode() ? 5 : 40;
    double per = 1e9;
    for (int batch = 0; batch < 7; batch++) {
        double t0 = cpu_seconds();
        for (int r = 0; r < reps; r++) {
            Image im;
            if (png_decode(png, pn, "speed.png", &im, &e) == 0) image_free(&im);
        }
        double t = (cpu_seconds() - t0) / reps;
        per = t < per ? t : per;
    }
    double t1 = cpu_seconds();
    size_t en = 0;
    for (int r = 0; r < reps; r++) {
        uint8_t *p = png_encode(&big, &en);
        free(p);
    }
    double enc = (cpu_seconds() - t1) / reps;
    printf("  png 128x128 RGB: decode %.1f us, encode %.1f us (%zu bytes)\n", per * 1e6, enc * 1e6, en);
    if (!quick_mode()) check(per < 1e-3, "decoding a 128x128 PNG takes %.3f ms (want < 1 ms)", per * 1e3);
    free(png);
    free(buf);
    image_free(&small);
    image_free(&big);
}

/* ==================================================================================================== */
/* PPM / PGM                                                                                             */
/* ==================================================================================================== */

static void test_ppm(void) {
    Image im;
    I2vError e;
    if (check(ppm_read(DATA "ppm/p6_comments_1000.ppm", &im, &e) == 0, "%s", e.msg)) {
        check(im.width == 3 && im.height == 2 && im.channels == 3 && im.depth == 16, "P6 maxval 1000 header");
        /* samples are rescaled to 16 bits: v * 65535 / 1000, rounded */
        check(image_sample(&im, 0, 0, 1) == (500 * 65535 + 500) / 1000, "P6 rescaled sample %u", image_sample(&im, 0, 0, 1));
        check(image_sample(&im, 0, 0, 2) == 65535 && image_sample(&im, 1, 2, 0) == 65535, "P6 maxval maps to 65535");
        image_free(&im);
    }
    if (check(ppm_read(DATA "ppm/p5_15.pgm", &im, &e) == 0, "%s", e.msg)) {
        check(im.channels == 1 && im.depth == 8 && im.width == 4, "P5 maxval 15 header");
        check(im.data[0] == 0 && im.data[1] == 85 && im.data[2] == 170 && im.data[3] == 255, "P5 maxval 15 rescaled");
        image_free(&im);
    }
    for (int c = 1; c <= 3; c += 2)
        for (int d = 8; d <= 16; d += 8) {
            Image a, b;
            random_image(&a, 9, 5, c, d, 0);
            size_t n;
            uint8_t *p = ppm_encode(&a, &n, &e);
            int ok = p && ppm_decode(p, n, "rt.ppm", &b, &e) == 0;
            check(ok && b.channels == c && b.depth == d && memcmp(a.data, b.data, image_bytes(&a)) == 0,
                  "PPM round trip c%d d%d", c, d);
            if (ok) image_free(&b);
            if (ok) {
                check(ppm_decode(p, n - 1, "short.ppm", &b, &e) != 0 && contains(e.msg, "short.ppm") &&
                          contains(e.msg, "truncated"), "truncated PPM: %s", e.msg);
                check(image_decode(p, n, "x.ppm", &b, &e) == 0, "image_decode dispatches PPM");
                image_free(&b);
            }
            free(p);
            image_free(&a);
        }
    Image a;
    random_image(&a, 2, 2, 4, 8, 0);
    size_t n;
    check(ppm_encode(&a, &n, &e) == NULL && contains(e.msg, "4 channels"), "RGBA cannot be PPM: %s", e.msg);
    image_free(&a);
    const char *bad[] = {"P6\n3 2\n70000\n", "P6\n0 2\n255\n", "P6\n3 x\n255\n", "P6\n60000 60000 255\n", "P3\n1 1 255\n0 0 0\n"};
    const char *needle[] = {"maxval", "size", "decimal", "2^28", "P3"};
    for (int i = 0; i < 5; i++) {
        Image im2;
        int rc = image_decode((const uint8_t *)bad[i], strlen(bad[i]), "bad.ppm", &im2, &e);
        check(rc != 0 && contains(e.msg, "bad.ppm") && contains(e.msg, needle[i]), "bad PPM %d: %s", i, e.msg);
    }
}

/* ==================================================================================================== */
/* NPY                                                                                                   */
/* ==================================================================================================== */

static void test_npy(void) {
    NpyArray a;
    I2vError e;
    if (check(npy_read(DATA "npy/f32_234.npy", &a, &e) == 0, "%s", e.msg)) {
        check(a.dtype == NPY_F32 && a.ndim == 3 && a.shape[0] == 2 && a.shape[1] == 3 && a.shape[2] == 4 && a.count == 24,
              "f32 (2,3,4) header");
        const float *f = a.data;
        int ok = 1;
        for (int i = 0; i < 24; i++) ok &= f[i] == (float)((i - 7.5) / 4);
        check(ok, "f32 values");
        npy_free(&a);
    }
    if (check(npy_read(DATA "npy/u8_5.npy", &a, &e) == 0, "%s", e.msg)) {
        const uint8_t *u = a.data;
        check(a.dtype == NPY_U8 && a.ndim == 1 && a.count == 5 && u[2] == 127 && u[4] == 255, "u8 (5,)");
        npy_free(&a);
    }
    if (check(npy_read(DATA "npy/f64.npy", &a, &e) == 0, "%s", e.msg)) {
        const double *f = a.data;
        int ok = a.dtype == NPY_F64 && a.ndim == 3 && a.count == 24;
        for (int i = 0; i < 24 && ok; i++) ok &= f[i] == (i - 7.5) / 4;
        check(ok, "f64 (2,3,4) header and values");
        npy_free(&a);
    }
    if (check(npy_read(DATA "npy/scalar.npy", &a, &e) == 0, "%s", e.msg)) {
        check(a.ndim == 0 && a.count == 1 && ((float *)a.data)[0] == 3.25f, "0-d array");
        npy_free(&a);
    }
    if (check(npy_read(DATA "npy/v2_u8_22.npy", &a, &e) == 0, "hand-written v2.0 header: %s", e.msg)) {
        const uint8_t *u = a.data;
        check(a.ndim == 2 && a.shape[0] == 2 && a.shape[1] == 2 && u[0] == 9 && u[3] == 250, "v2.0 values");
        npy_free(&a);
    }
    const char *bad[] = {"fortran.npy", "bigendian.npy", "i64.npy"};
    const char *needle[] = {"Fortran", "'>f4'", "'<i8'"};
    for (int i = 0; i < 3; i++) {
        char path[128];
        snprintf(path, sizeof path, DATA "npy/%s", bad[i]);
        check(npy_read(path, &a, &e) != 0 && contains(e.msg, bad[i]) && contains(e.msg, needle[i]), "%s: %s", bad[i], e.msg);
    }
    /* round trips, including 0-d and 1-d shapes */
    size_t shapes[][3] = {{0, 0, 0}, {7, 0, 0}, {2, 5, 0}, {3, 1, 4}};
    int ndims[] = {0, 1, 2, 3};
    for (int s = 0; s < 4; s++)
        for (int t = 0; t < 2; t++) {
            size_t count = 1;
            for (int i = 0; i < ndims[s]; i++) count *= shapes[s][i];
            float fv[64];
            uint8_t uv[64];
            for (size_t i = 0; i < count; i++) {
                fv[i] = (float)i * -0.37f + 1e-3f;
                uv[i] = (uint8_t)(i * 37);
            }
            size_t n;
            uint8_t *buf = npy_encode(t ? NPY_U8 : NPY_F32, ndims[s], shapes[s], t ? (void *)uv : (void *)fv, &n);
            check((10 + (size_t)(buf[8] | buf[9] << 8)) % 64 == 0 && buf[9 + (buf[8] | buf[9] << 8)] == '\n',
                  "NPY header padded to 64 bytes and ends with a newline");
            int rc = npy_decode(buf, n, "rt.npy", &a, &e);
            int ok = rc == 0 && a.ndim == ndims[s] && a.count == count && a.dtype == (t ? NPY_U8 : NPY_F32) &&
                     memcmp(a.data, t ? (void *)uv : (void *)fv, count * (t ? 1 : 4)) == 0;
            for (int i = 0; i < ndims[s] && ok; i++) ok &= a.shape[i] == shapes[s][i];
            check(ok, "NPY round trip ndim %d dtype %d: %s", ndims[s], t, rc ? e.msg : "");
            if (rc == 0) npy_free(&a);
            if (count > 0)
                check(npy_decode(buf, n - 1, "short.npy", &a, &e) != 0 && contains(e.msg, "truncated"),
                      "truncated NPY data is an error: %s", e.msg);
            free(buf);
        }
    {
        double dv[5] = {1.0 / 3, -2.5e-300, 1e300, -0.0, 7};
        size_t n, shape = 5;
        uint8_t *buf = npy_encode(NPY_F64, 1, &shape, dv, &n);
        int rc = npy_decode(buf, n, "rt64.npy", &a, &e);
        check(rc == 0 && a.dtype == NPY_F64 && a.count == 5 && !memcmp(a.data, dv, sizeof dv),
              "NPY float64 round trip keeps every bit");
        if (rc == 0) npy_free(&a);
        free(buf);
    }
    const char *hdr1 = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }";
    uint8_t buf[128];
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (uint8_t)strlen(hdr1);
    buf[9] = 0;
    memcpy(buf + 10, hdr1, strlen(hdr1));
    check(npy_decode(buf, 10 + strlen(hdr1) + 8, "short.npy", &a, &e) != 0 && contains(e.msg, "truncated"),
          "NPY with too little data: %s", e.msg);
}

/* ==================================================================================================== */
/* GIF: an independent decoder (LZW with strings stored whole, unlike the library's prefix chains)        */
/* ==================================================================================================== */

typedef struct TestGif {
    size_t w, h, frames;
    uint8_t pal[256][3];
    int npal;
    int loop;         /* NETSCAPE2.0 loop count, -1 if absent */
    int delay[64];
    int clears;       /* clear codes seen after the first one of each frame */
    uint8_t *idx;     /* (frames, h, w) palette indices */
} TestGif;

static int tg_lzw(const uint8_t *d, size_t n, int min, uint8_t *out, size_t npix, int *clears) {
    uint32_t off[4096], len[4096];
    size_t pcap = 1 << 16, plen = 256;
    uint8_t *pool = xmalloc(pcap);
    for (int i = 0; i < 256; i++) {
        pool[i] = (uint8_t)i;
        off[i] = (uint32_t)i;
        len[i] = 1;
    }
    unsigned clear = 1u << min, eoi = clear + 1, next = eoi + 1;
    int size = min + 1, prev = -1, first = 1;
    size_t bit = 0, o = 0;
    int ok = 0;
    while (bit + (size_t)size <= n * 8) {
        unsigned code = 0;
        for (int i = 0; i < size; i++, bit++) code |= (unsigned)((d[bit / 8] >> (bit % 8)) & 1) << i;
        if (code == clear) {
            if (!first) (*clears)++;
            first = 0;
            next = eoi + 1;
            size = min + 1;
            prev = -1;
            plen = 256;
            continue;
        }
        if (code == eoi) {
            ok = o == npix;
            break;
        }
        if (prev < 0) {
            if (code >= clear || o >= npix) break;
            out[o++] = (uint8_t)code;
            prev = (int)code;
            continue;
        }
        if (code > next) break;
        /* the new entry: prev's string plus the first byte of code's string (or of prev's, if code is new) */
        uint32_t nl = len[prev] + 1;
        if (plen + nl > pcap) {
            pcap = 2 * (plen + nl);
            pool = realloc(pool, pcap);
        }
        memcpy(pool + plen, pool + off[prev], len[prev]);
        pool[plen + len[prev]] = code < next ? pool[off[code]] : pool[off[prev]];
        if (next < 4096) {
            off[next] = (uint32_t)plen;
            len[next] = nl;
            plen += nl;
        }
        uint32_t co = code == next ? (uint32_t)(plen - nl) : off[code], cl = code == next ? nl : len[code];
        if (o + cl > npix) break;
        memcpy(out + o, pool + co, cl);
        o += cl;
        if (next < 4096) {
            next++;
            if (next == (1u << size) && size < 12) size++;
        }
        prev = (int)code;
    }
    free(pool);
    return ok;
}

static int tg_decode(const uint8_t *b, size_t n, TestGif *g) {
    memset(g, 0, sizeof *g);
    g->loop = -1;
    if (n < 13 || memcmp(b, "GIF89a", 6)) return 0;
    g->w = b[6] | b[7] << 8;
    g->h = b[8] | b[9] << 8;
    if (!(b[10] & 0x80)) return 0;
    g->npal = 2 << (b[10] & 7);
    size_t p = 13;
    memcpy(g->pal, b + p, (size_t)g->npal * 3);
    p += (size_t)g->npal * 3;
    g->idx = xmalloc(64 * g->w * g->h);
    while (p < n) {
        if (b[p] == 0x3B) return 1;
        if (b[p] == 0x21) {
            if (b[p + 1] == 0xFF && !memcmp(b + p + 3, "NETSCAPE2.0", 11)) g->loop = b[p + 16] | b[p + 17] << 8;
            if (b[p + 1] == 0xF9 && g->frames < 64) g->delay[g->frames] = b[p + 4] | b[p + 5] << 8;
            p += 2;
            while (b[p]) p += 1 + b[p];
            p++;
        } else if (b[p] == 0x2C) {
            size_t fw = b[p + 5] | b[p + 6] << 8, fh = b[p + 7] | b[p + 8] << 8;
            if (fw != g->w || fh != g->h || (b[p + 9] & 0xC0) || g->frames >= 64) return 0;
            int min = b[p + 10];
            p += 11;
            uint8_t *data = xmalloc(n);
            size_t dn = 0;
            while (b[p]) {
                memcpy(data + dn, b + p + 1, b[p]);
                dn += b[p];
                p += 1 + b[p];
            }
            p++;
            int ok = tg_lzw(data, dn, min, g->idx + g->frames * g->w * g->h, g->w * g->h, &g->clears);
            free(data);
            if (!ok) return 0;
            g->frames++;
        } else {
            return 0;
        }
    }
    return 0;
}

static long dist2(const uint8_t *a, const uint8_t *b) {
    long d = 0;
    for (int c = 0; c < 3; c++) d += ((long)a[c] - b[c]) * ((long)a[c] - b[c]);
    return d;
}

static void gif_case(const char *what, const uint8_t *rgb, size_t T, size_t W, size_t H, int exact, int want_clears) {
    size_t n;
    uint8_t *gif = gif_encode(rgb, T, W, H, 7, 0, &n);
    TestGif g;
    int ok = tg_decode(gif, n, &g);
    check(ok, "%s: the independent decoder reads the GIF", what);
    if (ok) {
        check(g.frames == T && g.w == W && g.h == H, "%s: %zu frames %zux%zu", what, g.frames, g.w, g.h);
        check(T == 1 || g.loop == 0, "%s: NETSCAPE2.0 loop forever", what);
        check(g.delay[0] == 7 && g.delay[T - 1] == 7, "%s: delay 7 cs", what);
        if (want_clears) check(g.clears > 0, "%s: the LZW table filled and was cleared (%d clears)", what, g.clears);
        size_t bad = 0, npix = T * W * H;
        for (size_t i = 0; i < npix; i++) {
            int k = g.idx[i];
            if (k >= g.npal) {
                bad++;
                continue;
            }
            const uint8_t *src = rgb + 3 * i;
            long best = -1;
            for (int j = 0; j < g.npal; j++) {
                long d = dist2(src, g.pal[j]);
                if (best < 0 || d < best) best = d;
            }
            if (exact) bad += memcmp(g.pal[k], src, 3) != 0;
            else bad += dist2(src, g.pal[k]) != best;   /* must be a nearest palette colour */
        }
        check(bad == 0, "%s: %zu of %zu pixels are not their nearest palette colour", what, bad, npix);
        /* the library's reader agrees with the independent one */
        uint8_t *frames;
        size_t ft, fw, fh;
        I2vError e;
        if (check(gif_decode(gif, n, what, &frames, &ft, &fw, &fh, &e) == 0, "gif_decode: %s", e.msg)) {
            size_t diff = 0;
            for (size_t i = 0; i < npix; i++) diff += memcmp(frames + 3 * i, g.pal[g.idx[i]], 3) != 0;
            check(ft == T && fw == W && fh == H && diff == 0, "%s: gif_decode agrees (%zu pixels differ)", what, diff);
            free(frames);
        }
    }
    free(g.idx);
    free(gif);
}

static void test_gif(void) {
    /* few colours: the palette is exact */
    size_t T = 3, W = 20, H = 15;
    uint8_t *rgb = xmalloc(T * W * H * 3);
    for (size_t i = 0; i < T * W * H; i++) {
        unsigned k = (unsigned)(i % 7 + (i / 50) % 5);
        rgb[3 * i] = (uint8_t)(k * 30), rgb[3 * i + 1] = (uint8_t)(255 - k * 20), rgb[3 * i + 2] = (uint8_t)(k * k);
    }
    gif_case("gif few colours", rgb, T, W, H, 1, 0);
    free(rgb);
    /* two colours (the smallest palette) and a single frame */
    rgb = xmalloc(5 * 4 * 3);
    for (size_t i = 0; i < 20; i++) memset(rgb + 3 * i, i % 3 ? 0 : 255, 3);
    gif_case("gif two colours", rgb, 1, 5, 4, 1, 0);
    free(rgb);
    /* many colours: median cut, nearest-colour mapping; big noisy frames fill the LZW table */
    T = 4, W = 128, H = 96;
    rgb = xmalloc(T * W * H * 3);
    for (size_t t = 0; t < T; t++)
        for (size_t y = 0; y < H; y++)
            for (size_t x = 0; x < W; x++) {
                uint8_t *p = rgb + ((t * H + y) * W + x) * 3;
                p[0] = (uint8_t)(x * 255 / W), p[1] = (uint8_t)(y * 255 / H), p[2] = (uint8_t)rnd();
            }
    gif_case("gif median cut", rgb, T, W, H, 0, 1);
    free(rgb);
    /* a GIF written by PIL (interlaced frames) read by the library */
    size_t n, rn;
    uint8_t *gif = load(DATA "gif/anim.gif", &n), *raw = load(DATA "gif/anim.raw", &rn);
    if (gif && raw) {
        uint8_t *frames;
        size_t ft, fw, fh;
        I2vError e;
        if (check(gif_decode(gif, n, "anim.gif", &frames, &ft, &fw, &fh, &e) == 0, "%s", e.msg)) {
            check(ft * fw * fh * 3 == rn && memcmp(frames, raw, rn) == 0, "anim.gif frames equal PIL's (%zu x %zu x %zu)", ft,
                  fw, fh);
            free(frames);
        }
        I2vError e2;
        uint8_t *f2;
        check(gif_decode(gif, n - 1, "cut.gif", &f2, &ft, &fw, &fh, &e2) != 0 && contains(e2.msg, "cut.gif"),
              "truncated GIF: %s", e2.msg);
    }
    free(gif);
    free(raw);
}

/* A GIF of `frames` frames of fw x fh on a w x h screen, each frame's LZW data a single pixel (clear, 0,
 * end: 9 bits). */
static uint8_t *tiny_frames_gif(size_t w, size_t h, size_t fw, size_t fh, int frames, size_t *n) {
    uint8_t *g = malloc(32 + (size_t)frames * 16), *p = g;
    memcpy(p, "GIF89a", 6);
    p += 6;
    *p++ = (uint8_t)w, *p++ = (uint8_t)(w >> 8), *p++ = (uint8_t)h, *p++ = (uint8_t)(h >> 8);
    *p++ = 0x80, *p++ = 0, *p++ = 0;   /* a global table of 2 colours */
    memcpy(p, "\0\0\0\xff\xff\xff", 6);
    p += 6;
    for (int f = 0; f < frames; f++) {
        uint8_t d[10] = {0x2C, 0, 0, 0, 0, (uint8_t)fw, (uint8_t)(fw >> 8), (uint8_t)fh, (uint8_t)(fh >> 8), 0};
        memcpy(p, d, 10);
        p += 10;
        *p++ = 2;                            /* LZW minimum code size */
        *p++ = 2, *p++ = 0x44, *p++ = 0x01;  /* one sub-block: codes 4 (clear), 0, 5 (end) */
        *p++ = 0;
    }
    *p++ = 0x3B;
    *n = (size_t)(p - g);
    return g;
}

/* Files that claim far more than they hold are refused before the memory is taken: a 15 KB GIF of a
 * thousand 1 x 1 frames on a 9000 x 9000 screen (once 248 MB before the refusal), and a frame larger than
 * its data can encode. */
static void test_gif_bombs(void) {
    size_t n;
    uint8_t *g = tiny_frames_gif(9000, 9000, 1, 1, 1000, &n), *rgb = NULL;
    size_t t, w, h;
    I2vError e;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    long before = ru.ru_maxrss;
    int rc = gif_decode(g, n, "bomb.gif", &rgb, &t, &w, &h, &e);
    getrusage(RUSAGE_SELF, &ru);
    check(rc != 0 && contains(e.msg, "bomb.gif"), "a %zu-byte GIF of a thousand screens: %s", n, rc ? e.msg : "accepted");
    check(ru.ru_maxrss - before < 20 * 1024, "refused within %ld KB more memory", ru.ru_maxrss - before);
    if (!rc) free(rgb);
    free(g);
    g = tiny_frames_gif(4000, 4000, 1, 1, 5, &n);   /* under the cap, but a screen no frame paints */
    rc = gif_decode(g, n, "screen.gif", &rgb, &t, &w, &h, &e);
    getrusage(RUSAGE_SELF, &ru);
    check(rc != 0 && contains(e.msg, "cover only"), "a %zu-byte GIF of a 4000 x 4000 screen: %s", n, rc ? e.msg : "accepted");
    check(ru.ru_maxrss - before < 20 * 1024, "refused within %ld KB more memory", ru.ru_maxrss - before);
    if (!rc) free(rgb);
    free(g);
    g = tiny_frames_gif(1000, 1000, 1000, 1000, 1, &n);
    rc = gif_decode(g, n, "claim.gif", &rgb, &t, &w, &h, &e);
    check(rc != 0 && contains(e.msg, "hold at most"), "a frame larger than its data: %s", rc ? e.msg : "accepted");
    if (!rc) free(rgb);
    free(g);
    g = tiny_frames_gif(3, 2, 1, 1, 1, &n);   /* small and honest: decodes */
    rc = gif_decode(g, n, "small.gif", &rgb, &t, &w, &h, &e);
    check(rc == 0 && t == 1 && w == 3 && h == 2, "a small screen with a 1 x 1 frame still decodes: %s", rc ? e.msg : "ok");
    if (!rc) free(rgb);
    free(g);
}

/* ==================================================================================================== */
/* conversions and grids                                                                                  */
/* ==================================================================================================== */

static void test_conversions(void) {
    Image im, back;
    random_image(&im, 5, 4, 3, 8, 0);
    real chw[3 * 20];
    image_to_chw(&im, 3, chw);
    int ok = 1;
    for (int c = 0; c < 3; c++)
        for (int p = 0; p < 20; p++) ok &= fabs((double)chw[c * 20 + p] - (im.data[p * 3 + c] / 127.5 - 1.0)) < 1e-6;
    check(ok, "image_to_chw: planar (C, H, W), v / 127.5 - 1");
    image_from_chw(&back, chw, 3, 4, 5);
    check(memcmp(back.data, im.data, 60) == 0, "image_from_chw inverts image_to_chw exactly");
    real grey[20];
    image_to_chw(&im, 1, grey);
    check_close(grey[7], (0.299 * im.data[21] + 0.587 * im.data[22] + 0.114 * im.data[23]) / 127.5 - 1.0, 1e-5, 0,
                "RGB -> grey by BT.601 luma");
    image_free(&back);
    image_free(&im);
    random_image(&im, 5, 4, 2, 16, 0);
    image_to_chw(&im, 3, chw);
    check_close(chw[20 + 3], image_sample(&im, 0, 3, 0) / 32767.5 - 1.0, 1e-6, 0, "grey+alpha 16-bit -> RGB replicates grey");
    image_free(&im);
    real v[2 * 3 * 2 * 2];
    for (int i = 0; i < 24; i++) v[i] = (real)(i / 11.5 - 1.0);
    v[0] = (real)-3.0;   /* clamped */
    v[1] = (real)NAN;
    uint8_t out[24];
    video_to_rgb8(v, 2, 2, 2, out);
    check(out[0] == 0 && out[3] == 0 && out[1] == (uint8_t)((4 / 11.5) * 127.5 + 0.5), "video_to_rgb8: (T,3,H,W) -> (T,H,W,3)");
}

static void test_grid(void) {
    size_t T = 2, H = 3, W = 4;
    uint8_t *vids[3];
    for (int v = 0; v < 3; v++) {
        vids[v] = xmalloc(T * H * W * 3);
        for (size_t i = 0; i < T * H * W * 3; i++) vids[v][i] = (uint8_t)(v * 50 + i % 40 + 1);
    }
    size_t gh, gw;
    uint8_t *g = video_grid((const uint8_t *const *)vids, 3, T, H, W, 2, 1, 128, &gh, &gw);
    check(gh == 2 * (H + 1) + 1 && gw == 2 * (W + 1) + 1, "grid size %zux%zu", gh, gw);
    /* video 2 sits in row 1, column 0; its frame 1 pixel (2, 3) */
    const uint8_t *p = g + ((1 * gh + 1 + (H + 1) + 2) * gw + 1 + 3) * 3;
    const uint8_t *q = vids[2] + ((1 * H + 2) * W + 3) * 3;
    check(memcmp(p, q, 3) == 0, "grid places video 2 at row 1, column 0");
    check(g[0] == 128 && g[((gh - 1) * gw + gw - 1) * 3] == 128, "grid background in the gaps");
    free(g);
    Image strip;
    video_strip(&strip, (const uint8_t *const *)vids, 3, T, H, W, 2, 0);
    check(strip.width == T * (W + 2) + 2 && strip.height == 3 * (H + 2) + 2, "strip size");
    p = strip.data + (((2 + 1 * (H + 2)) + 1) * strip.width + 2 + 1 * (W + 2) + 2) * 3;   /* video 1, frame 1, (1, 2) */
    q = vids[1] + ((1 * H + 1) * W + 2) * 3;
    check(memcmp(p, q, 3) == 0, "strip: video i is row i, frame t column t");
    image_free(&strip);
    for (int v = 0; v < 3; v++) free(vids[v]);
}

static void test_dispatch(void) {
    Image im;
    I2vError e;
    check(image_read(DATA "jpeg/base_420.jpg", &im, &e) == 0 && im.channels == 3, "image_read dispatches JPEG: %s", e.msg);
    image_free(&im);
    check(image_read(DATA "png/pal8_trns.png", &im, &e) == 0 && im.channels == 4, "image_read dispatches PNG: %s", e.msg);
    image_free(&im);
    check(image_read(DATA "does/not/exist.png", &im, &e) != 0 && contains(e.msg, "does/not/exist.png"),
          "missing file: %s", e.msg);
    check(image_decode((const uint8_t *)"hello world", 11, "what.bin", &im, &e) != 0 && contains(e.msg, "unrecognised"),
          "unknown format: %s", e.msg);
    random_image(&im, 3, 3, 3, 8, 0);
    check(image_write("/tmp/x.tiff", &im, &e) != 0 && contains(e.msg, "extension"), "unknown extension: %s", e.msg);
    image_free(&im);
}

int main(void) {
    test_zlib_roundtrip();
    test_zlib_errors();
    test_png_fixtures();
    test_png_roundtrip();
    test_png_ratio();
    test_png_errors();
    test_png_speed();
    test_ppm();
    test_npy();
    test_gif();
    test_gif_bombs();
    test_conversions();
    test_grid();
    test_dispatch();
    return check_summary("test_image");
}
