/* ckpt.h: training checkpoints. One safetensors file holds everything a run needs to continue exactly:
 * model weights and buffers under their official names (prefixed per model), every optimiser's moments,
 * step counts and learning rate, every scheduler, the RNG streams, counters of the loop and the config
 * text. Values that are doubles (learning rates, plateau bests) go into the metadata as "%.17g" text,
 * which reads back to the same bits. Files are written atomically by safetensors.c. */
#ifndef I2V_CKPT_H
#define I2V_CKPT_H

#include "ops/optim.h"
#include "formats/safetensors.h"

/* Adam: tensors "optim.<name>.exp_avg.<set prefix><param>" (and exp_avg_sq, max_exp_avg_sq), a U8 tensor
 * of which parameters have received gradients, metadata optim.<name>.step / lr / ... */
void ckpt_add_adam(StWriter *w, const char *name, const Adam *opt, const char *const *set_prefixes);
int ckpt_load_adam(const StFile *f, const char *name, Adam *opt, const char *const *set_prefixes, I2vError *e);

void ckpt_add_rng(StWriter *w, const char *name, const Rng *r);
int ckpt_load_rng(const StFile *f, const char *name, Rng *r, I2vError *e);

void ckpt_add_steplr(StWriter *w, const char *name, const StepLR *s);
int ckpt_load_steplr(const StFile *f, const char *name, StepLR *s, I2vError *e);
void ckpt_add_explr(StWriter *w, const char *name, const ExponentialLR *s);
int ckpt_load_explr(const StFile *f, const char *name, ExponentialLR *s, I2vError *e);
void ckpt_add_plateau(StWriter *w, const char *name, const ReduceLROnPlateau *s);
int ckpt_load_plateau(const StFile *f, const char *name, ReduceLROnPlateau *s, I2vError *e);

/* Scalars in the metadata. */
void ckpt_meta_double(StWriter *w, const char *key, double v);
void ckpt_meta_int(StWriter *w, const char *key, long long v);
int ckpt_get_double(const StFile *f, const char *key, double *v, I2vError *e);
int ckpt_get_int(const StFile *f, const char *key, long long *v, I2vError *e);

/* ---- checkpoint files on disk ---------------------------------------------------------------------------- */

/* Removes the "<path>.tmp.<pid>" files that a run killed while saving left beside a checkpoint (those of
 * processes that no longer run), saying so; returns how many. */
int ckpt_remove_stale(const char *path);

/* The rolling set: the newest checkpoint is <dir>/<stem>.safetensors; before it is replaced by one of a
 * later step, it is kept as <dir>/checkpoints/<stem>_step<K>.safetensors (a hard link, or a copy where
 * links fail), and of those the keep - 1 of the latest steps stay, so a user can step back past a
 * divergence (--resume-from). keep <= 1: only the newest. */
#define CKPT_PATH_MAX 4096
typedef struct CkptHistory {
    char path[CKPT_PATH_MAX];     /* the newest checkpoint */
    char dir[CKPT_PATH_MAX];      /* <dir>/checkpoints */
    char stem[256];               /* the newest's file name without ".safetensors" */
    int keep;
    long long step;               /* the step the newest file holds (-1: none yet) */
} CkptHistory;
void ckpt_history_init(CkptHistory *h, const char *path, int keep, long long step);
/* Before writing the newest checkpoint of `step`: keeps the current one (of another step) in the set. */
int ckpt_history_before_save(CkptHistory *h, long long step, I2vError *e);
/* After writing it: drops the set's files beyond the keep - 1 latest steps. */
void ckpt_history_after_save(CkptHistory *h, long long step);
/* Resuming from an older checkpoint `from` (of step `step`): the newest checkpoint and the set's files of
 * later steps belong to the branch being abandoned: they move to <dir>/checkpoints/abandoned/ (nothing
 * is deleted), and `from` becomes the newest checkpoint. */
int ckpt_history_step_back(CkptHistory *h, const char *from, long long step, I2vError *e);
/* The step a checkpoint file holds (its train.step metadata). */
int ckpt_file_step(const char *path, long long *step, I2vError *e);

#endif
