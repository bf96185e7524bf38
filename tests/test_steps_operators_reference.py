"""The step breakdown (``analysis.steps``) and the operator table (``analysis.operators``)
checked against a reference written here, independently, in plain Python over the raw JSON:
``json``/``gzip``, loops, sorting and ``bisect`` — nothing from ``tracetui.analysis`` or
``tracetui.trace`` on the reference side (the one exception, the communication/computation
decision of kernel names, is only *cross-checked* against the built-in rules; the reference
uses its own regex).

Reference definitions (TensorBoard's StepParser/overall_parser and PyTorch's key_averages):

- events: complete events (``ph == "X"``) with numeric ``ts``/``dur`` (µs -> int ns with
  ``round(x * 1000)``); GPU work: cat kernel/gpu_memcpy/gpu_memset/Kernel/Memcpy/Memset;
  CPU slices: everything else but ``gpu_user_annotation``; threads are (pid, tid); Python
  frames: cat ``python_function``/``python``.
- GPU work is joined to its runtime call (cat cuda_runtime, cuda_driver, runtime, driver,
  hip_runtime, hip_driver; any case) by ``args.correlation``.
- steps: ``^ProfilerStep#\\d+$`` CPU slices by start (else the whole trace, named
  "(whole trace)": [min start, max end] of the cpu_op/operator/user_annotation/python
  slices, else of all slices), moved to the device side; roles in priority order each claim
  the step time not yet claimed; other is the rest. GPU utilization: time with >= 1 kernel
  running over the step's duration; none for a trace without GPU work.
- operators: cpu_op/Operator CPU slices but ProfilerStep#N; a tree per thread over its CPU
  slices but Python frames, nested by time containment (see :func:`_parents` for the tie
  rule); host/device self/total as in ``operators.py``'s docstring, grouped by name; an op
  whose parent op has its name and no other child is folded into it (PyTorch's
  ``EventList._remove_dup_nodes``).

Each trace is read once (both sides cached per module); an absent trace skips.
"""

from __future__ import annotations

import bisect
import gzip
import json
import re
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[2] / "shared" / "traces"
TRACES = {
    "kineto2021_resnet50": SHARED / "kineto2021_resnet50.pt.trace.json.gz",
    "tracelens_mi300_rccl": SHARED / "tracelens_mi300_rccl.json.gz",
    "deepseek_train": SHARED / "deepseek_train.json",
    "cpu_torch": ROOT / "sample_traces" / "cpu_torch.json",
    "ops_cnn": ROOT / "sample_traces" / "torch" / "ops_cnn.json",
    "ops_transformer": ROOT / "sample_traces" / "torch" / "ops_transformer.json",
}
for _k, _p in list(TRACES.items()):  # the samples' other home (sample_traces/ or torch/)
    if not _p.exists() and _p.parent.parent == ROOT / "sample_traces":
        TRACES[_k] = ROOT / "sample_traces" / _p.name
    elif not _p.exists() and _p.parent == ROOT / "sample_traces":
        TRACES[_k] = ROOT / "sample_traces" / "torch" / _p.name
IDS = list(TRACES)

ROLES = ("kernel", "memcpy", "memset", "communication", "runtime", "dataloader", "cpu_exec",
         "other")
# a step regex no slice matches: the whole trace as one step
NO_STEP = r"^this names no step in any trace$"

# ------------------------------------------------------------------------------ reference

KERNEL_CATS = {"kernel", "Kernel"}
MEMCPY_CATS = {"gpu_memcpy", "Memcpy"}
MEMSET_CATS = {"gpu_memset", "Memset"}
GPU_WORK_CATS = KERNEL_CATS | MEMCPY_CATS | MEMSET_CATS
RUNTIME_CATS_LC = {"cuda_runtime", "cuda_driver", "runtime", "driver", "hip_runtime",
                   "hip_driver"}
CPU_ROLE_CATS_LC = {"cpu_op", "operator", "user_annotation", "python_function", "python"}
LOADER_CATS_LC = {"cpu_op", "operator", "user_annotation"}
OP_CATS_LC = {"cpu_op", "operator"}
PY_CATS_LC = {"python_function", "python"}
STEP_RX = re.compile(r"^ProfilerStep#\d+$")
# Communication kernels on these traces (cross-checked against the built-in rules below).
COMM_KERNEL_RX = re.compile(
    r"nccl|rccl|dpsk::ep::internode::(?:dispatch|combine|notify_dispatch|cached_notify)", re.I)


def _is_num(v) -> bool:
    return type(v) in (int, float) and v == v and abs(v) != float("inf")


class Ev:
    __slots__ = ("i", "name", "cat", "lcat", "th", "s", "e", "corr", "gpu", "kernel")

    def __init__(self, i, e):
        self.i = i
        self.name = str(e.get("name", ""))
        self.cat = str(e.get("cat", ""))
        self.lcat = self.cat.lower()
        self.th = (str(e.get("pid")), str(e.get("tid")))
        self.s = round(e["ts"] * 1000)
        self.e = self.s + round(e["dur"] * 1000)
        args = e.get("args")
        self.corr = args.get("correlation") if isinstance(args, dict) else None
        self.gpu = self.cat in GPU_WORK_CATS
        self.kernel = self.cat in KERNEL_CATS

    @property
    def d(self) -> int:
        return self.e - self.s


def read_events(path: Path) -> list[Ev]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        data = json.load(f)
    events = data.get("traceEvents", []) if isinstance(data, dict) else data
    out = []
    for i, e in enumerate(events):
        if isinstance(e, dict) and e.get("ph") == "X" and _is_num(e.get("ts")) \
                and _is_num(e.get("dur")):
            out.append(Ev(i, e))
    return out


def union(pairs) -> list[tuple[int, int]]:
    """Sorted disjoint union of [s, e) (sort and sweep; empty ones dropped)."""
    out: list[list[int]] = []
    for s, e in sorted(p for p in pairs if p[1] > p[0]):
        if out and s <= out[-1][1]:
            if e > out[-1][1]:
                out[-1][1] = e
        else:
            out.append([s, e])
    return [(s, e) for s, e in out]


def measure_within(u: list[tuple[int, int]], ends: list[int], lo: int, hi: int) -> int:
    """Length of ``u`` (a sorted disjoint union, ``ends`` its ends) inside [lo, hi)."""
    total = 0
    k = bisect.bisect_right(ends, lo)
    while k < len(u) and u[k][0] < hi:
        s, e = max(u[k][0], lo), min(u[k][1], hi)
        if e > s:
            total += e - s
        k += 1
    return total


def launches(evs: list[Ev]):
    """(runtime calls, {correlation: runtime call}, [(GPU work, its runtime call or None)])."""
    rts = [ev for ev in evs if not ev.gpu and ev.lcat in RUNTIME_CATS_LC]
    by_corr = {ev.corr: ev for ev in rts if ev.corr is not None}
    work = [(ev, by_corr.get(ev.corr) if ev.corr is not None else None)
            for ev in evs if ev.gpu]
    return rts, by_corr, work


def ref_steps(evs: list[Ev], step_regex: re.Pattern[str] = STEP_RX) -> list[dict]:
    """TensorBoard's step breakdown, from the definitions in the module docstring."""
    cpu = [ev for ev in evs if not ev.gpu and ev.cat != "gpu_user_annotation"]
    steps = sorted((ev for ev in cpu if step_regex.search(ev.name)), key=lambda ev: ev.s)
    step_ids = {id(ev) for ev in steps}
    if steps:
        names = [ev.name for ev in steps]
        cs, ce = [ev.s for ev in steps], [ev.e for ev in steps]
    else:
        names = ["(whole trace)"]
        span = [ev for ev in cpu if ev.lcat in CPU_ROLE_CATS_LC] or evs
        cs, ce = [min(ev.s for ev in span)], [max(ev.e for ev in span)]
    n = len(names)

    rts, _, work = launches(evs)
    launched = [0] * n
    dev_min = [None] * n
    dev_max = [None] * n
    inside_any = set()
    for w, rt in work:
        if rt is None:
            continue
        for i in range(n):
            if rt.s >= cs[i] and rt.e <= ce[i]:
                launched[i] += 1
                dev_min[i] = w.s if dev_min[i] is None else min(dev_min[i], w.s)
                dev_max[i] = w.e if dev_max[i] is None else max(dev_max[i], w.e)
                inside_any.add(id(w))
    st, en = list(cs), list(ce)
    if any(launched):
        prev = cs[0]
        if launched[0]:
            before = [w.e for w, _ in work if id(w) not in inside_any and w.e < dev_min[0]]
            if before:
                prev = max(prev, max(before))
        for i in range(n):
            s = max(prev, cs[i])
            e = max(ce[i], dev_max[i]) if launched[i] else max(ce[i], s)
            e = max(e, s)
            st[i], en[i] = s, e
            prev = e

    # role interval sets over the whole trace
    kernels = [w for w, _ in work if w.kernel]
    comm_k = [w for w in kernels if COMM_KERNEL_RX.search(w.name)]
    comp_k = [w for w in kernels if not COMM_KERNEL_RX.search(w.name)]
    side = [ev for ev in cpu if id(ev) not in step_ids]
    coll = [ev for ev in side if ev.lcat in CPU_ROLE_CATS_LC
            and ev.name.lower().startswith(("nccl:", "gloo:"))]
    loader = [ev for ev in side if ev.lcat in LOADER_CATS_LC
              and ((ev.name.startswith("enumerate(DataLoader)#")
                    and ev.name.endswith(".__next__"))
                   or ev.name.startswith("enumerate(DataPipe)#"))]
    taken = {id(ev) for ev in coll} | {id(ev) for ev in loader}
    role_sets = [
        comp_k,
        [w for w, _ in work if w.cat in MEMCPY_CATS],
        [w for w, _ in work if w.cat in MEMSET_CATS],
        comm_k + coll,
        [ev for ev in side if ev.lcat in RUNTIME_CATS_LC],
        loader,
        [ev for ev in side if ev.lcat in CPU_ROLE_CATS_LC and id(ev) not in taken],
    ]
    out = [{"name": names[i], "dur": en[i] - st[i], "cpu_dur": ce[i] - cs[i],
            "launched": launched[i]} for i in range(n)]
    claimed: list[tuple[int, int]] = []
    prev_cov = [0] * n
    for role, members in zip(ROLES, role_sets):
        claimed = union(claimed + [(ev.s, ev.e) for ev in members])
        ends = [e for _, e in claimed]
        for i in range(n):
            cov = measure_within(claimed, ends, st[i], en[i])
            out[i][role] = cov - prev_cov[i]
            prev_cov[i] = cov
    busy = union((w.s, w.e) for w in kernels)
    busy_ends = [e for _, e in busy]
    for i in range(n):
        out[i]["other"] = out[i]["dur"] - prev_cov[i]
        d = out[i]["dur"]
        # no GPU figure for a trace without any GPU work (nor for an empty step)
        out[i]["gpu_util"] = (100.0 * measure_within(busy, busy_ends, st[i], en[i]) / d
                              if d > 0 and work else None)
    return out


def _parents(evs: list[Ev]) -> tuple[dict[int, Ev | None], int]:
    """Parent of every non-Python CPU slice on its thread (by id), and how many slices
    overlapped the innermost open one only partly.

    Per thread, sorted by (start, longer first, file order), with a stack: pop the top while
    it ended at or before the new start — except a zero-length top at exactly the new start
    (two zero-length slices at one instant nest, first in the file outside). The parent is
    then the innermost open slice that contains the new one (start >= its start, end <= its
    end); a partly overlapping top is skipped (counted)."""
    threads: dict[tuple[str, str], list[Ev]] = {}
    for ev in evs:
        if ev.gpu or ev.cat == "gpu_user_annotation" or ev.lcat in PY_CATS_LC:
            continue
        threads.setdefault(ev.th, []).append(ev)
    parent: dict[int, Ev | None] = {}
    partial = 0
    for lst in threads.values():
        lst.sort(key=lambda ev: (ev.s, -ev.d, ev.i))
        stack: list[Ev] = []
        for ev in lst:
            while stack and stack[-1].e <= ev.s \
                    and not (stack[-1].s == stack[-1].e == ev.s):
                stack.pop()
            p = None
            for k in range(len(stack) - 1, -1, -1):
                c = stack[k]
                if c.s <= ev.s and ev.e <= c.e:
                    p = c
                    break
                partial += 1
            parent[id(ev)] = p
            stack.append(ev)
    return parent, partial


def _is_op(ev: Ev) -> bool:
    return ev.lcat in OP_CATS_LC and not STEP_RX.search(ev.name)


def ref_operators(evs: list[Ev], fold_dups: bool = True) -> tuple[dict[str, dict], int]:
    """{operator name: calls and ns sums}, and the count of partly overlapping slices."""
    parent, partial = _parents(evs)
    child_sum: dict[int, int] = {}
    for ev in evs:
        p = parent.get(id(ev))
        if p is not None:
            child_sum[id(p)] = child_sum.get(id(p), 0) + ev.d
    rts, _, work = launches(evs)
    gpu_of: dict[int, int] = {}
    for w, rt in work:
        if rt is not None:
            gpu_of[id(rt)] = gpu_of.get(id(rt), 0) + w.d
    dself: dict[int, int] = {}
    dtotal: dict[int, int] = {}
    for rt in rts:
        g = gpu_of.get(id(rt), 0)
        if not g:
            continue
        first = True
        p = parent.get(id(rt))
        while p is not None:
            if _is_op(p):
                if first:
                    dself[id(p)] = dself.get(id(p), 0) + g
                    first = False
                dtotal[id(p)] = dtotal.get(id(p), 0) + g
            p = parent.get(id(p))
    ops = [ev for ev in evs if not ev.gpu and ev.cat != "gpu_user_annotation" and _is_op(ev)]
    hself = {id(ev): ev.d - child_sum.get(id(ev), 0) for ev in ops}
    if fold_dups:
        # PyTorch's EventList._remove_dup_nodes: an op whose parent op has its name and no
        # other child (any non-Python slice) is no call of its own; its parent takes its
        # children and kernels: its self times go to the outermost op of such a chain, its
        # device total is already in the parent's.
        kids: dict[int, int] = {}
        for ev in evs:
            p = parent.get(id(ev))
            if p is not None:
                kids[id(p)] = kids.get(id(p), 0) + 1

        def dup(ev: Ev) -> bool:
            p = parent.get(id(ev))
            return p is not None and _is_op(p) and p.name == ev.name and kids[id(p)] == 1

        kept = []
        for ev in ops:
            if not dup(ev):
                kept.append(ev)
                continue
            top = parent[id(ev)]
            while dup(top):
                top = parent[id(top)]
            hself[id(top)] += ev.d - child_sum.get(id(ev), 0)
            dself[id(top)] = dself.get(id(top), 0) + dself.get(id(ev), 0)
        ops = kept
    table: dict[str, dict] = {}
    for ev in ops:
        r = table.setdefault(ev.name, {"calls": 0, "host_self": 0, "host_total": 0,
                                       "device_self": 0, "device_total": 0})
        r["calls"] += 1
        r["host_total"] += ev.d
        r["host_self"] += hself[id(ev)]
        r["device_self"] += dself.get(id(ev), 0)
        r["device_total"] += dtotal.get(id(ev), 0)
    return table, partial


# ------------------------------------------------------------------------------ fixtures


def _path(key: str) -> Path:
    p = TRACES[key]
    if not p.exists():
        pytest.skip(f"{p} is absent")
    return p


@lru_cache(maxsize=None)
def raw(key: str) -> list[Ev]:
    return read_events(TRACES[key])


@lru_cache(maxsize=None)
def under_test(key: str):
    from tracetui.analysis.rules import classify, load_rules
    from tracetui.trace import load
    tr = load(str(TRACES[key]))
    return tr, classify(tr, load_rules())


def _steps_under_test(key: str, step_regex: str | None = None) -> list[dict]:
    from tracetui.analysis.steps import ROLES as CODE_ROLES
    from tracetui.analysis.steps import step_breakdown, step_rows
    assert tuple(CODE_ROLES) == ROLES
    tr, classes = under_test(key)
    return step_rows(step_breakdown(tr, classes, step_regex=step_regex))


def _check_steps(got: list[dict], want: list[dict], key: str) -> None:
    assert [r["name"] for r in got] == [r["name"] for r in want], key
    bad = []
    for g, w in zip(got, want):
        pairs = [("dur_us", w["dur"] / 1000), ("cpu_dur_us", w["cpu_dur"] / 1000)]
        pairs += [(f"{role}_us", w[role] / 1000) for role in ROLES]
        for field, ref in pairs:
            if abs(g[field] - ref) > 0.002:
                bad.append(f"{g['name']} {field}: code {g[field]} reference {ref}")
        if g["gpu_launched"] != w["launched"]:
            bad.append(f"{g['name']} gpu_launched: code {g['gpu_launched']} "
                       f"reference {w['launched']}")
        if w["gpu_util"] is None:
            if g["gpu_utilization_pct"] is not None:
                bad.append(f"{g['name']} gpu_utilization_pct: code "
                           f"{g['gpu_utilization_pct']} reference None")
        elif abs(g["gpu_utilization_pct"] - w["gpu_util"]) > 0.01:
            bad.append(f"{g['name']} gpu_utilization_pct: code {g['gpu_utilization_pct']} "
                       f"reference {w['gpu_util']}")
        parts = sum(g[f"{role}_us"] for role in ROLES)
        if abs(parts - g["dur_us"]) > 1.0:
            bad.append(f"{g['name']} roles sum to {parts}, dur_us {g['dur_us']}")
    assert not bad, f"{key}: " + "; ".join(bad[:20])


# ------------------------------------------------------------------------------ tests


@pytest.mark.parametrize("key", IDS)
def test_comm_rule_matches_built_in_rules(key):
    """The reference's communication regex classifies these traces' kernels as the built-in
    rules do (so the reference needs nothing from the rules)."""
    _path(key)
    from tracetui.analysis.rules import COMM, classify_names, load_rules
    names = sorted({ev.name for ev in raw(key) if ev.kernel})
    classes = classify_names(names, load_rules())
    diff = [n for n, c in zip(names, classes.tolist())
            if (c == COMM) != bool(COMM_KERNEL_RX.search(n))]
    assert not diff


@pytest.mark.parametrize("key", IDS)
def test_steps_match_reference(key):
    _path(key)
    want = ref_steps(raw(key))
    got = _steps_under_test(key)
    _check_steps(got, want, key)


@pytest.mark.parametrize("key", IDS)
def test_whole_trace_step_matches_reference(key):
    """A step regex naming nothing: the whole trace is one step."""
    _path(key)
    want = ref_steps(raw(key), re.compile(NO_STEP))
    assert [w["name"] for w in want] == ["(whole trace)"]
    got = _steps_under_test(key, NO_STEP)
    _check_steps(got, want, key)


@pytest.mark.parametrize("key", IDS)
def test_operators_match_reference(key):
    _path(key)
    from tracetui.analysis.operators import op_tree, operator_table
    want, _partial = ref_operators(raw(key))
    tr, classes = under_test(key)
    got = {r["name"]: r for r in operator_table(tr, op_tree(tr, classes))}
    assert sorted(got) == sorted(want), key
    bad = []
    for name, w in want.items():
        g = got[name]
        if g["calls"] != w["calls"]:
            bad.append(f"{name} calls: code {g['calls']} reference {w['calls']}")
        for f in ("host_self", "host_total", "device_self", "device_total"):
            ref = w[f] / 1000
            if abs(g[f"{f}_us"] - ref) > 0.01:
                bad.append(f"{name} {f}_us: code {g[f'{f}_us']} reference {ref}")
    assert not bad, f"{key}: " + "; ".join(bad[:20])
