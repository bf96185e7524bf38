"""Frames (per row and column: busy fraction and the slice shown) against brute force."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tracetui.trace import load
from tracetui.trace.frame import bin_edges, default_rows, render, runs

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def trace():
    return load(str(ROOT / "sample_traces" / "annotated.json"))


def brute(trace, row, edges):
    ln = trace.lanes[row.lane]
    rows = [i for i in range(ln.lo, ln.hi) if trace.depth[i] == row.depth]
    cov, at = [], []
    for a, b in zip(edges[:-1].tolist(), edges[1:].tolist()):
        mid = a + (b - a) // 2
        busy, hit, first = 0, -1, None
        for i in rows:
            s, e = int(trace.start[i]), int(trace.start[i] + trace.dur[i])
            busy += max(0, min(e, b) - max(s, a))
            if s <= mid < e:
                hit = i
            if e > a and s < b and (first is None or s < trace.start[first]):
                first = i
        cov.append(busy / (b - a))
        at.append(hit if hit >= 0 else (first if first is not None and busy > 0 else -1))
    return np.array(cov), np.array(at)


def test_frame_matches_brute_force(trace):
    rng = np.random.default_rng(0)
    rows = default_rows(trace)
    for _ in range(6):
        t0, t1 = sorted(rng.integers(0, trace.end_ns, size=2).tolist())
        f = render(trace, rows, t0, t1 + 1000, 37)
        for r, row in enumerate(rows):
            if trace.lanes[row.lane].count > 2000 and r % 3:  # keep the test quick
                continue
            cov, at = brute(trace, row, f.edges)
            assert np.allclose(f.coverage[r], cov, atol=1e-6)
            assert f.slice_at[r].tolist() == at.tolist()


def test_bins_and_runs():
    e = bin_edges(100, 1100, 10)
    assert e[0] == 100 and e[-1] == 1100 and len(e) == 11 and (np.diff(e) == 100).all()
    assert runs(np.array([-1, 5, 5, 5, -1, 7, 7])) == [(0, 1, -1), (1, 3, 5), (4, 1, -1),
                                                       (5, 2, 7)]


def test_whole_trace_frame_accounts_for_all_busy_time(trace):
    rows = default_rows(trace)
    f = render(trace, rows, 0, trace.end_ns, 200)
    width = np.diff(f.edges)
    for r, row in enumerate(rows):
        ln = trace.lanes[row.lane]
        assert (f.coverage[r] * width).sum() == pytest.approx(ln.busy(0, int(f.edges[-1]),
                                                                      row.depth), abs=200)
