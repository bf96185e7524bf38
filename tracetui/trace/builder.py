"""Events -> columns: :class:`TraceBuilder`, the conversions it needs, and its snapshot.

Each batch of event records (:mod:`tracetui.trace.events`) becomes columns with a handful of
list comprehensions and numpy calls: the common event (``ph: "X"``), flows and instants a
group at a time; only B/E pairs, counters and metadata one by one, in file order. No Python
object per event survives a batch, and ``args`` beyond the typed GPU fields are not kept at
all (they are re-read from the file on demand).

The builder's columns are declared once, in :data:`COLUMN_SETS` and the ``_Columns`` of its
constructor: :meth:`TraceBuilder.freeze` (a consistent snapshot, taken under the builder's
lock, that :func:`tracetui.trace.index.build` turns into a Trace), :meth:`TraceBuilder.part`
and :meth:`TraceBuilder.merge` (a builder of a later range of the same file, numbered on its
own, appended to this one) all walk them.
"""

from __future__ import annotations

import operator
import re
import threading
from dataclasses import dataclass
from dataclasses import field as dc_field
from decimal import Decimal
from typing import Any, Callable, Iterator

import numpy as np

from .events import (NOT_AN_EVENT, LooseEvent, MemoryArgs, NeedExact, args_of, as_event,
                     kernel_args, memory_args)
from .strings import StringTable, as_text

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
class _Codes(dict):
    """Phase -> code; any other phase is 0 (looked up, never added)."""

    def __missing__(self, key: Any) -> int:
        return 0


_PH_CODE = _Codes({ph: i for i, ph in enumerate(_CODE_PH) if ph is not None})


# ----------------------------------------------------------------------------- conversions


#: A time written as a string holding a number ("10", "1.5e3", " 1712345678901234.567"):
#: Perfetto's JSON importer takes these for ts, dur, tdur (and tts) - its json::CoerceToTs
#: (src/trace_processor/importers/json/json_utils.cc) reads a JSON string's text as the
#: number it spells (decimals and exponent shifted in the text: exact), and the tokenizer
#: (json_trace_tokenizer.cc) and parser (json_trace_parser_impl.cc) call it for "ts", "dur",
#: "tts", "tdur". pid/tid strings are names there (and here), not numbers.
_NUMERIC_TEXT = re.compile(r"[ \t\r\n]*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?[ \t\r\n]*\Z")


def _text_number(v: str) -> Decimal | None:
    """The number a string spells (as a Decimal: every digit kept, in either mode), or None."""
    if len(v) > 4096 or not _NUMERIC_TEXT.match(v):
        return None
    return Decimal(v.strip())


def _one_us_to_ns(v: Any) -> int | None:
    """One µs value (int, float, Decimal, or a string holding a number) to int ns, or None
    if it is not a usable number (see :func:`_time_problem` for which)."""
    t = type(v)
    if t is int:
        return v * 1000 if -_MAX_US <= v <= _MAX_US else None
    if t is float:
        if v != v or v in (float("inf"), float("-inf")) or abs(v) > _MAX_US:
            return None
        if abs(v) >= _EXACT_FLOAT_US:  # its decimals may be lost already (even if now .0)
            raise NeedExact
        whole = float(int(v)) if v >= 0 else -float(int(-v))
        frac = v - whole
        return int(whole) * 1000 + round(frac * 1000)
    if t is Decimal:
        # the exponent first: abs() of 1.5e999999999 overflows the default context
        if not v.is_finite() or v.adjusted() > 18:
            return None
        try:
            return int((v * 1000).to_integral_value()) if abs(v) <= _MAX_US else None
        except ArithmeticError:  # (a context that traps more than the default)
            return None
    if t is str:
        d = _text_number(v)
        return None if d is None else _one_us_to_ns(d)
    return None


def _number_text(v: Any) -> str:
    """A number for a message, short (a 400-digit integer as 1.00000e+399)."""
    if type(v) is float:
        return repr(v)
    text = str(v).replace("E", "e")  # a Decimal (exact mode) as a float reads: 9.3e+18
    return text if len(text) <= 30 else f"{Decimal(v):.5e}"


def _time_problem(v: Any, what: str) -> tuple[str, str | None]:
    """Why a ``ts``/``dur`` value (``what``) is no time: (skip reason, an example or None).
    A number (or a string holding one) that int64 nanoseconds cannot hold is out of range,
    and said so with its value; anything else is missing or not a number."""
    num = _text_number(v) if type(v) is str else v
    # (a bool is not a number here; nor is a Decimal NaN or Infinity: JSON numbers cannot
    # be those, only strings can, which msgspec's exact records turn into Decimals)
    if type(num) in (int, float) or (type(num) is Decimal and num.is_finite()):
        return f"{what} out of range for int64 nanoseconds", f"{_number_text(num)} µs"
    return ("missing or non-numeric ts" if what == "ts" else f"non-numeric {what}"), None


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
                if not (mag > _MAX_US).any():
                    if (mag >= _EXACT_FLOAT_US).any():
                        # float64 may have dropped decimals the file had (1.7e15 µs: steps
                        # of 0.25 µs), even where the value now looks whole
                        raise NeedExact
                    whole = np.trunc(a)
                    frac = a - whole  # exact in float64
                    return whole.astype(np.int64) * 1000 + np.rint(frac * 1000).astype(np.int64), None
        elif a.size == 0:
            return np.zeros(0, np.int64), None
        elif kind == "O":
            try:  # exact mode: ints and Decimals
                exact_ns = [v * 1000 if type(v) is int else int(v.scaleb(3).to_integral_value())
                            for v in values]
                arr = np.array(exact_ns, dtype=np.int64)
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


#: The columns of ``[memory]`` instants (by args row): their dtypes
MEMORY_COLUMNS = {"device_type": np.int32, "device_id": np.int32, "bytes": np.int64,
                  "addr": np.uint64, "allocated": np.int64, "reserved": np.int64}
_MEMORY_ARGS = (("device_type", "Device Type"), ("device_id", "Device Id"),
                ("allocated", "Total Allocated"), ("reserved", "Total Reserved"))


def _int_column(vals: list[Any], dtype: Any, missing: int | None) -> np.ndarray:
    """``vals`` as a column of ``dtype``: each an integer as :func:`_int_or` reads it, else
    ``missing`` (-1; 0 for an unsigned column), or NaN in a float column where ``missing``
    is None (the caller drops those)."""
    types = set(map(type, vals))  # (in C: a generator over millions of values was not)
    if types == {int}:
        try:
            return np.array(vals, dtype)
        except OverflowError:
            pass
    if missing is not None and types <= {type(None)}:
        return np.full(len(vals), missing if np.dtype(dtype).kind == "i" else 0, dtype)
    unsigned = np.dtype(dtype).kind == "u"
    info = np.iinfo(dtype)
    lo, hi = (1, int(info.max) + 1) if unsigned else (int(info.min), int(info.max) + 1)
    out = []
    for v in vals:
        i = _int_or(v, None) if not unsigned or type(v) is not int else v
        out.append(i if i is not None and lo <= i < hi else None)
    if missing is None:
        return np.array([np.nan if i is None else i for i in out], np.float64) \
            if None in out else np.array(out, dtype)
    fill = missing if not unsigned else 0
    return np.array([fill if i is None else i for i in out], dtype)


def _int_or(v: Any, default: Any = -1) -> Any:
    if type(v) is int:
        return int(v) if -2**63 <= v < 2**63 else default
    if isinstance(v, (float, Decimal)) and v == v and abs(float(v)) < 2**62:
        return int(v)
    if isinstance(v, str):
        try:
            i = int(v, 0)
        except ValueError:
            return default
        return i if -2**63 <= i < 2**63 else default
    return default


def _float_or(v: Any) -> float:
    """A number as a float, NaN if it is none - or beyond float64 (a 1e400 read exactly as
    a Decimal, or an int of 400 digits: inf would poison every sum and scale it meets)."""
    if isinstance(v, (int, float, Decimal)) and not isinstance(v, bool):
        try:
            f = float(v)
        except OverflowError:  # an int beyond float64
            return _NAN
        return f if f - f == 0 else _NAN  # (inf - inf is NaN)
    return _NAN


def _float32_or(v: Any) -> float:
    """:func:`_float_or` for a float32 column: NaN beyond float32 too."""
    f = _float_or(v)
    return f if abs(f) <= _F32_MAX else _NAN


_F32_MAX = float(np.finfo(np.float32).max)


def _dim3(v: Any) -> tuple[int, int, int]:
    if isinstance(v, list) and v:
        vals = [_int_or(x, 0) for x in v[:3]] + [1, 1]
        return vals[0], vals[1], vals[2]
    if isinstance(v, (int, float)):
        return _int_or(v, 0), 1, 1
    return 0, 0, 0


def canonical_id(v: Any) -> Any:
    """A pid/tid as Kineto means it: numeric strings ("25738") become ints. A number that is
    not finite (1e400 reads as inf; NaN is not even equal to itself, so every event would be
    a lane of its own) or a Decimal (exact mode) becomes its text, as JSON can hold it."""
    if isinstance(v, str):
        t = v.strip()
        if t.isascii() and t.lstrip("-").isdigit() and len(t) < 20:  # ("¹".isdigit() too)
            return int(t)
    elif isinstance(v, float):
        if v.is_integer():
            return int(v)
        if v != v or v in (float("inf"), float("-inf")):
            return str(v)
    elif isinstance(v, Decimal):
        return json_safe(v)
    return v


#: how deep a header value is kept: what lies deeper (a writer's junk, 500 nested lists) is
#: replaced by a note, not walked by recursion
HEADER_DEPTH = 64


def json_safe(v: Any, depth: int = 0) -> Any:
    """A value from the trace's header (distributedInfo, deviceProperties, …) that JSON can
    write: non-finite floats and Decimals become text (whole Decimals ints), checked once at
    load so that ``summary --json`` never meets inf; nesting beyond :data:`HEADER_DEPTH`
    becomes a note."""
    if isinstance(v, float):
        return v if v == v and v not in (float("inf"), float("-inf")) else str(v)
    if isinstance(v, Decimal):
        if v.is_finite() and v.adjusted() < 19 and v == v.to_integral_value():
            return int(v)
        if not v.is_finite():
            return str(v)
        f = float(v)  # beyond float64: "inf", as the same number read as a float says
        return f if f - f == 0 else str(f)
    if isinstance(v, (dict, list)) and depth >= HEADER_DEPTH:
        return f"(nested deeper than {HEADER_DEPTH} levels: not kept)"
    if isinstance(v, dict):
        return {str(k): json_safe(x, depth + 1) for k, x in v.items()}
    if isinstance(v, list):
        return [json_safe(x, depth + 1) for x in v]
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
#: The builder's typed columns of GPU work: column -> (dtype, the value it holds when its
#: field is absent). grid and block are three columns each (gx, gy, gz; bx, by, bz).
GPU_COLUMNS: dict[str, tuple[Any, Any]] = {}
for _c, _dt, _d in _GPU_FIELDS.values():
    if _c in ("device", "stream"):  # lane facts, not columns
        continue
    if _d is _NO3:
        GPU_COLUMNS.update({_c + x: (_dt, 0) for x in "xyz"})
    else:
        GPU_COLUMNS[_c] = (_dt, _d)
del _c, _dt, _d


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


#: The builder's column sets (attributes holding :class:`_Columns`), in the order a worker
#: sends them. How each column is renumbered when a part is merged follows from its name:
#: see :data:`_RENUMBER`.
COLUMN_SETS = ("slices", "instants", "ended_b", "counter_samples", "gpu", "gpu_plain", "corr",
               "ext", "flows", "memory")

#: Columns whose values a builder numbers on its own, by column name: string ids, lane ids,
#: counter track ids, rows of the events array (shifted by the rows before a part) and flow
#: keys (which hold a string id).
_RENUMBER = {"name": "string", "cat": "string", "lane": "lane", "track": "track",
             "row": "row", "key": "flow_key"}


@dataclass(frozen=True)
class Snapshot:
    """What a builder holds at one moment, copied (or viewed) under its lock: the input of
    :func:`tracetui.trace.index.build`. The column dicts are views or copies that later
    appends never change. ``slices`` holds X events, ended B/E pairs, and the ``open_b`` B
    events still open, last, with a duration of -1."""

    slices: dict[str, np.ndarray]
    open_b: int
    instants: dict[str, np.ndarray]
    counter_samples: dict[str, np.ndarray]
    gpu: dict[str, np.ndarray]
    corr: dict[str, np.ndarray]
    ext: dict[str, np.ndarray]
    flows: dict[str, np.ndarray]
    #: (pid, tid, sub, is_gpu, device, stream) per lane id
    lanes: list[tuple[Any, Any, str, bool, int, int]]
    counter_tracks: list[tuple[Any, str, Any, str]]
    process_names: dict[Any, str]
    process_labels: dict[Any, str]
    process_sort: dict[Any, float]
    thread_names: dict[tuple[Any, Any], str]
    thread_sort: dict[tuple[Any, Any], float]
    skipped: dict[str, int]
    notes: dict[str, int]
    events: int
    phase_counts: dict[str, int]
    items: int
    header: dict[str, Any]
    strings: StringTable
    extra_args: dict[int, dict]
    #: args rows of GPU work whose typed fields are all absent (their defaults): a trace of
    #: kernels without args keeps 4 bytes per kernel here, not the 64 of :attr:`gpu`
    gpu_plain: dict[str, np.ndarray] = dc_field(default_factory=dict)
    #: skip reason -> the first value skipped for it ("9.3e+18 µs"), where one says more
    examples: dict[str, str] = dc_field(default_factory=dict)
    #: the args of ``[memory]`` instants, by their row (see :data:`MEMORY_COLUMNS`)
    memory: dict[str, np.ndarray] = dc_field(default_factory=dict)


class TraceBuilder:
    """Accumulates batches of events as columns; :meth:`freeze` gives a :class:`Snapshot`
    that :func:`tracetui.trace.index.build` turns into a Trace (while loading, too)."""

    def __init__(self, exact: bool = False) -> None:
        self.exact = exact
        self.lock = threading.Lock()
        self.strings = StringTable()
        self.extra_args: dict[int, dict] = {}  # args of an "E", shown with its "B" (by row)
        self.lanes: list[_LaneKey] = []
        self._lane_ids: dict[tuple[Any, Any, str], int] = {}
        self._thread_lanes: dict[tuple[Any, Any], int] = {}  # (pid, tid) -> lane (sub "")
        self.slices = _Columns(lane=np.int32, start=np.int64, dur=np.int64, name=np.int32,
                               cat=np.int32, row=np.uint32)
        self.instants = _Columns(lane=np.int32, ts=np.int64, name=np.int32, cat=np.int32,
                                 row=np.uint32)
        self.counter_samples = _Columns(track=np.int32, ts=np.int64, value=np.float64)
        self.counter_tracks: list[tuple[Any, str, Any, str]] = []  # (pid, name, id, series)
        self._counter_ids: dict[tuple[Any, str, Any, str], int] = {}
        # Kernel / memcpy / memset typed fields, keyed by args row.
        self.gpu = _Columns(row=np.uint32, **{c: dt for c, (dt, _) in GPU_COLUMNS.items()})
        self.gpu_plain = _Columns(row=np.uint32)  # GPU work with no typed field (see Snapshot)
        self.corr = _Columns(row=np.uint32, value=np.int64)  # correlation ids (runtime + GPU)
        self.ext = _Columns(row=np.uint32, value=np.int64)  # External id
        # Flow endpoints: flow key, ts, lane, flags (1 = in, 2 = out), binding (1 = enclosing)
        self.flows = _Columns(key=np.int64, ts=np.int64, lane=np.int32, flags=np.int8,
                              enclosing=np.int8, cat=np.int32)
        self._flow_keys: dict[Any, int] = {}
        # [memory] instants: their rows, times, thread lanes and args
        self.memory = _Columns(row=np.uint32, ts=np.int64, lane=np.int32, **MEMORY_COLUMNS)
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
        self.examples: dict[str, str] = {}  # reason -> the first value skipped for it
        self._example_rows: dict[str, int] = {}  # reason -> the row of that value
        self.notes: dict[str, int] = {}  # kept, but worth a warning
        self.items = 0  # items seen in the events array

    def presize(self, factor: float) -> None:
        """Expect ``factor`` times its rows in every column set (see :meth:`_Columns.presize`)."""
        with self.lock:
            for name in COLUMN_SETS:
                getattr(self, name).presize(factor)

    # -- snapshots and parts ---------------------------------------------------------------
    def freeze(self, release: bool = False) -> Snapshot:
        """A consistent snapshot of everything so far. ``release``: the snapshot takes the
        columns over (the final build: the builder's copies would only double the memory)."""
        with self.lock:
            ob = np.array([(lane, s, nm, ct, row) for lane, st in self.open_b.items()
                           for (s, nm, ct, row) in st], dtype=np.int64).reshape(-1, 5)
            sl, eb = self.slices.view(), self.ended_b.view()
            if len(ob) or len(eb["lane"]):
                extra = {"lane": ob[:, 0], "start": ob[:, 1],
                         "dur": np.full(len(ob), -1, np.int64), "name": ob[:, 2],
                         "cat": ob[:, 3], "row": ob[:, 4]}
                cols = {k: np.concatenate([sl[k], eb[k], extra[k].astype(dt)])
                        for k, dt in self.slices.dtypes.items()}
            else:
                cols = sl  # views of the columns: nothing downstream writes into them
            views = {name: getattr(self, name).view() for name in COLUMN_SETS}
            snap = Snapshot(
                slices=cols, open_b=len(ob), instants=views["instants"],
                counter_samples=views["counter_samples"], gpu=views["gpu"],
                gpu_plain=views["gpu_plain"], corr=views["corr"],
                ext=views["ext"], flows=views["flows"], memory=views["memory"],
                lanes=[(lk.pid, lk.tid, lk.sub, lk.gpu, lk.device, lk.stream)
                       for lk in self.lanes],
                counter_tracks=list(self.counter_tracks),
                process_names=dict(self.process_names),
                process_labels=dict(self.process_labels),
                process_sort=dict(self.process_sort), thread_names=dict(self.thread_names),
                thread_sort=dict(self.thread_sort), skipped=dict(self.skipped),
                examples=dict(self.examples), notes=dict(self.notes), events=self.events,
                phase_counts=dict(self.phase_counts), items=self.items,
                header=dict(self.header), strings=self.strings, extra_args=self.extra_args)
            if release:
                for name in COLUMN_SETS:
                    getattr(self, name).clear()
        return snap

    def part(self) -> dict[str, Any]:
        """Everything but the columns, as plain picklable data, for :meth:`merge` into the
        builder of the range before this one (the columns follow as raw bytes, in
        :data:`COLUMN_SETS` order: see :meth:`column_buffers`)."""
        self.flush_pending()
        return {
            "items": self.items, "events": self.events, "phase_counts": self.phase_counts,
            "skipped": self.skipped, "notes": self.notes, "examples": self.examples,
            "example_rows": self._example_rows,
            "strings": self.strings.strings, "non_text": self.strings.non_text,
            "cut_names": self.strings.cut,
            "non_str": self.strings.non_str_ids(),
            "lanes": [(lk.pid, lk.tid, lk.sub, lk.gpu, lk.device, lk.stream)
                      for lk in self.lanes],
            "counter_tracks": self.counter_tracks,
            "flow_keys": list(self._flow_keys.items()),
            "open_b": self.open_b, "extra_args": self.extra_args,
            "meta": (self.process_names, self.process_labels, self.process_sort,
                     self.thread_names, self.thread_sort),
            "header": self.header,
            "counts": {name: getattr(self, name).count for name in COLUMN_SETS},
        }

    def column_sizes(self) -> list[int]:
        """The byte size of each buffer :meth:`column_buffers` will hand out, in order."""
        return [getattr(self, name).count * a.dtype.itemsize
                for name in COLUMN_SETS for a in getattr(self, name).arrays.values()]

    def column_buffers(self) -> Iterator[memoryview | bytes]:
        """Each column of each set as bytes, in :data:`COLUMN_SETS` order; each column is
        freed once the next is asked for (while the receiver's columns grow, these shrink)."""
        for name in COLUMN_SETS:
            cols = getattr(self, name)
            n = cols.count
            for k in list(cols.arrays):
                a = cols.arrays[k]
                cols.arrays[k] = np.empty(0, a.dtype)  # only the consumer's view holds it now
                yield memoryview(a[:n]).cast("B") if n else b""
                del a
            cols.clear()

    def can_merge(self, part: dict[str, Any]) -> bool:
        """False when one stream could pair events differently: a B still open here could
        have been ended by an E that the part, not knowing it, dropped."""
        return not (part["skipped"].get("E without a matching B") and any(self.open_b.values()))

    def merge(self, part: dict[str, Any], fill: Callable[[memoryview | None], None]) -> None:
        """Append a later range's builder, given as :meth:`part` and its column bytes:
        ``fill(view)`` writes the next column's bytes into ``view`` (None: an empty column).
        What the part numbered on its own (strings, lanes, counter tracks, flow keys, rows)
        is renumbered into this builder's numbering (under its lock: snapshots wait)."""
        m = part
        row0 = self.items
        with self.lock:
            st = self.strings
            slut = np.array([st.intern(t) for t in m["strings"]], np.int32)
            st.merge_non_str(m["non_str"], slut, m["non_text"])
            st.cut += m.get("cut_names", 0)
            luts = {"string": slut, "lane": self._merge_lanes(m["lanes"]),
                    "track": self._merge_tracks(m["counter_tracks"])}
            fk_old, fk_new = self._merge_flow_keys(m["flow_keys"], slut)
            for name in COLUMN_SETS:
                cols = getattr(self, name)
                n = m["counts"][name]
                at = cols.count
                cols.reserve(at + n)
                got = {}
                for k, a in cols.arrays.items():
                    view = a[at : at + n]
                    fill(memoryview(view).cast("B") if n else None)
                    got[k] = view
                if not n:
                    continue
                for k, view in got.items():
                    how = _RENUMBER.get(k)
                    if how == "row":
                        view += np.uint32(row0)
                    elif how == "flow_key":
                        self._renumber_flow_keys(view, slut, fk_old, fk_new)
                    elif how is not None:
                        np.take(luts[how], view, out=view)
                cols.count = at + n
            for lane, stack in m["open_b"].items():
                if stack:
                    self.open_b.setdefault(int(luts["lane"][lane]), []).extend(
                        (s, int(slut[nm]), int(slut[ct]), r + row0) for s, nm, ct, r in stack)
            for r, a in m["extra_args"].items():
                self.extra_args[r + row0] = a
            mines: tuple[dict[Any, Any], ...] = (self.process_names, self.process_labels,
                                                 self.process_sort, self.thread_names,
                                                 self.thread_sort)
            for mine, theirs in zip(mines, m["meta"]):
                mine.update(theirs)
            self.header.update(m["header"])
            self.items += m["items"]
            self.events += m["events"]
            for mine, theirs in ((self.phase_counts, m["phase_counts"]),
                                 (self.skipped, m["skipped"]), (self.notes, m["notes"])):
                for k, v in theirs.items():
                    mine[k] = mine.get(k, 0) + v
            rows = m.get("example_rows", {})
            for k, ex in m.get("examples", {}).items():  # the first in file order
                self._skip(k, 0, ex, rows.get(k, 0) + row0)

    def _merge_lanes(self, lanes: list[tuple]) -> np.ndarray:
        llut = np.zeros(max(len(lanes), 1), np.int32)
        for i, (pid, tid, sub, gpu, device, stream) in enumerate(lanes):
            li = self.lane_id(pid, tid, sub)
            llut[i] = li
            if gpu:
                lk = self.lanes[li]
                lk.gpu = True
                if lk.device < 0:
                    lk.device = device
                if lk.stream < 0:
                    lk.stream = stream
        return llut

    def _merge_tracks(self, tracks: list[tuple]) -> np.ndarray:
        tlut = np.zeros(max(len(tracks), 1), np.int32)
        for i, key in enumerate(tracks):
            t = self._counter_ids.get(key)
            if t is None:
                t = self._counter_ids[key] = len(self.counter_tracks)
                self.counter_tracks.append(key)
            tlut[i] = t
        return tlut

    def _merge_flow_keys(self, flow_keys: list[tuple[Any, int]],
                         slut: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The part's dict-numbered flow keys, sorted, and this builder's key for each."""
        fk_old = np.array([k for _, k in flow_keys], np.int64)
        fk_new = np.zeros(len(fk_old), np.int64)
        for j, (key, _) in enumerate(flow_keys):
            if key[0] == "v2":
                fk_new[j] = self._flow_keys.setdefault(key, _FLOW_DICT_BASE + len(self._flow_keys))
            else:
                fk_new[j] = self.flow_key(int(slut[key[0]]), key[1])
        order = np.argsort(fk_old)
        return fk_old[order], fk_new[order]

    def _renumber_flow_keys(self, key: np.ndarray, slut: np.ndarray, fk_old: np.ndarray,
                            fk_new: np.ndarray) -> None:
        packed = key < _FLOW_DICT_BASE
        if packed.any():
            kp = key[packed]
            cat = slut[kp >> 40].astype(np.int64)
            fid = kp & (_FLOW_ID_LIMIT - 1)
            if (cat < _FLOW_CAT_LIMIT).all():
                key[packed] = cat << 40 | fid
            else:  # a category id too big to pack here: numbered through the dict
                key[packed] = [self.flow_key(int(c), int(i)) for c, i in zip(cat, fid)]
        dict_keys = ~packed
        if dict_keys.any():
            k = key[dict_keys]
            key[dict_keys] = fk_new[np.searchsorted(fk_old, k)]

    # -- accounting ------------------------------------------------------------------------
    def _skip(self, reason: str, n: int = 1, example: str | None = None, row: int = 0) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + n
        # the example is the first in file order (``row``): a batch is handled a phase at
        # a time, so the first one met need not be the first one written
        if example is not None and row < self._example_rows.get(reason, 1 << 62):
            self.examples[reason] = example
            self._example_rows[reason] = row

    def _skip_time(self, v: Any, what: str, row: int) -> None:
        """Count the event of ``row``, skipped for its ``ts``/``dur`` value ``v`` (the rare
        branch)."""
        reason, example = _time_problem(v, what)
        self._skip(reason, 1, example, row)

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
        """Lane ids (no sub-lane) of events by their pids and tids: per event one lookup of
        a (pid, tid) pair made in C (zip), the common case."""
        get = self._thread_lanes.get
        n = len(pids)
        if n > 1 and pids.count(pids[0]) == n and tids.count(tids[0]) == n:
            try:  # one thread's events (counted in C): one lookup
                got = get((pids[0], tids[0]))
            except TypeError:
                got = None
            if got is not None:
                return np.full(n, got, np.int32)
        pairs: Any = zip(pids, tids)
        try:
            ids = list(map(get, pairs))
        except TypeError:
            pairs = [(_hashable(p), _hashable(t)) for p, t in zip(pids, tids)]
            ids = list(map(get, pairs))
        if None in ids:
            if not isinstance(pairs, list):
                pairs = list(zip(pids, tids))
            ids = [i if i is not None else self._thread_lane(*k) for i, k in zip(ids, pairs)]
        return np.array(ids, dtype=np.int32)

    def _thread_lane(self, pid: Any, tid: Any) -> int:
        got = self._thread_lanes[(pid, tid)] = self.lane_id(pid, tid)
        return got

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
            try:
                codes = np.fromiter(map(_PH_CODE.__getitem__, phs), np.int8, n)
            except TypeError:  # an unhashable ph
                get = _PH_CODE.get
                codes = np.array([get(p, 0) if isinstance(p, str) else 0 for p in phs], np.int8)
            groups = {}
            present = np.bincount(codes, minlength=len(_CODE_PH))
            for code in np.flatnonzero(present).tolist():
                groups[_CODE_PH[code]] = np.flatnonzero(codes == code)
        with self.lock:
            for ph, idx in groups.items():
                if idx is None:
                    evs, rows = batch, np.arange(first_row, first_row + n, dtype=np.int64)
                else:
                    evs = list(map(batch.__getitem__, idx.tolist()))
                    rows = idx.astype(np.int64) + first_row
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

    def _times(self, evs: list[Any], rows: np.ndarray) -> tuple[list[Any], np.ndarray, np.ndarray]:
        """ts of events as ns, dropping (and counting) events without a usable ts."""
        ts, ok = us_to_ns([e.ts for e in evs])
        if ok is not None and not ok.all():
            for i in np.flatnonzero(~ok).tolist():
                self._skip_time(evs[i].ts, "ts", int(rows[i]))
            idx = np.flatnonzero(ok)
            evs, ts, rows = [evs[i] for i in idx], ts[idx], rows[idx]
        return evs, ts, rows

    def _count(self, ph: str, n: int) -> None:
        self.events += n
        self.phase_counts[ph] = self.phase_counts.get(ph, 0) + n

    def _add_instants(self, evs: list[Any], rows: np.ndarray) -> None:
        evs, ts, rows = self._times(evs, rows)
        if not evs:
            return
        self._count("i", len(evs))
        lanes = self._lane_ids_for([e.pid for e in evs], [e.tid for e in evs])
        names = [e.name for e in evs]
        n_mem = names.count("[memory]")  # (in C; all of them, in a profile_memory trace)
        if n_mem:
            # memory events are columns of their own (time, thread, args), not instants
            # drawn on their thread (their rows under the lanes show them): at millions of
            # them, interning and sorting them as instants was most of their load
            if n_mem == len(evs):
                mem, args = np.arange(n_mem), [e.args for e in evs]
            else:
                mem = np.array([k for k, name in enumerate(names) if name == "[memory]"])
                args = [evs[k].args for k in mem.tolist()]
            kept = self._add_memory(args, rows[mem], ts[mem], lanes[mem])
            other = np.ones(len(evs), bool)
            other[mem[kept]] = False  # (a free-form one stays an instant)
            if not other.any():
                return
            if not other.all():
                idx = np.flatnonzero(other)
                evs = [evs[i] for i in idx.tolist()]
                ts, rows, lanes = ts[idx], rows[idx], lanes[idx]
                names = [names[i] for i in idx.tolist()]
        name_ids = self.strings.intern_many(names)
        cats = self.strings.intern_many([e.cat for e in evs])
        self.instants.append(lane=lanes, ts=ts, name=name_ids, cat=cats, row=rows)

    def _add_memory(self, args: list[Any], rows: np.ndarray, ts: np.ndarray,
                    lanes: np.ndarray) -> np.ndarray:
        """``[memory]`` instants as columns: their rows, times, lanes and args (``Bytes`` not
        an integer: not an allocation, said in the warnings). A column of plain ints (the
        common case) is converted at once; anything else value by value. Which of them were
        kept (a mask)."""
        n = len(args)
        got: dict[str, np.ndarray] = {}
        if set(map(type, args)) == {MemoryArgs}:  # (typed as decoded: the common case)
            for col in ("bytes", *(c for c, _ in _MEMORY_ARGS), "addr"):
                vals = list(map(operator.attrgetter(col), args))
                got[col] = _int_column(vals, MEMORY_COLUMNS[col],
                                       None if col == "bytes" else -1)
        else:  # loose records' dicts (odd values elsewhere in their piece), or no args
            args = [memory_args(a) if type(a) is MemoryArgs else a if type(a) is dict else {}
                    for a in args]
            for col, key in (("bytes", "Bytes"), *_MEMORY_ARGS, ("addr", "Addr")):
                vals = [a.get(key) for a in args]
                got[col] = _int_column(vals, MEMORY_COLUMNS[col],
                                       None if col == "bytes" else -1)
        b = got["bytes"]
        keep = ~np.isnan(b) if b.dtype.kind == "f" else None
        if keep is not None:  # (some Bytes were not integers: a float column with nans)
            bad = int((~keep).sum())
            self._note("[memory] events without an integer Bytes (not counted as memory)", bad)
            if bad == n:
                return keep
            got = {k: v[keep] for k, v in got.items()}
            got["bytes"] = got["bytes"].astype(np.int64)
            rows, ts, lanes = rows[keep], ts[keep], lanes[keep]
        self.memory.append(row=rows, ts=ts, lane=lanes, **got)
        return keep if keep is not None else np.ones(n, bool)

    def _add_flows(self, ph: str, evs: list[Any], rows: np.ndarray) -> None:
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
            enclosing = np.array([e.bp == "e" for e in evs], np.int8)
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

    def _add_complete(self, xs: list[Any], rows: np.ndarray) -> None:
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
            for i in np.flatnonzero(~ok).tolist():
                self._skip_time(xs[i].ts, "ts", int(rows[i]))
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
                    self._skip_time(durs[i], "dur", int(rows[i]))
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
        sub = [xs[i].args for i in idx.tolist()]
        # typed records hold KernelArgs (or None: no args); loose ones anything
        if type(xs[0]) is LooseEvent or None in sub:
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
        missing = vals.count(None)
        if missing == len(vals):
            return
        if missing:
            keep = np.array([v is not None for v in vals], bool)
            rows, vals = rows[keep], [v for v in vals if v is not None]
        values: Any
        try:
            values = np.array(vals, dtype=np.int64)
            if values.shape != (len(vals),):
                raise ValueError("not one number per event")
        except (TypeError, ValueError, OverflowError):
            values = [_int_or(x) for x in vals]
        cols.append(row=rows, value=values)

    def _gpu_fields(self, sub: list[Any], lanes: np.ndarray, rows: np.ndarray) -> None:
        """Typed columns for kernels/memcpy/memset: one comprehension per field."""
        cols: dict[str, Any] = {"row": rows}
        for key, (field, dtype, default) in _GPU_FIELDS.items():
            vals = list(map(operator.attrgetter(key), sub))
            if None in vals:
                vals = [default if v is None else v for v in vals]
            try:
                if dtype is np.float32:
                    with np.errstate(over="ignore"):  # beyond float32: inf, absent below
                        arr = np.array(vals, dtype=dtype)
                else:
                    arr = np.array(vals, dtype=dtype)
                ok = arr.shape == ((len(vals), 3) if default is _NO3 else (len(vals),))
                if ok and dtype is np.float32 and np.isinf(arr).any():
                    ok = False  # beyond float32 (1e39, or 1e400 read exactly): as absent
            except (TypeError, ValueError, OverflowError):
                ok = False
            if not ok:
                conv = _dim3 if default is _NO3 else (_float32_or if dtype is np.float32 else _int_or)
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
            cols["occupancy"] = np.array([_float32_or(a.occupancy_theoretical) for a in sub],
                                         np.float32)
        device, stream = cols.pop("device"), cols.pop("stream")  # lane facts, not columns
        plain = None  # the events whose every typed field is its default
        for col, a in cols.items():
            if col != "row":
                d = GPU_COLUMNS[col][1]
                same = np.isnan(a) if d != d else a == d
                plain = same if plain is None else plain & same
        if plain is None or not plain.any():
            self.gpu.append(**cols)
        elif plain.all():
            self.gpu_plain.append(row=rows)
        else:
            self.gpu_plain.append(row=rows[plain])
            full = ~plain
            self.gpu.append(**{col: a[full] for col, a in cols.items()})
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

    def _add_other(self, e: Any, row: int) -> None:
        ph = e.ph
        if ph == "M":
            self._metadata(e)
            return
        if not isinstance(ph, str):
            self._skip("missing ph" if ph is None else "ph not a string")
            return
        ts = _one_us_to_ns(e.ts)
        if ts is None:
            self._skip_time(e.ts, "ts", row)
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

    def _flow_v2(self, e: Any, ts: int, lane: int) -> None:
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
                numeric = isinstance(v, (int, float, Decimal)) and not isinstance(v, bool)
                self._note("counter values beyond float64 (ignored)" if numeric
                           else "non-numeric counter values (ignored)")
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

    def _metadata(self, e: Any) -> None:
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
