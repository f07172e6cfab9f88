/* optim.h: Adam (with AMSGrad and L2 weight decay) and the learning-rate schedulers, with PyTorch's
 * semantics (torch.optim.Adam, StepLR, ExponentialLR, ReduceLROnPlateau as of PyTorch 1.7-1.13).
 *
 * An optimiser covers one or more ParamSets (stage 1's "AE" optimiser covers the encoder and the
 * generator). Its moments sit in blocks with the same layout as the sets' value blocks, so one fused loop
 * per set updates parameters and moments in a single pass over memory. */
#ifndef I2V_OPTIM_H
#define I2V_OPTIM_H

#include "tensor.h"

#define ADAM_MAX_SETS 4

typedef struct Adam {
    double lr, beta1, beta2, eps, weight_decay;
    int amsgrad;
    int64_t step;                        /* updates done (PyTorch keeps one per parameter; all move together) */
    double step_size, sqrt_bc2;          /* lr / (1 - b1^step) and sqrt(1 - b2^step) of the step in progress */
    int nsets;
    ParamSet *sets[ADAM_MAX_SETS];
    real *exp_avg[ADAM_MAX_SETS];        /* first moment, same layout as sets[i]->values */
    real *exp_avg_sq[ADAM_MAX_SETS];     /* second moment */
    real *max_exp_avg_sq[ADAM_MAX_SETS]; /* AMSGrad's running maximum of the second moment (NULL otherwise) */
} Adam;

void adam_init(Adam *opt, double lr, double beta1, double beta2, double eps, double weight_decay, int amsgrad);
void adam_add_params(Adam *opt, ParamSet *ps);   /* after paramset_alloc */
void adam_free(Adam *opt);
/* One update of every parameter that has ever received a gradient (grad_seen), as PyTorch skips
 * parameters whose .grad is None:
 *   g = grad + wd * p;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  [vmax = max(vmax, v)]
 *   p -= lr / (1 - b1^t) * m / (sqrt(v or vmax) / sqrt(1 - b2^t) + eps) */
void adam_step(Adam *opt);
/* backward(c, loss) then adam_step(opt) in one pass: each parameter is updated inside the backward as soon
 * as its gradient is final (tensor.h's backward_update), a linear layer's weight 20 rows at a time right
 * after the GEMM that makes those rows of its gradient, so the gradient is read back from cache and no
 * separate pass over every parameter follows. Bitwise the same result as the two calls. In a dry run it
 * is backward alone. */
void adam_backward_step(Adam *opt, Ctx *c, Tensor *loss);

/* Schedulers change opt->lr; step them once per epoch as the official training loops do. */
typedef struct StepLR {
    int step_size;
    double gamma;
    int64_t last_epoch;
} StepLR;
void steplr_init(StepLR *s, int step_size, double gamma);
void steplr_step(StepLR *s, Adam *opt);          /* lr *= gamma every step_size epochs */

typedef struct ExponentialLR {
    double gamma;
    int64_t last_epoch;
} ExponentialLR;
void explr_init(ExponentialLR *s, double gamma);
void explr_step(ExponentialLR *s, Adam *opt);    /* lr *= gamma */

typedef struct ReduceLROnPlateau {
    int mode_max;              /* 0: 'min', 1: 'max' */
    double factor;
    int patience;
    double threshold;
    int threshold_abs;         /* threshold_mode: 1 'abs', 0 'rel' */
    int cooldown;
    double min_lr, eps;
    double best;
    int num_bad_epochs, cooldown_counter;
    int64_t last_epoch;
} ReduceLROnPlateau;
void plateau_init(ReduceLROnPlateau *s, int mode_max, double factor, int patience, double threshold,
                  int threshold_abs, int cooldown, double min_lr);
void plateau_step(ReduceLROnPlateau *s, Adam *opt, double metric);

#endif
