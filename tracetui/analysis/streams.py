"""Busy time, utilisation and idle gaps of every lane over the trace span."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..trace import LANE_CPU, LANE_GPU, Trace
from . import intervals as iv


def stream_stats(trace: Trace) -> list[dict[str, Any]]:
    """GPU stream lanes (all their work) and CPU thread lanes (top-level slices)."""
    span = max(trace.end_ns, 1)
    out = []
    for ln in trace.lanes:
        if ln.count == 0 or ln.kind not in (LANE_GPU, LANE_CPU):
            continue
        if ln.kind == LANE_GPU:
            rows = np.arange(ln.lo, ln.hi)
        else:
            di = ln.depth_index(0)
            rows = np.arange(di.lo, di.hi)
        u = iv.union(trace.start[rows], trace.start[rows] + trace.dur[rows])
        busy = iv.total(u)
        gaps = u[0][1:] - u[1][:-1] if len(u[0]) > 1 else np.zeros(0, np.int64)
        k = int(np.argmax(gaps)) if len(gaps) else -1
        out.append({
            "lane": ln.name,
            "kind": ln.kind,
            "device": ln.device if ln.device >= 0 else None,
            "stream": ln.stream if ln.stream >= 0 else None,
            "slices": ln.count,
            "busy_us": round(busy / 1000, 3),
            "utilization_pct": round(100 * busy / span, 2),
            "first_us": round(int(u[0][0]) / 1000, 3) if len(u[0]) else None,
            "last_us": round(int(u[1][-1]) / 1000, 3) if len(u[0]) else None,
            "idle_gaps": int(len(gaps)),
            "idle_us": round(int(gaps.sum()) / 1000, 3),
            "largest_gap_us": round(int(gaps[k]) / 1000, 3) if k >= 0 else 0.0,
            "largest_gap_at_us": round(int(u[1][k]) / 1000, 3) if k >= 0 else None,
        })
    return out
