/* imageio.c: format dispatch: PNG, JPEG or PPM by the first bytes, or by the extension when writing. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/imageio.h"

#include "formats/files.h"
#include "formats/jpeg.h"
#include "formats/png.h"
#include "formats/ppm.h"

int image_decode(const uint8_t *buf, size_t n, const char *name, Image *out, I2vError *err) {
    memset(out, 0, sizeof *out);
    if (n >= 8 && !memcmp(buf, "\x89PNG\r\n\x1a\n", 8)) return png_decode(buf, n, name, out, err);
    if (n >= 3 && buf[0] == 0xFF && buf[1] == 0xD8 && buf[2] == 0xFF) return jpeg_decode(buf, n, name, out, err);
    if (n >= 2 && buf[0] == 'P' && (buf[1] == '5' || buf[1] == '6')) return ppm_decode(buf, n, name, out, err);
    if (n >= 2 && buf[0] == 'P' && buf[1] >= '1' && buf[1] <= '7')
        return err_set(err, "%s: netpbm format P%c is not supported (only binary P5 and P6)", name, buf[1]);
    if (n >= 4 && !memcmp(buf, "GIF8", 4))
        return err_set(err, "%s: GIF is not supported as an input image (use PNG, JPEG or PPM)", name);
    unsigned b[4] = {0, 0, 0, 0};
    for (size_t i = 0; i < 4 && i < n; i++) b[i] = buf[i];
    return err_set(err, "%s: unrecognised image format (first bytes %02x %02x %02x %02x); expected PNG, JPEG or "
                   "binary PPM/PGM", name, b[0], b[1], b[2], b[3]);
}

int image_read(const char *path, Image *out, I2vError *err) {
    uint8_t *buf;
    size_t n;
    memset(out, 0, sizeof *out);
    if (read_file_bytes(path, &buf, &n, err)) return -1;
    int rc = image_decode(buf, n, path, out, err);
    free(buf);
    return rc;
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    if (a < b) return 0;
    for (size_t i = 0; i < b; i++)
        if (tolower((unsigned char)s[a - b + i]) != suffix[i]) return 0;
    return 1;
}

int image_write(const char *path, const Image *im, I2vError *err) {
    if (ends_with(path, ".png")) return png_write(path, im, err);
    if (ends_with(path, ".jpg") || ends_with(path, ".jpeg")) return jpeg_write(path, im, 95, JPEG_420, err);
    if (ends_with(path, ".ppm") || ends_with(path, ".pgm")) return ppm_write(path, im, err);
    return err_set(err, "%s: unknown image extension (expected .png, .jpg, .jpeg, .ppm or .pgm)", path);
}
