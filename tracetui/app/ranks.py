"""The rank view: one row per rank of a job (``tracetui DIR``), the straggler marked; Enter
opens that rank's timeline (the command line runs it, then comes back here)."""

from __future__ import annotations

import os
from typing import Any

from rich.text import Text
from textual.binding import Binding

from .grid import Column, Grid, GridModel, fmt_int, fmt_pct, fmt_us
from .tableapp import TableApp
from .themes import DEFAULT_THEME
from .views import TableScreen


def _mark(v: Any) -> str:
    return "◀ straggler" if v else ""


RANK_COLUMNS = [
    Column("rank", "rank", 5, fmt=fmt_int),
    Column("steps", "steps", 5, fmt=fmt_int),
    Column("step ms", "step_us", 9, fmt=fmt_us),
    Column("GPU busy", "gpu_busy_us", 10, fmt=fmt_us),
    Column("busy", "gpu_busy_pct", 6, fmt=fmt_pct, optional=2),
    Column("comp/step", "comp_per_step_us", 10, fmt=fmt_us),
    Column("comm ms", "comm_us", 10, fmt=fmt_us, optional=3),
    Column("exposed", "exposed_comm_us", 10, fmt=fmt_us),
    Column("overlap", "overlap_pct", 7, fmt=fmt_pct),
    Column("", "straggler", 11, numeric=False, fmt=_mark, min_width=11),
    Column("file", "name", 0, numeric=False, min_width=10, optional=1),
]


class RanksScreen(TableScreen):
    """The per-rank table: sortable by any column (``<`` ``>`` ``r``), filtered by file name."""

    BINDINGS = [b for b in TableScreen.BINDINGS if b.action != "back"] + [
        Binding("escape", "back", "quit"),
        Binding("q", "app.exit_ranks", "quit", show=False),
    ]
    what = "ranks"

    def __init__(self, summary: dict[str, Any], cursor_file: str | None = None) -> None:
        super().__init__()
        self.summary = summary
        self.rows = [{**r, "name": os.path.basename(r["file"])} for r in summary["ranks"]]
        self.cursor_file = cursor_file

    def compose(self) -> Any:
        model = GridModel(RANK_COLUMNS, self.rows, text_key="name")
        yield from self.compose_table(Grid(model, "rank", descending=False,
                                           cursor_bg=self.app.palette.cursor_bg))

    def on_mount(self) -> None:
        super().on_mount()
        if self.cursor_file is not None and self.grid is not None:
            idx = next((i for i, r in enumerate(self.rows) if r["file"] == self.cursor_file), -1)
            if idx >= 0:
                self.grid._reorder(keep=idx)

    def title_text(self) -> Text:
        s = self.summary
        t = Text(f"{len(self.rows)} ranks", style="bold")
        if s["stragglers"]:
            t.append("  straggler: rank " + ", ".join(map(str, s["stragglers"])),
                     style="bold red")
        elif len(self.rows) >= 3:
            t.append("  no straggler", style="green")
        t.append("  (⏎ opens a rank's timeline; q there comes back)", style="dim")
        return t

    def on_grid_chosen(self, event: Grid.Chosen) -> None:
        event.stop()
        self.app.exit(self.rows[event.index]["file"])

    def action_back(self) -> None:
        g = self.grid
        if g is not None and g.filter_text:
            super().action_back()  # clears the filter first
            return
        self.app.exit(None)


class RanksApp(TableApp[str | None]):
    """Returns the file of the rank chosen with Enter, or None (quit)."""

    TITLE = "tracetui ranks"

    def __init__(self, summary: dict[str, Any], label: str, theme: str = DEFAULT_THEME,
                 cursor_file: str | None = None) -> None:
        super().__init__(label, summary.get("warnings", []), theme)
        self.summary = summary
        self.cursor_file = cursor_file

    def first_screen(self) -> RanksScreen:
        return RanksScreen(self.summary, self.cursor_file)

    def action_exit_ranks(self) -> None:
        self.exit(None)
