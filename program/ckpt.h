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

#endif
