"""The rank view (``R`` over the timeline of several ranks, ``tracetui DIR``): one row per
rank with the figures of ``tracetui summary DIR``, the straggler marked; Enter goes to that
rank's lanes."""

from __future__ import annotations

import os
from typing import Any

from rich.text import Text

from .grid import Column, Grid, GridModel, fmt_int, fmt_pct, fmt_us
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
    """The per-rank table: sortable by any column (``<`` ``>`` ``r``), filtered by file name
    (``/`` or typing), exported (``e``)."""

    what = "ranks"

    def __init__(self, summary: dict[str, Any]) -> None:
        super().__init__()
        self.summary = summary
        self.rows = [{**r, "name": os.path.basename(r["file"])} for r in summary["ranks"]]

    def compose(self) -> Any:
        model = GridModel(RANK_COLUMNS, self.rows, text_key="name")
        yield from self.compose_table(Grid(model, "rank", descending=False,
                                           cursor_bg=self.app.palette.cursor_bg))

    def title_text(self) -> Text:
        s = self.summary
        t = Text(f"{len(self.rows)} ranks", style="bold")
        if s["stragglers"]:
            t.append("  straggler: rank " + ", ".join(map(str, s["stragglers"])),
                     style="bold red")
        elif len(self.rows) >= 3:
            t.append("  no straggler", style="green")
        t.append("  (⏎ goes to its lanes)", style="dim")
        return t

    def on_grid_chosen(self, event: Grid.Chosen) -> None:
        event.stop()
        self.app.goto_rank(self.rows[event.index]["rank"])  # type: ignore[attr-defined]
