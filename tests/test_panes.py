"""The everyday panes in the app: the step breakdown (b), the operators (u, ^t by shapes, ⏎
occurrences, ⏎ the timeline), the operator of a selected kernel (U) and the module tree (M).
What they show is checked against the raw JSON read here, never against the analyses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import loaded, until
from tracetui.app.app import TraceApp
from tracetui.app.panes import ModuleScreen, OccurrenceScreen, OperatorScreen, StepScreen

ROOT = Path(__file__).resolve().parent.parent
ANNOTATED = ROOT / "sample_traces" / "annotated.json"
CNN = ROOT / "sample_traces" / "torch" / "ops_cnn.json"


def _events(path: Path) -> list[dict]:
    return json.loads(path.read_text())["traceEvents"]


def _steps(path: Path) -> list[dict]:
    evs = _events(path)
    return sorted((e for e in evs if e.get("ph") == "X" and e.get("cat") != "gpu_user_annotation"
                   and str(e.get("name", "")).startswith("ProfilerStep#")),
                  key=lambda e: e["ts"])


@pytest.mark.parametrize("size", [(120, 40), (80, 24)])
async def test_step_view_lists_every_step_and_frames_one(size):
    app = TraceApp(str(ANNOTATED))
    async with app.run_test(size=size) as pilot:
        await loaded(app, pilot, analyses=True)
        await pilot.press("b")
        await until(pilot, lambda: isinstance(app.screen, StepScreen))
        screen = app.screen
        steps = _steps(ANNOTATED)
        assert [r["name"] for r in screen.grid.model.records] == [e["name"] for e in steps]
        # the table is in time order; the second step, framed on the timeline
        await pilot.press("down", "enter")
        await until(pilot, lambda: not isinstance(app.screen, StepScreen))
        tl = app.timeline
        t0_abs = min(e["ts"] for e in _events(ANNOTATED) if "ts" in e and e.get("ph") != "M")
        cpu_start = (steps[1]["ts"] - t0_abs) * 1000
        # the device side starts no earlier than its CPU side and the window holds it
        assert tl.t0 <= cpu_start + 1e6 and tl.t1 > cpu_start


async def test_operator_view_shapes_occurrences_and_the_timeline():
    app = TraceApp(str(CNN))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(app, pilot, analyses=True)
        await pilot.press("u")
        await until(pilot, lambda: isinstance(app.screen, OperatorScreen))
        ops = app.screen
        names = {e["name"] for e in _events(CNN) if e.get("cat") == "cpu_op"}
        shown = {r["name"] for r in ops.grid.model.records}
        assert shown == names - {n for n in names if n.startswith("ProfilerStep#")}
        # by input shapes: read in a worker, then shown
        await pilot.press("ctrl+t")
        await until(pilot, lambda: ops.shapes is not None, tries=500)
        await pilot.pause()
        assert ops.by_shape and "input_dims" in ops.grid.model.records[0]
        # ⏎: the occurrences of the row under the cursor, slowest first
        rec = ops.records()[ops.grid.current]
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, OccurrenceScreen))
        occ = app.screen
        want = [e for e in _events(CNN) if e.get("cat") == "cpu_op" and e["name"] == rec["name"]
                and json.dumps(e["args"].get("Input Dims", []), separators=(",", ":"))
                == rec["input_dims"]]
        assert len(occ.rows) == len(want) == rec["calls"]
        # ⏎ again: that occurrence selected on the timeline
        row = int(occ.rows[occ.grid.current])
        await pilot.press("enter")
        await until(pilot, lambda: app.timeline.selected == row)


async def test_U_opens_the_operator_that_launched_the_selected_kernel():
    app = TraceApp(str(ANNOTATED))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(app, pilot, analyses=True)
        tr = app.session.trace
        evs = [e for e in _events(ANNOTATED) if e.get("ph") == "X"]
        kernel = next(e for e in evs if e.get("cat") == "kernel")
        corr = kernel["args"]["correlation"]
        rt = next(e for e in evs if e.get("cat") == "cuda_runtime"
                  and e.get("args", {}).get("correlation") == corr)
        around = [e for e in evs if e.get("cat") == "cpu_op" and e["tid"] == rt["tid"]
                  and e["ts"] <= rt["ts"] and e["ts"] + e["dur"] >= rt["ts"] + rt["dur"]]
        want = min(around, key=lambda e: e["dur"])["name"]  # the innermost
        row = next(i for i in range(tr.slice_count) if tr.name_of(i) == kernel["name"]
                   and tr.cat_of(i) == "kernel")
        first = min((i for i in range(tr.slice_count) if tr.name_of(i) == kernel["name"]),
                    key=lambda i: int(tr.start[i]))
        app.timeline.select(first, reveal=True)
        await pilot.pause()
        await pilot.press("U")
        await until(pilot, lambda: isinstance(app.screen, OperatorScreen))
        await until(pilot, lambda: app.screen.grid.model.records[app.screen.grid.current]["name"]
                    == want)
        assert row >= 0


async def test_module_tree_opens_and_closes():
    app = TraceApp(str(CNN))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(app, pilot, analyses=True)
        await pilot.press("M")
        await until(pilot, lambda: isinstance(app.screen, ModuleScreen))
        m = app.screen
        frames = {e["name"][len("nn.Module: "):] for e in _events(CNN)
                  if str(e.get("name", "")).startswith("nn.Module: ")}
        assert {r["module"] for r in m.paths} == frames
        first = [r["path"] for r in m.grid.model.records]
        assert first[0] == "SmallCNN_0" and all(p.count(" › ") <= 1 for p in first)
        # down to Sequential_0, open it: its children show, then close it
        seq = first.index("SmallCNN_0 › Sequential_0")
        await pilot.press(*["down"] * seq, "right")
        shown = [r["path"] for r in m.grid.model.records]
        assert "SmallCNN_0 › Sequential_0 › ConvBlock_0" in shown
        await pilot.press("left")
        assert [r["path"] for r in m.grid.model.records] == first
        # by type: one row per module type
        await pilot.press("ctrl+t")
        types = {r["name"] for r in m.grid.model.records}
        assert types == {f.rsplit("_", 1)[0] for f in frames}


async def test_the_kept_occurrence_screen_shows_each_operator_it_is_asked_for():
    """One occurrence screen serves every operator (and module): the second operator's
    occurrences replace the first's, their times read from the raw JSON."""
    app = TraceApp(str(CNN))
    evs = [e for e in _events(CNN) if e.get("cat") == "cpu_op"]
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(app, pilot, analyses=True)
        await pilot.press("u")
        await until(pilot, lambda: isinstance(app.screen, OperatorScreen))
        ops = app.screen
        seen = []
        for _ in range(2):
            rec = ops.records()[ops.grid.current]
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, OccurrenceScreen))
            occ = app.screen
            await until(pilot, lambda o=occ, r=rec: o.op_name == r["name"])
            want = sorted((e["dur"] for e in evs if e["name"] == rec["name"]), reverse=True)
            got = [float(app.session.trace.dur[occ.rows[i]]) / 1000 for i in occ.grid.order]
            assert got == pytest.approx(want, abs=1e-3)
            # the cursor's row is the slowest, and its host time is what the JSON says
            assert occ.grid.current == int(occ.grid.order[0])
            seen.append((occ, rec["name"]))
            await pilot.press("escape")
            await until(pilot, lambda: app.screen is ops)
            await pilot.press("down")
        assert seen[0][0] is seen[1][0] and seen[0][1] != seen[1][1]


async def test_a_pane_key_before_its_figures_opens_the_pane_when_they_come(monkeypatch):
    """b pressed while the steps are still being made: a notice, then the steps, once."""
    import threading

    from tracetui.app import session as session_mod

    release = threading.Event()
    real = session_mod.step_breakdown

    def slow(*a, **k):
        release.wait(20)
        return real(*a, **k)

    monkeypatch.setattr(session_mod, "step_breakdown", slow)
    app = TraceApp(str(ANNOTATED))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(app, pilot, analyses=True)
        assert not app.analyses.panes_ready
        await pilot.press("b")
        await pilot.pause()
        assert not isinstance(app.screen, StepScreen)
        status = app.query_one("#status")
        assert "making the steps" in str(status.render())  # said until the pane opens
        release.set()
        await until(pilot, lambda: isinstance(app.screen, StepScreen))
        assert "making the steps" not in str(status.render())
        assert [r["name"] for r in app.screen.grid.model.records] == \
            [e["name"] for e in _steps(ANNOTATED)]


async def test_a_pane_key_moved_away_from_does_not_open_later(monkeypatch):
    """b, then the kernel table before the steps are made: the steps do not open over it."""
    import threading

    from tracetui.app import session as session_mod
    from tracetui.app.views import KernelScreen

    release = threading.Event()
    real = session_mod.step_breakdown
    monkeypatch.setattr(session_mod, "step_breakdown",
                        lambda *a, **k: (release.wait(20), real(*a, **k))[1])
    app = TraceApp(str(ANNOTATED))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(app, pilot, analyses=True)
        await pilot.press("b", "k")
        await until(pilot, lambda: isinstance(app.screen, KernelScreen))
        release.set()
        await until(pilot, lambda: app.analyses.panes_ready)
        await until(pilot, lambda: app.panes_shown_ready)
        assert isinstance(app.screen, KernelScreen)
        await pilot.press("escape", "b")  # and now it opens at once
        await until(pilot, lambda: isinstance(app.screen, StepScreen))


async def test_panes_that_fail_say_so_and_the_app_goes_on(monkeypatch):
    from tracetui.app import session as session_mod

    def broken(*a, **k):
        raise ValueError("a step the breakdown did not expect")

    monkeypatch.setattr(session_mod, "step_breakdown", broken)
    app = TraceApp(str(ANNOTATED))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(app, pilot, analyses=True)
        await until(pilot, lambda: app.analyses.panes_error is not None)
        await pilot.press("b")
        await pilot.pause()
        msgs = [str(n.message) for n in app._notifications]
        assert any("did not expect" in m and "failed" in m for m in msgs), msgs
        assert not isinstance(app.screen, StepScreen)
        await pilot.press("k")  # the rest works
        await until(pilot, lambda: type(app.screen).__name__ == "KernelScreen")


async def test_the_steps_open_while_the_operators_are_still_being_made(monkeypatch):
    """Each pane waits for its own figures only: b opens while the operator tree is held
    up, and u opens once it is made."""
    import threading

    from tracetui.app import session as session_mod

    release = threading.Event()
    real = session_mod.op_tree
    monkeypatch.setattr(session_mod, "op_tree",
                        lambda *a, **k: (release.wait(20), real(*a, **k))[1])
    app = TraceApp(str(ANNOTATED))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(app, pilot, analyses=True)
        await pilot.press("b")
        await until(pilot, lambda: isinstance(app.screen, StepScreen))
        assert not app.analyses.pane_ready("operators")
        await pilot.press("escape", "u")
        await pilot.pause()
        assert not isinstance(app.screen, OperatorScreen)
        assert "making the operators" in str(app.query_one("#status").render())
        release.set()
        await until(pilot, lambda: isinstance(app.screen, OperatorScreen))
        await until(pilot, lambda: app.panes_shown_ready)
        # every figure made: what the heap kept for them is given back (once)
        await until(pilot, lambda: app.analyses.heap_given_back)


async def test_operators_that_fail_say_so_for_the_modules_too(monkeypatch):
    """The modules come from the operator tree: when it fails, M says so at once (it does
    not wait for figures that will never come), and the steps still open."""
    from tracetui.app import session as session_mod

    def broken(*a, **k):
        raise ValueError("an operator tree it did not expect")

    monkeypatch.setattr(session_mod, "op_tree", broken)
    app = TraceApp(str(ANNOTATED))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(app, pilot, analyses=True)
        await until(pilot, lambda: "modules" in app.analyses.pane_errors)
        for key, what in (("u", "the operators failed"), ("M", "the modules failed")):
            await pilot.press(key)
            await pilot.pause()
            msgs = [str(n.message) for n in app._notifications]
            assert any(m.startswith(what) for m in msgs), msgs
            assert app.screen is app.screen_stack[0]  # (the timeline: nothing opened)
        assert "making the" not in str(app.query_one("#status").render())
        await pilot.press("b")
        await until(pilot, lambda: isinstance(app.screen, StepScreen))


async def test_the_aggregates_do_not_wait_for_panes_that_failed(monkeypatch):
    """The aggregates wait for the panes' figures (a head start), but not for figures that
    will never come: with the operator tree failing and the head start made long, the
    kernel table still opens at once."""
    from tracetui.app import session as session_mod

    def broken(*a, **k):
        raise ValueError("an operator tree it did not expect")

    monkeypatch.setattr(session_mod, "op_tree", broken)
    monkeypatch.setattr(session_mod, "PANES_HEAD_START_S", 60.0)
    app = TraceApp(str(ANNOTATED))
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.loaded)
        await until(pilot, lambda: app.session.shown_analyses() is not None)  # (6 s at most)
        await pilot.press("k")
        await until(pilot, lambda: type(app.screen).__name__ == "KernelScreen")
