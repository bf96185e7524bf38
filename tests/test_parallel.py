"""Parallel loading (ranges of the events array parsed in worker processes, then merged) must
give the index a single stream gives, event for event, on every layout, on damaged and cut-off
files, and whenever it has to fall back to one stream.

The reference is the same loader with ``workers=1``; what is compared is everything a Trace
exposes, with names as text (string ids are numbered per process) and flows as a set.
"""

from __future__ import annotations

import gzip
import json
import os
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


@pytest.mark.parametrize("path", [DECODE, CPU], ids=["decode", "cpu_torch"])
def test_the_build_in_threads_is_the_build_in_one(path, monkeypatch):
    """Depth segments and flow chunks worked on by several threads (the load's cores) give
    the index one thread gives, to the row; tiny segments and chunks, so that every lane
    is cut into many."""
    from tracetui.trace import depth, index

    monkeypatch.setattr(depth, "_SEGMENT", 8)
    monkeypatch.setattr(index, "_FLOW_CHUNK", 24)
    one = Loader(str(path), workers=1).run()
    threaded = Loader(str(path), workers=3, parallel_min=1 << 40).run()  # one stream
    assert one.flow_src.size > 50 and max(ln.count for ln in one.lanes) > 1000
    a, b = _dump(one), _dump(threaded)
    for key in a:
        assert a[key] == b[key], key
    for ln in threaded.lanes:  # and the depths are the stack's (a slice's open ancestors)
        rows = np.arange(ln.lo, ln.hi)
        o = np.lexsort((-threaded.dur[rows], threaded.start[rows]))
        s, d = threaded.start[rows][o], threaded.dur[rows][o]
        assert threaded.depth[rows][o].tolist() == _stack_depths(s.tolist(), (s + d).tolist())


def _stack_depths(starts: list[int], ends: list[int]) -> list[int]:
    out, stack = [], []
    for s, e in zip(starts, ends):
        while stack and stack[-1] <= s:
            stack.pop()
        out.append(len(stack))
        stack.append(e)
    return out


@pytest.mark.parametrize("name", sorted(_layouts()))
def test_layouts_same_as_one_stream(tmp_path, name):
    path = tmp_path / f"{name}.json"
    path.write_bytes(_layouts()[name])
    _assert_same(path, workers=2, pieces=512)
    _assert_same(path, workers=3, pieces=200)


@pytest.mark.parametrize("name", ["nested-lists-own-lines", "one-line", "nested-crlf"])
def test_a_range_start_inside_an_event_falls_back_to_one_stream(tmp_path, monkeypatch, name):
    """A list of objects inside args (or "},{" in a string) looks like an event boundary. A
    range started there (the raw first candidate, forced here) fails to prove its start,
    and the load goes on as one stream: the index is still the one stream's."""
    from tracetui.trace import pieces

    monkeypatch.setattr(parallel, "find_range_start", pieces.find_boundary)
    path = tmp_path / f"{name}.json"
    path.write_bytes(_layouts()[name])
    fooled = 0
    for workers in range(2, 9):
        loader, _ = _assert_same(path, workers=workers, pieces=300)
        fooled += loader.ranges < workers
    assert fooled  # at least one planned cut fell inside an event's args


@pytest.mark.parametrize("name", ["nested-lists-own-lines", "one-line", "nested-crlf"])
def test_range_starts_avoid_candidates_inside_events(tmp_path, monkeypatch, name):
    """The start of a range is the first candidate whose next event parses as an event: the
    candidates inside args' lists of objects and strings are passed over, so every range
    started is used."""
    started = []
    real = parallel.spawn

    def spy(*args, **kw):
        started.append(args[1])
        return real(*args, **kw)

    said = []
    real_wait = parallel.Plan._wait

    def listen(self, w, *args):
        got = real_wait(self, w, *args)
        said.append((got[0], got[0] == "done" and bool(got[1]["skipped"].get(
            "E without a matching B"))))
        return got

    monkeypatch.setattr(parallel, "spawn", spy)
    monkeypatch.setattr(parallel.Plan, "_wait", listen)
    path = tmp_path / f"{name}.json"
    path.write_bytes(_layouts()[name])
    for workers in range(2, 9):
        started.clear()
        said.clear()
        loader, _ = _assert_same(path, workers=workers, pieces=300)
        # every worker parsed its range from its start; all were used, but where a range
        # starts between a B and its E (one stream pairs them: parsed again by the loader)
        assert started and [k for k, _ in said] == ["done"] * len(said), (workers, said)
        straddles = [i for i, (_, e) in enumerate(said) if e]
        want = straddles[0] + 1 if straddles else len(started) + 1
        assert loader.ranges == want, (workers, started, said)


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
    # long unmodified: a damaged file just written is also "modified N s before it was
    # opened", and N could differ between the two loads compared (a busy machine)
    os.utime(path, (1, 1))
    _, tr = _assert_same(path, workers=2, pieces=16 << 10)
    assert tr.warnings


@pytest.mark.parametrize("workers", [1, 2])
def test_broken_gzip_keeps_every_whole_event_before_the_damage(tmp_path, workers):
    """Everything that inflates before broken deflate data is parsed: the file is the
    compressed first part of a trace (cut inside an event), flushed to a byte boundary,
    then a block of a type that does not exist, which zlib reports at once. Kept: exactly
    the whole events of that first part; one stream and parallel alike."""
    import zlib

    rng = np.random.default_rng(5)
    lines = [json.dumps({"ph": "X", "name": f"k{int(v)}", "pid": 1, "tid": int(v) % 3,
                         "ts": i * 10, "dur": 5, "args": {"v": int(v)}})
             for i, v in enumerate(rng.integers(0, 10**9, 150_000))]
    text = '{"traceEvents": [\n' + ",\n".join(lines) + "\n]}\n"
    cut = text.index(lines[110_000]) + 17  # inside an event
    c = zlib.compressobj(6, zlib.DEFLATED, 31)
    bad = c.compress(text[:cut].encode()) + c.flush(zlib.Z_FULL_FLUSH) + b"\x07" + bytes(300)
    with pytest.raises(zlib.error):  # the damage is one zlib reports
        zlib.decompressobj(31).decompress(bad)
    path = tmp_path / "damaged.json.gz"
    path.write_bytes(bad)
    kept = Loader(str(path), workers=workers, parallel_min=0).run()
    assert kept.events == 110_000 == text[:cut].count(",\n")
    assert kept.truncated and any("corrupt gzip data" in w for w in kept.warnings)
    assert not any("JSON" in w or "truncated at" in w for w in kept.warnings), kept.warnings


# ----------------------------------------------------------------------------- failures


@pytest.mark.parametrize("way", ["memfd", "socket"])
def test_columns_travel_whole_either_way(monkeypatch, way):
    """A worker's columns reach the loading process byte for byte, through a memfd (read
    from its end, shrunk as it goes) or, where there is none, raw on the socket."""
    import socket as socket_mod
    from multiprocessing.connection import Connection

    from tracetui.trace.builder import COLUMN_SETS, TraceBuilder
    from tracetui.trace.events import decode_array
    from tracetui.trace.pieces import PieceTable
    from tracetui.trace.source import Source

    if way == "socket":
        monkeypatch.delattr(os, "memfd_create", raising=False)
    elif not hasattr(os, "memfd_create"):
        pytest.skip("no memfd here")
    events = decode_array(json.dumps(json.loads(DECODE.read_text())["traceEvents"]).encode(),
                          False)
    sent, whole = TraceBuilder(), TraceBuilder()
    sent.add_batch(events, 0)
    whole.add_batch(events, 0)
    manifest = {**sent.part(), "pieces": ([], []), "warnings": []}
    ours, theirs = socket_mod.socketpair()
    a, b = Connection(ours.detach()), Connection(theirs.detach())
    th = threading.Thread(target=parallel.send_columns, args=(b, sent))
    th.start()
    got = TraceBuilder()
    parallel.merge_part(got, PieceTable(Source.open(str(DECODE)), False), a, manifest)
    th.join()
    a.close()
    b.close()
    n = 0
    for name in COLUMN_SETS:
        want, have = getattr(whole, name).view(), getattr(got, name).view()
        for k, col in want.items():
            assert col.tobytes() == have[k].tobytes(), (name, k)  # NaN is NaN
            n += len(col)
    assert n > 10_000 and got.items == whole.items and got.events == whole.events


def test_a_worker_that_dies_leaves_the_range_to_the_loader(tmp_path, monkeypatch):
    real = parallel.spawn

    def dying(path, start, end, piece_bytes, exact, **kw):
        w = real(path, start, end, piece_bytes, exact, **kw)
        w.proc.kill()
        return w

    monkeypatch.setattr(parallel, "spawn", dying)
    loader, _ = _assert_same(DECODE, workers=3, pieces=16 << 10)
    assert loader.ranges == 1


def test_a_worker_that_cannot_start(monkeypatch):
    def cannot(*args, **kw):
        raise OSError("no processes left")

    monkeypatch.setattr(parallel, "spawn", cannot)
    loader, _ = _assert_same(DECODE, workers=2, pieces=16 << 10)
    assert loader.ranges == 1


def test_no_worker_outlives_a_cancelled_load():
    procs = []
    real = parallel.spawn

    def spy(*args, **kw):
        w = real(*args, **kw)
        procs.append(w.proc)
        return w

    loader = Loader(str(DECODE), workers=3, parallel_min=0, piece_bytes=8 << 10,
                    progress=lambda p: loader.cancel(), progress_interval=0.0)
    parallel.spawn, old = spy, parallel.spawn
    try:
        tr = loader.run()
    finally:
        parallel.spawn = old
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


def _boundary_text() -> tuple[bytes, list[int], list[int]]:
    """Events laid out every way at once, with "},{" inside strings and args' lists of
    objects; (text, where each event opens, where a false candidate opens)."""
    seps = [b",", b", ", b",\n", b"\r\n,", b"\t,\t", b"\n  ,  \n    ", b",\r\n"]
    text, opens, false = b"[", [], []
    for i in range(40):
        inner = b'{"k": [{"a": 1}, {"b": 2}], "s": "x},{y"}' if i % 3 == 0 else b'{"n": 1}'
        ev = b'{"ph": "X", "name": "e%d", "args": ' % i + inner + b"}"
        if i:
            text += seps[i % len(seps)]
        opens.append(len(text))
        if i % 3 == 0:
            false.append(len(text) + ev.index(b'{"b"'))
            false.append(len(text) + ev.index(b"{y"))
        text += ev
    return text + b"]", opens, false


def test_boundary_candidates_every_layout():
    """Independent positions, made while the text was written: every event start after the
    first is a candidate whatever the whitespace around its comma, and the false candidates
    are exactly the ones inside strings and args' lists."""
    from tracetui.trace import pieces

    text, opens, false = _boundary_text()
    found, at = [], 0
    while (c := pieces.find_boundary(text, at)) >= 0:
        found.append(c)
        at = c + 1
    assert found == sorted(opens[1:] + false)
    # backwards: the last candidate before a limit
    for limit in (opens[5] + 1, false[3] + 1, len(text)):
        assert pieces.find_cut(text, limit) == max(c for c in found if c < limit)
    assert pieces.find_cut(b"x" * 100_000, 100_000) == -1
    assert pieces.find_boundary(b"x" * 1000) == -1


def test_a_piece_decodes_where_it_lies_and_the_buffer_is_left_as_it_was():
    """decode_piece_in borrows the spare byte and the last comma for the brackets and puts
    them back, whether the piece decodes, fails to, or ends without a comma."""
    from tracetui.trace.events import decode_piece, decode_piece_in

    evs = [{"ph": "X", "name": f"k{i}", "pid": 1, "tid": 1, "ts": i, "dur": 1}
           for i in range(5)]
    for sep, tail in ((",", ""), (",\r\n\t ", " \n"), (" ,\n", "\t")):
        text = sep.join(json.dumps(e) for e in evs[:3]) + sep + tail
        buf = bytearray(b"?" + text.encode() + json.dumps(evs[3]).encode())
        before = bytes(buf)
        got = decode_piece_in(buf, 1 + len(text), False)
        assert bytes(buf) == before
        assert [(e.name, e.ts) for e in got] == [(e.name, e.ts) for e in
                                               decode_piece(text.encode(), False)]
        assert [e.name for e in got] == ["k0", "k1", "k2"]
        buf += b","  # not exported any more: the buffer can grow again
    for bad in (b"?" + json.dumps(evs[0]).encode(),  # no comma at its end
                b"?" + b'{"ph": "X", "name": "a",' + b" ,",  # cut inside an event
                b"?"):
        buf = bytearray(bad)
        with pytest.raises(ValueError):
            decode_piece_in(buf, len(buf), False)
        assert bytes(buf) == bad
        buf += b"x"


def test_structural_cut_ignores_strings_and_nested_objects():
    from tracetui.trace import pieces

    text, opens, false = _boundary_text()
    body = text[1:]  # right after "[": the start of the first event, a boundary
    shift = 1
    for limit in [*opens[1:], *false, len(body)]:
        lim = limit - shift
        want = max((o - shift for o in opens if 0 < o - shift < lim), default=-1)
        assert pieces.structural_cut(body, lim) == want, limit
    # escaped quotes and backslashes in strings do not end them early
    evs = [{"ph": "X", "name": 'a\\"},{\\'}, {"ph": "X", "name": "b\\"}, {"ph": "i"}]
    tricky = ", ".join(json.dumps(e) for e in evs).encode()
    starts = [tricky.index(json.dumps(e).encode()) for e in evs]
    assert pieces.structural_cut(tricky, len(tricky)) == starts[2]
    assert pieces.structural_cut(tricky, starts[2]) == starts[1]
    assert pieces.structural_cut(tricky, starts[1]) == -1  # only the first event before it


def test_range_start_skips_false_candidates():
    from tracetui.trace import pieces

    text, opens, false = _boundary_text()
    for o in (opens[3], opens[6], opens[9]):
        # a window that begins just before a false candidate of event i
        f = min(x for x in false if x > o)
        assert pieces.find_range_start(text[f - 2 :]) + f - 2 in opens, o


def test_worker_entry_point_is_runnable():
    """The worker runs as ``python -m tracetui.trace.worker``: the module must import
    without the UI (it is part of the core)."""
    import subprocess

    out = subprocess.run([sys.executable, "-c", "import tracetui.trace.worker, sys; "
                          "print('textual' in sys.modules, 'rich' in sys.modules)"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_layout_events_are_the_layouts_events():
    assert len(_layout_events()) > 100


# ----------------------------------------------------------------------------- every layout


def _hurt(data: bytes, how: str) -> bytes:
    """The same event cut off or damaged, whatever the layout: at its "External id": 30."""
    m = re.search(rb'"External id":\s*30\b', data)
    assert m, "every layout has the event"
    if how == "cut-off":
        return data[: m.start() + 5]
    return data[: m.end()] + b",," + data[m.end() :]


def _same_but_where(d: dict) -> dict:
    """A dump with the byte offsets in warnings taken out (they differ between layouts), and
    how long before the load the file was written (it differs between loads)."""
    def plain(w: str) -> str:
        w = re.sub(r"modified (?:less than a second|[\d.,]+ s) before", "modified T before", w)
        return re.sub(r"[\d,]+", "N", w)

    return {**d, "warnings": [plain(w) for w in d["warnings"]]}


@pytest.mark.parametrize("how", ["whole", "cut-off", "damaged"])
@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_every_layout_same_index(tmp_path, how, gz):
    """The index of the same events is the same field by field in every layout, read as one
    stream or in ranges, plain or gzipped, whole, cut off or damaged at the same event."""
    ref = None
    layouts = _layouts()
    for name in ["per-line", *sorted(set(layouts) - {"per-line"})]:
        data = layouts[name]
        if how != "whole":
            data = _hurt(data, how)
        path = tmp_path / (name + (".json.gz" if gz else ".json"))
        path.write_bytes(gzip.compress(data) if gz else data)
        for workers, pieces in ((1, 4096), (2, 300), (3, 512)):
            tr, _ = _load(path, workers, pieces)
            got = _same_but_where(_dump(tr))
            if how != "whole":
                assert tr.truncated, name
            if ref is None:
                ref = (name, got)
                continue
            for key in got:
                if key == "header" and name.startswith("bare-array"):
                    continue  # a bare array has no top-level keys
                assert got[key] == ref[1][key], (name, workers, key, ref[0])
