"""Where communication is exposed, in the app (Pilot): every view that shows per-phase
figures agrees with ``summary --json`` for the same phase (the overlap view's heatmap phase
line and bin figures, its annotation table, the phase view's table, the kernel table's launch
delays), ``x``/``X`` step through the exposed stretches and ``g``/``G`` through a stream's idle
gaps, and the detail pane shows launch delays both ways.

The expectations come from ``summary --json`` (:func:`analyze`, itself checked against an
independent computation in test_attribution.py) or from the raw JSON (:class:`Ref` of
test_attribution.py: plain Python over integer nanoseconds), never from the views' code.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from test_attribution import DPSK_COMM, Ref, nccl_name, read_events
from conftest import until
from test_views import grid_lines, loaded, report
from tracetui.app.app import TraceApp
from tracetui.app.detail import DetailPane
from tracetui.app.grid import Grid
from tracetui.app.phaseview import PhaseScreen
from tracetui.app.timeline import Timeline
from tracetui.app.views import Heatmap, InstancesScreen, KernelScreen, OverlapScreen

ROOT = Path(__file__).resolve().parent.parent
DECODE = ROOT / "sample_traces" / "annotated.json"
DEEPSEEK = ROOT.parent / "shared" / "traces" / "deepseek_train.json"


def need_deepseek() -> Path:
    if not DEEPSEEK.exists():
        pytest.skip("no ../shared/traces/deepseek_train.json")
    return DEEPSEEK


def traces():
    return [DECODE, pytest.param(DEEPSEEK, marks=pytest.mark.skipif(
        not DEEPSEEK.exists(), reason="no ../shared/traces"))]


def is_comm(path: Path):
    return (lambda n: bool(DPSK_COMM.search(n))) if path == DEEPSEEK else \
        (lambda n: "deep_ep::" in n and "get_dispatch_layout" not in n or nccl_name(n))


def ms(cell: str) -> float:
    return float(cell.replace(",", ""))


def pane_text(app: TraceApp) -> str:
    return app.query_one("#detail", DetailPane).plain


# ---------------------------------------------------------------- the overlap view
@pytest.mark.parametrize("path", traces())
async def test_heatmap_phase_line_names_the_phase_that_launched_what_runs(path):
    """Zoomed onto each of the largest exposed stretches, the bin under it is labelled with
    the phase that launched the communication kernel running there (summary's exposed[]),
    and the bin figures name that phase and kernel."""
    rep = report(str(path))
    app = TraceApp(str(path))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(app, pilot)
        await pilot.press("o")
        await pilot.pause()
        scr = app.screen
        assert isinstance(scr, OverlapScreen)
        hm = scr.query_one(Heatmap)
        assert hm.phases is not None
        checked = 0
        for x in rep["exposed"][:5]:
            s, e = round(x["start_us"] * 1000), round(x["end_us"] * 1000)
            hm.t0, hm.t1 = s - 40 * (e - s), e + 40 * (e - s)  # the stretch is ~1 bin of 96
            hm.col = -1
            hm.refresh()
            _, edges = hm.bins()
            mid = (s + e) // 2
            c = int(np.searchsorted(edges, mid, side="right")) - 1
            hm.col = c
            labels = hm.bin_phases(edges)
            assert app.trace.name_of(int(labels[c])) == x["phase"], x
            line = hm.render_line(1).text
            assert line.startswith("phase")
            info = hm.info().plain
            assert f"comm {x['phase']}" in info, info
            checked += 1
        assert checked


async def test_heatmap_phase_line_after_the_cpu_left_every_phase():
    """DeepSeek's last combine kernel runs after ProfilerStep#1 ended: the CPU is in no
    annotation then, yet the bin is dispatch(B)'s, the phase that launched it."""
    path = need_deepseek()
    rep = report(str(path))
    x = rep["exposed"][0]
    step = next(a for a in rep["annotations"] if a["name"] == "ProfilerStep#1")
    evs = read_events(path)
    t0 = rep["start_abs_ns"]
    occ = next(e for e in evs if e.get("name") == "ProfilerStep#1")
    step_end = round(float(occ["ts"]) * 1000) + round(float(occ["dur"]) * 1000) - t0
    assert round(x["start_us"] * 1000) > step_end and step["count"] == 1
    app = TraceApp(str(path))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(app, pilot)
        await pilot.press("o")
        await pilot.pause()
        hm = app.screen.query_one(Heatmap)
        s, e = round(x["start_us"] * 1000), round(x["end_us"] * 1000)
        edges = np.array([s, e], np.int64)
        assert app.trace.name_of(int(hm.bin_phases(edges)[0])) == "dispatch(B)" == x["phase"]


@pytest.mark.parametrize("path", traces())
async def test_overlap_view_annotation_table_is_the_summary(path):
    rep = report(str(path))
    by = {(a["name"], a["source"]): a for a in rep["annotations"]}
    app = TraceApp(str(path))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(app, pilot)
        await pilot.press("o")
        await pilot.pause()
        grid = app.screen.query_one("#ov-table", Grid)
        names = [(grid.model.value(int(i), "name"), grid.model.value(int(i), "source"))
                 for i in grid.order]
        assert set(names) == set(by)
        assert names[-1] == ("(no phase)", "none")  # blank time: last, whatever the sort
        lines = grid_lines(grid)[1:]
        for (name, source), text in zip(names, lines):
            a = by[(name, source)]
            cells = text.split()
            comm, exposed, ov = cells[-3], cells[-2], cells[-1]
            assert ms(comm) == pytest.approx(a["comm_us"] / 1000, abs=6e-4), name
            assert ms(exposed) == pytest.approx(a["exposed_comm_us"] / 1000, abs=6e-4), name
            if a["overlap_pct"] is None:
                assert ov == "—"
            else:
                assert float(ov.rstrip("%")) == pytest.approx(a["overlap_pct"], abs=0.051)
        # (no phase): Enter lists the GPU work no phase launched
        await pilot.press("tab", "end", "enter")
        await pilot.pause()
        none = by[("(no phase)", "none")]
        if none["kernels"]:
            ins = app.screen
            assert isinstance(ins, InstancesScreen) and len(ins.rows) == none["kernels"]
        else:
            assert isinstance(app.screen, OverlapScreen)
            assert any("every kernel was launched inside a phase" in n.message
                       for n in app._notifications)


# ---------------------------------------------------------------- the phase view
@pytest.mark.parametrize("path", traces())
async def test_phase_view_table_is_the_summary(path):
    rep = report(str(path))
    rows = {a["name"]: a for a in rep["annotations"] if a["phase"]}
    app = TraceApp(str(path))
    async with app.run_test(size=(160, 40)) as pilot:
        await loaded(app, pilot)
        await pilot.press("p")
        await until(pilot, lambda: isinstance(app.screen, PhaseScreen))
        grid = app.screen.query_one(Grid)
        titles = [c.title for c in grid.model.columns]
        shown = {grid.model.value(int(i), "name"): text
                 for i, text in zip(grid.order, grid_lines(grid)[1:])}
        assert "(no phase)" in shown and set(shown) <= set(rows)
        assert len(shown) >= 5
        header = grid_lines(grid)[0]
        assert all(t in header for t in titles)
        for name, text in shown.items():
            a = rows[name]
            k = grid.model.records
            rec = next(r for r in k if r["name"] == name)
            assert rec["comm_us"] == a["comm_us"] and rec["comp_us"] == a["comp_us"]
            assert rec["exposed_comm_us"] == a["exposed_comm_us"]
            assert rec["overlap_pct"] == a["overlap_pct"]
            if name != "(no phase)":
                assert rec["count"] == a["count"] and rec["total_us"] == a["total_us"]
            # as drawn: comm busy and exposed
            assert f"{a['comm_us'] / 1000:,.3f}" in text and \
                f"{a['exposed_comm_us'] / 1000:,.3f}" in text, (name, text)
        if path == DEEPSEEK:
            assert shown["dispatch(B)"] and rows["dispatch(B)"]["exposed_comm_us"] == 1897.0


# ---------------------------------------------------------------- the kernel table
@pytest.mark.parametrize("path", traces())
async def test_kernel_table_launch_delay_column(path):
    ref = Ref(read_events(path), is_comm(path))
    delays = ref.launch_delays()
    rep = report(str(path))
    app = TraceApp(str(path))
    async with app.run_test(size=(160, 40)) as pilot:
        await loaded(app, pilot)
        await pilot.press("k")
        await pilot.pause()
        scr = app.screen
        assert isinstance(scr, KernelScreen)
        grid = scr.grid
        assert "launch µs" in grid_lines(grid)[0]
        by = {k["name"]: k for k in rep["kernels"]}
        for i in grid.order[:40].tolist():
            name = grid.model.value(i, "name")
            d = sorted(delays[name])
            got = grid.model.value(i, "launch_delay_median_us")
            if not d:
                assert got is None
                continue
            med = (d[(len(d) - 1) // 2] + d[len(d) // 2]) / 2
            assert got == pytest.approx(med / 1000, abs=6e-4) == by[name]["launch_delay_median_us"]


# ---------------------------------------------------------------- x / X: exposed stretches
@pytest.mark.parametrize("size", [(120, 40), (80, 24)])
async def test_x_steps_through_the_exposed_stretches(size):
    path = need_deepseek()
    rep = report(str(path))
    app = TraceApp(str(path))
    async with app.run_test(size=size) as pilot:
        await loaded(app, pilot)
        tr, tl = app.trace, app.query_one(Timeline)
        for k in range(3):  # largest first
            await pilot.press("x")
            await pilot.pause()
            x = rep["exposed"][k]
            s, e = round(x["start_us"] * 1000), round(x["end_us"] * 1000)
            assert app.range == (s, e)
            assert tr.name_of(tl.selected) == x["kernel"]
            assert tl.t0 <= s and e <= tl.t1 and (tl.t1 - tl.t0) <= 4 * (e - s) + 3000
            text = pane_text(app)
            assert f"exposed communication {k + 1} of {rep['overlap'][0]['exposed_stretches']}" \
                in text
            assert f"launched in {x['phase']}" in " ".join(text.split())
            await until(pilot, lambda: app.range_stats is not None)
            st = app.range_stats
            assert st["devices"][0]["exposed_comm_us"] * 1000 == pytest.approx(e - s, abs=1)
        # X: the next in time after the third, of all the stretches (exposed[] has the 100
        # largest), computed from the raw JSON
        every = sorted(Ref(read_events(path), is_comm(path)).stretches(rep["start_abs_ns"]),
                       key=lambda r: r["a"])
        assert len(every) == rep["overlap"][0]["exposed_stretches"]
        third = round(rep["exposed"][2]["start_us"] * 1000) + rep["start_abs_ns"]
        nxt = next(r for r in every if r["a"] > third)
        await pilot.press("X")
        await pilot.pause()
        assert app.range == (round(nxt["start_us"] * 1000), round(nxt["end_us"] * 1000))
        # marking another range drops the note
        await pilot.press("m")
        await pilot.pause()
        assert "exposed communication" not in pane_text(app).split("\n")[0]


async def test_x_and_g_restart_on_new_aggregates():
    """The stretch and gap being shown index the aggregates of one trace: when the load's end
    replaces them (here: new ones made for the same trace), X and G start again instead of
    indexing the old ones."""
    from tracetui.app.session import Analyses

    app = TraceApp(str(DECODE))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(app, pilot)
        tl = app.query_one(Timeline)
        lane = next(ln for ln in app.trace.lanes if ln.kind == "gpu")
        tl.cursor_to_lane(lane.index)
        await pilot.press(*["x"] * 5, *["i"] * 5)
        await pilot.pause()
        app.analyses = Analyses(app.trace, tl.classes_of)
        tl.cursor_to_lane(lane.index)
        await pilot.press("X", "G")  # in time, from the view: no old index is looked up
        await pilot.pause()
        assert app.is_running and app._stretch[0] is app.analyses
        app.analyses = Analyses(app.trace, tl.classes_of)
        tl.cursor_to_lane(lane.index)
        await pilot.press("x", "i")  # largest first, from the first again
        await pilot.pause()
        assert app._stretch[1] == 0 and app._gap[2] == 0


async def test_x_without_exposed_communication():
    app = TraceApp(str(ROOT / "sample_traces" / "cpu_torch.json"))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(app, pilot)
        await pilot.press("x")
        await pilot.pause()
        assert app.range is None
        assert any("no exposed communication" in n.message for n in app._notifications)


# ---------------------------------------------------------------- i / I: idle gaps
@pytest.mark.parametrize("path", traces())
async def test_i_steps_through_a_streams_largest_gaps(path):
    rep = report(str(path))
    app = TraceApp(str(path))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(app, pilot)
        tr, tl = app.trace, app.query_one(Timeline)
        lane = next(ln for ln in tr.lanes if ln.kind == "gpu")
        s = next(x for x in rep["streams"] if x["lane"] == lane.name)
        tl.cursor_to_lane(lane.index)
        for k, g in enumerate(s["gaps"][:3]):
            await pilot.press("i")
            await pilot.pause()
            a, b = round(g["start_us"] * 1000), round(g["end_us"] * 1000)
            assert app.range == (a, b), k
            assert tr.name_of(tl.selected) == g["next"] and int(tr.start[tl.selected]) == b
            text = " ".join(pane_text(app).split())
            assert f"idle gap {k + 1} of {s['idle_gaps']}" in text and g["kind"] in text
        await pilot.press("I")  # in time: the gap after the third largest
        await pilot.pause()
        third = s["gaps"][2]
        assert app.range is not None and app.range[0] > round(third["start_us"] * 1000)
        # a CPU lane: nothing to step through
        cpu = next(ln for ln in tr.lanes if ln.kind == "cpu" and ln.count)
        tl.selected = -1
        tl.cursor_to_lane(cpu.index)
        await pilot.press("i")
        await pilot.pause()
        assert any("GPU stream" in n.message for n in app._notifications)


# ---------------------------------------------------------------- launch delays in the pane
@pytest.mark.parametrize("path", traces())
async def test_detail_pane_launch_delay_both_ways(path):
    evs = read_events(path)
    launch = {}
    for e in evs:
        if e.get("ph") == "X" and e.get("cat") in ("cuda_runtime", "cuda_driver"):
            c = (e.get("args") or {}).get("correlation")
            if c is not None:
                launch[c] = e
    app = TraceApp(str(path))
    async with app.run_test(size=(160, 50)) as pilot:
        await loaded(app, pilot)
        tr, tl = app.trace, app.query_one(Timeline)
        rows = [int(r) for r in tr.launch_of.rows[:: max(1, len(tr.launch_of) // 5)][:5]]
        for r in rows:
            tl.select(r)
            await pilot.pause()
            ev = tr.raw_event(r)
            src = launch[ev["args"]["correlation"]]
            delay_ns = round((float(ev["ts"]) - float(src["ts"])) * 1000)
            text = pane_text(app)
            m = re.search(r"launch delay (-?[\d.,]+) (ns|µs|ms|s)\b", text)
            assert m, text
            unit = {"ns": 1, "µs": 1e3, "ms": 1e6, "s": 1e9}[m.group(2)]
            assert float(m.group(1).replace(",", "")) * unit == pytest.approx(delay_ns, rel=0.01,
                                                                              abs=1)
            # the runtime call: what it launched, with the same delay
            tl.select(tr.launched_by(r))
            await pilot.pause()
            text = pane_text(app)
            n = sum(1 for e in evs if e.get("ph") == "X" and e.get("cat") in (
                "kernel", "gpu_memcpy", "gpu_memset")
                and (e.get("args") or {}).get("correlation") == ev["args"]["correlation"])
            assert f"launched {n:,} GPU slice" in text, text
