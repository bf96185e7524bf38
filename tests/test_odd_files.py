"""Odd files (issue 7): pipes and stdin, files that grow, shrink or are replaced while or
after they are read, permission denied, a gzip file with a plain name, a trace without events.

Each test checks what the user is told as well as what is loaded.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tracetui.cli import main
from tracetui.trace import TraceError, load
from tracetui.trace.loader import Loader
from tracetui.trace.source import Source

SAMPLES = Path(__file__).resolve().parent.parent / "sample_traces"
DECODE = SAMPLES / "annotated.json"
TEXT = DECODE.read_bytes()


def _run_cli(args: list[str], stdin: bytes | None, tmpdir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "TMPDIR": str(tmpdir)}
    return subprocess.run([sys.executable, "-m", "tracetui", *args], input=stdin,
                          capture_output=True, env=env, timeout=120, check=False)


# ----------------------------------------------------------------------------- pipes, stdin

@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_summary_reads_a_trace_from_stdin(tmp_path, gz):
    spool = tmp_path / "spool"
    spool.mkdir()
    p = _run_cli(["summary", "-", "--json"], gzip.compress(TEXT, 1) if gz else TEXT, spool)
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)
    want = json.loads(_run_cli(["summary", str(DECODE), "--json"], None, spool).stdout)
    assert got["file"] == "stdin"
    for key in ("events", "slices", "kernels", "overlap", "annotations"):
        assert got[key] == want[key], key
    assert list(spool.iterdir()) == []  # the temporary copy is gone at exit


def test_the_timeline_command_without_a_terminal_reads_stdin_too(tmp_path):
    p = _run_cli(["-"], TEXT, tmp_path)
    assert p.returncode == 0
    assert b"trace  stdin" in p.stdout and b"5,552 events" in p.stdout


@pytest.mark.parametrize("data, message", [
    (b"", "stdin: nothing came through the pipe"),
    (b"hello\n", "stdin: not a JSON trace"),
])
def test_bad_stdin_is_one_line_naming_stdin(tmp_path, data, message):
    p = _run_cli(["summary", "-"], data, tmp_path)
    assert p.returncode == 2
    lines = p.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tracetui: error: " + message), p.stderr
    assert "tracetui-pipe" not in p.stderr.decode()  # never the temporary file's name
    assert list(tmp_path.iterdir()) == []


def test_a_named_pipe_is_read_through_a_temporary_copy(tmp_path, capsys):
    fifo = tmp_path / "trace.fifo"
    os.mkfifo(fifo)

    def write() -> None:
        with open(fifo, "wb") as f:
            f.write(gzip.compress(TEXT, 1))

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    assert main(["summary", str(fifo), "--json"]) == 0
    writer.join(10)
    got = json.loads(capsys.readouterr().out)
    assert got["file"] == str(fifo) and got["events"] == load(str(DECODE)).events


def test_the_library_refuses_a_pipe_with_a_reason(tmp_path):
    fifo = tmp_path / "p"
    os.mkfifo(fifo)
    with pytest.raises(TraceError, match="is a pipe"):
        Source.open(str(fifo))  # does not block: nothing is opened


# ----------------------------------------------------------------------------- changing files

def _load_changing(path: Path, change, workers: int) -> object:
    """Load ``path`` with ``change()`` run at the loader's first progress report (mid-load)."""
    done = []

    def progress(_p) -> None:
        if not done:
            done.append(1)
            change()

    tr = Loader(str(path), progress=progress, progress_interval=0, piece_bytes=64 << 10,
                workers=workers, parallel_min=0).run()
    assert done
    return tr


@pytest.mark.parametrize("workers", [1, 2])
def test_a_file_still_being_written_is_read_to_its_size_at_open_and_said_so(tmp_path,
                                                                            workers):
    """A writer that never stops must not keep the load going (a 106 MB file was read to
    1.5 GB, its progress pinned at 100 %): what is read is the file as it was opened, with
    one warning; parallel workers get the same bound."""
    path = tmp_path / "growing.json"
    half = TEXT.rfind(b"\n", 0, len(TEXT) // 2) + 1
    path.write_bytes(TEXT[:half])
    (tmp_path / "first_half.json").write_bytes(TEXT[:half])

    def append() -> None:
        with open(path, "ab") as f:
            f.write(TEXT[half:])

    tr = _load_changing(path, append, workers)
    as_opened = load(str(tmp_path / "first_half.json"))  # the same bytes, never grown
    assert tr.events == as_opened.events < load(str(DECODE)).events and tr.truncated
    assert any(w.startswith("the file grew from") and f"only its first {half:,} bytes" in w
               for w in tr.warnings), tr.warnings
    # a writer appends: the offsets still hold, the args can be re-read
    i = next(i for i in range(tr.slice_count) if tr.detail(i)["args"])
    assert "args_unavailable" not in tr.detail(i)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_file_that_shrinks_while_read_keeps_what_was_whole(tmp_path, workers):
    path = tmp_path / "shrinking.json"
    path.write_bytes(TEXT)
    cut = len(TEXT) // 3

    def shrink() -> None:
        with open(path, "r+b") as f:
            f.truncate(cut)

    tr = _load_changing(path, shrink, workers)
    ref_path = tmp_path / "cut.json"
    ref_path.write_bytes(TEXT[:cut])
    ref = load(str(ref_path))
    assert tr.truncated and tr.events == ref.events
    assert any("shrank from 1.2 MB to 0.4 MB while it was read" in w for w in tr.warnings)
    assert any("still being written" in w for w in tr.warnings)
    # where it stopped, and the size it had when opened (not "byte N of N")
    cut_line = next(w for w in tr.warnings if w.startswith("truncated at byte"))
    assert f"(it had {len(TEXT):,} bytes when opened)" in cut_line, tr.warnings


def test_events_are_not_reread_from_a_file_replaced_after_the_load(tmp_path):
    path = tmp_path / "t.json"
    path.write_bytes(TEXT)
    tr = load(str(path))
    i = next(i for i in range(tr.slice_count) if tr.detail(i)["args"])
    args = tr.detail(i)["args"]
    with open(path, "ab") as f:  # appended to: still the same events at the same offsets
        f.write(b"\n")
    tr.pieces._cache = None
    assert tr.detail(i)["args"] == args
    other = tmp_path / "other.json"
    other.write_bytes(TEXT.replace(b'"args"', b'"argz"'))
    os.replace(other, path)  # another trace under the same name: offsets mean nothing
    tr.pieces._cache = None
    d = tr.detail(i)
    assert d["args"] is None and "replaced by another file" in d["args_unavailable"]
    path.write_bytes(TEXT[:1000])  # shrunk in place
    assert "shrank" in tr.detail(i)["args_unavailable"] or \
        "replaced" in tr.detail(i)["args_unavailable"]
    path.unlink()
    assert "deleted" in tr.detail(i)["args_unavailable"]


def test_a_cut_off_file_says_whether_it_may_still_be_written(tmp_path):
    path = tmp_path / "cut.json"
    path.write_bytes(TEXT[: len(TEXT) // 2])
    fresh = load(str(path))
    assert any("still being written?" in w for w in fresh.warnings), fresh.warnings
    hour_ago = time.time() - 3600
    os.utime(path, (hour_ago, hour_ago))
    old = load(str(path))
    assert any("the writer was probably killed" in w for w in old.warnings), old.warnings
    assert not any("still being written" in w for w in old.warnings)


# ----------------------------------------------------------------------------- other odd files

def test_permission_denied_is_one_line(tmp_path, monkeypatch, capsys):
    path = tmp_path / "secret.json"
    path.write_bytes(TEXT)
    if os.geteuid() != 0:
        path.chmod(0)
    else:  # root reads anything: make the open fail as it would for anyone else
        import builtins

        real_open = builtins.open

        def deny(file, *a, **k):
            if os.fspath(file) == str(path):
                raise PermissionError(13, "Permission denied")
            return real_open(file, *a, **k)

        monkeypatch.setattr(builtins, "open", deny)
    assert main(["summary", str(path)]) == 2
    err = capsys.readouterr().err
    assert err == f"tracetui: error: {path}: permission denied\n"


# (mtime=0 and ids: a gzip header holds the time it was made, and the two test processes
# must collect the same tests)
@pytest.mark.parametrize("name, data", [
    ("plain.json", gzip.compress(TEXT, 1, mtime=0)),   # gzip with a plain name
    ("looks.json.gz", TEXT),                           # plain text with a gzip name
    ("noext", gzip.compress(TEXT, 1, mtime=0)),
], ids=["gzip-named-json", "text-named-gz", "gzip-no-extension"])
def test_the_bytes_decide_not_the_name(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    tr = load(str(path))
    assert tr.events == load(str(DECODE)).events and tr.warnings == []


@pytest.mark.parametrize("text", [b'{"traceEvents": []}',
                                  b'{"traceEvents": [{"ph": "M", "name": "process_name", '
                                  b'"pid": 1, "args": {"name": "x"}}]}'])
def test_a_trace_without_events_says_so(tmp_path, capsys, text):
    path = tmp_path / "none.json"
    path.write_bytes(text)
    assert main(["summary", str(path)]) == 0
    out = capsys.readouterr().out
    assert "no events to analyse: the trace holds no events" in out
    assert "kernels" not in out  # no empty tables


async def test_the_timeline_of_a_trace_without_events_says_so(tmp_path):
    from tracetui.app.app import TraceApp

    path = tmp_path / "none.json"
    path.write_bytes(b'{"traceEvents": []}')
    app = TraceApp(str(path))
    async with app.run_test(size=(80, 24)) as pilot:
        for _ in range(100):
            await pilot.pause(0.05)
            if app.loaded:
                break
        await pilot.pause()
        tl = app.query_one("#timeline")
        lines = ["".join(seg.text for seg in tl.render_line(y)) for y in range(4)]
        assert any("this trace holds no events" in ln for ln in lines), lines
        for key in ("k", "escape", "o", "escape", "question_mark", "escape"):
            await pilot.press(key)  # the views open on nothing without failing
        await pilot.pause()
        assert app.error is None


# ----------------------------------------------------------------------------- nothing lost

_WRITERS = {"write_text", "write_bytes", "replace", "rename", "renames", "link", "symlink",
            "mkstemp", "NamedTemporaryFile", "TemporaryFile", "copy", "copy2", "copyfile",
            "move", "truncate", "unlink", "remove", "rmtree"}
_PATH_WRITERS = {"write_text", "write_bytes", "unlink", "touch", "rename", "symlink_to",
                 "hardlink_to", "rmdir"}
#: where the package may write or remove files, and why
_ALLOWED = {
    ("export.py", "write_new"),          # temp file + fsync + link: never over a file, never half
    ("trace/source.py", "spool"),        # a pipe's copy in TMPDIR (its own new name)
    ("trace/source.py", "_remove"),      # ... removed at exit
    ("cli/main.py", "_keys_from_tty"),        # opens /dev/tty to read keys (O_RDWR, writes nothing)
    ("cli/main.py", "main"),                  # stdout to /dev/null after a broken pipe
    ("output.py", "usable_streams"),     # a closed stdout/stderr becomes /dev/null
    ("job/many.py", "_init"),                # a report worker's stdout (under the app, stderr) to /dev/null
    ("job/many.py", "_start_tracker"),       # the resource tracker's stderr, /dev/null if none is real
}


def _file_writes() -> set[tuple[str, str]]:
    """(module, function) of every call in the package that can create, change or remove a
    file: open() with a writing mode, os.open, os.fdopen for writing, and _WRITERS."""
    import ast

    pkg = Path(__file__).resolve().parent.parent / "tracetui"
    found: set[tuple[str, str]] = set()
    for path in pkg.rglob("*.py"):
        rel = path.relative_to(pkg).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"))

        def visit(node: ast.AST, func: str) -> None:
            for child in ast.iter_child_nodes(node):
                name = func
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    name = child.name
                if isinstance(child, ast.Call):
                    f = child.func
                    attr = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
                    base = f.value.id if isinstance(f, ast.Attribute) and \
                        isinstance(f.value, ast.Name) else ""
                    modes = [a.value for a in child.args[1:2] + [k.value for k in child.keywords
                                                                 if k.arg == "mode"]
                             if isinstance(a, ast.Constant) and isinstance(a.value, str)]
                    writing = any(set(m) & set("wax+") for m in modes)
                    bare = isinstance(f, ast.Name)
                    if (attr in ("open", "fdopen") and (writing or base == "os" and attr == "open")) \
                            or (attr in _WRITERS and (base in ("os", "shutil", "tempfile") or bare)) \
                            or (not bare and attr in _PATH_WRITERS):
                        found.add((rel, func))
                visit(child, name)

        visit(tree, "<module>")
    return found


def test_files_are_written_in_one_place_only():
    """Nothing lost: the package writes files only through write_new (exports) and the pipe
    spool. A new writer must go through write_new, or be added here with its reason."""
    found = _file_writes()
    assert found <= _ALLOWED, sorted(found - _ALLOWED)
    assert ("export.py", "write_new") in found and ("trace/source.py", "spool") in found


def test_a_failed_export_leaves_nothing_and_clobbers_nothing(tmp_path, monkeypatch):
    from tracetui.export import write_new

    keep = tmp_path / "out.csv"
    keep.write_text("precious")
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(28, "No space")))
    with pytest.raises(OSError):
        write_new(tmp_path, "out.csv", "x" * 100_000)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]
    assert keep.read_text() == "precious"


async def test_the_warnings_stay_readable_in_help(tmp_path):
    """A cut-off trace: the status line says so for good, and `?` lists the warnings (the
    notifications that first show them go away after a few seconds)."""
    from textual.widgets import Static

    from tracetui.app.app import HelpScreen, TraceApp

    path = tmp_path / "cut.json"
    path.write_bytes(TEXT[: len(TEXT) // 2])
    app = TraceApp(str(path))
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(200):
            await pilot.pause(0.05)
            if app.loaded:
                break
        status = str(app.query_one("#status", Static).render())
        assert "⚠ truncated file: ? shows" in status, status
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        shown = str(app.screen.query_one(Static).render())
        assert "this trace" in shown
        for w in app.trace.warnings:
            assert w[:60] in shown, w


def test_a_piped_trace_opens_the_timeline_with_keys_from_the_terminal(tmp_path):
    """`zcat t.json.gz | tracetui -` in a terminal: the timeline, named stdin, answering keys
    read from /dev/tty (as `less` does); no temporary file left."""
    from ptyterm import PtyApp

    gz = tmp_path / "t.json.gz"
    gz.write_bytes(gzip.compress(TEXT, 1))
    spool = tmp_path / "spool"
    spool.mkdir()
    app = PtyApp([], cols=100, rows=30, env={"TMPDIR": str(spool)},
                 shell=f"gzip -dc '{gz}' | {{tracetui}} -")
    assert app.wait_for("stream 7"), app.text()[-2000:]
    assert "stdin · 1.2 MB" in app.text()
    app.keys("k")
    assert app.wait_for("kernels by full name"), app.text()[-2000:]
    app.keys(b"\x1b", "q")
    assert app.finish() == 0, app.text()[-2000:]
    assert list(spool.iterdir()) == []


def test_stdin_from_the_terminal_itself_is_refused(tmp_path):
    from ptyterm import PtyApp

    app = PtyApp(["summary", "-"], cols=100, rows=30)
    assert app.finish() == 2
    assert "stdin is a terminal: pipe a trace into it" in app.text()
