"""Memory over time, per device: the ``[memory]`` events of ``profile_memory=True`` traces.

Each event is one allocation (``Bytes`` > 0) or free (< 0) on a device (``Device Type``:
0 CPU, 1 CUDA, 6 HIP on ROCm traces; ``Device Id``). Newer traces also say the device's
``Total Allocated`` and ``Total Reserved`` after it; the curve is then theirs. The 2021
schema does not: the curve is then the running sum of ``Bytes`` from the trace's start, so
relative to what was allocated before the profile began (said as ``relative``).

Pure: numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from ..trace import Trace
from ..trace.combine import rank_of_cpu

#: Kineto's DeviceType values (c10/core/DeviceType.h) that traces carry
DEVICE_TYPES = {0: "CPU", 1: "CUDA", 2: "MKLDNN", 3: "OPENGL", 4: "OPENCL", 5: "IDEEP",
                6: "HIP", 7: "FPGA", 8: "MAIA", 9: "XLA", 10: "Vulkan", 11: "Metal",
                12: "XPU", 13: "MPS", 14: "Meta", 15: "HPU", 16: "VE", 17: "Lazy",
                18: "IPU", 19: "MTIA", 20: "PrivateUse1"}


def _us(ns: float) -> float:
    return round(float(ns) / 1000.0, 3)


def device_label(device_type: int, device_id: int) -> str:
    """``CUDA:0``, ``CPU`` (a CPU's id is -1; ``CPU r3``: rank 3's in a combined timeline),
    ``type 42:1`` for a type not known here."""
    name = DEVICE_TYPES.get(int(device_type), f"type {int(device_type)}")
    rank = rank_of_cpu(int(device_id))
    if rank is not None:
        return f"{name} r{rank}"
    return name if int(device_id) < 0 else f"{name}:{int(device_id)}"


def curve(trace: Trace, sel: np.ndarray) -> tuple[np.ndarray, bool]:
    """(bytes allocated after each of the events ``sel`` of one device, in time order; whether
    it is relative - the running sum of ``Bytes`` - because the trace gives no totals)."""
    m = trace.memory
    total = m.allocated[sel]
    if len(total) and bool((total >= 0).all()):
        return total, False
    return np.cumsum(m.bytes[sel]), True


def innermost(trace: Trace, lane: int, t: int) -> int:
    """The row of the innermost slice (Python frames left out) running at ``t`` on the
    thread lane ``lane`` (:meth:`Lane.slice_at` at each depth, deepest first), or -1."""
    if not 0 <= lane < len(trace.lanes):
        return -1
    ln = trace.lanes[lane]
    for d in range(ln.depths(folded=True) - 1, -1, -1):
        r = ln.slice_at(t, d, folded=True)
        if r >= 0:
            return r
    return -1


def _name(trace: Trace, row: int) -> str | None:
    return trace.name_of(row) if row >= 0 else None


#: allocations listed in ``memory_allocations[]``
TOP_ALLOCATIONS = 100


def pairs(trace: Trace, sel: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The allocations with an ``Addr`` among the events ``sel`` of one device (in time
    order) and the free of each, by address: (allocation events, their frees or -1 where
    none follows in the trace, frees that no allocation in the trace precedes); as indices
    into the trace's memory events. Events without an address (the 2021 schema) are in
    none of them."""
    m = trace.memory
    a = m.addr[sel]
    known = np.flatnonzero(a > 0)
    ev = sel[known]
    o = np.lexsort((np.arange(len(ev)), a[known]))  # by address, then in time
    ev = ev[o]
    addr = m.addr[ev]
    b = m.bytes[ev]
    same_next = np.zeros(len(ev), bool)
    same_next[:-1] = addr[1:] == addr[:-1]
    is_alloc = b > 0
    # an allocation freed by the next event at its address
    paired = is_alloc & same_next & np.r_[b[1:] < 0, False]
    alloc_ev = ev[is_alloc]
    free_of = np.full(len(ev), -1, np.int64)
    free_of[np.flatnonzero(paired)] = ev[np.flatnonzero(paired) + 1]
    freed_by_pair = np.zeros(len(ev), bool)
    freed_by_pair[np.flatnonzero(paired) + 1] = True
    orphan_frees = ev[(b < 0) & ~freed_by_pair]
    return alloc_ev, free_of[is_alloc], orphan_frees


def _device_keys(trace: Trace) -> np.ndarray:
    m = trace.memory
    return m.device_type.astype(np.int64) << 32 | (m.device_id.astype(np.int64) + 2**31)


def memory_allocations(trace: Trace, top: int = TOP_ALLOCATIONS) -> list[dict[str, Any]]:
    """The ``top`` largest allocations (then the longest lived) of all devices, each with
    its free by ``Addr`` (:func:`memory_sections`)."""
    return memory_sections(trace, top)["memory_allocations"]


def memory_devices(trace: Trace) -> list[dict[str, Any]]:
    """One row per device (:func:`memory_sections`)."""
    return memory_sections(trace)["memory"]


def memory_sections(trace: Trace, top: int = TOP_ALLOCATIONS) -> dict[str, list[dict[str, Any]]]:
    """The report's ``memory`` (one row per device that allocated or freed: its peak - bytes,
    when, who -, the peak of its reserved memory where the trace says it, allocation and free
    counts and bytes, what is still allocated at the end; devices in type then id order) and
    ``memory_allocations`` (the ``top`` largest allocations, then the longest lived, each
    with its free by ``Addr``: when allocated and freed - null: still allocated at the end of
    the trace -, lifetime, and the innermost slice that allocated it), each device's events
    paired once for both."""
    m = trace.memory
    if not len(m):
        return {"memory": [], "memory_allocations": []}
    key = _device_keys(trace)
    devices = []
    got_a, got_f = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for k in np.unique(key).tolist():
        sel = np.flatnonzero(key == k)  # (in time order, as the events are)
        row = _device_row(trace, sel)
        if bool((m.addr[sel] > 0).any()):
            a, f, orphans = pairs(trace, sel)
            live = a[f < 0]
            row.update(live_at_end=int(len(live)), live_at_end_bytes=int(m.bytes[live].sum()),
                       frees_of_earlier=int(len(orphans)))
            got_a.append(a)
            got_f.append(f)
        else:  # no addresses (the 2021 schema): nothing can be paired
            row.update(live_at_end=None, live_at_end_bytes=None, frees_of_earlier=None)
        row["events"] = int(len(sel))
        devices.append(row)
    al, fr = np.concatenate(got_a), np.concatenate(got_f)
    life = np.where(fr >= 0, m.ts[np.maximum(fr, 0)] - m.ts[al], int(trace.end_ns) - m.ts[al])
    o = np.lexsort((m.ts[al], -life, -m.bytes[al]))[:top]
    allocations = [allocation_row(trace, int(al[i]), int(fr[i]), int(life[i]))
                   for i in o.tolist()]
    return {"memory": devices, "memory_allocations": allocations}


def allocation_row(trace: Trace, e: int, f: int, life: int | None) -> dict[str, Any]:
    """Memory event ``e`` (an allocation) as a row of ``memory_allocations``: its free
    ``f`` (-1: none in the trace, or the trace gives no addresses to pair by), its lifetime
    (to the free, else to the trace's end; None: unknown, no addresses)."""
    m = trace.memory
    return {
        "device": device_label(int(m.device_type[e]), int(m.device_id[e])),
        "bytes": int(m.bytes[e]),
        "alloc_us": _us(m.ts[e]),
        "free_us": _us(m.ts[f]) if f >= 0 else None,
        "lifetime_us": _us(life) if life is not None else None,
        "op": _name(trace, innermost(trace, int(m.lane[e]), int(m.ts[e]))),
        "addr": int(m.addr[e]) or None,
    }


class Allocations:
    """Every allocation of every device with its free by ``Addr`` (-1: none; a device
    without addresses - the 2021 schema - has its allocations, none paired), by the time it
    was made: what a marked range and the memory view list. Pairing sorts the events by
    address (seconds at millions of events: made once, off the UI thread)."""

    def __init__(self, trace: Trace) -> None:
        self.trace = trace
        m = trace.memory
        key = _device_keys(trace) if len(m) else np.zeros(0, np.int64)
        got_a, got_f, known = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], [
            np.zeros(0, bool)]
        for k in np.unique(key).tolist():
            sel = np.flatnonzero(key == k)
            if bool((m.addr[sel] > 0).any()):
                a, f, _ = pairs(trace, sel)
                got_a.append(a)
                got_f.append(f)
                known.append(np.ones(len(a), bool))
            else:
                a = sel[m.bytes[sel] > 0]
                got_a.append(a)
                got_f.append(np.full(len(a), -1, np.int64))
                known.append(np.zeros(len(a), bool))
        al, fr, kn = np.concatenate(got_a), np.concatenate(got_f), np.concatenate(known)
        o = np.argsort(m.ts[al], kind="stable")
        self.events, self.frees, self.paired = al[o], fr[o], kn[o]
        self.ts = m.ts[self.events]
        self._order: np.ndarray | None = None  # all of them, largest first (made once)

    def __len__(self) -> int:
        return len(self.events)

    def rows(self, t0: int | None = None, t1: int | None = None,
             top: int | None = None, within: tuple[np.ndarray, np.ndarray] | None = None
             ) -> list[dict[str, Any]]:
        """The allocations made in [t0, t1) (None: from the start, to the end), and where
        ``within`` is given, inside one of its intervals [start, end] (an operator's calls,
        as key_averages counts them: any thread); largest first, then the longest lived; at
        most ``top`` (None: all)."""
        m = self.trace.memory
        lo = 0 if t0 is None else int(np.searchsorted(self.ts, t0, side="left"))
        hi = len(self.ts) if t1 is None else int(np.searchsorted(self.ts, t1, side="left"))
        ev, fr, kn = self.events[lo:hi], self.frees[lo:hi], self.paired[lo:hi]
        if within is not None:
            s, e = within  # (a union: sorted and apart)
            t = self.ts[lo:hi]
            k = np.searchsorted(s, t, side="right") - 1
            inside = (k >= 0) & (t <= e[np.maximum(k, 0)])
            ev, fr, kn = ev[inside], fr[inside], kn[inside]
        end = int(self.trace.end_ns)
        life = np.where(fr >= 0, m.ts[np.maximum(fr, 0)] - m.ts[ev], end - m.ts[ev])
        whole = lo == 0 and hi == len(self.ts) and within is None
        if whole and self._order is not None:
            o = self._order
        else:
            o = np.lexsort((m.ts[ev], -life, -m.bytes[ev]))
            if whole:  # (the view's first table and its way back: sorted once)
                self._order = o
        if top is not None:
            o = o[:top]
        out = []
        for i in o.tolist():
            row = allocation_row(self.trace, int(ev[i]), int(fr[i]),
                                 int(life[i]) if kn[i] else None)
            row["event"] = int(ev[i])  # (the view goes to it)
            out.append(row)
        return out


def _device_row(trace: Trace, sel: np.ndarray) -> dict[str, Any]:
    """A device's row of ``memory`` but its pairs and count, from its events ``sel``."""
    m = trace.memory
    dtype, did = int(m.device_type[sel[0]]), int(m.device_id[sel[0]])
    c, relative = curve(trace, sel)
    i = int(np.argmax(c))  # the first time it reaches its peak
    b = m.bytes[sel]
    res = m.reserved[sel]
    res = res[res >= 0]
    # who: what ran on the thread of the event that reached the peak, and what made the
    # last allocation up to it
    at = int(sel[i])
    allocs_before = np.flatnonzero(b[: i + 1] > 0)
    last = int(sel[allocs_before[-1]]) if len(allocs_before) else -1
    return {
        "device_type": dtype,
        "device_id": did,
        "device": device_label(dtype, did),
        "relative": relative,
        "peak_allocated_bytes": int(c[i]),
        "peak_at_us": _us(m.ts[at]),
        "peak_reserved_bytes": int(res.max()) if len(res) else None,
        "peak_op": _name(trace, innermost(trace, int(m.lane[at]), int(m.ts[at]))),
        "peak_alloc_op": _name(trace, innermost(trace, int(m.lane[last]), int(m.ts[last])))
        if last >= 0 else None,
        "peak_alloc_bytes": int(m.bytes[last]) if last >= 0 else None,
        "end_allocated_bytes": int(c[-1]),
        "allocs": int((b > 0).sum()),
        "frees": int((b < 0).sum()),
        "alloc_bytes": int(b[b > 0].sum()),
        "free_bytes": int(-b[b < 0].sum()),
    }


# ------------------------------------------------------------------ curves for drawing
class RangeMax:
    """Exact maxima of ranges of an array, for a frame's bins over millions of events: the
    maximum of each block of :attr:`B` values and a sparse table over the blocks (memory:
    the blocks times their count's log, 10 MB at 5 M events), so a range costs two lookups
    and the at most 2 B values at its ends - a frame reads O(bins x B) values, whatever the
    window holds."""

    B = 64

    def __init__(self, values: np.ndarray) -> None:
        self.v = values
        nb = len(values) // self.B
        blocks = values[: nb * self.B].reshape(nb, self.B).max(axis=1) if nb \
            else values[:0].copy()
        self.table = [blocks]
        k = 1
        while (1 << k) <= nb:
            prev, h = self.table[-1], 1 << (k - 1)
            self.table.append(np.maximum(prev[:-h], prev[h:]))
            k += 1

    def query(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """max(values[lo[i]:hi[i]]) for each i (ranges not empty: hi > lo)."""
        lo, hi = np.asarray(lo, np.int64), np.asarray(hi, np.int64)
        v, b = self.v, self.B
        out = np.full(len(lo), np.iinfo(np.int64).min, np.int64) if v.dtype.kind == "i" \
            else np.full(len(lo), -np.inf)
        bl, bh = -(-lo // b), hi // b  # whole blocks [bl, bh)
        mid = bl < bh
        if mid.any():
            i = np.flatnonzero(mid)
            n = bh[i] - bl[i]
            k = np.log2(n).astype(np.int64)  # (exact for powers of two: n < 2^53)
            for kk in np.unique(k).tolist():
                j = i[k == kk]
                t = self.table[kk]
                out[j] = np.maximum(t[bl[j]], t[bh[j] - (1 << kk)])
        # the values outside whole blocks: the ends of a range that spans one, or all of it
        s1 = np.where(mid, lo, lo)
        e1 = np.where(mid, bl * b, hi)
        s2 = np.where(mid, bh * b, hi)
        e2 = hi
        starts = np.concatenate([s1, s2])
        ends = np.concatenate([e1, e2])
        owner = np.concatenate([np.arange(len(lo)), np.arange(len(lo))])
        keep = ends > starts
        starts, ends, owner = starts[keep], ends[keep], owner[keep]
        if len(starts):
            n = ends - starts
            first = np.cumsum(n) - n
            idx = np.repeat(starts - first, n) + np.arange(int(n.sum()))
            m = np.maximum.reduceat(v[idx], first)
            np.maximum.at(out, owner, m)
        return out


@dataclass
class DeviceCurve:
    """One device's memory over time, for drawing and reading at an instant: after each of
    its events (in time order), the bytes allocated and (where the trace says) reserved."""

    device_type: int
    device_id: int
    events: np.ndarray  # indices into the trace's memory events
    ts: np.ndarray  # their times (ns)
    allocated: np.ndarray
    reserved: np.ndarray | None
    relative: bool  # the running sum of Bytes (the trace gives no totals)
    _amax: RangeMax
    _rmax: RangeMax | None

    @property
    def label(self) -> str:
        return device_label(self.device_type, self.device_id)

    # (each read once: every frame draws with them, and each is a pass over the events)
    @cached_property
    def peak(self) -> int:
        """The position of the first event that reaches the peak."""
        return int(np.argmax(self.allocated))

    @cached_property
    def peak_bytes(self) -> int:
        return int(self.allocated[self.peak])

    @cached_property
    def peak_ts(self) -> int:
        return int(self.ts[self.peak])

    @cached_property
    def reserved_peak(self) -> int | None:
        """The most reserved (None where the trace does not say)."""
        return int(self.reserved.max()) if self.reserved is not None else None

    @cached_property
    def top(self) -> int:
        """The scale a chart draws to: the largest of allocated and reserved (>= 1)."""
        return max(self.peak_bytes, self.reserved_peak or 0, 1)

    def at(self, t: int) -> tuple[int | None, int | None]:
        """(allocated, reserved) after the last event at or before ``t`` (None before the
        first; a relative curve starts at 0)."""
        i = int(np.searchsorted(self.ts, t, side="right")) - 1
        if i < 0:
            return (0, None) if self.relative else (None, None)
        r = int(self.reserved[i]) if self.reserved is not None else None
        return int(self.allocated[i]), r

    def bins(self, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """The most allocated (and reserved) in each bin [edges[j], edges[j+1]): the level
        it enters with and every event in it (nan: before the first event), in O(bins)
        lookups however many events the bins hold."""
        i = np.searchsorted(self.ts, np.asarray(edges, np.int64), side="left")
        lo, hi = i[:-1], i[1:]
        out = []
        for vals, rm in ((self.allocated, self._amax), (self.reserved, self._rmax)):
            if vals is None or rm is None:
                out.append(None)
                continue
            carry = np.where(lo > 0, vals[np.maximum(lo - 1, 0)].astype(np.float64),
                             0.0 if self.relative else np.nan)
            got = hi > lo
            if got.any():
                m = rm.query(lo[got], hi[got]).astype(np.float64)
                carry[got] = np.fmax(carry[got], m)
            out.append(carry)
        return out[0], out[1]


def memory_curves(trace: Trace) -> list[DeviceCurve]:
    """Each device's curve (devices in type then id order); none without memory events."""
    m = trace.memory
    if not len(m):
        return []
    key = _device_keys(trace)
    out = []
    for k in np.unique(key).tolist():
        sel = np.flatnonzero(key == k)
        alloc, relative = curve(trace, sel)
        res = m.reserved[sel]
        reserved = res if len(res) and bool((res >= 0).all()) else None
        out.append(DeviceCurve(int(m.device_type[sel[0]]), int(m.device_id[sel[0]]), sel,
                               m.ts[sel], alloc, reserved, relative, RangeMax(alloc),
                               RangeMax(reserved) if reserved is not None else None))
    return out


def range_memory(curves: list[DeviceCurve], allocations: Allocations | None, t0: int, t1: int,
                 top: int = 5) -> dict[str, Any]:
    """The memory of a marked range [t0, t1): per device what was allocated (and reserved)
    at its start and its end and the most allocated inside it; the ``top`` largest
    allocations made inside it (None: the allocations are not paired yet)."""
    devices = []
    for c in curves:
        a0, r0 = c.at(t0 - 1)  # (what the range starts with: before its first instant)
        a1, r1 = c.at(t1 - 1)
        most, _ = c.bins(np.array([t0, max(t1, t0 + 1)], np.int64))
        devices.append({"device": c.label, "relative": c.relative, "start_bytes": a0,
                        "end_bytes": a1, "start_reserved": r0, "end_reserved": r1,
                        "max_bytes": None if np.isnan(most[0]) else int(most[0])})
    rows = allocations.rows(t0, t1, top) if allocations is not None else None
    return {"devices": devices, "allocations": rows}
