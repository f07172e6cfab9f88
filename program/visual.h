/* visual.h: the pictures i2v writes of videos, in one place for `sample`, `control`, `transfer` and the demo:
 * a grid of videos as a looping GIF (as the official generate_samples.py writes its results, videos side by
 * side) and a grid of single frames as a PNG (as visualize_endpoint.py writes the last frames), both
 * enlarged by a whole factor so that small frames can be seen, with optional end-point marks.
 * Dimension legend: R rows, K columns, T frames, S frame size (H = W = S). */
#ifndef I2V_VISUAL_H
#define I2V_VISUAL_H

#include "base/base.h"
#include "tensor.h"

/* The enlargement that makes an S-pixel frame at least 128 pixels wide (1 for S >= 128). */
int visual_zoom(int S);

/* Tiles with the start frame first: out (R, 1 + K, T, 3, S, S) from x0 (R, 3, S, S), held still for T
 * frames, and videos (R, K, T, 3, S, S). The caller frees the result. */
real *visual_with_x0(const real *x0, const real *videos, int R, int K, int T, int S);
/* The last frames of n videos (n, T, 3, S, S): out (n, 3, S, S). The caller frees the result. */
real *visual_last_frames(const real *videos, int n, int T, int S);

/* tiles (R K, T, 3, S, S) in [-1, 1] as a GIF of R rows and K columns, each pixel zoom x zoom, white lines
 * of 2 pixels between tiles, 3 frames a second (the official scripts' fps). marks: NULL, or (R K, 2) points (x, y) in pixels of the
 * S x S frame where a cross is drawn in every frame of that tile (NAN: no mark). */
int visual_gif(const char *path, const real *tiles, int R, int K, int T, int S, int zoom, const double *marks,
               I2vError *e);
/* frames (R K, 3, S, S) as a PNG grid laid out as visual_gif's first frame. */
int visual_png(const char *path, const real *frames, int R, int K, int S, int zoom, const double *marks, I2vError *e);

#endif
