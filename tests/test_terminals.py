"""Odd terminals (issue 7), in a real pseudo-terminal: 16, 256 and 24-bit colour terminals
get only the colours they understand, NO_COLOR gets no hue, and a storm of resizes (down to
1x1 and up to 300x100) while a trace loads breaks nothing."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from ptyterm import ANSI, PtyApp

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a pty")

ROOT = Path(__file__).resolve().parent.parent
DECODE = ROOT / "sample_traces" / "annotated.json"
SGR = re.compile(rb"\x1b\[([0-9;]*)m")


def colours(data: bytes) -> dict[str, set]:
    """The colours an output sets, by kind: '16' (30-37, 40-47, 90-97, 100-107), '256'
    (38;5;N / 48;5;N) and 'rgb' (38;2;R;G;B / 48;2;R;G;B)."""
    found: dict[str, set] = {"16": set(), "256": set(), "rgb": set()}
    for params in SGR.findall(data):
        p = [int(x) if x else 0 for x in params.split(b";")]
        i = 0
        while i < len(p):
            if p[i] in (38, 48, 58) and i + 1 < len(p):
                if p[i + 1] == 5 and i + 2 < len(p):
                    found["256"].add(p[i + 2])
                    i += 3
                    continue
                if p[i + 1] == 2 and i + 4 < len(p):
                    found["rgb"].add(tuple(p[i + 2:i + 5]))
                    i += 5
                    continue
            if 30 <= p[i] <= 37 or 40 <= p[i] <= 47 or 90 <= p[i] <= 97 or 100 <= p[i] <= 107:
                found["16"].add(p[i])
            i += 1
    return found


def run_app(env: dict[str, str], cols: int = 100, rows: int = 30) -> PtyApp:
    app = PtyApp([str(DECODE)], cols=cols, rows=rows, env=env)
    assert app.wait_for("stream 7"), app.text()[-2000:]
    app.pump(1.0)
    app.keys("k")  # a second screen: the table's colours too
    app.keys(b"\x1b", "q")
    assert app.finish() == 0, app.text()[-2000:]
    return app


@pytest.mark.parametrize("term", ["xterm", "screen", "linux"])  # screen: GNU screen, old tmux
def test_a_16_colour_terminal_gets_16_colours(term):
    c = colours(bytes(run_app({"TERM": term}).out))
    assert c["16"] and not c["256"] and not c["rgb"], c


@pytest.mark.parametrize("term", ["xterm-256color", "tmux-256color", "screen-256color"])
def test_a_256_colour_terminal_gets_256_colours(term):
    c = colours(bytes(run_app({"TERM": term}).out))
    assert c["256"] and not c["rgb"], c


def test_a_truecolor_terminal_gets_24_bit_colour():
    c = colours(bytes(run_app({"TERM": "xterm-256color", "COLORTERM": "truecolor"}).out))
    assert len(c["rgb"]) > 5, c


@pytest.mark.parametrize("term", ["xterm-256color", "xterm"])
def test_no_color_means_no_hue(term):
    app = run_app({"TERM": term, "COLORTERM": "truecolor", "NO_COLOR": "1"})
    c = colours(bytes(app.out))
    assert all(r == g == b for r, g, b in c["rgb"]), c["rgb"]
    greys = {0, 7, 8, 15, 16, 231, *range(232, 256)}
    assert c["256"] <= greys, c["256"]
    assert c["16"] <= {30, 37, 40, 47, 90, 97, 100, 107}, c["16"]
    text = app.text()
    assert "▇" in text or "█" in text  # busy time still drawn: shading, not colour


@pytest.fixture(scope="module")
def big_trace(tmp_path_factory) -> tuple[Path, int]:
    from tracetui.trace import load

    path = tmp_path_factory.mktemp("big") / "big.json"
    subprocess.run([sys.executable, str(ROOT / "bench" / "make_big.py"), str(path),
                    "--mb", "60"], check=True, capture_output=True, timeout=120)
    return path, load(str(path)).events


def test_a_resize_storm_while_loading(big_trace):
    path, events = big_trace
    app = PtyApp([str(path)], cols=120, rows=40, env={"TRACETUI_WORKERS": "1"})
    sizes = [(200, 60), (40, 12), (80, 24), (10, 5), (1, 1), (120, 40), (60, 16), (59, 15),
             (300, 100), (61, 17), (30, 80), (150, 10)]
    loading_seen = False
    for i in range(80):  # from the start: while Textual starts, then while the file loads
        mark = len(app.out)
        app.size(*sizes[i % len(sizes)])
        app.pump(0.03)
        loading_seen |= "loading" in ANSI.sub(b"", bytes(app.out[mark:])).decode("utf-8", "replace")
    app.size(100, 30)
    assert loading_seen, "the storm ended before the load showed its progress"
    assert "terminal too small" in app.text()
    assert app.wait_for(f"{events:,} events", timeout=120), app.text()[-2000:]
    app.settle()
    before = len(app.out)
    app.keys("w", ".", "\r")  # it still answers: a selection and the detail pane
    assert len(app.out) > before
    app.keys("q")
    assert app.finish() == 0, app.text()[-3000:]
    assert "Traceback" not in app.text() and "Error" not in app.text()
