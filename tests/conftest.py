"""What the app tests share: waiting for the app (a load, its aggregates, a condition) in
Pilot's pauses, never in sleeps of a fixed length. Import them: ``from conftest import
loaded, until``."""

from __future__ import annotations

from typing import Any, Callable


async def loaded(app: Any, pilot: Any, *, analyses: bool = False, ok: bool = False,
                 tries: int = 400) -> None:
    """Until the load has ended (or failed); with ``analyses``, until the aggregates are
    there too; with ``ok``, the load must have succeeded."""
    for _ in range(tries):
        if (app.loaded or app.error) and (not analyses or app.analyses is not None):
            break
        await pilot.pause(0.05)
    await pilot.pause()
    if ok or analyses:
        assert app.loaded and not app.error, app.error
    if analyses:
        assert app.analyses is not None, "the aggregates never came"


async def until(pilot: Any, cond: Callable[[], Any], tries: int = 300) -> None:
    """Until ``cond()`` holds (asserted at the end)."""
    for _ in range(tries):
        if cond():
            return
        await pilot.pause(0.02)
    assert cond()
