/* test_eval_metrics.c: the scoring of `i2v evaluate --metrics` end to end, against a PyTorch / SciPy
 * recomputation of the whole official pipeline (tools/make_eval_reference.py, values in
 * tests/data/eval/expected.txt).
 *
 * The clips are those `i2v evaluate --dump` wrote for a tiny model of the synthetic set, shrunk to 6 x 6
 * frames (16 x 16 for LPIPS, whose VGG needs four poolings) and rounded to 8 bits. From them this test runs
 * what evaluate runs after sampling: the synthetic set's clip assembly (protocol_assemble), FVD (the
 * Kinetics I3D with TF1 preprocessing, batches of 16), DTFVD (the dynamic-texture I3D, batches of 40), FID
 * (InceptionV3 on every frame, batches of 50), KID, LPIPS (chunks of 10 frames) and the VGG, I3D and DTI3D
 * diversity of 5 videos per clip, with the reduced-width stand-in networks (1/64 of the published widths).
 * Tolerances: 1e-4 relative in float (1e-3 for FID and its KID: a small difference of large terms); in
 * double 1e-7 (the reference's Frechet distances take scipy's sqrtm route, which agrees with the exact value
 * to about 1e-8 on these sets). Not compared: the bootstrap intervals (i2v's random numbers).
 * Under I2V_QUICK=1 only FID and LPIPS run (the I3D passes take half a minute). */
#include <math.h>
#include <string.h>

#include "check.h"
#include "key_value.h"
#include "formats/npy.h"
#include "program/eval_metrics.h"

#define DIR "tests/data/eval/"
#define FEAT "tests/data/features/"

#ifdef I2V_DOUBLE
static const double TOL = 1e-7;
#else
static const double TOL = 1e-4;
#endif

/* an 8-bit NPY of the expected shape as values k / 127.5 - 1 (what the reference script computes with) */
static real *load_u8(const char *path, int ndim, const size_t *shape) {
    NpyArray a;
    I2vError e;
    int rc = npy_read(path, &a, &e);
    if (!check(rc == 0, "%s reads: %s", path, rc ? e.msg : "")) return NULL;
    int ok = a.dtype == NPY_U8 && (int)a.ndim == ndim;
    for (int k = 0; ok && k < ndim; k++) ok = a.shape[k] == shape[k];
    if (!check(ok, "%s: uint8 of the expected shape", path)) {
        npy_free(&a);
        return NULL;
    }
    real *x = xmalloc(a.count * sizeof(real));
    const unsigned char *u = a.data;
    for (size_t i = 0; i < a.count; i++) x[i] = (real)(u[i] / 127.5 - 1.0);
    npy_free(&a);
    return x;
}

static double expected(const char *key) {
    return key_value_in(DIR "expected.txt", key);
}

static void compare_tol(const char *key, double got, double tol) {
    double want = expected(key);
    check(isfinite(want) && fabs(got - want) <= tol * fabs(want), "%s = %.12g, reference %.12g (rel %.2g)", key, got,
          want, fabs(got - want) / fabs(want));
}

static void compare(const char *key, double got) { compare_tol(key, got, TOL); }

static void compare_count(const char *key, int got) {
    check(got == (int)expected(key), "%s = %d, reference %g", key, got, expected(key));
}

int main(void) {
    const char *paths[NET_FILES] = {FEAT "i3d_w64.safetensors", FEAT "dti3d_w64.safetensors",
                                    DIR "inception_w64.safetensors", FEAT "vgg16_w64.safetensors",
                                    DIR "lpips_w64.safetensors"};
    MetricNets mn;
    I2vError e;
    int quick = quick_mode();
    unsigned met = quick ? MET_FID | MET_LPIPS : MET_ALL;
    if (!check(metric_nets_open(&mn, met, paths, 64, &e) == 0, "the stand-in networks load: %s", e.msg))
        return check_summary("test_eval_metrics");

    /* ---- FVD, DTFVD, FID on 40 clips of 6 x 6: assembled as evaluate assembles the synthetic set -------- */
    const int N = 40, S = 6, G = PROTOCOL_GEN_FRAMES, R = DIVERSITY_REALISATIONS, T = protocol_frames(DATA_SYNTHETIC);
    size_t f = (size_t)3 * S * S;
    size_t sc[5] = {(size_t)N, PROTOCOL_TEST_FRAMES, 3, (size_t)S, (size_t)S}, sp[5] = {(size_t)N, (size_t)G, 3, (size_t)S, (size_t)S};
    real *clips = load_u8(DIR "clips.npy", 5, sc), *pred = load_u8(DIR "predicted.npy", 5, sp);
    if (clips && pred) {
        real *gen = xmalloc((size_t)N * T * f * sizeof(real)), *realv = xmalloc((size_t)N * T * f * sizeof(real));
        for (int i = 0; i < N; i++)
            protocol_assemble(DATA_SYNTHETIC, clips + (size_t)i * PROTOCOL_TEST_FRAMES * f, pred + (size_t)i * G * f, S,
                              gen + (size_t)i * T * f, realv + (size_t)i * T * f);
        MetricsRow row;
        memset(&row, 0, sizeof row);
        ProtocolOpts po = {0, 2, PROTOCOL_SEED};   /* KID of fewer than 1000 rows: every subset is the whole set */
        mn.metrics = met & (MET_FVD | MET_DTFVD | MET_FID);
        if (check(metrics_quality(&mn, gen, realv, N, T, S, &po, &po, &row, &e) == 0, "scoring runs: %s", e.msg)) {
            if (met & MET_FVD) {
                compare("fvd", row.fvd.value);
                compare("fvd_kid", row.fvd.kid);
                compare_count("fvd_used", row.fvd.used);
                check(row.fvd.dropped == 8 && strstr(row.fvd_net, "i3d stand-in (i3d_w64.safetensors; TF1"),
                      "FVD drops 8 of 40 clips and names its network: %s", row.fvd_net);
            }
            if (met & MET_DTFVD) {
                compare("dtfvd", row.dtfvd.value);
                compare("dtfvd_kid", row.dtfvd.kid);
                compare_count("dtfvd_used", row.dtfvd.used);
            }
            /* FID is small here (0.18): the difference of much larger terms, so float32 features lose about
             * ten times more of it than of the other figures */
            compare_tol("fid", row.fid.value, 10 * TOL);
            compare_tol("fid_kid", row.fid.kid, 10 * TOL);
            compare_count("fid_used", row.fid.used);
            check(row.fid.dropped == 40, "FID drops 40 of 640 frames (%d)", row.fid.dropped);
        }
        free(gen), free(realv);
    }
    free(clips), free(pred);

    /* ---- LPIPS on 2 clips of 16 x 16: 32 frame pairs, 3 chunks of 10 ------------------------------------- */
    const int NL = 2, SL = 16;
    size_t fl = (size_t)3 * SL * SL;
    size_t lc[5] = {(size_t)NL, PROTOCOL_TEST_FRAMES, 3, SL, SL}, lp[5] = {(size_t)NL, (size_t)G, 3, SL, SL};
    clips = load_u8(DIR "lpips_clips.npy", 5, lc);
    pred = load_u8(DIR "lpips_predicted.npy", 5, lp);
    if (clips && pred) {
        real *gen = xmalloc((size_t)NL * T * fl * sizeof(real)), *realv = xmalloc((size_t)NL * T * fl * sizeof(real));
        for (int i = 0; i < NL; i++)
            protocol_assemble(DATA_SYNTHETIC, clips + (size_t)i * PROTOCOL_TEST_FRAMES * fl, pred + (size_t)i * G * fl,
                              SL, gen + (size_t)i * T * fl, realv + (size_t)i * T * fl);
        MetricsRow row;
        memset(&row, 0, sizeof row);
        ProtocolOpts po = {0, 0, PROTOCOL_SEED};
        mn.metrics = MET_LPIPS;
        if (check(metrics_quality(&mn, gen, realv, NL, T, SL, &po, &po, &row, &e) == 0, "LPIPS runs: %s", e.msg)) {
            compare("lpips", row.lpips);
            compare_count("lpips_frames", row.lpips_frames);
        }
        free(gen), free(realv);
    }
    free(clips), free(pred);

    /* ---- diversity: 20 clips x 5 videos, fed clip by clip as evaluate does ------------------------------- */
    if (quick) {
        printf("skip (I2V_QUICK=1): FVD, DTFVD and the diversity scores\n");
    } else {
        const int ND = 20;
        size_t sd[6] = {(size_t)ND, (size_t)R, (size_t)G, 3, (size_t)S, (size_t)S};
        real *div = load_u8(DIR "diversity.npy", 6, sd);
        if (div) {
            MetricsRow row;
            memset(&row, 0, sizeof row);
            DiversityAcc acc;
            mn.metrics = MET_DIVERSITY;
            diversity_begin(&acc, &mn, ND, G, S);
            for (int i = 0; i < ND; i++) diversity_add(&acc, &mn, i, div + (size_t)i * R * G * f);
            diversity_finish(&acc, &mn, &row);
            compare("diversity_vgg", row.div_vgg);
            compare("diversity_i3d", row.div_i3d);
            compare("diversity_dti3d", row.div_dti3d);
            compare_count("diversity_i3d_clips", row.div_clips_i3d);
            compare_count("diversity_dti3d_clips", row.div_clips_dti3d);
        }
        free(div);
    }
    metric_nets_close(&mn);
    return check_summary("test_eval_metrics");
}
