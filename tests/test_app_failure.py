"""An app that fails exits non-zero with one line (issue 31): it exited 0 after Textual's
traceback with its locals. Ranks whose clocks are centuries apart open aligned on their
starts, with a warning (the combined timeline overflowed int64 and the app crashed)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from tracetui.trace import load
from tracetui.trace.combine import combine

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from ptyterm import ANSI, PtyApp  # noqa: E402

ANNOTATED = ROOT / "sample_traces" / "annotated.json"

def _planted(tmp_path: Path, module: str, cls: str, action: str) -> dict[str, str]:
    """An environment whose Python runs ``sitecustomize`` first: ``cls.action`` raises."""
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    # when tracetui.app.<module> is first imported, its cls.action is replaced
    (site / "sitecustomize.py").write_text(f"""
import importlib.abc, sys
class _Hook(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "tracetui.app.{module}":
            return None
        sys.meta_path.remove(self)
        import importlib.util
        spec = importlib.util.find_spec(name)
        load = spec.loader.exec_module
        def exec_module(mod):
            load(mod)
            def boom(self, *a, **k):
                raise RuntimeError("planted in a key action <b>[red]x")
            setattr(getattr(mod, "{cls}"), "{action}", boom)
        spec.loader.exec_module = exec_module
        return spec
sys.meta_path.insert(0, _Hook())
""")
    return {"PYTHONPATH": f"{site}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def _one_line_failure(app: PtyApp) -> None:
    code = app.finish(timeout=30)
    text = ANSI.sub(b"", bytes(app.out)).decode("utf-8", "replace")
    assert code == 1, text[-2000:]
    assert text.count("internal error") == 1, text[-2000:]
    line = text[text.index("tracetui: internal error"):].splitlines()[0]
    assert [line] == ["tracetui: internal error: RuntimeError: planted in a key action "
                     "<b>[red]x (please report this with the trace if you can; "
                     "TRACETUI_DEBUG=1 shows where)"], text[-2000:]
    assert "Traceback" not in text and "locals" not in text and "boom" not in text


def test_a_failing_key_action_exits_1_with_one_line(tmp_path):
    env = _planted(tmp_path, "app", "TraceApp", "action_help")
    app = PtyApp([str(ANNOTATED)], cols=100, rows=30, env=env)
    assert app.wait_for("GPU 0"), app.text()[-2000:]
    app.keys("?")
    _one_line_failure(app)


def test_a_failing_compare_view_exits_1_with_one_line(tmp_path):
    env = _planted(tmp_path, "compare", "CompareScreen", "action_next_table")
    app = PtyApp(["diff", str(ANNOTATED), str(ROOT / "sample_traces" / "decode.json")],
                 cols=100, rows=30, env=env)
    assert app.wait_for("kernels by impact"), app.text()[-2000:]
    app.keys("\t")
    _one_line_failure(app)


def test_debug_keeps_the_traceback(tmp_path):
    env = {**_planted(tmp_path, "app", "TraceApp", "action_help"), "TRACETUI_DEBUG": "1"}
    app = PtyApp([str(ANNOTATED)], cols=100, rows=30, env=env)
    assert app.wait_for("GPU 0"), app.text()[-2000:]
    app.keys("?")
    assert app.finish(timeout=30) == 1
    assert "Traceback" in app.text() and "tracetui: internal error" in app.text()


def test_a_trace_that_fails_to_load_in_the_app_exits_2_with_its_error(tmp_path):
    """Found only once the app has started (the file opens): shown there, then said again
    on exit with status 2, as the command line says a file it cannot read."""
    bad = tmp_path / "et.json"  # a PyTorch execution trace: JSON, not trace events
    bad.write_text('{"schema": "1.0.2-chakra.0.0.4", "pid": 1, "nodes": [{"id": 1}]}')
    app = PtyApp([str(bad)], cols=100, rows=30)
    assert app.wait_for("et.json"), app.text()[-2000:]
    app.pump(2.0)  # the load fails, the app says so
    app.keys("q")
    code = app.finish(timeout=30)
    text = ANSI.sub(b"", bytes(app.out)).decode("utf-8", "replace")
    assert code == 2, text[-2000:]
    line = text[text.rindex("tracetui: error: "):].splitlines()[0]
    assert "execution trace" in line.lower(), line


def _ranks(tmp_path: Path, starts_us: list[float]) -> list[str]:
    files = []
    for r, t in enumerate(starts_us):
        ev = [{"ph": "X", "cat": "kernel", "name": "k", "pid": 0, "tid": 7, "ts": t + dt,
               "dur": 5, "args": {"device": 0, "stream": 7}} for dt in (0, 100)]
        p = tmp_path / f"rank-{r}.json"
        p.write_text(json.dumps({"distributedInfo": {"rank": r}, "traceEvents": ev}))
        files.append(str(p))
    return files


def test_clocks_centuries_apart_align_on_each_ranks_start(tmp_path):
    files = _ranks(tmp_path, [-9e15, 0, 9e15])  # ±285 years: no int64 ns timeline holds it
    ranks = [(r, load(f)) for r, f in enumerate(files)]
    tr = combine(ranks, "clock")
    assert tr.header["align"] == "start"
    assert any("clocks are 570 years apart" in w for w in tr.align_warnings)
    assert tr.end_ns == 105_000 and int(tr.start.min()) == 0 and int(tr.start.max()) == 100_000
    # a century apart: held as recorded
    near = combine([(r, load(f)) for r, f in enumerate(_ranks(tmp_path, [0, 3.15e15, 0]))],
                   "clock")
    assert near.header["align"] == "clock" and not near.align_warnings
    assert int(near.start.max()) == 3_150_000_000_000_000_000 + 100_000


async def test_the_app_cycles_alignments_of_clocks_centuries_apart(tmp_path):
    from tracetui.app.app import TraceApp

    files = _ranks(tmp_path, [-9e15, 0, 9e15])
    for align in ("clock", "start"):
        app = TraceApp("cent (3 ranks)", ranks=files, align=align)
        async with app.run_test(size=(120, 36)) as pilot:
            for _ in range(400):
                if app.session.loaded or app.error:
                    break
                await pilot.pause(0.05)
            assert app.error is None and app.trace.end_ns == 105_000
            for _ in range(3):  # T: step, clock, start
                await pilot.press("T")
                await pilot.pause(0.2)
                assert app.trace.end_ns == 105_000
            await pilot.press("q")
        assert app.return_code in (0, None) and app.failure is None


def test_ranks_centuries_apart_in_a_terminal_exit_0(tmp_path):
    files = _ranks(tmp_path, [-9e15, 0, 9e15])
    app = PtyApp([*files, "--align", "clock"], cols=120, rows=36)
    assert app.wait_for("r2 · GPU 0"), app.text()[-2000:]
    app.keys("T")
    app.pump(0.5)
    app.keys("T")
    app.pump(0.5)
    app.keys("q")
    assert app.finish(timeout=30) == 0, app.text()[-2000:]
    assert "Traceback" not in app.text()


def test_summary_of_ranks_centuries_apart(tmp_path, capsys):
    from tracetui.cli import main

    files = _ranks(tmp_path, [-9e15, 0, 9e15])
    assert main(["summary", *files, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["rank"] for r in out["ranks"]] == [0, 1, 2]
