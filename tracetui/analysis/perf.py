"""How well an operator's device time is spent: FLOPs, bytes, achieved TFLOP/s and TB/s,
arithmetic intensity, roofline percent and Tensor Core share.

- FLOPs and bytes per occurrence: :mod:`tracetui.analysis.flops`, from the op's args re-read
  from the file (the index keeps no args) — only for the ops that have a formula.
- The time they are spent over: the occurrence's device total (GPU work launched anywhere
  below it, :mod:`tracetui.analysis.operators`). Achieved TFLOP/s = FLOPs ÷ that time.
- Roofline time = max(FLOPs ÷ peak FLOP/s of the dtype, bytes ÷ peak bandwidth); roofline
  percent = roofline time ÷ device time: 100 % is the datasheet's bound, reached. Peaks:
  :mod:`tracetui.analysis.peaks` (dense datasheet figures), matched on ``deviceProperties``;
  an unknown device gets no percent, never a guess. A float32 op whose kernels ran on Tensor
  Cores is held to the TF32 peak, else to FP32's.
- Tensor Core share: of the device total, the time in kernels whose names say they use
  Tensor Cores (:mod:`tracetui.analysis.tensorcores`).

Pure: numpy only.
"""

from __future__ import annotations

import weakref
from typing import Any, Iterable, Iterator

import numpy as np

from ..trace import Trace
from .collectives import COLL_FIELDS, decode_fields
from .flops import INPUT_FIELDS, Cost, has_formula, op_cost
from .peaks import Peaks, device_peaks, dtype_class, peak_tflops
from .rules import COMM, COMP
from .tensorcores import tensor_core_mask

_NOT_YET: Any = object()
_TC_CACHE: "weakref.WeakKeyDictionary[Trace, np.ndarray]" = weakref.WeakKeyDictionary()


def tensor_core_ids(trace: Trace, classes: np.ndarray) -> np.ndarray:
    """Per string id, whether it names a GPU kernel (computation or communication) that
    runs on Tensor Cores (each distinct name matched once, kept for the trace)."""
    got = _TC_CACHE.get(trace)
    if got is not None and len(got) == len(trace.strings):
        return got
    n = len(trace.strings)
    used = np.zeros(n, bool)
    kern = (classes == COMP) | (classes == COMM)
    if kern.any():
        used[trace.name[kern]] = True
    ids = np.flatnonzero(used)
    out = np.zeros(max(n, 1), bool)
    if len(ids):
        strings = trace.strings
        out[ids] = np.array(tensor_core_mask([strings[i] for i in ids.tolist()]), bool)
    _TC_CACHE[trace] = out
    return out


def tensor_core_rows(trace: Trace, classes: np.ndarray) -> np.ndarray:
    """Per slice, whether it is a computation kernel on Tensor Cores."""
    return tensor_core_ids(trace, classes)[trace.name] & (classes == COMP)


def trace_peaks(trace: Trace, overrides: dict | None = None) -> Peaks | None:
    """The peaks of the trace's GPUs: those of its ``deviceProperties`` name when every GPU
    it lists has the one name and the table (or the config's ``[peaks]``) knows it."""
    names = {p.get("name") for p in trace.device_properties if isinstance(p, dict)}
    names.discard(None)
    if len(names) != 1:
        return None
    name = next(iter(names))
    return device_peaks(name, overrides) if isinstance(name, str) else None


def peaks_record(peaks: Peaks | None) -> dict[str, Any] | None:
    """The peaks a report's roofline percents are against (None: the device is unknown)."""
    if peaks is None:
        return None
    return {"device": peaks.device, "tflops": dict(peaks.tflops), "tbps": peaks.tbps,
            "source": peaks.source}


def with_formula(trace: Trace, rows: np.ndarray) -> np.ndarray:
    """Those of ``rows`` whose op has a FLOPs formula (whose args :func:`occurrence_costs`
    reads)."""
    if not len(rows):
        return rows
    names = trace.name[rows]
    ids = np.unique(names)
    strings = trace.strings
    has = np.array([has_formula(strings[i]) for i in ids.tolist()], bool)
    return rows[has[np.searchsorted(ids, names)]]


#: how many of the ops with a formula are read to tell whether the trace has shapes at all
SHAPES_SAMPLE = 32


def with_shapes(trace: Trace, rows: np.ndarray) -> np.ndarray:
    """``rows`` (ops with a formula), or none of them when a sample spread over them has no
    ``Input Dims``: shapes are recorded for every op of a profile or for none
    (``record_shapes``), and reading the args of a hundred thousand ops for nothing took
    two seconds on a 300 MB trace."""
    if not len(rows):
        return rows
    pick = rows[np.unique(np.linspace(0, len(rows) - 1, min(SHAPES_SAMPLE, len(rows)))
                          .astype(np.int64))]
    for _, a in trace.args_many(pick):
        if isinstance(a, dict) and ("Input Dims" in a or "Input dims" in a):
            return rows
    return rows[:0]


#: what the FLOPs and the collectives read of the ops' args, in one pass over the file
READ_FIELDS = INPUT_FIELDS + COLL_FIELDS


def occurrence_costs(trace: Trace, rows: np.ndarray, raw: dict[int, bytes] | None = None
                     ) -> Iterator[tuple[int, Cost | None]]:
    """(row, cost) of each of ``rows`` whose op has a formula, in file order (each piece of
    the file decoded once; ``raw``: their :data:`READ_FIELDS` already read, the rows not in
    it left out); the others not read."""
    rows = with_formula(trace, rows)
    if raw is not None:  # only those read (a trace without shapes: none of them)
        rows = rows[np.isin(rows, np.fromiter(raw.keys(), np.int64, len(raw)))]
    if not len(rows):
        return
    strings = trace.strings
    got: Iterable[tuple[int, Any]] = ((r, raw[r]) for r in rows.tolist()) \
        if raw is not None else trace.args_many(rows, READ_FIELDS)
    # the same op with the same inputs (the same text) costs the same: each distinct one
    # decoded and worked out once
    memo: dict[tuple, Cost | None] = {}
    names = trace.name
    for r, t in got:
        key = (int(names[r]), t)
        cost = memo.get(key, _NOT_YET)
        if cost is _NOT_YET:
            args = decode_fields(t)
            cost = memo[key] = op_cost(strings[key[0]], args) if args else None
        yield r, cost


class Costs:
    """Per operator occurrence (positions in an op tree's rows): FLOPs (-1: unknown), bytes
    (-1: unknown) and the dtype class of its first tensor input."""

    def __init__(self, n: int) -> None:
        self.flops = np.full(n, -1, np.int64)
        self.bytes = np.full(n, -1, np.int64)
        self.dtype: dict[int, str] = {}  # position -> the first input's type

    def put(self, pos: int, cost: Cost | None) -> None:
        if cost is None:
            return
        self.flops[pos] = cost.flops if cost.flops < 2**62 else -1
        self.bytes[pos] = cost.bytes if cost.bytes is not None and cost.bytes < 2**62 else -1
        if cost.dtype:
            self.dtype[pos] = cost.dtype


def _rnd(v: float | None, nd: int = 3) -> float | None:
    return None if v is None or not np.isfinite(v) else round(float(v), nd)


def perf_fields(flops: int | None, nbytes: int | None, known_calls: int, dev_ns: float,
                tc_ns: float, all_dev_ns: float, dtypes: Iterable[str],
                peaks: Peaks | None) -> dict[str, Any]:
    """An operator row's figures: ``flops``/``bytes`` over the ``known_calls`` occurrences
    whose FLOPs are known and their device time ``dev_ns``; the Tensor Core share of the
    row's whole device time ``all_dev_ns`` (``tc_ns`` of it on Tensor Cores)."""
    sec = dev_ns / 1e9
    out: dict[str, Any] = {
        "flops": flops, "bytes": nbytes, "flops_calls": known_calls,
        "achieved_tflops": _rnd(flops / sec / 1e12) if flops is not None and sec > 0 else None,
        "achieved_tbps": _rnd(nbytes / sec / 1e12, 4) if nbytes is not None and sec > 0
        else None,
        "intensity": _rnd(flops / nbytes, 2) if flops is not None and nbytes else None,
        "roofline_pct": None,
        "tensor_core_pct": _rnd(100.0 * tc_ns / all_dev_ns, 2) if all_dev_ns > 0 else None,
    }
    if peaks is not None and flops is not None and sec > 0:
        kinds = {dtype_class(t, tc_ns > 0) for t in dtypes}
        kinds.discard(None)
        if len(kinds) == 1:
            pf = peak_tflops(peaks, next(iter(kinds)))  # type: ignore[arg-type]
            if pf:
                t = flops / (pf * 1e12)
                if nbytes is not None and peaks.tbps:
                    t = max(t, nbytes / (peaks.tbps * 1e12))
                out["roofline_pct"] = _rnd(100.0 * t / sec, 2)
    return out
