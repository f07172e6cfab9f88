/* jpeg.c: JPEG decoding (baseline and progressive Huffman, ITU-T T.81) and baseline JPEG encoding.
 *
 * What it is: the decoder reads 8-bit JPEGs with 1 or 3 components, any integral chroma subsampling
 * (4:4:4, 4:2:2, 4:2:0, 4:4:0, ...), restart intervals, interleaved and non-interleaved scans, sequential
 * or progressive (spectral selection and successive approximation). Every scan's coefficients are kept
 * until EOI, then dequantised, inverse transformed, upsampled and colour converted. The encoder writes a
 * baseline JFIF with the standard tables of Annex K, 4:4:4 or 4:2:0.
 * What it is not: arithmetic coding, 12-bit samples, lossless and hierarchical modes, CMYK, DNL, EXIF
 * orientation. Those are rejected with a message saying which.
 *
 * Matching djpeg. Tests compare with libjpeg-turbo's djpeg, so the stages after the IDCT follow libjpeg's
 * defaults exactly: "fancy" triangular upsampling for 2x1, 1x2 and 2x2 chroma (jdsample.c: weights 3/4 and
 * 1/4, libjpeg's rounding biases, edge rows and columns replicated), plain replication otherwise, and the
 * fixed-point YCbCr -> RGB of jdcolor.c (16 fractional bits). The IDCT is a float one (exact to rounding)
 * where djpeg uses the integer "islow" one, so single samples may differ by one or two levels.
 *
 * Robustness: every segment length is checked against the data left; a scan that reads past its
 * entropy-coded data (truncation or corruption) is an error; missing tables, bad Huffman tables and
 * coefficient indices past 63 are errors; the image size is capped (2^28 samples) before allocation, and
 * so is the number of blocks (at most 8 per byte left in the file, since each costs at least a bit).
 */
#include "formats/jpeg.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "formats/files.h"
#include "formats/image.h"

/* zigzag position k -> natural (row-major) index, T.81 figure A.6 */
static const uint8_t zigzag[64] = {0,  1,  8,  16, 9,  2,  3,  10, 17, 24, 32, 25, 18, 11, 4,  5,
                                   12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6,  7,  14, 21, 28,
                                   35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
                                   58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63};

/* c[x][u] = C(u)/2 cos((2x+1) u pi / 16), C(0) = 1/sqrt(2), else 1: both the forward and the inverse
 * DCT of T.81 A.3.3 are products of this matrix. */
static void dct_matrix(float c[8][8]) {
    for (int x = 0; x < 8; x++)
        for (int u = 0; u < 8; u++)
            c[x][u] = (float)((u == 0 ? sqrt(0.5) : 1.0) * 0.5 * cos((2 * x + 1) * u * 3.14159265358979323846 / 16.0));
}

static inline int clamp255(int v) { return v < 0 ? 0 : v > 255 ? 255 : v; }

/* ==================================================================================================== */
/* decoder: Huffman tables and the bit reader                                                            */
/* ==================================================================================================== */

#define JFAST 9

typedef struct JHuff {
    uint16_t fast[1 << JFAST];   /* next JFAST bits -> length << 8 | value, 0 for longer codes */
    int32_t maxcode[17];         /* largest code of each length, -1 if none (F.2.2.3) */
    int32_t valoff[17];          /* value index = code + valoff[length] */
    uint8_t vals[256];
    int defined;
} JHuff;

/* Builds a table from the 16 counts and the values of a DHT segment (T.81 Annex C). */
static int jhuff_build(JHuff *h, const uint8_t *counts, const uint8_t *vals, int nvals) {
    memset(h, 0, sizeof *h);
    memcpy(h->vals, vals, (size_t)nvals);
    int32_t code = 0;
    int k = 0;
    for (int len = 1; len <= 16; len++) {
        int cnt = counts[len - 1];
        if (code + cnt > (1 << len)) return -1;   /* over-subscribed: more codes than this length can hold */
        h->valoff[len] = k - code;
        h->maxcode[len] = cnt ? code + cnt - 1 : -1;
        for (int i = 0; i < cnt; i++, k++, code++)
            if (len <= JFAST) {
                int shift = JFAST - len;
                for (int j = 0; j < (1 << shift); j++) h->fast[(code << shift) | j] = (uint16_t)(len << 8 | vals[k]);
            }
        code <<= 1;
    }
    h->defined = 1;
    return 0;
}

typedef struct JBits {
    const uint8_t *p;
    size_t n, pos;      /* pos: the next byte of entropy-coded data, or the 0xFF of the marker that ended it */
    uint64_t acc;       /* bits, the next one at position nbits - 1 */
    int nbits;
    int fake;           /* zero bits appended after the data ended (they are the low `fake` bits of acc) */
    int at_marker;
} JBits;

/* Refills to at least 57 bits. 0xFF 0x00 is a stuffed 0xFF (F.1.2.3); 0xFF followed by anything else is a
 * marker, which ends the data: zeros are supplied from there on and counted. */
static void jb_fill(JBits *b) {
    while (b->nbits <= 56) {
        unsigned byte = 0;
        int from_data = 0;
        if (!b->at_marker && b->pos < b->n) {
            unsigned c = b->p[b->pos];
            if (c != 0xFF) {
                byte = c;
                b->pos++;
                from_data = 1;
            } else if (b->pos + 1 < b->n && b->p[b->pos + 1] == 0x00) {
                byte = 0xFF;
                b->pos += 2;
                from_data = 1;
            } else {
                b->at_marker = 1;
            }
        }
        if (!from_data) b->fake += 8;
        b->acc = (b->acc << 8) | byte;
        b->nbits += 8;
    }
}

static inline unsigned jb_get(JBits *b, int k) {   /* k <= 16 */
    if (k == 0) return 0;
    if (b->nbits < k) jb_fill(b);
    b->nbits -= k;
    return (unsigned)(b->acc >> b->nbits) & ((1u << k) - 1);
}

static inline int jb_overrun(const JBits *b) { return b->nbits < b->fake; }

static inline int jhuff_decode(JBits *b, const JHuff *h) {
    if (b->nbits < 16) jb_fill(b);
    unsigned look = (unsigned)(b->acc >> (b->nbits - JFAST)) & ((1u << JFAST) - 1);
    unsigned e = h->fast[look];
    if (e) {
        b->nbits -= (int)(e >> 8);
        return (int)(e & 255);
    }
    for (int len = JFAST + 1; len <= 16; len++) {
        int32_t code = (int32_t)((b->acc >> (b->nbits - len)) & ((1u << len) - 1));
        if (code <= h->maxcode[len]) {
            b->nbits -= len;
            return h->vals[code + h->valoff[len]];
        }
    }
    return -1;
}

/* EXTEND of T.81 F.2.2.1: v holds s bits; values below 2^(s-1) are negative. */
static inline int extend(unsigned v, int s) {
    if (s == 0) return 0;
    if (v < (1u << (s - 1))) return (int)v - (int)(1u << s) + 1;
    return (int)v;
}

static inline int16_t clamp16(long v) { return (int16_t)(v < -32768 ? -32768 : v > 32767 ? 32767 : v); }

/* ==================================================================================================== */
/* decoder state                                                                                         */
/* ==================================================================================================== */

typedef struct JComp {
    int id, h, v, tq;
    size_t cw, ch;           /* component size in samples: ceil(W h / hmax) x ceil(H v / vmax) */
    size_t bw, bh;           /* blocks covering the component */
    size_t bwp, bhp;         /* blocks padded to whole MCUs */
    int16_t *coef;           /* (bhp, bwp, 64) quantised coefficients, natural order */
    uint16_t q[64];          /* quantisation table latched at the component's first scan, natural order */
    int q_latched;
    int dc_tbl, ac_tbl;      /* tables of the current scan */
    int dc_pred;
    uint8_t *plane;          /* (bhp * 8, bwp * 8) samples after the IDCT */
} JComp;

typedef struct JDec {
    const uint8_t *buf;
    size_t n;
    const char *name;
    I2vError *err;
    uint16_t qt[4][64];
    int qt_defined[4];
    JHuff dc[4], ac[4];
    int ncomp;
    JComp comp[3];
    size_t width, height;
    int seen_sof, progressive, hmax, vmax;
    size_t mcux, mcuy;
    int restart_interval;
    int jfif, adobe, adobe_transform;
    int nscans;
    /* the current scan */
    int ns, sc[4], ss, se, ah, al;
    int eobrun;
    JBits bits;
} JDec;

static int jerr_corrupt(JDec *d, const char *what) {
    return err_set(d->err, "%s: JPEG scan %d: %s (corrupt or truncated entropy-coded data)", d->name, d->nscans, what);
}

/* ==================================================================================================== */
/* decoder: block decoding (sequential F.2.2, progressive G.1.2)                                          */
/* ==================================================================================================== */

static int decode_block_seq(JDec *d, JComp *c, int16_t *blk) {
    JBits *b = &d->bits;
    int t = jhuff_decode(b, &d->dc[c->dc_tbl]);
    if (t < 0 || t > 16) return jerr_corrupt(d, "bad DC Huffman code");
    c->dc_pred += extend(jb_get(b, t), t);
    if (c->dc_pred > 32767 || c->dc_pred < -32768) return jerr_corrupt(d, "DC value out of range");
    blk[0] = (int16_t)c->dc_pred;
    const JHuff *ac = &d->ac[c->ac_tbl];
    for (int k = 1; k < 64;) {
        int rs = jhuff_decode(b, ac);
        if (rs < 0) return jerr_corrupt(d, "bad AC Huffman code");
        int r = rs >> 4, s = rs & 15;
        if (s) {
            k += r;
            if (k > 63) return jerr_corrupt(d, "AC coefficient index past 63");
            blk[zigzag[k]] = (int16_t)extend(jb_get(b, s), s);
            k++;
        } else {
            if (r != 15) break;   /* EOB */
            k += 16;              /* ZRL: sixteen zeros */
        }
    }
    return 0;
}

static int decode_dc_first(JDec *d, JComp *c, int16_t *blk) {
    int t = jhuff_decode(&d->bits, &d->dc[c->dc_tbl]);
    if (t < 0 || t > 16) return jerr_corrupt(d, "bad DC Huffman code");
    c->dc_pred += extend(jb_get(&d->bits, t), t);
    if (c->dc_pred > 32767 || c->dc_pred < -32768) return jerr_corrupt(d, "DC value out of range");
    blk[0] = clamp16((long)c->dc_pred * (1L << d->al));
    return 0;
}

static int decode_dc_refine(JDec *d, int16_t *blk) {
    if (jb_get(&d->bits, 1)) blk[0] = (int16_t)(blk[0] | (1 << d->al));
    return 0;
}

static int decode_ac_first(JDec *d, JComp *c, int16_t *blk) {
    if (d->eobrun > 0) {
        d->eobrun--;
        return 0;
    }
    JBits *b = &d->bits;
    const JHuff *ac = &d->ac[c->ac_tbl];
    for (int k = d->ss; k <= d->se; k++) {
        int rs = jhuff_decode(b, ac);
        if (rs < 0) return jerr_corrupt(d, "bad AC Huffman code");
        int r = rs >> 4, s = rs & 15;
        if (s) {
            k += r;
            if (k > d->se) return jerr_corrupt(d, "AC coefficient index past the end of the band");
            blk[zigzag[k]] = clamp16((long)extend(jb_get(b, s), s) * (1L << d->al));
        } else if (r == 15) {
            k += 15;
        } else {   /* EOBn: this block and 2^r + (r more bits) - 1 further blocks end here (G.1.2.2) */
            d->eobrun = (1 << r) + (int)jb_get(b, r) - 1;
            break;
        }
    }
    return 0;
}

/* A correction bit for an already non-zero coefficient: 1 means its magnitude grows by 2^Al (G.1.2.3). */
static inline void refine_nonzero(JBits *b, int16_t *coef, int p1) {
    if (jb_get(b, 1) && (*coef & p1) == 0) *coef = (int16_t)(*coef >= 0 ? *coef + p1 : *coef - p1);
}

static int decode_ac_refine(JDec *d, JComp *c, int16_t *blk) {
    JBits *b = &d->bits;
    const JHuff *ac = &d->ac[c->ac_tbl];
    int p1 = 1 << d->al, k = d->ss;
    if (d->eobrun == 0) {
        for (; k <= d->se; k++) {
            int rs = jhuff_decode(b, ac);
            if (rs < 0) return jerr_corrupt(d, "bad AC Huffman code");
            int r = rs >> 4, s = rs & 15, val = 0;
            if (s) {
                if (s != 1) return jerr_corrupt(d, "refinement coefficient of size other than 1");
                val = jb_get(b, 1) ? p1 : -p1;
            } else if (r != 15) {
                d->eobrun = (1 << r) + (int)jb_get(b, r);   /* counts this block; the rest is refined below */
                break;
            }
            /* skip r zero coefficients (refining the non-zero ones passed on the way); stop on the next zero */
            for (; k <= d->se; k++) {
                int16_t *coef = &blk[zigzag[k]];
                if (*coef != 0) {
                    refine_nonzero(b, coef, p1);
                } else {
                    if (r == 0) break;
                    r--;
                }
            }
            if (val) {
                if (k > d->se) return jerr_corrupt(d, "refinement coefficient past the end of the band");
                blk[zigzag[k]] = (int16_t)val;
            }
        }
    }
    if (d->eobrun > 0) {
        for (; k <= d->se; k++)
            if (blk[zigzag[k]] != 0) refine_nonzero(b, &blk[zigzag[k]], p1);
        d->eobrun--;
    }
    return 0;
}

static int decode_block(JDec *d, JComp *c, size_t by, size_t bx) {
    int16_t *blk = c->coef + (by * c->bwp + bx) * 64;
    if (!d->progressive) return decode_block_seq(d, c, blk);
    if (d->ss == 0) return d->ah == 0 ? decode_dc_first(d, c, blk) : decode_dc_refine(d, blk);
    return d->ah == 0 ? decode_ac_first(d, c, blk) : decode_ac_refine(d, c, blk);
}

/* At the end of each restart interval: byte-align, expect RSTm (m = count mod 8), reset the predictors
 * and the end-of-band run (T.81 F.1.2.3 / G.1.2). */
static int process_restart(JDec *d, int *rst_count) {
    JBits *b = &d->bits;
    if (jb_overrun(b)) return jerr_corrupt(d, "data ends inside a restart interval");
    size_t p = b->pos;
    while (p < b->n && b->p[p] == 0xFF && p + 1 < b->n && b->p[p + 1] == 0xFF) p++;   /* fill bytes */
    int want = 0xD0 + (*rst_count & 7);
    if (p + 1 >= b->n || b->p[p] != 0xFF || b->p[p + 1] != want)
        return err_set(d->err, "%s: JPEG scan %d: expected restart marker RST%d at byte %zu (corrupt or truncated)",
                       d->name, d->nscans, *rst_count & 7, p);
    b->pos = p + 2;
    b->acc = 0;
    b->nbits = 0;
    b->fake = 0;
    b->at_marker = 0;
    (*rst_count)++;
    for (int i = 0; i < d->ncomp; i++) d->comp[i].dc_pred = 0;
    d->eobrun = 0;
    return 0;
}

static int decode_scan(JDec *d, size_t start) {
    d->bits = (JBits){d->buf, d->n, start, 0, 0, 0, 0};
    d->eobrun = 0;
    for (int i = 0; i < d->ncomp; i++) d->comp[i].dc_pred = 0;
    int rst_count = 0, rc = 0;
    size_t mcus_done = 0;
    if (d->ns == 1) {   /* non-interleaved: one block per MCU, over the component's own extent (A.2.2) */
        JComp *c = &d->comp[d->sc[0]];
        for (size_t by = 0; by < c->bh && rc == 0; by++)
            for (size_t bx = 0; bx < c->bw && rc == 0; bx++) {
                if (d->restart_interval && mcus_done > 0 && mcus_done % (size_t)d->restart_interval == 0)
                    if ((rc = process_restart(d, &rst_count))) break;
                rc = decode_block(d, c, by, bx);
                mcus_done++;
                if (rc == 0 && jb_overrun(&d->bits)) rc = jerr_corrupt(d, "data ends before the last block");
            }
    } else {
        for (size_t my = 0; my < d->mcuy && rc == 0; my++)
            for (size_t mx = 0; mx < d->mcux && rc == 0; mx++) {
                if (d->restart_interval && mcus_done > 0 && mcus_done % (size_t)d->restart_interval == 0)
                    if ((rc = process_restart(d, &rst_count))) break;
                for (int s = 0; s < d->ns && rc == 0; s++) {
                    JComp *c = &d->comp[d->sc[s]];
                    for (int v = 0; v < c->v && rc == 0; v++)
                        for (int h = 0; h < c->h && rc == 0; h++)
                            rc = decode_block(d, c, my * (size_t)c->v + (size_t)v, mx * (size_t)c->h + (size_t)h);
                }
                mcus_done++;
                if (rc == 0 && jb_overrun(&d->bits)) rc = jerr_corrupt(d, "data ends before the last MCU");
            }
    }
    return rc;
}

/* ==================================================================================================== */
/* decoder: markers                                                                                      */
/* ==================================================================================================== */

static int parse_sof(JDec *d, const uint8_t *p, size_t len, int marker, size_t bytes_left) {
    if (d->seen_sof) return err_set(d->err, "%s: JPEG has more than one frame header (SOF)", d->name);
    if (len < 6) return err_set(d->err, "%s: JPEG SOF%d segment of %zu bytes is too short", d->name, marker - 0xC0, len);
    if (p[0] != 8)
        return err_set(d->err, "%s: JPEG sample precision %d bits is not supported (only 8-bit; 12-bit JPEG is not)",
                       d->name, p[0]);
    size_t h = (size_t)p[1] << 8 | p[2], w = (size_t)p[3] << 8 | p[4];
    int nc = p[5];
    if (h == 0) return err_set(d->err, "%s: JPEG height 0 (height defined by a DNL marker is not supported)", d->name);
    if (w == 0) return err_set(d->err, "%s: JPEG width is 0", d->name);
    if (nc == 4) return err_set(d->err, "%s: JPEG with 4 components (CMYK/YCCK) is not supported", d->name);
    if (nc != 1 && nc != 3)
        return err_set(d->err, "%s: JPEG with %d components is not supported (1 grey or 3 colour)", d->name, nc);
    if (len != 6 + 3 * (size_t)nc)
        return err_set(d->err, "%s: JPEG SOF segment is %zu bytes, expected %d for %d components", d->name, len,
                       6 + 3 * nc, nc);
    if (w * h > I2V_IMAGE_MAX_SAMPLES / (size_t)nc)
        return err_set(d->err, "%s: JPEG image %zu x %zu x %d is larger than the cap of 2^28 samples", d->name, w, h, nc);
    d->width = w;
    d->height = h;
    d->ncomp = nc;
    d->hmax = d->vmax = 1;
    for (int i = 0; i < nc; i++) {
        JComp *c = &d->comp[i];
        c->id = p[6 + 3 * i];
        c->h = p[7 + 3 * i] >> 4;
        c->v = p[7 + 3 * i] & 15;
        c->tq = p[8 + 3 * i];
        if (c->h < 1 || c->h > 4 || c->v < 1 || c->v > 4 || c->tq > 3)
            return err_set(d->err, "%s: JPEG component %d has sampling %dx%d and table %d (expected 1..4 and 0..3)",
                           d->name, c->id, c->h, c->v, c->tq);
        for (int j = 0; j < i; j++)
            if (d->comp[j].id == c->id) return err_set(d->err, "%s: JPEG component id %d appears twice", d->name, c->id);
        if (nc == 1) c->h = c->v = 1;   /* a single component is never interleaved: its MCU is one block */
        if (c->h > d->hmax) d->hmax = c->h;
        if (c->v > d->vmax) d->vmax = c->v;
    }
    int blocks_per_mcu = 0;
    for (int i = 0; i < nc; i++) {
        JComp *c = &d->comp[i];
        if (d->hmax % c->h || d->vmax % c->v)
            return err_set(d->err, "%s: JPEG sampling factors %dx%d against a maximum of %dx%d are not an integral "
                           "ratio (not supported)", d->name, c->h, c->v, d->hmax, d->vmax);
        blocks_per_mcu += c->h * c->v;
    }
    if (nc > 1 && blocks_per_mcu > 10)
        return err_set(d->err, "%s: JPEG MCU of %d blocks (at most 10, T.81 B.2.3)", d->name, blocks_per_mcu);
    /* every coded block costs at least one bit (its DC code), so a frame with more blocks than eight
     * per byte left in the file cannot be complete: refuse it before allocating its coefficients */
    size_t blocks = 0;
    for (int i = 0; i < nc; i++) {
        const JComp *c = &d->comp[i];
        blocks += ((w * (size_t)c->h + (size_t)d->hmax - 1) / (size_t)d->hmax + 7) / 8 *
                  (((h * (size_t)c->v + (size_t)d->vmax - 1) / (size_t)d->vmax + 7) / 8);
    }
    if (blocks / 8 > bytes_left + 64)
        return err_set(d->err, "%s: JPEG frame of %zu x %zu needs %zu blocks but only %zu bytes follow (truncated or "
                       "corrupt)", d->name, w, h, blocks, bytes_left);
    d->mcux = (w + 8 * (size_t)d->hmax - 1) / (8 * (size_t)d->hmax);
    d->mcuy = (h + 8 * (size_t)d->vmax - 1) / (8 * (size_t)d->vmax);
    for (int i = 0; i < nc; i++) {
        JComp *c = &d->comp[i];
        c->cw = (w * (size_t)c->h + (size_t)d->hmax - 1) / (size_t)d->hmax;
        c->ch = (h * (size_t)c->v + (size_t)d->vmax - 1) / (size_t)d->vmax;
        c->bw = (c->cw + 7) / 8;
        c->bh = (c->ch + 7) / 8;
        c->bwp = d->mcux * (size_t)c->h;
        c->bhp = d->mcuy * (size_t)c->v;
        c->coef = calloc(c->bwp * c->bhp * 64, sizeof(int16_t));
        I2V_ASSERT(c->coef, "out of memory for JPEG coefficients (%zu blocks)", c->bwp * c->bhp);
    }
    d->progressive = marker == 0xC2;
    d->seen_sof = 1;
    return 0;
}

static int parse_dqt(JDec *d, const uint8_t *p, size_t len) {
    while (len > 0) {
        int pq = p[0] >> 4, tq = p[0] & 15;
        size_t need = 1 + 64 * (size_t)(pq ? 2 : 1);
        if (pq > 1 || tq > 3)
            return err_set(d->err, "%s: JPEG DQT precision %d / table %d (expected 0..1 / 0..3)", d->name, pq, tq);
        if (len < need) return err_set(d->err, "%s: JPEG DQT segment is truncated", d->name);
        for (int k = 0; k < 64; k++) {
            unsigned v = pq ? (unsigned)p[1 + 2 * k] << 8 | p[2 + 2 * k] : p[1 + k];
            d->qt[tq][zigzag[k]] = (uint16_t)v;
        }
        d->qt_defined[tq] = 1;
        p += need;
        len -= need;
    }
    return 0;
}

static int parse_dht(JDec *d, const uint8_t *p, size_t len) {
    while (len > 0) {
        if (len < 17) return err_set(d->err, "%s: JPEG DHT segment is truncated", d->name);
        int tc = p[0] >> 4, th = p[0] & 15;
        if (tc > 1 || th > 3)
            return err_set(d->err, "%s: JPEG DHT class %d / table %d (expected 0..1 / 0..3)", d->name, tc, th);
        int total = 0;
        for (int i = 0; i < 16; i++) total += p[1 + i];
        if (total > 256 || (size_t)total > len - 17)
            return err_set(d->err, "%s: JPEG DHT table with %d codes is too long or truncated", d->name, total);
        if (jhuff_build(tc ? &d->ac[th] : &d->dc[th], p + 1, p + 17, total))
            return err_set(d->err, "%s: JPEG bad Huffman table (%s %d): more codes than their lengths allow",
                           d->name, tc ? "AC" : "DC", th);
        p += 17 + (size_t)total;
        len -= 17 + (size_t)total;
    }
    return 0;
}

static int parse_sos(JDec *d, const uint8_t *p, size_t len) {
    if (!d->seen_sof) return err_set(d->err, "%s: JPEG scan (SOS) before the frame header (SOF)", d->name);
    if (len < 1) return err_set(d->err, "%s: JPEG SOS segment is empty", d->name);
    int ns = p[0];
    if (ns < 1 || ns > d->ncomp || len != 4 + 2 * (size_t)ns)
        return err_set(d->err, "%s: JPEG SOS with %d components and %zu bytes (frame has %d components)", d->name, ns,
                       len, d->ncomp);
    d->ns = ns;
    for (int i = 0; i < ns; i++) {
        int id = p[1 + 2 * i], k = -1;
        for (int j = 0; j < d->ncomp; j++)
            if (d->comp[j].id == id) k = j;
        for (int j = 0; j < i; j++)
            if (d->sc[j] == k) k = -1;
        if (k < 0) return err_set(d->err, "%s: JPEG SOS names component %d, unknown or repeated", d->name, id);
        d->sc[i] = k;
        d->comp[k].dc_tbl = p[2 + 2 * i] >> 4;
        d->comp[k].ac_tbl = p[2 + 2 * i] & 15;
        if (d->comp[k].dc_tbl > 3 || d->comp[k].ac_tbl > 3)
            return err_set(d->err, "%s: JPEG SOS Huffman table numbers above 3", d->name);
    }
    d->ss = p[1 + 2 * ns];
    d->se = p[2 + 2 * ns];
    d->ah = p[3 + 2 * ns] >> 4;
    d->al = p[3 + 2 * ns] & 15;
    if (d->progressive) {
        if (d->ss > d->se || d->se > 63 || (d->ss == 0 && d->se != 0) || (d->ss > 0 && ns != 1) || d->ah > 13 ||
            d->al > 13)
            return err_set(d->err, "%s: JPEG progressive scan with Ss=%d Se=%d Ah=%d Al=%d and %d components is invalid "
                           "(T.81 G.1.1.1.1)", d->name, d->ss, d->se, d->ah, d->al, ns);
    } else {
        d->ss = 0;   /* sequential scans always cover the whole block */
        d->se = 63;
        d->ah = d->al = 0;
    }
    int interleaved_blocks = 0;
    for (int i = 0; i < ns; i++) {
        JComp *c = &d->comp[d->sc[i]];
        interleaved_blocks += c->h * c->v;
        int need_dc = !d->progressive || (d->ss == 0 && d->ah == 0), need_ac = !d->progressive || d->ss > 0;
        if (need_dc && !d->dc[c->dc_tbl].defined)
            return err_set(d->err, "%s: JPEG scan uses DC Huffman table %d, which is not defined", d->name, c->dc_tbl);
        if (need_ac && !d->ac[c->ac_tbl].defined)
            return err_set(d->err, "%s: JPEG scan uses AC Huffman table %d, which is not defined", d->name, c->ac_tbl);
        if (!c->q_latched) {
            if (!d->qt_defined[c->tq])
                return err_set(d->err, "%s: JPEG component %d uses quantisation table %d, which is not defined", d->name,
                               c->id, c->tq);
            memcpy(c->q, d->qt[c->tq], sizeof c->q);
            c->q_latched = 1;
        }
    }
    if (ns > 1 && interleaved_blocks > 10)
        return err_set(d->err, "%s: JPEG interleaved scan of %d blocks per MCU (at most 10)", d->name, interleaved_blocks);
    return 0;
}

/* ==================================================================================================== */
/* decoder: IDCT, upsampling, colour conversion                                                          */
/* ==================================================================================================== */

/* float -> 0..255, rounding to nearest; clamping in float first keeps corrupt coefficients from
 * overflowing the conversion to int */
static inline uint8_t to_sample(float v) {
    v += 128.5f;
    if (!(v > 0.0f)) return 0;
    if (v >= 255.0f) return 255;
    return (uint8_t)(int)v;
}

/* Dequantises and inverse-transforms every block of a component into its plane (T.81 A.3.3), as two
 * passes of 8-wide multiply-adds with the matrix mt[u][x] = m[x][u]: t[v][.] = sum_u F[v][u] mt[u][.],
 * then out[y][.] = sum_v m[y][v] t[v][.]. Rows and columns past the last non-zero coefficient are skipped. */
static void idct_component(JComp *c, const float m[8][8]) {
    float mt[8][8];
    for (int x = 0; x < 8; x++)
        for (int u = 0; u < 8; u++) mt[u][x] = m[x][u];
    size_t stride = c->bwp * 8;
    c->plane = xmalloc(stride * c->bhp * 8);
    for (size_t by = 0; by < c->bhp; by++)
        for (size_t bx = 0; bx < c->bwp; bx++) {
            const int16_t *blk = c->coef + (by * c->bwp + bx) * 64;
            uint8_t *o = c->plane + by * 8 * stride + bx * 8;
            int maxu = 0, maxv = 0;
            for (int i = 1; i < 64; i++)
                if (blk[i]) {
                    if ((i & 7) > maxu) maxu = i & 7;
                    if ((i >> 3) > maxv) maxv = i >> 3;
                }
            if (maxu == 0 && maxv == 0) {   /* DC only: a flat block, the common case in smooth areas */
                uint8_t v = to_sample((float)(blk[0] * c->q[0]) * m[0][0] * m[0][0]);
                for (int y = 0; y < 8; y++) memset(o + (size_t)y * stride, v, 8);
                continue;
            }
            float t[8][8];
            for (int v = 0; v <= maxv; v++) {
                float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
                for (int u = 0; u <= maxu; u++) {
                    float f = (float)(blk[v * 8 + u] * c->q[v * 8 + u]);
                    for (int x = 0; x < 8; x++) acc[x] += f * mt[u][x];
                }
                memcpy(t[v], acc, sizeof acc);
            }
            for (int y = 0; y < 8; y++) {
                float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
                for (int v = 0; v <= maxv; v++)
                    for (int x = 0; x < 8; x++) acc[x] += m[y][v] * t[v][x];
                for (int x = 0; x < 8; x++) o[(size_t)y * stride + (size_t)x] = to_sample(acc[x]);
            }
        }
}

/* Row y of the component at the full image width W, as libjpeg's jdsample.c upsamples by default. A
 * full-resolution component's row is returned in place; others are written to `out`. */
static const uint8_t *upsample_row(const JDec *d, const JComp *c, size_t y, uint8_t *out, int *colsum) {
    size_t stride = c->bwp * 8, W = d->width, cw = c->cw;
    int fh = d->hmax / c->h, fv = d->vmax / c->v;
    size_t iy = y / (size_t)fv;
    const uint8_t *in0 = c->plane + iy * stride;
    if (fh == 1 && fv == 1) return in0;
    if (fv == 2 && (fh == 2 ? cw > 2 : fh == 1)) {   /* vertical triangle: 3/4 this row, 1/4 the nearer neighbour */
        int below = (y & 1) != 0;
        size_t ny = below ? (iy + 1 < c->ch ? iy + 1 : iy) : (iy > 0 ? iy - 1 : 0);
        const uint8_t *in1 = c->plane + ny * stride;
        for (size_t i = 0; i < cw; i++) colsum[i] = 3 * in0[i] + in1[i];
        if (fh == 1) {   /* h1v2: biases 1 (upper output row) and 2 (lower) */
            int bias = below ? 2 : 1;
            for (size_t x = 0; x < W; x++) out[x] = (uint8_t)((colsum[x] + bias) >> 2);
            return out;
        }
        /* h2v2: the same triangle across columns on the column sums, biases 8 and 7 */
        for (size_t i = 0; i < cw && 2 * i < W; i++) {
            int left = i > 0 ? colsum[i - 1] : colsum[i], right = i + 1 < cw ? colsum[i + 1] : colsum[i];
            out[2 * i] = (uint8_t)((3 * colsum[i] + left + 8) >> 4);
            if (2 * i + 1 < W) out[2 * i + 1] = (uint8_t)((3 * colsum[i] + right + 7) >> 4);
        }
        return out;
    }
    if (fh == 2 && fv == 1 && cw > 2) {   /* h2v1: biases 1 and 2; the outer samples are copied */
        for (size_t i = 0; i < cw && 2 * i < W; i++) {
            int l = i > 0 ? 3 * in0[i] + in0[i - 1] + 1 : 4 * in0[i];
            int r = i + 1 < cw ? 3 * in0[i] + in0[i + 1] + 2 : 4 * in0[i];
            out[2 * i] = (uint8_t)(l >> 2);
            if (2 * i + 1 < W) out[2 * i + 1] = (uint8_t)(r >> 2);
        }
        return out;
    }
    for (size_t i = 0, x = 0; x < W; i++)   /* replication */
        for (int k = 0; k < fh && x < W; k++) out[x++] = in0[i];
    return out;
}

/* libjpeg's right shift of a possibly negative value, i.e. floor(v / 2^s), without relying on how the
 * compiler shifts negative numbers. */
static inline int asr(int v, int s) { return v >= 0 ? v >> s : -((-v - 1) >> s) - 1; }

static void decode_output(JDec *d, Image *out) {
    float m[8][8];
    dct_matrix(m);
    for (int i = 0; i < d->ncomp; i++) idct_component(&d->comp[i], (const float(*)[8])m);
    size_t W = d->width, H = d->height;
    image_alloc(out, W, H, d->ncomp, 8);
    if (d->ncomp == 1) {
        const JComp *c = &d->comp[0];
        for (size_t y = 0; y < H; y++) memcpy(out->data + y * W, c->plane + y * c->bwp * 8, W);
        return;
    }
    /* colour space as libjpeg guesses it (jdapimin.c): JFIF means YCbCr; an Adobe marker's transform flag
     * decides; otherwise component ids 'R','G','B' mean RGB */
    int rgb = 0;
    if (!d->jfif) {
        if (d->adobe) rgb = d->adobe_transform == 0;
        else rgb = d->comp[0].id == 'R' && d->comp[1].id == 'G' && d->comp[2].id == 'B';
    }
    /* jdcolor.c tables, 16 fractional bits: R = Y + 1.402 Cr', G = Y - 0.34414 Cb' - 0.71414 Cr',
     * B = Y + 1.772 Cb', with Cb' = Cb - 128 and Cr' = Cr - 128 */
    const int one_half = 1 << 15;
    int cr_r[256], cb_b[256], cr_g[256], cb_g[256];
    for (int i = 0; i < 256; i++) {
        int x = i - 128;
        cr_r[i] = asr((int)(1.40200 * 65536 + 0.5) * x + one_half, 16);
        cb_b[i] = asr((int)(1.77200 * 65536 + 0.5) * x + one_half, 16);
        cr_g[i] = -(int)(0.71414 * 65536 + 0.5) * x;
        cb_g[i] = -(int)(0.34414 * 65536 + 0.5) * x + one_half;
    }
    size_t cwmax = 0;
    for (int i = 0; i < 3; i++) cwmax = d->comp[i].cw > cwmax ? d->comp[i].cw : cwmax;
    uint8_t *rows = xmalloc(3 * W);
    int *colsum = xmalloc(sizeof(int) * (cwmax + 1));
    for (size_t y = 0; y < H; y++) {
        const uint8_t *yy = upsample_row(d, &d->comp[0], y, rows, colsum);
        const uint8_t *cb = upsample_row(d, &d->comp[1], y, rows + W, colsum);
        const uint8_t *cr = upsample_row(d, &d->comp[2], y, rows + 2 * W, colsum);
        uint8_t *o = out->data + y * W * 3;
        for (size_t x = 0; x < W; x++) {
            if (rgb) {
                o[3 * x] = yy[x];
                o[3 * x + 1] = cb[x];
                o[3 * x + 2] = cr[x];
                continue;
            }
            int Y = yy[x];
            o[3 * x] = (uint8_t)clamp255(Y + cr_r[cr[x]]);
            o[3 * x + 1] = (uint8_t)clamp255(Y + asr(cb_g[cb[x]] + cr_g[cr[x]], 16));
            o[3 * x + 2] = (uint8_t)clamp255(Y + cb_b[cb[x]]);
        }
    }
    free(rows);
    free(colsum);
}

/* ==================================================================================================== */
/* decoder: the marker loop                                                                              */
/* ==================================================================================================== */

static void jdec_free(JDec *d) {
    for (int i = 0; i < 3; i++) {
        free(d->comp[i].coef);
        free(d->comp[i].plane);
    }
    free(d);
}

int jpeg_decode(const uint8_t *buf, size_t n, const char *name, Image *out, I2vError *err) {
    memset(out, 0, sizeof *out);
    if (n < 4 || buf[0] != 0xFF || buf[1] != 0xD8) return err_set(err, "%s: not a JPEG file (no SOI marker)", name);
    JDec *d = calloc(1, sizeof *d);
    I2V_ASSERT(d, "out of memory");
    d->buf = buf;
    d->n = n;
    d->name = name;
    d->err = err;
    size_t pos = 2;
    int rc = 0, done = 0;
    while (rc == 0 && !done) {
        /* find the next marker: 0xFF, any number of fill 0xFF, then a code; stray bytes are skipped as
         * libjpeg does (it only warns about them) */
        while (pos + 1 < n && !(buf[pos] == 0xFF && buf[pos + 1] != 0xFF && buf[pos + 1] != 0x00)) pos++;
        if (pos + 1 >= n) {
            rc = err_set(err, "%s: JPEG ends without an EOI marker (truncated?)", name);
            break;
        }
        int m = buf[pos + 1];
        pos += 2;
        if (m == 0xD9) {
            done = 1;
            break;
        }
        if (m == 0xD8 || (m >= 0xD0 && m <= 0xD7) || m == 0x01) continue;   /* markers without a length */
        if (n - pos < 2) {
            rc = err_set(err, "%s: JPEG truncated in the length of marker 0x%02X", name, m);
            break;
        }
        size_t len = (size_t)buf[pos] << 8 | buf[pos + 1];
        if (len < 2 || len > n - pos) {
            rc = err_set(err, "%s: JPEG marker 0x%02X at byte %zu has length %zu but %zu bytes remain (truncated?)",
                         name, m, pos - 2, len, n - pos);
            break;
        }
        const uint8_t *p = buf + pos + 2;
        size_t plen = len - 2;
        pos += len;
        switch (m) {
        case 0xC0: case 0xC1: case 0xC2:
            rc = parse_sof(d, p, plen, m, n - pos);
            break;
        case 0xC3: case 0xC5: case 0xC6: case 0xC7: case 0xCB: case 0xCD: case 0xCE: case 0xCF:
            rc = err_set(err, "%s: JPEG SOF%d (%s) is not supported (only baseline and progressive Huffman)", name,
                         m - 0xC0, m == 0xC3 || m == 0xCB ? "lossless" : "hierarchical");
            break;
        case 0xC9: case 0xCA: case 0xCC:
            rc = err_set(err, "%s: JPEG uses arithmetic coding (marker 0x%02X), which is not supported", name, m);
            break;
        case 0xC4:
            rc = parse_dht(d, p, plen);
            break;
        case 0xDB:
            rc = parse_dqt(d, p, plen);
            break;
        case 0xDD:
            if (plen != 2) rc = err_set(err, "%s: JPEG DRI segment of %zu bytes (expected 2)", name, plen);
            else d->restart_interval = p[0] << 8 | p[1];
            break;
        case 0xDC:
            rc = err_set(err, "%s: JPEG DNL marker (height defined after the scan) is not supported", name);
            break;
        case 0xE0:
            if (plen >= 5 && !memcmp(p, "JFIF\0", 5)) d->jfif = 1;
            break;
        case 0xEE:
            if (plen >= 12 && !memcmp(p, "Adobe", 5)) {
                d->adobe = 1;
                d->adobe_transform = p[11];
            }
            break;
        case 0xDA:
            d->nscans++;
            rc = parse_sos(d, p, plen);
            if (rc == 0) rc = decode_scan(d, pos);
            if (rc == 0) pos = d->bits.pos;
            break;
        default:
            break;   /* APPn, COM and the rest: skipped */
        }
    }
    if (rc == 0 && !d->seen_sof) rc = err_set(err, "%s: JPEG has no frame header (SOF)", name);
    if (rc == 0 && d->nscans == 0) rc = err_set(err, "%s: JPEG has no scan (SOS)", name);
    if (rc == 0) {
        for (int i = 0; i < d->ncomp && rc == 0; i++)
            if (!d->comp[i].q_latched)
                rc = err_set(err, "%s: JPEG component %d never appears in a scan", name, d->comp[i].id);
    }
    if (rc == 0) decode_output(d, out);
    jdec_free(d);
    return rc;
}

int jpeg_read(const char *path, Image *out, I2vError *err) {
    uint8_t *buf;
    size_t n;
    memset(out, 0, sizeof *out);
    if (read_file_bytes(path, &buf, &n, err)) return -1;
    int rc = jpeg_decode(buf, n, path, out, err);
    free(buf);
    return rc;
}

/* ==================================================================================================== */
/* encoder                                                                                               */
/* ==================================================================================================== */

/* T.81 Annex K.1: the example quantisation tables (natural order), the IJG library's base tables */
static const uint8_t std_lum_q[64] = {16, 11, 10, 16, 24,  40,  51,  61,  12, 12, 14, 19, 26,  58,  60,  55,
                                      14, 13, 16, 24, 40,  57,  69,  56,  14, 17, 22, 29, 51,  87,  80,  62,
                                      18, 22, 37, 56, 68,  109, 103, 77,  24, 35, 55, 64, 81,  104, 113, 92,
                                      49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99};
static const uint8_t std_chr_q[64] = {17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99,
                                      24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99,
                                      99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
                                      99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99};

/* T.81 Annex K.3: the typical Huffman tables (code counts per length 1..16, then the values) */
static const uint8_t dc_lum_bits[16] = {0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0};
static const uint8_t dc_chr_bits[16] = {0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0};
static const uint8_t dc_vals[12] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
static const uint8_t ac_lum_bits[16] = {0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d};
static const uint8_t ac_lum_vals[162] = {
    0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07, 0x22, 0x71,
    0x14, 0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0, 0x24, 0x33, 0x62, 0x72,
    0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x34, 0x35, 0x36, 0x37,
    0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59,
    0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x83,
    0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3,
    0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3,
    0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2,
    0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa};
static const uint8_t ac_chr_bits[16] = {0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77};
static const uint8_t ac_chr_vals[162] = {
    0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61, 0x71, 0x13, 0x22,
    0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xa1, 0xb1, 0xc1, 0x09, 0x23, 0x33, 0x52, 0xf0, 0x15, 0x62, 0x72, 0xd1,
    0x0a, 0x16, 0x24, 0x34, 0xe1, 0x25, 0xf1, 0x17, 0x18, 0x19, 0x1a, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x35, 0x36,
    0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58,
    0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a,
    0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a,
    0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba,
    0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda,
    0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa};

typedef struct EHuff {
    uint16_t code[256];
    uint8_t size[256];
} EHuff;

static void ehuff_build(EHuff *e, const uint8_t *bits, const uint8_t *vals) {   /* T.81 C.2 */
    memset(e, 0, sizeof *e);
    unsigned code = 0;
    int k = 0;
    for (int len = 1; len <= 16; len++) {
        for (int i = 0; i < bits[len - 1]; i++, k++) {
            e->code[vals[k]] = (uint16_t)code++;
            e->size[vals[k]] = (uint8_t)len;
        }
        code <<= 1;
    }
}

typedef struct JOut {
    uint8_t *p;
    size_t n, cap;
    uint32_t acc;
    int nbits;
} JOut;

static void jo_byte(JOut *o, unsigned v) {
    if (o->n == o->cap) {
        o->cap = o->cap ? 2 * o->cap : 4096;
        uint8_t *q = realloc(o->p, o->cap);
        I2V_ASSERT(q, "out of memory growing a JPEG buffer to %zu bytes", o->cap);
        o->p = q;
    }
    o->p[o->n++] = (uint8_t)v;
}

static void jo_bytes(JOut *o, const uint8_t *p, size_t k) {
    for (size_t i = 0; i < k; i++) jo_byte(o, p[i]);
}

static void jo_bits(JOut *o, unsigned v, int k) {   /* most significant bit first, 0xFF stuffed (F.1.2.3) */
    o->acc = (o->acc << k) | (v & ((1u << k) - 1));
    o->nbits += k;
    while (o->nbits >= 8) {
        unsigned byte = (o->acc >> (o->nbits - 8)) & 0xFF;
        jo_byte(o, byte);
        if (byte == 0xFF) jo_byte(o, 0);
        o->nbits -= 8;
    }
}

static void jo_marker_segment(JOut *o, int marker, const uint8_t *p, size_t len) {
    jo_byte(o, 0xFF);
    jo_byte(o, (unsigned)marker);
    jo_byte(o, (unsigned)((len + 2) >> 8));
    jo_byte(o, (unsigned)((len + 2) & 0xFF));
    jo_bytes(o, p, len);
}

static int bit_size(int v) {   /* SSSS: the number of bits of |v| */
    int a = v < 0 ? -v : v, s = 0;
    while (a) {
        s++;
        a >>= 1;
    }
    return s;
}

/* One 8x8 block of level-shifted samples: forward DCT, quantisation to the nearest integer, Huffman
 * coding of the DC difference and the AC run/size pairs (F.1.2). */
static void encode_block(JOut *o, const float blk[64], const float m[8][8], const uint16_t *q, int *pred,
                         const EHuff *dc, const EHuff *ac) {
    float t[64];
    int coef[64];
    for (int y = 0; y < 8; y++)   /* rows: t[y][u] = sum_x m[x][u] f[y][x] */
        for (int u = 0; u < 8; u++) {
            float s = 0;
            for (int x = 0; x < 8; x++) s += m[x][u] * blk[y * 8 + x];
            t[y * 8 + u] = s;
        }
    for (int v = 0; v < 8; v++)   /* columns: F[v][u] = sum_y m[y][v] t[y][u] */
        for (int u = 0; u < 8; u++) {
            float s = 0;
            for (int y = 0; y < 8; y++) s += m[y][v] * t[y * 8 + u];
            long c = lroundf(s / (float)q[v * 8 + u]);
            coef[v * 8 + u] = (int)(c < -2047 ? -2047 : c > 2047 ? 2047 : c);
        }
    int diff = coef[0] - *pred;
    *pred = coef[0];
    int s = bit_size(diff);
    jo_bits(o, dc->code[s], dc->size[s]);
    if (s) jo_bits(o, (unsigned)(diff < 0 ? diff - 1 : diff), s);   /* negative values: ones' complement */
    int run = 0;
    for (int k = 1; k < 64; k++) {
        int v = coef[zigzag[k]];
        if (v < -1023) v = -1023;   /* the AC tables code sizes up to 10 bits */
        if (v > 1023) v = 1023;
        if (v == 0) {
            run++;
            continue;
        }
        for (; run > 15; run -= 16) jo_bits(o, ac->code[0xF0], ac->size[0xF0]);   /* ZRL */
        s = bit_size(v);
        int rs = run << 4 | s;
        jo_bits(o, ac->code[rs], ac->size[rs]);
        jo_bits(o, (unsigned)(v < 0 ? v - 1 : v), s);
        run = 0;
    }
    if (run > 0) jo_bits(o, ac->code[0x00], ac->size[0x00]);   /* EOB */
}

/* The IJG library's quality scaling (jcparam.c): 50 keeps the Annex K tables, lower scales them up by
 * 5000/q percent, higher by 200 - 2q percent; entries are clamped to 1..255 for baseline. */
static void scale_quant(const uint8_t *base, int quality, uint16_t *q) {
    if (quality < 1) quality = 1;
    if (quality > 100) quality = 100;
    long scale = quality < 50 ? 5000 / quality : 200 - 2 * quality;
    for (int i = 0; i < 64; i++) {
        long v = (base[i] * scale + 50) / 100;
        q[i] = (uint16_t)(v < 1 ? 1 : v > 255 ? 255 : v);
    }
}

uint8_t *jpeg_encode(const Image *im, int quality, int subsampling, size_t *n) {
    I2V_ASSERT(im->data && im->depth == 8 && im->channels >= 1 && im->channels <= 4 && im->width > 0 &&
                   im->height > 0 && im->width <= 65535 && im->height <= 65535,
               "jpeg_encode: needs an 8-bit image of at most 65535 x 65535 (got %zu x %zu x %d, depth %d)", im->width,
               im->height, im->channels, im->depth);
    int grey = im->channels <= 2, ncomp = grey ? 1 : 3;
    int hs = (!grey && subsampling == JPEG_420) ? 2 : 1;   /* luma sampling factor (both directions) */
    size_t W = im->width, H = im->height, mcu = 8 * (size_t)hs;
    size_t PW = (W + mcu - 1) / mcu * mcu, PH = (H + mcu - 1) / mcu * mcu;
    /* full-resolution planes, level-shifted, padded to whole MCUs by repeating the last row and column */
    float *plane[3];
    for (int c = 0; c < ncomp; c++) plane[c] = xmalloc(sizeof(float) * PW * PH);
    for (size_t y = 0; y < PH; y++)
        for (size_t x = 0; x < PW; x++) {
            size_t sy = y < H ? y : H - 1, sx = x < W ? x : W - 1;
            const uint8_t *p = im->data + (sy * W + sx) * (size_t)im->channels;
            size_t i = y * PW + x;
            if (grey) {
                plane[0][i] = (float)p[0] - 128.0f;
                continue;
            }
            float r = p[0], g = p[1], b = p[2];   /* JFIF (ITU-R BT.601) RGB -> YCbCr */
            plane[0][i] = 0.299f * r + 0.587f * g + 0.114f * b - 128.0f;
            plane[1][i] = -0.168736f * r - 0.331264f * g + 0.5f * b;
            plane[2][i] = 0.5f * r - 0.418688f * g - 0.081312f * b;
        }
    size_t CW = PW / (size_t)hs, CH = PH / (size_t)hs;
    if (hs == 2)   /* 4:2:0: chroma is the mean of each 2x2 group */
        for (int c = 1; c < 3; c++) {
            float *s = plane[c];
            for (size_t y = 0; y < CH; y++)
                for (size_t x = 0; x < CW; x++)
                    s[y * CW + x] = 0.25f * (s[2 * y * PW + 2 * x] + s[2 * y * PW + 2 * x + 1] +
                                             s[(2 * y + 1) * PW + 2 * x] + s[(2 * y + 1) * PW + 2 * x + 1]);
        }

    uint16_t qt[2][64];
    scale_quant(std_lum_q, quality, qt[0]);
    scale_quant(std_chr_q, quality, qt[1]);
    EHuff dc[2], ac[2];
    ehuff_build(&dc[0], dc_lum_bits, dc_vals);
    ehuff_build(&ac[0], ac_lum_bits, ac_lum_vals);
    ehuff_build(&dc[1], dc_chr_bits, dc_vals);
    ehuff_build(&ac[1], ac_chr_bits, ac_chr_vals);

    JOut o = {NULL, 0, 0, 0, 0};
    jo_byte(&o, 0xFF);
    jo_byte(&o, 0xD8);
    static const uint8_t app0[14] = {'J', 'F', 'I', 'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0};   /* v1.01, 1:1 */
    jo_marker_segment(&o, 0xE0, app0, sizeof app0);
    uint8_t seg[4 * 65];
    size_t k = 0;
    for (int t = 0; t < (grey ? 1 : 2); t++) {
        seg[k++] = (uint8_t)t;   /* 8-bit precision, table t */
        for (int i = 0; i < 64; i++) seg[k++] = (uint8_t)qt[t][zigzag[i]];
    }
    jo_marker_segment(&o, 0xDB, seg, k);
    uint8_t sof[6 + 9] = {8, (uint8_t)(H >> 8), (uint8_t)H, (uint8_t)(W >> 8), (uint8_t)W, (uint8_t)ncomp};
    for (int c = 0; c < ncomp; c++) {
        sof[6 + 3 * c] = (uint8_t)(c + 1);
        sof[7 + 3 * c] = (uint8_t)(c == 0 ? (hs << 4 | hs) : 0x11);
        sof[8 + 3 * c] = (uint8_t)(c == 0 ? 0 : 1);
    }
    jo_marker_segment(&o, 0xC0, sof, 6 + 3 * (size_t)ncomp);
    for (int t = 0; t < (grey ? 1 : 2); t++) {
        const uint8_t *bits[2] = {t ? dc_chr_bits : dc_lum_bits, t ? ac_chr_bits : ac_lum_bits};
        const uint8_t *vals[2] = {dc_vals, t ? ac_chr_vals : ac_lum_vals};
        for (int cls = 0; cls < 2; cls++) {
            uint8_t h[17 + 162];
            int total = 0;
            h[0] = (uint8_t)(cls << 4 | t);
            for (int i = 0; i < 16; i++) total += (h[1 + i] = bits[cls][i]);
            memcpy(h + 17, vals[cls], (size_t)total);
            jo_marker_segment(&o, 0xC4, h, 17 + (size_t)total);
        }
    }
    uint8_t sos[1 + 6 + 3];
    k = 0;
    sos[k++] = (uint8_t)ncomp;
    for (int c = 0; c < ncomp; c++) {
        sos[k++] = (uint8_t)(c + 1);
        sos[k++] = (uint8_t)(c == 0 ? 0x00 : 0x11);
    }
    sos[k++] = 0;
    sos[k++] = 63;
    sos[k++] = 0;
    jo_marker_segment(&o, 0xDA, sos, k);

    float m[8][8];
    dct_matrix(m);
    int pred[3] = {0, 0, 0};
    float blk[64];
    for (size_t my = 0; my < PH / mcu; my++)
        for (size_t mx = 0; mx < PW / mcu; mx++)
            for (int c = 0; c < ncomp; c++) {
                int nb = c == 0 ? hs : 1;
                size_t stride = c == 0 ? PW : CW;
                for (int by = 0; by < nb; by++)
                    for (int bx = 0; bx < nb; bx++) {
                        size_t y0 = (my * (size_t)nb + (size_t)by) * 8, x0 = (mx * (size_t)nb + (size_t)bx) * 8;
                        for (int y = 0; y < 8; y++)
                            for (int x = 0; x < 8; x++) blk[y * 8 + x] = plane[c][(y0 + (size_t)y) * stride + x0 + (size_t)x];
                        encode_block(&o, blk, (const float(*)[8])m, qt[c ? 1 : 0], &pred[c], &dc[c ? 1 : 0], &ac[c ? 1 : 0]);
                    }
            }
    if (o.nbits > 0) jo_bits(&o, 0x7F, 8 - o.nbits);   /* pad the last byte with ones (F.1.2.3) */
    jo_byte(&o, 0xFF);
    jo_byte(&o, 0xD9);
    for (int c = 0; c < ncomp; c++) free(plane[c]);
    *n = o.n;
    return o.p;
}

int jpeg_write(const char *path, const Image *im, int quality, int subsampling, I2vError *err) {
    if (im->depth != 8 || im->width > 65535 || im->height > 65535)
        return err_set(err, "%s: JPEG needs an 8-bit image of at most 65535 x 65535 (got %zu x %zu, depth %d)", path,
                       im->width, im->height, im->depth);
    size_t n;
    uint8_t *buf = jpeg_encode(im, quality, subsampling, &n);
    int rc = write_file_bytes(path, buf, n, err);
    free(buf);
    return rc;
}
