/* conv_geom.c: the geometry of a convolution or pooling window (output sizes, checked arguments) and the
 * workspace budget shared by the convolution's lowerings. Dimension legend: T frames, H, W.
 */
#include "kernels/conv_geom.h"

/* The budget for a column tile (vol2col) or for the padded frames of the shifted walk. The GEMM repacks
 * the weights once per column tile, so a tile must be wide (hundreds of positions even for K = 27648). */
#define CONV_COL_BYTES ((size_t)32 << 20)
static size_t col_bytes = CONV_COL_BYTES;

void conv_set_tile_bytes(size_t bytes) { col_bytes = bytes ? bytes : CONV_COL_BYTES; }
size_t conv_tile_bytes(void) { return col_bytes; }

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
