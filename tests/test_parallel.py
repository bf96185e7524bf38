"""Parallel loading (ranges of the events array parsed in worker processes, then merged) must
give the index a single stream gives, event for event, on every layout, on damaged and cut-off
files, and whenever it has to fall back to one stream.

The reference is the same loader with ``workers=1``; what is compared is everything a Trace
exposes, with names as text (string ids are numbered per process) and flows as a set.
"""

from __future__ import annotations

import gzip
import json
import re
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from test_damaged import _layout_events, _layouts
from tracetui.trace import parallel
from tracetui.trace.loader import Loader

SAMPLES = Path(__file__).resolve().parent.parent / "sample_traces"
DECODE = SAMPLES / "annotated.json"
CPU = SAMPLES / "cpu_torch.json"


def _load(path: Path, workers: int, pieces: int = 4096) -> tuple[object, Loader]:
    loader = Loader(str(path), workers=workers, parallel_min=0, piece_bytes=pieces)
    return loader.run(), loader


def _dump(tr) -> dict:
    """Everything a Trace holds, in a form that does not depend on how it was numbered."""
    text = np.array(tr.strings.strings, dtype=object)
    k = tr.kernels
    rows = sorted(set(tr.row[:: max(1, len(tr.row) // 40)].tolist()) | set(tr.row[-5:].tolist()))
    return {
        "lanes": [(ln.name, ln.kind, ln.pid, ln.tid, ln.device, ln.stream, ln.process, ln.thread,
                   ln.lo, ln.hi, ln.depth_bounds.tolist(), ln.instants.tolist())
                  for ln in tr.lanes],
        "start": tr.start.tolist(), "dur": tr.dur.tolist(), "depth": tr.depth.tolist(),
        "row": tr.row.tolist(),
        "name": text[tr.name].tolist(), "cat": text[tr.cat].tolist(),
        "corr": (tr.correlation.rows.tolist(), tr.correlation.values.tolist()),
        "ext": (tr.external_id.rows.tolist(), tr.external_id.values.tolist()),
        "launch": (tr.launch_of.rows.tolist(), tr.launch_of.values.tolist()),
        # bytes: NaN (a field the event did not have) equals NaN
        "kernels": {f: getattr(k, f).tobytes() for f in k.__dataclass_fields__},
        "flows": sorted(zip(tr.flow_src.tolist(), tr.flow_dst.tolist(),
                            text[tr.flow_cat].tolist())),
        "inst": (tr.inst_lane.tolist(), tr.inst_ts.tolist(), text[tr.inst_name].tolist(),
                 text[tr.inst_cat].tolist(), tr.inst_row.tolist()),
        "counters": [(c.name, c.pid, c.series, c.ts.tolist(), c.values.tobytes())
                     for c in tr.counters],
        "header": tr.header, "events": tr.events, "phases": tr.phase_counts,
        # where ijson met damage depends on how far its buffer had read: "near byte N"
        "warnings": [re.sub(r"near byte [\d,]+", "near byte N", w) for w in tr.warnings],
        "truncated": tr.truncated, "complete": tr.complete, "t0": tr.t0_abs_ns,
        "end": tr.end_ns, "extra_args": tr.extra_args,
        "args": [(r, _plain(tr.pieces.event(r))) for r in rows],
    }


def _plain(ev) -> object:
    if ev is None:
        return None
    return {f: getattr(ev, f) for f in ev.__struct_fields__} | {"ph": ev.ph}


def _assert_same(path: Path, workers: int = 2, pieces: int = 4096, expect_ranges=None):
    one, _ = _load(path, 1, pieces)
    many, loader = _load(path, workers, pieces)
    a, b = _dump(one), _dump(many)
    for key in a:
        assert a[key] == b[key], key
    if expect_ranges is not None:
        assert loader.ranges == expect_ranges
    return loader, one


# ----------------------------------------------------------------------------- same index


@pytest.mark.parametrize("workers", [2, 3, 4])
@pytest.mark.parametrize("path", [DECODE, CPU], ids=["decode", "cpu_torch"])
def test_samples_same_as_one_stream(path, workers):
    loader, tr = _assert_same(path, workers, pieces=16 << 10)
    assert loader.ranges == workers  # the ranges were really parsed apart
    assert tr.events > 1000


@pytest.mark.parametrize("name", sorted(_layouts()))
def test_layouts_same_as_one_stream(tmp_path, name):
    path = tmp_path / f"{name}.json"
    path.write_bytes(_layouts()[name])
    _assert_same(path, workers=2, pieces=512)
    _assert_same(path, workers=3, pieces=200)


def test_nested_lists_on_their_own_lines_do_not_fool_the_cut(tmp_path):
    """A line of a list of objects inside args looks like an event boundary: a range that
    starts there fails to prove its start, and the load goes on as one stream."""
    path = tmp_path / "nested.json"
    path.write_bytes(_layouts()["nested-lists-own-lines"])
    fooled = 0
    for workers in range(2, 9):
        loader, _ = _assert_same(path, workers=workers, pieces=300)
        fooled += loader.ranges < workers
    assert fooled  # at least one planned cut fell inside an event's args


def _write(path: Path, events: list[dict], tail: str = ', "traceName": "t"}\n') -> Path:
    path.write_text('{"schemaVersion": 1, "traceEvents": [\n'
                    + ",\n".join(json.dumps(e) for e in events) + "\n]" + tail)
    return path


def _xs(n: int, tid: int = 1, t0: float = 100.0) -> list[dict]:
    return [{"ph": "X", "name": f"op{i % 13}", "cat": "cpu_op", "pid": 1, "tid": tid,
             "ts": t0 + 10 * i, "dur": 4, "args": {"i": i}} for i in range(n)]


def test_begin_before_the_cut_and_end_after_it(tmp_path):
    """A B open at the cut whose E lies in the next range: merging would drop the pair, so
    that range is parsed again in one stream, and the pair is found."""
    evs = _xs(400)
    evs.insert(10, {"ph": "B", "name": "long span", "pid": 1, "tid": 2, "ts": 150})
    evs.append({"ph": "E", "pid": 1, "tid": 2, "ts": 4100, "args": {"out": 1}})
    path = _write(tmp_path / "be.json", evs)
    loader, tr = _assert_same(path, workers=2, pieces=2048, expect_ranges=1)
    i = next(i for i in range(tr.slice_count) if tr.name_of(i) == "long span")
    assert tr.dur[i] == (4100 - 150) * 1000


def test_pairs_within_ranges_merge(tmp_path):
    """B/E pairs inside each range, and one still open at the end of the file."""
    evs = _xs(400)
    for k in (5, 150, 300):
        evs.insert(k, {"ph": "B", "name": f"span{k}", "pid": 1, "tid": 2, "ts": 10 * k})
        evs.insert(k + 3, {"ph": "E", "pid": 1, "tid": 2, "ts": 10 * k + 5})
    evs.append({"ph": "B", "name": "never ends", "pid": 1, "tid": 3, "ts": 4000})
    path = _write(tmp_path / "pairs.json", evs)
    _, tr = _assert_same(path, workers=3, pieces=2048, expect_ranges=3)
    assert any("never ended" in w for w in tr.warnings)


def test_metadata_later_wins_and_flows_cross_the_cut(tmp_path):
    evs = [{"ph": "M", "name": "thread_name", "pid": 1, "tid": 1, "args": {"name": "first"}}]
    evs += _xs(300)
    evs += [{"ph": "M", "name": "thread_name", "pid": 1, "tid": 1, "args": {"name": "second"}},
            {"ph": "M", "name": "process_labels", "pid": 9, "tid": 0, "args": {"labels": "GPU 0"}}]
    for i in range(0, 300, 7):  # launches in the first half, kernels in the second
        evs.insert(1 + i, {"ph": "s", "id": i, "cat": "ac2g", "name": "ac2g", "pid": 1, "tid": 1,
                           "ts": 100 + 10 * i + 1})
        evs.append({"ph": "X", "name": f"k{i % 5}", "cat": "kernel", "pid": 9, "tid": 7,
                    "ts": 100 + 10 * i + 5, "dur": 2,
                    "args": {"correlation": i, "device": 0, "stream": 7, "grid": [i, 1, 1]}})
        evs.append({"ph": "f", "id": i, "bp": "e", "cat": "ac2g", "name": "ac2g", "pid": 9,
                    "tid": 7, "ts": 100 + 10 * i + 5})
        evs.append({"ph": "C", "name": "mem", "pid": 1, "ts": 100 + 10 * i, "args": {"b": i}})
    evs.append({"ph": "s", "id": "str-id", "cat": "fwdbwd", "pid": 1, "tid": 1, "ts": 101})
    evs.append({"ph": "f", "id": "str-id", "cat": "fwdbwd", "pid": 1, "tid": 1, "ts": 501,
                "bp": "e"})
    path = _write(tmp_path / "meta.json", evs)
    _, tr = _assert_same(path, workers=2, pieces=2048, expect_ranges=2)
    assert any(ln.thread == "second" for ln in tr.lanes)
    assert len(tr.flow_src) >= 40


def test_names_that_are_not_strings_counted_once(tmp_path):
    evs = _xs(300)
    for k in (3, 250):
        evs[k]["name"] = 12345
        evs[k + 1]["name"] = [1, 2]
    path = _write(tmp_path / "nontext.json", evs)
    _, tr = _assert_same(path, workers=2, pieces=2048, expect_ranges=2)
    assert any("were not strings" in w for w in tr.warnings)


def test_epoch_float_times_in_the_second_half_switch_to_exact(tmp_path):
    """Float µs too big for float64 to keep ns, only after the cut: the worker says so and
    the whole load is redone exactly."""
    evs = _xs(300)
    for e in evs[200:]:
        e["ts"] = 1.7e15 + e["ts"] + 0.25
    path = _write(tmp_path / "exact.json", evs)
    _, tr = _assert_same(path, workers=2, pieces=2048)
    assert tr.start.dtype == np.int64


@pytest.mark.parametrize("where", [0.25, 0.75])
def test_damage_in_either_range(tmp_path, where):
    evs = _xs(400)
    text = ('{"traceEvents": [\n' + ",\n".join(json.dumps(e) for e in evs) + "\n]}\n")
    at = text.index('"op', int(len(text) * where))
    path = tmp_path / "damaged.json"
    path.write_text(text[:at] + "op" + text[at + 3:])  # a name without its opening quote
    _, tr = _assert_same(path, workers=2, pieces=1024)
    assert tr.truncated and 0 < tr.events < 400


@pytest.mark.parametrize("cut", [0.3, 0.6, 0.95, 0.9999])
def test_cut_off_file(tmp_path, cut):
    evs = _xs(400)
    text = '{"traceEvents": [\n' + ",\n".join(json.dumps(e) for e in evs) + "\n]}\n"
    path = tmp_path / "cut.json"
    path.write_text(text[: int(len(text) * cut)])
    _, tr = _assert_same(path, workers=3, pieces=1024)
    assert tr.truncated


def test_bare_array_and_trailing_keys(tmp_path):
    evs = _xs(300)
    bare = tmp_path / "bare.json"
    bare.write_text("[\n" + ",\n".join(json.dumps(e) for e in evs) + "\n]\n")
    _assert_same(bare, workers=2, pieces=2048, expect_ranges=2)
    keyed = _write(tmp_path / "keys.json", evs,
                   tail=', "traceName": "t", "baseTimeNanoseconds": 1700000000000000000}\n')
    _, tr = _assert_same(keyed, workers=2, pieces=2048, expect_ranges=2)
    assert tr.header["baseTimeNanoseconds"] == 1700000000000000000


def _gz(path: Path, data: bytes, members: int = 1) -> Path:
    step = -(-len(data) // members)
    path.write_bytes(b"".join(gzip.compress(data[i:i + step]) for i in range(0, len(data), step)))
    return path


@pytest.mark.parametrize("members", [1, 3])
@pytest.mark.parametrize("src", [DECODE, CPU], ids=["decode", "cpu_torch"])
def test_gzip_same_as_one_stream(tmp_path, src, members):
    """gzip: the worker decompresses to about the middle, finds its start and says where."""
    path = _gz(tmp_path / "t.json.gz", src.read_bytes(), members)
    loader, tr = _assert_same(path, workers=2, pieces=16 << 10, expect_ranges=2)
    assert loader.source.compressed and tr.events > 1000


@pytest.mark.parametrize("name", ["per-line", "indent-2", "nested-lists-own-lines", "one-line"])
def test_gzip_layouts_same_as_one_stream(tmp_path, name):
    _assert_same(_gz(tmp_path / "l.json.gz", _layouts()[name]), workers=2, pieces=512)


@pytest.mark.parametrize("how", ["cut", "junk", "corrupt"])
def test_gzip_damaged_after_the_middle(tmp_path, how):
    data = gzip.compress(DECODE.read_bytes())
    if how == "cut":
        data = data[: int(len(data) * 0.9)]
    elif how == "junk":
        data += b"this is not gzip"
    else:
        at = int(len(data) * 0.85)
        data = data[:at] + bytes(b ^ 0x5A for b in data[at:at + 64]) + data[at + 64:]
    path = tmp_path / "damaged.json.gz"
    path.write_bytes(data)
    _, tr = _assert_same(path, workers=2, pieces=16 << 10)
    assert tr.warnings


# ----------------------------------------------------------------------------- failures


def test_a_worker_that_dies_leaves_the_range_to_the_loader(tmp_path, monkeypatch):
    real = parallel._spawn

    def dying(path, start, end, piece_bytes, exact):
        w = real(path, start, end, piece_bytes, exact)
        w.proc.kill()
        return w

    monkeypatch.setattr(parallel, "_spawn", dying)
    loader, _ = _assert_same(DECODE, workers=3, pieces=16 << 10)
    assert loader.ranges == 1


def test_a_worker_that_cannot_start(monkeypatch):
    def cannot(*args):
        raise OSError("no processes left")

    monkeypatch.setattr(parallel, "_spawn", cannot)
    loader, _ = _assert_same(DECODE, workers=2, pieces=16 << 10)
    assert loader.ranges == 1


def test_no_worker_outlives_a_cancelled_load():
    procs = []
    real = parallel._spawn

    def spy(*args):
        w = real(*args)
        procs.append(w.proc)
        return w

    loader = Loader(str(DECODE), workers=3, parallel_min=0, piece_bytes=8 << 10,
                    progress=lambda p: loader.cancel(), progress_interval=0.0)
    parallel._spawn, old = spy, parallel._spawn
    try:
        tr = loader.run()
    finally:
        parallel._spawn = old
    assert loader.cancelled and not tr.complete
    assert procs and all(p.poll() is not None for p in procs)


def test_progress_counts_every_range(tmp_path):
    reports = []
    loader = Loader(str(DECODE), workers=3, parallel_min=0, piece_bytes=8 << 10,
                    progress=reports.append, progress_interval=0.0)
    tr = loader.run()
    assert loader.ranges == 3
    last = reports[-1]
    assert last.done and last.bytes_done == DECODE.stat().st_size and last.events == tr.events
    done = [p.bytes_done for p in reports]
    assert max(done) <= DECODE.stat().st_size


def test_snapshots_while_merging_are_consistent():
    """A snapshot taken from another thread at any moment is a valid trace."""
    loader = Loader(str(DECODE), workers=2, parallel_min=0, piece_bytes=8 << 10)
    stop = threading.Event()
    seen = []

    def snap():
        while not stop.is_set():
            tr = loader.snapshot()
            assert (tr.lane_bounds[1:] >= tr.lane_bounds[:-1]).all()
            seen.append(tr.slice_count)

    th = threading.Thread(target=snap)
    th.start()
    try:
        final = loader.run()
    finally:
        stop.set()
        th.join()
    assert seen and max(seen) <= final.slice_count


def test_find_boundary():
    pad = b" " * 300
    text = pad + b'{"a": [\n{"x": 1},\n{"y": 2}]},\n{"ph": "X"},\n' + pad
    at = parallel.find_boundary(text)
    assert text[at - 2 : at] == b",\n" and text[at:at + 1] == b"{"
    assert parallel.find_boundary(b"x" * 1000) == -1


def test_worker_entry_point_is_runnable():
    """The worker runs as ``python -m tracetui.trace.parallel``: the module must import
    without the UI (it is part of the core)."""
    import subprocess

    out = subprocess.run([sys.executable, "-c", "import tracetui.trace.parallel, sys; "
                          "print('textual' in sys.modules, 'rich' in sys.modules)"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_layout_events_are_the_layouts_events():
    assert len(_layout_events()) > 100
