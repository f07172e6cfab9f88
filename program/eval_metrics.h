/* eval_metrics.h: the paper's metrics of a model folder (`i2v evaluate --metrics ...`), the `i2v features`
 * command, and the feature networks wrapped as protocols.h Embedders.
 *
 * What it is: loading the metric networks from a weights folder, sampling the test set the way
 * eval_synthesis_quality.py and eval_diversity.py do, and printing the paper's row with confidence
 * intervals. What it is not: the protocol rules (protocols.c), the distances (distances.c) or the
 * networks (networks/features.c). */
#ifndef I2V_EVAL_METRICS_H
#define I2V_EVAL_METRICS_H

#include "networks/features.h"
#include "program/protocols.h"

/* A FeatureNet with its own context, usable as an Embedder (em.net points back to this struct). */
typedef struct NetEmbedder {
    FeatureNet f;
    Ctx c;
    Embedder em;
    char label[512];       /* "<kind> (<file>; <preprocessing>)" */
} NetEmbedder;

/* Loads kind from path at width 1 / width_div (a stand-in for tests); label names file and preprocessing. */
int net_embedder_open(NetEmbedder *ne, FeatureKind kind, int width_div, const char *path, I2vError *e);
void net_embedder_close(NetEmbedder *ne);
/* How kind preprocesses its input, in words (for every printed figure). */
const char *feature_preprocessing(FeatureKind kind);

/* i2v evaluate --model DIR --metrics LIST [--weights DIR] ...: returns the exit status. */
int eval_metrics_main(int argc, char **argv);
/* Does this evaluate command line ask for the paper's metrics (--metrics)? */
int eval_metrics_wanted(int argc, char **argv);
/* i2v features --net KIND --weights FILE --in VIDEOS.npy --out FEATURES.npy */
int features_main(int argc, char **argv);

#endif
