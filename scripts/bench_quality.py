#!/usr/bin/env python3
"""Times scikit-learn (and NumPy/SciPy) on the quality computations Vane's gatekeeper does, for
comparison with the Swift implementation on the same data.

    python3 scripts/bench_quality.py SCORES.f64 LABELS.u8 N
    python3 scripts/bench_quality.py --generate SCORES.f64 LABELS.u8 N   # write a test pair first

SCORES.f64 holds N little-endian float64 values P(class 1) in [0, 1]; LABELS.u8 holds N uint8
labels (0 or 1). Prints one JSON object:

    {"sklearn_version": ..., "n": N, "seconds": {"auc": s, "ece": s, "platt_25k": s,
     "isotonic_25k": s, "temperature_25k": s}}

Each time is the best of 3 runs (time.perf_counter) of:
  auc              sklearn roc_auc_score(labels, scores) over all N
  ece              NumPy ECE, 15 uniform bins (quality_fixtures.calibration_definition, with
                   np.bincount), from the scores: confidence, correctness, binning, sums
  platt_25k        LogisticRegression(C=1e10, solver="lbfgs", tol=1e-10, max_iter=10000) fit on
                   the logits of the first 25,000 samples
  isotonic_25k     IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1) fit on the first
                   25,000 scores
  temperature_25k  binary temperature: scipy minimize_scalar on log T in [-5, 5], bounded,
                   xatol 1e-10, of mean log(1 + exp(z/T)) - y z/T over the first 25,000 logits
The logits are log(p) - log(1 - p) of the scores clipped to [1e-15, 1 - 1e-15], computed once
outside the timings. Only the standard library, numpy, scipy and scikit-learn.
"""

import json
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from quality_fixtures import ece_uniform_fast  # noqa: E402  (one definition of the ECE)
import scipy.optimize
import sklearn
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

SUBSET = 25_000
BINS = 15


def best_of(fn, repeats=3):
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def ece_uniform(p, labels, bins=BINS):
    """Binary ECE with `bins` equal-width bins, as quality_fixtures defines it."""
    predicted = p >= 0.5
    confidence = np.maximum(p, 1.0 - p)
    correct = predicted == labels.astype(bool)
    return ece_uniform_fast(confidence, correct, bins)


def fit_temperature(z, y):
    def nll(u):
        s = z / math.exp(u)
        return float(np.mean(np.logaddexp(0.0, s) - y * s))

    result = scipy.optimize.minimize_scalar(nll, bounds=(-5.0, 5.0), method="bounded", options={"xatol": 1e-10})
    return math.exp(result.x)


def generate(scores_path, labels_path, n, seed=7):
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 1.5, n)
    labels = (rng.random(n) < 1.0 / (1.0 + np.exp(-z))).astype(np.uint8)
    scores = 1.0 / (1.0 + np.exp(-(2.0 * z + 0.3 + rng.normal(0.0, 0.5, n))))
    scores.astype("<f8").tofile(scores_path)
    labels.tofile(labels_path)


def main(argv):
    if len(argv) == 5 and argv[1] == "--generate":
        generate(argv[2], argv[3], int(argv[4]))
        return
    if len(argv) != 4:
        sys.exit(__doc__)
    n = int(argv[3])
    scores = np.fromfile(argv[1], dtype="<f8", count=n).astype(np.float64)
    labels = np.fromfile(argv[2], dtype=np.uint8, count=n)
    if len(scores) != n or len(labels) != n:
        sys.exit(f"expected {n} scores and labels, read {len(scores)} and {len(labels)}")
    y = labels.astype(np.int64)

    sub_p = scores[:SUBSET]
    sub_y = y[:SUBSET]
    clipped = np.clip(sub_p, 1e-15, 1 - 1e-15)
    sub_logit = np.log(clipped) - np.log1p(-clipped)
    sub_logit_column = sub_logit.reshape(-1, 1)
    sub_y_float = sub_y.astype(np.float64)

    seconds = {
        "auc": best_of(lambda: roc_auc_score(y, scores)),
        "ece": best_of(lambda: ece_uniform(scores, labels)),
        "platt_25k": best_of(
            lambda: LogisticRegression(C=1e10, solver="lbfgs", tol=1e-10, max_iter=10000).fit(sub_logit_column, sub_y)
        ),
        "isotonic_25k": best_of(
            lambda: IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(sub_p, sub_y_float)
        ),
        "temperature_25k": best_of(lambda: fit_temperature(sub_logit, sub_y_float)),
    }
    print(json.dumps({"sklearn_version": sklearn.__version__, "n": n, "seconds": seconds}))


if __name__ == "__main__":
    main(sys.argv)
