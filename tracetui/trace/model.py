"""The in-memory index of one trace: :class:`Trace`, its :class:`Lane` s and sparse columns,
and the queries the analyses and the UI use. Built by :func:`tracetui.trace.index.build`
(or :func:`tracetui.trace.combine.combine` for ranks); nothing here reads files.

All slices live in global columns sorted by (lane, start, longest first); a :class:`Lane` is a
range of rows. Times are int64 nanoseconds relative to the trace start. Within one
(lane, depth) slices never overlap, so the busy time of any window is two ``searchsorted``
calls on a prefix sum of durations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Iterator, Protocol

import msgspec
import numpy as np

from .depth import compute_depth
from .events import args_of as event_args
from .strings import StringTable


class EventReader(Protocol):
    """Re-reads an event of the trace by its row (its index in the events array): the
    loader's :class:`~tracetui.trace.pieces.PieceTable`, or the ranks' reader."""

    def event(self, row: int) -> Any:
        """The event record at ``row``, or None if it cannot be read (any more)."""

    def reread_problem(self) -> str | None:
        """Why events cannot be re-read now (the file shrank or was replaced), or None."""

    def costly(self, row: int) -> bool:
        """Whether re-reading ``row`` may take seconds (streamed from a piece's start)."""

LANE_GPU = "gpu"  # one GPU stream: kernels, memcpy, memset
LANE_GPU_ANNOTATION = "gpu_annotation"  # gpu_user_annotation spans of one stream
LANE_CPU = "cpu"  # one CPU thread (or any other pid/tid)

#: Categories of the Python frames a profile recorded with ``with_stack=True`` holds.
PYTHON_CATS = frozenset({"python_function", "python"})


def python_cat_ids(strings: StringTable) -> frozenset[int]:
    """The string ids of :data:`PYTHON_CATS` (as written, or capitalised) in a trace's
    table: dictionary lookups, no pass over the slices."""
    ids = (strings.find(form) for cat in PYTHON_CATS
           for form in (cat, cat.capitalize(), cat.upper()))
    return frozenset(i for i in ids if i >= 0)


class DepthIndex:
    """The slices of one (lane, depth): rows [lo, hi) of the trace's columns, sorted by start
    (or, for a lane whose Python frames are folded, the gathered ``rows``, start-sorted).

    Slices at one depth never overlap, so ends are sorted too and a prefix sum of durations
    answers "how busy is [t0, t1)" with two binary searches. Starts are a view of the
    global column; ends and the prefix sum are made on first use.
    """

    __slots__ = ("lo", "hi", "rows", "starts", "_dur", "_ends", "_cum")

    def __init__(self, lo: int, hi: int, start: np.ndarray, dur: np.ndarray,
                 rows: np.ndarray | None = None) -> None:
        self.lo, self.hi = lo, hi
        self.rows = rows
        if rows is None:
            self.starts = start[lo:hi]
            self._dur = dur[lo:hi]
        else:
            self.starts = start[rows]
            self._dur = dur[rows]
        self._ends: np.ndarray | None = None
        self._cum: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.starts)

    def row(self, k: int) -> int:
        """The trace row of the k-th slice."""
        return self.lo + k if self.rows is None else int(self.rows[k])

    def rows_at(self, k: np.ndarray) -> np.ndarray:
        """The trace rows of the slices at positions ``k`` (vectorised)."""
        return self.lo + k if self.rows is None else self.rows[k]

    def position(self, row: int) -> int:
        """Where trace row ``row`` is in this index, or -1."""
        if self.rows is None:
            return row - self.lo if self.lo <= row < self.hi else -1
        hit = np.flatnonzero(self.rows == row)
        return int(hit[0]) if len(hit) else -1

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
    # False: not worked out yet; a tuple: the build's (rows, depths); then the indexes
    _fold: "list[DepthIndex] | tuple | None | bool" = field(default=False, repr=False)
    _fold_depth: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32), repr=False)

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

    def set_fold(self, got: tuple[np.ndarray, np.ndarray] | None) -> None:
        """The folded view as the build worked it out: (rows grouped by folded depth, in
        start order within one; their folded depths), or None (nothing to fold)."""
        self._fold = None if got is None else got

    def folded(self) -> list[DepthIndex] | None:
        """The lane with its Python frames (:data:`PYTHON_CATS`) folded away: one index per
        depth of the other slices (ops, runtime calls, annotations), each slice as deep as it
        has non-Python ancestors. None when the lane has no Python frames, or nothing else."""
        tr = self._trace
        assert tr is not None
        if self._fold is False:  # not from the build (a combined rank trace): worked out here
            self._fold = self._fold_rows()
        if isinstance(self._fold, tuple):  # (rows, depths): made into indexes on first use
            keep, dep = self._fold
            self._fold_depth = np.full(self.hi - self.lo, -1, np.int32)
            self._fold_depth[keep - self.lo] = dep
            bounds = np.searchsorted(dep, np.arange(int(dep.max(initial=0)) + 2))
            self._fold = [DepthIndex(0, 0, tr.start, tr.dur, keep[a:b])
                          for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist())]
        return self._fold  # type: ignore[return-value]

    def _fold_rows(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(rows, folded depths) as the build makes them (index._fold_python), from the
        lane's columns alone: a sort by start (longest first) and the depth pass over the
        slices that are not Python frames; None if there are no frames, or nothing else."""
        tr = self._trace
        assert tr is not None
        lo, hi = self.lo, self.hi
        py = np.zeros(hi - lo, bool)
        for cid in tr.python_cats:
            py |= tr.cat[lo:hi] == cid
        if not py.any() or py.all():
            return None
        keep = lo + np.flatnonzero(~py)
        keep = keep[np.lexsort((-tr.dur[keep], tr.start[keep]))]  # by start, longest first
        dep = compute_depth(tr.start[keep], tr.dur[keep])
        o = np.argsort(dep, kind="stable")
        return keep[o], dep[o]

    def depths(self, folded: bool = False) -> int:
        """How many depths the lane shows (with its Python frames folded, if asked)."""
        f = self.folded() if folded else None
        return len(f) if f is not None else self.max_depth + 1

    def index_at(self, depth: int, folded: bool = False) -> DepthIndex:
        """The slices of one depth, with the Python frames folded away if asked (and the
        lane has any); an empty index past the last depth."""
        f = self.folded() if folded else None
        if f is None:
            return self.depth_index(depth)
        if 0 <= depth < len(f):
            return f[depth]
        tr = self._trace
        assert tr is not None
        return DepthIndex(self.hi, self.hi, tr.start, tr.dur)

    def depth_of(self, row: int, folded: bool = False) -> int:
        """The depth ``row`` is drawn at: its own, or with the Python frames folded its
        depth among the other slices (-1: a folded Python frame, not drawn)."""
        tr = self._trace
        assert tr is not None
        f = self.folded() if folded else None
        if f is None:
            return int(tr.depth[row])
        return int(self._fold_depth[row - self.lo])

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

    def slice_at(self, t: int, depth: int, folded: bool = False) -> int:
        """Row of the slice at ``depth`` covering time t, or -1."""
        di = self.index_at(depth, folded)
        k = int(np.searchsorted(di.starts, t, side="right")) - 1
        if k >= 0 and (di.ends[k] > t or di.starts[k] == t):
            return di.row(k)
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
class MemoryEvents:
    """Allocations and frees: the ``[memory]`` instants of ``profile_memory=True`` traces,
    one row each, by time (file order among equal times). Absent values: -1 (0 for
    ``addr``: no allocation is at address 0)."""

    ts: np.ndarray  # int64 ns from the trace start
    lane: np.ndarray  # int32: the thread lane it was recorded on
    row: np.ndarray  # the event's row in the file (its args re-read from there)
    device_type: np.ndarray  # int32: "Device Type" (0 CPU, 1 CUDA, 6 HIP, ...)
    device_id: np.ndarray  # int32: "Device Id"
    bytes: np.ndarray  # int64: "Bytes" (< 0: a free)
    addr: np.ndarray  # uint64: "Addr"
    allocated: np.ndarray  # int64: "Total Allocated" after it (newer traces)
    reserved: np.ndarray  # int64: "Total Reserved"

    @classmethod
    def empty(cls) -> "MemoryEvents":
        z = np.zeros(0, np.int64)
        return cls(ts=z, lane=z.astype(np.int32), row=z.astype(np.uint32),
                   device_type=z.astype(np.int32), device_id=z.astype(np.int32), bytes=z,
                   addr=z.astype(np.uint64), allocated=z, reserved=z)

    def __len__(self) -> int:
        return len(self.ts)


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


@dataclass
class RankBlock:
    """What a combined trace of several ranks adds (:func:`tracetui.trace.combine.combine`)."""

    rank_of_lane: list[int]  # rank of each lane
    align_warnings: list[str]  # ranks without the step or annotation aligned on
    rank_devices: dict[int, tuple[int, int]]  # device -> (rank, its own device)


def _raw(v: Any) -> bytes:
    """A value as JSON text (what :meth:`Trace.args_many` gives for a field it read)."""
    try:
        return msgspec.json.encode(v)
    except (TypeError, ValueError, OverflowError):
        return msgspec.json.encode(str(v))


@dataclass(eq=False, repr=False)  # its repr would print every column
class Trace:
    """A loaded (or still loading) trace. Load one with :func:`tracetui.trace.load`."""

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
    pieces: EventReader  # re-reads any event from the file (args are not kept in memory)
    extra_args: dict[int, dict]  # args given on an "E", by the row of its "B"
    ranks: RankBlock | None = None  # a combined trace of several ranks
    memory: MemoryEvents = field(default_factory=MemoryEvents.empty)  # allocations, frees

    def __post_init__(self) -> None:
        for ln in self.lanes:
            ln._trace = self

    # ------------------------------------------------------------------------ ranks
    @property
    def rank_of_lane(self) -> list[int] | None:
        return self.ranks.rank_of_lane if self.ranks is not None else None

    @property
    def align_warnings(self) -> list[str]:
        return self.ranks.align_warnings if self.ranks is not None else []

    @property
    def rank_devices(self) -> dict[int, tuple[int, int]]:
        return self.ranks.rank_devices if self.ranks is not None else {}

    def memory_bytes(self) -> int:
        """What this trace's index holds in memory, roughly: the bytes of every numpy array
        reachable from it (its columns, lanes, sparse columns, caches made so far), each
        buffer counted once. The strings and Python objects are left out (a few % of it)."""
        return array_bytes(self)

    # ------------------------------------------------------------------------ basic facts
    @property
    def slice_count(self) -> int:
        return len(self.start)

    def fold_python(self) -> None:
        """Make every CPU lane's folded view (:meth:`Lane.folded`) now: a load thread calls
        this before the UI gets the trace, so that the first frame does not. The build has
        worked the folds out already (index._fold_python); a combined rank trace's lanes
        are folded here from scratch."""
        for ln in self.lanes:
            if ln.kind == LANE_CPU:
                ln.folded()

    @cached_property
    def python_cats(self) -> frozenset[int]:
        """String ids of the Python frames' categories (:data:`PYTHON_CATS`) in this trace."""
        return python_cat_ids(self.strings)

    @cached_property
    def slices_span(self) -> tuple[int, int]:
        """(first start, last end) of the slices, ns: the time the trace's work covers. A
        lone instant or counter sample far from them ("Record Window End") widens
        ``end_ns`` but not this; (0, end_ns) when there are no slices."""
        if not len(self.start):
            return (0, max(int(self.end_ns), 0))
        first = int(self.start.min())
        last = int((self.start + np.maximum(self.dur, 0)).max())
        return (first, max(last, first + 1))

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
    def args_costly(self, i: int) -> bool:
        """Whether re-reading slice ``i``'s args may take seconds (see EventReader.costly)."""
        costly = getattr(self.pieces, "costly", None)
        return bool(costly(int(self.row[i]))) if costly is not None else False

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

    def args_many(self, rows: Any, fields: tuple[str, ...] | None = None
                  ) -> Iterator[tuple[int, Any]]:
        """(row, args) of each of ``rows`` (slice rows), in file order: as :meth:`args_of`,
        the pieces of the file decoded once each, skipping what is not args. ``fields``:
        instead of the args, the JSON text (bytes) of an object of those of these keys they
        have: what a caller that works out few distinct values needs (see
        :meth:`tracetui.trace.pieces.PieceTable.args_many`)."""
        rows = np.asarray(rows, np.int64)
        order = rows[np.argsort(self.row[rows], kind="stable")].tolist()
        file_rows = self.row[order].tolist() if order else []
        bulk = getattr(self.pieces, "args_many", None)
        got: dict[int, Any] = bulk(file_rows, fields) if bulk else {}
        extra = self.extra_args
        for i, fr in zip(order, file_rows):
            if fr in got and fr not in extra:
                yield i, got[fr]
            elif fields is None:
                yield i, self.args_of(i)
            else:
                a = self.args_of(i)
                yield i, _raw({f: a[f] for f in fields if f in a} if isinstance(a, dict)
                              else {})

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

    def detail(self, i: int, args: bool = True) -> dict[str, Any]:
        """Everything known about slice ``i``, as plain data (for the detail pane and JSON).
        ``args``: re-read its args from the file (else ``args`` is None: see
        :meth:`args_costly`)."""
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
            "args": self.args_of(i) if args else None,
        }
        if args and out["args"] is None:
            problem = self.pieces.reread_problem()
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


def array_bytes(obj: Any, _seen: set[int] | None = None, _depth: int = 0) -> int:
    """The bytes of the numpy arrays reachable from ``obj`` through attributes, lists,
    tuples and dicts (at most four levels down), each underlying buffer counted once."""
    seen = set() if _seen is None else _seen
    if isinstance(obj, np.ndarray):
        base = obj
        while isinstance(base.base, np.ndarray):
            base = base.base
        if id(base) in seen:
            return 0
        seen.add(id(base))
        return int(base.nbytes) if base.base is None else int(obj.nbytes)
    if _depth > 4 or id(obj) in seen or isinstance(obj, (str, bytes, int, float, bool)) \
            or obj is None:
        return 0
    seen.add(id(obj))
    if isinstance(obj, dict):
        items: Any = obj.values()
    elif isinstance(obj, (list, tuple, set, frozenset)):
        items = obj
    elif hasattr(obj, "__dict__"):
        items = vars(obj).values()
    else:
        return 0
    return sum(array_bytes(v, seen, _depth + 1) for v in items)
