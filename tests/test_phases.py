"""Phases (issue 9, the core and `summary --phases`): DeepSeek's overlap diagram from the data."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from tracetui.analysis.phases import (DEFAULT_GROUPS, _group, diagram_lines, phase_blocks,
                                      phase_rows, row_sms)
from tracetui.analysis.rules import DEFAULT_RULES, classify
from tracetui.cli import main
from tracetui.trace import load

ROOT = Path(__file__).resolve().parent.parent
DECODE = ROOT / "sample_traces" / "decode.json"
TRAIN = ROOT.parent / "shared" / "traces" / "deepseek_train.json"
needs_train = pytest.mark.skipif(not TRAIN.is_file(), reason="needs ../shared/traces")


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
                                 "busy_us", "kernels", "sms", "sms_peak"}
    assert main(["summary", str(DECODE), "--json"]) == 0
    assert "phases" not in json.loads(capsys.readouterr().out)
