/* prepare.h: data preparation: BAIR's TFRecords to the folder layout its loader reads, and the synthetic
 * set exported to the four paper data sets' layouts (and to BAIR-like TFRecords), so every loader can be
 * exercised without a download. */
#ifndef I2V_PREPARE_H
#define I2V_PREPARE_H

#include <stddef.h>
#include <stdint.h>

#include "data.h"
#include "formats/tfrecord.h"

/* ==== exports of the synthetic set to the official folder layouts ======================================== */
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
 *             endeffector_positions.csv whose rows are m + r * control_t (docs/data.md), so the endpoint
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

/* ==== BAIR ================================================================================================ */
/* One BAIR trajectory from its Example (convert_bair.py): frames (30, 64, 64, 3) from
 * "<i>/image_aux1/encoded" (raw RGB, exactly 12288 bytes) and pos (30, 3) from "<i>/endeffector_pos". */
int bair_example_decode(const TfExample *ex, const char *name, uint8_t *frames, double *pos, I2vError *err);
/* convert_bair.py without TensorFlow: every *tfrecords file (sorted) of the first of
 * <dir>/softmotion30_44k/<split>, <dir>/<split>, <dir> that has one, becomes
 * <out>/<split>/<file name minus ".tfrecords">/<k>/<i>.png (k = 1, 2, ... per file, i = 0..29) and
 * .../<k>/endeffector_positions.csv (30 rows "%.18e,%.18e,%.18e", numpy.savetxt's default).
 * *ntraj (may be NULL) receives the number of trajectories written. */
int bair_convert(const char *tfrecord_dir, const char *out_dir, const char *split, size_t *ntraj, I2vError *err);

/* ==== the paper data sets' folders ======================================================================== */
/* rename_images.py: in every <root>/sky_{train,test}/<id>/<clip>/ the *.jpg files, in the natural order of
 * their last 11 characters, become frame0.jpg, frame1.jpg, ... (what the landscape loader reads). Safe to
 * rerun, also after an interruption. *renamed: files renamed. */
int prepare_rename_landscape(const char *root, size_t *renamed, I2vError *err);
/* Opens the train, eval and test splits of dc's data set as training and evaluation do (split lists, every
 * frame of every listed video present under the loader's names, lengths): an error names the first bad
 * path; report (cap bytes) gets the videos and clips per split. */
int prepare_check(const DataConfig *dc, char *report, size_t cap, I2vError *err);

#endif
