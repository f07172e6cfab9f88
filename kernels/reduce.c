/* reduce.c: the raw-array kernels of the reductions (see reduce.h): sums over axes, softmax, counts.
 *
 * Not here: the tape ops (tensor.c). Single-threaded, every sum in a fixed order (so in double, the
 * same result on every run). Dimension legend: a plan's 5 axes i0..i4, i4 the innermost; (outer, len,
 * inner) is x around the softmax axis.
 */
#include "kernels/reduce.h"

#include <string.h>

#include "kernels/formulas.h"

void sum_forward(real *y, double *acc, const real *x, const ReducePlan *r, real scale) {
    memset(acc, 0, r->nout * sizeof(double));
    const int *s = r->shape;
    size_t i = 0;
    for (int i0 = 0; i0 < s[0]; i0++)
        for (int i1 = 0; i1 < s[1]; i1++)
            for (int i2 = 0; i2 < s[2]; i2++)
                for (int i3 = 0; i3 < s[3]; i3++) {
                    size_t o = i0 * r->os[0] + i1 * r->os[1] + i2 * r->os[2] + i3 * r->os[3];
                    if (r->os[4] == 0) {
                        double sum = 0;
                        for (int i4 = 0; i4 < s[4]; i4++, i++) sum += x[i];
                        acc[o] += sum;
                    } else {
                        for (int i4 = 0; i4 < s[4]; i4++, i++) acc[o + i4 * r->os[4]] += x[i];
                    }
                }
    for (size_t k = 0; k < r->nout; k++) y[k] = (real)(acc[k] * scale);
}

void sum_backward(real *dx, const real *dy, const ReducePlan *r, real scale) {
    const int *s = r->shape;
    size_t i = 0;
    for (int i0 = 0; i0 < s[0]; i0++)
        for (int i1 = 0; i1 < s[1]; i1++)
            for (int i2 = 0; i2 < s[2]; i2++)
                for (int i3 = 0; i3 < s[3]; i3++) {
                    size_t o = i0 * r->os[0] + i1 * r->os[1] + i2 * r->os[2] + i3 * r->os[3];
                    for (int i4 = 0; i4 < s[4]; i4++, i++) dx[i] += scale * dy[o + i4 * r->os[4]];
                }
}

void softmax_forward(real *y, const real *x, size_t outer, int len, size_t inner) {
    for (size_t o = 0; o < outer; o++)
        for (size_t in = 0; in < inner; in++) {
            size_t base = o * len * inner + in;
            real mx = x[base];
            for (int k = 1; k < len; k++)
                if (x[base + k * inner] > mx) mx = x[base + k * inner];
            double sum = 0;
            for (int k = 0; k < len; k++) {
                real e = r_exp(x[base + k * inner] - mx);
                y[base + k * inner] = e;
                sum += e;
            }
            for (int k = 0; k < len; k++) y[base + k * inner] = (real)(y[base + k * inner] / sum);
        }
}

void softmax_backward(real *dx, const real *dy, const real *y, size_t outer, int len, size_t inner) {
    for (size_t o = 0; o < outer; o++)
        for (size_t in = 0; in < inner; in++) {
            size_t base = o * len * inner + in;
            double dot = 0;
            for (int k = 0; k < len; k++) dot += dy[base + k * inner] * y[base + k * inner];
            for (int k = 0; k < len; k++)
                dx[base + k * inner] += y[base + k * inner] * (dy[base + k * inner] - (real)dot);
        }
}

void count_negative_forward(real *y, const real *x, int rows, size_t len, double weight) {
    for (int i = 0; i < rows; i++) {
        int neg = 0;
        for (size_t d = 0; d < len; d++) neg += x[(size_t)i * len + d] < 0;
        y[i] = (real)(weight * neg);
    }
}
