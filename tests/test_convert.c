/* test_convert.c: tools/convert_official.py end to end: the official-format checkpoints under tests/data/convert/
 * (made once with PyTorch by tools/make_convert_fixtures.py: zip and legacy formats, float16, bfloat16, float64,
 * transposed and permuted tensors, shared storages, a 'module.' prefix) are converted into a model folder and an
 * LPIPS file, which must hold exactly the tensors of the reference files (names, dtypes, shapes, bytes) and load
 * in i2v: model_load with its strict per-prefix name and shape checks, the two discriminators and LPIPS likewise,
 * every loaded value compared with the reference. Broken inputs must fail with a non-zero status and a message.
 * What it is not: a test of the networks (test_ae, test_cond_ae, test_flow, test_lpips do that).
 * Needs python3 (standard library only); without it the test says so and passes one check. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "ae.h"
#include "check.h"
#include "networks/lpips.h"
#include "program/model.h"
#include "networks/patchgan.h"
#include "formats/safetensors.h"

#define FIX "tests/data/convert/"
#define TOOL "python3 tools/convert_official.py"

static char g_dir[64];   /* the temporary folder */
static char g_log[128];  /* the last conversion's stdout and stderr */

/* Runs the converter with the given arguments (output to g_log); returns its exit status, -1 if it did not run. */
static int convert(const char *fmt, ...) I2V_PRINTF(1, 2);
static int convert(const char *fmt, ...) {
    char args[2048], cmd[2400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, TOOL " %s >%s 2>&1", args, g_log);
    int st = system(cmd);
    return st == -1 || !WIFEXITED(st) ? -1 : WEXITSTATUS(st);
}

/* Whether the last conversion's output contains `s`. */
static int log_has(const char *s) {
    FILE *f = fopen(g_log, "rb");
    if (!f) return 0;
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return strstr(buf, s) != NULL;
}

static int exists(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f) fclose(f);
    return f != NULL;
}

/* Writes the first `keep` bytes of src (all of them when keep is 0) to dst. */
static int copy_part(const char *src, const char *dst, long keep) {
    FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
    int ok = in && out;
    for (long i = 0; ok && (keep == 0 || i < keep); i++) {
        int c = fgetc(in);
        if (c == EOF) break;
        fputc(c, out);
    }
    if (in) fclose(in);
    if (out) fclose(out);
    return ok;
}

static long file_size(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n;
}

/* The converted file holds exactly the reference's tensors: same names, dtypes, shapes and bytes. */
static void compare_files(const char *out_path, const char *ref_path) {
    StFile out, ref;
    I2vError e;
    if (!check(st_open(&out, out_path, &e) == 0, "open %s: %s", out_path, e.msg)) return;
    if (!check(st_open(&ref, ref_path, &e) == 0, "open %s: %s", ref_path, e.msg)) {
        st_close(&out);
        return;
    }
    size_t bad = 0;
    for (size_t i = 0; i < ref.n; i++) {
        const StEntry *r = &ref.entries[i], *o = st_find(&out, r->name);
        const char *why = !o ? "missing" : o->dtype != r->dtype ? "dtype" : o->ndim != r->ndim ? "rank"
                          : memcmp(o->shape, r->shape, sizeof(size_t) * (size_t)r->ndim) ? "shape"
                          : o->nbytes != r->nbytes || memcmp(o->data, r->data, r->nbytes) ? "values" : NULL;
        if (why && bad++ < 5) printf("  %s: %s differs (%s)\n", out_path, r->name, why);
    }
    check(bad == 0 && out.n == ref.n, "%s: %zu tensors, the reference %zu; %zu differ in name, dtype, shape or bytes",
          out_path, out.n, ref.n, bad);
    const char *src = st_meta_get(&out, "source");
    check(src && strstr(src, "convert_official.py"), "%s: metadata names the converter", out_path);
    st_close(&out);
    st_close(&ref);
}

static const void *values(const Tensor *t) { return t->dtype == DT_REAL ? (const void *)t->data : t->ibuf; }

/* Every tensor that i2v loaded into ps equals the reference tensor prefix + its name, converted the same way. */
static void compare_loaded(const ParamSet *ps, const StFile *ref, const char *prefix, const char *what) {
    int bad = 0, nref = 0;
    size_t plen = strlen(prefix);
    for (size_t i = 0; i < ref->n; i++) nref += !strncmp(ref->entries[i].name, prefix, plen);
    for (int i = 0; i < ps->n; i++) {
        const Tensor *t = ps->t[i];
        char name[512];
        snprintf(name, sizeof name, "%s%s", prefix, t->name);
        I2vError e;
        Tensor *r = st_read_new(ref, name, t->dtype, &e);
        int same = r && r->numel == t->numel && !memcmp(values(r), values(t), t->numel * dtype_size(t->dtype));
        if (!same && bad++ < 5) printf("  %s: %s loaded other values than the reference\n", what, name);
        if (r) tensor_free(r);
    }
    check(bad == 0 && ps->n == nref, "%s: %d tensors loaded (the reference has %d under '%s'), %d differ", what, ps->n,
          nref, prefix, bad);
}

static void test_convert_model(void) {
    char dir[128], path[256];
    snprintf(dir, sizeof dir, "%s/model", g_dir);
    int rc = convert("stage1 --gen " FIX "gen.pth --enc " FIX "enc.pth.tar --disc-t " FIX "disc_t.pth --disc-s " FIX
                     "disc_s.pth --config " FIX "config_stage1.yaml --out %s", dir);
    check(rc == 0, "stage1 conversion (exit status %d; see %s)", rc, g_log);
    rc = convert("cond-ae --enc " FIX "encoder_stage2.pth --config " FIX "config_stage2_AE.yaml --out %s", dir);
    check(rc == 0, "cond-ae conversion (exit status %d; see %s)", rc, g_log);
    rc = convert("cinn --cinn " FIX "cINN.pth --config " FIX "config_stage2.yaml --out %s", dir);
    check(rc == 0, "cinn conversion (exit status %d; see %s)", rc, g_log);

    snprintf(path, sizeof path, "%s/stage1.safetensors", dir);
    compare_files(path, FIX "ref_stage1.safetensors");
    snprintf(path, sizeof path, "%s/cond_ae.safetensors", dir);
    compare_files(path, FIX "ref_cond_ae.safetensors");
    snprintf(path, sizeof path, "%s/cinn.safetensors", dir);
    compare_files(path, FIX "ref_cinn.safetensors");

    /* the folder loads as `i2v sample --model DIR` loads it: strict names and shapes per prefix, configs bound */
    Model m;
    I2vError e;
    if (!check(model_load(&m, dir, MODEL_ALL, NULL, NULL, &e) == 0, "model_load of the converted folder: %s", e.msg))
        return;
    StFile r1, ra, rc2;
    int ok = st_open(&r1, FIX "ref_stage1.safetensors", &e) == 0;
    ok = ok && st_open(&ra, FIX "ref_cond_ae.safetensors", &e) == 0;
    ok = ok && st_open(&rc2, FIX "ref_cinn.safetensors", &e) == 0;
    if (check(ok, "open the references: %s", e.msg)) {
        compare_loaded(&m.gen.ps, &r1, "gen.", "generator");
        compare_loaded(&m.enc.ps, &r1, "enc.", "video encoder");
        compare_loaded(&m.cond.ps, &ra, "enc.", "conditioning encoder");
        compare_loaded(&m.flow.ps, &rc2, "flow.", "cINN");
        check(m.z_dim == 4 && m.embed_dim == 8 && m.flow.cfg.n_flows == 2,
              "the configs came through (z_dim %d, embed_dim %d, n_flows %d)", m.z_dim, m.embed_dim,
              m.flow.cfg.n_flows);

        /* the optional discriminators load strictly into i2v's networks of the converted config */
        Rng rng;
        rng_seed(&rng, 1);
        TemporalDisc dt;
        PatchGan ds;
        disc_t_build(&dt, &m.s1.s1.Discriminator_Temporal, &rng);
        patchgan_build(&ds, &m.s1.s1.Discriminator_Patch, NULL, &rng);
        snprintf(path, sizeof path, "%s/stage1.safetensors", dir);
        StLoadOpts ot = {"disc_t.", 1, 0}, os_ = {"disc_s.", 1, 0};
        if (check(st_load_paramset_file(path, &dt.ps, &ot, &e) == dt.ps.n, "load disc_t.: %s", e.msg))
            compare_loaded(&dt.ps, &r1, "disc_t.", "temporal discriminator");
        if (check(st_load_paramset_file(path, &ds.ps, &os_, &e) == ds.ps.n, "load disc_s.: %s", e.msg))
            compare_loaded(&ds.ps, &r1, "disc_s.", "patch discriminator");
        disc_t_free(&dt);
        patchgan_free(&ds);
    }
    if (ok) {
        st_close(&r1);
        st_close(&ra);
        st_close(&rc2);
    }
    model_free(&m);

    /* an existing file is not overwritten without --force, and --force does it */
    rc = convert("cinn --cinn " FIX "cINN.pth --config " FIX "config_stage2.yaml --out %s", dir);
    check(rc == 1 && log_has("already exists"), "a second conversion into the folder is refused (status %d)", rc);
    rc = convert("cinn --cinn " FIX "cINN.pth --config " FIX "config_stage2.yaml --out %s --force", dir);
    check(rc == 0, "--force overwrites (status %d)", rc);
}

/* `model`: the three stages from folders laid out as the official scripts leave them (file names as the official
 * configs give them, e.g. Encoder_stage2 for a file saved as encoder_stage2.pth). */
static void test_convert_folders(void) {
    static const char *const files[][2] = {
        {"gen.pth", "s1/best_PFVD_GEN.pth"},          {"enc.pth.tar", "s1/best_PFVD_ENC.pth.tar"},
        {"config_stage1.yaml", "s1/config_stage1.yaml"}, {"encoder_stage2.pth", "ae/encoder_stage2.pth"},
        {"config_stage2_AE.yaml", "ae/config_stage2_AE.yaml"}, {"cINN.pth", "s2/cINN.pth"},
        {"config_stage2.yaml", "s2/config_stage2.yaml"},
    };
    char cmd[256], src[256], dst[256];
    snprintf(cmd, sizeof cmd, "mkdir -p %s/off/s1 %s/off/ae %s/off/s2", g_dir, g_dir, g_dir);
    int ok = system(cmd) == 0;
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(src, sizeof src, FIX "%s", files[i][0]);
        snprintf(dst, sizeof dst, "%s/off/%s", g_dir, files[i][1]);
        ok = ok && copy_part(src, dst, 0);
    }
    if (!check(ok, "lay out the official folders in %s/off", g_dir)) return;
    int rc = convert("model --cinn-dir %s/off/s2 --stage1-dir %s/off/s1 --ae-dir %s/off/ae --out %s/folder", g_dir,
                     g_dir, g_dir, g_dir);
    check(rc == 0, "model conversion (exit status %d; see %s)", rc, g_log);
    const char *outs[][2] = {{"stage1.safetensors", FIX "ref_stage1.safetensors"},
                             {"cond_ae.safetensors", FIX "ref_cond_ae.safetensors"},
                             {"cinn.safetensors", FIX "ref_cinn.safetensors"}};
    for (int i = 0; i < 3; i++) {
        snprintf(dst, sizeof dst, "%s/folder/%s", g_dir, outs[i][0]);
        StFile out, ref;
        I2vError e;
        if (!check(st_open(&out, dst, &e) == 0, "open: %s", e.msg)) continue;
        if (!check(st_open(&ref, outs[i][1], &e) == 0, "open: %s", e.msg)) {
            st_close(&out);
            continue;
        }
        /* the same tensors as the single conversions, less the discriminators (not part of a released model) */
        size_t same = 0, nref = 0;
        for (size_t k = 0; k < ref.n; k++) {
            const StEntry *r = &ref.entries[k], *o = st_find(&out, r->name);
            if (!strncmp(r->name, "disc_", 5)) continue;
            nref++;
            same += o && o->dtype == r->dtype && o->nbytes == r->nbytes && !memcmp(o->data, r->data, r->nbytes);
        }
        check(same == nref && out.n == nref, "%s: %zu of %zu tensors as the reference (file has %zu)", dst, same, nref,
              out.n);
        st_close(&out);
        st_close(&ref);
    }
    Model m;
    I2vError e;
    snprintf(dst, sizeof dst, "%s/folder", g_dir);
    if (check(model_load(&m, dst, MODEL_ALL, NULL, NULL, &e) == 0, "model_load of %s: %s", dst, e.msg)) model_free(&m);
}

static void test_convert_lpips(void) {
    char path[256];
    snprintf(path, sizeof path, "%s/lpips.safetensors", g_dir);
    int rc = convert("lpips --lin " FIX "lpips_lin.pth --vgg " FIX "vgg16_small.pth --widths 3,4,5,6,7 --out %s", path);
    check(rc == 0, "lpips conversion (exit status %d; see %s)", rc, g_log);
    compare_files(path, FIX "ref_lpips.safetensors");
    LpipsConfig cfg = {{3, 4, 5, 6, 7}};
    Lpips l;
    lpips_build(&l, &cfg);
    I2vError e;
    StFile ref;
    if (check(lpips_load(&l, path, &e) == 0, "lpips_load of the converted file: %s", e.msg) &&
        check(st_open(&ref, FIX "ref_lpips.safetensors", &e) == 0, "%s", e.msg)) {
        compare_loaded(&l.ps, &ref, "", "LPIPS");
        st_close(&ref);
    }
    lpips_free(&l);
    /* the real VGG16 widths are the default: this stand-in then fails by name and shape */
    snprintf(path, sizeof path, "%s/lpips_full.safetensors", g_dir);
    rc = convert("lpips --lin " FIX "lpips_lin.pth --vgg " FIX "vgg16_small.pth --out %s", path);
    check(rc == 1 && log_has("features.0.weight has shape (3, 3, 3, 3), expected (64, 3, 3, 3)") && !exists(path),
          "the stand-in VGG at the default widths is refused with the name and both shapes (status %d)", rc);
}

static void test_bad_inputs(void) {
    char bad[160], out[160], path[200];
    snprintf(out, sizeof out, "%s/bad_out", g_dir);
    struct {
        const char *what, *src, *message;
        long keep;   /* bytes of src kept; 0: a text file instead */
    } cases[] = {
        {"a text file", NULL, "not a PyTorch checkpoint", 0},
        {"a truncated zip checkpoint", FIX "gen.pth", "not a PyTorch checkpoint", 4000},
        {"a legacy checkpoint cut in its pickle", FIX "enc.pth.tar", "not a readable PyTorch checkpoint", 3000},
        {"a legacy checkpoint cut in its storages", FIX "enc.pth.tar", "truncated", -1},
        {"a pickled nn.Module", FIX "whole_module.pth", "not a state_dict", 0},
        {"a safetensors file", FIX "ref_cinn.safetensors", "safetensors file already", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        snprintf(bad, sizeof bad, "%s/bad%zu.pth", g_dir, i);
        if (!cases[i].src) {
            FILE *f = fopen(bad, "wb");
            if (f) {
                fputs("Encoder:\n  z_dim: 64\n", f);
                fclose(f);
            }
        } else {
            long keep = cases[i].keep < 0 ? file_size(cases[i].src) - 100 : cases[i].keep;
            copy_part(cases[i].src, bad, keep);
        }
        int rc = convert("cinn --cinn %s --config " FIX "config_stage2.yaml --out %s", bad, out);
        check(rc == 1 && log_has(cases[i].message) && log_has(bad),
              "%s: exit status %d (want 1) and a message with the file name and '%s'", cases[i].what, rc,
              cases[i].message);
    }
    /* swapped arguments: the generator file given as the encoder and vice versa */
    int rc = convert("stage1 --gen " FIX "enc.pth.tar --enc " FIX "gen.pth --config " FIX "config_stage1.yaml --out %s",
                     out);
    check(rc == 1 && log_has("looks like the stage-1 encoder"), "swapped --gen/--enc are named (status %d)", rc);
    /* a config of the wrong stage */
    rc = convert("cinn --cinn " FIX "cINN.pth --config " FIX "config_stage1.yaml --out %s", out);
    check(rc == 1 && log_has("not a cinn config"), "a stage-1 config given to cinn is refused (status %d)", rc);
    snprintf(path, sizeof path, "%s/cinn.safetensors", out);
    check(!exists(path), "nothing is written when a conversion fails");
}

/* A cINN config saved by an older official version lacks Training.control (the official repository's issues
 * #1 and #3): conversion fills it, and the other keys the official code reads, with the official value and
 * says so; an up-to-date config is copied unchanged. */
static void test_missing_keys(void) {
    char in[200], out[200];
    snprintf(in, sizeof in, "%s/old_config_stage2.yaml", g_dir);
    snprintf(out, sizeof out, "%s/filled.yaml", g_dir);
    FILE *f = fopen(in, "w");
    if (!f) return;
    fputs("Flow:\n  n_flows: 2\n  flow_hidden_depth: 2\n  flow_mid_channels_factor: 1\nConditioning_Model:\n"
          "  z_dim: 8\n  checkpoint_name: 'Encoder_stage2'\n  model_name: ''\n  model_path: ''\n"
          "First_stage_model:\n  checkpoint_encoder: 'best_PFVD_ENC'\n  checkpoint_decoder: 'best_PFVD_GEN'\n"
          "  model_name: ''\n  model_path: ''\nTraining:\n  n_epochs: 10\n  lr: 0.001\n\nData:\n  img_size: 32\n",
          f);
    fclose(f);
    check(convert("config --kind cinn %s %s", in, out) == 0 && log_has("filled Training.control: False") &&
              !log_has("filled Flow"),
          "the missing Training.control is filled and named, nothing else");
    StageSetup s;
    I2vError e;
    Config c;
    if (check(config_load(&c, out, &e) == 0, "read the filled config: %s", e.msg)) {
        CfgNode *ctl = config_find(&c, "Training.control"), *lr = config_find(&c, "Training.lr");
        check(ctl && !strcmp(ctl->text, "False") && lr && !strcmp(lr->text, "0.001"), "in its section, the rest kept");
        char *yaml = config_to_yaml(&c);
        check(setup_from_yaml(STAGE2, yaml, out, &s, &e) == 0 && s.s2.Training.control == 0, "and i2v binds it: %s",
              e.msg);
        setup_free(&s);
        free(yaml);
        config_free(&c);
    }
    check(convert("config --kind cinn configs/stage2_cINN/bair_config.yaml %s", out) == 0 && !log_has(": filled"),
          "a current official config needs nothing filled");
}

int main(void) {
    if (system("python3 -c 'import zipfile' >/dev/null 2>&1") != 0) {
        printf("test_convert: skipped: no python3 on the PATH (tools/convert_official.py is not tested)\n");
        check(1, "skipped: no python3");
        return check_summary("test_convert");
    }
    double t0 = now_seconds();
    snprintf(g_dir, sizeof g_dir, "/tmp/i2v_convert_XXXXXX");
    if (!mkdtemp(g_dir)) {
        check(0, "mkdtemp failed");
        return check_summary("test_convert");
    }
    snprintf(g_log, sizeof g_log, "%s/log.txt", g_dir);
    test_convert_model();
    test_convert_folders();
    test_convert_lpips();
    test_bad_inputs();
    test_missing_keys();
    if (check_nfailed == 0) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
        check(system(cmd) == 0, "remove %s", g_dir);
    } else {
        printf("test_convert: the files are kept in %s\n", g_dir);
    }
    printf("test_convert: %.2f s\n", now_seconds() - t0);
    return check_summary("test_convert");
}
