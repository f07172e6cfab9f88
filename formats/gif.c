/* gif.c: animated GIF writing (palette choice, LZW, GIF89a blocks), a GIF reader, and the grid helpers
 * that lay several videos out for one GIF or one PNG.
 *
 * Not here: dithering (pixels take their nearest palette colour, which keeps frames exactly reproducible),
 * per-frame palettes, frame differencing. The reader exists so the fuzz tests can feed GIFs to a decoder;
 * the tests check the writer with a separate decoder of their own.
 *
 * References: GIF89a specification (CompuServe, 1990): LZW with variable code size (appendix F), the
 * Graphic Control Extension (section 23), interlaced row order (appendix E); the NETSCAPE2.0 application
 * extension for looping. Dimension legend: T frames, H height, W width; frames are (T, H, W, 3) uint8.
 */
#include "formats/gif.h"

#include <stdlib.h>
#include <string.h>

#include "formats/files.h"
#include "formats/image.h"

/* ==================================================================================================== */
/* growable byte buffer                                                                                  */
/* ==================================================================================================== */

typedef struct Buf {
    uint8_t *p;
    size_t n, cap;
} Buf;

static void buf_put(Buf *b, const void *src, size_t k) {
    if (b->n + k > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + k) cap *= 2;
        uint8_t *q = realloc(b->p, cap);
        I2V_ASSERT(q, "out of memory growing a GIF buffer to %zu bytes", cap);
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, src, k);
    b->n += k;
}

static void buf_byte(Buf *b, unsigned v) {
    uint8_t c = (uint8_t)v;
    buf_put(b, &c, 1);
}

static void buf_le16(Buf *b, unsigned v) {
    buf_byte(b, v & 0xFF);
    buf_byte(b, (v >> 8) & 0xFF);
}

/* ==================================================================================================== */
/* palette                                                                                               */
/* ==================================================================================================== */

/* Up to 256 distinct colours of the input, exactly; returns their number, or 257 if there are more. */
static int exact_colours(const uint8_t *rgb, size_t npix, uint8_t pal[256][3]) {
    uint32_t table[1024] = {0};   /* open addressing, key = colour + 1 */
    int k = 0;
    for (size_t i = 0; i < npix; i++) {
        uint32_t c = (uint32_t)rgb[3 * i] << 16 | (uint32_t)rgb[3 * i + 1] << 8 | rgb[3 * i + 2];
        uint32_t h = (c * 2654435761u) >> 22;
        while (table[h] && table[h] != c + 1) h = (h + 1) & 1023;
        if (table[h]) continue;
        if (k == 256) return 257;
        table[h] = c + 1;
        pal[k][0] = rgb[3 * i];
        pal[k][1] = rgb[3 * i + 1];
        pal[k][2] = rgb[3 * i + 2];
        k++;
    }
    return k;
}

typedef struct Box {
    int lo[3], hi[3];   /* inclusive bounds in the 5-bit histogram */
    uint64_t count;
} Box;

#define HIDX(r, g, b) (((size_t)(r) << 10) | ((size_t)(g) << 5) | (size_t)(b))

/* Recomputes a box's population and shrinks it to the populated bins. */
static void box_shrink(Box *bx, const uint32_t *hist) {
    int lo[3] = {31, 31, 31}, hi[3] = {0, 0, 0};
    uint64_t count = 0;
    for (int r = bx->lo[0]; r <= bx->hi[0]; r++)
        for (int g = bx->lo[1]; g <= bx->hi[1]; g++)
            for (int b = bx->lo[2]; b <= bx->hi[2]; b++) {
                uint32_t c = hist[HIDX(r, g, b)];
                if (!c) continue;
                count += c;
                int v[3] = {r, g, b};
                for (int a = 0; a < 3; a++) {
                    if (v[a] < lo[a]) lo[a] = v[a];
                    if (v[a] > hi[a]) hi[a] = v[a];
                }
            }
    bx->count = count;
    if (count) {
        memcpy(bx->lo, lo, sizeof lo);
        memcpy(bx->hi, hi, sizeof hi);
    }
}

/* Heckbert's median cut over a 5-5-5 histogram: repeatedly split the box with the largest population
 * times extent along its longest axis at the population median; each palette entry is the mean of the
 * true colours that fell into its box. Returns the number of entries (<= 256). */
static int median_cut(const uint8_t *rgb, size_t npix, uint8_t pal[256][3]) {
    uint32_t *hist = calloc((size_t)1 << 15, sizeof *hist);
    uint64_t (*sum)[3] = calloc((size_t)1 << 15, sizeof *sum);
    I2V_ASSERT(hist && sum, "out of memory for the GIF palette histogram");
    for (size_t i = 0; i < npix; i++) {
        size_t h = HIDX(rgb[3 * i] >> 3, rgb[3 * i + 1] >> 3, rgb[3 * i + 2] >> 3);
        hist[h]++;
        for (int c = 0; c < 3; c++) sum[h][c] += rgb[3 * i + (size_t)c];
    }
    Box boxes[256];
    int nb = 1;
    boxes[0] = (Box){{0, 0, 0}, {31, 31, 31}, 0};
    box_shrink(&boxes[0], hist);
    while (nb < 256) {
        int best = -1, axis = 0;
        uint64_t best_score = 0;
        for (int i = 0; i < nb; i++) {
            int ax = 0;
            for (int a = 1; a < 3; a++)
                if (boxes[i].hi[a] - boxes[i].lo[a] > boxes[i].hi[ax] - boxes[i].lo[ax]) ax = a;
            uint64_t score = boxes[i].count * (uint64_t)(boxes[i].hi[ax] - boxes[i].lo[ax]);
            if (score > best_score) {
                best_score = score;
                best = i;
                axis = ax;
            }
        }
        if (best < 0) break;   /* every box is a single bin */
        Box *bx = &boxes[best];
        uint64_t acc = 0;
        int cut = bx->lo[axis];
        for (int s = bx->lo[axis]; s < bx->hi[axis]; s++) {
            int lo[3], hi[3];
            memcpy(lo, bx->lo, sizeof lo);
            memcpy(hi, bx->hi, sizeof hi);
            lo[axis] = hi[axis] = s;
            for (int r = lo[0]; r <= hi[0]; r++)
                for (int g = lo[1]; g <= hi[1]; g++)
                    for (int b = lo[2]; b <= hi[2]; b++) acc += hist[HIDX(r, g, b)];
            cut = s;
            if (2 * acc >= bx->count) break;
        }
        Box upper = *bx;
        upper.lo[axis] = cut + 1;
        bx->hi[axis] = cut;
        box_shrink(bx, hist);
        box_shrink(&upper, hist);
        boxes[nb++] = upper;
    }
    int k = 0;
    for (int i = 0; i < nb; i++) {
        uint64_t s[3] = {0, 0, 0}, count = 0;
        for (int r = boxes[i].lo[0]; r <= boxes[i].hi[0]; r++)
            for (int g = boxes[i].lo[1]; g <= boxes[i].hi[1]; g++)
                for (int b = boxes[i].lo[2]; b <= boxes[i].hi[2]; b++) {
                    size_t h = HIDX(r, g, b);
                    count += hist[h];
                    for (int c = 0; c < 3; c++) s[c] += sum[h][c];
                }
        if (!count) continue;
        for (int c = 0; c < 3; c++) pal[k][c] = (uint8_t)((s[c] + count / 2) / count);
        k++;
    }
    free(hist);
    free(sum);
    return k;
}

/* Nearest palette entry by squared RGB distance (ties: the lowest index), with a direct-mapped cache
 * because video frames repeat their colours. */
static void map_to_palette(const uint8_t *rgb, size_t npix, const uint8_t pal[256][3], int npal, uint8_t *idx) {
    enum { CACHE = 1 << 14 };
    uint32_t *key = calloc(CACHE, sizeof *key);
    uint8_t *val = xmalloc(CACHE);
    I2V_ASSERT(key, "out of memory");
    for (size_t i = 0; i < npix; i++) {
        const uint8_t *p = rgb + 3 * i;
        uint32_t c = (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
        uint32_t h = (c * 2654435761u) >> 18;
        if (key[h] == c + 1) {
            idx[i] = val[h];
            continue;
        }
        int best = 0;
        long bestd = -1;
        for (int k = 0; k < npal; k++) {
            long dr = (long)p[0] - pal[k][0], dg = (long)p[1] - pal[k][1], db = (long)p[2] - pal[k][2];
            long d = dr * dr + dg * dg + db * db;
            if (bestd < 0 || d < bestd) {
                bestd = d;
                best = k;
            }
        }
        key[h] = c + 1;
        val[h] = (uint8_t)best;
        idx[i] = (uint8_t)best;
    }
    free(key);
    free(val);
}

/* ==================================================================================================== */
/* LZW encoder (GIF89a appendix F)                                                                       */
/* ==================================================================================================== */

typedef struct LzwOut {
    Buf *b;
    uint8_t block[255];
    int nblock;
    uint32_t bits;
    int nbits;
} LzwOut;

static void lzw_byte(LzwOut *o, uint8_t v) {
    o->block[o->nblock++] = v;
    if (o->nblock == 255) {   /* data sub-block: a length byte, then up to 255 bytes */
        buf_byte(o->b, 255);
        buf_put(o->b, o->block, 255);
        o->nblock = 0;
    }
}

static void lzw_code(LzwOut *o, unsigned code, int size) {   /* codes are packed least significant bit first */
    o->bits |= (uint32_t)code << o->nbits;
    o->nbits += size;
    while (o->nbits >= 8) {
        lzw_byte(o, (uint8_t)o->bits);
        o->bits >>= 8;
        o->nbits -= 8;
    }
}

static void lzw_encode(Buf *b, const uint8_t *idx, size_t npix, int min_size) {
    enum { HSIZE = 8192 };
    uint32_t *hkey = xmalloc(HSIZE * sizeof *hkey);   /* (prefix << 8 | byte) + 1, 0 = empty */
    uint16_t *hval = xmalloc(HSIZE * sizeof *hval);
    LzwOut o = {b, {0}, 0, 0, 0};
    unsigned clear = 1u << min_size, eoi = clear + 1, next = eoi + 1;
    int size = min_size + 1;
    memset(hkey, 0, HSIZE * sizeof *hkey);
    buf_byte(b, (unsigned)min_size);
    lzw_code(&o, clear, size);
    unsigned prefix = idx[0];
    for (size_t i = 1; i < npix; i++) {
        uint32_t key = (prefix << 8 | idx[i]) + 1;
        uint32_t h = (key * 2654435761u) >> 19;
        while (hkey[h] && hkey[h] != key) h = (h + 1) & (HSIZE - 1);
        if (hkey[h]) {
            prefix = hval[h];
            continue;
        }
        lzw_code(&o, prefix, size);
        /* the decoder adds its entries one code later than we do, so it widens its codes when the next
         * free code reaches 2^size one step later too: widen before adding, as giflib does */
        if (next >= (1u << size) && size < 12) size++;
        if (next < 4095) {
            hkey[h] = key;
            hval[h] = (uint16_t)next++;
        } else {   /* table full: start over with a clear code */
            lzw_code(&o, clear, size);
            memset(hkey, 0, HSIZE * sizeof *hkey);
            next = eoi + 1;
            size = min_size + 1;
        }
        prefix = idx[i];
    }
    lzw_code(&o, prefix, size);
    if (next >= (1u << size) && size < 12) size++;
    lzw_code(&o, eoi, size);
    if (o.nbits > 0) lzw_byte(&o, (uint8_t)o.bits);
    if (o.nblock) {
        buf_byte(b, (unsigned)o.nblock);
        buf_put(b, o.block, (size_t)o.nblock);
    }
    buf_byte(b, 0);   /* block terminator */
    free(hkey);
    free(hval);
}

uint8_t *gif_encode(const uint8_t *rgb, size_t frames, size_t width, size_t height, int delay_cs, int loop_count,
                    size_t *n) {
    I2V_ASSERT(frames > 0 && width > 0 && height > 0 && width <= 65535 && height <= 65535,
               "gif_encode: %zu frames of %zu x %zu (GIF allows up to 65535 x 65535)", frames, width, height);
    size_t fpix = width * height, npix = frames * fpix;
    uint8_t pal[256][3];
    memset(pal, 0, sizeof pal);
    int npal = exact_colours(rgb, npix, pal);
    if (npal > 256) npal = median_cut(rgb, npix, pal);
    uint8_t *idx = xmalloc(npix);
    map_to_palette(rgb, npix, (const uint8_t(*)[3])pal, npal, idx);
    int bits = 1;
    while ((1 << bits) < npal) bits++;
    int min_size = bits < 2 ? 2 : bits;   /* the LZW minimum code size is at least 2 (appendix F) */

    Buf b = {NULL, 0, 0};
    buf_put(&b, "GIF89a", 6);
    buf_le16(&b, (unsigned)width);
    buf_le16(&b, (unsigned)height);
    buf_byte(&b, 0x80 | 0x70 | (unsigned)(bits - 1));   /* global table, 8-bit colour resolution, 2^bits entries */
    buf_byte(&b, 0);                                    /* background colour index */
    buf_byte(&b, 0);                                    /* no aspect ratio */
    buf_put(&b, pal, (size_t)3 << bits);
    if (frames > 1) {
        buf_put(&b, "\x21\xFF\x0BNETSCAPE2.0\x03\x01", 16);
        buf_le16(&b, (unsigned)loop_count & 0xFFFF);
        buf_byte(&b, 0);
    }
    for (size_t t = 0; t < frames; t++) {
        /* Graphic Control Extension: disposal 1 (leave the frame in place), no transparency */
        buf_put(&b, "\x21\xF9\x04\x04", 4);
        buf_le16(&b, (unsigned)(delay_cs < 0 ? 0 : delay_cs > 65535 ? 65535 : delay_cs));
        buf_byte(&b, 0);
        buf_byte(&b, 0);
        buf_byte(&b, 0x2C);   /* image descriptor: whole screen, no local table, not interlaced */
        buf_le16(&b, 0);
        buf_le16(&b, 0);
        buf_le16(&b, (unsigned)width);
        buf_le16(&b, (unsigned)height);
        buf_byte(&b, 0);
        lzw_encode(&b, idx + t * fpix, fpix, min_size);
    }
    buf_byte(&b, 0x3B);
    free(idx);
    *n = b.n;
    return b.p;
}

int gif_write(const char *path, const uint8_t *rgb, size_t frames, size_t width, size_t height, int delay_cs,
              int loop_count, I2vError *err) {
    if (frames == 0 || width == 0 || height == 0 || width > 65535 || height > 65535)
        return err_set(err, "%s: cannot write %zu frames of %zu x %zu as GIF (1..65535 pixels a side)", path, frames,
                       width, height);
    size_t n;
    uint8_t *buf = gif_encode(rgb, frames, width, height, delay_cs, loop_count, &n);
    int rc = write_file_bytes(path, buf, n, err);
    free(buf);
    return rc;
}

/* ==================================================================================================== */
/* GIF reader                                                                                            */
/* ==================================================================================================== */

typedef struct GifIn {
    const uint8_t *p;
    size_t n, pos;
    const char *name;
    I2vError *err;
} GifIn;

static int gin_need(GifIn *g, size_t k, const char *what) {
    if (g->n - g->pos < k)
        return err_set(g->err, "%s: GIF truncated in %s at byte %zu (no trailer 0x3B)", g->name, what, g->pos);
    return 0;
}

/* Concatenates a sequence of data sub-blocks (or skips it when out is NULL). */
static int gin_subblocks(GifIn *g, Buf *out, const char *what) {
    for (;;) {
        if (gin_need(g, 1, what)) return -1;
        size_t k = g->p[g->pos++];
        if (k == 0) return 0;
        if (gin_need(g, k, what)) return -1;
        if (out) buf_put(out, g->p + g->pos, k);
        g->pos += k;
    }
}

/* LZW decoding of one frame's indices; fails on codes out of range or too little data. */
static int lzw_decode(GifIn *g, const uint8_t *data, size_t n, int min_size, uint8_t *idx, size_t npix) {
    uint16_t prefix[4096];
    uint8_t suffix[4096], first[4096], stack[4096];
    unsigned clear = 1u << min_size, eoi = clear + 1, next = eoi + 1;
    int size = min_size + 1;
    for (unsigned c = 0; c < clear; c++) {
        suffix[c] = (uint8_t)c;
        first[c] = (uint8_t)c;
    }
    size_t bitpos = 0, out = 0, nbits = n * 8;
    int old = -1;
    while (out < npix) {
        if (nbits - bitpos < (size_t)size || bitpos > nbits) break;
        unsigned code = 0;
        for (int i = 0; i < size; i++, bitpos++) code |= (unsigned)((data[bitpos >> 3] >> (bitpos & 7)) & 1) << i;
        if (code == clear) {
            next = eoi + 1;
            size = min_size + 1;
            old = -1;
            continue;
        }
        if (code == eoi) break;
        if (old < 0) {
            if (code >= clear)
                return err_set(g->err, "%s: GIF LZW stream starts with code %u (expected a literal below %u)", g->name,
                               code, clear);
            idx[out++] = (uint8_t)code;
            old = (int)code;
            continue;
        }
        if (code > next || (code == next && next >= 4096))
            return err_set(g->err, "%s: GIF LZW code %u out of range (next free code %u)", g->name, code, next);
        unsigned c = code == next ? (unsigned)old : code;
        int sp = 0;
        if (code == next) stack[sp++] = first[old];
        while (c >= clear) {   /* entries above eoi are (prefix, suffix) pairs */
            stack[sp++] = suffix[c];
            c = prefix[c];
        }
        stack[sp++] = (uint8_t)c;
        while (sp > 0 && out < npix) idx[out++] = stack[--sp];
        if (next < 4096) {
            prefix[next] = (uint16_t)old;
            suffix[next] = (uint8_t)c;   /* the first byte of this code's string */
            first[next] = first[old];
            next++;
            if (next >= (1u << size) && size < 12) size++;
        }
        old = (int)code;
    }
    if (out < npix)
        return err_set(g->err, "%s: GIF frame data ends after %zu of %zu pixels", g->name, out, npix);
    return 0;
}

/* The most pixels an LZW stream of `bytes` bytes can give: every code takes at least min_size + 1 bits
 * and stands for at most 4096 pixels (the dictionary's longest string). */
static double lzw_max_pixels(size_t bytes, int min_size) {
    return 4096.0 * ((double)bytes * 8 / (min_size + 1) + 1);
}

/* A first pass over the blocks from g->pos that allocates nothing: the frames, and the pixels their
 * rectangles cover. A frame larger than its data can hold is an error; a malformed block ends the pass
 * quietly (the decoder then reports it where it is). */
static int gif_scan(GifIn g, size_t *nframes, double *painted) {
    *nframes = 0;
    *painted = 0;
    while (g.pos < g.n) {
        unsigned intro = g.p[g.pos++];
        if (intro == 0x3B) return 0;
        if (intro == 0x21) {
            if (g.pos >= g.n) return 0;
            g.pos++;
            if (gin_subblocks(&g, NULL, "an extension")) return 0;
        } else if (intro == 0x2C) {
            if (g.n - g.pos < 10) return 0;
            const uint8_t *d = g.p + g.pos;
            size_t fw = (size_t)d[4] | (size_t)d[5] << 8, fh = (size_t)d[6] | (size_t)d[7] << 8;
            g.pos += 9 + ((d[8] & 0x80) ? (size_t)3 * (2u << (d[8] & 7)) : 0);
            if (g.pos >= g.n) return 0;
            int min_size = g.p[g.pos++];
            size_t start = g.pos, bytes = 0;
            if (gin_subblocks(&g, NULL, "image data")) return 0;
            bytes = g.pos - start;   /* the data and its sub-block lengths: a slight over-count */
            if (min_size >= 1 && min_size <= 11 && (double)fw * (double)fh > lzw_max_pixels(bytes, min_size))
                return err_set(g.err, "%s: GIF frame %zu of %zu x %zu pixels has %zu bytes of data, which hold at most "
                                      "%.0f pixels", g.name, *nframes, fw, fh, bytes, lzw_max_pixels(bytes, min_size));
            *painted += (double)fw * (double)fh;
            ++*nframes;
        } else {
            return 0;
        }
    }
    return 0;
}

int gif_decode(const uint8_t *buf, size_t n, const char *name, uint8_t **rgb, size_t *frames, size_t *width,
               size_t *height, I2vError *err) {
    *rgb = NULL;
    *frames = *width = *height = 0;
    GifIn g = {buf, n, 0, name, err};
    if (n < 13 || (memcmp(buf, "GIF87a", 6) && memcmp(buf, "GIF89a", 6)))
        return err_set(err, "%s: not a GIF file (expected GIF87a or GIF89a)", name);
    size_t w = (size_t)buf[6] | (size_t)buf[7] << 8, h = (size_t)buf[8] | (size_t)buf[9] << 8;
    unsigned flags = buf[10];
    if (w == 0 || h == 0) return err_set(err, "%s: GIF screen size %zu x %zu (must be positive)", name, w, h);
    if (w * h * 3 > I2V_IMAGE_MAX_SAMPLES) return err_set(err, "%s: GIF screen %zu x %zu is over the cap", name, w, h);
    g.pos = 13;
    uint8_t gpal[256][3], lpal[256][3];
    int ngpal = 0;
    if (flags & 0x80) {
        ngpal = 2 << (flags & 7);
        if (gin_need(&g, (size_t)3 * (size_t)ngpal, "the global colour table")) return -1;
        memcpy(gpal, buf + g.pos, (size_t)3 * (size_t)ngpal);
        g.pos += (size_t)3 * (size_t)ngpal;
    }
    size_t fpix = w * h;
    /* before anything is allocated: the output (every frame a whole screen) within the cap, and a screen
     * its frames paint, not a small file that claims a huge screen */
    size_t scanned;
    double painted;
    if (gif_scan(g, &scanned, &painted)) return -1;
    if ((double)scanned * (double)fpix * 3 > I2V_IMAGE_MAX_SAMPLES)
        return err_set(err, "%s: GIF of %zu frames of %zu x %zu is over the cap of 2^28 samples", name, scanned, w, h);
    if ((double)fpix > 4 * painted + 65536)
        return err_set(err, "%s: GIF screen of %zu x %zu, but its frames cover only %.0f pixels", name, w, h, painted);
    uint8_t *canvas = calloc(fpix * 3, 1), *saved = NULL;   /* saved: for disposal 3, made when first needed */
    I2V_ASSERT(canvas, "out of memory");
    Buf out = {NULL, 0, 0}, data = {NULL, 0, 0};
    uint8_t *idx = NULL;
    int disposal = 0, transparent = -1, rc = 0, done = 0;
    size_t nframes = 0;
    while (!done && rc == 0) {
        if ((rc = gin_need(&g, 1, "a block introducer"))) break;
        unsigned intro = buf[g.pos++];
        if (intro == 0x3B) {
            done = 1;
        } else if (intro == 0x21) {
            if ((rc = gin_need(&g, 1, "an extension label"))) break;
            unsigned label = buf[g.pos++];
            if (label == 0xF9) {   /* Graphic Control Extension */
                if ((rc = gin_need(&g, 6, "a graphic control extension"))) break;
                if (buf[g.pos] != 4) {
                    rc = err_set(err, "%s: GIF graphic control extension of %u bytes (expected 4)", name, buf[g.pos]);
                    break;
                }
                unsigned f = buf[g.pos + 1];
                disposal = (int)((f >> 2) & 7);
                transparent = (f & 1) ? buf[g.pos + 4] : -1;
                g.pos += 5;
            }
            rc = gin_subblocks(&g, NULL, "an extension");
        } else if (intro == 0x2C) {
            if ((rc = gin_need(&g, 9, "an image descriptor"))) break;
            const uint8_t *d = buf + g.pos;
            size_t x0 = (size_t)d[0] | (size_t)d[1] << 8, y0 = (size_t)d[2] | (size_t)d[3] << 8;
            size_t fw = (size_t)d[4] | (size_t)d[5] << 8, fh = (size_t)d[6] | (size_t)d[7] << 8;
            unsigned f = d[8];
            g.pos += 9;
            if (fw == 0 || fh == 0 || x0 + fw > w || y0 + fh > h) {
                rc = err_set(err, "%s: GIF frame %zu at (%zu, %zu) size %zu x %zu does not fit the %zu x %zu screen",
                             name, nframes, x0, y0, fw, fh, w, h);
                break;
            }
            if ((nframes + 1) * fpix * 3 > I2V_IMAGE_MAX_SAMPLES) {
                rc = err_set(err, "%s: GIF has more frames than fit the cap of 2^28 samples", name);
                break;
            }
            uint8_t (*pal)[3] = gpal;
            int npal = ngpal;
            if (f & 0x80) {
                npal = 2 << (f & 7);
                if ((rc = gin_need(&g, (size_t)3 * (size_t)npal, "a local colour table"))) break;
                memcpy(lpal, buf + g.pos, (size_t)3 * (size_t)npal);
                g.pos += (size_t)3 * (size_t)npal;
                pal = lpal;
            }
            if (npal == 0) {
                rc = err_set(err, "%s: GIF frame %zu has no colour table", name, nframes);
                break;
            }
            if ((rc = gin_need(&g, 1, "the LZW code size"))) break;
            int min_size = buf[g.pos++];
            if (min_size < 1 || min_size > 11) {
                rc = err_set(err, "%s: GIF LZW minimum code size %d (expected 1..11)", name, min_size);
                break;
            }
            data.n = 0;
            if ((rc = gin_subblocks(&g, &data, "image data"))) break;
            idx = realloc(idx, fw * fh);
            I2V_ASSERT(idx, "out of memory");
            if ((rc = lzw_decode(&g, data.p ? data.p : (const uint8_t *)"", data.n, min_size, idx, fw * fh))) break;
            if (disposal == 3) {
                if (!saved) saved = xmalloc(fpix * 3);
                memcpy(saved, canvas, fpix * 3);
            }
            for (size_t r = 0; r < fh && rc == 0; r++) {
                size_t y = r;
                if (f & 0x40) {   /* interlaced: rows of pass 1 (every 8th from 0), 2 (from 4), 3 (from 2), 4 (odd) */
                    size_t n1 = (fh + 7) / 8, n2 = (fh + 3) / 8, n3 = (fh + 1) / 4;
                    if (r < n1) y = r * 8;
                    else if (r < n1 + n2) y = (r - n1) * 8 + 4;
                    else if (r < n1 + n2 + n3) y = (r - n1 - n2) * 4 + 2;
                    else y = (r - n1 - n2 - n3) * 2 + 1;
                }
                for (size_t x = 0; x < fw; x++) {
                    int k = idx[r * fw + x];
                    if (k == transparent) continue;
                    if (k >= npal) {
                        rc = err_set(err, "%s: GIF frame %zu uses colour %d of a %d-entry table", name, nframes, k, npal);
                        break;
                    }
                    memcpy(canvas + ((y0 + y) * w + x0 + x) * 3, pal[k], 3);
                }
            }
            if (rc) break;
            buf_put(&out, canvas, fpix * 3);
            nframes++;
            if (disposal == 2) {
                for (size_t y = y0; y < y0 + fh; y++) memset(canvas + (y * w + x0) * 3, 0, fw * 3);
            } else if (disposal == 3) {
                memcpy(canvas, saved, fpix * 3);
            }
            disposal = 0;
            transparent = -1;
        } else {
            rc = err_set(err, "%s: GIF block introducer 0x%02x at byte %zu (expected 0x21, 0x2C or 0x3B)", name, intro,
                         g.pos - 1);
        }
    }
    if (rc == 0 && nframes == 0) rc = err_set(err, "%s: GIF has no frames", name);
    free(canvas);
    free(saved);
    free(data.p);
    free(idx);
    if (rc) {
        free(out.p);
        return rc;
    }
    *rgb = out.p;
    *frames = nframes;
    *width = w;
    *height = h;
    return 0;
}

/* ==================================================================================================== */
/* grids                                                                                                 */
/* ==================================================================================================== */

uint8_t *video_grid(const uint8_t *const *videos, size_t nvideos, size_t frames, size_t height, size_t width,
                    size_t cols, size_t gap, uint8_t background, size_t *grid_h, size_t *grid_w) {
    I2V_ASSERT(nvideos > 0 && cols > 0 && frames > 0, "video_grid: %zu videos in %zu columns", nvideos, cols);
    if (cols > nvideos) cols = nvideos;
    size_t rows = (nvideos + cols - 1) / cols;
    size_t gh = rows * (height + gap) + gap, gw = cols * (width + gap) + gap;
    uint8_t *g = xmalloc(frames * gh * gw * 3);
    memset(g, background, frames * gh * gw * 3);
    for (size_t v = 0; v < nvideos; v++) {
        size_t oy = gap + (v / cols) * (height + gap), ox = gap + (v % cols) * (width + gap);
        for (size_t t = 0; t < frames; t++)
            for (size_t y = 0; y < height; y++)
                memcpy(g + ((t * gh + oy + y) * gw + ox) * 3, videos[v] + ((t * height + y) * width) * 3, width * 3);
    }
    *grid_h = gh;
    *grid_w = gw;
    return g;
}

void video_strip(Image *out, const uint8_t *const *videos, size_t nvideos, size_t frames, size_t height,
                 size_t width, size_t gap, uint8_t background) {
    I2V_ASSERT(nvideos > 0 && frames > 0, "video_strip: %zu videos of %zu frames", nvideos, frames);
    size_t sh = nvideos * (height + gap) + gap, sw = frames * (width + gap) + gap;
    image_alloc(out, sw, sh, 3, 8);
    memset(out->data, background, sw * sh * 3);
    for (size_t v = 0; v < nvideos; v++)
        for (size_t t = 0; t < frames; t++) {
            size_t oy = gap + v * (height + gap), ox = gap + t * (width + gap);
            for (size_t y = 0; y < height; y++)
                memcpy(out->data + ((oy + y) * sw + ox) * 3, videos[v] + ((t * height + y) * width) * 3, width * 3);
        }
}
