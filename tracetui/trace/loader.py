"""Streaming loader: Chrome/Kineto JSON -> per-lane numpy columns.

The events array is read in pieces of a few hundred KB cut at proven event boundaries and
decoded into light typed records (:mod:`tracetui.trace.events`); whatever cannot be proven
is streamed with ijson's C backend. Each batch of records becomes columns with a handful
of list comprehensions and numpy calls: the common event (``ph: "X"``), flows and instants
a group at a time; only B/E pairs, counters and metadata one by one, in file order. No
Python object per event survives a batch, and ``args`` beyond the typed GPU fields are not
kept at all: :class:`PieceTable` re-reads any event from the file on demand.
"""

from __future__ import annotations

import bisect
import gc
import io
import itertools
import json
import operator
import os
import re
import sys
import threading
import time
import zlib
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, Iterable

import ijson
import numpy as np

from . import _alloc
from .events import NOT_AN_EVENT, LooseEvent, args_of, as_event, decode_piece, decode_tail, kernel_args
from .source import GzipStream, Source, TraceError
from .strings import StringTable, as_text

# ----------------------------------------------------------------------------- constants

#: Categories of work that runs on a GPU stream (Kineto, and its 2021 capitalised form).
GPU_CATS = frozenset({"kernel", "gpu_memcpy", "gpu_memset", "Kernel", "Memcpy", "Memset"})
#: GPU-side annotations (``gpu_user_annotation``): kept on a lane beside their stream.
GPU_ANNOTATION_CATS = frozenset({"gpu_user_annotation"})
#: CPU calls into the CUDA/HIP runtime and driver; they carry the ``correlation`` id.
RUNTIME_CATS = frozenset({"cuda_runtime", "cuda_driver", "Runtime", "Driver"})

#: Integer microseconds beyond this overflow int64 nanoseconds.
_MAX_US = (2**63 - 1) // 1000 - 1
#: Float microseconds below this magnitude keep every nanosecond of a 3-decimal value
#: (2**43 µs is 101 days: relative Kineto times stay far below; absolute epoch µs do not).
_EXACT_FLOAT_US = float(2**43)

BATCH = 20_000
_FLOW_ID_LIMIT = 2**40  # flow ids below this (and category ids below the next) are packed
_FLOW_CAT_LIMIT = 2**21
_FLOW_DICT_BASE = 2**62  # keys numbered through a dict start here
_FLOW_FLAGS = {"s": 2, "t": 3, "f": 1}  # 1: a flow comes in, 2: a flow goes out
_INSTANT_PHASES = frozenset({"i", "I", "R"})
_GROUPED = frozenset({"X", *_FLOW_FLAGS, *_INSTANT_PHASES})
_CODE_PH: list[Any] = [None, *sorted(_GROUPED)]  # code 0: handled one by one, in file order
_PH_CODE = {ph: i for i, ph in enumerate(_CODE_PH) if ph is not None}

HEAD_BYTES = 1 << 20  # top-level keys before "traceEvents" (deviceProperties, ...) live here
#: Below this many bytes of events, starting a second process costs more than it saves.
PARALLEL_MIN = 48 << 20
_PRESIZE_AFTER = 16 << 20  # bytes parsed before a range's columns are sized to the whole range
MAX_WORKERS = 4


def default_workers() -> int:
    """Processes for one load: the cores this process may use (``TRACETUI_WORKERS`` overrides)."""
    env = os.environ.get("TRACETUI_WORKERS", "").strip()
    if env.isdigit():
        return max(1, int(env))
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_WORKERS))


class _NeedExact(Exception):
    """A float timestamp too large for float64 to keep its nanoseconds: re-read as Decimal."""


@dataclass(frozen=True)
class Progress:
    bytes_done: int  # of the file on disk (compressed bytes for .gz)
    bytes_total: int
    events: int
    elapsed_s: float
    done: bool = False

    @property
    def fraction(self) -> float:
        return min(1.0, self.bytes_done / self.bytes_total) if self.bytes_total else 1.0

    @property
    def mb_per_s(self) -> float:
        return self.bytes_done / 1e6 / self.elapsed_s if self.elapsed_s > 0 else 0.0


# ----------------------------------------------------------------------------- conversions


def _one_us_to_ns(v: Any) -> int | None:
    """One µs value (int, float or Decimal) to int ns, or None if it is not a usable number."""
    t = type(v)
    if t is int:
        return v * 1000 if -_MAX_US <= v <= _MAX_US else None
    if t is float:
        if v != v or v in (float("inf"), float("-inf")) or abs(v) > 2**53:
            return None
        if abs(v) >= _EXACT_FLOAT_US:  # its decimals may be lost already (even if now .0)
            raise _NeedExact
        whole = float(int(v)) if v >= 0 else -float(int(-v))
        frac = v - whole
        return int(whole) * 1000 + round(frac * 1000)
    if t is Decimal:
        if not v.is_finite() or abs(v) > _MAX_US:
            return None
        return int((v * 1000).to_integral_value())
    return None


def us_to_ns(values: list[Any]) -> tuple[np.ndarray, np.ndarray | None]:
    """µs values -> int64 ns, exactly. Returns (ns, ok) where ok is None if all were valid."""
    try:
        a = np.array(values)
    except (OverflowError, ValueError, TypeError):
        a = None
    if a is not None and a.ndim == 1:
        kind = a.dtype.kind
        if kind == "i" and a.size:
            if int(a.max()) <= _MAX_US and int(a.min()) >= -_MAX_US:
                return a.astype(np.int64) * 1000, None
        elif kind == "f":
            if np.isfinite(a).all():
                mag = np.abs(a)
                if not (mag > 2.0**53).any():
                    if (mag >= _EXACT_FLOAT_US).any():
                        # float64 may have dropped decimals the file had (1.7e15 µs: steps
                        # of 0.25 µs), even where the value now looks whole
                        raise _NeedExact
                    whole = np.trunc(a)
                    frac = a - whole  # exact in float64
                    return whole.astype(np.int64) * 1000 + np.rint(frac * 1000).astype(np.int64), None
        elif a.size == 0:
            return np.zeros(0, np.int64), None
        elif kind == "O":
            try:  # exact mode: ints and Decimals
                ns = [v * 1000 if type(v) is int else int(v.scaleb(3).to_integral_value())
                      for v in values]
                arr = np.array(ns, dtype=np.int64)
                if not (np.abs(arr) > _MAX_US * 1000).any():
                    return arr, None
            except (AttributeError, TypeError, ValueError, OverflowError, ArithmeticError):
                pass
    # Slow path: mixed or bad values, one by one.
    out = np.zeros(len(values), np.int64)
    ok = np.ones(len(values), bool)
    for i, v in enumerate(values):
        ns = _one_us_to_ns(v)
        if ns is None:
            ok[i] = False
        else:
            out[i] = ns
    return out, ok


def _int_or(v: Any, default: int = -1) -> int:
    if type(v) is int:
        return v if -2**63 <= v < 2**63 else default
    if isinstance(v, (float, Decimal)) and v == v and abs(v) < 2**62:
        return int(v)
    if isinstance(v, str):
        try:
            i = int(v, 0)
        except ValueError:
            return default
        return i if -2**63 <= i < 2**63 else default
    return default


def _float_or(v: Any) -> float:
    if isinstance(v, (int, float, Decimal)) and not isinstance(v, bool):
        return float(v)
    return float("nan")


def _dim3(v: Any) -> tuple[int, int, int]:
    if isinstance(v, list) and v:
        vals = [_int_or(x, 0) for x in v[:3]] + [1, 1]
        return vals[0], vals[1], vals[2]
    if isinstance(v, (int, float)):
        return _int_or(v, 0), 1, 1
    return 0, 0, 0


def canonical_id(v: Any) -> Any:
    """A pid/tid as Kineto means it: numeric strings ("25738") become ints."""
    if isinstance(v, str):
        t = v.strip()
        if t.lstrip("-").isdigit() and len(t) < 20:
            return int(t)
    elif isinstance(v, float) and v.is_integer():
        return int(v)
    return v


_NO3 = [0, 0, 0]
_NAN = float("nan")
#: args key -> (column, dtype, default when absent)
_GPU_FIELDS: dict[str, tuple[str, Any, Any]] = {  # KernelArgs field -> (column, dtype, default)
    "grid": ("g", np.int32, _NO3),
    "block": ("b", np.int32, _NO3),
    "registers": ("regs", np.int32, -1),
    "shared_memory": ("smem", np.int64, -1),
    "blocks_per_sm": ("blocks_per_sm", np.float32, _NAN),
    "warps_per_sm": ("warps_per_sm", np.float32, _NAN),
    "occupancy": ("occupancy", np.float32, _NAN),
    "bytes": ("bytes", np.int64, -1),
    "bandwidth": ("bandwidth", np.float32, _NAN),
    "device": ("device", np.int32, -1),
    "stream": ("stream", np.int32, -1),
}


def _hashable(v: Any) -> Any:
    try:
        hash(v)
        return v
    except TypeError:
        return as_text(v)


# ----------------------------------------------------------------------------- chunks


class _Columns:
    """Append-only numpy columns in arrays that grow by doubling.

    One big array per column (not a chunk per batch) keeps the heap unfragmented, and a
    snapshot is a view of the first ``count`` rows: nothing is concatenated.
    """

    def __init__(self, **dtypes: Any) -> None:
        self.dtypes = dtypes
        self.count = 0
        self.expect = 0  # estimated final rows (0: unknown)
        self.arrays = {k: np.empty(0, dt) for k, dt in dtypes.items()}

    def append(self, **cols: Any) -> None:
        first = next(iter(self.dtypes))
        n = len(cols[first])
        if not n:
            return
        need = self.count + n
        cap = len(self.arrays[first])
        if need > cap:
            if self.expect >= need:  # the range's estimated rows (see presize)
                cap = self.expect
            else:
                cap = max(need, cap + cap // 2, 1024)  # x1.5: a third less slack than doubling
            for k, a in self.arrays.items():
                grown = np.empty(cap, a.dtype)
                grown[: self.count] = a[: self.count]
                self.arrays[k] = grown
        for k, a in self.arrays.items():
            a[self.count : need] = cols[k]
        self.count = need

    def reserve(self, total: int) -> None:
        """Room for exactly ``total`` rows (a merge knows its size: no doubling)."""
        first = next(iter(self.dtypes))
        if total > len(self.arrays[first]):
            for k, a in self.arrays.items():
                grown = np.empty(total, a.dtype)
                grown[: self.count] = a[: self.count]
                self.arrays[k] = grown

    def presize(self, factor: float) -> None:
        """Expect ``factor`` times the rows so far in the end: the next time the arrays must
        grow, they grow to that (not by a step). Nothing is allocated before it is needed,
        so a kind of event that comes in a burst at the start reserves nothing more."""
        self.expect = int(self.count * factor) + 1024 if self.count else 0

    def clear(self) -> None:
        self.count = 0
        self.arrays = {k: np.empty(0, dt) for k, dt in self.dtypes.items()}

    def view(self) -> dict[str, np.ndarray]:
        """The rows so far (views: later appends never change them)."""
        return {k: a[: self.count] for k, a in self.arrays.items()}


# ----------------------------------------------------------------------------- builder


@dataclass
class _LaneKey:
    pid: Any
    tid: Any
    sub: str  # "" for slices, "annotations" for gpu_user_annotation
    index: int
    gpu: bool = False
    device: int = -1
    stream: int = -1


class TraceBuilder:
    """Accumulates batches of events as columns; :func:`~.timeline.build_trace` turns them
    into a :class:`~.timeline.Trace` (the loader's ``snapshot`` does so while loading)."""

    def __init__(self, exact: bool = False) -> None:
        self.exact = exact
        self.lock = threading.Lock()
        self.strings = StringTable()
        self.extra_args: dict[int, dict] = {}  # args of an "E", shown with its "B" (by row)
        self.lanes: list[_LaneKey] = []
        self._lane_ids: dict[tuple[Any, Any, str], int] = {}
        self.slices = _Columns(lane=np.int32, start=np.int64, dur=np.int64, name=np.int32,
                               cat=np.int32, row=np.uint32)
        self.instants = _Columns(lane=np.int32, ts=np.int64, name=np.int32, cat=np.int32,
                                 row=np.uint32)
        self.counter_samples = _Columns(track=np.int32, ts=np.int64, value=np.float64)
        self.counter_tracks: list[tuple[Any, str, Any, str]] = []  # (pid, name, id, series)
        self._counter_ids: dict[tuple[Any, str, Any, str], int] = {}
        # Kernel / memcpy / memset typed fields, keyed by args row.
        self.gpu = _Columns(row=np.uint32, gx=np.int32, gy=np.int32, gz=np.int32, bx=np.int32,
                            by=np.int32, bz=np.int32, regs=np.int32, smem=np.int64,
                            blocks_per_sm=np.float32, warps_per_sm=np.float32,
                            occupancy=np.float32, bytes=np.int64, bandwidth=np.float32)
        self.corr = _Columns(row=np.uint32, value=np.int64)  # correlation ids (runtime + GPU)
        self.ext = _Columns(row=np.uint32, value=np.int64)  # External id
        # Flow endpoints: flow key, ts, lane, flags (1 = in, 2 = out), binding (1 = enclosing)
        self.flows = _Columns(key=np.int64, ts=np.int64, lane=np.int32, flags=np.int8,
                              enclosing=np.int8, cat=np.int32)
        self._flow_keys: dict[Any, int] = {}
        self._pending_flows: list[tuple[int, int, int, int, int, int]] = []
        # Rare phases are gathered one by one in plain lists and become columns once a batch.
        self._p_ended: list[tuple[int, int, int, int, int, int]] = []
        self._p_counters: list[tuple[int, int, float]] = []
        self.open_b: dict[int, list[tuple[int, int, int, int]]] = {}  # lane -> [(start, name, cat, row)]
        self.ended_b = _Columns(lane=np.int32, start=np.int64, dur=np.int64, name=np.int32,
                                cat=np.int32, row=np.uint32)
        # Metadata
        self.process_names: dict[Any, str] = {}
        self.process_labels: dict[Any, str] = {}
        self.process_sort: dict[Any, float] = {}
        self.thread_names: dict[tuple[Any, Any], str] = {}
        self.thread_sort: dict[tuple[Any, Any], float] = {}
        self.header: dict[str, Any] = {}
        # Accounting
        self.events = 0  # accepted events, all phases except M
        self.phase_counts: dict[str, int] = {}
        self.skipped: dict[str, int] = {}  # reason -> count
        self.notes: dict[str, int] = {}  # kept, but worth a warning
        self.items = 0  # items seen in the events array

    def presize(self, factor: float) -> None:
        """Expect ``factor`` times its rows in every column set (see :meth:`_Columns.presize`)."""
        with self.lock:
            for c in (self.slices, self.instants, self.ended_b, self.counter_samples, self.gpu,
                      self.corr, self.ext, self.flows):
                c.presize(factor)

    # -- accounting ------------------------------------------------------------------------
    def _skip(self, reason: str, n: int = 1) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + n

    def _note(self, reason: str, n: int = 1) -> None:
        self.notes[reason] = self.notes.get(reason, 0) + n

    # -- lanes -----------------------------------------------------------------------------
    def lane_id(self, pid: Any, tid: Any, sub: str = "") -> int:
        key = (pid, tid, sub)
        got = self._lane_ids.get(key)
        if got is None:
            # "25738" and 25738 are the same thread (Kineto 2021 writes string tids).
            pid, tid = canonical_id(pid), canonical_id(tid)
            canon = (pid, tid, sub)
            got = self._lane_ids.get(canon)
            if got is None:
                got = len(self.lanes)
                self.lanes.append(_LaneKey(pid, tid, sub, got))
                self._lane_ids[canon] = got
            self._lane_ids[key] = got
        return got

    def _lane_ids_for(self, pids: list[Any], tids: list[Any]) -> np.ndarray:
        get = self._lane_ids.get
        keys = [(p, t, "") for p, t in zip(pids, tids)]
        try:
            ids = [get(k) for k in keys]
        except TypeError:
            keys = [(_hashable(p), _hashable(t), "") for p, t in zip(pids, tids)]
            ids = [get(k) for k in keys]
        if None in ids:
            lane_id = self.lane_id
            ids = [i if i is not None else lane_id(*k) for i, k in zip(ids, keys)]
        return np.array(ids, dtype=np.int32)

    # -- batches ---------------------------------------------------------------------------
    def add_batch(self, batch: list[Any], first_row: int) -> None:
        """Add events; ``batch[k]`` is item ``first_row + k`` of the traceEvents array."""
        n = len(batch)
        self.items += n
        try:
            phs = [e.ph for e in batch]
        except AttributeError:  # plain JSON values (from the ijson fallback)
            batch = [as_event(e) for e in batch]
            phs = [e.ph for e in batch]
        if n and type(batch[0]) is LooseEvent:
            # Typed records cannot hold a boolean time; loose ones can: not a number here.
            for e in batch:
                if type(e.ts) is bool:
                    e.ts = None
                if type(e.dur) is bool:
                    e.dur = None
        groups: dict[Any, Any]
        if phs.count("X") == n:
            groups = {"X": None}
        else:
            # X, flows and instants are handled a group at a time; everything else (B/E
            # pairs above all) one by one in file order.
            get = _PH_CODE.get
            try:
                codes = np.array([get(p, 0) for p in phs], dtype=np.int8)
            except TypeError:  # an unhashable ph
                codes = np.array([get(p, 0) if isinstance(p, str) else 0 for p in phs], np.int8)
            groups = {}
            for code in np.unique(codes).tolist():
                groups[_CODE_PH[code]] = np.flatnonzero(codes == code).tolist()
        with self.lock:
            for ph, idx in groups.items():
                if idx is None:
                    evs, rows = batch, np.arange(first_row, first_row + n, dtype=np.int64)
                else:
                    evs = [batch[i] for i in idx]
                    rows = np.asarray(idx, dtype=np.int64) + first_row
                if ph == "X":
                    self._add_complete(evs, rows)
                elif ph in _FLOW_FLAGS:
                    self._add_flows(ph, evs, rows)
                elif ph in _INSTANT_PHASES:
                    self._add_instants(evs, rows)
                else:
                    for e, r in zip(evs, rows.tolist()):
                        if e is NOT_AN_EVENT:
                            self._skip("not a JSON object")
                        else:
                            self._add_other(e, r)
            self.flush_pending()

    def _times(self, evs: list[dict], rows: np.ndarray) -> tuple[list[dict], np.ndarray, np.ndarray]:
        """ts of events as ns, dropping (and counting) events without a usable ts."""
        ts, ok = us_to_ns([e.ts for e in evs])
        if ok is not None and not ok.all():
            self._skip("missing or non-numeric ts", int((~ok).sum()))
            idx = np.flatnonzero(ok)
            evs, ts, rows = [evs[i] for i in idx], ts[idx], rows[idx]
        return evs, ts, rows

    def _count(self, ph: str, n: int) -> None:
        self.events += n
        self.phase_counts[ph] = self.phase_counts.get(ph, 0) + n

    def _add_instants(self, evs: list[dict], rows: np.ndarray) -> None:
        evs, ts, rows = self._times(evs, rows)
        if not evs:
            return
        self._count("i", len(evs))
        names = self.strings.intern_many([e.name for e in evs])
        cats = self.strings.intern_many([e.cat for e in evs])
        lanes = self._lane_ids_for([e.pid for e in evs], [e.tid for e in evs])
        self.instants.append(lane=lanes, ts=ts, name=names, cat=cats, row=rows)

    def _add_flows(self, ph: str, evs: list[dict], rows: np.ndarray) -> None:
        evs, ts, rows = self._times(evs, rows)
        if not evs:
            return
        ids = [e.id for e in evs]
        if None in ids:
            ids = [i if i is not None else e.bind_id for i, e in zip(ids, evs)]
            if None in ids:
                keep = [k for k, i in enumerate(ids) if i is not None]
                self._skip("flow event without id", len(ids) - len(keep))
                evs, ts, ids = [evs[k] for k in keep], ts[keep], [ids[k] for k in keep]
                if not evs:
                    return
        self._count(ph, len(evs))
        cats = self.strings.intern_many([e.cat for e in evs])
        lanes = self._lane_ids_for([e.pid for e in evs], [e.tid for e in evs])
        kid = self._flow_key_ids(cats, ids)
        if ph == "f":
            enclosing = [e.bp == "e" for e in evs]
        else:
            enclosing = np.ones(len(evs), np.int8)
        self.flows.append(key=kid, ts=ts, lane=lanes, flags=np.full(len(evs), _FLOW_FLAGS[ph]),
                          enclosing=enclosing, cat=cats)

    def flush_pending(self) -> None:
        """Turn what the rare phases gathered one by one into columns (once per batch)."""
        for cols, pending, keys in (
                (self.ended_b, self._p_ended, ("lane", "start", "dur", "name", "cat", "row")),
                (self.counter_samples, self._p_counters, ("track", "ts", "value")),
                (self.flows, self._pending_flows,
                 ("key", "ts", "lane", "flags", "enclosing", "cat"))):
            if pending:
                cols.append(**dict(zip(keys, zip(*pending))))
                pending.clear()

    def _add_complete(self, xs: list[dict], rows: np.ndarray) -> None:
        ts = [e.ts for e in xs]
        start, ok = us_to_ns(ts)
        durs = [e.dur for e in xs]
        dur, dok = us_to_ns(durs)
        if ok is not None or dok is not None:
            xs, start, dur, rows = self._repair_complete(xs, start, ok, dur, dok, durs, rows)
            if not xs:
                return
        n = len(xs)
        self.events += n
        self.phase_counts["X"] = self.phase_counts.get("X", 0) + n
        if (dur < 0).any():
            self._note("slices with a negative duration (set to 0)", int((dur < 0).sum()))
            np.maximum(dur, 0, out=dur)
        names = self.strings.intern_many([e.name for e in xs])
        cats = self.strings.intern_many([e.cat for e in xs])
        lanes = self._lane_ids_for([e.pid for e in xs], [e.tid for e in xs])
        self._special(xs, cats, lanes, rows)
        self.slices.append(lane=lanes, start=start, dur=dur, name=names, cat=cats, row=rows)
        # Flow v2 (Perfetto): bind_id + flow_in / flow_out on the slice itself.
        binds = [e.bind_id for e in xs]
        if binds.count(None) != n:
            for i, b in enumerate(binds):
                if b is not None:
                    e = xs[i]
                    flags = (1 if e.flow_in else 0) | (2 if e.flow_out else 0)
                    if flags:
                        self._flow(("v2", _hashable(b)), int(start[i]), int(lanes[i]), flags, True,
                                   int(cats[i]))

    def _repair_complete(self, xs, start, ok, dur, dok, durs, rows):
        """Slow path for a batch with bad ts/dur: drop or fix the offending events."""
        keep = np.ones(len(xs), bool) if ok is None else ok.copy()
        if ok is not None and not ok.all():
            self._skip("missing or non-numeric ts", int((~ok).sum()))
        if dok is not None:
            for i in np.flatnonzero(~dok & keep):
                e = xs[i]
                alt = _one_us_to_ns(e.tdur) if durs[i] is None else None
                if alt is not None:
                    dur[i] = alt
                    self._note("X events without dur (used tdur)")
                elif durs[i] is None:
                    dur[i] = 0
                    self._note("X events without dur (shown as 0)")
                else:
                    keep[i] = False
                    self._skip("non-numeric dur")
        idx = np.flatnonzero(keep)
        return [xs[i] for i in idx], start[idx], dur[idx], rows[idx]

    def _special(self, xs, cats, lanes, rows) -> None:
        """Typed columns for GPU work, correlation/External ids, GPU annotation lanes.

        Only these events' ``args`` are looked at while loading; all others are re-read
        from the file when someone asks for them.
        """
        strings = self.strings
        cat_ids = np.unique(cats)
        cat_text = {int(c): strings[int(c)] for c in cat_ids}
        gpu_c = [c for c, t in cat_text.items() if t in GPU_CATS]
        ann_c = [c for c, t in cat_text.items() if t in GPU_ANNOTATION_CATS]
        rt_c = [c for c, t in cat_text.items() if t in RUNTIME_CATS]
        if ann_c:
            for i in np.flatnonzero(np.isin(cats, ann_c)):
                lk = self.lanes[lanes[i]]
                lanes[i] = self.lane_id(lk.pid, lk.tid, "annotations")
        if not (rt_c or gpu_c):
            return
        idx = np.flatnonzero(np.isin(cats, rt_c + gpu_c))
        sub = [kernel_args(xs[i]) for i in idx.tolist()]
        sub_rows = rows[idx]
        self._ids(self.corr, sub_rows, [a.correlation for a in sub])
        if gpu_c:
            g = np.flatnonzero(np.isin(cats[idx], gpu_c))
            gsub = [sub[i] for i in g.tolist()]
            # External id as a column for GPU work only; a runtime call's is re-read on demand
            ext = [a.external_id for a in gsub]
            if ext.count(None) == len(ext):
                ext = [a.external_id_2021 for a in gsub]  # Kineto 2021 spelling
            self._ids(self.ext, sub_rows[g], ext)
            self._gpu_fields(gsub, lanes[idx[g]], sub_rows[g])

    def _ids(self, cols: "_Columns", rows: np.ndarray, vals: list[Any]) -> None:
        """Append (row, id) for the events whose id is present."""
        if vals.count(None) != len(vals):
            got = [(r, v) for r, v in zip(rows.tolist(), vals) if v is not None]
            if got:
                r, v = zip(*got)
                try:
                    v = np.array(v, dtype=np.int64)
                except (TypeError, ValueError, OverflowError):
                    v = [_int_or(x) for x in v]
                cols.append(row=r, value=v)

    def _gpu_fields(self, sub: list[Any], lanes: np.ndarray, rows: np.ndarray) -> None:
        """Typed columns for kernels/memcpy/memset: one comprehension per field."""
        cols: dict[str, Any] = {"row": rows}
        for key, (field, dtype, default) in _GPU_FIELDS.items():
            get = operator.attrgetter(key)
            vals = [get(a) for a in sub]
            if None in vals:
                vals = [default if v is None else v for v in vals]
            try:
                arr = np.array(vals, dtype=dtype)
                ok = arr.shape == ((len(vals), 3) if default is _NO3 else (len(vals),))
            except (TypeError, ValueError, OverflowError):
                ok = False
            if not ok:
                conv = _dim3 if default is _NO3 else (_float_or if dtype is np.float32 else _int_or)
                lim = 2**31 if dtype is np.int32 else 2**63
                fit = (lambda x, lim=lim: x if -lim <= x < lim else -1) \
                    if dtype is not np.float32 else None
                vals = [conv(v) for v in vals]
                if fit is not None:
                    vals = [tuple(map(fit, v)) for v in vals] if default is _NO3 else list(map(fit, vals))
                arr = np.array(vals, dtype=dtype)
            if default is _NO3:
                for k in range(3):
                    cols[field + "xyz"[k]] = arr[:, k]
            else:
                cols[field] = arr
        if sub[0].occupancy is None and sub[0].occupancy_theoretical is not None:
            cols["occupancy"] = np.array([_float_or(a.occupancy_theoretical) for a in sub],
                                         np.float32)
        device, stream = cols.pop("device"), cols.pop("stream")  # lane facts, not columns
        self.gpu.append(**cols)
        # Which device and stream each GPU lane is (first event that says so wins).
        lane_sub = lanes
        for lane in np.unique(lane_sub).tolist():
            lk = self.lanes[lane]
            lk.gpu = True
            if lk.device < 0 or lk.stream < 0:
                k = int(np.argmax(lane_sub == lane))
                if lk.device < 0:
                    lk.device = int(device[k])
                if lk.stream < 0:
                    lk.stream = int(stream[k])

    def _flow_key_ids(self, cats: np.ndarray, ids: list[Any]) -> np.ndarray:
        """One int64 key per (category, flow id). Small non-negative int ids (the usual case)
        are packed arithmetically; anything else is numbered through a dict (keys >= 2**62).

        Which way a key goes depends on that flow alone (never on the rest of its batch), so
        that ranges of a file parsed apart can be merged: see :func:`flow_key`."""
        try:
            a = np.array(ids)
        except (ValueError, TypeError, OverflowError):
            a = None
        if a is not None and a.dtype.kind in "iu" and a.ndim == 1 and len(a) \
                and int(a.min()) >= 0 and int(a.max()) < _FLOW_ID_LIMIT \
                and int(cats.max()) < _FLOW_CAT_LIMIT and bool not in set(map(type, ids)):
            return cats.astype(np.int64) << 40 | a.astype(np.int64)
        key_of = self.flow_key
        return np.array([key_of(c, i) for c, i in zip(cats.tolist(), ids)], dtype=np.int64)

    def flow_key(self, cat: int, fid: Any) -> int:
        """The key of one (category id, flow id)."""
        if type(fid) is int and 0 <= fid < _FLOW_ID_LIMIT and cat < _FLOW_CAT_LIMIT:
            return cat << 40 | fid
        fk = self._flow_keys
        key = (cat, _hashable(fid))
        k = fk.get(key)
        if k is None:
            k = fk[key] = _FLOW_DICT_BASE + len(fk)
        return k

    def _flow(self, key: Any, ts: int, lane: int, flags: int, enclosing: bool, cat: int) -> None:
        k = self._flow_keys.get(key)
        if k is None:
            k = self._flow_keys[key] = _FLOW_DICT_BASE + len(self._flow_keys)
        self._pending_flows.append((k, ts, lane, flags, 1 if enclosing else 0, cat))

    def _add_other(self, e: dict, row: int) -> None:
        ph = e.ph
        if ph == "M":
            self._metadata(e)
            return
        if not isinstance(ph, str):
            self._skip("missing ph" if ph is None else "ph not a string")
            return
        ts = _one_us_to_ns(e.ts)
        if ts is None:
            self._skip("missing or non-numeric ts")
            return
        pid, tid = _hashable(e.pid), _hashable(e.tid)
        if ph == "B":
            lane = self.lane_id(pid, tid)
            self.open_b.setdefault(lane, []).append(
                (ts, self.strings.intern(e.name), self.strings.intern(e.cat), row))
            self._flow_v2(e, ts, lane)
        elif ph == "E":
            lane = self.lane_id(pid, tid)
            stack = self.open_b.get(lane)
            if not stack:
                self._skip("E without a matching B")
                return
            start, name, cat, row = stack.pop()
            if ts < start:
                self._note("E before its B (duration set to 0)")
            a = args_of(e)
            if isinstance(a, dict) and a:
                self.extra_args[row] = a
            self._p_ended.append((lane, start, max(ts - start, 0), name, cat, row))
        elif ph == "C":
            if not self._counter(e, pid, ts):
                return
        else:
            self._skip(f"unsupported phase {as_text(ph)[:8]!r}")
            return
        self.events += 1
        self.phase_counts[ph] = self.phase_counts.get(ph, 0) + 1

    def _flow_v2(self, e: dict, ts: int, lane: int) -> None:
        b = e.bind_id
        if b is not None:
            flags = (1 if e.flow_in else 0) | (2 if e.flow_out else 0)
            if flags:
                self._flow(("v2", _hashable(b)), ts, lane, flags, True,
                           self.strings.intern(e.cat))

    def _counter(self, e: Any, pid: Any, ts: int) -> bool:
        """Add a counter sample; False if it holds no number at all (then it is skipped)."""
        a = args_of(e)
        if not isinstance(a, dict):
            self._skip("counter without args")
            return False
        added = False
        name = as_text(e.name)
        cid = _hashable(e.id)
        for k, v in a.items():
            fv = _float_or(v)
            if fv != fv:
                self._note("non-numeric counter values (ignored)")
                continue
            key = (pid, name, cid, k)
            t = self._counter_ids.get(key)
            if t is None:
                t = self._counter_ids[key] = len(self.counter_tracks)
                self.counter_tracks.append(key)
            self._p_counters.append((t, ts, fv))
            added = True
        if not added:
            self._skip("counter without a numeric value")
        return added

    def _metadata(self, e: dict) -> None:
        name = e.name
        a = args_of(e)
        if not isinstance(a, dict):
            a = {}
        pid, tid = canonical_id(_hashable(e.pid)), canonical_id(_hashable(e.tid))
        if name == "process_name":
            self.process_names[pid] = as_text(a.get("name"))
        elif name == "process_labels":
            self.process_labels[pid] = as_text(a.get("labels"))
        elif name == "process_sort_index":
            self.process_sort[pid] = _float_or(a.get("sort_index"))
        elif name == "thread_name":
            self.thread_names[(pid, tid)] = as_text(a.get("name"))
        elif name == "thread_sort_index":
            self.thread_sort[(pid, tid)] = _float_or(a.get("sort_index"))


# ----------------------------------------------------------------------------- pieces
#
# The traceEvents array is cut into pieces of a few MB at event boundaries and each piece
# is parsed with the stdlib's C JSON decoder. A JSON string can never hold a raw newline,
# so a newline is always outside every string; a cut at a newline that is followed by "{"
# and preceded by "," is an event boundary *if* the piece then parses as an array of
# events. A wrong cut (inside a nested object) leaves the piece unbalanced and it fails to
# parse, so every piece is proven by its own parse. Anything unproven - no usable newline,
# damaged or cut-off data - goes to ijson, which streams to the exact end of what is whole.

PIECE = 512 << 10  # bytes of JSON text per piece (small: the transient memory is a few pieces)
MAX_PIECE = 64 << 20  # beyond this without a proven cut, stream the rest with ijson
_CUT_TRIES = 4  # candidate cuts tried per read, from the end of the buffer backwards
_FAILED_READS = 2  # reads whose candidates all fail before the rest goes to ijson

KIND_ARRAY = 0  # bytes of whole events ending in ",": parse "[" + bytes[:-1] + "]"
KIND_TAIL = 1  # the last events, then "]" and whatever follows: raw_decode("[" + text)
KIND_IJSON = 2  # everything from offset on, streamed with ijson as "[" + bytes
KIND_IJSON_FILE = 3  # the whole file streamed with ijson (prefix traceEvents.item)


#: Nesting beyond this is damage, not a trace: ijson's cost grows with the square of the depth
#: (100,000 "[" took minutes), and the fast path's decoders refuse ~1,000 levels anyway.
MAX_DEPTH = 1100

#: Bytes per read for ijson. yajl lexes a token that spans reads again from its start on
#: every read, so one huge string costs (its size / this)² / 2 reads' worth: at ijson's
#: default 64 KB, a 200 MB name took minutes; at 4 MB, seconds.
IJSON_BLOCK = 4 << 20

#: A cut-off file modified this recently (seconds) may still be being written.
RECENT_S = 120.0


class _Depth:
    """The JSON nesting depth of a byte stream, block by block (brackets inside strings do not
    count): :meth:`feed` raises RecursionError once it passes :data:`MAX_DEPTH`."""

    def __init__(self) -> None:
        self.depth = 0
        self.in_string = False
        self.escaped = False  # the previous block ended with an odd run of backslashes

    def feed(self, data: bytes) -> None:
        step = 1 << 20  # numpy temporaries of ~10 bytes per byte: bounded by the sub-block
        for i in range(0, len(data), step):
            self._feed(data[i : i + step] if len(data) > step else data)

    def _feed(self, data: bytes) -> None:
        # Only quotes, backslashes and brackets matter: work on their positions alone (a long
        # string or number costs one table lookup per byte).
        n = len(data)
        if not n:
            return
        a = np.frombuffer(data, np.uint8)
        idx = np.flatnonzero(_JSON_SPECIAL[a])
        m = len(idx)
        if m == 0:
            self.escaped = False  # the first byte, whatever it is, took a pending escape
            return
        v = a[idx]
        bs = v == 0x5C
        j = np.arange(m)
        # brk[k]: element k does not carry a run of backslashes on to element k + 1
        brk = np.ones(m, bool)
        brk[:-1] = ~(bs[:-1] & (idx[1:] == idx[:-1] + 1))
        last = np.maximum.accumulate(np.where(brk, j, -1))
        before = np.zeros(m, np.int64)  # backslashes right before each element
        before[1:] = j[:-1] - last[:-1]
        escaped = before % 2 == 1
        if self.escaped and idx[0] == 0:  # the previous block's odd run goes on into this one
            flip = np.ones(m, bool)
            flip[1:] = last[:-1] == -1
            escaped ^= flip
        quote = (v == 0x22) & ~escaped
        flips = np.cumsum(quote) % 2 == 1
        inside = flips != self.in_string  # True inside a string (a quote counts as inside)
        step = ((v == 0x5B) | (v == 0x7B)).astype(np.int8) - ((v == 0x5D) | (v == 0x7D)).astype(np.int8)
        step[inside] = 0
        depth = self.depth + np.cumsum(step, dtype=np.int64)
        if int(depth.max()) > MAX_DEPTH:
            raise RecursionError("nested too deeply")
        self.depth = int(depth[-1])
        self.in_string = self.in_string != bool(flips[-1])  # an odd number of quotes
        if bs[-1] and idx[-1] == n - 1:
            tail_run = m - 1 - (int(last[-2]) if m > 1 else -1)
            whole = tail_run == n  # the block is nothing but backslashes
            self.escaped = (tail_run + (1 if self.escaped and whole else 0)) % 2 == 1
        else:
            self.escaped = False


_JSON_SPECIAL = np.zeros(256, bool)
_JSON_SPECIAL[list(b'\\"[]{}')] = True


class _Chain:
    """A file-like reader that returns ``prefix`` first, then the rest of ``stream``; with
    ``depth``, it stops the text (RecursionError) where it nests deeper than MAX_DEPTH."""

    def __init__(self, prefix: bytes, stream: Any, depth: bool = True) -> None:
        self._prefix = prefix
        self._off = 0  # handed out so far (slicing the rest off each time is quadratic)
        self._stream = stream
        self.tail = b""  # the last bytes handed out: how the text ends, if it has ended
        self._depth = _Depth() if depth else None

    def read(self, n: int = -1) -> bytes:
        left = len(self._prefix) - self._off
        if left > 0:
            k = left if n < 0 or n >= left else n
            out = self._prefix[self._off : self._off + k]
            self._off += k
            if self._off == len(self._prefix):
                self._prefix, self._off = b"", 0
        else:
            out = self._stream.read(n)
        if out:
            self.tail = (self.tail + out[-64:])[-64:]
            if self._depth is not None:
                self._depth.feed(out)
        return out


def _find_cut(buf: bytes, below: int) -> int:
    """Position of the last newline before ``below`` that may be an event boundary, or -1."""
    pos = below
    while True:
        nl = buf.rfind(b"\n", 0, pos)
        if nl <= 0:
            return -1
        after = buf[nl + 1 : nl + 257].lstrip()
        if after[:1] == b"{" and buf[max(0, nl - 256) : nl].rstrip()[-1:] == b",":
            return nl + 1
        pos = nl


class PieceTable:
    """Where each event's text lies, so its ``args`` can be re-read on demand (lazily).

    Nothing per event is kept: an event's row is its position in the traceEvents array;
    a piece records its first row, its byte range in the JSON text and how to parse it.
    """

    def __init__(self, source: Source, exact: bool) -> None:
        self.source = source
        self.exact = exact
        self.first: list[int] = []
        self.pieces: list[tuple[int, int, int]] = []  # (kind, offset, length)
        self._cache: tuple[int, list[Any]] | None = None
        self._lock = threading.Lock()

    def add(self, first_row: int, kind: int, offset: int, length: int) -> None:
        self.first.append(first_row)
        self.pieces.append((kind, offset, length))

    def event(self, row: int) -> Any:
        """The event at ``row`` of the traceEvents array, re-read from the file."""
        with self._lock:
            k = bisect.bisect_right(self.first, row) - 1
            if k < 0:
                return None
            cache = self._cache
            if cache is not None and cache[0] == k:
                events = cache[1]
            else:
                events = self._read_piece(k, row - self.first[k])
                if events is None:
                    return None
                self._cache = (k, events)
            kind = self.pieces[k][0]
            i = row - self.first[k] if kind in (KIND_ARRAY, KIND_TAIL) else 0
            if kind not in (KIND_ARRAY, KIND_TAIL):
                self._cache = None  # streamed pieces are read to one event only
            return events[i] if 0 <= i < len(events) else None

    def _read_piece(self, k: int, index: int) -> list[Any] | None:
        kind, offset, length = self.pieces[k]
        if self.source.reread_problem():  # shrunk or replaced: these offsets mean nothing now
            return None
        try:
            if kind == KIND_ARRAY:
                return decode_piece(self.source.read_range(offset, length), self.exact, full=True)
            if kind == KIND_TAIL:
                return decode_tail(self.source.read_range(offset, length), self.exact)[0]
            raw, stream = self.source.open_stream()
            try:
                if kind == KIND_IJSON:
                    skip = offset
                    while skip > 0:
                        got = stream.read(min(skip, 1 << 20))
                        if not got:
                            return None
                        skip -= len(got)
                    items = ijson.items(_Chain(b"[", stream), "item", use_float=not self.exact,
                                        buf_size=IJSON_BLOCK)
                else:
                    items = ijson.items(stream, "traceEvents.item", use_float=not self.exact,
                                        buf_size=IJSON_BLOCK)
                return [as_event(x) for x in itertools.islice(items, index, index + 1)]
            finally:
                raw.close()
        except (OSError, ValueError, zlib.error, ijson.JSONError, TraceError):
            return None


# ----------------------------------------------------------------------------- header

_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def _locate_events(head: bytes) -> dict[str, Any]:
    """Find where the events array starts in the first bytes of the JSON text.

    Returns {"kind": "array"|"object"|"empty"|"not-json", "offset": index after the "["
    (None if not within ``head``), "header": the top-level keys before traceEvents}.
    """
    start = len(head) - len(head.lstrip(b"\xef\xbb\xbf \t\r\n"))
    first = head[start : start + 1]
    if not first:
        return {"kind": "empty", "offset": None, "header": {}}
    if first == b"[":
        return {"kind": "array", "offset": start + 1, "header": {}}
    if first != b"{":
        return {"kind": "not-json", "offset": None, "header": {}, "first": head[start : start + 12]}
    depth = 0
    for m in _TOKEN.finditer(head, start):
        tok = m.group()
        c = tok[:1]
        if c in b"{[":
            depth += 1
        elif c in b"}]":
            depth -= 1
            if depth <= 0:
                break
        elif depth == 1 and tok == b'"traceEvents"':
            rest = head[m.end() : m.end() + 64].lstrip()
            if rest[:1] == b":" and rest[1:].lstrip()[:1] == b"[":
                colon = head.index(b":", m.end())
                bracket = head.index(b"[", colon)
                header: dict[str, Any] = {}
                before = head[start + 1 : m.start()].rstrip()
                if before.endswith(b","):
                    try:
                        header = json.loads(b"{" + before[:-1] + b"}")
                    except ValueError:
                        header = {}
                return {"kind": "object", "offset": bracket + 1, "header": header}
    return {"kind": "object", "offset": None, "header": _header_keys(head)}


def _header_keys(head: bytes) -> dict[str, Any]:
    """Top-level keys readable from the first bytes (traceEvents not among them)."""
    header: dict[str, Any] = {"__keys__": []}
    try:
        for key, value in ijson.kvitems(io.BytesIO(head), "", use_float=True):
            header["__keys__"].append(key)
            if key == "traceEvents":
                break
            header[key] = value
    except Exception:  # noqa: BLE001 - a header cut short is simply shorter
        pass
    return header


# ----------------------------------------------------------------------------- loader


class Loader:
    """Loads one trace. Use :meth:`run` (blocking; call it in a thread for progressive use),
    :meth:`snapshot` from any thread to get the index built so far, :meth:`cancel` to stop.
    """

    def __init__(self, path: str, progress: Callable[[Progress], None] | None = None,
                 progress_interval: float = 0.2, piece_bytes: int = PIECE,
                 workers: int | None = None, parallel_min: int = PARALLEL_MIN) -> None:
        self.source = Source.open(path)
        #: processes that parse ranges of the events array side by side (1: one stream)
        self.workers = default_workers() if workers is None else max(1, workers)
        self.parallel_min = parallel_min  # bytes of events below which one stream is faster
        self.items_before = 0  # events before this loader's range (a worker's range: > 0)
        self.other_bytes = 0  # bytes parsed by workers (progress)
        self.other_events = 0
        self.plan: Any = None  # the workers of a parallel load (tracetui.trace.parallel.Plan)
        self.ranges = 1  # ranges of the events array parsed in separate processes and merged
        self.stream: Any = None  # the JSON text being read, and where this process stopped
        self.stream_at = -1  # in it when a worker took over from there
        self.gzip_flags = (False, False)  # a merged worker's gzip end: (trailing junk, cut off)
        self.progress = progress
        self.progress_interval = progress_interval
        self.piece_bytes = piece_bytes
        self._cancel = threading.Event()
        self.builder = TraceBuilder()
        self.pieces = PieceTable(self.source, exact=False)
        self.bytes_done = 0
        self.started = time.perf_counter()
        self._last_report = 0.0
        self.warnings: list[str] = []
        self.truncated = False
        self.cancelled = False
        self._result = None
        _alloc.tune()
        if ijson.backend != "yajl2_c":
            print(f"tracetui: warning: ijson's C backend is not available (using {ijson.backend}); "
                  "damaged or unusual files will load several times slower", file=sys.stderr)

    def cancel(self) -> None:
        self._cancel.set()

    # -- public ----------------------------------------------------------------------------
    def run(self):
        """Load the whole file and return the final :class:`~tracetui.trace.timeline.Trace`."""
        head = self.source.read_head(HEAD_BYTES)
        where = _locate_events(head)
        kind = where["kind"]
        path = self.source.path
        if kind == "empty":
            if self.source.compressed:
                raise TraceError(f"{path}: the gzip data ends before any JSON (a cut-off file?)")
            raise TraceError(f"{path}: the file holds no JSON (only whitespace)")
        if kind == "not-json":
            raise TraceError(f"{path}: not a JSON trace (it starts with {where['first']!r})")
        gc_was_on = gc.isenabled()
        gc.disable()  # the loader makes no reference cycles; collections would only cost time
        try:
            try:
                self._parse(where, exact=False)
            except _NeedExact:
                # A float timestamp too big for float64 to keep its nanoseconds: read it again
                # exactly (Decimal). Kineto's absolute-µs float traces need this.
                self._reset(exact=True)
                self._parse(where, exact=True)
        finally:
            if gc_was_on:
                gc.enable()
        return self.finish(where)

    def finish(self, where: dict[str, Any]) -> Any:
        """After the events are parsed: refuse what is not a trace, say whether the file
        changed meanwhile, and build the final index."""
        from .timeline import build_trace

        path, kind = self.source.path, where["kind"]
        b = self.builder
        if kind == "object" and where["offset"] is None and b.items == 0 \
                and not self._has_events_key():
            keys = [k for k in where["header"].get("__keys__", []) if isinstance(k, str)][:6]
            if "traceEvents" in keys:
                raise TraceError(f"{path}: not a Chrome/Kineto trace: its traceEvents is not an "
                                 "array of events")
            hint = ""
            if "nodes" in keys and "schema" in keys:
                hint = " — this looks like a PyTorch execution trace, not a profiler trace"
            raise TraceError(f"{path}: not a Chrome/Kineto trace: the JSON object has no "
                             f"traceEvents (keys: {', '.join(keys) or 'none'}){hint}")
        if b.items and b.events == 0 and not self.truncated and sum(b.skipped.values()) == b.items:
            reasons = ", ".join(f"{n:,} {r}" for r, n in b.skipped.items()) or "no trace events"
            raise TraceError(f"{path}: not a trace: none of its {b.items:,} items is a trace "
                             f"event ({reasons})")
        self._check_unchanged()
        trace = build_trace(self, final=True)
        self._result = trace
        self._report(done=True)
        return trace

    def _check_unchanged(self) -> None:
        """Say so when the file changed while it was read, or when a cut-off file may be one
        still being written (what was read is shown either way)."""
        src = self.source
        change = src.change()
        if change is not None:
            self.warnings.append(f"the file {change} while it was read (still being written, "
                                 "or replaced?): this shows what was read")
        age = src.age_s()
        if self.truncated and (change is not None or age < RECENT_S) \
                and not any("still being written" in w for w in self.warnings):
            when = f"{age:,.0f} s" if age >= 1 else "less than a second"
            self.warnings.append(f"the file was modified {when} before it was opened: if it "
                                 "is still being written, reopen it once the writer has finished")

    def snapshot(self):
        """The index as loaded so far (cheap enough to call a few times a second)."""
        from .timeline import build_trace

        if self._result is not None:
            return self._result
        return build_trace(self, final=False)

    # -- parsing ---------------------------------------------------------------------------
    def _reset(self, exact: bool) -> None:
        self.builder = TraceBuilder(exact=exact)
        self.pieces = PieceTable(self.source, exact=exact)
        self.warnings = []
        self.truncated = False
        self.other_bytes = self.other_events = 0
        self.ranges = 1

    def _parse(self, where: dict[str, Any], exact: bool) -> None:
        self.builder.header = {k: v for k, v in where["header"].items() if not k.startswith("__")}
        raw, stream = self.source.open_stream(record=True)
        self._raw = raw
        try:
            if where["offset"] is None:
                # traceEvents is not in the first MB: stream the whole file with ijson.
                self.pieces.add(0, KIND_IJSON_FILE, 0, -1)
                chain = _Chain(b"", stream)
                self._stream_ijson(ijson.items(chain, "traceEvents.item", use_float=not exact,
                                               buf_size=IJSON_BLOCK),
                                   0, stream, chain)
            else:
                self._parse_pieces(stream, where["offset"], exact)
            garbage, cut_off = self.check_gzip_end(stream)
            garbage |= self.gzip_flags[0]
            cut_off |= self.gzip_flags[1]
            if garbage:
                self.warnings.append("the gzip file has data after its end that is not gzip "
                                     "(ignored)")
            if cut_off and not self.truncated:
                self.truncated = True
                self.warnings.append(
                    f"truncated at byte {self.source.size:,} of {self.source.size:,}: the gzip "
                    f"stream is cut off; kept {self.builder.events:,} whole events")
        except (zlib.error, EOFError) as err:
            if self.builder.items == 0:
                raise TraceError(f"{self.source.path}: broken gzip file ({err})") from None
            self.truncated = True
            self.warnings.append(f"corrupt gzip data near byte {raw.pos:,} of "
                                 f"{self.source.size:,} ({err}); kept the whole events before it")
        except OSError as err:
            raise TraceError(f"{self.source.path}: read error ({err.strerror or err})") from None
        finally:
            self.bytes_done = self._raw.pos + self.other_bytes
            self._raw.close()
            if self._raw is not raw:
                raw.close()

    def check_gzip_end(self, stream: Any) -> tuple[bool, bool]:
        """How a gzip stream read to its end ended: (junk after it, cut off)."""
        if isinstance(stream, GzipStream):
            return (stream.trailing_garbage, stream.truncated)
        return (False, False)

    def _read_block(self, stream: Any, n: int) -> bytes:
        parts, got = [], 0
        while got < n:
            data = stream.read(n - got)
            if not data:
                break
            parts.append(data)
            got += len(data)
        return b"".join(parts)

    def _parse_pieces(self, stream: Any, offset: int, exact: bool) -> None:
        head = self._read_block(stream, offset)  # up to and including the "["
        if len(head) < offset:
            raise TraceError(f"{self.source.path}: the file ended before its events")
        from . import parallel

        plan = parallel.Plan.start(self, offset, exact) if self.workers > 1 else None
        if plan is None:
            self._piece_loop(stream, offset, 0, exact)
            return
        try:
            end = plan.first_end
            if self._piece_loop(stream, offset, 0, exact, end=end, wait_end=end is None):
                self.stream, self.stream_at = stream, plan.first_end
                plan.merge_into(self, exact)
        finally:
            plan.close()
            self.plan = None

    def _piece_loop(self, stream: Any, base: int, row: int, exact: bool,
                    end: int | None = None, wait_end: bool = False) -> bool:
        """Parse pieces from ``base`` (a proven event boundary; ``row`` is its event's index).

        With ``end`` (a candidate boundary), stop there: True if the text up to ``end`` parsed
        as whole events, which proves ``end`` a boundary too. If it does not parse, carry on
        as one stream to the end of the file (as without ``end``) and return False. With
        ``wait_end``, the end comes later from the plan's worker (gzip); if it comes too late
        (already read past), the worker is dropped and this process reads on alone.
        """
        b = self.builder
        buf = b""
        failed = 0  # reads in a row whose candidate cuts all failed to parse
        no_cut = False  # the last read left no candidate cut in the buffer
        first_base, presized = base, False
        span = (end if end is not None else self.source.size) - base
        while True:
            if wait_end:
                plan = self.plan
                if plan is not None:
                    plan.poll(self)
                    end = plan.first_end
                if plan is None or plan.failed:
                    wait_end, end = False, None
                elif end is not None:
                    wait_end = False
                    if end < base + len(buf):  # too late: this process is past it
                        plan.close()
                        self.plan, end = None, None
                elif base + len(buf) >= plan.target:
                    # the end lies past here, not yet known: wait for the worker to say
                    plan.wait_cut(self)
                    continue
            if not presized and base - first_base >= _PRESIZE_AFTER and not self.source.compressed:
                # From here a column that must grow grows to the range's expected rows:
                # growing by steps would leave up to a third of it unused at the end.
                presized = True
                b.presize(1.03 * span / (base - first_base))
            if self._cancel.is_set():
                self._cancelled()
                return False
            # No candidate cut in the buffer yet (one huge event): double it rather than add a
            # piece at a time, which would copy and rescan it quadratically.
            want = max(self.piece_bytes, len(buf)) if no_cut else self.piece_bytes
            if end is not None:
                want = min(want, end - base - len(buf))
            elif wait_end:
                want = min(want, self.plan.target - base - len(buf))
            data = self._read_block(stream, want) if want > 0 else b""
            if not data and end is not None and base + len(buf) >= end:
                try:
                    events = decode_piece(memoryview(buf), exact) if buf else []
                except ValueError:  # not a boundary after all: go on as one stream
                    end = None
                    continue
                if events:
                    self.pieces.add(row, KIND_ARRAY, base, len(buf))
                    b.add_batch(events, row)
                    self._tick()
                return True
            if not data:
                self._parse_tail(buf, base, row, stream, exact)
                return False
            buf = buf + data if buf else data
            # Cut at the last proven event boundary in buf.
            below, events, cut = len(buf), None, -1
            for _ in range(_CUT_TRIES):
                cut = _find_cut(buf, below)
                if cut < 0:
                    break
                try:
                    events = decode_piece(memoryview(buf)[:cut], exact)
                    break
                except ValueError:  # wrong cut or damaged data: try an earlier boundary
                    below = cut - 1
                    events = None
            no_cut = events is None and cut < 0 and below == len(buf)
            if events is None:
                if cut >= 0:
                    failed += 1  # candidates exist but none parses: damage, or deep nesting
                # Damaged data never starts to parse by reading more: hand over to ijson,
                # which keeps every whole event before the damage. Only a lack of any
                # candidate (a huge event) is worth reading on for, up to MAX_PIECE.
                if failed >= _FAILED_READS or len(buf) > MAX_PIECE:
                    self._fallback(buf, base, row, stream, exact)
                    return False
                continue  # read more and try again
            failed = 0
            self.pieces.add(row, KIND_ARRAY, base, cut)
            b.add_batch(events, row)
            row += len(events)
            buf = buf[cut:]
            base += cut
            self._tick()

    def _parse_tail(self, buf: bytes, base: int, row: int, stream: Any, exact: bool) -> None:
        try:
            events, rest = decode_tail(buf, exact)
        except (ValueError, UnicodeDecodeError):
            self._fallback(buf, base, row, stream, exact)
            return
        self.pieces.add(row, KIND_TAIL, base, len(buf))
        self.builder.add_batch(events, row)
        rest = rest.strip()
        if rest.startswith(","):  # keys after traceEvents: traceName, baseTimeNanoseconds, ...
            try:
                tail = json.loads("{" + rest[1:])
                if isinstance(tail, dict):
                    self.builder.header.update(tail)
            except ValueError:
                self.warnings.append("the JSON after the events is damaged (ignored)")
        elif rest and rest != "}":
            self.warnings.append("unexpected data after the events (ignored)")

    def _fallback(self, buf: bytes, base: int, row: int, stream: Any, exact: bool) -> None:
        """Stream the rest with ijson from a proven event boundary: exact to the last event."""
        self.pieces.add(row, KIND_IJSON, base, -1)
        chain = _Chain(b"[" + buf, stream)
        self._stream_ijson(ijson.items(chain, "item", use_float=not exact, buf_size=IJSON_BLOCK),
                           row, stream, chain,
                           array_only=True)

    def _stream_ijson(self, items: Iterable[Any], row: int, stream: Any, chain: _Chain,
                      array_only: bool = False) -> None:
        b = self.builder
        batch: list[Any] = []
        islice = itertools.islice
        while True:
            if self._cancel.is_set():
                self._cancelled()
                return
            batch.clear()
            try:
                batch.extend(islice(items, BATCH))
            except (ijson.JSONError, UnicodeDecodeError, RecursionError) as err:
                b.add_batch(batch, row)
                if isinstance(err, UnicodeDecodeError):
                    msg = "invalid UTF-8"
                elif isinstance(err, RecursionError):
                    msg = "nested too deeply"
                else:
                    text = err.args[0] if err.args else ""
                    if isinstance(text, bytes):
                        text = text.decode("utf-8", "replace")
                    msg = (str(text).strip().splitlines() or ["invalid JSON"])[0][:120]
                if array_only and "trailing garbage" in msg:
                    return  # the array closed; what follows it is the rest of the object
                self._on_json_error(msg, stream, chain.tail)
                return
            if not batch:
                return
            b.add_batch(batch, row)
            row += len(batch)
            self._tick()

    def _on_json_error(self, msg: str, stream: Any, tail: bytes) -> None:
        b = self.builder
        raw = self._raw
        # Cut off, rather than damaged: the whole file was read and the error is at its end
        # (the parser says so, or the text stops inside a token or an unclosed value: a whole
        # trace ends with "]" or "}").
        try:
            size_now = os.stat(self.source.path).st_size  # it may have grown or shrunk
        except OSError:
            size_now = self.source.size
        at_end = raw.pos >= min(size_now, self.source.size) and (
            "premature EOF" in msg or tail.rstrip()[-1:] not in (b"]", b"}"))
        if isinstance(stream, GzipStream) and stream.truncated:
            at_end = True
        if b.items + self.items_before == 0 and not at_end:
            raise TraceError(f"{self.source.path}: not valid JSON ({msg})")
        self.truncated = True
        if at_end:
            why = "the writer was probably killed"
            if self.source.age_s() < RECENT_S or size_now != self.source.size:
                why = "modified just before: still being written?"
            self.warnings.append(
                f"truncated at byte {raw.pos:,} of {max(size_now, raw.pos):,}: the trace ends "
                f"mid-JSON ({why}); kept the whole events before the cut")
        else:
            self.warnings.append(f"JSON error near byte {raw.pos:,} of {self.source.size:,} "
                                 f"({msg}); kept the whole events before it")

    def _has_events_key(self) -> bool:
        """Whether the top-level object has a traceEvents key at all (rare, slow path)."""
        raw, stream = self.source.open_stream()
        try:
            for prefix, event, _ in ijson.parse(stream):
                if prefix == "traceEvents" and event == "start_array":
                    return True
        except Exception:  # noqa: BLE001
            return False
        finally:
            raw.close()
        return False

    def _cancelled(self) -> None:
        self.cancelled = True
        self.warnings.append(f"loading cancelled at byte {self._raw.pos:,} of "
                             f"{self.source.size:,}")

    def _tick(self) -> None:
        if self.plan is not None:
            self.plan.poll(self)
        self.bytes_done = self._raw.pos + self.other_bytes
        now = time.perf_counter()
        if now - self._last_report >= self.progress_interval:
            self._last_report = now
            self._report()

    def _report(self, done: bool = False) -> None:
        if self.progress is None:
            return
        self.progress(Progress(self.bytes_done, self.source.size,
                               self.builder.events + self.other_events,
                               time.perf_counter() - self.started, done))


class EarlyLoad:
    """A load started in a thread before the UI exists, so that reading the file overlaps
    importing and starting Textual.

    A small file is read through meanwhile: the first frame shows all of it. A big one stops
    after its first events until :meth:`resume` (the UI is up): parsing on would only slow
    the UI's start-up (one interpreter lock), and those first events are what the first
    frame draws, at once.
    """

    def __init__(self, path: str, pause_after_first: bool = False) -> None:
        self.loader = Loader(path, progress=self._first_progress, progress_interval=0.1)
        self.result: Any = None
        self.error: str | None = None
        self._go = threading.Event()
        if not pause_after_first:
            self._go.set()
        self.thread = threading.Thread(target=self._run, name="tracetui-load", daemon=True)
        self.thread.start()

    def _first_progress(self, p: Progress) -> None:
        if p.events and not p.done:
            self._go.wait()

    def resume(self, progress: Callable[[Progress], None] | None = None) -> None:
        """Hand progress reports to ``progress`` from now on, and let the load go on."""
        self.loader.progress = progress
        self._go.set()

    def _run(self) -> None:
        try:
            self.result = self.loader.run()
        except TraceError as e:
            self.error = str(e)
        except Exception as e:  # noqa: BLE001 - reported in the UI, never a traceback
            self.error = f"internal error: {type(e).__name__}: {e}"
        finally:
            self._go.set()


def load(path: str, progress: Callable[[Progress], None] | None = None):
    """Load a trace file completely and return its :class:`~tracetui.trace.timeline.Trace`."""
    return Loader(path, progress=progress).run()
