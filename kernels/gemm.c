/* gemm.c: the GEMM that every heavy op lowers to, and its naive oracle.
 *
 * What it is: a BLIS-structured GEMM (Van Zee & van de Geijn, "BLIS: A Framework for Rapidly Instantiating
 * BLAS Functionality", and BLIS's KernelsHowTo): five loops around a micro-kernel, operands packed into
 * zero-padded micro-panels in per-thread buffers, a micro-kernel that loops only over k and keeps an
 * MR x NR tile of C in registers. SIMD comes from simd.h; block sizes are chosen per instruction set.
 * What it is not: a BLAS. Only row-major, only `real`, no complex, no batched interface.
 *
 * Notation: C (m x n) = alpha op(A) (m x k) op(B) (k x n) + beta C, all row-major (see gemm.h).
 *   loop 5 (jc): columns of C in blocks of NC          B block kc x nc packed once per (jc, pc)
 *   loop 4 (pc): k in blocks of KC                     C gets += after the first block
 *   loop 3 (ic): rows of C in blocks of MC             A block mc x kc packed once per (ic, pc)
 *   loop 2 (jr): NR-wide micro-panels of the B block
 *   loop 1 (ir): MR-tall micro-panels of the A block
 *   micro-kernel: MR x NR tile of C += A micro-panel (MR x kc) * B micro-panel (kc x NR)
 *
 * Packed layouts. B micro-panel: kc rows of NR contiguous values (p-major), so one k step is NR/VLEN
 * vector loads. A micro-panel: MR rows of kc values at a fixed row stride AST (i-major), so one k step
 * is MR broadcasts at compile-time offsets from one pointer. i-major makes packing row-major A (ta = 0,
 * the forward case of every linear and convolution) a plain copy instead of a transpose; B with tb = 1
 * and A with ta = 1 are transposed while packing, VLEN x VLEN blocks at a time in registers. (The scalar
 * build packs A p-major instead; see AST below.)
 *
 * Small m (one A block: the cINN's batch of 50): each B micro-panel is used by the few row tiles right
 * after it is made and never again, so packing buys nothing and costs a pass over B that waits on memory.
 * There B with tb = 0 is read in place, rows ldb apart, and the micro-kernel prefetches the rows it will
 * reach a few k steps later. (B with tb = 1 is still transposed into a panel: its NR columns are rows of
 * the stored matrix.) Every micro-kernel also prefetches its C tile when it starts, so the tile's reads
 * and writes at the end find it in cache: the weight gradient of a linear layer (k = 50) is a GEMM
 * whose time was half waiting for C.
 *
 * Threads: a C matrix is cut into a grid of rectangles, one per thread, on micro-tile boundaries; each
 * thread runs the five loops on its rectangle with its own packing buffers (no barrier inside a GEMM).
 * Every element of C is summed in the same order (p = 0..k-1 within KC blocks, blocks in order) whatever
 * the thread count or the grid, so the result does not depend on the number of threads at all.
 */
#include "kernels/gemm.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/simd.h"
#include "kernels/threads.h"

/* ==================================================================================================== */
/* naive oracle                                                                                          */
/* ==================================================================================================== */

/* The triple loop with a double accumulator: the reference the tests compare gemm against. */
void gemm_naive(int ta, int tb, int m, int n, int k, real alpha, const real *A, int lda, const real *B,
                int ldb, real beta, real *C, int ldc) {
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double acc = 0;
            for (int p = 0; p < k; p++) {
                real a = ta ? A[(size_t)p * lda + i] : A[(size_t)i * lda + p];
                real b = tb ? B[(size_t)j * ldb + p] : B[(size_t)p * ldb + j];
                acc += (double)a * b;
            }
            real *cij = &C[(size_t)i * ldc + j];
            *cij = (beta == 0) ? (real)(alpha * acc) : (real)(alpha * acc + beta * *cij);
        }
}

/* ==================================================================================================== */
/* block sizes                                                                                           */
/* ==================================================================================================== */

/* Each can be overridden with -D for tuning. */
#if defined(SIMD_AVX512)
/* 32 zmm registers: MR x NR/16 = 20 accumulators + 2 B vectors + 1 broadcast, far more independent
 * chains than FMA latency x throughput needs. MR = 10 tiles the cINN's batch of 50 exactly, where other
 * heights would leave a partly empty tile. */
#ifndef GEMM_MR
#define GEMM_MR 10
#endif
#ifndef GEMM_NR
#define GEMM_NR 32  /* two zmm per row of the tile */
#endif
#elif defined(SIMD_AVX2)
/* 16 ymm registers: 6 x 2 = 12 accumulators + 2 B vectors + 1 broadcast (the classic 6x16). */
#ifndef GEMM_MR
#define GEMM_MR 6
#endif
#ifndef GEMM_NR
#define GEMM_NR 16
#endif
#elif defined(SIMD_NEON)
/* 32 q registers: 8 x 3 = 24 accumulators + 3 B vectors + broadcasts. */
#ifndef GEMM_MR
#define GEMM_MR 8
#endif
#ifndef GEMM_NR
#define GEMM_NR 12
#endif
#else
/* Scalar: 4 x 8 = 32 accumulators, which a compiler can keep in 8 SSE/NEON registers if it vectorises
 * along a row, or in scalar registers with some spills if it does not. */
#ifndef GEMM_MR
#define GEMM_MR 4
#endif
#ifndef GEMM_NR
#define GEMM_NR 8
#endif
#endif

#ifndef GEMM_KC
/* A longer k loop means fewer passes over C; the B micro-panel KC x NR (64 KB for NR = 32) then lives
 * in L2, which still feeds one zmm FMA per cycle. */
#define GEMM_KC 512
#endif
#ifndef GEMM_MC
#define GEMM_MC (GEMM_MR * 24)  /* A block MC x KC (about 500 KB for MR = 10) stays in the 1 MB L2 */
#endif
#ifndef GEMM_NC
#define GEMM_NC (2048 / GEMM_NR * GEMM_NR)  /* B block KC x NC (4 MB) stays in L3; large so A is repacked rarely */
#endif

/* A second micro-tile height, for row counts that MR pads badly. Each GEMM takes whichever of the two
 * pads fewer rows: 64 rows are 70 with MR = 10 but 64 with 8, 50 rows are 50 with 10 but 56 with 8. An
 * element of C gets the same FMAs in the same order with either, so the choice never changes a result. */
#if defined(SIMD_AVX512) && !defined(GEMM_MR_ALT)
#define GEMM_MR_ALT 8
#elif !defined(GEMM_MR_ALT)
#define GEMM_MR_ALT GEMM_MR  /* one height elsewhere */
#endif

enum { MR = GEMM_MR, MR_ALT = GEMM_MR_ALT, NR = GEMM_NR, KC = GEMM_KC, MC = GEMM_MC, NC = GEMM_NC,
       NV = GEMM_NR / VLEN };

/* Layout of a packed A micro-panel: element (i, p) at i*A_RS + p*A_CS, panels mr*AST apart (mr: the
 * GEMM's tile height, MR or MR_ALT). Vector builds use i-major rows (A_CS = 1) at a stride AST of KC plus
 * one cache line, so the rows do not fall into the same L1 sets (a stride of exactly 2 KB would put every
 * other row in one set). The scalar build uses p-major panels (A_RS = 1): then compilers vectorise the
 * micro-kernel along a row of C, whereas with i-major rows they vectorise along k and keep nothing in
 * registers. */
#if VLEN > 1
enum { AST = GEMM_KC + 64 / (int)sizeof(real), A_RS = AST, A_CS = 1 };
#else
enum { AST = GEMM_KC, A_RS = 1, A_CS = GEMM_MR };
#endif

_Static_assert(GEMM_NR % VLEN == 0, "NR must be a multiple of the vector length");
_Static_assert(GEMM_MC % GEMM_MR == 0 && GEMM_MC % GEMM_MR_ALT == 0, "MC must be a multiple of both heights");
_Static_assert(GEMM_MR_ALT <= GEMM_MR, "the tile arrays are MR tall");
_Static_assert(VLEN > 1 || GEMM_MR_ALT == GEMM_MR, "the scalar build's A layout has MR in it (A_CS)");
_Static_assert(GEMM_NC % GEMM_NR == 0, "NC must be a multiple of NR");

/* ==================================================================================================== */
/* packing                                                                                               */
/* ==================================================================================================== */

/* dst[c * ldd + r] = src[r * lds + c] for an r x c region: VLEN x VLEN blocks in registers, scalar edges. */
void transpose_copy(const real *src, size_t lds, size_t rows, size_t cols, real *dst, size_t ldd) {
    size_t r = 0;
    for (; r + VLEN <= rows; r += VLEN) {
        size_t c = 0;
        for (; c + VLEN <= cols; c += VLEN) {
            vreal v[VLEN];
            for (int q = 0; q < VLEN; q++) v[q] = vload(src + (r + q) * lds + c);
            vtranspose(v);
            for (int q = 0; q < VLEN; q++) vstore(dst + (c + q) * ldd + r, v[q]);
        }
        for (; c < cols; c++)
            for (size_t q = 0; q < VLEN; q++) dst[c * ldd + r + q] = src[(r + q) * lds + c];
    }
    for (; r < rows; r++)
        for (size_t c = 0; c < cols; c++) dst[c * ldd + r] = src[r * lds + c];
}

/* dst[0 .. n) = src[0 .. n) in vector moves (see SIMD_KEEP_LOOPS): a memcpy call per packed row costs
 * more than the row's copy for the few hundred bytes a row holds. GCC does not inline a function with its
 * own optimize attribute, so this is a call. */
SIMD_KEEP_LOOPS static void copy_reals(real *restrict dst, const real *restrict src, size_t n) {
    size_t i = 0;
    for (; i + VLEN <= n; i += VLEN) vstore(dst + i, vload(src + i));
    for (; i < n; i++) dst[i] = src[i];
}

/* A block (rows i0.., mc of them; k from p0, kc of them) into mr-row micro-panels in the layout above.
 * Rows from mc up to the next multiple of mr are zero, so the micro-kernel never needs a row count. */
static void pack_a(int ta, const real *A, size_t lda, size_t i0, size_t mc, size_t p0, size_t kc, size_t mr,
                   real *dst) {
    for (size_t q = 0; q * mr < mc; q++) {
        size_t rows = mc - q * mr < mr ? mc - q * mr : mr;
        real *d = dst + q * mr * AST;
        const real *src = ta ? A + p0 * lda + i0 + q * mr : A + (i0 + q * mr) * lda + p0;
        if (!ta && A_CS == 1)       /* rows to rows */
            for (size_t i = 0; i < rows; i++) copy_reals(d + i * A_RS, src + i * lda, kc);
        else if (!ta)               /* rows to columns */
            transpose_copy(src, lda, rows, kc, d, A_CS);
        else if (A_RS == 1)         /* A is stored k x m: columns to columns */
            for (size_t p = 0; p < kc; p++) copy_reals(d + p * A_CS, src + p * lda, rows);
        else                        /* columns to rows */
            transpose_copy(src, lda, kc, rows, d, A_RS);
        for (size_t i = rows; i < mr; i++)
            for (size_t p = 0; p < kc; p++) d[i * A_RS + p * A_CS] = 0;
    }
}

/* B block (k from p0, kc of them; columns j0.., nc of them) into NR-column micro-panels: panel q at
 * dst + q*kc*NR, row p at offset p*NR. Missing columns of the last panel are zero. */
static void pack_b(int tb, const real *B, size_t ldb, size_t p0, size_t kc, size_t j0, size_t nc, real *dst) {
    for (size_t jq = 0; jq < nc; jq += NR) {
        size_t w = nc - jq < NR ? nc - jq : NR;
        real *d = dst + jq * kc;
        if (!tb && w == NR)   /* a full panel row: NV vector moves, inline (the common case) */
            for (size_t p = 0; p < kc; p++) {
                const real *src = B + (p0 + p) * ldb + j0 + jq;
                for (int v = 0; v < NV; v++) vstore(d + p * NR + v * VLEN, vload(src + v * VLEN));
            }
        else if (!tb)
            for (size_t p = 0; p < kc; p++) copy_reals(d + p * NR, B + (p0 + p) * ldb + j0 + jq, w);
        else  /* B is stored n x k */
            transpose_copy(B + (j0 + jq) * ldb + p0, ldb, w, kc, d, NR);
        if (w < NR)
            for (size_t p = 0; p < kc; p++) memset(d + p * NR + w, 0, (NR - w) * sizeof(real));
    }
}

/* ==================================================================================================== */
/* micro-kernel                                                                                          */
/* ==================================================================================================== */

/* c (an mr x NR tile with row stride ldc) = alpha acc + beta c; beta == 0 never reads c. */
static inline void tile_store(const int mr, vreal acc[MR][NV], real *c, size_t ldc, real alpha, real beta) {
    vreal va = vset1(alpha);
    if (beta == 0) {
        for (int i = 0; i < mr; i++)
            for (int v = 0; v < NV; v++) vstore(c + (size_t)i * ldc + (size_t)v * VLEN, vmul(va, acc[i][v]));
    } else {
        vreal vb = vset1(beta);
        for (int i = 0; i < mr; i++)
            for (int v = 0; v < NV; v++) {
                real *cp = c + (size_t)i * ldc + (size_t)v * VLEN;
                vstore(cp, vfma(vb, vload(cp), vmul(va, acc[i][v])));
            }
    }
}

/* How many k steps ahead the micro-kernel prefetches B rows it reads in place: far enough to cover a
 * trip to memory (16 steps of MR x NV FMAs are a few hundred cycles), near enough to stay in L1. */
enum { B_PREFETCH_ROWS = 16, LINE_REALS = 64 / (int)sizeof(real) };

/* The only loop is over k: per step, NV vector loads of B and mr broadcasts of A feed mr*NV FMAs into
 * accumulators that stay in registers. mr is a constant (MR or MR_ALT) in the two kernels below, which
 * the compiler builds from this one body. B's rows are ldbp apart: NR in a packed panel, ldb when B is
 * read in place (then the rows B_PREFETCH_ROWS ahead are prefetched; the caller passes only full panels).
 * Edge tiles (rows < mr or cols < NR) go through a local tile so the arithmetic on every element of C is
 * the same as in a full tile. */
static inline void micro_kernel_body(const int mr, size_t kc, const real *restrict a, const real *restrict b,
                                     size_t ldbp, real *restrict c, size_t ldc, size_t rows, size_t cols,
                                     real alpha, real beta) {
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < cols; j += LINE_REALS) simd_prefetch_write(c + i * ldc + j);
    vreal acc[MR][NV];
    for (int i = 0; i < mr; i++)
        for (int v = 0; v < NV; v++) acc[i][v] = vzero();
    for (size_t p = 0; p < kc; p++) {
        if (ldbp != NR)
            for (int j = 0; j < NR; j += LINE_REALS) simd_prefetch(b + B_PREFETCH_ROWS * ldbp + j);
        vreal bv[NV];
        for (int v = 0; v < NV; v++) bv[v] = vload(b + v * VLEN);
        for (int i = 0; i < mr; i++) {
            vreal ai = vset1(a[(size_t)i * A_RS + p * A_CS]);
            for (int v = 0; v < NV; v++) acc[i][v] = vfma(ai, bv[v], acc[i][v]);
        }
        b += ldbp;
    }
    if (rows == (size_t)mr && cols == NR) {
        tile_store(mr, acc, c, ldc, alpha, beta);
        return;
    }
    real tile[MR * NR];
    if (beta != 0) {
        memset(tile, 0, sizeof tile);
        for (size_t i = 0; i < rows; i++) copy_reals(tile + i * NR, c + i * ldc, cols);
    }
    tile_store(mr, acc, tile, NR, alpha, beta);
    for (size_t i = 0; i < rows; i++) copy_reals(c + i * ldc, tile + i * NR, cols);
}

static void micro_kernel(size_t kc, const real *restrict a, const real *restrict b, size_t ldbp,
                         real *restrict c, size_t ldc, size_t rows, size_t cols, real alpha, real beta) {
    micro_kernel_body(MR, kc, a, b, ldbp, c, ldc, rows, cols, alpha, beta);
}

static void micro_kernel_alt(size_t kc, const real *restrict a, const real *restrict b, size_t ldbp,
                             real *restrict c, size_t ldc, size_t rows, size_t cols, real alpha, real beta) {
    micro_kernel_body(MR_ALT, kc, a, b, ldbp, c, ldc, rows, cols, alpha, beta);
}

/* ==================================================================================================== */
/* the five loops                                                                                        */
/* ==================================================================================================== */

typedef struct GemmArgs {
    int ta, tb;
    size_t m, n, k;
    real alpha, beta;
    const real *A;
    const real *const *B;  /* nb products C[t] = A B[t] (gemm: one) */
    real *const *C;
    int nb;
    size_t lda, ldb, ldc;
    size_t mr;             /* the micro-tile height: MR or MR_ALT */
    int gm, gn;            /* the thread grid: gm row blocks x gn column blocks */
} GemmArgs;

/* Packing buffers, one pair per thread, kept between calls. They grow to what the largest GEMM seen so
 * far needs (at most MC x AST and KC x NC), so they are allocated a few times per thread, not per call,
 * and a thread that only multiplies small matrices does not hold 4 MB. */
typedef struct PackBuf {
    real *p;
    size_t cap;   /* elements */
} PackBuf;
static _Thread_local PackBuf tl_pack_a, tl_pack_b;

/* A thread's buffers are freed when it ends (the pool's workers are joined at exit): a thread-specific key
 * whose destructor runs then. */
static pthread_key_t pack_key;
static pthread_once_t pack_once = PTHREAD_ONCE_INIT;

static void free_pack_buffers(void *unused) {
    (void)unused;
    free(tl_pack_a.p);
    free(tl_pack_b.p);
    tl_pack_a = tl_pack_b = (PackBuf){NULL, 0};
}

static void pack_key_init(void) { pthread_key_create(&pack_key, free_pack_buffers); }

static real *pack_buffer(PackBuf *b, size_t count) {
    if (count > b->cap) {
        pthread_once(&pack_once, pack_key_init);
        pthread_setspecific(pack_key, b);   /* any non-NULL value: the destructor runs at the thread's end */
        free(b->p);
        size_t bytes = (count * sizeof(real) + 63) / 64 * 64;
        b->p = aligned_alloc(64, bytes);
        I2V_ASSERT(b->p, "out of memory allocating a %zu-byte GEMM packing buffer", bytes);
        b->cap = count;
    }
    return b->p;
}

/* B is read in place (see the top of the file) when tb = 0, the rectangle's rows fit one A block, and
 * B's row stride is not a multiple of 4 KB: rows 4 KB apart all land in the same few cache sets and evict
 * each other before the next row tile reads them again, so such a B is packed instead. The shifted
 * convolution's padded frames (strides of 3-13 K floats) are read in place. */
enum { B_IN_PLACE_BAD_STRIDE = 4096 / (int)sizeof(real) };
static int b_stride_ok(size_t ldb) { return ldb % B_IN_PLACE_BAD_STRIDE != 0; }

/* The five loops on the rectangle rows [r0, r1) x columns [c0, c1) of every product's C. One product:
 * its B block is packed once and serves every A block. Several (they share A): each A block is packed
 * once and serves every product, whose B is packed (if it is not read in place) where it is used. */
static void gemm_rect(const GemmArgs *g, size_t r0, size_t r1, size_t c0, size_t c1) {
    size_t mc_max = r1 - r0 < MC ? r1 - r0 : MC, nc_max = c1 - c0 < NC ? c1 - c0 : NC;
    size_t mr = g->mr;
    real *pa = pack_buffer(&tl_pack_a, (mc_max + mr - 1) / mr * mr * AST);
    real *pb = pack_buffer(&tl_pack_b, (g->k < KC ? g->k : KC) * ((nc_max + NR - 1) / NR * NR));
    int b_in_place = !g->tb && r1 - r0 <= MC && b_stride_ok(g->ldb);
    for (size_t jc = c0; jc < c1; jc += NC) {
        size_t nc = c1 - jc < NC ? c1 - jc : NC;
        size_t full = b_in_place ? nc / NR * NR : 0;   /* columns read in place; the rest is packed */
        for (size_t pc = 0; pc < g->k; pc += KC) {
            size_t kc = g->k - pc < KC ? g->k - pc : KC;
            real beta = pc == 0 ? g->beta : 1;  /* later k blocks add to what the first one wrote */
            for (size_t ic = r0; ic < r1; ic += MC) {
                size_t mc = r1 - ic < MC ? r1 - ic : MC;
                pack_a(g->ta, g->A, g->lda, ic, mc, pc, kc, mr, pa);
                for (int t = 0; t < g->nb; t++) {
                    if (full < nc && (g->nb > 1 || ic == r0))
                        pack_b(g->tb, g->B[t], g->ldb, pc, kc, jc + full, nc - full, pb + full * kc);
                    for (size_t jr = 0; jr < nc; jr += NR) {
                        size_t cols = nc - jr < NR ? nc - jr : NR;
                        const real *b = jr < full ? g->B[t] + pc * g->ldb + jc + jr : pb + jr * kc;
                        size_t ldbp = jr < full ? g->ldb : NR;
                        for (size_t ir = 0; ir < mc; ir += mr) {
                            size_t rows = mc - ir < mr ? mc - ir : mr;
                            real *c = g->C[t] + (ic + ir) * g->ldc + jc + jr;
                            if (mr == MR) micro_kernel(kc, pa + ir * AST, b, ldbp, c, g->ldc, rows, cols, g->alpha, beta);
                            else micro_kernel_alt(kc, pa + ir * AST, b, ldbp, c, g->ldc, rows, cols, g->alpha, beta);
                        }
                    }
                }
            }
        }
    }
}

/* Task t of the grid: row block t / gn, column block t % gn, cut on micro-tile boundaries. */
static void gemm_task(void *arg, int t, int thread) {
    (void)thread;
    const GemmArgs *g = arg;
    size_t tm = (g->m + g->mr - 1) / g->mr, tn = (g->n + NR - 1) / NR;   /* micro-tiles per dimension */
    size_t bi = (size_t)(t / g->gn), bj = (size_t)(t % g->gn);
    size_t r0 = tm * bi / g->gm * g->mr, r1 = tm * (bi + 1) / g->gm * g->mr;
    size_t c0 = tn * bj / g->gn * NR, c1 = tn * (bj + 1) / g->gn * NR;
    if (r1 > g->m) r1 = g->m;
    if (c1 > g->n) c1 = g->n;
    if (r0 < r1 && c0 < c1) gemm_rect(g, r0, r1, c0, c1);
}

/* The thread grid gm x gn (gm * gn <= nthreads) with the least estimated time: the largest rectangle's
 * FMAs over 16 per cycle plus the packing it repeats (about one element per cycle), per unit of k.
 * Small products stay on one thread: a fork costs a few microseconds. */
static void choose_grid(GemmArgs *g, int nthreads) {
    g->gm = g->gn = 1;
    double fmas = (double)g->m * g->n * g->k;
    if (nthreads <= 1 || fmas < 2e5) return;
    size_t tm = (g->m + g->mr - 1) / g->mr, tn = (g->n + NR - 1) / NR;
    double best = -1;
    for (int gm = 1; gm <= nthreads; gm++) {
        int gn = nthreads / gm;
        double rows = (double)((tm + gm - 1) / gm * g->mr), cols = (double)((tn + gn - 1) / gn * NR);
        double cost = rows * cols / 16 + rows + cols;
        if (best < 0 || cost < best) {
            best = cost;
            g->gm = gm;
            g->gn = gn;
        }
    }
}


/* The checks, the degenerate cases and the thread grid shared by gemm and gemm_shared_a. */
static void gemm_run(int ta, int tb, int m, int n, int k, real alpha, const real *A, int lda,
                     const real *const *B, int ldb, real beta, real *const *C, int ldc, int nb) {
    I2V_ASSERT(m >= 0 && n >= 0 && k >= 0 && nb >= 0, "gemm: negative size m=%d n=%d k=%d nb=%d", m, n, k, nb);
    I2V_ASSERT(ldc >= (n > 0 ? n : 1), "gemm: ldc=%d < n=%d", ldc, n);
    I2V_ASSERT(lda >= ((ta ? m : k) > 0 ? (ta ? m : k) : 1), "gemm: lda=%d too small (ta=%d m=%d k=%d)", lda, ta,
               m, k);
    I2V_ASSERT(ldb >= ((tb ? k : n) > 0 ? (tb ? k : n) : 1), "gemm: ldb=%d too small (tb=%d n=%d k=%d)", ldb, tb,
               n, k);
    if (m == 0 || n == 0 || nb == 0) return;
    if (k == 0 || alpha == 0) {  /* C = beta C without touching A or B, as BLAS does */
        for (int t = 0; t < nb; t++)
            for (size_t i = 0; i < (size_t)m; i++)
                for (size_t j = 0; j < (size_t)n; j++) {
                    real *c = &C[t][i * (size_t)ldc + j];
                    *c = beta == 0 ? 0 : beta * *c;
                }
        return;
    }
    GemmArgs g = {.ta = ta, .tb = tb, .m = (size_t)m, .n = (size_t)n, .k = (size_t)k, .alpha = alpha,
                  .beta = beta, .A = A, .B = B, .C = C, .nb = nb, .lda = (size_t)lda, .ldb = (size_t)ldb,
                  .ldc = (size_t)ldc};
    size_t pad = ((size_t)m + MR - 1) / MR * MR, pad_alt = ((size_t)m + MR_ALT - 1) / MR_ALT * MR_ALT;
    g.mr = pad_alt < pad ? MR_ALT : MR;
    choose_grid(&g, threads_in_task() ? 1 : threads_count());
    if (g.gm * g.gn == 1)
        gemm_rect(&g, 0, g.m, 0, g.n);
    else
        parallel_for(g.gm * g.gn, gemm_task, &g);
}

void gemm(int ta, int tb, int m, int n, int k, real alpha, const real *A, int lda, const real *B, int ldb,
          real beta, real *C, int ldc) {
    gemm_run(ta, tb, m, n, k, alpha, A, lda, &B, ldb, beta, &C, ldc, 1);
}

int gemm_panel_width(void) { return NR; }

void gemm_shared_a(int ta, int tb, int m, int n, int k, real alpha, const real *A, int lda,
                   const real *const *B, int ldb, real beta, real *const *C, int ldc, int nb) {
    gemm_run(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc, nb);
}
