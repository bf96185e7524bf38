"""The one colour system: a theme file gives the timeline's palette and the chrome's Textual
theme (registered, the palette as its CSS variables); a theme that cannot be used is one
line (ThemeError), never a traceback or a blank timeline."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest

from tracetui.app import themes
from tracetui.app.themes import Palette, ThemeError, load_theme, theme_names
from tracetui.trace import TraceError


def test_every_bundled_theme_is_a_palette_and_a_textual_theme():
    names = theme_names()
    assert {"dark", "light", "high-contrast"} <= set(names)
    for name in names:
        ui = load_theme(name)
        data = tomllib.loads(themes.themes_dir().joinpath(f"{name}.toml").read_text("utf-8"))
        for key, value in data["colors"].items():  # the file's colours, as the file has them
            assert getattr(ui.palette, key) == value
            assert ui.textual.variables[f"tracetui-{key.replace('_', '-')}"] == value
        assert ui.textual.name == f"tracetui-{name}"
        assert ui.textual.dark == (data["textual"] != "textual-light")


def _theme(tmp_path, monkeypatch, text: str | bytes) -> None:
    f = tmp_path / "mine.toml"
    f.write_bytes(text if isinstance(text, bytes) else text.encode())
    monkeypatch.setattr(themes, "themes_dir", lambda: tmp_path)


@pytest.mark.parametrize("text, says", [
    ('textual = "textual-dark"\n[colors]\ncomp = "x"\n', "colors.comp = 'x' is not a colour"),
    ('textual = "textual-dark"\n[colors]\ncomm = "#12345"\n', "colors.comm"),
    ('textual = "no-such"\n[colors]\ncomp = "#ffffff"\n', "'no-such' is not a Textual theme"),
    ('colors = "x"\n', "[colors] must be a table"),
    (b'textual = "\xff\xfe"\n', "theme 'mine'"),
    ('[colors\n', "theme 'mine'"),
])
def test_a_theme_that_cannot_be_used_is_one_line(tmp_path, monkeypatch, text, says):
    _theme(tmp_path, monkeypatch, text)
    with pytest.raises(ThemeError) as e:
        load_theme("mine")
    msg = str(e.value)
    assert says in msg and "\n" not in msg
    assert isinstance(e.value, TraceError)  # the CLI's one-line path for input errors


def test_a_theme_may_set_only_some_colours(tmp_path, monkeypatch):
    _theme(tmp_path, monkeypatch, '[colors]\ncomp = "red"\nunknown = "#000000"\n')
    ui = load_theme("mine")
    assert ui.palette == dataclasses.replace(Palette(), comp="red")
    assert ui.textual.name == "tracetui-mine" and ui.textual.dark


async def test_the_app_uses_the_theme_it_was_given():
    from conftest import loaded
    from tracetui.app.app import TraceApp

    app = TraceApp(str(Path(__file__).resolve().parent.parent / "sample_traces"
                       / "decode.json"), theme="light")
    async with app.run_test(size=(100, 30)) as pilot:
        await loaded(app, pilot)
        assert app.theme == "tracetui-light"
        css = app.get_css_variables()
        pal = load_theme("light").palette
        assert css["tracetui-comm"] == pal.comm == app.timeline.palette.comm
        assert css["background"] == app.available_themes["textual-light"].background
