"""A table that draws only the rows on screen (Textual's Line API), for tables of any length.

The rows live in a :class:`GridModel` (plain Python lists or numpy columns); the widget keeps
an order (sort by any column, filter by text) as an index array and asks the model for the
text of the cells it draws. Cells are drawn as plain segments after :func:`safe_text`: a
kernel or annotation name can never act as markup or as a terminal sequence.
"""

from __future__ import annotations

import os
import re

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from ..tables import TableDef
from ..textutil import fit, fit_apart, safe_text
from .cache import LRU

BLANK = Style()
_DIGITS = re.compile(r"\d+")


def _padded(m: "re.Match[str]") -> str:
    return m.group().zfill(24)


@dataclass(frozen=True)
class Column:
    title: str
    key: str
    width: int = 0  # 0: takes the room the other columns leave (at least min_width)
    numeric: bool = True
    fmt: Callable[[Any], str] = str
    min_width: int = 16
    optional: int = 0  # > 0: hidden when the terminal is too narrow (highest first)
    #: a text too long for the column: "end" keeps its start, "middle" its start and end
    #: (a kernel's own name, after its namespaces and template arguments), "apart" the
    #: middle too, made so that no two rows of the table read the same (textutil.fit_apart)
    cut: str = "end"
    #: the whole text the cells stand for (the full kernel name behind its short form):
    #: what the filter searches besides the cell, and an export's last column
    full_key: str | None = None


class GridModel:
    """Rows as dicts (``records``) or as columns of equal length (``columns``)."""

    def __init__(self, columns: Sequence[Column], records: Sequence[dict[str, Any]] | None = None,
                 data: dict[str, Any] | None = None, text_key: str | None = None) -> None:
        self.columns = list(columns)
        self.records = list(records) if records is not None else None
        self.data = data or {}
        self.text_key = text_key or next((c.key for c in self.columns if not c.numeric), None)
        self._n = len(self.records) if self.records is not None else \
            (len(next(iter(self.data.values()))) if self.data else 0)

    def __len__(self) -> int:
        return self._n

    def value(self, i: int, key: str) -> Any:
        if self.records is not None:
            return self.records[i].get(key)
        v = self.data[key][i]
        return v.item() if isinstance(v, np.generic) else v

    def sort_keys(self, key: str) -> np.ndarray:
        """One sortable array for column ``key`` (missing values sort last)."""
        if self.records is None:
            return np.asarray(self.data[key])
        col = next(c for c in self.columns if c.key == key)
        vals = [r.get(key) for r in self.records]
        if col.numeric:
            return np.array([np.inf if v is None else float(v) for v in vals])
        # natural order: ProfilerStep#9 before ProfilerStep#10
        return np.array([_DIGITS.sub(_padded, ("" if v is None else str(v)).lower())
                         for v in vals], dtype=object)

    def text_column(self) -> list[str]:
        """The filter's haystack: the text column as shown (its format applied)."""
        if self.text_key is None:
            return [""] * len(self)
        col = next(c for c in self.columns if c.key == self.text_key)
        if self.records is not None:
            if col.full_key:  # what the cell shows and the whole text behind it
                return [f"{col.fmt(r.get(self.text_key, ''))}\n{r.get(col.full_key, '')}"
                        for r in self.records]
            return [col.fmt(r.get(self.text_key, "")) for r in self.records]
        return [col.fmt(v) for v in self.data[self.text_key].tolist()]

    def shown(self, i: int, col: Column) -> Any:
        """A cell as the table shows it, for export: the formatted text, numbers as numbers
        (without thousands separators or %), blanks for missing values."""
        text = col.fmt(self.value(i, col.key))
        if not col.numeric:
            return text
        num = text.replace(",", "").rstrip("%").strip()
        if num in ("", "–"):
            return ""
        try:
            return int(num) if num.lstrip("+-").isdigit() else float(num)  # (+63: 63)
        except ValueError:
            return text


class Grid(ScrollView, can_focus=True):
    """Header line, then the rows of the current order; a cursor row; sort by any column
    (``<``/``>`` choose it, ``r`` reverses), filter by text (:meth:`set_filter`)."""

    BINDINGS = [
        Binding("up", "move(-1)", "up", show=False),
        Binding("down", "move(1)", "down", show=False),
        Binding("pageup", "move(-20)", "page up", show=False),
        Binding("pagedown", "move(20)", "page down", show=False),
        Binding("home", "move(-1000000000)", "first", show=False),
        Binding("end", "move(1000000000)", "last", show=False),
        Binding("less_than_sign", "sort_column(-1)", "sort by previous column", key_display="<"),
        Binding("greater_than_sign", "sort_column(1)", "sort by next column", key_display=">"),
        Binding("ctrl+r", "reverse", "reverse sort", key_display="^r"),
        Binding("enter", "choose", "open"),
    ]

    class Chosen(Message):
        """Enter on a row: ``index`` is the row's index in the model."""

        def __init__(self, grid: "Grid", index: int) -> None:
            super().__init__()
            self.grid = grid
            self.index = index

        @property
        def control(self) -> "Grid":
            return self.grid

    DEFAULT_CSS = """
    Grid { scrollbar-size-vertical: 1; overflow-x: hidden; }
    """

    class Sorted(Message):
        pass

    class Moved(Message):
        """The cursor is on another row (moved, or the rows were filtered or sorted)."""

    def __init__(self, model: GridModel, sort_key: str | None = None, descending: bool = True,
                 cursor_bg: str = "#303a50", **kw: Any) -> None:
        super().__init__(**kw)
        self.cursor_bg = cursor_bg
        self.filter_text = ""
        self.cursor = 0
        self._cache: LRU[Strip] = LRU(200)  # rows drawn, by what they depend on
        self._apart: dict[tuple, list[str]] = {}  # "apart" columns: every row's text, by width
        self.set_model(model, sort_key, descending)

    # ---------------------------------------------------------------- data
    def set_model(self, model: GridModel, sort_key: str | None = None,
                  descending: bool = True) -> None:
        self.model = model
        keys = [c.key for c in model.columns]
        # "": the model's own order (a tree), until a column is chosen
        self.sort_key = sort_key if sort_key in keys or sort_key == "" else \
            (keys[0] if keys else "")
        self.descending = descending
        self._lower: list[str] | None = None
        self._reorder()

    def _reorder(self, keep: int | None = None) -> None:
        n = len(self.model)
        order = np.arange(n, dtype=np.int64)
        if self.filter_text:
            if self._lower is None:
                self._lower = [s.lower() for s in self.model.text_column()]
            q = self.filter_text.lower()
            order = np.array([i for i, s in enumerate(self._lower) if q in s], np.int64)
        if len(order) and self.sort_key:
            k = self.model.sort_keys(self.sort_key)[order]
            if _in_order(k, self.descending):  # (rows handed over sorted: no sort of 100k)
                o = np.arange(len(k))
            else:
                o = np.argsort(k, kind="stable")
                if self.descending:
                    # descending but stable among equals (ties keep the model's order)
                    o = o[::-1]
                    o = _stable_ties(k[o], o)
                    if k.dtype.kind == "f":  # missing numbers (inf) last in either direction
                        miss = np.isposinf(k[o])
                        if miss.any():
                            o = np.concatenate([o[~miss], o[miss]])
            order = order[o]
        self.order = order
        self._cache.clear()
        if keep is not None and len(order):
            hit = np.flatnonzero(order == keep)
            self.cursor = int(hit[0]) if len(hit) else 0
        else:
            self.cursor = 0
        self.virtual_size = Size(0, len(order) + 1)
        self.scroll_to(y=max(0, self.cursor - max(self.size.height - 2, 1) // 2), animate=False)
        self.refresh()
        self.post_message(self.Moved())


    def values_changed(self) -> None:
        """The model's values changed in place (not its rows): drawn again, order kept."""
        self._cache.clear()
        self.refresh()
    def set_filter(self, text: str) -> None:
        self.filter_text = text
        self._reorder()

    @property
    def current(self) -> int:
        """Index in the model of the row under the cursor, or -1."""
        return int(self.order[self.cursor]) if len(self.order) else -1

    def visible_records(self) -> tuple[list[str], list[list[Any]]]:
        """(titles, rows in the current order): what an export writes."""
        cols = self.model.columns
        # a column that shows a short form: the whole text after the columns as shown
        full = [c for c in cols if c.full_key] if self.model.records is not None else []
        recs = self.model.records
        return ([c.title for c in cols] + [f"{c.title} (full)" for c in full],
                [[self.model.shown(int(i), c) for c in cols]
                 + [str(recs[int(i)].get(c.full_key, "")) for c in full]  # type: ignore[index]
                 for i in self.order.tolist()])

    # ---------------------------------------------------------------- actions
    def action_move(self, delta: int) -> None:
        if not len(self.order):
            return
        self.cursor = max(0, min(len(self.order) - 1, self.cursor + int(delta)))
        self.post_message(self.Moved())
        top = int(self.scroll_offset.y)
        rows = max(self.size.height - 1, 1)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False)
        elif self.cursor >= top + rows:
            self.scroll_to(y=self.cursor - rows + 1, animate=False)
        self.refresh()

    def action_sort_column(self, step: int) -> None:
        keys = [c.key for c in self.model.columns]
        if not keys:
            return
        at = keys.index(self.sort_key) if self.sort_key in keys else (-1 if step > 0 else 0)
        k = (at + int(step)) % len(keys)
        self.sort_key = keys[k]
        self.descending = self.model.columns[k].numeric  # numbers: largest first
        self._reorder()  # the cursor on the first row: ⏎ opens what now leads the table
        self.post_message(self.Sorted())

    def sort_by(self, key: str, descending: bool = True) -> None:
        self.sort_key, self.descending = key, descending
        self._reorder()
        self.post_message(self.Sorted())

    def action_reverse(self) -> None:
        self.descending = not self.descending
        self._reorder()
        self.post_message(self.Sorted())

    def action_choose(self) -> None:
        if len(self.order):
            self.post_message(self.Chosen(self, self.current))

    # ---------------------------------------------------------------- drawing
    def widths(self, total: int) -> list[int]:
        """Each column's width; 0 for optional columns hidden to leave the flexible (name)
        column its minimum on a narrow terminal."""
        cols = self.model.columns
        hidden: set[int] = set()
        droppable = sorted((c.optional, k) for k, c in enumerate(cols) if c.optional)
        while True:
            shown = [c for k, c in enumerate(cols) if k not in hidden]
            fixed = sum(c.width + 1 for c in shown if c.width)
            flex = [c for c in shown if not c.width]
            least = min((c.min_width for c in flex), default=8)
            room = max(total - fixed, 0)
            if room // max(len(flex), 1) - 1 >= least or not droppable:
                break
            hidden.add(droppable.pop()[1])
        # with nothing left to drop, the flexible columns take what is left rather than push
        # the last columns off the line (8 cells at least)
        each = max(room // max(len(flex), 1) - 1, min(least, 8))
        out = [0 if k in hidden else (c.width or each) for k, c in enumerate(cols)]
        # and what still does not fit goes whole, from the right: a number cut at the
        # edge would read as another (-100.0% as "-1")
        while sum(w + 1 for w in out if w) - 1 > total and sum(1 for w in out if w) > 1:
            last = max(k for k, w in enumerate(out) if w)
            out[last] = 0
        return out

    def _cells(self, values: list[str], widths: list[int], numeric: list[bool],
               cuts: list[str] | None = None) -> str:
        parts = []
        for k, (v, w, num) in enumerate(zip(values, widths, numeric)):
            if w <= 0:
                continue  # hidden on a narrow terminal
            # in cells (a CJK character or an emoji takes two): every row's columns line up
            if num and len(v) > w:
                v = _shorter_number(v, w)
            parts.append(fit(safe_text(v), w, right=num,
                             cut="middle" if cuts is not None and cuts[k] == "middle" else "end"))
        return " ".join(parts)

    def _apart_texts(self, col: Column, width: int) -> list[str]:
        """Column ``col`` of every row (filtered out or not: a row reads the same whatever
        the filter) fitted to ``width`` so that no two read alike."""
        key = (id(self.model), col.key, width)
        got = self._apart.get(key)
        if got is None:
            if len(self._apart) > 8:
                self._apart.clear()
            texts = [safe_text(col.fmt(self.model.value(i, col.key)))
                     for i in range(len(self.model))]
            got = self._apart[key] = fit_apart(texts, width)
        return got

    @property
    def text_width(self) -> int:
        """Columns for text: the widget less its scrollbar."""
        w = self.scrollable_content_region.width
        return w if w > 0 else self.size.width

    def render_line(self, y: int) -> Strip:
        width = self.text_width
        cols = self.model.columns
        widths = self.widths(width)
        numeric = [c.numeric for c in cols]
        if y == 0:
            titles = []
            for c in cols:
                mark = ("▼" if self.descending else "▲") if c.key == self.sort_key else ""
                titles.append(c.title + mark)
            text = self._cells(titles, widths, numeric)
            return Strip([Segment(text, Style(bold=True, underline=True))]).adjust_cell_length(
                width, BLANK)
        r = int(self.scroll_offset.y) + y - 1
        if r >= len(self.order):
            if r == 0 and not len(self.order):
                msg = "no rows match the filter" if self.filter_text else "no rows"
                return Strip([Segment(msg, Style(dim=True))]).adjust_cell_length(width, BLANK)
            return Strip([Segment(" " * width, BLANK)])
        on = r == self.cursor
        key = (r, int(self.order[r]), on, width, self.has_focus)
        strip = self._cache.get(key)
        if strip is None:
            i = int(self.order[r])
            vals = [c.fmt(self.model.value(i, c.key)) if c.cut != "apart" or w <= 0
                    else self._apart_texts(c, w)[i] for c, w in zip(cols, widths)]
            text = self._cells(vals, widths, numeric, [c.cut for c in cols])
            # without colour (NO_COLOR) a background is dropped: the cursor row is reversed
            st = Style(bgcolor=self.cursor_bg, bold=True) if on and self.has_focus \
                and not self._mono else Style(reverse=True, bold=self.has_focus) \
                if on else BLANK
            strip = Strip([Segment(text, st)]).adjust_cell_length(width, st if on else BLANK)
            self._cache.put(key, strip)
        return strip

    @property
    def _mono(self) -> bool:
        """No colour (NO_COLOR): backgrounds are dropped, so the cursor row is reversed."""
        try:
            return bool(self.app.no_color)
        except Exception:  # noqa: BLE001 - drawn with no app (a widget test)
            return bool(os.environ.get("NO_COLOR"))

    def on_resize(self) -> None:
        size = Size(0, len(self.order) + 1)
        if size != self.virtual_size:  # a refresh (a whole repaint) only if it changed
            self.virtual_size = size

    def on_focus(self) -> None:  # the cursor row's look (its cache key holds the focus)
        self.refresh_line(self.cursor + 1)

    def on_blur(self) -> None:
        self.refresh_line(self.cursor + 1)

    def on_click(self, event: Any) -> None:
        if event.y < 1:
            return
        r = int(self.scroll_offset.y) + event.y - 1
        if 0 <= r < len(self.order):
            self.action_move(r - self.cursor)


def _in_order(keys: np.ndarray, descending: bool) -> bool:
    """Whether numbers ``keys`` are already in the order a stable sort would give (then
    that order is the identity): non-increasing for ``descending``, else non-decreasing,
    with no NaN, and no missing number (inf) before the end when descending."""
    if keys.dtype.kind not in "iuf" or len(keys) < 2:
        return keys.dtype.kind in "iuf"
    if keys.dtype.kind == "f" and (np.isnan(keys).any() or descending and np.isposinf(keys).any()):
        return False
    step = keys[1:] > keys[:-1] if descending else keys[1:] < keys[:-1]
    return not step.any()


def _stable_ties(sorted_keys: np.ndarray, order: np.ndarray) -> np.ndarray:
    """``order`` (descending by key) with each run of equal keys back in ascending index
    order, so that reversing a sort never shuffles rows with equal values."""
    if len(order) < 2:
        return order
    change = np.r_[True, sorted_keys[1:] != sorted_keys[:-1]]
    group = np.cumsum(change)
    return order[np.lexsort((order, group))]


def fmt_us(v: Any) -> str:
    """µs as ms with 3 decimals (the tables' unit), blank if missing."""
    return "" if v is None else f"{float(v) / 1000:,.3f}"


def fmt_ns_ms(v: Any) -> str:
    return "" if v is None else f"{float(v) / 1e6:,.3f}"


def fmt_pct(v: Any) -> str:
    return "–" if v is None else f"{float(v):.1f}%"


def fmt_int(v: Any) -> str:
    return "" if v is None else f"{int(v):,}"


_DECIMAL = re.compile(r"\d[\d,]*\.\d+")


def _rounded(m: re.Match[str]) -> str:
    text = m.group(0)
    n = round(float(text.replace(",", "")))
    return f"{n:,}" if "," in text else str(n)


def _shorter_number(text: str, width: int) -> str:
    """A number too wide for its column, shorter but still the same number: rounded to a
    whole one (``+19746.2%`` -> ``+19746%``), then without its thousands commas; what
    still does not fit is cut by the caller ("…" last)."""
    if len(text) <= width:
        return text
    whole = _DECIMAL.sub(_rounded, text)
    for shorter in (whole, whole.replace(",", "")):
        if len(shorter) <= width:
            return shorter
    return text


def grid_columns(tdef: TableDef) -> list[Column]:
    """A table definition's columns as the app's grid columns."""
    out = []
    for c in tdef.columns:
        if c.numeric:
            out.append(Column(c.title, c.key, c.width or max(len(c.title) + 1, 9), fmt=c.fmt,
                              optional=c.optional))
        elif c.width:
            out.append(Column(c.title, c.key, c.width, numeric=False, fmt=_text_fmt(c),
                              optional=c.optional))
        else:
            out.append(Column(c.title, c.key, numeric=False, min_width=c.min_width or 20,
                              fmt=_text_fmt(c),
                              optional=c.optional, cut=c.cut if c.cut != "start" else "end",
                              full_key=c.full))
    return out


def _text_fmt(c: Any) -> Any:
    return lambda v: "" if v is None else str(v)
