/* ckpt.c: saving and restoring training state beside the weights (ckpt.h). */
#include "program/ckpt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ckpt_meta_double(StWriter *w, const char *key, double v) {
    char buf[64];
    snprintf(buf, sizeof buf, "%.17g", v);
    st_writer_meta(w, key, buf);
}

void ckpt_meta_int(StWriter *w, const char *key, long long v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", v);
    st_writer_meta(w, key, buf);
}

int ckpt_get_double(const StFile *f, const char *key, double *v, I2vError *e) {
    const char *s = st_meta_get(f, key);
    if (!s) return err_set(e, "%s: metadata '%s' is missing (not a checkpoint of this kind of run?)", f->path, key);
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    if (!*s || *end || errno) return err_set(e, "%s: metadata '%s' = '%s' is not a number", f->path, key, s);
    return 0;
}

int ckpt_get_int(const StFile *f, const char *key, long long *v, I2vError *e) {
    const char *s = st_meta_get(f, key);
    if (!s) return err_set(e, "%s: metadata '%s' is missing (not a checkpoint of this kind of run?)", f->path, key);
    char *end;
    errno = 0;
    *v = strtoll(s, &end, 10);
    if (!*s || *end || errno) return err_set(e, "%s: metadata '%s' = '%s' is not an integer", f->path, key, s);
    return 0;
}

/* ---- Adam ------------------------------------------------------------------------------------------------- */

static const char *const moment_names[3] = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"};

static real *moment_block(const Adam *opt, int which, int s) {
    return which == 0 ? opt->exp_avg[s] : which == 1 ? opt->exp_avg_sq[s] : opt->max_exp_avg_sq[s];
}

/* Which parameters have received a gradient (PyTorch's .grad is not None) matters for resuming exactly:
 * Adam skips the others. Stored as metadata "optim.<name>.grad_seen.<set>", one '0' or '1' per parameter. */
void ckpt_add_adam(StWriter *w, const char *name, const Adam *opt, const char *const *set_prefixes) {
    char key[512];
    for (int s = 0; s < opt->nsets; s++) {
        const ParamSet *ps = opt->sets[s];
        char *seen = xmalloc((size_t)ps->n + 1);
        int k = 0;
        for (int i = 0; i < ps->n; i++) {
            const Tensor *t = ps->t[i];
            if (!t->is_param) continue;
            seen[k++] = t->grad_seen ? '1' : '0';
            size_t off = (size_t)(t->data - ps->values);
            for (int m = 0; m < 3; m++) {
                if (m == 2 && !opt->amsgrad) continue;
                snprintf(key, sizeof key, "optim.%s.%s.%s%s", name, moment_names[m], set_prefixes[s], t->name);
                st_writer_add_array(w, key, DT_REAL, t->ndim, t->shape, moment_block(opt, m, s) + off);
            }
        }
        seen[k] = 0;
        snprintf(key, sizeof key, "optim.%s.grad_seen.%d", name, s);
        st_writer_meta(w, key, seen);
        free(seen);
    }
    snprintf(key, sizeof key, "optim.%s.step", name);
    ckpt_meta_int(w, key, opt->step);
    snprintf(key, sizeof key, "optim.%s.lr", name);
    ckpt_meta_double(w, key, opt->lr);
}

int ckpt_load_adam(const StFile *f, const char *name, Adam *opt, const char *const *set_prefixes, I2vError *e) {
    char key[512];
    long long step;
    snprintf(key, sizeof key, "optim.%s.step", name);
    if (ckpt_get_int(f, key, &step, e)) return -1;
    snprintf(key, sizeof key, "optim.%s.lr", name);
    if (ckpt_get_double(f, key, &opt->lr, e)) return -1;
    opt->step = step;
    for (int s = 0; s < opt->nsets; s++) {
        ParamSet *ps = opt->sets[s];
        snprintf(key, sizeof key, "optim.%s.grad_seen.%d", name, s);
        const char *seen = st_meta_get(f, key);
        int nparams = 0;
        for (int i = 0; i < ps->n; i++) nparams += ps->t[i]->is_param;
        if (!seen || (int)strlen(seen) != nparams)
            return err_set(e, "%s: metadata '%s' is missing or does not have %d entries (a checkpoint of another model?)",
                           f->path, key, nparams);
        int k = 0;
        for (int i = 0; i < ps->n; i++) {
            Tensor *t = ps->t[i];
            if (!t->is_param) continue;
            t->grad_seen = seen[k++] == '1';
            size_t off = (size_t)(t->data - ps->values);
            for (int m = 0; m < 3; m++) {
                if (m == 2 && !opt->amsgrad) continue;
                snprintf(key, sizeof key, "optim.%s.%s.%s%s", name, moment_names[m], set_prefixes[s], t->name);
                if (st_read_flat(f, key, DT_REAL, moment_block(opt, m, s) + off, t->numel, e)) return -1;
            }
        }
    }
    return 0;
}

/* ---- RNG: the four state words as an I64 tensor (bit patterns), the Box-Muller spare in metadata --------- */

void ckpt_add_rng(StWriter *w, const char *name, const Rng *r) {
    char key[256];
    snprintf(key, sizeof key, "rng.%s.state", name);
    st_writer_add_array(w, key, DT_I64, 1, (int[]){4}, r->s);
    snprintf(key, sizeof key, "rng.%s.has_spare", name);
    ckpt_meta_int(w, key, r->has_spare);
    snprintf(key, sizeof key, "rng.%s.spare", name);
    ckpt_meta_double(w, key, r->spare);
}

int ckpt_load_rng(const StFile *f, const char *name, Rng *r, I2vError *e) {
    char key[256];
    long long has;
    snprintf(key, sizeof key, "rng.%s.state", name);
    if (st_read_flat(f, key, DT_I64, r->s, 4, e)) return -1;
    snprintf(key, sizeof key, "rng.%s.has_spare", name);
    if (ckpt_get_int(f, key, &has, e)) return -1;
    r->has_spare = (int)has;
    snprintf(key, sizeof key, "rng.%s.spare", name);
    return ckpt_get_double(f, key, &r->spare, e);
}

/* ---- schedulers ------------------------------------------------------------------------------------------- */

static void put_i(StWriter *w, const char *name, const char *field, long long v) {
    char key[256];
    snprintf(key, sizeof key, "sched.%s.%s", name, field);
    ckpt_meta_int(w, key, v);
}

static void put_d(StWriter *w, const char *name, const char *field, double v) {
    char key[256];
    snprintf(key, sizeof key, "sched.%s.%s", name, field);
    ckpt_meta_double(w, key, v);
}

static int get_i(const StFile *f, const char *name, const char *field, long long *v, I2vError *e) {
    char key[256];
    snprintf(key, sizeof key, "sched.%s.%s", name, field);
    return ckpt_get_int(f, key, v, e);
}

static int get_d(const StFile *f, const char *name, const char *field, double *v, I2vError *e) {
    char key[256];
    snprintf(key, sizeof key, "sched.%s.%s", name, field);
    return ckpt_get_double(f, key, v, e);
}

void ckpt_add_steplr(StWriter *w, const char *name, const StepLR *s) { put_i(w, name, "last_epoch", s->last_epoch); }

int ckpt_load_steplr(const StFile *f, const char *name, StepLR *s, I2vError *e) {
    long long v;
    if (get_i(f, name, "last_epoch", &v, e)) return -1;
    s->last_epoch = v;
    return 0;
}

void ckpt_add_explr(StWriter *w, const char *name, const ExponentialLR *s) { put_i(w, name, "last_epoch", s->last_epoch); }

int ckpt_load_explr(const StFile *f, const char *name, ExponentialLR *s, I2vError *e) {
    long long v;
    if (get_i(f, name, "last_epoch", &v, e)) return -1;
    s->last_epoch = v;
    return 0;
}

void ckpt_add_plateau(StWriter *w, const char *name, const ReduceLROnPlateau *s) {
    put_i(w, name, "last_epoch", s->last_epoch);
    put_i(w, name, "num_bad_epochs", s->num_bad_epochs);
    put_i(w, name, "cooldown_counter", s->cooldown_counter);
    put_d(w, name, "best", s->best);
}

int ckpt_load_plateau(const StFile *f, const char *name, ReduceLROnPlateau *s, I2vError *e) {
    long long a, b, c;
    if (get_i(f, name, "last_epoch", &a, e) || get_i(f, name, "num_bad_epochs", &b, e) ||
        get_i(f, name, "cooldown_counter", &c, e) || get_d(f, name, "best", &s->best, e))
        return -1;
    s->last_epoch = a;
    s->num_bad_epochs = (int)b;
    s->cooldown_counter = (int)c;
    return 0;
}
