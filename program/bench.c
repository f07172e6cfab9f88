/* bench.c: the benchmarks behind `i2v bench` and `make bench`.
 *
 * What it is: a table of named sub-benchmarks (gemm, conv, ae, cinn, metrics), each printing one line
 * of key=value fields per result, so results can be grepped, diffed and pasted into commit messages.
 * Every timing is the best of several repetitions after a warm-up; each repetition runs enough calls to
 * last about 50 ms, so timer resolution and one-off interruptions do not matter.
 * What it is not: a test. Nothing here asserts a speed.
 *
 * Usage: i2v bench [name] [key=value ...]. Without a name every quick benchmark runs with its defaults;
 * the slow ones (marked in the table) run only when named.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ae.h"
#include "program/args.h"
#include "program/bench.h"
#include "kernels/conv.h"
#include "flow.h"
#include "networks/features.h"
#include "kernels/gemm.h"
#include "kernels/threads.h"
#include "kernels/simd.h"

static double bench_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Seconds per call of fn(arg): calls are batched to about `min_seconds` per repetition, the best of
 * `reps` repetitions is kept, after one untimed warm-up batch. */
static double time_best(void (*fn)(void *), void *arg, int reps, double min_seconds) {
    double t0 = bench_now();
    fn(arg);  /* warm-up: first-touch of buffers, pool start, caches */
    double once = bench_now() - t0;
    long calls = once > 0 ? (long)(min_seconds / once) + 1 : 1000;
    if (calls > 100000) calls = 100000;
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        t0 = bench_now();
        for (long c = 0; c < calls; c++) fn(arg);
        double t = (bench_now() - t0) / (double)calls;
        if (t < best) best = t;
    }
    return best;
}

/* Reads key=value arguments into the named integer slots; unknown keys are an error. */
typedef struct IntOpt {
    const char *key;
    int *value;
} IntOpt;

static int parse_opts(const char *bench, int argc, char **argv, IntOpt *opts, int nopts) {
    for (int a = 0; a < argc; a++) {
        const char *eq = strchr(argv[a], '=');
        int found = 0;
        for (int o = 0; eq && o < nopts; o++)
            if (strlen(opts[o].key) == (size_t)(eq - argv[a]) && !strncmp(argv[a], opts[o].key, (size_t)(eq - argv[a]))) {
                char cmd[64];
                long long v;
                snprintf(cmd, sizeof cmd, "bench %s", bench);
                if (arg_int(cmd, opts[o].key, eq + 1, 0, INT_MAX, &v)) return -1;
                *opts[o].value = (int)v;
                found = 1;
            }
        if (!found) {
            fprintf(stderr, "i2v bench %s: unknown argument '%s'; expected key=value with key one of:", bench,
                    argv[a]);
            for (int o = 0; o < nopts; o++) fprintf(stderr, " %s", opts[o].key);
            fprintf(stderr, "\n");
            return -1;
        }
    }
    return 0;
}

/* ---- gemm ------------------------------------------------------------------------------------------ */

typedef struct GemmShape {
    int m, n, k, ta, tb;
    const char *what;
} GemmShape;

/* Square sizes; the im2col GEMM of a 3x3x3 conv 256->256 on a 4x16x16 video (Cout x Cin*27 times
 * Cin*27 x T*H*W); the cINN subnetwork's linear layers at batch 50: forward y = x W^T (tb = 1) at
 * 96->512, 512->512 and 512->32, the input gradient dx = dy W (B read in place) and the weight
 * gradient dW = dy^T x (ta = 1). */
static const GemmShape gemm_shapes[] = {
    {256, 256, 256, 0, 0, "square"},
    {512, 512, 512, 0, 0, "square"},
    {1024, 1024, 1024, 0, 0, "square"},
    {2048, 2048, 2048, 0, 0, "square"},
    {256, 1024, 6912, 0, 0, "conv3x3x3_im2col"},
    {50, 512, 96, 0, 1, "cinn_linear"},
    {50, 512, 512, 0, 1, "cinn_linear"},
    {50, 32, 512, 0, 1, "cinn_linear"},
    {50, 512, 512, 0, 0, "cinn_input_grad"},
    {512, 512, 50, 1, 0, "cinn_weight_grad"},
};

typedef struct GemmRun {
    GemmShape s;
    real *A, *B, *C;
} GemmRun;

static void gemm_call(void *arg) {
    GemmRun *r = arg;
    int lda = r->s.ta ? r->s.m : r->s.k, ldb = r->s.tb ? r->s.k : r->s.n;
    gemm(r->s.ta, r->s.tb, r->s.m, r->s.n, r->s.k, 1, r->A, lda, r->B, ldb, 0, r->C, r->s.n);
}

static void bench_gemm_one(GemmShape s, int threads, int reps) {
    Rng rng;
    rng_seed(&rng, 1);
    size_t asz = (size_t)s.m * (size_t)s.k, bsz = (size_t)s.k * (size_t)s.n, csz = (size_t)s.m * (size_t)s.n;
    GemmRun r = {s, xmalloc(asz * sizeof(real)), xmalloc(bsz * sizeof(real)), xmalloc(csz * sizeof(real))};
    for (size_t i = 0; i < asz; i++) r.A[i] = (real)(rng_uniform(&rng) - 0.5);
    for (size_t i = 0; i < bsz; i++) r.B[i] = (real)(rng_uniform(&rng) - 0.5);
    threads_set(threads);
    double t = time_best(gemm_call, &r, reps, 0.05);
    double flops = 2.0 * s.m * s.n * s.k;
    printf("gemm m=%d n=%d k=%d ta=%d tb=%d threads=%d simd=%s shape=%s us=%.1f gflops=%.1f\n", s.m, s.n, s.k,
           s.ta, s.tb, threads, SIMD_NAME, s.what, t * 1e6, flops / t * 1e-9);
    fflush(stdout);
    free(r.A);
    free(r.B);
    free(r.C);
}

/* i2v bench gemm [m= n= k= ta= tb=] [threads=] [reps=]: the table of shapes on 1 thread and on all
 * threads, or one shape; threads=N measures that count only. */
static int bench_gemm(int argc, char **argv) {
    int all = threads_count();
    GemmShape one = {0, 0, 0, 0, 0, "custom"};
    int threads = 0, reps = 5;
    IntOpt opts[] = {{"m", &one.m}, {"n", &one.n}, {"k", &one.k}, {"ta", &one.ta}, {"tb", &one.tb},
                     {"threads", &threads}, {"reps", &reps}};
    if (parse_opts("gemm", argc, argv, opts, (int)(sizeof opts / sizeof *opts))) return 2;
    if (threads < 0 || reps < 1 || one.m < 0 || one.n < 0 || one.k < 0) {
        fprintf(stderr, "i2v bench gemm: threads, reps and sizes must be positive\n");
        return 2;
    }
    int counts[2] = {1, all}, ncounts = all > 1 ? 2 : 1;
    if (threads) {
        counts[0] = threads;
        ncounts = 1;
    }
    int custom = one.m > 0 && one.n > 0 && one.k > 0;
    int nshapes = custom ? 1 : (int)(sizeof gemm_shapes / sizeof *gemm_shapes);
    for (int i = 0; i < nshapes; i++)
        for (int c = 0; c < ncounts; c++) bench_gemm_one(custom ? one : gemm_shapes[i], counts[c], reps);
    threads_set(all);
    return 0;
}

/* ---- cinn: one stage-2 training step at the BAIR config ------------------------------------------------- */

/* i2v bench cinn [batch=] [threads=] [reps=]: forward, loss, backward and the AMSGrad update of the BAIR cINN
 * (20 blocks, z 64, condition 64, hidden 512), best of reps steps after a warm-up step (which also runs
 * ActNorm's data initialisation and sizes the arena). */
static int bench_cinn(int argc, char **argv) {
    int all = threads_count(), threads = 0, batch = 50, reps = 5;
    IntOpt opts[] = {{"batch", &batch}, {"threads", &threads}, {"reps", &reps}};
    if (parse_opts("cinn", argc, argv, opts, (int)(sizeof opts / sizeof *opts))) return 2;
    if (threads < 0 || reps < 1 || batch < 2) {
        fprintf(stderr, "i2v bench cinn: batch must be at least 2, threads and reps positive\n");
        return 2;
    }
    int counts[2] = {1, all}, ncounts = all > 1 ? 2 : 1;
    if (threads) {
        counts[0] = threads;
        ncounts = 1;
    }
    Rng rng;
    rng_seed(&rng, 1);
    FlowConfig cfg = flow_config_bair();
    Flow f;
    flow_build(&f, &cfg, &rng);
    Adam opt;
    adam_init(&opt, 1e-5, 0.9, 0.99, 1e-8, 0, 1);
    adam_add_params(&opt, &f.ps);
    real *z = xmalloc((size_t)batch * 64 * sizeof(real)), *e = xmalloc((size_t)batch * 64 * sizeof(real));
    for (int i = 0; i < batch * 64; i++) {
        z[i] = (real)rng_normal(&rng);
        e[i] = (real)rng_normal(&rng);
    }
    Ctx c;
    ctx_init(&c);
    flow_train_step(&c, &f, &opt, z, e, batch, NULL);
    /* Two ways to run the update: backward then a separate Adam pass over every parameter (adam_ms), and
     * Adam fused into the backward (flow_train_step's way): bwd_ms is then backward and update together. */
    for (int k = 0; k < ncounts; k++) {
        threads_set(counts[k]);
        for (int fused = 0; fused < 2; fused++) {
            double best[4] = {1e30, 1e30, 1e30, 1e30};
            for (int r = 0; r < reps; r++) {
                double t0 = bench_now();
                Tensor *zt = tensor_new(&c, 2, DIMS(batch, 64)), *et = tensor_new(&c, 2, DIMS(batch, 64));
                memcpy(zt->data, z, (size_t)batch * 64 * sizeof(real));
                memcpy(et->data, e, (size_t)batch * 64 * sizeof(real));
                Tensor *ld;
                Tensor *nu = flow_forward(&c, &f, zt, et, &ld);   /* sets ld: keep it out of flow_loss's arguments */
                Tensor *loss = flow_loss(&c, nu, ld);
                double t1 = bench_now();
                paramset_zero_grad(&f.ps);
                if (fused) adam_backward_step(&opt, &c, loss);
                else backward(&c, loss);
                double t2 = bench_now();
                if (!fused) adam_step(&opt);
                double t3 = bench_now();
                ctx_reset(&c);
                double t[4] = {t3 - t0, t1 - t0, t2 - t1, t3 - t2};
                for (int i = 0; i < 4; i++)
                    if (t[i] < best[i]) best[i] = t[i];
            }
            if (fused)
                printf("cinn batch=%d threads=%d fused=1 step_ms=%.1f fwd_ms=%.1f bwd_adam_ms=%.1f params=%zu\n", batch,
                       counts[k], best[0] * 1e3, best[1] * 1e3, best[2] * 1e3, paramset_count(&f.ps));
            else
                printf("cinn batch=%d threads=%d fused=0 step_ms=%.1f fwd_ms=%.1f bwd_ms=%.1f adam_ms=%.1f params=%zu\n",
                       batch, counts[k], best[0] * 1e3, best[1] * 1e3, best[2] * 1e3, best[3] * 1e3,
                       paramset_count(&f.ps));
            fflush(stdout);
        }
    }
    threads_set(all);
    ctx_free(&c);
    free(z);
    free(e);
    adam_free(&opt);
    flow_free(&f);
    return 0;
}

/* ---- conv ------------------------------------------------------------------------------------------ */

/* The 3-D convolutions of the BAIR stage-1 generator and video encoder at batch 1: input (C, T, H, W), kernel, stride, padding, bias, whether dx is needed (not for the stem). */
typedef struct ConvLayer {
    const char *name;
    int cin, cout, in[3], k[3], s[3], p[3], bias, dx;
} ConvLayer;

#define K3 {3, 3, 3}
#define K1 {1, 1, 1}
static const ConvLayer conv_gen[] = {
    {"head_0.conv_0", 1024, 1024, {1, 4, 4}, K3, K1, K1, 1, 1},   {"head_0.conv_1", 1024, 1024, {1, 4, 4}, K3, K1, K1, 1, 1},
    {"g_0.conv_0", 1024, 1024, {2, 8, 8}, K3, K1, K1, 1, 1},      {"g_0.conv_1", 1024, 1024, {2, 8, 8}, K3, K1, K1, 1, 1},
    {"g_1.conv_0", 1024, 512, {4, 16, 16}, K3, K1, K1, 1, 1},     {"g_1.conv_1", 512, 512, {4, 16, 16}, K3, K1, K1, 1, 1},
    {"g_1.conv_s", 1024, 512, {4, 16, 16}, K1, K1, {0, 0, 0}, 0, 1},
    {"g_2.conv_0", 512, 256, {8, 32, 32}, K3, K1, K1, 1, 1},      {"g_2.conv_1", 256, 256, {8, 32, 32}, K3, K1, K1, 1, 1},
    {"g_2.conv_s", 512, 256, {8, 32, 32}, K1, K1, {0, 0, 0}, 0, 1},
    {"g_3.conv_0", 256, 128, {16, 64, 64}, K3, K1, K1, 1, 1},     {"g_3.conv_1", 128, 128, {16, 64, 64}, K3, K1, K1, 1, 1},
    {"g_3.conv_s", 256, 128, {16, 64, 64}, K1, K1, {0, 0, 0}, 0, 1},
    {"g_4.conv_0", 128, 64, {16, 64, 64}, K3, K1, K1, 1, 1},      {"g_4.conv_1", 64, 64, {16, 64, 64}, K3, K1, K1, 1, 1},
    {"g_4.conv_s", 128, 64, {16, 64, 64}, K1, K1, {0, 0, 0}, 0, 1},
    {"conv_img", 64, 3, {16, 64, 64}, K3, K1, K1, 1, 1},
};
/* encoder stages: conv1 (carries the stride), conv2, the 3x3x3 projection shortcut, the second block */
static const ConvLayer conv_enc[] = {
    {"stem", 3, 64, {16, 64, 64}, {3, 7, 7}, {2, 2, 2}, {1, 3, 3}, 0, 0},
    {"layer.0.0.conv1", 64, 128, {8, 32, 32}, K3, K1, K1, 0, 1},
    {"layer.0.0.conv2", 128, 128, {8, 32, 32}, K3, K1, K1, 0, 1},
    {"layer.0.0.downsample", 64, 128, {8, 32, 32}, K3, K1, K1, 0, 1},
    {"layer.0.1.conv1", 128, 128, {8, 32, 32}, K3, K1, K1, 0, 1},
    {"layer.0.1.conv2", 128, 128, {8, 32, 32}, K3, K1, K1, 0, 1},
    {"layer.1.0.conv1", 128, 256, {8, 32, 32}, K3, {2, 2, 2}, K1, 0, 1},
    {"layer.1.0.conv2", 256, 256, {4, 16, 16}, K3, K1, K1, 0, 1},
    {"layer.1.0.downsample", 128, 256, {8, 32, 32}, K3, {2, 2, 2}, K1, 0, 1},
    {"layer.1.1.conv1", 256, 256, {4, 16, 16}, K3, K1, K1, 0, 1},
    {"layer.1.1.conv2", 256, 256, {4, 16, 16}, K3, K1, K1, 0, 1},
    {"layer.2.0.conv1", 256, 512, {4, 16, 16}, K3, {2, 2, 2}, K1, 0, 1},
    {"layer.2.0.conv2", 512, 512, {2, 8, 8}, K3, K1, K1, 0, 1},
    {"layer.2.0.downsample", 256, 512, {4, 16, 16}, K3, {2, 2, 2}, K1, 0, 1},
    {"layer.2.1.conv1", 512, 512, {2, 8, 8}, K3, K1, K1, 0, 1},
    {"layer.2.1.conv2", 512, 512, {2, 8, 8}, K3, K1, K1, 0, 1},
    {"layer.3.0.conv1", 512, 512, {2, 8, 8}, K3, {2, 2, 2}, K1, 0, 1},
    {"layer.3.0.conv2", 512, 512, {1, 4, 4}, K3, K1, K1, 0, 1},
    {"layer.3.0.downsample", 512, 512, {2, 8, 8}, K3, {2, 2, 2}, K1, 0, 1},
    {"layer.3.1.conv1", 512, 512, {1, 4, 4}, K3, K1, K1, 0, 1},
    {"layer.3.1.conv2", 512, 512, {1, 4, 4}, K3, K1, K1, 0, 1},
};
#undef K3
#undef K1

static double bench_cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* One network's layers: the best of `reps` forward and backward (dx, dw, db) passes after a warm-up,
 * per layer and summed. cpu_s is the process CPU time of the best passes, which on a shared machine
 * says more than wall time about a single-thread run. */
static void bench_conv_net(const char *net, const ConvLayer *ls, int nl, int threads, int reps) {
    threads_set(threads);
    Rng rng;
    rng_seed(&rng, 1);
    double total_f = 0, total_b = 0, total_cpu = 0, macs = 0;
    for (int i = 0; i < nl; i++) {
        const ConvLayer *l = &ls[i];
        ConvGeom g = conv_geom(1, l->cin, l->cout, l->in, l->k, l->s, l->p);
        size_t nx = (size_t)l->cin * l->in[0] * l->in[1] * l->in[2];
        size_t ny = (size_t)l->cout * g.out[0] * g.out[1] * g.out[2];
        size_t nw = (size_t)l->cout * l->cin * l->k[0] * l->k[1] * l->k[2];
        real *x = xmalloc(nx * sizeof(real)), *y = xmalloc(ny * sizeof(real)), *dy = xmalloc(ny * sizeof(real));
        real *w = xmalloc(nw * sizeof(real)), *b = xmalloc((size_t)l->cout * sizeof(real));
        real *dx = xcalloc(nx, sizeof(real)), *dw = xcalloc(nw, sizeof(real)), *db = xcalloc((size_t)l->cout, sizeof(real));
        real *ws = xmalloc((conv3d_workspace(&g) + 1) * sizeof(real));
        for (size_t j = 0; j < nx; j++) x[j] = (real)(rng_uniform(&rng) - 0.5);
        for (size_t j = 0; j < ny; j++) dy[j] = (real)(rng_uniform(&rng) - 0.5);
        for (size_t j = 0; j < nw; j++) w[j] = (real)(rng_uniform(&rng) - 0.5);
        for (int j = 0; j < l->cout; j++) b[j] = (real)(rng_uniform(&rng) - 0.5);
        double best_f = 1e30, best_b = 1e30, cpu_f = 0, cpu_b = 0;
        for (int r = 0; r <= reps; r++) {   /* r = 0 is the warm-up */
            double t0 = bench_now(), c0 = bench_cpu_now();
            conv3d_forward(y, x, w, l->bias ? b : NULL, &g, ws);
            double t1 = bench_now(), c1 = bench_cpu_now();
            conv3d_backward(l->dx ? dx : NULL, dw, l->bias ? db : NULL, dy, x, w, &g, ws);
            double t2 = bench_now(), c2 = bench_cpu_now();
            if (r > 0 && t1 - t0 < best_f) { best_f = t1 - t0; cpu_f = c1 - c0; }
            if (r > 0 && t2 - t1 < best_b) { best_b = t2 - t1; cpu_b = c2 - c1; }
        }
        double mac = (double)nw * g.out[0] * g.out[1] * g.out[2];
        double flops = 2 * mac * (1 + (l->dx ? 2 : 1));   /* forward, dw, and dx if needed */
        printf("conv net=%s layer=%s cin=%d cout=%d in=%dx%dx%d k=%dx%dx%d s=%dx%dx%d threads=%d fwd_ms=%.1f bwd_ms=%.1f "
               "cpu_ms=%.1f gflops=%.1f ws_mb=%.1f\n",
               net, l->name, l->cin, l->cout, l->in[0], l->in[1], l->in[2], l->k[0], l->k[1], l->k[2], l->s[0], l->s[1],
               l->s[2], threads, best_f * 1e3, best_b * 1e3, (cpu_f + cpu_b) * 1e3, flops / (best_f + best_b) * 1e-9,
               (double)conv3d_workspace(&g) * sizeof(real) / (1 << 20));
        fflush(stdout);
        total_f += best_f;
        total_b += best_b;
        total_cpu += cpu_f + cpu_b;
        macs += mac;
        free(x);
        free(y);
        free(dy);
        free(w);
        free(b);
        free(dx);
        free(dw);
        free(db);
        free(ws);
    }
    printf("conv net=%s layer=all threads=%d simd=%s fwd_s=%.3f bwd_s=%.3f total_s=%.3f cpu_s=%.3f fwd_gmac=%.2f\n", net,
           threads, SIMD_NAME, total_f, total_b, total_f + total_b, total_cpu, macs * 1e-9);
    fflush(stdout);
}

/* i2v bench conv [gen|enc] [threads=] [reps=]: both networks (or one) on 1 thread and on all threads. */
static int bench_conv(int argc, char **argv) {
    int all = threads_count(), threads = 0, reps = 2, gen = 1, enc = 1;
    if (argc > 0 && (!strcmp(argv[0], "gen") || !strcmp(argv[0], "enc"))) {
        gen = !strcmp(argv[0], "gen");
        enc = !gen;
        argc--;
        argv++;
    }
    IntOpt opts[] = {{"threads", &threads}, {"reps", &reps}};
    if (parse_opts("conv", argc, argv, opts, (int)(sizeof opts / sizeof *opts))) return 2;
    if (threads < 0 || reps < 1) {
        fprintf(stderr, "i2v bench conv: threads and reps must be positive\n");
        return 2;
    }
    int counts[2] = {1, all}, ncounts = all > 1 ? 2 : 1;
    if (threads) {
        counts[0] = threads;
        ncounts = 1;
    }
    for (int c = 0; c < ncounts; c++) {
        if (gen) bench_conv_net("gen", conv_gen, (int)(sizeof conv_gen / sizeof *conv_gen), counts[c], reps);
        if (enc) bench_conv_net("enc", conv_enc, (int)(sizeof conv_enc / sizeof *conv_enc), counts[c], reps);
    }
    threads_set(all);
    return 0;
}

/* ---- ae: the stage-1 encoder and generator, forward and forward + L1 + backward --------------------------- */

typedef struct AeBench {
    VideoEncoder enc;
    Generator gen;
    Tensor *video;     /* (N, T, 3, S, S): frames x1..xT, the encoder's input and the L1 target */
    Tensor *x0;        /* (N, 3, S, S) */
    Rng noise;
    Ctx c;
} AeBench;

/* Encoder(video^T) -> z -> Generator(x0, z) -> L1 against the video, as loss.py Backward.forward starts;
 * with `grad`, the backward pass too. Spectral norm in training mode (one power iteration per call). */
static void ae_bench_pass(AeBench *b, int grad) {
    Ctx *c = &b->c;
    c->training = 1;
    Tensor *video = tensor_new(c, 5, b->video->shape), *x0 = tensor_new(c, 4, b->x0->shape);
    if (video->data) {
        tensor_copy_data(video, b->video);
        tensor_copy_data(x0, b->x0);
    }
    Tensor *mu, *logvar;
    video_encoder_forward(c, &b->enc, t_transpose(c, video, 1, 2), &mu, &logvar);
    Tensor *fake = generator_forward(c, &b->gen, x0, video_encoder_sample(c, mu, logvar, &b->noise));
    Tensor *loss = t_l1_loss(c, fake, video);
    if (grad) {
        paramset_zero_grad(&b->enc.ps);
        paramset_zero_grad(&b->gen.ps);
        backward(c, loss);
    }
}

static size_t paramset_bytes(const ParamSet *ps) { return 2 * ps->nvalues * sizeof(real) + ps->buffer_bytes; }

/* One config: the arena sized by a dry run of forward + backward, a warm-up pass, then the best of `reps`. */
static void bench_ae_config(const char *name, const Stage1Config *cfg, int batch, const int *counts, int ncounts,
                            int reps) {
    AeBench b;
    Rng rng;
    rng_seed(&rng, 1);
    rng_seed(&b.noise, 2);
    video_encoder_build(&b.enc, &cfg->Encoder, &rng);
    generator_build(&b.gen, &cfg->Decoder, &rng);
    int T = cfg->Data.sequence_length - 1, S = cfg->Data.img_size;
    b.video = tensor_alloc(5, DIMS(batch, T, 3, S, S));
    b.x0 = tensor_alloc(4, DIMS(batch, 3, S, S));
    tensor_fill_uniform(b.video, &rng, -1, 1);
    tensor_fill_uniform(b.x0, &rng, -1, 1);
    ctx_init(&b.c);
    b.c.dry = 1;
    ae_bench_pass(&b, 1);
    size_t arena = ctx_dry_finish(&b.c);
    for (int k = 0; k < ncounts; k++) {
        threads_set(counts[k]);
        double best[2] = {1e30, 1e30}, cpu[2] = {0, 0};
        for (int r = 0; r <= reps; r++) {   /* r = 0 is the warm-up */
            for (int grad = 0; grad < 2; grad++) {
                double t0 = bench_now(), c0 = bench_cpu_now();
                ae_bench_pass(&b, grad);
                double t = bench_now() - t0, tc = bench_cpu_now() - c0;
                ctx_reset(&b.c);
                if (r > 0 && t < best[grad]) {
                    best[grad] = t;
                    cpu[grad] = tc;
                }
            }
        }
        double peak = (double)(b.c.arena.capacity + b.c.peak_scratch + paramset_bytes(&b.enc.ps) + paramset_bytes(&b.gen.ps));
        printf("ae config=%s batch=%d threads=%d fwd_ms=%.0f fwdbwd_ms=%.0f fwd_cpu_ms=%.0f fwdbwd_cpu_ms=%.0f peak_mb=%.0f "
               "arena_mb=%.0f params=%zu\n", name, batch, counts[k], best[0] * 1e3, best[1] * 1e3, cpu[0] * 1e3,
               cpu[1] * 1e3, peak / 1048576.0, (double)arena / 1048576.0,
               paramset_count(&b.enc.ps) + paramset_count(&b.gen.ps));
        fflush(stdout);
    }
    ctx_free(&b.c);
    tensor_free(b.video);
    tensor_free(b.x0);
    video_encoder_free(&b.enc);
    generator_free(&b.gen);
}

/* i2v bench ae [bair|small] [batch=] [threads=] [reps=]: the BAIR and the small config (or one) on 1 thread
 * and on all threads; cpu_ms is the process CPU time of the best pass. peak_mb counts the parameters and their gradients, the arena the dry run sized for
 * activations and their gradients, and the largest convolution workspace. */
static int bench_ae(int argc, char **argv) {
    int all = threads_count(), threads = 0, reps = 1, batch = 2, bair = 1, small = 1;
    if (argc > 0 && (!strcmp(argv[0], "bair") || !strcmp(argv[0], "small"))) {
        bair = !strcmp(argv[0], "bair");
        small = !bair;
        argc--;
        argv++;
    }
    IntOpt opts[] = {{"batch", &batch}, {"threads", &threads}, {"reps", &reps}};
    if (parse_opts("ae", argc, argv, opts, (int)(sizeof opts / sizeof *opts))) return 2;
    if (threads < 0 || reps < 1 || batch < 1) {
        fprintf(stderr, "i2v bench ae: batch, threads and reps must be positive\n");
        return 2;
    }
    int counts[2] = {1, all}, ncounts = all > 1 ? 2 : 1;
    if (threads) {
        counts[0] = threads;
        ncounts = 1;
    }
    Stage1Config cb = stage1_config_bair(), cs = stage1_config_small();
    if (small) bench_ae_config("small", &cs, batch, counts, ncounts, reps);
    if (bair) bench_ae_config("bair", &cb, batch, counts, ncounts, reps);
    threads_set(all);
    return 0;
}

/* ---- metrics: the feature networks of FVD and FID ------------------------------------------------------ */
/* Features of `clips` BAIR-size clips (frames x size x size, resized to 224) through the Kinetics I3D with the
 * monitor's preprocessing (PyTorch's align_corners=True resize, so a PyTorch script can run the same thing),
 * and of their clips * frames frames through pytorch-fid's InceptionV3 (resized to 299). Random weights of the
 * published shapes: the speed does not depend on the values. One timed pass after a one-clip warm-up. */
static void bench_metrics_net(FeatureKind kind, int n, int T, int S, int reps) {
    FeatureNet f;
    feature_net_init_random(&f, kind, 1, 7);
    size_t per = (size_t)(T ? T : 1) * 3 * S * S;
    real *x = xmalloc((size_t)n * per * sizeof(real)), *out = xmalloc((size_t)n * f.dim * sizeof(real));
    Rng r;
    rng_seed(&r, 11);
    for (size_t i = 0; i < (size_t)n * per; i++) x[i] = (real)(rng_uniform(&r) * 2 - 1);
    Ctx c;
    ctx_init_device(&c, DEVICE_CPU);
    feature_net_embed(&f, &c, x, 1, T, S, S, out);   /* warm-up: arena, thread pool, page faults */
    double best = 1e30;
    for (int rep = 0; rep < reps; rep++) {
        double t0 = bench_now();
        feature_net_embed(&f, &c, x, n, T, S, S, out);
        double t = bench_now() - t0;
        if (t < best) best = t;
    }
    printf("bench=metrics net=%s inputs=%d frames=%d size=%d threads=%d seconds=%.2f per_input_ms=%.1f\n",
           feature_kind_name(kind), n, T, S, threads_count(), best, 1e3 * best / n);
    fflush(stdout);
    ctx_free(&c);
    free(x);
    free(out);
    feature_net_free(&f);
}

static int bench_metrics(int argc, char **argv) {
    int i3d = 1, inception = 1, clips = 256, frames = 16, size = 64, images = -1, reps = 1;
    if (argc > 0 && (!strcmp(argv[0], "i3d") || !strcmp(argv[0], "inception"))) {
        i3d = !strcmp(argv[0], "i3d");
        inception = !i3d;
        argc--;
        argv++;
    }
    IntOpt opts[] = {{"clips", &clips}, {"frames", &frames}, {"size", &size}, {"images", &images}, {"reps", &reps}};
    if (parse_opts("metrics", argc, argv, opts, (int)(sizeof opts / sizeof *opts))) return 2;
    if (images < 0) images = clips * frames;
    if (clips < 1 || frames < 9 || size < 1 || images < 1 || reps < 1) {
        fprintf(stderr, "i2v bench metrics: clips, size, images and reps must be positive, frames at least 9\n");
        return 2;
    }
    if (i3d) bench_metrics_net(FEAT_I3D_MONITOR, clips, frames, size, reps);
    if (inception) bench_metrics_net(FEAT_INCEPTION, images, 0, size, reps);
    return 0;
}

/* ---- the table ------------------------------------------------------------------------------------- */

typedef struct Bench {
    const char *name;
    int (*run)(int argc, char **argv);   /* argv holds the key=value arguments after the name */
    const char *help;
    int slow;                            /* minutes or more: runs only when named, never in the list of all */
} Bench;

static const Bench benches[] = {
    {"gemm", bench_gemm, "matrix multiplication: square, im2col and cINN shapes [m= n= k= ta= tb= threads= reps=]", 0},
    {"conv", bench_conv, "the 3-D convolutions of the generator and encoder, forward + backward [gen|enc threads= reps=]", 0},
    {"ae", bench_ae, "stage-1 encoder + generator at the BAIR and small configs: forward, and forward + L1 + backward [bair|small batch= threads= reps=]", 0},
    {"cinn", bench_cinn, "one stage-2 training step of the BAIR cINN (forward, backward, AMSGrad) [batch= threads= reps=]", 0},
    {"metrics", bench_metrics, "(only when named: tens of minutes) features of BAIR-size clips through I3D and of their frames through InceptionV3 [i3d|inception clips= frames= size= images= reps=]", 1},
    {"gpu", bench_gpu, "(only when named) with --device cuda: the BAIR stage-1 iteration, the cINN step and the demo's steps on the GPU, "
                       "where their time goes [stage1|cinn|demo reps= top= tf32= batch=]", 1},
    {"memory", bench_memory, "(only when named) the memory one stage-1 training step needs, from a dry run [bair|small|... batch=]", 1},
};

int bench_main(int argc, char **argv) {
    int n = (int)(sizeof benches / sizeof *benches);
    if (argc < 2) {   /* the quick CPU benchmarks (metrics, gpu and memory are asked for by name) */
        for (int i = 0; i < n; i++) {
            if (benches[i].slow) continue;
            int rc = benches[i].run(0, NULL);
            if (rc) return rc;
        }
        return 0;
    }
    for (int i = 0; i < n; i++)
        if (!strcmp(argv[1], benches[i].name)) return benches[i].run(argc - 2, argv + 2);
    int help = !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h");
    FILE *out = help ? stdout : stderr;
    if (help)
        fprintf(out, "usage: i2v bench [NAME [key=value ...]]\n"
                     "  Runs the quick benchmarks (seconds to minutes each), or the one named; one key=value\n"
                     "  line per result (best of reps after a warm-up). The slow ones run only when named\n"
                     "  ('i2v bench metrics'). I2V_THREADS sets the thread count of the 'all threads' lines.\n");
    else fprintf(out, "i2v bench: unknown benchmark '%s'; available:\n", argv[1]);
    for (int i = 0; i < n; i++) fprintf(out, "  %-8s %s\n", benches[i].name, benches[i].help);
    return help ? 0 : 2;
}
