"""Issue 34 where users meet it: the kernel table's Tensor Core column, a communication
kernel's instances with their collective's size and bus bandwidth, the detail pane, the
operators' TFLOP/s and roofline %, ``summary``'s text and CSV, the config's ``[peaks]``, and
the rank view naming the rank that arrives last.

Every expectation is worked out by hand here from the trace this file writes (and, for the
roofline, from NVIDIA's H100 SXM datasheet: 989.4 dense BF16 TFLOP/s — 1,979 with sparsity —
and 3.35 TB/s), never from tracetui's own code.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import loaded, until
from tracetui.app.app import TraceApp
from tracetui.app.describe import describe_slice
from tracetui.app.grid import Grid
from tracetui.app.views import InstancesScreen, KernelScreen

CPU, TID, GPU = 100, 1, 0
GEMM = "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64_warpgroupsize1x1x1_" \
    "execute_segment_k_off_kernel__5x_cublas"
NCCL = "ncclDevKernel_AllReduce_Sum_bf16_RING_LL(ncclDevKernelArgsStorage<4096ul>)"
ELEMWISE = "void at::native::vectorized_elementwise_kernel<4, at::native::FillFunctor<float>>()"
M, N, K = 4096, 8192, 2048
GEMM_US = 200  # each mm's kernel
AR_NELEMS, AR_RANKS, AR_US = 25_000_000, 8, 500  # BFloat16: 50 MB in 500 µs


def _trace(start: int = 1_000_000, late_us: int = 0) -> dict[str, Any]:
    """Two steps; in each an aten::mm (bf16 [M,K] @ [K,N]) launching a Tensor Core GEMM, a
    fill kernel, and an all-reduce (record_param_comms) launching an NCCL kernel that
    starts ``late_us`` after the usual time (a late rank)."""
    ev: list[dict[str, Any]] = [
        {"ph": "M", "name": "process_name", "pid": GPU, "args": {"name": "GPU 0"}},
        {"ph": "M", "name": "process_name", "pid": CPU, "args": {"name": "python"}},
    ]
    corr = 0

    def launch(ts: int, name: str, dur: int, kts: int, stream: int) -> None:
        nonlocal corr
        corr += 1
        ev.append({"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": CPU,
                   "tid": TID, "ts": ts, "dur": 5, "args": {"correlation": corr}})
        ev.append({"ph": "X", "cat": "kernel", "name": name, "pid": GPU, "tid": stream,
                   "ts": kts, "dur": dur, "args": {"device": 0, "stream": stream,
                                                   "correlation": corr}})

    for step in range(2):
        t = start + step * 10_000
        ev.append({"ph": "X", "cat": "user_annotation", "name": f"ProfilerStep#{step}",
                   "pid": CPU, "tid": TID, "ts": t, "dur": 9_000, "args": {}})
        ev.append({"ph": "X", "cat": "cpu_op", "name": "aten::mm", "pid": CPU, "tid": TID,
                   "ts": t + 10, "dur": 50, "args": {
                       "Input Dims": [[M, K], [K, N]],
                       "Input type": ["c10::BFloat16", "c10::BFloat16"]}})
        launch(t + 20, GEMM, GEMM_US, t + 100, 7)
        ev.append({"ph": "X", "cat": "cpu_op", "name": "aten::fill_", "pid": CPU, "tid": TID,
                   "ts": t + 100, "dur": 20, "args": {}})
        launch(t + 105, ELEMWISE, 10, t + 300, 7)
        ev.append({"ph": "X", "cat": "cpu_op", "name": "record_param_comms", "pid": CPU,
                   "tid": TID, "ts": t + 200, "dur": 40, "args": {
                       "Collective name": "allreduce", "dtype": "BFloat16",
                       "In msg nelems": AR_NELEMS, "Out msg nelems": AR_NELEMS,
                       "Group size": AR_RANKS, "Process Group Name": "0"}})
        launch(t + 210, NCCL, AR_US, t + 1_000 + late_us, 20)
    return {"traceEvents": ev, "deviceProperties": [
        {"id": 0, "name": "NVIDIA H100 80GB HBM3", "numSms": 132}]}


@pytest.fixture
def trace_file(tmp_path: Path) -> Path:
    p = tmp_path / "perf.json"
    p.write_text(json.dumps(_trace()))
    return p


# what the figures must be, by hand
FLOPS = 2 * M * N * K  # per mm
BYTES = (M * K + K * N + M * N) * 2  # inputs read, output written, bf16
TFLOPS = FLOPS / (GEMM_US * 1e-6) / 1e12  # 687.19 TFLOP/s
ROOF_PCT = 100 * max(FLOPS / 989.4e12, BYTES / 3.35e12) / (GEMM_US * 1e-6)  # 69.46 %
assert 687 < TFLOPS < 688 and 69 < ROOF_PCT < 70
AR_BYTES = AR_NELEMS * 2
BUSBW = AR_BYTES / (AR_US * 1e-6) / 1e9 * 2 * (AR_RANKS - 1) / AR_RANKS  # 175.0 GB/s


def _summary(*args: str, config: Path | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "tracetui", "summary", *args]
    if config is not None:
        cmd += ["--config", str(config)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_summary_json_and_text(trace_file: Path) -> None:
    r = _summary(str(trace_file), "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    mm = next(o for o in rep["operators"] if o["name"] == "aten::mm")
    assert (mm["flops"], mm["bytes"], mm["flops_calls"]) == (2 * FLOPS, 2 * BYTES, 2)
    assert mm["achieved_tflops"] == pytest.approx(TFLOPS, abs=1e-3)
    assert mm["roofline_pct"] == pytest.approx(ROOF_PCT, abs=0.01)
    assert mm["tensor_core_pct"] == 100.0
    fill = next(o for o in rep["operators"] if o["name"] == "aten::fill_")
    assert fill["flops"] is None and fill["roofline_pct"] is None
    assert fill["tensor_core_pct"] == 0.0
    tc = {k["name"]: k["tensor_core"] for k in rep["kernels"]}
    assert tc == {GEMM: True, ELEMWISE: False, NCCL: False}
    # per step: 200 of the 210 µs of computation kernels on Tensor Cores
    assert [s["tensor_core_pct"] for s in rep["steps"]] == [pytest.approx(200 / 210 * 100,
                                                                          abs=0.01)] * 2
    (ar,) = rep["collective_kinds"]
    assert (ar["kind"], ar["count"], ar["bytes"]) == ("all_reduce", 2, 2 * AR_BYTES)
    assert ar["busbw_median_gbps"] == pytest.approx(BUSBW)
    assert rep["peaks"]["device"] == "H100 SXM"
    # the text: the FLOPs table and the collectives by kind
    r = _summary(str(trace_file))
    assert r.returncode == 0, r.stderr
    # (shown from the report's figures: TFLOP/s to 3 decimals, then 2 on screen)
    assert "operators with FLOPs" in r.stdout and f"{round(TFLOPS, 3):,.2f}" in r.stdout
    assert "collectives by kind" in r.stdout and f"{BUSBW:,.2f}" in r.stdout
    # --csv collectives
    r = _summary(str(trace_file), "--csv", "collectives")
    assert r.returncode == 0, r.stderr
    head, *rows = r.stdout.strip().splitlines()
    assert "busbw_gbps" in head.split(",") and len(rows) == 2


def test_config_peaks_override_and_a_bad_one(trace_file: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text('[peaks."NVIDIA H100 80GB HBM3"]\nbf16 = 500\ntbps = 2.0\n')
    rep = json.loads(_summary(str(trace_file), "--json", config=cfg).stdout)
    mm = next(o for o in rep["operators"] if o["name"] == "aten::mm")
    want = 100 * max(FLOPS / 500e12, BYTES / 2.0e12) / (GEMM_US * 1e-6)
    assert mm["roofline_pct"] == pytest.approx(want, abs=0.01)
    # an unknown device the config adds
    data = _trace()
    data["deviceProperties"][0]["name"] = "Acme X1"
    other = tmp_path / "acme.json"
    other.write_text(json.dumps(data))
    rep = json.loads(_summary(str(other), "--json").stdout)
    assert rep["peaks"] is None
    assert next(o for o in rep["operators"] if o["name"] == "aten::mm")["roofline_pct"] is None
    cfg.write_text('[peaks."Acme X1"]\nbf16 = 1000\ntbps = 4.0\n')
    rep = json.loads(_summary(str(other), "--json", config=cfg).stdout)
    want = 100 * max(FLOPS / 1000e12, BYTES / 4.0e12) / (GEMM_US * 1e-6)
    assert next(o for o in rep["operators"] if o["name"] == "aten::mm")["roofline_pct"] == \
        pytest.approx(want, abs=0.01)
    # a bad value: one line, no traceback, non-zero
    cfg.write_text('[peaks."NVIDIA H100 80GB HBM3"]\nbf16 = -3\n')
    r = _summary(str(trace_file), "--json", config=cfg)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "bf16" in r.stderr


def _row_text(grid: Grid, y: int) -> str:
    return grid.render_line(y).text


async def test_kernel_table_and_a_collectives_instances(trace_file: Path) -> None:
    app = TraceApp(str(trace_file))
    async with app.run_test(size=(140, 40)) as pilot:
        await loaded(app, pilot, analyses=True)
        an = app.session.analyses
        an.prepare_perf()  # (what the perf worker does once the aggregates are made)
        await until(pilot, lambda: an.collectives_by_kernel() is not None)
        await pilot.press("k")
        await until(pilot, lambda: isinstance(app.screen, KernelScreen))
        grid = app.screen.grid
        head = _row_text(grid, 0)
        assert "TC" in head
        lines = {_row_text(grid, y).split()[0]: _row_text(grid, y)
                 for y in range(1, len(grid.order) + 1)}
        gemm = next(v for k, v in lines.items() if k.startswith("sm90_xmma"))
        assert gemm.rstrip().endswith("yes")
        assert not any(v.rstrip().endswith("yes") for k, v in lines.items()
                       if not k.startswith("sm90_xmma"))
        await pilot.press("n", "c", "c", "l", "enter", "enter")
        await until(pilot, lambda: isinstance(app.screen, InstancesScreen))
        ins = app.screen
        head = _row_text(ins.grid, 0)
        assert "size" in head and "busbw GB/s" in head and "collective" in head
        for y in (1, 2):
            row = _row_text(ins.grid, y)
            assert f"{BUSBW:,.2f}" in row and "47.7 MiB" in row and "all_reduce" in row
        # the detail pane of one: its collective
        r = int(ins.rows[0])
        text = describe_slice(app.trace, r, app.session.classes, an).plain
        assert "collective all_reduce" in text and f"busbw {BUSBW:,.2f} GB/s" in text
        assert "8 ranks" in text and "47.7 MiB" in text
        g = next(i for i in range(app.trace.slice_count) if app.trace.name_of(i) == GEMM)
        assert "on Tensor Cores" in describe_slice(app.trace, g, app.session.classes, an).plain


async def test_the_rank_view_names_the_late_rank(tmp_path: Path) -> None:
    """Four ranks, rank 2's all-reduce kernels start 300 µs late: every other rank waits
    300 µs per collective; rank 2 is last at both; the view's title and columns say so."""
    d = tmp_path / "job"
    d.mkdir()
    for r in range(4):
        data = _trace(late_us=300 if r == 2 else 0)
        data["distributedInfo"] = {"rank": r, "world_size": 4, "backend": "nccl"}
        # the late rank's kernel starts later and ends with the others': its duration is
        # the others' less 300 µs
        if r == 2:
            for e in data["traceEvents"]:
                if e.get("name") == NCCL:
                    e["dur"] -= 300
        (d / f"rank-{r}.json").write_text(json.dumps(data))
    r = _summary(str(d), "--json")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    by = {x["rank"]: x for x in s["ranks"]}
    for k in (0, 1, 3):
        assert by[k]["comm_sync_us"] == pytest.approx(600.0)  # two collectives, 300 each
        assert by[k]["comm_transfer_us"] == pytest.approx(2 * (AR_US - 300))
        assert by[k]["late_count"] == 0
    assert by[2]["comm_sync_us"] == 0.0 and by[2]["late_count"] == 2
    assert {w["late_rank"] for w in s["collective_waits"]} == {2}
    assert all(w["start_skew_us"] == pytest.approx(300.0) for w in s["collective_waits"])
    text = _summary(str(d)).stdout
    assert "last to arrive most often: rank 2 (2 of 2 collectives)" in text
    from tracetui.app.ranks import RanksScreen

    app = TraceApp(str(d), ranks=sorted(str(p) for p in d.iterdir()))
    async with app.run_test(size=(160, 40)) as pilot:
        await until(pilot, lambda: app.loaded and app.rank_summary is not None, tries=600)
        await pilot.press("R")
        await until(pilot, lambda: isinstance(app.screen, RanksScreen))
        title = app.screen.title_text().plain
        assert "last to collectives: rank 2 (2 of 2)" in title
        head = _row_text(app.screen.grid, 0)
        assert "sync" in head and "transfer" in head
        # ^t: the collectives waited for, each naming rank 2; ⏎ goes to its lanes
        from tracetui.app.ranks import WaitsScreen

        await pilot.press("ctrl+t")
        await until(pilot, lambda: isinstance(app.screen, WaitsScreen))
        grid = app.screen.grid
        assert "last rank" in _row_text(grid, 0) and len(grid.order) == 2
        for y in (1, 2):
            cells = _row_text(grid, y).split()
            assert cells[0] == "all_reduce" and "2" in cells and "300.0" in cells
        await pilot.press("enter")
        await until(pilot, lambda: len(app.screen_stack) == 1)


async def test_the_operators_view_fills_in_its_flops(trace_file: Path) -> None:
    """``u`` opens at once; the FLOPs (args read from the file after the panes) fill in its
    TFLOP/s and roof % columns, the cursor where it was."""
    from tracetui.app.panes import OperatorScreen

    app = TraceApp(str(trace_file))
    async with app.run_test(size=(160, 40)) as pilot:
        await loaded(app, pilot, analyses=True)
        an = app.session.analyses
        await pilot.press("u")
        await until(pilot, lambda: isinstance(app.screen, OperatorScreen), tries=600)
        await until(pilot, lambda: an.perf_ready, tries=600)
        screen = app.screen
        await until(pilot, lambda: "reading FLOPs" not in screen.title_text().plain)
        grid = screen.grid
        head = _row_text(grid, 0)
        assert "TFLOP/s" in head and "roof %" in head

        def mm_row() -> str:
            rows = [_row_text(grid, y) for y in range(1, len(grid.order) + 1)]
            return next(r for r in rows if r.startswith("aten::mm"))
        await until(pilot, lambda: f"{round(TFLOPS, 3):,.2f}" in mm_row(), tries=200)
        assert f"{round(ROOF_PCT, 2):.1f}" in mm_row()


async def test_an_operators_occurrences_have_their_tflops(trace_file: Path) -> None:
    from tracetui.app.panes import OccurrenceScreen, OperatorScreen

    app = TraceApp(str(trace_file))
    async with app.run_test(size=(160, 40)) as pilot:
        await loaded(app, pilot, analyses=True)
        await pilot.press("u")
        await until(pilot, lambda: isinstance(app.screen, OperatorScreen), tries=600)
        await pilot.press(*"aten::mm", "enter", "enter")
        await until(pilot, lambda: isinstance(app.screen, OccurrenceScreen))
        occ = app.screen
        await until(pilot, lambda: len(occ.tflops) == 2)
        assert "TFLOP/s" in _row_text(occ.grid, 0)
        for y in (1, 2):
            assert f"{TFLOPS:,.2f}" in _row_text(occ.grid, y)


def test_hostile_args_are_unknown_never_a_crash_or_an_escape(tmp_path: Path) -> None:
    """Shapes and message sizes of every odd kind: the summary (text, JSON, CSV) works, no
    escape sequence reaches the terminal, absurd counts are unknown sizes (a report must
    stay readable as a rank: its integers under 2**63)."""
    odd: list[Any] = [None, -5, 2 ** 80, 1e308, "12", "x\x1b[31mred", [1, 2], {"a": 1}, True,
                      0, [[]], [[-1, 2], [2, 3]], [[2 ** 70, 2], [2, 3]], "[[1,2]]"]
    data = _trace()
    ev = data["traceEvents"]
    t = 100_000
    for i, v in enumerate(odd * 3):
        ev.append({"ph": "X", "cat": "cpu_op", "name": ["aten::mm", "aten::conv2d",
                                                       "aten::scaled_dot_product_attention"][i % 3],
                   "pid": CPU, "tid": TID, "ts": t + 100 * i, "dur": 50,
                   "args": {"Input Dims": v, "Input type": odd[(i + 1) % len(odd)],
                            "Concrete Inputs": odd[(i + 2) % len(odd)]}})
        ev.append({"ph": "X", "cat": "cpu_op", "name": "record_param_comms", "pid": CPU,
                   "tid": TID, "ts": t + 100 * i + 60, "dur": 30, "args": {
                       "Collective name": ["allreduce", "\x1b]0;pwn\x07", "x" * 3000][i % 3],
                       "In msg nelems": v, "Out msg nelems": odd[(i + 3) % len(odd)],
                       "dtype": odd[(i + 4) % len(odd)], "Group size": odd[(i + 5) % len(odd)],
                       "Process Group Name": odd[(i + 6) % len(odd)]}})
        ev.append({"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": CPU,
                   "tid": TID, "ts": t + 100 * i + 65, "dur": 5, "args": {"correlation": 9000 + i}})
        ev.append({"ph": "X", "cat": "kernel", "name": NCCL, "pid": GPU, "tid": 20,
                   "ts": t + 100 * i + 70, "dur": i % 4, "args": {"correlation": 9000 + i}})
    p = tmp_path / "odd.json"
    p.write_text(json.dumps(data))
    for args in ([], ["--json"], ["--csv", "collectives"], ["--csv", "operators"]):
        r = _summary(str(p), *args)
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
        assert "\x1b" not in r.stdout and "\x07" not in r.stdout
    rep = json.loads(_summary(str(p), "--json").stdout)
    assert all(c["bytes"] is None or 0 <= c["bytes"] < 2 ** 63 for c in rep["collectives"])
    assert all(o["flops"] is None or 0 <= o["flops"] < 2 ** 63 for o in rep["operators"])
    # still a rank: the report reads back and matches across ranks
    from tracetui.analysis.report import read_report

    f = tmp_path / "odd.report.json"
    f.write_text(_summary(str(p), "--json").stdout)
    assert read_report(str(f)) is not None


def test_a_roofline_above_100_is_said_to_be_impossible(tmp_path: Path) -> None:
    data = _trace()
    for e in data["traceEvents"]:
        if e.get("name") == GEMM:
            e["dur"] = GEMM_US // 4  # four times faster than the datasheet allows: 278 %
    p = tmp_path / "fast.json"
    p.write_text(json.dumps(data))
    out = _summary(str(p)).stdout
    assert "roof % above 100 for 1 operator (aten::mm)" in out
    p.write_text(json.dumps(_trace()))  # 69 %: nothing said
    assert "roof % above 100" not in _summary(str(p)).stdout
