/* count.c: t_count_negative over the raw kernel of kernels/count.c (or its GPU twin). See ops/count.h. */
#include "ops/count.h"

#include "cuda/cuda.h"
#include "kernels/count.h"

Tensor *t_count_negative(Ctx *c, Tensor *v, double coef) {
    I2V_ASSERT(v->ndim >= 1 && v->shape[0] > 0 && v->dtype == DT_REAL, "count_negative: needs a real (N, ...) tensor");
    Tensor *y = tensor_new(c, 1, DIMS(v->shape[0]));
    size_t rows = (size_t)v->shape[0], per = v->numel / rows;
    if (!c->dry && on_gpu(c)) count_negative_forward_cuda(y->data, v->data, rows, per, coef);
    else if (!c->dry) count_negative_forward(y->data, v->data, rows, per, coef);
    return y;
}
