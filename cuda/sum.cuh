/* sum.cuh: the one way the CUDA files sum many values into a few: deterministic segmented sums.
 *
 * A SumPlan walks outputs o < nout over the kept axes and, for each, the terms j < count over the reduced
 * axes (common.cuh's Axes, up to three arrays). An Op supplies the term at a position and what to do with an
 * output's total:
 *     __device__ double term(const size_t off[3]) const;     off: offsets into the plan's three arrays
 *     __device__ void store(size_t o, double sum) const;
 * tpo threads share an output: each adds its strided share of the terms in index order, then the tpo partial
 * sums meet in a tree in shared memory. When there are few outputs and many terms, each output's terms are
 * cut into `parts` equal chunks summed by different blocks, and a second kernel adds the chunks in order.
 * Every choice depends on nout and count only, so the result does not change from run to run.
 */
#ifndef I2V_CUDA_SUM_CUH
#define I2V_CUDA_SUM_CUH

#include "cuda/common.cuh"

typedef struct SumPlan {
    Axes keep, red;          /* the outputs' axes, the summed axes (offsets add up) */
    size_t nout, count;
    int tpo, parts;          /* threads per output (1, 32 or THREADS); chunks per output */
    size_t chunk;            /* terms per chunk */
} SumPlan;

template <class Op>
__global__ static void sum_kernel(SumPlan p, Op op, double *partial) {
    __shared__ double sh[THREADS];
    int t = threadIdx.x, opb = THREADS / p.tpo, lane = t % p.tpo, slot = t / p.tpo;
    size_t nq = p.nout * (size_t)p.parts;
    for (size_t q0 = (size_t)blockIdx.x * opb; q0 < nq; q0 += (size_t)gridDim.x * opb) {
        size_t q = q0 + (size_t)slot;
        double acc = 0;
        if (q < nq) {
            size_t o = q / (size_t)p.parts, part = q % (size_t)p.parts, base[3], off[3];
            axes_offsets(p.keep, o, base);
            size_t j0 = part * p.chunk, j1 = j0 + p.chunk < p.count ? j0 + p.chunk : p.count;
            for (size_t j = j0 + (size_t)lane; j < j1; j += (size_t)p.tpo) {
                axes_offsets(p.red, j, off);
                off[0] += base[0];
                off[1] += base[1];
                off[2] += base[2];
                acc += op.term(off);
            }
        }
        sh[t] = acc;
        __syncthreads();
        for (int half = p.tpo / 2; half > 0; half /= 2) {
            if (lane < half) sh[t] += sh[t + half];
            __syncthreads();
        }
        if (lane == 0 && q < nq) {
            if (p.parts == 1) op.store(q, sh[t]);
            else partial[q] = sh[t];
        }
        __syncthreads();
    }
}

template <class Op>
__global__ static void sum_finish_kernel(SumPlan p, Op op, const double *partial) {
    for (size_t o = thread_index(); o < p.nout; o += grid_stride()) {
        double s = 0;
        for (int k = 0; k < p.parts; k++) s += partial[o * (size_t)p.parts + (size_t)k];
        op.store(o, s);
    }
}

/* Chooses tpo and parts for the plan's sizes and runs it. */
template <class Op>
static void run_sum(SumPlan p, Op op, const char *name) {
    p.nout = axes_count(&p.keep);
    p.count = axes_count(&p.red);
    if (p.nout == 0) return;
    p.tpo = p.count <= 16 ? 1 : p.count <= 2048 ? 32 : THREADS;
    p.parts = 1;
    if (p.count > 65536 && p.nout < 256) {   /* too few outputs to fill the GPU: cut their sums */
        size_t parts = (p.count + 32767) / 32768;
        p.parts = (int)(parts < 1024 ? parts : 1024);
    }
    p.chunk = (p.count + (size_t)p.parts - 1) / (size_t)p.parts;
    double *partial = p.parts > 1 ? (double *)cuda_workspace(WS_SUM, p.nout * (size_t)p.parts * sizeof(double)) : NULL;
    size_t opb = (size_t)(THREADS / p.tpo), blocks = (p.nout * (size_t)p.parts + opb - 1) / opb;
    sum_kernel<Op><<<(unsigned)(blocks < MAX_GRID ? blocks : MAX_GRID), THREADS, 0, cuda_stream()>>>(p, op, partial);
    cuda_launched(name);
    if (p.parts > 1) {
        sum_finish_kernel<Op><<<grid_for(p.nout), THREADS, 0, cuda_stream()>>>(p, op, partial);
        cuda_launched(name);
    }
}

#endif
