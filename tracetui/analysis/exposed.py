"""Where communication is exposed: the stretches of time when a device communicates and
computes nothing, largest first, each with the kernel that was communicating, the phase that
launched it, and what the computation did around it.

A stretch is a maximal interval of (union of the device's communication) minus (union of its
computation) — the pieces whose lengths add up to the device's exposed communication.
Pure: numpy only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..trace import LANE_GPU, Trace
from .attribution import NO_PHASE, LaunchPhases
from .overlap import DeviceUnions
from .rules import COMM, COMP

#: rows of ``exposed[]`` in ``summary --json``
JSON_ROWS = 100


class ExposedStretches:
    """Every exposed stretch of every device, ordered largest first (ties: earlier first);
    :meth:`detail` describes one."""

    def __init__(self, trace: Trace, classes: np.ndarray, unions: list[DeviceUnions],
                 phases: LaunchPhases | None = None) -> None:
        self.trace, self.classes, self.phases = trace, classes, phases
        starts, ends, devs = [], [], []
        self._dev_lanes: dict[int, list[int]] = {}
        self._comp: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
        for du in unions:
            s, e = du.exposed
            starts.append(s)
            ends.append(e)
            devs.append(np.full(len(s), du.device, np.int64))
            self._dev_lanes[du.device] = [ln.index for ln in trace.lanes
                                          if ln.kind == LANE_GPU and ln.device == du.device]
        s = np.concatenate(starts) if starts else np.zeros(0, np.int64)
        e = np.concatenate(ends) if ends else np.zeros(0, np.int64)
        d = np.concatenate(devs) if devs else np.zeros(0, np.int64)
        o = np.lexsort((s, -(e - s)))
        self.start, self.end, self.device = s[o], e[o], d[o]

    def __len__(self) -> int:
        return len(self.start)

    def count(self, device: int) -> int:
        return int((self.device == device).sum())

    def time_order(self) -> np.ndarray:
        """Indexes of the stretches by start (then device)."""
        return np.lexsort((self.device, self.start))

    def _rows(self, device: int, cls: int, t0: int, t1: int) -> np.ndarray:
        """Rows of the device's ``cls`` kernels overlapping [t0, t1)."""
        tr = self.trace
        parts = [tr.lanes[i].slices_in(t0, t1) for i in self._dev_lanes.get(device, [])]
        rows = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        return rows[self.classes[rows] == cls] if len(rows) else rows

    def _comp_index(self, device: int) -> tuple[np.ndarray, ...]:
        """The device's computation kernels by end and by start (made once per device)."""
        got = self._comp.get(device)
        if got is None:
            tr = self.trace
            parts = [np.arange(tr.lanes[i].lo, tr.lanes[i].hi)
                     for i in self._dev_lanes.get(device, [])]
            rows = np.concatenate(parts) if parts else np.zeros(0, np.int64)
            rows = rows[self.classes[rows] == COMP]
            ends = tr.start[rows] + tr.dur[rows]
            o = np.argsort(ends, kind="stable")
            by_start = rows[np.argsort(tr.start[rows], kind="stable")]
            got = (rows[o], ends[o], by_start, tr.start[by_start])
            self._comp[device] = got
        return got

    def detail(self, k: int) -> dict[str, Any]:
        """Stretch ``k`` (ns): device, start, end, the communication kernel with the most time
        in it (``kernel_row``, ties: the earlier), how many communication kernels overlap it,
        the phase that launched that kernel, and the computation kernels that ended last
        before it and started first after it (``None`` if there is none)."""
        tr = self.trace
        dev, s, e = int(self.device[k]), int(self.start[k]), int(self.end[k])
        comm = self._rows(dev, COMM, s, e)
        inside = np.minimum(tr.start[comm] + tr.dur[comm], e) - np.maximum(tr.start[comm], s)
        comm, inside = comm[inside > 0], inside[inside > 0]  # not those that only touch it
        kernel = -1
        if len(comm):
            o = np.lexsort((comm, tr.start[comm], -inside))
            kernel = int(comm[o[0]])
        owner = int(self.phases.owner_of(np.array([kernel]))[0]) \
            if self.phases is not None and kernel >= 0 else -1
        by_end, ends, by_start, starts = self._comp_index(dev)
        j = int(np.searchsorted(ends, s, side="right")) - 1
        before = int(by_end[j]) if j >= 0 else -1
        j = int(np.searchsorted(starts, e, side="left"))
        after = int(by_start[j]) if j < len(by_start) else -1
        return {"device": dev, "start_ns": s, "end_ns": e, "kernel_row": kernel,
                "kernels": int(len(comm)), "phase_row": owner,
                "phase": tr.name_of(owner) if owner >= 0 else NO_PHASE,
                "before_row": before, "after_row": after}

    def records(self, top: int = JSON_ROWS) -> list[dict[str, Any]]:
        """The ``top`` largest as ``summary --json`` writes them (µs)."""
        tr = self.trace
        out = []
        for k in range(min(top, len(self))):
            d = self.detail(k)
            b, a = d["before_row"], d["after_row"]
            out.append({
                "device": d["device"], "start_us": _us(d["start_ns"]), "end_us": _us(d["end_ns"]),
                "dur_us": _us(d["end_ns"] - d["start_ns"]),
                "kernel": tr.name_of(d["kernel_row"]) if d["kernel_row"] >= 0 else None,
                "kernels": d["kernels"], "phase": d["phase"],
                "compute_before": None if b < 0 else {
                    "name": tr.name_of(b), "lane": tr.lane_of(b).name,
                    "end_us": _us(int(tr.start[b] + tr.dur[b]))},
                "compute_after": None if a < 0 else {
                    "name": tr.name_of(a), "lane": tr.lane_of(a).name,
                    "start_us": _us(int(tr.start[a]))},
            })
        return out


def _us(ns: int) -> float:
    return round(ns / 1000, 3)
