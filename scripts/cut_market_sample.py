#!/usr/bin/env python3
"""Cut the `vane pipeline` default data from the shared market files.

Keeps the 1h candles of BTCUSDT, ETHUSDT, SOLUSDT and BNBUSDT whose open time lies in
[2023-01-01, 2025-01-01), each row exactly as the source wrote it (candles are facts; nothing is
rounded or filled), and writes them as gzip files with a fixed header time so a rerun produces
identical bytes. Run from the repository root:

    python3 scripts/cut_market_sample.py [MARKET_DIR]

MARKET_DIR defaults to ../shared/data/market. The output replaces Sources/vane/Resources/market/.
"""
import gzip
import io
import os
import sys

SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT"]
START, END = "2023-01-01", "2025-01-01"  # open times compared as ISO text prefixes
OUT = os.path.join("Sources", "vane", "Resources", "market")


def main() -> None:
    market = sys.argv[1] if len(sys.argv) > 1 else os.path.join("..", "shared", "data", "market")
    os.makedirs(OUT, exist_ok=True)
    for symbol in SYMBOLS:
        source = os.path.join(market, f"binance_{symbol}_1h.csv.gz")
        with gzip.open(source, "rt", newline="") as f:
            header = f.readline()
            rows = [line for line in f if START <= line[:10] < END]
        if not rows:
            sys.exit(f"{source}: no rows between {START} and {END}")
        text = header + "".join(rows)
        target = os.path.join(OUT, f"binance_{symbol}_1h.csv.gz")
        buffer = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0, compresslevel=9) as z:
            z.write(text.encode())
        with open(target, "wb") as f:
            f.write(buffer.getvalue())
        print(f"{target}: {len(rows)} rows, {rows[0][:19]} .. {rows[-1][:19]}, {len(buffer.getvalue())} bytes")


if __name__ == "__main__":
    main()
