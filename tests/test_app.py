"""The terminal app driven with Textual's Pilot, and the timeline widget's rows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import loaded

from tracetui.analysis.rules import DEFAULT_RULES, classify
from tracetui.app.app import TraceApp
from tracetui.app.timeline import BLOCKS, Timeline
from tracetui.trace import load

ROOT = Path(__file__).resolve().parent.parent
DECODE = ROOT / "sample_traces" / "annotated.json"


async def search(pilot, text: str) -> None:
    await pilot.press("slash", *text, "enter")
    await pilot.pause()




async def test_loads_draws_zooms_and_quits():
    app = TraceApp(str(DECODE))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(app, pilot)
        assert app.loaded and app.trace is not None
        tl = app.query_one(Timeline)
        names = [tl.render_line(y).text for y in range(1, 8)]
        assert any(n.startswith("GPU 0 · stream 7") for n in names)
        assert any(ch in "".join(names) for ch in BLOCKS[1:])
        span = tl.t1 - tl.t0
        await pilot.press("w")
        assert tl.t1 - tl.t0 == pytest.approx(span / 2, rel=0.01)
        await pilot.press("d")
        await pilot.press("0")
        assert (tl.t0, tl.t1) == (0, app.trace.end_ns)
        await pilot.press("q")
    assert app.return_code in (0, None)


async def test_search_selects_and_details_a_dispatch_kernel():
    app = TraceApp(str(DECODE))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(app, pilot)
        await search(pilot, "dispatch<")
        tl = app.query_one(Timeline)
        assert tl.selected >= 0
        assert "deep_ep::internode_ll::dispatch" in app.trace.name_of(tl.selected)
        text = app.describe(tl.selected).plain
        assert "grid" in text and "launched by" in text and "cudaLaunchKernel" in text
        first = tl.selected
        await pilot.press("n")
        assert tl.selected != first and tl.start_of(tl.selected) >= tl.start_of(first)
        await pilot.press("left_square_bracket")  # to the launch
        assert app.trace.name_of(tl.selected) in ("cudaLaunchKernel", "cuLaunchKernel")
        await pilot.press("right_square_bracket")  # back to the kernel
        assert "dispatch" in app.trace.name_of(tl.selected)


async def test_step_and_rows():
    app = TraceApp(str(DECODE))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(app, pilot)
        tl = app.query_one(Timeline)
        await pilot.press("full_stop")
        a = tl.selected
        await pilot.press("full_stop")
        b = tl.selected
        assert a >= 0 and b == a + 1  # the next slice at the same (lane, depth)
        await pilot.press("comma")
        assert tl.selected == a
        await pilot.press("j", "j")
        assert tl.cursor == 2


async def test_truncated_file_opens_with_a_warning(tmp_path):
    cut = tmp_path / "cut.json"
    cut.write_bytes(DECODE.read_bytes()[:600_000])
    app = TraceApp(str(cut))
    async with app.run_test(size=(100, 30)) as pilot:
        await loaded(app, pilot)
        assert app.trace is not None and app.trace.truncated
        assert "truncated" in str(app.query_one("#status").render())


async def test_bad_file_shows_an_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("not json at all")
    app = TraceApp(str(bad))
    async with app.run_test(size=(100, 30)) as pilot:
        await loaded(app, pilot)
        assert app.error and "not a JSON trace" in app.error


def test_rows_render_names_as_plain_text(tmp_path):
    hostile = "[red]x[/red]\x1b[2J[@click=app.quit]"
    path = tmp_path / "h.json"
    path.write_text(json.dumps({"traceEvents": [
        {"ph": "M", "name": "thread_name", "pid": 1, "tid": 1, "args": {"name": hostile}},
        {"ph": "X", "name": hostile, "cat": "cpu_op", "pid": 1, "tid": 1, "ts": 0, "dur": 100}]}))
    tr = load(str(path))
    tl = Timeline()
    tl.trace, tl.classes_of = tr, classify(tr, DEFAULT_RULES)
    from tracetui.trace.frame import default_rows, render

    tl.rows = default_rows(tr)
    f = render(tr, tl.rows, 0, tr.end_ns, 60)
    strip = tl._row(0, 0, f, 84)
    text = strip.text
    assert "\x1b" not in text and "[red]x" in text and "^[" in text
    assert np.isclose(f.coverage[0].mean(), 1.0)


async def test_resize_collapse_counters_and_theme():
    app = TraceApp(str(DECODE), theme="light")
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(app, pilot)
        tl = app.query_one(Timeline)
        assert tl.palette.comm == "#af005f"  # from themes/light.toml
        # the decode sample has a Memory counter: drawn as a sparkline row
        counter_rows = [i for i, r in enumerate(tl.rows) if r.lane < 0]
        assert counter_rows
        tl.scroll_to(y=max(counter_rows[0] - 5, 0), animate=False)
        await pilot.pause()
        lines = [tl.render_line(y).text for y in range(1, tl.size.height)]
        spark = [x for x in lines if x.startswith("Memory")]
        assert spark and any(ch in spark[0] for ch in BLOCKS[1:])
        # collapse the CPU main thread to its top row, and back
        cpu = next(i for i, r in enumerate(tl.rows)
                   if r.lane >= 0 and app.trace.lanes[r.lane].tid == 1166 and r.depth == 0)
        tl.cursor = cpu
        n = len(tl.rows)
        await pilot.press("c")
        assert len(tl.rows) < n
        await pilot.press("c")
        assert len(tl.rows) == n
        # narrow terminal: the detail pane moves under the timeline
        await pilot.press("full_stop")
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        assert app.query_one("#detail").has_class("bottom")
        assert max(len(tl.render_line(y).text) for y in range(tl.size.height)) <= 80


def test_cli_without_a_terminal_prints_the_summary(capsys):
    from tracetui.cli import demo_path, main

    assert Path(demo_path()).read_bytes() == (ROOT / "sample_traces" / "prefill.json.gz").read_bytes()
    assert main(["--demo"]) == 0  # pytest's stdout is not a terminal
    assert "communication vs computation" in capsys.readouterr().out
    assert main([]) == 2


async def test_search_text_with_markup_stays_text():
    app = TraceApp(str(DECODE))
    async with app.run_test(size=(100, 30)) as pilot:
        await loaded(app, pilot)
        await search(pilot, "[@click=app.quit]x")
        assert app.is_running  # the "action" in the query did not run
        shown = [str(n.message) for n in app._notifications]
        assert any("[@click=app.quit]x" in m for m in shown)


async def test_no_color(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app = TraceApp(str(DECODE))
    async with app.run_test(size=(100, 30)) as pilot:
        await loaded(app, pilot)
        await pilot.press("w", "full_stop")
        await pilot.pause()
        assert app.loaded and app.is_running


@pytest.mark.parametrize("pause", [False, True])
async def test_early_load_hands_over_to_the_app(pause):
    from tracetui.trace.loader import EarlyLoad

    early = EarlyLoad(str(DECODE), pause_after_first=pause)
    app = TraceApp(str(DECODE), early=early)
    async with app.run_test(size=(100, 30)) as pilot:
        await loaded(app, pilot)
        assert app.loaded and app.trace.events == load(str(DECODE)).events
    bad = EarlyLoad(str(ROOT / "README.md"), pause_after_first=pause)
    app = TraceApp(str(ROOT / "README.md"), early=bad)
    async with app.run_test(size=(100, 30)) as pilot:
        await loaded(app, pilot)
        assert app.error and "not a JSON trace" in app.error


SHARED = ROOT.parent / "shared" / "traces"


@pytest.mark.skipif(not (SHARED / "deepseek_train.json").exists(), reason="no ../shared/traces")
async def test_deepseek_search_dispatch_lands_on_the_deepep_kernel():
    app = TraceApp(str(SHARED / "deepseek_train.json"))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(app, pilot)
        await pilot.press("w")
        await search(pilot, "dispatch")
        tl = app.query_one(Timeline)
        name = app.trace.name_of(tl.selected)
        assert "dpsk::ep::internode::dispatch<" in name, name
        assert "communication" in app.describe(tl.selected).plain


async def test_detail_pane_draws_the_selection_and_scrolls():
    """The pane wraps the account to its width, repaints without relaying out the screen
    (the timeline keeps its size), and scrolls from the keyboard when it is focused."""
    from tracetui.app.detail import DetailPane

    app = TraceApp(str(DECODE))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(app, pilot)
        tl = app.query_one(Timeline)
        pane = app.query_one(DetailPane)
        assert pane.has_class("hidden")
        await pilot.press("full_stop")
        await pilot.pause()
        assert not pane.has_class("hidden") and pane.has_class("bottom")
        name = app.trace.name_of(tl.selected)
        lines = [pane.render_line(y).text for y in range(pane.size.height)]
        assert all(len(ln) == pane.content_size.width for ln in lines)
        flat = "".join(lines).replace(" ", "")
        # under the timeline the pane leads with duration, start and lane, then the name
        from tracetui.analysis.kernels import short_name
        from tracetui.textutil import fmt_time

        row = tl.selected
        assert lines[0].startswith(f"{fmt_time(int(app.trace.dur[row]))} at +")
        assert name.replace(" ", "")[:20] in flat
        size = tl.size
        await pilot.press("full_stop")
        await pilot.pause()
        assert tl.size == size and short_name(app.trace.name_of(tl.selected))[:10] in \
            "".join(pane.render_line(y).text for y in range(5))
        first = pane.render_line(0).text
        pane.focus()
        await pilot.press("down", "down")
        assert pane.offset_y == 2 and pane.render_line(0).text != first
        await pilot.press("up", "up", "up")
        assert pane.offset_y == 0 and pane.render_line(0).text == first


async def test_terminal_too_small_shows_a_notice_until_it_grows():
    from tracetui.app.app import MIN_SIZE, TooSmallScreen

    app = TraceApp(str(DECODE))
    async with app.run_test(size=(40, 12)) as pilot:
        await loaded(app, pilot)
        assert isinstance(app.screen, TooSmallScreen)
        text = str(app.screen.query_one("#too-small").render())
        assert "terminal too small: 40x12" in text and f"{MIN_SIZE[0]}x{MIN_SIZE[1]}" in text
        await pilot.resize_terminal(50, 14)
        await pilot.pause()
        assert "50x14" in str(app.screen.query_one("#too-small").render())
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        assert not isinstance(app.screen, TooSmallScreen) and len(app.screen_stack) == 1
        await pilot.press("k")  # a view, then too small over it, then back to the view
        await pilot.pause()
        view = app.screen
        await pilot.resize_terminal(30, 10)
        await pilot.pause()
        assert isinstance(app.screen, TooSmallScreen)
        await pilot.resize_terminal(100, 30)
        await pilot.pause()
        assert app.screen is view
        await pilot.resize_terminal(30, 10)
        await pilot.pause()
        await pilot.press("q")
    assert app.return_code in (0, None)


@pytest.mark.parametrize("size", [(80, 24), (140, 40)])
async def test_a_small_detail_pane_leads_with_time_lane_and_launch(size):
    """Under the timeline (narrow terminals) the pane's first lines are the duration,
    start, lane and launch chain, then the short name; beside it (wide) the name leads."""
    from tracetui.app.detail import DetailPane
    from tracetui.textutil import fmt_time

    app = TraceApp(str(DECODE))
    async with app.run_test(size=size) as pilot:
        await loaded(app, pilot)
        tr = app.trace
        # a kernel with a launch chain: the first GPU slice that has one
        row = next(r for r in range(tr.slice_count)
                   if tr.lanes[tr.lane_index(np.array([r]))[0]].kind == "gpu"
                   and tr.detail(r).get("launched_by"))
        app.timeline.selected = row
        app.show_selection(row)
        await pilot.pause()
        lines = app.query_one("#detail", DetailPane).text.plain.splitlines()
        d = tr.detail(row)
        if size[0] < 110:
            assert lines[0].startswith(f"{fmt_time(d['dur_ns'])} at +{fmt_time(d['start_ns'])}")
            assert d["lane"] in lines[0]
            assert lines[1].startswith("← ") and "cudaLaunchKernel" in lines[1]
            from tracetui.analysis.kernels import short_name
            assert short_name(d["name"])[:10] in "\n".join(lines[2:4])
        else:
            assert lines[0] == d["name"]
        await pilot.resize_terminal(*((140, 40) if size[0] < 110 else (80, 24)))
        await pilot.pause()
        lines = app.query_one("#detail", DetailPane).text.plain.splitlines()
        assert (lines[0] == d["name"]) == (size[0] < 110)  # the pane moved: the text too
