"""Many ranks summarised three ways with the same output: local processes, from reports,
and through a Dask cluster (issue 21).

Makes ``--ranks`` traces of ``--mb`` MB each (bench/make_ranks.py, one rank slowed down),
then, each merge in a fresh child process:

* ``local``: ``tracetui summary DIR --json`` (its own pool of processes);
* ``reports``: the map done outside, as a Slurm array would (``tracetui summary FILE
  --json > reports/N.json`` per rank, two at a time), then ``tracetui summary reports/
  --json``, the merge alone timed;
* ``dask``: a ``LocalCluster`` of two worker processes on loopback started here, then
  ``tracetui summary DIR --json --scheduler ADDRESS``.

Wall time and peak RSS of the merging process (``ru_maxrss``: the pool's and the cluster's
processes are not in it). The three outputs must be the same but for the file names of the
ranks (a report is named for its trace). Prints one JSON line; the files are deleted.

    python bench/many_ranks.py [--ranks 128] [--mb 20] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_ranks import make_ranks  # noqa: E402

_CHILD = """
import io, json, resource, sys, time
from tracetui.cli import main
buf = io.StringIO()
sys.stdout = buf
t = time.perf_counter()
rc = main(["summary", *sys.argv[1:], "--json"])
dt = time.perf_counter() - t
sys.stdout = sys.__stdout__
assert rc == 0, rc
print(json.dumps({"s": dt, "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                  "out": json.loads(buf.getvalue())}))
"""


def _merge(*args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", _CHILD, *args], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _plain(summary: dict) -> dict:
    return {**summary, "ranks": [{k: v for k, v in r.items() if k != "file"}
                                 for r in summary["ranks"]]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ranks", type=int, default=128)
    ap.add_argument("--mb", type=float, default=20.0)
    ap.add_argument("--slow-rank", type=int, default=77)
    ap.add_argument("--keep", metavar="DIR", help="make (or reuse) the traces in DIR, keep them")
    args = ap.parse_args(argv)
    tmp = args.keep or tempfile.mkdtemp(prefix="tracetui-many-ranks-")
    traces = os.path.join(tmp, "traces")
    reports = os.path.join(tmp, "reports")
    try:
        if not os.path.isdir(traces):
            make_ranks(traces, args.ranks, args.slow_rank, 1.3, args.mb)
        files = sorted(os.listdir(traces))
        size = sum(os.path.getsize(os.path.join(traces, f)) for f in files)
        result: dict = {"bench": "many_ranks", "ranks": len(files),
                        "traces_mb": round(size / 1e6, 1)}

        local = _merge(traces)

        # the map outside tracetui's merge: one `summary FILE --json` per rank, two at a time
        shutil.rmtree(reports, ignore_errors=True)
        os.makedirs(reports)

        def one(k_f: tuple[int, str]) -> None:
            k, f = k_f
            with open(os.path.join(reports, f"{k}.json"), "w") as out:
                subprocess.run([sys.executable, "-m", "tracetui", "summary",
                                os.path.join(traces, f), "--json"], stdout=out, check=True)

        t = time.perf_counter()
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(one, enumerate(files)))
        map_s = time.perf_counter() - t
        merged = _merge(reports)

        from distributed import LocalCluster

        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                          host="127.0.0.1", dashboard_address=None) as cluster:
            dask = _merge(traces, "--scheduler", cluster.scheduler_address)

        same = _plain(local["out"]) == _plain(merged["out"]) == _plain(dask["out"])
        for name, r in (("local", local), ("reports", merged), ("dask", dask)):
            result[f"{name}_s"] = round(r["s"], 2)
            result[f"{name}_merge_peak_rss_mb"] = round(r["rss"] / 1e6, 1)
        result["reports_map_s"] = round(map_s, 1)
        result["reports_mb"] = round(sum(os.path.getsize(os.path.join(reports, f))
                                         for f in os.listdir(reports)) / 1e6, 1)
        result["same_output"] = same
        result["stragglers"] = local["out"]["stragglers"]
        print(json.dumps(result))
        return 0 if same else 1
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
