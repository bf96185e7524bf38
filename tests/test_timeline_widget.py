"""The timeline widget alone: lane rows drawn by ``render_line`` from small hand-made traces,
in a bare App that holds only the widget (no TraceApp, no views, no workers).

Each trace is written as the profiler writes one (JSON, µs); what a row must show is
worked out here from the events themselves, never from the code under test.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from textual.app import App, ComposeResult

from tracetui.analysis.rules import DEFAULT_RULES, classify
from tracetui.app.timeline import BOUNDARY, CLASS_GLYPH, HIT_GLYPH, Palette, Timeline
from tracetui.trace import load
from tracetui.trace.frame import MAX_LANE_ROWS

P = Palette()
WIDTH, HEIGHT = 100, 24


class One(App[None]):
    """A screen with one timeline and nothing else."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def compose(self) -> ComposeResult:
        yield Timeline(P, id="tl")

    def on_mount(self) -> None:
        tr = load(str(self.path))
        self.query_one(Timeline).set_trace(tr, classify(tr, DEFAULT_RULES), keep_view=False)


def write(tmp_path: Path, events: list[dict], name: str = "t.json") -> Path:
    meta = [{"ph": "M", "name": "process_name", "pid": 1, "args": {"name": "python3"}},
            {"ph": "M", "name": "thread_name", "pid": 1, "tid": 1, "args": {"name": "main"}}]
    path = tmp_path / name
    path.write_text(json.dumps({"traceEvents": meta + events}))
    return path


def x(name: str, ts: float, dur: float, cat: str = "cpu_op", tid: int = 1, pid: int = 1,
      **args) -> dict:
    return {"ph": "X", "name": name, "cat": cat, "pid": pid, "tid": tid, "ts": ts, "dur": dur,
            "args": args}


def cells(strip) -> list[tuple[str, object]]:
    """(character, style) for every cell of a drawn row."""
    return [(ch, seg.style) for seg in strip for ch in seg.text]


def plot(tl: Timeline, strip) -> list[tuple[str, object]]:
    return cells(strip)[tl.label_width:]


def color(style) -> str | None:
    return style.color.name if style is not None and style.color is not None else None


def bgcolor(style) -> str | None:
    return style.bgcolor.name if style is not None and style.bgcolor is not None else None


def line_of(tl: Timeline, lane_row: int):
    """The strip of rows[lane_row] (scrolled so that it is on screen)."""
    top = int(tl.scroll_offset.y)
    return tl.render_line(lane_row - top + 1)


# ---------------------------------------------------------------- adjacent slices
async def test_back_to_back_slices_read_as_two(tmp_path):
    """Two ops of one class, the second starting where the first ends: two names, a thin
    gap at the first one's last cell, and two shades of the CPU colour."""
    path = write(tmp_path, [x("aten::first_op", 0, 500), x("aten::second_op", 500, 500)])
    async with One(path).run_test(size=(WIDTH, HEIGHT)) as pilot:
        await pilot.pause()
        tl = pilot.app.query_one(Timeline)
        row = plot(tl, line_of(tl, 0))
        text = "".join(c for c, _ in row)
        assert "aten::first_op" in text and "aten::second_op" in text
        half = text.index("aten::second_op")
        assert text[half - 1] == BOUNDARY  # the first slice's last cell, split off
        first = {color(s) or bgcolor(s) for c, s in row[:half] if c == "█"}
        second = {color(s) or bgcolor(s) for c, s in row[half:] if c == "█"}
        assert first and second and first.isdisjoint(second)  # two shades
        assert P.cpu in first | second


# ---------------------------------------------------------------- search hit
async def test_a_search_hit_keeps_its_class_colour_under_the_mark(tmp_path):
    kernels = [x("ncclDevKernel_AllReduce_Sum_f32", 0, 400, cat="kernel", pid=0, tid=7),
               x("sm90_xmma_gemm_bf16", 400, 600, cat="kernel", pid=0, tid=7)]
    path = write(tmp_path, kernels)
    async with One(path).run_test(size=(WIDTH, HEIGHT)) as pilot:
        await pilot.pause()
        tl = pilot.app.query_one(Timeline)
        tr = tl.trace
        gemm = next(i for i in range(tr.slice_count) if "gemm" in tr.name_of(i))
        tl.matches = [gemm]
        tl.refresh()
        row = plot(tl, line_of(tl, 0))
        text = "".join(c for c, _ in row)
        at = text.index("sm90")
        hit = [(c, s) for c, s in row[at:] if c == HIT_GLYPH]
        assert len(hit) > 10
        # the mark on top, the kernel's class colour (compute) kept below it
        assert {bgcolor(s) for _, s in hit} == {P.comp} or {bgcolor(s) for _, s in hit} == {
            tl.shade(P.comp)}
        assert {color(s) for _, s in hit} == {P.match}
        assert all(s.underline for c, s in row[at: at + 4])  # the name underlined
        # the other kernel is not a hit: plain blocks in the communication colour
        assert not any(c == HIT_GLYPH for c, _ in row[:at])
        assert P.comm in {color(s) or bgcolor(s) for _, s in row[:at]}
        tl.matches = []  # cleared: no mark left
        tl.refresh()
        assert HIT_GLYPH not in line_of(tl, 0).text


# ---------------------------------------------------------------- selection
async def test_the_selection_is_a_bright_box_not_a_hole(tmp_path):
    path = write(tmp_path, [x("aten::mm", 0, 300), x("aten::add", 600, 300)])
    async with One(path).run_test(size=(WIDTH, HEIGHT)) as pilot:
        await pilot.pause()
        tl = pilot.app.query_one(Timeline)
        tr = tl.trace
        mm = next(i for i in range(tr.slice_count) if tr.name_of(i) == "aten::mm")
        tl.select(mm)
        row = plot(tl, line_of(tl, 0))
        text = "".join(c for c, _ in row)
        box = [(c, s) for c, s in row[:text.index("aten::add")] if bgcolor(s) == P.selected_bg]
        assert "".join(c for c, _ in box).startswith("aten::mm")
        assert all(color(s) == P.selected_fg for _, s in box)  # dark text on a light box
        assert len(box) >= 25  # every full cell of the 300 µs of 900 (width 76)
        assert not any(c == "█" for c, _ in box)  # no block drawn black: not a hole


# ---------------------------------------------------------------- deep lanes
def deep_stack(tmp_path: Path, frames: int = 40) -> Path:
    """``frames`` Python frames nested, an annotation, an op, its child op and a kernel
    launch inside the innermost, one more frame between the two ops; kernels on a stream."""
    ev = []
    t, end = 0.0, 10_000.0
    for k in range(frames):
        ev.append(x(f"app.py({k}): layer_{k}", t, end - 2 * t, cat="python_function"))
        t += 1
    ev += [x("step#1", t, 9_000, cat="user_annotation"),
           x("aten::linear", t + 10, 8_000),
           x("torch/nn/functional.py(12): linear", t + 20, 7_000, cat="python_function"),
           x("aten::addmm", t + 30, 6_000),
           x("cudaLaunchKernel", t + 40, 20, cat="cuda_runtime", correlation=1),
           x("sm90_gemm", t + 100, 5_000, cat="kernel", pid=0, tid=7, correlation=1)]
    return write(tmp_path, ev, "deep.json")


async def test_a_deep_lane_shows_ops_on_top_folded_and_every_depth_unfolded(tmp_path):
    frames = 40
    path = deep_stack(tmp_path, frames)
    async with One(path).run_test(size=(WIDTH, HEIGHT)) as pilot:
        await pilot.pause()
        tl = pilot.app.query_one(Timeline)
        tr = tl.trace
        cpu = next(ln for ln in tr.lanes if ln.kind == "cpu")
        rows = [r for r in tl.rows if r.lane == cpu.index]
        # folded: step#1 > aten::linear > aten::addmm > cudaLaunchKernel, one row each
        assert len(rows) == 4 and all(r.folded for r in rows)
        tl.set_window(0, 10_000_000)
        await pilot.pause()
        lines = [line_of(tl, tl.rows.index(r)).text for r in rows]
        for depth, name in enumerate(["step#1", "aten::linear", "aten::addmm"]):
            assert name in lines[depth], (depth, lines)
        # zoomed on the launch (20 µs): named on its row
        tl.set_window(int((frames + 40) * 1000) - 2000, int((frames + 60) * 1000) + 2000)
        await pilot.pause()
        assert "cudaLaunchKernel" in line_of(tl, tl.rows.index(rows[3])).text
        # shown: every depth (41 frames + 4 ops = 45 rows), reachable by scrolling
        tl.toggle_python()
        await pilot.pause()
        rows = [r for r in tl.rows if r.lane == cpu.index]
        assert len(rows) == frames + 5 and not any(r.folded for r in rows)
        assert not any("deeper" in line_of(tl, i).text for i in range(min(len(tl.rows), 20)))
        last = tl.rows.index(rows[-1])
        tl.move_cursor(last - tl.cursor)
        await pilot.pause()
        assert tl.scroll_offset.y > 0  # scrolled down to reach it
        assert "cudaLaunchKernel" in line_of(tl, last).text


async def test_selecting_a_folded_frame_opens_its_lane(tmp_path):
    path = deep_stack(tmp_path, 12)
    async with One(path).run_test(size=(WIDTH, HEIGHT)) as pilot:
        await pilot.pause()
        tl = pilot.app.query_one(Timeline)
        tr = tl.trace
        frame = next(i for i in range(tr.slice_count) if "layer_5" in tr.name_of(i))
        tl.select(frame)
        await pilot.pause()
        # the frame's lane shows its Python frames now, and the cursor is on its row
        assert tl.rows[tl.cursor].depth == int(tr.depth[frame])
        assert not tl.rows[tl.cursor].folded
        assert "layer_5" in line_of(tl, tl.cursor).text


async def test_a_collapsed_lane_says_how_many_rows_it_hides(tmp_path):
    path = deep_stack(tmp_path, 12)
    async with One(path).run_test(size=(WIDTH, HEIGHT)) as pilot:
        await pilot.pause()
        tl = pilot.app.query_one(Timeline)
        cpu = next(ln for ln in tl.trace.lanes if ln.kind == "cpu")
        tl.cursor_to_lane(cpu.index)
        tl.toggle_collapse()
        await pilot.pause()
        text = line_of(tl, tl.cursor).text[: tl.label_width]
        assert text.startswith("▸ ") and "+3" in text  # 4 folded depths, 3 hidden


def test_hostile_nesting_stops_at_the_row_cap(tmp_path):
    depth = MAX_LANE_ROWS + 50
    path = write(tmp_path, [x(f"op{k}", k, 2 * depth - 2 * k) for k in range(depth)])
    from tracetui.trace.frame import default_rows

    tr = load(str(path))
    rows = default_rows(tr)
    assert len([r for r in rows if r.lane == 0]) == MAX_LANE_ROWS


# ---------------------------------------------------------------- NO_COLOR
async def test_without_colour_classes_are_glyphs_and_the_selection_is_reversed(
        tmp_path, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    # short names: a named slice shows its name, its other cells its class
    kernels = [x("ncclKernel", 0, 400, cat="kernel", pid=0, tid=7),
               x("sm90_gemm", 400, 300, cat="kernel", pid=0, tid=7),
               x("Memcpy HtoD", 700, 300, cat="gpu_memcpy", pid=0, tid=7)]
    path = write(tmp_path, kernels)
    async with One(path).run_test(size=(WIDTH, HEIGHT)) as pilot:
        await pilot.pause()
        tl = pilot.app.query_one(Timeline)
        assert tl.mono
        row = plot(tl, line_of(tl, 0))
        glyphs = {c for c, _ in row}
        from tracetui.analysis.rules import COMM, COMP, MEM

        for cls in (COMM, COMP, MEM):  # each class in its own glyph
            assert CLASS_GLYPH[cls] in glyphs, cls
        tr = tl.trace
        gemm = next(i for i in range(tr.slice_count) if "gemm" in tr.name_of(i))
        tl.select(gemm)
        row = plot(tl, line_of(tl, 0))
        boxed = [c for c, s in row if s is not None and s.reverse]
        assert "sm90_gemm" in "".join(boxed)
        tl.matches = [gemm]
        tl.selected = -1
        tl.refresh()
        row = plot(tl, line_of(tl, 0))
        assert any(c == HIT_GLYPH for c, _ in row)  # the mark needs no colour either
        text = "".join(c for c, _ in row)
        at = text.index("sm90")
        assert all(s.underline for _, s in row[at: at + 4])


@pytest.mark.parametrize("cols", [80, 120])
async def test_rows_are_the_widget_width(tmp_path, cols):
    path = deep_stack(tmp_path, 30)
    async with One(path).run_test(size=(cols, HEIGHT)) as pilot:
        await pilot.pause()
        tl = pilot.app.query_one(Timeline)
        for y in range(HEIGHT):
            assert tl.render_line(y).cell_length == tl.size.width
