"""Times that int64 nanoseconds cannot hold relative to the trace's start (issue 31): a stray
timestamp centuries from the rest, or a ts + dur past int64, wrapped silently (a span of
"446744073.710 s"). They are drawn at the edge of the other events' span, and counted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tracetui.cli import main
from tracetui.trace import load


def _kernel(ts, dur=5.0):
    return {"ph": "X", "cat": "kernel", "name": "k", "pid": 0, "tid": 7, "ts": ts, "dur": dur,
            "args": {"device": 0, "stream": 7}}


def _write(tmp_path: Path, events: list, name: str = "t.json") -> str:
    p = tmp_path / name
    p.write_text(json.dumps({"traceEvents": events}))
    return str(p)


@pytest.mark.parametrize("base", [1.7e15, 1712345678901234.567, 5e12])
def test_stray_timestamps_leave_the_span_of_the_rest(tmp_path, capsys, base):
    good = [_kernel(base + 10.5 * i) for i in range(500)]
    events = good[:250] + [_kernel(-9e15), _kernel(9.2e15, 1.0)] + good[250:]
    path = _write(tmp_path, events)
    tr = load(path)
    # the span of the events that are not strays, straight from the JSON (µs -> ns)
    want = round((max(e["ts"] + e["dur"] for e in good) - min(e["ts"] for e in good)) * 1000)
    assert tr.slice_count == 502
    assert abs(tr.end_ns - want) <= 1, (tr.end_ns, want)
    assert int(tr.start.min()) == 0 and int((tr.start + tr.dur).max()) == tr.end_ns
    assert (tr.dur >= 0).all()
    assert any(w.startswith("2 events more than 73 years from the trace's other times")
               for w in tr.warnings), tr.warnings
    assert main(["summary", path, "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert abs(r["span_ns"] - want) <= 1


def test_a_duration_past_int64_ends_at_the_span_of_the_rest(tmp_path):
    path = _write(tmp_path, [_kernel(1e15), _kernel(1e15 + 10, 9e15), _kernel(1e15 + 20)])
    tr = load(path)
    assert tr.end_ns == 25_000  # the last whole event's end
    starts = sorted(int(x) for x in tr.start)
    assert starts == [0, 10_000, 20_000]  # no start moved
    assert any("1 events more than 73 years" in w for w in tr.warnings)


def test_spans_of_decades_are_kept_as_they_are(tmp_path):
    """A stray ts: 0 beside epoch times (53 years) is within the span: nothing clamped."""
    path = _write(tmp_path, [_kernel(0), _kernel(1.7e15)])
    tr = load(path)
    assert tr.end_ns == 1_700_000_000_000_005_000
    assert not any("years" in w for w in tr.warnings)


async def test_the_app_opens_a_trace_with_strays(tmp_path):
    from conftest import loaded
    from tracetui.app.app import TraceApp

    good = [_kernel(1.7e15 + 10 * i) for i in range(200)]
    path = _write(tmp_path, [_kernel(-9e15)] + good + [_kernel(9.2e15)])
    app = TraceApp(path)
    async with app.run_test(size=(120, 36)) as pilot:
        await loaded(app, pilot, analyses=True)
        assert app.trace.end_ns < 3_000_000
        for key in ("w", "w", "d", "a", "s", "0", "k", "escape", "o", "escape"):
            await pilot.press(key)
            await pilot.pause()
        await pilot.press("q")
    assert app.failure is None
