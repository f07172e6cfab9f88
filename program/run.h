/* run.h: training each stage into a model folder (model.h) with resumable checkpoints: weights under
 * their official names, optimiser and scheduler state, RNG streams, the data loader's position and the
 * config, so that --resume continues bit for bit. */
#ifndef I2V_RUN_H
#define I2V_RUN_H

#include <signal.h>
#include <stdint.h>

#include "base/base.h"

typedef struct TrainOpts {
    const char *config;          /* a YAML path or a built-in name */
    int noverrides;
    char **overrides;            /* "Section.key=value" */
    const char *out;             /* the model folder (created) */
    const char *stage1_dir;      /* cINN only: where the frozen stage-1 model is (default: out) */
    const char *cond_ae_dir;     /* cINN only: where the conditioning encoder is (default: out) */
    const char *cinn_file;       /* cINN only: checkpoint name inside out (default CINN_FILE of model.h) */
    const char *cinn_config;     /* cINN only: config name inside out (default CINN_CONFIG) */
    int resume;                  /* continue from the checkpoint in out */
    const char *resume_from;     /* continue from this (older) checkpoint of the run instead (implies resume) */
    int keep;                    /* checkpoints kept: the newest and keep - 1 older ones (ckpt.h) */
    uint64_t seed;
    long max_steps;              /* stop after this many steps in total (0: the config's epochs) */
    double max_seconds;          /* stop after this much time (0: none) */
    long save_every;             /* checkpoint every this many steps (0: at the end of each epoch only) */
    long sample_every;           /* write a sample GIF every this many steps (0: at the end only) */
    const char *lpips;           /* LPIPS weights (safetensors) when a config asks for the perceptual loss */
    int eval_batches;            /* validation batches at the end of each epoch (0: the whole eval split) */
    const char *fvd_weights;     /* stage 1 and cINN: the training-time FVD monitor's network (NULL: off) */
    int fvd_width_div;           /* > 1: that network is a reduced-width stand-in (tests) */
} TrainOpts;

void train_opts_default(TrainOpts *o);
int train_stage1(const TrainOpts *o, I2vError *e);
int train_cond_ae(const TrainOpts *o, I2vError *e);
int train_cinn(const TrainOpts *o, I2vError *e);

/* The signal (SIGINT, SIGTERM) that asked the training loops to save a checkpoint and stop after the
 * current step, or 0. A program stopped so exits with 128 + that number (130, 143), as shells expect. */
extern volatile sig_atomic_t run_interrupted;
void run_install_signals(void);

#endif
