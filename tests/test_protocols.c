/* test_protocols.c: the evaluation protocols (program/protocols.c) with stand-in feature networks: clip
 * assembly per data set on a tiny synthetic clip; the batch rules and the remainders they drop (FVD 16,
 * DTFVD 40, FID 50 frames, LPIPS 10 frames); non-finite features and too few clips as errors naming the
 * network; LPIPS(x, x) = 0; the diversity of identical realisations = 0 and of known embeddings by hand;
 * and the `i2v frechet` command on the committed reference features (values, bad files). */
#include <math.h>
#include <string.h>
#include <sys/wait.h>

#include "check.h"
#include "key_value.h"
#include "formats/npy.h"
#include "formats/safetensors.h"
#include "networks/lpips.h"
#include "program/distances.h"
#include "program/monitor.h"
#include "program/protocols.h"
#include "shell.h"

/* ---- clip assembly ------------------------------------------------------------------------------- */
static void test_assembly(void) {
    int S = 3;
    size_t f = (size_t)3 * S * S;
    real *seq = xmalloc(17 * f * sizeof(real)), *gen = xmalloc(16 * f * sizeof(real));
    for (int t = 0; t < 17; t++)
        for (size_t i = 0; i < f; i++) seq[t * f + i] = (real)t;          /* x_t holds t */
    for (int t = 0; t < 16; t++)
        for (size_t i = 0; i < f; i++) gen[t * f + i] = (real)(101 + t);  /* g_(t+1) holds 101 + t */
    real *og = xmalloc(17 * f * sizeof(real)), *orl = xmalloc(17 * f * sizeof(real));
    DataSet sets[] = {DATA_BAIR, DATA_IPER, DATA_LANDSCAPE, DATA_DTDB, DATA_SYNTHETIC};
    const char *names[] = {"BAIR", "iPER", "landscape", "DTDB", "synthetic"};
    for (int s = 0; s < 5; s++) {
        int T = protocol_frames(sets[s]);
        protocol_assemble(sets[s], seq, gen, S, og, orl);
        int ok = T == (sets[s] == DATA_IPER ? 17 : 16);
        for (int t = 0; t < T; t++) {
            real want_real = (real)t;
            /* BAIR / iPER / synthetic: x0 then g1, g2 ...; landscape / DTDB: g1, g2 ... against x0, x1 ... */
            real want_gen = (sets[s] == DATA_LANDSCAPE || sets[s] == DATA_DTDB) ? (real)(101 + t)
                            : t == 0 ? 0 : (real)(100 + t);
            ok &= og[t * f] == want_gen && og[t * f + f - 1] == want_gen && orl[t * f] == want_real;
        }
        check(ok, "%s: %d frames, generated [%s], real [x0 .. x%d]", names[s], T,
              (sets[s] == DATA_LANDSCAPE || sets[s] == DATA_DTDB) ? "g1 .. g16" : T == 17 ? "x0, g1 .. g16" : "x0, g1 .. g15",
              T - 1);
    }
    free(seq), free(gen), free(og), free(orl);
}

/* ---- a stand-in network: per channel mean and mean square over the item's frames and pixels ---------- */
static void toy_embed(void *net, const real *x, int n, int T, int H, int W, real *out) {
    (void)net;
    int F = T > 0 ? T : 1;
    size_t hw = (size_t)H * W;
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < 3; ch++) {
            double s = 0, q = 0;
            for (int t = 0; t < F; t++) {
                const real *p = x + (((size_t)i * F + t) * 3 + ch) * hw;
                for (size_t k = 0; k < hw; k++) s += p[k], q += (double)p[k] * p[k] * (1 + ch);
            }
            out[i * 6 + ch] = (real)(s / (F * hw));
            out[i * 6 + 3 + ch] = (real)(q / (F * hw));
        }
}

static void fill_clips(real *v, size_t n, Rng *r, double shift) {
    for (size_t i = 0; i < n; i++) v[i] = (real)fmin(1, fmax(-1, rng_normal(r) * 0.4 + shift));
}

static void test_batch_rules(void) {
    Rng rng;
    rng_seed(&rng, 11);
    int S = 4, T = 16, n = 37;
    size_t clip = (size_t)T * 3 * S * S;
    real *g = xmalloc(n * clip * sizeof(real)), *r = xmalloc(n * clip * sizeof(real));
    fill_clips(g, n * clip, &rng, 0.1);
    fill_clips(r, n * clip, &rng, 0.0);
    Embedder em = {toy_embed, NULL, 6, "toy"};
    ProtocolOpts o = {50, 3, PROTOCOL_SEED};
    FrechetReport rep;
    I2vError e;
    double *fg = xmalloc((size_t)n * 6 * sizeof(double)), *fr = xmalloc((size_t)n * 6 * sizeof(double));
    int batches[] = {BATCH_FVD, BATCH_MONITOR_FVD};
    for (int b = 0; b < 2; b++) {
        int batch = batches[b];
        int rc = protocol_fvd(&em, g, r, n, T, S, batch, &o, &rep, fg, fr, &e);
        int want = n / batch * batch;
        check(rc == 0 && rep.used == want && rep.dropped == n - want, "batch %d: %d of %d clips used (%d)", batch,
              want, n, rep.used);
        /* the same distance from the features of the kept clips, embedded directly */
        real *buf = xmalloc((size_t)want * 6 * sizeof(real));
        double *a = xmalloc((size_t)want * 6 * sizeof(double)), *bb = xmalloc((size_t)want * 6 * sizeof(double));
        toy_embed(NULL, g, want, T, S, S, buf);
        for (int i = 0; i < want * 6; i++) a[i] = buf[i];
        toy_embed(NULL, r, want, T, S, S, buf);
        for (int i = 0; i < want * 6; i++) bb[i] = buf[i];
        check_close(rep.value, frechet_distance(a, want, NULL, bb, want, NULL, 6), 1e-12, 1e-12,
                    "FVD = Frechet distance of the kept clips' features");
        check(!memcmp(fg, a, (size_t)want * 6 * sizeof(double)), "the generated features are returned");
        check(rep.ci_lo <= rep.ci_hi && rep.resamples == 50 && isfinite(rep.kid), "interval [%g, %g], kid %g",
              rep.ci_lo, rep.ci_hi, rep.kid);
        free(buf), free(a), free(bb);
    }
    check(protocol_fvd(&em, g, r, 39, T, S, BATCH_DTFVD, &o, &rep, NULL, NULL, &e) != 0 && strstr(e.msg, "toy") &&
              strstr(e.msg, "fewer than one batch of 40"),
          "39 clips for DTFVD's batch of 40: %s", e.msg);
    /* FID: 7 clips x 16 frames = 112 frames -> 100 used, 12 dropped; 6 whole clips for the bootstrap */
    check(protocol_fid(&em, g, r, 7, T, S, &o, &rep, &e) == 0 && rep.used == 100 && rep.dropped == 12,
          "FID: 100 of 112 frames used (%d)", rep.used);
    check(protocol_fid(&em, g, r, 3, T, S, &o, &rep, &e) != 0 && strstr(e.msg, "48 frames"), "FID of 48 frames: %s",
          e.msg);
    /* a NaN frame gives non-finite features: named, not a crash */
    g[5 * clip + 7] = NAN;
    check(protocol_fvd(&em, g, r, n, T, S, BATCH_FVD, &o, &rep, NULL, NULL, &e) != 0 && strstr(e.msg, "item 5") &&
              strstr(e.msg, "not finite"),
          "NaN frame: %s", e.msg);
    free(g), free(r), free(fg), free(fr);
}

/* ---- LPIPS ----------------------------------------------------------------------------------------- */
static void test_lpips(void) {
    LpipsConfig cfg = {{4, 8, 8, 8, 8}};
    Lpips l;
    lpips_build(&l, &cfg);
    Rng rng;
    rng_seed(&rng, 3);
    lpips_init_random(&l, &rng);
    int S = 16, n = 2, T = 12;   /* 24 frames: 2 chunks of 10, 4 dropped */
    size_t f = (size_t)3 * S * S;
    real *x = xmalloc(n * T * f * sizeof(real)), *y = xmalloc(n * T * f * sizeof(real));
    fill_clips(x, n * T * f, &rng, 0);
    fill_clips(y, n * T * f, &rng, 0.2);
    double score;
    int used;
    I2vError e;
    check(protocol_lpips(protocol_lpips_vgg, &l, x, x, n, T, S, &score, &used, &e) == 0 && score == 0 && used == 20,
          "LPIPS(x, x) = 0 (%g) over 20 of 24 frames", score);
    check(protocol_lpips(protocol_lpips_vgg, &l, x, y, n, T, S, &score, &used, &e) == 0 && score > 0, "LPIPS(x, y) > 0");
    /* the mean of chunk means over the first 20 frames is the mean of their 20 distances */
    real d[20];
    protocol_lpips_vgg(&l, x, y, 20, S, d);
    double m = 0;
    for (int i = 0; i < 20; i++) m += d[i] / 20;
    check_close(score, m, 1e-6, 1e-5, "LPIPS = mean over the frames of the whole chunks");
    check(protocol_lpips(protocol_lpips_vgg, &l, x, y, 1, 9, S, &score, &used, &e) != 0, "9 frames: %s", e.msg);
    lpips_free(&l);
    free(x), free(y);
}

/* ---- diversity ------------------------------------------------------------------------------------- */
static const real *toy_maps[5];
static real *toy_store;
static void toy_layers(void *net, const real *frames, int m, int S, const real *maps[5], size_t sizes[5]) {
    (void)net;
    size_t f = (size_t)3 * S * S;
    free(toy_store);
    toy_store = xmalloc((size_t)m * f * 5 * sizeof(real));
    for (int l = 0; l < 5; l++) {   /* layer l: the frame's pixels times (l + 1), squared for odd l */
        for (size_t i = 0; i < (size_t)m * f; i++)
            toy_store[l * m * f + i] = l % 2 ? frames[i] * frames[i] * (l + 1) : frames[i] * (l + 1);
        toy_maps[l] = toy_store + l * m * f;
        maps[l] = toy_maps[l];
        sizes[l] = f;
    }
}

static void test_diversity(void) {
    /* by hand: n = 1, R = 3, d = 2: e = (0,0), (1,0), (0,2): pairs' squared distances 1, 4, 5 (each twice),
     * means over d: 0.5, 2, 2.5 -> mean over the 6 ordered pairs = 5/3 */
    double e3[6] = {0, 0, 1, 0, 0, 2};
    check_close(diversity_pairs(e3, 1, 3, 2), 5.0 / 3, 1e-15, 0, "diversity of three points by hand");
    Rng rng;
    rng_seed(&rng, 4);
    int n = 21, R = 5, T = 16, S = 4;
    size_t clip = (size_t)T * 3 * S * S;
    real *v = xmalloc((size_t)n * R * clip * sizeof(real));
    fill_clips(v, (size_t)n * clip, &rng, 0);
    for (int c = n - 1; c >= 0; c--)    /* R identical realisations of each clip */
        for (int i = 0; i < R; i++) memcpy(v + ((size_t)c * R + i) * clip, v + (size_t)c * clip, clip * sizeof(real));
    Embedder em = {toy_embed, NULL, 6, "toy"};
    double score = -1;
    I2vError e;
    check(protocol_diversity_embed(&em, v, n, R, T, S, BATCH_DIVERSITY_DTI3D, 1000, &score, &e) == 0 && score == 0,
          "DTI3D-style diversity of identical realisations = 0 (%g)", score);
    check(protocol_diversity_vgg(toy_layers, NULL, v, 2, R, T, S) == 0, "VGG-style diversity of identical ones = 0");
    /* distinct realisations: the same number as diversity_pairs of the embeddings of the kept 20 clips */
    fill_clips(v, (size_t)n * R * clip, &rng, 0);
    check(protocol_diversity_embed(&em, v, n, R, T, S, BATCH_DIVERSITY_DTI3D, 1000, &score, &e) == 0, "%s", e.msg);
    real *buf = xmalloc((size_t)20 * R * 6 * sizeof(real));
    double *emb = xmalloc((size_t)20 * R * 6 * sizeof(double));
    toy_embed(NULL, v, 20 * R, T, S, S, buf);
    for (int i = 0; i < 20 * R * 6; i++) emb[i] = buf[i];
    check_close(score, 1000 * diversity_pairs(emb, 20, R, 6), 1e-12, 1e-12, "DTI3D score: 1000 x pairs of 20 clips");
    check(protocol_diversity_embed(&em, v, 15, R, T, S, BATCH_DIVERSITY_I3D, 1, &score, &e) != 0, "15 < 16: %s", e.msg);
    double vgg = protocol_diversity_vgg(toy_layers, NULL, v, 2, R, T, S);
    check(vgg > 0, "VGG-style diversity of distinct realisations > 0 (%g)", vgg);
    free(v), free(buf), free(emb), free(toy_store);
    toy_store = NULL;
}

/* ---- the frechet command --------------------------------------------------------------------------- */
static char out_path[] = "build/test_protocols_out.txt";
static int run(const char *args) { return shell_run(out_path, "", "./i2v frechet %s", args); }
static double output_value(const char *key) {
    return key_value_in(out_path, key);
}
static int output_has(const char *s) { return shell_file_has(out_path, s); }

static void test_command(void) {
    FILE *f = fopen("./i2v", "rb");
    if (!f) {
        printf("skip: ./i2v not built (make builds it before the tests)\n");
        return;
    }
    fclose(f);
    const char *D = "tests/data/distances/";
    char args[512];
    /* deficient: expected exact value from expected.txt, second data row */
    double exact[4];
    FILE *ex = fopen("tests/data/distances/expected.txt", "r");
    char line[512], name[64];
    int k = 0;
    while (ex && fgets(line, sizeof line, ex))
        if (line[0] != '#' && k < 4 && sscanf(line, "%63s %*f %*f %lf", name, &exact[k]) == 2) k++;
    if (ex) fclose(ex);
    const char *cases[] = {"full", "deficient", "subspace", "wide"};
    for (int i = 0; i < 4 && i < k; i++) {
        snprintf(args, sizeof args, "%s%s_a.npy %s%s_b.npy --kid-subsets 2", D, cases[i], D, cases[i]);
        int rc = run(args);
        check(rc == 0 && close_enough(output_value("frechet"), exact[i], 0, 1e-9) && isfinite(output_value("kid")),
              "i2v frechet on %s: frechet=%.12g (exact %.12g)", cases[i], output_value("frechet"), exact[i]);
    }
    snprintf(args, sizeof args, "%sfull_a.npy %sfull_a.npy --bootstrap 20 --kid-subsets 0", D, D);
    check(run(args) == 0 && fabs(output_value("frechet")) < 1e-9 && output_value("frechet_ci_hi") < 1e-9,
          "a set against itself: 0 with a zero interval");
    /* bad input: NaN, wrong dimension, wrong layout */
    double nanrows[6] = {1, 2, NAN, 4, 5, 6};
    size_t shape2[2] = {3, 2}, shape3[3] = {1, 3, 2};
    I2vError e;
    npy_write("build/test_nan.npy", NPY_F64, 2, shape2, nanrows, &e);
    npy_write("build/test_3d.npy", NPY_F64, 3, shape3, nanrows, &e);
    snprintf(args, sizeof args, "build/test_nan.npy %sfull_b.npy", D);
    check(run(args) == 1 && output_has("build/test_nan.npy") && output_has("finite"), "a NaN feature is refused by name");
    snprintf(args, sizeof args, "%sfull_a.npy %sdeficient_b.npy", D, D);
    check(run(args) == 1 && output_has("features per row"), "feature sets of two dimensions are refused");
    snprintf(args, sizeof args, "build/test_3d.npy %sfull_b.npy", D);
    check(run(args) == 1 && output_has("expected a 2-D (N, D)"), "a 3-D array is refused");
    check(run("tests/data/npy/u8_5.npy x.npy") == 1 && output_has("u8_5.npy"), "a uint8 file is refused");
    check(run("missing.npy also_missing.npy") == 1 && output_has("missing.npy"), "a missing file is named");
    remove("build/test_nan.npy");
    remove("build/test_3d.npy");
    remove(out_path);
}

static int file_exists(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f) fclose(f);
    return f != NULL;
}

static void net_embed_for_tests(void *self, const real *x, int n, int T, int H, int W, real *out) {
    NetEmbedder *ne = self;
    feature_net_embed(&ne->f, &ne->c, x, n, T, H, W, out);
}

/* ---- the training-time monitor, with the reduced-width I3D stand-in ------------------------------------ */
static void test_monitor(void) {
    FvdMonitor mon;
    I2vError e;
    check(monitor_open(&mon, "test", "FVD", NULL, 1, &e) == 0 && !mon.on, "no weights: the monitor is off");
    check(monitor_open(&mon, "test", "PSNR", NULL, 1, &e) != 0 && strstr(e.msg, "Training.FVD"), "%s", e.msg);
    if (quick_mode()) {   /* 8 sets of 20 clips through the I3D at 224 x 224: slow under the sanitizers */
        printf("skip (I2V_QUICK=1): the monitor's values\n");
        return;
    }
    if (!check(monitor_open(&mon, "test", "FVD", "tests/data/features/i3d_w64.safetensors", 64, &e) == 0 && mon.on &&
                   mon.batch == BATCH_MONITOR_FVD,
               "the monitor opens the I3D stand-in: %s", e.msg))
        return;
    Rng rng;
    rng_seed(&rng, 9);
    int n = 23, T = 16, S = 12;
    size_t clip = (size_t)T * 3 * S * S;
    real *g = xmalloc(n * clip * sizeof(real)), *r = xmalloc(n * clip * sizeof(real));
    fill_clips(g, n * clip, &rng, 0.3);
    fill_clips(r, n * clip, &rng, 0.0);
    double v1, v2;
    check(monitor_score(&mon, g, r, n, T, S, &v1, &e) == 0 && v1 > 0 && mon.improved && mon.best == v1,
          "first value %g is the best: %s", v1, e.msg);
    /* the same sets through the I3D monitor embedder by hand: 20 clips (batch 20), mapped to [0, 1] */
    Embedder em = {net_embed_for_tests, &mon.net, mon.net.em.dim, "by hand"};
    ProtocolOpts po = {0, 0, 1};
    FrechetReport rep;
    mon.net.f.map_to_unit = 1;
    check(protocol_fvd(&em, g, r, n, T, S, BATCH_MONITOR_FVD, &po, &rep, NULL, NULL, &e) == 0 && rep.used == 20 &&
              close_enough(rep.value, v1, 1e-9, 1e-9),
          "the monitor's value is the FVD of the first 20 clips (%g, %g)", rep.value, v1);
    check(monitor_score(&mon, r, r, n, T, S, &v2, &e) == 0 && fabs(v2) < 1e-6 * v1 && mon.improved,
          "real against itself: %g, a new best", v2);
    FILE *f = fopen("build/test_monitor_ckpt", "wb");
    if (f) {
        fputs("checkpoint", f);
        fclose(f);
    }
    remove("build/test_monitor_best");
    check(monitor_keep_best(&mon, "build/test_monitor_ckpt", "build/test_monitor_best", &e) == 0 &&
              file_exists("build/test_monitor_best"),
          "a new best keeps a copy of the checkpoint");
    remove("build/test_monitor_best");
    check(monitor_score(&mon, g, r, n, T, S, &v1, &e) == 0 && !mon.improved &&
              monitor_keep_best(&mon, "build/test_monitor_ckpt", "build/test_monitor_best", &e) == 0 &&
              !file_exists("build/test_monitor_best"),
          "a worse value keeps nothing");
    check(monitor_score(&mon, g, r, 19, T, S, &v1, &e) != 0 && strstr(e.msg, "fewer than one batch of 20"),
          "19 clips: %s", e.msg);
    check(monitor_score(&mon, g, r, n, 8, S, &v1, &e) != 0 && strstr(e.msg, "at least 9"), "8 frames: %s", e.msg);
    remove("build/test_monitor_ckpt");
    monitor_close(&mon);
    free(g), free(r);
}

/* ---- evaluate --metrics end to end: a tiny model, the width/64 stand-in networks ----------------------- */
static int sh(const char *cmd) { return shell_run(out_path, "export I2V_THREADS=2;", "%s", cmd); }

static double report_value(const char *path, const char *key) {
    return key_value_in(path, key);
}

static void test_evaluate_command(void) {
    if (!file_exists("./i2v")) return;
    if (quick_mode()) {   /* a minute here, far longer under the sanitizers */
        printf("skip (I2V_QUICK=1): evaluate --metrics end to end\n");
        return;
    }
    const char *d = "build/test_eval_metrics";
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s/w && cp tests/data/features/i3d_w64.safetensors %s/w/i3d.safetensors"
             " && cp tests/data/features/inception_w64.safetensors %s/w/inception.safetensors", d, d, d, d);
    check(sh(cmd) == 0, "stand-in weights folder");
    /* LPIPS at the same reduced widths */
    LpipsConfig cfg = {{1, 2, 4, 8, 8}};
    Lpips l;
    lpips_build(&l, &cfg);
    Rng rng;
    rng_seed(&rng, 1);
    lpips_init_random(&l, &rng);
    I2vError e;
    char path[256];
    snprintf(path, sizeof path, "%s/w/lpips_vgg.safetensors", d);
    check(st_save_paramset(path, &l.ps, NULL, 0, NULL, &e) == 0, "stand-in LPIPS: %s", e.msg);
    lpips_free(&l);
    /* the monitor's network from the config key (the tiny clips are too short for it: it only opens) */
    snprintf(cmd, sizeof cmd, "./i2v train-stage1 --config tiny --out %s/m --steps 2 --eval-batches 1 "
             "Training.fvd_weights=%s/w/i3d.safetensors --fvd-width-div 64 && "
             "./i2v train-ae --config tiny --out %s/m --steps 2 && "
             "./i2v train-cinn --config tiny --out %s/m --steps 2 --eval-batches 1 "
             "Training.fvd_weights=%s/w/i3d.safetensors --fvd-width-div 64", d, d, d, d, d);
    if (!check(sh(cmd) == 0, "a tiny model trains")) return;
    check(output_has("stage 1: FVD monitor once per epoch with i3d-monitor stand-in") &&
              output_has("cINN: FVD monitor once per epoch with i3d-monitor stand-in"),
          "Training.fvd_weights in the config turns the monitor on in both stages");
    /* a missing network is named before any sampling */
    snprintf(cmd, sizeof cmd, "./i2v evaluate --model %s/m --metrics dtfvd --weights %s/w --width-div 64", d, d);
    check(sh(cmd) == 1 && output_has("dti3d16.safetensors") && !output_has("sampling"),
          "a missing weight file is named before sampling");
    snprintf(cmd, sizeof cmd, "./i2v evaluate --model %s/m --metrics fvd,psnr", d);
    check(sh(cmd) == 2 && output_has("unknown metric 'psnr'"), "an unknown metric is refused");
    snprintf(cmd, sizeof cmd, "./i2v evaluate --model %s/m --metrics fid,fvd --weights %s/w --width-div 64 --clips 10", d, d);
    check(sh(cmd) == 1 && output_has("FVD needs at least one batch of 16 clips") && !output_has("sampling"),
          "too few clips for FVD's batch is refused before sampling");
    snprintf(cmd, sizeof cmd, "./i2v evaluate --model %s/m --metrics fvd,fid,lpips --weights %s/w --width-div 64 "
             "--clips 20 --bootstrap 20 --kid-subsets 2 --dump %s/dump", d, d, d);
    int rc = sh(cmd);
    check(rc == 0 && output_has("FVD") && output_has("i3d stand-in (i3d.safetensors; TF1 resize_bilinear"),
          "evaluate --metrics runs and names the network and preprocessing of its FVD");
    snprintf(path, sizeof path, "%s/m/metrics.txt", d);
    double fvd = report_value(path, "fvd"), lo = report_value(path, "fvd_ci_lo"), hi = report_value(path, "fvd_ci_hi");
    check(isfinite(fvd) && fvd > 0 && lo <= hi && report_value(path, "fvd_used") == 16 &&
              report_value(path, "fvd_dropped") == 4,
          "fvd=%g in [%g, %g], 16 of 20 clips", fvd, lo, hi);
    check(report_value(path, "fid_used") == 300 && report_value(path, "fid_dropped") == 20 &&
              isfinite(report_value(path, "fid")),
          "FID over 300 of 320 frames");
    check(report_value(path, "lpips") > 0 && report_value(path, "lpips_frames") == 320, "LPIPS over 320 frames");
    /* --dump: the clips it scored */
    const char *dumps[2] = {"test_clips.npy", "predicted.npy"};
    for (int k = 0; k < 2; k++) {
        NpyArray a;
        snprintf(path, sizeof path, "%s/dump/%s", d, dumps[k]);
        int ok = npy_read(path, &a, &e) == 0;
        check(ok && a.dtype == NPY_F32 && a.ndim == 5 && a.shape[0] == 20 && a.shape[1] == (k ? 16u : 17u) &&
                  a.shape[2] == 3,
              "--dump wrote %s (20, %d, 3, S, S)", dumps[k], k ? 16 : 17);
        if (ok) npy_free(&a);
    }
    snprintf(cmd, sizeof cmd, "rm -rf %s", d);
    sh(cmd);
}

int main(void) {
    test_assembly();
    test_evaluate_command();
    test_monitor();
    test_batch_rules();
    test_lpips();
    test_diversity();
    test_command();
    return check_summary("test_protocols");
}
