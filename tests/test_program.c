/* test_program.c: the i2v program end to end at the tiny configs (seconds per command), as a user runs it:
 * train each stage a few steps, save, load in a fresh process, sample; the same seed gives the same video
 * bit for bit; residuals read from a file give the in-process result; --resume equals the uninterrupted
 * run; a truncated checkpoint is detected and a failed save leaves the previous checkpoint intact; every
 * official config parses and builds its networks; bad input gives a clear message and a non-zero exit.
 * Runs ./i2v, which `make test` builds first. */
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "formats/files.h"
#include "formats/gif.h"
#include "formats/imageio.h"
#include "formats/npy.h"
#include "formats/png.h"
#include "program/setup.h"
#include "shell.h"

static char dir[256];

/* Runs a shell command line with I2V_THREADS=1, output into dir/out.txt; returns the exit status. */
static int run(const char *fmt, ...) I2V_PRINTF(1, 2);
static int run(const char *fmt, ...) {
    char out[300];
    snprintf(out, sizeof out, "%s/out.txt", dir);
    va_list ap;
    va_start(ap, fmt);
    int rc = shell_vrun(out, "export I2V_THREADS=1;", fmt, ap);
    va_end(ap);
    return rc;
}

/* Does dir/out.txt contain s? */
static int output_has(const char *s) {
    char path[300];
    snprintf(path, sizeof path, "%s/out.txt", dir);
    return shell_file_has(path, s);
}

/* Starts a shell command line in the background (I2V_THREADS=1, output into dir/spawn.txt); its `exec`
 * makes the returned pid the program's own, for signals. */
static pid_t spawn(const char *fmt, ...) I2V_PRINTF(1, 2);
static pid_t spawn(const char *fmt, ...) {
    char cmd[4096], full[4600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    snprintf(full, sizeof full, "exec %s > %s/spawn.txt 2>&1", cmd, dir);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        setenv("I2V_THREADS", "1", 1);
        execl("/bin/sh", "sh", "-c", full, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Waits (up to 60 s) until path exists; returns 1 if it does. */
static int wait_for_file(const char *path) {
    for (int i = 0; i < 6000; i++) {
        if (access(path, F_OK) == 0) return 1;
        sleep_ms(10);
    }
    return 0;
}

/* The exit status of a spawned process: its code, or 128 + the signal that ended it. */
static int finish(pid_t pid) {
    int st = 0;
    while (waitpid(pid, &st, 0) < 0) {
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Checks a loss log: one header, then rows of steps 0 .. n-1 in order, each with `cols` fields. */
static int log_is_whole(const char *path, int n, int cols) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[8192];
    int ok = fgets(line, sizeof line, f) && !strncmp(line, "step,epoch,seconds,", 19), rows = 0;
    while (ok && fgets(line, sizeof line, f)) {
        int fields = 1;
        for (char *c = line; *c; c++) fields += *c == ',';
        ok = fields == cols && atol(line) == rows && line[strlen(line) - 1] == '\n';
        rows++;
    }
    fclose(f);
    return ok && rows == n;
}

static int same_files(const char *a, const char *b) {
    uint8_t *x, *y;
    size_t nx, ny;
    I2vError e;
    if (read_file_bytes(a, &x, &nx, &e)) return 0;
    if (read_file_bytes(b, &y, &ny, &e)) {
        free(x);
        return 0;
    }
    int same = nx == ny && !memcmp(x, y, nx);
    free(x);
    free(y);
    return same;
}

/* The loss columns (everything after step,epoch,seconds) of a CSV written by a training command. */
static void loss_columns(const char *path, char *out, size_t cap) {
    FILE *f = fopen(path, "r");
    out[0] = 0;
    if (!f) return;
    char line[4096];
    size_t k = 0;
    while (fgets(line, sizeof line, f)) {
        char *p = line;
        for (int c = 0; c < 3 && p; c++) p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL;
        if (p && k + strlen(p) < cap) {
            memcpy(out + k, p, strlen(p) + 1);
            k += strlen(p);
        }
    }
    fclose(f);
}

/* samples.gif and samples_last.png of `sample -n 3` with one 32-pixel start image: one row of four tiles (the
 * start frame, then the three videos), each enlarged 4 times, 2 white pixels apart; the first tile is the
 * start image in every frame; the PNG is laid out as the GIF */
/* <out>/<name>.gif and <name>_last.png hold a grid of rows x cols tiles of the 32-pixel videos enlarged to 128
 * pixels, 2 pixels apart, T frames in the GIF: what sample and control write (program/visual.c). */
static int grid_shape(const char *out, const char *name, int rows, int cols, int T) {
    char path[400];
    I2vError e;
    uint8_t *gif = NULL, *rgb = NULL;
    size_t n, frames, w, h;
    snprintf(path, sizeof path, "%s/%s.gif", out, name);
    int ok = !read_file_bytes(path, &gif, &n, &e) && !gif_decode(gif, n, path, &rgb, &frames, &w, &h, &e);
    free(gif);
    free(rgb);
    if (!check(ok, "%s decodes", path)) return 0;
    size_t want_w = (size_t)cols * (128 + 2) + 2, want_h = (size_t)rows * (128 + 2) + 2;
    ok = check(w == want_w && h == want_h && frames == (size_t)T, "%s: %zu x %zu, %zu frames (want %zu x %zu, %d)", path,
               w, h, frames, want_w, want_h, T);
    Image png;
    snprintf(path, sizeof path, "%s/%s_last.png", out, name);
    if (!check(!png_read(path, &png, &e), "%s reads", path)) return 0;
    ok &= check(png.width == want_w && png.height == want_h, "%s has the GIF's layout", path);
    image_free(&png);
    return ok;
}

static void check_pictures(const char *out, const char *img) {
    char path[400];
    I2vError e;
    uint8_t *gif = NULL, *rgb = NULL;
    size_t n, frames, w, h;
    snprintf(path, sizeof path, "%s/samples.gif", out);
    int ok = !read_file_bytes(path, &gif, &n, &e) && !gif_decode(gif, n, path, &rgb, &frames, &w, &h, &e);
    if (!check(ok, "samples.gif decodes")) return;
    check(w == 4 * (128 + 2) + 2 && h == 128 + 4 && frames == 8, "samples.gif: 1 x 4 tiles of 128 px and 8 frames (%zu x %zu, %zu)",
          w, h, frames);
    Image src, png;
    if (check(!image_read(img, &src, &e) && !png_read((snprintf(path, sizeof path, "%s/samples_last.png", out), path), &png, &e),
              "read the start image and samples_last.png")) {
        check(png.width == w && png.height == h && png.channels == 3, "the PNG has the GIF's layout (%zu x %zu)", png.width,
              png.height);
        /* the GIF's palette (256 colours for everything) moves colours a little; the PNG is exact */
        int still = 1, near = 1, exact = 1;
        for (size_t t = 0; t < frames; t++)
            for (size_t y = 0; y < 128; y++)
                for (size_t x = 0; x < 128; x++)
                    for (int c = 0; c < 3; c++) {
                        size_t at = ((2 + y) * w + 2 + x) * 3 + (size_t)c;
                        int v = rgb[t * h * w * 3 + at], want = (int)image_sample(&src, y / 4, x / 4, c);
                        still &= v == rgb[at];
                        near &= abs(v - want) <= 16;
                        if (t == 0) exact &= png.data[at] == want;
                    }
        check(still && near, "the GIF's first tile is the start image, enlarged, in every frame");
        check(exact, "the PNG's first tile is the start image, enlarged");
        image_free(&src);
        image_free(&png);
    }
    free(gif);
    free(rgb);
}

static void test_pipeline(void) {
    char m[300], a[300], b[300], img[300], drive[300];
    snprintf(m, sizeof m, "%s/model", dir);
    check(run("./i2v train-stage1 --config tiny --out %s --steps 3 --eval-batches 1", m) == 0, "train-stage1 runs");
    check(run("./i2v train-cond-ae --config tiny --out %s --steps 3", m) == 0, "train-cond-ae runs");
    check(run("./i2v train-cinn --config tiny --out %s --steps 4 --eval-batches 1", m) == 0, "train-cinn runs");
    /* one definition of the likelihood in the log: nll = loss + 0.5 D log(2 pi), bits/dim = nll / (D log 2) */
    char csvp[400];
    snprintf(csvp, sizeof csvp, "%s/cinn_losses.csv", m);
    FILE *f = fopen(csvp, "r");
    char line[1024];
    int rows = 0, agree = 1;
    const double D = 16;   /* the tiny stage-1 config's z_dim */
    while (f && fgets(line, sizeof line, f)) {
        double step, epoch, secs, loss, nll, ld, bpd;
        if (sscanf(line, "%lf,%lf,%lf,%lf,%lf,%lf,%lf", &step, &epoch, &secs, &loss, &nll, &ld, &bpd) != 7) continue;
        agree &= fabs(nll - (loss + 0.5 * D * log(2 * I2V_PI))) < 1e-4 && fabs(bpd - nll / (D * log(2.0))) < 1e-4;
        rows++;
    }
    if (f) fclose(f);
    check(rows == 4 && agree, "the cINN log's nll includes the Gaussian constant and bits_per_dim is the same NLL");
    check(run("./i2v prepare synthetic --out %s/frames --videos 1 --size 32", dir) == 0, "prepare synthetic runs");
    snprintf(img, sizeof img, "%s/frames/train/traj_0_to_0/1/0.png", dir);
    snprintf(drive, sizeof drive, "%s/frames/train/traj_0_to_0/1", dir);
    /* sampling in fresh processes: same seed, same bits; residuals from the file, the same videos */
    snprintf(a, sizeof a, "%s/s1", dir);
    snprintf(b, sizeof b, "%s/s2", dir);
    check(run("./i2v sample --model %s --image %s -n 3 --seed 7 --out %s", m, img, a) == 0, "sample runs");
    check(run("./i2v sample --model %s --image %s -n 3 --seed 7 --out %s", m, img, b) == 0, "sample runs again");
    char fa[400], fb[400];
    snprintf(fa, sizeof fa, "%s/samples.npy", a);
    snprintf(fb, sizeof fb, "%s/samples.npy", b);
    check(same_files(fa, fb), "the same seed gives the same videos bit for bit");
    check_pictures(a, img);
    check(run("./i2v sample --help") == 0 && output_has("NAME.gif") && output_has("NAME_last.png") &&
              output_has("NAME.npy") && output_has("NAME_nu.npy"),
          "sample --help names the files sample writes");
    check(run("./i2v sample --model %s --image %s -n 3 --seed 8 --out %s", m, img, b) == 0 && !same_files(fa, fb),
          "another seed gives other videos");
    check(run("./i2v sample --model %s --image %s --image %s -n 2 --out %s/two", m, img, img, dir) == 0 &&
              grid_shape(dir, "two/samples", 2, 3, 8),
          "two start images: two rows of the start frame and 2 videos");
    check(run("./i2v sample --model %s --image %s -n 3 --nu %s/samples_nu.npy --out %s", m, img, a, b) == 0 &&
              same_files(fa, fb),
          "residuals read from a file reproduce the sampled videos");
    /* longer videos than the generator makes: the first 8 frames are the plain sample's (same residuals), the
     * rest continue from the last frame as the new start frame */
    check(run("./i2v sample --model %s --image %s -n 3 --nu %s/samples_nu.npy --frames 12 --out %s", m, img, a, b) == 0,
          "sample --frames 12 runs");
    NpyArray short_v = {0}, long_v = {0};
    I2vError ne;
    if (check(!npy_read(fa, &short_v, &ne) && !npy_read(fb, &long_v, &ne), "read both sample files") &&
        check(short_v.ndim == 5 && long_v.ndim == 5 && long_v.shape[1] == 12 && short_v.shape[1] == 8 &&
                  long_v.shape[0] == 3,
              "12 frames from an 8-frame generator (shapes %zu and %zu frames)", long_v.shape[1], short_v.shape[1])) {
        size_t frame = short_v.count / (short_v.shape[0] * short_v.shape[1]);
        int same = 1, moved = 0;
        for (size_t v = 0; v < 3; v++) {
            const float *sv = (const float *)short_v.data + v * 8 * frame, *lv = (const float *)long_v.data + v * 12 * frame;
            same &= !memcmp(sv, lv, 8 * frame * sizeof(float));
            moved |= memcmp(lv + 7 * frame, lv + 8 * frame, frame * sizeof(float)) != 0;
        }
        check(same && moved, "the first 8 frames equal the plain sample's and the video goes on");
    }
    npy_free(&short_v);
    npy_free(&long_v);
    check(run("./i2v transfer --model %s --driving %s --image %s --out %s/t", m, drive, img, dir) == 0,
          "transfer runs");
    check(run("./i2v evaluate --model %s --clips 2 --samples 1", m) == 0 && output_has("recon_psnr_db="),
          "evaluate runs and reports");
    check(run("./i2v control --model %s --image %s --endpoint 0.5,0.5,0.5", m, img) == 1 &&
              output_has("without control"),
          "control on an uncontrolled cINN says what to do instead");
    check(run("./i2v inspect %s/stage1.safetensors", m) == 0 && output_has("gen.fc.weight") &&
              output_has("train.step: 3"),
          "inspect lists tensors and training state");
}

/* i2v finds its configs and split lists from any working directory (beside the program, in an installed
 * share/i2v/configs, or the source tree's compiled in); make install and make CUDA=1 say what they do. */
static void test_anywhere(void) {
    char cwd[1024];
    if (!getcwd(cwd, sizeof cwd)) return;
    check(run("cd %s && %s/i2v train-cond-ae --config tiny --out cwd_run --steps 1", dir, cwd) == 0,
          "a built-in config name works from another working directory");
    check(run("mkdir -p %s/alone && cp ./i2v %s/alone/i2v && cd %s && alone/i2v train-cond-ae --config tiny --out "
              "alone_run --steps 1", dir, dir, dir) == 0,
          "and for a copy of the program elsewhere");
    check(run("mkdir -p %s/prefix/bin %s/prefix/share/i2v && cp ./i2v %s/prefix/bin/ && cp -R configs "
              "%s/prefix/share/i2v/ && cd / && %s/prefix/bin/i2v train-cond-ae --config tiny --out %s/inst_run --steps 1",
              dir, dir, dir, dir, dir, dir) == 0,
          "and for the installed layout");
    /* the default split lists (configs/splits, relative) are found the same way */
    DataConfig dc;
    data_config_default(&dc);
    if (check(chdir("/") == 0, "chdir /")) {
        setup_resolve_paths(&dc);
        char probe[1200];
        snprintf(probe, sizeof probe, "%s/landscape/train.txt", dc.splits_dir);
        check(access(probe, R_OK) == 0, "the split lists from another directory: %s", dc.splits_dir);
        check(chdir(cwd) == 0, "chdir back");
    }
    /* a real install of the ./i2v at hand (-o i2v: not rebuilt, whichever variant this is); from /, the
     * installed program reads the installed configs, as its messages' paths show */
    check(run("make -s -o i2v install PREFIX=%s/pfx && cd / && %s/pfx/bin/i2v train-cond-ae --config tiny --out %s/x "
              "Training.bs=ten", dir, dir, dir) == 1 &&
              output_has("/pfx/") && output_has("share/i2v/configs/stage2_cINN_AE/tiny_config.yaml"),
          "make install PREFIX puts the program and the configs there, and the program finds them");
    /* make CUDA=1 builds the GPU program with nvcc and the CUDA libraries; plain make links neither */
    check(run("make -n -B CUDA=1 i2v") == 0 && output_has("nvcc") && output_has("-lcudart") && output_has("-lcudnn"),
          "make CUDA=1 compiles cuda/ with nvcc and links cudart, cuBLAS and cuDNN");
    check(run("make -n -B i2v") == 0 && !output_has("nvcc") && !output_has("-lcud") && !output_has(" cuda/"),
          "plain make touches no CUDA file");
}

/* prepare landscape|iPER|DTDB: landscape's official renaming (to frame<k>.jpg in the natural order of the
 * names' last 11 characters), then the folder checked as the loaders read it, the first bad path named. */
static void test_prepare(void) {
    char r[300];
    snprintf(r, sizeof r, "%s/land", dir);
    check(run("./i2v prepare synthetic --out %s --layout landscape --videos 2 --size 32", r) == 0, "a landscape layout");
    /* the frames of one clip under download-like names: <clip>_frames_<8 digits of k + 1>.jpg, listed in an order
     * that is not the frames' */
    char clip[400], cmd[2000];
    snprintf(clip, sizeof clip, "%s/sky_train/a000/a000_1", r);
    snprintf(cmd, sizeof cmd, "cd %s && cp frame3.jpg ../keep3.jpg && for k in $(seq 0 29); do mv frame$k.jpg "
                              "a000_1_frames_$(printf %%08d $((k + 1))).jpg; done", clip);
    check(run("%s", cmd) == 0, "frames renamed as downloaded");
    check(run("./i2v prepare landscape %s --splits %s/splits", r, r) == 0 && output_has("renamed 30 frames") &&
              output_has("train: 2 videos"),
          "prepare landscape renames them and checks the splits");
    char a[500], b[500];
    snprintf(a, sizeof a, "%s/frame3.jpg", clip);
    snprintf(b, sizeof b, "%s/sky_train/a000/keep3.jpg", r);
    check(same_files(a, b), "frame3.jpg is the fourth frame again");
    check(run("./i2v prepare landscape %s --splits %s/splits", r, r) == 0 && output_has("renamed 0 frames"),
          "a second run changes nothing");
    check(run("rm %s/frame12.jpg && ./i2v prepare landscape %s --splits %s/splits", clip, r, r) == 1 &&
              output_has("frame12.jpg is missing") && output_has("a000_1"),
          "a missing frame is named");
    check(run("./i2v prepare landscape %s", r) == 1 && output_has("listed in"),
          "with the official split lists the synthetic clips are missing, named with the list");
    snprintf(r, sizeof r, "%s/iper", dir);
    check(run("./i2v prepare synthetic --out %s --layout iper --videos 2 --size 32 && ./i2v prepare iPER %s --splits "
              "%s/splits", r, r, r) == 0 && output_has("iPER in"),
          "prepare iPER checks an iPER layout");
    snprintf(r, sizeof r, "%s/dtdb", dir);
    check(run("./i2v prepare synthetic --out %s --layout dtdb --videos 2 --size 32 && ./i2v prepare DTDB %s --texture "
              "clouds", r, r) == 0 && output_has("DTDB in"),
          "prepare DTDB checks a DTDB layout");
    check(run("./i2v prepare DTDB %s --texture fire", r) == 1 && output_has("fire"), "a missing texture is named");
    check(run("./i2v prepare DTDB %s", r) == 2 && output_has("--texture"), "DTDB needs --texture");
}

/* evaluate takes Data.* overrides (another data set for the same model), measures a folder with stage 1
 * only, and says when it resizes frames or start images of another size. */
static void test_evaluate(void) {
    char m[300];
    snprintf(m, sizeof m, "%s/model", dir);
    check(run("./i2v prepare synthetic --out %s/bair48 --videos 2 --size 48", dir) == 0, "a BAIR layout of 48 px frames");
    check(run("./i2v evaluate --model %s --clips 2 --samples 1 Data.dataset=BAIR Data.data_path=%s/bair48", m, dir) == 0 &&
              output_has("test_nll=") && output_has("frames of 48 x 48 are resized to 32 x 32"),
          "evaluate on another data set through Data.* overrides, saying it resizes the frames");
    check(run("./i2v evaluate --model %s Training.lr=1", m) == 2 && output_has("only Data.key=value"),
          "evaluate refuses overrides of the networks' keys");
    check(run("mkdir -p %s/s1only && cp %s/config_stage1.yaml %s/stage1.safetensors %s/s1only/", dir, m, m, dir) == 0 &&
              run("./i2v evaluate --model %s/s1only --clips 2", dir) == 0 && output_has("recon_psnr_db=") &&
              !output_has("test_nll="),
          "a folder with stage 1 only is measured for its reconstructions");
    check(run("./i2v sample --model %s --image %s/bair48/train/traj_0_to_1/1/0.png -n 1 --out %s/s48", m, dir, dir) == 0 &&
              output_has("48 x 48, resized to 32 x 32"),
          "sample says it resizes a start image of another size");
}

/* A cINN trained on another folder's stages makes a folder that sample opens (its config names the other
 * folder by an absolute path, also when it was given relative), and --cinn takes absolute paths. */
static void test_model_folders(void) {
    char cwd[1024], img[300];
    if (!getcwd(cwd, sizeof cwd)) return;
    snprintf(img, sizeof img, "%s/frames/train/traj_0_to_0/1/0.png", dir);
    check(run("./i2v train-cinn --config tiny --stage1 %s/model --cond-ae %s/model --out %s/only_cinn --steps 2 "
              "--eval-batches 1", dir, dir, dir) == 0,
          "train-cinn into a folder of its own");
    check(run("./i2v sample --model %s/only_cinn --image %s -n 1 --out %s/s_only", dir, img, dir) == 0,
          "sample opens a folder whose cINN was trained on another folder's stages");
    check(run("cd %s && %s/i2v train-cinn --config %s/configs/stage2_cINN/tiny_config.yaml --stage1 model --ae model "
              "--out rel_cinn --steps 2 --eval-batches 1", dir, cwd, cwd) == 0,
          "train-cinn with relative --stage1 and the --ae alias");
    check(run("./i2v sample --model %s/rel_cinn --image %s -n 1 --out %s/s_rel", dir, img, dir) == 0,
          "sample from another working directory finds the stages named relatively at training");
    check(run("./i2v sample --model %s/model --image %s -n 1 --cinn %s/only_cinn/cinn.safetensors --cinn-config "
              "%s/only_cinn/config_stage2.yaml --out %s/s_abs", dir, img, dir, dir, dir) == 0,
          "--cinn and --cinn-config take absolute paths");
    check(run("./i2v train-ae --config tiny --out %s/alias --steps 1", dir) == 0, "train-ae is an alias of train-cond-ae");
    /* control --from-test: start frames and end points of the test split's first clips, as
     * visualize_endpoint.py takes them; Data.* overrides reach that data set only */
    check(run("./i2v train-cinn --config tiny --stage1 %s/model --cond-ae %s/model --out %s/ctl --steps 2 "
              "--eval-batches 1 Training.control=True", dir, dir, dir) == 0,
          "a controlled cINN");
    check(run("./i2v control --model %s/ctl --from-test 2 -n 3 --out %s/c", dir, dir) == 0 &&
              grid_shape(dir, "c/control", 2, 5, 8),
          "control --from-test 2: a row per test clip (the start frame, the real clip, 3 videos)");
    NpyArray v = {0};
    I2vError ne;
    char path[400];
    snprintf(path, sizeof path, "%s/c/control.npy", dir);
    if (check(!npy_read(path, &v, &ne), "read control.npy: %s", ne.msg)) {
        size_t frame = v.count / (v.shape[0] * v.shape[1]);
        const float *f = (const float *)v.data;
        check(v.shape[0] == 6 && memcmp(f, f + 3 * 8 * frame, frame * sizeof(float)) != 0,
              "6 videos; the two clips start from different frames");
    }
    npy_free(&v);
    check(run("./i2v control --model %s/ctl --from-test 2 --image %s", dir, img) == 2 && output_has("--from-test"),
          "--from-test with --image is a usage error");
    check(run("./i2v control --model %s/ctl --from-test 2 Training.lr=1", dir) == 2 && output_has("Data.key=value"),
          "only Data.* overrides");
    check(run("./i2v control --model %s/ctl --from-test 2 Data.data_path=%s/nowhere Data.dataset=BAIR", dir, dir) == 1 &&
              output_has("nowhere"),
          "a Data.* override reaches the data set --from-test reads");
    check(run("./i2v control --model %s/ctl --from-test 64 Data.synth_test=3", dir) == 1 &&
              output_has("has 3 clips"),
          "more clips than the test split holds are refused by number");
}

static void test_resume(void) {
    char a[300], b[300], fa[400], fb[400];
    static char la[65536], lb[65536];
    snprintf(a, sizeof a, "%s/full", dir);
    snprintf(b, sizeof b, "%s/resumed", dir);
    check(run("./i2v train-stage1 --config tiny --out %s --steps 6 --eval-batches 1", a) == 0, "uninterrupted run");
    check(run("./i2v train-stage1 --config tiny --out %s --steps 3 --eval-batches 1", b) == 0, "first half");
    check(run("./i2v train-stage1 --config tiny --out %s --steps 6 --eval-batches 1", b) == 1 &&
              output_has("--resume"),
          "training into an existing run without --resume is refused, naming the flag");
    check(run("./i2v train-stage1 --config tiny --out %s --steps 6 --eval-batches 1 --resume", b) == 0, "resumed");
    snprintf(fa, sizeof fa, "%s/stage1_losses.csv", a);
    snprintf(fb, sizeof fb, "%s/stage1_losses.csv", b);
    loss_columns(fa, la, sizeof la);
    loss_columns(fb, lb, sizeof lb);
    check(la[0] && !strcmp(la, lb), "--resume gives the uninterrupted run's losses, bitwise");
    snprintf(fa, sizeof fa, "%s/stage1.safetensors", a);
    snprintf(fb, sizeof fb, "%s/stage1.safetensors", b);
    check(same_files(fa, fb), "and the same final checkpoint, byte for byte");
    check(run("./i2v train-stage1 --config tiny --out %s --steps 7 --resume Training.w_kl=1", b) == 1 &&
              output_has("Training.w_kl changed"),
          "resuming with another config is refused, naming the key");
    /* a checkpoint cut short (a crash while copying it) is detected */
    char cut[400];
    snprintf(cut, sizeof cut, "%s/cut", dir);
    run("mkdir -p %s && cp -r %s/* %s/ && truncate -s 20000 %s/stage1.safetensors", cut, b, cut, cut);
    check(run("./i2v train-stage1 --config tiny --out %s --steps 7 --resume", cut) == 1 && output_has("stage1.safetensors"),
          "a truncated checkpoint is reported by name");
    /* a save that fails (the file-size limit stands in for a full disk) leaves the previous checkpoint whole */
    uint8_t *before;
    size_t nbefore;
    I2vError e;
    check(!read_file_bytes(fb, &before, &nbefore, &e), "read the checkpoint");
    int rc = run("(ulimit -f 64; ./i2v train-stage1 --config tiny --out %s --steps 8 --resume --eval-batches 1)", b);
    check(rc != 0 && output_has("stage1.safetensors"), "a failed save is reported with a non-zero exit (%d)", rc);
    uint8_t *after;
    size_t nafter;
    check(!read_file_bytes(fb, &after, &nafter, &e) && nafter == nbefore && !memcmp(before, after, nbefore),
          "and the previous checkpoint survives unchanged");
    free(before);
    if (nafter) free(after);
}

/* kill -9 during a run, then --resume: the loss log agrees with the checkpoint (its header, every row the
 * checkpoint holds, no half row) and the resumed run equals an uninterrupted one; temporaries left by a
 * killed save are removed. The conditioning AE at the tiny config, whose steps are the fastest. */
static void test_crash(void) {
    char ref[300], k[300], csv[400], ckpt[400];
    static char la[65536], lb[65536];
    snprintf(ref, sizeof ref, "%s/crash_ref", dir);
    snprintf(k, sizeof k, "%s/crash", dir);
    snprintf(csv, sizeof csv, "%s/cond_ae_losses.csv", k);
    snprintf(ckpt, sizeof ckpt, "%s/cond_ae.safetensors", k);
    const char *cmd = "./i2v train-cond-ae --config tiny --steps 24 --save-every 4";
    check(run("%s --out %s", cmd, ref) == 0, "an uninterrupted run of 24 steps");
    for (int trial = 0; trial < 2; trial++) {
        pid_t pid = spawn("%s --out %s%s", cmd, k, trial ? " --resume" : "");
        check(wait_for_file(ckpt), "trial %d: a checkpoint appears", trial);
        sleep_ms(150 + 200 * trial);   /* somewhere in the steps after a checkpoint */
        kill(pid, SIGKILL);
        int st = finish(pid);
        check(st == 128 + SIGKILL, "trial %d: killed with -9 (status %d)", trial, st);
    }
    /* a row cut in half by the kill, and a temporary file of a save that was killed */
    FILE *f = fopen(csv, "a");
    if (f) {
        fputs("999,0,1.5,0.25", f);
        fclose(f);
    }
    pid_t gone = fork();
    if (gone == 0) _exit(0);
    finish(gone);   /* a pid that no longer runs */
    char stale[500];
    snprintf(stale, sizeof stale, "%s.tmp.%d", ckpt, (int)gone);
    f = fopen(stale, "w");
    if (f) {
        fputs("partial", f);
        fclose(f);
    }
    check(run("%s --out %s --resume", cmd, k) == 0 && output_has("removed"), "resumed after kill -9");
    check(access(stale, F_OK) != 0, "the killed save's temporary file is gone");
    check(log_is_whole(csv, 24, 10), "the loss log has its header and steps 0..23 once each, whole");
    char fa[400];
    snprintf(fa, sizeof fa, "%s/cond_ae_losses.csv", ref);
    loss_columns(fa, la, sizeof la);
    loss_columns(csv, lb, sizeof lb);
    check(la[0] && !strcmp(la, lb), "and the uninterrupted run's losses, bitwise");
    /* a log that lost its header (as buffered logs did) gets it back */
    run("sed -i 1d %s", csv);
    check(run("./i2v train-cond-ae --config tiny --steps 26 --save-every 4 --out %s --resume", k) == 0 &&
              log_is_whole(csv, 26, 10),
          "a log without its header is repaired on resume");
}

/* SIGTERM and SIGINT save and stop, with exit status 143 and 130; the run then resumes. */
static void test_signals(void) {
    const int sigs[2] = {SIGTERM, SIGINT};
    for (int i = 0; i < 2; i++) {
        char k[300], ckpt[400];
        snprintf(k, sizeof k, "%s/signal%d", dir, i);
        snprintf(ckpt, sizeof ckpt, "%s/cond_ae_losses.csv", k);
        pid_t pid = spawn("./i2v train-cond-ae --config tiny --steps 100000 --out %s", k);
        check(wait_for_file(ckpt), "the run starts");
        sleep_ms(600);
        kill(pid, sigs[i]);
        int st = finish(pid);
        char out[400];
        snprintf(out, sizeof out, "%s/spawn.txt", dir);
        FILE *f = fopen(out, "r");
        char line[1024];
        int said = 0;
        while (f && fgets(line, sizeof line, f)) said |= strstr(line, sigs[i] == SIGTERM ? "stopped by SIGTERM" : "stopped by SIGINT") != NULL;
        if (f) fclose(f);
        check(st == 128 + sigs[i] && said, "%s: saved, said so, exit status %d (want %d)",
              sigs[i] == SIGTERM ? "SIGTERM" : "SIGINT", st, 128 + sigs[i]);
        check(run("./i2v train-cond-ae --config tiny --steps 100000 --minutes 0.01 --out %s --resume", k) == 0,
              "and resumes");
    }
}

/* --keep and --resume-from: older checkpoints stay beside the newest, a run steps back to one of them with
 * a lower learning rate (a schedule key may change on resume; others may not), the later ones are set
 * aside, not deleted. */
static void test_step_back(void) {
    char k[300], older[400], path[500];
    snprintf(k, sizeof k, "%s/keep", dir);
    check(run("./i2v train-cond-ae --config tiny --steps 6 --save-every 1 --keep 3 --out %s", k) == 0,
          "6 steps, a checkpoint each, 3 kept");
    snprintf(older, sizeof older, "%s/checkpoints/cond_ae_step00000004.safetensors", k);
    snprintf(path, sizeof path, "%s/checkpoints/cond_ae_step00000003.safetensors", k);
    char five[500];
    snprintf(five, sizeof five, "%s/checkpoints/cond_ae_step00000005.safetensors", k);
    check(access(older, F_OK) == 0 && access(five, F_OK) == 0 && access(path, F_OK) != 0,
          "the newest and the two before it are kept");
    check(run("./i2v train-cond-ae --config tiny --steps 6 --out %s --resume Training.w_kl=1", k) == 1 &&
              output_has("Training.w_kl"),
          "a resume that changes a key outside the schedule is refused by name");
    check(run("./i2v train-cond-ae --config tiny --steps 6 --out %s --resume-from %s Training.lr=1e-4", k, older) == 0 &&
              output_has("Training.lr changed from 0.001 to 0.0001"),
          "--resume-from an older checkpoint with a lower learning rate, said in the log");
    snprintf(path, sizeof path, "%s/checkpoints/abandoned/cond_ae_step00000006.safetensors", k);
    snprintf(five, sizeof five, "%s/checkpoints/abandoned/cond_ae_step00000005.safetensors", k);
    check(access(path, F_OK) == 0 && access(five, F_OK) == 0, "the later checkpoints are set aside in abandoned/");
    snprintf(path, sizeof path, "%s/cond_ae_losses.csv", k);
    check(log_is_whole(path, 6, 10), "the log holds steps 0..5 of the new branch once each");
}

/* The conditioning AE and the cINN resume bitwise too (the cINN on the pipeline test's frozen encoders):
 * 3 + 3 steps against 6, in the middle of an epoch. */
static void test_resume_stage2(void) {
    const char *cmds[2] = {"./i2v train-cond-ae --config tiny", "./i2v train-cinn --config tiny --eval-batches 1"};
    const char *csvs[2] = {"cond_ae_losses.csv", "cinn_losses.csv"};
    const char *ckpts[2] = {"cond_ae.safetensors", "cinn.safetensors"};
    static char la[65536], lb[65536];
    for (int i = 0; i < 2; i++) {
        char a[300], b[300], frozen[400], fa[400], fb[400];
        snprintf(a, sizeof a, "%s/full%d", dir, i);
        snprintf(b, sizeof b, "%s/resumed%d", dir, i);
        snprintf(frozen, sizeof frozen, i ? "--stage1 %s/model --cond-ae %s/model" : "", dir, dir);
        check(run("%s %s --out %s --steps 6", cmds[i], frozen, a) == 0 &&
                  run("%s %s --out %s --steps 3", cmds[i], frozen, b) == 0 &&
                  run("%s %s --out %s --steps 6 --resume", cmds[i], frozen, b) == 0,
              "%s: a run of 6 steps, and one of 3 resumed to 6", cmds[i]);
        snprintf(fa, sizeof fa, "%s/%s", a, csvs[i]);
        snprintf(fb, sizeof fb, "%s/%s", b, csvs[i]);
        loss_columns(fa, la, sizeof la);
        loss_columns(fb, lb, sizeof lb);
        snprintf(fa, sizeof fa, "%s/%s", a, ckpts[i]);
        snprintf(fb, sizeof fb, "%s/%s", b, ckpts[i]);
        check(la[0] && !strcmp(la, lb) && same_files(fa, fb),
              "%s: --resume gives the uninterrupted run's losses bitwise and the same checkpoint", cmds[i]);
    }
}

static void test_bad_input(void) {
    check(run("./i2v train-stage1 --config tiny --out %s/x Training.n_epoch=3", dir) == 1 &&
              output_has("Training.n_epoch"),
          "an unknown key is rejected by name");
    check(run("./i2v train-stage1 --config tiny --out %s/x Training.bs=ten", dir) == 1 && output_has("Training.bs") &&
              output_has("integer"),
          "a non-numeric override is rejected");
    check(run("./i2v train-stage1 --config tiny --out %s/x Data.img_size=33", dir) == 1 &&
              output_has("of img_size 33") && output_has("32x32"),
          "a size the generator cannot make is reported with the sizes on both sides");
    check(run("./i2v train-stage1 --config tiny --out %s/x 'Encoder.channels=[[1]]'", dir) == 1 &&
              output_has("Encoder.channels") && output_has("got a list"),
          "a nested list where integers belong is refused, not a crash");
    check(run("printf 'Encoder:\\n  channels: [[1]]\\n' > %s/nested.yaml && ./i2v train-stage1 --config %s/nested.yaml "
              "--out %s/x", dir, dir, dir) == 1 && output_has("nested.yaml:2"),
          "the same in a YAML file names the line");
    check(run("./i2v train-cond-ae --config tiny --out %s/x Training.lr=nan", dir) == 1 &&
              output_has("Training.lr: expected a finite number"),
          "a NaN learning rate is refused by name");
    check(run("./i2v train-stage1 --config nosuch --out %s/x", dir) == 1 && output_has("built-in names"),
          "an unknown config name lists the names");
    check(run("./i2v sample --model %s/nowhere --image x.png", dir) == 1 && output_has("nowhere"),
          "a missing model folder is named");
    check(run("./i2v sample --model %s/model --image %s/nothing.png", dir, dir) == 1 && output_has("nothing.png"),
          "a missing image is named");
    check(run("./i2v sample --model %s/model --image %s/out.txt", dir, dir) == 1, "a file that is not an image");
    check(run("./i2v frobnicate") == 2 && output_has("i2v help"), "an unknown command points to help");
    check(run("./i2v train-cond-ae --config tiny --out %s/lp --steps 1 --lpips README.md", dir) == 0 &&
              output_has("warning: --lpips README.md is not used"),
          "--lpips with a config without a perceptual loss is not ignored silently");
    check(run("./i2v train-stage1 --config tiny --out %s/nan --steps 4 Training.lr=1e30 Training.w_kl=1e30", dir) == 1 &&
              output_has("became") && output_has("step") && output_has("--resume-from"),
          "a NaN or Inf loss stops training with the step and the loss");
}

/* Numbers on the command line: taken whole, in range, finite; what would not fit in memory is refused by
 * name; long decodes say how far they are. */
static void test_options(void) {
    char img[300], m[300];
    snprintf(img, sizeof img, "%s/frames/train/traj_0_to_0/1/0.png", dir);
    snprintf(m, sizeof m, "%s/model", dir);
    static const struct {
        const char *args, *want;
    } bad[] = {
        {"--frames 4294967297", "--frames expects an integer from 1"},
        {"--frames 12x", "--frames expects an integer"},
        {"--frames 0", "--frames expects an integer from 1"},
        {"--temperature nan", "--temperature expects a finite number"},
        {"--temperature inf", "--temperature expects a finite number"},
        {"--temperature -1", "--temperature expects a finite number from 0"},
        {"--seed -1", "--seed expects an integer from 0"},
        {"--seed 18446744073709551616", "--seed expects an integer from 0"},
        {"-n 0", "-n expects an integer from 1 to 64"},
        {"-n 65", "-n expects an integer from 1 to 64"},
        {"--endpoint nan,0,0", "--endpoint expects x,y,z, each from 0 to 1"},
        {"--endpoint 0.5,1e308,0.5", "--endpoint expects x,y,z, each from 0 to 1"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        check(run("./i2v sample --model %s --image %s %s", m, img, bad[i].args) == 2 && output_has(bad[i].want),
              "sample %s: a usage error naming the option", bad[i].args);
    check(run("./i2v train-stage1 --config tiny --out %s/x --steps 1e3", dir) == 2 && output_has("--steps expects"),
          "train --steps 1e3 is refused");
    check(run("./i2v train-stage1 --config tiny --out %s/x --minutes nan", dir) == 2 && output_has("--minutes"),
          "train --minutes nan is refused");
    check(run("./i2v train-stage1 --config tiny --out %s/x --keep 0", dir) == 2 && output_has("--keep"),
          "train --keep 0 is refused");
    check(run("./i2v train-stage1 --config tiny --out") == 2 && output_has("--out needs a value"),
          "an option without its value is named");
    check(run("./i2v evaluate --model %s --split tset", m) == 2 && output_has("eval or test"), "evaluate --split tset");
    check(run("./i2v evaluate --model %s --clips -3", m) == 2 && output_has("--clips"), "evaluate --clips -3");
    /* the metric and benchmark commands read their numbers the same way (they once took atoi's prefix or 0);
     * the numbers are refused before any file is opened, so the paths need not exist */
    static const struct {
        const char *args, *want;
    } bad_numbers[] = {
        {"features --net vgg16 --weights w --in i --out o --width-div 2x",
         "--width-div expects an integer from 1 to 1024, got '2x'"},
        {"evaluate --model m --metrics fvd --clips abc", "--clips expects an integer from 0"},
        {"evaluate --model m --metrics fvd --kid-subsets 1e3", "--kid-subsets expects an integer"},
        {"evaluate --model m --metrics fvd --seed -1", "--seed expects an integer from 0"},
        {"bench gemm m=99999999999", "m expects an integer from 0 to 2147483647"},
        {"bench gpu reps=x", "reps expects an integer"},
    };
    for (size_t i = 0; i < sizeof bad_numbers / sizeof *bad_numbers; i++)
        check(run("./i2v %s", bad_numbers[i].args) == 2 && output_has(bad_numbers[i].want),
              "%s: a usage error naming the option", bad_numbers[i].args);
    check(run("./i2v prepare synthetic --out %s/p --videos 99999999999", dir) == 2 && output_has("--videos"),
          "prepare --videos 99999999999");
    check(run("./i2v demo --minutes nan --out %s/d", dir) == 2 && output_has("--minutes"), "demo --minutes nan");
#if defined(__SANITIZE_ADDRESS__)
    const char *limit = "";
#else
    const char *limit = "ulimit -v 307200; ";
#endif
    check(run("(%s./i2v sample --model %s --image %s -n 64 --frames 1000000 --out %s/huge)", limit, m, img, dir) == 1 &&
              output_has("--frames") && output_has("GB") && !output_has("internal error"),
          "a million frames of 64 videos: refused naming the option and the bytes");
    /* longer than twice the generator: decoded in pieces, with progress, the same frames */
    check(run("./i2v sample --model %s --image %s -n 2 --seed 3 --frames 12 --out %s/f12", m, img, dir) == 0 &&
              run("./i2v sample --model %s --image %s -n 2 --seed 3 --frames 40 --out %s/f40", m, img, dir) == 0 &&
              output_has("decoded 40 of 40 frames"),
          "sample --frames 40 runs and shows its progress");
    char p12[400], p40[400];
    snprintf(p12, sizeof p12, "%s/f12/samples.npy", dir);
    snprintf(p40, sizeof p40, "%s/f40/samples.npy", dir);
    NpyArray a = {0}, b = {0};
    I2vError e;
    if (check(!npy_read(p12, &a, &e) && !npy_read(p40, &b, &e) && b.shape[1] == 40, "read both")) {
        size_t frame = a.count / (a.shape[0] * a.shape[1]);
        int same = 1;
        for (size_t v = 0; v < 2; v++)
            same &= !memcmp((const float *)a.data + v * 12 * frame, (const float *)b.data + v * 40 * frame,
                            12 * frame * sizeof(float));
        check(same, "its first 12 frames are those of --frames 12");
    }
    npy_free(&a);
    npy_free(&b);
}

/* Sizes a config asks for are checked before anything is allocated: the message names the key to reduce,
 * and the refusal fits in 300 MB of memory (the address-space limit is left out under AddressSanitizer,
 * which reserves terabytes of it). */
static void test_sizes(void) {
#if defined(__SANITIZE_ADDRESS__)
    const char *limit = "";
#else
    const char *limit = "ulimit -v 307200; ";
#endif
    static const struct {
        const char *args, *want;
    } cases[] = {
        {"train-stage1 --config tiny 'Encoder.channels=[1000000, 32, 32, 32, 32]'", "far beyond"},
        {"train-stage1 --config tiny 'Encoder.channels=[16384, 16384, 16384, 16384, 16384]'", "Encoder.channels"},
        {"train-stage1 --config tiny Decoder.channel_factor=4096", "Decoder.channel_factor"},
        {"train-stage1 --config tiny Data.synth_train=2000000000", "Data.synth_train"},
        {"train-stage1 --config tiny Training.bs=65536", "Training.bs"},
        {"train-cond-ae --config tiny AE.enc_width=4096", "AE.enc_width"},
        {"train-cond-ae --config tiny Training.bs=65536", "Training.bs"},
        {"train-cinn --config tiny MODEL Flow.n_flows=512 Flow.flow_mid_channels_factor=1024", "Flow.n_flows"},
        /* past the bounds the networks assert: refused by name, not an internal error */
        {"train-cinn --config tiny MODEL Flow.n_flows=4096", "at most 512"},
        {"train-cinn --config tiny MODEL Flow.flow_hidden_depth=7", "at most 6 hidden layers"},
        {"train-cinn --config tiny MODEL Flow.n_flows=0", "Flow.n_flows: 0; expected at least 1"},
        {"train-cinn --config tiny MODEL Flow.flow_mid_channels_factor=0", "Flow.flow_mid_channels_factor: 0"},
        {"train-cinn --config tiny MODEL Training.bs=-1", "Training.bs: -1"},
        {"train-stage1 --config tiny Discriminator_Patch.ndf=0", "Discriminator_Patch.ndf: 0"},
        {"train-stage1 --config tiny Discriminator_Patch.n_layers=-1", "Discriminator_Patch.n_layers: -1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char args[1024];
        const char *m = strstr(cases[i].args, "MODEL");
        snprintf(args, sizeof args, "%s", cases[i].args);
        if (m) snprintf(args, sizeof args, "%.*s--stage1 %s/model --cond-ae %s/model%s", (int)(m - cases[i].args),
                        cases[i].args, dir, dir, m + 5);
        int rc = run("(%s./i2v %s --out %s/big --steps 1)", limit, args, dir);
        check(rc == 1 && output_has(cases[i].want) && !output_has("internal error"),
              "%s: refused (exit %d) naming %s", cases[i].args, rc, cases[i].want);
    }
}

/* every official config parses, checks and builds its networks (declared only: no memory) */
static void test_configs(void) {
    const char *names[] = {"bair", "iPER", "landscape", "DTDB_clouds", "DTDB_fire", "DTDB_vegetation",
                           "DTDB_waterfall", "small", "tiny"};
    int ok = 1;
    for (int k = 1; k <= 3; k++)
        for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
            StageSetup s;
            I2vError e;
            if (setup_load((StageKind)k, names[i], 0, NULL, &s, &e)) {
                check(0, "%s: %s", names[i], e.msg);
                ok = 0;
                continue;
            }
            if (k == STAGE1) {
                VideoEncoder enc;
                Generator gen;
                TemporalDisc dt;
                video_encoder_declare(&enc, &s.s1.Encoder);
                generator_declare(&gen, &s.s1.Decoder);
                disc_t_declare(&dt, &s.s1.Discriminator_Temporal);
                ok &= paramset_count(&enc.ps) > 0 && paramset_count(&gen.ps) > 0 && paramset_count(&dt.ps) > 0;
                if (!strcmp(names[i], "bair"))
                    check(paramset_count(&enc.ps) == 73639488 && paramset_count(&gen.ps) == 152786243,
                          "the bair file builds the paper's encoder and generator");
                video_encoder_free(&enc);
                generator_free(&gen);
                disc_t_free(&dt);
            }
            if (k == STAGE_COND_AE) {
                CondEncoder ce;
                cond_encoder_declare(&ce, &s.cond_ae.AE, NULL);
                ok &= paramset_count(&ce.ps) > 0;
                cond_encoder_free(&ce);
            }
            setup_free(&s);
        }
    check(ok, "every config in configs/ parses and builds its networks, for each stage");
    /* the monitor's network as a config key: bound, saved with the config, read back; the conditioning AE has
     * no monitor, so the key is unknown there */
    char *key[] = {"Training.fvd_weights=models/metrics/i3d.safetensors"};
    for (int k = STAGE1; k <= STAGE2; k++) {
        StageSetup s, back;
        I2vError e;
        int rc = setup_load((StageKind)k, "tiny", 1, key, &s, &e);
        if (k == STAGE_COND_AE) {
            check(rc != 0 && strstr(e.msg, "Training.fvd_weights"), "the conditioning AE refuses the key: %s", e.msg);
            continue;
        }
        int bound = rc == 0 && !strcmp(s.fvd_weights, "models/metrics/i3d.safetensors");
        int saved = bound && !setup_from_yaml((StageKind)k, s.yaml, "saved", &back, &e) &&
                    !strcmp(back.fvd_weights, s.fvd_weights);
        if (saved) setup_free(&back);
        check(bound && saved, "stage %d: Training.fvd_weights is bound and read back from the saved config", k);
        if (!rc) setup_free(&s);
        check(!setup_load((StageKind)k, "tiny", 0, NULL, &s, &e) && !s.fvd_weights[0], "stage %d: off by default", k);
        setup_free(&s);
    }
}

int main(void) {
    if (access("./i2v", X_OK) != 0) {
        printf("./i2v is missing (make test builds it first)\n");
        check(0, "the program exists");
        return check_summary("test_program");
    }
    snprintf(dir, sizeof dir, "/tmp/i2v_test_program_%d", (int)getpid());
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s", dir, dir);
    if (system(cmd) != 0) return 1;
    test_configs();
    /* the program itself is the same in both builds: run it once, from the float test */
    if (!is_double_build()) {
        test_pipeline();
        test_model_folders();
        test_evaluate();
        test_anywhere();
        test_prepare();
        test_resume();
        test_crash();
        test_signals();
        test_step_back();
        test_resume_stage2();
        test_bad_input();
        test_sizes();
        test_options();
    }
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) printf("could not remove %s\n", dir);
    return check_summary("test_program");
}
