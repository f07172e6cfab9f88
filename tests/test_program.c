/* test_program.c: the i2v program end to end at the tiny configs (seconds per command), as a user runs it:
 * train each stage a few steps, save, load in a fresh process, sample; the same seed gives the same video
 * bit for bit; residuals read from a file give the in-process result; --resume equals the uninterrupted
 * run; a truncated checkpoint is detected and a failed save leaves the previous checkpoint intact; every
 * official config parses and builds its networks; bad input gives a clear message and a non-zero exit.
 * Runs ./i2v, which `make test` builds first. */
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "formats/image.h"
#include "program/setup.h"

static char dir[256];

/* Runs a shell command line with I2V_THREADS=1, output into dir/out.txt; returns the exit status. */
static int run(const char *fmt, ...) {
    char cmd[4096], full[4600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    snprintf(full, sizeof full, "export I2V_THREADS=1; %s > %s/out.txt 2>&1", cmd, dir);
    int st = system(full);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* Does dir/out.txt contain s? */
static int output_has(const char *s) {
    char path[300];
    snprintf(path, sizeof path, "%s/out.txt", dir);
    uint8_t *buf;
    size_t n;
    I2vError e;
    if (read_file_bytes(path, &buf, &n, &e)) return 0;
    char *text = xmalloc(n + 1);
    memcpy(text, buf, n);
    text[n] = 0;
    int found = strstr(text, s) != NULL;
    free(text);
    if (n) free(buf);
    return found;
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
    check(run("./i2v train-ae --config tiny --out %s --steps 3", m) == 0, "train-ae runs");
    check(run("./i2v train-cinn --config tiny --out %s --steps 4 --eval-batches 1", m) == 0, "train-cinn runs");
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
    check(run("./i2v train-stage1 --config tiny --out %s --steps 7 --resume Training.lr=1e-3", b) == 1 &&
              output_has("differs"),
          "resuming with another config is refused");
    /* a checkpoint cut short (a crash while copying it) is detected */
    char cut[400];
    snprintf(cut, sizeof cut, "%s/cut", dir);
    run("mkdir -p %s && cp %s/* %s/ && truncate -s 20000 %s/stage1.safetensors", cut, b, cut, cut);
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

/* The conditioning AE and the cINN resume bitwise too (the cINN on the pipeline test's frozen encoders):
 * 3 + 3 steps against 6, in the middle of an epoch. */
static void test_resume_stage2(void) {
    const char *cmds[2] = {"./i2v train-ae --config tiny", "./i2v train-cinn --config tiny --eval-batches 1"};
    const char *csvs[2] = {"cond_ae_losses.csv", "cinn_losses.csv"};
    const char *ckpts[2] = {"cond_ae.safetensors", "cinn.safetensors"};
    static char la[65536], lb[65536];
    for (int i = 0; i < 2; i++) {
        char a[300], b[300], frozen[400], fa[400], fb[400];
        snprintf(a, sizeof a, "%s/full%d", dir, i);
        snprintf(b, sizeof b, "%s/resumed%d", dir, i);
        snprintf(frozen, sizeof frozen, i ? "--stage1 %s/model --ae %s/model" : "", dir, dir);
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
    check(run("./i2v train-stage1 --config nosuch --out %s/x", dir) == 1 && output_has("built-in names"),
          "an unknown config name lists the names");
    check(run("./i2v sample --model %s/nowhere --image x.png", dir) == 1 && output_has("nowhere"),
          "a missing model folder is named");
    check(run("./i2v sample --model %s/model --image %s/nothing.png", dir, dir) == 1 && output_has("nothing.png"),
          "a missing image is named");
    check(run("./i2v sample --model %s/model --image %s/out.txt", dir, dir) == 1, "a file that is not an image");
    check(run("./i2v frobnicate") == 2 && output_has("i2v help"), "an unknown command points to help");
    check(run("./i2v train-stage1 --config tiny --out %s/nan --steps 4 Training.lr=1e30 Training.w_kl=1e30", dir) == 1 &&
              output_has("became") && output_has("step"),
          "a NaN or Inf loss stops training with the step and the loss");
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
            if (k == STAGE_AE) {
                CondEncoder ce;
                cond_encoder_declare(&ce, &s.ae.AE, NULL);
                ok &= paramset_count(&ce.ps) > 0;
                cond_encoder_free(&ce);
            }
            setup_free(&s);
        }
    check(ok, "every config in configs/ parses and builds its networks, for each stage");
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
        test_resume();
        test_resume_stage2();
        test_bad_input();
    }
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) printf("could not remove %s\n", dir);
    return check_summary("test_program");
}
