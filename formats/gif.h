/* gif.h: animated GIF89a, written (and read back, for the tests), and grids that lay several videos out
 * side by side in one GIF or PNG. */
#ifndef I2V_GIF_H
#define I2V_GIF_H

#include "formats/image.h"

/* An animated GIF from `frames` RGB frames, each (H, W, 3) uint8, stored one after another. One global
 * palette for all frames: the exact colours when there are at most 256, otherwise median cut over a 5-5-5
 * histogram of every frame; each pixel takes its nearest palette colour (squared RGB distance, no dithering).
 * LZW with code-size growth and clear codes, NETSCAPE2.0 looping (loop_count 0: forever), delay in 1/100 s. */
uint8_t *gif_encode(const uint8_t *rgb, size_t frames, size_t width, size_t height, int delay_cs,
                    int loop_count, size_t *n);
int gif_write(const char *path, const uint8_t *rgb, size_t frames, size_t width, size_t height, int delay_cs,
              int loop_count, I2vError *err);
/* Reads every frame of a GIF (87a or 89a), composed onto the logical screen as a viewer shows it (disposal
 * methods 0-3, transparency, local palettes, interlaced frames): *rgb gets (frames, H, W, 3), xmalloc'd. */
int gif_decode(const uint8_t *buf, size_t n, const char *name, uint8_t **rgb, size_t *frames, size_t *width,
               size_t *height, I2vError *err);


/* ---- grids of videos ------------------------------------------------------------------------------------ */
/* For samples: video_to_rgb8 each video, video_grid them, gif_write the grid; or video_strip + png_write. */
/* nvideos videos, each (T, H, W, 3) uint8, laid out row by row in `cols` columns with `gap` pixels of the
 * grey `background` between cells and around the border. Returns (T, Hg, Wg, 3), xmalloc'd, with
 * Hg = rows * (H + gap) + gap, Wg = cols * (W + gap) + gap. */
uint8_t *video_grid(const uint8_t *const *videos, size_t nvideos, size_t frames, size_t height, size_t width,
                    size_t cols, size_t gap, uint8_t background, size_t *grid_h, size_t *grid_w);
/* One still image: video i is row i and frame t is column t, `gap` pixels apart. Output: 8-bit RGB. */
void video_strip(Image *out, const uint8_t *const *videos, size_t nvideos, size_t frames, size_t height,
                 size_t width, size_t gap, uint8_t background);

#endif
