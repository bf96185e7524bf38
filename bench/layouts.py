"""Benchmark: the load on every layout of the same events, against bare ijson, in one run.

For each size (``--mb``, default 150 and 800) the same events (``--source`` repeated with
shifted times and ids, see make_big.py) are written in each layout of
:data:`make_big.LAYOUTS` - Kineto's one event per line, ``json.dump``'s one line,
``indent=2``, CRLF, a comma at the start of each line - plus the one-line text gzipped. For
each file, in fresh child processes, interleaved:

* ``ijson``: ``for _ in ijson.items(f, "traceEvents.item", use_float=True)`` (C backend;
  through ``gzip.open`` for the gzip file),
* ``tracetui``: ``tracetui.trace.load(path)``, the whole index, with its worker processes.

The peak RSS is the process tree's: the loading process and its workers, sampled together
every 20 ms from /proc (their sum at each moment, plus the machine's shared memory grown
since the start: the memfd a worker's columns cross in; the highest sum is reported).

Prints one JSON line: per size and layout the load's seconds, ``ratio`` (ijson seconds /
tracetui seconds, > 1: faster than the bare parser; best of ``--runs`` each), MB/s, and the
peak RSS ÷ the file's size (``rss_per_file``) and ÷ its JSON text (``rss_per_json``: the
same for plain files; the measure that compares a gzip file with the others).

    python bench/layouts.py [--mb 150 800] [--runs 2] [--dir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from make_big import LAYOUTS, make_big  # noqa: E402

_SHARED = os.path.join(HERE, "..", "..", "shared", "traces", "deepseek_train.json")
DEFAULT_SOURCE = _SHARED if os.path.exists(_SHARED) else os.path.join(
    HERE, "..", "sample_traces", "annotated.json")

_CHILD_IJSON = """
import gzip, json, sys, time, ijson
t = time.perf_counter(); n = 0
path = sys.argv[1]
f = gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")
for _ in ijson.items(f, "traceEvents.item", use_float=True):
    n += 1
print(json.dumps({"s": time.perf_counter() - t, "items": n, "backend": ijson.backend}))
"""

_CHILD_LOAD = """
import json, sys, time
from tracetui.trace import load
t = time.perf_counter()
tr = load(sys.argv[1])
print(json.dumps({"s": time.perf_counter() - t, "events": tr.events, "slices": tr.slice_count,
                  "warnings": len(tr.warnings)}))
"""

_PAGE = os.sysconf("SC_PAGE_SIZE")


def _tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and all its descendants now."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/statm") as f:
                total += int(f.read().split()[1]) * _PAGE
            for tid in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{tid}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except (OSError, ValueError):
            continue
    return total


def _shmem() -> int:
    """Shared memory in use on the machine (bytes): a worker's columns wait in a memfd,
    which is nobody's RSS while it is not mapped; the watch adds what it grew by."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("Shmem:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _child(code: str, path: str, sample: bool = False) -> dict:
    shmem0 = _shmem()
    proc = subprocess.Popen([sys.executable, "-c", code, path], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    peak = [0]
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _tree_rss(proc.pid) + max(_shmem() - shmem0, 0))
            done.wait(0.02)

    th = threading.Thread(target=watch, daemon=True)
    if sample:
        th.start()
    out, err = proc.communicate()
    done.set()
    if sample:
        th.join()
    if proc.returncode != 0:
        raise RuntimeError(f"child failed on {path}: {err.strip()[-500:]}")
    got = json.loads(out.strip().splitlines()[-1])
    got["rss"] = peak[0]
    return got


def _files(directory: str, mb: float, source: str) -> dict[str, tuple[str, int]]:
    """layout -> (path, bytes of JSON text), written unless already there."""
    out: dict[str, tuple[str, int]] = {}
    for layout in LAYOUTS:
        path = os.path.join(directory, f"{int(mb)}mb-{layout}.json")
        if not os.path.exists(path):
            make_big(path, mb, source, layout=layout)
        out[layout] = (path, os.path.getsize(path))
    gz = os.path.join(directory, f"{int(mb)}mb-one-line.json.gz")
    if not os.path.exists(gz):
        with open(out["one-line"][0], "rb") as src, gzip.open(gz, "wb", compresslevel=6) as dst:
            shutil.copyfileobj(src, dst, 1 << 22)
    out["one-line-gzip"] = (gz, out["one-line"][1])
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, nargs="+", default=[150.0, 800.0])
    ap.add_argument("--source", default=DEFAULT_SOURCE, help="trace to repeat")
    ap.add_argument("--runs", type=int, default=2, help="interleaved runs (best of N)")
    ap.add_argument("--dir", help="where the files are made (and kept); default: a temporary one")
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    args = ap.parse_args(argv)
    directory = args.dir or tempfile.mkdtemp(prefix="tracetui-layouts-")
    os.makedirs(directory, exist_ok=True)
    result: dict = {"bench": "layouts", "source": os.path.basename(args.source),
                    "runs": args.runs, "workers": os.environ.get("TRACETUI_WORKERS", "default"),
                    "sizes": {}}
    try:
        for mb in args.mb:
            files = _files(directory, mb, args.source)
            rows = {}
            for layout, (path, json_bytes) in files.items():
                bares, loads = [], []
                for _ in range(args.runs):
                    bares.append(_child(_CHILD_IJSON, path))
                    loads.append(_child(_CHILD_LOAD, path, sample=True))
                bare = min(bares, key=lambda r: r["s"])
                load = min(loads, key=lambda r: r["s"])
                rss = max(r["rss"] for r in loads)
                size = os.path.getsize(path)
                assert bare["items"] >= load["events"], (bare, load)
                result["ijson_backend"] = bare["backend"]
                rows[layout] = {
                    "file_mb": round(size / 1e6, 1), "json_mb": round(json_bytes / 1e6, 1),
                    "events": load["events"], "ijson_s": round(bare["s"], 2),
                    "tracetui_s": round(load["s"], 2), "ratio": round(bare["s"] / load["s"], 2),
                    "mb_per_s": round(json_bytes / 1e6 / load["s"], 1),
                    "peak_rss_mb": round(rss / 1e6, 1),
                    "rss_per_file": round(rss / size, 3),
                    "rss_per_json": round(rss / json_bytes, 3),
                }
            result["sizes"][f"{int(mb)}"] = rows
            result[f"min_ratio_{int(mb)}"] = min(r["ratio"] for r in rows.values())
            result[f"max_rss_per_json_{int(mb)}"] = max(r["rss_per_json"] for r in rows.values())
    finally:
        if not (args.keep or args.dir):
            shutil.rmtree(directory, ignore_errors=True)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
