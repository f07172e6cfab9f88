/* jpeg.h: JPEG (ITU-T T.81): baseline and progressive decoding, baseline encoding. */
#ifndef I2V_JPEG_H
#define I2V_JPEG_H

#include "formats/image.h"

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

#endif
