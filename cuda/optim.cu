/* optim.cu: the GPU twin of optim.c's Adam / AMSGrad update: one fused pass per block of parameters.
 *
 * What it is: for each element, the update of kernels/formulas.h's adam_f (the CPU loop's arithmetic):
 * the gradient with weight decay, both moments, AMSGrad's running maximum and the step, reading p, g, m, v
 * (and vmax) once and writing p, m, v (and vmax) once. A memory-bound kernel: its speed is the GPU's
 * bandwidth. What it is not: the schedulers or the bookkeeping of which parameters have gradients (optim.c).
 * Dimension legend: n parameter elements.
 */
#include "cuda/common.cuh"
#include "kernels/formulas.h"

__global__ static void adam_kernel(real *p, const real *g, real *m, real *v, real *vmax, size_t n, AdamHyper h) {
    for (size_t i = thread_index(); i < n; i += grid_stride())
        p[i] = adam_f(&h, p[i], g[i], &m[i], &v[i], vmax ? &vmax[i] : NULL, vmax != NULL);
}

void adam_update_cuda(real *p, const real *g, real *m, real *v, real *vmax, size_t n, const AdamHyper *h) {
    if (n == 0) return;
    int prof = prof_begin("adam", LIB_OWN, 0);
    prof_bytes(prof, (double)n * sizeof(real) * (vmax ? 9 : 7));   /* reads 4 (5) arrays, writes 3 (4) */
    adam_kernel<<<grid_for(n), THREADS, 0, cuda_stream()>>>(p, g, m, v, vmax, n, *h);
    cuda_launched("adam");
    prof_end(prof);
}
