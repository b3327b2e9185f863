#!/usr/bin/env python3
"""Times the reference model libraries (xgboost, lightgbm, PyTorch CPU) on the rows `vane bench
models` times Vane's trainer on, with the settings it chose.

    python3 scripts/bench_models.py DATAFILE

DATAFILE (written by `vane bench models`):
    8 bytes   little-endian uint64 H: the length of the JSON header
    H bytes   the JSON header (UTF-8, padded with spaces to a multiple of 8), holding at least
              rows, columns, repeats, threads and the "xgboost", "lightgbm" and "mlp" settings
    float64   rows x columns, row-major: the raw features (NaN missing) for the trees
    float64   rows x columns, row-major: standard-scaled features, NaN replaced by 0, for the MLP
    float64   rows: the labels (0 or 1)
all little-endian.

Prints one JSON object: {"python": ..., "numpy": ..., "threads": T, "xgboost": R, "lightgbm": R,
"torch_float32": R, "torch_float64": R, "sklearn_logreg": R}, where R is {"version", "seconds" (every run), "best"}
plus details, or {"error": why} when the package is missing or the run failed (no figure then).

Each run is timed with time.perf_counter and includes what Vane's call includes:
  xgboost   DMatrix from the float64 array + xgb.train(params, rounds) + save_raw("json")
            (Vane: XGBoostModel.fit builds its DMatrix, trains and saves the model as JSON)
  lightgbm  lgb.Dataset + lgb.train (the Dataset's binning happens inside train); then, apart,
            Booster.predict(raw_score=True) on every row ("predict_seconds"), the model saved as
            DATAFILE.lightgbm.txt and its raw scores as DATAFILE.lightgbm.raw.bin (float64) for
            Vane's native LightGBM evaluator to be timed and checked on the same rows
  torch     the network and optimiser built, then one epoch: a shuffled order, mini-batches of
            batch_size (a last batch of one row folded into the previous batch, as Vane does),
            forward, the focal loss (Vane's definition: softmax, label smoothing, per-class alpha,
            (1 - p)^gamma), backward, gradient-norm clipping, AdamW (decay on weights only);
            weights initialised as Vane's (He-uniform hidden, Glorot-uniform output, zero biases)
  sklearn_logreg  LogisticRegression(solver="newton-cholesky", C=1/l2, tol, max_iter).fit on the
            scaled features (the MLP's) and the labels; its coef and intercept come back too, for
            Vane's to be compared with
Only the standard library, numpy, xgboost, lightgbm, torch and scikit-learn.
"""

import json
import math
import os
import platform
import struct
import sys
import time
import traceback

import numpy as np


def read(path):
    with open(path, "rb") as f:
        blob = f.read()
    (length,) = struct.unpack_from("<Q", blob, 0)
    header = json.loads(blob[8 : 8 + length].decode("utf-8"))
    rows, columns = header["rows"], header["columns"]
    offset = 8 + length
    values = np.frombuffer(blob, dtype="<f8", offset=offset, count=2 * rows * columns + rows)
    raw = values[: rows * columns].reshape(rows, columns).copy()
    scaled = values[rows * columns : 2 * rows * columns].reshape(rows, columns).copy()
    labels = values[2 * rows * columns :].copy()
    return header, raw, scaled, labels


def timed(fn, repeats):
    seconds, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        seconds.append(time.perf_counter() - start)
    return seconds, result


def guarded(fn):
    """Runs fn; a missing package or a failure becomes {"error": ...} (never a figure)."""
    try:
        return fn()
    except ImportError as error:
        return {"error": f"not installed: {error}"}
    except Exception as error:  # noqa: BLE001 — report any failure instead of a number
        traceback.print_exc(file=sys.stderr)
        return {"error": f"{type(error).__name__}: {error}"}


def bench_xgboost(header, raw, labels):
    import xgboost as xgb

    s = header["xgboost"]
    params = {
        "booster": "gbtree", "tree_method": s["tree_method"], "max_depth": s["max_depth"], "eta": s["eta"],
        "subsample": s["subsample"], "colsample_bytree": s["colsample_bytree"], "min_child_weight": s["min_child_weight"],
        "lambda": s["lambda"], "alpha": s["alpha"], "gamma": s["gamma"], "max_bin": s["max_bin"], "seed": s["seed"],
        "nthread": header["threads"], "objective": "binary:logistic", "eval_metric": "logloss", "verbosity": 0,
    }
    if s.get("device", "cpu") != "cpu":
        # As Vane passes it: only when not the CPU (xgboost before 2.0 has no such parameter).
        params["device"] = s["device"]

    def run():
        train = xgb.DMatrix(raw, label=labels, missing=np.nan, nthread=header["threads"])
        booster = xgb.train(params, train, num_boost_round=s["rounds"])
        booster.save_raw("json")
        return booster

    seconds, booster = timed(run, header["repeats_trees"])
    return {"version": xgb.__version__, "seconds": seconds, "best": min(seconds), "trees": booster.num_boosted_rounds(), "params": params}


def bench_lightgbm(header, raw, labels):
    import lightgbm as lgb

    s = header["lightgbm"]
    params = {
        "objective": "binary", "num_leaves": s["num_leaves"], "max_depth": s["max_depth"], "learning_rate": s["learning_rate"],
        "max_bin": s["max_bin"], "feature_fraction": 1.0, "bagging_fraction": 1.0, "bagging_freq": 0,
        "num_threads": header["threads"], "seed": s["seed"], "verbose": -1,
    }

    def run():
        train = lgb.Dataset(raw, label=labels, params={"max_bin": s["max_bin"], "verbose": -1})
        return lgb.train(params, train, num_boost_round=s["rounds"])

    seconds, booster = timed(run, header["repeats_trees"])
    # The trained model as a text file and its raw scores on every row, for Vane's LightGBM
    # reader and native evaluator, and lightgbm's own predict timed on the same rows.
    datafile = sys.argv[1]
    booster.save_model(datafile + ".lightgbm.txt")
    predict_seconds, raw_scores = timed(lambda: booster.predict(raw, raw_score=True, num_threads=header["threads"]), header["repeats_trees"])
    np.asarray(raw_scores, dtype="<f8").tofile(datafile + ".lightgbm.raw.bin")
    return {"version": lgb.__version__, "seconds": seconds, "best": min(seconds), "trees": booster.num_trees(), "params": params,
            "predict_seconds": predict_seconds, "predict_best": min(predict_seconds)}


def torch_setup(header, part, dtype_name):
    """torch with the header's threads and the part's seed; the part's settings and the dtype."""
    import torch

    s = header[part]
    torch.set_num_threads(header["threads"])
    torch.manual_seed(s["seed"])
    return s, {"float32": torch.float32, "float64": torch.float64}[dtype_name]


def torch_figures(seconds, loss, dtype_name):
    import torch

    return {
        "version": torch.__version__, "seconds": seconds, "best": min(seconds), "epoch_loss": loss, "dtype": dtype_name,
        "threads": torch.get_num_threads(),
    }


def bench_torch(header, scaled, labels, dtype_name):
    import torch
    from torch import nn

    s, dtype = torch_setup(header, "mlp", dtype_name)
    # "cuda": the same epoch on the GPU (float32), as `vane bench models --device cuda` runs Vane's.
    device = torch.device(s.get("device", "cpu"))
    x_all = torch.from_numpy(scaled).to(dtype).contiguous().to(device)
    y_all = torch.from_numpy(labels.astype(np.int64)).to(device)
    count, width = x_all.shape
    classes = s["classes"]
    gamma, alpha, smoothing = s["focal_gamma"], s["focal_alpha"], s["label_smoothing"]
    alphas = torch.tensor([1 - alpha, alpha] if classes == 2 else [alpha] * classes, dtype=dtype, device=device)

    def focal(logits, y):
        log_p = torch.log_softmax(logits, dim=1)
        p = log_p.exp()
        target = torch.full_like(logits, smoothing / classes)
        target.scatter_(1, y.unsqueeze(1), 1 - smoothing + smoothing / classes)
        return -(target * alphas * (1 - p).pow(gamma) * log_p).sum(dim=1).mean()

    def run():
        layers, previous = [], width
        for units in s["units"]:
            layers += [nn.Linear(previous, units), nn.BatchNorm1d(units, eps=s["bn_eps"], momentum=s["bn_momentum"]), nn.ReLU(), nn.Dropout(s["dropout"])]
            previous = units
        layers.append(nn.Linear(previous, classes))
        model = nn.Sequential(*layers).to(dtype).to(device)
        # Vane's initialisation: He-uniform hidden weights, Glorot-uniform output, zero biases.
        with torch.no_grad():
            linears = [m for m in model if isinstance(m, nn.Linear)]
            for i, linear in enumerate(linears):
                fan_in, fan_out = linear.in_features, linear.out_features
                bound = math.sqrt(6.0 / fan_in) if i < len(linears) - 1 else math.sqrt(6.0 / (fan_in + fan_out))
                linear.weight.uniform_(-bound, bound)
                linear.bias.zero_()
        model.train()
        decay = [m.weight for m in model if isinstance(m, nn.Linear)]
        decay_ids = {id(p) for p in decay}
        rest = [p for p in model.parameters() if id(p) not in decay_ids]
        optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": s["weight_decay"]}, {"params": rest, "weight_decay": 0.0}], lr=s["learning_rate"])
        order = torch.randperm(count).to(device)
        total, start, batch = 0.0, 0, s["batch_size"]
        while start < count:
            end = min(start + batch, count)
            if count - end == 1:
                end = count
            rows = order[start:end]
            start = end
            optimizer.zero_grad(set_to_none=True)
            loss = focal(model(x_all[rows]), y_all[rows])
            loss.backward()
            if s["clip_norm"] > 0:
                nn.utils.clip_grad_norm_(model.parameters(), s["clip_norm"])
            optimizer.step()
            total += loss.item() * len(rows)
        return total / count

    seconds, loss = timed(run, header["repeats_mlp"])
    return torch_figures(seconds, loss, dtype_name)


def bench_torch_lstm(header, scaled, labels, dtype_name):
    import torch
    from torch import nn

    s, dtype = torch_setup(header, "lstm", dtype_name)
    device = torch.device(s.get("device", "cpu"))
    rows, width = scaled.shape
    windows, length, hidden = s["windows"], s["sequence_length"], s["hidden_size"]
    first = rows - windows - length + 1
    # The same windows as Vane's: window k is rows first + k ... first + k + length - 1,
    # labelled by its last row.
    x_all = torch.from_numpy(
        np.lib.stride_tricks.sliding_window_view(scaled[first:], (length, width))[:windows, 0].copy()
    ).to(dtype).contiguous().to(device)
    y_all = torch.from_numpy(labels[first + length - 1 : first + length - 1 + windows].astype(np.float64)).to(dtype).to(device)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(width, hidden, num_layers=1, batch_first=True)
            self.dropout = nn.Dropout(s["dropout"])
            self.head = nn.Linear(hidden, 1)

        def forward(self, x):
            out, _ = self.lstm(x)
            return self.head(self.dropout(out[:, -1, :])).squeeze(1)

    def run():
        model = Net().to(dtype).to(device)
        model.train()
        decay = [p for name, p in model.named_parameters() if "weight" in name]
        decay_ids = {id(p) for p in decay}
        rest = [p for p in model.parameters() if id(p) not in decay_ids]
        optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": s["weight_decay"]}, {"params": rest, "weight_decay": 0.0}], lr=s["learning_rate"])
        loss_fn = nn.BCEWithLogitsLoss()
        order = torch.randperm(windows).to(device)
        total, batch = 0.0, s["batch_size"]
        for start in range(0, windows, batch):
            rows_ = order[start : start + batch]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(x_all[rows_]), y_all[rows_])
            loss.backward()
            if s["clip_norm"] > 0:
                nn.utils.clip_grad_norm_(model.parameters(), s["clip_norm"])
            optimizer.step()
            total += loss.item() * len(rows_)
        return total / windows

    seconds, loss = timed(run, header["repeats_mlp"])
    return torch_figures(seconds, loss, dtype_name)


def bench_sklearn_logreg(header, scaled, labels):
    import sklearn
    from sklearn.linear_model import LogisticRegression

    s = header["logreg"]

    def run():
        model = LogisticRegression(
            C=1.0 / s["l2"], solver="newton-cholesky", tol=s["tolerance"], max_iter=s["max_iterations"]
        )
        return model.fit(scaled, labels.astype(np.int64))

    seconds, model = timed(run, header["repeats_trees"])
    return {
        "version": sklearn.__version__,
        "seconds": seconds,
        "best": min(seconds),
        "coef": model.coef_[0].tolist(),
        "intercept": float(model.intercept_[0]),
        "iterations": int(model.n_iter_[0]),
    }


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    header, raw, scaled, labels = read(sys.argv[1])
    os.environ.setdefault("OMP_NUM_THREADS", str(header["threads"]))
    out = {"python": platform.python_version(), "numpy": np.__version__, "threads": header["threads"], "rows": len(labels)}
    parts = header.get("parts", ["xgboost", "lightgbm", "torch_float32", "torch_float64"])
    if "xgboost" in parts:
        out["xgboost"] = guarded(lambda: bench_xgboost(header, raw, labels))
    if "lightgbm" in parts:
        out["lightgbm"] = guarded(lambda: bench_lightgbm(header, raw, labels))
    for dtype in ("float32", "float64"):
        if f"torch_{dtype}" in parts:
            out[f"torch_{dtype}"] = guarded(lambda dtype=dtype: bench_torch(header, scaled, labels, dtype))
    for dtype in ("float32", "float64"):
        if f"torch_lstm_{dtype}" in parts:
            out[f"torch_lstm_{dtype}"] = guarded(lambda dtype=dtype: bench_torch_lstm(header, scaled, labels, dtype))
    if "sklearn_logreg" in parts:
        out["sklearn_logreg"] = guarded(lambda: bench_sklearn_logreg(header, scaled, labels))
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
