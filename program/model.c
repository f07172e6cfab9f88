/* model.c: loading a model folder and running its networks for inference (model.h), as get_model.py's
 * Model does: eval mode everywhere (spectral norm with the stored u and v), no gradients.
 * What it is not: training (run.c) or the command line (i2v.c). */
#include "program/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "formats/files.h"
#include "formats/imageio.h"
#include "formats/gif.h"
#include "formats/image.h"
#include "formats/png.h"
#include "formats/safetensors.h"

int model_path(char *path, size_t cap, const char *dir, const char *name, I2vError *e) {
    if (name[0] == '/') return data_join(path, cap, e, "%s", name);
    return data_join(path, cap, e, "%s/%s", dir, name);
}

void model_stage_ref(const Stage2Config *s2, StageKind kind, char *dir, size_t cap) {
    const char *path = kind == STAGE1 ? s2->First_stage_model.model_path : s2->Conditioning_Model.model_path;
    const char *name = kind == STAGE1 ? s2->First_stage_model.model_name : s2->Conditioning_Model.model_name;
    if (!path[0] && !name[0]) dir[0] = 0;
    else snprintf(dir, cap, "%s%s", path, name);   /* the official code concatenates them as they are */
}

static int load_yaml(StageKind kind, const char *dir, const char *name, StageSetup *out, I2vError *e) {
    char path[DATA_PATH_MAX];
    uint8_t *bytes;
    size_t n;
    if (model_path(path, sizeof path, dir, name, e) || read_file_bytes(path, &bytes, &n, e)) return -1;
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
    if (model_path(path, sizeof path, dir, file, e)) return -1;
    StLoadOpts o = {prefix, 1, 0};
    return st_load_paramset_file(path, ps, &o, e) < 0 ? -1 : 0;
}

/* A config in a model folder could ask for more parameters than the machine holds: refused before the
 * network's memory is allocated (declared networks hold none). */
static int fits(double params, const char *keys, const char *dir, I2vError *e) {
    return setup_check_memory(dir, params * sizeof(real), "parameters", keys, e);
}

/* Loads the parts asked for: stage 1 from s1dir, the conditioning encoder from aedir, the cINN from
 * flowdir (NULL when not asked for). */
static int load_parts(Model *m, const char *s1dir, const char *aedir, const char *flowdir, int parts,
                      const char *cinn_file, const char *cinn_config, I2vError *e) {
    memset(m, 0, sizeof *m);
    ctx_init(&m->ctx);
    m->ctx.grad_enabled = 0;
    m->ctx.training = 0;
    Rng init;   /* initial values are overwritten by the checkpoint; any stream will do */
    rng_seed(&init, 0);
    if (parts & (MODEL_GEN | MODEL_ENC | MODEL_FLOW)) {
        if (load_yaml(STAGE1, s1dir, STAGE1_CONFIG, &m->s1, e)) goto fail;
        m->size = m->s1.s1.Data.img_size;
        m->frames = decoder_frames(&m->s1.s1.Decoder);
        m->z_dim = m->s1.s1.Encoder.z_dim;
    }
    if (parts & MODEL_GEN) {
        generator_declare(&m->gen, &m->s1.s1.Decoder);
        m->has_gen = 1;
        if (fits((double)paramset_count(&m->gen.ps), "Decoder.channel_factor", s1dir, e)) goto fail;
        generator_init(&m->gen, &init);
        if (load_set(s1dir, STAGE1_FILE, &m->gen.ps, "gen.", e)) goto fail;
    }
    if (parts & MODEL_ENC) {
        video_encoder_declare(&m->enc, &m->s1.s1.Encoder);
        m->has_enc = 1;
        if (fits((double)paramset_count(&m->enc.ps), "Encoder.channels", s1dir, e)) goto fail;
        video_encoder_init(&m->enc, &init);
        if (load_set(s1dir, STAGE1_FILE, &m->enc.ps, "enc.", e)) goto fail;
    }
    if (parts & (MODEL_COND | MODEL_FLOW)) {
        if (load_yaml(STAGE_COND_AE, aedir, COND_AE_CONFIG, &m->cond_ae, e)) goto fail;
        m->embed_dim = m->cond_ae.cond_ae.AE.z_dim;
        cond_encoder_declare(&m->cond, &m->cond_ae.cond_ae.AE, NULL);
        m->has_cond = 1;
        if (fits((double)paramset_count(&m->cond.ps), "AE.enc_width and AE.enc_blocks", aedir, e)) goto fail;
        cond_encoder_init(&m->cond, &init);
        if (load_set(aedir, COND_AE_FILE, &m->cond.ps, "enc.", e)) goto fail;
        if (m->size && m->cond_ae.cond_ae.AE.in_size != m->size) {
            err_set(e, "%s: the conditioning AE works at %d px but stage 1 (%s) at %d px", aedir,
                    m->cond_ae.cond_ae.AE.in_size, s1dir, m->size);
            goto fail;
        }
    }
    if (parts & MODEL_FLOW) {
        if (load_yaml(STAGE2, flowdir, cinn_config, &m->s2, e)) goto fail;
        const char *keys;
        if (fits(setup_parameters(STAGE2, &m->s2, m->z_dim, m->embed_dim, &keys), keys, flowdir, e)) goto fail;
        FlowConfig fc = flow_config_of(&m->s2.s2, m->z_dim, m->embed_dim);
        flow_build(&m->flow, &fc, &init);
        m->has_flow = 1;
        if (load_set(flowdir, cinn_file, &m->flow.ps, "flow.", e)) goto fail;
    }
    return 0;
fail:
    model_free(m);
    return -1;
}

int model_load_stages(Model *m, const char *stage1_dir, const char *cond_ae_dir, int parts, I2vError *e) {
    return load_parts(m, stage1_dir, cond_ae_dir, NULL, parts & (MODEL_GEN | MODEL_ENC | MODEL_COND), NULL, NULL, e);
}

/* The folder a stage is read from: the model folder when it has the stage's config, else the folder the
 * cINN config names for it. */
static int stage_dir(const char *dir, const StageSetup *s2, int have_s2, StageKind kind, char *out, size_t cap,
                     I2vError *e) {
    const char *config = kind == STAGE1 ? STAGE1_CONFIG : COND_AE_CONFIG;
    char path[DATA_PATH_MAX], ref[2200] = "";
    if (model_path(path, sizeof path, dir, config, e)) return -1;
    if (access(path, F_OK) == 0 || !have_s2) return data_join(out, cap, e, "%s", dir);
    model_stage_ref(&s2->s2, kind, ref, sizeof ref);
    if (!ref[0])
        return err_set(e, "%s: no %s here, and its cINN config names no other folder (%s.model_path)", dir, config,
                       kind == STAGE1 ? "First_stage_model" : "Conditioning_Model");
    return data_join(out, cap, e, "%s", ref);
}

int model_load(Model *m, const char *dir, int parts, const char *cinn_file, const char *cinn_config, I2vError *e) {
    if (!cinn_file) cinn_file = CINN_FILE;
    if (!cinn_config) cinn_config = CINN_CONFIG;
    memset(m, 0, sizeof *m);
    /* the cINN config, when there is one, may name the folders of the other stages */
    StageSetup s2;
    char path[DATA_PATH_MAX], s1dir[DATA_PATH_MAX], aedir[DATA_PATH_MAX];
    int have_s2 = 0;
    if (model_path(path, sizeof path, dir, cinn_config, e)) return -1;
    if (access(path, F_OK) == 0) {
        if (load_yaml(STAGE2, dir, cinn_config, &s2, e)) return -1;
        have_s2 = 1;
    } else if (access(dir, F_OK) != 0) {
        return err_set(e, "%s: no such model folder", dir);
    }
    int need1 = parts & (MODEL_GEN | MODEL_ENC | MODEL_FLOW), need_ae = parts & (MODEL_COND | MODEL_FLOW);
    int rc = stage_dir(dir, &s2, have_s2 && need1, STAGE1, s1dir, sizeof s1dir, e) ||
             stage_dir(dir, &s2, have_s2 && need_ae, STAGE_COND_AE, aedir, sizeof aedir, e);
    if (have_s2) setup_free(&s2);
    if (rc) return -1;
    return load_parts(m, s1dir, aedir, dir, parts, cinn_file, cinn_config, e);
}

void model_free(Model *m) {
    if (m->has_gen) generator_free(&m->gen);
    if (m->has_enc) video_encoder_free(&m->enc);
    if (m->has_cond) cond_encoder_free(&m->cond);
    if (m->has_flow) flow_free(&m->flow);
    setup_free(&m->s1);
    setup_free(&m->cond_ae);
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
    int S = m->cond_ae.cond_ae.AE.in_size;
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
    if (im.width != (size_t)S || im.height != (size_t)S)
        fprintf(stderr, "%s: %zu x %zu, resized to %d x %d as the official scripts do (bilinear, no antialiasing%s)\n",
                path, im.width, im.height, S, S, im.width != im.height ? "; the aspect ratio is not kept" : "");
    real *chw = xmalloc((size_t)3 * im.height * im.width * sizeof(real));
    image_to_chw(&im, 3, chw);
    data_resize(chw, 3, im.height, im.width, out, (size_t)S, (size_t)S);
    free(chw);
    image_free(&im);
    return 0;
}
