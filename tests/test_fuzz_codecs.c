/* test_fuzz_codecs.c: a deterministic mutation fuzzer for every reader (PNG, JPEG, GIF, NPY, PPM, raw
 * zlib streams and the format dispatcher).
 *
 * From each valid fixture it makes thousands of mutants (bit flips, byte changes, "interesting" values in
 * 16/32-bit fields, truncations, inserted, deleted and duplicated spans, 1 to 3 of them stacked), chosen by
 * a seeded generator so a failure reproduces. For PNG, half of the mutants get their chunk CRCs repaired,
 * so the mutations reach inflate, the filters and the pixel expansion instead of stopping at the CRC.
 * Each mutant must decode or fail with a message naming the input; a crash, a hang, or (in the SAN build)
 * any memory error or undefined behaviour fails the run. About 230,000 mutants in all (a few seconds);
 * I2V_QUICK=1 (SAN and PORTABLE runs) divides the counts by 8, still hundreds to thousands per format; the
 * double build runs the quick counts too, since the codecs do not depend on `real`.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "formats/files.h"
#include "formats/imageio.h"
#include "formats/png.h"
#include "formats/jpeg.h"
#include "formats/ppm.h"
#include "formats/npy.h"
#include "formats/gif.h"
#include "formats/deflate.h"
#include "formats/image.h"

#define DATA "tests/data/"

/* splitmix64: a small seeded generator of its own, so the mutants depend on nothing outside this file */
typedef struct Rng64 {
    uint64_t s;
} Rng64;

static uint64_t rng_next(Rng64 *r) {
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint32_t rng_under(Rng64 *r, uint32_t n) { return (uint32_t)(rng_next(r) % n); }   /* n << 2^64: bias negligible */

typedef enum { F_PNG, F_JPEG, F_GIF, F_NPY, F_PPM, F_ZLIB, F_ANY } Format;
static const char *format_name[] = {"png", "jpeg", "gif", "npy", "ppm", "zlib", "any"};

typedef struct Stats {
    long ok, rejected, bad_message, malformed;
} Stats;

/* Runs one reader on one input; returns 1 if it decoded. A rejection must name the input. */
static int run_reader(Format f, const uint8_t *buf, size_t n, Stats *st) {
    const char *name = "mutant.bin";
    I2vError e;
    e.msg[0] = 0;
    int rc = -1;
    Image im;
    memset(&im, 0, sizeof im);
    switch (f) {
    case F_PNG: rc = png_decode(buf, n, name, &im, &e); break;
    case F_JPEG: rc = jpeg_decode(buf, n, name, &im, &e); break;
    case F_PPM: rc = ppm_decode(buf, n, name, &im, &e); break;
    case F_ANY: rc = image_decode(buf, n, name, &im, &e); break;
    case F_GIF: {
        uint8_t *rgb = NULL;
        size_t t, w, h;
        rc = gif_decode(buf, n, name, &rgb, &t, &w, &h, &e);
        if (rc == 0) {
            st->malformed += !(rgb && t > 0 && w > 0 && h > 0);
            free(rgb);
        }
        break;
    }
    case F_NPY: {
        NpyArray a;
        rc = npy_decode(buf, n, name, &a, &e);
        if (rc == 0) npy_free(&a);
        break;
    }
    case F_ZLIB: {
        size_t cap = 4 * n + 1024, got;
        uint8_t *out = xmalloc(cap);
        rc = zlib_decompress(buf, n, out, cap, &got, name, &e);
        free(out);
        break;
    }
    }
    if (f == F_PNG || f == F_JPEG || f == F_PPM || f == F_ANY) {
        if (rc == 0) {
            int sane = im.data && im.width > 0 && im.height > 0 && im.channels >= 1 && im.channels <= 4 &&
                       (im.depth == 8 || im.depth == 16) && image_bytes(&im) <= 2 * I2V_IMAGE_MAX_SAMPLES;
            st->malformed += !sane;
            image_free(&im);
        }
    }
    if (rc == 0) {
        st->ok++;
    } else {
        st->rejected++;
        if (!strstr(e.msg, name)) {
            st->bad_message++;
            if (st->bad_message <= 3) printf("  %s: message without the input's name: '%s'\n", format_name[f], e.msg);
        }
    }
    return rc == 0;
}

static void put_be(uint8_t *p, uint32_t v, int bytes) {
    for (int i = 0; i < bytes; i++) p[i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
}

/* Applies one random mutation to buf (n bytes, capacity cap); returns the new length. */
static size_t mutate_once(Rng64 *r, uint8_t *buf, size_t n, size_t cap) {
    static const uint32_t interesting[] = {0, 1, 2, 7, 8, 15, 16, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF,
                                           60000, 0x10000, 0x7FFFFFFF, 0x80000000u, 0xFFFFFFFFu};
    if (n == 0) return 0;
    size_t pos = rng_under(r, (uint32_t)n);
    switch (rng_under(r, 8)) {
    case 0: {   /* flip 1..4 bits */
        int k = 1 + (int)rng_under(r, 4);
        for (int i = 0; i < k; i++) buf[rng_under(r, (uint32_t)n)] ^= (uint8_t)(1u << rng_under(r, 8));
        return n;
    }
    case 1: {   /* 1..4 random bytes */
        int k = 1 + (int)rng_under(r, 4);
        for (int i = 0; i < k; i++) buf[rng_under(r, (uint32_t)n)] = (uint8_t)rng_next(r);
        return n;
    }
    case 2: {   /* an interesting value in an 8, 16 or 32-bit big-endian or little-endian field */
        int bytes = 1 << rng_under(r, 3);
        if (pos + (size_t)bytes > n) return n;
        uint32_t v = interesting[rng_under(r, sizeof interesting / sizeof interesting[0])];
        if (rng_under(r, 2)) {
            put_be(buf + pos, v, bytes);
        } else {
            for (int i = 0; i < bytes; i++) buf[pos + (size_t)i] = (uint8_t)(v >> (8 * i));
        }
        return n;
    }
    case 3:   /* truncate */
        return pos;
    case 4: {   /* insert 1..32 random bytes */
        size_t k = 1 + rng_under(r, 32);
        if (n + k > cap) return n;
        memmove(buf + pos + k, buf + pos, n - pos);
        for (size_t i = 0; i < k; i++) buf[pos + i] = (uint8_t)rng_next(r);
        return n + k;
    }
    case 5: {   /* delete 1..64 bytes */
        size_t k = 1 + rng_under(r, 64);
        if (pos + k > n) k = n - pos;
        memmove(buf + pos, buf + pos + k, n - pos - k);
        return n - k;
    }
    case 6: {   /* copy a span over another place */
        size_t src = rng_under(r, (uint32_t)n), k = 1 + rng_under(r, 48);
        if (src + k > n) k = n - src;
        if (pos + k > n) k = n - pos;
        memmove(buf + pos, buf + src, k);
        return n;
    }
    default: {   /* insert a copy of a span (repeated chunks, markers, blocks) */
        size_t src = rng_under(r, (uint32_t)n), k = 1 + rng_under(r, 64);
        if (src + k > n) k = n - src;
        if (n + k > cap) return n;
        uint8_t tmp[64];
        memcpy(tmp, buf + src, k);
        memmove(buf + pos + k, buf + pos, n - pos);
        memcpy(buf + pos, tmp, k);
        return n + k;
    }
    }
}

/* Recomputes every PNG chunk CRC that the chunk lengths still allow reaching. */
static void png_fix_crcs(uint8_t *b, size_t n) {
    size_t pos = 8;
    while (pos + 12 <= n) {
        uint32_t len = (uint32_t)b[pos] << 24 | (uint32_t)b[pos + 1] << 16 | (uint32_t)b[pos + 2] << 8 | b[pos + 3];
        if (len > n - pos - 12) break;
        put_be(b + pos + 8 + len, crc32_update(0, b + pos + 4, (size_t)len + 4), 4);
        pos += 12 + (size_t)len;
    }
}

static void fuzz(Format f, const char *what, const uint8_t *seed, size_t n, long count, uint64_t key, Stats *st) {
    Rng64 r = {key};
    size_t cap = n + 64 * 3 + 16;
    uint8_t *buf = xmalloc(cap);
    long ok0 = st->ok;
    double t0 = now_seconds();
    check(run_reader(f, seed, n, st), "%s: the unmutated fixture decodes", what);
    for (long i = 0; i < count; i++) {
        memcpy(buf, seed, n);
        size_t len = n;
        int k = 1 + (int)rng_under(&r, 3);
        for (int j = 0; j < k; j++) len = mutate_once(&r, buf, len, cap);
        if (f == F_PNG && rng_under(&r, 2)) png_fix_crcs(buf, len);
        /* the mutant is copied to an exact-size allocation, so ASan sees any read past its end */
        uint8_t *exact = xmalloc(len);
        memcpy(exact, buf, len);
        run_reader(f, exact, len, st);
        if (f == F_JPEG || f == F_PNG || f == F_PPM) run_reader(F_ANY, exact, len, st);
        free(exact);
    }
    printf("  %-26s %6ld mutants, %5ld decoded, %6.1f us each\n", what, count, st->ok - ok0,
           1e6 * (now_seconds() - t0) / (double)(count + 1));
    free(buf);
}

static uint8_t *load(const char *path, size_t *n) {
    uint8_t *b;
    I2vError e;
    if (read_file_bytes(path, &b, n, &e)) {
        check(0, "cannot read %s: %s", path, e.msg);
        return NULL;
    }
    return b;
}

int main(void) {
    int quick = quick_mode() || is_double_build();
    long scale_div = quick ? 8 : 1;
    /* for deeper runs by hand: I2V_FUZZ_SCALE=k multiplies the counts, I2V_FUZZ_SEED=s picks other mutants */
    long scale_mul = getenv("I2V_FUZZ_SCALE") ? atol(getenv("I2V_FUZZ_SCALE")) : 1;
    uint64_t seed = getenv("I2V_FUZZ_SEED") ? (uint64_t)atoll(getenv("I2V_FUZZ_SEED")) << 20 : 0;
    if (scale_mul < 1) scale_mul = 1;
    double t0 = now_seconds();
    Stats st = {0, 0, 0, 0};
    struct {
        Format f;
        const char *path;
        long count;
    } files[] = {
        {F_PNG, "png/rgb8.png", 1500},           {F_PNG, "png/pal8_trns.png", 1200},
        {F_PNG, "png/rgb8_adam7.png", 1200},     {F_PNG, "png/grey2_adam7.png", 1000},
        {F_PNG, "png/rgba16_adam7.png", 1000},   {F_PNG, "png/rgb8_fixed.png", 1000},
        {F_PNG, "png/rgb8_stored.png", 600},     {F_PNG, "png/grey4_trns.png", 800},
        {F_JPEG, "jpeg/base_420.jpg", 1500},     {F_JPEG, "jpeg/prog_420.jpg", 1500},
        {F_JPEG, "jpeg/restart_rows.jpg", 800},  {F_JPEG, "jpeg/prog_restart.jpg", 800},
        {F_JPEG, "jpeg/grey.jpg", 600},          {F_JPEG, "jpeg/base_422.jpg", 600},
        {F_JPEG, "jpeg/nonint.jpg", 600},        {F_JPEG, "jpeg/prog_grey.jpg", 600},
        {F_GIF, "gif/anim.gif", 2000},           {F_NPY, "npy/f32_234.npy", 1500},
        {F_NPY, "npy/v2_u8_22.npy", 1000},       {F_PPM, "ppm/p6_comments_1000.ppm", 800},
        {F_PPM, "ppm/p5_15.pgm", 400},
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[128];
        snprintf(path, sizeof path, DATA "%s", files[i].path);
        size_t n;
        uint8_t *b = load(path, &n);
        if (!b) continue;
        fuzz(files[i].f, files[i].path, b, n, 8 * files[i].count * scale_mul / scale_div, seed + 0xF022 + i, &st);
        free(b);
    }
    /* our own GIF writer's output (one palette, clear codes) and raw zlib streams of each block type */
    uint8_t rgb[2 * 24 * 20 * 3];
    for (size_t i = 0; i < sizeof rgb; i++) rgb[i] = (uint8_t)((i * 2654435761u) >> 27 << 3);
    size_t n;
    uint8_t *gif = gif_encode(rgb, 2, 24, 20, 5, 0, &n);
    fuzz(F_GIF, "gif_encode output", gif, n, 16000 * scale_mul / scale_div, seed + 0x61F, &st);
    free(gif);
    uint8_t src[3000];
    for (size_t i = 0; i < sizeof src; i++) src[i] = (uint8_t)(i < 1000 ? (size_t)"deflate me "[i % 11] : i < 2000 ? (i * 7) >> 3 : (i * 2654435761u) >> 24);
    size_t lens[3] = {40, 2000, 3000};   /* fixed Huffman, dynamic Huffman, mostly stored */
    for (int k = 0; k < 3; k++) {
        uint8_t *z = zlib_compress(src, lens[k], 6, &n);
        char what[32];
        snprintf(what, sizeof what, "zlib stream %zu bytes", lens[k]);
        fuzz(F_ZLIB, what, z, n, 12000 * scale_mul / scale_div, seed + 0x2B + (uint64_t)k, &st);
        free(z);
    }
    /* random bytes behind each format's magic */
    Rng64 r = {seed + 99};
    const char *magic[] = {"\x89PNG\r\n\x1a\n", "\xFF\xD8\xFF", "GIF89a", "\x93NUMPY\x01\x00", "P6\n"};
    Format fm[] = {F_PNG, F_JPEG, F_GIF, F_NPY, F_PPM};
    for (int m = 0; m < 5; m++)
        for (long i = 0; i < 3200 * scale_mul / scale_div; i++) {
            size_t len = strlen(magic[m]) + rng_under(&r, 300);
            uint8_t *b = xmalloc(len);
            memcpy(b, magic[m], strlen(magic[m]));
            for (size_t j = strlen(magic[m]); j < len; j++) b[j] = (uint8_t)rng_next(&r);
            run_reader(fm[m], b, len, &st);
            free(b);
        }
    double dt = now_seconds() - t0;
    printf("  fuzz: %ld inputs decoded, %ld rejected, in %.1f s%s\n", st.ok, st.rejected, dt,
           quick ? " (quick counts)" : "");
    check(st.bad_message == 0, "%ld rejections did not name the input", st.bad_message);
    check(st.malformed == 0, "%ld mutants decoded to malformed images", st.malformed);
    check(st.rejected > st.ok / 4, "the mutations were mostly harmless (%ld decoded, %ld rejected)", st.ok, st.rejected);
    return check_summary("test_fuzz_codecs");
}
