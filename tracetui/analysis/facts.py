"""Facts about a loaded trace, as plain data (the first part of ``tracetui summary``)."""

from __future__ import annotations

import os
from typing import Any

from ..trace import Trace
from ..trace.source import shown_path


def _jsonable(v: Any) -> Any:
    return v if isinstance(v, (int, float, str)) or v is None else str(v)


def trace_facts(trace: Trace) -> dict[str, Any]:
    """File, size, event counts, time span, lanes and warnings of ``trace``."""
    lanes = []
    for ln in trace.lanes:
        lanes.append({
            "name": ln.name,
            "kind": ln.kind,
            "pid": _jsonable(ln.pid),
            "tid": _jsonable(ln.tid),
            "device": ln.device if ln.device >= 0 else None,
            "stream": ln.stream if ln.stream >= 0 else None,
            "events": ln.count + len(ln.instants),
            "slices": ln.count,
            "instants": int(len(ln.instants)),
            "max_depth": ln.max_depth,
        })
    for c in trace.counters:
        lanes.append({"name": c.name, "kind": "counter", "pid": _jsonable(c.pid), "tid": None,
                      "device": None, "stream": None, "events": int(len(c.ts)),
                      "slices": 0, "instants": 0, "max_depth": 0})
    return {
        "file": shown if (shown := shown_path(trace.path)) != trace.path else os.path.abspath(trace.path),
        "size_bytes": trace.size,
        "compressed": trace.compressed,
        "events": trace.events,
        "ph_counts": dict(sorted(trace.phase_counts.items())),
        "slices": trace.slice_count,
        "flows": int(len(trace.flow_src)),
        "kernel_launch_links": len(trace.launch_of),
        "span_ns": trace.end_ns,
        # the slices' time: what the view opens on and utilisation is measured over
        "slices_start_ns": trace.slices_span[0],
        "slices_end_ns": trace.slices_span[1],
        "start_abs_ns": trace.t0_abs_ns,
        "devices": trace.devices,
        "distributed_info": {k: _jsonable(v) for k, v in trace.distributed_info.items()},
        "truncated": trace.truncated,
        "warnings": list(trace.warnings),
        "lanes": lanes,
    }
