/* test_gemm.c: the blocked GEMM against the naive oracle, and the thread pool.
 *
 * Error bound. Every element is a sum of K products; with unit roundoff u (2^-24 in float, 2^-53 in
 * double) any summation order satisfies |fl(c) - c| <= gamma_K |a| . |b| with gamma_K ~ K u (Higham,
 * Accuracy and Stability of Numerical Algorithms, 2nd ed., eq. 3.5), plus a few roundings for alpha, beta
 * and the oracle's own final rounding. So we accept
 *     |got - want| <= (K + 4) * u * (|alpha| (|A| |B|)_ij + |beta| |C_ij|)
 * where |A| |B| is the product of absolute values. In float this is a relative error of at most
 * 6e-8 * (K + 4): within 1e-5 scaled by K, and safe near zero (the scale is |A||B|, not |C|).
 *
 * Shapes are chosen not to be multiples of any block size (MR, NR, KC, MC, NC for every instruction set),
 * including ones that cross the KC (k > 512), MC (m > 240) and NC (n > 2048) boundaries, and sizes of at
 * least 16 in both dimensions of a transposed operand so the in-register transposes of packing run.
 */
#include <float.h>
#include <stdint.h>

#include "check.h"
#include "kernels/gemm.h"
#include "tensor.h"
#include "kernels/threads.h"

#ifdef I2V_DOUBLE
#define UNIT_ROUNDOFF (DBL_EPSILON / 2)
#else
#define UNIT_ROUNDOFF (FLT_EPSILON / 2)
#endif

static Rng rng;

static real *alloc_random(size_t count) {
    real *p = xmalloc(count * sizeof(real));
    for (size_t i = 0; i < count; i++) p[i] = (real)(2 * rng_uniform(&rng) - 1);
    return p;
}

typedef struct Case {
    int ta, tb, m, n, k;
    int pad;              /* extra elements on every leading dimension */
    real alpha, beta;
} Case;

/* Runs one case with the current thread count. C0 is the initial C (NaN-filled when beta == 0); the
 * padding columns of C (beyond n in each row of ldc) hold a sentinel that must survive. Returns the
 * result (m x ldc) for determinism checks; the caller frees it. */
static real *run_case(Case c, int report) {
    int arows = c.ta ? c.k : c.m, acols = c.ta ? c.m : c.k;
    int brows = c.tb ? c.n : c.k, bcols = c.tb ? c.k : c.n;
    int lda = acols + c.pad, ldb = bcols + c.pad, ldc = c.n + c.pad;
    if (lda < 1) lda = 1;
    if (ldb < 1) ldb = 1;
    if (ldc < 1) ldc = 1;
    size_t asz = (size_t)arows * lda, bsz = (size_t)brows * ldb, csz = (size_t)c.m * ldc;
    real *A = alloc_random(asz), *B = alloc_random(bsz), *C = alloc_random(csz);
    real *absA = xmalloc((asz ? asz : 1) * sizeof(real)), *absB = xmalloc((bsz ? bsz : 1) * sizeof(real));
    real *want = xmalloc((csz ? csz : 1) * sizeof(real)), *scale = xmalloc((csz ? csz : 1) * sizeof(real));
    for (size_t i = 0; i < asz; i++) absA[i] = fabs(A[i]);
    for (size_t i = 0; i < bsz; i++) absB[i] = fabs(B[i]);
    const real sentinel = (real)12345.5;
    for (size_t i = 0; i < (size_t)c.m; i++)
        for (size_t j = 0; j < (size_t)ldc; j++) {
            real *x = &C[i * ldc + j];
            if (j >= (size_t)c.n) *x = sentinel;
            else if (c.beta == 0) *x = NAN;
        }
    memcpy(want, C, csz * sizeof(real));
    gemm_naive(c.ta, c.tb, c.m, c.n, c.k, c.alpha, A, lda, B, ldb, c.beta, want, ldc);
    for (size_t i = 0; i < csz; i++) scale[i] = (c.beta == 0) ? 0 : fabs(c.beta * C[i]);
    gemm_naive(c.ta, c.tb, c.m, c.n, c.k, fabs(c.alpha), absA, lda, absB, ldb, 1, scale, ldc);

    gemm(c.ta, c.tb, c.m, c.n, c.k, c.alpha, A, lda, B, ldb, c.beta, C, ldc);

    double worst = 0;
    int bad_pad = 0, nan_out = 0;
    for (size_t i = 0; i < (size_t)c.m; i++)
        for (size_t j = 0; j < (size_t)ldc; j++) {
            real got = C[i * ldc + j];
            if (j >= (size_t)c.n) {
                bad_pad += got != sentinel;
                continue;
            }
            if (isnan(got)) { nan_out++; continue; }
            double tol = (c.k + 4) * UNIT_ROUNDOFF * scale[i * ldc + j];
            double err = fabs((double)got - want[i * ldc + j]);
            double ratio = err == 0 ? 0 : tol == 0 ? INFINITY : err / tol;
            if (ratio > worst) worst = ratio;
        }
    if (report) {
        check(nan_out == 0, "ta=%d tb=%d m=%d n=%d k=%d beta=%g: %d NaN in the result", c.ta, c.tb, c.m, c.n, c.k,
              (double)c.beta, nan_out);
        check(bad_pad == 0, "ta=%d tb=%d m=%d n=%d k=%d pad=%d: %d elements beyond n written", c.ta, c.tb, c.m,
              c.n, c.k, c.pad, bad_pad);
        check(worst <= 1, "ta=%d tb=%d m=%d n=%d k=%d alpha=%g beta=%g threads=%d: error %.3g x the bound", c.ta,
              c.tb, c.m, c.n, c.k, (double)c.alpha, (double)c.beta, threads_count(), worst);
    }
    free(A); free(B); free(absA); free(absB); free(want); free(scale);
    return C;
}

static void sweep(const int (*shapes)[3], int nshapes, int nthreads) {
    threads_set(nthreads);
    for (int s = 0; s < nshapes; s++)
        for (int t = 0; t < 4; t++)
            for (int b = 0; b < 2; b++) {
                Case c = {.ta = t >> 1, .tb = t & 1, .m = shapes[s][0], .n = shapes[s][1], .k = shapes[s][2],
                          .pad = (s + t + b) % 3 == 0 ? 0 : 3 + s % 5,
                          .alpha = (b ^ (t & 1)) ? (real)1 : (real)-0.7,
                          .beta = b ? (real)0.6 : (real)0};
                free(run_case(c, 1));
            }
}

/* Same inputs, same thread count => the same bits; and in this design the same bits for any count. */
static void test_determinism(void) {
    Case cases[] = {{0, 0, 129, 257, 300, 1, 1, 0}, {0, 1, 50, 512, 96, 0, 1, 0.5}, {1, 0, 300, 70, 50, 2, -1, 1}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        Case c = cases[i];
        size_t csz = (size_t)c.m * (c.n + c.pad);
        uint64_t seed = 1000 + i;
        real *ref = NULL;
        int counts[] = {2, 2, 1, 3};
        for (int r = 0; r < 4; r++) {
            threads_set(counts[r]);
            rng_seed(&rng, seed);
            real *C = run_case(c, 0);
            if (!ref) {
                ref = C;
                continue;
            }
            check(!memcmp(ref, C, csz * sizeof(real)), "case %zu: threads=%d differs bitwise from threads=2", i,
                  counts[r]);
            free(C);
        }
        free(ref);
    }
}

/* k = 0 and alpha = 0: C = beta C, with A and B never read (they are NULL here). */
static void test_degenerate(void) {
    threads_set(2);
    real C[6] = {NAN, NAN, NAN, NAN, NAN, NAN};
    gemm(0, 0, 2, 3, 0, 1, NULL, 1, NULL, 3, 0, C, 3);
    int ok = 1;
    for (int i = 0; i < 6; i++) ok &= C[i] == 0;
    check(ok, "k=0, beta=0 must zero C without reading it");
    for (int i = 0; i < 6; i++) C[i] = (real)i;
    gemm(1, 1, 2, 3, 5, 0, NULL, 2, NULL, 5, 2, C, 3);
    ok = 1;
    for (int i = 0; i < 6; i++) ok &= C[i] == 2 * i;
    check(ok, "alpha=0: C = beta C");
    gemm(0, 0, 0, 3, 4, 1, NULL, 4, NULL, 3, 0, NULL, 3);   /* m = 0: nothing to do, nothing read */
    check(1, "m=0");
}

/* gemm_shared_a: nb products sharing A give the same bits as nb calls of gemm. The B operands overlap
 * (each starts a few rows and columns after the one before, as the convolution's shifted frames do), and
 * the shapes cover B read in place, B packed (tb = 1, a 4 KB row stride, m over one A block) and
 * several k blocks. */
static void test_shared_a(void) {
    typedef struct { int ta, tb, m, n, k, ldb, nb, threads; real beta; } SharedCase;
    const SharedCase cases[] = {
        {0, 0, 64, 200, 70, 203, 5, 1, 1},      /* B in place, edge panel packed */
        {0, 0, 64, 200, 70, 1024, 3, 1, 0},     /* a 4 KB stride: packed */
        {1, 0, 300, 45, 600, 47, 4, 1, 1},      /* two A blocks, two k blocks */
        {0, 1, 33, 40, 90, 95, 6, 1, 0.5},      /* B transposed while packing */
        {0, 0, 70, 130, 50, 140, 3, 3, 1},      /* the thread grid */
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++) {
        SharedCase c = cases[ci];
        int lda = c.ta ? c.m : c.k, brows = c.tb ? c.n : c.k, ldc = c.n + 1;
        size_t bstep = 3 * (size_t)c.ldb + 2, csz = (size_t)c.m * ldc;
        threads_set(c.threads);
        real *A = alloc_random((size_t)(c.ta ? c.k : c.m) * lda);
        real *B = alloc_random((size_t)brows * c.ldb + bstep * (size_t)c.nb);
        real *C0 = alloc_random(csz * (size_t)c.nb), *got = xmalloc(csz * c.nb * sizeof(real));
        real *want = xmalloc(csz * c.nb * sizeof(real));
        memcpy(got, C0, csz * c.nb * sizeof(real));
        memcpy(want, C0, csz * c.nb * sizeof(real));
        const real *bp[8];
        real *cp[8];
        for (int t = 0; t < c.nb; t++) {
            bp[t] = B + bstep * (size_t)t;
            cp[t] = got + csz * (size_t)t;
            gemm(c.ta, c.tb, c.m, c.n, c.k, (real)0.9, A, lda, bp[t], c.ldb, c.beta, want + csz * (size_t)t, ldc);
        }
        gemm_shared_a(c.ta, c.tb, c.m, c.n, c.k, (real)0.9, A, lda, bp, c.ldb, c.beta, cp, ldc, c.nb);
        check(!memcmp(got, want, csz * c.nb * sizeof(real)),
              "gemm_shared_a ta=%d tb=%d m=%d n=%d k=%d ldb=%d nb=%d threads=%d: differs from %d gemm calls", c.ta,
              c.tb, c.m, c.n, c.k, c.ldb, c.nb, c.threads, c.nb);
        /* and one product against the oracle, so a bug shared with gemm cannot hide */
        memcpy(want, C0, csz * sizeof(real));
        gemm_naive(c.ta, c.tb, c.m, c.n, c.k, (real)0.9, A, lda, bp[0], c.ldb, c.beta, want, ldc);
        double worst = 0;
        for (size_t i = 0; i < (size_t)c.m; i++)
            for (size_t j = 0; j < (size_t)c.n; j++) {
                double err = fabs((double)got[i * ldc + j] - want[i * ldc + j]);
                double tol = (c.k + 4) * UNIT_ROUNDOFF * (0.9 * c.k + fabs(c.beta * C0[i * ldc + j]));
                if (err / tol > worst) worst = err / tol;
            }
        check(worst <= 1, "gemm_shared_a case %zu: product 0 is %.3g x the bound from the oracle", ci, worst);
        free(A); free(B); free(C0); free(got); free(want);
    }
}

/* ---- thread pool ----------------------------------------------------------------------------------- */

typedef struct PoolProbe {
    int hits[100];
    int thread_of[100];
    int nested_ok;
} PoolProbe;

static void probe_task(void *arg, int i, int thread) {
    PoolProbe *p = arg;
    p->hits[i]++;
    p->thread_of[i] = thread;
}

static void nested_inner(void *arg, int i, int thread) {
    int *seen = arg;   /* seen[0]: the outer thread index, seen[1 + i]: the inner one */
    seen[1 + i] = thread;
}

static void nested_task(void *arg, int i, int thread) {
    PoolProbe *p = arg;
    int seen[1 + 5] = {thread};
    parallel_for(5, nested_inner, seen);   /* must run serially on this thread, not deadlock */
    int ok = 1;
    for (int j = 0; j < 5; j++) ok &= seen[1 + j] == thread;
    /* and a GEMM inside a task runs on this thread's own buffers */
    real a[3 * 4], b[4 * 2], c1[3 * 2], c2[3 * 2];
    for (int j = 0; j < 12; j++) a[j] = (real)(j - 5 + i);
    for (int j = 0; j < 8; j++) b[j] = (real)(3 - j);
    gemm(0, 0, 3, 2, 4, 1, a, 4, b, 2, 0, c1, 2);
    gemm_naive(0, 0, 3, 2, 4, 1, a, 4, b, 2, 0, c2, 2);
    ok &= !memcmp(c1, c2, sizeof c1);   /* small integers: exact */
    p->hits[i] += ok;
}

/* Threads of this process (Linux: /proc/self/task), or -1 where that cannot be read. */
static int live_threads(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    int n = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "Threads:", 8)) n = atoi(line + 8);
    fclose(f);
    return n;
}

/* threads_shutdown (what runs at exit) joins every worker; a later job starts them again */
static void test_pool_shutdown(void) {
    threads_set(4);
    PoolProbe p;
    memset(&p, 0, sizeof p);
    parallel_for(40, probe_task, &p);
    int before = live_threads();
    threads_shutdown();
    int after = live_threads();
    if (before < 0) {
        printf("no /proc/self/status: the thread count after threads_shutdown is not checked\n");
    } else {
        check(before >= 4 && after == 1, "workers joined: %d threads before threads_shutdown, %d after", before, after);
    }
    memset(&p, 0, sizeof p);
    parallel_for(40, probe_task, &p);
    int once = 1;
    for (int i = 0; i < 40; i++) once &= p.hits[i] == 1;
    check(once && (before < 0 || live_threads() == 4), "and a job after it starts them again");
}

static void test_pool(void) {
    for (int nt = 1; nt <= 4; nt++) {
        threads_set(nt);
        check(threads_count() == nt, "threads_set(%d) then threads_count() = %d", nt, threads_count());
        for (int ntasks = 1; ntasks <= 100; ntasks += 33) {
            PoolProbe p;
            memset(&p, 0, sizeof p);
            parallel_for(ntasks, probe_task, &p);
            int once = 1, in_range = 1, contiguous = 1;
            for (int i = 0; i < ntasks; i++) {
                once &= p.hits[i] == 1;
                in_range &= p.thread_of[i] >= 0 && p.thread_of[i] < nt;
                if (i) contiguous &= p.thread_of[i] >= p.thread_of[i - 1];  /* static, contiguous shares */
            }
            check(once, "threads=%d ntasks=%d: every task runs exactly once", nt, ntasks);
            check(in_range, "threads=%d ntasks=%d: thread index in [0, %d)", nt, ntasks, nt);
            check(contiguous, "threads=%d ntasks=%d: each thread runs one contiguous range", nt, ntasks);
        }
        PoolProbe p;
        memset(&p, 0, sizeof p);
        parallel_for(8, nested_task, &p);
        int ok = 1;
        for (int i = 0; i < 8; i++) ok &= p.hits[i] == 1;
        check(ok, "threads=%d: nested parallel_for and gemm inside a task", nt);
    }
    /* many back-to-back jobs: exercises the spin and sleep hand-offs */
    threads_set(2);
    int total = 0;
    for (int r = 0; r < 500; r++) {
        PoolProbe p;
        memset(&p, 0, sizeof p);
        parallel_for(2, probe_task, &p);
        total += p.hits[0] + p.hits[1];
    }
    check(total == 1000, "500 back-to-back jobs: %d of 1000 tasks ran", total);
    /* more threads than cores: shares whose worker has not started are run by the caller, under the
     * worker's index, so the task -> index map stays the same */
    threads_set(8);
    int ok = 1;
    for (int r = 0; r < 300; r++) {
        PoolProbe p;
        memset(&p, 0, sizeof p);
        parallel_for(16, probe_task, &p);
        for (int i = 0; i < 16; i++) ok &= p.hits[i] == 1 && p.thread_of[i] == i / 2;
    }
    check(ok, "threads=8, 300 jobs of 16 tasks: each ran once, task i under thread i/2");
}

int main(void) {
    /* The pool reads I2V_THREADS when first used; nothing has used it yet. */
    setenv("I2V_THREADS", "3", 1);
    check(threads_count() == 3, "I2V_THREADS=3 gives threads_count() = %d", threads_count());
    rng_seed(&rng, 42);

    /* m x n x k */
    static const int shapes[][3] = {
        {1, 1, 1}, {7, 13, 5}, {1000, 3, 999}, {3, 1000, 17}, {129, 257, 65}, {50, 512, 96}, {33, 65, 300},
        {250, 40, 600}, {17, 2100, 20}, {10, 32, 256}, {16, 16, 16}, {2, 1, 700},
        /* small m with B read in place (tb = 0): several k blocks; full panels beside a packed edge */
        {20, 100, 1100}, {240, 70, 30},
        /* rows that the shorter micro-tile pads less (MR_ALT where there is one), over two row blocks */
        {264, 40, 70},
        /* B rows 4 KB apart (packed) and rows far apart but not a multiple of 4 KB (in place) */
        {30, 1024, 40}, {20, 1500, 40},
    };
    int nshapes = (int)(sizeof shapes / sizeof *shapes);
    double t0 = now_seconds();
    sweep(shapes, nshapes, 1);
    sweep(shapes, nshapes, 3);
    if (!quick_mode()) sweep(shapes, nshapes, 2);
    test_determinism();
    test_degenerate();
    test_shared_a();
    test_pool();
    test_pool_shutdown();
    printf("test_gemm: %.1f s\n", now_seconds() - t0);
    return check_summary("test_gemm");
}
