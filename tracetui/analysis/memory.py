"""Memory over time, per device: the ``[memory]`` events of ``profile_memory=True`` traces.

Each event is one allocation (``Bytes`` > 0) or free (< 0) on a device (``Device Type``:
0 CPU, 1 CUDA, 6 HIP on ROCm traces; ``Device Id``). Newer traces also say the device's
``Total Allocated`` and ``Total Reserved`` after it; the curve is then theirs. The 2021
schema does not: the curve is then the running sum of ``Bytes`` from the trace's start, so
relative to what was allocated before the profile began (said as ``relative``).

Pure: numpy only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..trace import Trace

#: Kineto's DeviceType values (c10/core/DeviceType.h) that traces carry
DEVICE_TYPES = {0: "CPU", 1: "CUDA", 2: "MKLDNN", 3: "OPENGL", 4: "OPENCL", 5: "IDEEP",
                6: "HIP", 7: "FPGA", 8: "MAIA", 9: "XLA", 10: "Vulkan", 11: "Metal",
                12: "XPU", 13: "MPS", 14: "Meta", 15: "HPU", 16: "VE", 17: "Lazy",
                18: "IPU", 19: "MTIA", 20: "PrivateUse1"}


def _us(ns: float) -> float:
    return round(float(ns) / 1000.0, 3)


def device_label(device_type: int, device_id: int) -> str:
    """``CUDA:0``, ``CPU`` (a CPU's id is -1), ``type 42:1`` for a type not known here."""
    name = DEVICE_TYPES.get(int(device_type), f"type {int(device_type)}")
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
    allocations = []
    for i in o.tolist():
        e, f = int(al[i]), int(fr[i])
        allocations.append({
            "device": device_label(int(m.device_type[e]), int(m.device_id[e])),
            "bytes": int(m.bytes[e]),
            "alloc_us": _us(m.ts[e]),
            "free_us": _us(m.ts[f]) if f >= 0 else None,
            "lifetime_us": _us(life[i]),
            "op": _name(trace, innermost(trace, int(m.lane[e]), int(m.ts[e]))),
            "addr": int(m.addr[e]) or None,
        })
    return {"memory": devices, "memory_allocations": allocations}


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
