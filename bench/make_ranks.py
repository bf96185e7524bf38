"""Make a directory of rank traces of one job, one rank slowed down (a straggler).

Each rank is the source trace (repeated to ``--mb`` MB, see make_big.py) with its own
``distributedInfo.rank``; on the slow rank every computation kernel lasts ``--slow`` times as
long (communication kernels, CPU work and start times unchanged), as if its GPU ran slower.

    python bench/make_ranks.py OUTDIR --ranks 8 --slow-rank 5 --slow 1.3 [--mb 100]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_big import DEFAULT_SOURCE, make_big  # noqa: E402


def _slower(factor: float):
    from tracetui.analysis.rules import COMM, DEFAULT_RULES

    comm = [r.regex for r in DEFAULT_RULES if r.cls == COMM]

    def edit(e: dict[str, Any]) -> dict[str, Any]:
        if str(e.get("cat", "")).lower() == "kernel" and isinstance(e.get("dur"), (int, float)) \
                and not any(rx.search(str(e.get("name", ""))) for rx in comm):
            e["dur"] = round(e["dur"] * factor, 3)
        return e

    return edit


def make_ranks(out_dir: str, ranks: int, slow_rank: int | None, slow: float, mb: float,
               source: str = DEFAULT_SOURCE, name: str = "rank-{rank}.json",
               with_info: bool = True) -> list[dict[str, Any]]:
    os.makedirs(out_dir, exist_ok=True)
    made = []
    for r in range(ranks):
        header = {"distributedInfo": {"backend": "nccl", "rank": r, "world_size": ranks}} \
            if with_info else {}
        edit = _slower(slow) if r == slow_rank else None
        path = os.path.join(out_dir, name.format(rank=r))
        made.append(make_big(path, mb, source, edit=edit, header=header))
    return made


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir")
    ap.add_argument("--ranks", type=int, default=8)
    ap.add_argument("--slow-rank", type=int, default=5)
    ap.add_argument("--slow", type=float, default=1.3)
    ap.add_argument("--mb", type=float, default=0.0, help="MB per rank (0: one copy)")
    ap.add_argument("--source", default=DEFAULT_SOURCE)
    args = ap.parse_args(argv)
    made = make_ranks(args.out_dir, args.ranks, args.slow_rank, args.slow, args.mb, args.source)
    print(json.dumps({"dir": args.out_dir, "ranks": len(made),
                      "mb": round(sum(m["bytes"] for m in made) / 1e6, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
