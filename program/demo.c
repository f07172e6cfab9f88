/* demo.c: `i2v demo`, which trains every stage on the synthetic set and shows what the model does (demo.h).
 *
 * What it is: the demo's world and configs, the training of the four networks (two pairs side by side),
 * the GIFs of samples, control and transfer, and the report of evaluate.c on held-out clips.
 * What it is not: a training loop (run.c) or a metric (evaluate.c, metrics.c).
 * Dimension legend: N clips, K samples per clip, T frames (F = T - 1 generated), S frame size (H = W = S).
 */
#include "program/demo.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "data.h"
#include "formats/image.h"
#include "kernels/gemm.h"
#include "program/evaluate.h"
#include "program/model.h"
#include "program/progress.h"
#include "program/run.h"
#include "program/setup.h"


void demo_world(DataConfig *c) {
    c->synth_distractors = 0;
    c->synth_occluder = 0;
    c->synth_texture = 0;
    c->synth_object_scale = 2.2;
    c->synth_speed_min = 1.5;
    c->synth_speed_max = 4;
}

/* The demo's configs: the synthetic set at 32 x 32 with 8 frames to predict, small widths everywhere. */
static void demo_configs(StageSetup *s1, StageSetup *ae, StageSetup *s2, StageSetup *s2c) {
    memset(s1, 0, sizeof *s1);
    s1->s1 = stage1_config_tiny();
    data_config_default(&s1->data);
    snprintf(s1->data.dataset, sizeof s1->data.dataset, "synthetic");
    s1->data.img_size = s1->s1.Data.img_size;
    s1->data.sequence_length = s1->s1.Data.sequence_length;
    s1->data.synth_train = 512;
    s1->data.synth_eval = 32;
    s1->data.synth_test = 64;
    demo_world(&s1->data);   /* 0.75 to 2 pixels per frame at 32x32 */
    s1->data.workers = 1;
    s1->s1.Training.bs = 8;
    s1->s1.Training.bs_eval = 8;
    s1->s1.Training.n_epochs = 1000;
    s1->s1.Training.lr = 1e-3;
    /* reconstruction and KL only: minutes are too few for the GAN terms to pay back their cost */
    s1->s1.Training.pretrain = 1000;
    s1->s1.Training.disc_in_warmup = 0;
    *ae = *s1;
    ae->ae = cond_ae_config_tiny();
    ae->data.sequence_length = 1;
    ae->data.img_size = ae->ae.Data.img_size;
    ae->ae.Training.n_epochs = 1000;
    ae->ae.Training.lr = 5e-4;
    *s2 = *s1;
    s2->s2 = stage2_config_bair();
    s2->s2.Flow.n_flows = 8;
    s2->s2.Flow.flow_mid_channels_factor = 8;
    s2->s2.Conditioning_Model.z_dim = ae->ae.AE.z_dim;
    s2->s2.Training.bs = 32;
    s2->s2.Training.bs_eval = 32;
    s2->s2.Training.lr = 1e-3;
    s2->s2.Training.step_size = 25;   /* epochs of 16 steps: the rate halves twice in the demo */
    s2->s2.Training.n_epochs = 1000;
    *s2c = *s2;
    s2c->s2.Training.control = 1;
    s2c->data.control = 1;
}

static int save_yaml(const char *dir, const char *name, StageKind kind, const StageSetup *s, char *path, size_t cap,
                     I2vError *e) {
    if (data_join(path, cap, e, "%s/%s", dir, name)) return -1;
    char *yaml = setup_to_yaml(kind, s);
    int rc = write_file_bytes(path, (const uint8_t *)yaml, strlen(yaml), e);
    free(yaml);
    return rc;
}

/* rows: start frames of test clips; columns: the real clip, then K sampled futures */
static int demo_samples_gif(const char *dir, Dataset *ds, uint64_t seed, const char *path, int rows, int K,
                            I2vError *e) {
    Model m;
    if (model_load(&m, dir, MODEL_GEN | MODEL_FLOW, NULL, NULL, e)) return -1;
    int S = m.size, T = ds->cfg.sequence_length, F = T - 1, Z = m.z_dim;
    size_t frame = (size_t)3 * S * S;
    real *out = xmalloc((size_t)rows * (K + 1) * F * frame * sizeof(real)), *clip = xmalloc((size_t)T * frame * sizeof(real));
    real *x0 = xmalloc((size_t)K * frame * sizeof(real)), *z = xmalloc((size_t)K * Z * sizeof(real));
    real *cond = xmalloc((size_t)K * m.flow.cond_dim * sizeof(real));
    double ctl[3 * 64] = {0};
    Rng rng;
    rng_seed(&rng, seed);
    int rc = 0;
    for (int r = 0; r < rows && !rc; r++) {
        ClipInfo info;
        if ((rc = dataset_get(ds, seed, 0, (size_t)r, clip, &info, e))) break;
        real *row = out + (size_t)r * (K + 1) * F * frame;
        memcpy(row, clip + frame, (size_t)F * frame * sizeof(real));
        for (int k = 0; k < K; k++) memcpy(x0 + (size_t)k * frame, clip, frame * sizeof(real));
        model_condition(&m, x0, ctl, K, cond);
        model_invert(&m, cond, K, NULL, 1.0, &rng, z);
        model_decode(&m, x0, z, K, F, row + (size_t)F * frame);
    }
    if (!rc) rc = write_video_gif(path, out, (size_t)rows * (K + 1), (size_t)F, (size_t)S, (size_t)S, (size_t)K + 1, e);
    free(out);
    free(clip);
    free(x0);
    free(z);
    free(cond);
    model_free(&m);
    return rc;
}

/* one start frame driven to each of four end points (rows), K samples each */
static int demo_control_gif(const char *dir, Dataset *ds, uint64_t seed, const char *path, int K, I2vError *e) {
    Model m;
    if (model_load(&m, dir, MODEL_GEN | MODEL_FLOW, "cinn_control.safetensors", "config_stage2_control.yaml", e))
        return -1;
    int S = m.size, T = ds->cfg.sequence_length, F = T - 1, Z = m.z_dim, rows = 4, n = rows * K;
    size_t frame = (size_t)3 * S * S;
    real *clip = xmalloc((size_t)T * frame * sizeof(real)), *x0 = xmalloc((size_t)n * frame * sizeof(real));
    real *z = xmalloc((size_t)n * Z * sizeof(real)), *cond = xmalloc((size_t)n * m.flow.cond_dim * sizeof(real));
    real *video = xmalloc((size_t)n * F * frame * sizeof(real));
    double *ctl = xmalloc((size_t)n * 3 * sizeof(double));
    const double ends[4][2] = {{0.2, 0.2}, {0.8, 0.2}, {0.2, 0.8}, {0.8, 0.8}};
    ClipInfo info;
    int rc = dataset_get(ds, seed, 0, 0, clip, &info, e);
    Rng rng;
    rng_seed(&rng, seed + 1);
    if (!rc) {
        for (int i = 0; i < n; i++) {
            memcpy(x0 + (size_t)i * frame, clip, frame * sizeof(real));
            ctl[3 * i] = ends[i / K][0];
            ctl[3 * i + 1] = ends[i / K][1];
            ctl[3 * i + 2] = info.control[2];   /* the clip's own speed */
        }
        model_condition(&m, x0, ctl, n, cond);
        model_invert(&m, cond, n, NULL, 1.0, &rng, z);
        model_decode(&m, x0, z, n, F, video);
        rc = write_video_gif(path, video, (size_t)n, (size_t)F, (size_t)S, (size_t)S, (size_t)K, e);
    }
    free(clip);
    free(x0);
    free(z);
    free(cond);
    free(video);
    free(ctl);
    model_free(&m);
    return rc;
}

/* the motion of a test clip transferred to three other start frames: [driving | transferred x3] */
static int demo_transfer_gif(const char *dir, Dataset *ds, uint64_t seed, const char *path, I2vError *e) {
    Model m;
    if (model_load(&m, dir, MODEL_ALL, NULL, NULL, e)) return -1;
    int S = m.size, T = ds->cfg.sequence_length, F = T - 1, Z = m.z_dim, n = 3;
    size_t frame = (size_t)3 * S * S;
    real *clip = xmalloc((size_t)T * frame * sizeof(real)), *x0 = xmalloc((size_t)n * frame * sizeof(real));
    real *z = xmalloc((size_t)n * Z * sizeof(real)), *nu = xmalloc((size_t)n * Z * sizeof(real));
    real *cond = xmalloc((size_t)n * m.flow.cond_dim * sizeof(real)), *other = xmalloc((size_t)T * frame * sizeof(real));
    real *out = xmalloc((size_t)(n + 1) * F * frame * sizeof(real));
    double ctl[9] = {0};
    ClipInfo info;
    int rc = dataset_get(ds, seed, 0, 5, clip, &info, e);
    for (int i = 0; i < n && !rc; i++) {
        rc = dataset_get(ds, seed, 0, (size_t)(6 + i), other, &info, e);
        memcpy(x0 + (size_t)i * frame, other, frame * sizeof(real));
    }
    if (!rc) {
        model_encode(&m, clip, 1, T, NULL, z);
        model_condition(&m, clip, ctl, 1, cond);
        model_residual(&m, z, cond, 1, nu);
        for (int i = 1; i < n; i++) memcpy(nu + (size_t)i * Z, nu, (size_t)Z * sizeof(real));
        model_condition(&m, x0, ctl, n, cond);
        model_invert(&m, cond, n, nu, 1.0, NULL, z);
        memcpy(out, clip + frame, (size_t)F * frame * sizeof(real));
        model_decode(&m, x0, z, n, F, out + (size_t)F * frame);
        rc = write_video_gif(path, out, (size_t)n + 1, (size_t)F, (size_t)S, (size_t)S, (size_t)n + 1, e);
    }
    free(clip);
    free(x0);
    free(z);
    free(nu);
    free(cond);
    free(other);
    free(out);
    model_free(&m);
    return rc;
}

/* Trains two independent stages: side by side, one thread each, in two processes (fork) when the pool
 * has two threads or more; otherwise one after the other with every thread. `a` runs in the child. */
typedef int (*TrainFn)(const TrainOpts *o, I2vError *e);
static int train_side_by_side(const char *what_a, TrainFn a, const TrainOpts *ta, const char *what_b, TrainFn b,
                              const TrainOpts *tb, I2vError *e) {
    int threads = threads_count();
    if (threads < 2) {
        fprintf(stderr, "demo: %s, %.0f s\n", what_b, tb->max_seconds);
        if (b(tb, e)) return -1;
        fprintf(stderr, "demo: %s, %.0f s\n", what_a, ta->max_seconds);
        return a(ta, e);
    }
    fprintf(stderr, "demo: %s and %s side by side, one thread each, %.0f s\n", what_b, what_a, tb->max_seconds);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) return err_set(e, "cannot start a second process for the %s (fork: %s)", what_a, strerror(errno));
    threads_set(1);
    progress_force_plain(30);   /* two runs share the terminal: plain lines, no redrawn bar */
    if (pid == 0) {
        I2vError ce;
        int rc = a(ta, &ce);
        if (rc) fprintf(stderr, "i2v demo: %s: %s\n", what_a, ce.msg);
        fflush(stdout);
        fflush(stderr);
        _exit(rc ? 1 : 0);
    }
    int rc = b(tb, e), status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    threads_set(threads);
    progress_force_plain(0);
    if (rc) return -1;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return err_set(e, "the %s (trained in a second process) failed: its message is above", what_a);
    return 0;
}

int run_demo(const DemoOpts *o, I2vError *e) {
    double t0 = progress_now(), budget = (o->minutes > 0 ? o->minutes : DEMO_MINUTES) * 60;
    StageSetup s1, ae, s2, s2c;
    demo_configs(&s1, &ae, &s2, &s2c);
    char cdir[DATA_PATH_MAX], p1[DATA_PATH_MAX], pa[DATA_PATH_MAX], p2[DATA_PATH_MAX], p2c[DATA_PATH_MAX];
    if (data_mkdirs(o->out, e) || data_join(cdir, sizeof cdir, e, "%s/demo_configs", o->out) || data_mkdirs(cdir, e) ||
        save_yaml(cdir, "stage1.yaml", STAGE1, &s1, p1, sizeof p1, e) ||
        save_yaml(cdir, "cond_ae.yaml", STAGE_AE, &ae, pa, sizeof pa, e) ||
        save_yaml(cdir, "cinn.yaml", STAGE2, &s2, p2, sizeof p2, e) ||
        save_yaml(cdir, "cinn_control.yaml", STAGE2, &s2c, p2c, sizeof p2c, e))
        return -1;
    /* The budget. Stage 1 and the conditioning AE do not depend on each other, nor do the two cINNs: each
     * pair trains side by side, one thread each (these small networks use one core better than two). Stage 1
     * needs most of the time; the cINNs work on vectors and learn fast (measured: 22% of the budget instead of
     * 16% took the held-out NLL from -6.9 to -9.3 nats and the motion distance from 0.016 to 0.006). */
    const double share_ae_phase = 0.72, share_cinn_phase = 0.22;
    TrainOpts t1, ta, t2, t2c;
    train_opts_default(&t1);
    t1.seed = o->seed;
    t1.out = o->out;
    t1.eval_batches = 1;
    ta = t2 = t2c = t1;
    t1.config = p1;
    ta.config = pa;
    t2.config = p2;
    t2c.config = p2c;
    t2c.cinn_file = "cinn_control.safetensors";
    t2c.cinn_config = "config_stage2_control.yaml";
    t1.max_seconds = ta.max_seconds = share_ae_phase * budget;
    t2.max_seconds = t2c.max_seconds = share_cinn_phase * budget;
    if (train_side_by_side("conditioning autoencoder", train_cond_ae, &ta, "stage 1 (video autoencoder)", train_stage1,
                           &t1, e) ||
        train_side_by_side("cINN with end-point control", train_cinn, &t2c, "cINN", train_cinn, &t2, e))
        return -1;
    /* pictures */
    Dataset test;
    if (dataset_open(&test, &s2.data, DATA_TEST, o->seed, e)) return -1;
    char gs[DATA_PATH_MAX], gc[DATA_PATH_MAX], gt[DATA_PATH_MAX], rep[DATA_PATH_MAX];
    int rc = data_join(gs, sizeof gs, e, "%s/samples.gif", o->out) || data_join(gc, sizeof gc, e, "%s/control.gif", o->out) ||
             data_join(gt, sizeof gt, e, "%s/transfer.gif", o->out) || data_join(rep, sizeof rep, e, "%s/report.txt", o->out);
    if (!rc) rc = demo_samples_gif(o->out, &test, o->seed, gs, 5, 4, e);
    if (!rc) rc = demo_control_gif(o->out, &test, o->seed, gc, 4, e);
    if (!rc) rc = demo_transfer_gif(o->out, &test, o->seed, gt, e);
    dataset_close(&test);
    if (rc) return -1;
    EvalOpts eo = {o->out, "cinn_control.safetensors", "config_stage2_control.yaml", 32, 4, o->seed, DATA_TEST};
    EvalReport r;
    if (evaluate_model(&eo, &r, e)) return -1;
    r.seconds = progress_now() - t0;
    printf("\ndemo report (also in %s):\n", rep);
    if (report_write(&r, rep, e)) return -1;
    printf("\nfiles in %s:\n"
           "  samples.gif   rows: test clips; first column the real clip, then 4 sampled futures of its start frame\n"
           "  control.gif   one start frame driven to four end points (rows: top-left, top-right, bottom-left,\n"
           "                bottom-right), 4 samples each\n"
           "  transfer.gif  a test clip's motion (first column) transferred to three other start frames\n"
           "  report.txt    the figures above; *_losses.csv/.svg the training curves; samples_*.gif reconstructions\n",
           o->out);
    return 0;
}
