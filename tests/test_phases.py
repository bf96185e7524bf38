"""Phases (issue 9, the core and `summary --phases`): DeepSeek's overlap diagram from the data."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from conftest import loaded
from tracetui.analysis.phases import (DEFAULT_GROUPS, _group, diagram_lines, phase_blocks,
                                      phase_rows, row_sms)
from tracetui.analysis.rules import DEFAULT_RULES, classify
from tracetui.cli import main
from tracetui.trace import load

ROOT = Path(__file__).resolve().parent.parent
DECODE = ROOT / "sample_traces" / "annotated.json"
TRAIN = ROOT.parent / "shared" / "traces" / "deepseek_train.json"
needs_train = pytest.mark.skipif(not TRAIN.is_file(), reason="needs ../shared/traces")


async def _loaded(app, pilot) -> None:
    await loaded(app, pilot, analyses=True)


async def _open_phase_view(pilot) -> None:
    from tracetui.app.phaseview import PhaseScreen

    await pilot.press("p")
    for _ in range(100):
        await pilot.pause(0.05)
        if isinstance(pilot.app.screen, PhaseScreen):
            return
    raise AssertionError("the phase view never opened")


def _blocks(path: Path, **kw):
    tr = load(str(path))
    return tr, phase_blocks(tr, classify(tr, DEFAULT_RULES), **kw)


@needs_train
def test_deepseek_training_reads_as_the_published_diagram():
    tr, bl = _blocks(TRAIN)
    comm = [b for b in bl if b["class"] == "comm"]
    assert [b["name"] for b in comm] == ["combine(B)", "dispatch(F)", "dispatch(B)",
                                         "combine(F)"] * 4
    assert {b["sms"] for b in comm} == {20} and row_sms(bl, 0, "comm") == 20
    assert row_sms(bl, 0, "comp") == 112  # 132 SMs less DeepEP's 20
    comp = [b["name"] for b in bl if b["class"] == "comp"
            and not b["name"].startswith(("dispatch", "combine"))]
    layer = ["attn(F)", "mlp(B)", "mlp(W)", "mlp(F)", "attn(B)", "attn(W)"]
    it = iter(comp)  # each layer's computation phases, in this order
    for _ in range(4):
        assert all(name in it for name in layer), comp
    # the rows overlap: each communication block has computation beside it
    for b in comm:
        beside = [c for c in bl if c["class"] == "comp" and c["start_us"] < b["end_us"]
                  and c["end_us"] > b["start_us"]]
        assert beside, b
    text = "\n".join(diagram_lines(bl, 120))
    assert "Computation (112 SMs)" in text and "Communication (20 SMs)" in text


def test_decode_micro_batches_alternate_between_the_rows():
    tr, bl = _blocks(DECODE)
    comm = [b for b in bl if b["class"] == "comm"]
    comp = [b for b in bl if b["class"] == "comp"]
    assert {b["group"] for b in bl} == {"mb0", "mb1"}
    # while one micro-batch communicates, the other computes
    crossed = 0
    for b in comm:
        other = "mb1" if b["group"] == "mb0" else "mb0"
        if any(c["group"] == other and c["start_us"] < b["end_us"] and c["end_us"] > b["start_us"]
               for c in comp):
            crossed += 1
    assert crossed >= 0.8 * len(comm), (crossed, len(comm))
    groups = [b["group"] for b in comm]
    switches = sum(a != b for a, b in zip(groups, groups[1:]))
    assert switches >= 0.8 * (len(groups) - 1)


def test_a_block_holds_the_kernels_launched_inside_its_annotation():
    """Against the raw index: the kernels whose launching call starts inside the occurrence,
    in the same process (any thread), by device and class."""
    tr = load(str(DECODE))
    classes = classify(tr, DEFAULT_RULES)
    bl = phase_blocks(tr, classes)
    src, dst = tr.launch_of.values, tr.launch_of.rows
    for b in bl[:: max(1, len(bl) // 25)]:
        r = b["row"]
        s, e = int(tr.start[r]), int(tr.start[r] + tr.dur[r])
        pid = tr.lane_of(r).pid
        want = [int(k) for k, c in zip(dst.tolist(), src.tolist())
                if s <= int(tr.start[c]) < e and tr.lane_of(c).pid == pid
                and tr.lane_of(k).device == b["device"]
                and {0: "comp", 1: "comm"}.get(int(classes[k])) == b["class"]]
        assert len(want) == b["kernels"], b
        ks = np.array(want)
        assert b["start_us"] == round(int(tr.start[ks].min()) / 1000, 3)
        assert b["end_us"] == round(int((tr.start[ks] + tr.dur[ks]).max()) / 1000, 3)


def test_phase_rows_pick_the_innermost_repeating_level():
    tr = load(str(DECODE))
    names = {tr.name_of(r) for r in phase_rows(tr)}
    assert names and all(re.match(r"mb[01]:(attn|mlp|dispatch|combine)$", n) for n in names)
    top = {tr.name_of(r) for r in phase_rows(tr, level=0)}
    assert not top & names  # ProfilerStep#N is one-off: never a phase


@pytest.mark.parametrize("name, group", [("attn(F)", "F"), ("mlp(W)", "W"), ("mb1:mlp", "mb1"),
                                         ("micro_batch_2 attn", "micro_batch_2"),
                                         ("layer3", "")])
def test_groups(name, group):
    assert _group(name, [re.compile(g) for g in DEFAULT_GROUPS]) == group


def test_summary_phases_text_and_json(capsys):
    assert main(["summary", str(DECODE), "--phases"]) == 0
    out = capsys.readouterr().out
    assert "phases:" in out and "Computation (" in out and "Communication (" in out
    assert max(len(line) for line in out.splitlines()) <= 160
    assert main(["summary", str(DECODE), "--phases", "--json"]) == 0
    ph = json.loads(capsys.readouterr().out)["phases"]
    assert ph and set(ph[0]) == {"name", "group", "class", "device", "start_us", "end_us",
                                 "busy_us", "kernels", "sms", "sms_peak", "exposed_us", "source",
                                 "graph_kernels"}
    assert {b["source"] for b in ph} == {"annotation"}
    assert main(["summary", str(DECODE), "--json"]) == 0
    assert "phases" not in json.loads(capsys.readouterr().out)


async def test_the_phase_view(tmp_path):
    from tracetui.app.app import TraceApp
    from tracetui.app.phaseview import PhaseMap, PhaseScreen

    app = TraceApp(str(DECODE))
    async with app.run_test(size=(120, 40)) as pilot:
        await _loaded(app, pilot)
        await _open_phase_view(pilot)  # its blocks are found in a thread first
        scr = app.screen
        assert isinstance(scr, PhaseScreen)
        pm = scr.query_one(PhaseMap)
        lines = ["".join(s.text for s in pm.render_line(y)) for y in range(4)]
        assert lines[1].startswith("Computation (") and lines[2].startswith("Communication (")
        for _ in range(5):
            await pilot.press("w")  # zoomed in: the blocks are wide enough for their names
        lines = ["".join(s.text for s in pm.render_line(y)) for y in range(4)]
        assert re.search(r"mb[01]:(attn|mlp)", lines[1]), lines[1]
        assert re.search(r"mb[01]:(disp|comb)", lines[2]), lines[2]
        assert {r["name"] for r in scr.rows if r["source"] != "none"} == \
            {b["name"] for b in app.analyses.phase_blocks}
        assert scr.rows[-1]["name"] == "(no phase)"
        first = pm.current()
        await pilot.press("right")
        assert pm.current() is not first and pm.current()["start_us"] >= first["start_us"]
        b = pm.current()
        await pilot.press("enter")  # the block's span, marked on the timeline
        await pilot.pause()
        assert len(app.screen_stack) == 1
        assert app.range == (round(b["start_us"] * 1000), round(b["end_us"] * 1000))


def test_prefill_micro_batches_alternate_too():
    tr, bl = _blocks(ROOT / "sample_traces" / "prefill.json.gz")
    comm = [b for b in bl if b["class"] == "comm"]
    comp = [b for b in bl if b["class"] == "comp"]
    assert comm and comp and {b["group"] for b in bl} >= {"mb0", "mb1"}
    crossed = sum(1 for b in comm if any(
        c["group"] != b["group"] and c["start_us"] < b["end_us"] and c["end_us"] > b["start_us"]
        for c in comp))
    assert crossed >= 0.8 * len(comm), (crossed, len(comm))


def test_phase_groups_are_configurable(capsys):
    assert main(["summary", str(DECODE), "--phases", "--json",
                 "--phase-groups", r":(attn|mlp|dispatch|combine)"]) == 0
    ph = json.loads(capsys.readouterr().out)["phases"]
    assert {b["group"] for b in ph} == {"attn", "mlp", "dispatch", "combine"}


async def test_the_phase_view_legend_and_depth_keys():
    from tracetui.app.app import TraceApp
    from tracetui.app.phaseview import PhaseScreen

    app = TraceApp(str(DECODE))
    async with app.run_test(size=(120, 40)) as pilot:
        await _loaded(app, pilot)
        await _open_phase_view(pilot)  # its blocks are found in a thread first
        scr = app.screen
        assert isinstance(scr, PhaseScreen)
        title = str(scr.query_one("#ph-title").render())
        assert " mb0 " in title and " mb1 " in title and "innermost" in title
        await pilot.press("minus")  # depth 0 holds only the one-off ProfilerSteps
        await pilot.pause()
        assert scr.level is None and any("no repeating annotation at depth 0" in n.message
                                         for n in app._notifications)


async def test_the_phase_view_takes_the_groups_given():
    from tracetui.app.app import TraceApp

    app = TraceApp(str(DECODE), phase_groups=[r":(attn|mlp|dispatch|combine)"])
    async with app.run_test(size=(120, 40)) as pilot:
        await _loaded(app, pilot)
        await _open_phase_view(pilot)  # its blocks are found in a thread first
        assert {b["group"] for b in app.analyses.phase_blocks} == \
            {"attn", "mlp", "dispatch", "combine"}
        title = str(app.screen.query_one("#ph-title").render())
        assert " attn " in title and " dispatch " in title
