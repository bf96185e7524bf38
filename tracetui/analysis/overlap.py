"""How much communication hides behind computation, per device, as HTA defines it.

overlap_pct = |comm ∩ comp| / |comm| × 100, where comm and comp are each first merged into a
union of intervals over all of a device's streams. Exposed communication is comm \\ comp.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from itertools import combinations
from typing import Any, Iterator, Mapping

import numpy as np

from ..trace import LANE_GPU, Trace
from . import intervals as iv
from .rules import COMM, COMP, MEM, OTHER


@dataclass
class DeviceUnions:
    """Unions of one device's GPU work by class, and of each of its streams."""

    device: int
    comm: iv.Intervals
    comp: iv.Intervals
    mem: iv.Intervals
    streams: Mapping[int, iv.Intervals]  # lane index -> union of everything on that stream
    stream_comm: Mapping[int, iv.Intervals]
    stream_comp: Mapping[int, iv.Intervals]

    @cached_property
    def both(self) -> iv.Intervals:
        """Communication while the device computes (made once)."""
        return iv.intersect(self.comm, self.comp)

    @cached_property
    def exposed(self) -> iv.Intervals:
        """Communication while the device computes nothing (made once)."""
        return iv.subtract(self.comm, self.comp, self.both)



class LaneSets(Mapping[int, iv.Intervals]):
    """Lane index -> the union of (some of) its work. A lane whose set is its rows
    themselves - its slices by start and apart, as a GPU stream holds its kernels - is not
    held: it is an :class:`~tracetui.analysis.intervals.Run` of the lane's own columns,
    whose ends windowed operations make a window at a time (15 M kernels: 120 MB less held
    for the whole of an analysis, and no lane's ends all at once in the overlap figures)."""

    def __init__(self, trace: Trace) -> None:
        self._trace = trace
        self._held: dict[int, iv.Intervals | None] = {}

    def put(self, lane: int, u: iv.Intervals, own_rows: bool) -> None:
        self._held[lane] = None if own_rows else u

    def __getitem__(self, lane: int) -> iv.Intervals:
        u = self._held[lane]
        if u is None:
            ln = self._trace.lanes[lane]
            s = self._trace.start[ln.lo:ln.hi]
            s.flags.writeable = False
            d = self._trace.dur[ln.lo:ln.hi]
            d.flags.writeable = False
            return iv.Run(s, d)  # type: ignore[return-value]  # reads as (starts, ends)
        return u

    def __iter__(self) -> Iterator[int]:
        return iter(self._held)

    def __len__(self) -> int:
        return len(self._held)


def device_unions(trace: Trace, classes: np.ndarray) -> list[DeviceUnions]:
    out = []
    for dev in trace.devices:
        lanes = [ln for ln in trace.lanes if ln.kind == LANE_GPU and ln.device == dev]
        per = {k: LaneSets(trace) for k in (COMM, COMP, MEM, -9)}
        for ln in lanes:
            # views of the lane (read-only: a set may be the lane's own starts); a stream's
            # kernels, sorted and apart, are their own union
            s = trace.start[ln.lo:ln.hi]
            s.flags.writeable = False
            e = s + trace.dur[ln.lo:ln.hi]
            c = classes[ln.lo:ln.hi]
            work = c != OTHER  # its GPU work, not what else a trace put on the lane
            whole = bool(work.all())
            u = iv.union(s, e) if whole else iv.union(s[work], e[work])
            own = whole and u[0] is s  # the lane's rows themselves: made again when asked for
            per[-9].put(ln.index, u, own)
            for cls in (COMM, COMP, MEM):
                m = c == cls
                if m.all() and whole:
                    per[cls].put(ln.index, u, own)  # all of one class: the same set
                elif m.any():
                    per[cls].put(ln.index, iv.union(s[m], e[m]), False)
            del s, e, c, work, u

        def merge(d: LaneSets) -> iv.Intervals:
            return iv.union_of(list(d.values()))

        out.append(DeviceUnions(dev, merge(per[COMM]), merge(per[COMP]), merge(per[MEM]),
                                per[-9], per[COMM], per[COMP]))
    return out


def _us(ns: int) -> float:
    return round(ns / 1000, 3)


def figures(comm: iv.Intervals, comp: iv.Intervals,
            window: iv.Intervals | None = None,
            both: iv.Intervals | None = None) -> dict[str, Any]:
    """comm/comp/overlap/exposed totals (µs), optionally only inside ``window``
    (``both``: comm ∩ comp, if known)."""
    both = iv.intersect(comm, comp) if both is None else both
    if window is None:
        c, p, b = iv.total(comm), iv.total(comp), iv.total(both)
    else:
        c, p, b = (iv.total_within(x, window) for x in (comm, comp, both))
    return {"comm_us": _us(c), "comp_us": _us(p), "overlap_us": _us(b),
            "overlap_pct": round(100 * b / c, 2) if c else None, "exposed_comm_us": _us(c - b)}


def device_overlap(unions: list[DeviceUnions]) -> list[dict[str, Any]]:
    """One object per device: comm_us, comp_us, overlap_us, overlap_pct, exposed_comm_us, and
    the class pairs (time when two comm kernels, two comp kernels, or one of each run at once)."""
    out = []
    for du in unions:
        d = {"device": du.device, **figures(du.comm, du.comp, both=du.both)}
        d["class_pairs"] = {
            "comm_comm_us": _us(iv.coverage_total(list(du.stream_comm.values()), 2)),
            "comm_comp_us": d["overlap_us"],
            "comp_comp_us": _us(iv.coverage_total(list(du.stream_comp.values()), 2)),
        }
        out.append(d)
    return out


def stream_overlap(trace: Trace, unions: list[DeviceUnions]) -> list[dict[str, Any]]:
    """For every pair of streams of a device: the time both are busy at once."""
    out = []
    for du in unions:
        for a, b in combinations(sorted(du.streams), 2):
            both = iv.intersect_total(du.streams[a], du.streams[b])
            out.append({"device": du.device, "a": trace.lanes[a].name, "b": trace.lanes[b].name,
                        "a_stream": trace.lanes[a].stream, "b_stream": trace.lanes[b].stream,
                        "overlap_us": _us(both),
                        "a_busy_us": _us(iv.total(du.streams[a])),
                        "b_busy_us": _us(iv.total(du.streams[b]))})
    return out
