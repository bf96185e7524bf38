"""The per-window analyses (tracetui.analysis.window) and safe exports (tracetui.export).

Every expected figure is computed here independently of tracetui: per-nanosecond boolean
coverage arrays for small synthetic traces, and a plain-Python sorted-interval merge for the
real traces, both built from the raw JSON events (integer ns, exact). tracetui code is only
ever the thing under test (tracetui.analysis.intervals is never used for expected values).
"""

from __future__ import annotations

import csv
import errno
import io
import itertools
import json
import os
import random
import re
import stat
import threading
import time
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from tracetui.analysis import rules as rules_mod
from tracetui.analysis.report import analyze
from tracetui.analysis.rules import COMM, COMP, DEFAULT_RULES, MEM, classify
from tracetui.analysis.window import (
    SERIES,
    OverlapModel,
    annotation_occurrences,
    gpu_rows_in,
    kernel_instances,
    lane_busy,
    range_stats,
    stream_matrix,
)
from tracetui.export import csv_cell, csv_text, export_name, write_new
from tracetui.trace import LANE_CPU, LANE_GPU, LANE_GPU_ANNOTATION, load

from reference import ref_intersect, ref_union  # tests/reference.py

ROOT = Path(__file__).resolve().parents[1]
DECODE = ROOT / "sample_traces" / "annotated.json"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "traces"
DEEPSEEK = SHARED / "deepseek_train.json"

GPU_CATS = {"kernel", "gpu_memcpy", "gpu_memset"}
ANN_CATS = {"user_annotation", "gpu_user_annotation"}
#: the test's own idea of communication: NCCL, all-to-all, DeepEP / DeepSeek EP transport
#: kernels (DeepEP's get_dispatch_layout is local computation)
COMM_RX = re.compile(
    r"nccl|(?<![A-Za-z])all_to_all"
    r"|(?:deep_ep|dpsk::ep)::(?:intranode|internode|internode_ll)::"
    r"(?:dispatch|combine|notify_dispatch|cached_notify|notify_combine)\b")


@pytest.fixture(autouse=True)
def _no_user_config(monkeypatch, tmp_path):
    """No test may pick up the developer's own ~/.config/tracetui/config.toml."""
    monkeypatch.setattr(rules_mod, "CONFIG_PATH", str(tmp_path / "no-such-config.toml"))


# --------------------------------------------------------------------------------------------
# Reference helpers: plain Python / plain boolean arrays, exact integers
# --------------------------------------------------------------------------------------------

def to_ns(v) -> int:
    """A µs value (int or Decimal) to integer ns, exactly."""
    x = Decimal(v) * 1000
    assert x == x.to_integral_value(), f"{v} µs is not a whole number of ns"
    return int(x)


def canon(v):
    """pid/tid as Kineto means them: numeric strings are numbers."""
    if isinstance(v, str) and v.strip().lstrip("-").isdigit():
        return int(v.strip())
    return v


def read_events(path: Path) -> list[dict]:
    with open(path, "rb") as f:
        data = json.load(f, parse_float=Decimal)
    return data["traceEvents"] if isinstance(data, dict) else data


def ref_subtract(a, b) -> list[tuple[int, int]]:
    """a minus b, both sorted disjoint: cut every interval of a by the b's it meets."""
    out = []
    for s, e in a:
        cur = s
        for bs, be in b:
            if be <= cur or bs >= e:
                continue
            if bs > cur:
                out.append((cur, bs))
            cur = max(cur, be)
            if cur >= e:
                break
        if cur < e:
            out.append((cur, e))
    return out


def ref_within(ivs, t0: int, t1: int) -> int:
    return sum(max(0, min(e, t1) - max(s, t0)) for s, e in ivs)


class Coverage:
    """Per-nanosecond boolean coverage over [lo, hi): the most literal reference there is."""

    def __init__(self, lo: int, hi: int) -> None:
        self.lo, self.hi = lo, hi
        self.a = np.zeros(hi - lo, bool)

    def add(self, s: int, e: int) -> None:
        self.a[max(s, self.lo) - self.lo: max(min(e, self.hi), self.lo) - self.lo] = True

    def __and__(self, o):
        c = Coverage(self.lo, self.hi)
        c.a = self.a & o.a
        return c

    def __sub__(self, o):
        c = Coverage(self.lo, self.hi)
        c.a = self.a & ~o.a
        return c

    def count(self, t0: int, t1: int) -> int:
        t0, t1 = max(t0, self.lo), min(t1, self.hi)
        return int(self.a[t0 - self.lo: t1 - self.lo].sum()) if t1 > t0 else 0


# --------------------------------------------------------------------------------------------
# Synthetic traces: 2 devices, 2-3 streams each, overlapping kernels, nested CPU slices
# --------------------------------------------------------------------------------------------

COMM_NAMES = [
    "ncclDevKernel_AllReduce_Sum_f32_RING_LL(ncclDevComm*, unsigned long, ncclWork*)",
    "void deep_ep::intranode::dispatch<8, 768, 6144>(int4*, float*, int*)",
    "void deep_ep::internode::combine<false, 8>(int4*, float const*)",
    "all_to_all_single_kernel",
]
COMP_NAMES = [
    "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64",
    "void flash_fwd_kernel<Flash_fwd_kernel_traits<128, 128, 64, 4>>(Flash_fwd_params)",
    "void at::native::vectorized_elementwise_kernel<4, at::native::FillFunctor<float>>",
    "void deep_ep::get_dispatch_layout<256, 32, 8>(long const*, int*, int*)",
    "small_reduce_kernel",
]
MEM_WORK = [("gpu_memcpy", "Memcpy HtoD (Pinned -> Device)"),
            ("gpu_memset", "Memset (Device)")]
LAYOUT = {0: (7, 13, 21), 1: (7, 21)}
SPAN = 150_000  # ns of GPU activity
BASE = 1_000_000_000  # absolute ns of the generator's time 0 (1000 s)
CPU_PID, MAIN_TID, LAUNCH_TID = 4242, 4242, 4343


def _us(ns: int) -> float:
    """ns -> µs float whose JSON text is the exact 3-decimal value."""
    return ns / 1000


class Synth:
    """A random trace, and the ground truth it was made from (absolute ns)."""

    def __init__(self, seed: int, path: Path) -> None:
        rng = random.Random(seed)
        self.events: list[dict] = []
        self.slices: list[dict] = []  # every X event: pid, tid, cat, name, s, e (absolute ns)
        corr = 1
        for dev, streams in LAYOUT.items():
            for st in streams:
                sequential = st == 7  # stream 7: back to back; others overlap themselves
                t = rng.randrange(0, 5_000)
                for _ in range(rng.randint(7, 13)):
                    r = rng.random()
                    if r < 0.12:
                        cat, name = rng.choice(MEM_WORK)
                    elif r < 0.5 if st != 7 else r < 0.2:
                        cat, name = "kernel", rng.choice(COMM_NAMES)
                    else:
                        cat, name = "kernel", rng.choice(COMP_NAMES)
                    dur = rng.randrange(1, 25_000)
                    if cat == "gpu_memset" and rng.random() < 0.4:
                        dur = 0  # zero-length work happens (DeepSeek's trace has some)
                    if sequential:
                        s = t + rng.randrange(0, 4_000)
                        t = s + dur
                    else:
                        s = rng.randrange(0, SPAN)
                    self._x(dev, st, cat, name, s, dur, {"device": dev, "stream": st,
                                                         "correlation": corr})
                    # its launch, on the launcher thread, shortly before (these overlap)
                    ls = s - rng.randrange(500, 9_000)
                    self._x(CPU_PID, LAUNCH_TID, "cuda_runtime", "cudaLaunchKernel", ls,
                            rng.randrange(100, 3_000), {"correlation": corr})
                    corr += 1
        # GPU annotations on device 0 stream 7 and device 1 stream 21
        for dev, st in ((0, 7), (1, 21)):
            t = 0
            for _ in range(3):
                s = t + rng.randrange(0, 8_000)
                d = rng.randrange(5_000, 40_000)
                self._x(dev, st, "gpu_user_annotation", "phaseA", s, d, {})
                t = s + d
        # main thread: properly nested annotations and ops, a few zero-length ops
        self._x(CPU_PID, MAIN_TID, "user_annotation", "ProfilerStep#1", -10_000, SPAN + 20_000, {})
        t = -9_000
        while t < SPAN:
            name = rng.choice(["phaseA", "phaseB"])
            d = rng.randrange(3_000, 20_000)
            self._x(CPU_PID, MAIN_TID, "user_annotation", name, t, d, {})
            u = t + rng.randrange(0, 1_000)
            while u < t + d - 200:
                od = rng.randrange(0, min(3_000, t + d - u))
                # a CPU op named like a GPU kernel: never a kernel instance
                op = rng.choice(["aten::mm", "aten::add", COMP_NAMES[0]])
                self._x(CPU_PID, MAIN_TID, "cpu_op", op, u, od, {})
                u += od + rng.randrange(1, 1_500)
            t += d + rng.randrange(0, 2_000)
        # a "user_annotation" named phaseA also on the launcher thread, and a cpu_op named
        # phaseB (not an annotation)
        self._x(CPU_PID, LAUNCH_TID, "user_annotation", "phaseA", 20_000, 7_000, {})
        self._x(CPU_PID, LAUNCH_TID, "cpu_op", "phaseB", 40_000, 3_000, {})
        rng.shuffle(self.events)  # file order is not time order
        meta = [{"ph": "M", "name": "process_name", "pid": CPU_PID, "tid": 0,
                 "args": {"name": "python"}}]
        for dev in LAYOUT:
            meta.append({"ph": "M", "name": "process_name", "pid": dev, "tid": 0,
                         "args": {"name": f"GPU {dev}"}})
        path.write_text(json.dumps({"schemaVersion": 1, "traceEvents": meta + self.events}))
        self.path = path
        self.t0 = min(x["s"] for x in self.slices)
        for x in self.slices:  # relative to the trace start, as tracetui reports times
            x["s"] -= self.t0
            x["e"] -= self.t0
        self.end = max(x["e"] for x in self.slices)

    def _x(self, pid, tid, cat, name, s, dur, args) -> None:
        self.events.append({"ph": "X", "cat": cat, "name": name, "pid": pid, "tid": tid,
                            "ts": _us(BASE + s), "dur": _us(dur), "args": args})
        self.slices.append({"pid": pid, "tid": tid, "cat": cat, "name": name,
                            "s": BASE + s, "e": BASE + s + dur})

    # ---- ground truth
    def gpu(self, dev=None):
        return [x for x in self.slices if x["cat"] in GPU_CATS
                and (dev is None or x["pid"] == dev)]

    def coverage(self, items, lo, hi) -> Coverage:
        c = Coverage(lo, hi)
        for x in items:
            c.add(x["s"], x["e"])
        return c

    def device_covers(self, dev, lo, hi) -> dict[str, Coverage]:
        ker = [x for x in self.gpu(dev) if x["cat"] == "kernel"]
        comm = self.coverage([x for x in ker if COMM_RX.search(x["name"])], lo, hi)
        comp = self.coverage([x for x in ker if not COMM_RX.search(x["name"])], lo, hi)
        return {"comp": comp, "comm": comm, "overlap": comm & comp, "exposed": comm - comp}

    def lane_slices(self, ln) -> list[dict]:
        if ln.kind == LANE_GPU:
            return [x for x in self.slices if (x["pid"], x["tid"]) == (ln.pid, ln.tid)
                    and x["cat"] != "gpu_user_annotation"]
        if ln.kind == LANE_GPU_ANNOTATION:
            return [x for x in self.slices if (x["pid"], x["tid"]) == (ln.pid, ln.tid)
                    and x["cat"] == "gpu_user_annotation"]
        return [x for x in self.slices if (x["pid"], x["tid"]) == (ln.pid, ln.tid)]


SEEDS = (1, 2, 3, 4)


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    out = {}
    for seed in SEEDS:
        sy = Synth(seed, tmp_path_factory.mktemp(f"synth{seed}") / f"synth{seed}.json")
        tr = load(str(sy.path))
        classes = classify(tr, DEFAULT_RULES)
        out[seed] = (sy, tr, classes, OverlapModel(tr, classes))
    return out


def _windows(rng: random.Random, end: int, n: int) -> list[tuple[int, int]]:
    """Random windows, plus the awkward ones: empty, reversed, beyond either end, all."""
    mid = end // 2
    out = [(0, end), (-5_000, end + 5_000), (end, end + 100), (-100, 0), (77, 77),
           (9_000, 8_000), (mid + 20_000, mid), (end, 0)]  # the last two: reversed, busy
    for _ in range(n):
        a, b = rng.randrange(-2_000, end + 2_000), rng.randrange(-2_000, end + 2_000)
        out.append((min(a, b), max(a, b)))
    return out


# --------------------------------------------------------------------------------------------
# 0. The synthetic traces are what they claim (so the tests below test something)
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", SEEDS)
def test_synthetic_trace_loaded_as_generated(synth, seed):
    sy, tr, classes, _model = synth[seed]
    assert tr.t0_abs_ns == sy.t0
    assert tr.end_ns == sy.end
    assert tr.devices == sorted(LAYOUT)
    gpu_lanes = [ln for ln in tr.lanes if ln.kind == LANE_GPU]
    assert sorted((ln.device, ln.stream) for ln in gpu_lanes) == sorted(
        (d, s) for d, ss in LAYOUT.items() for s in ss)
    # the random streams really overlap themselves; the CPU main thread really nests
    assert any(ln.max_depth > 0 for ln in gpu_lanes)
    assert any(ln.max_depth == 0 and ln.count for ln in gpu_lanes)
    main = [ln for ln in tr.lanes if ln.kind == LANE_CPU and ln.tid == MAIN_TID]
    assert len(main) == 1 and main[0].max_depth >= 2
    # the rules agree with the test's own classification of every GPU slice
    for ln in gpu_lanes:
        for r in range(ln.lo, ln.hi):
            cat, name = tr.cat_of(r), tr.name_of(r)
            want = MEM if cat != "kernel" else (COMM if COMM_RX.search(name) else COMP)
            assert classes[r] == want, (cat, name)
    # both classes present on both devices, somewhere
    for dev in LAYOUT:
        ker = [x for x in sy.gpu(dev) if x["cat"] == "kernel"]
        assert any(COMM_RX.search(x["name"]) for x in ker)
        assert any(not COMM_RX.search(x["name"]) for x in ker)


# --------------------------------------------------------------------------------------------
# 1. OverlapModel: bins and windows against per-ns coverage
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", SEEDS)
def test_overlap_bins_random_edges(synth, seed):
    sy, tr, _classes, model = synth[seed]
    rng = random.Random(100 + seed)
    lo, hi = -3_000, sy.end + 3_000
    covers = {d: sy.device_covers(d, lo, hi) for d in LAYOUT}
    assert SERIES == ("comp", "comm", "overlap", "exposed")
    for trial in range(12):
        n = rng.randint(1, 40)
        if trial == 0:  # regular zoom-level bins over the whole trace
            edges = np.linspace(0, tr.end_ns, 33).astype(np.int64)
        else:
            pts = sorted(rng.randrange(lo, hi) for _ in range(n + 1))
            if trial % 3 == 0 and len(pts) > 2:  # repeated edges: empty bins
                pts[1] = pts[0]
            edges = np.array(pts, np.int64)
        got = model.bins(edges)
        assert sorted(got) == sorted(LAYOUT)
        for dev, arr in got.items():
            assert arr.shape == (4, len(edges) - 1)
            for k, series in enumerate(SERIES):
                want = [covers[dev][series].count(int(a), int(b))
                        for a, b in itertools.pairwise(edges)]
                assert arr[k].tolist() == want, (dev, series, edges.tolist())
        # the bins add up to the window over the same span
        for w in model.window(int(edges[0]), int(edges[-1])):
            assert w["comp_us"] * 1000 == pytest.approx(int(got[w["device"]][0].sum()))


@pytest.mark.parametrize("seed", SEEDS)
def test_overlap_window_random(synth, seed):
    sy, _tr, _classes, model = synth[seed]
    rng = random.Random(200 + seed)
    lo, hi = -10_000, sy.end + 10_000
    covers = {d: sy.device_covers(d, lo, hi) for d in LAYOUT}
    for t0, t1 in _windows(rng, sy.end, 30):
        got = model.window(t0, t1)
        assert [g["device"] for g in got] == sorted(LAYOUT)
        for g in got:
            c = covers[g["device"]]
            n = {k: c[k].count(t0, t1) for k in SERIES}  # reversed window: count() gives 0
            assert g["comp_us"] == n["comp"] / 1000
            assert g["comm_us"] == n["comm"] / 1000
            assert g["overlap_us"] == n["overlap"] / 1000
            assert g["exposed_comm_us"] == n["exposed"] / 1000
            if n["comm"]:
                assert g["overlap_pct"] == round(100 * n["overlap"] / n["comm"], 2)
            else:
                assert g["overlap_pct"] is None


# --------------------------------------------------------------------------------------------
# 2. stream_matrix
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", SEEDS)
def test_stream_matrix(synth, seed):
    sy, tr, _classes, model = synth[seed]
    rng = random.Random(300 + seed)
    lo, hi = -1_000, sy.end + 1_000
    windows = [None] + _windows(rng, sy.end, 8)
    for du in model.unions:
        dev = du.device
        covs = {st: sy.coverage([x for x in sy.gpu(dev) if x["tid"] == st], lo, hi)
                for st in LAYOUT[dev]}
        for win in windows:
            lanes, m = stream_matrix(tr, du, win)
            assert [tr.lanes[i].stream for i in lanes] == sorted(LAYOUT[dev])
            assert all(tr.lanes[i].device == dev and tr.lanes[i].kind == LANE_GPU for i in lanes)
            t0, t1 = win if win is not None else (lo, hi)
            streams = sorted(LAYOUT[dev])
            want = [[(covs[a] & covs[b]).count(t0, t1) for b in streams] for a in streams]
            assert m.tolist() == want, (dev, win)


# --------------------------------------------------------------------------------------------
# 3. lane_busy, gpu_rows_in
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", SEEDS)
def test_lane_busy_every_lane(synth, seed):
    sy, tr, _classes, _model = synth[seed]
    rng = random.Random(400 + seed)
    lo, hi = -20_000, sy.end + 20_000
    kinds = Counter()
    for ln in tr.lanes:
        if not ln.count:
            continue
        items = sy.lane_slices(ln)
        assert len(items) == ln.count, ln.name
        cov = sy.coverage(items, lo, hi)
        kinds[(ln.kind, ln.max_depth > 0)] += 1
        for t0, t1 in _windows(rng, sy.end, 15):
            if t1 < t0:
                continue  # reversed windows: see test_lane_busy_reversed_window
            want = cov.count(t0, t1)
            assert lane_busy(tr, ln.index, t0, t1) == want, (ln.name, t0, t1)
    # nested CPU lanes, nested/overlapping GPU lanes, flat GPU lanes all met
    assert kinds[(LANE_CPU, True)] and kinds[(LANE_GPU, True)] and kinds[(LANE_GPU, False)]


@pytest.mark.parametrize("seed", SEEDS)
def test_gpu_rows_in(synth, seed):
    sy, tr, classes, _model = synth[seed]
    rng = random.Random(500 + seed)
    for t0, t1 in _windows(rng, sy.end, 15):
        if t1 <= t0:
            continue
        rows = gpu_rows_in(tr, classes, t0, t1)
        got = Counter((tr.lane_of(int(r)).pid, tr.lane_of(int(r)).tid, tr.name_of(int(r)),
                       int(tr.start[r]), int(tr.start[r] + tr.dur[r])) for r in rows)
        want = Counter((x["pid"], x["tid"], x["name"], x["s"], x["e"]) for x in sy.gpu()
                       if x["s"] < t1 and x["e"] > t0)
        assert got == want, (t0, t1)
        assert len(set(rows.tolist())) == len(rows)


# --------------------------------------------------------------------------------------------
# 4. range_stats
# --------------------------------------------------------------------------------------------

def _ref_kernels(items, t0: int, t1: int) -> dict[str, dict]:
    """Per name: count of GPU work in [t0, t1) (a non-empty intersection, or for zero-length
    work, its instant inside), and the time inside."""
    out: dict[str, dict] = {}
    for x in items:
        if max(x["s"], t0) < min(x["e"], t1) or (x["s"] == x["e"] and t0 <= x["s"] < t1):
            d = out.setdefault(x["name"], {"count": 0, "time_ns": 0, "cat": x["cat"]})
            d["count"] += 1
            d["time_ns"] += min(x["e"], t1) - max(x["s"], t0)
    return out


def _expected_class(cat: str, name: str) -> str:
    if cat != "kernel":
        return "mem"
    return "comm" if COMM_RX.search(name) else "comp"


@pytest.mark.parametrize("seed", SEEDS)
def test_range_stats_synthetic(synth, seed):
    sy, tr, classes, model = synth[seed]
    rng = random.Random(600 + seed)
    lo, hi = -20_000, sy.end + 20_000
    lane_cov = {ln.index: sy.coverage(sy.lane_slices(ln), lo, hi) for ln in tr.lanes}
    dev_cov = {d: sy.device_covers(d, lo, hi) for d in LAYOUT}
    want_lanes = {(ln.kind, ln.pid, ln.tid) for ln in tr.lanes
                  if ln.kind in (LANE_GPU, LANE_CPU) and ln.count}
    assert want_lanes == ({(LANE_GPU, d, s) for d, ss in LAYOUT.items() for s in ss}
                          | {(LANE_CPU, CPU_PID, MAIN_TID), (LANE_CPU, CPU_PID, LAUNCH_TID)})
    for t0, t1 in _windows(rng, sy.end, 10):
        st = range_stats(tr, classes, model, t0, t1, top=1000)
        span = max(t1, t0) - t0
        assert (st["t0"], st["t1"], st["span_ns"]) == (t0, max(t0, t1), span)
        assert {(x["kind"], tr.lanes[x["index"]].pid, tr.lanes[x["index"]].tid)
                for x in st["lanes"]} == want_lanes
        assert len(st["lanes"]) == len(want_lanes)
        for x in st["lanes"]:
            ln = tr.lanes[x["index"]]
            assert x["lane"] == ln.name
            b = lane_cov[ln.index].count(t0, max(t0, t1))
            assert x["busy_ns"] == b, (ln.name, t0, t1)
            assert x["pct"] == pytest.approx(100 * b / span if span else 0.0)
        if t1 <= t0:  # empty range: see test_range_stats_empty_range_has_no_kernels
            assert all(g[k] == 0 for g in st["devices"]
                       for k in ("comp_us", "comm_us", "overlap_us", "exposed_comm_us"))
            continue
        ref = _ref_kernels(sy.gpu(), t0, max(t0, t1))
        assert st["gpu_work"] == sum(d["count"] for d in ref.values())
        assert {k["name"]: (k["count"], k["time_ns"]) for k in st["kernels"]} == {
            n: (d["count"], d["time_ns"]) for n, d in ref.items()}
        total = sum(d["time_ns"] for d in ref.values())
        times = [k["time_ns"] for k in st["kernels"]]
        assert times == sorted(times, reverse=True)
        for k in st["kernels"]:
            assert k["class"] == _expected_class(ref[k["name"]]["cat"], k["name"])
            assert k["pct"] == pytest.approx(100 * k["time_ns"] / total)
        # devices: the overlap figures inside the range
        for g in st["devices"]:
            c = dev_cov[g["device"]]
            assert g["comp_us"] == c["comp"].count(t0, max(t0, t1)) / 1000
            assert g["comm_us"] == c["comm"].count(t0, max(t0, t1)) / 1000
            assert g["overlap_us"] == c["overlap"].count(t0, max(t0, t1)) / 1000
            assert g["exposed_comm_us"] == c["exposed"].count(t0, max(t0, t1)) / 1000
        # top: the largest times, in order
        if len(st["kernels"]) > 3:
            top3 = range_stats(tr, classes, model, t0, t1, top=3)["kernels"]
            assert [k["time_ns"] for k in top3] == sorted(times, reverse=True)[:3]


def _tiny_trace(tmp_path: Path) -> Path:
    """One 100 µs kernel on GPU 0 stream 7, its launch, and a flat CPU thread."""
    ev = [{"ph": "X", "cat": "kernel", "name": "gemm", "pid": 0, "tid": 7, "ts": 100,
           "dur": 100, "args": {"device": 0, "stream": 7, "correlation": 1}},
          {"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": 9, "tid": 9,
           "ts": 0, "dur": 150, "args": {"correlation": 1}}]
    p = tmp_path / "tiny.json"
    p.write_text(json.dumps(ev))
    return p


def test_range_stats_empty_range_has_no_kernels(tmp_path):
    tr = load(str(_tiny_trace(tmp_path)))
    classes = classify(tr, DEFAULT_RULES)
    model = OverlapModel(tr, classes)
    for t0, t1 in ((150_000, 150_000), (160_000, 140_000)):
        st = range_stats(tr, classes, model, t0, t1)
        assert st["span_ns"] == 0
        assert all(x["busy_ns"] == 0 for x in st["lanes"])
        assert st["gpu_work"] == 0 and st["kernels"] == [], st["kernels"]


def test_lane_busy_reversed_window(tmp_path):
    tr = load(str(_tiny_trace(tmp_path)))
    for ln in tr.lanes:
        assert ln.max_depth == 0
        assert lane_busy(tr, ln.index, 140_000, 120_000) == 0, ln.name


# --------------------------------------------------------------------------------------------
# 5. kernel_instances, annotation_occurrences (synthetic)
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", SEEDS)
def test_kernel_instances_synthetic(synth, seed):
    sy, tr, classes, _model = synth[seed]
    names = sorted({x["name"] for x in sy.gpu()})
    for name in names:
        nid = tr.strings.find(name)
        rows = kernel_instances(tr, classes, [nid])
        got = [(int(tr.start[r]), int(tr.dur[r]), tr.lane_of(int(r)).pid,
                tr.lane_of(int(r)).tid) for r in rows]
        assert [g[0] for g in got] == sorted(g[0] for g in got)  # time order
        assert all(tr.name_of(int(r)) == name for r in rows)
        assert Counter(got) == Counter((x["s"], x["e"] - x["s"], x["pid"], x["tid"])
                                       for x in sy.gpu() if x["name"] == name)
    # several names at once: the union, in time order
    ids = [tr.strings.find(n) for n in names[:3]]
    rows = kernel_instances(tr, classes, ids)
    assert len(rows) == sum(1 for x in sy.gpu() if x["name"] in names[:3])
    assert (np.diff(tr.start[rows]) >= 0).all()
    # a name only CPU slices carry, and nothing
    assert len(kernel_instances(tr, classes, [tr.strings.find("aten::mm")])) == 0
    assert len(kernel_instances(tr, classes, [])) == 0
    # COMP_NAMES[0] is also a cpu_op name: only the GPU slices come back
    gemm = kernel_instances(tr, classes, [tr.strings.find(COMP_NAMES[0])])
    assert all(tr.lane_of(int(r)).kind == LANE_GPU for r in gemm)


@pytest.mark.parametrize("seed", SEEDS)
def test_annotation_occurrences_synthetic(synth, seed):
    sy, tr, _classes, _model = synth[seed]
    table = {(a["name"], a["source"]): a["count"] for a in analyze(tr)["annotations"]}
    for name in ("phaseA", "phaseB", "ProfilerStep#1"):
        for source in ("cpu", "gpu"):
            want_cat = "user_annotation" if source == "cpu" else "gpu_user_annotation"
            want = sorted((x["s"], x["e"]) for x in sy.slices
                          if x["name"] == name and x["cat"] == want_cat)
            rows = annotation_occurrences(tr, name, source)
            got = [(int(tr.start[r]), int(tr.start[r] + tr.dur[r])) for r in rows]
            assert got == want, (name, source)  # exactly these, in time order
            assert table.get((name, source), 0) == len(rows)
    assert len(annotation_occurrences(tr, "no such annotation", "cpu")) == 0
    assert len(annotation_occurrences(tr, "aten::mm", "cpu")) == 0  # a cpu_op, not annotation


# --------------------------------------------------------------------------------------------
# 6. Real traces: deepseek_train.json
# --------------------------------------------------------------------------------------------

class RealRef:
    """Per-lane and per-device sorted interval unions of a real trace, from its raw JSON."""

    def __init__(self, path: Path) -> None:
        events = read_events(path)
        xs = [e for e in events if e.get("ph") == "X" and "ts" in e]
        starts = [to_ns(e["ts"]) for e in xs]
        starts += [to_ns(e["ts"]) for e in events if e.get("ph") == "i"]
        self.t0 = min(starts)
        self.gpu: list[dict] = []  # GPU work: device, stream, cat, name, s, e (relative ns)
        self.cpu: dict[tuple, list] = defaultdict(list)  # (pid, tid) -> [(s, e)]
        self.ann: list[dict] = []
        for e in xs:
            s = to_ns(e["ts"]) - self.t0
            x = {"pid": canon(e["pid"]), "tid": canon(e["tid"]), "cat": e.get("cat"),
                 "name": e["name"], "s": s, "e": s + to_ns(e.get("dur") or 0)}
            if x["cat"] in GPU_CATS:
                x["device"], x["stream"] = e["args"]["device"], e["args"]["stream"]
                self.gpu.append(x)
            elif x["cat"] != "gpu_user_annotation":
                self.cpu[(x["pid"], x["tid"])].append((x["s"], x["e"]))
            if x["cat"] in ANN_CATS:
                self.ann.append(x)
        self.devices = sorted({x["device"] for x in self.gpu})
        self.streams = {k: ref_union([(x["s"], x["e"]) for x in self.gpu
                                      if (x["device"], x["stream"]) == k])
                        for k in {(x["device"], x["stream"]) for x in self.gpu}}
        self.cpu_union = {k: ref_union(v) for k, v in self.cpu.items()}
        self.dev: dict[int, dict[str, list]] = {}
        for d in self.devices:
            ker = [x for x in self.gpu if x["device"] == d and x["cat"] == "kernel"]
            comm = ref_union([(x["s"], x["e"]) for x in ker if COMM_RX.search(x["name"])])
            comp = ref_union([(x["s"], x["e"]) for x in ker if not COMM_RX.search(x["name"])])
            self.dev[d] = {"comm": comm, "comp": comp, "overlap": ref_intersect(comm, comp),
                           "exposed": ref_subtract(comm, comp)}


@pytest.fixture(scope="module")
def ds():
    if not DEEPSEEK.is_file():
        pytest.skip("../shared/traces/deepseek_train.json not present")
    ref = RealRef(DEEPSEEK)
    tr = load(str(DEEPSEEK))
    classes = classify(tr, DEFAULT_RULES)
    return ref, tr, classes, OverlapModel(tr, classes)


@pytest.fixture(scope="module")
def ds_report(ds):
    return analyze(ds[1], DEFAULT_RULES)


def test_deepseek_reference_sane(ds):
    ref, tr, classes, _model = ds
    assert tr.t0_abs_ns == ref.t0
    assert tr.devices == ref.devices == [0]
    # the test's regex and the built-in rules agree on every kernel of the trace
    for ln in tr.lanes:
        if ln.kind != LANE_GPU:
            continue
        for r in range(ln.lo, ln.hi):
            cat, name = tr.cat_of(r), tr.name_of(r)
            want = MEM if cat != "kernel" else (COMM if COMM_RX.search(name) else COMP)
            assert classes[r] == want, name
    names = {x["name"] for x in ref.gpu if COMM_RX.search(x["name"])}
    assert len(names) == 5 and all("dpsk::ep::internode::" in n for n in names)
    # the README's figure for GPU 0
    d = ref.dev[0]
    assert round(sum(e - s for s, e in d["comm"]) / 1000, 2) == 113_030.0
    assert round(100 * sum(e - s for s, e in d["overlap"])
                 / sum(e - s for s, e in d["comm"]), 1) == 96.3


def _check_range(ref: RealRef, tr, classes, model, t0: int, t1: int) -> dict:
    st = range_stats(tr, classes, model, t0, t1, top=10_000)
    assert st["span_ns"] == t1 - t0
    seen_gpu = set()
    for x in st["lanes"]:
        ln = tr.lanes[x["index"]]
        if ln.kind == LANE_GPU:
            want = ref_within(ref.streams[(ln.device, ln.stream)], t0, t1)
            seen_gpu.add((ln.device, ln.stream))
        else:
            want = ref_within(ref.cpu_union[(ln.pid, ln.tid)], t0, t1)
        assert x["busy_ns"] == want, (ln.name, t0, t1)
    assert seen_gpu == set(ref.streams)  # every GPU lane is reported
    assert {tr.lanes[x["index"]].pid for x in st["lanes"] if x["kind"] == LANE_CPU} \
        == {k[0] for k in ref.cpu_union}
    for g in st["devices"]:
        d = ref.dev[g["device"]]
        w = {k: ref_within(d[k], t0, t1) for k in ("comp", "comm", "overlap", "exposed")}
        assert g["comp_us"] == w["comp"] / 1000
        assert g["comm_us"] == w["comm"] / 1000
        assert g["overlap_us"] == w["overlap"] / 1000
        assert g["exposed_comm_us"] == w["exposed"] / 1000
        assert w["exposed"] == w["comm"] - w["overlap"]
        assert g["overlap_pct"] == (round(100 * w["overlap"] / w["comm"], 2)
                                    if w["comm"] else None)
    ker = _ref_kernels(ref.gpu, t0, t1)
    assert st["gpu_work"] == sum(d["count"] for d in ker.values())
    assert {k["name"]: (k["count"], k["time_ns"], k["class"]) for k in st["kernels"]} == {
        n: (d["count"], d["time_ns"], _expected_class(d["cat"], n)) for n, d in ker.items()}
    return st


def test_deepseek_attn_b_range_stats(ds):
    ref, tr, classes, model = ds
    rows = annotation_occurrences(tr, "attn(B)", "cpu")
    want = sorted((x["s"], x["e"]) for x in ref.ann
                  if x["name"] == "attn(B)" and x["cat"] == "user_annotation")
    assert len(want) == 4
    assert [(int(tr.start[r]), int(tr.start[r] + tr.dur[r])) for r in rows] == want
    comm_seen = 0
    for r in rows:
        t0, t1 = int(tr.start[r]), int(tr.start[r] + tr.dur[r])
        st = _check_range(ref, tr, classes, model, t0, t1)
        comm_seen += sum(g["comm_us"] for g in st["devices"])
    assert comm_seen > 0  # the ranges do hold communication: the check is not vacuous


def test_deepseek_range_stats_other_ranges(ds):
    """The DualPipe phases' first occurrences, and random ranges."""
    ref, tr, classes, model = ds
    rng = random.Random(7)
    ranges = []
    for name in ("dispatch(F)", "combine(B)", "mlp(F)", "ProfilerStep#1"):
        r = annotation_occurrences(tr, name, "cpu")
        assert len(r)
        ranges.append((int(tr.start[r[0]]), int(tr.start[r[0]] + tr.dur[r[0]])))
    for _ in range(6):
        a, b = sorted(rng.randrange(0, tr.end_ns) for _ in range(2))
        ranges.append((a, b))
    for t0, t1 in ranges:
        _check_range(ref, tr, classes, model, t0, t1)


def test_deepseek_full_window_equals_report(ds, ds_report):
    ref, tr, _classes, model = ds
    got = model.window(0, tr.end_ns)
    rep = {d["device"]: d for d in ds_report["overlap"]}
    assert [g["device"] for g in got] == sorted(rep)
    for g in got:
        r = rep[g["device"]]
        for k in ("comm_us", "comp_us", "overlap_us", "exposed_comm_us"):
            assert round(g[k], 3) == r[k], k
        assert g["overlap_pct"] == r["overlap_pct"]
        d = ref.dev[g["device"]]  # and both equal the reference
        assert g["comm_us"] == sum(e - s for s, e in d["comm"]) / 1000
        assert g["exposed_comm_us"] == sum(e - s for s, e in d["exposed"]) / 1000


def test_deepseek_bins_against_reference(ds):
    ref, tr, _classes, model = ds
    rng = random.Random(11)
    for _ in range(5):
        edges = np.array(sorted(rng.randrange(-1000, tr.end_ns + 1000)
                                for _ in range(rng.randint(2, 60))), np.int64)
        got = model.bins(edges)
        for dev, arr in got.items():
            d = ref.dev[dev]
            for k, series in enumerate(SERIES):
                assert arr[k].tolist() == [ref_within(d[series], int(a), int(b))
                                           for a, b in itertools.pairwise(edges)]


def test_deepseek_stream_matrix_full(ds):
    ref, tr, _classes, model = ds
    for du in model.unions:
        for win in (None, (0, tr.end_ns // 3)):
            lanes, m = stream_matrix(tr, du, win)
            keys = [(tr.lanes[i].device, tr.lanes[i].stream) for i in lanes]
            assert keys == sorted(k for k in ref.streams if k[0] == du.device)
            t0, t1 = win if win else (0, tr.end_ns)
            for i, a in enumerate(keys):
                for j, b in enumerate(keys):
                    assert m[i, j] == ref_within(
                        ref_intersect(ref.streams[a], ref.streams[b]), t0, t1)


def _check_instances_and_occurrences(ref: RealRef, tr, classes, report) -> None:
    for name in sorted({x["name"] for x in ref.gpu}):
        rows = kernel_instances(tr, classes, [tr.strings.find(name)])
        got = [(int(tr.start[r]), int(tr.dur[r]), tr.lane_of(int(r)).stream) for r in rows]
        assert [g[0] for g in got] == sorted(g[0] for g in got)
        assert sorted(got) == sorted((x["s"], x["e"] - x["s"], x["stream"])
                                     for x in ref.gpu if x["name"] == name), name
    table = [a for a in report["annotations"] if a["source"] != "none"]  # not (no phase)
    assert table
    ref_count = Counter((x["name"], "cpu" if x["cat"] == "user_annotation" else "gpu")
                        for x in ref.ann)
    assert {(a["name"], a["source"]) for a in table} == set(ref_count)
    for a in table:
        rows = annotation_occurrences(tr, a["name"], a["source"])
        assert len(rows) == a["count"] == ref_count[(a["name"], a["source"])], a["name"]
        assert (np.diff(tr.start[rows]) >= 0).all()


def test_deepseek_instances_and_occurrences(ds, ds_report):
    ref, tr, classes, _model = ds
    _check_instances_and_occurrences(ref, tr, classes, ds_report)


# --------------------------------------------------------------------------------------------
# 7. Real traces: decode.json (in the repository)
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def dec():
    ref = RealRef(DECODE)
    tr = load(str(DECODE))
    classes = classify(tr, DEFAULT_RULES)
    return ref, tr, classes, OverlapModel(tr, classes), analyze(tr, DEFAULT_RULES)


def test_decode_instances_and_occurrences(dec):
    ref, tr, classes, _model, report = dec
    assert tr.t0_abs_ns == ref.t0
    _check_instances_and_occurrences(ref, tr, classes, report)
    # GPU annotations really are there, on their own lanes
    assert len(annotation_occurrences(tr, "mb0:dispatch", "gpu")) == 18
    assert len(annotation_occurrences(tr, "mb0:dispatch", "cpu")) == 18


def test_decode_range_stats_phases(dec):
    ref, tr, classes, model, report = dec
    rng = random.Random(5)
    for name, source in (("mb0:dispatch", "cpu"), ("mb1:combine", "gpu"),
                         ("mb0:attn", "gpu"), ("ProfilerStep#3", "cpu")):
        rows = annotation_occurrences(tr, name, source)
        for r in rng.sample(rows.tolist(), min(3, len(rows))):
            _check_range(ref, tr, classes, model, int(tr.start[r]),
                         int(tr.start[r] + tr.dur[r]))
    full = model.window(0, tr.end_ns)
    rep = {d["device"]: d for d in report["overlap"]}
    for g in full:
        for k in ("comm_us", "comp_us", "overlap_us", "exposed_comm_us"):
            assert round(g[k], 3) == rep[g["device"]][k]
        assert 0 < g["overlap_pct"] < 100


def test_cpu_only_trace():
    """A trace without any GPU: no devices, no kernels, CPU lanes still measured."""
    path = ROOT / "sample_traces" / "cpu_torch.json"
    ref = RealRef(path)
    tr = load(str(path))
    classes = classify(tr, DEFAULT_RULES)
    model = OverlapModel(tr, classes)
    assert ref.gpu == [] and tr.t0_abs_ns == ref.t0
    assert model.window(0, tr.end_ns) == []
    assert model.bins(np.array([0, 10, tr.end_ns], np.int64)) == {}
    rng = random.Random(9)
    for _ in range(5):
        t0, t1 = sorted(rng.randrange(0, tr.end_ns) for _ in range(2))
        st = range_stats(tr, classes, model, t0, t1)
        assert st["kernels"] == [] and st["gpu_work"] == 0 and st["devices"] == []
        assert {(x["kind"], tr.lanes[x["index"]].pid, tr.lanes[x["index"]].tid)
                for x in st["lanes"]} == {(LANE_CPU, *k) for k in ref.cpu_union}
        for x in st["lanes"]:
            ln = tr.lanes[x["index"]]
            assert x["busy_ns"] == ref_within(ref.cpu_union[(ln.pid, ln.tid)], t0, t1)
        assert len(gpu_rows_in(tr, classes, t0, t1)) == 0
    table = analyze(tr, DEFAULT_RULES)["annotations"]
    assert table and table[-1]["name"] == "(no phase)" and table[-1]["kernels"] == 0
    for a in table[:-1]:
        assert len(annotation_occurrences(tr, a["name"], a["source"])) == a["count"] == sum(
            1 for x in ref.ann if x["name"] == a["name"])


# --------------------------------------------------------------------------------------------
# 8. export: csv_cell, csv_text, export_name, write_new
# --------------------------------------------------------------------------------------------

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def test_csv_cell_examples():
    assert csv_cell(3) == 3 and csv_cell(2.5) == 2.5 and csv_cell(None) is None
    assert csv_cell("gemm") == "gemm"
    for bad in ("=HYPERLINK(\"http://x\")", "+1+2", "-2+3", "@SUM(A1)", "=cmd|'/c calc'!A1"):
        assert csv_cell(bad) == "'" + bad
    # control characters become visible, and cannot smuggle a formula start either
    assert csv_cell("\x1b]52;c;ZXZpbA==\x07") == "^[]52;c;ZXZpbA==^G"
    assert csv_cell("\t=1+1") == "^I=1+1"
    assert csv_cell("\r=1+1") == "^M=1+1"
    assert csv_cell("a\u202eb") == "a\\u202eb"


def test_csv_cell_random_strings():
    rng = random.Random(3)
    alphabet = list("=+-@ aZ9,;\"'|\t\r\n\x1b\x00\x7f\x9b\u202e\u2066é→")
    for _ in range(2000):
        s = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8)))
        out = csv_cell(s)
        assert isinstance(out, str)
        assert not CONTROL.search(out), repr(out)
        assert not out.startswith(FORMULA_START), repr(out)
        if out.startswith("'") and not s.startswith("'"):
            assert out[1:].startswith(FORMULA_START[:4])
        # nothing printable is lost or changed
        printable = [c for c in s if not CONTROL.match(c)]
        assert all(c in out for c in printable)


def test_csv_text_round_trip():
    rng = random.Random(4)
    header = ["name", "=count", "time_us"]
    rows = []
    for _ in range(50):
        name = "".join(rng.choice("ab,\"\n=-+@ \x1b") for _ in range(rng.randint(0, 10)))
        rows.append([name, rng.randint(-5, 5), rng.random(), None])
    text = csv_text(header, rows)
    back = list(csv.reader(io.StringIO(text)))
    assert back[0] == ["name", "'=count", "time_us"]
    assert len(back) == len(rows) + 1
    # one physical line per row: no raw newline survives inside a cell
    assert text.count("\n") == len(rows) + 1 and text.endswith("\n")
    for got, r in zip(back[1:], rows):
        want_name = csv_cell(r[0])
        assert got == [want_name, str(r[1]), str(r[2]), ""]
        assert not got[0].startswith(FORMULA_START)


SAFE_NAME = re.compile(r"^[A-Za-z0-9._-]+$")
HOSTILE_PATHS = [
    "/tmp/x/../../etc/passwd",
    "../../../../root/.ssh/authorized_keys.json",
    "trace;rm -rf ~ $(reboot) `id`.json.gz",
    "/data/\x1b]52;c;ZXZpbA==\x07evil\x1b[2J.json",
    "/data/trace\nname\r\t.json",
    "C:\\Users\\me\\..\\trace.json",
    "/data/ünïcødé 𝔱𝔯𝔞𝔠𝔢 \u202etxt.exe.json",
    "/data/...json", "/", "", ".json.gz", "/data/-rf.json", "/data/" + "A" * 500 + ".json",
    "/data/a/b/c:d*e?f<g>h|i\"j.pt.trace.json.gz",
]


@pytest.mark.parametrize("path", HOSTILE_PATHS)
def test_export_name_hostile_paths(path):
    when = 1_700_000_000.0
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(when))
    for what in ("kernels", "../../x y;z", "\x1b[31m"):
        name = export_name(path, what, "csv", when)
        assert SAFE_NAME.match(name), repr(name)
        assert name.startswith("tracetui-") and name.endswith(f"-{stamp}.csv")
        assert name not in (".", "..") and "/" not in name and "\\" not in name
        assert not name.startswith("-") and not name.startswith(".")
        # no part of the name is only dots ("..", "."): nothing that reads as a path step
        assert not any(re.fullmatch(r"[._]+", part) for part in name.split("-")), name
        assert len(name) <= 3 * 60 + len(stamp) + 8
    name = export_name(path, "kernels", "csv", when)
    assert name.startswith("tracetui-") and f"-kernels-{stamp}.csv" in name


def test_export_name_plain():
    when = 1_700_000_000.0
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(when))
    assert export_name("/a/b/train.json", "kernels", "csv", when) == \
        f"tracetui-train-kernels-{stamp}.csv"
    assert export_name("/a/b/rank-0.pt.trace.json.gz", "timeline", "svg", when) == \
        f"tracetui-rank-0.pt.trace-timeline-{stamp}.svg"


def _tmp_files(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(".tracetui-")]


def test_write_new_never_overwrites(tmp_path):
    p1 = write_new(tmp_path, "out.csv", "first\n")
    p2 = write_new(tmp_path, "out.csv", b"second\x00\xff")
    p3 = write_new(tmp_path, "out.csv", "third é\n")
    assert [p.name for p in (p1, p2, p3)] == ["out.csv", "out-2.csv", "out-3.csv"]
    assert p1.read_bytes() == b"first\n"
    assert p2.read_bytes() == b"second\x00\xff"
    assert p3.read_bytes() == "third é\n".encode()
    # a file that was already there is left alone
    (tmp_path / "mine.svg").write_text("precious")
    p = write_new(tmp_path, "mine.svg", "new")
    assert p.name == "mine-2.svg" and (tmp_path / "mine.svg").read_text() == "precious"
    # no extension, and several dots
    assert write_new(tmp_path, "README", "a").name == "README"
    assert write_new(tmp_path, "README", "b").name == "README-2"
    assert write_new(tmp_path, "a.tar.gz", "c").name == "a.tar.gz"
    assert write_new(tmp_path, "a.tar.gz", "d").name == "a.tar-2.gz"
    assert _tmp_files(tmp_path) == []
    mode = stat.S_IMODE(os.stat(p1).st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o644 & ~umask


def test_write_new_large_content_complete(tmp_path):
    data = "".join(f"{i},{'x' * (i % 97)}\n" for i in range(60_000))
    p = write_new(tmp_path, "big.csv", data)
    assert p.read_text() == data
    assert _tmp_files(tmp_path) == []


def test_write_new_concurrent_writers(tmp_path):
    out: list[Path] = []
    errors: list[BaseException] = []

    def go(i: int) -> None:
        try:
            out.append(write_new(tmp_path, "same.csv", f"writer {i}\n" * 1000))
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len({p.name for p in out}) == 12
    assert {p.name for p in out} == {"same.csv"} | {f"same-{k}.csv" for k in range(2, 13)}
    contents = sorted(p.read_text() for p in out)
    assert contents == sorted(f"writer {i}\n" * 1000 for i in range(12))
    assert _tmp_files(tmp_path) == []


def test_write_new_fsync_failure_leaves_nothing(tmp_path, monkeypatch):
    (tmp_path / "keep.txt").write_text("x")

    def boom(fd):
        raise OSError(errno.EIO, "disk on fire")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError):
        write_new(tmp_path, "out.csv", "data")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_write_new_link_and_rename_failure_leaves_nothing(tmp_path, monkeypatch):
    def boom(src, dst):
        raise OSError(errno.EROFS, "read-only")

    monkeypatch.setattr(os, "link", boom)
    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        write_new(tmp_path, "out.csv", "data")
    # neither the temporary file nor the name reserved for the rename is left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_write_new_without_hard_links(tmp_path, monkeypatch):
    """Filesystems without hard links: exclusive create, still never over an existing file."""
    def nolink(src, dst):
        raise OSError(errno.EPERM, "no hard links here")

    monkeypatch.setattr(os, "link", nolink)
    (tmp_path / "t.csv").write_text("old")
    p = write_new(tmp_path, "t.csv", "new content\n")
    assert p.name == "t-2.csv" and p.read_text() == "new content\n"
    assert (tmp_path / "t.csv").read_text() == "old"
    assert write_new(tmp_path, "t.csv", "again").name == "t-3.csv"
    assert _tmp_files(tmp_path) == []




def test_overlap_model_matrix_is_stream_matrix_remembered():
    tr = load(str(DECODE))
    classes = classify(tr, DEFAULT_RULES)
    model = OverlapModel(tr, classes)
    rng = np.random.default_rng(3)
    cuts = sorted(rng.integers(-1000, tr.end_ns + 1000, 8).tolist())
    for k, dc in enumerate(model.devices):
        for window in ((0, tr.end_ns), (tr.end_ns // 3, tr.end_ns // 2), (5, 5),
                       *zip(cuts[::2], cuts[1::2])):
            lanes, m = model.matrix(k, window)
            want_lanes, want = stream_matrix(tr, dc.unions, window)
            assert lanes == want_lanes and (m == want).all()
            assert model.matrix(k, window)[1] is m  # computed once
