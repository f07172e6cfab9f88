/* count.h: counting entries of a matrix row by row (the raw-array kernel under ops/count.h).
 *
 * What it is: y[r] = coef * (the number of negative entries of row r). It has no backward: the count is
 * piecewise constant, so its derivative is zero wherever it exists. Dimension legend: rows x per, a
 * contiguous matrix of per-sample vectors.
 */
#ifndef I2V_COUNT_H
#define I2V_COUNT_H

#include <stddef.h>

#include "base/base.h"

/* y (rows) = (real)(coef * count of v[r][j] < 0); v (rows, per). */
void count_negative_forward(real *y, const real *v, size_t rows, size_t per, double coef);

#endif
