#!/usr/bin/env python3
"""Golden values for Vane's quality metrics and calibrators, computed by scikit-learn.

Writes Tests/VaneQualityTests/Fixtures/sklearn_quality.json:

  "metrics"      five prediction sets (binary and three-class) with scikit-learn's ROC AUC,
                 log loss, Brier score, accuracy, precision, recall, confusion matrix (and
                 balanced accuracy, MCC, macro F1), plus NumPy ECE/MCE, reliability bins and
                 PSI under the definitions written into the file ("calibration_definition",
                 "psi_definition", "brier_definition", "prediction_rule").
  "calibration"  Platt scaling (LogisticRegression), isotonic regression (IsotonicRegression),
                 temperature scaling (scipy minimize_scalar on log T), and an out-of-sample
                 ECE comparison of the three maps.

All inputs are generated from fixed seeds and rounded to a few decimals before anything is
computed from them, so the values in the file are exactly the values the expectations were
computed from (floats are written with repr: shortest round-trip), and the file stays small.
NaN never appears.

Regenerate (from the repository root):

    pip install scikit-learn           # numpy and scipy come with it
    python3 scripts/quality_fixtures.py            # or: python3 scripts/quality_fixtures.py OUT_FILE

The committed file was generated with scikit-learn 1.9.1, numpy 2.4.6, scipy 1.17.1 (Python
3.11). Other versions may change low-order digits (lbfgs and Brent stop at a tolerance, not at
the exact optimum), and a different numpy may draw different random numbers, so compare a
regenerated file with tolerances, not byte for byte.
Uses only the standard library, numpy, scipy (via scikit-learn) and scikit-learn.
"""

import json
import math
import os
import sys

import numpy as np
import scipy
import scipy.optimize
import sklearn
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    brier_score_loss,
    confusion_matrix,
    f1_score,
    log_loss,
    matthews_corrcoef,
    precision_score,
    recall_score,
    roc_auc_score,
)

BINS = 15
PSI_BINS = 10
PSI_FLOOR = 1e-4
LOG_LOSS_EPS = float(np.finfo(np.float64).eps)
OUT_RELATIVE = os.path.join("Tests", "VaneQualityTests", "Fixtures", "sklearn_quality.json")

PREDICTION_RULE = (
    "Binary: predicted class 1 iff p >= 0.5 (p = P(class 1)), else 0. "
    "Multiclass: np.argmax of the probability row (the first class of highest probability on ties)."
)

BRIER_DEFINITION = (
    "Binary: sklearn brier_score_loss(labels, p) = mean over samples of (p - y)^2 "
    "(half the two-class sum). Multiclass: computed with numpy as mean over samples of "
    "sum over classes k of (p_k - onehot_k)^2 (no factor 1/2); equal to sklearn "
    "brier_score_loss with 2-D probabilities (scale_by_half='auto' does not halve for K > 2)."
)

CALIBRATION_DEFINITION = (
    "Computed with numpy. confidence = probability of the predicted class (binary: max(p, 1 - p) "
    "with 1 - p computed in float64; multiclass: the row maximum); correct = (predicted class == "
    "label), predicted class as in prediction_rule. Uniform bins: 15 equal-width bins over [0, 1], "
    "bin index = min(floor(conf * 15), 14). Quantile bins: order = np.argsort(conf, kind='stable'), "
    "split into 15 contiguous chunks with np.array_split(order, 15) (sizes differ by at most one, "
    "the larger chunks first; with N < 15 some chunks are empty). For each non-empty bin: "
    "gap = |mean(correct) - mean(conf)| (np.mean over the bin's samples). "
    "ECE = sum over non-empty bins of (n_bin / N) * gap; MCE = max over non-empty bins of gap. "
    "reliability_uniform_15: the 15 uniform bins in ascending order as {count, mean_confidence, "
    "accuracy}, empty bins with count 0 and both means 0."
)

PSI_DEFINITION = (
    "Population stability index of psi_scores (actual) against psi_reference (expected), "
    "computed with numpy. Edges e1..e9 = np.quantile(reference, [1/10, 2/10, ..., 9/10]) "
    "(default 'linear' method: position h = q * (n - 1), lo = floor(h), t = h - lo, "
    "value = a + (b - a) * t, where numpy computes b - (b - a) * (1 - t) instead when t >= 0.5; "
    "a, b = sorted[lo], sorted[min(lo + 1, n - 1)]). 10 bins (-inf, e1], (e1, e2], ..., (e9, inf): "
    "bin = np.searchsorted(edges, x, side='left'), i.e. the first k with x <= e_k, else 9. "
    "Shares: a_k = max(count_k(scores) / len(scores), 1e-4), e_k = max(count_k(reference) / "
    "len(reference), 1e-4) (floored, not renormalised). PSI = sum_k (a_k - e_k) * ln(a_k / e_k). "
    "psi_edges and the two share vectors are recorded for debugging."
)

TEMPERATURE_DEFINITION = (
    "Multiclass: NLL(T) = mean over samples of [logsumexp(z / T) - z_label / T] (mean cross-entropy "
    "of softmax(z / T)). Binary (z = logit of class 1, y in {0, 1}): NLL(T) = mean of "
    "[log(1 + exp(z / T)) - y * z / T] (np.logaddexp(0, z / T) - y * z / T). "
    "T* = exp(u*), u* = scipy.optimize.minimize_scalar(lambda u: NLL(exp(u)), bounds=(-5, 5), "
    "method='bounded', options={'xatol': 1e-10}).x. nll_before = NLL(1), nll_after = NLL(T*)."
)

PLATT_DEFINITION = (
    "sklearn LogisticRegression(C=1e10, solver='lbfgs', tol=1e-10, max_iter=10000) fitted on the "
    "single feature x = logit (as a column) and labels; calibrated p = 1 / (1 + exp(-(coef * x + "
    "intercept))) (predict_proba[:, 1]). newton_mle is the exact unregularised maximum-likelihood "
    "fit (numpy Newton iterations to convergence) for comparison: lbfgs stops at a tolerance."
)

ISOTONIC_DEFINITION = (
    "sklearn IsotonicRegression(out_of_bounds='clip', y_min=0, y_max=1) (increasing) fitted on "
    "(scores, labels). Equal scores are pooled first (weighted mean of their labels). "
    "X_thresholds_ / y_thresholds_ are sklearn's trimmed knots (interior points of constant "
    "runs removed); predict = np.interp(clip(x, X_min, X_max), X_thresholds_, y_thresholds_)."
)


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def rounded(x, decimals):
    """x rounded to `decimals` decimals as k / 10^decimals (the double nearest that decimal, so its
    repr is the short decimal)."""
    scale = 10**decimals
    return np.rint(np.asarray(x, dtype=np.float64) * scale).astype(np.int64) / scale


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def probability_rows(p, decimals=6):
    """Probability rows in units of 10^-decimals that sum exactly to 10^decimals (every entry at
    least one unit), as floats k / 10^decimals."""
    scale = 10**decimals
    k = np.maximum(np.rint(p * scale).astype(np.int64), 1)
    for i in range(k.shape[0]):
        j = int(np.argmax(k[i]))
        k[i, j] += scale - int(k[i].sum())
    assert (k >= 1).all() and (k.sum(axis=1) == scale).all()
    return k / scale


def binary_prediction(p):
    return (p >= 0.5).astype(np.int64)


def confidence_correct(probabilities, labels, binary):
    if binary:
        predicted = binary_prediction(probabilities)
        confidence = np.maximum(probabilities, 1.0 - probabilities)
    else:
        predicted = np.argmax(probabilities, axis=1)
        confidence = probabilities[np.arange(len(labels)), predicted]
    return confidence, (predicted == labels)


def bin_stats(confidence, correct, groups):
    """[(count, mean_confidence, accuracy)] for each group of sample indices."""
    stats = []
    for idx in groups:
        if len(idx) == 0:
            stats.append((0, 0.0, 0.0))
        else:
            stats.append((int(len(idx)), float(np.mean(confidence[idx])), float(np.mean(correct[idx].astype(np.float64)))))
    return stats


def errors(stats, n):
    ece = 0.0
    mce = 0.0
    for count, conf, acc in stats:
        if count == 0:
            continue
        gap = abs(acc - conf)
        ece += count / n * gap
        mce = max(mce, gap)
    return ece, mce


def uniform_groups(confidence, bins=BINS):
    index = np.minimum(np.floor(confidence * bins).astype(np.int64), bins - 1)
    index = np.maximum(index, 0)
    return [np.nonzero(index == b)[0] for b in range(bins)]


def quantile_groups(confidence, bins=BINS):
    order = np.argsort(confidence, kind="stable")
    return np.array_split(order, bins)


def calibration_uniform(confidence, correct, bins=BINS):
    """(ece, mce, stats) with equal-width bins (literal definition)."""
    stats = bin_stats(confidence, correct, uniform_groups(confidence, bins))
    ece, mce = errors(stats, len(confidence))
    return ece, mce, stats


def calibration_quantile(confidence, correct, bins=BINS):
    stats = bin_stats(confidence, correct, quantile_groups(confidence, bins))
    ece, mce = errors(stats, len(confidence))
    return ece, mce, stats


def ece_uniform_fast(confidence, correct, bins=BINS):
    """The same uniform ECE with np.bincount (used by bench_quality.py); agrees with the literal
    definition up to summation order."""
    index = np.clip(np.floor(confidence * bins).astype(np.int64), 0, bins - 1)
    counts = np.bincount(index, minlength=bins)
    conf_sums = np.bincount(index, weights=confidence, minlength=bins)
    correct_sums = np.bincount(index, weights=correct.astype(np.float64), minlength=bins)
    nonempty = counts > 0
    gaps = np.abs(correct_sums[nonempty] / counts[nonempty] - conf_sums[nonempty] / counts[nonempty])
    return float(np.sum(counts[nonempty] / len(confidence) * gaps))


def ece_binary(p, labels):
    confidence, correct = confidence_correct(p, labels, binary=True)
    return calibration_uniform(confidence, correct)[0]


def psi(scores, reference):
    scores = np.asarray(scores, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    quantiles = np.arange(1, PSI_BINS) / PSI_BINS
    edges = np.quantile(reference, quantiles)

    def shares(values):
        bins = np.searchsorted(edges, values, side="left")
        counts = np.bincount(bins, minlength=PSI_BINS)
        return np.maximum(counts / len(values), PSI_FLOOR)

    a = shares(scores)
    e = shares(reference)
    value = float(np.sum((a - e) * np.log(a / e)))
    return value, edges, a, e


def newton_logistic(x, y):
    """Exact unregularised MLE of P(y=1) = sigmoid(w x + b) by Newton's method."""
    X = np.column_stack([x, np.ones_like(x)])
    beta = np.zeros(2)
    for _ in range(100):
        p = sigmoid(X @ beta)
        gradient = X.T @ (y - p)
        hessian = (X * (p * (1 - p))[:, None]).T @ X
        step = np.linalg.solve(hessian, gradient)
        beta = beta + step
        if np.max(np.abs(step)) < 1e-15 * max(1.0, np.max(np.abs(beta))):
            break
    return float(beta[0]), float(beta[1])


def platt_fit(logits, labels):
    model = LogisticRegression(C=1e10, solver="lbfgs", tol=1e-10, max_iter=10000)
    model.fit(np.asarray(logits, dtype=np.float64).reshape(-1, 1), labels)
    return model


def isotonic_fit(scores, labels):
    model = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1)
    model.fit(np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=np.float64))
    return model


def nll_multiclass(logits, labels, temperature):
    z = logits / temperature
    m = z.max(axis=1, keepdims=True)
    lse = (m[:, 0] + np.log(np.exp(z - m).sum(axis=1)))
    return float(np.mean(lse - z[np.arange(len(labels)), labels]))


def nll_binary(logits, labels, temperature):
    z = logits / temperature
    return float(np.mean(np.logaddexp(0.0, z) - labels * z))


def fit_temperature(nll):
    result = scipy.optimize.minimize_scalar(
        lambda u: nll(math.exp(u)), bounds=(-5.0, 5.0), method="bounded", options={"xatol": 1e-10}
    )
    return math.exp(float(result.x)), float(result.x)


# ---------------------------------------------------------------------------
# Metrics cases
# ---------------------------------------------------------------------------


def metrics_case(name, description, labels, probabilities, psi_reference, binary):
    labels = np.asarray(labels, dtype=np.int64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    psi_reference = np.asarray(psi_reference, dtype=np.float64)
    class_labels = [0, 1] if binary else [0, 1, 2]

    if binary:
        predicted = binary_prediction(probabilities)
        auc = roc_auc_score(labels, probabilities)
        brier = brier_score_loss(labels, probabilities)
        psi_scores = probabilities
    else:
        predicted = np.argmax(probabilities, axis=1)
        auc = roc_auc_score(labels, probabilities, multi_class="ovr", average="macro", labels=class_labels)
        onehot = np.eye(3)[labels]
        brier = float(np.mean(np.sum((probabilities - onehot) ** 2, axis=1)))
        sk_brier = brier_score_loss(labels, probabilities, labels=class_labels)
        assert abs(brier - sk_brier) < 1e-12, (brier, sk_brier)
        psi_scores = probabilities.max(axis=1)

    ll = log_loss(labels, probabilities, labels=class_labels)
    base_rates = np.array([np.mean(labels == k) for k in class_labels])
    base_rows = np.tile(base_rates, (len(labels), 1))
    ll_base = log_loss(labels, base_rows, labels=class_labels)

    confidence, correct = confidence_correct(probabilities, labels, binary)
    ece_u, mce_u, stats_u = calibration_uniform(confidence, correct)
    ece_q, mce_q, _ = calibration_quantile(confidence, correct)
    assert abs(ece_u - ece_uniform_fast(confidence, correct)) < 1e-12
    psi_value, psi_edges, psi_actual, psi_expected = psi(psi_scores, psi_reference)

    expected = {
        "roc_auc": float(auc),
        "log_loss": float(ll),
        "log_loss_eps": LOG_LOSS_EPS,
        "log_loss_skill": float(1.0 - ll / ll_base),
        "brier": float(brier),
        "accuracy": float(accuracy_score(labels, predicted)),
        "balanced_accuracy": float(balanced_accuracy_score(labels, predicted)),
        "mcc": float(matthews_corrcoef(labels, predicted)),
        "f1_macro": float(f1_score(labels, predicted, labels=class_labels, average="macro", zero_division=0)),
        "precision": [float(v) for v in precision_score(labels, predicted, labels=class_labels, average=None, zero_division=0)],
        "recall": [float(v) for v in recall_score(labels, predicted, labels=class_labels, average=None, zero_division=0)],
        "confusion": confusion_matrix(labels, predicted, labels=class_labels).tolist(),
        "ece_uniform_15": ece_u,
        "mce_uniform_15": mce_u,
        "ece_quantile_15": ece_q,
        "mce_quantile_15": mce_q,
        "reliability_uniform_15": [
            {"count": c, "mean_confidence": m, "accuracy": a} for c, m, a in stats_u
        ],
        "psi": psi_value,
        "psi_edges": [float(v) for v in psi_edges],
        "psi_actual_shares": [float(v) for v in psi_actual],
        "psi_expected_shares": [float(v) for v in psi_expected],
    }
    return {
        "name": name,
        "description": description,
        "kind": "binary" if binary else "multiclass",
        "labels": labels.tolist(),
        "probabilities": probabilities.tolist(),
        "psi_scores": [float(v) for v in psi_scores],
        "psi_reference": psi_reference.tolist(),
        "expected": expected,
    }


def make_metrics():
    cases = []

    # (a) binary, reasonably calibrated.
    rng = np.random.default_rng(20240601)
    n = 2000
    z = rng.normal(0.0, 1.5, n)
    labels = (rng.random(n) < sigmoid(z)).astype(np.int64)
    p = sigmoid(z + rng.normal(0.0, 0.3, n))
    p = np.clip(rounded(p, 6), 1e-6, 1 - 1e-6)
    z_ref = rng.normal(0.4, 1.3, n)
    reference = np.clip(rounded(sigmoid(z_ref), 6), 1e-6, 1 - 1e-6)
    cases.append(metrics_case(
        "binary_calibrated",
        "2,000 samples; labels ~ Bernoulli(sigmoid(z)), z ~ N(0, 1.5^2); p = sigmoid(z + N(0, 0.3^2)) "
        "rounded to 6 decimals. PSI reference: 2,000 probabilities of a shifted sample.",
        labels, p, reference, binary=True))

    # (b) binary with many ties: probabilities rounded to 2 decimals.
    rng = np.random.default_rng(20240602)
    z = rng.normal(0.0, 1.2, n)
    labels = (rng.random(n) < sigmoid(z)).astype(np.int64)
    p = rounded(sigmoid(1.3 * z + rng.normal(0.0, 0.5, n) - 0.1), 2)
    p[:5] = 0.5  # exact 0.5 predicts class 1
    reference = rounded(sigmoid(rng.normal(-0.3, 1.5, n)), 2)
    cases.append(metrics_case(
        "binary_ties",
        "2,000 samples with probabilities rounded to 2 decimals (many ties, some exactly 0.5). "
        "PSI reference: a shifted sample, also rounded to 2 decimals (edges coincide with values).",
        labels, p, reference, binary=True))

    # (c) binary overconfident: mostly 0.001 / 0.999, a few exact 0 and 1.
    rng = np.random.default_rng(20240603)
    n = 1000
    z = rng.normal(0.0, 1.5, n)
    labels = (rng.random(n) < sigmoid(z)).astype(np.int64)
    noisy = z + rng.normal(0.0, 0.8, n)
    p = np.where(noisy >= 0, 0.999, 0.001)
    middle = rng.random(n) < 0.1
    p[middle] = rounded(sigmoid(noisy[middle]), 3)
    # Exact 0 and 1 (log loss must clip): right and wrong ones.
    p[0], labels[0] = 1.0, 1
    p[1], labels[1] = 1.0, 0
    p[2], labels[2] = 0.0, 0
    p[3], labels[3] = 0.0, 1
    reference = np.where(rng.normal(0.5, 1.5, n) >= 0, 0.999, 0.001)
    cases.append(metrics_case(
        "binary_overconfident",
        "1,000 samples; p = 0.999 or 0.001 by the sign of a noisy logit for ~90%, sigmoid of it "
        "(3 decimals) for the rest; samples 0-3 have p exactly 1, 1, 0, 0 with labels 1, 0, 0, 1 "
        "(log loss clipping). PSI reference: 0.001/0.999 of a shifted sample.",
        labels, p, reference, binary=True))

    # (d) multiclass, softmax of random logits.
    rng = np.random.default_rng(20240604)
    n = 1500
    true_logits = rng.normal(0.0, 1.2, (n, 3)) + np.array([0.0, 0.3, -0.2])
    labels = np.array([rng.choice(3, p=row) for row in softmax(true_logits)], dtype=np.int64)
    model_logits = true_logits + rng.normal(0.0, 0.4, (n, 3))
    probabilities = probability_rows(softmax(model_logits))
    # Rows with tied maxima: argmax takes the first.
    ties = [[0.4, 0.4, 0.2], [0.25, 0.375, 0.375], [0.45, 0.1, 0.45], [0.375, 0.375, 0.25]]
    for i, row in enumerate(ties):
        probabilities[10 + i] = row
    reference = probability_rows(softmax(1.4 * rng.normal(0.0, 1.2, (n, 3)))).max(axis=1)
    cases.append(metrics_case(
        "multiclass_softmax",
        "1,500 samples, 3 classes; labels ~ Categorical(softmax(L)), L ~ N(0, 1.2^2) + (0, 0.3, -0.2); "
        "probabilities softmax(L + N(0, 0.4^2)) in units of 1e-6 summing to 1 (rows 10-13 have tied "
        "maxima). PSI scores: row maxima; reference: row maxima of a sharper second sample.",
        labels, probabilities, reference, binary=False))

    # (e) small hand-checkable binary case with ties.
    labels = np.array([0, 0, 1, 1, 0, 1, 1, 0], dtype=np.int64)
    p = np.array([0.1, 0.4, 0.35, 0.8, 0.8, 0.5, 0.9, 0.5])
    reference = np.array([0.2, 0.3, 0.5, 0.6, 0.7, 0.75, 0.85, 0.95])
    cases.append(metrics_case(
        "binary_small_ties",
        "8 samples with ties at 0.8 (labels 1 and 0) and at 0.5 (predicted 1; labels 1 and 0).",
        labels, p, reference, binary=True))
    return cases


# ---------------------------------------------------------------------------
# Calibration cases
# ---------------------------------------------------------------------------


def make_platt():
    rng = np.random.default_rng(20240611)
    n = 3000
    logits = rounded(rng.normal(0.0, 2.0, n), 4)
    labels = (rng.random(n) < sigmoid(0.6 * logits - 0.4)).astype(np.int64)
    model = platt_fit(logits, labels)
    coef, intercept = float(model.coef_[0, 0]), float(model.intercept_[0])
    newton_coef, newton_intercept = newton_logistic(logits, labels.astype(np.float64))
    first = model.predict_proba(logits[:20].reshape(-1, 1))[:, 1]
    return {
        "description": "3,000 logits ~ N(0, 2^2) (4 decimals); labels ~ Bernoulli(sigmoid(0.6 x - 0.4)).",
        "definition": PLATT_DEFINITION,
        "logits": logits.tolist(),
        "labels": labels.tolist(),
        "coef": coef,
        "intercept": intercept,
        "n_iter": int(model.n_iter_[0]),
        "calibrated_first_20": [float(v) for v in first],
        "newton_mle": {"coef": newton_coef, "intercept": newton_intercept},
    }


def make_isotonic():
    rng = np.random.default_rng(20240612)
    n = 2000
    raw_logit = rng.normal(0.0, 1.2, n)
    scores = rounded(sigmoid(raw_logit), 3)
    labels = (rng.random(n) < sigmoid(1.6 * raw_logit + 0.2)).astype(np.int64)
    model = isotonic_fit(scores, labels)
    lo, hi = float(scores.min()), float(scores.max())
    queries = list(rounded(np.linspace(-0.1, 1.1, 37), 4))
    queries += [lo, hi, lo - 0.001, hi + 0.001, 0.0, 1.0, 0.5]
    thresholds = model.X_thresholds_
    for i in (1, len(thresholds) // 3, len(thresholds) // 2, (2 * len(thresholds)) // 3, len(thresholds) - 2):
        queries.append(float(thresholds[i]))
    queries.append(float(rounded((thresholds[5] + thresholds[6]) / 2, 6)))
    queries = np.array(queries[:50], dtype=np.float64)
    assert len(queries) == 50
    return {
        "description": "2,000 scores = sigmoid(N(0, 1.2^2)) rounded to 3 decimals (many ties); "
        "labels ~ Bernoulli(sigmoid(1.6 logit + 0.2)). Queries: a grid over [-0.1, 1.1], the "
        "training min and max and just outside them, 0, 1, 0.5, some knots and a point between knots.",
        "definition": ISOTONIC_DEFINITION,
        "scores": scores.tolist(),
        "labels": labels.tolist(),
        "X_min": float(model.X_min_),
        "X_max": float(model.X_max_),
        "X_thresholds": [float(v) for v in model.X_thresholds_],
        "y_thresholds": [float(v) for v in model.y_thresholds_],
        "queries": queries.tolist(),
        "predictions": [float(v) for v in model.predict(queries)],
    }


def make_temperature():
    rng = np.random.default_rng(20240613)
    n = 3000
    true_logits = rng.normal(0.0, 1.0, (n, 3))
    labels = np.array([rng.choice(3, p=row) for row in softmax(true_logits)], dtype=np.int64)
    logits = rounded(3.0 * true_logits, 4)
    t, u = fit_temperature(lambda temp: nll_multiclass(logits, labels, temp))
    multiclass = {
        "description": "3,000 rows of 3 logits = 3 x L rounded to 4 decimals, L ~ N(0, 1); "
        "labels ~ Categorical(softmax(L)) (so T* is near 3).",
        "logits": logits.tolist(),
        "labels": labels.tolist(),
        "temperature": t,
        "log_temperature": u,
        "nll_before": nll_multiclass(logits, labels, 1.0),
        "nll_after": nll_multiclass(logits, labels, t),
    }

    z_true = rng.normal(0.0, 1.5, n)
    labels_b = (rng.random(n) < sigmoid(z_true)).astype(np.int64)
    z = rounded(3.0 * z_true, 4)
    tb, ub = fit_temperature(lambda temp: nll_binary(z, labels_b, temp))
    binary = {
        "description": "3,000 logits of class 1 = 3 z rounded to 4 decimals, z ~ N(0, 1.5^2); "
        "labels ~ Bernoulli(sigmoid(z)) (so T* is near 3).",
        "logits": z.tolist(),
        "labels": labels_b.tolist(),
        "temperature": tb,
        "log_temperature": ub,
        "nll_before": nll_binary(z, labels_b, 1.0),
        "nll_after": nll_binary(z, labels_b, tb),
    }
    return {"definition": TEMPERATURE_DEFINITION, "multiclass": multiclass, "binary": binary}


def make_ece_comparison():
    rng = np.random.default_rng(20240614)
    n = 8000
    z = rng.normal(0.0, 1.5, n)
    labels = (rng.random(n) < sigmoid(z)).astype(np.int64)
    logits = rounded(2.5 * z + 0.3, 4)
    half = n // 2
    cal_x, cal_y = logits[:half], labels[:half]
    test_x, test_y = logits[half:], labels[half:]

    iso = isotonic_fit(sigmoid(cal_x), cal_y)
    p_iso = iso.predict(sigmoid(test_x))
    platt = platt_fit(cal_x, cal_y)
    p_platt = platt.predict_proba(test_x.reshape(-1, 1))[:, 1]
    p_raw = sigmoid(test_x)
    return {
        "description": "8,000 samples: z ~ N(0, 1.5^2), labels ~ Bernoulli(sigmoid(z)), raw logit "
        "= 2.5 z + 0.3 rounded to 4 decimals (overconfident and biased). First 4,000 calibrate, "
        "last 4,000 test.",
        "definition": "Raw probability p = 1 / (1 + exp(-logit)). Isotonic: sklearn "
        "IsotonicRegression(out_of_bounds='clip', y_min=0, y_max=1) fitted on (p_cal, y_cal), "
        "predict(p_test). Platt: LogisticRegression(C=1e10, solver='lbfgs', tol=1e-10, "
        "max_iter=10000) fitted on the calibration logits, predict_proba of the test logits. "
        "ECE: uniform 15 bins, binary rule of calibration_definition, on the test half.",
        "calibration_logits": cal_x.tolist(),
        "calibration_labels": cal_y.tolist(),
        "test_logits": test_x.tolist(),
        "test_labels": test_y.tolist(),
        "platt_coef": float(platt.coef_[0, 0]),
        "platt_intercept": float(platt.intercept_[0]),
        "isotonic_knots": int(len(iso.X_thresholds_)),
        "ece_test_raw": ece_binary(p_raw, test_y),
        "ece_test_isotonic_sklearn": ece_binary(p_iso, test_y),
        "ece_test_platt_sklearn": ece_binary(p_platt, test_y),
        "log_loss_test_raw": float(log_loss(test_y, p_raw, labels=[0, 1])),
        "log_loss_test_isotonic_sklearn": float(log_loss(test_y, p_iso, labels=[0, 1])),
        "log_loss_test_platt_sklearn": float(log_loss(test_y, p_platt, labels=[0, 1])),
    }


# ---------------------------------------------------------------------------
# JSON output: objects indented, number lists wrapped, floats by repr
# ---------------------------------------------------------------------------


def scalar(value):
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"non-finite value {value!r} in fixture")
        return repr(value)
    if value is None:
        return "null"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    raise TypeError(type(value))


def is_flat(values):
    return all(not isinstance(v, (dict, list)) for v in values)


def inline(value):
    if isinstance(value, list):
        return "[" + ",".join(inline(v) for v in value) + "]"
    return scalar(value)


def encode(value, indent, width=110):
    pad = " " * indent
    inner = " " * (indent + 1)
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f"{inner}{json.dumps(k)}: {encode(v, indent + 1, width)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, list):
        # Lists of numbers, and lists of flat rows, are wrapped at `width` characters.
        if is_flat(value) or all(isinstance(v, list) and is_flat(v) for v in value):
            parts = [inline(v) for v in value]
            text = "[" + ",".join(parts) + "]"
            if len(text) + indent <= width:
                return text
            lines, line = [], ""
            for part in parts:
                if line and len(line) + len(part) + 1 > width - indent - 1:
                    lines.append(line)
                    line = ""
                line += part + ","
            lines.append(line)
            lines[-1] = lines[-1][:-1]
            return "[\n" + "\n".join(inner + ln for ln in lines) + "\n" + pad + "]"
        return "[\n" + ",\n".join(inner + encode(v, indent + 1, width) for v in value) + "\n" + pad + "]"
    return scalar(value)


def main(argv):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = argv[1] if len(argv) > 1 else os.path.join(root, OUT_RELATIVE)
    document = {
        "sklearn_version": sklearn.__version__,
        "numpy_version": np.__version__,
        "scipy_version": scipy.__version__,
        "generator": "scripts/quality_fixtures.py",
        "prediction_rule": PREDICTION_RULE,
        "brier_definition": BRIER_DEFINITION,
        "calibration_definition": CALIBRATION_DEFINITION,
        "psi_definition": PSI_DEFINITION,
        "log_loss_definition": "sklearn log_loss(labels, probabilities, labels=[0..K-1]): binary p "
        "becomes rows [1 - p, p]; each row is clipped to [eps, 1 - eps] with eps = "
        "np.finfo(float64).eps (log_loss_eps), not renormalised; mean of -ln(clipped p_label). "
        "log_loss_skill = 1 - log_loss / log_loss of constant rows of the class base rates.",
        "metrics": make_metrics(),
        "calibration": {
            "platt": make_platt(),
            "isotonic": make_isotonic(),
            "temperature": make_temperature(),
            "ece_comparison": make_ece_comparison(),
        },
    }
    text = encode(document, 0) + "\n"
    # The writer must produce strict JSON that parses back to the same values.
    parsed = json.loads(text, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    assert parsed["metrics"][0]["probabilities"][:5] == document["metrics"][0]["probabilities"][:5]
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"wrote {out} ({len(text.encode())} bytes)")
    return document


if __name__ == "__main__":
    main(sys.argv)
