/* run.h: the program's jobs: training each stage with resumable checkpoints into a model folder
 * (program/model.h says what the folder holds). */
#ifndef I2V_RUN_H
#define I2V_RUN_H

#include <stdint.h>

#include "base/base.h"

typedef struct TrainOpts {
    const char *config;          /* a YAML path or a built-in name */
    int noverrides;
    char **overrides;            /* "Section.key=value" */
    const char *out;             /* the model folder (created) */
    const char *stage1_dir;      /* cINN only: where the frozen stage-1 model is (default: out) */
    const char *ae_dir;          /* cINN only: where the conditioning encoder is (default: out) */
    const char *cinn_file;       /* cINN only: checkpoint name inside out (default CINN_FILE) */
    const char *cinn_config;     /* cINN only: config name inside out (default CINN_CONFIG) */
    int resume;                  /* continue from the checkpoint in out */
    uint64_t seed;
    long max_steps;              /* stop after this many steps in total (0: the config's epochs) */
    double max_seconds;          /* stop after this much time (0: none) */
    long save_every;             /* checkpoint every this many steps (0: at the end of each epoch only) */
    long sample_every;           /* write a sample GIF every this many steps (0: at the end only) */
    const char *lpips;           /* LPIPS weights (safetensors) when a config asks for the perceptual loss */
    int eval_batches;            /* validation batches at the end of each epoch (0: the whole eval split) */
} TrainOpts;

void train_opts_default(TrainOpts *o);
int train_stage1(const TrainOpts *o, I2vError *e);
int train_cond_ae(const TrainOpts *o, I2vError *e);
int train_cinn(const TrainOpts *o, I2vError *e);

/* Set by SIGINT: the training loops save a checkpoint and stop after the current step. */
extern volatile int run_interrupted;
void run_install_sigint(void);

#endif
