/* adam.c: one Adam / AMSGrad update over a run of parameters (see adam.h).
 *
 * One pass over p, g, m, v (and vmax); the two variants have their own loop, so that neither tests the
 * variant per element and both vectorise. Dimension legend: n parameters.
 */
#include "kernels/adam.h"

void adam_update(real *p, const real *g, real *m, real *v, real *vmax, size_t n, const AdamHyper *h) {
    real *restrict pr = p, *restrict mr = m, *restrict vr = v, *restrict vmr = vmax;
    const real *restrict gr = g;
    const AdamHyper hyper = *h;
    if (vmr)
        for (size_t i = 0; i < n; i++) pr[i] = adam_f(&hyper, pr[i], gr[i], &mr[i], &vr[i], &vmr[i], 1);
    else
        for (size_t i = 0; i < n; i++) pr[i] = adam_f(&hyper, pr[i], gr[i], &mr[i], &vr[i], NULL, 0);
}
