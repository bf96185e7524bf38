"""Per annotation name (DualPipe's ``attn(F)``, ``dispatch(B)``, profiler steps, ...): count,
time, and what its kernels did — by launch.

A CPU annotation's kernels are those whose launching runtime call (joined by correlation)
starts inside one of its occurrences, in the same process, on any thread. A phase's (an
innermost annotation that repeats) are those it owns: launched inside it on its own thread, or
on another thread of the process that is inside no phase then (see :mod:`.attribution`): a
communication thread's ``nccl:all_reduce`` owns its kernels, the ``## backward ##`` of the
main thread around it does not. Its communication and computation are the unions of those kernels per
device; its overlap is the part of its communication that runs while *any* computation of the
device runs (not only its own), and its exposed communication is the rest. Nested annotations
each count what they launched: ``ProfilerStep#1`` holds everything inside it. The phases and
a ``(no phase)`` row for the GPU work no phase owns partition the GPU work: their exposed
communication adds up to the device's whenever two phases' communication is never exposed
at the same instant.

A ``gpu_user_annotation`` is drawn on a GPU stream: it owns that stream's kernels inside its
span. The ``window_*`` figures are the older, CPU-time reading: the device's communication
and exposed communication inside the annotation's time ranges, whoever launched them.

A CUDA graph's kernels all come from one launch, so an annotation around a
``cudaGraphLaunch`` owns the whole replay by that call's CPU time alone: ``graph_kernels``
says how many of a CPU row's kernels came that way (the text report says so beside it).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..trace import LANE_GPU_ANNOTATION, Trace
from . import intervals as iv
from .attribution import (NO_PHASE, DeviceComp, Launches, LaunchPhases, launch_figures,
                          phase_occurrences)
from .overlap import DeviceUnions

ANNOTATION_CATS = frozenset({"user_annotation", "gpu_user_annotation"})


def _us(ns: int) -> float:
    return round(ns / 1000, 3)


def _pct(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 2) if whole else None


def _figures(f: dict[str, Any]) -> dict[str, Any]:
    return {"comm_us": _us(f["comm"]), "comp_us": _us(f["comp"]),
            "overlap_us": _us(f["overlap"]), "overlap_pct": _pct(f["overlap"], f["comm"]),
            "exposed_comm_us": _us(f["comm"] - f["overlap"])}


def annotation_table(trace: Trace, classes: np.ndarray, unions: list[DeviceUnions],
                     launches: Launches | None = None,
                     phases: LaunchPhases | None = None,
                     graph_rows: np.ndarray | None = None) -> list[dict[str, Any]]:
    """One row per annotation name and side (``cpu``, ``gpu``), then ``(no phase)``.

    ``phases``: who owns each kernel (default: the innermost repeating annotations);
    ``graph_rows``: the sorted rows of CUDA graphs' kernels (default: none)."""
    strings = trace.strings
    ann_cats = [i for i in np.unique(trace.cat).tolist() if strings[i] in ANNOTATION_CATS]
    launches = launches if launches is not None else Launches(trace, classes)
    if phases is None:
        phases = LaunchPhases(trace, classes, phase_occurrences(trace), launches)
    comp = DeviceComp(trace, unions)
    out = []
    if ann_cats:
        rows = np.flatnonzero(np.isin(trace.cat, ann_cats))
        out = _rows(trace, classes, unions, launches, comp, rows, phases.by_name(),
                    graph_rows if graph_rows is not None else np.zeros(0, np.int64))
    out.sort(key=lambda a: (a["source"], -a["total_us"], a["name"]))
    if out:  # beside the annotations: the GPU work none of the phases launched
        out.append(no_phase_row(trace, classes, phases, comp))
    return out


def no_phase_row(trace: Trace, classes: np.ndarray, phases: LaunchPhases,
                 comp: DeviceComp) -> dict[str, Any]:
    """The ``(no phase)`` row: the GPU work no phase owns (launched outside every phase, or
    with no known launch), with an annotation row's figures."""
    none = phases.unowned(classes)
    f = launch_figures(trace, classes, none, comp)
    return {"name": NO_PHASE, "source": "none", "phase": True, "count": None,
            "total_us": None, "span_us": None, "gpu_us": _us(int(trace.dur[none].sum())),
            "kernels": int(len(none)), "graph_kernels": None, "devices": f["devices"],
            **_figures(f),
            "window_comm_us": None, "window_exposed_comm_us": None, "window_overlap_pct": None}


def phase_figures(trace: Trace, classes: np.ndarray, phases: LaunchPhases,
                  comp: DeviceComp) -> dict[str, dict[str, Any]]:
    """Per phase name: its phase occurrences (``count``, ``total_us``) and the figures of the
    kernels they own (as in an annotation row: ``kernels``, ``gpu_us``, ``comm_us``,
    ``comp_us``, ``overlap_us``, ``overlap_pct``, ``exposed_comm_us``); and ``(no phase)``'s
    row."""
    out = {}
    names = trace.name[phases.rows]
    for name_id, own in phases.by_name().items():
        if not len(own):
            continue  # in no block of the diagram either
        f = launch_figures(trace, classes, own, comp)
        occ = phases.rows[names == name_id]
        out[trace.strings[name_id]] = {
            "count": int(len(occ)), "total_us": _us(int(trace.dur[occ].sum())),
            "kernels": int(len(own)), "gpu_us": _us(int(trace.dur[own].sum())), **_figures(f)}
    out[NO_PHASE] = no_phase_row(trace, classes, phases, comp)
    return out


def _rows(trace: Trace, classes: np.ndarray, unions: list[DeviceUnions], launches: Launches,
          comp: DeviceComp, rows: np.ndarray, phase_own: dict[int, np.ndarray],
          graph_rows: np.ndarray) -> list[dict[str, Any]]:
    strings = trace.strings
    lane_idx = trace.lane_index(rows)
    covers = {du.device: (iv.Cover(du.comm), iv.Cover(du.both)) for du in unions}
    streams = _StreamCovers(trace, unions)
    out = []
    names = trace.name[rows]
    lane_is_gpu = np.array([ln.kind == LANE_GPU_ANNOTATION for ln in trace.lanes] or [False])
    gpu_side = lane_is_gpu[lane_idx]
    for source, mask in (("cpu", ~gpu_side), ("gpu", gpu_side)):
        # the rows of each name together: one sort, not a pass over all rows per name
        order = np.flatnonzero(mask)
        order = order[np.argsort(names[order], kind="stable")]
        sel_names = names[order]
        cut = np.flatnonzero(np.r_[True, sel_names[1:] != sel_names[:-1]]) if len(order) \
            else np.zeros(0, np.int64)
        for a, b in zip(cut.tolist(), np.r_[cut[1:], len(order)].tolist()):
            name_id = int(sel_names[a])
            r, lanes_m = rows[order[a:b]], lane_idx[order[a:b]]
            s, e = trace.start[r], trace.start[r] + trace.dur[r]
            window = iv.union(s, e)
            if source == "cpu":  # a phase: what it owns; else what it contains
                own = phase_own.get(name_id)
                if own is None:
                    own = launches.kern[launches.inside(trace, r)]
                f = launch_figures(trace, classes, own, comp)
                gpu_ns, n_kernels = int(trace.dur[own].sum()), int(len(own))
                n_graph = int(np.isin(own, graph_rows).sum()) if len(graph_rows) else 0
            else:
                f, gpu_ns = _stream_figures(trace, streams, lanes_m, s, e, comp)
                n_kernels = n_graph = None
            w_comm = w_both = 0
            for d in f["devices"]:
                if d in covers:
                    c_comm, c_both = covers[d]
                    w_comm += c_comm.within(window)
                    w_both += c_both.within(window)
            out.append({
                "name": strings[name_id],
                "source": source,
                "phase": source == "cpu" and name_id in phase_own,
                "count": int(len(r)),
                "total_us": _us(int(trace.dur[r].sum())),
                "span_us": _us(iv.total(window)),
                "gpu_us": _us(gpu_ns),
                "kernels": n_kernels,
                "graph_kernels": n_graph,
                "devices": f["devices"],
                **_figures(f),
                "window_comm_us": _us(w_comm),
                "window_exposed_comm_us": _us(w_comm - w_both),
                "window_overlap_pct": _pct(w_both, w_comm),
            })
    return out


class _StreamCovers:
    """Per GPU stream, prefix-summed covers (made on first use) of its busy time, its
    communication, its computation, and its communication while the device computes: a
    GPU annotation's figures in O(occurrences × log n)."""

    def __init__(self, trace: Trace, unions: list[DeviceUnions]) -> None:
        self.streams = {(trace.lanes[i].device, trace.lanes[i].stream): (du, i)
                        for du in unions for i in du.streams}
        self._sets: dict[tuple[int, int], tuple[iv.Intervals, ...] | None] = {}
        self._covers: dict[tuple[int, int], tuple[iv.Cover, ...] | None] = {}

    def sets(self, device: int, stream: int) -> tuple[iv.Intervals, ...] | None:
        """(busy, comm, comp, comm while computing) of the stream, or None."""
        key = (device, stream)
        if key not in self._sets:
            got = self.streams.get(key)
            if got is None:
                self._sets[key] = None
            else:
                du, g = got
                comm = du.stream_comm.get(g, iv.EMPTY)
                self._sets[key] = (du.streams[g], comm, du.stream_comp.get(g, iv.EMPTY),
                                   iv.intersect(comm, du.both))  # its comm ∩ comp
        return self._sets[key]

    def covers(self, device: int, stream: int) -> tuple[iv.Cover, ...] | None:
        """:meth:`sets` as covers."""
        key = (device, stream)
        if key not in self._covers:
            sets = self.sets(device, stream)
            self._covers[key] = None if sets is None else tuple(iv.Cover(x) for x in sets)
        return self._covers[key]


def _stream_figures(trace: Trace, streams: _StreamCovers, lanes: np.ndarray, s: np.ndarray,
                    e: np.ndarray, comp: DeviceComp) -> tuple[dict[str, Any], int]:
    """A GPU annotation's figures: on each stream it is drawn on, that stream's work inside
    its occurrences there (communication and computation unions per device, the overlap with
    all the device's computation); and that work's busy time (summed over its streams)."""
    per: dict[int, list[tuple[int, iv.Intervals]]] = {}
    for lane in np.unique(lanes).tolist():
        ln = trace.lanes[lane]
        lm = lanes == lane
        per.setdefault(ln.device, []).append((ln.stream, iv.union(s[lm], e[lm])))
    out: dict[str, Any] = {"comm": 0, "comp": 0, "overlap": 0, "devices": sorted(per)}
    busy = 0
    for d, parts in per.items():
        parts = [(st, w) for st, w in parts if streams.sets(d, st) is not None]
        for st, wins in parts:
            busy += streams.covers(d, st)[0].within(wins)
        for k, key in ((1, "comm"), (2, "comp")):
            has = [(st, wins) for st, wins in parts if len(streams.sets(d, st)[k][0])]
            if len(has) == 1:  # on one stream: prefix sums answer
                st, wins = has[0]
                c = streams.covers(d, st)
                out[key] += c[k].within(wins)
                if key == "comm":
                    out["overlap"] += c[3].within(wins)
            elif has:  # on several: their union
                pieces = [iv.intersect(streams.sets(d, st)[k], wins) for st, wins in has]
                u = iv.union(np.concatenate([p[0] for p in pieces]),
                             np.concatenate([p[1] for p in pieces]))
                out[key] += iv.total(u)
                if key == "comm":
                    out["overlap"] += comp.within(d, u)
    return out, busy
