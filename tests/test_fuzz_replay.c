/* test_fuzz_replay.c: the fuzz targets of tests/fuzz/ (make fuzz runs them under libFuzzer) replayed in
 * make test on their seed corpora and on every input a fuzzing run once found, saved under
 * tests/data/fuzz/<target>/. An input that crashes (or, in the SAN build, reads out of bounds or meets
 * undefined behaviour) ends this program, which the runner counts; a broken promise is a failed check.
 * The parsers do not depend on `real`, so the double build replays too. */
#include <dirent.h>
#include <stdio.h>

#include "check.h"
#include "formats/files.h"

#include "fuzz/fuzz_config.c"
#include "fuzz/fuzz_gif.c"
#include "fuzz/fuzz_jpeg.c"
#include "fuzz/fuzz_npy.c"
#include "fuzz/fuzz_png.c"
#include "fuzz/fuzz_safetensors.c"
#include "fuzz/fuzz_tfrecord.c"

typedef struct Target {
    const char *name;
    int (*run)(const uint8_t *data, size_t n);
    const char *seeds[5];     /* folders of seed inputs (make fuzz uses the same) */
    const char *prefix;       /* put before each seed (the config target's override line) */
} Target;

static const Target targets[] = {
    {"png", fuzz_png, {"tests/data/png"}, NULL},
    {"jpeg", fuzz_jpeg, {"tests/data/jpeg"}, NULL},
    {"gif", fuzz_gif, {"tests/data/gif"}, NULL},
    {"npy", fuzz_npy, {"tests/data/npy"}, NULL},
    {"safetensors", fuzz_safetensors, {"tests/data", "tests/data/convert"}, NULL},
    {"config", fuzz_config,
     {"configs/stage1_VAE", "configs/stage2_cINN_AE", "configs/stage2_cINN", "tests/data/convert"},
     "Training.lr=1e-4\n"},
    {"tfrecord", fuzz_tfrecord, {"tests/data/data"}, NULL},
};

/* Runs the target on every regular file of folder; returns how many failed, and counts the inputs. */
static int replay(const Target *t, const char *folder, const char *prefix, int *count) {
    DIR *d = opendir(folder);
    if (!d) return 0;
    int failed = 0;
    struct dirent *ent;
    while ((ent = readdir(d))) {
        if (ent->d_name[0] == '.') continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", folder, ent->d_name);
        uint8_t *buf;
        size_t n;
        I2vError e;
        if (read_file_bytes(path, &buf, &n, &e)) continue;   /* a folder */
        size_t pl = prefix ? strlen(prefix) : 0;
        uint8_t *in = xmalloc(pl + n + 1);
        if (pl) memcpy(in, prefix, pl);
        if (n) memcpy(in + pl, buf, n);
        if (!check(t->run(in, pl + n) == 0, "%s: %s breaks a promise of the parser", t->name, path)) failed++;
        (*count)++;
        free(in);
        free(buf);
    }
    closedir(d);
    return failed;
}

int main(void) {
    for (size_t i = 0; i < sizeof targets / sizeof *targets; i++) {
        const Target *t = &targets[i];
        int seeds = 0, found = 0;
        for (int k = 0; k < 5 && t->seeds[k]; k++) replay(t, t->seeds[k], t->prefix, &seeds);
        char dir[256];
        snprintf(dir, sizeof dir, "tests/data/fuzz/%s", t->name);
        replay(t, dir, NULL, &found);
        check(seeds > 0, "%s: %d seed inputs replayed", t->name, seeds);
        printf("%s: %d seeds and %d saved findings replayed\n", t->name, seeds, found);
    }
    /* the paramset load is reached: the converted reference cINN loads into the target's set */
    uint8_t *buf;
    size_t n;
    I2vError e;
    if (check(!read_file_bytes("tests/data/convert/ref_cinn.safetensors", &buf, &n, &e), "read ref_cinn")) {
        StFile f;
        StLoadOpts opts = {"flow.", 1, 0};
        fuzz_safetensors(buf, n);   /* builds the set */
        Flow fl;
        FlowConfig fc = {4, 8, 4, 2, 2, 0, 0};
        Rng r;
        rng_seed(&r, 1);
        flow_build(&fl, &fc, &r);
        check(!st_parse(&f, buf, n, "ref_cinn", &e) && st_load_paramset(&f, &fl.ps, &opts, &e) == fl.ps.n,
              "the safetensors target's parameter set is the one ref_cinn.safetensors holds: %s", e.msg);
        st_close(&f);
        flow_free(&fl);
        free(buf);
    }
    return check_summary("test_fuzz_replay");
}
