/* safetensors.c: reading and writing checkpoints in the safetensors format.
 *
 * What it is: a strict parser for the safetensors header (a JSON object of a known shape, parsed by a
 * small recursive-descent reader that accepts only objects, arrays, strings and non-negative integers),
 * the validation of every offset and size against the file, dtype conversions (F16, BF16, F64 to real;
 * widening integer conversions), ParamSet loading with one complete mismatch report, and an atomic writer.
 * What it is not: a general JSON parser (no floats, booleans, null, or nesting beyond the format's), nor
 * a streaming reader: a file is read whole, then parsed.
 *
 * Every value read from the file is distrusted: lengths are checked against what is left before they are
 * used, sizes are multiplied with overflow checks, and allocations never exceed the file's size.
 * All data is little-endian in the file and is decoded byte by byte, so the host's byte order and the
 * (absent) alignment of tensors inside the buffer do not matter.
 */
#include "formats/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Bit patterns are reinterpreted through memcpy, which needs IEEE binary32 / binary64. */
_Static_assert(sizeof(float) == 4 && sizeof(double) == 8, "float and double must be IEEE binary32/64");

/* ==================================================================================================== */
/* dtypes                                                                                                */
/* ==================================================================================================== */

static const struct {
    const char *name;
    size_t size;
} st_dtypes[ST_NDTYPES] = {
    [ST_BOOL] = {"BOOL", 1}, [ST_U8] = {"U8", 1},   [ST_I8] = {"I8", 1},     [ST_F8_E5M2] = {"F8_E5M2", 1},
    [ST_F8_E4M3] = {"F8_E4M3", 1}, [ST_I16] = {"I16", 2}, [ST_U16] = {"U16", 2}, [ST_F16] = {"F16", 2},
    [ST_BF16] = {"BF16", 2}, [ST_I32] = {"I32", 4}, [ST_U32] = {"U32", 4}, [ST_F32] = {"F32", 4},
    [ST_F64] = {"F64", 8}, [ST_I64] = {"I64", 8}, [ST_U64] = {"U64", 8},
};

const char *st_dtype_name(StDType dt) { return (unsigned)dt < ST_NDTYPES ? st_dtypes[dt].name : "?"; }
size_t st_dtype_size(StDType dt) { return (unsigned)dt < ST_NDTYPES ? st_dtypes[dt].size : 0; }

int st_can_convert(StDType from, DType to) {
    switch (to) {
    case DT_REAL: return from == ST_F32 || from == ST_F64 || from == ST_F16 || from == ST_BF16;
    case DT_I64:
        return from == ST_I64 || from == ST_I32 || from == ST_I16 || from == ST_I8 || from == ST_U32 ||
               from == ST_U16 || from == ST_U8;
    case DT_I32: return from == ST_I32 || from == ST_I16 || from == ST_I8 || from == ST_U16 || from == ST_U8;
    case DT_U8: return from == ST_U8 || from == ST_BOOL;
    case DT_BOOL: return from == ST_BOOL || from == ST_U8;
    }
    return 0;
}

/* How an i2v dtype is named in messages ("real" rather than F32, which is only its file spelling). */
static const char *target_name(DType dt) { return dt == DT_REAL ? "real" : dtype_name(dt); }

/* ---- little-endian bytes ---- */
static uint16_t ld16(const unsigned char *p) { return (uint16_t)(p[0] | (unsigned)p[1] << 8); }
static uint32_t ld32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t ld64(const unsigned char *p) { return (uint64_t)ld32(p) | (uint64_t)ld32(p + 4) << 32; }
static void st32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void st64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static float f32_from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static double f64_from_bits(uint64_t u) {
    double d;
    memcpy(&d, &u, 8);
    return d;
}
static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* IEEE half: 1 sign, 5 exponent (bias 15), 10 mantissa bits. Every half is exact as a float. */
static float f16_to_f32(uint16_t h) {
    unsigned ex = (h >> 10) & 0x1fu, man = h & 0x3ffu;
    float v;
    if (ex == 0) v = ldexpf((float)man, -24);                       /* zero and subnormals */
    else if (ex == 31) v = man ? NAN : INFINITY;
    else v = ldexpf((float)(man | 0x400u), (int)ex - 25);
    return (h & 0x8000u) ? -v : v;
}

/* bfloat16 is the upper half of a binary32. */
static float bf16_to_f32(uint16_t b) { return f32_from_bits((uint32_t)b << 16); }

/* double -> float rounded as IEEE does it, without the undefined behaviour C gives out-of-range casts. */
static float to_f32(double x) {
    const double inf_from = 0x1p128 - 0x1p103;   /* FLT_MAX + half an ulp: round-to-nearest overflows */
    if (x >= inf_from) return INFINITY;
    if (x <= -inf_from) return -INFINITY;
    if (x > FLT_MAX) return FLT_MAX;
    if (x < -FLT_MAX) return -FLT_MAX;
    return (float)x;
}

/* Two's complement without implementation-defined conversions. */
static int64_t as_i64(uint64_t u) { return u <= INT64_MAX ? (int64_t)u : -(int64_t)(~u) - 1; }
static int64_t as_i32(uint32_t u) { return u <= INT32_MAX ? (int64_t)u : -(int64_t)(~u) - 1; }

/* Integer element i of an integer-typed entry (only dtypes that st_can_convert accepts reach here). */
static int64_t int_elem(const StEntry *en, size_t i) {
    const unsigned char *p = en->data;
    switch (en->dtype) {
    case ST_BOOL: case ST_U8: return p[i];
    case ST_I8: return p[i] < 128 ? p[i] : (int64_t)p[i] - 256;
    case ST_U16: return ld16(p + 2 * i);
    case ST_I16: { uint16_t v = ld16(p + 2 * i); return v < 32768 ? v : (int64_t)v - 65536; }
    case ST_U32: return ld32(p + 4 * i);
    case ST_I32: return as_i32(ld32(p + 4 * i));
    case ST_I64: return as_i64(ld64(p + 8 * i));
    default: break;
    }
    I2V_ASSERT(0, "int_elem: %s is not an integer dtype", st_dtype_name(en->dtype));
    return 0;
}

/* Converts the first numel elements of en into out (numel values of dt). The caller checked that the
 * conversion is allowed and that en has at least numel elements. */
static void convert(const StEntry *en, DType dt, void *out, size_t numel) {
    const unsigned char *p = en->data;
    if (dt == DT_REAL) {
        real *o = out;
        switch (en->dtype) {
        case ST_F32: for (size_t i = 0; i < numel; i++) o[i] = (real)f32_from_bits(ld32(p + 4 * i)); break;
        case ST_F16: for (size_t i = 0; i < numel; i++) o[i] = (real)f16_to_f32(ld16(p + 2 * i)); break;
        case ST_BF16: for (size_t i = 0; i < numel; i++) o[i] = (real)bf16_to_f32(ld16(p + 2 * i)); break;
        case ST_F64:
            for (size_t i = 0; i < numel; i++) {
                double d = f64_from_bits(ld64(p + 8 * i));
#ifdef I2V_DOUBLE
                o[i] = d;
#else
                o[i] = to_f32(d);
#endif
            }
            break;
        default: I2V_ASSERT(0, "convert: %s into real", st_dtype_name(en->dtype));
        }
        return;
    }
    for (size_t i = 0; i < numel; i++) {
        int64_t v = int_elem(en, i);
        switch (dt) {
        case DT_I64: ((int64_t *)out)[i] = v; break;
        case DT_I32: ((int32_t *)out)[i] = (int32_t)v; break;    /* in range: only narrower types reach here */
        case DT_U8: ((uint8_t *)out)[i] = (uint8_t)v; break;
        case DT_BOOL: ((uint8_t *)out)[i] = v != 0; break;
        case DT_REAL: break;
        }
    }
}

/* ==================================================================================================== */
/* UTF-8                                                                                                 */
/* ==================================================================================================== */

/* Length of the well-formed UTF-8 sequence at p (at most avail bytes), or 0 if it is malformed:
 * overlong forms, surrogates and code points above U+10FFFF are rejected, as RFC 3629 asks. */
static size_t utf8_seq(const unsigned char *p, size_t avail) {
    unsigned c = p[0];
    if (c < 0x80) return 1;
    size_t len;
    unsigned lo = 0x80, hi = 0xbf;              /* the allowed range of the second byte */
    if (c >= 0xc2 && c <= 0xdf) len = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0) lo = 0xa0;
        if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0) lo = 0x90;
        if (c == 0xf4) hi = 0x8f;
    } else return 0;
    if (avail < len) return 0;
    if (p[1] < lo || p[1] > hi) return 0;
    for (size_t i = 2; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xbf) return 0;
    return len;
}

static int utf8_valid(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq(p + i, n - i);
        if (!k) return 0;
        i += k;
    }
    return 1;
}

static size_t utf8_encode(uint32_t cp, char *out) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | cp >> 12);
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | cp >> 18);
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* ==================================================================================================== */
/* the header parser                                                                                     */
/* ==================================================================================================== */

typedef struct Parser {
    const unsigned char *s;     /* the JSON text (not NUL-terminated) */
    size_t n, pos;
    const char *label;
    I2vError *e;
    char *pool;                 /* decoded strings; n + 1 bytes always suffice (see parse_string) */
    size_t pool_used;
    StEntry *entries;
    size_t nentries, cap_entries;
    StMeta *meta;
    size_t nmeta, cap_meta;
    int seen_meta;
} Parser;

/* Names from a hostile file may be huge; messages show their first 80 bytes. */
#define NAMEFMT "'%.80s'"

static int perr(Parser *p, const char *fmt, ...) I2V_PRINTF(2, 3);
static int perr(Parser *p, const char *fmt, ...) {
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return err_set(p->e, "%s: bad safetensors header (JSON byte %zu of %zu): %s", p->label, p->pos, p->n, what);
}

static void skip_ws(Parser *p) {
    while (p->pos < p->n) {
        unsigned char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

/* What stands at the current position, for messages. */
static const char *here(Parser *p, char *buf, size_t n) {
    if (p->pos >= p->n) return "the end of the header";
    unsigned char c = p->s[p->pos];
    if (c >= 0x20 && c < 0x7f) snprintf(buf, n, "'%c'", c);
    else snprintf(buf, n, "byte 0x%02x", c);
    return buf;
}

static int expect(Parser *p, char ch, const char *context) {
    skip_ws(p);
    if (p->pos < p->n && p->s[p->pos] == (unsigned char)ch) {
        p->pos++;
        return 0;
    }
    char buf[32];
    return perr(p, "expected '%c' %s, found %s", ch, context, here(p, buf, sizeof buf));
}

/* Is the next non-blank character ch? (Consumes it if so.) */
static int accept(Parser *p, char ch) {
    skip_ws(p);
    if (p->pos < p->n && p->s[p->pos] == (unsigned char)ch) {
        p->pos++;
        return 1;
    }
    return 0;
}

static int hex4(Parser *p, uint32_t *out) {
    if (p->n - p->pos < 4) return perr(p, "a \\u escape needs 4 hex digits");
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = p->s[p->pos + (size_t)i];
        unsigned d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else return perr(p, "a \\u escape needs 4 hex digits");
        v = v << 4 | d;
    }
    p->pos += 4;
    *out = v;
    return 0;
}

/* A JSON string, decoded into the pool. A string of k encoded bytes between its quotes decodes to at
 * most k bytes (escapes only shrink: \uXXXX is 6 bytes for at most 3, a surrogate pair 12 for 4), so with
 * its NUL it fits in the k + 2 bytes it occupied: the pool of n + 1 bytes never overflows. */
static int parse_string(Parser *p, const char **out, const char *what) {
    skip_ws(p);
    if (p->pos >= p->n || p->s[p->pos] != '"') {
        char buf[32];
        return perr(p, "expected a string (%s), found %s", what, here(p, buf, sizeof buf));
    }
    p->pos++;
    char *dst = p->pool + p->pool_used;
    size_t k = 0;
    for (;;) {
        if (p->pos >= p->n) return perr(p, "unterminated string (%s)", what);
        unsigned c = p->s[p->pos];
        if (c == '"') {
            p->pos++;
            break;
        }
        if (c < 0x20) return perr(p, "control byte 0x%02x inside a string (%s) must be escaped", c, what);
        if (c >= 0x80) {
            size_t len = utf8_seq(p->s + p->pos, p->n - p->pos);
            if (!len) return perr(p, "invalid UTF-8 in a string (%s)", what);
            memcpy(dst + k, p->s + p->pos, len);
            k += len;
            p->pos += len;
            continue;
        }
        if (c != '\\') {
            dst[k++] = (char)c;
            p->pos++;
            continue;
        }
        if (p->pos + 1 >= p->n) return perr(p, "unterminated string (%s)", what);
        unsigned x = p->s[p->pos + 1];
        p->pos += 2;
        switch (x) {
        case '"': dst[k++] = '"'; break;
        case '\\': dst[k++] = '\\'; break;
        case '/': dst[k++] = '/'; break;
        case 'b': dst[k++] = '\b'; break;
        case 'f': dst[k++] = '\f'; break;
        case 'n': dst[k++] = '\n'; break;
        case 'r': dst[k++] = '\r'; break;
        case 't': dst[k++] = '\t'; break;
        case 'u': {
            uint32_t cp;
            if (hex4(p, &cp)) return -1;
            if (cp >= 0xdc00 && cp <= 0xdfff) return perr(p, "lone low surrogate \\u%04x in a string", (unsigned)cp);
            if (cp >= 0xd800 && cp <= 0xdbff) {
                uint32_t lo;
                if (p->n - p->pos < 2 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u')
                    return perr(p, "high surrogate \\u%04x without its low half", (unsigned)cp);
                p->pos += 2;
                if (hex4(p, &lo)) return -1;
                if (lo < 0xdc00 || lo > 0xdfff)
                    return perr(p, "high surrogate \\u%04x followed by \\u%04x, not a low surrogate", (unsigned)cp,
                                (unsigned)lo);
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            if (cp == 0) return perr(p, "\\u0000 (a NUL character) is not allowed in a string (%s)", what);
            k += utf8_encode(cp, dst + k);
            break;
        }
        default:
            if (x >= 0x20 && x < 0x7f) return perr(p, "invalid escape \\%c in a string (%s)", x, what);
            return perr(p, "invalid escape (backslash, byte 0x%02x) in a string (%s)", x, what);
        }
    }
    dst[k] = 0;
    p->pool_used += k + 1;
    I2V_ASSERT(p->pool_used <= p->n + 1, "safetensors string pool overflow");
    *out = dst;
    return 0;
}

/* A non-negative JSON integer (no sign, no leading zeros, no fraction or exponent). */
static int parse_uint(Parser *p, uint64_t *out, const char *what, const char *name) {
    skip_ws(p);
    char buf[32];
    if (p->pos >= p->n || p->s[p->pos] < '0' || p->s[p->pos] > '9')
        return perr(p, "expected a non-negative integer in %s of " NAMEFMT ", found %s", what, name,
                    here(p, buf, sizeof buf));
    if (p->s[p->pos] == '0' && p->pos + 1 < p->n && p->s[p->pos + 1] >= '0' && p->s[p->pos + 1] <= '9')
        return perr(p, "number with a leading zero in %s of " NAMEFMT, what, name);
    uint64_t v = 0;
    while (p->pos < p->n && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') {
        unsigned d = p->s[p->pos] - '0';
        if (v > (UINT64_MAX - d) / 10) return perr(p, "number too large in %s of " NAMEFMT, what, name);
        v = v * 10 + d;
        p->pos++;
    }
    if (p->pos < p->n && (p->s[p->pos] == '.' || p->s[p->pos] == 'e' || p->s[p->pos] == 'E'))
        return perr(p, "%s of " NAMEFMT " must hold integers", what, name);
    *out = v;
    return 0;
}

/* Grows a parser array by one element. The number of elements is bounded by the header's length (each
 * takes several bytes of JSON), so this never asks for more than a few times the header. */
static void *grow(void *arr, size_t *cap, size_t n, size_t elem) {
    if (n < *cap) return arr;
    size_t nc = *cap ? 2 * *cap : 16;
    if (nc > SIZE_MAX / elem) return NULL;
    void *q = realloc(arr, nc * elem);
    if (q) *cap = nc;
    return q;
}

static int parse_metadata(Parser *p) {
    if (p->seen_meta) return perr(p, "\"__metadata__\" appears twice");
    p->seen_meta = 1;
    if (expect(p, '{', "(the value of \"__metadata__\" must be an object of strings)")) return -1;
    if (accept(p, '}')) return 0;
    for (;;) {
        const char *key, *value;
        if (parse_string(p, &key, "a metadata key")) return -1;
        if (expect(p, ':', "after a metadata key")) return -1;
        skip_ws(p);
        if (p->pos < p->n && p->s[p->pos] != '"')
            return perr(p, "metadata value of " NAMEFMT " must be a string", key);
        if (parse_string(p, &value, "a metadata value")) return -1;
        StMeta *m = grow(p->meta, &p->cap_meta, p->nmeta, sizeof *m);
        if (!m) return perr(p, "out of memory");
        p->meta = m;
        p->meta[p->nmeta].key = key;
        p->meta[p->nmeta].value = value;
        p->nmeta++;
        if (accept(p, ',')) continue;
        if (accept(p, '}')) return 0;
        char buf[32];
        return perr(p, "expected ',' or '}' in \"__metadata__\", found %s", here(p, buf, sizeof buf));
    }
}

static int parse_dtype(Parser *p, StDType *dt, const char *name) {
    const char *s;
    if (parse_string(p, &s, "a dtype")) return -1;
    for (int i = 0; i < ST_NDTYPES; i++)
        if (!strcmp(s, st_dtypes[i].name)) {
            *dt = (StDType)i;
            return 0;
        }
    return perr(p, "tensor " NAMEFMT " has unknown dtype '%.32s' (expected one of BOOL U8 I8 F8_E5M2 F8_E4M3 "
                   "I16 U16 F16 BF16 I32 U32 F32 F64 I64 U64)", name, s);
}

static int parse_shape(Parser *p, StEntry *en) {
    if (expect(p, '[', "(\"shape\" must be an array of integers)")) return -1;
    en->ndim = 0;
    if (accept(p, ']')) return 0;
    for (;;) {
        uint64_t d;
        if (en->ndim == ST_MAXDIM)
            return perr(p, "tensor " NAMEFMT " has more than %d dimensions", en->name, ST_MAXDIM);
        if (parse_uint(p, &d, "the shape", en->name)) return -1;
        if (d > INT_MAX) return perr(p, "dimension %llu of " NAMEFMT " is too large (at most %d)",
                                     (unsigned long long)d, en->name, INT_MAX);
        en->shape[en->ndim++] = (size_t)d;
        if (accept(p, ',')) continue;
        if (accept(p, ']')) return 0;
        char buf[32];
        return perr(p, "expected ',' or ']' in the shape of " NAMEFMT ", found %s", en->name, here(p, buf, sizeof buf));
    }
}

static int parse_offsets(Parser *p, StEntry *en) {
    uint64_t v[2];
    if (expect(p, '[', "(\"data_offsets\" must be [begin, end])")) return -1;
    if (parse_uint(p, &v[0], "data_offsets", en->name)) return -1;
    if (expect(p, ',', "between the two data_offsets")) return -1;
    if (parse_uint(p, &v[1], "data_offsets", en->name)) return -1;
    if (expect(p, ']', "after the two data_offsets")) return -1;
    if (v[0] > SIZE_MAX || v[1] > SIZE_MAX) return perr(p, "data_offsets of " NAMEFMT " too large", en->name);
    en->begin = (size_t)v[0];
    en->end = (size_t)v[1];
    return 0;
}

/* {"dtype": ..., "shape": [...], "data_offsets": [b, e]}, keys in any order, each exactly once. */
static int parse_info(Parser *p, const char *name) {
    StEntry *arr = grow(p->entries, &p->cap_entries, p->nentries, sizeof *arr);
    if (!arr) return perr(p, "out of memory");
    p->entries = arr;
    StEntry *en = &p->entries[p->nentries];
    memset(en, 0, sizeof *en);
    en->name = name;
    if (expect(p, '{', "(a tensor's entry is an object with dtype, shape and data_offsets)")) return -1;
    int have_dtype = 0, have_shape = 0, have_offsets = 0;
    if (!accept(p, '}')) {
        for (;;) {
            const char *key;
            if (parse_string(p, &key, "a field name")) return -1;
            if (expect(p, ':', "after a field name")) return -1;
            if (!strcmp(key, "dtype")) {
                if (have_dtype++) return perr(p, "tensor " NAMEFMT " has two dtypes", name);
                if (parse_dtype(p, &en->dtype, name)) return -1;
            } else if (!strcmp(key, "shape")) {
                if (have_shape++) return perr(p, "tensor " NAMEFMT " has two shapes", name);
                if (parse_shape(p, en)) return -1;
            } else if (!strcmp(key, "data_offsets")) {
                if (have_offsets++) return perr(p, "tensor " NAMEFMT " has two data_offsets", name);
                if (parse_offsets(p, en)) return -1;
            } else {
                return perr(p, "tensor " NAMEFMT " has an unexpected field '%.40s' (expected dtype, shape, "
                               "data_offsets)", name, key);
            }
            if (accept(p, ',')) continue;
            if (accept(p, '}')) break;
            char buf[32];
            return perr(p, "expected ',' or '}' in the entry of " NAMEFMT ", found %s", name, here(p, buf, sizeof buf));
        }
    }
    if (!have_dtype || !have_shape || !have_offsets)
        return perr(p, "tensor " NAMEFMT " lacks \"%s\"", name,
                    !have_dtype ? "dtype" : !have_shape ? "shape" : "data_offsets");
    p->nentries++;
    return 0;
}

static int parse_header(Parser *p) {
    if (expect(p, '{', "at the start of the header (it must be a JSON object)")) return -1;
    if (!accept(p, '}')) {
        for (;;) {
            const char *key;
            if (parse_string(p, &key, "a tensor name")) return -1;
            if (expect(p, ':', "after a tensor name")) return -1;
            if (!strcmp(key, "__metadata__")) {
                if (parse_metadata(p)) return -1;
            } else if (parse_info(p, key)) {
                return -1;
            }
            if (accept(p, ',')) continue;
            if (accept(p, '}')) break;
            char buf[32];
            return perr(p, "expected ',' or '}' after the entry of " NAMEFMT ", found %s", key, here(p, buf, sizeof buf));
        }
    }
    skip_ws(p);   /* writers pad the header with spaces */
    if (p->pos != p->n) return perr(p, "unexpected bytes after the header object");
    return 0;
}

/* ==================================================================================================== */
/* validation of the table                                                                               */
/* ==================================================================================================== */

static void entry_shape_str(const StEntry *en, char *buf, size_t n) {
    size_t k = 0;
    k += (size_t)snprintf(buf, n, "(");
    for (int i = 0; i < en->ndim; i++)
        k += (size_t)snprintf(buf + (k < n ? k : n), k < n ? n - k : 0, i ? ", %zu" : "%zu", en->shape[i]);
    snprintf(buf + (k < n ? k : n), k < n ? n - k : 0, ")");
}

static int cmp_entry_name(const void *a, const void *b) {
    return strcmp(((const StEntry *)a)->name, ((const StEntry *)b)->name);
}
static int cmp_meta_key(const void *a, const void *b) {
    return strcmp(((const StMeta *)a)->key, ((const StMeta *)b)->key);
}
static int cmp_entry_begin(const void *a, const void *b) {
    const StEntry *x = *(const StEntry *const *)a, *y = *(const StEntry *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return strcmp(x->name, y->name);   /* a total order, so the report does not depend on qsort */
}

/* Sizes, ranges and overlaps of the data; sorts the table. */
static int validate(StFile *f, const char *label, size_t data_size, I2vError *e) {
    char sh[160];
    for (size_t i = 0; i < f->n; i++) {
        StEntry *en = &f->entries[i];
        size_t numel = 1;
        for (int d = 0; d < en->ndim; d++) {
            if (en->shape[d] && numel > SIZE_MAX / en->shape[d]) {
                entry_shape_str(en, sh, sizeof sh);
                return err_set(e, "%s: tensor " NAMEFMT " has shape %s: too many elements", label, en->name, sh);
            }
            numel *= en->shape[d];
        }
        size_t es = st_dtype_size(en->dtype);
        if (numel > SIZE_MAX / es) {
            entry_shape_str(en, sh, sizeof sh);
            return err_set(e, "%s: tensor " NAMEFMT " has shape %s: too many bytes", label, en->name, sh);
        }
        en->numel = numel;
        en->nbytes = numel * es;
        if (en->begin > en->end)
            return err_set(e, "%s: tensor " NAMEFMT " has data_offsets [%zu, %zu]: begin after end", label,
                           en->name, en->begin, en->end);
        if (en->end > data_size)
            return err_set(e, "%s: tensor " NAMEFMT " has data_offsets [%zu, %zu] out of range: the data section "
                              "has %zu bytes (is the file truncated?)", label, en->name, en->begin, en->end, data_size);
        if (en->end - en->begin != en->nbytes) {
            entry_shape_str(en, sh, sizeof sh);
            return err_set(e, "%s: tensor " NAMEFMT " has data_offsets [%zu, %zu] (%zu bytes), but %s %s needs "
                              "%zu bytes", label, en->name, en->begin, en->end, en->end - en->begin,
                           st_dtype_name(en->dtype), sh, en->nbytes);
        }
        en->data = f->bytes + 8 + f->header_len + en->begin;
    }
    if (f->n > 1) qsort(f->entries, f->n, sizeof *f->entries, cmp_entry_name);
    for (size_t i = 1; i < f->n; i++)
        if (!strcmp(f->entries[i - 1].name, f->entries[i].name))
            return err_set(e, "%s: tensor " NAMEFMT " appears twice in the header", label, f->entries[i].name);
    if (f->nmeta > 1) qsort(f->meta, f->nmeta, sizeof *f->meta, cmp_meta_key);
    for (size_t i = 1; i < f->nmeta; i++)
        if (!strcmp(f->meta[i - 1].key, f->meta[i].key))
            return err_set(e, "%s: metadata key " NAMEFMT " appears twice", label, f->meta[i].key);

    /* Overlaps: sort by start and compare each tensor with the furthest end seen so far. Empty tensors
     * own no bytes and cannot overlap. Gaps are tolerated. */
    if (f->n > 1) {
        const StEntry **by = malloc(f->n * sizeof *by);
        if (!by) return err_set(e, "%s: out of memory checking %zu tensors", label, f->n);
        size_t m = 0;
        for (size_t i = 0; i < f->n; i++)
            if (f->entries[i].nbytes) by[m++] = &f->entries[i];
        if (m > 1) qsort(by, m, sizeof *by, cmp_entry_begin);
        const StEntry *last = NULL;
        for (size_t i = 0; i < m; i++) {
            if (last && by[i]->begin < last->end) {
                int rc = err_set(e, "%s: tensors " NAMEFMT " [%zu, %zu] and " NAMEFMT " [%zu, %zu] overlap in the "
                                    "data section", label, last->name, last->begin, last->end, by[i]->name,
                                 by[i]->begin, by[i]->end);
                free(by);
                return rc;
            }
            if (!last || by[i]->end > last->end) last = by[i];
        }
        free(by);
    }
    return 0;
}

/* ==================================================================================================== */
/* opening                                                                                               */
/* ==================================================================================================== */

/* The checks that need only the first 8 bytes and the size, shared by st_open (before it allocates the
 * file's buffer) and st_parse. */
static int check_prefix(const char *label, const unsigned char *first8, size_t size, uint64_t *hlen, I2vError *e) {
    if (size < 8)
        return err_set(e, "%s: %zu bytes is too short for a safetensors file (it starts with an 8-byte header "
                          "length)", label, size);
    uint64_t n = ld64(first8);
    if (n > ST_MAX_HEADER)
        return err_set(e, "%s: header length %llu exceeds the %zu-byte limit (not a safetensors file, or "
                          "corrupted)", label, (unsigned long long)n, ST_MAX_HEADER);
    if (n > size - 8)
        return err_set(e, "%s: header length %llu is beyond the end of the file (%zu bytes): the file is "
                          "truncated or not a safetensors file", label, (unsigned long long)n, size);
    *hlen = n;
    return 0;
}

void st_close(StFile *f) {
    free(f->path);
    free(f->owned);
    free(f->entries);
    free(f->meta);
    free(f->pool);
    memset(f, 0, sizeof *f);
}

int st_parse(StFile *f, const void *bytes, size_t size, const char *label, I2vError *e) {
    memset(f, 0, sizeof *f);
    if (!label) label = "(buffer)";
    uint64_t hlen;
    if (check_prefix(label, bytes, size, &hlen, e)) return -1;
    size_t llen = strlen(label) + 1;
    f->path = malloc(llen);
    Parser p = {0};
    p.pool = malloc((size_t)hlen + 1);
    if (!f->path || !p.pool) {
        free(p.pool);
        st_close(f);
        return err_set(e, "%s: out of memory for a header of %llu bytes", label, (unsigned long long)hlen);
    }
    memcpy(f->path, label, llen);
    f->bytes = bytes;
    f->size = size;
    f->header_len = (size_t)hlen;
    p.s = f->bytes + 8;
    p.n = (size_t)hlen;
    p.label = label;
    p.e = e;
    int rc = parse_header(&p);
    f->entries = p.entries;
    f->n = p.nentries;
    f->meta = p.meta;
    f->nmeta = p.nmeta;
    f->pool = p.pool;
    if (!rc) rc = validate(f, label, size - 8 - f->header_len, e);
    if (rc) st_close(f);
    return rc;
}

int st_open(StFile *f, const char *path, I2vError *e) {
    memset(f, 0, sizeof *f);
    FILE *fp = fopen(path, "rb");
    if (!fp) return err_set(e, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(fp), &sb) || !S_ISREG(sb.st_mode)) {
        fclose(fp);
        return err_set(e, "%s: not a regular file", path);
    }
    if ((uintmax_t)sb.st_size > SIZE_MAX) {
        fclose(fp);
        return err_set(e, "%s: too large for this machine's address space", path);
    }
    size_t size = (size_t)sb.st_size;
    unsigned char first8[8] = {0};
    uint64_t hlen;
    /* Look at the header length before allocating a buffer as large as the file. */
    size_t want8 = size < 8 ? size : 8;
    if (fread(first8, 1, want8, fp) != want8) {
        fclose(fp);
        return err_set(e, "%s: cannot read the first bytes: %s", path, strerror(errno));
    }
    if (check_prefix(path, first8, size, &hlen, e)) {
        fclose(fp);
        return -1;
    }
    unsigned char *buf = malloc(size);
    if (!buf) {
        fclose(fp);
        return err_set(e, "%s: out of memory reading %zu bytes", path, size);
    }
    memcpy(buf, first8, 8);
    errno = 0;
    size_t got = 8 + fread(buf + 8, 1, size - 8, fp);
    int read_errno = errno;
    fclose(fp);
    if (got != size) {
        free(buf);
        return err_set(e, "%s: read only %zu of its %zu bytes (%s)", path, got, size,
                       got < size && read_errno ? strerror(read_errno) : "the file changed while being read");
    }
    if (st_parse(f, buf, size, path, e)) {
        free(buf);
        return -1;
    }
    f->owned = buf;
    return 0;
}

const StEntry *st_find(const StFile *f, const char *name) {
    size_t lo = 0, hi = f->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(f->entries[mid].name, name);
        if (!c) return &f->entries[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

const char *st_meta_get(const StFile *f, const char *key) {
    size_t lo = 0, hi = f->nmeta;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(f->meta[mid].key, key);
        if (!c) return f->meta[mid].value;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

/* ==================================================================================================== */
/* reading tensors                                                                                       */
/* ==================================================================================================== */

static int shape_matches(const StEntry *en, const Tensor *t) {
    if (en->ndim != t->ndim) return 0;
    for (int i = 0; i < t->ndim; i++)
        if (en->shape[i] != (size_t)t->shape[i]) return 0;
    return 1;
}

/* The file's name for messages; a closed or failed StFile has none. */
static const char *fname(const StFile *f) { return f->path ? f->path : "(no file)"; }

static const StEntry *find_checked(const StFile *f, const char *name, DType dt, I2vError *e) {
    const StEntry *en = st_find(f, name);
    if (!en) {
        err_set(e, "%s: no tensor named " NAMEFMT " (the file has %zu tensors)", fname(f), name, f->n);
        return NULL;
    }
    if (!st_can_convert(en->dtype, dt)) {
        err_set(e, "%s: tensor " NAMEFMT " is %s in the file and cannot be loaded into a %s tensor", fname(f),
                name, st_dtype_name(en->dtype), target_name(dt));
        return NULL;
    }
    return en;
}

static void *tensor_buf(Tensor *t) { return t->dtype == DT_REAL ? (void *)t->data : t->ibuf; }

int st_read(const StFile *f, const char *name, Tensor *dst, I2vError *e) {
    const StEntry *en = find_checked(f, name, dst->dtype, e);
    if (!en) return -1;
    if (!shape_matches(en, dst)) {
        char a[160], b[160];
        entry_shape_str(en, a, sizeof a);
        shape_str(dst, b, sizeof b);
        return err_set(e, "%s: tensor " NAMEFMT " has shape %s in the file, %s expected", fname(f), name, a, b);
    }
    I2V_ASSERT(tensor_buf(dst) || !dst->numel, "st_read into tensor '%s' without data", name);
    convert(en, dst->dtype, tensor_buf(dst), en->numel);
    return 0;
}

int st_read_flat(const StFile *f, const char *name, DType dt, void *out, size_t numel, I2vError *e) {
    const StEntry *en = find_checked(f, name, dt, e);
    if (!en) return -1;
    if (en->numel != numel) {
        char a[160];
        entry_shape_str(en, a, sizeof a);
        return err_set(e, "%s: tensor " NAMEFMT " has shape %s (%zu elements) in the file, %zu expected", fname(f),
                       name, a, en->numel, numel);
    }
    convert(en, dt, out, numel);
    return 0;
}

Tensor *st_read_new(const StFile *f, const char *name, DType dt, I2vError *e) {
    const StEntry *en = find_checked(f, name, dt, e);
    if (!en) return NULL;
    if (en->ndim > I2V_MAXDIM) {
        err_set(e, "%s: tensor " NAMEFMT " has %d dimensions; i2v tensors have at most %d", fname(f), name,
                en->ndim, I2V_MAXDIM);
        return NULL;
    }
    int shape[I2V_MAXDIM];
    for (int i = 0; i < en->ndim; i++) shape[i] = (int)en->shape[i];   /* each <= INT_MAX (parse_shape) */
    Tensor *t = tensor_alloc_dtype(dt, en->ndim, shape);
    convert(en, dt, tensor_buf(t), en->numel);
    return t;
}

/* ==================================================================================================== */
/* loading a ParamSet                                                                                    */
/* ==================================================================================================== */

/* strcmp(a1 a2, b) for the concatenation a1 a2, without building it. */
static int cmp_concat(const char *a1, const char *a2, const char *b) {
    const unsigned char *x = (const unsigned char *)a1, *y = (const unsigned char *)b;
    for (; *x; x++, y++)
        if (*x != *y) return (int)*x - (int)*y;
    for (x = (const unsigned char *)a2; *x; x++, y++)
        if (*x != *y) return (int)*x - (int)*y;
    return -(int)*y;
}

static const StEntry *find_prefixed(const StFile *f, const char *prefix, const char *name) {
    size_t lo = 0, hi = f->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = cmp_concat(prefix, name, f->entries[mid].name);
        if (!c) return &f->entries[mid];
        if (c > 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

static int cmp_tensor_name(const void *a, const void *b) {
    return strcmp((*(Tensor *const *)a)->name, (*(Tensor *const *)b)->name);
}

static int set_has(Tensor *const *sorted, int n, const char *name) {
    int lo = 0, hi = n;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(sorted[mid]->name, name);
        if (!c) return 1;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return 0;
}

/* A message that lists problems until it is full, then counts the rest. */
typedef struct Msg {
    char s[sizeof(((I2vError *)0)->msg)];
    size_t len, limit;
    size_t omitted;
} Msg;

static void msg_add(Msg *m, const char *fmt, ...) I2V_PRINTF(2, 3);
static void msg_add(Msg *m, const char *fmt, ...) {
    char tmp[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    size_t len = strlen(tmp);
    if (m->omitted || m->len + len > m->limit) {   /* once one is left out, later ones are too: order stays */
        m->omitted++;
        return;
    }
    memcpy(m->s + m->len, tmp, len + 1);
    m->len += len;
}

int st_load_paramset(const StFile *f, ParamSet *ps, const StLoadOpts *opts, I2vError *e) {
    const StLoadOpts strict_default = {NULL, 1, 0};
    if (!opts) opts = &strict_default;
    const char *prefix = opts->prefix ? opts->prefix : "";
    size_t plen = strlen(prefix);
    I2V_ASSERT(ps->allocated || ps->n == 0, "st_load_paramset before paramset_alloc");

    const StEntry **match = calloc(ps->n ? (size_t)ps->n : 1, sizeof *match);
    Tensor **sorted = malloc((ps->n ? (size_t)ps->n : 1) * sizeof *sorted);
    if (!match || !sorted) {
        free(match);
        free(sorted);
        return err_set(e, "%s: out of memory", fname(f));
    }
    size_t nmissing = 0, nshape = 0, ndtype = 0, nextra = 0;
    for (int i = 0; i < ps->n; i++) {
        Tensor *t = ps->t[i];
        sorted[i] = t;
        const StEntry *en = find_prefixed(f, prefix, t->name);
        if (!en) { nmissing++; continue; }
        if (!shape_matches(en, t)) nshape++;
        else if (!st_can_convert(en->dtype, t->dtype)) ndtype++;
        else match[i] = en;
    }
    if (ps->n > 1) qsort(sorted, (size_t)ps->n, sizeof *sorted, cmp_tensor_name);
    int check_extra = opts->strict && !opts->allow_extra;
    if (check_extra)
        for (size_t i = 0; i < f->n; i++)
            if (!strncmp(f->entries[i].name, prefix, plen) && !set_has(sorted, ps->n, f->entries[i].name + plen))
                nextra++;
    if (!opts->strict) nmissing = 0;

    if (nmissing || nshape || ndtype || nextra) {
        Msg m = {.limit = sizeof m.s - 32};
        msg_add(&m, "%s: does not match the model%s%s%s:", fname(f), plen ? " (names prefixed '" : "", prefix,
                plen ? "')" : "");
        if (nmissing) {
            msg_add(&m, " %zu missing from the file:", nmissing);
            for (int i = 0; i < ps->n; i++)
                if (!find_prefixed(f, prefix, ps->t[i]->name)) msg_add(&m, " %s%s", prefix, ps->t[i]->name);
            msg_add(&m, ";");
        }
        if (nextra) {
            msg_add(&m, " %zu not in the model:", nextra);
            for (size_t i = 0; i < f->n; i++)
                if (!strncmp(f->entries[i].name, prefix, plen) && !set_has(sorted, ps->n, f->entries[i].name + plen))
                    msg_add(&m, " " NAMEFMT, f->entries[i].name);
            msg_add(&m, ";");
        }
        if (nshape) {
            msg_add(&m, " %zu with another shape:", nshape);
            for (int i = 0; i < ps->n; i++) {
                const StEntry *en = find_prefixed(f, prefix, ps->t[i]->name);
                if (!en || shape_matches(en, ps->t[i])) continue;
                char a[160], b[160];
                entry_shape_str(en, a, sizeof a);
                shape_str(ps->t[i], b, sizeof b);
                msg_add(&m, " %s%s is %s in the file, %s in the model,", prefix, ps->t[i]->name, a, b);
            }
            msg_add(&m, ";");
        }
        if (ndtype) {
            msg_add(&m, " %zu with an incompatible dtype:", ndtype);
            for (int i = 0; i < ps->n; i++) {
                const StEntry *en = find_prefixed(f, prefix, ps->t[i]->name);
                if (!en || !shape_matches(en, ps->t[i]) || st_can_convert(en->dtype, ps->t[i]->dtype)) continue;
                msg_add(&m, " %s%s is %s in the file, %s in the model,", prefix, ps->t[i]->name,
                        st_dtype_name(en->dtype), target_name(ps->t[i]->dtype));
            }
        }
        free(match);
        free(sorted);
        if (m.omitted) return err_set(e, "%s ... (and %zu more)", m.s, m.omitted);
        return err_set(e, "%s", m.s);
    }

    int loaded = 0;
    for (int i = 0; i < ps->n; i++) {
        if (!match[i]) continue;
        Tensor *t = ps->t[i];
        I2V_ASSERT(tensor_buf(t) || !t->numel, "tensor '%s' has no data", t->name);
        convert(match[i], t->dtype, tensor_buf(t), t->numel);
        loaded++;
    }
    free(match);
    free(sorted);
    return loaded;
}

int st_load_paramset_file(const char *path, ParamSet *ps, const StLoadOpts *opts, I2vError *e) {
    StFile f;
    if (st_open(&f, path, e)) return -1;
    int rc = st_load_paramset(&f, ps, opts, e);
    st_close(&f);
    return rc;
}

/* ==================================================================================================== */
/* writing                                                                                               */
/* ==================================================================================================== */

static char *dup_concat(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    char *s = xmalloc(la + lb + 1);
    memcpy(s, a, la);
    memcpy(s + la, b, lb + 1);
    return s;
}

void st_writer_init(StWriter *w) { memset(w, 0, sizeof *w); }

void st_writer_free(StWriter *w) {
    for (size_t i = 0; i < w->n; i++) free(w->items[i].name);
    for (size_t i = 0; i < w->nmeta; i++) {
        free(w->mkey[i]);
        free(w->mval[i]);
    }
    free(w->items);
    free(w->mkey);
    free(w->mval);
    memset(w, 0, sizeof *w);
}

/* Takes ownership of name. */
static void writer_add_owned(StWriter *w, char *name, DType dt, int ndim, const int *shape, const void *data) {
    I2V_ASSERT(ndim >= 0 && ndim <= I2V_MAXDIM, "st_writer: '%s' has %d dimensions", name, ndim);
    if (w->n == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 64;
        w->items = realloc(w->items, w->cap * sizeof *w->items);
        I2V_ASSERT(w->items, "out of memory");
    }
    StItem *it = &w->items[w->n++];
    memset(it, 0, sizeof *it);
    it->name = name;
    it->dtype = dt;
    it->ndim = ndim;
    it->numel = 1;
    for (int i = 0; i < ndim; i++) {
        I2V_ASSERT(shape[i] >= 0, "st_writer: '%s' has a negative dimension", name);
        it->shape[i] = shape[i];
        I2V_ASSERT(!shape[i] || it->numel <= SIZE_MAX / (size_t)shape[i], "st_writer: '%s' is too large", name);
        it->numel *= (size_t)shape[i];
    }
    it->data = data;
}

void st_writer_add_array(StWriter *w, const char *name, DType dt, int ndim, const int *shape, const void *data) {
    writer_add_owned(w, dup_concat("", name), dt, ndim, shape, data);
}

void st_writer_add(StWriter *w, const char *name, const Tensor *t) {
    st_writer_add_array(w, name, t->dtype, t->ndim, t->shape, t->dtype == DT_REAL ? (const void *)t->data : t->ibuf);
}

void st_writer_add_paramset(StWriter *w, const ParamSet *ps, const char *prefix) {
    for (int i = 0; i < ps->n; i++) {
        const Tensor *t = ps->t[i];
        writer_add_owned(w, dup_concat(prefix ? prefix : "", t->name), t->dtype, t->ndim, t->shape,
                         t->dtype == DT_REAL ? (const void *)t->data : t->ibuf);
    }
}

void st_writer_meta(StWriter *w, const char *key, const char *value) {
    for (size_t i = 0; i < w->nmeta; i++)
        if (!strcmp(w->mkey[i], key)) {
            free(w->mval[i]);
            w->mval[i] = dup_concat("", value);
            return;
        }
    if (w->nmeta == w->mcap) {
        w->mcap = w->mcap ? 2 * w->mcap : 8;
        w->mkey = realloc(w->mkey, w->mcap * sizeof *w->mkey);
        w->mval = realloc(w->mval, w->mcap * sizeof *w->mval);
        I2V_ASSERT(w->mkey && w->mval, "out of memory");
    }
    w->mkey[w->nmeta] = dup_concat("", key);
    w->mval[w->nmeta] = dup_concat("", value);
    w->nmeta++;
}

/* The file's element size and name for an i2v dtype. */
static size_t file_elem_size(DType dt) { return dt == DT_REAL ? 4 : dtype_size(dt); }
static const char *file_dtype_name(DType dt) { return dtype_name(dt); }  /* DT_REAL is spelled F32 */

/* A growing text buffer for the header (its size is bounded by the names the program chose). */
typedef struct Buf {
    char *s;
    size_t len, cap;
} Buf;

static void buf_put(Buf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 256;
        while (nc < b->len + n + 1) nc *= 2;
        b->s = realloc(b->s, nc);
        I2V_ASSERT(b->s, "out of memory for a header of %zu bytes", nc);
        b->cap = nc;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
}

static void buf_str(Buf *b, const char *s) { buf_put(b, s, strlen(s)); }

static void buf_fmt(Buf *b, const char *fmt, ...) I2V_PRINTF(2, 3);
static void buf_fmt(Buf *b, const char *fmt, ...) {
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    buf_str(b, tmp);
}

/* A JSON string literal: quotes, backslashes and control characters escaped, UTF-8 passed through. */
static void buf_json_string(Buf *b, const char *s) {
    buf_put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"') buf_put(b, "\\\"", 2);
        else if (*p == '\\') buf_put(b, "\\\\", 2);
        else if (*p < 0x20) buf_fmt(b, "\\u%04x", (unsigned)*p);
        else buf_put(b, (const char *)p, 1);
    }
    buf_put(b, "\"", 1);
}

/* What a write needs: the data order, each tensor's offset, the header text. */
typedef struct Plan {
    const StItem **order;       /* (n) items in data order */
    Buf header;                 /* padded with spaces to a multiple of 8 */
    size_t data_len;
} Plan;

static void plan_free(Plan *pl) {
    free(pl->order);
    free(pl->header.s);
    memset(pl, 0, sizeof *pl);
}

static int cmp_item_name(const void *a, const void *b) {
    return strcmp((*(const StItem *const *)a)->name, (*(const StItem *const *)b)->name);
}

/* Largest elements first, then by name: every tensor then starts at a multiple of its element size
 * (the data section itself starts at a multiple of 8), as the reference writer arranges it. */
static int cmp_item_layout(const void *a, const void *b) {
    const StItem *x = *(const StItem *const *)a, *y = *(const StItem *const *)b;
    size_t sx = file_elem_size(x->dtype), sy = file_elem_size(y->dtype);
    if (sx != sy) return sx > sy ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int plan_make(const StWriter *w, const char *label, Plan *pl, I2vError *e) {
    memset(pl, 0, sizeof *pl);
    for (size_t i = 0; i < w->n; i++) {
        const StItem *it = &w->items[i];
        if (!strcmp(it->name, "__metadata__"))
            return err_set(e, "%s: \"__metadata__\" cannot be a tensor name", label);
        if (!utf8_valid(it->name)) return err_set(e, "%s: tensor name " NAMEFMT " is not valid UTF-8", label, it->name);
        if (it->numel && !it->data)
            return err_set(e, "%s: tensor " NAMEFMT " has no data (was its ParamSet allocated?)", label, it->name);
    }
    for (size_t i = 0; i < w->nmeta; i++)
        if (!utf8_valid(w->mkey[i]) || !utf8_valid(w->mval[i]))
            return err_set(e, "%s: metadata entry " NAMEFMT " is not valid UTF-8", label, w->mkey[i]);
    if (w->n > SIZE_MAX / sizeof *pl->order) return err_set(e, "%s: too many tensors", label);
    pl->order = xmalloc((w->n ? w->n : 1) * sizeof *pl->order);
    for (size_t i = 0; i < w->n; i++) pl->order[i] = &w->items[i];
    if (w->n > 1) qsort(pl->order, w->n, sizeof *pl->order, cmp_item_name);
    for (size_t i = 1; i < w->n; i++)
        if (!strcmp(pl->order[i - 1]->name, pl->order[i]->name)) {
            int rc = err_set(e, "%s: tensor name " NAMEFMT " is used twice", label, pl->order[i]->name);
            plan_free(pl);
            return rc;
        }
    if (w->n > 1) qsort(pl->order, w->n, sizeof *pl->order, cmp_item_layout);

    Buf *h = &pl->header;
    buf_str(h, "{");
    int first = 1;
    if (w->nmeta) {
        buf_str(h, "\"__metadata__\":{");
        for (size_t i = 0; i < w->nmeta; i++) {
            if (i) buf_str(h, ",");
            buf_json_string(h, w->mkey[i]);
            buf_str(h, ":");
            buf_json_string(h, w->mval[i]);
        }
        buf_str(h, "}");
        first = 0;
    }
    size_t off = 0;
    for (size_t i = 0; i < w->n; i++) {
        const StItem *it = pl->order[i];
        size_t es = file_elem_size(it->dtype);
        if (it->numel > SIZE_MAX / es || it->numel * es > SIZE_MAX - off) {
            plan_free(pl);
            return err_set(e, "%s: the tensors are too large for one file", label);
        }
        size_t nb = it->numel * es;
        if (!first) buf_str(h, ",");
        first = 0;
        buf_json_string(h, it->name);
        buf_fmt(h, ":{\"dtype\":\"%s\",\"shape\":[", file_dtype_name(it->dtype));
        for (int d = 0; d < it->ndim; d++) buf_fmt(h, d ? ",%d" : "%d", it->shape[d]);
        buf_fmt(h, "],\"data_offsets\":[%zu,%zu]}", off, off + nb);
        off += nb;
    }
    buf_str(h, "}");
    while (h->len % 8) buf_str(h, " ");
    if (h->len > ST_MAX_HEADER) {
        size_t len = h->len;
        plan_free(pl);
        return err_set(e, "%s: the header would take %zu bytes, more than readers accept (%zu)", label, len,
                       ST_MAX_HEADER);
    }
    pl->data_len = off;
    return 0;
}

/* Where the bytes go: a file or a memory buffer of the exact size. */
typedef struct Sink {
    FILE *fp;
    unsigned char *mem;
    size_t len;
} Sink;

static int sink_put(Sink *s, const void *p, size_t n) {
    if (s->fp) return fwrite(p, 1, n, s->fp) == n ? 0 : -1;
    memcpy(s->mem + s->len, p, n);
    s->len += n;
    return 0;
}

/* One tensor's values in the file's encoding, converted through a small staging buffer so that no copy
 * of a large tensor is ever made. */
static int emit_item(Sink *s, const StItem *it) {
    enum { CHUNK = 4096 };
    unsigned char stage[CHUNK * 8];
    size_t es = file_elem_size(it->dtype);
    for (size_t i0 = 0; i0 < it->numel; i0 += CHUNK) {
        size_t m = it->numel - i0 < CHUNK ? it->numel - i0 : CHUNK;
        for (size_t i = 0; i < m; i++) {
            unsigned char *q = stage + i * es;
            switch (it->dtype) {
            case DT_REAL: st32(q, f32_bits(to_f32((double)((const real *)it->data)[i0 + i]))); break;
            case DT_U8: q[0] = ((const uint8_t *)it->data)[i0 + i]; break;
            case DT_BOOL: q[0] = ((const uint8_t *)it->data)[i0 + i] != 0; break;
            case DT_I32: st32(q, (uint32_t)((const int32_t *)it->data)[i0 + i]); break;
            case DT_I64: st64(q, (uint64_t)((const int64_t *)it->data)[i0 + i]); break;
            }
        }
        if (sink_put(s, stage, m * es)) return -1;
    }
    return 0;
}

static int emit(const StWriter *w, const Plan *pl, Sink *s) {
    unsigned char len8[8];
    st64(len8, (uint64_t)pl->header.len);
    if (sink_put(s, len8, 8) || sink_put(s, pl->header.s, pl->header.len)) return -1;
    for (size_t i = 0; i < w->n; i++)
        if (emit_item(s, pl->order[i])) return -1;
    return 0;
}

int st_writer_serialize(const StWriter *w, unsigned char **out, size_t *size, I2vError *e) {
    Plan pl;
    *out = NULL;
    *size = 0;
    if (plan_make(w, "(memory)", &pl, e)) return -1;
    if (pl.data_len > SIZE_MAX - 8 - pl.header.len) {
        plan_free(&pl);
        return err_set(e, "(memory): the tensors are too large");
    }
    size_t total = 8 + pl.header.len + pl.data_len;
    Sink s = {.mem = malloc(total)};
    if (!s.mem) {
        plan_free(&pl);
        return err_set(e, "(memory): out of memory for %zu bytes", total);
    }
    emit(w, &pl, &s);   /* a memory sink cannot fail */
    plan_free(&pl);
    *out = s.mem;
    *size = total;
    return 0;
}

/* Makes a rename durable: fsync the directory that holds path. Best effort: some file systems refuse. */
static void sync_parent_dir(const char *path) {
    const char *slash = strrchr(path, '/');
    char *dir = slash ? xmalloc((size_t)(slash - path) + 2) : NULL;
    if (dir) {
        size_t n = slash == path ? 1 : (size_t)(slash - path);   /* "/x" lives in "/" */
        memcpy(dir, path, n);
        dir[n] = 0;
    }
    int fd = open(dir ? dir : ".", O_RDONLY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(dir);
}

int st_writer_save(const StWriter *w, const char *path, I2vError *e) {
    Plan pl;
    if (plan_make(w, path, &pl, e)) return -1;
    size_t tlen = strlen(path) + 32;
    char *tmp = xmalloc(tlen);
    snprintf(tmp, tlen, "%s.tmp.%ld", path, (long)getpid());

    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        int rc = err_set(e, "%s: cannot create the temporary file %s: %s (nothing was written)", path, tmp,
                         strerror(errno));
        free(tmp);
        plan_free(&pl);
        return rc;
    }
    Sink s = {.fp = fp};
    const char *step = NULL;
    int saved_errno = 0;
    if (emit(w, &pl, &s)) step = "writing";
    else if (fflush(fp)) step = "flushing";
    else if (fsync(fileno(fp))) step = "syncing";
    if (step) saved_errno = errno;
    if (fclose(fp) && !step) {
        step = "closing";
        saved_errno = errno;
    }
    if (!step && rename(tmp, path)) {
        step = "renaming";
        saved_errno = errno;
    }
    int rc = 0;
    if (step) {
        remove(tmp);
        rc = err_set(e, "%s: saving failed while %s %s: %s (the previous file, if any, is unchanged)", path, step,
                     tmp, saved_errno ? strerror(saved_errno) : "unknown error");
    } else {
        sync_parent_dir(path);
    }
    free(tmp);
    plan_free(&pl);
    return rc;
}

int st_save(const char *path, size_t n, const char *const *names, const Tensor *const *tensors, size_t nmeta,
            const StMeta *meta, I2vError *e) {
    StWriter w;
    st_writer_init(&w);
    for (size_t i = 0; i < n; i++) st_writer_add(&w, names[i], tensors[i]);
    for (size_t i = 0; i < nmeta; i++) st_writer_meta(&w, meta[i].key, meta[i].value);
    int rc = st_writer_save(&w, path, e);
    st_writer_free(&w);
    return rc;
}

int st_save_paramset(const char *path, const ParamSet *ps, const char *prefix, size_t nmeta, const StMeta *meta,
                     I2vError *e) {
    StWriter w;
    st_writer_init(&w);
    st_writer_add_paramset(&w, ps, prefix);
    for (size_t i = 0; i < nmeta; i++) st_writer_meta(&w, meta[i].key, meta[i].value);
    int rc = st_writer_save(&w, path, e);
    st_writer_free(&w);
    return rc;
}
