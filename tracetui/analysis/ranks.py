"""Many ranks of one job: each rank's figures from its report, and the straggler(s).

A rank's figures come from :func:`tracetui.analysis.report.analyze` of its trace, so they
equal that file's own ``tracetui summary``. Pure: no textual or rich.

The straggler is the rank the others wait for. In a synchronous job every rank's step takes
about as long (the fast ones wait inside their collectives), so step time does not single it
out: its **computation** does. A rank is marked when its computation per step exceeds the
median of all ranks by more than both 5 % and three robust standard deviations (1.4826 × the
median absolute deviation), the usual outlier rule that one slow rank cannot hide by moving
the spread. Its exposed communication is usually the lowest: it arrives last and waits least.
"""

from __future__ import annotations

import math
import os
import re
from statistics import median
from typing import Any, Sequence

from .collectives import match_ranks

_STEP = re.compile(r"^ProfilerStep#\d+$")
_RANK_IN_NAME = re.compile(r"(?:rank|rk|worker|proc|node|gpu)[-_ .]?(\d+)",
                           re.IGNORECASE | re.ASCII)
_LAST_NUMBER = re.compile(r"(\d+)(?!.*\d)", re.ASCII)
#: the highest rank taken as one (ranks are numbers of processes: a larger "rank", 2**64
#: say, is no rank, and would not fit the int32/int64 arrays it is drawn from)
MAX_RANK = 2 ** 31 - 1

#: a straggler's computation exceeds the median by more than this fraction ...
MIN_EXCESS = 0.05
#: ... and by more than this many robust standard deviations
ROBUST_Z = 3.0


def rank_of(report: dict[str, Any], path: str, index: int) -> tuple[int, str]:
    """The rank of a trace and where it came from: ``distributedInfo.rank``, else a number
    in the file name (``rank-3``, ``worker_3``, else the last number), else ``index``."""
    info = report.get("distributed_info") or {}
    r = info.get("rank") if isinstance(info, dict) else None
    if isinstance(r, bool):
        r = None
    if isinstance(r, str) and r.strip().isascii() and r.strip().isdigit():  # not "²"
        r = int(r)
    if isinstance(r, int) and 0 <= r <= MAX_RANK:
        return r, "distributedInfo"
    name = os.path.basename(path)
    for suffix in (".gz", ".json", ".pt.trace"):
        name = name[: -len(suffix)] if name.endswith(suffix) else name
    m = _RANK_IN_NAME.search(name) or _LAST_NUMBER.search(name)
    if m and int(m.group(1)) <= MAX_RANK:
        return int(m.group(1)), "file name"
    return index, "order"


def distinct_ranks(ranks: Sequence[int], files: Sequence[str]) -> tuple[list[int], list[str]]:
    """Ranks that tell the files apart, for a view that holds each rank once (the app's
    lanes, rank view and timelines): a rank another file claimed first is shown as a new
    number after the highest, and said so (``summary`` keeps both rows as the rank they
    claim, with a warning)."""
    out: list[int] = []
    warnings: list[str] = []
    first: dict[int, str] = {}
    spare = max(ranks, default=-1) + 1
    for rank, file in zip(ranks, files):
        if rank in first:
            a, b = os.path.basename(first[rank]), os.path.basename(file)
            a, b = (first[rank], file) if a == b else (a, b)
            warnings.append(f"rank {rank} appears twice: {b} is shown as rank {spare} "
                            f"({a} is rank {rank})")
            rank, spare = spare, spare + 1
        first.setdefault(rank, file)
        out.append(rank)
    return out, warnings


def with_rank(report: dict[str, Any], rank: int) -> dict[str, Any]:
    """``report`` as rank ``rank`` (:func:`rank_of` then says so)."""
    info = report.get("distributed_info")
    return {**report, "distributed_info": {**(info if isinstance(info, dict) else {}),
                                           "rank": rank}}


def _share(part: float, whole: float) -> float | None:
    """``part`` in % of ``whole``; None where that is no number (a whole of nothing, or so
    small, in a hand-made report, that the share is past any float)."""
    if not whole > 0:
        return None
    pct = 100 * part / whole
    return round(pct, 2) if math.isfinite(pct) else None


def rank_figures(report: dict[str, Any]) -> dict[str, Any]:
    """One rank's figures (µs): steps, GPU busy, computation, communication, exposed
    communication and overlap %, summed over its GPUs."""
    steps = sorted(a["total_us"] for a in report.get("annotations", [])
                   if a.get("source") == "cpu" and _STEP.match(str(a.get("name", "")))
                   and isinstance(a.get("total_us"), (int, float)))
    comm = sum(o["comm_us"] for o in report["overlap"])
    comp = sum(o["comp_us"] for o in report["overlap"])
    overlap = sum(o["overlap_us"] for o in report["overlap"])
    exposed = sum(o["exposed_comm_us"] for o in report["overlap"])
    busy = comm + comp - overlap
    span = report["span_ns"] / 1000
    gpus = max(len(report["overlap"]), len(report.get("devices", [])), 1)
    n = len(steps)
    per = n if n else 1
    return {
        "devices": list(report.get("devices", [])),
        "events": report["events"],
        "span_us": round(span, 3),
        "steps": n,
        "step_us": round(median(steps), 3) if steps else None,
        "step_max_us": round(steps[-1], 3) if steps else None,
        "gpu_busy_us": round(busy, 3),
        # of the time its GPUs had: two GPUs busy all along are 100 %, not 200 %
        "gpu_busy_pct": _share(busy, span * gpus),
        "comp_us": round(comp, 3),
        "comm_us": round(comm, 3),
        "exposed_comm_us": round(exposed, 3),
        "overlap_pct": _share(overlap, comm),
        "comp_per_step_us": round(comp / per, 3),
        "exposed_comm_per_step_us": round(exposed / per, 3),
        "truncated": bool(report.get("truncated")),
    }


def find_stragglers(values: Sequence[float]) -> list[int]:
    """Indexes of the values that stand out above the rest (see the module's docstring)."""
    if len(values) < 3:
        return []  # two ranks: which one is "the" outlier is a guess
    med = median(values)
    mad = median(abs(v - med) for v in values)
    limit = med + max(MIN_EXCESS * abs(med), ROBUST_Z * 1.4826 * mad)
    return [i for i, v in enumerate(values) if v > limit and v > 0]


def summarize_ranks(items: Sequence[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """Per-rank figures for ``(path, report)`` pairs, sorted by rank, with the stragglers.

    Two files claiming the same rank keep their order and are told apart by a warning.
    """
    rows = []
    comms = []
    for index, (path, report) in enumerate(items):
        rank, source = rank_of(report, path, index)
        rows.append({"rank": rank, "rank_from": source, "file": report.get("file", path),
                     **rank_figures(report)})
        comms.append((rank, report.get("collectives") or []))
    # collectives across ranks: who waits for whom (a rank twice: its first report only)
    seen_ranks: set[int] = set()
    matched = match_ranks([(r, c) for r, c in comms
                           if not (r in seen_ranks or seen_ranks.add(r))])
    for row in rows:
        row.update(matched["per_rank"].get(row["rank"], {
            "comm_transfer_us": None, "comm_sync_us": None, "late_count": 0}))
    rows.sort(key=lambda r: r["rank"])
    warnings = []
    seen: dict[int, str] = {}
    for r in rows:
        if r["rank"] in seen:
            warnings.append(f"rank {r['rank']} appears twice: {seen[r['rank']]} and {r['file']}")
        seen.setdefault(r["rank"], r["file"])
        if r["truncated"]:
            warnings.append(f"rank {r['rank']}: the trace is cut off ({r['file']})")
    # a rank with no GPU computation (a CPU-only process, a data loader) is no straggler
    # and, left in, its 0 widens the spread until none stands out: left out, and said
    idle = [r["rank"] for r in rows if not r["comp_per_step_us"]]
    if idle and len(idle) < len(rows):
        warnings.append(f"{ranks_text(idle)}: no GPU computation, left out of the "
                        "straggler rule and the median")
    counted = [i for i, r in enumerate(rows) if r["comp_per_step_us"]] or \
        list(range(len(rows)))
    marked = [counted[i] for i in find_stragglers([rows[i]["comp_per_step_us"]
                                                   for i in counted])]
    for i, r in enumerate(rows):
        r["straggler"] = i in marked
    comp = [rows[i]["comp_per_step_us"] for i in counted]
    return {
        "ranks": rows,
        "stragglers": [rows[i]["rank"] for i in marked],
        "median_comp_per_step_us": round(median(comp), 3) if comp else None,
        "rule": (f"computation per step above the median by more than {MIN_EXCESS:.0%} and "
                 f"{ROBUST_Z:g} robust standard deviations (1.4826 x MAD)"),
        "collective_waits": matched["collective_waits"],
        "collectives_matched": matched["matched"],
        "warnings": warnings + [f"collectives not matched one to one: {u}"
                                for u in matched["uneven"]],
    }


def ranks_text(ranks: Sequence[int], word: bool = True) -> str:
    """``rank 3`` / ``ranks 0-3, 7`` (``word`` False: ``3``, ``0-3, 7``): ranks as runs, at
    most six, then how many more."""
    runs: list[list[int]] = []
    for r in ranks:
        if runs and r == runs[-1][1] + 1:
            runs[-1][1] = r
        else:
            runs.append([r, r])
    parts = [f"{a}" if a == b else f"{a}-{b}" for a, b in runs]
    return (("" if not word else "rank " if len(ranks) == 1 else "ranks ") + ", ".join(parts[:6])
            + (f" and {len(parts) - 6} more" if len(parts) > 6 else ""))
