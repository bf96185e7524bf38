"""Benchmark: key-to-frame time of the drill-down views on a large trace.

Makes a trace of ``--mb`` MB (sample_traces/annotated.json repeated, bench/make_big.py), opens it
in the app headless (Textual's ``run_test``, 120x40), waits for the load and the views'
aggregates, then presses each key of a scripted session and times it from the key press to
a rendered frame (the key's handlers done, then the whole screen composed into strips), in
CPU time of the UI thread (Pilot's idle detection sleeps in 20 ms steps, so wall time would
measure the harness); an unbound key gives the harness's own share. A range's statistics are
computed in a background thread (the pane says "computing…" meanwhile); their time is
reported on its own. Where a key's work goes on after its first frame (a view that fills in
from a worker, as an operator's occurrences do with the input shapes read from the file), the
time to that first frame is reported too (``first_frame_ms``).
Prints one JSON line: the per-key times, the slowest, and the one-off costs (aggregates and
the everyday panes' figures after the load, a range's statistics in the background worker).
Then, in a fresh session each, ``b``, ``u`` and ``M`` are pressed the moment the load ends,
and the wall time until their pane is on screen is reported (``open_at_load_s``: issue 32's
"the views open in <= 1 s after the load"; ``--no-at-load`` skips them).

    python bench/views.py [--mb 1000] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from make_big import DEFAULT_SOURCE, temporary_big_trace  # noqa: E402
from tracetui.app.session import PANES  # noqa: E402

# (label, keys): pressed in this order, each timed on its own
SESSION = [
    ("timeline w", ["w"]), ("timeline d", ["d"]), ("timeline s", ["s"]),
    ("timeline down", ["down"]), ("next slice .", ["full_stop"]), ("fit f", ["f"]),
    ("reset 0", ["0"]),
    ("search /", ["slash"]), ("search typing g", ["g"]), ("search typing e", ["e"]),
    ("search typing mm", ["m", "m"]), ("search enter (all names)", ["enter"]),
    ("next match n", ["n"]),
    ("overlap row O", ["O"]), ("timeline w (overlap row)", ["w"]),
    ("mark range m", ["m"]), ("widen shift+right", ["shift+right"]),
    ("kernels k", ["k"]), ("kernels sort >", ["greater_than_sign"]),
    ("kernels reverse ^r", ["ctrl+r"]), ("kernels sort <", ["less_than_sign"]),
    ("kernels filter g", ["g"]), ("kernels filter e", ["e"]), ("filter enter", ["enter"]),
    ("instances enter", ["enter"]), ("instances end", ["end"]),
    ("instance to timeline enter", ["enter"]), ("next instance n", ["n"]),
    ("overlap o", ["o"]), ("heatmap right", ["right"]), ("heatmap w", ["w"]),
    ("heatmap a", ["a"]), ("overlap tab", ["tab"]), ("annotations down", ["down"]),
    ("annotations sort >", ["greater_than_sign"]), ("annotation enter", ["enter"]),
    ("clear range escape", ["escape"]), ("overlap o again", ["o"]),
    ("heatmap enter", ["enter"]),
    ("exposed stretch x", ["x"]), ("next exposed x", ["x"]), ("exposed in time X", ["X"]),
    ("reset 0 again", ["0"]), ("stream gap i", ["i"]), ("next gap i", ["i"]),
    ("gap in time I", ["I"]),
    ("python frames shown P", ["P"]), ("timeline w (frames shown)", ["w"]),
    ("python frames folded P", ["P"]), ("clear escape", ["escape"]),
    ("go to g", ["g"]), ("go to typing", ["1", "m", "s"]), ("go to enter", ["enter"]),
    ("help ?", ["question_mark"]), ("help closed ?", ["question_mark"]),
    # the everyday panes: the first key of each makes its figures (steps, op tree, modules)
    ("steps b (first)", ["b"]), ("steps down", ["down"]), ("steps sort >", ["greater_than_sign"]),
    ("step enter (frame it)", ["enter"]), ("steps b again", ["b"]), ("steps escape", ["escape"]),
    ("operators u (first)", ["u"]), ("operators sort >", ["greater_than_sign"]),
    ("operators down", ["down"]), ("operators filter a", ["a"]), ("filter enter 2", ["enter"]),
    ("operator enter (occurrences)", ["enter"]), ("occurrences end", ["end"]),
    ("occurrence enter (timeline)", ["enter"]), ("operator of slice U", ["U"]),
    ("operators escape", ["escape"]),
    ("modules M (first)", ["M"]), ("modules ^t", ["ctrl+t"]), ("modules escape", ["escape"]),
]

#: keys whose view is drawn at once and then fills in from a worker: their first frame (the
#: whole new screen) is timed too, apart from what the worker's results cost when they come
FILLS_IN = {"operator enter (occurrences)"}


async def _session(path: str) -> dict:
    from tracetui.analysis.window import range_stats
    from tracetui.app.app import TraceApp

    app = TraceApp(path)
    out: dict = {}
    async with app.run_test(size=(120, 40)) as pilot:
        t = time.perf_counter()
        while not (app.loaded or app.error):
            await pilot.pause(0.2)
        out["load_s"] = round(time.perf_counter() - t, 2)
        # from the load's end, polled together (the UI thread builds the views off screen
        # meanwhile: a poll waits for it, as a key would): the other views' aggregates, their
        # screens built, and each everyday pane's figures made (its key opens it from then
        # on) and its screens built; the pane workers may finish before the aggregates
        t = time.perf_counter()
        marks: dict[str, float] = {}

        def mark(label: str, done: bool) -> None:
            if done and label not in marks:
                marks[label] = round(time.perf_counter() - t, 2)

        while not app.panes_shown_ready or not app.views_ready:
            an = app.session.shown_analyses() if app.session.loaded else None
            mark("aggregates_after_load_s", an is not None)
            mark("views_ready_after_load_s", app.views_ready)
            got = app.session.pane_analyses() if app.session.loaded else None
            for pane in PANES:
                mark(f"{pane}_figures_after_load_s", got is not None and got.pane_ready(pane))
                mark(f"{pane}_shown_after_load_s", got is not None and pane in got.panes_shown)
            await pilot.pause(0.01)
        mark("panes_ready_after_load_s", True)
        mark("views_ready_after_load_s", True)
        out.update(sorted(marks.items(), key=lambda kv: kv[1]))
        out["events"] = app.trace.events if app.trace else 0
        await pilot.pause()
        keys: dict[str, float] = {}
        # the first frame written after each key (Textual's App._display, headless too): a
        # key whose view then fills in from a worker (an operator's occurrences: their
        # input shapes, read from the file seconds later) is timed to it too (FILLS_IN)
        shown: list[float] = []
        display = app._display

        def _display(screen: object, renderable: object) -> None:
            if renderable is not None and not shown:
                shown.append(time.thread_time())
            display(screen, renderable)

        app._display = _display  # type: ignore[method-assign]
        first: dict[str, float] = {}
        for label, press in [("(unbound key: harness only)", ["y"])] + SESSION:
            # CPU time of the UI thread, not wall time: Pilot waits for idleness in 20 ms
            # sleeps, which would swamp the work; work handed to background threads (a
            # range's statistics) is timed on its own below
            shown.clear()
            t = time.thread_time()
            await pilot.press(*press)
            await pilot.pause()
            screen = app.screen
            screen._refresh_layout()
            screen._compositor.render_strips()
            keys[label] = round((time.thread_time() - t) * 1000, 1)
            if label in FILLS_IN and shown:
                first[label] = round((shown[0] - t) * 1000, 1)
            if label == "mark range m":
                while app.range_stats is None:
                    await pilot.pause(0.01)
                st = app.range_stats
                t = time.perf_counter()
                range_stats(app.trace, app.session.classes, app.analyses.model,
                            st["t0"], st["t1"])
                out["range_stats_background_ms"] = round((time.perf_counter() - t) * 1000, 1)
                out["range_span_pct_of_trace"] = round(100 * st["span_ns"] / app.trace.end_ns)
        out["keys_ms"] = keys
        out["first_frame_ms"] = first  # (the keys of FILLS_IN)
        out["harness_ms"] = keys.pop("(unbound key: harness only)")
        slow = max(keys, key=keys.get)
        out["slowest_key"] = slow
        out["slowest_ms"] = keys[slow]
        await pilot.press("q")
    return out


#: the everyday panes' keys, each pressed the moment the load ends in a session of its own
AT_LOAD = {"b": "StepScreen", "u": "OperatorScreen", "M": "ModuleScreen"}


async def _open_at_load(path: str, key: str) -> float:
    """Seconds from the load's end to the first frame written with the pane of ``key`` on
    screen, the key pressed at the load's end (wall time: what it waits for is other
    threads' work; not Pilot's press, which returns only once the app is idle)."""
    from tracetui.app.app import TraceApp

    app = TraceApp(path)
    shown: list[float] = []
    display = app._display

    def _display(screen: object, renderable: object) -> None:
        if renderable is not None and not shown and type(app.screen).__name__ == AT_LOAD[key]:
            shown.append(time.perf_counter())
        display(screen, renderable)

    app._display = _display  # type: ignore[method-assign]
    async with app.run_test(size=(120, 40)) as pilot:
        while not (app.loaded or app.error):
            await pilot.pause(0.01)
        t = time.perf_counter()
        await pilot.press(key)
        while not shown:
            await pilot.pause(0.01)
        await pilot.press("q")
    return round(shown[0] - t, 2)


async def _at_load(path: str) -> dict:
    return {key: await _open_at_load(path, key) for key in AT_LOAD}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=1000)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--trace", help="use this trace instead of making one")
    ap.add_argument("--no-at-load", action="store_true",
                    help="skip the sessions that press b, u and M the moment the load ends")
    args = ap.parse_args(argv)

    def run(path: str) -> dict:
        res = asyncio.run(_session(path))
        if not args.no_at_load:
            res["open_at_load_s"] = asyncio.run(_at_load(path))
        return {"bench": "views", "mb": round(os.path.getsize(path) / 1e6, 1), **res}

    if args.trace:
        print(json.dumps(run(args.trace)))
        return 0
    with temporary_big_trace(args.mb, DEFAULT_SOURCE, keep=args.keep) as (path, _):
        res = run(path)
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
