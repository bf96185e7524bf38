"""Odd values in valid JSON: files that are JSON but not traces (rocprofiler-sdk's own
output), numbers beyond int64 / float64 in args, times beyond int64 nanoseconds, numbers
written as strings, and flows whose ends do not pair.

Each case is loaded on every path of the loader: whole pieces decoded by msgspec (default
pieces, and tiny ones that cut the array many times), the whole file streamed by ijson
(``traceEvents`` after a first megabyte of other keys), ijson after a cut-off end, and ranges
parsed by worker processes. Expectations are computed from the raw JSON with plain Python
(``json``, ``decimal``), never with the code under test.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest

from tracetui.cli import main
from tracetui.trace import TraceError, load
from tracetui.trace.loader import Loader
from tracetui.trace.pieces import HEAD_BYTES, KIND_IJSON, KIND_IJSON_FILE

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "traces"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/traces not present")

U64_MAX = 18446744073709551615  # rocprofiler-sdk's "no id", beyond int64 (yajl's integers)


# ----------------------------------------------------------------------------- helpers

def _trace_text(events: list, pad: int = 0, raw: dict[str, str] | None = None) -> str:
    """A trace object; ``pad`` bytes of another top-level key before traceEvents (past
    HEAD_BYTES: the loader streams the whole file with ijson); ``raw``: placeholder
    strings replaced by JSON text that Python's json would not write (1e400)."""
    body = ",\n".join(json.dumps(e) for e in events)
    for k, v in (raw or {}).items():
        body = body.replace(json.dumps(k), v)
    head = '{"pad": "' + "x" * pad + '", ' if pad else "{"
    return head + '"traceEvents": [\n' + body + "\n]}\n"


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    os.utime(path, (1, 1))  # long unmodified: no "still being written?" note when cut off
    return path


#: (name, Loader arguments, what it proves)
PATHS = [
    ("msgspec", {"workers": 1}),
    ("tiny-pieces", {"workers": 1, "piece_bytes": 256}),
    ("workers", {"workers": 2, "parallel_min": 0, "piece_bytes": 2048}),
]


def _loads(path: Path, paths=PATHS):
    for name, kw in paths:
        loader = Loader(str(path), **kw)
        yield name, loader.run(), loader


def _kinds(loader: Loader) -> set[int]:
    return {kind for kind, _, _ in loader.pieces.pieces}


def _x(i: int, **kw) -> dict:
    e = {"ph": "X", "name": f"op{i}", "cat": "cpu_op", "pid": 1, "tid": 1, "ts": 100 + 10 * i,
         "dur": 5, "args": {"i": i}}
    e.update(kw)
    return e


def _skipped(warnings: list[str]) -> dict[str, int]:
    out = {}
    for w in warnings:
        m = re.fullmatch(r"skipped ([\d,]+) events: (.*)", w)
        if m:
            out[m.group(2)] = int(m.group(1).replace(",", ""))
    return out


def _ns(v) -> int:
    """µs as written (a number or its text) -> ns, exactly, half to even like the loader."""
    return int((Decimal(str(v).strip()) * 1000).to_integral_value())


# ----------------------------------------------------------------------------- 1. not a trace

def _rocprof(n: int = 3) -> dict:
    """The shape of rocprofv3 --output-format json (rocprofiler-sdk's own layout)."""
    return {"rocprofiler-sdk-tool": [{
        "metadata": {"pid": 4242, "init_time": 1712345678901234567,
                     "fini_time": 1712345679901234567},
        "agents": [{"node_id": 1, "id": {"handle": U64_MAX}}],
        "kernel_dispatch": [{"size": 64, "correlation_id": {"internal": U64_MAX - i,
                                                            "external": 0},
                             "start_timestamp": 1712345678901234567 + i,
                             "end_timestamp": 1712345678901334567 + i} for i in range(n)]}]}


@pytest.mark.parametrize("size", ["small", "past-the-head"])
def test_rocprofiler_json_is_named_not_called_invalid(tmp_path, capsys, size):
    data = _rocprof(3 if size == "small" else 30_000)  # the second: several MB, one key
    path = tmp_path / "results.json"
    path.write_text(json.dumps(data))
    assert (size == "small") == (path.stat().st_size < HEAD_BYTES)
    for kw in ({"workers": 1}, {"workers": 2, "parallel_min": 0}, {"piece_bytes": 256}):
        with pytest.raises(TraceError) as info:
            Loader(str(path), **kw).run()
        msg = str(info.value)
        assert "\n" not in msg and "not valid JSON" not in msg and "overflow" not in msg, msg
        assert "valid JSON, but not a Chrome/Kineto trace" in msg, msg
        assert "no traceEvents array (keys: rocprofiler-sdk-tool)" in msg, msg
        assert "rocprofiler-sdk's own JSON" in msg, msg
    for extra in ([], ["--json"]):
        assert main(["summary", str(path), *extra]) == 2
        cap = capsys.readouterr()
        lines = cap.err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("tracetui: error: "), cap.err
        assert "rocprofiler-sdk" in lines[0] and cap.out == ""


def test_keys_of_a_non_trace_are_safe_and_cut(tmp_path):
    keys = ["esc\x1b]0;pwn\x07", "k" * 300, *[f"key{i}" for i in range(10)]]
    path = tmp_path / "other.json"
    path.write_text(json.dumps({k: U64_MAX for k in keys}))
    with pytest.raises(TraceError) as info:
        load(str(path))
    msg = str(info.value)
    assert "\x1b" not in msg and "\x07" not in msg and "^[]0;pwn^G" in msg, msg
    assert "k" * 300 not in msg and "k" * 30 in msg and "… 6 more" in msg, msg
    assert "valid JSON, but not a Chrome/Kineto trace" in msg


@needs_shared
def test_execution_trace_is_refused_the_same_way():
    with pytest.raises(TraceError) as info:
        load(str(SHARED / "not_a_trace_execution_trace.json.gz"))
    msg = str(info.value)
    assert "valid JSON, but not a Chrome/Kineto trace" in msg and "execution trace" in msg


# ----------------------------------------------------------------------------- 1b. huge args

HUGE = {"__U64__": str(U64_MAX), "__INF__": "1e400", "__NEG__": "-9223372036854775809"}


def _huge_args_events(n: int = 400) -> list[dict]:
    evs = [_x(i) for i in range(n)]
    evs[3]["args"] = {"big": "__U64__", "huge": "__INF__", "neg": "__NEG__"}
    evs[n // 2].update(cat="kernel", pid=0, tid=7,
                       args={"correlation": 7, "bytes": "__INF__", "grid": ["__U64__", 1, 1],
                             "memory bandwidth (GB/s)": "__INF__",
                             "est. achieved occupancy %": 1e39})
    evs[n // 2 + 1].update(ph="i", args={"x": "__INF__"})
    evs[n // 2 + 2].update(ph="C", name="ctr", args={"v": 5, "w": "__U64__", "x": "__INF__"})
    evs[n - 2]["args"] = {"big": "__U64__", "huge": "__INF__"}
    return evs


@pytest.mark.parametrize("where", ["pieces", "whole-file-ijson", "cut-off-ijson"])
def test_huge_numbers_in_args_do_not_stop_a_trace(tmp_path, where):
    evs = _huge_args_events()
    text = _trace_text(evs, pad=HEAD_BYTES + 1000 if where == "whole-file-ijson" else 0,
                       raw=HUGE)
    if where == "cut-off-ijson":
        text = text[: text.rindex("}") - 3]  # inside the last event
    path = _write(tmp_path / "t.json", text)
    want = len(evs) - (1 if where == "cut-off-ijson" else 0)
    paths = PATHS if where == "pieces" else PATHS[:1] + [("big-pieces", {"workers": 1})]
    for name, tr, loader in _loads(path, paths):
        assert tr.events == want, (name, tr.warnings)
        assert tr.truncated == (where == "cut-off-ijson"), (name, tr.warnings)
        assert not _skipped(tr.warnings), (name, tr.warnings)
        assert not any("JSON error" in w or "overflow" in w for w in tr.warnings), \
            (name, tr.warnings)
        if where == "whole-file-ijson":
            assert KIND_IJSON_FILE in _kinds(loader), name
        if where == "cut-off-ijson":
            assert KIND_IJSON in _kinds(loader), name
        if name == "workers":
            assert loader.ranges == 2, "the worker's range was merged, not re-read"
        # nothing beyond float64/float32 reaches a column as inf (it would poison every sum
        # and scale it meets: the timeline's counter shading failed on it)
        k = tr.kernels
        assert len(k.slice) == 1 and int(k.bytes[0]) == -1 and k.grid[0].tolist() == [0, 1, 1]
        assert math.isnan(k.bandwidth[0]) and math.isnan(k.occupancy[0]), (name, k)
        assert sorted((c.series, c.values.tolist()) for c in tr.counters) == [
            ("v", [5.0]), ("w", [float(U64_MAX)])], name
        assert "1 counter values beyond float64 (ignored)" in tr.warnings, (name, tr.warnings)
        # the args are re-read whole, every digit
        i = next(k for k in range(tr.slice_count) if tr.name_of(k) == "op3")
        args = tr.detail(i)["args"]
        assert args["big"] == U64_MAX and args["neg"] == -9223372036854775809, (name, args)
        assert Decimal(str(args["huge"])) == Decimal("1e400"), (name, args)


@pytest.mark.parametrize("where", ["last-event", "first-event"])
def test_a_huge_float_in_plain_args_reads_the_same_anywhere(tmp_path, where):
    """1e400 in the args of a plain slice (args the fast decoding skips) is re-read as the
    number it is, whether it lies in a piece decoded by msgspec or in the file's last piece
    (decoded with Python's json, which made it inf)."""
    evs = [_x(i) for i in range(300)]
    k = len(evs) - 1 if where == "last-event" else 0
    evs[k]["args"] = {"huge": "__INF__", "big": "__U64__"}
    path = _write(tmp_path / "t.json", _trace_text(evs, raw=HUGE))
    for name, tr, _ in _loads(path):
        assert tr.events == 300 and not tr.warnings, name
        i = next(j for j in range(tr.slice_count) if tr.name_of(j) == f"op{k}")
        args = tr.detail(i)["args"]
        assert Decimal(str(args["huge"])) == Decimal("1e400") and args["big"] == U64_MAX, \
            (name, args)


def test_huge_number_in_worker_range_only(tmp_path):
    """The number lies in the worker's range: the worker says so and the load is redone
    exactly, with the same events as one stream."""
    evs = [_x(i) for i in range(3000)]
    evs[2900].update(cat="kernel", pid=0, tid=7, args={"correlation": "__U64__",
                                                        "bytes": "__INF__"})
    evs[2901].update(ph="i", args={"huge": "__INF__"})
    path = _write(tmp_path / "t.json", _trace_text(evs, raw=HUGE))
    one = Loader(str(path), workers=1).run()
    loader = Loader(str(path), workers=2, parallel_min=0, piece_bytes=4096)
    two = loader.run()
    assert loader.ranges == 2
    assert one.events == two.events == 3000 and not one.warnings and not two.warnings
    assert one.start.tolist() == two.start.tolist()


# ----------------------------------------------------------------------------- 2. out of range

OUT_OF_RANGE = [
    # (field, value as JSON text, what the example in the warning reads)
    ("dur", "9.3e18", "9.3e+18 µs"),
    ("dur", '"9.3e18"', "9.3e+18 µs"),
    ("ts", "1e300", "1e+300 µs"),
    ("ts", str(2**63), f"{2**63} µs"),
    ("ts", '"1e400"', "1e+400 µs"),
    ("ts", "-" + "9" * 400, "-1.00000e+400 µs"),
]


@pytest.mark.parametrize("exact", [False, True], ids=["float-mode", "exact-mode"])
@pytest.mark.parametrize("field, text, shown", OUT_OF_RANGE,
                         ids=[f"{f}={t[:12]}" for f, t, _ in OUT_OF_RANGE])
def test_time_out_of_range_is_said_so(tmp_path, field, text, shown, exact):
    evs = [_x(i) for i in range(300)]
    if exact:  # a float time float64 cannot keep to the ns: the whole load is exact
        evs[0]["ts"] = 1712345678901234.5
    evs[150][field] = "__BAD__"
    evs[250][field] = "__BAD__"
    for layout, pad in (("pieces", 0), ("whole-file-ijson", HEAD_BYTES + 10)):
        path = _write(tmp_path / f"{layout}.json",
                      _trace_text(evs, pad=pad, raw={"__BAD__": text}))
        for name, tr, loader in _loads(path):
            # (an integer beyond int64 is beyond yajl's too: ijson reads exactly then)
            assert loader.builder.exact == exact or (
                layout == "whole-file-ijson" and text.lstrip("-").isdigit()), (layout, name)
            assert tr.events == 298, (layout, name, tr.warnings)
            assert _skipped(tr.warnings) == {
                f"{field} out of range for int64 nanoseconds (first: {shown})": 2}, \
                (layout, name, tr.warnings)
            assert not any("non-numeric" in w for w in tr.warnings)


def test_out_of_range_in_summary_text_and_json(tmp_path, capsys):
    evs = [_x(0), _x(1, dur=9.3e18), _x(2)]
    path = _write(tmp_path / "t.json", _trace_text(evs))
    want = "skipped 1 events: dur out of range for int64 nanoseconds (first: 9.3e+18 µs)"
    assert main(["summary", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["warnings"] == [want]
    assert main(["summary", str(path)]) == 0
    out = " ".join(capsys.readouterr().out.split())  # rich wraps long lines
    assert "warning: " + want in out and "non-numeric" not in out


def test_every_kind_of_event_says_out_of_range(tmp_path):
    evs = [_x(0),
           {"ph": "B", "name": "b", "pid": 1, "tid": 2, "ts": 1e300},
           {"ph": "i", "name": "i", "pid": 1, "tid": 1, "ts": -1e300},
           {"ph": "s", "id": 1, "cat": "c", "pid": 1, "tid": 1, "ts": 1e300},
           {"ph": "C", "name": "c", "pid": 1, "ts": 1e300, "args": {"v": 1}},
           _x(1)]
    path = _write(tmp_path / "t.json", _trace_text(evs))
    for name, tr, _ in _loads(path):
        assert tr.events == 2, name
        assert _skipped(tr.warnings) == {
            "ts out of range for int64 nanoseconds (first: 1e+300 µs)": 4}, (name, tr.warnings)


def test_the_example_is_the_first_in_file_order_whatever_the_phase(tmp_path):
    """A batch is handled a phase at a time: the value said is still the first written,
    in one stream and in pieces parsed apart (a fuzz case told them apart once)."""
    for first, second in (("i", "X"), ("X", "i"), ("B", "X"), ("X", "s")):
        evs = [_x(0)]
        for ph, ts in ((first, 7e25), (second, -4e177)):
            evs.append({"ph": ph, "name": "n", "cat": "c", "id": 1, "pid": 1, "tid": 1,
                        "ts": ts, "dur": 1})
        evs += [_x(i) for i in range(1, 200)]
        path = _write(tmp_path / f"{first}{second}.json", _trace_text(evs))
        for name, tr, _ in _loads(path):
            assert _skipped(tr.warnings) == {
                "ts out of range for int64 nanoseconds (first: 7e+25 µs)": 2}, \
                (first, second, name, tr.warnings)


# ----------------------------------------------------------------------------- 4. numeric strings

STRING_TIMES = ["10", "1.5e3", " 1712345678901234.567", "1712345678901234567e-3", "+42",
                "0.0005", "7.", ".25"]


@pytest.mark.parametrize("exact", [False, True], ids=["float-mode", "exact-mode"])
def test_numeric_strings_are_times(tmp_path, exact):
    evs = [_x(i) for i in range(200)]
    if exact:  # a float time float64 cannot keep to the ns: the whole load is exact
        evs[0]["ts"] = 1712345678901234.5
    for k, text in enumerate(STRING_TIMES):
        evs[20 + k] = _x(20 + k, name=f"str{k}", ts=text, dur=text.strip() if k % 2 else 3)
    evs[40] = _x(40, name="tdur", ts="12.5", tdur="4.25")
    del evs[40]["dur"]
    evs[41] = {"ph": "B", "name": "b", "pid": 1, "tid": 3, "ts": "100.001"}
    evs[42] = {"ph": "E", "pid": 1, "tid": 3, "ts": "100.011"}
    evs[43] = {"ph": "i", "name": "inst", "pid": 1, "tid": 1, "ts": "123.456"}
    evs[44] = {"ph": "C", "name": "ctr", "pid": 1, "ts": "130", "args": {"v": 1}}
    evs[45] = _x(45, name="soon", ts="soon")
    evs[46] = _x(46, name="nan", ts="NaN")
    evs[150] = _x(150, name="inf", ts="Infinity")  # alone in its tiny piece
    evs[47] = _x(47, name="hex", dur="0x10")
    evs[48] = _x(48, name="Spans", pid="Spans", tid="25738")  # pid/tid strings: names
    for layout, pad in (("pieces", 0), ("whole-file-ijson", HEAD_BYTES + 10)):
        path = _write(tmp_path / f"{layout}.json", _trace_text(evs, pad=pad))
        for name, tr, loader in _loads(path):
            where = (layout, name)
            assert loader.builder.exact == exact, where
            assert tr.events == len(evs) - 4, (where, tr.warnings)
            assert _skipped(tr.warnings) == {"missing or non-numeric ts": 3,
                                             "non-numeric dur": 1}, (where, tr.warnings)
            starts = {tr.name_of(i): (int(tr.start[i]) + tr.t0_abs_ns, int(tr.dur[i]))
                      for i in range(tr.slice_count)}
            for k, text in enumerate(STRING_TIMES):
                dur = _ns(text) if k % 2 else 3000
                assert starts[f"str{k}"] == (_ns(text), dur), (where, text)
            assert starts["tdur"] == (12_500, 4_250), where
            assert starts["b"] == (100_001, 10), where
            assert [int(t) + tr.t0_abs_ns for t in tr.inst_ts] == [123_456], where
            assert [int(t) + tr.t0_abs_ns for c in tr.counters for t in c.ts] == [130_000]
            lane = next(ln for ln in tr.lanes if ln.pid == "Spans")
            assert lane.tid == 25738, where  # as before: a numeric tid string is its number


def test_ids_of_digits_that_are_not_ascii_are_names(tmp_path):
    """A tid "¹" or "٣" (str.isdigit says yes; int() refuses the first) is a lane name, on
    every path of the loader (the fuzz test found "¹" stopping a load with a ValueError)."""
    evs = [_x(i) for i in range(60)]
    evs[10] = _x(10, name="sup", tid="¹")
    evs[11] = _x(11, name="arabic", pid="٣", tid="25")
    path = _write(tmp_path / "ids.json", _trace_text(evs))
    for name, tr, _ in _loads(path):
        lanes = {(ln.pid, ln.tid) for ln in tr.lanes}
        assert (1, "¹") in lanes and ("٣", 25) in lanes, (name, lanes)
        assert tr.events == len(evs), name


def test_natural_order_and_workers_of_odd_digits(monkeypatch):
    from tracetui.job.many import _natural
    from tracetui.trace.parallel import default_workers

    assert _natural("rank1¹") == ["rank", 1, "¹"]
    assert sorted(["r10", "r9", "r1¹"], key=_natural) == ["r1¹", "r9", "r10"]
    monkeypatch.setenv("TRACETUI_WORKERS", "²")
    assert default_workers() >= 1
    monkeypatch.setenv("TRACETUI_WORKERS", "1")
    assert default_workers() == 1


# ----------------------------------------------------------------------------- 3. flows

def _ns_of(v) -> int:
    return int(Decimal(str(v)) * 1000)


def _plain_slices(events: list) -> dict:
    """Per (pid, tid): [start, end, (name, start)] of X and B/E slices (B/E matched by a
    stack in file order, a B never ended running to the trace's end), by plain Python.
    gpu_user_annotation spans live on a lane of their own: endpoints never bind to them."""
    lanes: dict = defaultdict(list)
    stacks: dict = defaultdict(list)
    times = []
    for e in events:
        ph = e.get("ph")
        if ph not in ("X", "B", "E") or not isinstance(e.get("ts"), (int, float)):
            if isinstance(e.get("ts"), (int, float)):
                times.append(_ns_of(e["ts"]))
            continue
        t = _ns_of(e["ts"])
        times.append(t)
        key = (e.get("pid"), e.get("tid"))
        if ph == "X":
            end = t + max(_ns_of(e.get("dur", 0)), 0)
            times.append(end)
            if e.get("cat") != "gpu_user_annotation":
                lanes[key].append([t, end, (e.get("name"), t)])
        elif ph == "B":
            stacks[key].append((t, e.get("name")))
        elif stacks[key]:
            s, name = stacks[key].pop()
            lanes[key].append([s, max(t, s), (name, s)])
    end = max(times)
    for key, st in stacks.items():
        for s, name in st:
            lanes[key].append([s, end, (name, s)])
    return lanes


def _plain_bind(lanes: dict, tops: dict, e: dict):
    """The slice an endpoint binds to, or None: the innermost slice enclosing it; an f
    without bp "e" that nothing encloses: the next slice at the top level."""
    key = (e.get("pid"), e.get("tid"))
    cand = lanes.get(key, [])
    t = _ns_of(e["ts"])
    inside = [c for c in cand if c[0] <= t < c[1] or c[0] == t]
    if inside:
        return max(inside, key=lambda c: (c[0], -(c[1] - c[0])))[2]
    if e.get("ph") == "f" and e.get("bp") != "e":
        if key not in tops:  # slices no other slice holds (the longer one first)
            order = sorted(cand, key=lambda c: (c[0], -(c[1] - c[0])))
            tops[key], reach = [], None
            for c in order:
                if reach is None or c[0] >= reach:
                    tops[key].append(c)
                reach = c[1] if reach is None else max(reach, c[1])
        nxt = [c for c in tops[key] if c[0] >= t]
        if nxt:
            return nxt[0][2]
    return None


def plain_flows(events: list) -> dict:
    """Flows paired per (cat, id) (v1) or bind_id (v2), in time: an end (f, t, flow_in) is
    linked from the latest start or step of its id before it (a start first at equal
    times); a step with no start before it starts nothing. By plain Python."""
    lanes, tops = _plain_slices(events), {}
    groups: dict = defaultdict(list)
    for e in events:
        if e.get("ph") in ("s", "t", "f") and e.get("id") is not None:
            groups[("v1", e.get("cat"), json.dumps(e["id"]))].append(e)
        elif e.get("ph") in ("X", "B") and e.get("bind_id") is not None \
                and (e.get("flow_in") or e.get("flow_out")):
            groups[("v2", json.dumps(e["bind_id"]))].append(e)

    def is_in(e):
        return e.get("ph") in ("t", "f") or bool(e.get("flow_in"))

    def is_out(e):
        return e.get("ph") in ("s", "t") or bool(e.get("flow_out"))

    got = {"ends": 0, "backwards": 0, "starts": 0, "no_slice": 0, "self": 0, "pairs": []}
    for g in groups.values():
        g = sorted(g, key=lambda e: (_ns_of(e["ts"]), 1 if is_in(e) else 0))
        last, used = None, set()
        for i, e in enumerate(g):
            if is_in(e):
                if last is None:
                    got["ends"] += 1
                    got["backwards"] += any(is_out(x) and not is_in(x) for x in g[i + 1:])
                else:
                    used.add(last)
                    a, b = _plain_bind(lanes, tops, g[last]), _plain_bind(lanes, tops, e)
                    if a is None or b is None:
                        got["no_slice"] += 1
                    elif a == b:
                        got["self"] += 1
                    else:
                        got["pairs"].append((a, b))
            if is_out(e) and (not is_in(e) or last is not None):
                last = i
        got["starts"] += sum(1 for i, e in enumerate(g)
                             if is_out(e) and not is_in(e) and i not in used)
    return got


def plain_launch_links(events: list) -> int:
    """GPU work whose args.correlation is some runtime call's, by plain Python."""
    runtime = {e["args"]["correlation"] for e in events
               if e.get("ph") == "X" and e.get("cat") in ("cuda_runtime", "cuda_driver")
               and "correlation" in (e.get("args") or {})}
    return sum(1 for e in events if e.get("ph") == "X"
               and e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset")
               and (e.get("args") or {}).get("correlation") in runtime)


def _warning_for(p: dict) -> str | None:
    """The one flow warning the plain counts call for (its wording, fixed here)."""
    parts = []
    if p["ends"]:
        part = f"{p['ends']:,} flow end{'s' if p['ends'] != 1 else ''} without a start"
        if p["backwards"]:
            part += (f" ({p['backwards']:,} of them before a start of their flow id: an arrow "
                     "back in time is not drawn, as in Perfetto and chrome://tracing)")
        parts.append(part)
    if p["starts"]:
        parts.append(f"{p['starts']:,} flow start{'s' if p['starts'] != 1 else ''} "
                     "without an end")
    if p["no_slice"]:
        parts.append(f"{p['no_slice']:,} flow{'s' if p['no_slice'] != 1 else ''} with an end "
                     "on no slice")
    if p["self"]:
        parts.append(f"{p['self']:,} flow{'s' if p['self'] != 1 else ''} from a slice to "
                     "itself")
    return "; ".join(parts) + " (not drawn)" if parts else None


def _drawn(tr) -> list:
    """The trace's flows as ((name, abs start), (name, abs start)) pairs, sorted."""
    t0 = tr.t0_abs_ns
    return sorted(((tr.name_of(s), int(tr.start[s]) + t0), (tr.name_of(d), int(tr.start[d]) + t0))
                  for s, d in zip(tr.flow_src.tolist(), tr.flow_dst.tolist()))


def _flow_warnings(tr) -> list[str]:
    return [w for w in tr.warnings if " flow" in w and "(not drawn)" in w]


def _check_flows(tr, events: list, where) -> dict:
    p = plain_flows(events)
    assert _drawn(tr) == sorted(p["pairs"]), where
    want = _warning_for(p)
    assert _flow_warnings(tr) == ([want] if want else []), (where, tr.warnings)
    return p


def _flow_events() -> list[dict]:
    """Two threads of slices and the flows between them, every odd pairing once."""
    evs = []
    for k in range(8):  # CPU ops on thread 1, "kernels" on thread 2
        evs.append(_x(k, name=f"cpu{k}", tid=1, ts=100 * k, dur=50))
        evs.append(_x(k, name=f"gpu{k}", tid=2, ts=100 * k + 60, dur=30))
    evs += [
        # 1: the f before its s in the file (not in time): paired
        {"ph": "f", "id": 1, "cat": "ac2g", "pid": 1, "tid": 2, "ts": 70, "bp": "e"},
        {"ph": "s", "id": 1, "cat": "ac2g", "pid": 1, "tid": 1, "ts": 10},
        # 2: the f earlier in time than its s: an arrow back in time, not drawn
        {"ph": "s", "id": 2, "cat": "ac2g", "pid": 1, "tid": 1, "ts": 210},
        {"ph": "f", "id": 2, "cat": "ac2g", "pid": 1, "tid": 2, "ts": 165, "bp": "e"},
        # 3: an s with no f; 4: an f with no s
        {"ph": "s", "id": 3, "cat": "ac2g", "pid": 1, "tid": 1, "ts": 310},
        {"ph": "f", "id": 4, "cat": "ac2g", "pid": 1, "tid": 2, "ts": 370, "bp": "e"},
        # 5: one launch, three kernels (a CUDA graph): each kernel links to the launch
        {"ph": "s", "id": 5, "cat": "ac2g", "pid": 1, "tid": 1, "ts": 410},
        *[{"ph": "f", "id": 5, "cat": "ac2g", "pid": 1, "tid": 2, "ts": t, "bp": "e"}
          for t in (465, 565, 665)],
        # 6: s -> t -> f across the threads and back; same id, other category: its own
        {"ph": "s", "id": 6, "cat": "fwdbwd", "pid": 1, "tid": 1, "ts": 420},
        {"ph": "t", "id": 6, "cat": "fwdbwd", "pid": 1, "tid": 2, "ts": 470},
        {"ph": "f", "id": 6, "cat": "fwdbwd", "pid": 1, "tid": 1, "ts": 520, "bp": "e"},
        {"ph": "f", "id": 6, "cat": "ac2g", "pid": 1, "tid": 2, "ts": 575, "bp": "e"},
        # 7: a step with no start, then an end: neither is drawn
        {"ph": "t", "id": 7, "cat": "ac2g", "pid": 1, "tid": 1, "ts": 610},
        {"ph": "f", "id": 7, "cat": "ac2g", "pid": 1, "tid": 2, "ts": 670, "bp": "e"},
        # 8: a start on no slice (between the ops)
        {"ph": "s", "id": 8, "cat": "ac2g", "pid": 1, "tid": 1, "ts": 760},
        {"ph": "f", "id": 8, "cat": "ac2g", "pid": 1, "tid": 2, "ts": 770, "bp": "e"},
        # v2: out on one slice, in on two later ones
        _x(20, name="v2out", tid=3, ts=5, dur=10, bind_id="0x9", flow_out=True),
        _x(21, name="v2in", tid=4, ts=30, dur=10, bind_id="0x9", flow_in=True),
        _x(22, name="v2in2", tid=4, ts=50, dur=10, bind_id="0x9", flow_in=True),
        _x(23, name="v2early", tid=4, ts=1, dur=2, bind_id="0x9", flow_in=True),
    ]
    return evs


def test_flow_pairing_cases(tmp_path):
    evs = _flow_events()
    p = plain_flows(evs)
    # the cases above, counted by hand: the plain pairing is the one meant. Ends without a
    # start: 2 (back in time), 4, 6's ac2g end, 7's step and end, v2early (back in time);
    # starts without an end: 2 and 3; on no slice: 8
    assert (p["ends"], p["backwards"], p["starts"], p["no_slice"], p["self"]) == (6, 2, 2, 1, 0)
    assert len(p["pairs"]) == 1 + 3 + 2 + 2
    rng = random.Random(7)
    for order in ("file", "reversed", "shuffled"):
        ordered = list(evs)
        if order == "reversed":
            ordered.reverse()
        elif order == "shuffled":
            rng.shuffle(ordered)
        path = _write(tmp_path / f"{order}.json", _trace_text(ordered))
        for name, tr, _ in _loads(path):
            _check_flows(tr, evs, (order, name))
            assert _flow_warnings(tr) == [
                "6 flow ends without a start (2 of them before a start of their flow id: an "
                "arrow back in time is not drawn, as in Perfetto and chrome://tracing); 2 flow "
                "starts without an end; 1 flow with an end on no slice (not drawn)"]


def test_flow_pairs_across_worker_ranges(tmp_path):
    """Starts in the loading process's range, ends in the worker's, and the other way."""
    evs = []
    for k in range(600):
        evs.append(_x(k, name=f"cpu{k}", tid=1, ts=100 * k, dur=50))
        evs.append(_x(k, name=f"gpu{k}", tid=2, ts=100 * k + 60, dur=30))
    ends = [{"ph": "f", "id": k, "cat": "ac2g", "pid": 1, "tid": 2, "ts": 100 * k + 70,
             "bp": "e"} for k in range(600)]
    starts = [{"ph": "s", "id": k, "cat": "ac2g", "pid": 1, "tid": 1, "ts": 100 * k + 10}
              for k in range(600)]
    evs = ends[:300] + evs + starts + ends[300:]
    evs.append({"ph": "f", "id": 9999, "cat": "ac2g", "pid": 1, "tid": 2, "ts": 70, "bp": "e"})
    path = _write(tmp_path / "t.json", _trace_text(evs))
    for name, tr, loader in _loads(path):
        p = _check_flows(tr, evs, name)
        assert len(tr.flow_src) == 600 and p["ends"] == 1
        if name == "workers":
            assert loader.ranges == 2


@needs_shared
def test_deepseek_flows_and_launch_links_hold_in_any_order(tmp_path):
    src = SHARED / "deepseek_train.json"
    data = json.loads(src.read_text())
    evs = data["traceEvents"] if isinstance(data, dict) else data
    # the README's fact: 4,876 ac2g flow events
    assert sum(1 for e in evs if e.get("ph") in ("s", "f") and e.get("cat") == "ac2g") == 4876
    p = plain_flows(evs)
    links = plain_launch_links(evs)
    assert len(p["pairs"]) == 991 and links == 983  # as the plain pairing finds them
    shuffled = list(evs)
    random.Random(3).shuffle(shuffled)
    copy = _write(tmp_path / "shuffled.json", json.dumps({"traceEvents": shuffled}))
    for path in (src, copy):
        tr = load(str(path))
        _check_flows(tr, evs, path.name)
        assert len(tr.launch_of) == links
        assert tr.phase_counts.get("s", 0) + tr.phase_counts.get("f", 0) == \
            sum(1 for e in evs if e.get("ph") in ("s", "f"))
    assert main(["summary", str(src), "--json"]) == 0


@needs_shared
def test_deepseek_summary_json_flows(capsys):
    src = SHARED / "deepseek_train.json"
    evs = json.loads(src.read_text())
    evs = evs["traceEvents"] if isinstance(evs, dict) else evs
    p = plain_flows(evs)
    assert main(["summary", str(src), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["flows"] == len(p["pairs"]) and out["kernel_launch_links"] == \
        plain_launch_links(evs)
    assert _warning_for(p) in out["warnings"]
    assert _warning_for(p) == "2,853 flow ends without a start; 57 flow starts without an end " \
        "(not drawn)"


@needs_shared
@pytest.mark.parametrize("name", ["catapult_flow_unbalanced.json", "perfetto_flow_v2.json"])
def test_shared_flow_traces(name):
    evs = json.loads((SHARED / name).read_text())
    evs = evs["traceEvents"] if isinstance(evs, dict) else evs
    for how, kw in (("one", {"workers": 1}), ("workers", {"workers": 2, "parallel_min": 0,
                                                          "piece_bytes": 8192})):
        tr = Loader(str(SHARED / name), **kw).run()
        _check_flows(tr, evs, (name, how))
    if name == "perfetto_flow_v2.json":
        # Perfetto's own expectation for this file (test_flow_events_json_v2 in its
        # test/trace_processor/diff_tests/parser/parsing/tests.py)
        pairs = sorted((tr.name_of(s), tr.name_of(d))
                       for s, d in zip(tr.flow_src.tolist(), tr.flow_dst.tolist()))
        assert pairs == sorted([("SenderB", "Blergh"), ("SenderA", "OtherSlice"),
                                ("OtherSlice", "SomeSlice"), ("OtherSlice", "SomeOtherSlice")])
    else:  # the README's facts: B/E pairs that do not balance
        assert sum(1 for e in evs if e.get("ph") == "B") == 1625
        assert sum(1 for e in evs if e.get("ph") == "E") == 1622
        assert tr.slice_count == 1625


def test_flow_warning_reaches_the_summary_and_the_app_warnings(tmp_path, capsys):
    evs = _flow_events()
    path = _write(tmp_path / "t.json", _trace_text(evs))
    want = _warning_for(plain_flows(evs))
    assert main(["summary", str(path)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "warning: " + want in out
    # the app shows Trace.warnings (its status line counts them, ? lists them)
    assert want in load(str(path)).warnings


# ----------------------------------------------------------------------------- the app

async def test_app_opens_odd_values_with_the_warnings(tmp_path):
    """The timeline opens on a file with every odd value here and says what it skipped and
    did not draw (the status line counts the warnings; they are the summary's)."""
    from conftest import loaded

    from tracetui.app.app import TraceApp

    evs = _flow_events() + [_x(90, dur=9.3e18), _x(91, ts="910", dur="5"),
                            _x(92, args={"big": "__U64__", "huge": "__INF__"}),
                            {"ph": "C", "name": "ctr", "pid": 1, "ts": 5,
                             "args": {"v": "__U64__", "w": "__INF__"}},
                            {"ph": "C", "name": "ctr", "pid": 1, "ts": 50, "args": {"v": 1}}]
    path = _write(tmp_path / "t.json", _trace_text(evs, raw=HUGE))
    app = TraceApp(str(path))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(app, pilot, ok=True)
        warnings = app.trace.warnings
        assert "skipped 1 events: dur out of range for int64 nanoseconds (first: 9.3e+18 µs)" \
            in warnings
        assert _warning_for(plain_flows(evs)) in warnings
        assert any(app.trace.name_of(i) == "op91" for i in range(app.trace.slice_count))
        assert "1 counter values beyond float64 (ignored)" in warnings
        await pilot.pause(0.2)  # drawn (the counter lane too) without an internal error
        assert not app.error
        await pilot.press("q")
