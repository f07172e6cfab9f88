/* cuda_runtime.h (emulation): the part of the CUDA runtime i2v's GPU files use, on the host, so that
 * `make CUDA_EMU=1 test-gpu` runs the GPU suite on a machine without a GPU.
 *
 * What it is: a test tool. The .cu files are compiled as C++ by the host compiler with this folder first on
 * the include path (so this file stands in for CUDA's), after a one-line rewrite of each launch
 * `k<<<grid, block, smem, stream>>>(args);` into `emu_launch(grid, block, [&] { k(args); });`. Every thread of
 * a block runs as a coroutine on its own stack; __syncthreads() switches to the next thread, so barriers and
 * __shared__ memory (a static per kernel: blocks run one after another) behave as on a GPU. "Device" memory
 * is host memory, streams run at once, events read a clock.
 * What it is not: a GPU. It checks the kernels' index arithmetic, barriers and results, not their speed,
 * their memory model (no races can show), nor whether a pointer the host passes is valid on a device.
 * cuBLAS and cuDNN are replaced by naive loops (cublas_v2.h, cudnn.h), so their calls are checked for
 * meaning (layouts, transposes, strides, padding), not for the libraries' own behaviour.
 */
#ifndef I2V_CUDA_EMU_RUNTIME_H
#define I2V_CUDA_EMU_RUNTIME_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmath>

using std::isnan;

#define CUDART_VERSION 13000

#define __global__
#define __device__
#define __host__
#define __shared__ static
#define __forceinline__ inline

struct dim3 {
    unsigned x, y, z;
    dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};
struct uint3 {
    unsigned x, y, z;
};

/* the executing thread's coordinates, set by the scheduler before it switches to a thread */
extern uint3 threadIdx, blockIdx;
extern dim3 blockDim, gridDim;
void __syncthreads(void);

typedef enum cudaError {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorNoDevice = 100,
} cudaError_t;
const char *cudaGetErrorString(cudaError_t e);
cudaError_t cudaGetLastError(void);

typedef struct EmuStream *cudaStream_t;
typedef struct EmuEvent *cudaEvent_t;
enum { cudaStreamNonBlocking = 1 };
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaEventCreate(cudaEvent_t *e);
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s);
cudaError_t cudaEventSynchronize(cudaEvent_t e);
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b);

struct cudaDeviceProp {
    char name[256];
    int major, minor, multiProcessorCount, memoryBusWidth, managedMemory, concurrentManagedAccess;
};
enum cudaDeviceAttr { cudaDevAttrClockRate = 13, cudaDevAttrMemoryClockRate = 36 };
cudaError_t cudaGetDeviceCount(int *n);
cudaError_t cudaSetDevice(int d);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int d);
cudaError_t cudaDeviceGetAttribute(int *v, cudaDeviceAttr a, int d);
cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes);

enum cudaMemcpyKind { cudaMemcpyHostToHost, cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice,
                      cudaMemcpyDefault };
enum cudaMemoryType { cudaMemoryTypeUnregistered = 0, cudaMemoryTypeHost, cudaMemoryTypeDevice, cudaMemoryTypeManaged };
struct cudaPointerAttributes {
    cudaMemoryType type;
};
enum cudaMemLocationType { cudaMemLocationTypeDevice = 1 };
struct cudaMemLocation {
    cudaMemLocationType type;
    int id;
};
enum cudaMemoryAdvise { cudaMemAdviseSetPreferredLocation = 3 };
enum { cudaMemAttachGlobal = 1 };

cudaError_t cudaMalloc(void **p, size_t bytes);
cudaError_t cudaMallocManaged(void **p, size_t bytes, unsigned flags);
cudaError_t cudaMallocHost(void **p, size_t bytes);
cudaError_t cudaFree(void *p);
cudaError_t cudaFreeHost(void *p);
cudaError_t cudaMemAdvise(const void *p, size_t bytes, cudaMemoryAdvise a, cudaMemLocation l);
cudaError_t cudaMemPrefetchAsync(const void *p, size_t bytes, cudaMemLocation l, unsigned flags, cudaStream_t s);
cudaError_t cudaMemsetAsync(void *p, int v, size_t bytes, cudaStream_t s);
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind k, cudaStream_t s);
cudaError_t cudaPointerGetAttributes(cudaPointerAttributes *a, const void *p);
/* the typed overloads CUDA's header has */
template <class T>
static cudaError_t cudaMalloc(T **p, size_t bytes) { return cudaMalloc((void **)p, bytes); }
template <class T>
static cudaError_t cudaMallocHost(T **p, size_t bytes) { return cudaMallocHost((void **)p, bytes); }

/* Runs fn for every thread of every block (emu.cpp). */
template <class F>
static void emu_run_lambda(void *f) { (*(F *)f)(); }
void emu_launch_impl(dim3 grid, dim3 block, void (*run)(void *), void *fn);
template <class F>
static void emu_launch(dim3 grid, dim3 block, F fn) {
    emu_launch_impl(grid, block, emu_run_lambda<F>, &fn);
}
template <class F>
static void emu_launch(dim3 grid, dim3 block, size_t smem, F fn) {
    (void)smem;
    emu_launch_impl(grid, block, emu_run_lambda<F>, &fn);
}
template <class F>
static void emu_launch(dim3 grid, dim3 block, size_t smem, cudaStream_t s, F fn) {
    (void)smem;
    (void)s;
    emu_launch_impl(grid, block, emu_run_lambda<F>, &fn);
}

#endif
