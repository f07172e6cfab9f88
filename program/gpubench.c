/* gpubench.c: `i2v --device cuda bench gpu`: training steps on the GPU, where their time goes, and the
 * memory a configuration needs (`i2v bench memory`, on any device).
 *
 * What it is: for each step (the stage-1 iteration at the official BAIR config, the cINN's step at the
 * official BAIR cINN config, the demo's three steps), a warm-up (the first step sizes the arena and picks the
 * cuDNN algorithms), then `reps` timed steps; one of them runs with the profiler on, which times every
 * twin between two events and counts the FLOPs of the GEMMs and convolutions. It prints one key=value line
 * per step (time, TFLOP/s and the fraction of the GPU's FP32 peak, the share of the time inside cuBLAS and
 * cuDNN, peak GPU memory) and the kernels that take the most time, plus the optimiser's bandwidth.
 * What it is not: a test; nothing is asserted. Random data and random LPIPS weights of the real widths stand
 * in for BAIR and the LPIPS file (the arithmetic is the same).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ae.h"
#include "cuda/cuda.h"
#include "flow.h"
#include "networks/cond_ae.h"
#include "networks/lpips.h"
#include "ops/optim.h"
#include "program/args.h"
#include "program/bench.h"

static double wall(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static const char *const lib_names[LIB_COUNT] = {"own", "cublas", "cudnn", "copy"};

/* A step to benchmark: run(arg) does one training step and waits for it. */
typedef struct GpuStep {
    const char *name;
    void (*run)(void *arg);
    void *arg;
} GpuStep;

/* warm-up, best of reps plain steps, then one profiled step: the line and the table */
static void measure(const GpuStep *st, const char *fields, int reps, int top) {
    st->run(st->arg);   /* warm-up: the dry run, the arena, cuDNN's algorithm choice */
    st->run(st->arg);
    cuda_reset_peak();
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = wall();
        st->run(st->arg);
        double t = wall() - t0;
        if (t < best) best = t;
    }
    cuda_profile_start();
    double t0 = wall();
    st->run(st->arg);
    double profiled = wall() - t0;
    enum { MAXROWS = 256 };
    CudaProfileRow *rows = xmalloc(MAXROWS * sizeof *rows);
    double lib_ms[LIB_COUNT], total_ms;
    int n = cuda_profile_report(rows, MAXROWS, lib_ms, &total_ms);
    double flops = 0, inside = 0;
    for (int i = 0; i < n; i++) flops += rows[i].flops;
    for (int l = 0; l < LIB_COUNT; l++) inside += lib_ms[l];
    size_t free_b, total_b;
    cuda_memory(&free_b, &total_b);
    double peak = cuda_peak_tflops(), tflops = flops / (best * 1e12);
    printf("gpu step=%s %s ms=%.2f profiled_ms=%.2f gpu_ms=%.2f tflops=%.2f fp32_peak_tflops=%.1f frac_peak=%.3f "
           "cublas_ms=%.2f cudnn_ms=%.2f own_ms=%.2f copy_ms=%.2f launch_gaps_ms=%.2f lib_share=%.3f "
           "peak_alloc_mb=%.0f used_mb=%.0f total_mb=%.0f tf32=%d device=\"%s\"\n",
           st->name, fields, best * 1e3, profiled * 1e3, total_ms, tflops, peak, peak > 0 ? tflops / peak : 0,
           lib_ms[LIB_CUBLAS], lib_ms[LIB_CUDNN], lib_ms[LIB_OWN], lib_ms[LIB_COPY], total_ms - inside,
           total_ms > 0 ? (lib_ms[LIB_CUBLAS] + lib_ms[LIB_CUDNN]) / total_ms : 0, cuda_peak_allocated() / 1048576.0,
           (total_b - free_b) / 1048576.0, total_b / 1048576.0, cuda_tf32(), cuda_device_name());
    printf("  where the time goes (one profiled step, %d kernels and library calls):\n", n);
    for (int i = 0; i < n && i < top; i++) {
        printf("  %-32s %-6s %8.3f ms %5.1f%% %6ld calls", rows[i].name, lib_names[rows[i].lib], rows[i].ms,
               total_ms > 0 ? 100 * rows[i].ms / total_ms : 0, rows[i].calls);
        if (rows[i].flops > 0) printf("  %6.2f TFLOP/s", rows[i].flops / (rows[i].ms * 1e9));
        if (rows[i].bytes > 0)
            printf("  %6.0f GB/s (%.0f%% of %.0f)", rows[i].bytes / (rows[i].ms * 1e6),
                   cuda_peak_bandwidth() > 0 ? 100 * rows[i].bytes / (rows[i].ms * 1e6) / cuda_peak_bandwidth() : 0,
                   cuda_peak_bandwidth());
        printf("\n");
    }
    fflush(stdout);
    free(rows);
}

/* ---- stage 1 ------------------------------------------------------------------------------------------------- */

typedef struct Stage1Bench {
    Stage1 s;
    Tensor *seq;
    int epoch;
} Stage1Bench;

static void stage1_run(void *arg) {
    Stage1Bench *b = arg;
    Stage1Stats st;
    stage1_train_step(&b->s, b->seq, b->epoch, &st);   /* ends by waiting for the GPU */
}

/* The official config's networks with a random LPIPS of the real widths when it asks for the perceptual loss. */
static int stage1_setup(Stage1Bench *b, const Stage1Config *cfg, int batch, I2vError *e) {
    Stage1Config c = *cfg;
    double w_percep = c.Training.w_percep;
    c.Training.w_percep = 0;
    if (stage1_init(&b->s, &c, NULL, 1, e)) return -1;
    if (w_percep > 0) {
        Rng r;
        rng_seed(&r, 3);
        LpipsConfig lc = lpips_config_vgg16();
        lpips_build(&b->s.lpips, &lc);
        lpips_init_random(&b->s.lpips, &r);
        b->s.has_lpips = 1;
        b->s.cfg.Training.w_percep = w_percep;
    }
    int T = c.Data.sequence_length, S = c.Data.img_size;
    b->seq = tensor_alloc(5, DIMS(batch, T, 3, S, S));
    Rng r;
    rng_seed(&r, 4);
    tensor_fill_uniform(b->seq, &r, -1, 1);
    b->epoch = c.Training.pretrain;   /* after the warm-up epochs: every loss and both discriminators */
    return 0;
}

static void stage1_teardown(Stage1Bench *b) {
    tensor_free(b->seq);
    stage1_free(&b->s);
}

/* ---- the cINN ------------------------------------------------------------------------------------------------- */

typedef struct FlowBench {
    Flow f;
    Adam opt;
    Ctx c;
    real *z, *cond;
    int batch;
} FlowBench;

static void flow_run(void *arg) {
    FlowBench *b = arg;
    flow_train_step(&b->c, &b->f, &b->opt, b->z, b->cond, b->batch, NULL);   /* ends with ctx_reset: waits */
}

static void flow_setup(FlowBench *b, const FlowConfig *cfg, int batch) {
    Rng r;
    rng_seed(&r, 5);
    flow_build(&b->f, cfg, &r);
    adam_init(&b->opt, 1e-5, 0.9, 0.999, 1e-8, 1e-5, 1);   /* AMSGrad, as the official stage 2 */
    adam_add_params(&b->opt, &b->f.ps);
    ctx_init(&b->c);
    b->batch = batch;
    b->z = xmalloc((size_t)batch * cfg->z_dim * sizeof(real));
    b->cond = xmalloc((size_t)batch * b->f.cond_dim * sizeof(real));
    for (int i = 0; i < batch * cfg->z_dim; i++) b->z[i] = (real)rng_normal(&r);
    for (int i = 0; i < batch * b->f.cond_dim; i++) b->cond[i] = (real)rng_normal(&r);
}

static void flow_teardown(FlowBench *b) {
    free(b->z);
    free(b->cond);
    ctx_free(&b->c);
    adam_free(&b->opt);
    flow_free(&b->f);
}

/* ---- the conditioning AE (the demo's) ---------------------------------------------------------------------------- */

typedef struct AeBench {
    CondAe s;
    Tensor *x;
} AeBench;

static void ae_run(void *arg) {
    AeBench *b = arg;
    CondAeStats st;
    cond_ae_train_step(&b->s, b->x, 0, &st, NULL);
    ctx_sync(&b->s.ctx);
}

/* ---- the command ---------------------------------------------------------------------------------------------------- */

/* 1 if arg is key=N (N read into *v), 0 if it is another argument, 2 (a usage error, said) if N is no integer */
static int parse_int(const char *arg, const char *key, int *v) {
    size_t n = strlen(key);
    if (strncmp(arg, key, n) || arg[n] != '=') return 0;
    long long x;
    if (arg_int("bench gpu", key, arg + n + 1, 0, INT_MAX, &x)) return 2;
    *v = (int)x;
    return 1;
}

int bench_gpu(int argc, char **argv) {
    int reps = 3, top = 12, tf32 = 0, batch = 0;
    const char *which = "all";
    for (int i = 0; i < argc; i++) {
        int got = parse_int(argv[i], "reps", &reps) | parse_int(argv[i], "top", &top) |
                  parse_int(argv[i], "tf32", &tf32) | parse_int(argv[i], "batch", &batch);
        if (got & 2) return 2;
        if (got) continue;
        if (!strcmp(argv[i], "stage1") || !strcmp(argv[i], "cinn") || !strcmp(argv[i], "demo")) which = argv[i];
        else {
            fprintf(stderr, "i2v bench gpu: unexpected '%s'; usage: i2v --device cuda bench gpu [stage1|cinn|demo] "
                            "[reps=3] [top=12] [tf32=0|1] [batch=N]\n", argv[i]);
            return 2;
        }
    }
    if (!I2V_CUDA || device_default() != DEVICE_CUDA) {
        fprintf(stderr, "i2v bench gpu: needs the GPU: i2v --device cuda bench gpu (a build with make CUDA=1)\n");
        return 2;
    }
    if (reps < 1) reps = 1;
    cuda_set_tf32(tf32);
    I2vError e;
    char fields[256];
    if (!strcmp(which, "all") || !strcmp(which, "stage1")) {
        Stage1Bench b;
        Stage1Config cfg = stage1_config_bair();
        int n = batch > 0 ? batch : cfg.Training.bs;
        if (stage1_setup(&b, &cfg, n, &e)) {
            fprintf(stderr, "i2v bench gpu: %s\n", e.msg);
            return 1;
        }
        snprintf(fields, sizeof fields, "config=bair batch=%d arena_mb=%.0f params=%zu", n,
                 stage1_step_bytes(&b.s, b.seq) / 1048576.0,
                 paramset_count(&b.s.enc.ps) + paramset_count(&b.s.gen.ps) + paramset_count(&b.s.disc_t.ps) +
                     paramset_count(&b.s.disc_s.ps));
        GpuStep st = {"stage1_iteration", stage1_run, &b};
        measure(&st, fields, reps, top);
        stage1_teardown(&b);
    }
    if (!strcmp(which, "all") || !strcmp(which, "cinn")) {
        FlowBench b;
        FlowConfig cfg = flow_config_bair();
        int n = batch > 0 ? batch : 50;
        flow_setup(&b, &cfg, n);
        snprintf(fields, sizeof fields, "config=bair batch=%d params=%zu", n, paramset_count(&b.f.ps));
        GpuStep st = {"cinn_step", flow_run, &b};
        measure(&st, fields, reps, top);
        flow_teardown(&b);
    }
    if (!strcmp(which, "all") || !strcmp(which, "demo")) {
        /* the demo's configs (program/evaluate.c): stage 1 tiny at batch 8 in its reconstruction-only warm-up,
         * the tiny conditioning AE, the BAIR cINN with 8 blocks and 512 hidden units at batch 32 */
        Stage1Bench s1;
        Stage1Config c1 = stage1_config_tiny();
        c1.Training.pretrain = 1000;
        c1.Training.disc_in_warmup = 0;
        if (stage1_setup(&s1, &c1, 8, &e)) {
            fprintf(stderr, "i2v bench gpu: %s\n", e.msg);
            return 1;
        }
        s1.epoch = 0;
        GpuStep st1 = {"demo_stage1_step", stage1_run, &s1};
        measure(&st1, "config=tiny batch=8", reps, top);
        stage1_teardown(&s1);

        AeBench ae;
        CondAeConfig ca = cond_ae_config_tiny();
        if (cond_ae_init(&ae.s, &ca, NULL, 1, &e)) {
            fprintf(stderr, "i2v bench gpu: %s\n", e.msg);
            return 1;
        }
        int S = ca.AE.in_size;
        ae.x = tensor_alloc(4, DIMS(ca.Training.bs, 3, S, S));
        Rng r;
        rng_seed(&r, 6);
        tensor_fill_uniform(ae.x, &r, -1, 1);
        snprintf(fields, sizeof fields, "config=tiny batch=%d", ca.Training.bs);
        GpuStep st2 = {"demo_cond_ae_step", ae_run, &ae};
        measure(&st2, fields, reps, top);
        tensor_free(ae.x);
        cond_ae_free(&ae.s);

        FlowBench fb;
        FlowConfig cf = flow_config_bair();
        cf.n_flows = 8;
        flow_setup(&fb, &cf, 32);
        GpuStep st3 = {"demo_cinn_step", flow_run, &fb};
        measure(&st3, "config=bair_8_blocks batch=32", reps, top);
        flow_teardown(&fb);
    }
    return 0;
}

/* ---- memory: what a configuration's training step needs, from a dry run (any device) ---------------------------- */

static double mb(size_t b) { return b / 1048576.0; }

static size_t set_bytes(const ParamSet *ps) { return 2 * ps->nvalues * sizeof(real) + ps->buffer_bytes; }

int bench_memory(int argc, char **argv) {
    const char *name = argc > 0 && !strchr(argv[0], '=') ? argv[0] : "bair";
    int batch = 0;
    for (int i = 0; i < argc; i++) parse_int(argv[i], "batch", &batch);
    Stage1Config cfg;
    I2vError e;
    if (stage1_config_named(name, &cfg, &e)) {
        fprintf(stderr, "i2v bench memory: %s\n", e.msg);
        return 2;
    }
    Stage1Bench b;
    int n = batch > 0 ? batch : cfg.Training.bs;
    if (stage1_setup(&b, &cfg, n, &e)) {
        fprintf(stderr, "i2v bench memory: %s\n", e.msg);
        return 1;
    }
    Stage1 *s = &b.s;
    size_t act = stage1_step_bytes(s, b.seq);
    size_t params = set_bytes(&s->enc.ps) + set_bytes(&s->gen.ps) + set_bytes(&s->disc_t.ps) + set_bytes(&s->disc_s.ps) +
                    (s->has_lpips ? s->lpips.ps.buffer_bytes : 0);
    size_t moments = 2 * (s->enc.ps.nvalues + s->gen.ps.nvalues + s->disc_t.ps.nvalues + s->disc_s.ps.nvalues) *
                     sizeof(real);
    size_t work = (size_t)1 << 30, total = act + params + moments + work;
    printf("memory config=%s batch=%d activations_mb=%.0f params_and_grads_mb=%.0f adam_mb=%.0f workspace_mb=%.0f "
           "total_mb=%.0f total_gb=%.2f\n",
           name, n, mb(act), mb(params), mb(moments), mb(work), mb(total), total / 1e9);
    stage1_teardown(&b);
    return 0;
}
