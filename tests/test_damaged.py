"""Damaged, malformed and oddly laid out traces: the loader must never crash, keep every whole
event before a cut, count what it skips, and give the same index whatever the file layout.

Expectations are computed independently of tracetui: with the stdlib ``json`` module (an
incremental ``raw_decode`` scanner that knows where each event of the traceEvents array ends)
and ``decimal`` for exact nanoseconds.
"""

from __future__ import annotations

import bisect
import functools
import gzip
import json
import re
import subprocess
import sys
import time
import zlib
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from tracetui.cli import main
from tracetui.trace import TraceError, load
from tracetui.trace.loader import Loader

SAMPLES = Path(__file__).resolve().parent.parent / "sample_traces"
DECODE = SAMPLES / "annotated.json"
PREFILL = SAMPLES / "prefill.json.gz"
CPU = SAMPLES / "cpu_torch.json"

TINY = 200  # piece size that forces many cuts (and the cut walk-back) on small files
SMALL = 4096


def _load(path, pieces=None):
    """Default loader (``load``) or a Loader with forced piece size."""
    if pieces is None:
        return load(str(path))
    return Loader(str(path), piece_bytes=pieces).run()


# ----------------------------------------------------------------------------- reference scanner

_WS = " \t\r\n"


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in _WS:
        pos += 1
    return pos


class Scan:
    """Where every item of the traceEvents array starts and ends (byte offsets), by stdlib json.

    The text is decoded as latin-1 so that character offsets are byte offsets (all JSON
    syntax is ASCII; multi-byte UTF-8 only ever appears inside strings).
    """

    def __init__(self, data: bytes) -> None:
        text = data.decode("latin-1")
        if text.startswith("\xef\xbb\xbf"):
            text = "   " + text[3:]
        dec = json.JSONDecoder(parse_float=Decimal)
        p = _skip_ws(text, 0)
        if text[p] == "{":
            p += 1
            while True:
                p = _skip_ws(text, p)
                key, p = dec.raw_decode(text, p)
                p = _skip_ws(text, p)
                assert text[p] == ":"
                p = _skip_ws(text, p + 1)
                if key == "traceEvents":
                    break
                _, p = dec.raw_decode(text, p)
                p = _skip_ws(text, p)
                assert text[p] == ",", text[p]
                p += 1
        assert text[p] == "["
        self.open = p  # offset of the "[" of the events array
        p = _skip_ws(text, p + 1)
        self.items: list[tuple[int, int, object]] = []
        while text[p] != "]":
            obj, end = dec.raw_decode(text, p)
            self.items.append((p, end, obj))
            p = _skip_ws(text, end)
            if text[p] == ",":
                p = _skip_ws(text, p + 1)
        self.close = p  # offset of the "]"
        self.size = len(data)
        self.ends = [e for _, e, _ in self.items]
        counted = [isinstance(o, dict) and o.get("ph") != "M" for _, _, o in self.items]
        self.cum = np.concatenate([[0], np.cumsum(counted)]).astype(np.int64)
        self.x_dur = [(int(o["dur"] * 1000) if isinstance(o, dict) and o.get("ph") == "X" else None)
                      for _, _, o in self.items]
        self.x_ts = [(int(o["ts"] * 1000) if isinstance(o, dict) and o.get("ph") == "X" else None)
                     for _, _, o in self.items]

    def whole(self, cut: int) -> int:
        """Number of items whose text ends at or before byte ``cut``."""
        return bisect.bisect_right(self.ends, cut)

    def expected_events(self, cut: int) -> int:
        """Whole, non-"M" events before the cut (the sample traces hold no invalid events)."""
        return int(self.cum[self.whole(cut)])

    def expected_x(self, cut: int) -> tuple[list[int], list[int]]:
        k = self.whole(cut)
        durs = sorted(d for d in self.x_dur[:k] if d is not None)
        starts = sorted(t for t in self.x_ts[:k] if t is not None)
        return starts, durs


@functools.cache
def _text(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


@functools.cache
def _scan(path: Path) -> Scan:
    return Scan(_text(path))


def _check_cut(tmp_path: Path, scan: Scan, cut: int, data: bytes, name: str, pieces) -> None:
    """Load ``data`` (the first ``cut`` bytes of the JSON text, maybe gzipped) and check it."""
    path = tmp_path / name
    path.write_bytes(data)
    exp = scan.expected_events(cut)
    try:
        tr = _load(path, pieces)
    except TraceError as err:
        # Only acceptable when nothing whole was before the cut.
        assert exp == 0, f"TraceError although {exp} events were whole before byte {cut}: {err}"
        assert "\n" not in str(err)
        return
    assert tr.events == exp, (cut, tr.events, exp, tr.warnings)
    starts, durs = scan.expected_x(cut)
    assert tr.slice_count == len(durs)
    assert sorted(tr.dur.tolist()) == durs
    assert sorted((tr.start + tr.t0_abs_ns).tolist()) == starts
    if cut <= scan.close:  # the events array never closed
        assert tr.truncated, (cut, tr.warnings)
        assert any("truncated at byte" in w for w in tr.warnings), (cut, tr.warnings)
        assert not any("JSON error" in w for w in tr.warnings), (cut, tr.warnings)
    else:
        assert tr.events == int(scan.cum[-1])


def _cut_data(path: Path, cut: int, gz: bool) -> tuple[Scan, bytes]:
    """The reference scan, and the first ``cut`` bytes of the JSON text (gzipped if ``gz``)."""
    text = _text(path)[:cut]
    return _scan(path), (gzip.compress(text, compresslevel=1, mtime=0) if gz else text)


def _head_offsets(path: Path) -> list[int]:
    """Cuts in the header, around the "[" of the events array and inside the first events."""
    s = _scan(path)
    (a0, e0, _), (_, e1, _) = s.items[0], s.items[1]
    return sorted({o for o in (1, 2, s.open // 2, s.open, s.open + 1, s.open + 2, a0 + 1,
                               (a0 + e0) // 2, e0 - 1, e0, e0 + 1, e0 + 2, e1 - 1, e1, e1 + 1)
                   if 0 < o < s.size})


def _tail_offsets(path: Path) -> list[int]:
    """Cuts inside the last event, around the "]" and in the keys after the events."""
    s = _scan(path)
    return sorted({o for o in (s.ends[-1] - 7, s.ends[-1] - 1, s.ends[-1], s.close,
                               s.close + 1, s.size - 2, s.size - 1) if 0 < o < s.size})


def _spread(path: Path, n: int) -> list[int]:
    size = _scan(path).size
    return [size * k // (n + 1) for k in range(1, n + 1)]


# ----------------------------------------------------------------------------- 1. truncation


def test_reference_scanner_agrees_with_full_loads():
    """Sanity for the expectations below: whole files load completely, not truncated."""
    for path in (DECODE, PREFILL, CPU):
        s = _scan(path)
        tr = load(str(path))
        assert not tr.truncated and tr.warnings == []
        assert tr.events == int(s.cum[-1])
        starts, durs = s.expected_x(s.size)
        assert sorted(tr.dur.tolist()) == durs
        assert sorted((tr.start + tr.t0_abs_ns).tolist()) == starts


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("cut", _head_offsets(DECODE) + _spread(DECODE, 40) + _tail_offsets(DECODE))
def test_decode_cut_default_pieces(tmp_path, cut, gz):
    scan, data = _cut_data(DECODE, cut, gz)
    _check_cut(tmp_path, scan, cut, data, "cut.json.gz" if gz else "cut.json", None)


@pytest.mark.parametrize("cut", _spread(DECODE, 10) + _tail_offsets(DECODE)[:3])
def test_decode_cut_small_pieces(tmp_path, cut):
    scan, data = _cut_data(DECODE, cut, False)
    _check_cut(tmp_path, scan, cut, data, "cut.json", SMALL)


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("cut", _head_offsets(DECODE) + [8_000, 20_000, 45_000, 90_000])
def test_decode_cut_tiny_pieces(tmp_path, cut, gz):
    scan, data = _cut_data(DECODE, cut, gz)
    _check_cut(tmp_path, scan, cut, data, "cut.gz" if gz else "cut.json", TINY)


@pytest.mark.parametrize("cut,gz", [(c, False) for c in _head_offsets(PREFILL)]
                         + [(c, False) for c in _spread(PREFILL, 7)]
                         + [(c, True) for c in _spread(PREFILL, 7)[1::3]]
                         + [(c, False) for c in _tail_offsets(PREFILL)[1:4]])
def test_prefill_pretty_cut_default_pieces(tmp_path, cut, gz):
    scan, data = _cut_data(PREFILL, cut, gz)
    _check_cut(tmp_path, scan, cut, data, "cut.gz" if gz else "cut.json", None)


@pytest.mark.parametrize("cut", _head_offsets(PREFILL) + [20_000, 50_000, 100_000])
def test_prefill_pretty_cut_tiny_pieces(tmp_path, cut):
    scan, data = _cut_data(PREFILL, cut, False)
    _check_cut(tmp_path, scan, cut, data, "cut.json", TINY)


@pytest.mark.parametrize("cut", _spread(PREFILL, 3)[:2])
def test_prefill_pretty_cut_small_pieces(tmp_path, cut):
    scan, data = _cut_data(PREFILL, cut, False)
    _check_cut(tmp_path, scan, cut, data, "cut.json", SMALL)


@pytest.mark.parametrize("cut", _head_offsets(CPU)[::2] + _spread(CPU, 8) + _tail_offsets(CPU))
def test_cpu_torch_cut(tmp_path, cut):
    scan, data = _cut_data(CPU, cut, False)
    _check_cut(tmp_path, scan, cut, data, "cut.json", None)
    if cut < 200_000:
        _check_cut(tmp_path, scan, cut, data, "cut.json", TINY)


@functools.cache
def _decode_gz() -> bytes:
    return gzip.compress(DECODE.read_bytes(), compresslevel=6, mtime=0)


def _gz_cuts(n: int, size: int) -> list[int]:
    """Cuts in the gzip header, the deflate data, and the CRC/size trailer."""
    return sorted({1, 2, 5, 10, 11, 30, 100, 300, size - 8, size - 1,
                   *(size * k // (n + 1) for k in range(1, n + 1))})


@pytest.mark.parametrize("source", ["prefill", "decode"])
def test_gzip_cut_in_compressed_bytes(tmp_path, source):
    """A .gz whose compressed bytes are cut: everything that inflates is kept, nothing more."""
    if source == "prefill":
        gz, text = PREFILL.read_bytes(), _text(PREFILL)
        scan = _scan(PREFILL)
    else:
        gz, text = _decode_gz(), _text(DECODE)
        scan = _scan(DECODE)
    path = tmp_path / "cut.json.gz"
    for cut in _gz_cuts(5 if source == "prefill" else 12, len(gz)):
        path.write_bytes(gz[:cut])
        avail = zlib.decompressobj(wbits=31).decompress(gz[:cut])
        assert text.startswith(avail)
        exp = scan.expected_events(len(avail))
        try:
            tr = load(str(path))
        except TraceError as err:
            assert exp == 0, (cut, len(avail), err)
            assert "\n" not in str(err)
            continue
        assert tr.truncated, (cut, tr.warnings)
        assert tr.events == exp, (cut, len(avail), tr.events, exp, tr.warnings)
        starts, durs = scan.expected_x(len(avail))
        assert sorted(tr.dur.tolist()) == durs
        assert sorted((tr.start + tr.t0_abs_ns).tolist()) == starts
        assert any("truncated at byte" in w for w in tr.warnings), (cut, tr.warnings)


_MID_TOKEN_TAILS = {
    "after-decimal-point": b'{"ph":"X","name":"c","pid":1,"tid":1,"ts":12.',
    "inside-true": b'{"ph":"X","name":"c","pid":1,"tid":1,"ts":3,"dur":1,"args":{"ok":tru',
    "inside-utf8-char": b'{"ph":"X","name":"caf\xc3',
    "after-minus": b'{"ph":"X","name":"c","pid":1,"tid":1,"ts":-',
    "after-exponent": b'{"ph":"X","name":"c","pid":1,"tid":1,"ts":1e',
    "inside-null": b'{"ph":"X","name":"c","pid":1,"tid":1,"ts":3,"dur":1,"args":{"x":nu',
    "after-backslash": b'{"ph":"X","name":"a\\',
    "inside-u-escape": b'{"ph":"X","name":"a\\u00',
}


@pytest.mark.parametrize("pieces", [None, 16], ids=["default", "tiny"])
@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("tail", list(_MID_TOKEN_TAILS), ids=list(_MID_TOKEN_TAILS))
def test_cut_inside_a_token_is_reported_as_truncation(tmp_path, tail, gz, pieces):
    """Regression: a cut inside a token (after '.', inside true, inside a UTF-8 character) was
    reported as 'JSON error near byte N of N' instead of a truncation."""
    good = [json.dumps({"ph": "X", "name": f"g{i}", "pid": 1, "tid": 1, "ts": i, "dur": 1})
            for i in range(3)]
    data = ("[\n" + ",\n".join(good) + ",\n").encode() + _MID_TOKEN_TAILS[tail]
    path = tmp_path / "t.json"
    path.write_bytes(gzip.compress(data) if gz else data)
    tr = _load(path, pieces)
    assert tr.events == 3 and tr.truncated
    assert any("truncated at byte" in w for w in tr.warnings), tr.warnings
    assert not any("JSON error" in w for w in tr.warnings), tr.warnings


# ----------------------------------------------------------------------------- 2. malformed events


def _good(i: int, tid=1) -> dict:
    return {"ph": "X", "name": f"good{i}", "cat": "c", "pid": 1, "tid": tid, "ts": 100 + 10 * i,
            "dur": 2}


def _write_trace(path: Path, events: list, form: str, layout: str = "lines") -> None:
    if layout == "lines":
        body = "[\n" + ",\n".join(json.dumps(e) for e in events) + "\n]"
    else:
        body = json.dumps(events)
    text = '{"schemaVersion": 1, "traceEvents": ' + body + ', "traceName": "t"}\n' \
        if form == "object" else body + "\n"
    path.write_text(text)


def _skipped(warnings: list[str]) -> dict[str, int]:
    out = {}
    for w in warnings:
        m = re.fullmatch(r"skipped ([\d,]+) events: (.*)", w)
        if m:
            out[m.group(2)] = int(m.group(1).replace(",", ""))
    return out


def _noted(warnings: list[str], text: str) -> int:
    for w in warnings:
        m = re.fullmatch(r"([\d,]+) " + re.escape(text), w)
        if m:
            return int(m.group(1).replace(",", ""))
    return 0


def _names(tr) -> list[str]:
    return sorted(tr.name_of(i) for i in range(tr.slice_count))


MALFORMED = {
    # name: (bad items, accepted, {skip reason: count}, {note: count})
    "non-objects": ([1, "str", None, [1, 2], 2.5, True, [{"ph": "X"}]], 0,
                    {"not a JSON object": 7}, {}),
    "missing-ts": ([{"ph": "X", "name": "a", "pid": 1, "tid": 1, "dur": 1},
                    {"ph": "i", "name": "a", "pid": 1, "tid": 1},
                    {"ph": "B", "name": "a", "pid": 1, "tid": 1}], 0,
                   {"missing or non-numeric ts": 3}, {}),
    # numbers as strings are the numbers they spell, as in Perfetto's JSON importer
    "ts-string": ([{"ph": "X", "name": "a", "pid": 1, "tid": 1, "ts": "12", "dur": 1},
                   {"ph": "X", "name": "a", "pid": 1, "tid": 1, "ts": "4.5", "dur": 1}], 2,
                  {}, {}),
    "ts-text": ([{"ph": "X", "name": "a", "pid": 1, "tid": 1, "ts": "soon", "dur": 1},
                 {"ph": "X", "name": "a", "pid": 1, "tid": 1, "ts": "1.2.3", "dur": 1}], 0,
                {"missing or non-numeric ts": 2}, {}),
    "ts-NaN-string": ([{"ph": "X", "name": "a", "pid": 1, "tid": 1, "ts": "NaN", "dur": 1},
                       {"ph": "i", "name": "a", "pid": 1, "tid": 1, "ts": "NaN"}], 0,
                      {"missing or non-numeric ts": 2}, {}),
    "ts-huge": ([{"ph": "X", "name": "a", "pid": 1, "tid": 1, "ts": 1e300, "dur": 1},
                 {"ph": "X", "name": "a", "pid": 1, "tid": 1, "ts": -1e300, "dur": 1},
                 {"ph": "X", "name": "a", "pid": 1, "tid": 1, "ts": 10**30, "dur": 1},
                 {"ph": "X", "name": "a", "pid": 1, "tid": 1, "ts": 2**63, "dur": 1}], 0,
                {"ts out of range for int64 nanoseconds (first: 1e+300 µs)": 4}, {}),
    "negative-dur": ([{"ph": "X", "name": "neg", "pid": 1, "tid": 1, "ts": 105, "dur": -3}], 1,
                     {}, {"slices with a negative duration (set to 0)": 1}),
    "no-dur": ([{"ph": "X", "name": "nodur", "pid": 1, "tid": 1, "ts": 105}], 1,
               {}, {"X events without dur (shown as 0)": 1}),
    "tdur": ([{"ph": "X", "name": "tdur", "pid": 1, "tid": 1, "ts": 105, "tdur": 7}], 1,
             {}, {"X events without dur (used tdur)": 1}),
    "dur-string": ([{"ph": "X", "name": "a", "pid": 1, "tid": 1, "ts": 105, "dur": "7"}], 1,
                   {}, {}),
    "dur-text": ([{"ph": "X", "name": "a", "pid": 1, "tid": 1, "ts": 105, "dur": "long"}], 0,
                 {"non-numeric dur": 1}, {}),
    "unknown-phase": ([{"ph": "Q", "name": "a", "pid": 1, "tid": 1, "ts": 105}], 0,
                      {"unsupported phase 'Q'": 1}, {}),
    "missing-ph": ([{"name": "a", "pid": 1, "tid": 1, "ts": 105, "dur": 1}, {"a": 1}], 0,
                   {"missing ph": 2}, {}),
    "ph-not-string": ([{"ph": 5, "name": "a", "pid": 1, "tid": 1, "ts": 105},
                       {"ph": ["X"], "name": "a", "pid": 1, "tid": 1, "ts": 105}], 0,
                      {"ph not a string": 2}, {}),
    "E-without-B": ([{"ph": "E", "pid": 1, "tid": 7, "ts": 105}], 0,
                    {"E without a matching B": 1}, {}),
    "flow-without-id": ([{"ph": "s", "name": "a", "pid": 1, "tid": 1, "ts": 105}], 0,
                        {"flow event without id": 1}, {}),
    "counter-without-args": ([{"ph": "C", "name": "mem", "pid": 1, "ts": 105},
                              {"ph": "C", "name": "mem", "pid": 1, "ts": 106, "args": [1]}], 0,
                             {"counter without args": 2}, {}),
    "counter-some-values": ([{"ph": "C", "name": "mem", "pid": 1, "ts": 105,
                              "args": {"used": 5, "label": "x"}}], 1,
                            {}, {"non-numeric counter values (ignored)": 1}),
}


@pytest.mark.parametrize("pieces", [None, 16], ids=["default", "tiny"])
@pytest.mark.parametrize("layout", ["lines", "oneline"])
@pytest.mark.parametrize("form", ["object", "array"])
@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_events(tmp_path, case, form, layout, pieces):
    bad, accepted, skipped, notes = MALFORMED[case]
    events = [_good(0), *bad, _good(1), _good(2)]
    path = tmp_path / "m.json"
    _write_trace(path, events, form, layout)
    tr = _load(path, pieces)
    assert not tr.truncated
    assert tr.events == 3 + accepted, tr.warnings
    assert {f"good{i}" for i in range(3)} <= set(_names(tr))
    assert _skipped(tr.warnings) == skipped, tr.warnings
    for note, n in notes.items():
        assert _noted(tr.warnings, note) == n, tr.warnings
    # every non-metadata item is either accepted or counted as skipped
    assert tr.events + sum(skipped.values()) == len(events)


@pytest.mark.parametrize("pieces", [None, 16], ids=["default", "tiny"])
@pytest.mark.parametrize("form", ["object", "array"])
def test_malformed_durations_values(tmp_path, form, pieces):
    events = [_good(0),
              {"ph": "X", "name": "neg", "pid": 1, "tid": 1, "ts": 105, "dur": -3},
              {"ph": "X", "name": "nodur", "pid": 1, "tid": 1, "ts": 106},
              {"ph": "X", "name": "tdur", "pid": 1, "tid": 1, "ts": 107, "tdur": 7.5},
              _good(1)]
    path = tmp_path / "d.json"
    _write_trace(path, events, form)
    tr = _load(path, pieces)
    durs = {tr.name_of(i): int(tr.dur[i]) for i in range(tr.slice_count)}
    assert durs == {"good0": 2000, "good1": 2000, "neg": 0, "nodur": 0, "tdur": 7500}


@pytest.mark.parametrize("pieces", [None, 16], ids=["default", "tiny"])
@pytest.mark.parametrize("form", ["object", "array"])
def test_names_that_are_not_strings_are_kept_as_text(tmp_path, form, pieces):
    events = [_good(0),
              {"ph": "X", "name": 42, "pid": 1, "tid": 1, "ts": 105, "dur": 1},
              {"ph": "X", "name": [1, "alpha"], "pid": 1, "tid": 1, "ts": 106, "dur": 1},
              {"ph": "X", "name": {"key": "value"}, "pid": 1, "tid": 1, "ts": 107, "dur": 1},
              _good(1)]
    path = tmp_path / "n.json"
    _write_trace(path, events, form)
    tr = _load(path, pieces)
    assert tr.events == 5
    names = _names(tr)
    assert all(isinstance(n, str) for n in names)
    assert "42" in names
    assert any("alpha" in n and n.startswith("[") for n in names)
    assert any("key" in n and "value" in n and n.startswith("{") for n in names)
    assert _noted(tr.warnings, "names or categories were not strings (kept as text)") == 3


@pytest.mark.parametrize("pieces", [None, 16], ids=["default", "tiny"])
@pytest.mark.parametrize("form", ["object", "array"])
def test_pid_tid_as_lists(tmp_path, form, pieces):
    events = [_good(0),
              {"ph": "X", "name": "odd", "pid": [1, 2], "tid": [3], "ts": 105, "dur": 1},
              {"ph": "X", "name": "odd2", "pid": {"a": 1}, "tid": None, "ts": 106, "dur": 1},
              {"ph": "B", "name": "odd3", "pid": [1], "tid": [1], "ts": 107},
              {"ph": "E", "pid": [1], "tid": [1], "ts": 108},
              _good(1)]
    path = tmp_path / "p.json"
    _write_trace(path, events, form)
    tr = _load(path, pieces)
    assert tr.events == 6
    assert set(_names(tr)) == {"good0", "good1", "odd", "odd2", "odd3"}
    assert all(isinstance(ln.name, str) for ln in tr.lanes)
    assert sum(ln.count for ln in tr.lanes) == tr.slice_count == 5
    i = _names_index(tr)["odd3"]
    assert int(tr.dur[i]) == 1000


def _names_index(tr) -> dict[str, int]:
    return {tr.name_of(i): i for i in range(tr.slice_count)}


@pytest.mark.parametrize("pieces", [None, 16], ids=["default", "tiny"])
@pytest.mark.parametrize("form", ["object", "array"])
def test_unmatched_begin_end(tmp_path, form, pieces):
    events = [_good(0),
              {"ph": "E", "pid": 1, "tid": 5, "ts": 101},  # E before any B
              {"ph": "B", "name": "outer", "pid": 1, "tid": 5, "ts": 102},
              {"ph": "B", "name": "inner", "pid": 1, "tid": 5, "ts": 103},
              {"ph": "E", "pid": 1, "tid": 5, "ts": 104},  # ends inner
              {"ph": "E", "pid": 1, "tid": 6, "ts": 104},  # other thread: no B there
              {"ph": "B", "name": "open", "pid": 1, "tid": 6, "ts": 105},  # never ended
              _good(1)]
    path = tmp_path / "be.json"
    _write_trace(path, events, form)
    tr = _load(path, pieces)
    assert _skipped(tr.warnings) == {"E without a matching B": 2}
    assert tr.phase_counts.get("B") == 3 and tr.phase_counts.get("E") == 1
    assert tr.events == 2 + 3 + 1
    assert any("2 B events never ended" in w for w in tr.warnings), tr.warnings
    idx = _names_index(tr)
    assert int(tr.dur[idx["inner"]]) == 1000
    end = max(int(tr.start[i] + tr.dur[i]) for i in range(tr.slice_count))
    assert int(tr.start[idx["outer"]] + tr.dur[idx["outer"]]) == end  # shown to the end
    assert int(tr.start[idx["open"]] + tr.dur[idx["open"]]) == end


HOSTILE = [
    "\x1b[31mred\x1b[0m",
    "[bold red]markup[/bold red] [link=http://example.com]click[/link]",
    "\x1b]0;window title\x07 and \x1b]52;c;Y2xpcGJvYXJk\x07",
    "\u202eevil\u202c \u200b zero width",
    "tab\there\r\nnewline \x00 nul \x7f del \x9b csi",
    "[/] ] [ \\[escaped] \\",
    "caf\u00e9 \u4e2d\u6587 \U0001f600",
]


@pytest.mark.parametrize("pieces", [None, 16], ids=["default", "tiny"])
@pytest.mark.parametrize("layout", ["lines", "oneline"])
@pytest.mark.parametrize("form", ["object", "array"])
def test_hostile_names_are_kept_as_data(tmp_path, form, layout, pieces):
    events = [_good(0)] + [
        {"ph": "X", "name": n, "cat": n, "pid": 1, "tid": 1, "ts": 200 + k, "dur": 1}
        for k, n in enumerate(HOSTILE)] + [
        {"ph": "B", "name": HOSTILE[0] + "B", "pid": 2, "tid": HOSTILE[1], "ts": 300},
        {"ph": "E", "pid": 2, "tid": HOSTILE[1], "ts": 301},
        {"ph": "i", "name": HOSTILE[2], "pid": 2, "tid": 2, "ts": 302, "s": "t"},
        {"ph": "M", "name": "thread_name", "pid": 2, "tid": HOSTILE[1],
         "args": {"name": HOSTILE[3]}}]
    path = tmp_path / "h.json"
    _write_trace(path, events, form, layout)
    tr = _load(path, pieces)
    assert tr.events == 1 + len(HOSTILE) + 3
    idx = _names_index(tr)
    for n in HOSTILE:
        assert n in idx, (n, list(idx))
        assert tr.cat_of(idx[n]) == n
    assert HOSTILE[0] + "B" in idx
    assert HOSTILE[2] in {tr.strings[int(x)] for x in tr.inst_name}
    assert any(HOSTILE[3] in ln.name for ln in tr.lanes)


def test_cli_never_prints_control_characters_from_names(tmp_path, capsys):
    events = [{"ph": "X", "name": n, "pid": n, "tid": n, "ts": k, "dur": 1}
              for k, n in enumerate(HOSTILE)]
    path = tmp_path / "h.json"
    _write_trace(path, events, "object")
    assert main(["summary", str(path), "--top", "0"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out and "\x9b" not in out
    assert main(["summary", str(path), "--json"]) == 0
    out = capsys.readouterr().out
    assert out.isascii()
    facts = json.loads(out)
    assert facts["events"] == len(HOSTILE)
    # the JSON keeps the data exact: names of lanes hold the pid strings as written
    assert {ln["pid"] for ln in facts["lanes"]} == set(HOSTILE)


@pytest.mark.parametrize("field", ["ts", "dur"])
def test_boolean_time_does_not_depend_on_piece_size(tmp_path, field):
    """Regression: a boolean ts/dur was taken as 1 µs when its batch also held integers
    (np.array([0, True]) is an int array) but skipped when alone in its batch."""
    bad = {"ph": "X", "name": "bool", "pid": 1, "tid": 1, "ts": 105, "dur": 1}
    bad[field] = True
    path = tmp_path / "b.json"
    _write_trace(path, [_good(0), bad, _good(1)], "array")
    traces = [_load(path), _load(path, 16), _load(path, 64)]
    results = {(tuple(_names(t)), t.events, tuple(t.dur.tolist())) for t in traces}
    assert len(results) == 1, results
    if field == "ts":  # a boolean is not a time: the event cannot be placed
        assert "bool" not in _names(traces[0])
        assert _skipped(traces[0].warnings) == {"missing or non-numeric ts": 1}


def test_counter_without_args_is_not_also_counted_as_accepted(tmp_path):
    """Regression: a C event without args was counted as skipped and as accepted."""
    path = tmp_path / "c.json"
    _write_trace(path, [_good(0), {"ph": "C", "name": "mem", "pid": 1, "ts": 105}, _good(1)],
                 "array")
    tr = load(str(path))
    assert _skipped(tr.warnings) == {"counter without args": 1}
    assert tr.events == 2 and "C" not in tr.phase_counts


def test_nan_literal_does_not_depend_on_file_size(tmp_path, monkeypatch):
    """Regression: a bare NaN (not JSON; Python's json.dumps writes it) was accepted when the
    rest of the file fitted in the last piece (Python's json), but ended the load with a JSON
    error when the file was big enough for the ijson fallback."""
    import tracetui.trace.loader as loader_mod

    lines = [json.dumps(_good(0)), '{"ph":"X","name":"nan","pid":1,"tid":1,"ts":NaN,"dur":1}']
    lines += [json.dumps(_good(i)) for i in range(1, 150)]
    path = tmp_path / "nan.json"
    path.write_text("[\n" + ",\n".join(lines) + "\n]\n")
    small = Loader(str(path), piece_bytes=256).run()
    monkeypatch.setattr(loader_mod, "MAX_PIECE", 2048)  # as if the file were > 64 MB
    large = Loader(str(path), piece_bytes=256).run()
    for tr in (small, large, load(str(path))):
        # a JSON syntax error: the events before it are kept, the load says it stopped
        assert tr.events == 1 and _names(tr) == ["good0"], tr.warnings
        assert tr.truncated and any("JSON error" in w for w in tr.warnings), tr.warnings


@pytest.mark.parametrize("pieces", [None, 16], ids=["default", "tiny"])
def test_syntax_error_midway_keeps_events_before_it(tmp_path, pieces):
    lines = [json.dumps(_good(i)) for i in range(5)]
    lines.insert(3, '{"ph":"X","name":"broken","pid":1,"tid":1,"ts":1,"dur":1,,}')
    path = tmp_path / "s.json"
    path.write_text('{"traceEvents": [\n' + ",\n".join(lines) + "\n]}\n")
    tr = _load(path, pieces)
    assert tr.truncated
    assert tr.events == 3 and _names(tr) == ["good0", "good1", "good2"]
    assert any("JSON error" in w for w in tr.warnings), tr.warnings


@pytest.mark.parametrize("pieces", [None, 16], ids=["default", "tiny"])
def test_invalid_utf8_in_a_name_does_not_crash(tmp_path, pieces):
    """Regression: an overlong UTF-8 sequence made ijson raise UnicodeDecodeError, which
    escaped the loader."""
    good = [json.dumps(_good(i)).encode() for i in range(3)]
    bad = b'{"ph":"X","name":"a\xc0\xafb","pid":1,"tid":1,"ts":3,"dur":1}'
    path = tmp_path / "u.json"
    path.write_bytes(b"[\n" + b",\n".join([good[0], bad, good[1], good[2]]) + b"\n]\n")
    tr = _load(path, pieces)
    # not UTF-8, so not JSON: the events before it are kept, the load says it stopped
    assert tr.events == 1 and _names(tr) == ["good0"], tr.warnings
    assert tr.truncated and any("JSON error" in w for w in tr.warnings), tr.warnings


@pytest.mark.parametrize("pieces", [None, 16], ids=["default", "tiny"])
def test_deeply_nested_args_do_not_crash(tmp_path, pieces):
    """Regression: 2000 levels of nesting raised RecursionError out of the loader."""
    good = [json.dumps(_good(i)).encode() for i in range(3)]
    bad = b'{"ph":"X","name":"deep","pid":1,"tid":1,"ts":3,"dur":1,"args":{"a":' \
        + b"[" * 2000 + b"]" * 2000 + b"}}"
    path = tmp_path / "deep.json"
    path.write_bytes(b"[\n" + b",\n".join([good[0], bad, good[1], good[2]]) + b"\n]\n")
    tr = _load(path, pieces)
    assert "good0" in _names(tr)
    if not tr.truncated:  # valid JSON: everything loads
        assert tr.events == 4 and _names(tr) == ["deep", "good0", "good1", "good2"]
    else:  # or the loader gives up at the deep event, and says so
        assert tr.events == 1 and tr.warnings


# ----------------------------------------------------------------------------- 3. nanoseconds


def _exact_trace(tmp_path: Path, values: list[tuple[str, str]], layout: str) -> Path:
    lines = [f'{{"ph":"X","name":"e{i}","pid":1,"tid":1,"ts":{ts},"dur":{dur}}}'
             for i, (ts, dur) in enumerate(values)]
    path = tmp_path / f"ns_{layout}.json"
    if layout == "lines":
        path.write_text('{"traceEvents": [\n' + ",\n".join(lines) + "\n]}\n")
    else:
        path.write_text("[" + ",".join(lines) + "]")
    return path


def _assert_exact(tr, values: list[tuple[str, str]]) -> None:
    got = {tr.name_of(i): (int(tr.start[i]) + tr.t0_abs_ns, int(tr.dur[i]))
           for i in range(tr.slice_count)}
    exp = {f"e{i}": (int(Decimal(ts) * 1000), int(Decimal(dur) * 1000))
           for i, (ts, dur) in enumerate(values)}
    assert got == exp


EXACT_CASES = {
    "float-us": [("5123456789012.345", "0.001"), ("1234.001", "53.09"),
                 ("5123456789012.999", "1.5"), ("0.001", "2")],
    "int-us-1.7e15": [("1700000000000000", "1"), ("1699999999999999", "2"),
                      ("1712195495519695", "53")],
    # a float that float64 cannot hold to the ns *and* whose fraction survives as non-zero
    # (.5 is exact): the loader re-reads the file as Decimal, which must then be exact
    "float-1.7e15-reread": [("1712195495519695.5", "0.001"), ("1712195495519695.123", "53.09"),
                            ("1712195495519695.999", "1.234"), ("1234.001", "7")],
}


@pytest.mark.parametrize("pieces", [None, 16], ids=["default", "tiny"])
@pytest.mark.parametrize("layout", ["lines", "oneline"])
@pytest.mark.parametrize("case", list(EXACT_CASES))
def test_nanosecond_exactness(tmp_path, case, layout, pieces):
    values = EXACT_CASES[case]
    tr = _load(_exact_trace(tmp_path, values, layout), pieces)
    assert tr.warnings == []
    _assert_exact(tr, values)


@pytest.mark.parametrize("pieces", [None, 16], ids=["default", "tiny"])
@pytest.mark.parametrize("layout", ["lines", "oneline"])
def test_nanosecond_exactness_large_float_rounded_to_integer(tmp_path, layout, pieces):
    """Regression: 1712195495519695.123 is 1712195495519695.0 as a float64 (frac == 0), so the
    exact Decimal re-read was never triggered and 123 ns were lost."""
    values = [("1712195495519695.123", "0.001"), ("1712195495519696", "53.09")]
    tr = _load(_exact_trace(tmp_path, values, layout), pieces)
    _assert_exact(tr, values)


# ----------------------------------------------------------------------------- 4. errors


def _error_files(tmp_path: Path) -> dict[str, Path]:
    d = tmp_path / "errs"
    d.mkdir()
    files = {
        "missing": d / "does-not-exist.json",
        "directory": d,
        "empty": d / "empty.json",
        "whitespace": d / "ws.json",
        "not-json": d / "nj.json",
        "object-without-traceEvents": d / "foo.json",
        "execution-trace": d / "et.json",
        "gzip-magic-garbage": d / "garbage.json",
        "gzip-header-then-garbage": d / "garbage2.json.gz",
        "gzip-of-nothing": d / "nothing.json.gz",
        "array-of-numbers": d / "nums.json",
        "top-level-string": d / "str.json",
    }
    files["empty"].write_bytes(b"")
    files["whitespace"].write_bytes(b" \n\t \r\n  ")
    files["not-json"].write_bytes(b"not json")
    files["object-without-traceEvents"].write_bytes(b'{"foo": 1}')
    files["execution-trace"].write_text(json.dumps({
        "schema": "1.1.1-chakra.0.0.4", "pid": 1234, "time": "2024-04-04 12:00:00",
        "start_ts": 1, "finish_ts": 2,
        "nodes": [{"id": 1, "name": "[pytorch|profiler|execution_trace|process]", "ctrl_deps": 0,
                   "inputs": {"values": [], "shapes": [], "types": []}}]}, indent=2))
    files["gzip-magic-garbage"].write_bytes(b"\x1f\x8b" + b"garbage, not deflate data" * 4)
    files["gzip-header-then-garbage"].write_bytes(
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + b"\xff" * 64)
    files["gzip-of-nothing"].write_bytes(gzip.compress(b""))
    files["array-of-numbers"].write_bytes(b"[1, 2, 3]")
    files["top-level-string"].write_bytes(b'"hello"')
    return files


def test_errors_are_one_line_trace_errors(tmp_path):
    for name, path in _error_files(tmp_path).items():
        with pytest.raises(TraceError) as info:
            load(str(path))
        msg = str(info.value)
        assert msg and "\n" not in msg and "\r" not in msg, (name, msg)
        assert str(path) in msg, (name, msg)
        if name == "execution-trace":
            assert "execution trace" in msg
        # the same through a Loader with tiny pieces
        with pytest.raises(TraceError):
            Loader(str(path), piece_bytes=TINY).run()


@pytest.mark.parametrize("text", [b"[]", b"[ ]\n", b'{"traceEvents": []}',
                                  b'{"a": {"b": [1, {"c": "]"}]}, "traceEvents": [\n]}'])
def test_empty_traces_are_valid(tmp_path, text):
    for name, data in (("e.json", text), ("e.json.gz", gzip.compress(text))):
        path = tmp_path / name
        path.write_bytes(data)
        tr = load(str(path))
        assert tr.events == 0 and tr.slice_count == 0 and not tr.truncated
        assert tr.lanes == [] and tr.warnings == []


def test_trace_error_is_one_line_even_for_odd_paths(tmp_path):
    """Regression: the path was embedded as is, so a newline in it made two lines."""
    with pytest.raises(TraceError) as info:
        load(str(tmp_path / "a\nb.json"))
    assert "\n" not in str(info.value)


def test_cli_errors(tmp_path, capsys):
    files = _error_files(tmp_path)
    files["newline-in-name"] = tmp_path / "a\nb.json"
    del files["directory"]  # `summary DIR` reads the ranks in it (tests/test_ranks.py)
    for name, path in files.items():
        for extra in ([], ["--json"]):
            rc = main(["summary", str(path), *extra])
            cap = capsys.readouterr()
            assert rc == 2, (name, rc, cap.err)
            lines = cap.err.splitlines()
            assert len(lines) == 1 and lines[0].startswith("tracetui: error: "), (name, cap.err)
            assert "Traceback" not in cap.err and cap.out == ""


def test_cli_console_script_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_bytes(b"not json at all")
    p = subprocess.run([sys.executable, "-m", "tracetui", "summary", str(bad)],
                       check=False, capture_output=True, text=True, timeout=60)
    assert p.returncode == 2, p.stderr
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("tracetui: error: "), p.stderr
    assert "Traceback" not in p.stderr and p.stdout == ""


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_cli_summary_of_truncated_trace(tmp_path, capsys, gz):
    scan = _scan(DECODE)
    cut = scan.size // 3
    text = _text(DECODE)[:cut]
    path = tmp_path / ("cut.json.gz" if gz else "cut.json")
    path.write_bytes(gzip.compress(text, compresslevel=1) if gz else text)
    assert main(["summary", str(path), "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["truncated"] is True
    assert facts["events"] == scan.expected_events(cut)
    assert any("truncated at byte" in w for w in facts["warnings"])
    assert main(["summary", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"{scan.expected_events(cut):,} events" in out
    assert "truncated at byte" in out


_CHILD = ("import sys\n"
          "from tracetui.trace import load, TraceError\n"
          "try:\n"
          "    t = load(sys.argv[1])\n"
          "    print('OK', t.events, t.truncated)\n"
          "except TraceError as e:\n"
          "    print('TraceError')\n")


def test_gzip_with_data_after_a_large_member_terminates(tmp_path):
    """Regression: GzipStream._fill looped for ever when a member that inflates to more than
    1 MiB was followed by more bytes (after an output-limited decompress() call, zlib leaves
    the bytes after the member in unconsumed_tail too). Run in child processes so that a
    hang fails the test instead of blocking the suite."""
    raw = DECODE.read_bytes()
    exp = _scan(DECODE).cum[-1]
    inputs = {
        "two-members": gzip.compress(raw[:1_100_000]) + gzip.compress(raw[1_100_000:]),
        "zero-padding": gzip.compress(raw) + b"\x00" * 16,
        "junk": gzip.compress(raw) + b"junk",
    }
    procs = {}
    for name, data in inputs.items():
        path = tmp_path / f"{name}.json.gz"
        path.write_bytes(data)
        procs[name] = subprocess.Popen([sys.executable, "-c", _CHILD, str(path)],
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    out = {}
    for name, p in procs.items():
        try:
            o, e = p.communicate(timeout=max(0.1, deadline - time.monotonic()))
            out[name] = (p.returncode, o.strip(), e.strip())
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            out[name] = "hung"
    assert out["two-members"] == (0, f"OK {exp} False", ""), out
    assert out["zero-padding"] == (0, f"OK {exp} False", ""), out
    assert out["junk"] != "hung" and out["junk"][0] == 0, out


def test_gzip_with_junk_after_the_member_keeps_its_events(tmp_path):
    """A gzip member (of a trace cut at 500 kB, so it is truncated anyway) followed by junk:
    what the member inflates to is data like any other and must be kept."""
    text = _text(DECODE)[:500_000]
    exp = _scan(DECODE).expected_events(len(text))
    path = tmp_path / "junk.json.gz"
    path.write_bytes(gzip.compress(text) + b"junk")
    try:
        tr = load(str(path))
    except TraceError as err:
        raise AssertionError(f"TraceError: {err}") from None
    assert tr.events == exp, (tr.events, exp, tr.warnings)
    assert tr.truncated


# ----------------------------------------------------------------------------- 5. layouts


def _layout_events() -> list[dict]:
    nested = [{"k": i, "v": [{"deep": j} for j in range(3)], "s": '},{"fake": 1},'}
              for i in range(9)]
    evs: list[dict] = [
        {"ph": "M", "name": "process_name", "pid": 7, "tid": 0, "args": {"name": "trainer"}},
        {"ph": "M", "name": "thread_name", "pid": 7, "tid": 70, "args": {"name": "main"}},
        {"ph": "M", "name": "process_labels", "pid": 0, "tid": 0, "args": {"labels": "GPU 0"}},
    ]
    t = 1_000_000.125
    for i in range(60):
        t += 3.5
        evs.append({"ph": "X", "cat": "cpu_op", "name": f"aten::op{i % 7}", "pid": 7, "tid": 70,
                    "ts": t, "dur": 2.25 + i % 3, "args": {"items": nested[: 1 + i % 9],
                                                           "External id": i}})
        if i % 5 == 0:
            evs.append({"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": 7,
                        "tid": 70, "ts": t + 0.5, "dur": 1, "args": {"correlation": i}})
            evs.append({"ph": "X", "cat": "kernel", "name": f"kernel_{i}", "pid": 0, "tid": 7,
                        "ts": t + 2, "dur": 4.001,
                        "args": {"correlation": i, "device": 0, "stream": 7,
                                 "grid": [1, 2, 3], "block": [128, 1, 1]}})
            evs.append({"ph": "s", "id": i, "cat": "ac2g", "name": "ac2g", "pid": 7, "tid": 70,
                        "ts": t + 0.5})
            evs.append({"ph": "f", "id": i, "bp": "e", "cat": "ac2g", "name": "ac2g", "pid": 0,
                        "tid": 7, "ts": t + 2})
        if i % 11 == 0:
            evs.append({"ph": "B", "name": f"span{i}", "pid": 7, "tid": 71, "ts": t})
            evs.append({"ph": "E", "pid": 7, "tid": 71, "ts": t + 7.75,
                        "args": {"end": [{"a": 1}]}})
            evs.append({"ph": "C", "name": "memory", "pid": 7, "ts": t, "args": {"bytes": i * 10}})
            evs.append({"ph": "i", "name": f"mark{i}", "pid": 7, "tid": 70, "ts": t, "s": "t"})
    return evs


def _nested_on_own_lines(ev: dict) -> str:
    """One event, whose args' lists of objects have one object per line: a line of such a
    list starts with "{" and the line before ends with "," just like an event boundary."""
    args = ev.get("args")
    if not isinstance(args, dict) or not any(isinstance(v, list) for v in args.values()):
        return json.dumps(ev)
    head = json.dumps({k: v for k, v in ev.items() if k != "args"})[:-1]
    parts = []
    for k, v in args.items():
        if isinstance(v, list) and v and isinstance(v[0], dict):
            parts.append(json.dumps(k) + ": [\n" + ",\n".join(json.dumps(x) for x in v) + "\n]")
        else:
            parts.append(json.dumps(k) + ": " + json.dumps(v))
    return head + ', "args": {' + ", ".join(parts) + "}}"


def _layouts() -> dict[str, bytes]:
    evs = _layout_events()
    obj = {"schemaVersion": 1, "deviceProperties": [{"id": 0, "name": "GPU"}],
           "traceEvents": evs, "traceName": "layouts", "displayTimeUnit": "ms"}
    head = '{"schemaVersion": 1, "deviceProperties": [{"id": 0, "name": "GPU"}], "traceEvents": ['
    tail = '], "traceName": "layouts", "displayTimeUnit": "ms"}'
    per_line = head + "\n" + ",\n".join(json.dumps(e) for e in evs) + "\n" + tail + "\n"
    nested = head + "\n" + ",\n".join(_nested_on_own_lines(e) for e in evs) + "\n" + tail + "\n"
    return {
        "per-line": per_line.encode(),
        "one-line": json.dumps(obj).encode(),
        "indent-2": json.dumps(obj, indent=2).encode(),
        "crlf": per_line.replace("\n", "\r\n").encode(),
        "indent-2-crlf": json.dumps(obj, indent=2).replace("\n", "\r\n").encode(),
        "nested-lists-own-lines": nested.encode(),
        "nested-crlf": nested.replace("\n", "\r\n").encode(),
        "bare-array-per-line": ("[\n" + ",\n".join(json.dumps(e) for e in evs) + "\n]").encode(),
        "bare-array-nested": ("[\n" + ",\n".join(_nested_on_own_lines(e) for e in evs)
                              + "\n]\n").encode(),
        "comma-first": (head + "\n" + "\n,".join(json.dumps(e) for e in evs) + "\n" + tail
                        ).encode(),
        "bom-and-blank-lines": b"\xef\xbb\xbf\n\n" + per_line.replace(",\n", ",\n\n").encode(),
        "compact": json.dumps(obj, separators=(",", ":")).encode(),
        "tabs": json.dumps(obj, indent="\t").encode(),
        "one-line-crlf-end": (json.dumps(obj) + "\r\n").encode(),
        # every separator there is, one after another: a file appended to by several writers
        "mixture": (head + "\n".join(
            json.dumps(e, indent=2 if i % 5 == 0 else None) + _MIXED_SEPS[i % len(_MIXED_SEPS)]
            for i, e in enumerate(evs[:-1])) + json.dumps(evs[-1]) + tail).encode(),
    }


_MIXED_SEPS = [",", ", ", ",\n", "\r\n,", "\t,\t", "\n  ,  \n    ", ",\r\n", " ,"]


def _fingerprint(tr) -> dict:
    return {
        "events": tr.events,
        "phases": tr.phase_counts,
        "truncated": tr.truncated,
        "warnings": tr.warnings,
        "t0": tr.t0_abs_ns,
        "start": tr.start.tolist(),
        "dur": tr.dur.tolist(),
        "names": [tr.name_of(i) for i in range(tr.slice_count)],
        "lanes": [(ln.name, ln.kind, ln.count) for ln in tr.lanes],
        "inst": tr.inst_ts.tolist(),
        "counters": [(c.name, c.ts.tolist(), c.values.tolist()) for c in tr.counters],
        "flows": len(tr.flow_src),
        "launch_links": len(tr.launch_of),
    }


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("pieces", [None, TINY, 4096], ids=["default", "tiny", "4k"])
def test_every_layout_takes_the_piece_path(tmp_path, gz, pieces):
    """One path for every layout: each is cut into pieces that msgspec decodes (no ijson),
    however the events are laid out, even with "},{" in strings and lists of objects."""
    from tracetui.trace.pieces import KIND_ARRAY, KIND_TAIL

    for name, data in _layouts().items():
        path = tmp_path / (name + (".json.gz" if gz else ".json"))
        path.write_bytes(gzip.compress(data) if gz else data)
        loader = Loader(str(path), piece_bytes=pieces or (512 << 10), workers=1)
        tr = loader.run()
        kinds = {kind for kind, _, _ in tr.pieces.pieces}
        assert kinds <= {KIND_ARRAY, KIND_TAIL}, (name, kinds)
        if pieces:
            assert len(tr.pieces.pieces) > 3, name  # really cut, not one piece


def test_layouts_are_valid_json_and_equal():
    layouts = _layouts()
    ref = json.loads(layouts["per-line"])
    for name, data in layouts.items():
        parsed = json.loads(data.decode("utf-8-sig"))
        assert (parsed if isinstance(parsed, list) else parsed["traceEvents"]) \
            == ref["traceEvents"], name


@pytest.mark.parametrize("pieces", [None, TINY], ids=["default", "tiny"])
@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_layout_independence(tmp_path, gz, pieces):
    layouts = _layouts()
    evs = _layout_events()
    # independent expectations for the X and B/E slices
    xs = sorted((e["name"], int(Decimal(repr(e["ts"])) * 1000), int(Decimal(repr(e["dur"])) * 1000))
                for e in evs if e["ph"] == "X")
    non_meta = sum(1 for e in evs if e["ph"] != "M")
    prints = {}
    for name, data in layouts.items():
        path = tmp_path / (name + (".json.gz" if gz else ".json"))
        path.write_bytes(gzip.compress(data) if gz else data)
        tr = _load(path, pieces)
        fp = _fingerprint(tr)
        prints[name] = fp
        assert not tr.truncated and tr.warnings == [], (name, tr.warnings)
        assert tr.events == non_meta, name
        got = sorted((tr.name_of(i), int(tr.start[i]) + tr.t0_abs_ns, int(tr.dur[i]))
                     for i in range(tr.slice_count) if not tr.name_of(i).startswith("span"))
        assert got == xs, name
        assert len(tr.launch_of) == 12 and len(tr.flow_src) == 12, name
        assert {ln.name for ln in tr.lanes} >= {"trainer 7 · main", "GPU 0 · stream 7"}, \
            (name, [ln.name for ln in tr.lanes])
    ref = prints["per-line"]
    for name, fp in prints.items():
        for key in ref:
            assert fp[key] == ref[key], (name, key)


# ----------------------------------------------------------------------------- huge tokens

@pytest.mark.parametrize("where", ["name", "args"])
@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("max_piece", [1 << 20, 16 << 20], ids=["ijson", "fast"])
def test_a_huge_string_loads_whole_in_few_reads(tmp_path, monkeypatch, where, gz, max_piece):
    """A valid trace with one 6 MB string (a name or an arg) between ordinary events. The fast
    path doubles its buffer while no cut exists (a piece at a time was quadratic), past
    MAX_PIECE (lowered here) too: ijson took over there, and its time grew faster than the
    string (800 MB: 41 s). A 200 MB name took 214 s. A name that long is kept cut."""
    from tracetui.trace.strings import cut_name

    import tracetui.trace.loader as loader_mod

    monkeypatch.setattr(loader_mod, "MAX_PIECE", max_piece)
    big = "é" + "x" * (6 << 20) + '"\\]}'
    huge = {"ph": "X", "name": big if where == "name" else "k", "ts": 5, "dur": 2,
            "pid": 1, "tid": 1, "args": {"big": big} if where == "args" else {"n": 1}}
    events = [{"ph": "X", "name": f"e{i}", "ts": 10 + i, "dur": 1, "pid": 1, "tid": 1}
              for i in range(300)]
    events.insert(100, huge)
    text = json.dumps({"traceEvents": events}, indent=0).encode()
    path = tmp_path / ("h.json.gz" if gz else "h.json")
    path.write_bytes(gzip.compress(text, 1) if gz else text)
    reads = []
    real = Loader._read_block

    def counting(self, stream, n):
        reads.append(n)
        return real(self, stream, n)

    monkeypatch.setattr(Loader, "_read_block", counting)
    tr = Loader(str(path), piece_bytes=32 << 10, workers=1).run()
    assert tr.events == 301 and not tr.truncated
    assert tr.warnings == (["1 names longer than 64 K characters (kept cut, with their length)"]
                           if where == "name" else [])
    names = {tr.name_of(i) for i in range(tr.slice_count)}
    shown = cut_name(big) if where == "name" else "k"
    assert shown in names and "e299" in names
    i = next(i for i in range(tr.slice_count) if tr.name_of(i) == shown)
    assert tr.args_of(i) == huge["args"]  # the args, re-read from the file, are whole
    assert len(reads) < 40, len(reads)  # 6 MB in 32 KB pieces was ~200 reads


@pytest.mark.parametrize("layout", ["one-line", "per-line"])
def test_a_huge_event_full_of_false_boundaries_loads_in_few_decodes(tmp_path, monkeypatch,
                                                                     layout):
    """One event whose args hold 150,000 small objects in a list (a false candidate boundary
    every few bytes) between ordinary events: the structure says no event starts inside it,
    so the buffer grows by doubling; every event is kept, with no ijson and a number of
    decodes that grows with the log of the event's size, not its size."""
    import tracetui.trace.loader as loader_mod
    from tracetui.trace.pieces import KIND_ARRAY, KIND_TAIL

    huge = {"ph": "X", "name": "huge", "ts": 5, "dur": 2, "pid": 1, "tid": 1,
            "args": {"list": [{"i": i} for i in range(150_000)]}}
    events = [{"ph": "X", "name": f"e{i}", "ts": 10 + i, "dur": 1, "pid": 1, "tid": 1}
              for i in range(300)]
    events.insert(100, huge)
    sep = ", " if layout == "one-line" else ",\n"
    text = ('{"traceEvents": [' + sep.join(json.dumps(e) for e in events) + "]}").encode()
    path = tmp_path / "h.json"
    path.write_bytes(text)
    calls = []
    real = loader_mod.decode_piece_in
    monkeypatch.setattr(loader_mod, "decode_piece_in",
                        lambda buf, end, exact: calls.append(end - 1) or real(buf, end, exact))
    tr = Loader(str(path), piece_bytes=32 << 10, workers=1).run()
    assert tr.events == 301 and not tr.truncated and tr.warnings == []
    assert {k for k, _, _ in tr.pieces.pieces} <= {KIND_ARRAY, KIND_TAIL}
    assert len(calls) < 40, len(calls)
    assert sum(calls) < 4 * len(text), (sum(calls), len(text))


def test_the_nesting_guard_is_fast_on_long_strings():
    """The depth guard of the ijson fallback looks at quotes, backslashes and brackets only;
    it agrees with itself whatever the blocks (the fuzz test checks it against a plain scan)."""
    from tracetui.trace.pieces import Depth as _Depth

    text = json.dumps({"a": ["x" * 100_000 + '\\"[{', {"b": "\\\\"}], "c": [[[]]]}).encode()
    for block in (1, 7, 4096, len(text)):
        d = _Depth()
        for k in range(0, len(text), block):
            d.feed(text[k:k + block])
        assert d.depth == 0 and not d.in_string and not d.escaped, block
