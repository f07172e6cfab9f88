/* test_progress.c: the per-step CSV log holds every value, resuming appends, and the SVG plot is drawn. */
#include <unistd.h>

#include "check.h"
#include "program/progress.h"

int main(void) {
    char csv[64], svg[64];
    snprintf(csv, sizeof csv, "/tmp/i2v_progress_%d.csv", (int)getpid());
    snprintf(svg, sizeof svg, "/tmp/i2v_progress_%d.svg", (int)getpid());
    const char *names[2] = {"loss", "psnr"};
    Progress p;
    I2vError e;
    check(!progress_init(&p, "test", 10, 2, names, csv, -1, &e), "init: %s", e.msg);
    for (long s = 0; s < 6; s++) progress_step(&p, s, 0, (double[]){1.0 / (s + 1), 10.0 + s});
    progress_finish(&p);
    check(!progress_init(&p, "test", 10, 2, names, csv, 6, &e), "resume: %s", e.msg);
    for (long s = 6; s < 10; s++) progress_step(&p, s, 1, (double[]){1.0 / (s + 1), 10.0 + s});
    progress_finish(&p);
    FILE *f = fopen(csv, "r");
    char line[256];
    int rows = 0, header = 0, ok = 1;
    while (f && fgets(line, sizeof line, f)) {
        if (!strncmp(line, "step,epoch,seconds,loss,psnr", 28)) {
            header++;
            continue;
        }
        long step;
        int epoch;
        double secs, loss, psnr;
        if (sscanf(line, "%ld,%d,%lf,%lf,%lf", &step, &epoch, &secs, &loss, &psnr) != 5) ok = 0;
        else ok &= step == rows && fabs(loss - 1.0 / (rows + 1)) < 1e-9 && psnr == 10 + rows && epoch == (rows >= 6);
        rows++;
    }
    if (f) fclose(f);
    check(header == 1 && rows == 10 && ok, "the CSV has one header and every step's values (%d rows)", rows);
    f = fopen(svg, "r");
    int polylines = 0;
    while (f && fgets(line, sizeof line, f)) polylines += strstr(line, "<polyline") != NULL;
    if (f) fclose(f);
    check(polylines == 2, "the SVG draws one curve per series (%d)", polylines);
    unlink(csv);
    unlink(svg);
    check(progress_init(&p, "test", 1, 2, names, "/nonexistent/dir/x.csv", -1, &e) != 0 && strstr(e.msg, "/nonexistent"),
          "an unwritable log path is reported: %s", e.msg);
    return check_summary("test_progress");
}
