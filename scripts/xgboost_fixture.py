#!/usr/bin/env python3
"""Golden XGBoost predictions from the Python xgboost package, for Vane's C-API binding.

Writes Tests/VaneModelsTests/Fixtures/xgboost_reference_VERSION.json, VERSION being the Python
package's (which ships the libxgboost it runs): seeded datasets (values rounded so that float32
holds them exactly), the native parameters Vane passes to libxgboost, and what Python's
xgboost.train gives with the same parameters: the best iteration (early stopping on the
validation rows) and the predicted probabilities of the test rows from the kept rounds. The
test compares Vane against the reference of the library it loaded: one per library version.

Debian 12's libxgboost is 1.7.4 (xgboost==1.7.4 needs numpy < 2):

    python3 -m venv /tmp/xgbenv
    /tmp/xgbenv/bin/pip install xgboost==1.7.4 "numpy<2"
    /tmp/xgbenv/bin/python scripts/xgboost_fixture.py

and the pip wheel's (the library Vane finds in a virtual environment or pip's site directories):

    /tmp/benchenv/bin/python scripts/xgboost_fixture.py
"""

import json
import os
import sys

import numpy as np
import xgboost as xgb

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "VaneModelsTests", "Fixtures",
                   "xgboost_reference_%s.json" % xgb.__version__)


def data(seed, n, d, k):
    rng = np.random.default_rng(seed)
    x = np.round(rng.normal(0, 1, (n, d)), 3).astype(np.float32)
    x[rng.random((n, d)) < 0.02] = np.nan  # some missing values
    w = rng.normal(0, 1, (d, k))
    z = np.nan_to_num(x.astype(np.float64)) @ w + np.sin(3 * np.nan_to_num(x[:, :1].astype(np.float64)))
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    y = np.array([rng.choice(k, p=row) for row in p])
    return x, y


def case(name, seed, k, rounds, early, params):
    x, y = data(seed, 1500, 6, k)
    train, valid, test = slice(0, 1000), slice(1000, 1250), slice(1250, 1500)
    native = dict(params)
    if k == 2:
        native.update({"objective": "binary:logistic", "eval_metric": "logloss"})
    else:
        native.update({"objective": "multi:softprob", "num_class": str(k), "eval_metric": "mlogloss"})
    dtrain = xgb.DMatrix(x[train], label=y[train], missing=np.nan)
    dvalid = xgb.DMatrix(x[valid], label=y[valid], missing=np.nan)
    booster = xgb.train(native, dtrain, num_boost_round=rounds, evals=[(dvalid, "valid")],
                        early_stopping_rounds=early if early > 0 else None, verbose_eval=False)
    kept = booster.best_iteration + 1 if early > 0 else rounds
    p = booster.predict(xgb.DMatrix(x[test], missing=np.nan), iteration_range=(0, kept))
    if k == 2:
        p = np.column_stack([1 - p, p])
    nan_to_null = lambda a: [None if np.isnan(v) else float(v) for v in a.ravel()]
    return {
        "name": name, "classes": k, "rounds": rounds, "early_stopping_rounds": early, "params": native,
        "columns": 6, "features": nan_to_null(x), "labels": y.tolist(),
        "train_rows": 1000, "valid_rows": 250, "test_rows": 250, "kept_rounds": int(kept),
        "test_probabilities": [float(v) for v in p.ravel()],
    }


def main():
    base = {"booster": "gbtree", "tree_method": "hist", "max_depth": "4", "eta": "0.1", "subsample": "0.8",
            "colsample_bytree": "0.8", "min_child_weight": "1.0", "lambda": "1.0", "alpha": "0.0", "gamma": "0.0",
            "max_bin": "256", "seed": "7", "verbosity": "0", "nthread": "2"}
    doc = {
        "xgboost_version": xgb.__version__,
        "cases": [case("binary_early_stopping", 21, 2, 300, 20, base), case("three_class", 22, 3, 60, 0, base)],
    }
    out = sys.argv[1] if len(sys.argv) > 1 else OUT
    with open(out, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    print({c["name"]: c["kept_rounds"] for c in doc["cases"]})


if __name__ == "__main__":
    main()
