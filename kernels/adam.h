/* adam.h: the raw-array kernel of one Adam / AMSGrad update (torch.optim.Adam, non-foreach), the element
 * formula of kernels/formulas.h (adam_f) run over a contiguous run of parameters.
 *
 * Not here: the optimiser's state, its step count and bias corrections, or which parameters it updates
 * (ops/optim.c). Dimension legend: n parameters.
 */
#ifndef I2V_ADAM_H
#define I2V_ADAM_H

#include <stddef.h>

#include "base/base.h"
#include "kernels/formulas.h"   /* AdamHyper */

/* p, m, v (n) updated in place from the gradient g (n); vmax (n): AMSGrad's running maximum of v, or NULL
 * for plain Adam. None of the arrays may overlap. */
void adam_update(real *p, const real *g, real *m, real *v, real *vmax, size_t n, const AdamHyper *h);

#endif
