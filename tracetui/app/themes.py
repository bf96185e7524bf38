"""The one colour system: a theme file (``themes/*.toml``) gives the timeline's palette and
the chrome's Textual theme, both made here.

A theme file names a built-in Textual theme for the chrome (``textual = "textual-dark"``) and
the palette's colours (``[colors]``); the Textual theme registered for it is that built-in
one with the palette added as CSS variables (``$tracetui-comp``, ``$tracetui-comm``, …), so
that what the widgets draw by hand and what CSS styles come from one place.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from rich.color import Color, ColorParseError
from textual.theme import BUILTIN_THEMES, Theme

from ..trace import TraceError

DEFAULT_THEME = "dark"


class ThemeError(TraceError):
    """A theme that cannot be used (no such file, bad TOML, a colour that is not one): one
    line for the user, like every input error."""


@dataclass(frozen=True)
class Palette:
    comp: str = "#5fafff"
    comm: str = "#ff5fd7"
    mem: str = "#ffd75f"
    other: str = "#aaaaaa"
    cpu: str = "#5fd7af"
    label: str = "#c0c0c0"
    ruler: str = "#808080"
    cursor_bg: str = "#303a50"
    match: str = "#ffff00"
    hidden: str = "#5fd75f"
    exposed: str = "#ff5f5f"
    heat_bg: str = "#1c1c1c"
    range_bg: str = "#5f5f87"
    mem_reserved: str = "#3a3a1c"  # memory reserved but not allocated (behind the curve)
    #: the selected slice: a box in the terminal's foreground colours, reversed against
    #: the background (and unlike any class colour)
    selected_fg: str = "#000000"
    selected_bg: str = "#ffffff"


@dataclass(frozen=True)
class UiTheme:
    """A loaded theme: the palette the widgets draw with and the Textual theme of the chrome
    (register it with the app, then set ``app.theme = theme.textual.name``)."""

    name: str
    palette: Palette
    textual: Theme


def themes_dir() -> Any:
    """The theme files: the installed ``tracetui.themes`` package, or in a source checkout
    (where that package is only a mapping of ``themes/``) the folder itself."""
    try:
        return resources.files("tracetui.themes")
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[2] / "themes"


def theme_names() -> list[str]:
    return sorted(p.name[:-5] for p in themes_dir().iterdir() if p.name.endswith(".toml"))


def textual_theme(name: str, palette: Palette, base: str) -> Theme:
    """The chrome's Textual theme: built-in theme ``base`` with the palette as variables."""
    got = BUILTIN_THEMES.get(base)
    if got is None:
        raise ThemeError(f"theme {name!r}: textual = {base!r} is not a Textual theme "
                         f"(e.g. textual-dark, textual-light, nord)")
    extra = {f"tracetui-{k.replace('_', '-')}": v for k, v in dataclasses.asdict(palette).items()}
    return dataclasses.replace(got, name=f"tracetui-{name}",
                               variables={**got.variables, **extra})


def load_theme(name: str = DEFAULT_THEME) -> UiTheme:
    """Theme ``name`` from its file; :class:`ThemeError` (one line) if it cannot be used."""
    path = themes_dir().joinpath(f"{name}.toml")
    if not path.is_file():
        raise ThemeError(f"no theme {name!r} (themes: {', '.join(theme_names())})")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ThemeError(f"theme {name!r}: {e}") from None
    colors = data.get("colors", {})
    if not isinstance(colors, dict):
        raise ThemeError(f"theme {name!r}: [colors] must be a table of name = \"#rrggbb\"")
    fields = Palette.__dataclass_fields__
    for k, v in colors.items():
        if k not in fields:
            continue
        try:
            Color.parse(str(v))
        except ColorParseError:
            raise ThemeError(f"theme {name!r}: colors.{k} = {str(v)[:40]!r} is not a colour "
                             "(#rrggbb or a colour name)") from None
    palette = Palette(**{k: str(v) for k, v in colors.items() if k in fields})
    return UiTheme(name, palette, textual_theme(name, palette, str(data.get("textual",
                                                                            "textual-dark"))))
