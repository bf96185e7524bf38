"""Benchmark: one timeline frame (40 rows × 200 columns) at 1 M and 10 M events.

A frame asks, for every visible row and screen column, how busy the bin is and which slice
shows there (:func:`tracetui.trace.frame.render`); its cost must not grow with the trace.
Traces are made by repeating sample_traces/annotated.json (bench/make_big.py), loaded, then
frames are rendered over random windows from the whole span down to a few µs. Prints one
JSON line: median and p95 ms per frame at each size, and their ratio.

    python bench/frame.py [--events 1000000,10000000] [--frames 200]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from make_big import DEFAULT_SOURCE, temporary_big_trace  # noqa: E402

BYTES_PER_EVENT = 245  # decode.json repeated


def measure(path: str, frames: int, rows_n: int, cols: int) -> dict:
    from tracetui.trace import load
    from tracetui.trace.frame import default_rows, render

    tr = load(path)
    rows = default_rows(tr)
    rows = (rows * (rows_n // max(len(rows), 1) + 1))[:rows_n]  # 40 rows, lanes repeated
    rng = np.random.default_rng(0)
    times = []
    for _ in range(frames):
        span = int(tr.end_ns / (10 ** rng.uniform(0, 5)))  # the whole trace .. 1e-5 of it
        t0 = int(rng.integers(0, max(tr.end_ns - span, 1)))
        t = time.perf_counter()
        render(tr, rows, t0, t0 + span, cols)
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return {"events": tr.events, "median_ms": round(statistics.median(times), 3),
            "p95_ms": round(times[int(len(times) * 0.95)], 3)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", default="1000000,10000000")
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--rows", type=int, default=40)
    ap.add_argument("--cols", type=int, default=200)
    args = ap.parse_args(argv)
    out: dict = {"bench": "frame", "rows": args.rows, "cols": args.cols}
    results = []
    for n in [int(float(x)) for x in args.events.split(",")]:
        with temporary_big_trace(n * BYTES_PER_EVENT / 1e6, DEFAULT_SOURCE) as (path, _):
            results.append(measure(path, args.frames, args.rows, args.cols))
    out["sizes"] = results
    if len(results) >= 2:
        out["ratio_largest_to_smallest"] = round(results[-1]["median_ms"] /
                                                 results[0]["median_ms"], 2)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
