"""Many ranks and two runs (issue 8, the command line): per-rank figures equal each file's own
summary, the slowed rank is the straggler, diffs agree with the raw JSON."""

from __future__ import annotations

import gzip
import json
import os
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from tracetui.analysis.diff import compare
from tracetui.analysis.ranks import find_stragglers, rank_of, summarize_ranks
from tracetui.analysis.report import analyze
from tracetui.cli import main
from tracetui.job.many import trace_files
from tracetui.trace import load

ROOT = Path(__file__).resolve().parent.parent
DECODE = ROOT / "sample_traces" / "annotated.json"
HTA2 = ROOT.parent / "shared" / "traces" / "hta_2rank"

sys.path.insert(0, str(ROOT / "bench"))
from make_ranks import make_ranks  # noqa: E402


def _json_out(capsys, argv: list[str]) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def eight(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("ranks")
    make_ranks(str(d), 8, slow_rank=5, slow=1.3, mb=0)
    return d


# ----------------------------------------------------------------------------- ranks

@pytest.mark.skipif(not HTA2.is_dir(), reason="needs ../shared/traces")
def test_hta_two_ranks_equal_their_own_summaries(capsys):
    s = _json_out(capsys, ["summary", str(HTA2), "--json"])
    assert [r["rank"] for r in s["ranks"]] == [0, 1]
    assert all(r["rank_from"] == "distributedInfo" for r in s["ranks"])
    for r in s["ranks"]:
        own = _json_out(capsys, ["summary", r["file"], "--json"])
        (ov,) = own["overlap"]
        assert r["devices"] == own["devices"] == [r["rank"]]  # GPU pid = rank in this job
        assert r["comm_us"] == ov["comm_us"] and r["comp_us"] == ov["comp_us"]
        assert r["exposed_comm_us"] == ov["exposed_comm_us"]
        assert r["overlap_pct"] == ov["overlap_pct"]
        assert r["events"] == own["events"]
    assert s["stragglers"] == []  # two ranks: no outlier rule


def test_the_slowed_rank_is_the_straggler(eight, capsys):
    s = _json_out(capsys, ["summary", str(eight), "--json"])
    assert [r["rank"] for r in s["ranks"]] == list(range(8))
    assert s["stragglers"] == [5]
    assert [r["straggler"] for r in s["ranks"]] == [r == 5 for r in range(8)]
    slow = s["ranks"][5]
    assert slow["comp_per_step_us"] > 1.1 * s["median_comp_per_step_us"]
    assert slow["exposed_comm_us"] < s["ranks"][0]["exposed_comm_us"]
    # the text output marks it too
    assert main(["summary", str(eight)]) == 0
    out = capsys.readouterr().out
    assert "straggler: rank 5" in out
    assert [ln.split()[0] for ln in out.splitlines()[1:] if "◀ straggler" in ln] == ["5"]


def test_no_straggler_among_equal_ranks(tmp_path, capsys):
    make_ranks(str(tmp_path), 4, slow_rank=None, slow=1.0, mb=0)
    s = _json_out(capsys, ["summary", str(tmp_path), "--json"])
    assert s["stragglers"] == [] and len(s["ranks"]) == 4


def test_rank_from_info_then_file_name_then_order():
    rep = {"distributed_info": {"rank": 3}}
    assert rank_of(rep, "x/rank-7.json", 0) == (3, "distributedInfo")
    assert rank_of({"distributed_info": {"rank": "4"}}, "a.json", 0) == (4, "distributedInfo")
    for name, want in (("trace_rank_12.json.gz", 12), ("worker5.pt.trace.json", 5),
                       ("host-a_pid99_step3.json", 3), ("rk-2.json", 2)):
        assert rank_of({"distributed_info": {}}, name, 0) == (want, "file name"), name
    assert rank_of({"distributed_info": {"rank": True}}, "trace.json", 6) == (6, "order")


def test_directories_expand_in_natural_order(tmp_path):
    for n in ("rank-10.json", "rank-2.json.gz", "rank-1.json", "notes.txt", "RANK-3.JSON"):
        (tmp_path / n).write_text("[]")
    (tmp_path / "sub.json").mkdir()
    got = [os.path.basename(p) for p in trace_files([str(tmp_path)])]
    assert got == ["rank-1.json", "rank-2.json.gz", "RANK-3.JSON", "rank-10.json"]


def test_outlier_rule():
    assert find_stragglers([10, 10, 10, 10, 13]) == [4]
    assert find_stragglers([10, 10.2, 9.9, 10.1, 10.4]) == []  # within 5 %
    assert find_stragglers([10, 14, 18, 22, 26]) == []  # spread out: nothing stands out
    assert find_stragglers([10, 30]) == []  # two ranks: no rule
    assert find_stragglers([10, 10, 10, 10, 13, 13.5, 10, 10]) == [4, 5]


def test_a_bad_rank_file_is_skipped_with_a_warning(eight, tmp_path, capsys):
    for p in sorted(eight.iterdir())[:3]:
        (tmp_path / p.name).write_bytes(p.read_bytes())
    (tmp_path / "rank-9.json").write_text("not json")
    s = _json_out(capsys, ["summary", str(tmp_path), "--json"])
    err = capsys.readouterr().err
    assert len(s["ranks"]) == 3
    assert main(["summary", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "tracetui: warning: skipped" in err and "rank-9.json: not a JSON trace" in err


def _without_files(s: dict) -> dict:
    """A rank summary with the file names left out (a report is named for its trace)."""
    return {**s, "ranks": [{k: v for k, v in r.items() if k != "file"} for r in s["ranks"]]}


def test_a_report_is_a_rank(eight, tmp_path, capsys):
    """summary FILE --json is the rank's report (a schema marker first): a directory of
    reports, or reports and traces mixed, summarise exactly as the traces do, the ranks
    found in the names of the traces the reports were made from."""
    whole = _json_out(capsys, ["summary", str(eight), "--json"])
    reports = tmp_path / "reports"
    reports.mkdir()
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for k, p in enumerate(sorted(eight.iterdir())):
        assert main(["summary", str(p), "--json"]) == 0
        out = capsys.readouterr().out
        assert out.startswith('{\n  "schema": "tracetui.report",\n  "schema_version": 1,')
        (reports / f"{k * 7}.json").write_text(out)  # named unlike the traces (Slurm ids)
        if k % 2:
            (mixed / f"r{k}.json").write_text(out)
        else:
            (mixed / p.name).write_bytes(p.read_bytes())
    for d in (reports, mixed):
        got = _json_out(capsys, ["summary", str(d), "--json"])
        assert _without_files(got) == _without_files(whole), d
        assert [r["rank"] for r in got["ranks"]] == list(range(8))
        assert got["stragglers"] == whole["stragglers"] == [5]
    assert main(["summary", str(reports)]) == 0  # and the text table
    assert "8 ranks, ms" in capsys.readouterr().out


def test_reports_that_cannot_be_ranks_are_skipped_with_a_reason(eight, tmp_path, capsys):
    import gzip as gz

    p = sorted(eight.iterdir())[0]
    assert main(["summary", str(p), "--json"]) == 0
    text = capsys.readouterr().out
    rep = json.loads(text)
    (tmp_path / "a.json.gz").write_bytes(gz.compress(text.encode()))  # gzipped: fine
    (tmp_path / "b.json").write_text(json.dumps({**rep, "schema_version": 99}))
    (tmp_path / "c.json").write_text(text[: len(text) // 2])  # cut short
    (tmp_path / "d.json").write_text(json.dumps({k: v for k, v in rep.items()
                                                 if k != "overlap"}))
    (tmp_path / "e.json").write_text(json.dumps({**rep, "rules": []}))  # other rules
    assert main(["summary", str(tmp_path), "--json"]) == 0
    out, err = capsys.readouterr()
    s = json.loads(out)
    assert len(s["ranks"]) == 2
    assert "b.json: a tracetui report of layout 99, newer than this tracetui reads (1)" in err
    assert "c.json: a damaged tracetui report" in err
    assert "d.json: a tracetui report without overlap" in err
    assert "e.json: a report made with other classification rules" in err
    assert "Traceback" not in err


def test_diff_takes_reports_as_their_traces(eight, tmp_path, capsys):
    a, b = (eight / "rank-4.json", eight / "rank-5.json")  # rank 5 is the slowed one
    reps = []
    for p in (a, b):
        assert main(["summary", str(p), "--json"]) == 0
        reps.append(tmp_path / f"{p.stem}.report.json")
        reps[-1].write_text(capsys.readouterr().out)
    from_traces = _json_out(capsys, ["diff", str(a), str(b), "--json"])
    assert _json_out(capsys, ["diff", str(reps[0]), str(reps[1]), "--json"]) == from_traces
    assert _json_out(capsys, ["diff", str(a), str(reps[1]), "--json"]) == from_traces
    assert from_traces["totals"]["comp_us"]["delta"] > 0  # the slowed rank computes longer


def test_the_app_names_a_report_it_cannot_draw(eight, tmp_path, capsys):
    from tracetui.job.many import load_many

    p = sorted(eight.iterdir())[0]
    assert main(["summary", str(p), "--json"]) == 0
    (tmp_path / "rep.json").write_text(capsys.readouterr().out)
    (path, tr, err), = load_many([str(tmp_path / "rep.json")])
    assert tr is None and "a tracetui report, which holds no timeline" in err


def test_an_empty_rank_file_is_skipped_with_a_warning(eight, tmp_path, capsys):
    """A rank file still empty (a job that died before writing it) is skipped by summary
    DIR with a warning naming it; the others are reported."""
    for p in sorted(eight.iterdir())[:3]:
        (tmp_path / p.name).write_bytes(p.read_bytes())
    (tmp_path / "rank-9.json").write_bytes(b"")
    s = _json_out(capsys, ["summary", str(tmp_path), "--json"])
    assert len(s["ranks"]) == 3
    assert main(["summary", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "tracetui: warning: skipped" in err and "rank-9.json" in err


async def test_the_app_opens_a_directory_with_an_empty_rank_file(eight, tmp_path):
    """``tracetui DIR`` opens the ranks it can read when one file is empty (it used to refuse
    the directory), and says which it skipped."""
    from tracetui.app.app import TraceApp

    for p in sorted(eight.iterdir())[:3]:
        (tmp_path / p.name).write_bytes(p.read_bytes())
    (tmp_path / "rank-9.json").write_bytes(b"")
    files = [str(p) for p in sorted(tmp_path.iterdir())]
    app = TraceApp("dir (4 ranks)", ranks=files)
    notes: list[str] = []
    real = app.notify
    app.notify = lambda message, *a, **k: (notes.append(str(message)), real(message, *a, **k))
    async with app.run_test(size=(120, 40)) as pilot:
        await _ready(app, pilot)
        assert len(app.session.rank_traces) == 3
        assert len(app.rank_summary["ranks"]) == 3
        assert any("skipped" in n and "rank-9.json" in n for n in notes), notes


@pytest.mark.parametrize("content", [None, "not json"])
def test_nothing_readable_is_one_line(tmp_path, capsys, content):
    if content is not None:
        (tmp_path / "a.json").write_text(content)
    assert main(["summary", str(tmp_path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith("tracetui: error: ")
    assert ("no *.json" in err[-1]) if content is None else ("none of the traces" in err[-1])


def test_several_files_on_the_command_line(eight, capsys):
    files = [str(eight / f"rank-{r}.json") for r in (7, 5, 0)]
    s = _json_out(capsys, ["summary", *files, "--json"])
    assert [r["rank"] for r in s["ranks"]] == [0, 5, 7]
    # `tracetui A B` without a terminal prints the per-rank table
    assert main(files) == 0
    assert "3 ranks, ms" in capsys.readouterr().out


def test_rank_figures_match_analyze(eight):
    path = str(eight / "rank-5.json")
    rep = analyze(load(path))
    row = summarize_ranks([(path, rep)])["ranks"][0]
    ov = rep["overlap"][0]
    assert row["gpu_busy_us"] == pytest.approx(ov["comm_us"] + ov["comp_us"] - ov["overlap_us"],
                                               abs=1e-3)
    steps = sorted(a["total_us"] for a in rep["annotations"]
                   if a["source"] == "cpu" and a["name"].startswith("ProfilerStep#"))
    assert row["steps"] == len(steps) == 6
    assert row["step_us"] == pytest.approx((steps[2] + steps[3]) / 2, abs=1e-3)


# ----------------------------------------------------------------------------- diff

def _raw_kernel_totals(path: Path) -> dict[str, tuple[int, float]]:
    """(count, total µs) per kernel name, straight from the JSON."""
    data = json.loads(path.read_bytes())
    out: dict[str, list] = defaultdict(lambda: [0, 0.0])
    for e in data["traceEvents"]:
        if e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset") and e.get("ph") == "X":
            out[e["name"]][0] += 1
            out[e["name"]][1] += e["dur"]
    return {k: (v[0], v[1]) for k, v in out.items()}


def test_diff_against_the_raw_json(eight, tmp_path, capsys):
    base = eight / "rank-0.json"
    # the new run: rank 5 (slower computation), minus one kernel, plus a new one
    data = json.loads((eight / "rank-5.json").read_bytes())
    gone = "void at::native::(anonymous namespace)::CatArrayBatchedCopy"
    kept = [e for e in data["traceEvents"] if not str(e.get("name", "")).startswith(gone)]
    extra = dict(next(e for e in kept if e.get("cat") == "kernel"))
    extra["name"] = "my_new_kernel"
    kept.append(extra)
    data["traceEvents"] = kept
    new = tmp_path / "new.json.gz"
    new.write_bytes(gzip.compress(json.dumps(data).encode()))
    plain_new = tmp_path / "new.json"
    plain_new.write_text(json.dumps(data))
    d = _json_out(capsys, ["diff", str(base), str(new), "--json"])
    b, n = _raw_kernel_totals(base), _raw_kernel_totals(plain_new)
    assert {r["name"] for r in d["kernels"]} == set(b) | set(n)
    for r in d["kernels"]:
        bc, bt = b.get(r["name"], (0, 0.0))
        nc, nt = n.get(r["name"], (0, 0.0))
        assert (r["base_count"], r["new_count"], r["delta_count"]) == (bc, nc, nc - bc)
        assert r["delta_total_us"] == pytest.approx(nt - bt, abs=2e-3), r["name"]
    assert d["only_in_new"] == ["my_new_kernel"]
    assert d["only_in_base"] and all(x.startswith(gone) for x in d["only_in_base"])
    impacts = [abs(r["delta_total_us"]) for r in d["kernels"]]
    assert impacts == sorted(impacts, reverse=True)
    # computation grew, communication did not; exposed communication fell
    t = d["totals"]
    assert t["comp_us"]["delta"] > 0 and t["comm_us"]["delta"] == 0
    assert t["exposed_comm_us"]["delta"] < 0
    (dev,) = d["devices"]
    assert dev["new_overlap_pct"] > dev["base_overlap_pct"]
    assert any(a["name"] == "mb0:attn" and a["source"] == "cpu" for a in d["annotations"])


def test_diff_of_a_run_with_itself_is_all_zero(capsys):
    d = _json_out(capsys, ["diff", str(DECODE), str(DECODE), "--json"])
    assert all(r["delta_total_us"] == 0 and r["delta_count"] == 0 for r in d["kernels"])
    assert not d["only_in_base"] and not d["only_in_new"]
    assert all(v["delta"] in (0, 0.0) for v in d["totals"].values())


def test_diff_text_and_group(eight, capsys):
    assert main(["diff", str(eight / "rank-0.json"), str(eight / "rank-5.json"), "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert "kernels by impact (full names" in out and "+30.0%" in out
    assert "… 20 more kernels" in out
    assert main(["diff", str(eight / "rank-0.json"), str(eight / "rank-5.json"), "--group"]) == 0
    assert "kernels by impact (short names" in capsys.readouterr().out


def test_diff_with_an_unreadable_side_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("nope")
    assert main(["diff", str(DECODE), str(bad)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"tracetui: error: {bad}: not a JSON trace")


def test_compare_pure_on_reports():
    rep = analyze(load(str(DECODE)))
    d = compare(rep, rep)
    assert d["kernels"] and d["totals"]["comp_us"]["delta"] == 0


# ----------------------------------------------------------------------------- ranks in the app

async def _rank_app(eight, **kw):
    from tracetui.app.app import TraceApp

    files = [str(p) for p in sorted(eight.iterdir())]
    return TraceApp("eight (8 ranks)", ranks=files, **kw)


async def _ready(app, pilot):
    for _ in range(400):
        await pilot.pause(0.05)
        if app.loaded and app.rank_summary is not None and app.analyses is not None:
            return
    raise AssertionError("never loaded")


async def test_ranks_open_as_one_timeline_grouped_by_rank(eight):
    from tracetui.trace.combine import combine

    app = await _rank_app(eight)
    async with app.run_test(size=(120, 40)) as pilot:
        await _ready(app, pilot)
        tr = app.trace
        singles = [load(str(eight / f"rank-{r}.json")) for r in range(8)]
        assert tr.slice_count == sum(t.slice_count for t in singles)
        assert tr.rank_of_lane == sorted(tr.rank_of_lane)  # grouped, in rank order
        assert [ln.name for ln in tr.lanes if tr.rank_of_lane[ln.index] == 3] == \
            [f"r3 · {ln.name}" for ln in singles[3].lanes]
        assert tr.devices == list(range(8))  # one GPU per rank
        # every rank's figures in the combined trace equal its own (the overlap per device)
        combined = {o["device"]: o for o in analyze(tr)["overlap"]}
        for r, single in enumerate(singles):
            (own,) = analyze(single)["overlap"]
            got = combined[r]
            for k in ("comm_us", "comp_us", "overlap_us", "exposed_comm_us"):
                assert got[k] == own[k], (r, k)
        # args are re-read from each rank's own file
        lane = next(ln for ln in tr.lanes if tr.rank_of_lane[ln.index] == 6 and ln.count)
        assert tr.detail(lane.lo)["args"] == singles[6].detail(
            singles[6].lanes[lane.index - tr.rank_of_lane.index(6)].lo)["args"]
        assert combine([(0, singles[0])]).slice_count == singles[0].slice_count


async def test_the_rank_view_marks_the_straggler_and_goes_to_its_lanes(eight, tmp_path,
                                                                      monkeypatch):
    from tracetui.app.ranks import RanksScreen

    monkeypatch.chdir(tmp_path)
    app = await _rank_app(eight)
    async with app.run_test(size=(120, 30)) as pilot:
        await _ready(app, pilot)
        await pilot.press("R")
        await pilot.pause()
        scr = app.screen
        assert isinstance(scr, RanksScreen)
        g = scr.grid
        lines = ["".join(s.text for s in g.render_line(y)) for y in range(10)]
        marked = [ln for ln in lines if "◀ straggler" in ln]
        assert len(marked) == 1 and marked[0].split()[0] == "5" and "rank-5.json" in marked[0]
        assert "straggler: rank 5" in str(scr.query_one("#title").render())
        # the heatmap: ranks across, figures down, rank 5 standing out
        from tracetui.app.ranks import RankHeat

        heat = scr.query_one(RankHeat)
        rows = heat.rows
        text = ["".join(s.text for s in heat.render_line(y)) for y in range(len(rows) + 2)]
        cw = 3  # 8 ranks in 106 columns: three cells each
        col = [14 + cw * k + 1 for k in range(8)]  # the middle of each rank's cells
        assert [text[0][c] for c in col] == [" "] * 5 + ["▼"] + [" "] * 2
        comp = text[1 + [k for _, k, _ in rows].index("comp_per_step_us")]
        assert [comp[c] for c in col] == ["▁"] * 5 + ["█"] + ["▁"] * 2
        exposed = text[1 + [k for _, k, _ in rows].index("exposed_comm_us")]
        assert exposed[col[5]] == "▁" and exposed[col[0]] == "█"  # it waits least
        assert text[-1][col[0]] == "▲"
        await pilot.press("down", "down")
        await pilot.pause()
        text = "".join(s.text for s in heat.render_line(len(rows) + 1))
        assert text[col[2]] == "▲" and "rank 2" in text
        for _ in range(5):  # sort by computation per step, largest first
            await pilot.press("greater_than_sign")
        assert g.sort_key == "comp_per_step_us" and g.descending and int(g.order[0]) == 5
        await pilot.press("ctrl+e")  # the table as CSV
        await pilot.pause()
        (csv,) = list(tmp_path.glob("tracetui-eight_8_ranks-ranks-*.csv"))
        assert csv.read_text().splitlines()[1].startswith("5,")
        await pilot.press("home", "enter")  # rank 5: to its lanes
        await pilot.pause()
        assert len(app.screen_stack) == 1
        tl = app.timeline
        lane = tl.rows[tl.cursor].lane
        assert app.trace.rank_of_lane[lane] == 5 and app.trace.rank_of_lane[lane - 1] == 4


async def test_collapse_a_rank_and_align_the_ranks(eight):
    app = await _rank_app(eight)
    async with app.run_test(size=(120, 40)) as pilot:
        await _ready(app, pilot)
        tl, tr = app.timeline, app.trace
        before = len(tl.rows)
        await pilot.press("C")  # every lane of rank 0 to its top row
        await pilot.pause()
        rank0 = [ln.index for ln in tr.lanes if tr.rank_of_lane[ln.index] == 0]
        assert tl.collapsed == set(rank0) and len(tl.rows) < before
        await pilot.press("C")
        assert not tl.collapsed and len(tl.rows) == before
        assert app.session.align == "start"
        await pilot.press("T")  # the first ProfilerStep of every rank at the same time
        await pilot.pause()
        assert app.session.align == "step" and app.trace is not tr
        steps = []
        for r in range(8):
            lanes = [ln for ln in app.trace.lanes if app.trace.rank_of_lane[ln.index] == r]
            rows = np.concatenate([np.arange(ln.lo, ln.hi) for ln in lanes])
            names = [app.trace.name_of(int(i)) for i in rows]
            steps.append(min(int(app.trace.start[i]) for i, n in zip(rows, names)
                             if n.startswith("ProfilerStep#")))
        assert len(set(steps)) == 1
        await pilot.press("T")
        await pilot.pause()
        assert app.session.align == "clock"


def test_tracetui_dir_in_a_terminal(eight):
    from ptyterm import ANSI, PtyApp

    app = PtyApp([str(eight)], cols=120, rows=30)
    assert app.wait_for("(8 ranks)"), app.text()[-2000:]
    assert app.wait_for("r0 · GPU 0 · stream 7"), app.text()[-2000:]
    app.pump(2.0)
    app.keys("R")
    assert app.wait_for("straggler: rank 5"), app.text()[-2000:]
    mark = len(app.out)
    app.keys(b"\x1b[F", "\r")  # End (rank 7), Enter: its lanes
    app.pump(0.5)
    after = ANSI.sub(b"", bytes(app.out[mark:])).decode("utf-8", "replace")
    assert "r7 · GPU 0 · stream 7" in after, after[-2000:]
    app.keys("q")
    assert app.finish() == 0, app.text()[-2000:]


# ----------------------------------------------------------------------------- the compare view

async def test_the_compare_view_tables(eight, tmp_path, monkeypatch):
    from tracetui.app.compare import CompareApp, CompareScreen

    monkeypatch.chdir(tmp_path)
    base, new = (analyze(load(str(eight / f"rank-{r}.json"))) for r in (0, 5))
    d = compare(base, new)
    app = CompareApp(d, "diff-rank-5.json")
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        scr = app.screen
        assert isinstance(scr, CompareScreen)
        g = scr.grid
        first = g.model.records[g.current]
        assert first["name"] == d["kernels"][0]["name"]  # the biggest change first
        title = str(scr.query_one("#title").render())
        assert "comp +13.7%" in title and "exposed -21.2%" in title
        await pilot.press("tab")  # kernels -> short names -> annotations -> GPUs
        assert scr.table == "groups" and len(g.model) == len(d["kernel_groups"])
        await pilot.press("tab")
        assert scr.table == "annotations" and g.model.columns[0].title == "annotation"
        assert g.model.records[g.current]["impact_us"] == max(a["impact_us"]
                                                               for a in d["annotations"])
        await pilot.press("tab")
        assert scr.table == "devices" and len(g.model) == 1
        await pilot.press("ctrl+t")
        assert scr.table == "groups"
        await pilot.press("ctrl+t")
        assert scr.table == "kernels"
        await pilot.press(*"gemm", "enter")  # typing filters by name (letters are text)
        assert g.filter_text == "gemm"
        await pilot.pause()
        assert 0 < len(g.order) < len(g.model)
        assert all("gemm" in g.model.records[int(i)]["name"].lower() for i in g.order)
        await pilot.press("enter")  # the row whole in a notification (the full name)
        await pilot.pause()
        await pilot.press("ctrl+e")
        await pilot.pause()
        (csv,) = list(tmp_path.glob("tracetui-diff-rank-5-diff-kernels-*.csv"))
        assert len(csv.read_text().splitlines()) == len(g.order) + 1
        shown = [n.message for n in app._notifications]
        assert any(n.startswith(g.model.records[g.current]["name"][:40]) for n in shown), shown
        await pilot.press("escape")  # clears the filter
        assert not g.filter_text
        await pilot.press("escape")  # quits
        await pilot.pause()
    assert app.return_code in (0, None)


def test_diff_in_a_terminal_opens_the_view_and_text_on_request(eight):
    from ptyterm import ESC, PtyApp

    a, b = str(eight / "rank-0.json"), str(eight / "rank-5.json")
    app = PtyApp(["diff", a, b], cols=120, rows=30)
    assert app.wait_for("kernels by impact  step"), app.text()[-2000:]
    app.keys("q")  # text for the filter in a table, not a command
    assert app.wait_for("filter: q"), app.text()[-2000:]
    app.keys(ESC, ESC)  # clears the filter, then quits
    assert app.finish() == 0
    app = PtyApp(["diff", a, b, "--text"], cols=120, rows=30)
    assert app.finish() == 0
    assert "totals, ms" in app.text() and "kernels by impact (full names" in app.text()


@pytest.mark.skipif(not HTA2.is_dir(), reason="needs ../shared/traces")
def test_hta_two_ranks_side_by_side_on_one_timeline():
    from tracetui.trace.combine import combine

    singles = [load(str(p)) for p in sorted(HTA2.iterdir())]
    tr = combine([(t.distributed_info["rank"], t) for t in singles], "start")
    assert sorted(set(tr.rank_of_lane)) == [0, 1]
    assert tr.slice_count == sum(t.slice_count for t in singles)
    got = {o["device"]: o for o in analyze(tr)["overlap"]}
    for r, single in enumerate(singles):
        (own,) = analyze(single)["overlap"]
        assert {k: got[r][k] for k in ("comm_us", "comp_us", "overlap_pct")} == \
            {k: own[k] for k in ("comm_us", "comp_us", "overlap_pct")}
    clock = combine([(t.distributed_info["rank"], t) for t in singles], "clock")
    gap = singles[1].t0_abs_ns - singles[0].t0_abs_ns  # rank 1 started 0.55 ms later
    r1 = next(ln for ln in clock.lanes if clock.rank_of_lane[ln.index] == 1 and ln.count)
    own = singles[1].lanes[r1.index - clock.rank_of_lane.index(1)]
    assert int(clock.start[r1.lo]) - int(singles[1].start[own.lo]) == gap


def test_load_many_equals_loading_each_file(eight, tmp_path):
    """Rank files parsed side by side (a worker process per file) give the same index as
    loading each alone: plain, gzip (loaded here), exact times (the worker asks for them:
    loaded here), cut off, empty, missing, not a trace."""
    from tracetui.job.many import load_many

    exact = tmp_path / "exact.json"
    exact.write_text('{"traceEvents": [\n' + ",\n".join(
        f'{{"ph": "X", "name": "k{i}", "pid": 1, "tid": 1, "ts": 1700000000000000.{i:03d}, '
        f'"dur": 1.5}}' for i in range(1, 40)) + "\n]}")
    cut = tmp_path / "cut.json"
    cut.write_bytes((eight / "rank-1.json").read_bytes()[:300_000])
    empty = tmp_path / "empty.json"
    empty.write_text('{"traceEvents": []}')
    bad = tmp_path / "bad.json"
    bad.write_text('{"nodes": [], "schema": "x"}')
    files = [str(eight / "rank-0.json"), str(eight / "rank-5.json"),
             str(ROOT / "sample_traces" / "prefill.json.gz"), str(exact), str(cut),
             str(empty), str(bad), str(tmp_path / "missing.json")]
    seen = []
    got = load_many(files, progress=lambda d, t: seen.append((d, t)), processes=2)
    assert [p for p, _, _ in got] == files
    for path, tr, err in got:
        try:
            ref, ref_err = load(path), None
        except Exception as e:  # noqa: BLE001
            ref, ref_err = None, str(e)
        assert err == ref_err, path
        if ref is None:
            assert tr is None
            continue
        assert tr.slice_count == ref.slice_count and tr.events == ref.events, path
        assert np.array_equal(tr.start, ref.start) and np.array_equal(tr.dur, ref.dur), path
        assert [tr.name_of(i) for i in range(tr.slice_count)] == \
            [ref.name_of(i) for i in range(ref.slice_count)], path
        assert [ln.name for ln in tr.lanes] == [ln.name for ln in ref.lanes], path
        assert tr.warnings == ref.warnings and tr.header == ref.header, path
        k = next((i for i in range(ref.slice_count) if ref.detail(i)["args"]), None)
        if k is not None:
            assert tr.detail(k)["args"] == ref.detail(k)["args"], path
    assert seen and seen[-1][0] == seen[-1][1]  # the progress reaches the total
    assert load_many(files[:2], cancelled=lambda: True) == [(f, None, None) for f in files[:2]]


@pytest.mark.skipif(not HTA2.is_dir(), reason="needs ../shared/traces")
def test_diff_of_two_single_gpu_ranks_pairs_their_gpus_in_order(capsys):
    """hta_2rank: rank 0 ran on GPU 0, rank 1 on GPU 1. The diff pairs the two GPUs (it
    showed two unmatched rows, each with "—" on the other side)."""
    files = sorted(str(p) for p in HTA2.iterdir())
    d = _json_out(capsys, ["diff", *files, "--json"])
    (row,) = d["devices"]
    assert (row["device"], row["new_device"], row["in"]) == (0, 1, "both")
    own = [_json_out(capsys, ["summary", f, "--json"])["overlap"][0] for f in files]
    assert [o["device"] for o in own] == [0, 1]
    assert (row["base_comm_us"], row["new_comm_us"]) == (own[0]["comm_us"], own[1]["comm_us"])
    assert main(["diff", *files, "--text"]) == 0
    assert "0→1" in capsys.readouterr().out


def test_diff_of_two_jobs_names_the_rank_that_changed(eight, tmp_path, capsys):
    """diff DIR_A DIR_B: the job without the slowed rank against the one with it, rank by
    rank; the rank that changed is named, the straggler after (none before), and the kernels
    over all ranks by impact; the per-rank figures are each rank's own summary's."""
    even = tmp_path / "even"
    make_ranks(str(even), 8, slow_rank=5, slow=1.0, mb=0)
    d = _json_out(capsys, ["diff", str(even), str(eight), "--json"])
    assert d["changed"] == [5]
    assert d["stragglers"] == {"base": [], "new": [5]}
    assert [r["rank"] for r in d["ranks"]] == list(range(8))
    assert [r["rank"] for r in d["ranks"] if r["changed"]] == [5]
    own = _json_out(capsys, ["summary", str(eight), "--json"])["ranks"]
    for r, o in zip(d["ranks"], own):
        assert r["new_comp_per_step_us"] == o["comp_per_step_us"]
        assert r["new_exposed_comm_us"] == o["exposed_comm_us"]
    slowed = d["ranks"][5]
    assert slowed["delta_comp_per_step_us_pct"] > 10  # its kernels made 1.3x slower
    # kernels over all ranks: the counts are the sums of the ranks' own tables
    base_count = sum(k["count"] for p in sorted(even.iterdir())
                     for k in _json_out(capsys, ["summary", str(p), "--json"])["kernels"])
    assert sum(k["base_count"] for k in d["kernels"]) == base_count
    assert d["kernels"][0]["delta_total_us"] > 0  # the slowed computation leads
    assert _json_out(capsys, ["diff", str(eight), str(eight), "--json"])["changed"] == []
    assert main(["diff", str(even), str(eight)]) == 0
    out = capsys.readouterr().out
    assert "changed: rank 5" in out and "straggler before: none; after: 5" in out
    assert main(["diff", str(even), str(eight / "rank-0.json")]) == 2
    assert "two directories" in capsys.readouterr().err
