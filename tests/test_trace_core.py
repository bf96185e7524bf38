"""The loader and index against independent computations on the sample and real traces."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from tracetui.trace import LANE_CPU, LANE_GPU, LANE_GPU_ANNOTATION, Loader, TraceError, load
from tracetui.trace.source import GzipStream, Source
from tracetui.trace.depth import _depth_stack, compute_depth

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_traces"
SHARED = ROOT.parent / "shared" / "traces"
DECODE = SAMPLES / "annotated.json"
PREFILL = SAMPLES / "prefill.json.gz"
CPU = SAMPLES / "cpu_torch.json"
ALL_SAMPLES = [DECODE, PREFILL, CPU]

needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/traces not present")


def read_json(path: Path, exact: bool = False):
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    data = json.loads(raw, parse_float=Decimal if exact else float)
    return data["traceEvents"] if isinstance(data, dict) else data


def us_ns(v) -> int:
    return int((Decimal(v) if not isinstance(v, Decimal) else v) * 1000)


# ----------------------------------------------------------------------------- package rules


def test_core_imports_no_ui():
    code = ("import sys, tracetui.trace, tracetui.analysis, tracetui.analysis.facts; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('textual', 'rich')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


# ----------------------------------------------------------------------------- samples


@pytest.mark.parametrize("path", ALL_SAMPLES, ids=lambda p: p.name)
def test_sample_counts_match_json(path):
    events = read_json(path)
    tr = load(str(path))
    non_meta = [e for e in events if e.get("ph") != "M"]
    assert tr.events == len(non_meta)
    assert tr.slice_count == sum(1 for e in events if e.get("ph") == "X")
    assert not tr.truncated and tr.warnings == []
    # every slice lies inside the trace span
    assert tr.start.min() == 0 or tr.inst_ts.min(initial=1) == 0
    assert (tr.start + tr.dur <= tr.end_ns).all()


@pytest.mark.parametrize("path", ALL_SAMPLES, ids=lambda p: p.name)
def test_timestamps_exact_to_the_nanosecond(path):
    """Every X slice's start and duration equal the file's value × 1000, exactly."""
    events = read_json(path, exact=True)
    tr = load(str(path))
    want = sorted((us_ns(e["ts"]), us_ns(e["dur"])) for e in events if e.get("ph") == "X")
    got = sorted(zip((tr.start + tr.t0_abs_ns).tolist(), tr.dur.tolist()))
    assert got == want


def test_decode_lanes_and_kinds():
    tr = load(str(DECODE))
    names = [ln.name for ln in tr.lanes]
    for stream in (7, 13, 24):
        assert f"GPU 0 · stream {stream}" in names
    assert "GPU 0 · stream 7 · annotations" in names
    kinds = [ln.kind for ln in tr.lanes]
    # GPU lanes first, each stream's annotations right after it
    first_cpu = kinds.index(LANE_CPU)
    assert all(k in (LANE_GPU, LANE_GPU_ANNOTATION) for k in kinds[:first_cpu])
    for i, ln in enumerate(tr.lanes):
        if ln.kind == LANE_GPU_ANNOTATION:
            assert tr.lanes[i - 1].name + " · annotations" == ln.name
    cpu = [ln for ln in tr.lanes if ln.kind == LANE_CPU and ln.count]
    assert {ln.tid for ln in cpu} >= {1166, 2571}


def test_kernel_fields_match_args():
    events = read_json(DECODE, exact=True)
    tr = load(str(DECODE))
    gpu = [e for e in events if e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset")]
    assert len(tr.kernels.slice) == len(gpu)
    by_key = {(us_ns(e["ts"]), e["args"]["correlation"]): e for e in gpu}
    for k, i in enumerate(tr.kernels.slice.tolist()):
        e = by_key[(int(tr.start[i]) + tr.t0_abs_ns, tr.correlation[i])]
        a = e["args"]
        assert tr.name_of(i) == e["name"]
        if e["cat"] == "kernel":
            assert tr.kernels.grid[k].tolist() == a["grid"]
            assert tr.kernels.block[k].tolist() == a["block"]
            assert tr.kernels.registers[k] == a["registers per thread"]
            assert tr.kernels.shared_memory[k] == a["shared memory"]
            assert tr.kernels.occupancy[k] == pytest.approx(float(a["est. achieved occupancy %"]))
            assert tr.kernels.blocks_per_sm[k] == pytest.approx(float(a["blocks per SM"]), 1e-6)
        if e["cat"] == "gpu_memcpy":
            assert tr.kernels.bytes[k] == a["bytes"]
            assert tr.kernels.bandwidth[k] == pytest.approx(float(a["memory bandwidth (GB/s)"]),
                                                            1e-6)
        assert tr.external_id[i] == a["External id"]


def test_launch_links_both_ways():
    events = read_json(DECODE, exact=True)
    runtime = {e["args"]["correlation"]: e for e in events
               if e.get("cat") in ("cuda_runtime", "cuda_driver") and "correlation" in e.get("args", {})}
    tr = load(str(DECODE))
    assert len(tr.launch_of) == len(tr.kernels.slice)
    for i in tr.kernels.slice.tolist():
        src = tr.launched_by(i)
        assert src >= 0
        want = runtime[tr.correlation[i]]
        assert tr.name_of(src) == want["name"]
        assert int(tr.start[src]) + tr.t0_abs_ns == us_ns(want["ts"])
        assert i in tr.launches(src).tolist()
        # the launch happens before the kernel starts
        assert tr.start[src] <= tr.start[i]


def test_ac2g_flows_link_launch_to_kernel():
    events = read_json(DECODE)
    starts = {e["id"] for e in events if e.get("ph") == "s" and e.get("cat") == "ac2g"}
    ends = {e["id"] for e in events if e.get("ph") == "f" and e.get("cat") == "ac2g"}
    tr = load(str(DECODE))
    assert len(tr.flow_src) == len(starts & ends)
    for s, d in zip(tr.flow_src.tolist(), tr.flow_dst.tolist()):
        assert tr.launched_by(d) == s  # the flow agrees with the correlation link


@pytest.mark.parametrize("path", ALL_SAMPLES, ids=lambda p: p.name)
def test_detail_args_are_reread_exactly(path):
    events = read_json(path, exact=True)
    xs = [e for e in events if e.get("ph") == "X"]
    tr = load(str(path))
    rng = np.random.default_rng(0)
    for i in rng.choice(tr.slice_count, size=min(60, tr.slice_count), replace=False).tolist():
        d = tr.detail(i)
        match = [e for e in xs if e["name"] == d["name"]
                 and us_ns(e["ts"]) == d["start_ns"] + tr.t0_abs_ns]
        assert match, d["name"]
        plain = [json.loads(json.dumps(e.get("args"), default=float)) for e in match]
        assert d["args"] in plain


def test_detail_args_with_tiny_pieces_and_fallback(tmp_path):
    """Pieces of 300 bytes (many cuts), and a layout with no newline at all (ijson only)."""
    events = read_json(DECODE)
    one_line = tmp_path / "oneline.json"
    one_line.write_text(json.dumps({"traceEvents": events}))
    for tr in (Loader(str(DECODE), piece_bytes=300).run(), load(str(one_line))):
        assert tr.events == sum(1 for e in events if e.get("ph") != "M")
        for i in range(0, tr.slice_count, max(1, tr.slice_count // 25)):
            raw = tr.raw_event(i)
            assert raw is not None and raw["name"] == tr.name_of(i)


# ----------------------------------------------------------------------------- queries


def _brute_busy(tr, lane, depth, t0, t1):
    total = 0
    for i in range(lane.lo, lane.hi):
        if tr.depth[i] != depth:
            continue
        s, e = int(tr.start[i]), int(tr.start[i] + tr.dur[i])
        total += max(0, min(e, t1) - max(s, t0))
    return total


@pytest.mark.parametrize("path", [DECODE, CPU], ids=lambda p: p.name)
def test_busy_matches_interval_arithmetic(path):
    tr = load(str(path))
    rng = np.random.default_rng(1)
    for lane in tr.lanes:
        if lane.count == 0:
            continue
        for depth in range(min(lane.max_depth, 3) + 1):
            for _ in range(8):
                t0, t1 = sorted(rng.integers(-1000, tr.end_ns + 1000, size=2).tolist())
                assert lane.busy(t0, t1, depth) == _brute_busy(tr, lane, depth, t0, t1)
            edges = np.linspace(0, tr.end_ns, 50).astype(np.int64)
            bins = lane.busy_bins(edges, depth)
            assert bins.sum() == _brute_busy(tr, lane, depth, 0, int(edges[-1]))
            assert (bins >= 0).all() and (bins <= np.diff(edges)).all()


def test_slices_in_matches_brute_force():
    tr = load(str(DECODE))
    rng = np.random.default_rng(2)
    for lane in tr.lanes:
        for _ in range(10):
            t0, t1 = sorted(rng.integers(0, tr.end_ns, size=2).tolist())
            got = set(lane.slices_in(t0, t1).tolist())
            want = {i for i in range(lane.lo, lane.hi)
                    if tr.start[i] < t1 and tr.start[i] + tr.dur[i] > t0}
            assert got == want


def test_depth_invariants_and_parents():
    tr = load(str(CPU))  # a real torch trace: some slices overlap without nesting
    for lane in tr.lanes:
        for d in range(lane.max_depth + 1):
            di = lane.depth_index(d)
            assert (di.starts[1:] >= di.ends[:-1]).all()  # no overlap within a depth
    # parents contain their children wherever slices nest properly
    lane = max(tr.lanes, key=lambda ln: ln.count)
    for i in range(lane.lo, lane.hi, 7):
        p = tr.parent_of(i)
        if p >= 0:
            assert tr.start[p] <= tr.start[i] < tr.start[p] + max(tr.dur[p], 1)


def test_compute_depth_equals_stack_on_random_forests():
    rng = np.random.default_rng(3)
    for _ in range(200):
        spans = []

        def grow(lo, hi, level, spans=spans):
            t = lo
            while t < hi and len(spans) < 400:
                d = int(rng.integers(0, max(1, (hi - t) // 3 + 1)))
                d = 0 if rng.random() < 0.1 else d
                spans.append((t, d))
                if d > 2 and level < 5:
                    grow(t, t + d, level + 1, spans)
                t += d + int(rng.integers(0, 3))

        grow(0, 100_000, 0)
        s = np.array([x[0] for x in spans], np.int64)
        d = np.array([x[1] for x in spans], np.int64)
        o = np.lexsort((-d, s))
        s, d = s[o], d[o]
        assert compute_depth(s, d).tolist() == _depth_stack(s, s + d).tolist()


# ----------------------------------------------------------------------------- progress


def test_progress_cancel_and_snapshots(tmp_path):
    big = tmp_path / "big.json"
    sys.path.insert(0, str(ROOT / "bench"))
    from make_big import make_big

    made = make_big(str(big), 8, str(DECODE))
    seen, snaps = [], []

    def progress(p):
        seen.append(p)
        if not p.done and len(snaps) < 3:
            snaps.append(loader.snapshot())

    loader = Loader(str(big), progress=progress, progress_interval=0.0, piece_bytes=256 << 10)
    tr = loader.run()
    assert seen[-1].done and seen[-1].bytes_done == made["bytes"]
    done = [p.bytes_done for p in seen]
    assert done == sorted(done)
    assert snaps and all(not s.complete for s in snaps)
    counts = [s.events for s in snaps] + [tr.events]
    assert counts == sorted(counts) and counts[0] < tr.events
    # a snapshot is a consistent index: its busy figures are within its own span
    s = snaps[-1]
    for ln in s.lanes:
        assert ln.busy(0, s.end_ns) <= s.end_ns

    # cancel from the progress callback: what was loaded is kept, with a warning
    def cancel_soon(p):
        if p.events > 1000:
            loader2.cancel()

    loader2 = Loader(str(big), progress=cancel_soon, progress_interval=0.0,
                     piece_bytes=256 << 10)
    part = loader2.run()
    assert not part.complete and 0 < part.events < tr.events
    assert any("cancelled" in w for w in part.warnings)


def test_progress_is_rate_limited(tmp_path):
    calls = []
    Loader(str(DECODE), progress=calls.append, piece_bytes=4096).run()
    assert 1 <= len(calls) <= 5  # a small file: well under a second, a few reports at most


def test_gzip_random_access_through_snapshots(tmp_path, monkeypatch):
    data = DECODE.read_bytes() * 3
    gz = tmp_path / "x.gz"
    gz.write_bytes(gzip.compress(data))
    monkeypatch.setattr(GzipStream, "SNAPSHOT_EVERY", 100_000)
    src = Source.open(str(gz))
    raw, stream = src.open_stream(record=True)
    while stream.read(65536):
        pass
    raw.close()
    assert len(src.snapshots) >= 3  # one per MB of output at most
    for off in (0, 1, 99_999, 150_000, 1_000_000, len(data) - 10):
        assert src.read_range(off, 5000) == data[off:off + 5000]


@pytest.mark.parametrize("inflater", ["zlib-ng", "system zlib"])
def test_gzip_reads_the_same_with_either_inflater(tmp_path, monkeypatch, inflater):
    """zlib-ng is used when installed; the system zlib otherwise: the same bytes, the same
    random access, and damage reported the same way."""
    import zlib

    from tracetui.trace import source

    if inflater == "system zlib":
        monkeypatch.setattr(source, "_zlib", zlib)
    else:
        pytest.importorskip("zlib_ng")
    monkeypatch.setattr(GzipStream, "SNAPSHOT_EVERY", 100_000)
    data = DECODE.read_bytes() * 3
    gz = tmp_path / "x.json.gz"
    gz.write_bytes(gzip.compress(data, 6) + gzip.compress(b" ", 1))  # two members
    src = Source.open(str(gz))
    raw, stream = src.open_stream(record=True)
    got = []
    while block := stream.read(65536):
        got.append(block)
    raw.close()
    assert b"".join(got) == data + b" "
    for off in (0, 123_456, len(data) - 10):
        assert src.read_range(off, 5000) == (data + b" ")[off:off + 5000]
    one = tmp_path / "one.json.gz"
    one.write_bytes(gzip.compress(DECODE.read_bytes(), 6))
    tr, plain = Loader(str(one), workers=1).run(), Loader(str(DECODE), workers=1).run()
    assert tr.events == plain.events and not tr.warnings
    assert np.array_equal(tr.start, plain.start) and np.array_equal(tr.name, plain.name)
    bad = bytearray(one.read_bytes())
    bad[len(bad) // 2 : len(bad) // 2 + 64] = bytes(64)  # the deflate data damaged mid-way
    (tmp_path / "bad.json.gz").write_bytes(bytes(bad))
    tr = Loader(str(tmp_path / "bad.json.gz"), workers=1).run()  # what came before the damage opens
    assert tr.warnings and 0 < tr.events < plain.events


# ----------------------------------------------------------------------------- real traces


@needs_shared
def test_deepseek_lanes():
    tr = load(str(SHARED / "deepseek_train.json"))
    names = [ln.name for ln in tr.lanes]
    for stream in (7, 23, 27):
        assert f"GPU 0 · stream {stream}" in names
    cpu_tids = {ln.tid for ln in tr.lanes if ln.kind == LANE_CPU and ln.count}
    assert {1166, 2571} <= cpu_tids
    events = read_json(SHARED / "deepseek_train.json")
    assert tr.events == sum(1 for e in events if e.get("ph") != "M")
    kernels = [e for e in events if e.get("cat") == "kernel"]
    assert sum(ln.count for ln in tr.lanes if ln.kind == LANE_GPU) == len(
        [e for e in events if e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset")])
    assert len(tr.launch_of) >= len(kernels)


@needs_shared
@pytest.mark.parametrize("name", sorted(p.name for p in SHARED.glob("*.json*"))
                         + ["hta_2rank/sampled_rank-0.json.gz", "hta_2rank/sampled_rank-1.json.gz"]
                         if SHARED.is_dir() else [])
def test_every_shared_trace_opens_or_is_refused(name):
    path = SHARED / name
    if name.startswith("not_a_trace"):
        with pytest.raises(TraceError, match="execution trace"):
            load(str(path))
        return
    tr = load(str(path))
    assert tr.events > 0
    if name.startswith("speedscope_unterminated"):
        assert tr.truncated and any("truncated at byte" in w for w in tr.warnings)
    else:
        assert not tr.truncated


@needs_shared
def test_kineto_2021_string_tids_merge_with_metadata():
    tr = load(str(SHARED / "kineto2021_resnet50.pt.trace.json.gz"))
    cpu = [ln for ln in tr.lanes if ln.kind == LANE_CPU and ln.count and ln.pid == 25738]
    assert {ln.tid for ln in cpu} == {25738, 25772}  # "25738" in events, 25738 in metadata
    assert all("(python)" in ln.name for ln in cpu)
    assert any(ln.kind == LANE_GPU and ln.name == "GPU 0 · stream 7" for ln in tr.lanes)


@needs_shared
def test_flow_v2_bind_ids():
    tr = load(str(SHARED / "perfetto_flow_v2.json"))
    pairs = {(tr.name_of(s), tr.name_of(d)) for s, d in zip(tr.flow_src, tr.flow_dst)}
    assert ("SenderB", "Blergh") in pairs
    assert ("SenderA", "OtherSlice") in pairs


@needs_shared
def test_unbalanced_b_e_pairs():
    events = read_json(SHARED / "catapult_flow_unbalanced.json")
    nb = sum(1 for e in events if e.get("ph") == "B")
    tr = load(str(SHARED / "catapult_flow_unbalanced.json"))
    assert tr.slice_count == nb  # every B is a slice, ended or not
    assert any("never ended" in w for w in tr.warnings)


# ----------------------------------------------------------------------------- CLI


def test_summary_json_keys(capsys):
    from tracetui.cli import main

    assert main(["summary", str(DECODE), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["events"] == load(str(DECODE)).events
    assert out["truncated"] is False and out["warnings"] == []
    lane = next(ln for ln in out["lanes"] if ln["name"] == "GPU 0 · stream 24")
    assert (lane["kind"], lane["pid"], lane["tid"], lane["device"], lane["stream"]) == (
        "gpu", 0, 24, 0, 24)
    assert lane["events"] == sum(1 for e in read_json(DECODE)
                                 if e.get("ph") == "X" and e.get("tid") == 24
                                 and e.get("cat") != "gpu_user_annotation")
    assert any(ln["kind"] == "counter" for ln in out["lanes"])


def test_summary_text_is_escaped(tmp_path, capsys):
    from tracetui.cli import main

    hostile = tmp_path / "h.json"
    hostile.write_text(json.dumps({"traceEvents": [
        {"ph": "X", "name": "k", "pid": 1, "tid": 1, "ts": 1, "dur": 2},
        {"ph": "M", "name": "thread_name", "pid": 1, "tid": 1,
         "args": {"name": "\x1b]52;c;aGk=\x07[red]x[/red]\x1b[2J"}}]}))
    assert main(["summary", str(hostile)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    # shown as text, not interpreted (a narrow lane column may cut the name's middle)
    assert "x[/red]" in out


def test_cli_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("this is not json")
    empty = tmp_path / "empty"
    empty.mkdir()
    for target in (bad, tmp_path / "missing.json", empty):
        out = subprocess.run([sys.executable, "-m", "tracetui", "summary", str(target)],
                             capture_output=True, text=True, env={**os.environ, "NO_COLOR": "1"})
        assert out.returncode == 2
        assert out.stderr.count("\n") == 1 and out.stderr.startswith("tracetui: error:")
        assert "Traceback" not in out.stderr


def test_damage_mid_file_hands_over_to_ijson_quickly(tmp_path, monkeypatch):
    """A damaged event in the middle: the events before it are kept, and the piece parser
    gives up after a bounded number of attempts instead of re-parsing an ever larger buffer."""
    import tracetui.trace.loader as loader_mod

    lines = [json.dumps({"ph": "X", "name": f"k{i}", "pid": 1, "tid": 1, "ts": i * 10,
                         "dur": 5}) for i in range(20000)]
    lines[12000] = '{"ph":"X","name":"broken","pid":1,"tid":1,"ts":1,"dur":1,,}'
    path = tmp_path / "damaged.json"
    path.write_text('{"traceEvents": [\n' + ",\n".join(lines) + "\n]}\n")
    calls = []
    real = loader_mod.decode_piece_in
    monkeypatch.setattr(loader_mod, "decode_piece_in",
                        lambda buf, end, exact: calls.append(end - 1) or real(buf, end, exact))
    tr = Loader(str(path), piece_bytes=16 << 10).run()
    assert tr.events == 12000 and tr.truncated
    assert any("JSON error" in w for w in tr.warnings)
    # the pieces before the damage, then at most _CUT_TRIES × _FAILED_READS failed attempts
    before = len(",\n".join(lines[:12000]))
    bound = before // (16 << 10) + 2 + loader_mod.CUT_TRIES * loader_mod.FAILED_READS
    assert len(calls) <= bound, (len(calls), bound)
    assert sum(calls) < 2 * path.stat().st_size


def test_lane_order_by_start_then_longest_first_matches_lexsort():
    """The per-lane sort (stable by start, then runs of equal starts by duration) is the
    (start, -dur) lexsort it replaces, ties kept in file order."""
    from tracetui.trace.index import _by_start_longest_first

    rng = np.random.default_rng(7)
    for _ in range(300):
        n = int(rng.integers(1, 300))
        s = rng.integers(0, 25, n).astype(np.int64)
        d = rng.integers(0, 4, n).astype(np.int64)
        o = np.lexsort((-d, s))
        idx, s2, d2 = _by_start_longest_first(np.arange(n, dtype=np.int32), s.copy(), d)
        assert idx.tolist() == o.tolist()
        assert s2.tolist() == s[o].tolist() and d2.tolist() == d[o].tolist()


# ----------------------------------------------------------------------------- index from a snapshot


class _NoFile:
    """An EventReader with nothing to re-read."""

    def event(self, row):
        return None

    def reread_problem(self):
        return None


def test_index_builds_from_a_hand_made_snapshot():
    """index.build needs no file: a snapshot written by hand (two threads, nested slices, a
    kernel launched by a runtime call, one B still open) gives lanes, depths, launch links and
    times that follow from the columns alone."""
    from tracetui.trace.builder import Snapshot
    from tracetui.trace.index import LoadFacts, build
    from tracetui.trace.strings import StringTable

    st = StringTable()
    names = {n: st.intern(n) for n in ("step", "aten::mm", "cudaLaunchKernel", "gemm", "open")}
    cat_cpu, cat_rt, cat_k = st.intern("cpu_op"), st.intern("cuda_runtime"), st.intern("kernel")
    i64, i32, u32 = np.int64, np.int32, np.uint32
    # lane 0: thread (1, 10); lane 1: GPU stream (0, 7); absolute ns from 5,000
    slices = {
        "lane": np.array([0, 0, 0, 1, 0], i32),
        "start": np.array([5_000, 6_000, 6_500, 9_000, 20_000], i64),
        "dur": np.array([10_000, 3_000, 1_000, 2_000, -1], i64),  # the last: an open B
        "name": np.array([names["step"], names["aten::mm"], names["cudaLaunchKernel"],
                          names["gemm"], names["open"]], i32),
        "cat": np.array([cat_cpu, cat_cpu, cat_rt, cat_k, cat_cpu], i32),
        "row": np.array([0, 1, 2, 3, 4], u32),
    }
    empty = {"lane": np.zeros(0, i32), "ts": np.zeros(0, i64), "name": np.zeros(0, i32),
             "cat": np.zeros(0, i32), "row": np.zeros(0, u32)}
    gpu = {"row": np.array([3], u32), **{k: np.array([v], dt) for k, v, dt in (
        ("gx", 8, i32), ("gy", 1, i32), ("gz", 1, i32), ("bx", 128, i32), ("by", 1, i32),
        ("bz", 1, i32), ("regs", 32, i32), ("smem", 0, i64), ("blocks_per_sm", 1, np.float32),
        ("warps_per_sm", 4, np.float32), ("occupancy", 50, np.float32), ("bytes", -1, i64),
        ("bandwidth", np.nan, np.float32))}}
    snap = Snapshot(
        slices=slices, open_b=1, instants=empty,
        counter_samples={"track": np.zeros(0, i32), "ts": np.zeros(0, i64),
                         "value": np.zeros(0, np.float64)},
        gpu=gpu, corr={"row": np.array([2, 3], u32), "value": np.array([77, 77], i64)},
        ext={"row": np.zeros(0, u32), "value": np.zeros(0, i64)},
        flows={"key": np.zeros(0, i64), "ts": np.zeros(0, i64), "lane": np.zeros(0, i32),
               "flags": np.zeros(0, np.int8), "enclosing": np.zeros(0, np.int8),
               "cat": np.zeros(0, i32)},
        lanes=[(1, 10, "", False, -1, -1), (0, 7, "", True, 0, 7)], counter_tracks=[],
        process_names={1: "trainer"}, process_labels={}, process_sort={},
        thread_names={(1, 10): "main"}, thread_sort={}, skipped={}, notes={}, events=5,
        phase_counts={"X": 4, "B": 1}, items=5, header={}, strings=st, extra_args={})
    tr = build(snap, _NoFile(), LoadFacts(path="hand", size=0, compressed=False, complete=True,
                                          truncated=False, warnings=[], bytes_read=0))
    assert [ln.name for ln in tr.lanes] == ["GPU 0 · stream 7", "trainer 1 · main"]
    assert tr.t0_abs_ns == 5_000 and tr.end_ns == 20_000 - 5_000 + 0  # the open B ends there
    cpu = tr.lanes[1]
    by_name = {tr.name_of(i): i for i in range(tr.slice_count)}
    depth = {n: int(tr.depth[i]) for n, i in by_name.items()}
    assert depth == {"step": 0, "aten::mm": 1, "cudaLaunchKernel": 2, "gemm": 0, "open": 0}
    assert tr.lane_of(by_name["gemm"]).index == 0 and cpu.count == 4
    assert tr.launched_by(by_name["gemm"]) == by_name["cudaLaunchKernel"]
    assert tr.start[by_name["aten::mm"]] == 1_000 and tr.dur[by_name["open"]] == 0
    assert tr.kernels.grid.tolist() == [[8, 1, 1]] and tr.kernels.slice.tolist() == [by_name["gemm"]]
    assert "1 B events never ended (shown up to the end of the trace)" in tr.warnings
    assert tr.detail(by_name["gemm"])["launched_by"][0]["name"] == "cudaLaunchKernel"


def test_compute_depth_with_zero_length_slices_follows_the_rule():
    """Zero-length slices among others (markers written as X): where the rule gives a
    proper nesting, the vectorised pass gives exactly the rule's depths, computed here one
    slice at a time: depth_i = i - (#{j: end_j <= start_i} - #{j >= i: start_j = start_i,
    dur_j = 0}) (a zero-length slice at i's start that sorts at or after i is not closed)."""
    rng = np.random.default_rng(7)
    checked = 0
    for _ in range(400):
        n = int(rng.integers(1, 50))
        # nested spans: children inside parents, some of length zero at a parent's start
        spans = []
        for _ in range(n):
            if spans and rng.random() < 0.7:
                ps, pd = spans[int(rng.integers(len(spans)))]
                cs = ps + int(rng.integers(0, pd + 1))
                cd = 0 if rng.random() < 0.35 else int(rng.integers(0, ps + pd - cs + 1))
            else:
                cs, cd = int(rng.integers(0, 100)), int(rng.integers(0, 20))
            spans.append((cs, cd))
        s = np.array([a for a, _ in spans], np.int64)
        d = np.array([b for _, b in spans], np.int64)
        o = np.lexsort((-d, s))
        s, d = s[o], d[o]
        e = s + d
        want = [i - (int((e <= s[i]).sum()) - sum(1 for j in range(i, n)
                                                   if s[j] == s[i] and d[j] == 0))
                for i in range(n)]
        proper = min(want) >= 0 and all(
            not (want[j] == want[k] and s[k] < e[j]) for j in range(n) for k in range(j + 1, n)
            if want[k] == want[j] and not any(want[m] == want[j] for m in range(j + 1, k)))
        if not proper:
            continue
        checked += 1
        assert compute_depth(s, d).tolist() == want
    assert checked > 100
