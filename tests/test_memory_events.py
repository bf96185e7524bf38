"""Memory events (``[memory]`` instants of ``profile_memory=True`` traces): their args as
columns on every path of the loader, and each device's figures in ``summary --json``
(``memory[]``).

Expectations come from the raw JSON with plain Python: per (Device Type, Device Id), the
events in time order (file order among equal times), the curve ``Total Allocated`` where
every event has it, else the running sum of ``Bytes``; never from the code under test.
"""

from __future__ import annotations

import gzip
import json
import os
import random
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest

from tracetui.analysis.report import analyze
from tracetui.cli import main
from tracetui.trace.loader import Loader
from tracetui.trace.pieces import HEAD_BYTES, KIND_IJSON, KIND_IJSON_FILE

ROOT = Path(__file__).resolve().parent.parent
RESNET = ROOT.parent / "shared" / "traces" / "kineto2021_resnet50.pt.trace.json.gz"

PATHS = [
    ("msgspec", {"workers": 1}),
    ("tiny-pieces", {"workers": 1, "piece_bytes": 256}),
    ("workers", {"workers": 2, "parallel_min": 0, "piece_bytes": 2048}),
    ("ijson", {"workers": 1}),  # (traceEvents past the head: the file streamed by ijson)
]


def _events(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as f:
        return json.load(f)["traceEvents"]


def _ns(ts) -> int:
    return int(Decimal(str(ts)) * 1000)


def _id(v):
    """A pid/tid as Kineto means it: a string of ASCII digits is that number."""
    if isinstance(v, str) and v.strip().lstrip("-").isdigit() and v.strip().isascii():
        return int(v.strip())
    return v


def reference(events: list[dict]) -> dict[tuple[int, int], dict]:
    """Per device, from the raw events, by plain Python."""
    t0 = min(_ns(e["ts"]) for e in events if isinstance(e.get("ts"), (int, float)))
    per: dict[tuple[int, int], list] = defaultdict(list)
    for i, e in enumerate(events):
        a = e.get("args")
        if e.get("ph") != "i" or e.get("name") != "[memory]" or not isinstance(a, dict) \
                or type(a.get("Bytes")) is not int:
            continue
        per[(a.get("Device Type", -1), a.get("Device Id", -1))].append((_ns(e["ts"]), i, a, e))
    # the slices of each thread (Python frames left out), for who ran at an instant
    threads: dict[tuple, list[tuple[int, int, str]]] = defaultdict(list)
    for e in events:
        if e.get("ph") == "X" and isinstance(e.get("ts"), (int, float)) and \
                isinstance(e.get("dur"), (int, float)) and e.get("cat") != "python_function":
            threads[(_id(e.get("pid")), _id(e.get("tid")))].append(
                (_ns(e["ts"]), _ns(e["ts"]) + _ns(e["dur"]), e.get("name")))

    def who(ev: dict) -> str | None:
        t = _ns(ev["ts"])
        inside = [s for s in threads[(_id(ev.get("pid")), _id(ev.get("tid")))]
                  if s[0] <= t < s[1] or s[0] == t]  # (an instant at an end: after it)
        return max(inside, key=lambda s: (s[0], -s[1]))[2] if inside else None

    out = {}
    for dev, evs in per.items():
        evs.sort(key=lambda x: (x[0], x[1]))
        if all("Total Allocated" in a for _, _, a, _ in evs):
            cur = [a["Total Allocated"] for _, _, a, _ in evs]
        else:
            run, cur = 0, []
            for _, _, a, _ in evs:
                run += a["Bytes"]
                cur.append(run)
        peak = max(cur)
        at = evs[cur.index(peak)][0] - t0
        sizes = [a["Bytes"] for _, _, a, _ in evs]
        res = [a["Total Reserved"] for _, _, a, _ in evs if "Total Reserved" in a]
        k = cur.index(peak)
        last = max((j for j in range(k + 1) if sizes[j] > 0), default=None)
        out[dev] = {"peak_allocated_bytes": peak, "peak_at_us": round(at / 1000, 3),
                    "peak_reserved_bytes": max(res) if res else None,
                    "peak_op": who(evs[k][3]),
                    "peak_alloc_op": who(evs[last][3]) if last is not None else None,
                    "peak_alloc_bytes": sizes[last] if last is not None else None,
                    "end_allocated_bytes": cur[-1],
                    "allocs": sum(1 for b in sizes if b > 0),
                    "frees": sum(1 for b in sizes if b < 0),
                    "alloc_bytes": sum(b for b in sizes if b > 0),
                    "free_bytes": -sum(b for b in sizes if b < 0), "events": len(evs),
                    "relative": not all("Total Allocated" in a for _, _, a, _ in evs)}
    return out


def _rows(report: dict) -> dict[tuple[int, int], dict]:
    return {(r["device_type"], r["device_id"]): {k: v for k, v in r.items()
                                                 if k not in ("device_type", "device_id",
                                                              "device", "live_at_end",
                                                              "live_at_end_bytes",
                                                              "frees_of_earlier")}
            for r in report["memory"]}


@pytest.mark.skipif(not RESNET.is_file(), reason="../shared/traces not present")
def test_resnet_memory_is_the_raw_json():
    """The 2021 ResNet-50 trace: 12,838 events on the CPU and CUDA:0, no totals (relative)."""
    want = reference(_events(RESNET))
    got = _rows(analyze(Loader(str(RESNET)).run()))
    assert got == want
    assert set(got) == {(0, -1), (1, 0)} and all(r["relative"] for r in got.values())
    report = analyze(Loader(str(RESNET)).run())
    assert all(r["live_at_end"] is None for r in report["memory"])  # no Addr: no pairs
    assert report["memory_allocations"] == []
    assert sum(r["events"] for r in got.values()) == 12_838


def _generated(n: int, seed: int) -> list[dict]:
    """A trace with totals: allocations and frees on two GPUs and the CPU, several threads,
    equal times, some odd events (no Bytes, Bytes as text, args not an object)."""
    rng = random.Random(seed)
    evs: list[dict] = [{"ph": "X", "name": "step", "cat": "cpu_op", "pid": 1, "tid": 1,
                        "ts": 0, "dur": n * 3}]
    live: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
    total: dict[tuple[int, int], int] = defaultdict(int)
    reserved: dict[tuple[int, int], int] = defaultdict(int)
    t = 10
    for i in range(n):
        dev = rng.choice([(1, 0), (1, 1), (0, -1)])
        t += rng.choice([0, 1, 3])
        if live[dev] and rng.random() < 0.45:
            addr, size = live[dev].pop(rng.randrange(len(live[dev])))
            b = -size
        else:
            size = rng.choice([512, 4096, 1 << 20, 3 << 20])
            addr = 0x7F0000000000 + i * 4096
            live[dev].append((addr, size))
            b = size
        total[dev] += b
        reserved[dev] = max(reserved[dev], (total[dev] + (2 << 20) - 1) // (2 << 20) * (2 << 20))
        args = {"Device Type": dev[0], "Device Id": dev[1], "Bytes": b, "Addr": addr}
        if dev[0] == 1:
            args["Total Allocated"] = total[dev]
            args["Total Reserved"] = reserved[dev]
        evs.append({"ph": "i", "s": "t", "name": "[memory]", "cat": "cpu_instant_event",
                    "pid": 1, "tid": rng.choice([1, 2, "3"]), "ts": t, "args": args})
    evs.append({"ph": "i", "s": "t", "name": "[memory]", "pid": 1, "tid": 1, "ts": 5,
                "args": {"Device Type": 1, "Device Id": 0}})  # no Bytes
    evs.append({"ph": "i", "s": "t", "name": "[memory]", "pid": 1, "tid": 1, "ts": 6,
                "args": {"Device Type": 1, "Device Id": 0, "Bytes": "many"}})
    evs.append({"ph": "i", "s": "t", "name": "[memory]", "pid": 1, "tid": 1, "ts": 7,
                "args": [1, 2]})
    rng.shuffle(evs)  # the file's order is not the time order
    return evs


@pytest.mark.parametrize("name,kw", PATHS, ids=[p[0] for p in PATHS])
def test_generated_memory_on_every_loader_path(tmp_path, name, kw):
    evs = _generated(600, 3)
    path = tmp_path / "mem.json"
    pad = '"pad": "' + "x" * (HEAD_BYTES + 10) + '", ' if name == "ijson" else ""
    path.write_text('{' + pad + '"traceEvents": [\n' + ",\n".join(json.dumps(e) for e in evs)
                    + "\n]}")
    os.utime(path, (1, 1))
    loader = Loader(str(path), **kw)
    tr = loader.run()
    kinds = {kind for kind, _, _ in loader.pieces.pieces}
    assert (name == "ijson") == bool(kinds & {KIND_IJSON, KIND_IJSON_FILE}), kinds
    assert len(tr.memory) == 600
    assert "3 [memory] events without an integer Bytes (not counted as memory)" in \
        tr.warnings, tr.warnings
    got = _rows(analyze(tr))
    want = reference(evs)
    assert got == want
    assert not got[(1, 0)]["relative"] and got[(0, -1)]["relative"]
    assert got[(1, 1)]["peak_reserved_bytes"] >= got[(1, 1)]["peak_allocated_bytes"] > 0
    # the columns are the events' own, in time order
    m = tr.memory
    assert (m.ts[1:] >= m.ts[:-1]).all()
    by_addr = {e["args"]["Addr"]: e["args"]["Bytes"] for e in evs
               if isinstance(e.get("args"), dict) and "Addr" in e["args"] and e["args"]["Bytes"] > 0}
    assert {int(a): int(b) for a, b in zip(m.addr, m.bytes) if b > 0} == by_addr


def test_summary_json_and_csv_of_memory(tmp_path, capsys):
    evs = _generated(200, 5)
    path = tmp_path / "mem.json"
    path.write_text(json.dumps({"traceEvents": evs}))
    assert main(["summary", str(path), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["memory"]
    assert [r["device"] for r in rows] == ["CPU", "CUDA:0", "CUDA:1"]
    assert main(["summary", str(path), "--csv", "memory"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("device_type,device_id,device,relative,peak_allocated_bytes")
    assert len(lines) == 4


def test_a_trace_without_memory_events_has_none(tmp_path):
    path = tmp_path / "none.json"
    path.write_text(json.dumps({"traceEvents": [
        {"ph": "X", "name": "a", "pid": 1, "tid": 1, "ts": 0, "dur": 5},
        {"ph": "i", "name": "[memory]x", "pid": 1, "tid": 1, "ts": 1, "args": {"Bytes": 4}}]}))
    tr = Loader(str(path)).run()
    assert len(tr.memory) == 0 and analyze(tr)["memory"] == []


CAPTURE = ROOT / "sample_traces" / "torch" / "ops_cnn_memory.json"


def test_memory_by_operator_is_key_averages():
    """``sample_traces/capture_ops.py --model cnn --memory`` (CPU torch, profile_memory=True):
    every operator's self and total CPU memory and calls equal ``key_averages()`` of the
    same run (the user annotations, module frames and Python functions it also lists are
    not operators here)."""
    report = analyze(Loader(str(CAPTURE)).run())
    got = {r["name"]: r for r in report["memory_ops"]}
    ka = {r["name"]: r for r in json.loads(
        CAPTURE.with_name("ops_cnn_memory.key_averages.json").read_text())["by_name"]}
    ops = {r["name"] for r in report["operators"]}
    compared = 0
    for name, want in ka.items():
        if name not in ops:
            continue
        g = got.get(name)
        if g is None:  # no memory event in any call
            assert want["cpu_memory_usage"] == want["self_cpu_memory_usage"] == 0, name
            continue
        assert (g["calls"], g["self_cpu_bytes"], g["cpu_bytes"]) == (
            want["count"], want["self_cpu_memory_usage"], want["cpu_memory_usage"]), name
        compared += 1
    assert compared >= 40
    assert all(r["device_bytes"] == 0 for r in got.values())  # a CPU run


def test_memory_by_operator_edges_fold_and_threads(tmp_path):
    """PyTorch's counting, worked by hand: events at an op's start and end count (both
    ends included); an event on another thread inside its time counts too; a child's total
    comes off its parent's self; ``aten::add_`` calling ``aten::add_`` (its only child) is
    one call whose self includes the inner one's."""
    def op(name, ts, dur, tid=1):
        return {"ph": "X", "cat": "cpu_op", "name": name, "pid": 1, "tid": tid, "ts": ts,
                "dur": dur}

    def mem(ts, b, tid=1):
        return {"ph": "i", "s": "t", "name": "[memory]", "pid": 1, "tid": tid, "ts": ts,
                "args": {"Device Type": 0, "Device Id": -1, "Bytes": b}}

    evs = [op("outer", 100, 100), op("inner", 120, 30), op("aten::add_", 300, 50),
           op("aten::add_", 310, 20), op("other", 400, 10, tid=2),
           mem(100, 1), mem(120, 10), mem(150, 100), mem(200, 1000),  # edges of both
           mem(160, 10000, tid=2),  # another thread, inside outer
           mem(315, 7), mem(340, 3),  # inner add_, then outer add_ alone
           mem(500, 99999)]  # outside every op
    path = tmp_path / "ops.json"
    path.write_text(json.dumps({"traceEvents": evs}))
    got = {r["name"]: r for r in analyze(Loader(str(path)).run())["memory_ops"]}
    assert got["inner"]["cpu_bytes"] == 110 and got["inner"]["self_cpu_bytes"] == 110
    assert got["outer"]["cpu_bytes"] == 1 + 10 + 100 + 1000 + 10000
    assert got["outer"]["self_cpu_bytes"] == 1 + 1000 + 10000
    assert got["aten::add_"]["calls"] == 1
    assert got["aten::add_"]["cpu_bytes"] == got["aten::add_"]["self_cpu_bytes"] == 10
    assert got["aten::add_"]["allocs"] == 2
    assert "other" not in got  # no memory event in its time


def test_allocations_paired_by_address_are_the_raw_json(tmp_path):
    """Each allocation with the free that follows it at its address, worked by walking the
    raw events in time order: the pairs, what is still allocated at the end, and frees of
    memory allocated before the trace (a free first at its address)."""
    from tracetui.analysis.memory import device_label, memory_allocations

    evs = _generated(500, 9)
    # a free of memory allocated before the trace began
    evs.append({"ph": "i", "s": "t", "name": "[memory]", "pid": 1, "tid": 1, "ts": 1,
                "args": {"Device Type": 1, "Device Id": 1, "Bytes": -4096, "Addr": 12345}})
    path = tmp_path / "pairs.json"
    path.write_text(json.dumps({"traceEvents": evs}))
    tr = Loader(str(path)).run()
    report = analyze(tr)
    t0 = min(_ns(e["ts"]) for e in evs if isinstance(e.get("ts"), (int, float)))
    end = max(_ns(e["ts"]) + _ns(e.get("dur", 0)) for e in evs
              if isinstance(e.get("ts"), (int, float))) - t0
    mem = sorted(((_ns(e["ts"]), i, e["args"]) for i, e in enumerate(evs)
                  if e.get("name") == "[memory]" and isinstance(e.get("args"), dict)
                  and type(e["args"].get("Bytes")) is int), key=lambda x: (x[0], x[1]))
    open_: dict = {}
    want_pairs, orphans = [], defaultdict(int)
    for t, _, a in mem:
        dev = (a["Device Type"], a["Device Id"])
        key = (dev, a["Addr"])
        if a["Bytes"] > 0:
            open_[key] = (t, a["Bytes"])
        elif key in open_:
            t_a, b = open_.pop(key)
            want_pairs.append((device_label(*dev), b, t_a - t0, t - t0))
        else:
            orphans[dev] += 1
    live = defaultdict(list)
    for (dev, _), (t_a, b) in open_.items():
        live[dev].append(b)
        want_pairs.append((device_label(*dev), b, t_a - t0, None))
    got = [(r["device"], r["bytes"], round(r["alloc_us"] * 1000),
            None if r["free_us"] is None else round(r["free_us"] * 1000))
           for r in memory_allocations(tr, top=10**9)]
    assert sorted(got, key=str) == sorted(want_pairs, key=str)
    for r in memory_allocations(tr, top=10**9):  # the lifetime: to the free, else the end
        until = r["free_us"] * 1000 if r["free_us"] is not None else end
        assert abs(r["lifetime_us"] * 1000 - (until - r["alloc_us"] * 1000)) < 1, r
    assert any(p[3] is None for p in got)
    for r in report["memory"]:
        dev = (r["device_type"], r["device_id"])
        assert (r["live_at_end"], r["live_at_end_bytes"], r["frees_of_earlier"]) == (
            len(live[dev]), sum(live[dev]), orphans[dev]), dev
    assert orphans[(1, 1)] == 1
    top = report["memory_allocations"]
    assert len(top) == 100 and top[0]["bytes"] == max(p[1] for p in want_pairs)


@pytest.mark.parametrize("name,kw", PATHS[:3], ids=[p[0] for p in PATHS[:3]])
def test_odd_memory_args_load_and_are_read_as_values(tmp_path, name, kw):
    """Values no allocation has (a Bytes too large, not finite, true; a Device Id beyond
    int32; an address beyond 64 bits or negative; numbers as text): the event is kept or
    left out, one line says so, and nothing stops the load."""
    def ev(ts, **args):
        return {"ph": "i", "s": "t", "name": "[memory]", "pid": 1, "tid": 1, "ts": ts,
                "args": args}

    evs = [{"ph": "X", "name": "op", "cat": "cpu_op", "pid": 1, "tid": 1, "ts": 0, "dur": 100},
           ev(1, **{"Device Type": 1, "Device Id": 0, "Bytes": 10, "Addr": 2**64 + 1}),
           ev(2, **{"Device Type": 1, "Device Id": 2**40, "Bytes": 20, "Addr": -5}),
           ev(3, **{"Device Type": "1", "Device Id": "0", "Bytes": "30"}),
           ev(4, **{"Device Type": 1, "Device Id": 0, "Bytes": 2**70}),
           ev(5, **{"Device Type": 1, "Device Id": 0, "Bytes": True}),
           ev(6, **{"Device Type": 1, "Device Id": 0, "Bytes": 1e300}),
           ev(7, **{"Device Type": 1, "Device Id": 0, "Bytes": 40.0, "Total Allocated": -3})]
    path = tmp_path / "odd.json"
    path.write_text(json.dumps({"traceEvents": evs}))
    os.utime(path, (1, 1))
    tr = Loader(str(path), **kw).run()
    m = tr.memory
    assert m.bytes.tolist() == [10, 20, 30, 40]
    assert m.addr.tolist() == [0, 0, 0, 0]
    assert m.device_id.tolist() == [0, -1, 0, 0] and m.device_type.tolist() == [1, 1, 1, 1]
    assert "3 [memory] events without an integer Bytes (not counted as memory)" in tr.warnings
    rows = analyze(tr)["memory"]
    assert [(r["device"], r["events"]) for r in rows] == [("CUDA", 1), ("CUDA:0", 3)]


def test_summary_text_shows_memory(capsys):
    assert main(["summary", str(CAPTURE)]) == 0
    out = capsys.readouterr().out
    assert "memory per device" in out and "memory by operator" in out
    line = next(x for x in out.splitlines() if x.strip().startswith("aten::empty "))
    got = {r["name"]: r for r in analyze(Loader(str(CAPTURE)).run())["memory_ops"]}
    from tracetui.tables import fmt_size
    assert fmt_size(got["aten::empty"]["self_cpu_bytes"]) in line


def test_memory_events_are_columns_not_instants(tmp_path):
    """[memory] events are columns of their own, not instants: the first one sets the
    trace's start when it comes before every slice, a thread with memory events only is a
    lane of its own, and one whose Bytes is not an integer stays an instant (drawn)."""
    events = [
        {"ph": "i", "s": "t", "name": "[memory]", "pid": 1, "tid": 9, "ts": 100,
         "args": {"Device Type": 0, "Device Id": -1, "Bytes": 64}},
        {"ph": "X", "name": "aten::mm", "cat": "cpu_op", "pid": 1, "tid": 1, "ts": 150,
         "dur": 20},
        {"ph": "i", "s": "t", "name": "[memory]", "pid": 1, "tid": 1, "ts": 160,
         "args": {"Device Type": 0, "Device Id": -1, "Bytes": 32}},
        {"ph": "i", "s": "t", "name": "[memory]", "pid": 1, "tid": 1, "ts": 165,
         "args": {"Device Type": 0, "Device Id": -1, "Bytes": "lots"}},
        {"ph": "i", "s": "t", "name": "marker", "pid": 1, "tid": 1, "ts": 166},
    ]
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"traceEvents": events}))
    for name, kw in PATHS:
        tr = Loader(str(path), **kw).run()
        m = tr.memory
        assert m.ts.tolist() == [0, 60_000], name  # (ns from the first event: the memory one)
        assert m.bytes.tolist() == [64, 32]
        lanes = [tr.lanes[int(i)] for i in m.lane.tolist()]
        assert [ln.tid for ln in lanes] == [9, 1]
        names = sorted(tr.strings[int(n)] for n in tr.inst_name.tolist())
        assert names == ["[memory]", "marker"], name  # the free-form one, and the marker
        assert tr.phase_counts.get("i") == 4
