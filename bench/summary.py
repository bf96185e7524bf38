"""Benchmark: ``tracetui summary --json`` against the load alone, on the same >= 150 MB trace.

The analyses (classification, kernel statistics, unions and overlap per device, streams,
per-annotation figures) should cost little next to reading the file: the target is
summary <= 1.1x load. Each measurement runs in a fresh child process, interleaved, best of
``--runs``. Prints one JSON line.

    python bench/summary.py [--mb 150] [--runs 3] [--source FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from make_big import DEFAULT_SOURCE, temporary_big_trace  # noqa: E402

_CHILD = """
import io, json, sys, time
if sys.argv[2] == "summary":
    from tracetui.cli import main
    out, sys.stdout = sys.stdout, io.StringIO()
    t = time.perf_counter()
    main(["summary", sys.argv[1], "--json"])
    total = time.perf_counter() - t
    sys.stdout = out
    print(json.dumps({"s": total}))
else:
    from tracetui.trace import load
    t = time.perf_counter()
    load(sys.argv[1])
    print(json.dumps({"s": time.perf_counter() - t}))
"""


def _child(path: str, what: str) -> float:
    out = subprocess.run([sys.executable, "-c", _CHILD, path, what], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["s"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=150.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--source", default=DEFAULT_SOURCE)
    args = ap.parse_args(argv)
    with temporary_big_trace(args.mb, args.source) as (path, made):
        loads, summaries = [], []
        for _ in range(args.runs):
            loads.append(_child(path, "load"))
            summaries.append(_child(path, "summary"))
        load_s, summary_s = min(loads), min(summaries)
        print(json.dumps({
            "bench": "summary",
            "file_mb": round(made["bytes"] / 1e6, 1),
            "events": made["events"],
            "runs": args.runs,
            "load_s": round(load_s, 3),
            "summary_json_s": round(summary_s, 3),
            "ratio": round(summary_s / load_s, 3),
            "target": 1.1,
        }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
