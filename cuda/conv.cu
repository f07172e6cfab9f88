/* conv.cu: the GPU twins of conv.h's 2-D and 3-D convolutions, by cuDNN.
 *
 * What it is: conv3d_forward_cuda / conv3d_backward_cuda with the CPU kernels' arguments and semantics
 * (PyTorch layouts, cross-correlation, zero padding, no groups or dilation; the backward adds into each
 * gradient it is given). A convolution with one frame and a 1-frame kernel uses cuDNN's 2-D descriptors, the
 * rest 3-D ones. The bias and its gradient are our kernels (a per-channel add and a deterministic sum).
 * What it is not: a convolution algorithm of our own (cuDNN is the field's standard, as it is for PyTorch).
 *
 * Determinism: for each geometry and direction the algorithm is cuDNN's best-ranked one (heuristics, not a
 * timed search, which could pick differently from run to run) among the deterministic ones whose
 * workspace fits WORKSPACE_MAX, with FMA arithmetic unless TF32 is switched on. The choice, the descriptors
 * and the workspace size are kept per geometry.
 * Dimension legend: N batch, Cin/Cout channels, (T, H, W) frames, height, width; S = To Ho Wo.
 */
#include <cudnn.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/sum.cuh"

#ifdef I2V_DOUBLE
#define CUDNN_REAL CUDNN_DATA_DOUBLE
#else
#define CUDNN_REAL CUDNN_DATA_FLOAT
#endif

static const size_t WORKSPACE_MAX = (size_t)512 << 20;   /* an algorithm may use up to 512 MB of workspace */

static cudnnHandle_t g_handle;

static void cudnn_check(cudnnStatus_t st, const char *call) {
    if (st != CUDNN_STATUS_SUCCESS) i2v_fail(__FILE__, __LINE__, call, "cuDNN error: %s", cudnnGetErrorString(st));
}

static cudnnHandle_t handle(void) {
    if (!g_handle) {
        cudnn_check(cudnnCreate(&g_handle), "cudnnCreate");
        cudnn_check(cudnnSetStream(g_handle, cuda_stream()), "cudnnSetStream");
    }
    return g_handle;
}

/* ---- one geometry's descriptors and algorithms ------------------------------------------------------------- */

enum { DIR_FWD, DIR_BWD_DATA, DIR_BWD_FILTER };

typedef struct ConvPlan {
    ConvGeom g;
    int tf32;
    cudnnTensorDescriptor_t x, y;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv[3];   /* one per direction: each carries its algorithm's math type */
    int chosen[3];
    cudnnConvolutionFwdAlgo_t fwd;
    cudnnConvolutionBwdDataAlgo_t bwd_data;
    cudnnConvolutionBwdFilterAlgo_t bwd_filter;
    size_t ws[3];
} ConvPlan;

static ConvPlan *g_plans;
static int g_nplans, g_cap_plans;

static int same_geom(const ConvGeom *a, const ConvGeom *b) {
    if (a->n != b->n || a->cin != b->cin || a->cout != b->cout) return 0;
    for (int i = 0; i < 3; i++)
        if (a->in[i] != b->in[i] || a->k[i] != b->k[i] || a->s[i] != b->s[i] || a->p[i] != b->p[i]) return 0;
    return 1;
}

static void tensor_desc(cudnnTensorDescriptor_t d, int nd, int n, int c, const int sp[3]) {
    int dims[5] = {n, c, sp[0], sp[1], sp[2]}, strides[5];
    if (nd == 4) {
        dims[2] = sp[1];
        dims[3] = sp[2];
    }
    int s = 1;
    for (int i = nd - 1; i >= 0; i--) {
        strides[i] = s;
        s *= dims[i];
    }
    cudnn_check(cudnnSetTensorNdDescriptor(d, CUDNN_REAL, nd, dims, strides), "cudnnSetTensorNdDescriptor");
}

static ConvPlan *plan_for(const ConvGeom *g) {
    int tf32 = cuda_tf32();
    for (int i = 0; i < g_nplans; i++)
        if (g_plans[i].tf32 == tf32 && same_geom(&g_plans[i].g, g)) return &g_plans[i];
    if (g_nplans == g_cap_plans) {
        g_cap_plans = g_cap_plans ? 2 * g_cap_plans : 64;
        g_plans = (ConvPlan *)realloc(g_plans, (size_t)g_cap_plans * sizeof *g_plans);
        I2V_ASSERT(g_plans, "out of memory");
    }
    ConvPlan *p = &g_plans[g_nplans++];
    memset(p, 0, sizeof *p);
    p->g = *g;
    p->tf32 = tf32;
    /* 2-D when the frame axis is trivial: cuDNN's 2-D kernels are the faster ones */
    int two_d = g->in[0] == 1 && g->k[0] == 1 && g->s[0] == 1 && g->p[0] == 0;
    int nd = two_d ? 4 : 5, ns = nd - 2;
    cudnn_check(cudnnCreateTensorDescriptor(&p->x), "cudnnCreateTensorDescriptor");
    cudnn_check(cudnnCreateTensorDescriptor(&p->y), "cudnnCreateTensorDescriptor");
    cudnn_check(cudnnCreateFilterDescriptor(&p->w), "cudnnCreateFilterDescriptor");
    tensor_desc(p->x, nd, g->n, g->cin, g->in);
    tensor_desc(p->y, nd, g->n, g->cout, g->out);
    int wdims[5] = {g->cout, g->cin, g->k[0], g->k[1], g->k[2]};
    if (two_d) {
        wdims[2] = g->k[1];
        wdims[3] = g->k[2];
    }
    cudnn_check(cudnnSetFilterNdDescriptor(p->w, CUDNN_REAL, CUDNN_TENSOR_NCHW, nd, wdims), "cudnnSetFilterNdDescriptor");
    int pad[3], stride[3], dil[3] = {1, 1, 1};
    for (int i = 0; i < ns; i++) {
        pad[i] = g->p[3 - ns + i];
        stride[i] = g->s[3 - ns + i];
    }
    for (int d = 0; d < 3; d++) {
        cudnn_check(cudnnCreateConvolutionDescriptor(&p->conv[d]), "cudnnCreateConvolutionDescriptor");
        cudnn_check(cudnnSetConvolutionNdDescriptor(p->conv[d], ns, pad, stride, dil, CUDNN_CROSS_CORRELATION,
                                                    CUDNN_REAL),
                    "cudnnSetConvolutionNdDescriptor");
        cudnn_check(cudnnSetConvolutionMathType(p->conv[d], tf32 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH),
                    "cudnnSetConvolutionMathType");
    }
    int out[5];
    cudnn_check(cudnnGetConvolutionNdForwardOutputDim(p->conv[0], p->x, p->w, nd, out),
                "cudnnGetConvolutionNdForwardOutputDim");
    I2V_ASSERT(out[0] == g->n && out[1] == g->cout && out[nd - 1] == g->out[2] && out[nd - 2] == g->out[1] &&
                   (nd == 4 || out[2] == g->out[0]),
               "cuDNN's output size differs from conv_geom's");
    return p;
}

/* May this algorithm be used: it ran in the heuristics, is deterministic, fits, and computes in FP32 FMAs (or
 * in anything when TF32 is allowed; cuDNN's default math may use TF32 on an A100 or newer)? */
static int acceptable(cudnnStatus_t status, cudnnDeterminism_t det, size_t memory, cudnnMathType_t math, int tf32) {
    return status == CUDNN_STATUS_SUCCESS && det == CUDNN_DETERMINISTIC && memory <= WORKSPACE_MAX &&
           (tf32 || math == CUDNN_FMA_MATH);
}

static void choose(ConvPlan *p, int dir) {
    if (p->chosen[dir]) return;
    int n = 0;
    cudnnMathType_t math = CUDNN_FMA_MATH;
    int found = 0;
    if (dir == DIR_FWD) {
        cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
        cudnn_check(cudnnGetConvolutionForwardAlgorithm_v7(handle(), p->x, p->w, p->conv[dir], p->y,
                                                           CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, perf),
                    "cudnnGetConvolutionForwardAlgorithm_v7");
        for (int i = 0; i < n && !found; i++)
            if (acceptable(perf[i].status, perf[i].determinism, perf[i].memory, perf[i].mathType, p->tf32)) {
                p->fwd = perf[i].algo;
                math = perf[i].mathType;
                found = 1;
            }
        if (!found) p->fwd = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;   /* deterministic, no workspace */
    } else if (dir == DIR_BWD_DATA) {
        cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
        cudnn_check(cudnnGetConvolutionBackwardDataAlgorithm_v7(handle(), p->w, p->y, p->conv[dir], p->x,
                                                                CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &n, perf),
                    "cudnnGetConvolutionBackwardDataAlgorithm_v7");
        for (int i = 0; i < n && !found; i++)
            if (acceptable(perf[i].status, perf[i].determinism, perf[i].memory, perf[i].mathType, p->tf32)) {
                p->bwd_data = perf[i].algo;
                math = perf[i].mathType;
                found = 1;
            }
        if (!found) p->bwd_data = CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;   /* deterministic */
    } else {
        cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
        cudnn_check(cudnnGetConvolutionBackwardFilterAlgorithm_v7(handle(), p->x, p->y, p->conv[dir], p->w,
                                                                  CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &n, perf),
                    "cudnnGetConvolutionBackwardFilterAlgorithm_v7");
        for (int i = 0; i < n && !found; i++)
            if (acceptable(perf[i].status, perf[i].determinism, perf[i].memory, perf[i].mathType, p->tf32)) {
                p->bwd_filter = perf[i].algo;
                math = perf[i].mathType;
                found = 1;
            }
        if (!found) p->bwd_filter = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1;   /* deterministic */
    }
    if (!found) math = CUDNN_FMA_MATH;
    cudnn_check(cudnnSetConvolutionMathType(p->conv[dir], math), "cudnnSetConvolutionMathType");
    size_t ws = 0;
    if (dir == DIR_FWD)
        cudnn_check(cudnnGetConvolutionForwardWorkspaceSize(handle(), p->x, p->w, p->conv[dir], p->y, p->fwd, &ws),
                    "cudnnGetConvolutionForwardWorkspaceSize");
    else if (dir == DIR_BWD_DATA)
        cudnn_check(cudnnGetConvolutionBackwardDataWorkspaceSize(handle(), p->w, p->y, p->conv[dir], p->x,
                                                                 p->bwd_data, &ws),
                    "cudnnGetConvolutionBackwardDataWorkspaceSize");
    else
        cudnn_check(cudnnGetConvolutionBackwardFilterWorkspaceSize(handle(), p->x, p->y, p->conv[dir], p->w,
                                                                   p->bwd_filter, &ws),
                    "cudnnGetConvolutionBackwardFilterWorkspaceSize");
    p->ws[dir] = ws;
    p->chosen[dir] = 1;
}

static double conv_flops(const ConvGeom *g) {
    return 2.0 * g->n * g->cout * ((double)g->out[0] * g->out[1] * g->out[2]) * g->cin *
           ((double)g->k[0] * g->k[1] * g->k[2]);
}

/* ---- the bias: y[n, c, s] += b[c]; db[c] += sum over n and s of dy ------------------------------------------------ */

__global__ static void add_bias_kernel(real *y, const real *b, size_t n, int C, size_t S) {
    for (size_t i = thread_index(); i < n; i += grid_stride()) y[i] += b[(i / S) % (size_t)C];
}

struct BiasGradOp {
    real *db;
    const real *dy;
    __device__ double term(const size_t off[3]) const { return dy[off[0]]; }
    __device__ void store(size_t o, double s) const { db[o] += (real)s; }
};

static void bias_backward(real *db, const real *dy, int N, int C, size_t S) {
    /* dy (N, C, S) as 5 axes (1, 1, N, C, S) would need S to fit an int; build the plan directly */
    SumPlan p;
    p.keep.n = 1;
    p.keep.ext[0] = (size_t)C;
    p.keep.st[0][0] = S;
    p.red.n = 0;
    if (N > 1) {
        p.red.ext[p.red.n] = (size_t)N;
        p.red.st[0][p.red.n++] = (size_t)C * S;
    }
    if (S > 1) {
        p.red.ext[p.red.n] = S;
        p.red.st[0][p.red.n++] = 1;
    }
    for (int i = 0; i < 2; i++) p.keep.st[1][i] = p.keep.st[2][i] = p.red.st[1][i] = p.red.st[2][i] = 0;
    BiasGradOp op = {db, dy};
    run_sum(p, op, "conv_bias_backward");
}

/* ---- the twins -------------------------------------------------------------------------------------------------- */

void conv3d_forward_cuda(real *y, const real *x, const real *w, const real *b, const ConvGeom *g, real *ws) {
    (void)ws;
    ConvPlan *p = plan_for(g);
    choose(p, DIR_FWD);
    void *work = p->ws[DIR_FWD] ? cuda_workspace(WS_CUDNN, p->ws[DIR_FWD]) : NULL;
    const real one = 1, zero = 0;
    int prof = prof_begin("conv_forward", LIB_CUDNN, conv_flops(g));
    cudnn_check(cudnnConvolutionForward(handle(), &one, p->x, x, p->w, w, p->conv[DIR_FWD], p->fwd, work,
                                        p->ws[DIR_FWD], &zero, p->y, y),
                "cudnnConvolutionForward");
    prof_end(prof);
    if (b) {
        size_t S = (size_t)g->out[0] * g->out[1] * g->out[2], n = (size_t)g->n * g->cout * S;
        prof = prof_begin("conv_bias", LIB_OWN, 0);
        add_bias_kernel<<<grid_for(n), THREADS, 0, cuda_stream()>>>(y, b, n, g->cout, S);
        cuda_launched("conv_bias");
        prof_end(prof);
    }
}

void conv3d_backward_cuda(real *dx, real *dw, real *db, const real *dy, const real *x, const real *w,
                          const ConvGeom *g, real *ws) {
    (void)ws;
    ConvPlan *p = plan_for(g);
    const real one = 1;
    if (dx) {
        choose(p, DIR_BWD_DATA);
        void *work = p->ws[DIR_BWD_DATA] ? cuda_workspace(WS_CUDNN, p->ws[DIR_BWD_DATA]) : NULL;
        int prof = prof_begin("conv_backward_data", LIB_CUDNN, conv_flops(g));
        cudnn_check(cudnnConvolutionBackwardData(handle(), &one, p->w, w, p->y, dy, p->conv[DIR_BWD_DATA],
                                                 p->bwd_data, work, p->ws[DIR_BWD_DATA], &one, p->x, dx),
                    "cudnnConvolutionBackwardData");
        prof_end(prof);
    }
    if (dw) {
        choose(p, DIR_BWD_FILTER);
        void *work = p->ws[DIR_BWD_FILTER] ? cuda_workspace(WS_CUDNN, p->ws[DIR_BWD_FILTER]) : NULL;
        int prof = prof_begin("conv_backward_filter", LIB_CUDNN, conv_flops(g));
        cudnn_check(cudnnConvolutionBackwardFilter(handle(), &one, p->x, x, p->y, dy, p->conv[DIR_BWD_FILTER],
                                                   p->bwd_filter, work, p->ws[DIR_BWD_FILTER], &one, p->w, dw),
                    "cudnnConvolutionBackwardFilter");
        prof_end(prof);
    }
    if (db) {
        int prof = prof_begin("conv_bias_backward", LIB_OWN, 0);
        bias_backward(db, dy, g->n, g->cout, (size_t)g->out[0] * g->out[1] * g->out[2]);
        prof_end(prof);
    }
}
