"""Where each step's time goes: TensorBoard's step breakdown (its Overview pane).

Steps are the ``ProfilerStep#N`` slices on CPU threads, of any category (``user_annotation``,
``cpu_op``, the 2021 ``Operator``), or those a ``--step REGEX`` names; with none, the whole
trace is one step. Each step moves to the device side as TensorBoard's StepParser did
(pytorch/kineto ``tb_plugin/torch_tb_profiler/profiler/event_parser.py``, before #1368):

- a step ends at max(its CPU end, the last end of the GPU work launched by runtime calls lying
  wholly inside its CPU span) and starts at max(the previous step's end, its CPU start); the
  first "previous end" is the first step's CPU start, or the latest end of GPU work launched
  outside every step that ends before the first step's device work.

Roles in priority order, each claiming only step time not yet claimed (``overall_parser.py``),
so the parts sum to the step: kernel (not communication), memcpy, memset, communication
(communication kernels by the classification rules, and ``nccl:*``/``gloo:*`` CPU ops), runtime
(CUDA/HIP runtime and driver calls), DataLoader (``enumerate(DataLoader)#*.__next__``,
``enumerate(DataPipe)#*``), CPU exec (other ops, annotations, Python frames), other.

Where tracetui differs from TensorBoard, and why:

- a last step that launched under 80 % of the previous step's GPU work (its work cut off by
  the end of the profile) is kept and flagged ``cut_off``, where TensorBoard dropped it;
- Python frames (``python_function``) count as CPU exec, as the issue of this pane and the
  brief ask (TensorBoard counted only the old ``python`` category there);
- ``cuda_driver`` calls count as runtime (TensorBoard ignored them: "other");
- ``gpu_user_annotation`` spans are no CPU execution (TensorBoard mapped them to annotations).

Beside the roles, per step: GPU utilisation (time with a kernel running), exposed
communication, TensorBoard's estimated SM efficiency and achieved occupancy, and the GPU
streams' idle time in the step split as the streams' table splits it (host wait, kernel wait,
other: :class:`~tracetui.analysis.streams.StreamGaps`), summed over the streams.

Pure: numpy only.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..trace import LANE_CPU, LANE_GPU, Trace
from . import intervals as iv
from .overlap import DeviceUnions, device_unions
from .perf import tensor_core_ids
from .rules import COMM, COMP, MEM
from .streams import GAP_KINDS, KERNEL_WAIT_US, gap_pieces, kernel_wait

STEP_PATTERN = r"^ProfilerStep#\d+$"
ROLES = ("kernel", "memcpy", "memset", "communication", "runtime", "dataloader", "cpu_exec",
         "other")
ROLE_TITLES = ("Kernel", "Memcpy", "Memset", "Communication", "Runtime", "DataLoader",
               "CPU Exec", "Other")

#: CPU-side categories (lower case): runtime calls, ops, annotations, Python frames
RUNTIME_CATS = frozenset({"cuda_runtime", "cuda_driver", "runtime", "driver", "hip_runtime",
                          "hip_driver", "mtia_runtime", "xpu_runtime", "privateuse1_runtime"})
OP_CATS = frozenset({"cpu_op", "operator"})
CPU_CATS = OP_CATS | frozenset({"user_annotation", "python_function", "python"})
_MEMCPY_CATS = frozenset({"gpu_memcpy", "memcpy"})
_DATALOADER = re.compile(r"^(?:enumerate\(DataLoader\)#.*\.__next__|enumerate\(DataPipe\)#.*)$",
                         re.S)
_COLLECTIVE_OP = re.compile(r"^(?:nccl|gloo):", re.I)


def _us(ns: float) -> float:
    return round(float(ns) / 1000.0, 3)


def cat_ids(trace: Trace, cats: frozenset[str], used: np.ndarray | None = None) -> np.ndarray:
    """The string ids of the categories whose lower case is in ``cats``: a lookup table
    indexed by category id. ``used``: the categories' ids in use, where the caller has them
    (``used_ids(trace.cat, …)``: a pass over every slice)."""
    table = np.zeros(max(len(trace.strings), 1), bool)
    if used is None:
        used = used_ids(trace.cat, len(trace.strings))
    for c in used.tolist():
        if trace.strings[c].lower() in cats:
            table[c] = True
    return table


def used_ids(ids: np.ndarray, n: int) -> np.ndarray:
    """The distinct string ids in ``ids`` (each below ``n``), ascending: a count, not a sort
    (np.unique sorts millions of rows; the strings are few)."""
    if not len(ids):
        return np.zeros(0, np.int64)
    return np.flatnonzero(np.bincount(ids, minlength=n))


def cpu_rows(trace: Trace) -> np.ndarray:
    """Rows of the slices on CPU lanes, in order."""
    parts = [np.arange(ln.lo, ln.hi, dtype=np.int64) for ln in trace.lanes
             if ln.kind == LANE_CPU and ln.hi > ln.lo]
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


def _names_matching(trace: Trace, rows: np.ndarray, rx: re.Pattern[str]) -> np.ndarray:
    """Which of ``rows`` have a name ``rx`` matches (each distinct name matched once)."""
    if not len(rows):
        return np.zeros(0, bool)
    names = trace.name[rows]
    table = np.zeros(max(len(trace.strings), 1), bool)
    for u in used_ids(names, len(trace.strings)).tolist():
        table[u] = bool(rx.search(trace.strings[u]))
    return table[names]


def nested_union(trace: Trace, rows: np.ndarray) -> iv.Intervals:
    """The union of the slices ``rows`` (ascending), as :func:`~.intervals.union` makes it,
    without sorting them all: a lane holds its slices by depth, in start order within one,
    and a slice lies inside the one around it. Depth after depth, a slice inside the union
    of the shallower ones adds nothing and is dropped (a search); the few that remain (their
    enclosing slice not among ``rows``) are merged in. At 950 K CPU ops: 25 ms, where the
    sort of them all took 120 ms."""
    if not len(rows):
        return iv.EMPTY
    start, dur = trace.start, trace.dur
    out: list[iv.Intervals] = []
    for ln in trace.lanes:
        a, b = np.searchsorted(rows, [ln.lo, ln.hi])
        if a == b:
            continue
        r = rows[a:b]
        cuts = np.searchsorted(r, ln.depth_bounds[1:-1]).tolist()
        u: iv.Intervals = iv.EMPTY
        for seg in np.split(r, cuts) if cuts else [r]:
            if not len(seg):
                continue
            s = start[seg].astype(np.int64)
            e = s + dur[seg]
            if len(u[0]):
                i = np.searchsorted(u[0], s, side="right") - 1
                out_of = u[1][np.maximum(i, 0)] < e
                out_of |= i < 0
                s, e = s[out_of], e[out_of]
            if len(s):
                u = iv.union_of([u, iv.union(s, e)])
        out.append(u)
    return iv.union_of(out)


@dataclass
class Steps:
    """The steps of a trace on the device side, and the role of every moment of them."""

    source: str  # "ProfilerStep", "--step REGEX", or "whole trace"
    names: list[str]
    rows: np.ndarray  # the step slices (-1: the whole trace as one step)
    cpu_start: np.ndarray  # ns
    cpu_end: np.ndarray
    start: np.ndarray  # on the device side
    end: np.ndarray
    launched: np.ndarray  # GPU work launched inside each step's CPU span
    roles: np.ndarray  # (steps, len(ROLES)) ns
    gpu_busy: np.ndarray  # time with >= 1 kernel running, per step (any device)
    exposed_comm: np.ndarray  # communication kernels while their device computes nothing
    sm_efficiency: np.ndarray  # duration-weighted, % (nan: unknown)
    occupancy: np.ndarray  # duration-weighted est. achieved occupancy, % (nan: unknown)
    cut_off: np.ndarray  # bool: the last step's GPU work looks cut off
    #: of the computation kernels starting in each step, the % of their time on Tensor Cores
    #: (nan: none)
    tensor_core: np.ndarray | None = None
    has_gpu: bool = True  # whether the trace has GPU work at all (else no GPU figures)
    #: (steps, 3): the GPU streams' idle time in each step, summed over the streams, split as
    #: the streams' table splits it: host wait, kernel wait, other (stream-ns)
    idle: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.names)

    @property
    def dur(self) -> np.ndarray:
        return self.end - self.start


def find_steps(trace: Trace, step_regex: str | None = None) -> tuple[np.ndarray, str]:
    """(rows of the step slices sorted by start, where they come from)."""
    rx = re.compile(step_regex or STEP_PATTERN)
    cpu = cpu_rows(trace)
    rows = cpu[_names_matching(trace, cpu, rx)]
    rows = rows[np.argsort(trace.start[rows], kind="stable")]
    return rows, ("ProfilerStep" if step_regex is None else f"--step {step_regex}")


def step_breakdown(trace: Trace, classes: np.ndarray, step_regex: str | None = None,
                   unions: Sequence[DeviceUnions] | None = None,
                   kernel_wait_us: float = KERNEL_WAIT_US) -> Steps:
    """The steps of ``trace`` (:func:`find_steps`), moved to the device side, and their
    breakdown by role. ``classes``: :func:`~tracetui.analysis.rules.classify`; ``unions``:
    the devices' unions, where the caller has them (else made here); ``kernel_wait_us``: the
    idle split's threshold (``--kernel-wait``)."""
    if unions is None:
        unions = device_unions(trace, classes)
    step_rows, source = find_steps(trace, step_regex)
    cpu = cpu_rows(trace)
    cats = used_ids(trace.cat, len(trace.strings))
    cat_cpu = cat_ids(trace, CPU_CATS, cats)
    cat_rt = cat_ids(trace, RUNTIME_CATS, cats)
    cat_memcpy = cat_ids(trace, _MEMCPY_CATS, cats)
    is_step = np.zeros(trace.slice_count, bool)
    is_step[step_rows] = True

    start, dur = trace.start, trace.dur
    # ---- the steps on the CPU side
    if len(step_rows):
        names = [trace.name_of(int(r)) for r in step_rows.tolist()]
        cs = start[step_rows].astype(np.int64)
        ce = cs + dur[step_rows]
    else:  # the whole trace as one step: the CPU side's span (TensorBoard's), else all
        names = ["(whole trace)"]
        source = "whole trace"
        ops = cpu[cat_cpu[trace.cat[cpu]]] if len(cpu) else cpu
        if len(ops):
            cs, ce = np.array([start[ops].min()]), np.array([(start[ops] + dur[ops]).max()])
        else:
            lo, hi = trace.slices_span
            cs, ce = np.array([lo], np.int64), np.array([hi], np.int64)
        step_rows = np.array([-1], np.int64)
    n = len(names)

    # ---- GPU work, and who launched it
    is_gpu = (classes == COMP) | (classes == COMM) | (classes == MEM)
    has_gpu = bool(is_gpu.any())
    gpu_launch = trace.launch_of  # GPU row -> runtime row
    lr, lv = gpu_launch.rows.astype(np.int64), gpu_launch.values.astype(np.int64)
    ok = (classes[lr] == COMP) | (classes[lr] == COMM) | (classes[lr] == MEM) if len(lr) \
        else np.zeros(0, bool)
    lr, lv = lr[ok], lv[ok]
    rt_s = start[lv]
    rt_e = rt_s + dur[lv]
    # the step whose CPU span holds the runtime call wholly (the latest starting at or
    # before it: steps of one thread do not overlap)
    k = np.searchsorted(cs, rt_s, side="right") - 1
    inside = (k >= 0) & (rt_e <= ce[np.maximum(k, 0)]) & (rt_s >= cs[np.maximum(k, 0)])
    if step_rows[0] < 0:  # the whole trace: everything launched is inside it
        inside = np.ones(len(lr), bool)
        k = np.zeros(len(lr), np.int64)
    mk, mrow = k[inside], lr[inside]
    launched = np.bincount(mk, minlength=n)[:n] if len(mk) else np.zeros(n, np.int64)
    dev_min = np.full(n, np.iinfo(np.int64).max, np.int64)
    dev_max = np.full(n, np.iinfo(np.int64).min, np.int64)
    if len(mk):
        np.minimum.at(dev_min, mk, start[mrow])
        np.maximum.at(dev_max, mk, start[mrow] + dur[mrow])
    has_dev = launched > 0

    # ---- to the device side
    st, en = cs.copy(), ce.copy()
    if has_dev.any():
        prev = int(cs[0])
        if has_dev[0]:
            is_gpu[mrow] = False  # the GPU work no step launched
            others = np.flatnonzero(is_gpu)
            ends = start[others] + dur[others]
            before = ends[ends < dev_min[0]]
            del others, ends
            if len(before):
                prev = max(prev, int(before.max()))
        for i in range(n):
            s = max(prev, int(cs[i]))
            e = max(int(ce[i]), int(dev_max[i])) if has_dev[i] else max(int(ce[i]), s)
            e = max(e, s)
            st[i], en[i] = s, e
            prev = e
    cut = np.zeros(n, bool)
    if has_dev.any() and n > 1:
        last = int(np.flatnonzero(has_dev)[-1])
        cut[last + 1:] = True  # steps after the last that launched anything
        if last > 0 and launched[last - 1] * 0.8 > launched[last]:
            cut[last] = True

    # ---- role ranges over the whole trace
    def union_rows(rows: np.ndarray) -> iv.Intervals:
        return iv.union(start[rows], start[rows] + dur[rows]) if len(rows) else iv.EMPTY

    mem = np.flatnonzero(classes == MEM)
    memcpy = mem[cat_memcpy[trace.cat[mem]]] if len(mem) else mem
    memset = mem[~cat_memcpy[trace.cat[mem]]] if len(mem) else mem
    cpu_side = cpu[~is_step[cpu]] if len(cpu) else cpu
    rt = cpu_side[cat_rt[trace.cat[cpu_side]]] if len(cpu_side) else cpu_side
    ops = cpu_side[cat_cpu[trace.cat[cpu_side]]] if len(cpu_side) else cpu_side
    loader = _names_matching(trace, ops, _DATALOADER)
    opcat = cat_ids(trace, OP_CATS | frozenset({"user_annotation"}), cats)
    loader &= opcat[trace.cat[ops]] if len(ops) else loader
    coll = _names_matching(trace, ops, _COLLECTIVE_OP)
    comp_u = iv.union_of([u.comp for u in unions]) if unions else iv.EMPTY
    comm_u = iv.union_of([u.comm for u in unions]) if unions else iv.EMPTY
    role_sets = [
        comp_u,
        union_rows(memcpy),
        union_rows(memset),
        iv.union_of([comm_u, union_rows(ops[coll & ~loader])]),
        union_rows(rt),
        union_rows(ops[loader]),
        nested_union(trace, ops[~loader & ~coll]),  # (ops nest: most lie in their parent)
    ]
    t0s, t1s = st, en
    roles = np.zeros((n, len(ROLES)), np.int64)
    claimed = iv.EMPTY
    before = np.zeros(n, np.int64)
    # (the time of a set inside the steps: covered_inside, no prefix sum per interval - at
    # 15 M kernels a Cover's was 120 MB, beside the report's other thread)
    for j, r in enumerate(role_sets):
        role_sets[j] = iv.EMPTY
        claimed = iv.union_of([claimed, r]) if len(r[0]) else claimed
        del r
        now = iv.covered_inside(claimed, t0s, t1s) if len(claimed[0]) else before
        roles[:, j] = now - before
        before = now
    roles[:, -1] = (en - st) - before
    del role_sets, claimed

    # ---- beside the roles
    gpu_busy = iv.covered_inside(iv.union_of([comp_u, comm_u]), t0s, t1s)
    del comp_u, comm_u
    exposed = np.zeros(n, np.int64)
    for u in unions:  # (each device's communication while it computes nothing)
        if len(u.comm[0]):
            exposed += iv.covered_inside(u.exposed, t0s, t1s)
    sm_eff, occ = _kernel_quality(trace, classes, st, en)
    tcs = _tensor_core_share(trace, classes, st, en)
    idle = np.zeros((n, len(GAP_KINDS)), np.int64)
    for ln in trace.lanes:
        if ln.kind != LANE_GPU or ln.hi <= ln.lo:
            continue
        for gaps in gap_pieces(trace, ln, kernel_wait(kernel_wait_us), classes):
            for k in range(len(GAP_KINDS)):
                m = gaps.kind == k
                if m.any():
                    idle[:, k] += iv.covered_inside((gaps.start, gaps.end), t0s, t1s, m)
                del m
            del gaps
    return Steps(source=source, names=names, rows=step_rows, cpu_start=cs, cpu_end=ce,
                 start=st, end=en, launched=launched, roles=roles, gpu_busy=gpu_busy,
                 exposed_comm=exposed, sm_efficiency=sm_eff, occupancy=occ, cut_off=cut,
                 tensor_core=tcs, has_gpu=has_gpu, idle=idle)


_QUALITY_BLOCK = 1 << 18  # kernels read at once for their quality figures


def _tensor_core_share(trace: Trace, classes: np.ndarray, st: np.ndarray,
                       en: np.ndarray) -> np.ndarray:
    """Per step, of the computation kernels starting in it, the share (%) of their time in
    kernels on Tensor Cores (by name, :mod:`tracetui.analysis.tensorcores`); nan: none."""
    n = len(st)
    sums = np.zeros((2, n))
    if not n:
        return np.full(0, np.nan)
    tc_ids = tensor_core_ids(trace, classes)
    for ln in trace.lanes:
        if ln.kind != LANE_GPU or ln.hi <= ln.lo:
            continue
        c = classes[ln.lo:ln.hi] == COMP
        if not c.any():
            continue
        rows = np.flatnonzero(c) + ln.lo
        s = trace.start[rows]
        k = np.searchsorted(st, s, side="right") - 1
        ok = (k >= 0) & (s < en[np.maximum(k, 0)])
        rows, k = rows[ok], k[ok]
        w = trace.dur[rows].astype(np.float64)
        sums[0] += np.bincount(k, weights=w, minlength=n)[:n]
        tc = tc_ids[trace.name[rows]]
        sums[1] += np.bincount(k[tc], weights=w[tc], minlength=n)[:n]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sums[0] > 0, 100.0 * sums[1] / sums[0], np.nan)


def _num_sms(trace: Trace) -> dict[int, int]:
    out: dict[int, int] = {}
    for i, p in enumerate(trace.device_properties):
        if not isinstance(p, dict):
            continue
        dev, sms = p.get("id", i), p.get("numSms")
        if type(dev) is int and type(sms) is int and 0 < sms < 2**20:
            out[dev] = sms
    return out


def _kernel_quality(trace: Trace, classes: np.ndarray, st: np.ndarray,
                    en: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per step, over the kernels starting in it, weighted by their durations (TensorBoard's
    definitions, ``gpu_metrics_parser.py``): est. SM efficiency, min(blocks / SMs, 1), and
    est. achieved occupancy (the kernels' own figure); nan where no kernel says.

    Only kernels with fields (``trace.kernels``) can say, and they are read a block at a
    time: at 15 M kernels the whole-column temporaries were 1 GB (the report's peak)."""
    n = len(st)
    eff, occ = np.full(n, np.nan), np.full(n, np.nan)
    kf = trace.kernels
    if not n or not len(kf.slice):
        return eff, occ
    sums = np.zeros((4, n))  # occupancy: num, den; SM efficiency: num, den
    sms = _num_sms(trace)
    lane_sms = np.array([sms.get(int(ln.device), 0) for ln in trace.lanes] or [0], np.float64)
    for lo in range(0, len(kf.slice), _QUALITY_BLOCK):
        p = np.arange(lo, min(lo + _QUALITY_BLOCK, len(kf.slice)))  # positions in kf
        rows = kf.slice[p].astype(np.int64)
        c = classes[rows]
        keep = (c == COMP) | (c == COMM)
        s = trace.start[rows]
        k = np.searchsorted(st, s, side="right") - 1
        keep &= (k >= 0) & (s < en[np.maximum(k, 0)])
        if not keep.any():
            continue
        p, rows, kk = p[keep], rows[keep], k[keep]
        ww = trace.dur[rows].astype(np.float64)
        o = kf.occupancy[p].astype(np.float64)
        good = np.isfinite(o) & (o >= 0)
        sums[0] += np.bincount(kk[good], weights=ww[good] * o[good], minlength=n)[:n]
        sums[1] += np.bincount(kk[good], weights=ww[good], minlength=n)[:n]
        if sms:
            n_sms = lane_sms[trace.lane_index(rows)]
            g = kf.grid[p]
            blocks = g[:, 0].astype(np.float64) * g[:, 1] * g[:, 2]  # (prod(axis=1): 8x slower)
            del g
            good = (n_sms > 0) & (blocks > 0)
            e = np.minimum(blocks[good] / n_sms[good], 1.0) * 100.0
            sums[2] += np.bincount(kk[good], weights=ww[good] * e, minlength=n)[:n]
            sums[3] += np.bincount(kk[good], weights=ww[good], minlength=n)[:n]
    with np.errstate(invalid="ignore", divide="ignore"):
        occ = np.where(sums[1] > 0, sums[0] / sums[1], np.nan)
        eff = np.where(sums[3] > 0, sums[2] / sums[3], np.nan)
    return eff, occ


def _pct(part: float, whole: float) -> float | None:
    return round(100.0 * part / whole, 2) if whole > 0 else None


def _num(v: float) -> float | None:
    return None if not math.isfinite(v) else round(float(v), 2)


def step_rows(steps: Steps) -> list[dict[str, Any]]:
    """The steps as plain rows: ``summary --json``'s ``steps[]``."""
    out = []
    has_idle = steps.has_gpu and steps.idle is not None
    # (plain lists first: a numpy scalar per cell cost 60 ms on 3,510 steps)
    start, end = steps.start.tolist(), steps.end.tolist()
    cs, ce = steps.cpu_start.tolist(), steps.cpu_end.tolist()
    roles = steps.roles.tolist()
    launched, busy = steps.launched.tolist(), steps.gpu_busy.tolist()
    exposed, cut, rows = steps.exposed_comm.tolist(), steps.cut_off.tolist(), steps.rows.tolist()
    eff, occ = steps.sm_efficiency.tolist(), steps.occupancy.tolist()
    tcs = steps.tensor_core.tolist() if steps.tensor_core is not None else [math.nan] * len(steps)
    idle = steps.idle.tolist() if has_idle else None
    for i in range(len(steps)):
        d = int(end[i] - start[i])
        row: dict[str, Any] = {"name": steps.names[i], "start_us": _us(start[i]),
                               "dur_us": _us(d)}
        for role, v in zip(ROLES, roles[i]):
            row[f"{role}_us"] = _us(v)
        row.update({
            "cpu_start_us": _us(cs[i]),
            "cpu_dur_us": _us(ce[i] - cs[i]),
            "gpu_launched": int(launched[i]),
            "gpu_utilization_pct": _pct(int(busy[i]), d) if steps.has_gpu else None,
            "exposed_comm_us": _us(exposed[i]) if steps.has_gpu else None,
            "sm_efficiency_pct": _num(eff[i]),
            "achieved_occupancy_pct": _num(occ[i]),
            "tensor_core_pct": _num(tcs[i]),
            "host_wait_us": _us(idle[i][0]) if idle else None,
            "kernel_wait_us": _us(idle[i][1]) if idle else None,
            "other_idle_us": _us(idle[i][2]) if idle else None,
            "cut_off": bool(cut[i]),
            "row": int(rows[i]),
        })
        out.append(row)
    return out


def step_summary(steps: Steps) -> dict[str, Any]:
    """Where the steps come from, their time statistics, the slowest, and the average
    breakdown (over every step, as TensorBoard's average; the cut-off ones named apart)."""
    d = (steps.end - steps.start).astype(np.float64)
    n = len(steps)
    avg = {f"{role}_us": _us(steps.roles[:, j].mean()) for j, role in enumerate(ROLES)}
    slowest = int(np.argmax(d)) if n else -1
    return {
        "source": steps.source,
        "count": n,
        "mean_us": _us(d.mean()) if n else None,
        "median_us": _us(float(np.median(d))) if n else None,
        "min_us": _us(d.min()) if n else None,
        "max_us": _us(d.max()) if n else None,
        "std_us": _us(d.std()) if n else None,
        "slowest": steps.names[slowest] if n else None,
        "cut_off": [steps.names[i] for i in np.flatnonzero(steps.cut_off).tolist()],
        "average": {"dur_us": _us(d.mean()) if n else None, **avg},
    }
