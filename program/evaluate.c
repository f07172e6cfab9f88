/* evaluate.c: measuring a trained model on held-out clips (evaluate.h).
 *
 * What it is: stage-1 reconstruction quality (L1, PSNR, SSIM, against the repeat-x0 baseline), the cINN's
 * negative log-likelihood, and on the synthetic set the motion statistics: the energy distance between the
 * end displacements of sampled videos (recovered by tracking the object) and of fresh ground-truth videos,
 * with a still-video baseline and a truth-vs-truth floor, how closely a controlled cINN reaches the end
 * point it is asked for, and whether the sampled videos keep the object's shape and colour (metrics.h),
 * each beside its value for the real videos.
 * What it is not: the feature-network metrics of the paper (FVD, FID, LPIPS, diversity), nor the demo
 * (demo.c), which trains a model and then reports these figures.
 */
#include "program/evaluate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data.h"
#include "kernels/threads.h"
#include "formats/files.h"
#include "program/metrics.h"
#include "program/model.h"
#include "program/progress.h"

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
    double iou = 0, iou_truth = 0, colour = 0, colour_truth = 0;
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
        if (r->synthetic) {   /* does stage 1 alone keep the object's shape and colour? (the samples' ceiling) */
            ObjectRef obj;
            object_ref_init(&obj, clip, S, S);
            double a, b;
            object_compare(&obj, video + (size_t)(F - 1) * frame, &a, &b);
            r->recon_shape_iou += a;
            r->recon_colour_error += b;
            object_ref_free(&obj);
        }
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
        /* the object's shape and colour in the last frame, sampled and real */
        ObjectRef obj;
        object_ref_init(&obj, clip, S, S);
        double a, b;
        object_compare(&obj, clip + (size_t)(T - 1) * frame, &a, &b);
        iou_truth += a;
        colour_truth += b;
        for (int k = 0; k < K; k++) {
            object_compare(&obj, video + ((size_t)k * F + F - 1) * frame, &a, &b);
            iou += a / K;
            colour += b / K;
        }
        object_ref_free(&obj);
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
        r->recon_shape_iou /= N;
        r->recon_colour_error /= N;
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
        r->shape_iou = iou / N;
        r->shape_iou_truth = iou_truth / N;
        r->colour_error = colour / N;
        r->colour_error_truth = colour_truth / N;
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
    if (r->synthetic)
        k += snprintf(buf + k, sizeof buf - (size_t)k, "recon_shape_iou=%.4f\nrecon_colour_error=%.4f\n",
                      r->recon_shape_iou, r->recon_colour_error);
    if (r->has_cinn)
        k += snprintf(buf + k, sizeof buf - (size_t)k, "test_nll=%.4f\ntest_bits_per_dim=%.4f\n", r->test_nll,
                      r->test_bits_per_dim);
    if (r->synthetic && r->has_cinn)
        k += snprintf(buf + k, sizeof buf - (size_t)k,
                      "motion_distance=%.5f\nmotion_distance_static=%.5f\nmotion_distance_truth=%.5f\n"
                      "sample_speed_px=%.3f\ntrue_speed_px=%.3f\nshape_iou=%.4f\nshape_iou_truth=%.4f\n"
                      "colour_error=%.4f\ncolour_error_truth=%.4f\nendpoint_error_uncontrolled_px=%.3f\n",
                      r->motion_distance, r->motion_distance_static, r->motion_distance_truth, r->sample_speed_px,
                      r->true_speed_px, r->shape_iou, r->shape_iou_truth, r->colour_error, r->colour_error_truth,
                      r->endpoint_error_uncontrolled_px);
    if (r->synthetic && r->has_control)
        k += snprintf(buf + k, sizeof buf - (size_t)k, "endpoint_error_px=%.3f\n", r->endpoint_error_px);
    snprintf(buf + k, sizeof buf - (size_t)k, "seconds=%.1f\n", r->seconds);
    fputs(buf, stdout);
    if (path) return write_file_bytes(path, (const uint8_t *)buf, strlen(buf), e);
    return 0;
}
