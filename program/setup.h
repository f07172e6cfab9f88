/* setup.h: how the program turns config files into the structs of each stage.
 *
 * Each stage has a binding table from the official YAML keys to its struct (ae.h, cond_ae.h, data.h and the
 * Stage2Config below), including the keys the official code reads but i2v does not need (listed as
 * ignored, so they are accepted) and a few i2v keys that the official files do not have (reduced widths
 * for CPU configs, the synthetic data set's knobs). A config is named either by a file path or by a
 * built-in name (bair, iper, landscape, dtdb_<texture>, small, tiny, demo); overrides `Section.key=value`
 * apply on top; unknown keys are rejected by name. The effective config is kept as YAML text, saved in the
 * model folder and in every checkpoint. */
#ifndef I2V_SETUP_H
#define I2V_SETUP_H

#include "ae.h"
#include "networks/cond_ae.h"
#include "program/config.h"
#include "data.h"
#include "flow.h"

/* the stage2_cINN/configs files */
typedef struct Stage2Config {
    struct {
        int n_flows;                    /* 20 */
        int flow_hidden_depth;          /* 2 */
        int flow_mid_channels_factor;   /* 8: hidden width = factor * the stage-1 z_dim */
    } Flow;
    struct {
        int z_dim;                      /* E: the conditioning AE's latent size */
        char checkpoint_name[128], model_name[256], model_path[1024];
    } Conditioning_Model;
    struct {
        char checkpoint_encoder[128], checkpoint_decoder[128], model_name[256], model_path[1024];
    } First_stage_model;
    struct {
        int n_epochs;
        double lr;
        int workers, bs, bs_eval;
        int control;                    /* BAIR end-point control */
        int verbose_idx;
        double weight_decay;
        double gamma;                   /* StepLR */
        int step_size;
        double beta1, beta2;
        int amsgrad;
        int official_logdet;            /* i2v key: report the official log-determinant (flow.h) */
    } Training;
} Stage2Config;

Stage2Config stage2_config_bair(void);

/* A loaded config: the stage's struct, the data set's, and the effective YAML text (caller frees). */
typedef struct StageSetup {
    Stage1Config s1;
    CondAeConfig ae;
    Stage2Config s2;
    DataConfig data;
    char *yaml;
} StageSetup;

typedef enum StageKind { STAGE1 = 1, STAGE_AE = 2, STAGE2 = 3 } StageKind;

/* name_or_path: a YAML file, or a built-in name. overrides: "Section.key=value" strings. Checks the
 * result (networks buildable, data config valid). */
int setup_load(StageKind kind, const char *name_or_path, int noverrides, char *const *overrides, StageSetup *out,
               I2vError *e);
void setup_free(StageSetup *s);
/* The binding table of a stage's own sections (its network, Training, ...; the Data section is bound apart). */
const ConfigField *setup_stage_fields(StageKind kind, int *n);
/* The names setup_load accepts for a kind, for --help texts. */
const char *setup_builtin_names(StageKind kind);
/* The YAML text of the structs in s (for configs built in code, e.g. the demo's); the caller frees it. */
char *setup_to_yaml(StageKind kind, const StageSetup *s);
/* Parses YAML text (e.g. stored in a checkpoint) of a kind. */
int setup_from_yaml(StageKind kind, const char *yaml, const char *label, StageSetup *out, I2vError *e);

#endif
