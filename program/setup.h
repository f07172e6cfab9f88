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
#include "networks/patchgan.h"

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
    CondAeConfig cond_ae;
    Stage2Config s2;
    DataConfig data;
    /* i2v key Training.fvd_weights of the stage-1 and cINN configs: the training-time FVD monitor's
     * network file ('' = off), the config's spelling of --fvd-weights (the option wins); which network
     * it must be is the stage-1 config's Training.FVD */
    char fvd_weights[1024];
    char *yaml;
} StageSetup;

typedef enum StageKind { STAGE1 = 1, STAGE_COND_AE = 2, STAGE2 = 3 } StageKind;

/* name_or_path: a YAML file, or a built-in name. overrides: "Section.key=value" strings. Checks the
 * result (networks buildable, data config valid). */
int setup_load(StageKind kind, const char *name_or_path, int noverrides, char *const *overrides, StageSetup *out,
               I2vError *e);
void setup_free(StageSetup *s);
/* The binding table of a stage's own sections (its network, Training, ...; the Data section is bound apart). */
const ConfigField *setup_stage_fields(StageKind kind, int *n);
/* The folder of the built-in configs (configs/ in the working directory, beside the program, in the
 * installed share/i2v/configs, or the source tree's compiled in), or NULL. */
const char *setup_config_root(void);
/* A data config's relative "configs/..." split-list folder (the default) found under that root when the
 * working directory has none. For the DataConfig a data set is opened with, not the saved YAML. */
void setup_resolve_paths(DataConfig *dc);
/* The names setup_load accepts for a kind, for --help texts. */
const char *setup_builtin_names(StageKind kind);
/* The YAML text of the structs in s (for configs built in code, e.g. the demo's); the caller frees it. */
char *setup_to_yaml(StageKind kind, const StageSetup *s);
/* Parses YAML text (e.g. stored in a checkpoint) of a kind. */
int setup_from_yaml(StageKind kind, const char *yaml, const char *label, StageSetup *out, I2vError *e);
/* s with "Section.key=value" overrides applied to its YAML and bound again (checked as setup_load does). */
int setup_override(StageKind kind, StageSetup *s, int noverrides, char *const *overrides, const char *label,
                   I2vError *e);

/* The cINN's configuration from the stage-2 config and the sizes of the other two stages: Z the stage-1
 * latent, E the conditioning embedding. */
FlowConfig flow_config_of(const Stage2Config *s2, int z_dim, int embed_dim);

/* Memory, checked before anything large is allocated. setup_parameters: the trainable parameters of the
 * stage's networks as configured (declared, nothing allocated; the cINN's from its layer sizes, with the
 * other stages' z_dim and embed_dim), and in *keys the config keys that size the largest network.
 * setup_check_memory: an error when need bytes (made of `what`) exceed the machine's physical memory,
 * naming the keys to reduce. */
double setup_parameters(StageKind kind, const StageSetup *s, int z_dim, int embed_dim, const char **keys);
int setup_check_memory(const char *label, double need, const char *what, const char *keys, I2vError *e);
double setup_machine_memory(void);   /* bytes (0: unknown) */
void setup_format_bytes(double bytes, char *out, size_t cap);   /* "17.2 GB" */

#endif
