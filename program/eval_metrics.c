/* eval_metrics.c: the paper's metrics of a model folder, the features command, and the feature networks
 * as Embedders (eval_metrics.h).
 *
 * What it is: eval_synthesis_quality.py and eval_diversity.py as one command. For every test clip (the
 * test loader's 17 frames) one video is sampled from its first frame (batches of 6, seed 249); the
 * generated and real videos are assembled per data set and passed to the protocols (FVD with the
 * Kinetics I3D, DTFVD with the dynamic-texture I3D, FID with InceptionV3, LPIPS-VGG); for diversity, 5
 * videos are sampled per clip and scored with VGG16, the I3D and the DTI3D. Each Frechet distance comes
 * with a bootstrap interval and KID; the row is printed as a table and written as key=value lines.
 * What it is not: a reproduction of the official random numbers (torch's generator): the same seed gives
 * the same numbers here, not there. The diversity videos are sampled clip by clip (5 at once) rather than
 * realisation by realisation over the whole set, which changes only which random draw goes where.
 * Dimension legend: N clips, T frames, S frame size, D feature dimension, R realisations. */
#include "program/eval_metrics.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"
#include "formats/npy.h"
#include "networks/lpips.h"
#include "program/args.h"
#include "program/distances.h"
#include "program/model.h"
#include "program/progress.h"

/* ---- the feature networks as Embedders ------------------------------------------------------------- */
const char *feature_preprocessing(FeatureKind kind) {
    switch (kind) {
    case FEAT_I3D: return "TF1 resize_bilinear to 224, values in [-1, 1] (the paper's FVD)";
    case FEAT_I3D_MONITOR: return "bilinear align_corners=True to 224, values mapped to [0, 1] (the official monitor)";
    case FEAT_DTI3D16: return "bilinear align_corners=True to 224, [-1, 1], clip repeated 3x and cut to 16 frames";
    case FEAT_DTI3D32: return "bilinear align_corners=True to 224, [-1, 1], exactly 32 frames";
    case FEAT_INCEPTION: return "bilinear align_corners=False to 299, values in [-1, 1] (pytorch-fid)";
    case FEAT_VGG16: return "(x+1)/2, ImageNet mean/std, bilinear align_corners=False to 224";
    default: return "?";
    }
}

static void net_embed(void *self, const real *x, int n, int T, int H, int W, real *out) {
    NetEmbedder *ne = self;
    feature_net_embed(&ne->f, &ne->c, x, n, feature_is_video(ne->f.kind) ? T : 0, H, W, out);
}

int net_embedder_open(NetEmbedder *ne, FeatureKind kind, int width_div, const char *path, I2vError *e) {
    memset(ne, 0, sizeof *ne);
    if (feature_net_load_width(&ne->f, kind, width_div, path, e)) return -1;
    ctx_init_device(&ne->c, DEVICE_CPU);   /* the metric networks run on the CPU (docs/cuda.md) */
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    snprintf(ne->label, sizeof ne->label, "%s%s (%s; %s)", feature_kind_name(kind),
             width_div > 1 ? " stand-in" : "", base, feature_preprocessing(kind));
    ne->em = (Embedder){net_embed, ne, feature_net_dim(&ne->f), ne->label};
    return 0;
}

void net_embedder_close(NetEmbedder *ne) {
    feature_net_free(&ne->f);
    ctx_free(&ne->c);
}

/* VGG16's five maps of m frames (m, 3, H, W): maps[k] (m, sizes[k]), valid until the next call */
static void vgg_layers_hw(NetEmbedder *ne, const real *frames, int m, int H, int W, const real *maps[5],
                          size_t sizes[5]) {
    ctx_reset(&ne->c);
    Tensor *t[5];
    feature_net_vgg_layers(&ne->f, &ne->c, frames, m, H, W, t);
    for (int k = 0; k < 5; k++) {
        maps[k] = t[k]->data;
        sizes[k] = t[k]->numel / (size_t)m;
    }
}

/* the same as protocols.h's LayersFn */
static void vgg_layers(void *self, const real *frames, int m, int S, const real *maps[5], size_t sizes[5]) {
    vgg_layers_hw(self, frames, m, S, S, maps, sizes);
}

/* ---- the features command -------------------------------------------------------------------------- */
static const char features_help[] =
    "usage: i2v features --net i3d|i3d-monitor|dti3d16|dti3d32|inception|vgg16 --weights FILE --in VIDEOS.npy\n"
    "                    --out FEATURES.npy [--width-div N]\n"
    "  Embeds (N, T, 3, H, W) videos (the I3D kinds) or (N, 3, H, W) frames (inception, vgg16), float32 in\n"
    "  [-1, 1], with the protocol's preprocessing, into an (N, D) float32 file for 'i2v frechet'. vgg16 writes\n"
    "  the five relu maps of each frame, flattened and concatenated. --width-div N loads a reduced-width\n"
    "  stand-in (tests).\n";

int features_main(int argc, char **argv) {
    const char *net = NULL, *weights = NULL, *in = NULL, *out = NULL;
    int width_div = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("%s", features_help);
            return 0;
        }
        if (!v) {
            fprintf(stderr, "i2v features: '%s' needs a value\n%s", a, features_help);
            return 2;
        }
        i++;
        if (!strcmp(a, "--net")) net = v;
        else if (!strcmp(a, "--weights")) weights = v;
        else if (!strcmp(a, "--in")) in = v;
        else if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--width-div")) {
            long long n;
            if (arg_int("features", a, v, 1, 1024, &n)) return 2;
            width_div = (int)n;
        } else {
            fprintf(stderr, "i2v features: unknown option '%s'\n%s", a, features_help);
            return 2;
        }
    }
    if (!net || !weights || !in || !out) {
        fprintf(stderr, "%s", features_help);
        return 2;
    }
    I2vError e;
    FeatureKind kind;
    NpyArray a = {0};
    NetEmbedder ne;
    int loaded = 0, rc = 1;
    if (feature_kind_parse(net, &kind, &e)) goto fail;
    if (npy_read(in, &a, &e)) goto fail;
    int video = feature_is_video(kind);
    if (a.dtype != NPY_F32 || (int)a.ndim != (video ? 5 : 4) || a.shape[video ? 2 : 1] != 3) {
        err_set(&e, "%s: a %d-D %s array, expected %s float32 with 3 colour channels (values in [-1, 1])", in,
                a.ndim, a.dtype == NPY_F32 ? "float32" : a.dtype == NPY_F64 ? "float64" : "uint8",
                video ? "(N, T, 3, H, W) videos" : "(N, 3, H, W) frames");
        goto fail;
    }
    int N = (int)a.shape[0], T = video ? (int)a.shape[1] : 0;
    int H = (int)a.shape[video ? 3 : 2], W = (int)a.shape[video ? 4 : 3];
    if (N < 1 || H > 4096 || W > 4096 || T > 4096) {
        err_set(&e, "%s: shape with %d items of %d x %d pixels, expected at least 1 item of at most 4096 x 4096", in, N,
                H, W);
        goto fail;
    }
    const float *x = a.data;
    for (size_t i = 0; i < a.count; i++)
        if (!(x[i] >= -1.001f && x[i] <= 1.001f)) {
            err_set(&e, "%s: element %zu is %g, expected values in [-1, 1] (map [0, 255] images by x / 127.5 - 1)",
                    in, i, (double)x[i]);
            goto fail;
        }
    if (feature_input_check(kind, video ? T : 1, H, W, &e)) {
        char m[sizeof e.msg];
        snprintf(m, sizeof m, "%s", e.msg);
        err_set(&e, "%s: %s", in, m);
        goto fail;
    }
    if (net_embedder_open(&ne, kind, width_div, weights, &e)) goto fail;
    loaded = 1;
    size_t item = (size_t)(video ? T : 1) * 3 * H * W;
    real *buf = xmalloc(item * sizeof(real));
    float *res = NULL;
    size_t D = 0;
    for (int i = 0; i < N; i++) {
        for (size_t k = 0; k < item; k++) buf[k] = (real)x[(size_t)i * item + k];
        if (kind == FEAT_VGG16) {
            const real *maps[5];
            size_t sizes[5];
            vgg_layers_hw(&ne, buf, 1, H, W, maps, sizes);
            if (!res) {
                for (int k = 0; k < 5; k++) D += sizes[k];
                res = xmalloc((size_t)N * D * sizeof(float));
            }
            size_t at = 0;
            for (int k = 0; k < 5; k++)
                for (size_t j = 0; j < sizes[k]; j++) res[(size_t)i * D + at++] = (float)maps[k][j];
        } else {
            if (!res) {
                D = (size_t)ne.em.dim;
                res = xmalloc((size_t)N * D * sizeof(float));
            }
            real *o = xmalloc(D * sizeof(real));
            net_embed(&ne, buf, 1, T, H, W, o);
            for (size_t j = 0; j < D; j++) res[(size_t)i * D + j] = (float)o[j];
            free(o);
        }
    }
    free(buf);
    size_t shape[2] = {(size_t)N, D};
    rc = npy_write(out, NPY_F32, 2, shape, res, &e) ? 1 : 0;
    free(res);
    if (!rc) printf("features=%s\nnet=%s\nrows=%d\ndim=%zu\n", out, ne.label, N, D);
fail:
    if (loaded) net_embedder_close(&ne);
    npy_free(&a);
    if (rc) fprintf(stderr, "i2v features: %s\n", e.msg);
    return rc;
}

/* ---- evaluate --metrics ------------------------------------------------------------------------------ */
typedef struct MetricsOpts {
    const char *model, *weights, *report, *dump;
    unsigned metrics;
    int width_div, clips, resamples, fid_resamples, kid_subsets;
    uint64_t seed;
} MetricsOpts;

int eval_metrics_wanted(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--metrics") || !strcmp(argv[i], "--weights")) return 1;
    return 0;
}

static int parse_metrics(const char *list, unsigned *out, I2vError *e) {
    *out = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", list);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        if (!strcmp(tok, "fvd")) *out |= MET_FVD;
        else if (!strcmp(tok, "dtfvd")) *out |= MET_DTFVD;
        else if (!strcmp(tok, "fid")) *out |= MET_FID;
        else if (!strcmp(tok, "lpips")) *out |= MET_LPIPS;
        else if (!strcmp(tok, "diversity")) *out |= MET_DIVERSITY;
        else if (!strcmp(tok, "all")) *out |= MET_ALL;
        else return err_set(e, "--metrics: unknown metric '%s', expected a comma list of fvd, dtfvd, fid, lpips, "
                               "diversity (or all)", tok);
    }
    return *out ? 0 : err_set(e, "--metrics: an empty list");
}

/* <weights>/<name>; an error naming the file and how to make it when it is absent */
static int weight_path(char *out, size_t cap, const char *dir, const char *name, I2vError *e) {
    snprintf(out, cap, "%s/%s", dir, name);
    FILE *f = fopen(out, "rb");
    if (!f)
        return err_set(e, "%s: not found; the metric weights folder (--weights) holds i3d.safetensors, "
                          "dti3d16.safetensors, inception.safetensors, vgg16.safetensors and lpips_vgg.safetensors "
                          "made by tools/convert_metric_nets.py and tools/convert_official.py lpips (docs/metrics.md)", out);
    fclose(f);
    return 0;
}

static void print_frechet(FILE *f, const char *name, const FrechetReport *r, const char *net) {
    fprintf(f, "%-7s %10.3f", name, r->value);
    if (isfinite(r->ci_lo)) fprintf(f, "   [%9.3f, %9.3f] (%d resamples)", r->ci_lo, r->ci_hi, r->resamples);
    else fprintf(f, "   %-38s", "(no interval)");
    if (isfinite(r->kid)) fprintf(f, "   KID %.5f +- %.5f", r->kid, r->kid_std);
    fprintf(f, "\n        %d used, %d dropped by the batch rule; %s\n", r->used, r->dropped, net);
}

static void keyvals_frechet(FILE *f, const char *k, const FrechetReport *r, const char *net) {
    fprintf(f, "%s=%.6f\n%s_ci_lo=%.6f\n%s_ci_hi=%.6f\n%s_resamples=%d\n%s_kid=%.8f\n%s_kid_std=%.8f\n%s_used=%d\n"
               "%s_dropped=%d\n%s_net=%s\n",
            k, r->value, k, r->ci_lo, k, r->ci_hi, k, r->resamples, k, r->kid, k, r->kid_std, k, r->used, k,
            r->dropped, k, net);
}

static int write_row(const MetricsOpts *o, unsigned met, const MetricsRow *r, const char *set, I2vError *e) {
    printf("\n%s test set: %d clips of %d frames, seed %llu, model %s\n", set, r->clips, r->frames,
           (unsigned long long)o->seed, o->model);
    if (met & MET_FVD) print_frechet(stdout, "FVD", &r->fvd, r->fvd_net);
    if (met & MET_DTFVD) print_frechet(stdout, "DTFVD", &r->dtfvd, r->dtfvd_net);
    if (met & MET_FID) print_frechet(stdout, "FID", &r->fid, r->fid_net);
    if (met & MET_LPIPS) printf("%-7s %10.4f   over %d frames (LPIPS-VGG, chunks of 10)\n", "LPIPS", r->lpips, r->lpips_frames);
    if (met & MET_DIVERSITY)
        printf("%-7s VGG %.4f   I3D %.4f (%d clips)   DTI3D x1000 %.4f (%d clips)\n", "div", r->div_vgg, r->div_i3d,
               r->div_clips_i3d, r->div_dti3d, r->div_clips_dti3d);
    char path[DATA_PATH_MAX];
    if (o->report) snprintf(path, sizeof path, "%s", o->report);
    else snprintf(path, sizeof path, "%s/metrics.txt", o->model);
    char tmp[DATA_PATH_MAX + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return err_set(e, "%s: cannot write the metrics report", tmp);
    fprintf(f, "dataset=%s\nclips=%d\nframes=%d\nseed=%llu\nmodel=%s\n", set, r->clips, r->frames,
            (unsigned long long)o->seed, o->model);
    if (met & MET_FVD) keyvals_frechet(f, "fvd", &r->fvd, r->fvd_net);
    if (met & MET_DTFVD) keyvals_frechet(f, "dtfvd", &r->dtfvd, r->dtfvd_net);
    if (met & MET_FID) keyvals_frechet(f, "fid", &r->fid, r->fid_net);
    if (met & MET_LPIPS) fprintf(f, "lpips=%.6f\nlpips_frames=%d\n", r->lpips, r->lpips_frames);
    if (met & MET_DIVERSITY)
        fprintf(f, "diversity_vgg=%.6f\ndiversity_i3d=%.6f\ndiversity_i3d_clips=%d\ndiversity_dti3d=%.6f\n"
                   "diversity_dti3d_clips=%d\n",
                r->div_vgg, r->div_i3d, r->div_clips_i3d, r->div_dti3d, r->div_clips_dti3d);
    int bad = ferror(f);
    if (fclose(f) || bad || rename(tmp, path)) {
        remove(tmp);
        return err_set(e, "%s: writing the metrics report failed", path);
    }
    printf("key=value lines: %s\n", path);
    return 0;
}

/* ---- the networks and the scoring ------------------------------------------------------------------- */
const char *const metric_net_files[NET_FILES] = {"i3d.safetensors", "dti3d16.safetensors", "inception.safetensors",
                                                 "vgg16.safetensors", "lpips_vgg.safetensors"};

/* which files a set of metrics needs */
static int net_needed(unsigned met, int file) {
    switch (file) {
    case NET_FILE_I3D: return (met & (MET_FVD | MET_DIVERSITY)) != 0;
    case NET_FILE_DTI3D16: return (met & (MET_DTFVD | MET_DIVERSITY)) != 0;
    case NET_FILE_INCEPTION: return (met & MET_FID) != 0;
    case NET_FILE_VGG16: return (met & MET_DIVERSITY) != 0;
    default: return (met & MET_LPIPS) != 0;
    }
}

int metric_nets_open(MetricNets *mn, unsigned met, const char *const paths[NET_FILES], int width_div, I2vError *e) {
    memset(mn, 0, sizeof *mn);
    mn->metrics = met;
    if ((net_needed(met, NET_FILE_I3D) &&
         !(mn->have_i3d = !net_embedder_open(&mn->i3d, FEAT_I3D, width_div, paths[NET_FILE_I3D], e))) ||
        (net_needed(met, NET_FILE_DTI3D16) &&
         !(mn->have_dt = !net_embedder_open(&mn->dt, FEAT_DTI3D16, width_div, paths[NET_FILE_DTI3D16], e))) ||
        (net_needed(met, NET_FILE_INCEPTION) &&
         !(mn->have_inc = !net_embedder_open(&mn->inc, FEAT_INCEPTION, width_div, paths[NET_FILE_INCEPTION], e))) ||
        (net_needed(met, NET_FILE_VGG16) &&
         !(mn->have_vgg = !net_embedder_open(&mn->vgg, FEAT_VGG16, width_div, paths[NET_FILE_VGG16], e)))) {
        metric_nets_close(mn);
        return -1;
    }
    if (net_needed(met, NET_FILE_LPIPS)) {
        LpipsConfig lc = lpips_config_vgg16();
        for (int k = 0; k < LPIPS_SLICES; k++) lc.widths[k] = lc.widths[k] / width_div > 0 ? lc.widths[k] / width_div : 1;
        lpips_build(&mn->lp, &lc);
        if (lpips_load(&mn->lp, paths[NET_FILE_LPIPS], e)) {
            lpips_free(&mn->lp);
            metric_nets_close(mn);
            return -1;
        }
        mn->lp.dropout = 0;   /* lpips.LPIPS in eval(): no dropout */
        mn->have_lp = 1;
    }
    return 0;
}

void metric_nets_close(MetricNets *mn) {
    if (mn->have_i3d) net_embedder_close(&mn->i3d);
    if (mn->have_dt) net_embedder_close(&mn->dt);
    if (mn->have_inc) net_embedder_close(&mn->inc);
    if (mn->have_vgg) net_embedder_close(&mn->vgg);
    if (mn->have_lp) lpips_free(&mn->lp);
    memset(mn, 0, sizeof *mn);
}

int metrics_quality(MetricNets *mn, const real *gen, const real *real_, int n, int T, int S, const ProtocolOpts *po,
                    const ProtocolOpts *pf, MetricsRow *row, I2vError *e) {
    unsigned met = mn->metrics;
    row->clips = n;
    row->frames = T;
    /* eval_synthesis_quality.py's order: FID, LPIPS, DTFVD, FVD (the order changes no number) */
    if ((met & MET_FVD) && protocol_fvd(&mn->i3d.em, gen, real_, n, T, S, BATCH_FVD, po, &row->fvd, NULL, NULL, e))
        return -1;
    if ((met & MET_DTFVD) && protocol_fvd(&mn->dt.em, gen, real_, n, T, S, BATCH_DTFVD, po, &row->dtfvd, NULL, NULL, e))
        return -1;
    if ((met & MET_FID) && protocol_fid(&mn->inc.em, gen, real_, n, T, S, pf, &row->fid, e)) return -1;
    if ((met & MET_LPIPS) &&
        protocol_lpips(protocol_lpips_vgg, &mn->lp, gen, real_, n, T, S, &row->lpips, &row->lpips_frames, e))
        return -1;
    if (mn->have_i3d) snprintf(row->fvd_net, sizeof row->fvd_net, "%s", mn->i3d.label);
    if (mn->have_dt) snprintf(row->dtfvd_net, sizeof row->dtfvd_net, "%s", mn->dt.label);
    if (mn->have_inc) snprintf(row->fid_net, sizeof row->fid_net, "%s", mn->inc.label);
    return 0;
}

void diversity_begin(DiversityAcc *acc, const MetricNets *mn, int n, int G, int S) {
    memset(acc, 0, sizeof *acc);
    acc->n = n;
    acc->G = G;
    acc->S = S;
    acc->emb_i3d = xmalloc((size_t)n * DIVERSITY_REALISATIONS * mn->i3d.em.dim * sizeof(double));
    acc->emb_dt = xmalloc((size_t)n * DIVERSITY_REALISATIONS * mn->dt.em.dim * sizeof(double));
}

/* eval_diversity.py: the VGG score clip by clip; the I3D and DTI3D embeddings kept for the end (each video's
 * embedding does not depend on the batch it is in, so embedding clip by clip gives the official values) */
void diversity_add(DiversityAcc *acc, MetricNets *mn, int clip, const real *videos) {
    const int R = DIVERSITY_REALISATIONS;
    I2V_ASSERT(clip >= 0 && clip < acc->n, "clip %d of %d", clip, acc->n);
    acc->vgg_sum += protocol_diversity_vgg(vgg_layers, &mn->vgg, videos, 1, R, acc->G, acc->S);
    int D = mn->dt.em.dim > mn->i3d.em.dim ? mn->dt.em.dim : mn->i3d.em.dim;
    real *buf = xmalloc((size_t)R * D * sizeof(real));
    mn->i3d.em.embed(&mn->i3d, videos, R, acc->G, acc->S, acc->S, buf);
    for (size_t k = 0; k < (size_t)R * mn->i3d.em.dim; k++) acc->emb_i3d[(size_t)clip * R * mn->i3d.em.dim + k] = buf[k];
    mn->dt.em.embed(&mn->dt, videos, R, acc->G, acc->S, acc->S, buf);
    for (size_t k = 0; k < (size_t)R * mn->dt.em.dim; k++) acc->emb_dt[(size_t)clip * R * mn->dt.em.dim + k] = buf[k];
    free(buf);
}

void diversity_finish(DiversityAcc *acc, MetricNets *mn, MetricsRow *row) {
    const int R = DIVERSITY_REALISATIONS, n = acc->n;
    row->div_vgg = n > 0 ? acc->vgg_sum / n : NAN;
    /* compute_I3D_diversity cuts the clips to a multiple of 16, compute_DTI3D_diversity embeds each
     * realisation's clips in batches of 20 and drops the rest */
    row->div_clips_i3d = n / BATCH_DIVERSITY_I3D * BATCH_DIVERSITY_I3D;
    row->div_clips_dti3d = n / BATCH_DIVERSITY_DTI3D * BATCH_DIVERSITY_DTI3D;
    row->div_i3d = row->div_clips_i3d ? diversity_pairs(acc->emb_i3d, row->div_clips_i3d, R, (size_t)mn->i3d.em.dim)
                                      : NAN;
    row->div_dti3d = row->div_clips_dti3d
                         ? 1000 * diversity_pairs(acc->emb_dt, row->div_clips_dti3d, R, (size_t)mn->dt.em.dim)
                         : NAN;
    free(acc->emb_i3d);
    free(acc->emb_dt);
    acc->emb_i3d = acc->emb_dt = NULL;
}

/* --dump DIR: the clips the metrics scored, as float32 NPY, written once sampling is done */
static int dump_clips(const char *dir, const char *name, const real *x, int ndim, const size_t *shape, I2vError *e) {
    char path[DATA_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    size_t count = 1;
    for (int k = 0; k < ndim; k++) count *= shape[k];
    float *f = xmalloc(count * sizeof(float));
    for (size_t i = 0; i < count; i++) f[i] = (float)x[i];
    int rc = npy_write(path, NPY_F32, ndim, shape, f, e);
    free(f);
    if (!rc) printf("dumped %s\n", path);
    return rc;
}

/* Every metric asked for gets at least one whole batch from n clips of T frames of S x S pixels. */
static int metrics_check_count(unsigned met, int n, int T, int S, I2vError *e) {
    static const struct { unsigned met; const char *name; int per_clip, batch; const char *unit; } need[] = {
        {MET_FVD, "FVD", 0, BATCH_FVD, "clips"},
        {MET_DTFVD, "DTFVD", 0, BATCH_DTFVD, "clips"},
        {MET_FID, "FID", 1, BATCH_FID, "frames"},
        {MET_LPIPS, "LPIPS", 1, BATCH_LPIPS, "frames"},
        {MET_DIVERSITY, "the I3D diversity", 0, BATCH_DIVERSITY_I3D, "clips"},
        {MET_DIVERSITY, "the DTI3D diversity", 0, BATCH_DIVERSITY_DTI3D, "clips"},
    };
    for (size_t k = 0; k < sizeof need / sizeof *need; k++) {
        int have = need[k].per_clip ? n * T : n;
        if ((met & need[k].met) && have < need[k].batch)
            return err_set(e, "%s needs at least one batch of %d %s; the test set gives %d (%d clips of %d frames): "
                              "use more clips or leave the metric out of --metrics", need[k].name, need[k].batch,
                           need[k].unit, have, n, T);
    }
    /* LPIPS compares the frames as they are: its VGG halves them four times */
    if ((met & MET_LPIPS) && S < 16)
        return err_set(e, "LPIPS needs frames of at least 16 x 16 pixels (its VGG pools them four times); the model's "
                          "are %d x %d", S, S);
    return 0;
}

static const char metrics_help[] =
    "usage: i2v evaluate --model DIR --metrics fvd,dtfvd,fid,lpips,diversity [--weights DIR] [--clips N]\n"
    "                    [--bootstrap N] [--fid-bootstrap N] [--kid-subsets N] [--seed S] [--report FILE]\n"
    "                    [--dump DIR]\n"
    "  The paper's metrics on the model's test set, as the official eval_synthesis_quality.py and\n"
    "  eval_diversity.py compute them (docs/metrics.md): one sampled video per test clip (seed 249), clips\n"
    "  assembled per data set, FVD (Kinetics I3D, batches of 16), DTFVD (dynamic-texture I3D, 40), FID\n"
    "  (InceptionV3, 50 frames), LPIPS (chunks of 10 frames), and the VGG / I3D / DTI3D diversity of 5\n"
    "  samples per clip. Each Frechet distance comes with KID and a bootstrap 95 % interval (--bootstrap\n"
    "  1000 resamples of the clips; FID's, at 2048 features, costs about 7 s per resample on 2 cores, two\n"
    "  hours for 1000: --fid-bootstrap 0 by default). Prints a table; key=value lines go to DIR/metrics.txt\n"
    "  (--report).\n"
    "  --weights DIR   the converted metric networks (models/metrics); --width-div N reduced-width stand-ins\n"
    "  --dump DIR      also writes the clips it scored as float32 NPY: test_clips.npy (N, 17, 3, S, S), the\n"
    "                  test loader's x0 .. x16; predicted.npy (N, 16, 3, S, S), the video sampled from each x0;\n"
    "                  diversity.npy (N, 5, 16, 3, S, S), the diversity samples (holds them all in memory)\n";

int eval_metrics_main(int argc, char **argv) {
    MetricsOpts o = {NULL, "models/metrics", NULL, NULL, MET_ALL, 1, 0, BOOTSTRAP_RESAMPLES, 0, KID_SUBSETS, PROTOCOL_SEED};
    I2vError e;
    /* the integer options, each with its range */
    const struct {
        const char *name;
        int *field, min, max;
    } ints[] = {{"--width-div", &o.width_div, 1, 1024},       {"--clips", &o.clips, 0, INT_MAX},
                {"--bootstrap", &o.resamples, 0, INT_MAX},     {"--fid-bootstrap", &o.fid_resamples, 0, INT_MAX},
                {"--kid-subsets", &o.kid_subsets, 0, INT_MAX}};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("%s", metrics_help);
            return 0;
        }
        if (!v) {
            fprintf(stderr, "i2v evaluate: '%s' needs a value\n", a);
            return 2;
        }
        i++;
        int k = 0, nints = (int)(sizeof ints / sizeof *ints);
        while (k < nints && strcmp(a, ints[k].name)) k++;
        if (k < nints) {
            long long n;
            if (arg_int("evaluate", a, v, ints[k].min, ints[k].max, &n)) return 2;
            *ints[k].field = (int)n;
        } else if (!strcmp(a, "--model")) o.model = v;
        else if (!strcmp(a, "--weights")) o.weights = v;
        else if (!strcmp(a, "--report")) o.report = v;
        else if (!strcmp(a, "--dump")) o.dump = v;
        else if (!strcmp(a, "--metrics")) {
            if (parse_metrics(v, &o.metrics, &e)) {
                fprintf(stderr, "i2v evaluate: %s\n", e.msg);
                return 2;
            }
        } else if (!strcmp(a, "--seed")) {
            if (arg_u64("evaluate", a, v, &o.seed)) return 2;
        } else {
            fprintf(stderr, "i2v evaluate: unknown option '%s' with --metrics\n%s", a, metrics_help);
            return 2;
        }
    }
    if (!o.model) {
        fprintf(stderr, "%s", metrics_help);
        return 2;
    }
    unsigned met = o.metrics;
    /* every weight file first: a missing one should not cost a sampling run */
    char paths[NET_FILES][DATA_PATH_MAX];
    const char *pp[NET_FILES];
    for (int k = 0; k < NET_FILES; k++) {
        pp[k] = NULL;
        if (!net_needed(met, k)) continue;
        if (weight_path(paths[k], sizeof paths[k], o.weights, metric_net_files[k], &e)) {
            fprintf(stderr, "i2v evaluate: %s\n", e.msg);
            return 1;
        }
        pp[k] = paths[k];
    }
    if (o.dump && data_mkdirs(o.dump, &e)) {
        fprintf(stderr, "i2v evaluate: --dump: %s\n", e.msg);
        return 1;
    }
    MetricNets mn;
    int have_nets = 0, rc = 1;
    Model m;
    int have_model = 0, have_ds = 0;
    Dataset ds;
    real *gen = NULL, *realv = NULL, *clips = NULL, *samples = NULL, *x0 = NULL, *cond = NULL, *z = NULL;
    real *d_clips = NULL, *d_pred = NULL, *d_div = NULL;
    double *ctl = NULL;
    DiversityAcc acc = {0};
    if (metric_nets_open(&mn, met, pp, o.width_div, &e)) goto out;
    have_nets = 1;
    if (model_load(&m, o.model, MODEL_GEN | MODEL_COND | MODEL_FLOW, NULL, NULL, &e)) goto out;
    have_model = 1;
    DataConfig dc = m.s2.data;
    dc.sequence_length = PROTOCOL_TEST_FRAMES;
    if (dataset_open(&ds, &dc, DATA_TEST, o.seed, &e)) goto out;
    have_ds = 1;
    int S = m.size, N = (int)ds.nitems, T = protocol_frames(ds.set), G = PROTOCOL_GEN_FRAMES, R = DIVERSITY_REALISATIONS;
    if (o.clips > 0 && o.clips < N) N = o.clips;
    if (metrics_check_count(met, N, T, S, &e)) goto out;   /* before a sampling run, not after it */
    size_t f = (size_t)3 * S * S, clipn = (size_t)PROTOCOL_TEST_FRAMES * f;
    const int B = 6;   /* the official -bs */
    int BR = B > R ? B : R;
    MetricsRow row;
    memset(&row, 0, sizeof row);
    row.clips = N;
    row.frames = T;
    int quality = (met & (MET_FVD | MET_DTFVD | MET_FID | MET_LPIPS)) != 0;
    if (quality) {
        gen = xmalloc((size_t)N * T * f * sizeof(real));
        realv = xmalloc((size_t)N * T * f * sizeof(real));
    }
    if (o.dump && quality) {
        d_clips = xmalloc((size_t)N * clipn * sizeof(real));
        d_pred = xmalloc((size_t)N * G * f * sizeof(real));
    }
    if (o.dump && (met & MET_DIVERSITY)) d_div = xmalloc((size_t)N * R * G * f * sizeof(real));
    clips = xmalloc((size_t)B * clipn * sizeof(real));
    samples = xmalloc((size_t)BR * G * f * sizeof(real));
    x0 = xmalloc((size_t)BR * f * sizeof(real));
    cond = xmalloc((size_t)BR * (m.flow.cond_dim + FLOW_CONTROL_DIM) * sizeof(real));
    z = xmalloc((size_t)BR * m.z_dim * sizeof(real));
    ctl = xmalloc((size_t)BR * 3 * sizeof(double));
    if (met & MET_DIVERSITY) diversity_begin(&acc, &mn, N, G, S);
    Rng rng;
    rng_seed(&rng, o.seed);
    Progress p;
    const char *series[] = {"clips"};
    long total = (quality ? N : 0) + ((met & MET_DIVERSITY) ? N : 0);
    if (progress_init(&p, "evaluate: sampling", total, 1, series, NULL, 0, &e)) goto out;
    long done = 0;
    /* eval_synthesis_quality.py: one video per clip from its x0, batches of 6 */
    for (int i = 0; quality && i < N; i += B) {
        int nb = N - i < B ? N - i : B;
        for (int k = 0; k < nb; k++) {
            ClipInfo info;
            if (dataset_get(&ds, o.seed, 0, (size_t)(i + k), clips + (size_t)k * clipn, &info, &e)) goto fail_progress;
            memcpy(x0 + (size_t)k * f, clips + (size_t)k * clipn, f * sizeof(real));
            memcpy(ctl + 3 * k, info.control, 3 * sizeof(double));
        }
        model_condition(&m, x0, ctl, nb, cond);
        model_invert(&m, cond, nb, NULL, 1.0, &rng, z);
        model_decode(&m, x0, z, nb, G, samples);
        for (int k = 0; k < nb; k++)
            protocol_assemble(ds.set, clips + (size_t)k * clipn, samples + (size_t)k * G * f, S,
                              gen + (size_t)(i + k) * T * f, realv + (size_t)(i + k) * T * f);
        if (d_clips) {
            memcpy(d_clips + (size_t)i * clipn, clips, (size_t)nb * clipn * sizeof(real));
            memcpy(d_pred + (size_t)i * G * f, samples, (size_t)nb * G * f * sizeof(real));
        }
        done += nb;
        double v = (double)done;
        progress_step(&p, done - 1, 0, &v);
    }
    /* eval_diversity.py: 5 videos per clip */
    for (int i = 0; (met & MET_DIVERSITY) && i < N; i++) {
        ClipInfo info;
        if (dataset_get(&ds, o.seed, 0, (size_t)i, clips, &info, &e)) goto fail_progress;
        for (int k = 0; k < R; k++) {
            memcpy(x0 + (size_t)k * f, clips, f * sizeof(real));
            memcpy(ctl + 3 * k, info.control, 3 * sizeof(double));
        }
        model_condition(&m, x0, ctl, R, cond);
        model_invert(&m, cond, R, NULL, 1.0, &rng, z);
        model_decode(&m, x0, z, R, G, samples);
        diversity_add(&acc, &mn, i, samples);
        if (d_div) memcpy(d_div + (size_t)i * R * G * f, samples, (size_t)R * G * f * sizeof(real));
        done++;
        double v = (double)done;
        progress_step(&p, done - 1, 0, &v);
    }
    progress_finish(&p);
    if (o.dump) {
        size_t sc[5] = {(size_t)N, PROTOCOL_TEST_FRAMES, 3, (size_t)S, (size_t)S};
        size_t sp[5] = {(size_t)N, (size_t)G, 3, (size_t)S, (size_t)S};
        size_t sd[6] = {(size_t)N, (size_t)R, (size_t)G, 3, (size_t)S, (size_t)S};
        if ((d_clips && (dump_clips(o.dump, "test_clips.npy", d_clips, 5, sc, &e) ||
                         dump_clips(o.dump, "predicted.npy", d_pred, 5, sp, &e))) ||
            (d_div && dump_clips(o.dump, "diversity.npy", d_div, 6, sd, &e)))
            goto out;
    }
    ProtocolOpts po = {o.resamples, o.kid_subsets, o.seed}, pf = {o.fid_resamples, o.kid_subsets, o.seed};
    if (quality && metrics_quality(&mn, gen, realv, N, T, S, &po, &pf, &row, &e)) goto out;
    if (met & MET_DIVERSITY) diversity_finish(&acc, &mn, &row);
    static const char *const set_names[] = {"synthetic", "BAIR", "landscape", "iPER", "DTDB"};
    rc = write_row(&o, met, &row, set_names[ds.set], &e) ? 1 : 0;
    goto out;
fail_progress:
    progress_finish(&p);
out:
    if (rc) fprintf(stderr, "i2v evaluate: %s\n", e.msg);
    if (have_ds) dataset_close(&ds);
    if (have_model) model_free(&m);
    if (have_nets) metric_nets_close(&mn);
    free(acc.emb_i3d), free(acc.emb_dt);
    free(gen), free(realv), free(clips), free(samples), free(x0), free(cond), free(z), free(ctl), free(d_clips),
        free(d_pred), free(d_div);
    return rc;
}
