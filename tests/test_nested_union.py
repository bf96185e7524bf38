"""The union of nested slices without a sort (steps.nested_union), against a plain merge of
the (start, end) pairs written here: on the samples and the shared traces, for every CPU
slice, for random subsets of them (their enclosing slices left out: what nests no longer
helps), and on one thread whose slices overlap without nesting."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from reference import ref_union
from tracetui.analysis.steps import cpu_rows, nested_union
from tracetui.trace import load

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "traces"
FILES = [ROOT / "sample_traces" / n for n in ("annotated.json", "cpu_torch.json")] + [
    ROOT / "sample_traces" / "torch" / "ops_transformer.json",
    SHARED / "kineto2021_resnet50.pt.trace.json.gz"]


def check(trace, rows: np.ndarray) -> None:
    start, dur = trace.start.tolist(), trace.dur.tolist()
    want = ref_union([(start[r], start[r] + dur[r]) for r in rows.tolist()])
    s, e = nested_union(trace, rows)
    assert list(zip(s.tolist(), e.tolist())) == want


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_cpu_slice_and_random_parts_of_them(path):
    if not path.exists():
        pytest.skip(f"{path} not here")
    trace = load(str(path))
    cpu = cpu_rows(trace)
    check(trace, cpu)
    rng = random.Random(7)
    for share in (0.5, 0.1, 0.01):
        pick = sorted(rng.sample(cpu.tolist(), max(1, int(len(cpu) * share))))
        check(trace, np.array(pick, np.int64))
    check(trace, np.zeros(0, np.int64))
    every = np.arange(trace.slice_count, dtype=np.int64)  # GPU lanes too
    check(trace, every)


def test_slices_that_overlap_without_nesting(tmp_path):
    """A child that outlives its parent, a slice that starts inside another and ends after
    it, equal starts: the union is still exact (only a slice wholly inside is dropped)."""
    rng = random.Random(3)
    events = []
    for i in range(400):
        ts = rng.randrange(0, 5000)
        events.append({"ph": "X", "name": f"op{i % 7}", "cat": "cpu_op", "pid": 1,
                       "tid": rng.choice([1, 2]), "ts": ts, "dur": rng.randrange(0, 300)})
    path = tmp_path / "overlap.json"
    path.write_text(json.dumps({"traceEvents": events}))
    trace = load(str(path))
    cpu = cpu_rows(trace)
    check(trace, cpu)
    for k in range(5):
        pick = sorted(random.Random(k).sample(cpu.tolist(), len(cpu) // 3))
        check(trace, np.array(pick, np.int64))
