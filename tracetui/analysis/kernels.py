"""Kernel statistics like Nsight's ``cuda_gpu_kern_sum``, per name and per short name."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import numpy as np

from ..trace import Trace
from .attribution import NO_DELAY, launch_delays
from .perf import tensor_core_ids
from .rules import NOT_GPU, SHORT_CLASS

_LEADING_TYPE = re.compile(r"^(?:void|int|float|bool|auto|[\w:]+(?:<…>)?[*&]*)\s+(?=[\w:~]+::)")


#: Kernels that only launch the kernel class they are given: the class is the name people use
#: (``cutlass::device_kernel<flash::FlashAttnBwd<…>>`` is FlashAttnBwd).
_WRAPPERS = re.compile(r"^(?:void\s+)?(?:cutlass::device_kernel|cutlass::Kernel2?|"
                       r"cute::device_kernel|cutlass::gemm::kernel::GemmUniversal)<")


def _unwrap(name: str) -> str:
    """The kernel class inside a known wrapper (its only template argument), else ``name``."""
    m = _WRAPPERS.match(name)
    if not m:
        return name
    depth, start = 1, m.end()
    for j in range(start, len(name)):
        ch = name[j]
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
            if depth == 0:
                inner = name[start:j].strip()
                return inner if inner else name
        elif ch == "," and depth == 1:
            return name  # several arguments: not a wrapper of one kernel class
    return name


_BRACKETS = re.compile("[<>]")


def _elide_templates(s: str, keep_first: bool) -> str:
    """Template arguments become ``<…>``; with ``keep_first`` the outermost ones stay and
    only the arguments nested in them are elided (``dispatch<false, 8, true, 8>``).
    A ``>`` with no ``<`` open is kept (``operator>``, ``->``); an unclosed ``<`` elides the
    rest. The text between brackets is copied whole: one step per bracket, not per
    character (1 M names took 4.7 s character by character)."""
    if "<" not in s:  # nothing to elide (most names)
        return s.strip()
    out: list[str] = []
    depth = pos = 0
    for m in _BRACKETS.finditer(s):
        j = m.start()
        if depth == 0 or (keep_first and depth == 1):
            out.append(s[pos:j])
        if s[j] == "<":
            if depth == 0:
                out.append("<" if keep_first else "<…>")
            elif depth == 1 and keep_first:
                out.append("<…>")
            depth += 1
        elif depth:
            depth -= 1
            if depth == 0 and keep_first:
                out.append(">")
        else:
            out.append(">")
        pos = j + 1
    if depth == 0 or (keep_first and depth == 1):
        out.append(s[pos:])
    return "".join(out).strip()


def short_name(name: str, keep_arguments: bool = False) -> str:
    """A C++ kernel name without template arguments, parameter list or return type:
    ``void deep_ep::internode_ll::dispatch<3, 10>(void*, int)`` -> ``deep_ep::internode_ll::dispatch<…>``.
    A known wrapper is unwrapped to the kernel class it launches:
    ``void cutlass::device_kernel<flash::FlashAttnBwd<…>>(…)`` -> ``flash::FlashAttnBwd<…>``.
    ``keep_arguments``: the outermost template arguments stay (to tell apart kernels that
    differ only in them). Names that are not C++ (``Memcpy HtoD (Pageable -> Device)``)
    are left as they are.
    """
    s = _unwrap(name.replace("(anonymous namespace)", "(anon)"))
    s = _elide_templates(s, keep_arguments)
    if s.endswith(")"):  # a parameter list follows the name directly: foo(int, float*)
        d = 0
        for j in range(len(s) - 1, -1, -1):
            if s[j] == ")":
                d += 1
            elif s[j] == "(":
                d -= 1
                if d == 0:
                    if j > 0 and not s[j - 1].isspace():
                        s = s[:j]
                    break
    if s.startswith("void "):
        s = s[5:]
    s = _LEADING_TYPE.sub("", s, count=1)
    return s.strip() or name


def display_names(names: list[str], shorts: list[str] | None = None) -> list[str]:
    """A short name per kernel name that no other name of ``names`` shares: the short name
    (``shorts``, if already made); where two kernels still read the same, with their
    template arguments; where even those are the same (overloads), numbered. Only the
    names that collide are looked at again."""
    out = list(shorts) if shorts is not None else [short_name(n) for n in names]
    # only the names that collide are looked at again (a count first: a list per name cost
    # 4.7 s at 1 M distinct names)
    twice = {t for t, n in Counter(out).items() if n > 1}
    if twice:
        for i, t in enumerate(out):
            if t in twice:
                out[i] = short_name(names[i], keep_arguments=True)
        twice = {t for t, n in Counter(out).items() if n > 1}
        seen: dict[str, int] = {}
        for i, t in enumerate(out):
            if t in twice:
                seen[t] = seen.get(t, 0) + 1
                out[i] = f"{t} #{seen[t]}"
    return out


#: GPU slices the kernel table sorts at once (see :func:`kernel_table`)
BUCKET = 1 << 20


def kernel_table(trace: Trace, classes: np.ndarray) -> list[dict[str, Any]]:
    """One row per GPU kernel/memcpy/memset name, by total time, descending."""
    # The GPU slices a bucket of names at a time (names by string id, at most BUCKET
    # slices a bucket unless one name has more), each bucket lane by lane: a table of
    # 15 M kernels held 440 MB more than its trace sorting them all at once.
    n_str = len(trace.strings)
    parts = []
    cnt = np.zeros(n_str, np.int64)
    for ln in trace.lanes:
        c = classes[ln.lo:ln.hi] != NOT_GPU
        if c.any():
            nm = trace.name[ln.lo:ln.hi]
            cnt += np.bincount(nm if c.all() else nm[c], minlength=n_str)
            parts.append((ln.lo, ln.hi))
    keys = np.flatnonzero(cnt)  # the names' string ids, sorted
    if not len(keys):
        return []
    counts = cnt[keys]
    del cnt
    rank = np.full(n_str, -1, np.int32 if len(keys) < 2**31 else np.int64)
    rank[keys] = np.arange(len(keys))
    ends = np.cumsum(counts)
    cuts = [0]  # bucket edges, in ranks
    while cuts[-1] < len(keys):
        done = int(ends[cuts[-1] - 1]) if cuts[-1] else 0
        cuts.append(max(int(np.searchsorted(ends, done + BUCKET, "right")), cuts[-1] + 1))
    del ends
    stats: dict[str, list[np.ndarray]] = {k: [] for k in (
        "totals", "mins", "maxs", "medians", "sq", "cls", "delay")}
    launches = bool(len(trace.launch_of.rows))
    grand = 0
    for r0, r1 in zip(cuts[:-1], cuts[1:]):
        rk, du, cl, rw = [], [], [], []
        for lo, hi in parts:
            r = rank[trace.name[lo:hi]]
            sel = (classes[lo:hi] != NOT_GPU) & (r >= r0) & (r < r1)
            if sel.any():
                rk.append(r[sel] - r0)
                du.append(trace.dur[lo:hi][sel])
                cl.append(classes[lo:hi][sel])
                if launches:
                    rw.append(np.flatnonzero(sel) + lo)
            del r, sel
        ranks = np.concatenate(rk)
        durs_in_order = np.concatenate(du)  # in row order (lanes hold ascending rows)
        del rk, du
        n = counts[r0:r1]
        first, _, durs = sorted_groups(ranks, durs_in_order, r1 - r0, n)  # by name, duration
        totals = np.add.reduceat(durs, first)
        stats["totals"].append(totals)
        stats["mins"].append(durs[first])
        stats["maxs"].append(durs[first + n - 1])
        stats["medians"].append((durs[first + (n - 1) // 2] + durs[first + n // 2]) / 2)
        means = totals / n
        if r1 - r0 <= 64:  # a few large names: one name's squares at a time
            sq = np.empty(r1 - r0)
            for k, (a, m) in enumerate(zip(first.tolist(), n.tolist())):
                d = durs[a : a + m].astype(np.float64)
                d -= means[k]
                d *= d
                sq[k] = np.add.reduceat(d, [0])[0]  # (summed as the reduceat below sums)
                del d
        else:
            sq = durs.astype(np.float64)
            sq -= np.repeat(means, n)
            sq *= sq
            sq = np.add.reduceat(sq, first)
        stats["sq"].append(sq)
        del sq, means
        grand += int(durs.sum())
        # each name's class: that of its shortest instance (the first of them in row order)
        shortest = durs[first]
        del durs, first
        cand = np.flatnonzero(durs_in_order == shortest[ranks])
        del durs_in_order
        _, at = np.unique(ranks[cand], return_index=True)
        stats["cls"].append(np.concatenate(cl)[cand[at]])
        del cl, cand, at
        if launches:
            stats["delay"].append(_median_launch_delays(
                trace, np.concatenate(rw), ranks, np.arange(r1 - r0)))
        else:  # nothing was launched by a known call
            stats["delay"].append(np.full(r1 - r0, np.nan))
        del ranks, rw
    totals, mins, maxs, medians, sq, cls_of, delay_median = (
        np.concatenate(stats[k]) for k in ("totals", "mins", "maxs", "medians", "sq", "cls",
                                           "delay"))
    means = totals / counts
    std = np.sqrt(sq / np.maximum(counts - 1, 1))  # sample stddev, as nsys reports it
    strings = trace.strings
    # Whole columns at a time (1 M distinct names made this loop 19 s). n / 1000 of a whole
    # number of ns is already what round(n / 1000, 3) gives; the rest is rounded as before.
    text = [strings[i] for i in keys.tolist()]
    cls_names = [SHORT_CLASS[c] for c in cls_of.tolist()]
    count_l = counts.tolist()
    total_l = (totals / 1000).tolist()
    min_l, max_l = (mins / 1000).tolist(), (maxs / 1000).tolist()
    pct_l = [round(100 * t / grand, 3) for t in totals.tolist()] if grand else \
        [0.0] * len(keys)
    avg_l = [round(v / 1000, 3) for v in means.tolist()]
    med_l = [round(v / 1000, 3) for v in medians.tolist()]
    std_l = [round(v / 1000, 3) if n > 1 else 0.0 for v, n in zip(std.tolist(), count_l)]
    delay_l = [None if v != v else round(v / 1000, 3) for v in delay_median.tolist()]
    tc_l = tensor_core_ids(trace, classes)[keys].tolist()
    out = [{"name": name, "short_name": short_name(name), "class": cls_names[k],
            "count": count_l[k], "total_us": total_l[k], "pct": pct_l[k],
            "avg_us": avg_l[k], "median_us": med_l[k], "min_us": min_l[k],
            "max_us": max_l[k], "stddev_us": std_l[k], "launch_delay_median_us": delay_l[k],
            "tensor_core": tc_l[k]}
           for k, name in enumerate(text)]
    out.sort(key=lambda r: (-r["total_us"], r["name"]))
    for r, shown in zip(out, display_names([r["name"] for r in out],
                                           [r["short_name"] for r in out])):
        r["display_name"] = shown
    return out


def sorted_groups(ranks: np.ndarray, vals: np.ndarray, n_groups: int,
                  counts: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``vals`` sorted by (``ranks``, value), as (first index of each group, its size, the
    sorted values); ``ranks`` are dense, 0..n_groups-1, every one present (``counts``: how
    many of each, if known). Where rank and value fit in 63 bits together they are sorted
    as one int64 in place: a third of what a lexsort of the two holds (its order, and both
    columns reordered)."""
    vals = np.asarray(vals, np.int64)
    if not len(vals):
        z = np.zeros(0, np.int64)
        return z, z, vals
    if counts is not None:
        first = np.zeros(len(counts), np.int64)
        np.cumsum(counts[:-1], out=first[1:])
    vmin, vmax = int(vals.min()), int(vals.max())
    bits = (vmax - vmin).bit_length()
    if (n_groups << bits) < 2**62:
        key = ranks.astype(np.int64)
        key <<= bits
        if vmin:
            key -= vmin
        key += vals
        key.sort()
        if counts is None:
            g = key >> bits
            first = np.flatnonzero(np.concatenate([[True], g[1:] != g[:-1]]))
            del g
        key &= (1 << bits) - 1
        if vmin:
            key += vmin
        out = key
    else:
        o = np.lexsort((vals, ranks))
        out = vals[o]
        if counts is None:
            g = ranks[o]
            first = np.flatnonzero(np.concatenate([[True], g[1:] != g[:-1]]))
            del g
        del o
    sizes = np.diff(np.concatenate([first, [len(out)]])) if counts is None else counts
    return first, sizes, out


def _median_launch_delays(trace: Trace, rows: np.ndarray, names: np.ndarray,
                          keys: np.ndarray) -> np.ndarray:
    """Per name of ``keys`` (sorted name ids): the median over its instances with a known
    launch of (start − the launching call's start), ns; NaN where none is known."""
    out = np.full(len(keys), np.nan)
    delay = launch_delays(trace, rows)
    known = delay != NO_DELAY
    if not known.any():
        return out
    d, n = delay[known], names[known]
    o = np.lexsort((d, n))
    d, n = d[o], n[o]
    first = np.flatnonzero(np.r_[True, n[1:] != n[:-1]])
    counts = np.diff(np.r_[first, len(n)])
    med = (d[first + (counts - 1) // 2] + d[first + counts // 2]) / 2
    out[np.searchsorted(keys, n[first])] = med
    return out


def group_by_short_name(table: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The kernel table folded by short name (count, total, pct, avg; min and max)."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for r in table:
        key = (r["short_name"], r["class"])
        g = groups.get(key)
        if g is None:
            groups[key] = {"short_name": r["short_name"], "class": r["class"], "names": 1,
                           "count": r["count"], "total_us": r["total_us"], "pct": r["pct"],
                           "min_us": r["min_us"], "max_us": r["max_us"]}
        else:
            g["names"] += 1
            g["count"] += r["count"]
            g["total_us"] = round(g["total_us"] + r["total_us"], 3)
            g["pct"] = round(g["pct"] + r["pct"], 3)
            g["min_us"] = min(g["min_us"], r["min_us"])
            g["max_us"] = max(g["max_us"], r["max_us"])
    out = list(groups.values())
    for g in out:
        g["avg_us"] = round(g["total_us"] / g["count"], 3)
    out.sort(key=lambda g: (-g["total_us"], g["short_name"]))
    return out
