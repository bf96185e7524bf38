"""Colour scales for heatmaps: a fraction 0..1 as one of 9 shades between an empty cell's
colour and a series colour (Rich styles, cached)."""

from __future__ import annotations

from functools import lru_cache

from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

LEVELS = 8


def level(fraction: float) -> int:
    """0 for nothing at all, else 1..LEVELS (any busy time shows)."""
    if fraction <= 0:
        return 0
    return max(1, min(LEVELS, int(fraction * LEVELS + 0.999)))


@lru_cache(maxsize=4096)
def shade(base: str, color: str, lvl: int) -> str:
    """The colour ``lvl``/LEVELS of the way from ``base`` to ``color`` (as #rrggbb)."""
    a = Color.parse(base).get_truecolor()
    b = Color.parse(color).get_truecolor()
    t = lvl / LEVELS
    return "#%02x%02x%02x" % tuple(round(x + (y - x) * t) for x, y in zip(a, b))


@lru_cache(maxsize=4096)
def half_block(base: str, top: str, top_lvl: int, bottom: str, bottom_lvl: int) -> Style:
    """The style of a ``▀`` cell: the upper half shows one series, the lower half another."""
    return Style(color=shade(base, top, top_lvl), bgcolor=shade(base, bottom, bottom_lvl))


@lru_cache(maxsize=1024)
def cell(base: str, color: str, lvl: int, text_color: str | None = None) -> Style:
    return Style(color=text_color, bgcolor=shade(base, color, lvl))


def pad_strip(segs: list[Segment], width: int) -> Strip:
    """``segs`` as one line of exactly ``width`` cells (blank-padded or cut)."""
    used = sum(len(s.text) for s in segs)
    if used < width:
        segs.append(Segment(" " * (width - used)))
    return Strip(segs).crop(0, width)
