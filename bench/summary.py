"""Benchmark: ``tracetui summary --json`` against the load alone, on the same >= 150 MB trace.

The analyses (classification, kernel statistics, unions and overlap per device, streams,
per-annotation figures, steps, operators, modules) should cost little next to reading the
file: the target is summary <= 1.3x load (1.1x before the steps, operators and modules).
Each measurement runs in a fresh child process, interleaved, best of ``--runs``. Prints
one JSON line.

    python bench/summary.py [--mb 150] [--runs 3] [--source FILE | --trace BIG.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
from typing import Any

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


def _whole(path: str, what: str) -> float:
    """The whole command, process start to exit, as the user waits for it."""
    import time

    cmd = ([sys.executable, "-m", "tracetui", "summary", path, "--json"] if what == "summary"
           else [sys.executable, "-c", "import sys; from tracetui.trace import load; "
                 "load(sys.argv[1])", path])
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=150.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--source", default=DEFAULT_SOURCE)
    ap.add_argument("--trace", help="use this trace (made by make_big.py) instead of making one")
    args = ap.parse_args(argv)
    if args.trace:
        made = {"bytes": os.path.getsize(args.trace), "events": None}
        ctx: Any = contextlib.nullcontext((args.trace, made))
    else:
        ctx = temporary_big_trace(args.mb, args.source)
    with ctx as (path, made):
        loads, summaries, whole_loads, whole_summaries = [], [], [], []
        for _ in range(args.runs):
            loads.append(_child(path, "load"))
            summaries.append(_child(path, "summary"))
            whole_loads.append(_whole(path, "load"))
            whole_summaries.append(_whole(path, "summary"))
        load_s, summary_s = min(loads), min(summaries)
        whole_load_s, whole_summary_s = min(whole_loads), min(whole_summaries)
        print(json.dumps({
            "bench": "summary",
            "file_mb": round(made["bytes"] / 1e6, 1),
            "events": made["events"],
            "runs": args.runs,
            "load_s": round(load_s, 3),
            "summary_json_s": round(summary_s, 3),
            "ratio": round(summary_s / load_s, 3),
            # the whole command, process start to exit (imports, the JSON written)
            "whole_load_s": round(whole_load_s, 3),
            "whole_summary_json_s": round(whole_summary_s, 3),
            "whole_ratio": round(whole_summary_s / whole_load_s, 3),
            "target": 1.3,  # (1.1 before the steps, operators and modules: issue 32)
        }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
