/* init.h: PyTorch's parameter initialisers, one place for every network (torch.nn.init and the layers'
 * default reset_parameters). Each fills a parameter allocated by paramset_alloc from the seeded generator
 * r, in row-major order, weight before bias.
 * Dimension legend: a weight (Cout, Cin, k...) seen as the matrix (Cout, K), K = Cin k...; fan_in = K,
 * fan_out = Cout k....
 */
#ifndef I2V_INIT_H
#define I2V_INIT_H

#include "tensor.h"

/* nn.Linear / nn.Conv default (kaiming_uniform_ with a = sqrt(5), and its bias rule): w, then b (if not
 * NULL), both U(-1/sqrt(fan_in), 1/sqrt(fan_in)). */
void init_default(Tensor *w, Tensor *b, Rng *r);
/* kaiming_normal_(mode='fan_out', nonlinearity='relu'): N(0, 2 / fan_out). */
void init_kaiming_normal_fan_out(Tensor *w, Rng *r);
/* xavier_uniform_(gain): U(-a, a), a = gain sqrt(6 / (fan_in + fan_out)). */
void init_xavier_uniform(Tensor *w, double gain, Rng *r);
/* orthogonal_(gain 1): w seen as (Cout, K) gets orthonormal rows (Cout <= K) or columns, the Q factor
 * (with R's diagonal made positive) of the QR decomposition of a Gaussian matrix. */
void init_orthogonal(Tensor *w, Rng *r);

#endif
