"""``?``: the keys of the screen in front, generated from its bindings (the focused widget's,
the screen's and the app's, as Textual resolves them), and that screen's notes."""

from __future__ import annotations

import dataclasses
import textwrap
from typing import Any, Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

from ..textutil import safe_text


def palette_rows(screen: Screen, applies: Callable[[str], bool] | None = None,
                 main: bool = False) -> list[tuple[str, str, str, Any]]:
    """(keys, what they do, action, the node that binds it) for every enabled binding with
    a description on ``screen``, one row per job (its keys together), in the order
    Textual lists them; actions for which ``applies`` says no (rank keys on one trace, …)
    are left out. ``main``: ``screen`` is the app's first screen, under the command
    palette: the app's keys count as enabled there (the palette on top disables them)."""
    rows: dict[str, tuple[list[str], str, Any]] = {}  # by description: one row per job
    app = screen.app
    found = [(node, binding, enabled) for node, binding, enabled, _tip
             in screen.active_bindings.values()]
    if main:  # under the palette the app leaves its timeline keys out of active_bindings
        keymap = getattr(app, "keymap", {})  # as the user rebound them
        found += [(app, dataclasses.replace(b, key=k.strip()), True) for b in type(app).BINDINGS
                  if isinstance(b, Binding)
                  for k in keymap.get(b.id or "", b.key).split(",")]
    typed = hasattr(screen, "COMMAND_CHARS")  # a table: its printable keys are filter text
    for node, binding, enabled in found:
        if not enabled or not binding.description or \
                (binding.action, binding.description) not in _ours(type(node)):
            continue  # Textual's own (scrolling, focus, copy) are not this screen's keys
        if typed and len(binding.key) == 1 and binding.key.isprintable():
            continue  # "q" types a q into a table's filter
        action = binding.action
        if applies is not None and not applies(action):
            continue
        shown = app.get_key_display(binding)
        got = rows.get(binding.description)
        if got is None:
            rows[binding.description] = ([shown], action, node)
        elif shown not in got[0]:
            got[0].append(shown)
    return [(" ".join(keys), what, action, node) for what, (keys, action, node) in rows.items()]


def _ours(cls: type) -> frozenset[tuple[str, str]]:
    """(action, description) of the bindings tracetui's classes declare on ``cls``."""
    got = _OURS.get(cls)
    if got is None:
        got = _OURS[cls] = frozenset(
            (b.action, b.description) for c in cls.__mro__
            if c.__module__.startswith("tracetui.")
            for b in c.__dict__.get("BINDINGS", ()) if isinstance(b, Binding))
    return got


_OURS: dict[type, frozenset[tuple[str, str]]] = {}


def help_rows(screen: Screen, applies: Callable[[str], bool] | None = None
              ) -> list[tuple[str, str]]:
    """(keys, what they do) of ``screen``: :func:`palette_rows` without the nodes."""
    return [(keys, what) for keys, what, _a, _n in palette_rows(screen, applies)]


KEYS = 14  # the keys' column
WRAP = 72 - 2 - 4 - KEYS - 2 - 2  # the box less its border, padding, keys and a scrollbar


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 72; height: auto; max-height: 100%;
                                  border: round $accent; background: $surface; }
    HelpScreen Static { padding: 1 2; }
    """

    def __init__(self, screen: Screen, warnings: list[str] | None = None,
                 applies: Callable[[str], bool] | None = None) -> None:
        super().__init__()
        # the main screen's notes are the app's (the timeline is the app's default screen)
        owner = screen.app if screen is screen.app.screen_stack[0] else screen
        self.title_text = str(getattr(owner, "HELP_TITLE", "") or "this screen")
        self.rows = help_rows(screen, applies)
        self.notes: list[tuple[str, str]] = list(getattr(owner, "HELP_NOTES", ()))
        self.warnings = list(warnings or [])

    def compose(self) -> ComposeResult:
        t = Text()
        if self.warnings:
            t.append("this trace\n\n", style="bold")
            for w in self.warnings[:12]:
                t.append("  ⚠ ", style="yellow")
                t.append(safe_text(w, 400) + "\n")
            if len(self.warnings) > 12:
                t.append(f"  … {len(self.warnings) - 12} more (tracetui summary lists all)\n")
            t.append("\n")
        t.append(f"keys · {self.title_text}\n\n", style="bold")
        for key, what in self.rows + self.notes + [("^p", "these commands, to search")]:
            t.append(f"{key:>{KEYS}}  ", style="bold")
            # a description that wraps goes on under itself, not under the keys
            lines = textwrap.wrap(what, WRAP) or [""]
            t.append(("\n" + " " * (KEYS + 2)).join(lines) + "\n")
        with VerticalScroll():
            yield Static(t)
