/* demo.h: the demo that trains a model from scratch on the synthetic set and shows it. */
#ifndef I2V_DEMO_H
#define I2V_DEMO_H

#include <stdint.h>

#include "data.h"
#include "base/base.h"

/* The demo: every stage trained on the synthetic set at small widths for a fixed number of steps, then
 * GIFs, a PNG, a report and index.html in `out`. The same seed gives the same report (but its `seconds`) on
 * a given build, whatever the machine's speed, load or core count. */
typedef struct DemoOpts {
    const char *out;
    double scale;         /* > 0: every stage's step count times this (1: the default demo) */
    uint64_t seed;
} DemoOpts;
int run_demo(const DemoOpts *o, I2vError *e);
/* The demo's synthetic world, easier than the default so that minutes suffice: one large object on a flat
 * background, no distractors or occluders, moving 1.5 to 4 pixels per frame at 64 x 64 (scaled with the
 * size). Sets only those fields of c. */
void demo_world(DataConfig *c);

#endif
