"""One frame of the timeline as numbers: for each visible row (a lane at one depth) and each
screen column, how busy that time bin is and which slice shows there.

Every row costs a few binary searches per column on the row's start-sorted slices and their
prefix sum of durations, so a frame costs the same at ten thousand or ten million events.
The widget only turns these arrays into characters and colours.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .model import LANE_CPU, Lane, Trace


@dataclass(frozen=True)
class Row:
    """A visible row: one depth of one lane (``kind`` "slices"); a counter track
    (``lane`` = -1 - k, kind "counter"); a device's overlap bins (kind "overlap",
    ``depth`` = the device, ``lane`` = -1); or a device's transfers in flight (kind
    "in_flight", the same). ``folded``: the lane's Python frames are folded away, and
    ``depth`` counts the other slices only (:meth:`Lane.folded`)."""

    lane: int
    depth: int
    kind: str = "slices"
    folded: bool = False


@dataclass
class Frame:
    """``coverage[r, c]``: fraction of column c's time bin that row r is busy (0..1);
    ``slice_at[r, c]``: the slice covering the middle of the bin (or, if none does, the one
    that starts first in it), else -1; ``position[r, c]``: that slice's place among its
    row's slices in start order (neighbours differ by one: the widget shades them apart);
    ``edges``: the ncols + 1 bin edges in ns."""

    rows: list[Row]
    edges: np.ndarray
    coverage: np.ndarray
    slice_at: np.ndarray
    position: np.ndarray


#: Rows one lane may take: every depth of any real trace (57 is the deepest seen, Python
#: frames included); a hostile million-deep nesting stops here, with the rest reachable
#: through the slices' details.
MAX_LANE_ROWS = 1024


def default_rows(trace: Trace, max_depth: int = MAX_LANE_ROWS - 1,
                 collapsed: frozenset[int] = frozenset(), counters: bool = True,
                 overlap: bool = False, in_flight: frozenset[int] = frozenset(),
                 fold_python: bool = False, unfolded: frozenset[int] = frozenset(),
                 memory: tuple[tuple[int, int], ...] = ()) -> list[Row]:
    """Every lane, one row per depth (up to ``max_depth``; a collapsed lane: its top row
    only); with ``fold_python``, the lanes with Python frames (but those in ``unfolded``)
    show the depths of their other slices only. After a device's last GPU lane its in-flight
    row (devices in ``in_flight``) and, with ``overlap``, its overlap row; then one row per
    counter track (``Row(-1 - k, 0, "counter")`` for counter k). ``memory``: the devices
    with a memory curve, as (device type, id) by curve: each gets two rows (``Row(-1, k,
    "memory")`` above ``Row(-2, k, "memory")``), a GPU's after its device's last lane, the
    CPU's after the last CPU lane, any other before the counters."""
    rows = []
    last_of_device: dict[int, int] = {}
    if overlap or in_flight or memory:
        for ln in trace.lanes:
            if ln.device >= 0:
                last_of_device[ln.device] = ln.index
    last_cpu = max((ln.index for ln in trace.lanes if ln.kind == LANE_CPU), default=-1)
    mem_after: dict[int, list[int]] = {}  # lane index -> the curves drawn after it
    for k, (dtype, did) in enumerate(memory):
        lane = last_cpu if dtype in (0, 2, 5) else \
            last_of_device.get(did, -1) if dtype != 0 and did >= 0 else -1
        mem_after.setdefault(lane, []).append(k)

    def memory_rows(lane: int) -> list[Row]:
        return [Row(half, k, "memory") for k in mem_after.get(lane, ()) for half in (-1, -2)]

    for ln in trace.lanes:
        fold = fold_python and ln.index not in unfolded and ln.folded() is not None
        deepest = 0 if ln.index in collapsed else min(ln.depths(fold) - 1, max_depth)
        rows += [Row(ln.index, d, "slices", fold) for d in range(deepest + 1)]
        if ln.device >= 0 and last_of_device.get(ln.device) == ln.index:
            if ln.device in in_flight:
                rows.append(Row(-1, ln.device, "in_flight"))
            if overlap:
                rows.append(Row(-1, ln.device, "overlap"))
        rows += memory_rows(ln.index)
    rows += memory_rows(-1)
    if counters:
        rows += [Row(-1 - k, 0, "counter") for k in range(len(trace.counters))]
    return rows


def counter_levels(trace: Trace, k: int, edges: np.ndarray) -> np.ndarray:
    """Counter k's value at the end of each bin, scaled to 0..1 of its maximum (-1: no data)."""
    c = trace.counters[k]
    if not len(c.ts):
        return np.full(len(edges) - 1, -1.0)
    i = np.searchsorted(c.ts, edges[1:], side="right") - 1
    top = float(np.nanmax(np.abs(c.values))) or 1.0
    out = np.where(i >= 0, c.values[np.maximum(i, 0)] / top, -1.0)
    return out


def bin_edges(t0: int, t1: int, ncols: int) -> np.ndarray:
    """ncols equal bins over [t0, t1) in whole nanoseconds (the last edge is exactly t1)."""
    t0, t1 = int(t0), int(t1)
    t1 = max(t1, t0 + ncols)
    # k * span would overflow int64 for spans past ~2^63 / ncols (epoch-µs timestamps and
    # one stray "ts": 0 make days of span): k * (span // n) + k * (span % n) // n is exact
    q, r = divmod(t1 - t0, ncols)
    k = np.arange(ncols + 1, dtype=np.int64)
    return t0 + k * q + (k * r) // ncols


def render(trace: Trace, rows: list[Row], t0: int, t1: int, ncols: int) -> Frame:
    edges = bin_edges(t0, t1, ncols)
    width = np.diff(edges)
    mids = edges[:-1] + width // 2
    cov = np.zeros((len(rows), ncols), np.float32)
    at = np.full((len(rows), ncols), -1, np.int64)
    pos = np.full((len(rows), ncols), -1, np.int64)
    for r, row in enumerate(rows):
        if row.kind != "slices":  # counters and overlap bins: the widget draws them
            continue
        lane: Lane = trace.lanes[row.lane]
        di = lane.index_at(row.depth, row.folded)
        if not len(di):
            continue
        busy = np.diff(di.busy_before(edges))
        cov[r] = busy / width
        # the slice under each column's middle; narrow slices between middles still show,
        # through the one that starts first inside the bin (a zero-length one too: the
        # widget draws it as a sliver, and it can be selected)
        k = np.searchsorted(di.starts, mids, side="right") - 1
        kk = np.maximum(k, 0)
        hit = (k >= 0) & (di.ends[kk] > mids)
        first = np.searchsorted(di.ends, edges[:-1], side="right")  # first ending after bin start
        ff = np.minimum(first, len(di) - 1)
        inside = (first < len(di)) & (di.starts[ff] < edges[1:])
        p = np.where(hit, kk, np.where(inside, ff, -1))
        pos[r] = p
        at[r] = np.where(p >= 0, di.rows_at(np.maximum(p, 0)), -1)
    return Frame(rows, edges, cov, at, pos)


def runs(slice_row: np.ndarray) -> list[tuple[int, int, int]]:
    """Runs of one row's columns showing the same slice (or -1, nothing): (first column,
    width, slice)."""
    if not len(slice_row):
        return []
    change = np.flatnonzero(np.diff(slice_row)) + 1
    starts = np.r_[0, change]
    ends = np.r_[change, len(slice_row)]
    return [(int(a), int(b - a), int(slice_row[a])) for a, b in zip(starts, ends)]
