/* synth.c: the built-in synthetic video set and the motion statistics that evaluate generated videos of it.
 *
 * What it is: procedurally generated clips in which the start frame does not determine the motion. Each
 * video has a static grey texture (gratings, a faint checkerboard, pixel noise), one main object of known
 * colour (disc, square, triangle or plus, random size, orientation and colour) moving in a straight line
 * at a random speed and direction drawn independently of everything visible in frame 0, reflecting off
 * the walls; up to `max_distractors` other objects moving the same way behind it, with colours whose
 * chroma points away from the main object's; and, with probability `occluder_prob`, a static grey bar in
 * front of everything. Rendering is anti-aliased (4 x 4 samples per pixel), so centres are sub-pixel.
 * Everything derives from a generator seeded by (seed, index): the same seed gives the same videos, and
 * the stream is unlimited. Also: trajectory recovery from any video (generated ones included) given the
 * object's colour, motion statistics, and the energy distance between two sets of motions. (Its exports
 * to the paper data sets' layouts are data preparation: program/prepare.c.)
 * What it is not: a physics simulation (no collisions between objects, no gravity), nor a model of real
 * data; it exists so the pipeline can be trained and checked without a download.
 *
 * Why the colours are built this way: the background and the occluder are exactly grey (R = G = B), and
 * each object's colour is a grey level plus a chroma vector c (the part orthogonal to (1, 1, 1)). A pixel
 * that mixes the main object (coverage a) with grey has chroma a * c, so <pixel, c> / |c|^2 = a exactly:
 * the tracker recovers coverage, not a thresholded mask. Distractor chroma is at 120..240 degrees from c,
 * so it projects negatively and is clipped away.
 *
 * Dimension legend: T frames, C = 3 (RGB), S square size (H = W = S), px pixels.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "datasets/synth.h"

#define SS 4   /* samples per pixel along each axis: coverage in steps of 1/16, centroids good to ~0.05 px */

static double uniform(Rng *r, double lo, double hi) { return lo + (hi - lo) * rng_uniform(r); }

/* ---- colours: grey level L plus chroma C (cos h e1 + sin h e2), e1, e2 an orthonormal basis of the plane
 * orthogonal to (1, 1, 1); C is a fraction of the largest value that keeps every channel in [0, 1]. ---- */
static void chroma_colour(double L, double hue, double frac, double rgb[3]) {
    const double e1[3] = {2 / sqrt(6.0), -1 / sqrt(6.0), -1 / sqrt(6.0)}, e2[3] = {0, 1 / sqrt(2.0), -1 / sqrt(2.0)};
    double k[3], cmax = 1e9;
    for (int i = 0; i < 3; i++) {
        k[i] = cos(hue) * e1[i] + sin(hue) * e2[i];
        if (k[i] > 1e-12) cmax = fmin(cmax, (1 - L) / k[i]);
        if (k[i] < -1e-12) cmax = fmin(cmax, L / -k[i]);
    }
    for (int i = 0; i < 3; i++) rgb[i] = L + frac * cmax * k[i];
}

static void draw_object(Rng *r, const SynthConfig *sc, double scale, double hue, double rmin, double rmax,
                        SynthObject *o) {
    double S = sc->size;
    o->shape = (int)rng_below(r, SYNTH_NSHAPES);
    o->radius = uniform(r, rmin, rmax) * S;
    o->angle = uniform(r, 0, 2 * I2V_PI);
    chroma_colour(uniform(r, 0.4, 0.6), hue, uniform(r, 0.7, 0.95), o->colour);
    for (int k = 0; k < 2; k++) o->pos0[k] = uniform(r, o->radius, S - o->radius);
    /* speed and direction are independent of everything frame 0 shows: the motion is not in x0 */
    double speed = uniform(r, sc->speed_min, sc->speed_max) * scale, dir = uniform(r, 0, 2 * I2V_PI);
    o->vel[0] = speed * cos(dir);
    o->vel[1] = speed * sin(dir);
}

/* Straight motion reflected between lo and hi (the circumcircle touching a wall): a triangle wave of the
 * unfolded coordinate. *fold counts how many walls were crossed (floor of the unfolded position / span). */
static double reflect(double u, double lo, double hi, long *fold) {
    double span = hi - lo;
    if (span <= 0) {
        if (fold) *fold = 0;
        return 0.5 * (lo + hi);
    }
    double q = (u - lo) / span, f = floor(q), m = q - f;
    if (fold) *fold = (long)f;
    long fi = (long)f;
    return lo + span * ((fi % 2 == 0) ? m : 1 - m);
}

static void object_at(const SynthObject *o, double S, double t, double c[2], long *folds) {
    long total = 0;
    for (int k = 0; k < 2; k++) {
        long f;
        c[k] = reflect(o->pos0[k] + o->vel[k] * t, o->radius, S - o->radius, &f);
        total += f < 0 ? -f : f;
    }
    if (folds) *folds = total;
}

typedef struct Box {
    int x0, y0, x1, y1;      /* pixel range [x0, x1) x [y0, y1) */
} Box;

static Box box_of(double cx, double cy, double R, int S) {
    Box b = {(int)floor(cx - R), (int)floor(cy - R), (int)floor(cx + R) + 1, (int)floor(cy + R) + 1};
    if (b.x0 < 0) b.x0 = 0;
    if (b.y0 < 0) b.y0 = 0;
    if (b.x1 > S) b.x1 = S;
    if (b.y1 > S) b.y1 = S;
    return b;
}

static int in_box(const Box *b, int x, int y) { return x >= b->x0 && x < b->x1 && y >= b->y0 && y < b->y1; }

/* An object placed in one frame: its centre, its rotation and its pixel box. */
typedef struct Placed {
    const SynthObject *o;
    double cx, cy;           /* centre this frame */
    double ca, sa;           /* cos and sin of the orientation */
    Box box;                 /* pixels its circumcircle may touch */
} Placed;

/* The edge normals of the equilateral triangle, in its own frame (vertices at 90, 210 and 330 degrees). */
static const double tri_n[3][2] = {{0, -1}, {0.86602540378443865, 0.5}, {-0.86602540378443865, 0.5}};

/* Is the point (x, y) inside the shape? */
static int inside(const Placed *p, double x, double y) {
    double dx = x - p->cx, dy = y - p->cy, R = p->o->radius;
    if (dx * dx + dy * dy > R * R) return 0;   /* every shape lies within its circumcircle */
    double u = dx * p->ca + dy * p->sa, v = -dx * p->sa + dy * p->ca;
    switch (p->o->shape) {
    case SYNTH_DISC: return 1;
    case SYNTH_SQUARE: return fabs(u) <= R * 0.70710678118654752 && fabs(v) <= R * 0.70710678118654752;
    case SYNTH_TRIANGLE:   /* centroid at the centre: each edge at the inradius R / 2 */
        for (int k = 0; k < 3; k++)
            if (u * tri_n[k][0] + v * tri_n[k][1] > 0.5 * R) return 0;
        return 1;
    case SYNTH_PLUS: {   /* arms of half-width 0.35 R and half-length sqrt(1 - 0.35^2) R: corners on the circle */
        double w = 0.35 * R, a = 0.93674969975975975 * R;
        return (fabs(u) <= a && fabs(v) <= w) || (fabs(u) <= w && fabs(v) <= a);
    }
    }
    return 0;
}

/* 0: no sample of pixel (x, y) can be inside; 2: every sample is (a convex shape holding the 4 corners);
 * 1: partial, sample it. */
static int coverage_class(const Placed *p, int x, int y) {
    double R = p->o->radius;
    double dx = fmax(fmax(x - p->cx, p->cx - (x + 1)), 0), dy = fmax(fmax(y - p->cy, p->cy - (y + 1)), 0);
    if (dx * dx + dy * dy > R * R) return 0;
    if (p->o->shape == SYNTH_PLUS) return 1;
    return inside(p, x, y) && inside(p, x + 1, y) && inside(p, x, y + 1) && inside(p, x + 1, y + 1) ? 2 : 1;
}

static int in_occluder(const SynthTruth *t, double x, double y) {
    return t->has_occluder && x >= t->occluder[0] && x < t->occluder[2] && y >= t->occluder[1] && y < t->occluder[3];
}

/* The frame's layers: the occluder in front, then the main object, then the distractors (the last in front of
 * the others). */
typedef struct Scene {
    const SynthTruth *t;
    Placed p[1 + SYNTH_MAX_DISTRACTORS];   /* [0] main, then distractors */
    int nobj;
    Box occ;                 /* pixels the occluder touches */
} Scene;

static void place(Placed *p, const SynthObject *o, double S, double t, long *folds) {
    double c[2];
    object_at(o, S, t, c, folds);
    p->o = o;
    p->cx = c[0];
    p->cy = c[1];
    p->ca = cos(o->angle);
    p->sa = sin(o->angle);
    p->box = box_of(c[0], c[1], o->radius, (int)S);
}

/* Layer of one sample: 0 occluder, 1 main, 1 + k distractor k, -1 background. */
static int sample_layer(const Scene *sc, double x, double y) {
    if (in_occluder(sc->t, x, y)) return 0;
    if (inside(&sc->p[0], x, y)) return 1;
    for (int k = sc->nobj - 1; k >= 1; k--)
        if (inside(&sc->p[k], x, y)) return 1 + k;
    return -1;
}

static const double *layer_colour(const Scene *sc, int layer, const double *bg3, const double *occ3) {
    return layer < 0 ? bg3 : layer == 0 ? occ3 : sc->p[layer - 1].o->colour;
}

/* One pixel: background, a layer that covers it whole (a pixel is sampled only where an edge crosses it, so
 * the result equals full 4 x 4 supersampling), or the mean of its samples. */
static void shade_pixel(const Scene *sc, int x, int y, double bgv, double rgb[3]) {
    const SynthTruth *t = sc->t;
    double bg3[3] = {bgv, bgv, bgv}, occ3[3] = {t->occluder_grey, t->occluder_grey, t->occluder_grey};
    int occ_touch = in_box(&sc->occ, x, y);
    if (occ_touch && x >= t->occluder[0] && x + 1 <= t->occluder[2] && y >= t->occluder[1] && y + 1 <= t->occluder[3]) {
        memcpy(rgb, occ3, sizeof occ3);   /* inside the bar */
        return;
    }
    int need_samples = occ_touch, solid = -1;
    for (int k = 0; k < sc->nobj && !need_samples && solid < 0; k++) {
        int idx = k == 0 ? 0 : sc->nobj - k;   /* front to back: main, then the last distractor first */
        if (!in_box(&sc->p[idx].box, x, y)) continue;
        int cls = coverage_class(&sc->p[idx], x, y);
        if (cls == 2) solid = 1 + idx;
        else if (cls == 1) need_samples = 1;
    }
    if (!need_samples) {
        memcpy(rgb, layer_colour(sc, solid, bg3, occ3), 3 * sizeof(double));
        return;
    }
    double acc[3] = {0, 0, 0};
    for (int sy = 0; sy < SS; sy++)
        for (int sx = 0; sx < SS; sx++) {
            const double *c = layer_colour(sc, sample_layer(sc, x + (sx + 0.5) / SS, y + (sy + 0.5) / SS), bg3, occ3);
            for (int ch = 0; ch < 3; ch++) acc[ch] += c[ch];
        }
    for (int ch = 0; ch < 3; ch++) rgb[ch] = acc[ch] / (SS * SS);
}

static void render_frame(const Scene *sc, const float *bg, int S, real *out /* (3, S, S) */) {
    size_t hw = (size_t)S * S;
    for (int y = 0; y < S; y++) {
        for (int x = 0; x < S; x++) {
            size_t i = (size_t)y * S + x;
            int touched = in_box(&sc->occ, x, y);
            for (int k = 0; k < sc->nobj && !touched; k++) touched = in_box(&sc->p[k].box, x, y);
            double rgb[3];
            if (touched) {
                shade_pixel(sc, x, y, bg[i], rgb);
            } else {
                rgb[0] = rgb[1] = rgb[2] = bg[i];
            }
            for (int c = 0; c < 3; c++) out[c * hw + i] = (real)(2 * rgb[c] - 1);
        }
    }
}

/* Fraction of the main object's samples not under the occluder. */
static double visible_fraction(const Scene *sc) {
    const SynthTruth *t = sc->t;
    const Box *b = &sc->p[0].box;
    if (!t->has_occluder || sc->occ.x1 <= b->x0 || sc->occ.x0 >= b->x1 || sc->occ.y1 <= b->y0 || sc->occ.y0 >= b->y1)
        return 1;
    long in = 0, seen = 0;
    for (int y = b->y0; y < b->y1; y++)
        for (int x = b->x0; x < b->x1; x++)
            for (int sy = 0; sy < SS; sy++)
                for (int sx = 0; sx < SS; sx++) {
                    double px = x + (sx + 0.5) / SS, py = y + (sy + 0.5) / SS;
                    if (!inside(&sc->p[0], px, py)) continue;
                    in++;
                    seen += !in_occluder(t, px, py);
                }
    return in ? (double)seen / (double)in : 0;
}

/* The static grey texture: two gratings, a faint checkerboard, pixel noise; values in [0.05, 0.95]. */
static void draw_background(Rng *r, int S, double texture, float *bg) {
    double mu = uniform(r, 0.35, 0.65);
    double amp[2], fx[2], fy[2], ph[2];
    for (int k = 0; k < 2; k++) {
        amp[k] = uniform(r, 0.04, 0.12);
        do {
            fx[k] = (double)rng_below(r, 7) - 3;
            fy[k] = (double)rng_below(r, 7) - 3;
        } while (fx[k] == 0 && fy[k] == 0);
        ph[k] = uniform(r, 0, 2 * I2V_PI);
    }
    double cell = uniform(r, 3, 10) * S / 64.0, camp = rng_uniform(r) < 0.5 ? uniform(r, 0.02, 0.06) : 0;
    double noise = uniform(r, 0, 0.03);
    /* cos(a + b) = cos a cos b - sin a sin b: the gratings from per-column and per-row tables */
    double *tab = xmalloc((size_t)8 * S * sizeof(double));
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < S; i++) {
            double ax = 2 * I2V_PI * fx[k] * (i + 0.5) / S, ay = 2 * I2V_PI * fy[k] * (i + 0.5) / S + ph[k];
            tab[(4 * k + 0) * S + i] = cos(ax);
            tab[(4 * k + 1) * S + i] = sin(ax);
            tab[(4 * k + 2) * S + i] = cos(ay);
            tab[(4 * k + 3) * S + i] = sin(ay);
        }
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            double px = x + 0.5, py = y + 0.5, g = mu;
            for (int k = 0; k < 2; k++)
                g += amp[k] * (tab[(4 * k) * S + x] * tab[(4 * k + 2) * S + y] -
                               tab[(4 * k + 1) * S + x] * tab[(4 * k + 3) * S + y]);
            g += ((long)floor(px / cell) + (long)floor(py / cell)) % 2 ? camp : -camp;
            g += noise * (2 * rng_uniform(r) - 1);
            g = mu + texture * (g - mu);   /* the same draws whatever the contrast: only the amplitude changes */
            bg[(size_t)y * S + x] = (float)(g < 0.05 ? 0.05 : g > 0.95 ? 0.95 : g);
        }
    free(tab);
}

void synth_video(const SynthConfig *sc, uint64_t seed, uint64_t index, real *video, SynthTruth *truth) {
    I2V_ASSERT(sc->frames >= 1 && sc->frames <= SYNTH_MAX_FRAMES && sc->size >= 8, "synthetic config %d frames, %d px",
               sc->frames, sc->size);
    I2V_ASSERT(sc->max_distractors >= 0 && sc->max_distractors <= SYNTH_MAX_DISTRACTORS, "distractors %d",
               sc->max_distractors);
    int S = sc->size, T = sc->frames;
    double scale = S / 64.0;
    Rng r;
    rng_seed(&r, rng_hash64(seed ^ rng_hash64(index + 0x632be59bd9b4e019ull)));
    SynthTruth *t = truth;
    memset(t, 0, sizeof *t);
    t->size = S;
    t->frames = T;
    double hue = uniform(&r, 0, 2 * I2V_PI);
    draw_object(&r, sc, scale, hue, 0.09 * sc->object_scale, 0.14 * sc->object_scale, &t->main);
    t->ndistractors = (int)rng_below(&r, (uint32_t)sc->max_distractors + 1);
    for (int k = 0; k < t->ndistractors; k++)
        draw_object(&r, sc, scale, hue + uniform(&r, 2 * I2V_PI / 3, 4 * I2V_PI / 3), 0.07 * sc->object_scale, 0.12 * sc->object_scale,
                    &t->distractor[k]);
    if (rng_uniform(&r) < sc->occluder_prob) {
        t->has_occluder = 1;
        double w = uniform(&r, 0.08, 0.14) * S, c = uniform(&r, 0.25, 0.75) * S;
        int vertical = rng_uniform(&r) < 0.5;
        t->occluder[0] = vertical ? c - w / 2 : 0;
        t->occluder[1] = vertical ? 0 : c - w / 2;
        t->occluder[2] = vertical ? c + w / 2 : S;
        t->occluder[3] = vertical ? S : c + w / 2;
        t->occluder_grey = rng_uniform(&r) < 0.5 ? uniform(&r, 0.05, 0.2) : uniform(&r, 0.8, 0.95);
    }
    float *bg = xmalloc((size_t)S * S * sizeof(float));
    draw_background(&r, S, sc->texture, bg);

    t->speed = hypot(t->main.vel[0], t->main.vel[1]);
    t->direction = atan2(t->main.vel[1], t->main.vel[0]);
    double speed_max_px = sc->speed_max * scale;
    long folds0 = 0;
    Scene scene;
    memset(&scene, 0, sizeof scene);
    scene.t = t;
    scene.nobj = 1 + t->ndistractors;
    Box none = {0, 0, 0, 0};
    scene.occ = none;
    if (t->has_occluder) {   /* only the bar's edge pixels need samples, but its box is cheap to sample whole */
        scene.occ.x0 = (int)floor(t->occluder[0]);
        scene.occ.y0 = (int)floor(t->occluder[1]);
        scene.occ.x1 = (int)ceil(t->occluder[2]);
        scene.occ.y1 = (int)ceil(t->occluder[3]);
    }
    for (int f = 0; f < T; f++) {
        long folds;
        place(&scene.p[0], &t->main, S, f, &folds);
        for (int k = 0; k < t->ndistractors; k++) place(&scene.p[1 + k], &t->distractor[k], S, f, NULL);
        if (f == 0) folds0 = folds;
        t->bounces = (int)labs(folds - folds0);
        t->centre[f][0] = scene.p[0].cx;
        t->centre[f][1] = scene.p[0].cy;
        t->control[f][0] = scene.p[0].cx / S;
        t->control[f][1] = scene.p[0].cy / S;
        t->control[f][2] = t->speed / speed_max_px;
        t->visible[f] = visible_fraction(&scene);
        if (video) render_frame(&scene, bg, S, video + (size_t)f * 3 * S * S);
    }
    free(bg);
}

/* ==== trajectory recovery ======================================================================================== */
void synth_track(const real *video, size_t frames, size_t height, size_t width, const double colour[3],
                 double radius, double *centre, double *mass) {
    size_t H = height, W = width, hw = H * W;
    double m = (colour[0] + colour[1] + colour[2]) / 3, co[3], n2 = 0;
    for (int c = 0; c < 3; c++) {
        co[c] = colour[c] - m;
        n2 += co[c] * co[c];
    }
    I2V_ASSERT(n2 > 1e-8, "synth_track: the colour (%g, %g, %g) is grey; its chroma cannot be tracked", colour[0],
               colour[1], colour[2]);
    double *alpha = xmalloc(hw * sizeof(double)), *integ = xmalloc((H + 1) * (W + 1) * sizeof(double));
    long r = lround(radius);
    if (r < 1) r = 1;
    double rw = 1.5 * radius + 2;
    for (size_t f = 0; f < frames; f++) {
        const real *v = video + f * 3 * hw;
        /* <(v + 1) / 2, co> / |co|^2 = <v, co> / (2 |co|^2), since co sums to zero */
        for (size_t i = 0; i < hw; i++) {
            double a = (v[i] * co[0] + v[hw + i] * co[1] + v[2 * hw + i] * co[2]) / (2 * n2);
            alpha[i] = a < 0 ? 0 : a > 1 ? 1 : a;
        }
        for (size_t x = 0; x <= W; x++) integ[x] = 0;
        for (size_t y = 0; y < H; y++) {
            double row = 0;
            integ[(y + 1) * (W + 1)] = 0;
            for (size_t x = 0; x < W; x++) {
                row += alpha[y * W + x];
                integ[(y + 1) * (W + 1) + x + 1] = integ[y * (W + 1) + x + 1] + row;
            }
        }
        /* coarse: the (2r + 1)^2 box holding the most coverage */
        double best = -1, cx = 0, cy = 0;
        for (long y = 0; y < (long)H; y++)
            for (long x = 0; x < (long)W; x++) {
                long x0 = x - r < 0 ? 0 : x - r, y0 = y - r < 0 ? 0 : y - r;
                long x1 = x + r + 1 > (long)W ? (long)W : x + r + 1, y1 = y + r + 1 > (long)H ? (long)H : y + r + 1;
                double s = integ[y1 * (W + 1) + x1] - integ[y0 * (W + 1) + x1] - integ[y1 * (W + 1) + x0] +
                           integ[y0 * (W + 1) + x0];
                if (s > best) {
                    best = s;
                    cx = x + 0.5;
                    cy = y + 0.5;
                }
            }
        /* fine: the coverage-weighted centroid in a window around it, re-centred twice */
        double sum = 0;
        for (int it = 0; it < 3; it++) {
            long x0 = (long)floor(cx - rw), x1 = (long)ceil(cx + rw), y0 = (long)floor(cy - rw), y1 = (long)ceil(cy + rw);
            if (x0 < 0) x0 = 0;
            if (y0 < 0) y0 = 0;
            if (x1 > (long)W) x1 = (long)W;
            if (y1 > (long)H) y1 = (long)H;
            double sx = 0, sy = 0;
            sum = 0;
            for (long y = y0; y < y1; y++)
                for (long x = x0; x < x1; x++) {
                    double a = alpha[y * (long)W + x];
                    sum += a;
                    sx += a * (x + 0.5);
                    sy += a * (y + 0.5);
                }
            if (sum <= 0) break;
            cx = sx / sum;
            cy = sy / sum;
        }
        if (mass) mass[f] = sum;
        centre[2 * f] = sum >= 1 ? cx : NAN;
        centre[2 * f + 1] = sum >= 1 ? cy : NAN;
    }
    free(alpha);
    free(integ);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

void motion_stats(const double *centre, size_t frames, size_t height, size_t width, MotionStats *out) {
    memset(out, 0, sizeof *out);
    long first = -1, last = -1;
    double *steps = xmalloc((frames ? frames : 1) * sizeof(double));
    size_t nsteps = 0;
    for (size_t f = 0; f < frames; f++) {
        if (isnan(centre[2 * f]) || isnan(centre[2 * f + 1])) continue;
        if (first < 0) first = (long)f;
        if (last >= 0) {
            double d = hypot(centre[2 * f] - centre[2 * last], centre[2 * f + 1] - centre[2 * last + 1]);
            out->path += d;
            if ((size_t)last + 1 == f) steps[nsteps++] = d;
        }
        last = (long)f;
        out->found++;
    }
    if (first >= 0) {
        out->disp[0] = centre[2 * last] - centre[2 * first];
        out->disp[1] = centre[2 * last + 1] - centre[2 * first + 1];
        out->final_pos[0] = centre[2 * last] / (double)width;
        out->final_pos[1] = centre[2 * last + 1] / (double)height;
        out->direction = atan2(out->disp[1], out->disp[0]);
    } else {
        out->disp[0] = out->disp[1] = out->final_pos[0] = out->final_pos[1] = out->direction = NAN;
    }
    if (nsteps) {
        qsort(steps, nsteps, sizeof *steps, cmp_double);
        out->speed = nsteps % 2 ? steps[nsteps / 2] : 0.5 * (steps[nsteps / 2 - 1] + steps[nsteps / 2]);
    } else {
        out->speed = NAN;
    }
    free(steps);
}

void motion_control(const MotionStats *s, double speed_max_px, double out[3]) {
    out[0] = s->final_pos[0];
    out[1] = s->final_pos[1];
    out[2] = s->speed / speed_max_px;
}

double motion_energy_distance(const double *a, size_t na, const double *b, size_t nb, int dim) {
    I2V_ASSERT(na > 0 && nb > 0 && dim > 0, "energy distance of empty sets");
    double ab = 0, aa = 0, bb = 0;
    for (size_t i = 0; i < na; i++)
        for (size_t j = 0; j < nb; j++) {
            double s = 0;
            for (int k = 0; k < dim; k++) {
                double d = a[i * dim + k] - b[j * dim + k];
                s += d * d;
            }
            ab += sqrt(s);
        }
    for (size_t i = 0; i < na; i++)
        for (size_t j = i + 1; j < na; j++) {
            double s = 0;
            for (int k = 0; k < dim; k++) {
                double d = a[i * dim + k] - a[j * dim + k];
                s += d * d;
            }
            aa += 2 * sqrt(s);
        }
    for (size_t i = 0; i < nb; i++)
        for (size_t j = i + 1; j < nb; j++) {
            double s = 0;
            for (int k = 0; k < dim; k++) {
                double d = b[i * dim + k] - b[j * dim + k];
                s += d * d;
            }
            bb += 2 * sqrt(s);
        }
    double e = 2 * ab / ((double)na * nb) - aa / ((double)na * na) - bb / ((double)nb * nb);
    return e < 0 ? 0 : e;   /* >= 0 in exact arithmetic; rounding may leave -1e-17 */
}
