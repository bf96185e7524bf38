"""The memory-saving paths give what the plain ones give (issue 20: 15 M kernels in half
the file's size): GPU work without args kept as rows only, interval algebra a time window
at a time, the kernel table a bucket of names at a time, a stream's gaps without a sort.

Each path is forced on small inputs (tiny windows and buckets) and checked against an
independent computation: point sets for the intervals, plain Python over the raw JSON for
the kernel fields, the table and the gaps.
"""

from __future__ import annotations

import json
import random
import statistics
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest

from test_analysis import (DECODE, _canonical, _pairs, _pts, _random_set, gpu_work,
                           read_events, to_ns, us)
from test_parallel import _assert_same
from tracetui.analysis import intervals as iv
from tracetui.analysis import kernels as kmod
from tracetui.analysis.rules import DEFAULT_RULES, classify
from tracetui.analysis.streams import StreamGaps, kernel_wait
from tracetui.trace import LANE_GPU, load


# ----------------------------------------------------------------------------- intervals


@pytest.mark.parametrize("window", [1, 2, 3, 7])
def test_windowed_interval_algebra_is_the_point_sets(window, monkeypatch):
    monkeypatch.setattr(iv, "WINDOW", window)
    rng = random.Random(window)
    for _ in range(300):
        sets = [_random_set(rng) for _ in range(rng.randint(1, 5))]
        pts = [_pts(_pairs(x)) for x in sets]
        counts = Counter(t for p in pts for t in p)
        assert _pts(_canonical(iv.union_of(sets))) == set().union(*pts)
        for k in (1, 2, 3):
            want = {t for t, c in counts.items() if c >= k}
            assert _pts(_canonical(iv.coverage(sets, k))) == want
            assert iv.coverage_total(sets, k) == len(want)
        a, b = sets[0], sets[-1]
        assert _pts(_canonical(iv.intersect(a, b))) == pts[0] & pts[-1]
        assert iv.intersect_total(a, b) == len(pts[0] & pts[-1])
        assert _pts(_canonical(iv.subtract(a, b))) == pts[0] - pts[-1]


def test_a_windowed_union_joins_what_a_window_edge_cut():
    """One long interval over many windows comes back whole, not in pieces."""
    long = (np.array([0], np.int64), np.array([10_000], np.int64))
    many = (np.arange(0, 10_000, 10, dtype=np.int64), np.arange(5, 10_005, 10, dtype=np.int64))
    got = iv.windowed([long, many], lambda xs: iv.union(np.concatenate([x[0] for x in xs]),
                                                        np.concatenate([x[1] for x in xs])),
                      chunk=16)
    assert _pairs(got) == [(0, 10_000)]


def test_a_sorted_apart_union_is_the_input_itself():
    s = np.array([0, 10, 20], np.int64)
    e = np.array([5, 15, 25], np.int64)
    u = iv.union(s, e)
    assert u[0] is s and u[1] is e  # no copy of a stream's kernels
    assert _pairs(iv.union(np.array([0, 5]), np.array([5, 9]))) == [(0, 9)]  # touching: one


# ----------------------------------------------------------------------------- builder


def _kernel_trace(path: Path, n: int, with_args) -> list[dict]:
    """``n`` kernels on two streams; ``with_args(i)``: whether kernel ``i`` has its args."""
    evs = []
    for i in range(n):
        e = {"ph": "X", "cat": "kernel", "name": f"k{i % 5}", "pid": 0, "tid": 7 + i % 2,
             "ts": 1000 + i * 3, "dur": 2}
        if with_args(i):
            e["args"] = {"device": 0, "stream": 7 + i % 2, "grid": [i + 1, 2, 1],
                         "block": [128, 1, 1], "registers per thread": 32 + i % 3,
                         "shared memory": 1024 * (i % 4), "est. achieved occupancy %": 50 + i % 7}
        evs.append(e)
    path.write_text(json.dumps({"traceEvents": evs}))
    return evs


@pytest.mark.parametrize("mix", ["none", "all", "some", "last"])
def test_kernel_fields_with_and_without_args(tmp_path, mix):
    """Kernels without args are kept as rows only; each kernel's fields are still its own
    (or the defaults), whether some, all or none of them have args, in one stream or
    parsed apart by workers."""
    n = 3000
    pick = {"none": lambda i: False, "all": lambda i: True, "some": lambda i: i % 3 == 0,
            "last": lambda i: i == n - 1}[mix]
    path = tmp_path / "k.json"
    evs = _kernel_trace(path, n, pick)
    _assert_same(path, workers=3, pieces=8 << 10)
    tr = load(str(path))
    kf = tr.kernels
    assert len(kf.slice) == n and (np.diff(kf.slice) > 0).all()
    # the event behind each kernel row, through its args row (its place in the file)
    ev_of = [evs[int(tr.row[s])] for s in kf.slice.tolist()]
    for k, e in enumerate(ev_of):
        a = e.get("args")
        if a is None:
            assert kf.grid[k].tolist() == [0, 0, 0] and kf.registers[k] == -1
            assert kf.shared_memory[k] == -1 and np.isnan(kf.occupancy[k])
        else:
            assert kf.grid[k].tolist() == a["grid"] and kf.block[k].tolist() == a["block"]
            assert kf.registers[k] == a["registers per thread"]
            assert kf.shared_memory[k] == a["shared memory"]
            assert kf.occupancy[k] == pytest.approx(a["est. achieved occupancy %"])
        assert np.isnan(kf.bandwidth[k]) and kf.bytes[k] == -1
    if mix == "none":  # nothing per kernel is held for fields no kernel has
        for f in ("grid", "block", "registers", "shared_memory", "occupancy", "bandwidth"):
            assert getattr(kf, f).strides[0] == 0, f


# ----------------------------------------------------------------------------- kernel table


@pytest.mark.parametrize("bucket", [1, 3, 40])
def test_kernel_table_in_buckets_is_the_groupby(bucket, monkeypatch):
    whole = kmod.kernel_table(tr := load(str(DECODE)), classes := classify(tr, DEFAULT_RULES))
    monkeypatch.setattr(kmod, "BUCKET", bucket)
    table = kmod.kernel_table(tr, classes)
    assert table == whole
    groups: dict[str, list[int]] = defaultdict(list)
    for e in gpu_work(read_events(DECODE)):
        groups[e["name"]].append(to_ns(e["dur"]))
    assert {r["name"] for r in table} == set(groups)
    for r in table:
        durs = groups[r["name"]]
        assert (r["count"], r["total_us"], r["min_us"], r["max_us"]) == (
            len(durs), us(sum(durs)), us(min(durs)), us(max(durs))), r["name"]
        assert r["median_us"] == pytest.approx(statistics.median(durs) / 1000, abs=0.0006)


def test_sorted_groups_with_values_too_wide_to_pack():
    """Ranks and values that do not fit one int64 together take the lexsort."""
    ranks = np.array([1, 0, 1, 0, 2], np.int32)
    vals = np.array([2**61, 5, -2**61, 3, 0], np.int64)
    first, n, out = kmod.sorted_groups(ranks, vals, 3)
    assert first.tolist() == [0, 2, 4] and n.tolist() == [2, 2, 1]
    assert out.tolist() == [3, 5, -2**61, 2**61, 0]
    first, n, out = kmod.sorted_groups(ranks, np.array([9, 5, 7, 3, 1], np.int64), 3)
    assert out.tolist() == [3, 5, 7, 9, 1] and n.tolist() == [2, 2, 1]


# ----------------------------------------------------------------------------- gaps


def _gaps_by_hand(evs: list[dict], tid: int) -> list[tuple[int, int]]:
    """The idle gaps of one stream: between the merged intervals of its work (raw JSON)."""
    iv_ = sorted((to_ns(e["ts"]), to_ns(e["ts"]) + to_ns(e["dur"])) for e in evs
                 if e["tid"] == tid and to_ns(e["dur"]) > 0)
    merged: list[list[int]] = []
    for s, e in iv_:
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    return [(a[1], b[0]) for a, b in zip(merged, merged[1:])]


@pytest.mark.parametrize("layout", ["apart", "ties", "nested"])
def test_stream_gaps_sorted_lane_and_not(tmp_path, layout):
    """A stream whose kernels are by start and apart (no sort, no copy) and ones that are
    not (equal starts; a kernel inside another) give the gaps worked out by hand."""
    rng = random.Random(7)
    evs, t = [], 0
    for i in range(400):
        t += rng.choice([0, 1, 3, 5, 20]) if layout != "apart" else rng.choice([1, 3, 5, 20])
        d = rng.choice([1, 2, 4])
        if layout == "nested" and i % 10 == 0:
            d = 30
        evs.append({"ph": "X", "cat": "kernel", "name": f"k{i % 3}", "pid": 0, "tid": 7,
                    "ts": t, "dur": d})
        if layout == "apart":
            t += d
    path = tmp_path / "g.json"
    path.write_text(json.dumps({"traceEvents": evs}))
    tr = load(str(path))
    ln = next(ln for ln in tr.lanes if ln.kind == LANE_GPU)
    sg = StreamGaps(tr, ln, kernel_wait(10.0), classify(tr, DEFAULT_RULES))
    t0 = tr.t0_abs_ns
    want = _gaps_by_hand(evs, 7)
    assert list(zip((sg.start + t0).tolist(), (sg.end + t0).tolist())) == want
    assert len(want) > 20
    # the work that ends each gap starts where the gap ends
    assert (tr.start[sg.next_row] == sg.end).all()
    top = sg.largest(5).tolist()
    assert top == sg.largest()[:5].tolist()


def _apart_kernels(rng: random.Random, n: int = 300) -> tuple[list[dict], int]:
    """``n`` kernels on one stream, by start and apart (gaps of 1-40 µs): the events, and
    where the last one ends."""
    evs, t = [], 0
    for i in range(n):
        t += rng.choice([1, 3, 5, 20, 20, 40])
        d = rng.choice([1, 2, 4])
        evs.append({"ph": "X", "cat": "kernel", "name": f"k{i % 3}", "pid": 0, "tid": 7,
                    "ts": t, "dur": d})
        t += d
    return evs, t


@pytest.mark.parametrize("chunk", [1, 5, 64])
def test_gap_summary_in_chunks_is_the_gaps_by_hand(chunk, tmp_path, monkeypatch):
    """A stream by start without ties, its gaps found a few rows at a time (chunks of 1, 5
    and 64 rows): count, idle time, split totals and the largest five are the hand's; and
    the summary's streams[] is what one chunk gives, on the decode sample and on it."""
    from tracetui.analysis import streams

    rng = random.Random(11)
    evs, t = _apart_kernels(rng)
    path = tmp_path / "g.json"
    path.write_text(json.dumps({"traceEvents": evs}))
    whole = {}
    for p in (path, DECODE):
        tr = load(str(p))
        whole[p] = streams.stream_stats(tr, classify(tr, DEFAULT_RULES))
    monkeypatch.setattr(streams, "GAP_CHUNK", chunk)
    tr = load(str(path))
    cl = classify(tr, DEFAULT_RULES)
    ln = next(ln for ln in tr.lanes if ln.kind == LANE_GPU)
    assert streams._by_start_no_ties(tr, ln, cl)  # the chunked way is the one taken
    gs = streams.GapSummary(tr, ln, kernel_wait(10.0), cl)
    want = _gaps_by_hand(evs, 7)
    durs = [b - a for a, b in want]
    assert (gs.count, gs.idle_ns) == (len(want), sum(durs))
    assert gs.totals[1] == sum(d for d in durs if d < 10_000)  # kernel wait: < 10 µs
    assert gs.totals[0] == 0 and gs.totals[2] == sum(d for d in durs if d >= 10_000)
    t0 = tr.t0_abs_ns
    top = sorted(want, key=lambda g: (-(g[1] - g[0]), g[0]))[:5]
    assert list(zip((gs.top.start + t0).tolist(), (gs.top.end + t0).tolist())) == top
    first = to_ns(evs[0]["ts"])
    last = to_ns(evs[-1]["ts"]) + to_ns(evs[-1]["dur"])
    assert gs.busy_ns == last - first - sum(durs)
    for p in (path, DECODE):
        tr = load(str(p))
        assert streams.stream_stats(tr, classify(tr, DEFAULT_RULES)) == whole[p]


@pytest.mark.parametrize("block", [1, 3, 1 << 20])
def test_covered_before_is_the_point_sets(block, monkeypatch):
    """The time of a set before each instant, a block of intervals at a time (no prefix sum
    per interval): the points counted, for sets held as pairs and as a Run, with and without
    a mask, instants in order or not."""
    monkeypatch.setattr(iv, "BLOCK", block)
    rng = random.Random(block)
    for _ in range(300):
        x = _random_set(rng)
        pairs = _pairs(x)
        mask = np.array([rng.random() < 0.5 for _ in pairs], bool)
        ts = np.array([rng.randint(-20, 230) for _ in range(rng.randint(0, 12))], np.int64)
        if rng.random() < 0.5:
            ts.sort()
        for m in (None, mask):
            pts = _pts([p for i, p in enumerate(pairs) if m is None or m[i]])
            want = [sum(1 for t in pts if t < x_) for x_ in ts.tolist()]
            assert iv.covered_before(x, ts, m).tolist() == want
            run = iv.Run(x[0], x[1] - x[0])
            assert iv.covered_before(run, ts, m).tolist() == want
        if len(ts) >= 2:
            t0, t1 = np.sort(ts)[:2]
            assert iv.covered_inside(x, np.array([t0]), np.array([t1])).tolist() == \
                [sum(1 for t in _pts(pairs) if t0 <= t < t1)]


@pytest.mark.parametrize("chunk", [1, 7, 1 << 20])
def test_steps_idle_split_from_gaps_in_chunks(chunk, tmp_path, monkeypatch):
    """The steps' idle split, the stream's gaps found a chunk of rows at a time: per step,
    each gap's time inside it by the gap's kind (under 10 µs: kernel wait; no launches are
    known, so no host wait), worked out by hand from the events."""
    from tracetui.analysis import streams
    from tracetui.analysis.steps import step_breakdown

    rng = random.Random(chunk)
    evs, t = _apart_kernels(rng)
    edges = sorted(rng.sample(range(0, t), 9))
    steps = [(a, b) for a, b in zip(edges[::2], edges[1::2])]  # apart, in order
    for n, (a, b) in enumerate(steps):
        evs.append({"ph": "X", "cat": "user_annotation", "name": f"ProfilerStep#{n}",
                    "pid": 1, "tid": 1, "ts": a, "dur": b - a})
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"traceEvents": evs}))
    monkeypatch.setattr(streams, "GAP_CHUNK", chunk)
    tr = load(str(path))
    cl = classify(tr, DEFAULT_RULES)
    ln = next(ln for ln in tr.lanes if ln.kind == LANE_GPU)
    assert streams._in_chunks(tr, ln, cl) == (chunk < 300)
    got = step_breakdown(tr, cl, kernel_wait_us=10.0)
    gaps = _gaps_by_hand([e for e in evs if e["cat"] == "kernel"], 7)
    want = []
    for a, b in steps:
        a_ns, b_ns = to_ns(a), to_ns(b)
        row = [0, 0, 0]
        for g0, g1 in gaps:
            inside = max(0, min(g1, b_ns) - max(g0, a_ns))
            row[1 if g1 - g0 < 10_000 else 2] += inside
        want.append(row)
    assert got.idle.tolist() == want
    assert sum(map(sum, want)) > 0


# ----------------------------------------------------------------------------- pair covers


@pytest.mark.parametrize("bins", [1, 3, 50])
def test_binned_cover_is_the_cover(bins, monkeypatch):
    """Prefix sums at a few time edges, the rest made near the instant: before(t) equals
    the full cover's at every instant (windows of a few intervals while it is built)."""
    monkeypatch.setattr(iv, "WINDOW", 3)
    rng = random.Random(bins)
    for _ in range(200):
        a, b = _random_set(rng), _random_set(rng)
        ts = np.array(sorted(rng.randint(-20, 230) for _ in range(12)), np.int64)
        both = iv.BinnedCover([a, b], lambda xs: iv._intersect(*xs) if len(xs) == 2
                              else iv.EMPTY, bins=bins)
        pa, pb = _pts(_pairs(a)), _pts(_pairs(b))
        assert both.before(ts).tolist() == [sum(1 for t in pa & pb if t < x) for x in ts]
        own = iv.BinnedCover([a], lambda xs: xs[0], bins=bins)
        assert own.before(ts).tolist() == [sum(1 for t in pa if t < x) for x in ts]
        assert own.total == len(pa)


@pytest.mark.parametrize("path", [DECODE, Path(__file__).resolve().parent.parent / "sample_traces"
                                  / "prefill.json.gz"], ids=["decode", "prefill"])
def test_the_stream_matrix_from_binned_covers_is_stream_matrix(path, monkeypatch):
    """A device above PAIR_COVER_MAX keeps binned covers; the overlap view's matrix for any
    window is still stream_matrix's (the walk over every slice in the window)."""
    from tracetui.analysis import window as W

    monkeypatch.setattr(W, "PAIR_COVER_MAX", 0)
    monkeypatch.setattr(iv, "WINDOW", 64)
    tr = load(str(path))
    model = W.OverlapModel(tr, classify(tr, DEFAULT_RULES))
    rng = np.random.default_rng(5)
    cuts = sorted(rng.integers(-1000, tr.end_ns + 1000, 12).tolist())
    seen = 0
    for k, dc in enumerate(model.devices):
        _, covers = model.pair_covers(k)
        assert all(isinstance(c, iv.BinnedCover) for c in covers.values())
        for window in ((0, tr.end_ns), (tr.end_ns // 3, tr.end_ns // 2), (5, 5),
                       *zip(cuts[::2], cuts[1::2])):
            lanes, m = model.matrix(k, window)
            want_lanes, want = W.stream_matrix(tr, dc.unions, window)
            assert lanes == want_lanes and (m == want).all(), window
            seen += int(m.sum() > 0)
    assert seen > 3
