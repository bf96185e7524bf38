"""DeepSeek's decode as it really runs (issue 16): CUDA graphs, low-latency all-to-all in flight
on 0 SMs, phases from the kernel sequence.

The figures are checked against a reference computed here from the raw JSON with plain
interval arithmetic: the send/receive split written from the documented rule, and the
in-flight time counted by a sweep (transfers in flight = sends ended − receives started, plus
those already in flight when the window opened), not by pairing — it must agree with the
first-in-first-out pairing of the code under test, whatever the matching.
"""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from tracetui.analysis.graphs import Graphs
from tracetui.analysis.inflight import in_flight_spans, split
from tracetui.analysis.phases import phase_blocks
from tracetui.analysis.report import analyze
from tracetui.analysis.rules import DEFAULT_RULES, classify, in_flight_patterns, load_rules
from tracetui.trace import load

from conftest import loaded
from reference import ref_intersect, ref_subtract, ref_total, ref_union  # tests/reference.py

ROOT = Path(__file__).resolve().parent.parent
DECODE = ROOT / "sample_traces" / "decode.json"
PREFILL = ROOT / "sample_traces" / "prefill.json.gz"
KERNEL_CATS = {"kernel", "Kernel"}


# ---------------------------------------------------------------------------- reference


def events(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return json.load(f)["traceEvents"]


def is_comm(name: str) -> bool:
    """DeepEP/DeepSeek transport kernels and NCCL, written for these samples."""
    return bool(re.search(r"(?<![A-Za-z])(?:deep_ep|dpsk)::ep::(?:intranode|internode)", name)
                or re.search(r"(?<![A-Za-z])deep_ep::internode_ll::", name)
                or name.startswith("nccl"))


def is_low_latency(name: str) -> bool:
    return "_ll<" in name or "internode_ll::" in name


class Ref:
    """The decode figures from the raw events (integer µs → ns from the trace start)."""

    def __init__(self, evs: list[dict]) -> None:
        ts = [e["ts"] for e in evs if isinstance(e.get("ts"), (int, float))]
        self.t0 = min(ts)
        self.end = max(e["ts"] + e.get("dur", 0) for e in evs
                       if isinstance(e.get("ts"), (int, float))) - self.t0
        self.t0_ns, self.end_ns = 0, round(self.end * 1000)
        self.kernels = [e for e in evs if e.get("ph") == "X" and e.get("cat") in KERNEL_CATS]
        per = defaultdict(lambda: {"comm": [], "comp": []})
        for k in self.kernels:
            s = round((k["ts"] - self.t0) * 1000)
            e = s + round(k["dur"] * 1000)
            per[k["pid"]]["comm" if is_comm(k["name"]) else "comp"].append((s, e))
        self.comm = {d: ref_union(v["comm"]) for d, v in per.items()}
        self.comp = {d: ref_union(v["comp"]) for d, v in per.items()}

    def sends_and_receives(self) -> dict[tuple, tuple[list, list]]:
        """Per (device, name): the sends' ends and the receives' starts (ns), by the rule:
        sorted by duration, the largest neighbour ratio (>= 2) splits short from long."""
        groups = defaultdict(list)
        for k in self.kernels:
            if is_comm(k["name"]) and is_low_latency(k["name"]):
                groups[(k["pid"], k["name"])].append(k)
        out = {}
        for key, ks in groups.items():
            durs = sorted(max(k["dur"] * 1000, 1) for k in ks)
            if len(durs) < 2:
                continue
            best, cut = 0.0, None
            for a, b in zip(durs, durs[1:]):
                if b / a > best:
                    best, cut = b / a, a
            if best < 2:
                continue
            sends, recvs = [], []
            for k in ks:
                s = round((k["ts"] - self.t0) * 1000)
                if max(k["dur"] * 1000, 1) <= cut:
                    sends.append(s + round(k["dur"] * 1000))
                else:
                    recvs.append(s)
            out[key] = (sends, recvs)
        return out

    def in_flight_raw(self, device) -> list[tuple]:
        """Where at least one transfer is in flight: a sweep over sends' ends (+1) and
        receives' starts (−1), starting with as many in flight as receives would otherwise
        take the count below zero (their sends were before the window)."""
        pieces = []
        for (dev, _name), (sends, recvs) in self.sends_and_receives().items():
            if dev != device:
                continue
            marks = sorted([(t, +1) for t in sends] + [(t, -1) for t in recvs],
                           key=lambda m: (m[0], m[1]))
            run, low = 0, 0
            for _, d in marks:
                run += d
                low = min(low, run)
            n, prev = -low, self.t0_ns
            for t, d in marks:
                if n > 0 and t > prev:
                    pieces.append((prev, t))
                n += d
                prev = t
            if n > 0 and self.end_ns > prev:
                pieces.append((prev, self.end_ns))
        return ref_union(pieces)

    def figures(self, device) -> tuple[int, int]:
        """(in-flight ns outside communication kernels, the part while computation runs)."""
        flight = ref_subtract(self.in_flight_raw(device), self.comm.get(device, []))
        return ref_total(flight), ref_total(ref_intersect(flight, self.comp.get(device, [])))


def write_events(tmp_path: Path, evs: list[dict], name: str = "t.json") -> Path:
    p = tmp_path / name
    with open(DECODE, encoding="utf-8") as f:
        top = json.load(f)
    top["traceEvents"] = evs
    p.write_text(json.dumps(top), encoding="utf-8")
    return p


def report_of(path: Path, **kw) -> dict:
    tr = load(str(path))
    return analyze(tr, kw.get("rules", DEFAULT_RULES))


# ---------------------------------------------------------------------------- the sample


def test_decode_sample_is_shaped_as_published():
    """One line, one graph launch whose correlation most kernels carry, the low-latency
    kernels on the compute stream 7, an H800 of 132 SMs, world size 128."""
    text = DECODE.read_text(encoding="utf-8")
    assert "\n" not in text
    top = json.loads(text)
    assert top["distributedInfo"]["world_size"] == 128
    assert {d["numSms"] for d in top["deviceProperties"]} == {132}
    evs = top["traceEvents"]
    launches = [e for e in evs if e.get("name") == "cudaGraphLaunch"]
    assert len(launches) == 1
    corr = launches[0]["args"]["correlation"]
    kernels = [e for e in evs if e.get("cat") == "kernel"]
    graph = [k for k in kernels if k["args"]["correlation"] == corr]
    assert len(graph) > 0.9 * len(kernels) - 40 and len(graph) > 500
    ll = [k for k in kernels if is_low_latency(k["name"])]
    assert ll and {k["tid"] for k in ll} == {7}
    assert all(isinstance(e["ts"], int) and e["ts"] > 1.7e15 for e in evs if "ts" in e)
    # the window opens while a dispatch is in flight: the first dispatch kernel is a long
    # receive, and dispatches are an odd number
    disp = sorted((k for k in ll if "dispatch_ll" in k["name"]), key=lambda k: k["ts"])
    assert len(disp) % 2 == 1 and disp[0]["dur"] > 2 * disp[1]["dur"]


def test_in_flight_equals_the_reference_on_the_decode_sample():
    ref = Ref(events(DECODE))
    flight, hidden = ref.figures(0)
    r = report_of(DECODE)
    o = r["overlap"][0]
    assert o["in_flight_us"] == pytest.approx(flight / 1000, abs=1e-3)
    assert o["in_flight_hidden_us"] == pytest.approx(hidden / 1000, abs=1e-3)
    assert o["in_flight_overlap_pct"] == pytest.approx(100 * hidden / flight, abs=0.01)
    assert o["in_flight_exposed_us"] == pytest.approx((flight - hidden) / 1000, abs=1e-3)
    # the kernel figures stay what interval algebra says: one stream, never overlapped
    comm = ref_total(ref.comm[0])
    assert o["comm_us"] == pytest.approx(comm / 1000, abs=1e-3)
    assert o["overlap_us"] == 0 and o["overlap_pct"] == 0
    assert 80 < o["in_flight_overlap_pct"] < 95  # mostly hidden: the point of the profile
    # one transfer was in flight when the window opened: its span starts at the trace start
    first = [s for s in r["in_flight"] if not s["send_seen"]]
    assert len(first) == 1 and first[0]["start_us"] == 0 and first[0]["transfer"] == "dispatch"


@pytest.mark.parametrize("cut", ["open", "close", "both"])
@pytest.mark.parametrize("at", [0.13, 0.37, 0.61, 0.88])
def test_in_flight_survives_a_window_cut_mid_transfer(tmp_path, cut, at):
    """The profile starts (or ends) at other instants: every cut between a send and its
    receive still gives the reference's figures (what a window cut leaves is clipped to it)."""
    evs = events(DECODE)
    ks = sorted(e["ts"] for e in evs if e.get("cat") == "kernel")
    t = ks[int(at * len(ks))]
    keep = []
    for e in evs:
        ts = e.get("ts")
        if not isinstance(ts, (int, float)) or e.get("ph") == "M":
            keep.append(e)
            continue
        if cut in ("open", "both") and ts < t - (3000 if cut == "both" else 0):
            continue
        if cut in ("close", "both") and ts >= t + (3000 if cut == "both" else 0):
            continue
        keep.append(e)
    if cut != "close":  # the metadata keep the old start: they move with the window
        lo = min(e["ts"] for e in keep if e.get("ph") == "X")
        for e in keep:
            if e.get("ph") == "M":
                e["ts"] = lo
    p = write_events(tmp_path, keep)
    ref = Ref(events(p))
    flight, hidden = ref.figures(0)
    o = report_of(p)["overlap"][0]
    assert o["in_flight_us"] == pytest.approx(flight / 1000, abs=1e-3)
    assert o["in_flight_hidden_us"] == pytest.approx(hidden / 1000, abs=1e-3)


def test_pairing_can_be_turned_off_and_extended(tmp_path):
    off = analyze(load(str(DECODE)), load_rules(no_in_flight=True, config=str(_no_config(tmp_path))))
    assert off["overlap"][0]["in_flight_us"] == 0 and off["in_flight"] == []
    assert off["overlap"][0]["in_flight_overlap_pct"] is None
    # the kernel figures do not depend on it
    on = report_of(DECODE)
    assert off["overlap"][0]["comm_us"] == on["overlap"][0]["comm_us"]
    # renamed kernels are found again with --in-flight
    evs = events(DECODE)
    for e in evs:
        if e.get("cat") == "kernel" and is_low_latency(e["name"]):
            e["name"] = e["name"].replace("dispatch_ll", "lowlat_send_recv_a2a") \
                                 .replace("combine_ll", "lowlat_send_recv_b2b")
    p = write_events(tmp_path, evs)
    plain = analyze(load(str(p)), load_rules(config=str(_no_config(tmp_path))))
    assert plain["overlap"][0]["in_flight_us"] == 0
    rules = load_rules(in_flight=[r"lowlat_send_recv"], config=str(_no_config(tmp_path)))
    got = analyze(load(str(p)), rules)
    assert got["overlap"][0]["in_flight_us"] == on["overlap"][0]["in_flight_us"]
    r = subprocess.run([sys.executable, "-m", "tracetui", "summary", str(DECODE), "--json",
                        "--no-in-flight"], capture_output=True, text=True)
    assert r.returncode == 0 and json.loads(r.stdout)["overlap"][0]["in_flight_us"] == 0


def _no_config(tmp_path: Path) -> Path:
    p = tmp_path / "empty.toml"
    p.write_text("", encoding="utf-8")
    return p


def test_whole_transfers_are_not_paired():
    """Low-latency kernels that each do a whole transfer take about as long: no split."""
    assert split(np.array([50_000, 62_000, 55_000, 71_000, 48_000])) is None
    assert split(np.array([60_000])) is None
    s = split(np.array([18_000, 60_000, 17_000, 80_000, 19_000, 250_000]))
    assert s is not None and s.tolist() == [True, False, True, False, True, False]


def test_in_flight_spans_are_clipped_and_on_the_device():
    tr = load(str(DECODE))
    classes = classify(tr, DEFAULT_RULES)
    sp = in_flight_spans(tr, classes, in_flight_patterns(DEFAULT_RULES))
    assert len(sp) and (sp.start >= 0).all() and (sp.end <= tr.end_ns).all()
    assert (sp.end > sp.start).all() and set(sp.device.tolist()) == {0}
    names = {tr.strings[int(n)] for n in sp.name.tolist()}
    assert names and all(is_low_latency(n) for n in names)


def test_prefill_has_no_low_latency_kernels_and_cub_is_computation():
    r = report_of(PREFILL)
    assert all(o["in_flight_us"] == 0 for o in r["overlap"])
    cub = [k for k in r["kernels"] if "cdpsk::ep::CUB_" in k["name"]]
    assert cub and all(k["class"] == "comp" for k in cub)
    deepep = [k for k in r["kernels"] if re.match(r"void dpsk::ep::internode::", k["name"])]
    assert deepep and all(k["class"] == "comm" for k in deepep)


# ---------------------------------------------------------------------------- graphs


def test_graphs_equal_the_reference():
    evs = events(DECODE)
    ts0 = min(e["ts"] for e in evs if isinstance(e.get("ts"), (int, float)))
    by_corr = defaultdict(list)
    for e in evs:
        if e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset"):
            by_corr[(e["pid"], e["args"]["correlation"])].append(e)
    runtime = {e["args"]["correlation"]: e for e in evs if e.get("cat") == "cuda_runtime"}
    want = []
    for (dev, corr), ks in by_corr.items():
        if len(ks) < 2:
            continue
        s = [k["ts"] for k in ks]
        e = [k["ts"] + k["dur"] for k in ks]
        launch = runtime.get(corr)
        want.append({"device": dev, "correlation": corr, "kernels": len(ks),
                     "gpu_us": float(ref_total(ref_union(zip(s, e)))),
                     "span_us": float(max(e) - min(s)),
                     "launch": launch["name"] if launch else None,
                     "start_us": float(launch["ts"] - ts0) if launch else None,
                     "first_kernel_delay_us": float(min(s) - launch["ts"]) if launch else None})
    want.sort(key=lambda g: min(k["ts"] for k in by_corr[(g["device"], g["correlation"])]))
    got = report_of(DECODE)["graphs"]
    assert got == want
    assert [g["launch"] for g in got] == [None, "cudaGraphLaunch"]  # one before the window
    assert got[1]["kernels"] > 700


def test_a_graph_launched_inside_an_annotation_is_said_to_be_held_by_its_launch(tmp_path):
    """An annotation around the cudaGraphLaunch owns the whole replay by CPU time alone:
    graph_kernels says so."""
    evs = events(DECODE)
    launch = next(e for e in evs if e.get("name") == "cudaGraphLaunch")
    evs.append({"ph": "X", "cat": "user_annotation", "name": "decode_step", "pid": launch["pid"],
                "tid": launch["tid"], "ts": launch["ts"] - 2, "dur": launch["dur"] + 4,
                "args": {}})
    p = write_events(tmp_path, evs)
    rows = {a["name"]: a for a in report_of(p)["annotations"]}
    a = rows["decode_step"]
    corr = launch["args"]["correlation"]
    n = sum(1 for e in evs if e.get("cat") == "kernel" and e["args"]["correlation"] == corr)
    assert a["graph_kernels"] == n == a["kernels"]
    out = subprocess.run([sys.executable, "-m", "tracetui", "summary", str(p)],
                         capture_output=True, text=True, env={"COLUMNS": "200", **_env()})
    assert "CUDA graph replays by the launch's CPU time alone" in out.stdout


def _env() -> dict:
    import os
    return {k: v for k, v in os.environ.items() if k != "COLUMNS"}


def test_graph_index_of_kernels_and_launches():
    tr = load(str(DECODE))
    g = Graphs(tr)
    big = max(g.graphs, key=lambda x: len(x.kernels))
    assert g.of_launch(big.launch) is big
    starts = tr.start[big.kernels]
    assert (np.diff(starts) >= 0).all()
    for pos in (0, 7, len(big.kernels) - 1):
        got, p = g.of_kernel(int(big.kernels[pos]))
        assert got is big and p == pos
    assert g.of_kernel(big.launch) is None and g.of_launch(int(big.kernels[0])) is None


# ---------------------------------------------------------------------------- phases


def test_decode_phases_come_from_the_kernel_sequence():
    tr = load(str(DECODE))
    classes = classify(tr, DEFAULT_RULES)
    blocks = phase_blocks(tr, classes)
    assert blocks and all(b["source"] == "kernels" for b in blocks)
    comm = sorted((b for b in blocks if b["class"] == "comm"), key=lambda b: b["end_us"])
    assert comm and all(b["sms"] == 0 for b in comm)
    assert {b["name"].split(":")[1] for b in comm} == {"dispatch", "combine"}
    # micro-batches alternate in the order the transfers' data arrives
    assert [b["group"] for b in comm] == [f"mb{i % 2}" for i in range(len(comm))]
    # each block is one in-flight span: its busy time is the reference's, outside kernels
    ref = Ref(events(DECODE))
    raw = ref.in_flight_raw(0)
    total = sum(b["busy_us"] for b in comm)
    flight, _ = ref.figures(0)
    assert ref_total(raw) >= flight
    assert total == pytest.approx(flight / 1000, rel=0.02)  # spans of one kind can touch
    comp = [b for b in blocks if b["class"] == "comp"]
    assert {b["name"].split(":")[1] for b in comp} >= {"attn", "experts"}
    # a computation block hides the other micro-batch's transfer
    for b in comp:
        over = [(min(c["end_us"], b["end_us"]) - max(c["start_us"], b["start_us"]), c)
                for c in comm]
        best = max(over, key=lambda x: x[0])
        if best[0] > 0:
            assert b["group"] != best[1]["group"]


def _summary_phases(path: Path) -> str:
    out = subprocess.run([sys.executable, "-m", "tracetui", "summary", str(path), "--phases"],
                         capture_output=True, text=True, env={"COLUMNS": "160", **_env()})
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_summary_phases_reads_deepseeks_rows():
    dec = _summary_phases(DECODE)
    assert "Computation (132 SMs)" in dec and "Communication (0 SMs)" in dec
    assert "[mb0:" in dec and "[mb1:" in dec
    assert "from the kernel sequence" in dec
    pre = _summary_phases(PREFILL)
    assert set(re.findall(r"Computation \((\d+) SMs\)", pre)) == {"108"}
    assert set(re.findall(r"Communication \((\d+) SMs\)", pre)) == {"24"}
    assert pre.count("GPU 0\n") == pre.count("GPU 1\n") == 1


def test_summary_explains_kernel_time_and_transfers_in_flight():
    out = subprocess.run([sys.executable, "-m", "tracetui", "summary", str(DECODE)],
                         capture_output=True, text=True, env={"COLUMNS": "200", **_env()})
    r = report_of(DECODE)["overlap"][0]
    lines = out.stdout.splitlines()
    k = [ln for ln in lines if "GPU 0 kernels:" in ln]
    f = [ln for ln in lines if "GPU 0 in flight:" in ln]
    assert len(k) == 1 and len(f) == 1
    assert f"{r['in_flight_overlap_pct']:.1f} % hidden" in f[0]
    assert "CUDA graphs: 2 replays" in out.stdout


# ---------------------------------------------------------------------------- the app


async def _loaded(app, pilot) -> None:
    await loaded(app, pilot, analyses=True)


async def test_every_graph_kernel_is_reachable_from_its_launch_and_back():
    """``]`` on the cudaGraphLaunch goes to the graph's first kernel, then steps through all
    of them in start order; ``[`` on any of them goes back to the launch. The detail pane
    says which kernel of how many it is."""
    from tracetui.app.app import TraceApp

    evs = events(DECODE)
    launch = next(e for e in evs if e.get("name") == "cudaGraphLaunch")
    corr = launch["args"]["correlation"]
    want = sorted(((e["ts"], e["dur"]) for e in evs
                   if e.get("cat") == "kernel" and e["args"]["correlation"] == corr))
    app = TraceApp(str(DECODE))
    async with app.run_test(size=(120, 40)) as pilot:
        await _loaded(app, pilot)
        tr, tl = app.trace, app.timeline
        lrow = int(np.flatnonzero(tr.name == tr.strings.find("cudaGraphLaunch"))[0])
        tl.select(lrow, reveal=True)
        await pilot.pause()
        assert "launched a CUDA graph: " + f"{len(want):,} kernels" in \
            app.query_one("#detail").plain
        seen = []
        for i in range(len(want)):
            # the key for the first and last kernels; in between its action, as the key
            # binding calls it (a key press waits for the screen: ~60 ms each)
            if i < 24 or i >= len(want) - 8:
                await pilot.press("right_square_bracket")
            else:
                app.action_flow(1)
            seen.append(tl.selected)
            if i in (0, 1, len(want) - 1):
                text = app.query_one("#detail").plain
                assert f"kernel {i + 1:,} of {len(want):,} of the CUDA graph launched at" in text
        t0 = min(e["ts"] for e in evs if isinstance(e.get("ts"), (int, float)))
        got = [((int(tr.start[r]) // 1000) + t0, int(tr.dur[r]) // 1000) for r in seen]
        assert got == want and len(set(seen)) == len(want)
        await pilot.press("right_square_bracket")  # past the last: stays, says so
        assert tl.selected == seen[-1]
        for r in (seen[0], seen[len(seen) // 2], seen[-1]):
            tl.select(r)
            await pilot.press("left_square_bracket")
            assert tl.selected == lrow
        # a kernel of the replay that began before the window: no launch to go to
        early = app.analyses.graphs.graphs[0]
        assert early.launch < 0
        tl.select(int(early.kernels[2]))
        await pilot.pause()
        assert "launched before the trace began" in app.query_one("#detail").plain
        await pilot.press("left_square_bracket")
        assert tl.selected == int(early.kernels[2])


async def test_in_flight_row_overlap_view_and_range():
    """The transfers in flight have their own row under the GPU (a hatch, not blocks), a
    line in the overlap view's heatmap and its bin figures, and figures in a marked range."""
    from tracetui.app.app import TraceApp
    from tracetui.app.views import Heatmap, OverlapScreen

    ref = Ref(events(DECODE))
    app = TraceApp(str(DECODE))
    async with app.run_test(size=(120, 40)) as pilot:
        await _loaded(app, pilot)
        tl = app.timeline
        rows = [r.kind for r in tl.rows]
        assert "in_flight" in rows
        k = rows.index("in_flight")
        strip = tl.render_line(k + 1 - int(tl.scroll_offset.y))
        text = "".join(seg.text for seg in strip)
        assert text.startswith("GPU 0 in flight") and ("░" in text or "▒" in text)
        assert not any(ch in text for ch in "▁▂▃▄▅▆▇█")  # never drawn as a kernel
        # a marked range: the in-flight figures inside it equal the reference's, clipped
        tl.set_window(2_000_000, 5_000_000)
        await pilot.press("m")
        for _ in range(100):
            if app.range_stats is not None:
                break
            await pilot.pause(0.05)
        d = app.range_stats["devices"][0]
        flight = ref_subtract(ref.in_flight_raw(0), ref.comm[0])
        inside = ref_intersect(flight, [(2_000_000, 5_000_000)])
        hid = ref_intersect(inside, ref.comp[0])
        assert d["in_flight_us"] == pytest.approx(ref_total(inside) / 1000, abs=1e-3)
        assert d["in_flight_hidden_us"] == pytest.approx(ref_total(hid) / 1000, abs=1e-3)
        assert "in flight" in app.query_one("#detail").plain
        await pilot.press("o")
        for _ in range(100):
            if isinstance(app.screen, OverlapScreen):
                break
            await pilot.pause(0.05)
        hm = app.screen.query_one(Heatmap)
        await pilot.pause()
        lines = ["".join(s.text for s in hm.render_line(y)) for y in range(hm.lines())]
        assert any(ln.startswith("in flight") for ln in lines)
        assert "in flight" in hm.info().plain


async def test_phase_view_shows_the_kernel_sequence_blocks():
    from tracetui.app.app import TraceApp
    from tracetui.app.phaseview import PhaseScreen

    app = TraceApp(str(DECODE))
    async with app.run_test(size=(120, 40)) as pilot:
        await _loaded(app, pilot)
        await pilot.press("p")
        for _ in range(200):
            if isinstance(app.screen, PhaseScreen):
                break
            await pilot.pause(0.05)
        scr = app.screen
        assert isinstance(scr, PhaseScreen)
        names = {r["name"] for r in scr.rows}
        assert {"mb0:dispatch", "mb1:dispatch", "mb0:combine", "mb1:combine"} <= names
        from tracetui.app.phaseview import PhaseMap
        pm = scr.query_one(PhaseMap)
        lines = ["".join(s.text for s in pm.render_line(y)) for y in range(4)]
        assert any(ln.startswith("Computation (132 SMs)") for ln in lines)
        assert any(ln.startswith("Communication (0 SMs)") for ln in lines)
        # a kernel-sequence row goes to its first block on the timeline
        row = next(i for i, r in enumerate(scr.rows) if r["name"] == "mb0:dispatch")
        first = scr.rows[row]["first"]
        app.goto_range(int(first[0] * 1000), int(first[1] * 1000))
        await pilot.pause()
        assert app.range == (int(first[0] * 1000), int(first[1] * 1000))


@pytest.mark.parametrize("seed", range(12))
def test_fifo_pairing_matches_a_plain_queue(seed):
    """The vectorised first-in-first-out pairing against a queue walked in Python, on
    random send/receive sequences (receives with no send, sends left over)."""
    from tracetui.analysis.inflight import _fifo

    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 40))
    sends = rng.random(n) < 0.5
    s = np.cumsum(rng.integers(1_000, 50_000, n)).astype(np.int64)
    d = np.where(sends, 18_000, 60_000).astype(np.int64)
    s = s + np.cumsum(d) - d  # one stream: each starts after the one before ends
    r = np.arange(100, 100 + n, dtype=np.int64)
    end = int(s[-1] + d[-1] + 10_000)
    want, queue = [], []
    for k in range(n):
        if sends[k]:
            queue.append(k)
        elif queue:
            j = queue.pop(0)
            if s[k] > s[j] + d[j]:
                want.append((r[j], r[k], s[j] + d[j], s[k]))
        elif s[k] > 0:
            want.append((-1, r[k], 0, s[k]))
    want += [(r[j], -1, s[j] + d[j], end) for j in queue if s[j] + d[j] < end]
    got = _fifo(r, s, d, sends, 0, 5, end)
    assert sorted(map(tuple, got[:, 2:].tolist())) == sorted(tuple(map(int, w)) for w in want)


# ---------------------------------------------------------------------------- odd inputs


def _ll_trace(tmp_path: Path, kernels: list[tuple], props=None, name="odd.json") -> Path:
    """kernels: (pid, ts µs, dur µs, name suffix) on stream 7."""
    evs = [{"ph": "X", "cat": "kernel", "name": f"void dpsk::ep::internode::dispatch_ll<{n}>(int)",
            "pid": pid, "tid": 7, "ts": ts, "dur": dur,
            "args": {"correlation": i + 1, "stream": 7}} for i, (pid, ts, dur, n) in
           enumerate(kernels)]
    evs += [{"ph": "X", "cat": "kernel", "name": "void gemm_kernel(int)", "pid": 0, "tid": 7,
             "ts": 1000 + 300 * k, "dur": 100, "args": {"correlation": 9000 + k, "device": 0}}
            for k in range(3)]
    top = {"traceEvents": evs}
    if props is not None:
        top["deviceProperties"] = props
    p = tmp_path / name
    p.write_text(json.dumps(top), encoding="utf-8")
    return p


@pytest.mark.parametrize("ident", ["x", None, [0], 1e300, True])
def test_odd_device_properties_do_not_break_the_phases(tmp_path, ident):
    p = _ll_trace(tmp_path, [(0, 0, 18, 1), (0, 100, 60, 1), (0, 300, 18, 1), (0, 500, 60, 1)],
                  props=[{"id": ident, "numSms": 132}, {"id": 0, "numSms": "many"}])
    for args in (["--phases"], ["--phases", "--json"]):
        r = subprocess.run([sys.executable, "-m", "tracetui", "summary", str(p), *args],
                           capture_output=True, text=True)
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr


def test_kernels_on_no_known_device_are_never_paired(tmp_path):
    p = _ll_trace(tmp_path, [("gpuA", 0, 5, 1), ("gpuB", 50, 60, 1), ("gpuA", 200, 5, 1),
                             ("gpuB", 300, 60, 1)])
    r = report_of(p)
    assert r["in_flight"] == [] and all(not g["device"] < 0 for g in r["graphs"])


def test_graph_records_are_capped_and_counted_and_their_unions_exact(tmp_path):
    """Many replays: graphs[] holds the first 1,000, graph_replays says how many; the GPU
    time of each (made for all graphs at once) is its kernels' union."""
    evs = []
    for g in range(1500):
        for k in range(3):  # overlapping kernels on two streams
            evs.append({"ph": "X", "cat": "kernel", "name": f"k{k}", "pid": 0, "tid": 7 + k % 2,
                        "ts": 1000 * g + 10 * k, "dur": 15 + k,
                        "args": {"correlation": g + 1, "device": 0, "stream": 7 + k % 2}})
    p = tmp_path / "graphs.json"
    p.write_text(json.dumps({"traceEvents": evs}), encoding="utf-8")
    r = report_of(p)
    assert r["graph_replays"] == 1500 and len(r["graphs"]) == 1000
    by = defaultdict(list)
    for e in evs:
        by[e["args"]["correlation"]].append((e["ts"], e["ts"] + e["dur"]))
    for g in r["graphs"][:50] + r["graphs"][-5:]:
        want = ref_total(ref_union(by[g["correlation"]]))
        assert g["gpu_us"] == want and g["kernels"] == 3 and g["launch"] is None
    out = subprocess.run([sys.executable, "-m", "tracetui", "summary", str(p)],
                         capture_output=True, text=True, env={"COLUMNS": "200", **_env()})
    assert "CUDA graphs: 1,500 replays, 3,000 kernels in the first 1,000" in out.stdout


def test_one_graph_of_one_kernel_reads_in_the_singular(tmp_path):
    evs = [{"ph": "X", "cat": "cuda_runtime", "name": "cudaGraphLaunch", "pid": 1, "tid": 1,
            "ts": 0, "dur": 5, "args": {"correlation": 7}},
           {"ph": "X", "cat": "kernel", "name": "k", "pid": 0, "tid": 7, "ts": 10, "dur": 5,
            "args": {"correlation": 7, "device": 0, "stream": 7}}]
    p = tmp_path / "one.json"
    p.write_text(json.dumps({"traceEvents": evs}), encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "tracetui", "summary", str(p)],
                         capture_output=True, text=True, env={"COLUMNS": "200", **_env()})
    assert "CUDA graphs: 1 replay, 1 kernel; the largest: 1 kernel by one cudaGraphLaunch" \
        in out.stdout


def test_the_text_diagram_is_cut_with_a_note_when_it_would_be_endless():
    from tracetui.analysis.phases import MAX_SEGMENTS, diagram_lines

    blocks = [{"name": f"mb{k % 2}:attn", "group": f"mb{k % 2}", "class": cls, "device": 0,
               "start_us": 100.0 * k + (50 if cls == "comm" else 0),
               "end_us": 100.0 * k + (90 if cls == "comm" else 45), "busy_us": 40.0,
               "sms": 0 if cls == "comm" else 132} for k in range(20_000)
              for cls in ("comp", "comm")]
    lines = diagram_lines(blocks, 160)
    assert sum(1 for ln in lines if ln.startswith("Computation")) == MAX_SEGMENTS
    assert lines[-2].startswith("… ") and "more" in lines[-2]
    assert max(len(ln) for ln in lines) <= 160


def test_a_phase_that_holds_a_graph_replay_says_so(tmp_path):
    """A repeating annotation around the cudaGraphLaunch owns the replay by that call's CPU
    time alone: its block counts the graph's kernels, and --phases says so."""
    evs = events(DECODE)
    launch = next(e for e in evs if e.get("name") == "cudaGraphLaunch")
    other = next(e for e in evs if e.get("name") == "cudaLaunchKernel")
    for e in (launch, other):
        evs.append({"ph": "X", "cat": "user_annotation", "name": "step", "pid": e["pid"],
                    "tid": e["tid"], "ts": e["ts"] - 1, "dur": e["dur"] + 2, "args": {}})
    p = write_events(tmp_path, evs)
    blocks = analyze(load(str(p)), DEFAULT_RULES, blocks=True)["phases"]
    corr = launch["args"]["correlation"]
    n = sum(1 for e in evs if e.get("cat") == "kernel" and e["args"]["correlation"] == corr)
    assert sum(b["graph_kernels"] for b in blocks if b["name"] == "step") == n
    assert {b["source"] for b in blocks} == {"annotation"}
    out = _summary_phases(p)
    assert f"hold CUDA graph kernels ({n:,}) by their launch's CPU time alone" in out
