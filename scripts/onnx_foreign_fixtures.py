#!/usr/bin/env python3
"""ONNX models Vane did not make, with ONNX Runtime's answers, for the ONNX engine's parity tests.

Features are real: 13 scale-free indicators of BTCUSDT 1h bars (RSI, NATR, MACD histogram over
close, the Bollinger z-score, ADX and the DI pair, MFI, stochastics, Williams %R, CCI, ROC),
taken from the TA-Lib golden file Tests/VaneFeaturesTests/Fixtures/talib_btc_1h_golden.csv.gz;
the label is whether the next bar closes higher. Models, each exported by its own tool:

- skl2onnx: logistic regression (LinearClassifier + ZipMap), a StandardScaler + logistic
  regression pipeline (Scaler), an MLPClassifier (MatMul/Add/Relu/Softmax), a random forest
  (TreeEnsembleClassifier), a linear regression (LinearRegressor);
- onnxmltools: LightGBM binary (300 trees) and 3-class (TreeEnsembleClassifier);
- PyTorch (torch.onnx.export, when torch is installed): an MLP 13-64-32-3 with batch norm, an
  LSTM over 16-bar windows with 3 heads, and a one-layer self-attention block
  (MatMul + Softmax + Transpose + Reshape).

For each model: NAME.onnx and NAME.json ({"inputs": {name: {"dtype", "shape", "data"}},
"outputs": {name: {...}}}) with ONNX Runtime's outputs (intra_op_num_threads=1) on 64 held-out rows.

Regenerate (from the repository root):

    pip install onnxruntime onnx scikit-learn skl2onnx onnxmltools lightgbm
    pip install --no-deps torch --index-url https://download.pytorch.org/whl/cpu   # optional
    python3 scripts/onnx_foreign_fixtures.py
"""

import gzip
import json
import os

import numpy as np
import onnxruntime as ort

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
GOLDEN = os.path.join(ROOT, "Tests", "VaneFeaturesTests", "Fixtures", "talib_btc_1h_golden.csv.gz")
OUT = os.path.join(ROOT, "Tests", "VaneONNXTests", "Fixtures", "foreign")


def features():
    with gzip.open(GOLDEN, "rt") as f:
        header = f.readline().strip().split(",")
        rows = np.array([[float(v) for v in line.strip().split(",")] for line in f])
    col = {name: rows[:, i] for i, name in enumerate(header)}
    close = col["close"]
    x = np.stack([
        col["RSI_14"] / 100, col["NATR_14"], col["MACD_HIST_12_26_9"] / close * 100,
        (close - col["BBANDS_MIDDLE_20_2_2"]) / col["STDDEV_20_1"], col["ADX_14"] / 100, col["PLUS_DI_14"] / 100,
        col["MINUS_DI_14"] / 100, col["MFI_14"] / 100, col["STOCH_SLOWK_14_3_3"] / 100, col["STOCH_SLOWD_14_3_3"] / 100,
        col["WILLR_14"] / 100, col["CCI_20"] / 100, col["ROC_10"],
    ], axis=1)
    y = np.zeros(len(close), dtype=np.int64)
    y[:-1] = close[1:] > close[:-1]
    keep = np.all(np.isfinite(x), axis=1)
    keep[-1] = False
    return x[keep].astype(np.float32), y[keep]


def tensor_json(a):
    a = np.asarray(a)
    dtype = {"float32": "float32", "float64": "float64", "int64": "int64", "int32": "int32", "bool": "bool"}[a.dtype.name]
    return {"dtype": dtype, "shape": list(a.shape), "data": a.reshape(-1).tolist()}


def save(name, model_bytes, inputs):
    session = ort.InferenceSession(model_bytes, sess_options=options(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    results = session.run(None, inputs)
    outputs = {}
    for output, value in zip(names, results):
        if isinstance(value, list):  # ZipMap: a list of {label: probability}
            keys = sorted(value[0].keys())
            value = np.array([[row[k] for k in keys] for row in value], dtype=np.float32)
        outputs[output] = tensor_json(value)
    with open(os.path.join(OUT, name + ".onnx"), "wb") as f:
        f.write(model_bytes)
    with open(os.path.join(OUT, name + ".json"), "w") as f:
        json.dump({"inputs": {k: tensor_json(v) for k, v in inputs.items()}, "outputs": outputs}, f)
    print(name, {k: v["shape"] for k, v in outputs.items()})


def options():
    o = ort.SessionOptions()
    o.intra_op_num_threads = 1
    return o


def main():
    os.makedirs(OUT, exist_ok=True)
    x, y = features()
    train, test = slice(0, len(x) - 64), slice(len(x) - 64, len(x))
    from skl2onnx import to_onnx
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    sk = {
        "skl2onnx_logistic": LogisticRegression(max_iter=1000).fit(x[train], y[train]),
        "skl2onnx_scaler_logistic": make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x[train], y[train]),
        "skl2onnx_mlp": MLPClassifier(hidden_layer_sizes=(32, 16), max_iter=2000, random_state=0).fit(x[train], y[train]),
        "skl2onnx_forest": RandomForestClassifier(n_estimators=20, max_depth=6, random_state=0).fit(x[train], y[train]),
        "skl2onnx_linear_regression": LinearRegression().fit(x[train], np.diff(np.append(x[:, 0], x[-1, 0]))[train]),
    }
    for name, model in sk.items():
        save(name, to_onnx(model, x[:1], target_opset={"": 17, "ai.onnx.ml": 3}).SerializeToString(), {"X": x[test]})

    import lightgbm
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType
    three = np.clip(y[1:] + y[:-1], 0, 2)
    for name, labels, trees in (("onnxmltools_lightgbm_binary", y, 300), ("onnxmltools_lightgbm_3class", np.append(three, 0), 40)):
        booster = lightgbm.LGBMClassifier(n_estimators=trees, num_leaves=15, learning_rate=0.05, verbose=-1, random_state=0)
        booster.fit(x[train], labels[train])
        onnx_model = convert_lightgbm(booster, initial_types=[("input", FloatTensorType([None, x.shape[1]]))], target_opset=15, zipmap=False)
        save(name, onnx_model.SerializeToString(), {"input": x[test]})

    try:
        import torch
    except ImportError:
        print("torch is not installed: the PyTorch models are not regenerated")
        return
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(
        torch.nn.Linear(13, 64), torch.nn.BatchNorm1d(64), torch.nn.ReLU(), torch.nn.Linear(64, 32), torch.nn.BatchNorm1d(32),
        torch.nn.GELU(), torch.nn.Linear(32, 3), torch.nn.Softmax(dim=-1))
    with torch.no_grad():
        mlp(torch.from_numpy(x[train]))  # running statistics from real rows
    mlp.eval()

    class Recurrent(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = torch.nn.LSTM(13, 24, num_layers=2, batch_first=True)
            self.heads = torch.nn.Linear(24, 3)

        def forward(self, windows):
            out, _ = self.lstm(windows)
            return torch.sigmoid(self.heads(out[:, -1, :]))

    class Attention(torch.nn.Module):
        def __init__(self, width=13, heads=1):
            super().__init__()
            self.q, self.k, self.v = (torch.nn.Linear(width, 16) for _ in range(3))
            self.out = torch.nn.Linear(16, 2)
            self.norm = torch.nn.LayerNorm(16)

        def forward(self, windows):
            q, k, v = self.q(windows), self.k(windows), self.v(windows)
            weights = torch.softmax(torch.matmul(q, k.transpose(1, 2)) / 4.0, dim=-1)
            mixed = self.norm(torch.matmul(weights, v))
            return torch.softmax(self.out(mixed.reshape(mixed.shape[0], -1, 16)[:, -1, :]), dim=-1)

    windows = np.stack([x[i - 16:i] for i in range(len(x) - 64, len(x))]).astype(np.float32)
    for name, module, example, input_name in (
        ("pytorch_mlp_batchnorm", mlp, x[test], "features"),
        ("pytorch_lstm", Recurrent().eval(), windows, "windows"),
        ("pytorch_attention", Attention().eval(), windows, "windows"),
    ):
        import io
        buffer = io.BytesIO()
        torch.onnx.export(module, torch.from_numpy(example), buffer, input_names=[input_name], output_names=["scores"],
                          dynamic_axes={input_name: {0: "batch"}}, opset_version=17, dynamo=False)
        save(name, buffer.getvalue(), {input_name: example})


if __name__ == "__main__":
    main()
