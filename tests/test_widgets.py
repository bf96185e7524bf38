"""The table (Grid) and the detail pane alone: each in a bare App, fed plain values, its
lines drawn by ``render_line``; what a line must show is worked out here from the values."""

from __future__ import annotations

from typing import Callable

from rich.text import Text
from textual.app import App, ComposeResult
from textual.widget import Widget

from tracetui.app.detail import DetailPane
from tracetui.app.grid import Column, Grid, GridModel, fmt_int


class One(App[None]):
    """A screen holding one widget, made by ``make`` once the app runs."""

    def __init__(self, make: Callable[[], Widget]) -> None:
        super().__init__()
        self.make = make

    def compose(self) -> ComposeResult:
        yield self.make()


COLUMNS = [Column("name", "name", numeric=False, min_width=12, cut="apart"),
           Column("count", "count", 7, fmt=fmt_int),
           Column("total", "total", 9, fmt=lambda v: f"{v:.1f}")]
RECORDS = [
    # alike at both ends: only their middles (the functors) tell them apart
    {"name": "at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<float>,"
             " at::detail::Array<char*, 3> >", "count": 96, "total": 8.8},
    {"name": "at::native::vectorized_elementwise_kernel<4, at::native::FillFunctor<float>,"
             " at::detail::Array<char*, 3> >", "count": 6, "total": 0.2},
    {"name": "ncclDevKernel_AllReduce_Sum_f32", "count": 1200, "total": 55.5},
]


def text_rows(grid: Grid) -> list[str]:
    return [grid.render_line(y).text for y in range(1, len(grid.order) + 1)]


async def test_a_table_sorts_filters_and_keeps_long_names_apart():
    # 44 columns: a 24-cell name column, where the two kernels' names would read alike
    async with One(lambda: Grid(GridModel(COLUMNS, RECORDS), "total")).run_test(
            size=(44, 10)) as pilot:
        await pilot.pause()
        grid = pilot.app.query_one(Grid)
        rows = text_rows(grid)
        # by total, largest first
        totals = [float(r.split()[-1]) for r in rows]
        assert totals == sorted((r["total"] for r in RECORDS), reverse=True)
        # the two elementwise kernels read apart in the name column, each its functor
        names = [r[: grid.widths(grid.text_width)[0]].strip() for r in rows]
        assert len(set(names)) == 3
        assert any("CUDAFunctor_add" in n for n in names) and any("FillFunctor" in n
                                                                  for n in names)
        assert all(len(r) <= 44 for r in rows)
        # the cursor row is drawn reversed or on the cursor's background, the others not
        cur = grid.render_line(1)
        assert any(seg.style and (seg.style.bgcolor or seg.style.reverse) for seg in cur)
        assert not any(seg.style and seg.style.bgcolor for seg in grid.render_line(2))
        grid.action_reverse()
        assert [float(r.split()[-1]) for r in text_rows(grid)] == sorted(totals)
        grid.set_filter("fill")  # the name's text, case folded
        assert len(grid.order) == 1 and "FillFunctor" in text_rows(grid)[0]
        grid.set_filter("zzz")
        assert grid.render_line(1).text.strip() == "no rows match the filter"


async def test_a_table_counts_in_its_units():
    async with One(lambda: Grid(GridModel(COLUMNS, RECORDS), "count")).run_test(
            size=(60, 10)) as pilot:
        await pilot.pause()
        grid = pilot.app.query_one(Grid)
        header = grid.render_line(0).text
        assert header.split()[:3] == ["name", "count▼", "total"]
        assert "1,200" in text_rows(grid)[0]  # thousands separated


async def test_the_detail_pane_wraps_to_its_width_and_scrolls():
    words = " ".join(f"word{k}" for k in range(60))
    async with One(DetailPane).run_test(size=(30, 6)) as pilot:
        pane = pilot.app.query_one(DetailPane)
        pane.set_text(Text("title\n", style="bold") + Text(words))
        await pilot.pause()
        width = pane.content_size.width
        lines = [pane.render_line(y).text for y in range(pane.size.height)]
        assert lines[0].strip() == "title"
        assert all(len(line) == width for line in lines)
        shown = " ".join(" ".join(lines[1:]).split())
        assert shown.startswith("word0 word1") and words.startswith(shown)
        pane.scroll_by_lines(3)
        assert pane.render_line(0).text.strip() != "title"  # scrolled: the title is above
        pane.set_text(Text("new"))  # a new text starts at its top again
        assert pane.render_line(0).text.strip() == "new"


# ---------------------------------------------------------------- the overlap heatmap
async def test_the_heatmap_shows_hidden_and_exposed_communication_where_they_are(tmp_path):
    """One GPU: computation [0, 500) µs on one stream, communication [250, 1000) µs on
    another. Over [0, 1000): the first quarter is computation alone, the second has both
    (the communication hidden), the second half communication alone (exposed)."""
    import json

    from tracetui.analysis.rules import DEFAULT_RULES, classify
    from tracetui.analysis.window import OverlapModel
    from tracetui.app.heat import LEVELS, shade
    from tracetui.app.themes import Palette
    from tracetui.app.views import HEAT_LABEL, Heatmap
    from tracetui.trace import load

    ev = [{"ph": "X", "cat": "kernel", "name": "sm90_gemm", "pid": 0, "tid": 7, "ts": 0,
           "dur": 500, "args": {"device": 0, "stream": 7}},
          {"ph": "X", "cat": "kernel", "name": "ncclDevKernel_AllReduce_Sum_f32", "pid": 0,
           "tid": 20, "ts": 250, "dur": 750, "args": {"device": 0, "stream": 20}}]
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"traceEvents": ev}))
    tr = load(str(path))
    model = OverlapModel(tr, classify(tr, DEFAULT_RULES))
    p = Palette()
    cols = 40
    async with One(lambda: Heatmap(model, 0, 1_000_000, p, tr.end_ns)).run_test(
            size=(HEAT_LABEL + cols, 8)) as pilot:
        await pilot.pause()
        heat = pilot.app.query_one(Heatmap)
        assert heat.ncols == cols
        full, none = LEVELS, 0

        def halves(y: int) -> list[tuple[str, str]]:
            styles = [s.style for s in heat.render_line(y) for _ in s.text][HEAT_LABEL:]
            return [(st.color.name, st.bgcolor.name) for st in styles]

        comp_comm = halves(heat.top)  # upper: computation, lower: communication
        hidden_exposed = halves(heat.top + 1)  # upper: hidden, lower: exposed
        q = cols // 4
        for c in range(cols):
            if c in (q - 1, q, 2 * q - 1, 2 * q):
                continue  # bins across an edge are partly of each
            comp = full if c < 2 * q else none
            comm = full if c >= q else none
            hidden = full if q <= c < 2 * q else none
            exposed = full if c >= 2 * q else none
            assert comp_comm[c] == (shade(p.heat_bg, p.comp, comp),
                                    shade(p.heat_bg, p.comm, comm)), c
            assert hidden_exposed[c] == (shade(p.heat_bg, p.hidden, hidden),
                                         shade(p.heat_bg, p.exposed, exposed)), c
