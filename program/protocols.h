/* protocols.h: the paper's evaluation protocols (the official eval_synthesis_quality.py, eval_diversity.py
 * and the training-time monitor of utils/auxiliaries.py): which frames are compared, how clips are
 * batched, which remainders are dropped, and how the features become the numbers of the paper's tables.
 *
 * The feature networks come in through an Embedder, so the protocols do not depend on which network (or
 * which stand-in, in the tests) produces the features. Videos are (n, T, 3, S, S) in [-1, 1].
 * Dimension legend: n clips, T frames, S frame size, D feature dimension, R realisations per clip. */
#ifndef I2V_PROTOCOLS_H
#define I2V_PROTOCOLS_H

#include <stdint.h>

#include "base/base.h"
#include "data.h"
#include "tensor.h"

#define PROTOCOL_SEED 249          /* set_seed(249) of the official evaluation scripts */
#define PROTOCOL_TEST_FRAMES 17    /* the test loader's clips: x0 and 16 frames to predict */
#define PROTOCOL_GEN_FRAMES 16     /* frames the model predicts */
#define BATCH_FVD 16               /* TF FVD: batches of exactly 16 videos */
#define BATCH_DTFVD 40
#define BATCH_FID 50
#define BATCH_LPIPS 10
#define BATCH_MONITOR_FVD 20       /* the monitor's PyTorch I3D */
#define BATCH_MONITOR_DTFVD 40
#define BATCH_DIVERSITY_I3D 16
#define BATCH_DIVERSITY_DTI3D 20
#define DIVERSITY_REALISATIONS 5
#define BOOTSTRAP_RESAMPLES 1000
#define KID_SUBSETS 100
#define KID_SUBSET_SIZE 1000

/* A feature network: embed(net, x, n, T, H, W, out) maps n clips (n, T, 3, H, W) (or n frames, T = 1,
 * for an image network) in [-1, 1] to out (n, dim), preprocessing included. label names the network,
 * its weights and its preprocessing, for every printed figure. */
typedef struct Embedder {
    void (*embed)(void *net, const real *x, int n, int T, int H, int W, real *out);
    void *net;
    int dim;
    const char *label;
} Embedder;

/* ---- clip assembly ------------------------------------------------------------------------------- */
/* Frames per assembled video: 17 for iPER (x0 and 16 predicted), 16 elsewhere. */
int protocol_frames(DataSet set);
/* From a test clip seq (17, 3, S, S) = x0 .. x16 and the model's prediction gen (16, 3, S, S) = g1 .. g16,
 * the generated and real videos the metrics compare (protocol_frames(set) frames each):
 *   BAIR (and the synthetic set)  gen [x0, g1 .. g15]   real [x0 .. x15]   (one context frame, as the FVD
 *                                                                         protocol of Unterthiner et al.)
 *   iPER                          gen [x0, g1 .. g16]   real [x0 .. x16]
 *   landscape, DTDB               gen [g1 .. g16]       real [x0 .. x15]   (frame k against real k - 1) */
void protocol_assemble(DataSet set, const real *seq, const real *gen, int S, real *out_gen, real *out_real);

/* ---- distances of two sets of clips --------------------------------------------------------------- */
typedef struct FrechetReport {
    int used;                 /* clips (or frames) that entered the statistics after the batch rule */
    int dropped;              /* the remainder the batch rule dropped */
    double value;             /* the Frechet distance */
    double ci_lo, ci_hi;      /* bootstrap 2.5 / 97.5 percentiles (NAN when resamples = 0) */
    int resamples;
    double kid, kid_std;      /* KID mean and std over subsets (NAN when kid_subsets = 0) */
} FrechetReport;

typedef struct ProtocolOpts {
    int resamples;            /* bootstrap resamples (BOOTSTRAP_RESAMPLES; 0: none) */
    int kid_subsets;          /* KID_SUBSETS (0: no KID) */
    uint64_t seed;            /* of the bootstrap and the KID subsets */
} ProtocolOpts;

/* Video Frechet distance (FVD with BATCH_FVD, DTFVD with BATCH_DTFVD, the monitor with its batch): n is
 * cut to a multiple of batch, both sets are embedded batch by batch, and the Frechet distance, KID and the
 * bootstrap interval (clips resampled) are computed. features_gen / features_real (n, dim), when not
 * NULL, receive the embeddings of the used clips. Fails when n < batch. */
int protocol_fvd(const Embedder *em, const real *gen, const real *real_, int n, int T, int S, int batch,
                 const ProtocolOpts *o, FrechetReport *r, double *features_gen, double *features_real, I2vError *e);
/* FID: all n T frames of each set as images, cut to a multiple of BATCH_FID frames; the bootstrap
 * resamples whole clips among the clips whose frames all survived the cut. */
int protocol_fid(const Embedder *em, const real *gen, const real *real_, int n, int T, int S, const ProtocolOpts *o,
                 FrechetReport *r, I2vError *e);

/* LPIPS between frame k of gen and frame k of real, frames in chunks of BATCH_LPIPS, the mean of the
 * chunk means over the whole chunks (the remainder dropped). lpips(net, x, y, m, S, out) writes m
 * distances of frame pairs (m, 3, S, S). */
typedef void (*LpipsFn)(void *net, const real *x, const real *y, int m, int S, real *out);
/* An LpipsFn for networks/lpips.h's LPIPS (net: an Lpips *), in evaluation mode (no dropout). */
void protocol_lpips_vgg(void *net, const real *x, const real *y, int m, int S, real *out);
int protocol_lpips(LpipsFn lpips, void *net, const real *gen, const real *real_, int n, int T, int S, double *score,
                   int *frames_used, I2vError *e);

/* ---- diversity ---------------------------------------------------------------------------------- */
/* Mean over ordered pairs (i, j), i != j, of the mean over n and d of (e[n, i, d] - e[n, j, d])^2;
 * e (n, R, d). */
double diversity_pairs(const double *e, int n, int R, size_t d);
/* The I3D (batch BATCH_DIVERSITY_I3D, scale 1) and DTI3D (batch BATCH_DIVERSITY_DTI3D, scale 1000) scores
 * of videos (n, R, T, 3, S, S): n cut to a multiple of the batch (the official I3D score groups the n R
 * videos in 16s after cutting n to a multiple of 16; the DTI3D one embeds each realisation's n videos in
 * 20s, dropping the rest: both keep n' = n - n mod batch clips), every video embedded, then scale times
 * diversity_pairs of the (n', R, D) embeddings. */
int protocol_diversity_embed(const Embedder *em, const real *videos, int n, int R, int T, int S, int batch,
                             double scale, double *score, I2vError *e);
/* The VGG score: for each clip separately, the R T frames through layers(net, frames, m, S, maps, sizes)
 * (maps[k] (m, sizes[k]) for the 5 layers), then per layer diversity_pairs over the R realisations of
 * T frames each; the mean over clips, pairs and layers. */
typedef void (*LayersFn)(void *net, const real *frames, int m, int S, const real *maps[5], size_t sizes[5]);
double protocol_diversity_vgg(LayersFn layers, void *net, const real *videos, int n, int R, int T, int S);

/* ---- the frechet command ------------------------------------------------------------------------- */
/* i2v frechet A.npy B.npy [--kid-subsets N] [--kid-size M] [--bootstrap N --rows R] [--seed S] */
int frechet_main(int argc, char **argv);

#endif
