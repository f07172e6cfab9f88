/* png.h: PNG (ISO/IEC 15948, the PNG specification, 2nd edition), read and write. */
#ifndef I2V_PNG_H
#define I2V_PNG_H

#include "formats/image.h"

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

#endif
