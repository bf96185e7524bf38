"""The in-memory index: lanes of slices as numpy columns, and the queries the UI uses.

All slices live in global columns sorted by (lane, start, longest first); a :class:`Lane` is a
range of rows. Times are int64 nanoseconds relative to the trace start. Within one
(lane, depth) slices never overlap, so the busy time of any window is two ``searchsorted``
calls on a prefix sum of durations.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from . import _alloc
from .events import args_of as event_args
from .strings import StringTable

if TYPE_CHECKING:  # pragma: no cover
    from .loader import Loader, PieceTable

LANE_GPU = "gpu"  # one GPU stream: kernels, memcpy, memset
LANE_GPU_ANNOTATION = "gpu_annotation"  # gpu_user_annotation spans of one stream
LANE_CPU = "cpu"  # one CPU thread (or any other pid/tid)

_NUM = re.compile(r"(-?\d+)")


class DepthIndex:
    """The slices of one (lane, depth): rows [lo, hi) of the trace's columns, sorted by start.

    Slices at one depth never overlap, so ends are sorted too and a prefix sum of durations
    answers "how busy is [t0, t1)" with two binary searches. Starts are a view of the
    global column; ends and the prefix sum are made on first use.
    """

    __slots__ = ("lo", "hi", "starts", "_dur", "_ends", "_cum")

    def __init__(self, lo: int, hi: int, start: np.ndarray, dur: np.ndarray) -> None:
        self.lo, self.hi = lo, hi
        self.starts = start[lo:hi]
        self._dur = dur[lo:hi]
        self._ends: np.ndarray | None = None
        self._cum: np.ndarray | None = None

    def __len__(self) -> int:
        return self.hi - self.lo

    @property
    def ends(self) -> np.ndarray:
        if self._ends is None:
            self._ends = self.starts + self._dur
        return self._ends

    @property
    def cum(self) -> np.ndarray:
        """cum[k] = total duration of the first k slices."""
        if self._cum is None:
            cum = np.zeros(len(self._dur) + 1, np.int64)
            np.cumsum(self._dur, out=cum[1:])
            self._cum = cum
        return self._cum

    def busy_before(self, t: np.ndarray | int) -> np.ndarray:
        """Covered time in (-inf, t) for each t: O(log n) each."""
        t = np.asarray(t, dtype=np.int64)
        k = np.searchsorted(self.starts, t, side="right")
        total = self.cum[k]
        if not len(self.starts):
            return total
        last = np.maximum(k - 1, 0)
        over = np.where(k > 0, np.maximum(self.ends[last] - t, 0), 0)
        return total - over


@dataclass
class Lane:
    """One horizontal lane of the timeline (a GPU stream, its annotations, or a CPU thread).

    Its slices are rows [lo, hi) of the trace's columns, grouped by depth and sorted by
    start within a depth; ``depth_bounds[d]`` is where depth d begins.
    """

    index: int
    name: str
    kind: str
    pid: Any
    tid: Any
    device: int  # -1 if not a GPU lane
    stream: int  # -1 if not a GPU lane
    lo: int
    hi: int
    depth_bounds: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))
    process: str = ""
    thread: str = ""
    instants: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # instant rows
    _trace: "Trace | None" = field(default=None, repr=False)
    _depths: dict[int, DepthIndex] = field(default_factory=dict, repr=False)

    @property
    def count(self) -> int:
        return self.hi - self.lo

    @property
    def max_depth(self) -> int:
        return max(len(self.depth_bounds) - 2, 0)

    def depth_index(self, depth: int) -> DepthIndex:
        got = self._depths.get(depth)
        if got is None:
            tr = self._trace
            assert tr is not None
            if 0 <= depth < len(self.depth_bounds) - 1:
                lo, hi = int(self.depth_bounds[depth]), int(self.depth_bounds[depth + 1])
            else:
                lo = hi = self.hi
            got = DepthIndex(lo, hi, tr.start, tr.dur)
            self._depths[depth] = got
        return got

    def busy(self, t0: int, t1: int, depth: int = 0) -> int:
        """Time in [t0, t1) covered by this lane's slices at ``depth``."""
        b = self.depth_index(depth).busy_before(np.array([t0, t1], np.int64))
        return int(b[1] - b[0])

    def busy_bins(self, edges: np.ndarray, depth: int = 0) -> np.ndarray:
        """Covered time in each bin [edges[i], edges[i+1]): one vectorised call per frame."""
        b = self.depth_index(depth).busy_before(np.asarray(edges, np.int64))
        return np.diff(b)

    def slices_in(self, t0: int, t1: int, depth: int | None = None) -> np.ndarray:
        """Global rows of the slices overlapping [t0, t1), ordered by depth then start."""
        depths = range(self.max_depth + 1) if depth is None else (depth,)
        parts = []
        for d in depths:
            di = self.depth_index(d)
            if not len(di):
                continue
            lo = int(np.searchsorted(di.ends, t0, side="right"))
            hi = int(np.searchsorted(di.starts, t1, side="left"))
            # zero-length slices exactly at t0 count as inside
            while lo > 0 and di.ends[lo - 1] == t0 and di.starts[lo - 1] == t0:
                lo -= 1
            if hi > lo:
                parts.append(np.arange(di.lo + lo, di.lo + hi, dtype=np.int64))
        if not parts:
            return np.zeros(0, np.int64)
        return np.concatenate(parts)

    def slice_at(self, t: int, depth: int) -> int:
        """Row of the slice at ``depth`` covering time t, or -1."""
        di = self.depth_index(depth)
        k = int(np.searchsorted(di.starts, t, side="right")) - 1
        if k >= 0 and (di.ends[k] > t or di.starts[k] == t):
            return di.lo + k
        return -1


class SparseColumn:
    """An int64 value for some slices only: sorted slice rows and their values (-1 if none)."""

    def __init__(self, rows: np.ndarray, values: np.ndarray) -> None:
        if len(rows) > 1 and not (rows[1:] >= rows[:-1]).all():
            order = np.argsort(rows, kind="stable")
            rows, values = rows[order], values[order]
        self.rows = rows
        self.values = values

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> int:
        # the key in the array's own dtype: a Python int would make numpy convert the whole
        # int32 column to int64 first (milliseconds per lookup at millions of rows)
        k = int(np.searchsorted(self.rows, self.rows.dtype.type(i)))
        return int(self.values[k]) if k < len(self.rows) and self.rows[k] == i else -1

    @property
    def nbytes(self) -> int:
        return self.rows.nbytes + self.values.nbytes


@dataclass
class CounterTrack:
    name: str  # "Memory · Total Allocated"
    pid: Any
    series: str
    ts: np.ndarray  # int64 ns relative
    values: np.ndarray  # float64


@dataclass
class KernelFields:
    """Typed columns of GPU work (kernels, memcpy, memset), one row per GPU slice."""

    slice: np.ndarray  # global slice row, sorted
    grid: np.ndarray  # (n, 3) int32
    block: np.ndarray  # (n, 3) int32
    registers: np.ndarray
    shared_memory: np.ndarray
    blocks_per_sm: np.ndarray
    warps_per_sm: np.ndarray
    occupancy: np.ndarray
    bytes: np.ndarray
    bandwidth: np.ndarray

    def row_of(self, i: int) -> int:
        k = int(np.searchsorted(self.slice, self.slice.dtype.type(i)))
        return k if k < len(self.slice) and self.slice[k] == i else -1


class Trace:
    """A loaded (or still loading) trace. Build it with :func:`tracetui.trace.load`."""

    path: str
    size: int
    compressed: bool
    complete: bool  # False for a snapshot taken while loading
    truncated: bool
    warnings: list[str]
    t0_abs_ns: int  # absolute time of the trace start (file units converted to ns)
    end_ns: int  # trace span: [0, end_ns)
    strings: StringTable
    lanes: list[Lane]
    # global slice columns, grouped by lane, then by depth, sorted by start within a depth
    lane_bounds: np.ndarray  # lane k is rows [lane_bounds[k], lane_bounds[k+1])
    start: np.ndarray
    dur: np.ndarray
    name: np.ndarray
    cat: np.ndarray
    depth: np.ndarray
    row: np.ndarray  # args row
    # instants
    inst_lane: np.ndarray
    inst_ts: np.ndarray
    inst_name: np.ndarray
    inst_cat: np.ndarray
    inst_row: np.ndarray
    counters: list[CounterTrack]
    kernels: KernelFields
    launch_of: SparseColumn  # GPU slice -> row of the runtime call that launched it
    correlation: SparseColumn  # correlation id (runtime calls and GPU work)
    external_id: SparseColumn  # External id (runtime calls and GPU work)
    flow_src: np.ndarray  # flow links between slices (rows), cat id
    flow_dst: np.ndarray
    flow_cat: np.ndarray
    header: dict[str, Any]
    events: int
    phase_counts: dict[str, int]
    bytes_read: int
    pieces: "PieceTable"  # re-reads any event from the file (args are not kept in memory)
    extra_args: dict[int, dict]  # args given on an "E", by the row of its "B"

    # ------------------------------------------------------------------------ basic facts
    @property
    def slice_count(self) -> int:
        return len(self.start)

    @property
    def end(self) -> np.ndarray:
        return self.start + self.dur

    @property
    def devices(self) -> list[int]:
        return sorted({ln.device for ln in self.lanes if ln.kind == LANE_GPU and ln.device >= 0})

    @property
    def device_properties(self) -> list[dict]:
        dp = self.header.get("deviceProperties")
        return dp if isinstance(dp, list) else []

    @property
    def distributed_info(self) -> dict:
        di = self.header.get("distributedInfo")
        return di if isinstance(di, dict) else {}

    def lane_of(self, i: int) -> Lane:
        return self.lanes[int(np.searchsorted(self.lane_bounds, i, side="right")) - 1]

    def lane_index(self, rows: np.ndarray) -> np.ndarray:
        """Lane index of each of ``rows`` (vectorised)."""
        return np.searchsorted(self.lane_bounds, rows, side="right") - 1

    def name_of(self, i: int) -> str:
        return self.strings[int(self.name[i])]

    def cat_of(self, i: int) -> str:
        return self.strings[int(self.cat[i])]

    def find_lane(self, name: str) -> Lane | None:
        for ln in self.lanes:
            if ln.name == name:
                return ln
        return None

    # ------------------------------------------------------------------------ queries
    def raw_event(self, i: int) -> dict[str, Any] | None:
        """The event of slice ``i`` as the file has it (re-read from disk)."""
        ev = self.pieces.event(int(self.row[i]))
        if ev is None:
            return None
        out = {f: getattr(ev, f) for f in ev.__struct_fields__ if f != "args"
               and getattr(ev, f) is not None}
        out["args"] = event_args(ev)
        return out

    def args_of(self, i: int) -> Any:
        ev = self.raw_event(i)
        args = ev.get("args") if ev is not None else None
        extra = self.extra_args.get(int(self.row[i]))
        if extra:
            args = {**(args if isinstance(args, dict) else {}), **extra}
        return args

    def parent_of(self, i: int) -> int:
        """Row of the enclosing slice one level up on the same lane, or -1."""
        d = int(self.depth[i])
        if d == 0:
            return -1
        return self.lane_of(i).slice_at(int(self.start[i]), d - 1)

    def ancestors(self, i: int) -> list[int]:
        out = []
        p = self.parent_of(i)
        while p >= 0:
            out.append(p)
            p = self.parent_of(p)
        return out

    @cached_property
    def _launch_sorted(self) -> tuple[np.ndarray, np.ndarray]:
        src, dst = self.launch_of.values, self.launch_of.rows
        order = np.argsort(src, kind="stable")
        return src[order], dst[order]

    def launched_by(self, i: int) -> int:
        """For GPU work: row of the runtime call (cudaLaunchKernel, ...) that launched it."""
        return self.launch_of[i]

    def launches(self, i: int) -> np.ndarray:
        """For a runtime call: rows of the GPU work it launched."""
        src, dst = self._launch_sorted
        lo, hi = np.searchsorted(src, np.array([i, i + 1], src.dtype))
        return dst[lo:hi]

    def flows_from(self, i: int) -> np.ndarray:
        return self.flow_dst[self.flow_src == i]

    def flows_to(self, i: int) -> np.ndarray:
        return self.flow_src[self.flow_dst == i]

    def detail(self, i: int) -> dict[str, Any]:
        """Everything known about slice ``i``, as plain data (for the detail pane and JSON)."""
        i = int(i)
        lane = self.lane_of(i)
        out: dict[str, Any] = {
            "row": i,
            "name": self.name_of(i),
            "cat": self.cat_of(i),
            "lane": lane.name,
            "pid": lane.pid,
            "tid": lane.tid,
            "depth": int(self.depth[i]),
            "start_ns": int(self.start[i]),
            "dur_ns": int(self.dur[i]),
            "end_ns": int(self.start[i] + self.dur[i]),
            "args": self.args_of(i),
        }
        if out["args"] is None:
            problem = self.pieces.source.reread_problem()
            if problem:
                out["args_unavailable"] = problem
        if self.correlation[i] >= 0:
            out["correlation"] = self.correlation[i]
        if self.external_id[i] >= 0:
            out["external_id"] = self.external_id[i]
        k = self.kernels.row_of(i)
        if k >= 0:
            kf = self.kernels
            out["kernel"] = {
                "grid": [int(x) for x in kf.grid[k]],
                "block": [int(x) for x in kf.block[k]],
                "registers_per_thread": int(kf.registers[k]),
                "shared_memory": int(kf.shared_memory[k]),
                "blocks_per_sm": float(kf.blocks_per_sm[k]),
                "warps_per_sm": float(kf.warps_per_sm[k]),
                "occupancy_pct": float(kf.occupancy[k]),
                "bytes": int(kf.bytes[k]),
                "bandwidth_gbps": float(kf.bandwidth[k]),
            }
        src = self.launched_by(i)
        if src >= 0:
            chain = [src, *self.ancestors(src)]
            out["launched_by"] = [{"row": r, "name": self.name_of(r), "lane": self.lane_of(r).name}
                                  for r in chain]
        kids = self.launches(i)
        if len(kids):
            out["launches"] = [int(r) for r in kids[:64]]
        fl = self.flows_from(i)
        if len(fl):
            out["flows_out"] = [int(r) for r in fl[:64]]
        fl = self.flows_to(i)
        if len(fl):
            out["flows_in"] = [int(r) for r in fl[:64]]
        return out


# ----------------------------------------------------------------------------- building


def _sort_key(v: Any) -> tuple[int, float, str]:
    """Numbers before strings; strings with a number ("stream 7") sort by that number."""
    if isinstance(v, bool):
        v = int(v)
    if isinstance(v, (int, float)):
        return (0, float(v), "")
    s = str(v)
    m = _NUM.search(s)
    return (1, float(m.group(1)) if m else float("inf"), s)


def _stream_number(tid: Any) -> int:
    if isinstance(tid, int):
        return tid
    m = _NUM.search(str(tid))
    return int(m.group(1)) if m else -1


_SEGMENT = 1 << 16


def _by_start_longest_first(idx: np.ndarray, s: np.ndarray,
                            dur: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One lane's rows (``idx``, their starts ``s``) in (start, longest first) order, with
    their durations (looked up in ``dur`` once in order). A stable sort by start, then only
    the runs of equal starts out of order (few) by duration: a lexsort of the whole lane
    would hold several lane-sized temporaries at once, on the largest lane of the trace."""
    if len(s) > 1 and not (s[1:] >= s[:-1]).all():
        o = np.argsort(s, kind="stable")
        idx = idx[o]  # one at a time: the temporaries of a long lane add up
        s = s[o]
        del o
    d = dur[idx]
    tie = np.flatnonzero((s[1:] == s[:-1]) & (d[1:] > d[:-1]))
    if len(tie):  # runs of equal starts out of order: each sorted by -dur (stable)
        vals = np.unique(s[tie])
        for a, b in zip(np.searchsorted(s, vals, "left").tolist(),
                        np.searchsorted(s, vals, "right").tolist()):
            o = np.argsort(-d[a:b], kind="stable")
            idx[a:b], d[a:b] = idx[a:b][o], d[a:b][o]
    return idx, s, d


def compute_depth(start: np.ndarray, dur: np.ndarray) -> np.ndarray:
    """Nesting depth of one lane's slices, sorted by (start, longest first).

    Long lanes are cut where nothing is open (a slice starts after every earlier one has
    ended) into segments of about 64 K slices, whose depths are independent: the
    temporaries stay the size of a segment, not of the lane.
    """
    n = len(start)
    if n <= _SEGMENT:
        return _depth_segment(start, dur)
    reach = start + dur
    np.maximum.accumulate(reach, out=reach)
    free = np.empty(n, bool)  # nothing open before these rows
    free[0] = False
    np.greater_equal(start[1:], reach[:-1], out=free[1:])
    del reach
    edges = [0]
    at = _SEGMENT
    while at < n:  # the first free row at or after every _SEGMENT rows
        k = int(free[at:].argmax())
        if not free[at + k]:
            break
        edges.append(at + k)
        at = at + k + _SEGMENT
    del free
    edges.append(n)
    parts = [_depth_segment(start[a:b], dur[a:b]) for a, b in zip(edges, edges[1:]) if b > a]
    dtype = np.int32 if any(p.dtype == np.int32 for p in parts) else np.int16
    return np.concatenate(parts).astype(dtype, copy=False)


def _depth_segment(start: np.ndarray, dur: np.ndarray) -> np.ndarray:
    """depth_i = i - #{earlier slices closed by start_i}, for all slices at once: one sort of
    the ends and a binary search. If slices overlap without nesting (some traces do), a
    stack pass assigns depths instead, which keeps the invariant the index relies on:
    slices at one depth never overlap.
    """
    n = len(start)
    if n == 0:
        return np.zeros(0, np.int16)
    end = start + dur
    closed = np.searchsorted(np.sort(end), start, side="right")  # any j with end_j <= start_i
    zero = dur == 0
    if zero.any():
        # Zero-length slices with i's own start that sort at or after i ended "by" start_i
        # but are not earlier than i: take them back out.
        zs = start[zero]
        run_end = np.searchsorted(start, start, side="right")
        nz = np.searchsorted(zs, start, side="right") - np.searchsorted(zs, start, side="left")
        first_zero = run_end - nz
        del nz, zs
        np.maximum(first_zero, np.arange(n), out=first_zero)
        np.subtract(run_end, first_zero, out=run_end)
        closed -= np.maximum(run_end, 0)
        del run_end, first_zero
    del zero
    depth = np.subtract(np.arange(n), closed, out=closed)  # in place: closed is not needed
    ok = not (depth < 0).any()
    depth = depth.astype(np.int16 if depth.max(initial=0) < 2**15 else np.int32)
    if ok and n > 1:
        # the invariant: within one depth (in start order) nothing starts before the
        # previous slice has ended
        order = np.argsort(depth, kind="stable")
        d_o = depth[order]
        same = d_o[1:] == d_o[:-1]
        e_o = end[order]
        s_o = start[order]
        ok = not (same & (s_o[1:] < e_o[:-1])).any()
    if not ok:
        depth = _depth_stack(start, end)
    return depth


def _depth_stack(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    out = np.zeros(len(start), np.int32)  # pure Python: only for improperly nested lanes
    stack: list[int] = []
    for i, (s, e) in enumerate(zip(start.tolist(), end.tolist())):
        while stack and stack[-1] <= s:
            stack.pop()
        out[i] = len(stack)
        stack.append(e)
    return out


def build_trace(loader: "Loader", final: bool) -> Trace:
    """Turn what a Loader has gathered so far into a :class:`Trace` (a consistent snapshot)."""
    b = loader.builder
    with b.lock:
        # slices: X events, ended B/E pairs, and B events still open (dur -1 for now)
        ob = np.array([(lane, s, nm, ct, row) for lane, st in b.open_b.items()
                       for (s, nm, ct, row) in st], dtype=np.int64).reshape(-1, 5)
        extra = {"lane": ob[:, 0], "start": ob[:, 1], "dur": np.full(len(ob), -1, np.int64),
                 "name": ob[:, 2], "cat": ob[:, 3], "row": ob[:, 4]}
        sl, eb = b.slices.view(), b.ended_b.view()
        if len(ob) or len(eb["lane"]):
            cols = {k: np.concatenate([sl[k], eb[k], extra[k].astype(dt)])
                    for k, dt in b.slices.dtypes.items()}
        else:
            cols = sl  # views of the builder's columns: nothing below writes into them
        del extra, sl, eb
        inst = b.instants.view()
        cs = b.counter_samples.view()
        gpu = b.gpu.view()
        corr = b.corr.view()
        ext = b.ext.view()
        flows = b.flows.view()
        lane_keys = [(lk.pid, lk.tid, lk.sub, lk.gpu, lk.device, lk.stream) for lk in b.lanes]
        counter_tracks = list(b.counter_tracks)
        meta = (dict(b.process_names), dict(b.process_labels), dict(b.process_sort),
                dict(b.thread_names), dict(b.thread_sort))
        skipped, notes = dict(b.skipped), dict(b.notes)
        events, phase_counts = b.events, dict(b.phase_counts)
        n_rows = b.items
        header = dict(b.header)
        non_text = b.strings.non_text
        if final:  # the trace takes over; the builder's copies would only double the memory
            for c in (b.slices, b.ended_b, b.instants, b.counter_samples, b.gpu, b.corr,
                      b.ext, b.flows):
                c.clear()

    lane, start, dur, name, cat, row = (cols.pop(k) for k in
                                        ("lane", "start", "dur", "name", "cat", "row"))
    if len(row) and row.max() < 2**31:
        row = row.astype(np.int32)

    # ---- time origin and span
    firsts = [a.min() for a in (start, inst["ts"], cs["ts"]) if len(a)]
    t0 = int(min(firsts)) if firsts else 0
    start = start - t0
    ends = [int((start + np.maximum(dur, 0)).max())] if len(start) else []
    if len(inst["ts"]):
        ends.append(int(inst["ts"].max()) - t0)
    if len(cs["ts"]):
        ends.append(int(cs["ts"].max()) - t0)
    end_ns = max(ends) if ends else 0
    if len(ob):
        dur[-len(ob):] = np.maximum(end_ns - start[-len(ob):], 0)

    _alloc.trim()
    # ---- lanes: name, kind, order
    pnames, plabels, psort, tnames, tsort = meta
    used = np.zeros(len(lane_keys), bool)
    used[np.unique(lane)] = True
    if len(inst["lane"]):
        used[np.unique(inst["lane"])] = True
    infos = []
    for li, (pid, tid, sub, is_gpu, device, stream) in enumerate(lane_keys):
        if not used[li]:
            continue
        label = plabels.get(pid, "")
        gpu_proc = is_gpu or bool(re.match(r"GPU\s*\d+", label)) or sub == "annotations"
        if gpu_proc:
            if device < 0:
                m = _NUM.search(label)
                device = int(m.group(1)) if m else (pid if isinstance(pid, int) else -1)
            if stream < 0:
                stream = _stream_number(tid)
            kind = LANE_GPU_ANNOTATION if sub == "annotations" else LANE_GPU
            lname = f"GPU {device} · stream {stream}"
            if sub == "annotations":
                lname += " · annotations"
            process, thread = label or f"GPU {device}", f"stream {stream}"
        else:
            kind = LANE_CPU
            device = stream = -1
            pn = pnames.get(pid, "")
            if pid in ("", None) and tid in ("", None):
                process, thread = "global", ""
            else:
                numeric = isinstance(pid, int)
                if pn:
                    process = f"{pn} {pid}" if numeric and str(pid) not in pn else pn
                else:
                    process = f"pid {pid}" if numeric else str(pid)  # Kineto's "Spans"
                thread = tnames.get((pid, tid), "").strip() or (
                    f"thread {tid}" if isinstance(tid, int) else str(tid))
            lname = f"{process} · {thread}" if thread else process
        pkey = (0 if gpu_proc else 1, psort.get(pid, float("nan")), _sort_key(pid))
        if pkey[1] != pkey[1]:  # no sort index: by pid
            pkey = (pkey[0], float("inf"), _sort_key(pid))
        # a stream's annotation lane comes right after the stream itself
        tkey = (tsort.get((pid, tid), float("inf")), _sort_key(tid), 1 if sub else 0)
        infos.append((pkey, tkey, li, lname, kind, pid, tid, device, stream, process, thread))
    infos.sort(key=lambda x: (x[0], x[1]))
    remap = np.full(len(lane_keys) + 1, -1, np.int32)
    for new, info in enumerate(infos):
        remap[info[2]] = new
    lane = remap[lane]
    inst_lane = remap[inst["lane"]] if len(inst["lane"]) else np.zeros(0, np.int32)

    # ---- order: by lane; within a lane by depth, then start (longest first on ties), so
    # that every (lane, depth) is a contiguous, start-sorted range of rows. Sorting lane by
    # lane keeps the temporaries the size of one lane, not of the whole trace.
    by_lane = np.argsort(lane, kind="stable")
    if len(by_lane) < 2**31:  # half the memory for the order and every lane's share of it
        by_lane = by_lane.astype(np.int32)
    bounds = np.zeros(len(infos) + 1, np.int64)
    np.cumsum(np.bincount(lane, minlength=len(infos))[: len(infos)], out=bounds[1:])
    del lane
    depth = np.zeros(len(start), np.int16)
    for new in range(len(infos)):
        lo, hi = int(bounds[new]), int(bounds[new + 1])
        idx = by_lane[lo:hi]
        idx, s, d = _by_start_longest_first(idx, start[idx], dur)
        dep = compute_depth(s, d)
        del s, d
        o = np.argsort(dep, kind="stable")  # group by depth, keeping start order
        by_lane[lo:hi] = idx[o]
        if dep.dtype != depth.dtype:
            depth = depth.astype(dep.dtype)
        depth[lo:hi] = dep[o]
        del idx, o, dep
    # one column at a time: each old column is freed as soon as its sorted copy exists
    start = start[by_lane]
    dur = dur[by_lane]
    name = name[by_lane]
    cat = cat[by_lane]
    row = row[by_lane]
    del by_lane
    lanes: list[Lane] = []
    for new, info in enumerate(infos):
        lo, hi = int(bounds[new]), int(bounds[new + 1])
        dmax = int(depth[lo:hi].max(initial=0)) if hi > lo else -1
        dbounds = lo + np.searchsorted(depth[lo:hi], np.arange(dmax + 2))
        _, _, _, lname, kind, pid, tid, device, stream, process, thread = info
        lanes.append(Lane(index=new, name=lname, kind=kind, pid=pid, tid=tid, device=device,
                          stream=stream, lo=lo, hi=hi, depth_bounds=dbounds.astype(np.int64),
                          process=process, thread=thread))

    _alloc.trim()
    # ---- args row -> slice row
    slice_of_row = np.full(n_rows + 1, -1, np.int32 if len(row) < 2**31 else np.int64)
    slice_of_row[row] = np.arange(len(row))

    correlation = _per_slice(slice_of_row, corr["row"], corr["value"])
    external_id = _per_slice(slice_of_row, ext["row"], ext["value"])
    del corr, ext

    # ---- GPU typed fields
    g_slice = slice_of_row[gpu["row"]] if len(gpu["row"]) else np.zeros(0, np.int64)
    keep = g_slice >= 0
    keep_all = bool(keep.all())
    g_order = np.argsort(g_slice[keep], kind="stable")

    def gcol(k: str, cols: dict[str, np.ndarray] = gpu) -> np.ndarray:
        col = cols.pop(k)  # the builder's column is freed as soon as it is copied
        return (col if keep_all else col[keep])[g_order]

    kernels = KernelFields(
        slice=g_slice[keep][g_order],
        grid=np.stack([gcol("gx"), gcol("gy"), gcol("gz")], axis=1),
        block=np.stack([gcol("bx"), gcol("by"), gcol("bz")], axis=1),
        registers=gcol("regs"), shared_memory=gcol("smem"), blocks_per_sm=gcol("blocks_per_sm"),
        warps_per_sm=gcol("warps_per_sm"), occupancy=gcol("occupancy"), bytes=gcol("bytes"),
        bandwidth=gcol("bandwidth"))

    # ---- launch links through correlation: GPU work -> runtime call
    is_gpu_slice = np.zeros(len(start), bool)
    is_gpu_slice[kernels.slice] = True
    on_gpu = is_gpu_slice[correlation.rows]
    cpu_side, cpu_corr = correlation.rows[~on_gpu], correlation.values[~on_gpu]
    gpu_side, gpu_corr = correlation.rows[on_gpu], correlation.values[on_gpu]
    del is_gpu_slice
    launch_src = np.zeros(0, np.int64)
    launch_dst = np.zeros(0, np.int64)
    if len(cpu_side) and len(gpu_side):
        o = np.argsort(cpu_corr, kind="stable")
        cv, cpu_sorted = cpu_corr[o], cpu_side[o]
        k = np.minimum(np.searchsorted(cv, gpu_corr), len(cv) - 1)
        hit = cv[k] == gpu_corr
        launch_dst, launch_src = gpu_side[hit], cpu_sorted[k[hit]]
    launch_of = SparseColumn(launch_dst, launch_src)
    del slice_of_row, gpu, launch_dst, launch_src, cpu_side, cpu_corr, gpu_side, gpu_corr

    _alloc.trim()
    # ---- flows: resolve endpoints to slices, then link consecutive endpoints of one flow
    tr = Trace()
    tr.start, tr.dur, tr.depth = start, dur, depth
    tr.lane_bounds = np.array([ln.lo for ln in lanes] + [len(start)], np.int64)
    for ln in lanes:
        ln._trace = tr
    flow_src, flow_dst, flow_cat = _resolve_flows(flows, remap, t0, lanes)
    del flows

    _alloc.trim()
    # ---- instants, counters
    inst_ts = inst["ts"] - t0
    io = np.lexsort((inst_ts, inst_lane)) if len(inst_ts) else np.zeros(0, np.int64)
    inst_lane, inst_ts = inst_lane[io], inst_ts[io]
    inst_bounds = np.searchsorted(inst_lane, np.arange(len(lanes) + 1))
    for ln in lanes:
        ln.instants = np.arange(inst_bounds[ln.index], inst_bounds[ln.index + 1])
    counters = []
    if len(cs["track"]):
        co = np.lexsort((cs["ts"], cs["track"]))
        trk, cts, cval = cs["track"][co], cs["ts"][co] - t0, cs["value"][co]
        cb = np.searchsorted(trk, np.arange(len(counter_tracks) + 1))
        for ti, (pid, cname, cid, series) in enumerate(counter_tracks):
            lo, hi = int(cb[ti]), int(cb[ti + 1])
            label = cname if series in ("value", "") else f"{cname} · {series}"
            if cid is not None:
                label += f" #{cid}"
            counters.append(CounterTrack(name=label, pid=pid, series=series, ts=cts[lo:hi],
                                         values=cval[lo:hi]))

    # ---- warnings
    warnings = list(loader.warnings)
    for reason, n in sorted(skipped.items()):
        warnings.append(f"skipped {n:,} events: {reason}")
    for reason, n in sorted(notes.items()):
        warnings.append(f"{n:,} {reason}")
    if len(ob) and final:
        warnings.append(f"{len(ob):,} B events never ended (shown up to the end of the trace)")
    if non_text:
        warnings.append(f"{non_text:,} names or categories were not strings (kept as text)")

    src = loader.source
    tr.path, tr.size, tr.compressed = src.path, src.size, src.compressed
    tr.complete = final and not loader.cancelled
    tr.truncated = loader.truncated
    tr.warnings = warnings
    tr.t0_abs_ns = t0
    tr.end_ns = end_ns
    tr.strings = b.strings
    tr.lanes = lanes
    tr.name, tr.cat, tr.row = name, cat, row
    tr.inst_lane, tr.inst_ts = inst_lane, inst_ts
    tr.inst_name, tr.inst_cat, tr.inst_row = inst["name"][io], inst["cat"][io], inst["row"][io]
    tr.counters = counters
    tr.kernels = kernels
    tr.launch_of = launch_of
    tr.correlation, tr.external_id = correlation, external_id
    tr.flow_src, tr.flow_dst, tr.flow_cat = flow_src, flow_dst, flow_cat
    tr.header = header
    tr.events = events
    tr.phase_counts = phase_counts
    tr.bytes_read = loader.bytes_done
    tr.pieces = loader.pieces
    tr.extra_args = b.extra_args
    return tr


def _per_slice(slice_of_row: np.ndarray, rows: np.ndarray, values: np.ndarray) -> SparseColumn:
    """(file row, value) pairs as a sparse column over slice rows."""
    idx = slice_of_row[rows]
    ok = idx >= 0
    return SparseColumn(idx[ok], values[ok])


def _resolve_flows(flows: dict[str, np.ndarray], remap: np.ndarray, t0: int,
                   lanes: list[Lane]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(flows["key"])
    empty = np.zeros(0, np.int64)
    if n == 0:
        return empty, empty, np.zeros(0, np.int32)
    ts = flows["ts"]  # absolute: the lane loop subtracts t0 on its own (smaller) arrays
    enclosing = flows["enclosing"]
    target = np.full(n, -1, np.int32 if sum(ln.count for ln in lanes) < 2**31 else np.int64)
    lane = remap[flows["lane"]]
    order = np.argsort(lane, kind="stable")
    lb = np.zeros(len(lanes) + 1, np.int64)
    np.cumsum(np.bincount(lane[lane >= 0], minlength=len(lanes))[: len(lanes)], out=lb[1:])
    lb += int((lane < 0).sum())  # endpoints on lanes that hold nothing sort first
    del lane
    for ln in lanes:
        idx = order[lb[ln.index] : lb[ln.index + 1]]
        if len(idx) == 0 or ln.count == 0:
            continue
        t = ts[idx] - t0
        best = np.full(len(idx), -1, target.dtype)
        for d in range(ln.max_depth + 1):  # deepest enclosing slice wins
            di = ln.depth_index(d)
            if not len(di):
                continue
            k = np.searchsorted(di.starts, t, side="right") - 1
            inside = k >= 0
            np.maximum(k, 0, out=k)
            s0 = di.starts[k]
            inside &= (s0 + di._dur[k] > t) | (s0 == t)
            del s0
            k += di.lo
            np.copyto(best, k, where=inside, casting="unsafe")
            del k, inside
        # "next slice" binding for f events without bp=e when nothing encloses them
        nxt = (best < 0) & (enclosing[idx] == 0)
        if nxt.any():
            di = ln.depth_index(0)
            k = np.searchsorted(di.starts, t[nxt], side="left")
            ok = k < len(di.starts)
            cand = np.full(int(nxt.sum()), -1, np.int64)
            cand[ok] = di.lo + k[ok]
            best[nxt] = cand
        target[idx] = best
    del order, ts
    # The caller hands its columns over: each is dropped from ``flows`` (and so freed) as
    # soon as it is used, before the next temporaries.
    for k in ("lane", "enclosing"):
        del flows[k]
    # link consecutive endpoints of the same flow: out -> in
    # (at equal times a start comes before the end it leads to)
    o = np.lexsort((flows["flags"] & 1, flows.pop("ts"), flows["key"]))
    key = flows.pop("key")[o]
    flags = flows.pop("flags")[o]
    tgt = target[o]
    del target
    cat = flows.pop("cat")[o]
    del o
    link = key[1:] == key[:-1]
    del key
    link &= ((flags[:-1] & 2) > 0) & ((flags[1:] & 1) > 0)
    link &= (tgt[:-1] >= 0) & (tgt[1:] >= 0) & (tgt[:-1] != tgt[1:])
    return tgt[:-1][link], tgt[1:][link], cat[:-1][link]
