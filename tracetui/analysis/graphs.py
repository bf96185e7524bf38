"""CUDA graphs: one launch, many kernels.

A ``cudaGraphLaunch`` (``cuGraphLaunch``, ``hipGraphLaunch``) runtime call launches every kernel
of the graph, and CUPTI gives each of them the launch's ``correlation`` (DeepSeek's decode:
~3,437 kernels share one). So the GPU work of one device that shares a correlation id is one
graph replay: its kernels, in start order. A group whose launch is not in the trace (the
profile window opened while the graph ran) is still a graph when it holds more than one
kernel; its launch is then unknown. Correlation 0 (no id) never groups.

Pure: no textual or rich.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..trace import Trace
from .attribution import lane_devices

GRAPH_LAUNCH = re.compile(r"(?i)graph_?launch")


@dataclass(frozen=True)
class Graph:
    correlation: int
    device: int
    launch: int  # row of the runtime call, -1 when it is not in the trace
    kernels: np.ndarray  # GPU rows, by start

    def record(self, trace: Trace) -> dict[str, Any]:
        return _records(trace, [self])[0]


class Graphs:
    """Every graph replay of a trace, and which graph (and which kernel of it) a row is."""

    def __init__(self, trace: Trace) -> None:
        self.trace = trace
        corr = trace.correlation
        kf = trace.kernels.slice
        rows, values = corr.rows, corr.values
        gpu = np.isin(rows, kf) if len(kf) and len(rows) else np.zeros(len(rows), bool)
        rows, values = rows[gpu & (values > 0)], values[gpu & (values > 0)]
        self.graphs: list[Graph] = []
        self._rows = self._row_graph = self._pos = np.zeros(0, np.int64)
        self._launch_rows = np.zeros((0, 2), np.int64)
        if not len(rows):
            return
        dev = lane_devices(trace)[trace.lane_index(rows)]
        rows, values, dev = rows[dev >= 0], values[dev >= 0], dev[dev >= 0]
        if not len(rows):  # (two unknown GPUs are not one device)
            return
        o = np.lexsort((trace.start[rows], values, dev))
        rows, values, dev = rows[o], values[o], dev[o]
        cut = np.flatnonzero((np.diff(values) != 0) | (np.diff(dev) != 0)) + 1
        lo = np.r_[0, cut].astype(np.int64)
        hi = np.r_[cut, len(rows)].astype(np.int64)
        launch = _lookup(trace.launch_of, rows[lo]) if len(lo) else lo
        named = np.zeros(len(lo), bool)
        has = launch >= 0
        if has.any():
            ids = trace.name[launch[has]]
            uniq = np.unique(ids)
            hits = [i for i in uniq.tolist() if GRAPH_LAUNCH.search(trace.strings[int(i)])]
            named[has] = np.isin(ids, hits)
        for g in np.flatnonzero((hi - lo >= 2) | named).tolist():
            a, b = int(lo[g]), int(hi[g])
            self.graphs.append(Graph(int(values[a]), int(dev[a]), int(launch[g]), rows[a:b]))
        self.graphs.sort(key=lambda g: (g.device, int(trace.start[g.kernels[0]])))
        empty = np.zeros(0, np.int64)
        allr = np.concatenate([g.kernels for g in self.graphs] or [empty])
        gi = np.concatenate([np.full(len(g.kernels), i, np.int64)
                             for i, g in enumerate(self.graphs)] or [empty])
        pos = np.concatenate([np.arange(len(g.kernels), dtype=np.int64)
                              for g in self.graphs] or [empty])
        o = np.argsort(allr, kind="stable")
        self._rows, self._row_graph, self._pos = allr[o], gi[o], pos[o]
        self._launch_rows = np.array(sorted((g.launch, i) for i, g in enumerate(self.graphs)
                                            if g.launch >= 0), np.int64).reshape(-1, 2)

    def __bool__(self) -> bool:
        return bool(self.graphs)

    def __len__(self) -> int:
        return len(self.graphs)

    def of_kernel(self, row: int) -> tuple[Graph, int] | None:
        """The graph ``row`` belongs to and its position in it (0-based), or None."""
        k = int(np.searchsorted(self._rows, row))
        if k < len(self._rows) and self._rows[k] == row:
            return self.graphs[int(self._row_graph[k])], int(self._pos[k])
        return None

    def of_launch(self, row: int) -> Graph | None:
        """The graph that the runtime call ``row`` launched, or None."""
        lr = self._launch_rows
        k = int(np.searchsorted(lr[:, 0], row)) if len(lr) else 0
        if k < len(lr) and lr[k, 0] == row:
            return self.graphs[int(lr[k, 1])]
        return None

    @property
    def kernel_rows(self) -> np.ndarray:
        """Every row that is a graph's kernel, sorted."""
        return self._rows

    def records(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The first ``limit`` graphs (all: None) as plain data, in time order per device."""
        return _records(self.trace, self.graphs if limit is None else self.graphs[:limit])


def _records(trace: Trace, graphs: list[Graph]) -> list[dict[str, Any]]:
    """``graphs`` as plain data; the unions of their kernels are made together, in one pass
    however many graphs there are."""
    if not graphs:
        return []
    sizes = [len(g.kernels) for g in graphs]
    rows = np.concatenate([g.kernels for g in graphs])
    gid = np.repeat(np.arange(len(graphs)), sizes)
    s, e = trace.start[rows], trace.start[rows] + trace.dur[rows]  # by start within each
    first = np.r_[0, np.cumsum(sizes)[:-1]].astype(np.int64)
    gpu = _grouped_union_total(s, e, gid, first)
    last = np.maximum.reduceat(e, first)
    out = []
    for i, g in enumerate(graphs):
        known = g.launch >= 0
        t = int(trace.start[g.launch]) if known else None
        f0 = int(s[first[i]])
        out.append({
            "device": g.device, "correlation": g.correlation,
            "launch": trace.name_of(g.launch) if known else None,
            "start_us": round(t / 1000, 3) if known else None,
            "kernels": int(sizes[i]), "gpu_us": round(int(gpu[i]) / 1000, 3),
            "span_us": round((int(last[i]) - f0) / 1000, 3),
            "first_kernel_delay_us": round((f0 - t) / 1000, 3) if known else None})
    return out


def _lookup(col: Any, rows: np.ndarray) -> np.ndarray:
    """A sparse column's value for each of ``rows`` (-1 where it has none), vectorised."""
    if not len(col.rows):
        return np.full(len(rows), -1, np.int64)
    k = np.minimum(np.searchsorted(col.rows, rows), len(col.rows) - 1)
    return np.where(col.rows[k] == rows, col.values[k], -1).astype(np.int64)


def _grouped_union_total(s: np.ndarray, e: np.ndarray, gid: np.ndarray,
                         first: np.ndarray) -> np.ndarray:
    """Per group (rows of one group together, by start), the length of its intervals'
    union: each interval adds what reaches past the latest end before it in its group."""
    reach = np.empty_like(e)
    # the running latest end, restarted at each group: a segmented maximum, by lifting each
    # group above the one before (an offset larger than any end) when that fits in int64
    lo, hi = int(min(s.min(), e.min())), int(max(s.max(), e.max()))
    width = hi - lo + 1
    if len(first) * width < 2**62:
        lifted = (e - lo) + gid * width
        reach = np.maximum.accumulate(lifted) - gid * width + lo
    else:
        for a, b in zip(first.tolist(), np.r_[first[1:], len(e)].tolist()):
            reach[a:b] = np.maximum.accumulate(e[a:b])
    before = np.empty_like(reach)
    before[1:] = reach[:-1]
    before[first] = np.iinfo(np.int64).min
    add = np.maximum(e - np.maximum(s, before), 0)
    return np.add.reduceat(add, first)
