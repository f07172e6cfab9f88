/* test_ae.c: stage 1 (ae.c). Configs; output shapes and parameter counts at the BAIR and landscape configs
 * (dry runs, nothing allocated); state-dict names, order and shapes of the official modules; finite-difference
 * gradients of the blocks and the tiny networks; the temporal discriminator's tangent and the gradient
 * penalty's parameter gradient against finite differences of the penalty; spectral norm's modes; the
 * orthogonal initialiser; agreement with the official modules (tests/data/ae_reference.safetensors, written by
 * tools/make_ae_reference.py); loading by official names; the training step; and (not in quick mode) that
 * stage 1 learns to reconstruct synthetic videos. */
#include <math.h>

#include "compare.h"
#include "ae.h"
#include "data.h"
#include "kernels/threads.h"
#include "gradcheck.h"
#include "held_out.h"
#include "kernels/norm.h"
#include "ops/norm.h"
#include "formats/safetensors.h"

static Rng rng;

static Tensor *rand_tensor(int ndim, const int *shape, double lo, double hi) {
    Tensor *t = tensor_alloc(ndim, shape);
    tensor_fill_uniform(t, &rng, lo, hi);
    return t;
}

/* An arena copy of a persistent tensor (inputs of a network call inside a context). */
static Tensor *arena_copy(Ctx *c, const Tensor *x) {
    Tensor *t = tensor_new(c, x->ndim, x->shape);
    if (t->data) tensor_copy_data(t, x);
    return t;
}

/* Moves every GroupNorm affine pair and every bias away from its initial value, so that a mix-up of
 * parameters cannot hide behind weight 1 / bias 0. */
static void perturb_affine(ParamSet *ps) {
    for (int i = 0; i < ps->n; i++) {
        Tensor *t = ps->t[i];
        if (!t->is_param || t->ndim != 1) continue;
        size_t len = strlen(t->name);
        int is_weight = len > 7 && !strcmp(t->name + len - 7, ".weight");
        for (size_t j = 0; j < t->numel; j++)
            t->data[j] = (real)((is_weight ? 1 : 0) + 0.3 * (rng_uniform(&rng) * 2 - 1));
    }
}

/* ---- configs ---------------------------------------------------------------------------------------------- */
static void test_configs(void) {
    const char *names[] = {"bair", "iper", "landscape", "dtdb_clouds", "dtdb_fire", "dtdb_vegetation",
                           "dtdb_waterfall", "small", "tiny"};
    I2vError err;
    for (int i = 0; i < 9; i++) {
        Stage1Config c;
        int ok = stage1_config_named(names[i], &c, &err) == 0 && stage1_config_check(&c, &err) == 0;
        check(ok, "config %s is valid: %s", names[i], ok ? "" : err.msg);
    }
    Stage1Config c;
    check(stage1_config_named("bar", &c, &err) < 0 && strstr(err.msg, "landscape"),
          "an unknown config name lists the names");
    Stage1Config b = stage1_config_bair(), ip = stage1_config_iper(), l = stage1_config_landscape(),
                 d = stage1_config_dtdb("fire"), s = stage1_config_small();
    check(b.Training.w_percep == 30 && b.Training.w_recon == 10 && b.Training.w_kl == 1e-5 && b.Training.w_GP == 10 &&
              b.Training.w_fmap_t == 10 && b.Training.n_epochs == 55 && b.Training.bs == 10 &&
              b.Training.subsample_length == 12 && b.Training.pretrain == 1 && b.Training.lr == 2e-4 &&
              b.Training.weight_decay == 1e-5 && b.Training.lr_gamma == 0.98,
          "BAIR training keys as bair_config.yaml");
    check(ip.Training.w_percep == 40 && ip.Training.w_kl == 1e-4 && ip.Training.n_epochs == 100,
          "iPER differs in w_percep, w_kl, n_epochs");
    check(l.Training.w_recon == 20 && l.Training.w_kl == 1e-6 && l.Training.bs == 7 && l.Decoder.channel_factor == 32 &&
              l.Encoder.channels[2] == 128 && l.Encoder.stride_s[0] == 2 && l.Discriminator_Temporal.stride_s[1] == 2 &&
              l.Data.img_size == 128 && !strcmp(l.Training.FVD, "DTFVD"),
          "landscape keys as landscape_config.yaml");
    check(d.Encoder.channels[1] == 64 && d.Training.n_epochs == 60 && d.Training.w_recon == 10, "DTDB keys");
    check(decoder_frames(&b.Decoder) == 16 && decoder_size(&b.Decoder) == 64 && decoder_size(&l.Decoder) == 128 &&
              decoder_frames(&s.Decoder) == 8 && decoder_size(&s.Decoder) == 32,
          "generator frame counts and sizes");
    check(s.Decoder.channel_factor == 16 && s.Encoder.channels[0] == 16 && s.Encoder.channels[1] == 32 &&
              s.Encoder.channels[4] == 64 && s.Training.w_percep == 0,
          "small config: nf 16, encoder 16,32,64,64,64, no perceptual loss");
    /* errors name the key */
    Stage1Config bad = stage1_config_small();
    bad.Encoder.stride_s[3] = 2;
    check(stage1_config_check(&bad, &err) < 0 && strstr(err.msg, "Encoder"), "a wrong encoder geometry is reported: %s",
          err.msg);
    bad = stage1_config_small();
    bad.Encoder.stride_s[1] = 1;   /* stage 1: 32 -> 64 still has its shortcut, but the heads see 8x8 */
    check(stage1_config_check(&bad, &err) < 0 && strstr(err.msg, "4x4"), "heads that are not 4x4 are reported");
    bad = stage1_config_bair();
    bad.Encoder.channels[2] = 128;   /* stage 2: 128 -> 128 with stride_s 2 is fine; make stage 1 have no shortcut */
    bad.Encoder.stride_s[1] = 1;
    check(stage1_config_check(&bad, &err) < 0 && strstr(err.msg, "shortcut"),
          "the encoder's shortcut rule is enforced: %s", err.msg);
    bad = stage1_config_bair();
    bad.Encoder.channels[1] = 120;
    check(stage1_config_check(&bad, &err) < 0 && strstr(err.msg, "Encoder.channels[1]"),
          "GroupNorm divisibility names the key");
    bad = stage1_config_bair();
    bad.Data.img_size = 128;
    check(stage1_config_check(&bad, &err) < 0 && strstr(err.msg, "img_size"), "generator size vs Data.img_size");
    bad = stage1_config_bair();
    snprintf(bad.Encoder.res_type_encoder, sizeof bad.Encoder.res_type_encoder, "resnet50");
    check(stage1_config_check(&bad, &err) < 0 && strstr(err.msg, "res_type_encoder"), "only resnet18 is accepted");
}
static const char *const official_encoder[] = {
    "conv1.weight 64,3,3,7,7", "norm1.weight 64", "norm1.bias 64", "layer.0.0.conv1.weight 128,64,3,3,3",
    "layer.0.0.bn1.weight 128", "layer.0.0.bn1.bias 128", "layer.0.0.conv2.weight 128,128,3,3,3",
    "layer.0.0.bn2.weight 128", "layer.0.0.bn2.bias 128", "layer.0.0.downsample.0.weight 128,64,3,3,3",
    "layer.0.0.downsample.1.weight 128", "layer.0.0.downsample.1.bias 128", "layer.0.1.conv1.weight 128,128,3,3,3",
    "layer.0.1.bn1.weight 128", "layer.0.1.bn1.bias 128", "layer.0.1.conv2.weight 128,128,3,3,3",
    "layer.0.1.bn2.weight 128", "layer.0.1.bn2.bias 128", "layer.1.0.conv1.weight 256,128,3,3,3",
    "layer.1.0.bn1.weight 256", "layer.1.0.bn1.bias 256", "layer.1.0.conv2.weight 256,256,3,3,3",
    "layer.1.0.bn2.weight 256", "layer.1.0.bn2.bias 256", "layer.1.0.downsample.0.weight 256,128,3,3,3",
    "layer.1.0.downsample.1.weight 256", "layer.1.0.downsample.1.bias 256", "layer.1.1.conv1.weight 256,256,3,3,3",
    "layer.1.1.bn1.weight 256", "layer.1.1.bn1.bias 256", "layer.1.1.conv2.weight 256,256,3,3,3",
    "layer.1.1.bn2.weight 256", "layer.1.1.bn2.bias 256", "layer.2.0.conv1.weight 512,256,3,3,3",
    "layer.2.0.bn1.weight 512", "layer.2.0.bn1.bias 512", "layer.2.0.conv2.weight 512,512,3,3,3",
    "layer.2.0.bn2.weight 512", "layer.2.0.bn2.bias 512", "layer.2.0.downsample.0.weight 512,256,3,3,3",
    "layer.2.0.downsample.1.weight 512", "layer.2.0.downsample.1.bias 512", "layer.2.1.conv1.weight 512,512,3,3,3",
    "layer.2.1.bn1.weight 512", "layer.2.1.bn1.bias 512", "layer.2.1.conv2.weight 512,512,3,3,3",
    "layer.2.1.bn2.weight 512", "layer.2.1.bn2.bias 512", "layer.3.0.conv1.weight 512,512,3,3,3",
    "layer.3.0.bn1.weight 512", "layer.3.0.bn1.bias 512", "layer.3.0.conv2.weight 512,512,3,3,3",
    "layer.3.0.bn2.weight 512", "layer.3.0.bn2.bias 512", "layer.3.0.downsample.0.weight 512,512,3,3,3",
    "layer.3.0.downsample.1.weight 512", "layer.3.0.downsample.1.bias 512", "layer.3.1.conv1.weight 512,512,3,3,3",
    "layer.3.1.bn1.weight 512", "layer.3.1.bn1.bias 512", "layer.3.1.conv2.weight 512,512,3,3,3",
    "layer.3.1.bn2.weight 512", "layer.3.1.bn2.bias 512", "conv_mu.weight 64,512,4,4", "conv_mu.bias 64",
    "conv_var.weight 64,512,4,4", "conv_var.bias 64",
};
static const char *const official_generator[] = {
    "fc.weight 16384,64", "fc.bias 16384", "head_0.conv_0.bias 1024", "head_0.conv_0.weight_orig 1024,1024,3,3,3",
    "head_0.conv_0.weight_u 1024 buffer", "head_0.conv_0.weight_v 27648 buffer", "head_0.conv_1.bias 1024",
    "head_0.conv_1.weight_orig 1024,1024,3,3,3", "head_0.conv_1.weight_u 1024 buffer",
    "head_0.conv_1.weight_v 27648 buffer", "head_0.norm_0.conv.weight 128,3,3,3", "head_0.norm_0.conv.bias 128",
    "head_0.norm_0.conv_gamma.weight 1024,128,3,3", "head_0.norm_0.conv_gamma.bias 1024",
    "head_0.norm_0.conv_beta.weight 1024,128,3,3", "head_0.norm_0.conv_beta.bias 1024",
    "head_0.norm_1.linear.weight 2048,64", "head_0.norm_1.linear.bias 2048", "g_0.conv_0.bias 1024",
    "g_0.conv_0.weight_orig 1024,1024,3,3,3", "g_0.conv_0.weight_u 1024 buffer", "g_0.conv_0.weight_v 27648 buffer",
    "g_0.conv_1.bias 1024", "g_0.conv_1.weight_orig 1024,1024,3,3,3", "g_0.conv_1.weight_u 1024 buffer",
    "g_0.conv_1.weight_v 27648 buffer", "g_0.norm_0.conv.weight 128,3,3,3", "g_0.norm_0.conv.bias 128",
    "g_0.norm_0.conv_gamma.weight 1024,128,3,3", "g_0.norm_0.conv_gamma.bias 1024",
    "g_0.norm_0.conv_beta.weight 1024,128,3,3", "g_0.norm_0.conv_beta.bias 1024",
    "g_0.norm_1.linear.weight 2048,64", "g_0.norm_1.linear.bias 2048", "g_1.conv_0.bias 512",
    "g_1.conv_0.weight_orig 512,1024,3,3,3", "g_1.conv_0.weight_u 512 buffer", "g_1.conv_0.weight_v 27648 buffer",
    "g_1.conv_1.bias 512", "g_1.conv_1.weight_orig 512,512,3,3,3", "g_1.conv_1.weight_u 512 buffer",
    "g_1.conv_1.weight_v 13824 buffer", "g_1.conv_s.weight_orig 512,1024,1,1,1", "g_1.conv_s.weight_u 512 buffer",
    "g_1.conv_s.weight_v 1024 buffer", "g_1.norm_0.conv.weight 128,3,3,3", "g_1.norm_0.conv.bias 128",
    "g_1.norm_0.conv_gamma.weight 1024,128,3,3", "g_1.norm_0.conv_gamma.bias 1024",
    "g_1.norm_0.conv_beta.weight 1024,128,3,3", "g_1.norm_0.conv_beta.bias 1024",
    "g_1.norm_1.linear.weight 1024,64", "g_1.norm_1.linear.bias 1024", "g_1.norm_s.bn.weight 1024",
    "g_1.norm_s.bn.bias 1024", "g_2.conv_0.bias 256", "g_2.conv_0.weight_orig 256,512,3,3,3",
    "g_2.conv_0.weight_u 256 buffer", "g_2.conv_0.weight_v 13824 buffer", "g_2.conv_1.bias 256",
    "g_2.conv_1.weight_orig 256,256,3,3,3", "g_2.conv_1.weight_u 256 buffer", "g_2.conv_1.weight_v 6912 buffer",
    "g_2.conv_s.weight_orig 256,512,1,1,1", "g_2.conv_s.weight_u 256 buffer", "g_2.conv_s.weight_v 512 buffer",
    "g_2.norm_0.conv.weight 128,3,3,3", "g_2.norm_0.conv.bias 128", "g_2.norm_0.conv_gamma.weight 512,128,3,3",
    "g_2.norm_0.conv_gamma.bias 512", "g_2.norm_0.conv_beta.weight 512,128,3,3", "g_2.norm_0.conv_beta.bias 512",
    "g_2.norm_1.linear.weight 512,64", "g_2.norm_1.linear.bias 512", "g_2.norm_s.bn.weight 512",
    "g_2.norm_s.bn.bias 512", "g_3.conv_0.bias 128", "g_3.conv_0.weight_orig 128,256,3,3,3",
    "g_3.conv_0.weight_u 128 buffer", "g_3.conv_0.weight_v 6912 buffer", "g_3.conv_1.bias 128",
    "g_3.conv_1.weight_orig 128,128,3,3,3", "g_3.conv_1.weight_u 128 buffer", "g_3.conv_1.weight_v 3456 buffer",
    "g_3.conv_s.weight_orig 128,256,1,1,1", "g_3.conv_s.weight_u 128 buffer", "g_3.conv_s.weight_v 256 buffer",
    "g_3.norm_0.conv.weight 128,3,3,3", "g_3.norm_0.conv.bias 128", "g_3.norm_0.conv_gamma.weight 256,128,3,3",
    "g_3.norm_0.conv_gamma.bias 256", "g_3.norm_0.conv_beta.weight 256,128,3,3", "g_3.norm_0.conv_beta.bias 256",
    "g_3.norm_1.linear.weight 256,64", "g_3.norm_1.linear.bias 256", "g_3.norm_s.bn.weight 256",
    "g_3.norm_s.bn.bias 256", "g_4.conv_0.bias 64", "g_4.conv_0.weight_orig 64,128,3,3,3",
    "g_4.conv_0.weight_u 64 buffer", "g_4.conv_0.weight_v 3456 buffer", "g_4.conv_1.bias 64",
    "g_4.conv_1.weight_orig 64,64,3,3,3", "g_4.conv_1.weight_u 64 buffer", "g_4.conv_1.weight_v 1728 buffer",
    "g_4.conv_s.weight_orig 64,128,1,1,1", "g_4.conv_s.weight_u 64 buffer", "g_4.conv_s.weight_v 128 buffer",
    "g_4.norm_0.conv.weight 128,3,3,3", "g_4.norm_0.conv.bias 128", "g_4.norm_0.conv_gamma.weight 128,128,3,3",
    "g_4.norm_0.conv_gamma.bias 128", "g_4.norm_0.conv_beta.weight 128,128,3,3", "g_4.norm_0.conv_beta.bias 128",
    "g_4.norm_1.linear.weight 128,64", "g_4.norm_1.linear.bias 128", "g_4.norm_s.bn.weight 128",
    "g_4.norm_s.bn.bias 128", "conv_img.weight 3,64,3,3,3", "conv_img.bias 3",
};
static const char *const official_disc_t[] = {
    "conv1.weight 64,3,3,7,7", "norm1.weight 64", "norm1.bias 64", "layer.0.0.conv1.weight_orig 64,64,3,3,3",
    "layer.0.0.conv1.weight_u 64 buffer", "layer.0.0.conv1.weight_v 1728 buffer", "layer.0.0.bn1.weight 64",
    "layer.0.0.bn1.bias 64", "layer.0.0.conv2.weight_orig 64,64,3,3,3", "layer.0.0.conv2.weight_u 64 buffer",
    "layer.0.0.conv2.weight_v 1728 buffer", "layer.0.0.bn2.weight 64", "layer.0.0.bn2.bias 64",
    "layer.0.0.downsample.0.weight_orig 64,64,3,3,3", "layer.0.0.downsample.0.weight_u 64 buffer",
    "layer.0.0.downsample.0.weight_v 1728 buffer", "layer.0.0.downsample.1.weight 64",
    "layer.0.0.downsample.1.bias 64", "layer.0.1.conv1.weight 64,64,3,3,3", "layer.0.1.bn1.weight 64",
    "layer.0.1.bn1.bias 64", "layer.0.1.conv2.weight 64,64,3,3,3", "layer.0.1.bn2.weight 64",
    "layer.0.1.bn2.bias 64", "layer.1.0.conv1.weight_orig 128,64,3,3,3", "layer.1.0.conv1.weight_u 128 buffer",
    "layer.1.0.conv1.weight_v 1728 buffer", "layer.1.0.bn1.weight 128", "layer.1.0.bn1.bias 128",
    "layer.1.0.conv2.weight_orig 128,128,3,3,3", "layer.1.0.conv2.weight_u 128 buffer",
    "layer.1.0.conv2.weight_v 3456 buffer", "layer.1.0.bn2.weight 128", "layer.1.0.bn2.bias 128",
    "layer.1.0.downsample.0.weight_orig 128,64,3,3,3", "layer.1.0.downsample.0.weight_u 128 buffer",
    "layer.1.0.downsample.0.weight_v 1728 buffer", "layer.1.0.downsample.1.weight 128",
    "layer.1.0.downsample.1.bias 128", "layer.1.1.conv1.weight 128,128,3,3,3", "layer.1.1.bn1.weight 128",
    "layer.1.1.bn1.bias 128", "layer.1.1.conv2.weight 128,128,3,3,3", "layer.1.1.bn2.weight 128",
    "layer.1.1.bn2.bias 128", "layer.2.0.conv1.weight_orig 256,128,3,3,3", "layer.2.0.conv1.weight_u 256 buffer",
    "layer.2.0.conv1.weight_v 3456 buffer", "layer.2.0.bn1.weight 256", "layer.2.0.bn1.bias 256",
    "layer.2.0.conv2.weight_orig 256,256,3,3,3", "layer.2.0.conv2.weight_u 256 buffer",
    "layer.2.0.conv2.weight_v 6912 buffer", "layer.2.0.bn2.weight 256", "layer.2.0.bn2.bias 256",
    "layer.2.0.downsample.0.weight_orig 256,128,3,3,3", "layer.2.0.downsample.0.weight_u 256 buffer",
    "layer.2.0.downsample.0.weight_v 3456 buffer", "layer.2.0.downsample.1.weight 256",
    "layer.2.0.downsample.1.bias 256", "layer.2.1.conv1.weight 256,256,3,3,3", "layer.2.1.bn1.weight 256",
    "layer.2.1.bn1.bias 256", "layer.2.1.conv2.weight 256,256,3,3,3", "layer.2.1.bn2.weight 256",
    "layer.2.1.bn2.bias 256", "layer.3.0.conv1.weight_orig 512,256,3,3,3", "layer.3.0.conv1.weight_u 512 buffer",
    "layer.3.0.conv1.weight_v 6912 buffer", "layer.3.0.bn1.weight 512", "layer.3.0.bn1.bias 512",
    "layer.3.0.conv2.weight_orig 512,512,3,3,3", "layer.3.0.conv2.weight_u 512 buffer",
    "layer.3.0.conv2.weight_v 13824 buffer", "layer.3.0.bn2.weight 512", "layer.3.0.bn2.bias 512",
    "layer.3.0.downsample.0.weight_orig 512,256,3,3,3", "layer.3.0.downsample.0.weight_u 512 buffer",
    "layer.3.0.downsample.0.weight_v 6912 buffer", "layer.3.0.downsample.1.weight 512",
    "layer.3.0.downsample.1.bias 512", "layer.3.1.conv1.weight 512,512,3,3,3", "layer.3.1.bn1.weight 512",
    "layer.3.1.bn1.bias 512", "layer.3.1.conv2.weight 512,512,3,3,3", "layer.3.1.bn2.weight 512",
    "layer.3.1.bn2.bias 512", "fc.weight 1,512",
};

/* Compares a ParamSet with a table of "name d0,d1,... [buffer]" entries: names, order, shapes and kinds. */
static int matches_table(const ParamSet *ps, const char *const *want, int n, const char *what) {
    int ok = ps->n == n;
    if (!ok) printf("  %s: %d entries, want %d\n", what, ps->n, n);
    for (int i = 0; i < n && i < ps->n; i++) {
        const Tensor *t = ps->t[i];
        char got[256], shape[96];
        size_t k = 0;
        for (int d = 0; d < t->ndim; d++)
            k += (size_t)snprintf(shape + k, sizeof shape - k, d ? ",%d" : "%d", t->shape[d]);
        if (t->ndim == 0) shape[0] = 0;
        snprintf(got, sizeof got, "%s %s%s", t->name, shape, t->is_param ? "" : " buffer");
        if (strcmp(got, want[i])) {
            if (ok) printf("  %s entry %d: '%s', want '%s'\n", what, i, got, want[i]);
            ok = 0;
        }
    }
    return ok;
}

static void test_state_dicts(void) {
    Stage1Config b = stage1_config_bair();
    VideoEncoder e;
    Generator g;
    TemporalDisc d;
    video_encoder_declare(&e, &b.Encoder);
    generator_declare(&g, &b.Decoder);
    disc_t_declare(&d, &b.Discriminator_Temporal);
    int n1 = (int)(sizeof official_encoder / sizeof *official_encoder),
        n2 = (int)(sizeof official_generator / sizeof *official_generator),
        n3 = (int)(sizeof official_disc_t / sizeof *official_disc_t);
    check(matches_table(&e.ps, official_encoder, n1, "Encoder"),
          "encoder state dict = the official one (67 entries, order, shapes)");
    check(matches_table(&g.ps, official_generator, n2, "Generator"), "generator state dict = the official one (120 entries)");
    check(matches_table(&d.ps, official_disc_t, n3, "Discriminator"),
          "temporal discriminator state dict = the official one (88 entries)");
    video_encoder_free(&e);
    generator_free(&g);
    disc_t_free(&d);
}

/* Shapes at full size in a dry run without gradients: only headers are allocated, no parameter or activation
 * data. */
static void test_shapes_and_counts(int landscape) {
    Stage1Config cfg = landscape ? stage1_config_landscape() : stage1_config_bair();
    const char *name = landscape ? "landscape" : "BAIR";
    int S = cfg.Data.img_size, N = 2;
    double t0 = now_seconds();
    VideoEncoder e;
    Generator g;
    TemporalDisc d;
    video_encoder_declare(&e, &cfg.Encoder);
    generator_declare(&g, &cfg.Decoder);
    disc_t_declare(&d, &cfg.Discriminator_Temporal);
    size_t ne = paramset_count(&e.ps), ng = paramset_count(&g.ps), nd = paramset_count(&d.ps);
    if (landscape)
        check(ne == 40458048 && ng == 40868003 && nd == 37750336,
              "landscape parameter counts 40,458,048 / 40,868,003 / 37,750,336 (%zu / %zu / %zu)", ne, ng, nd);
    else
        check(ne == 73639488 && ng == 152786243 && nd == 37750336,
              "BAIR parameter counts 73,639,488 / 152,786,243 / 37,750,336 (%zu / %zu / %zu)", ne, ng, nd);
    Ctx c;
    ctx_init(&c);
    c.dry = 1;
    c.grad_enabled = 0;
    Tensor *x = tensor_new(&c, 5, DIMS(N, 3, 16, S, S));
    Tensor *mu, *logvar;
    video_encoder_forward(&c, &e, x, &mu, &logvar);
    Tensor *z = video_encoder_sample(&c, mu, logvar, &rng);
    check(mu->ndim == 2 && mu->shape[0] == N && mu->shape[1] == 64 && shape_equal(mu, logvar) && shape_equal(z, mu),
          "%s encoder: (2, 3, 16, %d, %d) -> mu, logvar, z (2, 64)", name, S, S);
    Tensor *x0 = tensor_new(&c, 4, DIMS(N, 3, S, S));
    Tensor *video = generator_forward(&c, &g, x0, z);
    check(video->ndim == 5 && video->shape[0] == N && video->shape[1] == 16 && video->shape[2] == 3 &&
              video->shape[3] == S && video->shape[4] == S,
          "%s generator: -> (2, 16, 3, %d, %d)", name, S, S);
    Tensor *win = tensor_new(&c, 5, DIMS(N, 3, 12, S, S));
    Tensor *fmap[AE_STAGES];
    Tensor *logits = disc_t_forward(&c, &d, win, fmap, NULL);
    /* the official temporal discriminator's feature maps: (64, 6, 16|32, .) (128, 3, 16, .) (256, 2, 8, .) (512, 1, 4, .) */
    int want[AE_STAGES][3] = {{64, 6, landscape ? 32 : 16}, {128, 3, 16}, {256, 2, 8}, {512, 1, 4}};
    int ok = logits->ndim == 2 && logits->shape[0] == N && logits->shape[1] == 1;
    for (int l = 0; l < AE_STAGES; l++)
        ok &= fmap[l]->shape[1] == want[l][0] && fmap[l]->shape[2] == want[l][1] && fmap[l]->shape[3] == want[l][2] &&
              fmap[l]->shape[4] == want[l][2];
    check(ok, "%s temporal discriminator: logits (2, 1) and the four feature maps of the official module", name);
    check(x->data == NULL && video->data == NULL && e.ps.values == NULL && g.ps.values == NULL,
          "the dry run allocated no data (parameters or activations)");
    double ms = 1e3 * (now_seconds() - t0);
    check(ms < 1000, "%s shapes in %.1f ms", name, ms);
    ctx_free(&c);
    video_encoder_free(&e);
    generator_free(&g);
    disc_t_free(&d);
}

/* ---- finite-difference gradients (double build) ------------------------------------------------------------ */
static void init_convs_default(ParamSet *ps) {
    /* every weight (>= 2-D) U(+-1/sqrt(fan_in)) scaled up, every 1-D parameter perturbed, u, v normalised */
    for (int i = 0; i < ps->n; i++) {
        Tensor *t = ps->t[i];
        if (t->is_param && t->ndim >= 2) {
            double bound = sqrt(3.0 / (double)(t->numel / (size_t)t->shape[0]));
            tensor_fill_uniform(t, &rng, -bound, bound);
        }
    }
    for (int i = 0; i < ps->n; i++) {
        Tensor *t = ps->t[i];
        size_t len = strlen(t->name);
        if (!t->is_param && len > 9 && !strcmp(t->name + len - 9, ".weight_u")) {
            Tensor *v = ps->t[i + 1];
            spectral_norm_init_uv(t, v, &rng);
        }
    }
    perturb_affine(ps);
}

static Tensor *basic_block_fn(Ctx *c, Tensor **in, void *user) { return basic_block_forward(c, user, in[0], NULL); }

/* resnet3D.py BasicBlock: the encoder's (no spectral norm) and the discriminator's first block (spectral norm
 * on conv1, conv2 and the shortcut, u and v held fixed: eval mode), with a strided projection shortcut, and
 * an identity block. */
static void test_basic_block_grads(void) {
    for (int variant = 0; variant < 3; variant++) {
        int sn = variant == 1, down = variant < 2;
        ParamSet ps;
        paramset_init(&ps);
        BasicBlock b;
        int in_ch = 4, out_ch = down ? 6 : 4;
        basic_block_declare(&b, &ps, "blk", in_ch, out_ch, down ? 2 : 1, down ? 2 : 1, down, sn, sn, 2);
        paramset_alloc(&ps);
        init_convs_default(&ps);
        Tensor *x = rand_tensor(5, DIMS(2, in_ch, 5, 7, 6), -1, 1);
        Tensor *in[8] = {x, b.conv1.weight, b.bn1.weight, b.bn1.bias, b.conv2.weight, b.bn2.weight};
        int n = 6;
        if (down) {
            in[n++] = b.down.weight;
            in[n++] = b.down_norm.bias;
        }
        const char *names[3] = {"BasicBlock (encoder: projection shortcut, strides 2)",
                                "BasicBlock (discriminator: spectral norm, eval-mode u and v)",
                                "BasicBlock (identity)"};
        gradcheck_mode(names[variant], basic_block_fn, n, in, &b, 30, 0);
        tensor_free(x);
        paramset_free(&ps);
    }
}

typedef struct GenBlockCase {
    GenBlock b;
} GenBlockCase;

static Tensor *gen_block_fn(Ctx *c, Tensor **in, void *user) {
    return gen_block_forward(c, &((GenBlockCase *)user)->b, in[0], in[1], in[2]);
}

/* decoder.py GeneratorBlock with SPADE (on a resized x0) and AdaIN, with a learned shortcut (4 -> 2 channels)
 * and with an identity shortcut. */
static void test_gen_block_grads(void) {
    for (int learned = 1; learned >= 0; learned--) {
        ParamSet ps;
        paramset_init(&ps);
        GenBlockCase gc;
        int n_in = 4, n_out = learned ? 2 : 4;
        gen_block_declare(&gc.b, &ps, "g", n_in, n_out, 3, 1, 2, 5);
        paramset_alloc(&ps);
        init_convs_default(&ps);
        Tensor *x = rand_tensor(5, DIMS(2, n_in, 3, 5, 4), -1, 1);
        Tensor *z = rand_tensor(2, DIMS(2, 3), -1, 1);
        Tensor *x0 = rand_tensor(4, DIMS(2, 3, 7, 6), -1, 1);
        GenBlock *b = &gc.b;
        Tensor *in[14] = {x, z, x0, b->conv_0.weight, b->conv_0.bias, b->conv_1.weight, b->norm_0.conv.weight,
                          b->norm_0.conv_gamma.weight, b->norm_0.conv_beta.bias, b->norm_1.weight, b->norm_1.bias};
        int n = 11;
        if (learned) {
            in[n++] = b->conv_s.weight;
            in[n++] = b->norm_s.weight;
            in[n++] = b->norm_s.bias;
        }
        gradcheck_mode(learned ? "GeneratorBlock (SPADE, AdaIN, learned shortcut, spectral norm)"
                               : "GeneratorBlock (identity shortcut)",
                       gen_block_fn, n, in, &gc, 30, 0);
        tensor_free(x);
        tensor_free(z);
        tensor_free(x0);
        paramset_free(&ps);
    }
}

/* A tiny encoder: (2, 3, 4, 8, 8) -> T 2 -> 2 -> 1 -> 1 -> 1, H 4, widths 4, 4, 8, 8, 8. */
static EncoderConfig tiny_encoder_config(void) {
    EncoderConfig e = stage1_config_tiny().Encoder;
    e.z_dim = 3;
    e.norm_groups = 2;
    const int ch[5] = {4, 4, 8, 8, 8}, st[4] = {1, 2, 1, 1}, ss[4] = {1, 1, 1, 1};
    memcpy(e.channels, ch, sizeof ch);
    memcpy(e.stride_t, st, sizeof st);
    memcpy(e.stride_s, ss, sizeof ss);
    return e;
}

static Tensor *encoder_fn(Ctx *c, Tensor **in, void *user) {
    Tensor *mu, *logvar;
    video_encoder_forward(c, user, in[0], &mu, &logvar);
    Rng r;
    rng_seed(&r, 99);   /* the same eps at every evaluation */
    return video_encoder_sample(c, mu, logvar, &r);
}

/* A tiny generator: nf 1, 2 groups, SPADE width 4, z 3, 8 frames of 32x32. */
static DecoderConfig tiny_decoder_config(void) {
    DecoderConfig d = stage1_config_tiny().Decoder;
    d.channel_factor = 1;
    d.norm_groups = 2;
    d.spade_hidden = 4;
    d.z_dim = 3;
    return d;
}

static Tensor *generator_fn(Ctx *c, Tensor **in, void *user) { return generator_forward(c, user, in[0], in[1]); }

static void test_network_grads(void) {
    if (!is_double_build()) return;
    EncoderConfig ec = tiny_encoder_config();
    VideoEncoder e;
    video_encoder_build(&e, &ec, &rng);
    perturb_affine(&e.ps);
    Tensor *x = rand_tensor(5, DIMS(2, 3, 4, 8, 8), -1, 1);
    Tensor *ein[] = {x, e.conv1.weight, e.norm1.bias, e.layer[1][0].conv1.weight, e.layer[1][0].down.weight,
                     e.layer[1][0].down_norm.weight, e.layer[3][1].bn2.weight, e.conv_mu.weight, e.conv_var.bias};
    gradcheck_mode("whole tiny encoder (z = mu + eps exp(logvar / 2))", encoder_fn, 9, ein, &e, 12, 1);
    tensor_free(x);
    video_encoder_free(&e);

    DecoderConfig dc = tiny_decoder_config();
    Generator g;
    generator_build(&g, &dc, &rng);
    init_convs_default(&g.ps);
    Tensor *x0 = rand_tensor(4, DIMS(2, 3, 32, 32), -1, 1);
    Tensor *z = rand_tensor(2, DIMS(2, 3), -1, 1);
    Tensor *gin[] = {x0, z, g.fc_w, g.blocks[0].conv_0.weight, g.blocks[1].norm_0.conv_gamma.weight,
                     g.blocks[2].conv_s.weight, g.blocks[3].norm_1.weight, g.blocks[5].norm_s.bias, g.conv_img.weight,
                     g.conv_img.bias};
    gradcheck_mode("whole tiny generator (eval-mode spectral norm)", generator_fn, 10, gin, &g, 8, 0);
    tensor_free(x0);
    tensor_free(z);
    generator_free(&g);
}

/* A tiny temporal discriminator: (2, 3, 8, 16, 16) -> stem (4, 8, 8, 8) -> pool (4, 8, 4, 4) -> T 4, 2, 1, 1. */
static DiscTConfig tiny_disc_config(void) {
    DiscTConfig d = stage1_config_tiny().Discriminator_Temporal;
    d.norm_groups = 2;
    const int ch[5] = {4, 4, 6, 8, 8}, st[4] = {2, 2, 2, 2}, ss[4] = {1, 1, 1, 1};
    memcpy(d.channels, ch, sizeof ch);
    memcpy(d.stride_t, st, sizeof st);
    memcpy(d.stride_s, ss, sizeof ss);
    return d;
}

static double disc_logit_sum(TemporalDisc *d, const Tensor *x, double h, const Tensor *v) {
    Ctx c;
    ctx_init(&c);
    c.grad_enabled = 0;
    c.training = 0;
    Tensor *xi = arena_copy(&c, x);
    if (v)
        for (size_t i = 0; i < xi->numel; i++) xi->data[i] += (real)(h * v->data[i]);
    Tensor *lg = disc_t_forward(&c, d, xi, NULL, NULL);
    double s = 0;
    for (size_t i = 0; i < lg->numel; i++) s += lg->data[i] * (i + 1.0);
    ctx_free(&c);
    return s;
}

/* The penalty's value as the official code computes it, u and v fixed (eval mode). */
static double gp_value(TemporalDisc *d, const Tensor *xin) {
    Ctx c;
    ctx_init(&c);
    c.training = 0;
    Tensor *x = arena_copy(&c, xin);
    x->requires_grad = 1;
    DiscTrace tr;
    Tensor *logits = disc_t_forward(&c, d, x, NULL, &tr);
    double gp = disc_t_gradient_penalty(&c, d, x, logits, &tr, NULL);
    ctx_free(&c);
    return gp;
}

/* The tangent pass against central differences of the logits along v, and the penalty's exact parameter
 * gradient against central differences of the penalty itself. */
static void test_tangent_and_penalty(void) {
    if (!is_double_build()) return;
    DiscTConfig dc = tiny_disc_config();
    TemporalDisc d;
    disc_t_build(&d, &dc, &rng);
    perturb_affine(&d.ps);
    Tensor *x = rand_tensor(5, DIMS(2, 3, 8, 16, 16), -1, 1);
    Tensor *v = rand_tensor(5, DIMS(2, 3, 8, 16, 16), -1, 1);
    /* tangent */
    Ctx c;
    ctx_init(&c);
    c.training = 0;
    c.grad_enabled = 0;
    DiscTrace tr;
    Tensor *xa = arena_copy(&c, x);
    disc_t_forward(&c, &d, xa, NULL, &tr);
    Tensor *h = disc_t_tangent(&c, &d, &tr, arena_copy(&c, v));
    double analytic = h->data[0] + 2 * h->data[1];
    double step = 1e-6;
    double numeric = (disc_logit_sum(&d, x, step, v) - disc_logit_sum(&d, x, -step, v)) / (2 * step);
    check(close_enough(analytic, numeric, 1e-7, 1e-6), "temporal discriminator tangent = central difference along v "
          "(%.10g vs %.10g)", analytic, numeric);
    ctx_free(&c);

    /* penalty gradient */
    ctx_init(&c);
    c.training = 0;
    Tensor *xg = arena_copy(&c, x);
    xg->requires_grad = 1;
    Tensor *logits = disc_t_forward(&c, &d, xg, NULL, &tr);
    Tensor *sur;
    double gp = disc_t_gradient_penalty(&c, &d, xg, logits, &tr, &sur);
    check(close_enough(sur->data[0], 2 * gp, 1e-12, 1e-9), "the surrogate's value is 2 GP (%.10g, GP %.10g)",
          sur->data[0], gp);
    paramset_zero_grad(&d.ps);
    backward(&c, sur);
    Tensor *targets[] = {d.conv1.weight, d.norm1.bias, d.layer[0][0].conv1.weight, d.layer[0][0].bn1.weight,
                         d.layer[0][0].down.weight, d.layer[1][0].down_norm.bias, d.layer[1][1].conv2.weight,
                         d.layer[2][0].conv2.weight, d.layer[3][1].bn2.weight, d.fc_w};
    int ok = 1, nt = (int)(sizeof targets / sizeof *targets);
    for (int i = 0; i < nt && ok; i++) {
        Tensor *p = targets[i];
        for (int s = 0; s < 8 && ok; s++) {
            size_t j = rng_below(&rng, (uint32_t)p->numel);
            real keep = p->data[j];
            p->data[j] = keep + (real)1e-6;
            double gpp = gp_value(&d, x);
            p->data[j] = keep - (real)1e-6;
            double gpm = gp_value(&d, x);
            p->data[j] = keep;
            double num = (gpp - gpm) / 2e-6;
            if (!close_enough(p->grad[j], num, 1e-8, 1e-5)) {
                check(0, "penalty gradient %s[%zu]: analytic %.10g, numeric %.10g", p->name, j, p->grad[j], num);
                ok = 0;
            }
        }
    }
    if (ok) check(1, "the gradient penalty's parameter gradient matches finite differences of GP (80 elements)");
    ctx_free(&c);
    tensor_free(x);
    tensor_free(v);
    disc_t_free(&d);
}

/* ---- spectral norm modes ------------------------------------------------------------------------------------ */
/* Eval mode divides by sigma with the stored u, v and leaves them; each training-mode network call runs
 * exactly one power iteration on every spectral-normalised conv. */
static void test_spectral_modes(int layer) {
    DecoderConfig dc = tiny_decoder_config();
    Generator g;
    generator_build(&g, &dc, &rng);
    /* g_1.conv_s normalises its weight; head_0.conv_0 (weight larger than its output) divides its output */
    Conv *l = layer ? &g.blocks[0].conv_0 : &g.blocks[2].conv_s;
    int Cout = l->weight->shape[0];
    size_t K = l->v->numel;
    real *u0 = xmalloc((size_t)Cout * sizeof(real)), *v0 = xmalloc(K * sizeof(real));
    memcpy(u0, l->u->data, (size_t)Cout * sizeof(real));
    memcpy(v0, l->v->data, K * sizeof(real));
    Tensor *x0 = rand_tensor(4, DIMS(1, 3, 32, 32), -1, 1), *z = rand_tensor(2, DIMS(1, 3), -1, 1);
    Ctx c;
    ctx_init(&c);
    c.grad_enabled = 0;
    c.training = 0;
    generator_forward(&c, &g, arena_copy(&c, x0), arena_copy(&c, z));
    check(!memcmp(u0, l->u->data, (size_t)Cout * sizeof(real)) && !memcmp(v0, l->v->data, K * sizeof(real)),
          "eval mode leaves weight_u and weight_v untouched (%s)", l->weight->name);
    /* eval: W = weight_orig / (u . W v) with the stored vectors */
    Tensor *W = conv_weight(&c, l);
    double sigma = spectral_norm_sigma(l->weight, l->u, l->v);
    check(close_enough(W->data[3] * sigma, l->weight->data[3], 1e-6, 1e-5),
          "eval-mode weight = weight_orig / sigma(u, v)");
    ctx_reset(&c);
    c.training = 1;
    for (int call = 1; call <= 2; call++) {
        generator_forward(&c, &g, arena_copy(&c, x0), arena_copy(&c, z));
        spectral_norm_power_iteration(u0, v0, l->weight->data, Cout, K, 1e-12);
        check(max_abs_diff(u0, l->u->data, (size_t)Cout) < 1e-6 && max_abs_diff(v0, l->v->data, K) < 1e-6,
              "%s: training call %d ran exactly %d power iteration(s)", l->weight->name, call, call);
        ctx_reset(&c);
    }
    ctx_free(&c);
    free(u0);
    free(v0);
    tensor_free(x0);
    tensor_free(z);
    generator_free(&g);
}

/* ---- equal to the official modules --------------------------------------------------------------------------- */
static int read_ref(const StFile *f, const char *name, Tensor *dst) {
    I2vError err;
    if (st_read(f, name, dst, &err)) {
        check(0, "%s", err.msg);
        return -1;
    }
    return 0;
}

/* |got - want| <= rtol max|want| over the tensor */
static void check_match(const Tensor *got, const Tensor *want, double rtol, const char *what) {
    double scale = max_abs(want->data, want->numel), err = max_abs_diff(got->data, want->data, want->numel);
    printf("  %s: max error %.3g (scale %.3g)\n", what, err, scale);
    check(shape_equal(got, want) && err <= rtol * scale, "%s: max error %.3g (scale %.3g)", what, err, scale);
}

/* The committed file is float32 (1e-4); a float64 file made with --float64 and named by I2V_AE_REFERENCE checks
 * the double build to 1e-10. */
static void test_official(void) {
    const char *path = getenv("I2V_AE_REFERENCE") ? getenv("I2V_AE_REFERENCE") : "tests/data/ae_reference.safetensors";
    StFile f;
    I2vError err;
    if (st_open(&f, path, &err)) {
        check(0, "%s", err.msg);
        return;
    }
    const char *precision = st_meta_get(&f, "precision");
    int exact = is_double_build() && precision && !strcmp(precision, "float64");
    double rtol = exact ? 1e-10 : 1e-4;        /* outputs, relative to the largest value */
    double grad_rtol = exact ? 1e-10 : 1e-3;   /* the penalty's parameter gradients (second derivatives) */
    double grad_atol = exact ? 1e-15 : 1e-7;
    double uv_tol = exact ? 1e-12 : 1e-5;      /* weight_u, weight_v after the power iteration */
    printf("  reference %s (%s): relative tolerance %.0e\n", path, precision ? precision : "float32", rtol);
    Ctx c;
    ctx_init(&c);
    char name[256];
    /* encoder: channels 4,4,8,12,12, stride_t 1,2,2,2, stride_s 1,1,1,2, z 8, 4 groups */
    EncoderConfig ec = stage1_config_tiny().Encoder;
    const int ech[5] = {4, 4, 8, 12, 12}, est[4] = {1, 2, 2, 2}, ess[4] = {1, 1, 1, 2};
    memcpy(ec.channels, ech, sizeof ech);
    memcpy(ec.stride_t, est, sizeof est);
    memcpy(ec.stride_s, ess, sizeof ess);
    ec.z_dim = 8;
    ec.norm_groups = 4;
    VideoEncoder e;
    video_encoder_build(&e, &ec, NULL);
    StLoadOpts eo = {"enc.", 1, 1};
    int loaded = st_load_paramset(&f, &e.ps, &eo, &err);
    check(loaded == e.ps.n, "official Encoder weights load by name: %s", loaded < 0 ? err.msg : "ok");
    Tensor *x = tensor_new(&c, 5, DIMS(2, 3, 16, 16, 16)), *mu_ref = tensor_new(&c, 2, DIMS(2, 8)),
           *lv_ref = tensor_new(&c, 2, DIMS(2, 8));
    read_ref(&f, "enc.x", x);
    read_ref(&f, "enc.mu", mu_ref);
    read_ref(&f, "enc.logvar", lv_ref);
    Tensor *mu, *logvar;
    c.grad_enabled = 0;
    video_encoder_forward(&c, &e, x, &mu, &logvar);
    check_match(mu, mu_ref, rtol, "official Encoder mu");
    check_match(logvar, lv_ref, rtol, "official Encoder logvar");
    video_encoder_free(&e);

    /* generator in eval mode: nf 1, z 8, 2 groups, SPADE width 8, 8 frames of 32x32 */
    DecoderConfig dc = stage1_config_tiny().Decoder;
    dc.channel_factor = 1;
    dc.z_dim = 8;
    dc.norm_groups = 2;
    dc.spade_hidden = 8;
    Generator g;
    generator_build(&g, &dc, NULL);
    StLoadOpts go = {"gen.", 1, 1};
    loaded = st_load_paramset(&f, &g.ps, &go, &err);
    check(loaded == g.ps.n, "official Generator weights load by name: %s", loaded < 0 ? err.msg : "ok");
    Tensor *x0 = tensor_new(&c, 4, DIMS(2, 3, 32, 32)), *z = tensor_new(&c, 2, DIMS(2, 8)),
           *out_ref = tensor_new(&c, 5, DIMS(2, 8, 3, 32, 32));
    read_ref(&f, "gen.x0", x0);
    read_ref(&f, "gen.z", z);
    read_ref(&f, "gen.out", out_ref);
    c.training = 0;
    Tensor *video = generator_forward(&c, &g, x0, z);
    check_match(video, out_ref, rtol, "official Generator (eval mode) output");
    generator_free(&g);

    /* temporal discriminator in training mode, and the gradient penalty */
    DiscTConfig tc = stage1_config_tiny().Discriminator_Temporal;
    const int tch[5] = {4, 4, 8, 8, 8}, tst[4] = {2, 2, 2, 2}, tss[4] = {1, 1, 1, 1};
    memcpy(tc.channels, tch, sizeof tch);
    memcpy(tc.stride_t, tst, sizeof tst);
    memcpy(tc.stride_s, tss, sizeof tss);
    tc.norm_groups = 4;
    TemporalDisc d;
    disc_t_build(&d, &tc, NULL);
    StLoadOpts dopt = {"disc.", 1, 1};
    loaded = st_load_paramset(&f, &d.ps, &dopt, &err);
    check(loaded == d.ps.n, "official Discriminator weights load by name: %s", loaded < 0 ? err.msg : "ok");
    c.training = 1;
    c.grad_enabled = 1;
    Tensor *xd = tensor_new(&c, 5, DIMS(2, 3, 12, 16, 16)), *lg_ref = tensor_new(&c, 2, DIMS(2, 1));
    read_ref(&f, "disc.x", xd);
    read_ref(&f, "disc.logits", lg_ref);
    xd->requires_grad = 1;
    Tensor *fmap[AE_STAGES];
    DiscTrace tr;
    Tensor *logits = disc_t_forward(&c, &d, xd, fmap, &tr);
    check_match(logits, lg_ref, rtol, "official Discriminator (training mode) logits");
    for (int l = 0; l < AE_STAGES; l++) {
        Tensor *ref = tensor_new(&c, 5, fmap[l]->shape);
        snprintf(name, sizeof name, "disc.fmap%d", l);
        if (read_ref(&f, name, ref)) continue;
        snprintf(name, sizeof name, "official Discriminator feature map %d", l);
        check_match(fmap[l], ref, rtol, name);
    }
    int uv_ok = 1, nuv = 0;
    for (int i = 0; i < d.ps.n; i++) {
        Tensor *t = d.ps.t[i];
        if (t->is_param) continue;
        Tensor *ref = tensor_new(&c, t->ndim, t->shape);
        snprintf(name, sizeof name, "disc.after.%s", t->name);
        if (read_ref(&f, name, ref)) continue;
        uv_ok &= max_abs_diff(t->data, ref->data, t->numel) <= uv_tol;
        nuv++;
    }
    check(uv_ok && nuv == 24,
          "weight_u / weight_v after one training call equal PyTorch's power iteration (%d buffers)", nuv);
    Tensor *sur;
    double gp = disc_t_gradient_penalty(&c, &d, xd, logits, &tr, &sur);
    Tensor *gp_ref = tensor_new(&c, 0, NULL);
    read_ref(&f, "disc.gp", gp_ref);
    check(close_enough(gp, gp_ref->data[0], 0, rtol), "official gradient_penalty value %.6g (PyTorch %.6g)", gp,
          (double)gp_ref->data[0]);
    paramset_zero_grad(&d.ps);
    backward(&c, sur);
    int grads_ok = 1;
    double worst = 0;
    for (int i = 0; i < d.ps.n; i++) {
        Tensor *p = d.ps.t[i];
        if (!p->is_param) continue;
        Tensor *ref = tensor_new(&c, p->ndim, p->shape);
        snprintf(name, sizeof name, "disc.grad.%s", p->name);
        if (read_ref(&f, name, ref)) continue;
        double scale = max_abs(ref->data, ref->numel), err_abs = max_abs_diff(p->grad, ref->data, p->numel);
        double rel = err_abs / (scale > 0 ? scale : 1);
        if (rel > worst) worst = rel;
        if (!(err_abs <= grad_rtol * scale + grad_atol)) {
            printf("  %s: gradient error %.3g (scale %.3g)\n", p->name, err_abs, scale);
            grads_ok = 0;
        }
    }
    printf("  official gradient penalty %.6g (PyTorch %.6g); parameter gradients: worst relative error %.3g\n", gp,
           (double)gp_ref->data[0], worst);
    check(grads_ok,
          "gradient penalty's parameter gradients equal PyTorch's double backward (worst relative error %.2g)", worst);
    disc_t_free(&d);
    ctx_free(&c);
    st_close(&f);
}

/* ---- loading by official names ----------------------------------------------------------------------------- */
static void test_loading(void) {
    EncoderConfig ec = tiny_encoder_config();
    VideoEncoder a, b;
    video_encoder_build(&a, &ec, &rng);
    video_encoder_build(&b, &ec, NULL);
    for (int i = 0; i < a.ps.n; i++) {   /* values a float file holds exactly, also in the double build */
        tensor_fill_uniform(a.ps.t[i], &rng, -1, 1);
        for (size_t j = 0; j < a.ps.t[i]->numel; j++) a.ps.t[i]->data[j] = (real)(float)a.ps.t[i]->data[j];
    }
    StWriter w;
    st_writer_init(&w);
    st_writer_add_paramset(&w, &a.ps, NULL);
    unsigned char *bytes;
    size_t size;
    I2vError err;
    st_writer_serialize(&w, &bytes, &size, &err);
    st_writer_free(&w);
    StFile f;
    st_parse(&f, bytes, size, "encoder.safetensors", &err);
    int n = st_load_paramset(&f, &b.ps, NULL, &err);
    int same = n == a.ps.n;
    for (int i = 0; i < a.ps.n && same; i++)
        same = !memcmp(a.ps.t[i]->data, b.ps.t[i]->data, a.ps.t[i]->numel * sizeof(real));
    check(same, "every encoder tensor is restored from a file with official names (%d)", n);
    st_close(&f);
    free(bytes);
    /* a file without layer.1.0.downsample.0.weight, and one whose conv_mu.weight has the wrong shape */
    for (int variant = 0; variant < 2; variant++) {
        st_writer_init(&w);
        Tensor *wrong = tensor_alloc(4, DIMS(3, 8, 4, 3));
        for (int i = 0; i < a.ps.n; i++) {
            const char *nm = a.ps.t[i]->name;
            if (variant == 0 && !strcmp(nm, "layer.1.0.downsample.0.weight")) continue;
            st_writer_add(&w, nm, variant == 1 && !strcmp(nm, "conv_mu.weight") ? wrong : a.ps.t[i]);
        }
        st_writer_serialize(&w, &bytes, &size, &err);
        st_writer_free(&w);
        st_parse(&f, bytes, size, "broken.safetensors", &err);
        n = st_load_paramset(&f, &b.ps, NULL, &err);
        const char *want = variant == 0 ? "layer.1.0.downsample.0.weight" : "conv_mu.weight";
        check(n < 0 && strstr(err.msg, want), "a %s tensor is reported by name: %s", variant ? "mis-shaped" : "missing",
              err.msg);
        st_close(&f);
        free(bytes);
        tensor_free(wrong);
    }
    video_encoder_free(&a);
    video_encoder_free(&b);
}

/* ---- the training step ------------------------------------------------------------------------------------- */
/* Clips of the built-in synthetic set (data.h), (N, T, 3, S, S) starting at clip `first` of stream `seed`. */
static void synth_batch(Tensor *batch, uint64_t seed, uint64_t first) {
    DataConfig dc;
    data_config_default(&dc);
    synth_clips(batch, dc, seed, first);
}

static int stats_finite(const Stage1Stats *st) {
    const double v[] = {st->loss_vae, st->l1, st->lpips, st->kl, st->gen_s, st->gen_t, st->fmap_t, st->disc_t, st->gp,
                        st->logits_real_t, st->logits_fake_t, st->disc_s, st->logits_real_s, st->logits_fake_s,
                        st->psnr, st->psnr_fixed};
    for (size_t i = 0; i < sizeof v / sizeof *v; i++)
        if (!isfinite(v[i])) return 0;
    return 1;
}

static real *snapshot(const ParamSet *ps) {
    real *s = xmalloc(ps->nvalues * sizeof(real));
    memcpy(s, ps->values, ps->nvalues * sizeof(real));
    return s;
}

static int unchanged(const ParamSet *ps, const real *s) { return !memcmp(ps->values, s, ps->nvalues * sizeof(real)); }

/* The same, ignoring ActNorm's loc and scale (initialised from data on the PatchGAN's first call). */
static int unchanged_but_actnorm(const ParamSet *ps, const real *s) {
    for (int i = 0; i < ps->n; i++) {
        const Tensor *t = ps->t[i];
        if (!t->is_param || strstr(t->name, ".loc") || strstr(t->name, ".scale")) continue;
        if (memcmp(t->data, s + (t->data - ps->values), t->numel * sizeof(real))) return 0;
    }
    return 1;
}

/* One warm-up step and one GAN step of the tiny config: what moves when, the number of power iterations,
 * the arena sized by the dry run, the schedulers. */
static void test_train_step(void) {
    if (is_double_build()) return;   /* integration, not a gradient check: the float build runs it */
    Stage1Config cfg = stage1_config_tiny();
    Stage1 s;
    I2vError err;
    if (!check(stage1_init(&s, &cfg, NULL, 7, &err) == 0, "stage1_init (tiny): %s", err.msg)) return;
    Tensor *batch = tensor_alloc(5, DIMS(2, 9, 3, 32, 32));
    synth_batch(batch, 11, 0);
    real *enc0 = snapshot(&s.enc.ps), *gen0 = snapshot(&s.gen.ps), *dt0 = snapshot(&s.disc_t.ps),
         *ds0 = snapshot(&s.disc_s.ps);
    /* D_t is called 4 times per iteration (the official loss.py): 4 power iterations with the warm-up's fixed weights */
    Conv *l = &s.disc_t.layer[0][0].conv1;
    int Cout = l->weight->shape[0];
    size_t K = l->v->numel;
    real *u = xmalloc((size_t)Cout * sizeof(real)), *v = xmalloc(K * sizeof(real));
    memcpy(u, l->u->data, (size_t)Cout * sizeof(real));
    memcpy(v, l->v->data, K * sizeof(real));
    for (int i = 0; i < 4; i++) spectral_norm_power_iteration(u, v, l->weight->data, Cout, K, 1e-12);
    Stage1Stats st;
    stage1_train_step(&s, batch, 0, &st);
    check(stats_finite(&st) && st.gp > 0 && st.l1 > 0,
          "warm-up step: finite losses (L1 %.4f, KL %.4g, D_t %.4f, GP %.3g)", st.l1, st.kl, st.disc_t, st.gp);
    check(!unchanged(&s.enc.ps, enc0) && !unchanged(&s.gen.ps, gen0),
          "warm-up step updates the encoder and the generator");
    check(unchanged(&s.disc_t.ps, dt0) && unchanged_but_actnorm(&s.disc_s.ps, ds0),
          "warm-up step leaves both discriminators' parameters (but the PatchGAN's ActNorm initialisation)");
    check(max_abs_diff(u, l->u->data, (size_t)Cout) < 1e-5 && max_abs_diff(v, l->v->data, K) < 1e-5,
          "the temporal discriminator ran 4 power iterations in the step");
    size_t cap = s.ctx.arena.capacity;
    check(s.arena_bytes > 0 && cap == s.arena_bytes,
          "the dry run sized the arena: %.1f MB in one chunk (capacity %.1f MB)", s.arena_bytes / 1048576.0,
          cap / 1048576.0);
    memcpy(dt0, s.disc_t.ps.values, s.disc_t.ps.nvalues * sizeof(real));
    memcpy(ds0, s.disc_s.ps.values, s.disc_s.ps.nvalues * sizeof(real));
    stage1_train_step(&s, batch, 1, &st);
    check(stats_finite(&st) && st.fmap_t > 0,
          "GAN step: finite losses (VAE %.4f, G_s %.4f, G_t %.4f, FM %.4f, D_s %.4f)", st.loss_vae, st.gen_s, st.gen_t,
          st.fmap_t, st.disc_s);
    check(!unchanged(&s.disc_t.ps, dt0) && !unchanged(&s.disc_s.ps, ds0),
          "after warm-up both discriminators are updated");
    check(s.ctx.arena.capacity == cap, "no arena growth in later steps");
    Stage1Stats ev;
    Tensor *recon = tensor_alloc(5, DIMS(2, 8, 3, 32, 32));
    stage1_eval_step(&s, batch, &ev, recon);
    check(isfinite(ev.l1) && isfinite(ev.psnr_fixed) && max_abs(recon->data, recon->numel) < 1,
          "eval step: L1 %.4f, PSNR %.2f dB, reconstruction in (-1, 1)", ev.l1, ev.psnr_fixed);
    stage1_end_epoch(&s, 0);
    check(fabs(s.opt_ae.lr - 2e-4 * 0.98) < 1e-12 && s.opt_dt.lr == 2e-4 && s.opt_ds.lr == 2e-4,
          "epoch 0: the AE lr decays, the discriminators' wait for the end of warm-up");
    stage1_end_epoch(&s, 1);
    check(fabs(s.opt_dt.lr - 2e-4 * 0.98) < 1e-12 && fabs(s.opt_ae.lr - 2e-4 * 0.98 * 0.98) < 1e-12,
          "epoch 1: all three decay");
    free(enc0);
    free(gen0);
    free(dt0);
    free(ds0);
    free(u);
    free(v);
    tensor_free(recon);
    tensor_free(batch);
    stage1_free(&s);

    /* LPIPS in the loss (a random stand-in at small widths); a config asking for it without weights stops */
    cfg = stage1_config_tiny();
    cfg.Training.w_percep = 30;
    check(stage1_init(&s, &cfg, "/nonexistent/lpips.safetensors", 7, &err) < 0 && strstr(err.msg, "lpips"),
          "w_percep > 0 without LPIPS weights stops with: %s", err.msg);
    cfg.Training.w_percep = 0;
    stage1_init(&s, &cfg, NULL, 7, &err);
    LpipsConfig lc = {{4, 8, 8, 8, 8}};
    lpips_build(&s.lpips, &lc);
    lpips_init_random(&s.lpips, &rng);
    s.has_lpips = 1;
    s.cfg.Training.w_percep = 30;
    batch = tensor_alloc(5, DIMS(1, 9, 3, 32, 32));
    synth_batch(batch, 11, 5);
    stage1_train_step(&s, batch, 1, &st);
    check(stats_finite(&st) && st.lpips > 0, "a step with the perceptual loss: LPIPS %.4f", st.lpips);
    tensor_free(batch);
    stage1_free(&s);
}

/* 16 frames: the temporal discriminator sees a window of subsample_length = 12 frames. */
static void test_window_step(void) {
    if (is_double_build()) return;
    Stage1Config cfg = stage1_config_tiny();
    cfg.Decoder.upsample_t[0] = 2;
    cfg.Data.sequence_length = 17;
    const int ch[5] = {16, 16, 32, 32, 48}, st_t[4] = {1, 2, 2, 2}, st_s[4] = {1, 1, 2, 2};
    memcpy(cfg.Encoder.channels, ch, sizeof ch);
    memcpy(cfg.Encoder.stride_t, st_t, sizeof st_t);
    memcpy(cfg.Encoder.stride_s, st_s, sizeof st_s);
    Stage1 s;
    I2vError err;
    if (!check(stage1_init(&s, &cfg, NULL, 3, &err) == 0, "stage1_init (16 frames): %s", err.msg)) return;
    Tensor *batch = tensor_alloc(5, DIMS(1, 17, 3, 32, 32));
    synth_batch(batch, 4, 0);
    Stage1Stats st;
    stage1_train_step(&s, batch, 1, &st);
    check(stats_finite(&st), "a 16-frame step with a 12-frame temporal window (D_t %.4f, GP %.3g)", st.disc_t, st.gp);
    tensor_free(batch);
    stage1_free(&s);
}

/* ---- learning ----------------------------------------------------------------------------------------------
 * The tiny config trains on clips of the built-in synthetic set (data.h) and is evaluated on clips of another
 * stream. Measured here: after 100 steps of 4 clips (lr 1e-3, warm-up, no GAN terms) the held-out PSNR is
 * about 22 dB, as for the official PyTorch modules at the same widths, data and optimiser (22.0 dB after the
 * same 100 steps, 22.6 dB after 150). Repeating x0 gives 27 dB on these slowly moving clips; reaching that takes
 * thousands of steps, for the official code as for this one (i2v: about 24 dB after 550 steps), so the test
 * checks learning (a large gain over the untrained network, a falling loss) and prints the baseline. One
 * thread: on a loaded machine the two-thread pool loses more to waiting than it gains. `make check-long`
 * (tests/long_learning.c) trains for 17 minutes on an easier world and checks 3 dB over that baseline. */

/* the held-out stream: seed 2 */
static void held_out_clips(Tensor *batch, uint64_t first) { synth_batch(batch, 2, first); }

static void test_learning(void) {
    if (quick_mode() || is_double_build()) return;
    int threads = threads_count();
    threads_set(1);
    Stage1Config cfg = stage1_config_tiny();
    cfg.Training.lr = 1e-3;
    cfg.Training.pretrain = 1000;   /* warm-up throughout: the reconstruction objective alone */
    Stage1 s;
    I2vError err;
    if (!check(stage1_init(&s, &cfg, NULL, 2021, &err) == 0, "stage1_init: %s", err.msg)) return;
    int N = 4, steps = 100;
    Tensor *batch = tensor_alloc(5, DIMS(N, 9, 3, 32, 32)), *recon = tensor_alloc(5, DIMS(N, 8, 3, 32, 32));
    double p0, p1, base;
    held_out_psnr(&s, batch, recon, 2, held_out_clips, &p0, &base);
    double t0 = now_seconds(), first = 0, last = 0;
    Stage1Stats st;
    for (int i = 0; i < steps; i++) {
        synth_batch(batch, 1, (uint64_t)i * (uint64_t)N);
        stage1_train_step(&s, batch, 0, &st);
        if (i < 25) first += st.l1 / 25;
        if (i >= steps - 25) last += st.l1 / 25;
    }
    double secs = now_seconds() - t0;
    held_out_psnr(&s, batch, recon, 2, held_out_clips, &p1, &base);
    printf("  learning: held-out PSNR %.2f dB -> %.2f dB after %d steps of %d clips (%.0f s); repeating x0: %.2f dB; "
           "training L1 %.4f -> %.4f\n", p0, p1, steps, N, secs, base, first, last);
    check(p1 >= p0 + 10 && p1 >= 19, "stage 1 learns to reconstruct held-out clips (%.2f dB -> %.2f dB)", p0, p1);
    check(last < 0.7 * first, "the training L1 falls (%.4f -> %.4f)", first, last);
    tensor_free(batch);
    tensor_free(recon);
    stage1_free(&s);
    threads_set(threads);
}

int main(void) {
    rng_seed(&rng, 31);
    test_configs();
    test_state_dicts();
    test_shapes_and_counts(0);
    test_shapes_and_counts(1);
    test_basic_block_grads();
    test_gen_block_grads();
    test_network_grads();
    test_tangent_and_penalty();
    test_spectral_modes(0);
    test_spectral_modes(1);
    test_official();
    test_loading();
    test_train_step();
    test_window_step();
    test_learning();
    return check_summary("test_ae");
}
