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
from tracetui.app.themes import Palette
from tracetui.app.timeline import BOUNDARY, CLASS_GLYPH, HIT_GLYPH, Timeline
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


# ---------------------------------------------------------------- found walking the app
async def test_wide_characters_never_shift_the_time_axis(tmp_path):
    """A name or a thread name of wide characters (CJK, emoji) takes two cells a character:
    the slices after it still start at their time."""
    ev = [x("wide 漢字漢字漢字漢字漢字漢字", 0, 300), x("emoji 🔥🔥🔥🔥🔥🔥", 300, 500),
          x("after", 800, 200),
          {"ph": "M", "name": "thread_name", "pid": 1, "tid": 1,
           "args": {"name": "漢字スレッド漢字スレッド漢字"}}]
    path = tmp_path / "wide.json"
    path.write_text(json.dumps({"traceEvents": ev}))
    async with One(path).run_test(size=(WIDTH, HEIGHT)) as pilot:
        await pilot.pause()
        tl = pilot.app.query_one(Timeline)
        from rich.cells import cell_len

        strip = line_of(tl, 0)
        assert strip.cell_length == WIDTH
        text = strip.text
        at = cell_len(text[: text.index("after")]) - tl.label_width
        want = 800_000 * tl.plot_width / (tl.t1 - tl.t0)  # 800 µs into a 1 ms view
        assert abs(at - want) <= 1, (at, want)
        assert cell_len(text[: text.index("wide")]) == tl.label_width  # the label column


async def test_a_jump_brings_the_whole_slice_on_screen(tmp_path):
    path = write(tmp_path, [x("aten::first", 0, 100), x("aten::late", 9_000, 900),
                            x("aten::end", 9_950, 50)])
    async with One(path).run_test(size=(WIDTH, HEIGHT)) as pilot:
        await pilot.pause()
        tl = pilot.app.query_one(Timeline)
        tr = tl.trace
        late = next(i for i in range(tr.slice_count) if tr.name_of(i) == "aten::late")
        tl.set_window(0, 9_100_000)  # its first 100 µs only on screen
        tl.select(late, reveal=True)
        s, e = int(tr.start[late]), int(tr.start[late] + tr.dur[late])
        assert tl.t0 <= s and e <= tl.t1 and tl.t1 - tl.t0 == 9_100_000  # panned, not zoomed


async def test_a_jump_to_a_50_ns_slice_zooms_until_it_is_a_box(tmp_path):
    path = write(tmp_path, [x("aten::outer", 0, 1000), x("aten::tiny", 500, 0.05)])
    async with One(path).run_test(size=(WIDTH, HEIGHT)) as pilot:
        await pilot.pause()
        tl = pilot.app.query_one(Timeline)
        tr = tl.trace
        tiny = next(i for i in range(tr.slice_count) if tr.name_of(i) == "aten::tiny")
        assert int(tr.dur[tiny]) == 50
        tl.select(tiny, reveal=True)
        await pilot.pause()
        cells = 50 * tl.plot_width / (tl.t1 - tl.t0)
        assert cells >= 6, (tl.t0, tl.t1)
        row = plot(tl, line_of(tl, tl.cursor))
        assert sum(1 for _, s in row if bgcolor(s) == P.selected_bg) >= 6


async def test_a_zero_length_slice_is_drawn_and_can_be_selected(tmp_path):
    path = write(tmp_path, [x("aten::a", 0, 400), x("aten::zero", 600, 0), x("aten::b", 700, 300)])
    async with One(path).run_test(size=(WIDTH, HEIGHT)) as pilot:
        await pilot.pause()
        tl = pilot.app.query_one(Timeline)
        text = plot_text = "".join(c for c, _ in plot(tl, line_of(tl, 0)))
        col = int(600_000 * tl.plot_width / (tl.t1 - tl.t0))
        assert "▏" in plot_text[col - 1: col + 2], text
        tl.selected = -1
        tl.step_slice(1)
        tl.step_slice(1)  # a, then the zero-length one
        assert tl.trace.name_of(tl.selected) == "aten::zero"


async def test_a_collapsed_cpu_lane_keeps_its_pid_and_tid(tmp_path):
    ev = [x(f"op{k}", k, 100 - 2 * k, tid=2571, pid=1166) for k in range(8)]
    ev += [{"ph": "M", "name": "process_name", "pid": 1166, "args": {"name": "python3"}},
           {"ph": "M", "name": "thread_name", "pid": 1166, "tid": 2571,
            "args": {"name": "thread 2571 (python3)"}}]  # as Kineto names threads
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"traceEvents": ev}))
    async with One(path).run_test(size=(80, HEIGHT)) as pilot:
        await pilot.pause()
        tl = pilot.app.query_one(Timeline)
        tl.cursor_to_lane(0)
        tl.toggle_collapse()
        await pilot.pause()
        label = line_of(tl, 0).text[: tl.label_width]
        assert label.startswith("▸ ") and "+7" in label
        assert "1166" in label and "2571" in label, label


@pytest.mark.parametrize("t0,span", [(5_000_000, 1), (120_000_000, 300),
                                     (1_200_000_000, 150), (0, 50_000)])
async def test_ruler_ticks_stay_whole_and_distinct_at_any_zoom(tmp_path, t0, span):
    path = write(tmp_path, [x("aten::a", 0, 1_300_000)])
    async with One(path).run_test(size=(80, HEIGHT)) as pilot:
        await pilot.pause()
        tl = pilot.app.query_one(Timeline)
        tl.set_window(t0, t0 + span)
        await pilot.pause()
        assert tl.t1 - tl.t0 >= 100  # the closest zoom
        ruler = tl.render_line(0).text[tl.label_width:]
        ticks = [t.strip() for t in ruler.split("│")[1:]]
        assert len(ticks) >= 2 and len(set(ticks)) == len(ticks), ruler
        for t in ticks:  # each with its unit, none cut at the edge or by its neighbour
            assert t.endswith(("ns", "µs", "ms", " s")) or t == "0", ruler


async def test_the_view_stays_on_the_trace(tmp_path):
    """Zooming out or panning stops a twentieth of the view past either end."""
    path = write(tmp_path, [x("aten::a", 0, 500), x("aten::b", 500, 500)])
    async with One(path).run_test(size=(WIDTH, HEIGHT)) as pilot:
        await pilot.pause()
        tl = pilot.app.query_one(Timeline)
        end = tl.trace.end_ns
        tl.zoom(8)
        assert tl.t0 >= -end // 20 and tl.t1 <= end + end // 20
        tl.set_window(100_000, 200_000)
        for _ in range(30):
            tl.pan(-0.8)
        assert tl.t0 == -(tl.t1 - tl.t0) // 20 and tl.t1 - tl.t0 == 100_000
        for _ in range(30):
            tl.pan(0.8)
        assert tl.t1 == end + 100_000 // 20


# ---------------------------------------------------------------- the strip cache
async def test_rows_drawn_from_the_cache_are_those_a_fresh_draw_gives(tmp_path):
    """Rows are kept drawn (an LRU keyed by what they depend on): going back to a state
    gives the kept strips, and each is what drawing that state afresh gives; a state that
    differs in what a row shows (selection, hits, cursor, label width, window) gets new ones."""
    evs = [x(f"op{i}", i * 10, 8) for i in range(50)] + \
          [x(f"inner{i}", i * 10 + 1, 3) for i in range(50)]
    async with One(write(tmp_path, evs)).run_test(size=(WIDTH, HEIGHT)) as pilot:
        await pilot.pause()
        tl = pilot.app.query_one(Timeline)
        tl.set_window(0, 200_000)
        await pilot.pause()
        rows = range(1, min(len(tl.rows), 3) + 1)

        def draw() -> list[list[tuple[str, object]]]:
            return [cells(tl.render_line(y)) for y in rows]

        def fresh() -> list[list[tuple[str, object]]]:
            kept = tl._strips
            tl._strips = type(kept)(kept.maxsize)  # nothing kept: drawn now
            try:
                return draw()
            finally:
                tl._strips = kept

        states = [lambda: tl.select(3), lambda: setattr(tl, "matches", [5, 55]),
                  lambda: tl.move_cursor(1), lambda: tl.widen_labels(8),
                  lambda: tl.set_window(100_000, 300_000)]
        seen = [draw()]
        for change in states:
            change()
            await pilot.pause()
            got = draw()
            assert got == fresh()
            assert got != seen[-1], states.index(change)  # each change shows in some row
            seen.append(got)
        hits = tl._strips.hits
        tl.set_window(0, 200_000)  # back to the first window: the rows come from the cache
        tl.widen_labels(-8)
        tl.move_cursor(-1)
        await pilot.pause()
        back = draw()
        assert back == fresh() and tl._strips.hits > hits
