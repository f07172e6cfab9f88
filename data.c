/* data.c: the data sets of the official code as folder layouts on disk, their transforms, batches and the
 * loader with its prefetch thread.
 *
 * What it is: DataConfig (the YAML `Data` keys), the four layouts exactly as the official loaders read
 * them (data/dataloader_{bair,bair_endpoint,landscape,iPER,DTDB}.py, docs/data.md: which folders,
 * split lists, repetitions, start frames), the transforms of data/augmentation.py with kornia 0.5.0
 * semantics (docs/data.md: bilinear resize without antialiasing, flip, random crop, ColorJitter),
 * batch assembly on worker threads, and DataLoader (shuffle / drop_last as torch's DataLoader) with one
 * background thread that builds the next batch while the caller trains.
 * What it is not: an image codec (image.h), the synthetic set (synth.c) or the TFRecord reader (tfrecord.c).
 *
 * Dimension legend: N batch, T frames, C = 3 channels, H, W source height and width, R resized size
 * (S, or S + 16 before a random crop), S output size.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "data.h"
#include "formats/files.h"
#include "formats/imageio.h"
#include "formats/image.h"

const double bair_pos_m[3] = {0.42638585, -0.3080245, 0.19146784};
const double bair_pos_r[3] = {0.42850533, 0.54029283, 0.12564658};

/* ==== configuration ========================================================================================== */
void data_config_default(DataConfig *c) {
    memset(c, 0, sizeof *c);
    snprintf(c->dataset, sizeof c->dataset, "synthetic");
    snprintf(c->splits_dir, sizeof c->splits_dir, "configs/splits");
    c->sequence_length = 17;
    c->img_size = 64;
    c->aug = 0;
    c->brightness = c->contrast = c->saturation = 0.1;   /* the BAIR configs' values */
    c->hue = 0;
    c->prob_hflip = 0.5;
    c->iter_train = c->iter_eval = c->iter_test = 1;
    c->test_size = 1000;
    snprintf(c->texture, sizeof c->texture, "clouds");
    snprintf(c->image_format, sizeof c->image_format, "png");
    c->control = 0;
    c->workers = 2;
    c->synth_train = 4096;
    c->synth_eval = 256;
    c->synth_test = 256;
    c->synth_distractors = 1;
    c->synth_occluder = 0.25;
    c->synth_speed_min = 0.5;
    c->synth_speed_max = 3.0;
    c->synth_texture = 1;
    c->synth_object_scale = 1;
}

int data_set_from_name(const char *name, DataSet *out, I2vError *err) {
    static const struct { const char *name; DataSet set; } names[] = {
        {"", DATA_SYNTHETIC}, {"synthetic", DATA_SYNTHETIC}, {"synth", DATA_SYNTHETIC},
        {"BAIR", DATA_BAIR}, {"bair", DATA_BAIR}, {"landscape", DATA_LANDSCAPE}, {"Landscape", DATA_LANDSCAPE},
        {"iPER", DATA_IPER}, {"iper", DATA_IPER}, {"DTDB", DATA_DTDB}, {"dtdb", DATA_DTDB}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i].name) == 0) {
            *out = names[i].set;
            return 0;
        }
    return err_set(err, "Data.dataset: unknown data set '%s' (expected synthetic, BAIR/bair, landscape/Landscape, "
                   "iPER/iper or DTDB/dtdb)", name);
}

const char *data_mode_name(DataMode m) {
    static const char *const n[] = {"train", "eval", "test"};
    return (unsigned)m < 3 ? n[m] : "?";
}

int data_config_check(const DataConfig *c, I2vError *err) {
    DataSet set = DATA_SYNTHETIC;
    if (data_set_from_name(c->dataset, &set, err)) return -1;
    if (set != DATA_SYNTHETIC && c->data_path[0] == 0)
        return err_set(err, "Data.data_path is empty but Data.dataset is '%s' (give the data set's root folder, or "
                       "use the built-in synthetic set)", c->dataset);
    if (c->sequence_length < 1 || c->sequence_length > 100000)
        return err_set(err, "Data.sequence_length = %d: expected a positive frame count", c->sequence_length);
    if (c->img_size < 4 || c->img_size > 4096)
        return err_set(err, "Data.img_size = %d: expected 4..4096", c->img_size);
    if (!(c->brightness >= 0) || !(c->contrast >= 0) || !(c->saturation >= 0))
        return err_set(err, "Data.Augmentation: brightness, contrast and saturation must be >= 0 (got %g, %g, %g)",
                       c->brightness, c->contrast, c->saturation);
    if (!(c->hue >= 0 && c->hue <= 0.5)) return err_set(err, "Data.Augmentation.hue = %g: expected 0..0.5", c->hue);
    if (!(c->prob_hflip >= 0 && c->prob_hflip <= 1))
        return err_set(err, "Data.Augmentation.prob_hflip = %g: expected 0..1", c->prob_hflip);
    if (c->iter_train < 0 || c->iter_eval < 0 || c->iter_test < 0 || c->test_size < 0)
        return err_set(err, "Data.iter_train/iter_eval/iter_test/test_size must be >= 0");
    if (c->workers < 1 || c->workers > 256) return err_set(err, "Training.workers = %d: expected 1..256", c->workers);
    if (set == DATA_DTDB) {
        if (strcmp(c->image_format, "png") && strcmp(c->image_format, "jpg"))
            return err_set(err, "Data.image_format = '%s': expected png or jpg", c->image_format);
        if (!c->texture[0] || strchr(c->texture, '/'))
            return err_set(err, "Data.texture = '%s': expected a texture folder name (clouds, fire, vegetation, "
                           "waterfall)", c->texture);
    }
    if (set == DATA_SYNTHETIC) {
        if (c->sequence_length > SYNTH_MAX_FRAMES)
            return err_set(err, "Data.sequence_length = %d: the synthetic set has at most %d frames",
                           c->sequence_length, SYNTH_MAX_FRAMES);
        if (c->img_size < 16) return err_set(err, "Data.img_size = %d: the synthetic set needs >= 16", c->img_size);
        if (c->synth_distractors < 0 || c->synth_distractors > SYNTH_MAX_DISTRACTORS)
            return err_set(err, "Data.synth_distractors = %d: expected 0..%d", c->synth_distractors,
                           SYNTH_MAX_DISTRACTORS);
        if (!(c->synth_object_scale >= 0.5 && c->synth_object_scale <= 2.5))
            return err_set(err, "Data.synth_object_scale = %g: expected 0.5 to 2.5", c->synth_object_scale);
        if (!(c->synth_texture >= 0 && c->synth_texture <= 1))
            return err_set(err, "Data.synth_texture = %g: expected a contrast in [0, 1]", c->synth_texture);
        if (!(c->synth_occluder >= 0 && c->synth_occluder <= 1))
            return err_set(err, "Data.synth_occluder = %g: expected a probability", c->synth_occluder);
        if (!(c->synth_speed_min >= 0 && c->synth_speed_max > c->synth_speed_min && c->synth_speed_max < 64))
            return err_set(err, "Data.synth_speed_min/max = %g/%g: expected 0 <= min < max < 64", c->synth_speed_min,
                           c->synth_speed_max);
        if (c->synth_train < 1 || c->synth_eval < 1 || c->synth_test < 1)
            return err_set(err, "Data.synth_train/eval/test must be >= 1");
    }
    return 0;
}

/* ==== files and folders ======================================================================================= */
int data_name_cmp(const char *a, const char *b) {
    while (*a && *b) {
        if (*a >= '0' && *a <= '9' && *b >= '0' && *b <= '9') {
            const char *a0 = a, *b0 = b;
            while (*a0 == '0') a0++;
            while (*b0 == '0') b0++;
            const char *a1 = a0, *b1 = b0;
            while (*a1 >= '0' && *a1 <= '9') a1++;
            while (*b1 >= '0' && *b1 <= '9') b1++;
            if (a1 - a0 != b1 - b0) return a1 - a0 < b1 - b0 ? -1 : 1;
            int c = strncmp(a0, b0, (size_t)(a1 - a0));
            if (c) return c;
            if ((a1 - a) != (b1 - b)) return (a1 - a) < (b1 - b) ? -1 : 1;   /* "01" after "1" */
            a = a1;
            b = b1;
            continue;
        }
        if (*a != *b) return (unsigned char)*a < (unsigned char)*b ? -1 : 1;
        a++;
        b++;
    }
    return *a ? 1 : *b ? -1 : 0;
}

static int cmp_names(const void *x, const void *y) {
    return data_name_cmp(*(const char *const *)x, *(const char *const *)y);
}

int data_list_dir(const char *path, int dirs_only, char ***names, size_t *n, I2vError *err) {
    *names = NULL;
    *n = 0;
    DIR *d = opendir(path);
    if (!d) return err_set(err, "%s: cannot open the folder (%s)", path, strerror(errno));
    size_t cap = 0;
    struct dirent *e;
    char full[DATA_PATH_MAX];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        if (dirs_only) {
            struct stat st;
            if (data_join(full, sizeof full, NULL, "%s/%s", path, e->d_name) || stat(full, &st) != 0 ||
                !S_ISDIR(st.st_mode))
                continue;
        }
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            char **nn = realloc(*names, cap * sizeof *nn);
            I2V_ASSERT(nn, "out of memory listing %s", path);
            *names = nn;
        }
        size_t l = strlen(e->d_name);
        char *s = xmalloc(l + 1);
        memcpy(s, e->d_name, l + 1);
        (*names)[(*n)++] = s;
    }
    closedir(d);
    if (*n) qsort(*names, *n, sizeof **names, cmp_names);
    return 0;
}

void data_free_names(char **names, size_t n) {
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
}

int data_join(char *out, size_t cap, I2vError *err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, cap, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap) return err_set(err, "path too long (more than %zu bytes): %.200s...", cap - 1, out);
    return 0;
}

int data_mkdirs(const char *path, I2vError *err) {
    char buf[4096];
    size_t l = strlen(path);
    if (l == 0 || l >= sizeof buf) return err_set(err, "'%s': invalid folder path", path);
    memcpy(buf, path, l + 1);
    for (size_t i = 1; i <= l; i++) {
        if (buf[i] != '/' && buf[i] != 0) continue;
        char c = buf[i];
        buf[i] = 0;
        if (mkdir(buf, 0777) != 0 && errno != EEXIST) return err_set(err, "%s: cannot create the folder (%s)", buf, strerror(errno));
        struct stat st;
        if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode)) return err_set(err, "%s: exists and is not a folder", buf);
        buf[i] = c;
    }
    return 0;
}

/* ==== video folders ============================================================================================ */
/* The frame naming of each layout: <prefix><k>.<ext>. */
typedef struct FrameNames {
    const char *prefix, *ext;
} FrameNames;

static FrameNames frame_names(const Dataset *ds) {
    FrameNames f = {"", "png"};
    switch (ds->set) {
    case DATA_BAIR: f.prefix = ""; f.ext = "png"; break;                 /* <i>.png */
    case DATA_LANDSCAPE: f.prefix = "frame"; f.ext = "jpg"; break;       /* frame<k>.jpg */
    case DATA_IPER: f.prefix = "frame_"; f.ext = "png"; break;           /* frame_<k>.png */
    case DATA_DTDB: f.prefix = "frame"; f.ext = ds->cfg.image_format; break;   /* frame<k>.<fmt> */
    case DATA_SYNTHETIC: break;
    }
    return f;
}

/* Parses "<prefix><k>.<ext>" with k in canonical decimal (as str(int) writes it); -1 if it is not one. */
static long frame_index(const char *name, const FrameNames *f) {
    size_t pl = strlen(f->prefix), el = strlen(f->ext), l = strlen(name);
    if (l < pl + 2 + el || strncmp(name, f->prefix, pl) != 0) return -1;
    if (name[l - el - 1] != '.' || strcmp(name + l - el, f->ext) != 0) return -1;
    const char *d = name + pl, *e = name + l - el - 1;
    if (e - d > 9 || (d[0] == '0' && e - d > 1)) return -1;
    long k = 0;
    for (const char *p = d; p < e; p++) {
        if (*p < '0' || *p > '9') return -1;
        k = 10 * k + (*p - '0');
    }
    return k;
}

/* Counts the frames of a video as glob('*.<ext>') does (names not starting with '.') and checks that
 * frame 0 .. count-1 (or 0 .. need-1 when need > 0: BAIR's fixed 30) exist under their names. *count may be
 * 0. Errors name the video and the first missing frame. */
static int scan_video(const char *root, const char *video, const FrameNames *f, int need, int *count,
                      I2vError *err) {
    char path[DATA_PATH_MAX];
    if (data_join(path, sizeof path, err, "%s/%s", root, video)) return -1;
    char **names;
    size_t n;
    if (data_list_dir(path, 0, &names, &n, err)) return -1;
    size_t el = strlen(f->ext);
    int nglob = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(names[i]);
        if (names[i][0] != '.' && l > el && names[i][l - el - 1] == '.' && strcmp(names[i] + l - el, f->ext) == 0)
            nglob++;
    }
    int want = need > 0 ? need : nglob;
    unsigned char *have = xcalloc((size_t)want + 1, 1);
    for (size_t i = 0; i < n; i++) {
        long k = frame_index(names[i], f);
        if (k >= 0 && k < want) have[k] = 1;
    }
    int missing = -1;
    for (int k = 0; k < want && missing < 0; k++)
        if (!have[k]) missing = k;
    free(have);
    data_free_names(names, n);
    if (missing >= 0)
        return err_set(err, "video %s is incomplete: %s%d.%s is missing (%d *.%s files in %s; the loader reads "
                       "%s0.%s .. %s%d.%s)", video, f->prefix, missing, f->ext, nglob, f->ext, path, f->prefix,
                       f->ext, f->prefix, want - 1, f->ext);
    *count = want;
    return 0;
}

/* One split list: whitespace-separated entries (open(path).read().split()). */
int data_read_split(const char *path, char ***entries, size_t *n, I2vError *err) {
    uint8_t *buf;
    size_t len;
    *entries = NULL;
    *n = 0;
    I2vError e2;
    struct stat st;
    if (stat(path, &st) == 0 && st.st_size > (64 << 20))
        return err_set(err, "%s: %lld bytes, too large for a split list", path, (long long)st.st_size);
    if (read_file_bytes(path, &buf, &len, &e2))
        return err_set(err, "%s: cannot read the split list (%s); the official lists ship in configs/splits/, set "
                       "splits_dir to the folder that holds landscape/ and iPER/", path, e2.msg);
    size_t cap = 0;
    for (size_t i = 0; i < len;) {
        while (i < len && (buf[i] == ' ' || buf[i] == '\n' || buf[i] == '\r' || buf[i] == '\t' || buf[i] == '\v' ||
                           buf[i] == '\f'))
            i++;
        size_t s = i;
        while (i < len && !(buf[i] == ' ' || buf[i] == '\n' || buf[i] == '\r' || buf[i] == '\t' || buf[i] == '\v' ||
                            buf[i] == '\f'))
            i++;
        if (i == s) continue;
        if (memchr(buf + s, 0, i - s) || i - s > 512) {
            free(buf);
            data_free_names(*entries, *n);
            *entries = NULL;
            *n = 0;
            return err_set(err, "%s: entry %zu is not a video name (binary data or longer than 512 bytes)", path, *n + 1);
        }
        if (*n == cap) {
            cap = cap ? 2 * cap : 256;
            char **ne = realloc(*entries, cap * sizeof *ne);
            I2V_ASSERT(ne, "out of memory");
            *entries = ne;
        }
        size_t l = i - s;
        while (l > 1 && buf[s + l - 1] == '/') l--;   /* test.txt of landscape ends its entries with '/' */
        char *str = xmalloc(l + 1);
        memcpy(str, buf + s, l);
        str[l] = 0;
        (*entries)[(*n)++] = str;
    }
    free(buf);
    if (*n == 0) return err_set(err, "%s: the split list is empty", path);
    return 0;
}

/* endeffector_positions.csv: 30 rows of 3 comma-separated numbers (np.loadtxt(delimiter=',')). */
static int read_positions(const char *path, double *pos, I2vError *err) {
    uint8_t *buf;
    size_t len;
    struct stat st;
    if (stat(path, &st) == 0 && st.st_size > (1 << 20))   /* checked before reading: no large allocation */
        return err_set(err, "%s: %lld bytes, too large for 30 rows of 3 numbers", path, (long long)st.st_size);
    if (read_file_bytes(path, &buf, &len, err)) return -1;
    char *text = xmalloc(len + 1);
    memcpy(text, buf, len);
    text[len] = 0;
    free(buf);
    int row = 0, line = 0, rc = 0;
    char *p = text;
    while (*p && rc == 0) {
        char *eol = strchr(p, '\n');
        if (eol) *eol = 0;
        line++;
        char *hash = strchr(p, '#');
        if (hash) *hash = 0;
        char *q = p;
        while (*q == ' ' || *q == '\t' || *q == '\r') q++;
        if (*q) {
            if (row == BAIR_FRAMES) {
                rc = err_set(err, "%s: line %d: more than %d rows (expected one row per frame)", path, line, BAIR_FRAMES);
                break;
            }
            for (int k = 0; k < 3 && rc == 0; k++) {
                char *end;
                errno = 0;
                double v = strtod(q, &end);
                if (end == q || !isfinite(v)) {
                    rc = err_set(err, "%s: line %d, column %d: expected a number", path, line, k + 1);
                    break;
                }
                pos[row * 3 + k] = v;
                q = end;
                while (*q == ' ' || *q == '\t' || *q == '\r') q++;
                if (k < 2) {
                    if (*q != ',') rc = err_set(err, "%s: line %d: expected 3 comma-separated values", path, line);
                    q++;
                } else if (*q) {
                    rc = err_set(err, "%s: line %d: more than 3 values", path, line);
                }
            }
            row++;
        }
        p = eol ? eol + 1 : p + strlen(p);
    }
    free(text);
    if (rc == 0 && row != BAIR_FRAMES)
        rc = err_set(err, "%s: %d rows, expected %d (one end-effector position per frame)", path, row, BAIR_FRAMES);
    return rc;
}

/* ==== opening a data set ======================================================================================= */
static void add_video(Dataset *ds, size_t *cap, const char *dir, int frames) {
    if (ds->nvideos == *cap) {
        *cap = *cap ? 2 * *cap : 64;
        ds->video_dir = realloc(ds->video_dir, *cap * sizeof *ds->video_dir);
        ds->video_frames = realloc(ds->video_frames, *cap * sizeof *ds->video_frames);
        I2V_ASSERT(ds->video_dir && ds->video_frames, "out of memory");
    }
    size_t l = strlen(dir);
    ds->video_dir[ds->nvideos] = xmalloc(l + 1);
    memcpy(ds->video_dir[ds->nvideos], dir, l + 1);
    ds->video_frames[ds->nvideos++] = frames;
}

static void add_items(Dataset *ds, size_t *cap, size_t video, size_t times) {
    if (ds->nitems + times > *cap) {
        while (ds->nitems + times > *cap) *cap = *cap ? 2 * *cap : 256;
        ds->item_video = realloc(ds->item_video, *cap * sizeof *ds->item_video);
        I2V_ASSERT(ds->item_video, "out of memory");
    }
    for (size_t i = 0; i < times; i++) ds->item_video[ds->nitems++] = video;
}

/* dataloader_bair(.py/_endpoint.py): every <root>/<mode>/<record>/<k>/, one item each, 30 frames. */
static int open_bair(Dataset *ds, I2vError *err) {
    const DataConfig *c = &ds->cfg;
    const char *mode = data_mode_name(ds->mode);
    if (c->sequence_length > BAIR_FRAMES)
        return err_set(err, "Data.sequence_length = %d: BAIR trajectories have %d frames", c->sequence_length, BAIR_FRAMES);
    char path[DATA_PATH_MAX], vid[DATA_PATH_MAX];
    if (data_join(path, sizeof path, err, "%s/%s", ds->root, mode)) return -1;
    char **recs;
    size_t nrec, cap = 0, icap = 0;
    if (data_list_dir(path, 1, &recs, &nrec, err))
        return err_set(err, "%s: cannot open the %s folder of BAIR (expected <data_path>/{train,eval,test}/<record>/<k>/"
                       "<i>.png; run `i2v prepare bair` to convert the TFRecords)", path, mode);
    FrameNames f = frame_names(ds);
    int rc = 0;
    for (size_t r = 0; r < nrec && rc == 0; r++) {
        char **trajs;
        size_t ntraj;
        if (data_join(path, sizeof path, err, "%s/%s/%s", ds->root, mode, recs[r]) ||
            data_list_dir(path, 1, &trajs, &ntraj, err)) {
            rc = -1;
            break;
        }
        for (size_t k = 0; k < ntraj && rc == 0; k++) {
            int frames;
            if (data_join(vid, sizeof vid, err, "%s/%s/%s", mode, recs[r], trajs[k]) || scan_video(ds->root, vid, &f, BAIR_FRAMES, &frames, err)) {
                rc = -1;
                break;
            }
            add_video(ds, &cap, vid, BAIR_FRAMES);
            add_items(ds, &icap, ds->nvideos - 1, 1);
        }
        data_free_names(trajs, ntraj);
    }
    data_free_names(recs, nrec);
    if (rc) return -1;
    if (ds->nvideos == 0)
        return err_set(err, "%s/%s: no trajectories (expected <record>/<k>/0.png .. 29.png)", ds->root, mode);
    if (c->control) {
        ds->positions = xmalloc(ds->nvideos * BAIR_FRAMES * 3 * sizeof(double));
        for (size_t v = 0; v < ds->nvideos; v++) {
            double *p = ds->positions + v * BAIR_FRAMES * 3;
            if (data_join(path, sizeof path, err, "%s/%s/endeffector_positions.csv", ds->root, ds->video_dir[v]) ||
                read_positions(path, p, err))
                return -1;
            for (int i = 0; i < BAIR_FRAMES * 3; i++) p[i] = (p[i] - bair_pos_m[i % 3]) / bair_pos_r[i % 3];
        }
    }
    ds->start_zero = ds->mode == DATA_TEST;
    ds->transform = ds->mode == DATA_TRAIN && c->aug ? 1 : 0;
    return 0;
}

static int iter_of(const DataConfig *c, DataMode m) {
    return m == DATA_TRAIN ? c->iter_train : m == DATA_EVAL ? c->iter_eval : c->iter_test;
}

/* dataloader_landscape.py: split list data/landscape/<mode>.txt, sky_train (train, eval) or sky_test (test). */
static int open_landscape(Dataset *ds, I2vError *err) {
    const DataConfig *c = &ds->cfg;
    char path[DATA_PATH_MAX], vid[DATA_PATH_MAX];
    if (data_join(path, sizeof path, err, "%s/landscape/%s.txt", c->splits_dir, data_mode_name(ds->mode))) return -1;
    char **list;
    size_t n, cap = 0, icap = 0;
    if (data_read_split(path, &list, &n, err)) return -1;
    const char *prefix = ds->mode == DATA_TEST ? "sky_test" : "sky_train";
    FrameNames f = frame_names(ds);
    int rc = 0, reps = iter_of(c, ds->mode);
    for (size_t i = 0; i < n && rc == 0; i++) {
        int frames;
        I2vError e2;
        if (data_join(vid, sizeof vid, err, "%s/%s", prefix, list[i])) {
            rc = -1;
            break;
        }
        if (scan_video(ds->root, vid, &f, 0, &frames, &e2)) {
            rc = err_set(err, "%s (a video listed in %s)", e2.msg, path);
            break;
        }
        if (frames < c->sequence_length) {
            rc = err_set(err, "video %s/%s (listed in %s) has %d frames, fewer than Data.sequence_length = %d",
                         ds->root, vid, path, frames, c->sequence_length);
            break;
        }
        add_video(ds, &cap, vid, frames);
        add_items(ds, &icap, ds->nvideos - 1, (size_t)reps);
    }
    data_free_names(list, n);
    if (rc) return -1;
    ds->start_zero = 0;   /* random start in every mode, test included, as the official loader */
    ds->transform = ds->mode == DATA_TRAIN && c->aug ? 2 : 0;
    return 0;
}

/* dataloader_iPER.py: Dataset (train.txt / val.txt, iter x last digit repetitions, short videos skipped) and
 * DatasetEvaluation for test (test.txt, test_size items, video i mod N). */
static int open_iper(Dataset *ds, I2vError *err) {
    const DataConfig *c = &ds->cfg;
    static const char *const files[] = {"train.txt", "val.txt", "test.txt"};
    char path[DATA_PATH_MAX];
    if (data_join(path, sizeof path, err, "%s/iPER/%s", c->splits_dir, files[ds->mode])) return -1;
    char **list;
    size_t n, cap = 0, icap = 0;
    if (data_read_split(path, &list, &n, err)) return -1;
    FrameNames f = frame_names(ds);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        char vid[600];
        snprintf(vid, sizeof vid, "%s", list[i]);
        for (char *p = vid; *p; p++)
            if (*p == '/') *p = '_';
        char full[DATA_PATH_MAX];
        struct stat st;
        if (data_join(full, sizeof full, err, "%s/%s", ds->root, vid)) {
            rc = -1;
            break;
        }
        if (stat(full, &st) != 0 || !S_ISDIR(st.st_mode)) {
            rc = err_set(err, "video %s (listed in %s) is missing: no folder %s (extract the iPER videos with "
                         "tools or data/iPER/extract_iPER.py)", vid, path, full);
            break;
        }
        int frames;
        if (scan_video(ds->root, vid, &f, 0, &frames, err)) {
            rc = -1;
            break;
        }
        if (frames < c->sequence_length) {   /* the official loader skips these */
            ds->nskipped++;
            continue;
        }
        char last = vid[strlen(vid) - 1];
        if (ds->mode != DATA_TEST && (last < '0' || last > '9')) {
            rc = err_set(err, "video %s (listed in %s): the name must end in the action digit (e.g. 006_1_2)", vid, path);
            break;
        }
        add_video(ds, &cap, vid, frames);
        if (ds->mode != DATA_TEST) add_items(ds, &icap, ds->nvideos - 1, (size_t)iter_of(c, ds->mode) * (size_t)(last - '0'));
    }
    data_free_names(list, n);
    if (rc) return -1;
    if (ds->nvideos == 0)
        return err_set(err, "%s: none of the videos listed in %s has %d frames or more", ds->root, path,
                       c->sequence_length);
    if (ds->mode == DATA_TEST)
        for (size_t i = 0; i < (size_t)c->test_size; i++) add_items(ds, &icap, i % ds->nvideos, 1);
    ds->start_zero = 0;
    ds->transform = ds->mode == DATA_TRAIN && c->aug ? 1 : 0;
    return 0;
}

/* dataloader_DTDB.py: every folder of <root>/<texture>/{train,eval}/ (eval also serves test). */
static int open_dtdb(Dataset *ds, I2vError *err) {
    const DataConfig *c = &ds->cfg;
    const char *sub = ds->mode == DATA_TRAIN ? "train" : "eval";
    char base[DATA_PATH_MAX];
    memcpy(base, ds->root, sizeof base);
    if (data_join(ds->root, sizeof ds->root, err, "%s/%s/%s", base, c->texture, sub)) return -1;
    char **vids;
    size_t n, cap = 0, icap = 0;
    if (data_list_dir(ds->root, 1, &vids, &n, err))
        return err_set(err, "%s: cannot open the folder (DTDB expects <data_path>/<texture>/{train,eval}/<video>/"
                       "frame<k>.%s)", ds->root, c->image_format);
    FrameNames f = frame_names(ds);
    int rc = 0, reps = iter_of(c, ds->mode);
    for (size_t i = 0; i < n && rc == 0; i++) {
        int frames;
        if (scan_video(ds->root, vids[i], &f, 0, &frames, err)) {
            rc = -1;
            break;
        }
        if (frames < c->sequence_length) {
            rc = err_set(err, "video %s/%s has %d frames, fewer than Data.sequence_length = %d", ds->root, vids[i],
                         frames, c->sequence_length);
            break;
        }
        add_video(ds, &cap, vids[i], frames);
        add_items(ds, &icap, ds->nvideos - 1, (size_t)reps);
    }
    data_free_names(vids, n);
    if (rc) return -1;
    if (ds->nvideos == 0) return err_set(err, "%s: no video folders", ds->root);
    ds->start_zero = ds->mode != DATA_TRAIN;
    ds->transform = ds->mode == DATA_TRAIN && c->aug ? 2 : 0;
    return 0;
}

int dataset_open(Dataset *ds, const DataConfig *cfg, DataMode mode, uint64_t seed, I2vError *err) {
    memset(ds, 0, sizeof *ds);
    if (data_config_check(cfg, err)) return -1;
    ds->cfg = *cfg;
    ds->mode = mode;
    data_set_from_name(cfg->dataset, &ds->set, NULL);
    /* the official code concatenates data_path + 'train/'...; a trailing '/' is dropped here and paths joined */
    snprintf(ds->root, sizeof ds->root, "%s", cfg->data_path);
    size_t l = strlen(ds->root);
    while (l > 1 && ds->root[l - 1] == '/') ds->root[--l] = 0;
    int rc = 0;
    switch (ds->set) {
    case DATA_SYNTHETIC:
        synth_config_from(cfg, &ds->synth);
        ds->synth_seed = synth_stream(seed, mode);
        ds->nitems = (size_t)(mode == DATA_TRAIN ? cfg->synth_train : mode == DATA_EVAL ? cfg->synth_eval : cfg->synth_test);
        ds->start_zero = 1;
        ds->transform = mode == DATA_TRAIN && cfg->aug ? 1 : 0;
        break;
    case DATA_BAIR: rc = open_bair(ds, err); break;
    case DATA_LANDSCAPE: rc = open_landscape(ds, err); break;
    case DATA_IPER: rc = open_iper(ds, err); break;
    case DATA_DTDB: rc = open_dtdb(ds, err); break;
    }
    if (rc == 0 && ds->nitems == 0)
        rc = err_set(err, "%s data set, mode %s: no clips (check Data.iter_%s)", cfg->dataset, data_mode_name(mode),
                     data_mode_name(mode));
    if (rc) dataset_close(ds);
    return rc;
}

void dataset_close(Dataset *ds) {
    for (size_t i = 0; i < ds->nvideos; i++) free(ds->video_dir[i]);
    free(ds->video_dir);
    free(ds->video_frames);
    free(ds->positions);
    free(ds->item_video);
    memset(ds, 0, sizeof *ds);
}

/* ==== transforms ============================================================================================== */
/* upsample_bilinear2d (align_corners=False) per axis: source index pair and weights of every output index. */
static void linear_taps(size_t in, size_t out, size_t *i0, size_t *i1, real *w1) {
    double scale = (double)in / (double)out;
    for (size_t d = 0; d < out; d++) {
        double s = scale * ((double)d + 0.5) - 0.5;
        if (s < 0) s = 0;
        size_t a = (size_t)s;
        if (a > in - 1) a = in - 1;
        i0[d] = a;
        i1[d] = a < in - 1 ? a + 1 : a;
        w1[d] = (real)(s - (double)a);
    }
}

void data_resize(const real *src, size_t channels, size_t height, size_t width, real *dst, size_t out_h, size_t out_w) {
    if (height == out_h && width == out_w) {
        memcpy(dst, src, channels * height * width * sizeof(real));
        return;
    }
    size_t *y0 = xmalloc(2 * (out_h + out_w) * sizeof(size_t)), *y1 = y0 + out_h, *x0 = y1 + out_h, *x1 = x0 + out_w;
    real *wy = xmalloc((out_h + out_w) * sizeof(real)), *wx = wy + out_h;
    linear_taps(height, out_h, y0, y1, wy);
    linear_taps(width, out_w, x0, x1, wx);
    for (size_t c = 0; c < channels; c++) {
        const real *s = src + c * height * width;
        real *d = dst + c * out_h * out_w;
        for (size_t y = 0; y < out_h; y++) {
            const real *r0 = s + y0[y] * width, *r1 = s + y1[y] * width;
            real b = wy[y], a = 1 - b;
            for (size_t x = 0; x < out_w; x++) {
                real q = wx[x], p = 1 - q;
                d[y * out_w + x] = a * (p * r0[x0[x]] + q * r0[x1[x]]) + b * (p * r1[x0[x]] + q * r1[x1[x]]);
            }
        }
    }
    free(y0);
    free(wy);
}

void aug_sample(const DataConfig *c, int random_crop, Rng *r, AugParams *p) {
    memset(p, 0, sizeof *p);
    p->flip = rng_uniform(r) < c->prob_hflip;
    if (random_crop) {   /* RandomCrop(S) on S + 16: offsets in {0, ..., 16} */
        p->crop_x = (int)rng_below(r, 17);
        p->crop_y = (int)rng_below(r, 17);
    }
    /* kornia 0.5.0 ColorJitter ranges: brightness bounded to [0, 2], contrast and saturation to [0, inf) */
    double lo = fmax(0, 1 - c->brightness), hi = fmin(2, 1 + c->brightness);
    p->brightness = lo + (hi - lo) * rng_uniform(r);
    lo = fmax(0, 1 - c->contrast);
    p->contrast = lo + (1 + c->contrast - lo) * rng_uniform(r);
    lo = fmax(0, 1 - c->saturation);
    p->saturation = lo + (1 + c->saturation - lo) * rng_uniform(r);
    p->hue = -c->hue + 2 * c->hue * rng_uniform(r);
    int64_t perm[4];
    rng_permutation(r, 4, perm);
    for (int i = 0; i < 4; i++) p->order[i] = (int)perm[i];
}

static real clamp01(real x) { return x < 0 ? 0 : x > 1 ? 1 : x; }
static double pymod(double a, double b) { return a - b * floor(a / b); }   /* Python's %, sign of b */

/* kornia.color.rgb_to_hsv (0.5.0): the first channel holding the maximum picks the hue formula. */
void rgb_to_hsv(const real rgb[3], real hsv[3]) {
    real r = rgb[0], g = rgb[1], b = rgb[2];
    real mx = r, mn = r;
    int imax = 0;
    if (g > mx) { mx = g; imax = 1; }
    if (b > mx) { mx = b; imax = 2; }
    if (g < mn) mn = g;
    if (b < mn) mn = b;
    real delta = mx - mn;
    hsv[1] = delta / (mx + (real)1e-6);
    hsv[2] = mx;
    if (delta == 0) delta = 1;
    real rc = mx - r, gc = mx - g, bc = mx - b, h;
    if (imax == 0) h = bc - gc;
    else if (imax == 1) h = 2 * delta + rc - bc;
    else h = 4 * delta + gc - rc;
    h /= delta;
    hsv[0] = (real)(2 * I2V_PI * pymod(h / 6.0, 1.0));
}

/* kornia.color.hsv_to_rgb (0.5.0); a negative hue (from adjust_hue's fmod) wraps with Python's %. */
void hsv_to_rgb(const real hsv[3], real rgb[3]) {
    double h6 = hsv[0] / (2 * I2V_PI) * 6.0;
    double s = hsv[1], v = hsv[2];
    int hi = (int)pymod(floor(h6), 6.0);
    double f = pymod(h6, 6.0) - hi;
    double p = v * (1 - s), q = v * (1 - f * s), t = v * (1 - (1 - f) * s);
    double R, G, B;
    switch (hi) {
    case 0: R = v; G = t; B = p; break;
    case 1: R = q; G = v; B = p; break;
    case 2: R = p; G = v; B = t; break;
    case 3: R = p; G = q; B = v; break;
    case 4: R = t; G = p; B = v; break;
    default: R = v; G = p; B = q; break;
    }
    rgb[0] = (real)R;
    rgb[1] = (real)G;
    rgb[2] = (real)B;
}

void color_jitter(real *img, size_t height, size_t width, const AugParams *p) {
    size_t hw = height * width;
    real *R = img, *G = img + hw, *B = img + 2 * hw;
    real bshift = (real)(p->brightness - 1), c = (real)p->contrast, s = (real)p->saturation;
    real hshift = (real)(2 * I2V_PI * p->hue);
    for (int k = 0; k < 4; k++) {
        switch (p->order[k]) {
        case 0:   /* adjust_brightness(x, b - 1): additive */
            for (size_t i = 0; i < 3 * hw; i++) img[i] = clamp01(img[i] + bshift);
            break;
        case 1:   /* adjust_contrast(x, c): multiplicative, no mean */
            for (size_t i = 0; i < 3 * hw; i++) img[i] = clamp01(img[i] * c);
            break;
        case 2:   /* adjust_saturation: S * s, clamped */
        case 3:   /* adjust_hue: fmod(H + 2 pi h, 2 pi) */
            for (size_t i = 0; i < hw; i++) {
                real rgb[3] = {R[i], G[i], B[i]}, hsv[3];
                rgb_to_hsv(rgb, hsv);
                if (p->order[k] == 2) hsv[1] = clamp01(hsv[1] * s);
                else hsv[0] = (real)fmod(hsv[0] + hshift, 2 * I2V_PI);
                hsv_to_rgb(hsv, rgb);
                R[i] = clamp01(rgb[0]);
                G[i] = clamp01(rgb[1]);
                B[i] = clamp01(rgb[2]);
            }
            break;
        }
    }
}

void aug_apply(const AugParams *p, const real *frames, size_t T, size_t R, size_t S, real *out) {
    I2V_ASSERT(p->crop_x >= 0 && p->crop_y >= 0 && (size_t)p->crop_x + S <= R && (size_t)p->crop_y + S <= R,
               "crop (%d, %d) of %zu outside %zu", p->crop_x, p->crop_y, S, R);
    for (size_t t = 0; t < T; t++) {
        real *o = out + t * 3 * S * S;
        for (size_t c = 0; c < 3; c++) {
            const real *src = frames + (t * 3 + c) * R * R;
            for (size_t y = 0; y < S; y++) {
                const real *row = src + (y + (size_t)p->crop_y) * R;
                real *dst = o + (c * S + y) * S;
                for (size_t x = 0; x < S; x++) {
                    size_t xs = x + (size_t)p->crop_x;   /* flip, then crop the flipped image */
                    dst[x] = row[p->flip ? R - 1 - xs : xs];
                }
            }
        }
        color_jitter(o, S, S, p);
        for (size_t i = 0; i < 3 * S * S; i++) o[i] = (o[i] - (real)0.5) / (real)0.5;
    }
}

/* ==== clips ===================================================================================================== */
uint64_t synth_stream(uint64_t seed, DataMode mode) {
    return rng_hash64(rng_hash64(seed ^ 0x3c6ef372fe94f82bull) + 0x9e3779b97f4a7c15ull * ((uint64_t)mode + 1));
}

void synth_config_from(const DataConfig *c, SynthConfig *sc) {
    sc->size = c->img_size;
    sc->frames = c->sequence_length;
    sc->max_distractors = c->synth_distractors;
    sc->occluder_prob = c->synth_occluder;
    sc->speed_min = c->synth_speed_min;
    sc->speed_max = c->synth_speed_max;
    sc->texture = c->synth_texture;
    sc->object_scale = c->synth_object_scale;
}

uint64_t clip_seed(uint64_t seed, uint64_t epoch, size_t item) {
    uint64_t h = rng_hash64(seed + 0x9e3779b97f4a7c15ull);
    h = rng_hash64(h ^ (epoch * 0xd6e8feb86659fd93ull + 0x2545f4914f6cdd1dull));
    return rng_hash64(h ^ ((uint64_t)item * 0xa0761d6478bd642full + 1));
}

/* cv2.imread(IMREAD_COLOR) + BGR2RGB + /255: grey is replicated, alpha dropped, 16 bits keep the high byte
 * (libpng's strip_16, which OpenCV uses for 8-bit output). dst (3, H, W) in [0, 1]. */
static void image_to_unit_rgb(const Image *im, real *dst) {
    size_t hw = im->width * im->height;
    int ch = im->channels;
    for (size_t i = 0; i < hw; i++) {
        unsigned v[3];
        for (int c = 0; c < 3; c++) {
            int src_c = ch >= 3 ? c : 0;
            unsigned s = im->depth == 8 ? im->data[i * ch + src_c] : ((const uint16_t *)im->data)[i * ch + src_c] >> 8;
            v[c] = s;
        }
        for (int c = 0; c < 3; c++) dst[c * hw + i] = (real)v[c] / (real)255;
    }
}

/* The frames [start, start + T) of a video, each resized to R x R; *src_w, *src_h: the first frame's size. */
static int load_frames(const Dataset *ds, size_t video, int start, size_t T, size_t R, real *frames, size_t *src_w,
                       size_t *src_h, I2vError *err) {
    FrameNames f = frame_names(ds);
    char path[DATA_PATH_MAX];
    real *tmp = NULL;
    size_t tmp_cap = 0;
    int rc = 0;
    for (size_t t = 0; t < T && rc == 0; t++) {
        Image im;
        if (data_join(path, sizeof path, err, "%s/%s/%s%d.%s", ds->root, ds->video_dir[video], f.prefix,
                      start + (int)t, f.ext) ||
            image_read(path, &im, err)) {
            rc = -1;
            break;
        }
        size_t need = 3 * im.width * im.height;
        if (need > tmp_cap) {
            free(tmp);
            tmp = xmalloc(need * sizeof(real));
            tmp_cap = need;
        }
        image_to_unit_rgb(&im, tmp);
        if (t == 0) {
            *src_w = im.width;
            *src_h = im.height;
        }
        data_resize(tmp, 3, im.height, im.width, frames + t * 3 * R * R, R, R);
        image_free(&im);
    }
    free(tmp);
    return rc;
}

int dataset_get(const Dataset *ds, uint64_t seed, uint64_t epoch, size_t item, real *clip, ClipInfo *info,
                I2vError *err) {
    I2V_ASSERT(item < ds->nitems, "item %zu of %zu", item, ds->nitems);
    const DataConfig *c = &ds->cfg;
    size_t T = (size_t)c->sequence_length, S = (size_t)c->img_size;
    size_t R = ds->transform == 2 ? S + 16 : S;
    Rng r;
    rng_seed(&r, clip_seed(seed, epoch, item));
    memset(info, 0, offsetof(ClipInfo, truth));
    info->item = item;
    info->augmented = ds->transform != 0;
    if (ds->set == DATA_SYNTHETIC) {
        /* train: a fresh video for every (epoch, item), an unlimited stream; eval/test: fixed videos */
        uint64_t index = ds->mode == DATA_TRAIN ? epoch * (uint64_t)ds->nitems + item : item;
        real *frames = ds->transform ? xmalloc(T * 3 * S * S * sizeof(real)) : clip;
        synth_video(&ds->synth, ds->synth_seed, index, frames, &info->truth);
        info->has_truth = 1;
        info->video = (size_t)index;
        info->start = 0;
        for (int k = 0; k < 3; k++) info->control[k] = info->truth.control[T - 1][k];
        if (ds->transform) {
            for (size_t i = 0; i < T * 3 * S * S; i++) frames[i] = (frames[i] + 1) / 2;
            aug_sample(c, 0, &r, &info->aug);
            aug_apply(&info->aug, frames, T, S, S, clip);
            free(frames);
        }
        return 0;
    }
    size_t v = ds->item_video[item];
    int nframes = ds->video_frames[v];
    info->video = v;
    info->start = ds->start_zero ? 0 : (int)rng_below(&r, (uint32_t)(nframes - (int)T + 1));
    if (ds->transform) aug_sample(c, ds->transform == 2, &r, &info->aug);
    real *frames = xmalloc(T * 3 * R * R * sizeof(real));
    if (load_frames(ds, v, info->start, T, R, frames, &info->source_width, &info->source_height, err)) {
        free(frames);
        return -1;
    }
    if (ds->transform) {
        aug_apply(&info->aug, frames, T, R, S, clip);
    } else {
        for (size_t i = 0; i < T * 3 * S * S; i++) clip[i] = (frames[i] - (real)0.5) / (real)0.5;
    }
    free(frames);
    if (ds->positions) {   /* the end point of the window, frame start + T - 1 (dataloader_bair_endpoint.py) */
        const double *p = ds->positions + (v * BAIR_FRAMES + (size_t)info->start + T - 1) * 3;
        for (int k = 0; k < 3; k++) info->control[k] = p[k];
    }
    return 0;
}

/* ==== batches ==================================================================================================== */
void batch_alloc(DataBatch *b, size_t n, size_t frames, size_t size) {
    b->n = n;
    b->frames = frames;
    b->size = size;
    b->video = xmalloc(n * frames * 3 * size * size * sizeof(real));
    b->control = xcalloc(n * 3, sizeof(double));
    b->info = xcalloc(n, sizeof(ClipInfo));
}

void batch_free(DataBatch *b) {
    free(b->video);
    free(b->control);
    free(b->info);
    memset(b, 0, sizeof *b);
}

typedef struct BatchJob {
    const Dataset *ds;
    uint64_t seed, epoch;
    const size_t *items;
    size_t n;
    int workers;
    DataBatch *b;
    int *rc;                 /* (n) */
    I2vError *errs;          /* (workers) */
    int w;                   /* the worker this job struct belongs to */
} BatchJob;

static void *batch_worker(void *arg) {
    BatchJob *j = arg;
    size_t clip = j->b->frames * 3 * j->b->size * j->b->size;
    for (size_t i = (size_t)j->w; i < j->n; i += (size_t)j->workers) {
        ClipInfo *info = &j->b->info[i];
        j->rc[i] = dataset_get(j->ds, j->seed, j->epoch, j->items[i], j->b->video + i * clip, info, &j->errs[j->w]);
        if (j->rc[i]) break;
        for (int k = 0; k < 3; k++) j->b->control[i * 3 + k] = info->control[k];
    }
    return NULL;
}

int dataset_batch(const Dataset *ds, uint64_t seed, uint64_t epoch, const size_t *items, size_t n, int workers,
                  DataBatch *b, I2vError *err) {
    I2V_ASSERT(b->frames == (size_t)ds->cfg.sequence_length && b->size == (size_t)ds->cfg.img_size,
               "batch buffer (%zu frames, %zu px) does not match the data set", b->frames, b->size);
    if (workers < 1) workers = 1;
    if ((size_t)workers > n) workers = (int)(n ? n : 1);
    int *rc = xcalloc(n ? n : 1, sizeof(int));
    for (size_t i = 0; i < n; i++) rc[i] = 1;   /* 1: not attempted (a worker stops at its first error) */
    I2vError *errs = xcalloc((size_t)workers, sizeof(I2vError));
    BatchJob *jobs = xmalloc((size_t)workers * sizeof(BatchJob));
    pthread_t *th = xmalloc((size_t)workers * sizeof(pthread_t));
    int *started = xcalloc((size_t)workers, sizeof(int));
    for (int w = 0; w < workers; w++) {
        jobs[w] = (BatchJob){ds, seed, epoch, items, n, workers, b, rc, errs, w};
        if (w > 0) started[w] = pthread_create(&th[w], NULL, batch_worker, &jobs[w]) == 0;
        if (w > 0 && !started[w]) batch_worker(&jobs[w]);   /* no thread: do its share here */
    }
    batch_worker(&jobs[0]);
    for (int w = 1; w < workers; w++)
        if (started[w]) pthread_join(th[w], NULL);
    int result = 0;
    for (size_t i = 0; i < n && result == 0; i++)
        if (rc[i] < 0) {
            if (err) *err = errs[i % (size_t)workers];
            result = -1;
        }
    b->n = n;
    free(rc);
    free(errs);
    free(jobs);
    free(th);
    free(started);
    return result;
}

/* ==== the loader ==================================================================================================== */
struct DataPrefetch {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int busy;                /* a job is queued or running */
    int ready;               /* a finished job's batch waits in `out` */
    int quit;
    uint64_t epoch;          /* the job: batch `pos` of `epoch` */
    size_t pos;
    size_t *items;           /* (batch_size) copied, the loader's order may change meanwhile */
    size_t n;
    DataBatch *out;
    int rc;
    I2vError err;
    const DataLoader *L;
    size_t *scratch_order;   /* (nitems) the next epoch's order */
};

void loader_epoch_order(uint64_t seed, uint64_t epoch, int shuffle, size_t nitems, size_t *order, Rng *rng_out) {
    Rng r;
    rng_seed(&r, rng_hash64(rng_hash64(seed ^ 0x5851f42d4c957f2dull) + epoch));
    for (size_t i = 0; i < nitems; i++) order[i] = i;
    if (shuffle) {
        I2V_ASSERT(nitems <= 0xffffffffu, "too many items to shuffle");
        for (size_t i = nitems; i-- > 1;) {   /* Fisher-Yates */
            size_t j = rng_below(&r, (uint32_t)(i + 1));
            size_t t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
    }
    if (rng_out) *rng_out = r;
}

static size_t batch_count(const DataLoader *L, size_t pos) {
    size_t first = pos * L->batch_size, left = L->ds->nitems - first;
    return left < L->batch_size ? left : L->batch_size;
}

static void *prefetch_main(void *arg) {
    DataPrefetch *pf = arg;
    pthread_mutex_lock(&pf->mu);
    for (;;) {
        while (!pf->busy && !pf->quit) pthread_cond_wait(&pf->cv, &pf->mu);
        if (pf->quit) break;
        pthread_mutex_unlock(&pf->mu);
        const DataLoader *L = pf->L;
        I2vError e;
        int rc = dataset_batch(L->ds, L->seed, pf->epoch, pf->items, pf->n, L->workers, pf->out, &e);
        pthread_mutex_lock(&pf->mu);
        pf->rc = rc;
        if (rc) pf->err = e;
        pf->busy = 0;
        pf->ready = 1;
        pthread_cond_broadcast(&pf->cv);
    }
    pthread_mutex_unlock(&pf->mu);
    return NULL;
}

/* Waits until the prefetch thread is idle. */
static void prefetch_wait(DataPrefetch *pf) {
    pthread_mutex_lock(&pf->mu);
    while (pf->busy) pthread_cond_wait(&pf->cv, &pf->mu);
    pthread_mutex_unlock(&pf->mu);
}

/* Queues batch `pos` of `epoch` into `out`. */
static void prefetch_submit(DataLoader *L, uint64_t epoch, size_t pos, DataBatch *out) {
    DataPrefetch *pf = L->pf;
    const size_t *order = L->order;
    if (epoch != L->epoch) {
        loader_epoch_order(L->seed, epoch, L->shuffle, L->ds->nitems, pf->scratch_order, NULL);
        order = pf->scratch_order;
    }
    pthread_mutex_lock(&pf->mu);
    pf->epoch = epoch;
    pf->pos = pos;
    pf->n = batch_count(L, pos);
    memcpy(pf->items, order + pos * L->batch_size, pf->n * sizeof(size_t));
    pf->out = out;
    pf->ready = 0;
    pf->busy = 1;
    pthread_cond_broadcast(&pf->cv);
    pthread_mutex_unlock(&pf->mu);
}

int loader_init(DataLoader *L, const Dataset *ds, size_t batch_size, int shuffle, int drop_last, int prefetch,
                uint64_t seed, I2vError *err) {
    memset(L, 0, sizeof *L);
    if (batch_size < 1) return err_set(err, "batch size must be >= 1");
    L->ds = ds;
    L->batch_size = batch_size;
    L->shuffle = shuffle;
    L->drop_last = drop_last;
    L->prefetch = prefetch;
    L->workers = ds->cfg.workers;
    L->seed = seed;
    L->nbatches = drop_last ? ds->nitems / batch_size : (ds->nitems + batch_size - 1) / batch_size;
    if (L->nbatches == 0)
        return err_set(err, "%s data set, mode %s: %zu clips make no batch of %zu with drop_last", ds->cfg.dataset,
                       data_mode_name(ds->mode), ds->nitems, batch_size);
    L->order = xmalloc(ds->nitems * sizeof(size_t));
    loader_epoch_order(seed, 0, shuffle, ds->nitems, L->order, &L->order_rng);
    for (int i = 0; i < 2; i++) batch_alloc(&L->buf[i], batch_size, (size_t)ds->cfg.sequence_length, (size_t)ds->cfg.img_size);
    if (prefetch) {
        DataPrefetch *pf = xcalloc(1, sizeof *pf);
        pf->items = xmalloc(batch_size * sizeof(size_t));
        pf->scratch_order = xmalloc(ds->nitems * sizeof(size_t));
        pf->L = L;
        pthread_mutex_init(&pf->mu, NULL);
        pthread_cond_init(&pf->cv, NULL);
        if (pthread_create(&pf->thread, NULL, prefetch_main, pf) != 0) {
            pthread_mutex_destroy(&pf->mu);
            pthread_cond_destroy(&pf->cv);
            free(pf->items);
            free(pf->scratch_order);
            free(pf);
            L->prefetch = 0;   /* no thread: load in the caller, the batches are the same */
        } else {
            L->pf = pf;
            prefetch_submit(L, 0, 0, &L->buf[1]);
        }
    }
    L->cur = 0;
    return 0;
}

int loader_next(DataLoader *L, const DataBatch **batch, I2vError *err) {
    *batch = NULL;
    if (L->position >= L->nbatches) {
        L->epoch++;
        L->position = 0;
        loader_epoch_order(L->seed, L->epoch, L->shuffle, L->ds->nitems, L->order, &L->order_rng);
        return 1;
    }
    int slot = 1 - L->cur;
    DataBatch *dst = &L->buf[slot];
    int rc = -2;   /* -2: not produced yet */
    if (L->pf) {
        DataPrefetch *pf = L->pf;
        prefetch_wait(pf);
        if (pf->ready && pf->epoch == L->epoch && pf->pos == L->position && pf->out == dst) {
            rc = pf->rc;
            if (rc && err) *err = pf->err;
        }
        pf->ready = 0;
    }
    if (rc == -2) {
        size_t n = batch_count(L, L->position);
        rc = dataset_batch(L->ds, L->seed, L->epoch, L->order + L->position * L->batch_size, n, L->workers, dst, err);
    }
    if (rc) return -1;
    L->cur = slot;
    L->position++;
    if (L->pf) {
        uint64_t e = L->epoch;
        size_t p = L->position;
        if (p >= L->nbatches) {
            e++;
            p = 0;
        }
        prefetch_submit(L, e, p, &L->buf[1 - L->cur]);
    }
    *batch = &L->buf[L->cur];
    return 0;
}

void loader_seek(DataLoader *L, uint64_t epoch, size_t position) {
    if (L->pf) {
        prefetch_wait(L->pf);
        L->pf->ready = 0;
    }
    L->epoch = epoch;
    L->position = position;
    loader_epoch_order(L->seed, epoch, L->shuffle, L->ds->nitems, L->order, &L->order_rng);
    if (L->pf && position < L->nbatches) prefetch_submit(L, epoch, position, &L->buf[1 - L->cur]);
}

void loader_free(DataLoader *L) {
    if (L->pf) {
        DataPrefetch *pf = L->pf;
        pthread_mutex_lock(&pf->mu);
        pf->quit = 1;
        pthread_cond_broadcast(&pf->cv);
        pthread_mutex_unlock(&pf->mu);
        pthread_join(pf->thread, NULL);
        pthread_mutex_destroy(&pf->mu);
        pthread_cond_destroy(&pf->cv);
        free(pf->items);
        free(pf->scratch_order);
        free(pf);
    }
    free(L->order);
    for (int i = 0; i < 2; i++) batch_free(&L->buf[i]);
    memset(L, 0, sizeof *L);
}
