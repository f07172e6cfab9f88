/* common.cuh: what every CUDA file of i2v shares: the stream, error checks, workspaces, launch sizes, the
 * profiler's event pairs, index plans over up to 5 axes, and the deterministic block reduction. The
 * per-element formulas come from kernels/formulas.h, shared with the CPU.
 *
 * What it is not: a kernel. Kernels live one family per file (elementwise.cu, reduce.cu, gemm.cu, conv.cu,
 * pool.cu, norm.cu, optim.cu), beside the CPU loops they mirror.
 *
 * Launches: one thread per output element in a grid-stride loop (any size works with a capped grid), or one
 * block of THREADS threads per output when each output is a long sum. Every sum is done in double and in an
 * order fixed by the sizes alone: a thread adds its strided share in index order, then the block adds the
 * THREADS partial sums as a tree in shared memory. No atomics, so runs repeat bitwise.
 */
#ifndef I2V_CUDA_COMMON_CUH
#define I2V_CUDA_COMMON_CUH

#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "cuda/cuda.h"

/* ---- errors --------------------------------------------------------------------------------------- */
/* A failed runtime call is a broken invariant (out of memory is checked where memory is asked for): the
 * message names the call and the runtime's reason. */
void cuda_check_at(cudaError_t err, const char *file, int line, const char *call);
#define CUDA_CHECK(call) cuda_check_at((call), __FILE__, __LINE__, #call)
/* After a launch: the launch's own error now, the kernel's at the next synchronisation (or at once with
 * I2V_CUDA_SYNC=1). */
void cuda_launched(const char *kernel);

/* The one stream everything runs on (created by cuda_open). */
cudaStream_t cuda_stream(void);
/* Device workspaces, one per user so that one cannot move another's: the summing machinery's partial sums,
 * the kernels' own temporaries, cuDNN's workspace. Each returns at least `bytes`, valid until the next call
 * with the same slot; kept and grown (growing waits for the stream, so it happens in the first steps only). */
enum WorkspaceSlot { WS_SUM, WS_KERNEL, WS_CUDNN, WS_COUNT };
void *cuda_workspace(int slot, size_t bytes);
/* Bytes the libraries hold (cuDNN's workspace), so cuda_allocated() counts them. */
void cuda_account(ptrdiff_t bytes);

/* The linear layer's bias (elementwise.cu, for gemm.cu): y (rows, cols) += b (cols) on every row; db (cols) +=
 * the column sums of dy. */
void add_bias_rows_cuda(real *y, const real *b, size_t rows, size_t cols);
void bias_rows_backward_cuda(real *db, const real *dy, size_t rows, size_t cols);

/* ---- profiling --------------------------------------------------------------------------------------- */
/* prof_begin records an event and returns a slot (-1 when profiling is off); prof_end records the closing
 * event of that slot. */
int prof_begin(const char *name, CudaLib lib, double flops);
void prof_end(int slot);
/* The bytes a slot's kernel reads and writes, for its bandwidth. */
void prof_bytes(int slot, double bytes);

/* ---- launch sizes ------------------------------------------------------------------------------------ */
static const int THREADS = 256;          /* threads per block everywhere: 8 warps, a power of two for the trees */
static const size_t MAX_GRID = 1 << 16;  /* grid-stride loops never need more blocks than this to fill a GPU */

static inline unsigned grid_for(size_t n) {
    size_t b = (n + THREADS - 1) / THREADS;
    if (b < 1) b = 1;
    return (unsigned)(b < MAX_GRID ? b : MAX_GRID);
}

/* The global index of this thread and the stride of a grid-stride loop. */
__device__ static inline size_t thread_index(void) { return (size_t)blockIdx.x * blockDim.x + threadIdx.x; }
__device__ static inline size_t grid_stride(void) { return (size_t)gridDim.x * blockDim.x; }

/* ---- index plans ---------------------------------------------------------------------------------------
 * Up to 5 axes walked in row-major order (the last axis fastest) over up to 3 arrays, each with its own
 * element stride per axis. axes_plan keeps the axes chosen by `use` (all when NULL), drops axes of extent 1 and
 * merges neighbours that every array steps through contiguously, so the common cases cost one or two
 * divisions per element. */
typedef struct Axes {
    int n;
    size_t ext[5];
    size_t st[3][5];
} Axes;

static inline Axes axes_plan(const int shape[5], const size_t *st0, const size_t *st1, const size_t *st2,
                             const int *use) {
    const size_t *st[3] = {st0, st1, st2};
    Axes a;
    a.n = 0;
    for (int i = 0; i < 5; i++) {
        if ((use && !use[i]) || shape[i] == 1) continue;
        int merge = a.n > 0;   /* with the previous kept axis, if every array allows it */
        for (int k = 0; k < 3 && merge; k++)
            if (st[k] && a.st[k][a.n - 1] != st[k][i] * (size_t)shape[i]) merge = 0;
        if (merge) {
            a.ext[a.n - 1] *= (size_t)shape[i];
            for (int k = 0; k < 3; k++) a.st[k][a.n - 1] = st[k] ? st[k][i] : 0;
        } else {
            a.ext[a.n] = (size_t)shape[i];
            for (int k = 0; k < 3; k++) a.st[k][a.n] = st[k] ? st[k][i] : 0;
            a.n++;
        }
    }
    return a;
}

static inline size_t axes_count(const Axes *a) {
    size_t n = 1;
    for (int i = 0; i < a->n; i++) n *= a->ext[i];
    return n;
}

/* The offsets into the three arrays of the idx-th position (the outermost axis needs no division). */
__host__ __device__ static inline void axes_offsets(const Axes &a, size_t idx, size_t off[3]) {
    off[0] = off[1] = off[2] = 0;
    for (int i = a.n - 1; i >= 0; i--) {
        size_t q = idx;
        if (i > 0) {
            q = idx % a.ext[i];
            idx /= a.ext[i];
        }
        off[0] += q * a.st[0][i];
        off[1] += q * a.st[1][i];
        off[2] += q * a.st[2][i];
    }
}

/* Contiguous row-major strides of a 5-axis shape. */
static inline void contiguous_strides(const int shape[5], size_t st[5]) {
    size_t s = 1;
    for (int i = 4; i >= 0; i--) {
        st[i] = s;
        s *= (size_t)shape[i];
    }
}

/* ---- the block sum --------------------------------------------------------------------------------------
 * Every thread of the block passes its partial sum; all of them get the block's total back. The tree adds
 * partial i and i + half for half = THREADS/2, ..., 1: the same order on every run. `sh` is a __shared__
 * array of THREADS doubles; the call ends with a barrier, so sh can be reused right away. */
__device__ static inline double block_sum(double v, double *sh) {
    int t = threadIdx.x;
    sh[t] = v;
    __syncthreads();
    for (int half = THREADS / 2; half > 0; half /= 2) {
        if (t < half) sh[t] += sh[t + half];
        __syncthreads();
    }
    double total = sh[0];
    __syncthreads();
    return total;
}

#endif
