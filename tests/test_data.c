/* test_data.c: the data pipeline: TFRecord / protobuf reading (against a fixture written by an independent
 * Python encoder, tools/make_tfrecord_fixture.py), CRC and truncation errors, a deterministic mutation
 * fuzzer over the TFRecord and Example parsers, the BAIR converter, the synthetic set (determinism,
 * trajectory recovery within 0.5 px, control factors), the motion metric, the transforms (kornia semantics,
 * one parameter set per clip), the four folder layouts loaded from exports of the synthetic set (shapes,
 * value range, frame order, repetitions, control values), errors for missing frames and split lists,
 * the shipped split lists, the loader (shuffle, drop_last, seek) with and without the prefetch thread, and
 * the speed of a synthetic batch.
 * Everything on disk lives in a fresh folder under /tmp that is removed at the end.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "data.h"
#include "program/prepare.h"
#include "formats/files.h"
#include "formats/image.h"

#define FIXTURE "tests/data/data/example.tfrecords"

static char tmp_root[256];

static int contains(const char *s, const char *sub) { return strstr(s, sub) != NULL; }

static void rm_rf(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return;
    if (S_ISDIR(st.st_mode)) {
        char **names;
        size_t n;
        if (data_list_dir(path, 0, &names, &n, NULL) == 0) {
            for (size_t i = 0; i < n; i++) {
                char p[DATA_PATH_MAX];
                data_join(p, sizeof p, NULL, "%s/%s", path, names[i]);
                rm_rf(p);
            }
            data_free_names(names, n);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

static void tmp_path(char *out, size_t cap, const char *rel) { data_join(out, cap, NULL, "%s/%s", tmp_root, rel); }

/* ==== CRC-32C and the fixture ================================================================================= */
static void test_crc(void) {
    const uint8_t *s = (const uint8_t *)"123456789";
    check(crc32c_update(0, s, 9) == 0xE3069283u, "crc32c check value: %08x", crc32c_update(0, s, 9));
    uint32_t c = crc32c_update(0, s, 4);
    c = crc32c_update(c, s + 4, 5);
    check(c == 0xE3069283u, "crc32c incremental: %08x", c);
    uint8_t zeros[32] = {0};
    check(crc32c_update(0, zeros, 32) == 0x8A9136AAu, "crc32c of 32 zero bytes (RFC 3720 B.4): %08x",
          crc32c_update(0, zeros, 32));
}

static int feature_is(const TfExample *ex, const char *key, TfKind kind, size_t count) {
    const TfFeature *f = tf_example_find(ex, key);
    return f && f->kind == kind && f->count == count;
}

static void test_fixture(void) {
    uint8_t *buf;
    size_t n;
    I2vError e;
    if (!check(read_file_bytes(FIXTURE, &buf, &n, &e) == 0, "read %s: %s", FIXTURE, e.msg)) return;
    size_t pos = 0, len;
    const uint8_t *rec[4];
    size_t rlen[4];
    int k = 0, r;
    while (k < 4 && (r = tfr_next(buf, n, &pos, &rec[k], &len, FIXTURE, &e)) == 1) rlen[k++] = len;
    check(k == 3 && r == 0, "fixture: %d records (want 3), last status %d %s", k, r, r < 0 ? e.msg : "");
    TfExample ex;
    if (k >= 1 && check(tf_example_parse(rec[0], rlen[0], "rec1", &ex, &e) == 0, "parse record 1: %s", e.msg)) {
        check(ex.n == 8, "record 1 has %zu map entries, want 8", ex.n);
        check(feature_is(&ex, "a/bytes", TF_BYTES, 3), "a/bytes: 3 bytes values");
        const uint8_t *p;
        size_t l;
        const TfFeature *f = tf_example_find(&ex, "a/bytes");
        check(f && tf_feature_bytes(f, 0, &p, &l) == 0 && l == 5 && memcmp(p, "hello", 5) == 0, "a/bytes[0] = hello");
        check(f && tf_feature_bytes(f, 1, &p, &l) == 0 && l == 0, "a/bytes[1] is empty");
        int ok = f && tf_feature_bytes(f, 2, &p, &l) == 0 && l == 256;
        for (int i = 0; ok && i < 256; i++) ok = p[i] == i;
        check(ok, "a/bytes[2] = 0..255");
        check(f && tf_feature_bytes(f, 3, &p, &l) == -1, "a/bytes[3] does not exist");
        float v[4];
        f = tf_example_find(&ex, "f/packed");
        check(f && f->kind == TF_FLOAT && tf_feature_floats(f, v, 4) == 3 && v[0] == 1.5f && v[1] == -2.25f &&
                  v[2] == 3e-5f, "f/packed = 1.5, -2.25, 3e-5");
        f = tf_example_find(&ex, "f/unpacked");
        check(f && f->count == 2 && tf_feature_floats(f, v, 4) == 2 && v[0] == 0.5f && v[1] == 7.0f,
              "f/unpacked = 0.5, 7");
        int64_t iv[5];
        f = tf_example_find(&ex, "i/packed");
        check(f && f->kind == TF_INT64 && tf_feature_int64s(f, iv, 5) == 4 && iv[0] == 1 && iv[1] == -1 &&
                  iv[2] == 300 && iv[3] == ((int64_t)1 << 40), "i/packed = 1, -1, 300, 2^40");
        f = tf_example_find(&ex, "i/unpacked");
        check(f && tf_feature_int64s(f, iv, 5) == 2 && iv[0] == 5 && iv[1] == -7, "i/unpacked = 5, -7");
        check(feature_is(&ex, "empty", TF_NONE, 0), "an empty Feature has no kind");
        f = tf_example_find(&ex, "dup");
        check(f && tf_feature_int64s(f, iv, 1) == 1 && iv[0] == 2, "a repeated key: the last entry wins");
        check(tf_example_find(&ex, "missing") == NULL, "an absent key is not found");
        tf_example_free(&ex);
    }
    if (k >= 2 && check(tf_example_parse(rec[1], rlen[1], "rec2", &ex, &e) == 0, "parse record 2: %s", e.msg)) {
        float v[3];
        const TfFeature *f = tf_example_find(&ex, "0/endeffector_pos");
        check(f && tf_feature_floats(f, v, 3) == 3 && v[0] == 0.25f && v[1] == -0.125f && v[2] == 0.0625f,
              "record 2: 0/endeffector_pos");
        tf_example_free(&ex);
    }
    if (k >= 3 && check(tf_example_parse(rec[2], rlen[2], "rec3", &ex, &e) == 0, "parse record 3: %s", e.msg)) {
        check(ex.n == 0, "record 3 is an empty Example");
        tf_example_free(&ex);
    }
    /* the streaming reader sees the same records */
    TfrReader rd;
    if (check(tfr_open(&rd, FIXTURE, &e) == 0, "tfr_open: %s", e.msg)) {
        int m = 0, same = 1;
        const uint8_t *d;
        while ((r = tfr_read(&rd, &d, &len, &e)) == 1) {
            if (m < k) same = same && len == rlen[m] && memcmp(d, rec[m], len) == 0;
            m++;
        }
        check(r == 0 && m == 3 && same, "tfr_read: %d records, identical to tfr_next", m);
        tfr_close(&rd);
    }
    free(buf);
}

static void test_tfrecord_errors(void) {
    uint8_t *buf;
    size_t n;
    I2vError e;
    if (read_file_bytes(FIXTURE, &buf, &n, &e)) return;
    uint8_t *m = xmalloc(n);
    const uint8_t *rec;
    size_t len, pos;
    /* a flipped data byte, then a flipped length byte */
    memcpy(m, buf, n);
    m[20] ^= 0x10;
    pos = 0;
    check(tfr_next(m, n, &pos, &rec, &len, "flip.tfrecords", &e) == -1 && contains(e.msg, "CRC") &&
              contains(e.msg, "flip.tfrecords"), "a corrupt data byte is a CRC error: %s", e.msg);
    memcpy(m, buf, n);
    m[1] ^= 0x01;
    pos = 0;
    check(tfr_next(m, n, &pos, &rec, &len, "len.tfrecords", &e) == -1 && contains(e.msg, "length"),
          "a corrupt length is a CRC error on the length: %s", e.msg);
    /* every truncation: a clean end at a record boundary, otherwise an error that says truncated */
    size_t bounds[4], nb = 0;
    pos = 0;
    while (tfr_next(buf, n, &pos, &rec, &len, "x", &e) == 1) bounds[nb++] = pos;
    int ok = 1;
    for (size_t cut = 0; cut < n; cut++) {
        pos = 0;
        int r, recs = 0;
        while ((r = tfr_next(buf, cut, &pos, &rec, &len, "cut.tfrecords", &e)) == 1) recs++;
        int boundary = cut == 0;
        for (size_t b = 0; b < nb; b++) boundary |= cut == bounds[b];
        if (boundary) ok &= r == 0;
        else ok &= r == -1 && contains(e.msg, "truncated") && contains(e.msg, "cut.tfrecords");
    }
    check(ok, "every truncation of the fixture ends cleanly at a boundary or is reported as truncated");
    /* the file reader on a truncated file */
    char path[DATA_PATH_MAX];
    tmp_path(path, sizeof path, "trunc.tfrecords");
    write_file_bytes(path, buf, n - 3, &e);
    TfrReader rd;
    if (tfr_open(&rd, path, &e) == 0) {
        int r, recs = 0;
        while ((r = tfr_read(&rd, &rec, &len, &e)) == 1) recs++;
        check(r == -1 && recs == 2 && contains(e.msg, "truncated") && contains(e.msg, "trunc.tfrecords"),
              "tfr_read on a truncated file: %d records then: %s", recs, e.msg);
        tfr_close(&rd);
    }
    /* a length field claiming 2^40 bytes (with a valid CRC) is rejected before any allocation */
    uint8_t big[16];
    uint64_t l = (uint64_t)1 << 40;
    for (int i = 0; i < 8; i++) big[i] = (uint8_t)(l >> (8 * i));
    uint32_t c = tfr_masked_crc(big, 8);
    for (int i = 0; i < 4; i++) big[8 + i] = (uint8_t)(c >> (8 * i));
    memset(big + 12, 0, 4);
    pos = 0;
    check(tfr_next(big, 16, &pos, &rec, &len, "huge", &e) == -1 && contains(e.msg, "truncated"),
          "a huge length is rejected: %s", e.msg);
    tmp_path(path, sizeof path, "huge.tfrecords");
    write_file_bytes(path, big, 16, &e);
    if (tfr_open(&rd, path, &e) == 0) {
        check(tfr_read(&rd, &rec, &len, &e) == -1 && rd.cap == 0, "tfr_read rejects a huge length without allocating");
        tfr_close(&rd);
    }
    /* protobuf errors name the input */
    const uint8_t group[] = {0x0b, 0x0c};
    TfExample ex;
    check(tf_example_parse(group, 2, "grp", &ex, &e) == -1 && contains(e.msg, "group") && contains(e.msg, "grp"),
          "a group is rejected: %s", e.msg);
    const uint8_t over[] = {0x0a, 0x05, 0x0a};
    check(tf_example_parse(over, 3, "over", &ex, &e) == -1 && contains(e.msg, "past the end"),
          "a length past the end: %s", e.msg);
    const uint8_t badfloat[] = {0x0a, 0x0c, 0x0a, 0x0a, 0x0a, 0x01, 'k', 0x12, 0x05, 0x12, 0x03, 0x0a, 0x01, 0x00};
    check(tf_example_parse(badfloat, sizeof badfloat, "pk", &ex, &e) == -1 && contains(e.msg, "multiple of 4"),
          "a packed float list of 1 byte: %s", e.msg);
    free(m);
    free(buf);
}

static void test_builder(void) {
    TfBuilder b = {NULL, 0, 0};
    const uint8_t *vals[2] = {(const uint8_t *)"ab", (const uint8_t *)"xyz"};
    size_t lens[2] = {2, 3};
    tf_builder_bytes(&b, "b", vals, lens, 2);
    float fv[3] = {1.25f, -0.0f, 1e30f};
    tf_builder_floats(&b, "f", fv, 3);
    int64_t iv[3] = {-5, 0, INT64_MAX};
    tf_builder_int64s(&b, "i", iv, 3);
    tf_builder_floats(&b, "none", NULL, 0);
    size_t n;
    uint8_t *msg = tf_builder_finish(&b, &n);
    TfExample ex;
    I2vError e;
    if (check(tf_example_parse(msg, n, "built", &ex, &e) == 0, "parse a built Example: %s", e.msg)) {
        const TfFeature *f = tf_example_find(&ex, "b");
        const uint8_t *p;
        size_t l;
        check(f && f->count == 2 && tf_feature_bytes(f, 1, &p, &l) == 0 && l == 3 && memcmp(p, "xyz", 3) == 0,
              "built bytes list");
        float g[3];
        f = tf_example_find(&ex, "f");
        check(f && tf_feature_floats(f, g, 3) == 3 && g[0] == fv[0] && g[2] == fv[2], "built float list");
        int64_t h[3];
        f = tf_example_find(&ex, "i");
        check(f && tf_feature_int64s(f, h, 3) == 3 && h[0] == -5 && h[1] == 0 && h[2] == INT64_MAX, "built int64 list");
        f = tf_example_find(&ex, "none");
        check(f && f->kind == TF_FLOAT && f->count == 0, "an empty float list keeps its kind");
        tf_example_free(&ex);
    }
    free(msg);
}

/* ==== fuzzing ================================================================================================= */
typedef struct Fz {
    uint64_t s;
} Fz;
static uint64_t fz_next(Fz *r) {
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static size_t fz_below(Fz *r, size_t n) { return n ? (size_t)(fz_next(r) % n) : 0; }

/* One to three stacked mutations; returns the new length (buffer capacity cap). */
static size_t mutate(Fz *r, uint8_t *b, size_t n, size_t cap) {
    int k = 1 + (int)fz_below(r, 3);
    static const uint8_t interesting[] = {0x00, 0x01, 0x7f, 0x80, 0xff, 0x0a, 0x12, 0x0d, 0x08, 0x05, 0x02};
    for (int i = 0; i < k && n > 0; i++) {
        size_t at = fz_below(r, n);
        switch (fz_below(r, 7)) {
        case 0: b[at] ^= (uint8_t)(1u << fz_below(r, 8)); break;
        case 1: b[at] = (uint8_t)fz_next(r); break;
        case 2: b[at] = interesting[fz_below(r, sizeof interesting)]; break;
        case 3: n = at + fz_below(r, n - at); break;   /* truncate */
        case 4: {                                        /* delete a span */
            size_t l = 1 + fz_below(r, 16);
            if (at + l > n) l = n - at;
            memmove(b + at, b + at + l, n - at - l);
            n -= l;
            break;
        }
        case 5: {                                        /* duplicate a span */
            size_t l = 1 + fz_below(r, 16);
            if (at + l > n) l = n - at;
            if (n + l <= cap) {
                memmove(b + at + l, b + at, n - at);
                n += l;
            }
            break;
        }
        default: b[at] = (uint8_t)(b[at] + 1 + fz_below(r, 3)); break;   /* a varint nudge */
        }
    }
    return n;
}

typedef struct FuzzStats {
    long ok, rejected, bad_message, inconsistent;
} FuzzStats;

/* Parses an Example and reads every value back; a rejection must name the input. */
static void fuzz_example(const uint8_t *buf, size_t n, FuzzStats *st, int bair) {
    TfExample ex;
    I2vError e;
    e.msg[0] = 0;
    if (tf_example_parse(buf, n, "mutant.rec", &ex, &e)) {
        st->rejected++;
        st->bad_message += !contains(e.msg, "mutant.rec");
        return;
    }
    st->ok++;
    for (size_t i = 0; i < ex.n; i++) {
        const TfFeature *f = &ex.f[i];
        size_t got = 0;
        if (f->kind == TF_FLOAT) {
            float *v = xmalloc((f->count ? f->count : 1) * sizeof(float));
            got = tf_feature_floats(f, v, f->count);
            free(v);
        } else if (f->kind == TF_INT64) {
            int64_t *v = xmalloc((f->count ? f->count : 1) * sizeof(int64_t));
            got = tf_feature_int64s(f, v, f->count);
            free(v);
        } else if (f->kind == TF_BYTES) {
            const uint8_t *p;
            size_t l;
            for (got = 0; got < f->count && tf_feature_bytes(f, got, &p, &l) == 0; got++) {}
        }
        st->inconsistent += got != f->count;
    }
    if (bair) {
        uint8_t *frames = xmalloc((size_t)BAIR_FRAMES * 64 * 64 * 3);
        double pos[BAIR_FRAMES * 3];
        if (bair_example_decode(&ex, "mutant.rec", frames, pos, &e)) st->bad_message += !contains(e.msg, "mutant.rec");
        free(frames);
    }
    tf_example_free(&ex);
}

static void test_fuzz(void) {
    uint8_t *fix;
    size_t nfix;
    I2vError e;
    if (read_file_bytes(FIXTURE, &fix, &nfix, &e)) return;
    int rounds = quick_mode() || is_double_build() ? 3000 : 20000;
    Fz r = {12345};
    FuzzStats st = {0, 0, 0, 0};
    size_t cap = nfix + 64;
    uint8_t *m = xmalloc(cap);
    long framing_rejected = 0, framing_bad = 0;
    /* 1. the framed file: framing errors, and records that pass reach the Example parser */
    for (int it = 0; it < rounds; it++) {
        memcpy(m, fix, nfix);
        size_t n = mutate(&r, m, nfix, cap);
        size_t pos = 0, len;
        const uint8_t *rec;
        int rc;
        while ((rc = tfr_next(m, n, &pos, &rec, &len, "mutant.tfrecords", &e)) == 1) fuzz_example(rec, len, &st, 0);
        if (rc < 0) {
            framing_rejected++;
            framing_bad += !contains(e.msg, "mutant.tfrecords");
        }
    }
    /* 2. the Example payloads themselves (the CRC would stop most mutants above) */
    size_t pos = 0, len;
    const uint8_t *rec;
    tfr_next(fix, nfix, &pos, &rec, &len, "fixture", &e);
    uint8_t *payload = xmalloc(len + 64);
    for (int it = 0; it < 4 * rounds; it++) {
        memcpy(payload, rec, len);
        size_t n = mutate(&r, payload, len, len + 64);
        fuzz_example(payload, n, &st, 0);
    }
    /* 3. a BAIR trajectory Example through bair_example_decode */
    SynthConfig sc = {64, BAIR_FRAMES, 1, 0, 0.5, 3.0, 1.0, 1.0};
    real *video = xmalloc((size_t)BAIR_FRAMES * 3 * 64 * 64 * sizeof(real));
    uint8_t *rgb = xmalloc((size_t)BAIR_FRAMES * 64 * 64 * 3);
    SynthTruth *t = xmalloc(sizeof *t);
    synth_video(&sc, 7, 0, video, t);
    video_to_rgb8(video, BAIR_FRAMES, 64, 64, rgb);
    TfBuilder b = {NULL, 0, 0};
    char key[64];
    for (int i = 0; i < BAIR_FRAMES; i++) {
        const uint8_t *img = rgb + (size_t)i * 12288;
        size_t l = 12288;
        snprintf(key, sizeof key, "%d/image_aux1/encoded", i);
        tf_builder_bytes(&b, key, &img, &l, 1);
        float p[3] = {(float)i, 0.5f, -0.5f};
        snprintf(key, sizeof key, "%d/endeffector_pos", i);
        tf_builder_floats(&b, key, p, 3);
    }
    size_t nb;
    uint8_t *bair = tf_builder_finish(&b, &nb);
    uint8_t *bm = xmalloc(nb + 64);
    FuzzStats sb = {0, 0, 0, 0};
    int brounds = quick_mode() ? 60 : 300;
    for (int it = 0; it < brounds; it++) {
        memcpy(bm, bair, nb);
        size_t n = mutate(&r, bm, nb, nb + 64);
        fuzz_example(bm, n, &sb, 1);
    }
    check(framing_bad == 0, "fuzz: %ld framing rejections (of %d mutants), %ld without the file name", framing_rejected,
          rounds, framing_bad);
    check(st.bad_message == 0 && st.inconsistent == 0,
          "fuzz: Example parser %ld accepted, %ld rejected, %ld messages without the name, %ld getter mismatches",
          st.ok, st.rejected, st.bad_message, st.inconsistent);
    check(st.rejected > 0 && st.ok > 0, "fuzz: both outcomes occur (%ld ok, %ld rejected)", st.ok, st.rejected);
    check(sb.bad_message == 0 && sb.inconsistent == 0, "fuzz: BAIR Examples %ld accepted, %ld rejected", sb.ok,
          sb.rejected);
    printf("fuzz: %d framed + %d payload + %d BAIR mutants: %ld/%ld/%ld rejected\n", rounds, 4 * rounds, brounds,
           framing_rejected, st.rejected, sb.rejected);
    free(bm);
    free(bair);
    free(t);
    free(rgb);
    free(video);
    free(payload);
    free(m);
    free(fix);
}

/* ==== the synthetic set =========================================================================================== */
static void test_synth(void) {
    SynthConfig sc = {64, 17, 2, 0.3, 0.5, 3.0, 1.0, 1.0};
    size_t vn = (size_t)17 * 3 * 64 * 64;
    real *a = xmalloc(vn * sizeof(real)), *b = xmalloc(vn * sizeof(real));
    SynthTruth *ta = xmalloc(sizeof *ta), *tb = xmalloc(sizeof *tb);
    synth_video(&sc, 42, 5, a, ta);
    synth_video(&sc, 42, 5, b, tb);
    check(memcmp(a, b, vn * sizeof(real)) == 0 && memcmp(ta, tb, sizeof *ta) == 0, "same seed and index: same video");
    synth_video(&sc, 42, 6, b, tb);
    check(memcmp(a, b, vn * sizeof(real)) != 0, "another index: another video");
    synth_video(&sc, 43, 5, b, tb);
    check(memcmp(a, b, vn * sizeof(real)) != 0, "another seed: another video");
    SynthTruth *tn = xmalloc(sizeof *tn);
    synth_video(&sc, 42, 5, NULL, tn);
    check(memcmp(tn, ta, sizeof *ta) == 0, "the ground truth without rendering equals the rendered one's");

    int n = 300, ok_range = 1, ok_ctrl = 1, occluded = 0, distract = 0, bounced = 0, shapes[SYNTH_NSHAPES] = {0};
    double sxv = 0, sx = 0, sv = 0, sxx = 0, svv = 0;
    for (int i = 0; i < n; i++) {
        synth_video(&sc, 1, (uint64_t)i, a, ta);
        if (i < 40)
            for (size_t k = 0; k < vn; k++) ok_range &= a[k] >= -1 && a[k] <= 1;
        for (int f = 0; f < 17; f++)
            for (int k = 0; k < 3; k++) ok_ctrl &= ta->control[f][k] >= 0 && ta->control[f][k] < 1;
        occluded += ta->has_occluder;
        distract += ta->ndistractors > 0;
        bounced += ta->bounces > 0;
        shapes[ta->main.shape]++;
        double x = ta->main.pos0[0], v = ta->main.vel[0];
        sx += x; sv += v; sxv += x * v; sxx += x * x; svv += v * v;
    }
    double cov = sxv / n - sx / n * sv / n, corr = cov / sqrt((sxx / n - sx * sx / n / n) * (svv / n - sv * sv / n / n));
    check(ok_range, "synthetic values in [-1, 1]");
    check(ok_ctrl, "control factors in [0, 1)");
    check(occluded > 50 && occluded < 130 && distract > 100 && bounced > 50,
          "variety: %d occluded, %d with distractors, %d with bounces of %d", occluded, distract, bounced, n);
    int all_shapes = 1;
    for (int s = 0; s < SYNTH_NSHAPES; s++) all_shapes &= shapes[s] > 30;
    check(all_shapes, "every shape occurs (%d %d %d %d)", shapes[0], shapes[1], shapes[2], shapes[3]);
    check(fabs(corr) < 0.2, "start position and velocity are independent (corr %.3f)", corr);
    free(a);
    free(b);
    free(ta);
    free(tb);
    free(tn);
}

static void test_track(void) {
    int sizes[2] = {64, 32};
    for (int si = 0; si < 2; si++) {
        int S = sizes[si], T = 17;
        SynthConfig sc = {S, T, 2, 0.3, 0.5, 3.0, 1.0, 1.0};
        size_t vn = (size_t)T * 3 * S * S;
        real *v = xmalloc(vn * sizeof(real)), *q = xmalloc(vn * sizeof(real));
        uint8_t *rgb = xmalloc((size_t)T * S * S * 3);
        SynthTruth *t = xmalloc(sizeof *t);
        double centre[2 * 17], mass[17], max_err = 0, max_err_q = 0, sum_err = 0, max_speed_err = 0,
               max_ctrl_err = 0;
        long frames = 0;
        int nv = quick_mode() ? 20 : 60;
        for (int i = 0; i < nv; i++) {
            synth_video(&sc, 99, (uint64_t)i, v, t);
            /* the same video through 8 bits, as the exports and a generator's output are */
            video_to_rgb8(v, (size_t)T, (size_t)S, (size_t)S, rgb);
            for (int f = 0; f < T; f++)
                for (int c = 0; c < 3; c++)
                    for (int p = 0; p < S * S; p++)
                        q[((size_t)f * 3 + c) * S * S + p] = (real)(rgb[((size_t)f * S * S + p) * 3 + c] / 127.5 - 1);
            for (int pass = 0; pass < 2; pass++) {
                synth_track(pass ? q : v, (size_t)T, (size_t)S, (size_t)S, t->main.colour, t->main.radius, centre, mass);
                for (int f = 0; f < T; f++) {
                    if (t->visible[f] < 0.999) continue;
                    double err = hypot(centre[2 * f] - t->centre[f][0], centre[2 * f + 1] - t->centre[f][1]);
                    if (isnan(err)) err = 1e9;
                    if (pass) max_err_q = fmax(max_err_q, err);
                    else {
                        max_err = fmax(max_err, err);
                        sum_err += err;
                        frames++;
                    }
                }
            }
            if (!t->has_occluder) {
                MotionStats ms;
                motion_stats(centre, (size_t)T, (size_t)S, (size_t)S, &ms);
                if (t->bounces == 0) max_speed_err = fmax(max_speed_err, fabs(ms.speed - t->speed));
                double ctrl[3];
                motion_control(&ms, 3.0 * S / 64.0, ctrl);
                for (int k = 0; k < 2; k++) max_ctrl_err = fmax(max_ctrl_err, fabs(ctrl[k] - t->control[T - 1][k]) * S);
            }
        }
        printf("track S=%d: max error %.3f px (8-bit: %.3f px), mean %.3f px over %ld fully visible frames\n", S, max_err,
               max_err_q, sum_err / frames, frames);
        check(max_err < 0.5, "S=%d: recovered centres within 0.5 px of the truth: max %.3f px, mean %.3f px over %ld "
              "frames", S, max_err, sum_err / frames, frames);
        check(max_err_q < 0.5, "S=%d: the same through 8-bit quantisation: max %.3f px", S, max_err_q);
        check(max_speed_err < 0.3, "S=%d: speed from the track within 0.3 px/frame (max %.3f)", S, max_speed_err);
        check(max_ctrl_err < 0.5, "S=%d: end point from the track within 0.5 px (max %.3f)", S, max_ctrl_err);
        free(v);
        free(q);
        free(rgb);
        free(t);
    }
    /* an empty frame: nothing found */
    real blank[3 * 16 * 16];
    for (int i = 0; i < 3 * 16 * 16; i++) blank[i] = 0;
    double c[2], m;
    double red[3] = {0.9, 0.2, 0.2};
    synth_track(blank, 1, 16, 16, red, 3, c, &m);
    check(isnan(c[0]) && m < 1, "a grey frame has no object");
}

static void test_energy(void) {
    Rng r;
    rng_seed(&r, 3);
    int n = 200;
    double *a = xmalloc(2 * n * sizeof(double)), *b = xmalloc(2 * n * sizeof(double)),
           *s = xmalloc(2 * n * sizeof(double)), *z = xmalloc(2 * n * sizeof(double));
    for (int i = 0; i < 2 * n; i++) {
        a[i] = rng_normal(&r);
        b[i] = rng_normal(&r);
        s[i] = rng_normal(&r) + (i % 2 ? 0 : 1.0);
        z[i] = 0;
    }
    double eab = motion_energy_distance(a, n, b, n, 2), eas = motion_energy_distance(a, n, s, n, 2);
    double eaz = motion_energy_distance(a, n, z, n, 2), eaa = motion_energy_distance(a, n, a, n, 2);
    check(eaa == 0, "energy distance of a set to itself is 0 (%g)", eaa);
    check(eab < 0.05 && eas > 0.2, "same distribution %.4f < 0.05, shifted by 1: %.4f > 0.2", eab, eas);
    check(eaz > 0.5, "a collapsed set (all at the mean) is far: %.4f", eaz);
    check(fabs(motion_energy_distance(s, n, a, n, 2) - eas) < 1e-12, "symmetric");
    free(a);
    free(b);
    free(s);
    free(z);
}

/* ==== transforms ================================================================================================== */
static void test_transforms(void) {
    /* resize 1 x 4 -> 1 x 2 averages pairs; 1 x 2 -> 1 x 4 clamps at the left edge */
    real src[4] = {0, 1, 2, 3}, dst[4];
    data_resize(src, 1, 1, 4, dst, 1, 2);
    check(fabs(dst[0] - 0.5) < 1e-6 && fabs(dst[1] - 2.5) < 1e-6, "downscale 4 -> 2: %g %g", dst[0], dst[1]);
    real s2[2] = {0, 4};
    data_resize(s2, 1, 1, 2, dst, 1, 4);
    check(fabs(dst[0]) < 1e-6 && fabs(dst[1] - 1) < 1e-6 && fabs(dst[2] - 3) < 1e-6 && fabs(dst[3] - 4) < 1e-6,
          "upscale 2 -> 4 (align_corners=False): %g %g %g %g", dst[0], dst[1], dst[2], dst[3]);
    /* 3 x 3 -> 2 x 2: source coordinates 1.5 * d + 0.25 */
    real g[9] = {0, 1, 2, 3, 4, 5, 6, 7, 8}, o[4];
    data_resize(g, 1, 3, 3, o, 2, 2);
    check(fabs(o[0] - 1.0) < 1e-6 && fabs(o[3] - 7.0) < 1e-6, "3x3 -> 2x2: %g .. %g (want 1, 7)", o[0], o[3]);

    real red[3] = {1, 0, 0}, hsv[3], back[3];
    rgb_to_hsv(red, hsv);
    check(fabs(hsv[0]) < 1e-6 && fabs(hsv[1] - 1) < 1e-5 && hsv[2] == 1, "red in HSV: %g %g %g", hsv[0], hsv[1], hsv[2]);
    real cyan[3] = {0.2f, 0.6f, 0.6f};
    rgb_to_hsv(cyan, hsv);
    check(fabs(hsv[0] - I2V_PI) < 1e-5, "cyan hue is pi: %g", hsv[0]);
    Rng r;
    rng_seed(&r, 11);
    double maxrt = 0;
    for (int i = 0; i < 1000; i++) {
        real c[3] = {(real)rng_uniform(&r), (real)rng_uniform(&r), (real)rng_uniform(&r)};
        rgb_to_hsv(c, hsv);
        hsv_to_rgb(hsv, back);
        for (int k = 0; k < 3; k++) maxrt = fmax(maxrt, fabs(back[k] - c[k]));
    }
    check(maxrt < 2e-5, "RGB -> HSV -> RGB round trip within 2e-5 (kornia's eps): %g", maxrt);
    real negh[3] = {(real)(-0.5), 1, 1}, posh[3] = {(real)(2 * I2V_PI - 0.5), 1, 1}, c1[3], c2[3];
    hsv_to_rgb(negh, c1);
    hsv_to_rgb(posh, c2);
    check(fabs(c1[0] - c2[0]) < 1e-5 && fabs(c1[2] - c2[2]) < 1e-5, "a negative hue wraps as Python's %%");

    /* one parameter set per clip: a clip of identical frames stays identical; output in [-1, 1] */
    DataConfig c;
    data_config_default(&c);
    c.brightness = c.contrast = c.saturation = 0.9;
    c.hue = 0.5;
    size_t T = 5, R = 24, S = 8 + 0;
    S = R - 16;
    real *frames = xmalloc(T * 3 * R * R * sizeof(real)), *out = xmalloc(T * 3 * R * R * sizeof(real));
    int same = 1, in_range = 1, b_ok = 1;
    for (int trial = 0; trial < 50; trial++) {
        for (size_t i = 0; i < 3 * R * R; i++) frames[i] = (real)rng_uniform(&r);
        for (size_t t = 1; t < T; t++) memcpy(frames + t * 3 * R * R, frames, 3 * R * R * sizeof(real));
        AugParams p;
        aug_sample(&c, 1, &r, &p);
        b_ok &= p.brightness >= 0.1 && p.brightness <= 1.9 && p.crop_x >= 0 && p.crop_x <= 16 && p.hue >= -0.5 &&
                p.hue <= 0.5;
        aug_apply(&p, frames, T, R, S, out);
        for (size_t t = 1; t < T; t++) same &= memcmp(out, out + t * 3 * S * S, 3 * S * S * sizeof(real)) == 0;
        for (size_t i = 0; i < T * 3 * S * S; i++) in_range &= out[i] >= -1 && out[i] <= 1;
    }
    check(same, "augmentation: identical frames stay identical (one parameter set per clip)");
    check(in_range, "augmentation: values stay in [-1, 1]");
    check(b_ok, "augmentation: parameters in their ranges");
    /* flip only (jitter factors 1, hue 0): a mirror image, up to the HSV round trip */
    AugParams p = {1, 0, 0, 1, 1, 1, 0, {3, 2, 1, 0}};
    for (size_t i = 0; i < 3 * R * R; i++) frames[i] = (real)rng_uniform(&r);
    aug_apply(&p, frames, 1, R, R, out);
    double maxd = 0;
    for (size_t ch = 0; ch < 3; ch++)
        for (size_t y = 0; y < R; y++)
            for (size_t x = 0; x < R; x++)
                maxd = fmax(maxd, fabs(out[(ch * R + y) * R + x] - (2 * frames[(ch * R + y) * R + R - 1 - x] - 1)));
    check(maxd < 1e-4, "flip mirrors the width axis (max diff %g)", maxd);
    /* brightness is additive and contrast multiplicative without the mean (kornia 0.5.0) */
    real px[3] = {0.5f, 0.25f, 0.75f};
    AugParams q = {0, 0, 0, 1.2, 1, 1, 0, {0, 1, 2, 3}};
    color_jitter(px, 1, 1, &q);
    real px2[3] = {0.5f, 0.25f, 0.75f};
    AugParams q2 = {0, 0, 0, 1, 1.2, 1, 0, {1, 0, 2, 3}};
    color_jitter(px2, 1, 1, &q2);
    check(fabs(px[0] - 0.7) < 1e-4 && fabs(px[2] - 0.95) < 1e-4 && fabs(px2[0] - 0.6) < 1e-4 && fabs(px2[2] - 0.9) < 1e-4,
          "brightness adds b - 1, contrast multiplies by c: %g %g / %g %g", px[0], px[2], px2[0], px2[2]);
    free(frames);
    free(out);
}

/* ==== folder layouts ================================================================================================ */
/* The frames a loader should produce for exported video j of split s: 8-bit quantised, resized to S. */
static void expected_frames(const SynthConfig *sc, uint64_t seed, int split, int j, int start, int T, int S,
                            real *out /* (T, 3, S, S) in [-1, 1] */) {
    int F = sc->frames, W = sc->size;
    real *v = xmalloc((size_t)F * 3 * W * W * sizeof(real)), *fr = xmalloc((size_t)3 * W * W * sizeof(real)),
         *rs = xmalloc((size_t)3 * S * S * sizeof(real));
    uint8_t *rgb = xmalloc((size_t)F * W * W * 3);
    SynthTruth *t = xmalloc(sizeof *t);
    synth_video(sc, synth_stream(seed, (DataMode)split), (uint64_t)j, v, t);
    video_to_rgb8(v, (size_t)F, (size_t)W, (size_t)W, rgb);
    for (int f = 0; f < T; f++) {
        const uint8_t *px = rgb + (size_t)(start + f) * W * W * 3;
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < W * W; i++) fr[(size_t)c * W * W + i] = (real)px[(size_t)i * 3 + c] / 255;
        data_resize(fr, 3, (size_t)W, (size_t)W, rs, (size_t)S, (size_t)S);
        for (int i = 0; i < 3 * S * S; i++) out[(size_t)f * 3 * S * S + i] = 2 * rs[i] - 1;
    }
    free(v);
    free(fr);
    free(rs);
    free(rgb);
    free(t);
}

static double mean_abs(const real *a, const real *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += fabs(a[i] - b[i]);
    return s / n;
}
static double max_abs(const real *a, const real *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s = fmax(s, fabs(a[i] - b[i]));
    return s;
}

/* Loads every clip of one mode and compares it with the synthetic frames it came from. lossy: JPEG. */
static void check_layout_mode(const char *what, const Dataset *ds, const SynthConfig *sc, uint64_t seed, int split,
                              size_t want_items, int lossy, int want_zero_start) {
    const DataConfig *c = &ds->cfg;
    check(ds->nitems == want_items, "%s %s: %zu clips, want %zu", what, data_mode_name(ds->mode), ds->nitems, want_items);
    size_t T = (size_t)c->sequence_length, S = (size_t)c->img_size, cn = T * 3 * S * S;
    real *clip = xmalloc(cn * sizeof(real)), *want = xmalloc(cn * sizeof(real));
    ClipInfo *info = xmalloc(sizeof *info);
    int ok_range = 1, ok_frames = 1, ok_order = 1, ok_start = 1, ok_ctrl = 1;
    double worst = 0;
    I2vError e;
    for (size_t it = 0; it < ds->nitems; it++) {
        if (!check(dataset_get(ds, 5, 0, it, clip, info, &e) == 0, "%s: clip %zu: %s", what, it, e.msg)) break;
        for (size_t i = 0; i < cn; i++) ok_range &= clip[i] >= -1 && clip[i] <= 1;
        int j = (int)info->video;   /* the exports list videos in the order the loaders sort them */
        if (want_zero_start) ok_start &= info->start == 0;
        expected_frames(sc, seed, split, j, info->start, (int)T, (int)S, want);
        double d = lossy ? mean_abs(clip, want, cn) : max_abs(clip, want, cn);
        worst = fmax(worst, d);
        ok_frames &= lossy ? d < 0.03 : d < 1e-5;
        /* frame order: each loaded frame matches its own source frame better than the neighbours' */
        if (T > 1 && info->start + (int)T < sc->frames) {
            expected_frames(sc, seed, split, j, info->start + 1, (int)T, (int)S, want);
            ok_order &= mean_abs(clip, want, cn) > (lossy ? 0.03 : 1e-5) || mean_abs(clip, want, cn) > d;
        }
        if (ds->positions) {
            SynthTruth *t = xmalloc(sizeof *t);
            synth_video(sc, synth_stream(seed, (DataMode)split), (uint64_t)j, NULL, t);
            for (int k = 0; k < 3; k++)
                ok_ctrl &= fabs(info->control[k] - t->control[info->start + T - 1][k]) < 1e-9;
            free(t);
        }
    }
    check(ok_range, "%s %s: values in [-1, 1]", what, data_mode_name(ds->mode));
    check(ok_frames, "%s %s: frames equal the exported video's (worst %s %.3g)", what, data_mode_name(ds->mode),
          lossy ? "mean diff" : "max diff", worst);
    check(ok_order, "%s %s: frames in order", what, data_mode_name(ds->mode));
    check(ok_start, "%s %s: start frame 0", what, data_mode_name(ds->mode));
    check(ok_ctrl, "%s %s: control = normalised end point at frame start + T - 1", what, data_mode_name(ds->mode));
    free(clip);
    free(want);
    free(info);
}

static void base_config(DataConfig *c, const char *dataset, const char *root, int T, int S) {
    data_config_default(c);
    snprintf(c->dataset, sizeof c->dataset, "%s", dataset);
    data_join(c->data_path, sizeof c->data_path, NULL, "%s/", root);   /* with the trailing '/' the configs carry */
    data_join(c->splits_dir, sizeof c->splits_dir, NULL, "%s/splits", root);
    c->sequence_length = T;
    c->img_size = S;
    c->aug = 0;
    c->workers = 2;
}

static void test_bair(void) {
    SynthConfig sc = {64, BAIR_FRAMES, 1, 0.25, 0.5, 3.0, 1.0, 1.0};
    SynthExport ex = {DATA_BAIR, {6, 2, 2}, BAIR_FRAMES, 64, "", ""};
    char root[DATA_PATH_MAX];
    tmp_path(root, sizeof root, "bair");
    I2vError e;
    if (!check(synth_export(&sc, 21, &ex, root, &e) == 0, "export BAIR: %s", e.msg)) return;
    DataConfig c;
    base_config(&c, "BAIR", root, 17, 64);
    c.control = 1;
    Dataset ds;
    for (int m = 0; m < 3; m++) {
        if (!check(dataset_open(&ds, &c, (DataMode)m, 0, &e) == 0, "open BAIR %s: %s", data_mode_name((DataMode)m), e.msg))
            continue;
        check_layout_mode("BAIR", &ds, &sc, 21, m, (size_t)ex.nvideos[m], 0, m == DATA_TEST);
        dataset_close(&ds);
    }
    /* resized (64 -> 32) and augmented: what the loader returns is resize, then aug_apply with the clip's
     * recorded parameters, the same for every frame */
    c.img_size = 32;
    c.aug = 1;
    c.hue = 0.1;
    if (check(dataset_open(&ds, &c, DATA_TRAIN, 0, &e) == 0, "open BAIR train with aug: %s", e.msg)) {
        size_t T = 17, S = 32, cn = T * 3 * S * S;
        real *clip = xmalloc(cn * sizeof(real)), *want = xmalloc(cn * sizeof(real)), *re = xmalloc(cn * sizeof(real));
        ClipInfo *info = xmalloc(sizeof *info);
        double worst = 0;
        int flips = 0;
        for (size_t it = 0; it < ds.nitems; it++) {
            if (dataset_get(&ds, 9, 3, it, clip, info, &e)) break;
            expected_frames(&sc, 21, 0, (int)info->video, info->start, (int)T, (int)S, want);
            for (size_t i = 0; i < cn; i++) want[i] = (want[i] + 1) / 2;
            aug_apply(&info->aug, want, T, S, S, re);
            worst = fmax(worst, max_abs(clip, re, cn));
            flips += info->aug.flip;
        }
        check(info->augmented && worst < 1e-5, "BAIR augmented clip = resize + aug_apply(recorded parameters) (max %g, "
              "%d flips)", worst, flips);
        free(clip);
        free(want);
        free(re);
        free(info);
        dataset_close(&ds);
    }
    /* errors: a missing frame, a bad CSV, a corrupt PNG */
    char path[DATA_PATH_MAX];
    c.img_size = 64;
    c.aug = 0;
    data_join(path, sizeof path, NULL, "%s/eval/traj_0_to_1/2/endeffector_positions.csv", root);
    write_file_bytes(path, (const uint8_t *)"1,2,3\n4,5\n", 10, &e);
    check(dataset_open(&ds, &c, DATA_EVAL, 0, &e) != 0 && contains(e.msg, "eval/traj_0_to_1/2/endeffector_positions.csv") &&
              contains(e.msg, "line 2"), "a bad CSV names the file and line: %s", e.msg);
    data_join(path, sizeof path, NULL, "%s/test/traj_0_to_1/1/5.png", root);
    write_file_bytes(path, (const uint8_t *)"not a png", 9, &e);
    if (check(dataset_open(&ds, &c, DATA_TEST, 0, &e) == 0, "open BAIR test: %s", e.msg)) {
        real *clip = xmalloc((size_t)17 * 3 * 64 * 64 * sizeof(real));
        ClipInfo *info = xmalloc(sizeof *info);
        check(dataset_get(&ds, 0, 0, 0, clip, info, &e) != 0 && contains(e.msg, "traj_0_to_1/1/5.png"),
              "a corrupt frame names the file: %s", e.msg);
        free(clip);
        free(info);
        dataset_close(&ds);
    }
    data_join(path, sizeof path, NULL, "%s/train/traj_4_to_5/2/7.png", root);
    unlink(path);
    check(dataset_open(&ds, &c, DATA_TRAIN, 0, &e) != 0 && contains(e.msg, "train/traj_4_to_5/2") &&
              contains(e.msg, "7.png") && contains(e.msg, "incomplete"), "a missing frame names the video: %s", e.msg);
    c.sequence_length = 31;
    check(dataset_open(&ds, &c, DATA_TRAIN, 0, &e) != 0 && contains(e.msg, "30"), "T > 30 for BAIR: %s", e.msg);
    c.sequence_length = 17;
    data_join(c.data_path, sizeof c.data_path, NULL, "%s/nowhere", root);
    check(dataset_open(&ds, &c, DATA_TRAIN, 0, &e) != 0 && contains(e.msg, "nowhere/train"), "a missing root: %s", e.msg);
}

static void test_bair_convert(void) {
    SynthConfig sc = {64, BAIR_FRAMES, 1, 0, 0.5, 3.0, 1.0, 1.0};
    char tfr[DATA_PATH_MAX], out[DATA_PATH_MAX], path[DATA_PATH_MAX];
    tmp_path(tfr, sizeof tfr, "tfr");
    tmp_path(out, sizeof out, "bair_conv");
    I2vError e;
    if (!check(synth_export_tfrecords(&sc, 8, DATA_TRAIN, 3, 2, tfr, &e) == 0, "export TFRecords: %s", e.msg)) return;
    size_t n = 0;
    if (!check(bair_convert(tfr, out, "train", &n, &e) == 0 && n == 3, "bair_convert: %zu trajectories: %s", n, e.msg))
        return;
    data_join(path, sizeof path, NULL, "%s/train/traj_2_to_2/1/29.png", out);
    struct stat st;
    check(stat(path, &st) == 0, "the converter names folders after the record files (%s)", path);
    /* the CSV is numpy.savetxt's default format of the float32 positions */
    data_join(path, sizeof path, NULL, "%s/train/traj_0_to_1/2/endeffector_positions.csv", out);
    uint8_t *csv;
    size_t len;
    SynthTruth *t = xmalloc(sizeof *t);
    SynthConfig s64 = sc;
    synth_video(&s64, synth_stream(8, DATA_TRAIN), 1, NULL, t);
    if (check(read_file_bytes(path, &csv, &len, &e) == 0, "read %s", path)) {
        char want[128];
        float p[3];
        for (int k = 0; k < 3; k++) p[k] = (float)(bair_pos_m[k] + bair_pos_r[k] * t->control[0][k]);
        snprintf(want, sizeof want, "%.18e,%.18e,%.18e\n", (double)p[0], (double)p[1], (double)p[2]);
        check(len > strlen(want) && memcmp(csv, want, strlen(want)) == 0, "CSV row 0 is '%%.18e' of the float32 "
              "values: %.60s", (const char *)csv);
        free(csv);
    }
    /* the converted folders load as BAIR with control */
    DataConfig c;
    base_config(&c, "bair", out, 17, 64);
    c.control = 1;
    Dataset ds;
    if (check(dataset_open(&ds, &c, DATA_TRAIN, 0, &e) == 0, "open the converted BAIR: %s", e.msg)) {
        check(ds.nitems == 3, "3 trajectories");
        real *clip = xmalloc((size_t)17 * 3 * 64 * 64 * sizeof(real)), *want = xmalloc((size_t)17 * 3 * 64 * 64 * sizeof(real));
        ClipInfo *info = xmalloc(sizeof *info);
        double worst = 0, worst_ctrl = 0;
        for (size_t i = 0; i < ds.nitems; i++) {
            dataset_get(&ds, 1, 0, i, clip, info, &e);
            /* record file traj_0_to_1 holds videos 0, 1; traj_2_to_2 video 2 */
            expected_frames(&sc, 8, 0, (int)i, info->start, 17, 64, want);
            worst = fmax(worst, max_abs(clip, want, (size_t)17 * 3 * 64 * 64));
            synth_video(&s64, synth_stream(8, DATA_TRAIN), i, NULL, t);
            for (int k = 0; k < 3; k++)
                worst_ctrl = fmax(worst_ctrl, fabs(info->control[k] - t->control[info->start + 16][k]));
        }
        check(worst < 1e-5, "converted frames equal the originals (max %g)", worst);
        check(worst_ctrl < 2e-6, "converted control = the end point up to float32 (max %g)", worst_ctrl);
        free(clip);
        free(want);
        free(info);
        dataset_close(&ds);
    }
    /* a corrupt record stops the conversion with the file's name */
    data_join(path, sizeof path, NULL, "%s/softmotion30_44k/train/traj_0_to_1.tfrecords", tfr);
    uint8_t *buf;
    if (read_file_bytes(path, &buf, &len, &e) == 0) {
        buf[len / 2] ^= 0x55;
        write_file_bytes(path, buf, len, &e);
        free(buf);
        check(bair_convert(tfr, out, "train", &n, &e) != 0 && contains(e.msg, "traj_0_to_1.tfrecords") &&
                  contains(e.msg, "CRC"), "a corrupt TFRecord: %s", e.msg);
    }
    check(bair_convert(tfr, out, "test", &n, &e) != 0 && contains(e.msg, "no *.tfrecords"), "no records for a split: %s",
          e.msg);
    free(t);
}

static void test_landscape(void) {
    SynthConfig sc = {40, 12, 1, 0.25, 0.5, 3.0, 1.0, 1.0};
    SynthExport ex = {DATA_LANDSCAPE, {3, 2, 2}, 12, 40, "", ""};
    char root[DATA_PATH_MAX];
    tmp_path(root, sizeof root, "landscape");
    I2vError e;
    if (!check(synth_export(&sc, 31, &ex, root, &e) == 0, "export landscape: %s", e.msg)) return;
    DataConfig c;
    base_config(&c, "landscape", root, 8, 32);
    c.iter_train = 2;
    c.iter_eval = 1;
    c.iter_test = 3;
    Dataset ds;
    int reps[3] = {2, 1, 3};
    for (int m = 0; m < 3; m++) {
        if (!check(dataset_open(&ds, &c, (DataMode)m, 0, &e) == 0, "open landscape %s: %s", data_mode_name((DataMode)m),
                   e.msg))
            continue;
        check_layout_mode("landscape", &ds, &sc, 31, m, (size_t)(ex.nvideos[m] * reps[m]), 1, 0);
        if (reps[m] > 1) check(ds.item_video[0] == ds.item_video[1], "landscape: repetitions of a clip are adjacent");
        dataset_close(&ds);
    }
    /* random crop: resize to S + 16, flip, crop, jitter */
    c.aug = 1;
    c.brightness = c.contrast = c.saturation = 0.3;
    c.hue = 0.15;
    if (check(dataset_open(&ds, &c, DATA_TRAIN, 0, &e) == 0, "open landscape train with aug: %s", e.msg)) {
        check(ds.transform == 2, "landscape trains with Augmentation_random_crop");
        size_t cn = (size_t)8 * 3 * 32 * 32;
        real *clip = xmalloc(cn * sizeof(real));
        ClipInfo *info = xmalloc(sizeof *info);
        int ok = 1, crops = 0;
        for (size_t i = 0; i < ds.nitems; i++) {
            ok &= dataset_get(&ds, 2, 0, i, clip, info, &e) == 0;
            for (size_t k = 0; k < cn; k++) ok &= clip[k] >= -1 && clip[k] <= 1;
            crops += info->aug.crop_x != 0 || info->aug.crop_y != 0;
        }
        check(ok && crops > 0, "landscape augmented clips in range with random crops (%d)", crops);
        free(clip);
        free(info);
        dataset_close(&ds);
    }
    /* a missing split list and a clip shorter than T */
    c.aug = 0;
    data_join(c.splits_dir, sizeof c.splits_dir, NULL, "%s/no_splits", root);
    check(dataset_open(&ds, &c, DATA_TRAIN, 0, &e) != 0 && contains(e.msg, "no_splits/landscape/train.txt"),
          "a missing split list names the file: %s", e.msg);
    data_join(c.splits_dir, sizeof c.splits_dir, NULL, "%s/splits", root);
    c.sequence_length = 13;
    check(dataset_open(&ds, &c, DATA_EVAL, 0, &e) != 0 && contains(e.msg, "sky_train/b000/b000_1") &&
              contains(e.msg, "12 frames"), "a clip shorter than T names the video: %s", e.msg);
    c.sequence_length = 8;
    char path[DATA_PATH_MAX];
    data_join(path, sizeof path, NULL, "%s/sky_test/c001/c001_1/frame3.jpg", root);
    unlink(path);
    check(dataset_open(&ds, &c, DATA_TEST, 0, &e) != 0 && contains(e.msg, "sky_test/c001/c001_1") &&
              contains(e.msg, "frame3.jpg"), "a missing landscape frame: %s", e.msg);
}

static void test_iper(void) {
    SynthConfig sc = {48, 10, 1, 0.25, 0.5, 3.0, 1.0, 1.0};
    SynthExport ex = {DATA_IPER, {4, 2, 3}, 10, 48, "", ""};
    char root[DATA_PATH_MAX];
    tmp_path(root, sizeof root, "iper");
    I2vError e;
    if (!check(synth_export(&sc, 41, &ex, root, &e) == 0, "export iPER: %s", e.msg)) return;
    DataConfig c;
    base_config(&c, "iPER", root, 6, 32);
    c.iter_train = 2;
    c.iter_eval = 1;
    c.test_size = 7;
    Dataset ds;
    /* names end in action 1, 2, 1, 2, ...: train 2 x (1 + 2 + 1 + 2) = 12, eval 1 x (1 + 2) = 3, test: test_size */
    size_t want[3] = {12, 3, 7};
    for (int m = 0; m < 3; m++) {
        if (!check(dataset_open(&ds, &c, (DataMode)m, 0, &e) == 0, "open iPER %s: %s", data_mode_name((DataMode)m), e.msg))
            continue;
        check_layout_mode("iPER", &ds, &sc, 41, m, want[m], 0, 0);
        if (m == DATA_TEST) check(ds.item_video[4] == 1 && ds.item_video[6] == 0, "iPER test item i uses video i mod N");
        dataset_close(&ds);
    }
    /* short videos are skipped as the official loader does; a listed folder that does not exist is an error */
    c.sequence_length = 11;
    check(dataset_open(&ds, &c, DATA_TRAIN, 0, &e) != 0 && contains(e.msg, "none of the videos"),
          "iPER with every video too short: %s", e.msg);
    c.sequence_length = 6;
    char path[DATA_PATH_MAX];
    data_join(path, sizeof path, NULL, "%s/splits/iPER/val.txt", root);
    write_file_bytes(path, (const uint8_t *)"2000/1/1\n999/1/2\n", 17, &e);
    check(dataset_open(&ds, &c, DATA_EVAL, 0, &e) != 0 && contains(e.msg, "999_1_2") && contains(e.msg, "val.txt"),
          "a listed iPER video that is missing: %s", e.msg);
}

static void test_dtdb(void) {
    SynthConfig sc = {40, 10, 1, 0.25, 0.5, 3.0, 1.0, 1.0};
    const char *fmts[2] = {"png", "jpg"};
    for (int fi = 0; fi < 2; fi++) {
        SynthExport ex = {DATA_DTDB, {3, 2, 0}, 10, 40, "fire", ""};
        snprintf(ex.image_format, sizeof ex.image_format, "%s", fmts[fi]);
        char root[DATA_PATH_MAX];
        data_join(root, sizeof root, NULL, "%s/dtdb_%s", tmp_root, fmts[fi]);
        I2vError e;
        if (!check(synth_export(&sc, 51, &ex, root, &e) == 0, "export DTDB: %s", e.msg)) return;
        DataConfig c;
        base_config(&c, "DTDB", root, 6, 32);
        snprintf(c.texture, sizeof c.texture, "fire");
        snprintf(c.image_format, sizeof c.image_format, "%s", fmts[fi]);
        c.iter_train = 2;
        c.iter_eval = 3;
        c.iter_test = 2;
        Dataset ds;
        size_t want[3] = {6, 6, 4};
        for (int m = 0; m < 3; m++) {
            if (!check(dataset_open(&ds, &c, (DataMode)m, 0, &e) == 0, "open DTDB %s: %s", data_mode_name((DataMode)m),
                       e.msg))
                continue;
            /* eval and test both read the eval folder, from frame 0 */
            check_layout_mode(fi ? "DTDB jpg" : "DTDB png", &ds, &sc, 51, m == DATA_TRAIN ? 0 : 1, want[m], fi,
                              m != DATA_TRAIN);
            dataset_close(&ds);
        }
    }
}

/* ==== the loader ======================================================================================================= */
static int batches_equal(const DataBatch *a, const DataBatch *b) {
    size_t cn = a->frames * 3 * a->size * a->size;
    if (a->n != b->n) return 0;
    if (memcmp(a->video, b->video, a->n * cn * sizeof(real)) != 0) return 0;
    if (memcmp(a->control, b->control, a->n * 3 * sizeof(double)) != 0) return 0;
    for (size_t i = 0; i < a->n; i++)
        if (a->info[i].item != b->info[i].item || a->info[i].start != b->info[i].start) return 0;
    return 1;
}

static void test_loader_on(const Dataset *ds, const char *what, size_t bs, int epochs) {
    I2vError e;
    DataLoader direct, pre;
    if (loader_init(&direct, ds, bs, 1, 1, 0, 77, &e) || loader_init(&pre, ds, bs, 1, 1, 1, 77, &e)) {
        check(0, "%s: loader_init: %s", what, e.msg);
        return;
    }
    int same = 1, nb = 0, ends = 0, perm_ok = 1;
    for (int ep = 0; ep < epochs; ep++) {
        /* the order is a permutation */
        unsigned char *seen = xcalloc(ds->nitems, 1);
        for (size_t i = 0; i < ds->nitems; i++) seen[direct.order[i]]++;
        for (size_t i = 0; i < ds->nitems; i++) perm_ok &= seen[i] == 1;
        free(seen);
        for (;;) {
            const DataBatch *a, *b;
            int ra = loader_next(&direct, &a, &e), rb = loader_next(&pre, &b, &e);
            if (ra != rb) {
                same = 0;
                break;
            }
            if (ra == 1) {
                ends++;
                break;
            }
            if (ra < 0) {
                check(0, "%s: loader_next: %s", what, e.msg);
                same = 0;
                break;
            }
            same &= batches_equal(a, b);
            nb++;
        }
    }
    check(same, "%s: the prefetch thread gives the same batches as loading in the caller", what);
    check(perm_ok, "%s: every epoch's order is a permutation", what);
    check(nb == epochs * (int)(ds->nitems / bs) && ends == epochs, "%s: %d batches in %d epochs (drop_last)", what, nb,
          epochs);
    /* resume: seek to (1, 1) and get what the sequential run got there */
    loader_seek(&direct, 1, 1);
    const DataBatch *a;
    DataBatch copy;
    batch_alloc(&copy, bs, direct.buf[0].frames, direct.buf[0].size);
    if (loader_next(&direct, &a, &e) == 0) {
        memcpy(copy.video, a->video, a->n * a->frames * 3 * a->size * a->size * sizeof(real));
        memcpy(copy.control, a->control, a->n * 3 * sizeof(double));
        memcpy(copy.info, a->info, a->n * sizeof(ClipInfo));
        copy.n = a->n;
        loader_seek(&pre, 0, 0);
        for (int i = 0; i < (int)(ds->nitems / bs) + 2; i++) loader_next(&pre, &a, &e);   /* epoch 0, end, batch (1, 0) */
        loader_next(&pre, &a, &e);                                                       /* batch (1, 1) */
        check(batches_equal(&copy, a), "%s: loader_seek resumes exactly", what);
    }
    batch_free(&copy);
    loader_free(&direct);
    loader_free(&pre);
}

static void test_loader(void) {
    DataConfig c;
    data_config_default(&c);
    c.synth_train = 10;
    c.synth_eval = 5;
    c.sequence_length = 5;
    c.img_size = 32;
    c.aug = 1;   /* augmentation randomness must not depend on timing either */
    I2vError e;
    Dataset ds;
    if (!check(dataset_open(&ds, &c, DATA_TRAIN, 1, &e) == 0, "open synthetic: %s", e.msg)) return;
    test_loader_on(&ds, "synthetic", 3, 3);
    /* drop_last = 0 keeps the short batch; an unlimited stream: epoch 1 shows new videos */
    DataLoader L;
    loader_init(&L, &ds, 3, 0, 0, 1, 5, &e);
    const DataBatch *b;
    int n = 0;
    size_t last = 0;
    double first_ctrl = 0;
    while (loader_next(&L, &b, &e) == 0) {
        if (n == 0) first_ctrl = b->control[0];
        n++;
        last = b->n;
    }
    check(n == 4 && last == 1, "drop_last = 0: 4 batches, the last of 1 (%d, %zu)", n, last);
    check(loader_next(&L, &b, &e) == 0 && b->control[0] != first_ctrl, "synthetic train: new videos every epoch");
    loader_free(&L);
    check(loader_init(&L, &ds, 11, 1, 1, 0, 5, &e) != 0 && contains(e.msg, "no batch"), "a batch larger than the set "
          "with drop_last: %s", e.msg);
    dataset_close(&ds);
    /* eval: fixed videos, and the clip carries its ground truth */
    c.aug = 0;
    if (check(dataset_open(&ds, &c, DATA_EVAL, 1, &e) == 0, "open synthetic eval: %s", e.msg)) {
        real *x = xmalloc((size_t)5 * 3 * 32 * 32 * sizeof(real)), *y = xmalloc((size_t)5 * 3 * 32 * 32 * sizeof(real));
        ClipInfo *i1 = xmalloc(sizeof *i1), *i2 = xmalloc(sizeof *i2);
        dataset_get(&ds, 0, 0, 2, x, i1, &e);
        dataset_get(&ds, 0, 7, 2, y, i2, &e);
        check(memcmp(x, y, (size_t)5 * 3 * 32 * 32 * sizeof(real)) == 0, "synthetic eval clips do not change by epoch");
        check(i1->has_truth && i1->truth.frames == 5 && i1->control[0] == i1->truth.control[4][0],
              "synthetic clips carry their ground truth and end-point control");
        free(x);
        free(y);
        free(i1);
        free(i2);
        dataset_close(&ds);
    }
    /* a real layout through the prefetcher, two workers */
    char root[DATA_PATH_MAX];
    tmp_path(root, sizeof root, "iper");
    base_config(&c, "iPER", root, 6, 32);
    c.iter_train = 1;
    c.aug = 1;
    c.hue = 0.1;
    if (check(dataset_open(&ds, &c, DATA_TRAIN, 0, &e) == 0, "open iPER for the loader: %s", e.msg)) {
        test_loader_on(&ds, "iPER", 2, 2);
        dataset_close(&ds);
    }
}

static void test_config_and_splits(void) {
    DataConfig c;
    data_config_default(&c);
    I2vError e;
    check(data_config_check(&c, &e) == 0, "the default config is valid: %s", e.msg);
    snprintf(c.dataset, sizeof c.dataset, "kinetics");
    check(data_config_check(&c, &e) != 0 && contains(e.msg, "kinetics"), "an unknown data set: %s", e.msg);
    snprintf(c.dataset, sizeof c.dataset, "BAIR");
    check(data_config_check(&c, &e) != 0 && contains(e.msg, "data_path"), "a real data set needs a path: %s", e.msg);
    data_config_default(&c);
    c.hue = 0.7;
    check(data_config_check(&c, &e) != 0 && contains(e.msg, "hue"), "hue > 0.5: %s", e.msg);
    /* the official split lists ship in configs/splits (iPER's train.txt has 138 entries: its last line has no
     * newline, so `wc -l` says 137) */
    struct { const char *path; size_t n; const char *first; } lists[] = {
        {"configs/splits/landscape/train.txt", 1074, NULL}, {"configs/splits/landscape/eval.txt", 120, NULL},
        {"configs/splits/landscape/test.txt", 153, NULL},   {"configs/splits/iPER/train.txt", 138, NULL},
        {"configs/splits/iPER/val.txt", 26, NULL},          {"configs/splits/iPER/test.txt", 42, NULL}};
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
        char **ent;
        size_t n;
        if (check(data_read_split(lists[i].path, &ent, &n, &e) == 0, "read %s: %s", lists[i].path, e.msg)) {
            check(n == lists[i].n, "%s: %zu entries, want %zu", lists[i].path, n, lists[i].n);
            int ok = 1;
            for (size_t k = 0; k < n; k++) ok &= strchr(ent[k], '/') != NULL && ent[k][strlen(ent[k]) - 1] != '/';
            check(ok, "%s: entries look like <id>/<clip> without a trailing '/'", lists[i].path);
            data_free_names(ent, n);
        }
    }
    check(data_name_cmp("traj_4_to_7", "traj_12_to_15") < 0 && data_name_cmp("frame10", "frame9") > 0 &&
              data_name_cmp("a", "a") == 0, "natural order of names");
}

static void test_speed(void) {
    DataConfig c;
    data_config_default(&c);
    c.synth_train = 64;
    I2vError e;
    Dataset ds;
    if (dataset_open(&ds, &c, DATA_TRAIN, 0, &e)) return;
    DataBatch b;
    batch_alloc(&b, 8, 17, 64);
    size_t items[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    double best = 1e9;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = now_seconds();
        dataset_batch(&ds, 0, (uint64_t)rep, items, 8, 1, &b, &e);
        best = fmin(best, now_seconds() - t0);
    }
    printf("speed: a synthetic batch of 8 clips x 17 frames x 64 x 64 in %.2f ms (one thread)\n", best * 1e3);
    if (!quick_mode()) check(best < 0.05, "a synthetic batch takes %.1f ms (< 50 ms)", best * 1e3);
    dataset_close(&ds);
    /* decoding: the same batch from PNGs in the BAIR layout */
    SynthConfig sc = {64, BAIR_FRAMES, 1, 0.25, 0.5, 3.0, 1.0, 1.0};
    SynthExport ex = {DATA_BAIR, {8, 1, 1}, BAIR_FRAMES, 64, "", ""};
    char root[DATA_PATH_MAX];
    tmp_path(root, sizeof root, "speed_bair");
    base_config(&c, "BAIR", root, 17, 64);
    if (synth_export(&sc, 1, &ex, root, &e) == 0 && dataset_open(&ds, &c, DATA_TRAIN, 0, &e) == 0) {
        for (int workers = 1; workers <= 2; workers++) {
            best = 1e9;
            for (int rep = 0; rep < 3; rep++) {
                double t0 = now_seconds();
                dataset_batch(&ds, 0, (uint64_t)rep, items, 8, workers, &b, &e);
                best = fmin(best, now_seconds() - t0);
            }
            printf("speed: a BAIR batch of 8 clips x 17 PNG frames decoded in %.2f ms (%d thread%s)\n", best * 1e3,
                   workers, workers > 1 ? "s" : "");
        }
        dataset_close(&ds);
    }
    batch_free(&b);
}

int main(void) {
    snprintf(tmp_root, sizeof tmp_root, "/tmp/i2v_test_data_XXXXXX");
    if (!mkdtemp(tmp_root)) {
        printf("cannot create a temporary folder\n");
        return 1;
    }
    test_crc();
    test_fixture();
    test_tfrecord_errors();
    test_builder();
    test_fuzz();
    test_synth();
    test_track();
    test_energy();
    test_transforms();
    test_config_and_splits();
    test_bair();
    test_bair_convert();
    test_landscape();
    test_iper();
    test_dtdb();
    test_loader();
    test_speed();
    rm_rf(tmp_root);
    return check_summary("test_data");
}
