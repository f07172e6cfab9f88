/* fuzz_png.c: the PNG decoder (zlib, filters, interlacing, palettes, bit depths). fuzz.h says how it runs. */
#include "tests/fuzz/fuzz.h"

#include "formats/png.h"

int fuzz_png(const uint8_t *data, size_t n) {
    Image im;
    I2vError e;
    memset(&im, 0, sizeof im);
    if (png_decode(data, n, "fuzz.png", &im, &e)) return fuzz_names(&e, "fuzz.png") ? 0 : -1;
    int ok = im.width > 0 && im.height > 0 && im.channels >= 1 && im.channels <= 4 && im.data &&
             im.width * im.height * im.channels <= I2V_IMAGE_MAX_SAMPLES;
    image_free(&im);
    return ok ? 0 : -1;
}

FUZZ_TARGET(fuzz_png)
