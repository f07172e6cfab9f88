/* tfrecord.c: TFRecord files and tf.train.Example messages without TensorFlow.
 *
 * What it is: CRC-32C, the TFRecord framing (length, masked CRC of the length, data, masked CRC of the
 * data), a validating reader of the protobuf wire format restricted to tf.train.Example (Features,
 * map<string, Feature>, BytesList / FloatList / Int64List, packed or unpacked), a small writer of the same
 * messages. (The BAIR converter built on them is data preparation: program/prepare.c.)
 * What it is not: a general protobuf library (no descriptors, no groups, no SequenceExample), nor a reader
 * of compressed (GZIP/ZLIB) TFRecords.
 *
 * Bad input: every length is checked against the bytes that remain before it is used; a record longer
 * than the rest of its file is rejected before anything is allocated; varints are at most 10 bytes; the
 * message nesting is fixed (Example > Features > entry > Feature > list), so nothing recurses on input.
 *
 * Dimension legend: T frames (30 per BAIR trajectory), H = W = 64, C = 3 (RGB, interleaved in the records).
 */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "formats/tfrecord.h"

#include <pthread.h>

/* ==== CRC-32C ============================================================================================= */
static uint32_t crc32c_table[8][256];
static pthread_once_t crc32c_once = PTHREAD_ONCE_INIT;

static void crc32c_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc32c_table[0][i] = c;
    }
    /* slicing-by-8 tables: BAIR records are ~0.7 MB each, and every byte is checked */
    for (int t = 1; t < 8; t++)
        for (int i = 0; i < 256; i++)
            crc32c_table[t][i] = (crc32c_table[t - 1][i] >> 8) ^ crc32c_table[0][crc32c_table[t - 1][i] & 0xff];
}

uint32_t crc32c_update(uint32_t crc, const uint8_t *p, size_t n) {
    pthread_once(&crc32c_once, crc32c_init);
    uint32_t c = ~crc;
    while (n >= 8) {
        uint32_t lo = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
        c = crc32c_table[7][lo & 0xff] ^ crc32c_table[6][(lo >> 8) & 0xff] ^ crc32c_table[5][(lo >> 16) & 0xff] ^
            crc32c_table[4][lo >> 24] ^ crc32c_table[3][p[4]] ^ crc32c_table[2][p[5]] ^ crc32c_table[1][p[6]] ^
            crc32c_table[0][p[7]];
        p += 8;
        n -= 8;
    }
    while (n--) c = (c >> 8) ^ crc32c_table[0][(c ^ *p++) & 0xff];
    return ~c;
}

uint32_t tfr_masked_crc(const uint8_t *p, size_t n) {
    uint32_t c = crc32c_update(0, p, n);
    return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

static uint64_t get_le64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}
static uint32_t get_le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static void put_le32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put_le64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* ==== TFRecord framing ====================================================================================== */
/* Checks a 12-byte header; *len gets the data length. */
static int tfr_header(const uint8_t *h, uint64_t *len, const char *name, uint64_t offset, I2vError *err) {
    if (tfr_masked_crc(h, 8) != get_le32(h + 8))
        return err_set(err, "%s: record at offset %" PRIu64 ": the CRC-32C of the length field does not match "
                       "(a corrupt or non-TFRecord file; compressed TFRecords are not supported)", name, offset);
    *len = get_le64(h);
    return 0;
}

int tfr_next(const uint8_t *buf, size_t n, size_t *pos, const uint8_t **rec, size_t *len, const char *name,
             I2vError *err) {
    size_t p = *pos;
    if (p == n) return 0;
    if (n - p < 12)
        return err_set(err, "%s: truncated record header at offset %zu (%zu bytes left, 12 expected)", name, p, n - p);
    uint64_t l = 0;
    if (tfr_header(buf + p, &l, name, p, err)) return -1;
    if (l > n - p - 12 || n - p - 12 - l < 4)
        return err_set(err, "%s: truncated record at offset %zu: the header says %" PRIu64 " bytes of data, %zu "
                       "bytes remain", name, p, l, n - p - 12 < 4 ? 0 : n - p - 16);
    const uint8_t *d = buf + p + 12;
    if (tfr_masked_crc(d, (size_t)l) != get_le32(d + l))
        return err_set(err, "%s: record at offset %zu: the CRC-32C of the data does not match (corrupt data)", name, p);
    *rec = d;
    *len = (size_t)l;
    *pos = p + 16 + (size_t)l;
    return 1;
}

int tfr_open(TfrReader *r, const char *path, I2vError *err) {
    memset(r, 0, sizeof *r);
    snprintf(r->path, sizeof r->path, "%s", path);
    r->f = fopen(path, "rb");
    if (!r->f) return err_set(err, "%s: cannot open the TFRecord file", path);
    if (fseek(r->f, 0, SEEK_END) != 0) {
        fclose(r->f);
        r->f = NULL;
        return err_set(err, "%s: cannot seek (not a regular file?)", path);
    }
    long sz = ftell(r->f);
    if (sz < 0 || fseek(r->f, 0, SEEK_SET) != 0) {
        fclose(r->f);
        r->f = NULL;
        return err_set(err, "%s: cannot determine the file size", path);
    }
    r->size = (uint64_t)sz;
    return 0;
}

int tfr_read(TfrReader *r, const uint8_t **rec, size_t *len, I2vError *err) {
    if (!r->f) return err_set(err, "%s: the TFRecord file is not open", r->path);
    if (r->pos == r->size) return 0;
    uint8_t h[12];
    if (r->size - r->pos < 12 || fread(h, 1, 12, r->f) != 12)
        return err_set(err, "%s: record %zu: truncated header at offset %" PRIu64 " (%" PRIu64 " bytes left, 12 "
                       "expected)", r->path, r->index, r->pos, r->size - r->pos);
    uint64_t l = 0;
    if (tfr_header(h, &l, r->path, r->pos, err)) return -1;
    uint64_t left = r->size - r->pos - 12;
    if (left < 4 || l > left - 4)
        return err_set(err, "%s: record %zu: truncated: the header at offset %" PRIu64 " says %" PRIu64 " bytes of "
                       "data, the file has %" PRIu64 " after it", r->path, r->index, r->pos, l, left < 4 ? 0 : left - 4);
    if (l + 4 > r->cap) {
        free(r->buf);
        r->cap = (size_t)l + 4;
        r->buf = xmalloc(r->cap);
    }
    if (fread(r->buf, 1, (size_t)l + 4, r->f) != (size_t)l + 4)
        return err_set(err, "%s: record %zu: read error at offset %" PRIu64, r->path, r->index, r->pos);
    if (tfr_masked_crc(r->buf, (size_t)l) != get_le32(r->buf + l))
        return err_set(err, "%s: record %zu (offset %" PRIu64 "): the CRC-32C of the data does not match (corrupt "
                       "data)", r->path, r->index, r->pos);
    *rec = r->buf;
    *len = (size_t)l;
    r->pos += 16 + l;
    r->index++;
    return 1;
}

void tfr_close(TfrReader *r) {
    if (r->f) fclose(r->f);
    free(r->buf);
    memset(r, 0, sizeof *r);
}

static void grow(uint8_t **buf, size_t *cap, size_t need) {
    if (need <= *cap) return;
    size_t c = *cap ? *cap : 256;
    while (c < need) c *= 2;
    uint8_t *nb = realloc(*buf, c);
    I2V_ASSERT(nb, "out of memory growing a buffer to %zu bytes", c);
    *buf = nb;
    *cap = c;
}

void tfr_append(uint8_t **buf, size_t *n, size_t *cap, const uint8_t *rec, size_t len) {
    grow(buf, cap, *n + len + 16);
    uint8_t *p = *buf + *n;
    put_le64(p, len);
    put_le32(p + 8, tfr_masked_crc(p, 8));
    memcpy(p + 12, rec, len);
    put_le32(p + 12 + len, tfr_masked_crc(rec, len));
    *n += len + 16;
}

/* ==== protobuf wire format ================================================================================== */
/* A cursor over one message; `what` names it in errors. */
typedef struct Pb {
    const uint8_t *p, *end;
    const char *name;        /* the file or record */
    const char *what;        /* the message type being read */
    I2vError *err;
} Pb;

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_SGROUP = 3, WT_EGROUP = 4, WT_I32 = 5 };

static int pb_fail(Pb *b, const char *msg) {
    return err_set(b->err, "%s: corrupt tf.train.Example: %s in a %s message", b->name, msg, b->what);
}

static int pb_varint(Pb *b, uint64_t *v) {
    uint64_t x = 0;
    for (int i = 0; i < 10; i++) {
        if (b->p >= b->end) return pb_fail(b, "a varint runs past the end");
        uint8_t c = *b->p++;
        if (i == 9 && c > 1) return pb_fail(b, "a varint is longer than 64 bits");
        x |= (uint64_t)(c & 0x7f) << (7 * i);
        if (!(c & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return pb_fail(b, "a varint is longer than 10 bytes");
}

/* Reads a tag; 1 with (field, wire type), 0 at the end of the message, -1 on error. */
static int pb_tag(Pb *b, uint32_t *field, int *wt) {
    if (b->p == b->end) return 0;
    uint64_t t = 0;
    if (pb_varint(b, &t)) return -1;
    if ((t >> 3) == 0 || (t >> 3) > 0x1fffffff) return pb_fail(b, "a field number is 0 or too large");
    *field = (uint32_t)(t >> 3);
    *wt = (int)(t & 7);
    if (*wt == WT_SGROUP || *wt == WT_EGROUP) return pb_fail(b, "a group (deprecated wire type 3/4) is not supported");
    if (*wt > 5) return pb_fail(b, "an invalid wire type (6 or 7)");
    return 1;
}

/* A length-delimited payload. */
static int pb_bytes(Pb *b, const uint8_t **p, size_t *len) {
    uint64_t l = 0;
    if (pb_varint(b, &l)) return -1;
    if (l > (uint64_t)(b->end - b->p)) return pb_fail(b, "a length runs past the end of the message");
    *p = b->p;
    *len = (size_t)l;
    b->p += l;
    return 0;
}

static int pb_skip(Pb *b, int wt) {
    uint64_t v = 0;
    const uint8_t *p = NULL;
    size_t l = 0;
    switch (wt) {
    case WT_VARINT: return pb_varint(b, &v);
    case WT_LEN: return pb_bytes(b, &p, &l);
    case WT_I64:
        if (b->end - b->p < 8) return pb_fail(b, "a 64-bit field runs past the end");
        b->p += 8;
        return 0;
    case WT_I32:
        if (b->end - b->p < 4) return pb_fail(b, "a 32-bit field runs past the end");
        b->p += 4;
        return 0;
    }
    return pb_fail(b, "an unexpected wire type");
}

static Pb pb_sub(const Pb *parent, const uint8_t *p, size_t len, const char *what) {
    Pb s = {p, p + len, parent->name, what, parent->err};
    return s;
}

/* Validates a BytesList / FloatList / Int64List and counts its values. */
static int pb_list_count(Pb *b, TfKind kind, size_t *count) {
    size_t c = 0;
    uint32_t field = 0;
    int wt = 0, r;
    while ((r = pb_tag(b, &field, &wt)) == 1) {
        if (field != 1) {
            if (pb_skip(b, wt)) return -1;
            continue;
        }
        const uint8_t *p = NULL;
        size_t len = 0;
        if (kind == TF_BYTES) {
            if (wt != WT_LEN) return pb_fail(b, "a value is not length-delimited");
            if (pb_bytes(b, &p, &len)) return -1;
            c++;
        } else if (kind == TF_FLOAT) {
            if (wt == WT_I32) {
                if (pb_skip(b, wt)) return -1;
                c++;
            } else if (wt == WT_LEN) {
                if (pb_bytes(b, &p, &len)) return -1;
                if (len % 4) return pb_fail(b, "a packed float array's length is not a multiple of 4");
                c += len / 4;
            } else {
                return pb_fail(b, "a float value has a wire type other than 32-bit or packed");
            }
        } else {
            if (wt == WT_VARINT) {
                if (pb_skip(b, wt)) return -1;
                c++;
            } else if (wt == WT_LEN) {
                if (pb_bytes(b, &p, &len)) return -1;
                Pb s = pb_sub(b, p, len, "packed Int64List");
                while (s.p < s.end) {
                    uint64_t v = 0;
                    if (pb_varint(&s, &v)) return -1;
                    c++;
                }
            } else {
                return pb_fail(b, "an int64 value has a wire type other than varint or packed");
            }
        }
    }
    *count = c;
    return r;
}

/* Feature: oneof { BytesList bytes_list = 1; FloatList float_list = 2; Int64List int64_list = 3; } */
static int pb_feature(Pb *b, TfFeature *f) {
    uint32_t field = 0;
    int wt = 0, r, seen[4] = {0, 0, 0, 0};
    f->kind = TF_NONE;
    f->count = 0;
    f->list = NULL;
    f->list_len = 0;
    while ((r = pb_tag(b, &field, &wt)) == 1) {
        if (field < 1 || field > 3) {
            if (pb_skip(b, wt)) return -1;
            continue;
        }
        if (wt != WT_LEN) return pb_fail(b, "a list field is not length-delimited");
        const uint8_t *p = NULL;
        size_t len = 0;
        if (pb_bytes(b, &p, &len)) return -1;
        TfKind kind = (TfKind)field;
        static const char *const names[] = {"", "BytesList", "FloatList", "Int64List"};
        Pb s = pb_sub(b, p, len, names[kind]);
        size_t c = 0;
        if (pb_list_count(&s, kind, &c)) return -1;
        /* protobuf would merge two lists of one kind (TensorFlow never writes that; rejected); another kind
         * replaces the first, as a oneof does */
        if (seen[kind]++) return pb_fail(b, "a list appears twice in one Feature");
        f->kind = kind;
        f->count = c;
        f->list = p;
        f->list_len = len;
    }
    return r;
}

static int pb_features(Pb *b, TfExample *ex, size_t *cap) {
    uint32_t field = 0;
    int wt = 0, r;
    while ((r = pb_tag(b, &field, &wt)) == 1) {
        if (field != 1) {
            if (pb_skip(b, wt)) return -1;
            continue;
        }
        if (wt != WT_LEN) return pb_fail(b, "a map entry is not length-delimited");
        const uint8_t *p = NULL;
        size_t len = 0;
        if (pb_bytes(b, &p, &len)) return -1;
        TfFeature f = {"", 0, TF_NONE, 0, NULL, 0};
        Pb e = pb_sub(b, p, len, "Features.feature entry");
        uint32_t ef = 0;
        int ewt = 0, er;
        while ((er = pb_tag(&e, &ef, &ewt)) == 1) {
            const uint8_t *q = NULL;
            size_t ql = 0;
            if (ef == 1 || ef == 2) {
                if (ewt != WT_LEN) return pb_fail(&e, "the key or value is not length-delimited");
                if (pb_bytes(&e, &q, &ql)) return -1;
                if (ef == 1) {
                    f.key = (const char *)q;
                    f.key_len = ql;
                } else {
                    Pb fs = pb_sub(&e, q, ql, "Feature");
                    if (pb_feature(&fs, &f)) return -1;
                }
            } else if (pb_skip(&e, ewt)) {
                return -1;
            }
        }
        if (er < 0) return -1;
        if (ex->n == *cap) {
            *cap = *cap ? 2 * *cap : 64;
            TfFeature *nf = realloc(ex->f, *cap * sizeof *nf);
            I2V_ASSERT(nf, "out of memory");
            ex->f = nf;
        }
        ex->f[ex->n++] = f;
    }
    return r;
}

int tf_example_parse(const uint8_t *buf, size_t n, const char *name, TfExample *ex, I2vError *err) {
    ex->f = NULL;
    ex->n = 0;
    size_t cap = 0;
    Pb b = {buf, buf + n, name, "Example", err};
    uint32_t field = 0;
    int wt = 0, r;
    while ((r = pb_tag(&b, &field, &wt)) == 1) {
        if (field != 1) {
            if (pb_skip(&b, wt)) break;
            continue;
        }
        if (wt != WT_LEN) {
            r = pb_fail(&b, "field `features` is not length-delimited");
            break;
        }
        const uint8_t *p = NULL;
        size_t len = 0;
        if (pb_bytes(&b, &p, &len)) {
            r = -1;
            break;
        }
        Pb s = pb_sub(&b, p, len, "Features");
        if (pb_features(&s, ex, &cap)) {
            r = -1;
            break;
        }
    }
    if (r < 0) {
        tf_example_free(ex);
        return -1;
    }
    return 0;
}

void tf_example_free(TfExample *ex) {
    free(ex->f);
    ex->f = NULL;
    ex->n = 0;
}

const TfFeature *tf_example_find(const TfExample *ex, const char *key) {
    size_t kl = strlen(key);
    for (size_t i = ex->n; i-- > 0;)   /* map semantics: the last entry with a key wins */
        if (ex->f[i].key_len == kl && memcmp(ex->f[i].key, key, kl) == 0) return &ex->f[i];
    return NULL;
}

/* The getters re-walk a list that tf_example_parse validated; the checks stay so that a wrong TfFeature
 * built by hand cannot read out of bounds. */
int tf_feature_bytes(const TfFeature *f, size_t i, const uint8_t **p, size_t *len) {
    if (f->kind != TF_BYTES || i >= f->count) return -1;
    Pb b = {f->list, f->list + f->list_len, "", "BytesList", NULL};
    uint32_t field = 0;
    int wt = 0;
    size_t k = 0;
    while (pb_tag(&b, &field, &wt) == 1) {
        const uint8_t *q = NULL;
        size_t ql = 0;
        if (field != 1) {
            if (pb_skip(&b, wt)) return -1;
            continue;
        }
        if (wt != WT_LEN || pb_bytes(&b, &q, &ql)) return -1;
        if (k++ == i) {
            *p = q;
            *len = ql;
            return 0;
        }
    }
    return -1;
}

static float f32_from_le(const uint8_t *p) {
    uint32_t u = get_le32(p);
    float v;
    memcpy(&v, &u, 4);
    return v;
}

size_t tf_feature_floats(const TfFeature *f, float *out, size_t cap) {
    if (f->kind != TF_FLOAT) return 0;
    Pb b = {f->list, f->list + f->list_len, "", "FloatList", NULL};
    uint32_t field = 0;
    int wt = 0;
    size_t k = 0;
    while (pb_tag(&b, &field, &wt) == 1) {
        if (field != 1 || (wt != WT_I32 && wt != WT_LEN)) {
            if (pb_skip(&b, wt)) break;
            continue;
        }
        if (wt == WT_I32) {
            if (b.end - b.p < 4) break;
            if (k < cap) out[k] = f32_from_le(b.p);
            k++;
            b.p += 4;
        } else {
            const uint8_t *q = NULL;
            size_t ql = 0;
            if (pb_bytes(&b, &q, &ql)) break;
            for (size_t j = 0; j + 4 <= ql; j += 4, k++)
                if (k < cap) out[k] = f32_from_le(q + j);
        }
    }
    return k < cap ? k : cap;
}

size_t tf_feature_int64s(const TfFeature *f, int64_t *out, size_t cap) {
    if (f->kind != TF_INT64) return 0;
    Pb b = {f->list, f->list + f->list_len, "", "Int64List", NULL};
    uint32_t field = 0;
    int wt = 0;
    size_t k = 0;
    uint64_t v = 0;
    while (pb_tag(&b, &field, &wt) == 1) {
        if (field != 1 || (wt != WT_VARINT && wt != WT_LEN)) {
            if (pb_skip(&b, wt)) break;
            continue;
        }
        if (wt == WT_VARINT) {
            if (pb_varint(&b, &v)) break;
            if (k < cap) out[k] = (int64_t)v;
            k++;
        } else {
            const uint8_t *q = NULL;
            size_t ql = 0;
            if (pb_bytes(&b, &q, &ql)) break;
            Pb s = {q, q + ql, "", "Int64List", NULL};
            while (s.p < s.end && pb_varint(&s, &v) == 0) {
                if (k < cap) out[k] = (int64_t)v;
                k++;
            }
        }
    }
    return k < cap ? k : cap;
}

/* ==== writer ================================================================================================ */
static size_t varint_size(uint64_t v) {
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static void put_varint(uint8_t **buf, size_t *n, size_t *cap, uint64_t v) {
    grow(buf, cap, *n + 10);
    while (v >= 0x80) {
        (*buf)[(*n)++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    (*buf)[(*n)++] = (uint8_t)v;
}

static void put_raw(uint8_t **buf, size_t *n, size_t *cap, const void *p, size_t len) {
    grow(buf, cap, *n + len);
    if (len) memcpy(*buf + *n, p, len);
    *n += len;
}

/* entry { key = 1; value = 2: Feature { <kind> = kind: List { payload } } }, payload already serialised */
static void builder_entry(TfBuilder *b, const char *key, TfKind kind, const uint8_t *list, size_t list_len) {
    size_t kl = strlen(key);
    size_t feature_len = 1 + varint_size(list_len) + list_len;
    size_t entry_len = 1 + varint_size(kl) + kl + 1 + varint_size(feature_len) + feature_len;
    put_varint(&b->buf, &b->n, &b->cap, (1u << 3) | WT_LEN);
    put_varint(&b->buf, &b->n, &b->cap, entry_len);
    put_varint(&b->buf, &b->n, &b->cap, (1u << 3) | WT_LEN);
    put_varint(&b->buf, &b->n, &b->cap, kl);
    put_raw(&b->buf, &b->n, &b->cap, key, kl);
    put_varint(&b->buf, &b->n, &b->cap, (2u << 3) | WT_LEN);
    put_varint(&b->buf, &b->n, &b->cap, feature_len);
    put_varint(&b->buf, &b->n, &b->cap, ((uint32_t)kind << 3) | WT_LEN);
    put_varint(&b->buf, &b->n, &b->cap, list_len);
    put_raw(&b->buf, &b->n, &b->cap, list, list_len);
}

void tf_builder_bytes(TfBuilder *b, const char *key, const uint8_t *const *values, const size_t *lens, size_t count) {
    uint8_t *l = NULL;
    size_t n = 0, cap = 0;
    for (size_t i = 0; i < count; i++) {
        put_varint(&l, &n, &cap, (1u << 3) | WT_LEN);
        put_varint(&l, &n, &cap, lens[i]);
        put_raw(&l, &n, &cap, values[i], lens[i]);
    }
    builder_entry(b, key, TF_BYTES, l, n);
    free(l);
}

void tf_builder_floats(TfBuilder *b, const char *key, const float *v, size_t count) {
    uint8_t *l = NULL;
    size_t n = 0, cap = 0;
    if (count) {
        put_varint(&l, &n, &cap, (1u << 3) | WT_LEN);
        put_varint(&l, &n, &cap, 4 * count);
        grow(&l, &cap, n + 4 * count);
        for (size_t i = 0; i < count; i++) {
            uint32_t u;
            memcpy(&u, &v[i], 4);
            put_le32(l + n, u);
            n += 4;
        }
    }
    builder_entry(b, key, TF_FLOAT, l, n);
    free(l);
}

void tf_builder_int64s(TfBuilder *b, const char *key, const int64_t *v, size_t count) {
    uint8_t *payload = NULL, *l = NULL;
    size_t pn = 0, pcap = 0, n = 0, cap = 0;
    for (size_t i = 0; i < count; i++) put_varint(&payload, &pn, &pcap, (uint64_t)v[i]);
    if (count) {
        put_varint(&l, &n, &cap, (1u << 3) | WT_LEN);
        put_varint(&l, &n, &cap, pn);
        put_raw(&l, &n, &cap, payload, pn);
    }
    builder_entry(b, key, TF_INT64, l, n);
    free(payload);
    free(l);
}

uint8_t *tf_builder_finish(TfBuilder *b, size_t *n) {
    uint8_t *out = NULL;
    size_t on = 0, cap = 0;
    put_varint(&out, &on, &cap, (1u << 3) | WT_LEN);
    put_varint(&out, &on, &cap, b->n);
    put_raw(&out, &on, &cap, b->buf, b->n);
    free(b->buf);
    memset(b, 0, sizeof *b);
    if (!out) out = xmalloc(1);
    *n = on;
    return out;
}
