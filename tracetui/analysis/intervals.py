"""Exact interval algebra on int64 nanoseconds, vectorised: unions, intersections, coverage.

An *interval set* is a pair (starts, ends) of sorted, disjoint, non-empty intervals
[start, end), as returned by :func:`union`.
"""

from __future__ import annotations

import numpy as np

Intervals = tuple[np.ndarray, np.ndarray]

EMPTY: Intervals = (np.zeros(0, np.int64), np.zeros(0, np.int64))


def union(starts: np.ndarray, ends: np.ndarray) -> Intervals:
    """The union of any intervals as a sorted, disjoint interval set (sort + cumulative max).

    Empty intervals (end <= start) contribute nothing.
    """
    s = np.asarray(starts, np.int64)
    e = np.asarray(ends, np.int64)
    keep = e > s
    if not keep.all():
        s, e = s[keep], e[keep]
    if len(s) == 0:
        return EMPTY
    o = np.argsort(s, kind="stable")
    s, e = s[o], e[o]
    reach = np.maximum.accumulate(e)
    new = np.ones(len(s), bool)
    new[1:] = s[1:] > reach[:-1]  # touching intervals ([a,b) and [b,c)) merge
    first = np.flatnonzero(new)
    last = np.append(first[1:] - 1, len(s) - 1)
    return s[first], reach[last]


def total(iv: Intervals) -> int:
    return int((iv[1] - iv[0]).sum())


def coverage(sets: list[Intervals], at_least: int) -> Intervals:
    """Where at least ``at_least`` of the interval sets cover time (a sweep over their edges)."""
    sets = [iv for iv in sets if len(iv[0])]
    if len(sets) < at_least or not sets:
        return EMPTY
    pts = np.concatenate([np.concatenate([s, e]) for s, e in sets])
    delta = np.concatenate([np.concatenate([np.ones(len(s), np.int64), -np.ones(len(e), np.int64)])
                            for s, e in sets])
    # at one instant, ends before starts: touching intervals do not count as covering twice
    o = np.lexsort((delta, pts))
    pts, delta = pts[o], delta[o]
    count = np.cumsum(delta)
    inside = count[:-1] >= at_least
    seg_s, seg_e = pts[:-1][inside], pts[1:][inside]
    return union(seg_s, seg_e)


def intersect(a: Intervals, b: Intervals) -> Intervals:
    """The intersection of two interval sets: each interval of ``a`` meets a contiguous run of
    ``b``'s (two binary searches), and the pieces come out sorted."""
    if not len(a[0]) or not len(b[0]):
        return EMPTY
    (as_, ae), (bs, be) = a, b
    lo = np.searchsorted(be, as_, side="right")  # first b that ends after a starts
    hi = np.searchsorted(bs, ae, side="left")  # b's that start before a ends
    n = np.maximum(hi - lo, 0)
    if not n.any():
        return EMPTY
    ai = np.repeat(np.arange(len(as_)), n)
    first = np.cumsum(n) - n
    bj = np.arange(int(n.sum())) - np.repeat(first, n) + np.repeat(lo, n)
    s = np.maximum(as_[ai], bs[bj])
    e = np.minimum(ae[ai], be[bj])
    keep = e > s
    return s[keep], e[keep]


def subtract(a: Intervals, b: Intervals, both: Intervals | None = None) -> Intervals:
    """``a`` minus ``b`` (``both``: a ∩ b, if known)."""
    if not len(a[0]) or not len(b[0]):
        return a
    both = intersect(a, b) if both is None else both
    if not len(both[0]):
        return a
    # a \ b = a \ (a ∩ b): sweep with +1 for a, -1 for the intersection
    pts = np.concatenate([a[0], a[1], both[0], both[1]])
    delta = np.concatenate([np.ones(len(a[0]), np.int64), -np.ones(len(a[1]), np.int64),
                            -np.ones(len(both[0]), np.int64), np.ones(len(both[1]), np.int64)])
    o = np.lexsort((delta, pts))
    pts, delta = pts[o], delta[o]
    count = np.cumsum(delta)
    inside = count[:-1] > 0
    return union(pts[:-1][inside], pts[1:][inside])


def clip(iv: Intervals, t0: int, t1: int) -> Intervals:
    """The part of ``iv`` inside [t0, t1)."""
    s, e = iv
    lo = int(np.searchsorted(e, t0, side="right"))
    hi = int(np.searchsorted(s, t1, side="left"))
    if hi <= lo:
        return EMPTY
    s, e = np.maximum(s[lo:hi], t0), np.minimum(e[lo:hi], t1)
    keep = e > s
    return s[keep], e[keep]


def total_within(ivs: Intervals, windows: Intervals) -> int:
    """Time of ``ivs`` inside the (disjoint, sorted) ``windows``."""
    return Cover(ivs).within(windows)


class Cover:
    """An interval set with its prefix sums: time covered inside any windows in O(log n)."""

    def __init__(self, ivs: Intervals) -> None:
        self.starts, self.ends = ivs
        self.cum = np.zeros(len(self.starts) + 1, np.int64)
        np.cumsum(self.ends - self.starts, out=self.cum[1:])

    @property
    def total(self) -> int:
        return int(self.cum[-1])

    def before(self, t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, np.int64)
        k = np.searchsorted(self.starts, t, side="right")
        out = self.cum[k]
        if len(self.starts):
            last = np.maximum(k - 1, 0)
            out = out - np.where(k > 0, np.maximum(self.ends[last] - t, 0), 0)
        return out

    def within(self, windows: Intervals) -> int:
        """Time covered inside disjoint windows."""
        if not len(windows[0]) or not len(self.starts):
            return 0
        n = len(windows[0])
        cov = self.before(np.concatenate([windows[0], windows[1]]))
        return int((cov[n:] - cov[:n]).sum())
