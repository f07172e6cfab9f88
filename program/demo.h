/* demo.h: the demo that trains a model from scratch on the synthetic set and shows it. */
#ifndef I2V_DEMO_H
#define I2V_DEMO_H

#include <stdint.h>

#include "data.h"
#include "base/base.h"

/* The demo: every stage trained on the synthetic set at small widths, then GIFs and a report. */
#define DEMO_MINUTES 12   /* the default budget; the measured demo takes about 11.5 minutes in all */
typedef struct DemoOpts {
    const char *out;
    double minutes;       /* the whole budget (training of the four networks shares it); <= 0: DEMO_MINUTES */
    uint64_t seed;
} DemoOpts;
int run_demo(const DemoOpts *o, I2vError *e);
/* The demo's synthetic world, easier than the default so that minutes suffice: one large object on a flat
 * background, no distractors or occluders, moving 1.5 to 4 pixels per frame at 64 x 64 (scaled with the
 * size). Sets only those fields of c. */
void demo_world(DataConfig *c);

#endif
