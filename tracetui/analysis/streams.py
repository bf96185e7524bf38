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
from typing import Any, Iterator

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
        lo, hi = lane.lo, lane.hi
        # its GPU work (not, say, a runtime call a trace put on the stream's lane); as in a
        # union, an instant occupies no time
        s, d = trace.start[lo:hi], trace.dur[lo:hi]
        work = gpu_work(classes[lo:hi])
        work &= d > 0
        rows: np.ndarray | None = None  # None: the lane's rows lo.. themselves
        if not (work.all() and len(lane.depth_bounds) <= 2 and
                (len(s) < 2 or bool((s[1:] > s[:-1]).all()))):
            # not already by start with no ties (a stream of one depth holds its kernels
            # so): by start, longest first
            rows = np.flatnonzero(work) + lo
            s, d = trace.start[rows], trace.dur[rows]
            o = np.lexsort((-d, s))
            s, d, rows = s[o], d[o], rows[o]
            del o
        del work
        self.busy_ns = self.first_ns = self.last_ns = 0
        if not len(s):
            self.start = self.end = self.next_row = self.launch = np.zeros(0, np.int64)
            self.kind = np.zeros(0, np.int8)
            return
        e = s + d
        del d
        if len(s) > 1 and not bool((s[1:] > e[:-1]).all()):  # apart: each end its own reach
            np.maximum.accumulate(e, out=e)
        reach = e
        new = np.flatnonzero(s[1:] > reach[:-1])  # each gap: before row new + 1
        self.start = reach[new]
        new += 1
        self.end = s[new]
        self.next_row = rows[new] if rows is not None else new + lo
        del new
        self.first_ns, self.last_ns = int(s[0]), int(reach[-1])
        del s, e, reach, rows
        self._split(trace, kernel_wait_ns)
        self.busy_ns = self.last_ns - self.first_ns - int(self.dur.sum())

    def _split(self, trace: Trace, kernel_wait_ns: int) -> None:
        """``kind`` and ``launch`` of the gaps ``start``, ``end``, ``next_row``."""
        gaps = self.dur
        kind = np.full(len(gaps), OTHER_WAIT, np.int8)
        kind[gaps < kernel_wait_ns] = KERNEL_WAIT
        del gaps
        if len(trace.launch_of.rows):
            delay = launch_delays(trace, self.next_row)
            known = delay != NO_DELAY
            self.launch = np.where(known, self.end - np.where(known, delay, 0), -1)
            del delay
            kind[known & (self.launch > self.start)] = HOST_WAIT
        else:  # no launch is known
            self.launch = np.full(len(kind), -1, np.int64)
        self.kind = kind

    @classmethod
    def of_gaps(cls, trace: Trace, start: np.ndarray, end: np.ndarray, next_row: np.ndarray,
                kernel_wait_ns: int) -> "StreamGaps":
        """Given gaps (a part of a stream's), split."""
        sg = cls.__new__(cls)
        sg.start, sg.end, sg.next_row = start, end, next_row
        sg.busy_ns = sg.first_ns = sg.last_ns = 0
        sg._split(trace, kernel_wait_ns)
        return sg

    def take(self, idx: np.ndarray) -> "StreamGaps":
        """The gaps ``idx`` alone."""
        sg = type(self).__new__(type(self))
        sg.start, sg.end, sg.next_row = self.start[idx], self.end[idx], self.next_row[idx]
        sg.launch, sg.kind = self.launch[idx], self.kind[idx]
        sg.busy_ns, sg.first_ns, sg.last_ns = self.busy_ns, self.first_ns, self.last_ns
        return sg

    def __len__(self) -> int:
        return len(self.start)

    @property
    def dur(self) -> np.ndarray:
        return self.end - self.start

    def totals(self) -> list[int]:
        """ns of host wait, kernel wait, other."""
        dur = self.dur
        return [int(dur[self.kind == k].sum()) for k in range(len(GAP_KINDS))]

    def largest(self, top: int | None = None) -> np.ndarray:
        """Indexes of the gaps, largest first (ties: earlier first); ``top``: the first
        ``top`` of them only (no sort of all the gaps)."""
        dur = self.dur
        if top is not None and len(dur) > 4 * top:
            k = len(dur) - top
            cut = np.partition(dur, k)[k]  # the top-th largest
            cand = np.flatnonzero(dur >= cut)
            return cand[np.lexsort((self.start[cand], -dur[cand]))][:top]
        order = np.lexsort((self.start, -dur))
        return order if top is None else order[:top]


#: Rows of a stream whose gaps the summary finds at once (see :func:`gap_summary`)
GAP_CHUNK = 1 << 20


def gap_pieces(trace: Trace, lane: Lane, kernel_wait_ns: int,
               classes: np.ndarray) -> Iterator[StreamGaps]:
    """A GPU stream's gaps, split, in time order: a chunk of rows at a time where the
    stream's work is its rows by start without ties (15 M kernels: the gaps of a whole
    stream held 226 MB for a moment), else the whole stream's :class:`StreamGaps`."""
    if not _in_chunks(trace, lane, classes):
        yield StreamGaps(trace, lane, kernel_wait_ns, classes)
        return
    for sg, _ in _gap_chunks(trace, lane, kernel_wait_ns):
        yield sg


def _in_chunks(trace: Trace, lane: Lane, classes: np.ndarray) -> bool:
    return lane.hi - lane.lo > GAP_CHUNK and _by_start_no_ties(trace, lane, classes)


def _gap_chunks(trace: Trace, lane: Lane,
                kernel_wait_ns: int) -> Iterator[tuple[StreamGaps, int]]:
    """(the gaps of each chunk of rows, where the work so far reaches), for a stream whose
    work is its rows by start without ties."""
    reach: int | None = None  # where the work so far reaches
    for c0 in range(lane.lo, lane.hi, GAP_CHUNK):
        c1 = min(c0 + GAP_CHUNK, lane.hi)
        s = trace.start[c0:c1]
        e = s + trace.dur[c0:c1]
        np.maximum.accumulate(e, out=e)
        if reach is not None:
            np.maximum(e, reach, out=e)
        new = np.flatnonzero(s[1:] > e[:-1])
        g_start = e[new]
        new += 1
        g_end, nxt = s[new], new + c0
        del new
        if reach is not None and int(s[0]) > reach:  # the gap between two chunks
            g_start = np.concatenate([[reach], g_start])
            g_end = np.concatenate([s[:1], g_end])
            nxt = np.concatenate([[c0], nxt])
        reach = int(e[-1])
        del s, e
        yield StreamGaps.of_gaps(trace, g_start, g_end, nxt, kernel_wait_ns), reach


class GapSummary:
    """What ``summary`` reports of a GPU stream's gaps, found a chunk of rows at a time
    where it can (:func:`gap_pieces`). ``gaps``: the largest ``top`` of them."""

    def __init__(self, trace: Trace, lane: Lane, kernel_wait_ns: int, classes: np.ndarray,
                 top: int = TOP_GAPS) -> None:
        if not _in_chunks(trace, lane, classes):
            sg = StreamGaps(trace, lane, kernel_wait_ns, classes)
            self._set(sg.busy_ns, sg.first_ns, sg.last_ns, len(sg), int(sg.dur.sum()),
                      sg.totals(), sg.take(sg.largest(top)))
            return
        n = idle = 0
        totals = [0] * len(GAP_KINDS)
        best: list[StreamGaps] = []
        first = last = int(trace.start[lane.lo])
        for sg, last in _gap_chunks(trace, lane, kernel_wait_ns):
            n += len(sg)
            idle += int(sg.dur.sum())
            totals = [a + b for a, b in zip(totals, sg.totals())]
            best.append(sg.take(sg.largest(top)))
        cand = StreamGaps.of_gaps(trace, np.concatenate([b.start for b in best]),
                                  np.concatenate([b.end for b in best]),
                                  np.concatenate([b.next_row for b in best]), kernel_wait_ns)
        self._set(last - first - idle, first, last, n, idle, totals,
                  cand.take(cand.largest(top)))

    def _set(self, busy: int, first: int, last: int, n: int, idle: int, totals: list[int],
             top: StreamGaps) -> None:
        self.busy_ns, self.first_ns, self.last_ns = busy, first, last
        self.count, self.idle_ns, self.totals, self.top = n, idle, totals, top


def _by_start_no_ties(trace: Trace, lane: Lane, classes: np.ndarray) -> bool:
    """Whether every row of the lane is GPU work that takes time, by strictly rising start
    (the order a union of its work would put it in: its gaps can be found in pieces)."""
    if len(lane.depth_bounds) > 2:
        return False
    prev = None
    for c0 in range(lane.lo, lane.hi, GAP_CHUNK):
        c1 = min(c0 + GAP_CHUNK, lane.hi)
        s = trace.start[c0:c1]
        if not (gpu_work(classes[c0:c1]).all() and (trace.dur[c0:c1] > 0).all()):
            return False
        if (prev is not None and int(s[0]) <= prev) or not bool((s[1:] > s[:-1]).all()):
            return False
        prev = int(s[-1])
    return True


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
        gs = None
        if ln.kind == LANE_GPU:  # all its work; its gaps, split
            gs = GapSummary(trace, ln, kernel_wait_ns, classes)
            busy, n_gaps, idle = gs.busy_ns, gs.count, gs.idle_ns
            first, last = (gs.first_ns, gs.last_ns) if busy else (None, None)
            largest = (int(gs.top.end[0] - gs.top.start[0]), int(gs.top.start[0])) \
                if len(gs.top) else None
        else:  # a thread: its top-level slices
            di = ln.depth_index(0)
            s = trace.start[di.lo:di.hi]
            u = iv.union(s, s + trace.dur[di.lo:di.hi])
            busy = iv.total(u)
            first, last = (int(u[0][0]), int(u[1][-1])) if len(u[0]) else (None, None)
            gaps = u[0][1:] - u[1][:-1]
            k = int(np.argmax(gaps)) if len(gaps) else -1
            n_gaps, idle = len(gaps), int(gaps.sum())
            largest = (int(gaps[k]), int(u[1][k])) if k >= 0 else None
            del s, u, gaps
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
            "idle_gaps": int(n_gaps),
            "idle_us": _us(idle),
            "largest_gap_us": _us(largest[0]) if largest else 0.0,
            "largest_gap_at_us": _us(largest[1]) if largest else None,
            "host_wait_us": None, "kernel_wait_us": None, "other_idle_us": None, "gaps": None,
        }
        if gs is not None:
            host, kern, other = gs.totals
            row.update(host_wait_us=_us(host), kernel_wait_us=_us(kern),
                       other_idle_us=_us(other), gaps=gap_records(trace, gs.top))
        out.append(row)
    return out


def gap_records(trace: Trace, sg: StreamGaps, top: int = TOP_GAPS) -> list[dict[str, Any]]:
    out = []
    for i in sg.largest(top).tolist():
        nxt = int(sg.next_row[i])
        out.append({"start_us": _us(int(sg.start[i])), "end_us": _us(int(sg.end[i])),
                    "dur_us": _us(int(sg.end[i] - sg.start[i])),
                    "kind": GAP_KINDS[int(sg.kind[i])], "next": trace.name_of(nxt),
                    "launched_us": _us(int(sg.launch[i])) if sg.launch[i] >= 0 else None})
    return out


def _us(ns: int) -> float:
    return round(ns / 1000, 3)
