/* ckpt.c: saving and restoring training state beside the weights (ckpt.h). */
#include "program/ckpt.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* ---- checkpoint files on disk ------------------------------------------------------------------------------ */

/* dir and base name of path */
static void split_path(const char *path, char *dir, size_t cap, const char **base) {
    const char *slash = strrchr(path, '/');
    if (!slash) {
        snprintf(dir, cap, ".");
        *base = path;
    } else {
        snprintf(dir, cap, "%.*s", (int)(slash - path) + (slash == path), path);
        *base = slash + 1;
    }
}

int ckpt_remove_stale(const char *path) {
    char dir[CKPT_PATH_MAX], full[2 * CKPT_PATH_MAX];
    const char *base;
    split_path(path, dir, sizeof dir, &base);
    DIR *d = opendir(dir);
    if (!d) return 0;
    size_t bl = strlen(base);
    int removed = 0;
    struct dirent *ent;
    while ((ent = readdir(d))) {
        const char *n = ent->d_name;
        if (strncmp(n, base, bl) || strncmp(n + bl, ".tmp.", 5)) continue;
        char *end;
        long pid = strtol(n + bl + 5, &end, 10);
        if (end == n + bl + 5 || *end || pid <= 0) continue;
        if (pid != (long)getpid() && (kill((pid_t)pid, 0) == 0 || errno == EPERM)) continue;   /* still saving */
        snprintf(full, sizeof full, "%s/%s", dir, n);
        if (remove(full) == 0) {
            fprintf(stderr, "removed %s, left by a run that was stopped while saving\n", full);
            removed++;
        }
    }
    closedir(d);
    return removed;
}

void ckpt_history_init(CkptHistory *h, const char *path, int keep, long long step) {
    memset(h, 0, sizeof *h);
    char dir[CKPT_PATH_MAX];
    const char *base;
    split_path(path, dir, sizeof dir, &base);
    snprintf(h->path, sizeof h->path, "%s", path);
    snprintf(h->dir, sizeof h->dir, "%.*s/checkpoints", (int)(sizeof h->dir - 16), dir);
    size_t n = strlen(base), k = strlen(".safetensors");
    if (n > k && !strcmp(base + n - k, ".safetensors")) n -= k;
    snprintf(h->stem, sizeof h->stem, "%.*s", (int)n, base);
    h->keep = keep;
    h->step = step;
}

static void history_name(const CkptHistory *h, const char *dir, long long step, char *out, size_t cap) {
    snprintf(out, cap, "%s/%s_step%08lld.safetensors", dir, h->stem, step);
}

/* The step in a file name of the set, or -1 when the name is not one of them. */
static long long history_step(const CkptHistory *h, const char *name) {
    size_t sl = strlen(h->stem);
    if (strncmp(name, h->stem, sl) || strncmp(name + sl, "_step", 5)) return -1;
    char *end;
    long long step = strtoll(name + sl + 5, &end, 10);
    return end == name + sl + 5 || strcmp(end, ".safetensors") ? -1 : step;
}

static int copy_file(const char *from, const char *to, I2vError *e) {
    FILE *in = fopen(from, "rb"), *out = in ? fopen(to, "wb") : NULL;
    if (!in || !out) {
        if (in) fclose(in);
        return err_set(e, "%s: cannot copy to %s: %s", from, to, strerror(errno));
    }
    char buf[1 << 16];
    size_t got;
    int bad = 0;
    while (!bad && (got = fread(buf, 1, sizeof buf, in)) > 0) bad = fwrite(buf, 1, got, out) != got;
    bad |= ferror(in);
    fclose(in);
    bad |= fflush(out) != 0 || fsync(fileno(out)) != 0;
    bad |= fclose(out) != 0;
    if (bad) {
        remove(to);
        return err_set(e, "%s: copying to %s failed (disk full?)", from, to);
    }
    return 0;
}

/* to becomes another name of from (a copy where hard links fail, e.g. across file systems) */
static int link_or_copy(const char *from, const char *to, I2vError *e) {
    if (link(from, to) == 0) return 0;
    if (errno == EEXIST) return 0;
    return copy_file(from, to, e);
}

static int make_dir(const char *dir, I2vError *e) {
    if (mkdir(dir, 0777) == 0 || errno == EEXIST) return 0;
    return err_set(e, "%s: cannot create the folder: %s", dir, strerror(errno));
}

int ckpt_history_before_save(CkptHistory *h, long long step, I2vError *e) {
    if (h->keep <= 1 || h->step < 0 || h->step == step || access(h->path, F_OK) != 0) return 0;
    char to[2 * CKPT_PATH_MAX];
    history_name(h, h->dir, h->step, to, sizeof to);
    return make_dir(h->dir, e) || link_or_copy(h->path, to, e);
}

static int cmp_ll(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

void ckpt_history_after_save(CkptHistory *h, long long step) {
    h->step = step;
    DIR *d = opendir(h->dir);
    if (!d) return;
    long long *steps = NULL;
    size_t n = 0, cap = 0;
    struct dirent *ent;
    while ((ent = readdir(d))) {
        long long s = history_step(h, ent->d_name);
        if (s < 0) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            steps = realloc(steps, cap * sizeof *steps);
            if (!steps) break;
        }
        steps[n++] = s;
    }
    closedir(d);
    if (!steps) return;
    qsort(steps, n, sizeof *steps, cmp_ll);
    size_t older = h->keep > 1 ? (size_t)h->keep - 1 : 0;
    for (size_t i = 0; i + older < n; i++) {
        char path[2 * CKPT_PATH_MAX];
        history_name(h, h->dir, steps[i], path, sizeof path);
        remove(path);
    }
    free(steps);
}

int ckpt_file_step(const char *path, long long *step, I2vError *e) {
    StFile f;
    if (st_open(&f, path, e)) return -1;
    int rc = ckpt_get_int(&f, "train.step", step, e);
    st_close(&f);
    return rc;
}

int ckpt_history_step_back(CkptHistory *h, const char *from, long long step, I2vError *e) {
    char aband[CKPT_PATH_MAX + 16], to[3 * CKPT_PATH_MAX], path[2 * CKPT_PATH_MAX];
    snprintf(aband, sizeof aband, "%s/abandoned", h->dir);
    long long newest;
    I2vError ignored;
    /* the newest, when it is not `from` itself and holds a later step */
    struct stat sa, sb;
    int same = !stat(from, &sa) && !stat(h->path, &sb) && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    if (!same && access(h->path, F_OK) == 0) {
        if (ckpt_file_step(h->path, &newest, &ignored)) newest = step + 1;   /* unreadable: set aside too */
        if (newest > step) history_name(h, aband, newest, to, sizeof to);
        else history_name(h, h->dir, newest, to, sizeof to);   /* an earlier one joins the set */
        if (make_dir(h->dir, e) || (newest > step && make_dir(aband, e))) return -1;
        if (rename(h->path, to))
            return err_set(e, "%s: cannot move it to %s: %s", h->path, to, strerror(errno));
        if (newest > step) fprintf(stderr, "moved %s (step %lld, after the one resumed from) to %s\n", h->path, newest, to);
    }
    /* the set's files of later steps */
    DIR *d = opendir(h->dir);
    struct dirent *ent;
    while (d && (ent = readdir(d))) {
        long long s = history_step(h, ent->d_name);
        if (s <= step) continue;
        snprintf(path, sizeof path, "%s/%s", h->dir, ent->d_name);
        history_name(h, aband, s, to, sizeof to);
        if (make_dir(aband, e) || rename(path, to)) {
            closedir(d);
            return err_set(e, "%s: cannot move it to %s", path, aband);
        }
        fprintf(stderr, "moved %s (after the step resumed from) to %s\n", path, aband);
    }
    if (d) closedir(d);
    if (!same && link_or_copy(from, h->path, e)) return -1;
    h->step = step;
    return 0;
}
