/* shape.c: the raw-array kernels of the shape ops (see shape.h): permutation, concatenation, slicing,
 * gathering along an axis, the gradient of a reshape.
 *
 * Not here: the tape ops (tensor.c), which also compute the plans from the tensors' shapes. Data movement
 * only, no arithmetic but the backward's additions. Dimension legend: (outer, n, inner) around an axis.
 */
#include "kernels/shape.h"

#include <string.h>

/* The output is walked in order; to_out chooses the direction (copy into y, or add into dx). */
static void permute_walk(const PermutePlan *p, const real *src, real *dst, int to_out) {
    const int *sh = p->shape;
    const size_t *st = p->st;
    size_t o = 0;
    for (int i0 = 0; i0 < sh[0]; i0++)
        for (int i1 = 0; i1 < sh[1]; i1++)
            for (int i2 = 0; i2 < sh[2]; i2++)
                for (int i3 = 0; i3 < sh[3]; i3++) {
                    size_t base = i0 * st[0] + i1 * st[1] + i2 * st[2] + i3 * st[3];
                    if (to_out)
                        for (int i4 = 0; i4 < sh[4]; i4++, o++) dst[o] = src[base + i4 * st[4]];
                    else
                        for (int i4 = 0; i4 < sh[4]; i4++, o++) dst[base + i4 * st[4]] += src[o];
                }
}

void permute_forward(real *y, const real *x, const PermutePlan *p) { permute_walk(p, x, y, 1); }
void permute_backward(real *dx, const real *dy, const PermutePlan *p) { permute_walk(p, dy, dx, 0); }

void concat_forward(real *y, const real *x, size_t outer, size_t row, size_t start, size_t len) {
    for (size_t o = 0; o < outer; o++) memcpy(y + o * row + start, x + o * len, len * sizeof(real));
}

void concat_backward(real *dx, const real *dy, size_t outer, size_t row, size_t start, size_t len) {
    for (size_t o = 0; o < outer; o++)
        for (size_t i = 0; i < len; i++) dx[o * len + i] += dy[o * row + start + i];
}

void slice_forward(real *y, const real *x, size_t outer, int total, int start, int len, size_t inner) {
    for (size_t o = 0; o < outer; o++)
        memcpy(y + o * len * inner, x + (o * total + start) * inner, (size_t)len * inner * sizeof(real));
}

void slice_backward(real *dx, const real *dy, size_t outer, int total, int start, int len, size_t inner) {
    for (size_t o = 0; o < outer; o++)
        for (size_t i = 0; i < (size_t)len * inner; i++) dx[(o * total + start) * inner + i] += dy[o * len * inner + i];
}

void index_select_forward(real *y, const real *x, const int64_t *idx, int nidx, size_t outer, int total,
                          size_t inner) {
    for (size_t o = 0; o < outer; o++)
        for (int j = 0; j < nidx; j++)
            memcpy(y + (o * nidx + j) * inner, x + (o * total + (size_t)idx[j]) * inner, inner * sizeof(real));
}

void index_select_backward(real *dx, const real *dy, const int64_t *idx, int nidx, size_t outer, int total,
                           size_t inner) {
    for (size_t o = 0; o < outer; o++)
        for (int j = 0; j < nidx; j++)
            for (size_t i = 0; i < inner; i++)
                dx[(o * total + (size_t)idx[j]) * inner + i] += dy[(o * nidx + j) * inner + i];
}

void reshape_backward(real *dx, const real *dy, size_t n) {
    for (size_t i = 0; i < n; i++) dx[i] += dy[i];
}
