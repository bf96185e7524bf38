"""``Trace.args_many`` (the args of many slices, the file read once) gives what
``Trace.args_of`` (one slice, its piece decoded in full) gives, for every slice: on the real
traces, the samples, a gzipped file, a truncated one, one whose numbers only the exact
decoding holds, an edited one, and ranks combined into one timeline."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from tracetui.trace import load

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "traces"
FILES = [SHARED / n for n in ("hta_nccl_data.json.gz", "tracelens_mi300_rccl.json.gz",
                              "kineto2021_resnet50.pt.trace.json.gz", "deepseek_train.json",
                              "speedscope_unterminated.json", "catapult_flow_unbalanced.json",
                              "hta_2rank/sampled_rank-0.json.gz")] + \
    [ROOT / "sample_traces" / n for n in ("annotated.json", "prefill.json.gz")] + \
    [ROOT / "sample_traces" / "torch" / "flops_ops.json.gz"]


def _same(tr, rows: np.ndarray) -> None:
    got = list(tr.args_many(rows))
    assert sorted(r for r, _ in got) == sorted(rows.tolist())
    file_order = [int(tr.row[r]) for r, _ in got]
    assert file_order == sorted(file_order)
    for r, a in got:
        assert a == tr.args_of(r), (r, tr.name_of(r))


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_slice_as_args_of_gives_it(path: Path) -> None:
    if not path.exists():
        pytest.skip(f"{path} absent")
    tr = load(str(path))
    rows = np.arange(tr.slice_count)
    if len(rows) > 3_000:  # (args_of per slice is the slow side: a spread of them)
        rows = np.unique(np.random.default_rng(3).choice(rows, 3_000))
    _same(tr, rows)


def test_exact_numbers_an_odd_event_and_a_truncated_tail(tmp_path: Path) -> None:
    ev = [{"ph": "X", "name": f"op{i}", "cat": "cpu_op", "pid": 1, "tid": 1, "ts": 10 * i,
           "dur": 5, "args": {"Input Dims": [[i, 2]], "n": i}} for i in range(600)]
    ev[300]["args"] = {"big": 1e400}  # only the exact decoding holds it
    ev[400]["args"] = 7  # args that are no object
    text = json.dumps({"traceEvents": ev}).replace("Infinity", "1e400")
    p = tmp_path / "t.json"
    p.write_text(text)
    tr = load(str(p))
    _same(tr, np.arange(tr.slice_count))
    cut = tmp_path / "cut.json.gz"  # truncated and gzipped: its tail read as it can be
    with gzip.open(cut, "wt") as f:
        f.write(json.dumps({"traceEvents": ev[:300]})[:-2000])
    tr = load(str(cut))
    assert tr.truncated
    _same(tr, np.arange(tr.slice_count))


def test_a_file_changed_since_the_load_is_not_read(tmp_path: Path) -> None:
    ev = [{"ph": "X", "name": "aten::mm", "cat": "cpu_op", "pid": 1, "tid": 1, "ts": 10 * i,
           "dur": 5, "args": {"Input Dims": [[2, 3], [3, 4]]}} for i in range(100)]
    p = tmp_path / "t.json"
    p.write_text(json.dumps({"traceEvents": ev}))
    tr = load(str(p))
    p.write_text(json.dumps({"traceEvents": ev[:10]}))  # replaced
    got = dict(tr.args_many(np.arange(tr.slice_count)))
    assert all(a is None for a in got.values())  # as args_of: nothing rather than wrong


def test_ranks_combined(tmp_path: Path) -> None:
    from tracetui.trace.combine import combine

    parts = []
    for r in range(2):
        ev = [{"ph": "X", "name": f"r{r}op{i}", "cat": "cpu_op", "pid": 1, "tid": 1,
               "ts": 10 * i, "dur": 5, "args": {"rank": r, "i": i}} for i in range(500)]
        p = tmp_path / f"rank-{r}.json"
        p.write_text(json.dumps({"traceEvents": ev, "distributedInfo": {"rank": r}}))
        parts.append((r, load(str(p))))
    tr = combine(parts)
    _same(tr, np.arange(tr.slice_count))
