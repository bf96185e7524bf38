"""The detail pane: the selected slice and the marked range, as lines drawn on demand.

A ``Static`` in a scrolling container re-measures its text on every update, and the new
height relays out the whole screen, the timeline included, two or three times per selection.
This pane has the size its CSS gives it whatever it shows: an update re-wraps the text to the
pane's width and repaints the pane alone. The wheel (or ``scroll_by``) scrolls long text.
"""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.strip import Strip
from textual.widget import Widget


_PLAIN = Style()


class DetailPane(Widget, can_focus=True):
    """Tab focuses it; the arrows and page keys then scroll a long account."""

    DEFAULT_CSS = """
    DetailPane { height: 1fr; }
    """
    BINDINGS = [
        Binding("up", "scroll(-1)", show=False), Binding("down", "scroll(1)", show=False),
        Binding("pageup", "scroll(-10)", show=False),
        Binding("pagedown", "scroll(10)", show=False),
    ]

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.text = Text()
        self.offset_y = 0
        self._lines: list[Strip] = []
        self._width = -1

    def set_text(self, text: Text) -> None:
        self.text = text
        self.offset_y = 0
        self._width = -1  # wrap again on the next paint
        self.refresh()

    @property
    def plain(self) -> str:
        return self.text.plain

    def _wrap(self, width: int) -> None:
        if width == self._width:
            return
        self._width = width
        if width <= 0 or not self.text.plain:
            self._lines = []
            return
        console = self.app.console
        opts = console.options.update_width(width).update(no_wrap=False, overflow="fold")
        lines = console.render_lines(self.text, opts, pad=False)
        # every segment styled: Textual's monochrome filter (NO_COLOR) needs a style
        self._lines = [Strip([Segment(seg.text, seg.style or _PLAIN) for seg in line
                              if not seg.control]).adjust_cell_length(width, _PLAIN)
                       for line in lines]

    def render_line(self, y: int) -> Strip:
        width = self.content_size.width
        self._wrap(width)
        i = y + self.offset_y
        if 0 <= i < len(self._lines):
            return self._lines[i]
        return Strip([Segment(" " * max(width, 0), _PLAIN)], max(width, 0))

    def on_resize(self) -> None:
        self._width = -1

    def scroll_by_lines(self, n: int) -> None:
        most = max(0, len(self._lines) - self.size.height)
        new = max(0, min(most, self.offset_y + n))
        if new != self.offset_y:
            self.offset_y = new
            self.refresh()

    def action_scroll(self, n: int) -> None:
        self.scroll_by_lines(n)

    def on_mouse_scroll_down(self, event) -> None:
        self.scroll_by_lines(3)
        event.stop()

    def on_mouse_scroll_up(self, event) -> None:
        self.scroll_by_lines(-3)
        event.stop()
