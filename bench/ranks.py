"""Loading a directory of rank traces side by side against one after another.

Makes ``--ranks`` traces of ``--mb`` MB each (bench/make_ranks.py, one rank slowed down), then
in one run: their reports computed by ``tracetui summary DIR`` (several processes, one file
each) and the same files loaded one after another as ``tracetui summary FILE`` would (each
with its own parallel parse); then the app's path for ``tracetui DIR`` (the ranks' indexes
built side by side, a worker process per file, then combined into one timeline). Prints one JSON line; the files are deleted.

    python bench/ranks.py [--ranks 8] [--mb 100]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_ranks import make_ranks  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ranks", type=int, default=8)
    ap.add_argument("--mb", type=float, default=100.0)
    ap.add_argument("--slow-rank", type=int, default=5)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args(argv)

    from tracetui.analysis.ranks import summarize_ranks
    from tracetui.analysis.rules import DEFAULT_RULES
    from tracetui.job.many import reports, trace_files
    from tracetui.trace.parallel import default_workers

    tmp = tempfile.mkdtemp(prefix="tracetui-ranks-")
    try:
        made = make_ranks(tmp, args.ranks, args.slow_rank, 1.3, args.mb)
        files = trace_files([tmp])
        t = time.perf_counter()
        side = reports(files, DEFAULT_RULES)
        side_s = time.perf_counter() - t
        t = time.perf_counter()
        one = reports(files, DEFAULT_RULES, processes=1)
        one_s = time.perf_counter() - t
        # the app's path: the ranks' indexes built side by side, then one timeline
        from tracetui.trace.combine import combine
        from tracetui.job.many import load_many

        t = time.perf_counter()
        traces = [(k, tr) for k, (_, tr, _) in enumerate(load_many(files))]
        loaded_s = time.perf_counter() - t
        t = time.perf_counter()
        combined = combine(traces, "start")
        combine_s = time.perf_counter() - t
        app_events = combined.events
        del traces, combined
        summary = summarize_ranks([(p, r) for p, r, _ in side])
        same = [r for _, r, _ in side] == [r for _, r, _ in one]
        print(json.dumps({
            "ranks": len(files), "mb_each": round(sum(m["bytes"] for m in made) / len(made) / 1e6, 1),
            "events_each": made[0]["events"], "cores": os.cpu_count(),
            "processes": min(default_workers(), len(files)),
            "side_by_side_s": round(side_s, 2), "one_after_another_s": round(one_s, 2),
            "ratio": round(one_s / side_s, 2), "same_reports": same,
            "app_load_s": round(loaded_s, 2), "app_combine_s": round(combine_s, 2),
            "app_events": app_events,
            "stragglers": summary["stragglers"], "slowed_rank": args.slow_rank}))
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
