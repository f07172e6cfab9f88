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

/* ---- the training-time FVD monitor (stage 1 and the cINN; utils/auxiliaries.py) ------------------------- */
static const ConfigField monitor_fields[] = {
    STRFIELD("Training.fvd_weights", StageSetup, fvd_weights),                            /* i2v key */
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
    return kind == STAGE1 ? "stage1_VAE" : kind == STAGE_COND_AE ? "stage2_cINN_AE" : "stage2_cINN";
}

const char *setup_builtin_names(StageKind kind) {
    (void)kind;
    return "bair, iPER, landscape, DTDB_clouds, DTDB_fire, DTDB_vegetation, DTDB_waterfall (the official configs), "
           "small, tiny (CPU configs on the synthetic data)";
}

/* ---- where the built-in configs are ------------------------------------------------------------------------ */

#ifndef I2V_CONFIG_DIR
#define I2V_CONFIG_DIR ""   /* the Makefile compiles in the source tree's configs folder */
#endif

static int is_config_root(const char *dir) {
    char probe[2300];
    snprintf(probe, sizeof probe, "%s/stage1_VAE", dir);
    return access(probe, R_OK) == 0;
}

const char *setup_config_root(void) {
    static char root[2200];
    static int looked;
    if (looked) return root[0] ? root : NULL;
    looked = 1;
    char exe[2048], cand[2200];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);   /* Linux; elsewhere the next two are skipped */
    exe[n > 0 ? n : 0] = 0;
    char *slash = strrchr(exe, '/');
    if (slash) *slash = 0;
    const char *tries[4] = {"configs", NULL, NULL, I2V_CONFIG_DIR};
    char beside[2100], installed[2100];
    if (slash) {
        snprintf(beside, sizeof beside, "%s/configs", exe);
        snprintf(installed, sizeof installed, "%s/../share/i2v/configs", exe);
        tries[1] = beside;
        tries[2] = installed;
    }
    for (int i = 0; i < 4; i++) {
        if (!tries[i] || !tries[i][0]) continue;
        char here[1024];
        if (tries[i][0] != '/' && getcwd(here, sizeof here))   /* absolute: valid after a chdir */
            snprintf(cand, sizeof cand, "%s/%s", here, tries[i]);
        else
            snprintf(cand, sizeof cand, "%s", tries[i]);
        if (is_config_root(cand)) {
            snprintf(root, sizeof root, "%s", cand);
            return root;
        }
    }
    return NULL;
}

void setup_resolve_paths(DataConfig *dc) {
    const char *root = setup_config_root(), *rel = "configs/";
    if (!root || dc->splits_dir[0] == '/' || access(dc->splits_dir, R_OK) == 0 ||
        strncmp(dc->splits_dir, rel, strlen(rel)))
        return;
    char path[sizeof dc->splits_dir];
    int k = snprintf(path, sizeof path, "%s/%s", root, dc->splits_dir + strlen(rel));
    if (k > 0 && (size_t)k < sizeof path) memcpy(dc->splits_dir, path, (size_t)k + 1);
}

/* A name becomes <config root>/<stage dir>/<name>_config.yaml, matched without regard to case. */
static int resolve_name(StageKind kind, const char *name, char *path, size_t size, I2vError *e) {
    if (access(name, R_OK) == 0) {
        snprintf(path, size, "%s", name);
        return 0;
    }
    if (strchr(name, '/') || strstr(name, ".yaml"))
        return err_set(e, "%s: cannot read this config file", name);
    const char *root = setup_config_root();
    if (!root)
        return err_set(e, "config '%s': no such file, and the built-in configs were not found (looked in ./configs, "
                          "beside the program and in its ../share/i2v/configs); give a path to a YAML file",
                       name);
    char dir[2300];
    snprintf(dir, sizeof dir, "%s/%s", root, stage_dir(kind));
    char **names;
    size_t n;
    I2vError ignored;
    if (data_list_dir(dir, 0, &names, &n, &ignored))
        return err_set(e, "config '%s': no such file, and %s cannot be read", name, dir);
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
    out->cond_ae = cond_ae_config_bair();
    out->s2 = stage2_config_bair();
    data_config_default(&out->data);
    (void)kind;
}

/* ---- sizes ---------------------------------------------------------------------------------------------- */

/* Upper bounds of the size keys: far beyond any paper config (at least 16 times its value), so a value
 * past them is a typo; within them every size computed from a config fits its type, and the memory check
 * below sees the real cost. */
typedef struct SizeBound {
    const char *path;
    int max;
} SizeBound;
static const SizeBound size_bounds[] = {
    {"Encoder.z_dim", 16384},          {"Encoder.channels", 16384},      {"Encoder.stride_t", 8},
    {"Encoder.stride_s", 8},           {"Encoder.norm_groups", 16384},   {"Decoder.channel_factor", 4096},
    {"Decoder.z_dim", 16384},          {"Decoder.upsample_s", 8},        {"Decoder.upsample_t", 8},
    {"Decoder.norm_groups", 16384},    {"Decoder.spade_hidden", 16384},
    {"Discriminator_Temporal.eval_seq_length", 4096}, {"Discriminator_Temporal.channels", 16384},
    {"Discriminator_Temporal.stride_t", 8},           {"Discriminator_Temporal.stride_s", 8},
    {"Discriminator_Temporal.norm_groups", 16384},    {"Discriminator_Patch.in_channels", 64},
    {"Discriminator_Patch.ndf", 16384}, {"Discriminator_Patch.n_layers", 10},
    {"Training.subsample_length", 4096}, {"Training.bs", 65536},        {"Training.bs_eval", 65536},
    {"AE.in_size", 4096},              {"AE.z_dim", 16384},              {"AE.enc_width", 4096},
    {"AE.enc_blocks", 256},            {"AE.dec_chn", 4096},             {"AE.dec_mults", 256},
    {"AE.dec_split", 4096},            {"AE.n_class", 1000000},          {"AE.class_hidden", 65536},
    {"AE.class_emb", 16384},           {"Flow.n_flows", 4096},           {"Flow.flow_hidden_depth", 256},
    {"Flow.flow_mid_channels_factor", 1024}, {"Conditioning_Model.z_dim", 16384},
    {"Data.sequence_length", 4096},    {"Data.img_size", 8192},          {"Data.iter_train", 1000000},
    {"Data.iter_eval", 1000000},       {"Data.iter_test", 1000000},      {"Data.test_size", 100000000},
    {"Training.workers", 4096},        {"Data.synth_train", 10000000},  {"Data.synth_eval", 10000000},
    {"Data.synth_test", 10000000},   {"Data.synth_distractors", 64},
};

/* The integer (or the largest item of the integer list) of field f in the struct at base. */
static long field_max(const ConfigField *f, const void *base) {
    const int *v = (const int *)((const char *)base + f->offset);
    if (f->type == F_INT) return *v;
    long m = 0;
    int n = *(const int *)((const char *)base + f->count_offset);
    for (int i = 0; i < n; i++)
        if (v[i] > m) m = v[i];
    return m;
}

static int check_table_bounds(const ConfigField *fields, int n, const void *base, const char *label, I2vError *e) {
    for (int i = 0; i < n; i++) {
        if (fields[i].type != F_INT && fields[i].type != F_INT_LIST) continue;
        for (size_t b = 0; b < sizeof size_bounds / sizeof *size_bounds; b++) {
            if (strcmp(size_bounds[b].path, fields[i].path)) continue;
            long v = field_max(&fields[i], base);
            if (v > size_bounds[b].max)
                return err_set(e, "%s: %s: %ld is far beyond any paper config (at most %d); a typo?", label,
                               fields[i].path, v, size_bounds[b].max);
        }
    }
    return 0;
}

static int check_bounds(StageKind kind, const StageSetup *s, const char *label, I2vError *e) {
    if (kind == STAGE1 && check_table_bounds(stage1_fields, COUNT(stage1_fields), &s->s1, label, e)) return -1;
    if (kind == STAGE_COND_AE && check_table_bounds(cond_ae_fields, COUNT(cond_ae_fields), &s->cond_ae, label, e))
        return -1;
    if (kind == STAGE2 && check_table_bounds(stage2_fields, COUNT(stage2_fields), &s->s2, label, e)) return -1;
    return check_table_bounds(data_fields, COUNT(data_fields), &s->data, label, e);
}

/* Adds a network's parameter count to the total; keeps the keys of the largest network. */
typedef struct ParamTally {
    double total, best;
    const char *keys;
} ParamTally;

static void tally(ParamTally *t, double count, const char *keys) {
    t->total += count;
    if (count > t->best) {
        t->best = count;
        t->keys = keys;
    }
}

double setup_parameters(StageKind kind, const StageSetup *s, int z_dim, int embed_dim, const char **keys) {
    ParamTally t = {0, -1, ""};
    if (kind == STAGE1) {
        VideoEncoder enc;
        Generator gen;
        TemporalDisc dt;
        PatchGan ds;
        video_encoder_declare(&enc, &s->s1.Encoder);
        generator_declare(&gen, &s->s1.Decoder);
        disc_t_declare(&dt, &s->s1.Discriminator_Temporal);
        patchgan_declare(&ds, &s->s1.Discriminator_Patch, NULL);
        tally(&t, (double)paramset_count(&enc.ps), "Encoder.channels and Encoder.z_dim");
        tally(&t, (double)paramset_count(&gen.ps), "Decoder.channel_factor and Decoder.spade_hidden");
        tally(&t, (double)paramset_count(&dt.ps), "Discriminator_Temporal.channels");
        tally(&t, (double)paramset_count(&ds.ps), "Discriminator_Patch.ndf and n_layers");
        video_encoder_free(&enc);
        generator_free(&gen);
        disc_t_free(&dt);
        patchgan_free(&ds);
    } else if (kind == STAGE_COND_AE) {
        CondEncoder enc;
        CondDecoder dec;
        PatchGan ds;
        cond_encoder_declare(&enc, &s->cond_ae.AE, NULL);
        cond_decoder_declare(&dec, &s->cond_ae.AE, NULL);
        patchgan_declare(&ds, &s->cond_ae.Discriminator_Patch, NULL);
        tally(&t, (double)paramset_count(&enc.ps), "AE.enc_width and AE.enc_blocks");
        tally(&t, (double)paramset_count(&dec.ps), "AE.dec_chn, AE.dec_mults and AE.n_class");
        tally(&t, (double)paramset_count(&ds.ps), "Discriminator_Patch.ndf and n_layers");
        cond_encoder_free(&enc);
        cond_decoder_free(&dec);
        patchgan_free(&ds);
    } else {
        /* per block: ActNorm and four coupling MLPs, Linear(D/2 + C, H), depth x Linear(H, H), Linear(H, D/2) */
        double D = z_dim, H = (double)s->s2.Flow.flow_mid_channels_factor * z_dim, depth = s->s2.Flow.flow_hidden_depth;
        double C = embed_dim + (s->s2.Training.control ? FLOW_CONTROL_DIM : 0);
        double mlp = (D / 2 + C + 1) * H + depth * (H + 1) * H + (H + 1) * D / 2;
        tally(&t, s->s2.Flow.n_flows * (2 * D + 4 * mlp), "Flow.n_flows, Flow.flow_mid_channels_factor and flow_hidden_depth");
    }
    if (keys) *keys = t.keys;
    return t.total;
}

double setup_machine_memory(void) {
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
    return pages > 0 && size > 0 ? (double)pages * (double)size : 0;
}

void setup_format_bytes(double bytes, char *out, size_t cap) {
    const char *unit[] = {"bytes", "KB", "MB", "GB", "TB", "PB"};
    int u = 0;
    while (bytes >= 1000 && u < 5) {
        bytes /= 1000;
        u++;
    }
    snprintf(out, cap, u ? "%.1f %s" : "%.0f %s", bytes, unit[u]);
}

int setup_check_memory(const char *label, double need, const char *what, const char *keys, I2vError *e) {
    double have = setup_machine_memory();
    if (have <= 0 || need <= have) return 0;
    char a[32], b[32];
    setup_format_bytes(need, a, sizeof a);
    setup_format_bytes(have, b, sizeof b);
    return err_set(e, "%s: this run needs %s (%s) but the machine has %s; reduce %s", label, a, what, b, keys);
}

const ConfigField *setup_stage_fields(StageKind kind, int *n) {
    switch (kind) {
    case STAGE1: *n = COUNT(stage1_fields); return stage1_fields;
    case STAGE_COND_AE: *n = COUNT(cond_ae_fields); return cond_ae_fields;
    case STAGE2: *n = COUNT(stage2_fields); return stage2_fields;
    }
    *n = 0;
    return NULL;
}

/* Binds the stage's table, the Data table and the ignored keys; then checks for unknown keys. */
static int bind_all(StageKind kind, Config *cfg, StageSetup *out, I2vError *e) {
    int rc = 0;
    if (kind == STAGE1) rc = config_bind(cfg, stage1_fields, COUNT(stage1_fields), &out->s1, e);
    if (kind == STAGE_COND_AE) rc = config_bind(cfg, cond_ae_fields, COUNT(cond_ae_fields), &out->cond_ae, e);
    if (kind == STAGE2) rc = config_bind(cfg, stage2_fields, COUNT(stage2_fields), &out->s2, e);
    if (!rc && kind != STAGE_COND_AE) rc = config_bind(cfg, monitor_fields, COUNT(monitor_fields), out, e);
    if (!rc) rc = config_bind(cfg, data_fields, COUNT(data_fields), &out->data, e);
    if (!rc) rc = config_bind(cfg, ignored_fields, COUNT(ignored_fields), NULL, e);
    if (!rc) rc = config_check_unused(cfg, e);
    if (!rc) rc = check_bounds(kind, out, cfg->path, e);
    if (!rc && kind == STAGE1) rc = stage1_config_check(&out->s1, e);
    if (!rc && kind == STAGE_COND_AE) {
        cond_ae_net_resolve(&out->cond_ae.AE);
        rc = cond_ae_config_check(&out->cond_ae, e);
    }
    if (!rc) rc = data_config_check(&out->data, e);
    if (!rc) out->yaml = setup_to_yaml(kind, out);
    if (rc && e && strncmp(e->msg, cfg->path, strlen(cfg->path))) {   /* the checks' messages: say which config */
        I2vError inner = *e;
        err_set(e, "%s: %s", cfg->path, inner.msg);
    }
    return rc;
}

char *setup_to_yaml(StageKind kind, const StageSetup *s) {
    Config eff;
    config_new(&eff, "effective config");
    if (kind == STAGE1) config_add_struct(&eff, stage1_fields, COUNT(stage1_fields), &s->s1);
    if (kind == STAGE_COND_AE) config_add_struct(&eff, cond_ae_fields, COUNT(cond_ae_fields), &s->cond_ae);
    if (kind == STAGE2) config_add_struct(&eff, stage2_fields, COUNT(stage2_fields), &s->s2);
    if (kind != STAGE_COND_AE) config_add_struct(&eff, monitor_fields, COUNT(monitor_fields), s);
    config_add_struct(&eff, data_fields, COUNT(data_fields), &s->data);
    char *yaml = config_to_yaml(&eff);
    config_free(&eff);
    return yaml;
}

int setup_load(StageKind kind, const char *name_or_path, int noverrides, char *const *overrides, StageSetup *out,
               I2vError *e) {
    char path[DATA_PATH_MAX];
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

int setup_override(StageKind kind, StageSetup *s, int noverrides, char *const *overrides, const char *label,
                   I2vError *e) {
    Config cfg;
    if (config_parse(&cfg, s->yaml, label, e)) return -1;
    for (int i = 0; i < noverrides; i++)
        if (config_override(&cfg, overrides[i], e)) {
            config_free(&cfg);
            return -1;
        }
    StageSetup out;
    defaults(kind, &out);
    int rc = bind_all(kind, &cfg, &out, e);
    config_free(&cfg);
    if (rc) {
        setup_free(&out);
        return -1;
    }
    setup_free(s);
    *s = out;
    return 0;
}

void setup_free(StageSetup *s) {
    free(s->yaml);
    s->yaml = NULL;
}
