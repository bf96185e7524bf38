"""Collectives across ranks (issue 34): the i-th collective of a kind (per process group) on
every rank is one collective; its transfer time is the shortest duration across ranks, the
rest of each rank's duration is waiting (sync); the late rank is the one that started last.

The reference below reads the raw JSON with plain ``json`` (times as exact decimals, in ns),
not tracetui: a collective is a ``record_param_comms`` with a ``Collective name`` whose
enclosed runtime calls (same thread) launched kernels (joined by ``correlation``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest

from tracetui.analysis.ranks import summarize_ranks
from tracetui.analysis.report import analyze
from tracetui.trace import load

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from make_collectives import make_collectives  # noqa: E402

TOL = 0.01  # µs
RUNTIME_CATS = {"cuda_runtime", "cuda_driver", "runtime"}
GPU_CATS = {"kernel", "gpu_memcpy", "gpu_memset"}
KINDS = {
    "allreduce": "all_reduce", "allreduce_coalesced": "all_reduce",
    "_allgather_base": "all_gather", "allgather": "all_gather",
    "all_gather_into_tensor_coalesced": "all_gather",
    "reduce_scatter": "reduce_scatter", "_reduce_scatter_base": "reduce_scatter",
    "reduce_scatter_tensor_coalesced": "reduce_scatter",
    "alltoall": "all_to_all", "alltoall_base": "all_to_all", "all_to_all": "all_to_all",
    "send": "send", "recv": "recv", "broadcast": "broadcast", "reduce": "reduce",
    "gather": "gather", "scatter": "scatter", "barrier": "barrier",
}
ELEMENT = {"Float": 4, "Double": 8, "Half": 2, "BFloat16": 2, "Long": 8, "Int": 4, "Short": 2,
           "Char": 1, "Byte": 1, "Bool": 1, "ComplexFloat": 8}


def _ns(v) -> int:
    return int(Decimal(v).scaleb(3).to_integral_value()) if not isinstance(v, int) else v * 1000


# ----------------------------------------------------------------------------- reference

def rank_collectives(path: str) -> tuple[int, list[dict]]:
    """(rank, collectives) of one trace from its raw JSON."""
    with open(path) as f:
        doc = json.load(f, parse_float=Decimal)
    rank = doc["distributedInfo"]["rank"]
    evs = [e for e in doc["traceEvents"] if e.get("ph") == "X"]
    kernels = defaultdict(list)
    for e in evs:
        if e.get("cat") in GPU_CATS and "correlation" in e.get("args", {}):
            kernels[e["args"]["correlation"]].append(e)
    runtime = [e for e in evs if e.get("cat") in RUNTIME_CATS]
    out = []
    for op in evs:
        a = op.get("args", {})
        if op.get("name") != "record_param_comms" or "Collective name" not in a:
            continue
        lo, hi = _ns(op["ts"]), _ns(op["ts"]) + _ns(op["dur"])
        ks = [k for rt in runtime
              if rt["pid"] == op["pid"] and rt["tid"] == op["tid"]
              and lo <= _ns(rt["ts"]) and _ns(rt["ts"]) + _ns(rt["dur"]) <= hi
              for k in kernels.get(rt["args"].get("correlation"), [])]
        if not ks:
            continue  # "wait": launched nothing, no collective
        start = min(_ns(k["ts"]) for k in ks)
        end = max(_ns(k["ts"]) + _ns(k["dur"]) for k in ks)
        n_in, n_out = a.get("In msg nelems"), a.get("Out msg nelems")
        kind = KINDS.get(a["Collective name"], "other")
        nel = n_in if kind == "all_to_all" else max(n_in, n_out)
        out.append({"kind": kind, "pg": a.get("Process Group Name"), "start": start,
                    "end": end, "dur": end - start, "bytes": nel * ELEMENT[a["dtype"]]})
    return rank, out


def reference(files: list[str]) -> dict:
    """Per rank transfer/sync (µs) and late counts; per matched collective its figures."""
    per_rank = dict(rank_collectives(p) for p in files)
    groups: dict[tuple, dict[int, list]] = defaultdict(dict)
    for r, cs in per_rank.items():
        by = defaultdict(list)
        for c in cs:
            by[(c["kind"], c["pg"])].append(c)
        for key, lst in by.items():
            groups[key][r] = sorted(lst, key=lambda c: c["start"])
    transfer = {r: 0 for r in per_rank}
    sync = {r: 0 for r in per_rank}
    late = {r: 0 for r in per_rank}
    matched = []
    for (kind, pg), ranks in groups.items():
        for i in range(max(len(v) for v in ranks.values())):
            here = {r: v[i] for r, v in ranks.items() if i < len(v)}
            t = min(c["dur"] for c in here.values())
            last = max(c["start"] for c in here.values())
            late_rank = min(r for r, c in here.items() if c["start"] == last)
            for r, c in here.items():
                transfer[r] += t
                sync[r] += c["dur"] - t
            late[late_rank] += 1
            matched.append({
                "kind": kind, "process_group": pg, "index": i, "late_rank": late_rank,
                "ranks": sorted(here),
                "start_skew_us": (last - min(c["start"] for c in here.values())) / 1000,
                "end_skew_us": (max(c["end"] for c in here.values())
                                - min(c["end"] for c in here.values())) / 1000,
                "transfer_us": t / 1000,
                # the spec does not say whose bytes when ranks differ (a shifted match):
                # any of theirs
                "bytes": {c["bytes"] for c in here.values()}})
    has = {r: bool(cs) for r, cs in per_rank.items()}
    return {"transfer_us": {r: transfer[r] / 1000 if has[r] else None for r in per_rank},
            "sync_us": {r: sync[r] / 1000 if has[r] else None for r in per_rank},
            "late_count": late, "matched": matched,
            "count": {r: len(cs) for r, cs in per_rank.items()}}


# ----------------------------------------------------------------------------- tracetui

def files_of(d: Path) -> list[str]:
    return sorted((str(p) for p in d.glob("rank-*.json")),
                  key=lambda s: int(Path(s).stem.split("-")[1]))


def via_api(files: list[str]) -> dict:
    return summarize_ranks([(p, analyze(load(p))) for p in files])


def via_cli(d: Path) -> dict:
    r = subprocess.run([sys.executable, "-m", "tracetui", "summary", str(d), "--json"],
                       capture_output=True, text=True, timeout=300,
                       env={**os.environ, "NO_COLOR": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout)


def check(summary: dict, ref: dict, where: str) -> None:
    """tracetui's ranks[] and collective_waits against the reference; every disagreement is
    listed, not just the first."""
    bad = []
    rows = {row["rank"]: row for row in summary["ranks"]}
    assert sorted(rows) == sorted(ref["transfer_us"]), where
    for r in sorted(rows):
        row = rows[r]
        for key, want in (("comm_transfer_us", ref["transfer_us"][r]),
                          ("comm_sync_us", ref["sync_us"][r])):
            got = row.get(key, "<missing>")
            if want is None or not isinstance(got, (int, float)):
                if got != want:
                    bad.append(f"rank {r} {key}: tracetui {got!r}, reference {want!r}")
            elif abs(got - want) > TOL:
                bad.append(f"rank {r} {key}: tracetui {got}, reference {want:.3f}")
        if row.get("late_count", "<missing>") != ref["late_count"][r]:
            bad.append(f"rank {r} late_count: tracetui {row.get('late_count', '<missing>')!r}, "
                       f"reference {ref['late_count'][r]}")
    waits = summary.get("collective_waits")
    if not isinstance(waits, list):
        bad.append(f"collective_waits: {waits!r}")
    else:
        want_n = min(20, len(ref["matched"]))
        if len(waits) != want_n:
            bad.append(f"collective_waits: {len(waits)} rows, reference {want_n}")
        skews = [w.get("start_skew_us") for w in waits]
        if skews != sorted(skews, reverse=True):
            bad.append(f"collective_waits not by start skew, largest first: {skews}")
        top = sorted((m["start_skew_us"] for m in ref["matched"]), reverse=True)[:len(waits)]
        if not all(abs(a - b) <= TOL for a, b in zip(skews, top)):
            bad.append(f"collective_waits' skews {skews} != the reference's largest {top}")
        index = {(m["kind"], m["process_group"], m["index"]): m for m in ref["matched"]}
        for w in waits:
            key = (w.get("kind"), w.get("process_group"), w.get("index"))
            m = index.get(key)
            if m is None:
                bad.append(f"collective_waits row {key} (index 0-based) is no matched "
                           f"collective of the reference")
                continue
            if w.get("late_rank") != m["late_rank"]:
                bad.append(f"{key} late_rank: tracetui {w.get('late_rank')!r}, "
                           f"reference {m['late_rank']!r}")
            if w.get("bytes") not in m["bytes"]:
                bad.append(f"{key} bytes: tracetui {w.get('bytes')!r}, reference one of "
                           f"{sorted(m['bytes'])}")
            for f in ("start_skew_us", "end_skew_us", "transfer_us"):
                if not isinstance(w.get(f), (int, float)) or abs(w[f] - m[f]) > TOL:
                    bad.append(f"{key} {f}: tracetui {w.get(f)!r}, reference {m[f]:.3f}")
    assert not bad, f"{where}:\n" + "\n".join(bad)


# ----------------------------------------------------------------------------- tests

@pytest.fixture(scope="module")
def job(tmp_path_factory) -> tuple[Path, dict]:
    d = tmp_path_factory.mktemp("collectives")
    make_collectives(str(d))  # 8 ranks, 4 steps, rank 5 300 µs late
    return d, reference(files_of(d))


def test_reference_sees_the_generated_job(job):
    """The reference itself, against what the generator meant (so a wrong reference is not
    what tracetui is held to): 20 collectives a rank, rank 5 last at each and waiting for no
    one, the others waiting ~300 µs at each."""
    d, ref = job
    print_reference(ref)
    assert ref["count"] == {r: 20 for r in range(8)}
    assert len(ref["matched"]) == 20 and all(m["ranks"] == list(range(8))
                                             for m in ref["matched"])
    assert ref["late_count"] == {r: 20 if r == 5 else 0 for r in range(8)}
    assert all(m["late_rank"] == 5 for m in ref["matched"])
    assert all(280 <= m["start_skew_us"] <= 320 for m in ref["matched"])
    assert all(m["end_skew_us"] == 0 for m in ref["matched"])
    assert ref["sync_us"][5] == 0
    assert all(20 * 280 <= ref["sync_us"][r] <= 20 * 320 for r in range(8) if r != 5)
    assert len(set(ref["transfer_us"].values())) == 1  # one transfer per collective, all ranks


def test_summarize_ranks_agrees(job):
    d, ref = job
    s = via_api(files_of(d))
    check(s, ref, "summarize_ranks")
    assert {w["late_rank"] for w in s["collective_waits"]} == {5}


def test_cli_summary_dir_agrees(job):
    d, ref = job
    s = via_cli(d)
    check(s, ref, "tracetui summary DIR --json")
    assert [r["rank"] for r in s["ranks"]] == list(range(8))


def test_no_late_rank(tmp_path):
    """Jitter only: the last to arrive changes from one collective to the next, and nobody
    waits long."""
    make_collectives(str(tmp_path), ranks=8, steps=4, late_rank=None, seed=3)
    ref = reference(files_of(tmp_path))
    assert len({m["late_rank"] for m in ref["matched"]}) >= 4
    assert all(m["start_skew_us"] <= 20 for m in ref["matched"])
    s = via_api(files_of(tmp_path))
    check(s, ref, "summarize_ranks, no late rank")
    assert len({w["late_rank"] for w in s["collective_waits"]}) >= 3
    n = len(ref["matched"])
    assert all(row["comm_sync_us"] <= 20 * n for row in s["ranks"])
    check(via_cli(tmp_path), ref, "summary DIR --json, no late rank")


@pytest.mark.parametrize("drop", [(3, 6), (3, 19), (0, 0)])
def test_a_rank_missing_a_collective(tmp_path, drop):
    """One rank's trace lacks one collective: the i-th of each kind is still matched across
    the ranks that have an i-th (a lost one in the middle shifts that rank's later ones of
    that kind), and tracetui says what the reference says."""
    made = make_collectives(str(tmp_path), ranks=8, steps=4, late_rank=5, drop=drop)
    assert made[drop[0]]["collectives"] == 19
    ref = reference(files_of(tmp_path))
    assert ref["count"][drop[0]] == 19
    assert any(len(m["ranks"]) == 7 for m in ref["matched"])
    check(via_api(files_of(tmp_path)), ref, f"summarize_ranks, drop {drop}")
    check(via_cli(tmp_path), ref, f"summary DIR --json, drop {drop}")


def print_reference(ref: dict) -> None:
    print("\nrank  transfer_us      sync_us  late_count")
    for r in sorted(ref["transfer_us"]):
        print(f"{r:4d} {ref['transfer_us'][r]:12.3f} {ref['sync_us'][r]:12.3f} "
              f"{ref['late_count'][r]:6d}")
    lates = sorted({m["late_rank"] for m in ref["matched"]})
    print(f"late rank(s): {lates}; largest start skew "
          f"{max(m['start_skew_us'] for m in ref['matched']):.3f} µs")


if __name__ == "__main__":  # python tests/test_collective_ranks.py DIR: the reference of DIR
    print_reference(reference(files_of(Path(sys.argv[1]))))
