"""Python frames folded away (``Lane.folded``): checked against a plain stack pass over the
raw JSON of each thread, on the committed torch capture, real with_stack traces from
../shared/traces and a generated 40-deep stack."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from tracetui.trace import GPU_CATS, load
from tracetui.trace.frame import default_rows
from tracetui.trace.model import PYTHON_CATS

HERE = Path(__file__).resolve().parent
SAMPLES = HERE.parent / "sample_traces"
SHARED = HERE.parent.parent / "shared" / "traces"


def raw(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        data = json.load(f)
    return data["traceEvents"] if isinstance(data, dict) else data


def reference(events: list[dict], pid, tid) -> list[tuple[float, float, str, int]]:
    """(start, -dur, name, depth) of the thread's non-Python slices, depth counted over
    non-Python slices only: sort by (start, longest first), then a stack of open ends."""
    sl = sorted((float(e["ts"]), -float(e.get("dur", 0)), str(e.get("name", "")))
                for e in events
                if e.get("ph") == "X" and e.get("pid") == pid and e.get("tid") == tid
                and str(e.get("cat", "")).lower() not in PYTHON_CATS
                and e.get("cat") not in GPU_CATS)
    out, stack = [], []
    for s, nd, name in sl:
        while stack and stack[-1] <= s:
            stack.pop()
        out.append((s, nd, name, len(stack)))
        stack.append(s - nd)
    return out


def check(path: Path) -> int:
    """Every lane with Python frames: the folded depths of its other slices are the
    reference's, slice by slice in (start, longest first, name) order. Returns how many
    slices were compared."""
    tr = load(str(path))
    events = raw(path)
    compared = 0
    for ln in tr.lanes:
        fold = ln.folded()
        if fold is None:
            continue
        want = reference(events, ln.pid, ln.tid)
        rows = np.arange(ln.lo, ln.hi)
        keep = [int(r) for r in rows if int(tr.cat[r]) not in tr.python_cats]
        scale = 1000.0  # the file is in µs; the trace in ns from t0_abs_ns
        got = sorted(((int(tr.start[r]) + tr.t0_abs_ns) / scale, -int(tr.dur[r]) / scale,
                      tr.name_of(r), ln.depth_of(r, folded=True)) for r in keep)
        assert len(got) == len(want), ln.name
        # names in the same order, depths equal; times compared loosely (float µs)
        assert [g[2] for g in got] == [w[2] for w in want] or \
            sorted(g[2:] for g in got) == sorted(w[2:] for w in want), ln.name
        assert sorted((g[2], g[3]) for g in got) == sorted((w[2], w[3]) for w in want), ln.name
        # the index invariant: within one folded depth nothing overlaps, and every slice
        # not a Python frame is in exactly one depth
        seen = np.concatenate([di.rows for di in fold])
        assert sorted(seen.tolist()) == sorted(keep)
        for di in fold:
            assert (di.starts[1:] >= di.ends[:-1]).all()
        compared += len(got)
    return compared


def test_the_committed_torch_capture_folds_like_a_stack_pass():
    assert check(SAMPLES / "cpu_torch.json") > 1000


@pytest.mark.skipif(not (SHARED / "tracelens_mi300_rccl.json.gz").is_file(),
                    reason="needs ../shared/traces")
def test_a_real_with_stack_trace_folds_like_a_stack_pass():
    """TraceLens' MI300 trace: 34,000 Python frames above 11,000 ops and runtime calls,
    nesting 57 deep on the main thread."""
    path = SHARED / "tracelens_mi300_rccl.json.gz"
    assert check(path) > 10_000
    tr = load(str(path))
    main = max((ln for ln in tr.lanes if ln.folded() is not None), key=lambda ln: ln.count)
    assert main.max_depth > 50
    assert main.depths(folded=True) < 12  # ops, runtime calls and annotations only
    # the first screen's rows of that lane hold the runtime calls that launch kernels
    rows = [r for r in default_rows(tr, fold_python=True) if r.lane == main.index]
    depth_of_launch = {main.depth_of(int(r), True) for r in range(main.lo, main.hi)
                       if tr.name_of(int(r)) in ("hipLaunchKernel", "cudaLaunchKernel",
                                                 "hipExtModuleLaunchKernel")}
    assert depth_of_launch and max(depth_of_launch) < len(rows)


def test_a_generated_deep_stack_folds_to_its_ops(tmp_path):
    ev = [{"ph": "X", "cat": "python_function", "name": f"f{k}", "pid": 1, "tid": 1,
           "ts": k, "dur": 1000 - 2 * k} for k in range(40)]
    ev += [{"ph": "X", "cat": "user_annotation", "name": "step", "pid": 1, "tid": 1,
            "ts": 50, "dur": 500},
           {"ph": "X", "cat": "cpu_op", "name": "aten::linear", "pid": 1, "tid": 1,
            "ts": 60, "dur": 400},
           {"ph": "X", "cat": "python_function", "name": "inner", "pid": 1, "tid": 1,
            "ts": 70, "dur": 300},
           {"ph": "X", "cat": "cpu_op", "name": "aten::addmm", "pid": 1, "tid": 1,
            "ts": 80, "dur": 200},
           {"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": 1, "tid": 1,
            "ts": 90, "dur": 10},
           {"ph": "X", "cat": "cpu_op", "name": "aten::add", "pid": 1, "tid": 1,
            "ts": 600, "dur": 100}]
    path = tmp_path / "deep.json"
    path.write_text(json.dumps({"traceEvents": ev}))
    assert check(path) == 5
    tr = load(str(path))
    ln = tr.lanes[0]
    assert ln.max_depth == 44  # 40 frames, step, linear, inner, addmm: the launch at 44
    by_name = {tr.name_of(r): ln.depth_of(r, True) for r in range(ln.lo, ln.hi)}
    assert by_name["step"] == 0 and by_name["aten::add"] == 0
    assert by_name["aten::linear"] == 1 and by_name["aten::addmm"] == 2
    assert by_name["cudaLaunchKernel"] == 3 and by_name["inner"] == -1


def test_lanes_without_python_frames_or_with_nothing_else_are_not_folded(tmp_path):
    ev = [{"ph": "X", "cat": "python_function", "name": f"f{k}", "pid": 1, "tid": 1,
           "ts": k, "dur": 100 - 2 * k} for k in range(5)]  # thread 1: frames only
    ev += [{"ph": "X", "cat": "cpu_op", "name": "aten::mm", "pid": 1, "tid": 2,
            "ts": 0, "dur": 10}]  # thread 2: no frames
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"traceEvents": ev}))
    tr = load(str(path))
    assert all(ln.folded() is None for ln in tr.lanes)
    assert default_rows(tr, fold_python=True) == default_rows(tr)
    assert len([r for r in default_rows(tr, fold_python=True) if r.lane == 0]) == 5


@pytest.mark.parametrize("path", [SAMPLES / "cpu_torch.json", SAMPLES / "annotated.json",
                                  SHARED / "tracelens_mi300_rccl.json.gz"],
                         ids=["cpu_torch", "annotated", "tracelens"])
def test_the_build_folds_as_the_lane_would_on_its_own(path):
    """The build works the folded view out while it has each lane in start order; the
    same lane folded from scratch (a combined rank trace does that) gives the same."""
    if not path.is_file():
        pytest.skip("needs ../shared/traces")
    tr = load(str(path))
    folded = 0
    for ln in tr.lanes:
        built = ln.folded()
        ln.set_fold(None)
        ln._fold = False  # forget it: from scratch
        again = ln.folded()
        assert (built is None) == (again is None), ln.name
        if built is None:
            continue
        folded += 1
        assert [d.rows.tolist() for d in built] == [d.rows.tolist() for d in again], ln.name
    assert folded
