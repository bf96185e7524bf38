"""The analyses asked of one time window at a time: the drill-down views' data.

* :class:`OverlapModel`: per device, the computation, communication, overlapped and exposed
  communication time in every bin of a zoom level (prefix sums: a few binary searches per
  bin, whatever the trace's size), and the same figures inside any window.
* :func:`stream_matrix`: every pair of a device's streams, the time both are busy, in a window.
* :func:`range_stats`: a marked range's busy time per lane, its top kernels, its overlap.
* :func:`kernel_instances`, :func:`annotation_occurrences`: the rows behind a table's line.

All times are int64 nanoseconds from the trace start; windows are half-open [t0, t1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..trace import LANE_CPU, LANE_GPU, LANE_GPU_ANNOTATION, Trace
from . import intervals as iv
from .annotations import ANNOTATION_CATS
from .inflight import Spans, device_in_flight
from .kernels import short_name
from .overlap import DeviceUnions, device_unions
from .rules import NOT_GPU, SHORT_CLASS

#: the heatmap's rows, in the order :meth:`OverlapModel.bins` returns them
SERIES = ("comp", "comm", "overlap", "exposed")
#: Intervals of a device's streams above which the stream matrix's pair covers keep prefix
#: sums at time edges only (:class:`~tracetui.analysis.intervals.BinnedCover`)
PAIR_COVER_MAX = 1 << 20


@dataclass
class DeviceCovers:
    device: int
    unions: DeviceUnions
    comp: iv.Cover
    comm: iv.Cover
    overlap: iv.Cover
    exposed: iv.Cover
    flight: iv.Cover | None = None  # transfers in flight, outside communication kernels
    flight_hidden: iv.Cover | None = None  # ... while the device computes

    def series(self) -> tuple[iv.Cover, ...]:
        return (self.comp, self.comm, self.overlap, self.exposed)


class OverlapModel:
    """Computation / communication busy, overlapped and exposed communication of every device,
    queried by window or by bins."""

    def __init__(self, trace: Trace, classes: np.ndarray,
                 unions: Sequence[DeviceUnions] | None = None,
                 spans: Spans | None = None) -> None:
        self.trace = trace
        self.classes = classes
        self.spans = spans  # in-flight transfers (None: not looked for)
        self.unions = list(unions) if unions is not None else device_unions(trace, classes)
        self.devices: list[DeviceCovers] = []
        self._matrices: dict[tuple[int, int, int], tuple[list[int], np.ndarray]] = {}
        self._pairs: dict[int, tuple[list[int], dict[tuple[int, int], iv.Cover]]] = {}
        for du in self.unions:
            dc = DeviceCovers(du.device, du, iv.Cover(du.comp), iv.Cover(du.comm),
                              iv.Cover(du.both), iv.Cover(du.exposed))
            if spans is not None and len(spans.of_device(du.device)):
                flight = device_in_flight(spans, du.device, du.comm)
                dc.flight = iv.Cover(flight)
                dc.flight_hidden = iv.Cover(iv.intersect(flight, du.comp))
            self.devices.append(dc)

    def flight_devices(self) -> list[int]:
        """The devices with transfers in flight."""
        return [dc.device for dc in self.devices if dc.flight is not None]

    def flight_bins(self, edges: np.ndarray) -> dict[int, np.ndarray]:
        """Per device with transfers in flight, an array (2, len(edges) - 1): in-flight time
        (outside communication kernels) and the part of it hidden behind computation, ns."""
        e = np.asarray(edges, np.int64)
        return {dc.device: np.stack([np.diff(dc.flight.before(e)),
                                     np.diff(dc.flight_hidden.before(e))])
                for dc in self.devices if dc.flight is not None}

    def matrix(self, device_pos: int, window: tuple[int, int]) -> tuple[list[int], np.ndarray]:
        """:func:`stream_matrix` of device ``device_pos`` in ``window``, in O(pairs × log n):
        the time each pair of streams is busy at once is kept as a prefix-summed cover (made
        once per device, with the other aggregates), so any window is two binary searches
        per pair, not a walk over every slice in it."""
        key = (device_pos, int(window[0]), int(window[1]))
        got = self._matrices.get(key)
        if got is None:
            if len(self._matrices) > 32:
                self._matrices.clear()
            lanes, covers = self.pair_covers(device_pos)
            n = len(lanes)
            m = np.zeros((n, n), np.int64)
            edges = np.array([window[0], max(window[1], window[0])], np.int64)
            for (a, b), cover in covers.items():
                m[a, b] = m[b, a] = int(np.diff(cover.before(edges))[0])
            got = self._matrices[key] = (lanes, m)
        return got

    def pair_covers(self, device_pos: int) -> tuple[list[int], dict[tuple[int, int], Any]]:
        """(the device's stream lanes, in :func:`stream_matrix` order; per pair a <= b of
        them the cover of the time both are busy, a == b: the stream's own busy time)."""
        got = self._pairs.get(device_pos)
        if got is None:
            du = self.devices[device_pos].unions
            lanes = sorted(du.streams, key=lambda i: (self.trace.lanes[i].stream, i))
            sets = [du.streams[i] for i in lanes]
            covers: dict[tuple[int, int], Any] = {}
            # a device of many kernels: prefix sums at time edges, not at every interval
            # (15 M kernels on four streams: 744 MB of covers, 4.6 s)
            binned = sum(len(x[0]) for x in sets) > PAIR_COVER_MAX
            for a in range(len(lanes)):
                covers[a, a] = iv.BinnedCover([sets[a]], lambda xs: xs[0]) if binned \
                    else iv.Cover(sets[a])
                for b in range(a + 1, len(lanes)):
                    covers[a, b] = iv.BinnedCover(
                        [sets[a], sets[b]],
                        lambda xs: iv._intersect(*xs) if len(xs) == 2 else iv.EMPTY) \
                        if binned else iv.Cover(iv.intersect(sets[a], sets[b]))
            got = self._pairs[device_pos] = (lanes, covers)
        return got

    def bins(self, edges: np.ndarray) -> dict[int, np.ndarray]:
        """Per device, an array (4, len(edges) - 1) of busy time (ns) per bin, rows in
        :data:`SERIES` order."""
        e = np.asarray(edges, np.int64)
        return {dc.device: np.stack([np.diff(c.before(e)) for c in dc.series()])
                for dc in self.devices}

    def window(self, t0: int, t1: int) -> list[dict[str, Any]]:
        """Per device: comp/comm/overlap/exposed time (µs) and overlap % inside [t0, t1)."""
        out = []
        edges = np.array([t0, max(t1, t0)], np.int64)
        for dc in self.devices:
            comp, comm, both, exposed = (int(np.diff(c.before(edges))[0]) for c in dc.series())
            d = {"device": dc.device, "comp_us": comp / 1000, "comm_us": comm / 1000,
                 "overlap_us": both / 1000, "exposed_comm_us": exposed / 1000,
                 "overlap_pct": round(100 * both / comm, 2) if comm else None}
            if dc.flight is not None:
                fl = int(np.diff(dc.flight.before(edges))[0])
                hid = int(np.diff(dc.flight_hidden.before(edges))[0])
                d.update({"in_flight_us": fl / 1000, "in_flight_hidden_us": hid / 1000,
                          "in_flight_overlap_pct": round(100 * hid / fl, 2) if fl else None})
            out.append(d)
        return out


def stream_matrix(trace: Trace, du: DeviceUnions,
                  window: tuple[int, int] | None = None) -> tuple[list[int], np.ndarray]:
    """(lane indexes of the device's streams, matrix of ns): ``m[i, j]`` is the time streams
    i and j are both busy (the diagonal: each stream's own busy time), inside ``window`` if
    given."""
    lanes = sorted(du.streams, key=lambda i: (trace.lanes[i].stream, i))
    sets = [du.streams[i] for i in lanes]
    if window is not None:
        sets = [iv.clip(s, window[0], window[1]) for s in sets]
    n = len(lanes)
    m = np.zeros((n, n), np.int64)
    for a in range(n):
        m[a, a] = iv.total(sets[a])
        for b in range(a + 1, n):
            m[a, b] = m[b, a] = iv.total(iv.intersect(sets[a], sets[b]))
    return lanes, m


def lane_busy(trace: Trace, lane_index: int, t0: int, t1: int) -> int:
    """Time in [t0, t1) during which the lane has any slice (the union over its depths)."""
    ln = trace.lanes[lane_index]
    t1 = max(t1, t0)
    if t1 == t0:
        return 0
    if ln.max_depth == 0:  # one depth: slices are disjoint, prefix sums answer directly
        return ln.busy(t0, t1)
    rows = ln.slices_in(t0, t1)
    if not len(rows):
        return 0
    s = np.maximum(trace.start[rows], t0)
    e = np.minimum(trace.start[rows] + trace.dur[rows], t1)
    return iv.total(iv.union(s, e))


def gpu_rows_in(trace: Trace, classes: np.ndarray, t0: int, t1: int) -> np.ndarray:
    """GPU work (kernels, memcpy, memset) overlapping [t0, t1)."""
    parts = [ln.slices_in(t0, t1) for ln in trace.lanes if ln.kind == LANE_GPU]
    rows = np.concatenate(parts) if parts else np.zeros(0, np.int64)
    return rows[classes[rows] != NOT_GPU] if len(rows) else rows


def range_stats(trace: Trace, classes: np.ndarray, model: OverlapModel, t0: int, t1: int,
                top: int = 10) -> dict[str, Any]:
    """What happened in [t0, t1): busy time per lane (GPU streams and CPU threads, the time
    inside the range), the kernels with the most time inside it, and per device the overlap
    figures inside it."""
    t0, t1 = int(t0), int(max(t1, t0))
    span = t1 - t0
    lanes = []
    for ln in trace.lanes:
        if ln.count == 0 or ln.kind not in (LANE_GPU, LANE_CPU):
            continue
        busy = lane_busy(trace, ln.index, t0, t1)
        lanes.append({"lane": ln.name, "index": ln.index, "kind": ln.kind, "busy_ns": busy,
                      "pct": 100 * busy / span if span else 0.0})
    rows = gpu_rows_in(trace, classes, t0, t1) if span else np.zeros(0, np.int64)
    kernels: list[dict[str, Any]] = []
    if len(rows):
        inside = (np.minimum(trace.start[rows] + trace.dur[rows], t1)
                  - np.maximum(trace.start[rows], t0)).clip(min=0)
        names = trace.name[rows]
        uniq, inv = np.unique(names, return_inverse=True)
        tot = np.bincount(inv, weights=inside.astype(np.float64), minlength=len(uniq))
        cnt = np.bincount(inv, minlength=len(uniq))
        first = np.full(len(uniq), -1, np.int64)
        first[inv[::-1]] = rows[::-1]
        total_inside = float(tot.sum())
        for k in np.argsort(-tot, kind="stable")[:top].tolist():
            name = trace.strings[int(uniq[k])]
            kernels.append({"name": name, "short_name": short_name(name),
                            "class": SHORT_CLASS[int(classes[first[k]])],
                            "count": int(cnt[k]), "time_ns": int(tot[k]),
                            "pct": 100 * tot[k] / total_inside if total_inside else 0.0})
    return {"t0": t0, "t1": t1, "span_ns": span, "lanes": lanes, "kernels": kernels,
            "gpu_work": int(len(rows)), "devices": model.window(t0, t1)}


def kernel_instances(trace: Trace, classes: np.ndarray, name_ids: Sequence[int]) -> np.ndarray:
    """Rows of the GPU work named by any of ``name_ids``, in time order."""
    if not len(name_ids):
        return np.zeros(0, np.int64)
    hit = np.zeros(len(trace.strings), bool)  # a lookup table by name id: one gather
    hit[np.asarray(name_ids, np.int64)] = True
    rows = np.flatnonzero(hit[trace.name])
    rows = rows[classes[rows] != NOT_GPU]
    return rows[np.argsort(trace.start[rows], kind="stable")]


def annotation_occurrences(trace: Trace, name: str, source: str) -> np.ndarray:
    """Rows of the annotation ``name`` (source "cpu": ``user_annotation`` on CPU threads; "gpu":
    ``gpu_user_annotation`` on GPU lanes), in time order."""
    nid = trace.strings.find(name)
    if nid < 0:
        return np.zeros(0, np.int64)
    cats = [i for i in (trace.strings.find(c) for c in ANNOTATION_CATS) if i >= 0]
    rows = np.flatnonzero(trace.name == nid)  # by name first: the category of a few rows
    rows = rows[np.isin(trace.cat[rows], cats)]
    gpu_lane = np.array([ln.kind == LANE_GPU_ANNOTATION for ln in trace.lanes] or [False])
    on_gpu = gpu_lane[trace.lane_index(rows)]
    rows = rows[~on_gpu] if source == "cpu" else rows[on_gpu]
    return rows[np.argsort(trace.start[rows], kind="stable")]
