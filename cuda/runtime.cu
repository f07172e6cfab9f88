/* runtime.cu: the GPU itself: finding it, its memory, the stream, errors and the profiler's events.
 *
 * What it is not: a kernel (the one launch here is the probe that proves this build's code runs on the
 * GPU found). Dimension-free.
 *
 * Memory is CUDA managed memory advised to live on the GPU and prefetched there when it is allocated: the
 * parameters, gradients, optimiser moments and the activation arena stay resident on the GPU while kernels
 * use them, and the host may still read them (a checkpoint, a logged loss) after cuda_sync().
 */
#include "cuda/common.cuh"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int g_open;                 /* cuda_open succeeded */
static int g_device;
static cudaStream_t g_stream;
static cudaDeviceProp g_prop;
static int g_debug_sync = -1;      /* I2V_CUDA_SYNC, read once */
static int g_tf32 = -1;            /* I2V_TF32 or cuda_set_tf32 */
static size_t g_allocated, g_peak; /* bytes held through cuda_alloc and the workspaces; the most so far */
static size_t g_free_at_open;      /* device memory free after cuda_open, less a margin for the libraries */

void cuda_check_at(cudaError_t err, const char *file, int line, const char *call) {
    if (err == cudaSuccess) return;
    i2v_fail(file, line, call, "CUDA error %d: %s", (int)err, cudaGetErrorString(err));
}

cudaStream_t cuda_stream(void) {
    I2V_ASSERT(g_open, "a CUDA kernel was called before cuda_open (the context's device is cuda, the GPU is not open)");
    return g_stream;
}

int cuda_debug_sync(void) {
    if (g_debug_sync < 0) {
        const char *s = getenv("I2V_CUDA_SYNC");
        g_debug_sync = s && s[0] == '1';
    }
    return g_debug_sync;
}

void cuda_launched(const char *kernel) {
    cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess) i2v_fail(__FILE__, __LINE__, kernel, "CUDA launch failed: %s", cudaGetErrorString(err));
    if (cuda_debug_sync()) {
        err = cudaStreamSynchronize(g_stream);
        if (err != cudaSuccess) i2v_fail(__FILE__, __LINE__, kernel, "CUDA kernel failed: %s", cudaGetErrorString(err));
    }
}

void cuda_set_tf32(int on) { g_tf32 = on; }

int cuda_tf32(void) {
    if (g_tf32 < 0) {
        const char *s = getenv("I2V_TF32");
        g_tf32 = s && s[0] == '1';
    }
    return g_tf32;
}

/* ---- opening the device ------------------------------------------------------------------------------ */

/* The probe: a kernel of this build that writes one value. If the GPU's architecture is not among those
 * compiled (CUDA_ARCH) and no PTX fits, its launch fails with "no kernel image". */
__global__ static void probe_kernel(int *out) { *out = 42; }

int cuda_open(char *why, size_t cap) {
    if (g_open) return 0;
    int count = 0;
    cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) {
        snprintf(why, cap, "%s", cudaGetErrorString(err));
        cudaGetLastError();   /* clear the sticky error so the CPU path is not disturbed */
        return -1;
    }
    if (count == 0) {
        snprintf(why, cap, "the CUDA runtime found no GPU");
        return -1;
    }
    const char *env = getenv("I2V_CUDA_DEVICE");
    int dev = env ? atoi(env) : 0;
    if (dev < 0 || dev >= count) {
        snprintf(why, cap, "I2V_CUDA_DEVICE=%s, but there are %d GPUs (0 to %d)", env, count, count - 1);
        return -1;
    }
    if ((err = cudaSetDevice(dev)) != cudaSuccess || (err = cudaGetDeviceProperties(&g_prop, dev)) != cudaSuccess) {
        snprintf(why, cap, "GPU %d: %s", dev, cudaGetErrorString(err));
        cudaGetLastError();
        return -1;
    }
    if (!g_prop.managedMemory || !g_prop.concurrentManagedAccess) {
        snprintf(why, cap, "%s does not let the host and the GPU share managed memory concurrently, which i2v's "
                 "GPU backend needs (Linux and a Pascal or newer GPU have it)", g_prop.name);
        return -1;
    }
    if ((err = cudaStreamCreateWithFlags(&g_stream, cudaStreamNonBlocking)) != cudaSuccess) {
        snprintf(why, cap, "%s: cannot create a stream: %s", g_prop.name, cudaGetErrorString(err));
        cudaGetLastError();
        return -1;
    }
    int *flag = NULL, host = 0;
    if ((err = cudaMalloc(&flag, sizeof *flag)) == cudaSuccess) {
        probe_kernel<<<1, 1, 0, g_stream>>>(flag);
        err = cudaGetLastError();
        if (err == cudaSuccess) err = cudaMemcpyAsync(&host, flag, sizeof host, cudaMemcpyDeviceToHost, g_stream);
        if (err == cudaSuccess) err = cudaStreamSynchronize(g_stream);
        cudaFree(flag);
    }
    if (err != cudaSuccess || host != 42) {
        snprintf(why, cap, "%s (compute capability %d.%d) cannot run this build's kernels: %s; rebuild with "
                 "make CUDA=1 CUDA_ARCH=%d%d", g_prop.name, g_prop.major, g_prop.minor,
                 err != cudaSuccess ? cudaGetErrorString(err) : "the probe kernel wrote nothing", g_prop.major,
                 g_prop.minor);
        cudaGetLastError();
        cudaStreamDestroy(g_stream);
        return -1;
    }
    g_device = dev;
    g_open = 1;
    size_t free_bytes = 0, total = 0;
    if (cudaMemGetInfo(&free_bytes, &total) != cudaSuccess) cudaGetLastError();
    size_t margin = (size_t)768 << 20;   /* cuBLAS's and cuDNN's handles and their own buffers */
    g_free_at_open = free_bytes > margin ? free_bytes - margin : 0;
    return 0;
}

const char *cuda_device_name(void) { return g_open ? g_prop.name : "no GPU"; }

/* FP32 lanes per multiprocessor by architecture (the CUDA programming guide's throughput table). */
static int fp32_lanes(int major, int minor) {
    if (major == 7) return 64;
    if (major == 8) return minor == 0 ? 64 : 128;
    return 128;   /* 9.x, 10.x, 12.x */
}

double cuda_peak_tflops(void) {
    if (!g_open) return 0;
    int khz = 0;
    if (cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, g_device) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return 2.0 * g_prop.multiProcessorCount * fp32_lanes(g_prop.major, g_prop.minor) * (khz * 1e3) / 1e12;
}

double cuda_peak_bandwidth(void) {
    if (!g_open) return 0;
    int khz = 0;
    if (cudaDeviceGetAttribute(&khz, cudaDevAttrMemoryClockRate, g_device) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return 2.0 * (khz * 1e3) * (g_prop.memoryBusWidth / 8.0) / 1e9;   /* double data rate */
}

void cuda_memory(size_t *free_bytes, size_t *total_bytes) {
    size_t f = 0, t = 0;
    if (g_open) CUDA_CHECK(cudaMemGetInfo(&f, &t));
    if (free_bytes) *free_bytes = f;
    if (total_bytes) *total_bytes = t;
}

/* ---- memory ------------------------------------------------------------------------------------------ */

/* What cuda_alloc handed out, so cuda_free knows each block's size (frees are rare: arena chunks, sets). */
typedef struct Block {
    void *p;
    size_t bytes;
} Block;
static Block *g_blocks;
static size_t g_nblocks, g_cap_blocks;

void cuda_account(ptrdiff_t bytes) {
    g_allocated = (size_t)((ptrdiff_t)g_allocated + bytes);
    if (g_allocated > g_peak) g_peak = g_allocated;
}

size_t cuda_allocated(void) { return g_allocated; }
size_t cuda_available(void) { return g_free_at_open > g_allocated ? g_free_at_open - g_allocated : 0; }
size_t cuda_peak_allocated(void) { return g_peak; }
void cuda_reset_peak(void) { g_peak = g_allocated; }

static cudaMemLocation gpu_location(void) {
    cudaMemLocation loc;
    memset(&loc, 0, sizeof loc);
    loc.type = cudaMemLocationTypeDevice;
    loc.id = g_device;
    return loc;
}

void *cuda_alloc(size_t bytes) {
    I2V_ASSERT(g_open, "cuda_alloc before cuda_open");
    if (bytes == 0) bytes = 1;
    /* managed memory could be asked for beyond the GPU's free memory and would then spill to the host (or
     * stall the GPU). Its pages take device memory only when first touched, so the driver's free count lags:
     * the check counts what this process holds against what was free when the GPU was opened. */
    if (g_allocated + bytes > g_free_at_open) return NULL;
    void *p = NULL;
    if (cudaMallocManaged(&p, bytes, cudaMemAttachGlobal) != cudaSuccess) {
        cudaGetLastError();
        return NULL;
    }
    /* advice only: on a system that ignores it the memory still works, just migrates on demand */
#if CUDART_VERSION >= 13000
    if (cudaMemAdvise(p, bytes, cudaMemAdviseSetPreferredLocation, gpu_location()) == cudaSuccess)
        cudaMemPrefetchAsync(p, bytes, gpu_location(), 0, g_stream);
#else
    if (cudaMemAdvise(p, bytes, cudaMemAdviseSetPreferredLocation, g_device) == cudaSuccess)
        cudaMemPrefetchAsync(p, bytes, g_device, g_stream);
#endif
    cudaGetLastError();
    if (g_nblocks == g_cap_blocks) {
        g_cap_blocks = g_cap_blocks ? 2 * g_cap_blocks : 256;
        g_blocks = (Block *)realloc(g_blocks, g_cap_blocks * sizeof *g_blocks);
        I2V_ASSERT(g_blocks, "out of memory");
    }
    g_blocks[g_nblocks].p = p;
    g_blocks[g_nblocks].bytes = bytes;
    g_nblocks++;
    cuda_account((ptrdiff_t)bytes);
    return p;
}

void cuda_free(void *p) {
    if (!p) return;
    for (size_t i = 0; i < g_nblocks; i++)
        if (g_blocks[i].p == p) {
            cuda_account(-(ptrdiff_t)g_blocks[i].bytes);
            g_blocks[i] = g_blocks[--g_nblocks];
            break;
        }
    CUDA_CHECK(cudaStreamSynchronize(g_stream));   /* a queued kernel may still use it */
    CUDA_CHECK(cudaFree(p));
}

void *cuda_alloc_host(size_t bytes) {
    void *p = NULL;
    if (cudaMallocHost(&p, bytes ? bytes : 1) != cudaSuccess) {
        cudaGetLastError();
        return NULL;
    }
    return p;
}

void cuda_free_host(void *p) {
    if (p) CUDA_CHECK(cudaFreeHost(p));
}

void cuda_memset0(void *dst, size_t bytes) {
    if (bytes) CUDA_CHECK(cudaMemsetAsync(dst, 0, bytes, cuda_stream()));
}

/* Staging for copies from ordinary (pageable) host memory: the runtime would wait for the whole stream
 * before such a copy, so the bytes are first copied into page-locked chunks, from which the copy is
 * asynchronous. The chunks are reused after the next cuda_sync (the copies have run by then). */
typedef struct Stage {
    char *mem;
    size_t size, used;
} Stage;
static Stage g_stage[32];
static int g_nstage;

static void *stage_bytes(size_t bytes) {
    bytes = (bytes + 255) / 256 * 256;
    for (int i = 0; i < g_nstage; i++)
        if (g_stage[i].size - g_stage[i].used >= bytes) {
            void *p = g_stage[i].mem + g_stage[i].used;
            g_stage[i].used += bytes;
            return p;
        }
    if (g_nstage == (int)(sizeof g_stage / sizeof *g_stage)) return NULL;
    size_t last = g_nstage ? g_stage[g_nstage - 1].size : 0, size = (size_t)4 << 20;
    if (size < 2 * last) size = 2 * last;
    if (size < bytes) size = bytes;
    Stage *s = &g_stage[g_nstage];
    if (cudaMallocHost((void **)&s->mem, size) != cudaSuccess) {
        cudaGetLastError();
        return NULL;
    }
    g_nstage++;
    s->size = size;
    s->used = bytes;
    return s->mem;
}

void cuda_copy(void *dst, const void *src, size_t bytes) {
    if (!bytes || dst == src) return;
    cudaPointerAttributes attr;
    if (cudaPointerGetAttributes(&attr, src) != cudaSuccess) {
        cudaGetLastError();
        attr.type = cudaMemoryTypeUnregistered;
    }
    void *staged = attr.type == cudaMemoryTypeUnregistered ? stage_bytes(bytes) : NULL;
    if (staged) {
        memcpy(staged, src, bytes);
        src = staged;
    }
    int slot = prof_begin("copy", LIB_COPY, 0);
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, cuda_stream()));
    prof_end(slot);
}

void cuda_sync(void) {
    if (!g_open) return;
    CUDA_CHECK(cudaStreamSynchronize(g_stream));
    for (int i = 0; i < g_nstage; i++) g_stage[i].used = 0;
}

static void *g_ws[WS_COUNT];
static size_t g_ws_bytes[WS_COUNT];

void *cuda_workspace(int slot, size_t bytes) {
    I2V_ASSERT(slot >= 0 && slot < WS_COUNT, "workspace slot %d", slot);
    if (bytes <= g_ws_bytes[slot]) return g_ws[slot];
    if (g_ws[slot]) {
        CUDA_CHECK(cudaStreamSynchronize(g_stream));   /* queued kernels may still use the old one */
        CUDA_CHECK(cudaFree(g_ws[slot]));
        cuda_account(-(ptrdiff_t)g_ws_bytes[slot]);
    }
    g_ws_bytes[slot] = bytes + bytes / 4;   /* headroom, so a slightly larger request does not reallocate */
    if (cudaMalloc(&g_ws[slot], g_ws_bytes[slot]) != cudaSuccess)
        i2v_fail(__FILE__, __LINE__, "cudaMalloc", "out of GPU memory for a workspace of %zu bytes", g_ws_bytes[slot]);
    cuda_account((ptrdiff_t)g_ws_bytes[slot]);
    return g_ws[slot];
}

/* ---- profiling --------------------------------------------------------------------------------------- */

typedef struct Span {
    const char *name;
    CudaLib lib;
    double flops, bytes;
    cudaEvent_t start, end;
} Span;
static Span *g_spans;
static size_t g_nspans, g_cap_spans;
static int g_profiling;
static cudaEvent_t g_prof_start, g_prof_end;

void cuda_profile_start(void) {
    I2V_ASSERT(g_open, "profiling without a GPU");
    if (!g_prof_start) {
        CUDA_CHECK(cudaEventCreate(&g_prof_start));
        CUDA_CHECK(cudaEventCreate(&g_prof_end));
    }
    g_nspans = 0;
    g_profiling = 1;
    CUDA_CHECK(cudaEventRecord(g_prof_start, g_stream));
}

int prof_begin(const char *name, CudaLib lib, double flops) {
    if (!g_profiling) return -1;
    if (g_nspans == g_cap_spans) {   /* events are created once and reused by later profiles */
        size_t cap = g_cap_spans ? 2 * g_cap_spans : 4096;
        g_spans = (Span *)realloc(g_spans, cap * sizeof *g_spans);
        I2V_ASSERT(g_spans, "out of memory");
        for (size_t i = g_cap_spans; i < cap; i++) {
            CUDA_CHECK(cudaEventCreate(&g_spans[i].start));
            CUDA_CHECK(cudaEventCreate(&g_spans[i].end));
        }
        g_cap_spans = cap;
    }
    Span *s = &g_spans[g_nspans];
    s->name = name;
    s->lib = lib;
    s->flops = flops;
    s->bytes = 0;
    CUDA_CHECK(cudaEventRecord(s->start, g_stream));
    return (int)g_nspans++;
}

void prof_bytes(int slot, double bytes) {
    if (slot >= 0) g_spans[slot].bytes = bytes;
}

void prof_end(int slot) {
    if (slot >= 0) CUDA_CHECK(cudaEventRecord(g_spans[slot].end, g_stream));
}

static int row_by_time(const void *a, const void *b) {
    double x = ((const CudaProfileRow *)a)->ms, y = ((const CudaProfileRow *)b)->ms;
    return x < y ? 1 : x > y ? -1 : 0;
}

int cuda_profile_report(CudaProfileRow *rows, int cap, double lib_ms[LIB_COUNT], double *total_ms) {
    I2V_ASSERT(g_profiling, "cuda_profile_report without cuda_profile_start");
    CUDA_CHECK(cudaEventRecord(g_prof_end, g_stream));
    CUDA_CHECK(cudaEventSynchronize(g_prof_end));
    g_profiling = 0;
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, g_prof_start, g_prof_end));
    *total_ms = ms;
    for (int l = 0; l < LIB_COUNT; l++) lib_ms[l] = 0;
    /* aggregate by (name, library); names are string literals, compared by content */
    size_t nrows = 0, maxrows = 512;
    CudaProfileRow *all = (CudaProfileRow *)calloc(maxrows, sizeof *all);
    I2V_ASSERT(all, "out of memory");
    for (size_t i = 0; i < g_nspans; i++) {
        Span *s = &g_spans[i];
        float t = 0;
        CUDA_CHECK(cudaEventElapsedTime(&t, s->start, s->end));
        lib_ms[s->lib] += t;
        size_t r = 0;
        while (r < nrows && !(all[r].lib == s->lib && !strcmp(all[r].name, s->name))) r++;
        if (r == nrows) {
            if (nrows == maxrows) continue;   /* more than 512 distinct kernels: the rest only in lib_ms */
            all[r].name = s->name;
            all[r].lib = s->lib;
            nrows++;
        }
        all[r].ms += t;
        all[r].flops += s->flops;
        all[r].bytes += s->bytes;
        all[r].calls++;
    }
    qsort(all, nrows, sizeof *all, row_by_time);
    int n = (int)(nrows < (size_t)cap ? nrows : (size_t)cap);
    memcpy(rows, all, (size_t)n * sizeof *rows);
    free(all);
    return n;
}
