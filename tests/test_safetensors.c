/* test_safetensors.c: tests of the safetensors reader and writer (safetensors.c).
 *
 * Round trips of every i2v dtype (0-D and empty shapes, metadata with characters JSON must escape), a
 * ParamSet round trip with prefixes and one file holding several sets, a fixture written by Python's
 * struct/json (tests/data/make_fixture.py) with F16/BF16/F64 values checked against known numbers, every
 * F16 and BF16 bit pattern, each kind of bad input with the message it must give, the atomic writer
 * (missing directory, a target that cannot be replaced, a disk that fills up via RLIMIT_FSIZE, truncated
 * files) and a seeded mutation fuzzer over the parser (ASan/UBSan prove it in `make SAN=1 test`).
 * Not here: model-specific checkpoints (their tests load their own ParamSets).
 */
#include "check.h"
#include "formats/safetensors.h"
#include "tensor.h"

#include <signal.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_dir[256];   /* the test's temporary directory */

static void tpath(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", g_dir, name); }

static unsigned char *read_whole(const char *path, size_t *size) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char *buf = malloc(n > 0 ? (size_t)n : 1);
    size_t got = fread(buf, 1, (size_t)n, fp);
    fclose(fp);
    if (got != (size_t)n) { free(buf); return NULL; }
    *size = (size_t)n;
    return buf;
}

static int write_whole(const char *path, const unsigned char *buf, size_t n) {
    FILE *fp = fopen(path, "wb");
    if (!fp) return -1;
    size_t put = fwrite(buf, 1, n, fp);
    return (fclose(fp) || put != n) ? -1 : 0;
}

static int file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* A file image: 8-byte length, the JSON padded with spaces to a multiple of 8, then dlen data bytes
 * (copied from data, or a ramp if data is NULL). Allocated with its exact size, so ASan sees overreads. */
static unsigned char *make_image(const char *json, const void *data, size_t dlen, size_t *size) {
    size_t j = strlen(json), hl = (j + 7) / 8 * 8;
    *size = 8 + hl + dlen;
    unsigned char *b = malloc(*size ? *size : 1);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(b + 8, json, j);
    memset(b + 8 + j, ' ', hl - j);
    for (size_t i = 0; i < dlen; i++) b[8 + hl + i] = data ? ((const unsigned char *)data)[i] : (unsigned char)i;
    return b;
}

/* rc must be an error whose message names `label` and contains `phrase`. */
static void expect_error(const char *what, int rc, const I2vError *e, const char *label, const char *phrase) {
    check(rc != 0, "%s: accepted, expected an error containing \"%s\"", what, phrase);
    if (rc == 0) return;
    check(strstr(e->msg, label) != NULL, "%s: message does not name %s: %s", what, label, e->msg);
    check(strstr(e->msg, phrase) != NULL, "%s: message lacks \"%s\": %s", what, phrase, e->msg);
}

/* Parses a JSON header with dlen ramp data bytes; expects an error containing phrase. */
static void bad_header(const char *json, size_t dlen, const char *phrase) {
    size_t n;
    unsigned char *img = make_image(json, NULL, dlen, &n);
    StFile f;
    I2vError e = {{0}};
    int rc = st_parse(&f, img, n, "bad.safetensors", &e);
    char what[160];
    snprintf(what, sizeof what, "header %.120s", json);
    expect_error(what, rc, &e, "bad.safetensors", phrase);
    if (rc == 0) st_close(&f);
    free(img);
}

static real as_f32(double x) { return (real)(float)x; }   /* what a stored F32 reads back as */

/* ==================================================================================================== */

static void test_roundtrip(void) {
    Rng r;
    rng_seed(&r, 7);
    Tensor *a = tensor_alloc(2, DIMS(2, 3));
    tensor_fill_normal(a, &r, 0.0, 1.0);
    a->data[0] = (real)1e-40;             /* a float subnormal survives */
    Tensor *u8 = tensor_alloc_dtype(DT_U8, 1, DIMS(5));
    const uint8_t u8v[5] = {0, 1, 127, 200, 255};
    memcpy(u8->ibuf, u8v, 5);
    Tensor *i32 = tensor_alloc_dtype(DT_I32, 2, DIMS(2, 2));
    const int32_t i32v[4] = {INT32_MIN, -1, 0, INT32_MAX};
    memcpy(i32->ibuf, i32v, sizeof i32v);
    Tensor *i64 = tensor_alloc_dtype(DT_I64, 1, DIMS(3));
    const int64_t i64v[3] = {INT64_MIN, -5, (int64_t)1 << 40};
    memcpy(i64->ibuf, i64v, sizeof i64v);
    Tensor *flag = tensor_alloc_dtype(DT_BOOL, 1, DIMS(4));
    const uint8_t flagv[4] = {1, 0, 7, 1};   /* 7 is stored as 1: a BOOL byte is 0 or 1 */
    memcpy(flag->ibuf, flagv, 4);
    Tensor *scalar = tensor_alloc(0, NULL);
    scalar->data[0] = (real)-0.75;
    Tensor *step = tensor_alloc_dtype(DT_I64, 0, NULL);
    ((int64_t *)step->ibuf)[0] = 123456789012LL;
    Tensor *empty = tensor_alloc(2, DIMS(0, 4));
    Tensor *big = tensor_alloc(1, DIMS(10007));   /* more than one staging chunk of the writer */
    tensor_fill_uniform(big, &r, -3.0, 3.0);
    Tensor *odd = tensor_alloc(1, DIMS(1));
    odd->data[0] = (real)2.5;
    const char *weird = "we\"ird\\na\tme\n\xc3\xa9";
    const char *names[] = {"a.weight", "u8", "i32", "i64", "flag", "scalar", "step", "empty", "big", weird};
    const Tensor *ts[] = {a, u8, i32, i64, flag, scalar, step, empty, big, odd};
    const StMeta meta[] = {{"format", "pt"}, {"config", "lr: 0.1\nname: \"x\" \\ end"},
                           {"unicode", "\xc3\xa9\xf0\x9f\x98\x80"}};
    char path[512];
    tpath(path, sizeof path, "roundtrip.safetensors");
    I2vError e = {{0}};
    int rc = st_save(path, 10, names, ts, 3, meta, &e);
    check(rc == 0, "st_save: %s", e.msg);

    StFile f;
    rc = st_open(&f, path, &e);
    check(rc == 0, "st_open: %s", e.msg);
    if (rc) return;
    check(f.n == 10, "10 tensors read back, got %zu", f.n);
    check(f.header_len % 8 == 0, "header padded to a multiple of 8 (%zu)", f.header_len);
    check(f.bytes[8] == '{', "header starts with '{'");
    for (size_t i = 1; i < f.n; i++)
        check(strcmp(f.entries[i - 1].name, f.entries[i].name) < 0, "entries sorted by name");
    for (size_t i = 0; i < f.n; i++)
        check(f.entries[i].begin % st_dtype_size(f.entries[i].dtype) == 0, "'%s' aligned to its element size",
              f.entries[i].name);
    check(f.nmeta == 3, "3 metadata entries");
    for (int i = 0; i < 3; i++) {
        const char *v = st_meta_get(&f, meta[i].key);
        check(v && !strcmp(v, meta[i].value), "metadata '%s' round trip", meta[i].key);
    }
    check(st_meta_get(&f, "nope") == NULL, "absent metadata key gives NULL");

    const StEntry *en = st_find(&f, "a.weight");
    check(en && en->dtype == ST_F32 && en->ndim == 2 && en->shape[0] == 2 && en->shape[1] == 3,
          "a.weight is F32 (2, 3)");
    Tensor *a2 = tensor_alloc(2, DIMS(2, 3));
    check(st_read(&f, "a.weight", a2, &e) == 0, "st_read a.weight: %s", e.msg);
    int same = 1;
    for (int i = 0; i < 6; i++) same &= a2->data[i] == as_f32(a->data[i]);
    check(same, "F32 values round trip (as float)");
    tensor_free(a2);

    Tensor *t = st_read_new(&f, "u8", DT_U8, &e);
    check(t && t->ndim == 1 && t->shape[0] == 5 && !memcmp(t->ibuf, u8v, 5), "U8 round trip");
    tensor_free(t);
    t = st_read_new(&f, "i32", DT_I32, &e);
    check(t && t->ndim == 2 && !memcmp(t->ibuf, i32v, sizeof i32v), "I32 round trip");
    tensor_free(t);
    t = st_read_new(&f, "i32", DT_I64, &e);
    int ok = t != NULL;
    for (int i = 0; ok && i < 4; i++) ok = ((int64_t *)t->ibuf)[i] == i32v[i];
    check(ok, "I32 widens into I64");
    tensor_free(t);
    t = st_read_new(&f, "i64", DT_I64, &e);
    check(t && !memcmp(t->ibuf, i64v, sizeof i64v), "I64 round trip (INT64_MIN included)");
    tensor_free(t);
    t = st_read_new(&f, "flag", DT_BOOL, &e);
    const uint8_t flagw[4] = {1, 0, 1, 1};
    check(t && st_find(&f, "flag")->dtype == ST_BOOL && !memcmp(t->ibuf, flagw, 4), "BOOL round trip");
    tensor_free(t);
    t = st_read_new(&f, "scalar", DT_REAL, &e);
    check(t && t->ndim == 0 && t->numel == 1 && t->data[0] == (real)-0.75, "0-D real round trip");
    tensor_free(t);
    int64_t stepv = 0;
    check(st_read_flat(&f, "step", DT_I64, &stepv, 1, &e) == 0 && stepv == 123456789012LL, "0-D I64 round trip");
    check(st_find(&f, "step")->ndim == 0, "0-D shape is []");
    t = st_read_new(&f, "empty", DT_REAL, &e);
    check(t && t->ndim == 2 && t->shape[0] == 0 && t->shape[1] == 4 && t->numel == 0, "empty (0, 4) round trip");
    tensor_free(t);
    real *bigv = malloc(10007 * sizeof(real));
    check(st_read_flat(&f, "big", DT_REAL, bigv, 10007, &e) == 0, "st_read_flat big: %s", e.msg);
    same = 1;
    for (int i = 0; i < 10007; i++) same &= bigv[i] == as_f32(big->data[i]);
    check(same, "10007 values across staging chunks round trip");
    free(bigv);
    t = st_read_new(&f, weird, DT_REAL, &e);
    check(t && t->data[0] == (real)2.5, "a name with quotes, backslashes, tabs, newlines, UTF-8 round trips");
    tensor_free(t);

    /* The memory image is the same bytes as the file. */
    StWriter w;
    st_writer_init(&w);
    for (int i = 0; i < 10; i++) st_writer_add(&w, names[i], ts[i]);
    for (int i = 0; i < 3; i++) st_writer_meta(&w, meta[i].key, meta[i].value);
    unsigned char *img;
    size_t n;
    check(st_writer_serialize(&w, &img, &n, &e) == 0, "serialize: %s", e.msg);
    check(n == f.size && !memcmp(img, f.bytes, n), "serialize writes the same bytes as save");
    free(img);
    /* a second meta call replaces the value */
    st_writer_meta(&w, "format", "np");
    check(w.nmeta == 3 && !strcmp(w.mval[0], "np"), "st_writer_meta replaces a key's value");
    st_writer_free(&w);
    st_close(&f);

    /* writer errors: a name used twice, the reserved name, missing data */
    st_writer_init(&w);
    st_writer_add(&w, "x", odd);
    st_writer_add(&w, "x", odd);
    expect_error("duplicate name", st_writer_save(&w, path, &e), &e, path, "used twice");
    st_writer_free(&w);
    st_writer_init(&w);
    st_writer_add(&w, "__metadata__", odd);
    expect_error("reserved name", st_writer_save(&w, path, &e), &e, path, "__metadata__");
    st_writer_free(&w);
    st_writer_init(&w);
    st_writer_add_array(&w, "nodata", DT_REAL, 1, DIMS(3), NULL);
    expect_error("no data", st_writer_save(&w, path, &e), &e, path, "no data");
    st_writer_free(&w);
    st_writer_init(&w);
    st_writer_add(&w, "bad\xff", odd);
    expect_error("non-UTF-8 name", st_writer_save(&w, path, &e), &e, path, "UTF-8");
    st_writer_free(&w);
    check(st_open(&f, path, &e) == 0 && f.n == 10, "failed saves left the good file in place");
    st_close(&f);
    remove(path);

    Tensor *all[] = {a, u8, i32, i64, flag, scalar, step, empty, big, odd};
    for (int i = 0; i < 10; i++) tensor_free(all[i]);
}

/* ==================================================================================================== */

static void declare_flow(ParamSet *ps) {
    paramset_init(ps);
    param_new(ps, "actnorm.loc", 4, DIMS(1, 8, 1, 1));
    param_new(ps, "actnorm.scale", 4, DIMS(1, 8, 1, 1));
    buffer_new(ps, "actnorm.initialized", DT_U8, 0, NULL);
    param_new(ps, "coupling.s.0.weight", 2, DIMS(16, 4));
    param_new(ps, "coupling.s.0.bias", 1, DIMS(16));
    buffer_new(ps, "shuffle.perm_idx", DT_I64, 1, DIMS(8));
    buffer_new(ps, "bn.num_batches_tracked", DT_I64, 0, NULL);
    buffer_new(ps, "bn.running_mean", DT_REAL, 1, DIMS(16));
    paramset_alloc(ps);
}

static void declare_ae(ParamSet *ps) {
    paramset_init(ps);
    param_new(ps, "conv.weight", 4, DIMS(4, 3, 3, 3));
    param_new(ps, "conv.bias", 1, DIMS(4));
    paramset_alloc(ps);
}

static void fill_set(ParamSet *ps, Rng *r) {
    for (int i = 0; i < ps->n; i++) {
        Tensor *t = ps->t[i];
        for (size_t k = 0; k < t->numel; k++) {
            switch (t->dtype) {
            case DT_REAL: t->data[k] = (real)rng_normal(r); break;
            case DT_U8: case DT_BOOL: ((uint8_t *)t->ibuf)[k] = (uint8_t)rng_below(r, 2); break;
            case DT_I32: ((int32_t *)t->ibuf)[k] = (int32_t)rng_below(r, 1000) - 500; break;
            case DT_I64: ((int64_t *)t->ibuf)[k] = (int64_t)rng_u64(r); break;
            }
        }
    }
}

static void fill_const(ParamSet *ps, real v) {
    for (int i = 0; i < ps->n; i++)
        if (ps->t[i]->dtype == DT_REAL) tensor_fill(ps->t[i], v);
}

/* Every value of b equals a's as stored (reals through float). */
static int sets_equal(const ParamSet *a, const ParamSet *b) {
    if (a->n != b->n) return 0;
    for (int i = 0; i < a->n; i++) {
        const Tensor *x = a->t[i], *y = b->t[i];
        if (strcmp(x->name, y->name) || !shape_equal(x, y) || x->dtype != y->dtype) return 0;
        for (size_t k = 0; k < x->numel; k++) {
            if (x->dtype == DT_REAL) {
                if (as_f32(x->data[k]) != y->data[k]) return 0;
            } else if (memcmp((const char *)x->ibuf + k * dtype_size(x->dtype),
                              (const char *)y->ibuf + k * dtype_size(x->dtype), dtype_size(x->dtype))) {
                return 0;
            }
        }
    }
    return 1;
}

static int all_equal(const ParamSet *ps, real v) {
    for (int i = 0; i < ps->n; i++)
        if (ps->t[i]->dtype == DT_REAL)
            for (size_t k = 0; k < ps->t[i]->numel; k++)
                if (ps->t[i]->data[k] != v) return 0;
    return 1;
}

static void test_paramset(void) {
    Rng r;
    rng_seed(&r, 11);
    ParamSet flow, ae, flow2, ae2;
    declare_flow(&flow);
    declare_ae(&ae);
    fill_set(&flow, &r);
    fill_set(&ae, &r);
    I2vError e = {{0}};
    char path[512], multi[512];
    tpath(path, sizeof path, "flow.safetensors");
    tpath(multi, sizeof multi, "multi.safetensors");

    /* one set, no prefix */
    const StMeta meta[] = {{"model", "flow"}};
    check(st_save_paramset(path, &flow, NULL, 1, meta, &e) == 0, "st_save_paramset: %s", e.msg);
    declare_flow(&flow2);
    int n = st_load_paramset_file(path, &flow2, NULL, &e);
    check(n == flow.n, "strict load of a whole set returns %d, got %d (%s)", flow.n, n, n < 0 ? e.msg : "");
    check(sets_equal(&flow, &flow2), "ParamSet round trip: every parameter and buffer equal");

    /* several sets and training state in one file */
    StWriter w;
    st_writer_init(&w);
    st_writer_add_paramset(&w, &flow, "flow.");
    st_writer_add_paramset(&w, &ae, "ae.");
    int64_t step = 4242, seed = -17;
    st_writer_add_array(&w, "train.step", DT_I64, 0, NULL, &step);
    st_writer_add_array(&w, "train.seed", DT_I64, 0, NULL, &seed);
    real moments[5] = {1, 2, 3, 4, 5};
    st_writer_add_array(&w, "adam.m", DT_REAL, 1, DIMS(5), moments);
    st_writer_meta(&w, "epoch", "3");
    check(st_writer_save(&w, multi, &e) == 0, "save several sets: %s", e.msg);
    st_writer_free(&w);

    StFile f;
    check(st_open(&f, multi, &e) == 0, "open multi: %s", e.msg);
    paramset_free(&flow2);
    declare_flow(&flow2);
    declare_ae(&ae2);
    StLoadOpts of = {"flow.", 1, 0}, oa = {"ae.", 1, 0};
    check(st_load_paramset(&f, &flow2, &of, &e) == flow.n, "load flow.* strictly: %s", e.msg);
    check(st_load_paramset(&f, &ae2, &oa, &e) == ae.n, "load ae.* strictly: %s", e.msg);
    check(sets_equal(&flow, &flow2) && sets_equal(&ae, &ae2), "both sets round trip through one file");
    int64_t s2 = 0, seed2 = 0;
    real m2[5] = {0};
    check(st_read_flat(&f, "train.step", DT_I64, &s2, 1, &e) == 0 && s2 == 4242, "training step read back");
    check(st_read_flat(&f, "train.seed", DT_I64, &seed2, 1, &e) == 0 && seed2 == -17, "seed read back");
    check(st_read_flat(&f, "adam.m", DT_REAL, m2, 5, &e) == 0 && m2[4] == 5, "flat moments read back");
    expect_error("flat count", st_read_flat(&f, "adam.m", DT_REAL, m2, 4, &e), &e, multi, "4 expected");
    check(!strcmp(st_meta_get(&f, "epoch"), "3"), "metadata of the multi file");

    /* strict without the prefix: every name is missing and every file tensor unexpected */
    fill_const(&flow2, 42);
    int rc = st_load_paramset(&f, &flow2, NULL, &e);
    expect_error("strict without prefix", rc, &e, multi, "missing from the file");
    check(strstr(e.msg, "not in the model") != NULL, "unexpected names are listed too: %s", e.msg);
    check(all_equal(&flow2, 42), "a failed load leaves the set untouched");
    paramset_free(&flow2);

    /* a set that differs: one shape, one extra parameter, one buffer the file has that the set lacks */
    ParamSet d;
    paramset_init(&d);
    param_new(&d, "actnorm.loc", 4, DIMS(1, 4, 1, 1));           /* file: (1, 8, 1, 1) */
    param_new(&d, "actnorm.scale", 4, DIMS(1, 8, 1, 1));
    buffer_new(&d, "actnorm.initialized", DT_U8, 0, NULL);
    param_new(&d, "coupling.s.0.weight", 2, DIMS(16, 4));
    param_new(&d, "coupling.s.0.bias", 1, DIMS(16));
    param_new(&d, "extra.weight", 1, DIMS(3));                   /* not in the file */
    buffer_new(&d, "bn.num_batches_tracked", DT_I64, 0, NULL);
    buffer_new(&d, "bn.running_mean", DT_REAL, 1, DIMS(16));
    paramset_alloc(&d);                                          /* shuffle.perm_idx is not declared */
    fill_const(&d, 42);
    rc = st_load_paramset(&f, &d, &of, &e);
    expect_error("mismatching set", rc, &e, multi, "flow.extra.weight");
    check(strstr(e.msg, "'flow.shuffle.perm_idx'") != NULL, "unexpected name listed: %s", e.msg);
    check(strstr(e.msg, "flow.actnorm.loc is (1, 8, 1, 1) in the file, (1, 4, 1, 1) in the model") != NULL,
          "shape mismatch shows both shapes: %s", e.msg);
    check(strstr(e.msg, "1 missing") && strstr(e.msg, "1 not in the model") && strstr(e.msg, "1 with another shape"),
          "counts of each kind: %s", e.msg);
    check(all_equal(&d, 42), "nothing written on failure");
    /* not strict: missing and extra names are fine, the shape mismatch is still an error */
    StLoadOpts loose = {"flow.", 0, 0};
    expect_error("loose with a shape mismatch", st_load_paramset(&f, &d, &loose, &e), &e, multi, "another shape");
    check(strstr(e.msg, "missing") == NULL, "loose load does not complain about missing names: %s", e.msg);
    paramset_free(&d);

    paramset_init(&d);
    param_new(&d, "actnorm.scale", 4, DIMS(1, 8, 1, 1));
    param_new(&d, "extra.weight", 1, DIMS(3));
    paramset_alloc(&d);
    fill_const(&d, 42);
    n = st_load_paramset(&f, &d, &loose, &e);
    check(n == 1, "loose load returns the number loaded (1), got %d", n);
    check(d.t[0]->data[3] == as_f32(flow.t[1]->data[3]) && d.t[1]->data[0] == 42, "loose load copied only matches");
    /* strict with allow_extra: the set's names must all be there, the file may hold more */
    StLoadOpts extra_ok = {"flow.", 1, 1};
    expect_error("strict, allow_extra, missing one", st_load_paramset(&f, &d, &extra_ok, &e), &e, multi,
                 "1 missing from the file: flow.extra.weight");
    paramset_free(&d);
    paramset_init(&d);
    param_new(&d, "actnorm.scale", 4, DIMS(1, 8, 1, 1));
    paramset_alloc(&d);
    check(st_load_paramset(&f, &d, &extra_ok, &e) == 1, "strict with allow_extra loads a subset: %s", e.msg);
    paramset_free(&d);

    /* a dtype the set cannot take */
    paramset_init(&d);
    param_new(&d, "shuffle.perm_idx", 1, DIMS(8));               /* I64 in the file, real here */
    paramset_alloc(&d);
    expect_error("dtype mismatch", st_load_paramset(&f, &d, &extra_ok, &e), &e, multi,
                 "flow.shuffle.perm_idx is I64 in the file, real in the model");
    paramset_free(&d);

    /* a long report is cut short and says how much was left out */
    paramset_init(&d);
    for (int i = 0; i < 200; i++) {
        char nm[96];
        snprintf(nm, sizeof nm, "a.rather.long.module.path.to.make.the.message.overflow.layer%d.weight", i);
        param_new(&d, nm, 1, DIMS(2));
    }
    paramset_alloc(&d);
    rc = st_load_paramset(&f, &d, &of, &e);
    expect_error("long report", rc, &e, multi, "more)");
    check(strlen(e.msg) < sizeof e.msg - 1, "the long report fits the message buffer");
    paramset_free(&d);

    st_close(&f);
    remove(path);
    remove(multi);
    paramset_free(&flow);
    paramset_free(&ae);
    paramset_free(&ae2);
}

/* ==================================================================================================== */

static void test_fixture(void) {
    StFile f;
    I2vError e = {{0}};
    const char *path = "tests/data/fixture.safetensors";
    int rc = st_open(&f, path, &e);
    check(rc == 0, "open the Python-made fixture: %s", e.msg);
    if (rc) return;
    check(f.n == 11 && f.nmeta == 3, "fixture: 11 tensors and 3 metadata entries (got %zu, %zu)", f.n, f.nmeta);
    const char *expect_order[] = {"brain", "empty", "f32", "f64", "flag", "half", "i16", "i32", "i64", "u8",
                                  "\xc3\xbcn\xc3\xaf"};
    int order_ok = f.n == 11;
    for (size_t i = 0; order_ok && i < 11; i++) order_ok = !strcmp(f.entries[i].name, expect_order[i]);
    check(order_ok, "fixture tensors sorted by name, \\u escapes decoded");

    Tensor *t = st_read_new(&f, "half", DT_REAL, &e);
    const double half_want[8] = {1.0, -2.0, 0.5, 65504.0, 0x1p-24, -0.0, INFINITY, 0.333251953125};
    int ok = t && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 4;
    for (int i = 0; ok && i < 8; i++) ok = t->data[i] == (real)half_want[i];
    check(ok, "F16 values (normal, max, smallest subnormal, -0, inf, 1/3 rounded)");
    check(t && signbit(t->data[5]), "F16 -0 keeps its sign");
    tensor_free(t);

    t = st_read_new(&f, "brain", DT_REAL, &e);
    const double bf_want[5] = {1.0, -2.5, 255.0 * 0x1p120, 0x1p-133, 0.333984375};
    ok = t && t->numel == 5;
    for (int i = 0; ok && i < 5; i++) ok = t->data[i] == (real)bf_want[i];
    check(ok, "BF16 values (1, -2.5, largest finite, smallest subnormal, 0.333984375)");
    tensor_free(t);

    t = st_read_new(&f, "f64", DT_REAL, &e);
    check(t && t->data[0] == (real)0.1 && t->data[1] == (real)-1e10 && t->data[2] == (real)2.5,
          "F64 values (rounded to real), read from an unaligned offset");
    tensor_free(t);
    t = st_read_new(&f, "f32", DT_REAL, &e);
    check(t && t->ndim == 0 && t->data[0] == (real)3.5, "0-D F32 = 3.5");
    tensor_free(t);

    t = st_read_new(&f, "i64", DT_I64, &e);
    check(t && ((int64_t *)t->ibuf)[0] == -1 && ((int64_t *)t->ibuf)[1] == ((int64_t)1 << 40) &&
              ((int64_t *)t->ibuf)[2] == INT64_MIN, "I64 values");
    tensor_free(t);
    t = st_read_new(&f, "i32", DT_I32, &e);
    check(t && ((int32_t *)t->ibuf)[0] == 7 && ((int32_t *)t->ibuf)[1] == -7 && ((int32_t *)t->ibuf)[2] == INT32_MAX &&
              ((int32_t *)t->ibuf)[3] == INT32_MIN, "I32 values");
    tensor_free(t);
    t = st_read_new(&f, "i16", DT_I32, &e);
    check(t && ((int32_t *)t->ibuf)[0] == -300 && ((int32_t *)t->ibuf)[1] == 300, "I16 widens into I32");
    tensor_free(t);
    t = st_read_new(&f, "u8", DT_U8, &e);
    check(t && ((uint8_t *)t->ibuf)[2] == 200 && ((uint8_t *)t->ibuf)[3] == 255, "U8 values");
    tensor_free(t);
    t = st_read_new(&f, "u8", DT_BOOL, &e);
    check(t && !memcmp(t->ibuf, "\0\1\1\1", 4), "U8 loads into BOOL as != 0");
    tensor_free(t);
    t = st_read_new(&f, "u8", DT_I64, &e);
    check(t && ((int64_t *)t->ibuf)[3] == 255, "U8 widens into I64");
    tensor_free(t);
    t = st_read_new(&f, "flag", DT_BOOL, &e);
    check(t && !memcmp(t->ibuf, "\1\0\1", 3), "BOOL values");
    tensor_free(t);
    t = st_read_new(&f, "flag", DT_U8, &e);
    check(t != NULL, "BOOL loads into U8");
    tensor_free(t);
    t = st_read_new(&f, "empty", DT_REAL, &e);
    check(t && t->numel == 0 && t->ndim == 2 && t->shape[1] == 3, "empty (0, 3) tensor");
    tensor_free(t);
    t = st_read_new(&f, "\xc3\xbcn\xc3\xaf", DT_REAL, &e);
    check(t && t->data[0] == (real)1.25, "non-ASCII name");
    tensor_free(t);

    const char *note = st_meta_get(&f, "note"), *emoji = st_meta_get(&f, "emoji");
    check(note && !strcmp(note, "quote \" backslash \\ newline \n tab \t"), "metadata escapes decoded");
    check(emoji && !strcmp(emoji, "\xf0\x9f\x98\x80 \xc3\xa9"), "surrogate pair decoded to UTF-8");
    check(st_meta_get(&f, "format") && !strcmp(st_meta_get(&f, "format"), "pt"), "metadata format = pt");

    /* conversions that are refused */
    t = st_read_new(&f, "half", DT_I64, &e);
    check(t == NULL, "F16 into I64 refused");
    if (!t) expect_error("F16 into I64", -1, &e, path, "cannot be loaded into a I64 tensor");
    tensor_free(t);
    t = st_read_new(&f, "i64", DT_I32, &e);
    check(t == NULL, "I64 into I32 refused (it could lose values)");
    tensor_free(t);
    st_close(&f);
}

/* Every F16 and BF16 bit pattern against the definition of the formats. */
static void test_half_sweep(void) {
    unsigned char *raw = malloc(2 * 65536);
    for (unsigned i = 0; i < 65536; i++) {
        raw[2 * i] = (unsigned char)(i & 0xff);
        raw[2 * i + 1] = (unsigned char)(i >> 8);
    }
    const char *json[2] = {"{\"h\":{\"dtype\":\"F16\",\"shape\":[256,256],\"data_offsets\":[0,131072]}}",
                           "{\"h\":{\"dtype\":\"BF16\",\"shape\":[65536],\"data_offsets\":[0,131072]}}"};
    for (int kind = 0; kind < 2; kind++) {
        size_t n;
        unsigned char *img = make_image(json[kind], raw, 2 * 65536, &n);
        StFile f;
        I2vError e = {{0}};
        Tensor *t = NULL;
        if (st_parse(&f, img, n, "sweep", &e) == 0) {
            t = st_read_new(&f, "h", DT_REAL, &e);
            st_close(&f);
        }
        check(t != NULL, "sweep %d parsed: %s", kind, e.msg);
        int bad = 0;
        for (unsigned i = 0; t && i < 65536; i++) {
            unsigned eb = kind ? 8 : 5, mb = kind ? 7 : 10, bias = kind ? 127 : 15;
            unsigned ex = (i >> mb) & ((1u << eb) - 1), man = i & ((1u << mb) - 1);
            double v;
            if (ex == (1u << eb) - 1) v = man ? NAN : INFINITY;
            else if (ex == 0) v = ldexp((double)man, 1 - (int)bias - (int)mb);
            else v = ldexp((double)(man | 1u << mb), (int)ex - (int)bias - (int)mb);
            if (i >> 15) v = -v;
            double got = (double)t->data[i];
            if (isnan(v) ? !isnan(got) : (got != v || signbit(got) != signbit(v))) bad++;
        }
        check(t && bad == 0, "%s: all 65536 bit patterns convert exactly (%d wrong)", kind ? "BF16" : "F16", bad);
        tensor_free(t);
        free(img);
    }
    free(raw);
}

/* ==================================================================================================== */

static void test_bad_inputs(void) {
    StFile f;
    I2vError e = {{0}};
    const char *L = "bad.safetensors";
    unsigned char tiny[5] = {1, 0, 0, 0, 0};
    expect_error("5 bytes", st_parse(&f, tiny, 5, L, &e), &e, L, "too short");

    unsigned char hdr[32] = {0};
    hdr[0] = 0xe8; hdr[1] = 0x03;   /* 1000 */
    expect_error("header past the end", st_parse(&f, hdr, sizeof hdr, L, &e), &e, L, "beyond the end of the file");
    memset(hdr, 0, 8);
    hdr[5] = 1;                      /* 2^40 */
    expect_error("huge header", st_parse(&f, hdr, sizeof hdr, L, &e), &e, L, "exceeds the 100000000-byte limit");

    /* valid corner cases first: they must parse */
    const char *good[] = {"{}", " { } ", "{\"__metadata__\":{}}", "{\"__metadata__\":{\"a\":\"b\"}}",
                          "{\"e\":{\"shape\":[0],\"data_offsets\":[0,0],\"dtype\":\"F32\"}}",
                          "{\n\t\"s\" : {\"dtype\":\"U8\",\"shape\":[],\"data_offsets\":[3,4]}\r\n}"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        size_t n;
        unsigned char *img = make_image(good[i], NULL, 4, &n);
        int rc = st_parse(&f, img, n, L, &e);
        check(rc == 0, "valid header %s: %s", good[i], e.msg);
        if (!rc) st_close(&f);
        free(img);
    }

#define T1 "\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]"
    bad_header("", 4, "expected '{' at the start of the header");
    bad_header("[1, 2]", 4, "expected '{'");
    bad_header("{\"a\":{" T1 "}", 4, "expected ',' or '}'");
    bad_header("{\"a\" {" T1 "}}", 4, "expected ':' after a tensor name");
    bad_header("{\"a\":{" T1 "},}", 4, "expected a string");
    bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,],\"data_offsets\":[0,4]}}", 4, "non-negative integer");
    bad_header("{\"a\":{" T1 "}} xyz", 4, "unexpected bytes after the header object");
    bad_header("{\"a\":{" T1 "}}}", 4, "unexpected bytes after");
    bad_header("{\"a\\q\":{" T1 "}}", 4, "invalid escape \\q");
    bad_header("{\"a\\u12\":{" T1 "}}", 4, "4 hex digits");
    bad_header("{\"\\ud800\":{" T1 "}}", 4, "without its low half");
    bad_header("{\"\\udc00\":{" T1 "}}", 4, "lone low surrogate");
    bad_header("{\"\\ud800\\u0041\":{" T1 "}}", 4, "not a low surrogate");
    bad_header("{\"a\\u0000\":{" T1 "}}", 4, "NUL");
    bad_header("{\"a\xff\":{" T1 "}}", 4, "invalid UTF-8");
    bad_header("{\"a\xc0\xaf\":{" T1 "}}", 4, "invalid UTF-8");          /* overlong '/' */
    bad_header("{\"a\xed\xa0\x80\":{" T1 "}}", 4, "invalid UTF-8");      /* encoded surrogate */
    bad_header("{\"a\nb\":{" T1 "}}", 4, "control byte 0x0a");
    bad_header("{\"a", 4, "unterminated string");
    bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4, "must hold integers");
    bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1e2],\"data_offsets\":[0,4]}}", 4, "must hold integers");
    bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, "non-negative integer");
    bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[01],\"data_offsets\":[0,4]}}", 4, "leading zero");
    bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999999],\"data_offsets\":[0,4]}}", 4,
               "number too large");
    bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296],\"data_offsets\":[0,4]}}", 4, "too large (at most");
    bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
               "more than 8 dimensions");
    bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":\"1\",\"data_offsets\":[0,4]}}", 4, "must be an array");
    bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4, "between the two data_offsets");
    bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 4, "after the two");
    bad_header("{\"a\":{" T1 ",\"extra\":1}}", 4, "unexpected field 'extra'");
    bad_header("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "lacks \"shape\"");
    bad_header("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "lacks \"dtype\"");
    bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "lacks \"data_offsets\"");
    bad_header("{\"a\":{" T1 ",\"dtype\":\"F32\"}}", 4, "two dtypes");
    bad_header("{\"a\":[]}", 4, "expected '{'");
    bad_header("{\"a\":null}", 4, "expected '{'");
    bad_header("{\"a\":{\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "expected a string (a dtype)");
    bad_header("{\"__metadata__\":{\"k\":1}}", 4, "must be a string");
    bad_header("{\"__metadata__\":[]}", 4, "must be an object of strings");
    bad_header("{\"__metadata__\":{},\"__metadata__\":{}}", 4, "\"__metadata__\" appears twice");
    bad_header("{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}", 4, "metadata key 'k' appears twice");
    bad_header("{\"a\":{" T1 "},\"a\":{" T1 "}}", 4, "tensor 'a' appears twice");
    /* semantic errors */
    bad_header("{\"a\":{\"dtype\":\"F128\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "unknown dtype 'F128'");
    bad_header("{\"a\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "unknown dtype");
    bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[100],\"data_offsets\":[0,400]}}", 4, "out of range");
    bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 12, "begin after end");
    bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,12]}}", 16, "needs 16 bytes");
    bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "overlap");
    bad_header("{\"a\":{\"dtype\":\"U8\",\"shape\":[12],\"data_offsets\":[0,12]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 12, "overlap");
    bad_header("{\"a\":{\"dtype\":\"F64\",\"shape\":[2147483647,2147483647,2147483647,2147483647,2147483647,"
               "2147483647,2147483647,2147483647],\"data_offsets\":[0,8]}}", 8, "too many elements");
    bad_header("{\"a\":{\"dtype\":\"F64\",\"shape\":[2147483647,2147483647],\"data_offsets\":[0,8]}}", 8,
               "too many bytes");
    bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,18446744073709551615]}}", 4,
               "out of range");
#undef T1

    /* lookups in a valid file */
    size_t n;
    unsigned char *img = make_image("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", NULL, 8, &n);
    int rc = st_parse(&f, img, n, L, &e);
    check(rc == 0, "a valid one-tensor image: %s", e.msg);
    if (!rc) {
        Tensor *t3 = tensor_alloc(1, DIMS(3));
        expect_error("missing name", st_read(&f, "nope", t3, &e), &e, L, "no tensor named 'nope'");
        expect_error("wrong shape", st_read(&f, "a", t3, &e), &e, L, "shape (2) in the file, (3) expected");
        Tensor *ti = tensor_alloc_dtype(DT_I64, 1, DIMS(2));
        expect_error("wrong dtype", st_read(&f, "a", ti, &e), &e, L, "is F32 in the file and cannot be loaded");
        tensor_free(t3);
        tensor_free(ti);
        st_close(&f);
    }
    free(img);

    char path[512];
    tpath(path, sizeof path, "does-not-exist.safetensors");
    expect_error("missing file", st_open(&f, path, &e), &e, path, "cannot open");
    expect_error("a directory", st_open(&f, g_dir, &e), &e, g_dir, "not a regular file");
    st_close(&f);   /* safe on the empty table a failure leaves */
}

/* ==================================================================================================== */

static void save_one(const char *path, int len, real v, I2vError *e, int *rc) {
    Tensor *t = tensor_alloc(1, DIMS(len));
    tensor_fill(t, v);
    const char *names[] = {"w"};
    const Tensor *ts[] = {t};
    *rc = st_save(path, 1, names, ts, 0, NULL, e);
    tensor_free(t);
}

static void test_atomic(void) {
    I2vError e = {{0}};
    int rc;
    save_one("/nonexistent-i2v-dir/ckpt.safetensors", 4, 1, &e, &rc);
    expect_error("missing directory", rc, &e, "/nonexistent-i2v-dir/ckpt.safetensors", "cannot create the temporary");

    char path[512], tmp[600];
    tpath(path, sizeof path, "ckpt.safetensors");
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    save_one(path, 16, 1, &e, &rc);
    check(rc == 0, "first save: %s", e.msg);
    size_t n0 = 0, n1 = 0;
    unsigned char *before = read_whole(path, &n0);
    check(before != NULL, "first save readable");

    /* overwrite: a new save replaces the old file */
    save_one(path, 32, 2, &e, &rc);
    StFile f;
    check(rc == 0 && st_open(&f, path, &e) == 0 && f.n == 1 && f.entries[0].numel == 32, "second save replaced");
    st_close(&f);
    free(before);
    before = read_whole(path, &n0);

    /* a disk that fills up: writes beyond 64 KiB fail with EFBIG (SIGXFSZ ignored) */
    struct rlimit old;
    if (getrlimit(RLIMIT_FSIZE, &old) == 0) {
        struct rlimit small = old;
        small.rlim_cur = 65536;
        void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
        if (setrlimit(RLIMIT_FSIZE, &small) == 0) {
            save_one(path, 100000, 3, &e, &rc);
            setrlimit(RLIMIT_FSIZE, &old);
            expect_error("full disk", rc, &e, path, "the previous file, if any, is unchanged");
            unsigned char *after = read_whole(path, &n1);
            check(after && n1 == n0 && !memcmp(after, before, n0), "a failed save leaves the old file byte for byte");
            check(!file_exists(tmp), "a failed save removes its temporary file");
            free(after);
        } else {
            check(0, "setrlimit(RLIMIT_FSIZE) failed");
        }
        signal(SIGXFSZ, prev);
    }

    /* a target that cannot be replaced (a directory): the rename fails, the temporary file goes */
    char dirt[512], dtmp[600];
    tpath(dirt, sizeof dirt, "adir.safetensors");
    snprintf(dtmp, sizeof dtmp, "%s.tmp.%ld", dirt, (long)getpid());
    check(mkdir(dirt, 0700) == 0, "mkdir %s", dirt);
    save_one(dirt, 4, 1, &e, &rc);
    expect_error("target is a directory", rc, &e, dirt, "renaming");
    struct stat sb;
    check(stat(dirt, &sb) == 0 && S_ISDIR(sb.st_mode), "the directory is untouched");
    check(!file_exists(dtmp), "no temporary file left after a failed rename");
    rmdir(dirt);

    /* truncated copies of a good file are all detected */
    char trunc[512];
    tpath(trunc, sizeof trunc, "trunc.safetensors");
    size_t hl = 0;
    for (int i = 0; i < 8; i++) hl |= (size_t)before[i] << (8 * i);
    const size_t cuts[] = {0, 4, 7, 8, 8 + hl / 2, 8 + hl - 1, 8 + hl, 8 + hl + 1, n0 - 4, n0 - 1};
    const char *phrase[] = {"too short", "too short", "too short", "beyond the end", "beyond the end",
                            "beyond the end", "out of range", "out of range", "out of range", "out of range"};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        write_whole(trunc, before, cuts[i]);
        char what[64];
        snprintf(what, sizeof what, "truncated to %zu of %zu bytes", cuts[i], n0);
        expect_error(what, st_open(&f, trunc, &e), &e, trunc, phrase[i]);
    }
    remove(trunc);
    remove(path);
    free(before);
}

/* ==================================================================================================== */

/* Runs the parser on one buffer; if it parses, converts every tensor to every dtype it allows. Returns
 * 1 for success, 0 for a clean error, -1 for an error whose message does not name the buffer. */
static int fuzz_one(const unsigned char *buf, size_t n, double *sink) {
    StFile f;
    I2vError e = {{0}};
    if (st_parse(&f, buf, n, "fuzz", &e)) return strncmp(e.msg, "fuzz: ", 6) ? -1 : 0;
    const DType dts[] = {DT_REAL, DT_I64, DT_I32, DT_U8, DT_BOOL};
    for (size_t i = 0; i < f.n; i++)
        for (int k = 0; k < 5; k++) {
            if (!st_can_convert(f.entries[i].dtype, dts[k]) || f.entries[i].ndim > I2V_MAXDIM) continue;
            Tensor *t = st_read_new(&f, f.entries[i].name, dts[k], &e);
            if (t && t->numel) *sink += dts[k] == DT_REAL ? (double)t->data[0] : (double)((uint8_t *)t->ibuf)[0];
            tensor_free(t);
        }
    (void)st_meta_get(&f, "x");
    st_close(&f);
    return 1;
}

static void test_fuzz(void) {
    /* the bases: the Python fixture and a writer-made image with every dtype and metadata */
    size_t nfix = 0;
    unsigned char *fix = read_whole("tests/data/fixture.safetensors", &nfix);
    check(fix != NULL, "fuzz: fixture readable");
    StWriter w;
    st_writer_init(&w);
    real r6[6] = {1, -2, 3.5f, 0, 1e-3f, 7};
    int32_t i4[4] = {1, -2, 3, -4};
    int64_t i2[2] = {5, -6};
    uint8_t u3[3] = {1, 0, 200};
    st_writer_add_array(&w, "r", DT_REAL, 2, DIMS(2, 3), r6);
    st_writer_add_array(&w, "i", DT_I32, 1, DIMS(4), i4);
    st_writer_add_array(&w, "l", DT_I64, 2, DIMS(1, 2), i2);
    st_writer_add_array(&w, "u", DT_U8, 1, DIMS(3), u3);
    st_writer_add_array(&w, "b", DT_BOOL, 1, DIMS(3), u3);
    st_writer_add_array(&w, "s", DT_REAL, 0, NULL, r6);
    st_writer_meta(&w, "k\"ey", "v\\al\xc3\xa9");
    unsigned char *gen;
    size_t ngen;
    I2vError e = {{0}};
    check(st_writer_serialize(&w, &gen, &ngen, &e) == 0, "fuzz: serialize base: %s", e.msg);
    st_writer_free(&w);

    Rng r;
    rng_seed(&r, 20240601);
    int cases = quick_mode() ? 3000 : 20000;
    int nok = 0, nerr = 0, nbadmsg = 0;
    double sink = 0;
    const unsigned char special[] = "{}[]\",:\\u0123456789 -.eE\xff\xc3\x80\n";
    for (int c = 0; c < cases; c++) {
        const unsigned char *base = (c & 1) && fix ? fix : gen;
        size_t nb = (c & 1) && fix ? nfix : ngen;
        size_t hl = 0;
        for (int i = 0; i < 8; i++) hl |= (size_t)base[i] << (8 * i);
        size_t hend = 8 + hl < nb ? 8 + hl : nb;   /* mutations mostly hit the header */
        size_t n = nb;
        unsigned char *buf = malloc(nb + 1);
        memcpy(buf, base, nb);
        int kind = (int)rng_below(&r, 8);
        int reps = 1 + (int)rng_below(&r, 3);
        for (int k = 0; k < reps; k++) {
            switch (kind) {
            case 0: {   /* bit flips in the header */
                size_t i = rng_below(&r, (uint32_t)hend);
                buf[i] ^= (unsigned char)(1u << rng_below(&r, 8));
                break;
            }
            case 1: {   /* a byte of the header becomes a JSON-significant or random byte */
                size_t i = 8 + rng_below(&r, (uint32_t)(hend - 8));
                buf[i] = rng_below(&r, 2) ? special[rng_below(&r, sizeof special - 1)]
                                          : (unsigned char)rng_below(&r, 256);
                break;
            }
            case 2:     /* truncation */
                n = rng_below(&r, (uint32_t)n + 1);
                k = reps;
                break;
            case 3: {   /* bit flips anywhere */
                size_t i = rng_below(&r, (uint32_t)n);
                buf[i] ^= (unsigned char)(1u << rng_below(&r, 8));
                break;
            }
            case 4: {   /* a digit of the header changes: shapes and offsets go wrong */
                size_t i = 8 + rng_below(&r, (uint32_t)(hend - 8));
                for (size_t j = 0; j < hend - 8; j++, i = i + 1 < hend ? i + 1 : 8)
                    if (buf[i] >= '0' && buf[i] <= '9') {
                        buf[i] = (unsigned char)('0' + rng_below(&r, 10));
                        break;
                    }
                break;
            }
            case 5: {   /* delete a header byte, keeping the length field consistent */
                size_t i = 8 + rng_below(&r, (uint32_t)(hend - 8));
                memmove(buf + i, buf + i + 1, n - i - 1);
                n--;
                hend--;
                for (int b = 0; b < 8; b++) buf[b] = (unsigned char)((uint64_t)(hend - 8) >> (8 * b));
                break;
            }
            case 6: {   /* insert a byte into the header, keeping the length field consistent */
                if (k) break;   /* buf has room for one */
                size_t i = 8 + rng_below(&r, (uint32_t)(hend - 8 + 1));
                memmove(buf + i + 1, buf + i, n - i);
                buf[i] = special[rng_below(&r, sizeof special - 1)];
                n++;
                hend++;
                for (int b = 0; b < 8; b++) buf[b] = (unsigned char)((uint64_t)(hend - 8) >> (8 * b));
                break;
            }
            case 7:     /* a wrong header length */
                buf[rng_below(&r, 8)] = (unsigned char)rng_below(&r, 256);
                break;
            }
        }
        /* an exact-size copy, so that any read past the end is caught by ASan */
        unsigned char *exact = malloc(n ? n : 1);
        memcpy(exact, buf, n);
        free(buf);
        int res = fuzz_one(exact, n, &sink);
        free(exact);
        if (res > 0) nok++;
        else if (res == 0) nerr++;
        else nbadmsg++;
    }
    check(nbadmsg == 0, "fuzz: every error message names the buffer (%d did not)", nbadmsg);
    check(nok > 0 && nerr > 0, "fuzz: %d cases, %d parsed, %d rejected, none crashed", cases, nok, nerr);
    printf("fuzz: %d cases, %d parsed, %d rejected (checksum %g)\n", cases, nok, nerr, sink);
    free(fix);
    free(gen);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/i2v_st_XXXXXX");
    if (!mkdtemp(g_dir)) {
        check(0, "mkdtemp failed");
        return check_summary("test_safetensors");
    }
    double t0 = now_seconds();
    test_roundtrip();
    test_paramset();
    test_fixture();
    test_half_sweep();
    test_bad_inputs();
    test_atomic();
    test_fuzz();
    check(rmdir(g_dir) == 0, "the temporary directory is empty at the end (no stray .tmp files)");
    printf("test_safetensors: %.2f s\n", now_seconds() - t0);
    return check_summary("test_safetensors");
}
