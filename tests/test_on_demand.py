"""Ranks opened on demand (issue 21): ``tracetui DIR`` of more ranks than it holds opens the
rank view from the ranks' reports, then the timelines of the straggler and the median rank,
and of each rank ⏎ opens, at most ``--max-ranks`` at once; reports given are ranks too."""

from __future__ import annotations

import gc
import gzip
import json
import os
import shutil
import sys
import weakref
from pathlib import Path

import pytest

from tracetui.cli import main
from tracetui.job.many import default_max_ranks, json_bytes, reports, trace_of
from tracetui.trace import load

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from make_ranks import make_ranks  # noqa: E402


@pytest.fixture(scope="module")
def eight(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("ranks")
    make_ranks(str(d), 8, slow_rank=5, slow=1.3, mb=0)
    return d


def _files(d: Path) -> list[str]:
    return [str(d / f"rank-{r}.json") for r in range(8)]


def _raw_comp_per_step(path: str) -> float:
    """Computation per step straight from the JSON: the union of the non-NCCL kernels'
    intervals (one GPU), over the ProfilerStep count."""
    evs = json.load(open(path))["traceEvents"]
    ivs = sorted((e["ts"], e["ts"] + e["dur"]) for e in evs
                 if e.get("cat") == "kernel" and "nccl" not in e["name"].lower())
    total, end = 0.0, float("-inf")
    for a, b in ivs:
        if b > end:
            total += b - max(a, end)
            end = b
    steps = sum(1 for e in evs if e.get("ph") == "X" and str(e.get("name", "")).startswith(
        "ProfilerStep#"))
    return total / max(steps, 1)


# ----------------------------------------------------------------------------- pure parts

class _Held(str):
    """Stands for a loaded trace here: its name, and the bytes it holds."""

    def memory_bytes(self) -> int:
        return 1000 * len(self)


def test_holds_keep_at_most_max_ranks_letting_go_of_the_least_recently_asked():
    from tracetui.app.session import RankHolds

    h = RankHolds({r: f"r{r}.json" for r in range(6)} | {6: None}, 3,
                  {6: "rank 6: no file"})
    assert h.ask([5, 0]) == [5, 0] and h.state(5) == "loading"
    assert h.take({5: _Held("T5"), 0: _Held("T0")}, {}) == []  # (_Held stands for a trace)
    assert h.state(0) == "shown" and h.ask([0, 5]) == []  # held: only moved to the end
    assert h.ask([2]) == [2] and h.take({2: _Held("T2")}, {}) == []
    assert h.ask([3]) == [3]
    assert h.take({3: _Held("T3")}, {}) == [0]  # 0 asked for before 5 (re-asked after it)
    assert [r for r, _ in h.traces()] == [2, 3, 5]
    h.combined_bytes = 7
    assert h.memory_bytes() == 3 * 2000 + 7  # the ranks held, not the one let go
    assert h.ask([6]) == [] and h.state(6) == "none" and "no file" in h.problem(6)
    assert h.problem(9) == "no rank 9 in this job"
    assert h.ask([1]) == [1] and h.take({}, {1: "r1.json: not a JSON trace"}) == []
    assert h.state(1) == "failed" and h.problem(1) == "r1.json: not a JSON trace"
    # never more loaded at once than can be held, never one just loaded let go
    h2 = RankHolds({r: "x" for r in range(10)}, 2)
    assert h2.ask(range(10)) == [0, 1]
    assert h2.take({0: _Held("a"), 1: _Held("b")}, {}) == [] and len(h2.held) == 2


def _summary(comp: dict[int, float], stragglers: list[int]) -> dict:
    from statistics import median

    return {"ranks": [{"rank": r, "comp_per_step_us": v, "straggler": r in stragglers}
                      for r, v in sorted(comp.items())],
            "median_comp_per_step_us": median(comp.values()), "stragglers": stragglers}


def test_the_ranks_opened_first():
    from tracetui.app.session import default_ranks

    comp = {r: 100.0 + r % 5 for r in range(20)}  # median 102: ranks 2, 7, 12, 17
    comp[13] = 300.0
    got, what = default_ranks(_summary(comp, [13]), 8)
    assert got == [13, 2] and "straggler (13)" in what and "median rank (2)" in what
    comp[4] = 290.0
    assert default_ranks(_summary(comp, [4, 13]), 8)[0] == [4, 13, 2]
    assert default_ranks(_summary(comp, [4, 13]), 2)[0] == [4, 2]  # room for the median
    assert default_ranks(_summary(comp, [4, 13]), 1)[0] == [4]
    # no straggler: the slowest rank, and the median
    calm = {r: 100.0 + r % 5 for r in range(20)}
    got, what = default_ranks(_summary(calm, []), 8)
    assert got == [4, 2] and "no straggler" in what
    same = {r: 5.0 for r in range(12)}
    got, what = default_ranks(_summary(same, []), 4)
    assert got == [0] and what == "the median rank (0; no straggler)"
    # a small job: every rank
    assert default_ranks(_summary({0: 1.0, 1: 9.0, 2: 1.0}, [1]), 8) == ([0, 1, 2], "every rank")


def test_json_bytes_and_the_memory_budget(tmp_path, monkeypatch):
    import tracetui.job.many as many

    raw = json.dumps({"traceEvents": [{"ph": "X", "name": "k" * 50, "ts": i, "dur": 1}
                                      for i in range(2000)]}).encode()
    plain, gz = tmp_path / "a.json", tmp_path / "b.json.gz"
    plain.write_bytes(raw)
    gz.write_bytes(gzip.compress(raw))
    assert json_bytes(str(plain)) == len(raw) and json_bytes(str(gz)) == len(raw)
    monkeypatch.setattr(many, "memory_available", lambda: None)
    assert default_max_ranks([str(plain)]) == (many.MAX_RANKS, f"at most {many.MAX_RANKS}")
    each = len(raw) * many.HELD_PER_JSON_BYTE
    monkeypatch.setattr(many, "memory_available", lambda: int(each * 7))
    n, why = default_max_ranks([str(plain), str(gz)])
    assert n == 3 and why.startswith("3: about")  # half of the memory: 3.5 timelines
    monkeypatch.setattr(many, "memory_available", lambda: int(each))
    assert default_max_ranks([str(plain)])[0] == 1


def test_the_trace_a_report_stands_for(eight, tmp_path):
    trace = str(eight / "rank-3.json")
    assert trace_of(trace, {"file": trace}) == trace
    assert trace_of(str(tmp_path / "3.json"), {"file": trace}) == trace
    (tmp_path / "reports").mkdir()
    shutil.copy(trace, tmp_path / "rank-3.json")
    # a path from another working directory: found beside the report's directory
    assert trace_of(str(tmp_path / "reports" / "3.json"), {"file": "gone/rank-3.json"}) is None
    assert trace_of(str(tmp_path / "3.json"), {"file": "gone/rank-3.json"}) == \
        str(tmp_path / "rank-3.json")


def test_reports_stop_when_cancelled(eight):
    got = reports(_files(eight), [], cancelled=lambda: True)
    assert [(r, e) for _, r, e in got] == [(None, None)] * 8


# ----------------------------------------------------------------------------- the app

async def _wait(pilot, cond, what: str, tries: int = 600):
    for _ in range(tries):
        await pilot.pause(0.05)
        if cond():
            return
    raise AssertionError(f"never: {what}")


def _grid_text(scr) -> list[str]:
    g = scr.grid
    return ["".join(s.text for s in g.render_line(y)) for y in range(1, len(g.order) + 1)]


async def test_a_job_of_more_ranks_than_held_opens_on_demand(eight):
    from tracetui.app.app import TraceApp
    from tracetui.app.ranks import RanksScreen

    app = TraceApp("eight (8 ranks)", ranks=_files(eight), max_ranks=3)
    async with app.run_test(size=(120, 36)) as pilot:
        await _wait(pilot, lambda: app.session.holds is not None, "the reports")
        assert isinstance(app.screen, RanksScreen)  # the rank view first
        holds = app.session.holds
        await _wait(pilot, lambda: app.analyses is not None and len(holds.held) == 2,
                    "the first timelines")
        # the straggler and the median rank: the rank whose computation per step (from the
        # raw JSON) is nearest the median of all ranks (all but rank 5 alike: the lowest)
        comp = {r: _raw_comp_per_step(f) for r, f in enumerate(_files(eight))}
        vals = sorted(comp.values())
        med = (vals[3] + vals[4]) / 2  # eight values: the mean of the middle two
        nearest = min((r for r in comp if r != 5), key=lambda r: (abs(comp[r] - med), r))
        assert max(comp, key=comp.get) == 5
        assert sorted(holds.held) == sorted([5, nearest]) == [0, 5]
        tr = app.trace
        singles = {r: load(_files(eight)[r]) for r in (0, 3, 5, 6)}
        assert sorted(set(tr.rank_of_lane)) == [0, 5]
        assert tr.slice_count == singles[0].slice_count + singles[5].slice_count
        scr = app.screen
        rows = _grid_text(scr)
        assert "● shown" in rows[0] and "● shown" in rows[5] and "◀ straggler" in rows[5]
        assert "shown" not in rows[3]
        title = str(scr.query_one("#title").render())
        assert "2 of ≤ 3 timelines held" in title and "MB" in title
        # ⏎ on rank 3: loaded, then its lanes
        await pilot.press("home", "down", "down", "down", "enter")
        await _wait(pilot, lambda: 3 in holds.held and len(app.screen_stack) == 1
                    and app.analyses is not None and app.trace.rank_of_lane is not None
                    and 3 in app.trace.rank_of_lane, "rank 3")
        tl = app.timeline
        assert app.trace.rank_of_lane[tl.rows[tl.cursor].lane] == 3
        assert app.trace.slice_count == sum(singles[r].slice_count for r in (0, 3, 5))
        old = weakref.ref(app.trace)
        # ⏎ on rank 6: the least recently asked for (rank 0, the median) is let go
        await pilot.press("R")
        await pilot.pause()
        assert app.screen is scr and scr.grid.cursor == 3  # the view as it was left
        assert "● shown" in _grid_text(scr)[3]
        await pilot.press("home", "end", "up", "enter")
        await _wait(pilot, lambda: 6 in holds.held and len(app.screen_stack) == 1
                    and app.analyses is not None and 6 in app.trace.rank_of_lane, "rank 6")
        assert sorted(holds.held) == [3, 5, 6] and sorted(set(app.trace.rank_of_lane)) == \
            [3, 5, 6]
        assert app.trace.slice_count == sum(singles[r].slice_count for r in (3, 5, 6))
        assert "ranks 3 5 6 of 8" in str(app.query_one("#status").render())
        # one GPU per rank: numbered as its rank, in every view
        assert app.trace.devices == [3, 5, 6]
        assert [dc.device for dc in app.analyses.model.devices] == [3, 5, 6]
        assert [o["device"] for o in app.analyses.model.window(0, app.trace.end_ns)] == \
            [3, 5, 6]
        for key in ("k", "o", "p", "x", "i"):
            await pilot.press(key)
            await pilot.pause(0.3)
            await pilot.press("escape")
            await pilot.pause()
        assert len(app.screen_stack) == 1
        # ⏎ on a rank held: straight to its lanes, nothing loaded
        await pilot.press("R")
        await pilot.pause()
        shown = app.trace
        await pilot.press("home", "down", "down", "down", "enter")
        await pilot.pause()
        assert len(app.screen_stack) == 1 and app.trace is shown
        assert app.trace.rank_of_lane[tl.rows[tl.cursor].lane] == 3
        # the timeline shown before is gone from memory (the frozen heap thawed for it)
        for _ in range(3):
            gc.collect()
        assert old() is None
        # T realigns the ranks held
        await pilot.press("T")
        await pilot.pause()
        assert app.session.align == "step" and sorted(set(app.trace.rank_of_lane)) == [3, 5, 6]


async def test_a_directory_of_reports_opens_from_them(eight, tmp_path, capsys, monkeypatch):
    """The reports (``summary FILE --json``, as a Slurm array makes them) are the ranks;
    a timeline is the trace a report names, where it is found."""
    from tracetui.app.app import TraceApp
    from tracetui.app.ranks import RanksScreen

    monkeypatch.chdir(eight.parent)
    rep = tmp_path / "reports"
    rep.mkdir()
    for r in range(4):
        assert main(["summary", os.path.join(eight.name, f"rank-{r}.json"), "--json"]) == 0
        (rep / f"{r}.json").write_text(capsys.readouterr().out)
    # one report whose trace is another file now, one whose trace is not here
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"traceEvents": [
        {"ph": "X", "name": "k", "cat": "kernel", "ts": 1, "dur": 2, "pid": 0, "tid": 7}]}))
    swapped = json.loads((rep / "2.json").read_text())
    swapped["file"] = str(other)
    (rep / "2.json").write_text(json.dumps(swapped))
    moved = json.loads((rep / "3.json").read_text())
    moved["file"] = "elsewhere/rank-3.json"
    (rep / "3.json").write_text(json.dumps(moved))
    files = [str(rep / f"{r}.json") for r in range(4)]
    app = TraceApp("reports (4 ranks)", ranks=files)  # 4 ranks, but reports: on demand
    async with app.run_test(size=(120, 36)) as pilot:
        await _wait(pilot, lambda: app.session.holds is not None, "the reports")
        assert isinstance(app.screen, RanksScreen)
        holds = app.session.holds
        await _wait(pilot, lambda: app.analyses is not None and not holds.loading,
                    "the timelines")
        # 4 ranks, at most 8 held: every rank whose trace is here
        assert sorted(holds.held) == [0, 1, 2]
        assert os.path.samefile(holds.paths[0], eight / "rank-0.json")
        assert app.trace.slice_count == sum(load(str(eight / f"rank-{r}.json")).slice_count
                                            for r in range(2)) + 1
        assert any("rank 2: its trace" in n.message and "is not the file its report was made "
                   f"from ({other.stat().st_size:,} bytes now" in n.message
                   for n in app._notifications)
        rows = _grid_text(app.screen)
        assert "no file" in rows[3]
        await pilot.press("end", "enter")  # rank 3: said why, nothing else happens
        await pilot.pause()
        assert isinstance(app.screen, RanksScreen) and 3 not in holds.held
        assert any("elsewhere/rank-3.json is not here" in n.message
                   for n in app._notifications)
        await pilot.press("q")  # the rank view is the first screen here: q quits
        await pilot.pause(0.3)
    assert app.return_code == 0


def test_the_rank_view_says_when_the_reports_were_stopped():
    from tracetui.app.ranks import RanksScreen
    from tracetui.app.session import RankHolds
    from tracetui.app.themes import load_theme

    summary = {"ranks": [{"rank": r, "file": f"rank-{r}.json", "straggler": False,
                          "comp_per_step_us": 1.0} for r in range(3)], "stragglers": []}
    holds = RankHolds({r: f"rank-{r}.json" for r in range(3)}, 8)
    holds.unread = 125
    t = RanksScreen(summary, load_theme("dark").palette, holds).title_text().plain
    assert t.startswith("3 ranks (reports stopped: 125 files not read)")
    assert "0 of ≤ 8 timelines held" in t


async def test_quitting_while_the_reports_are_made_ends_at_once(eight):
    import time

    from tracetui.app.app import TraceApp

    app = TraceApp("eight (8 ranks)", ranks=_files(eight), max_ranks=1)
    async with app.run_test(size=(100, 30)) as pilot:
        await _wait(pilot, lambda: app.session.stage is not None, "the reports begun")
        t = time.perf_counter()
        app.exit()
    # (the pool's processes killed: the load thread ends, not after every report)
    worker = next((w for w in app.workers if w.name == "load"), None)
    assert worker is None or not worker.is_running
    assert time.perf_counter() - t < 10


def test_one_trace_takes_neither_scheduler_nor_max_ranks(eight, capsys):
    f = str(eight / "rank-0.json")
    assert main([f, "--scheduler", "tcp://127.0.0.1:1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--scheduler: for the ranks of a job" in err
    assert main([f, "--max-ranks", "2"]) == 2
    assert "--max-ranks: for the ranks of a job" in capsys.readouterr().err
    for bad in ("0", "-1"):
        with pytest.raises(SystemExit):
            main([str(eight), "--max-ranks", bad])
        assert f"{bad}: at least 1" in capsys.readouterr().err


def test_tracetui_dir_of_many_ranks_in_a_terminal(eight):
    from ptyterm import PtyApp

    app = PtyApp([str(eight), "--max-ranks", "2"], cols=120, rows=30)
    assert app.wait_for("straggler: rank 5"), app.text()[-2000:]  # the rank view first
    assert app.wait_for("2 of ≤ 2 timelines held"), app.text()[-2000:]
    app.keys("\x1b")  # the timeline: the straggler's lanes and the median rank's
    assert app.wait_for("r5 · GPU 0 · stream 7"), app.text()[-2000:]
    assert "r0 · GPU 0" in app.text()
    app.keys("R")
    app.pump(0.5)
    app.keys("q")  # from the rank view
    assert app.finish() == 0, app.text()[-2000:]


async def test_a_rank_whose_trace_went_away_is_marked_failed(eight, tmp_path):
    from tracetui.app.app import TraceApp

    d = tmp_path / "job"
    shutil.copytree(eight, d)
    app = TraceApp("job (8 ranks)", ranks=_files(d), max_ranks=2)
    async with app.run_test(size=(120, 36)) as pilot:
        await _wait(pilot, lambda: app.session.holds is not None and app.analyses is not None
                    and not app.session.holds.loading, "the first timelines")
        holds = app.session.holds
        (d / "rank-4.json").unlink()  # gone after its report was made
        shown = app.trace
        await pilot.press("home", *["down"] * 4, "enter")
        await _wait(pilot, lambda: holds.state(4) == "failed", "rank 4 failed")
        assert "rank-4.json" in holds.problem(4) and app.trace is shown
        assert sorted(holds.held) == [0, 5] and holds.loading == set()
        assert "✗ failed" in _grid_text(app.screen)[4]
        assert any(n.message.startswith("rank 4: ") for n in app._notifications)
        assert app.session.stage is None
