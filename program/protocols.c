/* protocols.c: clip assembly, batch rules and the metric figures of the official evaluation (protocols.h).
 *
 * What it is: the glue between sampled videos, a feature network and the distances, written so that each
 * official quirk is visible where it happens (the frames paired for landscape and DTDB, the remainders that
 * every batch size drops).
 * What it is not: the networks (networks/features.h) or the numerics of the distances (distances.c).
 * Dimension legend: n clips, T frames, S frame size, D feature dimension, R realisations. */
#include "program/protocols.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "formats/npy.h"
#include "networks/lpips.h"
#include "program/distances.h"

int protocol_frames(DataSet set) { return set == DATA_IPER ? 17 : 16; }

void protocol_assemble(DataSet set, const real *seq, const real *gen, int S, real *out_gen, real *out_real) {
    size_t f = (size_t)3 * S * S;
    int T = protocol_frames(set);
    /* the real video is always the first T frames of the test clip */
    memcpy(out_real, seq, (size_t)T * f * sizeof(real));
    if (set == DATA_LANDSCAPE || set == DATA_DTDB) {
        /* eval_synthesis_quality.py compares seq_gen (g1..g16) with seq[:, :-1] (x0..x15) */
        memcpy(out_gen, gen, (size_t)T * f * sizeof(real));
    } else {
        /* BAIR: cat(x0, g[:15]); iPER: cat(x0, g) */
        memcpy(out_gen, seq, f * sizeof(real));
        memcpy(out_gen + f, gen, (size_t)(T - 1) * f * sizeof(real));
    }
}

/* Embeds n items (each `T` frames; T = 1 for image networks) batch by batch into out (n, D) doubles. */
static int embed_all(const Embedder *em, const real *x, int n, int T, int S, int batch, double *out, I2vError *e) {
    size_t item = (size_t)(T > 0 ? T : 1) * 3 * S * S;
    real *buf = xmalloc((size_t)batch * em->dim * sizeof(real));
    for (int i = 0; i < n; i += batch) {
        int m = n - i < batch ? n - i : batch;
        em->embed(em->net, x + (size_t)i * item, m, T, S, S, buf);
        for (size_t k = 0; k < (size_t)m * em->dim; k++) {
            if (!isfinite(buf[k])) {
                double bad = buf[k];
                free(buf);
                return err_set(e, "%s: the features of item %d are not finite (%g); the inputs must be finite "
                                  "frames in [-1, 1]", em->label, i + (int)(k / em->dim), bad);
            }
            out[(size_t)i * em->dim + k] = buf[k];
        }
    }
    free(buf);
    return 0;
}

/* Frechet distance, KID and the bootstrap interval of two embedded sets of nclips clips of `rows` rows. */
static void frechet_report(const double *a, const double *b, int nrows, int nclips, int rows, int D,
                           const ProtocolOpts *o, FrechetReport *r) {
    r->value = frechet_distance(a, nrows, NULL, b, nrows, NULL, D);
    r->resamples = o->resamples;
    r->ci_lo = r->ci_hi = NAN;
    if (o->resamples > 0 && nclips >= 2) frechet_bootstrap(a, b, nclips, rows, D, o->resamples, o->seed, &r->ci_lo, &r->ci_hi);
    r->kid = r->kid_std = NAN;
    if (o->kid_subsets > 0) kid_score(a, nrows, b, nrows, D, o->kid_subsets, KID_SUBSET_SIZE, o->seed, &r->kid, &r->kid_std);
}

int protocol_fvd(const Embedder *em, const real *gen, const real *real_, int n, int T, int S, int batch,
                 const ProtocolOpts *o, FrechetReport *r, double *features_gen, double *features_real, I2vError *e) {
    memset(r, 0, sizeof *r);
    if (n < batch || n < 2)
        return err_set(e, "%s: %d clips, fewer than one batch of %d (the protocol embeds whole batches only and "
                          "drops the rest)", em->label, n, batch);
    int used = n / batch * batch, D = em->dim;
    r->used = used;
    r->dropped = n - used;
    double *a = xmalloc((size_t)used * D * sizeof(double)), *b = xmalloc((size_t)used * D * sizeof(double));
    int rc = embed_all(em, gen, used, T, S, batch, a, e) || embed_all(em, real_, used, T, S, batch, b, e);
    if (!rc) {
        frechet_report(a, b, used, used, 1, D, o, r);
        if (features_gen) memcpy(features_gen, a, (size_t)used * D * sizeof(double));
        if (features_real) memcpy(features_real, b, (size_t)used * D * sizeof(double));
    }
    free(a);
    free(b);
    return rc ? -1 : 0;
}

int protocol_fid(const Embedder *em, const real *gen, const real *real_, int n, int T, int S, const ProtocolOpts *o,
                 FrechetReport *r, I2vError *e) {
    memset(r, 0, sizeof *r);
    int frames = n * T;
    if (frames < BATCH_FID)
        return err_set(e, "%s: %d frames, fewer than one batch of %d (FID embeds whole batches only)", em->label,
                       frames, BATCH_FID);
    int used = frames / BATCH_FID * BATCH_FID, D = em->dim;
    r->used = used;
    r->dropped = frames - used;
    double *a = xmalloc((size_t)used * D * sizeof(double)), *b = xmalloc((size_t)used * D * sizeof(double));
    int rc = embed_all(em, gen, used, 1, S, BATCH_FID, a, e) || embed_all(em, real_, used, 1, S, BATCH_FID, b, e);
    if (!rc) {
        r->value = frechet_distance(a, used, NULL, b, used, NULL, D);
        r->resamples = o->resamples;
        r->ci_lo = r->ci_hi = NAN;
        int whole = used / T;   /* clips all of whose frames survived the cut */
        if (o->resamples > 0 && whole >= 2)
            frechet_bootstrap(a, b, whole, T, D, o->resamples, o->seed, &r->ci_lo, &r->ci_hi);
        r->kid = r->kid_std = NAN;
        if (o->kid_subsets > 0)
            kid_score(a, used, b, used, D, o->kid_subsets, KID_SUBSET_SIZE, o->seed, &r->kid, &r->kid_std);
    }
    free(a);
    free(b);
    return rc ? -1 : 0;
}

int protocol_lpips(LpipsFn lpips, void *net, const real *gen, const real *real_, int n, int T, int S, double *score,
                   int *frames_used, I2vError *e) {
    int frames = n * T, chunks = frames / BATCH_LPIPS;
    if (chunks < 1) return err_set(e, "LPIPS: %d frames, fewer than one chunk of %d", frames, BATCH_LPIPS);
    size_t f = (size_t)3 * S * S;
    real d[BATCH_LPIPS];
    double sum = 0;
    for (int c = 0; c < chunks; c++) {
        lpips(net, gen + (size_t)c * BATCH_LPIPS * f, real_ + (size_t)c * BATCH_LPIPS * f, BATCH_LPIPS, S, d);
        double m = 0;
        for (int k = 0; k < BATCH_LPIPS; k++) m += d[k];
        sum += m / BATCH_LPIPS;
    }
    *score = sum / chunks;
    if (frames_used) *frames_used = chunks * BATCH_LPIPS;
    return 0;
}

void protocol_lpips_vgg(void *net, const real *x, const real *y, int m, int S, real *out) {
    Ctx c;
    ctx_init_device(&c, DEVICE_CPU);   /* the metric networks run on the CPU (docs/cuda.md) */
    c.grad_enabled = 0;
    c.training = 0;
    Tensor *a = tensor_new(&c, 4, DIMS(m, 3, S, S)), *b = tensor_new(&c, 4, DIMS(m, 3, S, S));
    memcpy(a->data, x, a->numel * sizeof(real));
    memcpy(b->data, y, b->numel * sizeof(real));
    Tensor *d = lpips_forward(&c, net, a, b, NULL);
    memcpy(out, d->data, (size_t)m * sizeof(real));
    ctx_free(&c);
}

double diversity_pairs(const double *e, int n, int R, size_t d) {
    double total = 0;
    for (int i = 0; i < R; i++)
        for (int j = 0; j < R; j++) {
            if (i == j) continue;
            double s = 0;
            for (int c = 0; c < n; c++) {
                const double *a = e + ((size_t)c * R + i) * d, *b = e + ((size_t)c * R + j) * d;
                for (size_t k = 0; k < d; k++) s += (a[k] - b[k]) * (a[k] - b[k]);
            }
            total += s / ((double)n * d);
        }
    return R > 1 ? total / ((double)R * (R - 1)) : 0;
}

int protocol_diversity_embed(const Embedder *em, const real *videos, int n, int R, int T, int S, int batch,
                             double scale, double *score, I2vError *e) {
    if (n < batch)
        return err_set(e, "%s diversity: %d clips, fewer than one batch of %d", em->label, n, batch);
    int used = n / batch * batch;
    double *emb = xmalloc((size_t)used * R * em->dim * sizeof(double));
    /* (used, R) videos in their stored order; each video's embedding does not depend on its batch */
    int rc = embed_all(em, videos, used * R, T, S, batch, emb, e);
    if (!rc) *score = scale * diversity_pairs(emb, used, R, (size_t)em->dim);
    free(emb);
    return rc;
}

double protocol_diversity_vgg(LayersFn layers, void *net, const real *videos, int n, int R, int T, int S) {
    size_t f = (size_t)3 * S * S;
    double total = 0;
    for (int c = 0; c < n; c++) {
        const real *maps[5];
        size_t sizes[5];
        layers(net, videos + (size_t)c * R * T * f, R * T, S, maps, sizes);
        for (int l = 0; l < 5; l++) {
            /* realisation i of this clip is rows [i T, (i + 1) T) of the map: (R, T sizes[l]) */
            size_t d = (size_t)T * sizes[l];
            double pairs = 0;
            for (int i = 0; i < R; i++)
                for (int j = 0; j < R; j++) {
                    if (i == j) continue;
                    const real *a = maps[l] + (size_t)i * d, *b = maps[l] + (size_t)j * d;
                    double s = 0;
                    for (size_t k = 0; k < d; k++) s += ((double)a[k] - b[k]) * ((double)a[k] - b[k]);
                    pairs += s / d;
                }
            total += R > 1 ? pairs / ((double)R * (R - 1)) : 0;
        }
    }
    return total / (5.0 * n);
}

/* ---- the frechet command ------------------------------------------------------------------------- */
static double *read_features(const char *path, int *n, int *d, I2vError *e) {
    NpyArray a;
    if (npy_read(path, &a, e)) return NULL;
    if (a.ndim != 2 || a.dtype == NPY_U8) {
        err_set(e, "%s: a %d-D %s array, expected a 2-D (N, D) float32 or float64 feature array", path, a.ndim,
                a.dtype == NPY_U8 ? "uint8" : "float");
        npy_free(&a);
        return NULL;
    }
    if (a.shape[0] > (1u << 24) || a.shape[1] > (1u << 16) || a.shape[1] < 1) {
        err_set(e, "%s: shape (%zu, %zu), expected N <= 16777216 rows of 1 to 65536 features", path, a.shape[0],
                a.shape[1]);
        npy_free(&a);
        return NULL;
    }
    *n = (int)a.shape[0];
    *d = (int)a.shape[1];
    double *x = xmalloc((a.count + 1) * sizeof(double));
    for (size_t i = 0; i < a.count; i++) x[i] = a.dtype == NPY_F64 ? ((double *)a.data)[i] : ((float *)a.data)[i];
    npy_free(&a);
    if (distances_check(x, *n, *d, 2, path, e)) {
        free(x);
        return NULL;
    }
    return x;
}

static const char frechet_help[] =
    "usage: i2v frechet A.npy B.npy [--kid-subsets N] [--kid-size M] [--bootstrap N] [--rows R] [--seed S]\n"
    "  The Frechet distance between the Gaussians fitted to two (N, D) feature sets (float32 or float64 .npy;\n"
    "  e.g. from 'i2v features'), in double precision, and KID. Prints frechet=, kid=, kid_std= lines.\n"
    "  --kid-subsets N   KID's random subsets (100; 0: no KID); --kid-size M rows per subset (min(1000, N))\n"
    "  --bootstrap N     also the 2.5/97.5 percentile interval over N resamples of the rows (0), paired: row\n"
    "                    i of A goes with row i of B (equal N needed); --rows R resamples groups of R rows\n"
    "                    (a clip's frames, for FID on frames)\n"
    "  --seed S          of the KID subsets and the resamples (249)\n";

int frechet_main(int argc, char **argv) {
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("%s", frechet_help);
        return 0;
    }
    const char *path[2] = {NULL, NULL};
    int np = 0, subsets = KID_SUBSETS, size = 0, boot = 0, rows = 1;
    uint64_t seed = PROTOCOL_SEED;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] == '-' && a[1] == '-') {
            if (i + 1 >= argc) {
                fprintf(stderr, "i2v frechet: '%s' needs a value\n%s", a, frechet_help);
                return 2;
            }
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 0 || v > 1000000) {
                fprintf(stderr, "i2v frechet: %s '%s': expected a non-negative integer\n", a, argv[i]);
                return 2;
            }
            if (!strcmp(a, "--kid-subsets")) subsets = (int)v;
            else if (!strcmp(a, "--kid-size")) size = (int)v;
            else if (!strcmp(a, "--bootstrap")) boot = (int)v;
            else if (!strcmp(a, "--rows") && v >= 1) rows = (int)v;
            else if (!strcmp(a, "--seed")) seed = (uint64_t)v;
            else {
                fprintf(stderr, "i2v frechet: unknown option '%s'\n%s", a, frechet_help);
                return 2;
            }
        } else if (np < 2) {
            path[np++] = a;
        } else {
            fprintf(stderr, "i2v frechet: more than two files ('%s')\n%s", a, frechet_help);
            return 2;
        }
    }
    if (np != 2) {
        fprintf(stderr, "%s", frechet_help);
        return 2;
    }
    I2vError e;
    int n1, d1, n2, d2;
    double *x1 = read_features(path[0], &n1, &d1, &e), *x2 = x1 ? read_features(path[1], &n2, &d2, &e) : NULL;
    int rc = 0;
    if (!x1 || !x2) {
        rc = 1;
    } else if (d1 != d2) {
        err_set(&e, "%s has %d features per row but %s has %d: expected the same network's features", path[0], d1,
                path[1], d2);
        rc = 1;
    } else if (boot && (n1 != n2 || n1 % rows || n1 / rows < 2)) {
        err_set(&e, "--bootstrap pairs row i of %s with row i of %s: expected equal row counts (%d, %d) that are a "
                    "multiple of --rows %d, at least 2 groups", path[0], path[1], n1, n2, rows);
        rc = 1;
    }
    if (rc) {
        fprintf(stderr, "i2v frechet: %s\n", e.msg);
        free(x1);
        free(x2);
        return 1;
    }
    printf("n_a=%d\nn_b=%d\ndim=%d\n", n1, n2, d1);
    printf("frechet=%.10g\n", frechet_distance(x1, n1, NULL, x2, n2, NULL, d1));
    if (subsets > 0) {
        double km, ks;
        kid_score(x1, n1, x2, n2, d1, subsets, size, seed, &km, &ks);
        int m = size > 0 ? size : KID_SUBSET_SIZE;
        m = m < n1 ? m : n1;
        m = m < n2 ? m : n2;
        printf("kid=%.10g\nkid_std=%.10g\nkid_subsets=%d\nkid_subset_size=%d\n", km, ks, subsets, m);
    }
    if (boot) {
        double lo, hi;
        frechet_bootstrap(x1, x2, n1 / rows, rows, d1, boot, seed, &lo, &hi);
        printf("frechet_ci_lo=%.10g\nfrechet_ci_hi=%.10g\nbootstrap_resamples=%d\n", lo, hi, boot);
    }
    free(x1);
    free(x2);
    return 0;
}
