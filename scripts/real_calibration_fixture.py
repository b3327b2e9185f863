#!/usr/bin/env python3
"""Real out-of-sample direction predictions and scikit-learn's calibration of them.

Writes Tests/VaneQualityTests/Fixtures/real_btc_oos.json: the out-of-sample predictions of a
direction model on the real BTCUSDT 1h candles in ../shared/data/market, and scikit-learn's
calibrated ECE on a later test span, so the Swift tests can check that Vane's calibrators are
no worse than scikit-learn's on the same split.

The model (deliberately simple, and honest about time):
  features at the close of bar t: log returns over 1, 4, 12, 24 and 72 hours, 24-hour realised
  volatility, the 14-bar RSI on a 0..1 scale, the hour of day as sin/cos, and the log volume
  ratio to its 24-hour mean; label: 1 if close(t+1) > close(t). Rows with a gap (a missing
  hour) inside any window are dropped.
  Train: sklearn GradientBoostingClassifier(n_estimators=150, max_depth=3, learning_rate=0.1,
  subsample=0.8, random_state=7) on bars before 2023-01-01 (a tree ensemble's probabilities
  are typically mis-calibrated, which is the point).
  Out of sample: its P(UP) on every bar from 2023-01-01 (never trained on).
  Calibration split: the first 60 % of the out-of-sample bars fit the calibrators, the last
  40 % test them (again in time order).

Recorded (test span, 15 uniform bins, the binary ECE rule of sklearn_quality.json):
  ece_raw, and for scikit-learn's IsotonicRegression(out_of_bounds='clip') on P(UP) and its
  sigmoid (Platt) calibration, LogisticRegression(C=1e10) on the log-odds of P(UP): the ECE
  and log loss on the test span.

Regenerate (from the repository root, with ../shared/data/market present):

    pip install scikit-learn
    python3 scripts/real_calibration_fixture.py

The committed file was made with scikit-learn 1.9.1 and numpy 2.4.6 (Python 3.11).
"""

import gzip
import json
import os
import sys

import numpy as np
import sklearn
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MARKET = os.path.join(ROOT, "..", "shared", "data", "market", "binance_BTCUSDT_1h.csv.gz")
OUT = os.path.join(ROOT, "Tests", "VaneQualityTests", "Fixtures", "real_btc_oos.json")
HOUR_MS = 3_600_000
SPLIT_MS = 1_672_531_200_000  # 2023-01-01T00:00:00Z


def load():
    import datetime

    times, close, volume = [], [], []
    with gzip.open(MARKET, "rt") as f:
        next(f)
        for line in f:
            ts, _o, _h, _l, c, v = line.strip().split(",")[:6]
            t = datetime.datetime.fromisoformat(ts).timestamp()
            times.append(int(t * 1000))
            close.append(float(c))
            volume.append(float(v))
    return np.array(times, dtype=np.int64), np.array(close), np.array(volume)


def rsi(close, period=14):
    delta = np.diff(close, prepend=close[0])
    up, down = np.maximum(delta, 0), np.maximum(-delta, 0)
    out = np.full(len(close), np.nan)
    avg_up, avg_down = up[1 : period + 1].mean(), down[1 : period + 1].mean()
    for i in range(period + 1, len(close)):
        avg_up = (avg_up * (period - 1) + up[i]) / period
        avg_down = (avg_down * (period - 1) + down[i]) / period
        out[i] = avg_up / (avg_up + avg_down) if avg_up + avg_down > 0 else 0.5
    return out


def features(times, close, volume):
    n = len(close)
    logc = np.log(close)
    # contiguous[i] = number of consecutive hourly steps ending at i.
    contiguous = np.zeros(n, dtype=np.int64)
    for i in range(1, n):
        contiguous[i] = contiguous[i - 1] + 1 if times[i] - times[i - 1] == HOUR_MS else 0
    cols = []
    for h in (1, 4, 12, 24, 72):
        r = np.full(n, np.nan)
        r[h:] = logc[h:] - logc[:-h]
        cols.append(r)
    r1 = cols[0]
    vol = np.full(n, np.nan)
    for i in range(24, n):
        vol[i] = np.std(r1[i - 23 : i + 1])
    cols.append(vol)
    cols.append(rsi(close))
    hour = (times // HOUR_MS) % 24
    cols.append(np.sin(2 * np.pi * hour / 24))
    cols.append(np.cos(2 * np.pi * hour / 24))
    lv = np.log(volume + 1e-9)
    ratio = np.full(n, np.nan)
    for i in range(24, n):
        ratio[i] = lv[i] - lv[i - 23 : i + 1].mean()
    cols.append(ratio)
    x = np.column_stack(cols)
    label = np.full(n, -1)
    label[:-1] = (close[1:] > close[:-1]).astype(int)
    next_ok = np.zeros(n, dtype=bool)
    next_ok[:-1] = times[1:] - times[:-1] == HOUR_MS
    ok = (contiguous >= 73) & next_ok & np.isfinite(x).all(axis=1)
    return x, label, ok


def ece_binary(p, y, bins=15):
    up = p >= 0.5
    conf = np.where(up, p, 1.0 - p)
    correct = (up.astype(int) == y)
    idx = np.minimum(np.floor(conf * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            total += m.sum() / len(p) * abs(correct[m].mean() - conf[m].mean())
    return float(total)


def main():
    times, close, volume = load()
    x, label, ok = features(times, close, volume)
    train = ok & (times < SPLIT_MS)
    oos = ok & (times >= SPLIT_MS)
    model = GradientBoostingClassifier(n_estimators=150, max_depth=3, learning_rate=0.1, subsample=0.8, random_state=7)
    model.fit(x[train], label[train])
    p = np.round(model.predict_proba(x[oos])[:, 1], 6)
    p = np.clip(p, 1e-6, 1 - 1e-6)
    y = label[oos]
    t = times[oos]
    cut = int(len(p) * 0.6)
    p_cal, y_cal, p_test, y_test = p[:cut], y[:cut], p[cut:], y[cut:]

    iso = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(p_cal, y_cal)
    p_iso = iso.predict(p_test)
    z_cal, z_test = np.log(p_cal / (1 - p_cal)), np.log(p_test / (1 - p_test))
    platt = LogisticRegression(C=1e10, solver="lbfgs", tol=1e-10, max_iter=10000).fit(z_cal.reshape(-1, 1), y_cal)
    p_platt = platt.predict_proba(z_test.reshape(-1, 1))[:, 1]
    from sklearn.metrics import roc_auc_score

    doc = {
        "description": __doc__.split("\n\n")[1],
        "sklearn_version": sklearn.__version__,
        "numpy_version": np.__version__,
        "source": "../shared/data/market/binance_BTCUSDT_1h.csv.gz",
        "train_rows": int(train.sum()),
        "oos_first_open_ms": int(t[0]),
        "oos_last_open_ms": int(t[-1]),
        "calibration_rows": int(cut),
        "test_rows": int(len(p) - cut),
        "oos_auc": float(roc_auc_score(y, p)),
        "p_up": [float(v) for v in p],
        "labels": [int(v) for v in y],
        "ece_test_raw": ece_binary(p_test, y_test),
        "ece_test_isotonic_sklearn": ece_binary(p_iso, y_test),
        "ece_test_platt_sklearn": ece_binary(p_platt, y_test),
        "log_loss_test_raw": float(log_loss(y_test, p_test, labels=[0, 1])),
        "log_loss_test_isotonic_sklearn": float(log_loss(y_test, np.clip(p_iso, 1e-15, 1 - 1e-15), labels=[0, 1])),
        "log_loss_test_platt_sklearn": float(log_loss(y_test, p_platt, labels=[0, 1])),
    }
    out = sys.argv[1] if len(sys.argv) > 1 else OUT
    with open(out, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    print(json.dumps({k: v for k, v in doc.items() if k not in ("p_up", "labels", "description")}, indent=1))


if __name__ == "__main__":
    main()
