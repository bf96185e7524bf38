"""The operator table against PyTorch's own ``key_averages()`` from the same profiling run.

``sample_traces/capture_ops.py`` profiled a small CNN and a small transformer (CPU build of
torch 2.13.0, ``record_shapes``, ``with_stack``, ``with_modules``) and wrote, from the one
``prof`` object, the trace (``ops_*.json``) and ``key_averages()`` /
``key_averages(group_by_input_shape=True)`` (``ops_*.key_averages.json``). Nothing here is
computed by tracetui's own code on the reference side: these are PyTorch's numbers.

Where the two differ by design: ``key_averages`` shows a ``TensorList`` input (``aten::cat``,
``aten::stack``, the ``_foreach_``/``_fused_`` optimizer ops) as ``[]`` whatever its
tensors, so it groups every list together; the trace records the list's shapes and tracetui
groups by them. Those ops are compared by name only.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tracetui.analysis.operators import op_tree, operator_shape_table, operator_table
from tracetui.analysis.rules import classify, load_rules
from tracetui.trace import load

SAMPLES = Path(__file__).resolve().parent.parent / "sample_traces" / "torch"
CAPTURES = ["ops_cnn", "ops_transformer"]
#: ours are rounded to 0.001 µs; PyTorch's are floats of the same µs
TOL_US = 0.0011


@pytest.fixture(scope="module", params=CAPTURES)
def capture(request):
    base = SAMPLES / request.param
    tr = load(str(base.with_suffix(".json")))
    tree = op_tree(tr, classify(tr, load_rules()))
    ka = json.loads(base.with_suffix(".key_averages.json").read_text())
    return request.param, tr, tree, ka


def test_every_operator_has_pytorchs_calls_and_cpu_times(capture):
    name, tr, tree, ka = capture
    theirs = {r["name"]: r for r in ka["by_name"]}
    mine = operator_table(tr, tree)
    assert len(mine) > 50, name
    worst = 0.0
    for r in mine:
        k = theirs.get(r["name"])
        assert k is not None, (name, r["name"])
        assert r["calls"] == k["count"], (name, r["name"], r["calls"], k["count"])
        for ours, pt in (("host_self_us", "self_cpu_us"), ("host_total_us", "cpu_total_us")):
            d = abs(r[ours] - k[pt])
            worst = max(worst, d)
            assert d <= TOL_US, (name, r["name"], ours, r[ours], k[pt])
    # every cpu_op name PyTorch has (its Python frames, annotations and the merged
    # ProfilerStep* row aside) is in the table
    trace_ops = {r["name"] for r in mine}
    for row in ka["by_name"]:
        if row["name"] in trace_ops:
            continue
        assert row["name"].startswith(("ProfilerStep", "nn.Module:", "enumerate(", "Optimizer.",
                                        "<built-in", "torch/", "<frame")) \
            or ".py(" in row["name"] or "object at 0x" in row["name"] \
            or row["name"] in _python_frames(tr), (name, row["name"])


def _python_frames(tr) -> set[str]:
    cats = tr.python_cats
    return {tr.name_of(i) for i in range(tr.slice_count) if int(tr.cat[i]) in cats}


def test_operators_by_input_shape_match_pytorchs_groups(capture):
    name, tr, tree, ka = capture
    theirs = {(r["name"], r["input_shapes"]): r for r in ka["by_shape"]}
    rows = operator_shape_table(tr, tree)
    # PyTorch groups by dims only: ours (by dims and types) summed to its groups
    agg: dict[tuple[str, str], dict[str, float]] = {}
    for r in rows:
        if "TensorList" in r["input_types"]:
            continue  # (see the module's docstring)
        key = (r["name"], str(json.loads(r["input_dims"])))
        a = agg.setdefault(key, {"calls": 0, "self": 0.0, "total": 0.0})
        a["calls"] += r["calls"]
        a["self"] += r["host_self_us"]
        a["total"] += r["host_total_us"]
    assert len(agg) > 80, name
    for key, a in agg.items():
        k = theirs.get(key)
        assert k is not None, (name, key)
        assert a["calls"] == k["count"], (name, key, a["calls"], k["count"])
        assert abs(a["self"] - k["self_cpu_us"]) <= TOL_US * 4, (name, key)
        assert abs(a["total"] - k["cpu_total_us"]) <= TOL_US * 4, (name, key)


def test_module_calls_and_totals_are_pytorchs(capture):
    """Per module type, the calls and total time of its ``nn.Module: Name_N`` frames, as
    PyTorch's own rows for those frames have them (its self time is not ours: PyTorch takes
    every Python frame inside a module off it, tracetui only ops, annotations and modules)."""
    from tracetui.analysis.modules import ModuleFrames, module_paths, module_types

    name, tr, tree, ka = capture
    mf = ModuleFrames(tr, tree)
    want: dict[str, list[float]] = {}
    for row in ka["by_name"]:
        if row["name"].startswith("nn.Module: "):
            inst = row["name"][len("nn.Module: "):]
            t = inst.rsplit("_", 1)[0] if inst.rsplit("_", 1)[-1].isdigit() else inst
            w = want.setdefault(t, [0, 0.0])
            w[0] += row["count"]
            w[1] += row["cpu_total_us"]
    got = {r["name"]: r for r in module_types(tr, mf)}
    assert set(got) == set(want) and len(want) >= 6, name
    for t, (calls, total) in want.items():
        assert got[t]["occurrences"] == calls, (name, t)
        assert abs(got[t]["host_total_us"] - total) <= TOL_US * 4, (name, t)
    # the instance paths hold every frame once
    paths = module_paths(tr, mf)
    assert sum(r["occurrences"] for r in paths) == sum(c for c, _ in want.values())
