/* gpu_models.c: the networks and the training runs on the GPU against the CPU (make CUDA=1 test-gpu).
 *
 * In this process: the cINN built twice from one seed, on the CPU and on the GPU (parameter sets follow
 * the device chosen when they are made): its exact inversion and log-determinants on the GPU, its outputs
 * against the CPU's, and 20 training steps on both; the temporal discriminator's gradient penalty and the
 * parameter gradient of its surrogate on both devices.
 * Through ./i2v (the float build): 20 steps of each stage of the tiny config on both devices, whose logged
 * losses must agree; the GPU run twice, which must log the same numbers; and a run that checkpoints on the
 * CPU, resumes on the GPU, checkpoints there and finishes on the CPU, against the CPU-only run.
 *
 * Tolerances. One op differs between the devices by a few units in the last place (gpu_ops.c); a network
 * compounds that over its layers, and training over its steps (see compare_logs). So the in-process forward
 * results are held to 1e-4 of their scale (about 30 ops in a row), gradients through a tangent pass to 1e-3,
 * the cINN's 20 steps to 2e-2, and the logged losses of the runs as compare_logs says. In the double build the
 * in-process comparisons are 1e-9; the runs through ./i2v (a float
 * binary) happen only in the float build. I2V_GPU_TEST_STEPS changes the number of training steps (the CUDA
 * emulator uses a few).
 * Without a GPU the program says `skipped: no GPU` and passes.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ae.h"
#include "check.h"
#include "cuda/cuda.h"
#include "flow.h"
#include "ops/optim.h"
#include "tensor.h"

static int steps = 20;

/* check() that prints its line when it passes too: the figures are what a GPU run reports */
#define show(ok, ...) (check((ok), __VA_ARGS__) && (printf("  "), printf(__VA_ARGS__), printf("\n"), 1))

static double tol(double f32) { return is_double_build() ? 1e-9 : f32; }

static void use(Device d) {
    I2vError e;
    I2V_ASSERT(!device_select(d == DEVICE_CUDA ? "cuda" : "cpu", &e), "%s", e.msg);
}

/* max |a - b| / max |b| over n values */
static double rel_error(const real *a, const real *b, size_t n) {
    double err = 0, scale = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(a[i]) || isnan(b[i])) return INFINITY;
        double d = fabs((double)a[i] - b[i]);
        if (d > err) err = d;
        if (fabs(b[i]) > scale) scale = fabs(b[i]);
    }
    return err == 0 ? 0 : err / (scale > 0 ? scale : 1);
}

static void host_values(Ctx *c, const Tensor *t, real *out) {
    ctx_sync(c);
    memcpy(out, t->data, t->numel * sizeof(real));
}

/* ---- the cINN ------------------------------------------------------------------------------------------- */

static void test_flow(void) {
    printf("the cINN\n");
    FlowConfig cfg = flow_config_bair();
    cfg.hidden = 96;
    cfg.n_flows = 8;
    enum { N = 13 };
    int D = cfg.z_dim, E = cfg.embed_dim;
    Flow f[2];
    for (int d = 0; d < 2; d++) {
        use(d ? DEVICE_CUDA : DEVICE_CPU);
        Rng r;
        rng_seed(&r, 77);
        flow_build(&f[d], &cfg, &r);
    }
    Rng r;
    rng_seed(&r, 5);
    real *z = xmalloc((size_t)N * D * sizeof(real)), *cond = xmalloc((size_t)N * E * sizeof(real));
    for (int i = 0; i < N * D; i++) z[i] = (real)rng_normal(&r);
    for (int i = 0; i < N * E; i++) cond[i] = (real)rng_normal(&r);
    real *nu[2], *ld[2], *back = xmalloc((size_t)N * D * sizeof(real));
    Ctx c[2];
    for (int d = 0; d < 2; d++) {
        ctx_init_device(&c[d], d ? DEVICE_CUDA : DEVICE_CPU);
        c[d].grad_enabled = 0;
        Tensor *zt = tensor_from_host(&c[d], 2, DIMS(N, D), z), *ct = tensor_from_host(&c[d], 2, DIMS(N, E), cond);
        Tensor *logdet;
        Tensor *out = flow_forward(&c[d], &f[d], zt, ct, &logdet);   /* the first batch initialises ActNorm */
        nu[d] = xmalloc(out->numel * sizeof(real));
        ld[d] = xmalloc(logdet->numel * sizeof(real));
        host_values(&c[d], out, nu[d]);
        host_values(&c[d], logdet, ld[d]);
        if (d == 1) {   /* the inverse on the GPU gives z back */
            Tensor *zz = flow_inverse(&c[d], &f[d], out, ct);
            host_values(&c[d], zz, back);
        }
        ctx_reset(&c[d]);
    }
    double e_nu = rel_error(nu[1], nu[0], (size_t)N * D), e_ld = rel_error(ld[1], ld[0], N);
    show(e_nu <= tol(1e-4) && e_ld <= tol(1e-4), "cINN forward on the GPU: nu within %.2g, log|det| within %.2g of the CPU",
          e_nu, e_ld);
    double e_inv = rel_error(back, z, (size_t)N * D);
    show(e_inv <= tol(1e-5), "cINN inverse on the GPU returns z within %.2g", e_inv);
    /* each block's log-determinant and its inverse's cancel, with non-trivial parameters after ActNorm's init */
    double worst = 0;
    for (int b = 0; b < cfg.n_flows; b++) {
        Tensor *zt = tensor_from_host(&c[1], 2, DIMS(N, D), z), *ct = tensor_from_host(&c[1], 2, DIMS(N, E), cond);
        Tensor *lf, *li;
        Tensor *y = block_forward(&c[1], &f[1], &f[1].blocks[b], zt, ct, &lf);
        block_inverse(&c[1], &f[1], &f[1].blocks[b], y, ct, &li);
        real a[N], bb[N];
        host_values(&c[1], lf, a);
        host_values(&c[1], li, bb);
        for (int i = 0; i < N; i++) {
            double s = fabs((double)a[i] + bb[i]) / (fabs(a[i]) + 1e-30);
            if (s > worst) worst = s;
        }
        show(fabs(a[0]) > 1e-3, "block %d has a non-trivial log-determinant (%.3g)", b, (double)a[0]);
        ctx_reset(&c[1]);
    }
    show(worst <= tol(1e-5), "forward and inverse log-determinants cancel on the GPU (within %.2g)", worst);

    /* training: the same batches on both devices, AMSGrad as in the official stage 2 */
    Adam opt[2];
    double loss[2][64];
    int n = steps < 64 ? steps : 64;
    for (int d = 0; d < 2; d++) {
        adam_init(&opt[d], 1e-3, 0.9, 0.999, 1e-8, 1e-5, 1);
        adam_add_params(&opt[d], &f[d].ps);
        c[d].grad_enabled = 1;
        Rng br;
        rng_seed(&br, 11);
        for (int s = 0; s < n; s++) {
            for (int i = 0; i < N * D; i++) z[i] = (real)rng_normal(&br);
            FlowStepStats st;
            flow_train_step(&c[d], &f[d], &opt[d], z, cond, N, &st);
            loss[d][s] = st.loss;
        }
    }
    double first = fabs(loss[1][0] - loss[0][0]) / fabs(loss[0][0]), all = 0;
    for (int s = 0; s < n; s++) {
        double e = fabs(loss[1][s] - loss[0][s]) / (fabs(loss[0][s]) + 1e-3);
        if (e > all) all = e;
    }
    show(first <= tol(1e-4) && all <= tol(2e-2),
          "cINN: %d training steps on both devices: loss %.5g vs %.5g at the first, %.5g vs %.5g at the last (worst %.2g)",
          n, loss[1][0], loss[0][0], loss[1][n - 1], loss[0][n - 1], all);
    for (int d = 0; d < 2; d++) {
        adam_free(&opt[d]);
        flow_free(&f[d]);
        ctx_free(&c[d]);
        free(nu[d]);
        free(ld[d]);
    }
    free(z);
    free(cond);
    free(back);
}

/* ---- the gradient penalty --------------------------------------------------------------------------------- */

static void test_penalty(void) {
    printf("the temporal discriminator's gradient penalty\n");
    Stage1Config cfg = stage1_config_tiny();
    TemporalDisc disc[2];
    enum { N = 2, T = 8, S = 32 };
    real *x = xmalloc((size_t)N * 3 * T * S * S * sizeof(real));
    Rng r;
    rng_seed(&r, 3);
    for (int i = 0; i < N * 3 * T * S * S; i++) x[i] = (real)(2 * rng_uniform(&r) - 1);
    double gp[2], logits[2][N];
    real *grads[2];
    for (int d = 0; d < 2; d++) {
        use(d ? DEVICE_CUDA : DEVICE_CPU);
        Rng init;
        rng_seed(&init, 8);
        disc_t_build(&disc[d], &cfg.Discriminator_Temporal, &init);
        Ctx c;
        ctx_init(&c);
        Tensor *xt = tensor_from_host(&c, 5, DIMS(N, 3, T, S, S), x);
        xt->requires_grad = 1;
        DiscTrace trace;
        Tensor *out = disc_t_forward(&c, &disc[d], xt, NULL, &trace), *surrogate;
        gp[d] = disc_t_gradient_penalty(&c, &disc[d], xt, out, &trace, &surrogate);
        paramset_zero_grad(&disc[d].ps);
        backward(&c, surrogate);
        ctx_sync(&c);
        for (int i = 0; i < N; i++) logits[d][i] = out->data[i];
        ParamSet *ps = &disc[d].ps;
        grads[d] = xmalloc(ps->nvalues * sizeof(real));
        for (int i = 0; i < ps->n; i++)
            if (ps->t[i]->is_param) param_grad(ps->t[i]);
        ctx_sync(&c);
        memcpy(grads[d], ps->grads, ps->nvalues * sizeof(real));
        ctx_free(&c);
    }
    double e_l = fmax(fabs(logits[1][0] - logits[0][0]), fabs(logits[1][1] - logits[0][1])) /
                 fmax(fabs(logits[0][0]), fabs(logits[0][1]));
    show(e_l <= tol(1e-4), "D_t logits on the GPU within %.2g of the CPU", e_l);
    show(fabs(gp[1] - gp[0]) <= tol(1e-4) * fabs(gp[0]), "the penalty on the GPU: %.7g, on the CPU %.7g", gp[1], gp[0]);
    double worst = 0;
    const char *where = "";
    ParamSet *ps = &disc[0].ps;
    for (int i = 0; i < ps->n; i++) {
        Tensor *t = ps->t[i];
        if (!t->is_param) continue;
        size_t off = (size_t)(t->data - ps->values);
        double e = rel_error(grads[1] + off, grads[0] + off, t->numel);
        if (e > worst) {
            worst = e;
            where = t->name;
        }
    }
    show(worst <= tol(1e-3), "the penalty's parameter gradient on the GPU: every tensor within %.2g of the CPU (worst %s)",
          worst, where);
    for (int d = 0; d < 2; d++) {
        free(grads[d]);
        disc_t_free(&disc[d]);
    }
    free(x);
}

/* ---- the training runs through ./i2v -------------------------------------------------------------------------- */

static char dir[256];
static char i2v[600] = "./i2v";   /* the i2v built beside this program (its variant's, not whatever ./i2v is) */

static int run(const char *fmt, ...) {
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    char full[2400];
    snprintf(full, sizeof full, "%s > %s/out.txt 2>&1", cmd, dir);
    int rc = system(full);
    if (rc != 0) {
        printf("  command failed: %s\n", cmd);
        char tail[2400];
        snprintf(tail, sizeof tail, "tail -5 %s/out.txt", dir);
        if (system(tail) != 0) printf("  (no output)\n");
    }
    return rc;
}

/* The losses of a CSV log: every column but step, epoch and seconds, row by row. */
typedef struct Log {
    int rows, cols;
    double v[64][16];
    char names[16][32];
} Log;

static int read_log(const char *path, Log *l) {
    memset(l, 0, sizeof *l);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[4096];
    if (!fgets(line, sizeof line, f)) {
        fclose(f);
        return -1;
    }
    int col = 0;
    for (char *tok = strtok(line, ",\n"); tok; tok = strtok(NULL, ",\n"), col++)
        if (col >= 3 && l->cols < 16) snprintf(l->names[l->cols++], 32, "%s", tok);
    while (l->rows < 64 && fgets(line, sizeof line, f)) {
        col = 0;
        for (char *tok = strtok(line, ",\n"); tok; tok = strtok(NULL, ",\n"), col++)
            if (col >= 3 && col - 3 < 16) l->v[l->rows][col - 3] = strtod(tok, NULL);
        l->rows++;
    }
    fclose(f);
    return 0;
}

/* Columns left out of the comparisons: the conditioning AE's adaptive weight is the ratio of two gradient norms
 * whose denominator is about 1000 times the smaller, so its relative rounding error is 1000 times the loss's;
 * during the warm-up the steps here cover, it multiplies a term that is switched off (disc_factor 0). */
static int compared(const char *column) { return strcmp(column, "disc_weight") != 0; }

/* The worst difference of b to a over rows [r0, r1), relative to each column's scale (the largest |value| of
 * a's column) plus atol; with `mean`, of the columns' means over those rows instead. *what names it. */
static double log_diff(const Log *a, const Log *b, int r0, int r1, double atol, int mean, char *what, size_t cap) {
    if (a->rows != b->rows || a->cols != b->cols) {
        snprintf(what, cap, "logs of %d and %d rows", a->rows, b->rows);
        return INFINITY;
    }
    double worst = 0;
    for (int k = 0; k < a->cols; k++) {
        if (!compared(a->names[k])) continue;
        double scale = 0, ma = 0, mb = 0;
        for (int r = 0; r < a->rows; r++)
            if (fabs(a->v[r][k]) > scale) scale = fabs(a->v[r][k]);
        for (int r = r0; r < r1 && r < a->rows; r++) {
            if (isnan(b->v[r][k])) {
                snprintf(what, cap, "%s at step %d is NaN", a->names[k], r);
                return INFINITY;
            }
            ma += a->v[r][k] / (r1 - r0);
            mb += b->v[r][k] / (r1 - r0);
            double e = fabs(b->v[r][k] - a->v[r][k]) / (scale + atol);
            if (!mean && e > worst) {
                worst = e;
                snprintf(what, cap, "%s at step %d: %.6g vs %.6g", a->names[k], r, b->v[r][k], a->v[r][k]);
            }
        }
        double e = fabs(mb - ma) / (scale + atol);
        if (mean && e > worst) {
            worst = e;
            snprintf(what, cap, "%s: mean %.6g vs %.6g", a->names[k], mb, ma);
        }
    }
    return worst;
}

/* Training on two devices: the first step must agree to rounding (same parameters, same batch: 1e-3 of each
 * loss's range). After it the runs are two trajectories from nearby points: Adam's first updates are +-lr
 * whatever a gradient's size, so a gradient that is rounding noise on one device (exactly zero on the other)
 * moves its parameter by lr, and the losses drift apart step by step (under the CPU emulation of the GPU, the
 * conditioning AE's generator loss is 3% of its range off after 3 steps). So later steps are held only to
 * staying close: every step within 25% of its column's range, the run's means within 10%; a broken kernel gives
 * NaN, garbage or a factor, far outside both. */
static void compare_logs(const char *stage, const char *file, const char *cpu_dir, const char *gpu_dir) {
    char pa[512], pb[512], what[256] = "";
    snprintf(pa, sizeof pa, "%s/%s", cpu_dir, file);
    snprintf(pb, sizeof pb, "%s/%s", gpu_dir, file);
    Log a, b;
    if (!show(read_log(pa, &a) == 0 && read_log(pb, &b) == 0 && a.rows == steps, "%s: both devices logged %d steps",
              stage, steps))
        return;
    double first = log_diff(&a, &b, 0, 1, 1e-3, 0, what, sizeof what);
    show(first <= 1e-3, "%s: the first step on the GPU logs the CPU's losses within %.2g of their range (worst: %s)",
         stage, first, what);
    double all = log_diff(&a, &b, 0, steps, 1e-3, 0, what, sizeof what);
    show(all <= 0.25, "%s: every step within %.2g of the range (worst: %s)", stage, all, what);
    double mean = log_diff(&a, &b, 0, steps, 1e-3, 1, what, sizeof what);
    show(mean <= 0.1, "%s: the means over %d steps within %.2g of the range (worst: %s)", stage, steps, mean, what);
}

static void test_runs(void) {
    if (is_double_build()) return;   /* ./i2v is the float build: its runs are checked once */
    printf("training runs through ./i2v (%d steps each)\n", steps);
    snprintf(dir, sizeof dir, "/tmp/i2v_gpu_models_XXXXXX");
    if (!show(mkdtemp(dir) != NULL, "a temporary folder")) return;
    const char *dev[2] = {"cpu", "cuda"};
    for (int d = 0; d < 2; d++) {
        show(run("%s --device %s train-stage1 --config tiny --out %s/%s --steps %d --eval-batches 1", i2v, dev[d], dir,
                  dev[d], steps) == 0,
              "train-stage1 on the %s", dev[d]);
        show(run("%s --device %s train-ae --config tiny --out %s/%s --steps %d", i2v, dev[d], dir, dev[d], steps) == 0,
              "train-ae on the %s", dev[d]);
        /* both cINNs learn the codes of the CPU's stage-1 and AE models, so they see the same data */
        show(run("%s --device %s train-cinn --config tiny --out %s/%s --stage1 %s/cpu --ae %s/cpu --steps %d "
                 "--eval-batches 1", i2v, dev[d], dir, dev[d], dir, dir, steps) == 0,
              "train-cinn on the %s", dev[d]);
    }
    char cpu_dir[300], gpu_dir[300], again[300], trip[300], what[256] = "";
    snprintf(cpu_dir, sizeof cpu_dir, "%s/cpu", dir);
    snprintf(gpu_dir, sizeof gpu_dir, "%s/cuda", dir);
    compare_logs("stage 1", "stage1_losses.csv", cpu_dir, gpu_dir);
    compare_logs("conditioning AE", "cond_ae_losses.csv", cpu_dir, gpu_dir);
    compare_logs("cINN", "cinn_losses.csv", cpu_dir, gpu_dir);

    /* the same seed twice on the GPU: the same numbers, bit for bit as printed */
    snprintf(again, sizeof again, "%s/again", dir);
    show(run("%s --device cuda train-stage1 --config tiny --out %s --steps %d --eval-batches 1", i2v, again, steps) == 0,
          "train-stage1 on the GPU again");
    Log a, b;
    char pa[400], pb[400];
    snprintf(pa, sizeof pa, "%s/stage1_losses.csv", gpu_dir);
    snprintf(pb, sizeof pb, "%s/stage1_losses.csv", again);
    if (read_log(pa, &a) == 0 && read_log(pb, &b) == 0) {
        double e = log_diff(&a, &b, 0, steps, 1e-30, 0, what, sizeof what);
        show(e == 0, "stage 1: the same seed twice on the GPU logs identical losses (%s)", e == 0 ? "all equal" : what);
    } else {
        show(0, "stage 1: the repeated GPU run left a log");
    }

    /* checkpoints: CPU for the first third, then the GPU, then the CPU again, from each other's files */
    snprintf(trip, sizeof trip, "%s/trip", dir);
    int s1 = steps / 3, s2 = 2 * steps / 3;
    show(run("%s --device cpu train-stage1 --config tiny --out %s --steps %d --eval-batches 1", i2v, trip, s1) == 0 &&
              run("%s --device cuda train-stage1 --config tiny --out %s --steps %d --eval-batches 1 --resume", i2v, trip,
                  s2) == 0 &&
              run("%s --device cpu train-stage1 --config tiny --out %s --steps %d --eval-batches 1 --resume", i2v, trip,
                  steps) == 0,
          "stage 1 checkpointed on the CPU resumes on the GPU, and the GPU's checkpoint on the CPU");
    snprintf(pb, sizeof pb, "%s/stage1_losses.csv", trip);
    snprintf(pa, sizeof pa, "%s/stage1_losses.csv", cpu_dir);
    if (read_log(pa, &a) == 0 && read_log(pb, &b) == 0) {
        double e = log_diff(&a, &b, 0, steps, 1e-3, 0, what, sizeof what);
        show(e <= 0.25, "the CPU -> GPU -> CPU run logs the CPU-only run's losses: every step within %.2g of the range "
             "(worst: %s)", e, what);
        e = log_diff(&a, &b, 0, steps, 1e-3, 1, what, sizeof what);
        show(e <= 0.1, "the CPU -> GPU -> CPU run: the means within %.2g of the range (worst: %s)", e, what);
    } else {
        show(0, "the round trip left a log");
    }
    char rm[400];
    snprintf(rm, sizeof rm, "rm -rf %s", dir);
    if (system(rm) != 0) printf("  could not remove %s\n", dir);
}

int main(int argc, char **argv) {
    (void)argc;
    const char *slash = strrchr(argv[0], '/');
    if (slash) snprintf(i2v, sizeof i2v, "%.*s/i2v", (int)(slash - argv[0]), argv[0]);
    I2vError e;
    if (device_select("cuda", &e)) {
        printf("skipped: no GPU (%s)\n", e.msg);
        return check_summary("gpu_models");
    }
    if (I2V_CUDA) printf("GPU: %s\n", cuda_device_name());
    const char *s = getenv("I2V_GPU_TEST_STEPS");
    if (s && atoi(s) >= 3) steps = atoi(s) < 64 ? atoi(s) : 64;
    test_flow();
    test_penalty();
    test_runs();
    return check_summary("gpu_models");
}
