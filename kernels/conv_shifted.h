/* conv_shifted.h: the shifted walk (kernels/conv_shifted.c), the fast lowering of a stride-1 convolution,
 * as the plan in kernels/conv.c calls it. Dimension legend as in kernels/conv.h; kvol = kT kH kW.
 */
#ifndef I2V_CONV_SHIFTED_H
#define I2V_CONV_SHIFTED_H

#include <stddef.h>

#include "kernels/conv_geom.h"

/* Whether g's forward (and its weight gradient) goes through the shifted walk. */
int conv_use_shifted(const ConvGeom *g);
int conv_dw_by_shifted(const ConvGeom *g);
/* Reals of the walk's padded frames and output frames, one set per thread. */
size_t conv_shifted_workspace(const ConvGeom *g);
/* w (Cout, Cin, kvol) -> wt (kvol, Cout, Cin): one (Cout, Cin) matrix per tap for the shifted walk.
 * flip: the kernel of the input gradient instead, wt (kvol, Cin, Cout) with the taps reversed. */
void conv_weights_by_tap(real *wt, const real *w, const ConvGeom *g, int flip);
/* y (N, Cout, To, Ho, Wo) = (beta = 0) or += (beta = 1) conv + b, with wt (kvol, Cout, Cin);
 * ws: conv_shifted_workspace(g) reals. */
void conv_shifted_forward(real *y, const real *x, const real *wt, const real *b, const ConvGeom *g, real *ws,
                          real beta);
/* dw (Cout, Cin, kvol) += the weight gradient; ws: weight_count(g) + conv_shifted_workspace(g) reals. */
void conv_shifted_dw(real *dw, const real *dy, const real *x, const ConvGeom *g, real *ws);

#endif
