"""Issue 34's ``collectives[]`` and ``collective_kinds[]`` against an independent computation.

The reference here reads the raw JSON with the standard library only (json, gzip, decimal,
integer nanoseconds) and never calls tracetui: every ``record_param_comms`` X event whose args
carry ``"Collective name"``; the runtime calls (cat ``cuda_runtime``/``cuda_driver``, and the 2021
``Runtime``) on its pid+tid lying inside its [ts, ts+dur]; the GPU kernels whose
``args.correlation`` equals one of theirs. A collective that launched no kernel is dropped.

Per collective (the issue's spec, nccl-tests' ``doc/PERFORMANCE.md``):
- bytes = S: all_to_all "In msg nelems", else max(In, Out), times the element size of "dtype";
- start/end = first kernel start / last kernel end, as the file's ``ts`` (µs, absolute on the
  trace's own clock; ``baseTimeNanoseconds`` is *not* added: the spec says "as in the file's ts");
- algbw = bytes / dur in decimal GB/s; busbw = algbw × 2(n-1)/n (all_reduce), (n-1)/n
  (all_gather, reduce_scatter, all_to_all, gather, scatter), 1 (broadcast, reduce, send, recv).

Beyond the spec, by design: NCCL/RCCL kernels that no such op owns (an older Kineto's
``record_param_comms`` without args, a launch the trace lacks, one outside the op) are
collectives too (``source: "kernel"``), their kind from the kernel's name, their size unknown
(:func:`ref_loose`). :func:`compare` checks the ``record_param_comms`` rows against
:func:`ref_collectives` and the others against :func:`ref_loose`.

Run as a script (``python tests/test_collectives.py``) it prints the per-kind table of the two
real traces from this reference alone.
"""

from __future__ import annotations

import gzip
import json
import statistics
import sys
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared" / "traces"
HTA_NCCL = SHARED / "hta_nccl_data.json.gz"
MI300 = SHARED / "tracelens_mi300_rccl.json.gz"
HTA_2RANK = [SHARED / "hta_2rank" / f"sampled_rank-{r}.json.gz" for r in (0, 1)]
REAL = [HTA_NCCL, MI300]

TIME_TOL_US = 0.001  # start/end/dur to a nanosecond
REL = 1e-6  # busbw/algbw, relative

# --------------------------------------------------------------------------------------------
# Reference: plain Python over exact integer nanoseconds, no tracetui code
# --------------------------------------------------------------------------------------------

LAUNCH_CATS = ("cuda_runtime", "cuda_driver", "Runtime")
KERNEL_CATS = ("kernel", "Kernel")

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

ELEMENT_SIZE = {"Float": 4, "Double": 8, "Half": 2, "BFloat16": 2, "Long": 8, "Int": 4,
                "Short": 2, "Char": 1, "Byte": 1, "Bool": 1, "ComplexFloat": 8}


def ref_kind(raw: str) -> str:
    return KINDS.get(raw, "other")


def ref_element_size(dtype: Any) -> int | None:
    if not isinstance(dtype, str):
        return None
    if dtype.startswith("Float8_"):
        return 1
    return ELEMENT_SIZE.get(dtype)


def ref_factor(kind: str, n: Any) -> float | None:
    """nccl-tests' bus-bandwidth factor (doc/PERFORMANCE.md), or None where it is not defined."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        return None
    if kind == "all_reduce":
        return 2 * (n - 1) / n
    if kind in ("all_gather", "reduce_scatter", "all_to_all", "gather", "scatter"):
        return (n - 1) / n
    if kind in ("broadcast", "reduce", "send", "recv"):
        return 1.0
    return None


def ref_bytes(kind: str, args: dict) -> int | None:
    size = ref_element_size(args.get("dtype"))
    inn, out = args.get("In msg nelems"), args.get("Out msg nelems")
    if size is None:
        return None
    if kind == "all_to_all":
        nel = inn
    else:
        if not isinstance(inn, int) or not isinstance(out, int):
            return None
        nel = max(inn, out)
    if not isinstance(nel, int):
        return None
    return nel * size


def ns(v: Any) -> int:
    """A µs value of the file (int or Decimal: floats are read as Decimal) -> exact int ns."""
    if isinstance(v, int):
        return v * 1000
    return int((Decimal(v) * 1000).to_integral_value())


def read_events(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        doc = json.load(f, parse_float=Decimal)
    return doc["traceEvents"] if isinstance(doc, dict) else doc


def ref_collectives(events: list[dict]) -> list[dict]:
    """The collectives of one trace, in start order (plain Python, exact ns)."""
    runtime: dict[tuple, list[tuple[int, int, Any]]] = defaultdict(list)
    kernels: dict[Any, list[dict]] = defaultdict(list)
    comms = []
    for e in events:
        if e.get("ph") != "X":
            continue
        args = e.get("args") or {}
        if e.get("cat") in LAUNCH_CATS and "correlation" in args:
            s = ns(e["ts"])
            runtime[(e.get("pid"), e.get("tid"))].append((s, s + ns(e.get("dur", 0)),
                                                          args["correlation"]))
        elif e.get("cat") in KERNEL_CATS and "correlation" in args:
            kernels[args["correlation"]].append(e)
        elif e.get("name") == "record_param_comms" and "Collective name" in args:
            comms.append(e)
    out = []
    for c in comms:
        args = c["args"]
        s0 = ns(c["ts"])
        e0 = s0 + ns(c.get("dur", 0))
        ks = [k for (s, e, corr) in runtime[(c.get("pid"), c.get("tid"))]
              if s0 <= s and e <= e0 for k in kernels.get(corr, ())]
        if not ks:
            continue
        start = min(ns(k["ts"]) for k in ks)
        end = max(ns(k["ts"]) + ns(k.get("dur", 0)) for k in ks)
        kind = ref_kind(args["Collective name"])
        nbytes = ref_bytes(kind, args)
        n = args.get("Group size")
        dur = end - start
        algbw = nbytes / dur if nbytes is not None and dur > 0 else None  # B/ns == GB/s
        f = ref_factor(kind, n)
        busbw = algbw * f if algbw is not None and f is not None else None
        pg = args.get("Process Group Name")
        out.append({
            "kernel_ids": {id(k) for k in ks},
            "kind": kind, "name": args["Collective name"], "dtype": args.get("dtype"),
            "bytes": nbytes, "group_size": n, "process_group": pg if isinstance(pg, str) else None,
            "start_ns": start, "end_ns": end, "dur_ns": dur, "algbw_gbps": algbw,
            "busbw_gbps": busbw, "kernels": len(ks),
            "device": sorted({k.get("args", {}).get("device", k.get("pid")) for k in ks},
                             key=str),
            "cpu_ts": c["ts"],
        })
    out.sort(key=lambda r: (r["start_ns"], r["end_ns"]))
    return out


LOOSE_KIND = {"allreduce": "all_reduce", "allgather": "all_gather",
              "reducescatter": "reduce_scatter", "broadcast": "broadcast", "reduce": "reduce",
              "sendrecv": "send_recv", "send": "send", "recv": "recv", "alltoall": "all_to_all"}


def ref_loose(events: list[dict], owned: list[dict]) -> list[dict]:
    """The NCCL/RCCL kernels (``ncclKernel_X…``, ``ncclDevKernel_X…``) that none of the
    ``owned`` collectives joined, one collective each: kind from X (``Generic``: other), no
    size; in start order."""
    taken = set().union(*(c["kernel_ids"] for c in owned)) if owned else set()
    out = []
    for e in events:
        if e.get("ph") != "X" or e.get("cat") not in KERNEL_CATS or id(e) in taken:
            continue
        name = str(e.get("name", ""))
        bare = name[5:] if name.startswith("void ") else name
        for head in ("ncclDevKernel_", "ncclKernel_"):
            if bare.startswith(head):
                word = ""
                for ch in bare[len(head):]:
                    if not ch.isalpha():
                        break
                    word += ch
                break
        else:
            continue
        s = ns(e["ts"])
        d = ns(e.get("dur", 0))
        out.append({"kind": LOOSE_KIND.get(word.lower(), "other"), "name": name, "dtype": None,
                    "bytes": None, "group_size": None, "process_group": None, "start_ns": s,
                    "end_ns": s + d, "dur_ns": d, "algbw_gbps": None, "busbw_gbps": None,
                    "kernels": 1, "cpu_ts": None})
    out.sort(key=lambda r: (r["start_ns"], r["end_ns"]))
    return out


def ref_all(events: list[dict]) -> tuple[list[dict], list[dict]]:
    """(the record_param_comms collectives, the loose kernels' ones)."""
    ref = ref_collectives(events)
    return ref, ref_loose(events, ref)


def ref_kinds(colls: list[dict]) -> dict[str, dict]:
    by: dict[str, list[dict]] = defaultdict(list)
    for c in colls:
        by[c["kind"]].append(c)
    out = {}
    for kind, cs in by.items():
        bw = [c["busbw_gbps"] for c in cs if c["busbw_gbps"] is not None]
        known = [c["bytes"] for c in cs if c["bytes"] is not None]
        out[kind] = {
            "kind": kind, "count": len(cs), "bytes": sum(known) if known else None,
            "dur_ns": sum(c["dur_ns"] for c in cs),
            "busbw_median_gbps": statistics.median(bw) if bw else None,
            "busbw_min_gbps": min(bw) if bw else None,
            "busbw_max_gbps": max(bw) if bw else None,
        }
    return out


def kinds_table(path: Path) -> str:
    """The per-kind table of one trace, from the reference alone."""
    kinds = ref_kinds(ref_collectives(read_events(path)))

    def f(v: Any, fmt: str) -> str:
        return "-" if v is None else format(v, fmt)

    lines = [f"{path.name}",
             f"  {'kind':<15}{'count':>6}{'total MB':>12}{'total ms':>11}"
             f"{'median GB/s':>13}{'min GB/s':>10}{'max GB/s':>10}   (busbw)"]
    for k in sorted(kinds.values(), key=lambda r: -r["dur_ns"]):
        lines.append(f"  {k['kind']:<15}{k['count']:>6}"
                     f"{f(None if k['bytes'] is None else k['bytes'] / 1e6, '.3f'):>12}"
                     f"{k['dur_ns'] / 1e6:>11.3f}{f(k['busbw_median_gbps'], '.3f'):>13}"
                     f"{f(k['busbw_min_gbps'], '.3f'):>10}{f(k['busbw_max_gbps'], '.3f'):>10}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Comparison
# --------------------------------------------------------------------------------------------


def _report(path: Path) -> dict:
    from tracetui.analysis.report import analyze
    from tracetui.trace import load

    return analyze(load(str(path)))


def _close_rel(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= REL * max(abs(a), abs(b)) + 1e-12


def _close_us(got_us: Any, ref_ns: int) -> bool:
    return got_us is not None and abs(Decimal(repr(float(got_us))) - Decimal(ref_ns) / 1000) \
        <= Decimal(str(TIME_TOL_US))


def compare(rep: dict, ref: list[dict], loose: list[dict] | None = None) -> list[str]:
    """Every disagreement between the report's collectives[] and the reference, one line each:
    its ``record_param_comms`` rows against ``ref``, its ``kernel`` rows against ``loose``."""
    if loose is not None:
        got_loose = [g for g in rep["collectives"] if g.get("source") == "kernel"]
        rest = {**rep, "collectives": [g for g in rep["collectives"]
                                       if g.get("source") != "kernel"]}
        return compare(rest, ref) + [f"(kernel rows) {b}" for b in
                                     compare({"collectives": got_loose}, loose)]
    got = rep["collectives"]
    bad = []
    if len(got) != len(ref):
        bad.append(f"count: tracetui {len(got)}, reference {len(ref)}")
        # which rows: matched by (name, first kernel start) so that the rest can be named
        mine = {(r["name"], r["start_ns"]) for r in ref}
        theirs = {(g.get("name"), round((g.get("start_us") or 0) * 1000)) for g in got}
        extra = [g for g in got
                 if (g.get("name"), round((g.get("start_us") or 0) * 1000)) not in mine]
        bad += [f"  tracetui only: {g.get('kind')} {g.get('name')!r} (source "
                f"{g.get('source')!r}) start {g.get('start_us')} µs" for g in extra]
        bad += [f"  reference only: {r['kind']} {r['name']!r} start {r['start_ns'] / 1000} µs"
                for r in ref if (r["name"], r["start_ns"]) not in theirs]
        return bad  # (a one-to-one comparison of shifted lists says nothing more)
    for i, (g, r) in enumerate(zip(got, ref)):
        who = f"#{i} {r['name']} (cpu ts {r['cpu_ts']}, first kernel {r['start_ns'] / 1000} µs)"
        for key in ("kind", "name", "dtype", "bytes", "group_size", "process_group", "kernels"):
            if g.get(key) != r[key]:
                bad.append(f"{who}: {key} tracetui {g.get(key)!r}, reference {r[key]!r}")
        for key, ref_key in (("start_us", "start_ns"), ("end_us", "end_ns"),
                             ("dur_us", "dur_ns")):
            if not _close_us(g.get(key), r[ref_key]):
                bad.append(f"{who}: {key} tracetui {g.get(key)!r}, reference "
                           f"{Decimal(r[ref_key]) / 1000} (diff "
                           f"{(g.get(key) or 0) - r[ref_key] / 1000:.6f} µs)")
        for key in ("algbw_gbps", "busbw_gbps"):
            if not _close_rel(g.get(key), r[key]):
                bad.append(f"{who}: {key} tracetui {g.get(key)!r}, reference {r[key]!r}")
    return bad


def compare_kinds(rep: dict, ref: list[dict]) -> list[str]:
    want = ref_kinds(ref)
    got = {k["kind"]: k for k in rep["collective_kinds"]}
    bad = []
    if set(got) != set(want):
        bad.append(f"kinds: tracetui {sorted(got)}, reference {sorted(want)}")
    for kind in sorted(set(got) & set(want)):
        g, w = got[kind], want[kind]
        if g.get("count") != w["count"]:
            bad.append(f"{kind}: count tracetui {g.get('count')!r}, reference {w['count']!r}")
        # no known bytes at all: the spec says "sum" only, so None or 0 both pass
        if g.get("bytes") != w["bytes"] and not (w["bytes"] is None and g.get("bytes") == 0):
            bad.append(f"{kind}: bytes tracetui {g.get('bytes')!r}, reference {w['bytes']!r}")
        # a sum of n durations: each to a nanosecond
        if g.get("dur_us") is None or abs(g["dur_us"] - w["dur_ns"] / 1000) > \
                TIME_TOL_US * w["count"] + 1e-9:
            bad.append(f"{kind}: dur_us tracetui {g.get('dur_us')!r}, reference "
                       f"{w['dur_ns'] / 1000}")
        for key in ("busbw_median_gbps", "busbw_min_gbps", "busbw_max_gbps"):
            if not _close_rel(g.get(key), w[key]):
                bad.append(f"{kind}: {key} tracetui {g.get(key)!r}, reference {w[key]!r}")
    return bad


# --------------------------------------------------------------------------------------------
# The real traces
# --------------------------------------------------------------------------------------------

real = pytest.mark.parametrize("path", [pytest.param(p, id=p.name.split(".")[0]) for p in REAL])


def _need(path: Path) -> None:
    if not path.is_file():
        pytest.skip(f"{path} not present")


@real
def test_reference_sanity(path):
    """The reference itself, on what the raw files plainly show (read off them by hand): each
    of the 15 (hta) / 6 (mi300) allreduces and 6 broadcasts launched exactly one NCCL kernel;
    the 6 "wait"s launched none."""
    _need(path)
    ev = read_events(path)
    raw = [e for e in ev if e.get("name") == "record_param_comms"]
    ref = ref_collectives(ev)
    names = [e["args"]["Collective name"] for e in raw]
    assert names.count("wait") == 6
    assert len(ref) == len(names) - 6
    assert {r["kind"] for r in ref} == {"all_reduce", "broadcast"}
    assert all(r["kernels"] == 1 and r["bytes"] and r["busbw_gbps"] for r in ref)
    print("\n" + kinds_table(path))


@real
def test_collectives_match_reference(path):
    _need(path)
    ref, loose = ref_all(read_events(path))
    rep = _report(path)
    assert "collectives" in rep, "the report has no collectives[]"
    bad = compare(rep, ref, loose)
    assert not bad, "\n".join(bad)


@real
def test_collective_kinds_match_reference(path):
    _need(path)
    ref, loose = ref_all(read_events(path))
    rep = _report(path)
    assert "collective_kinds" in rep, "the report has no collective_kinds[]"
    bad = compare_kinds(rep, ref + loose)
    assert not bad, "\n".join(bad)


def test_mi300_kernels_launched_before_the_trace():
    """The TraceLens MI300 trace: 5 ``ncclDevKernel_Generic`` kernels whose launches the trace
    does not hold (no runtime event has their correlation) are collectives of kind other."""
    _need(MI300)
    ref, loose = ref_all(read_events(MI300))
    assert len(ref) == 12 and len(loose) == 5 and {c["kind"] for c in loose} == {"other"}
    got = [c for c in _report(MI300)["collectives"] if c["source"] == "kernel"]
    assert [c["start_ns"] for c in got] == [c["start_ns"] for c in loose]


def test_record_param_comms_without_collective_name_real():
    """HTA's two sampled ranks: 8 record_param_comms each, none with "Collective name" (an
    older Kineto): none of record_param_comms' kind; their NCCL SendRecv kernels are the
    collectives (send_recv, size unknown)."""
    for path in HTA_2RANK:
        _need(path)
        ev = read_events(path)
        assert sum(e.get("name") == "record_param_comms" for e in ev) == 8
        ref, loose = ref_all(ev)
        assert ref == [] and len(loose) == 10
        rep = _report(path)
        assert not any(c["source"] == "record_param_comms" for c in rep["collectives"])
        assert not compare(rep, ref, loose)
        assert [k["kind"] for k in rep["collective_kinds"]] == ["send_recv"]


# --------------------------------------------------------------------------------------------
# Synthetic traces: each edge case on its own, values worked out by hand
# --------------------------------------------------------------------------------------------

CPU_PID, THREAD, GPU_PID, STREAM = 100, 1, 0, 20
NCCL_K = "ncclDevKernel_AllReduce_Sum_f32_RING_LL(ncclDevKernelArgsStorage<4096ul>)"


def _write(tmp_path: Path, events: list[dict]) -> Path:
    meta = [{"ph": "M", "name": "process_name", "pid": GPU_PID, "args": {"name": "GPU 0"}},
            {"ph": "M", "name": "process_labels", "pid": GPU_PID, "args": {"labels": "GPU 0"}},
            {"ph": "M", "name": "process_name", "pid": CPU_PID, "args": {"name": "python"}}]
    # an annotation well before everything: a start relative to the trace's first event
    # would not equal the file's ts
    first = [{"ph": "X", "cat": "user_annotation", "name": "ProfilerStep#1", "pid": CPU_PID,
              "tid": THREAD, "ts": 100, "dur": 100_000, "args": {}}]
    p = tmp_path / "collectives.json"
    p.write_text(json.dumps({"schemaVersion": 1, "traceEvents": meta + first + events}))
    return p


def _rpc(name: str | None, ts, dur, *, dtype: Any = "Float", inn: Any = 1000,
         out: Any = 1000, n: Any = 8, pg: str = "0", tid: int = THREAD) -> dict:
    args: dict[str, Any] = {"External id": 1, "In msg nelems": inn, "Out msg nelems": out,
                            "Group size": n, "Process Group Name": pg,
                            "Process Group Description": "default_pg"}
    if name is not None:
        args["Collective name"] = name
    if dtype is not None:
        args["dtype"] = dtype
    return {"ph": "X", "cat": "cpu_op", "name": "record_param_comms", "pid": CPU_PID,
            "tid": tid, "ts": ts, "dur": dur, "args": args}


def _launch(ts, corr, tid: int = THREAD, name: str = "cudaLaunchKernel") -> dict:
    return {"ph": "X", "cat": "cuda_runtime", "name": name, "pid": CPU_PID, "tid": tid,
            "ts": ts, "dur": 2, "args": {"correlation": corr, "External id": corr}}


def _kernel(ts, dur, corr, stream: int = STREAM, name: str = NCCL_K) -> dict:
    return {"ph": "X", "cat": "kernel", "name": name, "pid": GPU_PID, "tid": stream, "ts": ts,
            "dur": dur, "args": {"device": 0, "stream": stream, "correlation": corr,
                                 "External id": corr}}


def _one(name, ts, corr, kts, kdur, **kw) -> list[dict]:
    """One collective launching one kernel: the op [ts, ts+20], its launch at ts+5."""
    return [_rpc(name, ts, 20, **kw), _launch(ts + 5, corr), _kernel(kts, kdur, corr)]


def _both(tmp_path, events) -> tuple[list[dict], dict]:
    p = _write(tmp_path, events)
    ref, loose = ref_all(read_events(p))
    rep = _report(p)
    bad = compare(rep, ref, loose) + compare_kinds(rep, ref + loose)
    assert not bad, "\n".join(bad)
    return ref, rep


def _approx(v):
    return pytest.approx(v, rel=REL)


def test_coalesced_two_kernels(tmp_path):
    """allreduce_coalesced launching two kernels: one collective from the first kernel's start
    to the last one's end."""
    ev = [_rpc("allreduce_coalesced", 1000, 50, inn=1_000_000, out=1_000_000, n=4),
          _launch(1010, 1), _launch(1030, 2),
          _kernel(1100, 100, 1), _kernel(1250, 150, 2)]          # [1100, 1200), [1250, 1400)
    _, rep = _both(tmp_path, ev)
    (c,) = rep["collectives"]
    assert (c["kind"], c["name"], c["kernels"]) == ("all_reduce", "allreduce_coalesced", 2)
    assert (c["start_us"], c["end_us"], c["dur_us"]) == _approx((1100, 1400, 300))
    assert c["bytes"] == 4_000_000
    assert c["algbw_gbps"] == _approx(4e6 / 300e-6 / 1e9)             # 13.333 GB/s
    assert c["busbw_gbps"] == _approx(4e6 / 300e-6 / 1e9 * 2 * 3 / 4)  # 20.0 GB/s


def test_all_gather_bytes_from_output(tmp_path):
    """_allgather_base, Out = n × In: S is the output (8000 BFloat16 = 16000 B)."""
    ev = _one("_allgather_base", 1000, 1, 1100, 10, dtype="BFloat16", inn=1000, out=8000, n=8)
    _, rep = _both(tmp_path, ev)
    (c,) = rep["collectives"]
    assert (c["kind"], c["bytes"], c["group_size"]) == ("all_gather", 16000, 8)
    assert c["algbw_gbps"] == _approx(1.6)
    assert c["busbw_gbps"] == _approx(1.6 * 7 / 8)


def test_reduce_scatter_bytes_from_input(tmp_path):
    """_reduce_scatter_base, In = n × Out: S is the input."""
    ev = _one("_reduce_scatter_base", 1000, 1, 1100, 8, inn=4000, out=1000, n=4)
    _, rep = _both(tmp_path, ev)
    (c,) = rep["collectives"]
    assert (c["kind"], c["bytes"]) == ("reduce_scatter", 16000)
    assert c["busbw_gbps"] == _approx(2.0 * 3 / 4)


def test_all_to_all_uneven(tmp_path):
    """alltoall_base with In ≠ Out: S is "In msg nelems" (3000 Float), not the larger."""
    ev = _one("alltoall_base", 1000, 1, 1100, 6, inn=3000, out=5000, n=4)
    _, rep = _both(tmp_path, ev)
    (c,) = rep["collectives"]
    assert (c["kind"], c["bytes"]) == ("all_to_all", 12000)
    assert c["algbw_gbps"] == _approx(2.0)
    assert c["busbw_gbps"] == _approx(1.5)


def test_group_size_one(tmp_path):
    """An all_reduce over one rank: factor 2(n-1)/n = 0, busbw 0.0 (not a crash, not None)."""
    ev = _one("allreduce", 1000, 1, 1100, 10, inn=2500, out=2500, n=1)
    _, rep = _both(tmp_path, ev)
    (c,) = rep["collectives"]
    assert c["group_size"] == 1
    assert c["algbw_gbps"] == _approx(1.0)
    assert c["busbw_gbps"] == 0.0
    (k,) = rep["collective_kinds"]
    assert (k["busbw_median_gbps"], k["busbw_min_gbps"], k["busbw_max_gbps"]) == (0, 0, 0)


@pytest.mark.parametrize("dtype", ["Quux", None], ids=["unknown", "absent"])
def test_unknown_dtype(tmp_path, dtype):
    """dtype unknown (or absent): bytes, algbw and busbw None; the collective still listed."""
    ev = _one("allreduce", 1000, 1, 1100, 10, dtype=dtype)
    _, rep = _both(tmp_path, ev)
    (c,) = rep["collectives"]
    assert (c["kind"], c["bytes"], c["algbw_gbps"], c["busbw_gbps"]) == \
        ("all_reduce", None, None, None)
    assert c["dur_us"] == _approx(10)
    (k,) = rep["collective_kinds"]
    assert k["count"] == 1 and k["busbw_median_gbps"] is None


def test_wait_without_kernel_not_listed(tmp_path):
    """A "wait" record_param_comms whose only runtime call launches nothing: not a collective."""
    ev = _one("allreduce", 1000, 1, 1100, 10) + [
        _rpc("wait", 1200, 10, dtype="Byte", inn=0, out=0, n=1),
        {"ph": "X", "cat": "cuda_runtime", "name": "cudaStreamWaitEvent", "pid": CPU_PID,
         "tid": THREAD, "ts": 1202, "dur": 2, "args": {"correlation": 99}},
    ]
    _, rep = _both(tmp_path, ev)
    assert [c["name"] for c in rep["collectives"]] == ["allreduce"]


def test_no_collective_name_not_listed(tmp_path):
    """A record_param_comms without "Collective name" that did launch a kernel: no collective
    of its own; its NCCL kernel is one by its name (all_reduce, size unknown)."""
    ev = _one(None, 1000, 1, 1100, 10) + _one("broadcast", 2000, 2, 2100, 4, dtype="Long",
                                                inn=50, out=50, n=2)
    _, rep = _both(tmp_path, ev)
    k, c = rep["collectives"]
    assert (k["source"], k["kind"], k["bytes"]) == ("kernel", "all_reduce", None)
    assert (c["kind"], c["bytes"]) == ("broadcast", 400)
    assert c["busbw_gbps"] == _approx(c["algbw_gbps"]) and c["busbw_gbps"] == _approx(0.1)


def test_launch_outside_or_on_another_thread(tmp_path):
    """Only runtime calls inside the op, on its own thread, join: a launch after the op ends
    and one on another thread in its window do not (their NCCL kernels are collectives of
    their own, by their names)."""
    ev = [_rpc("allreduce", 1000, 20), _launch(1030, 1), _kernel(1100, 10, 1),     # after
          _launch(1005, 2, tid=THREAD + 1), _kernel(1200, 10, 2)]                  # other tid
    ref, rep = _both(tmp_path, ev)
    assert ref == []
    assert [(c["source"], c["kind"]) for c in rep["collectives"]] == [("kernel", "all_reduce")] * 2


def test_start_order_and_kinds(tmp_path):
    """Collectives listed by their kernels' start (the file lists them out of order), kinds
    aggregated: three all_reduces (median of three), one broadcast, a send and a recv."""
    ev = (_one("allreduce", 5000, 3, 5100, 40, inn=1000, out=1000, n=2)
          + _one("broadcast", 1000, 1, 1100, 2, dtype="Byte", inn=500, out=500, n=2)
          + _one("allreduce", 3000, 2, 3100, 4, inn=1000, out=1000, n=2)
          + _one("allreduce", 7000, 4, 7100, 8, inn=1000, out=1000, n=2)
          + _one("send", 9000, 5, 9100, 10, inn=250, out=0, n=2)
          + _one("recv", 9500, 6, 9600, 10, inn=0, out=250, n=2))
    _, rep = _both(tmp_path, ev)
    assert [c["kind"] for c in rep["collectives"]] == \
        ["broadcast", "all_reduce", "all_reduce", "all_reduce", "send", "recv"]
    assert [c["start_us"] for c in rep["collectives"]] == \
        _approx([1100, 3100, 5100, 7100, 9100, 9600])
    kinds = {k["kind"]: k for k in rep["collective_kinds"]}
    ar = kinds["all_reduce"]
    # busbw = 4000 B / dur × 2·1/2 = 1.0, 0.1, 0.5 GB/s for 4, 40, 8 µs
    assert (ar["count"], ar["bytes"], ar["dur_us"]) == (3, 12000, _approx(52))
    assert (ar["busbw_median_gbps"], ar["busbw_min_gbps"], ar["busbw_max_gbps"]) == \
        _approx((0.5, 0.1, 1.0))
    assert kinds["broadcast"]["bytes"] == 500
    assert kinds["send"]["bytes"] == 1000 and kinds["recv"]["bytes"] == 1000
    assert kinds["send"]["busbw_max_gbps"] == _approx(0.1)


def test_kernel_not_named_nccl(tmp_path):
    """The spec joins *the GPU kernels launched* inside the op, whatever their name: a custom
    all-reduce kernel (vLLM's, symmetric memory's) makes a collective like an NCCL one."""
    ev = [_rpc("allreduce", 1000, 20, inn=1000, out=1000, n=2), _launch(1005, 1),
          _kernel(1100, 4, 1, name="void vllm::cross_device_reduce_1stage<float, 2>(...)")]
    _, rep = _both(tmp_path, ev)
    (c,) = rep["collectives"]
    assert (c["kind"], c["bytes"], c["kernels"]) == ("all_reduce", 4000, 1)
    assert c["busbw_gbps"] == _approx(1.0)


def test_driver_launch(tmp_path):
    """A launch through the driver API (cat cuda_driver, cuLaunchKernel) joins as well."""
    launch = _launch(1005, 1, name="cuLaunchKernel")
    launch["cat"] = "cuda_driver"
    ev = [_rpc("broadcast", 1000, 20, dtype="Half", inn=500, out=500, n=4), launch,
          _kernel(1100, 1, 1, name="ncclDevKernel_Broadcast_RING_LL(ncclDevKernelArgsStorage)")]
    _, rep = _both(tmp_path, ev)
    (c,) = rep["collectives"]
    assert (c["kind"], c["bytes"], c["dur_us"]) == ("broadcast", 1000, _approx(1))
    assert c["busbw_gbps"] == _approx(1.0)


@pytest.mark.parametrize("raw,kind", sorted(KINDS.items()) + [("some_new_op", "other")])
def test_kind_names(tmp_path, raw, kind):
    ev = _one(raw, 1000, 1, 1100, 10, n=4)
    p = _write(tmp_path, ev)
    (c,) = _report(p)["collectives"]
    assert (c["kind"], c["name"]) == (kind, raw)


if __name__ == "__main__":  # the reference's per-kind tables, no tracetui involved
    for p in REAL + HTA_2RANK:
        if p.is_file():
            print(kinds_table(p))
        else:
            print(f"{p}: absent", file=sys.stderr)
