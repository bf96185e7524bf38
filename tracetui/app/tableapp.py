"""A small app around one table screen (the rank view, the compare view): the theme, the
first screen, the warnings as notifications, and CSV export into the working directory."""

from __future__ import annotations

import os
from typing import Any, TypeVar

from textual.app import App
from textual.screen import Screen

from ..export import csv_text, export_name, write_new
from ..textutil import safe_text
from .themes import DEFAULT_THEME, load_theme

R = TypeVar("R")


class TableApp(App[R]):
    def __init__(self, label: str, warnings: list[str], theme: str = DEFAULT_THEME) -> None:
        super().__init__()
        self.palette, self.theme = load_theme(theme)
        self.label = label  # names exported files: tracetui-LABEL-WHAT-DATE.csv
        self._warnings = list(warnings)

    def first_screen(self) -> Screen[Any]:
        raise NotImplementedError

    def on_mount(self) -> None:
        self.push_screen(self.first_screen())
        for w in self._warnings[:3]:
            self.notify(safe_text(w, 200), severity="warning", timeout=10, markup=False)

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
