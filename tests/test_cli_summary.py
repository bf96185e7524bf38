"""tracetui summary: text at 80 columns, --json, --csv, --rules; hostile names stay inert."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_TRACES = ROOT.parent / "shared" / "traces"
DECODE = ROOT / "sample_traces" / "annotated.json"
PREFILL = ROOT / "sample_traces" / "prefill.json.gz"

HOSTILE = ["=HYPERLINK(\"http://x\")", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)",
           "\x1b]52;c;aGVsbG8=\x07clip", "[red]markup[/red] [@click=quit]x", "\u202eevil",
           "ncclDevKernel_\x1b[2J_AllReduce"]


def run(*args: str, columns: int = 80) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": str(columns), "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "tracetui", *args], capture_output=True,
                          text=True, env=env)


@pytest.fixture()
def hostile_trace(tmp_path: Path) -> Path:
    evs = [{"ph": "M", "name": "process_labels", "pid": 0, "tid": 0, "args": {"labels": "GPU 0"}}]
    t = 0
    for i, name in enumerate(HOSTILE):
        evs.append({"ph": "X", "cat": "kernel", "name": name, "pid": 0, "tid": 7, "ts": t,
                    "dur": 10, "args": {"device": 0, "stream": 7, "correlation": i}})
        evs.append({"ph": "X", "cat": "user_annotation", "name": name, "pid": 1, "tid": 1,
                    "ts": t, "dur": 5})
        t += 20
    p = tmp_path / "hostile.json"
    p.write_text(json.dumps({"traceEvents": evs}))
    return p


@pytest.mark.parametrize("columns", [80, 120])
def test_text_fits_the_terminal(columns):
    for trace in (DECODE, PREFILL):
        out = run("summary", str(trace), columns=columns)
        assert out.returncode == 0, out.stderr
        lines = out.stdout.splitlines()
        assert max(len(x) for x in lines) <= columns
        assert any("communication vs computation" in x for x in lines)


def test_text_output_is_inert(hostile_trace):
    out = run("summary", str(hostile_trace), "--top", "0")
    assert out.returncode == 0, out.stderr
    assert "\x1b" not in out.stdout and "\x07" not in out.stdout and "\u202e" not in out.stdout
    assert "[red]markup[/red]" in out.stdout  # shown, not interpreted


def test_json_is_valid_and_escaped(hostile_trace):
    out = run("summary", str(hostile_trace), "--json")
    assert out.returncode == 0, out.stderr
    assert "\x1b" not in out.stdout and out.stdout.isascii()
    data = json.loads(out.stdout)
    assert {k["name"] for k in data["kernels"]} == set(HOSTILE)  # full names, unchanged
    assert {a["name"] for a in data["annotations"] if a["source"] != "none"} == set(HOSTILE)
    for key in ("kernels", "overlap", "stream_overlap", "annotations", "streams", "lanes",
                "events", "truncated", "warnings"):
        assert key in data
    k = data["kernels"][0]
    assert set(k) >= {"name", "short_name", "class", "count", "total_us", "pct", "avg_us",
                      "median_us", "min_us", "max_us", "stddev_us"}
    o = data["overlap"][0]
    assert set(o) >= {"device", "comm_us", "comp_us", "overlap_us", "overlap_pct",
                      "exposed_comm_us"}


def test_csv_has_no_formulas_or_escapes(hostile_trace):
    out = run("summary", str(hostile_trace), "--csv")
    assert out.returncode == 0, out.stderr
    assert "\x1b" not in out.stdout
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert len(rows) == len(HOSTILE)
    for r in rows:
        for cell in (r["name"], r["short_name"]):
            assert cell[:1] not in ("=", "+", "-", "@"), cell
    names = {r["name"] for r in rows}
    assert "'=HYPERLINK(\"http://x\")" in names and "'-2+3" in names


def test_rules_alone_and_errors(tmp_path):
    out = run("summary", "--rules")
    assert out.returncode == 0 and "deep_ep" in out.stdout and "nccl" in out.stdout
    out = run("summary", "--rules", "--json", "--comm", "my_kernel")
    rules = json.loads(out.stdout)["rules"]
    assert rules[0] == {"class": "comm", "pattern": "my_kernel", "from": "--comm"}
    for args in (("summary",), ("summary", "--rules", "--comm", "bad("),
                 ("summary", str(DECODE), "--config", str(tmp_path / "missing.toml"))):
        out = run(*args)
        assert out.returncode == 2, args
        assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr


def test_comm_flag_changes_the_figures():
    base = json.loads(run("summary", str(DECODE), "--json").stdout)
    more = json.loads(run("summary", str(DECODE), "--json", "--comm", "fp8_gemm").stdout)
    assert more["overlap"][0]["comm_us"] > base["overlap"][0]["comm_us"]
    gemm = [k for k in more["kernels"] if "fp8_gemm" in k["name"]]
    assert gemm and all(k["class"] == "comm" for k in gemm)


@pytest.mark.parametrize("term", ["xterm-256color", "dumb"])
def test_without_a_terminal_the_summary_comes_with_a_pointer(term):
    """`tracetui TRACE` piped (or with TERM=dumb): the summary on stdout, and one line on
    stderr saying why and pointing to `tracetui summary`."""
    out = subprocess.run([sys.executable, "-m", "tracetui", str(DECODE)], capture_output=True,
                         text=True, env=dict(os.environ, TERM=term), stdin=subprocess.DEVNULL,
                         timeout=120)
    assert out.returncode == 0
    assert "not a terminal" in out.stderr and "tracetui summary" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert "GPU 0" in out.stdout



@pytest.mark.skipif(not (SHARED_TRACES / "deepseek_train.json").exists(),
                    reason="needs ../shared/traces")
def test_summary_kernel_rows_read_apart_at_120_columns():
    """DeepSeek's training trace: three GEMMs and FlashAttnBwd used to read
    cutlass::device_kernel<…> alike; no two rows of the kernel table read the same."""
    import re
    import subprocess
    import sys

    env = {**os.environ, "COLUMNS": "120"}
    out = subprocess.run([sys.executable, "-m", "tracetui", "summary",
                          str(SHARED_TRACES / "deepseek_train.json"), "--top", "0"],
                         capture_output=True, text=True, env=env, check=True).stdout
    block = out[out.index("GPU kernels by total time"):]
    block = block[: block.index("annotations")] if "annotations" in block else block
    rows = [ln for ln in block.splitlines()
            if re.search(r"\s(comm|comp|mem|other)\s+\d", ln)]
    names = [re.split(r"\s{2,}", ln.strip())[0] for ln in rows]
    assert len(names) >= 80 and max(len(ln) for ln in rows) <= 120
    assert len(set(names)) == len(names), [n for n in names if names.count(n) > 1]
    for part in ("fp8_dptp128c_acc::GemmKernel", "m_grouped_fp8_ptp128c::GemmKernel",
                 "cuda::fp8_ptp128c::GemmKernel", "flash::FlashAttnBwd<…>"):
        assert any(part in n for n in names), part
    assert not any(n.startswith("cutlass::device_kernel") for n in names)


def _with_stray_instant(tmp_path: Path) -> tuple[Path, dict]:
    """annotated.json plus one 'Record Window End' instant a whole trace length after its
    last slice (real Kineto traces carry such stray events)."""
    src = json.loads((ROOT / "sample_traces" / "annotated.json").read_text())
    xs = [e for e in src["traceEvents"] if e.get("ph") == "X"]
    first = min(e["ts"] for e in xs)
    last = max(e["ts"] + e.get("dur", 0) for e in xs)
    src["traceEvents"].append({"ph": "i", "name": "Record Window End", "s": "t", "pid": 1,
                               "tid": 1, "ts": last + (last - first)})
    path = tmp_path / "stray.json"
    path.write_text(json.dumps(src))
    return path, {"first": first, "last": last, "xs": xs}


def test_a_stray_instant_does_not_stretch_the_span_or_halve_utilisation(tmp_path):
    from tracetui.analysis.report import analyze
    from tracetui.trace import load

    path, raw = _with_stray_instant(tmp_path)
    r = analyze(load(str(path)))
    span_us = raw["last"] - raw["first"]
    assert r["slices_end_ns"] - r["slices_start_ns"] == round(span_us * 1000)
    assert r["span_ns"] == round(2 * span_us * 1000)  # every event: twice as long
    # utilisation of GPU 0 · stream 7 over the slices' span, from the raw JSON
    ivs = sorted((e["ts"], e["ts"] + e["dur"]) for e in raw["xs"]
                 if e.get("pid") == 0 and e.get("tid") == 7
                 and e.get("cat") != "gpu_user_annotation")
    busy, end = 0.0, -1e18
    for s, e in ivs:
        if e > end:
            busy += e - max(s, end)
            end = e
    row = next(s for s in r["streams"] if s["lane"] == "GPU 0 · stream 7")
    assert row["utilization_pct"] == pytest.approx(100 * busy / span_us, abs=0.01)
    out = subprocess.run([sys.executable, "-m", "tracetui", "summary", str(path)],
                         capture_output=True, text=True, check=True,
                         env={**os.environ, "COLUMNS": "160"}).stdout
    assert "of slices (" in out and "with every event)" in out


async def test_the_first_screen_fits_the_slices_not_a_stray_instant(tmp_path):
    from tracetui.app.app import TraceApp

    path, raw = _with_stray_instant(tmp_path)
    from conftest import loaded

    app = TraceApp(str(path))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(app, pilot)
        tl = app.timeline
        assert (tl.t0, tl.t1) == (0, round((raw["last"] - raw["first"]) * 1000))
        await pilot.press("w", "0")  # zoom in, then reset: the slices again
        assert (tl.t0, tl.t1) == (0, round((raw["last"] - raw["first"]) * 1000))
