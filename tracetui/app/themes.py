"""Loading the UI's colour themes from the theme files (``tracetui.themes``)."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from ..trace import TraceError
from .timeline import Palette

DEFAULT_THEME = "dark"


def themes_dir() -> Any:
    """The theme files: the installed ``tracetui.themes`` package, or in a source checkout
    (where that package is only a mapping of ``themes/``) the folder itself."""
    try:
        return resources.files("tracetui.themes")
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[2] / "themes"


def theme_names() -> list[str]:
    return sorted(p.name[:-5] for p in themes_dir().iterdir() if p.name.endswith(".toml"))


def load_theme(name: str = DEFAULT_THEME) -> tuple[Palette, str]:
    """(palette for the timeline, Textual theme for the chrome) of theme ``name``."""
    path = themes_dir().joinpath(f"{name}.toml")
    if not path.is_file():
        raise TraceError(f"no theme {name!r} (themes: {', '.join(theme_names())})")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise TraceError(f"theme {name!r}: {e}") from None
    colors = data.get("colors", {})
    fields = Palette.__dataclass_fields__
    palette = Palette(**{k: str(v) for k, v in colors.items() if k in fields})
    return palette, str(data.get("textual", "textual-dark"))
