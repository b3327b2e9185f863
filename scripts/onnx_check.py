#!/usr/bin/env python3
"""Runs Vane's exported ONNX models with ONNX Runtime and compares them with the native outputs.

Usage: onnx_check.py DIR

DIR/cases.json (written by Tests/VaneONNXTests) lists the cases:

    {"cases": [{"name": "...", "model": "file.onnx", "input": "features", "input_shape": [N, F],
                "inputs": [...], "output": "probabilities", "output_shape": [N, K],
                "expected": [...]}]}

Values are row-major; non-finite values are the strings "nan", "inf" and "-inf". For each case the
script runs onnx.checker.check_model (full check) when the onnx package is installed, runs the
model on the CPU with ONNX Runtime (one thread) and prints one JSON document on stdout:

    {"onnxruntime": "1.x", "onnx": "1.x" | null,
     "results": [{"name": ..., "max_abs_diff": float | null, "checker": "ok" | "skipped" | "error: ...",
                  "producer": ..., "metadata": {...}, "error": null | "..."}]}

Exit status: 0 when every case ran (the caller judges the differences), 1 when a case could not
run, 2 when onnxruntime cannot be imported.
"""

import json
import math
import os
import sys


def values(raw):
    return [float(v) if isinstance(v, str) else v for v in raw]


def main(argv):
    if len(argv) != 2:
        print("usage: onnx_check.py DIR", file=sys.stderr)
        return 64
    directory = argv[1]
    try:
        import numpy as np
        import onnxruntime as ort
    except ImportError as error:
        print(json.dumps({"error": f"cannot import onnxruntime/numpy: {error}"}))
        return 2
    try:
        import onnx
        import onnx.checker
    except ImportError:
        onnx = None

    with open(os.path.join(directory, "cases.json")) as handle:
        cases = json.load(handle)["cases"]

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3

    results = []
    failed = False
    for case in cases:
        result = {"name": case["name"], "max_abs_diff": None, "checker": "skipped", "producer": None, "metadata": {}, "error": None}
        path = os.path.join(directory, case["model"])
        try:
            if onnx is not None:
                try:
                    onnx.checker.check_model(path, full_check=True)
                    result["checker"] = "ok"
                except Exception as error:  # the checker's own exception types vary by version
                    result["checker"] = f"error: {error}"
            session = ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])
            meta = session.get_modelmeta()
            result["producer"] = meta.producer_name
            result["metadata"] = dict(meta.custom_metadata_map)
            x = np.array(values(case["inputs"]), dtype=np.float64).reshape(case["input_shape"])
            (y,) = session.run([case["output"]], {case["input"]: x})
            expected = np.array(values(case["expected"]), dtype=np.float64).reshape(case["output_shape"])
            if y.dtype != np.float64:
                raise ValueError(f"output element type is {y.dtype}, expected float64")
            if list(y.shape) != list(expected.shape):
                raise ValueError(f"output shape {list(y.shape)}, expected {list(expected.shape)}")
            difference = np.abs(y - expected)
            worst = float(np.max(difference)) if difference.size else 0.0
            if np.isnan(difference).any():
                worst = math.inf
            result["max_abs_diff"] = worst if math.isfinite(worst) else "inf"
        except Exception as error:
            result["error"] = f"{type(error).__name__}: {error}"
            failed = True
        results.append(result)

    print(json.dumps({
        "onnxruntime": ort.__version__,
        "onnx": onnx.__version__ if onnx is not None else None,
        "results": results,
    }))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
