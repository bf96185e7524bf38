"""Which PyTorch operators cost what: PyTorch's ``key_averages()`` and TensorBoard's Operator
pane, from the trace.

An operator is a CPU op slice (``cpu_op``, the 2021 ``Operator``), ``ProfilerStep#N`` excluded.
Per occurrence:

- host total: its duration;
- host self: its duration minus its direct children's on its thread — every slice but a Python
  frame (``with_stack`` frames are no events of the profiler's tree: ops, annotations and
  runtime calls are);
- device self: the GPU work (kernels, memcpy, memset) launched by runtime calls whose innermost
  enclosing operator is this one (joined by ``correlation``);
- device total: the GPU work launched by runtime calls anywhere below it.

As ``key_averages`` does, an op whose parent has its name and no other child (``aten::add_``
calling ``aten::add_``) is one call with its parent: its self times go to the parent.

Grouped by name (:func:`operator_table`), or by name and input shapes and types
(``Input Dims``, ``Input type``: :func:`operator_shape_table`, which re-reads the ops' args
from the file, as the index keeps no args).

Pure: numpy only.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from ..trace import LANE_CPU, Trace
from .flops import has_formula, op_cost
from .perf import Costs, occurrence_costs, perf_fields, tensor_core_rows, with_formula, \
    with_shapes
from .peaks import Peaks
from .rules import COMM, COMP, MEM
from .steps import OP_CATS, RUNTIME_CATS, STEP_PATTERN, _names_matching, cat_ids, used_ids

_STEP = re.compile(STEP_PATTERN)


def _us(ns: float) -> float:
    return round(float(ns) / 1000.0, 3)


@dataclass
class OpTree:
    """Every operator occurrence with its figures (ns), and the tree they were taken from."""

    rows: np.ndarray  # operator slices, in row order
    host_self: np.ndarray
    device_self: np.ndarray
    device_total: np.ndarray
    up: np.ndarray  # per slice: 1 + the row of the enclosing non-Python slice on its thread
    #                 (0: none; zeros where nothing is written take no memory: GPU-only traces)
    classes: np.ndarray  # the classification the device times come from
    device_tc: np.ndarray | None = None  # per operator: of device total, on Tensor Cores
    _names: tuple[np.ndarray, np.ndarray] | None = None

    def by_name(self, trace: Trace) -> tuple[np.ndarray, np.ndarray]:
        """(name ids sorted, positions in ``rows`` in that order): an operator's occurrences
        are one slice of it (made once: a name's occurrences then take a search, not a
        pass over every operator)."""
        if self._names is None:
            ids = trace.name[self.rows]
            o = np.argsort(ids, kind="stable")
            self._names = (ids[o], o)
        return self._names


def _parents(trace: Trace) -> tuple[np.ndarray, list[np.ndarray], np.ndarray, np.ndarray]:
    """(1 + the parent of every slice among the non-Python slices of its CPU thread, 0 for
    none and for Python frames and GPU work; the rows of each folded depth, deepest last; per
    slice, its direct children's summed duration and their count).

    A depth's slices are in start order and so are their parents one depth up: the children
    of one parent are consecutive, and their sums are one ``reduceat`` per depth (exact
    integers; no pass over every slice of the trace)."""
    up1 = np.zeros(trace.slice_count, np.int64)  # (calloc: only the pages written are held)
    child = np.zeros(trace.slice_count, np.int64)
    nkids = np.zeros(trace.slice_count, np.int64)
    by_depth: list[list[np.ndarray]] = []
    dur = trace.dur
    for ln in trace.lanes:
        if ln.kind != LANE_CPU or ln.hi <= ln.lo:
            continue
        n = ln.depths(folded=True)
        prev = None
        for d in range(n):
            di = ln.index_at(d, folded=True)
            rows = di.rows_at(np.arange(len(di), dtype=np.int64))
            if d >= len(by_depth):
                by_depth.append([])
            by_depth[d].append(rows)
            if prev is not None and len(rows):
                k = np.searchsorted(prev.starts, di.starts, side="right") - 1
                first = int(np.searchsorted(k, 0))  # (k is sorted: -1s first)
                k, kids = k[first:], rows[first:]
                if len(k):
                    up = prev.rows_at(k)
                    up1[kids] = up + 1
                    cut = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
                    heads = up[cut]
                    child[heads] = np.add.reduceat(dur[kids], cut)
                    nkids[heads] = np.diff(np.r_[cut, len(k)])
            prev = di
    return up1, [np.concatenate(p) for p in by_depth], child, nkids


def launched_gpu(trace: Trace, classes: np.ndarray,
                 only: np.ndarray | None = None) -> np.ndarray:
    """Per slice, the GPU time (ns) of the work it launched itself: runtime calls' kernels,
    memcpy and memset, joined by ``correlation``; 0 for every other slice. ``only``: of the
    GPU work, just the slices it marks."""
    lr = trace.launch_of.rows.astype(np.int64)
    lv = trace.launch_of.values.astype(np.int64)
    if len(lr):
        c = classes[lr]
        work = (c == COMP) | (c == COMM) | (c == MEM)
        if only is not None:
            work &= only[lr]
        lr, lv = lr[work], lv[work]
    rt_cat = cat_ids(trace, RUNTIME_CATS)
    if len(lv):
        keep = rt_cat[trace.cat[lv]]
        lr, lv = lr[keep], lv[keep]
    gpu = np.zeros(trace.slice_count, np.int64)
    if len(lv):
        np.add.at(gpu, lv, trace.dur[lr].astype(np.int64))
    return gpu


def op_tree(trace: Trace, classes: np.ndarray) -> OpTree:
    """The operators of ``trace`` with their host and device times."""
    up1, depths, child, nkids = _parents(trace)

    def parent(rows: np.ndarray) -> np.ndarray:
        return up1[rows] - 1

    op_cat = cat_ids(trace, OP_CATS)
    is_op = op_cat[trace.cat]
    cand = np.flatnonzero(is_op)
    if len(cand):
        step = _names_matching(trace, cand, _STEP)
        is_op[cand[step]] = False
    lane_cpu = np.array([ln.kind == LANE_CPU for ln in trace.lanes] or [False])
    rows = np.flatnonzero(is_op)
    rows = rows[lane_cpu[trace.lane_index(rows)]] if len(rows) else rows
    is_op[:] = False
    is_op[rows] = True
    gpu = launched_gpu(trace, classes)
    # device self: each launching call's GPU time to its innermost enclosing operator
    dself = np.zeros(trace.slice_count, np.int64)
    callers = np.flatnonzero(gpu)
    cur = parent(callers)
    amount = gpu[callers]
    while len(cur):
        done = cur < 0
        hit = ~done & is_op[np.maximum(cur, 0)]
        if hit.any():
            np.add.at(dself, cur[hit], amount[hit])
        go = ~done & ~hit
        cur, amount = parent(cur[go]), amount[go]
    # device total: what is launched below, summed up the tree, deepest first (in place:
    # only the slices with some, a few among the many)
    def up_the_tree(total: np.ndarray) -> np.ndarray:
        for d in range(len(depths) - 1, 0, -1):
            r = depths[d]
            r = r[total[r] != 0]
            p = parent(r)
            ok = p >= 0
            np.add.at(total, p[ok], total[r[ok]])
        return total

    total = up_the_tree(gpu)
    tc = tensor_core_rows(trace, classes)
    tc_total = up_the_tree(launched_gpu(trace, classes, tc)) if tc.any() else None
    hself = trace.dur[rows] - child[rows]
    dself_rows = dself[rows]
    # key_averages (EventList._remove_dup_nodes) folds an op into its parent when the
    # parent has the same name and no other child (aten::add_ calling aten::add_): one
    # call, its self time and launches the parent's
    p = parent(rows)
    dup = (p >= 0)
    dup[dup] = (trace.name[p[dup]] == trace.name[rows[dup]]) & (nkids[p[dup]] == 1) \
        & is_op[p[dup]]
    if dup.any():
        folded = rows[dup]
        top = parent(folded)
        while True:  # a chain of them: to the outermost
            up = parent(top)
            more = (up >= 0) & np.isin(top, folded)
            if not more.any():
                break
            top = np.where(more, up, top)
        at = np.searchsorted(rows, top)  # (rows are sorted; a top is an operator)
        np.add.at(hself, at, hself[dup])
        np.add.at(dself_rows, at, dself_rows[dup])
        rows, hself, dself_rows = rows[~dup], hself[~dup], dself_rows[~dup]
    return OpTree(rows=rows, host_self=hself, device_self=dself_rows,
                  device_total=total[rows], up=up1, classes=classes,
                  device_tc=tc_total[rows] if tc_total is not None else None)


def _grouped(trace: Trace, tree: OpTree, keys: np.ndarray, n_keys: int) -> dict[str, np.ndarray]:
    r = tree.rows
    w = {
        "calls": np.bincount(keys, minlength=n_keys),
        "host_total": np.bincount(keys, weights=trace.dur[r].astype(np.float64), minlength=n_keys),
        "host_self": np.bincount(keys, weights=tree.host_self.astype(np.float64), minlength=n_keys),
        "device_self": np.bincount(keys, weights=tree.device_self.astype(np.float64),
                                   minlength=n_keys),
        "device_total": np.bincount(keys, weights=tree.device_total.astype(np.float64),
                                    minlength=n_keys),
    }
    return w


def _row(name: str, g: dict[str, np.ndarray], k: int) -> dict[str, Any]:
    calls = int(g["calls"][k])
    out: dict[str, Any] = {"name": name, "calls": calls}
    for f in ("host_self", "host_total", "device_self", "device_total"):
        out[f"{f}_us"] = _us(g[f][k])
    for f in ("host_self", "host_total", "device_self", "device_total"):
        out[f"{f}_mean_us"] = _us(g[f][k] / calls) if calls else 0.0
    return out


def costs(trace: Trace, tree: OpTree, raw: dict[int, bytes] | None = None
          ) -> Costs:
    """FLOPs and bytes of every operator occurrence that has a formula (their args re-read,
    or taken from ``raw``: see :func:`tracetui.analysis.perf.occurrence_costs`)."""
    out = Costs(len(tree.rows))
    rows = tree.rows if raw is not None else with_shapes(trace, with_formula(trace, tree.rows))
    got = list(occurrence_costs(trace, rows, raw))
    if got:
        pos = np.searchsorted(tree.rows, np.fromiter((g[0] for g in got), np.int64, len(got)))
        for p, (_r, cost) in zip(pos.tolist(), got):
            out.put(p, cost)
    return out


def _perf(tree: OpTree, c: Costs, keys: np.ndarray, n_keys: int,
          peaks: Peaks | None) -> list[dict[str, Any]]:
    """Per key, the perf figures (:func:`tracetui.analysis.perf.perf_fields`)."""
    known = c.flops >= 0
    kk = keys[known]
    # (exact sums of Python ints per key, not floats: few occurrences have FLOPs)
    exact: dict[int, int] = {}
    nbytes: dict[int, int | None] = {}
    for k, f, b in zip(kk.tolist(), c.flops[known].tolist(), c.bytes[known].tolist()):
        exact[k] = exact.get(k, 0) + f
        prev = nbytes.get(k, 0)
        nbytes[k] = None if prev is None or b < 0 else prev + b
    calls = np.bincount(kk, minlength=n_keys)
    dev = np.bincount(kk, weights=tree.device_total[known].astype(np.float64), minlength=n_keys)
    all_dev = np.bincount(keys, weights=tree.device_total.astype(np.float64), minlength=n_keys)
    tc = np.bincount(keys, weights=tree.device_tc.astype(np.float64), minlength=n_keys) \
        if tree.device_tc is not None else np.zeros(n_keys)
    dtypes: dict[int, set[str]] = {}
    for pos, t in c.dtype.items():
        dtypes.setdefault(int(keys[pos]), set()).add(t)
    return [perf_fields(exact.get(k), nbytes.get(k), int(calls[k]), float(dev[k]),
                        float(tc[k]), float(all_dev[k]), dtypes.get(k, ()), peaks)
            for k in range(n_keys)]


def operator_table(trace: Trace, tree: OpTree, peaks: Peaks | None = None,
                   cost: Costs | None = None) -> list[dict[str, Any]]:
    """Operators grouped by name, by device total then host total (largest first), with
    their FLOPs, bytes and how well their device time is spent (``peaks``: the device's,
    for the roofline percent; ``cost``: the occurrences' costs, if already read)."""
    if not len(tree.rows):
        return []
    names = trace.name[tree.rows]
    uniq = used_ids(names, len(trace.strings))
    remap = np.zeros(max(len(trace.strings), 1), np.int64)
    remap[uniq] = np.arange(len(uniq))
    keys = remap[names]
    g = _grouped(trace, tree, keys, len(uniq))
    perf = _perf(tree, cost if cost is not None else costs(trace, tree), keys, len(uniq), peaks)
    rows = [{**_row(trace.strings[int(u)], g, k), **perf[k]} for k, u in enumerate(uniq.tolist())]
    rows.sort(key=lambda r: (-r["device_total_us"], -r["host_total_us"], r["name"]))
    return rows


#: the device types whose bytes key_averages counts as CPU memory, and as device memory
_CPU_MEMORY = (0, 2, 5)  # CPU, MKLDNN, IDEEP
_DEVICE_MEMORY = (1, 6, 12, 20)  # CUDA, HIP, XPU, PrivateUse1


def operator_memory(trace: Trace, tree: OpTree,
                    window: tuple[int, int] | None = None) -> list[dict[str, Any]]:
    """Memory by operator name, as ``key_averages()`` of a ``profile_memory=True`` run counts
    it: an op's total is the net bytes of every memory event from its start to its end (both
    included, on any thread: PyTorch's ``MemRecordsAcc.in_interval``); its self, that total
    less its direct children's totals (the slices inside it on its thread, Python frames
    not counted, as for host self time), an op folded into a parent of its name giving its
    self to it; CPU devices and GPU devices apart; ``allocs``: the allocations in its self
    part. Names none of whose calls saw a memory event are left out; by self then total CPU
    bytes, then device bytes (largest first). ``window``: only the calls that start in
    [t0, t1) (a marked range)."""
    m = trace.memory
    if not len(m) or not len(tree.rows):
        return []
    cum = [np.concatenate([[0], np.cumsum(x)]) for x in (
        np.where(np.isin(m.device_type, _CPU_MEMORY), m.bytes, 0),
        np.where(np.isin(m.device_type, _DEVICE_MEMORY), m.bytes, 0),
        (m.bytes > 0).astype(np.int64), np.ones(len(m), np.int64))]
    kids = np.flatnonzero(tree.up)  # every slice with a parent on its thread
    par = tree.up[kids].astype(np.int64) - 1
    hit = np.zeros(trace.slice_count, bool)  # (a mask, not union1d: 0.9 s at 1 M ops)
    hit[tree.rows] = True
    hit[kids] = True
    hit[par] = True
    rows = np.flatnonzero(hit)
    del hit
    s = trace.start[rows]
    lo = np.searchsorted(m.ts, s, side="left")
    hi = np.searchsorted(m.ts, s + trace.dur[rows], side="right")
    total = np.stack([c[hi] - c[lo] for c in cum])  # cpu, device, allocs, events
    kpos, ppos = np.searchsorted(rows, kids), np.searchsorted(rows, par)
    own = total.copy()
    for j in range(len(cum)):  # (bincount: exact for sums under 2^53 bytes)
        own[j] -= np.bincount(ppos, weights=total[j][kpos], minlength=len(rows)).astype(
            np.int64)
    # key_averages' fold: an op whose parent has its name and no other child is one call
    # with it (its self to the outermost of such a chain)
    op_cat = cat_ids(trace, OP_CATS)
    is_op = op_cat[trace.cat[rows]]
    if is_op.any():
        cand = np.flatnonzero(is_op)
        is_op[cand[_names_matching(trace, rows[cand], _STEP)]] = False
    parent_pos = np.full(len(rows), -1, np.int64)
    parent_pos[kpos] = ppos
    nkids = np.bincount(ppos, minlength=len(rows))
    p = parent_pos
    dup = (p >= 0) & is_op
    pp = np.maximum(p, 0)
    dup &= (trace.name[rows[pp]] == trace.name[rows]) & (nkids[pp] == 1) & is_op[pp]
    if dup.any():
        folded = np.flatnonzero(dup)
        top = p[folded]
        while True:
            more = dup[top]
            if not more.any():
                break
            top = np.where(more, p[top], top)
        for j in range(len(cum)):
            np.add.at(own[j], top, own[j][folded])
    ops = tree.rows
    if window is not None:
        st = trace.start[ops]
        ops = ops[(st >= window[0]) & (st < window[1])]
    at = np.searchsorted(rows, ops)
    names = trace.name[ops]
    uniq, inv = np.unique(names, return_inverse=True)
    sums = [np.bincount(inv, weights=x[at].astype(np.float64), minlength=len(uniq))
            for x in (own[0], total[0], own[1], total[1], own[2], total[3])]
    calls = np.bincount(inv, minlength=len(uniq))
    out = []
    for k, u in enumerate(uniq.tolist()):
        v = [int(round(x[k])) for x in sums]
        if not v[5]:
            continue  # no memory event in any call
        out.append({"name": trace.strings[u], "calls": int(calls[k]),
                    "self_cpu_bytes": v[0], "cpu_bytes": v[1], "self_device_bytes": v[2],
                    "device_bytes": v[3], "allocs": v[4]})
    out.sort(key=lambda r: (-abs(r["self_cpu_bytes"]), -abs(r["cpu_bytes"]),
                            -abs(r["self_device_bytes"]), -abs(r["device_bytes"]), r["name"]))
    return out


def operator_of(trace: Trace, tree: OpTree, row: int) -> int:
    """The operator occurrence ``row`` belongs to (-1: none): itself if it is one, else the
    innermost one around it on its thread; for GPU work, the one around the runtime call
    that launched it."""
    launcher = trace.launch_of[row]
    at = launcher if launcher >= 0 else row
    while at >= 0:
        k = int(np.searchsorted(tree.rows, at))
        if k < len(tree.rows) and int(tree.rows[k]) == at:
            return at
        at = int(tree.up[at]) - 1
    return -1


def occurrences(trace: Trace, tree: OpTree, name: str) -> np.ndarray:
    """The rows of the occurrences of operator ``name``, slowest (host total) first."""
    return tree.rows[occurrence_positions(trace, tree, name)]


def occurrence_positions(trace: Trace, tree: OpTree, name: str) -> np.ndarray:
    """:func:`occurrences` as positions in ``tree.rows`` (and so in its figures)."""
    sid = trace.strings.find(name)
    if sid < 0 or not len(tree.rows):
        return np.zeros(0, np.int64)
    ids, pos = tree.by_name(trace)
    p = pos[np.searchsorted(ids, sid, "left"):np.searchsorted(ids, sid, "right")]
    return p[np.argsort(-trace.dur[tree.rows[p]], kind="stable")]


def _shape_text(v: Any) -> str:
    """A value of ``Input Dims``/``Input type`` as compact JSON text (the grouping key)."""
    try:
        return json.dumps(v, separators=(",", ":"), ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(v)


def input_shapes(trace: Trace, rows: np.ndarray,
                 with_args: bool = False) -> Iterator[Any]:
    """(row, input dims, input types[, args]) of each of ``rows``, re-read from the file in
    file order (each piece of it decoded once)."""
    for r, args in trace.args_many(rows):
        if not isinstance(args, dict):
            args = {}
        dims = args.get("Input Dims", args.get("Input dims"))
        got = (r, _shape_text(dims if dims is not None else []),
               _shape_text(args.get("Input type", [])))
        yield got + (args,) if with_args else got


def operator_shape_table(trace: Trace, tree: OpTree,
                         peaks: Peaks | None = None) -> list[dict[str, Any]]:
    """Operators grouped by name, input dims and input types (``key_averages(
    group_by_input_shape=True)``), by device total then host total, with their FLOPs and
    the rest as :func:`operator_table`'s rows."""
    if not len(tree.rows):
        return []
    pos = {int(r): i for i, r in enumerate(tree.rows.tolist())}
    keys = np.zeros(len(tree.rows), np.int64)
    ids: dict[tuple[int, str, str], int] = {}
    c = Costs(len(tree.rows))
    strings = trace.strings
    for r, dims, types, args in input_shapes(trace, tree.rows, with_args=True):
        p = pos[r]
        keys[p] = ids.setdefault((int(trace.name[r]), dims, types), len(ids))
        name = strings[int(trace.name[r])]
        if has_formula(name):
            c.put(p, op_cost(name, args))
    g = _grouped(trace, tree, keys, len(ids))
    perf = _perf(tree, c, keys, len(ids), peaks)
    out = []
    for (name, dims, types), k in ids.items():
        row = {**_row(trace.strings[name], g, k), **perf[k]}
        row["input_dims"] = dims
        row["input_types"] = types
        out.append(row)
    out.sort(key=lambda r: (-r["device_total_us"], -r["host_total_us"], r["name"],
                            r["input_dims"]))
    return out
