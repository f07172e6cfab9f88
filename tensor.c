/* tensor.c: tensors, the arena, the autograd tape, parameter sets, random numbers, and the elementwise,
 * reduction, shape, linear-algebra and loss ops with their backward passes.
 *
 * Not here: convolutions, pooling and resampling (ops/conv.c), normalisations (ops/norm.c), optimisers
 * (ops/optim.c), the raw kernels (kernels/), checkpoints (formats/safetensors.c).
 *
 * How an op is written: see tensor.h. The public function (t_mul, t_linear, ...) checks shapes, allocates
 * its output in the arena, computes it (unless the context is a dry run) and calls record(), which appends
 * a Node to the tape if gradients are wanted. Its tape callback t_xxx_backward, defined right above it,
 * reads the output's gradient and accumulates (+=) into the gradients of the inputs that need one. The
 * tape is a flat array; backward() walks it in reverse. Dimension legend: N batch, C channels, T frames,
 * H, W, D features.
 */
#define _DEFAULT_SOURCE   /* glibc: MADV_HUGEPAGE in <sys/mman.h> (see big_alloc) */
#include "tensor.h"

#include <tgmath.h>  /* exp, tanh, ... follow the type of `real` */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "cuda/cuda.h"
#include "kernels/elementwise.h"
#include "kernels/gemm.h"
#include "kernels/linear.h"
#include "kernels/loss.h"
#include "kernels/reduce.h"
#include "kernels/shape.h"
#include "kernels/threads.h"

/* ==================================================================================================== */
/* random numbers: xoshiro256** (Blackman and Vigna), seeded by splitmix64                              */
/* ==================================================================================================== */

uint64_t rng_hash64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t splitmix64(uint64_t *x) { return rng_hash64(*x += 0x9e3779b97f4a7c15ull); }

void rng_seed(Rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
    r->has_spare = 0;
    r->spare = 0;
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t rng_u64(Rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double rng_uniform(Rng *r) { return (rng_u64(r) >> 11) * 0x1.0p-53; }

double rng_normal(Rng *r) {
    if (r->has_spare) {
        r->has_spare = 0;
        return r->spare;
    }
    double u1, u2;
    do u1 = rng_uniform(r); while (u1 <= 0.0);   /* log(0) would be -inf */
    u2 = rng_uniform(r);
    double radius = sqrt(-2.0 * log(u1)), angle = 2.0 * I2V_PI * u2;
    r->spare = radius * sin(angle);
    r->has_spare = 1;
    return radius * cos(angle);
}

/* Lemire's method would be faster; rejection keeps it obviously unbiased. */
uint32_t rng_below(Rng *r, uint32_t n) {
    I2V_ASSERT(n > 0, "rng_below(0)");
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = rng_u64(r); while (x >= limit);
    return (uint32_t)(x % n);
}

void rng_permutation(Rng *r, int n, int64_t *perm) {
    for (int i = 0; i < n; i++) perm[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)rng_below(r, (uint32_t)i + 1);
        int64_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

int rng_bernoulli(Rng *r, double p) { return rng_uniform(r) < p; }

/* ==================================================================================================== */
/* the device                                                                                            */
/* ==================================================================================================== */

static Device chosen_device = DEVICE_CPU;

int device_select(const char *name, I2vError *e) {
    if (!name) {
        name = getenv("I2V_DEVICE");
        if (!name || !name[0]) name = "cpu";
    }
    if (!strcmp(name, "cpu")) {
        chosen_device = DEVICE_CPU;
        return 0;
    }
    if (strcmp(name, "cuda"))
        return err_set(e, "device '%s': expected cpu or cuda (from --device or I2V_DEVICE)", name);
    if (!I2V_CUDA)
        return err_set(e, "no CUDA device: this i2v was built without the GPU backend (rebuild with make CUDA=1)");
    char why[512] = "";
    if (I2V_CUDA && cuda_open(why, sizeof why)) return err_set(e, "no CUDA device: %s", why);
    chosen_device = DEVICE_CUDA;
    return 0;
}

Device device_default(void) { return chosen_device; }

const char *device_name(Device d) { return d == DEVICE_CUDA ? "cuda" : "cpu"; }

/* ==================================================================================================== */
/* arena                                                                                                 */
/* ==================================================================================================== */

#define ARENA_ALIGN 64  /* a cache line, and enough for any SIMD load */

struct ArenaChunk {
    ArenaChunk *next;
    size_t size, used;
    unsigned char *mem;
};

static size_t align_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

/* Activations, workspaces, parameters and their gradients: blocks of at least HUGE_MIN bytes are
 * aligned to 2 MB and offered to the kernel for transparent huge pages (Linux's MADV_HUGEPAGE; where
 * THP is set to `madvise`, nothing else gets them). The convolutions read their operands in place, rows
 * kilobytes apart: with 4 KB pages a 128-row GEMM panel spans 128 pages, more than the first-level
 * TLB holds. Elsewhere (no MADV_HUGEPAGE) this is a plain 64-byte-aligned allocation. */
enum { HUGE_MIN = 4 << 20, HUGE_PAGE = 2 << 20 };
static void *big_alloc(size_t bytes) {
#ifdef MADV_HUGEPAGE
    if (bytes >= HUGE_MIN) {
        size_t size = align_up(bytes, HUGE_PAGE);
        void *p = aligned_alloc(HUGE_PAGE, size);
        if (p) madvise(p, size, MADV_HUGEPAGE);   /* advice only: failure changes nothing */
        return p;
    }
#endif
    return aligned_alloc(ARENA_ALIGN, align_up(bytes ? bytes : 1, ARENA_ALIGN));
}

/* Memory of a device: host memory (big_alloc) or the GPU's managed memory. */
static void *device_alloc(Device d, size_t bytes) {
    if (I2V_CUDA && d == DEVICE_CUDA) {
        void *p = cuda_alloc(bytes);
        I2V_ASSERT(p, "out of GPU memory: %zu bytes (%s); a smaller batch or config may fit", bytes,
                   cuda_device_name());
        return p;
    }
    return big_alloc(bytes);
}

static void device_free(Device d, void *p) {
    if (I2V_CUDA && d == DEVICE_CUDA) cuda_free(p);
    else free(p);
}

void *device_calloc(Device d, size_t bytes) {
    void *p = device_alloc(d, bytes);
    memset(p, 0, bytes);   /* on the GPU: managed memory no kernel has used yet */
    return p;
}

void device_release(Device d, void *p) { device_free(d, p); }

static ArenaChunk *chunk_new(size_t size, Device d) {
    ArenaChunk *ch = xmalloc(sizeof *ch);
    ch->next = NULL;
    ch->size = size;
    ch->used = 0;
    ch->mem = device_alloc(d, size);
    I2V_ASSERT(ch->mem, "out of memory: arena chunk of %zu bytes", size);
    return ch;
}

void arena_init(Arena *a, size_t first_chunk_bytes) {
    Device d = a->device;   /* set by the owner before, or DEVICE_CPU (0) in a zeroed Arena */
    memset(a, 0, sizeof *a);
    a->device = d == DEVICE_CUDA ? DEVICE_CUDA : DEVICE_CPU;
    if (first_chunk_bytes) {
        a->head = a->cur = chunk_new(first_chunk_bytes, a->device);
        a->capacity = first_chunk_bytes;
    }
}

void *arena_alloc(Arena *a, size_t bytes) {
    bytes = align_up(bytes ? bytes : 1, ARENA_ALIGN);
    /* Look for room in the current chunk, then in the chunks after it (kept from earlier steps). */
    while (a->cur && a->cur->used + bytes > a->cur->size) {
        if (!a->cur->next) break;
        a->cur = a->cur->next;
    }
    if (!a->cur || a->cur->used + bytes > a->cur->size) {
        size_t last = a->cur ? a->cur->size : 0;
        size_t size = bytes > 2 * last ? bytes : 2 * last;
        if (size < ((size_t)1 << 20)) size = (size_t)1 << 20;
        ArenaChunk *ch = chunk_new(size, a->device);
        if (a->cur) a->cur->next = ch;
        else a->head = ch;
        a->cur = ch;
        a->capacity += size;
    }
    void *p = a->cur->mem + a->cur->used;
    a->cur->used += bytes;
    a->used += bytes;
    if (a->used > a->peak) a->peak = a->used;
    return p;
}

void arena_reset(Arena *a) {
    for (ArenaChunk *ch = a->head; ch; ch = ch->next) ch->used = 0;
    a->cur = a->head;
    a->used = 0;
}

void arena_free(Arena *a) {
    ArenaChunk *ch = a->head;
    Device d = a->device;
    while (ch) {
        ArenaChunk *next = ch->next;
        device_free(d, ch->mem);
        free(ch);
        ch = next;
    }
    memset(a, 0, sizeof *a);
    a->device = d;
}

/* ==================================================================================================== */
/* context                                                                                               */
/* ==================================================================================================== */

void ctx_init_device(Ctx *c, Device d) {
    I2V_ASSERT(d == DEVICE_CPU || (I2V_CUDA && d == DEVICE_CUDA && device_default() == DEVICE_CUDA),
               "a GPU context before device_select(\"cuda\") succeeded");
    memset(c, 0, sizeof *c);
    c->device = d;
    arena_init(&c->arena, 0);         /* headers and host-side records: always host memory */
    c->data_arena.device = d;
    arena_init(&c->data_arena, 0);
    c->grad_enabled = 1;
    c->training = 1;
}

void ctx_init(Ctx *c) { ctx_init_device(c, device_default()); }

void ctx_free(Ctx *c) {
    ctx_sync(c);
    arena_free(&c->arena);
    arena_free(&c->data_arena);
    free(c->tape);
    free(c->free_grads);
    free(c->scratch);
    memset(c, 0, sizeof *c);
}

void ctx_reset(Ctx *c) {
    ctx_sync(c);   /* the arena's memory is handed out again: what is queued must have run */
    c->ntape = 0;
    c->nfree_grads = 0;
    arena_reset(&c->arena);
    arena_reset(&c->data_arena);
    c->dry_bytes = 0;
}

void ctx_sync(Ctx *c) {
    if (on_gpu(c)) cuda_sync();
}

void ctx_memcpy(Ctx *c, void *dst, const void *src, size_t bytes) {
    if (!bytes || dst == src) return;
    if (on_gpu(c)) cuda_copy(dst, src, bytes);
    else memcpy(dst, src, bytes);
}

void ctx_zero(Ctx *c, void *dst, size_t bytes) {
    if (!bytes || !dst) return;
    if (on_gpu(c)) cuda_memset0(dst, bytes);
    else memset(dst, 0, bytes);
}

void *ctx_scratch(Ctx *c, size_t bytes) {
    if (bytes > c->scratch_bytes) {
        free(c->scratch);
        c->scratch_bytes = align_up(bytes, ARENA_ALIGN);
        c->scratch = big_alloc(c->scratch_bytes);
        I2V_ASSERT(c->scratch, "out of memory: scratch of %zu bytes", bytes);
    }
    if (bytes > c->peak_scratch) c->peak_scratch = bytes;
    return c->scratch;
}

/* Data for an arena tensor (on the GPU in the data arena). A dry run only counts the bytes it would have
 * taken. */
static void *arena_data(Ctx *c, size_t bytes) {
    bytes = align_up(bytes, ARENA_ALIGN);
    if (c->dry) {
        c->dry_bytes += bytes;
        return NULL;
    }
    return arena_alloc(on_gpu(c) ? &c->data_arena : &c->arena, bytes);
}

static real *arena_reals(Ctx *c, size_t n) { return arena_data(c, n * sizeof(real)); }

size_t ctx_dry_finish(Ctx *c) {
    size_t data = c->dry_bytes, headers = c->arena.used;  /* data that was counted + headers allocated */
    size_t need = data + headers;
    c->dry = 0;
    ctx_reset(c);
    c->dry_data_bytes = data;
    /* one chunk each: the real step allocates exactly what was counted */
    if (on_gpu(c)) {
        if (c->arena.capacity < headers) {
            arena_free(&c->arena);
            arena_init(&c->arena, headers);
        }
        if (c->data_arena.capacity < data) {
            arena_free(&c->data_arena);
            arena_init(&c->data_arena, data);
        }
    } else if (c->arena.capacity < need) {
        arena_free(&c->arena);
        arena_init(&c->arena, need);
    }
    return need;
}

size_t ctx_dry_data_bytes(const Ctx *c) { return c->dry_data_bytes; }

size_t ctx_dry_measure(Ctx *c) {
    size_t data = c->dry_bytes, need = data + c->arena.used;
    c->dry = 0;
    ctx_reset(c);
    c->dry_data_bytes = data;
    return need;
}

/* ==================================================================================================== */
/* tensors                                                                                               */
/* ==================================================================================================== */

size_t dtype_size(DType dt) {
    switch (dt) {
    case DT_REAL: return sizeof(real);
    case DT_U8: return 1;
    case DT_BOOL: return 1;
    case DT_I32: return 4;
    case DT_I64: return 8;
    }
    return 0;
}

const char *dtype_name(DType dt) {
    switch (dt) {
    case DT_REAL: return "F32";
    case DT_U8: return "U8";
    case DT_BOOL: return "BOOL";
    case DT_I32: return "I32";
    case DT_I64: return "I64";
    }
    return "?";
}

static size_t shape_numel(int ndim, const int *shape) {
    size_t n = 1;
    for (int i = 0; i < ndim; i++) {
        I2V_ASSERT(shape[i] >= 0, "negative dimension %d in axis %d", shape[i], i);
        n *= (size_t)shape[i];
    }
    return n;
}

static void header_init(Tensor *t, int ndim, const int *shape) {
    I2V_ASSERT(ndim >= 0 && ndim <= I2V_MAXDIM, "tensors have 0 to %d dimensions, not %d", I2V_MAXDIM, ndim);
    memset(t, 0, sizeof *t);
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->numel = shape_numel(ndim, shape);
    t->dtype = DT_REAL;
}

Tensor *tensor_new(Ctx *c, int ndim, const int *shape) {
    Tensor *t = arena_alloc(&c->arena, sizeof *t);
    header_init(t, ndim, shape);
    t->device = (unsigned char)c->device;
    t->data = arena_reals(c, t->numel);
    return t;
}

Tensor *tensor_new_like(Ctx *c, const Tensor *x) { return tensor_new(c, x->ndim, x->shape); }

Tensor *tensor_zeros(Ctx *c, int ndim, const int *shape) {
    Tensor *t = tensor_new(c, ndim, shape);
    if (t->data) ctx_zero(c, t->data, t->numel * sizeof(real));
    return t;
}

Tensor *tensor_alloc_dtype(DType dt, int ndim, const int *shape) {
    Tensor *t = xmalloc(sizeof *t);
    header_init(t, ndim, shape);
    t->dtype = dt;
    t->device = (unsigned char)device_default();
    size_t bytes = (t->numel ? t->numel : 1) * dtype_size(dt);
    void *mem;
    if (t->device == DEVICE_CUDA) {   /* managed memory, written here before any kernel reads it */
        mem = device_alloc(DEVICE_CUDA, bytes);
        memset(mem, 0, bytes);
    } else {
        mem = xcalloc(t->numel ? t->numel : 1, dtype_size(dt));
    }
    if (dt == DT_REAL) t->data = mem;
    else t->ibuf = mem;
    return t;
}

Tensor *tensor_alloc(int ndim, const int *shape) { return tensor_alloc_dtype(DT_REAL, ndim, shape); }

void tensor_free(Tensor *t) {
    if (!t) return;
    device_free((Device)t->device, t->data);
    device_free((Device)t->device, t->ibuf);
    free(t);
}

int shape_equal(const Tensor *a, const Tensor *b) {
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return 1;
}

void shape_str(const Tensor *t, char *buf, size_t n) {
    size_t k = 0;
    k += (size_t)snprintf(buf + k, k < n ? n - k : 0, "(");
    for (int i = 0; i < t->ndim; i++)
        k += (size_t)snprintf(buf + k, k < n ? n - k : 0, i ? ", %d" : "%d", t->shape[i]);
    snprintf(buf + k, k < n ? n - k : 0, ")");
}

void tensor_fill(Tensor *t, real v) {
    for (size_t i = 0; i < t->numel; i++) t->data[i] = v;
}

void tensor_fill_normal(Tensor *t, Rng *r, double mean, double std) {
    for (size_t i = 0; i < t->numel; i++) t->data[i] = (real)(mean + std * rng_normal(r));
}

void tensor_fill_uniform(Tensor *t, Rng *r, double lo, double hi) {
    for (size_t i = 0; i < t->numel; i++) t->data[i] = (real)(lo + (hi - lo) * rng_uniform(r));
}

void tensor_copy_data(Tensor *dst, const Tensor *src) {
    I2V_ASSERT(dst->numel == src->numel && dst->dtype == src->dtype, "copy between tensors of %zu and %zu elements",
               dst->numel, src->numel);
    if (dst->dtype == DT_REAL) memcpy(dst->data, src->data, src->numel * sizeof(real));
    else memcpy(dst->ibuf, src->ibuf, src->numel * dtype_size(src->dtype));
}

/* On the GPU the doors are the only crossings: an upload queued on the stream, a read after the queue has
 * run, and draws made on the host (the same numbers on both devices) then uploaded. */
Tensor *tensor_from_host(Ctx *c, int ndim, const int *shape, const real *values) {
    Tensor *t = tensor_new(c, ndim, shape);
    if (t->data) ctx_memcpy(c, t->data, values, t->numel * sizeof(real));
    return t;
}

void tensor_to_host(const Tensor *t, real *dst) {
    I2V_ASSERT(t->dtype == DT_REAL && t->data, "tensor_to_host of a tensor without real values");
    if (I2V_CUDA && t->device == DEVICE_CUDA) cuda_sync();
    memcpy(dst, t->data, t->numel * sizeof(real));
}

Tensor *tensor_randn(Ctx *c, int ndim, const int *shape, double scale, Rng *r) {
    Tensor *t = tensor_new(c, ndim, shape);
    if (t->data) {
        real *draws = on_gpu(c) ? ctx_scratch(c, t->numel * sizeof(real)) : t->data;
        for (size_t i = 0; i < t->numel; i++) draws[i] = (real)(scale * rng_normal(r));
        ctx_memcpy(c, t->data, draws, t->numel * sizeof(real));
    }
    return t;
}

/* ==================================================================================================== */
/* the tape and backward                                                                                 */
/* ==================================================================================================== */

Node *record(Ctx *c, const OpInfo *op, Tensor *out, int nin, Tensor *const *in) {
    I2V_ASSERT(nin <= NODE_MAXIN, "op %s has %d inputs, at most %d are supported", op->name, nin, NODE_MAXIN);
    if (!c->grad_enabled) return NULL;
    int any = 0;
    for (int i = 0; i < nin; i++)
        if (in[i] && in[i]->requires_grad) any = 1;
    if (!any) return NULL;
    I2V_ASSERT(op->backward, "op '%s' has no backward and cannot be recorded (use no-grad mode)", op->name);
    if (c->ntape == c->tape_cap) {
        c->tape_cap = c->tape_cap ? 2 * c->tape_cap : 256;
        c->tape = realloc(c->tape, c->tape_cap * sizeof *c->tape);
        I2V_ASSERT(c->tape, "out of memory growing the tape to %zu nodes", c->tape_cap);
    }
    Node *n = &c->tape[c->ntape++];
    memset(n, 0, sizeof *n);
    n->op = op;
    n->out = out;
    n->nin = nin;
    for (int i = 0; i < nin; i++) n->in[i] = in[i];
    out->requires_grad = 1;
    return n;
}

int needs_grad(Ctx *c, const Tensor *t) {
    if (!t || !t->requires_grad) return 0;
    if (c->redirect) return t->dep_pass == c->pass;
    return 1;
}

/* The smallest released gradient buffer that holds n reals, else a new one. What a block has beyond the
 * request, if that is worth keeping, goes back on the list. */
enum { GRAD_SPLIT_BYTES = 64 * 1024 };
static real *reuse_grad_buffer(Ctx *c, size_t n) {
    size_t bytes = align_up(n * sizeof(real), ARENA_ALIGN), best = c->nfree_grads;
    for (size_t i = 0; i < c->nfree_grads; i++)
        if (c->free_grads[i].bytes >= bytes && (best == c->nfree_grads || c->free_grads[i].bytes < c->free_grads[best].bytes))
            best = i;
    if (best == c->nfree_grads) return arena_reals(c, n);
    real *p = c->free_grads[best].ptr;
    size_t rest = c->free_grads[best].bytes - bytes;
    if (rest >= GRAD_SPLIT_BYTES) {   /* the tail of a larger block stays free (a dry run has no pointers) */
        c->free_grads[best].ptr = p ? p + bytes / sizeof(real) : NULL;
        c->free_grads[best].bytes = rest;
    } else {
        c->free_grads[best] = c->free_grads[--c->nfree_grads];
    }
    return p;
}

/* After node n ran its backward, the gradient of its output is dead, unless the caller reads it: the
 * tensor backward started from and grad_of's targets keep theirs (and an op writing in place, whose
 * output is also its input, keeps it for the op before). */
static void release_grad_buffer(Ctx *c, const Node *n, const Tensor *seed) {
    Tensor *t = n->out;
    if (t == seed || t->is_param || t->grad_pass != c->pass) return;
    for (int i = 0; i < c->ntargets; i++)
        if (c->targets[i] == t) return;
    for (int i = 0; i < n->nin; i++)
        if (n->in[i] == t) return;
    if (c->nfree_grads == c->free_grads_cap) {
        c->free_grads_cap = c->free_grads_cap ? 2 * c->free_grads_cap : 64;
        c->free_grads = realloc(c->free_grads, c->free_grads_cap * sizeof *c->free_grads);
        I2V_ASSERT(c->free_grads, "out of memory growing the list of free gradient buffers");
    }
    c->free_grads[c->nfree_grads].ptr = t->grad;
    c->free_grads[c->nfree_grads].bytes = align_up(t->numel * sizeof(real), ARENA_ALIGN);
    c->nfree_grads++;
    t->grad = NULL;
    t->grad_pass = 0;
}

/* A parameter's own gradient accumulates across passes (zeroed by the user), unless grad_of redirects it. */
static int owns_grad(const Ctx *c, const Tensor *t) { return t->is_param && !c->redirect; }

/* Everything but a parameter's own gradient: a target's buffer in grad_of, else this pass's buffer,
 * taken (and zeroed) the first time. */
static real *pass_grad_buf(Ctx *c, Tensor *t) {
    if (t->is_param) {
        for (int i = 0; i < c->ntargets; i++)
            if (c->targets[i] == t) return c->target_grads[i];
        I2V_ASSERT(0, "gradient requested for parameter '%s' that is not a target", t->name ? t->name : "?");
    }
    if (t->grad_pass != c->pass) {
        t->grad = reuse_grad_buffer(c, t->numel);
        if (t->grad) ctx_zero(c, t->grad, t->numel * sizeof(real));
        t->grad_pass = c->pass;
    }
    return t->grad;
}

real *grad_buf(Ctx *c, Tensor *t) {
    if (!owns_grad(c, t)) return pass_grad_buf(c, t);
    t->grad_seen = 1;
    return param_grad(t);
}

real *grad_buf_beta(Ctx *c, Tensor *t, real *beta) {
    *beta = 1;
    if (!owns_grad(c, t) || !t->grad_zero) return grad_buf(c, t);
    t->grad_seen = 1;
    t->grad_zero = 0;   /* the caller's GEMM overwrites it */
    *beta = 0;
    return t->grad;
}

/* backward_update: p's gradient is final. The op that wrote it may have updated p already. */
static void update_param(Ctx *c, Tensor *p) {
    if (c->dry || p->update_pass == c->pass || !p->grad_seen) return;
    param_grad(p);   /* zeroes a gradient that no op wrote */
    c->update->apply(c->update->opt, p, 0, p->numel);
    p->update_pass = c->pass;
}

/* Inside an op's backward in backward_update: this op is the last to add to parameter p's gradient, so it
 * may update p itself as it writes the gradient (it then sets p->update_pass). */
static int last_use(const Ctx *c, const Tensor *p) {
    return c->update && owns_grad(c, p) && p->uses_left == 1;
}

/* Node n's backward, when its output received a gradient in this pass: the gradients of its inputs that
 * need one. Then its output's gradient buffer is free for later nodes. */
static void run_node_backward(Ctx *c, Node *n, const Tensor *y) {
    int wanted = 0;   /* single-input backwards rely on this: they run only if their input needs it */
    for (int k = 0; k < n->nin; k++)
        if (needs_grad(c, n->in[k])) {
            wanted = 1;
            /* the input gradients are taken here, in input order, in a dry run as in a real one, so the
             * two reuse the same released buffers and the dry run's size holds (a parameter's own
             * gradient is no pass buffer: the op takes it, maybe with grad_buf_beta) */
            if (!owns_grad(c, n->in[k])) pass_grad_buf(c, n->in[k]);
        }
    if (wanted && !c->dry) n->op->backward(c, n);
    release_grad_buffer(c, n, y);
}

/* Walks the tape from the last node to the first. A node runs when its output received a gradient in
 * this pass (and, inside grad_of, leads back to a target). */
static void walk_back(Ctx *c, Tensor *y, const real *dy) {
    I2V_ASSERT(y->requires_grad, "backward from a tensor that does not depend on anything requiring a gradient");
    real *g = grad_buf(c, y);
    if (g) {
        static const real one = 1;
        if (dy) ctx_memcpy(c, g, dy, y->numel * sizeof(real));
        else {
            I2V_ASSERT(y->numel == 1, "backward needs a scalar (or backward_seed), got %zu elements", y->numel);
            ctx_memcpy(c, g, &one, sizeof one);
        }
    }
    for (size_t i = c->ntape; i-- > 0;) {
        Node *n = &c->tape[i];
        Tensor *o = n->out;
        if (o->grad_pass == c->pass && needs_grad(c, o)) run_node_backward(c, n, y);
        if (c->update)   /* whether it ran or not, this node adds nothing more to its parameters' gradients */
            for (int k = 0; k < n->nin; k++)
                if (n->in[k] && n->in[k]->is_param && --n->in[k]->uses_left == 0) update_param(c, n->in[k]);
    }
}

/* Pass numbers tag gradient buffers and dependency marks stored in the tensors themselves, and the same
 * tensor (a parameter, a persistent input) may meet several contexts, so the numbers are unique across
 * contexts. Backward passes run on one thread at a time. */
static unsigned last_pass;
static void new_pass(Ctx *c) { c->pass = ++last_pass; }

void backward_seed(Ctx *c, Tensor *y, const real *dy) {
    new_pass(c);
    walk_back(c, y, dy);
}

void backward(Ctx *c, Tensor *loss) { backward_seed(c, loss, NULL); }

void backward_update(Ctx *c, Tensor *loss, const ParamUpdate *update) {
    /* count each parameter's uses on the tape; walk_back counts them down */
    for (size_t i = 0; i < c->ntape; i++)
        for (int k = 0; k < c->tape[i].nin; k++)
            if (c->tape[i].in[k] && c->tape[i].in[k]->is_param) c->tape[i].in[k]->uses_left = 0;
    for (size_t i = 0; i < c->ntape; i++)
        for (int k = 0; k < c->tape[i].nin; k++)
            if (c->tape[i].in[k] && c->tape[i].in[k]->is_param) c->tape[i].in[k]->uses_left++;
    new_pass(c);
    c->update = update;
    walk_back(c, loss, NULL);
    c->update = NULL;
}

void grad_of(Ctx *c, Tensor *y, int n, Tensor *const *wrt, Tensor **out) {
    new_pass(c);
    /* Mark what depends on a target, walking the tape forward: only those tensors need gradients. */
    for (int i = 0; i < n; i++) {
        I2V_ASSERT(wrt[i]->requires_grad, "grad_of: target %d does not require a gradient", i);
        wrt[i]->dep_pass = c->pass;
    }
    for (size_t i = 0; i < c->ntape; i++) {
        Node *nd = &c->tape[i];
        for (int k = 0; k < nd->nin; k++)
            if (nd->in[k] && nd->in[k]->dep_pass == c->pass) nd->out->dep_pass = c->pass;
    }
    real *bufs[64];
    I2V_ASSERT(n <= 64, "grad_of takes at most 64 targets");
    for (int i = 0; i < n; i++) {
        bufs[i] = arena_reals(c, wrt[i]->numel);
        if (bufs[i]) ctx_zero(c, bufs[i], wrt[i]->numel * sizeof(real));
    }
    c->redirect = 1;
    c->ntargets = n;
    c->targets = (Tensor **)wrt;
    c->target_grads = bufs;
    if (y->dep_pass == c->pass) walk_back(c, y, NULL);
    c->redirect = 0;
    c->ntargets = 0;
    c->targets = NULL;
    c->target_grads = NULL;
    for (int i = 0; i < n; i++) {
        Tensor *g = arena_alloc(&c->arena, sizeof *g);
        header_init(g, wrt[i]->ndim, wrt[i]->shape);
        g->device = (unsigned char)c->device;
        if (wrt[i]->is_param) g->data = bufs[i];
        else if (wrt[i]->grad_pass == c->pass) g->data = wrt[i]->grad;
        else g->data = bufs[i];   /* y does not depend on this target: the gradient is zero */
        out[i] = g;
    }
}

Tensor *t_detach(Ctx *c, Tensor *x) {
    Tensor *t = arena_alloc(&c->arena, sizeof *t);
    header_init(t, x->ndim, x->shape);
    t->device = x->device;
    t->data = x->data;
    return t;
}

/* ==================================================================================================== */
/* parameter sets                                                                                        */
/* ==================================================================================================== */

void paramset_init(ParamSet *ps) {
    memset(ps, 0, sizeof *ps);
    ps->device = device_default();
}

void paramset_free(ParamSet *ps) {
    for (int i = 0; i < ps->n; i++) {
        free((char *)ps->t[i]->name);
        free(ps->t[i]);
    }
    free(ps->t);
    device_free(ps->device, ps->values);
    device_free(ps->device, ps->grads);
    device_free(ps->device, ps->buffers);
    memset(ps, 0, sizeof *ps);
}

static char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = xmalloc(n);
    memcpy(d, s, n);
    return d;
}

static Tensor *paramset_add(ParamSet *ps, const char *name, DType dt, int ndim, const int *shape) {
    I2V_ASSERT(!ps->allocated, "'%s' declared after paramset_alloc", name);
    I2V_ASSERT(!paramset_find(ps, name), "'%s' declared twice", name);
    if (ps->n == ps->cap) {
        ps->cap = ps->cap ? 2 * ps->cap : 64;
        ps->t = realloc(ps->t, (size_t)ps->cap * sizeof *ps->t);
        I2V_ASSERT(ps->t, "out of memory");
    }
    Tensor *t = xmalloc(sizeof *t);
    header_init(t, ndim, shape);
    t->dtype = dt;
    t->device = (unsigned char)ps->device;
    t->name = xstrdup(name);
    ps->t[ps->n++] = t;
    return t;
}

Tensor *param_new(ParamSet *ps, const char *name, int ndim, const int *shape) {
    Tensor *t = paramset_add(ps, name, DT_REAL, ndim, shape);
    t->is_param = 1;
    t->requires_grad = 1;
    return t;
}

Tensor *buffer_new(ParamSet *ps, const char *name, DType dt, int ndim, const int *shape) {
    return paramset_add(ps, name, dt, ndim, shape);
}

/* Every parameter starts on a 64-byte boundary inside the blocks, so kernels may use aligned loads. */
#define PARAM_ALIGN_ELEMS (ARENA_ALIGN / sizeof(real))

void paramset_alloc(ParamSet *ps) {
    I2V_ASSERT(!ps->allocated, "paramset_alloc called twice");
    size_t nvalues = 0, bbytes = 0;
    for (int i = 0; i < ps->n; i++) {
        Tensor *t = ps->t[i];
        if (t->is_param) nvalues += align_up(t->numel, PARAM_ALIGN_ELEMS);
        else bbytes += align_up(t->numel * dtype_size(t->dtype), ARENA_ALIGN);
    }
    ps->nvalues = nvalues;
    /* on the GPU: managed memory, zeroed and initialised here on the host before any kernel reads it */
    ps->values = device_alloc(ps->device, align_up(nvalues * sizeof(real), ARENA_ALIGN) + ARENA_ALIGN);
    ps->grads = device_alloc(ps->device, align_up(nvalues * sizeof(real), ARENA_ALIGN) + ARENA_ALIGN);
    ps->buffers = ps->device == DEVICE_CUDA ? device_alloc(ps->device, bbytes + ARENA_ALIGN)
                                            : aligned_alloc(ARENA_ALIGN, bbytes + ARENA_ALIGN);
    I2V_ASSERT(ps->values && ps->grads && ps->buffers, "out of memory for %zu parameters", nvalues);
    memset(ps->values, 0, nvalues * sizeof(real));
    memset(ps->grads, 0, nvalues * sizeof(real));
    memset(ps->buffers, 0, bbytes);
    ps->buffer_bytes = bbytes;
    size_t pv = 0, pb = 0;
    for (int i = 0; i < ps->n; i++) {
        Tensor *t = ps->t[i];
        if (t->is_param) {
            t->data = ps->values + pv;
            t->grad = ps->grads + pv;
            pv += align_up(t->numel, PARAM_ALIGN_ELEMS);
        } else {
            void *mem = (unsigned char *)ps->buffers + pb;
            if (t->dtype == DT_REAL) t->data = mem;
            else t->ibuf = mem;
            pb += align_up(t->numel * dtype_size(t->dtype), ARENA_ALIGN);
        }
    }
    ps->allocated = 1;
}

Tensor *paramset_find(const ParamSet *ps, const char *name) {
    for (int i = 0; i < ps->n; i++)
        if (!strcmp(ps->t[i]->name, name)) return ps->t[i];
    return NULL;
}

size_t paramset_count(const ParamSet *ps) {
    size_t n = 0;
    for (int i = 0; i < ps->n; i++)
        if (ps->t[i]->is_param) n += ps->t[i]->numel;
    return n;
}

void paramset_zero_grad(ParamSet *ps) {
    for (int i = 0; i < ps->n; i++)
        if (ps->t[i]->is_param) ps->t[i]->grad_zero = 1;
}

real *param_grad(Tensor *t) {
    if (t->grad_zero && t->grad) {
        if (I2V_CUDA && t->device == DEVICE_CUDA) cuda_memset0(t->grad, t->numel * sizeof(real));
        else memset(t->grad, 0, t->numel * sizeof(real));
    }
    t->grad_zero = 0;
    return t->grad;
}

/* ==================================================================================================== */
/* elementwise unary ops                                                                                 */
/* ==================================================================================================== */

/* One op for every unary function, with the function chosen by `kind` (kernels/elementwise.h); p0 and p1
 * are the function's constants. */
static const char *const unary_names[UNARY_KINDS] = {"relu", "leaky_relu", "tanh", "sigmoid", "exp", "log", "abs",
                                                     "sqrt", "square", "clamp", "scale", "add_scalar"};

static void t_unary_backward(Ctx *c, Node *n) {
    Tensor *x = n->in[0], *y = n->out;
    if (on_gpu(c))
        unary_backward_cuda(grad_buf(c, x), y->grad, x->data, y->data, x->numel, n->iarg[0], n->rarg[0], n->rarg[1]);
    else unary_backward(grad_buf(c, x), y->grad, x->data, y->data, x->numel, n->iarg[0], n->rarg[0], n->rarg[1]);
}
static const OpInfo OP_UNARY = {"unary", t_unary_backward};

static Tensor *unary(Ctx *c, Tensor *x, int kind, real p0, real p1) {
    I2V_ASSERT(x->dtype == DT_REAL, "%s of a non-float tensor", unary_names[kind]);
    Tensor *y = tensor_new_like(c, x);
    if (!c->dry && on_gpu(c)) unary_forward_cuda(y->data, x->data, x->numel, kind, p0, p1);
    else if (!c->dry) unary_forward(y->data, x->data, x->numel, kind, p0, p1);
    Node *n = record(c, &OP_UNARY, y, 1, &x);
    if (n) {
        n->iarg[0] = kind;
        n->rarg[0] = p0;
        n->rarg[1] = p1;
    }
    return y;
}

Tensor *t_relu(Ctx *c, Tensor *x) { return unary(c, x, UNARY_RELU, 0, 0); }
Tensor *t_leaky_relu(Ctx *c, Tensor *x, real slope) { return unary(c, x, UNARY_LEAKY_RELU, slope, 0); }
Tensor *t_tanh(Ctx *c, Tensor *x) { return unary(c, x, UNARY_TANH, 0, 0); }
Tensor *t_sigmoid(Ctx *c, Tensor *x) { return unary(c, x, UNARY_SIGMOID, 0, 0); }
Tensor *t_exp(Ctx *c, Tensor *x) { return unary(c, x, UNARY_EXP, 0, 0); }
Tensor *t_log(Ctx *c, Tensor *x) { return unary(c, x, UNARY_LOG, 0, 0); }
Tensor *t_abs(Ctx *c, Tensor *x) { return unary(c, x, UNARY_ABS, 0, 0); }
Tensor *t_sqrt(Ctx *c, Tensor *x) { return unary(c, x, UNARY_SQRT, 0, 0); }
Tensor *t_square(Ctx *c, Tensor *x) { return unary(c, x, UNARY_SQUARE, 0, 0); }
Tensor *t_clamp(Ctx *c, Tensor *x, real lo, real hi) { return unary(c, x, UNARY_CLAMP, lo, hi); }
Tensor *t_scale(Ctx *c, Tensor *x, real s) { return unary(c, x, UNARY_SCALE, s, 0); }
Tensor *t_add_scalar(Ctx *c, Tensor *x, real s) { return unary(c, x, UNARY_ADD_SCALAR, s, 0); }

/* dropout: the mask is a pure function of one draw of r (the seed) and the element's index
 * (kernels/elementwise.h), so the backward recomputes it; the seed travels in iarg[0..1] as two halves */
static uint64_t dropout_seed(const Node *n) { return (uint64_t)(uint32_t)n->iarg[0] << 32 | (uint32_t)n->iarg[1]; }

static void t_dropout_backward(Ctx *c, Node *n) {
    Tensor *x = n->in[0], *y = n->out;
    if (on_gpu(c)) dropout_backward_cuda(grad_buf(c, x), y->grad, x->numel, n->rarg[0], dropout_seed(n));
    else dropout_backward(grad_buf(c, x), y->grad, x->numel, n->rarg[0], dropout_seed(n));
}
static const OpInfo OP_DROPOUT = {"dropout", t_dropout_backward};

Tensor *t_dropout(Ctx *c, Tensor *x, real p, Rng *r) {
    I2V_ASSERT(p >= 0 && p < 1, "dropout probability %g outside [0, 1)", (double)p);
    if (!c->training || p == 0) return x;
    Tensor *y = tensor_new_like(c, x);
    uint64_t seed = c->dry ? 0 : rng_u64(r);   /* a dry run leaves the generator where it is */
    if (!c->dry && on_gpu(c)) dropout_forward_cuda(y->data, x->data, x->numel, p, seed);
    else if (!c->dry) dropout_forward(y->data, x->data, x->numel, p, seed);
    Node *n = record(c, &OP_DROPOUT, y, 1, &x);
    if (n) {
        n->iarg[0] = (int)(uint32_t)(seed >> 32);
        n->iarg[1] = (int)(uint32_t)seed;
        n->rarg[0] = p;
    }
    return y;
}

/* ==================================================================================================== */
/* elementwise binary ops with broadcasting                                                              */
/* ==================================================================================================== */

/* The output's rank and the kernel's plan (kernels/elementwise.h: inputs seen as 5-D, stride 0 along a
 * broadcast axis). */
typedef struct Broadcast {
    int ndim;                 /* of the output */
    BroadcastPlan p;
} Broadcast;

static void strides_5d(const Tensor *t, const int *out5, size_t *s, const char *op) {
    int shape5[I2V_MAXDIM];
    int off = I2V_MAXDIM - t->ndim;
    for (int i = 0; i < I2V_MAXDIM; i++) shape5[i] = i < off ? 1 : t->shape[i - off];
    size_t stride = 1;
    for (int i = I2V_MAXDIM - 1; i >= 0; i--) {
        I2V_ASSERT(shape5[i] == out5[i] || shape5[i] == 1, "%s: shapes do not broadcast (axis %d: %d vs %d)", op,
                   i - off, shape5[i], out5[i]);
        s[i] = shape5[i] == 1 ? 0 : stride;
        stride *= (size_t)shape5[i];
    }
}

static Broadcast broadcast_plan(const Tensor *a, const Tensor *b, const char *op) {
    Broadcast p;
    p.ndim = a->ndim > b->ndim ? a->ndim : b->ndim;
    for (int i = 0; i < I2V_MAXDIM; i++) {
        int ia = i - (I2V_MAXDIM - a->ndim), ib = i - (I2V_MAXDIM - b->ndim);
        int da = ia >= 0 ? a->shape[ia] : 1, db = ib >= 0 ? b->shape[ib] : 1;
        I2V_ASSERT(da == db || da == 1 || db == 1, "%s: shapes do not broadcast (%d vs %d)", op, da, db);
        p.p.shape[i] = da > db ? da : db;
        if (da == 0 || db == 0) p.p.shape[i] = 0;
    }
    strides_5d(a, p.p.shape, p.p.sa, op);
    strides_5d(b, p.p.shape, p.p.sb, op);
    return p;
}

static const char *const binary_names[] = {"add", "sub", "mul", "div"};

static void t_binary_backward(Ctx *c, Node *n) {
    Tensor *a = n->in[0], *b = n->in[1], *y = n->out;
    Broadcast p = broadcast_plan(a, b, binary_names[n->iarg[0]]);
    real *da = needs_grad(c, a) ? grad_buf(c, a) : NULL, *db = needs_grad(c, b) ? grad_buf(c, b) : NULL;
    if (on_gpu(c)) binary_backward_cuda(da, db, y->grad, a->data, b->data, &p.p, n->iarg[0]);
    else binary_backward(da, db, y->grad, a->data, b->data, &p.p, n->iarg[0]);
}
static const OpInfo OP_BINARY = {"binary", t_binary_backward};

static Tensor *binary(Ctx *c, Tensor *a, Tensor *b, int kind) {
    Broadcast p = broadcast_plan(a, b, binary_names[kind]);
    int shape[I2V_MAXDIM];
    for (int i = 0; i < p.ndim; i++) shape[i] = p.p.shape[I2V_MAXDIM - p.ndim + i];
    Tensor *y = tensor_new(c, p.ndim, shape);
    if (!c->dry && on_gpu(c)) binary_forward_cuda(y->data, a->data, b->data, &p.p, kind);
    else if (!c->dry) binary_forward(y->data, a->data, b->data, &p.p, kind);
    Tensor *in[2] = {a, b};
    Node *n = record(c, &OP_BINARY, y, 2, in);
    if (n) n->iarg[0] = kind;
    return y;
}

Tensor *t_add(Ctx *c, Tensor *a, Tensor *b) { return binary(c, a, b, BINARY_ADD); }
Tensor *t_sub(Ctx *c, Tensor *a, Tensor *b) { return binary(c, a, b, BINARY_SUB); }
Tensor *t_mul(Ctx *c, Tensor *a, Tensor *b) { return binary(c, a, b, BINARY_MUL); }
Tensor *t_div(Ctx *c, Tensor *a, Tensor *b) { return binary(c, a, b, BINARY_DIV); }

/* ==================================================================================================== */
/* reductions                                                                                            */
/* ==================================================================================================== */

/* The kernel's plan (kernels/reduce.h) of a sum of x over the axes in the mask, and the output's shape. */
static ReducePlan reduction_plan(const Tensor *x, unsigned axes, int *out_ndim, int *out_shape, int keepdim) {
    ReducePlan r;
    int off = I2V_MAXDIM - x->ndim;
    int oshape[I2V_MAXDIM];
    r.count = 1;
    *out_ndim = 0;
    for (int i = 0; i < I2V_MAXDIM; i++) {
        int ax = i - off;
        r.shape[i] = ax >= 0 ? x->shape[ax] : 1;
        int reduced = ax >= 0 && (axes >> ax & 1u);
        oshape[i] = reduced ? 1 : r.shape[i];
        if (reduced) r.count *= (size_t)r.shape[i];
        if (ax >= 0 && (keepdim || !reduced)) out_shape[(*out_ndim)++] = oshape[i];
    }
    size_t stride = 1;
    for (int i = I2V_MAXDIM - 1; i >= 0; i--) {
        r.os[i] = oshape[i] == 1 ? 0 : stride;
        stride *= (size_t)oshape[i];
    }
    r.nout = stride;
    return r;
}

static void t_reduce_backward(Ctx *c, Node *n) {
    Tensor *x = n->in[0], *y = n->out;
    int ndim, shape[I2V_MAXDIM];
    ReducePlan r = reduction_plan(x, (unsigned)n->iarg[0], &ndim, shape, 1);
    if (on_gpu(c)) sum_backward_cuda(grad_buf(c, x), y->grad, &r, n->rarg[0]);
    else sum_backward(grad_buf(c, x), y->grad, &r, n->rarg[0]);
}
static const OpInfo OP_REDUCE = {"reduce", t_reduce_backward};

/* sum (mean = 0) or mean (mean = 1) over the axes in the mask. Accumulates in double so that means over
 * millions of float elements stay accurate. */
static Tensor *reduce(Ctx *c, Tensor *x, unsigned axes, int keepdim, int mean) {
    axes &= (1u << x->ndim) - 1u;
    int ndim, shape[I2V_MAXDIM];
    ReducePlan r = reduction_plan(x, axes, &ndim, shape, keepdim);
    Tensor *y = tensor_new(c, ndim, shape);
    real scale = mean ? (real)(1.0 / (double)(r.count ? r.count : 1)) : 1;
    if (!c->dry && on_gpu(c)) sum_forward_cuda(y->data, NULL, x->data, &r, scale);   /* no host accumulators */
    else if (!c->dry) sum_forward(y->data, ctx_scratch(c, r.nout * sizeof(double)), x->data, &r, scale);
    Node *n = record(c, &OP_REDUCE, y, 1, &x);
    if (n) {
        n->iarg[0] = (int)axes;
        n->rarg[0] = scale;
    }
    return y;
}

Tensor *t_sum(Ctx *c, Tensor *x, unsigned axes, int keepdim) { return reduce(c, x, axes, keepdim, 0); }
Tensor *t_mean(Ctx *c, Tensor *x, unsigned axes, int keepdim) { return reduce(c, x, axes, keepdim, 1); }
Tensor *t_sum_all(Ctx *c, Tensor *x) { return reduce(c, x, AXES_ALL, 0, 0); }
Tensor *t_mean_all(Ctx *c, Tensor *x) { return reduce(c, x, AXES_ALL, 0, 1); }

/* Sizes of the axes before, at and after `axis`: x is (outer, n, inner). */
static void split_axis(const Tensor *x, int axis, size_t *outer, int *n, size_t *inner) {
    I2V_ASSERT(axis >= 0 && axis < x->ndim, "axis %d of a %d-D tensor", axis, x->ndim);
    *outer = 1;
    *inner = 1;
    for (int i = 0; i < axis; i++) *outer *= (size_t)x->shape[i];
    for (int i = axis + 1; i < x->ndim; i++) *inner *= (size_t)x->shape[i];
    *n = x->shape[axis];
}

/* softmax: y = exp(x - max) / sum; backward dx = y * (dy - sum(dy * y)) along the axis */
static void t_softmax_backward(Ctx *c, Node *n) {
    Tensor *x = n->in[0], *y = n->out;
    size_t outer, inner;
    int len;
    split_axis(x, n->iarg[0], &outer, &len, &inner);
    if (on_gpu(c)) softmax_backward_cuda(grad_buf(c, x), y->grad, y->data, outer, len, inner);
    else softmax_backward(grad_buf(c, x), y->grad, y->data, outer, len, inner);
}
static const OpInfo OP_SOFTMAX = {"softmax", t_softmax_backward};

Tensor *t_softmax(Ctx *c, Tensor *x, int axis) {
    size_t outer, inner;
    int len;
    split_axis(x, axis, &outer, &len, &inner);
    Tensor *y = tensor_new_like(c, x);
    if (!c->dry && on_gpu(c)) softmax_forward_cuda(y->data, x->data, outer, len, inner);
    else if (!c->dry) softmax_forward(y->data, x->data, outer, len, inner);
    Node *n = record(c, &OP_SOFTMAX, y, 1, &x);
    if (n) n->iarg[0] = axis;
    return y;
}

/* Not recorded: a count has no gradient (see tensor.h). */
Tensor *t_count_negative(Ctx *c, Tensor *x, double weight) {
    I2V_ASSERT(x->ndim >= 1 && x->shape[0] > 0, "count_negative: needs (N, ...)");
    Tensor *y = tensor_new(c, 1, DIMS(x->shape[0]));
    size_t len = x->numel / (size_t)x->shape[0];
    if (!c->dry && on_gpu(c)) count_negative_forward_cuda(y->data, x->data, x->shape[0], len, weight);
    else if (!c->dry) count_negative_forward(y->data, x->data, x->shape[0], len, weight);
    return y;
}

/* ==================================================================================================== */
/* shape ops                                                                                             */
/* ==================================================================================================== */

/* reshape shares x's data (ops never write their inputs); its gradient is dy with x's shape */
static void t_reshape_backward(Ctx *c, Node *n) {
    Tensor *x = n->in[0];
    if (on_gpu(c)) reshape_backward_cuda(grad_buf(c, x), n->out->grad, x->numel);
    else reshape_backward(grad_buf(c, x), n->out->grad, x->numel);
}
static const OpInfo OP_RESHAPE = {"reshape", t_reshape_backward};

Tensor *t_reshape(Ctx *c, Tensor *x, int ndim, const int *shape) {
    int s[I2V_MAXDIM], infer = -1;
    size_t known = 1;
    I2V_ASSERT(ndim >= 0 && ndim <= I2V_MAXDIM, "reshape to %d dimensions", ndim);
    for (int i = 0; i < ndim; i++) {
        s[i] = shape[i];
        if (s[i] == -1) {
            I2V_ASSERT(infer < 0, "reshape: more than one -1");
            infer = i;
        } else known *= (size_t)s[i];
    }
    if (infer >= 0) {
        I2V_ASSERT(known > 0 && x->numel % known == 0, "reshape: cannot infer an axis for %zu elements", x->numel);
        s[infer] = (int)(x->numel / known);
        known *= (size_t)s[infer];
    }
    I2V_ASSERT(known == x->numel, "reshape of %zu elements to a shape of %zu", x->numel, known);
    Tensor *y = arena_alloc(&c->arena, sizeof *y);
    header_init(y, ndim, s);
    y->device = x->device;
    y->data = x->data;
    record(c, &OP_RESHAPE, y, 1, &x);
    return y;
}

/* permute: output index (j0..j4) reads x at sum_k j_k xs[perm[k]]; the kernel's plan pads the output to
 * 5 axes of size 1 in front. */
static PermutePlan permute_plan(const Tensor *x, const int *perm) {
    size_t xs[I2V_MAXDIM], stride = 1;
    for (int i = x->ndim - 1; i >= 0; i--) {
        xs[i] = stride;
        stride *= (size_t)x->shape[i];
    }
    PermutePlan p;
    int off = I2V_MAXDIM - x->ndim;
    for (int i = 0; i < I2V_MAXDIM; i++) {
        p.shape[i] = i < off ? 1 : x->shape[perm[i - off]];
        p.st[i] = i < off ? 0 : xs[perm[i - off]];
    }
    return p;
}

static void t_permute_backward(Ctx *c, Node *n) {
    PermutePlan p = permute_plan(n->in[0], n->iarg);
    if (on_gpu(c)) permute_backward_cuda(grad_buf(c, n->in[0]), n->out->grad, &p);
    else permute_backward(grad_buf(c, n->in[0]), n->out->grad, &p);
}
static const OpInfo OP_PERMUTE = {"permute", t_permute_backward};

Tensor *t_permute(Ctx *c, Tensor *x, const int *perm) {
    int shape[I2V_MAXDIM], seen[I2V_MAXDIM] = {0};
    for (int k = 0; k < x->ndim; k++) {
        I2V_ASSERT(perm[k] >= 0 && perm[k] < x->ndim && !seen[perm[k]], "permute: not a permutation of %d axes",
                   x->ndim);
        seen[perm[k]] = 1;
        shape[k] = x->shape[perm[k]];
    }
    Tensor *y = tensor_new(c, x->ndim, shape);
    if (!c->dry) {
        PermutePlan p = permute_plan(x, perm);
        if (on_gpu(c)) permute_forward_cuda(y->data, x->data, &p);
        else permute_forward(y->data, x->data, &p);
    }
    Node *n = record(c, &OP_PERMUTE, y, 1, &x);
    if (n)
        for (int k = 0; k < x->ndim; k++) n->iarg[k] = perm[k];
    return y;
}

Tensor *t_transpose(Ctx *c, Tensor *x, int a, int b) {
    int perm[I2V_MAXDIM];
    for (int k = 0; k < x->ndim; k++) perm[k] = k;
    perm[a] = b;
    perm[b] = a;
    return t_permute(c, x, perm);
}

/* concat: each input is (outer, n_i, inner); the output (outer, sum n_i, inner) */
static void t_concat_backward(Ctx *c, Node *n) {
    int axis = n->iarg[0];
    size_t outer, inner;
    int total;
    split_axis(n->out, axis, &outer, &total, &inner);
    size_t start = 0;
    for (int k = 0; k < n->nin; k++) {
        Tensor *x = n->in[k];
        size_t len = (size_t)x->shape[axis] * inner;
        if (needs_grad(c, x) && on_gpu(c))
            concat_backward_cuda(grad_buf(c, x), n->out->grad, outer, (size_t)total * inner, start, len);
        else if (needs_grad(c, x))
            concat_backward(grad_buf(c, x), n->out->grad, outer, (size_t)total * inner, start, len);
        start += len;
    }
}
static const OpInfo OP_CONCAT = {"concat", t_concat_backward};

Tensor *t_concat(Ctx *c, int nx, Tensor *const *xs, int axis) {
    I2V_ASSERT(nx >= 1 && nx <= NODE_MAXIN, "concat of %d tensors (1 to %d)", nx, NODE_MAXIN);
    int shape[I2V_MAXDIM];
    memcpy(shape, xs[0]->shape, sizeof shape);
    shape[axis] = 0;
    for (int k = 0; k < nx; k++) {
        I2V_ASSERT(xs[k]->ndim == xs[0]->ndim, "concat: %d-D and %d-D tensors", xs[k]->ndim, xs[0]->ndim);
        for (int i = 0; i < xs[0]->ndim; i++)
            I2V_ASSERT(i == axis || xs[k]->shape[i] == xs[0]->shape[i], "concat: axis %d differs (%d vs %d)", i,
                       xs[k]->shape[i], xs[0]->shape[i]);
        shape[axis] += xs[k]->shape[axis];
    }
    Tensor *y = tensor_new(c, xs[0]->ndim, shape);
    size_t outer, inner;
    int total;
    split_axis(y, axis, &outer, &total, &inner);
    if (!c->dry) {
        size_t start = 0;
        for (int k = 0; k < nx; k++) {
            size_t len = (size_t)xs[k]->shape[axis] * inner;
            if (on_gpu(c)) concat_forward_cuda(y->data, xs[k]->data, outer, (size_t)total * inner, start, len);
            else concat_forward(y->data, xs[k]->data, outer, (size_t)total * inner, start, len);
            start += len;
        }
    }
    Node *n = record(c, &OP_CONCAT, y, nx, xs);
    if (n) n->iarg[0] = axis;
    return y;
}

static void t_slice_backward(Ctx *c, Node *n) {
    Tensor *x = n->in[0], *y = n->out;
    int axis = n->iarg[0], start = n->iarg[1], len = y->shape[axis];
    size_t outer, inner;
    int total;
    split_axis(x, axis, &outer, &total, &inner);
    if (on_gpu(c)) slice_backward_cuda(grad_buf(c, x), y->grad, outer, total, start, len, inner);
    else slice_backward(grad_buf(c, x), y->grad, outer, total, start, len, inner);
}
static const OpInfo OP_SLICE = {"slice", t_slice_backward};

Tensor *t_slice(Ctx *c, Tensor *x, int axis, int start, int len) {
    size_t outer, inner;
    int total;
    split_axis(x, axis, &outer, &total, &inner);
    I2V_ASSERT(start >= 0 && len >= 0 && start + len <= total, "slice [%d, %d) of an axis of %d", start, start + len,
               total);
    int shape[I2V_MAXDIM];
    memcpy(shape, x->shape, sizeof shape);
    shape[axis] = len;
    Tensor *y = tensor_new(c, x->ndim, shape);
    if (!c->dry && on_gpu(c)) slice_forward_cuda(y->data, x->data, outer, total, start, len, inner);
    else if (!c->dry) slice_forward(y->data, x->data, outer, total, start, len, inner);
    Node *n = record(c, &OP_SLICE, y, 1, &x);
    if (n) {
        n->iarg[0] = axis;
        n->iarg[1] = start;
    }
    return y;
}

void t_split(Ctx *c, Tensor *x, int axis, int n, const int *sizes, Tensor **out) {
    int start = 0;
    for (int k = 0; k < n; k++) {
        out[k] = t_slice(c, x, axis, start, sizes[k]);
        start += sizes[k];
    }
    I2V_ASSERT(start == x->shape[axis], "split sizes add up to %d, the axis has %d", start, x->shape[axis]);
}

static void t_index_select_backward(Ctx *c, Node *n) {
    Tensor *x = n->in[0], *y = n->out;
    int axis = n->iarg[0], len = y->shape[axis];
    const int64_t *idx = n->saved;
    size_t outer, inner;
    int total;
    split_axis(x, axis, &outer, &total, &inner);
    if (on_gpu(c)) index_select_backward_cuda(grad_buf(c, x), y->grad, idx, len, outer, total, inner);
    else index_select_backward(grad_buf(c, x), y->grad, idx, len, outer, total, inner);
}
static const OpInfo OP_INDEX_SELECT = {"index_select", t_index_select_backward};

Tensor *t_index_select(Ctx *c, Tensor *x, int axis, int nidx, const int64_t *idx) {
    size_t outer, inner;
    int total;
    split_axis(x, axis, &outer, &total, &inner);
    for (int j = 0; j < nidx; j++)
        I2V_ASSERT(idx[j] >= 0 && idx[j] < total, "index_select: index %lld outside [0, %d)", (long long)idx[j], total);
    int shape[I2V_MAXDIM];
    memcpy(shape, x->shape, sizeof shape);
    shape[axis] = nidx;
    Tensor *y = tensor_new(c, x->ndim, shape);
    int64_t *didx = NULL;   /* on the GPU the kernels read the indices from device memory */
    if (on_gpu(c) && (didx = arena_data(c, (size_t)nidx * sizeof *didx)))
        ctx_memcpy(c, didx, idx, (size_t)nidx * sizeof *didx);
    if (!c->dry && on_gpu(c)) index_select_forward_cuda(y->data, x->data, didx, nidx, outer, total, inner);
    else if (!c->dry) index_select_forward(y->data, x->data, idx, nidx, outer, total, inner);
    Node *n = record(c, &OP_INDEX_SELECT, y, 1, &x);
    if (n) {
        int64_t *copy = didx;
        if (!on_gpu(c)) {
            copy = arena_alloc(&c->arena, (size_t)nidx * sizeof *copy);
            memcpy(copy, idx, (size_t)nidx * sizeof *copy);
        }
        n->iarg[0] = axis;
        n->saved = copy;
    }
    return y;
}

/* ==================================================================================================== */
/* linear algebra                                                                                        */
/* ==================================================================================================== */

/* dW = dy^T x (dout x din) in blocks of rows, each updated by the optimiser right after its GEMM while it
 * is still in cache (backward_update). The blocks go to the threads; each GEMM runs on its own thread. */
enum { UPDATE_BLOCK_ROWS = 20 };   /* 20 rows of 512 floats: 40 KB of gradient, still in cache for the update */
typedef struct WeightGradUpdate {
    const ParamUpdate *update;
    Tensor *w;
    const real *dy, *x;
    int m;
    real beta;
    real *dw;
} WeightGradUpdate;

static void weight_grad_update_block(void *arg, int i, int thread) {
    (void)thread;
    const WeightGradUpdate *u = arg;
    int dout = u->w->shape[0], din = u->w->shape[1];
    int o0 = i * UPDATE_BLOCK_ROWS, rows = dout - o0 < UPDATE_BLOCK_ROWS ? dout - o0 : UPDATE_BLOCK_ROWS;
    size_t off = (size_t)o0 * din;
    gemm(1, 0, rows, din, u->m, 1, u->dy + o0, dout, u->x, din, u->beta, u->dw + off, din);
    u->update->apply(u->update->opt, u->w, off, (size_t)rows * din);
}

static void weight_grad_update(Ctx *c, Tensor *w, const real *dy, const real *x, int m, real beta, real *dw) {
    WeightGradUpdate u = {c->update, w, dy, x, m, beta, dw};
    parallel_for((w->shape[0] + UPDATE_BLOCK_ROWS - 1) / UPDATE_BLOCK_ROWS, weight_grad_update_block, &u);
    w->update_pass = c->pass;
}

/* linear: x (M, Din) as rows, y = x W^T + b. Backward: dx += dy W, dW += dy^T x, db += column sums of dy. */
static void t_linear_backward(Ctx *c, Node *n) {
    Tensor *x = n->in[0], *w = n->in[1], *b = n->in[2], *y = n->out;
    int dout = w->shape[0], din = w->shape[1];
    int m = (int)(x->numel / (size_t)din);
    if (on_gpu(c)) {   /* backward_update does not reach here: on the GPU the optimiser runs after backward */
        real beta = 1, *dw = needs_grad(c, w) ? grad_buf_beta(c, w, &beta) : NULL;
        linear_backward_cuda(needs_grad(c, x) ? grad_buf(c, x) : NULL, dw, needs_grad(c, b) ? grad_buf(c, b) : NULL,
                             y->grad, x->data, w->data, m, din, dout, beta);
        return;
    }
    /* dx first: in backward_update the weight's gradient may update W as soon as it is made */
    if (needs_grad(c, x)) linear_backward(grad_buf(c, x), NULL, NULL, y->grad, x->data, w->data, m, din, dout, 1);
    if (needs_grad(c, w)) {
        real beta, *dw = grad_buf_beta(c, w, &beta);
        if (last_use(c, w)) weight_grad_update(c, w, y->grad, x->data, m, beta, dw);
        else linear_backward(NULL, dw, NULL, y->grad, x->data, w->data, m, din, dout, beta);
    }
    if (needs_grad(c, b)) linear_backward(NULL, NULL, grad_buf(c, b), y->grad, x->data, w->data, m, din, dout, 1);
}
static const OpInfo OP_LINEAR = {"linear", t_linear_backward};

Tensor *t_linear(Ctx *c, Tensor *x, Tensor *w, Tensor *b) {
    I2V_ASSERT(w->ndim == 2 && x->ndim >= 1, "linear: weight must be (Dout, Din)");
    int dout = w->shape[0], din = w->shape[1];
    I2V_ASSERT(x->shape[x->ndim - 1] == din, "linear: input has %d features, weight expects %d",
               x->shape[x->ndim - 1], din);
    I2V_ASSERT(!b || (b->ndim == 1 && b->shape[0] == dout), "linear: bias must be (%d)", dout);
    int shape[I2V_MAXDIM];
    memcpy(shape, x->shape, sizeof shape);
    shape[x->ndim - 1] = dout;
    Tensor *y = tensor_new(c, x->ndim, shape);
    int m = (int)(x->numel / (size_t)din);
    if (!c->dry && on_gpu(c)) linear_forward_cuda(y->data, x->data, w->data, b ? b->data : NULL, m, din, dout);
    else if (!c->dry) linear_forward(y->data, x->data, w->data, b ? b->data : NULL, m, din, dout);
    Tensor *in[3] = {x, w, b};
    record(c, &OP_LINEAR, y, 3, in);
    return y;
}

/* bmm: per batch y_b = op(a_b) op(b_b). With y = A B: dA = dy B^T, dB = A^T dy (transposed as stored). */
static void t_bmm_backward(Ctx *c, Node *n) {
    Tensor *a = n->in[0], *b = n->in[1], *y = n->out;
    int ta = n->iarg[0], tb = n->iarg[1];
    int k = ta ? a->shape[1] : a->shape[2];
    real *da = needs_grad(c, a) ? grad_buf(c, a) : NULL, *db = needs_grad(c, b) ? grad_buf(c, b) : NULL;
    if (on_gpu(c))
        bmm_backward_cuda(da, db, y->grad, a->data, b->data, y->shape[0], y->shape[1], y->shape[2], k, ta, tb);
    else bmm_backward(da, db, y->grad, a->data, b->data, y->shape[0], y->shape[1], y->shape[2], k, ta, tb);
}
static const OpInfo OP_BMM = {"bmm", t_bmm_backward};

Tensor *t_bmm(Ctx *c, Tensor *a, Tensor *b, int ta, int tb) {
    I2V_ASSERT(a->ndim == 3 && b->ndim == 3 && a->shape[0] == b->shape[0], "bmm: needs (B, ., .) tensors with equal B");
    int m = ta ? a->shape[2] : a->shape[1], k = ta ? a->shape[1] : a->shape[2];
    int kb = tb ? b->shape[2] : b->shape[1], nn = tb ? b->shape[1] : b->shape[2];
    I2V_ASSERT(k == kb, "bmm: inner sizes %d and %d differ", k, kb);
    Tensor *y = tensor_new(c, 3, DIMS(a->shape[0], m, nn));
    if (!c->dry && on_gpu(c)) bmm_forward_cuda(y->data, a->data, b->data, a->shape[0], m, nn, k, ta, tb);
    else if (!c->dry) bmm_forward(y->data, a->data, b->data, a->shape[0], m, nn, k, ta, tb);
    Tensor *in[2] = {a, b};
    Node *n = record(c, &OP_BMM, y, 2, in);
    if (n) {
        n->iarg[0] = ta;
        n->iarg[1] = tb;
    }
    return y;
}

/* ==================================================================================================== */
/* losses                                                                                                */
/* ==================================================================================================== */

/* The elementwise losses share one op: loss = scale * sum_i f(a_i, b_i), with f chosen by kind
 * (kernels/formulas.h, enum LossKind). */
static const char *const loss_names[] = {"l1_loss", "mse_loss", "hinge_d_real", "hinge_d_fake", "hinge_g"};

static void t_loss_backward(Ctx *c, Node *n) {
    Tensor *a = n->in[0], *b = n->in[1];
    real *da = needs_grad(c, a) ? grad_buf(c, a) : NULL, *db = needs_grad(c, b) ? grad_buf(c, b) : NULL;
    if (on_gpu(c))
        loss_backward_cuda(da, db, n->out->grad, a->data, b ? b->data : NULL, a->numel, n->iarg[0], n->rarg[0]);
    else loss_backward(da, db, n->out->grad, a->data, b ? b->data : NULL, a->numel, n->iarg[0], n->rarg[0]);
}
static const OpInfo OP_LOSS = {"loss", t_loss_backward};

static Tensor *elementwise_loss(Ctx *c, Tensor *a, Tensor *b, int kind) {
    I2V_ASSERT(!b || a->numel == b->numel, "%s: %zu vs %zu elements", loss_names[kind], a->numel, b->numel);
    Tensor *y = tensor_new(c, 0, NULL);
    real scale = (real)(1.0 / (double)(a->numel ? a->numel : 1));
    if (!c->dry && on_gpu(c)) loss_forward_cuda(y->data, a->data, b ? b->data : NULL, a->numel, kind, scale);
    else if (!c->dry) loss_forward(y->data, a->data, b ? b->data : NULL, a->numel, kind, scale);
    Tensor *in[2] = {a, b};
    Node *n = record(c, &OP_LOSS, y, 2, in);
    if (n) {
        n->iarg[0] = kind;
        n->rarg[0] = scale;
    }
    return y;
}

Tensor *t_l1_loss(Ctx *c, Tensor *a, Tensor *b) { return elementwise_loss(c, a, b, LOSS_L1); }
Tensor *t_mse_loss(Ctx *c, Tensor *a, Tensor *b) { return elementwise_loss(c, a, b, LOSS_MSE); }
Tensor *t_hinge_d_real(Ctx *c, Tensor *logits) { return elementwise_loss(c, logits, NULL, LOSS_HINGE_REAL); }
Tensor *t_hinge_d_fake(Ctx *c, Tensor *logits) { return elementwise_loss(c, logits, NULL, LOSS_HINGE_FAKE); }
Tensor *t_hinge_g(Ctx *c, Tensor *logits) { return elementwise_loss(c, logits, NULL, LOSS_HINGE_G); }

/* KL(N(mu, e^lv) || N(0, 1)) summed over features, averaged over the batch (the first axis):
 * stage1_VAE/modules/loss.py. d/dmu = mu / N, d/dlv = -0.5 (1 - e^lv) / N. */
static void t_kl_normal_backward(Ctx *c, Node *n) {
    Tensor *mu = n->in[0], *lv = n->in[1];
    real *dmu = needs_grad(c, mu) ? grad_buf(c, mu) : NULL, *dlv = needs_grad(c, lv) ? grad_buf(c, lv) : NULL;
    if (on_gpu(c)) kl_normal_backward_cuda(dmu, dlv, n->out->grad, mu->data, lv->data, mu->numel, n->rarg[0]);
    else kl_normal_backward(dmu, dlv, n->out->grad, mu->data, lv->data, mu->numel, n->rarg[0]);
}
static const OpInfo OP_KL = {"kl_normal", t_kl_normal_backward};

Tensor *t_kl_normal(Ctx *c, Tensor *mu, Tensor *logvar) {
    I2V_ASSERT(shape_equal(mu, logvar) && mu->ndim >= 1, "kl_normal: mu and logvar must have one shape (N, ...)");
    Tensor *y = tensor_new(c, 0, NULL);
    real inv_n = (real)(1.0 / mu->shape[0]);
    if (!c->dry && on_gpu(c)) kl_normal_forward_cuda(y->data, mu->data, logvar->data, mu->numel, inv_n);
    else if (!c->dry) kl_normal_forward(y->data, mu->data, logvar->data, mu->numel, inv_n);
    Tensor *in[2] = {mu, logvar};
    Node *n = record(c, &OP_KL, y, 2, in);
    if (n) n->rarg[0] = inv_n;
    return y;
}

/* 0.5 sum_d x^2 per sample (stage2_cINN/modules/loss.py, without the constant): d/dx = x */
static void t_gaussian_nll_backward(Ctx *c, Node *n) {
    Tensor *x = n->in[0];
    size_t D = x->numel / (size_t)x->shape[0];
    if (on_gpu(c)) gaussian_nll_backward_cuda(grad_buf(c, x), n->out->grad, x->data, x->shape[0], D);
    else gaussian_nll_backward(grad_buf(c, x), n->out->grad, x->data, x->shape[0], D);
}
static const OpInfo OP_GAUSSIAN_NLL = {"gaussian_nll", t_gaussian_nll_backward};

Tensor *t_gaussian_nll(Ctx *c, Tensor *x) {
    I2V_ASSERT(x->ndim >= 1 && x->shape[0] > 0, "gaussian_nll: needs (N, ...)");
    Tensor *y = tensor_new(c, 1, DIMS(x->shape[0]));
    size_t D = x->numel / (size_t)x->shape[0];
    if (!c->dry && on_gpu(c)) gaussian_nll_forward_cuda(y->data, x->data, x->shape[0], D);
    else if (!c->dry) gaussian_nll_forward(y->data, x->data, x->shape[0], D);
    record(c, &OP_GAUSSIAN_NLL, y, 1, &x);
    return y;
}

/* ==================================================================================================== */
/* tangents (forward-mode derivatives) for the gradient penalty                                          */
/* ==================================================================================================== */

/* The tangent of an activation: y = f'(x) * dx. Both x and dx are differentiable inputs:
 * d/d dx = f'(x), d/dx = dx * f''(x) (zero for the piecewise-linear relu and leaky relu). */
static void t_unary_jvp_backward(Ctx *c, Node *n) {
    Tensor *x = n->in[0], *dx = n->in[1], *y = n->out;
    real *gx = needs_grad(c, x) ? grad_buf(c, x) : NULL, *gdx = needs_grad(c, dx) ? grad_buf(c, dx) : NULL;
    if (on_gpu(c)) unary_jvp_backward_cuda(gx, gdx, y->grad, x->data, dx->data, x->numel, n->iarg[0], n->rarg[0]);
    else unary_jvp_backward(gx, gdx, y->grad, x->data, dx->data, x->numel, n->iarg[0], n->rarg[0]);
}
static const OpInfo OP_UNARY_JVP = {"unary_jvp", t_unary_jvp_backward};

static Tensor *unary_jvp(Ctx *c, Tensor *x, Tensor *dx, int kind, real slope) {
    I2V_ASSERT(shape_equal(x, dx), "%s tangent: x and dx differ in shape", unary_names[kind]);
    Tensor *y = tensor_new_like(c, x);
    if (!c->dry && on_gpu(c)) unary_jvp_forward_cuda(y->data, x->data, dx->data, x->numel, kind, slope);
    else if (!c->dry) unary_jvp_forward(y->data, x->data, dx->data, x->numel, kind, slope);
    Tensor *in[2] = {x, dx};
    Node *n = record(c, &OP_UNARY_JVP, y, 2, in);
    if (n) {
        n->iarg[0] = kind;
        n->rarg[0] = slope;
    }
    return y;
}

Tensor *t_relu_jvp(Ctx *c, Tensor *x, Tensor *dx) { return unary_jvp(c, x, dx, UNARY_RELU, 0); }
Tensor *t_leaky_relu_jvp(Ctx *c, Tensor *x, Tensor *dx, real slope) {
    return unary_jvp(c, x, dx, UNARY_LEAKY_RELU, slope);
}
Tensor *t_tanh_jvp(Ctx *c, Tensor *x, Tensor *dx) { return unary_jvp(c, x, dx, UNARY_TANH, 0); }
Tensor *t_sigmoid_jvp(Ctx *c, Tensor *x, Tensor *dx) { return unary_jvp(c, x, dx, UNARY_SIGMOID, 0); }
