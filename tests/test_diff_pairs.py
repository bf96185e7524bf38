"""``tracetui diff`` of any two traces (issue 31): every pair among the samples and the real
traces, both orders, as text, as JSON and in the compare view, with no internal error; a row
present in one run only reads as such. Kernel names found in one run only are checked
against the raw JSON."""

from __future__ import annotations

import functools
import gzip
import io
import json
from pathlib import Path

import pytest

from tracetui.analysis.diff import compare
from tracetui.analysis.report import analyze
from tracetui.cli import main
from tracetui.trace import TraceError, load

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_traces"
SHARED = ROOT.parent / "shared" / "traces"
ANNOTATED, DECODE = SAMPLES / "annotated.json", SAMPLES / "decode.json"


def _traces() -> list[Path]:
    found = sorted(p for p in SAMPLES.iterdir() if p.name.endswith((".json", ".json.gz")))
    found.append(ROOT / "tracetui" / "data" / "demo.json.gz")
    if SHARED.is_dir():
        found += sorted(p for p in SHARED.rglob("*") if p.name.endswith((".json", ".json.gz")))
    return found


def _raw_events(path: Path) -> list[dict]:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    try:
        data = json.loads(raw)
    except ValueError:  # speedscope's unterminated array: the writer died before its "]"
        data = json.loads(raw.rstrip().rstrip(b",") + b"]")
    return data["traceEvents"] if isinstance(data, dict) else data


@functools.lru_cache(maxsize=None)
def _raw_gpu_names(path: Path) -> frozenset[str]:
    """The names of the GPU work (kernels, memcpy, memset; either schema) of a trace."""
    return frozenset(e["name"] for e in _raw_events(path)
            if isinstance(e, dict) and e.get("ph") == "X"
            and str(e.get("cat", "")).lower() in ("kernel", "gpu_memcpy", "gpu_memset",
                                                  "memcpy", "memset"))


@pytest.fixture(scope="module")
def reports() -> dict[str, dict]:
    out = {}
    for p in _traces():
        try:
            out[str(p)] = analyze(load(str(p)))
        except TraceError:
            continue  # not a trace (the execution trace): refused with one line elsewhere
    return out


def _text(d: dict, top: int = 0, groups: tuple[bool, ...] = (False, True)) -> str:
    from rich.console import Console

    from tracetui import output
    from tracetui.cli import many as cli_many

    buf = io.StringIO()
    console = Console(file=buf, width=100, color_system=None, legacy_windows=False)
    saved = output.console
    output.console = lambda: console
    try:
        for group in groups:
            cli_many._print_diff(d, top, group=group)
    finally:
        output.console = saved
    return buf.getvalue()


def test_a_run_with_annotations_against_one_without_both_orders(capsys):
    """The crash of the issue: only one side has CPU annotations (and so a ``(no phase)``
    row with no CPU time): abs(None) in the impact."""
    for a, b in ((ANNOTATED, DECODE), (DECODE, ANNOTATED)):
        assert main(["diff", str(a), str(b), "--json"]) == 0, capsys.readouterr().err
        d = json.loads(capsys.readouterr().out)
        side = "base" if a == ANNOTATED else "new"
        rows = {(r["name"], r["source"]): r for r in d["annotations"]}
        assert rows and all(r["in"] == side for r in rows.values())
        none = rows[("(no phase)", "none")]
        # the row without CPU time weighs its GPU time, as much as that side launched
        assert none[f"{side}_total_us"] is None and none[f"{side}_gpu_us"] > 0
        assert none["impact_us"] == pytest.approx(
            none[f"{side}_gpu_us"] + (none[f"{side}_exposed_comm_us"] or 0), abs=2e-3)
        assert main(["diff", str(a), str(b), "--text"]) == 0
        captured = capsys.readouterr()
        assert captured.err == "" and "annotations by impact" in captured.out
        lines = captured.out.splitlines()
        head = next(ln for ln in lines if ln.lstrip().startswith("annotation "))
        assert "only in" in head
        body = lines[lines.index(head) + 2:]
        step = next(ln for ln in body if ln.lstrip().startswith("ProfilerStep#1 "))
        assert f" {side} " in step and "—" in step, step  # the run it is in; the other: —


def test_one_sided_rows_in_every_table(reports):
    """Kernels, groups and annotations in one run only are marked in the text and in JSON,
    and the kernels in one run only are the raw JSON's set differences."""
    a, b = str(ANNOTATED), str(DECODE)
    d = compare(reports[a], reports[b])
    na, nb = _raw_gpu_names(ANNOTATED), _raw_gpu_names(DECODE)
    assert set(d["only_in_base"]) == na - nb and set(d["only_in_new"]) == nb - na
    for r in d["kernels"]:
        assert r["in"] == ("both" if r["name"] in na & nb else
                           "base" if r["name"] in na else "new")
    lines = _text(d, top=0).splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("kernels by impact (full"))
    assert "only in" in lines[start + 2]
    rows = []
    for ln in lines[start + 4:]:
        if not ln.strip():
            break
        rows.append(ln)
    assert len(rows) == len(d["kernels"])
    for ln, r in zip(rows, d["kernels"]):  # the table's order is the diff's
        cells = ln.split()
        if r["in"] == "both":
            assert "—→" not in ln and "→—" not in ln, ln
        else:
            assert r["in"] in cells and ("—→" in ln) == (r["in"] == "new"), ln


def test_every_pair_both_orders_text_and_json(reports):
    from tracetui.output import write_json

    paths = list(reports)
    assert len(paths) >= 4
    for a in paths:
        for b in paths:
            if a == b:
                continue
            d = compare(reports[a], reports[b])
            buf = io.StringIO()
            write_json(d, buf)  # strict JSON: a NaN or a non-number would fail here
            assert json.loads(buf.getvalue())["kernels"] == json.loads(json.dumps(d["kernels"]))
            _text(d, top=3)
            want_a, want_b = _raw_gpu_names(Path(a)), _raw_gpu_names(Path(b))
            assert set(d["only_in_base"]) == want_a - want_b, (a, b)
            assert set(d["only_in_new"]) == want_b - want_a, (a, b)
            for r in d["annotations"]:
                assert r["impact_us"] >= 0
                if r["in"] != "both":
                    other = "new" if r["in"] == "base" else "base"
                    assert r[f"{other}_count"] is None and r["delta_total_us"] is None


async def test_the_compare_view_of_each_trace_both_ways(reports):
    """Each trace against a run with annotations and one without (a CUDA graph decode), in
    both orders, in the compare view, every table drawn. (Every pair, 240 of them, is run
    the same way by bench/diff_pairs.py: too slow for each test run.)"""
    from tracetui.app.compare import CompareApp, CompareScreen

    paths = list(reports)
    diffs = [compare(reports[a], reports[b]) for t in paths
             for a, b in ((t, str(ANNOTATED)), (str(DECODE), t)) if a != b]
    app = CompareApp(diffs[0], "diff-pairs")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        for d in diffs[1:]:
            scr = CompareScreen(d, app.palette)
            await app.push_screen(scr)
            await pilot.pause()
            for table in scr.TABLES:
                scr.action_table(table, toggle=False)
                await pilot.pause()
                assert scr.grid is not None and len(scr.grid.model) == len(scr.rows[table])
                if table == "annotations" and any(r["in"] != "both" for r in d["annotations"]):
                    shown = [scr.grid.render_line(y).text for y in range(1, 4)]
                    assert any(" base " in ln or " new " in ln for ln in shown), shown
            app.pop_screen()
            await pilot.pause()
    assert app.return_code in (0, None)
