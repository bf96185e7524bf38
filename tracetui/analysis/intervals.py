"""Exact interval algebra on int64 nanoseconds, vectorised: unions, intersections, coverage.

An *interval set* is a pair (starts, ends) of sorted, disjoint, non-empty intervals
[start, end), as returned by :func:`union`.
"""

from __future__ import annotations

from typing import Callable, Iterator

import numpy as np

Intervals = tuple[np.ndarray, np.ndarray]

EMPTY: Intervals = (np.zeros(0, np.int64), np.zeros(0, np.int64))


def union(starts: np.ndarray, ends: np.ndarray) -> Intervals:
    """The union of any intervals as a sorted, disjoint interval set (sort + cumulative max).

    Empty intervals (end <= start) contribute nothing. Intervals already sorted and apart
    (a GPU stream's kernels, as a lane holds them) are the set itself: no sort, no copy.
    """
    s = np.asarray(starts, np.int64)
    e = np.asarray(ends, np.int64)
    if len(s) == 0:
        return EMPTY
    keep = e > s
    if not keep.all():
        s, e = s[keep], e[keep]
    del keep
    if len(s) == 0:
        return EMPTY
    if not is_sorted(s):
        o = np.argsort(s, kind="stable")
        s = s[o]  # one at a time: a column of temporaries less
        e = e[o]
        del o
    if len(s) < 2 or bool((s[1:] > e[:-1]).all()):  # apart: each end is its own reach
        return s, e
    reach = np.maximum.accumulate(e)
    new = np.empty(len(s), bool)
    new[0] = True
    np.greater(s[1:], reach[:-1], out=new[1:])  # touching intervals ([a,b) and [b,c)) merge
    first = np.flatnonzero(new)
    del new
    out_s = s[first]
    first[:-1] = first[1:] - 1  # the last interval of each run
    first[-1] = len(s) - 1
    return out_s, reach[first]


def is_sorted(a: np.ndarray) -> bool:
    return len(a) < 2 or bool((a[1:] >= a[:-1]).all())


#: Intervals a windowed operation looks at in one window (about; see :func:`windowed`)
WINDOW = 1 << 18


def _window_edges(sets: list[Intervals], chunk: int) -> np.ndarray | None:
    """Time edges that cut ``sets`` into windows of at most about ``chunk`` intervals of
    all sets together (None: all of it fits in one)."""
    if sum(len(x[0]) for x in sets) <= chunk:
        return None
    lo = min(int(x[0][0]) for x in sets)
    hi = max(_last_end(x) for x in sets)
    step = max(chunk // len(sets), min(chunk, 1024))  # each set's share of a window
    marks = np.unique(np.concatenate([x[0][step::step] for x in sets] + [
        np.array([lo, hi], np.int64)]))
    return marks if len(marks) > 2 else None


def _last_end(x: Intervals) -> int:
    if isinstance(x, Run):
        return int(x.s[-1] + x.d[-1])
    return int(x[1][-1])


def _clip_set(x: Intervals, t0: int, t1: int) -> Intervals:
    if isinstance(x, Run):  # ends made for the window's intervals only
        s, d = x.s, x.d
        lo = int(np.searchsorted(s, t0, side="right")) - 1
        if lo < 0 or int(s[lo] + d[lo]) <= t0:
            lo += 1
        hi = int(np.searchsorted(s, t1, side="left"))
        if hi <= lo:
            return EMPTY
        return np.maximum(s[lo:hi], t0), np.minimum(s[lo:hi] + d[lo:hi], t1)
    s, e = x
    lo = int(np.searchsorted(e, t0, side="right"))
    hi = int(np.searchsorted(s, t1, side="left"))
    if hi <= lo:
        return EMPTY
    return np.maximum(s[lo:hi], t0), np.minimum(e[lo:hi], t1)


class Run:
    """An interval set held as starts and durations (``s``, ``d``: views of a lane whose
    slices are by start and apart, so already a set): reads as the pair (starts, ends),
    the ends made each time they are asked for, and windowed operations make them one
    window at a time. A GPU stream's kernels so cost no memory of their own."""

    __slots__ = ("s", "d")

    def __init__(self, s: np.ndarray, d: np.ndarray) -> None:
        self.s, self.d = s, d

    def __len__(self) -> int:
        return 2

    def __getitem__(self, i: int) -> np.ndarray:
        if i in (0, -2):
            return self.s
        if i in (1, -1):
            return self.s + self.d
        raise IndexError(i)

    def __iter__(self) -> Iterator[np.ndarray]:
        yield self.s
        yield self.s + self.d


def windowed(sets: list[Intervals], fn: Callable[[list[Intervals]], Intervals],
             chunk: int | None = None) -> Intervals:
    """``fn(sets)`` for an ``fn`` that works point by point in time (a union, an
    intersection, a coverage), one time window at a time, so that its temporaries hold a
    window's intervals rather than all of them (on 15 M kernels: hundreds of MB less).
    Pieces cut at a window's edge are joined again."""
    sets = [x for x in sets if len(x[0])]
    edges = _window_edges(sets, chunk or WINDOW) if len(sets) > 1 else None
    if edges is None:
        return fn(sets)
    out_s, out_e = [], []
    for t0, t1 in zip(edges[:-1].tolist(), edges[1:].tolist()):
        r = fn([_clip_set(x, t0, t1) for x in sets])
        if len(r[0]):
            out_s.append(r[0])
            out_e.append(r[1])
    if not out_s:
        return EMPTY
    s, e = np.concatenate(out_s), np.concatenate(out_e)
    del out_s, out_e
    join = s[1:] == e[:-1]  # a piece that goes on in the next window
    if join.any():
        s = s[np.concatenate([[True], ~join])]
        e = e[np.concatenate([~join, [True]])]
    return s, e


def windowed_total(sets: list[Intervals], fn: Callable[[list[Intervals]], Intervals],
                   chunk: int | None = None) -> int:
    """``total(fn(sets))`` a window at a time: nothing of the result is kept."""
    sets = [x for x in sets if len(x[0])]
    edges = _window_edges(sets, chunk or WINDOW) if len(sets) > 1 else None
    if edges is None:
        return total(fn(sets))
    return sum(total(fn([_clip_set(x, t0, t1) for x in sets]))
               for t0, t1 in zip(edges[:-1].tolist(), edges[1:].tolist()))


def union_of(sets: list[Intervals]) -> Intervals:
    """The union of interval sets (a window at a time when they are large)."""
    sets = [x for x in sets if len(x[0])]
    if not sets:
        return EMPTY
    if len(sets) == 1:
        s, e = sets[0]  # (a Run's ends made once: the union is kept)
        return s, e
    return windowed(sets, lambda xs: union(np.concatenate([x[0] for x in xs]),
                                           np.concatenate([x[1] for x in xs])))


def total(iv: Intervals) -> int:
    return int((iv[1] - iv[0]).sum())


def coverage(sets: list[Intervals], at_least: int) -> Intervals:
    """Where at least ``at_least`` of the interval sets cover time (a sweep over their edges,
    a window at a time)."""
    return windowed(sets, lambda xs: _coverage(xs, at_least))


def coverage_total(sets: list[Intervals], at_least: int) -> int:
    """``total(coverage(sets, at_least))``, keeping nothing of the coverage."""
    return windowed_total(sets, lambda xs: _coverage(xs, at_least))


def _coverage(sets: list[Intervals], at_least: int) -> Intervals:
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
    ``b``'s (two binary searches), and the pieces come out sorted (a window at a time)."""
    if not len(a[0]) or not len(b[0]):
        return EMPTY
    return windowed([a, b], lambda xs: _intersect(*xs) if len(xs) == 2 else EMPTY)


def intersect_total(a: Intervals, b: Intervals) -> int:
    """``total(intersect(a, b))``, keeping nothing of the intersection."""
    if not len(a[0]) or not len(b[0]):
        return 0
    return windowed_total([a, b], lambda xs: _intersect(*xs) if len(xs) == 2 else EMPTY)


def _intersect(a: Intervals, b: Intervals) -> Intervals:
    if not len(a[0]) or not len(b[0]):
        return EMPTY
    if len(a[0]) > len(b[0]):
        # the fewer intervals searched among the more: O(small × log big + pieces), not
        # O(big × log small) (a GPU annotation's few thousand occurrences against a stream's
        # million kernels: 3-4× faster). Both are sets (disjoint, sorted): the same pieces,
        # in the same order
        a, b = b, a
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
    return windowed([a, both], lambda xs: _subtract(xs[0], xs[1]) if len(xs) == 2 else
                    (xs[0] if xs else EMPTY))


def _subtract(a: Intervals, both: Intervals) -> Intervals:
    """``a`` minus ``both`` (a part of ``a``)."""
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


#: intervals read at once by :func:`covered_before`
BLOCK = 1 << 20


def covered_before(ivs: Intervals, t: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """:meth:`Cover.before` without the prefix sums: the time of the set ``ivs`` (only its
    intervals where ``mask``, if given) before each instant ``t``, in one pass over the set a
    block at a time. Memory is a block and ``t``, where a :class:`Cover` holds a sum per
    interval (120 MB at 15 M kernels): for a few instants (steps' edges) over a large set."""
    t = np.asarray(t, np.int64)
    out = np.zeros(len(t), np.int64)
    if isinstance(ivs, Run):
        starts, durs, ends = ivs.s, ivs.d, None
    else:
        starts, ends = ivs
        durs = None
    n = len(starts)
    if not n or not len(t):
        return out
    order = None if is_sorted(t) else np.argsort(t, kind="stable")
    ts = t if order is None else t[order]
    k = np.searchsorted(starts, ts, side="right")  # intervals starting at or before
    got = np.empty(len(ts), np.int64)
    acc, j = 0, 0
    for lo in range(0, n, BLOCK):
        hi = min(lo + BLOCK, n)
        d = durs[lo:hi].astype(np.int64) if durs is not None else ends[lo:hi] - starts[lo:hi]
        if mask is not None:
            d[~mask[lo:hi]] = 0
        c = np.cumsum(d)
        del d
        upto = int(np.searchsorted(k, hi, side="right"))  # the instants answered here
        kk = k[j:upto]
        got[j:upto] = acc + np.where(kk > lo, c[np.maximum(kk - lo - 1, 0)], 0)
        acc += int(c[-1])
        j = upto
    got[j:] = acc
    # the interval an instant falls in counts up to the instant only
    last = np.maximum(k - 1, 0)
    end_last = starts[last] + durs[last] if durs is not None else ends[last]
    part = np.where(k > 0, np.maximum(end_last - ts, 0), 0)
    if mask is not None:
        part = np.where(mask[last], part, 0)
    got -= part
    if order is None:
        return got
    out[order] = got
    return out


def covered_inside(ivs: Intervals, t0: np.ndarray, t1: np.ndarray,
                   mask: np.ndarray | None = None) -> np.ndarray:
    """The time of ``ivs`` (where ``mask``) inside each window [t0, t1), by
    :func:`covered_before`."""
    b = covered_before(ivs, np.column_stack([t0, t1]).ravel(), mask)
    return b[1::2] - b[0::2]


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
        # each window's start then its end: one ascending run of instants (the windows are
        # disjoint), which the binary searches walk in order - about twice as fast as the
        # starts then the ends on a million
        cov = self.before(np.column_stack(windows).ravel())
        return int((cov[1::2] - cov[0::2]).sum())


class BinnedCover:
    """:meth:`Cover.before` of ``fn(sources)`` (a set made point by point from others: the
    intersection of two streams), holding prefix sums only at ``bins`` time edges rather
    than at every interval: the rest is ``fn`` of the sources clipped between the edge
    below an instant and the instant, made when asked. Exact, with kilobytes where a
    :class:`Cover` of two streams of 15 M kernels held 90 MB per pair."""

    def __init__(self, sources: list[Intervals], fn: Callable[[list[Intervals]], Intervals],
                 bins: int = 1 << 14) -> None:
        self.sources = [x for x in sources if len(x[0])]
        self.fn = fn
        if not self.sources:
            self.edges = np.zeros(1, np.int64)
            self.at = np.zeros(1, np.int64)
            return
        lo = min(int(x[0][0]) for x in self.sources)
        hi = max(_last_end(x) for x in self.sources)
        self.edges = np.unique(np.linspace(lo, hi, bins + 1).astype(np.int64))
        self.edges[-1] = hi
        self.at = np.zeros(len(self.edges), np.int64)  # time covered before each edge
        windows = _window_edges(self.sources, WINDOW)
        if windows is None:
            windows = np.array([lo, hi], np.int64)
        done = 0
        for t0, t1 in zip(windows[:-1].tolist(), windows[1:].tolist()):
            c = Cover(fn([_clip_set(x, t0, t1) for x in self.sources]))
            a, b = np.searchsorted(self.edges, [t0, t1], side="left").tolist()
            self.at[a:b] = done + c.before(self.edges[a:b])
            done += c.total
        self.at[np.searchsorted(self.edges, int(windows[-1]), side="left"):] = done

    @property
    def total(self) -> int:
        return int(self.at[-1])

    def before(self, t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, np.int64)
        out = np.zeros(len(t), np.int64)
        if not self.sources:
            return out
        k = np.searchsorted(self.edges, t, side="right") - 1  # the edge at or below t
        for i, (ti, ki) in enumerate(zip(t.tolist(), k.tolist())):
            if ki < 0:
                continue  # before everything
            e0 = int(self.edges[ki])
            part = total(self.fn([_clip_set(x, e0, ti) for x in self.sources])) if ti > e0 \
                else 0
            out[i] = int(self.at[ki]) + part
        return out
