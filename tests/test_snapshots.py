"""SVG snapshots of the app (pytest-textual-snapshot; textual is pinned for these)."""

from __future__ import annotations

from pathlib import Path

from conftest import loaded
from tracetui.app.app import TraceApp

DECODE = str(Path(__file__).resolve().parent.parent / "sample_traces" / "annotated.json")


async def _loaded(pilot) -> None:
    await loaded(pilot.app, pilot)


def test_overview(snap_compare):
    assert snap_compare(TraceApp(DECODE), terminal_size=(120, 40), run_before=_loaded)


def test_search_and_detail(snap_compare):
    async def run(pilot):
        await _loaded(pilot)
        await pilot.press("slash", *"dispatch<", "enter")
        await pilot.pause()
        pilot.app.clear_notifications()
        await pilot.pause()

    assert snap_compare(TraceApp(DECODE), terminal_size=(120, 40), run_before=run)


def test_narrow_terminal(snap_compare):
    async def run(pilot):
        await _loaded(pilot)
        await pilot.press("j", "j", "j", "full_stop", "w")
        await pilot.pause()

    assert snap_compare(TraceApp(DECODE, theme="high-contrast"), terminal_size=(80, 24),
                        run_before=run)


async def _analysed(pilot) -> None:
    await _loaded(pilot)
    for _ in range(200):
        if pilot.app.analyses is not None:
            break
        await pilot.pause(0.05)


def test_overlap_view(snap_compare):
    async def run(pilot):
        await _analysed(pilot)
        await pilot.press("o")
        await pilot.pause()
        await pilot.press("right", "right", "tab", "down")
        await pilot.pause()

    assert snap_compare(TraceApp(DECODE), terminal_size=(120, 40), run_before=run)


def test_kernel_table_filtered(snap_compare):
    async def run(pilot):
        await _analysed(pilot)
        await pilot.press("k")
        await pilot.pause()
        await pilot.press(*"gemm")
        await pilot.pause()

    assert snap_compare(TraceApp(DECODE), terminal_size=(120, 40), run_before=run)


def test_range_marked(snap_compare):
    async def run(pilot):
        await _analysed(pilot)
        await pilot.press("w", "m")
        for _ in range(100):
            if pilot.app.range_stats is not None:
                break
            await pilot.pause(0.05)
        await pilot.press("O", "s")
        await pilot.pause()

    assert snap_compare(TraceApp(DECODE), terminal_size=(120, 40), run_before=run)
