/* prepare.c: data preparation. BAIR's TFRecords become the folder layout the BAIR loader reads
 * (data/bair/convert_bair.py without TensorFlow), and the synthetic set is exported to the layouts of the
 * four paper data sets and to BAIR-like TFRecords, so every loader runs without a download.
 * What it is not: a video decoder (iPER's and the others' frames are extracted with standard tools).
 *
 * Dimension legend: T frames, C = 3 (RGB), S square size, H = W = 64 for BAIR.
 */
#include "program/prepare.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "formats/files.h"
#include "formats/png.h"
#include "formats/jpeg.h"
#include "formats/image.h"

/* ==== exports ===================================================================================================== */
static int write_frames(const real *video, int T, int S, const char *dir, const char *prefix, const char *ext,
                        I2vError *err) {
    if (data_mkdirs(dir, err)) return -1;
    uint8_t *rgb = xmalloc((size_t)T * S * S * 3);
    video_to_rgb8(video, (size_t)T, (size_t)S, (size_t)S, rgb);
    int rc = 0;
    char path[DATA_PATH_MAX];
    for (int f = 0; f < T && rc == 0; f++) {
        Image im = {(size_t)S, (size_t)S, 3, 8, rgb + (size_t)f * S * S * 3};
        if (data_join(path, sizeof path, err, "%s/%s%d.%s", dir, prefix, f, ext)) rc = -1;
        else if (strcmp(ext, "png") == 0) rc = png_write(path, &im, err);
        else rc = jpeg_write(path, &im, 95, JPEG_444, err);
    }
    free(rgb);
    return rc;
}

static int write_text(const char *path, const char *text, I2vError *err) {
    char dir[DATA_PATH_MAX];
    if (data_join(dir, sizeof dir, err, "%s", path)) return -1;
    char *slash = strrchr(dir, '/');
    if (slash) {
        *slash = 0;
        if (data_mkdirs(dir, err)) return -1;
    }
    return write_file_bytes(path, (const uint8_t *)text, strlen(text), err);
}

void synth_export_iper_name(DataMode split, int i, char *name, size_t cap) {
    /* <actor>_<outfit>_<action>; the action digit (1 or 2) weights the video in the iPER loader */
    snprintf(name, cap, "%d_1_%d", 1000 * ((int)split + 1) + i, 1 + i % 2);
}

/* Appends to a growing text. */
static void text_add(char **s, size_t *n, size_t *cap, const char *add) {
    size_t l = strlen(add);
    if (*n + l + 1 > *cap) {
        *cap = (*n + l + 1) * 2;
        char *ns = realloc(*s, *cap);
        I2V_ASSERT(ns, "out of memory");
        *s = ns;
    }
    memcpy(*s + *n, add, l + 1);
    *n += l;
}

int synth_export(const SynthConfig *sc, uint64_t seed, const SynthExport *ex, const char *root, I2vError *err) {
    SynthConfig c = *sc;
    c.frames = ex->frames;
    c.size = ex->size;
    if (c.frames < 1 || c.frames > SYNTH_MAX_FRAMES || c.size < 16)
        return err_set(err, "synthetic export: %d frames of %d px (expected 1..%d frames, >= 16 px)", c.frames, c.size,
                       SYNTH_MAX_FRAMES);
    if (ex->layout == DATA_BAIR && c.frames != BAIR_FRAMES)
        return err_set(err, "synthetic export to BAIR: %d frames, the BAIR loader reads exactly %d", c.frames, BAIR_FRAMES);
    if (ex->layout == DATA_SYNTHETIC) return err_set(err, "synthetic export: choose a folder layout");
    if (ex->layout == DATA_DTDB && strcmp(ex->image_format, "png") && strcmp(ex->image_format, "jpg"))
        return err_set(err, "synthetic export to DTDB: image_format '%s' (png or jpg)", ex->image_format);
    int T = c.frames, S = c.size;
    real *video = xmalloc((size_t)T * 3 * S * S * sizeof(real));
    SynthTruth *t = xmalloc(sizeof *t);
    char dir[DATA_PATH_MAX], path[DATA_PATH_MAX], line[512];
    int rc = 0;
    int nsplits = ex->layout == DATA_DTDB ? 2 : 3;
    static const char *const iper_files[] = {"train.txt", "val.txt", "test.txt"};
    for (int s = 0; s < nsplits && rc == 0; s++) {
        uint64_t stream = synth_stream(seed, (DataMode)s);
        char *list = NULL;
        size_t ln = 0, lcap = 0;
        text_add(&list, &ln, &lcap, "");
        for (int j = 0; j < ex->nvideos[s] && rc == 0; j++) {
            synth_video(&c, stream, (uint64_t)j, video, t);
            switch (ex->layout) {
            case DATA_BAIR: {
                int a = 4 * (j / 4), b = a + 3 < ex->nvideos[s] - 1 ? a + 3 : ex->nvideos[s] - 1;
                rc = data_join(dir, sizeof dir, err, "%s/%s/traj_%d_to_%d/%d", root, data_mode_name((DataMode)s), a, b,
                               j - a + 1);
                if (rc == 0) rc = write_frames(video, T, S, dir, "", "png", err);
                if (rc) break;
                /* rows m + r * control: (pos - m) / r in the endpoint loader gives the control back */
                char *csv = NULL;
                size_t cn = 0, ccap = 0;
                text_add(&csv, &cn, &ccap, "");
                for (int f = 0; f < T; f++) {
                    double p[3];
                    for (int k = 0; k < 3; k++) p[k] = bair_pos_m[k] + bair_pos_r[k] * t->control[f][k];
                    snprintf(line, sizeof line, "%.18e,%.18e,%.18e\n", p[0], p[1], p[2]);
                    text_add(&csv, &cn, &ccap, line);
                }
                rc = data_join(path, sizeof path, err, "%s/endeffector_positions.csv", dir);
                if (rc == 0) rc = write_text(path, csv, err);
                free(csv);
                break;
            }
            case DATA_LANDSCAPE: {
                char id = "abc"[s];
                rc = data_join(dir, sizeof dir, err, "%s/%s/%c%03d/%c%03d_1", root, s == 2 ? "sky_test" : "sky_train",
                               id, j, id, j);
                if (rc == 0) rc = write_frames(video, T, S, dir, "frame", "jpg", err);
                snprintf(line, sizeof line, "%c%03d/%c%03d_1%s\n", id, j, id, j, s == 2 ? "/" : "");
                text_add(&list, &ln, &lcap, line);
                break;
            }
            case DATA_IPER: {
                char name[64];
                synth_export_iper_name((DataMode)s, j, name, sizeof name);
                rc = data_join(dir, sizeof dir, err, "%s/%s", root, name);
                if (rc == 0) rc = write_frames(video, T, S, dir, "frame_", "png", err);
                for (char *p = name; *p; p++)
                    if (*p == '_') *p = '/';
                snprintf(line, sizeof line, "%s\n", name);
                text_add(&list, &ln, &lcap, line);
                break;
            }
            case DATA_DTDB:
                rc = data_join(dir, sizeof dir, err, "%s/%s/%s/video%d", root, ex->texture, s == 0 ? "train" : "eval", j);
                if (rc == 0) rc = write_frames(video, T, S, dir, "frame", ex->image_format, err);
                break;
            case DATA_SYNTHETIC: break;
            }
        }
        if (rc == 0 && (ex->layout == DATA_LANDSCAPE || ex->layout == DATA_IPER)) {
            if (ex->layout == DATA_LANDSCAPE)
                rc = data_join(path, sizeof path, err, "%s/splits/landscape/%s.txt", root, data_mode_name((DataMode)s));
            else
                rc = data_join(path, sizeof path, err, "%s/splits/iPER/%s", root, iper_files[s]);
            if (rc == 0) rc = write_text(path, list, err);
        }
        free(list);
    }
    free(video);
    free(t);
    return rc;
}

int synth_export_tfrecords(const SynthConfig *sc, uint64_t seed, DataMode split, int nvideos, int per_file,
                           const char *dir, I2vError *err) {
    if (per_file < 1 || nvideos < 0) return err_set(err, "synthetic TFRecord export: per_file must be >= 1");
    SynthConfig c = *sc;
    c.frames = BAIR_FRAMES;
    c.size = 64;
    real *video = xmalloc((size_t)BAIR_FRAMES * 3 * 64 * 64 * sizeof(real));
    uint8_t *rgb = xmalloc((size_t)BAIR_FRAMES * 64 * 64 * 3);
    SynthTruth *t = xmalloc(sizeof *t);
    char out_dir[DATA_PATH_MAX], path[DATA_PATH_MAX], key[64];
    int rc = data_join(out_dir, sizeof out_dir, err, "%s/softmotion30_44k/%s", dir, data_mode_name(split));
    if (rc == 0) rc = data_mkdirs(out_dir, err);
    uint64_t stream = synth_stream(seed, split);
    for (int a = 0; a < nvideos && rc == 0; a += per_file) {
        int b = a + per_file - 1 < nvideos - 1 ? a + per_file - 1 : nvideos - 1;
        uint8_t *file = NULL;
        size_t fn = 0, fcap = 0;
        for (int j = a; j <= b; j++) {
            synth_video(&c, stream, (uint64_t)j, video, t);
            video_to_rgb8(video, BAIR_FRAMES, 64, 64, rgb);
            TfBuilder bld = {NULL, 0, 0};
            for (int i = 0; i < BAIR_FRAMES; i++) {
                const uint8_t *img = rgb + (size_t)i * 64 * 64 * 3;
                size_t len = 64 * 64 * 3;
                snprintf(key, sizeof key, "%d/image_aux1/encoded", i);
                tf_builder_bytes(&bld, key, &img, &len, 1);
                float pos[3], action[4] = {0, 0, 0, 0};
                for (int k = 0; k < 3; k++) pos[k] = (float)(bair_pos_m[k] + bair_pos_r[k] * t->control[i][k]);
                snprintf(key, sizeof key, "%d/endeffector_pos", i);
                tf_builder_floats(&bld, key, pos, 3);
                snprintf(key, sizeof key, "%d/action", i);
                tf_builder_floats(&bld, key, action, 4);
            }
            size_t n;
            uint8_t *rec = tf_builder_finish(&bld, &n);
            tfr_append(&file, &fn, &fcap, rec, n);
            free(rec);
        }
        rc = data_join(path, sizeof path, err, "%s/traj_%d_to_%d.tfrecords", out_dir, a, b);
        if (rc == 0) rc = write_file_bytes(path, file, fn, err);
        free(file);
    }
    free(video);
    free(rgb);
    free(t);
    return rc;
}

/* ==== BAIR ================================================================================================== */
#define BAIR_SIZE 64
#define BAIR_IMAGE_BYTES (BAIR_SIZE * BAIR_SIZE * 3)

int bair_example_decode(const TfExample *ex, const char *name, uint8_t *frames, double *pos, I2vError *err) {
    char key[64];
    for (int i = 0; i < BAIR_FRAMES; i++) {
        /* convert_bair.py: bytes_list.value[0] of "<i>/image_aux1/encoded", Image.frombytes('RGB', (64, 64)) */
        snprintf(key, sizeof key, "%d/image_aux1/encoded", i);
        const TfFeature *f = tf_example_find(ex, key);
        const uint8_t *p = NULL;
        size_t len = 0;
        if (!f) return err_set(err, "%s: feature \"%s\" is missing (expected a BAIR trajectory of 30 frames)", name, key);
        if (f->kind != TF_BYTES || tf_feature_bytes(f, 0, &p, &len))
            return err_set(err, "%s: feature \"%s\" has no bytes value", name, key);
        if (len != BAIR_IMAGE_BYTES)
            return err_set(err, "%s: feature \"%s\" holds %zu bytes, expected %d (raw 64x64 RGB)", name, key, len,
                           BAIR_IMAGE_BYTES);
        memcpy(frames + (size_t)i * BAIR_IMAGE_BYTES, p, BAIR_IMAGE_BYTES);
        /* "<i>/endeffector_pos": float_list of 3 values, stacked as float64 rows */
        snprintf(key, sizeof key, "%d/endeffector_pos", i);
        f = tf_example_find(ex, key);
        if (!f) return err_set(err, "%s: feature \"%s\" is missing", name, key);
        float v[3];
        if (f->kind != TF_FLOAT || f->count != 3)
            return err_set(err, "%s: feature \"%s\" should be a float list of 3 values, it has %zu %s", name, key,
                           f->count, f->kind == TF_FLOAT ? "floats" : "non-float values");
        tf_feature_floats(f, v, 3);
        for (int k = 0; k < 3; k++) pos[i * 3 + k] = (double)v[k];
    }
    return 0;
}

static int has_tfrecords(const char *dir) {
    char **names;
    size_t n;
    if (data_list_dir(dir, 0, &names, &n, NULL)) return 0;
    int found = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(names[i]);
        if (l >= 9 && strcmp(names[i] + l - 9, "tfrecords") == 0) found = 1;
    }
    data_free_names(names, n);
    return found;
}

static int write_trajectory(const char *dir, const uint8_t *frames, const double *pos, I2vError *err) {
    char path[DATA_PATH_MAX];
    if (data_mkdirs(dir, err)) return -1;
    /* numpy.savetxt(fname, pos, delimiter=','): fmt '%.18e', newline '\n' */
    char csv[BAIR_FRAMES * 3 * 32];
    size_t off = 0;
    for (int i = 0; i < BAIR_FRAMES; i++)
        off += (size_t)snprintf(csv + off, sizeof csv - off, "%.18e,%.18e,%.18e\n", pos[3 * i], pos[3 * i + 1],
                                pos[3 * i + 2]);
    if (data_join(path, sizeof path, err, "%s/endeffector_positions.csv", dir) ||
        write_file_bytes(path, (const uint8_t *)csv, off, err))
        return -1;
    Image im = {BAIR_SIZE, BAIR_SIZE, 3, 8, NULL};
    for (int i = 0; i < BAIR_FRAMES; i++) {
        im.data = (uint8_t *)frames + (size_t)i * BAIR_IMAGE_BYTES;
        if (data_join(path, sizeof path, err, "%s/%d.png", dir, i) || png_write(path, &im, err)) return -1;
    }
    return 0;
}

int bair_convert(const char *tfrecord_dir, const char *out_dir, const char *split, size_t *ntraj, I2vError *err) {
    char cand[3][DATA_PATH_MAX], *in = NULL;
    if (data_join(cand[0], sizeof cand[0], err, "%s/softmotion30_44k/%s", tfrecord_dir, split) ||
        data_join(cand[1], sizeof cand[1], err, "%s/%s", tfrecord_dir, split) ||
        data_join(cand[2], sizeof cand[2], err, "%s", tfrecord_dir))
        return -1;
    for (int i = 0; i < 3 && !in; i++)
        if (has_tfrecords(cand[i])) in = cand[i];
    if (!in)
        return err_set(err, "%s: no *.tfrecords files in %s, %s or %s (expected the unpacked "
                       "bair_robot_pushing_dataset_v0.tar)", tfrecord_dir, cand[0], cand[1], cand[2]);
    char **names;
    size_t nf;
    if (data_list_dir(in, 0, &names, &nf, err)) return -1;
    size_t total = 0;
    int rc = 0;
    uint8_t *frames = xmalloc((size_t)BAIR_FRAMES * BAIR_IMAGE_BYTES);
    double pos[BAIR_FRAMES * 3];
    for (size_t fi = 0; fi < nf && rc == 0; fi++) {
        size_t l = strlen(names[fi]);
        if (l < 9 || strcmp(names[fi] + l - 9, "tfrecords") != 0) continue;
        if (l <= 10) {
            rc = err_set(err, "%s/%s: the file name is too short to strip \".tfrecords\"", in, names[fi]);
            break;
        }
        char path[DATA_PATH_MAX], rec_name[DATA_PATH_MAX];
        if (data_join(path, sizeof path, err, "%s/%s", in, names[fi]) ||
            data_join(rec_name, sizeof rec_name, err, "%.*s", (int)(l - 10), names[fi])) {   /* f[:-10] */
            rc = -1;
            break;
        }
        TfrReader r;
        if (tfr_open(&r, path, err)) {
            rc = -1;
            break;
        }
        const uint8_t *rec;
        size_t len = 0;
        int k = 0, got;
        while ((got = tfr_read(&r, &rec, &len, err)) == 1) {
            k++;
            char where[DATA_PATH_MAX + 32];
            data_join(where, sizeof where, NULL, "%s (record %d)", path, k);
            TfExample ex;
            if (tf_example_parse(rec, len, where, &ex, err)) {
                got = -1;
                break;
            }
            int bad = bair_example_decode(&ex, where, frames, pos, err);
            tf_example_free(&ex);
            if (bad) {
                got = -1;
                break;
            }
            char dir[DATA_PATH_MAX];
            if (data_join(dir, sizeof dir, err, "%s/%s/%s/%d", out_dir, split, rec_name, k) ||
                write_trajectory(dir, frames, pos, err)) {
                got = -1;
                break;
            }
            total++;
        }
        tfr_close(&r);
        if (got < 0) rc = -1;
    }
    free(frames);
    data_free_names(names, nf);
    if (ntraj) *ntraj = total;
    return rc;
}

/* ==== the paper data sets' folders ================================================================================= */

/* Natural order of the last 11 characters of two names (rename_images.py sorts img[-11:] with natsort). */
static int tail_cmp(const void *x, const void *y) {
    const char *a = *(const char *const *)x, *b = *(const char *const *)y;
    size_t la = strlen(a), lb = strlen(b);
    int c = data_name_cmp(a + (la > 11 ? la - 11 : 0), b + (lb > 11 ? lb - 11 : 0));
    return c ? c : strcmp(a, b);
}

/* k of "<prefix><k>.jpg", or -1 */
static long numbered(const char *name, const char *prefix) {
    size_t pl = strlen(prefix), l = strlen(name);
    if (strncmp(name, prefix, pl) || l < pl + 5 || strcmp(name + l - 4, ".jpg")) return -1;
    long k = 0;
    for (const char *p = name + pl; p < name + l - 4; p++) {
        if (*p < '0' || *p > '9' || k > 100000000) return -1;
        k = 10 * k + (*p - '0');
    }
    return k;
}

/* One clip folder: its *.jpg files, in the natural order of their last 11 characters, become frame0.jpg,
 * frame1.jpg, ...; first under temporary names ".i2v_frame<k>.jpg" (which a rerun after an interruption
 * picks up), so no file is overwritten whatever the names. */
static int rename_clip(const char *dir, size_t *renamed, I2vError *err) {
    char **names;
    size_t n;
    if (data_list_dir(dir, 0, &names, &n, err)) return -1;
    char **rest = xmalloc((n + 1) * sizeof *rest);
    size_t nrest = 0, ntemp = 0, nfinal = 0;
    for (size_t i = 0; i < n; i++) {
        const char *s = names[i];
        size_t l = strlen(s);
        if (numbered(s, ".i2v_frame") >= 0) ntemp++;
        else if (numbered(s, "frame") >= 0) nfinal++;
        else if (s[0] != '.' && l > 4 && !strcmp(s + l - 4, ".jpg")) rest[nrest++] = names[i];
    }
    int rc = 0;
    char from[DATA_PATH_MAX], to[DATA_PATH_MAX];
    if (nrest && nfinal && !ntemp)
        rc = err_set(err, "%s: holds both renamed frame<k>.jpg files and others (%s); their order cannot be told, "
                          "rename the folder's frames by hand", dir, rest[0]);
    qsort(rest, nrest, sizeof *rest, tail_cmp);
    for (size_t i = 0; i < nrest && !rc; i++) {   /* phase 1: the originals to temporary names, in order */
        if (data_join(from, sizeof from, err, "%s/%s", dir, rest[i]) ||
            data_join(to, sizeof to, err, "%s/.i2v_frame%zu.jpg", dir, ntemp + i))
            rc = -1;
        else if (rename(from, to))
            rc = err_set(err, "%s: cannot rename it to %s", from, to);
    }
    if (!rc) {   /* phase 2: the temporary names to the final ones */
        free(rest);
        data_free_names(names, n);
        if (data_list_dir(dir, 0, &names, &n, err)) return -1;
        rest = NULL;
        for (size_t i = 0; i < n && !rc; i++) {
            long k = numbered(names[i], ".i2v_frame");
            if (k < 0) continue;
            if (data_join(from, sizeof from, err, "%s/%s", dir, names[i]) ||
                data_join(to, sizeof to, err, "%s/frame%ld.jpg", dir, k))
                rc = -1;
            else if (rename(from, to))
                rc = err_set(err, "%s: cannot rename it to %s", from, to);
            else
                ++*renamed;
        }
    }
    free(rest);
    data_free_names(names, n);
    return rc;
}

int prepare_rename_landscape(const char *root, size_t *renamed, I2vError *err) {
    static const char *const modes[] = {"sky_train", "sky_test"};
    *renamed = 0;
    for (int m = 0; m < 2; m++) {
        char dir[DATA_PATH_MAX];
        char **ids;
        size_t nids;
        if (data_join(dir, sizeof dir, err, "%s/%s", root, modes[m])) return -1;
        if (data_list_dir(dir, 1, &ids, &nids, err))
            return err_set(err, "%s: cannot open the folder (the landscape set holds sky_train/ and sky_test/)", dir);
        int rc = 0;
        for (size_t i = 0; i < nids && !rc; i++) {
            char idir[DATA_PATH_MAX];
            char **clips;
            size_t nclips;
            if (data_join(idir, sizeof idir, err, "%s/%s", dir, ids[i]) || data_list_dir(idir, 1, &clips, &nclips, err)) {
                rc = -1;
                break;
            }
            for (size_t j = 0; j < nclips && !rc; j++) {
                char cdir[DATA_PATH_MAX];
                rc = data_join(cdir, sizeof cdir, err, "%s/%s", idir, clips[j]) || rename_clip(cdir, renamed, err);
            }
            data_free_names(clips, nclips);
        }
        data_free_names(ids, nids);
        if (rc) return -1;
    }
    return 0;
}

int prepare_check(const DataConfig *dc, char *report, size_t cap, I2vError *err) {
    static const char *const mode_names[] = {"train", "eval", "test"};
    size_t k = 0;
    report[0] = 0;
    for (int m = 0; m < 3; m++) {
        Dataset ds;
        I2vError e;
        if (dataset_open(&ds, dc, (DataMode)m, 1, &e))
            return err_set(err, "the %s split: %s", mode_names[m], e.msg);
        int w = snprintf(report + k, cap - k, "%s%s: %zu videos, %zu clips per epoch", m ? "; " : "", mode_names[m],
                         ds.nvideos, ds.nitems);
        if (w > 0 && (size_t)w < cap - k) k += (size_t)w;
        if (ds.nskipped && k < cap) {
            w = snprintf(report + k, cap - k, " (%zu shorter than %d frames skipped, as the official loader does)",
                         ds.nskipped, dc->sequence_length);
            if (w > 0 && (size_t)w < cap - k) k += (size_t)w;
        }
        dataset_close(&ds);
    }
    return 0;
}
