#!/usr/bin/env python3
"""Golden margins for Vane's native tree evaluator (VaneModels.TreeEnsemble), from Python xgboost.

Writes Tests/VaneModelsTests/Fixtures/tree_margins.json: for a binary:logistic and a
multi:softprob model trained here on seeded data, the model as XGBoost's own JSON
(`save_model`), and rows with what `Booster.predict(output_margin=True)` gives for them. The rows
are random values, rows with missing values (NaN) in every feature, and rows whose value of a
split's feature is exactly that split's threshold (XGBoost sends it right: `x < t` goes left).

Debian 12's libxgboost is 1.7.4, so the reference is xgboost==1.7.4 (it needs numpy < 2):

    python3 -m venv /tmp/xgbenv
    /tmp/xgbenv/bin/pip install xgboost==1.7.4 "numpy<2"
    /tmp/xgbenv/bin/python scripts/tree_fixture.py

The same cases saved by later versions, whose JSON differs (3.x writes base_score as a bracketed
list), are the other fixtures the reader is checked on:

    python3 -m venv /tmp/xgb2 && /tmp/xgb2/bin/pip install xgboost==2.1.4 numpy
    /tmp/xgb2/bin/python scripts/tree_fixture.py Tests/VaneModelsTests/Fixtures/tree_margins_xgboost2.json
    python3 -m venv /tmp/xgb3 && /tmp/xgb3/bin/pip install xgboost==3.1.2 numpy
    /tmp/xgb3/bin/python scripts/tree_fixture.py Tests/VaneModelsTests/Fixtures/tree_margins_xgboost3.json
"""

import json
import os
import sys
import tempfile

import numpy as np
import xgboost as xgb

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "VaneModelsTests", "Fixtures", "tree_margins.json")
D = 8


def train(seed, k, rounds, depth):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (2000, D)).astype(np.float32)
    x[rng.random(x.shape) < 0.05] = np.nan
    z = np.nan_to_num(x[:, :k].astype(np.float64)) + 0.5 * np.sin(3 * np.nan_to_num(x[:, 1:2].astype(np.float64)))
    y = np.argmax(z + rng.gumbel(size=z.shape), axis=1) if k > 2 else (z[:, 0] + rng.logistic(size=2000) > 0).astype(int)
    params = {"tree_method": "hist", "max_depth": depth, "eta": 0.1, "subsample": 0.8, "seed": 3, "nthread": 1}
    if k == 2:
        params["objective"] = "binary:logistic"
    else:
        params.update({"objective": "multi:softprob", "num_class": k})
    return xgb.train(params, xgb.DMatrix(x, label=y, missing=np.nan), num_boost_round=rounds), rng


def rows_for(booster, rng):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.json")
        booster.save_model(path)
        text = open(path).read()
    model = json.loads(text)
    rows = [rng.normal(0, 1, D).astype(np.float32) for _ in range(40)]
    for f in range(D):  # a missing value in each feature, and all missing
        row = rng.normal(0, 1, D).astype(np.float32)
        row[f] = np.nan
        rows.append(row)
    rows.append(np.full(D, np.nan, dtype=np.float32))
    taken = 0
    for tree in model["learner"]["gradient_booster"]["model"]["trees"]:
        for node, left in enumerate(tree["left_children"]):
            if left == -1 or taken >= 40:
                continue
            row = rng.normal(0, 1, D).astype(np.float32)
            row[tree["split_indices"][node]] = np.float32(tree["split_conditions"][node])
            rows.append(row)
            taken += 1
    x = np.array(rows, dtype=np.float32)
    margins = booster.predict(xgb.DMatrix(x, missing=np.nan), output_margin=True)
    return text, x, margins


def case(name, seed, k, rounds, depth):
    booster, rng = train(seed, k, rounds, depth)
    text, x, margins = rows_for(booster, rng)
    return {
        "name": name, "classes": k, "features": D, "model_json": text,
        "rows": [[None if np.isnan(v) else float(v) for v in row] for row in x],
        "margins": [[float(v) for v in np.atleast_1d(m)] for m in margins],
    }


def main():
    doc = {"xgboost_version": xgb.__version__,
           "cases": [case("binary", 31, 2, 50, 5), case("three_class", 32, 3, 15, 4)]}
    out = sys.argv[1] if len(sys.argv) > 1 else OUT
    with open(out, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    print({c["name"]: len(c["rows"]) for c in doc["cases"]}, os.path.getsize(out), "bytes")


if __name__ == "__main__":
    main()
