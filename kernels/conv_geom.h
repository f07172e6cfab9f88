/* conv_geom.h: the geometry of a convolution or pooling window, and what the convolution's lowerings
 * (kernels/conv.c, kernels/conv_shifted.c) and the pooling kernels (kernels/pool.c) share about it: the
 * budget for their workspace tiles and a few sizes.
 * Dimension legend: N batch, C channels, T frames, H, W; kvol = kT kH kW.
 */
#ifndef I2V_CONV_GEOM_H
#define I2V_CONV_GEOM_H

#include <stddef.h>

#include "base/base.h"

/* ---- geometry -------------------------------------------------------------------------------------- */
/* One convolution or pooling window geometry; axes are always (T, H, W). Pooling: cin == cout == C. */
typedef struct ConvGeom {
    int n, cin, cout;     /* batch, input channels, output channels */
    int in[3];            /* input T, H, W */
    int k[3], s[3], p[3]; /* kernel, stride, zero padding per axis */
    int out[3];           /* output T, H, W */
} ConvGeom;

/* Fills out[] and checks k >= 1, s >= 1, p >= 0 and that the padded input holds one window. */
ConvGeom conv_geom(int n, int cin, int cout, const int in[3], const int k[3], const int s[3], const int p[3]);

/* Tile widths are multiples of this many positions (whole SIMD vectors in the GEMM's B panels). */
#define CONV_TILE_ALIGN 16

/* Weight copies (tap-major or flipped) are made only up to this size; larger kernels (1024 -> 1024 on
 * 4x4 or 8x8 frames) use vol2col and col2vol, which read w in place. */
#define CONV_WCOPY_BYTES ((size_t)32 << 20)

/* The budget for a column tile (vol2col) or for the padded frames of the shifted walk, in bytes. */
size_t conv_tile_bytes(void);
/* The budget for a column tile or the padded frames of the shifted walk (0: the default, 32 MB). Tests
 * make it tiny to get many tiles from small shapes (which also turns the shifted walk off). */
void conv_set_tile_bytes(size_t bytes);

static inline size_t vol3(const int d[3]) { return (size_t)d[0] * (size_t)d[1] * (size_t)d[2]; }

static inline size_t min_sz(size_t a, size_t b) { return a < b ? a : b; }

/* Splits [0, total) into nparts pieces, each a multiple of align long except the last: piece `part`. */
static inline void split_range(size_t total, int nparts, int part, size_t align, size_t *lo, size_t *hi) {
    size_t chunk = (total + (size_t)nparts - 1) / (size_t)nparts;
    chunk = (chunk + align - 1) / align * align;
    *lo = min_sz((size_t)part * chunk, total);
    *hi = min_sz(*lo + chunk, total);
}

/* A 1x1x1 kernel with stride 1 and no padding: col is x itself, one GEMM per sample. */
static inline int is_pointwise(const ConvGeom *g) {
    for (int a = 0; a < 3; a++)
        if (g->k[a] != 1 || g->s[a] != 1 || g->p[a] != 0) return 0;
    return 1;
}

static inline size_t weight_count(const ConvGeom *g) { return (size_t)g->cout * (size_t)g->cin * vol3(g->k); }

static inline int weight_copy_ok(const ConvGeom *g) { return weight_count(g) * sizeof(real) <= CONV_WCOPY_BYTES; }

#endif
