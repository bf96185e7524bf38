"""What a hostile hunt on diff, reports and the rank view found (issue 31), each a test that
failed before its fix: reports with odd but well-typed values, text from a report reaching
the terminal, ranks that are not ranks, numbers cut at a table's edge, paths that are not
there."""

from __future__ import annotations

import gzip
import json
import os
import re
import sys
from pathlib import Path

import pytest

from tracetui.analysis.ranks import rank_of, summarize_ranks
from tracetui.analysis.report import analyze
from tracetui.cli import main
from tracetui.output import write_json
from tracetui.trace import load

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from make_ranks import make_ranks  # noqa: E402

sys.path.insert(0, str(ROOT / "tests"))

ANNOTATED = ROOT / "sample_traces" / "annotated.json"
DECODE = ROOT / "sample_traces" / "decode.json"


@pytest.fixture(scope="module")
def rep() -> dict:
    return json.loads(json.dumps(analyze(load(str(ANNOTATED)))))


@pytest.fixture(scope="module")
def job(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("hjob")
    make_ranks(str(d), 4, slow_rank=2, slow=1.3, mb=0)
    return d


def _save(path: Path, report: dict) -> str:
    with open(path, "w") as f:
        write_json(report, f)
    return str(path)


def test_a_step_without_a_time_is_no_step(rep, tmp_path, capsys):
    """A ProfilerStep row whose total_us is null (the kind allows it) crashed the median."""
    b = json.loads(json.dumps(rep))
    b["annotations"] += [{"name": "ProfilerStep#91", "source": "cpu", "count": 1,
                          "total_us": None},
                         {"name": "ProfilerStep#92", "source": "cpu", "count": 1,
                          "total_us": 5.0}]
    a, bb = _save(tmp_path / "a.json", rep), _save(tmp_path / "b.json", b)
    assert main(["diff", a, bb, "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["totals"]["steps"]["new"] == d["totals"]["steps"]["base"] + 1
    assert main(["summary", a, bb, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["ranks"]
    assert sorted(r["steps"] for r in rows) == [6, 7]


def test_report_text_never_reaches_the_terminal_as_markup_or_escapes(rep, tmp_path, capsys):
    for cls in ("[/x]", "\x1b]0;PWNED\x07\x1b[31mRED"):
        d = tmp_path / f"job{len(cls)}"
        d.mkdir()
        for r in range(3):
            x = json.loads(json.dumps(rep))
            x["distributed_info"] = {"rank": r}
            x["kernels"][0]["class"] = cls
            _save(d / f"{r}.json", x)
        assert main(["diff", str(d), str(d)]) == 0
        out, err = capsys.readouterr()
        assert "\x1b" not in out and "\x07" not in out and "internal error" not in err
        assert "^[]0;" in out or "[/x]" in out  # shown, as text


async def test_the_compare_view_shows_a_row_whole_escaped(rep):
    from tracetui.analysis.diff import compare
    from tracetui.app.compare import CompareApp

    b = json.loads(json.dumps(rep))
    for k in b["kernels"]:
        k["class"] = "\x1b]0;PWNED\x07X"
    app = CompareApp(compare(rep, b), "x")
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        shown = [n.message for n in app._notifications]
        assert shown and all("\x1b" not in m and "\x07" not in m for m in shown), shown
        assert any("^[]0;PWNED" in m for m in shown), shown


@pytest.mark.parametrize("rank", ["²", "٣", 2 ** 64, 10 ** 30, -1, "1e3", 1.5, True])
def test_what_is_no_rank_falls_back_to_the_file_name(rank):
    assert rank_of({"distributed_info": {"rank": rank}}, "job/rank-7.json", 3) == \
        (7, "file name")
    assert rank_of({"distributed_info": {"rank": rank}}, "job/x.json", 3) == (3, "order")
    assert rank_of({}, "job/rank-99999999999999999999.json", 3) == (3, "order")


def test_ranks_of_odd_numbers_summarise(rep, tmp_path, capsys):
    d = tmp_path / "odd"
    d.mkdir()
    for k, rank in enumerate(["²", 2 ** 64, 5]):
        x = json.loads(json.dumps(rep))
        x["distributed_info"] = {"rank": rank}
        _save(d / f"r{k}.json", x)
    assert main(["summary", str(d), "--json"]) == 0
    assert sorted(r["rank"] for r in json.loads(capsys.readouterr().out)["ranks"]) == [0, 1, 5]


def test_a_cut_gzip_report_is_a_damaged_report(rep, tmp_path, capsys):
    raw = gzip.compress(json.dumps({"schema": "tracetui.report", **rep}).encode())
    (tmp_path / "cut.json.gz").write_bytes(raw[: len(raw) * 2 // 3])
    assert main(["diff", str(ANNOTATED), str(tmp_path / "cut.json.gz")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "a damaged tracetui report (its gzip stream is cut short" in err[0]


def test_diff_says_which_path_is_missing_and_stdin_twice(tmp_path, capsys):
    assert main(["diff", str(tmp_path), str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err.strip() == \
        f"tracetui: error: {tmp_path / 'nope'}: no such file or directory"
    assert main(["diff", "-", "-"]) == 2
    assert "stdin (-) can be one side only" in capsys.readouterr().err


def test_diff_of_jobs_names_the_side_none_of_whose_traces_could_be_read(job, tmp_path, capsys):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "rank-0.json").write_text("nope")
    assert main(["diff", str(job), str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"tracetui: error: diff: the new job ({bad}): none of the traces")


def test_summary_of_one_report_is_its_rank(rep, tmp_path, capsys):
    r = _save(tmp_path / "one.json", {"schema": "tracetui.report", **rep})
    assert main(["summary", r, "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["ranks"]
    assert row["steps"] == 6 and row["comm_us"] == rep["overlap"][0]["comm_us"]


def test_a_rank_without_gpu_work_hides_no_straggler(job, tmp_path):
    reps = [(str(job / f"rank-{r}.json"), analyze(load(str(job / f"rank-{r}.json"))))
            for r in range(4)]
    assert summarize_ranks(reps)["stragglers"] == [2]
    cpu = tmp_path / "rank-9.json"
    cpu.write_text(json.dumps({"traceEvents": [
        {"ph": "X", "cat": "cpu_op", "name": "aten::add", "pid": 1, "tid": 1, "ts": 1,
         "dur": 5}]}))
    s = summarize_ranks(reps + [(str(cpu), analyze(load(str(cpu))))])
    assert s["stragglers"] == [2]
    assert "rank 9: no GPU computation, left out of the straggler rule and the median" in \
        s["warnings"]


def test_diff_of_jobs_says_how_many_kernels_more_and_group_lists_short_names(job, capsys):
    assert main(["diff", str(job), str(job), "--top", "2"]) == 0
    assert "more kernels (--top 0 shows all)" in capsys.readouterr().out
    assert main(["diff", str(ANNOTATED), str(DECODE), "--group", "--text"]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.startswith("only in new:"))
    assert "(" not in line.split(":", 1)[1].split(",")[0]  # a short name: no argument list


def test_a_number_too_wide_for_its_column_is_rounded_never_cut():
    from tracetui.app.grid import _shorter_number

    assert _shorter_number("+19746.2%", 7) == "+19746%"
    assert _shorter_number("12,345.678", 7) == "12,346"
    assert _shorter_number("1,234,567.891", 7) == "1234568"
    assert _shorter_number("-6.003", 9) == "-6.003"


async def test_the_compare_view_drops_whole_columns_when_narrow(rep):
    """At 60-75 columns the last number was cut: -100.0% read "-1"."""
    from tracetui.analysis.diff import compare
    from tracetui.app.compare import CompareApp

    d = compare(rep, analyze(load(str(DECODE))))
    for cols in (60, 64, 75, 80, 100):
        app = CompareApp(d, "x")
        async with app.run_test(size=(cols, 20)) as pilot:
            await pilot.pause()
            for _table in range(4):
                g = app.screen.grid
                widths = g.widths(g.text_width)
                shown = [c for c, w in zip(g.model.columns, widths) if w]
                head = g.render_line(0).text
                for c in shown:  # every number column shown has its whole title
                    assert not c.numeric or c.title in head, (cols, c.title, head)
                for y in range(1, min(len(g.order), 10) + 1):
                    line = g.render_line(y).text.rstrip()
                    assert len(line) <= g.text_width
                    for c, w in zip(g.model.columns, widths):
                        if w and c.numeric:
                            v = c.fmt(g.model.value(int(g.order[y - 1]), c.key))
                            if len(v) <= w:
                                assert v in line, (cols, c.title, v, line)
                await pilot.press("tab")
                await pilot.pause()


def test_export_reads_signed_counts_as_whole_numbers():
    from tracetui.app.compare import KERNEL_COLUMNS
    from tracetui.app.grid import GridModel

    m = GridModel(KERNEL_COLUMNS, [{"name": "k", "class": "comp", "in": "both",
                                    "delta_count": 63}, {"name": "j", "class": "comp",
                                                         "in": "both", "delta_count": -144}])
    col = next(c for c in KERNEL_COLUMNS if c.key == "delta_count")
    assert m.shown(0, col) == 63 and isinstance(m.shown(0, col), int)
    assert m.shown(1, col) == -144


async def test_the_rank_view_shows_every_digit_of_large_ranks(rep):
    from tracetui.app.ranks import RanksScreen
    from tracetui.app.themes import load_theme
    from textual.app import App

    items = []
    for rank in (0, 16310, 16383, 123456):
        x = json.loads(json.dumps(rep))
        x["distributed_info"] = {"rank": rank}
        items.append((f"r{rank}.json", x))
    s = summarize_ranks(items)

    class Host(App[None]):
        def on_mount(self) -> None:
            self.push_screen(RanksScreen(s, load_theme("dark").palette))

    app = Host()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        g = app.screen.grid
        rows = [g.render_line(y).text for y in range(1, 5)]
        for rank, row in zip((0, 16310, 16383, 123456), rows):
            assert row.split()[0] == str(rank), rows


async def test_a_rank_whose_trace_is_gone_says_so_not_internal_error(job, tmp_path):
    from tracetui.app.app import TraceApp

    d = tmp_path / "gone"
    d.mkdir()
    for r in range(3):
        (d / f"rank-{r}.json").write_bytes((job / f"rank-{r}.json").read_bytes())
    app = TraceApp("gone (3 ranks)", ranks=sorted(str(p) for p in d.iterdir()), max_ranks=1)
    async with app.run_test(size=(120, 36)) as pilot:
        for _ in range(600):
            if app.session.holds is not None and not app.session.holds.loading \
                    and app.analyses is not None:
                break
            await pilot.pause(0.05)
        held = set(app.session.holds.held)
        other = next(r for r in range(3) if r not in held)
        os.remove(d / f"rank-{other}.json")
        app.open_rank(other)
        for _ in range(400):
            if any(f"rank {other}:" in n.message for n in app._notifications):
                break
            await pilot.pause(0.05)
        msgs = [n.message for n in app._notifications if n.message.startswith(f"rank {other}:")]
        assert msgs and "no such file" in msgs[-1] and "internal error" not in msgs[-1], msgs
        await pilot.press("q")


async def test_reports_whose_traces_are_all_gone_open_the_rank_view_only(rep, tmp_path):
    """It said "Loading the timelines of every rank" and loaded none."""
    from tracetui.app.app import TraceApp
    from tracetui.app.ranks import RanksScreen

    files = []
    for r in range(3):
        x = json.loads(json.dumps(rep))
        x["file"] = f"/nowhere/rank-{r}.json"
        files.append(_save(tmp_path / f"{r}.json", {"schema": "tracetui.report", **x}))
    app = TraceApp("gone (3 ranks)", ranks=files)
    async with app.run_test(size=(120, 36)) as pilot:
        for _ in range(400):
            if app.session.holds is not None and any("None of the traces" in n.message
                                                      for n in app._notifications):
                break
            await pilot.pause(0.05)
        assert isinstance(app.screen, RanksScreen)
        msgs = [n.message for n in app._notifications]
        assert any("None of the traces they were made from is here" in m for m in msgs), msgs
        assert not any("Loading the timelines" in m for m in msgs)
        await pilot.press("q")


def test_a_share_of_a_vanishing_whole_is_no_number(rep, tmp_path, capsys):
    """comm_us 5e-324 passed the check; overlap % became inf, --json an internal error."""
    x = json.loads(json.dumps(rep))
    x["overlap"][0]["comm_us"] = 5e-324
    y = json.loads(json.dumps(rep))
    y["kernels"][0]["total_us"] = 5e-324
    a, b = _save(tmp_path / "a.json", x), _save(tmp_path / "b.json", y)
    for argv in (["summary", a, b, "--json"], ["diff", b, a, "--json"], ["diff", a, b]):
        assert main(argv) == 0, capsys.readouterr().err
        out, err = capsys.readouterr()
        assert not re.search(r"\b(inf|nan)\b|Infinity|NaN", out, re.I) and err == "", out


def test_a_header_nested_hundreds_deep_loads(tmp_path, capsys):
    text = ANNOTATED.read_text().rstrip()
    p = tmp_path / "deep.json"
    p.write_text(text[:-1] + ', "zz": ' + "[" * 600 + "]" * 600 + "}")
    tr = load(str(p))
    assert tr.slice_count == load(str(ANNOTATED)).slice_count
    assert tr.header["zz"] == "(nested deeper than 64 levels: not kept)" or \
        "nested deeper" in json.dumps(tr.header["zz"])
    assert main(["summary", str(p), "--json"]) == 0
    json.loads(capsys.readouterr().out)


def test_opening_a_report_in_a_terminal_says_what_it_is(rep, tmp_path):
    from ptyterm import PtyApp

    r = _save(tmp_path / "r.json", {"schema": "tracetui.report", **rep})
    app = PtyApp([r], cols=100, rows=30)
    code = app.finish(timeout=30)
    assert code == 2 and "a tracetui report, which holds no timeline" in app.text()


async def test_a_kernel_in_one_run_only_has_no_figures_on_the_other_side_in_the_view(rep):
    from tracetui.analysis.diff import compare
    from tracetui.app.compare import CompareApp

    d = compare(rep, analyze(load(str(DECODE))))
    app = CompareApp(d, "x")
    async with app.run_test(size=(140, 30)) as pilot:
        await pilot.pause()
        g = app.screen.grid
        cols = [c.key for c in g.model.columns]
        for y in range(1, 8):
            r = g.model.records[int(g.order[y - 1])]
            if r["in"] == "base":
                assert r["new_total_us"] is None and r["new_count"] is None
                assert r["base_total_us"] > 0
            elif r["in"] == "new":
                assert r["base_total_us"] is None and r["base_count"] is None
        assert "in" in cols
    assert all(k["base_total_us"] is not None for k in d["kernels"])  # the JSON keeps 0
