"""Fuzzing the loader (hypothesis, bounded in time): whatever the bytes, ``load`` returns an
index or raises ``TraceError`` — never another exception, never a hang — and a cut-off file
keeps every event that was whole before the cut. The analyses behind ``summary`` run on
every index that loads, and the parallel loader must agree with the single stream.

Every case runs under a 20 s alarm (a hang fails the test instead of stalling CI).
"""

from __future__ import annotations

import contextlib
import gzip
import json
import signal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from test_damaged import DECODE, _check_cut, _scan, _text
from test_parallel import _dump
from tracetui.analysis.report import analyze
from tracetui.trace import TraceError
from tracetui.trace.loader import Loader

CASE_SECONDS = 20
def fuzz(n: int) -> settings:
    """``n`` cases, the same ones on every run (derandomized: CI stays reproducible)."""
    return settings(max_examples=n, deadline=None, suppress_health_check=list(HealthCheck),
                    derandomize=True, database=None)

HOSTILE = [
    "\x1b[2J\x1b[H", "\x1b]52;c;aGFja2Vk\x07", "\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\",
    "[bold red]markup[/]", "[@click=app.quit]click[/]", "\u202eevil\u202c", "a\x00b",
    "\ud7ff\ue000\U0010ffff", "x" * 5000, "", " ", "\n\r\t", "NaN", "Infinity", "-0", "1e400",
]


class _Hang(Exception):
    pass


@contextlib.contextmanager
def _time_limit(seconds: int):
    def fire(signum, frame):
        raise _Hang(f"a case took more than {seconds} s")

    old = signal.signal(signal.SIGALRM, fire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _load_or_error(path: Path, **kw):
    """The index, or None for a TraceError; anything else fails the test."""
    with _time_limit(CASE_SECONDS):
        try:
            tr = Loader(str(path), **kw).run()
        except TraceError as err:
            assert "\n" not in str(err)
            return None
        analyze(tr)  # the summary's analyses hold on whatever loaded
        return tr


# ----------------------------------------------------------------------------- strategies

scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-2**70, max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(min_value=1e12, max_value=2e15),  # epoch-like µs: exact mode
    st.text(max_size=12), st.sampled_from(HOSTILE),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12)
numbers = st.one_of(st.integers(min_value=-2**64, max_value=2**64),
                    st.floats(allow_nan=False, allow_infinity=False),
                    st.integers(min_value=0, max_value=10**7), values)
ids = st.one_of(st.integers(min_value=-3, max_value=40), st.text(max_size=4),
                st.sampled_from(["Spans", "Traces", "25738"]), values)
ARG_KEYS = ["correlation", "External id", "grid", "block", "device", "stream", "name",
            "labels", "sort_index", "registers per thread", "bytes", "value"]
args = st.one_of(values, st.dictionaries(st.sampled_from(ARG_KEYS), values, max_size=5))
event = st.fixed_dictionaries(
    {"ph": st.one_of(st.sampled_from(list("XXXXBEiICMsftbenR")), values)},
    optional={
        "name": st.one_of(st.text(max_size=30), st.sampled_from(HOSTILE), values),
        "cat": st.one_of(st.sampled_from(["kernel", "cpu_op", "ac2g", "cuda_runtime",
                                          "gpu_user_annotation", "user_annotation"]), values),
        "pid": ids, "tid": ids, "ts": numbers, "dur": numbers, "id": ids,
        "bp": st.sampled_from(["e", "s", None]), "args": args,
        "s": st.sampled_from(["t", "p", "g"]), "bind_id": ids,
        "flow_in": st.booleans(), "flow_out": st.booleans(),
    })
events = st.lists(st.one_of(event, event, event, values), max_size=60)


def _write(path: Path, evs: list, form: str, layout: str, gz: bool) -> Path:
    if layout == "lines":
        body = "[\n" + ",\n".join(json.dumps(e) for e in evs) + "\n]"
    else:
        body = json.dumps(evs)
    text = ('{"schemaVersion": 1, "traceEvents": ' + body + ', "traceName": "fuzz"}'
            if form == "object" else body)
    data = text.encode()
    path.write_bytes(gzip.compress(data, compresslevel=1) if gz else data)
    return path


# ----------------------------------------------------------------------------- properties


@fuzz(150)
@given(evs=events, form=st.sampled_from(["object", "array"]),
       layout=st.sampled_from(["lines", "one"]), gz=st.booleans(),
       pieces=st.sampled_from([200, 4096, 512 << 10]))
def test_random_events_load_or_fail_cleanly(tmp_path_factory, evs, form, layout, gz, pieces):
    path = _write(tmp_path_factory.mktemp("f") / "t.json", evs, form, layout, gz)
    tr = _load_or_error(path, piece_bytes=pieces, workers=1)
    if tr is not None:
        assert tr.events <= len(evs)
        assert (tr.dur >= 0).all()


@fuzz(25)
@given(evs=st.lists(event, min_size=20, max_size=80), gz=st.booleans())
def test_random_events_parallel_equals_one_stream(tmp_path_factory, evs, gz):
    """The merge of ranges parsed apart against one stream, on hostile events."""
    path = _write(tmp_path_factory.mktemp("p") / "t.json", evs, "object", "lines", gz)
    one = _load_or_error(path, piece_bytes=300, workers=1)
    two = _load_or_error(path, piece_bytes=300, workers=2, parallel_min=0)
    assert (one is None) == (two is None)
    if one is not None:
        a, b = _dump(one), _dump(two)
        for key in a:
            assert a[key] == b[key], key


@fuzz(40)
@given(frac=st.floats(min_value=0.0, max_value=1.0), gz=st.booleans(),
       pieces=st.sampled_from([None, 4096]))
def test_random_truncation_keeps_every_whole_event(tmp_path_factory, frac, gz, pieces):
    text = _text(DECODE)
    cut = int(len(text) * frac)
    data = gzip.compress(text[:cut], compresslevel=1) if gz else text[:cut]
    with _time_limit(CASE_SECONDS):
        _check_cut(tmp_path_factory.mktemp("c"), _scan(DECODE), cut, data,
                   "cut.json.gz" if gz else "cut.json", pieces)


@fuzz(60)
@given(flips=st.lists(st.tuples(st.floats(min_value=0.0, max_value=0.9999),
                                st.integers(min_value=0, max_value=255)),
                      min_size=1, max_size=6),
       gz=st.booleans(), pieces=st.sampled_from([4096, 512 << 10]))
def test_random_byte_flips_load_or_fail_cleanly(tmp_path_factory, flips, gz, pieces):
    """Bytes changed anywhere (in the JSON text, or in the gzip stream itself)."""
    data = bytearray(gzip.compress(_text(DECODE), compresslevel=1) if gz else _text(DECODE))
    for where, value in flips:
        data[int(len(data) * where)] = value
    path = tmp_path_factory.mktemp("b") / ("flip.json.gz" if gz else "flip.json")
    path.write_bytes(bytes(data))
    tr = _load_or_error(path, piece_bytes=pieces)
    if tr is not None:
        assert tr.events <= _scan(DECODE).cum[-1] + len(flips)


@pytest.mark.parametrize("text", ["[" * 100_000, '{"traceEvents": [' + "[" * 50_000,
                                  '{"traceEvents": [{"ph": "X", "name": "' + "a" * 5_000_000
                                  + '", "ts": 1, "dur": 1, "pid": 1, "tid": 1}]}'])
def test_pathological_nesting_and_huge_strings(tmp_path, text):
    path = tmp_path / "p.json"
    path.write_text(text)
    tr = _load_or_error(path)
    if tr is not None and "a" * 100 in text:  # kept cut, saying how long it was
        from tracetui.trace.strings import MAX_NAME

        name = tr.name_of(0)
        assert tr.events == 1 and len(name) == MAX_NAME
        assert name.startswith("aaaa") and name.endswith("(cut: 5,000,000 characters in all)")


def _reference_depths(data: bytes) -> list[int]:
    """Nesting depth after every byte, brackets inside strings not counted (plain Python)."""
    out, d, inside, esc = [], 0, False, False
    for ch in data.decode("latin-1"):
        if inside:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                inside = False
        elif ch == '"':
            inside = True
        elif ch in "[{":
            d += 1
        elif ch in "]}":
            d -= 1
        out.append(d)
    return out


@fuzz(200)
@given(value=values, cuts=st.lists(st.integers(min_value=1, max_value=9), max_size=40))
def test_depth_tracker_matches_a_plain_scan(value, cuts):
    """The ijson fallback's depth guard: brackets and escaped quotes inside strings do not
    count, whatever block boundaries the reads fall on."""
    from tracetui.trace.pieces import Depth as _Depth

    data = json.dumps(value, ensure_ascii=False).encode()
    want = _reference_depths(data)
    dp, pos = _Depth(), 0
    for k in cuts + [len(data)]:
        if pos >= len(data):
            break
        dp.feed(data[pos:pos + k])
        pos += k
        assert dp.depth == want[min(pos, len(data)) - 1]
    assert dp.depth == 0 and not dp.in_string
