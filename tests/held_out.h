/* held_out.h: synthetic clips, and how well stage 1 reconstructs held-out ones against the baseline that
 * repeats x0, as the learning checks (test_ae.c, long_learning.c) measure it: PSNR per predicted frame (values in [-1, 1],
 * so the peak-to-peak range is 2), averaged over the frames of `batches` batches of clips. */
#ifndef I2V_HELD_OUT_H
#define I2V_HELD_OUT_H

#include <math.h>
#include <stdint.h>

#include "ae.h"
#include "data.h"

static inline double frame_psnr(const real *a, const real *b, size_t n) {
    double se = 0;
    for (size_t i = 0; i < n; i++) se += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    return 10 * log10(4.0 / (se / (double)n));
}

/* clips first .. first + N - 1 of synthetic stream `seed` of the world dc, at the batch's size and length */
static inline void synth_clips(Tensor *batch, DataConfig dc, uint64_t seed, uint64_t first) {
    dc.img_size = batch->shape[3];
    dc.sequence_length = batch->shape[1];
    SynthConfig sc;
    synth_config_from(&dc, &sc);
    size_t clip = batch->numel / (size_t)batch->shape[0];
    SynthTruth truth;
    for (int n = 0; n < batch->shape[0]; n++)
        synth_video(&sc, seed, first + (uint64_t)n, batch->data + (size_t)n * clip, &truth);
}

/* fill(batch, first) writes clips first .. first + N - 1 of the held-out stream into batch */
static inline void held_out_psnr(Stage1 *s, Tensor *batch, Tensor *recon, int batches,
                                 void (*fill)(Tensor *batch, uint64_t first), double *model, double *base) {
    int N = batch->shape[0], T = batch->shape[1] - 1;
    size_t frame = (size_t)3 * batch->shape[3] * batch->shape[4], clip = (size_t)(T + 1) * frame;
    *model = *base = 0;
    for (int k = 0; k < batches; k++) {
        fill(batch, (uint64_t)k * (uint64_t)N);
        stage1_eval_step(s, batch, NULL, recon);
        for (int n = 0; n < N; n++) {
            const real *v = batch->data + (size_t)n * clip;
            for (int t = 0; t < T; t++) {
                *model += frame_psnr(recon->data + ((size_t)n * T + t) * frame, v + (size_t)(t + 1) * frame, frame);
                *base += frame_psnr(v, v + (size_t)(t + 1) * frame, frame);
            }
        }
    }
    *model /= batches * N * T;
    *base /= batches * N * T;
}

#endif
