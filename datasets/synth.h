/* synth.h: the built-in synthetic world: videos of an object moving in a random direction at a random
 * speed, rendered from a seed, with their ground truth; trajectory recovery and motion statistics that
 * measure generated videos of it. (How the data loader draws clips from it: data.h.)
 *
 * Dimension legend: T frames, C = 3 (RGB), S square size (H = W = S), px pixels.
 */
#ifndef I2V_SYNTH_H
#define I2V_SYNTH_H

#include <stddef.h>
#include <stdint.h>

#include "tensor.h"

#define SYNTH_MAX_FRAMES 128
#define SYNTH_MAX_DISTRACTORS 3

typedef enum SynthShape { SYNTH_DISC = 0, SYNTH_SQUARE, SYNTH_TRIANGLE, SYNTH_PLUS, SYNTH_NSHAPES } SynthShape;

/* Positions are in pixels with the origin at the top-left corner of the image: pixel (row j, column i)
 * covers [i, i + 1) x [j, j + 1), so its centre is (i + 0.5, j + 0.5). */
typedef struct SynthObject {
    int shape;               /* SynthShape */
    double colour[3];        /* RGB in [0, 1]: grey level + a chroma vector (the background has no chroma) */
    double radius;           /* circumradius, px; the object bounces when this circle touches a wall */
    double angle;            /* fixed orientation, radians */
    double pos0[2];          /* centre (x, y) at frame 0, px */
    double vel[2];           /* (vx, vy), px per frame, before reflections */
} SynthObject;

typedef struct SynthConfig {
    int size;                /* S */
    int frames;              /* frames per video (<= SYNTH_MAX_FRAMES) */
    int max_distractors;
    double occluder_prob;
    double speed_min, speed_max;   /* px per frame at S = 64 */
    double texture;                /* background texture contrast, 0..1 */
    double object_scale;           /* object radii times this */
} SynthConfig;

/* Ground truth of one synthetic video. The main object is the one to track; its colour is known. */
typedef struct SynthTruth {
    int size, frames;
    SynthObject main;
    int ndistractors;
    SynthObject distractor[SYNTH_MAX_DISTRACTORS];
    int has_occluder;
    double occluder[4];      /* x0, y0, x1, y1 of the bar, px */
    double occluder_grey;
    double speed;            /* |vel|, px per frame */
    double direction;        /* atan2(vy, vx), radians */
    int bounces;             /* wall reflections of the main object over the video */
    double centre[SYNTH_MAX_FRAMES][2];   /* (T, 2): the main object's centre (x, y), sub-pixel */
    double visible[SYNTH_MAX_FRAMES];     /* (T): fraction of the main object not hidden by the occluder */
    double control[SYNTH_MAX_FRAMES][3];  /* (T, 3): the control factor if the clip ended at this frame */
} SynthTruth;

/* Control factor (the BAIR end point's counterpart, 3 numbers in [0, 1)): at frame t,
 *   (x_t / S, y_t / S, speed / speed_max_px)
 * the main object's position (always strictly inside the frame) and its constant speed, which separates
 * clips that reach the same end point by different paths. flow_embed_endpoint() bins each into 10. */
/* Draws video `index` of the stream `seed` and renders it: video (frames, 3, S, S) in [-1, 1], or NULL for
 * the ground truth only. Deterministic per (seed, index) and configuration. */
void synth_video(const SynthConfig *sc, uint64_t seed, uint64_t index, real *video, SynthTruth *truth);

/* ---- trajectory recovery and motion statistics (the metric the program compares motions with) ---- */
/* Recovers the object of known `colour` in every frame of a video (T, 3, H, W) in [-1, 1]: each pixel's
 * chroma (its colour minus its grey level) is projected on the object's chroma, giving its coverage
 * alpha in [0, 1] (exact for the synthetic set, whose background and occluder are grey and whose
 * distractors' chroma points away); a box filter of the object's size finds the object, then the
 * alpha-weighted centroid in a window of radius 1.5 * radius + 2 around it, twice re-centred, gives the
 * centre (x, y) in px (same convention as SynthTruth). mass[t] = sum of alpha in the window (visible
 * area, px^2). Frames with mass < 1 get centre NaN. */
void synth_track(const real *video, size_t frames, size_t height, size_t width, const double colour[3],
                 double radius, double *centre /* (T, 2) */, double *mass /* (T) */);

typedef struct MotionStats {
    double disp[2];          /* last found centre - first found centre, px */
    double final_pos[2];     /* last found centre / (W, H): the end point, in [0, 1) */
    double path;             /* sum of frame-to-frame distances, px */
    double speed;            /* median frame-to-frame distance, px per frame (robust to bounces) */
    double direction;        /* atan2(disp_y, disp_x) */
    size_t found;            /* frames in which the object was found */
} MotionStats;
void motion_stats(const double *centre /* (T, 2) */, size_t frames, size_t height, size_t width, MotionStats *out);
/* The control factor a track obeys, to compare with the one that was asked for (synth control above). */
void motion_control(const MotionStats *s, double speed_max_px, double out[3]);
/* Motion distance between two sets of d-dimensional motion descriptors (e.g. end displacements divided by
 * the frame size, generated vs true): Szekely's energy distance
 *   E = 2 mean|a_i - b_j| - mean|a_i - a_k| - mean|b_j - b_l|   (V-statistics, Euclidean norms),
 * which is >= 0 and 0 exactly when the two empirical distributions are equal; sqrt(E) is a metric on
 * distributions. Unlike a mean error it sees a collapse of diversity (all samples at the mean). */
double motion_energy_distance(const double *a, size_t na, const double *b, size_t nb, int dim);

#endif
