/* png.c: PNG decoding (all colour types, bit depths 1-16, PLTE, tRNS, Adam7) and encoding.
 *
 * Not here: the zlib layer (deflate.c). No colour management: gAMA/iCCP/sRGB/cHRM and friends are skipped
 * like any other ancillary chunk. Every length is checked against what is left before it is used, sizes
 * against I2V_IMAGE_MAX_SAMPLES before anything is allocated. Dimension legend: C channels, H, W. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/png.h"

#include "formats/deflate.h"
#include "formats/files.h"

static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Adam7 (PNG spec 8.2): pass origins and steps; pass 0 stands for "not interlaced". */
static const uint8_t adam7_x0[8] = {0, 0, 4, 0, 2, 0, 1, 0}, adam7_y0[8] = {0, 0, 0, 4, 0, 2, 0, 1};
static const uint8_t adam7_dx[8] = {1, 8, 8, 4, 4, 2, 2, 1}, adam7_dy[8] = {1, 8, 8, 8, 4, 4, 2, 2};

static size_t pass_extent(size_t full, size_t origin, size_t step) {
    return full > origin ? (full - origin + step - 1) / step : 0;
}

typedef struct PngHeader {
    size_t w, h;
    int depth, ctype, interlace;
    int spp;              /* samples per pixel in the file */
    int out_channels;     /* after palette expansion and tRNS */
    uint8_t pal[256][4];  /* RGBA */
    int npal;
    int has_trns;
    unsigned key[3];      /* tRNS colour key for grey / RGB */
} PngHeader;

static uint8_t paeth(int a, int b, int c) {   /* PNG spec 9.4 */
    int p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);
    if (pa <= pb && pa <= pc) return (uint8_t)a;
    if (pb <= pc) return (uint8_t)b;
    return (uint8_t)c;
}

/* Reverses the filter of one row in place (PNG spec 9.2); prior is the previous reconstructed row of the
 * same pass (all zero for its first row); bpp is the filter's byte distance, at least 1. */
static int unfilter_row(int type, uint8_t *row, const uint8_t *prior, size_t len, size_t bpp) {
    switch (type) {
    case 0:
        break;
    case 1:
        for (size_t i = bpp; i < len; i++) row[i] = (uint8_t)(row[i] + row[i - bpp]);
        break;
    case 2:
        for (size_t i = 0; i < len; i++) row[i] = (uint8_t)(row[i] + prior[i]);
        break;
    case 3:
        for (size_t i = 0; i < bpp && i < len; i++) row[i] = (uint8_t)(row[i] + (prior[i] >> 1));
        for (size_t i = bpp; i < len; i++) row[i] = (uint8_t)(row[i] + ((row[i - bpp] + prior[i]) >> 1));
        break;
    case 4:
        for (size_t i = 0; i < bpp && i < len; i++) row[i] = (uint8_t)(row[i] + prior[i]);
        for (size_t i = bpp; i < len; i++) row[i] = (uint8_t)(row[i] + paeth(row[i - bpp], prior[i], prior[i - bpp]));
        break;
    default:
        return -1;
    }
    return 0;
}

/* Reads sample s of a row at bit depth d (d < 8 packs several per byte, most significant first). */
static unsigned row_sample(const uint8_t *row, size_t s, int d) {
    if (d == 8) return row[s];
    if (d == 16) return (unsigned)row[2 * s] << 8 | row[2 * s + 1];
    size_t bit = s * (size_t)d;
    return (unsigned)(row[bit >> 3] >> (8 - d - (int)(bit & 7))) & ((1u << d) - 1);
}

/* Writes one reconstructed row of a pass into the output image. */
static int png_emit_row(const PngHeader *ph, const uint8_t *row, size_t y, size_t x0, size_t dx, size_t wp,
                        Image *out, const char *name, I2vError *err) {
    int oc = out->channels, d = ph->depth;
    size_t base = y * ph->w;
    uint16_t *o16 = (uint16_t *)(void *)out->data;
    uint8_t *o8 = out->data;
    if (d == 8 && dx == 1 && !ph->has_trns && ph->ctype != 3) {   /* the common case: a plain copy */
        memcpy(o8 + base * (size_t)oc, row, wp * (size_t)oc);
        return 0;
    }
    unsigned maxv = (1u << d) - 1, gscale = d < 8 ? 255 / maxv : 1;
    for (size_t i = 0; i < wp; i++) {
        size_t o = (base + x0 + i * dx) * (size_t)oc;
        unsigned v[4];
        if (ph->ctype == 3) {
            unsigned idx = row_sample(row, i, d);
            if ((int)idx >= ph->npal)
                return err_set(err, "%s: PNG palette index %u out of range (PLTE has %d entries)", name, idx, ph->npal);
            for (int c = 0; c < oc; c++) o8[o + (size_t)c] = ph->pal[idx][c];
            continue;
        }
        for (int c = 0; c < ph->spp; c++) v[c] = row_sample(row, i * (size_t)ph->spp + (size_t)c, d);
        if (ph->has_trns) {   /* grey or RGB with a colour key: add alpha */
            int match = 1;
            for (int c = 0; c < ph->spp; c++) match &= v[c] == ph->key[c];
            v[ph->spp] = match ? 0 : maxv;
        }
        for (int c = 0; c < oc; c++) {
            unsigned s = v[c];
            if (d < 8) s = c < ph->spp ? s * gscale : (s ? 255 : 0);
            if (d == 16) o16[o + (size_t)c] = (uint16_t)s;
            else o8[o + (size_t)c] = (uint8_t)s;
        }
    }
    return 0;
}

static int png_parse_ihdr(PngHeader *ph, const uint8_t *p, uint32_t len, const char *name, I2vError *err) {
    if (len != 13) return err_set(err, "%s: PNG IHDR has %u bytes (expected 13)", name, len);
    uint32_t w = be32(p), h = be32(p + 4);
    int depth = p[8], ctype = p[9];
    if (w == 0 || h == 0 || w > 0x7FFFFFFFu || h > 0x7FFFFFFFu)
        return err_set(err, "%s: PNG IHDR size %u x %u (each must be 1 .. 2^31-1)", name, w, h);
    static const int spp_of[7] = {1, 0, 3, 1, 2, 0, 4};
    int ok_depth = 0;
    switch (ctype) {
    case 0: ok_depth = depth == 1 || depth == 2 || depth == 4 || depth == 8 || depth == 16; break;
    case 3: ok_depth = depth == 1 || depth == 2 || depth == 4 || depth == 8; break;
    case 2: case 4: case 6: ok_depth = depth == 8 || depth == 16; break;
    default:
        return err_set(err, "%s: PNG IHDR colour type %d (expected 0, 2, 3, 4 or 6)", name, ctype);
    }
    if (!ok_depth)
        return err_set(err, "%s: PNG IHDR bit depth %d is not allowed with colour type %d (PNG spec table 11.1)",
                       name, depth, ctype);
    if (p[10] != 0) return err_set(err, "%s: PNG IHDR compression method %d (expected 0)", name, p[10]);
    if (p[11] != 0) return err_set(err, "%s: PNG IHDR filter method %d (expected 0)", name, p[11]);
    if (p[12] > 1) return err_set(err, "%s: PNG IHDR interlace method %d (expected 0 or 1)", name, p[12]);
    ph->w = w;
    ph->h = h;
    ph->depth = depth;
    ph->ctype = ctype;
    ph->interlace = p[12];
    ph->spp = spp_of[ctype];
    /* tRNS may still add an alpha channel, so the cap is checked with the most channels the type can give */
    if (!image_dims_ok(ph->w, ph->h, ctype == 0 || ctype == 4 ? 2 : 4))
        return err_set(err, "%s: PNG image %u x %u is larger than the cap of 2^28 samples", name, w, h);
    return 0;
}

int png_decode(const uint8_t *buf, size_t n, const char *name, Image *out, I2vError *err) {
    memset(out, 0, sizeof *out);
    if (n < 8 || memcmp(buf, png_sig, 8) != 0) return err_set(err, "%s: not a PNG file (bad signature)", name);
    PngHeader ph;
    memset(&ph, 0, sizeof ph);
    int seen_ihdr = 0, seen_iend = 0, seen_plte = 0, seen_idat = 0;
    uint8_t *idat = NULL;
    size_t nidat = 0, pos = 8;
    int rc = 0;
    while (!seen_iend) {
        if (n - pos < 12) {
            rc = err_set(err, "%s: PNG truncated at byte %zu (a chunk needs at least 12 bytes; no IEND seen)", name, pos);
            break;
        }
        uint32_t len = be32(buf + pos);
        const uint8_t *type = buf + pos + 4, *data = buf + pos + 8;
        char tn[5];
        for (int i = 0; i < 4; i++) tn[i] = isalpha(type[i]) ? (char)type[i] : '?';
        tn[4] = 0;
        if (len > 0x7FFFFFFFu || len > n - pos - 12) {
            rc = err_set(err, "%s: PNG chunk '%s' at byte %zu declares %u bytes but only %zu remain (truncated?)",
                         name, tn, pos, len, n - pos - 12);
            break;
        }
        if (strchr(tn, '?')) {
            rc = err_set(err, "%s: PNG chunk at byte %zu has an invalid type (bytes %02x %02x %02x %02x)", name, pos,
                         type[0], type[1], type[2], type[3]);
            break;
        }
        uint32_t want = be32(data + len), got = crc32_update(0, type, (size_t)len + 4);
        if (want != got) {
            rc = err_set(err, "%s: PNG chunk '%s' at byte %zu fails its CRC (stored %08x, computed %08x): file corrupt",
                         name, tn, pos, want, got);
            break;
        }
        if (!seen_ihdr && strcmp(tn, "IHDR") != 0) {
            rc = err_set(err, "%s: PNG first chunk is '%s' (expected IHDR)", name, tn);
            break;
        }
        if (!strcmp(tn, "IHDR")) {
            if (seen_ihdr) {
                rc = err_set(err, "%s: PNG has a second IHDR at byte %zu", name, pos);
                break;
            }
            if ((rc = png_parse_ihdr(&ph, data, len, name, err))) break;
            seen_ihdr = 1;
        } else if (!strcmp(tn, "PLTE")) {
            if (seen_idat || seen_plte || len % 3 != 0 || len == 0 || len > 768) {
                rc = err_set(err, "%s: PNG PLTE of %u bytes%s (expected one PLTE before IDAT, 3..768 bytes, a "
                             "multiple of 3)", name, len, seen_idat ? " after IDAT" : seen_plte ? " repeated" : "");
                break;
            }
            ph.npal = (int)(len / 3);
            if (ph.ctype == 3 && ph.npal > (1 << ph.depth)) {
                rc = err_set(err, "%s: PNG PLTE has %d entries, more than bit depth %d allows", name, ph.npal, ph.depth);
                break;
            }
            for (int i = 0; i < ph.npal; i++) {
                for (int c = 0; c < 3; c++) ph.pal[i][c] = data[3 * i + c];
                ph.pal[i][3] = 255;
            }
            seen_plte = 1;
        } else if (!strcmp(tn, "tRNS")) {
            if (seen_idat) {
                rc = err_set(err, "%s: PNG tRNS after IDAT (must come before)", name);
                break;
            }
            if (ph.ctype == 3) {
                if (!seen_plte || (int)len > ph.npal) {
                    rc = err_set(err, "%s: PNG tRNS has %u entries for a palette of %d", name, len, ph.npal);
                    break;
                }
                for (uint32_t i = 0; i < len; i++) ph.pal[i][3] = data[i];
                ph.has_trns = 1;
            } else if (ph.ctype == 0 || ph.ctype == 2) {
                if (len != (uint32_t)(2 * ph.spp)) {
                    rc = err_set(err, "%s: PNG tRNS of %u bytes for colour type %d (expected %d)", name, len, ph.ctype,
                                 2 * ph.spp);
                    break;
                }
                for (int c = 0; c < ph.spp; c++) ph.key[c] = (unsigned)data[2 * c] << 8 | data[2 * c + 1];
                ph.has_trns = 1;
            }   /* tRNS with an alpha channel is not allowed; skipped as libpng does */
        } else if (!strcmp(tn, "IDAT")) {
            if (ph.ctype == 3 && !seen_plte) {
                rc = err_set(err, "%s: PNG palette image has no PLTE before its IDAT", name);
                break;
            }
            if (!idat) idat = xmalloc(n);   /* all IDATs together are shorter than the file */
            memcpy(idat + nidat, data, len);
            nidat += len;
            seen_idat = 1;
        } else if (!strcmp(tn, "IEND")) {
            seen_iend = 1;
        } else if (!(type[0] & 0x20)) {   /* bit 5 of the first byte clear: critical (PNG spec 5.4) */
            rc = err_set(err, "%s: PNG has an unknown critical chunk '%s'", name, tn);
            break;
        }
        pos += 12 + (size_t)len;
    }
    if (rc == 0 && !seen_idat) rc = err_set(err, "%s: PNG has no IDAT chunk", name);
    if (rc) {
        free(idat);
        return rc;
    }

    /* raw size: every non-empty pass contributes rows of (1 filter byte + packed samples) */
    size_t bits_pp = (size_t)ph.depth * (size_t)ph.spp, bpp = bits_pp >= 8 ? bits_pp / 8 : 1;
    size_t raw_n = 0;
    int p0 = ph.interlace ? 1 : 0, p1 = ph.interlace ? 7 : 0;
    for (int p = p0; p <= p1; p++) {
        size_t wp = pass_extent(ph.w, adam7_x0[p], adam7_dx[p]), hp = pass_extent(ph.h, adam7_y0[p], adam7_dy[p]);
        if (wp && hp) raw_n += hp * (1 + (wp * bits_pp + 7) / 8);
    }
    /* deflate expands at most 1032:1 (a 258-byte match in two bits), so a header promising more than
     * the IDATs could hold is refused before the buffer is allocated */
    if (raw_n / 1032 > nidat + 16) {
        free(idat);
        return err_set(err, "%s: PNG has %zu bytes of image data, too few for %zu x %zu (truncated or corrupt)", name,
                       nidat, ph.w, ph.h);
    }
    uint8_t *raw = xmalloc(raw_n);
    size_t got;
    rc = zlib_decompress(idat, nidat, raw, raw_n, &got, name, err);
    free(idat);
    if (rc == 0 && got != raw_n)
        rc = err_set(err, "%s: PNG image data inflates to %zu bytes, expected %zu for %zu x %zu (truncated?)", name,
                     got, raw_n, ph.w, ph.h);
    if (rc) {
        free(raw);
        return rc;
    }
    ph.out_channels = ph.ctype == 3 ? (ph.has_trns ? 4 : 3) : ph.spp + ph.has_trns;
    image_alloc(out, ph.w, ph.h, ph.out_channels, ph.depth == 16 ? 16 : 8);
    size_t rowmax = (ph.w * bits_pp + 7) / 8;
    uint8_t *zero = calloc(rowmax + 1, 1);
    I2V_ASSERT(zero, "out of memory");
    uint8_t *r = raw;
    for (int p = p0; p <= p1 && rc == 0; p++) {
        size_t wp = pass_extent(ph.w, adam7_x0[p], adam7_dx[p]), hp = pass_extent(ph.h, adam7_y0[p], adam7_dy[p]);
        if (!wp || !hp) continue;
        size_t rowlen = (wp * bits_pp + 7) / 8;
        const uint8_t *prior = zero;
        for (size_t y = 0; y < hp; y++) {
            int ft = r[0];
            if (unfilter_row(ft, r + 1, prior, rowlen, bpp)) {
                rc = err_set(err, "%s: PNG row %zu%s has filter type %d (expected 0..4)", name, y,
                             p ? " of an interlace pass" : "", ft);
                break;
            }
            size_t oy = adam7_y0[p] + y * adam7_dy[p];
            if ((rc = png_emit_row(&ph, r + 1, oy, adam7_x0[p], adam7_dx[p], wp, out, name, err))) break;
            prior = r + 1;
            r += 1 + rowlen;
        }
    }
    free(zero);
    free(raw);
    if (rc) image_free(out);
    return rc;
}

int png_read(const char *path, Image *out, I2vError *err) {
    uint8_t *buf;
    size_t n;
    memset(out, 0, sizeof *out);
    if (read_file_bytes(path, &buf, &n, err)) return -1;
    int rc = png_decode(buf, n, path, out, err);
    free(buf);
    return rc;
}

static size_t png_chunk(uint8_t *dst, const char *type, const uint8_t *data, size_t len) {
    put_be32(dst, (uint32_t)len);
    memcpy(dst + 4, type, 4);
    if (len) memcpy(dst + 8, data, len);
    put_be32(dst + 8 + len, crc32_update(0, dst + 4, len + 4));
    return len + 12;
}

/* Filter choice per row (PNG spec 12.8): the filter whose output has the smallest sum of absolute values,
 * bytes read as signed, which favours rows near zero that deflate codes cheaply. */
static void filter_row(const uint8_t *row, const uint8_t *prior, size_t len, size_t bpp, uint8_t *dst,
                       uint8_t *scratch) {
    size_t best_cost = (size_t)-1;
    for (int f = 0; f < 5; f++) {
        uint8_t *o = scratch;
        size_t cost = 0;
        for (size_t i = 0; i < len; i++) {
            int a = i >= bpp ? row[i - bpp] : 0, b = prior[i], c = i >= bpp ? prior[i - bpp] : 0;
            int pred = f == 0 ? 0 : f == 1 ? a : f == 2 ? b : f == 3 ? (a + b) >> 1 : paeth(a, b, c);
            uint8_t v = (uint8_t)(row[i] - pred);
            o[i] = v;
            cost += v < 128 ? v : 256u - v;
        }
        if (cost < best_cost) {
            best_cost = cost;
            dst[0] = (uint8_t)f;
            memcpy(dst + 1, o, len);
        }
    }
}

uint8_t *png_encode(const Image *im, size_t *n) {
    I2V_ASSERT(im->data && im->channels >= 1 && im->channels <= 4 && (im->depth == 8 || im->depth == 16) &&
                   image_dims_ok(im->width, im->height, im->channels),
               "png_encode: bad image %zu x %zu x %d, depth %d", im->width, im->height, im->channels, im->depth);
    static const uint8_t ctype_of[5] = {0, 0, 4, 2, 6};
    size_t w = im->width, h = im->height, bps = (size_t)im->depth / 8, bpp = (size_t)im->channels * bps;
    size_t rowlen = w * bpp;
    uint8_t *raw = xmalloc(h * (rowlen + 1));
    uint8_t *cur = xmalloc(rowlen), *prior = calloc(rowlen, 1), *scratch = xmalloc(rowlen);
    I2V_ASSERT(prior, "out of memory");
    for (size_t y = 0; y < h; y++) {
        if (bps == 1) {
            memcpy(cur, im->data + y * rowlen, rowlen);
        } else {   /* 16-bit samples are big-endian in PNG */
            const uint16_t *s = (const uint16_t *)(const void *)im->data + y * w * (size_t)im->channels;
            for (size_t i = 0; i < w * (size_t)im->channels; i++) {
                cur[2 * i] = (uint8_t)(s[i] >> 8);
                cur[2 * i + 1] = (uint8_t)s[i];
            }
        }
        filter_row(cur, prior, rowlen, bpp, raw + y * (rowlen + 1), scratch);
        uint8_t *t = prior;
        prior = cur;
        cur = t;
    }
    free(cur);
    free(prior);
    free(scratch);
    size_t zn;
    uint8_t *z = zlib_compress(raw, h * (rowlen + 1), 6, &zn);
    free(raw);
    size_t max_idat = (size_t)1 << 20, nchunks = zn / max_idat + 1;
    uint8_t *png = xmalloc(8 + 25 + zn + 12 * nchunks + 12);
    size_t k = 0;
    memcpy(png, png_sig, 8);
    k += 8;
    uint8_t ihdr[13];
    put_be32(ihdr, (uint32_t)w);
    put_be32(ihdr + 4, (uint32_t)h);
    ihdr[8] = (uint8_t)im->depth;
    ihdr[9] = ctype_of[im->channels];
    ihdr[10] = ihdr[11] = ihdr[12] = 0;
    k += png_chunk(png + k, "IHDR", ihdr, 13);
    for (size_t off = 0; off < zn || off == 0; off += max_idat) {
        size_t len = zn - off < max_idat ? zn - off : max_idat;
        k += png_chunk(png + k, "IDAT", z + off, len);
        if (off + len >= zn) break;
    }
    k += png_chunk(png + k, "IEND", NULL, 0);
    free(z);
    *n = k;
    return png;
}

int png_write(const char *path, const Image *im, I2vError *err) {
    size_t n;
    uint8_t *buf = png_encode(im, &n);
    int rc = write_file_bytes(path, buf, n, err);
    free(buf);
    return rc;
}
