/* fuzz_npy.c: the NPY reader (versions 1-3, the header's Python dict, dtypes, shapes). fuzz.h says how it
 * runs. A decoded array encodes and decodes again to the same shape and values. */
#include "tests/fuzz/fuzz.h"

#include "formats/npy.h"

int fuzz_npy(const uint8_t *data, size_t n) {
    NpyArray a, b;
    I2vError e;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    if (npy_decode(data, n, "fuzz.npy", &a, &e)) return fuzz_names(&e, "fuzz.npy") ? 0 : -1;
    size_t count = 1;
    for (int i = 0; i < a.ndim; i++) count *= a.shape[i];
    int ok = count == a.count && (a.count == 0 || a.data);
    size_t len, esize = a.dtype == NPY_F32 ? 4 : 1;
    uint8_t *again = ok ? npy_encode(a.dtype, a.ndim, a.shape, a.data, &len) : NULL;
    if (again) {
        ok = !npy_decode(again, len, "again.npy", &b, &e) && b.ndim == a.ndim && b.count == a.count &&
             !memcmp(b.shape, a.shape, sizeof a.shape) && (a.count == 0 || !memcmp(a.data, b.data, a.count * esize));
        npy_free(&b);
        free(again);
    }
    npy_free(&a);
    return ok ? 0 : -1;
}

FUZZ_TARGET(fuzz_npy)
