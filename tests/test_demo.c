/* test_demo.c: `i2v demo` at a small --scale, as a user runs it. Fixed work, not a time budget: two runs with
 * the same seed write the same report.txt but for `seconds`, even when a CPU-bound process runs beside the
 * second one; the pictures have their layout (x0 first, tiles enlarged, control targets marked), index.html
 * shows them without scripts or anything from the network; `control --from-test` works on the demo's
 * controlled cINN; bad options are refused. Runs ./i2v, which `make test` builds first. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "formats/files.h"
#include "formats/gif.h"
#include "formats/png.h"
#include "shell.h"

#define SCALE "0.01"   /* one batch per epoch: a few seconds of training */
#define TILE 128       /* 32-pixel frames enlarged 4 times */

static char dir[256];

/* Runs a shell command line, output into dir/out.txt; returns the exit status. */
static int run(const char *fmt, ...) I2V_PRINTF(1, 2);
static int run(const char *fmt, ...) {
    char out[300];
    snprintf(out, sizeof out, "%s/out.txt", dir);
    va_list ap;
    va_start(ap, fmt);
    int rc = shell_vrun(out, "", fmt, ap);
    va_end(ap);
    return rc;
}

/* report.txt without its `seconds` line */
static char *report_but_seconds(const char *out) {
    char path[400];
    snprintf(path, sizeof path, "%s/report.txt", out);
    char *t = shell_read_text(path);
    if (!t) return NULL;
    char *s = strstr(t, "seconds=");
    if (s) *s = 0;
    return t;
}

/* A GIF's frames (T, H, W, 3) and size; NULL when it does not decode. */
static uint8_t *read_gif(const char *path, size_t *frames, size_t *w, size_t *h) {
    uint8_t *buf, *rgb = NULL;
    size_t n;
    I2vError e;
    if (read_file_bytes(path, &buf, &n, &e)) return NULL;
    if (gif_decode(buf, n, path, &rgb, frames, w, h, &e)) rgb = NULL;
    free(buf);
    return rgb;
}

static size_t grid(size_t tiles) { return tiles * (TILE + 2) + 2; }

/* Is the pixel at (x, y) of tile (r, c) of a frame (H, W, 3) white? */
static int white_at(const uint8_t *frame, size_t w, int r, int c, double x, double y) {
    size_t px = 2 + (size_t)c * (TILE + 2) + (size_t)lround(x - 0.5), py = 2 + (size_t)r * (TILE + 2) + (size_t)lround(y - 0.5);
    const uint8_t *p = frame + (py * w + px) * 3;
    return p[0] == 255 && p[1] == 255 && p[2] == 255;
}

static void test_same_report(const char *a, const char *b) {
    check(run("./i2v demo --scale " SCALE " --seed 5 --out %s", a) == 0, "demo --scale " SCALE " runs");
    /* a CPU-bound process beside the second run: the report must not notice */
    pid_t busy = fork();
    if (busy == 0) {   /* spins until killed; never outlives the test by more than a few minutes */
        pid_t parent = getppid();
        alarm(600);
        for (volatile unsigned long x = 0; getppid() == parent; x++) {
        }
        _exit(0);
    }
    int rc = run("./i2v demo --scale " SCALE " --seed 5 --out %s", b);
    if (busy > 0) {
        kill(busy, SIGKILL);
        waitpid(busy, NULL, 0);
    }
    check(rc == 0, "demo runs again beside a busy process");
    char *ra = report_but_seconds(a), *rb = report_but_seconds(b);
    check(ra && rb && strstr(ra, "shape_iou=") && strstr(ra, "colour_error_truth=") && strstr(ra, "endpoint_error_px=") &&
              strstr(ra, "recon_shape_iou=") && strstr(ra, "recon_colour_error="),
          "report.txt has the figures");
    check(ra && rb && !strcmp(ra, rb), "the same seed gives the same report but for seconds:\n%s\nagainst\n%s",
          ra ? ra : "(none)", rb ? rb : "(none)");
    free(ra);
    free(rb);
}

static void test_pictures(const char *a) {
    char path[400];
    size_t frames, w, h;
    snprintf(path, sizeof path, "%s/samples.gif", a);
    uint8_t *g = read_gif(path, &frames, &w, &h);
    check(g && frames == 8 && w == grid(6) && h == grid(6),
          "samples.gif: 6 rows of x0, the real clip and 4 samples, 8 frames, enlarged (%zu x %zu)", w, h);
    free(g);
    Image png;
    I2vError e;
    snprintf(path, sizeof path, "%s/samples_last.png", a);
    if (check(!png_read(path, &png, &e), "samples_last.png reads")) {
        check(png.width == grid(6) && png.height == grid(6), "samples_last.png has the GIF's layout");
        image_free(&png);
    }
    snprintf(path, sizeof path, "%s/control.gif", a);
    g = read_gif(path, &frames, &w, &h);
    if (check(g && w == grid(5) && h == grid(4), "control.gif: 4 end points x (x0 + 4 samples)")) {
        const double ends[4][2] = {{0.2, 0.2}, {0.8, 0.2}, {0.2, 0.8}, {0.8, 0.8}};
        int marked = 1;
        for (size_t t = 0; t < frames; t++)
            for (int r = 0; r < 4; r++)
                for (int c = 0; c < 5; c++) marked &= white_at(g + t * w * h * 3, w, r, c, ends[r][0] * TILE, ends[r][1] * TILE);
        check(marked, "control.gif marks each row's target in every tile and frame");
    }
    free(g);
    snprintf(path, sizeof path, "%s/transfer.gif", a);
    g = read_gif(path, &frames, &w, &h);
    check(g && w == grid(4) && h == grid(1), "transfer.gif: the driving clip and three transfers");
    free(g);
    snprintf(path, sizeof path, "%s/index.html", a);
    char *html = shell_read_text(path);
    check(html && strstr(html, "<table") && strstr(html, "shape_iou") && strstr(html, "src=\"samples.gif\"") &&
              strstr(html, "src=\"control.gif\"") && strstr(html, "src=\"stage1_losses.svg\"") &&
              strstr(html, "src=\"samples_last.png\""),
          "index.html shows the report, the pictures and the loss curves");
    check(html && !strstr(html, "<script") && !strstr(html, "http:") && !strstr(html, "https:") && !strstr(html, "//"),
          "index.html has no scripts and loads nothing from the network");
    free(html);
    const char *files[] = {"stage1_losses.svg", "cond_ae_losses.svg", "cinn_losses.svg", "cinn_control_losses.svg",
                           "transfer.gif", "report.txt"};
    for (int i = 0; i < 6; i++) {
        snprintf(path, sizeof path, "%s/%s", a, files[i]);
        check(access(path, R_OK) == 0, "index.html's %s exists", files[i]);
    }
}

/* control --from-test on the demo's controlled cINN: rows of x0, the real clip, n samples; marked targets */
static void test_control_from_test(const char *a) {
    check(run("./i2v control --model %s --cinn cinn_control.safetensors --cinn-config config_stage2_control.yaml "
              "--from-test 2 -n 2 --out %s/ctl",
              a, dir) == 0,
          "control --from-test runs");
    char path[400];
    snprintf(path, sizeof path, "%s/ctl/control_last.png", dir);
    Image png;
    I2vError e;
    if (check(!png_read(path, &png, &e), "control_last.png reads")) {
        check(png.width == grid(4) && png.height == grid(2), "2 test clips x (x0, the real clip, 2 samples)");
        int any_white_cross = 0;   /* the end point is the real clip's: each row has a cross somewhere */
        for (size_t i = 0; i + 2 < png.width * png.height * 3; i += 3)
            any_white_cross |= png.data[i] == 255 && png.data[i + 1] == 255 && png.data[i + 2] == 255 &&
                               i / 3 % png.width > 2 && i / 3 / png.width > 2 && i / 3 / png.width < png.height - 2;
        check(any_white_cross, "the targets are marked");
        image_free(&png);
    }
    check(run("./i2v control --model %s --cinn cinn_control.safetensors --cinn-config config_stage2_control.yaml "
              "--from-test 2 --endpoint 0.5,0.5,0.5",
              a) == 2,
          "--from-test with --endpoint is refused");
}

static void test_bad_options(void) {
    const char *bad[] = {"--scale 0", "--scale -1", "--scale abc", "--scale nan", "--scale 1e9", "--minutes 5",
                         "--seed -3", "--scale"};
    for (int i = 0; i < 8; i++)
        check(run("./i2v demo %s --out %s/never", bad[i], dir) == 2, "demo %s is refused with a usage error", bad[i]);
    char path[400];
    snprintf(path, sizeof path, "%s/never", dir);
    check(access(path, F_OK) != 0, "a refused demo writes nothing");
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/i2v_test_demo_%d", (int)getpid());
    char a[300], b[300], cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s", dir, dir);
    if (system(cmd) != 0) return 1;
    snprintf(a, sizeof a, "%s/a", dir);
    snprintf(b, sizeof b, "%s/b", dir);
    test_bad_options();
    if (is_double_build()) {
        printf("test_demo: the demo runs once, in the float build's test\n");
    } else {
        if (quick_mode()) {   /* sanitizer and portable runs: one demo, its pictures, no second run to compare */
            printf("test_demo: quick mode, one run\n");
            check(run("./i2v demo --scale " SCALE " --seed 5 --out %s", a) == 0, "demo --scale " SCALE " runs");
        } else {
            test_same_report(a, b);
        }
        test_pictures(a);
        test_control_from_test(a);
    }
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) return 1;
    return check_summary("test_demo");
}
