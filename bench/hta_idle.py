"""Compare the idle split of every GPU stream with HTA's ``get_idle_time_breakdown``.

Runs, on one trace: HTA (HolisticTraceAnalysis, if importable: install it in a scratch
virtual environment, it is not a dependency of tracetui), tracetui at the same threshold,
and tracetui on "HTA's view" of the trace: the GPU work launched in the last
``ProfilerStep`` dropped and every event rounded inward to whole µs (start up, end down),
which is what HTA analyses by default. Prints one JSON line, µs per stream and kind.

    python bench/hta_idle.py TRACE [--kernel-wait 30] [--hta-python VENV/bin/python]
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from decimal import Decimal

KINDS = ("host wait", "kernel wait", "other")


def _read(path: str) -> dict:
    opener = gzip.open if open(path, "rb").read(2) == b"\x1f\x8b" else open
    with opener(path, "rb") as f:
        data = json.load(f, parse_float=Decimal)
    return data if isinstance(data, dict) else {"traceEvents": data}


def hta_view(path: str, out: str) -> None:
    """The trace as HTA analyses it (see the module docstring)."""
    d = _read(path)
    ev = d["traceEvents"]
    steps = [e["ts"] for e in ev if e.get("ph") == "X"
             and str(e.get("name", "")).startswith("ProfilerStep")]
    if len(steps) > 1:  # HTA keeps everything when there is only one step
        last = max(steps)
        ok = {e["args"]["correlation"] for e in ev if e.get("ph") == "X"
              and isinstance(e.get("args"), dict) and "correlation" in e["args"]
              and e.get("cat") in ("cuda_runtime", "cuda_driver") and e["ts"] < last}
        ev = [e for e in ev if not (e.get("ph") == "X" and e.get("cat") in (
            "kernel", "gpu_memcpy", "gpu_memset")
            and (e.get("args") or {}).get("correlation") not in ok)]
    for e in ev:
        if isinstance(e.get("ts"), Decimal):
            end = e["ts"] + e["dur"] if isinstance(e.get("dur"), (Decimal, int)) else None
            e["ts"] = math.ceil(e["ts"])
            if end is not None:
                e["dur"] = max(math.floor(end) - e["ts"], 0)
    d["traceEvents"] = ev
    d.pop("baseTimeNanoseconds", None)
    with open(out, "w") as f:
        json.dump(d, f, default=str)


def ours(path: str, kernel_wait_us: float) -> dict[str, list[float]]:
    from tracetui.analysis.report import analyze
    from tracetui.trace import load

    rep = analyze(load(path), kernel_wait_us=kernel_wait_us)
    return {str(s["stream"]): [s["host_wait_us"], s["kernel_wait_us"], s["other_idle_us"]]
            for s in rep["streams"] if s["kind"] == "gpu"}


_HTA = """
import json, sys
from hta.trace_analysis import TraceAnalysis
t = TraceAnalysis(trace_dir=sys.argv[1])
df, _ = t.get_idle_time_breakdown(visualize=False, consecutive_kernel_delay=int(sys.argv[2]))
out = {}
for r in df.to_dict("records"):
    out.setdefault(str(r["stream"]), {})[r["idle_category"]] = float(r["idle_time"])
print(json.dumps(out))
"""


def hta(path: str, kernel_wait_us: float, python: str) -> dict[str, list[float]] | str:
    """HTA's split (its threshold is compared with µs, whatever its docstring says)."""
    work = tempfile.mkdtemp()
    try:
        name = "rank-0.json.gz" if open(path, "rb").read(2) == b"\x1f\x8b" else "rank-0.json"
        os.symlink(os.path.abspath(path), os.path.join(work, name))
        got = subprocess.run([python, "-c", _HTA, work, str(int(kernel_wait_us))],
                             capture_output=True, text=True)
        if got.returncode:
            return "HTA failed or is not installed: " + got.stderr.strip().splitlines()[-1]
        raw = json.loads(got.stdout.strip().splitlines()[-1])
        keys = ("host_wait", "kernel_wait", "other")
        return {s: [v.get(k, 0.0) for k in keys] for s, v in raw.items()}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("trace")
    ap.add_argument("--kernel-wait", type=float, default=30.0, metavar="US")
    ap.add_argument("--hta-python", default=sys.executable, metavar="PATH",
                    help="the interpreter that has HTA (a scratch virtual environment)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        view = os.path.join(tmp, "hta_view.json")
        hta_view(args.trace, view)
        print(json.dumps({
            "bench": "hta_idle", "trace": os.path.basename(args.trace),
            "kernel_wait_us": args.kernel_wait, "kinds": KINDS,
            "hta": hta(args.trace, args.kernel_wait, args.hta_python),
            "tracetui": ours(args.trace, args.kernel_wait),
            "tracetui_on_hta_view": ours(view, args.kernel_wait),
        }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
