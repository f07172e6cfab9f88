/* progress.h: what a training run shows and keeps: a progress bar on stderr (step, it/s, ETA and the
 * current losses) when stderr is a terminal, plain periodic lines when it is not; every loss of every step
 * in a CSV file; the loss curves drawn as an SVG next to it; a closing summary. */
#ifndef I2V_PROGRESS_H
#define I2V_PROGRESS_H

#include <stdio.h>

#include "base/base.h"

#define PROGRESS_MAX_SERIES 24

typedef struct Progress {
    const char *title;               /* e.g. "stage 1" */
    long total;                      /* steps planned */
    int nseries;
    const char *names[PROGRESS_MAX_SERIES];
    double last[PROGRESS_MAX_SERIES], sum[PROGRESS_MAX_SERIES];
    long count;                      /* steps recorded since the start (or resume) */
    double t_start, t_last_print;
    int tty;                         /* stderr is a terminal: redraw one line */
    double print_every;              /* seconds between plain lines when not a terminal */
    double time_limit;               /* seconds the run may take (0: none): the ETA is the sooner end */
    FILE *csv;                       /* one row per step: step, epoch, seconds, then each series */
    char csv_path[1024];
} Progress;

/* Creates csv_path (NULL: no file), or with resume_step >= 0 continues it: the log is cut back to the
 * header and the rows of steps before resume_step, the ones the checkpoint being resumed holds, so that
 * after a crash (rows written after the last checkpoint, a row cut in half) the log agrees with the
 * checkpoint again; a missing header is put back. */
int progress_init(Progress *p, const char *title, long total, int nseries, const char *const *names,
                  const char *csv_path, long resume_step, I2vError *e);
void progress_step(Progress *p, long step, int epoch, const double *values);
/* Puts the CSV's rows on disk (a checkpoint was just written: the log must hold every row it covers). */
void progress_sync(Progress *p);
/* Ends the bar line, prints the summary (means of every series over the run, time, it/s), closes the CSV
 * and draws the SVG (csv_path with .svg instead of .csv). */
void progress_finish(Progress *p);

/* Draws every series of a CSV written by Progress as an SVG line chart (one panel per series). */
int progress_plot_svg(const char *csv_path, const char *svg_path, I2vError *e);

/* From now on print plain lines every that many seconds, terminal or not (0: back to the default); the
 * demo sets it when two trainings run side by side and share stderr. */
void progress_force_plain(double every_seconds);

double progress_now(void);   /* monotonic seconds */

#endif
