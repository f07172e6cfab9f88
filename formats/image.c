/* image.c: the Image type and its conversions to and from the loaders' float (C, H, W) layout.
 * Dimension legend: C channels, H height, W width. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/image.h"

size_t image_bytes(const Image *im) {
    return im->width * im->height * (size_t)im->channels * (size_t)(im->depth / 8);
}

void image_alloc(Image *im, size_t width, size_t height, int channels, int depth) {
    I2V_ASSERT(channels >= 1 && channels <= 4, "image_alloc: %d channels (1..4)", channels);
    I2V_ASSERT(depth == 8 || depth == 16, "image_alloc: depth %d (8 or 16)", depth);
    I2V_ASSERT(width > 0 && height > 0 && width <= I2V_IMAGE_MAX_SAMPLES && height <= I2V_IMAGE_MAX_SAMPLES &&
                   width * height <= I2V_IMAGE_MAX_SAMPLES / (size_t)channels,
               "image_alloc: %zu x %zu x %d is over the cap of 2^28 samples", width, height, channels);
    im->width = width;
    im->height = height;
    im->channels = channels;
    im->depth = depth;
    im->data = xmalloc(image_bytes(im));
}

void image_free(Image *im) {
    if (!im) return;
    free(im->data);
    memset(im, 0, sizeof *im);
}

unsigned image_sample(const Image *im, size_t y, size_t x, int c) {
    size_t i = (y * im->width + x) * (size_t)im->channels + (size_t)c;
    if (im->depth == 16) return ((const uint16_t *)(const void *)im->data)[i];
    return im->data[i];
}

/* Whether a header's dimensions are acceptable: positive and within the sample cap. */
int image_dims_ok(size_t w, size_t h, int channels) {
    if (w == 0 || h == 0 || w > I2V_IMAGE_MAX_SAMPLES || h > I2V_IMAGE_MAX_SAMPLES) return 0;
    return w * h <= I2V_IMAGE_MAX_SAMPLES / (size_t)channels;
}

void image_to_chw(const Image *im, int channels, real *dst) {
    I2V_ASSERT(channels == 1 || channels == 3, "image_to_chw: %d output channels (1 or 3)", channels);
    size_t hw = im->width * im->height;
    int ic = im->channels;
    double scale = 2.0 / (im->depth == 16 ? 65535.0 : 255.0);
    if (im->depth == 8 && channels == 3 && ic >= 3) {   /* the loaders' common case, through a table */
        real lut[256];
        for (int v = 0; v < 256; v++) lut[v] = (real)(v * scale - 1.0);
        for (size_t p = 0; p < hw; p++)
            for (int c = 0; c < 3; c++) dst[(size_t)c * hw + p] = lut[im->data[p * (size_t)ic + (size_t)c]];
        return;
    }
    for (size_t p = 0; p < hw; p++) {
        double v[4];
        for (int c = 0; c < ic; c++) {
            size_t i = p * (size_t)ic + (size_t)c;
            v[c] = im->depth == 16 ? ((const uint16_t *)(const void *)im->data)[i] : im->data[i];
        }
        if (channels == 3) {
            for (int c = 0; c < 3; c++) dst[(size_t)c * hw + p] = (real)(v[ic >= 3 ? c : 0] * scale - 1.0);
        } else {
            double g = ic >= 3 ? 0.299 * v[0] + 0.587 * v[1] + 0.114 * v[2] : v[0];
            dst[p] = (real)(g * scale - 1.0);
        }
    }
}

static uint8_t to_u8(real v) {
    double x = ((double)v + 1.0) * 127.5;
    if (!(x > 0.0)) return 0;   /* also NaN */
    if (x >= 255.0) return 255;
    return (uint8_t)(x + 0.5);
}

void image_from_chw(Image *out, const real *src, int channels, size_t height, size_t width) {
    image_alloc(out, width, height, channels, 8);
    size_t hw = width * height;
    for (size_t p = 0; p < hw; p++)
        for (int c = 0; c < channels; c++) out->data[p * (size_t)channels + (size_t)c] = to_u8(src[(size_t)c * hw + p]);
}

void video_to_rgb8(const real *src, size_t frames, size_t height, size_t width, uint8_t *dst) {
    size_t hw = height * width;
    for (size_t t = 0; t < frames; t++) {
        const real *s = src + t * 3 * hw;
        uint8_t *d = dst + t * 3 * hw;
        for (size_t p = 0; p < hw; p++)
            for (int c = 0; c < 3; c++) d[3 * p + (size_t)c] = to_u8(s[(size_t)c * hw + p]);
    }
}
