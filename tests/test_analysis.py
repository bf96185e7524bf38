"""The analysis layer (classification, interval algebra, overlap, kernel table, streams,
per-annotation figures) against independent computations.

Every expected figure here is computed from the JSON with the standard library only (json,
gzip, decimal, statistics, plain Python sweeps over integer nanoseconds); tracetui code is
only ever the thing under test.
"""

from __future__ import annotations

import copy
import gzip
import itertools
import json
import random
import re
import statistics
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from tracetui.analysis import intervals as iv
from tracetui.analysis import rules as rules_mod
from tracetui.analysis.kernels import short_name
from tracetui.analysis.report import analyze
from tracetui.analysis.rules import (
    COMM,
    COMP,
    DEFAULT_RULES,
    MEM,
    NOT_GPU,
    Rule,
    classify,
    classify_names,
    load_rules,
)
from tracetui.trace import TraceError, load

from reference import ref_intersect, ref_total, ref_union  # tests/reference.py

ROOT = Path(__file__).resolve().parents[1]
DECODE = ROOT / "sample_traces" / "annotated.json"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "traces"
DEEPSEEK = SHARED / "deepseek_train.json"
NCCL = SHARED / "hta_nccl_data.json.gz"
RCCL = SHARED / "tracelens_mi300_rccl.json.gz"

needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/traces not present")

GPU_CATS = ("kernel", "gpu_memcpy", "gpu_memset")
#: DeepSeek's DeepEP transport kernels (the README's definition of communication)
DPSK_COMM = re.compile(r"dpsk::ep::internode::(?:dispatch|combine|notify_dispatch|cached_notify)\b")
#: The README's figure for GPU 0 of deepseek_train.json
README_PCT, README_COMM_US = 96.3, 113_030.0


# --------------------------------------------------------------------------------------------
# Reference helpers: plain Python, exact integers, no tracetui code
# --------------------------------------------------------------------------------------------

def read_events(path: Path) -> list[dict]:
    """The events of a trace file, numbers exact (floats as Decimal)."""
    opener = gzip.open if path.read_bytes()[:2] == b"\x1f\x8b" else open
    with opener(path, "rb") as f:
        data = json.load(f, parse_float=Decimal)
    return data["traceEvents"] if isinstance(data, dict) else data


def to_ns(v) -> int:
    """A µs value (int or Decimal) to integer nanoseconds, exactly."""
    x = Decimal(v) * 1000
    assert x == x.to_integral_value(), f"{v} µs is not a whole number of ns"
    return int(x)


def us(ns: int) -> float:
    return round(ns / 1000, 3)


def gpu_work(events, cats=GPU_CATS):
    return [e for e in events if e.get("ph") == "X" and e.get("cat") in cats]


def ref_class(name: str, comm_rx) -> str:
    return "comm" if comm_rx(name) else "comp"


def nccl_rccl(name: str) -> bool:
    low = name.lower()
    return "nccl" in low or "rccl" in low


def ref_device_figures(events, is_comm) -> dict[int, dict[str, float]]:
    """Per device (pid): comm/comp/overlap µs from the kernels (cat 'kernel' only)."""
    by_dev: dict[int, dict[str, list]] = defaultdict(lambda: {"comm": [], "comp": []})
    for e in gpu_work(events, ("kernel",)):
        s = to_ns(e["ts"])
        by_dev[e["pid"]]["comm" if is_comm(e["name"]) else "comp"].append((s, s + to_ns(e["dur"])))
    out = {}
    for dev, d in by_dev.items():
        comm, comp = ref_union(d["comm"]), ref_union(d["comp"])
        both = ref_intersect(comm, comp)
        out[dev] = {"comm_ns": ref_total(comm), "comp_ns": ref_total(comp),
                    "overlap_ns": ref_total(both), "comm": comm, "comp": comp, "both": both}
    return out


def by_device(report) -> dict[int, dict]:
    return {d["device"]: d for d in report["overlap"]}


@pytest.fixture(autouse=True)
def _no_user_config(monkeypatch, tmp_path):
    """No test may pick up the developer's own ~/.config/tracetui/config.toml."""
    monkeypatch.setattr(rules_mod, "CONFIG_PATH", str(tmp_path / "no-such-config.toml"))


# --------------------------------------------------------------------------------------------
# Shared fixtures
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ds_events():
    if not SHARED.is_dir():
        pytest.skip("../shared/traces not present")
    return read_events(DEEPSEEK)


@pytest.fixture(scope="module")
def ds_trace():
    if not SHARED.is_dir():
        pytest.skip("../shared/traces not present")
    return load(str(DEEPSEEK))


@pytest.fixture(scope="module")
def ds_report(ds_trace):
    return analyze(ds_trace, DEFAULT_RULES)


@pytest.fixture(scope="module")
def ds_ref(ds_events):
    """Independent GPU 0 unions of DeepSeek, the README's way."""
    return ref_device_figures(ds_events, lambda n: bool(DPSK_COMM.search(n)))[0]


@pytest.fixture(scope="module")
def decode_report():
    tr = load(str(DECODE))
    return tr, analyze(tr, DEFAULT_RULES)


@pytest.fixture(scope="module")
def decode_events():
    return read_events(DECODE)


# --------------------------------------------------------------------------------------------
# 1. DeepSeek: classification and the README figure
# --------------------------------------------------------------------------------------------

@needs_shared
def test_deepseek_kernel_classes(ds_events, ds_trace, ds_report):
    kernels = gpu_work(ds_events, ("kernel",))
    s27 = {e["name"] for e in kernels if e["tid"] == 27}
    s23 = {e["name"] for e in kernels if e["tid"] == 23}
    comm27 = {n for n in s27 if DPSK_COMM.search(n)}
    cast27 = {n for n in s27 if "per_token_cast_to_fp8" in n}
    # the trace has what the README says: all four transport kernels and the casts on stream 27
    for k in ("dispatch", "combine", "notify_dispatch", "cached_notify"):
        assert any(f"dpsk::ep::internode::{k}<" in n for n in comm27), k
    assert cast27 and s23
    table = {r["name"]: r for r in ds_report["kernels"]}
    for n in comm27:
        assert table[n]["class"] == "comm", n
    for n in cast27 | s23:
        assert table[n]["class"] == "comp", n
    layout = [n for n in s27 if "get_dispatch_layout" in n]
    assert layout and all(table[n]["class"] == "comp" for n in layout)
    # and per slice, lane by lane: stream 27 is exactly the README's split
    classes = classify(ds_trace, DEFAULT_RULES)
    seen = Counter()
    for ln in ds_trace.lanes:
        for row in range(ln.lo, ln.hi):
            c = int(classes[row])
            if ln.kind != "gpu":
                assert c == NOT_GPU
                continue
            name = ds_trace.strings[int(ds_trace.name[row])]
            cat = ds_trace.strings[int(ds_trace.cat[row])]
            want = MEM if cat in ("gpu_memcpy", "gpu_memset") else (
                COMM if DPSK_COMM.search(name) else COMP)
            assert c == want, (ln.name, name)
            seen[(ln.stream, c)] += 1
    n27_comm = sum(1 for e in kernels if e["tid"] == 27 and DPSK_COMM.search(e["name"]))
    assert seen[(27, COMM)] == n27_comm == 32
    assert seen[(27, COMP)] == sum(1 for e in kernels if e["tid"] == 27) - n27_comm


@needs_shared
def test_deepseek_overlap_matches_readme(ds_report, ds_ref):
    g0 = by_device(ds_report)[0]
    assert g0["overlap_pct"] == pytest.approx(README_PCT, abs=0.5)
    assert g0["comm_us"] == pytest.approx(README_COMM_US, abs=100)
    # and exactly the independent computation
    assert g0["comm_us"] == us(ds_ref["comm_ns"])
    assert g0["comp_us"] == us(ds_ref["comp_ns"])
    assert g0["overlap_us"] == us(ds_ref["overlap_ns"])
    assert g0["exposed_comm_us"] == us(ds_ref["comm_ns"] - ds_ref["overlap_ns"])
    assert g0["overlap_pct"] == pytest.approx(100 * ds_ref["overlap_ns"] / ds_ref["comm_ns"],
                                              abs=0.006)


@needs_shared
def test_deepseek_hta_rule_sees_no_communication(ds_trace):
    hta = [Rule(COMM, r"^nccl|ncclKernel", "test")]
    g0 = by_device(analyze(ds_trace, hta))[0]
    assert g0["comm_us"] == 0
    assert g0["overlap_pct"] is None
    assert g0["overlap_us"] == 0
    assert g0["comp_us"] > 0


# --------------------------------------------------------------------------------------------
# 2. The same figure from rewritten variants of the DeepSeek file
# --------------------------------------------------------------------------------------------

def _plain_events():
    with open(DEEPSEEK) as f:
        data = json.load(f)
    return data, data["traceEvents"]


def _variant(kind: str, tmp_path: Path) -> Path:
    data, events = _plain_events()
    if kind == "bare":
        p = tmp_path / "bare.json"
        p.write_text(json.dumps(events))
    elif kind == "shuffled":
        random.Random(0).shuffle(events)
        p = tmp_path / "shuffled.json"
        p.write_text(json.dumps(data))
    elif kind == "gzip":
        p = tmp_path / "really_gzip.json"  # misleading name on purpose
        p.write_bytes(gzip.compress(json.dumps(data).encode(), mtime=0))
    elif kind == "float_us":
        base = 1740461000000000
        for e in events:
            if isinstance(e.get("ts"), int):
                e["ts"] = float(e["ts"] - base)
            if isinstance(e.get("dur"), int):
                e["dur"] = float(e["dur"])
        p = tmp_path / "float_us.json"
        text = json.dumps(data)
        assert re.search(r'"ts": \d{9}\.0\b', text)  # the file really has float µs
        p.write_text(text)
    else:
        raise AssertionError(kind)
    return p


@needs_shared
@pytest.mark.parametrize("kind", ["bare", "shuffled", "gzip", "float_us"])
def test_deepseek_overlap_survives_rewrites(kind, tmp_path, ds_report):
    g0 = by_device(ds_report)[0]
    got = by_device(analyze(load(str(_variant(kind, tmp_path)))))[0]
    assert got["overlap_pct"] == pytest.approx(g0["overlap_pct"], abs=0.01)
    assert got["comm_us"] == g0["comm_us"]
    assert got["comp_us"] == g0["comp_us"]
    assert got["overlap_us"] == g0["overlap_us"]


@needs_shared
def test_deepseek_overlap_of_trace_repeated_twice(tmp_path, ds_report):
    data, events = _plain_events()
    ts = [e["ts"] for e in events if isinstance(e.get("ts"), int)]
    shift = (max(ts) - min(ts)) + 1_000_000  # µs, beyond the span
    off = 10**8
    second = []
    for e in events:
        if e.get("ph") == "M":
            continue
        e2 = copy.deepcopy(e)
        if isinstance(e2.get("ts"), int):
            e2["ts"] += shift
        if e2.get("ph") in ("s", "f", "t") and "id" in e2:
            e2["id"] += off
        args = e2.get("args")
        if isinstance(args, dict):
            for k in ("correlation", "External id"):
                if isinstance(args.get(k), int):
                    args[k] += off
        second.append(e2)
    data["traceEvents"] = events + second
    p = tmp_path / "twice.json"
    p.write_text(json.dumps(data))
    g0 = by_device(ds_report)[0]
    twice = analyze(load(str(p)))
    got = by_device(twice)[0]
    assert got["overlap_pct"] == pytest.approx(g0["overlap_pct"], abs=0.5)
    assert got["comm_us"] == pytest.approx(2 * g0["comm_us"], rel=1e-3)
    assert got["comp_us"] == pytest.approx(2 * g0["comp_us"], rel=1e-3)
    # the offset correlation ids still join each copy's kernels to its own launches
    ref = next(a for a in ds_report["annotations"] if a["name"] == "attn(B)")
    row = next(a for a in twice["annotations"] if a["name"] == "attn(B)")
    assert row["count"] == 2 * ref["count"]
    assert row["kernels"] == 2 * ref["kernels"]
    assert row["gpu_us"] == pytest.approx(2 * ref["gpu_us"], rel=1e-9)


# --------------------------------------------------------------------------------------------
# 3. Independent overlap on the NCCL and RCCL traces
# --------------------------------------------------------------------------------------------

@needs_shared
@pytest.mark.parametrize("path", [NCCL, RCCL, SHARED / "hta_2rank" / "sampled_rank-1.json.gz"],
                         ids=["nccl", "rccl", "hta-rank1"])
def test_overlap_independent_nccl_rccl(path):
    events = read_events(path)
    names = sorted({e["name"] for e in gpu_work(events, ("kernel",))})
    mine = [COMM if nccl_rccl(n) else COMP for n in names]
    assert COMM in mine and COMP in mine
    # the default rules agree with "contains nccl/rccl" on every kernel name of this trace
    assert classify_names(names, DEFAULT_RULES).tolist() == mine
    ref = ref_device_figures(events, nccl_rccl)
    report = analyze(load(str(path)), DEFAULT_RULES)
    got = by_device(report)
    assert set(got) == set(ref)
    n_kernels = Counter(e["pid"] for e in gpu_work(events, ("kernel",)))
    for dev, r in ref.items():
        g = got[dev]
        tol = 0.001  # rounding to 3 decimals of µs is all the slack there is
        for key in ("comm", "comp", "overlap"):
            assert g[f"{key}_us"] == pytest.approx(r[f"{key}_ns"] / 1000, abs=tol), (dev, key)
        assert r["comm_ns"] > 0 and r["overlap_ns"] > 0 and n_kernels[dev] > 0
        assert g["overlap_pct"] == pytest.approx(100 * r["overlap_ns"] / r["comm_ns"], abs=0.006)
        assert g["exposed_comm_us"] == pytest.approx((r["comm_ns"] - r["overlap_ns"]) / 1000,
                                                     abs=tol)


# --------------------------------------------------------------------------------------------
# 4. Kernel table on the decode sample
# --------------------------------------------------------------------------------------------

def test_kernel_table_vs_groupby(decode_report, decode_events):
    _, report = decode_report
    groups: dict[str, list[int]] = defaultdict(list)
    cat_of: dict[str, str] = {}
    for e in gpu_work(decode_events):
        groups[e["name"]].append(to_ns(e["dur"]))
        cat_of[e["name"]] = e["cat"]
    table = {r["name"]: r for r in report["kernels"]}
    assert set(table) == set(groups)
    assert len(report["kernels"]) == len(groups)
    grand = sum(sum(d) for d in groups.values())
    for name, durs in groups.items():
        r = table[name]
        assert r["count"] == len(durs), name
        assert r["total_us"] == us(sum(durs)), name
        assert r["min_us"] == us(min(durs)), name
        assert r["max_us"] == us(max(durs)), name
        assert r["median_us"] == pytest.approx(statistics.median(durs) / 1000, abs=0.0006), name
        assert r["avg_us"] == pytest.approx(sum(durs) / len(durs) / 1000, abs=0.0006), name
        sd = statistics.stdev(durs) / 1000 if len(durs) > 1 else 0.0
        assert r["stddev_us"] == pytest.approx(sd, abs=0.0006, rel=1e-9), name
        assert r["pct"] == pytest.approx(100 * sum(durs) / grand, abs=0.0006), name
        if cat_of[name] != "kernel":
            assert r["class"] == "mem", name
    assert sum(r["pct"] for r in report["kernels"]) == pytest.approx(100, abs=0.01)
    totals = [r["total_us"] for r in report["kernels"]]
    assert totals == sorted(totals, reverse=True)
    # groups by short name add up
    assert sum(g["count"] for g in report["kernel_groups"]) == sum(map(len, groups.values()))


def test_short_names(decode_report):
    _, report = decode_report
    table = {r["name"]: r for r in report["kernels"]}
    dispatch = ("void deep_ep::internode_ll::dispatch<3, 10, 7168>(void*, float*, int*, long*, "
                "void*, int*, void*, void const*, long const*, int*, int*, int*, int, int, int, "
                "int, int, int, int, int)")
    assert table[dispatch]["short_name"] == "deep_ep::internode_ll::dispatch<…>"
    assert table["Memcpy HtoD (Pageable -> Device)"]["short_name"] == \
        "Memcpy HtoD (Pageable -> Device)"
    assert short_name("ncclDevKernel_AllReduce_Sum_bf16_RING_LL(ncclDevKernelArgsStorage<4096ul>)") \
        == "ncclDevKernel_AllReduce_Sum_bf16_RING_LL"
    assert short_name("Memset (Device)") == "Memset (Device)"
    assert short_name("rotary_kernel") == "rotary_kernel"


def test_wrappers_are_unwrapped_to_the_kernel_they_launch():
    """cutlass::device_kernel<K> and its kin are named by K, the name people use."""
    gemm = ("void cutlass::device_kernel<dpsk::grouped_gemm::cuda::fp8_dptp128c_acc::GemmKernel>"
            "(dpsk::grouped_gemm::cuda::fp8_dptp128c_acc::GemmKernel::Params)")
    attn = ("void cutlass::device_kernel<flash::FlashAttnBwd<flash::CollectiveMainloopBwd<2, "
            "cute::tuple<cute::C<1>, cute::C<1> >, cutlass::bfloat16_t, float>, "
            "flash::CollectiveEpilogueBwd<cute::tuple<cute::C<64> > > > >"
            "(flash::FlashAttnBwd<int>::Params)")
    k2 = "void cutlass::Kernel2<cutlass_80_tensorop_s16816gemm_relu_bf16_64x64_32x6_tn_align8>(Params)"
    two = "void cutlass::device_kernel<A, B>(int)"  # not a wrapper of one class: as it was
    assert short_name(gemm) == "dpsk::grouped_gemm::cuda::fp8_dptp128c_acc::GemmKernel"
    assert short_name(attn) == "flash::FlashAttnBwd<…>"
    assert short_name(k2) == "cutlass_80_tensorop_s16816gemm_relu_bf16_64x64_32x6_tn_align8"
    assert short_name(two) == "cutlass::device_kernel<…>"
    assert short_name("void cutlass::device_kernel<") == "cutlass::device_kernel<…>"
    assert short_name("void f<1, g<2, 3>, 4>(int)", keep_arguments=True) == "f<1, g<…>, 4>"


def test_display_names_never_read_alike():
    from tracetui.analysis.kernels import display_names

    names = ["void ns::dispatch<false, 8, false, 8>(int*)", "void ns::dispatch<false, 8, true, 8>(int*)",
             "void ns::k<1>(int)", "void ns::k<1>(float)", "rotary_kernel",
             "void cutlass::device_kernel<a::GemmKernel>(P)", "void cutlass::device_kernel<b::GemmKernel>(P)"]
    got = display_names(names)
    assert got == ["ns::dispatch<false, 8, false, 8>", "ns::dispatch<false, 8, true, 8>",
                   "ns::k<1> #1", "ns::k<1> #2", "rotary_kernel", "a::GemmKernel", "b::GemmKernel"]


# --------------------------------------------------------------------------------------------
# 5. Interval algebra: randomized against per-nanosecond sets
# --------------------------------------------------------------------------------------------

def _pts(ivs) -> set[int]:
    return {t for s, e in ivs for t in range(s, e)}


def _pairs(x) -> list[tuple[int, int]]:
    s, e = x
    return list(zip(np.asarray(s).tolist(), np.asarray(e).tolist()))


def _canonical(x) -> list[tuple[int, int]]:
    """The pairs of an interval set, checking it is sorted, disjoint, non-touching, non-empty."""
    s, e = x
    assert len(s) == len(e)
    p = _pairs(x)
    for a, b in p:
        assert a < b
    for (_, e0), (s1, _) in itertools.pairwise(p):
        assert e0 < s1, p
    return p


def _random_raw(rng: random.Random, n_max: int = 8, lo: int = 0, hi: int = 200):
    n = rng.randint(0, n_max)
    s, e = [], []
    for _ in range(n):
        a = rng.randint(lo, hi)
        b = a + rng.choice([-3, 0, 1, 1, 2, 5, 10, 30, 80]) if rng.random() < 0.9 else rng.randint(lo, hi)
        s.append(a)
        e.append(b)
    return np.array(s, np.int64), np.array(e, np.int64)


def _random_set(rng):
    return iv.union(*_random_raw(rng))


def test_union_random():
    rng = random.Random(1)
    for _ in range(400):
        s, e = _random_raw(rng, n_max=12)
        got = _canonical(iv.union(s, e))
        assert _pts(got) == _pts(zip(s.tolist(), e.tolist()))
        assert iv.total(iv.union(s, e)) == len(_pts(got))


def test_intersect_subtract_random():
    rng = random.Random(2)
    for _ in range(400):
        a, b = _random_set(rng), _random_set(rng)
        pa, pb = _pts(_pairs(a)), _pts(_pairs(b))
        assert _pts(_canonical(iv.intersect(a, b))) == pa & pb
        # a set itself (sorted, apart), whichever of the two has more intervals
        for x, y in ((a, b), (b, a)):
            s, e = iv.intersect(x, y)
            assert (s[1:] > e[:-1]).all() and (e > s).all()
            assert _pts(_pairs((s, e))) == pa & pb
        assert _pts(_canonical(iv.subtract(a, b))) == pa - pb
        assert _pts(_canonical(iv.subtract(b, a))) == pb - pa


def test_coverage_random():
    rng = random.Random(3)
    for _ in range(300):
        sets = [_random_set(rng) for _ in range(rng.randint(1, 5))]
        counts = Counter(t for x in sets for t in _pts(_pairs(x)))
        for k in range(1, len(sets) + 2):
            got = _pts(_canonical(iv.coverage(sets, k)))
            assert got == {t for t, c in counts.items() if c >= k}, (k, [_pairs(x) for x in sets])


def test_clip_random():
    rng = random.Random(4)
    for _ in range(400):
        a = _random_set(rng)
        t0, t1 = rng.randint(-10, 210), rng.randint(-10, 210)
        got = _pts(_canonical(iv.clip(a, t0, t1)))
        assert got == {t for t in _pts(_pairs(a)) if t0 <= t < t1}, (_pairs(a), t0, t1)


def test_cover_within_and_before_random():
    rng = random.Random(5)
    for _ in range(400):
        a, w = _random_set(rng), _random_set(rng)
        pa = _pts(_pairs(a))
        c = iv.Cover(a)
        assert c.total == len(pa)
        assert c.within(w) == len(pa & _pts(_pairs(w)))
        assert iv.total_within(a, w) == len(pa & _pts(_pairs(w)))
        ts = [rng.randint(-5, 210) for _ in range(6)]
        assert c.before(np.array(ts, np.int64)).tolist() == [sum(1 for t in pa if t < x) for x in ts]


def test_interval_edge_cases():
    E = iv.EMPTY
    one = iv.union(np.array([5]), np.array([9]))
    assert _pairs(iv.union(np.array([3, 7]), np.array([7, 10]))) == [(3, 10)]  # touching merge
    assert _pairs(iv.union(np.array([3]), np.array([3]))) == []
    assert _pairs(iv.intersect(one, E)) == [] and _pairs(iv.intersect(E, one)) == []
    assert _pairs(iv.subtract(one, E)) == [(5, 9)] and _pairs(iv.subtract(E, one)) == []
    assert _pairs(iv.coverage([], 1)) == [] and _pairs(iv.clip(E, 0, 10)) == []
    assert iv.Cover(E).within(one) == 0 and iv.Cover(one).within(E) == 0
    # touching sets do not overlap
    a = iv.union(np.array([0]), np.array([5]))
    b = iv.union(np.array([5]), np.array([8]))
    assert _pairs(iv.intersect(a, b)) == []
    # large int64 nanoseconds stay exact (absolute ns near 1.7e18)
    big = 1_740_461_679_471_346_123
    x = iv.union(np.array([big, big + 7]), np.array([big + 5, big + 20]))
    assert _pairs(x) == [(big, big + 5), (big + 7, big + 20)] and iv.total(x) == 18


# --------------------------------------------------------------------------------------------
# 6. Rules
# --------------------------------------------------------------------------------------------

def test_comm_option_rules_come_first():
    rules = load_rules(comm=["my_kernel"])
    assert rules[0].origin == "--comm" and rules[0].cls == COMM
    assert list(rules[1:]) == list(DEFAULT_RULES)
    assert classify_names(["my_kernel_v2", "other_kernel"], rules).tolist() == [COMM, COMP]
    # first match wins: a --comm rule overrides the built-in get_dispatch_layout exception
    name = "void deep_ep::internode::get_dispatch_layout<256, 32, 8>(long const*)"
    assert classify_names([name], DEFAULT_RULES).tolist() == [COMP]
    assert classify_names([name], load_rules(comm=["get_dispatch"])).tolist() == [COMM]


def test_config_file_replace(tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_text('[classify]\ncomm = ["^foo_xfer", "bar"]\ncomp = ["bar_local"]\nreplace = true\n')
    rules = load_rules(config=str(cfg))
    assert [(r.cls, r.pattern) for r in rules] == [(COMP, "bar_local"), (COMM, "^foo_xfer"),
                                                    (COMM, "bar")]
    names = ["foo_xfer_kernel", "my_bar", "bar_local_reduce", "ncclKernel_AllReduce_RING_LL",
             "void deep_ep::intranode::dispatch<8>(int)", "x_foo_xfer"]
    assert classify_names(names, rules).tolist() == [COMM, COMM, COMP, COMP, COMP, COMP]


def test_config_file_without_replace(tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_text('[classify]\ncomm = ["my_a2a"]\ncomp = ["nccl_local_thing"]\n')
    rules = load_rules(comm=["cli_x"], config=str(cfg))
    assert [r.origin for r in rules[:3]] == ["--comm", str(cfg), str(cfg)]
    assert list(rules[3:]) == list(DEFAULT_RULES)
    names = ["cli_x", "my_a2a_v1", "nccl_local_thing", "ncclKernel_AllGather", "gemm"]
    assert classify_names(names, rules).tolist() == [COMM, COMM, COMP, COMM, COMP]


def test_config_replace_must_be_a_boolean(tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_text('[classify]\ncomm = ["my_a2a"]\nreplace = "false"\n')
    try:
        rules = load_rules(config=str(cfg))
    except TraceError as e:  # refusing it is fine too
        assert "\n" not in str(e)
        return
    assert list(rules[1:]) == list(DEFAULT_RULES)


def test_default_config_path_is_read(tmp_path, monkeypatch):
    cfg = tmp_path / "default.toml"
    cfg.write_text('[classify]\ncomm = ["zzz"]\nreplace = true\n')
    monkeypatch.setattr(rules_mod, "CONFIG_PATH", str(cfg))
    assert [r.pattern for r in load_rules()] == ["zzz"]


@pytest.mark.parametrize("kwargs", [{"comm": ["(unclosed"]}, {"comm": ["ok", "[z-a]"]}])
def test_bad_regex_is_one_line_trace_error(kwargs):
    with pytest.raises(TraceError) as ei:
        load_rules(**kwargs)
    msg = str(ei.value)
    assert msg and "\n" not in msg
    assert "regex" in msg


def test_bad_regex_in_config(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[classify]\ncomm = ["a(b"]\n')
    with pytest.raises(TraceError) as ei:
        load_rules(config=str(cfg))
    assert "\n" not in str(ei.value) and "a(b" in str(ei.value)


def test_bad_config_files(tmp_path):
    with pytest.raises(TraceError) as ei:
        load_rules(config=str(tmp_path / "missing.toml"))
    assert "\n" not in str(ei.value) and "missing.toml" in str(ei.value)
    bad = tmp_path / "bad.toml"
    bad.write_text("[classify\ncomm = 3\n")
    with pytest.raises(TraceError) as ei:
        load_rules(config=str(bad))
    assert "\n" not in str(ei.value)
    wrong = tmp_path / "wrong.toml"
    wrong.write_text("[classify]\ncomm = [1, 2]\n")
    with pytest.raises(TraceError):
        load_rules(config=str(wrong))


@pytest.mark.parametrize("name,cls", [
    ("void deep_ep::internode::get_dispatch_layout<256, 32, 8>(long const*, int*)", COMP),
    ("void dpsk::ep::cuda::get_dispatch_layout<256, 32, 8>(long const*, int*)", COMP),
    ("void deep_ep::intranode::dispatch<8, 768, 8192>(int4*, float*)", COMM),
    ("void deep_ep::internode_ll::combine<3, 10, 7168, 9>(void*)", COMM),
    ("void dpsk::ep::internode::cached_notify<false>(int, int)", COMM),
    ("void vllm::cross_device_reduce_1stage<__nv_bfloat16, 8>(vllm::RankData*)", COMM),
    ("void multimem_all_reduce_kernel<float>(float*)", COMM),
    ("ncclDevKernel_SendRecv(ncclDevKernelArgsStorage<4096ul>)", COMM),
    ("ncclKernel_AllReduce_RING_LL_Sum_float(ncclDevComm*, unsigned long, ncclWork*)", COMM),
    ("void at::native::reduce_kernel<512, 1, at::native::ReduceOp<float>>(float)", COMP),
    ("void cuda::per_token_cast_to_fp8_with_channels<__nv_bfloat16, 128>(int)", COMP),
    ("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64", COMP),
])
def test_default_rules(name, cls):
    assert classify_names([name], DEFAULT_RULES).tolist() == [cls]


# --------------------------------------------------------------------------------------------
# 7. Per annotation on DeepSeek
# --------------------------------------------------------------------------------------------

DS_PHASES = ["dispatch(F)", "dispatch(B)", "combine(F)", "combine(B)", "attn(F)", "attn(B)",
             "attn(W)", "mlp(F)", "mlp(B)", "mlp(W)", "ProfilerStep#1", "1F1B"]


@pytest.fixture(scope="module")
def ds_launch_ref(ds_events):
    """GPU work joined to the runtime call that launched it: (pid, launch ts ns, dur ns, dev)."""
    launch = {}
    for e in ds_events:
        if e.get("ph") == "X" and e.get("cat") in ("cuda_runtime", "cuda_driver"):
            c = e.get("args", {}).get("correlation")
            if c is not None:
                assert c not in launch, f"duplicate correlation {c}"
                launch[c] = e
    out = []
    for e in gpu_work(ds_events):
        c = e.get("args", {}).get("correlation")
        if c in launch:
            src = launch[c]
            out.append((src["pid"], src["tid"], to_ns(src["ts"]), to_ns(e["dur"]), e["pid"]))
    return out


@needs_shared
@pytest.mark.parametrize("name", DS_PHASES)
def test_deepseek_annotation_rows(name, ds_events, ds_report, ds_ref, ds_launch_ref):
    occ = [e for e in ds_events if e.get("ph") == "X" and e.get("cat") == "user_annotation"
           and e["name"] == name]
    assert occ
    rows = [a for a in ds_report["annotations"] if a["name"] == name and a["source"] == "cpu"]
    assert len(rows) == 1, rows
    row = rows[0]
    assert row["count"] == len(occ)
    win = ref_union((to_ns(e["ts"]), to_ns(e["ts"]) + to_ns(e["dur"])) for e in occ)
    assert row["span_us"] == us(ref_total(win))
    assert row["total_us"] == us(sum(to_ns(e["dur"]) for e in occ))
    # the CPU-time reading: the device's communication inside the annotation's time ranges
    # (the by-launch figures are checked in test_attribution.py)
    comm = ref_total(ref_intersect(ds_ref["comm"], win))
    both = ref_total(ref_intersect(ds_ref["both"], win))
    assert row["window_comm_us"] == us(comm)
    assert row["window_exposed_comm_us"] == us(comm - both)
    if comm:
        assert row["window_overlap_pct"] == pytest.approx(100 * both / comm, abs=0.006)
    # GPU time of the work launched (by any thread of the process) inside an occurrence
    pids = {e["pid"] for e in occ}
    inside = [(tid, d, dev) for pid, tid, t, d, dev in ds_launch_ref
              if pid in pids and any(to_ns(o["ts"]) <= t < to_ns(o["ts"]) + to_ns(o["dur"])
                                     for o in occ)]
    assert row["gpu_us"] == us(sum(d for _, d, _ in inside))
    assert row["kernels"] == len(inside)
    assert row["devices"] == sorted({dev for _, _, dev in inside})


@needs_shared
def test_deepseek_attn_b_kernels_come_from_autograd_thread(ds_events, ds_report, ds_launch_ref):
    """The fact the brief insists on: attn(B)'s kernels are launched by tid 2571 while tid 1166
    is inside attn(B); a thread-only mapping would miss them."""
    occ = [e for e in ds_events if e.get("cat") == "user_annotation" and e["name"] == "attn(B)"]
    assert {(e["pid"], e["tid"]) for e in occ} == {(1166, 1166)}
    inside = [(tid, d) for pid, tid, t, d, _ in ds_launch_ref
              if pid == 1166 and any(to_ns(o["ts"]) <= t < to_ns(o["ts"]) + to_ns(o["dur"])
                                     for o in occ)]
    from_2571 = sum(d for tid, d in inside if tid == 2571)
    from_1166 = sum(d for tid, d in inside if tid == 1166)
    assert from_2571 > 0
    row = next(a for a in ds_report["annotations"] if a["name"] == "attn(B)")
    assert row["gpu_us"] == us(from_2571 + from_1166)
    assert row["gpu_us"] > us(from_1166)
    for a in ds_report["annotations"]:
        assert a["source"] in ("cpu", "gpu", "none")
    assert [a["name"] for a in ds_report["annotations"] if a["source"] == "none"] == \
        ["(no phase)"]


# --------------------------------------------------------------------------------------------
# 8. Streams: busy time per GPU lane
# --------------------------------------------------------------------------------------------

def test_stream_busy_time_decode(decode_report, decode_events):
    _, report = decode_report
    per: dict[tuple[int, int], list] = defaultdict(list)
    for e in gpu_work(decode_events):
        s = to_ns(e["ts"])
        per[(e["pid"], e["tid"])].append((s, s + to_ns(e["dur"])))
    gpu = {(s["device"], s["stream"]): s for s in report["streams"] if s["kind"] == "gpu"}
    assert set(gpu) == set(per)
    for key, pairs in per.items():
        u = ref_union(pairs)
        assert gpu[key]["busy_us"] == us(ref_total(u)), key
        assert gpu[key]["slices"] == len(pairs), key
        gaps = [b[0] - a[1] for a, b in itertools.pairwise(u)]
        assert gpu[key]["idle_gaps"] == len(gaps), key
        assert gpu[key]["idle_us"] == us(sum(gaps)), key
        assert gpu[key]["largest_gap_us"] == us(max(gaps, default=0)), key


def test_decode_overlap_independent(decode_report, decode_events):
    """The decode sample's overlap, the default rules expressed by hand (DeepEP + NCCL names)."""
    _, report = decode_report
    names = {e["name"] for e in gpu_work(decode_events, ("kernel",))}

    def is_comm(n: str) -> bool:
        return ("deep_ep::internode_ll::" in n or "deep_ep::intranode::" in n
                or re.search(r"deep_ep::internode::(?!get_dispatch_layout)", n) is not None
                or nccl_rccl(n))

    assert classify_names(sorted(names), DEFAULT_RULES).tolist() == \
        [COMM if is_comm(n) else COMP for n in sorted(names)]
    ref = ref_device_figures(decode_events, is_comm)
    got = by_device(report)
    for dev, r in ref.items():
        assert got[dev]["comm_us"] == us(r["comm_ns"])
        assert got[dev]["comp_us"] == us(r["comp_ns"])
        assert got[dev]["overlap_us"] == us(r["overlap_ns"])


# --------------------------------------------------------------------------------------------
# Small synthetic traces for the boundaries the real traces never hit
# --------------------------------------------------------------------------------------------

def _kineto(tmp_path: Path, events: list[dict], name: str = "synthetic.json") -> Path:
    meta = [{"ph": "M", "name": "process_name", "pid": 0, "args": {"name": "GPU 0"}},
            {"ph": "M", "name": "process_labels", "pid": 0, "args": {"labels": "GPU 0"}},
            {"ph": "M", "name": "process_name", "pid": 100, "args": {"name": "python"}},
            {"ph": "M", "name": "process_name", "pid": 200, "args": {"name": "other"}}]
    p = tmp_path / name
    p.write_text(json.dumps({"schemaVersion": 1, "traceEvents": meta + events}))
    return p


def _launch(pid, tid, ts, corr):
    return {"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": pid, "tid": tid,
            "ts": ts, "dur": 3, "args": {"correlation": corr, "External id": corr}}


def _gpu(name, stream, ts, dur, corr, cat="kernel"):
    return {"ph": "X", "cat": cat, "name": name, "pid": 0, "tid": stream, "ts": ts, "dur": dur,
            "args": {"device": 0, "stream": stream, "correlation": corr, "External id": corr}}


def _ann(name, pid, tid, ts, dur):
    return {"ph": "X", "cat": "user_annotation", "name": name, "pid": pid, "tid": tid,
            "ts": ts, "dur": dur, "args": {}}


def test_annotation_launch_boundaries_and_stream_union(tmp_path):
    nccl = "ncclDevKernel_AllReduce_Sum_f32_RING_LL(ncclDevKernelArgsStorage<4096ul>)"
    events = [
        _ann("phase", 100, 1, 1000, 1000),                                   # [1000, 2000) µs
        _launch(100, 2, 1000, 1), _gpu("gemm_a", 7, 1010, 100, 1),           # at start: in
        _launch(100, 2, 1100, 2), _gpu("gemm_b", 7, 1050, 100, 2),           # overlaps gemm_a
        _launch(100, 2, 1500, 3), _gpu(nccl, 20, 1500, 300, 3),              # comm, in
        _launch(100, 1, 1200, 4), _gpu("Memcpy HtoD (Pageable -> Device)", 7, 1300, 10, 4,
                                       cat="gpu_memcpy"),                    # memory, in
        _launch(100, 1, 2000, 5), _gpu("gemm_c", 7, 2005, 100, 5),           # at end: out
        _launch(200, 5, 1500, 6), _gpu("gemm_d", 7, 1600, 50, 6),            # other process: out
        _launch(100, 2, 999, 7), _gpu("gemm_e", 20, 1900, 200, 7),           # before: out
    ]
    rep = analyze(load(str(_kineto(tmp_path, events))), DEFAULT_RULES)
    row = next(a for a in rep["annotations"] if a["name"] == "phase")
    assert row["source"] == "cpu" and row["count"] == 1
    assert row["kernels"] == 4
    assert row["gpu_us"] == 100 + 100 + 300 + 10
    assert row["devices"] == [0]
    # by launch: its comm is the nccl kernel [1500,1800), its comp gemm a,b = [1010,1150);
    # the overlap is against all computation of the device: gemm_d [1600,1650) runs under
    # the nccl kernel (gemm_e [1900,2100) starts after it ends)
    assert (row["comm_us"], row["comp_us"], row["overlap_us"]) == (300, 140, 50)
    assert row["exposed_comm_us"] == 250 and row["overlap_pct"] == round(100 * 50 / 300, 2)
    # the CPU-time reading: the device's comm inside [1000, 2000), and what hides it there
    assert (row["window_comm_us"], row["window_exposed_comm_us"]) == (300, 250)
    # the same through the independent helpers
    ref = ref_device_figures(events, nccl_rccl)[0]
    g0 = by_device(rep)[0]
    assert (g0["comm_us"], g0["comp_us"], g0["overlap_us"]) == (
        us(ref["comm_ns"]), us(ref["comp_ns"]), us(ref["overlap_ns"]))
    assert g0["comp_us"] == 140 + 50 + 205  # [1010,1150) [1600,1650) [1900,2105)
    # overlapping kernels on one stream count once in its busy time
    s7 = next(s for s in rep["streams"] if s["kind"] == "gpu" and s["stream"] == 7)
    assert s7["busy_us"] == 140 + 10 + 50 + 100
    assert s7["slices"] == 5
    k = {r["name"]: r for r in rep["kernels"]}
    assert k[nccl]["class"] == "comm" and k["Memcpy HtoD (Pageable -> Device)"]["class"] == "mem"


OVERLAP_BUG = ("annotations.annotation_table sums the launches of every occurrence, so a kernel "
               "launched inside two overlapping occurrences of one name is counted twice")


@pytest.mark.parametrize("occurrences", [
    [(1, 0, 5000), (1, 1000, 1000)],   # nested in itself on one thread
    [(1, 0, 5000), (2, 1000, 1000)],   # the autograd thread inside the main thread's
], ids=["nested", "two-threads"])
def test_annotation_occurrences_that_overlap_count_each_kernel_once(tmp_path, occurrences):
    """Occurrences of one name that overlap in time: a kernel launched inside both belongs to
    the name once (the window is their union; so is the set of kernels)."""
    events = [_ann("step", 100, tid, ts, dur) for tid, ts, dur in occurrences] + [
        _launch(100, 2, 1500, 1), _gpu("gemm_a", 7, 1500, 100, 1),   # inside both occurrences
        _launch(100, 1, 3000, 2), _gpu("gemm_b", 7, 3000, 40, 2),    # inside the outer only
    ]
    rep = analyze(load(str(_kineto(tmp_path, events))), DEFAULT_RULES)
    row = next(a for a in rep["annotations"] if a["name"] == "step")
    assert row["count"] == 2 and row["span_us"] == 5000 and row["total_us"] == 6000
    assert (row["kernels"], row["gpu_us"]) == (2, 140)


def _gpu_ann(name, stream, ts, dur):
    return {"ph": "X", "cat": "gpu_user_annotation", "name": name, "pid": 0, "tid": stream,
            "ts": ts, "dur": dur, "args": {"device": 0, "stream": stream}}


def test_gpu_annotation_rows_decode(decode_report, decode_events):
    """GPU-side annotations: gpu_us = each stream's busy time inside that stream's occurrences."""
    _, report = decode_report
    busy: dict[tuple, list] = defaultdict(list)
    for e in gpu_work(decode_events):
        s = to_ns(e["ts"])
        busy[(e["pid"], e["tid"])].append((s, s + to_ns(e["dur"])))
    busy = {k: ref_union(v) for k, v in busy.items()}
    occ: dict[str, dict[tuple, list]] = defaultdict(lambda: defaultdict(list))
    for e in decode_events:
        if e.get("ph") == "X" and e.get("cat") == "gpu_user_annotation":
            s = to_ns(e["ts"])
            occ[e["name"]][(e["pid"], e["tid"])].append((s, s + to_ns(e["dur"])))
    rows = {a["name"]: a for a in report["annotations"] if a["source"] == "gpu"}
    assert set(rows) == set(occ)
    for name, per in occ.items():
        want = sum(ref_total(ref_intersect(busy.get(k, []), ref_union(w))) for k, w in per.items())
        assert rows[name]["gpu_us"] == us(want), name
        assert rows[name]["count"] == sum(map(len, per.values())), name
        assert rows[name]["kernels"] is None
        assert rows[name]["devices"] == sorted({k[0] for k in per})


def test_gpu_annotation_counts_each_stream_inside_its_own_occurrences(tmp_path):
    events = [
        _gpu_ann("phase", 7, 0, 100), _gpu("gemm_a", 7, 10, 50, 1),       # stream 7: 50 µs inside
        _gpu_ann("phase", 24, 500, 100), _gpu("gemm_b", 24, 510, 20, 2),  # stream 24: 20 µs inside
        _gpu("gemm_c", 7, 500, 50, 3),     # stream 7 during stream 24's "phase": not phase's work
    ]
    rep = analyze(load(str(_kineto(tmp_path, events))), DEFAULT_RULES)
    row = next(a for a in rep["annotations"] if a["name"] == "phase" and a["source"] == "gpu")
    assert row["count"] == 2
    assert row["gpu_us"] == 50 + 20


def test_collective_names_need_a_word_start():
    names = {"small_reduce_kernel": COMP, "smallreduce": COMP, "installgather": COMP,
             "oneShotAllReduceKernel": COMM, "all_to_all_kernel": COMM, "AllGather": COMM,
             "ReduceScatter": COMM, "SendRecv": COMM}
    got = classify_names(list(names), DEFAULT_RULES).tolist()
    assert got == list(names.values())
