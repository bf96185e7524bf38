"""Nesting depth of one lane's slices, for the build and for a lane's slices without its
Python frames (Lane.folded).

Depths are computed for all slices of a lane at once (a sort and a binary search); lanes
whose slices overlap without nesting fall back to a stack pass. Long lanes are cut into
independent segments, worked on by several threads (numpy lets go of the GIL).
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import Any, Callable, Iterable, Iterator

import numpy as np

_SEGMENT = 1 << 16


def _threaded(tasks: Iterable[Callable[[], Any]], threads: int) -> Iterator[Any]:
    """The results of ``tasks``, in order, computed by up to ``threads`` threads: numpy lets
    go of the GIL in its sorts, binary searches and large ufuncs, so the build uses the
    cores the parsing processes used. At most one task more than threads is in flight:
    the memory of temporaries and results stays a few tasks' worth."""
    if threads <= 1:
        for task in tasks:
            yield task()
        return
    with ThreadPoolExecutor(threads, thread_name_prefix="tracetui-index") as ex:
        pending: deque[Future[Any]] = deque()
        for task in tasks:
            pending.append(ex.submit(task))
            if len(pending) > threads:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def compute_depth(start: np.ndarray, dur: np.ndarray, threads: int = 1) -> np.ndarray:
    """Nesting depth of one lane's slices, sorted by (start, longest first).

    Long lanes are cut where nothing is open (a slice starts after every earlier one has
    ended) into segments of about 64 K slices, whose depths are independent: the
    temporaries stay the size of a segment, not of the lane, and ``threads`` threads work
    on segments side by side.
    """
    n = len(start)
    if n <= _SEGMENT:
        return _depth_segment(start, dur)
    reach = start + dur
    np.maximum.accumulate(reach, out=reach)
    free = np.empty(n, bool)  # nothing open before these rows
    free[0] = False
    np.greater_equal(start[1:], reach[:-1], out=free[1:])
    del reach
    edges = [0]
    at = _SEGMENT
    while at < n:  # the first free row at or after every _SEGMENT rows
        k = int(free[at:].argmax())
        if not free[at + k]:
            break
        edges.append(at + k)
        at = at + k + _SEGMENT
    del free
    edges.append(n)
    parts = list(_threaded((partial(_depth_segment, start[a:b], dur[a:b])
                            for a, b in zip(edges, edges[1:]) if b > a), threads))
    dtype = np.int32 if any(p.dtype == np.int32 for p in parts) else np.int16
    return np.concatenate(parts).astype(dtype, copy=False)


def _depth_segment(start: np.ndarray, dur: np.ndarray) -> np.ndarray:
    """depth_i = i - #{earlier slices closed by start_i}, for all slices at once: one sort of
    the ends and a binary search. If slices overlap without nesting (some traces do), a
    stack pass assigns depths instead, which keeps the invariant the index relies on:
    slices at one depth never overlap.
    """
    n = len(start)
    if n == 0:
        return np.zeros(0, np.int16)
    end = start + dur
    closed = np.searchsorted(np.sort(end), start, side="right")  # any j with end_j <= start_i
    zero = dur == 0
    if zero.any():
        # Zero-length slices with i's own start that sort at or after i ended "by" start_i
        # but are not earlier than i: take them back out.
        # Per run of equal starts (start is sorted): where it ends, and how many of its
        # slices have length zero; one pass each instead of three binary searches.
        new_run = np.empty(n, bool)
        new_run[0] = True
        np.not_equal(start[1:], start[:-1], out=new_run[1:])
        run_first = np.flatnonzero(new_run)
        run_id = np.cumsum(new_run) - 1
        del new_run
        run_end = np.append(run_first[1:], n)[run_id]
        nz = np.add.reduceat(zero.astype(np.int64), run_first)[run_id]
        first_zero = run_end - nz
        del nz, run_id, run_first
        np.maximum(first_zero, np.arange(n), out=first_zero)
        np.subtract(run_end, first_zero, out=run_end)
        closed -= np.maximum(run_end, 0)
        del run_end, first_zero
    del zero
    depth = np.subtract(np.arange(n), closed, out=closed)  # in place: closed is not needed
    ok = not (depth < 0).any()
    depth = depth.astype(np.int16 if depth.max(initial=0) < 2**15 else np.int32)
    if ok and n > 1:
        # the invariant: within one depth (in start order) nothing starts before the
        # previous slice has ended
        order = np.argsort(depth, kind="stable")
        d_o = depth[order]
        same = d_o[1:] == d_o[:-1]
        e_o = end[order]
        s_o = start[order]
        ok = not (same & (s_o[1:] < e_o[:-1])).any()
    if not ok:
        depth = _depth_stack(start, end)
    return depth


def _depth_stack(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    out = np.zeros(len(start), np.int32)  # pure Python: only for improperly nested lanes
    stack: list[int] = []
    for i, (s, e) in enumerate(zip(start.tolist(), end.tolist())):
        while stack and stack[-1] <= s:
            stack.pop()
        out[i] = len(stack)
        stack.append(e)
    return out
