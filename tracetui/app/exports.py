"""What the app writes: CSVs of its tables and the marked range, SVG screenshots.

Mixed into :class:`~tracetui.app.app.TraceApp`. Screens ask for a CSV with an
:class:`~tracetui.app.messages.ExportRows` message; files go to the working directory under
a new name (``tracetui-TRACE-WHAT-DATE.csv``), never over an existing one.
"""

from __future__ import annotations

import os
from typing import Any

from ..export import csv_text, export_name, write_new
from ..textutil import safe_text
from ..trace.source import shown_path
from .messages import ExportRows

RANGE_HEADER = ["table", "name", "class", "count", "time_in_range_us", "pct"]


def range_rows(st: dict[str, Any]) -> list[list[Any]]:
    """The marked range's statistics as CSV rows: its kernels, then its lanes."""
    rows: list[list[Any]] = []
    for k in st["kernels"]:
        rows.append(["kernel", k["name"], k["class"], k["count"], k["time_ns"] / 1000,
                     round(k["pct"], 3)])
    for ln in st["lanes"]:
        rows.append(["lane", ln["lane"], ln["kind"], "", ln["busy_ns"] / 1000,
                     round(ln["pct"], 3)])
    return rows


class Exports:
    """The app's exports (``e``, ``ctrl+s``, and what screens ask for)."""

    last_export: str | None = None

    def action_export(self: Any) -> None:
        """On the timeline: the marked range's statistics (kernels, then lanes)."""
        st = self.session.range_stats
        if st is None:
            self.notify("nothing to export here: mark a range (m), or press e in the kernel "
                        "table (k) or the overlap view (o)", timeout=5, markup=False)
            return
        self.export_csv("range", RANGE_HEADER, range_rows(st))

    def on_export_rows(self: Any, message: ExportRows) -> None:
        self.export_csv(message.what, message.header, message.rows)

    def export_csv(self: Any, what: str, header: list[str], rows: list[list[Any]]) -> None:
        self._write_export(what, "csv", csv_text(header, rows), f"{len(rows):,} rows")

    def action_screenshot_svg(self: Any) -> None:
        self._write_export("screen", "svg", self.export_screenshot(), "screenshot")

    def _write_export(self: Any, what: str, ext: str, data: str, desc: str) -> None:
        try:
            path = write_new(os.getcwd(), export_name(shown_path(self.session.path), what, ext),
                             data)
        except OSError as e:
            self.notify(f"could not write the {ext.upper()}: {safe_text(e, 120)}",
                        severity="error", timeout=8, markup=False)
            return
        self.last_export = str(path)
        self.notify(f"{desc} written to {safe_text(path.name, 100)}", timeout=6, markup=False)
