/* count.h: the count of negative entries per sample as an op (the invertible leaky ReLU's log-determinant
 * in flow.c is coef * that count).
 *
 * What it is: a constant with respect to everything that has a gradient (a count is piecewise constant),
 * so it records nothing on the tape; on the GPU it runs there, so that the cINN step never waits for the
 * host. Dimension legend: N batch, D features.
 */
#ifndef I2V_OPS_COUNT_H
#define I2V_OPS_COUNT_H

#include "tensor.h"

/* v (N, ...) -> (N): coef * (the number of negative entries of each sample). Not differentiable (not recorded). */
Tensor *t_count_negative(Ctx *c, Tensor *v, double coef);

#endif
