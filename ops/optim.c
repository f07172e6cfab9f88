/* optim.c: Adam / AMSGrad and the learning-rate schedulers (see optim.h for the formulas).
 * Mirrors torch.optim.Adam (_functional.adam, non-foreach path), torch.optim.lr_scheduler.StepLR,
 * ExponentialLR and ReduceLROnPlateau. Not here: saving the state (the program writes the moment blocks
 * and these structs' fields into its checkpoints). */
#include "ops/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/adam.h"
#include "cuda/cuda.h"
#include "kernels/threads.h"

void adam_init(Adam *opt, double lr, double beta1, double beta2, double eps, double weight_decay, int amsgrad) {
    memset(opt, 0, sizeof *opt);
    opt->lr = lr;
    opt->beta1 = beta1;
    opt->beta2 = beta2;
    opt->eps = eps;
    opt->weight_decay = weight_decay;
    opt->amsgrad = amsgrad;
}

void adam_add_params(Adam *opt, ParamSet *ps) {
    I2V_ASSERT(ps->allocated, "adam_add_params before paramset_alloc");
    I2V_ASSERT(opt->nsets < ADAM_MAX_SETS, "an optimiser covers at most %d parameter sets", ADAM_MAX_SETS);
    int i = opt->nsets++;
    opt->sets[i] = ps;
    /* the moments live where the parameters do */
    size_t bytes = (ps->nvalues ? ps->nvalues : 1) * sizeof(real);
    opt->exp_avg[i] = device_calloc(ps->device, bytes);
    opt->exp_avg_sq[i] = device_calloc(ps->device, bytes);
    opt->max_exp_avg_sq[i] = opt->amsgrad ? device_calloc(ps->device, bytes) : NULL;
}

void adam_free(Adam *opt) {
    for (int i = 0; i < opt->nsets; i++) {
        Device d = opt->sets[i]->device;
        device_release(d, opt->exp_avg[i]);
        device_release(d, opt->exp_avg_sq[i]);
        device_release(d, opt->max_exp_avg_sq[i]);
    }
    memset(opt, 0, sizeof *opt);
}

/* The update of one contiguous run of parameters: one pass over p, g, m, v (and vmax). */
typedef struct AdamRun {
    real *p, *g, *m, *v, *vmax;
    size_t n;
} AdamRun;

static AdamHyper hyper(const Adam *opt) {
    AdamHyper h = {(real)opt->beta1, (real)opt->beta2, (real)opt->weight_decay, (real)opt->eps,
                   (real)opt->step_size, (real)opt->sqrt_bc2};
    return h;
}

static void run_update(const Adam *opt, const AdamRun *r, size_t lo, size_t hi) {
    AdamHyper h = hyper(opt);
    adam_update(r->p + lo, r->g + lo, r->m + lo, r->v + lo, r->vmax ? r->vmax + lo : NULL, hi - lo, &h);
}

/* Elements [off, off + n) of parameter t, which lives in set s; its gradient must be written (param_grad). */
static AdamRun adam_run_of(const Adam *opt, int s, Tensor *t, size_t off, size_t n) {
    size_t at = (size_t)(t->data - opt->sets[s]->values) + off;
    AdamRun r = {t->data + off, t->grad + off, opt->exp_avg[s] + at, opt->exp_avg_sq[s] + at,
                 opt->amsgrad ? opt->max_exp_avg_sq[s] + at : NULL, n};
    return r;
}

/* A step starts by counting itself and fixing the bias corrections for every update in it. */
static void adam_begin(Adam *opt) {
    opt->step++;
    opt->step_size = opt->lr / (1 - pow(opt->beta1, (double)opt->step));
    opt->sqrt_bc2 = sqrt(1 - pow(opt->beta2, (double)opt->step));
}

typedef struct AdamJob {
    const Adam *opt;
    AdamRun *runs;
    int nruns;
} AdamJob;

/* Threads take equal slices of every run; the arithmetic per element does not depend on the split. */
static void adam_task(void *arg, int t, int thread) {
    (void)thread;
    const AdamJob *job = arg;
    int nt = threads_count();
    for (int k = 0; k < job->nruns; k++) {
        const AdamRun *r = &job->runs[k];
        size_t lo = r->n * (size_t)t / (size_t)nt, hi = r->n * (size_t)(t + 1) / (size_t)nt;
        run_update(job->opt, r, lo, hi);
    }
}

/* On the GPU: one fused kernel per run of consecutive parameters (in the set's value block) that all have
 * a gradient, usually one launch per set. The alignment gaps between parameters are zeros in every block,
 * and stay zeros under the update (eps > 0). */
static void adam_update_set_cuda(Adam *opt, int s) {
    ParamSet *ps = opt->sets[s];
    AdamHyper h = hyper(opt);
    for (int i = 0; i < ps->n;) {
        Tensor *t = ps->t[i];
        if (!t->is_param || !t->grad_seen) {
            i++;
            continue;
        }
        size_t lo = (size_t)(t->data - ps->values), hi = lo;
        for (; i < ps->n && (!ps->t[i]->is_param || ps->t[i]->grad_seen); i++) {
            if (!ps->t[i]->is_param) continue;   /* buffers live in their own block */
            param_grad(ps->t[i]);                /* zeroes a gradient that no op wrote */
            hi = (size_t)(ps->t[i]->data - ps->values) + ps->t[i]->numel;
        }
        adam_update_cuda(ps->values + lo, ps->grads + lo, opt->exp_avg[s] + lo, opt->exp_avg_sq[s] + lo,
                         opt->amsgrad ? opt->max_exp_avg_sq[s] + lo : NULL, hi - lo, &h);
    }
}

/* Updates every parameter that has a gradient, except those updated in backward pass `done_pass` (0: none). */
static void adam_update_all(Adam *opt, unsigned done_pass) {
    if (I2V_CUDA && opt->nsets && opt->sets[0]->device == DEVICE_CUDA) {
        I2V_ASSERT(!done_pass, "the GPU's Adam runs after the backward pass, not inside it");
        for (int s = 0; s < opt->nsets; s++) adam_update_set_cuda(opt, s);
        return;
    }
    AdamJob job = {opt, NULL, 0};
    int cap = 0;
    for (int s = 0; s < opt->nsets; s++) cap += opt->sets[s]->n;
    job.runs = xmalloc((size_t)(cap ? cap : 1) * sizeof *job.runs);
    for (int s = 0; s < opt->nsets; s++) {
        ParamSet *ps = opt->sets[s];
        for (int i = 0; i < ps->n; i++) {
            Tensor *t = ps->t[i];
            if (!t->is_param || !t->grad_seen || (done_pass && t->update_pass == done_pass)) continue;
            param_grad(t);   /* zeroes a gradient that no op wrote */
            job.runs[job.nruns++] = adam_run_of(opt, s, t, 0, t->numel);
        }
    }
    if (job.nruns) parallel_for(threads_count(), adam_task, &job);
    free(job.runs);
}

void adam_step(Adam *opt) {
    adam_begin(opt);
    adam_update_all(opt, 0);
}

/* ParamUpdate.apply for backward_update: the same update on a piece of one parameter. */
static void adam_apply(void *arg, Tensor *t, size_t off, size_t n) {
    const Adam *opt = arg;
    for (int s = 0; s < opt->nsets; s++)
        if (t->data >= opt->sets[s]->values && t->data < opt->sets[s]->values + opt->sets[s]->nvalues) {
            AdamRun r = adam_run_of(opt, s, t, off, n);
            run_update(opt, &r, 0, n);
            return;
        }
    /* not this optimiser's: another network's parameter on the same tape (the discriminator under the
     * generator's loss), whose gradient waits for its own optimiser */
}

void adam_backward_step(Adam *opt, Ctx *c, Tensor *loss) {
    if (c->dry) {
        backward(c, loss);
        return;
    }
    if (on_gpu(c)) {   /* on the GPU: the whole backward, then one fused update per block of parameters */
        backward(c, loss);
        adam_step(opt);
        return;
    }
    adam_begin(opt);
    ParamUpdate update = {adam_apply, opt};
    backward_update(c, loss, &update);
    adam_update_all(opt, c->pass);   /* what the pass did not reach: parameters with an older gradient */
}

/* ---- schedulers -------------------------------------------------------------------------------------- */

void steplr_init(StepLR *s, int step_size, double gamma) {
    s->step_size = step_size;
    s->gamma = gamma;
    s->last_epoch = 0;
}

/* PyTorch's chainable form: multiply when the new epoch count is a multiple of step_size. */
void steplr_step(StepLR *s, Adam *opt) {
    s->last_epoch++;
    if (s->last_epoch % s->step_size == 0) opt->lr *= s->gamma;
}

void explr_init(ExponentialLR *s, double gamma) {
    s->gamma = gamma;
    s->last_epoch = 0;
}

void explr_step(ExponentialLR *s, Adam *opt) {
    s->last_epoch++;
    opt->lr *= s->gamma;
}

void plateau_init(ReduceLROnPlateau *s, int mode_max, double factor, int patience, double threshold,
                  int threshold_abs, int cooldown, double min_lr) {
    memset(s, 0, sizeof *s);
    s->mode_max = mode_max;
    s->factor = factor;
    s->patience = patience;
    s->threshold = threshold;
    s->threshold_abs = threshold_abs;
    s->cooldown = cooldown;
    s->min_lr = min_lr;
    s->eps = 1e-8;
    s->best = mode_max ? -INFINITY : INFINITY;
}

static int plateau_better(const ReduceLROnPlateau *s, double a) {
    if (!s->mode_max)
        return s->threshold_abs ? a < s->best - s->threshold : a < s->best * (1 - s->threshold);
    return s->threshold_abs ? a > s->best + s->threshold : a > s->best * (1 + s->threshold);
}

void plateau_step(ReduceLROnPlateau *s, Adam *opt, double metric) {
    s->last_epoch++;
    if (plateau_better(s, metric)) {
        s->best = metric;
        s->num_bad_epochs = 0;
    } else {
        s->num_bad_epochs++;
    }
    if (s->cooldown_counter > 0) {
        s->cooldown_counter--;
        s->num_bad_epochs = 0;
    }
    if (s->num_bad_epochs > s->patience) {
        double new_lr = opt->lr * s->factor;
        if (new_lr < s->min_lr) new_lr = s->min_lr;
        if (opt->lr - new_lr > s->eps) opt->lr = new_lr;   /* PyTorch ignores changes smaller than eps */
        s->cooldown_counter = s->cooldown;
        s->num_bad_epochs = 0;
    }
}
