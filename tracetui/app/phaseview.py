"""The phase view (``p``): DeepSeek's diagram over the timeline's window — per GPU a
Computation and a Communication row of blocks named by phase, coloured by chunk or
micro-batch, with a table of the phases beside it."""

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
from textual.widgets import Static

from ..analysis.attribution import NO_PHASE
from ..analysis.phases import row_sms
from ..textutil import cell_width, clusters, first_cells, fit, fmt_time, pad, safe_text
from .grid import Column, Grid, GridModel, fmt_int, fmt_pct, fmt_us
from .heat import pad_strip
from .keybar import KeyBar
from .messages import GotoAnnotation, GotoRange, ShowUnattributed
from .themes import Palette

LABEL = 24
PHASE_COLUMNS = [
    Column("phase", "name", numeric=False, min_width=14),
    Column("group", "group", 5, numeric=False),
    Column("n", "count", 5, fmt=fmt_int),
    Column("time ms", "total_us", 9, fmt=fmt_us),
    Column("comp busy", "comp_us", 10, fmt=fmt_us),
    Column("comm busy", "comm_us", 10, fmt=fmt_us),
    Column("exposed", "exposed_comm_us", 9, fmt=fmt_us),
    Column("comp SMs", "comp_sms", 8, fmt=fmt_int, optional=2),
    Column("comm SMs", "comm_sms", 8, fmt=fmt_int, optional=2),
    Column("overlap", "overlap_pct", 7, fmt=fmt_pct, optional=1),
]


def _ns(us: float) -> int:
    return int(round(us * 1000))


def _whole(cells: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """One row's cells, a wide character holding its cell and an empty one after it: where
    a later block drew over either half, the other half is a blank (the row keeps its
    width in cells)."""
    out = list(cells)
    for j, (ch, st) in enumerate(out):
        if ch == "":
            if j == 0 or cell_width(out[j - 1][0]) != 2:
                out[j] = (" ", st)
        elif cell_width(ch) == 2 and (j + 1 >= len(out) or out[j + 1][0] != ""):
            out[j] = (" ", st)
    return out


class PhaseMap(Widget, can_focus=True):
    """Two rows per GPU; ←/→ the previous/next block, w/s/a/d zoom and pan, ⏎ the block's
    span on the timeline."""

    BINDINGS = [
        Binding("left,h", "step(-1)", "previous block", show=False),
        Binding("right,l", "step(1)", "next block", show=False),
        Binding("w", "zoom(0.5)", "zoom in"),
        Binding("s", "zoom(2)", "zoom out"),
        Binding("a", "pan(-0.2)", "pan left", show=False),
        Binding("d", "pan(0.2)", "pan right", show=False),
        Binding("enter", "choose", "block on the timeline"),
    ]
    DEFAULT_CSS = "PhaseMap { height: auto; }"

    class Chosen(Message):
        def __init__(self, t0: int, t1: int) -> None:
            super().__init__()
            self.t0, self.t1 = t0, t1

    class Moved(Message):
        pass

    def __init__(self, blocks: list[dict[str, Any]], t0: int, t1: int, palette: Palette,
                 end_ns: int) -> None:
        super().__init__()
        self.blocks = sorted(blocks, key=lambda b: (b["start_us"], b["device"], b["class"]))
        self.devices = sorted({b["device"] for b in blocks})
        self.palette = palette
        self.t0, self.t1, self.end_ns = t0, max(t1, t0 + 1), end_ns
        self.cur = self._first_visible()
        # per (device, class): its blocks' indexes by start, their starts and the running
        # latest end (the blocks of a window by two binary searches), and the row's SMs
        self._rows: dict[tuple[int, str], tuple[np.ndarray, np.ndarray, np.ndarray,
                                                 int | None]] = {}
        for dev in self.devices:
            for cls in ("comp", "comm"):
                idx = np.array([i for i, b in enumerate(self.blocks)
                                if b["device"] == dev and b["class"] == cls], np.int64)
                st = np.array([_ns(self.blocks[i]["start_us"]) for i in idx.tolist()], np.int64)
                en = np.array([_ns(self.blocks[i]["end_us"]) for i in idx.tolist()], np.int64)
                reach = np.maximum.accumulate(en) if len(en) else en
                self._rows[dev, cls] = (idx, st, reach, row_sms(self.blocks, dev, cls))
        groups = sorted({b["group"] for b in blocks})
        colours = [palette.comp, palette.comm, palette.cpu, palette.mem, palette.hidden,
                   palette.exposed]
        self.colour = {g: colours[i % len(colours)] for i, g in enumerate(groups)}

    def _first_visible(self) -> int:
        for i, b in enumerate(self.blocks):
            if _ns(b["end_us"]) > self.t0:
                return i
        return 0 if self.blocks else -1

    def get_content_height(self, container: Any, viewport: Any, width: int) -> int:
        return 3 * len(self.devices) + 1 if self.devices else 1

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        plot = max(width - LABEL, 1)
        p = self.palette
        if not self.devices:
            return pad_strip([Segment("  no repeating annotation launched GPU kernels",
                                      Style(color=p.ruler))], width)
        if y == 0:
            left, right = fmt_time(self.t0), fmt_time(self.t1)
            return pad_strip([Segment(" " * LABEL + left + right.rjust(plot - len(left)),
                                      Style(color=p.ruler))], width)
        k, r = divmod(y - 1, 3)
        if k >= len(self.devices) or r == 2:
            return Strip([Segment(" " * width)])
        dev = self.devices[k]
        cls = ("comp", "comm")[r]
        idx, st, reach, sms = self._rows[dev, cls]
        title = "Computation" if cls == "comp" else "Communication"
        if len(self.devices) > 1:  # "GPU 3 Comm (20 SMs)"
            title = f"GPU {dev} {title[:4]}"
        label = title + (f" ({sms} SMs)" if sms is not None else "")
        cells: list[tuple[str, Style]] = [(" ", Style())] * plot
        span = self.t1 - self.t0
        lo = int(np.searchsorted(reach, self.t0, side="right"))
        hi = int(np.searchsorted(st, self.t1, side="left"))
        shown = idx[lo:hi]
        if len(shown) > 2 * plot:  # many per cell: the last to start in each cell shows
            c = ((st[lo:hi] - self.t0) * (plot / span)).astype(np.int64)  # (no overflow)
            keep = np.r_[c[1:] != c[:-1], True]
            keep[np.flatnonzero(shown == self.cur)] = True
            shown = shown[keep]
        # the current block last: where many share a cell it is drawn, not drawn over
        order = shown.tolist()
        if self.cur in order:
            order.remove(self.cur)
            order.append(self.cur)
        for i in order:
            b = self.blocks[i]
            s, e = _ns(b["start_us"]), _ns(b["end_us"])
            if e <= self.t0 or s >= self.t1:
                continue
            c0 = max(int((s - self.t0) * plot // span), 0)
            c1 = min(max(int(-(-(e - self.t0) * plot // span)), c0 + 1), plot)
            colour = self.colour.get(b["group"], p.other)
            st = Style(color="#000000", bgcolor=colour, bold=True, reverse=i == self.cur)
            # a bar at each block's start: neighbours of one colour stay apart
            text = pad(first_cells("▏" + safe_text(b["name"]), c1 - c0), c1 - c0)
            j = c0
            for piece, w in clusters(text):  # a wide character: its second cell empty
                cells[j] = (piece, st)
                if w == 2:
                    cells[j + 1] = ("", st)
                j += w
        segs = [Segment(fit(label, LABEL), Style(color=p.label))]
        segs += [Segment(ch, st) for ch, st in _whole(cells)]
        return pad_strip(segs, width)

    def current(self) -> dict[str, Any] | None:
        return self.blocks[self.cur] if 0 <= self.cur < len(self.blocks) else None

    def action_step(self, delta: int) -> None:
        if not self.blocks:
            return
        self.cur = max(0, min(len(self.blocks) - 1, self.cur + int(delta)))
        b = self.blocks[self.cur]
        s, e = _ns(b["start_us"]), _ns(b["end_us"])
        if e <= self.t0 or s >= self.t1:  # follow the cursor out of the window
            half = (self.t1 - self.t0) // 2
            mid = (s + e) // 2
            self.t0, self.t1 = max(0, mid - half), max(0, mid - half) + 2 * half
        self.refresh()
        self.post_message(self.Moved())

    def action_zoom(self, factor: float) -> None:
        mid = (self.t0 + self.t1) // 2
        half = min(max(int((self.t1 - self.t0) * float(factor) / 2), 500),
                   max(self.end_ns // 2, 500))  # never wider than the trace
        self.t0, self.t1 = max(0, mid - half), max(0, mid - half) + 2 * half
        self.refresh()
        self.post_message(self.Moved())

    def action_pan(self, fraction: float) -> None:
        d = int((self.t1 - self.t0) * float(fraction))
        d = max(d, -self.t0)
        self.t0, self.t1 = self.t0 + d, self.t1 + d
        self.refresh()
        self.post_message(self.Moved())

    def action_choose(self) -> None:
        b = self.current()
        if b is not None:
            self.post_message(self.Chosen(_ns(b["start_us"]), _ns(b["end_us"])))


def phase_table(blocks: list[dict[str, Any]], figures: dict[str, dict[str, Any]]
                ) -> list[dict[str, Any]]:
    """One row per phase name: its figures (``figures``: what its occurrences own, by
    launch, as ``summary --json``'s annotation rows have them — occurrences, CPU time, busy
    time of its computation and of its communication, exposed communication, overlap %) and
    the typical SMs of its blocks; then ``(no phase)``."""
    keys = ("count", "total_us", "comp_us", "comm_us", "exposed_comm_us", "overlap_pct")
    out: dict[str, dict[str, Any]] = {}
    sms: dict[str, dict[str, list[int]]] = {}
    for b in blocks:
        if b["name"] not in out:
            f = figures.get(b["name"], {})
            if b.get("source") == "kernels":  # no annotation: the blocks' own figures
                f = {"count": 0, "total_us": 0.0, "comp_us": 0.0, "comm_us": 0.0,
                     "exposed_comm_us": None}  # a computation block exposes nothing
            out[b["name"]] = {"name": b["name"], "group": b["group"],
                              "source": "kernels" if b.get("source") == "kernels" else "cpu",
                              "first": (b["start_us"], b["end_us"]),
                              **{k: f.get(k) for k in keys}}
            sms[b["name"]] = {"comp": [], "comm": []}
        row = out[b["name"]]
        if row["source"] == "kernels":
            row["count"] += 1
            row["total_us"] = round(row["total_us"] + b["end_us"] - b["start_us"], 3)
            row[f"{b['class']}_us"] = round(row[f"{b['class']}_us"] + b["busy_us"], 3)
            if b.get("exposed_us") is not None:
                row["exposed_comm_us"] = round((row["exposed_comm_us"] or 0) + b["exposed_us"], 3)
            c = row["comm_us"]
            row["overlap_pct"] = round(100 * (c - (row["exposed_comm_us"] or 0)) / c, 2) \
                if c else None
        if b["sms"] is not None:
            sms[b["name"]][b["class"]].append(b["sms"])
    for name, row in out.items():
        for cls in ("comp", "comm"):
            vals = sorted(sms[name][cls])
            row[f"{cls}_sms"] = vals[len(vals) // 2] if vals else None
    rows = list(out.values())
    none = figures.get(NO_PHASE)
    if none is not None:
        rows.append({"name": NO_PHASE, "group": "", "source": "none",
                     **{k: none.get(k) for k in keys}, "comp_sms": None, "comm_sms": None})
    return rows


class PhaseScreen(Screen[None]):
    HELP_TITLE = "phase view"
    HELP_NOTES = [("< > ^r", "in the phase table (tab reaches it): sort, reverse")]
    BINDINGS = [
        Binding("escape,q", "back", "back"),
        Binding("plus,equals_sign", "level(1)", "deeper annotations", key_display="+"),
        Binding("minus", "level(-1)", "shallower annotations", key_display="-"),
        Binding("tab", "app.focus_next", "next panel", show=False),
        Binding("shift+tab", "app.focus_previous", "previous panel", show=False),
    ]
    DEFAULT_CSS = """
    PhaseScreen #ph-title { height: 1; background: $boost; }
    PhaseScreen #ph-info { height: 1; }
    PhaseScreen Grid { height: 1fr; min-height: 5; border-top: solid $primary; }
    PhaseScreen PhaseMap:focus { background: $boost; }
    """

    def __init__(self, blocks: list[dict[str, Any]], figures: dict[str, dict[str, Any]],
                 t0: int, t1: int, palette: Palette, end_ns: int,
                 relevel: Any = None) -> None:
        """``figures``: per phase name (and ``(no phase)``) what it owns (see
        :func:`phase_table`); ``relevel(depth)``: the blocks and figures at another
        annotation depth (``+``/``-``)."""
        super().__init__()
        self.blocks, self.palette = blocks, palette
        self.figures = figures
        self.rows = phase_table(blocks, figures)
        self.t0, self.t1, self.end_ns = t0, t1, end_ns
        self.relevel = relevel
        self.level: int | None = None  # None: the innermost that repeat

    def compose(self) -> ComposeResult:
        yield Static(id="ph-title")
        yield PhaseMap(self.blocks, self.t0, self.t1, self.palette, self.end_ns)
        yield Static(id="ph-info")
        yield Grid(GridModel(PHASE_COLUMNS, self.rows), "total_us",
                   cursor_bg=self.palette.cursor_bg)
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one(PhaseMap).focus()
        self.refresh_panels()

    def refresh_panels(self) -> None:
        pm = self.query_one(PhaseMap)
        t = Text("phases", style="bold")
        t.append(f"  {fmt_time(pm.t0)} → {fmt_time(pm.t1)}  "
                 f"{'innermost' if self.level is None else f'depth {self.level}'}  ", style="dim")
        for g, colour in pm.colour.items():  # the legend: chunk / micro-batch colours
            t.append(f" {safe_text(g, 12) or '·'} ", style=Style(color="#000000", bgcolor=colour))
            t.append(" ")
        t.append(" ←/→ block  ⏎ timeline  +/- depth  tab: table", style="dim")
        self.query_one("#ph-title", Static).update(t, layout=False)
        b = pm.current()
        info = Text()
        if b is not None:
            info.append(safe_text(b["name"], 40), style="bold")
            n = b["kernels"]
            info.append(f"  GPU {b['device']} {b['class']}  {fmt_time(_ns(b['start_us']))} → "
                        f"{fmt_time(_ns(b['end_us']))}  busy {fmt_time(_ns(b['busy_us']))}"
                        + (f"  exposed {fmt_time(_ns(b['exposed_us']))}"
                           if b.get("exposed_us") is not None else "")
                        + f"  {n} kernel{'' if n == 1 else 's'}"
                        + (f"  {b['sms']} SMs (peak {b['sms_peak']})" if b["sms"] is not None else ""))
        self.query_one("#ph-info", Static).update(info, layout=False)

    def on_phase_map_moved(self, _: PhaseMap.Moved) -> None:
        self.refresh_panels()

    def on_phase_map_chosen(self, event: PhaseMap.Chosen) -> None:
        self.post_message(GotoRange(event.t0, event.t1))

    def on_grid_chosen(self, event: Grid.Chosen) -> None:
        event.stop()
        row = self.rows[event.index]
        if row["source"] == "none":  # (no phase): the GPU work no phase launched
            self.post_message(ShowUnattributed())
            return
        if row["source"] == "kernels":  # a block of the kernel sequence: its first one
            self.post_message(GotoRange(_ns(row["first"][0]), _ns(row["first"][1])))
            return
        self.post_message(GotoAnnotation(row["name"], "cpu"))

    def action_level(self, delta: int) -> None:
        """The phases at the next deeper / shallower annotation depth."""
        if self.relevel is None:
            return
        depths = sorted({b.get("depth", 0) for b in self.blocks}) or [0]
        here = self.level if self.level is not None else max(depths)
        level = max(0, here + int(delta))
        blocks, figures = self.relevel(level)
        if not blocks:
            self.app.notify(f"no repeating annotation at depth {level} launched GPU kernels",
                            timeout=3, markup=False)
            return
        self.level, self.blocks, self.figures = level, blocks, figures
        self.rows = phase_table(blocks, figures)
        old = self.query_one(PhaseMap)
        pm = PhaseMap(blocks, old.t0, old.t1, self.palette, self.end_ns)
        self.mount(pm, after=old)
        old.remove()
        pm.focus()
        self.query_one(Grid).set_model(GridModel(PHASE_COLUMNS, self.rows), "total_us")
        self.refresh_panels()

    def action_back(self) -> None:
        self.app.pop_screen()
