"""The timeline widget: lanes as rows of characters, drawn with Textual's Line API.

Each frame asks :func:`tracetui.trace.frame.render` for the visible rows only (prefix sums:
the cost does not grow with the trace), caches the result, and turns each row into one Strip:
a label column, then per column a block glyph for how busy the bin is, slice names where a
slice is wide enough, colour by class. Names are drawn as plain text segments (never markup),
after control characters are made visible.
"""

from __future__ import annotations

import os
from itertools import groupby
from typing import TYPE_CHECKING, Callable

import numpy as np
from rich.cells import cell_len, set_cell_size
from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from ..analysis.inflight import family
from ..analysis.kernels import short_name
from ..analysis.rules import COMM, COMP, MEM, NOT_GPU
from ..tables import fmt_size
from ..textutil import fmt_tick, fmt_time, safe_text
from ..trace import LANE_CPU, Trace
from ..trace.frame import MAX_LANE_ROWS, Frame, Row, counter_levels, default_rows, render
from .heat import half_block, level
from .cache import LRU
from .labels import lane_labels, middle
from .themes import Palette

if TYPE_CHECKING:
    from ..analysis.memory import DeviceCurve
    from ..analysis.window import OverlapModel

BLOCKS = " ▁▂▃▄▅▆▇█"
BLANK = Style()  # every segment has a style: Textual's NO_COLOR filter needs one
LABEL_WIDTH = 24  # the label column at 100 columns and below; it widens with the terminal
STRIP_FRAMES = 2  # rows kept drawn: this many frames' worth (now and the one before)
REVEAL_CELLS = 6  # a jump to a slice narrower than this many cells zooms in on it
MIN_SPAN_NS = 100  # the closest zoom (a trace's times are whole ns at best)
#: Under NO_COLOR the class of a slice shows in its glyph (colour does, otherwise)
CLASS_GLYPH = {COMP: "█", COMM: "▓", MEM: "▒"}
OTHER_GLYPH = "░"
BOUNDARY = "▉"  # a slice's last cell when the next slice follows at once: a thin gap
HIT_GLYPH = "▀"  # a search hit's full cells: the hit colour over the class colour
SELECTED_MONO = Style(reverse=True, bold=True)
_BLOCK_CHARS = np.array(list(BLOCKS), dtype="<U1")
#: full-cell glyph by class + 1 (no class, computation, communication, memory, other)
_CLASS_CHARS = np.array([OTHER_GLYPH, CLASS_GLYPH[COMP], CLASS_GLYPH[COMM], CLASS_GLYPH[MEM],
                         OTHER_GLYPH], dtype="<U1")


def fit_cells(text: str, width: int) -> str:
    """``text`` in at most ``width`` terminal cells (a wide character takes two): cut at
    its end with "…" if it needs more."""
    if cell_len(text) <= width:
        return text
    out = text
    while out and cell_len(out) > max(width - 1, 0):
        out = out[:-1]
    return out + "…" if width > 0 else ""


def slice_label(name: str, width: int) -> str:
    """A slice's name in ``width`` cells: shortened in the middle when there is room for
    both ends to mean something, else its start and "…"."""
    if len(name) <= width:
        return name
    if width >= 12:
        return middle(name, width)
    return name[: max(width - 1, 0)] + "…"


def memory_cells(c: "DeviceCurve", edges: np.ndarray,
                 bins: tuple[np.ndarray, np.ndarray | None], rows: int,
                 level: int) -> tuple[np.ndarray, np.ndarray, int]:
    """One row of a device's memory chart ``rows`` rows high (``level`` 0: the bottom),
    from its :meth:`DeviceCurve.bins` over ``edges``: per column the eighths of the cell the
    most allocated fills, whether reserved memory shows behind it, and the peak's column
    (-1: not in view). The timeline's memory rows and the memory view's chart draw this."""
    alloc, reserved = bins
    scale = 8.0 * rows / c.top
    base = 8.0 * level
    fill = np.clip(np.round(np.nan_to_num(alloc * scale, nan=-1.0) - base), 0, 8
                   ).astype(np.int64)
    band = np.zeros(len(fill), bool) if reserved is None else \
        np.nan_to_num(reserved * scale, nan=-1.0) > base + fill
    band &= fill < 8
    peak = int(np.searchsorted(edges, c.peak_ts, side="right")) - 1 \
        if edges[0] <= c.peak_ts < edges[-1] else -1
    return fill, band, peak


class Timeline(ScrollView, can_focus=True):
    """Rows of (lane, depth); a time window [t0, t1); a cursor row and a selected slice."""

    # arrows: the scroll container's own bindings would scroll instead of moving the cursor
    BINDINGS = [
        Binding("up", "cursor(-1)", "lane up", show=False),
        Binding("down", "cursor(1)", "lane down", show=False),
        Binding("left", "pan_view(-0.2)", "pan left", show=False),
        Binding("right", "pan_view(0.2)", "pan right", show=False),
        Binding("pageup", "cursor(-10)", "ten rows up", show=False),
        Binding("pagedown", "cursor(10)", "ten rows down", show=False),
    ]

    class Selected(Message):
        def __init__(self, row: int) -> None:
            super().__init__()
            self.row = row

    t0: reactive[int] = reactive(0, layout=False)
    t1: reactive[int] = reactive(1, layout=False)

    def __init__(self, palette: Palette | None = None,
                 on_select: Callable[[int], None] | None = None, **kw) -> None:
        super().__init__(**kw)
        #: called at once on a selection (its screen updates land in the same frame as the
        #: timeline's); without it, a Selected message is posted
        self.on_select = on_select
        self.trace: Trace | None = None
        self.classes_of: np.ndarray | None = None
        self._rows: list[Row] = []
        self._rows_gen = 0  # bumped with every new list of rows: frames and strips depend on it
        self.cursor = 0  # index into rows
        self.selected = -1  # slice row in the trace, or -1
        self._matches: np.ndarray = np.zeros(0, np.int64)  # search hits (slice rows)
        self._matches_sorted: np.ndarray = self._matches
        self._match_starts: np.ndarray = np.zeros(0, np.int64)
        self._matches_version = 0
        self.moved = False  # the user zoomed, panned or selected
        self.collapsed: set[int] = set()  # lanes shown as their top row only
        #: Python frames (with_stack=True) folded away: a lane's rows are the depths of its
        #: ops, runtime calls and annotations; ``unfolded`` lanes show them anyway (a
        #: selected frame opens its lane)
        self.fold_python = True
        self.unfolded: set[int] = set()
        self.label_extra = 0  # cells the user added to (or took from) the label column
        self._labels: LRU[list[str]] = LRU(8)  # lane labels per (trace, lanes, width)
        self.palette = palette or Palette()
        self._frame: Frame | None = None
        self._frame_key: tuple | None = None
        self._styles: dict[str, Style] = {}
        self._shades: dict[str, str] = {}
        self._run_style_cache: dict[tuple, dict[tuple[int, int], Style]] = {}
        # rows drawn, by all they depend on: the frame (trace, window, widths, rows shown),
        # the row, the cursor, the selection, the hits; a few frames' worth (on_resize)
        self._strips: LRU[Strip] = LRU(STRIP_FRAMES * 40)
        self.show_overlap = False  # a row of overlap bins per device
        self.overlap_model: OverlapModel | None = None  # set by the app once computed
        self._overlap_bins: tuple[tuple, dict[int, np.ndarray]] | None = None
        self._flight_bins: tuple[tuple, dict[int, np.ndarray]] | None = None
        self.range: tuple[int, int] | None = None  # the marked range, shaded on the ruler
        #: each device's memory curve (memory events): two rows each, under its lanes
        self.memory_curves: list[DeviceCurve] = []
        self._memory_bins: dict[int, tuple] = {}

    @property
    def matches(self) -> np.ndarray:
        return self._matches

    @matches.setter
    def matches(self, rows: np.ndarray) -> None:
        """Search hits or instances to step through (any order; kept in row order, and
        stepped through in time order by :meth:`step_match`)."""
        rows = np.asarray(rows, np.int64)
        if len(rows) > 1 and not (rows[1:] > rows[:-1]).all():
            rows = np.unique(rows)
        self._matches = rows
        self._matches_sorted = rows  # membership by binary search when drawing
        self._match_starts = self.trace.start[rows] if self.trace is not None and len(rows) \
            else np.zeros(0, np.int64)
        self._matches_version += 1  # rows drawn before show the old hits

    def first_match(self, mask: np.ndarray | None = None, after: int | None = None) -> int:
        """The earliest match (by start, then row) among ``mask`` and, with ``after``,
        starting at or after that time; -1 if none. One vectorised pass, no sort: search
        hits can be millions."""
        starts = self._match_starts
        ok = np.ones(len(starts), bool) if mask is None else mask.copy()
        if after is not None:
            ok &= starts >= after
        idx = np.flatnonzero(ok)
        if not len(idx):
            return -1
        return int(self._matches[idx[np.argmin(starts[idx])]])

    def step_match(self, direction: int) -> int:
        """The next (or previous) match in time from the selection (or the view's start),
        wrapping around; -1 without matches."""
        rows, starts = self._matches, self._match_starts
        if not len(rows) or self.trace is None:
            return -1
        if self.selected >= 0:
            s0, r0 = int(self.trace.start[self.selected]), self.selected
        else:
            s0, r0 = (self.t0, -1) if direction > 0 else (self.t0, len(self.trace.start))
        if direction > 0:
            ok = (starts > s0) | ((starts == s0) & (rows > r0))
            if not ok.any():
                ok[:] = True  # wrap to the first
            idx = np.flatnonzero(ok)
            return int(rows[idx[np.argmin(starts[idx])]])
        ok = (starts < s0) | ((starts == s0) & (rows < r0))
        if not ok.any():
            ok[:] = True  # wrap to the last
        idx = np.flatnonzero(ok)
        sub = starts[idx]
        last = idx[sub == sub.max()]
        return int(rows[last[-1]])

    def is_match(self, slice_rows: np.ndarray) -> np.ndarray:
        """Which of ``slice_rows`` are search hits (or the instances being stepped through):
        a binary search per slice, however many hits there are."""
        m = self._matches_sorted
        ids = np.asarray(slice_rows, np.int64)
        if not len(m) or not len(ids):
            return np.zeros(len(ids), bool)
        k = np.minimum(np.searchsorted(m, ids), len(m) - 1)
        return m[k] == ids

    # ---------------------------------------------------------------- data
    def set_trace(self, trace: Trace, classes: np.ndarray, keep_view: bool) -> None:
        old = self.trace
        self.trace = trace
        if trace is not old:  # (another trace's memory: the app sets this one's, if any)
            self.memory_curves = []
            self._memory_bins.clear()
        self.classes_of = classes
        self.rows = self._default_rows()
        self.cursor = min(self.cursor, max(len(self.rows) - 1, 0))
        if not keep_view or old is None or not self.moved:
            # until the user moves, the view follows the trace as it grows; it fits the
            # slices (a stray instant far after them would halve the first screen)
            self.t0, self.t1 = trace.slices_span
        self._sync_virtual()
        self._frame_key = None
        self.refresh()

    def _default_rows(self) -> list[Row]:
        assert self.trace is not None
        model = self.overlap_model
        return default_rows(self.trace, collapsed=frozenset(self.collapsed),
                            fold_python=self.fold_python, unfolded=frozenset(self.unfolded),
                            overlap=self.show_overlap and model is not None,
                            in_flight=frozenset(model.flight_devices())
                            if model is not None and model.trace is self.trace else frozenset(),
                            memory=tuple((c.device_type, c.device_id)
                                         for c in self.memory_curves))

    def set_memory(self, curves: "list[DeviceCurve]") -> None:
        """The devices' memory curves to draw (made by the app once the trace is loaded)."""
        self.memory_curves = list(curves)
        self._memory_bins.clear()
        if self.trace is None:
            return
        self._new_rows()

    def _new_rows(self) -> None:
        """The rows again (the same lane kept under the cursor)."""
        lane = self.rows[self.cursor].lane if self.rows else -1
        self.rows = self._default_rows()
        self.cursor = next((i for i, rw in enumerate(self.rows) if rw.lane == lane),
                           min(self.cursor, max(len(self.rows) - 1, 0)))
        self._sync_virtual()
        self._frame_key = None
        self._strips.clear()
        self.refresh()

    def memory_row(self, curve: int) -> int:
        """The (upper) row of memory curve ``curve``, or -1."""
        return next((i for i, rw in enumerate(self.rows)
                     if rw.kind == "memory" and rw.depth == curve and rw.lane == -1), -1)

    def set_overlap(self, model: "OverlapModel | None", show: bool | None = None) -> None:
        """The overlap bins to draw (computed by the app) and whether their rows show."""
        self.overlap_model = model
        self._overlap_bins = None
        self._flight_bins = None
        if show is not None:
            self.show_overlap = show
        if self.trace is None:
            return
        self._new_rows()

    def set_range(self, rng: tuple[int, int] | None) -> None:
        self.range = None if rng is None else (int(rng[0]), int(max(rng[1], rng[0] + 1)))
        self.refresh()

    @property
    def label_width(self) -> int:
        """The label column: 24 cells up to a 100-column terminal, a quarter of the
        terminal's further columns on top (48 at most), widened or narrowed by the user
        (``{`` ``}``), never more than half the widget."""
        w = self.size.width
        try:
            term = self.app.size.width
        except Exception:  # noqa: BLE001 - drawn with no app (a widget test)
            term = w
        base = min(LABEL_WIDTH + max(term - 100, 0) // 4, 48) + self.label_extra
        return max(12, min(base, max(w // 2, 12)))

    def widen_labels(self, step: int) -> None:
        self.label_extra = max(-12, min(self.label_extra + int(step), 80))
        self.refresh()  # a new plot width: a new frame key, so new rows

    def lane_label(self, lane: int, collapsed: bool = False, width: int | None = None) -> str:
        """The lane's label in the label column: shortened, never cut, unique (labels.py);
        ``width``: in that many cells instead (a collapsed lane's, beside its marks)."""
        tr = self.trace
        assert tr is not None
        if width is None:
            width = self.label_width - (3 if collapsed else 1)
        key = (id(tr), len(tr.lanes), width)
        got = self._labels.get(key)
        if got is None:
            got = self._labels.put(key, lane_labels(tr.lanes, width))
        return got[lane]

    @property
    def plot_width(self) -> int:
        return max(self.size.width - self.label_width, 1)

    @property
    def rows(self) -> list[Row]:
        return self._rows

    @rows.setter
    def rows(self, rows: list[Row]) -> None:
        self._rows = rows
        self._rows_gen += 1

    def frame(self) -> Frame | None:
        if self.trace is None or not self.rows:
            return None
        top = int(self.scroll_offset.y)
        visible = self.rows[top: top + max(self.size.height - 1, 1)]
        key = (id(self.trace), self.t0, self.t1, self.plot_width, top, len(visible),
               self._rows_gen)
        if key != self._frame_key:
            self._frame = render(self.trace, visible, self.t0, self.t1, self.plot_width)
            self._frame_key = key
        return self._frame

    def watch_t0(self) -> None:
        self.refresh()

    def set_window(self, t0: int, t1: int) -> None:
        """Show [t0, t1) (a user action: the view stops following the load)."""
        self.moved = True
        t0, t1 = int(t0), int(t1)
        if t1 - t0 < MIN_SPAN_NS:  # the closest zoom: MIN_SPAN_NS around the middle
            mid = (t0 + t1) // 2
            t0, t1 = mid - MIN_SPAN_NS // 2, mid - MIN_SPAN_NS // 2 + MIN_SPAN_NS
        if self.trace is not None:
            # never far past the trace: a twentieth of the view beyond either end at most
            lo, hi = 0, max(int(self.trace.end_ns), 1)
            span = t1 - t0
            room = span // 20
            if span > (hi - lo) + 2 * room:
                room = (hi - lo) // 20
                t0, t1 = lo - room, hi + room
            elif t0 < lo - room:
                t0, t1 = lo - room, lo - room + span
            elif t1 > hi + room:
                t0, t1 = hi + room - span, hi + room
        self.t0, self.t1 = t0, t1

    def watch_t1(self) -> None:
        self.refresh()

    # ---------------------------------------------------------------- drawing
    def style(self, color: str, bg: str | None = None, bold: bool = False,
              underline: bool = False) -> Style:
        key = f"{color}|{bg}|{bold}|{underline}"
        st = self._styles.get(key)
        if st is None:
            st = Style(color=color, bgcolor=bg, bold=bold, underline=underline)
            self._styles[key] = st
        return st

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if self.trace is None:
            return Strip([Segment(" " * width, BLANK)])
        if y == 0:
            return self._ruler(width)
        top = int(self.scroll_offset.y)
        r = top + y - 1
        if r >= len(self.rows):
            if not self.rows and y == 2:
                return self._empty_note(width)
            return Strip([Segment(" " * width, BLANK)])
        f = self.frame()
        assert f is not None
        key = (self._frame_key, r, r == self.cursor, self.selected, self._matches_version, width)
        strip = self._strips.get(key)
        if strip is None:
            if self.rows[r].kind == "overlap":
                strip = self._overlap_row(r, f, width)
            elif self.rows[r].kind == "in_flight":
                strip = self._flight_row(r, f, width)
            elif self.rows[r].kind == "memory":
                strip = self._memory_row(r, f, width)
            elif self.rows[r].lane < 0:
                strip = self._counter_row(r, f, width)
            else:
                strip = self._row(r, r - top, f, width)
            self._strips.put(key, strip)
        return strip

    def _empty_note(self, width: int) -> Strip:
        """Why there is nothing to draw: a trace without events, or none that take time."""
        tr = self.trace
        if not tr.complete:
            note = "loading…"
        elif tr.events == 0:
            note = "this trace holds no events (an empty array, or metadata only)"
        else:
            note = f"none of its {tr.events:,} events has a duration or a value to draw"
        text = f"  {note}"[:width]
        return Strip([Segment(text, self.style(self.palette.ruler)),
                      Segment(" " * (width - len(text)), BLANK)])

    def _relayout(self, lane: int) -> None:
        """New rows (folding or collapsing changed), the cursor kept on ``lane``."""
        self.rows = self._default_rows()
        hit = next((i for i, rw in enumerate(self.rows) if rw.lane == lane), None)
        self.cursor = hit if hit is not None else min(self.cursor, max(len(self.rows) - 1, 0))
        self._sync_virtual()
        self._frame_key = None
        self._strips.clear()
        self.refresh()

    def has_python(self) -> bool:
        """Whether any lane has Python frames to fold (a with_stack=True profile)."""
        tr = self.trace
        return tr is not None and any(ln.folded() is not None for ln in tr.lanes
                                      if ln.kind == LANE_CPU)

    def toggle_python(self) -> bool:
        """Fold the Python frames away, or show them (every lane); returns whether they are
        folded now. The selection stays selected and in view."""
        self.fold_python = not self.fold_python
        self.unfolded.clear()  # every lane, the ones a selected frame opened too
        lane = self.rows[self.cursor].lane if self.rows else -1
        self._relayout(lane)
        tr = self.trace
        if self.selected >= 0 and tr is not None and self.row_of_slice(self.selected) >= 0:
            self.select(self.selected)  # still drawn: the cursor follows it
        return self.fold_python

    def row_of_slice(self, row: int) -> int:
        """Index into :attr:`rows` of the row that draws slice ``row`` (-1: not drawn)."""
        tr = self.trace
        if tr is None:
            return -1
        lane = tr.lane_of(row)
        folded = next((rw.folded for rw in self.rows if rw.lane == lane.index), False)
        depth = lane.depth_of(row, folded)
        return next((i for i, rw in enumerate(self.rows)
                     if rw.lane == lane.index and rw.depth == depth), -1)

    def toggle_collapse(self) -> None:
        """Show the cursor's lane as its top row only, or all its depths again."""
        if self.trace is None or not self.rows or self.rows[self.cursor].lane < 0:
            return
        lane = self.rows[self.cursor].lane
        self.collapsed ^= {lane}
        self._relayout(lane)

    def set_collapsed(self, lanes: list[int], collapse: bool, keep_lane: int) -> None:
        """Collapse (or expand) ``lanes`` together, the cursor staying on ``keep_lane``."""
        if collapse:
            self.collapsed |= set(lanes)
        else:
            self.collapsed -= set(lanes)
        self.rows = self._default_rows()
        self.cursor_to_lane(keep_lane)
        self._sync_virtual()
        self._frame_key = None
        self.refresh()

    def cursor_to_lane(self, lane: int) -> None:
        """The cursor on ``lane``'s first row, scrolled into view near the top."""
        hit = next((i for i, rw in enumerate(self.rows) if rw.lane == lane), None)
        if hit is None:
            return
        self.cursor = hit
        self.scroll_to(y=max(hit - 1, 0), animate=False)
        self.refresh()

    def _overlap_row(self, r: int, f: Frame, width: int) -> Strip:
        """Half-blocks per column: the upper half shows how much of the bin is communication
        hidden behind computation, the lower half how much is exposed communication."""
        model = self.overlap_model
        p = self.palette
        dev = self.rows[r].depth
        bg = p.cursor_bg if r == self.cursor else None
        label = Strip([Segment(f"GPU {dev} ", self.style(p.label, bg, bold=r == self.cursor)),
                       Segment("▀", self.style(p.hidden, bg)),
                       Segment("hidden", self.style(p.label, bg)),
                       Segment(" ▄", self.style(p.exposed, bg)),
                       Segment("exposed", self.style(p.label, bg))]
                      ).adjust_cell_length(self.label_width, self.style(p.label, bg))
        segs = list(label)
        if model is not None:
            key = (self._frame_key, id(model))
            if self._overlap_bins is None or self._overlap_bins[0] != key:
                self._overlap_bins = (key, model.bins(f.edges))
            v = self._overlap_bins[1].get(dev)
            if v is not None:
                w = np.maximum(np.diff(f.edges), 1)
                hid = [level(x) for x in (v[2] / w).tolist()]
                exp = [level(x) for x in (v[3] / w).tolist()]
                for a, b in zip(hid, exp):
                    segs.append(Segment("▀", half_block(p.heat_bg, p.hidden, a, p.exposed, b)))
        return Strip(segs).adjust_cell_length(width, BLANK)

    def _flight_row(self, r: int, f: Frame, width: int) -> Strip:
        """A device's transfers in flight between a send and its receive, on no SM: a hatch,
        not a block, so it never reads as a kernel — green where computation hides it, red
        where nothing runs beside it; a transfer wide enough is named."""
        model = self.overlap_model
        p = self.palette
        dev = self.rows[r].depth
        bg = p.cursor_bg if r == self.cursor else None
        segs = list(Strip([Segment(f"GPU {dev} ", self.style(p.label, bg, bold=r == self.cursor)),
                           Segment("in flight", self.style(p.label, bg))]
                          ).adjust_cell_length(self.label_width, self.style(p.label, bg)))
        if model is None or model.spans is None:
            return Strip(segs).adjust_cell_length(width, BLANK)
        key = (self._frame_key, id(model))
        if self._flight_bins is None or self._flight_bins[0] != key:
            self._flight_bins = (key, model.flight_bins(f.edges))
        v = self._flight_bins[1].get(dev)
        if v is None:
            return Strip(segs).adjust_cell_length(width, BLANK)
        w = np.maximum(np.diff(f.edges), 1)
        cov, hid = v[0] / w, v[1]
        chars = np.where(cov <= 0, " ", np.where(cov < 0.5, "░", "▒")).astype(object)
        hidden = hid * 2 >= v[0]
        colors = np.where(hidden, p.hidden, p.exposed).astype(object)
        named = np.zeros(len(cov), bool)
        for c0, c1, text in self._flight_names(model, dev, f):
            chars[c0 + 1:c0 + 1 + len(text)] = list(text)
            named[c0 + 1:c0 + 1 + len(text)] = True
            on = cov[c0:c1] > 0  # the name in the colour of most of its transfer
            if on.any():
                colors[c0:c1] = p.hidden if hidden[c0:c1][on].mean() >= 0.5 else p.exposed
        for ch, col, c, nm in zip(chars.tolist(), colors.tolist(), cov.tolist(), named.tolist()):
            segs.append(Segment(ch, self.style(col) if c > 0 or nm else BLANK))
        return Strip(segs).adjust_cell_length(width, BLANK)

    def _flight_names(self, model: "OverlapModel", dev: int,
                      f: Frame) -> list[tuple[int, int, str]]:
        """(first column, end column, name) of the transfers wide enough to name, in view."""
        sp = model.spans
        t0, t1 = int(f.edges[0]), int(f.edges[-1])
        n = len(f.edges) - 1
        k = np.flatnonzero((sp.device == dev) & (sp.start < t1) & (sp.end > t0))
        if not len(k) or len(k) > n // 4:
            return []
        out = []
        scale = n / max(t1 - t0, 1)
        for i in k.tolist():
            c0 = max(int((int(sp.start[i]) - t0) * scale), 0)
            c1 = min(int((int(sp.end[i]) - t0) * scale), n)
            name = safe_text(family(self.trace.strings[int(sp.name[i])]), 24)
            if c1 - c0 >= len(name) + 2:
                out.append((c0, c1, name))
        return out

    def _memory_row(self, r: int, f: Frame, width: int) -> Strip:
        """Half of a device's memory chart (two rows: 16 levels): per column the most
        allocated in its time bin as a filled block, what is reserved above it as a tinted
        band behind, the peak's column in red. The upper row's label names the
        device, the lower's gives the peak (``rel.``: from the trace's start, the trace
        giving no totals)."""
        row = self.rows[r]
        p = self.palette
        upper = row.lane == -1
        k = row.depth
        c = self.memory_curves[k] if 0 <= k < len(self.memory_curves) else None
        bg = p.cursor_bg if r == self.cursor else None
        lw = self.label_width
        if c is None:
            return Strip.blank(width, BLANK)
        if upper:
            text = f"{c.label} memory"
        else:
            text = f"peak {fmt_size(c.peak_bytes)}" + (" rel." if c.relative else "")
        segs = [Segment(set_cell_size(middle(safe_text(text), lw - 1), lw),
                        self.style(p.label, bg, bold=r == self.cursor))]
        key = (self._frame_key, id(c))
        got = self._memory_bins.get(k)
        if got is None or got[0] != key:
            got = self._memory_bins[k] = (key, c.bins(f.edges))
        fill, band, peak = memory_cells(c, f.edges, got[1], 2, 1 if upper else 0)
        for j, (n, b) in enumerate(zip(fill.tolist(), band.tolist())):
            color = p.exposed if j == peak else p.mem  # (the peak: red, not a shade of it)
            segs.append(Segment(BLOCKS[n], self.style(color, p.mem_reserved if b else None)))
        return Strip(segs).adjust_cell_length(width, BLANK)

    def _counter_row(self, r: int, f: Frame, width: int) -> Strip:
        tr = self.trace
        assert tr is not None
        k = -1 - self.rows[r].lane
        levels = counter_levels(tr, k, f.edges)
        chars = "".join(" " if v < 0 else BLOCKS[max(1, min(8, int(round(v * 8))))]
                        for v in levels.tolist())
        bg = self.palette.cursor_bg if r == self.cursor else None
        lw = self.label_width
        label = set_cell_size(middle(safe_text(tr.counters[k].name), lw - 1), lw)
        return Strip([Segment(label, self.style(self.palette.label, bg, bold=r == self.cursor)),
                      Segment(chars, self.style(self.palette.other, bg))]
                     ).adjust_cell_length(width, BLANK)

    def _ruler(self, width: int) -> Strip:
        pw = self.plot_width
        span = self.t1 - self.t0
        cells = [" "] * pw
        step = max(pw // 5, 12)
        ticks = [(c, fmt_tick(self.t0 + span * c / pw, span * step / pw))
                 for c in range(0, pw - 8, step)]
        if any(len(text) + 2 > step for _, text in ticks):
            # deep zoom far into a trace ("1.200000012 s"): the first tick whole, the
            # others as offsets from it
            base = fmt_tick(self.t0 + span * ticks[0][0] / pw, 1.0)  # to the ns: the sum
            ticks = [(ticks[0][0], base)] + [(c, "+" + fmt_time(span * (c - ticks[0][0]) / pw))
                                             for c, _ in ticks[1:]]
        free = 0  # the first column the ticks drawn so far leave free
        for c, text in ticks:
            if c + len(text) + 1 > pw or c < free:
                continue  # a tick that would be cut (at the edge, or by the one before) is left out
            for i, ch in enumerate("│" + text):
                cells[c + i] = ch
            free = c + len(text) + 2
        lw = self.label_width
        label = ("time " + fmt_time(span) + " shown").ljust(lw)[:lw]
        st = self.style(self.palette.ruler)
        segs = [Segment(label, st)]
        if self.range is None:
            segs.append(Segment("".join(cells), st))
        else:  # the marked range: the columns whose bins it touches, shaded
            a, b = self.range
            c0 = int(np.floor((a - self.t0) * pw / span)) if span else 0
            c1 = int(np.ceil((b - self.t0) * pw / span)) if span else 0
            c0, c1 = max(0, min(pw, c0)), max(0, min(pw, max(c1, c0 + 1)))
            if c1 <= 0 or c0 >= pw or b <= self.t0 or a >= self.t1:
                segs.append(Segment("".join(cells), st))
            else:
                shade = self.style(self.palette.label, self.palette.range_bg, bold=True)
                segs += [Segment("".join(cells[:c0]), st),
                         Segment("".join(cells[c0:c1]), shade),
                         Segment("".join(cells[c1:]), st)]
        return Strip(segs).adjust_cell_length(width, BLANK)

    def _class(self, slice_row: int, lane_kind: str) -> int:
        if lane_kind == LANE_CPU or self.classes_of is None or slice_row < 0:
            return NOT_GPU
        return int(self.classes_of[slice_row])

    def _color(self, slice_row: int, lane_kind: str) -> str:
        p = self.palette
        if lane_kind == LANE_CPU:
            return p.cpu
        return {COMM: p.comm, COMP: p.comp, MEM: p.mem}.get(self._class(slice_row, lane_kind),
                                                           p.other)

    def shade(self, color: str) -> str:
        """The colour a slice's neighbour on its row gets: 30 % darker, so that back to
        back slices of one class read as two."""
        got = self._shades.get(color)
        if got is None:
            try:
                r, g, b = Color.parse(color).triplet  # type: ignore[union-attr]
                got = f"#{int(r * .7):02x}{int(g * .7):02x}{int(b * .7):02x}"
            except Exception:  # noqa: BLE001 - a theme's colour Rich cannot blend
                got = color
            self._shades[color] = got
        return got

    @property
    def mono(self) -> bool:
        """No colour (NO_COLOR): classes show as glyphs, the selection as reverse video."""
        try:
            return bool(self.app.no_color)
        except Exception:  # noqa: BLE001 - drawn with no app (a widget test)
            return bool(os.environ.get("NO_COLOR"))

    def _label(self, row: Row, lane, on_cursor: bool) -> str:
        lw = self.label_width
        if row.depth:
            return f"  {'·' * min(row.depth, 3)} depth {row.depth}"[: lw - 1].ljust(lw)
        hidden = lane.depths(row.folded) - 1 if lane.index in self.collapsed else 0
        if hidden <= 0:
            return self.lane_label(lane.index).ljust(lw)
        more = f" +{hidden}"
        name = self.lane_label(lane.index, width=max(lw - 3 - len(more), 4))
        return ("▸ " + name + more).ljust(lw)

    def _row(self, r: int, fr: int, f: Frame, width: int) -> Strip:
        """One depth of one lane: per slice a box in its class colour, neighbours shaded
        apart and split by a thin gap, the name inside where it fits; search hits keep
        their class colour under a mark, the selection is drawn reversed."""
        tr = self.trace
        assert tr is not None
        p = self.palette
        row = self.rows[r]
        lane = tr.lanes[row.lane]
        on_cursor = r == self.cursor
        bg = p.cursor_bg if on_cursor else None
        # in exactly the column's cells: a wide character in a thread name must not shift
        # the time axis
        segs = [Segment(set_cell_size(self._label(row, lane, on_cursor), self.label_width),
                        self.style(p.label, bg, bold=on_cursor))]
        cov = f.coverage[fr]
        at = f.slice_at[fr]
        pos = f.position[fr]
        levels = np.minimum((cov * 8 + 0.999).astype(np.int64), 8)
        levels[cov <= 0] = 0
        lv = levels.tolist()
        mono = self.mono
        cpu = lane.kind == LANE_CPU
        if not len(at):
            return Strip(segs).adjust_cell_length(width, BLANK)
        # runs of columns showing one slice (or none), all at once
        change = np.flatnonzero(at[1:] != at[:-1]) + 1
        starts = np.concatenate(([0], change))
        ends = np.concatenate((change, [len(at)]))
        sl = at[starts]
        on = sl >= 0
        if cpu or self.classes_of is None:
            cls = np.full(len(sl), NOT_GPU, np.int64)
        else:
            cls = np.where(on, self.classes_of[np.maximum(sl, 0)], NOT_GPU)
        par = np.zeros(len(sl), np.int64) if mono else pos[starts] & 1
        # cells: a block per coverage level; a run's last full cell split off when the
        # next slice follows at once; without colour, full cells in their class's glyph
        chars = _BLOCK_CHARS[levels]
        run_of = np.repeat(np.arange(len(sl)), ends - starts)
        chars[(levels == 0) & on[run_of]] = "▏"  # a zero-length slice: a sliver
        if mono and not cpu:
            glyph = _CLASS_CHARS[np.clip(cls + 1, 0, len(_CLASS_CHARS) - 1)][run_of]
            full = (levels == 8) & on[run_of]
            chars[full] = glyph[full]
        # (a run one cell wide is a sliver, not a box: its shade tells it apart)
        split = on & np.concatenate((on[1:], [False])) & (levels[ends - 1] == 8) & \
            (ends - starts >= 2)
        if mono and not cpu:  # without colour the glyph is the class: only "█" is split
            split &= chars[np.maximum(ends - 1, 0)] == "█"
        chars[ends[split] - 1] = BOUNDARY
        cells = chars.tolist()
        # which of this row's slices are search hits: one vectorised test, not a set of all hits
        hit = self.is_match(np.where(on, sl, -1)) & on
        styles = self._run_styles(cpu, on_cursor, mono)
        label_st = self.style(p.label, bg)
        selected = self.selected
        for c0, c1, s, c, odd, is_hit in zip(starts.tolist(), ends.tolist(), sl.tolist(),
                                             cls.tolist(), par.tolist(), hit.tolist()):
            if s < 0:
                segs.append(Segment("".join(cells[c0:c1]), label_st))
                continue
            n = c1 - c0
            if n < 6 and not is_hit and s != selected:  # most runs: narrow, plain
                segs.append(Segment("".join(cells[c0:c1]), styles[c, odd]))
                continue
            color = self._color(s, lane.kind)
            if odd:
                color = self.shade(color)
            # the name over the run's well-covered cells (a slice's first and last cells
            # are often part-covered), one cell short of its end
            name, at0 = "", 0
            if n >= 6:
                good = np.flatnonzero(cov[c0:c1] > 0.5)
                if len(good) >= 6 and good[-1] - good[0] + 1 == len(good):
                    at0 = int(good[0])
                    name = fit_cells(slice_label(safe_text(short_name(tr.name_of(s))),
                                                 len(good) - 1), len(good) - 1)
            nw = cell_len(name)  # the cells the name takes (wide characters take two)
            if s == selected:  # reversed: a bright box, the name in it
                box = SELECTED_MONO if mono else self.style(p.selected_fg, p.selected_bg, bold=True)
                edge = BLANK if mono else self.style(p.selected_bg, bg)
                for a, b in ((c0, c0 + at0), (-1, -1), (c0 + at0 + nw, c1)):
                    if a < 0:
                        if name:
                            segs.append(Segment(name, box))
                        continue
                    # full cells boxed, part cells as blocks in the box's colour
                    for full_cell, group in groupby(lv[a:b], key=lambda v: v == 8):
                        got = list(group)
                        segs.append(Segment(" " * len(got), box) if full_cell else
                                    Segment("".join(BLOCKS[v] if v else "▏" for v in got), edge))
                continue
            run = cells[c0:c1]
            name_st = (Style(underline=is_hit, bold=True) if mono else
                       self.style("#000000", color, bold=True, underline=is_hit))
            part_st = self.style(color, p.match if is_hit and not mono else bg)
            full_st = Style(underline=True) if mono else self.style(p.match, color)
            for piece, lvs, named in ((run[:at0], lv[c0: c0 + at0], False),
                                      ([name] if name else [], (), True),
                                      (run[at0 + nw:], lv[c0 + at0 + nw: c1], False)):
                if not piece:
                    continue
                if named:
                    segs.append(Segment("".join(piece), name_st))
                elif not is_hit:
                    segs.append(Segment("".join(piece), self.style(color, bg)))
                else:
                    # a hit: full cells get the hit colour in their upper half, part cells
                    # above their block: the class colour stays, the mark shows one cell wide
                    for full_cell, group in groupby(zip(lvs, piece),
                                                    key=lambda x: x[0] == 8 and x[1] != BOUNDARY):
                        got = [ch for _, ch in group]
                        segs.append(Segment(HIT_GLYPH * len(got), full_st) if full_cell
                                    else Segment("".join(got), part_st))
        return Strip(segs).adjust_cell_length(width, BLANK)

    def _run_styles(self, cpu: bool, on_cursor: bool, mono: bool) -> dict[tuple[int, int], Style]:
        """Style of a plain run by (class, odd): the class colour, or its shade for every
        other slice of a row; on the cursor row over the cursor's background."""
        key = (cpu, on_cursor, mono)
        got = self._run_style_cache.get(key)
        if got is None:
            p = self.palette
            bg = p.cursor_bg if on_cursor else None
            got = {}
            for c in (NOT_GPU, *range(16)):
                base = p.cpu if cpu else {COMM: p.comm, COMP: p.comp, MEM: p.mem}.get(c, p.other)
                for odd in (0, 1):
                    got[c, odd] = self.style(self.shade(base) if odd else base, bg)
            self._run_style_cache[key] = got
        return got

    # ---------------------------------------------------------------- navigation
    def zoom(self, factor: float, around: int | None = None) -> None:
        if self.trace is None:
            return
        span = self.t1 - self.t0
        mid = around if around is not None else self.focus_time()
        new = int(min(max(span * factor, MIN_SPAN_NS), max(self.trace.end_ns, 1) * 1.2))
        frac = (mid - self.t0) / span if span else 0.5
        t0 = int(mid - frac * new)
        self.set_window(t0, t0 + new)

    def action_cursor(self, delta: int) -> None:
        self.move_cursor(int(delta))

    def action_pan_view(self, fraction: float) -> None:
        self.pan(float(fraction))

    def pan(self, fraction: float) -> None:
        d = int((self.t1 - self.t0) * fraction)
        self.set_window(self.t0 + d, self.t1 + d)

    def reset(self) -> None:
        if self.trace is not None:
            self.set_window(*self.trace.slices_span)
            self.moved = False

    def focus_time(self) -> int:
        tr = self.trace
        if tr is not None and self.selected >= 0:
            return int(tr.start[self.selected] + tr.dur[self.selected] // 2)
        return (self.t0 + self.t1) // 2

    def start_of(self, row: int) -> int:
        return int(self.trace.start[row]) if self.trace is not None else 0

    def move_cursor(self, delta: int) -> None:
        if not self.rows:
            return
        self.cursor = max(0, min(len(self.rows) - 1, self.cursor + delta))
        top = int(self.scroll_offset.y)
        visible = max(self.size.height - 1, 1)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False)
        elif self.cursor >= top + visible:
            self.scroll_to(y=self.cursor - visible + 1, animate=False)
        self.refresh()

    def step_slice(self, direction: int) -> None:
        """Select the next/previous slice on the cursor's row, from the selection or the view."""
        tr = self.trace
        if tr is None or not self.rows or self.rows[self.cursor].lane < 0:
            return
        row = self.rows[self.cursor]
        di = tr.lanes[row.lane].index_at(row.depth, row.folded)
        if not len(di):
            return
        at = di.position(self.selected) if self.selected >= 0 else -1
        if at >= 0:
            k = at + direction
        else:
            ref = self.t0 if direction > 0 else self.t1
            k = int(np.searchsorted(di.starts, ref, side="left" if direction > 0 else "right"))
            k = k if direction > 0 else k - 1
        if 0 <= k < len(di):
            self.select(di.row(k), reveal=True)

    def select(self, row: int, reveal: bool = False) -> None:
        """Select slice ``row``; move the cursor to its row and, if asked, bring it in view."""
        tr = self.trace
        if tr is None or row < 0:
            return
        self.selected = int(row)
        self.moved = True
        lane = tr.lane_of(row)
        i = self.row_of_slice(row)
        if i < 0 and (lane.index in self.collapsed or self.fold_python):
            # a folded Python frame or a collapsed lane's deeper slice: open the lane
            self.collapsed.discard(lane.index)
            if int(tr.cat[row]) in tr.python_cats:
                self.unfolded.add(lane.index)
            self._relayout(lane.index)
            i = self.row_of_slice(row)
        if i >= 0:
            self.move_cursor(i - self.cursor)
        else:  # past the rows a lane may take (hostile nesting): said, not silently lost
            try:
                self.notify(f"this slice is at depth {int(tr.depth[row])}: past the "
                            f"{MAX_LANE_ROWS} rows a lane shows (its detail is below)",
                            severity="warning", timeout=5, markup=False)
            except Exception:  # noqa: BLE001 - drawn with no app (a widget test)
                pass
        if reveal:
            s, e = int(tr.start[row]), int(tr.start[row] + tr.dur[row])
            span = self.t1 - self.t0
            mid = (s + e) // 2
            if (e - s) * self.plot_width < REVEAL_CELLS * span:
                # narrower than a few cells: zoom until it is a name's width, centred
                new = max((e - s) * self.plot_width // (2 * REVEAL_CELLS), MIN_SPAN_NS)
                self.set_window(mid - new // 2, mid - new // 2 + new)
            elif (e - s) > span:
                self.fit(s, e)
            elif s < self.t0 or e > self.t1:  # in part or not at all on screen: centred
                self.set_window(mid - span // 2, mid - span // 2 + span)
        if self.on_select is not None:
            self.on_select(self.selected)
        else:
            self.post_message(self.Selected(self.selected))
        self.refresh()

    def fit(self, s: int, e: int) -> None:
        """Show [s, e) with a tenth on either side; a target narrower than a few cells at
        the widest zoom keeps 1 µs of context."""
        pad = max((e - s) // 10, 500)
        self.set_window(s - pad, e + pad)

    def on_resize(self) -> None:
        self._sync_virtual()
        self._frame_key = None
        # two frames' worth: back and forth costs no redraw, and no more is kept alive for
        # the cyclic collector to walk (256 at 40 rows made some keys ~1 ms slower)
        self._strips.maxsize = STRIP_FRAMES * max(self.size.height, 1)

    def _sync_virtual(self) -> None:
        """Rows to scroll through; no width of its own (a width that trails a resize would
        show a horizontal scrollbar for a frame and cost two more repaints)."""
        size = Size(0, len(self.rows) + 1)
        if size != self.virtual_size:
            self.virtual_size = size

    def on_click(self, event) -> None:  # mouse: click selects; never required
        tr = self.trace
        if tr is None or event.y < 1 or event.x < self.label_width:
            return
        r = int(self.scroll_offset.y) + event.y - 1
        if r >= len(self.rows) or self.rows[r].lane < 0:
            return
        self.cursor = r
        t = self.t0 + (self.t1 - self.t0) * (event.x - self.label_width + 0.5) / self.plot_width
        row = self.rows[r]
        hit = tr.lanes[row.lane].slice_at(int(t), row.depth, row.folded)
        if hit >= 0:
            self.select(hit)
        self.refresh()

    def on_mouse_scroll_up(self, event) -> None:
        self.zoom(0.8)
        event.stop()

    def on_mouse_scroll_down(self, event) -> None:
        self.zoom(1.25)
        event.stop()

