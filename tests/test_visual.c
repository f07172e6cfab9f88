/* test_visual.c: the picture grids of program/visual.c on videos whose every pixel is known: the layout of
 * rows and columns with the start frame first, the enlargement, the colour mapping, the end-point crosses,
 * and the PNG of last frames laid out as the GIF's first frame. */
#include <unistd.h>

#include "check.h"
#include "formats/files.h"
#include "formats/gif.h"
#include "formats/png.h"
#include "program/visual.h"

enum { S = 8, T = 3, R = 2, K = 2 };

/* value of pixel (y, x), channel c, frame t of video v: distinct, in [-1, 1] */
static real value(int v, int t, int c, int y, int x) { return (real)(-1 + 2.0 * ((v * 7 + t * 5 + c * 3 + y + x) % 17) / 16); }

static uint8_t byte_of(real v) { return (uint8_t)lround(((double)v + 1) / 2 * 255); }

int main(void) {
    check(visual_zoom(32) == 4 && visual_zoom(64) == 2 && visual_zoom(128) == 1 && visual_zoom(256) == 1 &&
              visual_zoom(30) == 5,
          "zoom: tiles of at least 128 pixels");
    size_t frame = (size_t)3 * S * S;
    /* x0 (R, 3, S, S) and videos (R, K, T, 3, S, S) */
    real *x0 = xmalloc(R * frame * sizeof(real)), *videos = xmalloc((size_t)R * K * T * frame * sizeof(real));
    for (int r = 0; r < R; r++)
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < S; y++)
                for (int x = 0; x < S; x++) x0[(size_t)r * frame + (size_t)(c * S + y) * S + x] = value(100 + r, 0, c, y, x);
    for (int v = 0; v < R * K; v++)
        for (int t = 0; t < T; t++)
            for (int c = 0; c < 3; c++)
                for (int y = 0; y < S; y++)
                    for (int x = 0; x < S; x++)
                        videos[((size_t)v * T + t) * frame + (size_t)(c * S + y) * S + x] = value(v, t, c, y, x);
    real *tiles = visual_with_x0(x0, videos, R, K, T, S);
    int ok = 1;
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) {
            ok &= !memcmp(tiles + ((size_t)r * (K + 1) * T + t) * frame, x0 + (size_t)r * frame, frame * sizeof(real));
            for (int k = 0; k < K; k++)
                ok &= !memcmp(tiles + (((size_t)r * (K + 1) + 1 + k) * T + t) * frame,
                              videos + (((size_t)r * K + k) * T + t) * frame, frame * sizeof(real));
        }
    check(ok, "tiles: each row is x0 held still, then the row's videos");
    real *last = visual_last_frames(tiles, R * (K + 1), T, S);
    check(!memcmp(last + frame, tiles + ((size_t)1 * T + T - 1) * frame, frame * sizeof(real)), "last frames");

    /* the GIF: 2 rows x 3 columns of 8 x 8 tiles enlarged 3 times, 2 white pixels apart, a cross in tile 4 */
    char path[128];
    snprintf(path, sizeof path, "/tmp/i2v_test_visual_%d.gif", (int)getpid());
    int zoom = 3, Z = S * zoom;
    double *marks = xmalloc((size_t)R * (K + 1) * 2 * sizeof(double));
    for (int i = 0; i < R * (K + 1) * 2; i++) marks[i] = NAN;
    marks[2 * 4] = 4.5;   /* tile (1, 1): the centre of pixel (4, 2), enlarged: (13.5, 7.5) */
    marks[2 * 4 + 1] = 2.5;
    I2vError e;
    check(!visual_gif(path, tiles, R, K + 1, T, S, zoom, marks, &e), "visual_gif writes");
    uint8_t *buf = NULL, *rgb = NULL;
    size_t n, frames, w, h;
    if (check(!read_file_bytes(path, &buf, &n, &e) && !gif_decode(buf, n, path, &rgb, &frames, &w, &h, &e),
              "the GIF decodes")) {
        check(frames == T && w == (size_t)(K + 1) * (Z + 2) + 2 && h == (size_t)R * (Z + 2) + 2, "the GIF's size (%zu x %zu)",
              w, h);
        /* 17 grey levels x 3 channels are under 256 colours: the palette is exact */
        int exact = 1, gaps = 1;
        for (int t = 0; t < T; t++)
            for (int r = 0; r < R; r++)
                for (int col = 0; col <= K; col++) {
                    if (r == 1 && col == 1) continue;   /* the marked tile */
                    for (int y = 0; y < Z; y++)
                        for (int x = 0; x < Z; x++)
                            for (int c = 0; c < 3; c++) {
                                real want = col == 0 ? value(100 + r, 0, c, y / zoom, x / zoom)
                                                     : value(r * K + col - 1, t, c, y / zoom, x / zoom);
                                size_t py = 2 + (size_t)r * (Z + 2) + (size_t)y, px = 2 + (size_t)col * (Z + 2) + (size_t)x;
                                exact &= rgb[(((size_t)t * h + py) * w + px) * 3 + (size_t)c] == byte_of(want);
                            }
                }
        for (size_t x = 0; x < w; x++) gaps &= rgb[(1 * w + x) * 3] == 255 && rgb[((size_t)(Z + 3) * w + x) * 3] == 255;
        check(exact, "every pixel is its video's, enlarged, mapped from [-1, 1] to 0..255");
        check(gaps, "white lines between the rows");
        /* the cross: white at its centre and along its arms, black beside them */
        size_t cy = 2 + (size_t)(Z + 2) + 7, cx = 2 + (size_t)(Z + 2) + 13;
        const uint8_t *f0 = rgb;
        check(f0[(cy * w + cx) * 3] == 255 && f0[(cy * w + cx + 5) * 3] == 255 && f0[((cy - 5) * w + cx) * 3] == 255 &&
                  f0[((cy + 1) * w + cx + 3) * 3] == 0 && f0[((cy - 3) * w + cx - 1) * 3] == 0,
              "the end point is marked with a white cross outlined in black");
    }
    free(buf);
    free(rgb);
    remove(path);

    /* the PNG of last frames: the same layout, exact */
    snprintf(path, sizeof path, "/tmp/i2v_test_visual_%d.png", (int)getpid());
    Image png;
    if (check(!visual_png(path, last, R, K + 1, S, zoom, NULL, &e) && !png_read(path, &png, &e), "visual_png writes")) {
        int exact = png.width == (size_t)(K + 1) * (Z + 2) + 2 && png.height == (size_t)R * (Z + 2) + 2;
        for (int r = 0; r < R && exact; r++)
            for (int col = 0; col <= K; col++)
                for (int y = 0; y < Z; y++)
                    for (int x = 0; x < Z; x++)
                        for (int c = 0; c < 3; c++) {
                            real want = col == 0 ? value(100 + r, 0, c, y / zoom, x / zoom)
                                                 : value(r * K + col - 1, T - 1, c, y / zoom, x / zoom);
                            size_t py = 2 + (size_t)r * (Z + 2) + (size_t)y, px = 2 + (size_t)col * (Z + 2) + (size_t)x;
                            exact &= png.data[(py * png.width + px) * 3 + (size_t)c] == byte_of(want);
                        }
        check(exact, "the PNG holds the last frames in the GIF's places");
        image_free(&png);
    }
    remove(path);
    free(x0);
    free(videos);
    free(tiles);
    free(last);
    free(marks);
    return check_summary("test_visual");
}
