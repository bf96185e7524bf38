"""By launch: which CPU annotation a GPU kernel belongs to, and what an annotation's kernels did.

GPU work runs asynchronously: DualPipe's CPU sits inside ``dispatch(F)`` for 68 ms while the
kernels of other phases run, so an annotation's CPU time window says little about the GPU.
What ties a kernel to an annotation is its launch: a kernel belongs to an occurrence when the
runtime call that launched it (joined by correlation) starts inside the occurrence, in the same
process, on any thread (DeepSeek's ``attn(B)`` kernels are launched by the autograd thread
while the main thread sits inside ``attn(B)``).

* :class:`Launches`: the launched GPU work by (process, launch time).
* :func:`phase_rows`, :func:`phase_occurrences`: the phases — the innermost CPU annotations whose
  name repeats (or those at one nesting depth).
* :func:`launch_figures`: communication, computation, overlap and exposed communication of a
  set of kernels, the overlap taken against *all* computation of each device.
* :class:`LaunchPhases`: the phase occurrence that owns each kernel — one owner: the
  occurrence its launch starts in on the launching thread, else the latest one of another
  thread of the process (a communication thread's ``nccl:all_reduce`` owns its kernels, the
  main thread's ``## backward ##`` around it does not) — the GPU work no phase owns
  ("(no phase)"), and the phase whose kernels run at any instant, per device,
  communication first.

Pure: numpy only.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ..trace import LANE_CPU, LANE_GPU, Trace
from . import intervals as iv
from .rules import COMM, COMP, gpu_work

if TYPE_CHECKING:  # pragma: no cover
    from .overlap import DeviceUnions

NO_PHASE = "(no phase)"


class Launches:
    """Launched GPU work (kernels, memcpy, memset) by (process of the launch, launch time).

    ``kern[i]`` was launched by the runtime call ``src[i]`` starting at ``t[i]`` in the
    process coded ``pcode[i]``, from the lane ``src_lane[i]``."""

    def __init__(self, trace: Trace, classes: np.ndarray) -> None:
        # int64 throughout: an int64 key searched in an int32 array converts the whole array
        kern = trace.launch_of.rows.astype(np.int64)
        keep = gpu_work(classes[kern]) if len(kern) else np.zeros(0, bool)
        kern, src = kern[keep], trace.launch_of.values[keep].astype(np.int64)
        self.pid_ids: dict[Any, int] = {}
        lane_pid = np.array([self.pid_ids.setdefault(ln.pid, len(self.pid_ids))
                             for ln in trace.lanes] or [0], np.int64)
        src_lane = trace.lane_index(src)
        pcode = lane_pid[src_lane]
        t = trace.start[src]
        o = np.lexsort((t, pcode))
        self.pcode, self.t, self.kern = pcode[o], t[o], kern[o]
        self.src, self.src_lane = src[o], src_lane[o]

    def ranges(self, pid: Any, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Index ranges [lo, hi) of the kernels launched in [start, end) by process ``pid``."""
        code = self.pid_ids.get(pid)
        if code is None:
            z = np.zeros(len(starts), np.int64)
            return z, z
        a, b = np.searchsorted(self.pcode, [code, code + 1])
        lo = a + np.searchsorted(self.t[a:b], starts, side="left")
        hi = a + np.searchsorted(self.t[a:b], ends, side="left")
        return lo, hi

    def inside(self, trace: Trace, rows: np.ndarray) -> np.ndarray:
        """Indexes (into this table) of the kernels launched inside any of the CPU slices
        ``rows``, each once (the occurrences are merged per process first)."""
        if not len(rows):
            return np.zeros(0, np.int64)
        pids = np.array([trace.lanes[i].pid for i in trace.lane_index(rows).tolist()],
                        dtype=object)
        parts = []
        for pid in _unique(pids.tolist()):
            r = rows[pids == pid]
            ws, we = iv.union(trace.start[r], trace.start[r] + trace.dur[r])
            lo, hi = self.ranges(pid, ws, we)
            parts.append(ranges_index(lo, hi))
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)


def _unique(values: list[Any]) -> list[Any]:
    """Distinct values in first-seen order (pids may mix ints and strings)."""
    return list(dict.fromkeys(values))


def ranges_index(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The indexes of disjoint ranges [lo, hi) as one array, in order."""
    lo, hi = np.asarray(lo, np.int64), np.asarray(hi, np.int64)
    n = np.maximum(hi - lo, 0)
    total = int(n.sum())
    if not total:
        return np.zeros(0, np.int64)
    keep = n > 0
    lo, n = lo[keep], n[keep]
    first = np.cumsum(n) - n
    return np.arange(total, dtype=np.int64) - np.repeat(first - lo, n)


def cpu_annotation_rows(trace: Trace) -> np.ndarray:
    """CPU ``user_annotation`` slices (not those drawn on GPU lanes)."""
    cat = trace.strings.find("user_annotation")
    rows = np.flatnonzero(trace.cat == cat) if cat >= 0 else np.zeros(0, np.int64)
    if not len(rows):
        return rows
    cpu = np.array([ln.kind == LANE_CPU for ln in trace.lanes] or [False])
    return rows[cpu[trace.lane_index(rows)]]


def phase_rows(trace: Trace, level: int | None = None) -> np.ndarray:
    """The annotation occurrences that make the phases: CPU ``user_annotation`` slices whose
    name repeats; at nesting depth ``level`` if given, else the innermost (those with no
    repeating annotation inside them on their lane)."""
    rows = cpu_annotation_rows(trace)
    if not len(rows):
        return rows
    names, counts = np.unique(trace.name[rows], return_counts=True)
    rows = rows[np.isin(trace.name[rows], names[counts >= 2])]
    if level is not None:
        return rows[trace.depth[rows] == level]
    lanes = trace.lane_index(rows)
    leaf = np.ones(len(rows), bool)
    s, e, d = trace.start[rows], trace.start[rows] + trace.dur[rows], trace.depth[rows]
    for order in _groups(s, lanes):  # per lane, by start
        ss, dd = s[order], d[order].astype(np.int64)
        # does a deeper one start inside it: the deepest of those starting in [its start,
        # its end), after it in this order (a range maximum, from a sparse table)
        lo = np.arange(1, len(order) + 1)
        hi = np.searchsorted(ss, e[order], side="left")
        deeper = _range_max(dd, lo, hi) > dd
        leaf[order[deeper]] = False
    return rows[leaf]


def _groups(by: np.ndarray, *keys: np.ndarray) -> list[np.ndarray]:
    """Indexes grouped by ``keys`` (the first varies slowest), each group in the order of
    ``by`` (stable): one sort, not a pass over everything per group."""
    if not len(by):
        return []
    order = np.lexsort((by, *reversed(keys)))
    new = np.zeros(len(order) - 1, bool)
    for k in keys:
        kk = k[order]
        new |= kk[1:] != kk[:-1]
    return np.split(order, np.flatnonzero(new) + 1)


def _range_max(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """max(values[lo:hi]) for each range (-inf-like for an empty one), vectorised: a sparse
    table of maxima over power-of-two spans."""
    n = len(values)
    out = np.full(len(lo), np.iinfo(np.int64).min, np.int64)
    ok = hi > lo
    if not n or not ok.any():
        return out
    table = [values.astype(np.int64)]
    while (1 << len(table)) <= n:  # level j: the max of values[i : i + 2**j]
        prev, step = table[-1], 1 << (len(table) - 1)
        table.append(np.maximum(prev[:-step], prev[step:]))
    lo, hi = lo[ok], hi[ok]
    k = (np.frexp((hi - lo).astype(np.float64))[1] - 1).astype(np.int64)  # ⌊log2⌋, exact
    got = np.empty(len(lo), np.int64)
    for level in np.unique(k).tolist():
        m = k == level
        t = table[level]
        got[m] = np.maximum(t[lo[m]], t[hi[m] - (1 << level)])
    out[ok] = got
    return out


def phase_occurrences(trace: Trace, level: int | None = None) -> np.ndarray:
    """The occurrences that own kernels: with ``level``, the repeating annotations at that
    depth; else every occurrence of a phase name (the names of :func:`phase_rows`), so that
    a phase nested in itself owns what its outer occurrence launched too."""
    rows = phase_rows(trace, level)
    if level is not None or not len(rows):
        return rows
    cpu = cpu_annotation_rows(trace)
    return cpu[np.isin(trace.name[cpu], np.unique(trace.name[rows]))]


class DeviceComp:
    """Per device, the union of its computation as a prefix-summed cover; and every lane's
    device (made once: figures are asked of many annotations)."""

    def __init__(self, trace: Trace, unions: "Sequence[DeviceUnions]") -> None:
        self.covers = {du.device: iv.Cover(du.comp) for du in unions}
        self.lane_dev = lane_devices(trace)

    def within(self, device: int, windows: iv.Intervals) -> int:
        c = self.covers.get(device)
        return c.within(windows) if c is not None else 0


def launch_figures(trace: Trace, classes: np.ndarray, rows: np.ndarray,
                   comp: DeviceComp) -> dict[str, Any]:
    """Figures of the GPU work ``rows`` (ns): per device the union of its communication and
    of its computation, the part of its communication that runs while *any* computation of
    that device runs (``comp``), and what is left exposed; summed over devices."""
    out = {"comm": 0, "comp": 0, "overlap": 0, "devices": []}
    if not len(rows):
        return out
    dev = comp.lane_dev[trace.lane_index(rows)]
    cls = classes[rows]
    s, e = trace.start[rows], trace.start[rows] + trace.dur[rows]
    for d in np.unique(dev).tolist():
        if d not in comp.covers:
            continue  # not a device the device figures have (no device number in the trace)
        m = dev == d
        mc = m & (cls == COMM)
        if mc.any():
            u = iv.union(s[mc], e[mc])
            out["comm"] += iv.total(u)
            out["overlap"] += comp.within(d, u)
        mp = m & (cls == COMP)
        if mp.any():
            out["comp"] += iv.total(iv.union(s[mp], e[mp]))
        out["devices"].append(int(d))
    return out


def exposed_of(trace: Trace, rows: np.ndarray, comp: DeviceComp, device: int) -> int:
    """Exposed time (ns) of the communication kernels ``rows`` of one device: their union
    minus all of the device's computation."""
    if not len(rows):
        return 0
    u = iv.union(trace.start[rows], trace.start[rows] + trace.dur[rows])
    return iv.total(u) - comp.within(device, u)


def lane_devices(trace: Trace) -> np.ndarray:
    """The device of every lane (-1: not a GPU's)."""
    return np.array([ln.device for ln in trace.lanes] or [-1], np.int64)


def gpu_work_rows(trace: Trace, classes: np.ndarray) -> np.ndarray:
    """Every GPU slice (kernels, memcpy, memset) on the stream lanes, in row order."""
    parts = [np.arange(ln.lo, ln.hi) for ln in trace.lanes if ln.kind == LANE_GPU]
    rows = np.concatenate(parts) if parts else np.zeros(0, np.int64)
    return rows[gpu_work(classes[rows])] if len(rows) else rows


class LaunchPhases:
    """The phase occurrence that launched each GPU kernel, and the phase whose kernels run at
    any instant on a device.

    A kernel's owner is the phase occurrence (among ``rows``) its launching call starts in,
    in the same process: the one on the launching thread if there is one, else the latest
    that started on another thread. The phases so partition the GPU work: each kernel is
    one phase's, or none's."""

    def __init__(self, trace: Trace, classes: np.ndarray, rows: np.ndarray,
                 launches: Launches | None = None) -> None:
        self.trace, self.classes = trace, classes
        self.rows = np.asarray(rows, np.int64)
        la = launches if launches is not None else Launches(trace, classes)
        owner = _owners(trace, la, self.rows)
        # owner by GPU row (sorted rows, for lookups)
        o = np.argsort(la.kern, kind="stable")
        self._kern, self._owner = la.kern[o], owner[o]
        self._devices: dict[int, dict[int, list[tuple[np.ndarray, ...]]]] | None = None

    @property
    def devices(self) -> dict[int, dict[int, list[tuple[np.ndarray, ...]]]]:
        """Per device and class, per (stream, depth): the kernels by start (they never
        overlap there), their ends, owners and rows; made on first use (the app's phase
        line needs it, the summary does not)."""
        if self._devices is None:
            tr, classes = self.trace, self.classes
            got: dict[int, dict[int, list[tuple[np.ndarray, ...]]]] = {}
            for ln in tr.lanes:
                if ln.kind != LANE_GPU or ln.count == 0:
                    continue
                for d in range(len(ln.depth_bounds) - 1):
                    lane_rows = np.arange(int(ln.depth_bounds[d]), int(ln.depth_bounds[d + 1]))
                    c = classes[lane_rows]
                    for cls in (COMM, COMP):
                        r = lane_rows[c == cls]
                        if len(r):
                            got.setdefault(ln.device, {}).setdefault(cls, []).append(
                                (tr.start[r], tr.start[r] + tr.dur[r], self.owner_of(r), r))
            self._devices = got
        return self._devices

    def __bool__(self) -> bool:
        return bool(len(self.rows))

    def _by(self, key: np.ndarray) -> dict[int, np.ndarray]:
        """The owned GPU rows grouped by ``key`` (one value per owned row)."""
        has = self._owner >= 0
        k = self._kern[has]
        order = np.argsort(key, kind="stable")
        k, key = k[order], key[order]
        if not len(key):
            return {}
        cut = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        return {int(key[c]): part for c, part in zip(cut.tolist(), np.split(k, cut[1:]))}

    def owned(self) -> dict[int, np.ndarray]:
        """Per phase occurrence row: the GPU rows it owns."""
        return self._by(self._owner[self._owner >= 0])

    def by_name(self) -> dict[int, np.ndarray]:
        """Per phase name id (every one): the GPU rows its occurrences own."""
        got = self._by(self.trace.name[self._owner[self._owner >= 0]].astype(np.int64))
        empty = np.zeros(0, np.int64)
        return {int(n): got.get(int(n), empty)
                for n in np.unique(self.trace.name[self.rows]).tolist()}

    def unowned(self, classes: np.ndarray) -> np.ndarray:
        """The GPU work no phase owns (launched outside every phase, or with no known
        launch), in row order."""
        rows = gpu_work_rows(self.trace, classes)
        mine = np.zeros(self.trace.slice_count, bool)
        mine[self._kern[self._owner >= 0]] = True
        return rows[~mine[rows]]

    def owner_of(self, gpu_rows: np.ndarray) -> np.ndarray:
        """The phase occurrence row owning each of ``gpu_rows`` (-1: none)."""
        gpu_rows = np.asarray(gpu_rows, np.int64)
        if not len(self._kern):
            return np.full(len(gpu_rows), -1, np.int64)
        k = np.minimum(np.searchsorted(self._kern, gpu_rows), len(self._kern) - 1)
        return np.where(self._kern[k] == gpu_rows, self._owner[k], -1)

    def kernel_at(self, device: int, cls: int, times: np.ndarray) -> np.ndarray:
        """For each time, the row of a ``cls`` kernel of ``device`` running then (the one that
        started last, over the device's streams), or -1."""
        t = np.asarray(times, np.int64)
        best_row = np.full(len(t), -1, np.int64)
        best_start = np.full(len(t), np.iinfo(np.int64).min, np.int64)
        for s, e, _own, r in self.devices.get(device, {}).get(cls, []):
            k = np.searchsorted(s, t, side="right") - 1
            kk = np.maximum(k, 0)
            better = (k >= 0) & (e[kk] > t) & (s[kk] > best_start)
            best_row[better] = r[kk[better]]
            best_start[better] = s[kk[better]]
        return best_row

    def bin_labels(self, device: int, edges: np.ndarray, samples: int = 8) -> np.ndarray:
        """Per bin [edges[i], edges[i+1]), the phase occurrence whose kernels run in it:
        the most frequent owner of the communication running at ``samples`` points of the
        bin, else of the computation, else of the first kernel that starts inside it."""
        e = np.asarray(edges, np.int64)
        nb = len(e) - 1
        out = np.full(max(nb, 0), -1, np.int64)
        if nb <= 0 or device not in self.devices:
            return out
        w = np.diff(e)
        frac = (np.arange(samples) + 0.5) / samples
        pts = (e[:-1, None] + (w[:, None] * frac[None, :]).astype(np.int64)).ravel()
        for cls in (COMM, COMP):
            todo = out < 0
            if not todo.any():
                break
            k = self.kernel_at(device, cls, pts).reshape(nb, samples)
            own = np.where(k >= 0, self.owner_of(np.maximum(k, 0).ravel()).reshape(nb, samples),
                           -1)
            for b in np.flatnonzero(todo & (own >= 0).any(axis=1)).tolist():
                vals = own[b][own[b] >= 0].tolist()
                out[b] = Counter(vals).most_common(1)[0][0]
            # a short kernel between the sample points
            for s, _e, o, _r in self.devices[device].get(cls, []):
                todo = out < 0
                if not todo.any():
                    break
                j = np.searchsorted(s, e[:-1], side="left")
                jj = np.minimum(j, len(s) - 1)
                inside = todo & (j < len(s)) & (s[jj] < e[1:]) & (o[jj] >= 0)
                out[inside] = o[jj[inside]]
        return out


def _owners(trace: Trace, la: Launches, rows: np.ndarray) -> np.ndarray:
    """Per kernel of ``la`` (in its order), the occurrence of ``rows`` that owns it, or -1:
    of the occurrences its launch starts in (same process), the innermost on the launching
    thread, else the latest-starting one on another thread."""
    owner = np.full(len(la.kern), -1, np.int64)
    if not len(rows) or not len(la.kern):
        return owner
    lanes, depth = trace.lane_index(rows), trace.depth[rows]
    starts = trace.start[rows]
    ends = starts + trace.dur[rows]
    # per (lane, depth) the occurrences never overlap: one binary search each; groups come
    # by lane, then depth, so a deeper one of a thread comes later (and wins)
    groups = _groups(starts, lanes, depth)
    # 1. the launching thread's own: each group searched by its own thread's launches
    by_lane = np.lexsort((la.t, la.src_lane))  # launches by thread, then time
    sl = la.src_lane[by_lane]
    for m in groups:
        lane = int(lanes[m[0]])
        a, b = np.searchsorted(sl, [lane, lane + 1])
        if a == b:
            continue
        idx = by_lane[a:b]
        _cover(starts[m], ends[m], rows[m], la.t[idx], idx, owner, None)
    # 2. else the latest-starting occurrence of another thread of the process
    rest = np.flatnonzero(owner < 0)  # in la's order: by process, then time
    if not len(rest):
        return owner
    best = np.full(len(la.kern), np.iinfo(np.int64).min, np.int64)
    rp, rt = la.pcode[rest], la.t[rest]
    for m in groups:
        code = la.pid_ids.get(trace.lanes[int(lanes[m[0]])].pid)
        if code is None:
            continue
        a, b = np.searchsorted(rp, [code, code + 1])
        a, b = a + np.searchsorted(rt[a:b], [starts[m][0], int(ends[m].max())], side="left")
        if a < b:
            _cover(starts[m], ends[m], rows[m], rt[a:b], rest[a:b], owner, best)
    return owner


def _cover(ms: np.ndarray, me: np.ndarray, mrows: np.ndarray, t: np.ndarray, idx: np.ndarray,
           owner: np.ndarray, best: np.ndarray | None) -> None:
    """Launches ``idx`` at times ``t`` that fall inside one of the disjoint occurrences
    [ms, me) (sorted): their owner becomes that occurrence (with ``best``: only if it
    started later than the owner they have)."""
    k = np.searchsorted(ms, t, side="right") - 1
    kk = np.maximum(k, 0)
    hit = (k >= 0) & (me[kk] > t)
    if best is not None:
        hit &= ms[kk] >= best[idx]
        best[idx[hit]] = ms[kk[hit]]
    owner[idx[hit]] = mrows[kk[hit]]


#: :func:`launch_delays` of GPU work whose launch is not known
NO_DELAY = np.iinfo(np.int64).min


def launch_delays(trace: Trace, rows: np.ndarray) -> np.ndarray:
    """Per GPU row: its start minus the start of the runtime call that launched it (ns), or
    :data:`NO_DELAY` where no launch is known."""
    lo = trace.launch_of
    rows = np.asarray(rows, np.int64)
    out = np.full(len(rows), NO_DELAY, np.int64)
    if not len(lo.rows) or not len(rows):
        return out
    k = np.minimum(np.searchsorted(lo.rows, rows.astype(lo.rows.dtype)), len(lo.rows) - 1)
    ok = lo.rows[k] == rows
    out[ok] = trace.start[rows[ok]] - trace.start[lo.values[k[ok]]]
    return out


def launch_summary(trace: Trace, row: int, show: int = 8) -> dict[str, Any] | None:
    """What a runtime call launched: count, streams, delays (kernel start − call start, ns),
    and the first ``show`` of them (name, lane, delay); None if it launched nothing."""
    kids = trace.launches(int(row))
    if not len(kids):
        return None
    kids = kids[np.argsort(trace.start[kids], kind="stable")]
    delay = trace.start[kids] - int(trace.start[row])
    lanes = trace.lane_index(kids)
    return {
        "count": int(len(kids)),
        "streams": sorted({trace.lanes[i].name for i in np.unique(lanes).tolist()}),
        "delay_min_ns": int(delay.min()), "delay_max_ns": int(delay.max()),
        "delay_median_ns": int(np.median(delay)),
        "first": [{"row": int(k), "name": trace.name_of(int(k)),
                   "lane": trace.lanes[int(ln)].name, "delay_ns": int(d)}
                  for k, ln, d in zip(kids[:show].tolist(), lanes[:show].tolist(),
                                      delay[:show].tolist())],
    }
