"""Wide characters in names (CJK, full-width forms, emoji): every table measures, pads and cuts
in terminal cells, one measure for all (``textutil.cell_width``, which agrees with rich's
``cell_len``, what Textual draws with). A row with ``注意力_kernel`` in it has its columns where
an ASCII row has them, and its last column whole.

Cell positions here come from rich (``split_graphemes``, ``cell_len``), never from textutil."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import unicodedata
from pathlib import Path
from typing import Any, Callable

import pytest
from rich.cells import cell_len, split_graphemes
from textual.app import App, ComposeResult
from textual.strip import Strip
from textual.widget import Widget

from conftest import loaded, until
from tracetui.app.grid import Column, Grid, GridModel
from tracetui.app.phaseview import LABEL, PHASE_COLUMNS, PhaseMap, PhaseScreen
from tracetui.app.themes import Palette
from tracetui.app.views import (HEAT_LABEL, KERNEL_COLUMNS, Heatmap, KernelScreen,
                                 OverlapScreen)
from tracetui.textutil import cell_width, clip, fit, fit_apart, middle, safe_text, tail

#: what people meet in names: CJK, full-width Latin, kana, Hangul, emoji (plain, with a
#: presentation selector, with a skin tone, joined families and flags, keycaps), combining
#: marks, zero-width joiners and spaces, ambiguous-width symbols
SAMPLES = ["注意力_kernel", "🚀dispatch", "ＧＥＭＭ", "ｶﾀｶﾅ半角", "カタカナ", "한국어_커널",
           "café", "cafe\u0301", "n\u0303o\u0308", "❤️_love", "❤_text", "☀️☁️", "✈️ok", "1️⃣#️⃣",
           "👍🏽", "👨‍👩‍👧‍👦family", "🏳️‍🌈", "🇯🇵flag", "a\u200bb", "x\u200dy", "…ellipsis",
           "µs Ω ±", "─│▏█▀", "Ωμέγα", "Привет", "क्षत्रिय", "עברית", "العربية", "🫨new", "🥲",
           "🧑‍💻dev",
           "混合专家_路由_kernel_很长的名字", "ncclDevKernel_全归约_AllReduce", "⚡️fast", "©®™",
           "(no phase)", "plain_ascii_kernel"]

WIDE_NAMES = ["注意力_kernel", "🚀dispatch", "ＧＥＭＭ_fp16",
              "混合专家_路由_kernel_很长的名字_更多更多", "👨‍👩‍👧_family_kernel", "cafe\u0301_kernel", "❤️_kernel", "ncclDevKernel_全归约_AllReduce"]
ASCII_NAMES = ["plain_gemm_kernel", "ncclDevKernel_Broadcast"]


# ---------------------------------------------------------------- the measure and the cuts
def test_cell_width_agrees_with_rich():
    for s in SAMPLES:
        assert cell_width(s) == cell_len(s), (s, cell_width(s), cell_len(s))
    # and every character of the common blocks alone (those this Python's Unicode knows)
    for lo, hi in ((0x20, 0x3000), (0x3000, 0x3100), (0x4E00, 0x4F00), (0xAC00, 0xAD00),
                   (0xFF00, 0xFFF0), (0x1F300, 0x1FAFF)):
        bad = [hex(o) for o in range(lo, hi) if unicodedata.category(chr(o)) != "Cn"
               and cell_width(chr(o)) != cell_len(chr(o))]
        assert not bad, bad[:20]


@pytest.mark.parametrize("text", SAMPLES + ["注" * 30, "🚀" * 30, "a注" * 20, "注a" * 20])
def test_cuts_never_take_more_cells_than_given(text):
    for width in range(0, 26):
        for cut in (middle, tail, clip):
            got = cut(text, width)
            assert cell_len(got) <= max(width, 0), (cut.__name__, text, width, got)
            if cell_len(text) <= width:
                assert got == text
        for how in ("end", "middle", "start"):
            for right in (False, True):
                got = fit(text, width, right=right, cut=how)
                assert cell_len(got) == width or (width <= 0 and got == "" or got == text
                                                  and cell_len(text) <= width), (text, width, got)


def test_a_cut_keeps_what_fits_and_loses_at_most_one_cell():
    text = "注意力计算注意力计算_kernel_末尾"
    for width in range(3, 30):
        m = middle(text, width)
        assert "…" in m and cell_len(m) >= width - 1, (width, m)
        start, end = m.split("…")
        assert text.startswith(start) and text.endswith(end)
        t = tail(text, width)
        assert t.startswith("…") and text.endswith(t[1:]) and cell_len(t) >= width - 1
        c = clip(text, width)
        assert c.endswith("…") and text.startswith(c[:-1]) and cell_len(c) >= width - 1
    # a joined emoji or a letter with its combining mark is never split
    fam = "👨‍👩‍👧" * 5
    for width in range(1, 12):
        for got in (middle(fam, width), tail(fam, width), clip(fam, width)):
            assert got.replace("…", "").replace("👨‍👩‍👧", "") == "", (width, got)
    accents = "e\u0301" * 20
    for width in range(2, 12):
        body = middle(accents, width).replace("…", "")
        assert body.replace("e\u0301", "") == "", (width, body)


def test_fit_apart_keeps_wide_names_apart_in_their_cells():
    names = [f"注意力::内核<{t}, 注意力::详细::数组<字符*, 3> >" for t in ("加法", "填充", "乘法")]
    names += ["🚀" * 20 + "a", "🚀" * 20 + "b", "🚀" * 20 + "b"]
    for width in (8, 12, 16, 24):
        got = fit_apart(names, width)
        assert all(cell_len(g) <= width for g in got), (width, got)
        assert len(set(got[:5])) == 5, (width, got)  # the different ones read apart


def test_safe_text_limits_in_cells():
    assert cell_len(safe_text("注意力" * 20, 10)) <= 10
    assert safe_text("注意力" * 20, 10).endswith("…")
    assert safe_text("abc", 10) == "abc"
    assert cell_len(safe_text("\x1b[2J注意力" * 5, 12)) <= 12  # shown as ^[ and still cut


# ---------------------------------------------------------------- tables drawn by render_line
class One(App[None]):
    def __init__(self, make: Callable[[], Widget]) -> None:
        super().__init__()
        self.make = make

    def compose(self) -> ComposeResult:
        yield self.make()


def cells_of(text: str) -> list[str]:
    """One entry per terminal cell: the character drawn there, "" in a wide one's second."""
    out: list[str] = []
    spans, _ = split_graphemes(text)
    for a, b, w in spans:
        if w:
            out += [text[a:b]] + [""] * (w - 1)
        elif out:
            out[-1] += text[a:b]
    return out


def cells(strip: Strip) -> list[str]:
    return cells_of("".join(seg.text for seg in strip if not seg.control))


def columns_of(grid: Grid, y: int) -> list[str]:
    """The cells of each drawn column of line ``y``, by the grid's widths (and the one
    space between columns)."""
    got = cells(grid.render_line(y))
    out, at = [], 0
    for w in grid.widths(grid.text_width):
        if w <= 0:
            out.append("")
            continue
        out.append("".join(got[at:at + w]))
        if at + w < len(got):
            assert got[at + w] == " ", (y, at + w, "".join(got))  # the gap between columns
        at += w + 1
    return out


def check_grid(grid: Grid, values: Callable[[int, Column], str]) -> None:
    """Every line exactly the grid's width in cells; each column's cells where the widths
    say, numbers whole and right-aligned (their last cell at the same column on every row),
    names within their cells."""
    width = grid.text_width
    widths = grid.widths(width)
    ends: set[int] = set()
    for y in range(len(grid.order) + 1):
        strip = grid.render_line(y)
        assert strip.cell_length == width, (y, strip.cell_length, width, strip.text)
        assert cell_len(strip.text) == width
        cols = columns_of(grid, y)
        if y == 0:
            continue
        i = int(grid.order[y - 1])
        for col, w, got in zip(grid.model.columns, widths, cols):
            if w <= 0:
                continue
            assert cell_len(got) == w, (col.title, got)
            want = values(i, col)
            if col.numeric:
                assert got.strip() == want and got.endswith(want), (col.title, got, want)
            elif want:
                assert got.strip(), (col.title, got, want)
        drawn = cells(strip)
        ends.add(max(k for k, ch in enumerate(drawn) if ch.strip()))
    assert len(ends) == 1, ends  # the last column ends in the same cell on every row


def kernel_records(names: list[str]) -> list[dict[str, Any]]:
    return [{"name": n, "display_name": n, "class": "comm" if "nccl" in n else "comp",
             "count": 10 + k, "total_us": 1234.5 + 100 * k, "pct": 3.5 + k,
             "avg_us": 12.25 + k, "median_us": 11.5, "min_us": 1.0, "max_us": 99.75 + k,
             "launch_delay_median_us": 4.5} for k, n in enumerate(names)]


@pytest.mark.parametrize("width", [60, 80, 120, 160])
async def test_the_kernel_table_lines_up_with_wide_names(width):
    model = GridModel(KERNEL_COLUMNS, kernel_records(WIDE_NAMES + ASCII_NAMES))
    async with One(lambda: Grid(model, "total_us")).run_test(size=(width, 20)) as pilot:
        await pilot.pause()
        grid = pilot.app.query_one(Grid)
        check_grid(grid, lambda i, c: c.fmt(model.value(i, c.key)))
        # the last column shown ends the same on a wide row as on an ASCII row
        rows = [grid.render_line(y) for y in range(1, len(grid.order) + 1)]
        shown = [c for c, w in zip(model.columns, grid.widths(grid.text_width)) if w]
        last = shown[-1]
        for y, strip in enumerate(rows, 1):
            i = int(grid.order[y - 1])
            text = strip.text.rstrip()
            assert text.endswith(last.fmt(model.value(i, last.key))), text
            assert cell_len(text) == cell_len(rows[0].text.rstrip()), text


@pytest.mark.parametrize("width", [70, 100, 140])
async def test_the_phase_table_lines_up_with_wide_names(width):
    recs = [{"name": n, "group": g, "count": 8 + k, "total_us": 500.25 + k, "comp_us": 300.5,
             "comm_us": 120.0 + k, "exposed_comm_us": 10.5, "comp_sms": 132, "comm_sms": 20,
             "overlap_pct": 91.25 - k}
            for k, (n, g) in enumerate(zip(WIDE_NAMES + ASCII_NAMES,
                                           ["mb0", "微批1", "🚀", "mb1"] * 3))]
    model = GridModel(PHASE_COLUMNS, recs)
    async with One(lambda: Grid(model, "total_us")).run_test(size=(width, 20)) as pilot:
        await pilot.pause()
        grid = pilot.app.query_one(Grid)
        check_grid(grid, lambda i, c: c.fmt(model.value(i, c.key)))
        last = [c.title for c, w in zip(model.columns, grid.widths(grid.text_width)) if w][-1]
        if width >= 100:  # (narrower, the optional columns give way)
            assert last == "overlap"  # shown, and whole on every row (check_grid)


def block(name: str, cls: str, start_us: float, end_us: float) -> dict[str, Any]:
    return {"name": name, "group": "mb0", "class": cls, "device": 0, "start_us": start_us,
            "end_us": end_us, "busy_us": end_us - start_us, "exposed_us": None, "kernels": 1,
            "sms": 20, "sms_peak": 20, "depth": 0}


async def test_the_phase_map_draws_wide_names_in_their_cells():
    plot = 40  # one cell per µs over [0, 40) µs
    blocks = [block("注意力注意力", "comp", 0, 10),      # cells 0-9: ▏注意力注 and a blank
              block("x", "comp", 2, 6),                # over the second half of 注, and 力
              block("🚀dispatch", "comm", 12, 19),
              block("ＧＥＭＭ", "comp", 20, 22),        # two cells: ▏ and no room for Ｇ
              block("tail", "comm", 30, 40)]
    pm = PhaseMap(blocks, 0, 40_000, Palette(), 40_000)
    async with One(lambda: pm).run_test(size=(LABEL + plot, 8)) as pilot:
        await pilot.pause()
        pm.cur = pm.blocks.index(next(b for b in pm.blocks if b["name"] == "tail"))
        pm.refresh()
        for y in range(pm.get_content_height(None, None, LABEL + plot)):
            strip = pm.render_line(y)
            assert strip.cell_length == LABEL + plot, (y, strip.text)
        comp = cells(pm.render_line(1))[LABEL:]
        comm = cells(pm.render_line(2))[LABEL:]
        assert len(comp) == len(comm) == plot
        assert "".join(comp[2:4]) == "▏x"  # drawn over 注's second half: 注 goes
        assert comp[1] == " " and "".join(comp[7:9]) == "注"  # its last whole one stays
        assert "".join(comm[12:19]).startswith("▏🚀dis")
        assert comp[20] == "▏" and comp[21] == " "
        assert "".join(comm[30:35]) == "▏tail"


# ---------------------------------------------------------------- the app, end to end
def wide_trace(path: Path, n: int = 30) -> Path:
    """Kernels with CJK and emoji names on one GPU stream, communication on another (some
    of it while no computation runs: exposed), each iteration inside a CPU annotation with a
    wide name that launches its kernels."""
    comp = ["注意力计算注意力计算注意力计算注意力计算", "🚀🚀🚀🚀🚀🚀🚀🚀🚀🚀🚀🚀🚀🚀",
            "ＧＥＭＭＧＥＭＭＧＥＭＭＧＥＭＭ", "plain_gemm_kernel"]
    comm = ["ncclDevKernel_全归约全归约全归约全归约全归约", "ncclKernel_🚀🚀🚀🚀🚀🚀🚀🚀🚀🚀_AllGather",
            "ncclDevKernel_Broadcast"]
    phases = ["前向传播阶段前向传播阶段前向传播阶段", "🚀step🚀step🚀step🚀step", "ＰＨＡＳＥ"]
    evs: list[dict[str, Any]] = [{"ph": "M", "name": "process_labels", "pid": 0, "tid": 0,
                                  "args": {"labels": "GPU 0"}}]
    t = corr = 0
    for i in range(n):
        a0 = t
        for stream, name, dur in [(7, x, 20 + i % 7) for x in comp[i % len(comp):][:2]] + \
                [(8, comm[i % len(comm)], 10 + i % 5)]:
            evs.append({"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel",
                        "pid": 1, "tid": 1, "ts": t, "dur": 2, "args": {"correlation": corr}})
            evs.append({"ph": "X", "cat": "kernel", "name": name, "pid": 0, "tid": stream,
                        "ts": t + 3, "dur": dur,
                        "args": {"device": 0, "stream": stream, "correlation": corr}})
            corr += 1
            t += 25
        evs.append({"ph": "X", "cat": "user_annotation", "name": phases[i % 3], "pid": 1,
                    "tid": 1, "ts": a0, "dur": t - a0 - 1})
    path.write_text(json.dumps({"traceEvents": evs}))
    return path


def check_lines(widget: Widget, lines: int) -> None:
    width = widget.size.width
    for y in range(lines):
        strip = widget.render_line(y)
        assert strip.cell_length == width, (type(widget).__name__, y, strip.text)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_the_app_tables_line_up_with_wide_names(tmp_path, size):
    from tracetui.app.app import TraceApp

    path = wide_trace(tmp_path / "wide.json")
    app = TraceApp(str(path))
    async with app.run_test(size=size) as pilot:
        await loaded(app, pilot, analyses=True)
        await pilot.press("k")
        await until(pilot, lambda: isinstance(app.screen, KernelScreen))
        await pilot.pause()
        grid = app.screen.grid
        check_grid(grid, lambda i, c: c.fmt(grid.model.value(i, c.key)))
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("p")
        await until(pilot, lambda: isinstance(app.screen, PhaseScreen), tries=500)
        await pilot.pause()
        grid = app.screen.query_one(Grid)
        assert any(cell_len(grid.model.value(i, "name")) > len(grid.model.value(i, "name"))
                   for i in range(len(grid.model)))  # wide phase names are in it
        check_grid(grid, lambda i, c: c.fmt(grid.model.value(i, c.key)))
        pm = app.screen.query_one(PhaseMap)
        check_lines(pm, pm.size.height)
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("o")
        await until(pilot, lambda: isinstance(app.screen, OverlapScreen), tries=500)
        await pilot.pause()
        heat = app.screen.query_one(Heatmap)
        for _ in range(3):  # zoomed in: the phase line names the phases
            heat.action_zoom(0.5)
        await pilot.pause()
        check_lines(heat, heat.lines())
        # the phase line: each phase's run of cells starts at its first bin, wide name or not
        assert heat.phases is not None
        _, edges = heat.bins()
        at = heat.bin_phases(edges).tolist()
        want = [c for c in range(len(at)) if c == 0 or at[c] != at[c - 1]]
        starts, pos = [], 0
        for seg in heat.render_line(1):
            if pos >= HEAT_LABEL and seg.text:
                starts.append(pos - HEAT_LABEL)
            pos += cell_len(seg.text)
        assert starts == want[:len(starts)] and len(starts) >= len(want) - 1, (starts, want)
        assert any(cell_len(heat.phases.trace.name_of(r)) > len(heat.phases.trace.name_of(r))
                   for r in at if r >= 0)  # wide names are on it


# ---------------------------------------------------------------- summary text
def test_summary_text_lines_up_with_wide_names(tmp_path):
    path = wide_trace(tmp_path / "wide.json")
    env = {**os.environ, "COLUMNS": "80", "NO_COLOR": "1"}
    out = subprocess.run([sys.executable, "-m", "tracetui", "summary", str(path)],
                         capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert max(cell_len(x) for x in lines) <= 80, max(lines, key=cell_len)
    # the exposed-communication table: every column there, each row's under its header
    k = next(i for i, x in enumerate(lines) if "communication kernel" in x)
    header = lines[k]
    for title in ("GPU", "at", "dur", "communication kernel", "launched in", "comp idle"):
        assert re.search(rf"(^|\s){re.escape(title)}(\s|$)", header), (title, header)
    rows = []
    for x in lines[k + 2:]:
        if not x.strip():
            break
        rows.append(x)
    assert len(rows) >= 5
    right = cell_len(header.rstrip())  # the last column is right-aligned
    phase_at = cell_len(header[:header.index("launched in")])
    kernel_at = cell_len(header[:header.index("communication kernel")])
    gpu_end = cell_len(header[:header.index("GPU") + 3])
    phases = {"前向传播阶段", "🚀step", "ＰＨＡＳＥ"}
    for x in rows:
        cs = cells_of(x)
        assert cell_len(x.rstrip()) == right, (x, header)
        assert re.fullmatch(r"\d+\.\d{3}", x.split()[-1]), x  # comp idle, whole
        assert "".join(cs[:gpu_end]).strip() == "0", x  # the GPU, under its header
        assert cs[kernel_at - 1] == " " and cs[kernel_at].strip(), (x, header)
        assert cs[phase_at - 1] == " " and cs[phase_at].strip(), (x, header)
        assert any(p[:2] in "".join(cs[phase_at:right]) for p in phases), x


# ---------------------------------------------------------------- the detail pane's range
def test_the_range_account_keeps_wide_names_within_its_width():
    from tracetui.app.describe import describe_range

    st = {"t0": 0, "t1": 1_000_000, "span_ns": 1_000_000, "gpu_work": 3, "devices": [],
          "lanes": [{"pct": 50.0, "busy_ns": 500_000, "lane": n} for n in WIDE_NAMES],
          "kernels": [{"pct": 10.0 + k, "time_ns": 100_000, "short_name": n, "count": 3}
                      for k, n in enumerate(WIDE_NAMES)]}
    for width in (30, 42, 60):
        lines = describe_range(st, width=width).plain.splitlines()
        named = [x for x in lines if "%" in x]  # a lane's or a kernel's line
        assert len(named) == 2 * len(WIDE_NAMES)
        assert all(cell_len(x) <= width for x in named), max(named, key=cell_len)
        # each kernel's line ends with its count, whole
        assert sum(x.endswith(" ×3") for x in named) == len(WIDE_NAMES)
