#!/usr/bin/env python3
"""Golden values for Vane's indicator kernels, computed by TA-Lib on real BTC 1h candles.

Writes Tests/VaneFeaturesTests/Fixtures/talib_btc_1h_golden.csv.gz: a header of column names,
then one line per candle for the first 4,000 data rows of binance_BTCUSDT_1h.csv.gz. Values are
printed with repr(float) (shortest round-trip) and `nan` for NaN. The first column is the close,
so the test can check that it reads the same rows.

Regenerate (from the repository root):

    pip install ta-lib==0.8.2 numpy      # the wheel bundles TA-Lib C 0.8.1
    python3 scripts/talib_golden.py      # or: python3 scripts/talib_golden.py MARKET_DIR OUT_FILE

The market directory is $VANE_MARKET_DATA, else ../shared/data/market beside the checkout.
Generated with talib 0.8.2 (TA-Lib C 0.8.1). TA-Lib 0.8 changed several kernels from 0.4
(fused multiply-adds in EMA/MACD/ATR, a re-anchored variance, scale-aware zero tests), so a
different TA-Lib version can give different low-order digits: the Swift kernels follow 0.8.1.
Uses only the standard library, numpy and talib.
"""

import gzip
import os
import sys

import numpy as np
import talib

ROWS = 4000
MARKET_FILE = "binance_BTCUSDT_1h.csv.gz"
EXPECTED_TALIB = "0.8.2"


def market_directory(root):
    env = os.environ.get("VANE_MARKET_DATA")
    if env:
        return env
    return os.path.join(os.path.dirname(root), "shared", "data", "market")


def read_candles(path, rows):
    """ts,open,high,low,close,volume → five float64 arrays (the first `rows` data rows)."""
    columns = [[] for _ in range(5)]
    with gzip.open(path, "rt") as handle:
        header = handle.readline().strip().split(",")
        if header[:6] != ["ts", "open", "high", "low", "close", "volume"]:
            raise SystemExit(f"{path}: unexpected header {header}")
        for line in handle:
            if len(columns[0]) == rows:
                break
            fields = line.strip().split(",")
            for column, field in zip(columns, fields[1:6]):
                column.append(float(field))
    if len(columns[0]) != rows:
        raise SystemExit(f"{path}: only {len(columns[0])} rows")
    return [np.array(column, dtype=np.float64) for column in columns]


def golden_columns(o, h, l, c, v):
    """The indicators with the parameters IndicatorTests.swift uses, in file order."""
    macd, macd_signal, macd_hist = talib.MACD(c, fastperiod=12, slowperiod=26, signalperiod=9)
    upper, middle, lower = talib.BBANDS(c, timeperiod=20, nbdevup=2, nbdevdn=2, matype=0)
    slowk, slowd = talib.STOCH(h, l, c, fastk_period=14, slowk_period=3, slowk_matype=0,
                               slowd_period=3, slowd_matype=0)
    return [
        ("close", c),
        ("SMA_20", talib.SMA(c, timeperiod=20)),
        ("EMA_20", talib.EMA(c, timeperiod=20)),
        ("MACD_12_26_9", macd),
        ("MACD_SIGNAL_12_26_9", macd_signal),
        ("MACD_HIST_12_26_9", macd_hist),
        ("RSI_14", talib.RSI(c, timeperiod=14)),
        ("ATR_14", talib.ATR(h, l, c, timeperiod=14)),
        ("NATR_14", talib.NATR(h, l, c, timeperiod=14)),
        ("BBANDS_UPPER_20_2_2", upper),
        ("BBANDS_MIDDLE_20_2_2", middle),
        ("BBANDS_LOWER_20_2_2", lower),
        ("STDDEV_20_1", talib.STDDEV(c, timeperiod=20, nbdev=1)),
        ("ADX_14", talib.ADX(h, l, c, timeperiod=14)),
        ("PLUS_DI_14", talib.PLUS_DI(h, l, c, timeperiod=14)),
        ("MINUS_DI_14", talib.MINUS_DI(h, l, c, timeperiod=14)),
        ("OBV", talib.OBV(c, v)),
        ("MFI_14", talib.MFI(h, l, c, v, timeperiod=14)),
        ("STOCH_SLOWK_14_3_3", slowk),
        ("STOCH_SLOWD_14_3_3", slowd),
        ("WILLR_14", talib.WILLR(h, l, c, timeperiod=14)),
        ("CCI_20", talib.CCI(h, l, c, timeperiod=20)),
        ("ROC_10", talib.ROC(c, timeperiod=10)),
    ]


def text(value):
    return "nan" if np.isnan(value) else repr(float(value))


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    directory = sys.argv[1] if len(sys.argv) > 1 else market_directory(root)
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(
        root, "Tests", "VaneFeaturesTests", "Fixtures", "talib_btc_1h_golden.csv.gz")
    if talib.__version__ != EXPECTED_TALIB:
        print(f"warning: talib {talib.__version__}, the fixture was made with {EXPECTED_TALIB}",
              file=sys.stderr)
    columns = golden_columns(*read_candles(os.path.join(directory, MARKET_FILE), ROWS))
    lines = [",".join(name for name, _ in columns)]
    for row in range(ROWS):
        lines.append(",".join(text(values[row]) for _, values in columns))
    data = ("\n".join(lines) + "\n").encode()
    os.makedirs(os.path.dirname(out), exist_ok=True)
    # mtime=0 and no file name: regenerating with the same talib gives the same bytes.
    with open(out, "wb") as handle:
        handle.write(gzip.compress(data, compresslevel=9, mtime=0))
    print(f"{out}: {ROWS} rows, {len(columns)} columns, talib {talib.__version__} "
          f"(TA-Lib C {talib.__ta_version__.decode().split()[0]})")


if __name__ == "__main__":
    main()
