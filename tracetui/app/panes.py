"""The everyday panes of a fresh profile (what TensorBoard's profiler plugin showed): the step
breakdown (``b``), the operators (``u``) and the modules (``M``), each a table screen built
from its :class:`~tracetui.tables.TableDef`, so the app shows what ``summary`` prints.

- Steps: one stacked bar per step (by role, the slowest marked) above the table; ``⏎``
  frames the step on the timeline.
- Operators: by name, or (``^t``) by name and input shapes (their args re-read from the file
  once, in a worker); ``⏎`` lists the occurrences, slowest first, with their shapes; ``⏎``
  there goes to one on the timeline.
- Modules: the instance paths as a tree (``→``/``←`` open and close a module), or (``^t``)
  per module type; ``⏎`` lists the calls.

Every name is drawn as plain text after ``safe_text``.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.strip import Strip
from textual.widget import Widget

from ..analysis.flops import has_formula, op_cost
from ..analysis.modules import SEP, ModuleFrames, module_paths, module_type, module_types
from ..analysis.operators import input_shapes, occurrence_positions, operator_shape_table
from ..analysis.steps import ROLE_TITLES, ROLES
from ..tables import MODULE_TYPES, MODULES, OPERATOR_SHAPES, OPERATORS, STEPS, TableDef
from ..textutil import fit, safe_text
from .busy import counted
from .grid import Column, Grid, GridModel, fmt_ns_ms, grid_columns
from .messages import GotoRange, GotoRows, ShowOccurrences
from .session import Analyses, Session
from .themes import Palette
from .views import TableScreen


def called_from(trace: Any, row: int, python_cats: Any) -> str:
    """Where in the user's code slice ``row`` was called: the innermost Python frame around
    it that is not a built-in, a module's ``forward`` wrapper (``nn.Module: …``) or
    PyTorch's own code (``torch/…``); else the innermost frame that is not a built-in
    ("" when there is none)."""
    first = ""
    p = trace.parent_of(row)
    while p >= 0:
        if int(trace.cat[p]) in python_cats:
            name = trace.name_of(p)
            if not name.startswith(("<built-in", "nn.Module: ")):
                if "torch/" not in name and "/site-packages/" not in name:
                    return name
                first = first or name
        p = trace.parent_of(p)
    return first


class DefTableScreen(TableScreen):
    """A table screen of one :class:`TableDef`'s rows."""

    tdef: TableDef = OPERATORS

    def __init__(self, session: Session, an: Analyses, palette: Palette) -> None:
        super().__init__()
        self.session, self.an, self.palette = session, an, palette
        self.what = self.tdef.what

    def records(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    def model(self) -> GridModel:
        return GridModel(grid_columns(self.tdef), self.records(), text_key="name")

    def make_grid(self) -> Grid:
        return Grid(self.model(), self.tdef.sort or None, descending=self.tdef.descending,
                    cursor_bg=self.palette.cursor_bg)

    def compose(self) -> ComposeResult:
        yield from self.compose_table(self.make_grid())

    def title_text(self) -> Text:
        t = Text(self.tdef.what, style="bold")
        if self.tdef.enter:
            t.append(f" (⏎ {self.tdef.enter})", style="dim")
        return t


# ------------------------------------------------------------------------------- steps
def role_colors(palette: Palette) -> list[str]:
    """A colour per role of :data:`ROLES`."""
    return [palette.comp, palette.mem, "#d7875f", palette.comm, "#af87ff", palette.exposed,
            palette.cpu, palette.other]


class StepBars(Widget):
    """One stacked bar per step (by role), the step under the table's cursor highlighted,
    the slowest marked; a legend on the first line."""

    DEFAULT_CSS = "StepBars { height: auto; max-height: 12; }"

    def __init__(self, rows: list[dict[str, Any]], palette: Palette) -> None:
        super().__init__()
        self.rows, self.palette = rows, palette
        self.role_colours = role_colors(palette)
        durs = [float(r["dur_us"]) for r in rows]
        self.longest = max(durs, default=0.0)
        self.slowest = int(np.argmax(durs)) if durs else -1
        self.cursor = 0
        self.tail_w = max((len(self._tail(j)) for j in range(len(rows))), default=0)

    def get_content_height(self, container: Any, viewport: Any, width: int) -> int:
        return min(len(self.rows), 10) + 1

    def show(self, index: int) -> None:
        self.cursor = index
        self.refresh()

    def _tail(self, i: int) -> str:
        r = self.rows[i]
        tail = f" {float(r['dur_us']) / 1000:,.3f} ms"
        if i == self.slowest:
            tail += " ◀ slowest"
        if r.get("cut_off"):
            tail += " ⚠ cut off"
        return tail

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if y == 0:
            segs = []
            for title, color in zip(ROLE_TITLES, self.role_colours):
                segs += [Segment("■", Style(color=color)), Segment(f" {title}  ")]
            return Strip(segs).crop(0, width).extend_cell_length(width)
        shown = min(len(self.rows), 10)
        top = min(max(self.cursor - shown // 2, 0), max(len(self.rows) - shown, 0))
        i = top + y - 1
        if i >= len(self.rows) or y > shown:
            return Strip.blank(width)
        r = self.rows[i]
        label_w = min(18, max(8, width // 5))
        tail = self._tail(i)
        # one scale for every bar: the room the longest tail leaves
        bar_w = max(width - label_w - 1 - self.tail_w, 4)
        scale = bar_w / self.longest if self.longest > 0 else 0.0
        bg = Style(bgcolor=self.palette.cursor_bg) if i == self.cursor else Style()
        segs = [Segment(fit(safe_text(r["name"]), label_w, cut="middle") + " ", bg)]
        used = 0
        acc = 0.0
        for role, color in zip(ROLES, self.role_colours):
            acc += float(r[f"{role}_us"]) * scale
            cells = int(round(acc)) - used
            if cells > 0:
                segs.append(Segment("█" * cells, Style(color=color)))
                used += cells
        segs.append(Segment(" " * max(bar_w - used, 0)))
        segs.append(Segment(tail, bg + Style(bold=i == self.slowest)))
        return Strip(segs).crop(0, width).extend_cell_length(width)


class StepScreen(DefTableScreen):
    """The step breakdown: bars and table; ⏎ frames the step on the timeline."""

    tdef = STEPS

    def records(self) -> list[dict[str, Any]]:
        rows = list(self.an.step_rows)
        return rows

    def compose(self) -> ComposeResult:
        grid = self.make_grid()
        self.bars = StepBars(self.an.step_rows, self.palette)
        self.grid = grid
        from textual.widgets import Input, Static

        from .keybar import KeyBar

        yield Static(id="title")
        yield self.bars
        yield Input(placeholder="filter: part of a name", id="filter", select_on_focus=False)
        yield grid
        yield KeyBar()

    def title_text(self) -> Text:
        steps = self.an.steps
        t = Text("steps", style="bold")
        if steps.source == "whole trace":
            t.append(" · no ProfilerStep#N: the whole trace is one step", style="yellow")
        else:
            t.append(f" · {len(steps)} ({safe_text(steps.source, 40)})", style="dim")
        t.append(" (⏎ frames it on the timeline)", style="dim")
        return t

    def on_grid_moved(self, _: Grid.Moved) -> None:
        if self.grid is not None and hasattr(self, "bars"):
            self.bars.show(max(self.grid.current, 0))

    def on_grid_chosen(self, event: Grid.Chosen) -> None:
        event.stop()
        st = self.an.steps
        i = event.index
        self.post_message(GotoRange(int(st.start[i]), int(st.end[i])))


# --------------------------------------------------------------------------- operators
class OperatorScreen(DefTableScreen):
    """The operators by name, or by name and input shapes (``^t``)."""

    tdef = OPERATORS
    BINDINGS = TableScreen.BINDINGS + [Binding("ctrl+t", "toggle_shapes",
                                               "by name / by input shapes", key_display="^t")]

    def __init__(self, session: Session, an: Analyses, palette: Palette) -> None:
        super().__init__(session, an, palette)
        self.shapes: list[dict[str, Any]] | None = None
        self.by_shape = False

    def records(self) -> list[dict[str, Any]]:
        return self.shapes if self.by_shape and self.shapes is not None else self.an.operators

    def model(self) -> GridModel:
        # (whether the rows by name had their FLOPs: built ahead, the screen may be
        # mounted only after they came)
        self._with_perf = self.an.perf_ready
        return super().model()

    def on_mount(self) -> None:
        super().on_mount()
        if not getattr(self, "_with_perf", True):  # the FLOPs columns fill in once read
            self._perf_timer = self.set_interval(0.5, self._perf_check)

    def _perf_check(self) -> None:
        if self.an.perf_ready:
            self._perf_timer.stop()
            g = self.grid
            if not self.by_shape and g is not None and not self._with_perf:
                at = g.cursor
                self._show()
                g.action_move(at - g.cursor)  # (the same row: the order is the same)
            else:
                self.update_title()

    def title_text(self) -> Text:
        t = Text("operators", style="bold")
        t.append(" by input shapes" if self.by_shape else " by name", style="dim")
        if self.by_shape and self.shapes is None:
            t.append(" · reading the ops' shapes from the file…", style="yellow")
        elif not self.an.perf_ready:
            t.append(" · reading FLOPs from the file…", style="yellow")
        t.append(" (⏎ its occurrences; ^t by shapes/name)", style="dim")
        return t

    def action_toggle_shapes(self) -> None:
        self.by_shape = not self.by_shape
        if self.by_shape and self.shapes is None:
            self.update_title()
            self._read_shapes()
            return
        self._show()

    def _show(self) -> None:
        assert self.grid is not None
        self.tdef = OPERATOR_SHAPES if self.by_shape else OPERATORS
        text = self.grid.filter_text
        self.grid.set_model(self.model(), self.tdef.sort)
        if text:
            self.grid.set_filter(text)
        self.update_title()

    @work(thread=True, exclusive=True, group="shapes")
    @counted
    def _read_shapes(self) -> None:
        rows = operator_shape_table(self.an.trace, self.an.op_tree, self.an.peaks)
        self.app.call_from_thread(self._shapes_read, rows)

    def _shapes_read(self, rows: list[dict[str, Any]]) -> None:
        self.shapes = rows
        if self.by_shape:
            self._show()

    def show_operator(self, name: str) -> None:
        """The cursor on operator ``name``'s row of the table by name (filter cleared)."""
        if self.by_shape:
            self.by_shape = False
            if self.grid is not None:
                self._show()
        g = self.grid
        if g is None:
            return
        if g.filter_text:
            g.set_filter("")
        idx = next((i for i, r in enumerate(self.an.operators) if r["name"] == name), None)
        if idx is not None:
            hit = np.flatnonzero(g.order == idx)
            if len(hit):
                g.action_move(int(hit[0]) - g.cursor)
        self.update_title()

    def on_grid_chosen(self, event: Grid.Chosen) -> None:
        event.stop()
        rec = self.records()[event.index]
        tree = self.an.op_tree
        pos = occurrence_positions(self.an.trace, tree, rec["name"])
        if self.by_shape:
            want = (rec.get("input_dims"), rec.get("input_types"))
            keep = {r for r, d, t in input_shapes(self.an.trace, tree.rows[pos])
                    if (d, t) == want}
            pos = pos[np.isin(tree.rows[pos], np.array(sorted(keep), np.int64))]
        self.post_message(ShowOccurrences(rec["name"], tree.rows[pos],
                                          {"self": tree.host_self[pos],
                                           "dev": tree.device_total[pos]},
                                          analyses=self.an))


class OccurrenceScreen(TableScreen):
    """The occurrences of one operator or module, slowest first: start, host time, self,
    device total, thread, input shapes (read from the file for the first few hundred);
    ⏎ goes to one on the timeline. One screen, kept and built ahead: each operator's or
    module's occurrences are a new model in it (:meth:`show`), not a new screen."""

    SHAPES_READ = 300
    # the scrollbar always there: a kept screen shown with other rows does not lay itself
    # out again when it comes or goes (two whole frames, 25-35 ms each at 120x40)
    DEFAULT_CSS = "OccurrenceScreen Grid { overflow-y: scroll; }"

    def __init__(self, session: Session, an: Analyses, palette: Palette) -> None:
        super().__init__()
        self.session, self.an, self.palette = session, an, palette
        self.what = "occurrences"
        none = np.zeros(0, np.int64)
        self._set("", none, {"self": none, "dev": none}, True)

    def _set(self, name: str, rows: np.ndarray, figures: dict[str, np.ndarray],
             shapes: bool) -> None:
        self.op_name, self.shapes = name, shapes
        self.rows = np.asarray(rows, np.int64)
        self.figures = figures
        self.dims: dict[int, str] = {}
        self.tflops: dict[int, str] = {}  # achieved, where the op has a FLOPs formula
        self.called: dict[int, str] = {}  # the Python frame around each (with_stack traces)
        self._asked = getattr(self, "_asked", 0) + 1  # what a late reader brings is dropped

    def show(self, name: str, rows: np.ndarray, figures: dict[str, np.ndarray],
             shapes: bool = True) -> None:
        """Operator (or module) ``name``'s occurrences ``rows``, slowest first; ``figures``:
        their self and device total times (``self``, ``dev``); ``shapes``: read their input
        shapes (and calling frames) from the file."""
        self._set(name, rows, figures, shapes)
        if self.grid is not None and self.is_mounted:
            self.new_model(self._model(), "dur")
            if self.shapes and len(self.rows):
                self._read_dims(self._asked)

    def _model(self) -> GridModel:
        tr = self.an.trace
        lanes = tr.lane_index(self.rows) if len(self.rows) else np.zeros(0, np.int64)
        lane_names = [ln.name for ln in tr.lanes]
        cols = [
            Column("start ms", "start", 12, fmt=fmt_ns_ms),
            Column("host µs", "dur", 11, fmt=lambda v: f"{float(v) / 1000:,.1f}"),
            Column("self µs", "self", 10, fmt=lambda v: f"{float(v) / 1000:,.1f}"),
            Column("dev total µs", "dev", 12, fmt=lambda v: f"{float(v) / 1000:,.1f}"),
            Column("input dims", "dims", 0, numeric=False, min_width=12, optional=1,
                   fmt=lambda v: self.dims.get(int(v), "…" if self.dims else "")),
            # (cut in the middle: the thread id at its end tells a backward thread apart)
            Column("thread", "lane", 16, numeric=False, fmt=lambda v: lane_names[int(v)],
                   optional=2, cut="middle"),
        ]
        if self.shapes and has_formula(self.op_name):  # its FLOPs over its device time
            cols.insert(4, Column("TFLOP/s", "tflops", 9, optional=4,
                                  fmt=lambda v: self.tflops.get(int(v), "")))
        if self.an.trace.python_cats and self.shapes:  # with_stack: where in the code
            cols.insert(5, Column("called from", "called", 24, numeric=False, optional=3,
                                  cut="middle", fmt=lambda v: self.called.get(int(v), "")))
        if not self.shapes:  # (a module's calls: no input shapes; the thread takes the room)
            cols = cols[:4] + [Column("thread", "lane", 0, numeric=False, min_width=12,
                                      fmt=lambda v: lane_names[int(v)])]
        data = {"start": tr.start[self.rows], "dur": tr.dur[self.rows],
                "self": self.figures["self"], "dev": self.figures["dev"],
                "dims": self.rows, "lane": lanes, "called": self.rows, "tflops": self.rows}
        return GridModel(cols, data=data, text_key="dims" if self.shapes else "lane")

    def compose(self) -> ComposeResult:
        yield from self.compose_table(Grid(self._model(), "dur",
                                           cursor_bg=self.palette.cursor_bg))

    def on_mount(self) -> None:
        super().on_mount()
        if self.shapes and len(self.rows):
            self._read_dims(self._asked)

    @work(thread=True, group="dims")
    @counted
    def _read_dims(self, asked: int) -> None:
        """The input shapes (and, with_stack, the calling frames) of the slowest few
        hundred, handed over at once: one repaint of the table, not two."""
        tr = self.an.trace
        rows = self.rows
        order = rows[np.argsort(-tr.dur[rows], kind="stable")][:self.SHAPES_READ]
        dev = dict(zip(rows.tolist(), np.asarray(self.figures["dev"]).tolist()))
        dims: dict[int, str] = {}
        tflops: dict[int, str] = {}
        for r, d, _, args in input_shapes(tr, order, with_args=True):
            dims[r] = d
            cost = op_cost(tr.name_of(r), args)
            if cost is not None and dev.get(r, 0) > 0:
                tflops[r] = f"{cost.flops / (dev[r] / 1e9) / 1e12:,.2f}"
        py = tr.python_cats
        called = {int(r): called_from(tr, int(r), py) for r in order.tolist()} \
            if py and asked == self._asked else {}
        self.app.call_from_thread(self._dims_read, dims, called, asked, tflops)

    def _dims_read(self, dims: dict[int, str], called: dict[int, str], asked: int,
                   tflops: dict[int, str] | None = None) -> None:
        if asked != self._asked:  # another operator's, asked for before this one
            return
        self.dims = dims or {-1: ""}
        self.tflops = tflops or {}
        self.called = called
        if self.grid is not None:
            self.grid._lower = None  # the filter searches the shapes now
            self.grid.values_changed()

    def title_text(self) -> Text:
        t = Text("occurrences of ", style="bold")
        t.append(safe_text(self.op_name, 60))
        t.append(f" · {len(self.rows):,} (⏎ shows one on the timeline)", style="dim")
        return t

    def on_grid_chosen(self, event: Grid.Chosen) -> None:
        event.stop()
        if self.an is not self.session.pane_analyses():
            self.notify("these are of a timeline no longer shown: open the operator again",
                        timeout=4, markup=False)
            return
        tr = self.an.trace
        o = np.argsort(tr.start[self.rows], kind="stable")
        in_time = self.rows[o]
        at = int(np.flatnonzero(in_time == self.rows[event.index])[0])
        self.post_message(GotoRows(in_time, at))


# ----------------------------------------------------------------------------- modules
class ModuleScreen(DefTableScreen):
    """The module tree (instance paths; → opens, ← closes) or the module types (``^t``)."""

    tdef = MODULES
    BINDINGS = TableScreen.BINDINGS + [
        Binding("ctrl+t", "toggle_types", "tree / by type", key_display="^t"),
        Binding("right", "open(True)", "open", key_display="→"),
        Binding("left", "open(False)", "close", key_display="←"),
    ]

    def __init__(self, session: Session, an: Analyses, palette: Palette) -> None:
        super().__init__(session, an, palette)
        mf = an.module_frames
        self.paths = module_paths(an.trace, mf)
        self.types = module_types(an.trace, mf)
        self.by_type = False
        # open: the paths whose children show (at first the top two levels)
        self.opened = {r["name"] for r in self.paths if r["depth"] < 1}

    def records(self) -> list[dict[str, Any]]:
        if self.by_type:
            return self.types
        out = []
        for r in self.paths:
            parent = r["name"].rsplit(SEP, 1)[0] if SEP in r["name"] else None
            if parent is not None and not self._all_open(parent):
                continue
            kids = any(p["name"].startswith(r["name"] + SEP) for p in self.paths)
            mark = ("▾ " if r["name"] in self.opened else "▸ ") if kids else "  "
            out.append({**r, "name": "  " * r["depth"] + mark + r["module"],
                        "path": r["name"]})
        return out

    def _all_open(self, path: str) -> bool:
        parts = path.split(SEP)
        return all(SEP.join(parts[:k]) in self.opened for k in range(1, len(parts) + 1))

    def model(self) -> GridModel:
        tdef = MODULE_TYPES if self.by_type else MODULES
        return GridModel(grid_columns(tdef), self.records(), text_key="name")

    def make_grid(self) -> Grid:
        return Grid(self.model(), "", descending=False, cursor_bg=self.palette.cursor_bg)

    def title_text(self) -> Text:
        t = Text("modules", style="bold")
        if not self.paths:
            t.append(" · no nn.Module frames in this trace (profile with with_stack=True or "
                     "with_modules=True)", style="yellow")
            return t
        t.append(" by type" if self.by_type else " tree (→ open, ← close)", style="dim")
        t.append(" (⏎ its calls; ^t tree/by type)", style="dim")
        return t

    def _refresh_rows(self, keep_path: str | None = None) -> None:
        assert self.grid is not None
        recs = self.records()
        self.grid.set_model(self.model(), MODULE_TYPES.sort if self.by_type else "",
                            descending=self.by_type)
        if keep_path is not None:
            idx = next((i for i, r in enumerate(recs) if r.get("path") == keep_path), None)
            if idx is not None:
                hit = np.flatnonzero(self.grid.order == idx)
                if len(hit):
                    self.grid.action_move(int(hit[0]) - self.grid.cursor)
        self.update_title()

    def action_toggle_types(self) -> None:
        self.by_type = not self.by_type
        self._refresh_rows()

    def action_open(self, open_: bool) -> None:
        if self.by_type or self.grid is None or self.grid.current < 0:
            return
        rec = self.records()[self.grid.current]
        path = rec["path"]
        if open_:
            self.opened.add(path)
        elif path in self.opened:
            self.opened.discard(path)
        elif SEP in path:  # a closed one: close its parent, and stand on it
            path = path.rsplit(SEP, 1)[0]
            self.opened.discard(path)
        self._refresh_rows(path)

    def on_grid_chosen(self, event: Grid.Chosen) -> None:
        event.stop()
        rec = self.records()[event.index]
        mf: ModuleFrames = self.an.module_frames
        if self.by_type:
            pick = [i for i, n in enumerate(mf.names) if module_type(n) == rec["name"]]
        else:
            pick = [i for i, p in enumerate(mf.paths) if p == rec["path"]]
        idx = np.array(pick, np.int64)
        figures = {"self": mf.host_self[idx], "dev": mf.device_total[idx]}
        rows = mf.rows[idx]
        o = np.argsort(-self.an.trace.dur[rows], kind="stable")
        self.post_message(ShowOccurrences(rec.get("path", rec["name"]), rows[o],
                                          {k: v[o] for k, v in figures.items()}, shapes=False,
                                          analyses=self.an))


def pane_screens() -> Sequence[type]:
    return (StepScreen, OperatorScreen, ModuleScreen)
