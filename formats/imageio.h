/* imageio.h: any supported image format, chosen by its first bytes (reading) or the file's extension
 * (writing). */
#ifndef I2V_IMAGEIO_H
#define I2V_IMAGEIO_H

#include "formats/image.h"

/* Any supported image, recognised by its first bytes (PNG, JPEG, PPM/PGM). */
int image_decode(const uint8_t *buf, size_t n, const char *name, Image *out, I2vError *err);
int image_read(const char *path, Image *out, I2vError *err);
/* By extension: .png, .jpg/.jpeg (quality 95, 4:2:0), .ppm/.pgm. */
int image_write(const char *path, const Image *im, I2vError *err);

#endif
