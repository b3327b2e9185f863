#!/usr/bin/env python3
"""LightGBM text models with Python lightgbm's raw scores, for Vane's LightGBM reader and tree evaluator.

Features are real: the 13 scale-free indicators of BTCUSDT 1h bars that scripts/onnx_foreign_fixtures.py
takes from the TA-Lib golden file; the label is the next bar's direction. Each case trains a small
model with lightgbm (the version installed, 4.x) and writes, under
Tests/VaneModelsTests/Fixtures/lightgbm/:

- NAME.txt, the model as `Booster.save_model` writes it;
- NAME.json: {"inputs": {"x": {"dtype": "float64", "shape": [rows, features], "data": [...]}},
  "outputs": {"margin": ..., "probabilities": ...}} with `predict(raw_score=True)` and
  `predict()` on the evaluation rows (NaN written "NaN", as `vane model run` reads it).

The evaluation rows are held-out bars edited to reach every branch kind: NaN in columns that had
missing values in training (missing type NaN) and in columns that had none (type None: NaN is
taken as 0), exact zeros (zero-as-missing), values exactly on split thresholds (`<=` goes left),
and, for the categorical case, unseen, negative, fractional (-0.5 truncates to category 0),
huge and NaN categories.

Regenerate (from the repository root):

    pip install lightgbm numpy
    python3 scripts/lightgbm_fixtures.py
"""

import json
import os
import sys

import numpy as np
import lightgbm as lgb

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from onnx_foreign_fixtures import features  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "Tests", "VaneModelsTests", "Fixtures", "lightgbm")


def number(v):
    v = float(v)
    if np.isnan(v):
        return "NaN"
    if np.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    return v


def tensor(a):
    a = np.asarray(a, dtype=np.float64)
    return {"dtype": "float64", "shape": list(a.shape), "data": [number(v) for v in a.reshape(-1)]}


def thresholds(booster):
    """Numerical split thresholds per feature, from the model's own dump."""
    found = {}

    def walk(node):
        if "split_feature" not in node:
            return
        if node.get("decision_type") == "<=":
            found.setdefault(node["split_feature"], []).append(node["threshold"])
        walk(node["left_child"])
        walk(node["right_child"])

    for tree in booster.dump_model()["tree_info"]:
        walk(tree["tree_structure"])
    return found


def edited(booster, x, rng, nan_columns=(), zero_columns=()):
    """Evaluation rows that reach every kind of branch."""
    x = x.copy()
    n, d = x.shape
    for j in range(d):
        # A quarter of the rows: NaN somewhere (a column with or without NaN in training).
        x[rng.random(n) < 0.06, j] = np.nan
    for j in zero_columns:
        x[rng.random(n) < 0.1, j] = 0.0
    for j, values in thresholds(booster).items():
        rows = rng.choice(n, size=min(len(values), n // 8), replace=False)
        x[rows, j] = rng.choice(values, size=len(rows))
    return x


def write(name, booster, x):
    os.makedirs(OUT, exist_ok=True)
    booster.save_model(os.path.join(OUT, name + ".txt"))
    # Read back from the file, as a user's saved model is.
    model = lgb.Booster(model_file=os.path.join(OUT, name + ".txt"))
    raw = model.predict(x, raw_score=True)
    outputs = {"margin": tensor(raw)}
    objective = model.dump_model()["objective"].split(" ")[0]
    if objective in ("binary", "multiclass", "multiclassova"):
        p = model.predict(x)
        if p.ndim == 1:
            p = np.stack([1 - p, p], axis=1)
        outputs["probabilities"] = tensor(p)
    with open(os.path.join(OUT, name + ".json"), "w") as f:
        json.dump({"inputs": {"x": tensor(x)}, "outputs": outputs}, f, separators=(",", ":"))
        f.write("\n")
    size = os.path.getsize(os.path.join(OUT, name + ".txt"))
    print(f"{name}: {model.num_trees()} trees, {x.shape[0]} rows, {size} bytes")


def main():
    x, y = features()
    x = x.astype(np.float64)
    rng = np.random.default_rng(20261204)
    train, test = slice(0, 3000), slice(3000, 3160)
    common = {"verbose": -1, "num_threads": 1, "seed": 7, "deterministic": True}

    # Binary with NaN in training: missing type NaN on those columns, None on the others.
    xt = x[train].copy()
    xt[rng.random(xt.shape) < 0.03] = np.nan
    xt[:, 5] = x[train][:, 5]  # column 5: no NaN in training
    b = lgb.train({**common, "objective": "binary", "num_leaves": 15, "learning_rate": 0.05}, lgb.Dataset(xt, y[train]), 60)
    write("binary_nan", b, edited(b, x[test], rng))

    # Binary with sigmoid 0.7 and zeros as missing (missing type Zero).
    xz = x[train].copy()
    for j in (0, 3, 7):
        xz[rng.random(len(xz)) < 0.08, j] = 0.0
    b = lgb.train({**common, "objective": "binary", "sigmoid": 0.7, "zero_as_missing": True, "num_leaves": 15},
                  lgb.Dataset(xz, y[train]), 40)
    write("binary_zero_missing", b, edited(b, x[test], rng, zero_columns=(0, 3, 7)))

    # Categorical: hour of day and a coarse volatility bucket as categories.
    hours = (np.arange(len(x)) % 24).astype(np.float64)
    bucket = np.clip(np.floor(x[:, 1] * 2), 0, 9)
    xc = np.column_stack([x, hours, bucket])
    b = lgb.train({**common, "objective": "binary", "num_leaves": 15, "min_data_per_group": 20, "cat_smooth": 5,
                   "max_cat_to_onehot": 4}, lgb.Dataset(xc[train], y[train], categorical_feature=[13, 14]), 40)
    xe = edited(b, xc[test], rng)
    xe[:, 13] = hours[test]
    xe[:, 14] = bucket[test]
    special = [np.nan, -0.5, -3.0, 2.7, 40.0, 1e12, -1e12, 0.0, 23.0, 9.0]
    for i, v in enumerate(special):
        xe[i, 13] = v
        xe[len(special) + i, 14] = v
    write("categorical", b, xe)

    # Three classes (down, flat, up by a 0.1% move): num_tree_per_iteration 3.
    close_move = np.zeros(len(x))
    close_move[:-1] = np.diff(x[:, 12])  # ROC_10 change as a stand-in for the move
    y3 = np.where(close_move < -0.3, 0, np.where(close_move > 0.3, 2, 1))
    b = lgb.train({**common, "objective": "multiclass", "num_class": 3, "num_leaves": 7}, lgb.Dataset(x[train], y3[train]), 25)
    write("multiclass", b, edited(b, x[test], rng))

    # One-vs-rest and a regression (margin only), and a random forest (average_output).
    b = lgb.train({**common, "objective": "multiclassova", "num_class": 3, "num_leaves": 7}, lgb.Dataset(x[train], y3[train]), 10)
    write("multiclassova", b, edited(b, x[test], rng))
    b = lgb.train({**common, "objective": "regression", "num_leaves": 7}, lgb.Dataset(x[train], x[train][:, 12]), 20)
    write("regression", b, edited(b, x[test], rng))
    b = lgb.train({**common, "objective": "binary", "boosting": "rf", "bagging_fraction": 0.6, "bagging_freq": 1,
                   "feature_fraction": 0.7, "num_leaves": 7}, lgb.Dataset(x[train], y[train]), 15)
    write("random_forest", b, edited(b, x[test], rng))


if __name__ == "__main__":
    main()
