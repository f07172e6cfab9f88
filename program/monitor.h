/* monitor.h: the training-time FVD monitor of the official trainers (utils/auxiliaries.py): once per epoch,
 * the FVD of the model's videos against the eval clips (stage 1: reconstructions from a posterior sample;
 * stage 2: samples from the prior), with the network the stage-1 config's Training.FVD names: 'FVD', the
 * Kinetics I3D with the monitor's preprocessing (align_corners resize, values mapped to [0, 1]), batches
 * of 20; 'DTFVD', the 16-frame dynamic-texture I3D, batches of 40. The lowest value keeps a copy of that
 * epoch's checkpoint, as the official best_PFVD_* files. Off, with one line saying so, without weights. */
#ifndef I2V_MONITOR_H
#define I2V_MONITOR_H

#include "program/eval_metrics.h"

typedef struct FvdMonitor {
    int on;
    char metric[8];       /* "FVD" or "DTFVD" */
    int batch;            /* BATCH_MONITOR_FVD or BATCH_MONITOR_DTFVD */
    NetEmbedder net;
    double best;          /* the lowest value so far (INFINITY before the first) */
    int improved;         /* the last value was a new best: the next checkpoint is also the best one */
} FvdMonitor;

/* metric: Training.FVD ('FVD' or 'DTFVD'); weights: the network's safetensors file or NULL (monitor off: one
 * line on stderr says so); width_div > 1 loads a reduced-width stand-in (tests). */
int monitor_open(FvdMonitor *m, const char *title, const char *metric, const char *weights, int width_div,
                 I2vError *e);
void monitor_close(FvdMonitor *m);
/* The monitor's value for generated and real videos (n, T, 3, S, S): n cut to a multiple of the batch,
 * each set mapped to [0, 1] only when it holds a negative value (the official check). Sets m->improved and
 * m->best. Fails (naming the network) when n is smaller than one batch. */
int monitor_score(FvdMonitor *m, const real *gen, const real *real_, int n, int T, int S, double *value, I2vError *e);
/* After the checkpoint at ckpt was written: when the last value was a new best, copy it to best_path. */
int monitor_keep_best(FvdMonitor *m, const char *ckpt, const char *best_path, I2vError *e);

#endif
