/* deflate.c: zlib streams from scratch: CRC-32, Adler-32, inflate (RFC 1951 stored, fixed and dynamic
 * Huffman blocks inside an RFC 1950 zlib wrapper) and deflate (LZ77 over hash chains with lazy matching,
 * then per block the cheapest of dynamic Huffman, fixed Huffman and stored).
 *
 * What it is not: a streaming library. Both directions work on whole buffers in memory; inflate writes
 * into a buffer of known capacity (PNG knows its raw size in advance) and fails rather than grow it, which
 * is what bounds memory on hostile input. No preset dictionaries, no gzip wrapper.
 *
 * Bit order (RFC 1951 3.1.1): data elements are packed from the least significant bit of each byte;
 * Huffman codes are packed starting with their most significant bit, so the decoder's lookup tables are
 * indexed by bit-reversed codes.
 */
#include "formats/deflate.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>


/* ==================================================================================================== */
/* checksums                                                                                              */
/* ==================================================================================================== */

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

/* The reflected polynomial 0xEDB88320 of ISO 3309 / ITU-T V.42, as the PNG spec (annex D) uses it. */
static void crc_init(void) {
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[n] = c;
    }
}

uint32_t crc32_update(uint32_t crc, const uint8_t *p, size_t n) {
    pthread_once(&crc_once, crc_init);
    uint32_t c = crc ^ 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) c = crc_table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

/* RFC 1950 section 8.2; 5552 is the largest block for which the sums cannot overflow 32 bits. */
uint32_t adler32_update(uint32_t adler, const uint8_t *p, size_t n) {
    uint32_t a = adler & 0xFFFF, b = adler >> 16;
    while (n > 0) {
        size_t k = n < 5552 ? n : 5552;
        n -= k;
        for (size_t i = 0; i < k; i++) {
            a += p[i];
            b += a;
        }
        p += k;
        a %= 65521;
        b %= 65521;
    }
    return (b << 16) | a;
}

/* ==================================================================================================== */
/* tables shared by both directions (RFC 1951 3.2.5)                                                      */
/* ==================================================================================================== */

static const uint16_t len_base[29] = {3,  4,  5,  6,  7,  8,  9,  10, 11,  13,  15,  17,  19,  23, 27,
                                      31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
static const uint8_t len_extra[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                      2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
static const uint16_t dist_base[30] = {1,   2,   3,   4,   5,   7,    9,    13,   17,   25,   33,   49,   65,    97,    129,
                                       193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
static const uint8_t dist_extra[30] = {0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6,
                                       6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};
/* the order in which code length code lengths are sent (3.2.7) */
static const uint8_t clen_order[19] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};

/* ==================================================================================================== */
/* inflate                                                                                               */
/* ==================================================================================================== */

typedef struct BitIn {
    const uint8_t *src;
    size_t n, pos;
    uint64_t bits;     /* unread bits, next one in bit 0 */
    int nbits;         /* how many of `bits` are valid */
    int pad;           /* zero bits appended past the end of src (always the top `pad` of nbits) */
} BitIn;

/* Tops the buffer up to at least 57 bits; past the end of the input it appends zeros and counts them, so a
 * decoder may peek beyond the end but consuming those bits is detected as truncation. */
static inline void bi_refill(BitIn *b) {
    while (b->nbits <= 56) {
        uint64_t byte = 0;
        if (b->pos < b->n) byte = b->src[b->pos++];
        else b->pad += 8;
        b->bits |= byte << b->nbits;
        b->nbits += 8;
    }
}

static inline uint32_t bi_get(BitIn *b, int k) {   /* k <= 32 bits, after a refill */
    uint32_t v = (uint32_t)(b->bits & ((1ull << k) - 1));
    b->bits >>= k;
    b->nbits -= k;
    return v;
}

static inline int bi_overrun(const BitIn *b) { return b->nbits < b->pad; }

/* Byte-aligns and hands the whole bytes still in the bit buffer back to the input (for stored blocks and
 * the Adler-32 trailer, which are byte-oriented). */
static void bi_align_rewind(BitIn *b) {
    int drop = b->nbits & 7;
    b->bits >>= drop;
    b->nbits -= drop;
    size_t real_bytes = (size_t)((b->nbits - b->pad) / 8);
    b->pos -= real_bytes;
    b->bits = 0;
    b->nbits = 0;
    b->pad = 0;
}

#define FAST_BITS 10
#define MAX_CODE_BITS 15

/* Canonical Huffman decoding table: `fast` resolves every code of at most FAST_BITS bits in one lookup,
 * indexed by the next FAST_BITS input bits (entry = symbol << 4 | length, 0 = longer code); longer codes
 * are resolved by walking the canonical code lengths (`count`, `sym`). */
typedef struct Huff {
    uint16_t fast[1 << FAST_BITS];
    uint16_t count[MAX_CODE_BITS + 1];   /* number of codes of each length */
    uint16_t sym[288];                   /* symbols ordered by (length, value) */
    int empty;                           /* no codes at all: any use is an error */
} Huff;

static uint32_t bit_reverse(uint32_t code, int len) {
    uint32_t r = 0;
    for (int i = 0; i < len; i++) {
        r = (r << 1) | (code & 1);
        code >>= 1;
    }
    return r;
}

/* Builds the table from code lengths. Over-subscribed sets are errors; incomplete sets are accepted only
 * when they hold a single code of length 1 (RFC 1951 3.2.7 allows one distance code; zlib also rejects
 * other incomplete codes, so the writer never makes them) or when the caller allows them (the fixed
 * distance code has 30 of its 32 five-bit codes). Returns 0 or -1. */
static int huff_build(Huff *h, const uint8_t *lens, int n, int allow_incomplete) {
    memset(h->count, 0, sizeof h->count);
    memset(h->fast, 0, sizeof h->fast);
    for (int s = 0; s < n; s++) h->count[lens[s]]++;
    h->count[0] = 0;
    int left = 1, ncodes = 0;
    for (int len = 1; len <= MAX_CODE_BITS; len++) {
        left <<= 1;
        left -= h->count[len];
        ncodes += h->count[len];
        if (left < 0) return -1;
    }
    h->empty = ncodes == 0;
    if (left > 0 && ncodes > 0 && !allow_incomplete && !(ncodes == 1 && h->count[1] == 1)) return -1;
    uint16_t offs[MAX_CODE_BITS + 2];
    offs[1] = 0;
    for (int len = 1; len <= MAX_CODE_BITS; len++) offs[len + 1] = (uint16_t)(offs[len] + h->count[len]);
    for (int s = 0; s < n; s++)
        if (lens[s]) h->sym[offs[lens[s]]++] = (uint16_t)s;
    /* fill the fast table with the canonical codes (3.2.2): codes of one length are consecutive */
    uint32_t code = 0;
    int k = 0;
    for (int len = 1; len <= MAX_CODE_BITS; len++) {
        for (int i = 0; i < h->count[len]; i++, k++, code++) {
            if (len > FAST_BITS) continue;
            uint32_t rev = bit_reverse(code, len);
            for (uint32_t j = rev; j < (1u << FAST_BITS); j += 1u << len)
                h->fast[j] = (uint16_t)((h->sym[k] << 4) | len);
        }
        code <<= 1;
    }
    return 0;
}

/* Decodes one symbol; needs at least 15 bits in the buffer (bi_refill first). -1 for an unused code. */
static inline int huff_decode(BitIn *b, const Huff *h) {
    uint32_t e = h->fast[b->bits & ((1u << FAST_BITS) - 1)];
    if (e) {
        b->bits >>= e & 15;
        b->nbits -= (int)(e & 15);
        return (int)(e >> 4);
    }
    int code = 0, first = 0, index = 0;
    uint64_t bits = b->bits;
    for (int len = 1; len <= MAX_CODE_BITS; len++) {
        code |= (int)(bits & 1);
        bits >>= 1;
        int count = h->count[len];
        if (code - first < count) {
            b->bits >>= len;
            b->nbits -= len;
            return h->sym[index + code - first];
        }
        index += count;
        first += count;
        first <<= 1;
        code <<= 1;
    }
    return -1;
}

typedef struct Inflate {
    BitIn in;
    uint8_t *dst;
    size_t cap, out;
    const char *name;
    I2vError *err;
    Huff lit, dist;
} Inflate;

static int inflate_stored(Inflate *z) {
    BitIn *b = &z->in;
    bi_align_rewind(b);
    if (b->n - b->pos < 4)
        return err_set(z->err, "%s: zlib stream truncated in a stored block header (RFC 1951 3.2.4)", z->name);
    size_t len = (size_t)b->src[b->pos] | (size_t)b->src[b->pos + 1] << 8;
    size_t nlen = (size_t)b->src[b->pos + 2] | (size_t)b->src[b->pos + 3] << 8;
    b->pos += 4;
    if ((len ^ 0xFFFF) != nlen)
        return err_set(z->err, "%s: stored block LEN %zu does not match its complement NLEN %zu", z->name, len, nlen);
    if (b->n - b->pos < len)
        return err_set(z->err, "%s: zlib stream truncated inside a stored block (%zu bytes promised, %zu left)",
                       z->name, len, b->n - b->pos);
    if (z->cap - z->out < len)
        return err_set(z->err, "%s: zlib stream holds more data than the expected %zu bytes", z->name, z->cap);
    memcpy(z->dst + z->out, b->src + b->pos, len);
    z->out += len;
    b->pos += len;
    return 0;
}

static int inflate_codes(Inflate *z) {
    BitIn *b = &z->in;
    uint8_t *dst = z->dst;
    size_t out = z->out, cap = z->cap;
    for (;;) {
        bi_refill(b);
        int sym = huff_decode(b, &z->lit);
        if (sym < 256) {
            if (sym < 0) return err_set(z->err, "%s: invalid literal/length code in the zlib stream", z->name);
            if (out >= cap) break;
            dst[out++] = (uint8_t)sym;
        } else if (sym == 256) {
            z->out = out;
            if (bi_overrun(b)) return err_set(z->err, "%s: zlib stream truncated (ends inside a block)", z->name);
            return 0;
        } else {
            sym -= 257;
            if (sym >= 29) return err_set(z->err, "%s: invalid length symbol %d in the zlib stream", z->name, sym + 257);
            size_t len = len_base[sym] + bi_get(b, len_extra[sym]);
            int ds = huff_decode(b, &z->dist);
            if (ds < 0 || ds >= 30)
                return err_set(z->err, "%s: invalid distance code in the zlib stream", z->name);
            size_t dist = dist_base[ds] + bi_get(b, dist_extra[ds]);
            if (bi_overrun(b)) return err_set(z->err, "%s: zlib stream truncated (ends inside a block)", z->name);
            if (dist > out)
                return err_set(z->err, "%s: zlib distance %zu reaches before the start of the data (at byte %zu)",
                               z->name, dist, out);
            if (len > cap - out) break;
            const uint8_t *from = dst + out - dist;
            for (size_t i = 0; i < len; i++) dst[out + i] = from[i];   /* byte by byte: the copy may overlap */
            out += len;
        }
        if (bi_overrun(b)) return err_set(z->err, "%s: zlib stream truncated (ends inside a block)", z->name);
    }
    return err_set(z->err, "%s: zlib stream holds more data than the expected %zu bytes", z->name, cap);
}

static int inflate_fixed_tables(Inflate *z) {
    uint8_t lens[288];
    for (int i = 0; i < 144; i++) lens[i] = 8;
    for (int i = 144; i < 256; i++) lens[i] = 9;
    for (int i = 256; i < 280; i++) lens[i] = 7;
    for (int i = 280; i < 288; i++) lens[i] = 8;
    I2V_ASSERT(huff_build(&z->lit, lens, 288, 0) == 0, "fixed literal/length code");
    for (int i = 0; i < 30; i++) lens[i] = 5;
    I2V_ASSERT(huff_build(&z->dist, lens, 30, 1) == 0, "fixed distance code");
    return 0;
}

static int inflate_dynamic_tables(Inflate *z) {
    BitIn *b = &z->in;
    bi_refill(b);
    int hlit = (int)bi_get(b, 5) + 257, hdist = (int)bi_get(b, 5) + 1, hclen = (int)bi_get(b, 4) + 4;
    if (hlit > 286 || hdist > 30)
        return err_set(z->err, "%s: dynamic block declares %d literal/length and %d distance codes (at most 286 "
                       "and 30, RFC 1951 3.2.7)", z->name, hlit, hdist);
    uint8_t clens[19] = {0};
    for (int i = 0; i < hclen; i++) {
        bi_refill(b);
        clens[clen_order[i]] = (uint8_t)bi_get(b, 3);
    }
    Huff *ch = &z->lit;   /* the code length code is only needed until the real tables are built */
    if (huff_build(ch, clens, 19, 0) != 0 || ch->empty)
        return err_set(z->err, "%s: bad code length code in a dynamic Huffman block", z->name);
    uint8_t lens[286 + 30];
    int total = hlit + hdist;
    for (int i = 0; i < total;) {
        bi_refill(b);
        int sym = huff_decode(b, ch);
        if (sym < 0) return err_set(z->err, "%s: invalid code length code in a dynamic block", z->name);
        if (sym < 16) {
            lens[i++] = (uint8_t)sym;
            continue;
        }
        int rep;
        uint8_t v = 0;
        if (sym == 16) {
            if (i == 0) return err_set(z->err, "%s: code length repeat (16) with no previous length", z->name);
            v = lens[i - 1];
            rep = 3 + (int)bi_get(b, 2);
        } else if (sym == 17) {
            rep = 3 + (int)bi_get(b, 3);
        } else {
            rep = 11 + (int)bi_get(b, 7);
        }
        if (i + rep > total)
            return err_set(z->err, "%s: code length repeat runs past the %d declared lengths", z->name, total);
        memset(lens + i, v, (size_t)rep);
        i += rep;
    }
    if (bi_overrun(b)) return err_set(z->err, "%s: zlib stream truncated in a dynamic block header", z->name);
    if (lens[256] == 0)
        return err_set(z->err, "%s: dynamic block has no end-of-block code", z->name);
    if (huff_build(&z->lit, lens, hlit, 0) != 0)
        return err_set(z->err, "%s: bad literal/length Huffman code lengths (over-subscribed or incomplete)", z->name);
    if (huff_build(&z->dist, lens + hlit, hdist, 0) != 0)
        return err_set(z->err, "%s: bad distance Huffman code lengths (over-subscribed or incomplete)", z->name);
    return 0;
}

int zlib_decompress(const uint8_t *src, size_t n, uint8_t *dst, size_t cap, size_t *out_n, const char *name,
                    I2vError *err) {
    *out_n = 0;
    if (n < 6) return err_set(err, "%s: zlib stream of %zu bytes is too short (at least 6)", name, n);
    /* RFC 1950 2.2: CM = 8 (deflate), CINFO <= 7, FCHECK makes CMF*256+FLG a multiple of 31, no FDICT */
    unsigned cmf = src[0], flg = src[1];
    if ((cmf & 15) != 8 || (cmf >> 4) > 7)
        return err_set(err, "%s: zlib header CMF 0x%02x: expected method 8 (deflate) with a window of at most 32K",
                       name, cmf);
    if ((cmf * 256 + flg) % 31 != 0)
        return err_set(err, "%s: zlib header check bits wrong (CMF*256+FLG = %u is not a multiple of 31)", name,
                       cmf * 256 + flg);
    if (flg & 0x20) return err_set(err, "%s: zlib stream needs a preset dictionary (not supported)", name);
    Inflate *z = xmalloc(sizeof *z);
    z->in = (BitIn){src + 2, n - 2, 0, 0, 0, 0};
    z->dst = dst;
    z->cap = cap;
    z->out = 0;
    z->name = name;
    z->err = err;
    int final = 0, rc = 0;
    while (!final && rc == 0) {
        bi_refill(&z->in);
        final = (int)bi_get(&z->in, 1);
        int type = (int)bi_get(&z->in, 2);
        if (bi_overrun(&z->in)) {
            rc = err_set(err, "%s: zlib stream truncated (no final block)", name);
        } else if (type == 0) {
            rc = inflate_stored(z);
        } else if (type == 1) {
            rc = inflate_fixed_tables(z);
            if (rc == 0) rc = inflate_codes(z);
        } else if (type == 2) {
            rc = inflate_dynamic_tables(z);
            if (rc == 0) rc = inflate_codes(z);
        } else {
            rc = err_set(err, "%s: invalid deflate block type 3", name);
        }
    }
    if (rc == 0) {
        bi_align_rewind(&z->in);
        const uint8_t *p = z->in.src + z->in.pos;
        if (z->in.n - z->in.pos < 4) {
            rc = err_set(err, "%s: zlib stream truncated before its Adler-32 checksum", name);
        } else {
            uint32_t want = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
            uint32_t got = adler32_update(1, dst, z->out);
            if (want != got)
                rc = err_set(err, "%s: zlib Adler-32 mismatch (stored %08x, computed %08x): data corrupt", name,
                             want, got);
        }
    }
    *out_n = z->out;
    free(z);
    return rc;
}

/* ==================================================================================================== */
/* deflate                                                                                               */
/* ==================================================================================================== */

typedef struct BitOut {
    uint8_t *buf;
    size_t n, cap;
    uint64_t bits;
    int nbits;
} BitOut;

static void bo_reserve(BitOut *o, size_t more) {
    if (o->n + more <= o->cap) return;
    size_t cap = o->cap ? o->cap : 1024;
    while (cap < o->n + more) cap *= 2;
    uint8_t *p = realloc(o->buf, cap);
    I2V_ASSERT(p, "out of memory growing a deflate buffer to %zu bytes", cap);
    o->buf = p;
    o->cap = cap;
}

static inline void bo_put(BitOut *o, uint32_t v, int k) {   /* k <= 32 */
    o->bits |= (uint64_t)v << o->nbits;
    o->nbits += k;
    if (o->nbits >= 32) {
        bo_reserve(o, 4);
        for (int i = 0; i < 4; i++) o->buf[o->n++] = (uint8_t)(o->bits >> (8 * i));
        o->bits >>= 32;
        o->nbits -= 32;
    }
}

static void bo_align(BitOut *o) {
    bo_reserve(o, 8);
    while (o->nbits > 0) {
        o->buf[o->n++] = (uint8_t)o->bits;
        o->bits >>= 8;
        o->nbits = o->nbits > 8 ? o->nbits - 8 : 0;
    }
    o->bits = 0;
}

static void bo_bytes(BitOut *o, const uint8_t *p, size_t k) {   /* after bo_align */
    bo_reserve(o, k);
    memcpy(o->buf + o->n, p, k);
    o->n += k;
}

/* ---- Huffman code construction ---- */

typedef struct HNode {
    uint32_t w;
    int parent;
} HNode;

static int cmp_by_freq(const void *a, const void *b) {
    const uint32_t *x = a, *y = b;   /* pairs (freq, symbol) */
    if (x[0] != y[0]) return x[0] < y[0] ? -1 : 1;
    return x[1] < y[1] ? -1 : (x[1] > y[1]);
}

/* Code lengths for `freq` limited to maxlen bits: Huffman's algorithm (two queues over the sorted leaves),
 * then, if some code is too long, lengths are clamped and the Kraft sum is repaired by lengthening the
 * least frequent of the longest codes that can still grow, and finally the code is made complete again
 * (decoders such as zlib reject incomplete codes). Every used symbol gets a length >= 1. */
static void huff_lengths(const uint32_t *freq, int n, int maxlen, uint8_t *len) {
    uint32_t pairs[2 * 288];
    int m = 0;
    memset(len, 0, (size_t)n);
    for (int s = 0; s < n; s++)
        if (freq[s]) {
            pairs[2 * m] = freq[s];
            pairs[2 * m + 1] = (uint32_t)s;
            m++;
        }
    if (m == 0) return;
    if (m == 1) {
        len[pairs[1]] = 1;
        return;
    }
    qsort(pairs, (size_t)m, 2 * sizeof(uint32_t), cmp_by_freq);
    HNode nodes[2 * 288];
    for (int i = 0; i < m; i++) nodes[i] = (HNode){pairs[2 * i], -1};
    int leaf = 0, inner = m, next = m;   /* leaves [leaf, m), internal nodes [inner, next) in weight order */
    while (next < 2 * m - 1) {
        int pick[2];
        for (int k = 0; k < 2; k++) {
            if (leaf < m && (inner >= next || nodes[leaf].w <= nodes[inner].w)) pick[k] = leaf++;
            else pick[k] = inner++;
        }
        nodes[next] = (HNode){nodes[pick[0]].w + nodes[pick[1]].w, -1};
        nodes[pick[0]].parent = next;
        nodes[pick[1]].parent = next;
        next++;
    }
    int depth[2 * 288];
    depth[2 * m - 2] = 0;
    for (int i = 2 * m - 3; i >= 0; i--) depth[i] = depth[nodes[i].parent] + 1;
    int too_long = 0;
    for (int i = 0; i < m; i++) {
        int d = depth[i];
        if (d > maxlen) {
            d = maxlen;
            too_long = 1;
        }
        len[pairs[2 * i + 1]] = (uint8_t)d;
    }
    if (!too_long) return;
    /* Kraft sum in units of 2^-maxlen; leaves are in increasing frequency, so scanning from index 0 finds
     * the least frequent candidate first */
    long kraft = 0, full = 1L << maxlen;
    for (int i = 0; i < m; i++) kraft += 1L << (maxlen - len[pairs[2 * i + 1]]);
    while (kraft > full) {
        int best = -1;
        for (int i = 0; i < m; i++) {
            int l = len[pairs[2 * i + 1]];
            if (l < maxlen && (best < 0 || l > len[pairs[2 * best + 1]])) best = i;
        }
        int s = (int)pairs[2 * best + 1];
        kraft -= 1L << (maxlen - len[s] - 1);
        len[s]++;
    }
    while (kraft < full) {   /* shorten the most frequent of the longest codes while the sum allows */
        int best = -1;
        for (int i = m - 1; i >= 0; i--) {
            int l = len[pairs[2 * i + 1]];
            if (l > 1 && kraft + (1L << (maxlen - l)) <= full && (best < 0 || l > len[pairs[2 * best + 1]])) best = i;
        }
        if (best < 0) break;
        int s = (int)pairs[2 * best + 1];
        kraft += 1L << (maxlen - len[s]);
        len[s]--;
    }
}

/* Canonical codes (RFC 1951 3.2.2), stored bit-reversed because they are sent most significant bit first. */
static void huff_codes(const uint8_t *len, int n, uint16_t *code) {
    int count[MAX_CODE_BITS + 1] = {0};
    for (int s = 0; s < n; s++) count[len[s]]++;
    count[0] = 0;
    uint32_t next[MAX_CODE_BITS + 2];
    uint32_t c = 0;
    for (int l = 1; l <= MAX_CODE_BITS; l++) {
        c = (c + (uint32_t)count[l - 1]) << 1;
        next[l] = c;
    }
    for (int s = 0; s < n; s++)
        if (len[s]) code[s] = (uint16_t)bit_reverse(next[len[s]]++, len[s]);
}

/* ---- LZ77 ---- */

#define WSIZE 32768
#define WMASK (WSIZE - 1)
#define HASH_BITS 15
#define MIN_MATCH 3
#define MAX_MATCH 258
#define TOO_FAR 4096        /* a 3-byte match further back than this costs more than three literals */
#define BLOCK_SYMS 16383    /* symbols per block, like zlib's default lit_bufsize - 1 */

typedef struct LzParams {
    int good, lazy, nice, chain;
} LzParams;

/* zlib's configuration table (good_length, max_lazy, nice_length, max_chain), all levels lazy here */
static const LzParams lz_levels[10] = {{0, 0, 0, 0},       {4, 4, 8, 4},       {4, 5, 16, 8},
                                       {4, 6, 32, 32},     {4, 4, 16, 16},     {8, 16, 32, 32},
                                       {8, 16, 128, 128},  {8, 32, 128, 256},  {32, 128, 258, 1024},
                                       {32, 258, 258, 4096}};

typedef struct Deflate {
    const uint8_t *src;
    size_t n;
    LzParams p;
    int32_t *head;      /* (1 << HASH_BITS) most recent position per hash, -1 if none */
    int32_t *prev;      /* (WSIZE) previous position with the same hash, by position & WMASK */
    uint16_t *sym_len;  /* (BLOCK_SYMS) 0: literal, else match length */
    uint16_t *sym_val;  /* (BLOCK_SYMS) the literal byte or the match distance */
    size_t nsyms;
    size_t block_start, raw_pos;   /* the input span of the pending block */
    BitOut out;
} Deflate;

static inline uint32_t hash3(const uint8_t *p) {
    uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16;
    return (v * 2654435761u) >> (32 - HASH_BITS);
}

static inline void lz_insert(Deflate *d, size_t pos) {
    uint32_t h = hash3(d->src + pos);
    d->prev[pos & WMASK] = d->head[h];
    d->head[h] = (int32_t)pos;
}

/* The longest earlier match for pos that is longer than `best` (0 if none), searching the hash chain. */
static size_t lz_longest(Deflate *d, size_t pos, size_t best, size_t *dist) {
    const uint8_t *s = d->src;
    size_t maxlen = d->n - pos < MAX_MATCH ? d->n - pos : MAX_MATCH;
    if (best >= maxlen) return 0;
    int chain = d->p.chain;
    if (best >= (size_t)d->p.good) chain >>= 2;
    size_t found = 0;
    int32_t cand = d->head[hash3(s + pos)];
    while (cand >= 0 && pos - (size_t)cand <= WSIZE && chain-- > 0) {
        const uint8_t *a = s + cand, *b = s + pos;
        if (a[best] == b[best] && a[0] == b[0] && a[1] == b[1]) {
            size_t l = 2;
            while (l < maxlen && a[l] == b[l]) l++;
            if (l > best) {
                best = l;
                found = l;
                *dist = pos - (size_t)cand;
                if (l >= (size_t)d->p.nice || l == maxlen) break;
            }
        }
        int32_t nx = d->prev[cand & WMASK];
        if (nx >= cand) break;   /* the slot was reused by a newer position: the chain ends here */
        cand = nx;
    }
    return found;
}

static int len_code(size_t len) {   /* 3..258 -> index into len_base */
    int c = 28;
    while (len_base[c] > len) c--;
    return c;
}

static int dist_code(size_t dist) {   /* 1..32768 -> index into dist_base */
    int lo = 0, hi = 29;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (dist_base[mid] <= dist) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

/* Code length sequence of a dynamic header, run-length coded with 16, 17 and 18 (RFC 1951 3.2.7). */
static int rle_lengths(const uint8_t *lens, int total, uint8_t *sym, uint8_t *extra) {
    int k = 0;
    for (int i = 0; i < total;) {
        uint8_t v = lens[i];
        int run = 1;
        while (i + run < total && lens[i + run] == v) run++;
        i += run;
        if (v == 0) {
            while (run >= 11) {
                int r = run < 138 ? run : 138;
                sym[k] = 18;
                extra[k++] = (uint8_t)(r - 11);
                run -= r;
            }
            if (run >= 3) {
                sym[k] = 17;
                extra[k++] = (uint8_t)(run - 3);
                run = 0;
            }
        } else {
            sym[k] = v;
            extra[k++] = 0;
            run--;
            while (run >= 3) {
                int r = run < 6 ? run : 6;
                sym[k] = 16;
                extra[k++] = (uint8_t)(r - 3);
                run -= r;
            }
        }
        while (run-- > 0) {
            sym[k] = v;
            extra[k++] = 0;
        }
    }
    return k;
}

static void emit_symbols(Deflate *d, const uint16_t *lcode, const uint8_t *llen, const uint16_t *dcode,
                         const uint8_t *dlen) {
    BitOut *o = &d->out;
    for (size_t i = 0; i < d->nsyms; i++) {
        if (d->sym_len[i] == 0) {
            bo_put(o, lcode[d->sym_val[i]], llen[d->sym_val[i]]);
            continue;
        }
        size_t len = d->sym_len[i], dist = d->sym_val[i] ? d->sym_val[i] : 32768;
        int lc = len_code(len), dc = dist_code(dist);
        bo_put(o, lcode[257 + lc], llen[257 + lc]);
        if (len_extra[lc]) bo_put(o, (uint32_t)(len - len_base[lc]), len_extra[lc]);
        bo_put(o, dcode[dc], dlen[dc]);
        if (dist_extra[dc]) bo_put(o, (uint32_t)(dist - dist_base[dc]), dist_extra[dc]);
    }
    bo_put(o, lcode[256], llen[256]);
}

/* Writes the pending symbols as one block: dynamic, fixed or stored, whichever is smallest. */
static void flush_block(Deflate *d, int final) {
    uint32_t lf[286] = {0}, df[30] = {0};
    size_t extra_bits = 0;
    for (size_t i = 0; i < d->nsyms; i++) {
        if (d->sym_len[i] == 0) {
            lf[d->sym_val[i]]++;
            continue;
        }
        size_t dist = d->sym_val[i] ? d->sym_val[i] : 32768;
        int lc = len_code(d->sym_len[i]), dc = dist_code(dist);
        lf[257 + lc]++;
        df[dc]++;
        extra_bits += len_extra[lc] + dist_extra[dc];
    }
    lf[256] = 1;
    /* at least two codes in each tree keeps every code complete (see huff_lengths) */
    if (lf[0] == 0) lf[0] = 1;
    int nd = 0;
    for (int i = 0; i < 30; i++) nd += df[i] != 0;
    if (nd < 2) {
        if (df[0] == 0) df[0] = 1;
        else df[1] = 1;
    }
    uint8_t ll[286], dl[30];
    huff_lengths(lf, 286, 15, ll);
    huff_lengths(df, 30, 15, dl);
    int hlit = 286, hdist = 30;
    while (hlit > 257 && ll[hlit - 1] == 0) hlit--;
    while (hdist > 1 && dl[hdist - 1] == 0) hdist--;
    uint8_t all[316], rs[316], rx[316];
    memcpy(all, ll, (size_t)hlit);
    memcpy(all + hlit, dl, (size_t)hdist);
    int nrle = rle_lengths(all, hlit + hdist, rs, rx);
    uint32_t cf[19] = {0};
    for (int i = 0; i < nrle; i++) cf[rs[i]]++;
    uint8_t cl[19];
    huff_lengths(cf, 19, 7, cl);
    int hclen = 19;
    while (hclen > 4 && cl[clen_order[hclen - 1]] == 0) hclen--;

    /* sizes in bits of the three choices (the counts include the dummy symbols: a slight overestimate) */
    size_t dyn = 3 + 5 + 5 + 4 + 3 * (size_t)hclen + extra_bits, fix = 3 + extra_bits;
    for (int i = 0; i < nrle; i++) dyn += cl[rs[i]] + (rs[i] == 16 ? 2 : rs[i] == 17 ? 3 : rs[i] == 18 ? 7 : 0);
    for (int s = 0; s < 286; s++) {
        dyn += (size_t)lf[s] * ll[s];
        fix += (size_t)lf[s] * (s < 144 ? 8 : s < 256 ? 9 : s < 280 ? 7 : 8);
    }
    for (int s = 0; s < 30; s++) {
        dyn += (size_t)df[s] * dl[s];
        fix += (size_t)df[s] * 5;
    }
    size_t raw = d->raw_pos - d->block_start;
    size_t stored = (raw / 65535 + 1) * 5 * 8 + raw * 8 + 7;

    BitOut *o = &d->out;
    if (stored < dyn && stored < fix) {
        const uint8_t *p = d->src + d->block_start;
        do {
            size_t k = raw < 65535 ? raw : 65535;
            raw -= k;
            bo_put(o, (uint32_t)(final && raw == 0), 1);
            bo_put(o, 0, 2);
            bo_align(o);
            uint8_t hdr[4] = {(uint8_t)k, (uint8_t)(k >> 8), (uint8_t)~k, (uint8_t)(~k >> 8)};
            bo_bytes(o, hdr, 4);
            bo_bytes(o, p, k);
            p += k;
        } while (raw > 0);
    } else if (fix <= dyn) {
        uint8_t fl[288], fd[30];
        uint16_t fc[288], fdc[30];
        for (int i = 0; i < 288; i++) fl[i] = (uint8_t)(i < 144 ? 8 : i < 256 ? 9 : i < 280 ? 7 : 8);
        for (int i = 0; i < 30; i++) fd[i] = 5;
        huff_codes(fl, 288, fc);
        huff_codes(fd, 30, fdc);
        bo_put(o, (uint32_t)final, 1);
        bo_put(o, 1, 2);
        emit_symbols(d, fc, fl, fdc, fd);
    } else {
        uint16_t lc[286], dc[30], cc[19];
        huff_codes(ll, 286, lc);
        huff_codes(dl, 30, dc);
        huff_codes(cl, 19, cc);
        bo_put(o, (uint32_t)final, 1);
        bo_put(o, 2, 2);
        bo_put(o, (uint32_t)(hlit - 257), 5);
        bo_put(o, (uint32_t)(hdist - 1), 5);
        bo_put(o, (uint32_t)(hclen - 4), 4);
        for (int i = 0; i < hclen; i++) bo_put(o, cl[clen_order[i]], 3);
        for (int i = 0; i < nrle; i++) {
            bo_put(o, cc[rs[i]], cl[rs[i]]);
            if (rs[i] == 16) bo_put(o, rx[i], 2);
            else if (rs[i] == 17) bo_put(o, rx[i], 3);
            else if (rs[i] == 18) bo_put(o, rx[i], 7);
        }
        emit_symbols(d, lc, ll, dc, dl);
    }
    d->nsyms = 0;
    d->block_start = d->raw_pos;
}

static void emit_literal(Deflate *d, uint8_t c) {
    d->sym_len[d->nsyms] = 0;
    d->sym_val[d->nsyms++] = c;
    d->raw_pos++;
    if (d->nsyms == BLOCK_SYMS) flush_block(d, 0);
}

static void emit_match(Deflate *d, size_t len, size_t dist) {
    d->sym_len[d->nsyms] = (uint16_t)len;
    d->sym_val[d->nsyms++] = (uint16_t)(dist & 0xFFFF);   /* 32768 is stored as 0 */
    d->raw_pos += len;
    if (d->nsyms == BLOCK_SYMS) flush_block(d, 0);
}

/* Lazy matching as in zlib's deflate_slow: a match found at pos is emitted only if the match starting at
 * pos + 1 is not longer; otherwise pos becomes a literal and the later match is kept. */
static void lz_compress(Deflate *d) {
    size_t n = d->n, pos = 0, prev_len = 0, prev_dist = 0;
    int pending = 0;   /* the byte at pos - 1 is not yet emitted */
    for (;;) {
        size_t cur_len = 0, cur_dist = 0;
        if (pos + MIN_MATCH <= n) {
            if (prev_len < (size_t)d->p.lazy) {
                cur_len = lz_longest(d, pos, prev_len > MIN_MATCH - 1 ? prev_len : MIN_MATCH - 1, &cur_dist);
                if (cur_len == MIN_MATCH && cur_dist > TOO_FAR) cur_len = 0;
            }
            lz_insert(d, pos);
        }
        if (prev_len >= MIN_MATCH && cur_len <= prev_len) {
            emit_match(d, prev_len, prev_dist);
            size_t end = pos - 1 + prev_len;
            for (size_t p = pos + 1; p < end && p + MIN_MATCH <= n; p++) lz_insert(d, p);
            pos = end;
            prev_len = 0;
            pending = 0;
            if (pos >= n) break;
            continue;
        }
        if (pending) emit_literal(d, d->src[pos - 1]);
        if (pos >= n) break;
        pending = 1;
        prev_len = cur_len;
        prev_dist = cur_dist;
        pos++;
    }
}

uint8_t *zlib_compress(const uint8_t *src, size_t n, int level, size_t *out_n) {
    I2V_ASSERT(n < ((size_t)1 << 31), "zlib_compress: %zu bytes is more than this encoder handles", n);
    if (level < 1) level = 1;
    if (level > 9) level = 9;
    Deflate d;
    memset(&d, 0, sizeof d);
    d.src = src;
    d.n = n;
    d.p = lz_levels[level];
    d.head = xmalloc(sizeof(int32_t) << HASH_BITS);
    d.prev = xmalloc(sizeof(int32_t) * WSIZE);
    d.sym_len = xmalloc(sizeof(uint16_t) * BLOCK_SYMS);
    d.sym_val = xmalloc(sizeof(uint16_t) * BLOCK_SYMS);
    for (size_t i = 0; i < ((size_t)1 << HASH_BITS); i++) d.head[i] = -1;
    for (size_t i = 0; i < WSIZE; i++) d.prev[i] = -1;
    bo_reserve(&d.out, n / 2 + 64);
    /* RFC 1950 header: deflate with a 32K window (0x78), FLEVEL 2 (default), FCHECK so that the pair is a
     * multiple of 31 */
    d.out.buf[d.out.n++] = 0x78;
    d.out.buf[d.out.n++] = 0x9C;
    lz_compress(&d);
    flush_block(&d, 1);
    bo_align(&d.out);
    uint32_t a = adler32_update(1, src, n);
    uint8_t tail[4] = {(uint8_t)(a >> 24), (uint8_t)(a >> 16), (uint8_t)(a >> 8), (uint8_t)a};
    bo_bytes(&d.out, tail, 4);
    free(d.head);
    free(d.prev);
    free(d.sym_len);
    free(d.sym_val);
    *out_n = d.out.n;
    return d.out.buf;
}
