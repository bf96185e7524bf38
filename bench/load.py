"""Benchmark: full index build against a bare ijson pass over the same file, in one run.

Makes a >= 150 MB trace by repeating sample_traces/annotated.json with shifted times and ids,
then measures, each in a fresh child process (so peak RSS belongs to that step alone):

* ``ijson``: ``for _ in ijson.items(f, "traceEvents.item", use_float=True)`` (C backend),
* ``ijson_default``: the same with ijson's default Decimal numbers,
* ``tracetui``: ``tracetui.trace.load(path)`` - the whole index, lanes sorted, depths,
  flows and launch links resolved.

Prints one JSON line. ``ratio`` is ijson time / tracetui time (> 1: faster than the parser),
each the best of ``--runs`` interleaved runs; ``peak_rss_*`` is the worst load run.

    python bench/load.py [--mb 150] [--source FILE] [--keep]
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

_CHILD_IJSON = """
import json, resource, sys, time, ijson
t = time.perf_counter(); n = 0
with open(sys.argv[1], "rb") as f:
    for _ in ijson.items(f, "traceEvents.item", use_float=sys.argv[2] == "float"):
        n += 1
dt = time.perf_counter() - t
print(json.dumps({"s": dt, "items": n, "backend": ijson.backend,
                  "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""

_CHILD_LOAD = """
import json, resource, sys, time
from tracetui.trace import load
t = time.perf_counter()
tr = load(sys.argv[1])
dt = time.perf_counter() - t
index = sum(a.nbytes for a in (tr.start, tr.dur, tr.name, tr.cat, tr.depth, tr.row,
                              tr.correlation, tr.external_id, tr.launch_of))
index += sum(getattr(tr.kernels, f).nbytes for f in tr.kernels.__dataclass_fields__)
print(json.dumps({"s": dt, "events": tr.events, "slices": tr.slice_count,
                  "lanes": len(tr.lanes), "index_bytes": index,
                  "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


def _child(code: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True,
                         text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=150.0, help="size of the generated trace")
    ap.add_argument("--source", default=DEFAULT_SOURCE, help="trace to repeat")
    ap.add_argument("--keep", action="store_true", help="keep the generated file")
    ap.add_argument("--runs", type=int, default=3, help="interleaved runs (best of N)")
    args = ap.parse_args(argv)
    with temporary_big_trace(args.mb, args.source, args.keep) as (path, made):
        size = made["bytes"]
        # Interleaved runs, best of N: the machine is shared and its speed drifts, and
        # interleaving exposes both sides to the same drift.
        bares, loads, defaults = [], [], []
        for _ in range(args.runs):
            bares.append(_child(_CHILD_IJSON, path, "float"))
            loads.append(_child(_CHILD_LOAD, path))
            defaults.append(_child(_CHILD_IJSON, path, "decimal"))
        bare = min(bares, key=lambda r: r["s"])
        load = min(loads, key=lambda r: r["s"])
        load["rss"] = max(r["rss"] for r in loads)
        bare_default = min(defaults, key=lambda r: r["s"])
        result = {
            "bench": "load",
            "file_mb": round(size / 1e6, 1),
            "runs": args.runs,
            "events": load["events"],
            "ijson_backend": bare["backend"],
            "ijson_s": round(bare["s"], 3),
            "ijson_default_s": round(bare_default["s"], 3),
            "tracetui_s": round(load["s"], 3),
            "ratio": round(bare["s"] / load["s"], 3),
            "ratio_vs_ijson_default": round(bare_default["s"] / load["s"], 3),
            "mb_per_s": round(size / 1e6 / load["s"], 1),
            "events_per_s": round(load["events"] / load["s"]),
            "peak_rss_mb": round(load["rss"] / 1e6, 1),
            "peak_rss_ratio": round(load["rss"] / size, 3),
            "ijson_peak_rss_mb": round(bare["rss"] / 1e6, 1),
            "bytes_per_event": round(load["index_bytes"] / max(load["events"], 1), 1),
            "json_bytes_per_event": round(size / max(load["events"], 1), 1),
        }
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
