/* setup.c: binding tables from the official YAML keys to the structs of each stage, and config loading
 * by file or by name (setup.h). The tables list every key of the official files: the ones a stage uses,
 * the ones it ignores (Logging, save paths, wandb settings) and i2v's own (marked "i2v key"). */
#include "program/setup.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define FIELD(path, type, st, member) {path, type, offsetof(st, member), 0, 0}
#define STRFIELD(path, st, member) {path, F_STRING, offsetof(st, member), sizeof(((st *)0)->member), 0}
#define LISTFIELD(path, st, member, count) \
    {path, F_INT_LIST, offsetof(st, member), sizeof(((st *)0)->member) / sizeof(int), offsetof(st, count)}
#define IGNORED(path) {path, F_IGNORE, 0, 0, 0}

/* ---- keys present in every official file that no stage needs -------------------------------------- */
static const ConfigField ignored_fields[] = {
    IGNORED("Logging"),          IGNORED("Training.savename"),   IGNORED("Training.save_path"),
    IGNORED("Training.reload_path"), IGNORED("Data.reverse"),    IGNORED("Training.verbose_idx"),
};

/* ---- the Data section (data.h), shared by every stage ---------------------------------------------- */
static const ConfigField data_fields[] = {
    STRFIELD("Data.dataset", DataConfig, dataset),
    STRFIELD("Data.data_path", DataConfig, data_path),
    STRFIELD("Data.splits_dir", DataConfig, splits_dir),                  /* i2v key */
    FIELD("Data.sequence_length", F_INT, DataConfig, sequence_length),
    FIELD("Data.img_size", F_INT, DataConfig, img_size),
    FIELD("Data.aug", F_BOOL, DataConfig, aug),
    FIELD("Data.Augmentation.brightness", F_DOUBLE, DataConfig, brightness),
    FIELD("Data.Augmentation.contrast", F_DOUBLE, DataConfig, contrast),
    FIELD("Data.Augmentation.saturation", F_DOUBLE, DataConfig, saturation),
    FIELD("Data.Augmentation.hue", F_DOUBLE, DataConfig, hue),
    FIELD("Data.Augmentation.prob_hflip", F_DOUBLE, DataConfig, prob_hflip),
    FIELD("Data.iter_train", F_INT, DataConfig, iter_train),
    FIELD("Data.iter_eval", F_INT, DataConfig, iter_eval),
    FIELD("Data.iter_test", F_INT, DataConfig, iter_test),
    FIELD("Data.test_size", F_INT, DataConfig, test_size),
    STRFIELD("Data.texture", DataConfig, texture),
    STRFIELD("Data.image_format", DataConfig, image_format),
    FIELD("Training.workers", F_INT, DataConfig, workers),
    FIELD("Training.control", F_BOOL, DataConfig, control),
    FIELD("Data.synth_train", F_INT, DataConfig, synth_train),            /* i2v keys: the synthetic set */
    FIELD("Data.synth_eval", F_INT, DataConfig, synth_eval),
    FIELD("Data.synth_test", F_INT, DataConfig, synth_test),
    FIELD("Data.synth_distractors", F_INT, DataConfig, synth_distractors),
    FIELD("Data.synth_occluder", F_DOUBLE, DataConfig, synth_occluder),
    FIELD("Data.synth_speed_min", F_DOUBLE, DataConfig, synth_speed_min),
    FIELD("Data.synth_speed_max", F_DOUBLE, DataConfig, synth_speed_max),
    FIELD("Data.synth_texture", F_DOUBLE, DataConfig, synth_texture),
    FIELD("Data.synth_object_scale", F_DOUBLE, DataConfig, synth_object_scale),
};

/* ---- stage 1 (stage1_VAE/configs) -------------------------------------------------------------------- */
static const ConfigField stage1_fields[] = {
    STRFIELD("Encoder.res_type_encoder", Stage1Config, Encoder.res_type_encoder),
    FIELD("Encoder.deterministic", F_BOOL, Stage1Config, Encoder.deterministic),
    FIELD("Encoder.use_max_pool", F_BOOL, Stage1Config, Encoder.use_max_pool),
    FIELD("Encoder.z_dim", F_INT, Stage1Config, Encoder.z_dim),
    LISTFIELD("Encoder.channels", Stage1Config, Encoder.channels, Encoder.n_channels),
    LISTFIELD("Encoder.stride_t", Stage1Config, Encoder.stride_t, Encoder.n_stride_t),
    LISTFIELD("Encoder.stride_s", Stage1Config, Encoder.stride_s, Encoder.n_stride_s),
    FIELD("Encoder.norm_groups", F_INT, Stage1Config, Encoder.norm_groups),               /* i2v key */
    FIELD("Decoder.channel_factor", F_INT, Stage1Config, Decoder.channel_factor),
    FIELD("Decoder.z_dim", F_INT, Stage1Config, Decoder.z_dim),
    LISTFIELD("Decoder.upsample_s", Stage1Config, Decoder.upsample_s, Decoder.n_upsample_s),
    LISTFIELD("Decoder.upsample_t", Stage1Config, Decoder.upsample_t, Decoder.n_upsample_t),
    FIELD("Decoder.spectral_norm", F_BOOL, Stage1Config, Decoder.spectral_norm),
    FIELD("Decoder.norm_groups", F_INT, Stage1Config, Decoder.norm_groups),               /* i2v key */
    FIELD("Decoder.spade_hidden", F_INT, Stage1Config, Decoder.spade_hidden),             /* i2v key */
    FIELD("Discriminator_Temporal.eval_seq_length", F_INT, Stage1Config, Discriminator_Temporal.eval_seq_length),
    STRFIELD("Discriminator_Temporal.res_type_encoder", Stage1Config, Discriminator_Temporal.res_type_encoder),
    FIELD("Discriminator_Temporal.deterministic", F_BOOL, Stage1Config, Discriminator_Temporal.deterministic),
    FIELD("Discriminator_Temporal.use_max_pool", F_BOOL, Stage1Config, Discriminator_Temporal.use_max_pool),
    LISTFIELD("Discriminator_Temporal.channels", Stage1Config, Discriminator_Temporal.channels,
              Discriminator_Temporal.n_channels),
    LISTFIELD("Discriminator_Temporal.stride_t", Stage1Config, Discriminator_Temporal.stride_t,
              Discriminator_Temporal.n_stride_t),
    LISTFIELD("Discriminator_Temporal.stride_s", Stage1Config, Discriminator_Temporal.stride_s,
              Discriminator_Temporal.n_stride_s),
    FIELD("Discriminator_Temporal.spectral_norm", F_BOOL, Stage1Config, Discriminator_Temporal.spectral_norm),
    FIELD("Discriminator_Temporal.norm_groups", F_INT, Stage1Config, Discriminator_Temporal.norm_groups), /* i2v */
    FIELD("Discriminator_Patch.in_channels", F_INT, Stage1Config, Discriminator_Patch.in_channels),
    FIELD("Discriminator_Patch.ndf", F_INT, Stage1Config, Discriminator_Patch.ndf),
    FIELD("Discriminator_Patch.n_layers", F_INT, Stage1Config, Discriminator_Patch.n_layers),
    FIELD("Discriminator_Patch.use_actnorm", F_BOOL, Stage1Config, Discriminator_Patch.use_actnorm),
    FIELD("Discriminator_Patch.spectral_norm", F_BOOL, Stage1Config, Discriminator_Patch.spectral_norm),
    STRFIELD("Training.patch_GAN", Stage1Config, Training.patch_GAN),
    STRFIELD("Training.GAN_Loss", Stage1Config, Training.GAN_Loss),
    FIELD("Training.w_coup_s", F_DOUBLE, Stage1Config, Training.w_coup_s),
    FIELD("Training.w_coup_t", F_DOUBLE, Stage1Config, Training.w_coup_t),
    FIELD("Training.w_fmap_t", F_DOUBLE, Stage1Config, Training.w_fmap_t),
    FIELD("Training.w_percep", F_DOUBLE, Stage1Config, Training.w_percep),
    FIELD("Training.w_recon", F_DOUBLE, Stage1Config, Training.w_recon),
    FIELD("Training.w_GP", F_DOUBLE, Stage1Config, Training.w_GP),
    FIELD("Training.w_kl", F_DOUBLE, Stage1Config, Training.w_kl),
    FIELD("Training.subsample_length", F_INT, Stage1Config, Training.subsample_length),
    FIELD("Training.pretrain", F_INT, Stage1Config, Training.pretrain),
    FIELD("Training.n_epochs", F_INT, Stage1Config, Training.n_epochs),
    FIELD("Training.lr", F_DOUBLE, Stage1Config, Training.lr),
    FIELD("Training.bs", F_INT, Stage1Config, Training.bs),
    FIELD("Training.bs_eval", F_INT, Stage1Config, Training.bs_eval),
    FIELD("Training.weight_decay", F_DOUBLE, Stage1Config, Training.weight_decay),
    FIELD("Training.lr_gamma", F_DOUBLE, Stage1Config, Training.lr_gamma),
    STRFIELD("Training.FVD", Stage1Config, Training.FVD),
    FIELD("Training.disc_in_warmup", F_BOOL, Stage1Config, Training.disc_in_warmup),      /* i2v key */
    FIELD("Data.sequence_length", F_INT, Stage1Config, Data.sequence_length),
    FIELD("Data.img_size", F_INT, Stage1Config, Data.img_size),
    STRFIELD("Data.dataset", Stage1Config, Data.dataset),
};

/* ---- the conditioning autoencoder (stage2_cINN/AE/configs) -------------------------------------------- */
static const ConfigField cond_ae_fields[] = {
    FIELD("AE.deterministic", F_BOOL, CondAeConfig, AE.deterministic),
    FIELD("AE.in_size", F_INT, CondAeConfig, AE.in_size),
    STRFIELD("AE.norm", CondAeConfig, AE.norm),
    STRFIELD("AE.encoder_type", CondAeConfig, AE.encoder_type),
    FIELD("AE.use_actnorm_in_dec", F_BOOL, CondAeConfig, AE.use_actnorm_in_dec),
    FIELD("AE.z_dim", F_INT, CondAeConfig, AE.z_dim),
    FIELD("AE.enc_width", F_INT, CondAeConfig, AE.enc_width),                              /* i2v keys: widths */
    LISTFIELD("AE.enc_blocks", CondAeConfig, AE.enc_blocks, AE.n_enc_blocks),
    FIELD("AE.dec_chn", F_INT, CondAeConfig, AE.dec_chn),
    LISTFIELD("AE.dec_mults", CondAeConfig, AE.dec_mults, AE.n_dec_mults),
    FIELD("AE.dec_split", F_INT, CondAeConfig, AE.dec_split),
    FIELD("AE.dec_attn_index", F_INT, CondAeConfig, AE.dec_attn_index),
    FIELD("AE.n_class", F_INT, CondAeConfig, AE.n_class),
    FIELD("AE.class_hidden", F_INT, CondAeConfig, AE.class_hidden),
    FIELD("AE.class_emb", F_INT, CondAeConfig, AE.class_emb),
    FIELD("Discriminator_Patch.in_channels", F_INT, CondAeConfig, Discriminator_Patch.in_channels),
    FIELD("Discriminator_Patch.ndf", F_INT, CondAeConfig, Discriminator_Patch.ndf),
    FIELD("Discriminator_Patch.n_layers", F_INT, CondAeConfig, Discriminator_Patch.n_layers),
    FIELD("Discriminator_Patch.use_actnorm", F_BOOL, CondAeConfig, Discriminator_Patch.use_actnorm),
    FIELD("Discriminator_Patch.spectral_norm", F_BOOL, CondAeConfig, Discriminator_Patch.spectral_norm),
    FIELD("Training.w_kl", F_DOUBLE, CondAeConfig, Training.w_kl),
    FIELD("Training.n_epochs", F_INT, CondAeConfig, Training.n_epochs),
    FIELD("Training.lr", F_DOUBLE, CondAeConfig, Training.lr),
    FIELD("Training.bs", F_INT, CondAeConfig, Training.bs),
    FIELD("Training.weight_decay", F_DOUBLE, CondAeConfig, Training.weight_decay),
    FIELD("Training.pretrain", F_INT, CondAeConfig, Training.pretrain),
    FIELD("Training.perceptual", F_BOOL, CondAeConfig, Training.perceptual),               /* i2v key */
    FIELD("Data.sequence_length", F_INT, CondAeConfig, Data.sequence_length),
    FIELD("Data.img_size", F_INT, CondAeConfig, Data.img_size),
    STRFIELD("Data.dataset", CondAeConfig, Data.dataset),
};

/* ---- the cINN (stage2_cINN/configs) --------------------------------------------------------------------- */
static const ConfigField stage2_fields[] = {
    FIELD("Flow.n_flows", F_INT, Stage2Config, Flow.n_flows),
    FIELD("Flow.flow_hidden_depth", F_INT, Stage2Config, Flow.flow_hidden_depth),
    FIELD("Flow.flow_mid_channels_factor", F_INT, Stage2Config, Flow.flow_mid_channels_factor),
    FIELD("Conditioning_Model.z_dim", F_INT, Stage2Config, Conditioning_Model.z_dim),
    STRFIELD("Conditioning_Model.checkpoint_name", Stage2Config, Conditioning_Model.checkpoint_name),
    STRFIELD("Conditioning_Model.model_name", Stage2Config, Conditioning_Model.model_name),
    STRFIELD("Conditioning_Model.model_path", Stage2Config, Conditioning_Model.model_path),
    STRFIELD("First_stage_model.checkpoint_encoder", Stage2Config, First_stage_model.checkpoint_encoder),
    STRFIELD("First_stage_model.checkpoint_decoder", Stage2Config, First_stage_model.checkpoint_decoder),
    STRFIELD("First_stage_model.model_name", Stage2Config, First_stage_model.model_name),
    STRFIELD("First_stage_model.model_path", Stage2Config, First_stage_model.model_path),
    FIELD("Training.n_epochs", F_INT, Stage2Config, Training.n_epochs),
    FIELD("Training.lr", F_DOUBLE, Stage2Config, Training.lr),
    FIELD("Training.bs", F_INT, Stage2Config, Training.bs),
    FIELD("Training.bs_eval", F_INT, Stage2Config, Training.bs_eval),
    FIELD("Training.control", F_BOOL, Stage2Config, Training.control),
    FIELD("Training.weight_decay", F_DOUBLE, Stage2Config, Training.weight_decay),
    FIELD("Training.gamma", F_DOUBLE, Stage2Config, Training.gamma),
    FIELD("Training.step_size", F_INT, Stage2Config, Training.step_size),
    FIELD("Training.beta1", F_DOUBLE, Stage2Config, Training.beta1),
    FIELD("Training.beta2", F_DOUBLE, Stage2Config, Training.beta2),
    FIELD("Training.amsgrad", F_BOOL, Stage2Config, Training.amsgrad),
    FIELD("Training.official_logdet", F_BOOL, Stage2Config, Training.official_logdet),   /* i2v key */
};

#define COUNT(a) ((int)(sizeof(a) / sizeof *(a)))

Stage2Config stage2_config_bair(void) {
    Stage2Config c;
    memset(&c, 0, sizeof c);
    c.Flow.n_flows = 20;
    c.Flow.flow_hidden_depth = 2;
    c.Flow.flow_mid_channels_factor = 8;
    c.Conditioning_Model.z_dim = 64;
    snprintf(c.Conditioning_Model.checkpoint_name, sizeof c.Conditioning_Model.checkpoint_name, "Encoder_stage2");
    snprintf(c.First_stage_model.checkpoint_encoder, sizeof c.First_stage_model.checkpoint_encoder, "best_PFVD_ENC");
    snprintf(c.First_stage_model.checkpoint_decoder, sizeof c.First_stage_model.checkpoint_decoder, "best_PFVD_GEN");
    c.Training.n_epochs = 31;
    c.Training.lr = 1e-5;
    c.Training.workers = 1;
    c.Training.bs = 50;
    c.Training.bs_eval = 10;
    c.Training.gamma = 0.5;
    c.Training.step_size = 7;
    c.Training.beta1 = 0.9;
    c.Training.beta2 = 0.99;
    c.Training.amsgrad = 1;
    return c;
}

/* ---- loading ---------------------------------------------------------------------------------------------- */

static const char *stage_dir(StageKind kind) {
    return kind == STAGE1 ? "stage1_VAE" : kind == STAGE_AE ? "stage2_cINN_AE" : "stage2_cINN";
}

const char *setup_builtin_names(StageKind kind) {
    (void)kind;
    return "bair, iPER, landscape, DTDB_clouds, DTDB_fire, DTDB_vegetation, DTDB_waterfall (the official configs), "
           "small, tiny (CPU configs on the synthetic data)";
}

/* A name becomes configs/<stage dir>/<name>_config.yaml, matched without regard to case. */
static int resolve_name(StageKind kind, const char *name, char *path, size_t size, I2vError *e) {
    if (access(name, R_OK) == 0) {
        snprintf(path, size, "%s", name);
        return 0;
    }
    if (strchr(name, '/') || strstr(name, ".yaml"))
        return err_set(e, "%s: cannot read this config file", name);
    char dir[64];
    snprintf(dir, sizeof dir, "configs/%s", stage_dir(kind));
    char **names;
    size_t n;
    I2vError ignored;
    if (data_list_dir(dir, 0, &names, &n, &ignored))
        return err_set(e, "config '%s': no such file, and no built-in configs here (%s is missing; run i2v from "
                          "the repository root or give a path)", name, dir);
    int found = 0;
    for (size_t i = 0; i < n && !found; i++) {
        size_t len = strlen(names[i]), nl = strlen(name);
        if (len == nl + 12 && !strncasecmp(names[i], name, nl) && !strcmp(names[i] + nl, "_config.yaml")) {
            snprintf(path, size, "%s/%s", dir, names[i]);
            found = 1;
        }
    }
    data_free_names(names, n);
    if (!found)
        return err_set(e, "config '%s': not a file and not a built-in name; built-in names are: %s", name,
                       setup_builtin_names(kind));
    return 0;
}

static void defaults(StageKind kind, StageSetup *out) {
    memset(out, 0, sizeof *out);
    out->s1 = stage1_config_bair();
    out->ae = cond_ae_config_bair();
    out->s2 = stage2_config_bair();
    data_config_default(&out->data);
    (void)kind;
}

const ConfigField *setup_stage_fields(StageKind kind, int *n) {
    switch (kind) {
    case STAGE1: *n = COUNT(stage1_fields); return stage1_fields;
    case STAGE_AE: *n = COUNT(cond_ae_fields); return cond_ae_fields;
    case STAGE2: *n = COUNT(stage2_fields); return stage2_fields;
    }
    *n = 0;
    return NULL;
}

/* Binds the stage's table, the Data table and the ignored keys; then checks for unknown keys. */
static int bind_all(StageKind kind, Config *cfg, StageSetup *out, I2vError *e) {
    int rc = 0;
    if (kind == STAGE1) rc = config_bind(cfg, stage1_fields, COUNT(stage1_fields), &out->s1, e);
    if (kind == STAGE_AE) rc = config_bind(cfg, cond_ae_fields, COUNT(cond_ae_fields), &out->ae, e);
    if (kind == STAGE2) rc = config_bind(cfg, stage2_fields, COUNT(stage2_fields), &out->s2, e);
    if (!rc) rc = config_bind(cfg, data_fields, COUNT(data_fields), &out->data, e);
    if (!rc) rc = config_bind(cfg, ignored_fields, COUNT(ignored_fields), NULL, e);
    if (!rc) rc = config_check_unused(cfg, e);
    if (!rc && kind == STAGE1) rc = stage1_config_check(&out->s1, e);
    if (!rc && kind == STAGE_AE) {
        cond_ae_net_resolve(&out->ae.AE);
        rc = cond_ae_config_check(&out->ae, e);
    }
    if (!rc) rc = data_config_check(&out->data, e);
    if (!rc) out->yaml = setup_to_yaml(kind, out);
    return rc;
}

char *setup_to_yaml(StageKind kind, const StageSetup *s) {
    Config eff;
    config_new(&eff, "effective config");
    if (kind == STAGE1) config_add_struct(&eff, stage1_fields, COUNT(stage1_fields), &s->s1);
    if (kind == STAGE_AE) config_add_struct(&eff, cond_ae_fields, COUNT(cond_ae_fields), &s->ae);
    if (kind == STAGE2) config_add_struct(&eff, stage2_fields, COUNT(stage2_fields), &s->s2);
    config_add_struct(&eff, data_fields, COUNT(data_fields), &s->data);
    char *yaml = config_to_yaml(&eff);
    config_free(&eff);
    return yaml;
}

int setup_load(StageKind kind, const char *name_or_path, int noverrides, char *const *overrides, StageSetup *out,
               I2vError *e) {
    char path[1100];
    defaults(kind, out);
    if (resolve_name(kind, name_or_path, path, sizeof path, e)) return -1;
    Config cfg;
    if (config_load(&cfg, path, e)) return -1;
    for (int i = 0; i < noverrides; i++)
        if (config_override(&cfg, overrides[i], e)) {
            config_free(&cfg);
            return -1;
        }
    int rc = bind_all(kind, &cfg, out, e);
    config_free(&cfg);
    return rc;
}

int setup_from_yaml(StageKind kind, const char *yaml, const char *label, StageSetup *out, I2vError *e) {
    defaults(kind, out);
    Config cfg;
    if (config_parse(&cfg, yaml, label, e)) return -1;
    int rc = bind_all(kind, &cfg, out, e);
    config_free(&cfg);
    return rc;
}

void setup_free(StageSetup *s) {
    free(s->yaml);
    s->yaml = NULL;
}
