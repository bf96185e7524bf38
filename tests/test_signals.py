"""One signal policy (issue 20): SIGINT, SIGTERM and SIGHUP stop the worker processes, remove
the pipe's temporary copy, give the terminal back and exit 128+N, whatever tracetui was doing
(reading stdin, `summary DIR` with its pool, the app); and the reads that had no bound: a pipe
that never ends (a cap on its copy), a file that grows while it is read (the size it had when
opened), a FIFO nobody writes to (it says so instead of hanging in silence).

Every process tracetui starts inherits a marker in its environment; a process "left" is one
whose environment still holds it, found in /proc, so that an orphan (its parent gone, adopted
by init) is found too.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_traces" / "annotated.json"
TEXT = SAMPLE.read_bytes()
EXIT_WITHIN_S = 2.0

pytestmark = [
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals"),
    pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc to find processes"),
]


def _env(tmp: Path) -> tuple[dict[str, str], str, Path]:
    """(env, marker, private TMPDIR) for one tracetui run."""
    spool = tmp / "spool"
    spool.mkdir(exist_ok=True)
    marker = f"TRACETUI_TEST_MARK={uuid.uuid4().hex}"
    # two worker processes whatever the cores here: a load of a big file starts one
    env = {**os.environ, "TMPDIR": str(spool), marker.split("=")[0]: marker.split("=")[1],
           "TRACETUI_WORKERS": "2"}
    return env, marker, spool


def _marked(marker: str) -> list[int]:
    """Live processes (zombies aside) whose environment holds ``marker``."""
    found, needle = [], marker.encode() + b"\0"
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                env = f.read() + b"\0"
            with open(f"/proc/{name}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if b"\0" + needle in b"\0" + env and state != b"Z":
            found.append(int(name))
    return found


def _none_left(marker: str, within: float = EXIT_WITHIN_S) -> list[int]:
    """The marked processes still alive ``within`` seconds from now (at once if none)."""
    end = time.monotonic() + within
    while True:
        left = _marked(marker)
        if not left or time.monotonic() > end:
            return left
        time.sleep(0.05)


def _kill_marked(marker: str) -> None:
    for pid in _marked(marker):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def _wait_until(cond, timeout: float, step: float = 0.02) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    return cond()


def _tracetui(args: list[str], env: dict[str, str], **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tracetui", *args], env=env, **kw)


def _err_file(tmp: Path):
    """stderr in a file, not a pipe: an orphaned worker would hold a pipe open forever."""
    return open(tmp / "stderr.txt", "w+b")


def _err_text(f) -> str:
    f.seek(0)
    return f.read().decode("utf-8", "replace")


def _stop(proc: subprocess.Popen, sig: int) -> tuple[int, float]:
    """Send ``sig``; (exit status, seconds until the process had exited)."""
    t0 = time.monotonic()
    proc.send_signal(sig)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return proc.returncode, 10.0
    return proc.returncode, time.monotonic() - t0


@pytest.fixture(scope="module")
def big_trace(tmp_path_factory) -> Path:
    """A trace that takes a second or more to load here (bench/make_big.py, ~60 MB: above
    the size at which a load starts worker processes)."""
    out = tmp_path_factory.mktemp("big") / "big.json"
    p = subprocess.run([sys.executable, str(ROOT / "bench" / "make_big.py"), "--mb", "60",
                        str(out)], capture_output=True, timeout=120, check=False)
    if p.returncode != 0:
        pytest.skip(f"bench/make_big.py failed: {p.stderr.decode()[-300:]}")
    return out


# ----------------------------------------------------------------------------- stdin

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["TERM", "HUP"])
def test_a_signal_while_stdin_is_copied_removes_the_copy_and_exits_128_plus_n(tmp_path, sig):
    env, marker, spool = _env(tmp_path)
    err_f = _err_file(tmp_path)
    proc = _tracetui(["summary", "-"], env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                     stderr=err_f)
    try:
        proc.stdin.write(TEXT[: len(TEXT) // 2])  # a slow writer: half now, the rest never
        proc.stdin.flush()
        assert _wait_until(lambda: any(p.stat().st_size > 0 for p in spool.iterdir()), 20), \
            "the copy of stdin never started"
        rc, took = _stop(proc, sig)
        err = _err_text(err_f)
        assert rc == 128 + sig, (rc, err)
        assert took < EXIT_WITHIN_S, took
        assert list(spool.iterdir()) == []  # no tracetui-pipe-*.json left
        assert _none_left(marker) == []
        assert err.strip().splitlines()[-1].startswith("tracetui: "), err
    finally:
        proc.kill()
        proc.wait()
        _kill_marked(marker)


# ----------------------------------------------------------------------------- summary DIR

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT],
                         ids=["TERM", "HUP", "INT"])
def test_a_signal_to_summary_of_a_directory_stops_its_workers_at_once(tmp_path, big_trace, sig):
    """Its pool's processes are killed, not orphaned (TERM, HUP) nor waited for until every
    file is read (INT)."""
    env, marker, _ = _env(tmp_path)
    ranks = tmp_path / "ranks"
    ranks.mkdir()
    for i in range(16):  # 16 links to 60 MB: seconds of work for any pool
        os.link(big_trace, ranks / f"rank-{i}.json")
    err_f = _err_file(tmp_path)
    proc = _tracetui(["summary", str(ranks)], env, stdout=subprocess.DEVNULL, stderr=err_f)
    try:
        # the pool's processes are up (more than the main process) and at work
        assert _wait_until(lambda: len(_marked(marker)) >= 3, 20), _marked(marker)
        time.sleep(0.5)
        assert proc.poll() is None, "done before the signal: the test needs bigger files"
        rc, took = _stop(proc, sig)
        err = _err_text(err_f)
        assert rc == 128 + sig, (rc, err)
        assert took < EXIT_WITHIN_S, took
        assert _none_left(marker) == [], "worker processes left behind"
    finally:
        proc.kill()
        proc.wait()
        _kill_marked(marker)


def test_an_error_while_reports_are_made_kills_the_pool_at_once(big_trace, tmp_path,
                                                                 monkeypatch):
    """In the library too (no signal policy: a KeyboardInterrupt in a test, an error in the
    progress callback): leaving the pool does not wait until every file is read."""
    from tracetui.analysis.rules import load_rules
    from tracetui.job.many import reports

    _, marker, _ = _env(tmp_path)
    monkeypatch.setenv(*marker.split("="))  # the pool's processes have it, this one not
    paths = []
    for i in range(8):
        paths.append(str(tmp_path / f"rank-{i}.json"))
        os.link(big_trace, paths[-1])

    raised: list[float] = []

    def progress(done: int, total: int, files: int) -> None:
        if done > 0:  # the workers are at work
            raised.append(time.monotonic())
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        reports(paths, load_rules(config=os.devnull), processes=2, progress=progress)
    took = time.monotonic() - raised[0]

    def pool_left() -> list[int]:
        """multiprocessing's resource tracker aside: it serves this process till its end."""
        left = []
        for pid in _marked(marker):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if b"resource_tracker" not in f.read():
                        left.append(pid)
            except OSError:
                pass
        return left

    try:
        assert took < 1.0, took  # not until the 8 files are read (seconds)
        assert _wait_until(lambda: not pool_left(), EXIT_WITHIN_S), pool_left()
    finally:
        for pid in pool_left():
            os.kill(pid, signal.SIGKILL)


def test_a_signal_ignored_at_start_stays_ignored(tmp_path):
    """`nohup tracetui …` ignores SIGHUP: so does the policy."""
    env, marker, spool = _env(tmp_path)
    proc = _tracetui(["summary", "-", "--json"], env, stdin=subprocess.PIPE,
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                     preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
    try:
        proc.stdin.write(TEXT[: len(TEXT) // 2])
        proc.stdin.flush()
        assert _wait_until(lambda: any(p.stat().st_size > 0 for p in spool.iterdir()), 20)
        proc.send_signal(signal.SIGHUP)
        time.sleep(0.3)
        assert proc.poll() is None
        out, err = proc.communicate(TEXT[len(TEXT) // 2:], timeout=60)
        assert proc.returncode == 0, err
        assert json.loads(out)["events"] > 0
    finally:
        proc.kill()
        proc.wait()
        _kill_marked(marker)


def test_the_policy_imports_no_ui_library():
    code = ("import sys, tracetui.signals; "
            "print(sorted(m for m in ('textual', 'rich') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert out.strip() == "[]"


# ----------------------------------------------------------------------------- the app

def _last(data: bytes, *seqs: bytes) -> bytes | None:
    """Which of ``seqs`` comes last in ``data``."""
    at = {s: data.rfind(s) for s in seqs}
    best = max(at, key=at.get)
    return best if at[best] >= 0 else None


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["TERM", "HUP"])
def test_a_signal_to_the_app_gives_the_terminal_back(tmp_path, big_trace, sig):
    """While the app loads (its worker processes at work): the screen it leaves is the
    terminal's own again (alternate screen left, cursor shown, mouse reporting off)."""
    from ptyterm import PtyApp

    env, marker, spool = _env(tmp_path)
    app = PtyApp([str(big_trace)], cols=100, rows=30,
                 env={k: env[k] for k in ("TMPDIR", "TRACETUI_WORKERS", marker.split("=")[0])})
    try:
        assert _wait_until(lambda: (app.pump(0.02), b"\x1b[?1049h" in app.out)[1], 20), \
            app.text()[-2000:]
        # a worker process at work too, as a rule (the load may already be over: fine)
        _wait_until(lambda: (app.pump(0.01), len(_marked(marker)) >= 2)[1], 3, step=0)
        t0 = time.monotonic()
        os.kill(app.proc.pid, sig)
        while app.proc.poll() is None and time.monotonic() - t0 < 10:
            app.pump(0.02)
        took = time.monotonic() - t0
        rc = app.finish(timeout=1)
        out = bytes(app.out)
        assert rc == 128 + sig, (rc, app.text()[-500:])
        assert took < EXIT_WITHIN_S, took
        assert _last(out, b"\x1b[?1049h", b"\x1b[?1049l") == b"\x1b[?1049l", out[-300:]
        assert _last(out, b"\x1b[?25l", b"\x1b[?25h") == b"\x1b[?25h", out[-300:]
        assert _last(out, b"\x1b[?1000h", b"\x1b[?1000l") in (None, b"\x1b[?1000l"), out[-300:]
        assert _none_left(marker) == []
        assert list(spool.iterdir()) == []
    finally:
        _kill_marked(marker)


_STUCK_APP = """
import asyncio, sys
from tracetui import signals

class App:  # an app whose loop never gets to its exit (busy elsewhere)
    def exit(self, result=None, return_code=0):
        pass

    def run(self):
        asyncio.run(self.main())

    async def main(self):
        sys.stderr.write("\\x1b[?1049h\\x1b[?25l\\x1b[?1000hready\\n")
        sys.stderr.flush()
        await asyncio.sleep(30)

signals.install()
app = App()
with signals.running(app):
    app.run()
"""


@pytest.mark.parametrize("twice", [False, True], ids=["grace", "second-signal"])
def test_an_app_that_does_not_exit_is_stopped_and_the_terminal_restored(tmp_path, twice):
    """The fallback: after APP_GRACE_S, or at once on a second signal, the terminal is
    restored here and the process exits 128+N anyway."""
    from ptyterm import PtyApp

    from tracetui.signals import APP_GRACE_S

    script = tmp_path / "stuck.py"
    script.write_text(_STUCK_APP)
    app = PtyApp([], cols=80, rows=24, cwd=str(ROOT), shell=f"exec '{sys.executable}' '{script}'")
    try:
        assert app.wait_for("ready", 20), app.text()
        t0 = time.monotonic()
        os.kill(app.proc.pid, signal.SIGTERM)
        if twice:
            app.pump(0.1)
            os.kill(app.proc.pid, signal.SIGTERM)
        while app.proc.poll() is None and time.monotonic() - t0 < 10:
            app.pump(0.02)
        took = time.monotonic() - t0
        rc = app.finish(timeout=1)
        out = bytes(app.out)
        assert rc == 128 + signal.SIGTERM, (rc, out[-300:])
        if twice:
            assert took < APP_GRACE_S, took
        else:
            assert APP_GRACE_S * 0.9 < took < EXIT_WITHIN_S, took
        assert _last(out, b"\x1b[?1049h", b"\x1b[?1049l") == b"\x1b[?1049l", out[-300:]
        assert _last(out, b"\x1b[?25l", b"\x1b[?25h") == b"\x1b[?25h", out[-300:]
        assert _last(out, b"\x1b[?1000h", b"\x1b[?1000l") == b"\x1b[?1000l", out[-300:]
        assert out.rstrip().endswith(b"tracetui: terminated (SIGTERM)"), out[-300:]
    finally:
        if app.proc.poll() is None:
            app.proc.kill()


# ----------------------------------------------------------------------------- the spool's cap

def test_a_pipe_longer_than_the_cap_is_one_line_and_leaves_nothing(tmp_path):
    env, marker, spool = _env(tmp_path)
    env["TRACETUI_SPOOL_MAX"] = "200K"
    p = subprocess.run([sys.executable, "-m", "tracetui", "summary", "-"], input=TEXT,
                       capture_output=True, env=env, timeout=60, check=False)
    lines = p.stderr.decode().splitlines()
    assert p.returncode == 2, p.stderr
    assert len(lines) == 1, lines
    assert lines[0].startswith("tracetui: error: stdin: ") and "200 KiB" in lines[0], lines
    assert "TRACETUI_SPOOL_MAX" in lines[0], lines
    assert list(spool.iterdir()) == []


def test_an_endless_device_stops_at_the_cap(tmp_path):
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero")
    env, marker, spool = _env(tmp_path)
    env["TRACETUI_SPOOL_MAX"] = "8M"
    p = subprocess.run([sys.executable, "-m", "tracetui", "summary", "/dev/zero"],
                       capture_output=True, env=env, timeout=20, check=False)
    lines = p.stderr.decode().splitlines()
    assert p.returncode == 2 and len(lines) == 1 and "8 MiB" in lines[0], lines
    assert list(spool.iterdir()) == []


@pytest.mark.parametrize("value, cap", [("1048576", 1 << 20), ("64G", 64 << 30),
                                        ("1.5 GiB", 3 << 29), ("512k", 512 << 10),
                                        ("10MB", 10 << 20)])
def test_the_cap_is_read_from_the_environment(monkeypatch, value, cap):
    from tracetui.trace.source import spool_cap

    monkeypatch.setenv("TRACETUI_SPOOL_MAX", value)
    assert spool_cap("/tmp")[0] == cap


@pytest.mark.parametrize("value", ["lots", "-5", "0", "1X"])
def test_a_bad_cap_is_one_line(monkeypatch, value):
    from tracetui.trace.source import TraceError, spool_cap

    monkeypatch.setenv("TRACETUI_SPOOL_MAX", value)
    with pytest.raises(TraceError, match="TRACETUI_SPOOL_MAX"):
        spool_cap("/tmp")


def test_the_default_cap_leaves_room_in_the_temporary_directory(monkeypatch, tmp_path):
    from tracetui.trace import source

    monkeypatch.delenv("TRACETUI_SPOOL_MAX", raising=False)
    cap, why = source.spool_cap(str(tmp_path))
    st = os.statvfs(tmp_path)
    assert cap <= source.SPOOL_MAX_DEFAULT
    assert cap <= st.f_bavail * st.f_frsize  # never all of it
    assert why == "the default" if cap == source.SPOOL_MAX_DEFAULT else "free space" in why


# ----------------------------------------------------------------------------- growing files

def test_a_file_that_grows_while_read_is_read_to_its_size_when_opened(tmp_path):
    """What a writer appends after the file was opened is not read (a file written forever
    would be read forever, the progress stuck at 100 %): the trace opens truncated, with one
    warning that says so."""
    from tracetui.trace import load
    from tracetui.trace.loader import Loader

    path = tmp_path / "growing.json"
    half = TEXT.rfind(b"\n", 0, len(TEXT) // 2) + 1
    path.write_bytes(TEXT[:half])
    want = load(str(path)).events  # what the file holds when it is opened
    seen: list[int] = []
    loader = Loader(str(path), progress=lambda p: seen.append(p.bytes_done),
                    progress_interval=0, piece_bytes=64 << 10, workers=1)
    with open(path, "ab") as f:  # the writer goes on, after the open
        f.write(TEXT[half:])
    tr = loader.run()
    assert tr.events == want and tr.truncated
    grew = [w for w in tr.warnings if "grew" in w]
    assert len(grew) == 1 and f"{half:,} bytes" in grew[0], tr.warnings
    assert max(seen) <= half  # the progress never passes the size it said


def test_a_loader_given_a_size_reads_no_further(tmp_path):
    """What a worker process of a parallel load needs: the loading process's size at open."""
    from tracetui.trace.loader import Loader

    path = tmp_path / "t.json"
    half = TEXT.rfind(b"\n", 0, len(TEXT) // 2) + 1
    path.write_bytes(TEXT[:half])
    want = Loader(str(path), workers=1).run().events
    path.write_bytes(TEXT)
    tr = Loader(str(path), workers=1, size=half).run()
    assert tr.events == want and tr.truncated and tr.size == half


def test_a_growing_file_is_bounded_at_every_read(tmp_path):
    """The reader itself stops at the size at open: the loader cannot read past it."""
    from tracetui.trace.source import Source

    path = tmp_path / "t.json"
    path.write_bytes(b"[" + b" " * 1000)
    src = Source.open(str(path))
    with open(path, "ab") as f:
        f.write(b" " * 5000)
    raw, stream = src.open_stream()
    try:
        got = b""
        while block := stream.read(256):
            got += block
    finally:
        raw.close()
    assert len(got) == 1001 and raw.pos == 1001
    assert len(src.read_range(900, 5000)) == 101


# ----------------------------------------------------------------------------- FIFOs

def _read_stderr_until(proc: subprocess.Popen, needle: bytes, timeout: float) -> bytes:
    got = b""
    end = time.monotonic() + timeout
    while needle not in got and time.monotonic() < end:
        r, _, _ = select.select([proc.stderr], [], [], 0.05)
        if r:
            chunk = os.read(proc.stderr.fileno(), 4096)
            if not chunk:
                break
            got += chunk
    return got


def test_a_fifo_without_a_writer_says_so_then_reads_the_writer(tmp_path):
    env, marker, spool = _env(tmp_path)
    fifo = tmp_path / "trace.fifo"
    os.mkfifo(fifo)
    proc = _tracetui(["summary", str(fifo), "--json"], env, stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE)
    try:
        said = _read_stderr_until(proc, b"\n", 8)
        assert b"waiting for a writer on FIFO" in said and str(fifo).encode() in said, said
        assert proc.poll() is None
        with open(fifo, "wb") as f:
            f.write(TEXT)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert json.loads(out)["events"] > 0
        assert list(spool.iterdir()) == []
    finally:
        proc.kill()
        proc.wait()
        _kill_marked(marker)


def test_a_fifo_with_a_writer_says_nothing(tmp_path):
    env, marker, _ = _env(tmp_path)
    fifo = tmp_path / "trace.fifo"
    os.mkfifo(fifo)
    # the writer is there first (it blocks in its open until a reader comes)
    writer = subprocess.Popen(["/bin/sh", "-c", f"cat '{SAMPLE}' > '{fifo}'"])
    try:
        time.sleep(0.2)
        p = subprocess.run([sys.executable, "-m", "tracetui", "summary", str(fifo), "--json"],
                           capture_output=True, env=env, timeout=60, check=False)
        assert p.returncode == 0, p.stderr
        assert b"waiting" not in p.stderr
        assert json.loads(p.stdout)["events"] > 0
    finally:
        writer.kill()
        writer.wait()


def test_a_signal_while_waiting_for_a_fifo_writer_exits_128_plus_n(tmp_path):
    env, marker, spool = _env(tmp_path)
    fifo = tmp_path / "trace.fifo"
    os.mkfifo(fifo)
    proc = _tracetui(["summary", str(fifo)], env, stdout=subprocess.DEVNULL,
                     stderr=subprocess.PIPE)
    try:
        said = _read_stderr_until(proc, b"waiting for a writer", 8)
        assert b"waiting for a writer" in said, said
        rc, took = _stop(proc, signal.SIGTERM)
        assert rc == 128 + signal.SIGTERM and took < EXIT_WITHIN_S, (rc, took)
        assert list(spool.iterdir()) == [] and _none_left(marker) == []
    finally:
        proc.kill()
        proc.wait()
        _kill_marked(marker)
