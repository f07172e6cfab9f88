/* test_convert_nets.c: tools/convert_metric_nets.py end to end on the reduced-width torch.save files of
 * tests/data/features/ (made by tools/make_features_reference.py in the published files' layouts: bare state_dicts
 * and a dict holding 'state_dict', legacy and zip formats, with the tensors the networks do not use). Each
 * conversion must hold exactly the tensors of the committed safetensors file the network tests load (names, dtypes,
 * shapes, bytes) and load in i2v; a file of another network, a file that is not a checkpoint and an existing output
 * without --force must fail with a message and leave nothing behind.
 * Needs python3 (standard library only); without it the test says so and passes one check. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "formats/safetensors.h"
#include "networks/features.h"
#include "shell.h"

#define FIX "tests/data/features/"

static char g_log[128];

static int convert(const char *fmt, ...) I2V_PRINTF(1, 2);
static int convert(const char *fmt, ...) {
    char args[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    return shell_run(g_log, "", "python3 tools/convert_metric_nets.py %s", args);
}

static int log_has(const char *s) { return shell_file_has(g_log, s); }

static int same_tensors(const char *got_path, const char *want_path) {
    StFile a, b;
    I2vError err;
    if (st_open(&a, got_path, &err)) {
        check(0, "%s", err.msg);
        return 0;
    }
    if (st_open(&b, want_path, &err)) {
        check(0, "%s", err.msg);
        st_close(&a);
        return 0;
    }
    int ok = a.n == b.n;
    for (size_t i = 0; ok && i < a.n; i++) {
        const StEntry *x = &a.entries[i], *y = &b.entries[i];
        ok = !strcmp(x->name, y->name) && x->dtype == y->dtype && x->ndim == y->ndim && x->nbytes == y->nbytes &&
             !memcmp(x->shape, y->shape, sizeof x->shape) && !memcmp(x->data, y->data, x->nbytes);
        if (!ok) printf("  %s: first difference at %s\n", got_path, x->name);
    }
    st_close(&a);
    st_close(&b);
    return ok;
}

int main(void) {
    if (system("python3 -c 'import zipfile' >/dev/null 2>&1") != 0) {
        printf("test_convert_nets: skipped: no python3 on the PATH (tools/convert_metric_nets.py is not tested)\n");
        check(1, "skipped: no python3");
        return check_summary("test_convert_nets");
    }
    char dir[64], out[128];
    snprintf(dir, sizeof dir, "/tmp/i2v_convert_nets_%d", (int)getpid());
    snprintf(g_log, sizeof g_log, "%s.log", dir);
    static const struct {
        const char *net;
        FeatureKind kind;
    } nets[] = {{"i3d", FEAT_I3D}, {"dti3d", FEAT_DTI3D16}, {"inception", FEAT_INCEPTION}, {"vgg16", FEAT_VGG16}};
    for (int i = 0; i < 4; i++) {
        snprintf(out, sizeof out, "%s/%s.safetensors", dir, nets[i].net);
        int rc = convert("%s " FIX "%s_w64.pth %s", nets[i].net, nets[i].net, out);
        if (!check(rc == 0, "convert %s: exit %d", nets[i].net, rc)) continue;
        char want[128];
        snprintf(want, sizeof want, FIX "%s_w64.safetensors", nets[i].net);
        check(same_tensors(out, want), "convert %s: exactly the tensors of %s", nets[i].net, want);
        FeatureNet f;
        I2vError err;
        int lr = feature_net_load_width(&f, nets[i].kind, 64, out, &err);
        check(lr == 0, "the converted %s loads: %s", nets[i].net, lr ? err.msg : "");
        if (!lr) feature_net_free(&f);
    }
    /* another network's file */
    snprintf(out, sizeof out, "%s/wrong.safetensors", dir);
    int rc = convert("dti3d " FIX "i3d_w64.pth %s", out);
    check(rc == 1 && log_has("i3d_w64.pth") && log_has("convert it as i3d") && access(out, F_OK) != 0,
          "the I3D port converted as dti3d: exit %d with a hint, no output", rc);
    /* not a checkpoint */
    rc = convert("vgg16 " FIX "vgg16_w64.safetensors %s", out);
    check(rc == 1 && log_has("not a PyTorch checkpoint") && access(out, F_OK) != 0,
          "a safetensors file given as input: exit %d, no output", rc);
    /* an existing output is kept */
    snprintf(out, sizeof out, "%s/vgg16.safetensors", dir);
    rc = convert("vgg16 " FIX "vgg16_w64.pth %s", out);
    check(rc == 1 && log_has("--force"), "an existing output needs --force (exit %d)", rc);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s %s", dir, g_log);
    if (system(cmd) != 0) printf("note: could not remove %s\n", dir);
    return check_summary("test_convert_nets");
}
