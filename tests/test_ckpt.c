/* test_ckpt.c: a training run stopped at a checkpoint and resumed in fresh objects continues with
 * bitwise the same losses as the uninterrupted run (weights, Adam/AMSGrad moments, grad-seen flags,
 * schedulers and RNG streams all restored); a damaged checkpoint is detected. */
#include <unistd.h>

#include "check.h"
#include "program/ckpt.h"
#include "flow.h"

static const FlowConfig small = {.z_dim = 4, .embed_dim = 2, .hidden = 16, .depth = 1, .n_flows = 3};

typedef struct Run {
    Flow f;
    Adam opt;
    StepLR sched;
    ReduceLROnPlateau plateau;
    Rng data;
} Run;

static void run_init(Run *r) {
    Rng init;
    rng_seed(&init, 99);
    flow_build(&r->f, &small, &init);
    adam_init(&r->opt, 1e-3, 0.9, 0.99, 1e-8, 1e-4, 1);
    adam_add_params(&r->opt, &r->f.ps);
    steplr_init(&r->sched, 3, 0.5);
    plateau_init(&r->plateau, 0, 0.5, 0, 1e-4, 1, 0, 1e-8);
    rng_seed(&r->data, 5);
}

static void run_free(Run *r) {
    adam_free(&r->opt);
    flow_free(&r->f);
}

/* one "epoch" of 4 steps on data drawn from the run's own RNG stream */
static void run_epoch(Run *r, Ctx *c, double *losses) {
    real z[8 * 4], e[8 * 2];
    for (int s = 0; s < 4; s++) {
        for (int i = 0; i < 32; i++) z[i] = (real)(rng_normal(&r->data) * 2 + 1);
        for (int i = 0; i < 16; i++) e[i] = (real)rng_normal(&r->data);
        FlowStepStats st;
        flow_train_step(c, &r->f, &r->opt, z, e, 8, &st);
        losses[s] = st.loss;
    }
    steplr_step(&r->sched, &r->opt);
    plateau_step(&r->plateau, &r->opt, losses[3]);
}

static int save(Run *r, const char *path, I2vError *e) {
    StWriter w;
    st_writer_init(&w);
    st_writer_add_paramset(&w, &r->f.ps, "flow.");
    const char *prefixes[1] = {"flow."};
    ckpt_add_adam(&w, "flow", &r->opt, prefixes);
    ckpt_add_steplr(&w, "step", &r->sched);
    ckpt_add_plateau(&w, "plateau", &r->plateau);
    ckpt_add_rng(&w, "data", &r->data);
    int rc = st_writer_save(&w, path, e);
    st_writer_free(&w);
    return rc;
}

static int load(Run *r, const char *path, I2vError *e) {
    StFile f;
    if (st_open(&f, path, e)) return -1;
    StLoadOpts o = {"flow.", 1, 1};
    const char *prefixes[1] = {"flow."};
    int rc = st_load_paramset(&f, &r->f.ps, &o, e) < 0 || ckpt_load_adam(&f, "flow", &r->opt, prefixes, e) ||
             ckpt_load_steplr(&f, "step", &r->sched, e) || ckpt_load_plateau(&f, "plateau", &r->plateau, e) ||
             ckpt_load_rng(&f, "data", &r->data, e);
    st_close(&f);
    return rc ? -1 : 0;
}

int main(void) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/i2v_test_ckpt_%d.safetensors", (int)getpid());
    Ctx c;
    ctx_init(&c);
    I2vError e;
    /* uninterrupted: 6 epochs */
    Run a;
    run_init(&a);
    double la[6][4], lb[6][4];
    for (int ep = 0; ep < 6; ep++) {
        run_epoch(&a, &c, la[ep]);
        if (ep == 2) check(!save(&a, path, &e), "save after epoch 3: %s", e.msg);
    }
    /* resumed: fresh objects (different initial weights would be drawn), load, continue epochs 4-6 */
    Run b;
    run_init(&b);
    rng_seed(&b.data, 12345);
    check(!load(&b, path, &e), "load: %s", e.msg);
    for (int ep = 3; ep < 6; ep++) run_epoch(&b, &c, lb[ep]);
    /* Checkpoints store float32 (as PyTorch's do), so the resume is exact in the float build; the double
     * build (used for gradient checks) rounds the weights to float when saving. */
    int same = 1;
    for (int ep = 3; ep < 6; ep++)
        for (int s = 0; s < 4; s++)
            same &= is_double_build() ? close_enough(la[ep][s], lb[ep][s], 1e-6, 1e-6)
                                      : !memcmp(&la[ep][s], &lb[ep][s], sizeof(double));
    check(same, "the resumed run's losses are bitwise those of the uninterrupted run (%.9g vs %.9g)", la[5][3], lb[5][3]);
    check(a.opt.lr == b.opt.lr && a.opt.step == b.opt.step, "learning rate and step count restored (%g, %lld)", b.opt.lr,
          (long long)b.opt.step);
    if (!is_double_build())
        check(!memcmp(a.f.ps.values, b.f.ps.values, a.f.ps.nvalues * sizeof(real)), "final weights identical");
    /* a truncated checkpoint (a simulated crash while copying) is detected, and nothing is loaded */
    FILE *fp = fopen(path, "r+b");
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    fclose(fp);
    check(truncate(path, size / 2) == 0, "truncate the file");
    Run d;
    run_init(&d);
    real before = d.f.ps.values[0];
    check(load(&d, path, &e) != 0 && strstr(e.msg, path), "a truncated checkpoint is reported: %s", e.msg);
    check(d.f.ps.values[0] == before, "and the model is left untouched");
    unlink(path);
    run_free(&a);
    run_free(&b);
    run_free(&d);
    ctx_free(&c);
    return check_summary("test_ckpt");
}
