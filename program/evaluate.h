/* evaluate.h: what a trained model folder achieves, measured on held-out data. */
#ifndef I2V_EVALUATE_H
#define I2V_EVALUATE_H

#include <stdint.h>

#include "data.h"
#include "base/base.h"

typedef struct EvalOpts {
    const char *model;           /* the model folder */
    const char *control_cinn;    /* a controlled cINN's file in the folder (NULL: none) */
    const char *control_config;
    int clips;                   /* test clips (default 32) */
    int samples;                 /* sampled videos per clip for the motion statistics (default 4) */
    uint64_t seed;
    int split;                   /* DataMode: 1 eval, 2 test */
    int noverrides;
    char *const *overrides;      /* "Data.key=value": the data set evaluated on (e.g. Data.data_path) */
} EvalOpts;

typedef struct EvalReport {
    int clips, samples;
    int has_cinn;                                      /* the folder has a cINN: the figures below stage 1's */
    double recon_l1, recon_psnr_db, recon_ssim;       /* stage 1: reconstructions from a posterior sample */
    double repeat_x0_psnr_db;                          /* the baseline that repeats x0 for every frame */
    double recon_shape_iou, recon_colour_error;        /* synthetic: shape and colour (below) of the reconstructions */
    double test_nll, test_bits_per_dim;               /* the cINN: -log p(z | x0) in nats (with the constant) */
    int synthetic;                                     /* the motion figures below need the synthetic set */
    double motion_distance;                            /* energy distance, sampled vs true end displacements */
    double motion_distance_static;                     /* the same for videos that never move */
    double motion_distance_truth;                      /* the same for a fresh ground-truth sample */
    double sample_speed_px, true_speed_px;             /* median speeds, px per frame */
    double shape_iou, shape_iou_truth;                 /* last frame vs x0's object (metrics.h), samples / real */
    double colour_error, colour_error_truth;           /* the object's colour in the last frame vs in x0 */
    int has_control;
    double endpoint_error_px;                          /* controlled samples vs the requested end point */
    double endpoint_error_uncontrolled_px;             /* uncontrolled samples vs the same end points */
    double seconds;
} EvalReport;

/* Evaluates what the folder holds: stage 1 alone, or stage 1 with the conditioning AE and the cINN. */
int evaluate_model(const EvalOpts *o, EvalReport *r, I2vError *e);
/* key=value lines; also into path when not NULL */
int report_write(const EvalReport *r, const char *path, I2vError *e);

#endif
