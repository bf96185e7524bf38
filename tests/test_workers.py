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


class _Cycle:
    """Refers to itself: only the cyclic collector frees it (as a trace and its lanes)."""

    def __init__(self) -> None:
        self.me = self


async def test_what_a_running_worker_holds_is_collected_after_a_freeze():
    """The heap is frozen (gc.freeze) once the views are made; a thread worker still running
    then (one Textual let go of runs on) holds what it works on, which was frozen with the
    rest. Once the worker is done, the heap is thawed, collected and frozen again: what it
    held is gone."""
    import gc
    import threading
    import weakref

    app = TraceApp(str(ANNOTATED))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(app, pilot, analyses=True)
        for _ in range(100):
            if app.views_ready and app._freeze_later is None:
                break
            await pilot.pause(0.05)
        go = threading.Event()
        given = [_Cycle()]
        ref = weakref.ref(given[0])

        def work() -> None:
            obj = given.pop()  # (held by the worker's frame alone)
            go.wait(10)
            del obj

        app.run_worker(work, thread=True, group="test-hold")
        while given:
            await pilot.pause(0.01)
        frozen = len(app.freeze_ms)
        app._freeze_heap()  # (as when a trace's views are made) while the worker runs
        assert len(app.freeze_ms) == frozen + 1 and ref() is not None
        go.set()
        for _ in range(60):
            await pilot.pause(0.05)
            gc.collect()  # (frozen objects are not collected by this)
            if ref() is None:
                break
        assert ref() is None, "what the worker held stayed frozen"
        assert len(app.freeze_ms) == frozen + 2  # (once more, after the worker)
        await pilot.press("q")
