/* ppm.h: binary netpbm images (P5 grey, P6 RGB), read and write. */
#ifndef I2V_PPM_H
#define I2V_PPM_H

#include "formats/image.h"

/* Binary P5 (grey) and P6 (RGB), maxval 1..65535, comments in the header. maxval 255 and 65535 are kept
 * as they are; other maxvals are rescaled to 8 bits (maxval < 255) or 16 bits, rounding. */
int ppm_decode(const uint8_t *buf, size_t n, const char *name, Image *out, I2vError *err);
int ppm_read(const char *path, Image *out, I2vError *err);
/* 1 channel -> P5, 3 -> P6; maxval 255 or 65535 by depth. Returns NULL (and fills err) for 2 or 4 channels,
 * which netpbm cannot hold. */
uint8_t *ppm_encode(const Image *im, size_t *n, I2vError *err);
int ppm_write(const char *path, const Image *im, I2vError *err);

#endif
