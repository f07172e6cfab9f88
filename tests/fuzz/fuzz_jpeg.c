/* fuzz_jpeg.c: the JPEG decoder (baseline and progressive, Huffman and restart markers, subsampling). fuzz.h
 * says how it runs. */
#include "tests/fuzz/fuzz.h"

#include "formats/jpeg.h"

int fuzz_jpeg(const uint8_t *data, size_t n) {
    Image im;
    I2vError e;
    memset(&im, 0, sizeof im);
    if (jpeg_decode(data, n, "fuzz.jpg", &im, &e)) return fuzz_names(&e, "fuzz.jpg") ? 0 : -1;
    int ok = im.width > 0 && im.height > 0 && (im.channels == 1 || im.channels == 3) && im.data &&
             im.width * im.height * im.channels <= I2V_IMAGE_MAX_SAMPLES;
    image_free(&im);
    return ok ? 0 : -1;
}

FUZZ_TARGET(fuzz_jpeg)
