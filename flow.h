/* flow.h: the conditional invertible network (cINN) of stage 2, the heart of the paper.
 *
 * It maps a video latent z (N, D) to a residual nu (N, D) that is standard normal, conditioned on an
 * embedding c (N, E) of the start frame (plus, in control mode, a one-hot of the BAIR end point):
 *     nu = f(z; c),  log p(z | c) = log N(nu; 0, I) + log |det df/dz|            (paper, Eq. 2-3)
 * and it is inverted exactly to sample: z = f^-1(nu; c), nu ~ N(0, I).
 *
 * It mirrors stage2_cINN/modules/flow_blocks.py (ConditionalFlow) block by block, with the official
 * parameter names, so a converted cINN.pth loads. Every invertible piece follows FrEIA's contract:
 *     forward(x, c) -> (y, logdet)      inverse(y, c) -> (x, logdet_inverse),  logdet_inverse = -logdet
 * with logdet per sample, shape (N). Dimension legend: N batch, D = z_dim (64), E condition width. */
#ifndef I2V_FLOW_H
#define I2V_FLOW_H

#include "ops/optim.h"
#include "tensor.h"

typedef struct FlowConfig {
    int z_dim;           /* D: in_channels of the flow, the stage-1 latent size (64) */
    int embed_dim;       /* E: condition width before control (conditioning-AE z_dim: 64 BAIR, 128 others) */
    int hidden;          /* width of the coupling MLPs: 8 * 64 = 512 */
    int depth;           /* hidden_depth: extra hidden layers of each MLP (2) */
    int n_flows;         /* blocks (20) */
    int control;         /* 1: the condition is [e, one-hot end point (30)], blocks i % 4 != 0 are 'cond' */
    int official_logdet; /* 1: drop the invertible leaky ReLU's log-det term as the official code does */
} FlowConfig;

#define FLOW_CONTROL_DIM 30   /* 3 coordinates x 10 bins (SupervisedTransformer.embed_pos) */

/* BasicFullyConnectedNet: Linear(in, H), LReLU(0.01), depth x [Linear(H, H), LReLU(0.01)], Linear(H, out);
 * state-dict names main.0, main.2, ..., main.<2 (depth + 1)>. */
#define FLOW_MLP_MAX 8
typedef struct FlowMlp {
    int nlin;
    Tensor *w[FLOW_MLP_MAX];   /* (out_k, in_k) */
    Tensor *b[FLOW_MLP_MAX];   /* (out_k) */
} FlowMlp;

/* ConditionalFlatDoubleCouplingFlowBlock: ActNorm -> InvLeakyReLU(0.9) -> double coupling -> shuffle. */
typedef struct FlowBlock {
    int cond_mode;             /* 'cond': the coupling MLPs see only the condition (an x-independent affine map) */
    Tensor *loc, *scale;       /* ActNorm, (1, D, 1, 1) as in the checkpoint */
    Tensor *initialized;       /* U8 (): ActNorm's data-dependent initialisation has run */
    FlowMlp s[2], t[2];        /* log-scale and shift nets of the two coupling steps */
    Tensor *perm, *perm_inv;   /* I64 (D): forward_shuffle_idx and its argsort, backward_shuffle_idx */
} FlowBlock;

typedef struct Flow {
    FlowConfig cfg;
    int cond_dim;              /* E + 30 in control mode, else E */
    ParamSet ps;               /* names as ConditionalFlow.state_dict(): sub_layers.<i>.... */
    FlowBlock *blocks;
} Flow;

/* The BAIR configuration (stage2_cINN/configs/bair_config.yaml). */
FlowConfig flow_config_bair(void);
/* Builds the flow with PyTorch's default initialisation and random shuffles drawn from rng. */
void flow_build(Flow *f, const FlowConfig *cfg, Rng *rng);
void flow_free(Flow *f);

/* The layers, each forward/inverse pair side by side. x, y: (N, D); c: (N, cond_dim); logdet: (N). */
Tensor *actnorm_forward(Ctx *ctx, FlowBlock *b, Tensor *x, Tensor **logdet);
Tensor *actnorm_inverse(Ctx *ctx, FlowBlock *b, Tensor *y, Tensor **logdet);
Tensor *invleaky_forward(Ctx *ctx, Tensor *x, int official, Tensor **logdet);
Tensor *invleaky_inverse(Ctx *ctx, Tensor *y, int official, Tensor **logdet);
Tensor *coupling_forward(Ctx *ctx, FlowBlock *b, Tensor *x, Tensor *c, Tensor **logdet);
Tensor *coupling_inverse(Ctx *ctx, FlowBlock *b, Tensor *y, Tensor *c, Tensor **logdet);
Tensor *shuffle_forward(Ctx *ctx, FlowBlock *b, Tensor *x, Tensor **logdet);
Tensor *shuffle_inverse(Ctx *ctx, FlowBlock *b, Tensor *y, Tensor **logdet);
Tensor *block_forward(Ctx *ctx, const Flow *f, FlowBlock *b, Tensor *x, Tensor *c, Tensor **logdet);
Tensor *block_inverse(Ctx *ctx, const Flow *f, FlowBlock *b, Tensor *y, Tensor *c, Tensor **logdet);

/* The whole flow: z (N, D) -> nu (N, D) with log|det J| (N), and back. */
Tensor *flow_forward(Ctx *ctx, Flow *f, Tensor *z, Tensor *c, Tensor **logdet);
Tensor *flow_inverse(Ctx *ctx, Flow *f, Tensor *nu, Tensor *c);

/* ActNorm's data-dependent initialisation, run by actnorm_forward on the first batch a block sees
 * (whatever the mode, as the official code): loc = -mean, scale = 1 / (std + 1e-6) per dimension over the
 * batch, std unbiased (ops/norm.h actnorm_init). Returns 0, or -1 if a dimension's std was at most 1e-6, so
 * that the guard rather than the data set its scale (a constant dimension gets 1e6, as PyTorch gives; the
 * caller may warn). */
int actnorm_initialize(FlowBlock *b, const Tensor *x);

/* Stage-2 objective (stage2_cINN/modules/loss.py): mean_n 0.5 |nu_n|^2 - mean_n logdet_n, a 0-D tensor.
 * It is the negative log-likelihood without its constant: everywhere i2v reports a likelihood,
 *     NLL = -log p(z | c) = loss + 0.5 D log(2 pi)   nats per sample,   bits/dim = NLL / (D log 2). */
Tensor *flow_loss(Ctx *ctx, Tensor *nu, Tensor *logdet);
double flow_nll(double loss, int z_dim);           /* NLL in nats, from the objective */
double flow_bits_per_dim(double loss, int z_dim);  /* NLL in bits per dimension, from the objective */

/* The control factor: 3 normalised end-point coordinates -> 30 one-hot values, bin = trunc(10 p - 1e-4).
 * Bins outside 0..9 are clamped (the official code would index bin -1 as the last bin, or fail above 9). */
void flow_embed_endpoint(const double p[3], real out[FLOW_CONTROL_DIM]);

/* One stage-2 training step on a batch from any source: z (n x D) and cond (n x cond_dim), row-major.
 * Forward, loss, backward, Adam; the context is reset afterwards. Fills the per-step figures. */
typedef struct FlowStepStats {
    double loss;         /* the objective above (nats per sample, without the constant) */
    double nll;          /* -log p(z | c): the objective with the constant, nats per sample */
    double logdet;       /* mean log|det J| */
    double bits_per_dim;
} FlowStepStats;
void flow_train_step(Ctx *ctx, Flow *f, Adam *opt, const real *z, const real *cond, int n, FlowStepStats *st);
/* The same figures without an update (validation). */
void flow_eval_batch(Ctx *ctx, Flow *f, const real *z, const real *cond, int n, FlowStepStats *st);

/* Sampling: nu = temperature * N(0, I) (or nu given, if nu_in is not NULL), z = f^-1(nu; c). Writes z (n x D). */
void flow_sample(Ctx *ctx, Flow *f, Rng *rng, double temperature, const real *nu_in, const real *cond, int n,
                 real *z_out);

#endif
