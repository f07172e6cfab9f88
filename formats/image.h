/* image.h: the image and array codecs of i2v, written from scratch on libc and libm.
 *
 * What it is: PNG read and write (with its own inflate and deflate, deflate.c), JPEG read (baseline and
 * progressive) and baseline JPEG write (jpeg.c), PPM/PGM read and write, NPY read and write, animated GIF
 * write (and a GIF reader, used by the fuzz tests), conversions between an 8/16-bit interleaved Image and
 * the float planar (C, H, W) layout in [-1, 1] that the data loaders use, and a grid helper that lays out
 * several videos side by side for one GIF or PNG.
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
#include "tensor.h"

/* ---- the image type ---------------------------------------------------------------------------------- */
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

/* ---- files ------------------------------------------------------------------------------------------- */
/* Reads a whole file (at most 1 GiB) into an xmalloc'd buffer. */
int read_file_bytes(const char *path, uint8_t **buf, size_t *n, I2vError *err);
/* Writes path + ".tmp" then renames it to path. */
int write_file_bytes(const char *path, const uint8_t *buf, size_t n, I2vError *err);

/* Any supported image, recognised by its first bytes (PNG, JPEG, PPM/PGM). */
int image_decode(const uint8_t *buf, size_t n, const char *name, Image *out, I2vError *err);
int image_read(const char *path, Image *out, I2vError *err);
/* By extension: .png, .jpg/.jpeg (quality 95, 4:2:0), .ppm/.pgm. */
int image_write(const char *path, const Image *im, I2vError *err);

/* ---- PNG (image.c; ISO/IEC 15948, the PNG specification, 2nd edition) --------------------------------- */
/* All colour types, bit depths 1, 2, 4, 8, 16, PLTE, tRNS and Adam7. Result: grey -> 1 channel, grey + alpha
 * -> 2, RGB -> 3, RGBA -> 4; palette -> RGB, or RGBA when tRNS is present; grey or RGB with tRNS gain an
 * alpha channel (0 where the pixel equals the key). Depth 16 stays 16, depths 1, 2, 4 are scaled to 8
 * (v * 255 / (2^d - 1), as libpng's expand). Chunk CRCs and the zlib Adler-32 are checked. */
int png_decode(const uint8_t *buf, size_t n, const char *name, Image *out, I2vError *err);
int png_read(const char *path, Image *out, I2vError *err);
/* Colour type from channels (0, 4, 2, 6), depth 8 or 16, no interlacing; each row's filter is the one with
 * the smallest sum of absolute signed bytes; deflate with lazy LZ77 and dynamic Huffman blocks. */
uint8_t *png_encode(const Image *im, size_t *n);
int png_write(const char *path, const Image *im, I2vError *err);

/* ---- JPEG (jpeg.c; ITU-T T.81) --------------------------------------------------------------------------- */
/* Baseline and progressive Huffman JPEG, 8-bit, 1 (grey) or 3 components (YCbCr, or RGB when an Adobe
 * marker or the component ids say so), any integral subsampling, restart markers. Chroma is upsampled as
 * libjpeg does by default ("fancy", triangular, for 2x1, 1x2 and 2x2; replication otherwise) and converted
 * with libjpeg's fixed-point YCbCr -> RGB, so the output is within a level or two of djpeg's (the IDCT
 * differs: a float one here, libjpeg's islow integer one there). Result: 8-bit, 1 or 3 channels. */
int jpeg_decode(const uint8_t *buf, size_t n, const char *name, Image *out, I2vError *err);
int jpeg_read(const char *path, Image *out, I2vError *err);
/* Baseline JPEG with JFIF header. quality 1..100 scales the standard tables of T.81 Annex K as the IJG
 * library does; chroma is 4:2:0 or 4:4:4; the Huffman tables are the standard ones of Annex K.3. An input
 * of 1 or 2 channels is written as greyscale, 3 or 4 as YCbCr (alpha dropped); depth must be 8. */
enum { JPEG_444 = 0, JPEG_420 = 1 };
uint8_t *jpeg_encode(const Image *im, int quality, int subsampling, size_t *n);
int jpeg_write(const char *path, const Image *im, int quality, int subsampling, I2vError *err);

/* ---- PPM / PGM (image.c; netpbm P5 and P6) ---------------------------------------------------------------- */
/* Binary P5 (grey) and P6 (RGB), maxval 1..65535, comments in the header. maxval 255 and 65535 are kept
 * as they are; other maxvals are rescaled to 8 bits (maxval < 255) or 16 bits, rounding. */
int ppm_decode(const uint8_t *buf, size_t n, const char *name, Image *out, I2vError *err);
int ppm_read(const char *path, Image *out, I2vError *err);
/* 1 channel -> P5, 3 -> P6; maxval 255 or 65535 by depth. Returns NULL (and fills err) for 2 or 4 channels,
 * which netpbm cannot hold. */
uint8_t *ppm_encode(const Image *im, size_t *n, I2vError *err);
int ppm_write(const char *path, const Image *im, I2vError *err);

/* ---- NPY (image.c; NumPy format versions 1.0, 2.0 and 3.0) -------------------------------------------- */
#define NPY_MAX_DIMS 8
typedef enum NpyDtype { NPY_F32 = 0, NPY_U8 = 1, NPY_F64 = 2 } NpyDtype;   /* '<f4', '|u1' and '<f8' */
typedef struct NpyArray {
    NpyDtype dtype;
    int ndim;                          /* 0..NPY_MAX_DIMS */
    size_t shape[NPY_MAX_DIMS];
    size_t count;                      /* product of shape (1 for 0-d) */
    void *data;                        /* count float, uint8_t or double values, C order */
} NpyArray;
/* Little-endian float32, float64 or uint8, C order. Fortran order, big-endian and other dtypes are errors that say so. */
int npy_decode(const uint8_t *buf, size_t n, const char *name, NpyArray *out, I2vError *err);
int npy_read(const char *path, NpyArray *out, I2vError *err);
/* Version 1.0 header (at most 8 dimensions always fit), padded to 64 bytes. data: count values of dtype. */
uint8_t *npy_encode(NpyDtype dtype, int ndim, const size_t *shape, const void *data, size_t *n);
int npy_write(const char *path, NpyDtype dtype, int ndim, const size_t *shape, const void *data, I2vError *err);
void npy_free(NpyArray *a);

/* ---- GIF (image.c; GIF89a) --------------------------------------------------------------------------------- */
/* An animated GIF from `frames` RGB frames, each (H, W, 3) uint8, stored one after another. One global
 * palette for all frames: the exact colours when there are at most 256, otherwise median cut over a 5-5-5
 * histogram of every frame; each pixel takes its nearest palette colour (squared RGB distance, no dithering).
 * LZW with code-size growth and clear codes, NETSCAPE2.0 looping (loop_count 0: forever), delay in 1/100 s. */
uint8_t *gif_encode(const uint8_t *rgb, size_t frames, size_t width, size_t height, int delay_cs,
                    int loop_count, size_t *n);
int gif_write(const char *path, const uint8_t *rgb, size_t frames, size_t width, size_t height, int delay_cs,
              int loop_count, I2vError *err);
/* Reads every frame of a GIF (87a or 89a), composed onto the logical screen as a viewer shows it (disposal
 * methods 0-3, transparency, local palettes, interlaced frames): *rgb gets (frames, H, W, 3), xmalloc'd. */
int gif_decode(const uint8_t *buf, size_t n, const char *name, uint8_t **rgb, size_t *frames, size_t *width,
               size_t *height, I2vError *err);

/* ---- grids of videos ------------------------------------------------------------------------------------ */
/* For samples: video_to_rgb8 each video, video_grid them, gif_write the grid; or video_strip + png_write. */
/* nvideos videos, each (T, H, W, 3) uint8, laid out row by row in `cols` columns with `gap` pixels of the
 * grey `background` between cells and around the border. Returns (T, Hg, Wg, 3), xmalloc'd, with
 * Hg = rows * (H + gap) + gap, Wg = cols * (W + gap) + gap. */
uint8_t *video_grid(const uint8_t *const *videos, size_t nvideos, size_t frames, size_t height, size_t width,
                    size_t cols, size_t gap, uint8_t background, size_t *grid_h, size_t *grid_w);
/* One still image: video i is row i and frame t is column t, `gap` pixels apart. Output: 8-bit RGB. */
void video_strip(Image *out, const uint8_t *const *videos, size_t nvideos, size_t frames, size_t height,
                 size_t width, size_t gap, uint8_t background);

/* ---- zlib streams (deflate.c; RFC 1950 and RFC 1951) ------------------------------------------------------ */
uint32_t crc32_update(uint32_t crc, const uint8_t *p, size_t n);     /* PNG/zip CRC-32; start from 0 */
uint32_t adler32_update(uint32_t adler, const uint8_t *p, size_t n); /* start from 1 */
/* Inflates one zlib stream into dst[0..cap). Errors: a bad header, a preset dictionary, a bad block type,
 * bad Huffman tables, a code or distance out of range, output past cap, a truncated stream, a wrong
 * Adler-32. *out_n receives the number of bytes written. `name` names the stream in messages. */
int zlib_decompress(const uint8_t *src, size_t n, uint8_t *dst, size_t cap, size_t *out_n, const char *name,
                    I2vError *err);
/* A zlib stream of src; level 1..9 trades speed for size like zlib's levels (6 is zlib's default). */
uint8_t *zlib_compress(const uint8_t *src, size_t n, int level, size_t *out_n);

#endif
