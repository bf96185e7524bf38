"""Communication in flight: low-latency all-to-all between its send and its receive.

DeepEP's low-latency kernels (DeepSeek's ``dispatch_ll``/``combine_ll``, DeepEP's
``internode_ll::dispatch``/``combine``) can run as two launches of one kernel: a *send* that
issues the RDMA writes and exits (~17–19 µs in DeepSeek's decode), then — after the other
micro-batch's computation — a *receive* that waits for the data and unpacks it. Between the
two the transfer is in flight and occupies no SM. Kernel interval algebra sees only the two
kernels (on the compute stream, so never overlapped) and calls all of it exposed.

**The pairing rule.** Per device and kernel name (the in-flight rules of :mod:`.rules` say
which communication kernels: ``_ll<`` or ``internode_ll::`` by default), the kernels are
split by duration into short *sends* and long *receives*: sorted by duration, the largest
ratio between two neighbours separates them, if it is at least 2× (otherwise every kernel
takes about as long, each is a whole transfer, and nothing is paired). Kernels on no known
device are never paired. Then, in start order,
each receive takes the earliest send not yet taken (first in, first out: the two
micro-batches' transfers of one kind can be in flight at once, as DeepSeek's combines are).
A split that leaves more than 2 (+1 %) receives with no send, or sends with no receive, is
not one of sends and receives (a window cuts at most the transfers in flight at its edges):
that name is not paired.
A receive with no send before it is one whose send came before the trace (the profile
window opened mid-transfer): in flight from the trace's start to its start. A send left at
the end is one whose receive came after it (the window closed first): in flight from its end
to the trace's end. Which send is matched with which receive does not change the in-flight
union: at any instant as many transfers are in flight as sends have ended minus receives
have started, whatever the matching.

In flight = from a send's end to its receive's start, on 0 SMs. Per device:
``in_flight_us`` is the union of in-flight time not covered by a communication kernel (the
kernels are already counted as communication); ``in_flight_overlap_pct`` the share of it
during which some computation kernel runs on the device: the transfer hidden behind
computation. ``in_flight_exposed_us`` is the rest.

Pure: no textual or rich.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..trace import Trace
from . import intervals as iv
from .attribution import lane_devices
from .rules import COMM

#: the parts of a kernel name that say which transfer it is: ``dispatch``, ``combine``
_FUNC = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:<|\(|$)")


def family(name: str) -> str:
    """``dispatch`` for ``void dpsk::ep::internode::dispatch_ll<…>(…)`` or
    ``deep_ep::internode_ll::dispatch<…>``: the function's own name, ``_ll`` dropped."""
    head = name.removeprefix("void ").split("<", 1)[0].split("(", 1)[0]
    last = head.rsplit("::", 1)[-1].strip() or head.strip()
    return re.sub(r"_ll$", "", last) or name


@dataclass(frozen=True)
class Spans:
    """The in-flight spans of a trace, in start order: device, kernel name id, the send and
    receive rows (-1: not in the trace), and [start, end) in ns."""

    device: np.ndarray
    name: np.ndarray
    send: np.ndarray
    recv: np.ndarray
    start: np.ndarray
    end: np.ndarray

    def __len__(self) -> int:
        return len(self.start)

    def of_device(self, device: int) -> np.ndarray:
        return np.flatnonzero(self.device == device)


def split(dur: np.ndarray) -> np.ndarray | None:
    """Which of one name's kernels are sends (the short ones), or None: no clear split."""
    if len(dur) < 2:
        return None
    d = np.sort(np.maximum(dur.astype(np.float64), 1.0))
    ratio = d[1:] / d[:-1]
    k = int(np.argmax(ratio))
    if ratio[k] < 2:
        return None
    return dur <= d[k]


def in_flight_spans(trace: Trace, classes: np.ndarray,
                    patterns: Sequence[re.Pattern[str]]) -> Spans:
    """Every in-flight span of the trace (see the module's rule)."""
    e = np.zeros(0, np.int64)
    if not patterns:
        return Spans(e, e, e, e, e, e)
    rows = np.flatnonzero(classes == COMM)
    names = trace.name[rows]
    uniq = np.unique(names)
    hit = [i for i in uniq.tolist() if any(p.search(trace.strings[int(i)]) for p in patterns)]
    rows = rows[np.isin(names, hit)]
    if not len(rows):
        return Spans(e, e, e, e, e, e)
    dev = lane_devices(trace)[trace.lane_index(rows)]
    rows, dev = rows[dev >= 0], dev[dev >= 0]  # two unknown GPUs are not one device
    if not len(rows):
        return Spans(e, e, e, e, e, e)
    nm = trace.name[rows].astype(np.int64)
    o = np.lexsort((trace.start[rows], nm, dev))
    rows, dev, nm = rows[o], dev[o], nm[o]
    cut = np.flatnonzero((np.diff(dev) != 0) | (np.diff(nm) != 0)) + 1
    out: list[np.ndarray] = []
    t_end = int(trace.end_ns)
    for a, b in zip(np.r_[0, cut].tolist(), np.r_[cut, len(rows)].tolist()):
        r = rows[a:b]
        s, d = trace.start[r], trace.dur[r]
        sends = split(d)
        if sends is None:
            continue
        got = _fifo(r, s, d, sends, int(dev[a]), int(nm[a]), t_end)
        loose = 2 + len(r) // 100  # transfers a window's edges can cut
        if (got[:, 2] < 0).sum() > loose or (got[:, 3] < 0).sum() > loose:
            continue
        out.append(got)
    a = np.concatenate(out) if out else np.zeros((0, 6), np.int64)
    if not len(a):
        return Spans(e, e, e, e, e, e)
    a = a[np.lexsort((a[:, 5], a[:, 4]))]
    return Spans(a[:, 0], a[:, 1], a[:, 2], a[:, 3], a[:, 4], a[:, 5])


def _fifo(r: np.ndarray, s: np.ndarray, d: np.ndarray, sends: np.ndarray, device: int,
          name: int, t_end: int) -> np.ndarray:
    """One name's spans, rows (device, name, send, receive, start, end): each receive (in
    start order) takes the oldest send not yet taken, vectorised. Receive j needs j + 1
    sends before it; the shortfall's running maximum counts the receives that found none
    (their sends were before the trace), and a matched receive takes send j − that count."""
    si, ri = np.flatnonzero(sends), np.flatnonzero(~sends)
    before = np.searchsorted(si, ri)  # sends started before each receive (start order)
    short = np.maximum.accumulate(np.arange(1, len(ri) + 1) - before) if len(ri) else before
    short = np.maximum(short, 0)
    alone = np.diff(np.r_[0, short]) > 0  # the shortfall grew: no send was waiting
    j = np.flatnonzero(~alone)
    take = j - short[j]  # index into the sends
    send_end = s[si] + d[si]
    rows = []
    pair_s, pair_e = send_end[take], s[ri[j]]
    ok = pair_e > pair_s
    rows.append(np.stack([np.full(ok.sum(), device), np.full(ok.sum(), name), r[si[take[ok]]],
                          r[ri[j[ok]]], pair_s[ok], pair_e[ok]], axis=1))
    lone = ri[alone]  # in flight since before the trace
    lone = lone[s[lone] > 0]
    rows.append(np.stack([np.full(len(lone), device), np.full(len(lone), name),
                          np.full(len(lone), -1), r[lone], np.zeros(len(lone), np.int64),
                          s[lone]], axis=1))
    left = si[len(take):]  # received after the trace
    left = left[send_end[len(take):] < t_end]
    rows.append(np.stack([np.full(len(left), device), np.full(len(left), name), r[left],
                          np.full(len(left), -1), s[left] + d[left],
                          np.full(len(left), t_end)], axis=1))
    return np.concatenate(rows).astype(np.int64)


def device_in_flight(spans: Spans, device: int, comm: iv.Intervals) -> iv.Intervals:
    """The device's in-flight time not covered by a communication kernel."""
    k = spans.of_device(device)
    if not len(k):
        return iv.EMPTY
    return iv.subtract(iv.union(spans.start[k], spans.end[k]), comm)


def figures(flight: iv.Intervals, comp: iv.Intervals) -> dict[str, Any]:
    """in_flight_us, the part hidden behind computation, its share and the exposed rest."""
    total = iv.total(flight)
    hidden = iv.total(iv.intersect(flight, comp)) if total else 0
    return {"in_flight_us": round(total / 1000, 3),
            "in_flight_hidden_us": round(hidden / 1000, 3),
            "in_flight_overlap_pct": round(100 * hidden / total, 2) if total else None,
            "in_flight_exposed_us": round((total - hidden) / 1000, 3)}


def span_records(trace: Trace, spans: Spans, limit: int | None = None) -> list[dict[str, Any]]:
    out = []
    for k in range(len(spans) if limit is None else min(limit, len(spans))):
        out.append({"device": int(spans.device[k]),
                    "kernel": trace.strings[int(spans.name[k])],
                    "transfer": family(trace.strings[int(spans.name[k])]),
                    "start_us": round(int(spans.start[k]) / 1000, 3),
                    "end_us": round(int(spans.end[k]) / 1000, 3),
                    "send_seen": bool(spans.send[k] >= 0),
                    "receive_seen": bool(spans.recv[k] >= 0)})
    return out
