"""The key hints at the bottom of every screen, as one line of text.

Textual's Footer builds a widget per key and rebuilds them all whenever the focus or the
screen changes (100-200 ms on a 2-core machine, on every Tab); this draws the same hints
as a single Text, rebuilt only when the screen's active bindings change.
"""

from __future__ import annotations

from rich.text import Text
from textual.screen import Screen
from textual.widgets import Static


class KeyBar(Static):
    DEFAULT_CSS = """
    KeyBar { dock: bottom; height: 1; background: $panel; color: $text-muted; }
    """

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._changed)
        self._changed(self.screen)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def refresh_keys(self) -> None:
        """Again, now: what applies changed (the trace finished loading)."""
        self._changed(self.screen)

    def _changed(self, screen: Screen) -> None:
        if not self.is_attached or screen is not self.screen:
            return
        t = Text(no_wrap=True, overflow="ellipsis")
        seen: set[str] = set()
        applies = getattr(self.app, "applies", None)  # what means something on this trace
        typed = hasattr(screen, "COMMAND_CHARS")  # a table: its printable keys are filter text
        for _node, binding, enabled, _tip in screen.active_bindings.values():
            if not binding.show or not enabled or binding.action in seen:
                continue
            if applies is not None and not applies(binding.action):
                continue
            if typed and len(binding.key) == 1 and binding.key.isprintable():
                continue  # "q" types a q into a table's filter
            seen.add(binding.action)
            t.append(f" {self.app.get_key_display(binding)} ", style="bold")
            t.append(binding.description + " ")
        t.append(" ^p ", style="bold")
        t.append("commands")
        self.update(t, layout=False)  # one line, always: no relayout of the screen
