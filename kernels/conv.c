/* conv.c: the raw-array kernels of convolutions (2-D and 3-D) with their backward: the naive oracles, the
 * plan that picks a lowering to GEMMs for each geometry, the vol2col lowering, and the public kernels.
 *
 * What it is not: the tape ops over them (ops/conv.c), the shifted walk (kernels/conv_shifted.c), pooling
 * and resampling (kernels/pool.c), or a general N-d library. No groups, no dilation, no transposed
 * convolution op; 2-D ops run the 3-D kernels with T = 1.
 *
 * The convolution: the naive direct loops stay forever as the test oracle. The fast paths lower to
 * gemm() (darknet, ggml): vol2col + GEMM, y (Cout, P) = w (Cout, K) col (K, P) per sample, where row
 * r = (ci, a, b, d) of col holds x[ci, t s0 - p0 + a, h s1 - p1 + b, w s2 - p2 + d], built one tile of
 * positions at a time so the workspace stays bounded; a plain GEMM for 1x1x1 kernels; and, for stride 1
 * in H and W with enough channels, a "shifted" walk that reads the GEMM's B straight from a padded frame
 * (one GEMM per tap, no vol2col; kernels/conv_shifted.c). Backward:
 *   dw (Cout, K) += dy (Cout, P) col^T       (or per tap in the shifted walk)
 *   db (Cout)    += sum_P dy
 *   dx: stride 1 -> the forward convolution of dy with the kernel flipped in T, H, W and Cin/Cout swapped,
 *                   padding k - 1 - p (a gather);
 *       else     -> dcol (K, P) = w^T dy, then col2vol scatters dcol into dx; threads own whole channels.
 * Threads either share a GEMM (gemm() splits C) or own disjoint slices of the output; no two threads add
 * into one element and every element is summed in a fixed order, so results are reproducible.
 * Dimension legend: N batch, C channels, T frames, H, W, K = Cin kT kH kW, P = To Ho Wo, kvol = kT kH kW.
 */
#include "kernels/conv.h"

#include <string.h>

#include "kernels/conv_shifted.h"
#include "kernels/gemm.h"
#include "kernels/threads.h"
#include "kernels/sums.h"

/* floor and ceiling of a / b for b > 0 and any sign of a */
static int floor_div(int a, int b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
static int ceil_div(int a, int b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }

/* ==================================================================================================== */
/* naive convolution: the oracle                                                                         */
/* ==================================================================================================== */

void conv3d_forward_naive(real *y, const real *x, const real *w, const real *b, const ConvGeom *g) {
    const int *I = g->in, *O = g->out, *k = g->k, *s = g->s, *p = g->p;
    size_t isz = vol3(I), osz = vol3(O), kvol = vol3(k);
    for (int n = 0; n < g->n; n++)
        for (int co = 0; co < g->cout; co++)
            for (int ot = 0; ot < O[0]; ot++)
                for (int oh = 0; oh < O[1]; oh++)
                    for (int ow = 0; ow < O[2]; ow++) {
                        double acc = b ? b[co] : 0;
                        for (int ci = 0; ci < g->cin; ci++)
                            for (int a = 0; a < k[0]; a++)
                                for (int bb = 0; bb < k[1]; bb++)
                                    for (int d = 0; d < k[2]; d++) {
                                        int ti = ot * s[0] - p[0] + a, hi = oh * s[1] - p[1] + bb;
                                        int wi = ow * s[2] - p[2] + d;
                                        if (ti < 0 || ti >= I[0] || hi < 0 || hi >= I[1] || wi < 0 || wi >= I[2])
                                            continue;
                                        real xv = x[((size_t)n * g->cin + ci) * isz +
                                                    ((size_t)ti * I[1] + hi) * I[2] + wi];
                                        real wv = w[((size_t)co * g->cin + ci) * kvol + ((size_t)a * k[1] + bb) * k[2] + d];
                                        acc += (double)xv * wv;
                                    }
                        y[((size_t)n * g->cout + co) * osz + ((size_t)ot * O[1] + oh) * O[2] + ow] = (real)acc;
                    }
}

void conv3d_backward_naive(real *dx, real *dw, real *db, const real *dy, const real *x, const real *w,
                           const ConvGeom *g) {
    const int *I = g->in, *O = g->out, *k = g->k, *s = g->s, *p = g->p;
    size_t isz = vol3(I), osz = vol3(O), kvol = vol3(k);
    if (db)
        for (int co = 0; co < g->cout; co++) {
            double acc = 0;
            for (int n = 0; n < g->n; n++)
                for (size_t i = 0; i < osz; i++) acc += dy[((size_t)n * g->cout + co) * osz + i];
            db[co] += (real)acc;
        }
    /* dw[co, ci, a, b, d] = sum over samples and output positions of dy * the input under the tap */
    if (dw)
        for (int co = 0; co < g->cout; co++)
            for (int ci = 0; ci < g->cin; ci++)
                for (int a = 0; a < k[0]; a++)
                    for (int bb = 0; bb < k[1]; bb++)
                        for (int d = 0; d < k[2]; d++) {
                            double acc = 0;
                            for (int n = 0; n < g->n; n++)
                                for (int ot = 0; ot < O[0]; ot++)
                                    for (int oh = 0; oh < O[1]; oh++)
                                        for (int ow = 0; ow < O[2]; ow++) {
                                            int ti = ot * s[0] - p[0] + a, hi = oh * s[1] - p[1] + bb;
                                            int wi = ow * s[2] - p[2] + d;
                                            if (ti < 0 || ti >= I[0] || hi < 0 || hi >= I[1] || wi < 0 || wi >= I[2])
                                                continue;
                                            acc += (double)dy[((size_t)n * g->cout + co) * osz +
                                                              ((size_t)ot * O[1] + oh) * O[2] + ow] *
                                                   x[((size_t)n * g->cin + ci) * isz + ((size_t)ti * I[1] + hi) * I[2] + wi];
                                        }
                            dw[((size_t)co * g->cin + ci) * kvol + ((size_t)a * k[1] + bb) * k[2] + d] += (real)acc;
                        }
    /* dx[n, ci, t, h, w] = sum over the output positions whose window covers (t, h, w) through tap (a, b, d) */
    if (dx)
        for (int n = 0; n < g->n; n++)
            for (int ci = 0; ci < g->cin; ci++)
                for (int ti = 0; ti < I[0]; ti++)
                    for (int hi = 0; hi < I[1]; hi++)
                        for (int wi = 0; wi < I[2]; wi++) {
                            double acc = 0;
                            for (int co = 0; co < g->cout; co++)
                                for (int a = 0; a < k[0]; a++)
                                    for (int bb = 0; bb < k[1]; bb++)
                                        for (int d = 0; d < k[2]; d++) {
                                            int nt = ti + p[0] - a, nh = hi + p[1] - bb, nw = wi + p[2] - d;
                                            if (nt < 0 || nh < 0 || nw < 0 || nt % s[0] || nh % s[1] || nw % s[2])
                                                continue;
                                            int ot = nt / s[0], oh = nh / s[1], ow = nw / s[2];
                                            if (ot >= O[0] || oh >= O[1] || ow >= O[2]) continue;
                                            acc += (double)w[((size_t)co * g->cin + ci) * kvol +
                                                             ((size_t)a * k[1] + bb) * k[2] + d] *
                                                   dy[((size_t)n * g->cout + co) * osz + ((size_t)ot * O[1] + oh) * O[2] + ow];
                                        }
                            dx[((size_t)n * g->cin + ci) * isz + ((size_t)ti * I[1] + hi) * I[2] + wi] += (real)acc;
                        }
}

/* ==================================================================================================== */
/* vol2col and col2vol                                                                                   */
/* ==================================================================================================== */

/* For output columns j in [0, n) starting at output column ow0 of a row, the input column is
 * wi = (ow0 + j) s + off. Returns the range [*jlo, *jhi) of j with 0 <= wi < iw. */
static void valid_cols(int ow0, int n, int s, int off, int iw, int *jlo, int *jhi) {
    int lo = ceil_div(-off, s) - ow0, hi = floor_div(iw - 1 - off, s) - ow0 + 1;
    lo = lo < 0 ? 0 : lo > n ? n : lo;
    hi = hi < lo ? lo : hi > n ? n : hi;
    *jlo = lo;
    *jhi = hi;
}

/* Input channel and kernel tap of a row of the column matrix; rows go (ci, kd, kh, kw), or (kd, ci, kh, kw)
 * when kd_major. col_row_next steps to the next row without the divisions (a row of a 4x4 frame's
 * columns is a few values, fewer than the divisions would cost). */
typedef struct ColRow {
    int ci, a, bb, d;
} ColRow;

static ColRow col_row(const ConvGeom *g, size_t r, int kd_major) {
    size_t kvol = vol3(g->k), khw = (size_t)g->k[1] * g->k[2];
    size_t ci = r / kvol, kr = r % kvol;
    if (kd_major) {
        ci = r / khw % (size_t)g->cin;
        kr = r / (khw * (size_t)g->cin) * khw + r % khw;
    }
    ColRow c = {(int)ci, (int)(kr / khw), (int)(kr / (size_t)g->k[2] % (size_t)g->k[1]), (int)(kr % (size_t)g->k[2])};
    return c;
}

static void col_row_next(const ConvGeom *g, ColRow *c, int kd_major) {
    if (++c->d < g->k[2]) return;
    c->d = 0;
    if (++c->bb < g->k[1]) return;
    c->bb = 0;
    if (kd_major) {
        if (++c->ci < g->cin) return;
        c->ci = 0;
        c->a++;
    } else if (++c->a == g->k[0]) {
        c->a = 0;
        c->ci++;
    }
}

/* Rows [r0, r1) and output positions [q0, q0 + len) of the column matrix of one sample:
 * col[(r - r0) ldc + j] for x (Cin, T, H, W). A row is walked one output row (fixed t, h) at a time.
 * Rows are (ci, kd, kh, kw), the order of the weights, or kd-major (see use_frame_skip). */
static void vol2col(real *col, size_t ldc, const real *x, const ConvGeom *g, size_t r0, size_t r1, size_t q0,
                    size_t len, int kd_major) {
    const int *I = g->in, *O = g->out, *s = g->s, *p = g->p;
    size_t isz = vol3(I);
    int ow0 = (int)(q0 % (size_t)O[2]), oh0 = (int)(q0 / (size_t)O[2] % (size_t)O[1]);
    int ot0 = (int)(q0 / ((size_t)O[1] * O[2]));
    ColRow cr = col_row(g, r0, kd_major);
    for (size_t r = r0; r < r1; r++, col_row_next(g, &cr, kd_major)) {
        int a = cr.a, bb = cr.bb, d = cr.d;
        const real *xc = x + (size_t)cr.ci * isz;
        real *dst = col + (r - r0) * ldc;
        int ow = ow0, oh = oh0, ot = ot0;
        int off = d - p[2], row_lo, row_hi;   /* the valid columns of a whole output row, found once */
        valid_cols(0, O[2], s[2], off, I[2], &row_lo, &row_hi);
        size_t left = len;
        while (left > 0) {
            int seg = (int)min_sz((size_t)(O[2] - ow), left);
            int ti = ot * s[0] - p[0] + a, hi = oh * s[1] - p[1] + bb;
            if (ti < 0 || ti >= I[0] || hi < 0 || hi >= I[1]) {
                memset(dst, 0, (size_t)seg * sizeof(real));
            } else {
                const real *xrow = xc + ((size_t)ti * I[1] + hi) * I[2];
                int jlo = row_lo, jhi = row_hi;
                if (ow != 0 || seg != O[2]) valid_cols(ow, seg, s[2], off, I[2], &jlo, &jhi);
                for (int j = 0; j < jlo; j++) dst[j] = 0;
                if (s[2] == 1) {
                    memcpy(dst + jlo, xrow + ow + jlo + off, (size_t)(jhi - jlo) * sizeof(real));
                } else {
                    const real *src = xrow + (ow + jlo) * s[2] + off;
                    for (int j = jlo; j < jhi; j++, src += s[2]) dst[j] = *src;
                }
                for (int j = jhi; j < seg; j++) dst[j] = 0;
            }
            dst += seg;
            left -= (size_t)seg;
            ow = 0;
            if (++oh == O[1]) {
                oh = 0;
                ot++;
            }
        }
    }
}

/* The transpose of vol2col: dx (Cin, T, H, W) += the rows [r0, r1) of col scattered back. */
static void col2vol(real *dx, const real *col, size_t ldc, const ConvGeom *g, size_t r0, size_t r1, size_t q0,
                    size_t len) {
    const int *I = g->in, *O = g->out, *k = g->k, *s = g->s, *p = g->p;
    size_t isz = vol3(I), kvol = vol3(k);
    for (size_t r = r0; r < r1; r++) {
        size_t ci = r / kvol, kr = r % kvol;
        int a = (int)(kr / ((size_t)k[1] * k[2])), bb = (int)(kr / (size_t)k[2] % (size_t)k[1]), d = (int)(kr % (size_t)k[2]);
        real *xc = dx + ci * isz;
        const real *src = col + (r - r0) * ldc;
        int ow = (int)(q0 % (size_t)O[2]), oh = (int)(q0 / (size_t)O[2] % (size_t)O[1]);
        int ot = (int)(q0 / ((size_t)O[1] * O[2]));
        size_t left = len;
        while (left > 0) {
            int seg = (int)min_sz((size_t)(O[2] - ow), left);
            int ti = ot * s[0] - p[0] + a, hi = oh * s[1] - p[1] + bb;
            if (ti >= 0 && ti < I[0] && hi >= 0 && hi < I[1]) {
                real *xrow = xc + ((size_t)ti * I[1] + hi) * I[2];
                int off = d - p[2], jlo, jhi;
                valid_cols(ow, seg, s[2], off, I[2], &jlo, &jhi);
                real *dst = xrow + (ow + jlo) * s[2] + off;
                for (int j = jlo; j < jhi; j++, dst += s[2]) *dst += src[j];
            }
            src += seg;
            left -= (size_t)seg;
            ow = 0;
            if (++oh == O[1]) {
                oh = 0;
                ot++;
            }
        }
    }
}

/* ==================================================================================================== */
/* fast convolution                                                                                      */
/* ==================================================================================================== */

/* Three lowerings, chosen per geometry by the plan below:
 *   pointwise  1x1x1, stride 1, no padding: y_n (Cout, P) = w (Cout, Cin) x_n, one GEMM per sample.
 *   shifted    stride 1 along H and W with enough channels and positions: one GEMM per tap read straight
 *              from a padded frame (kernels/conv_shifted.c, conv_use_shifted); its weight gradient too
 *              with at least 32 input channels (conv_dw_by_shifted), else vol2col.
 *   vol2col    everything else (strided H/W, small frames, few input channels): col tiles + GEMM.
 * The input gradient of a stride-1 convolution is the forward convolution of dy with the flipped kernel
 * (a gather, through whichever lowering suits the flipped geometry); otherwise w^T dy and col2vol. */

/* The input gradient as a forward convolution (a gather) needs stride 1 and padding p <= k - 1. */
static int dx_by_flipped_conv(const ConvGeom *g) {
    for (int a = 0; a < 3; a++)
        if (g->s[a] != 1 || g->p[a] > g->k[a] - 1) return 0;
    return weight_copy_ok(g);
}

/* The geometry of dx = conv(dy, flipped w): input dy (Cout, O), output dx (Cin, I), padding k - 1 - p. */
static ConvGeom flipped_geom(const ConvGeom *g) {
    int pad[3], one[3] = {1, 1, 1};
    for (int a = 0; a < 3; a++) pad[a] = g->k[a] - 1 - g->p[a];
    ConvGeom f = conv_geom(g->n, g->cout, g->cin, g->out, g->k, one, pad);
    for (int a = 0; a < 3; a++)
        I2V_ASSERT(f.out[a] == g->in[a], "flipped convolution: axis %d gives %d, not %d", a, f.out[a], g->in[a]);
    return f;
}

/* The column tile of the vol2col lowering: positions [q0, q0 + pt) x rows [r0, r0 + kc) of col.
 * Preferably every position at once with the rows cut into chunks of whole channels: the GEMM then
 * packs each weight once per sample (a 1024 -> 512 kernel is 56 MB) and only C is revisited per chunk,
 * which is cheap while a chunk has hundreds of rows. Otherwise tiles of positions with every row. */
typedef struct ColPlan {
    size_t pt, kc;
} ColPlan;

static ColPlan col_plan(const ConvGeom *g) {
    size_t kvol = vol3(g->k), K = (size_t)g->cin * kvol, P = vol3(g->out), budget = conv_tile_bytes() / sizeof(real);
    ColPlan c = {P, K};
    if (is_pointwise(g) || K * P <= budget) return c;
    size_t kc = budget / P / kvol * kvol;   /* whole channels with all positions */
    if (kc > 0 && (kc >= 512 || 8 * kc >= K)) {
        c.kc = kc;
        return c;
    }
    size_t pt = budget / K / CONV_TILE_ALIGN * CONV_TILE_ALIGN;
    c.pt = pt < CONV_TILE_ALIGN ? CONV_TILE_ALIGN : pt;
    return c;
}

/* Frame skipping in vol2col: when one tile holds a whole sample's columns and the kernel reaches padding
 * frames, the rows are ordered kd-major, (kd, ci, kh, kw), and so is a copy of the weights. The rows
 * that read an output frame's padding frames are then one block at either end, which the GEMM leaves
 * out: frames with the same valid kernel frames go to one GEMM with K cut to those. The small frames
 * lowered this way lose much to padding frames: a third of the taps on 2-frame clips, two thirds on
 * 1-frame ones.
 * Samples side by side: with few positions per sample, the GEMM's packing of the weights (Cout x K, once
 * per GEMM) costs as much as the product, and a 4x4 frame fills half of a 32-column panel. Then the
 * columns of several samples sit side by side in one GEMM (n = samples x positions), which packs the
 * weights once for all of them, and the outputs go through a (Cout, columns) scratch. */
enum { SIDE_BY_SIDE_MAX_P = 512 };

/* How many samples go side by side: all that fit the column budget with their output scratch, when a
 * sample has fewer than SIDE_BY_SIDE_MAX_P positions; otherwise 1. */
static int frame_cols_samples(const ConvGeom *g) {
    size_t K = (size_t)g->cin * vol3(g->k), P = vol3(g->out), budget = conv_tile_bytes() / sizeof(real);
    if (P >= SIDE_BY_SIDE_MAX_P || g->n < 2) return 1;
    size_t ns = budget / ((K + (size_t)g->cout) * P);
    return ns < 2 ? 1 : ns > (size_t)g->n ? g->n : (int)ns;
}

static int use_frame_skip(const ConvGeom *g) {
    ColPlan c = col_plan(g);
    if (is_pointwise(g) || c.pt != vol3(g->out) || c.kc != (size_t)g->cin * vol3(g->k) || !weight_copy_ok(g))
        return 0;
    return g->p[0] > 0 || frame_cols_samples(g) > 1;
}

/* a column tile; with frame skipping, the kd-major weight copy and the columns (and output scratch) of
 * the samples side by side */
static size_t col_workspace(const ConvGeom *g) {
    ColPlan c = col_plan(g);
    if (is_pointwise(g)) return 0;
    if (!use_frame_skip(g)) return c.pt * c.kc;
    size_t ns = (size_t)frame_cols_samples(g), P = vol3(g->out);
    return weight_count(g) + ns * c.kc * P + (ns > 1 ? ns * (size_t)g->cout * P : 0);
}

/* Workspace of one lowering, not counting a weight copy: the padded frames and one output frame of
 * the shifted walk, or one column tile. */
static size_t lowering_workspace(const ConvGeom *g) {
    if (is_pointwise(g)) return 0;
    if (conv_use_shifted(g)) return conv_shifted_workspace(g);   /* a copy per thread */
    return col_workspace(g);
}


/* forward and weight gradient: a weight-sized copy for the shifted walk, plus its buffers */
static size_t fwd_workspace(const ConvGeom *g) { return (conv_use_shifted(g) ? weight_count(g) : 0) + lowering_workspace(g); }
static size_t dw_workspace(const ConvGeom *g) {
    return conv_dw_by_shifted(g) ? weight_count(g) + lowering_workspace(g) : col_workspace(g);
}

size_t conv3d_workspace(const ConvGeom *g) {
    size_t need = fwd_workspace(g), dx = 0;
    if (is_pointwise(g)) return need;
    if (dw_workspace(g) > need) need = dw_workspace(g);
    if (dx_by_flipped_conv(g)) {
        ConvGeom f = flipped_geom(g);
        dx = weight_count(g) + lowering_workspace(&f);
    } else {
        dx = col_workspace(g);   /* col2vol */
    }
    return dx > need ? dx : need;
}

/* ---- weight layouts ------------------------------------------------------------------------------- */

/* w (Cout, Cin, kvol) -> wf (Cin, Cout, kvol) with the taps reversed: the flipped kernel for vol2col. */
static void weights_flipped(real *wf, const real *w, const ConvGeom *g) {
    size_t kvol = vol3(g->k);
    for (size_t co = 0; co < (size_t)g->cout; co++)
        for (size_t ci = 0; ci < (size_t)g->cin; ci++) {
            const real *src = w + (co * (size_t)g->cin + ci) * kvol;
            real *dst = wf + (ci * (size_t)g->cout + co) * kvol;
            for (size_t t = 0; t < kvol; t++) dst[t] = src[kvol - 1 - t];
        }
}

/* ---- vol2col ------------------------------------------------------------------------------------- */

/* The kernel frames a in [*a0, *a1) that read an input frame (t s0 - p0 + a inside the video) for output
 * frame t. */
static void frame_taps(const ConvGeom *g, int t, int *a0, int *a1) {
    int first = t * g->s[0] - g->p[0];
    *a0 = first < 0 ? -first : 0;
    *a1 = g->in[0] - first < g->k[0] ? g->in[0] - first : g->k[0];
    if (*a1 < *a0) *a1 = *a0;
}

/* Output frames [t0, *t1) with the same kernel frames [*a0, *a1) as frame t0. */
static void frame_group(const ConvGeom *g, int t0, int *t1, int *a0, int *a1) {
    frame_taps(g, t0, a0, a1);
    int b0, b1;
    for (*t1 = t0 + 1; *t1 < g->out[0]; (*t1)++) {
        frame_taps(g, *t1, &b0, &b1);
        if (b0 != *a0 || b1 != *a1) break;
    }
}

/* The kernel frames [*lo, *hi) that some output frame reads: the only ones frame skipping uses. */
static void frame_slabs(const ConvGeom *g, int *lo, int *hi) {
    *lo = g->k[0];
    *hi = 0;
    for (int t0 = 0, t1, a0, a1; t0 < g->out[0]; t0 = t1) {
        frame_group(g, t0, &t1, &a0, &a1);
        if (a0 < a1 && a0 < *lo) *lo = a0;
        if (a0 < a1 && a1 > *hi) *hi = a1;
    }
    if (*lo > *hi) *lo = *hi = 0;
}

/* The kd-major weights of frame skipping, kernel frames [a0, a1) only (frame_slabs; a 1-frame clip
 * reads one of three):
 *   KD_COPY  dst (Cout, kd, Cin, kh, kw) = src (Cout, Cin, kd, kh, kw);
 *   KD_FLIP  the same from src = the kernel of the convolution that g is the flip of (the input
 *            gradient's), (Cin, Cout, kvol) with the taps reversed: dst[co][a][ci][e] = src[ci][co][kvol-1-t];
 *   KD_BACK  dst (Cout, Cin, kd, kh, kw) += src (Cout, kd, Cin, kh, kw) (the weight gradient).
 * KD_FLIP reads the input gradient's flipped kernel straight from w, in one pass over only the kernel
 * frames that are read (a third of them on a 1-frame clip), instead of flipping a whole copy first. */
enum { KD_COPY, KD_FLIP, KD_BACK };
static void weights_kd_major(real *dst, const real *src, const ConvGeom *g, int mode, int a0, int a1) {
    size_t k0 = (size_t)g->k[0], khw = (size_t)g->k[1] * g->k[2], kvol = k0 * khw;
    size_t ci_n = (size_t)g->cin, co_n = (size_t)g->cout;
    /* the kd-major side in order; the mode is decided outside the loops, which the compiler then unrolls */
    for (size_t co = 0; co < co_n; co++)
        for (size_t a = (size_t)a0; a < (size_t)a1; a++) {
            size_t kd0 = (co * k0 + a) * ci_n * khw;   /* (co, a, 0, 0, 0) in the kd-major layout */
            real *kd = dst + kd0;
            const real *kds = src + kd0;
            if (mode == KD_COPY)
                for (size_t ci = 0; ci < ci_n; ci++)
                    for (size_t e = 0; e < khw; e++) kd[ci * khw + e] = src[(co * ci_n + ci) * kvol + a * khw + e];
            else if (mode == KD_FLIP)   /* tap a khw + e of (co, ci) is tap kvol-1-(a khw + e) of (ci, co) */
                for (size_t ci = 0; ci < ci_n; ci++)
                    for (size_t e = 0; e < khw; e++)
                        kd[ci * khw + e] = src[(ci * co_n + co) * kvol + kvol - 1 - a * khw - e];
            else
                for (size_t ci = 0; ci < ci_n; ci++)
                    for (size_t e = 0; e < khw; e++) dst[(co * ci_n + ci) * kvol + a * khw + e] += kds[ci * khw + e];
        }
}

/* vol2col of rows [r0, r1) of one tile into col (r1 - r0 rows, ldc apart, len columns), the rows split
 * evenly over the threads. */
typedef struct ColJob {
    real *col;
    const real *xn;        /* one sample (Cin, T, H, W) */
    const ConvGeom *g;
    size_t r0, r1, q0, len, ldc;
    int nparts, kd_major;
} ColJob;

static void vol2col_task(void *arg, int part, int thread) {
    (void)thread;
    const ColJob *j = arg;
    size_t a, b;
    split_range(j->r1 - j->r0, j->nparts, part, 1, &a, &b);
    if (a < b) vol2col(j->col + a * j->ldc, j->ldc, j->xn, j->g, j->r0 + a, j->r0 + b, j->q0, j->len, j->kd_major);
}

static void vol2col_parallel(real *col, size_t ldc, const real *xn, const ConvGeom *g, size_t r0, size_t r1,
                             size_t q0, size_t len, int kd_major) {
    ColJob j = {col, xn, g, r0, r1, q0, len, ldc, threads_count(), kd_major};
    parallel_for(j.nparts, vol2col_task, &j);
}

/* Frame skipping with ns samples side by side (use_frame_skip). The columns of ns samples are (K, ns P),
 * grouped by frame group: group [t0, t1) starts at column ns t0 H W, sample i's len columns of it at i len
 * after that. A frame group fills only its valid rows [a0 per_a, a1 per_a). */
typedef struct FrameCols {
    const ConvGeom *g;
    size_t K, P, isz, fsz, per_a, ldc;
    int ns;
    int kd_major;          /* rows kd-major; without padding frames (p0 = 0) every frame reads every kernel
                              frame, and the rows keep the weights' own order: no weight copy */
    real *col;
} FrameCols;

static FrameCols frame_cols(const ConvGeom *g, real *col) {
    FrameCols f = {g, (size_t)g->cin * vol3(g->k), vol3(g->out), vol3(g->in), (size_t)g->out[1] * g->out[2], 0, 0,
                   frame_cols_samples(g), g->p[0] > 0 && g->k[0] > 1, col};
    f.per_a = f.K / (size_t)g->k[0];
    f.ldc = (size_t)f.ns * f.P;
    return f;
}

/* vol2col of samples n0 .. n0 + nn - 1 for the frame group: output positions [q0, q0 + len), rows [r0, r1) */
static void frame_cols_fill(const FrameCols *f, const real *x, int n0, int nn, size_t q0, size_t len, size_t r0,
                            size_t r1) {
    for (int i = 0; i < nn; i++)
        vol2col_parallel(f->col + r0 * f->ldc + (size_t)nn * q0 + (size_t)i * len, f->ldc,
                         x + (size_t)(n0 + i) * f->g->cin * f->isz, f->g, r0, r1, q0, len, f->kd_major);
}

/* col_forward with frame skipping: ws holds the kd-major weights, the columns, then (ns > 1) the output
 * scratch (Cout, nn len) of a frame group, which is scattered into the samples' outputs. flip: w is the
 * kernel of the convolution that g is the flip of (KD_FLIP). */
static void frames_forward(real *y, const real *x, const real *w, const real *b, const ConvGeom *g, real *ws,
                           real beta, int flip) {
    FrameCols f = frame_cols(g, ws + weight_count(g));
    size_t co_n = (size_t)g->cout;
    real *scratch = f.col + f.K * f.ldc;
    const real *wk = w;
    if (f.kd_major || flip) {
        int lo, hi;
        frame_slabs(g, &lo, &hi);
        weights_kd_major(ws, w, g, flip ? KD_FLIP : KD_COPY, lo, hi);
        wk = ws;
    }
    for (int n0 = 0; n0 < g->n; n0 += f.ns) {
        int nn = g->n - n0 < f.ns ? g->n - n0 : f.ns;
        real *yn = y + (size_t)n0 * co_n * f.P;
        for (int t0 = 0, t1, a0, a1; t0 < g->out[0]; t0 = t1) {
            frame_group(g, t0, &t1, &a0, &a1);
            size_t q0 = (size_t)t0 * f.fsz, len = (size_t)(t1 - t0) * f.fsz;
            size_t r0 = (size_t)a0 * f.per_a, r1 = (size_t)a1 * f.per_a;
            frame_cols_fill(&f, x, n0, nn, q0, len, r0, r1);
            const real *cols = f.col + r0 * f.ldc + (size_t)nn * q0;
            if (nn == 1) {   /* straight into y; k = 0: y = beta y */
                gemm(0, 0, g->cout, (int)len, (int)(r1 - r0), 1, wk + r0, (int)f.K, cols, (int)f.ldc, beta, yn + q0,
                     (int)f.P);
                continue;
            }
            size_t ldo = (size_t)nn * len;
            gemm(0, 0, g->cout, (int)ldo, (int)(r1 - r0), 1, wk + r0, (int)f.K, cols, (int)f.ldc, 0, scratch, (int)ldo);
            for (int i = 0; i < nn; i++)
                for (size_t co = 0; co < co_n; co++) {
                    const real *src = scratch + co * ldo + (size_t)i * len;
                    real *dst = yn + ((size_t)i * co_n + co) * f.P + q0;
                    if (beta == 0) memcpy(dst, src, len * sizeof(real));
                    else for (size_t q = 0; q < len; q++) dst[q] += src[q];
                }
        }
        if (b)
            for (size_t r = 0; r < (size_t)nn * co_n; r++) {
                real *row = yn + r * f.P, bv = b[r % co_n];
                for (size_t q = 0; q < f.P; q++) row[q] += bv;
            }
    }
}

/* dw += the weight gradient with frame skipping: ws holds the kd-major gradient, the columns, then
 * (ns > 1) the frame group's dy gathered as (Cout, nn len). */
static void frames_dw(real *dw, const real *dy, const real *x, const ConvGeom *g, real *ws) {
    FrameCols f = frame_cols(g, ws + weight_count(g));
    size_t co_n = (size_t)g->cout;
    real *dwk = f.kd_major ? ws : dw, *scratch = f.col + f.K * f.ldc;
    int lo, hi;
    frame_slabs(g, &lo, &hi);
    if (f.kd_major)
        for (size_t co = 0; co < co_n; co++)   /* the slabs the GEMMs add into */
            memset(dwk + co * f.K + (size_t)lo * f.per_a, 0, (size_t)(hi - lo) * f.per_a * sizeof(real));
    for (int n0 = 0; n0 < g->n; n0 += f.ns) {
        int nn = g->n - n0 < f.ns ? g->n - n0 : f.ns;
        const real *dyn = dy + (size_t)n0 * co_n * f.P;
        for (int t0 = 0, t1, a0, a1; t0 < g->out[0]; t0 = t1) {
            frame_group(g, t0, &t1, &a0, &a1);
            size_t q0 = (size_t)t0 * f.fsz, len = (size_t)(t1 - t0) * f.fsz;
            size_t r0 = (size_t)a0 * f.per_a, r1 = (size_t)a1 * f.per_a;
            if (r0 == r1) continue;
            frame_cols_fill(&f, x, n0, nn, q0, len, r0, r1);
            const real *dyg = dyn + q0;
            size_t ldd = f.P;
            if (nn > 1) {
                ldd = (size_t)nn * len;
                for (int i = 0; i < nn; i++)
                    for (size_t co = 0; co < co_n; co++)
                        memcpy(scratch + co * ldd + (size_t)i * len, dyn + ((size_t)i * co_n + co) * f.P + q0,
                               len * sizeof(real));
                dyg = scratch;
            }
            gemm(0, 1, g->cout, (int)(r1 - r0), (int)(nn * len), 1, dyg, (int)ldd, f.col + r0 * f.ldc + (size_t)nn * q0,
                 (int)f.ldc, 1, dwk + r0, (int)f.K);
        }
    }
    if (f.kd_major) weights_kd_major(dw, dwk, g, KD_BACK, lo, hi);
}

/* y (N, Cout, P) = (beta = 0) or += (beta = 1) conv(x, w) + b with w (Cout, K). wt = 1 (pointwise and
 * frame-skipping geometries only) says w is the kernel of the convolution that g is the flip of, (Cin,
 * Cout, kvol) with the taps reversed: the input gradient's, read without a flipped copy (for 1x1x1
 * kernels, w stored transposed). */
static void col_forward(real *y, const real *x, const real *w, const real *b, const ConvGeom *g, real *ws,
                        real beta, int wt) {
    size_t K = (size_t)g->cin * vol3(g->k), P = vol3(g->out), isz = vol3(g->in);
    ColPlan c = col_plan(g);
    if (use_frame_skip(g)) {
        frames_forward(y, x, w, b, g, ws, beta, wt);
        return;
    }
    for (int n = 0; n < g->n; n++) {
        const real *xn = x + (size_t)n * g->cin * isz;
        real *yn = y + (size_t)n * g->cout * P;
        for (size_t q0 = 0; q0 < P; q0 += c.pt) {
            size_t len = min_sz(c.pt, P - q0);
            if (is_pointwise(g)) {
                gemm(wt, 0, g->cout, (int)len, g->cin, 1, w, wt ? g->cout : g->cin, xn + q0, (int)P, beta, yn + q0,
                     (int)P);
            } else {
                for (size_t r0 = 0; r0 < K; r0 += c.kc) {   /* the first chunk writes, later ones add */
                    size_t r1 = min_sz(K, r0 + c.kc);
                    vol2col_parallel(ws, len, xn, g, r0, r1, q0, len, 0);
                    gemm(0, 0, g->cout, (int)len, (int)(r1 - r0), 1, w + r0, (int)K, ws, (int)len, r0 ? 1 : beta,
                         yn + q0, (int)P);
                }
            }
            if (b)
                for (int co = 0; co < g->cout; co++) {
                    real *row = yn + (size_t)co * P + q0, bv = b[co];
                    for (size_t q = 0; q < len; q++) row[q] += bv;
                }
        }
    }
}

/* dw (Cout, K) += dy (Cout, len) col^T, tile after tile; a row chunk updates its own columns of dw */
static void col_dw(real *dw, const real *dy, const real *x, const ConvGeom *g, real *ws) {
    size_t K = (size_t)g->cin * vol3(g->k), P = vol3(g->out), isz = vol3(g->in);
    ColPlan c = col_plan(g);
    if (use_frame_skip(g)) {
        frames_dw(dw, dy, x, g, ws);
        return;
    }
    for (int n = 0; n < g->n; n++) {
        const real *dyn = dy + (size_t)n * g->cout * P, *xn = x + (size_t)n * g->cin * isz;
        for (size_t q0 = 0; q0 < P; q0 += c.pt) {
            size_t len = min_sz(c.pt, P - q0);
            for (size_t r0 = 0; r0 < K; r0 += c.kc) {
                size_t r1 = min_sz(K, r0 + c.kc);
                const real *col = xn + r0 * P + q0;   /* pointwise: the rows of col are x's channels */
                int ldcol = (int)P;
                if (!is_pointwise(g)) {
                    vol2col_parallel(ws, len, xn, g, r0, r1, q0, len, 0);
                    col = ws;
                    ldcol = (int)len;
                }
                gemm(0, 1, g->cout, (int)(r1 - r0), (int)len, 1, dyn + q0, (int)P, col, ldcol, 1, dw + r0, (int)K);
            }
        }
    }
}

/* col2vol of rows [r0, r1) (whole channels) of dcol (r1 - r0, len) into one sample's dx; thread t owns
 * whole input channels, so no two threads add into the same element. */
typedef struct Col2VolJob {
    real *dxn;
    const real *dcol;
    const ConvGeom *g;
    size_t kvol, r0, r1, q0, len;
    int nparts;
} Col2VolJob;

static void col2vol_task(void *arg, int part, int thread) {
    (void)thread;
    const Col2VolJob *j = arg;
    size_t c0, c1, cbase = j->r0 / j->kvol;
    split_range((j->r1 - j->r0) / j->kvol, j->nparts, part, 1, &c0, &c1);
    if (c0 < c1)
        col2vol(j->dxn, j->dcol + c0 * j->kvol * j->len, j->len, j->g, (cbase + c0) * j->kvol, (cbase + c1) * j->kvol,
                j->q0, j->len);
}

/* dx += col2vol(w^T dy), tile after tile, chunk after chunk */
static void col_dx(real *dx, const real *dy, const real *w, const ConvGeom *g, real *ws) {
    size_t K = (size_t)g->cin * vol3(g->k), P = vol3(g->out), isz = vol3(g->in);
    ColPlan c = col_plan(g);
    Col2VolJob j = {NULL, ws, g, vol3(g->k), 0, 0, 0, 0, threads_count()};
    for (int n = 0; n < g->n; n++) {
        const real *dyn = dy + (size_t)n * g->cout * P;
        j.dxn = dx + (size_t)n * g->cin * isz;
        for (j.q0 = 0; j.q0 < P; j.q0 += c.pt) {
            j.len = min_sz(c.pt, P - j.q0);
            for (j.r0 = 0; j.r0 < K; j.r0 += c.kc) {
                j.r1 = min_sz(K, j.r0 + c.kc);
                gemm(1, 0, (int)(j.r1 - j.r0), (int)j.len, g->cout, 1, w + j.r0, (int)K, dyn + j.q0, (int)P, 0, ws,
                     (int)j.len);
                parallel_for(j.nparts, col2vol_task, &j);
            }
        }
    }
}

/* ---- the public kernels --------------------------------------------------------------------------- */

const char *conv3d_lowering(const ConvGeom *g, char what) {
    if (is_pointwise(g)) return "pointwise";
    if (what == 'y') return conv_use_shifted(g) ? "shifted" : "vol2col";
    if (what == 'w') return conv_dw_by_shifted(g) ? "shifted" : "vol2col";
    if (!dx_by_flipped_conv(g)) return "col2vol";
    ConvGeom f = flipped_geom(g);
    return conv_use_shifted(&f) ? "shifted" : "vol2col";
}

void conv3d_forward(real *y, const real *x, const real *w, const real *b, const ConvGeom *g, real *ws) {
    if (vol3(g->out) == 0 || g->n == 0) return;
    if (conv_use_shifted(g)) {
        conv_weights_by_tap(ws, w, g, 0);
        conv_shifted_forward(y, x, ws, b, g, ws + weight_count(g), 0);
    } else {
        col_forward(y, x, w, b, g, ws, 0, 0);
    }
}

typedef struct DbJob {
    real *db;
    const real *dy;
    const ConvGeom *g;
    size_t P;
    int nparts;
} DbJob;

static void db_task(void *arg, int part, int thread) {
    (void)thread;
    const DbJob *j = arg;
    size_t c0, c1;
    split_range((size_t)j->g->cout, j->nparts, part, 1, &c0, &c1);
    for (size_t co = c0; co < c1; co++) {
        double acc = 0;
        for (int n = 0; n < j->g->n; n++) acc += sum_d(j->dy + ((size_t)n * j->g->cout + co) * j->P, j->P);
        j->db[co] += (real)acc;
    }
}

void conv3d_backward(real *dx, real *dw, real *db, const real *dy, const real *x, const real *w,
                     const ConvGeom *g, real *ws) {
    size_t nw = weight_count(g);
    if (vol3(g->out) == 0 || g->n == 0) return;
    if (db) {
        DbJob j = {db, dy, g, vol3(g->out), threads_count()};
        parallel_for(j.nparts, db_task, &j);
    }
    if (dw) {
        if (conv_dw_by_shifted(g)) conv_shifted_dw(dw, dy, x, g, ws);
        else col_dw(dw, dy, x, g, ws);
    }
    if (!dx) return;
    if (is_pointwise(g)) {
        /* dx (Cin, P) += w^T dy: the flipped 1x1x1 convolution, with w read transposed */
        ConvGeom f = flipped_geom(g);
        col_forward(dx, dy, w, NULL, &f, NULL, 1, 1);
    } else if (dx_by_flipped_conv(g)) {
        ConvGeom f = flipped_geom(g);
        if (conv_use_shifted(&f)) {
            conv_weights_by_tap(ws, w, g, 1);
            conv_shifted_forward(dx, dy, ws, NULL, &f, ws + nw, 1);
        } else if (use_frame_skip(&f)) {   /* frames_forward flips the weights as it copies them */
            col_forward(dx, dy, w, NULL, &f, ws, 1, 1);
        } else {
            weights_flipped(ws, w, g);
            col_forward(dx, dy, ws, NULL, &f, ws + nw, 1, 0);
        }
    } else {
        col_dx(dx, dy, w, g, ws);
    }
}

