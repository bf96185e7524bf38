"""The drill-down views: the kernel table (``k``), a kernel's instances, and the overlap view
(``o``: heatmap over time, stream × stream matrix, per-annotation table).

Views hold no trace data of their own beyond aggregates: tables are :class:`Grid` (only the
rows on screen are drawn), the heatmap asks :class:`OverlapModel` for the bins of the window
shown. Every name is drawn as plain text after ``safe_text``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Input, Static

from ..analysis.attribution import NO_PHASE, LaunchPhases
from ..analysis.kernels import short_name
from ..analysis.rules import COMM, COMP
from ..analysis.window import SERIES, OverlapModel, kernel_instances
from ..trace.frame import runs
from ..textutil import fit, fmt_tick, fmt_time, pad, safe_text
from ..trace.frame import bin_edges
from .cache import LRU
from ..tables import ANNOTATIONS, KERNEL_GROUPS, KERNELS, annotation_rows, fmt_size
from .grid import Column, Grid, GridModel, fmt_ns_ms, grid_columns
from .keybar import KeyBar
from .heat import cell, half_block, level
from .messages import ExportRows, GotoAnnotation, GotoRange, GotoRows, ShowInstances, \
    ShowUnattributed
from .session import Session
from .themes import Palette

HEAT_LABEL = 24


def _us(v: Any) -> str:
    return "" if v is None else f"{float(v):,.1f}"


KERNEL_COLUMNS = grid_columns(KERNELS)
GROUP_COLUMNS = grid_columns(KERNEL_GROUPS)
ANNOTATION_COLUMNS = grid_columns(ANNOTATIONS)


class TableScreen(Screen[None]):
    """A title line, a filter box (shown while filtering) and a :class:`Grid`.

    Every printable key is text for the filter (typing starts it: ``triton``, ``qkv`` and
    ``elementwise`` filter on exactly that), except the few symbols bound here (``<`` ``>``
    ``/`` ``?``); commands are on ctrl (``^r`` reverse, ``^e`` export, ...). Esc clears the
    filter, then closes."""

    BINDINGS = [
        Binding("escape", "back", "back"),
        Binding("slash", "filter", "filter", key_display="/"),
        Binding("ctrl+e", "export", "export CSV", key_display="^e"),
    ]
    #: printable keys that stay commands in a table (the app's help)
    COMMAND_CHARS = frozenset("?")
    HELP_NOTES = [("type", "filter by name: every letter, digit and symbol but < > / ? "
                           "starts the filter, and while it is typed every key is text "
                           "(⏎ ends it)"),
                  ("esc", "clear the filter first, then back")]

    @property
    def HELP_TITLE(self) -> str:  # noqa: N802 - read like the class constants of other screens
        return f"{self.what} table"
    DEFAULT_CSS = """
    TableScreen #title { height: 1; background: $boost; }
    TableScreen #filter { height: 1; border: none; padding: 0 1; display: none; }
    TableScreen #filter.visible { display: block; }
    TableScreen Grid { height: 1fr; }
    """
    what = "table"
    # the first focus goes to the rows, never to the hidden filter box (Textual's "*" gave
    # it the box for a moment: a key bubbling up then found its binding filtered out as
    # the box's text, and q on the rank view was lost)
    AUTO_FOCUS = "Grid"

    def __init__(self) -> None:
        super().__init__()
        self.grid: Grid | None = None
        self._filtering = False  # the filter was started: keys go to it, focused or not yet

    def compose_table(self, grid: Grid) -> ComposeResult:
        self.grid = grid
        yield Static(id="title")
        yield Input(placeholder="filter: part of a name", id="filter", select_on_focus=False)
        yield grid
        yield KeyBar()

    def on_mount(self) -> None:
        if self.grid is not None:
            self.grid.focus()
        self.update_title()

    def title_text(self) -> Text:
        return Text(self.what)

    def update_title(self) -> None:
        t = self.title_text()
        g = self.grid
        if g is not None:
            col = next((c.title for c in g.model.columns if c.key == g.sort_key), "")
            t.append(f" · {len(g.order):,} of {len(g.model):,} rows", style="dim")
            if col:
                t.append(f" · sorted by {col} {'▼' if g.descending else '▲'}", style="dim")
            if g.filter_text:
                t.append(" · filter: ", style="dim")
                t.append(safe_text(g.filter_text, 40), style="bold")
        self.query_one("#title", Static).update(t, layout=False)  # one line, always

    def new_model(self, model: GridModel, sort_key: str, descending: bool = True) -> None:
        """Other rows in this kept screen (if it is mounted: else compose makes them): the
        filter cleared and closed, the cursor on the first row."""
        if self.grid is None or not self.is_mounted:
            return
        self._filtering = False
        box = self.query_one("#filter", Input)
        box.value = ""
        box.remove_class("visible")
        self.grid.filter_text = ""
        self.grid.set_model(model, sort_key, descending=descending)
        self.grid.focus()
        self.update_title()

    def action_filter(self, start: str = "") -> None:
        box = self.query_one("#filter", Input)
        self._filtering = True
        box.add_class("visible")
        if start:
            box.value = (self.grid.filter_text if self.grid else "") + start
            box.cursor_position = len(box.value)
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        if event.input.id == "filter" and self.grid is not None:
            self.grid.set_filter(event.value)
            self.update_title()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id == "filter" and self.grid is not None:
            self._filtering = False
            event.input.remove_class("visible")
            self.grid.focus()

    def on_key(self, event: Any) -> None:
        box = self.query_one("#filter", Input)
        if self._filtering and not box.has_focus and event.is_printable \
                and event.character:
            box.value += event.character
            box.cursor_position = len(box.value)
            event.stop()
            event.prevent_default()
            return
        if box.has_focus:
            if event.key in ("up", "down", "pageup", "pagedown"):
                # the rows move while the filter is typed
                if self.grid is not None:
                    self.grid.action_move({"up": -1, "down": 1, "pageup": -20,
                                           "pagedown": 20}[event.key])
                event.stop()
            elif event.key == "escape":
                self._filtering = False
                box.value = ""
                box.remove_class("visible")
                if self.grid is not None:
                    self.grid.focus()
                event.stop()
            return
        if self.grid is not None and self.grid.has_focus and event.is_printable \
                and event.character and event.character not in self.COMMAND_CHARS \
                and not self._bound(event.key):
            self.action_filter(event.character)
            event.stop()
            event.prevent_default()

    def _bound(self, key: str) -> bool:
        keys = set()
        for src in (self.BINDINGS, Grid.BINDINGS):
            for b in src:
                if isinstance(b, Binding):
                    keys.update(k.strip() for k in b.key.split(","))
        return key in keys

    def action_back(self) -> None:
        g = self.grid
        if g is not None and g.filter_text:
            box = self.query_one("#filter", Input)
            self._filtering = False
            box.value = ""
            box.remove_class("visible")
            g.set_filter("")
            g.focus()
            self.update_title()
            return
        self.app.pop_screen()

    def action_export(self) -> None:
        if self.grid is None:
            return
        header, rows = self.grid.visible_records()
        self.post_message(ExportRows(self.what.split(" ", 1)[0], header, rows))

    def on_grid_sorted(self, _: Grid.Sorted) -> None:
        self.update_title()


class KernelScreen(TableScreen):
    """The kernel statistics (per full name, or per short name with ``t``)."""

    BINDINGS = TableScreen.BINDINGS + [Binding("ctrl+t", "toggle_names", "short/full names",
                                               key_display="^t")]
    what = "kernels"

    def __init__(self, session: Session, kernels: list[dict[str, Any]],
                 groups: list[dict[str, Any]], palette: Palette) -> None:
        super().__init__()
        self.session = session
        self.kernels, self.groups = kernels, groups
        self.short = False
        self.palette = palette

    def compose(self) -> ComposeResult:
        yield from self.compose_table(Grid(GridModel(KERNEL_COLUMNS, self.kernels),
                                           "total_us", cursor_bg=self.palette.cursor_bg))

    def title_text(self) -> Text:
        t = Text("kernels", style="bold")
        t.append(" by short name" if self.short else " by full name", style="dim")
        return t

    def action_toggle_names(self) -> None:
        assert self.grid is not None
        self.short = not self.short
        model = GridModel(GROUP_COLUMNS, self.groups) if self.short else \
            GridModel(KERNEL_COLUMNS, self.kernels)
        text = self.grid.filter_text
        self.grid.set_model(model, "total_us")
        if text:
            self.grid.set_filter(text)
        self.update_title()

    def on_grid_chosen(self, event: Grid.Chosen) -> None:
        event.stop()
        tr, classes = self.session.trace, self.session.classes
        if tr is None or classes is None:
            return
        if self.short:
            short = self.groups[event.index]["short_name"]
            names = [k["name"] for k in self.kernels if k["short_name"] == short]
            title = short
        else:
            names = [self.kernels[event.index]["name"]]
            title = names[0]
        ids = [i for i in (tr.strings.find(n) for n in names) if i >= 0]
        rows = kernel_instances(tr, classes, ids)
        self.post_message(ShowInstances(title, rows))


class InstancesScreen(TableScreen):
    """Every instance of one kernel (or short-name group): start, duration, stream."""

    what = "instances"

    def __init__(self, session: Session, name: str, rows: np.ndarray, palette: Palette) -> None:
        super().__init__()
        self.session = session
        self.kernel_name, self.rows, self.palette = name, rows, palette

    def compose(self) -> ComposeResult:
        yield from self.compose_table(Grid(self._model(), "n", descending=False,
                                           cursor_bg=self.palette.cursor_bg))

    def show(self, name: str, rows: np.ndarray) -> None:
        """Another kernel's instances in this (kept) screen: a new model, no new screen."""
        self.kernel_name, self.rows = name, rows
        if self.grid is not None and self.is_mounted:
            self.new_model(self._model(), "n", descending=False)

    def _model(self) -> GridModel:
        tr = self.session.trace
        assert tr is not None
        lanes = tr.lane_index(self.rows) if len(self.rows) else np.zeros(0, np.int64)
        lane_names = [ln.name for ln in tr.lanes]
        cols = [
            Column("#", "n", 8, fmt=lambda v: f"{int(v) + 1:,}"),
            Column("start ms", "start", 12, fmt=fmt_ns_ms),
            Column("dur µs", "dur", 11, fmt=lambda v: f"{float(v) / 1000:,.3f}"),
            Column("stream", "lane", 0, numeric=False, fmt=lambda v: lane_names[int(v)],
                   min_width=12),
        ]
        data = {"n": np.arange(len(self.rows)), "start": tr.start[self.rows],
                "dur": tr.dur[self.rows], "lane": lanes}
        comm = self._collective_columns()
        if comm is not None:
            cols[3:3] = [
                Column("size", "size", 10, fmt=lambda v: fmt_size(v) if v >= 0 else ""),
                Column("busbw GB/s", "busbw", 11,
                       fmt=lambda v: f"{v:,.2f}" if v == v else ""),
                Column("collective", "kind", 14, numeric=False,
                       fmt=lambda v: comm[2][int(v)]),
            ]
            data.update(size=comm[0], busbw=comm[1], kind=comm[3])
        return GridModel(cols, data=data, text_key="lane")  # filter by the stream shown

    def _collective_columns(self) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray] | None:
        """For communication kernels, the size and bus bandwidth of the collective each
        began (nccl-tests' definitions; blank where the trace does not say): (bytes, busbw,
        kinds, kind index per row), or None for other kernels."""
        an = self.session.shown_analyses()
        classes = self.session.classes
        if an is None or classes is None or not len(self.rows) or \
                not (classes[self.rows] == COMM).any():
            return None
        by = an.collectives_by_kernel()
        if by is None:
            return None
        size = np.full(len(self.rows), -1, np.int64)
        bw = np.full(len(self.rows), np.nan)
        kinds = [""]
        kind = np.zeros(len(self.rows), np.int64)
        for i, r in enumerate(self.rows.tolist()):
            c = by.get(r)
            if c is None:
                continue
            if c["bytes"] is not None:
                size[i] = c["bytes"]
            if c["busbw_gbps"] is not None:
                bw[i] = c["busbw_gbps"]
            if c["kind"] not in kinds:
                kinds.append(c["kind"])
            kind[i] = kinds.index(c["kind"])
        return size, bw, kinds, kind

    def title_text(self) -> Text:
        t = Text("instances of ", style="bold")
        t.append(safe_text(self.kernel_name, 60))
        t.append(" (⏎ shows one on the timeline, n/N step)", style="dim")
        return t

    def on_grid_chosen(self, event: Grid.Chosen) -> None:
        event.stop()
        self.post_message(GotoRows(self.rows, event.index))


# -------------------------------------------------------------------- overlap view
class Heatmap(Widget, can_focus=True):
    """Per device two lines of half-blocks: computation over communication busy, then
    overlapped over exposed communication; one column per time bin of [t0, t1)."""

    BINDINGS = [
        Binding("left,h", "cursor(-1)", "bin left", show=False),
        Binding("right,l", "cursor(1)", "bin right", show=False),
        Binding("shift+left", "cursor(-10)", show=False),
        Binding("shift+right", "cursor(10)", show=False),
        Binding("up", "device(-1)", "device up", show=False),
        Binding("down", "device(1)", "device down", show=False),
        Binding("w", "zoom(0.5)", "zoom in"),
        Binding("s", "zoom(2)", "zoom out"),
        Binding("a", "pan(-0.2)", "pan left", show=False),
        Binding("d", "pan(0.2)", "pan right", show=False),
        Binding("enter", "choose", "go to bin"),
    ]

    class Chosen(Message):
        def __init__(self, t0: int, t1: int, device: int) -> None:
            super().__init__()
            self.t0, self.t1, self.device = t0, t1, device

    class Moved(Message):
        pass

    def __init__(self, model: OverlapModel, t0: int, t1: int, palette: Palette,
                 end_ns: int, phases: LaunchPhases | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self.model = model
        self.phases = phases if phases else None
        self.palette = palette
        self.t0, self.t1 = int(t0), int(max(t1, t0 + 1))
        self.end_ns = max(end_ns, 1)
        self.col = -1  # cursor bin (-1: the middle, once the width is known)
        self.dev = 0  # cursor device (index into model.devices)
        self._bins: tuple[tuple, dict[int, np.ndarray], np.ndarray] | None = None
        self._fbins: tuple[tuple, dict[int, np.ndarray]] | None = None
        self._lines: LRU[Strip] = LRU(64)  # lines drawn, by all they depend on (on_resize)

    @property
    def ncols(self) -> int:
        return max(self.size.width - HEAT_LABEL, 1)

    @property
    def top(self) -> int:
        """Lines above the devices: the ruler, and the phases when the trace has any."""
        return 2 if self.phases is not None else 1

    def lines(self) -> int:
        return self.top + 1 + len(self.layout)

    @property
    def layout(self) -> list[tuple[int, int]]:
        """The device lines, in order: (device index, 0 comp/comm, 1 overlap/exposed, 2 the
        transfers in flight: hidden/exposed) — the third only where there are any."""
        flight = set(self.model.flight_devices())
        out = []
        for k, dc in enumerate(self.model.devices):
            out += [(k, 0), (k, 1)] + ([(k, 2)] if dc.device in flight else [])
        return out

    def get_content_height(self, container: Any, viewport: Any, width: int) -> int:
        return self.lines()

    def bins(self) -> tuple[dict[int, np.ndarray], np.ndarray]:
        key = (self.t0, self.t1, self.ncols)
        if self._bins is None or self._bins[0] != key:
            edges = bin_edges(self.t0, self.t1, self.ncols)
            self._bins = (key, self.model.bins(edges), edges)
        return self._bins[1], self._bins[2]

    def cursor_col(self) -> int:
        if self.size.width <= HEAT_LABEL:
            return 0  # not laid out yet: choose the middle once the width is known
        if self.col < 0 or self.col >= self.ncols:
            self.col = self.ncols // 2
        return self.col

    def cursor_bin(self) -> tuple[int, int]:
        _, edges = self.bins()
        c = self.cursor_col()
        return int(edges[c]), int(edges[c + 1])

    def render_line(self, y: int) -> Strip:
        # Textual composes a new screen several times over: draw each line once per state
        key = (y, self.t0, self.t1, self.size.width, self.cursor_col(), self.dev,
               self.has_focus)
        strip = self._lines.get(key)
        if strip is None:
            strip = self._lines.put(key, self._render_line(y))
        return strip

    def _render_line(self, y: int) -> Strip:
        width = self.size.width
        p = self.palette
        values, edges = self.bins()
        c_cur = self.cursor_col()
        if y == 0:
            cells = [" "] * self.ncols
            step = max(self.ncols // 4, 14)
            for c in range(0, self.ncols - 10, step):
                tick = fmt_tick(int(edges[c]), (self.t1 - self.t0) * step / self.ncols)
                # a label is shown whole or not at all: not where the cursor's ▼ falls on
                # its figures (the tick stays; ▼ on the tick itself leaves the label be),
                # nor where it would run into the next tick or past the right edge
                if c < c_cur <= c + len(tick) or len(tick) + 2 > step \
                        or c + 1 + len(tick) > self.ncols:
                    tick = ""
                for i, ch in enumerate("│" + tick):
                    cells[c + i] = ch
            cells[c_cur] = "▼"
            label = ("bin " + fmt_time(int(edges[1] - edges[0]))).ljust(HEAT_LABEL)[:HEAT_LABEL]
            return Strip([Segment(label, Style(color=p.ruler)),
                          Segment("".join(cells), Style(color=p.ruler))]
                         ).adjust_cell_length(width, Style())
        if y == 1 and self.phases is not None:
            return self._phase_line(width, edges)
        layout = self.layout
        i = y - self.top
        if i >= len(layout):
            if i == len(layout):
                return self._legend(width)
            return Strip([Segment(" " * width, Style())])
        k, half = layout[i]
        dc = self.model.devices[k]
        span = np.maximum(np.diff(edges), 1)
        colors = (p.comp, p.comm, p.hidden, p.exposed)
        names = SERIES
        if half == 2:  # in flight: hidden behind computation over exposed
            fb = self._flight_bins(edges)[dc.device]
            v = np.stack([fb[1], fb[1], fb[1], fb[0] - fb[1]])
            names = ("", "", "hid", "exposed")
        else:
            v = values[dc.device]
        frac = v / span
        top, bottom = (0, 1) if half == 0 else (2, 3)
        on = k == self.dev and self.has_focus
        label = f"GPU {dc.device} " if half == 0 else (
            "in flight " if half == 2 else " " * len(f"GPU {dc.device} "))
        segs = [Segment(label, Style(color=p.label, bold=on)),
                Segment("▀", Style(color=colors[top])),
                Segment(names[top][:7], Style(color=p.label)),
                Segment(" ▄", Style(color=colors[bottom])),
                Segment(names[bottom][:7], Style(color=p.label))]
        strip = Strip(segs).adjust_cell_length(HEAT_LABEL, Style())
        segs = list(strip)
        lt = [level(x) for x in frac[top].tolist()]
        lb = [level(x) for x in frac[bottom].tolist()]
        for c in range(self.ncols):
            st = half_block(p.heat_bg, colors[top], lt[c], colors[bottom], lb[c])
            if c == c_cur and on:
                st = st + Style(bold=True)
                segs.append(Segment("▌" if half == 0 else "▀", st))
            elif half == 2 and lt[c] == 0 and lb[c] == 0:
                segs.append(Segment(" ", Style(bgcolor=p.heat_bg)))
            else:
                segs.append(Segment("▀", st))
        return Strip(segs).adjust_cell_length(width, Style())

    def _flight_bins(self, edges: np.ndarray) -> dict[int, np.ndarray]:
        key = (self.t0, self.t1, self.ncols)
        if self._fbins is None or self._fbins[0] != key:
            self._fbins = (key, self.model.flight_bins(edges))
        return self._fbins[1]

    def _phase_line(self, width: int, edges: np.ndarray) -> Strip:
        """Under each bin, the phase whose launched kernels run in it on the cursor's GPU
        (communication first), named where it is wide enough; neighbouring phases on
        alternating shades."""
        p = self.palette
        assert self.phases is not None
        tr = self.phases.trace
        at = self.bin_phases(edges)
        label = "phase (by launch)" if len(self.model.devices) < 2 else \
            f"phase · GPU {self.model.devices[self.dev].device}"
        segs = [Segment(label.ljust(HEAT_LABEL)[:HEAT_LABEL], Style(color=p.label))]
        shade_k = 0
        for c0, n, r in runs(at):
            if r < 0:
                segs.append(Segment(" " * n, Style()))
                continue
            text = fit(safe_text(tr.name_of(r)), n) if n >= 3 else "▏" * n  # in cells
            st = cell(p.heat_bg, p.cpu, 2 + 2 * (shade_k % 2), p.label)
            shade_k += 1
            segs.append(Segment(text, st))
        return Strip(segs).adjust_cell_length(width, Style())

    def bin_phases(self, edges: np.ndarray, device_pos: int | None = None) -> np.ndarray:
        """The phase occurrence of each bin on a device (default: the cursor's), -1: none."""
        if self.phases is None or not self.model.devices:
            return np.full(len(edges) - 1, -1, np.int64)
        pos = self.dev if device_pos is None else device_pos
        return self.phases.bin_labels(self.model.devices[pos].device, edges)

    def top_kernel(self, t0: int, t1: int, cls: int) -> tuple[int, int]:
        """(row, ns inside) of the cursor GPU's ``cls`` kernel with the most time in
        [t0, t1); (-1, 0) if none runs."""
        if not self.model.devices:
            return -1, 0
        tr, classes = self.model.trace, self.model.classes
        du = self.model.devices[self.dev].unions
        parts = [tr.lanes[i].slices_in(t0, t1) for i in du.streams]
        rows = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        rows = rows[classes[rows] == cls] if len(rows) else rows
        if not len(rows):
            return -1, 0
        inside = np.minimum(tr.start[rows] + tr.dur[rows], t1) - np.maximum(tr.start[rows], t0)
        k = int(np.lexsort((rows, -inside))[0])
        return int(rows[k]), int(inside[k])

    def _legend(self, width: int) -> Strip:
        p = self.palette
        segs = [Segment("scale: 0 → 100% busy".ljust(HEAT_LABEL)[:HEAT_LABEL],
                        Style(color=p.ruler))]
        for name, color in zip(SERIES, (p.comp, p.comm, p.hidden, p.exposed)):
            segs.append(Segment(name + " ", Style(color=p.label)))
            for lvl in (1, 3, 5, 8):
                segs.append(Segment(" ", cell(p.heat_bg, color, lvl)))
            segs.append(Segment("  ", Style()))
        return Strip(segs).adjust_cell_length(width, Style())

    def info(self) -> Text:
        """The figures of the cursor's bin, as text (what the colours say, in numbers), then
        on a second line what ran in it on the cursor's GPU: the communication and the
        computation kernel with the most time there, each with the phase that launched it."""
        values, edges = self.bins()
        c = self.cursor_col()
        t0, t1 = int(edges[c]), int(edges[c + 1])
        t = Text(no_wrap=True, overflow="ellipsis")  # two lines, each cut to the width
        t.append(f"bin +{fmt_time(t0)} → +{fmt_time(t1)}", style="bold")
        for k, dc in enumerate(self.model.devices):
            if k != self.dev and len(self.model.devices) > 2:
                continue  # many GPUs: the one under the cursor
            v = values[dc.device][:, c]
            w = max(t1 - t0, 1)
            t.append(f"  GPU {dc.device}: ")
            t.append(" · ".join(f"{n} {100 * x / w:.0f}%" for n, x in zip(SERIES, v.tolist())))
            if dc.flight is not None:
                fb = self._flight_bins(edges)[dc.device][:, c]
                t.append(f" · in flight {100 * fb[0] / w:.0f}% ({100 * fb[1] / w:.0f}% hidden)")
        t.append("\n")
        tr = self.model.trace
        shown = False
        for cls, what in ((COMM, "comm"), (COMP, "comp")):
            row, ns = self.top_kernel(t0, t1, cls)
            if row < 0:
                continue
            owner = int(self.phases.owner_of(np.array([row]))[0]) if self.phases else -1
            t.append(f"{'  ' if shown else ''}{what} ", style="dim")
            t.append(safe_text(tr.name_of(owner) if owner >= 0 else NO_PHASE, 24),
                     style="bold")
            t.append(f" {safe_text(short_name(tr.name_of(row)), 40)} {fmt_time(ns)}")
            shown = True
        if not shown:
            t.append("no GPU work in this bin", style="dim")
        return t

    def records(self) -> tuple[list[str], list[list[Any]]]:
        """The bins as table rows (for export): one row per device and bin, times in µs, the
        phase whose kernels run in the bin on that device."""
        values, edges = self.bins()
        header = ["device", "start_us", "end_us", "phase"] + [f"{n}_us" for n in SERIES]
        flight = self._flight_bins(edges) if self.model.flight_devices() else {}
        if flight:  # the transfers in flight, and the part hidden behind computation
            header += ["in_flight_us", "in_flight_hidden_us"]
        tr = self.model.trace
        rows = []
        for k, dc in enumerate(self.model.devices):
            v = values[dc.device]
            fb = flight.get(dc.device)
            phase = self.bin_phases(edges, k)
            for c in range(len(edges) - 1):
                name = tr.name_of(int(phase[c])) if phase[c] >= 0 else ""
                rows.append([dc.device, int(edges[c]) / 1000, int(edges[c + 1]) / 1000, name]
                            + [int(x) / 1000 for x in v[:, c].tolist()]
                            + ([] if not flight else [0.0, 0.0] if fb is None else
                               [int(fb[0, c]) / 1000, int(fb[1, c]) / 1000]))
        return header, rows

    # ---------------------------------------------------------------- keys
    def action_cursor(self, delta: int) -> None:
        self.col = max(0, min(self.ncols - 1, self.cursor_col() + int(delta)))
        self.post_message(self.Moved())
        self.refresh()

    def action_device(self, delta: int) -> None:
        self.dev = max(0, min(len(self.model.devices) - 1, self.dev + int(delta)))
        self.post_message(self.Moved())
        self.refresh()

    def action_zoom(self, factor: float) -> None:
        a, b = self.cursor_bin()
        mid = (a + b) // 2
        span = self.t1 - self.t0
        new = int(min(max(span * float(factor), 1000), self.end_ns * 1.2))
        frac = (mid - self.t0) / span
        self.t0 = int(mid - frac * new)
        self.t1 = self.t0 + new
        self.post_message(self.Moved())
        self.refresh()

    def action_pan(self, fraction: float) -> None:
        d = int((self.t1 - self.t0) * float(fraction))
        self.t0 += d
        self.t1 += d
        self.post_message(self.Moved())
        self.refresh()

    def action_choose(self) -> None:
        t0, t1 = self.cursor_bin()
        dev = self.model.devices[self.dev].device if self.model.devices else -1
        self.post_message(self.Chosen(t0, t1, dev))

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    def on_resize(self) -> None:
        self._bins = None
        self._lines.maxsize = 2 * max(self.lines(), 1)  # this state's lines and the last's


def matrix_text(trace: Any, model: OverlapModel, device_pos: int, window: tuple[int, int],
                palette: Palette) -> Text:
    """The stream × stream matrix of one device in a window: the time both streams are
    busy (ms), shaded by its share of the less busy stream's time."""
    t = Text()
    if not model.devices:
        t.append("no GPU work", style="dim")
        return t
    pos = min(device_pos, len(model.devices) - 1)
    dc = model.devices[pos]
    lanes, m = model.matrix(pos, window)
    t.append(f"GPU {dc.device} streams · both busy, ms · +{fmt_time(window[0])} → "
             f"+{fmt_time(window[1])}", style="bold")
    t.append(" · shade: share of the less busy\n", style="dim")
    names = [f"s{trace.lanes[i].stream}" if trace.lanes[i].stream >= 0 else f"#{i}"
             for i in lanes]
    # as many decimals as leave a space between columns (a stream busy for 13 s reads
    # "13,117.5", not "13,117.500" run into its neighbour)
    top = int(m[:12, :12].max(initial=0)) / 1e6
    digits = next((d for d in (3, 2, 1) if len(f"{top:,.{d}f}") <= 9), 0)
    w = max(10, len(f"{top:,.{digits}f}") + 1)
    t.append(" " * 8 + "".join(pad(safe_text(n, w - 1), w, right=True) for n in names) + "\n",
             style="dim")
    diag = np.diag(m)
    for a, na in enumerate(names[:12]):
        t.append(pad(safe_text(na, 7), 8), style="dim")
        for b in range(len(names[:12])):
            v = int(m[a, b])
            base = min(int(diag[a]), int(diag[b]))
            share = v / base if base else 0.0
            st = cell(palette.heat_bg, palette.hidden if a != b else palette.other,
                      level(share), palette.label)
            t.append(f"{v / 1e6:,.{digits}f}".rjust(w), style=st)
        t.append("\n")
    if len(names) > 12:
        t.append(f"… {len(names) - 12} more streams\n", style="dim")
    return t


class OverlapScreen(Screen[None]):
    """Where communication hides behind computation, and where it does not."""

    HELP_TITLE = "overlap view"
    HELP_NOTES = [("< > ^r", "in the annotation table (tab reaches it): sort, reverse")]

    BINDINGS = [
        Binding("escape,q", "back", "back"),
        Binding("tab", "app.focus_next", "next panel", show=False),
        Binding("shift+tab", "app.focus_previous", "previous panel", show=False),
        Binding("e", "export", "export CSV"),
    ]
    DEFAULT_CSS = """
    OverlapScreen #ov-title { height: 1; background: $boost; }
    OverlapScreen Heatmap { height: auto; }
    OverlapScreen #ov-info { height: 2; text-wrap: nowrap; text-overflow: ellipsis; }
    OverlapScreen #ov-matrix { height: auto; max-height: 16; }
    OverlapScreen Grid { height: 1fr; min-height: 5; border-top: solid $primary; }
    OverlapScreen Heatmap:focus { background: $boost; }
    """

    def __init__(self, session: Session, model: OverlapModel,
                 annotations: list[dict[str, Any]], t0: int, t1: int, palette: Palette,
                 phases: LaunchPhases | None = None) -> None:
        super().__init__()
        self.session = session
        self.model = model
        self.phases = phases
        self.annotations = annotations
        self.palette = palette
        self.t0, self.t1 = t0, t1
        self._matrix_key: tuple[int, int, int] | None = None
        self._matrix_lines = -1

    def compose(self) -> ComposeResult:
        tr = self.session.trace
        assert tr is not None
        yield Static(id="ov-title")
        yield Heatmap(self.model, self.t0, self.t1, self.palette, tr.end_ns, self.phases,
                      id="heatmap")
        yield Static(id="ov-info")
        yield Static(id="ov-matrix")
        yield Grid(GridModel(ANNOTATION_COLUMNS, annotation_rows(self.annotations)), "total_us",
                   cursor_bg=self.palette.cursor_bg, id="ov-table")
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one(Heatmap).focus()
        self.refresh_panels()

    def show_window(self, t0: int, t1: int) -> None:
        """Open (again) on [t0, t1): the timeline's view or marked range."""
        self.t0, self.t1 = t0, t1
        if self.is_mounted:
            hm = self.heatmap
            hm.focus()
            if (hm.t0, hm.t1) != (t0, t1):
                hm.t0, hm.t1 = int(t0), int(max(t1, t0 + 1))
                hm.col = -1
                hm.refresh()
            self.refresh_panels()

    @property
    def heatmap(self) -> Heatmap:
        return self.query_one(Heatmap)

    def refresh_panels(self) -> None:
        hm = self.heatmap
        t = Text("overlap", style="bold")
        t.append(f"  {fmt_time(hm.t0)} → {fmt_time(hm.t1)}  ←/→ bin  ↑/↓ GPU  "
                 "tab: annotations", style="dim")
        # one line each: a layout pass would repaint the whole screen for nothing
        self.query_one("#ov-title", Static).update(t, layout=False)
        self.query_one("#ov-info", Static).update(hm.info(), layout=False)
        key = (hm.dev, hm.t0, hm.t1)
        if key != self._matrix_key:  # the matrix follows the window and GPU, not the bin
            self._matrix_key = key
            text = matrix_text(self.session.trace, self.model, hm.dev, (hm.t0, hm.t1), self.palette)
            lines = text.plain.count("\n")
            self.query_one("#ov-matrix", Static).update(text, layout=lines != self._matrix_lines)
            self._matrix_lines = lines

    def on_heatmap_moved(self, _: Heatmap.Moved) -> None:
        self.refresh_panels()

    def on_heatmap_chosen(self, event: Heatmap.Chosen) -> None:
        self.post_message(GotoRange(event.t0, event.t1))

    def on_grid_chosen(self, event: Grid.Chosen) -> None:
        event.stop()
        a = self.annotations[event.index]
        if a["source"] == "none":  # (no phase): the GPU work no phase launched
            self.post_message(ShowUnattributed())
            return
        self.post_message(GotoAnnotation(a["name"], a["source"]))

    def on_resize(self) -> None:
        self.call_after_refresh(self.refresh_panels)

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_export(self) -> None:
        """The heatmap's bins when it has the focus, else the annotation table."""
        hm = self.heatmap
        if hm.has_focus:
            header, rows = hm.records()
            self.post_message(ExportRows("overlap-bins", header, rows))
            return
        header, rows = self.query_one(Grid).visible_records()
        self.post_message(ExportRows("annotations", header, rows))
