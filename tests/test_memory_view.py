"""Memory in the app: each device's curve drawn per time bin (the timeline's memory rows, the
memory view's chart), a marked range's memory, the allocations a range or an operator's
calls made, the memory view (``h``) and the jump to the peak (``H``).

Every expectation is computed here from the raw JSON with plain Python (per device, the
events in time order - file order among equal times -, the curve ``Total Allocated`` where
every event has it, else the running sum of ``Bytes``); never from the code under test.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from conftest import loaded, until
from test_memory_events import _events, _ns
from tracetui.analysis.memory import Allocations, RangeMax, memory_curves, range_memory
from tracetui.app.app import TraceApp
from tracetui.trace.loader import Loader

ROOT = Path(__file__).resolve().parent.parent
RESNET = ROOT.parent / "shared" / "traces" / "kineto2021_resnet50.pt.trace.json.gz"
CNN = ROOT / "sample_traces" / "torch" / "ops_cnn_memory.json"
NO_MEMORY = ROOT / "sample_traces" / "decode.json"
FILES = [p for p in (CNN, RESNET) if p.is_file()]


def raw_devices(path: Path) -> dict[tuple[int, int], dict]:
    """Per (Device Type, Device Id): times (ns from the trace's first timestamp), bytes,
    addresses and the curve (allocated after each event), in time order."""
    events = _events(path)
    t0 = min(_ns(e["ts"]) for e in events if isinstance(e.get("ts"), (int, float)))
    per: dict = defaultdict(list)
    for i, e in enumerate(events):
        a = e.get("args")
        if e.get("ph") == "i" and e.get("name") == "[memory]" and isinstance(a, dict) \
                and type(a.get("Bytes")) is int:
            per[(a.get("Device Type", -1), a.get("Device Id", -1))].append(
                (_ns(e["ts"]) - t0, i, a))
    out = {}
    for dev, evs in per.items():
        evs.sort(key=lambda x: (x[0], x[1]))
        totals = all("Total Allocated" in a for _, _, a in evs)
        run, cur = 0, []
        for _, _, a in evs:
            run += a["Bytes"]
            cur.append(a["Total Allocated"] if totals else run)
        out[dev] = {"ts": [t for t, _, _ in evs], "bytes": [a["Bytes"] for _, _, a in evs],
                    "addr": [a.get("Addr", 0) for _, _, a in evs], "curve": cur,
                    "relative": not totals}
    return out


def raw_bin_max(d: dict, lo: int, hi: int) -> float:
    """The most allocated in [lo, hi): what it enters with and every event inside."""
    before = [c for t, c in zip(d["ts"], d["curve"]) if t < lo]
    level = before[-1] if before else (0 if d["relative"] else math.nan)
    inside = [c for t, c in zip(d["ts"], d["curve"]) if lo <= t < hi]
    vals = [v for v in [level] + inside if not (isinstance(v, float) and math.isnan(v))]
    return float(max(vals)) if vals else math.nan


def raw_level(d: dict, t: int) -> int | None:
    """Allocated after the last event at or before ``t``."""
    got = [c for ts, c in zip(d["ts"], d["curve"]) if ts <= t]
    return got[-1] if got else (0 if d["relative"] else None)


def raw_allocations(d: dict) -> list[tuple[int, int]]:
    """(time, bytes) of each allocation of a device."""
    return [(t, b) for t, b in zip(d["ts"], d["bytes"]) if b > 0]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_each_bin_holds_the_most_allocated_in_it(path):
    """The chart's columns: for windows from the whole trace down to narrower than the
    events' spacing, each bin's value is what the raw events say."""
    raw = raw_devices(path)
    trace = Loader(str(path)).run()
    curves = memory_curves(trace)
    assert {(c.device_type, c.device_id) for c in curves} == set(raw)
    rng = random.Random(5)
    for c in curves:
        d = raw[(c.device_type, c.device_id)]
        assert c.peak_bytes == max(d["curve"])
        assert c.peak_ts == d["ts"][d["curve"].index(max(d["curve"]))]
        assert c.relative == d["relative"]
        lo_t, hi_t = d["ts"][0], d["ts"][-1]
        windows = [(0, int(trace.end_ns)), (lo_t, hi_t + 1)]
        for _ in range(6):
            a = rng.randrange(lo_t, hi_t + 1)
            windows.append((a, a + rng.choice([50, 5_000, 500_000, 20_000_000])))
        for t0, t1 in windows:
            n = rng.choice([1, 7, 80, 200])
            edges = np.array([t0 + (t1 - t0) * j // n for j in range(n + 1)], np.int64)
            got, _ = c.bins(edges)
            want = [raw_bin_max(d, int(edges[j]), int(edges[j + 1])) for j in range(n)]
            assert np.allclose(got, want, equal_nan=True), (t0, t1, n)


def test_range_maxima_are_the_brute_force_ones():
    rng = np.random.default_rng(3)
    for n in (1, 63, 64, 65, 1000, 70_001):
        v = rng.integers(-2**40, 2**40, n)
        lo = rng.integers(0, n, 300)
        hi = np.minimum(lo + 1 + rng.integers(0, n, 300), n)
        got = RangeMax(v).query(lo, hi)
        assert got.tolist() == [int(v[a:b].max()) for a, b in zip(lo, hi)]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_a_ranges_memory_and_its_largest_allocations(path):
    raw = raw_devices(path)
    trace = Loader(str(path)).run()
    curves = memory_curves(trace)
    allocs = Allocations(trace)
    rng = random.Random(11)
    ts_all = sorted(t for d in raw.values() for t in d["ts"])
    for _ in range(8):
        t0 = rng.choice(ts_all) - rng.randrange(0, 3000)
        t1 = t0 + rng.choice([1000, 100_000, 10_000_000])
        got = range_memory(curves, allocs, t0, t1, top=5)
        for row, c in zip(got["devices"], curves):
            d = raw[(c.device_type, c.device_id)]
            assert row["start_bytes"] == raw_level(d, t0 - 1)
            assert row["end_bytes"] == raw_level(d, t1 - 1)
            want_max = raw_bin_max(d, t0, t1)
            assert (row["max_bytes"] is None) == math.isnan(want_max)
            if row["max_bytes"] is not None:
                assert row["max_bytes"] == want_max
        inside = sorted((b for d in raw.values() for t, b in raw_allocations(d)
                         if t0 <= t < t1), reverse=True)
        assert [a["bytes"] for a in got["allocations"]] == inside[:5]
        every = allocs.rows(t0, t1)
        assert len(every) == len(inside)


def test_allocations_pair_with_their_frees_by_address():
    """ops_cnn_memory has addresses: each allocation's free is the next event at its
    address, if that is a free."""
    raw = raw_devices(CNN)
    trace = Loader(str(CNN)).run()
    rows = Allocations(trace).rows()
    want = []
    for d in raw.values():
        evs = list(zip(d["ts"], d["bytes"], d["addr"]))
        for i, (t, b, a) in enumerate(evs):
            if b <= 0:
                continue
            nxt = next(((t2, b2) for t2, b2, a2 in evs[i + 1:] if a2 == a), None)
            want.append((t, b, nxt[0] if nxt is not None and nxt[1] < 0 else None))
    got = sorted((round(r["alloc_us"] * 1000), r["bytes"],
                  None if r["free_us"] is None else round(r["free_us"] * 1000)) for r in rows)
    assert got == sorted(want)


# ------------------------------------------------------------------------------- the app
def _calls(events: list[dict], name: str) -> list[tuple[int, int]]:
    t0 = min(_ns(e["ts"]) for e in events if isinstance(e.get("ts"), (int, float)))
    return [(_ns(e["ts"]) - t0, _ns(e["ts"]) + _ns(e["dur"]) - t0) for e in events
            if e.get("ph") == "X" and e.get("name") == name]


@pytest.mark.skipif(not RESNET.is_file(), reason="../shared/traces not present")
async def test_the_memory_rows_the_view_and_the_peak():
    raw = raw_devices(RESNET)
    gpu = raw[(1, 0)]
    peak = max(gpu["curve"])
    peak_ts = gpu["ts"][gpu["curve"].index(peak)]
    app = TraceApp(str(RESNET))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(app, pilot, analyses=True)
        await until(pilot, lambda: len(app.session.memory()) == 2)
        tl = app.timeline
        kinds = [(r.kind, r.lane, r.depth) for r in tl.rows]
        gpu_lane = next(i for i, r in enumerate(tl.rows) if r.kind == "slices"
                        and app.trace.lanes[r.lane].device == 0)
        k = next(i for i, c in enumerate(app.session.memory()) if c.device_type == 1)
        at = kinds.index(("memory", -1, k))
        assert at > gpu_lane and kinds[at + 1] == ("memory", -2, k)  # under the GPU's lanes
        strip = tl.render_line(at - int(tl.scroll_offset.y) + 1)
        assert "CUDA:0 memory" in strip.text
        # H: the peak in view, the cursor on the GPU's memory rows
        await pilot.press("H")
        await pilot.pause()
        assert tl.t0 <= peak_ts < tl.t1 and tl.rows[tl.cursor].kind == "memory"
        assert tl.rows[tl.cursor].depth == k
        # h: the view, its chart naming the peak
        await pilot.press("h")
        await until(pilot, lambda: type(app.screen).__name__ == "MemoryScreen")
        screen = app.screen
        await until(pilot, lambda: not screen.busy and len(screen.grid.model) > 0)
        text = "\n".join(screen.chart.render_line(y).text for y in range(8))
        assert "CUDA:0  peak 2.6 GiB" in text and "aten::empty" in text
        every = sorted((b for d in raw.values() for _, b in raw_allocations(d)), reverse=True)
        assert [r["bytes"] for r in screen.grid.model.records] == every[:1000]
        # ^t: by operator; ⏎ on the DataLoader's row: the allocations in its calls
        await pilot.press("ctrl+t")
        await until(pilot, lambda: not screen.busy)
        names = [r["name"] for r in screen.grid.model.records]
        loader = next(n for n in names if n.startswith("enumerate(DataLoader)"))
        g = screen.grid
        g.cursor = g.order.tolist().index(names.index(loader))
        await pilot.press("enter")
        await until(pilot, lambda: not screen.busy)
        calls = _calls(_events(RESNET), loader)
        inside = sorted((b for d in raw.values() for t, b in raw_allocations(d)
                         if any(s <= t <= e for s, e in calls)), reverse=True)
        assert [r["bytes"] for r in screen.grid.model.records] == inside[:1000]
        assert "in the calls of" in str(screen.query_one("#title").render())
        # ⏎ on an allocation (no address in this trace: no free): the slice that made it
        await pilot.press("enter")
        await until(pilot, lambda: app.screen is app.screen_stack[0])
        assert app.timeline.selected >= 0
        assert app.trace.name_of(app.timeline.selected) == "aten::resize_"


async def test_without_memory_events_h_says_so():
    app = TraceApp(str(NO_MEMORY))
    async with app.run_test(size=(100, 30)) as pilot:
        await loaded(app, pilot, analyses=True)
        assert not any(r.kind == "memory" for r in app.timeline.rows)
        for key in ("h", "H"):
            await pilot.press(key)
            await pilot.pause()
            assert app.screen is app.screen_stack[0]
        msgs = [str(n.message) for n in app._notifications]
        assert any("profile_memory=True" in m for m in msgs), msgs


def test_ranks_combined_keep_each_ranks_memory_apart(tmp_path):
    """Two ranks' traces on one timeline: each rank's devices are curves of their own
    (its CPU as ``CPU r1``), each the rank's own curve from the raw JSON, its times moved
    as the rank's slices are."""
    from tracetui.trace.combine import combine

    raw = raw_devices(CNN)
    assert set(raw) == {(0, -1)}  # (this sample: the CPU's memory only)
    a, b = Loader(str(CNN)).run(), Loader(str(CNN)).run()
    both = combine([(0, a), (1, b)], align="start")
    curves = memory_curves(both)
    assert sorted(c.label for c in curves) == ["CPU r0", "CPU r1"]
    d = raw[(0, -1)]
    for c in curves:
        assert c.allocated.tolist() == d["curve"]
        assert (c.ts - c.ts[0]).tolist() == [t - d["ts"][0] for t in d["ts"]]


async def test_a_table_that_fails_says_so_and_the_view_goes_on(monkeypatch):
    """Memory by operator failing (a trace it did not expect): one notice, the title no
    longer says it is working, and the allocations still come back with ^t."""
    from tracetui.app import memoryview

    def broken(*a, **k):
        raise ValueError("an operator it did not expect")

    monkeypatch.setattr(memoryview, "operator_memory", broken)
    app = TraceApp(str(CNN))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(app, pilot, analyses=True)
        await until(pilot, lambda: len(app.session.memory()) == 1)
        await pilot.press("h")
        await until(pilot, lambda: type(app.screen).__name__ == "MemoryScreen")
        screen = app.screen
        await until(pilot, lambda: not screen.busy and len(screen.grid.model) > 0)
        await pilot.press("ctrl+t")
        await until(pilot, lambda: not screen.busy)
        msgs = [str(n.message) for n in app._notifications]
        assert any("memory table failed" in m and "did not expect" in m for m in msgs), msgs
        assert "working out" not in str(screen.query_one("#title").render())
        await pilot.press("ctrl+t")
        await until(pilot, lambda: not screen.busy and len(screen.grid.model) > 0)
        assert not screen.by_op
