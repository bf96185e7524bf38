"""Comparing two runs: what changed between a baseline report and a new one.

Both sides are :func:`tracetui.analysis.report.analyze` reports. Kernels are matched by full
name (and, in ``kernel_groups``, by short name: templates and arguments elided, which
survives a recompile that changes template arguments), annotations by name and side (CPU or
GPU), devices by number (or, when the two sides have as many GPUs and no number in common,
in order: rank 0's GPU 0 against rank 1's GPU 1). Rows are sorted by impact: the absolute change of total time.
Pure: no textual or rich.
"""

from __future__ import annotations

import math
from statistics import median
from typing import Any, Iterable, Sequence

from .ranks import MIN_EXCESS, ROBUST_Z, rank_figures, rank_of, ranks_text, summarize_ranks

_TOTALS = ("span_us", "steps", "step_us", "gpu_busy_us", "comp_us", "comm_us",
           "exposed_comm_us", "overlap_pct")


def _d(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(b - a, 3)


def _pct(a: float | None, b: float | None) -> float | None:
    """The change from ``a`` to ``b`` in % of ``a``; None where it is no number."""
    if not a or b is None:
        return None
    pct = 100 * (b - a) / a
    return round(pct, 2) if math.isfinite(pct) else None


def _match(base: Iterable[dict], new: Iterable[dict], key) -> list[tuple[Any, dict | None,
                                                                           dict | None]]:
    """(key, base row, new row) for every key on either side, in first-seen order."""
    b = {key(r): r for r in base}
    n = {key(r): r for r in new}
    keys = list(b) + [k for k in n if k not in b]
    return [(k, b.get(k), n.get(k)) for k in keys]


def _kernel_rows(base: list[dict], new: list[dict], name_key: str) -> list[dict[str, Any]]:
    rows = []
    for name, b, n in _match(base, new, lambda r: r[name_key]):
        bc, nc = (b or {}).get("count", 0), (n or {}).get("count", 0)
        bt, nt = (b or {}).get("total_us", 0.0), (n or {}).get("total_us", 0.0)
        ba, na = (b or {}).get("avg_us"), (n or {}).get("avg_us")
        rows.append({
            "name": name,
            "class": (n or b)["class"],
            "in": "both" if b and n else ("base" if b else "new"),
            "base_count": bc, "new_count": nc, "delta_count": nc - bc,
            "base_total_us": round(bt, 3), "new_total_us": round(nt, 3),
            "delta_total_us": round(nt - bt, 3), "delta_total_pct": _pct(bt, nt),
            "base_avg_us": ba, "new_avg_us": na, "delta_avg_us": _d(ba, na),
            "impact_us": round(abs(nt - bt), 3),
        })
    rows.sort(key=lambda r: (-abs(r["delta_total_us"]), r["name"]))
    return rows


def _time(row: dict[str, Any], side: str) -> float | None:
    """An annotation row's time on one side: its CPU time, or for a row without one (the
    ``(no phase)`` row: GPU work no annotation launched) its GPU time."""
    v = row[f"{side}_total_us"]
    return row[f"{side}_gpu_us"] if v is None else v


def _impact(row: dict[str, Any]) -> float:
    """How much an annotation changed: |Δtime| + |Δexposed communication|, a side without
    the row counting as nothing (a row in one run only changed by all its time). The time is
    the CPU time, or the GPU time of a row without one (``(no phase)``)."""
    def change(b: float | None, n: float | None) -> float:
        return abs((n or 0.0) - (b or 0.0))

    return (change(_time(row, "base") if row["in"] != "new" else None,
                   _time(row, "new") if row["in"] != "base" else None)
            + change(row["base_exposed_comm_us"], row["new_exposed_comm_us"]))


def compare(base: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Everything ``tracetui diff BASE NEW`` shows, as plain data."""
    fb, fn = rank_figures(base), rank_figures(new)
    totals = {k: {"base": fb[k], "new": fn[k], "delta": _d(fb[k], fn[k]),
                  "delta_pct": _pct(fb[k], fn[k]) if k != "overlap_pct" else None}
              for k in _TOTALS}
    kernels = _kernel_rows(base["kernels"], new["kernels"], "name")
    groups = _kernel_rows(
        [{**g, "name": g["short_name"]} for g in base.get("kernel_groups", [])],
        [{**g, "name": g["short_name"]} for g in new.get("kernel_groups", [])], "name")
    devices = []
    bo, no = base["overlap"], new["overlap"]
    if bo and len(bo) == len(no) and not {r["device"] for r in bo} & {r["device"] for r in no}:
        # the same number of GPUs, none with a number the other side has (rank 0's GPU 0
        # against rank 1's GPU 1): paired in order, not shown as two unmatched GPUs
        pairs = [(b["device"], b, n) for b, n in zip(sorted(bo, key=lambda r: r["device"]),
                                                    sorted(no, key=lambda r: r["device"]))]
    else:
        pairs = _match(bo, no, lambda r: r["device"])
    for dev, b, n in pairs:
        row: dict[str, Any] = {"device": dev, "new_device": n["device"] if n else None,
                               "in": "both" if b and n else ("base" if b else "new")}
        for k in ("comm_us", "comp_us", "overlap_us", "overlap_pct", "exposed_comm_us"):
            bv, nv = (b or {}).get(k), (n or {}).get(k)
            row[f"base_{k}"], row[f"new_{k}"], row[f"delta_{k}"] = bv, nv, _d(bv, nv)
        devices.append(row)
    annotations = []
    for (name, side), b, n in _match(base["annotations"], new["annotations"],
                                     lambda r: (r["name"], r["source"])):
        row = {"name": name, "source": side, "in": "both" if b and n else
               ("base" if b else "new")}
        for k in ("count", "total_us", "gpu_us", "comm_us", "exposed_comm_us", "overlap_pct"):
            bv, nv = (b or {}).get(k), (n or {}).get(k)
            row[f"base_{k}"], row[f"new_{k}"], row[f"delta_{k}"] = bv, nv, _d(bv, nv)
        row["impact_us"] = round(_impact(row), 3)
        annotations.append(row)
    annotations.sort(key=lambda r: (-r["impact_us"],
                                    -(_time(r, "new") or _time(r, "base") or 0.0),
                                    r["name"], r["source"]))
    return {
        "base": {"file": base["file"], "events": base["events"]},
        "new": {"file": new["file"], "events": new["events"]},
        "totals": totals,
        "kernels": kernels,
        "kernel_groups": groups,
        "only_in_base": [r["name"] for r in kernels if r["in"] == "base"],
        "only_in_new": [r["name"] for r in kernels if r["in"] == "new"],
        "devices": devices,
        "annotations": annotations,
        "warnings": [f"{side}: {w}" for side, rep in (("base", base), ("new", new))
                     for w in rep.get("warnings", [])],
    }


#: the per-rank figures a job diff compares, rank by rank
_RANK_FIGURES = ("step_us", "comp_per_step_us", "gpu_busy_us", "comm_us", "exposed_comm_us",
                 "overlap_pct")


def _changed(rows: list[dict[str, Any]]) -> list[int]:
    """The ranks whose computation per step changed unlike the others': relative change
    away from the ranks' median change by more than both 5 % and three robust standard
    deviations (a job that got 10 % faster everywhere changed no rank in particular)."""
    rel = [(r["rank"], r["new_comp_per_step_us"] / r["base_comp_per_step_us"] - 1)
           for r in rows if r["in"] == "both" and r["base_comp_per_step_us"]
           and r["new_comp_per_step_us"] is not None]
    if len(rel) < 3:
        return []
    med = median(v for _, v in rel)
    mad = median(abs(v - med) for _, v in rel)
    limit = max(MIN_EXCESS, ROBUST_Z * 1.4826 * mad)
    return [rank for rank, v in rel if abs(v - med) > limit]


def _job_kernels(reports: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """One kernel table over all ranks: per name (``key``), count and time summed."""
    out: dict[str, dict[str, Any]] = {}
    for rep in reports:
        for k in rep.get(key, []):
            name = k["short_name"] if key == "kernel_groups" else k["name"]
            g = out.setdefault(name, {"name": name, "class": k["class"], "count": 0,
                                      "total_us": 0.0})
            g["count"] += k["count"]
            g["total_us"] += k["total_us"]
    for g in out.values():
        g["total_us"] = round(g["total_us"], 3)
        g["avg_us"] = round(g["total_us"] / g["count"], 3) if g["count"] else None
    return list(out.values())


def compare_ranks(base: Sequence[tuple[str, dict[str, Any]]],
                  new: Sequence[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """``tracetui diff DIR_A DIR_B``: two jobs' ranks (``(path, report)`` pairs), rank by
    rank (matched by rank number), the ranks that changed unlike the rest, the stragglers
    before and after, and the kernels by impact over all ranks."""
    sb, sn = summarize_ranks(base), summarize_ranks(new)
    rows = []
    def keyed(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Rows keyed (rank, its k-th file): a rank two files claim pairs in file order."""
        return [{**r, "_key": k} for k, r in zip(_occurrences([r["rank"] for r in rows]), rows)]

    for (rank, _), b, n in _match(keyed(sb["ranks"]), keyed(sn["ranks"]), lambda r: r["_key"]):
        row: dict[str, Any] = {"rank": rank, "in": "both" if b and n else
                               ("base" if b else "new"),
                               "base_file": (b or {}).get("file"), "new_file": (n or {}).get("file")}
        for k in _RANK_FIGURES:
            bv, nv = (b or {}).get(k), (n or {}).get(k)
            row[f"base_{k}"], row[f"new_{k}"], row[f"delta_{k}"] = bv, nv, _d(bv, nv)
            if k != "overlap_pct":
                row[f"delta_{k}_pct"] = _pct(bv, nv)
        rows.append(row)
    rows.sort(key=lambda r: r["rank"])
    changed = _changed(rows)
    for r in rows:
        r["changed"] = r["rank"] in changed
    # the kernels over the ranks both jobs have: a rank in one job only would count as
    # every kernel's change (a job of 8 ranks against one of 7: all kernels 12 % "faster")
    kb, kn = _rank_keys(base), _rank_keys(new)
    common = set(kb) & set(kn)
    reps_b = [r for k, r in kb.items() if k in common]
    reps_n = [r for k, r in kn.items() if k in common]
    warnings = [f"base: {w}" for w in sb["warnings"]] + [f"new: {w}" for w in sn["warnings"]]
    for side, keys in (("base", kb), ("new", kn)):
        alone = sorted({k[0] for k in keys if k not in common})
        if alone:
            warnings.append(
                f"{len(alone)} rank{'s' if len(alone) > 1 else ''} in the {side} job only "
                f"({ranks_text(alone, word=False)}): left out of the kernels over all ranks, which "
                f"compare the {len(common)} ranks both jobs have")
    return {
        "base": {"ranks": len(sb["ranks"]), "median_comp_per_step_us": sb["median_comp_per_step_us"]},
        "new": {"ranks": len(sn["ranks"]), "median_comp_per_step_us": sn["median_comp_per_step_us"]},
        "ranks": rows,
        "changed": changed,
        "stragglers": {"base": sb["stragglers"], "new": sn["stragglers"]},
        "kernels": _kernel_rows(_job_kernels(reps_b, "kernels"),
                                _job_kernels(reps_n, "kernels"), "name"),
        "kernel_groups": _kernel_rows(_job_kernels(reps_b, "kernel_groups"),
                                      _job_kernels(reps_n, "kernel_groups"), "name"),
        "kernel_ranks": len(common),
        "rule": "computation per step changed unlike the other ranks': its relative change "
                f"away from their median by more than {MIN_EXCESS:.0%} and {ROBUST_Z:g} robust "
                "standard deviations",
        "warnings": warnings,
    }


def _occurrences(ranks: Sequence[int]) -> list[tuple[int, int]]:
    """(rank, which of that rank's files, in order): the keys the ranks of two jobs are
    matched by (a rank two files claim pairs in file order)."""
    seen: dict[int, int] = {}
    out = []
    for rank in ranks:
        seen[rank] = seen.get(rank, -1) + 1
        out.append((rank, seen[rank]))
    return out


def _rank_keys(items: Sequence[tuple[str, dict[str, Any]]]) -> dict[tuple[int, int], dict[str, Any]]:
    """Each report by its key (:func:`_occurrences`)."""
    ranks = [rank_of(report, path, index)[0] for index, (path, report) in enumerate(items)]
    return dict(zip(_occurrences(ranks), (report for _, report in items)))
