/* npy.c: NumPy's .npy format: magic, version, little-endian header length, a Python dict literal, raw data.
 * Read as hostile input: the header's literal is parsed by a small lexer, sizes are checked before
 * anything is allocated. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/npy.h"

#include "formats/files.h"

typedef struct Lex {
    const char *s;
    size_t n, i;
} Lex;

static void lex_space(Lex *l) {
    while (l->i < l->n && (l->s[l->i] == ' ' || l->s[l->i] == '\t' || l->s[l->i] == '\n' || l->s[l->i] == '\r'))
        l->i++;
}

static int lex_char(Lex *l, char c) {
    lex_space(l);
    if (l->i < l->n && l->s[l->i] == c) {
        l->i++;
        return 1;
    }
    return 0;
}

static int lex_string(Lex *l, char *dst, size_t cap) {   /* a '...' or "..." literal without escapes */
    lex_space(l);
    if (l->i >= l->n || (l->s[l->i] != '\'' && l->s[l->i] != '"')) return -1;
    char q = l->s[l->i++];
    size_t k = 0;
    while (l->i < l->n && l->s[l->i] != q) {
        if (k + 1 >= cap) return -1;
        dst[k++] = l->s[l->i++];
    }
    if (l->i >= l->n) return -1;
    l->i++;
    dst[k] = 0;
    return 0;
}

static int lex_word(Lex *l, const char *w) {
    lex_space(l);
    size_t k = strlen(w);
    if (l->n - l->i >= k && !memcmp(l->s + l->i, w, k)) {
        l->i += k;
        return 1;
    }
    return 0;
}

int npy_decode(const uint8_t *buf, size_t n, const char *name, NpyArray *out, I2vError *err) {
    memset(out, 0, sizeof *out);
    if (n < 10 || memcmp(buf, "\x93NUMPY", 6) != 0) return err_set(err, "%s: not an NPY file (bad magic)", name);
    int major = buf[6];
    size_t hlen, start;
    if (major == 1) {
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8;
        start = 10;
    } else if (major == 2 || major == 3) {
        if (n < 12) return err_set(err, "%s: NPY header truncated", name);
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
        start = 12;
    } else {
        return err_set(err, "%s: NPY format version %d.%d (expected 1.0, 2.0 or 3.0)", name, major, buf[7]);
    }
    if (hlen > n - start) return err_set(err, "%s: NPY header of %zu bytes runs past the end of the file", name, hlen);
    Lex l = {(const char *)buf + start, hlen, 0};
    char descr[32] = "", key[32];
    int have_descr = 0, have_order = 0, have_shape = 0, fortran = 0;
    if (!lex_char(&l, '{')) return err_set(err, "%s: NPY header does not start with a dict '{'", name);
    while (!lex_char(&l, '}')) {
        if (lex_string(&l, key, sizeof key) || !lex_char(&l, ':'))
            return err_set(err, "%s: NPY header: expected 'key': value at offset %zu", name, l.i);
        if ((!strcmp(key, "descr") && have_descr) || (!strcmp(key, "fortran_order") && have_order) ||
            (!strcmp(key, "shape") && have_shape))   /* a shape given twice would hold both tuples' dimensions */
            return err_set(err, "%s: NPY header has the key '%s' twice", name, key);
        if (!strcmp(key, "descr")) {
            if (lex_string(&l, descr, sizeof descr)) return err_set(err, "%s: NPY 'descr' is not a string", name);
            have_descr = 1;
        } else if (!strcmp(key, "fortran_order")) {
            if (lex_word(&l, "True")) fortran = 1;
            else if (lex_word(&l, "False")) fortran = 0;
            else return err_set(err, "%s: NPY 'fortran_order' is not True or False", name);
            have_order = 1;
        } else if (!strcmp(key, "shape")) {
            if (!lex_char(&l, '(')) return err_set(err, "%s: NPY 'shape' is not a tuple", name);
            out->count = 1;
            while (!lex_char(&l, ')')) {
                lex_space(&l);
                unsigned long long v = 0;
                int digits = 0;
                while (l.i < l.n && isdigit((unsigned char)l.s[l.i]) && digits < 19) {
                    v = v * 10 + (unsigned long long)(l.s[l.i++] - '0');
                    digits++;
                }
                if (!digits || out->ndim >= NPY_MAX_DIMS || v > ((size_t)1 << 40))
                    return err_set(err, "%s: NPY 'shape': expected at most %d non-negative dimensions", name,
                                   NPY_MAX_DIMS);
                out->shape[out->ndim++] = (size_t)v;
                if (v && out->count > (((size_t)1 << 40) / v))
                    return err_set(err, "%s: NPY 'shape' has too many elements", name);
                out->count *= (size_t)v;
                if (!lex_char(&l, ',') && !(lex_space(&l), l.i < l.n && l.s[l.i] == ')'))
                    return err_set(err, "%s: NPY 'shape': expected ',' or ')' at offset %zu", name, l.i);
            }
            have_shape = 1;
        } else {
            return err_set(err, "%s: NPY header has an unknown key '%s'", name, key);
        }
        if (!lex_char(&l, ',') && !(lex_space(&l), l.i < l.n && l.s[l.i] == '}'))
            return err_set(err, "%s: NPY header: expected ',' or '}' at offset %zu", name, l.i);
    }
    if (!have_descr || !have_order || !have_shape)
        return err_set(err, "%s: NPY header lacks %s", name, !have_descr ? "'descr'" : !have_order ? "'fortran_order'" : "'shape'");
    if (fortran)
        return err_set(err, "%s: NPY array is in Fortran order; save it C-ordered (np.ascontiguousarray)", name);
    size_t itemsize;
    if (!strcmp(descr, "<f4")) {
        out->dtype = NPY_F32;
        itemsize = 4;
    } else if (!strcmp(descr, "<f8")) {
        out->dtype = NPY_F64;
        itemsize = 8;
    } else if (!strcmp(descr, "|u1") || !strcmp(descr, "<u1") || !strcmp(descr, "u1")) {
        out->dtype = NPY_U8;
        itemsize = 1;
    } else {
        return err_set(err, "%s: NPY dtype '%s' is not supported (expected '<f4' float32, '<f8' float64 or '|u1' "
                       "uint8, little-endian; convert with .astype)", name, descr);
    }
    const uint8_t *p = buf + start + hlen;
    size_t left = n - start - hlen;
    if (left / itemsize < out->count)
        return err_set(err, "%s: NPY data truncated: %zu bytes for %zu elements of %zu bytes", name, left, out->count,
                       itemsize);
    out->data = xmalloc(out->count * itemsize);
    if (itemsize == 1) {
        memcpy(out->data, p, out->count);
    } else if (itemsize == 4) {
        float *f = out->data;
        for (size_t i = 0; i < out->count; i++) {
            uint32_t u = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 |
                         (uint32_t)p[4 * i + 3] << 24;
            memcpy(&f[i], &u, 4);
        }
    } else {
        double *f = out->data;
        for (size_t i = 0; i < out->count; i++) {
            uint64_t u = 0;
            for (int b = 7; b >= 0; b--) u = u << 8 | p[8 * i + b];
            memcpy(&f[i], &u, 8);
        }
    }
    return 0;
}

int npy_read(const char *path, NpyArray *out, I2vError *err) {
    uint8_t *buf;
    size_t n;
    memset(out, 0, sizeof *out);
    if (read_file_bytes(path, &buf, &n, err)) return -1;
    int rc = npy_decode(buf, n, path, out, err);
    free(buf);
    return rc;
}

uint8_t *npy_encode(NpyDtype dtype, int ndim, const size_t *shape, const void *data, size_t *n) {
    I2V_ASSERT(ndim >= 0 && ndim <= NPY_MAX_DIMS, "npy_encode: %d dimensions", ndim);
    char hdr[512];
    size_t count = 1;
    int k = snprintf(hdr, sizeof hdr, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                     dtype == NPY_F32 ? "<f4" : dtype == NPY_F64 ? "<f8" : "|u1");
    for (int i = 0; i < ndim; i++) {
        k += snprintf(hdr + k, sizeof hdr - (size_t)k, "%zu%s", shape[i], ndim == 1 ? "," : i + 1 < ndim ? ", " : "");
        count *= shape[i];
    }
    k += snprintf(hdr + k, sizeof hdr - (size_t)k, "), }");
    /* pad with spaces and a final newline so that magic + length + header is a multiple of 64 */
    size_t total = 10 + (size_t)k + 1, padded = (total + 63) / 64 * 64, hlen = padded - 10;
    size_t itemsize = dtype == NPY_F32 ? 4 : dtype == NPY_F64 ? 8 : 1;
    uint8_t *b = xmalloc(padded + count * itemsize);
    memcpy(b, "\x93NUMPY\x01\x00", 8);
    b[8] = (uint8_t)hlen;
    b[9] = (uint8_t)(hlen >> 8);
    memcpy(b + 10, hdr, (size_t)k);
    memset(b + 10 + k, ' ', hlen - (size_t)k - 1);
    b[padded - 1] = '\n';
    uint8_t *p = b + padded;
    if (itemsize == 1) {
        memcpy(p, data, count);
    } else if (itemsize == 8) {
        const double *f = data;
        for (size_t i = 0; i < count; i++) {
            uint64_t u;
            memcpy(&u, &f[i], 8);
            for (int q = 0; q < 8; q++) p[8 * i + q] = (uint8_t)(u >> (8 * q));
        }
    } else {
        const float *f = data;
        for (size_t i = 0; i < count; i++) {
            uint32_t u;
            memcpy(&u, &f[i], 4);
            p[4 * i] = (uint8_t)u;
            p[4 * i + 1] = (uint8_t)(u >> 8);
            p[4 * i + 2] = (uint8_t)(u >> 16);
            p[4 * i + 3] = (uint8_t)(u >> 24);
        }
    }
    *n = padded + count * itemsize;
    return b;
}

int npy_write(const char *path, NpyDtype dtype, int ndim, const size_t *shape, const void *data, I2vError *err) {
    size_t n;
    uint8_t *buf = npy_encode(dtype, ndim, shape, data, &n);
    int rc = write_file_bytes(path, buf, n, err);
    free(buf);
    return rc;
}

void npy_free(NpyArray *a) {
    if (!a) return;
    free(a->data);
    memset(a, 0, sizeof *a);
}
