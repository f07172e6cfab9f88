/* run.c: the training loops of the three stages, with checkpoints that resume bit for bit (run.h).
 *
 * What it is: for each stage, the epoch loop of the official main.py (train, scheduler steps, validation,
 * checkpoint), driven by the data layer's loader, with the step budget, progress bar, per-step CSV, sample
 * GIFs, Ctrl-C handling and the checks for NaN losses that a long CPU run needs.
 * What it is not: the networks or their steps (ae.c, cond_ae.c, flow.c), nor inference (model.c).
 *
 * Determinism: every random number comes from a stream that is saved in the checkpoint (the networks'
 * noise, window and dropout streams) or is a pure function of (seed, epoch, item) (the data). Validation
 * and sample GIFs run on copies of the streams, so how often they run does not change training.
 */
#include "program/run.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "program/ckpt.h"
#include "cuda/cuda.h"
#include "formats/files.h"
#include "program/model.h"
#include "program/monitor.h"
#include "program/progress.h"
#include "program/setup.h"

volatile sig_atomic_t run_interrupted;

/* The first SIGINT or SIGTERM asks the loop to save and stop after the current step; a second one stops
 * at once (the checkpoint on disk is then the previous one, never a partial file). */
static void on_signal(int sig) {
    if (run_interrupted) {
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    run_interrupted = sig;
}

void run_install_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

void train_opts_default(TrainOpts *o) {
    memset(o, 0, sizeof *o);
    o->seed = 42;   /* set_seed(42) in every official training script */
    o->keep = 2;
}

/* ---- shared pieces ------------------------------------------------------------------------------------------ */

static int path_in(char *out, size_t cap, const char *dir, const char *name, I2vError *e) {
    return data_join(out, cap, e, "%s/%s", dir, name);
}

static int write_text(const char *path, const char *text, I2vError *e) {
    return write_file_bytes(path, (const uint8_t *)text, strlen(text), e);
}

/* The checkpoint's loop position, in metadata. */
typedef struct LoopState {
    long long step;        /* steps done */
    long long epoch;       /* the loader's epoch */
    long long position;    /* batches of that epoch done */
} LoopState;

static void add_loop_state(StWriter *w, const LoopState *ls, uint64_t seed, const char *kind, const char *yaml) {
    ckpt_meta_int(w, "train.step", ls->step);
    ckpt_meta_int(w, "train.epoch", ls->epoch);
    ckpt_meta_int(w, "train.position", ls->position);
    ckpt_meta_int(w, "train.seed", (long long)seed);
    st_writer_meta(w, "kind", kind);
    st_writer_meta(w, "config", yaml);
}

static int get_loop_state(const StFile *f, const char *kind, LoopState *ls, uint64_t *seed, I2vError *e) {
    const char *k = st_meta_get(f, "kind");
    if (!k || strcmp(k, kind))
        return err_set(e, "%s: not a %s checkpoint (kind '%s')", f->path, kind, k ? k : "none");
    long long s;
    if (ckpt_get_int(f, "train.step", &ls->step, e) || ckpt_get_int(f, "train.epoch", &ls->epoch, e) ||
        ckpt_get_int(f, "train.position", &ls->position, e) || ckpt_get_int(f, "train.seed", &s, e))
        return -1;
    *seed = (uint64_t)s;
    return 0;
}

/* A resumed run keeps the config it was started with (the checkpoint holds it; overrides would otherwise
 * change it halfway unnoticed), except the optimiser's schedule: the learning rate, its decay and the
 * epochs, which a user may change on purpose, e.g. a lower rate to step back past a divergence; and the
 * monitor's weight file, which changes no trained number (the last entry, not part of the schedule). */
static const char *const schedule_keys[] = {"Training.lr", "Training.lr_gamma", "Training.gamma", "Training.step_size",
                                            "Training.n_epochs", "Training.fvd_weights", NULL};

/* The training-time FVD monitor's network: --fvd-weights, else the config's Training.fvd_weights, else
 * NULL (the monitor is off). */
static const char *monitor_weights(const TrainOpts *o, const StageSetup *setup) {
    return o->fvd_weights ? o->fvd_weights : setup->fvd_weights[0] ? setup->fvd_weights : NULL;
}

static const char *value_text(const CfgNode *n) {
    return !n ? "absent" : n->kind == CFG_LIST ? "a list" : n->kind == CFG_MAP ? "a section" : n->text ? n->text : "";
}

/* Compares the checkpoint's config with the one given. Each change of a schedule key is said on stderr;
 * *lr_scale is the new Training.lr over the old, by which the checkpoint's (possibly decayed) learning
 * rates are multiplied. Any other change is an error naming the key. */
static int check_resume_config(const StFile *f, const char *yaml, double *lr_scale, I2vError *e) {
    *lr_scale = 1;
    const char *saved = st_meta_get(f, "config");
    if (!saved) return err_set(e, "%s: the checkpoint has no config", f->path);
    if (!strcmp(saved, yaml)) return 0;
    Config a, b;
    if (config_parse(&a, saved, f->path, e)) return -1;
    if (config_parse(&b, yaml, "the config given", e)) {
        config_free(&a);
        return -1;
    }
    char path[512];
    int rc = 0;
    if (config_first_difference(&a, &b, schedule_keys, path, sizeof path)) {
        rc = err_set(e, "%s: --resume with %s changed (the checkpoint's: %s, now: %s); on resume only the schedule "
                        "(Training.lr, lr_gamma, gamma, step_size, n_epochs) and Training.fvd_weights may change: "
                        "resume with the same --config and overrides otherwise (the checkpoint's config: i2v inspect "
                        "%s)",
                     f->path, path, value_text(config_find(&a, path)), value_text(config_find(&b, path)), f->path);
    } else {
        for (int i = 0; schedule_keys[i]; i++) {
            const CfgNode *x = config_find(&a, schedule_keys[i]), *y = config_find(&b, schedule_keys[i]);
            if (!x || !y || !strcmp(value_text(x), value_text(y))) continue;
            fprintf(stderr, "resume: %s changed from %s to %s", schedule_keys[i], value_text(x), value_text(y));
            double from = strtod(value_text(x), NULL), to = strtod(value_text(y), NULL);
            if (!strcmp(schedule_keys[i], "Training.lr") && from > 0 && to > 0) {
                *lr_scale = to / from;
                fprintf(stderr, " (the checkpoint's learning rates are multiplied by %.6g)", *lr_scale);
            }
            fprintf(stderr, "\n");
        }
    }
    config_free(&a);
    config_free(&b);
    return rc;
}

static void scale_lr(Adam *opt, double scale) {
    if (scale != 1) opt->lr *= scale;
}

static int all_finite(const double *v, int n, int *bad) {
    for (int i = 0; i < n; i++)
        if (!isfinite(v[i])) {
            *bad = i;
            return 0;
        }
    return 1;
}

static double seconds_since(double t0) { return progress_now() - t0; }

/* ---- the files of a run ------------------------------------------------------------------------------- */

/* Before a run starts or resumes: temporary files a killed run left beside its checkpoint or loss log are
 * removed; a new run does not overwrite a finished one. */
static int start_run_files(const TrainOpts *o, const char *ckpt, const char *csv, I2vError *e) {
    ckpt_remove_stale(ckpt);
    ckpt_remove_stale(csv);
    if (!o->resume && access(ckpt, F_OK) == 0)
        return err_set(e, "%s already exists: add --resume to continue that run, or choose another --out", ckpt);
    return 0;
}

/* --lpips given to a run that has no perceptual loss would be ignored without a word. */
static void warn_unused_lpips(const TrainOpts *o, int used, const char *why) {
    if (o->lpips && !used) fprintf(stderr, "i2v: warning: --lpips %s is not used: %s\n", o->lpips, why);
}

/* The checkpoint a resumed run restores: --resume-from's, else the newest. */
static const char *resume_path(const TrainOpts *o, const char *ckpt) {
    return o->resume_from ? o->resume_from : ckpt;
}

/* After restoring an older checkpoint (--resume-from): it becomes the newest, and later ones are set aside
 * (ckpt.h). */
static int step_back(const TrainOpts *o, const char *ckpt, long long step, I2vError *e) {
    if (!o->resume_from) return 0;
    CkptHistory h;
    ckpt_history_init(&h, ckpt, o->keep, -1);
    if (ckpt_history_step_back(&h, o->resume_from, step, e)) return -1;
    fprintf(stderr, "resuming from %s (step %lld)\n", o->resume_from, step);
    return 0;
}

/* ---- memory, checked before the large allocations ------------------------------------------------------ */

/* What a training run holds: parameters with gradients and optimiser moments, the data (batch buffers and
 * the loaders' item orders), and one step's activations. */
typedef struct RunMemory {
    double params, data, step;      /* bytes */
    const char *param_keys;         /* the keys that size the largest network */
    int step_failed;                /* the dry run that measures a step ran out of memory itself */
} RunMemory;

static int check_run_memory(const char *label, const RunMemory *m, I2vError *e) {
    if (m->step_failed)
        return err_set(e, "%s: one training step needs more memory than this machine has (the dry run that "
                          "measures it ran out); reduce Training.bs, Data.img_size or Data.sequence_length", label);
    char p[32], d[32], s[32], what[256];
    setup_format_bytes(m->params, p, sizeof p);
    setup_format_bytes(m->data, d, sizeof d);
    setup_format_bytes(m->step, s, sizeof s);
    int k = snprintf(what, sizeof what, "parameters with gradients and optimiser state %s, data %s", p, d);
    if (m->step > 0) snprintf(what + k, sizeof what - (size_t)k, ", one step's activations %s", s);
    const char *keys = m->params >= m->data && m->params >= m->step ? m->param_keys
                       : m->data >= m->step ? "Training.bs, Data.img_size or the data set's size (Data.synth_*, iter_*)"
                                            : "Training.bs, Data.img_size or Data.sequence_length";
    return setup_check_memory(label, m->params + m->data + m->step, what, keys, e);
}

/* The bytes of the batch buffers (the loader's two and the step's input) and the item orders of the
 * loaders (two per loader). */
static double data_bytes(int bs, int T, int S, size_t train_items, size_t eval_items) {
    return 3.0 * bs * T * 3 * S * S * sizeof(real) + 2.0 * (double)(train_items + eval_items) * sizeof(size_t);
}

/* Runs measure(arg) in a child process and returns its result: a dry run asked to size a huge arena can
 * only end the child. Returns -1 when the child failed, -2 when no child could be started. */
static double measure_apart(size_t (*measure)(void *arg), void *arg) {
    int fd[2];
    if (pipe(fd)) return -2;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]);
        close(fd[1]);
        return -2;
    }
    if (pid == 0) {   /* the child: its failure message would only confuse, the parent says what happened */
        close(fd[0]);
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0) dup2(null, 2);
        size_t bytes = measure(arg);
        _exit(write(fd[1], &bytes, sizeof bytes) == (ssize_t)sizeof bytes ? 0 : 1);
    }
    close(fd[1]);
    size_t bytes = 0;
    ssize_t got;
    while ((got = read(fd[0], &bytes, sizeof bytes)) < 0 && errno == EINTR) {
    }
    close(fd[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (got != (ssize_t)sizeof bytes || !WIFEXITED(status) || WEXITSTATUS(status)) return -1;
    return (double)bytes;
}

static void set_step_bytes(RunMemory *m, double measured) {
    m->step = measured > 0 ? measured : 0;
    m->step_failed = measured == -1;
}

/* What differs between the three stages' loops: the step, the end of an epoch, the checkpoint and the
 * sample GIF. `self` is the stage's run state. */
typedef struct LoopStage {
    const char *title;                       /* "stage 1", for messages */
    const char *ckpt;                        /* the checkpoint path, for messages */
    int nseries;
    const char *const *series;               /* the loss names, as in the CSV */
    void *self;
    void (*step)(void *self, const DataBatch *b, int epoch, double *values);
    void (*end_epoch)(void *self, int epoch);   /* schedulers, validation */
    int (*save)(void *self, const LoopState *ls, I2vError *e);
    void (*sample)(void *self, const char *gif_path);   /* NULL for none */
    const char *sample_stem;                 /* sample GIFs: <out>/<stem>_<step>.gif, and <stem>.gif at the end */
} LoopStage;

static void loop_sample(const TrainOpts *o, const LoopStage *st, long long step) {
    char gif[DATA_PATH_MAX];
    if (step < 0) snprintf(gif, sizeof gif, "%s/%s.gif", o->out, st->sample_stem);
    else snprintf(gif, sizeof gif, "%s/%s_%06lld.gif", o->out, st->sample_stem, step);
    st->sample(st->self, gif);
}

/* A checkpoint: the current newest joins the rolling set, the new one is written atomically, then the loss
 * log is put on disk, so the log holds every step the checkpoint does. */
static int loop_save(const LoopStage *st, const LoopState *ls, CkptHistory *h, Progress *p, I2vError *e) {
    if (ckpt_history_before_save(h, ls->step, e) || st->save(st->self, ls, e)) return -1;
    ckpt_history_after_save(h, ls->step);
    progress_sync(p);
    return 0;
}

/* The epoch loop of the official main.py files: steps until the epochs, --steps or --minutes run out or
 * a signal (SIGINT, SIGTERM) asks to stop; at the end of each epoch the stage's schedulers and validation,
 * then a checkpoint; a checkpoint every save_every steps, and at the end. A loss that is not finite stops
 * the run. */
static int train_loop(const TrainOpts *o, const LoopStage *st, DataLoader *L, int n_epochs, Progress *p, LoopState *ls,
                      I2vError *e) {
    double v[PROGRESS_MAX_SERIES], t0 = progress_now();
    int rc = 0;
    CkptHistory hist;
    ckpt_history_init(&hist, st->ckpt, o->keep, o->resume ? ls->step : -1);
    run_install_signals();
    for (;;) {
        if (ls->epoch >= n_epochs || (o->max_steps > 0 && ls->step >= o->max_steps) ||
            (o->max_seconds > 0 && seconds_since(t0) >= o->max_seconds) || run_interrupted)
            break;
        const DataBatch *b;
        int got = loader_next(L, &b, e);
        if (got < 0) {
            rc = -1;
            break;
        }
        if (got == 1) {   /* end of an epoch */
            st->end_epoch(st->self, (int)ls->epoch);
            ls->epoch++;
            ls->position = 0;
            if ((rc = loop_save(st, ls, &hist, p, e))) break;
            continue;
        }
        st->step(st->self, b, (int)ls->epoch, v);
        int bad;
        if (!all_finite(v, st->nseries, &bad)) {
            rc = err_set(e, "%s: loss '%s' became %g at step %lld; stopped. The last good state is the newest "
                            "checkpoint, %s, and the older ones under checkpoints/ (their steps are in their "
                            "names): continue from one with --resume-from FILE and a lower Training.lr",
                         st->title, st->series[bad], v[bad], ls->step + 1, st->ckpt);
            break;
        }
        ls->step++;
        ls->position = (long long)L->position;
        progress_step(p, ls->step - 1, (int)ls->epoch, v);
        if (o->save_every > 0 && ls->step % o->save_every == 0 && (rc = loop_save(st, ls, &hist, p, e))) break;
        if (st->sample && o->sample_every > 0 && ls->step % o->sample_every == 0) loop_sample(o, st, ls->step);
    }
    progress_finish(p);
    if (!rc) rc = loop_save(st, ls, &hist, p, e);
    if (!rc && st->sample) loop_sample(o, st, -1);
    if (!rc && run_interrupted)
        fprintf(stderr, "stopped by %s: saved %s at step %lld; continue with --resume\n",
                run_interrupted == SIGTERM ? "SIGTERM" : "SIGINT", st->ckpt, ls->step);
    return rc;
}

/* ---- the training-time FVD monitor (monitor.h) ------------------------------------------------------- */
/* Every eval clip (in order, the last batch partial) and the model's video of it: make(self, batch, out)
 * writes (n, T - 1, 3, S, S) for the batch's frames 1..T-1; then the monitor's value against those frames. */
static void monitor_epoch(FvdMonitor *mon, const Dataset *eval, uint64_t seed, int bs, const char *title, int epoch,
                          void (*make)(void *self, const DataBatch *b, real *out), void *self) {
    if (!mon->on) return;
    DataLoader L;
    I2vError e;
    if (loader_init(&L, eval, (size_t)bs, 0, 0, 0, seed, &e)) {
        fprintf(stderr, "i2v: warning: %s monitor: %s\n", mon->metric, e.msg);
        return;
    }
    size_t n = eval->nitems, have = 0, T = 0, S = 0, frame = 0;
    real *gen = NULL, *real_ = NULL;
    const DataBatch *b;
    while (loader_next(&L, &b, &e) == 0) {
        if (!gen) {
            T = b->frames, S = b->size, frame = 3 * S * S;
            gen = xmalloc(n * (T - 1) * frame * sizeof(real));
            real_ = xmalloc(n * (T - 1) * frame * sizeof(real));
        }
        make(self, b, gen + have * (T - 1) * frame);
        for (size_t i = 0; i < b->n; i++)   /* seq[:, 1:] */
            memcpy(real_ + (have + i) * (T - 1) * frame, b->video + (i * T + 1) * frame, (T - 1) * frame * sizeof(real));
        have += b->n;
    }
    loader_free(&L);
    double v;
    if (gen && monitor_score(mon, gen, real_, (int)have, (int)T - 1, (int)S, &v, &e) == 0)
        fprintf(stderr, "%s epoch %d: %s %.3f (best %.3f)\n", title, epoch, mon->metric, v, mon->best);
    else
        fprintf(stderr, "i2v: warning: %s monitor skipped: %s\n", mon->metric, gen ? e.msg : "no eval clips");
    free(gen);
    free(real_);
}

/* ================================================================================================== */
/* stage 1: the video autoencoder (stage1_VAE/main.py)                                                  */
/* ================================================================================================== */

static const char *const stage1_series[] = {"loss_vae", "l1", "lpips", "kl", "gen_s", "gen_t", "fmap_t",
                                            "disc_t", "gp", "disc_s", "psnr"};

static void stage1_values(const Stage1Stats *st, double *v) {
    double vals[] = {st->loss_vae, st->l1, st->lpips, st->kl, st->gen_s, st->gen_t, st->fmap_t,
                     st->disc_t, st->gp, st->disc_s, st->psnr_fixed};
    memcpy(v, vals, sizeof vals);
}

/* The Adam sets of stage 1 and the checkpoint prefixes of their ParamSets. */
static const char *stage1_prefix(const Stage1 *s, const ParamSet *ps) {
    if (ps == &s->enc.ps) return "enc.";
    if (ps == &s->gen.ps) return "gen.";
    if (ps == &s->disc_t.ps) return "disc_t.";
    return "disc_s.";
}

static void adam_prefixes(const Stage1 *s, const Adam *opt, const char **out) {
    for (int i = 0; i < opt->nsets; i++) out[i] = stage1_prefix(s, opt->sets[i]);
}

static int stage1_save(Stage1 *s, const char *path, const LoopState *ls, uint64_t seed, const char *yaml,
                       I2vError *e) {
    StWriter w;
    st_writer_init(&w);
    st_writer_add_paramset(&w, &s->enc.ps, "enc.");
    st_writer_add_paramset(&w, &s->gen.ps, "gen.");
    st_writer_add_paramset(&w, &s->disc_t.ps, "disc_t.");
    st_writer_add_paramset(&w, &s->disc_s.ps, "disc_s.");
    const char *pre[ADAM_MAX_SETS];
    adam_prefixes(s, &s->opt_ae, pre);
    ckpt_add_adam(&w, "ae", &s->opt_ae, pre);
    adam_prefixes(s, &s->opt_dt, pre);
    ckpt_add_adam(&w, "disc_t", &s->opt_dt, pre);
    adam_prefixes(s, &s->opt_ds, pre);
    ckpt_add_adam(&w, "disc_s", &s->opt_ds, pre);
    ckpt_add_explr(&w, "ae", &s->sched_ae);
    ckpt_add_explr(&w, "disc_t", &s->sched_dt);
    ckpt_add_explr(&w, "disc_s", &s->sched_ds);
    ckpt_add_rng(&w, "noise", &s->rng_noise);
    ckpt_add_rng(&w, "sample", &s->rng_sample);
    ckpt_add_rng(&w, "dropout", &s->rng_dropout);
    add_loop_state(&w, ls, seed, "i2v-stage1", yaml);
    int rc = st_writer_save(&w, path, e);
    st_writer_free(&w);
    return rc;
}

static int stage1_restore(Stage1 *s, const char *path, const char *yaml, LoopState *ls, uint64_t *seed, I2vError *e) {
    StFile f;
    if (st_open(&f, path, e)) return -1;
    double lr_scale;
    int rc = get_loop_state(&f, "i2v-stage1", ls, seed, e) || check_resume_config(&f, yaml, &lr_scale, e);
    StLoadOpts o = {"enc.", 1, 0};
    if (!rc) rc = st_load_paramset(&f, &s->enc.ps, &o, e) < 0;
    o.prefix = "gen.";
    if (!rc) rc = st_load_paramset(&f, &s->gen.ps, &o, e) < 0;
    o.prefix = "disc_t.";
    if (!rc) rc = st_load_paramset(&f, &s->disc_t.ps, &o, e) < 0;
    o.prefix = "disc_s.";
    if (!rc) rc = st_load_paramset(&f, &s->disc_s.ps, &o, e) < 0;
    const char *pre[ADAM_MAX_SETS];
    adam_prefixes(s, &s->opt_ae, pre);
    if (!rc) rc = ckpt_load_adam(&f, "ae", &s->opt_ae, pre, e);
    adam_prefixes(s, &s->opt_dt, pre);
    if (!rc) rc = ckpt_load_adam(&f, "disc_t", &s->opt_dt, pre, e);
    adam_prefixes(s, &s->opt_ds, pre);
    if (!rc) rc = ckpt_load_adam(&f, "disc_s", &s->opt_ds, pre, e);
    if (!rc)
        rc = ckpt_load_explr(&f, "ae", &s->sched_ae, e) || ckpt_load_explr(&f, "disc_t", &s->sched_dt, e) ||
             ckpt_load_explr(&f, "disc_s", &s->sched_ds, e) || ckpt_load_rng(&f, "noise", &s->rng_noise, e) ||
             ckpt_load_rng(&f, "sample", &s->rng_sample, e) || ckpt_load_rng(&f, "dropout", &s->rng_dropout, e);
    if (!rc) {
        scale_lr(&s->opt_ae, lr_scale);
        scale_lr(&s->opt_dt, lr_scale);
        scale_lr(&s->opt_ds, lr_scale);
    }
    st_close(&f);
    return rc ? -1 : 0;
}

/* Reconstructions of the first eval clips beside the real ones, as a GIF. The noise stream is copied and
 * put back, so writing samples does not change training. */
static void stage1_sample_gif(Stage1 *s, const Dataset *eval, uint64_t seed, const char *path) {
    int n = eval->nitems < 4 ? (int)eval->nitems : 4, T = s->cfg.Data.sequence_length, S = s->cfg.Data.img_size;
    if (n <= 0) return;
    DataBatch b;
    batch_alloc(&b, (size_t)n, (size_t)T, (size_t)S);
    size_t items[4] = {0, 1, 2, 3};
    I2vError e;
    if (dataset_batch(eval, seed, 0, items, (size_t)n, 1, &b, &e)) {
        fprintf(stderr, "i2v: warning: sample GIF: %s\n", e.msg);
        batch_free(&b);
        return;
    }
    Tensor *seq = tensor_alloc(5, DIMS(n, T, 3, S, S)), *recon = tensor_alloc(5, DIMS(n, T - 1, 3, S, S));
    memcpy(seq->data, b.video, seq->numel * sizeof(real));
    Rng saved = s->rng_noise;
    Stage1Stats st;
    stage1_eval_step(s, seq, &st, recon);
    s->rng_noise = saved;
    /* rows: real clip (frames 1..T-1), reconstruction */
    size_t fr = (size_t)(T - 1) * 3 * S * S;
    real *both = xmalloc(2 * (size_t)n * fr * sizeof(real));
    for (int i = 0; i < n; i++) {
        memcpy(both + (size_t)i * fr, seq->data + (size_t)i * T * 3 * S * S + (size_t)3 * S * S, fr * sizeof(real));
        memcpy(both + ((size_t)n + i) * fr, recon->data + (size_t)i * fr, fr * sizeof(real));
    }
    if (write_video_gif(path, both, 2 * (size_t)n, (size_t)T - 1, (size_t)S, (size_t)S, (size_t)n, &e))
        fprintf(stderr, "i2v: warning: %s\n", e.msg);
    free(both);
    tensor_free(seq);
    tensor_free(recon);
    batch_free(&b);
}

/* Mean validation figures over (up to) max_batches eval batches; streams restored afterwards. */
static void stage1_validate(Stage1 *s, const Dataset *eval, uint64_t seed, int max_batches, Stage1Stats *mean) {
    memset(mean, 0, sizeof *mean);
    int bs = s->cfg.Training.bs_eval, T = s->cfg.Data.sequence_length, S = s->cfg.Data.img_size;
    DataLoader L;
    I2vError e;
    if (loader_init(&L, eval, (size_t)bs, 0, 1, 0, seed, &e)) return;
    Tensor *seq = tensor_alloc(5, DIMS(bs, T, 3, S, S));
    Rng saved = s->rng_noise;
    const DataBatch *b;
    int count = 0;
    while ((max_batches <= 0 || count < max_batches) && loader_next(&L, &b, &e) == 0) {
        memcpy(seq->data, b->video, seq->numel * sizeof(real));
        Stage1Stats st;
        stage1_eval_step(s, seq, &st, NULL);
        mean->l1 += st.l1;
        mean->lpips += st.lpips;
        mean->kl += st.kl;
        mean->psnr += st.psnr;
        mean->psnr_fixed += st.psnr_fixed;
        count++;
    }
    s->rng_noise = saved;
    if (count) {
        mean->l1 /= count;
        mean->lpips /= count;
        mean->kl /= count;
        mean->psnr /= count;
        mean->psnr_fixed /= count;
    }
    tensor_free(seq);
    loader_free(&L);
}

/* stage 1 in the shared loop */
typedef struct Stage1Run {
    Stage1 *s;
    const Dataset *eval;
    uint64_t seed;
    const char *ckpt, *yaml;
    int eval_batches;
    Tensor *seq;   /* the batch, (bs, T, 3, S, S) */
    FvdMonitor *mon;
    const char *best;   /* where the best checkpoint by the monitor is kept */
} Stage1Run;

/* evaluate_FVD_posterior: the reconstruction from a posterior sample */
static void stage1_monitor_videos(void *self, const DataBatch *b, real *out) {
    Stage1Run *r = self;
    int n = (int)b->n, T = (int)b->frames, S = (int)b->size;
    Tensor *seq = tensor_alloc(5, DIMS(n, T, 3, S, S)), *recon = tensor_alloc(5, DIMS(n, T - 1, 3, S, S));
    memcpy(seq->data, b->video, seq->numel * sizeof(real));
    Stage1Stats st;
    stage1_eval_step(r->s, seq, &st, recon);
    memcpy(out, recon->data, recon->numel * sizeof(real));
    tensor_free(seq);
    tensor_free(recon);
}

static void stage1_loop_step(void *self, const DataBatch *b, int epoch, double *v) {
    Stage1Run *r = self;
    memcpy(r->seq->data, b->video, r->seq->numel * sizeof(real));
    Stage1Stats st;
    stage1_train_step(r->s, r->seq, epoch, &st);
    stage1_values(&st, v);
}

static void stage1_loop_end_epoch(void *self, int epoch) {
    Stage1Run *r = self;
    stage1_end_epoch(r->s, epoch);
    Stage1Stats v;
    stage1_validate(r->s, r->eval, r->seed, r->eval_batches, &v);
    fprintf(stderr, "stage 1 epoch %d: validation L1 %.4f, PSNR %.2f dB, KL %.3g\n", epoch, v.l1, v.psnr_fixed, v.kl);
    Rng saved = r->s->rng_noise;
    monitor_epoch(r->mon, r->eval, r->seed, r->s->cfg.Training.bs_eval, "stage 1", epoch, stage1_monitor_videos, r);
    r->s->rng_noise = saved;
}

static int stage1_loop_save(void *self, const LoopState *ls, I2vError *e) {
    Stage1Run *r = self;
    if (stage1_save(r->s, r->ckpt, ls, r->seed, r->yaml, e)) return -1;
    return monitor_keep_best(r->mon, r->ckpt, r->best, e);
}

static void stage1_loop_sample(void *self, const char *gif) {
    Stage1Run *r = self;
    stage1_sample_gif(r->s, r->eval, r->seed, gif);
}

/* the dry run of a stage-1 step on a batch of bs clips, for measure_apart (the batch is made there too) */
typedef struct Stage1Plan {
    Stage1 *s;
    int bs, T, S;
} Stage1Plan;

static size_t stage1_plan(void *arg) {
    Stage1Plan *p = arg;
    Tensor *seq = tensor_alloc(5, DIMS(p->bs, p->T, 3, p->S, p->S));
    size_t bytes = stage1_plan_step(p->s, seq);
    tensor_free(seq);
    return bytes;
}

/* What a GPU step needs beyond the activations the dry run counts: cuDNN's workspace (at most 512 MB per
 * algorithm), the deterministic sums' partial results and the kernels' temporaries. */
#define GPU_WORKSPACE_BYTES ((size_t)1 << 30)

/* On the GPU, a run whose training step cannot fit is refused before it starts (a step that ran out of memory
 * halfway would end the run with an internal error, or push managed memory back to the host and crawl). The
 * parameters, gradients and optimiser moments are on the GPU already; activations is the dry run's count. */
static int gpu_step_too_big(const char *config, int batch, size_t activations, I2vError *e) {
    if (!I2V_CUDA || device_default() != DEVICE_CUDA) return 0;
    size_t free_bytes, total, left = cuda_available();
    cuda_memory(&free_bytes, &total);
    size_t need = activations + GPU_WORKSPACE_BYTES;
    if (need <= left) return 0;
    const double gb = 1e9;
    return err_set(e, "config %s at batch %d does not fit on %s: a training step needs %.2f GB (activations and their "
                      "gradients %.2f GB, workspaces up to %.2f GB) beside the parameters and optimiser state, and %.2f "
                      "of its %.2f GB are left; a smaller Training.bs may fit",
                   config, batch, cuda_device_name(), need / gb, activations / gb, GPU_WORKSPACE_BYTES / gb,
                   left / gb, total / gb);
}

int train_stage1(const TrainOpts *o, I2vError *e) {
    StageSetup setup;
    if (setup_load(STAGE1, o->config, o->noverrides, o->overrides, &setup, e)) return -1;
    Stage1Config *cfg = &setup.s1;
    char ckpt[DATA_PATH_MAX], cfg_path[DATA_PATH_MAX], csv[DATA_PATH_MAX];
    if (data_mkdirs(o->out, e) || path_in(ckpt, sizeof ckpt, o->out, STAGE1_FILE, e) ||
        path_in(cfg_path, sizeof cfg_path, o->out, STAGE1_CONFIG, e) ||
        path_in(csv, sizeof csv, o->out, "stage1_losses.csv", e)) {
        setup_free(&setup);
        return -1;
    }
    if (start_run_files(o, ckpt, csv, e)) {
        setup_free(&setup);
        return -1;
    }
    warn_unused_lpips(o, cfg->Training.w_percep > 0, "this config has no perceptual loss (Training.w_percep is 0)");
    int T = cfg->Data.sequence_length, S = cfg->Data.img_size, bs = cfg->Training.bs;
    RunMemory mem = {0, data_bytes(bs, T, S, 0, 0), 0, NULL, 0};
    mem.params = setup_parameters(STAGE1, &setup, 0, 0, &mem.param_keys) * sizeof(real) * 4;   /* Adam: m, v */
    if (check_run_memory(o->config, &mem, e)) {
        setup_free(&setup);
        return -1;
    }
    uint64_t seed = o->seed;
    Stage1 s;
    if (stage1_init(&s, cfg, o->lpips, seed, e)) {
        setup_free(&setup);
        return -1;
    }
    LoopState ls = {0, 0, 0};
    if (o->resume && (stage1_restore(&s, resume_path(o, ckpt), setup.yaml, &ls, &seed, e) ||
                      step_back(o, ckpt, ls.step, e))) {
        stage1_free(&s);
        setup_free(&setup);
        return -1;
    }
    if (I2V_CUDA && device_default() == DEVICE_CUDA) {
        int T = cfg->Data.sequence_length, S = cfg->Data.img_size, bs = cfg->Training.bs;
        Tensor *probe = tensor_alloc(5, DIMS(bs, T, 3, S, S));
        int too_big = gpu_step_too_big(o->config, bs, stage1_step_bytes(&s, probe), e);
        tensor_free(probe);
        if (too_big) {
            stage1_free(&s);
            setup_free(&setup);
            return -1;
        }
    }
    Dataset train, eval;
    DataConfig dc = setup.data;
    setup_resolve_paths(&dc);
    int rc = dataset_open(&train, &dc, DATA_TRAIN, seed, e);
    if (!rc && (rc = dataset_open(&eval, &dc, DATA_EVAL, seed, e))) dataset_close(&train);
    if (rc) {
        stage1_free(&s);
        setup_free(&setup);
        return -1;
    }
    mem.data = data_bytes(bs, T, S, train.nitems, eval.nitems);
    Stage1Plan plan = {&s, bs, T, S};
    set_step_bytes(&mem, measure_apart(stage1_plan, &plan));
    DataLoader L;
    Tensor *seq = NULL;   /* the batch */
    if (check_run_memory(o->config, &mem, e) || !(seq = tensor_alloc(5, DIMS(bs, T, 3, S, S))) ||
        loader_init(&L, &train, (size_t)cfg->Training.bs, 1, 1, 1, seed, e)) {
        tensor_free(seq);
        dataset_close(&train);
        dataset_close(&eval);
        stage1_free(&s);
        setup_free(&setup);
        return -1;
    }
    loader_seek(&L, (uint64_t)ls.epoch, (size_t)ls.position);
    write_text(cfg_path, setup.yaml, e);
    long total = o->max_steps > 0 ? o->max_steps : (long)L.nbatches * cfg->Training.n_epochs;
    FvdMonitor mon;
    char best[DATA_PATH_MAX];
    if (path_in(best, sizeof best, o->out, "best_PFVD_" STAGE1_FILE, e) ||
        monitor_open(&mon, "stage 1", cfg->Training.FVD, monitor_weights(o, &setup),
                     o->fvd_width_div > 1 ? o->fvd_width_div : 1, e)) {
        rc = -1;
        goto done;
    }
    Progress p;
    if (progress_init(&p, "stage 1", total, 11, stage1_series, csv, o->resume ? (long)ls.step : -1, e)) {
        monitor_close(&mon);
        rc = -1;
        goto done;
    }
    p.time_limit = o->max_seconds;
    Stage1Run r = {&s, &eval, seed, ckpt, setup.yaml, o->eval_batches, seq, &mon, best};
    LoopStage st = {"stage 1", ckpt, 11, stage1_series, &r, stage1_loop_step, stage1_loop_end_epoch, stage1_loop_save,
                    stage1_loop_sample, "samples_stage1"};
    rc = train_loop(o, &st, &L, cfg->Training.n_epochs, &p, &ls, e);
    monitor_close(&mon);
done:
    tensor_free(seq);
    loader_free(&L);
    dataset_close(&train);
    dataset_close(&eval);
    stage1_free(&s);
    setup_free(&setup);
    return rc;
}

/* ================================================================================================== */
/* stage 2a: the conditioning autoencoder (stage2_cINN/AE/main.py)                                       */
/* ================================================================================================== */

static const char *const cae_series[] = {"loss", "loss_recon", "kl", "loss_g", "disc", "disc_weight", "psnr"};

static void cae_values(const CondAeStats *st, double *v) {
    double vals[] = {st->loss, st->loss_recon, st->kl, st->loss_g, st->disc, st->disc_weight, st->psnr};
    memcpy(v, vals, sizeof vals);
}

static const char *cae_prefix(const CondAe *s, const ParamSet *ps) {
    return ps == &s->enc.ps ? "enc." : ps == &s->dec.ps ? "dec." : "disc.";
}

static int cae_save(CondAe *s, const char *path, const LoopState *ls, uint64_t seed, const char *yaml, I2vError *e) {
    StWriter w;
    st_writer_init(&w);
    st_writer_add_paramset(&w, &s->enc.ps, "enc.");
    st_writer_add_paramset(&w, &s->dec.ps, "dec.");
    st_writer_add_paramset(&w, &s->disc.ps, "disc.");
    const char *pre[ADAM_MAX_SETS];
    for (int i = 0; i < s->opt_ae.nsets; i++) pre[i] = cae_prefix(s, s->opt_ae.sets[i]);
    ckpt_add_adam(&w, "ae", &s->opt_ae, pre);
    for (int i = 0; i < s->opt_d.nsets; i++) pre[i] = cae_prefix(s, s->opt_d.sets[i]);
    ckpt_add_adam(&w, "disc", &s->opt_d, pre);
    ckpt_add_plateau(&w, "ae", &s->sched_ae);
    ckpt_add_plateau(&w, "disc", &s->sched_d);
    ckpt_add_rng(&w, "dropout", &s->rng_dropout);
    add_loop_state(&w, ls, seed, "i2v-cond-ae", yaml);
    int rc = st_writer_save(&w, path, e);
    st_writer_free(&w);
    return rc;
}

static int cae_restore(CondAe *s, const char *path, const char *yaml, LoopState *ls, uint64_t *seed, I2vError *e) {
    StFile f;
    if (st_open(&f, path, e)) return -1;
    double lr_scale;
    int rc = get_loop_state(&f, "i2v-cond-ae", ls, seed, e) || check_resume_config(&f, yaml, &lr_scale, e);
    StLoadOpts o = {"enc.", 1, 0};
    if (!rc) rc = st_load_paramset(&f, &s->enc.ps, &o, e) < 0;
    o.prefix = "dec.";
    if (!rc) rc = st_load_paramset(&f, &s->dec.ps, &o, e) < 0;
    o.prefix = "disc.";
    if (!rc) rc = st_load_paramset(&f, &s->disc.ps, &o, e) < 0;
    const char *pre[ADAM_MAX_SETS];
    for (int i = 0; i < s->opt_ae.nsets; i++) pre[i] = cae_prefix(s, s->opt_ae.sets[i]);
    if (!rc) rc = ckpt_load_adam(&f, "ae", &s->opt_ae, pre, e);
    for (int i = 0; i < s->opt_d.nsets; i++) pre[i] = cae_prefix(s, s->opt_d.sets[i]);
    if (!rc) rc = ckpt_load_adam(&f, "disc", &s->opt_d, pre, e);
    if (!rc)
        rc = ckpt_load_plateau(&f, "ae", &s->sched_ae, e) || ckpt_load_plateau(&f, "disc", &s->sched_d, e) ||
             ckpt_load_rng(&f, "dropout", &s->rng_dropout, e);
    if (!rc) {
        scale_lr(&s->opt_ae, lr_scale);
        scale_lr(&s->opt_d, lr_scale);
    }
    st_close(&f);
    return rc ? -1 : 0;
}

/* start frames and their reconstructions, as a two-row "GIF" of one frame */
static void cae_sample_gif(CondAe *s, const Dataset *eval, uint64_t seed, const char *path) {
    int n = eval->nitems < 8 ? (int)eval->nitems : 8, S = s->cfg.Data.img_size;
    if (n <= 0) return;
    DataBatch b;
    batch_alloc(&b, (size_t)n, 1, (size_t)S);
    size_t items[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    I2vError e;
    if (!dataset_batch(eval, seed, 0, items, (size_t)n, 1, &b, &e)) {
        Tensor *x = tensor_alloc(4, DIMS(n, 3, S, S)), *rec = tensor_alloc(4, DIMS(n, 3, S, S));
        memcpy(x->data, b.video, x->numel * sizeof(real));
        Rng saved = s->rng_dropout;
        CondAeStats st;
        cond_ae_eval_step(s, x, 0, &st, rec);
        s->rng_dropout = saved;
        real *both = xmalloc(2 * x->numel * sizeof(real));
        memcpy(both, x->data, x->numel * sizeof(real));
        memcpy(both + x->numel, rec->data, x->numel * sizeof(real));
        if (write_video_gif(path, both, 2 * (size_t)n, 1, (size_t)S, (size_t)S, (size_t)n, &e))
            fprintf(stderr, "i2v: warning: %s\n", e.msg);
        free(both);
        tensor_free(x);
        tensor_free(rec);
    }
    batch_free(&b);
}

/* the conditioning AE in the shared loop */
typedef struct CaeRun {
    CondAe *s;
    const Dataset *eval;
    uint64_t seed;
    const char *ckpt, *yaml;
    Tensor *x;           /* the batch of start frames */
    double last_recon;   /* the last step's reconstruction loss, for the plateau schedulers */
} CaeRun;

static void cae_loop_step(void *self, const DataBatch *b, int epoch, double *v) {
    CaeRun *r = self;
    memcpy(r->x->data, b->video, r->x->numel * sizeof(real));
    CondAeStats st;
    cond_ae_train_step(r->s, r->x, epoch, &st, NULL);
    r->last_recon = st.loss_recon;
    cae_values(&st, v);
}

/* the plateau schedulers see the last batch's loss (official quirk) */
static void cae_loop_end_epoch(void *self, int epoch) {
    (void)epoch;
    CaeRun *r = self;
    cond_ae_end_epoch(r->s, r->last_recon);
}

static int cae_loop_save(void *self, const LoopState *ls, I2vError *e) {
    CaeRun *r = self;
    return cae_save(r->s, r->ckpt, ls, r->seed, r->yaml, e);
}

static void cae_loop_sample(void *self, const char *gif) {
    CaeRun *r = self;
    cae_sample_gif(r->s, r->eval, r->seed, gif);
}

/* the dry run of a conditioning-AE step on a batch of bs frames, for measure_apart */
typedef struct CaePlan {
    CondAe *s;
    int bs, S;
} CaePlan;

static size_t cae_plan(void *arg) {
    CaePlan *p = arg;
    Tensor *x = tensor_alloc(4, DIMS(p->bs, 3, p->S, p->S));
    size_t bytes = cond_ae_plan_step(p->s, x);
    tensor_free(x);
    return bytes;
}

int train_cond_ae(const TrainOpts *o, I2vError *e) {
    StageSetup setup;
    if (setup_load(STAGE_COND_AE, o->config, o->noverrides, o->overrides, &setup, e)) return -1;
    CondAeConfig *cfg = &setup.cond_ae;
    char ckpt[DATA_PATH_MAX], cfg_path[DATA_PATH_MAX], csv[DATA_PATH_MAX];
    if (data_mkdirs(o->out, e) || path_in(ckpt, sizeof ckpt, o->out, COND_AE_FILE, e) ||
        path_in(cfg_path, sizeof cfg_path, o->out, COND_AE_CONFIG, e) ||
        path_in(csv, sizeof csv, o->out, "cond_ae_losses.csv", e)) {
        setup_free(&setup);
        return -1;
    }
    if (setup.data.sequence_length != 1) {
        setup_free(&setup);
        return err_set(e, "%s: the conditioning AE trains on single frames: Data.sequence_length must be 1", o->config);
    }
    if (start_run_files(o, ckpt, csv, e)) {
        setup_free(&setup);
        return -1;
    }
    warn_unused_lpips(o, cfg->Training.perceptual, "this config has no perceptual loss (Training.perceptual is False)");
    int S = cfg->Data.img_size, bs = cfg->Training.bs;
    RunMemory mem = {0, data_bytes(bs, 1, S, 0, 0), 0, NULL, 0};
    mem.params = setup_parameters(STAGE_COND_AE, &setup, 0, 0, &mem.param_keys) * sizeof(real) * 4;   /* Adam */
    if (check_run_memory(o->config, &mem, e)) {
        setup_free(&setup);
        return -1;
    }
    uint64_t seed = o->seed;
    CondAe s;
    if (cond_ae_init(&s, cfg, o->lpips, seed, e)) {
        setup_free(&setup);
        return -1;
    }
    LoopState ls = {0, 0, 0};
    int rc = 0;
    if (o->resume && (cae_restore(&s, resume_path(o, ckpt), setup.yaml, &ls, &seed, e) ||
                      step_back(o, ckpt, ls.step, e))) {
        cond_ae_free(&s);
        setup_free(&setup);
        return -1;
    }
    Dataset train, eval;
    DataConfig dc = setup.data;
    setup_resolve_paths(&dc);
    if (dataset_open(&train, &dc, DATA_TRAIN, seed, e)) {
        cond_ae_free(&s);
        setup_free(&setup);
        return -1;
    }
    if (dataset_open(&eval, &dc, DATA_EVAL, seed, e)) {
        dataset_close(&train);
        cond_ae_free(&s);
        setup_free(&setup);
        return -1;
    }
    mem.data = data_bytes(bs, 1, S, train.nitems, eval.nitems);
    CaePlan plan = {&s, bs, S};
    set_step_bytes(&mem, measure_apart(cae_plan, &plan));
    DataLoader L;
    Tensor *x = NULL;   /* the batch of start frames */
    if ((rc = check_run_memory(o->config, &mem, e))) goto done;
    x = tensor_alloc(4, DIMS(bs, 3, S, S));
    if ((rc = loader_init(&L, &train, (size_t)cfg->Training.bs, 1, 1, 1, seed, e))) goto done;
    loader_seek(&L, (uint64_t)ls.epoch, (size_t)ls.position);
    write_text(cfg_path, setup.yaml, e);
    long total = o->max_steps > 0 ? o->max_steps : (long)L.nbatches * cfg->Training.n_epochs;
    Progress p;
    if ((rc = progress_init(&p, "cond AE", total, 7, cae_series, csv, o->resume ? (long)ls.step : -1, e))) goto done_loader;
    p.time_limit = o->max_seconds;
    CaeRun r = {&s, &eval, seed, ckpt, setup.yaml, x, 0};
    LoopStage st = {"cond AE", ckpt, 7, cae_series, &r, cae_loop_step, cae_loop_end_epoch, cae_loop_save,
                    cae_loop_sample, "samples_cond_ae"};
    rc = train_loop(o, &st, &L, cfg->Training.n_epochs, &p, &ls, e);
done_loader:
    loader_free(&L);
done:
    tensor_free(x);
    dataset_close(&train);
    dataset_close(&eval);
    cond_ae_free(&s);
    setup_free(&setup);
    return rc;
}

/* ================================================================================================== */
/* stage 2b: the cINN (stage2_cINN/main.py)                                                              */
/* ================================================================================================== */

/* The log's columns: loss, the official objective (the NLL without its constant); nll = -log p(z | x0) in
 * nats per sample, the constant included; the mean log-determinant; and the NLL in bits per dimension
 * (flow.h states the one definition every report uses). */
static const char *const cinn_series[] = {"loss", "nll", "logdet", "bits_per_dim"};

/* The frozen encoders of stages 1 and 2a, and the latents of a batch: z sampled from the stage-1
 * posterior (as the official training does), the condition from the start frame (+ end point). x0 is a
 * work buffer of (n, 3, S, S). */
static void batch_latents(Model *m, const DataBatch *b, Rng *noise, real *x0, real *z, real *cond) {
    int n = (int)b->n, T = (int)b->frames, S = (int)b->size;
    model_encode(m, b->video, n, T, noise, z);
    size_t clip = (size_t)T * 3 * S * S, frame = (size_t)3 * S * S;
    for (int i = 0; i < n; i++) memcpy(x0 + (size_t)i * frame, b->video + (size_t)i * clip, frame * sizeof(real));
    model_condition(m, x0, b->control, n, cond);
}

static int cinn_save(Flow *f, Adam *opt, StepLR *sched, Rng *noise, const char *path, const LoopState *ls,
                     uint64_t seed, const char *yaml, I2vError *e) {
    StWriter w;
    st_writer_init(&w);
    st_writer_add_paramset(&w, &f->ps, "flow.");
    const char *pre[1] = {"flow."};
    ckpt_add_adam(&w, "flow", opt, pre);
    ckpt_add_steplr(&w, "flow", sched);
    ckpt_add_rng(&w, "noise", noise);
    add_loop_state(&w, ls, seed, "i2v-cinn", yaml);
    int rc = st_writer_save(&w, path, e);
    st_writer_free(&w);
    return rc;
}

static int cinn_restore(Flow *f, Adam *opt, StepLR *sched, Rng *noise, const char *path, const char *yaml,
                        LoopState *ls, uint64_t *seed, I2vError *e) {
    StFile file;
    if (st_open(&file, path, e)) return -1;
    StLoadOpts o = {"flow.", 1, 0};
    const char *pre[1] = {"flow."};
    double lr_scale = 1;
    int rc = get_loop_state(&file, "i2v-cinn", ls, seed, e) || check_resume_config(&file, yaml, &lr_scale, e) ||
             st_load_paramset(&file, &f->ps, &o, e) < 0 || ckpt_load_adam(&file, "flow", opt, pre, e) ||
             ckpt_load_steplr(&file, "flow", sched, e) || ckpt_load_rng(&file, "noise", noise, e);
    if (!rc) scale_lr(opt, lr_scale);
    st_close(&file);
    return rc ? -1 : 0;
}

/* Mean loss over the eval split (or max_batches of it), with a copy of the noise stream. */
static double cinn_validate(Model *m, Ctx *c, const Dataset *eval, uint64_t seed, int bs, Rng noise,
                            int max_batches) {
    DataLoader L;
    I2vError e;
    if (loader_init(&L, eval, (size_t)bs, 0, 0, 0, seed, &e)) return NAN;
    Flow *f = &m->flow;
    real *z = xmalloc((size_t)bs * f->cfg.z_dim * sizeof(real)), *cond = xmalloc((size_t)bs * f->cond_dim * sizeof(real));
    real *x0 = xmalloc((size_t)bs * 3 * m->size * m->size * sizeof(real));
    double total = 0;
    long count = 0;
    const DataBatch *b;
    int nb = 0;
    while ((max_batches <= 0 || nb < max_batches) && loader_next(&L, &b, &e) == 0) {
        batch_latents(m, b, &noise, x0, z, cond);
        FlowStepStats st;
        flow_eval_batch(c, f, z, cond, (int)b->n, &st);
        total += st.loss * (double)b->n;
        count += (long)b->n;
        nb++;
    }
    free(z);
    free(cond);
    free(x0);
    loader_free(&L);
    return count ? total / count : NAN;
}

/* the cINN in the shared loop */
typedef struct CinnRun {
    Model *m;            /* the frozen encoders and the flow being trained */
    Adam *opt;
    StepLR *sched;
    Rng *noise;          /* the stage-1 posterior's samples */
    const Dataset *eval;
    uint64_t seed;
    const char *ckpt, *yaml;
    int bs_eval, eval_batches;
    Ctx *c;
    real *x0, *z, *cond; /* a batch's start frames (bs, 3, S, S), latents (bs, Z) and conditions (bs, C) */
    FvdMonitor *mon;
    const char *best;    /* where the best checkpoint by the monitor is kept */
    Rng prior;           /* the monitor's residuals nu ~ N(0, I) */
} CinnRun;

/* evaluate_FVD_prior: nu ~ N(0, I), z = cINN^-1(nu | x0), Gen(x0, z) */
static void cinn_monitor_videos(void *self, const DataBatch *b, real *out) {
    CinnRun *r = self;
    int n = (int)b->n, T = (int)b->frames, S = (int)b->size;
    size_t frame = (size_t)3 * S * S;
    real *x0 = xmalloc((size_t)n * frame * sizeof(real)), *z = xmalloc((size_t)n * r->m->z_dim * sizeof(real));
    real *cond = xmalloc((size_t)n * r->m->flow.cond_dim * sizeof(real));
    for (int i = 0; i < n; i++) memcpy(x0 + (size_t)i * frame, b->video + (size_t)i * T * frame, frame * sizeof(real));
    model_condition(r->m, x0, b->control, n, cond);
    model_invert(r->m, cond, n, NULL, 1.0, &r->prior, z);
    model_decode(r->m, x0, z, n, T - 1, out);
    free(x0), free(z), free(cond);
}

static void cinn_loop_step(void *self, const DataBatch *b, int epoch, double *v) {
    (void)epoch;
    CinnRun *r = self;
    batch_latents(r->m, b, r->noise, r->x0, r->z, r->cond);
    FlowStepStats st;
    flow_train_step(r->c, &r->m->flow, r->opt, r->z, r->cond, (int)b->n, &st);
    double vals[4] = {st.loss, st.nll, st.logdet, st.bits_per_dim};
    memcpy(v, vals, sizeof vals);
}

static void cinn_loop_end_epoch(void *self, int epoch) {
    CinnRun *r = self;
    double val = cinn_validate(r->m, r->c, r->eval, r->seed, r->bs_eval, *r->noise, r->eval_batches);
    int D = r->m->flow.cfg.z_dim;
    fprintf(stderr, "cINN epoch %d: validation NLL %.4f nats = %.4f bits/dim (objective %.4f), lr %.3g\n", epoch,
            flow_nll(val, D), flow_bits_per_dim(val, D), val, r->opt->lr);
    rng_seed(&r->prior, r->seed + 1000003ULL * (uint64_t)(epoch + 1));
    monitor_epoch(r->mon, r->eval, r->seed, r->bs_eval, "cINN", epoch, cinn_monitor_videos, r);
    steplr_step(r->sched, r->opt);
}

static int cinn_loop_save(void *self, const LoopState *ls, I2vError *e) {
    CinnRun *r = self;
    if (cinn_save(&r->m->flow, r->opt, r->sched, r->noise, r->ckpt, ls, r->seed, r->yaml, e)) return -1;
    return monitor_keep_best(r->mon, r->ckpt, r->best, e);
}

/* "<stem>_losses.csv" for a checkpoint "<stem>.safetensors" (another name: "<name>_losses.csv") */
static void losses_name(const char *ckpt_file, char *out, size_t cap) {
    const char *base = strrchr(ckpt_file, '/') ? strrchr(ckpt_file, '/') + 1 : ckpt_file, *ext = ".safetensors";
    size_t n = strlen(base), k = strlen(ext);
    if (n > k && !strcmp(base + n - k, ext)) n -= k;
    snprintf(out, cap, "%.*s_losses.csv", (int)n, base);
}

/* Are a and b the same existing folder? */
static int same_dir(const char *a, const char *b) {
    struct stat sa, sb;
    return !stat(a, &sa) && !stat(b, &sb) && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* dir as an absolute path ending with '/', as the official configs' model_path + model_name are joined */
static int absolute_dir(const char *dir, char *out, size_t cap, I2vError *e) {
    char cwd[DATA_PATH_MAX];
    if (dir[0] == '/') return data_join(out, cap, e, "%s/", dir);
    if (!getcwd(cwd, sizeof cwd)) return err_set(e, "%s: cannot find the working directory to make it absolute", dir);
    return data_join(out, cap, e, "%s/%s/", cwd, dir);
}

/* The folder a frozen stage comes from: the option, else the model folder when it has that stage, else
 * the folder the config names (model_path + model_name), else the model folder. A folder other than the
 * model folder is written into the config as an absolute path, so `sample` finds it (model.h). */
static int frozen_stage_dir(const TrainOpts *o, const char *option, StageKind kind, StageSetup *setup, char *dir,
                            size_t cap, int *changed, I2vError *e) {
    char here[DATA_PATH_MAX], ref[2200];
    model_stage_ref(&setup->s2, kind, ref, sizeof ref);
    if (path_in(here, sizeof here, o->out, kind == STAGE1 ? STAGE1_CONFIG : COND_AE_CONFIG, e)) return -1;
    const char *pick = option ? option : access(here, F_OK) == 0 || !ref[0] ? o->out : ref;
    if (data_join(dir, cap, e, "%s", pick)) return -1;
    if (same_dir(dir, o->out) || (!option && pick == ref)) return 0;
    char abs[DATA_PATH_MAX];
    if (absolute_dir(dir, abs, sizeof abs, e)) return -1;
    char *path = kind == STAGE1 ? setup->s2.First_stage_model.model_path : setup->s2.Conditioning_Model.model_path;
    char *name = kind == STAGE1 ? setup->s2.First_stage_model.model_name : setup->s2.Conditioning_Model.model_name;
    if (strlen(abs) >= sizeof setup->s2.First_stage_model.model_path)
        return err_set(e, "%s: the path is longer than the config's model_path can hold (%zu characters)", dir,
                       sizeof setup->s2.First_stage_model.model_path - 1);
    memcpy(path, abs, strlen(abs) + 1);   /* fits: checked above */
    name[0] = 0;
    *changed = 1;
    return 0;
}

int train_cinn(const TrainOpts *o, I2vError *e) {
    StageSetup setup;
    if (setup_load(STAGE2, o->config, o->noverrides, o->overrides, &setup, e)) return -1;
    Stage2Config *cfg = &setup.s2;
    warn_unused_lpips(o, 0, "the cINN has no perceptual loss");
    const char *file = o->cinn_file ? o->cinn_file : CINN_FILE, *cfgname = o->cinn_config ? o->cinn_config : CINN_CONFIG;
    char ckpt[DATA_PATH_MAX], cfg_path[DATA_PATH_MAX], csv[DATA_PATH_MAX], csvname[256];
    char s1dir[DATA_PATH_MAX], aedir[DATA_PATH_MAX];
    int changed = 0;
    losses_name(file, csvname, sizeof csvname);
    if (data_mkdirs(o->out, e) || model_path(ckpt, sizeof ckpt, o->out, file, e) ||
        model_path(cfg_path, sizeof cfg_path, o->out, cfgname, e) || path_in(csv, sizeof csv, o->out, csvname, e) ||
        frozen_stage_dir(o, o->stage1_dir, STAGE1, &setup, s1dir, sizeof s1dir, &changed, e) ||
        frozen_stage_dir(o, o->cond_ae_dir, STAGE_COND_AE, &setup, aedir, sizeof aedir, &changed, e)) {
        setup_free(&setup);
        return -1;
    }
    if (changed) {   /* the config names the other folders now; it is what the checkpoint and folder keep */
        free(setup.yaml);
        setup.yaml = setup_to_yaml(STAGE2, &setup);
    }
    if (start_run_files(o, ckpt, csv, e)) {
        setup_free(&setup);
        return -1;
    }
    /* the frozen stage-1 encoder and conditioning encoder, from their folders */
    Model m;
    /* the generator too when the monitor samples videos */
    if (model_load_stages(&m, s1dir, aedir, MODEL_ENC | MODEL_COND | (monitor_weights(o, &setup) ? MODEL_GEN : 0), e)) {
        setup_free(&setup);
        return -1;
    }
    int rc = 0;
    if (cfg->Conditioning_Model.z_dim != m.embed_dim)
        rc = err_set(e, "%s: Conditioning_Model.z_dim is %d but the conditioning AE in %s has z_dim %d", o->config,
                     cfg->Conditioning_Model.z_dim, aedir, m.embed_dim);
    if (!rc && (setup.data.img_size != m.size || setup.data.sequence_length < 2))
        rc = err_set(e, "%s: Data.img_size %d and sequence_length %d must match the stage-1 model (%d px, T >= 2)",
                     o->config, setup.data.img_size, setup.data.sequence_length, m.size);
    if (rc) {
        model_free(&m);
        setup_free(&setup);
        return -1;
    }
    /* AMSGrad keeps a third moment */
    RunMemory mem = {0, data_bytes(cfg->Training.bs, setup.data.sequence_length, m.size, 0, 0), 0, NULL, 0};
    mem.params = setup_parameters(STAGE2, &setup, m.z_dim, m.embed_dim, &mem.param_keys) * sizeof(real) *
                 (cfg->Training.amsgrad ? 5 : 4);
    if (check_run_memory(o->config, &mem, e)) {
        model_free(&m);
        setup_free(&setup);
        return -1;
    }
    FlowConfig fc = flow_config_of(cfg, m.z_dim, m.embed_dim);
    Rng init, noise;
    rng_seed(&init, o->seed);
    rng_seed(&noise, o->seed ^ 0x6e6f697365ULL);
    flow_build(&m.flow, &fc, &init);   /* trained here; the Model owns it */
    m.has_flow = 1;
    Flow *f = &m.flow;
    Adam opt;
    adam_init(&opt, cfg->Training.lr, cfg->Training.beta1, cfg->Training.beta2, 1e-8, cfg->Training.weight_decay,
              cfg->Training.amsgrad);
    adam_add_params(&opt, &f->ps);
    StepLR sched;
    steplr_init(&sched, cfg->Training.step_size, cfg->Training.gamma);
    LoopState ls = {0, 0, 0};
    uint64_t seed = o->seed;
    Dataset train, eval;
    int opened = 0;
    if (o->resume)
        rc = cinn_restore(f, &opt, &sched, &noise, resume_path(o, ckpt), setup.yaml, &ls, &seed, e) ||
             step_back(o, ckpt, ls.step, e);
    DataConfig dc = setup.data;
    setup_resolve_paths(&dc);
    if (!rc) rc = dataset_open(&train, &dc, DATA_TRAIN, seed, e);
    if (!rc) {
        rc = dataset_open(&eval, &dc, DATA_EVAL, seed, e);
        if (rc) dataset_close(&train);
        else opened = 1;
    }
    if (!rc) {
        mem.data = data_bytes(cfg->Training.bs, setup.data.sequence_length, m.size, train.nitems, eval.nitems);
        rc = check_run_memory(o->config, &mem, e);
    }
    DataLoader L;
    int have_loader = 0;
    /* the official loader keeps the last partial batch (drop_last False) */
    if (!rc && !(rc = loader_init(&L, &train, (size_t)cfg->Training.bs, 1, 0, 1, seed, e))) have_loader = 1;
    Progress p;
    if (!rc) {
        loader_seek(&L, (uint64_t)ls.epoch, (size_t)ls.position);
        write_text(cfg_path, setup.yaml, e);
        long total = o->max_steps > 0 ? o->max_steps : (long)L.nbatches * cfg->Training.n_epochs;
        rc = progress_init(&p, "cINN", total, 4, cinn_series, csv, o->resume ? (long)ls.step : -1, e);
        p.time_limit = o->max_seconds;
    }
    FvdMonitor mon = {0};
    char best[DATA_PATH_MAX + 16];
    snprintf(best, sizeof best, "%s/best_PFVD_%s", o->out, file);
    if (!rc && (rc = monitor_open(&mon, "cINN", m.s1.s1.Training.FVD, monitor_weights(o, &setup),
                                  o->fvd_width_div > 1 ? o->fvd_width_div : 1, e)))
        progress_finish(&p);
    Ctx c;
    ctx_init(&c);
    int bs = cfg->Training.bs;
    CinnRun r = {&m, &opt, &sched, &noise, &eval, seed, ckpt, setup.yaml, cfg->Training.bs_eval, o->eval_batches, &c,
                 xmalloc((size_t)bs * 3 * m.size * m.size * sizeof(real)), xmalloc((size_t)bs * fc.z_dim * sizeof(real)),
                 xmalloc((size_t)bs * f->cond_dim * sizeof(real)), &mon, best, {{0}, 0, 0}};
    LoopStage st = {"cINN", ckpt, 4, cinn_series, &r, cinn_loop_step, cinn_loop_end_epoch, cinn_loop_save, NULL, NULL};
    if (!rc) rc = train_loop(o, &st, &L, cfg->Training.n_epochs, &p, &ls, e);
    monitor_close(&mon);
    free(r.x0);
    free(r.z);
    free(r.cond);
    ctx_free(&c);
    if (have_loader) loader_free(&L);
    if (opened) {
        dataset_close(&train);
        dataset_close(&eval);
    }
    adam_free(&opt);
    model_free(&m);
    setup_free(&setup);
    return rc;
}
