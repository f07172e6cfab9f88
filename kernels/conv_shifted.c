/* conv_shifted.c: the fast lowering of a convolution, the "shifted walk", for stride 1 along H and W.
 *
 * For output frame t and tap (a, b, d),
 *     y_t (Cout, Nq) += w_abd (Cout, Cin) xp_{t s0 - p0 + a} (Cin, Nq) shifted by b Wp + d,
 * where xp is the frame padded in H and W and positions are counted on the padded grid (q = h Wp + w,
 * Nq = (Ho - 1) Wp + Wo; the Wp - Wo columns past each row are computed and dropped). Rows share their
 * padding: one gap of p2 zeros ends a row and starts the next, so Wp = W + p2, not W + 2 p2 (a tap past
 * the right edge reads the next row's gap), which halves the dropped columns. B is read straight from xp
 * with ldb = the padded frame stride: no vol2col. Taps that fall on padding frames are skipped. The weight
 * gradient is the same walk with dw_abd += dy_t xp^T. Each GEMM has K = Cin, small enough to stay in cache.
 * What it is not: the plan that chooses it, or the other lowerings (kernels/conv.c); the results equal
 * theirs up to rounding, and depend only on the inputs and the thread count.
 * Dimension legend: N batch, C channels, T frames, H, W, kvol = kT kH kW, Hp, Wp the padded frame, Nq the
 * positions of one output frame on the padded grid.
 */
#include "kernels/conv_shifted.h"

#include <string.h>

#include "kernels/gemm.h"
#include "kernels/threads.h"

/* The padded frame: Hp = H + 2 p1 rows of Wp = W + p2 (each row's p2 leading zeros are also the right
 * padding of the row before), then p2 zeros that end the last row; and the padded-grid positions Nq of
 * one output frame. */
static int frame_wp(const ConvGeom *g) { return g->in[2] + g->p[2]; }
static size_t frame_hwp(const ConvGeom *g) {
    return (size_t)(g->in[1] + 2 * g->p[1]) * (size_t)frame_wp(g) + (size_t)g->p[2];
}
static size_t frame_nq(const ConvGeom *g) {
    return (size_t)(g->out[1] - 1) * (size_t)frame_wp(g) + (size_t)g->out[2];
}

/* The forward's GEMMs that reach the end of a frame compute up to a GEMM panel of positions past it, so
 * that their last panel is full and read in place instead of packed apart for every tap (on 16x16 frames
 * Nq = 271, 15 columns into the ninth panel). The output frame's rows are frame_ldq apart to hold them,
 * and the padded frames are followed by a panel of zeros for the reads past the last one. The extra
 * columns are dropped with the others; those below Nq read padding rows, which add zeros. */
static size_t frame_ldq(const ConvGeom *g) { return frame_nq(g) + (size_t)gemm_panel_width() - 1; }

/* Reals of one thread's padded frames, their trailing panel and output frame in the shifted walk. */
static size_t shifted_frame_reals(const ConvGeom *g) {
    return (size_t)g->cin * (size_t)g->k[0] * frame_hwp(g) + (size_t)gemm_panel_width() +
           (size_t)g->cout * frame_ldq(g);
}

/* The output frame (or gathered dy) in a thread's workspace, after the padded frames and their panel. */
static real *frame_out(const ConvGeom *g, real *xp) {
    return xp + (size_t)g->cin * (size_t)g->k[0] * frame_hwp(g) + (size_t)gemm_panel_width();
}

/* The shifted lowering pays for the dropped columns and for one GEMM per tap with K = Cin: it wins when
 * Cin fills a GEMM panel, the padded rows are not much wider than the output rows, and a frame has enough
 * positions to pay for the GEMM's packing of each tap's weights (8x8 and 4x4 frames do not). Shared row
 * padding needs p2 <= k2 - 1, so that an output row (Wo = W + 2 p2 - k2 + 1) fits in Wp. */
enum { SHIFTED_MIN_POSITIONS = 128 };
int conv_use_shifted(const ConvGeom *g) {
    if (g->s[1] != 1 || g->s[2] != 1 || is_pointwise(g) || !weight_copy_ok(g) || g->cin < 16) return 0;
    if (g->p[2] > g->k[2] - 1 || frame_nq(g) < SHIFTED_MIN_POSITIONS) return 0;
    if (shifted_frame_reals(g) * sizeof(real) > conv_tile_bytes()) return 0;   /* frames obey the tile budget */
    return (double)frame_nq(g) <= 1.2 * (double)g->out[1] * (double)g->out[2];
}

/* The shifted walk's weight gradient is one GEMM per tap with N = Cin: below 32 input channels (one
 * AVX-512 GEMM panel) every tile is partly empty and B is repacked for every tap, so vol2col's one wide
 * GEMM per sample does better. */
enum { SHIFTED_DW_MIN_CIN = 32 };
int conv_dw_by_shifted(const ConvGeom *g) { return conv_use_shifted(g) && g->cin >= SHIFTED_DW_MIN_CIN; }

/* conv_weights_by_tap works in blocks of 16 x 16 (co, ci) pairs: their taps (27 KB for 3x3x3) stay in L1
 * while every tap's 16 x 16 piece of wt is written a whole cache line at a time; element by element the
 * tap matrices (often a power of two apart) would be written through kvol streams that evict each other. */
enum { WT_BLOCK = 16 };
void conv_weights_by_tap(real *wt, const real *w, const ConvGeom *g, int flip) {
    size_t kvol = vol3(g->k), co_n = (size_t)g->cout, ci_n = (size_t)g->cin;
    for (size_t co0 = 0; co0 < co_n; co0 += WT_BLOCK)
        for (size_t ci0 = 0; ci0 < ci_n; ci0 += WT_BLOCK) {
            size_t co1 = min_sz(co_n, co0 + WT_BLOCK), ci1 = min_sz(ci_n, ci0 + WT_BLOCK);
            for (size_t t = 0; t < kvol; t++) {
                if (flip) {
                    real *dst = wt + t * ci_n * co_n;
                    for (size_t ci = ci0; ci < ci1; ci++)
                        for (size_t co = co0; co < co1; co++)
                            dst[ci * co_n + co] = w[(co * ci_n + ci) * kvol + kvol - 1 - t];
                } else {
                    real *dst = wt + t * co_n * ci_n;
                    for (size_t co = co0; co < co1; co++)
                        for (size_t ci = ci0; ci < ci1; ci++) dst[co * ci_n + ci] = w[(co * ci_n + ci) * kvol + t];
                }
            }
        }
}

/* dw (Cout, Cin, kvol) += dwt (kvol, Cout, Cin): the shifted walk's weight gradient back in the weights'
 * layout, in the same 16 x 16 blocks. */
static void weights_from_tap(real *dw, const real *dwt, const ConvGeom *g) {
    size_t kvol = vol3(g->k), co_n = (size_t)g->cout, ci_n = (size_t)g->cin;
    for (size_t co0 = 0; co0 < co_n; co0 += WT_BLOCK)
        for (size_t ci0 = 0; ci0 < ci_n; ci0 += WT_BLOCK) {
            size_t co1 = min_sz(co_n, co0 + WT_BLOCK), ci1 = min_sz(ci_n, ci0 + WT_BLOCK);
            for (size_t t = 0; t < kvol; t++) {
                const real *src = dwt + t * co_n * ci_n;
                for (size_t co = co0; co < co1; co++)
                    for (size_t ci = ci0; ci < ci1; ci++) dw[(co * ci_n + ci) * kvol + t] += src[co * ci_n + ci];
            }
        }
}

/* ---- the shifted walk ----------------------------------------------------------------------------- */

/* One output frame t of one sample is two steps:
 *   prepare  pad the k0 input frames the window reads; for the weight gradient also gather dy_t onto the
 *            padded grid with zeros in the dropped columns;
 *   taps     forward: every tap's GEMM on the frame's positions, then y; weight gradient: dw_abd += ...
 * Threads. The forward gives whole (sample, frame) pairs to the threads when there are enough of them,
 * each thread with its own padded frames: no barrier at all, and each weight tap is packed once per
 * frame as on one thread. Otherwise (few frames) the threads split each frame: prepare by channels, the
 * taps by ranges of positions, two barriers per frame. The weight gradient sums over frames into the same
 * dw, so its frames go in order, split by taps: thread p takes a range of the frame's valid taps, whose
 * dw_abd it alone writes. Each GEMM runs on one thread, and every element is summed in the same order
 * whatever the thread count. */
typedef struct FrameJob {
    const ConvGeom *g;
    real *xp;              /* forward: (Cin, k0, Hp, Wp); weight gradient: transposed, (k0, Hp, Wp, Cin) */
    real *yq;              /* (Cout, Nq): the output frame on the padded grid, or dy_t for dw */
    const real *xn;        /* sample (Cin, T, H, W) */
    real *yn;              /* forward: sample (Cout, To, Ho, Wo) */
    const real *dyn;       /* weight gradient: sample (Cout, To, Ho, Wo) */
    const real *wt;        /* forward: (kvol, Cout, Cin) */
    real *dwt;             /* weight gradient: (kvol, Cout, Cin) */
    const real *b;         /* bias or NULL */
    real beta;
    int t, nparts;
} FrameJob;

/* Is input frame t s0 - p0 + a inside the video? Taps on padding frames are skipped. */
static int frame_valid(const ConvGeom *g, int t, int a) {
    int ti = t * g->s[0] - g->p[0] + a;
    return ti >= 0 && ti < g->in[0];
}

/* The positions of an output frame whose row tap bb reads an input row, not padding: output rows
 * [h0, h1) with 0 <= h - p1 + bb < H, as the range [h0 Wp, (h1 - 1) Wp + Wo) of the padded grid. Taps
 * are skipped outside it, as they are on padding frames. */
static void tap_rows(const ConvGeom *g, int bb, size_t *lo, size_t *hi) {
    int h0 = g->p[1] - bb, h1 = g->in[1] + g->p[1] - bb;
    h0 = h0 < 0 ? 0 : h0;
    h1 = h1 > g->out[1] ? g->out[1] : h1;
    *lo = *hi = 0;
    if (h0 >= h1) return;
    *lo = (size_t)h0 * (size_t)frame_wp(g);
    *hi = (size_t)(h1 - 1) * (size_t)frame_wp(g) + (size_t)g->out[2];
}

static void pad_frames(const FrameJob *j, size_t c0, size_t c1) {
    const ConvGeom *g = j->g;
    const int *I = g->in, *p = g->p;
    int Wp = frame_wp(g), k0 = g->k[0];
    size_t hwp = frame_hwp(g);
    for (size_t c = c0; c < c1; c++)
        for (int a = 0; a < k0; a++) {
            if (!frame_valid(g, j->t, a)) continue;
            int ti = j->t * g->s[0] - p[0] + a;
            real *dst = j->xp + (c * (size_t)k0 + (size_t)a) * hwp;
            const real *src = j->xn + (c * (size_t)I[0] + (size_t)ti) * (size_t)I[1] * I[2];
            memset(dst, 0, (size_t)p[1] * Wp * sizeof(real));
            for (int h = 0; h < I[1]; h++) {   /* the gap, then the row: the next gap closes it */
                real *row = dst + (size_t)(h + p[1]) * Wp;
                memset(row, 0, (size_t)p[2] * sizeof(real));
                memcpy(row + p[2], src + (size_t)h * I[2], (size_t)I[2] * sizeof(real));
            }
            memset(dst + (size_t)(I[1] + p[1]) * Wp, 0, ((size_t)p[1] * Wp + (size_t)p[2]) * sizeof(real));
        }
}

/* The k0 padded input frames of output frame t, transposed: xpt (k0, Hp, Wp, Cin), one row of Cin values
 * per position, so that every tap's shifted frame is a (Nq, Cin) matrix with rows Cin apart, which the
 * weight gradient's GEMM reads in place. Padded rows [h0, h1) of each frame (threads own rows); the part
 * that owns the last row also writes the p2 zeros that end the frame. */
static void pad_frames_transposed(const FrameJob *j, int h0, int h1) {
    const ConvGeom *g = j->g;
    const int *I = g->in, *p = g->p;
    int Wp = frame_wp(g), k0 = g->k[0], Hp = I[1] + 2 * p[1];
    size_t hwp = frame_hwp(g), ci_n = (size_t)g->cin, isz = vol3(I);
    for (int a = 0; a < k0; a++) {
        if (!frame_valid(g, j->t, a)) continue;
        int ti = j->t * g->s[0] - p[0] + a;
        real *frame = j->xp + (size_t)a * hwp * ci_n;
        for (int hp = h0; hp < h1; hp++) {
            real *row = frame + (size_t)hp * Wp * ci_n;
            int h = hp - p[1];
            if (h < 0 || h >= I[1]) {
                memset(row, 0, (size_t)Wp * ci_n * sizeof(real));
                continue;
            }
            memset(row, 0, (size_t)p[2] * ci_n * sizeof(real));   /* the gap, then the row */
            const real *src = j->xn + ((size_t)ti * I[1] + (size_t)h) * I[2];
            transpose_copy(src, isz, ci_n, (size_t)I[2], row + (size_t)p[2] * ci_n, ci_n);
        }
        if (h1 == Hp) memset(frame + (size_t)Hp * Wp * ci_n, 0, (size_t)p[2] * ci_n * sizeof(real));
    }
}

/* prepare: the forward's threads own input channels of the padded frames; the weight gradient's own rows
 * of the transposed frames, and output channels for the dy gather */
static void frame_prepare_task(void *arg, int part, int thread) {
    (void)thread;
    const FrameJob *j = arg;
    const ConvGeom *g = j->g;
    size_t c0, c1;
    if (!j->dyn) {
        split_range((size_t)g->cin, j->nparts, part, 1, &c0, &c1);
        pad_frames(j, c0, c1);
        return;
    }
    split_range((size_t)(g->in[1] + 2 * g->p[1]), j->nparts, part, 1, &c0, &c1);
    pad_frames_transposed(j, (int)c0, (int)c1);
    const int *O = g->out;
    int Wp = frame_wp(g);
    size_t nq = frame_nq(g);
    split_range((size_t)g->cout, j->nparts, part, 1, &c0, &c1);
    for (size_t c = c0; c < c1; c++) {
        const real *src = j->dyn + (c * (size_t)O[0] + (size_t)j->t) * (size_t)O[1] * O[2];
        real *q = j->yq + c * nq;
        for (int h = 0; h < O[1]; h++) {
            memcpy(q + (size_t)h * Wp, src + (size_t)h * O[2], (size_t)O[2] * sizeof(real));
            if (h + 1 < O[1]) memset(q + (size_t)h * Wp + O[2], 0, (size_t)(Wp - O[2]) * sizeof(real));
        }
    }
}

/* forward taps on positions [q0, q1) of the frame, then y = (beta y +) yq + b on those positions */
static void frame_forward_task(void *arg, int part, int thread) {
    (void)thread;
    const FrameJob *j = arg;
    const ConvGeom *g = j->g;
    const int *O = g->out;
    int k0 = g->k[0], k1 = g->k[1], k2 = g->k[2], Wp = frame_wp(g);
    size_t hwp = frame_hwp(g), nq = frame_nq(g), ldq = frame_ldq(g), ci_n = (size_t)g->cin, co_n = (size_t)g->cout;
    size_t q0, q1, panel = (size_t)gemm_panel_width();
    split_range(nq, j->nparts, part, CONV_TILE_ALIGN, &q0, &q1);
    if (q0 >= q1) return;
    size_t q_end = q1 == nq ? ldq : q1;   /* the part at the frame's end may compute up to ldq (frame_ldq) */
    int first = 1;   /* yq[:, q0:q1) not written yet */
    for (int a = 0; a < k0; a++) {
        if (!frame_valid(g, j->t, a)) continue;
        for (int bb = 0; bb < k1; bb++) {
            size_t lo, hi;
            tap_rows(g, bb, &lo, &hi);
            lo = lo > q0 ? lo : q0;
            hi = hi < q1 ? hi : q1;
            if (lo >= hi) continue;
            if (first && (lo > q0 || hi < q1)) {   /* this tap leaves some positions unwritten */
                for (size_t c = 0; c < co_n; c++) memset(j->yq + c * ldq + q0, 0, (q_end - q0) * sizeof(real));
                first = 0;
            }
            size_t n = hi - lo, ldb = (size_t)k0 * hwp;
            if (q_end > q1) n = min_sz(min_sz((n + panel - 1) / panel * panel, q_end - lo), ldb);
            for (int d = 0; d < k2; d++) {
                const real *wtap = j->wt + ((size_t)(a * k1 + bb) * k2 + d) * co_n * ci_n;
                const real *xs = j->xp + (size_t)a * hwp + (size_t)bb * Wp + d + lo;
                gemm(0, 0, g->cout, (int)n, g->cin, 1, wtap, g->cin, xs, (int)ldb, first ? 0 : 1, j->yq + lo,
                     (int)ldq);
                first = 0;
            }
        }
    }
    if (first)   /* the window saw only padding */
        for (size_t c = 0; c < co_n; c++) memset(j->yq + c * ldq + q0, 0, (q1 - q0) * sizeof(real));
    for (size_t c = 0; c < co_n; c++) {
        const real *q = j->yq + c * ldq;
        real *y = j->yn + (c * (size_t)O[0] + (size_t)j->t) * (size_t)O[1] * O[2];
        real bv = j->b ? j->b[c] : 0;
        /* walk [q0, q1) one padded row at a time, dropping the columns w >= Wo */
        for (size_t h = q0 / (size_t)Wp, start = q0; start < q1; h++, start = h * (size_t)Wp) {
            size_t w0 = start - h * (size_t)Wp, w1 = min_sz((size_t)O[2], q1 - h * (size_t)Wp);
            const real *src = q + h * (size_t)Wp;
            real *dst = y + h * (size_t)O[2];
            if (j->beta == 0)
                for (size_t w = w0; w < w1; w++) dst[w] = src[w] + bv;
            else
                for (size_t w = w0; w < w1; w++) dst[w] += src[w] + bv;
        }
    }
}

/* weight-gradient taps: dw_abd += dy_t xs_abd, with xs_abd the (Nq, Cin) rows of the transposed frames
 * shifted by the tap, over the positions tap_rows keeps. Part `part` of nparts takes an equal share of the
 * frame's valid taps, in the order (bb, a, d). Taps of one row offset bb share those positions and so the
 * same part of dy_t: they go to the GEMM together, which packs it once for all of them. */
enum { TAP_GROUP = 64 };
static void frame_dw_task(void *arg, int part, int thread) {
    (void)thread;
    const FrameJob *j = arg;
    const ConvGeom *g = j->g;
    int k0 = g->k[0], k1 = g->k[1], k2 = g->k[2], Wp = frame_wp(g), ntaps = 0;
    size_t hwp = frame_hwp(g), nq = frame_nq(g), ci_n = (size_t)g->cin, co_n = (size_t)g->cout;
    for (int bb = 0; bb < k1; bb++) {   /* count the valid taps, then find this part's range of them */
        size_t lo, hi;
        tap_rows(g, bb, &lo, &hi);
        for (int a = 0; a < k0 && lo < hi; a++) ntaps += frame_valid(g, j->t, a) ? k2 : 0;
    }
    int first = (int)((long long)ntaps * part / j->nparts), last = (int)((long long)ntaps * (part + 1) / j->nparts);
    const real *xs[TAP_GROUP];
    real *dtap[TAP_GROUP];
    int index = 0;   /* of the next valid tap */
    for (int bb = 0; bb < k1; bb++) {
        size_t lo, hi;
        tap_rows(g, bb, &lo, &hi);
        if (lo >= hi) continue;
        int n = 0;
        for (int i = 0; i < k0 * k2; i++) {   /* taps (a, bb, d), a = i / k2, d = i % k2 */
            int a = i / k2, d = i % k2, mine = 0;
            if (frame_valid(g, j->t, a)) {
                mine = index >= first && index < last;
                index++;
            }
            if (mine) {
                xs[n] = j->xp + ((size_t)a * hwp + (size_t)bb * Wp + (size_t)d + lo) * ci_n;
                dtap[n] = j->dwt + ((size_t)(a * k1 + bb) * k2 + d) * co_n * ci_n;
                n++;
            }
            if (n > 0 && (n == TAP_GROUP || i == k0 * k2 - 1)) {
                gemm_shared_a(0, 0, g->cout, g->cin, (int)(hi - lo), 1, j->yq + lo, (int)nq, xs, g->cin, 1, dtap,
                              g->cin, n);
                n = 0;
            }
        }
    }
}

/* The forward of whole (sample, frame) pairs, one per task, each thread with its own padded frames. */
typedef struct FramesJob {
    FrameJob base;         /* g, wt, b, beta; the workspace of thread 0 */
    const real *x;
    real *y;
    size_t ws_per_thread;  /* reals of padded frames and output frame per thread */
} FramesJob;

static void frame_whole_task(void *arg, int i, int thread) {
    const FramesJob *fj = arg;
    const ConvGeom *g = fj->base.g;
    FrameJob j = fj->base;
    int n = i / g->out[0];
    j.t = i % g->out[0];
    j.nparts = 1;
    j.xp = fj->base.xp + (size_t)thread * fj->ws_per_thread;
    j.yq = frame_out(g, j.xp);
    j.xn = fj->x + (size_t)n * g->cin * vol3(g->in);
    j.yn = fj->y + (size_t)n * g->cout * vol3(g->out);
    frame_prepare_task(&j, 0, thread);
    frame_forward_task(&j, 0, thread);
}

/* Whole frames to the threads when they divide evenly or are many (a 3:2 split wastes a fifth). */
static int frames_to_threads(const ConvGeom *g) {
    int nt = threads_count(), pairs = g->n * g->out[0];
    return nt > 1 && (pairs % nt == 0 || pairs >= 4 * nt);
}

/* y (N, Cout, To, Ho, Wo) = (beta = 0) or += (beta = 1) conv + b, with wt (kvol, Cout, Cin). */
void conv_shifted_forward(real *y, const real *x, const real *wt, const real *b, const ConvGeom *g, real *ws,
                          real beta) {
    size_t ci_n = (size_t)g->cin, co_n = (size_t)g->cout;
    FrameJob j = {g, ws, frame_out(g, ws), NULL, NULL, NULL, wt, NULL, b, beta, 0, threads_count()};
    size_t panel = (size_t)gemm_panel_width();
    for (int t = 0; t < threads_count(); t++)   /* the zeros after each thread's padded frames */
        memset(frame_out(g, ws + (size_t)t * shifted_frame_reals(g)) - panel, 0, panel * sizeof(real));
    if (frames_to_threads(g)) {
        FramesJob fj = {j, x, y, shifted_frame_reals(g)};
        parallel_for(g->n * g->out[0], frame_whole_task, &fj);
        return;
    }
    for (int n = 0; n < g->n; n++) {
        j.xn = x + (size_t)n * ci_n * vol3(g->in);
        j.yn = y + (size_t)n * co_n * vol3(g->out);
        for (j.t = 0; j.t < g->out[0]; j.t++) {
            parallel_for(j.nparts, frame_prepare_task, &j);
            parallel_for(j.nparts, frame_forward_task, &j);
        }
    }
}

/* dwt (kvol, Cout, Cin) += the weight gradient, by the same walk. */
static void shifted_dw(real *dwt, const real *dy, const real *x, const ConvGeom *g, real *ws) {
    size_t ci_n = (size_t)g->cin, co_n = (size_t)g->cout;
    FrameJob j = {g, ws, frame_out(g, ws), NULL, NULL, NULL, NULL, dwt, NULL, 0, 0, threads_count()};
    for (int n = 0; n < g->n; n++) {
        j.xn = x + (size_t)n * ci_n * vol3(g->in);
        j.dyn = dy + (size_t)n * co_n * vol3(g->out);
        for (j.t = 0; j.t < g->out[0]; j.t++) {
            parallel_for(j.nparts, frame_prepare_task, &j);
            parallel_for(j.nparts, frame_dw_task, &j);
        }
    }
}

size_t conv_shifted_workspace(const ConvGeom *g) { return shifted_frame_reals(g) * (size_t)threads_count(); }

void conv_shifted_dw(real *dw, const real *dy, const real *x, const ConvGeom *g, real *ws) {
    size_t nw = weight_count(g);
    memset(ws, 0, nw * sizeof(real));
    shifted_dw(ws, dy, x, g, ws + nw);
    weights_from_tap(dw, ws, g);
}
