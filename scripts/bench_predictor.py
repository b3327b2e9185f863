#!/usr/bin/env python3
"""Times ONNX Runtime (CPU, one thread) on the models `vane bench predictor` times natively.

Usage: bench_predictor.py CASES.json

CASES.json lists the models, each with its ONNX file, input name, the rows to run
(row-major, one row = `row_shape` values) and how often:

    {"repeats": 2000, "batch": 256, "batch_repeats": 50,
     "cases": [{"name": "mlp", "model": "/path/mlp.onnx", "input": "features",
                "row_shape": [78], "rows": [[...], ...]}]}

Single-sample latency: one `InferenceSession.run` per call on one row (cycling through the rows),
after 200 untimed calls; p50 and p99 in microseconds. Batch: `batch` rows per run, each of
`batch_repeats` runs timed alone, rows/s from the median run. Prints one JSON document:

    {"onnxruntime": "1.x", "results": {"mlp": {"p50_us": ..., "p99_us": ..., "batch_rows_per_second": ...}}}

Exit status 2 when onnxruntime cannot be imported.
"""

import json
import sys
import time


def main(argv):
    if len(argv) != 2:
        print("usage: bench_predictor.py CASES.json", file=sys.stderr)
        return 64
    try:
        import numpy as np
        import onnxruntime as ort
    except ImportError as error:
        print(json.dumps({"error": f"cannot import onnxruntime/numpy: {error}"}))
        return 2
    with open(argv[1]) as handle:
        spec = json.load(handle)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    results = {}
    for case in spec["cases"]:
        session = ort.InferenceSession(case["model"], options, providers=["CPUExecutionProvider"])
        shape = case["row_shape"]
        rows = np.array(case["rows"], dtype=np.float64).reshape([-1] + shape)
        singles = [rows[i : i + 1] for i in range(len(rows))]
        name = case["input"]
        for i in range(200):
            session.run(None, {name: singles[i % len(singles)]})
        latencies = []
        for i in range(spec["repeats"]):
            start = time.perf_counter_ns()
            session.run(None, {name: singles[i % len(singles)]})
            latencies.append((time.perf_counter_ns() - start) / 1000)
        latencies.sort()
        batch = np.concatenate([rows] * (spec["batch"] // len(rows) + 1))[: spec["batch"]]
        session.run(None, {name: batch})
        # Each batch timed alone, the median taken (as vane times its own batches).
        batch_seconds = []
        for _ in range(spec["batch_repeats"]):
            start = time.perf_counter()
            session.run(None, {name: batch})
            batch_seconds.append(time.perf_counter() - start)
        batch_seconds.sort()
        results[case["name"]] = {
            "p50_us": latencies[len(latencies) // 2],
            "p99_us": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
            "batch_rows_per_second": spec["batch"] / batch_seconds[len(batch_seconds) // 2],
        }
    print(json.dumps({"onnxruntime": ort.__version__, "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
