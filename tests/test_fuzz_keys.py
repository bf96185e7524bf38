"""A fuzz target for the app's key handling on hostile traces (hypothesis, bounded): any
sequence of keys, on names with surrogates and escapes, decades of span, a huge name, deep
nesting, an empty trace or several ranks' worth of lanes, never crashes the app or fails a
worker; the app still quits with status 0."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import loaded  # noqa: E402
from test_hostile import epoch_trace, hostile_trace  # noqa: E402

KEYS = ["w", "s", "a", "d", "A", "D", "up", "down", "j", "k", "o", "p", "O", "m", "x", "X",
        "i", "I", "g", "P", "shift+left", "shift+right", "e", "full_stop", "comma", "f", "0",
        "right_square_bracket", "left_square_bracket", "slash", "n", "N", "enter", "c", "C",
        "R", "T", "plus", "minus", "right_curly_bracket", "left_curly_bracket", "escape", "tab",
        "shift+tab", "question_mark", "ctrl+p", "left", "right", "pageup", "pagedown",
        "ctrl+e", "ctrl+t", "ctrl+r", "less_than_sign", "greater_than_sign", "ctrl+c",
        "1", "5", "z", "backspace", "home", "end", "space"]


def _traces(folder: Path) -> dict[str, Path]:
    deep = [{"ph": "X", "name": f"d{i}", "cat": "cpu_op", "pid": 1, "tid": 1, "ts": i,
             "dur": 10_000 - 2 * i} for i in range(2000)]
    huge = {"ph": "X", "name": "h" * 200_000, "cat": "kernel", "pid": 0, "tid": 7, "ts": 1,
            "dur": 5, "args": {"device": 0, "stream": 7}}
    lanes = [{"ph": "X", "name": f"t{i}", "cat": "cpu_op", "pid": i % 50, "tid": i, "ts": i,
              "dur": 3} for i in range(3000)]
    out = {"hostile": hostile_trace(folder), "epoch": epoch_trace(folder)}
    for name, evs in (("deep", deep), ("huge", [huge]), ("lanes", lanes), ("empty", [])):
        path = folder / f"{name}.json"
        path.write_text(json.dumps({"traceEvents": evs}))
        out[name] = path
    return out


FOLDER = Path(tempfile.mkdtemp(prefix="tracetui-fuzz-keys-"))
TRACES = _traces(FOLDER)


async def _drive(path: Path, keys: list[str]) -> None:
    from tracetui.app.app import TraceApp

    app = TraceApp(str(path))
    async with app.run_test(size=(100, 30)) as pilot:
        await loaded(app, pilot)
        for key in keys:
            await pilot.press(key)
        await pilot.pause()
        failed = [n.message for n in app._notifications if "failed:" in n.message]
        assert failed == [], failed  # a worker that raised: a bug, whatever the keys
        app.exit()
    assert app.return_code in (0, None)


@pytest.mark.parametrize("name", sorted(TRACES))
@settings(max_examples=6, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(keys=st.lists(st.sampled_from(KEYS), min_size=5, max_size=40))
def test_no_key_sequence_breaks_the_app(name, keys):
    cwd = os.getcwd()
    os.chdir(FOLDER)  # e and ^e write their CSVs here
    try:
        asyncio.run(_drive(TRACES[name], keys))
    finally:
        os.chdir(cwd)
