"""Terminal injection (issue 7): a trace whose names, thread names, categories, arg keys and
values carry escape sequences (screen clear, OSC 52 clipboard write, OSC 8 hyperlink, window
title, cursor-position query, C1 controls, DCS/APC strings), Rich markup, a Textual
``[@click=…]`` action, bidi overrides, NUL and a 20,000-character name.

The app runs in a real pseudo-terminal and every byte it writes is recorded while each
surface is visited: timeline labels and slice names, the detail pane (name, args, the chain
that launched a kernel, a marked range's lanes and kernels), search, the kernel table and a
kernel's instances, the overlap view's heatmap, phase line and tables, help. Then `summary`
(in a pty, in colour), `--json`, `--csv`, and the exported CSV and SVG files. None of the
hostile sequences may come out; their visible forms (``^[]52;…``) must, so that a surface
that was never reached fails the test.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ptyterm import ENTER, ESC, TAB, PtyApp

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a pty")

LONG = "L" * 20_000 + "END"
HOSTILE = {
    "clear": "\x1b[2J\x1b[HCLEARED",
    "osc52": "\x1b]52;c;SE9TVElMRQ==\x07clip",
    "link": "\x1b]8;;https://evil.example/\x1b\\link\x1b]8;;\x1b\\",
    "title": "\x1b]0;pwned-title\x07titled",
    "blink": "\x1b[5;31mBLINK\x1b[0m",
    "query": "\x1b[6n\x1b[21tQUERY",
    "c1": "\x9b2J\x9d0;c1title\x9cC1",
    "dcs": "\x1bP1$rDCS\x1b\\ \x1b_APC\x1b\\",
    "markup": "[bold red]MARKUP[/bold red]",
    "click": "[@click=app.quit]CLICK[/]",
    "bidi": "\u202eRLO\u202c \u2066LRI\u2069 \u200fRLM",
    "nul": "nul\x00byte",
    "long": LONG,
}

# What no surface may write: the sequences above (Textual itself writes none of them: it
# writes CSI cursor/colour/mode sequences and OSC 22, the mouse pointer's shape).
FORBIDDEN = [
    (b"\x1b[2J", "screen clear"), (b"\x1b]52", "OSC 52 clipboard write"),
    (b"\x1b]8;", "OSC 8 hyperlink"), (b"\x1b]0;", "window title"), (b"\x1b]2;", "window title"),
    (b"\x1b[5;31m", "blink"), (b"\x1b[6n", "cursor position query"),
    (b"\x1b[21t", "title report"), (b"\x1bP", "DCS string"), (b"\x1b_", "APC string"),
    (b"\x1b^", "PM string"), (b"\x00", "NUL"),
]
C1 = re.compile(rb"\xc2[\x80-\x9f]")  # C1 controls, UTF-8 encoded
BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
OSC = re.compile(rb"\x1b\](\d*)")


def hostile_trace(folder: Path) -> Path:
    names = list(HOSTILE.values())
    evs: list[dict[str, Any]] = [
        {"ph": "M", "name": "process_name", "pid": 1, "args": {"name": HOSTILE["title"]}},
        {"ph": "M", "name": "thread_name", "pid": 1, "tid": 1, "args": {"name": HOSTILE["osc52"]}},
        {"ph": "M", "name": "thread_name", "pid": 1, "tid": 2, "args": {"name": HOSTILE["bidi"]}},
        {"ph": "M", "name": "process_name", "pid": 0, "args": {"name": HOSTILE["link"]}},
    ]
    ts = 0
    for rep in range(3):
        for k, name in enumerate(names):
            corr = 1000 * rep + k
            step_start = ts
            evs += [
                {"ph": "X", "name": name, "cat": "user_annotation", "pid": 1, "tid": 1,
                 "ts": ts, "dur": 60, "args": {name: name}},
                {"ph": "X", "name": "cudaLaunchKernel", "cat": "cuda_runtime", "pid": 1,
                 "tid": 1, "ts": ts + 5, "dur": 5, "args": {"correlation": corr}},
                {"ph": "X", "name": name, "cat": name, "pid": 1, "tid": 2, "ts": ts + 1,
                 "dur": 50, "args": {"hostile key " + name: name, "nested": [name, {name: 1}]}},
                {"ph": "X", "name": name, "cat": "kernel", "pid": 0, "tid": 7 + k % 2,
                 "ts": ts + 12, "dur": 40, "args": {"correlation": corr, "device": 0,
                                                     "stream": 7 + k % 2, "grid": [1, 1, 1],
                                                     "block": [128, 1, 1], name: name}},
                {"ph": "X", "name": name, "cat": "gpu_user_annotation", "pid": 0,
                 "tid": 7 + k % 2, "ts": ts + 11, "dur": 45,
                 "args": {"device": 0, "stream": 7 + k % 2}},
                {"ph": "i", "name": name, "pid": 1, "tid": 1, "ts": ts + 30, "s": "t"},
                {"ph": "C", "name": name, "pid": 1, "ts": ts, "args": {name: k}},
            ]
            # communication on the other stream, launched inside the hostile annotation and
            # outlasting the computation: the overlap view, the exposed stretches (x) and
            # the stream's gaps (g) have something to show
            evs += [{"ph": "X", "name": "cudaLaunchKernel", "cat": "cuda_runtime", "pid": 1,
                     "tid": 1, "ts": ts + 15, "dur": 2, "args": {"correlation": corr + 500}},
                    {"ph": "X", "name": "ncclDevKernel_AllReduce " + name, "cat": "kernel",
                     "pid": 0, "tid": 9, "ts": step_start + 20, "dur": 40,
                     "args": {"device": 0, "stream": 9, "correlation": corr + 500}}]
            ts += 70
    path = folder / "hostile.json"
    path.write_text(json.dumps({"traceEvents": evs, "traceName": HOSTILE["clear"]}),
                    encoding="utf-8")
    return path


def assert_clean(data: bytes, where: str) -> None:
    for seq, what in FORBIDDEN:
        assert seq not in data, f"{where}: {what} ({seq!r}) written at byte {data.find(seq)}"
    m = C1.search(data)
    assert m is None, f"{where}: C1 control {m.group()!r} at byte {m.start()}"
    m = BIDI.search(data.decode("utf-8", "replace"))
    assert m is None, f"{where}: bidi control {m.group()!r} at character {m.start()}"
    oscs = {x.decode() for x in OSC.findall(data)}
    assert oscs <= {"22"}, f"{where}: OSC {oscs}"


@pytest.fixture(scope="module")
def trace_path(tmp_path_factory) -> Path:
    return hostile_trace(tmp_path_factory.mktemp("hostile"))


def test_every_surface_of_the_app_in_a_pty(trace_path, tmp_path):
    app = PtyApp([str(trace_path)], cols=120, rows=40, cwd=str(tmp_path))
    assert app.wait_for("events"), app.text()[-2000:]
    app.pump(2.0)  # the load finishes, the views are built
    # timeline: lane labels, slice names when zoomed in; the detail pane on many slices
    app.keys("w", "w", "w", "w", ENTER)
    for _ in range(8):
        app.keys(".", ".", "j")
    app.keys("[")  # a kernel's launching call, and back
    app.keys("]")
    app.keys("m")  # a range: lanes and kernels inside it in the detail pane
    app.pump(1.0)
    app.keys("x", "x", "X")  # exposed stretches: kernel, launching phase, computation around
    app.keys("g", "g", "G")  # the idle gaps of the comm kernel's stream
    app.pump(0.5)
    app.keys("0", "/", *"BLINK", ENTER, "n", "n", ESC)  # search
    app.keys("/", *"link", ENTER, "n", ESC)
    app.keys("k")  # kernel table, short names, one kernel's instances
    app.keys(b"\x14", b"\x14", b"\x05", ENTER)  # ctrl+t twice, ctrl+e (letters are filter text)
    app.keys(ESC, ESC)
    app.keys("o")  # overlap view: heatmap, phase line, matrix, annotation table
    app.keys("l", "l", TAB, TAB, "e", ESC)
    app.keys("?")  # help
    app.keys(ESC, b"\x13")  # ctrl+s: an SVG screenshot
    app.keys("q")
    rc = app.finish()
    out = bytes(app.out)
    assert rc == 0, app.text()[-3000:]
    assert_clean(out, "app")
    text = app.text()
    assert "Traceback" not in text
    # every surface was on screen, with the hostile text shown as inert characters
    for seen in ("^[]52;c;SE9TVElMRQ==^Gclip",   # thread name / slice names
                 "[bold red]MARKUP[/bold red]",    # markup stays text
                 "args",                           # the detail pane
                 "kernels by",                     # the kernel table
                 "instances of",                   # a kernel's instances
                 "annotation",                     # the overlap view's table
                 "exposed communication",          # x: a stretch in the detail pane
                 "idle gap",                       # g: a gap in the detail pane
                 "keys"):                          # help
        assert seen in text, f"{seen!r} never shown"
    assert "\\u202eRLO" in text or "\\u202e" in text
    exported = sorted(p for p in tmp_path.iterdir() if p.suffix in (".csv", ".svg"))
    assert {p.suffix for p in exported} == {".csv", ".svg"}, exported
    for p in exported:
        data = p.read_bytes()
        assert_clean(data, p.name)
        assert b"\x1b" not in data and b"\x07" not in data, p.name


def test_summary_text_in_a_pty(trace_path):
    app = PtyApp(["summary", str(trace_path), "--top", "0"], cols=160, rows=50)
    rc = app.finish(timeout=60)
    assert rc == 0, app.text()[-2000:]
    assert_clean(bytes(app.out), "summary")
    text = app.text()
    assert "^[[5;31mBLINK" in text and "[@click=app.quit]CLICK[/]" in text
    assert b"\x1b[" in bytes(app.out)  # in colour: Rich wrote styles, not the trace


@pytest.mark.parametrize("fmt", ["--json", "--csv"])
def test_machine_outputs_carry_no_sequences(trace_path, fmt):
    p = subprocess.run([sys.executable, "-m", "tracetui", "summary", str(trace_path), fmt],
                       capture_output=True, timeout=60, check=False)
    assert p.returncode == 0, p.stderr
    assert_clean(p.stdout, fmt)
    assert b"\x1b" not in p.stdout and b"\x07" not in p.stdout
    if fmt == "--json":
        names = {k["name"] for k in json.loads(p.stdout)["kernels"]}
        assert set(HOSTILE.values()) <= names  # exact names kept, as \u escapes
    else:
        assert b"^[[2J^[[HCLEARED" in p.stdout and b"L" * 20000 in p.stdout
