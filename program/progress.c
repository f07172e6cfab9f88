/* progress.c: progress bar, per-step CSV log, SVG loss curves and the end-of-run summary (progress.h).
 * What it is not: a plotting library; the SVG is a plain multi-panel line chart, enough to see whether
 * losses go down. */
#include "program/progress.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tensor.h"

double progress_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* 0: decide by isatty; > 0: plain lines every that many seconds (two runs sharing one terminal) */
static double plain_every;
void progress_force_plain(double every_seconds) { plain_every = every_seconds; }

static void write_header(FILE *f, int nseries, const char *const *names) {
    fprintf(f, "step,epoch,seconds");
    for (int i = 0; i < nseries; i++) fprintf(f, ",%s", names[i]);
    fprintf(f, "\n");
}

/* Is line a complete data row of the log: ncol comma-separated numbers, the first (the step) below `below`
 * and above `after`? */
static int good_row(const char *line, int ncol, long after, long below) {
    size_t n = strlen(line);
    if (!n || line[n - 1] != '\n') return 0;   /* the row a crash cut short */
    char *end;
    long step = strtol(line, &end, 10);
    if (end == line || *end != ',' || step <= after || step >= below) return 0;
    int cols = 1;
    for (const char *s = end; *s; s++) cols += *s == ',';
    return cols == ncol;
}

/* Rewrites the log at path as its header and its rows of steps before `below`, in order (a rename of a
 * temporary file, so a crash now leaves the old log or the new one). */
static int cut_log(const char *path, int nseries, const char *const *names, long below, I2vError *e) {
    FILE *in = fopen(path, "r");
    if (!in) return 0;   /* no log yet: a new one is created */
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *out = fopen(tmp, "w");
    if (!out) {
        fclose(in);
        return err_set(e, "%s: cannot write %s to cut the loss log back to the checkpoint", path, tmp);
    }
    write_header(out, nseries, names);
    char *line = NULL;
    size_t cap = 0;
    long last = -1, kept = 0, dropped = 0;
    while (getline(&line, &cap, in) > 0) {
        if (line[0] >= 'a' && line[0] <= 'z') continue;   /* the header */
        if (good_row(line, nseries + 3, last, below)) {
            fputs(line, out);
            last = strtol(line, NULL, 10);
            kept++;
        } else {
            dropped++;
        }
    }
    free(line);
    fclose(in);
    int bad = ferror(out);
    bad |= fclose(out) != 0;
    if (bad || rename(tmp, path)) {
        remove(tmp);
        return err_set(e, "%s: cannot rewrite the loss log (disk full?)", path);
    }
    if (dropped)
        fprintf(stderr, "%s: kept the %ld rows before step %ld (the checkpoint's), dropped %ld written after it\n", path,
                kept, below, dropped);
    return 0;
}

int progress_init(Progress *p, const char *title, long total, int nseries, const char *const *names,
                  const char *csv_path, long resume_step, I2vError *e) {
    memset(p, 0, sizeof *p);
    I2V_ASSERT(nseries <= PROGRESS_MAX_SERIES, "at most %d series", PROGRESS_MAX_SERIES);
    p->title = title;
    p->total = total;
    p->nseries = nseries;
    for (int i = 0; i < nseries; i++) p->names[i] = names[i];
    p->t_start = p->t_last_print = progress_now();
    p->tty = plain_every > 0 ? 0 : isatty(fileno(stderr));
    p->print_every = plain_every > 0 ? plain_every : 10;
    if (csv_path) {
        snprintf(p->csv_path, sizeof p->csv_path, "%s", csv_path);
        if (resume_step >= 0 && cut_log(csv_path, nseries, names, resume_step, e)) return -1;
        int exists = resume_step >= 0 && access(csv_path, F_OK) == 0;
        p->csv = fopen(csv_path, exists ? "a" : "w");
        if (!p->csv) return err_set(e, "%s: cannot open the loss log for writing", csv_path);
        if (!exists) write_header(p->csv, nseries, names);
    }
    return 0;
}

void progress_sync(Progress *p) {
    if (!p->csv) return;
    fflush(p->csv);
    fsync(fileno(p->csv));
}

static void format_duration(double s, char *buf, size_t n) {
    if (!(s >= 0) || s > 1e7) snprintf(buf, n, "?");
    else if (s < 60) snprintf(buf, n, "%.0fs", s);
    else if (s < 3600) snprintf(buf, n, "%dm%02ds", (int)s / 60, (int)s % 60);
    else snprintf(buf, n, "%dh%02dm", (int)s / 3600, ((int)s % 3600) / 60);
}

void progress_step(Progress *p, long step, int epoch, const double *values) {
    double t = progress_now();
    p->count++;
    for (int i = 0; i < p->nseries; i++) {
        p->last[i] = values[i];
        p->sum[i] += values[i];
    }
    if (p->csv) {
        fprintf(p->csv, "%ld,%d,%.3f", step, epoch, t - p->t_start);
        for (int i = 0; i < p->nseries; i++) fprintf(p->csv, ",%.9g", values[i]);
        fprintf(p->csv, "\n");
    }
    int last = step + 1 >= p->total;
    if (!p->tty && !last && t - p->t_last_print < p->print_every) return;
    p->t_last_print = t;
    double rate = p->count / (t - p->t_start + 1e-9);
    char eta[32];
    double left = (p->total - step - 1) / (rate + 1e-12);
    if (p->time_limit > 0 && p->time_limit - (t - p->t_start) < left) left = p->time_limit - (t - p->t_start);
    format_duration(left, eta, sizeof eta);
    char line[512];
    int k = 0;
    if (p->tty) {
        int width = 20, filled = p->total > 0 ? (int)(width * (step + 1) / p->total) : 0;
        k += snprintf(line + k, sizeof line - (size_t)k, "\r%s [", p->title);
        for (int i = 0; i < width; i++) k += snprintf(line + k, sizeof line - (size_t)k, i < filled ? "#" : ".");
        k += snprintf(line + k, sizeof line - (size_t)k, "]");
    } else {
        k += snprintf(line + k, sizeof line - (size_t)k, "%s", p->title);
    }
    k += snprintf(line + k, sizeof line - (size_t)k, " step %ld/%ld  %.2f it/s  eta %s", step + 1, p->total, rate, eta);
    for (int i = 0; i < p->nseries && i < 4 && k < (int)sizeof line - 40; i++)
        k += snprintf(line + k, sizeof line - (size_t)k, "  %s %.4g", p->names[i], values[i]);
    fprintf(stderr, "%s%s", line, p->tty ? "\033[K" : "\n");
    fflush(stderr);
}

void progress_finish(Progress *p) {
    double t = progress_now() - p->t_start;
    if (p->tty) fprintf(stderr, "\n");
    fprintf(stderr, "%s: %ld steps in %.1f s (%.2f it/s); mean", p->title, p->count, t, p->count / (t + 1e-9));
    for (int i = 0; i < p->nseries; i++) fprintf(stderr, " %s %.4g", p->names[i], p->count ? p->sum[i] / p->count : 0);
    fprintf(stderr, "\n");
    if (p->csv) {
        fclose(p->csv);
        p->csv = NULL;
        char svg[1100];
        size_t n = strlen(p->csv_path);
        if (n > 4 && !strcmp(p->csv_path + n - 4, ".csv")) {
            snprintf(svg, sizeof svg, "%.*s.svg", (int)(n - 4), p->csv_path);
            I2vError e;
            if (progress_plot_svg(p->csv_path, svg, &e)) fprintf(stderr, "i2v: warning: %s\n", e.msg);
        }
    }
}

/* ---- SVG ---------------------------------------------------------------------------------------------- */

int progress_plot_svg(const char *csv_path, const char *svg_path, I2vError *e) {
    FILE *f = fopen(csv_path, "r");
    if (!f) return err_set(e, "%s: cannot read the loss log", csv_path);
    char header[4096];
    if (!fgets(header, sizeof header, f)) {
        fclose(f);
        return err_set(e, "%s: empty loss log", csv_path);
    }
    header[strcspn(header, "\r\n")] = 0;
    char *names[PROGRESS_MAX_SERIES + 3];
    int ncol = 0;
    for (char *tok = strtok(header, ","); tok && ncol < PROGRESS_MAX_SERIES + 3; tok = strtok(NULL, ",")) names[ncol++] = tok;
    int ns = ncol - 3;
    if (ns <= 0) {
        fclose(f);
        return err_set(e, "%s: no loss columns", csv_path);
    }
    size_t cap = 1024, rows = 0;
    double *v = xmalloc(cap * (size_t)ncol * sizeof(double));
    char line[8192];
    while (fgets(line, sizeof line, f)) {
        if (rows == cap) {
            cap *= 2;
            v = realloc(v, cap * (size_t)ncol * sizeof(double));
            I2V_ASSERT(v, "out of memory");
        }
        char *s = line;
        for (int c = 0; c < ncol; c++) {
            v[rows * ncol + c] = strtod(s, &s);
            if (*s == ',') s++;
        }
        rows++;
    }
    fclose(f);
    FILE *o = fopen(svg_path, "w");
    if (!o) {
        free(v);
        return err_set(e, "%s: cannot write the loss plot", svg_path);
    }
    const int pw = 320, ph = 160, cols = 3, rows_p = (ns + cols - 1) / cols;
    fprintf(o, "<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' font-family='sans-serif' font-size='11'>\n",
            cols * pw, rows_p * ph);
    fprintf(o, "<rect width='100%%' height='100%%' fill='white'/>\n");
    for (int s = 0; s < ns; s++) {
        int ox = (s % cols) * pw, oy = (s / cols) * ph, c = s + 3;
        double lo = INFINITY, hi = -INFINITY, x0 = rows ? v[0] : 0, x1 = rows ? v[(rows - 1) * ncol] : 1;
        for (size_t r = 0; r < rows; r++) {
            double y = v[r * ncol + c];
            if (isfinite(y)) {
                if (y < lo) lo = y;
                if (y > hi) hi = y;
            }
        }
        if (!(hi > lo)) {
            hi = lo + 1;
            if (!isfinite(lo)) lo = 0, hi = 1;
        }
        if (x1 <= x0) x1 = x0 + 1;
        fprintf(o, "<g transform='translate(%d,%d)'><rect x='40' y='18' width='%d' height='%d' fill='none' stroke='#ccc'/>\n",
                ox, oy, pw - 50, ph - 40);
        fprintf(o, "<text x='40' y='13'>%s</text><text x='2' y='26'>%.3g</text><text x='2' y='%d'>%.3g</text>\n",
                names[c], hi, ph - 22, lo);
        fprintf(o, "<polyline fill='none' stroke='#1f77b4' stroke-width='1' points='");
        /* at most ~600 points per curve: every k-th row */
        size_t k = rows / 600 + 1;
        for (size_t r = 0; r < rows; r += k) {
            double y = v[r * ncol + c];
            if (!isfinite(y)) continue;
            double px = 40 + (pw - 50) * (v[r * ncol] - x0) / (x1 - x0);
            double py = 18 + (ph - 40) * (1 - (y - lo) / (hi - lo));
            fprintf(o, "%.1f,%.1f ", px, py);
        }
        fprintf(o, "'/></g>\n");
    }
    fprintf(o, "</svg>\n");
    int bad = ferror(o);
    fclose(o);
    free(v);
    if (bad) return err_set(e, "%s: write failed (disk full?)", svg_path);
    return 0;
}
