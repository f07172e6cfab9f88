/* monitor.c: the training-time FVD monitor (monitor.h).
 * What it is: the official evaluate_FVD_posterior / evaluate_FVD_prior scoring and best-checkpoint rule;
 * the training loops (run.c) produce the videos. What it is not: the paper's FVD (eval_metrics.c), which uses
 * the TF1 resize and [-1, 1] inputs. Dimension legend: n clips, T frames, S frame size. */
#include "program/monitor.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "formats/files.h"
#include "program/distances.h"

int monitor_open(FvdMonitor *m, const char *title, const char *metric, const char *weights, int width_div,
                 I2vError *e) {
    memset(m, 0, sizeof *m);
    m->best = INFINITY;
    int dt = metric && !strcmp(metric, "DTFVD");
    if (metric && metric[0] && !dt && strcmp(metric, "FVD"))
        return err_set(e, "Training.FVD: '%s', expected FVD or DTFVD", metric);
    snprintf(m->metric, sizeof m->metric, "%s", dt ? "DTFVD" : "FVD");
    if (!weights) {
        fprintf(stderr, "%s: the training-time %s monitor is off (give its network, %s, with --fvd-weights FILE or "
                        "the config key Training.fvd_weights)\n",
                title, m->metric, dt ? "dti3d16.safetensors" : "i3d.safetensors");
        return 0;
    }
    if (net_embedder_open(&m->net, dt ? FEAT_DTI3D16 : FEAT_I3D_MONITOR, width_div, weights, e)) return -1;
    m->batch = dt ? BATCH_MONITOR_DTFVD : BATCH_MONITOR_FVD;
    m->on = 1;
    fprintf(stderr, "%s: %s monitor once per epoch with %s, batches of %d\n", title, m->metric, m->net.label,
            m->batch);
    return 0;
}

void monitor_close(FvdMonitor *m) {
    if (m->on) net_embedder_close(&m->net);
    m->on = 0;
}

static int has_negative(const real *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (x[i] < 0) return 1;
    return 0;
}

/* embeds one set with the [0, 1] mapping decided for that set, as calculate_FVD checks each tensor */
static void monitor_embed(void *self, const real *x, int n, int T, int H, int W, real *out) {
    NetEmbedder *ne = self;
    feature_net_embed(&ne->f, &ne->c, x, n, T, H, W, out);
}

int monitor_score(FvdMonitor *m, const real *gen, const real *real_, int n, int T, int S, double *value, I2vError *e) {
    I2V_ASSERT(m->on, "monitor_score with the monitor off");
    I2vError why;
    if (feature_input_check(m->net.f.kind, T, S, S, &why)) return err_set(e, "%s: %s", m->net.label, why.msg);
    size_t total = (size_t)n * T * 3 * S * S;
    ProtocolOpts po = {0, 0, PROTOCOL_SEED};
    FrechetReport r;
    Embedder em = {monitor_embed, &m->net, m->net.em.dim, m->net.label};
    if (m->net.f.kind == FEAT_I3D_MONITOR) {
        /* both sets go through one protocol call; each needs its own mapping decision, so when they differ the
         * sets are embedded apart (the features do not depend on the other clips of a call) */
        int mg = has_negative(gen, total), mr = has_negative(real_, total);
        if (mg != mr) {
            if (n < m->batch) return err_set(e, "%s: %d eval clips, fewer than one batch of %d", m->net.label, n, m->batch);
            int used = n / m->batch * m->batch, D = em.dim;
            double *a = xmalloc((size_t)used * D * sizeof(double)), *b = xmalloc((size_t)used * D * sizeof(double));
            real *buf = xmalloc((size_t)m->batch * D * sizeof(real));
            size_t clip = (size_t)T * 3 * S * S;
            for (int s = 0; s < 2; s++) {
                m->net.f.map_to_unit = s ? mr : mg;
                for (int i = 0; i < used; i += m->batch) {
                    monitor_embed(&m->net, (s ? real_ : gen) + (size_t)i * clip, m->batch, T, S, S, buf);
                    for (size_t k = 0; k < (size_t)m->batch * D; k++) (s ? b : a)[(size_t)i * D + k] = buf[k];
                }
            }
            *value = frechet_distance(a, used, NULL, b, used, NULL, D);
            free(a), free(b), free(buf);
            m->net.f.map_to_unit = 1;
            goto done;
        }
        m->net.f.map_to_unit = mg;
    }
    if (protocol_fvd(&em, gen, real_, n, T, S, m->batch, &po, &r, NULL, NULL, e)) return -1;
    *value = r.value;
done:
    m->improved = *value < m->best;
    if (m->improved) m->best = *value;
    return 0;
}

int monitor_keep_best(FvdMonitor *m, const char *ckpt, const char *best_path, I2vError *e) {
    if (!m->on || !m->improved) return 0;
    m->improved = 0;
    uint8_t *buf;
    size_t n;
    if (read_file_bytes(ckpt, &buf, &n, e)) return -1;
    int rc = write_file_bytes(best_path, buf, n, e);
    free(buf);
    if (!rc) fprintf(stderr, "best %s so far (%.3f): kept as %s\n", m->metric, m->best, best_path);
    return rc;
}
