/* fuzz_gif.c: the GIF reader (blocks, colour tables, LZW, interlacing, disposal). fuzz.h says how it runs. */
#include "tests/fuzz/fuzz.h"

#include "formats/gif.h"
#include "formats/image.h"

int fuzz_gif(const uint8_t *data, size_t n) {
    uint8_t *rgb = NULL;
    size_t frames, w, h;
    I2vError e;
    if (gif_decode(data, n, "fuzz.gif", &rgb, &frames, &w, &h, &e)) return fuzz_names(&e, "fuzz.gif") ? 0 : -1;
    int ok = frames > 0 && w > 0 && h > 0 && rgb && frames * w * h * 3 <= I2V_IMAGE_MAX_SAMPLES;
    free(rgb);
    return ok ? 0 : -1;
}

FUZZ_TARGET(fuzz_gif)
