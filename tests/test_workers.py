"""A background task that fails says so and the session goes on: workers are started with
exit_on_error=False and one handler turns a failure into a notification."""

from __future__ import annotations

from pathlib import Path

from conftest import loaded
from tracetui.app.app import TraceApp
from tracetui.app.timeline import Timeline

ROOT = Path(__file__).resolve().parent.parent
ANNOTATED = ROOT / "sample_traces" / "annotated.json"


def boom(*_a, **_k):
    raise RuntimeError("boom in the analysis")


async def _still_answers(app: TraceApp, pilot) -> None:
    tl = app.query_one(Timeline)
    span = tl.t1 - tl.t0
    await pilot.press("w")
    await pilot.pause()
    assert tl.t1 - tl.t0 < span  # keys answer
    await pilot.press("q")
    await pilot.pause()


async def test_range_figures_that_fail_are_said_and_the_app_goes_on(monkeypatch):
    import tracetui.app.navigate as appmod  # where the range worker calls it

    monkeypatch.setattr(appmod, "range_stats", boom)
    app = TraceApp(str(ANNOTATED))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(app, pilot)
        await pilot.press("m")  # mark the range: its figures are worked out in a worker
        for _ in range(40):
            await pilot.pause(0.05)
            if any("failed" in n.message for n in app._notifications):
                break
        msgs = [n.message for n in app._notifications]
        assert any("the marked range's figures failed: RuntimeError: boom in the analysis"
                   in m for m in msgs), msgs
        assert "failed" in app._detail_range.plain
        await _still_answers(app, pilot)
    assert app.return_code == 0


async def test_phases_that_fail_are_said_and_can_be_asked_for_again(monkeypatch):
    from tracetui.app.session import Analyses

    calls = []

    def fail(self, *a, **k):
        calls.append(1)
        raise ValueError("no phases here")

    monkeypatch.setattr(Analyses, "phases_at", fail)
    app = TraceApp(str(ANNOTATED))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(app, pilot)
        for _ in range(100):
            if app.analyses is not None:
                break
            await pilot.pause(0.05)
        for attempt in (1, 2):
            await pilot.press("p")
            for _ in range(40):
                await pilot.pause(0.05)
                if len(calls) == attempt and sum("failed" in n.message
                                                 for n in app._notifications) == attempt:
                    break
            msgs = [n.message for n in app._notifications]
            assert sum("finding the phases failed: ValueError: no phases here" in m
                       for m in msgs) == attempt, msgs
            assert len(app.screen_stack) == 1  # no phase view, no crash
        await _still_answers(app, pilot)
    assert app.return_code == 0
