/* tensor.h: the tensor library of i2v.
 *
 * What it is: float tensors of up to 5 dimensions, an arena for activations, an autograd tape, the
 * elementwise / reduction / shape / loss ops with their backward passes, parameter sets with official
 * names, random numbers. Convolutions and pooling live in ops/conv.h, normalisations in ops/norm.h,
 * optimisers in ops/optim.h; the raw-array kernels under them in kernels/.
 * What it is not: a model library. It knows nothing of videos, files (except checkpoints) or configs.
 *
 * Layout: contiguous, row-major. Dimension legend used in comments: N batch, C channels, T frames,
 * H height, W width, D feature dimension.
 *
 * Precision: `real` (base/base.h) is float, or double in the build the gradient checks use.
 */
#ifndef I2V_TENSOR_H
#define I2V_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

/* ---- random numbers -------------------------------------------------------------------------------- */
/* xoshiro256** seeded through splitmix64; one generator is passed explicitly wherever randomness is used. */
typedef struct Rng {
    uint64_t s[4];
    int has_spare;        /* Box-Muller makes normals in pairs; the second one waits here */
    double spare;
} Rng;

void rng_seed(Rng *r, uint64_t seed);
/* splitmix64's finaliser: a bijective 64-bit hash, for deriving the seeds of independent streams. */
uint64_t rng_hash64(uint64_t z);
uint64_t rng_u64(Rng *r);
double rng_uniform(Rng *r);                       /* [0, 1), 53 random bits */
double rng_normal(Rng *r);                        /* N(0, 1) by Box-Muller */
uint32_t rng_below(Rng *r, uint32_t n);           /* uniform integer in [0, n), unbiased */
void rng_permutation(Rng *r, int n, int64_t *perm); /* Fisher-Yates: a uniform random permutation of 0..n-1 */
int rng_bernoulli(Rng *r, double p);              /* 1 with probability p */

/* ---- the device ------------------------------------------------------------------------------------ */
/* Where tensors live and ops run. The GPU build (make CUDA=1) has both; the plain build only the CPU. The
 * program chooses once (--device, I2V_DEVICE); contexts, parameter sets and persistent tensors made after
 * that are on the chosen device. On the GPU their data is managed memory the host may read after
 * ctx_sync(); every op of a GPU context runs a `_cuda` twin of its kernel (cuda/cuda.h). */
typedef enum Device { DEVICE_CPU = 0, DEVICE_CUDA = 1 } Device;

/* name: "cpu" or "cuda", or NULL for the environment's I2V_DEVICE (default cpu). Fails with a message in e
 * ("no CUDA device: <the runtime's reason>") when the GPU is asked for and none is usable. */
int device_select(const char *name, I2vError *e);
Device device_default(void);
const char *device_name(Device d);
/* True when c runs its ops on the GPU (always false in the plain build, which then drops the GPU calls). */
#define on_gpu(c) (I2V_CUDA && (c)->device == DEVICE_CUDA)

/* Zeroed memory on a device that lives beside the parameter sets (an optimiser's moments); the host may
 * write it before kernels use it. device_release frees it (NULL is fine). */
void *device_calloc(Device d, size_t bytes);
void device_release(Device d, void *p);

/* ---- arena ----------------------------------------------------------------------------------------- */
/* Activations, their gradients and per-step tensor headers come from an arena that is reset after every
 * step. It grows by whole chunks when a request does not fit and keeps them, so after the first step (or a
 * dry run that sized it) nothing more is allocated. In measure mode (data == NULL) it only counts bytes. */
typedef struct ArenaChunk ArenaChunk;
typedef struct Arena {
    ArenaChunk *head;     /* chunks in allocation order */
    ArenaChunk *cur;      /* the chunk being filled */
    size_t used;          /* bytes handed out since the last reset */
    size_t peak;          /* the largest `used` seen */
    size_t capacity;      /* bytes in all chunks */
    Device device;        /* where the chunks are (set before the first allocation) */
} Arena;

void arena_init(Arena *a, size_t first_chunk_bytes);
void *arena_alloc(Arena *a, size_t bytes);        /* 64-byte aligned, uninitialised */
void arena_reset(Arena *a);
void arena_free(Arena *a);

/* ---- tensors --------------------------------------------------------------------------------------- */
#define I2V_MAXDIM 5
#define I2V_PI 3.14159265358979323846

typedef enum DType { DT_REAL = 0, DT_U8, DT_I32, DT_I64, DT_BOOL } DType;

typedef struct Tensor Tensor;
struct Tensor {
    int ndim;                     /* 0..5; a 0-D tensor holds one value */
    int shape[I2V_MAXDIM];
    size_t numel;
    DType dtype;                  /* DT_REAL for everything computed; integer types only for buffers */
    real *data;                   /* values when dtype == DT_REAL (NULL in a dry run) */
    void *ibuf;                   /* values of an integer buffer */
    /* autograd */
    real *grad;                   /* parameters: the accumulated gradient (like PyTorch's .grad);
                                     anything else: the gradient of the current backward pass, valid
                                     only while grad_pass equals the context's pass */
    unsigned grad_pass;
    unsigned dep_pass;            /* == ctx->pass when this tensor depends on a target of the pass */
    unsigned char requires_grad;  /* a parameter, a marked input, or computed from one while recording */
    unsigned char is_param;       /* a trainable parameter, owned by a ParamSet */
    unsigned char grad_seen;      /* a parameter that has received a gradient at least once (PyTorch's
                                     optimisers skip parameters whose .grad is still None) */
    unsigned char grad_zero;      /* a parameter whose .grad is zero but has not been written yet (see
                                     paramset_zero_grad); read it through param_grad */
    unsigned uses_left;           /* backward_update: ops on the tape that still have to run their
                                     backward before this parameter's gradient is final */
    unsigned update_pass;         /* backward_update: the pass in which this parameter was updated */
    const char *name;             /* official state_dict key for parameters and buffers; NULL otherwise */
    unsigned char device;         /* DEVICE_CPU or DEVICE_CUDA: where data, ibuf and grad are */
};

/* ---- graph context --------------------------------------------------------------------------------- */
typedef struct Ctx Ctx;
typedef struct Node Node;

/* How an op is written. Two layers:
 *   kernels/  a raw-array kernel pair xxx_forward / xxx_backward: pointers and sizes, no Tensor, no Ctx,
 *             argument order (outputs, saved values, inputs, parameters, sizes); the forward writes (=)
 *             its outputs, the backward accumulates (+=) into every gradient it is given (not NULL), so
 *             a tensor used twice receives both contributions.
 *   op layer  (tensor.c for the elementwise, reduction, shape, linear-algebra and loss ops, ops/ for the
 *             rest) the tape op t_xxx(Ctx *c, ...): it checks shapes, allocates its output in the arena,
 *             runs xxx_forward unless the context is a dry run, and records a Node whose OpInfo names the
 *             op's tape callback. The callback of t_xxx is t_xxx_backward(Ctx *c, Node *n), defined right
 *             above t_xxx: it takes the gradient buffers (grad_buf) and calls xxx_backward. Ops that share
 *             one node (t_relu, t_tanh, ... are one `unary` node) share one callback named after the node
 *             (t_unary_backward).
 * The per-element formulas the kernels evaluate (activations and their derivatives, loss terms, the
 * normalisations' affine steps, the Adam update) are written once, in kernels/formulas.h, for any backend.
 * The op layer is the one place that chooses which kernel runs; models (flow.c, ae.c, networks/) compute
 * only through t_xxx ops. docs/ops.md lists where every kernel and op lives. */

/* An op's identity on the tape: its name (for messages) and its backward, t_xxx_backward. */
typedef struct OpInfo {
    const char *name;
    void (*backward)(Ctx *c, Node *n);
} OpInfo;

#define NODE_MAXIN 6
/* One tape entry: a recorded op with what its backward needs. */
struct Node {
    const OpInfo *op;
    Tensor *out;
    Tensor *in[NODE_MAXIN];       /* inputs; NULL for absent optional ones (e.g. a bias) */
    int nin;
    int iarg[16];                 /* op-specific integers (axes, strides, paddings, ...) */
    real rarg[4];                 /* op-specific scalars (slopes, eps, ...) */
    void *saved;                  /* op-specific saved data, allocated in the arena */
    Tensor *aux[2];               /* op-specific saved tensors (e.g. normalised activations) */
};

struct Ctx {
    Device device;                /* where this context's tensors live and its ops run */
    Arena arena;                  /* activations, gradients, headers: reset by ctx_reset */
    Arena data_arena;             /* on the GPU: the tensors' values and gradients (the headers stay in
                                     `arena`, on the host); unused on the CPU */
    Node *tape;                   /* flat array in execution order */
    size_t ntape, tape_cap;
    unsigned pass;                /* counts backward passes; tags gradient buffers */
    int grad_enabled;             /* 0: no-grad mode, nothing is recorded */
    int training;                 /* 1: training behaviour (dropout, batch statistics, power iteration) */
    int dry;                      /* 1: dry run, shapes and memory only, no arithmetic */
    size_t dry_bytes;             /* a dry run's count of the data bytes it would have allocated */
    size_t dry_data_bytes;        /* the last dry run's dry_bytes, kept after ctx_dry_finish */
    int redirect;                 /* inside grad_of: parameter gradients go to the caller's buffers */
    const struct ParamUpdate *update; /* inside backward_update: the optimiser step to apply */
    int ntargets;
    Tensor **targets;             /* grad_of's targets */
    real **target_grads;          /* and their buffers */
    /* Gradient buffers of intermediate tensors whose producing op has run its backward: nothing reads
     * them again, so later gradients of the same pass reuse them (best fit), as a framework frees them.
     * A dry run keeps the same list (sizes only), so it sizes the arena for the reuse. */
    struct FreeGrad { real *ptr; size_t bytes; } *free_grads;
    size_t nfree_grads, free_grads_cap;
    /* scratch memory for kernels (im2col workspaces, ...), reused by every op, grown on demand */
    void *scratch;
    size_t scratch_bytes;
    size_t peak_scratch;
};

void ctx_init(Ctx *c);                  /* on device_default() */
void ctx_init_device(Ctx *c, Device d);
void ctx_free(Ctx *c);
void ctx_reset(Ctx *c);                 /* end of a step: clears the tape and resets the arena (on the GPU
                                           after the queued work has finished) */
void *ctx_scratch(Ctx *c, size_t bytes); /* a workspace valid until the next ctx_scratch call */
/* The host waits until the context's queued GPU work is done, so tensor data may be read on the host
 * (a loss for the log, a sample to save). Nothing to do on the CPU. */
void ctx_sync(Ctx *c);
/* Copies and zero fills of tensor memory in the context's order (on the GPU, queued on its stream; any
 * pointer, host or device, may be the source). */
void ctx_memcpy(Ctx *c, void *dst, const void *src, size_t bytes);
void ctx_zero(Ctx *c, void *dst, size_t bytes);
/* Dry run: set c->dry = 1 and build a step's forward (and backward) as usual: shapes are computed and
 * checked, no arithmetic is done, no data is allocated. ctx_dry_finish() ends it, returns the bytes a
 * real step needs and reserves them in the arena, so the first real step allocates nothing. */
size_t ctx_dry_finish(Ctx *c);
/* Of those bytes, the tensor data (on the GPU: device memory; the rest are host-side headers). */
size_t ctx_dry_data_bytes(const Ctx *c);
/* Ends a dry run like ctx_dry_finish but reserves nothing: what a step would need, to check it fits first. */
size_t ctx_dry_measure(Ctx *c);

/* Tensor creation. tensor_new allocates in the context's arena (no data in a dry run); tensor_alloc is
 * persistent (malloc, or managed memory on the GPU) for data and parameters held outside a step;
 * tensor_free releases it. */
Tensor *tensor_new(Ctx *c, int ndim, const int *shape);
Tensor *tensor_new_like(Ctx *c, const Tensor *x);
Tensor *tensor_zeros(Ctx *c, int ndim, const int *shape);
Tensor *tensor_alloc(int ndim, const int *shape);   /* zero-filled, persistent */
Tensor *tensor_alloc_dtype(DType dt, int ndim, const int *shape);
void tensor_free(Tensor *t);
size_t dtype_size(DType dt);
const char *dtype_name(DType dt);      /* safetensors spelling: "F32", "U8", "I32", "I64", "BOOL" */
int shape_equal(const Tensor *a, const Tensor *b);
void shape_str(const Tensor *t, char *buf, size_t n);   /* "(2, 3, 4)" */
/* Convenience: shapes from literal lists, e.g. tensor_new(c, 3, DIMS(2, 3, 4)). */
#define DIMS(...) ((const int[]){__VA_ARGS__})

/* Fill helpers (outside the tape). */
void tensor_fill(Tensor *t, real v);
void tensor_fill_normal(Tensor *t, Rng *r, double mean, double std);
void tensor_fill_uniform(Tensor *t, Rng *r, double lo, double hi);
void tensor_copy_data(Tensor *dst, const Tensor *src);

/* Host arrays in and out of a step: the doors a model uses for data entering at the boundary (a batch,
 * given noise) and for results it reads back (samples, reconstructions), so that where tensors live is
 * the tensor library's business. In a dry run nothing is copied or drawn. */
Tensor *tensor_from_host(Ctx *c, int ndim, const int *shape, const real *values);   /* an arena copy */
void tensor_to_host(const Tensor *t, real *dst);                                    /* dst (numel) = t */
/* A new arena tensor of N(0, scale^2) draws from r in row-major order, each (real)(scale * rng_normal(r)). */
Tensor *tensor_randn(Ctx *c, int ndim, const int *shape, double scale, Rng *r);

/* ---- autograd -------------------------------------------------------------------------------------- */
/* Ops record themselves on the tape when grad mode is on and an input requires a gradient.
 * record() fails at once, naming the op, if the op has no backward. */
Node *record(Ctx *c, const OpInfo *op, Tensor *out, int nin, Tensor *const *in);
int needs_grad(Ctx *c, const Tensor *t);   /* inside a backward: does t want a gradient in this pass? */
real *grad_buf(Ctx *c, Tensor *t);         /* inside a backward: t's gradient buffer, zeroed on first use */
/* The same for an op that writes the whole gradient with a GEMM: *beta is 0 when the buffer holds no
 * gradient yet (it is then not zeroed first), 1 when the GEMM must add to it. */
real *grad_buf_beta(Ctx *c, Tensor *t, real *beta);

/* d loss / d p for every parameter (and marked input) that loss depends on, accumulated into p->grad.
 * Marked inputs (requires_grad set by the caller, not parameters) get their gradient in x->grad for this
 * pass. loss must have one element. May be called several times on one forward. */
void backward(Ctx *c, Tensor *loss);
/* The same with an explicit seed gradient dy (same shape as y). */
void backward_seed(Ctx *c, Tensor *y, const real *dy);
/* An optimiser step fused into the backward pass. apply(opt, p, off, n) updates the elements [off, off + n)
 * of parameter p from its gradient p->grad, with the same arithmetic however the elements are split. */
typedef struct ParamUpdate {
    void (*apply)(void *opt, Tensor *p, size_t off, size_t n);
    void *opt;
} ParamUpdate;
/* backward(c, loss), and every parameter that has a gradient (grad_seen) is updated as soon as that gradient
 * is final: right after the backward of the first op on the tape that uses it, or, for a linear layer's
 * weight, block of rows by block of rows as its gradient GEMM makes them, while they are in cache. The
 * result is bitwise what backward and then a separate optimiser step give: every op that reads a
 * parameter's value in its backward runs before the parameter's first use, or is that use (and an op
 * computes its input gradients before its weight's). So don't read a parameter in a backward through an
 * unrecorded alias (t_detach): that would see the new value. Parameters not on this tape are not touched;
 * each updated one gets update_pass = c->pass. */
void backward_update(Ctx *c, Tensor *loss, const ParamUpdate *update);

/* d y / d wrt[i] for chosen tensors (parameters or activations), returned as new arena tensors; no
 * parameter's .grad is touched. y must have one element. */
void grad_of(Ctx *c, Tensor *y, int n, Tensor *const *wrt, Tensor **out);

/* Gradient of a gradient (the temporal discriminator's gradient penalty).
 * The penalty is P(theta) = s * |g|^2 with g = d D(x; theta) / dx. Its parameter gradient is
 *     dP/dtheta = 2 s (dg/dtheta)^T g = 2 s * d/dtheta [ J_x D(x; theta) . v ]  at v = g held constant,
 * and J_x D . v is the directional derivative of D along v: a forward-mode tangent. So the design is
 * forward-over-reverse without any second-order tape: (1) g = grad_of(D, x) as usual; (2) run D again
 * carrying a tangent beside every activation, each tangent computed with ordinary recorded ops (a linear
 * layer's tangent is the same layer without bias applied to the tangent, an activation's is t_*_jvp
 * below, group norm's is t_group_norm_jvp in norm.h, max pooling's t_maxpool*_jvp in conv.h); (3) the
 * final tangent h = J_x D . v is a scalar per sample, so backward(2 s sum h) puts exactly dP/dtheta into
 * the parameters' .grad. Exact (no finite differences), and tested against finite differences of P. */
/* Tangent of an activation at x along dx: f'(x) * dx, differentiable in x and dx. */
Tensor *t_relu_jvp(Ctx *c, Tensor *x, Tensor *dx);
Tensor *t_leaky_relu_jvp(Ctx *c, Tensor *x, Tensor *dx, real slope);
Tensor *t_tanh_jvp(Ctx *c, Tensor *x, Tensor *dx);
Tensor *t_sigmoid_jvp(Ctx *c, Tensor *x, Tensor *dx);

/* A view of x that is cut from the graph (no gradient flows back through it). Shares x's data. */
Tensor *t_detach(Ctx *c, Tensor *x);

/* ---- parameter sets -------------------------------------------------------------------------------- */
/* A model's parameters and buffers, registered under their official names. Declare everything first,
 * then paramset_alloc puts all parameter values in one block, all gradients in another, buffers in a
 * third, so optimisers and checkpoints see them as a few flat arrays. */
typedef struct ParamSet {
    Tensor **t;                 /* in registration (state_dict) order */
    int n, cap;
    real *values, *grads;       /* one block each for the trainable parameters */
    size_t nvalues;             /* total parameter elements */
    void *buffers;              /* one block for the buffers */
    size_t buffer_bytes;
    int allocated;
    Device device;              /* device_default() when paramset_init ran */
} ParamSet;

void paramset_init(ParamSet *ps);
void paramset_free(ParamSet *ps);
/* Declare a trainable parameter / a buffer. name is copied. Data is valid after paramset_alloc. */
Tensor *param_new(ParamSet *ps, const char *name, int ndim, const int *shape);
Tensor *buffer_new(ParamSet *ps, const char *name, DType dt, int ndim, const int *shape);
void paramset_alloc(ParamSet *ps);
Tensor *paramset_find(const ParamSet *ps, const char *name);
size_t paramset_count(const ParamSet *ps);     /* trainable elements (what the paper's parameter counts count) */
/* Zeroes every .grad without touching memory: each parameter is marked, and the first op that takes its
 * gradient in a backward pass either zeroes it or, like a weight gradient GEMM (beta 0), overwrites it.
 * That saves a pass over all the gradients and a read of them per step. Code that reads a gradient
 * after backward calls param_grad, which zeroes one that no op took. */
void paramset_zero_grad(ParamSet *ps);
real *param_grad(Tensor *t);

/* ---- ops --------------------------------------------------------------------------------------------
 * Every op takes the context first, returns a new arena tensor and never writes its inputs. Shapes are
 * checked with I2V_ASSERT (a wrong shape is a bug in the caller, not bad user input). */

/* elementwise, binary, NumPy broadcasting (an axis of size 1, or a missing leading axis, is repeated) */
Tensor *t_add(Ctx *c, Tensor *a, Tensor *b);
Tensor *t_sub(Ctx *c, Tensor *a, Tensor *b);
Tensor *t_mul(Ctx *c, Tensor *a, Tensor *b);
Tensor *t_div(Ctx *c, Tensor *a, Tensor *b);
/* elementwise with a constant */
Tensor *t_scale(Ctx *c, Tensor *x, real s);          /* s * x */
Tensor *t_add_scalar(Ctx *c, Tensor *x, real s);     /* x + s */
/* elementwise, unary */
Tensor *t_relu(Ctx *c, Tensor *x);
Tensor *t_leaky_relu(Ctx *c, Tensor *x, real slope);
Tensor *t_tanh(Ctx *c, Tensor *x);
Tensor *t_sigmoid(Ctx *c, Tensor *x);
Tensor *t_exp(Ctx *c, Tensor *x);
Tensor *t_log(Ctx *c, Tensor *x);
Tensor *t_abs(Ctx *c, Tensor *x);
Tensor *t_sqrt(Ctx *c, Tensor *x);
Tensor *t_square(Ctx *c, Tensor *x);
Tensor *t_clamp(Ctx *c, Tensor *x, real lo, real hi);   /* gradient 1 inside [lo, hi], 0 outside */
/* Inverted dropout as PyTorch: zero with probability p, scale the rest by 1/(1-p); identity in eval mode. */
Tensor *t_dropout(Ctx *c, Tensor *x, real p, Rng *r);

/* reductions. axes is a bit mask (bit k = reduce axis k); keepdim keeps reduced axes as size 1. */
Tensor *t_sum(Ctx *c, Tensor *x, unsigned axes, int keepdim);
Tensor *t_mean(Ctx *c, Tensor *x, unsigned axes, int keepdim);
Tensor *t_sum_all(Ctx *c, Tensor *x);                   /* 0-D */
Tensor *t_mean_all(Ctx *c, Tensor *x);                  /* 0-D */
#define AXES_ALL 0x1fu
#define AXES_PER_SAMPLE 0x1eu                           /* every axis but 0: one value per sample */
Tensor *t_softmax(Ctx *c, Tensor *x, int axis);
/* weight * (number of negative entries) per sample: x (N, ...) -> (N), the product taken in double (the
 * invertible leaky ReLU's log-determinant). Piecewise constant, so its gradient is zero wherever it exists:
 * it is never recorded and its output requires no gradient. */
Tensor *t_count_negative(Ctx *c, Tensor *x, double weight);

/* shape */
Tensor *t_reshape(Ctx *c, Tensor *x, int ndim, const int *shape);  /* one entry may be -1 */
Tensor *t_permute(Ctx *c, Tensor *x, const int *perm);             /* out.shape[i] = x.shape[perm[i]] */
Tensor *t_transpose(Ctx *c, Tensor *x, int a, int b);
Tensor *t_concat(Ctx *c, int n, Tensor *const *xs, int axis);
Tensor *t_slice(Ctx *c, Tensor *x, int axis, int start, int len);
void t_split(Ctx *c, Tensor *x, int axis, int n, const int *sizes, Tensor **out);
/* out.index(axis, j) = x.index(axis, idx[j]); idx holds n entries in [0, x.shape[axis]) */
Tensor *t_index_select(Ctx *c, Tensor *x, int axis, int n, const int64_t *idx);

/* linear algebra */
/* y = x W^T + b: x (..., Din), W (Dout, Din), b (Dout) or NULL -> y (..., Dout) */
Tensor *t_linear(Ctx *c, Tensor *x, Tensor *w, Tensor *b);
/* batched matmul: a (B, M, K) (or (B, K, M) if ta), b (B, K, N) (or (B, N, K) if tb) -> (B, M, N) */
Tensor *t_bmm(Ctx *c, Tensor *a, Tensor *b, int ta, int tb);

/* losses: all return 0-D tensors */
Tensor *t_l1_loss(Ctx *c, Tensor *a, Tensor *b);        /* mean |a - b| */
Tensor *t_mse_loss(Ctx *c, Tensor *a, Tensor *b);       /* mean (a - b)^2 */
Tensor *t_hinge_d_real(Ctx *c, Tensor *logits);         /* mean relu(1 - x) */
Tensor *t_hinge_d_fake(Ctx *c, Tensor *logits);         /* mean relu(1 + x) */
Tensor *t_hinge_g(Ctx *c, Tensor *logits);              /* -mean x */
/* KL(N(mu, exp(logvar)) || N(0, I)) = -0.5 mean_n sum_d (1 + logvar - mu^2 - exp(logvar)); mu, logvar (N, ...) */
Tensor *t_kl_normal(Ctx *c, Tensor *mu, Tensor *logvar);
/* Negative log-likelihood of x under N(0, I) without the 0.5 D log(2 pi) constant, per sample:
 * 0.5 sum_d x^2 -> (N). (The cINN's nll, stage2_cINN/modules/loss.py.) */
Tensor *t_gaussian_nll(Ctx *c, Tensor *x);

#endif
