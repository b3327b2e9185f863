#!/usr/bin/env python3
"""The reference side of `vane bench onnx`: makes the benchmark's ONNX models and times ONNX
Runtime on them (CPU, intra_op_num_threads=1, inter_op_num_threads=1), a round at a time, so the
benchmark can alternate rounds of ONNX Runtime and of Vane's engine (drift on a noisy machine
then hits both).

Usage: bench_onnx.py OUTDIR [--calls N] [--batches N] [--only PREFIX,...]

Writes into OUTDIR, for each model NAME: NAME.onnx, NAME.single.bin and NAME.batch.bin (the
one-row and 256-row float32 inputs, little-endian) and NAME.out.bin (ONNX Runtime's first output
on the batch, float32); prints one JSON line: the ONNX Runtime version and per model its input
name and shape. Then, for each line NAME read from standard input, times that model once (50
warm-up calls, N single-row calls, N batches of 256 rows) and prints one JSON line: single-row
p50/p99 (microseconds) and batch rows per second. Ends at the end of its input.

Models: an MLP 78-512-256-128-3 with batch norm (PyTorch export), an LSTM over 48 steps of 16
features with 3 sigmoid heads (PyTorch), a 300-tree LightGBM binary classifier (onnxmltools) and a
logistic regression (skl2onnx) — the last two fitted on the real BTC indicator rows of the TA-Lib
golden file, the networks' weights seeded (their speed does not depend on training).
"""

import io
import json
import os
import sys
import time

import numpy as np
import onnxruntime as ort

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from onnx_foreign_fixtures import features  # noqa: E402


def session(data):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])


def time_round(s, name, single, batch, calls, batches):
    for _ in range(50):
        s.run(None, {name: single})
    samples = []
    for _ in range(calls):
        start = time.perf_counter_ns()
        s.run(None, {name: single})
        samples.append((time.perf_counter_ns() - start) / 1000)
    samples.sort()
    start = time.perf_counter()
    for _ in range(batches):
        s.run(None, {name: batch})
    rows_per_second = batches * batch.shape[0] / (time.perf_counter() - start)
    return {
        "p50_us": samples[len(samples) // 2],
        "p99_us": samples[min(len(samples) - 1, int(len(samples) * 0.99))],
        "rows_per_second": rows_per_second,
    }


def models():
    import torch

    torch.manual_seed(0)
    mlp = torch.nn.Sequential(
        torch.nn.Linear(78, 512), torch.nn.BatchNorm1d(512), torch.nn.ReLU(),
        torch.nn.Linear(512, 256), torch.nn.BatchNorm1d(256), torch.nn.ReLU(),
        torch.nn.Linear(256, 128), torch.nn.BatchNorm1d(128), torch.nn.ReLU(),
        torch.nn.Linear(128, 3), torch.nn.Softmax(dim=-1)).eval()

    class Recurrent(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = torch.nn.LSTM(16, 64, batch_first=True)
            self.heads = torch.nn.Linear(64, 3)

        def forward(self, windows):
            out, _ = self.lstm(windows)
            return torch.sigmoid(self.heads(out[:, -1, :]))

    rng = np.random.default_rng(0)
    out = []
    for name, module, shape in (("mlp_78_512_256_128_3", mlp, (78,)), ("lstm_48x16_3heads", Recurrent().eval(), (48, 16))):
        buffer = io.BytesIO()
        example = torch.from_numpy(rng.standard_normal((2,) + shape).astype(np.float32))
        torch.onnx.export(module, example, buffer, input_names=["x"], output_names=["scores"], dynamic_axes={"x": {0: "batch"}},
                          opset_version=17, dynamo=False)
        out.append((name, buffer.getvalue(), "x", rng.standard_normal((256,) + shape).astype(np.float32)))

    x, y = features()
    import lightgbm
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType
    booster = lightgbm.LGBMClassifier(n_estimators=300, num_leaves=31, learning_rate=0.05, verbose=-1, random_state=0).fit(x, y)
    lgbm = convert_lightgbm(booster, initial_types=[("x", FloatTensorType([None, x.shape[1]]))], target_opset=15, zipmap=False)
    out.append(("lightgbm_300_trees", lgbm.SerializeToString(), "x", x[-256:]))
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression
    logistic = to_onnx(LogisticRegression(max_iter=1000).fit(x, y), x[:1], target_opset={"": 17, "ai.onnx.ml": 3},
                       options={"zipmap": False})
    out.append(("logistic_regression", logistic.SerializeToString(), "X", x[-256:]))
    return out


def main():
    directory = sys.argv[1]
    calls = int(sys.argv[sys.argv.index("--calls") + 1]) if "--calls" in sys.argv else 2000
    batches = int(sys.argv[sys.argv.index("--batches") + 1]) if "--batches" in sys.argv else 50
    os.makedirs(directory, exist_ok=True)
    header = {"onnxruntime": ort.__version__, "models": {}}
    only = sys.argv[sys.argv.index("--only") + 1].split(",") if "--only" in sys.argv else None
    sessions = {}
    for name, data, input_name, batch in models():
        if only and not any(name.startswith(prefix) for prefix in only):
            continue
        s = session(data)
        first = np.asarray(s.run(None, {input_name: batch})[0], dtype=np.float32)
        with open(os.path.join(directory, name + ".onnx"), "wb") as f:
            f.write(data)
        batch[:1].astype("<f4").tofile(os.path.join(directory, name + ".single.bin"))
        batch.astype("<f4").tofile(os.path.join(directory, name + ".batch.bin"))
        first.astype("<f4").tofile(os.path.join(directory, name + ".out.bin"))
        sessions[name] = (s, input_name, batch[:1], batch)
        header["models"][name] = {"input": input_name, "shape": list(batch.shape)}
    print(json.dumps(header), flush=True)
    for line in sys.stdin:
        name = line.strip()
        if name not in sessions:
            print(json.dumps({"error": "unknown model " + name[:80]}), flush=True)
            continue
        s, input_name, single, batch = sessions[name]
        print(json.dumps(time_round(s, input_name, single, batch, calls, batches)), flush=True)


if __name__ == "__main__":
    main()
