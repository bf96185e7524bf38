"""The memory view (``h``): each device's memory over the trace, or over the marked range,
above the allocations made in it, largest first (``⏎`` shows one on the timeline), or
(``^t``) memory by operator as ``key_averages()`` counts it (``⏎`` lists that operator's
allocations). What TensorBoard's Memory view showed, from ``profile_memory=True`` traces.

The chart draws, per column, the most allocated in its time bin as a filled block (24 levels
over three rows), what is reserved above it as a tinted band behind, and the peak's column
in red; drawing reads O(columns) values whatever the events (``DeviceCurve``).
Every name is drawn as plain text after ``safe_text``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.strip import Strip
from textual.widget import Widget

from ..analysis import intervals as iv
from ..analysis.memory import DeviceCurve, innermost
from ..analysis.operators import occurrences, operator_memory
from ..tables import MEMORY_ALLOCATIONS, MEMORY_OPS, TableDef, fmt_size
from ..textutil import fit, fmt_time, safe_text
from .busy import counted
from .grid import Grid, GridModel, grid_columns
from .messages import GotoRange, GotoRows
from .session import Session
from .themes import Palette
from .timeline import BLOCKS, memory_cells
from .views import TableScreen

#: allocations listed at most (the largest): a table of millions of rows helps no one
ALLOCATIONS_SHOWN = 1000


class MemoryChart(Widget):
    """Per device a line that says its peak, then its curve over the window in
    :attr:`ROWS` rows."""

    DEFAULT_CSS = "MemoryChart { height: auto; }"
    ROWS = 3
    GUTTER = 10  # the scale's labels, left of the curve

    def __init__(self, session: Session, palette: Palette) -> None:
        super().__init__()
        self.session, self.palette = session, palette
        self.curves: list[DeviceCurve] = []
        self.window = (0, 1)
        self.peak_ops: list[str | None] = []
        self._bins: dict[tuple, Any] = {}
        self._style_cache: tuple[Palette, dict[Any, Style]] | None = None

    def show(self, curves: list[DeviceCurve], t0: int, t1: int) -> None:
        if curves is not self.curves:
            tr = self.session.trace
            m = tr.memory if tr is not None else None
            self.peak_ops = []
            for c in curves:  # who ran when each device peaked (its event's thread)
                e = int(c.events[c.peak])
                row = innermost(tr, int(m.lane[e]), int(m.ts[e])) if tr is not None \
                    and m is not None else -1
                self.peak_ops.append(tr.name_of(row) if row >= 0 and tr is not None
                                     else None)
        self.curves, self.window = curves, (int(t0), int(max(t1, t0 + 1)))
        self._bins.clear()
        self.refresh(layout=True)

    def get_content_height(self, container: Any, viewport: Any, width: int) -> int:
        return max(len(self.curves), 1) * (self.ROWS + 1)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if not self.curves:
            return Strip([Segment(fit("no memory events in this trace (profile_memory=True "
                                      "records them)", width))]) if y == 0 \
                else Strip.blank(width)
        k, sub = divmod(y, self.ROWS + 1)
        if k >= len(self.curves):
            return Strip.blank(width)
        c = self.curves[k]
        if sub == 0:
            return self._header(k, c, width)
        level = self.ROWS - sub  # 0: the bottom row
        plot = max(width - self.GUTTER, 1)
        t0, t1 = self.window
        key = (k, plot, t0, t1)
        got = self._bins.get(key)
        if got is None:
            edges = t0 + (np.arange(plot + 1, dtype=np.float64) * (t1 - t0) / plot
                          ).astype(np.int64)
            edges[-1] = t1
            got = self._bins[key] = (edges, c.bins(edges))
        edges, bins = got
        fill, band, peak = memory_cells(c, edges, bins, self.ROWS, level)
        gutter = fmt_size(c.top) if level == self.ROWS - 1 else "0 B" if level == 0 else ""
        styles = self._styles()
        segs = [Segment(f"{gutter:>{self.GUTTER - 1}} ", styles["ruler"])]
        for j, (n, b) in enumerate(zip(fill.tolist(), band.tolist())):
            segs.append(Segment(BLOCKS[n], styles[(j == peak, bool(b))]))
        return Strip(segs).simplify().crop(0, width).extend_cell_length(width)

    def _styles(self) -> dict[Any, Style]:
        """The chart's few styles, made once per palette (not a Style per cell)."""
        p = self.palette
        got = self._style_cache
        if got is None or got[0] is not p:
            styles: dict[Any, Style] = {"ruler": Style(color=p.ruler)}
            for is_peak in (False, True):
                for band in (False, True):
                    styles[(is_peak, band)] = Style(color=p.exposed if is_peak else p.mem,
                                                    bgcolor=p.mem_reserved if band else None)
            got = self._style_cache = (p, styles)
        return got[1]

    def _header(self, k: int, c: DeviceCurve, width: int) -> Strip:
        t = Text()
        t.append(safe_text(c.label, 16), style="bold")
        t.append(f"  peak {fmt_size(c.peak_bytes)} at +{fmt_time(c.peak_ts)}")
        op = self.peak_ops[k] if k < len(self.peak_ops) else None
        if op:
            t.append(" in ")
            t.append(safe_text(op, 40), style="bold")
        if c.reserved is not None:
            t.append(f" · reserved peak {fmt_size(c.reserved_peak or 0)}", style="dim")
        t0, t1 = self.window
        rng = self.session.range
        if rng is not None:
            most, _ = c.bins(np.array([t0, t1], np.int64))
            if not np.isnan(most[0]):
                t.append(f" · in range: max {fmt_size(int(most[0]))}", style="dim")
        if c.relative:
            t.append(" · relative: from the trace's start", style="yellow")
        return Strip(t.render(self.app.console)).crop(0, width).extend_cell_length(width)


class MemoryScreen(TableScreen):
    """The memory chart above the allocations (or, ``^t``, memory by operator); a marked
    range narrows both to it."""

    BINDINGS = TableScreen.BINDINGS + [
        Binding("ctrl+t", "toggle_ops", "allocations / by operator", key_display="^t")]
    HELP_NOTES = TableScreen.HELP_NOTES + [
        ("^t", "the allocations (⏎: one on the timeline) or memory by operator "
               "(key_averages' CPU and device bytes; ⏎: its allocations)"),
        ("m", "a range marked on the timeline narrows the chart and both tables to it")]

    def __init__(self, session: Session, palette: Palette) -> None:
        super().__init__()
        self.session, self.palette = session, palette
        self.by_op = False
        self.what = "memory"
        self.shown: tuple | None = None  # (trace, range, by_op, op) the rows are of
        self.wanted: tuple | None = None  # ... and those being made
        self.busy = False  # rows being made (pairing the allocations, by operator)
        self.op_name: str | None = None  # the allocations made in this operator's calls

    @property
    def tdef(self) -> TableDef:
        return MEMORY_OPS if self.by_op else MEMORY_ALLOCATIONS

    def compose(self) -> ComposeResult:
        from textual.widgets import Input, Static

        from .keybar import KeyBar

        self.chart = MemoryChart(self.session, self.palette)
        tdef = self.tdef
        self.grid = Grid(GridModel(grid_columns(tdef), [], text_key=tdef.text),
                         tdef.sort or None, descending=tdef.descending,
                         cursor_bg=self.palette.cursor_bg)
        yield Static(id="title")
        yield self.chart
        yield Input(placeholder="filter: part of a name", id="filter", select_on_focus=False)
        yield self.grid
        yield KeyBar()

    def on_mount(self) -> None:
        super().on_mount()
        self.refill()

    def on_screen_resume(self) -> None:
        self.refill()

    def window(self) -> tuple[int, int]:
        tr = self.session.trace
        rng = self.session.range
        if rng is not None:
            return rng
        return (0, max(int(tr.end_ns), 1)) if tr is not None else (0, 1)

    def refill(self, force: bool = False) -> None:
        """The chart and the rows for the trace, range and table shown (again if any of
        them changed since): the rows from a worker (pairing the allocations, memory by
        operator: seconds at millions of events), the title saying so meanwhile."""
        if self.grid is None or not self.is_mounted:
            return
        session = self.session
        t0, t1 = self.window()
        self.chart.show(session.memory(), t0, t1)
        key = (id(session.trace), session.range, self.by_op, self.op_name)
        if (key == self.shown or key == self.wanted) and not force:
            self.update_title()
            return
        self.wanted = key
        self.busy = True
        self.update_title()
        self._rows(key, t0, t1)

    @work(thread=True, exclusive=True, group="memory-view", exit_on_error=False)
    @counted
    def _rows(self, key: tuple, t0: int, t1: int) -> None:
        try:
            rows = self.records(t0, t1)
        except Exception as e:  # noqa: BLE001 - said in one line; the view goes on
            self.app.call_from_thread(self._rows_failed, key, f"{type(e).__name__}: {e}")
            return
        self.app.call_from_thread(self._show_rows, key, rows)

    def _rows_failed(self, key: tuple, why: str) -> None:
        if key != self.wanted:
            return
        self.busy = False
        self.wanted = None  # (asking again tries again)
        self.update_title()
        self.notify(safe_text(f"the memory table failed: {why}", 300), severity="error",
                    timeout=8, markup=False)

    def _show_rows(self, key: tuple, rows: list[dict[str, Any]]) -> None:
        if key != self.wanted:  # (asked for other rows since)
            return
        self.busy = False
        self.shown = key
        tdef = self.tdef
        self.new_model(GridModel(grid_columns(tdef), rows, text_key=tdef.text), "",
                       descending=tdef.descending)
        self.update_title()

    def records(self, t0: int, t1: int) -> list[dict[str, Any]]:
        """The rows of the table shown (a worker's job)."""
        session = self.session
        rng = session.range
        if self.by_op:
            an = session.pane_analyses()
            tr = session.trace
            if an is None or tr is None:
                return []
            return operator_memory(tr, an.op_tree, (t0, t1) if rng is not None else None)
        got = session.allocations(make=True)
        if got is None:
            return []
        within = self._calls(self.op_name) if self.op_name is not None else None
        return got.rows(t0 if rng is not None else None, t1 if rng is not None else None,
                        ALLOCATIONS_SHOWN, within)

    def _calls(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """The union of operator ``name``'s calls, [start, end] each."""
        an, tr = self.session.pane_analyses(), self.session.trace
        if an is None or tr is None:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        rows = occurrences(tr, an.op_tree, name)
        s = tr.start[rows].astype(np.int64)
        return iv.union(s, s + tr.dur[rows] + 1)  # (its end included: key_averages')

    def title_text(self) -> Text:
        t = Text("memory", style="bold")
        t.append(" · by operator (key_averages)" if self.by_op else " · allocations",
                 style="bold")
        rng = self.session.range
        if rng is not None:
            t.append(f" · in the range +{fmt_time(rng[0])} → +{fmt_time(rng[1])}", style="dim")
        got = self.session.allocations()
        if self.op_name is not None and not self.by_op:
            t.append(" · in the calls of ", style="dim")
            t.append(safe_text(self.op_name, 50), style="bold")
            t.append(" (esc: all)", style="dim")
        if self.busy:
            t.append(" · " + ("working out memory by operator…" if self.by_op
                              else "pairing the allocations…"
                              if self.session.allocations() is None else "listing…"),
                     style="yellow")
        elif not self.by_op and got is not None and len(got) > ALLOCATIONS_SHOWN:
            t.append(f" · the {ALLOCATIONS_SHOWN:,} largest of {len(got):,}", style="dim")
        t.append(" (⏎ " + ("its allocations" if self.by_op else "shows it on the timeline")
                 + " · ^t " + ("allocations" if self.by_op else "by operator") + ")",
                 style="dim")
        return t

    def action_toggle_ops(self) -> None:
        self.by_op = not self.by_op
        self.op_name = None
        self.refill()

    def action_back(self) -> None:
        g = self.grid
        if self.op_name is not None and not (g is not None and g.filter_text):
            self.op_name = None  # (esc: every allocation again, before leaving)
            self.refill()
            return
        super().action_back()

    def on_grid_chosen(self, event: Grid.Chosen) -> None:
        event.stop()
        g = self.grid
        if g is None or g.model.records is None:
            return
        rec = g.model.records[event.index]
        if self.by_op:  # to the allocations made inside this operator's calls
            self.by_op = False
            self.op_name = str(rec.get("name", ""))
            self.refill()
            return
        # its lifetime marked, if its free is known; else the slice that made it selected
        m = self.session.trace.memory if self.session.trace is not None else None
        e = int(rec.get("event", -1))
        if m is None or not 0 <= e < len(m):
            return
        a = int(m.ts[e])
        f = rec.get("free_us")
        if f is not None:
            self.post_message(GotoRange(a, max(int(round(float(f) * 1000)), a + 1)))
            return
        row = innermost(self.session.trace, int(m.lane[e]), a)
        if row >= 0:
            self.post_message(GotoRows(np.array([row], np.int64), 0))
        else:
            self.post_message(GotoRange(a, a + 1))
