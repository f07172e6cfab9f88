/* model.c: loading a model folder and running its networks for inference (model.h), as get_model.py's
 * Model does: eval mode everywhere (spectral norm with the stored u and v), no gradients.
 * What it is not: training (run.c) or the command line (i2v.c). */
#include "program/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/files.h"
#include "formats/imageio.h"
#include "formats/gif.h"
#include "formats/image.h"
#include "formats/safetensors.h"

FlowConfig flow_config_of(const Stage2Config *s2, int z_dim, int embed_dim) {
    FlowConfig f;
    memset(&f, 0, sizeof f);
    f.z_dim = z_dim;
    f.embed_dim = embed_dim;
    f.hidden = s2->Flow.flow_mid_channels_factor * z_dim;   /* SupervisedTransformer: 8 * in_channels */
    f.depth = s2->Flow.flow_hidden_depth;
    f.n_flows = s2->Flow.n_flows;
    f.control = s2->Training.control;
    f.official_logdet = s2->Training.official_logdet;
    return f;
}

static int load_yaml(StageKind kind, const char *dir, const char *name, StageSetup *out, I2vError *e) {
    char path[DATA_PATH_MAX];
    uint8_t *bytes;
    size_t n;
    if (data_join(path, sizeof path, e, "%s/%s", dir, name) || read_file_bytes(path, &bytes, &n, e)) return -1;
    char *text = xmalloc(n + 1);
    memcpy(text, bytes, n);
    text[n] = 0;
    free(bytes);
    int rc = setup_from_yaml(kind, text, path, out, e);
    free(text);
    return rc;
}

static int load_set(const char *dir, const char *file, ParamSet *ps, const char *prefix, I2vError *e) {
    char path[DATA_PATH_MAX];
    if (data_join(path, sizeof path, e, "%s/%s", dir, file)) return -1;
    StLoadOpts o = {prefix, 1, 0};
    return st_load_paramset_file(path, ps, &o, e) < 0 ? -1 : 0;
}

int model_load(Model *m, const char *dir, int parts, const char *cinn_file, const char *cinn_config, I2vError *e) {
    memset(m, 0, sizeof *m);
    ctx_init(&m->ctx);
    m->ctx.grad_enabled = 0;
    m->ctx.training = 0;
    Rng init;   /* initial values are overwritten by the checkpoint; any stream will do */
    rng_seed(&init, 0);
    if (!cinn_file) cinn_file = CINN_FILE;
    if (!cinn_config) cinn_config = CINN_CONFIG;
    if (parts & (MODEL_GEN | MODEL_ENC | MODEL_FLOW)) {
        if (load_yaml(STAGE1, dir, STAGE1_CONFIG, &m->s1, e)) goto fail;
        m->size = m->s1.s1.Data.img_size;
        m->frames = decoder_frames(&m->s1.s1.Decoder);
        m->z_dim = m->s1.s1.Encoder.z_dim;
    }
    if (parts & MODEL_GEN) {
        generator_declare(&m->gen, &m->s1.s1.Decoder);
        generator_init(&m->gen, &init);
        m->has_gen = 1;
        if (load_set(dir, STAGE1_FILE, &m->gen.ps, "gen.", e)) goto fail;
    }
    if (parts & MODEL_ENC) {
        video_encoder_declare(&m->enc, &m->s1.s1.Encoder);
        video_encoder_init(&m->enc, &init);
        m->has_enc = 1;
        if (load_set(dir, STAGE1_FILE, &m->enc.ps, "enc.", e)) goto fail;
    }
    if (parts & (MODEL_COND | MODEL_FLOW)) {
        if (load_yaml(STAGE_AE, dir, COND_AE_CONFIG, &m->ae, e)) goto fail;
        m->embed_dim = m->ae.ae.AE.z_dim;
        cond_encoder_declare(&m->cond, &m->ae.ae.AE, NULL);
        cond_encoder_init(&m->cond, &init);
        m->has_cond = 1;
        if (load_set(dir, COND_AE_FILE, &m->cond.ps, "enc.", e)) goto fail;
        if (m->size && m->ae.ae.AE.in_size != m->size) {
            err_set(e, "%s: the conditioning AE works at %d px but stage 1 at %d px", dir, m->ae.ae.AE.in_size, m->size);
            goto fail;
        }
    }
    if (parts & MODEL_FLOW) {
        if (load_yaml(STAGE2, dir, cinn_config, &m->s2, e)) goto fail;
        FlowConfig fc = flow_config_of(&m->s2.s2, m->z_dim, m->embed_dim);
        flow_build(&m->flow, &fc, &init);
        m->has_flow = 1;
        if (load_set(dir, cinn_file, &m->flow.ps, "flow.", e)) goto fail;
    }
    return 0;
fail:
    model_free(m);
    return -1;
}

void model_free(Model *m) {
    if (m->has_gen) generator_free(&m->gen);
    if (m->has_enc) video_encoder_free(&m->enc);
    if (m->has_cond) cond_encoder_free(&m->cond);
    if (m->has_flow) flow_free(&m->flow);
    setup_free(&m->s1);
    setup_free(&m->ae);
    setup_free(&m->s2);
    ctx_free(&m->ctx);
    memset(m, 0, sizeof *m);
}

static Tensor *input(Ctx *c, const real *values, int ndim, const int *shape) {
    return tensor_from_host(c, ndim, shape, values);
}

/* Results are read on the host: first the device's queued work must be done (nothing to wait for on the CPU). */
static void output(Ctx *c, real *dst, const real *src, size_t count) {
    ctx_sync(c);
    memcpy(dst, src, count * sizeof(real));
}

void model_embed(Model *m, const real *x0, int n, real *out) {
    int S = m->ae.ae.AE.in_size;
    Tensor *e = cond_encoder_embed(&m->ctx, &m->cond, input(&m->ctx, x0, 4, DIMS(n, 3, S, S)));
    output(&m->ctx, out, e->data, (size_t)n * m->embed_dim);
    ctx_reset(&m->ctx);
}

void model_condition(Model *m, const real *x0, const double *control, int n, real *out) {
    int E = m->embed_dim, C = m->flow.cond_dim;
    real *e = xmalloc((size_t)n * E * sizeof(real));
    model_embed(m, x0, n, e);
    for (int i = 0; i < n; i++) {
        memcpy(out + (size_t)i * C, e + (size_t)i * E, (size_t)E * sizeof(real));
        if (m->flow.cfg.control) flow_embed_endpoint(control + 3 * i, out + (size_t)i * C + E);
    }
    free(e);
}

void model_encode(Model *m, const real *clips, int n, int T, Rng *rng, real *z) {
    int S = m->size;
    /* (n, T, 3, S, S) -> frames 1..T-1 as (n, 3, T-1, S, S), as Backward.forward transposes them */
    Tensor *seq = input(&m->ctx, clips, 5, DIMS(n, T, 3, S, S));
    Tensor *x = t_permute(&m->ctx, t_slice(&m->ctx, seq, 1, 1, T - 1), DIMS(0, 2, 1, 3, 4));
    Tensor *mu, *logvar;
    video_encoder_forward(&m->ctx, &m->enc, x, &mu, &logvar);
    Tensor *out = rng ? video_encoder_sample(&m->ctx, mu, logvar, rng) : mu;
    output(&m->ctx, z, out->data, (size_t)n * m->z_dim);
    ctx_reset(&m->ctx);
}

void model_decode(Model *m, const real *x0, const real *z, int n, int frames, real *video) {
    int S = m->size, F = m->frames;
    size_t frame = (size_t)3 * S * S;
    real *start = xmalloc((size_t)n * frame * sizeof(real));
    memcpy(start, x0, (size_t)n * frame * sizeof(real));
    for (int done = 0; done < frames; done += F) {
        Tensor *v = generator_forward(&m->ctx, &m->gen, input(&m->ctx, start, 4, DIMS(n, 3, S, S)),
                                      input(&m->ctx, z, 2, DIMS(n, m->z_dim)));
        int take = frames - done < F ? frames - done : F;
        ctx_sync(&m->ctx);
        for (int i = 0; i < n; i++) {
            memcpy(video + ((size_t)i * frames + done) * frame, v->data + (size_t)i * F * frame,
                   (size_t)take * frame * sizeof(real));
            memcpy(start + (size_t)i * frame, v->data + ((size_t)i * F + F - 1) * frame, frame * sizeof(real));
        }
        ctx_reset(&m->ctx);
    }
    free(start);
}

void model_invert(Model *m, const real *cond, int n, const real *nu, double temperature, Rng *rng, real *z) {
    flow_sample(&m->ctx, &m->flow, rng, temperature, nu, cond, n, z);
}

void model_residual(Model *m, const real *z, const real *cond, int n, real *nu) {
    Tensor *ld;
    Tensor *out = flow_forward(&m->ctx, &m->flow, input(&m->ctx, z, 2, DIMS(n, m->z_dim)),
                               input(&m->ctx, cond, 2, DIMS(n, m->flow.cond_dim)), &ld);
    output(&m->ctx, nu, out->data, (size_t)n * m->z_dim);
    ctx_reset(&m->ctx);
}

int write_video_gif(const char *path, const real *videos, size_t n, size_t T, size_t H, size_t W, size_t cols,
                    I2vError *e) {
    uint8_t **rgb = xmalloc(n * sizeof *rgb);
    for (size_t i = 0; i < n; i++) {
        rgb[i] = xmalloc(T * H * W * 3);
        video_to_rgb8(videos + i * T * 3 * H * W, T, H, W, rgb[i]);
    }
    size_t gh, gw;
    uint8_t *grid = video_grid((const uint8_t *const *)rgb, n, T, H, W, cols ? cols : n, 2, 255, &gh, &gw);
    int rc = gif_write(path, grid, T, gw, gh, 25, 0, e);
    free(grid);
    for (size_t i = 0; i < n; i++) free(rgb[i]);
    free(rgb);
    return rc;
}

int read_start_image(const char *path, int S, real *out, I2vError *e) {
    Image im;
    if (image_read(path, &im, e)) return -1;
    real *chw = xmalloc((size_t)3 * im.height * im.width * sizeof(real));
    image_to_chw(&im, 3, chw);
    data_resize(chw, 3, im.height, im.width, out, (size_t)S, (size_t)S);
    free(chw);
    image_free(&im);
    return 0;
}
