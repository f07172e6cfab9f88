/* eval_metrics.h: the paper's metrics of a model folder (`i2v evaluate --metrics ...`), the `i2v features`
 * command, and the feature networks wrapped as protocols.h Embedders.
 *
 * What it is: loading the metric networks from a weights folder, sampling the test set the way
 * eval_synthesis_quality.py and eval_diversity.py do, and printing the paper's row with confidence
 * intervals. What it is not: the protocol rules (protocols.c), the distances (distances.c) or the
 * networks (networks/features.c). */
#ifndef I2V_EVAL_METRICS_H
#define I2V_EVAL_METRICS_H

#include "networks/features.h"
#include "networks/lpips.h"
#include "program/protocols.h"

/* A FeatureNet with its own context, usable as an Embedder (em.net points back to this struct). */
typedef struct NetEmbedder {
    FeatureNet f;
    Ctx c;
    Embedder em;
    char label[512];       /* "<kind> (<file>; <preprocessing>)" */
} NetEmbedder;

/* Loads kind from path at width 1 / width_div (a stand-in for tests); label names file and preprocessing. */
int net_embedder_open(NetEmbedder *ne, FeatureKind kind, int width_div, const char *path, I2vError *e);
void net_embedder_close(NetEmbedder *ne);
/* How kind preprocesses its input, in words (for every printed figure). */
const char *feature_preprocessing(FeatureKind kind);

/* ---- the scoring of evaluate --metrics, callable on clips from anywhere (tests, dumps) ------------------- */
enum { MET_FVD = 1, MET_DTFVD = 2, MET_FID = 4, MET_LPIPS = 8, MET_DIVERSITY = 16, MET_ALL = 31 };

/* The networks a set of metrics needs: FVD and the I3D diversity the Kinetics I3D, DTFVD and the DTI3D
 * diversity the 16-frame dynamic-texture I3D, FID InceptionV3, the VGG diversity VGG16, LPIPS LPIPS-VGG. */
typedef struct MetricNets {
    unsigned metrics;
    NetEmbedder i3d, dt, inc, vgg;
    Lpips lp;
    int have_i3d, have_dt, have_inc, have_vgg, have_lp;
} MetricNets;

/* The weight files of MetricNets, in this order (the names in the weights folder). */
enum { NET_FILE_I3D, NET_FILE_DTI3D16, NET_FILE_INCEPTION, NET_FILE_VGG16, NET_FILE_LPIPS, NET_FILES };
extern const char *const metric_net_files[NET_FILES];

/* Loads the networks `metrics` needs from paths[NET_FILE_*] (unneeded entries may be NULL), at width
 * 1 / width_div (stand-ins for tests). On failure nothing stays open. */
int metric_nets_open(MetricNets *mn, unsigned metrics, const char *const paths[NET_FILES], int width_div,
                     I2vError *e);
void metric_nets_close(MetricNets *mn);

typedef struct MetricsRow {
    int clips, frames;
    FrechetReport fvd, dtfvd, fid;
    double lpips;
    int lpips_frames;
    double div_vgg, div_i3d, div_dti3d;
    int div_clips_i3d, div_clips_dti3d;
    char fvd_net[512], dtfvd_net[512], fid_net[512];
} MetricsRow;

/* FVD, DTFVD, FID and LPIPS (those of mn->metrics) of the assembled videos gen and real_ (n, T, 3, S, S)
 * (protocol_assemble), into row. po drives the Frechet distances of videos, pf FID's (its bootstrap). */
int metrics_quality(MetricNets *mn, const real *gen, const real *real_, int n, int T, int S, const ProtocolOpts *po,
                    const ProtocolOpts *pf, MetricsRow *row, I2vError *e);

/* The diversity scores, fed clip by clip (a landscape run's 918 x 5 videos would not fit in memory at once):
 * diversity_add takes the DIVERSITY_REALISATIONS videos (R, G, 3, S, S) sampled from clip `clip`
 * (0, 1, ... in order), diversity_finish writes the three scores of the first n clips into row. */
typedef struct DiversityAcc {
    int n, G, S;
    double vgg_sum;
    double *emb_i3d, *emb_dt;   /* (n, R, D) */
} DiversityAcc;
void diversity_begin(DiversityAcc *acc, const MetricNets *mn, int n, int G, int S);
void diversity_add(DiversityAcc *acc, MetricNets *mn, int clip, const real *videos);
void diversity_finish(DiversityAcc *acc, MetricNets *mn, MetricsRow *row);

/* i2v evaluate --model DIR --metrics LIST [--weights DIR] ...: returns the exit status. */
int eval_metrics_main(int argc, char **argv);
/* Does this evaluate command line ask for the paper's metrics (--metrics)? */
int eval_metrics_wanted(int argc, char **argv);
/* i2v features --net KIND --weights FILE --in VIDEOS.npy --out FEATURES.npy */
int features_main(int argc, char **argv);

#endif
