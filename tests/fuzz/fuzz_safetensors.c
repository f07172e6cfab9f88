/* fuzz_safetensors.c: safetensors files: the header (length, JSON, dtypes, shapes, offsets, metadata), every
 * tensor read and converted to `real`, and a parameter set loaded from the file (names, shapes and dtypes
 * checked before anything is written). The set is a small cINN whose converted reference file,
 * tests/data/convert/ref_cinn.safetensors, is a seed. fuzz.h says how it runs. */
#include "tests/fuzz/fuzz.h"

#include "flow.h"
#include "formats/safetensors.h"

int fuzz_safetensors(const uint8_t *data, size_t n) {
    StFile f;
    I2vError e;
    if (st_parse(&f, data, n, "fuzz.safetensors", &e)) return fuzz_names(&e, "fuzz.safetensors") ? 0 : -1;
    int ok = 1;
    for (size_t i = 0; i < f.n; i++) {
        Tensor *t = st_read_new(&f, f.entries[i].name, DT_REAL, &e);
        if (t) {
            ok &= t->numel == f.entries[i].numel;
            tensor_free(t);
        }
    }
    /* the tiny cINN of the converter's fixtures: z_dim 4, condition 8, hidden 4, depth 2, two blocks */
    static Flow flow;
    static int built;
    if (!built) {
        FlowConfig fc = {4, 8, 4, 2, 2, 0, 0};
        Rng r;
        rng_seed(&r, 1);
        flow_build(&flow, &fc, &r);
        built = 1;
    }
    StLoadOpts opts = {"flow.", 1, 0};
    int loaded = st_load_paramset(&f, &flow.ps, &opts, &e);
    ok &= loaded == -1 ? fuzz_names(&e, "fuzz.safetensors") : loaded == flow.ps.n;
    st_close(&f);
    return ok ? 0 : -1;
}

FUZZ_TARGET(fuzz_safetensors)
