"""The rank view (``R`` over the timeline of several ranks, ``tracetui DIR``): one row per
rank with the figures of ``tracetui summary DIR``, the straggler marked; Enter goes to that
rank's lanes."""

from __future__ import annotations

from typing import Any

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.strip import Strip
from textual.widget import Widget

from ..tables import COLLECTIVE_WAITS, RANKS, rank_rows
from .grid import Column, Grid, GridModel, grid_columns
from .heat import LEVELS, cell, level, pad_strip
from .messages import GotoRank
from .themes import Palette
from .views import TableScreen

#: the heatmap's rows: (title, key, the colour of its scale)
HEAT_ROWS = [("step", "step_us", "cpu"), ("GPU busy %", "gpu_busy_pct", "comp"),
             ("comp/step", "comp_per_step_us", "comp"), ("comm", "comm_us", "comm"),
             ("exposed comm", "exposed_comm_us", "exposed"), ("overlap %", "overlap_pct", "hidden")]
#: where the ranks' collectives were matched: each rank's time waiting for the others
SYNC_ROW = ("comm sync", "comm_sync_us", "exposed")
_GLYPHS = " ▁▂▃▄▅▆▇█"
_LABEL = 14


class RankHeat(Widget):
    """Ranks across, figures down: each cell shaded from the lowest rank's value of that
    figure (light) to the highest (full), with the shade's glyph too (readable without
    colour). Stragglers are marked ▼ over their column; ▲ marks the table's cursor rank."""

    DEFAULT_CSS = """
    RankHeat { height: auto; padding: 0 0 1 0; }
    """

    def __init__(self, rows: list[dict[str, Any]], palette: Palette) -> None:
        super().__init__()
        self.ranks = rows
        self.palette = palette
        self.current = -1  # index into rows of the table's cursor rank
        self.rows = HEAT_ROWS + ([SYNC_ROW] if any(r.get("comm_sync_us") is not None
                                                   for r in rows) else [])

    def get_content_height(self, container: Any, viewport: Any, width: int) -> int:
        return len(self.rows) + 2

    def _columns(self, width: int) -> tuple[int, int]:
        """(cell width, ranks per cell) for ``width`` columns of map."""
        n = max(len(self.ranks), 1)
        room = max(width - _LABEL, 1)
        if n <= room:
            return max(1, min(3, room // n)), 1
        return 1, -(-n // room)

    def levels(self, key: str) -> list[int]:
        """Each rank's shade (1..LEVELS) of figure ``key``; 0 when it has none."""
        vals = [r.get(key) for r in self.ranks]
        have = [v for v in vals if v is not None]
        if not have:
            return [0] * len(vals)
        lo, hi = min(have), max(have)
        span = hi - lo
        return [0 if v is None else (LEVELS // 2 if span <= 0 else  # all equal: mid-shade
                                     max(1, level((v - lo) / span))) for v in vals]

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        p = self.palette
        cw, per = self._columns(width)
        n = len(self.ranks)
        groups = [list(range(i, min(i + per, n))) for i in range(0, n, per)]
        dim = Style(color=p.ruler)
        if y == 0 or y == len(self.rows) + 1:
            top = y == 0
            segs = [Segment(("ranks →" if top else "").ljust(_LABEL)[:_LABEL], dim)]
            for g in groups:
                if top:
                    mark = "▼" if any(self.ranks[i]["straggler"] for i in g) else " "
                    st = Style(color=p.exposed, bold=True)
                else:
                    mark = "▲" if self.current in g else " "
                    st = Style(color=p.label, bold=True)
                segs.append(Segment(mark.center(cw)[:cw], st))
            if not top and 0 <= self.current < n:
                segs.append(Segment(f" rank {self.ranks[self.current]['rank']}", dim))
            return pad_strip(segs, width)
        if y > len(self.rows) + 1:
            return Strip([Segment(" " * width)])
        title, key, colour = self.rows[y - 1]
        color = getattr(p, colour)
        lv = self.levels(key)
        segs = [Segment(title.ljust(_LABEL)[:_LABEL], Style(color=p.label))]
        for g in groups:
            k = max(lv[i] for i in g)
            segs.append(Segment(_GLYPHS[k] * cw, cell(p.heat_bg, color, k, color)))
        return pad_strip(segs, width)


#: what the rank view says of a rank's timeline (ranks opened on demand: RankHolds.state)
TIMELINE_STATES = {"shown": "● shown", "loading": "… loading", "failed": "✗ failed",
                   "none": "no file", "": ""}


def _bytes(n: float) -> str:
    return f"{n / 1e9:,.1f} GB" if n >= 1e9 else f"{n / 1e6:,.0f} MB"


RANK_COLUMNS = grid_columns(RANKS)
#: ranks opened on demand: which have their timeline on the main screen
HELD_COLUMN = Column("timeline", "timeline", 9, numeric=False, min_width=9)


class RanksScreen(TableScreen):
    """The per-rank table: sortable by any column (``<`` ``>`` ``r``), filtered by file name
    (``/`` or typing), exported (``e``)."""

    what = "ranks"
    # the first screen of a job opened on demand: q quits here, as on the timeline (the
    # filter is of file names: one starting with q is typed after /)
    BINDINGS = [*TableScreen.BINDINGS, Binding("q", "app.quit", "quit"),
                Binding("ctrl+t", "waits", "collectives waited for", key_display="^t")]

    def action_waits(self) -> None:
        """The collectives matched across ranks, most skewed first, naming the last rank."""
        waits = self.summary.get("collective_waits") or []
        if not waits:
            self.notify("no collectives matched across ranks (record_param_comms or NCCL "
                        "kernels on two ranks or more)", timeout=4, markup=False)
            return
        self.app.push_screen(WaitsScreen(waits, self.summary.get("collectives_matched", 0),
                                         self.palette))

    def __init__(self, summary: dict[str, Any], palette: Palette, holds: Any = None) -> None:
        """``holds``: the job's ranks opened on demand (a ``RankHolds``): a column says
        which timelines are held, the title how many and their memory."""
        super().__init__()
        self.summary, self.palette, self.holds = summary, palette, holds
        self.rows = rank_rows(summary["ranks"])
        self._held_states()

    def _held_states(self) -> None:
        if self.holds is not None:
            for r in self.rows:
                r["timeline"] = TIMELINE_STATES.get(self.holds.state(int(r["rank"])), "")

    def refresh_holds(self) -> None:
        """The held timelines changed (loaded, let go): the column and the title again."""
        self._held_states()
        if self.is_mounted:
            if self.grid is not None:
                self.grid.values_changed()
            self.update_title()

    def compose(self) -> Any:
        digits = max((len(str(r["rank"])) for r in self.rows), default=1)
        columns = [Column(**{**vars(c), "width": max(c.width, digits + 2)}) if c.key == "rank"
                   else c
                   for c in RANK_COLUMNS]  # (+2: the sort arrow beside the title)
        if self.holds is not None:
            columns.insert(columns.index(next(c for c in columns if c.key == "mark")) + 1,
                           HELD_COLUMN)
        model = GridModel(columns, self.rows, text_key="name")
        self.heat = RankHeat(self.rows, self.palette)
        grid = Grid(model, "rank", descending=False, cursor_bg=self.palette.cursor_bg)
        for w in self.compose_table(grid):
            yield w
            if w.id == "title":
                yield self.heat

    def on_mount(self) -> None:
        super().on_mount()
        self.on_grid_moved()

    def on_screen_resume(self) -> None:
        self.refresh_holds()  # (timelines loaded or let go while it was not shown)

    def on_grid_moved(self, _: Any = None) -> None:
        g = self.grid
        cur = g.current if g is not None else -1
        if cur != self.heat.current:
            self.heat.current = cur
            self.heat.refresh()

    def title_text(self) -> Text:
        s = self.summary
        t = Text(f"{len(self.rows)} ranks", style="bold")
        unread = getattr(self.holds, "unread", 0)
        if unread:
            t.append(f" (reports stopped: {unread} file{'' if unread == 1 else 's'} not read)",
                     style="yellow")
        if s["stragglers"]:
            t.append("  straggler: rank " + ", ".join(map(str, s["stragglers"])),
                     style="bold red")
        elif len(self.rows) >= 3:
            t.append("  no straggler", style="green")
        late = [(r.get("late_count") or 0, -int(r["rank"])) for r in self.rows]
        matched = s.get("collectives_matched") or 0
        if matched and late and max(late)[0] > 0:
            n, rank = max(late)
            t.append(f"  last to collectives: rank {-rank} ({n:,} of {matched:,})",
                     style="bold")
        holds = self.holds
        if holds is None:
            t.append("  (⏎ goes to its lanes)", style="dim")
            return t
        n = len(holds.held)
        t.append(f"  {n} of ≤ {holds.max_ranks} timeline{'' if holds.max_ranks == 1 else 's'}"
                 f" held" + (f", {_bytes(holds.memory_bytes())}" if n else ""), style="bold")
        if holds.loading:
            t.append(", loading rank " + ", ".join(map(str, sorted(holds.loading))),
                     style="yellow")
        t.append("  (⏎ opens its lanes)", style="dim")
        return t

    def on_grid_chosen(self, event: Grid.Chosen) -> None:
        event.stop()
        self.post_message(GotoRank(int(self.rows[event.index]["rank"])))


class WaitsScreen(TableScreen):
    """The collectives matched across ranks that waited longest (the largest start skew
    first): which rank arrived last, by how much, and the data's own transfer time; Enter
    goes to the last rank's lanes."""

    what = "collectives"

    def __init__(self, waits: list[dict[str, Any]], matched: int, palette: Palette) -> None:
        super().__init__()
        self.waits, self.matched, self.palette = list(waits), matched, palette

    def compose(self) -> Any:
        model = GridModel(grid_columns(COLLECTIVE_WAITS), self.waits, text_key="kind")
        yield from self.compose_table(Grid(model, "start_skew_us",
                                           cursor_bg=self.palette.cursor_bg))

    def title_text(self) -> Text:
        t = Text("collectives waited for", style="bold")
        t.append(f"  the most skewed of {self.matched:,} matched across ranks: sync is "
                 "waiting for the last rank to arrive (⏎ goes to its lanes)", style="dim")
        return t

    def on_grid_chosen(self, event: Grid.Chosen) -> None:
        event.stop()
        self.post_message(GotoRank(int(self.waits[event.index]["late_rank"])))
