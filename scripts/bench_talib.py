#!/usr/bin/env python3
"""Times TA-Lib on the candles Vane's indicator benchmark uses.

    python3 scripts/bench_talib.py CANDLES.f64 N

CANDLES.f64 is raw little-endian float64: five consecutive arrays of N values each (open, high,
low, close, volume). Each of the 15 indicators runs on the arrays with Vane's parameters; the
best of 5 runs (time.perf_counter) is reported. Prints one JSON object on stdout:
{"talib_version": ..., "n": N, "seconds": {"SMA": s, ...}}. Needs numpy and talib
(pip install ta-lib; the wheel bundles the C library).
"""

import json
import sys
import time

import numpy as np
import talib

RUNS = 5


def main():
    if len(sys.argv) != 3:
        raise SystemExit("usage: bench_talib.py CANDLES.f64 N")
    path, n = sys.argv[1], int(sys.argv[2])
    data = np.fromfile(path, dtype="<f8")
    if data.size != 5 * n:
        raise SystemExit(f"{path}: {data.size} values, expected 5 × {n}")
    o, h, l, c, v = (np.ascontiguousarray(data[k * n:(k + 1) * n]) for k in range(5))
    kernels = {
        "SMA": lambda: talib.SMA(c, 20),
        "EMA": lambda: talib.EMA(c, 20),
        "MACD": lambda: talib.MACD(c, 12, 26, 9),
        "RSI": lambda: talib.RSI(c, 14),
        "ATR": lambda: talib.ATR(h, l, c, 14),
        "NATR": lambda: talib.NATR(h, l, c, 14),
        "BBANDS": lambda: talib.BBANDS(c, 20, 2, 2, 0),
        "STDDEV": lambda: talib.STDDEV(c, 20, 1),
        "ADX": lambda: talib.ADX(h, l, c, 14),
        "OBV": lambda: talib.OBV(c, v),
        "MFI": lambda: talib.MFI(h, l, c, v, 14),
        "STOCH": lambda: talib.STOCH(h, l, c, 14, 3, 0, 3, 0),
        "WILLR": lambda: talib.WILLR(h, l, c, 14),
        "CCI": lambda: talib.CCI(h, l, c, 20),
        "ROC": lambda: talib.ROC(c, 10),
    }
    seconds = {}
    for name, kernel in kernels.items():
        best = float("inf")
        for _ in range(RUNS):
            start = time.perf_counter()
            kernel()
            best = min(best, time.perf_counter() - start)
        seconds[name] = best
    print(json.dumps({"talib_version": talib.__version__, "n": n, "seconds": seconds}))


if __name__ == "__main__":
    main()
