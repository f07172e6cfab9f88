/* image.h: the Image type that i2v's codecs share, and its conversions to and from the float planar
 * (C, H, W) layout in [-1, 1] that the data loaders use.
 *
 * The codecs, written from scratch on libc and libm, each with a header of its own in formats/: PNG read
 * and write (png.h, over the zlib layer of deflate.h), JPEG read (baseline and progressive) and baseline
 * write (jpeg.h), PPM/PGM (ppm.h), NPY (npy.h), animated GIF write and read and the grids that lay several
 * videos out side by side (gif.h); imageio.h picks a codec by a file's first bytes or extension, files.h
 * reads and writes whole files.
 * What it is not: a general image library. No colour management (gAMA, iCCP, sRGB are ignored), no
 * arithmetic-coded, lossless, hierarchical or 12-bit JPEG, no CMYK, no PAM/ASCII PNM, no resizing
 * (data.c resizes).
 *
 * Conventions. Every reader has a memory form (`*_decode(buf, n, name, ...)`, the fuzzer uses it) and a
 * file form (`*_read(path, ...)`). Bad input never crashes, hangs or allocates without bound: it returns
 * non-zero and fills `err` with a message naming the file (or `name`), the field and what was expected.
 * Decoded images are capped at I2V_IMAGE_MAX_SAMPLES samples (width * height * channels = 2^28, e.g.
 * 9459 x 9459 RGB); a larger header is rejected before anything is allocated. Below the cap, headers are
 * also checked against the data that follows (deflate expands at most 1032:1; a JPEG block costs at least
 * one bit), so a tiny corrupt file cannot make a reader allocate much more than its input could fill.
 * Writers return an allocated buffer (`*_encode`) or write a file (`*_write`, via a temporary file renamed
 * into place, so a failed write never leaves a partial file under the final name). A malformed Image
 * passed to an encoder is a bug in the caller and is caught by I2V_ASSERT. Every function is reentrant
 * (the data loaders may decode on several threads).
 *
 * Dimension legend: T frames, C channels, H height, W width.
 */
#ifndef I2V_IMAGE_H
#define I2V_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

#define I2V_IMAGE_MAX_SAMPLES ((size_t)1 << 28)

/* Interleaved, row-major: sample (y, x, c) is at index (y * width + x) * channels + c.
 * depth 8: `data` holds uint8_t samples; depth 16: `data` holds uint16_t samples in native byte order
 * (the buffer comes from malloc, so it is aligned for uint16_t). */
typedef struct Image {
    size_t width, height;
    int channels;        /* 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA */
    int depth;           /* bits per sample: 8 or 16 */
    uint8_t *data;       /* (H, W, C) samples, width * height * channels * depth / 8 bytes */
} Image;

/* Allocates (uninitialised samples); asserts channels in 1..4, depth 8 or 16 and the sample cap. */
void image_alloc(Image *im, size_t width, size_t height, int channels, int depth);
void image_free(Image *im);                      /* frees data and zeroes the struct; NULL-safe */
/* 1 when a decoded header's width x height x channels is within I2V_IMAGE_MAX_SAMPLES (and not empty). */
int image_dims_ok(size_t width, size_t height, int channels);
size_t image_bytes(const Image *im);             /* width * height * channels * depth / 8 */
unsigned image_sample(const Image *im, size_t y, size_t x, int c);   /* one sample, 0..255 or 0..65535 */

/* To the loaders' layout: dst (channels, H, W) with values v / maxval * 2 - 1 in [-1, 1]. channels is 1 or
 * 3: grey is replicated to RGB; RGB becomes grey by ITU-R BT.601 luma (0.299 R + 0.587 G + 0.114 B, as
 * OpenCV); alpha is dropped (OpenCV's imread(IMREAD_COLOR) does the same). */
void image_to_chw(const Image *im, int channels, real *dst);
/* From (channels, H, W) in [-1, 1] (clamped) to an 8-bit image: round((v + 1) / 2 * 255). */
void image_from_chw(Image *out, const real *src, int channels, size_t height, size_t width);
/* A video (T, 3, H, W) in [-1, 1] to interleaved 8-bit RGB frames (T, H, W, 3), the GIF writer's input. */
void video_to_rgb8(const real *src, size_t frames, size_t height, size_t width, uint8_t *dst);

#endif
