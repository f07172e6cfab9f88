/* run.h: the program's jobs: training each stage with resumable checkpoints, and the model folder that
 * sampling, control, transfer and evaluation read.
 *
 * A model folder holds, per stage, a checkpoint (weights under their official names with a prefix per
 * network, optimiser and scheduler state, RNG streams, the data loader's position) and the config that
 * made it, both as the official code names them where it can:
 *     config_stage1.yaml     stage1.safetensors      (enc. gen. disc_t. disc_s.)
 *     config_stage2_AE.yaml  cond_ae.safetensors     (enc. dec. disc.)
 *     config_stage2.yaml     cinn.safetensors        (flow.)
 * so `i2v sample --model DIR` needs only the folder. */
#ifndef I2V_RUN_H
#define I2V_RUN_H

#include <stdint.h>

#include "base/base.h"

#define STAGE1_FILE "stage1.safetensors"
#define STAGE1_CONFIG "config_stage1.yaml"
#define COND_AE_FILE "cond_ae.safetensors"
#define COND_AE_CONFIG "config_stage2_AE.yaml"
#define CINN_FILE "cinn.safetensors"
#define CINN_CONFIG "config_stage2.yaml"

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
    const char *fvd_weights;     /* stage 1 and cINN: the training-time FVD monitor's network (NULL: off) */
    int fvd_width_div;           /* > 1: that network is a reduced-width stand-in (tests) */
} TrainOpts;

void train_opts_default(TrainOpts *o);
int train_stage1(const TrainOpts *o, I2vError *e);
int train_cond_ae(const TrainOpts *o, I2vError *e);
int train_cinn(const TrainOpts *o, I2vError *e);

/* Set by SIGINT: the training loops save a checkpoint and stop after the current step. */
extern volatile int run_interrupted;
void run_install_sigint(void);

#endif
