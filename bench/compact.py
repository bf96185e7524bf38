"""Benchmark: memory for compact traces - many minimal kernel events, no args (issue 20:
15 M of them, 1.5 GB, peaked at 2.35 GB loading and 2.7 GB in ``summary``; the target is
half the file in both).

Writes ``--events`` kernels (default 15 M) to a temporary file in one of two shapes, then
in a fresh child process each: ``tracetui.trace.load`` alone, and ``tracetui summary``
(text output, discarded). Peak RSS is the child's own (``ru_maxrss``) and the largest of
the load's worker processes (``RUSAGE_CHILDREN``: they have ended before the index is
built, so the two are not summed). Prints one JSON line.

Shapes:

* ``kineto`` (~107 B an event, as the issue's 1.5 GB for 15 M): what Kineto writes for a
  kernel without args - epoch-µs times with three decimals, four streams, names of 16-22
  characters, one event a line;
* ``tight`` (~75 B an event): the same on two streams, small integer times, names ``k0`` ..
  ``k6``, no white space: the least JSON an event can be.

    python bench/compact.py [--events 15000000] [--shape kineto|tight|both] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

_NAMES = ["ampere_sgemm_128x64_nn", "vectorized_elementwise", "reduce_kernel_512",
          "softmax_warp_fwd"]

_CHILD = """
import io, json, resource, sys, time
t = time.perf_counter()
if sys.argv[2] == "load":
    from tracetui.trace import load
    tr = load(sys.argv[1])
    events = tr.events
else:
    from tracetui.cli import main
    sys.stdout = io.StringIO()
    rc = main(["summary", sys.argv[1]])
    sys.stdout = sys.__stdout__
    assert rc == 0, rc
    events = None
dt = time.perf_counter() - t
print(json.dumps({"s": dt, "events": events,
                  "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                  "workers_rss": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024}))
"""


def write(path: str, n: int, shape: str) -> None:
    with open(path, "w") as f:
        f.write('{"traceEvents":[\n')
        base = 1_700_000_000_000_000  # ns
        for start in range(0, n, 100_000):
            parts = []
            for i in range(start, min(n, start + 100_000)):
                if shape == "kineto":
                    s = i % 4
                    ts = base + (i // 4) * 5000 + s * 17
                    parts.append('{"ph":"X","cat":"kernel","name":"%s","pid":0,"tid":%d,'
                                 '"ts":%d.%03d,"dur":3.%03d}'
                                 % (_NAMES[(i * 7) % 4], 7 + s, ts // 1000, ts % 1000,
                                    (i * 37) % 1000))
                else:
                    parts.append('{"ph":"X","cat":"kernel","name":"k%d","pid":0,"tid":%d,'
                                 '"ts":%d,"dur":3}' % (i % 7, 7 + i % 2, i * 2))
            sep = ",\n" if shape == "kineto" else ","
            f.write(("" if start == 0 else sep) + sep.join(parts))
        f.write("\n]}\n")


def _child(path: str, what: str) -> dict:
    out = subprocess.run([sys.executable, "-c", _CHILD, path, what], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=15_000_000)
    ap.add_argument("--shape", choices=("kineto", "tight", "both"), default="both")
    ap.add_argument("--keep", metavar="DIR", help="write (and keep) the traces in DIR")
    args = ap.parse_args(argv)
    shapes = ("kineto", "tight") if args.shape == "both" else (args.shape,)
    result: dict = {"bench": "compact", "events": args.events}
    with tempfile.TemporaryDirectory() as tmp:
        for shape in shapes:
            path = os.path.join(args.keep or tmp, f"compact-{shape}-{args.events}.json")
            if not os.path.exists(path):
                write(path, args.events, shape)
            size = os.path.getsize(path)
            load, summary = _child(path, "load"), _child(path, "summary")
            assert load["events"] == args.events, load
            result[shape] = {
                "file_mb": round(size / 1e6, 1),
                "bytes_per_event": round(size / args.events, 1),
                "load_s": round(load["s"], 2),
                "load_peak_rss_mb": round(load["rss"] / 1e6, 1),
                "load_ratio": round(load["rss"] / size, 3),
                "load_workers_peak_rss_mb": round(load["workers_rss"] / 1e6, 1),
                "summary_s": round(summary["s"], 2),
                "summary_peak_rss_mb": round(summary["rss"] / 1e6, 1),
                "summary_ratio": round(summary["rss"] / size, 3),
            }
            if not args.keep:
                os.remove(path)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
