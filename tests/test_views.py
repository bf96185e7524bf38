"""The drill-down views driven through the app with Textual's Pilot: the kernel table (``k``)
and a kernel's instances, the overlap view (``o``), range marking (``m``), exports (``e``,
ctrl+s), hostile names, the overlap rows (``O``) and a small terminal.

Expectations come from the ``summary --json`` data (:func:`analyze`) or straight from the
trace file's JSON (with a small union-of-intervals helper written here), never from the
views' own code.
"""

from __future__ import annotations

import csv
import functools
import gzip
import json
import re
from pathlib import Path
from typing import Any

import pytest
from rich.color import Color

from conftest import loaded as shared_loaded, until
from reference import ref_union
from tracetui.analysis.report import analyze
from tracetui.app.app import TraceApp
from tracetui.app.grid import Grid
from tracetui.app.timeline import Timeline
from tracetui.app.views import Heatmap, InstancesScreen, KernelScreen, OverlapScreen
from tracetui.trace import load

ROOT = Path(__file__).resolve().parent.parent
DECODE = ROOT / "sample_traces" / "annotated.json"
DEEPSEEK = ROOT.parent / "shared" / "traces" / "deepseek_train.json"

GPU_CATS = {"kernel", "gpu_memcpy", "gpu_memset", "Kernel", "Memcpy", "Memset"}
ESC, BEL = "\x1b", "\x07"


def need_deepseek() -> Path:
    if not DEEPSEEK.exists():
        pytest.skip("no ../shared/traces/deepseek_train.json")
    return DEEPSEEK


# ---------------------------------------------------------------- independent expectations
@functools.cache
def raw_events(path: str) -> tuple[dict[str, Any], ...]:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        data = json.load(f)
    evs = data["traceEvents"] if isinstance(data, dict) else data
    return tuple(e for e in evs if isinstance(e, dict))


@functools.cache
def report(path: str) -> dict[str, Any]:
    return analyze(load(path))


def base_us(path: str) -> float:
    """The trace's time origin (µs): the earliest slice, instant or counter sample."""
    return min(float(e["ts"]) for e in raw_events(path)
               if e.get("ph") in ("X", "B", "i", "I", "C") and isinstance(e.get("ts"), (int, float)))


def gpu_slices(path: str, name: str | None = None) -> list[dict[str, Any]]:
    return [e for e in raw_events(path) if e.get("ph") == "X" and e.get("cat") in GPU_CATS
            and (name is None or e.get("name") == name)]


def total(intervals: list[tuple[float, float]]) -> float:
    return sum(e - s for s, e in ref_union(intervals))


def clip(intervals: list[tuple[float, float]], t0: float, t1: float) -> list[tuple[float, float]]:
    return [(max(s, t0), min(e, t1)) for s, e in intervals if min(e, t1) > max(s, t0)]


def desc_order(values: list[float]) -> list[int]:
    """Indexes by value, largest first; equal values keep their original order."""
    return sorted(range(len(values)), key=lambda i: (-values[i], i))


def asc_order(values: list[Any]) -> list[int]:
    return sorted(range(len(values)), key=lambda i: (values[i], i))


# ---------------------------------------------------------------- driving the app
async def loaded(app: TraceApp, pilot) -> None:
    await shared_loaded(app, pilot, ok=True)


def grid_names(grid: Grid, key: str = "name") -> list[Any]:
    return [grid.model.value(int(i), key) for i in grid.order]


def grid_lines(grid: Grid) -> list[str]:
    return [grid.render_line(y).text for y in range(len(grid.order) + 1)]


def files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


# ---------------------------------------------------------------- 1. kernel table
@pytest.mark.parametrize("word", ["triton", "elementwise", "qkv"])
async def test_every_key_typed_in_a_table_is_filter_text(word, tmp_path, monkeypatch):
    """t, r, e and q were commands (short names, reverse, export, close): typing a name
    that holds them filters on exactly that text, and runs none of them."""
    monkeypatch.chdir(tmp_path)
    app = TraceApp(str(DECODE))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(app, pilot)
        await pilot.press("k")
        await pilot.pause()
        scr = app.screen
        assert isinstance(scr, KernelScreen)
        descending = scr.grid.descending
        await pilot.press(*word)
        await pilot.pause()
        assert app.screen is scr and scr.grid.filter_text == word
        assert not scr.short and scr.grid.descending == descending
        names = [k["name"].lower() for k in scr.kernels]
        assert len(scr.grid.order) == sum(word in n for n in names)
        assert files(tmp_path) == []  # "e" wrote nothing
        await pilot.press("enter", "ctrl+r")  # the filter done, ctrl does the commands
        assert scr.grid.descending != descending and scr.grid.filter_text == word
        await pilot.press("escape")  # clears the filter
        assert scr.grid.filter_text == "" and app.screen is scr
        await pilot.press("escape")  # then closes
        await pilot.pause()
        assert app.screen is not scr


@pytest.mark.parametrize("key", ["k", "u"])
async def test_a_table_gives_its_first_focus_to_the_rows(key, monkeypatch):
    """The hidden filter box never takes the focus when a table opens, nor a hidden prompt
    the timeline's: for a moment it had it (Textual's first focus), and a key arriving then
    lost its binding (q on the rank view did nothing on a busy machine: the box "would have
    typed it")."""
    from textual.screen import Screen
    from textual.widgets import Input

    got: list[Any] = []
    real = Screen.set_focus

    def record(self, widget, *a, **kw):
        got.append((self, widget))
        return real(self, widget, *a, **kw)

    monkeypatch.setattr(Screen, "set_focus", record)
    app = TraceApp(str(DECODE))
    async with app.run_test(size=(120, 40)) as pilot:
        await shared_loaded(app, pilot, analyses=True)
        await until(pilot, lambda: app.panes_shown_ready)
        await pilot.press(key)
        await until(pilot, lambda: getattr(app.screen, "grid", None) is not None
                    and app.screen.grid.has_focus)
        mine = [w for scr, w in got if scr is app.screen]  # (built ahead, off screen)
        assert mine and not any(isinstance(w, Input) for w in mine), mine
        main = [w for scr, w in got if scr is app.screen_stack[0]]  # nor the timeline's
        assert main and not any(isinstance(w, Input) for w in main), main  # prompts
        await pilot.press("x")  # a letter: the filter, now focused on purpose
        assert isinstance(app.focused, Input) and app.screen.grid.filter_text == "x"


async def test_a_sort_puts_the_cursor_on_the_first_row():
    app = TraceApp(str(DECODE))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(app, pilot)
        await pilot.press("k", "down", "down", "down")
        grid = app.screen.grid
        assert grid.cursor == 3
        for key in ("greater_than_sign", "ctrl+r", "less_than_sign"):
            await pilot.press("down", "down", key)
            assert grid.cursor == 0 and grid.current == int(grid.order[0]), key


@pytest.mark.parametrize("mono", [False, True])
async def test_the_cursor_row_reads_without_colour(mono, monkeypatch):
    """The focused cursor row is a background colour; under NO_COLOR (backgrounds dropped)
    it is drawn reversed."""
    from textual.app import App

    from tracetui.app.grid import Column, GridModel

    if mono:
        monkeypatch.setenv("NO_COLOR", "1")
    model = GridModel([Column("name", "name", 0, numeric=False)],
                      [{"name": f"k{i}"} for i in range(5)])

    class One(App[None]):
        def compose(self):
            yield Grid(model, "name")

    app = One()
    async with app.run_test(size=(40, 10)) as pilot:
        grid = app.query_one(Grid)
        grid.focus()
        await pilot.pause()
        assert grid.has_focus and app.no_color == mono
        cursor = [seg.style for seg in grid.render_line(1)]  # row 0: the cursor's
        other = [seg.style for seg in grid.render_line(2)]
        assert all(bool(st.reverse) == mono for st in cursor)
        assert all(st.bgcolor is not None for st in cursor) != mono
        assert not any(st.reverse or st.bgcolor for st in other)


async def test_kernel_table_sort_filter_instances_and_back():
    path = str(DECODE)
    kernels = report(path)["kernels"]
    raw = gpu_slices(path)
    raw_names = sorted({e["name"] for e in raw})
    raw_totals = {n: sum(float(e["dur"]) for e in raw if e["name"] == n) for n in raw_names}
    app = TraceApp(path)
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(app, pilot)
        await pilot.press("k")
        scr = app.screen
        assert isinstance(scr, KernelScreen)
        grid = scr.grid
        assert grid is not None and grid.has_focus

        # every GPU kernel/memcpy/memset name once, by total time, largest first
        names = grid_names(grid)
        assert sorted(names) == raw_names
        assert names == [kernels[i]["name"] for i in desc_order([k["total_us"] for k in kernels])]
        shown = [raw_totals[n] for n in names]
        assert shown == sorted(shown, reverse=True)
        first = grid.render_line(1).text
        assert f"{raw_totals[names[0]] / 1000:,.3f}" in first  # total ms of the top kernel
        assert "total ms▼" in grid.render_line(0).text
        kernel_screen = scr

        by = {k["name"]: k for k in kernels}
        # > twice: total -> % -> avg, descending
        await pilot.press("greater_than_sign", "greater_than_sign")
        assert grid.sort_key == "avg_us" and grid.descending
        avg = [k["avg_us"] for k in kernels]
        assert grid_names(grid) == [kernels[i]["name"] for i in desc_order(avg)]
        assert grid_names(grid) != names
        # < three times: avg -> % -> total -> count
        await pilot.press("less_than_sign", "less_than_sign", "less_than_sign")
        assert grid.sort_key == "count"
        counts = [k["count"] for k in kernels]
        assert grid_names(grid) == [kernels[i]["name"] for i in desc_order(counts)]
        await pilot.press("ctrl+r")
        assert not grid.descending
        assert grid_names(grid) == [kernels[i]["name"] for i in asc_order(counts)]
        assert [by[n]["count"] for n in grid_names(grid)] == sorted(counts)
        await pilot.press("ctrl+r", "greater_than_sign")  # back to total, descending
        assert grid.sort_key == "total_us" and grid_names(grid) == names

        # typing starts the filter: exactly the names with "gemm" in them
        await pilot.press("g", "e", "m", "m")
        await pilot.pause()
        gemm = [n for n in raw_names if "gemm" in n.lower()]
        assert len(gemm) >= 3
        assert grid.filter_text == "gemm"
        assert sorted(grid_names(grid)) == gemm and len(grid.order) == len(gemm)
        assert isinstance(app.screen, KernelScreen)  # "e" was typed, not an export
        await pilot.press("enter")  # ends the filter
        await pilot.pause()
        assert grid.has_focus and grid.filter_text == "gemm"
        top = grid_names(grid)[0]
        assert top == max(gemm, key=lambda n: raw_totals[n])

        # Enter: the kernel's instances, in time order
        await pilot.press("enter")
        await pilot.pause()
        ins = app.screen
        assert isinstance(ins, InstancesScreen)
        tr = app.trace
        want = sorted(gpu_slices(path, top), key=lambda e: float(e["ts"]))
        rows = [int(r) for r in ins.rows]
        assert len(rows) == len(want) == len(ins.grid.order)
        assert all(tr.name_of(r) == top for r in rows)
        assert [tr.raw_event(r)["ts"] for r in rows] == [e["ts"] for e in want]
        starts = [int(tr.start[r]) for r in rows]
        assert starts == sorted(starts)
        b = base_us(path)
        for r, e in zip(rows, want):
            assert abs(int(tr.start[r]) - (float(e["ts"]) - b) * 1000) <= 2
            assert abs(int(tr.dur[r]) - float(e["dur"]) * 1000) <= 2

        # Enter on the third instance: the timeline, that slice selected and in view
        await pilot.press("down", "down", "enter")
        await pilot.pause()
        assert len(app.screen_stack) == 1
        tl = app.query_one(Timeline)
        assert tl.selected == rows[2]
        s, e = int(tr.start[rows[2]]), int(tr.start[rows[2]] + tr.dur[rows[2]])
        assert tl.t0 <= s and e <= tl.t1
        await pilot.press("n")
        assert tl.selected == rows[3]
        assert int(tr.start[rows[3]]) >= s

        # k again: the same view, as it was left (its filter kept); Esc clears the filter
        await pilot.press("k")
        await pilot.pause()
        assert app.screen is kernel_screen and grid.filter_text == "gemm"
        assert len(grid.order) == len(gemm)
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is kernel_screen and grid.filter_text == ""
        # t: by short name; the filter stays; Esc clears it first, then closes
        scr = app.screen
        assert isinstance(scr, KernelScreen)
        await pilot.press("ctrl+t")
        assert scr.short
        assert len(scr.grid.order) == len(report(path)["kernel_groups"])
        totals = grid_names(scr.grid, "total_us")
        assert totals == sorted(totals, reverse=True)
        await pilot.press("ctrl+t")
        assert not scr.short and len(scr.grid.order) == len(kernels)
        await pilot.press("g", "e", "m", "m", "enter")
        await pilot.pause()
        assert len(scr.grid.order) == len(gemm)
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is scr and scr.grid.filter_text == ""
        assert len(scr.grid.order) == len(kernels)
        await pilot.press("escape")
        await pilot.pause()
        assert len(app.screen_stack) == 1
        assert app.is_running


async def test_escape_while_typing_the_filter_clears_it_then_closes():
    app = TraceApp(str(DECODE))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(app, pilot)
        await pilot.press("k", "g", "e", "m", "m")
        await pilot.pause()
        scr = app.screen
        assert isinstance(scr, KernelScreen) and scr.grid.filter_text == "gemm"
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is scr and scr.grid.filter_text == ""
        assert len(scr.grid.order) == len(report(str(DECODE))["kernels"])
        await pilot.press("escape")
        await pilot.pause()
        assert len(app.screen_stack) == 1


# ---------------------------------------------------------------- 2. overlap view
def parse_annotation_row(text: str) -> tuple[str, str, dict[str, str]]:
    if text.startswith("(no phase)"):  # no side; no count or CPU time: "—"
        count, tms, gpu, comm, exposed, ov = text[len("(no phase)"):].split()
        return "(no phase)", "none", {"count": count, "time": tms, "gpu": gpu, "comm": comm,
                                      "exposed": exposed, "overlap": ov}
    name, source, count, tms, gpu, comm, exposed, ov = text.rstrip().rsplit(None, 7)
    return name.strip(), source, {"count": count, "time": tms, "gpu": gpu, "comm": comm,
                                  "exposed": exposed, "overlap": ov}


def ms(cell: str) -> float:
    return float(cell.replace(",", ""))


async def test_overlap_view_on_deepseek():
    path = str(need_deepseek())
    rep = report(path)
    evs = raw_events(path)
    b = base_us(path)
    app = TraceApp(path)
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(app, pilot)
        tr = app.trace
        tl = app.query_one(Timeline)
        # the first screen fits the slices (the trace's instants run 2.6 ms past them)
        xs = [e for e in evs if e.get("ph") == "X"]
        first = min(e["ts"] for e in xs) - b
        last = max(e["ts"] + e.get("dur", 0) for e in xs) - b
        assert (tl.t0, tl.t1) == (round(first * 1000), round(last * 1000))
        assert tl.t1 < tr.end_ns
        await pilot.press("o")
        await pilot.pause()
        scr = app.screen
        assert isinstance(scr, OverlapScreen)
        hm = scr.query_one(Heatmap)
        grid = scr.query_one("#ov-table", Grid)

        # the annotation table: each row's figures are the summary's for that name and source
        by = {(a["name"], a["source"]): a for a in rep["annotations"]}
        lines = grid_lines(grid)[1:]
        assert len(lines) == len(by)
        seen = {}
        for text in lines:
            name, source, cells = parse_annotation_row(text)
            a = by[(name, source)]
            seen[name] = cells
            assert ms(cells["comm"]) == pytest.approx(a["comm_us"] / 1000, abs=6e-4)
            assert ms(cells["exposed"]) == pytest.approx(a["exposed_comm_us"] / 1000, abs=6e-4)
            assert ms(cells["gpu"]) == pytest.approx(a["gpu_us"] / 1000, abs=6e-4)
            if source == "none":
                assert a["count"] is None and cells["count"] == cells["time"] == "—"
                continue
            assert int(cells["count"].replace(",", "")) == a["count"]
            assert ms(cells["time"]) == pytest.approx(a["total_us"] / 1000, abs=6e-4)
            if a["overlap_pct"] is None:
                assert cells["overlap"] == "—"
            else:
                assert float(cells["overlap"].rstrip("%")) == pytest.approx(a["overlap_pct"],
                                                                            abs=0.051)
        for phase in ("dispatch(F)", "combine(B)", "attn(F)", "attn(B)", "mlp(B)", "mlp(F)",
                      "dispatch(B)", "combine(F)"):
            assert phase in seen
        # the annotation counts are the file's
        for phase in ("attn(B)", "dispatch(F)"):
            n = sum(1 for e in evs if e.get("name") == phase and e.get("cat") == "user_annotation")
            assert int(seen[phase]["count"]) == n

        # heatmap over every slice: the bins add up to the device's totals
        values, edges = hm.bins()
        assert int(edges[0]) <= round(first * 1000) and int(edges[-1]) >= round(last * 1000)
        (dev,) = rep["overlap"]
        sums = values[dev["device"]].sum(axis=1).tolist()
        assert sums == [round(dev["comp_us"] * 1000), round(dev["comm_us"] * 1000),
                        round(dev["overlap_us"] * 1000), round(dev["exposed_comm_us"] * 1000)]
        # ... and the file's: DeepEP transport kernels are communication, other kernels compute
        kern = [e for e in evs if e.get("ph") == "X" and e.get("cat") == "kernel"]
        is_comm = [re.search(r"dpsk::ep::internode::", e["name"]) is not None
                   and "get_dispatch_layout" not in e["name"] for e in kern]
        comm = [(e["ts"], e["ts"] + e["dur"]) for e, c in zip(kern, is_comm) if c]
        comp = [(e["ts"], e["ts"] + e["dur"]) for e, c in zip(kern, is_comm) if not c]
        both = total(comm) + total(comp) - total(comm + comp)
        assert sums == [total(comp) * 1000, total(comm) * 1000, both * 1000,
                        (total(comm) - both) * 1000]
        assert sums[1] == 113_030_000  # the figure in ../shared/traces/README.md
        assert len(hm.render_line(1).text) == hm.size.width

        # Tab to the table, down to attn(B), Enter: the first attn(B) on the timeline
        await pilot.press("tab")
        assert grid.has_focus
        pos = next(i for i, t in enumerate(lines) if parse_annotation_row(t)[0] == "attn(B)")
        await pilot.press(*["down"] * pos)
        assert grid.model.value(grid.current, "name") == "attn(B)"
        await pilot.press("enter")
        await pilot.pause()
        assert len(app.screen_stack) == 1
        occ = sorted((e for e in evs if e.get("name") == "attn(B)"
                      and e.get("cat") == "user_annotation"), key=lambda e: e["ts"])
        first = occ[0]
        s = round((first["ts"] - b) * 1000)
        e_ = s + round(first["dur"] * 1000)
        sel = tl.selected
        assert tr.name_of(sel) == "attn(B)"
        assert (int(tr.start[sel]), int(tr.start[sel] + tr.dur[sel])) == (s, e_)
        assert app.range == (s, e_)
        assert tl.t0 <= s and e_ <= tl.t1
        await pilot.press("n")  # n steps through its occurrences
        assert round((tr.raw_event(tl.selected)["ts"] - b) * 1000) == \
            round((occ[1]["ts"] - b) * 1000)

        # the range's statistics: busy time per lane is the union of its slices in the range
        await until(pilot, lambda: app.range_stats is not None)
        st = app.range_stats
        assert (st["t0"], st["t1"]) == (s, e_)
        t0_us, t1_us = s / 1000 + b, e_ / 1000 + b
        lanes = {ln["index"]: ln for ln in st["lanes"]}
        want_lanes = {}
        for ln in tr.lanes:
            if ln.kind not in ("gpu", "cpu") or ln.count == 0:
                continue
            ivs = [(e["ts"], e["ts"] + e.get("dur", 0)) for e in evs
                   if e.get("ph") == "X" and str(e.get("pid")) == str(ln.pid)
                   and str(e.get("tid")) == str(ln.tid)
                   and ((e.get("cat") in GPU_CATS) == (ln.kind == "gpu"))]
            want_lanes[ln.index] = round(total(clip(ivs, t0_us, t1_us)) * 1000)
        assert set(lanes) == set(want_lanes)
        for i, busy in want_lanes.items():
            assert lanes[i]["busy_ns"] == busy, tr.lanes[i].name
        assert any(v > 0 for v in want_lanes.values())
        # the main thread is inside attn(B) the whole time
        main = next(ln.index for ln in tr.lanes if ln.tid == first["tid"] and ln.kind == "cpu")
        assert lanes[main]["busy_ns"] == e_ - s

        # the heatmap: Enter on a bin marks that bin as the range
        await pilot.press("escape")
        assert app.range is None
        await pilot.press("o")
        await pilot.pause()
        scr = app.screen
        assert isinstance(scr, OverlapScreen)
        hm = scr.query_one(Heatmap)
        assert hm.has_focus
        await pilot.press("right", "right", "right")
        n = hm.ncols
        c = hm.col
        assert c == n // 2 + 3
        lo = hm.t0 + c * (hm.t1 - hm.t0) / n
        hi = hm.t0 + (c + 1) * (hm.t1 - hm.t0) / n
        a, z = hm.cursor_bin()
        assert abs(a - lo) <= 1 and abs(z - hi) <= 1
        await pilot.press("enter")
        await pilot.pause()
        assert len(app.screen_stack) == 1
        assert app.range == (max(a, 0), min(z, tr.end_ns))
        assert tl.t0 <= a and z <= tl.t1


# ---------------------------------------------------------------- 3. range marking
def shaded(strip, color: str) -> int:
    want = Color.parse(color).get_truecolor()
    return sum(len(seg.text) for seg in strip
               if seg.style is not None and seg.style.bgcolor is not None
               and seg.style.bgcolor.get_truecolor() == want)


async def test_mark_widen_and_clear_a_range():
    path = str(DECODE)
    app = TraceApp(path)
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(app, pilot)
        tr = app.trace
        tl = app.query_one(Timeline)
        bg = app.palette.range_bg
        assert shaded(tl.render_line(0), bg) == 0
        await pilot.press("w")  # a window inside the trace
        assert 0 < tl.t0 < tl.t1 < tr.end_ns
        assert tl.selected == -1
        await pilot.press("m")
        assert app.range == (tl.t0, tl.t1)
        assert tl.range == app.range
        ruler = tl.render_line(0)
        assert shaded(ruler, bg) == tl.plot_width  # all of the window is the range
        await pilot.press("escape")
        assert app.range is None and tl.range is None and app.range_stats is None
        assert shaded(tl.render_line(0), bg) == 0

        # with a slice selected: its span
        await pilot.press("full_stop")
        sel = tl.selected
        assert sel >= 0
        ev = tr.raw_event(sel)
        b = base_us(path)
        await pilot.press("m")
        s, e = app.range
        assert abs(s - (float(ev["ts"]) - b) * 1000) <= 2
        assert abs(e - s - max(float(ev["dur"]) * 1000, 1)) <= 2
        assert 0 < shaded(tl.render_line(0), bg) < tl.plot_width
        await until(pilot, lambda: app.range_stats is not None)
        assert app.range_stats["t0"] == s and app.range_stats["t1"] == e
        # shift+right widens the end only, shift+left the start only
        step = max((tl.t1 - tl.t0) // 20, 1)
        await pilot.press("shift+right")
        assert app.range == (s, min(e + step, tr.end_ns))
        await pilot.press("shift+left")
        assert app.range == (max(s - step, 0), min(e + step, tr.end_ns))
        assert tl.range == app.range
        await until(pilot, lambda: app.range_stats is not None
                    and app.range_stats["t1"] == app.range[1])
        # the overlap view opens on the marked range
        await pilot.press("o")
        await pilot.pause()
        hm = app.screen.query_one(Heatmap)
        assert (hm.t0, hm.t1) == app.range
        await pilot.press("escape")
        await pilot.pause()
        assert len(app.screen_stack) == 1 and app.range is not None
        await pilot.press("escape")
        assert app.range is None and tl.range is None
        assert shaded(tl.render_line(0), bg) == 0
        assert app.is_running and len(app.screen_stack) == 1


# ---------------------------------------------------------------- 4. exports
async def test_exports_csv_and_svg(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # one timestamp for every export: two exports in a row get the same proposed name
    import tracetui.app.exports as app_module
    real = app_module.export_name
    monkeypatch.setattr(app_module, "export_name",
                        lambda p, what, ext, when=None: real(p, what, ext, 1_700_000_000))
    path = str(DECODE)
    kernels = report(path)["kernels"]
    app = TraceApp(path)
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(app, pilot)
        # on the timeline with no range: a notice, no file
        await pilot.press("e")
        await pilot.pause()
        assert files(tmp_path) == []
        assert any("nothing to export" in str(n.message) for n in app._notifications)

        await pilot.press("k", "g", "e", "m", "m", "enter")
        await pilot.press("less_than_sign")  # sort by count, descending
        await pilot.pause()
        scr = app.screen
        assert isinstance(scr, KernelScreen) and scr.grid.sort_key == "count"
        gemm = [k for k in kernels if "gemm" in k["name"].lower()]
        want = [gemm[i] for i in desc_order([k["count"] for k in gemm])]
        await pilot.press("ctrl+e")
        await pilot.pause()
        (one,) = files(tmp_path)
        assert one.name.startswith("tracetui-") and one.suffix == ".csv"
        with one.open(newline="", encoding="utf-8") as f:
            table = list(csv.reader(f))
        header, body = table[0], table[1:]
        assert header[:4] == ["name", "class", "count", "total ms"]
        assert header[-1] == "name (full)"  # the short forms shown, the full names last
        assert [r[-1] for r in body] == [k["name"] for k in want]
        assert [int(r[2]) for r in body] == [k["count"] for k in want]
        # the grid's visible rows, in its order
        assert [r[-1] for r in body] == grid_names(scr.grid)

        await pilot.press("ctrl+e")
        await pilot.pause()
        two = files(tmp_path)
        assert len(two) == 2 and one in two  # a new name: the first file is kept
        assert one.read_text(encoding="utf-8") == two[1 - two.index(one)].read_text(
            encoding="utf-8")

        await pilot.press("ctrl+s")
        await pilot.pause()
        svgs = [p for p in files(tmp_path) if p.suffix == ".svg"]
        assert len(svgs) == 1 and svgs[0].name.startswith("tracetui-")
        assert "<svg" in svgs[0].read_text(encoding="utf-8")
        assert all(p.name.startswith("tracetui-") for p in files(tmp_path))
        assert not list(tmp_path.glob(".tracetui-*"))  # no temporary file left behind


async def test_export_a_marked_range(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = TraceApp(str(DECODE))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(app, pilot)
        await pilot.press("m")
        await until(pilot, lambda: app.range_stats is not None)
        await pilot.press("e")
        await pilot.pause()
        (f,) = files(tmp_path)
        rows = list(csv.reader(f.open(encoding="utf-8")))
        lanes = [r for r in rows[1:] if r[0] == "lane"]
        assert {r[1] for r in lanes} == {ln.name for ln in app.trace.lanes
                                          if ln.count and ln.kind in ("gpu", "cpu")}
        assert any(r[0] == "kernel" for r in rows[1:])


# ---------------------------------------------------------------- 5. hostile names
OSC52 = "\x1b]52;c;aGVsbG8=\x07"
HOSTILE = [f"nccl_{OSC52}allreduce", "[red]x[/red] gemm", "[@click=app.quit]y[/]"]
HOSTILE_ANN = f"phase {OSC52}[@click=app.quit]z[/] [red]r[/red]"


def hostile_trace(folder: Path) -> Path:
    evs: list[dict[str, Any]] = [
        {"ph": "M", "name": "thread_name", "pid": 1, "tid": 1, "args": {"name": OSC52 + "main"}},
        {"ph": "X", "name": HOSTILE_ANN, "cat": "user_annotation", "pid": 1, "tid": 1,
         "ts": 0, "dur": 400},
    ]
    for k, name in enumerate(HOSTILE * 2):
        corr = 100 + k
        ts = 10 + 40 * k
        stream = 27 if k < len(HOSTILE) else 7  # each name: first on stream 27, then on 7
        evs += [
            {"ph": "X", "name": "cudaLaunchKernel", "cat": "cuda_runtime", "pid": 1, "tid": 1,
             "ts": ts, "dur": 5, "args": {"correlation": corr}},
            {"ph": "X", "name": name, "cat": "kernel", "pid": 0, "tid": stream,
             "ts": ts + 6, "dur": 30, "args": {"correlation": corr, "device": 0,
                                                "stream": stream}},
        ]
    evs.append({"ph": "X", "name": HOSTILE_ANN, "cat": "gpu_user_annotation", "pid": 0,
                "tid": 7, "ts": 10, "dur": 300, "args": {"device": 0, "stream": 7}})
    p = folder / "hostile.json"
    p.write_text(json.dumps({"traceEvents": evs}), encoding="utf-8")
    return p


def clean(text: str) -> bool:
    return ESC not in text and BEL not in text


async def test_hostile_names_stay_text(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = hostile_trace(tmp_path)
    app = TraceApp(str(path))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(app, pilot)
        assert set(HOSTILE) <= {k["name"] for k in report(str(path))["kernels"]}
        await pilot.press("k")
        await pilot.pause()
        scr = app.screen
        assert isinstance(scr, KernelScreen)
        lines = grid_lines(scr.grid)
        assert len(lines) == 1 + len(HOSTILE)
        assert all(clean(t) for t in lines)
        body = "\n".join(lines)
        assert "[red]x[/red]" in body and "[@click=app.quit]y[/]" in body and "^[]52" in body
        assert clean(app.export_screenshot())
        await pilot.click(Grid, offset=(2, 3))  # a "[@click=...]" name is no link
        await pilot.press("ctrl+t")
        assert all(clean(t) for t in grid_lines(scr.grid))
        await pilot.press("ctrl+t")
        await pilot.press("ctrl+e")
        await pilot.pause()
        (exported,) = [p for p in files(tmp_path) if p.suffix == ".csv"]
        text = exported.read_text(encoding="utf-8")
        assert clean(text) and "[@click=app.quit]y[/]" in text
        # the instances of a hostile kernel
        await pilot.press("enter")
        await pilot.pause()
        ins = app.screen
        assert isinstance(ins, InstancesScreen)
        assert all(clean(t) for t in grid_lines(ins.grid))
        name = app.trace.name_of(int(ins.rows[0]))
        want = sorted(e["ts"] for e in gpu_slices(str(path), name))
        assert [app.trace.raw_event(int(r))["ts"] for r in ins.rows] == want  # two streams
        assert len({e["tid"] for e in gpu_slices(str(path), name)}) == 2
        assert clean(app.export_screenshot())
        await pilot.press("escape", "escape")
        await pilot.pause()
        assert len(app.screen_stack) == 1

        await pilot.press("o")
        await pilot.pause()
        scr = app.screen
        assert isinstance(scr, OverlapScreen)
        hm = scr.query_one(Heatmap)
        assert all(clean(hm.render_line(y).text) for y in range(hm.lines() + 1))
        grid = scr.query_one(Grid)
        lines = grid_lines(grid)
        assert any("[@click=app.quit]z[/]" in t for t in lines)
        assert all(clean(t) for t in lines)
        assert clean(app.export_screenshot())
        await pilot.press("e")  # the heatmap has the focus: its bins, with the phases
        await pilot.press("tab", "e")  # the annotation table
        await pilot.pause()
        (bins,) = [p for p in files(tmp_path) if "overlap-bins" in p.name]
        assert clean(bins.read_text(encoding="utf-8"))
        (ann,) = [p for p in files(tmp_path) if "annotations" in p.name]
        assert clean(ann.read_text(encoding="utf-8"))
        assert "[@click=app.quit]z[/]" in ann.read_text(encoding="utf-8")
        await pilot.press("enter")  # to the hostile annotation on the timeline
        await pilot.pause()
        assert len(app.screen_stack) == 1
        tl = app.query_one(Timeline)
        assert app.trace.name_of(tl.selected) == HOSTILE_ANN
        await until(pilot, lambda: app.range_stats is not None)
        await pilot.pause()
        assert clean(app.export_screenshot())
        assert app.is_running


# ---------------------------------------------------------------- 6. overlap rows
async def test_overlap_rows_toggle():
    path = str(DECODE)
    devices = sorted({int(e["pid"]) for e in gpu_slices(path)})
    app = TraceApp(path)
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(app, pilot)
        tl = app.query_one(Timeline)
        before = list(tl.rows)
        assert not any(r.kind == "overlap" for r in before)
        await pilot.press("O")
        await pilot.pause()
        ov = [r for r in tl.rows if r.kind == "overlap"]
        assert sorted(r.depth for r in ov) == devices
        tr = app.trace
        for r in ov:  # right under the last row of that GPU's lanes
            k = tl.rows.index(r)
            above = tl.rows[k - 1]
            assert above.lane >= 0 and tr.lanes[above.lane].device == r.depth
            assert all(tr.lanes[x.lane].device != r.depth for x in tl.rows[k + 1:]
                       if x.lane >= 0)
        assert len(tl.rows) == len(before) + len(devices)
        y = 1 + tl.rows.index(ov[0]) - int(tl.scroll_offset.y)
        line = tl.render_line(y).text
        assert line.startswith(f"GPU {devices[0]}") and len(line) == tl.size.width
        await pilot.press("O")
        await pilot.pause()
        assert not any(r.kind == "overlap" for r in tl.rows)
        assert tl.rows == before


# ---------------------------------------------------------------- 7. a small terminal
def header_visible(app: TraceApp, grid: Grid, *titles: str) -> None:
    assert grid.region.height >= 2, grid.region  # the header and at least one row
    assert grid.region.bottom <= app.size.height
    head = grid.render_line(0).text
    for t in titles:
        assert t in head


async def test_views_at_80x24():
    app = TraceApp(str(DECODE))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(app, pilot)
        await pilot.press("k")
        await pilot.pause()
        assert isinstance(app.screen, KernelScreen)
        header_visible(app, app.screen.grid, "name", "count")
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, InstancesScreen)
        header_visible(app, app.screen.grid, "start ms", "dur µs")
        await pilot.press("escape", "escape")
        await pilot.pause()
        await pilot.press("o")
        await pilot.pause()
        scr = app.screen
        assert isinstance(scr, OverlapScreen)
        header_visible(app, scr.query_one("#ov-table", Grid), "annotation", "ovl %")
        assert scr.query_one(Heatmap).region.height >= 2
        await pilot.press("escape")
        await pilot.pause()
        assert len(app.screen_stack) == 1 and app.is_running


# ---------------------------------------------------------------- exports say what is shown
def shown_cells(grid: Grid, y: int) -> list[str]:
    """The cells of rendered line ``y``, cut at the grid's column widths."""
    text = grid.render_line(y).text
    out, x = [], 0
    for w in grid.widths(grid.text_width):
        if w == 0:  # a column hidden on a narrow terminal
            out.append(None)
            continue
        out.append(text[x: x + w].strip())
        x += w + 1
    return out


def same_value(exported: str, shown: str) -> bool:
    if shown in ("", "–"):
        return exported in ("", "None")
    if "…" in shown:  # shortened at its end or in its middle
        head, tail = shown.split("…", 1)
        return exported.startswith(head) and exported.endswith(tail)
    num = shown.replace(",", "").rstrip("%")
    try:
        value = float(num)
    except ValueError:
        return exported == shown
    decimals = len(num.split(".", 1)[1]) if "." in num else 0
    try:
        return abs(float(exported) - value) <= 0.5 * 10 ** -decimals + 1e-9
    except ValueError:
        return False


@pytest.mark.parametrize("view", ["kernels", "instances", "annotations"])
async def test_exported_csv_says_what_the_table_shows(view, tmp_path, monkeypatch):
    """Each exported cell is the value shown in that cell, in the unit its header names."""
    monkeypatch.chdir(tmp_path)
    app = TraceApp(str(DECODE))
    async with app.run_test(size=(160, 40)) as pilot:
        await loaded(app, pilot)
        if view == "annotations":
            await pilot.press("o", "tab")
            await pilot.pause()
            grid = app.screen.query_one("#ov-table", Grid)
        else:
            await pilot.press("k", *(["enter"] if view == "instances" else []))
            await pilot.pause()
            grid = app.screen.grid
        # a table exports on ^e (its letters are filter text); the overlap view on e
        await pilot.press("e" if view == "annotations" else "ctrl+e")
        await pilot.pause()
        (f,) = files(tmp_path)
        rows = list(csv.reader(f.open(newline="", encoding="utf-8")))
        titles = [c.title for c in grid.model.columns]
        # a column showing short forms (the kernels' names) adds their full text last
        assert rows[0] == titles + [f"{c.title} (full)" for c in grid.model.columns
                                    if c.full_key]
        bad = []
        for y, row in enumerate(rows[1:6], start=1):
            for title, exported, shown in zip(rows[0], row, shown_cells(grid, y)):
                if shown is not None and not same_value(exported, shown):
                    bad.append(f"{title}: exported {exported!r}, shown {shown!r}")
        assert not bad, bad


async def test_instances_filter_matches_the_stream_shown():
    app = TraceApp(str(DECODE))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(app, pilot)
        await pilot.press("k", "enter")
        await pilot.pause()
        ins = app.screen
        assert isinstance(ins, InstancesScreen)
        n = len(ins.grid.order)
        lane = app.trace.lane_of(int(ins.rows[0])).name
        assert all(app.trace.lane_of(int(r)).name == lane for r in ins.rows)
        assert "stream" in lane
        await pilot.press(*"stream")
        await pilot.pause()
        assert ins.grid.filter_text == "stream"
        assert len(ins.grid.order) == n  # every row's stream cell says "stream"


@pytest.mark.parametrize("width", [80, 100, 160])
async def test_kernel_table_drops_optional_columns_rather_than_cutting_them(width):
    app = TraceApp(str(DECODE))
    async with app.run_test(size=(width, 24)) as pilot:
        await loaded(app, pilot)
        await pilot.press("k")
        await pilot.pause()
        grid = app.screen.grid
        header = grid.render_line(0).text
        shown = [c.title for c, w in zip(grid.model.columns, grid.widths(grid.text_width)) if w]
        for title in shown:  # every column drawn has its whole title on screen
            assert title in header, (title, header)
        assert "name" in shown and "total ms" in shown
        assert sum(grid.widths(grid.text_width)) + len(shown) - 1 <= grid.text_width
        every = [c.title for c in grid.model.columns]
        if width >= 110:  # room for all: 20 cells of name at least
            assert shown == every
        elif width >= 100:  # the Tensor Core column, then the launch delays go first
            assert shown == [t for t in every if t not in ("launch µs", "TC")]
        else:
            assert len(shown) < len(grid.model.columns)


async def test_heatmap_export_has_the_bins(tmp_path, monkeypatch):
    """e with the heatmap focused writes its bins; summed, they are the device's totals."""
    monkeypatch.chdir(tmp_path)
    app = TraceApp(str(DECODE))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(app, pilot)
        await pilot.press("0", "o")
        await pilot.pause()
        await pilot.press("e")
        await pilot.pause()
        (f,) = files(tmp_path)
        assert "overlap-bins" in f.name
        rows = list(csv.DictReader(f.open(newline="", encoding="utf-8")))
    rep = analyze(load(str(DECODE)))
    for d in rep["overlap"]:
        mine = [r for r in rows if int(r["device"]) == d["device"]]
        assert mine and float(mine[0]["start_us"]) <= 0
        assert float(mine[-1]["end_us"]) * 1000 >= app.trace.end_ns
        for key in ("comm", "comp", "overlap"):
            total = sum(float(r[f"{key}_us"]) for r in mine)
            assert total == pytest.approx(d[f"{key}_us"], abs=0.01), key
        exposed = sum(float(r["exposed_us"]) for r in mine)
        assert exposed == pytest.approx(d["exposed_comm_us"], abs=0.01)
        assert any(r["phase"] for r in mine)  # decode.json's mb0:/mb1: phases


async def test_command_palette_opens_the_views():
    app = TraceApp(str(DECODE))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(app, pilot)
        for query, screen in (("kernel table", KernelScreen), ("overlap view", OverlapScreen)):
            await pilot.press("ctrl+p")
            await pilot.pause()
            await pilot.press(*query)
            await pilot.pause(0.3)
            await pilot.press("enter")
            await pilot.pause(0.3)
            assert isinstance(app.screen, screen), app.screen_stack
            await pilot.press("escape")
            await pilot.pause()
            assert len(app.screen_stack) == 1


async def test_views_are_kept_until_the_aggregates_change():
    from tracetui.app.session import Analyses

    app = TraceApp(str(DECODE))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(app, pilot)
        await pilot.press("k")
        await pilot.pause()
        first = app.screen
        await pilot.press("escape", "k")
        await pilot.pause()
        assert app.screen is first  # kept: opens again as it was left
        # new aggregates (the load finished, other rules): a new view; the old one goes once
        # it is closed
        app._set_analyses(Analyses(app.trace, app.timeline.classes_of))
        await pilot.press("escape", "k")
        await pilot.pause()
        assert isinstance(app.screen, KernelScreen) and app.screen is not first
        assert first not in app._installed_screens.values()


async def test_search_steps_through_every_match_in_time_order():
    app = TraceApp(str(DECODE))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(app, pilot)
        tr = app.trace
        want = sorted((int(tr.start[r]), r) for r in range(len(tr.start))
                      if "gemm" in tr.name_of(r).lower())
        want = [r for _, r in want]
        assert len(want) > 20
        await pilot.press("0", "slash", *"gemm", "enter")
        await pilot.pause()
        tl = app.query_one(Timeline)
        first = tl.selected
        assert first in want
        k = want.index(first)
        seen = [first]
        for _ in range(len(want)):
            app.action_match(1)
            seen.append(tl.selected)
        # forward: every match once, in time order, wrapping back to the first
        assert seen == [want[(k + i) % len(want)] for i in range(len(want) + 1)]
        back = []
        for _ in range(3):
            app.action_match(-1)
            back.append(tl.selected)
        assert back == [want[(k - i) % len(want)] for i in range(1, 4)]
        await pilot.pause()


def test_the_stream_matrix_keeps_its_columns_apart_for_long_busy_times(tmp_path):
    """Streams busy for seconds (13,117.5 ms) read as separate numbers, with as many
    decimals as fit (they used to run together: "13,117.50012,926.040")."""
    from tracetui.analysis.rules import DEFAULT_RULES, classify
    from tracetui.analysis.window import OverlapModel
    from tracetui.app.themes import load_theme
    from tracetui.app.views import matrix_text

    evs = [{"ph": "X", "cat": "kernel", "name": f"k{s}", "pid": 0, "tid": 7 + s,
            "ts": i * 1_400_000 + s * 1000, "dur": 1_300_000 + 17 * s}
           for s in range(4) for i in range(10)]
    path = tmp_path / "long.json"
    path.write_text(json.dumps({"traceEvents": evs}))
    tr = load(str(path))
    model = OverlapModel(tr, classify(tr, DEFAULT_RULES))
    text = matrix_text(tr, model, 0, (0, tr.end_ns), load_theme().palette).plain
    rows = [ln.split() for ln in text.splitlines() if ln.startswith("s")]
    lanes, m = model.matrix(0, (0, tr.end_ns))
    assert len(rows) == 4
    for a, row in enumerate(rows):
        assert len(row) == 5, row  # the stream's name, then four numbers
        got = [float(v.replace(",", "")) for v in row[1:]]
        assert got == pytest.approx([m[a, b] / 1e6 for b in range(4)], abs=0.051)
    assert max(m.max() / 1e6, 0) > 10_000  # long enough to have run together before
