/* ppm.c: binary netpbm images: P5 (grey) and P6 (RGB), maxval 1..65535, comments in the header.
 * Dimension legend: C channels, H height, W width. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/ppm.h"

#include "formats/files.h"

/* Skips whitespace and '#' comments, then reads an unsigned decimal of at most 9 digits. */
static int pnm_number(const uint8_t *buf, size_t n, size_t *pos, unsigned long *v) {
    size_t p = *pos;
    for (;;) {
        while (p < n && isspace(buf[p])) p++;
        if (p < n && buf[p] == '#') {
            while (p < n && buf[p] != '\n' && buf[p] != '\r') p++;
            continue;
        }
        break;
    }
    if (p >= n || !isdigit(buf[p])) return -1;
    unsigned long x = 0;
    int digits = 0;
    while (p < n && isdigit(buf[p])) {
        if (++digits > 9) return -1;
        x = x * 10 + (unsigned long)(buf[p++] - '0');
    }
    *pos = p;
    *v = x;
    return 0;
}

int ppm_decode(const uint8_t *buf, size_t n, const char *name, Image *out, I2vError *err) {
    memset(out, 0, sizeof *out);
    if (n < 2 || buf[0] != 'P' || (buf[1] != '5' && buf[1] != '6'))
        return err_set(err, "%s: not a binary PGM/PPM file (expected magic P5 or P6)", name);
    int channels = buf[1] == '6' ? 3 : 1;
    size_t pos = 2;
    unsigned long w, h, maxval;
    if (pnm_number(buf, n, &pos, &w) || pnm_number(buf, n, &pos, &h) || pnm_number(buf, n, &pos, &maxval))
        return err_set(err, "%s: P%c header: expected width, height and maxval as decimal numbers", name, buf[1]);
    if (maxval < 1 || maxval > 65535)
        return err_set(err, "%s: P%c maxval %lu (expected 1..65535)", name, buf[1], maxval);
    if (!image_dims_ok(w, h, channels))
        return err_set(err, "%s: P%c size %lu x %lu (must be positive and within 2^28 samples)", name, buf[1], w, h);
    if (pos >= n || !isspace(buf[pos]))
        return err_set(err, "%s: P%c header: expected one whitespace character after maxval", name, buf[1]);
    pos++;
    size_t bps = maxval > 255 ? 2 : 1, count = (size_t)w * h * (size_t)channels;
    if (n - pos < count * bps)
        return err_set(err, "%s: P%c pixel data truncated: %zu bytes, expected %zu", name, buf[1], n - pos, count * bps);
    int depth = bps == 2 ? 16 : 8;
    image_alloc(out, w, h, channels, depth);
    unsigned long full = depth == 16 ? 65535 : 255;
    const uint8_t *p = buf + pos;
    for (size_t i = 0; i < count; i++) {
        unsigned long v = bps == 2 ? (unsigned long)p[2 * i] << 8 | p[2 * i + 1] : p[i];
        if (v > maxval) {
            image_free(out);
            return err_set(err, "%s: P%c sample %zu is %lu, above maxval %lu", name, buf[1], i, v, maxval);
        }
        if (maxval != full) v = (v * full + maxval / 2) / maxval;
        if (depth == 16) ((uint16_t *)(void *)out->data)[i] = (uint16_t)v;
        else out->data[i] = (uint8_t)v;
    }
    return 0;
}

int ppm_read(const char *path, Image *out, I2vError *err) {
    uint8_t *buf;
    size_t n;
    memset(out, 0, sizeof *out);
    if (read_file_bytes(path, &buf, &n, err)) return -1;
    int rc = ppm_decode(buf, n, path, out, err);
    free(buf);
    return rc;
}

uint8_t *ppm_encode(const Image *im, size_t *n, I2vError *err) {
    if (im->channels != 1 && im->channels != 3) {
        err_set(err, "PPM/PGM cannot hold %d channels (1 for P5 or 3 for P6; drop the alpha channel first)",
                im->channels);
        return NULL;
    }
    I2V_ASSERT(im->data && (im->depth == 8 || im->depth == 16), "ppm_encode: bad image");
    char hdr[64];
    int hl = snprintf(hdr, sizeof hdr, "P%c\n%zu %zu\n%d\n", im->channels == 3 ? '6' : '5', im->width, im->height,
                      im->depth == 16 ? 65535 : 255);
    size_t count = im->width * im->height * (size_t)im->channels, bps = (size_t)im->depth / 8;
    uint8_t *b = xmalloc((size_t)hl + count * bps);
    memcpy(b, hdr, (size_t)hl);
    uint8_t *p = b + hl;
    if (bps == 1) {
        memcpy(p, im->data, count);
    } else {
        const uint16_t *s = (const uint16_t *)(const void *)im->data;
        for (size_t i = 0; i < count; i++) {
            p[2 * i] = (uint8_t)(s[i] >> 8);
            p[2 * i + 1] = (uint8_t)s[i];
        }
    }
    *n = (size_t)hl + count * bps;
    return b;
}

int ppm_write(const char *path, const Image *im, I2vError *err) {
    size_t n;
    uint8_t *buf = ppm_encode(im, &n, err);
    if (!buf) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err ? err->msg : "");
        return err_set(err, "%s: %s", path, msg);
    }
    int rc = write_file_bytes(path, buf, n, err);
    free(buf);
    return rc;
}
