"""Which ``nn.Module`` costs what: TensorBoard's Module pane, from ``with_modules`` (or
``with_stack``) traces, whose Python frames include one ``nn.Module: Name_N`` frame per call
of a module's ``forward`` (``N`` numbers the instances of a type).

Per module frame, on its thread:

- host total: its duration; host self: minus its children — the outermost slices inside it
  that are ops, annotations, runtime calls or other module frames (plain Python frames in
  between are looked through, as the frames are no events of the profiler's tree);
- device total: the GPU work launched by runtime calls inside it; device self: that launched
  by runtime calls whose innermost enclosing module is this one.

Grouped two ways: per instance path (``Net_0 › Sequential_0 › Linear_1``: the tree, every
call of that path summed) and per module type (``Linear``). Without module frames, both are
empty and the report says so.

Pure: numpy only.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from ..trace import LANE_CPU, Trace
from ..trace.depth import compute_depth
from .operators import OpTree

MODULE_PREFIX = "nn.Module: "
_INSTANCE = re.compile(r"_\d+$")
SEP = " › "


def _us(ns: float) -> float:
    return round(float(ns) / 1000.0, 3)


def module_type(name: str) -> str:
    """``Linear_3`` (or the frame's whole name, ``nn.Module: Linear_3``) -> ``Linear``."""
    return _INSTANCE.sub("", name.removeprefix(MODULE_PREFIX))


class ModuleFrames:
    """The module frames of a trace with their figures (ns) and instance paths."""

    def __init__(self, trace: Trace, tree: OpTree) -> None:
        strings = trace.strings
        py = trace.python_cats
        ids = [i for i in range(len(strings)) if strings[i].startswith(MODULE_PREFIX)] \
            if py else []
        is_mod_name = np.zeros(max(len(strings), 1), bool)
        is_mod_name[ids] = True
        is_py = np.zeros(max(len(strings), 1), bool)
        is_py[list(py)] = True
        rows_all: list[np.ndarray] = []
        self_all: list[np.ndarray] = []
        dself_all: list[np.ndarray] = []
        dtot_all: list[np.ndarray] = []
        parent_all: list[np.ndarray] = []
        dur = trace.dur.astype(np.int64)
        # GPU time each slice launched directly (its own runtime calls): from the op tree's
        # device totals, a runtime call's total is its own launches
        gpu = np.zeros(trace.slice_count, np.int64)
        if ids:
            launched = _launched(trace, tree)
            gpu = launched
        for ln in trace.lanes if ids else ():
            if ln.kind != LANE_CPU or ln.hi <= ln.lo:
                continue
            lo, hi = ln.lo, ln.hi
            names, cats = trace.name[lo:hi], trace.cat[lo:hi]
            mod = is_mod_name[names] & is_py[cats]
            if not mod.any():
                continue
            keep = lo + np.flatnonzero(mod | ~is_py[cats])
            keep = keep[np.lexsort((-dur[keep], trace.start[keep]))]
            dep = compute_depth(trace.start[keep], dur[keep]).astype(np.int64)
            par = _parents_by_depth(trace.start[keep], dep)  # positions in keep, -1: none
            n = len(keep)
            child = np.zeros(n, np.int64)
            has = par >= 0
            np.add.at(child, par[has], dur[keep][has])
            total = gpu[keep].copy()
            for d in range(int(dep.max(initial=0)), 0, -1):
                at = np.flatnonzero((dep == d) & has)
                np.add.at(total, par[at], total[at])
            is_m = is_mod_name[trace.name[keep]] & is_py[trace.cat[keep]]
            # each slice's launches to its innermost enclosing module (itself if one)
            dself = np.zeros(n, np.int64)
            src = np.flatnonzero(gpu[keep] > 0)
            cur, amount = src.copy(), gpu[keep][src]
            while len(cur):
                hit = is_m[cur]
                np.add.at(dself, cur[hit], amount[hit])
                go = ~hit & (par[cur] >= 0)
                cur, amount = par[cur[go]], amount[go]
            # module parent: the innermost enclosing module frame
            m = np.flatnonzero(is_m)
            mpar = np.full(n, -1, np.int64)
            cur, who = par[m], m
            while len(cur):  # up the tree, all at once, until a module (or the top)
                done = (cur < 0) | is_m[np.maximum(cur, 0)]
                mpar[who[done]] = np.where(cur[done] >= 0, cur[done], -1)
                cur, who = par[cur[~done]], who[~done]
            remap = np.full(n, -1, np.int64)
            base = sum(len(r) for r in rows_all)
            remap[m] = base + np.arange(len(m))
            rows_all.append(keep[m])
            self_all.append(dur[keep][m] - child[m])
            dself_all.append(dself[m])
            dtot_all.append(total[m])
            parent_all.append(np.where(mpar[m] >= 0, remap[np.maximum(mpar[m], 0)], -1))
        cat = (lambda a: np.concatenate(a) if a else np.zeros(0, np.int64))
        self.rows = cat(rows_all)
        self.host_self = cat(self_all)
        self.device_self = cat(dself_all)
        self.device_total = cat(dtot_all)
        self.parent = cat(parent_all)  # index into these arrays, -1: a top module
        names = [trace.name_of(int(r))[len(MODULE_PREFIX):] for r in self.rows.tolist()]
        self.names = names
        paths: list[str] = []
        for i, nm in enumerate(names):
            p = int(self.parent[i])  # parents come before their children (start order)
            paths.append(nm if p < 0 else paths[p] + SEP + nm)
        self.paths = paths

    def __len__(self) -> int:
        return len(self.rows)


def _launched(trace: Trace, tree: OpTree) -> np.ndarray:
    """GPU time launched by each slice itself (runtime calls), ns."""
    from .operators import launched_gpu

    return launched_gpu(trace, tree.classes)


def _parents_by_depth(starts: np.ndarray, dep: np.ndarray) -> np.ndarray:
    """The parent (a position, -1: none) of each slice of a lane given in start order with
    its depth: the last slice one level up that starts at or before it."""
    n = len(starts)
    par = np.full(n, -1, np.int64)
    if not n:
        return par
    order = np.lexsort((np.arange(n), dep))  # by depth, then start order
    bounds = np.searchsorted(dep[order], np.arange(int(dep.max()) + 2))
    for d in range(1, int(dep.max()) + 1):
        up = order[bounds[d - 1]:bounds[d]]
        here = order[bounds[d]:bounds[d + 1]]
        if not len(up) or not len(here):
            continue
        k = np.searchsorted(starts[up], starts[here], side="right") - 1
        ok = k >= 0
        par[here[ok]] = up[k[ok]]
    return par


def _figures(trace: Trace, mf: ModuleFrames, keys: np.ndarray, n: int) -> dict[str, np.ndarray]:
    f = np.float64
    return {
        "occurrences": np.bincount(keys, minlength=n),
        "host_total": np.bincount(keys, weights=trace.dur[mf.rows].astype(f), minlength=n),
        "host_self": np.bincount(keys, weights=mf.host_self.astype(f), minlength=n),
        "device_self": np.bincount(keys, weights=mf.device_self.astype(f), minlength=n),
        "device_total": np.bincount(keys, weights=mf.device_total.astype(f), minlength=n),
    }


def _row(g: dict[str, np.ndarray], k: int) -> dict[str, Any]:
    out: dict[str, Any] = {"occurrences": int(g["occurrences"][k])}
    for f in ("host_self", "host_total", "device_self", "device_total"):
        out[f"{f}_us"] = _us(g[f][k])
    return out


def module_paths(trace: Trace, mf: ModuleFrames) -> list[dict[str, Any]]:
    """Per instance path, in tree order (a parent before its children, siblings by first
    call): ``name`` (the path), ``module`` (its last part), ``type``, ``depth``."""
    if not len(mf):
        return []
    uniq: dict[str, int] = {}
    keys = np.array([uniq.setdefault(p, len(uniq)) for p in mf.paths], np.int64)
    g = _figures(trace, mf, keys, len(uniq))
    out = []
    for path, k in uniq.items():  # first-seen order: start order, parents first
        last = path.rsplit(SEP, 1)[-1]
        out.append({"name": path, "module": last, "type": _INSTANCE.sub("", last),
                    "depth": path.count(SEP), **_row(g, k)})
    return _tree_order(out)


def _tree_order(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Parents before their children, each parent's children in first-call order."""
    kids: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        parent = r["name"].rsplit(SEP, 1)[0] if SEP in r["name"] else ""
        kids.setdefault(parent, []).append(r)
    out: list[dict[str, Any]] = []
    stack = list(reversed(kids.get("", [])))
    while stack:
        r = stack.pop()
        out.append(r)
        stack.extend(reversed(kids.get(r["name"], [])))
    return out


def module_types(trace: Trace, mf: ModuleFrames) -> list[dict[str, Any]]:
    """Per module type (``Linear``), by host total."""
    if not len(mf):
        return []
    uniq: dict[str, int] = {}
    keys = np.array([uniq.setdefault(_INSTANCE.sub("", n), len(uniq)) for n in mf.names],
                    np.int64)
    g = _figures(trace, mf, keys, len(uniq))
    out = [{"name": t, **_row(g, k)} for t, k in uniq.items()]
    out.sort(key=lambda r: (-r["host_total_us"], r["name"]))
    return out
