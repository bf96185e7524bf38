"""Busy time, utilisation and idle gaps of every lane over the trace span; on GPU streams
the idle time split as HTA splits it.

A GPU stream's idle gaps are the gaps between the intervals of the union of its work
(kernels, memcpy, memset). Each gap is one of (HTA's ``get_idle_time_breakdown``):

* **host wait**: the work that ends the gap was launched (its runtime call started) after
  the stream went idle — the CPU had not enqueued it yet;
* **kernel wait**: otherwise, a gap shorter than the threshold (:data:`KERNEL_WAIT_US`):
  the GPU's own cost of starting the next of two kernels it already had;
* **other**: the rest — the stream had its next kernel and waited anyway, typically on an
  event from another stream (a collective, a copy), or the launch is not in the trace.

The threshold: of the back-to-back kernels a stream already held, 90 % start at most 3.4 µs
and 99 % at most 8 µs after the previous one ended on the real NVIDIA and AMD traces we
test with; 10 µs keeps those and little else. HTA's ``consecutive_kernel_delay``
(documented as 30 ns) is compared with µs values, so HTA's default is in effect 30 µs.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..trace import LANE_CPU, LANE_GPU, Lane, Trace, TraceError
from . import intervals as iv
from .attribution import NO_DELAY, launch_delays
from .rules import gpu_work

KERNEL_WAIT_US = 10.0
GAP_KINDS = ("host wait", "kernel wait", "other")
HOST_WAIT, KERNEL_WAIT, OTHER_WAIT = 0, 1, 2
#: largest gaps listed per stream in ``streams[]``
TOP_GAPS = 5


def kernel_wait(us: float) -> int:
    """The kernel-wait threshold in ns; a clear error for one that is not a finite number
    of µs, at least 0."""
    if not isinstance(us, (int, float)) or not math.isfinite(us) or us < 0:
        raise TraceError(f"the kernel-wait threshold must be a number of µs, 0 or more "
                         f"(not {us!r})")
    return int(round(us * 1000))


class StreamGaps:
    """The idle gaps of one GPU stream: ``start``, ``end``, ``next_row`` (the work that ends
    the gap: the first of the union's next interval, the longest when starts tie),
    ``launch`` (its runtime call's start, or -1), ``kind`` (index into :data:`GAP_KINDS`)."""

    def __init__(self, trace: Trace, lane: Lane, kernel_wait_ns: int,
                 classes: np.ndarray) -> None:
        rows = np.arange(lane.lo, lane.hi)
        # its GPU work (not, say, a runtime call a trace put on the stream's lane); as in a
        # union, an instant occupies no time
        rows = rows[gpu_work(classes[rows]) & (trace.dur[rows] > 0)]
        s, d = trace.start[rows], trace.dur[rows]
        o = np.lexsort((-d, s))  # by start, longest first
        s, e, rows = s[o], s[o] + d[o], rows[o]
        self.busy_ns = self.first_ns = self.last_ns = 0
        if not len(s):
            self.start = self.end = self.next_row = self.launch = np.zeros(0, np.int64)
            self.kind = np.zeros(0, np.int8)
            return
        reach = np.maximum.accumulate(e)
        new = np.flatnonzero(s[1:] > reach[:-1]) + 1  # each starts a new busy interval
        self.start, self.end, self.next_row = reach[new - 1], s[new], rows[new]
        self.first_ns, self.last_ns = int(s[0]), int(reach[-1])
        self.busy_ns = self.last_ns - self.first_ns - int((self.end - self.start).sum())
        delay = launch_delays(trace, self.next_row)
        known = delay != NO_DELAY
        self.launch = np.where(known, self.end - np.where(known, delay, 0), -1)
        kind = np.full(len(new), OTHER_WAIT, np.int8)
        kind[(self.end - self.start) < kernel_wait_ns] = KERNEL_WAIT
        kind[known & (self.launch > self.start)] = HOST_WAIT
        self.kind = kind

    def __len__(self) -> int:
        return len(self.start)

    @property
    def dur(self) -> np.ndarray:
        return self.end - self.start

    def totals(self) -> list[int]:
        """ns of host wait, kernel wait, other."""
        return [int(self.dur[self.kind == k].sum()) for k in range(len(GAP_KINDS))]

    def largest(self) -> np.ndarray:
        """Indexes of the gaps, largest first (ties: earlier first)."""
        return np.lexsort((self.start, -self.dur))


def stream_stats(trace: Trace, classes: np.ndarray,
                 kernel_wait_us: float = KERNEL_WAIT_US) -> list[dict[str, Any]]:
    """GPU stream lanes (their GPU work) and CPU thread lanes (top-level slices)."""
    s0, s1 = trace.slices_span  # utilisation over the slices' time, not a stray instant's
    span = max(s1 - s0, 1)
    kernel_wait_ns = kernel_wait(kernel_wait_us)
    out = []
    for ln in trace.lanes:
        if ln.count == 0 or ln.kind not in (LANE_GPU, LANE_CPU):
            continue
        sg = None
        if ln.kind == LANE_GPU:  # all its work; its gaps, split
            sg = StreamGaps(trace, ln, kernel_wait_ns, classes)
            busy, gap_s, gap_e = sg.busy_ns, sg.start, sg.end
            first, last = (sg.first_ns, sg.last_ns) if busy else (None, None)
        else:  # a thread: its top-level slices
            di = ln.depth_index(0)
            rows = np.arange(di.lo, di.hi)
            u = iv.union(trace.start[rows], trace.start[rows] + trace.dur[rows])
            busy, gap_s, gap_e = iv.total(u), u[1][:-1], u[0][1:]
            first, last = (int(u[0][0]), int(u[1][-1])) if len(u[0]) else (None, None)
        gaps = gap_e - gap_s
        k = int(np.argmax(gaps)) if len(gaps) else -1
        row: dict[str, Any] = {
            "lane": ln.name,
            "kind": ln.kind,
            "device": ln.device if ln.device >= 0 else None,
            "stream": ln.stream if ln.stream >= 0 else None,
            "slices": ln.count,
            "busy_us": _us(busy),
            "utilization_pct": round(100 * busy / span, 2),
            "first_us": None if first is None else _us(first),
            "last_us": None if last is None else _us(last),
            "idle_gaps": int(len(gaps)),
            "idle_us": _us(int(gaps.sum())),
            "largest_gap_us": _us(int(gaps[k])) if k >= 0 else 0.0,
            "largest_gap_at_us": _us(int(gap_s[k])) if k >= 0 else None,
            "host_wait_us": None, "kernel_wait_us": None, "other_idle_us": None, "gaps": None,
        }
        if sg is not None:
            host, kern, other = sg.totals()
            row.update(host_wait_us=_us(host), kernel_wait_us=_us(kern),
                       other_idle_us=_us(other), gaps=gap_records(trace, sg))
        out.append(row)
    return out


def gap_records(trace: Trace, sg: StreamGaps, top: int = TOP_GAPS) -> list[dict[str, Any]]:
    out = []
    for i in sg.largest()[:top].tolist():
        nxt = int(sg.next_row[i])
        out.append({"start_us": _us(int(sg.start[i])), "end_us": _us(int(sg.end[i])),
                    "dur_us": _us(int(sg.end[i] - sg.start[i])),
                    "kind": GAP_KINDS[int(sg.kind[i])], "next": trace.name_of(nxt),
                    "launched_us": _us(int(sg.launch[i])) if sg.launch[i] >= 0 else None})
    return out


def _us(ns: int) -> float:
    return round(ns / 1000, 3)
