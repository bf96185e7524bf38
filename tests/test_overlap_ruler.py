"""The overlap view's ruler: the cursor's ▼ never cuts a tick label. Wherever the cursor is,
every label on the line reads whole (a number and its unit, at its tick), and only the label
the ▼ would fall on gives way."""

from __future__ import annotations

import json
import re

import pytest
from textual.app import App, ComposeResult

from tracetui.analysis.rules import DEFAULT_RULES, classify
from tracetui.analysis.window import OverlapModel
from tracetui.app.themes import Palette
from tracetui.app.views import HEAT_LABEL, Heatmap
from tracetui.textutil import parse_time
from tracetui.trace import load

LABEL = re.compile(r"-?\d+(?:\.\d+)? (?:ns|µs|ms|s)|0")


class One(App[None]):
    def __init__(self, widget: Heatmap) -> None:
        super().__init__()
        self.widget = widget

    def compose(self) -> ComposeResult:
        yield self.widget


def labels_of(ruler: str) -> list[tuple[int, str]]:
    """(cell of its tick, text) of each label: what follows a tick (│, or the ▼ drawn over
    one) up to the next tick, the marker or the end."""
    out = []
    for m in re.finditer(r"[│▼]([^│▼]*)", ruler):
        text = m.group(1).strip()
        if text:
            out.append((m.start(), text))
    return out


@pytest.mark.parametrize("cols,t0,t1", [(60, 0, 352_000), (96, 150_000, 190_000),
                                        (140, 2_000_000_000, 2_000_400_000)])
async def test_the_cursor_marker_never_cuts_a_tick_label(tmp_path, cols, t0, t1):
    ev = [{"ph": "X", "cat": "kernel", "name": "sm90_gemm", "pid": 0, "tid": 7, "ts": 0,
           "dur": 3_000_000, "args": {"device": 0, "stream": 7}},
          {"ph": "X", "cat": "kernel", "name": "ncclDevKernel_AllReduce_Sum_f32", "pid": 0,
           "tid": 20, "ts": 100, "dur": 2_000_000, "args": {"device": 0, "stream": 20}}]
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"traceEvents": ev}))
    tr = load(str(path))
    model = OverlapModel(tr, classify(tr, DEFAULT_RULES))
    heat = Heatmap(model, t0, t1, Palette(), tr.end_ns)
    async with One(heat).run_test(size=(HEAT_LABEL + cols, 10)) as pilot:
        await pilot.pause()
        assert heat.ncols == cols
        _, edges = heat.bins()
        ticks = None
        for c in range(cols):
            heat.col = c
            ruler = heat.render_line(0).text[HEAT_LABEL:HEAT_LABEL + cols]
            assert ruler[c] == "▼", (c, ruler)
            got = labels_of(ruler)
            for at, text in got:
                assert LABEL.fullmatch(text), (c, text, ruler)  # whole: "176 µs", never "1"
                # and it is the time of its tick, to the label's own precision
                assert abs(parse_time(text) - edges[at]) <= (t1 - t0) / cols, (c, text, at)
            bars = [k for k, ch in enumerate(ruler) if ch in "│▼"]
            ticks = ticks if ticks is not None else len([k for k in bars if k != c])
            # only the label under the marker gives way: the others all read
            assert len(got) >= ticks - 1, (c, ruler)
        assert ticks and ticks >= 3
