/* demo.c: `i2v demo`, which trains every stage on the synthetic set and shows what the model does (demo.h).
 *
 * What it is: the demo's world and configs, the training of the four networks (the conditioning AE and
 * stage 1 in turn on two threads, then the two cINNs side by side),
 * the GIFs of samples, control and transfer, and the report of evaluate.c on held-out clips.
 * What it is not: a training loop (run.c) or a metric (evaluate.c, metrics.c).
 * Dimension legend: N clips, K samples per clip, T frames (F = T - 1 generated), S frame size (H = W = S).
 */
#include "program/demo.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "data.h"
#include "formats/files.h"
#include "kernels/threads.h"
#include "program/evaluate.h"
#include "program/model.h"
#include "program/progress.h"
#include "program/run.h"
#include "program/setup.h"
#include "program/visual.h"


void demo_world(DataConfig *c) {
    c->synth_distractors = 0;
    c->synth_occluder = 0;
    c->synth_texture = 0;
    c->synth_object_scale = 2.2;
    c->synth_speed_min = 1.5;
    c->synth_speed_max = 4;
}

/* The demo's fixed work at --scale 1: each stage runs a number of epochs of DEMO_EPOCH_CLIPS training clips
 * (fresh ones every epoch), stage 1 of DEMO_STAGE1_EPOCH_CLIPS: it sets the demo's time (the conditioning AE
 * before it and the cINNs after it take a minute or two each) and the samples' sharpness.
 * --scale F makes every epoch F times as long, so every schedule that counts epochs (the warm-up, the
 * learning-rate decay) keeps its shape; epochs are few and long, so that the work done at each epoch's end
 * (a validation batch, a checkpoint) stays small even at a small scale. */
#define DEMO_EPOCH_CLIPS 1024
#define DEMO_STAGE1_EPOCH_CLIPS 1344
#define DEMO_STAGE1_EPOCHS 10
#define DEMO_STAGE1_WARMUP 10    /* epochs of reconstruction and KL only before the GAN terms join */
#define DEMO_AE_EPOCHS 10
#define DEMO_CINN_EPOCHS 20

/* clips per epoch at this scale: a whole number of batches, at least one */
static int epoch_clips(double scale, int clips, int bs) {
    double batches = scale * clips / bs;
    return bs * (batches < 1 ? 1 : (int)lround(batches));
}

/* The demo's configs: the synthetic set at 32 x 32 with 8 frames to predict, small widths everywhere. */
static void demo_configs(double scale, StageSetup *s1, StageSetup *cae, StageSetup *s2, StageSetup *s2c) {
    memset(s1, 0, sizeof *s1);
    s1->s1 = stage1_config_tiny();
    data_config_default(&s1->data);
    snprintf(s1->data.dataset, sizeof s1->data.dataset, "synthetic");
    s1->data.img_size = s1->s1.Data.img_size;
    s1->data.sequence_length = s1->s1.Data.sequence_length;
    s1->data.synth_eval = 32;
    s1->data.synth_test = 64;
    demo_world(&s1->data);   /* 0.75 to 2 pixels per frame at 32x32 */
    s1->data.workers = 1;
    s1->s1.Training.bs = 8;
    s1->s1.Training.bs_eval = 8;
    s1->data.synth_train = epoch_clips(scale, DEMO_STAGE1_EPOCH_CLIPS, s1->s1.Training.bs);
    s1->s1.Training.n_epochs = DEMO_STAGE1_EPOCHS;
    s1->s1.Training.lr = 1e-3;
    s1->s1.Training.lr_gamma = 0.96;
    s1->s1.Training.pretrain = DEMO_STAGE1_WARMUP;
    s1->s1.Training.disc_in_warmup = 0;
    *cae = *s1;
    cae->cond_ae = cond_ae_config_tiny();
    cae->data.sequence_length = 1;
    cae->data.img_size = cae->cond_ae.Data.img_size;
    cae->data.synth_train = epoch_clips(scale, DEMO_EPOCH_CLIPS, cae->cond_ae.Training.bs);
    cae->cond_ae.Training.n_epochs = DEMO_AE_EPOCHS;
    cae->cond_ae.Training.lr = 5e-4;
    *s2 = *s1;
    s2->s2 = stage2_config_bair();
    s2->s2.Flow.n_flows = 8;
    s2->s2.Flow.flow_mid_channels_factor = 8;
    s2->s2.Conditioning_Model.z_dim = cae->cond_ae.AE.z_dim;
    s2->s2.Training.bs = 32;
    s2->s2.Training.bs_eval = 32;
    s2->data.synth_train = epoch_clips(scale, DEMO_EPOCH_CLIPS, s2->s2.Training.bs);
    s2->s2.Training.lr = 1e-3;
    s2->s2.Training.step_size = 8;   /* the rate halves after epochs 8 and 16 */
    s2->s2.Training.n_epochs = DEMO_CINN_EPOCHS;
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

/* ---- pictures ---------------------------------------------------------------------------------------------- */

/* samples.gif and samples_last.png. rows: test clips; columns: x0 held still, the real video, then K sampled
 * futures of x0 (uncontrolled cINN). */
static int demo_samples(const char *dir, Dataset *ds, uint64_t seed, int rows, int K, I2vError *e) {
    Model m;
    if (model_load(&m, dir, MODEL_GEN | MODEL_FLOW, NULL, NULL, e)) return -1;
    int S = m.size, T = ds->cfg.sequence_length, F = T - 1, Z = m.z_dim, C = K + 1;
    size_t frame = (size_t)3 * S * S, video = (size_t)F * frame;
    real *x0 = xmalloc((size_t)rows * frame * sizeof(real)), *videos = xmalloc((size_t)rows * C * video * sizeof(real));
    real *clip = xmalloc((size_t)T * frame * sizeof(real)), *z = xmalloc((size_t)K * Z * sizeof(real));
    real *x0k = xmalloc((size_t)K * frame * sizeof(real)), *cond = xmalloc((size_t)K * m.flow.cond_dim * sizeof(real));
    double *ctl = xcalloc((size_t)K * 3, sizeof(double));
    Rng rng;
    rng_seed(&rng, seed);
    int rc = 0;
    for (int r = 0; r < rows && !rc; r++) {
        ClipInfo info;
        if ((rc = dataset_get(ds, seed, 0, (size_t)r, clip, &info, e))) break;
        memcpy(x0 + (size_t)r * frame, clip, frame * sizeof(real));
        real *row = videos + (size_t)r * C * video;
        memcpy(row, clip + frame, video * sizeof(real));
        for (int k = 0; k < K; k++) memcpy(x0k + (size_t)k * frame, clip, frame * sizeof(real));
        model_condition(&m, x0k, ctl, K, cond);
        model_invert(&m, cond, K, NULL, 1.0, &rng, z);
        model_decode(&m, x0k, z, K, F, row + video);
    }
    char path[DATA_PATH_MAX];
    real *tiles = rc ? NULL : visual_with_x0(x0, videos, rows, C, F, S);
    real *last = rc ? NULL : visual_last_frames(tiles, rows * (C + 1), F, S);
    int zoom = visual_zoom(S);
    if (!rc) rc = data_join(path, sizeof path, e, "%s/samples.gif", dir) || visual_gif(path, tiles, rows, C + 1, F, S, zoom, NULL, e);
    if (!rc) rc = data_join(path, sizeof path, e, "%s/samples_last.png", dir) || visual_png(path, last, rows, C + 1, S, zoom, NULL, e);
    free(tiles);
    free(last);
    free(x0);
    free(videos);
    free(clip);
    free(z);
    free(x0k);
    free(cond);
    free(ctl);
    model_free(&m);
    return rc;
}

/* control.gif: one start frame (first column, its four targets marked) driven to four end points near the
 * corners (rows), K samples each with the target marked. */
static int demo_control(const char *dir, Dataset *ds, uint64_t seed, int K, I2vError *e) {
    Model m;
    if (model_load(&m, dir, MODEL_GEN | MODEL_FLOW, "cinn_control.safetensors", "config_stage2_control.yaml", e))
        return -1;
    enum { ROWS = 4 };
    int S = m.size, T = ds->cfg.sequence_length, F = T - 1, Z = m.z_dim, n = ROWS * K;
    size_t frame = (size_t)3 * S * S;
    real *clip = xmalloc((size_t)T * frame * sizeof(real)), *x0 = xmalloc((size_t)n * frame * sizeof(real));
    real *z = xmalloc((size_t)n * Z * sizeof(real)), *cond = xmalloc((size_t)n * m.flow.cond_dim * sizeof(real));
    real *video = xmalloc((size_t)n * F * frame * sizeof(real)), *x0r = xmalloc((size_t)ROWS * frame * sizeof(real));
    double *ctl = xmalloc((size_t)n * 3 * sizeof(double)), *marks = xmalloc((size_t)ROWS * (K + 1) * 2 * sizeof(double));
    const double ends[ROWS][2] = {{0.2, 0.2}, {0.8, 0.2}, {0.2, 0.8}, {0.8, 0.8}};
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
        for (int r = 0; r < ROWS; r++) {
            memcpy(x0r + (size_t)r * frame, clip, frame * sizeof(real));
            for (int k = 0; k <= K; k++) {   /* the control's position is (x / S, y / S) */
                marks[2 * (r * (K + 1) + k)] = ends[r][0] * S;
                marks[2 * (r * (K + 1) + k) + 1] = ends[r][1] * S;
            }
        }
        model_condition(&m, x0, ctl, n, cond);
        model_invert(&m, cond, n, NULL, 1.0, &rng, z);
        model_decode(&m, x0, z, n, F, video);
        real *tiles = visual_with_x0(x0r, video, ROWS, K, F, S);
        char path[DATA_PATH_MAX];
        rc = data_join(path, sizeof path, e, "%s/control.gif", dir) ||
             visual_gif(path, tiles, ROWS, K + 1, F, S, visual_zoom(S), marks, e);
        free(tiles);
    }
    free(clip);
    free(x0);
    free(z);
    free(cond);
    free(video);
    free(x0r);
    free(ctl);
    free(marks);
    model_free(&m);
    return rc;
}

/* transfer.gif: the motion of a test clip (first column) transferred to three other start frames */
static int demo_transfer(const char *dir, Dataset *ds, uint64_t seed, I2vError *e) {
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
        char path[DATA_PATH_MAX];
        rc = data_join(path, sizeof path, e, "%s/transfer.gif", dir) ||
             visual_gif(path, out, 1, n + 1, F, S, visual_zoom(S), NULL, e);
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

/* Trains two independent stages side by side in two processes (fork), one thread each, whatever the number
 * of cores, so the numbers never depend on the machine. `a` runs in the child. */
typedef int (*TrainFn)(const TrainOpts *o, I2vError *e);
static int train_side_by_side(const char *what_a, TrainFn a, const TrainOpts *ta, const char *what_b, TrainFn b,
                              const TrainOpts *tb, I2vError *e) {
    fprintf(stderr, "demo: %s and %s side by side, one thread each\n", what_b, what_a);
    double t0 = progress_now();
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
        _exit(rc ? 1 : run_interrupted ? 128 + run_interrupted : 0);
    }
    int rc = b(tb, e), status = 0;
    if (run_interrupted) kill(pid, run_interrupted);   /* a signal to this process only: the child saves and stops too */
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    progress_force_plain(0);
    if (rc) return -1;
    if (WIFEXITED(status) && WEXITSTATUS(status) > 128) run_interrupted = WEXITSTATUS(status) - 128;
    else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return err_set(e, "the %s (trained in a second process) failed: its message is above", what_a);
    fprintf(stderr, "demo: %s and %s done in %.0f s\n", what_b, what_a, progress_now() - t0);
    return 0;
}

/* ---- index.html: the report and the pictures in a browser (no scripts, nothing from the network) --------- */

typedef struct Text {
    char *s;
    size_t n, cap;
} Text;

static void add(Text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(Text *t, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(t->s + t->n, t->cap - t->n, fmt, ap);
        va_end(ap);
        I2V_ASSERT(k >= 0, "index.html: formatting failed");
        if ((size_t)k < t->cap - t->n) {
            t->n += (size_t)k;
            return;
        }
        t->cap = 2 * t->cap + (size_t)k;
        t->s = realloc(t->s, t->cap);
        I2V_ASSERT(t->s, "index.html: out of memory for %zu bytes", t->cap);
    }
}

static void row(Text *t, const char *key, double value, const char *format, const char *meaning) {
    char v[64];
    snprintf(v, sizeof v, format, value);
    add(t, "<tr><td><code>%s</code></td><td class=\"num\">%s</td><td>%s</td></tr>\n", key, v, meaning);
}

static void figure(Text *t, const char *file, const char *caption) {
    add(t, "<figure><img src=\"%s\" alt=\"%s\"><figcaption>%s</figcaption></figure>\n", file, file, caption);
}

static int demo_index(const char *dir, const EvalReport *r, double scale, I2vError *e) {
    Text t = {xmalloc(4096), 0, 4096};
    add(&t, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>i2v demo</title>\n<style>\n"
            "body { font-family: sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }\n"
            "img { image-rendering: pixelated; border: 1px solid #ccc; max-width: 100%%; }\n"
            "figure { margin: 1.5em 0; } figcaption { color: #555; margin-top: 0.3em; }\n"
            "table { border-collapse: collapse; } td, th { border-bottom: 1px solid #ddd; padding: 0.25em 0.8em; "
            "text-align: left; vertical-align: top; }\n"
            "td.num { text-align: right; font-family: monospace; } .curves img { width: 48%%; }\n"
            "</style>\n</head>\n<body>\n<h1>i2v demo</h1>\n"
            "<p>Every stage of <em>Stochastic Image-to-Video Synthesis using cINNs</em> (Dorkenwald et al., CVPR 2021), "
            "trained from scratch on synthetic 32 &times; 32 videos of one object moving at a random speed in a random "
            "direction (scale %g). Figures on %d held-out clips, %d sampled videos each.</p>\n",
        scale, r->clips, r->samples);
    add(&t, "<h2>Report</h2>\n<table>\n<tr><th>key</th><th>value</th><th>what it says</th></tr>\n");
    row(&t, "recon_psnr_db", r->recon_psnr_db, "%.2f", "stage 1: held-out clips encoded and decoded again (dB)");
    row(&t, "repeat_x0_psnr_db", r->repeat_x0_psnr_db, "%.2f", "the same for a video that repeats its start frame");
    row(&t, "recon_shape_iou", r->recon_shape_iou, "%.3f", "stage 1: shape_iou (below) of the reconstructions, the "
        "most the samples can keep");
    row(&t, "recon_colour_error", r->recon_colour_error, "%.3f", "stage 1: colour_error (below) of the reconstructions");
    row(&t, "test_nll", r->test_nll, "%.3f", "the cINN: negative log-likelihood of held-out latents (nats)");
    row(&t, "motion_distance", r->motion_distance, "%.4f",
        "energy distance between the end displacements of sampled and of real videos (0: the same distribution)");
    row(&t, "motion_distance_static", r->motion_distance_static, "%.4f", "the same for videos that never move");
    row(&t, "motion_distance_truth", r->motion_distance_truth, "%.4f",
        "the same for a fresh sample of real videos: what a perfect model scores");
    row(&t, "sample_speed_px", r->sample_speed_px, "%.2f", "median speed of the sampled objects (pixels per frame)");
    row(&t, "true_speed_px", r->true_speed_px, "%.2f", "the same for real videos");
    row(&t, "shape_iou", r->shape_iou, "%.3f", "sampled last frames: overlap of the object with the start frame's "
        "object moved onto it (1: the shape is kept)");
    row(&t, "shape_iou_truth", r->shape_iou_truth, "%.3f", "the same for the real last frames");
    row(&t, "colour_error", r->colour_error, "%.3f", "sampled last frames: distance of the object's colour from its "
        "colour in the start frame (RGB in [-1, 1])");
    row(&t, "colour_error_truth", r->colour_error_truth, "%.3f", "the same for the real last frames");
    row(&t, "endpoint_error_uncontrolled_px", r->endpoint_error_uncontrolled_px, "%.2f",
        "distance of an uncontrolled sample's end point from the real clip's (pixels)");
    row(&t, "endpoint_error_px", r->endpoint_error_px, "%.2f",
        "the same for the cINN with end-point control, asked for the real clip's end point");
    row(&t, "seconds", r->seconds, "%.0f", "the whole demo, training included");
    add(&t, "</table>\n<h2>Samples</h2>\n");
    figure(&t, "samples.gif", "Rows: held-out clips. First column the start frame x0, second the real video, then four "
           "videos sampled from x0 alone: nu ~ N(0, I), z = cINN<sup>-1</sup>(nu | x0), video = G(x0, z).");
    figure(&t, "samples_last.png", "The last frames of the videos above, in the same places.");
    figure(&t, "control.gif", "End-point control: one start frame (first column) driven to four targets near the "
           "corners (rows, marked with a cross), four samples each.");
    figure(&t, "transfer.gif", "Motion transfer: the motion of a held-out clip (first column) given to three other "
           "start frames.");
    add(&t, "<h2>Training curves</h2>\n<div class=\"curves\">\n");
    const char *curves[] = {"stage1_losses.svg", "cond_ae_losses.svg", "cinn_losses.svg", "cinn_control_losses.svg"};
    for (int i = 0; i < 4; i++) add(&t, "<img src=\"%s\" alt=\"%s\">\n", curves[i], curves[i]);
    add(&t, "</div>\n<p>The numbers behind the curves are in the <code>*_losses.csv</code> files beside this page; "
            "<code>report.txt</code> holds the report.</p>\n</body>\n</html>\n");
    char path[DATA_PATH_MAX];
    int rc = data_join(path, sizeof path, e, "%s/index.html", dir) ||
             write_file_bytes(path, (const uint8_t *)t.s, t.n, e);
    free(t.s);
    return rc;
}

/* ---- the demo ---------------------------------------------------------------------------------------------- */

/* fixed thread counts, so the figures are the same on any machine */
#define DEMO_TRAIN_THREADS 2   /* the conditioning AE and stage 1 */
#define DEMO_EVAL_THREADS 2    /* pictures and report */

int run_demo(const DemoOpts *o, I2vError *e) {
    I2V_ASSERT(o->scale > 0, "demo: scale %g", o->scale);
    double t0 = progress_now();
    StageSetup s1, cae, s2, s2c;
    demo_configs(o->scale, &s1, &cae, &s2, &s2c);
    char cdir[DATA_PATH_MAX], p1[DATA_PATH_MAX], pa[DATA_PATH_MAX], p2[DATA_PATH_MAX], p2c[DATA_PATH_MAX];
    if (data_mkdirs(o->out, e) || data_join(cdir, sizeof cdir, e, "%s/demo_configs", o->out) || data_mkdirs(cdir, e) ||
        save_yaml(cdir, "stage1.yaml", STAGE1, &s1, p1, sizeof p1, e) ||
        save_yaml(cdir, "cond_ae.yaml", STAGE_COND_AE, &cae, pa, sizeof pa, e) ||
        save_yaml(cdir, "cinn.yaml", STAGE2, &s2, p2, sizeof p2, e) ||
        save_yaml(cdir, "cinn_control.yaml", STAGE2, &s2c, p2c, sizeof p2c, e))
        return -1;
    /* Each stage runs its configs' epochs (n_epochs), whatever the time it takes. Stage 1 is most of the demo's
     * work and runs 1.5 times as fast on two threads as on one, so the conditioning AE (a minute) and then stage
     * 1 each get both threads; the two cINNs, which do not depend on each other, train side by side. */
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
    fprintf(stderr, "demo: stage 1 %d steps of %d clips, conditioning AE %d of %d, each cINN %d of %d\n",
            s1.s1.Training.n_epochs * (s1.data.synth_train / s1.s1.Training.bs), s1.s1.Training.bs,
            cae.cond_ae.Training.n_epochs * (cae.data.synth_train / cae.cond_ae.Training.bs), cae.cond_ae.Training.bs,
            s2.s2.Training.n_epochs * (s2.data.synth_train / s2.s2.Training.bs), s2.s2.Training.bs);
    threads_set(DEMO_TRAIN_THREADS);
    fprintf(stderr, "demo: the conditioning autoencoder, then stage 1 (video autoencoder), %d threads\n",
            DEMO_TRAIN_THREADS);
    if (train_cond_ae(&ta, e) || run_interrupted || train_stage1(&t1, e) || run_interrupted ||
        train_side_by_side("cINN with end-point control", train_cinn, &t2c, "cINN", train_cinn, &t2, e))
        return -1;
    if (run_interrupted) return -1;   /* the models are saved; the caller reports the signal */
    threads_set(DEMO_EVAL_THREADS);
    fprintf(stderr, "demo: pictures and report, %d threads\n", DEMO_EVAL_THREADS);
    Dataset test;
    if (dataset_open(&test, &s2.data, DATA_TEST, o->seed, e)) return -1;
    int rc = demo_samples(o->out, &test, o->seed, 6, 4, e) || demo_control(o->out, &test, o->seed, 4, e) ||
             demo_transfer(o->out, &test, o->seed, e);
    dataset_close(&test);
    if (rc) return -1;
    EvalOpts eo = {o->out, "cinn_control.safetensors", "config_stage2_control.yaml", 32, 4, o->seed, DATA_TEST, 0, NULL};
    EvalReport r;
    char rep[DATA_PATH_MAX];
    if (evaluate_model(&eo, &r, e) || data_join(rep, sizeof rep, e, "%s/report.txt", o->out)) return -1;
    r.seconds = progress_now() - t0;
    printf("\ndemo report (also in %s):\n", rep);
    if (report_write(&r, rep, e) || demo_index(o->out, &r, o->scale, e)) return -1;
    printf("\nfiles in %s (open index.html in a browser to see them together):\n"
           "  samples.gif        rows: test clips; columns: the start frame, the real video, 4 sampled futures\n"
           "  samples_last.png   their last frames\n"
           "  control.gif        one start frame driven to four end points (rows, marked), 4 samples each\n"
           "  transfer.gif       a test clip's motion (first column) transferred to three other start frames\n"
           "  report.txt         the figures above; *_losses.csv/.svg the training curves\n",
           o->out);
    return 0;
}
