"""Issue 20: what a hostile or unlucky trace did to us, each case as it is now.

Lone surrogates and 8-bit controls in names, timestamps that overflow, device properties of
the wrong type, numbers too large to be numbers, and command lines that used to end in an
internal error. Each test checks what the user sees (exit status, one line) as well as that
nothing crashes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

SAMPLES = Path(__file__).resolve().parent.parent / "sample_traces"
DECODE = SAMPLES / "decode.json"


def _cli(args: list[str], tmp: Path, env: dict[str, str] | None = None,
         stdout: int | None = subprocess.PIPE) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tracetui", *args], cwd=tmp, stdout=stdout,
                          stderr=subprocess.PIPE, timeout=120, check=False,
                          env={**os.environ, "TMPDIR": str(tmp), **(env or {})})


HOSTILE_NAMES = ["\ud800lone high", "\udc9b2J\udc9d0;x\udc9c", "osc\x1b]0;pwn\x07", "c1\x9b31m"]


def hostile_trace(tmp: Path) -> Path:
    """The decode sample with hostile kernel and annotation names (JSON escapes, as a
    profiler writing them with ensure_ascii would)."""
    data = json.loads(DECODE.read_text())
    evs = data["traceEvents"] if isinstance(data, dict) else data
    k = a = 0
    for e in evs:
        if e.get("cat") == "kernel" and k < len(HOSTILE_NAMES):
            e["name"] = HOSTILE_NAMES[k]
            k += 1
        elif e.get("cat") == "cpu_op" and a < 1:
            e["name"] = "op \ud800"
            a += 1
    assert k == len(HOSTILE_NAMES) and a == 1
    path = tmp / "hostile.json"
    path.write_text(json.dumps(data))
    return path


def _unsafe_bytes(out: bytes) -> list[bytes]:
    """Bytes that a terminal could run: ESC, C1 controls as raw 8-bit bytes, BEL."""
    return [bytes([b]) for b in set(out) if b in (0x1b, 0x07) or 0x80 <= b <= 0x9f
            and not _in_utf8(out, b)]


def _in_utf8(out: bytes, b: int) -> bool:
    """Whether byte ``b`` (0x80-0x9f) only ever appears inside UTF-8 sequences of ``out``."""
    text = out.decode("utf-8", errors="surrogateescape")
    return chr(0xDC00 + b) not in text


@pytest.mark.parametrize("args", [["summary"], ["summary", "--csv"], ["summary", "--phases"],
                                  ["summary", "--json"], ["diff", "BASE"]],
                         ids=["text", "csv", "phases", "json", "diff"])
@pytest.mark.parametrize("locale", ["C.UTF-8", "C"])
def test_hostile_names_print_as_escapes_in_every_output(tmp_path, args, locale):
    path = hostile_trace(tmp_path)
    argv = [a if a != "BASE" else str(DECODE) for a in args]
    argv.insert(1, str(path))
    p = _cli(argv, tmp_path, env={"LC_ALL": locale, "PYTHONIOENCODING": ""})
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    assert b"internal error" not in p.stderr
    assert _unsafe_bytes(p.stdout) == [], p.stdout[:400]
    if args[-1] == "--csv":  # every kernel: each hostile name shown, as escapes
        for esc in (b"\\ud800lone high", b"\\udc9b2J\\udc9d0;x\\udc9c", b"osc^[]0;pwn^G",
                    b"c1\\u009b31m"):
            assert esc in p.stdout, esc
    if args[-1] == "--json":  # the data keeps the names: JSON escapes them itself
        names = {k["name"] for k in json.loads(p.stdout)["kernels"]}
        assert set(HOSTILE_NAMES) <= names


async def test_hostile_names_export_and_screenshot_from_the_app(tmp_path, monkeypatch):
    from conftest import loaded

    from tracetui.app.app import TraceApp

    monkeypatch.chdir(tmp_path)
    app = TraceApp(str(hostile_trace(tmp_path)))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(app, pilot, analyses=True)
        await pilot.press("k")
        await pilot.pause()
        await pilot.press("ctrl+e")
        await pilot.pause()
        await pilot.press("escape", "ctrl+s")
        await pilot.pause()
        errors = [n.message for n in app._notifications if n.severity == "error"]
        assert errors == []
    csvs = list(tmp_path.glob("*-kernels-*.csv"))
    svgs = list(tmp_path.glob("*-screen-*.svg"))
    assert len(csvs) == 1 and len(svgs) == 1
    text = csvs[0].read_bytes()
    assert b"\\ud800lone high" in text and b"\x1b" not in text
    assert app.return_code in (0, None)


# ---------------------------------------------------------------- huge spans
@pytest.mark.parametrize("t0, t1, n", [(0, 2**63 - 1, 100), (-2**62, 2**62, 7),
                                       (1_700_000_000_000_000_000, 1_700_000_000_000_000_100, 3),
                                       (5, 5, 4), (0, 10**18 * 9, 1920)])
def test_bin_edges_are_exact_for_any_span(t0, t1, n):
    from tracetui.trace.frame import bin_edges

    got = [int(v) for v in bin_edges(t0, t1, n)]
    hi = max(t1, t0 + n)  # (a window narrower than its columns: 1 ns each)
    want = [t0 + (k * (hi - t0)) // n for k in range(n + 1)]  # Python ints: no overflow
    assert got == want


def epoch_trace(tmp: Path) -> Path:
    """Kernels at epoch-µs timestamps (2023) and one CPU op at ts 0: 54 years of span."""
    evs = [{"ph": "X", "name": f"k{i}", "cat": "kernel", "pid": 0, "tid": 7,
            "ts": 1_700_000_000_000_000 + i * 10, "dur": 5, "args": {"device": 0, "stream": 7}}
           for i in range(50)]
    evs += [{"ph": "X", "name": "nccl:all_reduce", "cat": "kernel", "pid": 0, "tid": 8,
             "ts": 1_700_000_000_000_100, "dur": 50, "args": {"device": 0, "stream": 8}},
            {"ph": "X", "name": "stray", "cat": "cpu_op", "pid": 1, "tid": 1, "ts": 0, "dur": 1}]
    path = tmp / "epoch.json"
    path.write_text(json.dumps({"traceEvents": evs}))
    return path


async def test_a_span_of_decades_pans_zooms_and_opens_every_view(tmp_path):
    from conftest import loaded

    from tracetui.app.app import TraceApp

    app = TraceApp(str(epoch_trace(tmp_path)))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(app, pilot, analyses=True)
        for keys in (["D"] * 12, ["s"] * 6, ["A"] * 12, ["w"] * 3, ["o", "right", "w", "escape"],
                     ["x"], ["m", "escape"], ["p"], ["escape"], ["0"]):
            await pilot.press(*keys)
            await pilot.pause()
        tl = app.timeline
        assert 0 <= tl.t0 < tl.t1 and tl.t1 - tl.t0 <= 2 * max(app.trace.end_ns, 1)
        for y in range(0, 6):  # the rows still draw
            tl.render_line(y)
        await pilot.press("q")
    assert app.return_code == 0


# ---------------------------------------------------------------- numbers too large to be numbers
def _x(**kw) -> dict:
    return {"ph": "X", "name": "op", "cat": "cpu_op", "pid": 1, "tid": 1, "ts": 1, "dur": 1,
            **kw}


def test_a_timestamp_past_any_exponent_drops_that_event_not_the_trace(tmp_path):
    # an absolute-µs float sends the load to exact (Decimal) mode; 1.5e999999999 then
    # overflowed decimal's default context (abs() of it), an internal error
    path = tmp_path / "dec.json"
    path.write_text('{"traceEvents":[' + json.dumps(_x(name="a", ts=0)) + ","
                    + json.dumps(_x(name="b")).replace('"ts": 1', '"ts": 1700000000000000.5')
                    + "," + json.dumps(_x(name="c")).replace('"ts": 1', '"ts": 1.5e999999999')
                    + "]}")
    p = _cli(["summary", str(path), "--json"], tmp_path)
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert r["events"] == 2 and r["span_ns"] == 1_700_000_000_000_001_500  # every digit kept
    assert any("skipped 1 events" in w for w in r["warnings"])
    ranks = tmp_path / "ranks"
    ranks.mkdir()
    (ranks / "r0.json").write_text(path.read_text())
    (ranks / "r1.json").write_text(DECODE.read_text())
    p = _cli(["summary", str(ranks)], tmp_path)
    assert p.returncode == 0 and b"skipped" not in p.stderr, p.stderr


def test_ids_and_ranks_of_1e400_are_text_in_the_json(tmp_path):
    path = tmp_path / "inf.json"
    path.write_text(json.dumps({"traceEvents": [_x(pid=1, tid=2)],
                                "distributedInfo": {"rank": 7}})
                    .replace('"pid": 1', '"pid": 1e400').replace('"tid": 2', '"tid": -1e400')
                    .replace('"rank": 7', '"rank": 1e400'))
    p = _cli(["summary", str(path), "--json"], tmp_path)
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)  # strict JSON: no Infinity
    assert r["distributed_info"]["rank"] == "inf"
    assert [(ln["pid"], ln["tid"]) for ln in r["lanes"]] == [("inf", "-inf")]


# ---------------------------------------------------------------- the app under key mashing
async def test_phases_ready_under_the_palette_never_open_a_second_palette(monkeypatch):
    """p, then ctrl+p while the phases are still being found, then ctrl+p again once they
    are: the phase view used to open over the palette, and the second ctrl+p crashed the
    app (DuplicateIds '--command-palette')."""
    import threading

    from conftest import loaded, until
    from textual.command import CommandPalette

    from tracetui.app.app import TraceApp
    from tracetui.app.session import Analyses

    go = threading.Event()
    real = Analyses.find_phases

    def slow(self):
        go.wait(10)
        real(self)

    monkeypatch.setattr(Analyses, "find_phases", slow)
    app = TraceApp(str(SAMPLES / "annotated.json"))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(app, pilot, analyses=True)
        await pilot.press("p", "ctrl+p")
        await until(pilot, lambda: isinstance(app.screen, CommandPalette))
        go.set()
        await until(pilot, lambda: app.analyses.phase_blocks is not None)
        await until(pilot, lambda: any("phases are ready" in n.message
                                       for n in app._notifications))
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert sum(isinstance(s, CommandPalette) for s in app.screen_stack) == 1
        await pilot.press("escape")
        await until(pilot, lambda: len(app.screen_stack) == 1)
        await pilot.press("p")  # the view the notification promised
        await until(pilot, lambda: type(app.screen).__name__ == "PhaseScreen")
        await pilot.press("escape", "q")
    assert app.return_code == 0


# ---------------------------------------------------------------- where the output goes
@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full here")
@pytest.mark.parametrize("args", [["summary", "T"], ["summary", "T", "--json"],
                                  ["summary", "DIR"], ["diff", "T", "T"], ["summary", "--rules"]],
                         ids=["text", "json", "dir", "diff", "rules"])
def test_a_full_disk_is_one_line_and_status_1(tmp_path, args):
    argv = [str(DECODE) if a == "T" else str(SAMPLES) if a == "DIR" else a for a in args]
    with open("/dev/full", "w") as full:
        p = subprocess.run([sys.executable, "-m", "tracetui", *argv], stdout=full,
                           stderr=subprocess.PIPE, timeout=120, check=False)
    err = p.stderr.decode()
    assert p.returncode == 1 and err.strip().splitlines() == [
        "tracetui: error: cannot write the output: No space left on device"], err


@pytest.mark.parametrize("args", [["summary", "T"], ["summary", "DIR"], ["summary", "T", "--csv"],
                                  ["diff", "T", "T"]], ids=["text", "dir", "csv", "diff"])
def test_a_reader_that_stops_early_is_not_an_error(tmp_path, args):
    argv = " ".join(str(DECODE) if a == "T" else str(SAMPLES) if a == "DIR" else a
                    for a in args)
    p = subprocess.run(["bash", "-c", f"set -o pipefail; {sys.executable} -m tracetui {argv}"
                        " | head -1 > /dev/null"], capture_output=True, timeout=120, check=False)
    assert p.returncode == 0, p.stderr  # the README's promise: `| head` exits 0
    assert p.stderr == b""


def test_a_closed_stderr_is_no_internal_error_and_nothing_lands_on_stdout(tmp_path):
    p = subprocess.run(["bash", "-c", f"{sys.executable} -m tracetui summary nope.json 2>&-"],
                       capture_output=True, cwd=tmp_path, timeout=60, check=False)
    assert p.returncode == 2 and p.stdout == b""  # the error had nowhere to go: not stdout
    p = subprocess.run(["bash", "-c", f"{sys.executable} -m tracetui summary {DECODE} 2>&-"],
                       capture_output=True, timeout=60, check=False)
    assert p.returncode == 0 and p.stdout.startswith(b"trace ")


@pytest.mark.parametrize("args, says", [
    (["--phases", "--phase-groups", "("], "argument --phase-groups: bad regex '('"),
    (["--top", "-5"], "argument --top: -5 is negative"),
    (["--level", "-3"], "argument --level: -3 is not a depth"),
    (["--comm", "("], "bad regex '('"),
])
def test_bad_option_values_are_refused_with_a_reason(tmp_path, args, says):
    p = _cli(["summary", str(DECODE), *args], tmp_path)
    err = p.stderr.decode()
    assert p.returncode == 2 and says in err and "internal error" not in err, err
    assert p.stdout == b""


# ---------------------------------------------------------------- one huge string
def _one_string_trace(path: Path, mb: int, tail_events: int = 3) -> Path:
    with open(path, "w") as f:
        f.write('{"traceEvents":[{"ph":"X","name":"')
        chunk = "ab" * (1 << 19)
        for _ in range(mb):
            f.write(chunk)
        f.write('","cat":"cpu_op","pid":1,"tid":1,"ts":1,"dur":1}')
        for i in range(tail_events):
            f.write(f',{{"ph":"X","name":"after{i}","cat":"cpu_op","pid":1,"tid":1,'
                    f'"ts":{3 + i},"dur":1,"args":{{"k":{i}}}}}')
        f.write("]}")
    return path


def test_a_huge_name_is_read_as_one_piece_and_kept_cut(tmp_path):
    """A 96 MB name (past the 64 MB a piece may take before ijson takes over): read on in
    doubling steps to the event's end, never streamed by ijson (whose time grows faster
    than the string: 800 MB took 41 s); kept cut to MAX_NAME, with its length, and said."""
    from tracetui.trace.loader import Loader
    from tracetui.trace.pieces import KIND_IJSON, MAX_PIECE
    from tracetui.trace.strings import MAX_NAME

    mb = MAX_PIECE // (1 << 20) + 32
    loader = Loader(str(_one_string_trace(tmp_path / "one.json", mb)))
    tr = loader.run()
    assert tr.events == 4
    assert all(kind != KIND_IJSON for kind, _, _ in loader.pieces.pieces)
    name = tr.name_of(int(np_argmin_start(tr)))
    assert len(name) == MAX_NAME and name.startswith("abab")
    assert name.endswith(f"(cut: {mb << 20:,} characters in all)")
    assert any("1 names longer than 64 K characters" in w for w in tr.warnings)
    # the events after it are whole, args too (re-read from their piece)
    last = tr.events - 1
    assert tr.name_of(last) == "after2" and tr.detail(last)["args"] == {"k": 2}


def np_argmin_start(tr) -> int:
    import numpy as np

    return int(np.argmin(tr.start))


def test_names_are_cut_once_when_first_seen_in_every_table():
    from tracetui.trace.strings import MAX_NAME, StringTable, cut_name

    st = StringTable()
    huge = "x" * (MAX_NAME + 1)
    a, b = st.intern(huge), st.intern(huge)
    assert a == b and st.strings[a] == cut_name(huge) and len(st.strings[a]) == MAX_NAME
    assert st.cut == 2 and huge not in st._ids  # the whole name is not kept alive as a key
    assert st.intern(st.strings[a]) == a and st.cut == 2  # a cut name is not cut again
    ok = "y" * MAX_NAME
    assert st.strings[st.intern(ok)] == ok


# ---------------------------------------------------------------- what the user is told
def _warnings_of(tmp: Path, text: str) -> dict:
    path = tmp / "t.json"
    path.write_text(text)
    p = _cli(["summary", str(path), "--json"], tmp)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


@pytest.mark.parametrize("wrap", ['{{"traceEvents":[{0},]}}', "[{0},]",
                                  '{{"traceEvents":[{0} , \n ] \n}}\n'],
                         ids=["object", "array", "spaced"])
def test_a_trailing_comma_is_not_a_truncated_file(tmp_path, wrap):
    events = ",".join(json.dumps(_x(ts=i)) for i in range(3))
    r = _warnings_of(tmp_path, wrap.format(events))
    assert r["events"] == 3 and r["truncated"] is False
    assert r["warnings"] == ["a comma before the events' closing ] (not valid JSON) was "
                             "ignored: every event was read"]


def test_a_second_traceevents_array_is_said_not_silently_dropped(tmp_path):
    first = json.dumps([_x(name="a")])
    second = json.dumps([_x(name="b"), _x(name="c", ts=2)])
    r = _warnings_of(tmp_path, f'{{"traceEvents":{first},"traceEvents":{second}}}')
    assert r["events"] == 1
    assert any("traceEvents appears twice" in w and "(2 events" in w for w in r["warnings"])
    assert "traceEvents" not in json.dumps(r.get("header", {}))  # not kept in the header


def test_diff_of_stdin_names_stdin_not_its_temporary_copy(tmp_path):
    p = subprocess.run([sys.executable, "-m", "tracetui", "diff", "-", str(DECODE)],
                       input=DECODE.read_bytes(), capture_output=True, timeout=120,
                       env={**os.environ, "TMPDIR": str(tmp_path)}, check=False)
    assert p.returncode == 0, p.stderr
    first = p.stdout.decode().splitlines()[0]
    assert first.split()[:2] == ["base", "stdin"] and "tracetui-pipe" not in p.stdout.decode()


# ---------------------------------------------------------------- per-name work
def _elide_by_characters(s: str, keep_first: bool) -> str:
    """The template elision as it was written first: one character at a time (reference)."""
    out: list[str] = []
    depth = 0
    for ch in s:
        if ch == "<":
            if depth == 0 and not keep_first:
                out.append("<…>")
            elif depth == 0:
                out.append("<")
            elif depth == 1 and keep_first:
                out.append("<…>")
            depth += 1
        elif ch == ">" and depth:
            depth -= 1
            if depth == 0 and keep_first:
                out.append(">")
        elif depth == 0 or (keep_first and depth == 1):
            out.append(ch)
    return "".join(out).strip()


@settings(max_examples=3000, deadline=None)
@given(st.text(alphabet="<>a b,:()", max_size=30), st.booleans())
def test_template_elision_by_brackets_is_the_character_walk(s, keep_first):
    from tracetui.analysis.kernels import _elide_templates

    assert _elide_templates(s, keep_first) == _elide_by_characters(s, keep_first)


def test_display_names_number_only_what_still_collides():
    from tracetui.analysis.kernels import display_names

    names = ["void k<1>(int)", "void k<2>(int)", "void k<2>(float)", "void k<2>(int )",
             "void other(int)"]
    got = display_names(names)
    # k<1> and k<2> read apart with their arguments; the three k<2> overloads are numbered
    assert got == ["k<1>", "k<2> #1", "k<2> #2", "k<2> #3", "other"]


# ---------------------------------------------------------------- args off the UI thread
def test_only_streamed_pieces_are_costly_to_re_read(tmp_path):
    from tracetui.trace.pieces import KIND_ARRAY, KIND_IJSON, KIND_TAIL, PieceTable
    from tracetui.trace.source import Source

    path = tmp_path / "t.json"
    path.write_text("[]")
    table = PieceTable(Source(str(path), 2, False), exact=False)
    table.add(0, KIND_ARRAY, 1, 100)
    table.add(10, KIND_ARRAY, 101, 100)
    table.add(20, KIND_IJSON, 201, -1)  # the rest of a damaged file, streamed
    table.add(30, KIND_TAIL, 5000, 10)
    assert [table.costly(r) for r in (0, 9, 10, 19, 20, 29, 30, 40)] == \
        [False, False, False, False, True, True, False, False]


async def test_args_that_take_seconds_to_read_never_freeze_the_app(monkeypatch):
    """A slice whose args are streamed from far back in the file: the detail pane shows
    everything else at once and 'reading them from the file…', keys answer meanwhile, and
    the args appear when the worker has read them (unless the selection moved on)."""
    import threading

    from conftest import loaded, until

    from tracetui.app.app import TraceApp
    from tracetui.trace.model import Trace

    release = threading.Event()
    real = Trace.args_of

    def slow(self, i):
        release.wait(10)
        return real(self, i)

    monkeypatch.setattr(Trace, "args_costly", lambda self, i: True)
    monkeypatch.setattr(Trace, "args_of", slow)
    app = TraceApp(str(SAMPLES / "annotated.json"))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(app, pilot)
        tl = app.timeline
        await pilot.press("full_stop")  # select a slice: its args are "slow"
        await until(pilot, lambda: tl.selected >= 0)
        row = tl.selected
        pane = app.query_one("#detail")
        await until(pilot, lambda: "reading them from the file" in app._detail_slice.plain)
        span = tl.t1 - tl.t0
        await pilot.press("w")  # the UI answers while the args are read
        await until(pilot, lambda: tl.t1 - tl.t0 < span)
        release.set()
        want = real(app.trace, row)
        await until(pilot, lambda: "reading them" not in app._detail_slice.plain)
        if want:
            first = next(iter(want))
            assert first in app._detail_slice.plain
        assert pane is app.query_one("#detail")
        await pilot.press("q")
    assert app.return_code == 0


async def test_quitting_during_a_load_stops_the_load(monkeypatch):
    """q while a large file is still loading: the app closes and its load thread stops at
    its next piece (it used to read the rest of the file, at 100 % CPU, with the screen
    already restored and the shell still waiting)."""
    import threading
    import time

    from tracetui.app.app import TraceApp
    from tracetui.trace.loader import Loader

    real = Loader._read_block
    readers: list[threading.Thread] = []
    go = threading.Event()

    def slow(self, stream, n):  # 4 KB at a time, held until the app has quit
        readers.append(threading.current_thread())
        go.wait(10)
        time.sleep(0.01)
        return real(self, stream, min(n, 4096))

    monkeypatch.setattr(Loader, "_read_block", slow)
    app = TraceApp(str(SAMPLES / "annotated.json"))
    async with app.run_test(size=(120, 40)) as pilot:
        while not readers:
            await pilot.pause(0.02)
        assert not app.loaded
        await pilot.press("q")
    assert app.return_code == 0
    n = len(readers)
    go.set()  # the reads may go on now: 10 ms each
    time.sleep(0.5)  # fifty more reads, were the load going on
    assert len(readers) <= n + 1  # (one in flight)
    assert not app.loaded and app.loader is not None and app.loader._cancel.is_set()


def test_a_config_that_is_not_utf8_is_one_line(tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_bytes(b'[classify]\ncomm = ["\xff\xfe"]\n')
    p = _cli(["summary", str(DECODE), "--config", str(cfg)], tmp_path)
    err = p.stderr.decode()
    assert p.returncode == 2 and "cannot read the config" in err and "internal" not in err
    assert err.count("\n") == 1


def test_a_multi_member_gzip_is_estimated_by_its_ratio_and_loaded_in_parallel(tmp_path):
    """bgzip and concatenated .gz files: the trailer gives only the last member's size, so
    the estimate was a few hundred KB and no worker ever started."""
    import gzip

    import numpy as np

    from tracetui.trace.loader import Loader
    from tracetui.trace.source import Source

    evs = [{"ph": "X", "name": f"k{i % 97}", "cat": "kernel", "pid": 0, "tid": 7 + i % 3,
            "ts": i * 2, "dur": 1, "args": {"device": 0, "stream": 7 + i % 3,
                                            "correlation": i}} for i in range(120_000)]
    text = json.dumps({"traceEvents": evs}).encode()
    assert len(text) > 12 << 20
    multi = tmp_path / "multi.json.gz"
    with open(multi, "wb") as f:
        for i in range(0, len(text), 1 << 20):  # 1 MB members, as bgzip writes 64 KB ones
            f.write(gzip.compress(text[i:i + (1 << 20)], 1))
    est = Source.open(str(multi)).json_size_estimate()
    assert 0.7 * len(text) < est < 1.4 * len(text), (est, len(text))
    plain = tmp_path / "plain.json"
    plain.write_bytes(text)
    one = Loader(str(plain), workers=1).run()
    ld = Loader(str(multi), workers=2, parallel_min=4 << 20)
    tr = ld.run()
    assert ld.ranges == 2 and tr.events == one.events and not tr.truncated
    assert np.array_equal(tr.start, one.start) and np.array_equal(tr.name, one.name)
