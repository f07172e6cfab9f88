/* compare.h: the largest magnitude of an array and the largest difference of two, as the tests that match
 * i2v against reference outputs report them. NaN anywhere counts as an infinite difference. */
#ifndef I2V_COMPARE_H
#define I2V_COMPARE_H

#include <math.h>

#include "tensor.h"

static inline double max_abs(const real *a, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs(a[i]) > m) m = fabs(a[i]);
    return m;
}

static inline double max_abs_diff(const real *a, const real *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= m)) m = isnan(d) ? INFINITY : d;
    }
    return m;
}

#endif
