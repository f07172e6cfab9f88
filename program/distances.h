/* distances.h: distances between two sets of feature vectors, as the paper's metrics compare generated and
 * real videos: the Frechet distance (FVD, DTFVD, FID), the kernel inception distance (KID), and bootstrap
 * confidence intervals of the Frechet distance.
 *
 * Feature sets are row-major (n, d) double arrays. Weights, where taken, are frequency weights (a row with
 * weight 3 counts as three copies: a bootstrap resample's counts); NULL means every row once.
 * These functions assume finite values and at least two rows of weight: the program checks files at the
 * boundary (distances_check) and these assert. */
#ifndef I2V_DISTANCES_H
#define I2V_DISTANCES_H

#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

/* d^2 = |mu1 - mu2|^2 + tr S1 + tr S2 - 2 tr sqrt(S1^1/2 S2 S1^1/2), S the unbiased covariances
 * (np.cov(rowvar=False)). The value scipy's sqrtm path of the official code approximates, computed exactly
 * through a symmetric eigenvalue problem, so rank-deficient covariances (fewer rows than dimensions) are
 * no special case. */
double frechet_distance(const double *x1, int n1, const double *w1, const double *x2, int n2, const double *w2,
                        int d);
/* The same from given statistics: mu (d), S (d, d) symmetric positive semi-definite. */
double frechet_from_stats(const double *mu1, const double *S1, const double *mu2, const double *S2, int d);

/* KID: the unbiased MMD^2 with the kernel k(x, y) = (x.y / d + 1)^3, over `subsets` random subsets of
 * `size` rows of each set (drawn without replacement, independently per set and subset, from seed);
 * mean and population standard deviation over the subsets. size <= 0 means min(1000, n1, n2). */
void kid_score(const double *x1, int n1, const double *x2, int n2, int d, int subsets, int size, uint64_t seed,
               double *mean, double *std);

/* Bootstrap confidence interval of the Frechet distance between two sets of nclips clips, each clip
 * contributing `rows` consecutive rows of x1 and of x2 (1 for videos' embeddings, T for FID's frames).
 * Each of `resamples` resamples draws nclips clip indices with replacement from seed and weights both sets
 * by the same counts (the generated clip i belongs to the real clip i: it starts from its first frame).
 * lo and hi are the 2.5 and 97.5 percentiles (linear interpolation, numpy's default). */
void frechet_bootstrap(const double *x1, const double *x2, int nclips, int rows, int d, int resamples,
                       uint64_t seed, double *lo, double *hi);

/* Checks a feature set read from `label`: n >= min_rows, every value finite. */
int distances_check(const double *x, int n, int d, int min_rows, const char *label, I2vError *e);

#endif
