"""The compare view (``tracetui diff BASE NEW`` in a terminal): kernels by impact, then
(``a``) annotations and (``g``) GPUs before and after, each sortable and filterable."""

from __future__ import annotations

import os
from typing import Any

from rich.text import Text
from textual.app import App
from textual.binding import Binding

from ..export import csv_text, export_name, write_new
from ..textutil import safe_text
from .process import OneLineFailure, Suspends
from .grid import Column, Grid, GridModel, fmt_int, fmt_pct, fmt_us
from .messages import ExportRows
from .themes import DEFAULT_THEME, Palette, load_theme
from .views import TableScreen


def _signed_ms(v: Any) -> str:
    return "" if v is None else f"{float(v) / 1000:+,.3f}"


def _signed_pct(v: Any) -> str:
    return "" if v is None else f"{float(v):+.1f}%"


def _signed_int(v: Any) -> str:
    return "" if v is None else f"{int(v):+,}"


def _signed_us(v: Any) -> str:
    return "" if v is None else f"{float(v):+,.1f}"


def _text(v: Any) -> str:
    return safe_text("" if v is None else v)


def _in(v: Any) -> str:
    """Which run a row is in: blank for both, "base" or "new" for a row of one run only."""
    return "" if v == "both" else safe_text(v)


def _one_sided(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Kernel rows as the view shows them: a kernel in one run only has no figures on the
    other side (blank, as ``—`` in the text), where the JSON counts it 0 calls, 0 ms."""
    out = []
    for r in rows:
        if r["in"] != "both":
            gone = "new" if r["in"] == "base" else "base"
            r = {**r, **{f"{gone}_{k}": None for k in ("count", "total_us", "avg_us")}}
        out.append(r)
    return out


KERNEL_COLUMNS = [
    Column("kernel", "name", 0, numeric=False, fmt=_text, min_width=20),
    Column("class", "class", 5, numeric=False, fmt=_text),
    Column("in", "in", 4, numeric=False, fmt=_in),
    Column("base n", "base_count", 7, fmt=fmt_int, optional=2),
    Column("new n", "new_count", 7, fmt=fmt_int, optional=2),
    Column("Δn", "delta_count", 6, fmt=_signed_int),
    Column("base ms", "base_total_us", 9, fmt=fmt_us),
    Column("new ms", "new_total_us", 9, fmt=fmt_us),
    Column("Δ ms", "delta_total_us", 9, fmt=_signed_ms),
    Column("Δ%", "delta_total_pct", 7, fmt=_signed_pct),
    Column("Δavg µs", "delta_avg_us", 8, fmt=_signed_us, optional=1),
    Column("impact", "impact_us", 9, fmt=fmt_us, optional=4),
]
ANNOTATION_COLUMNS = [
    Column("annotation", "name", 0, numeric=False, fmt=_text, min_width=16),
    Column("on", "source", 4, numeric=False, fmt=_text),  # cpu, gpu, none
    Column("in", "in", 4, numeric=False, fmt=_in),
    Column("base n", "base_count", 7, fmt=fmt_int, optional=2),
    Column("new n", "new_count", 7, fmt=fmt_int, optional=2),
    Column("base ms", "base_total_us", 9, fmt=fmt_us),
    Column("new ms", "new_total_us", 9, fmt=fmt_us),
    Column("Δ ms", "delta_total_us", 9, fmt=_signed_ms),
    Column("base ovl", "base_overlap_pct", 8, fmt=fmt_pct, optional=1),
    Column("new ovl", "new_overlap_pct", 8, fmt=fmt_pct, optional=1),
    Column("Δ exposed", "delta_exposed_comm_us", 10, fmt=_signed_ms),
    Column("impact", "impact_us", 9, fmt=fmt_us, optional=4),
]
DEVICE_COLUMNS = [
    Column("GPU", "device", 4, fmt=fmt_int),
    Column("new GPU", "new_device", 7, fmt=fmt_int, optional=2),  # paired in order: differs
    Column("base comm", "base_comm_us", 10, fmt=fmt_us),
    Column("new comm", "new_comm_us", 10, fmt=fmt_us),
    Column("base comp", "base_comp_us", 10, fmt=fmt_us),
    Column("new comp", "new_comp_us", 10, fmt=fmt_us),
    Column("base ovl", "base_overlap_pct", 8, fmt=fmt_pct, optional=1),
    Column("new ovl", "new_overlap_pct", 8, fmt=fmt_pct, optional=1),
    Column("base exp", "base_exposed_comm_us", 10, fmt=fmt_us, optional=1),
    Column("new exp", "new_exposed_comm_us", 10, fmt=fmt_us, optional=1),
    Column("Δ exposed", "delta_exposed_comm_us", 10, fmt=_signed_ms),
]


class CompareScreen(TableScreen):
    """One table of the comparison at a time: kernels (full or short names), annotations,
    GPUs. ⏎ shows a row whole (full name, every figure)."""

    BINDINGS = [b for b in TableScreen.BINDINGS if b.action != "back"] + [
        Binding("escape", "back", "quit"),
        Binding("tab", "next_table(1)", "next table: kernels, short names, annotations, GPUs"),
        Binding("shift+tab", "next_table(-1)", "previous table", show=False),
        Binding("ctrl+t", "table('groups')", "short/full names", key_display="^t"),
    ]
    TABLES = ("kernels", "groups", "annotations", "devices")
    what = "diff"

    def __init__(self, diff: dict[str, Any], palette: Palette) -> None:
        super().__init__()
        self.diff, self.palette = diff, palette
        self.table = "kernels"
        self.rows = {"kernels": _one_sided(diff["kernels"]),
                     "groups": _one_sided(diff["kernel_groups"]),
                     "annotations": diff["annotations"], "devices": diff["devices"]}

    def _model(self, table: str) -> tuple[GridModel, str, bool]:
        """(model, sort column, descending) of a table: by impact, GPUs in order."""
        if table in ("kernels", "groups"):
            return GridModel(KERNEL_COLUMNS, self.rows[table], text_key="name"), "impact_us", True
        if table == "annotations":
            return (GridModel(ANNOTATION_COLUMNS, self.rows[table], text_key="name"),
                    "impact_us", True)
        return GridModel(DEVICE_COLUMNS, self.rows[table]), "device", False

    def compose(self) -> Any:
        model, key, desc = self._model(self.table)
        yield from self.compose_table(Grid(model, key, descending=desc,
                                           cursor_bg=self.palette.cursor_bg))

    def action_next_table(self, step: int) -> None:
        self.action_table(self.TABLES[(self.TABLES.index(self.table) + int(step)) % 4],
                          toggle=False)

    def action_table(self, table: str, toggle: bool = True) -> None:
        if self.grid is None:
            return
        if toggle and table == "groups" and self.table == "groups":
            table = "kernels"  # ^t again: back to full names
        self.table = table
        self.grid.set_model(*self._model(table))
        self.what = f"diff-{table}"
        self.update_title()

    def title_text(self) -> Text:
        tot = self.diff["totals"]
        label = {"kernels": "kernels by impact", "groups": "kernels by short name",
                 "annotations": "annotations", "devices": "GPUs"}[self.table]
        t = Text(label, style="bold")
        for key, name in (("step_us", "step"), ("comp_us", "comp"), ("comm_us", "comm"),
                          ("exposed_comm_us", "exposed")):
            p = tot[key]["delta_pct"]
            if p is not None:
                t.append(f"  {name} ", style="dim")
                t.append(f"{p:+.1f}%", style="red" if p > 0 else ("green" if p < 0 else ""))
        n = len(self.diff["only_in_new"]), len(self.diff["only_in_base"])
        if any(n):
            t.append(f"  only new {n[0]} · only base {n[1]}", style="dim")
        return t

    def on_grid_chosen(self, event: Grid.Chosen) -> None:
        event.stop()
        g = self.grid
        assert g is not None
        r = g.model.records[event.index]
        head = safe_text(r.get("name", f"GPU {r.get('device')}"), 300)
        figures = safe_text("  ".join(f"{c.title} {c.fmt(r.get(c.key))}"
                                      for c in g.model.columns[1:]
                                      if c.fmt(r.get(c.key)) not in ("", "–")))
        self.app.notify(f"{head}\n{figures}", timeout=12, markup=False)

    def action_back(self) -> None:
        g = self.grid
        if g is not None and g.filter_text:
            super().action_back()
            return
        self.app.exit()


class CompareApp(OneLineFailure, Suspends, App[None]):
    """``tracetui diff BASE NEW`` in a terminal: one :class:`CompareScreen`."""

    TITLE = "tracetui diff"
    BINDINGS = [Binding("question_mark", "help", "help", key_display="?"),
                Binding("ctrl+z", "suspend_process", "suspend to the shell (fg returns)",
                        key_display="^z", show=False, priority=True),
                # ctrl+c quits here (nothing loads): Textual's default only says to press ^q
                Binding("ctrl+c", "quit", "quit", show=False, priority=True)]

    def action_help(self) -> None:
        from .helpscreen import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    def __init__(self, diff: dict[str, Any], label: str, theme: str = DEFAULT_THEME) -> None:
        super().__init__()
        ui = load_theme(theme)
        self.palette = ui.palette
        self.register_theme(ui.textual)
        self.theme = ui.textual.name
        self.diff = diff
        self.label = label  # names exported files: tracetui-LABEL-WHAT-DATE.csv

    def on_mount(self) -> None:
        self.watch_for_resume()
        self.push_screen(CompareScreen(self.diff, self.palette))
        for w in self.diff.get("warnings", [])[:3]:
            self.notify(safe_text(w, 200), severity="warning", timeout=10, markup=False)

    def on_export_rows(self, message: ExportRows) -> None:
        self.export_csv(message.what, message.header, message.rows)

    def export_csv(self, what: str, header: list[str], rows: list[list[Any]]) -> None:
        try:
            path = write_new(os.getcwd(), export_name(self.label, what, "csv"),
                             csv_text(header, rows))
        except OSError as e:
            self.notify(f"could not write the CSV: {safe_text(e, 120)}", severity="error",
                        timeout=8, markup=False)
            return
        self.notify(f"{len(rows):,} rows written to {safe_text(path.name, 100)}", timeout=6,
                    markup=False)
