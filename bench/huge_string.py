"""Benchmark: traces made of one huge name, loaded at several sizes: the time and peak RSS
must grow linearly with the string (issue 20: 200 MB loaded in 4.5 s, 400 MB in 12 s and
800 MB in 41 s, 1.87 GB peak, when ijson built the string).

Each size is written to a temporary file (one event whose name is the whole size, then three
small events) and loaded with ``tracetui.trace.load`` in a fresh child process, best of
``--runs``. Prints one JSON line: per size the seconds and peak RSS, and the ratios of each
size to the one before (linear: about 2 for sizes that double).

    python bench/huge_string.py [--sizes 200,400,800] [--runs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

_CHILD = """
import json, resource, sys, time
from tracetui.trace import load
t = time.perf_counter()
tr = load(sys.argv[1])
dt = time.perf_counter() - t
print(json.dumps({"s": dt, "events": tr.events, "longest_name": max(map(len, tr.strings.strings)),
                  "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


def write(path: str, mb: int) -> None:
    with open(path, "w") as f:
        f.write('{"traceEvents":[{"ph":"X","name":"')
        chunk = "a" * (1 << 20)
        for _ in range(mb):
            f.write(chunk)
        f.write('","cat":"cpu_op","pid":1,"tid":1,"ts":1,"dur":1}')
        for i in range(3):
            f.write(f',{{"ph":"X","name":"e{i}","cat":"cpu_op","pid":1,"tid":1,"ts":{3 + i},'
                    '"dur":1}')
        f.write("]}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="200,400,800", help="MB, comma-separated")
    ap.add_argument("--runs", type=int, default=2)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    out: dict = {"bench": "huge_string", "sizes_mb": sizes}
    with tempfile.TemporaryDirectory() as tmp:
        for mb in sizes:
            path = os.path.join(tmp, f"one-{mb}.json")
            write(path, mb)
            runs = [json.loads(subprocess.run([sys.executable, "-c", _CHILD, path],
                                              capture_output=True, text=True, check=True).stdout)
                    for _ in range(args.runs)]
            best = min(runs, key=lambda r: r["s"])
            out[f"{mb}mb_s"] = round(best["s"], 2)
            out[f"{mb}mb_peak_rss_mb"] = round(max(r["rss"] for r in runs) / 2**20)
            out[f"{mb}mb_rss_per_file"] = round(max(r["rss"] for r in runs) / (mb << 20), 2)
            os.unlink(path)
    for a, b in zip(sizes, sizes[1:]):
        out[f"time_ratio_{b}_{a}"] = round(out[f"{b}mb_s"] / out[f"{a}mb_s"], 2)
        out[f"rss_ratio_{b}_{a}"] = round(out[f"{b}mb_peak_rss_mb"] / out[f"{a}mb_peak_rss_mb"], 2)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
