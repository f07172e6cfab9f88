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

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "program/ckpt.h"
#include "cuda/cuda.h"
#include "formats/files.h"
#include "program/model.h"
#include "program/progress.h"
#include "program/setup.h"

volatile int run_interrupted;

static void on_sigint(int sig) {
    (void)sig;
    run_interrupted = 1;
}

void run_install_sigint(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, NULL);
}

void train_opts_default(TrainOpts *o) {
    memset(o, 0, sizeof *o);
    o->seed = 42;   /* set_seed(42) in every official training script */
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

/* A resumed run must use the config it was started with (overrides on the command line would silently
 * change it halfway); the checkpoint holds that config. */
static int check_same_config(const StFile *f, const char *yaml, I2vError *e) {
    const char *saved = st_meta_get(f, "config");
    if (!saved) return err_set(e, "%s: the checkpoint has no config", f->path);
    if (strcmp(saved, yaml))
        return err_set(e, "%s: --resume with a config that differs from the checkpoint's; resume with the same "
                          "--config and overrides (the checkpoint's config is in its metadata: i2v inspect %s)",
                       f->path, f->path);
    return 0;
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

/* The epoch loop of the official main.py files: steps until the epochs, --steps or --minutes run out or
 * Ctrl-C; at the end of each epoch the stage's schedulers and validation, then a checkpoint; a checkpoint
 * every save_every steps, and at the end. A loss that is not finite stops the run. */
static int train_loop(const TrainOpts *o, const LoopStage *st, DataLoader *L, int n_epochs, Progress *p, LoopState *ls,
                      I2vError *e) {
    double v[PROGRESS_MAX_SERIES], t0 = progress_now();
    int rc = 0;
    run_install_sigint();
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
            if ((rc = st->save(st->self, ls, e))) break;
            continue;
        }
        st->step(st->self, b, (int)ls->epoch, v);
        int bad;
        if (!all_finite(v, st->nseries, &bad)) {
            rc = err_set(e, "%s: loss '%s' became %g at step %lld; stopped. The last good state is the last "
                            "checkpoint, %s (its step is in the metadata); try a lower Training.lr",
                         st->title, st->series[bad], v[bad], ls->step + 1, st->ckpt);
            break;
        }
        ls->step++;
        ls->position = (long long)L->position;
        progress_step(p, ls->step - 1, (int)ls->epoch, v);
        if (o->save_every > 0 && ls->step % o->save_every == 0 && (rc = st->save(st->self, ls, e))) break;
        if (st->sample && o->sample_every > 0 && ls->step % o->sample_every == 0) loop_sample(o, st, ls->step);
    }
    progress_finish(p);
    if (!rc) rc = st->save(st->self, ls, e);
    if (!rc && st->sample) loop_sample(o, st, -1);
    if (!rc && run_interrupted)
        fprintf(stderr, "interrupted: saved %s at step %lld; continue with --resume\n", st->ckpt, ls->step);
    return rc;
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
    int rc = get_loop_state(&f, "i2v-stage1", ls, seed, e) || check_same_config(&f, yaml, e);
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
} Stage1Run;

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
}

static int stage1_loop_save(void *self, const LoopState *ls, I2vError *e) {
    Stage1Run *r = self;
    return stage1_save(r->s, r->ckpt, ls, r->seed, r->yaml, e);
}

static void stage1_loop_sample(void *self, const char *gif) {
    Stage1Run *r = self;
    stage1_sample_gif(r->s, r->eval, r->seed, gif);
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
    if (!o->resume && access(ckpt, F_OK) == 0) {
        setup_free(&setup);
        return err_set(e, "%s already exists: add --resume to continue that run, or choose another --out", ckpt);
    }
    uint64_t seed = o->seed;
    Stage1 s;
    if (stage1_init(&s, cfg, o->lpips, seed, e)) {
        setup_free(&setup);
        return -1;
    }
    LoopState ls = {0, 0, 0};
    if (o->resume && stage1_restore(&s, ckpt, setup.yaml, &ls, &seed, e)) {
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
    int rc = dataset_open(&train, &dc, DATA_TRAIN, seed, e);
    if (!rc && (rc = dataset_open(&eval, &dc, DATA_EVAL, seed, e))) dataset_close(&train);
    if (rc) {
        stage1_free(&s);
        setup_free(&setup);
        return -1;
    }
    DataLoader L;
    if (loader_init(&L, &train, (size_t)cfg->Training.bs, 1, 1, 1, seed, e)) {
        dataset_close(&train);
        dataset_close(&eval);
        stage1_free(&s);
        setup_free(&setup);
        return -1;
    }
    loader_seek(&L, (uint64_t)ls.epoch, (size_t)ls.position);
    write_text(cfg_path, setup.yaml, e);
    long total = o->max_steps > 0 ? o->max_steps : (long)L.nbatches * cfg->Training.n_epochs;
    Progress p;
    if (progress_init(&p, "stage 1", total, 11, stage1_series, csv, o->resume, e)) {
        rc = -1;
        goto done;
    }
    p.time_limit = o->max_seconds;
    int T = cfg->Data.sequence_length, S = cfg->Data.img_size, bs = cfg->Training.bs;
    Stage1Run r = {&s, &eval, seed, ckpt, setup.yaml, o->eval_batches, tensor_alloc(5, DIMS(bs, T, 3, S, S))};
    LoopStage st = {"stage 1", ckpt, 11, stage1_series, &r, stage1_loop_step, stage1_loop_end_epoch, stage1_loop_save,
                    stage1_loop_sample, "samples_stage1"};
    rc = train_loop(o, &st, &L, cfg->Training.n_epochs, &p, &ls, e);
    tensor_free(r.seq);
done:
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
    int rc = get_loop_state(&f, "i2v-cond-ae", ls, seed, e) || check_same_config(&f, yaml, e);
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

int train_cond_ae(const TrainOpts *o, I2vError *e) {
    StageSetup setup;
    if (setup_load(STAGE_AE, o->config, o->noverrides, o->overrides, &setup, e)) return -1;
    CondAeConfig *cfg = &setup.ae;
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
    if (!o->resume && access(ckpt, F_OK) == 0) {
        setup_free(&setup);
        return err_set(e, "%s already exists: add --resume to continue that run, or choose another --out", ckpt);
    }
    uint64_t seed = o->seed;
    CondAe s;
    if (cond_ae_init(&s, cfg, o->lpips, seed, e)) {
        setup_free(&setup);
        return -1;
    }
    LoopState ls = {0, 0, 0};
    int rc = 0;
    if (o->resume && cae_restore(&s, ckpt, setup.yaml, &ls, &seed, e)) {
        cond_ae_free(&s);
        setup_free(&setup);
        return -1;
    }
    Dataset train, eval;
    if (dataset_open(&train, &setup.data, DATA_TRAIN, seed, e)) {
        cond_ae_free(&s);
        setup_free(&setup);
        return -1;
    }
    if (dataset_open(&eval, &setup.data, DATA_EVAL, seed, e)) {
        dataset_close(&train);
        cond_ae_free(&s);
        setup_free(&setup);
        return -1;
    }
    DataLoader L;
    if ((rc = loader_init(&L, &train, (size_t)cfg->Training.bs, 1, 1, 1, seed, e))) goto done;
    loader_seek(&L, (uint64_t)ls.epoch, (size_t)ls.position);
    write_text(cfg_path, setup.yaml, e);
    long total = o->max_steps > 0 ? o->max_steps : (long)L.nbatches * cfg->Training.n_epochs;
    Progress p;
    if ((rc = progress_init(&p, "cond AE", total, 7, cae_series, csv, o->resume, e))) goto done_loader;
    p.time_limit = o->max_seconds;
    int S = cfg->Data.img_size, bs = cfg->Training.bs;
    CaeRun r = {&s, &eval, seed, ckpt, setup.yaml, tensor_alloc(4, DIMS(bs, 3, S, S)), 0};
    LoopStage st = {"cond AE", ckpt, 7, cae_series, &r, cae_loop_step, cae_loop_end_epoch, cae_loop_save,
                    cae_loop_sample, "samples_cond_ae"};
    rc = train_loop(o, &st, &L, cfg->Training.n_epochs, &p, &ls, e);
    tensor_free(r.x);
done_loader:
    loader_free(&L);
done:
    dataset_close(&train);
    dataset_close(&eval);
    cond_ae_free(&s);
    setup_free(&setup);
    return rc;
}

/* ================================================================================================== */
/* stage 2b: the cINN (stage2_cINN/main.py)                                                              */
/* ================================================================================================== */

static const char *const cinn_series[] = {"loss", "nll", "logdet", "bits_per_dim"};

/* The frozen encoders of stages 1 and 2a, and the latents of a batch: z sampled from the stage-1
 * posterior (as the official training does), the condition from the start frame (+ end point). */
static void batch_latents(Model *m, const DataBatch *b, Rng *noise, real *z, real *cond) {
    int n = (int)b->n, T = (int)b->frames, S = (int)b->size;
    model_encode(m, b->video, n, T, noise, z);
    size_t clip = (size_t)T * 3 * S * S, frame = (size_t)3 * S * S;
    real *x0 = xmalloc((size_t)n * frame * sizeof(real));
    for (int i = 0; i < n; i++) memcpy(x0 + (size_t)i * frame, b->video + (size_t)i * clip, frame * sizeof(real));
    model_condition(m, x0, b->control, n, cond);
    free(x0);
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
    int rc = get_loop_state(&file, "i2v-cinn", ls, seed, e) || check_same_config(&file, yaml, e) ||
             st_load_paramset(&file, &f->ps, &o, e) < 0 || ckpt_load_adam(&file, "flow", opt, pre, e) ||
             ckpt_load_steplr(&file, "flow", sched, e) || ckpt_load_rng(&file, "noise", noise, e);
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
    double total = 0;
    long count = 0;
    const DataBatch *b;
    int nb = 0;
    while ((max_batches <= 0 || nb < max_batches) && loader_next(&L, &b, &e) == 0) {
        batch_latents(m, b, &noise, z, cond);
        FlowStepStats st;
        flow_eval_batch(c, f, z, cond, (int)b->n, &st);
        total += st.loss * (double)b->n;
        count += (long)b->n;
        nb++;
    }
    free(z);
    free(cond);
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
    real *z, *cond;      /* a batch's latents and conditions */
} CinnRun;

static void cinn_loop_step(void *self, const DataBatch *b, int epoch, double *v) {
    (void)epoch;
    CinnRun *r = self;
    batch_latents(r->m, b, r->noise, r->z, r->cond);
    FlowStepStats st;
    flow_train_step(r->c, &r->m->flow, r->opt, r->z, r->cond, (int)b->n, &st);
    double vals[4] = {st.loss, st.nll, st.logdet, st.bits_per_dim};
    memcpy(v, vals, sizeof vals);
}

static void cinn_loop_end_epoch(void *self, int epoch) {
    CinnRun *r = self;
    double val = cinn_validate(r->m, r->c, r->eval, r->seed, r->bs_eval, *r->noise, r->eval_batches);
    fprintf(stderr, "cINN epoch %d: validation loss %.4f nats (%.4f bits/dim), lr %.3g\n", epoch, val,
            flow_bits_per_dim(val, r->m->flow.cfg.z_dim), r->opt->lr);
    steplr_step(r->sched, r->opt);
}

static int cinn_loop_save(void *self, const LoopState *ls, I2vError *e) {
    CinnRun *r = self;
    return cinn_save(&r->m->flow, r->opt, r->sched, r->noise, r->ckpt, ls, r->seed, r->yaml, e);
}

int train_cinn(const TrainOpts *o, I2vError *e) {
    StageSetup setup;
    if (setup_load(STAGE2, o->config, o->noverrides, o->overrides, &setup, e)) return -1;
    Stage2Config *cfg = &setup.s2;
    const char *s1dir = o->stage1_dir ? o->stage1_dir : o->out, *aedir = o->ae_dir ? o->ae_dir : o->out;
    const char *file = o->cinn_file ? o->cinn_file : CINN_FILE, *cfgname = o->cinn_config ? o->cinn_config : CINN_CONFIG;
    char ckpt[DATA_PATH_MAX], cfg_path[DATA_PATH_MAX], csv[DATA_PATH_MAX], csvname[256];
    snprintf(csvname, sizeof csvname, "%.*s_losses.csv", (int)(strlen(file) > 12 ? strlen(file) - 12 : strlen(file)),
             file);
    if (data_mkdirs(o->out, e) || path_in(ckpt, sizeof ckpt, o->out, file, e) ||
        path_in(cfg_path, sizeof cfg_path, o->out, cfgname, e) || path_in(csv, sizeof csv, o->out, csvname, e)) {
        setup_free(&setup);
        return -1;
    }
    if (!o->resume && access(ckpt, F_OK) == 0) {
        setup_free(&setup);
        return err_set(e, "%s already exists: add --resume to continue that run, or choose another --out", ckpt);
    }
    /* the frozen stage-1 encoder and conditioning encoder, from their folders */
    Model m;
    if (model_load(&m, s1dir, MODEL_ENC, NULL, NULL, e)) {
        setup_free(&setup);
        return -1;
    }
    Model mc;
    if (model_load(&mc, aedir, MODEL_COND, NULL, NULL, e)) {
        model_free(&m);
        setup_free(&setup);
        return -1;
    }
    /* one Model holds both encoders; the cond encoder moves over from mc */
    m.cond = mc.cond;
    m.has_cond = 1;
    m.ae = mc.ae;
    m.embed_dim = mc.embed_dim;
    mc.has_cond = 0;
    memset(&mc.ae, 0, sizeof mc.ae);
    model_free(&mc);
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
    if (o->resume) rc = cinn_restore(f, &opt, &sched, &noise, ckpt, setup.yaml, &ls, &seed, e);
    if (!rc) rc = dataset_open(&train, &setup.data, DATA_TRAIN, seed, e);
    if (!rc) {
        rc = dataset_open(&eval, &setup.data, DATA_EVAL, seed, e);
        if (rc) dataset_close(&train);
        else opened = 1;
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
        rc = progress_init(&p, "cINN", total, 4, cinn_series, csv, o->resume, e);
        p.time_limit = o->max_seconds;
    }
    Ctx c;
    ctx_init(&c);
    int bs = cfg->Training.bs;
    CinnRun r = {&m, &opt, &sched, &noise, &eval, seed, ckpt, setup.yaml, cfg->Training.bs_eval, o->eval_batches, &c,
                 xmalloc((size_t)bs * fc.z_dim * sizeof(real)), xmalloc((size_t)bs * f->cond_dim * sizeof(real))};
    LoopStage st = {"cINN", ckpt, 4, cinn_series, &r, cinn_loop_step, cinn_loop_end_epoch, cinn_loop_save, NULL, NULL};
    if (!rc) rc = train_loop(o, &st, &L, cfg->Training.n_epochs, &p, &ls, e);
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
