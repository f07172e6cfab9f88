/* optim.c: Adam / AMSGrad and the learning-rate schedulers (see optim.h for the formulas).
 * Mirrors torch.optim.Adam (_functional.adam, non-foreach path), torch.optim.lr_scheduler.StepLR,
 * ExponentialLR and ReduceLROnPlateau. Not here: saving the state (the program writes the moment blocks
 * and these structs' fields into its checkpoints). */
#include "optim.h"

#include <tgmath.h>  /* sqrt follows the type of `real` */
#include <stdlib.h>
#include <string.h>

#include "gemm.h"

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
    opt->exp_avg[i] = xcalloc(ps->nvalues, sizeof(real));
    opt->exp_avg_sq[i] = xcalloc(ps->nvalues, sizeof(real));
    opt->max_exp_avg_sq[i] = opt->amsgrad ? xcalloc(ps->nvalues, sizeof(real)) : NULL;
}

void adam_free(Adam *opt) {
    for (int i = 0; i < opt->nsets; i++) {
        free(opt->exp_avg[i]);
        free(opt->exp_avg_sq[i]);
        free(opt->max_exp_avg_sq[i]);
    }
    memset(opt, 0, sizeof *opt);
}

/* The update of one contiguous run of parameters: one pass over p, g, m, v (and vmax). */
typedef struct AdamRun {
    real *p, *g, *m, *v, *vmax;
    size_t n;
} AdamRun;

typedef struct AdamJob {
    const Adam *opt;
    AdamRun *runs;
    int nruns;
    double step_size, sqrt_bc2;
} AdamJob;

/* restrict: p, g, m, v and vmax never overlap, which lets the compiler vectorise the loops. */
static void adam_update(const AdamJob *job, const AdamRun *r, size_t lo, size_t hi) {
    const real b1 = (real)job->opt->beta1, b2 = (real)job->opt->beta2, wd = (real)job->opt->weight_decay;
    const real eps = (real)job->opt->eps, step_size = (real)job->step_size, sqrt_bc2 = (real)job->sqrt_bc2;
    real *restrict p = r->p, *restrict m = r->m, *restrict v = r->v, *restrict vmax = r->vmax;
    const real *restrict g = r->g;
    if (vmax) {   /* AMSGrad: the denominator uses the running maximum of v */
        for (size_t i = lo; i < hi; i++) {
            real gi = g[i] + wd * p[i];
            real mi = b1 * m[i] + (1 - b1) * gi;
            real vi = b2 * v[i] + (1 - b2) * gi * gi;
            real vm = vi > vmax[i] ? vi : vmax[i];
            m[i] = mi;
            v[i] = vi;
            vmax[i] = vm;
            p[i] += -step_size * (mi / (sqrt(vm) / sqrt_bc2 + eps));   /* the order of PyTorch's addcdiv */
        }
    } else {
        for (size_t i = lo; i < hi; i++) {
            real gi = g[i] + wd * p[i];
            real mi = b1 * m[i] + (1 - b1) * gi;
            real vi = b2 * v[i] + (1 - b2) * gi * gi;
            m[i] = mi;
            v[i] = vi;
            p[i] += -step_size * (mi / (sqrt(vi) / sqrt_bc2 + eps));
        }
    }
}

/* Threads take equal slices of every run; the arithmetic per element does not depend on the split. */
static void adam_task(void *arg, int t, int thread) {
    (void)thread;
    const AdamJob *job = arg;
    int nt = threads_count();
    for (int k = 0; k < job->nruns; k++) {
        const AdamRun *r = &job->runs[k];
        size_t lo = r->n * (size_t)t / (size_t)nt, hi = r->n * (size_t)(t + 1) / (size_t)nt;
        adam_update(job, r, lo, hi);
    }
}

void adam_step(Adam *opt) {
    opt->step++;
    double bc1 = 1 - pow(opt->beta1, (double)opt->step), bc2 = 1 - pow(opt->beta2, (double)opt->step);
    AdamJob job = {opt, NULL, 0, opt->lr / bc1, sqrt(bc2)};
    int cap = 0;
    for (int s = 0; s < opt->nsets; s++) cap += opt->sets[s]->n;
    job.runs = xmalloc((size_t)(cap ? cap : 1) * sizeof *job.runs);
    for (int s = 0; s < opt->nsets; s++) {
        ParamSet *ps = opt->sets[s];
        for (int i = 0; i < ps->n; i++) {
            Tensor *t = ps->t[i];
            if (!t->is_param || !t->grad_seen) continue;
            size_t off = (size_t)(t->data - ps->values);
            AdamRun r = {t->data, param_grad(t), opt->exp_avg[s] + off, opt->exp_avg_sq[s] + off,
                         opt->amsgrad ? opt->max_exp_avg_sq[s] + off : NULL, t->numel};
            job.runs[job.nruns++] = r;
        }
    }
    parallel_for(threads_count(), adam_task, &job);
    free(job.runs);
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
