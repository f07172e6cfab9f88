/* data.h: the data sets of i2v: loaders for the official folder layouts, the transforms the official
 * configs ask for, batching with a prefetch thread, the built-in synthetic set with known motion, motion
 * statistics for evaluation, and the TFRecord reader that converts BAIR without TensorFlow.
 *
 * What it is: data.c (config, folder layouts of BAIR, landscape, iPER, DTDB, resizing, augmentation,
 * batches, the loader and its prefetch thread), synth.c (the synthetic set, its exports to the four
 * layouts, trajectory recovery and the motion metric), tfrecord.c (CRC-32C, TFRecord framing,
 * tf.train.Example protobuf reader and writer, the BAIR converter). Everything follows
 * spec/DATA.md, which was read off the official loaders (data/dataloader_*.py, data/augmentation.py).
 * What it is not: an image codec (image.h decodes and encodes), a YAML reader (config.h fills DataConfig),
 * or anything that knows about networks.
 *
 * Values: a clip is (T, 3, S, S) `real` in [-1, 1] (x / 255 -> transforms on [0, 1] -> (x - 0.5) / 0.5),
 * a batch (N, T, 3, S, S). Frame 0 of a clip is x0.
 * Randomness: everything random about a clip (start frame, flip, crop, jitter, synthetic content) comes
 * from a generator seeded by (loader seed, epoch, item), never from timing, so batches are the same with
 * and without the prefetch thread and can be reproduced after a restart from (epoch, position).
 * Directory listings are sorted (numbers inside names compare as numbers); the official loaders use
 * os.listdir order, which is file-system dependent (DATA.md 8.1).
 * Errors from files and user input fill an I2vError naming the file or video and what was expected.
 *
 * Dimension legend: N batch, T frames, C channels (3, RGB), H, W height and width, S square size.
 */
#ifndef I2V_DATA_H
#define I2V_DATA_H

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/base.h"
#include "tensor.h"

#define DATA_PATH_MAX 4096   /* every path buffer of the data code */

/* ==== configuration ======================================================================================= */
typedef enum DataSet { DATA_SYNTHETIC = 0, DATA_BAIR, DATA_LANDSCAPE, DATA_IPER, DATA_DTDB } DataSet;
typedef enum DataMode { DATA_TRAIN = 0, DATA_EVAL = 1, DATA_TEST = 2 } DataMode;

/* The keys of the official YAML `Data` section (plus Training.control and Training.workers), as plain
 * int / double / char[] fields so config.h can bind them; then the synthetic set's own knobs. */
typedef struct DataConfig {
    char dataset[32];        /* Data.dataset: synthetic | BAIR, bair | landscape, Landscape | iPER, iper | DTDB, dtdb */
    char data_path[1024];    /* Data.data_path, the data set root; "" selects the synthetic set. The official
                                code needs a trailing '/'; here it is optional */
    char splits_dir[1024];   /* split lists: <dir>/landscape/{train,eval,test}.txt, <dir>/iPER/{train,val,test}.txt
                                (the official code reads data/landscape/ and data/iPER/); default configs/splits */
    int sequence_length;     /* Data.sequence_length: T (17; 1 for the conditioning AE) */
    int img_size;            /* Data.img_size: S */
    int aug;                 /* Data.aug: augment in train mode */
    double brightness;       /* Data.Augmentation.brightness: b ~ U(max(0, 1 - B), min(2, 1 + B)) */
    double contrast;         /* Data.Augmentation.contrast:   c ~ U(max(0, 1 - C), 1 + C) */
    double saturation;       /* Data.Augmentation.saturation: s ~ U(max(0, 1 - Sa), 1 + Sa) */
    double hue;              /* Data.Augmentation.hue:        h ~ U(-Hu, Hu), Hu <= 0.5 */
    double prob_hflip;       /* Data.Augmentation.prob_hflip */
    int iter_train, iter_eval, iter_test;   /* Data.iter_<mode>: repetitions per epoch (landscape, iPER, DTDB) */
    int test_size;           /* Data.test_size: iPER test items (DatasetEvaluation: 1000) */
    char texture[32];        /* Data.texture (DTDB): clouds, fire, vegetation, waterfall */
    char image_format[8];    /* Data.image_format (DTDB): png or jpg */
    int control;             /* Training.control: BAIR with end-effector condition (dataloader_bair_endpoint) */
    int workers;             /* Training.workers: threads decoding the clips of one batch (>= 1) */
    /* synthetic set (no official counterpart) */
    int synth_train, synth_eval, synth_test;   /* clips per epoch in each mode */
    int synth_distractors;   /* at most this many distractor objects per video (0..SYNTH_MAX_DISTRACTORS) */
    double synth_occluder;   /* probability of a static grey occluding bar */
    double synth_speed_min, synth_speed_max;   /* speed range in pixels per frame at S = 64 (scaled with S) */
    double synth_texture;    /* contrast of the background texture: 1 as designed, 0 a flat grey */
    double synth_object_scale; /* size of the objects relative to the design (radius 0.09-0.14 S): 1 */
} DataConfig;

/* The synthetic set at 64 x 64, T = 17, no augmentation, 4096 / 256 / 256 clips, jitter values of the
 * BAIR config (used only if aug is switched on), 2 workers. */
void data_config_default(DataConfig *c);
/* Checks ranges and names (dataset, image_format, sizes, jitter bounds). */
int data_config_check(const DataConfig *c, I2vError *err);
/* "BAIR"/"bair" -> DATA_BAIR etc., as get_loader() accepts them; "synthetic"/"synth"/"" -> DATA_SYNTHETIC. */
int data_set_from_name(const char *name, DataSet *out, I2vError *err);
const char *data_mode_name(DataMode m);      /* "train", "eval", "test" */

/* ==== the synthetic set (synth.c) ============================================================================ */
#define SYNTH_MAX_FRAMES 128
#define SYNTH_MAX_DISTRACTORS 3

typedef enum SynthShape { SYNTH_DISC = 0, SYNTH_SQUARE, SYNTH_TRIANGLE, SYNTH_PLUS, SYNTH_NSHAPES } SynthShape;

/* Positions are in pixels with the origin at the top-left corner of the image: pixel (row j, column i)
 * covers [i, i + 1) x [j, j + 1), so its centre is (i + 0.5, j + 0.5). */
typedef struct SynthObject {
    int shape;               /* SynthShape */
    double colour[3];        /* RGB in [0, 1]: grey level + a chroma vector (the background has no chroma) */
    double radius;           /* circumradius, px; the object bounces when this circle touches a wall */
    double angle;            /* fixed orientation, radians */
    double pos0[2];          /* centre (x, y) at frame 0, px */
    double vel[2];           /* (vx, vy), px per frame, before reflections */
} SynthObject;

typedef struct SynthConfig {
    int size;                /* S */
    int frames;              /* frames per video (<= SYNTH_MAX_FRAMES) */
    int max_distractors;
    double occluder_prob;
    double speed_min, speed_max;   /* px per frame at S = 64 */
    double texture;                /* background texture contrast, 0..1 */
    double object_scale;           /* object radii times this */
} SynthConfig;

/* Ground truth of one synthetic video. The main object is the one to track; its colour is known. */
typedef struct SynthTruth {
    int size, frames;
    SynthObject main;
    int ndistractors;
    SynthObject distractor[SYNTH_MAX_DISTRACTORS];
    int has_occluder;
    double occluder[4];      /* x0, y0, x1, y1 of the bar, px */
    double occluder_grey;
    double speed;            /* |vel|, px per frame */
    double direction;        /* atan2(vy, vx), radians */
    int bounces;             /* wall reflections of the main object over the video */
    double centre[SYNTH_MAX_FRAMES][2];   /* (T, 2): the main object's centre (x, y), sub-pixel */
    double visible[SYNTH_MAX_FRAMES];     /* (T): fraction of the main object not hidden by the occluder */
    double control[SYNTH_MAX_FRAMES][3];  /* (T, 3): the control factor if the clip ended at this frame */
} SynthTruth;

/* Control factor (the BAIR end point's counterpart, 3 numbers in [0, 1)): at frame t,
 *   (x_t / S, y_t / S, speed / speed_max_px)
 * the main object's position (always strictly inside the frame) and its constant speed, which separates
 * clips that reach the same end point by different paths. flow_embed_endpoint() bins each into 10. */
void synth_config_from(const DataConfig *c, SynthConfig *sc);
/* Draws video `index` of the stream `seed` and renders it: video (frames, 3, S, S) in [-1, 1], or NULL for
 * the ground truth only. Deterministic per (seed, index) and configuration. */
void synth_video(const SynthConfig *sc, uint64_t seed, uint64_t index, real *video, SynthTruth *truth);
/* The stream of a data set mode: the synthetic data set's clips and the exports of that split use it. */
uint64_t synth_stream(uint64_t seed, DataMode mode);

/* ---- trajectory recovery and motion statistics (the metric the program compares motions with) ---- */
/* Recovers the object of known `colour` in every frame of a video (T, 3, H, W) in [-1, 1]: each pixel's
 * chroma (its colour minus its grey level) is projected on the object's chroma, giving its coverage
 * alpha in [0, 1] (exact for the synthetic set, whose background and occluder are grey and whose
 * distractors' chroma points away); a box filter of the object's size finds the object, then the
 * alpha-weighted centroid in a window of radius 1.5 * radius + 2 around it, twice re-centred, gives the
 * centre (x, y) in px (same convention as SynthTruth). mass[t] = sum of alpha in the window (visible
 * area, px^2). Frames with mass < 1 get centre NaN. */
void synth_track(const real *video, size_t frames, size_t height, size_t width, const double colour[3],
                 double radius, double *centre /* (T, 2) */, double *mass /* (T) */);

typedef struct MotionStats {
    double disp[2];          /* last found centre - first found centre, px */
    double final_pos[2];     /* last found centre / (W, H): the end point, in [0, 1) */
    double path;             /* sum of frame-to-frame distances, px */
    double speed;            /* median frame-to-frame distance, px per frame (robust to bounces) */
    double direction;        /* atan2(disp_y, disp_x) */
    size_t found;            /* frames in which the object was found */
} MotionStats;
void motion_stats(const double *centre /* (T, 2) */, size_t frames, size_t height, size_t width, MotionStats *out);
/* The control factor a track obeys, to compare with the one that was asked for (synth control above). */
void motion_control(const MotionStats *s, double speed_max_px, double out[3]);
/* Motion distance between two sets of d-dimensional motion descriptors (e.g. end displacements divided by
 * the frame size, generated vs true): Szekely's energy distance
 *   E = 2 mean|a_i - b_j| - mean|a_i - a_k| - mean|b_j - b_l|   (V-statistics, Euclidean norms),
 * which is >= 0 and 0 exactly when the two empirical distributions are equal; sqrt(E) is a metric on
 * distributions. Unlike a mean error it sees a collapse of diversity (all samples at the mean). */
double motion_energy_distance(const double *a, size_t na, const double *b, size_t nb, int dim);

/* ---- exports of the synthetic set to the official folder layouts ---- */
typedef struct SynthExport {
    DataSet layout;          /* DATA_BAIR, DATA_LANDSCAPE, DATA_IPER or DATA_DTDB */
    int nvideos[3];          /* train, eval, test (DTDB: eval and test share one folder: nvideos[2] unused) */
    int frames;              /* frames per video (BAIR: must be 30, the loader reads 0..29) */
    int size;                /* rendered size (the loader resizes to its img_size) */
    char texture[32];        /* DTDB */
    char image_format[8];    /* DTDB: png or jpg (landscape is always jpg, BAIR and iPER png) */
} SynthExport;
/* Writes the layout under `root` (created), from the synthetic stream synth_stream(seed, split):
 *  BAIR       root/<split>/traj_<a>_to_<b>/<k>/<i>.png (records of 4 trajectories, k = j - a + 1) and
 *             endeffector_positions.csv whose rows are m + r * control_t (DATA.md 1.3), so the endpoint
 *             loader gives the control back;
 *  landscape  root/sky_train/a<j>/a<j>_1/frame<k>.jpg (train), .../b<j>/b<j>_1/ (eval), root/sky_test/c<j>/
 *             c<j>_1/ (test) and root/splits/landscape/{train,eval,test}.txt (test entries end in '/');
 *  iPER       root/<actor>_<outfit>_<action>/frame_<k>.png and root/splits/iPER/{train,val,test}.txt;
 *  DTDB       root/<texture>/{train,eval}/video<j>/frame<k>.<fmt>.
 * Video j of split s is synth_video(sc with `frames` and `size`, synth_stream(seed, s), j), written in the
 * order the loaders list videos, so a loaded clip's ClipInfo.video is j. Point splits_dir at root/splits. */
int synth_export(const SynthConfig *sc, uint64_t seed, const SynthExport *ex, const char *root, I2vError *err);
/* The folder name of exported iPER video i of a split: <actor>_1_<action>, actor 1000 (s + 1) + i, action
 * 1 + i % 2 (the loader repeats action-2 videos twice). */
void synth_export_iper_name(DataMode split, int i, char *name, size_t cap);
/* Writes BAIR-like TFRecords of the synthetic set: dir/softmotion30_44k/<split>/traj_<a>_to_<b>.tfrecords,
 * `per_file` trajectories per file, features "<i>/image_aux1/encoded" (64x64x3 raw) and
 * "<i>/endeffector_pos" (3 floats) for i < 30, as the original BAIR records hold them. */
int synth_export_tfrecords(const SynthConfig *sc, uint64_t seed, DataMode split, int nvideos, int per_file,
                           const char *dir, I2vError *err);

/* ==== data sets (data.c) ================================================================================= */
#define BAIR_FRAMES 30
/* dataloader_bair_endpoint.py's normalisation: p = (pos - m) / r (DATA.md 1.3). */
extern const double bair_pos_m[3], bair_pos_r[3];

typedef struct AugParams {
    int flip;                /* mirror the width axis */
    int crop_x, crop_y;      /* random-crop offsets, 0..16 */
    double brightness, contrast, saturation, hue;   /* factors b, c, s and the hue shift h (fraction of a turn) */
    int order[4];            /* the order of the four jitter ops: 0 brightness, 1 contrast, 2 saturation, 3 hue */
} AugParams;

/* What the loader knows about one clip. */
typedef struct ClipInfo {
    size_t item;             /* index in the data set (0..nitems-1) */
    size_t video;            /* index of its video in the data set's list */
    int start;               /* first frame within the video */
    int augmented;           /* 0: resize + normalise only */
    AugParams aug;           /* the parameters used when augmented */
    double control[3];       /* BAIR with control: the normalised end point; synthetic: its control; else 0 */
    int has_truth;           /* synthetic set only */
    SynthTruth truth;        /* frames [start, start + T) of the synthetic video, re-indexed from 0 */
} ClipInfo;

typedef struct Dataset {
    DataConfig cfg;
    DataSet set;
    DataMode mode;
    int transform;           /* 0: resize + normalise; 1: Augmentation; 2: Augmentation_random_crop */
    int start_zero;          /* the start frame is always 0 (BAIR test, DTDB eval/test, synthetic) */
    char root[DATA_PATH_MAX]; /* the folder frames are read from (data_path, or data_path/<texture>/<mode>) */
    size_t nvideos;
    char **video_dir;        /* (nvideos) relative to root */
    int *video_frames;       /* (nvideos) frames in each video */
    double *positions;       /* (nvideos, 30, 3) normalised end-effector positions; BAIR with control only */
    size_t nitems;           /* clips per epoch: len(Dataset) */
    size_t *item_video;      /* (nitems) the video of each item (NULL for the synthetic set) */
    size_t nskipped;         /* iPER: listed videos with fewer than T frames, skipped as the official loader does */
    SynthConfig synth;       /* the synthetic set's generator settings */
    uint64_t synth_seed;     /* its stream for this mode */
} Dataset;

/* Builds the list of clips of one mode exactly as the official Dataset(opt, mode) does (DATA.md 1-4):
 * which folders, which split list, how many repetitions, which transform. `seed` selects the synthetic
 * stream (ignored by real data). Checks that every video has the frames the loader will read and says
 * which one is incomplete. */
int dataset_open(Dataset *ds, const DataConfig *cfg, DataMode mode, uint64_t seed, I2vError *err);
void dataset_close(Dataset *ds);
/* A clip: clip (T, 3, S, S) in [-1, 1] and its info. Randomness from rng_seed(clip_seed(seed, epoch, item)). */
int dataset_get(const Dataset *ds, uint64_t seed, uint64_t epoch, size_t item, real *clip, ClipInfo *info,
                I2vError *err);
uint64_t clip_seed(uint64_t seed, uint64_t epoch, size_t item);

/* ---- transforms (data.c; data/augmentation.py with kornia 0.5.0, DATA.md 0 and 5) ---- */
/* Bilinear resize, F.interpolate(mode='bilinear', align_corners=False), no antialiasing: source
 * coordinate (d + 0.5) * in / out - 0.5, clamped at 0. src (C, H, W) -> dst (C, Ho, Wo). */
void data_resize(const real *src, size_t channels, size_t height, size_t width, real *dst, size_t out_h,
                 size_t out_w);
/* Draws one clip's parameters in a fixed order: flip, crop (random_crop only), b, c, s, h, permutation. */
void aug_sample(const DataConfig *c, int random_crop, Rng *r, AugParams *p);
/* ColorJitter on one image (3, H, W) in [0, 1], in place: the four ops in p->order, each clamped to [0, 1]:
 * x + (b - 1); x * c; HSV saturation * s; HSV hue + 2 pi h (mod 2 pi); kornia's RGB <-> HSV. */
void color_jitter(real *img, size_t height, size_t width, const AugParams *p);
void rgb_to_hsv(const real rgb[3], real hsv[3]);   /* kornia 0.5.0: H in [0, 2 pi), S = delta / (V + 1e-6) */
void hsv_to_rgb(const real hsv[3], real rgb[3]);
/* The whole clip transform on frames (T, 3, R, R) in [0, 1] (already resized to R = S, or S + 16 for the
 * random-crop class): flip, crop to S, jitter, then (x - 0.5) / 0.5 into out (T, 3, S, S). */
void aug_apply(const AugParams *p, const real *frames, size_t T, size_t R, size_t S, real *out);

/* ==== batches and the loader (data.c) ======================================================================== */
typedef struct DataBatch {
    size_t n, frames, size;  /* N, T, S */
    real *video;             /* (N, T, 3, S, S) in [-1, 1] */
    double *control;         /* (N, 3) */
    ClipInfo *info;          /* (N) */
} DataBatch;
void batch_alloc(DataBatch *b, size_t n, size_t frames, size_t size);
void batch_free(DataBatch *b);
/* Fills b with the clips `items` (n of them, n <= b's capacity) of epoch `epoch`, on `workers` threads. */
int dataset_batch(const Dataset *ds, uint64_t seed, uint64_t epoch, const size_t *items, size_t n, int workers,
                  DataBatch *b, I2vError *err);

typedef struct DataPrefetch DataPrefetch;
typedef struct DataLoader {
    const Dataset *ds;
    size_t batch_size;
    int shuffle, drop_last, prefetch, workers;
    uint64_t seed;
    /* state: checkpoint (seed, epoch, position); everything else follows from them */
    uint64_t epoch;          /* current epoch, from 0 */
    size_t position;         /* batches of this epoch already handed out */
    size_t nbatches;         /* batches per epoch: floor or ceil(nitems / batch_size) by drop_last */
    size_t *order;           /* (nitems) this epoch's item order (identity without shuffle) */
    Rng order_rng;           /* the generator that drew `order`: rng_seed(mix(seed, epoch)) */
    /* buffers */
    DataBatch buf[2];        /* the batch handed out and the one being prefetched */
    int cur;                 /* index of the batch handed out */
    DataPrefetch *pf;        /* the prefetch thread, NULL without prefetch */
} DataLoader;

/* shuffle and drop_last as torch.utils.data.DataLoader; prefetch: one background thread produces the next
 * batch while the caller works on the current one. Fails if an epoch would have no batch. */
int loader_init(DataLoader *L, const Dataset *ds, size_t batch_size, int shuffle, int drop_last, int prefetch,
                uint64_t seed, I2vError *err);
/* 0: *batch is the next batch (valid until the next call); 1: the epoch is over (no batch; the loader has
 * moved to the next epoch); -1: error. */
int loader_next(DataLoader *L, const DataBatch **batch, I2vError *err);
/* Resumes at (epoch, position), e.g. from a checkpoint. */
void loader_seek(DataLoader *L, uint64_t epoch, size_t position);
void loader_free(DataLoader *L);
/* The order of an epoch, a pure function of (seed, epoch, shuffle). */
void loader_epoch_order(uint64_t seed, uint64_t epoch, int shuffle, size_t nitems, size_t *order, Rng *rng_out);

/* ==== files and folders (data.c) ============================================================================= */
/* snprintf for paths: non-zero, and an error that shows the path's start, if it does not fit in cap. */
int data_join(char *out, size_t cap, I2vError *err, const char *fmt, ...) I2V_PRINTF(4, 5);
int data_mkdirs(const char *path, I2vError *err);    /* mkdir -p */
/* Sorted names of the entries of a folder (dirs_only: only sub-folders). *names is an array of malloc'd
 * strings; free with data_free_names. */
int data_list_dir(const char *path, int dirs_only, char ***names, size_t *n, I2vError *err);
void data_free_names(char **names, size_t n);
int data_name_cmp(const char *a, const char *b);     /* natural order: digit runs compare as numbers */
/* A split list: whitespace-separated entries (open(path).read().split()), trailing '/' removed. */
int data_read_split(const char *path, char ***entries, size_t *n, I2vError *err);

/* ==== TFRecord and tf.train.Example (tfrecord.c) ========================================================== */
/* CRC-32C (Castagnoli, reflected polynomial 0x82F63B78); start from 0. */
uint32_t crc32c_update(uint32_t crc, const uint8_t *p, size_t n);
/* TFRecord's masked CRC: ((c >> 15) | (c << 17)) + 0xa282ead8 of crc32c. */
uint32_t tfr_masked_crc(const uint8_t *p, size_t n);

/* Records in memory: uint64 length, uint32 masked crc of the length, data, uint32 masked crc of the data.
 * Returns 1 and the next record at *pos, 0 at the clean end, -1 (err names `name`, the record number and
 * offset) on truncation or a bad CRC. */
int tfr_next(const uint8_t *buf, size_t n, size_t *pos, const uint8_t **rec, size_t *len, const char *name,
             I2vError *err);
/* The same, streamed from a file: one record in memory at a time, a length beyond the file's end is
 * rejected before anything is allocated. */
typedef struct TfrReader {
    FILE *f;
    char path[1024];
    uint64_t size, pos;      /* file size, offset of the next record */
    size_t index;            /* records read */
    uint8_t *buf;
    size_t cap;
} TfrReader;
int tfr_open(TfrReader *r, const char *path, I2vError *err);
int tfr_read(TfrReader *r, const uint8_t **rec, size_t *len, I2vError *err);   /* 1, 0 or -1 as tfr_next */
void tfr_close(TfrReader *r);
/* Appends one framed record to a growing buffer. */
void tfr_append(uint8_t **buf, size_t *n, size_t *cap, const uint8_t *rec, size_t len);

typedef enum TfKind { TF_NONE = 0, TF_BYTES = 1, TF_FLOAT = 2, TF_INT64 = 3 } TfKind;
typedef struct TfFeature {
    const char *key;         /* points into the record (not NUL-terminated) */
    size_t key_len;
    TfKind kind;             /* the oneof that was set (the last one, as protobuf merges) */
    size_t count;            /* values in the list */
    const uint8_t *list;     /* the serialised BytesList / FloatList / Int64List */
    size_t list_len;
} TfFeature;
typedef struct TfExample {
    TfFeature *f;
    size_t n;
} TfExample;
/* Parses a serialised tf.train.Example (Features map<string, Feature>; bytes, float and int64 lists,
 * packed or not; unknown fields skipped; groups rejected). The whole message is validated here, so the
 * getters below cannot fail on content. */
int tf_example_parse(const uint8_t *buf, size_t n, const char *name, TfExample *ex, I2vError *err);
void tf_example_free(TfExample *ex);
const TfFeature *tf_example_find(const TfExample *ex, const char *key);   /* the last entry with this key */
int tf_feature_bytes(const TfFeature *f, size_t i, const uint8_t **p, size_t *len);   /* -1 if i >= count */
size_t tf_feature_floats(const TfFeature *f, float *out, size_t cap);      /* copies min(count, cap) */
size_t tf_feature_int64s(const TfFeature *f, int64_t *out, size_t cap);

/* Writer (packed lists), for the synthetic TFRecord export and the tests. */
typedef struct TfBuilder {
    uint8_t *buf;            /* the Features message being built */
    size_t n, cap;
} TfBuilder;
void tf_builder_bytes(TfBuilder *b, const char *key, const uint8_t *const *values, const size_t *lens, size_t count);
void tf_builder_floats(TfBuilder *b, const char *key, const float *v, size_t count);
void tf_builder_int64s(TfBuilder *b, const char *key, const int64_t *v, size_t count);
uint8_t *tf_builder_finish(TfBuilder *b, size_t *n);   /* the serialised Example; resets the builder */

/* One BAIR trajectory from its Example (convert_bair.py): frames (30, 64, 64, 3) from
 * "<i>/image_aux1/encoded" (raw RGB, exactly 12288 bytes) and pos (30, 3) from "<i>/endeffector_pos". */
int bair_example_decode(const TfExample *ex, const char *name, uint8_t *frames, double *pos, I2vError *err);
/* convert_bair.py without TensorFlow: every *tfrecords file (sorted) of the first of
 * <dir>/softmotion30_44k/<split>, <dir>/<split>, <dir> that has one, becomes
 * <out>/<split>/<file name minus ".tfrecords">/<k>/<i>.png (k = 1, 2, ... per file, i = 0..29) and
 * .../<k>/endeffector_positions.csv (30 rows "%.18e,%.18e,%.18e", numpy.savetxt's default).
 * *ntraj (may be NULL) receives the number of trajectories written. */
int bair_convert(const char *tfrecord_dir, const char *out_dir, const char *split, size_t *ntraj, I2vError *err);

#endif
