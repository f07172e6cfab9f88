/* data.h: the data sets of i2v: loaders for the official folder layouts, the transforms the official
 * configs ask for, batching with a prefetch thread, the built-in synthetic set with known motion, motion
 * statistics for evaluation, and the TFRecord reader that converts BAIR without TensorFlow.
 *
 * What it is: data.c (config, folder layouts of BAIR, landscape, iPER, DTDB, resizing, augmentation,
 * batches, the loader and its prefetch thread), synth.c (the synthetic set, its exports to the four
 * layouts, trajectory recovery and the motion metric), tfrecord.c (CRC-32C, TFRecord framing,
 * tf.train.Example protobuf reader and writer, the BAIR converter). Everything follows
 * the official loaders (data/dataloader_*.py, data/augmentation.py); docs/data.md describes them.
 * What it is not: an image codec (image.h decodes and encodes), a YAML reader (config.h fills DataConfig),
 * or anything that knows about networks.
 *
 * Values: a clip is (T, 3, S, S) `real` in [-1, 1] (x / 255 -> transforms on [0, 1] -> (x - 0.5) / 0.5),
 * a batch (N, T, 3, S, S). Frame 0 of a clip is x0.
 * Randomness: everything random about a clip (start frame, flip, crop, jitter, synthetic content) comes
 * from a generator seeded by (loader seed, epoch, item), never from timing, so batches are the same with
 * and without the prefetch thread and can be reproduced after a restart from (epoch, position).
 * Directory listings are sorted (numbers inside names compare as numbers); the official loaders use
 * os.listdir order, which is file-system dependent.
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
#include "datasets/synth.h"

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

/* ==== the synthetic set as a data set (the world itself: datasets/synth.h) ================================ */
/* The synthetic world's settings from the Data section's synth_* keys. */
void synth_config_from(const DataConfig *c, SynthConfig *sc);
/* The stream of a data set mode: the synthetic data set's clips and the exports of that split use it. */
uint64_t synth_stream(uint64_t seed, DataMode mode);

/* ==== data sets (data.c) ================================================================================= */
#define BAIR_FRAMES 30
/* dataloader_bair_endpoint.py's normalisation: p = (pos - m) / r, per coordinate. */
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
    size_t source_width, source_height;   /* the frames' size on disk before resizing (0: the synthetic set) */
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

/* Builds the list of clips of one mode exactly as the official Dataset(opt, mode) does (docs/data.md):
 * which folders, which split list, how many repetitions, which transform. `seed` selects the synthetic
 * stream (ignored by real data). Checks that every video has the frames the loader will read and says
 * which one is incomplete. */
int dataset_open(Dataset *ds, const DataConfig *cfg, DataMode mode, uint64_t seed, I2vError *err);
void dataset_close(Dataset *ds);
/* A clip: clip (T, 3, S, S) in [-1, 1] and its info. Randomness from rng_seed(clip_seed(seed, epoch, item)). */
int dataset_get(const Dataset *ds, uint64_t seed, uint64_t epoch, size_t item, real *clip, ClipInfo *info,
                I2vError *err);
uint64_t clip_seed(uint64_t seed, uint64_t epoch, size_t item);

/* ---- transforms (data.c; data/augmentation.py with kornia 0.5.0) ---- */
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

#endif
