"""The timeline's keys as a user presses them: go to a time, Esc clears a search, Python
frames folded and shown, jumps that zoom in on narrow targets, and help and the command
palette that list the keys of the screen in front (only those that apply)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import loaded
from tracetui.app.app import TraceApp
from tracetui.app.helpscreen import HelpScreen
from tracetui.app.timeline import REVEAL_CELLS, Timeline

ROOT = Path(__file__).resolve().parent.parent
ANNOTATED = ROOT / "sample_traces" / "annotated.json"
DECODE = ROOT / "sample_traces" / "decode.json"
SHARED = ROOT.parent / "shared" / "traces"


async def type_goto(pilot, text: str) -> None:
    await pilot.press("g", *text, "enter")
    await pilot.pause()


async def test_g_goes_to_a_typed_time_or_range():
    app = TraceApp(str(ANNOTATED))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(app, pilot)
        tl = app.query_one(Timeline)
        await pilot.press("w", "w", "w", "w")  # zoomed in: room to centre on a time
        await pilot.pause()
        span = tl.t1 - tl.t0
        await type_goto(pilot, "0.5ms")  # centred there, the zoom kept
        assert abs((tl.t0 + tl.t1) // 2 - 500_000) <= 1 and abs((tl.t1 - tl.t0) - span) <= 1
        await type_goto(pilot, "120us-180us")  # a range: exactly that window
        assert (tl.t0, tl.t1) == (120_000, 180_000)
        await type_goto(pilot, "0.3")  # a bare number is in ms
        assert abs((tl.t0 + tl.t1) // 2 - 300_000) <= 1
        before = (tl.t0, tl.t1)
        await type_goto(pilot, "soon")  # not a time: said so, the view stays
        assert (tl.t0, tl.t1) == before
        assert any("not a time" in n.message for n in app._notifications)
        await type_goto(pilot, "10s")  # nothing there: said so, and the view stays
        assert (tl.t0, tl.t1) == before
        assert any("outside the trace" in n.message for n in app._notifications)
        await pilot.press("g", "1", "escape")  # Esc closes the box without going anywhere
        await pilot.pause()
        assert (tl.t0, tl.t1) == before and tl.has_focus


async def test_esc_and_an_empty_search_clear_the_hits_not_the_selection():
    app = TraceApp(str(ANNOTATED))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(app, pilot)
        tl = app.query_one(Timeline)
        await pilot.press("slash", *"dispatch", "enter")
        await pilot.pause()
        assert len(tl.matches) > 1 and tl.selected >= 0
        picked = tl.selected
        legend = str(app.query_one("#legend").render())
        assert f"{len(tl.matches):,} hits" in legend
        await pilot.press("escape")
        await pilot.pause()
        assert len(tl.matches) == 0 and tl.selected == picked
        assert "hits" not in str(app.query_one("#legend").render())
        await pilot.press("slash", *"dispatch", "enter", "slash", "ctrl+u", "enter")  # emptied
        await pilot.pause()
        assert len(tl.matches) == 0


async def test_jumps_zoom_in_on_targets_narrower_than_a_few_cells():
    app = TraceApp(str(DECODE))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(app, pilot)
        tl = app.query_one(Timeline)
        tr = tl.trace
        # the shortest kernel, at the full view a fraction of a cell
        gpu = [ln for ln in tr.lanes if ln.kind == "gpu" and ln.count]
        rows = [r for ln in gpu for r in range(ln.lo, ln.hi)]
        short = min(rows, key=lambda r: int(tr.dur[r]))
        assert int(tr.dur[short]) * tl.plot_width < (tl.t1 - tl.t0)
        await pilot.press("slash", *tr.name_of(short)[:40], "enter")
        await pilot.pause()
        tl.select(short, reveal=True)
        await pilot.pause()
        s, e = int(tr.start[short]), int(tr.start[short] + tr.dur[short])
        assert tl.t0 <= s and e <= tl.t1
        cells = (e - s) * tl.plot_width / (tl.t1 - tl.t0)
        assert cells >= REVEAL_CELLS


async def test_p_folds_and_shows_python_frames_and_says_when_there_are_none(tmp_path):
    ev = [{"ph": "X", "cat": "python_function", "name": f"app.py({k}): f{k}", "pid": 1,
           "tid": 1, "ts": k, "dur": 1000 - 2 * k} for k in range(32)]
    ev += [{"ph": "X", "cat": "cpu_op", "name": "aten::addmm", "pid": 1, "tid": 1,
            "ts": 100, "dur": 500},
           {"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": 1, "tid": 1,
            "ts": 120, "dur": 300}]
    path = tmp_path / "deep.json"
    path.write_text(json.dumps({"traceEvents": ev}))
    app = TraceApp(str(path))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(app, pilot)
        tl = app.query_one(Timeline)
        screen = [tl.render_line(y).text for y in range(1, 6)]
        assert any("aten::addmm" in t for t in screen)  # on the first screen, named
        assert any("cudaLaunchKernel" in t for t in screen)
        assert "folded (P shows)" in str(app.query_one("#legend").render())
        await pilot.press("P")
        await pilot.pause()
        assert len(tl.rows) == 34 and "shown (P folds)" in str(app.query_one("#legend").render())
        await pilot.press("P")
        await pilot.pause()
        assert len(tl.rows) == 2
    app = TraceApp(str(ROOT / "sample_traces" / "prefill.json.gz"))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(app, pilot)
        if not app.timeline.has_python():
            await pilot.press("P")
            await pilot.pause()
            assert any("no Python frames" in n.message for n in app._notifications)


def _help_keys(app) -> dict[str, str]:
    h = app.screen
    assert isinstance(h, HelpScreen)
    return {what: keys for keys, what in h.rows}


async def test_help_lists_the_keys_of_the_screen_in_front():
    app = TraceApp(str(ANNOTATED))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(app, pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        keys = _help_keys(app)
        assert keys["zoom in"] == "w" and keys["go to a time (12.5ms, 3-4ms)"] == "g"
        assert keys["lane down"] == "↓ j"  # one row per job, its keys together
        assert "align ranks: start, first step, clock" not in keys  # one trace: no ranks
        assert "next match" not in keys  # nothing searched yet
        assert "Scroll Home" not in keys and "Focus Next" not in keys  # Textual's own
        await pilot.press("escape", "k")
        await pilot.pause()
        await pilot.press("question_mark")
        await pilot.pause()
        keys = _help_keys(app)
        assert app.screen.title_text == "kernels table"
        assert keys["reverse sort"] == "^r" and keys["short/full names"] == "^t"
        assert "quit" not in keys  # q types a q into the filter there
        from tracetui.app.keybar import KeyBar

        bar = str(app.screen_stack[-2].query_one(KeyBar).render())
        assert "^r reverse sort" in bar and "quit" not in bar  # nor does the key bar offer it
        assert "zoom in" not in keys and "kernel table" not in keys
        assert any(k == "type" for k, _ in app.screen.notes)
        await pilot.press("escape", "escape", "o")
        await pilot.pause()
        await pilot.press("question_mark")
        await pilot.pause()
        keys = _help_keys(app)
        assert app.screen.title_text == "overlap view"
        assert "bin left" in keys and "reverse sort" not in keys and "find" not in keys
        await pilot.press("question_mark")  # ? again closes it
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)


async def test_the_palette_offers_only_what_applies():
    app = TraceApp(str(ANNOTATED))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(app, pilot)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Kernel table" in titles and "Go to a time (12.5ms, 3-4ms)" in titles
        assert not any(t.startswith("Align ranks") or t == "Rank view" for t in titles)
        assert "Follow flow (to the launch)" not in titles  # nothing selected
        await pilot.press("k")
        await pilot.pause()
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Reverse sort" in titles and "Kernel table" not in titles


@pytest.mark.skipif(not (SHARED / "hta_2rank").is_dir(), reason="needs ../shared/traces")
async def test_rank_keys_are_offered_with_ranks():
    files = [str(p) for p in sorted((SHARED / "hta_2rank").iterdir())]
    app = TraceApp("hta_2rank (2 ranks)", ranks=files)
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(400):
            await pilot.pause(0.05)
            if app.loaded:
                break
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Align ranks: start, first step, clock" in titles and "Rank view" in titles


async def test_the_legend_fits_the_terminal_after_a_resize():
    app = TraceApp(str(ANNOTATED))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(app, pilot)
        legend = str(app.query_one("#legend").render())
        assert "communication" in legend and "Python frames folded (P shows)" in legend
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        legend = str(app.query_one("#legend").render())
        assert "comm " in legend and "py frames folded (P)" in legend and len(legend) <= 80


async def test_keys_typed_ahead_of_a_prompt_go_into_it(tmp_path, monkeypatch):
    """'/combine⏎' or 'g50ms⏎' in one burst (a paste, fast typing): the letters land in the
    box even before it has the focus, and run no timeline command (o opened the overlap
    view, e wrote a CSV, 0 m s reset, marked and zoomed)."""
    from textual import events

    monkeypatch.chdir(tmp_path)
    app = TraceApp(str(ANNOTATED))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(app, pilot)
        tl = app.query_one(Timeline)

        def burst(keys: list[tuple[str, str | None]]) -> None:
            for key, ch in keys:  # queued at once: none is handled before the next arrives
                app.post_message(events.Key(key, ch))

        burst([("slash", "/")] + [(c, c) for c in "combine"] + [("enter", None)])
        await pilot.pause(0.3)
        assert len(app.screen_stack) == 1 and not list(tmp_path.iterdir())
        assert len(tl.matches) and all("combine" in tl.trace.name_of(int(r)).lower()
                                       for r in tl.matches[:50])
        before = (tl.t0, tl.t1)
        burst([("g", "g")] + [(c, c) for c in "0.2ms"] + [("enter", None)])
        await pilot.pause(0.3)
        assert app.range is None and (tl.t0 + tl.t1) // 2 != (before[0] + before[1]) // 2
        assert abs((tl.t0 + tl.t1) // 2 - 200_000) <= max((tl.t1 - tl.t0) // 2, 1)
        await pilot.press("w")  # the prompt closed: keys are commands again
        await pilot.pause()
        assert tl.t1 - tl.t0 < before[1] - before[0]


# ---------------------------------------------------------------- the config's [keys]
def _ids() -> list[str]:
    return [b.id for b in TraceApp.BINDINGS if b.id]


async def test_a_keymap_in_the_config_rebinds_a_key_and_help_shows_it(tmp_path):
    from tracetui.app.keys import load_keymap

    cfg = tmp_path / "config.toml"
    cfg.write_text('[keys]\nzoom_in = "W"\nfind = "ctrl+f, ?"\n', encoding="utf-8")
    keymap = load_keymap(str(cfg), _ids())
    assert keymap == {"zoom_in": "W", "find": "ctrl+f,?"}
    app = TraceApp(str(ANNOTATED), keymap=keymap)
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(app, pilot)
        tl = app.query_one(Timeline)
        span = tl.t1 - tl.t0
        await pilot.press("w")  # no longer bound
        await pilot.pause()
        assert tl.t1 - tl.t0 == span
        await pilot.press("W")
        await pilot.pause()
        assert tl.t1 - tl.t0 < span
        await pilot.press("ctrl+f")
        await pilot.pause()
        assert app.query_one("#search").has_class("visible")
        await pilot.press("escape")  # ? finds now: help by its action
        await pilot.pause()
        app.action_help()
        await pilot.pause()
        keys = _help_keys(app)
        assert keys["zoom in"] == "W" and keys["find"] == "^f ?"
        await pilot.press("escape")
        titles = {c.title: c.help for c in app.get_system_commands(app.screen)}
        assert titles["Zoom in"] == "key: W"


def test_a_keymap_names_what_is_wrong_in_one_line(tmp_path):
    from tracetui.app.keys import load_keymap
    from tracetui.trace import TraceError

    cfg = tmp_path / "config.toml"
    for text, why in (('[keys]\nzoom = "W"\n', "no key called 'zoom' (ids: "),
                      ('[keys]\nzoom_in = 3\n', "keys.zoom_in must be a key"),
                      ('[keys]\nzoom_in = "a,,b"\n', "keys.zoom_in must be a key"),
                      ('keys = 1\n', "[keys] must be a table"),
                      ('[keys\n', "cannot read the config")):
        cfg.write_text(text, encoding="utf-8")
        with pytest.raises(TraceError, match=re.escape(why)) as e:
            load_keymap(str(cfg), _ids())
        assert "\n" not in str(e.value)
