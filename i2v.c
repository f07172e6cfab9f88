/* i2v.c: the command line of i2v. One binary, one subcommand per job of the official repository.
 *
 * What it is: argument parsing, --help for every command, and the small drivers (inspect, prepare, bench)
 * that need nothing but the libraries. The jobs themselves live in program/: the training loops in run.c,
 * sampling, control and transfer in model.c, evaluation in evaluate.c, the demo in demo.c.
 * What it is not: where any network or kernel is defined.
 */
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "program/args.h"
#include "program/bench.h"
#include "data.h"
#include "program/demo.h"
#include "program/evaluate.h"
#include "formats/npy.h"
#include "program/model.h"
#include "program/eval_metrics.h"
#include "program/prepare.h"
#include "program/progress.h"
#include "program/protocols.h"
#include "program/run.h"
#include "formats/safetensors.h"
#include "program/visual.h"
#include "tensor.h"

/* ---- inspect: what a checkpoint holds ----------------------------------------------------------------- */

static int cmd_inspect(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        printf("usage: i2v inspect FILE.safetensors [--values]\n"
               "  Lists the tensors (name, dtype, shape), the parameter count, the metadata (config, training\n"
               "  state) of a checkpoint or model file. --values also prints the first values of each tensor.\n");
        return argc < 2 ? 2 : 0;
    }
    int values = argc > 2 && !strcmp(argv[2], "--values");
    StFile f;
    I2vError e;
    if (st_open(&f, argv[1], &e)) {
        fprintf(stderr, "i2v inspect: %s\n", e.msg);
        return 1;
    }
    size_t total = 0;
    printf("%s: %zu tensors, %zu bytes\n", argv[1], f.n, f.size);
    for (size_t i = 0; i < f.n; i++) {
        const StEntry *t = &f.entries[i];
        char shape[128] = "(";
        size_t k = 1;
        for (int d = 0; d < t->ndim && k < sizeof shape - 16; d++)
            k += (size_t)snprintf(shape + k, sizeof shape - k, d ? ", %zu" : "%zu", t->shape[d]);
        snprintf(shape + k, sizeof shape - k, ")");
        printf("  %-60s %-5s %s\n", t->name, st_dtype_name(t->dtype), shape);
        if (t->dtype == ST_F32 || t->dtype == ST_F16 || t->dtype == ST_BF16 || t->dtype == ST_F64) total += t->numel;
        if (values && t->numel) {
            Tensor *v = st_read_new(&f, t->name, t->dtype == ST_I64 ? DT_I64 : DT_REAL, &e);
            if (v) {
                printf("      ");
                for (size_t j = 0; j < v->numel && j < 6; j++) {
                    if (v->dtype == DT_I64) printf(" %lld", (long long)((int64_t *)v->ibuf)[j]);
                    else printf(" %.6g", (double)v->data[j]);
                }
                printf("%s\n", v->numel > 6 ? " ..." : "");
                tensor_free(v);
            }
        }
    }
    printf("floating-point elements: %zu\n", total);
    if (f.nmeta) printf("metadata:\n");
    for (size_t i = 0; i < f.nmeta; i++) {
        const char *v = f.meta[i].value;
        if (strchr(v, '\n')) printf("  %s:\n    %.*s...\n", f.meta[i].key, (int)(strchr(v, '\n') - v), v);
        else printf("  %s: %s\n", f.meta[i].key, v);
    }
    st_close(&f);
    return 0;
}

/* ---- training ---------------------------------------------------------------------------------------------- */

/* Parses the options every training command shares; Section.key=value arguments become overrides. */
static int parse_train_args(const char *cmd, int argc, char **argv, TrainOpts *o, int cinn) {
    train_opts_default(o);
    o->overrides = xmalloc((size_t)argc * sizeof *o->overrides);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        long long n = 0;
        double minutes = 0;
        if (!strcmp(a, "--resume")) {
            o->resume = 1;
            continue;
        }
        if (a[0] != '-' && strchr(a, '=')) {
            o->overrides[o->noverrides++] = argv[i];
            continue;
        }
        static const char *const with_value[] = {"--config", "--out", "--lpips", "--stage1", "--cond-ae", "--ae",
                                                 "--seed", "--steps", "--minutes", "--save-every", "--sample-every",
                                                 "--eval-batches", "--keep", "--resume-from", "--fvd-weights",
                                                 "--fvd-width-div", NULL};
        int known = 0;
        for (int k = 0; with_value[k]; k++) known |= !strcmp(a, with_value[k]);
        if (known && (!cinn && (!strcmp(a, "--stage1") || !strcmp(a, "--cond-ae") || !strcmp(a, "--ae")))) known = 0;
        if (!known) {
            fprintf(stderr, "i2v %s: unexpected argument '%s'; see 'i2v %s --help'\n", cmd, a, cmd);
            return 2;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "i2v %s: %s needs a value; see 'i2v %s --help'\n", cmd, a, cmd);
            return 2;
        }
        const char *v = argv[++i];
        int rc = 0;
        if (!strcmp(a, "--config")) o->config = v;
        else if (!strcmp(a, "--out")) o->out = v;
        else if (!strcmp(a, "--lpips")) o->lpips = v;
        else if (!strcmp(a, "--stage1")) o->stage1_dir = v;
        else if (!strcmp(a, "--cond-ae") || !strcmp(a, "--ae")) o->cond_ae_dir = v;
        else if (!strcmp(a, "--resume-from")) {
            o->resume_from = v;
            o->resume = 1;
        }
        else if (!strcmp(a, "--seed")) rc = arg_u64(cmd, a, v, &o->seed);
        else if (!strcmp(a, "--steps") && !(rc = arg_int(cmd, a, v, 0, LONG_MAX, &n))) o->max_steps = (long)n;
        else if (!strcmp(a, "--minutes") && !(rc = arg_real(cmd, a, v, 1e-9, 1e9, &minutes))) o->max_seconds = 60 * minutes;
        else if (!strcmp(a, "--save-every") && !(rc = arg_int(cmd, a, v, 0, LONG_MAX, &n))) o->save_every = (long)n;
        else if (!strcmp(a, "--sample-every") && !(rc = arg_int(cmd, a, v, 0, LONG_MAX, &n))) o->sample_every = (long)n;
        else if (!strcmp(a, "--eval-batches") && !(rc = arg_int(cmd, a, v, 0, INT_MAX, &n))) o->eval_batches = (int)n;
        else if (!strcmp(a, "--keep") && !(rc = arg_int(cmd, a, v, 1, 1000000, &n))) o->keep = (int)n;
        else if (!strcmp(a, "--fvd-weights")) o->fvd_weights = v;
        else if (!strcmp(a, "--fvd-width-div") && !(rc = arg_int(cmd, a, v, 1, 1024, &n))) o->fvd_width_div = (int)n;
        if (rc) return rc;
    }
    if (!o->config || !o->out) {
        fprintf(stderr, "i2v %s: --config and --out are required; e.g. i2v %s --config small --out models/run1\n",
                cmd, cmd);
        return 2;
    }
    return 0;
}

static const char train_help[] =
    "  --config NAME|FILE   an official config (bair, iPER, landscape, DTDB_<texture>), a CPU config (small,\n"
    "                       tiny) or a YAML file; Section.key=value arguments override its values\n"
    "  --out DIR            the model folder (checkpoint, config, loss log, sample GIFs)\n"
    "  --resume             continue the run saved in DIR (bitwise the same as not stopping); the schedule\n"
    "                       (Training.lr, lr_gamma, gamma, step_size, n_epochs) may be changed on resume\n"
    "  --resume-from FILE   continue from an older checkpoint of the run (DIR/checkpoints/), e.g. to step back\n"
    "                       past a divergence; the later ones move to DIR/checkpoints/abandoned/\n"
    "  --keep N             checkpoints kept: the newest and N - 1 older ones in DIR/checkpoints/ (2)\n"
    "  --seed N             (42)    --steps N   stop after N steps    --minutes M   stop after M minutes\n"
    "  --save-every N       also checkpoint every N steps (always: each epoch, at the end, and when stopped\n"
    "                       by Ctrl-C or SIGTERM, which then exit with 130 or 143)\n"
    "  --sample-every N     write a sample GIF every N steps    --eval-batches N   validation batches per epoch\n"
    "  --lpips FILE         LPIPS weights (safetensors) for configs with a perceptual loss\n"
    "  --fvd-weights FILE   stage 1 and cINN: the official training-time FVD monitor once per epoch with this\n"
    "                       network (Training.FVD: FVD -> i3d.safetensors, DTFVD -> dti3d16.safetensors); the\n"
    "                       best epoch's checkpoint is kept as best_PFVD_<checkpoint>. The config key\n"
    "                       Training.fvd_weights says the same (this option wins). Without either: off\n";

static int run_training(const char *cmd, int argc, char **argv, int (*train)(const TrainOpts *, I2vError *),
                        const char *what, int cinn) {
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: i2v %s --config NAME|FILE --out DIR [options] [Section.key=value ...]\n  %s\n%s%s", cmd, what,
               train_help,
               cinn ? "  --stage1 DIR         the trained stage-1 model (default: --out)\n"
                      "  --cond-ae DIR        the trained conditioning autoencoder (default: --out); --ae is an alias\n"
                    : "");
        return 0;
    }
    TrainOpts o;
    int rc = parse_train_args(cmd, argc, argv, &o, cinn);
    if (!rc) {
        I2vError e;
        if (train(&o, &e)) {
            fprintf(stderr, "i2v %s: %s\n", cmd, e.msg);
            rc = 1;
        } else if (run_interrupted) {
            rc = 128 + run_interrupted;   /* saved, but stopped by a signal: as shells and job schedulers expect */
        }
    }
    free(o.overrides);
    return rc;
}

static int cmd_train_stage1(int argc, char **argv) {
    return run_training("train-stage1", argc, argv, train_stage1,
                        "Trains stage 1: the video encoder, the generator and both discriminators.", 0);
}

static int cmd_train_cond_ae(int argc, char **argv) {
    return run_training("train-cond-ae", argc, argv, train_cond_ae,
                        "Trains the conditioning autoencoder (stage 2a), whose encoder embeds start frames.", 0);
}

static int cmd_train_cinn(int argc, char **argv) {
    return run_training("train-cinn", argc, argv, train_cinn,
                        "Trains the cINN (stage 2b) on latents of the frozen stage-1 encoder and conditioning\n"
                        "  encoder; Training.control=True adds the BAIR end-point control.",
                        1);
}

/* ---- inference: sample, control, transfer ------------------------------------------------------------------- */

/* Options of the inference commands. */
typedef struct InferOpts {
    const char *model, *out, *nu_path, *driving, *cinn_file, *cinn_config;
    const char *images[64];
    int nimages;
    double endpoints[16][3];
    int nendpoints;
    int from_test;               /* control: end points (and start frames) of this many test clips */
    char *overrides[16];         /* Data.key=value: the data set --from-test reads */
    int noverrides;
    int n, frames;
    uint64_t seed;
    double temperature;
} InferOpts;

/* x,y,z, each a normalised coordinate from 0 to 1 (NaN and infinities are refused: the one-hot bins of the
 * cINN's condition are made from them) */
static int parse_endpoint(const char *s, double p[3]) {
    char *end;
    for (int k = 0; k < 3; k++) {
        p[k] = strtod(s, &end);
        if (end == s || (k < 2 && *end != ',') || (k == 2 && *end) || !(p[k] >= 0 && p[k] <= 1)) return -1;
        s = end + 1;
    }
    return 0;
}

static int parse_infer_args(const char *cmd, int argc, char **argv, InferOpts *o) {
    memset(o, 0, sizeof *o);
    o->n = 4;
    o->seed = 249;   /* the official evaluation scripts' seed */
    o->temperature = 1;
    o->out = "samples";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long long n;
        if (a[0] != '-' && strchr(a, '=') && !strcmp(cmd, "control")) {   /* the data set of --from-test */
            if (strncmp(a, "Data.", 5) || o->noverrides == 16) {
                fprintf(stderr, "i2v %s: '%s': only Data.key=value overrides are taken (the data set of --from-test), "
                                "at most 16\n", cmd, a);
                return 2;
            }
            o->overrides[o->noverrides++] = argv[i];
            continue;
        }
        if (a[0] != '-') {
            fprintf(stderr, "i2v %s: unexpected argument '%s'; see 'i2v %s --help'\n", cmd, a, cmd);
            return 2;
        }
        if (!v) {
            fprintf(stderr, "i2v %s: '%s' needs a value; see 'i2v %s --help'\n", cmd, a, cmd);
            return 2;
        }
        i++;
        if (!strcmp(a, "--model")) o->model = v;
        else if (!strcmp(a, "--out")) o->out = v;
        else if (!strcmp(a, "--nu")) o->nu_path = v;
        else if (!strcmp(a, "--driving")) o->driving = v;
        else if (!strcmp(a, "--cinn")) o->cinn_file = v;
        else if (!strcmp(a, "--cinn-config")) o->cinn_config = v;
        else if (!strcmp(a, "--image")) {
            if (o->nimages == 64) {
                fprintf(stderr, "i2v %s: at most 64 images\n", cmd);
                return 2;
            }
            o->images[o->nimages++] = v;
        } else if (!strcmp(a, "--endpoint")) {
            if (o->nendpoints == 16 || parse_endpoint(v, o->endpoints[o->nendpoints])) {
                fprintf(stderr, "i2v %s: --endpoint expects x,y,z, each from 0 to 1 (a normalised end point, e.g. 0.5,0.3,0.4), "
                                "at most 16\n",
                        cmd);
                return 2;
            }
            o->nendpoints++;
        } else if (!strcmp(a, "--from-test")) {
            if (arg_int(cmd, a, v, 1, 64, &n)) return 2;
            o->from_test = (int)n;
        } else if (!strcmp(a, "-n")) {
            if (arg_int(cmd, a, v, 1, 64, &n)) return 2;
            o->n = (int)n;
        } else if (!strcmp(a, "--frames")) {
            if (arg_int(cmd, a, v, 1, 1000000, &n)) return 2;
            o->frames = (int)n;
        } else if (!strcmp(a, "--seed")) {
            if (arg_u64(cmd, a, v, &o->seed)) return 2;
        } else if (!strcmp(a, "--temperature")) {
            if (arg_real(cmd, a, v, 0, 1e6, &o->temperature)) return 2;   /* nu ~ t N(0, I): t finite, >= 0 */
        } else {
            fprintf(stderr, "i2v %s: unknown option '%s'; see 'i2v %s --help'\n", cmd, a, cmd);
            return 2;
        }
    }
    if (o->from_test && strcmp(cmd, "control")) {
        fprintf(stderr, "i2v %s: --from-test is an option of 'i2v control'\n", cmd);
        return 2;
    }
    if (o->from_test < 0 || o->from_test > 64 || (o->from_test && (o->nimages || o->nendpoints))) {
        fprintf(stderr, "i2v %s: --from-test N takes 1..64 test clips, and their start frames and end points "
                        "replace --image and --endpoint\n", cmd);
        return 2;
    }
    if (o->noverrides && !o->from_test) {
        fprintf(stderr, "i2v %s: Data.key=value overrides change the data set of --from-test, which is not given\n", cmd);
        return 2;
    }
    if (!o->model || (!o->nimages && !o->from_test)) {
        fprintf(stderr, "i2v %s: --model DIR and at least one --image FILE are required; see 'i2v %s --help'\n", cmd, cmd);
        return 2;
    }
    return 0;
}

/* Writes the generated videos (count, T, 3, S, S) as <name>.npy (float32), and the pictures: <name>.gif, the
 * tiles (R, C, T, 3, S, S) as a grid of R rows and C columns, and <name>_last.png, their last frames laid out
 * the same way; marks (R C, 2) or NULL (visual.h). */
static int write_outputs(const char *dir, const char *name, const real *videos, int count, int T, int S,
                         const real *tiles, int R, int C, const double *marks, I2vError *e) {
    char path[1200];
    if (data_mkdirs(dir, e)) return -1;
    size_t n = (size_t)count * T * 3 * S * S;
    float *f = xmalloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) f[i] = (float)videos[i];
    size_t shape[5] = {(size_t)count, (size_t)T, 3, (size_t)S, (size_t)S};
    snprintf(path, sizeof path, "%s/%s.npy", dir, name);
    int rc = npy_write(path, NPY_F32, 5, shape, f, e);
    free(f);
    int zoom = visual_zoom(S);
    snprintf(path, sizeof path, "%s/%s.gif", dir, name);
    if (!rc) rc = visual_gif(path, tiles, R, C, T, S, zoom, marks, e);
    real *last = visual_last_frames(tiles, R * C, T, S);
    snprintf(path, sizeof path, "%s/%s_last.png", dir, name);
    if (!rc) rc = visual_png(path, last, R, C, S, zoom, marks, e);
    free(last);
    if (!rc)
        printf("wrote %s/%s.gif, %s_last.png, %s.npy (%d videos of %d frames)\n", dir, name, name, name, count, T);
    return rc;
}

/* model_decode, a generator's length at a time for videos longer than that (re-conditioned on each last
 * frame, as model_decode does), saying every few seconds how far it got. */
static void decode_with_progress(Model *m, const real *x0, const real *z, int n, int T, real *video) {
    int F = m->frames;
    if (T <= 2 * F) {
        model_decode(m, x0, z, n, T, video);
        return;
    }
    size_t frame = (size_t)3 * m->size * m->size;
    real *start = xmalloc((size_t)n * frame * sizeof(real)), *chunk = xmalloc((size_t)n * F * frame * sizeof(real));
    memcpy(start, x0, (size_t)n * frame * sizeof(real));
    double t0 = progress_now(), shown = t0;
    for (int done = 0; done < T; done += F) {
        int take = T - done < F ? T - done : F;
        model_decode(m, start, z, n, take, chunk);
        for (int i = 0; i < n; i++) {
            memcpy(video + ((size_t)i * T + done) * frame, chunk + (size_t)i * take * frame, (size_t)take * frame * sizeof(real));
            memcpy(start + (size_t)i * frame, chunk + ((size_t)i * take + take - 1) * frame, frame * sizeof(real));
        }
        double now = progress_now();
        if (now - shown > 5 || done + take == T) {
            fprintf(stderr, "decoded %d of %d frames of %d videos (%.0f s)\n", done + take, T, n, now - t0);
            shown = now;
        }
    }
    free(start);
    free(chunk);
}

/* sample and control: n videos from each start image (rows: images, or image x end point, or test clips) */
static int run_sampling(const char *cmd, InferOpts *o, int control) {
    Model m;
    I2vError e;
    if (model_load(&m, o->model, MODEL_GEN | MODEL_FLOW, o->cinn_file, o->cinn_config, &e)) {
        fprintf(stderr, "i2v %s: %s\n", cmd, e.msg);
        return 1;
    }
    int rc = 0;
    if (control && !m.flow.cfg.control)
        rc = err_set(&e, "%s: this cINN was trained without control (Training.control False); train one with "
                         "Training.control=True, or use 'i2v sample'", o->model);
    if (!control && m.flow.cfg.control)
        rc = err_set(&e, "%s: this cINN expects an end point; use 'i2v control --endpoint x,y,z'", o->model);
    int S = m.size, T = o->frames ? o->frames : m.frames, Z = m.z_dim, C = m.flow.cond_dim;
    int rows = o->from_test ? o->from_test : o->nimages * (control ? o->nendpoints : 1), total = rows * o->n;
    if (!rc && control && !o->nendpoints && !o->from_test) rc = err_set(&e, "give at least one --endpoint x,y,z, or --from-test N");
    size_t frame = (size_t)3 * S * S;
    real *x0 = xmalloc((size_t)total * frame * sizeof(real)), *cond = xmalloc((size_t)total * C * sizeof(real));
    real *nu = xmalloc((size_t)total * Z * sizeof(real)), *z = xmalloc((size_t)total * Z * sizeof(real));
    double *ctl = xcalloc((size_t)total * 3, sizeof(double));
    real *real_clips = NULL;   /* --from-test: the test clips' frames 1.., (rows, T, 3, S, S) */
    DataSet set = DATA_SYNTHETIC;
    if (!rc) rc = data_set_from_name(m.s2.data.dataset, &set, &e);
    if (!rc && o->from_test) {   /* start frames and end points of test clips, as visualize_endpoint.py takes them */
        Dataset ds;
        int F = m.s2.data.sequence_length - 1;
        if (o->noverrides) rc = setup_override(STAGE2, &m.s2, o->noverrides, o->overrides, "control", &e);
        DataConfig dc = m.s2.data;
        setup_resolve_paths(&dc);
        if (!rc) rc = dataset_open(&ds, &dc, DATA_TEST, o->seed, &e);
        int opened = !rc;
        if (!rc && ds.nitems < (size_t)rows)
            rc = err_set(&e, "%s: --from-test %d, but the test split has %zu clips", o->model, rows, ds.nitems);
        real *clip = xmalloc((size_t)(F + 1) * frame * sizeof(real));
        real_clips = xmalloc((size_t)rows * T * frame * sizeof(real));
        for (int r = 0; r < rows && !rc; r++) {
            ClipInfo info;
            if ((rc = dataset_get(&ds, o->seed, 0, (size_t)r, clip, &info, &e))) break;
            for (int k = 0; k < o->n; k++) {
                memcpy(x0 + ((size_t)r * o->n + k) * frame, clip, frame * sizeof(real));
                memcpy(ctl + 3 * ((size_t)r * o->n + k), info.control, 3 * sizeof(double));
            }
            for (int t = 0; t < T; t++)   /* past the clip's end its last frame stays */
                memcpy(real_clips + ((size_t)r * T + t) * frame, clip + (size_t)(1 + (t < F ? t : F - 1)) * frame,
                       frame * sizeof(real));
        }
        free(clip);
        if (opened) dataset_close(&ds);
    }
    for (int r = 0; r < rows && !rc && !o->from_test; r++) {
        int img = control ? r / o->nendpoints : r;
        real *first = x0 + (size_t)r * o->n * frame;
        if (read_start_image(o->images[img], S, first, &e)) rc = -1;
        for (int k = 1; k < o->n && !rc; k++) memcpy(first + (size_t)k * frame, first, frame * sizeof(real));
        for (int k = 0; k < o->n && control; k++) memcpy(ctl + 3 * ((size_t)r * o->n + k), o->endpoints[r % o->nendpoints], 3 * sizeof(double));
    }
    Rng rng;
    rng_seed(&rng, o->seed);
    if (!rc && o->nu_path) {   /* residuals from a file: (total, Z) or (rows, n, Z), float32 */
        NpyArray a;
        if (npy_read(o->nu_path, &a, &e)) rc = -1;
        else {
            if (a.dtype != NPY_F32 || a.count != (size_t)total * Z)
                rc = err_set(&e, "%s: expected %d x %d float32 residuals (images x samples x z_dim), got %zu values",
                             o->nu_path, total, Z, a.count);
            for (size_t i = 0; !rc && i < a.count; i++) {
                nu[i] = ((float *)a.data)[i];
                if (!isfinite(nu[i])) rc = err_set(&e, "%s: value %zu is %g; residuals must be finite", o->nu_path, i, nu[i]);
            }
            npy_free(&a);
        }
    } else {
        for (size_t i = 0; i < (size_t)total * Z; i++) nu[i] = (real)(o->temperature * rng_normal(&rng));
    }
    real *video = NULL;
    if (!rc) {   /* the videos, their float copy for the NPY and the GIF's 8-bit frames and grid */
        char what[160];
        snprintf(what, sizeof what, "%d videos of %d frames of %dx%d, with their NPY and GIF copies", total, T, S, S);
        rc = setup_check_memory("--frames", (double)total * T * 3 * S * S * (sizeof(real) + sizeof(float) + 2), what,
                                "--frames or -n", &e);
    }
    if (!rc) {
        model_condition(&m, x0, ctl, total, cond);
        model_invert(&m, cond, total, nu, 1, NULL, z);
        video = xmalloc((size_t)total * T * 3 * S * S * sizeof(real));
        decode_with_progress(&m, x0, z, total, T, video);
        /* the pictures: per row the start frame, the real clip (--from-test), then the n videos; on the synthetic
         * set, whose end points are positions (x / S, y / S), each tile of a row marks its end point */
        int extra = o->from_test ? 1 : 0, cols = 1 + extra + o->n;
        real *videos = video, *tiles_x0 = NULL, *x0r = xmalloc((size_t)rows * frame * sizeof(real));
        for (int r = 0; r < rows; r++) memcpy(x0r + (size_t)r * frame, x0 + (size_t)r * o->n * frame, frame * sizeof(real));
        if (extra) {   /* rows of [real clip, n videos] */
            size_t vid = (size_t)T * frame;
            videos = xmalloc((size_t)rows * (o->n + 1) * vid * sizeof(real));
            for (int r = 0; r < rows; r++) {
                memcpy(videos + (size_t)r * (o->n + 1) * vid, real_clips + (size_t)r * vid, vid * sizeof(real));
                memcpy(videos + ((size_t)r * (o->n + 1) + 1) * vid, video + (size_t)r * o->n * vid,
                       (size_t)o->n * vid * sizeof(real));
            }
        }
        tiles_x0 = visual_with_x0(x0r, videos, rows, cols - 1, T, S);
        double *marks = NULL;
        if (control && set == DATA_SYNTHETIC) {
            marks = xmalloc((size_t)rows * cols * 2 * sizeof(double));
            for (int i = 0; i < rows * cols; i++) {
                marks[2 * i] = ctl[3 * ((size_t)(i / cols) * o->n)] * S;
                marks[2 * i + 1] = ctl[3 * ((size_t)(i / cols) * o->n) + 1] * S;
            }
        }
        rc = write_outputs(o->out, control ? "control" : "samples", video, total, T, S, tiles_x0, rows, cols, marks, &e);
        if (videos != video) free(videos);
        free(tiles_x0);
        free(x0r);
        free(marks);
        if (!rc) {   /* the residuals used, so the same videos can be made again with --nu */
            char path[1200];
            snprintf(path, sizeof path, "%s/%s_nu.npy", o->out, control ? "control" : "samples");
            float *f = xmalloc((size_t)total * Z * sizeof(float));
            for (size_t i = 0; i < (size_t)total * Z; i++) f[i] = (float)nu[i];
            size_t shape[2] = {(size_t)total, (size_t)Z};
            rc = npy_write(path, NPY_F32, 2, shape, f, &e);
            free(f);
        }
    }
    if (rc) fprintf(stderr, "i2v %s: %s\n", cmd, e.msg);
    free(video);
    free(x0);
    free(cond);
    free(nu);
    free(z);
    free(ctl);
    free(real_clips);
    model_free(&m);
    return rc ? 1 : 0;
}

static const char sample_help[] =
    "  --model DIR          a model folder (i2v train-stage1, train-cond-ae and train-cinn write one)\n"
    "  --image FILE         a start frame (PNG, JPEG, PPM), resized to the model's size; repeat for more\n"
    "  -n N                 videos per start frame (4)          --frames T   frames per video (the model's)\n"
    "  --seed N             (249, as the official scripts)      --temperature t   nu ~ t N(0, I) (1)\n"
    "  --nu FILE.npy        residuals instead of random ones (float32, images x n x z_dim), e.g. a *_nu.npy\n"
    "  --cinn FILE --cinn-config FILE   another cINN of the folder (default cinn.safetensors)\n"
    "  --out DIR            the output folder (samples); NAME is samples or control:\n"
    "                       NAME.gif       one row per start frame: the start frame, then its n videos side by side\n"
    "                                      (as generate_samples.py, with x0 added), enlarged to >= 128 pixels\n"
    "                       NAME_last.png  the last frames in the same places (as visualize_endpoint.py)\n"
    "                       NAME.npy       the videos (rows x n, T, 3, S, S), float32 in [-1, 1]\n"
    "                       NAME_nu.npy    the residuals used (for --nu)\n";

static int cmd_sample(int argc, char **argv) {
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: i2v sample --model DIR --image FILE [--image FILE ...] [options]\n"
               "  Samples videos that start from each image: nu ~ N(0, I), z = cINN^-1(nu | x0), video = G(x0, z).\n%s",
               sample_help);
        return 0;
    }
    InferOpts o;
    int rc = parse_infer_args("sample", argc, argv, &o);
    return rc ? rc : run_sampling("sample", &o, 0);
}

static int cmd_control(int argc, char **argv) {
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: i2v control --model DIR --image FILE --endpoint x,y,z [--endpoint ...] [options]\n"
               "       i2v control --model DIR --from-test N [options] [Data.key=value ...]\n"
               "  Videos driven to an end point (BAIR: the normalised end-effector position of the last frame;\n"
               "  the synthetic set: x / S, y / S, speed / max speed), with a cINN trained with Training.control=True.\n"
               "  --from-test N takes the start frames and end points of the first N test clips of the model's data set,\n"
               "  as visualize_endpoint.py does (Data.key=value arguments change that data set, e.g. Data.data_path=DIR);\n"
               "  the GIF and PNG then show each real clip after its start frame. On the\n"
               "  synthetic set a cross marks each row's end point.\n"
               "%s",
               sample_help);
        return 0;
    }
    InferOpts o;
    int rc = parse_infer_args("control", argc, argv, &o);
    return rc ? rc : run_sampling("control", &o, 1);
}

/* transfer: the motion of a driving clip onto other start frames (Model.transfer) */
static int cmd_transfer(int argc, char **argv) {
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: i2v transfer --model DIR --driving FOLDER --image FILE [--image FILE ...] [--out DIR]\n"
               "  Encodes the driving clip (its frames in natural order; frame 0 is its start frame) with the stage-1\n"
               "  posterior mean, maps it to the residual nu = cINN(mu | e(x0 of the clip)), and decodes\n"
               "  z' = cINN^-1(nu | e(x0')) for every target start frame x0'. Writes transfer.gif: the driving clip\n"
               "  followed by the transferred videos.\n");
        return 0;
    }
    InferOpts o;
    int rc = parse_infer_args("transfer", argc, argv, &o);
    if (rc) return rc;
    if (!o.driving) {
        fprintf(stderr, "i2v transfer: --driving FOLDER (the frames of the driving clip) is required\n");
        return 2;
    }
    Model m;
    I2vError e;
    if (model_load(&m, o.model, MODEL_ALL, o.cinn_file, o.cinn_config, &e)) {
        fprintf(stderr, "i2v transfer: %s\n", e.msg);
        return 1;
    }
    int S = m.size, T = m.frames + 1, Z = m.z_dim, C = m.flow.cond_dim, n = o.nimages;
    size_t frame = (size_t)3 * S * S;
    real *clip = xmalloc((size_t)T * frame * sizeof(real)), *x0 = xmalloc((size_t)n * frame * sizeof(real));
    real *z = xmalloc((size_t)(n > 1 ? n : 1) * Z * sizeof(real)), *nu = xmalloc((size_t)n * Z * sizeof(real));
    real *cond = xmalloc((size_t)n * C * sizeof(real)), *out = NULL;
    double ctl[3] = {0, 0, 0};
    char **names = NULL;
    size_t count = 0;
    rc = m.flow.cfg.control ? err_set(&e, "transfer needs a cINN without control") : 0;
    if (!rc) rc = data_list_dir(o.driving, 0, &names, &count, &e);
    if (!rc && count < (size_t)T)
        rc = err_set(&e, "%s: the driving clip needs %d frames (a start frame and %d more), found %zu files", o.driving, T,
                     T - 1, count);
    for (int t = 0; t < T && !rc; t++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", o.driving, names[t]);
        rc = read_start_image(path, S, clip + (size_t)t * frame, &e);
    }
    for (int i = 0; i < n && !rc; i++) rc = read_start_image(o.images[i], S, x0 + (size_t)i * frame, &e);
    if (!rc) {
        model_encode(&m, clip, 1, T, NULL, z);                /* the posterior mean of the driving clip */
        model_condition(&m, clip, ctl, 1, cond);              /* e of its own start frame */
        model_residual(&m, z, cond, 1, nu);                   /* nu = cINN(mu | e(x0)) */
        for (int i = 1; i < n; i++) memcpy(nu + (size_t)i * Z, nu, (size_t)Z * sizeof(real));
        double *ctls = xcalloc((size_t)n * 3, sizeof(double));
        model_condition(&m, x0, ctls, n, cond);
        free(ctls);
        model_invert(&m, cond, n, nu, 1, NULL, z);            /* z' = cINN^-1(nu | e(x0')) */
        int F = m.frames;
        out = xmalloc((size_t)(n + 1) * F * frame * sizeof(real));
        memcpy(out, clip + frame, (size_t)F * frame * sizeof(real));   /* the driving clip's frames 1..F */
        model_decode(&m, x0, z, n, F, out + (size_t)F * frame);
        rc = write_outputs(o.out, "transfer", out, n + 1, F, S, out, 1, n + 1, NULL, &e);
    }
    if (rc) fprintf(stderr, "i2v transfer: %s\n", e.msg);
    data_free_names(names, count);
    free(clip);
    free(x0);
    free(z);
    free(nu);
    free(cond);
    free(out);
    model_free(&m);
    return rc ? 1 : 0;
}

/* ---- prepare: data sets on disk ------------------------------------------------------------------------------ */

/* i2v prepare landscape|iPER|DTDB DIR: the official preparation step (landscape's renaming), then the
 * folder checked as the loaders will read it, with the configs' sequence length (17). */
static int prepare_paper_set(const char *what, const char *dir, const char *texture, const char *format,
                             const char *splits, int rename_frames) {
    DataConfig dc;
    data_config_default(&dc);
    I2vError e;
    DataSet set;
    if (data_set_from_name(what, &set, &e)) {
        fprintf(stderr, "i2v prepare: %s\n", e.msg);
        return 2;
    }
    snprintf(dc.dataset, sizeof dc.dataset, "%s", what);
    snprintf(dc.data_path, sizeof dc.data_path, "%s/", dir);   /* the official loaders concatenate, so end with '/' */
    if (set == DATA_DTDB) {
        static const char *const textures[] = {"clouds", "fire", "vegetation", "waterfall"};
        int ok = 0;
        for (int i = 0; i < 4; i++) ok |= texture && !strcmp(texture, textures[i]);
        if (!ok || (format && strcmp(format, "png") && strcmp(format, "jpg"))) {
            fprintf(stderr, "i2v prepare DTDB: --texture clouds|fire|vegetation|waterfall is required, --format png|jpg "
                            "(clouds are PNG, the others JPEG)\n");
            return 2;
        }
        snprintf(dc.texture, sizeof dc.texture, "%s", texture);
        snprintf(dc.image_format, sizeof dc.image_format, "%s", format ? format : !strcmp(texture, "clouds") ? "png" : "jpg");
    }
    if (splits) snprintf(dc.splits_dir, sizeof dc.splits_dir, "%s", splits);
    setup_resolve_paths(&dc);
    if (set == DATA_LANDSCAPE && rename_frames) {
        size_t renamed;
        if (prepare_rename_landscape(dir, &renamed, &e)) {
            fprintf(stderr, "i2v prepare landscape: %s\n", e.msg);
            return 1;
        }
        printf("renamed %zu frames to frame<k>.jpg (as rename_images.py)\n", renamed);
    }
    char report[512];
    if (prepare_check(&dc, report, sizeof report, &e)) {
        fprintf(stderr, "i2v prepare %s: %s\n", what, e.msg);
        return 1;
    }
    printf("%s in %s: %s\n", what, dir, report);
    return 0;
}

static int cmd_prepare(int argc, char **argv) {
    const char *usage_text =
        "usage: i2v prepare bair --tfrecords DIR --out DIR [--split train]\n"
        "         converts BAIR's TFRecords (softmotion30_44k/<split>/*.tfrecords) to the folder layout the loader\n"
        "         reads: <out>/<split>/<record>/<k>/<i>.png and endeffector_positions.csv (as convert_bair.py)\n"
        "       i2v prepare synthetic --out DIR [--layout bair|landscape|iper|dtdb] [--videos N] [--size S] [--seed N]\n"
        "         writes the built-in synthetic set in a paper data set's folder layout (to try the real loaders,\n"
        "         or to get start frames for 'i2v sample')\n"
        "       i2v prepare landscape DIR [--no-rename] [--splits DIR]\n"
        "       i2v prepare iPER DIR [--splits DIR]\n"
        "       i2v prepare DTDB DIR --texture clouds|fire|vegetation|waterfall [--format png|jpg]\n"
        "         checks a downloaded data set's folder as training and evaluation will read it (the official split\n"
        "         lists in configs/splits, or --splits), every frame of every video) and names the first bad path;\n"
        "         for landscape it first renames\n"
        "         each clip's frames to frame0.jpg, frame1.jpg, ... as the official rename_images.py does.\n"
        "         iPER's frames come from its videos with a standard tool, e.g. for each video V.mp4:\n"
        "           mkdir -p DIR/V && ffmpeg -i V.mp4 -vf scale=256:256:flags=bilinear -start_number 0 DIR/V/frame_%%d.png\n";
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        printf("%s", usage_text);
        return argc < 2 ? 2 : 0;
    }
    const char *what = argv[1], *tfr = NULL, *out = NULL, *split = "train", *layout = "bair";
    const char *texture = NULL, *format = NULL, *splits = NULL;
    int videos = 8, size = 64, rename_frames = 1, first = 2;
    uint64_t seed = 1;
    int check_set = !strcasecmp(what, "landscape") || !strcasecmp(what, "iPER") || !strcasecmp(what, "DTDB");
    if (check_set) {   /* i2v prepare <set> DIR [options] */
        if (argc < 3 || argv[2][0] == '-') {
            fprintf(stderr, "i2v prepare %s: the data set's folder is required\n%s", what, usage_text);
            return 2;
        }
        out = argv[2];
        first = 3;
    }
    for (int i = first; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long long n;
        if (check_set && !strcmp(a, "--no-rename")) {
            rename_frames = 0;
            continue;
        }
        if (!v) {
            fprintf(stderr, "i2v prepare: '%s' needs a value\n%s", a, usage_text);
            return 2;
        }
        i++;
        if (!strcmp(a, "--tfrecords")) tfr = v;
        else if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--split")) split = v;
        else if (!strcmp(a, "--layout")) layout = v;
        else if (check_set && !strcmp(a, "--texture")) texture = v;
        else if (check_set && !strcmp(a, "--format")) format = v;
        else if (check_set && !strcmp(a, "--splits")) splits = v;
        else if (!strcmp(a, "--videos")) {
            if (arg_int("prepare", a, v, 1, 1000000, &n)) return 2;
            videos = (int)n;
        } else if (!strcmp(a, "--size")) {
            if (arg_int("prepare", a, v, 8, 4096, &n)) return 2;
            size = (int)n;
        } else if (!strcmp(a, "--seed")) {
            if (arg_u64("prepare", a, v, &seed)) return 2;
        } else {
            fprintf(stderr, "i2v prepare: unknown option '%s'\n%s", a, usage_text);
            return 2;
        }
    }
    I2vError e;
    if (!out) {
        fprintf(stderr, "i2v prepare: --out DIR is required\n%s", usage_text);
        return 2;
    }
    if (check_set) return prepare_paper_set(what, out, texture, format, splits, rename_frames);
    if (!strcmp(what, "bair")) {
        if (!tfr) {
            fprintf(stderr, "i2v prepare bair: --tfrecords DIR is required\n");
            return 2;
        }
        size_t n;
        if (bair_convert(tfr, out, split, &n, &e)) {
            fprintf(stderr, "i2v prepare: %s\n", e.msg);
            return 1;
        }
        printf("wrote %zu trajectories under %s/%s\n", n, out, split);
        return 0;
    }
    if (!strcmp(what, "synthetic")) {
        DataConfig dc;
        data_config_default(&dc);
        SynthConfig sc;
        synth_config_from(&dc, &sc);
        SynthExport ex;
        memset(&ex, 0, sizeof ex);
        if (data_set_from_name(layout, &ex.layout, &e) || ex.layout == DATA_SYNTHETIC || videos < 1 || size < 8) {
            fprintf(stderr, "i2v prepare: --layout bair|landscape|iper|dtdb, --videos >= 1, --size >= 8\n");
            return 2;
        }
        ex.nvideos[0] = ex.nvideos[1] = ex.nvideos[2] = videos;
        ex.frames = 30;
        ex.size = size;
        snprintf(ex.texture, sizeof ex.texture, "clouds");
        snprintf(ex.image_format, sizeof ex.image_format, "png");
        if (synth_export(&sc, seed, &ex, out, &e)) {
            fprintf(stderr, "i2v prepare: %s\n", e.msg);
            return 1;
        }
        printf("wrote %d synthetic videos per split in the %s layout under %s\n", videos, layout, out);
        return 0;
    }
    fprintf(stderr, "i2v prepare: unknown data set '%s'\n%s", what, usage_text);
    return 2;
}

/* ---- evaluate and demo ---------------------------------------------------------------------------------------- */

static int cmd_evaluate(int argc, char **argv) {
    if (eval_metrics_wanted(argc, argv)) return eval_metrics_main(argc, argv);   /* the paper's metrics */
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        printf("usage: i2v evaluate --model DIR [--clips N] [--samples K] [--split eval|test] [--seed N]\n"
               "                    [--control-cinn FILE --control-config FILE] [--report FILE] [Data.key=value ...]\n"
               "  Measures a model folder on held-out clips of its data set: stage-1 reconstruction (L1, PSNR, SSIM,\n"
               "  and the repeat-x0 baseline), the cINN's negative log-likelihood, and on the synthetic set the\n"
               "  motion statistics (energy distance of sampled vs true end displacements, with the still-video and\n"
               "  truth-vs-truth references), whether samples keep the object's shape and colour (shape_iou,\n"
               "  colour_error, beside their values for the real videos and for stage 1's reconstructions, recon_*;\n"
               "  docs/demo.md defines them) and, given a controlled cINN, the end-point error. key=value lines.\n"
               "  A folder with stage 1 only gets the reconstruction figures. Data.key=value arguments change the\n"
               "  data set evaluated on (e.g. Data.data_path=data/bair/ for a converted model).\n"
               "  With --metrics fvd,dtfvd,fid,lpips,diversity: the paper's metrics instead ('i2v evaluate --metrics\n"
               "  all --help').\n");
        return argc < 2 ? 2 : 0;
    }
    EvalOpts o = {NULL, NULL, NULL, 32, 4, 249, 2, 0, NULL};
    const char *report = NULL;
    char **overrides = xmalloc((size_t)argc * sizeof *overrides);
    int rc = 0;
    for (int i = 1; i < argc && !rc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long long n;
        if (a[0] != '-' && strchr(a, '=')) {   /* only the data set may change: the networks are the folder's */
            if (strncmp(a, "Data.", 5)) {
                fprintf(stderr, "i2v evaluate: '%s': only Data.key=value overrides are taken (the data set)\n", a);
                rc = 2;
            }
            overrides[o.noverrides++] = argv[i];
            continue;
        }
        if (!v) {
            fprintf(stderr, "i2v evaluate: '%s' needs a value\n", a);
            rc = 2;
            break;
        }
        i++;
        if (!strcmp(a, "--model")) o.model = v;
        else if (!strcmp(a, "--clips")) {
            if (arg_int("evaluate", a, v, 1, 1000000, &n)) rc = 2;
            o.clips = (int)n;
        } else if (!strcmp(a, "--samples")) {
            if (arg_int("evaluate", a, v, 1, 1000, &n)) rc = 2;
            o.samples = (int)n;
        } else if (!strcmp(a, "--seed")) {
            if (arg_u64("evaluate", a, v, &o.seed)) rc = 2;
        } else if (!strcmp(a, "--split")) {
            if (strcmp(v, "eval") && strcmp(v, "test")) {
                fprintf(stderr, "i2v evaluate: --split expects eval or test, got '%s'\n", v);
                rc = 2;
            }
            o.split = !strcmp(v, "eval") ? 1 : 2;
        }
        else if (!strcmp(a, "--control-cinn")) o.control_cinn = v;
        else if (!strcmp(a, "--control-config")) o.control_config = v;
        else if (!strcmp(a, "--report")) report = v;
        else {
            fprintf(stderr, "i2v evaluate: unknown option '%s'; see 'i2v evaluate --help'\n", a);
            rc = 2;
        }
    }
    if (!rc && !o.model) {
        fprintf(stderr, "i2v evaluate: --model DIR is required\n");
        rc = 2;
    }
    o.overrides = overrides;
    EvalReport r;
    I2vError e;
    if (!rc && (evaluate_model(&o, &r, &e) || report_write(&r, report, &e))) {
        fprintf(stderr, "i2v evaluate: %s\n", e.msg);
        rc = 1;
    }
    free(overrides);
    return rc;
}

static int cmd_demo(int argc, char **argv) {
    DemoOpts o = {"demo_out", 1, 42};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: i2v demo [--out DIR] [--scale F] [--seed N]\n"
                   "  Trains every stage on the built-in synthetic data set (small widths, 32 x 32 videos) for a fixed\n"
                   "  number of steps (the same seed gives the same report on any machine) and writes into DIR\n"
                   "  (demo_out): index.html, samples.gif, samples_last.png, control.gif, transfer.gif, report.txt,\n"
                   "  plus the models, configs and loss curves. --scale F (> 0, 1 by default) multiplies every stage's\n"
                   "  steps: 0.05 for a quick try, 4 for better samples in four times the time.\n");
            return 0;
        }
        if (!v) {
            fprintf(stderr, "i2v demo: '%s' needs a value; see 'i2v demo --help'\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "--out")) o.out = v;
        else if (!strcmp(a, "--scale")) {
            if (arg_real("demo", a, v, 1e-6, 1000, &o.scale)) return 2;
        } else if (!strcmp(a, "--seed")) {
            if (arg_u64("demo", a, v, &o.seed)) return 2;
        } else {
            fprintf(stderr, "i2v demo: unknown option '%s'; see 'i2v demo --help'\n", a);
            return 2;
        }
    }
    I2vError e;
    if (run_demo(&o, &e)) {
        if (run_interrupted) {
            fprintf(stderr, "i2v demo: stopped by a signal; the models trained so far are in %s\n", o.out);
            return 128 + run_interrupted;
        }
        fprintf(stderr, "i2v demo: %s\n", e.msg);
        return 1;
    }
    return 0;
}

/* ---- the command table ------------------------------------------------------------------------------------ */

typedef struct Command {
    const char *name;
    int (*run)(int argc, char **argv);   /* argv[0] is the command's name */
    const char *summary;
} Command;

static int cmd_bench(int argc, char **argv) { return bench_main(argc, argv); }
static int cmd_frechet(int argc, char **argv) { return frechet_main(argc, argv); }
static int cmd_features(int argc, char **argv) { return features_main(argc, argv); }

static const Command commands[] = {
    {"demo", cmd_demo, "train everything on the built-in synthetic data and show samples (about 12 minutes on 2 cores)"},
    {"train-stage1", cmd_train_stage1, "train the video autoencoder (stage 1)"},
    {"train-cond-ae", cmd_train_cond_ae, "train the conditioning image autoencoder (stage 2a)"},
    {"train-ae", cmd_train_cond_ae, "an alias of train-cond-ae"},
    {"train-cinn", cmd_train_cinn, "train the cINN (stage 2b), optionally with end-point control"},
    {"sample", cmd_sample, "sample videos from start images"},
    {"control", cmd_control, "sample videos driven to an end point (a cINN trained with control)"},
    {"transfer", cmd_transfer, "transfer the motion of a driving clip onto other start images"},
    {"prepare", cmd_prepare, "convert BAIR TFRecords to frames, or export the synthetic set"},
    {"evaluate", cmd_evaluate, "measure a model: reconstruction, likelihood, motion statistics, control"},
    {"features", cmd_features, "embed videos or frames with a metric network (I3D, DTI3D, InceptionV3, VGG16)"},
    {"frechet", cmd_frechet, "Frechet distance and KID between two feature sets (.npy)"},
    {"inspect", cmd_inspect, "list the tensors, config and training state of a checkpoint"},
    {"bench", cmd_bench, "speed benchmarks (gemm, conv, cinn, ae), one key=value line per result"},
};

static void usage(FILE *f) {
    fprintf(f,
            "i2v: stochastic image-to-video synthesis with cINNs (Dorkenwald et al., CVPR 2021), in C.\n"
            "\n"
            "usage: i2v <command> [options]      (i2v <command> --help for each)\n"
            "\n"
            "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nevery command: --device cpu|cuda (or I2V_DEVICE=...) chooses where to compute, default cpu;\n"
               "cuda needs the GPU build (make CUDA=1)\n");
}

/* Takes `--device NAME` (or --device=NAME) out of argv, wherever it is, and opens that device (else the one
 * I2V_DEVICE names, else the CPU). Returns 0, or prints the reason and returns the exit status. */
static int select_device(int *argc, char **argv) {
    const char *name = NULL;
    int k = 0;
    for (int i = 0; i < *argc; i++) {
        if (!strcmp(argv[i], "--device") && i + 1 < *argc) name = argv[++i];
        else if (!strncmp(argv[i], "--device=", 9)) name = argv[i] + 9;
        else argv[k++] = argv[i];
    }
    *argc = k;
    I2vError e;
    if (device_select(name, &e)) {
        fprintf(stderr, "i2v: %s\n", e.msg);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
#ifdef SIGXFSZ
    /* past a file-size limit (ulimit -f) a write should fail with EFBIG, which the savers report by name and
     * recover from, instead of killing the program mid-checkpoint */
    signal(SIGXFSZ, SIG_IGN);
#endif
    if (argc < 2 || !strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(stdout);
        return argc < 2 ? 2 : 0;
    }
    int status = select_device(&argc, argv);
    if (status) return status;
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "i2v: unknown command '%s'; run 'i2v help' for the list of commands\n", argv[1]);
    return 2;
}
