"""Writes tests/data/distances/: small feature sets (.npy) and the distances the official metric code gives
for them (expected.txt), for tests/test_distances.c and the `./i2v frechet` test.

For each pair of sets A, B the file holds one line
    name frechet_scipy frechet_eigen frechet_exact kid_full
frechet_scipy: the official calculate_frechet_distance (metrics/FID/FID_Score.py, also used by DTFVD and the
  training-time FVD): np.cov(rowvar=False), scipy.linalg.sqrtm(sigma1 @ sigma2), the 1e-6 offset when the
  result is not finite, the real part when the imaginary diagonal is below 1e-3.
frechet_eigen: the same quantity through symmetric eigenvalues (tensorflow-gan's trace_sqrt_product route,
  the paper's TF FVD): sqrt(S1) by eigh, the eigenvalues of sqrt(S1) S2 sqrt(S1) by eigvalsh.
frechet_exact: the same quantity to 40 digits (mpmath): tr sqrt(S1^1/2 S2 S1^1/2) is the sum of the singular
  values of A1 A2^T, A the centred rows scaled by 1/sqrt(n - 1); the two above lose digits to rounding
  (scipy's sqrtm most where S1 S2 is singular).
kid_full: the unbiased MMD^2 with k(x, y) = (x.y/d + 1)^3 over the whole sets (what KID's subsets give when
  the subset size is the set size).

usage: python3 tools/make_distance_reference.py [out_dir]   (NumPy and SciPy; the tests never need them)
"""
import os
import sys

import mpmath
import numpy as np
import scipy
from scipy import linalg

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "tests", "data",
                                                         "distances")
os.makedirs(out, exist_ok=True)


def official_frechet(a, b, eps=1e-6):
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    diff = mu1 - mu2
    covmean, _ = linalg.sqrtm(s1.dot(s2), disp=False)
    if not np.isfinite(covmean).all():
        offset = np.eye(s1.shape[0]) * eps
        covmean = linalg.sqrtm((s1 + offset).dot(s2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError("imaginary component")
        covmean = covmean.real
    return diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)


def eigen_frechet(a, b):
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(s1)
    r = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    m = np.linalg.eigvalsh(r @ s2 @ r)
    diff = mu1 - mu2
    return diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(np.clip(m, 0, None)).sum()


def exact_frechet(a, b):
    mpmath.mp.dps = 40
    A = [[mpmath.mpf(float(v)) for v in row] for row in a]
    B = [[mpmath.mpf(float(v)) for v in row] for row in b]
    d = len(A[0])

    def centred(X):
        n = len(X)
        mu = [mpmath.fsum(X[i][k] for i in range(n)) / n for k in range(d)]
        s = mpmath.sqrt(n - 1)
        return mu, mpmath.matrix([[(X[i][k] - mu[k]) / s for k in range(d)] for i in range(n)])
    mu1, A1 = centred(A)
    mu2, A2 = centred(B)
    C = A1 * A2.T
    K = C.T * C if C.cols < C.rows else C * C.T
    ev = mpmath.eigsy(K, eigvals_only=True)
    ts = mpmath.fsum(mpmath.sqrt(max(v, 0)) for v in ev)
    tr1 = mpmath.fsum(A1[i, k] ** 2 for i in range(A1.rows) for k in range(d))
    tr2 = mpmath.fsum(A2[i, k] ** 2 for i in range(A2.rows) for k in range(d))
    dm = mpmath.fsum((mu1[k] - mu2[k]) ** 2 for k in range(d))
    return float(dm + tr1 + tr2 - 2 * ts)


def kid_full(a, b):
    d = a.shape[1]
    kxx, kyy, kxy = (a @ a.T / d + 1) ** 3, (b @ b.T / d + 1) ** 3, (a @ b.T / d + 1) ** 3
    m, n = len(a), len(b)
    return ((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
            - 2 * kxy.mean())


rng = np.random.default_rng(249)


def correlated(n, d, rank=None, shift=0.0, scale=1.0):
    rank = rank or d
    mix = rng.normal(size=(rank, d)) / np.sqrt(rank)
    return shift + scale * rng.normal(size=(n, rank)) @ mix


sets = {
    # more rows than dimensions, full-rank covariances
    "full": (correlated(60, 8), correlated(50, 8, shift=0.3, scale=1.2)),
    # fewer rows than dimensions (a covariance of rank n - 1), as FVD's 256 clips of 400 logits
    "deficient": (correlated(20, 40, shift=0.1), correlated(25, 40, scale=0.8)),
    # more rows than dimensions but the features span a 12-d subspace: singular covariances
    "subspace": (correlated(80, 30, rank=12), correlated(70, 30, rank=12, shift=-0.2)),
    # logits-like scale, float32 file
    "wide": (correlated(40, 64, scale=5.0), correlated(40, 64, shift=1.0, scale=4.0)),
}
lines = []
for name, (a, b) in sets.items():
    if name == "wide":
        a, b = a.astype(np.float32), b.astype(np.float32)
    np.save(os.path.join(out, name + "_a.npy"), a)
    np.save(os.path.join(out, name + "_b.npy"), b)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    lines.append("%s %.17g %.17g %.17g %.17g" % (name, official_frechet(a64, b64), eigen_frechet(a64, b64),
                                                 exact_frechet(a64, b64), kid_full(a64, b64)))
with open(os.path.join(out, "expected.txt"), "w") as f:
    f.write("# name frechet_scipy frechet_eigen frechet_exact kid_full  (numpy %s, scipy %s)\n" % (np.__version__,
                                                                                    scipy.__version__))
    f.write("\n".join(lines) + "\n")
print("\n".join(lines))
