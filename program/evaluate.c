/* evaluate.c: measuring a trained model on held-out clips (evaluate.h), and the demo.
 *
 * What it is: stage-1 reconstruction quality (L1, PSNR, SSIM, against the repeat-x0 baseline), the cINN's
 * negative log-likelihood, and on the synthetic set the motion statistics: the energy distance between the
 * end displacements of sampled videos (recovered by tracking the object) and of fresh ground-truth videos,
 * with a still-video baseline and a truth-vs-truth floor, and how closely a controlled cINN reaches the end
 * point it is asked for. Then `run_demo`, which trains all stages on the synthetic set and reports this.
 * What it is not: the feature-network metrics of the paper (FVD, FID, LPIPS, diversity).
 */
#include "program/evaluate.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "data.h"
#include "kernels/threads.h"
#include "formats/files.h"
#include "program/metrics.h"
#include "program/model.h"
#include "program/progress.h"
#include "program/run.h"

/* ---- motion of one video, by tracking its object -------------------------------------------------------- */

/* The object's track in x0 followed by `frames` generated frames (each (3, S, S)). */
static void track_video(const real *x0, const real *frames, int T, int S, const SynthTruth *t, MotionStats *ms) {
    size_t f = (size_t)3 * S * S;
    real *v = xmalloc((size_t)(T + 1) * f * sizeof(real));
    memcpy(v, x0, f * sizeof(real));
    memcpy(v + f, frames, (size_t)T * f * sizeof(real));
    double *centre = xmalloc((size_t)(T + 1) * 2 * sizeof(double)), *mass = xmalloc((size_t)(T + 1) * sizeof(double));
    synth_track(v, (size_t)T + 1, (size_t)S, (size_t)S, t->main.colour, t->main.radius, centre, mass);
    motion_stats(centre, (size_t)T + 1, (size_t)S, (size_t)S, ms);
    free(v);
    free(centre);
    free(mass);
}

static double median(double *v, size_t n) {
    if (!n) return NAN;
    for (size_t i = 1; i < n; i++)   /* insertion sort: n is small */
        for (size_t j = i; j > 0 && v[j - 1] > v[j]; j--) {
            double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int evaluate_model(const EvalOpts *o, EvalReport *r, I2vError *e) {
    memset(r, 0, sizeof *r);
    double t0 = progress_now();
    Model m, mc;
    /* a folder with stage 1 only (no cINN config) is evaluated for what it has: the reconstructions */
    char cinn_cfg[DATA_PATH_MAX];
    if (model_path(cinn_cfg, sizeof cinn_cfg, o->model, CINN_CONFIG, e)) return -1;
    r->has_cinn = access(cinn_cfg, F_OK) == 0;
    if (!r->has_cinn) fprintf(stderr, "evaluate: %s has no %s: stage 1 alone is measured\n", o->model, CINN_CONFIG);
    if (model_load(&m, o->model, r->has_cinn ? MODEL_ALL : MODEL_GEN | MODEL_ENC, NULL, NULL, e)) return -1;
    r->has_control = r->has_cinn && o->control_cinn != NULL;
    if (r->has_control && model_load(&mc, o->model, MODEL_GEN | MODEL_FLOW, o->control_cinn, o->control_config, e)) {
        model_free(&m);
        return -1;
    }
    /* the data set of the cINN's config (stage 1's without one), with the overrides given */
    StageSetup *setup = r->has_cinn ? &m.s2 : &m.s1;
    if (o->noverrides &&
        setup_override(r->has_cinn ? STAGE2 : STAGE1, setup, o->noverrides, o->overrides, "evaluate", e)) {
        model_free(&m);
        if (r->has_control) model_free(&mc);
        return -1;
    }
    DataConfig dc = setup->data;
    setup_resolve_paths(&dc);
    Dataset ds;
    if (dataset_open(&ds, &dc, o->split ? (DataMode)o->split : DATA_TEST, o->seed, e)) {
        model_free(&m);
        if (r->has_control) model_free(&mc);
        return -1;
    }
    int S = m.size, T = dc.sequence_length, F = T - 1, Z = m.z_dim, K = o->samples > 0 ? o->samples : 4;
    int N = o->clips > 0 ? o->clips : 32;
    if ((size_t)N > ds.nitems) N = (int)ds.nitems;
    r->clips = N;
    r->samples = K;
    r->synthetic = ds.set == DATA_SYNTHETIC;
    size_t frame = (size_t)3 * S * S, clipn = (size_t)T * frame;
    real *clip = xmalloc(clipn * sizeof(real)), *video = xmalloc((size_t)K * F * frame * sizeof(real));
    real *x0k = xmalloc((size_t)K * frame * sizeof(real)), *z = xmalloc((size_t)K * Z * sizeof(real));
    real *cond = xmalloc((size_t)K * (m.embed_dim + FLOW_CONTROL_DIM) * sizeof(real));
    double *gen = xmalloc((size_t)N * K * 2 * sizeof(double)), *truth = xmalloc((size_t)N * K * 2 * sizeof(double));
    double *truth2 = xmalloc((size_t)N * K * 2 * sizeof(double)), *still = xcalloc((size_t)N * K * 2, sizeof(double));
    double *gspeed = xmalloc((size_t)N * K * sizeof(double)), *tspeed = xmalloc((size_t)N * K * sizeof(double));
    size_t ngen = 0;
    double nll = 0, err_c = 0, err_u = 0;
    long nerr_c = 0, nerr_u = 0;
    Rng rng;
    rng_seed(&rng, o->seed);
    Ctx c;
    ctx_init(&c);
    int rc = 0;
    for (int i = 0; i < N && !rc; i++) {
        ClipInfo info;
        if ((rc = dataset_get(&ds, o->seed, 0, (size_t)i, clip, &info, e))) break;
        if (i == 0 && info.source_width && (info.source_width != (size_t)S || info.source_height != (size_t)S))
            fprintf(stderr, "evaluate: frames of %zu x %zu are resized to %d x %d as the official loaders do (bilinear, "
                            "no antialiasing%s)\n", info.source_width, info.source_height, S, S,
                    info.source_width != info.source_height ? "; the aspect ratio is not kept" : "");
        /* stage 1: reconstruction from a posterior sample, as the official validation does */
        model_encode(&m, clip, 1, T, &rng, z);
        model_decode(&m, clip, z, 1, F, video);
        r->recon_l1 += metric_l1(video, clip + frame, (size_t)F * frame);
        r->recon_psnr_db += metric_psnr(video, clip + frame, (size_t)F * frame, 2.0);
        r->recon_ssim += metric_ssim(video, clip + frame, F, 3, S, S, 2.0);
        for (int t = 0; t < F; t++) memcpy(video + (size_t)t * frame, clip, frame * sizeof(real));
        r->repeat_x0_psnr_db += metric_psnr(video, clip + frame, (size_t)F * frame, 2.0);
        if (!r->has_cinn) continue;
        /* the cINN's likelihood of that latent given x0 */
        model_condition(&m, clip, info.control, 1, cond);
        FlowStepStats st;
        flow_eval_batch(&c, &m.flow, z, cond, 1, &st);
        nll += flow_nll(st.loss, Z);
        if (!r->synthetic) continue;
        /* K sampled futures of x0, tracked */
        for (int k = 0; k < K; k++) memcpy(x0k + (size_t)k * frame, clip, frame * sizeof(real));
        double *ctl = xmalloc((size_t)K * 3 * sizeof(double));
        for (int k = 0; k < K; k++) memcpy(ctl + 3 * k, info.control, 3 * sizeof(double));
        model_condition(&m, x0k, ctl, K, cond);
        model_invert(&m, cond, K, NULL, 1.0, &rng, z);
        model_decode(&m, x0k, z, K, F, video);
        const SynthTruth *tr = &info.truth;
        double end_x = tr->centre[T - 1][0], end_y = tr->centre[T - 1][1];
        for (int k = 0; k < K; k++) {
            MotionStats ms;
            track_video(clip, video + (size_t)k * F * frame, F, S, tr, &ms);
            if (ms.found < 2) continue;
            gen[2 * ngen] = ms.disp[0] / S;
            gen[2 * ngen + 1] = ms.disp[1] / S;
            gspeed[ngen] = ms.speed;
            ngen++;
            err_u += hypot(ms.final_pos[0] * S - end_x, ms.final_pos[1] * S - end_y);
            nerr_u++;
        }
        if (r->has_control) {   /* the same x0 driven to its true end point */
            model_condition(&mc, x0k, ctl, K, cond);
            model_invert(&mc, cond, K, NULL, 1.0, &rng, z);
            model_decode(&mc, x0k, z, K, F, video);
            for (int k = 0; k < K; k++) {
                MotionStats ms;
                track_video(clip, video + (size_t)k * F * frame, F, S, tr, &ms);
                if (ms.found < 2) continue;
                err_c += hypot(ms.final_pos[0] * S - end_x, ms.final_pos[1] * S - end_y);
                nerr_c++;
            }
        }
        free(ctl);
    }
    if (!rc) {
        r->recon_l1 /= N;
        r->recon_psnr_db /= N;
        r->recon_ssim /= N;
        r->repeat_x0_psnr_db /= N;
        r->test_nll = nll / N;
        r->test_bits_per_dim = r->test_nll / (Z * log(2.0));
    }
    if (!rc && r->synthetic && r->has_cinn) {
        /* fresh ground truth: independent videos of the same generator (two sets, for the floor) */
        uint64_t fresh = synth_stream(o->seed + 1000003, DATA_TEST);
        for (int j = 0; j < N * K; j++) {
            SynthTruth a, b;
            synth_video(&ds.synth, fresh, (uint64_t)j, NULL, &a);
            synth_video(&ds.synth, fresh, (uint64_t)(N * K + j), NULL, &b);
            truth[2 * j] = (a.centre[T - 1][0] - a.centre[0][0]) / S;
            truth[2 * j + 1] = (a.centre[T - 1][1] - a.centre[0][1]) / S;
            truth2[2 * j] = (b.centre[T - 1][0] - b.centre[0][0]) / S;
            truth2[2 * j + 1] = (b.centre[T - 1][1] - b.centre[0][1]) / S;
            tspeed[j] = a.speed;
        }
        size_t nt = (size_t)N * K;
        r->motion_distance = ngen ? motion_energy_distance(gen, ngen, truth, nt, 2) : NAN;
        r->motion_distance_static = motion_energy_distance(still, nt, truth, nt, 2);
        r->motion_distance_truth = motion_energy_distance(truth2, nt, truth, nt, 2);
        r->sample_speed_px = median(gspeed, ngen);
        r->true_speed_px = median(tspeed, nt);
        r->endpoint_error_uncontrolled_px = nerr_u ? err_u / nerr_u : NAN;
        r->endpoint_error_px = nerr_c ? err_c / nerr_c : NAN;
    }
    r->seconds = progress_now() - t0;
    free(clip);
    free(video);
    free(x0k);
    free(z);
    free(cond);
    free(gen);
    free(truth);
    free(truth2);
    free(still);
    free(gspeed);
    free(tspeed);
    ctx_free(&c);
    dataset_close(&ds);
    model_free(&m);
    if (r->has_control) model_free(&mc);
    return rc;
}

int report_write(const EvalReport *r, const char *path, I2vError *e) {
    char buf[2048];
    int k = snprintf(buf, sizeof buf,
                     "clips=%d\nsamples_per_clip=%d\nrecon_l1=%.5f\nrecon_psnr_db=%.3f\nrecon_ssim=%.4f\n"
                     "repeat_x0_psnr_db=%.3f\n",
                     r->clips, r->samples, r->recon_l1, r->recon_psnr_db, r->recon_ssim, r->repeat_x0_psnr_db);
    if (r->has_cinn)
        k += snprintf(buf + k, sizeof buf - (size_t)k, "test_nll=%.4f\ntest_bits_per_dim=%.4f\n", r->test_nll,
                      r->test_bits_per_dim);
    if (r->synthetic && r->has_cinn)
        k += snprintf(buf + k, sizeof buf - (size_t)k,
                      "motion_distance=%.5f\nmotion_distance_static=%.5f\nmotion_distance_truth=%.5f\n"
                      "sample_speed_px=%.3f\ntrue_speed_px=%.3f\nendpoint_error_uncontrolled_px=%.3f\n",
                      r->motion_distance, r->motion_distance_static, r->motion_distance_truth, r->sample_speed_px,
                      r->true_speed_px, r->endpoint_error_uncontrolled_px);
    if (r->synthetic && r->has_control)
        k += snprintf(buf + k, sizeof buf - (size_t)k, "endpoint_error_px=%.3f\n", r->endpoint_error_px);
    snprintf(buf + k, sizeof buf - (size_t)k, "seconds=%.1f\n", r->seconds);
    fputs(buf, stdout);
    if (path) return write_file_bytes(path, (const uint8_t *)buf, strlen(buf), e);
    return 0;
}

/* ==================================================================================================== */
/* the demo                                                                                              */
/* ==================================================================================================== */

void demo_world(DataConfig *c) {
    c->synth_distractors = 0;
    c->synth_occluder = 0;
    c->synth_texture = 0;
    c->synth_object_scale = 2.2;
    c->synth_speed_min = 1.5;
    c->synth_speed_max = 4;
}

/* The demo's configs: the synthetic set at 32 x 32 with 8 frames to predict, small widths everywhere. */
static void demo_configs(StageSetup *s1, StageSetup *cae, StageSetup *s2, StageSetup *s2c) {
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
    *cae = *s1;
    cae->cond_ae = cond_ae_config_tiny();
    cae->data.sequence_length = 1;
    cae->data.img_size = cae->cond_ae.Data.img_size;
    cae->cond_ae.Training.n_epochs = 1000;
    cae->cond_ae.Training.lr = 5e-4;
    *s2 = *s1;
    s2->s2 = stage2_config_bair();
    s2->s2.Flow.n_flows = 8;
    s2->s2.Flow.flow_mid_channels_factor = 8;
    s2->s2.Conditioning_Model.z_dim = cae->cond_ae.AE.z_dim;
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
        _exit(rc ? 1 : run_interrupted ? 128 + run_interrupted : 0);
    }
    int rc = b(tb, e), status = 0;
    if (run_interrupted) kill(pid, run_interrupted);   /* a signal to this process only: the child saves and stops too */
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    threads_set(threads);
    progress_force_plain(0);
    if (rc) return -1;
    if (WIFEXITED(status) && WEXITSTATUS(status) > 128) run_interrupted = WEXITSTATUS(status) - 128;
    else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return err_set(e, "the %s (trained in a second process) failed: its message is above", what_a);
    return 0;
}

int run_demo(const DemoOpts *o, I2vError *e) {
    double t0 = progress_now(), budget = (o->minutes > 0 ? o->minutes : DEMO_MINUTES) * 60;
    StageSetup s1, cae, s2, s2c;
    demo_configs(&s1, &cae, &s2, &s2c);
    char cdir[DATA_PATH_MAX], p1[DATA_PATH_MAX], pa[DATA_PATH_MAX], p2[DATA_PATH_MAX], p2c[DATA_PATH_MAX];
    if (data_mkdirs(o->out, e) || data_join(cdir, sizeof cdir, e, "%s/demo_configs", o->out) || data_mkdirs(cdir, e) ||
        save_yaml(cdir, "stage1.yaml", STAGE1, &s1, p1, sizeof p1, e) ||
        save_yaml(cdir, "cond_ae.yaml", STAGE_COND_AE, &cae, pa, sizeof pa, e) ||
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
        run_interrupted ||
        train_side_by_side("cINN with end-point control", train_cinn, &t2c, "cINN", train_cinn, &t2, e))
        return -1;
    if (run_interrupted) return -1;   /* the models are saved; the caller reports the signal */
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
    EvalOpts eo = {o->out, "cinn_control.safetensors", "config_stage2_control.yaml", 32, 4, o->seed, DATA_TEST, 0, NULL};
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
