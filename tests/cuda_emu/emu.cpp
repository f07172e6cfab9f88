/* emu.cpp: the host side of the CUDA emulation (see cuda_runtime.h in this folder): the block scheduler
 * with one coroutine per GPU thread, the runtime calls, and naive stand-ins for the cuBLAS and cuDNN calls.
 *
 * Scheduling: the first block of every launch runs its threads as coroutines (ucontext); a thread that calls
 * __syncthreads() yields, and the block resumes them all once every thread has arrived or finished. When the
 * first block never reached a barrier, the kernel has none and the other blocks run their threads as plain
 * calls, which is fast enough for model-sized tensors.
 */
#include <map>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ucontext.h>

#include "cublas_v2.h"
#include "cuda_runtime.h"
#include "cudnn.h"

uint3 threadIdx, blockIdx;
dim3 blockDim, gridDim;

static void emu_die(const char *what) {
    fprintf(stderr, "cuda emulator: %s\n", what);
    abort();
}

/* ---- the scheduler ----------------------------------------------------------------------------------- */

enum { RUNNING, WAITING, DONE };
enum { STACK_BYTES = 256 << 10 };
typedef struct Coro {
    ucontext_t ctx;
    char *stack;
    int state;
} Coro;

static Coro *g_th;
static int g_cap;
static int g_cur, g_coroutines, g_barrier_hit;
static ucontext_t g_sched;
static void (*g_run)(void *);
static void *g_fn;

static void set_thread(int t) {
    threadIdx.x = (unsigned)t % blockDim.x;
    threadIdx.y = ((unsigned)t / blockDim.x) % blockDim.y;
    threadIdx.z = (unsigned)t / (blockDim.x * blockDim.y);
}

static void coro_main(void) {
    g_run(g_fn);
    g_th[g_cur].state = DONE;   /* returns to g_sched through uc_link */
}

void __syncthreads(void) {
    if (!g_coroutines) emu_die("__syncthreads in a kernel whose first block had no barrier");
    g_barrier_hit = 1;
    g_th[g_cur].state = WAITING;
    swapcontext(&g_th[g_cur].ctx, &g_sched);
}

static void run_block_coroutines(int nt) {
    if (nt > g_cap) {
        g_th = (Coro *)realloc(g_th, (size_t)nt * sizeof *g_th);
        for (int t = g_cap; t < nt; t++) g_th[t].stack = (char *)malloc(STACK_BYTES);
        g_cap = nt;
    }
    for (int t = 0; t < nt; t++) {
        getcontext(&g_th[t].ctx);
        g_th[t].ctx.uc_stack.ss_sp = g_th[t].stack;
        g_th[t].ctx.uc_stack.ss_size = STACK_BYTES;
        g_th[t].ctx.uc_link = &g_sched;
        makecontext(&g_th[t].ctx, coro_main, 0);
        g_th[t].state = RUNNING;
    }
    g_coroutines = 1;
    for (;;) {
        for (int t = 0; t < nt; t++)
            if (g_th[t].state == RUNNING) {
                g_cur = t;
                set_thread(t);
                swapcontext(&g_sched, &g_th[t].ctx);
            }
        int waiting = 0;
        for (int t = 0; t < nt; t++)
            if (g_th[t].state == WAITING) {
                g_th[t].state = RUNNING;
                waiting = 1;
            }
        if (!waiting) break;
    }
    g_coroutines = 0;
}

void emu_launch_impl(dim3 grid, dim3 block, void (*run)(void *), void *fn) {
    if (grid.x == 0 || block.x == 0 || block.x * block.y * block.z > 1024) emu_die("invalid launch configuration");
    gridDim = grid;
    blockDim = block;
    g_run = run;
    g_fn = fn;
    int nt = (int)(block.x * block.y * block.z), first = 1, barriers = 1;
    for (unsigned z = 0; z < grid.z; z++)
        for (unsigned y = 0; y < grid.y; y++)
            for (unsigned x = 0; x < grid.x; x++) {
                blockIdx.x = x;
                blockIdx.y = y;
                blockIdx.z = z;
                if (barriers) {
                    g_barrier_hit = 0;
                    run_block_coroutines(nt);
                    if (first && !g_barrier_hit) barriers = 0;
                } else {
                    for (int t = 0; t < nt; t++) {
                        set_thread(t);
                        run(fn);
                    }
                }
                first = 0;
            }
}

/* ---- runtime ------------------------------------------------------------------------------------------- */

const char *cudaGetErrorString(cudaError_t e) { return e == cudaSuccess ? "no error" : "emulated CUDA error"; }
cudaError_t cudaGetLastError(void) { return cudaSuccess; }

struct EmuStream {
    int unused;
};
struct EmuEvent {
    double t;
};
static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags) {
    (void)flags;
    *s = new EmuStream();
    return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t s) {
    delete s;
    return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t s) {
    (void)s;
    return cudaSuccess;
}
cudaError_t cudaEventCreate(cudaEvent_t *e) {
    *e = new EmuEvent();
    return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
    (void)s;
    e->t = now_ms();
    return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t e) {
    (void)e;
    return cudaSuccess;
}
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b) {
    *ms = (float)(b->t - a->t);
    return cudaSuccess;
}

cudaError_t cudaGetDeviceCount(int *n) {
    *n = 1;
    return cudaSuccess;
}
cudaError_t cudaSetDevice(int d) { return d == 0 ? cudaSuccess : cudaErrorInvalidValue; }
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int d) {
    (void)d;
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "CUDA emulator (host)");
    p->major = 9;
    p->minor = 0;
    p->multiProcessorCount = 1;
    p->memoryBusWidth = 64;
    p->managedMemory = 1;
    p->concurrentManagedAccess = 1;
    return cudaSuccess;
}
cudaError_t cudaDeviceGetAttribute(int *v, cudaDeviceAttr a, int d) {
    (void)a;
    (void)d;
    *v = 1000000;   /* 1 GHz */
    return cudaSuccess;
}
cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes) {
    *free_bytes = (size_t)32 << 30;
    *total_bytes = (size_t)40 << 30;
    return cudaSuccess;
}

/* allocations, so that cudaPointerGetAttributes can tell device / managed / pinned memory from the rest */
static std::map<const char *, std::pair<size_t, cudaMemoryType>> g_allocs;

static cudaError_t emu_alloc(void **p, size_t bytes, cudaMemoryType type) {
    *p = aligned_alloc(256, (bytes + 255) / 256 * 256);
    if (!*p) return cudaErrorMemoryAllocation;
    g_allocs[(const char *)*p] = std::make_pair(bytes, type);
    return cudaSuccess;
}
static cudaError_t emu_free(void *p) {
    if (!p) return cudaSuccess;
    if (!g_allocs.erase((const char *)p)) emu_die("cudaFree of memory cudaMalloc did not give");
    free(p);
    return cudaSuccess;
}
cudaError_t cudaMalloc(void **p, size_t bytes) { return emu_alloc(p, bytes, cudaMemoryTypeDevice); }
cudaError_t cudaMallocManaged(void **p, size_t bytes, unsigned flags) {
    (void)flags;
    return emu_alloc(p, bytes, cudaMemoryTypeManaged);
}
cudaError_t cudaMallocHost(void **p, size_t bytes) { return emu_alloc(p, bytes, cudaMemoryTypeHost); }
cudaError_t cudaFree(void *p) { return emu_free(p); }
cudaError_t cudaFreeHost(void *p) { return emu_free(p); }
cudaError_t cudaMemAdvise(const void *p, size_t bytes, cudaMemoryAdvise a, cudaMemLocation l) {
    (void)p, (void)bytes, (void)a, (void)l;
    return cudaSuccess;
}
cudaError_t cudaMemPrefetchAsync(const void *p, size_t bytes, cudaMemLocation l, unsigned flags, cudaStream_t s) {
    (void)p, (void)bytes, (void)l, (void)flags, (void)s;
    return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void *p, int v, size_t bytes, cudaStream_t s) {
    (void)s;
    memset(p, v, bytes);
    return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind k, cudaStream_t s) {
    (void)k, (void)s;
    memmove(dst, src, bytes);
    return cudaSuccess;
}
cudaError_t cudaPointerGetAttributes(cudaPointerAttributes *a, const void *p) {
    a->type = cudaMemoryTypeUnregistered;
    auto it = g_allocs.upper_bound((const char *)p);
    if (it != g_allocs.begin()) {
        --it;
        if ((const char *)p < it->first + it->second.first) a->type = it->second.second;
    }
    return cudaSuccess;
}

/* ---- cuBLAS: column-major C = alpha op(A) op(B) + beta C ------------------------------------------------ */

struct EmuCublas {
    int unused;
};
cublasStatus_t cublasCreate(cublasHandle_t *h) {
    *h = new EmuCublas();
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s) {
    (void)h, (void)s;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t m) {
    (void)h, (void)m;
    return CUBLAS_STATUS_SUCCESS;
}

template <class T>
static cublasStatus_t gemm_cm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, T alpha, const T *A,
                              int lda, const T *B, int ldb, T beta, T *C, int ldc) {
    if (m < 0 || n < 0 || k < 0 || ldc < (m > 1 ? m : 1)) return CUBLAS_STATUS_INVALID_VALUE;
    if (lda < ((ta == CUBLAS_OP_N ? m : k) > 1 ? (ta == CUBLAS_OP_N ? m : k) : 1)) return CUBLAS_STATUS_INVALID_VALUE;
    if (ldb < ((tb == CUBLAS_OP_N ? k : n) > 1 ? (tb == CUBLAS_OP_N ? k : n) : 1)) return CUBLAS_STATUS_INVALID_VALUE;
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) {
            double s = 0;
            for (int l = 0; l < k; l++) {
                T a = ta == CUBLAS_OP_N ? A[i + (size_t)l * lda] : A[l + (size_t)i * lda];
                T b = tb == CUBLAS_OP_N ? B[l + (size_t)j * ldb] : B[j + (size_t)l * ldb];
                s += (double)a * b;
            }
            T *c = &C[i + (size_t)j * ldc];
            *c = (T)(alpha * s + (beta != 0 ? (double)beta * *c : 0.0));
        }
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                           const float *alpha, const float *A, int lda, const float *B, int ldb, const float *beta,
                           float *C, int ldc) {
    (void)h;
    return gemm_cm(ta, tb, m, n, k, *alpha, A, lda, B, ldb, *beta, C, ldc);
}
cublasStatus_t cublasDgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                           const double *alpha, const double *A, int lda, const double *B, int ldb, const double *beta,
                           double *C, int ldc) {
    (void)h;
    return gemm_cm(ta, tb, m, n, k, *alpha, A, lda, B, ldb, *beta, C, ldc);
}
template <class T>
static cublasStatus_t gemm_batched(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, T alpha, const T *A,
                                   int lda, long long sA, const T *B, int ldb, long long sB, T beta, T *C, int ldc,
                                   long long sC, int batch) {
    for (int i = 0; i < batch; i++) {
        cublasStatus_t st = gemm_cm(ta, tb, m, n, k, alpha, A + i * sA, lda, B + i * sB, ldb, beta, C + i * sC, ldc);
        if (st != CUBLAS_STATUS_SUCCESS) return st;
    }
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                         int k, const float *alpha, const float *A, int lda, long long sA,
                                         const float *B, int ldb, long long sB, const float *beta, float *C, int ldc,
                                         long long sC, int batch) {
    (void)h;
    return gemm_batched(ta, tb, m, n, k, *alpha, A, lda, sA, B, ldb, sB, *beta, C, ldc, sC, batch);
}
cublasStatus_t cublasDgemmStridedBatched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                         int k, const double *alpha, const double *A, int lda, long long sA,
                                         const double *B, int ldb, long long sB, const double *beta, double *C,
                                         int ldc, long long sC, int batch) {
    (void)h;
    return gemm_batched(ta, tb, m, n, k, *alpha, A, lda, sA, B, ldb, sB, *beta, C, ldc, sC, batch);
}

/* ---- cuDNN: NC(D)HW cross-correlation from the descriptors ------------------------------------------------ */

struct EmuCudnn {
    int unused;
};
struct EmuTensorDesc {
    cudnnDataType_t type;
    int nd, dims[8], strides[8];
};
struct EmuFilterDesc {
    cudnnDataType_t type;
    int nd, dims[8];
};
struct EmuConvDesc {
    int n, pad[3], stride[3], dil[3];
    cudnnConvolutionMode_t mode;
    cudnnMathType_t math;
};

const char *cudnnGetErrorString(cudnnStatus_t s) { return s == CUDNN_STATUS_SUCCESS ? "success" : "emulated cuDNN error"; }
cudnnStatus_t cudnnCreate(cudnnHandle_t *h) {
    *h = new EmuCudnn();
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetStream(cudnnHandle_t h, cudaStream_t s) {
    (void)h, (void)s;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t *d) {
    *d = new EmuTensorDesc();
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetTensorNdDescriptor(cudnnTensorDescriptor_t d, cudnnDataType_t t, int nd, const int *dims,
                                         const int *strides) {
    if (nd < 4 || nd > 5) return CUDNN_STATUS_BAD_PARAM;
    d->type = t;
    d->nd = nd;
    int s = 1;
    for (int i = nd - 1; i >= 0; i--) {   /* only packed NC(D)HW is emulated */
        if (dims[i] < 1 || strides[i] != s) return CUDNN_STATUS_NOT_SUPPORTED;
        d->dims[i] = dims[i];
        d->strides[i] = strides[i];
        s *= dims[i];
    }
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t *d) {
    *d = new EmuFilterDesc();
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetFilterNdDescriptor(cudnnFilterDescriptor_t d, cudnnDataType_t t, cudnnTensorFormat_t f, int nd,
                                         const int *dims) {
    if (f != CUDNN_TENSOR_NCHW || nd < 4 || nd > 5) return CUDNN_STATUS_BAD_PARAM;
    d->type = t;
    d->nd = nd;
    for (int i = 0; i < nd; i++) d->dims[i] = dims[i];
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t *d) {
    *d = new EmuConvDesc();
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolutionNdDescriptor(cudnnConvolutionDescriptor_t d, int n, const int *pad, const int *stride,
                                              const int *dilation, cudnnConvolutionMode_t mode, cudnnDataType_t t) {
    (void)t;
    if (n < 2 || n > 3) return CUDNN_STATUS_BAD_PARAM;
    d->n = n;
    for (int i = 0; i < n; i++) {
        if (stride[i] < 1 || dilation[i] != 1 || pad[i] < 0) return CUDNN_STATUS_NOT_SUPPORTED;
        d->pad[i] = pad[i];
        d->stride[i] = stride[i];
        d->dil[i] = dilation[i];
    }
    d->mode = mode;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t d, cudnnMathType_t m) {
    d->math = m;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnGetConvolutionNdForwardOutputDim(cudnnConvolutionDescriptor_t c, cudnnTensorDescriptor_t x,
                                                    cudnnFilterDescriptor_t w, int nd, int *out) {
    if (nd != x->nd || nd != w->nd || c->n != nd - 2 || w->dims[1] != x->dims[1]) return CUDNN_STATUS_BAD_PARAM;
    out[0] = x->dims[0];
    out[1] = w->dims[0];
    for (int i = 0; i < c->n; i++) out[2 + i] = (x->dims[2 + i] + 2 * c->pad[i] - w->dims[2 + i]) / c->stride[i] + 1;
    return CUDNN_STATUS_SUCCESS;
}

template <class P>
static void one_algo(P *perf, int *n) {
    memset(perf, 0, sizeof *perf);
    perf->status = CUDNN_STATUS_SUCCESS;
    perf->determinism = CUDNN_DETERMINISTIC;
    perf->mathType = CUDNN_FMA_MATH;
    *n = 1;
}
cudnnStatus_t cudnnGetConvolutionForwardAlgorithm_v7(cudnnHandle_t h, cudnnTensorDescriptor_t x,
                                                     cudnnFilterDescriptor_t w, cudnnConvolutionDescriptor_t c,
                                                     cudnnTensorDescriptor_t y, int req, int *n,
                                                     cudnnConvolutionFwdAlgoPerf_t *perf) {
    (void)h, (void)x, (void)w, (void)c, (void)y, (void)req;
    one_algo(perf, n);
    perf->algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithm_v7(cudnnHandle_t h, cudnnFilterDescriptor_t w,
                                                          cudnnTensorDescriptor_t dy, cudnnConvolutionDescriptor_t c,
                                                          cudnnTensorDescriptor_t dx, int req, int *n,
                                                          cudnnConvolutionBwdDataAlgoPerf_t *perf) {
    (void)h, (void)w, (void)dy, (void)c, (void)dx, (void)req;
    one_algo(perf, n);
    perf->algo = CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithm_v7(cudnnHandle_t h, cudnnTensorDescriptor_t x,
                                                            cudnnTensorDescriptor_t dy, cudnnConvolutionDescriptor_t c,
                                                            cudnnFilterDescriptor_t dw, int req, int *n,
                                                            cudnnConvolutionBwdFilterAlgoPerf_t *perf) {
    (void)h, (void)x, (void)dy, (void)c, (void)dw, (void)req;
    one_algo(perf, n);
    perf->algo = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnGetConvolutionForwardWorkspaceSize(cudnnHandle_t h, cudnnTensorDescriptor_t x,
                                                      cudnnFilterDescriptor_t w, cudnnConvolutionDescriptor_t c,
                                                      cudnnTensorDescriptor_t y, cudnnConvolutionFwdAlgo_t a,
                                                      size_t *bytes) {
    (void)h, (void)x, (void)w, (void)c, (void)y, (void)a;
    *bytes = 0;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnGetConvolutionBackwardDataWorkspaceSize(cudnnHandle_t h, cudnnFilterDescriptor_t w,
                                                           cudnnTensorDescriptor_t dy, cudnnConvolutionDescriptor_t c,
                                                           cudnnTensorDescriptor_t dx, cudnnConvolutionBwdDataAlgo_t a,
                                                           size_t *bytes) {
    (void)h, (void)w, (void)dy, (void)c, (void)dx, (void)a;
    *bytes = 0;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnGetConvolutionBackwardFilterWorkspaceSize(cudnnHandle_t h, cudnnTensorDescriptor_t x,
                                                             cudnnTensorDescriptor_t dy, cudnnConvolutionDescriptor_t c,
                                                             cudnnFilterDescriptor_t dw,
                                                             cudnnConvolutionBwdFilterAlgo_t a, size_t *bytes) {
    (void)h, (void)x, (void)dy, (void)c, (void)dw, (void)a;
    *bytes = 0;
    return CUDNN_STATUS_SUCCESS;
}

/* The geometry of a call, with the 2-D case as depth 1. */
typedef struct Geo {
    int N, C, K, in[3], k[3], out[3], pad[3], stride[3];
} Geo;

static cudnnStatus_t geo_of(cudnnTensorDescriptor_t x, cudnnFilterDescriptor_t w, cudnnConvolutionDescriptor_t c,
                            cudnnTensorDescriptor_t y, Geo *g) {
    int nd = x->nd, ns = nd - 2, out[5];
    if (y->nd != nd || c->mode != CUDNN_CROSS_CORRELATION || x->type != w->type || x->type != y->type)
        return CUDNN_STATUS_BAD_PARAM;
    if (cudnnGetConvolutionNdForwardOutputDim(c, x, w, nd, out) != CUDNN_STATUS_SUCCESS) return CUDNN_STATUS_BAD_PARAM;
    for (int i = 0; i < nd; i++)
        if (out[i] != y->dims[i]) return CUDNN_STATUS_BAD_PARAM;
    g->N = x->dims[0];
    g->C = x->dims[1];
    g->K = w->dims[0];
    for (int i = 0; i < 3; i++) {
        int j = i - (3 - ns);   /* the descriptor's spatial axis, or none for the missing depth */
        g->in[i] = j < 0 ? 1 : x->dims[2 + j];
        g->k[i] = j < 0 ? 1 : w->dims[2 + j];
        g->out[i] = j < 0 ? 1 : y->dims[2 + j];
        g->pad[i] = j < 0 ? 0 : c->pad[j];
        g->stride[i] = j < 0 ? 1 : c->stride[j];
    }
    return CUDNN_STATUS_SUCCESS;
}

/* which: 0 y = conv(x, w), 1 dx = conv^T(dy, w), 2 dw = corr(x, dy); out = alpha * that + beta * out */
template <class T>
static void conv_naive(const Geo &g, int which, const T *x, const T *w, const T *y, T *out, double alpha, double beta) {
    size_t isz = (size_t)g.in[0] * g.in[1] * g.in[2], osz = (size_t)g.out[0] * g.out[1] * g.out[2];
    size_t ksz = (size_t)g.k[0] * g.k[1] * g.k[2];
    size_t nout = which == 0 ? g.N * g.K * osz : which == 1 ? g.N * g.C * isz : g.K * g.C * ksz;
    double *acc = (double *)calloc(nout, sizeof(double));
    for (int n = 0; n < g.N; n++)
        for (int ko = 0; ko < g.K; ko++)
            for (int c = 0; c < g.C; c++)
                for (int ot = 0; ot < g.out[0]; ot++)
                    for (int oh = 0; oh < g.out[1]; oh++)
                        for (int ow = 0; ow < g.out[2]; ow++) {
                            size_t yo = ((size_t)n * g.K + ko) * osz + ((size_t)ot * g.out[1] + oh) * g.out[2] + ow;
                            for (int a = 0; a < g.k[0]; a++) {
                                int ti = ot * g.stride[0] - g.pad[0] + a;
                                if (ti < 0 || ti >= g.in[0]) continue;
                                for (int b = 0; b < g.k[1]; b++) {
                                    int hi = oh * g.stride[1] - g.pad[1] + b;
                                    if (hi < 0 || hi >= g.in[1]) continue;
                                    for (int d = 0; d < g.k[2]; d++) {
                                        int wi = ow * g.stride[2] - g.pad[2] + d;
                                        if (wi < 0 || wi >= g.in[2]) continue;
                                        size_t xo = ((size_t)n * g.C + c) * isz + ((size_t)ti * g.in[1] + hi) * g.in[2] + wi;
                                        size_t wo = ((size_t)ko * g.C + c) * ksz + ((size_t)a * g.k[1] + b) * g.k[2] + d;
                                        if (which == 0) acc[yo] += (double)x[xo] * w[wo];
                                        else if (which == 1) acc[xo] += (double)y[yo] * w[wo];
                                        else acc[wo] += (double)x[xo] * y[yo];
                                    }
                                }
                            }
                        }
    for (size_t i = 0; i < nout; i++) out[i] = (T)(alpha * acc[i] + (beta != 0 ? beta * (double)out[i] : 0.0));
    free(acc);
}

template <class T>
static cudnnStatus_t conv_call(const Geo &g, int which, const void *x, const void *w, const void *y, void *out,
                               const void *alpha, const void *beta) {
    conv_naive<T>(g, which, (const T *)x, (const T *)w, (const T *)y, (T *)out, *(const T *)alpha, *(const T *)beta);
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t h, const void *alpha, cudnnTensorDescriptor_t xd, const void *x,
                                      cudnnFilterDescriptor_t wd, const void *w, cudnnConvolutionDescriptor_t c,
                                      cudnnConvolutionFwdAlgo_t a, void *ws, size_t wsb, const void *beta,
                                      cudnnTensorDescriptor_t yd, void *y) {
    (void)h, (void)a, (void)ws, (void)wsb;
    Geo g;
    cudnnStatus_t st = geo_of(xd, wd, c, yd, &g);
    if (st != CUDNN_STATUS_SUCCESS) return st;
    return xd->type == CUDNN_DATA_DOUBLE ? conv_call<double>(g, 0, x, w, NULL, y, alpha, beta)
                                         : conv_call<float>(g, 0, x, w, NULL, y, alpha, beta);
}
cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t h, const void *alpha, cudnnFilterDescriptor_t wd,
                                           const void *w, cudnnTensorDescriptor_t dyd, const void *dy,
                                           cudnnConvolutionDescriptor_t c, cudnnConvolutionBwdDataAlgo_t a, void *ws,
                                           size_t wsb, const void *beta, cudnnTensorDescriptor_t dxd, void *dx) {
    (void)h, (void)a, (void)ws, (void)wsb;
    Geo g;
    cudnnStatus_t st = geo_of(dxd, wd, c, dyd, &g);
    if (st != CUDNN_STATUS_SUCCESS) return st;
    return dxd->type == CUDNN_DATA_DOUBLE ? conv_call<double>(g, 1, NULL, w, dy, dx, alpha, beta)
                                          : conv_call<float>(g, 1, NULL, w, dy, dx, alpha, beta);
}
cudnnStatus_t cudnnConvolutionBackwardFilter(cudnnHandle_t h, const void *alpha, cudnnTensorDescriptor_t xd,
                                             const void *x, cudnnTensorDescriptor_t dyd, const void *dy,
                                             cudnnConvolutionDescriptor_t c, cudnnConvolutionBwdFilterAlgo_t a,
                                             void *ws, size_t wsb, const void *beta, cudnnFilterDescriptor_t dwd,
                                             void *dw) {
    (void)h, (void)a, (void)ws, (void)wsb;
    Geo g;
    cudnnStatus_t st = geo_of(xd, dwd, c, dyd, &g);
    if (st != CUDNN_STATUS_SUCCESS) return st;
    return xd->type == CUDNN_DATA_DOUBLE ? conv_call<double>(g, 2, x, NULL, dy, dw, alpha, beta)
                                         : conv_call<float>(g, 2, x, NULL, dy, dw, alpha, beta);
}
