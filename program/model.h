/* model.h: the model folder, and the trained model used for inference (get_model.py Model): the stage-1
 * generator and encoder, the conditioning encoder and the cINN, and what they do together: sample videos
 * from a start frame, drive them to an end point (control), transfer motion. Dimension legend: N batch,
 * T frames, S image size, Z stage-1 latent size, E condition width.
 *
 * A model folder holds, per stage, a checkpoint (weights under their official names with a prefix per
 * network, and the training state) and the config that made it, named as the official code names them
 * where it can:
 *     config_stage1.yaml     stage1.safetensors      (enc. gen. disc_t. disc_s.)
 *     config_stage2_AE.yaml  cond_ae.safetensors     (enc. dec. disc.)
 *     config_stage2.yaml     cinn.safetensors        (flow.)
 * so `i2v sample --model DIR` needs only the folder. A cINN trained on the frozen stages of another folder
 * names that folder in its config, as the official configs do: First_stage_model.model_path + model_name
 * for stage 1, Conditioning_Model.model_path + model_name for the conditioning autoencoder. The folder's
 * own files come first; the named folder is read when the folder lacks that stage. */
#ifndef I2V_MODEL_H
#define I2V_MODEL_H

#include "ae.h"
#include "networks/cond_ae.h"
#include "flow.h"
#include "program/setup.h"

#define STAGE1_FILE "stage1.safetensors"
#define STAGE1_CONFIG "config_stage1.yaml"
#define COND_AE_FILE "cond_ae.safetensors"
#define COND_AE_CONFIG "config_stage2_AE.yaml"
#define CINN_FILE "cinn.safetensors"
#define CINN_CONFIG "config_stage2.yaml"

typedef struct Model {
    StageSetup s1, cond_ae, s2;  /* the configs the stages were trained with */
    int has_gen, has_enc, has_cond, has_flow;
    Generator gen;
    VideoEncoder enc;
    CondEncoder cond;
    Flow flow;
    int size;                    /* S */
    int frames;                  /* frames the generator makes (16 for the paper's configs) */
    int z_dim, embed_dim;        /* Z, E */
    Ctx ctx;                     /* no-grad, eval mode */
} Model;

enum { MODEL_GEN = 1, MODEL_ENC = 2, MODEL_COND = 4, MODEL_FLOW = 8, MODEL_ALL = 15 };

/* Loads the parts asked for from the folder; cinn_file / cinn_config choose the cINN (NULL: the defaults
 * above), e.g. a second, controlled cINN in the same folder; an absolute path is taken as it is. Stage 1
 * and the conditioning autoencoder come from the folder, or from the folders its cINN config names when
 * the folder has no such stage. Errors name the file and what is wrong. */
int model_load(Model *m, const char *dir, int parts, const char *cinn_file, const char *cinn_config, I2vError *e);
/* Loads stage-1 parts (MODEL_GEN, MODEL_ENC) from stage1_dir and MODEL_COND from cond_ae_dir (no cINN): the
 * frozen networks a cINN trains on. */
int model_load_stages(Model *m, const char *stage1_dir, const char *cond_ae_dir, int parts, I2vError *e);
/* path = name when it is absolute, else dir/name. */
int model_path(char *path, size_t cap, const char *dir, const char *name, I2vError *e);
/* The folder stage 1 (kind STAGE1) or the conditioning autoencoder (STAGE_COND_AE) of a cINN config lives
 * in by the official keys (model_path + model_name), or "" when the config names none. */
void model_stage_ref(const Stage2Config *s2, StageKind kind, char *dir, size_t cap);
void model_free(Model *m);

/* e = Enc_cond(x0).mean: x0 (n, 3, S, S) -> out (n, E) */
void model_embed(Model *m, const real *x0, int n, real *out);
/* The condition of the cINN: e, followed in control mode by the one-hot of each clip's end point. */
void model_condition(Model *m, const real *x0, const double *control, int n, real *out);
/* The stage-1 posterior of clips (n, T, 3, S, S) whose frames 1..T-1 are encoded: its mean, or a sample
 * drawn from rng when rng is not NULL. z (n, Z). */
void model_encode(Model *m, const real *clips, int n, int T, Rng *rng, real *z);
/* video (n, frames, 3, S, S) = Gen(x0, z); longer videos than the generator makes are continued by
 * re-conditioning on the last frame with the same z, as Model.forward does (without its batch slicing). */
void model_decode(Model *m, const real *x0, const real *z, int n, int frames, real *video);
/* z = cINN^-1(nu | cond): nu (n, Z) given, or drawn as temperature * N(0, I) from rng when nu is NULL. */
void model_invert(Model *m, const real *cond, int n, const real *nu, double temperature, Rng *rng, real *z);
/* nu = cINN(z | cond) (transfer's first half). */
void model_residual(Model *m, const real *z, const real *cond, int n, real *nu);

/* Writes videos (n, T, 3, H, W) in [-1, 1] side by side (cols per row) as a looping GIF. */
int write_video_gif(const char *path, const real *videos, size_t n, size_t T, size_t H, size_t W, size_t cols,
                    I2vError *e);
/* Reads a start image (PNG, JPEG, PPM) and resizes it to S x S as the official scripts do (bilinear,
 * align_corners False, no antialiasing): out (3, S, S) in [-1, 1]. */
int read_start_image(const char *path, int S, real *out, I2vError *e);

#endif
