/* visual.c: grids of videos as GIFs and of frames as PNGs (visual.h).
 *
 * What it is: the layout that `sample`, `control`, `transfer` and the demo share: tiles enlarged by
 * nearest-neighbour repetition, crosses marking end points, the grid (formats/gif.h video_grid) and the
 * GIF or PNG file. Values map from [-1, 1] to 0..255 as the official denorm does; unlike the official
 * scripts, nothing is rescaled by the maximum (convert_seq2gif) or min-max normalised (save_image's
 * normalize=True), so a colour in the picture is the colour the model made.
 * What it is not: an image codec (formats/) or a plotting library.
 * Dimension legend: R rows, K columns, T frames, S frame size, Z = S zoom (the enlarged size).
 */
#include "program/visual.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "formats/gif.h"
#include "formats/png.h"

#define GRID_GAP 2          /* pixels of white between tiles and around the border */
#define FRAMES_PER_SECOND 3 /* imageio.mimsave(..., fps=3) in the official scripts */

int visual_zoom(int S) { return S >= 128 ? 1 : (128 + S - 1) / S; }

real *visual_with_x0(const real *x0, const real *videos, int R, int K, int T, int S) {
    size_t frame = (size_t)3 * S * S, video = (size_t)T * frame;
    real *out = xmalloc((size_t)R * (size_t)(K + 1) * video * sizeof(real));
    for (int r = 0; r < R; r++) {
        real *row = out + (size_t)r * (size_t)(K + 1) * video;
        for (int t = 0; t < T; t++) memcpy(row + (size_t)t * frame, x0 + (size_t)r * frame, frame * sizeof(real));
        memcpy(row + video, videos + (size_t)r * K * video, (size_t)K * video * sizeof(real));
    }
    return out;
}

real *visual_last_frames(const real *videos, int n, int T, int S) {
    size_t frame = (size_t)3 * S * S;
    real *out = xmalloc((size_t)n * frame * sizeof(real));
    for (int i = 0; i < n; i++)
        memcpy(out + (size_t)i * frame, videos + ((size_t)i * T + (size_t)(T - 1)) * frame, frame * sizeof(real));
    return out;
}

static void put(uint8_t *img, int Z, long x, long y, uint8_t v) {
    if (x < 0 || y < 0 || x >= Z || y >= Z) return;
    uint8_t *p = img + ((size_t)y * (size_t)Z + (size_t)x) * 3;
    p[0] = p[1] = p[2] = v;
}

/* A cross centred at (x, y) in enlarged pixels: white arms one pixel wide, outlined in black so that it shows
 * on any colour. img (Z, Z, 3). */
static void draw_cross(uint8_t *img, int Z, double x, double y, int arm) {
    long cx = lround(x - 0.5), cy = lround(y - 0.5);
    for (int pass = 0; pass < 2; pass++)
        for (long d = -arm; d <= arm; d++)
            for (long w = -1 + pass; w <= 1 - pass; w++) {
                uint8_t v = pass ? 255 : 0;
                put(img, Z, cx + d, cy + w, v);
                put(img, Z, cx + w, cy + d, v);
            }
}

/* tiles (n, T, 3, S, S) -> n enlarged RGB videos (T, Z, Z, 3), marked */
static uint8_t **enlarge(const real *tiles, int n, int T, int S, int zoom, const double *marks) {
    int Z = S * zoom;
    size_t small = (size_t)T * S * S * 3, big = (size_t)T * Z * Z * 3;
    uint8_t **out = xmalloc((size_t)n * sizeof *out), *rgb = xmalloc(small);
    for (int i = 0; i < n; i++) {
        video_to_rgb8(tiles + (size_t)i * T * 3 * S * S, (size_t)T, (size_t)S, (size_t)S, rgb);
        out[i] = xmalloc(big);
        for (int t = 0; t < T; t++)
            for (int y = 0; y < Z; y++)
                for (int x = 0; x < Z; x++)
                    memcpy(out[i] + (((size_t)t * Z + y) * Z + x) * 3,
                           rgb + (((size_t)t * S + y / zoom) * S + x / zoom) * 3, 3);
        if (marks && !isnan(marks[2 * i]) && !isnan(marks[2 * i + 1]))
            for (int t = 0; t < T; t++)
                draw_cross(out[i] + (size_t)t * Z * Z * 3, Z, marks[2 * i] * zoom, marks[2 * i + 1] * zoom,
                           zoom < 2 ? 3 : 2 * zoom);
    }
    free(rgb);
    return out;
}

static void free_videos(uint8_t **v, int n) {
    for (int i = 0; i < n; i++) free(v[i]);
    free(v);
}

int visual_gif(const char *path, const real *tiles, int R, int K, int T, int S, int zoom, const double *marks,
               I2vError *e) {
    I2V_ASSERT(R >= 1 && K >= 1 && T >= 1 && S >= 1 && zoom >= 1, "visual_gif: %d x %d tiles of %d frames of %d px, zoom %d",
               R, K, T, S, zoom);
    int n = R * K, Z = S * zoom;
    uint8_t **v = enlarge(tiles, n, T, S, zoom, marks);
    size_t gh, gw;
    uint8_t *grid = video_grid((const uint8_t *const *)v, (size_t)n, (size_t)T, (size_t)Z, (size_t)Z, (size_t)K, GRID_GAP,
                               255, &gh, &gw);
    int rc = gif_write(path, grid, (size_t)T, gw, gh, (100 + FRAMES_PER_SECOND / 2) / FRAMES_PER_SECOND, 0, e);
    free(grid);
    free_videos(v, n);
    return rc;
}

int visual_png(const char *path, const real *frames, int R, int K, int S, int zoom, const double *marks, I2vError *e) {
    I2V_ASSERT(R >= 1 && K >= 1 && S >= 1 && zoom >= 1, "visual_png: %d x %d tiles of %d px, zoom %d", R, K, S, zoom);
    int n = R * K, Z = S * zoom;
    uint8_t **v = enlarge(frames, n, 1, S, zoom, marks);
    size_t gh, gw;
    Image im = {0, 0, 3, 8, NULL};
    im.data = video_grid((const uint8_t *const *)v, (size_t)n, 1, (size_t)Z, (size_t)Z, (size_t)K, GRID_GAP, 255, &gh, &gw);
    im.width = gw;
    im.height = gh;
    int rc = png_write(path, &im, e);
    free(im.data);
    free_videos(v, n);
    return rc;
}
