"""Benchmark: multi-gigabyte traces, every figure of the README's table in one run per size.

For each size (default ~1 GB and ~3.7 GB: 15 M events) it makes a trace (bench/make_big.py,
sample_traces/annotated.json repeated with shifted times and ids), measures, and deletes it:

* ``ijson_s``: a bare ``ijson.items(f, "traceEvents.item", use_float=True)`` pass (C backend);
* ``load_s``: ``tracetui.trace.load`` (the whole index; parallel ranges where it can), in a
  fresh process; ``ratio`` = ijson_s / load_s, both measured side by side in this run;
* ``peak_rss_mb``: the most memory the load's processes held *at once* (the loading process
  and its workers, sampled every 20 ms from /proc), and ``peak_rss_ratio`` = that / file size;
  ``main_peak_rss_mb`` is the loading process alone (its ru_maxrss);
* ``one_stream_s`` (``--one-stream``): the same load with ``TRACETUI_WORKERS=1``;
* ``first_paint_s``: from launching ``tracetui FILE`` in a 120x40 pseudo-terminal to the first
  GPU lane label ("· stream") written to it;
* ``keys_ms``: bench/views.py on the same file: each key's UI-thread time to a composed frame;
* ``gzip`` (sizes in ``--gzip-mb``): the same trace gzipped (``gzip -1``): bare ijson through
  ``gzip.open`` against the load, parallel and one stream.

Prints one JSON line.

    python bench/scale.py [--mb 1000 3720] [--one-stream] [--no-views]
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import re
import select
import shutil
import struct
import subprocess
import sys
import termios
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from make_big import DEFAULT_SOURCE, temporary_big_trace  # noqa: E402

_CHILD_IJSON = """
import gzip, json, sys, time, ijson
t = time.perf_counter(); n = 0
with (gzip.open if sys.argv[1].endswith(".gz") else open)(sys.argv[1], "rb") as f:
    for _ in ijson.items(f, "traceEvents.item", use_float=True):
        n += 1
print(json.dumps({"s": time.perf_counter() - t, "items": n, "backend": ijson.backend}))
"""

_CHILD_LOAD = """
import json, os, resource, sys, threading, time
from tracetui.trace.loader import Loader

def rss(pid):
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0

def children():
    try:
        with open(f"/proc/{os.getpid()}/task/{os.getpid()}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []

def shmem():  # a worker's columns cross in a memfd: nobody's RSS while it is not mapped
    try:
        with open("/proc/meminfo") as f:
            return next((int(l.split()[1]) * 1024 for l in f if l.startswith("Shmem:")), 0)
    except OSError:
        return 0

peak = [0]
done = threading.Event()
shmem0 = shmem()

def sample():
    while not done.wait(0.02):
        peak[0] = max(peak[0], rss(os.getpid()) + sum(rss(c) for c in children())
                      + max(shmem() - shmem0, 0))

threading.Thread(target=sample, daemon=True).start()
t = time.perf_counter()
loader = Loader(sys.argv[1])
tr = loader.run()
dt = time.perf_counter() - t
done.set()
print(json.dumps({"s": dt, "events": tr.events, "lanes": len(tr.lanes), "ranges": loader.ranges,
                  "workers": loader.workers, "peak": peak[0],
                  "main_peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                  "worker_peak": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024}))
"""

_ANSI = re.compile(rb"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[@-Z\\-_])")


def _child(code: str, *args: str, env: dict | None = None) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True,
                         text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def first_paint(path: str, cols: int = 120, rows: int = 40, timeout: float = 30.0) -> float | None:
    """Seconds from launching ``tracetui path`` in a pty to a GPU lane label on its screen."""
    exe = shutil.which("tracetui") or ""
    cmd = [exe, path] if exe else [sys.executable, "-m", "tracetui", path]
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    env = dict(os.environ, TERM="xterm-256color", COLUMNS=str(cols), LINES=str(rows))
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, env=env,
                            start_new_session=True)
    os.close(slave)
    seen = b""
    got = None
    try:
        while time.perf_counter() - t < timeout:
            r, _, _ = select.select([master], [], [], 0.05)
            if not r:
                continue
            try:
                data = os.read(master, 1 << 16)
            except OSError:
                break
            if not data:
                break
            seen = (seen + data)[-(1 << 20):]
            if b"\xc2\xb7 stream" in _ANSI.sub(b"", seen):
                got = time.perf_counter() - t
                break
    finally:
        proc.kill()
        proc.wait()
        os.close(master)
    return None if got is None else round(got, 2)


def measure_gzip(path: str) -> dict:
    """The same trace gzipped (level 1): bare ijson through gzip.open against the load."""
    gz = path + ".gz"
    try:
        with open(gz, "wb") as out:
            subprocess.run(["gzip", "-1", "-c", path], stdout=out, check=True)
        bare = _child(_CHILD_IJSON, gz)
        load = _child(_CHILD_LOAD, gz)
        one = _child(_CHILD_LOAD, gz, env=dict(os.environ, TRACETUI_WORKERS="1"))
        return {"gz_mb": round(os.path.getsize(gz) / 1e6, 1), "ijson_s": round(bare["s"], 2),
                "load_s": round(load["s"], 2), "ratio": round(bare["s"] / load["s"], 2),
                "processes": load["ranges"], "one_stream_s": round(one["s"], 2),
                "one_stream_ratio": round(bare["s"] / one["s"], 2),
                "peak_rss_mb": round(load["peak"] / 1e6),
                "peak_rss_ratio_to_json": round(load["peak"] / os.path.getsize(path), 3)}
    finally:
        if os.path.exists(gz):
            os.remove(gz)


def measure(mb: float, one_stream: bool, views: bool, gz: bool) -> dict:
    with temporary_big_trace(mb, DEFAULT_SOURCE, keep=False) as (path, made):
        size = made["bytes"]
        bare = _child(_CHILD_IJSON, path)
        load = _child(_CHILD_LOAD, path)
        res = {
            "file_mb": round(size / 1e6, 1),
            "events": load["events"],
            "ijson_backend": bare["backend"],
            "ijson_s": round(bare["s"], 2),
            "load_s": round(load["s"], 2),
            "ratio": round(bare["s"] / load["s"], 2),
            "mb_per_s": round(size / 1e6 / load["s"], 1),
            "processes": load["ranges"],
            "peak_rss_mb": round(load["peak"] / 1e6),
            "peak_rss_ratio": round(load["peak"] / size, 3),
            "main_peak_rss_mb": round(load["main_peak"] / 1e6),
            "worker_peak_rss_mb": round(load["worker_peak"] / 1e6),
        }
        if one_stream:
            one = _child(_CHILD_LOAD, path, env=dict(os.environ, TRACETUI_WORKERS="1"))
            res["one_stream_s"] = round(one["s"], 2)
            res["one_stream_ratio"] = round(bare["s"] / one["s"], 2)
            res["one_stream_peak_rss_mb"] = round(one["peak"] / 1e6)
        if gz:
            res["gzip"] = measure_gzip(path)
        paints = [first_paint(path) for _ in range(3)]
        res["first_paint_s"] = paints
        if views:
            out = subprocess.run([sys.executable, os.path.join(HERE, "views.py"), "--trace", path],
                                 check=True, capture_output=True, text=True)
            v = json.loads(out.stdout.strip().splitlines()[-1])
            res["app_load_s"] = v["load_s"]
            res["keys_ms"] = v["keys_ms"]
            res["harness_ms"] = v["harness_ms"]
            res["slowest_key"], res["slowest_ms"] = v["slowest_key"], v["slowest_ms"]
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, nargs="+", default=[1000.0, 3720.0],
                    help="sizes of the generated traces (MB)")
    ap.add_argument("--one-stream", action="store_true", help="also time a one-process load")
    ap.add_argument("--no-views", action="store_true", help="skip the key-to-frame session")
    ap.add_argument("--gzip-mb", type=float, nargs="*", default=[1000.0],
                    help="sizes also measured gzipped (level 1)")
    args = ap.parse_args(argv)
    sizes = [measure(mb, args.one_stream, not args.no_views, mb in args.gzip_mb)
             for mb in args.mb]
    print(json.dumps({"bench": "scale", "cores": len(os.sched_getaffinity(0)), "sizes": sizes}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
