/* count.c: counting negative entries row by row (see count.h). A plain loop: the rows are per-sample
 * vectors of the cINN (64 values), far too small to split over threads. */
#include "kernels/count.h"

void count_negative_forward(real *y, const real *v, size_t rows, size_t per, double coef) {
    for (size_t r = 0; r < rows; r++) {
        size_t neg = 0;
        for (size_t j = 0; j < per; j++) neg += v[r * per + j] < 0;
        y[r] = (real)(coef * (double)neg);
    }
}
