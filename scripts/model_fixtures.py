#!/usr/bin/env python3
"""Golden values for Vane's models, computed by scikit-learn.

Writes Tests/VaneModelsTests/Fixtures/sklearn_logreg.json: small seeded datasets (binary and
three-class, one with sample weights) and scikit-learn's L2 logistic regression on them:
LogisticRegression(C=1/l2, solver='lbfgs', tol=1e-12, max_iter=100000), whose objective is
sum_i w_i * CE_i + (l2 / 2) * ||W||^2 with the intercept unpenalised (multinomial softmax for
three classes). Recorded: coef_, intercept_, predict_proba of the first 10 rows, and the
objective value at the optimum.

Regenerate (from the repository root):

    pip install scikit-learn
    python3 scripts/model_fixtures.py

The committed file was made with scikit-learn 1.9.1 and numpy 2.4.6 (Python 3.11).
"""

import json
import os
import sys

import numpy as np
import sklearn
from sklearn.linear_model import LogisticRegression

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "VaneModelsTests", "Fixtures", "sklearn_logreg.json")


def case(name, seed, n, d, k, l2, weighted):
    rng = np.random.default_rng(seed)
    x = np.round(rng.normal(0, 1, (n, d)), 4)
    w_true = rng.normal(0, 1.5, (d, k))
    logits = x @ w_true + rng.normal(0, 0.5, k)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    y = np.array([rng.choice(k, p=row) for row in p])
    sw = np.round(rng.uniform(0.2, 2.0, n), 3) if weighted else np.ones(n)
    model = LogisticRegression(C=1.0 / l2, solver="lbfgs", tol=1e-12, max_iter=100000)
    model.fit(x, y, sample_weight=sw)
    z = model.decision_function(x)
    if k == 2:
        ce = np.logaddexp(0, z) - y * z
    else:
        ce = np.log(np.exp(z - z.max(axis=1, keepdims=True)).sum(axis=1)) + z.max(axis=1) - z[np.arange(n), y]
    objective = float((sw * ce).sum() + 0.5 * l2 * (model.coef_ ** 2).sum())
    return {
        "name": name, "l2": l2, "classes": k, "features": x.ravel().tolist(), "rows": n, "columns": d,
        "labels": y.tolist(), "sample_weights": sw.tolist(),
        "coef": model.coef_.tolist(), "intercept": model.intercept_.tolist(),
        "proba_first_10": model.predict_proba(x[:10]).tolist(), "objective": objective,
    }


def main():
    doc = {
        "sklearn_version": sklearn.__version__,
        "cases": [
            case("binary", 11, 400, 5, 2, 1.0, False),
            case("binary_weighted_weak_penalty", 12, 300, 4, 2, 0.1, True),
            case("three_class", 13, 600, 4, 3, 1.0, False),
        ],
    }
    out = sys.argv[1] if len(sys.argv) > 1 else OUT
    with open(out, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
