"""Collectives: what each moved, how long it took, its bus bandwidth, and across ranks, who
waited for whom.

One rank (:func:`collectives`): a collective is a ``record_param_comms`` CPU op carrying
``Collective name`` (Kineto writes ``In msg nelems``, ``Out msg nelems``, ``dtype``,
``Group size``, ``Process Group Name``/``Ranks``), joined to the communication kernels
launched (``correlation``) by runtime calls anywhere inside it on its thread; its time is from
its first kernel's start to its last kernel's end. Ops that launched none (``wait``, gloo's)
are no collectives here. NCCL/RCCL kernels launched outside any such op (traces older than
``record_param_comms``' args) are collectives too, their kind read from the kernel's name and
their size unknown.

Sizes and bandwidths by nccl-tests' definitions (``doc/PERFORMANCE.md``), in decimal GB/s:

- S, the size: all-to-all's input; otherwise the larger of input and output (all-gather's
  output, reduce-scatter's input, the one buffer of all-reduce and broadcast);
- algbw = S ÷ t; busbw = algbw × 2(n−1)/n for all-reduce, (n−1)/n for all-gather,
  reduce-scatter, all-to-all, gather and scatter, 1 for broadcast, reduce, send and recv
  (n: the group's size). TraceLens divides MiB by 1024 (GiB/s labelled GB/s); we do not.

Across ranks (:func:`match_ranks`, TensorBoard's Distributed view and TraceLens's NCCL
analyser): the i-th collective of a kind in a process group on every rank is one collective;
its data-transfer time is the shortest duration across the ranks, the rest of each rank's
duration is synchronisation (waiting for its peers); the start skew is the latest start less
the earliest; the rank that arrives last is the one the others wait for. Kernels that no
``record_param_comms`` owns give the kinds ``send_recv`` (``ncclKernel_SendRecv``) and the
others their kernel names say.

Pure: numpy only.
"""

from __future__ import annotations

import re
from statistics import median
from typing import Any, Sequence

import msgspec
import numpy as np

from ..trace import Trace
from .flops import element_bytes
from .rules import COMM

RPC = "record_param_comms"
_JSON = msgspec.json.Decoder()

#: Kineto's ``Collective name`` (ProcessGroupNCCL's op names) -> a kind
_KINDS = {
    "allreduce": "all_reduce", "allreduce_coalesced": "all_reduce", "all_reduce": "all_reduce",
    "allgather": "all_gather", "_allgather_base": "all_gather", "all_gather": "all_gather",
    "allgather_coalesced": "all_gather", "allgather_into_tensor_coalesced": "all_gather",
    "all_gather_into_tensor_coalesced": "all_gather", "all_gather_into_tensor": "all_gather",
    "reduce_scatter": "reduce_scatter", "_reduce_scatter_base": "reduce_scatter",
    "reduce_scatter_tensor_coalesced": "reduce_scatter", "reduce_scatter_tensor": "reduce_scatter",
    "alltoall": "all_to_all", "alltoall_base": "all_to_all", "all_to_all": "all_to_all",
    "all_to_allv": "all_to_all", "alltoallv": "all_to_all",
    "broadcast": "broadcast", "reduce": "reduce", "send": "send", "recv": "recv",
    "recvanysource": "recv", "gather": "gather", "scatter": "scatter", "barrier": "barrier",
}
#: busbw = algbw x factor(n)
_FACTOR = {
    "all_reduce": lambda n: 2 * (n - 1) / n,
    "all_gather": lambda n: (n - 1) / n, "reduce_scatter": lambda n: (n - 1) / n,
    "all_to_all": lambda n: (n - 1) / n, "gather": lambda n: (n - 1) / n,
    "scatter": lambda n: (n - 1) / n,
    "broadcast": lambda n: 1.0, "reduce": lambda n: 1.0, "send": lambda n: 1.0,
    "recv": lambda n: 1.0, "send_recv": lambda n: 1.0,
}
#: a kind from an NCCL/RCCL kernel's name (``ncclKernel_AllReduce_RING_LL_Sum_float``,
#: ``ncclDevKernel_SendRecv``): only where no ``record_param_comms`` says
_KERNEL_KIND = re.compile(r"^(?:void )?nccl(?:Dev)?Kernel_([A-Za-z]+)")
_FROM_KERNEL = {"allreduce": "all_reduce", "allgather": "all_gather",
                "reducescatter": "reduce_scatter", "broadcast": "broadcast", "reduce": "reduce",
                "sendrecv": "send_recv", "send": "send", "recv": "recv", "alltoall": "all_to_all"}


def decode_fields(raw: bytes) -> dict[str, Any]:
    """A row's fields as ``Trace.args_many(rows, fields)`` read them, decoded ({} where
    they cannot be)."""
    try:
        got = _JSON.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        return {}
    return got if isinstance(got, dict) else {}


def kind_of(name: str) -> str:
    return _KINDS.get(name.strip().lower(), "other")


#: a count beyond this is no message size or group (and its bytes would not fit a report's
#: integers): unknown
_MAX_COUNT = 2 ** 53


def _int(v: Any) -> int | None:
    """A whole, non-negative count of plausible size, or None."""
    if isinstance(v, bool):
        return None
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    elif isinstance(v, str) and v.strip().isdigit() and len(v.strip()) < 20:
        v = int(v.strip())
    return v if isinstance(v, int) and 0 <= v < _MAX_COUNT else None


def size_bytes(kind: str, args: dict) -> int | None:
    """S in nccl-tests' sense (see the module's docstring), or None."""
    e = element_bytes(args.get("dtype"))
    n_in, n_out = _int(args.get("In msg nelems")), _int(args.get("Out msg nelems"))
    if e is None or (n_in is None and n_out is None):
        return None
    if kind == "all_to_all":
        n = n_in if n_in is not None else n_out
    else:
        n = max(x for x in (n_in, n_out) if x is not None)
    return None if n is None else n * e


def group_size(args: dict) -> int | None:
    n = _int(args.get("Group size"))
    if n is None:
        ranks = args.get("Process Group Ranks")
        if isinstance(ranks, str) and ranks.startswith("["):
            n = ranks.count(",") + 1 if ranks.strip("[] ") else None
        elif isinstance(ranks, list):
            n = len(ranks) or None
    return n if n else None


def bandwidths(kind: str, nbytes: int | None, n: int | None,
               dur_us: float) -> tuple[float | None, float | None]:
    """(algbw, busbw) in decimal GB/s, None where unknown."""
    if nbytes is None or not dur_us > 0:
        return None, None
    alg = nbytes / (dur_us * 1e-6) / 1e9
    f = _FACTOR.get(kind)
    bus = alg * f(n) if f is not None and n else None
    return _sig(alg), (_sig(bus) if bus is not None else None)


def _sig(x: float) -> float:
    """``x`` to 9 significant digits (a small bandwidth keeps its digits; 3 decimals did not)."""
    return float(f"{x:.9g}")


def _parent_map(trace: Trace) -> np.ndarray:
    from .operators import _parents  # (the op tree's: 1 + the enclosing non-Python slice)
    return _parents(trace)[0]


#: the args a collective reads
COLL_FIELDS = ("Collective name", "In msg nelems", "Out msg nelems", "dtype", "Group size",
               "Process Group Name", "Process Group Ranks")


def _comm_launches(trace: Trace, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(communication kernels, the runtime calls that launched them)."""
    lr = trace.launch_of.rows.astype(np.int64)  # GPU work
    lv = trace.launch_of.values.astype(np.int64)  # the runtime call that launched it
    if len(lr):
        keep = classes[lr] == COMM
        lr, lv = lr[keep], lv[keep]
    return lr, lv


def _rpc_above(trace: Trace, lv: np.ndarray, up1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(launch index, record_param_comms row) for every such op above each launch, the
    innermost first."""
    rpc = trace.strings.find(RPC)  # (-1: no such name in the trace)
    if not len(lv) or rpc < 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    hits_at: list[np.ndarray] = []
    hits_op: list[np.ndarray] = []
    cur = up1[lv] - 1
    todo = np.arange(len(lv))
    while len(todo):
        ok = cur >= 0
        todo, cur = todo[ok], cur[ok]
        if not len(todo):
            break
        hit = trace.name[cur] == rpc
        if hit.any():
            hits_at.append(todo[hit])
            hits_op.append(cur[hit])
        cur = up1[cur] - 1
    if not hits_at:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(hits_at), np.concatenate(hits_op)


def collective_ops(trace: Trace, classes: np.ndarray, up1: np.ndarray) -> np.ndarray:
    """The ``record_param_comms`` rows above communication kernels' launches: whose args
    :func:`collectives` reads (to read them with others, the file once)."""
    return np.unique(_rpc_above(trace, _comm_launches(trace, classes)[1], up1)[1])


def collectives(trace: Trace, classes: np.ndarray, up1: np.ndarray | None = None,
                raw: dict[int, bytes] | None = None) -> list[dict[str, Any]]:
    """The collectives of ``trace`` in start order (see the module's docstring); ``up1``:
    the op tree's parents, if made (else made here); ``raw``: the ops' args as read by
    ``Trace.args_many(rows, fields)`` (:data:`COLL_FIELDS` among the fields), where
    already read (the others are read here)."""
    lr, lv = _comm_launches(trace, classes)
    joined: dict[int, list[int]] = {}  # record_param_comms row -> its kernels
    owner = np.full(len(lr), -1, np.int64)
    argsof: dict[int, Any] = {}
    if len(lr):
        if up1 is None:
            up1 = _parent_map(trace)
        at, ops = _rpc_above(trace, lv, up1)
        if len(at):
            uniq = np.unique(ops)
            have = raw or {}
            todo = [r for r in uniq.tolist() if r not in have]
            got = dict(trace.args_many(np.array(todo, np.int64), COLL_FIELDS)) if todo else {}
            for r in uniq.tolist():
                t = have[r] if r in have else got.get(r)
                a = decode_fields(t) if t is not None else None
                argsof[r] = a if isinstance(a.get("Collective name") if a else None, str) \
                    else None
            named = np.array([argsof[r] is not None for r in ops.tolist()], bool)
            at, ops = at[named], ops[named]
            # the innermost named one: the first found for each launch (walked upwards)
            first = np.unique(at, return_index=True)[1]
            owner[at[first]] = ops[first]
    for j, r in zip(np.flatnonzero(owner >= 0).tolist(), owner[owner >= 0].tolist()):
        joined.setdefault(r, []).append(int(lr[j]))
    groups: list[tuple[list[int], str, str, dict, str]] = []  # (kernels, kind, name, ...)
    for r, ks in joined.items():
        a = argsof[r]
        name = a["Collective name"]
        groups.append((ks, kind_of(name), name, a, "record_param_comms"))
    # NCCL/RCCL kernels that no record_param_comms owns (or whose launch the trace lacks):
    # kind from the name, size unknown
    comm_rows = np.flatnonzero(classes == COMM)
    loose = np.setdiff1d(comm_rows, lr[owner >= 0]) if len(lr) else comm_rows
    if len(loose):
        strings = trace.strings
        kinds: dict[int, str | None] = {}
        for nid in np.unique(trace.name[loose]).tolist():
            m = _KERNEL_KIND.match(strings[nid])
            kinds[nid] = _FROM_KERNEL.get(m.group(1).lower(), "other") if m else None
        for k, nid in zip(loose.tolist(), trace.name[loose].tolist()):
            kind = kinds[nid]
            if kind is not None:
                groups.append(([k], kind, strings[nid], {}, "kernel"))
    out = _records(trace, groups)
    out.sort(key=lambda c: (c["start_us"], c["end_us"]))
    return out


def _records(trace: Trace, groups: list[tuple[list[int], str, str, dict, str]]
             ) -> list[dict[str, Any]]:
    """One record per (kernel rows, kind, name, args, source): its time from its first
    kernel's start to its last one's end, its size and bandwidths (the kernels' times taken
    for all of them at once: a long trace has 100,000s of collectives)."""
    if not groups:
        return []
    n = len(groups)
    counts = np.fromiter((len(g[0]) for g in groups), np.int64, n)
    flat = np.fromiter((k for g in groups for k in g[0]), np.int64, int(counts.sum()))
    gid = np.repeat(np.arange(n), counts)
    st = trace.start[flat].astype(np.int64)
    en = st + trace.dur[flat]
    order = np.lexsort((st, gid))  # by group, then start: each group's first kernel first
    firsts = np.searchsorted(gid[order], np.arange(n))
    first_row = flat[order][firsts]
    start = st[order][firsts]
    end = np.zeros(n, np.int64)
    np.maximum.at(end, gid, en)
    lane_dev = np.array([ln.device for ln in trace.lanes] or [-1])
    device = lane_dev[trace.lane_index(first_row)]
    t0 = trace.t0_abs_ns
    out = []
    for (_ks, kind, name, args, source), s, e, row, dev, cnt in zip(
            groups, start.tolist(), end.tolist(), first_row.tolist(), device.tolist(),
            counts.tolist()):
        dur = (e - s) / 1000
        nbytes = size_bytes(kind, args) if args else None
        size = group_size(args) if args else None
        alg, bus = bandwidths(kind, nbytes, size, dur)
        pg = args.get("Process Group Name")
        dt = args.get("dtype")
        out.append({
            "kind": kind, "name": name, "source": source,
            "bytes": nbytes, "dtype": dt if isinstance(dt, str) else None,
            "group_size": size, "process_group": str(pg) if isinstance(pg, (str, int)) else None,
            "start_us": round((t0 + s) / 1000, 3), "end_us": round((t0 + e) / 1000, 3),
            # (exact: a float of µs near 1.7e15 holds quarters of a µs; skews from these)
            "start_ns": t0 + s, "end_ns": t0 + e,
            "dur_us": round(dur, 3), "algbw_gbps": alg, "busbw_gbps": bus,
            "device": dev, "kernels": cnt, "row": row,
        })
    return out


def collective_kinds(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per kind: count, bytes, time, and the median, worst and best bus bandwidth."""
    by: dict[str, list[dict[str, Any]]] = {}
    for c in rows:
        by.setdefault(c["kind"], []).append(c)
    out = []
    for kind, cs in by.items():
        bw = [c["busbw_gbps"] for c in cs if c["busbw_gbps"] is not None]
        sizes = [c["bytes"] for c in cs if c["bytes"] is not None]
        out.append({
            "kind": kind, "count": len(cs),
            "bytes": sum(sizes) if sizes else None,
            "dur_us": round(sum(c["dur_us"] for c in cs), 3),
            "busbw_median_gbps": _sig(median(bw)) if bw else None,
            "busbw_min_gbps": min(bw) if bw else None,
            "busbw_max_gbps": max(bw) if bw else None,
        })
    out.sort(key=lambda r: -r["dur_us"])
    return out


WAITS = 20  # collective_waits[]: the most skewed


def _start_ns(c: dict[str, Any]) -> int:
    """A collective's start in ns: exact where the report has it (``start_ns``), else from
    ``start_us`` (a hand-made or older report)."""
    v = c.get("start_ns")
    return v if isinstance(v, int) else round(c["start_us"] * 1000)


def _end_ns(c: dict[str, Any]) -> int:
    v = c.get("end_ns")
    return v if isinstance(v, int) else round(c["end_us"] * 1000)


def match_ranks(per_rank: Sequence[tuple[int, Sequence[dict[str, Any]]]]) -> dict[str, Any]:
    """Across ranks (see the module's docstring): ``per_rank`` is (rank, its collectives);
    gives per rank its transfer and synchronisation time and how often it arrived last, and
    the collectives with the largest start skew. Where ranks hold different numbers of a
    kind (a trace cut short), the i-th is matched across the ranks that have an i-th."""
    groups: dict[tuple[str, str | None], dict[int, list[dict[str, Any]]]] = {}
    for rank, cs in per_rank:
        for c in cs:
            groups.setdefault((c["kind"], c.get("process_group")), {}) \
                .setdefault(rank, []).append(c)
    ranks = [r for r, _ in per_rank]
    transfer = {r: 0 for r in ranks}  # ns
    sync = {r: 0 for r in ranks}
    late = {r: 0 for r in ranks}
    has = {r: False for r in ranks}
    waits: list[dict[str, Any]] = []
    uneven: list[str] = []
    for (kind, pg), by_rank in groups.items():
        if len(by_rank) < 2:
            continue  # one rank's: nothing to match it with
        for cs in by_rank.values():
            cs.sort(key=_start_ns)
        lens = {len(cs) for cs in by_rank.values()}
        if len(lens) > 1:
            uneven.append(f"{kind}" + (f" (group {pg})" if pg is not None else "")
                          + f": {min(lens)}-{max(lens)} per rank; the i-th of each rank that "
                          "has one matched")
        for i in range(max(lens)):
            got = sorted((r, cs[i]) for r, cs in by_rank.items() if i < len(cs))
            if len(got) < 2:
                continue
            durs = [_end_ns(c) - _start_ns(c) for _, c in got]
            starts = [_start_ns(c) for _, c in got]
            ends = [_end_ns(c) for _, c in got]
            t = min(durs)
            for (r, c), d in zip(got, durs):
                transfer[r] += t
                sync[r] += d - t
                has[r] = True
            last = max(starts)
            lr = next(r for (r, _), st in zip(got, starts) if st == last)
            late[lr] += 1
            waits.append({"kind": kind, "process_group": pg, "index": i, "late_rank": lr,
                          "start_skew_us": round((last - min(starts)) / 1000, 3),
                          "end_skew_us": round((max(ends) - min(ends)) / 1000, 3),
                          "transfer_us": round(t / 1000, 3), "bytes": got[0][1].get("bytes"),
                          "ranks": len(got)})
    waits.sort(key=lambda w: (-w["start_skew_us"], w["kind"], w["index"]))
    return {
        "per_rank": {r: {"comm_transfer_us": round(transfer[r] / 1000, 3) if has[r] else None,
                         "comm_sync_us": round(sync[r] / 1000, 3) if has[r] else None,
                         "late_count": late[r]} for r in ranks},
        "collective_waits": waits[:WAITS],
        "matched": len(waits),
        "uneven": uneven,
    }
