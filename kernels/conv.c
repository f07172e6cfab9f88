/* conv.c: convolutions (2-D and 3-D), max / average / global pooling, nearest upsampling and bilinear
 * resizing, each with its backward, as raw-array kernels and as tape ops.
 *
 * What it is not: a general N-d library. No groups, no dilation, no transposed convolution op, no
 * ceil_mode; 2-D ops run the 3-D kernels with T = 1.
 *
 * The convolution: the naive direct loops stay forever as the test oracle. The fast paths lower to
 * gemm() (darknet, ggml): vol2col + GEMM, y (Cout, P) = w (Cout, K) col (K, P) per sample, where row
 * r = (ci, a, b, d) of col holds x[ci, t s0 - p0 + a, h s1 - p1 + b, w s2 - p2 + d], built one tile of
 * positions at a time so the workspace stays bounded; a plain GEMM for 1x1x1 kernels; and, for stride 1
 * in H and W with enough channels, a "shifted" walk that reads the GEMM's B straight from a padded frame
 * (one GEMM per tap, no vol2col; see the fast convolution section). Backward:
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

#include <math.h>
#include <string.h>

#include "kernels/gemm.h"
#include "kernels/threads.h"
#include "kernels/sums.h"

/* The budget for a column tile (vol2col) or for the padded frames of the shifted walk. The GEMM repacks
 * the weights once per column tile, so a tile must be wide (hundreds of positions even for K = 27648). */
#define CONV_COL_BYTES ((size_t)32 << 20)
static size_t col_bytes = CONV_COL_BYTES;

void conv_set_tile_bytes(size_t bytes) { col_bytes = bytes ? bytes : CONV_COL_BYTES; }
/* Tile widths are multiples of this many positions (whole SIMD vectors in the GEMM's B panels). */
#define CONV_TILE_ALIGN 16

static size_t vol3(const int d[3]) { return (size_t)d[0] * (size_t)d[1] * (size_t)d[2]; }

static size_t min_sz(size_t a, size_t b) { return a < b ? a : b; }

/* floor and ceiling of a / b for b > 0 and any sign of a */
static int floor_div(int a, int b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
static int ceil_div(int a, int b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }

ConvGeom conv_geom(int n, int cin, int cout, const int in[3], const int k[3], const int s[3], const int p[3]) {
    ConvGeom g;
    g.n = n;
    g.cin = cin;
    g.cout = cout;
    for (int a = 0; a < 3; a++) {
        I2V_ASSERT(k[a] >= 1 && s[a] >= 1 && p[a] >= 0, "axis %d: kernel %d, stride %d, padding %d", a, k[a], s[a],
                   p[a]);
        I2V_ASSERT(in[a] + 2 * p[a] >= k[a], "axis %d: kernel %d larger than the padded input %d", a, k[a],
                   in[a] + 2 * p[a]);
        g.in[a] = in[a];
        g.k[a] = k[a];
        g.s[a] = s[a];
        g.p[a] = p[a];
        g.out[a] = (in[a] + 2 * p[a] - k[a]) / s[a] + 1;
    }
    return g;
}

/* Splits [0, total) into nparts pieces, each a multiple of align long except the last: piece `part`. */
static void split_range(size_t total, int nparts, int part, size_t align, size_t *lo, size_t *hi) {
    size_t chunk = (total + (size_t)nparts - 1) / (size_t)nparts;
    chunk = (chunk + align - 1) / align * align;
    *lo = min_sz((size_t)part * chunk, total);
    *hi = min_sz(*lo + chunk, total);
}

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
 * columns is a few values, and the divisions took longer than copying them). */
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
 *   shifted    stride 1 along H and W (any T stride): for output frame t and tap (a, b, d),
 *                  y_t (Cout, Nq) += w_abd (Cout, Cin) xp_{t s0 - p0 + a} (Cin, Nq) shifted by b Wp + d,
 *              where xp is the frame padded in H and W and positions are counted on the padded grid
 *              (q = h Wp + w, Nq = (Ho - 1) Wp + Wo; the Wp - Wo columns past each row are computed and
 *              dropped). Rows share their padding: one gap of p2 zeros ends a row and starts the next,
 *              so Wp = W + p2, not W + 2 p2 (a tap past the right edge reads the next row's gap), which
 *              halves the dropped columns. B is read straight from xp with ldb = the padded frame stride:
 *              no vol2col. Taps that fall on padding frames are skipped. The weight gradient is the same walk with
 *              dw_abd += dy_t xp^T (with at least 32 input channels; vol2col below). Each GEMM has
 *              K = Cin, small enough to stay in cache.
 *   vol2col    everything else (strided H/W, small frames, few input channels): col tiles + GEMM.
 * The input gradient of a stride-1 convolution is the forward convolution of dy with the flipped kernel
 * (a gather, through whichever lowering suits the flipped geometry); otherwise w^T dy and col2vol. */

/* Weight copies (tap-major or flipped) are made only up to this size; larger kernels (1024 -> 1024 on
 * 4x4 or 8x8 frames) use vol2col and col2vol, which read w in place. */
#define CONV_WCOPY_BYTES ((size_t)32 << 20)

/* A 1x1x1 kernel with stride 1 and no padding: col is x itself, one GEMM per sample. */
static int is_pointwise(const ConvGeom *g) {
    for (int a = 0; a < 3; a++)
        if (g->k[a] != 1 || g->s[a] != 1 || g->p[a] != 0) return 0;
    return 1;
}

static size_t weight_count(const ConvGeom *g) { return (size_t)g->cout * (size_t)g->cin * vol3(g->k); }

static int weight_copy_ok(const ConvGeom *g) { return weight_count(g) * sizeof(real) <= CONV_WCOPY_BYTES; }

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
    return (size_t)g->cin * (size_t)g->k[0] * frame_hwp(g) + (size_t)gemm_panel_width() + (size_t)g->cout * frame_ldq(g);
}

/* The output frame (or gathered dy) in a thread's workspace, after the padded frames and their panel. */
static real *frame_out(const ConvGeom *g, real *xp) {
    return xp + (size_t)g->cin * (size_t)g->k[0] * frame_hwp(g) + (size_t)gemm_panel_width();
}

/* The shifted lowering pays for the dropped columns and for one GEMM per tap with K = Cin: it wins when
 * Cin fills a GEMM panel, the padded rows are not much wider than the output rows, and a frame has
 * enough positions to pay for the GEMM's packing of each tap's weights (measured on 8x8 and 4x4 frames
 * with 256 channels: 1.7 and 3.2 times slower than vol2col). Shared row padding needs p2 <= k2 - 1, so
 * that an output row (Wo = W + 2 p2 - k2 + 1) fits in Wp. */
enum { SHIFTED_MIN_POSITIONS = 128 };
static int use_shifted(const ConvGeom *g) {
    if (g->s[1] != 1 || g->s[2] != 1 || is_pointwise(g) || !weight_copy_ok(g) || g->cin < 16) return 0;
    if (g->p[2] > g->k[2] - 1 || frame_nq(g) < SHIFTED_MIN_POSITIONS) return 0;
    if (shifted_frame_reals(g) * sizeof(real) > col_bytes) return 0;   /* the padded frames obey the column budget */
    return (double)frame_nq(g) <= 1.2 * (double)g->out[1] * (double)g->out[2];
}

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
    size_t kvol = vol3(g->k), K = (size_t)g->cin * kvol, P = vol3(g->out), budget = col_bytes / sizeof(real);
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
 * weights once for all of them, and the outputs go through a (Cout, columns) scratch. Measured with the
 * single weight copy of weights_kd_major, 256 -> 256 channels, batch 2, 1 thread (forward, weight
 * gradient, input gradient): 1x4x4 frames 2.2, 2.0 and 2.9 times faster; 2x8x8 1.06, 1.00, 1.08. */
enum { SIDE_BY_SIDE_MAX_P = 512 };

/* How many samples go side by side: all that fit the column budget with their output scratch, when a
 * sample has fewer than SIDE_BY_SIDE_MAX_P positions; otherwise 1. */
static int frame_cols_samples(const ConvGeom *g) {
    size_t K = (size_t)g->cin * vol3(g->k), P = vol3(g->out), budget = col_bytes / sizeof(real);
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
    if (use_shifted(g)) return shifted_frame_reals(g) * (size_t)threads_count();   /* a copy per thread */
    return col_workspace(g);
}

/* The shifted walk's weight gradient is one GEMM per tap with N = Cin: below 32 input channels (one
 * AVX-512 GEMM panel) every tile is partly empty and B is repacked for every tap, and vol2col's one wide
 * GEMM per sample is faster (measured, 16 channels on 8x32x32 frames: 6.3 ms against 14.0). */
enum { SHIFTED_DW_MIN_CIN = 32 };
static int dw_by_shifted(const ConvGeom *g) { return use_shifted(g) && g->cin >= SHIFTED_DW_MIN_CIN; }

/* forward and weight gradient: a weight-sized copy for the shifted walk, plus its buffers */
static size_t fwd_workspace(const ConvGeom *g) { return (use_shifted(g) ? weight_count(g) : 0) + lowering_workspace(g); }
static size_t dw_workspace(const ConvGeom *g) {
    return dw_by_shifted(g) ? weight_count(g) + lowering_workspace(g) : col_workspace(g);
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

/* w (Cout, Cin, kvol) -> wt (kvol, Cout, Cin): one (Cout, Cin) matrix per tap for the shifted walk.
 * flip: the kernel of the input gradient instead, wt (kvol, Cin, Cout) with the taps reversed.
 * Blocks of 16 x 16 (co, ci) pairs: their taps (27 KB for 3x3x3) stay in L1 while every tap's 16 x 16
 * piece of wt is written a whole cache line at a time. Element by element, the tap matrices (often a
 * power of two apart) were written through 27 streams that evicted each other: 4.8 ms for 256 -> 128. */
enum { WT_BLOCK = 16 };
static void weights_by_tap(real *wt, const real *w, const ConvGeom *g, int flip) {
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
static void shifted_forward(real *y, const real *x, const real *wt, const real *b, const ConvGeom *g, real *ws,
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
 * The input gradient used to flip the weights into a copy and then copy that kd-major; on 1x4x4 frames
 * the two passes over all the weights (only a third of which a 1-frame clip reads) took longer than the
 * GEMM. */
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
    if (what == 'y') return use_shifted(g) ? "shifted" : "vol2col";
    if (what == 'w') return dw_by_shifted(g) ? "shifted" : "vol2col";
    if (!dx_by_flipped_conv(g)) return "col2vol";
    ConvGeom f = flipped_geom(g);
    return use_shifted(&f) ? "shifted" : "vol2col";
}

void conv3d_forward(real *y, const real *x, const real *w, const real *b, const ConvGeom *g, real *ws) {
    if (vol3(g->out) == 0 || g->n == 0) return;
    if (use_shifted(g)) {
        weights_by_tap(ws, w, g, 0);
        shifted_forward(y, x, ws, b, g, ws + weight_count(g), 0);
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
        if (dw_by_shifted(g)) {
            memset(ws, 0, nw * sizeof(real));
            shifted_dw(ws, dy, x, g, ws + nw);
            weights_from_tap(dw, ws, g);
        } else {
            col_dw(dw, dy, x, g, ws);
        }
    }
    if (!dx) return;
    if (is_pointwise(g)) {
        /* dx (Cin, P) += w^T dy: the flipped 1x1x1 convolution, with w read transposed */
        ConvGeom f = flipped_geom(g);
        col_forward(dx, dy, w, NULL, &f, NULL, 1, 1);
    } else if (dx_by_flipped_conv(g)) {
        ConvGeom f = flipped_geom(g);
        if (use_shifted(&f)) {
            weights_by_tap(ws, w, g, 1);
            shifted_forward(dx, dy, ws, NULL, &f, ws + nw, 1);
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

/* ==================================================================================================== */
/* pooling                                                                                               */
/* ==================================================================================================== */

/* The index in the plane (T, H, W) of the first maximum of output (ot, oh, ow)'s window, or -1 when the
 * window holds only padding. Strictly greater keeps the first of equal values; a NaN wins (PyTorch's
 * `val > maxval || isnan(val)`). */
static long window_argmax(const real *xp, const ConvGeom *g, int ot, int oh, int ow) {
    const int *I = g->in, *k = g->k, *s = g->s, *p = g->p;
    long best_i = -1;
    real best = -INFINITY;
    for (int a = 0; a < k[0]; a++) {
        int ti = ot * s[0] - p[0] + a;
        if (ti < 0 || ti >= I[0]) continue;
        for (int bb = 0; bb < k[1]; bb++) {
            int hi = oh * s[1] - p[1] + bb;
            if (hi < 0 || hi >= I[1]) continue;
            for (int d = 0; d < k[2]; d++) {
                int wi = ow * s[2] - p[2] + d;
                if (wi < 0 || wi >= I[2]) continue;
                long idx = ((long)ti * I[1] + hi) * I[2] + wi;
                real v = xp[idx];
                if (best_i < 0 || v > best || isnan(v)) {
                    best = v;
                    best_i = idx;
                }
            }
        }
    }
    return best_i;
}

enum PoolKind { POOL_MAX_FWD, POOL_MAX_BWD, POOL_MAX_JVP, POOL_AVG_FWD, POOL_AVG_BWD };

/* One (sample, channel) plane. out/in by kind: MAX_FWD y/x, MAX_BWD dx/dy (x in xsel), MAX_JVP ty/tx
 * (x in xsel), AVG_FWD y/x, AVG_BWD dx/dy. */
static void pool_plane(int kind, real *out, const real *in, const real *xsel, const ConvGeom *g) {
    const int *I = g->in, *O = g->out, *k = g->k, *s = g->s, *p = g->p;
    real inv = (real)(1.0 / (double)vol3(k));
    size_t o = 0;
    for (int ot = 0; ot < O[0]; ot++)
        for (int oh = 0; oh < O[1]; oh++)
            for (int ow = 0; ow < O[2]; ow++, o++) {
                if (kind == POOL_MAX_FWD || kind == POOL_MAX_BWD || kind == POOL_MAX_JVP) {
                    long i = window_argmax(kind == POOL_MAX_FWD ? in : xsel, g, ot, oh, ow);
                    if (kind == POOL_MAX_FWD) out[o] = i >= 0 ? in[i] : -INFINITY;
                    else if (kind == POOL_MAX_JVP) out[o] = i >= 0 ? in[i] : 0;
                    else if (i >= 0) out[i] += in[o];
                    continue;
                }
                double acc = 0;
                real gy = kind == POOL_AVG_BWD ? in[o] * inv : 0;
                for (int a = 0; a < k[0]; a++) {
                    int ti = ot * s[0] - p[0] + a;
                    if (ti < 0 || ti >= I[0]) continue;
                    for (int bb = 0; bb < k[1]; bb++) {
                        int hi = oh * s[1] - p[1] + bb;
                        if (hi < 0 || hi >= I[1]) continue;
                        size_t row = ((size_t)ti * I[1] + hi) * I[2];
                        for (int d = 0; d < k[2]; d++) {
                            int wi = ow * s[2] - p[2] + d;
                            if (wi < 0 || wi >= I[2]) continue;
                            if (kind == POOL_AVG_FWD) acc += in[row + wi];
                            else out[row + wi] += gy;
                        }
                    }
                }
                if (kind == POOL_AVG_FWD) out[o] = (real)(acc * inv);
            }
}

typedef struct PoolJob {
    int kind;
    real *out;
    const real *in, *xsel;
    const ConvGeom *g;
    int nparts;
} PoolJob;

static void pool_task(void *arg, int part, int thread) {
    (void)thread;
    const PoolJob *j = arg;
    const ConvGeom *g = j->g;
    size_t isz = vol3(g->in), osz = vol3(g->out), c0, c1;
    split_range((size_t)g->n * (size_t)g->cin, j->nparts, part, 1, &c0, &c1);
    int backward = j->kind == POOL_MAX_BWD || j->kind == POOL_AVG_BWD;
    for (size_t pl = c0; pl < c1; pl++)
        pool_plane(j->kind, j->out + pl * (backward ? isz : osz), j->in + pl * (backward ? osz : isz),
                   j->xsel ? j->xsel + pl * isz : NULL, g);
}

static void pool_run(int kind, real *out, const real *in, const real *xsel, const ConvGeom *g) {
    int nth = threads_count();
    PoolJob j = {kind, out, in, xsel, g, nth};
    parallel_for(nth, pool_task, &j);
}

void maxpool3d_forward(real *y, const real *x, const ConvGeom *g) { pool_run(POOL_MAX_FWD, y, x, NULL, g); }
void maxpool3d_backward(real *dx, const real *dy, const real *x, const ConvGeom *g) {
    pool_run(POOL_MAX_BWD, dx, dy, x, g);
}
void maxpool3d_jvp(real *ty, const real *x, const real *tx, const ConvGeom *g) { pool_run(POOL_MAX_JVP, ty, tx, x, g); }
void avgpool3d_forward(real *y, const real *x, const ConvGeom *g) { pool_run(POOL_AVG_FWD, y, x, NULL, g); }
void avgpool3d_backward(real *dx, const real *dy, const ConvGeom *g) { pool_run(POOL_AVG_BWD, dx, dy, NULL, g); }

/* ==================================================================================================== */
/* resampling                                                                                            */
/* ==================================================================================================== */

typedef struct UpJob {
    real *out;
    const real *in;
    size_t nc;
    const int *I, *f;
    int backward, nparts;
} UpJob;

static void upsample_task(void *arg, int part, int thread) {
    (void)thread;
    const UpJob *j = arg;
    const int *I = j->I, *f = j->f;
    int OT = I[0] * f[0], OH = I[1] * f[1], OW = I[2] * f[2];
    size_t isz = vol3(I), osz = (size_t)OT * OH * OW, c0, c1;
    split_range(j->nc, j->nparts, part, 1, &c0, &c1);
    for (size_t pl = c0; pl < c1; pl++)
        for (int t = 0; t < OT; t++)
            for (int h = 0; h < OH; h++) {
                size_t src = ((size_t)(t / f[0]) * I[1] + (size_t)(h / f[1])) * I[2];
                size_t dst = ((size_t)t * OH + h) * OW;
                if (!j->backward) {
                    const real *x = j->in + pl * isz + src;
                    real *y = j->out + pl * osz + dst;
                    for (int w = 0; w < I[2]; w++)
                        for (int r = 0; r < f[2]; r++) y[w * f[2] + r] = x[w];
                } else {
                    const real *dy = j->in + pl * osz + dst;
                    real *dx = j->out + pl * isz + src;
                    for (int w = 0; w < I[2]; w++)
                        for (int r = 0; r < f[2]; r++) dx[w] += dy[w * f[2] + r];
                }
            }
}

void upsample_nearest3d_forward(real *y, const real *x, size_t nc, const int in[3], const int f[3]) {
    UpJob j = {y, x, nc, in, f, 0, threads_count()};
    parallel_for(j.nparts, upsample_task, &j);
}

void upsample_nearest3d_backward(real *dx, const real *dy, size_t nc, const int in[3], const int f[3]) {
    UpJob j = {dx, dy, nc, in, f, 1, threads_count()};
    parallel_for(j.nparts, upsample_task, &j);
}

/* align_corners = True: output i reads source coordinate i (in - 1) / (out - 1) between i0 and i0 + 1 */
static void bilinear_tap(int i, int in, int out, int *i0, int *i1, real *frac) {
    double src = out > 1 ? (double)i * (in - 1) / (out - 1) : 0;
    int lo = (int)src;
    if (lo > in - 1) lo = in - 1;
    *i0 = lo;
    *i1 = lo < in - 1 ? lo + 1 : lo;
    *frac = (real)(src - lo);
}

typedef struct ResizeJob {
    real *out;
    const real *in;
    size_t nc;
    int ih, iw, oh, ow, backward, nparts;
} ResizeJob;

static void resize_task(void *arg, int part, int thread) {
    (void)thread;
    const ResizeJob *j = arg;
    size_t isz = (size_t)j->ih * j->iw, osz = (size_t)j->oh * j->ow, c0, c1;
    split_range(j->nc, j->nparts, part, 1, &c0, &c1);
    for (size_t pl = c0; pl < c1; pl++)
        for (int h = 0; h < j->oh; h++) {
            int h0, h1;
            real lh;
            bilinear_tap(h, j->ih, j->oh, &h0, &h1, &lh);
            for (int w = 0; w < j->ow; w++) {
                int w0, w1;
                real lw;
                bilinear_tap(w, j->iw, j->ow, &w0, &w1, &lw);
                size_t o = (size_t)h * j->ow + w;
                size_t i00 = (size_t)h0 * j->iw + w0, i01 = (size_t)h0 * j->iw + w1;
                size_t i10 = (size_t)h1 * j->iw + w0, i11 = (size_t)h1 * j->iw + w1;
                if (!j->backward) {
                    const real *x = j->in + pl * isz;
                    j->out[pl * osz + o] = (1 - lh) * ((1 - lw) * x[i00] + lw * x[i01]) +
                                           lh * ((1 - lw) * x[i10] + lw * x[i11]);
                } else {
                    real g = j->in[pl * osz + o], *dx = j->out + pl * isz;
                    dx[i00] += (1 - lh) * (1 - lw) * g;
                    dx[i01] += (1 - lh) * lw * g;
                    dx[i10] += lh * (1 - lw) * g;
                    dx[i11] += lh * lw * g;
                }
            }
        }
}

void resize_bilinear_forward(real *y, const real *x, size_t nc, int ih, int iw, int oh, int ow) {
    ResizeJob j = {y, x, nc, ih, iw, oh, ow, 0, threads_count()};
    parallel_for(j.nparts, resize_task, &j);
}

void resize_bilinear_backward(real *dx, const real *dy, size_t nc, int ih, int iw, int oh, int ow) {
    ResizeJob j = {dx, dy, nc, ih, iw, oh, ow, 1, threads_count()};
    parallel_for(j.nparts, resize_task, &j);
}

/* ==================================================================================================== */
/* tape ops                                                                                              */
/* ==================================================================================================== */

/* The (T, H, W) view of a 4-D image tensor is (1, H, W); axis parameters of a 2-D op get T entries of
 * kernel 1, stride 1, padding 0. */
static void spatial3(const Tensor *x, int dims[3]) {
    I2V_ASSERT(x->ndim == 4 || x->ndim == 5, "expected (N, C, H, W) or (N, C, T, H, W), got %d-D", x->ndim);
    int off = x->ndim - 3;
    dims[0] = x->ndim == 5 ? x->shape[2] : 1;
    dims[1] = x->shape[off + 1];
    dims[2] = x->shape[off + 2];
}

static void axes3(const int *v, int nd, int fill, int out[3]) {
    out[0] = nd == 3 ? v[0] : fill;
    out[1] = v[nd - 2];
    out[2] = v[nd - 1];
}

static Tensor *new_5d_or_4d(Ctx *c, int ndim, int n, int ch, const int sp[3]) {
    return ndim == 5 ? tensor_new(c, 5, DIMS(n, ch, sp[0], sp[1], sp[2])) : tensor_new(c, 4, DIMS(n, ch, sp[1], sp[2]));
}

/* ---- convolution: iarg[0..2] stride, iarg[3..5] padding (T, H, W) ---------------------------------- */
static ConvGeom conv_geom_of(const Tensor *x, const Tensor *w, const int *stride, const int *pad) {
    int in[3], k[3];
    spatial3(x, in);
    spatial3(w, k);
    return conv_geom(x->shape[0], x->shape[1], w->shape[0], in, k, stride, pad);
}

static void conv_backward_op(Ctx *c, Node *n) {
    Tensor *x = n->in[0], *w = n->in[1], *b = n->in[2];
    ConvGeom g = conv_geom_of(x, w, n->iarg, n->iarg + 3);
    real *dx = needs_grad(c, x) ? grad_buf(c, x) : NULL;
    real *dw = needs_grad(c, w) ? grad_buf(c, w) : NULL;
    real *db = needs_grad(c, b) ? grad_buf(c, b) : NULL;
    real *ws = ctx_scratch(c, conv3d_workspace(&g) * sizeof(real));
    conv3d_backward(dx, dw, db, n->out->grad, x->data, w->data, &g, ws);
}
static const OpInfo OP_CONV = {"conv", conv_backward_op};

static Tensor *conv_op(Ctx *c, Tensor *x, Tensor *w, Tensor *b, const int stride[3], const int pad[3], int nd) {
    I2V_ASSERT(x->ndim == nd + 2 && w->ndim == nd + 2, "conv%dd: input and weight must be %d-D, got %d-D and %d-D",
               nd, nd + 2, x->ndim, w->ndim);
    I2V_ASSERT(w->shape[1] == x->shape[1], "conv%dd: input has %d channels, weight expects %d", nd, x->shape[1],
               w->shape[1]);
    I2V_ASSERT(!b || (b->ndim == 1 && b->shape[0] == w->shape[0]), "conv%dd: bias must be (%d)", nd, w->shape[0]);
    ConvGeom g = conv_geom_of(x, w, stride, pad);
    Tensor *y = new_5d_or_4d(c, x->ndim, g.n, g.cout, g.out);
    /* the workspace covers the backward too, so a dry run leaves the scratch at its final size */
    real *ws = ctx_scratch(c, conv3d_workspace(&g) * sizeof(real));
    if (!c->dry) conv3d_forward(y->data, x->data, w->data, b ? b->data : NULL, &g, ws);
    Tensor *in[3] = {x, w, b};
    Node *n = record(c, &OP_CONV, y, 3, in);
    if (n)
        for (int a = 0; a < 3; a++) {
            n->iarg[a] = stride[a];
            n->iarg[3 + a] = pad[a];
        }
    return y;
}

Tensor *t_conv2d(Ctx *c, Tensor *x, Tensor *w, Tensor *b, const int stride[2], const int pad[2]) {
    int s[3], p[3];
    axes3(stride, 2, 1, s);
    axes3(pad, 2, 0, p);
    return conv_op(c, x, w, b, s, p, 2);
}

Tensor *t_conv3d(Ctx *c, Tensor *x, Tensor *w, Tensor *b, const int stride[3], const int pad[3]) {
    return conv_op(c, x, w, b, stride, pad, 3);
}

/* ---- pooling: iarg[0..2] kernel, [3..5] stride, [6..8] padding (T, H, W) --------------------------- */
static ConvGeom pool_geom_of(const Tensor *x, const int *k, const int *s, const int *p) {
    int in[3];
    spatial3(x, in);
    for (int a = 0; a < 3; a++)
        I2V_ASSERT(2 * p[a] <= k[a], "pooling: padding %d larger than half the kernel %d (axis %d)", p[a], k[a], a);
    return conv_geom(x->shape[0], x->shape[1], x->shape[1], in, k, s, p);
}

static void pool_save_args(Node *n, const int *k, const int *s, const int *p) {
    for (int a = 0; a < 3; a++) {
        n->iarg[a] = k[a];
        n->iarg[3 + a] = s[a];
        n->iarg[6 + a] = p[a];
    }
}

static void maxpool_backward_op(Ctx *c, Node *n) {
    Tensor *x = n->in[0];
    ConvGeom g = pool_geom_of(x, n->iarg, n->iarg + 3, n->iarg + 6);
    maxpool3d_backward(grad_buf(c, x), n->out->grad, x->data, &g);
}
static const OpInfo OP_MAXPOOL = {"maxpool", maxpool_backward_op};

static void avgpool_backward_op(Ctx *c, Node *n) {
    Tensor *x = n->in[0];
    ConvGeom g = pool_geom_of(x, n->iarg, n->iarg + 3, n->iarg + 6);
    avgpool3d_backward(grad_buf(c, x), n->out->grad, &g);
}
static const OpInfo OP_AVGPOOL = {"avgpool", avgpool_backward_op};

/* the tangent op: in[0] = tx (the only differentiable input), aux[0] = x (selects the argmax) */
static void maxpool_jvp_backward_op(Ctx *c, Node *n) {
    Tensor *tx = n->in[0], *x = n->aux[0];
    ConvGeom g = pool_geom_of(x, n->iarg, n->iarg + 3, n->iarg + 6);
    maxpool3d_backward(grad_buf(c, tx), n->out->grad, x->data, &g);
}
static const OpInfo OP_MAXPOOL_JVP = {"maxpool_jvp", maxpool_jvp_backward_op};

static Tensor *pool_op(Ctx *c, int kind, Tensor *x, Tensor *tx, const int *k, const int *s, const int *p) {
    ConvGeom g = pool_geom_of(x, k, s, p);
    Tensor *y = new_5d_or_4d(c, x->ndim, g.n, g.cout, g.out);
    Node *n;
    if (kind == POOL_MAX_JVP) {
        I2V_ASSERT(shape_equal(x, tx), "maxpool_jvp: x and its tangent differ in shape");
        if (!c->dry) maxpool3d_jvp(y->data, x->data, tx->data, &g);
        n = record(c, &OP_MAXPOOL_JVP, y, 1, &tx);
        if (n) n->aux[0] = x;
    } else if (kind == POOL_MAX_FWD) {
        if (!c->dry) maxpool3d_forward(y->data, x->data, &g);
        n = record(c, &OP_MAXPOOL, y, 1, &x);
    } else {
        if (!c->dry) avgpool3d_forward(y->data, x->data, &g);
        n = record(c, &OP_AVGPOOL, y, 1, &x);
    }
    if (n) pool_save_args(n, k, s, p);
    return y;
}

static Tensor *pool2d(Ctx *c, int kind, Tensor *x, Tensor *tx, const int k[2], const int s[2], const int p[2]) {
    I2V_ASSERT(x->ndim == 4, "2-D pooling of a %d-D tensor (needs (N, C, H, W))", x->ndim);
    int k3[3], s3[3], p3[3];
    axes3(k, 2, 1, k3);
    axes3(s, 2, 1, s3);
    axes3(p, 2, 0, p3);
    return pool_op(c, kind, x, tx, k3, s3, p3);
}

static Tensor *pool3d(Ctx *c, int kind, Tensor *x, Tensor *tx, const int k[3], const int s[3], const int p[3]) {
    I2V_ASSERT(x->ndim == 5, "3-D pooling of a %d-D tensor (needs (N, C, T, H, W))", x->ndim);
    return pool_op(c, kind, x, tx, k, s, p);
}

Tensor *t_maxpool2d(Ctx *c, Tensor *x, const int k[2], const int s[2], const int p[2]) {
    return pool2d(c, POOL_MAX_FWD, x, NULL, k, s, p);
}
Tensor *t_avgpool2d(Ctx *c, Tensor *x, const int k[2], const int s[2], const int p[2]) {
    return pool2d(c, POOL_AVG_FWD, x, NULL, k, s, p);
}
Tensor *t_maxpool3d(Ctx *c, Tensor *x, const int k[3], const int s[3], const int p[3]) {
    return pool3d(c, POOL_MAX_FWD, x, NULL, k, s, p);
}
Tensor *t_avgpool3d(Ctx *c, Tensor *x, const int k[3], const int s[3], const int p[3]) {
    return pool3d(c, POOL_AVG_FWD, x, NULL, k, s, p);
}
Tensor *t_maxpool2d_jvp(Ctx *c, Tensor *x, Tensor *tx, const int k[2], const int s[2], const int p[2]) {
    return pool2d(c, POOL_MAX_JVP, x, tx, k, s, p);
}
Tensor *t_maxpool3d_jvp(Ctx *c, Tensor *x, Tensor *tx, const int k[3], const int s[3], const int p[3]) {
    return pool3d(c, POOL_MAX_JVP, x, tx, k, s, p);
}

/* ---- global average pooling: the mean of each (sample, channel) plane ------------------------------ */
static void global_avgpool_backward_op(Ctx *c, Node *n) {
    Tensor *x = n->in[0];
    size_t nc = n->out->numel, len = nc ? x->numel / nc : 0;
    real *dx = grad_buf(c, x), inv = (real)(1.0 / (double)(len ? len : 1));
    for (size_t pl = 0; pl < nc; pl++) {
        real g = n->out->grad[pl] * inv;
        for (size_t i = 0; i < len; i++) dx[pl * len + i] += g;
    }
}
static const OpInfo OP_GLOBAL_AVGPOOL = {"global_avgpool", global_avgpool_backward_op};

Tensor *t_global_avgpool(Ctx *c, Tensor *x) {
    I2V_ASSERT(x->ndim >= 3, "global_avgpool needs (N, C, ...), got %d-D", x->ndim);
    int shape[I2V_MAXDIM];
    for (int i = 0; i < x->ndim; i++) shape[i] = i < 2 ? x->shape[i] : 1;
    Tensor *y = tensor_new(c, x->ndim, shape);
    size_t nc = y->numel, len = nc ? x->numel / nc : 0;
    if (!c->dry)
        for (size_t pl = 0; pl < nc; pl++) {
            double acc = 0;
            for (size_t i = 0; i < len; i++) acc += x->data[pl * len + i];
            y->data[pl] = (real)(acc / (double)(len ? len : 1));
        }
    record(c, &OP_GLOBAL_AVGPOOL, y, 1, &x);
    return y;
}

/* ---- nearest upsampling: iarg[0..2] factors (T, H, W) ---------------------------------------------- */
static void upsample_backward_op(Ctx *c, Node *n) {
    Tensor *x = n->in[0];
    int in[3];
    spatial3(x, in);
    upsample_nearest3d_backward(grad_buf(c, x), n->out->grad, (size_t)x->shape[0] * x->shape[1], in, n->iarg);
}
static const OpInfo OP_UPSAMPLE = {"upsample_nearest", upsample_backward_op};

static Tensor *upsample_op(Ctx *c, Tensor *x, const int f[3]) {
    int in[3], out[3];
    spatial3(x, in);
    for (int a = 0; a < 3; a++) {
        I2V_ASSERT(f[a] >= 1, "upsample: factor %d on axis %d", f[a], a);
        out[a] = in[a] * f[a];
    }
    Tensor *y = new_5d_or_4d(c, x->ndim, x->shape[0], x->shape[1], out);
    if (!c->dry) upsample_nearest3d_forward(y->data, x->data, (size_t)x->shape[0] * x->shape[1], in, f);
    Node *n = record(c, &OP_UPSAMPLE, y, 1, &x);
    if (n)
        for (int a = 0; a < 3; a++) n->iarg[a] = f[a];
    return y;
}

Tensor *t_upsample_nearest2d(Ctx *c, Tensor *x, const int f[2]) {
    I2V_ASSERT(x->ndim == 4, "upsample_nearest2d of a %d-D tensor (needs (N, C, H, W))", x->ndim);
    int f3[3];
    axes3(f, 2, 1, f3);
    return upsample_op(c, x, f3);
}

Tensor *t_upsample_nearest3d(Ctx *c, Tensor *x, const int f[3]) {
    I2V_ASSERT(x->ndim == 5, "upsample_nearest3d of a %d-D tensor (needs (N, C, T, H, W))", x->ndim);
    return upsample_op(c, x, f);
}

/* ---- bilinear resize ------------------------------------------------------------------------------ */
static void resize_backward_op(Ctx *c, Node *n) {
    Tensor *x = n->in[0], *y = n->out;
    resize_bilinear_backward(grad_buf(c, x), y->grad, (size_t)x->shape[0] * x->shape[1], x->shape[2], x->shape[3],
                             y->shape[2], y->shape[3]);
}
static const OpInfo OP_RESIZE = {"resize_bilinear", resize_backward_op};

Tensor *t_resize_bilinear(Ctx *c, Tensor *x, int oh, int ow) {
    I2V_ASSERT(x->ndim == 4, "resize_bilinear of a %d-D tensor (needs (N, C, H, W))", x->ndim);
    I2V_ASSERT(oh >= 1 && ow >= 1 && x->shape[2] >= 1 && x->shape[3] >= 1, "resize_bilinear to %dx%d", oh, ow);
    Tensor *y = tensor_new(c, 4, DIMS(x->shape[0], x->shape[1], oh, ow));
    if (!c->dry)
        resize_bilinear_forward(y->data, x->data, (size_t)x->shape[0] * x->shape[1], x->shape[2], x->shape[3], oh, ow);
    record(c, &OP_RESIZE, y, 1, &x);
    return y;
}
