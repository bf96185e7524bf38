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
    thread lane ``lane`` (start <= t <= end), or -1."""
    if not 0 <= lane < len(trace.lanes):
        return -1
    ln = trace.lanes[lane]
    if ln.hi <= ln.lo:
        return -1
    for d in range(ln.depths(folded=True) - 1, -1, -1):
        di = ln.index_at(d, folded=True)
        if not len(di):
            continue
        k = int(np.searchsorted(di.starts, t, side="right")) - 1
        if k >= 0:
            r = int(di.rows_at(np.array([k]))[0])
            if int(trace.start[r]) + int(trace.dur[r]) >= t:
                return r
    return -1


def _name(trace: Trace, row: int) -> str | None:
    return trace.name_of(row) if row >= 0 else None


def memory_devices(trace: Trace) -> list[dict[str, Any]]:
    """One row per device that allocated or freed: its peak (bytes, when), the peak of its
    reserved memory where the trace says it, allocation and free counts and bytes; devices in
    type then id order."""
    m = trace.memory
    if not len(m):
        return []
    key = m.device_type.astype(np.int64) << 32 | (m.device_id.astype(np.int64) & 0xFFFFFFFF)
    out = []
    for k in np.unique(key).tolist():
        sel = np.flatnonzero(key == k)  # (in time order, as the events are)
        dtype, did = int(m.device_type[sel[0]]), int(m.device_id[sel[0]])
        c, relative = curve(trace, sel)
        i = int(np.argmax(c))  # the first time it reaches its peak
        b = m.bytes[sel]
        res = m.reserved[sel]
        res = res[res >= 0]
        # who: what ran on the thread of the event that reached the peak, and what made
        # the last allocation up to it
        at = int(sel[i])
        allocs_before = np.flatnonzero(b[: i + 1] > 0)
        last = int(sel[allocs_before[-1]]) if len(allocs_before) else -1
        out.append({
            "device_type": dtype,
            "device_id": did,
            "device": device_label(dtype, did),
            "relative": relative,
            "peak_allocated_bytes": int(c[i]),
            "peak_at_us": _us(m.ts[sel[i]]),
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
            "events": int(len(sel)),
        })
    return out
