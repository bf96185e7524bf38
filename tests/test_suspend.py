"""ctrl+z suspends the app to the shell as any terminal program does, and SIGCONT (the
shell's `fg`) brings it back drawn whole: the status line, the timeline and the key bar, with
no key pressed. The same for a SIGTSTP sent from outside (`kill -TSTP`)."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ptyterm import ESC, PtyApp  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_traces" / "annotated.json"

pytestmark = [
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX job control"),
    pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads /proc/PID/stat"),
]

#: generous: two cores shared with other test runs
WAIT_S = 60.0


def _state(pid: int) -> str:
    """The process's state letter in /proc ("T": stopped, "S"/"R": running)."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        return f.read().rsplit(b")", 1)[1].split()[0].decode()


def _until_state(app: PtyApp, stopped: bool, timeout: float = WAIT_S) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        app.pump(0.1)  # keep reading: a full pty would block the app's writes
        if (_state(app.proc.pid) in "Tt") == stopped:
            return True
    return False


TIMELINE = ("events", "depth", "zoom in", "kernel table")  # header, lanes, key bar


def _stop(app: PtyApp) -> None:
    """The app gone, stopped or not (a stopped process is continued first)."""
    if app.proc.poll() is None:
        os.kill(app.proc.pid, signal.SIGCONT)
        app.proc.kill()
        app.proc.wait()


def _redrawn_since(app: PtyApp, mark: int, words: tuple[str, ...] = TIMELINE,
                   timeout: float = WAIT_S) -> bool:
    """Whether ``words`` (by default the header's event count, the timeline's lane labels and
    the key bar) were all written again after byte ``mark``."""
    from ptyterm import ANSI

    def seen() -> bool:
        text = ANSI.sub(b"", bytes(app.out[mark:])).decode("utf-8", "replace")
        return all(w in text for w in words)

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        app.pump(0.1)
        if seen():
            return True
    return False


def test_ctrl_z_suspends_and_sigcont_redraws_the_whole_screen():
    app = PtyApp([str(SAMPLE)], cols=100, rows=30)
    try:
        assert app.wait_for("events", WAIT_S), app.text()[-2000:]
        assert app.wait_for("kernel table", WAIT_S), app.text()[-2000:]
        app.settle(quiet=0.5, limit=20)
        for how in ("ctrl+z", "kill -TSTP"):
            if how == "ctrl+z":
                os.write(app.master, b"\x1a")
            else:
                os.kill(app.proc.pid, signal.SIGTSTP)
            assert _until_state(app, stopped=True), f"{how}: the process did not stop"
            app.pump(0.3)
            assert "\x1b[?1049l" in bytes(app.out).decode("utf-8", "replace"), \
                f"{how}: the alternate screen was not left"
            mark = len(app.out)
            os.kill(app.proc.pid, signal.SIGCONT)  # what `fg` sends
            assert _until_state(app, stopped=False), f"{how}: SIGCONT did not resume it"
            assert _redrawn_since(app, mark), \
                f"{how}: not drawn again after SIGCONT: {app.text()[-1500:]!r}"
        # from a view too: the kernel table (its letters are filter text), drawn again whole
        app.keys("k")
        assert app.wait_for("kernels by", WAIT_S), app.text()[-2000:]
        app.settle(quiet=0.5, limit=20)
        os.write(app.master, b"\x1a")
        assert _until_state(app, stopped=True), "ctrl+z in the kernel table: not stopped"
        app.pump(0.3)
        mark = len(app.out)
        os.kill(app.proc.pid, signal.SIGCONT)
        assert _until_state(app, stopped=False)
        assert _redrawn_since(app, mark, ("kernels by", "total ms", "sort by")), \
            f"the kernel table not drawn again: {app.text()[-1500:]!r}"
        # and it still answers keys, and exits cleanly
        app.keys(ESC)
        app.keys("q")
        assert app.finish(timeout=WAIT_S) == 0, app.text()[-2000:]
    finally:
        _stop(app)


async def test_the_help_lists_ctrl_z_on_every_screen():
    from conftest import loaded
    from tracetui.app.app import TraceApp
    from tracetui.app.helpscreen import help_rows

    app = TraceApp(str(SAMPLE))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(app, pilot, analyses=True)
        for key in ("", "k"):  # the timeline, then a table (its letters are filter text)
            if key:
                await pilot.press(key)
                await pilot.pause()
            rows = help_rows(app.screen)
            assert any(keys == "^z" and "suspend" in what for keys, what in rows), rows


def test_the_compare_view_suspends_too_and_ctrl_c_quits_it():
    app = PtyApp(["diff", str(SAMPLE), str(ROOT / "sample_traces" / "decode.json")],
                 cols=100, rows=30)
    try:
        assert app.wait_for("kernels by impact", WAIT_S), app.text()[-2000:]
        app.settle(quiet=0.5, limit=20)
        os.write(app.master, b"\x1a")
        assert _until_state(app, stopped=True), "ctrl+z in the compare view: not stopped"
        app.pump(0.3)
        mark = len(app.out)
        os.kill(app.proc.pid, signal.SIGCONT)
        assert _until_state(app, stopped=False)
        assert _redrawn_since(app, mark, ("kernels by impact", "base ms", "sort by")), \
            f"the compare view not drawn again: {app.text()[-1500:]!r}"
        os.write(app.master, b"\x03")  # ctrl+c: quits (nothing loads here)
        assert app.finish(timeout=WAIT_S) == 0, app.text()[-2000:]
    finally:
        _stop(app)


def _tgkill(pid: int, tid: int, sig: int) -> bool:
    """Send ``sig`` to thread ``tid`` of process ``pid`` (Linux); False if it cannot."""
    import ctypes
    import platform

    libc = ctypes.CDLL(None, use_errno=True)
    fn = getattr(libc, "tgkill", None)
    if fn is not None:
        return fn(pid, tid, sig) == 0
    nr = {"x86_64": 234, "aarch64": 131}.get(platform.machine())
    return nr is not None and libc.syscall(nr, pid, tid, sig) == 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="tgkill, /proc/PID/task")
def test_sigcont_taken_by_another_thread_still_redraws():
    """The kernel may hand a process's SIGCONT to any of its threads; Python runs the
    handler in the main thread, which slept on in the event loop's wait until a key came.
    Here SIGCONT goes to a thread that is not the main one, every time."""
    app = PtyApp([str(SAMPLE)], cols=100, rows=30)
    try:
        assert app.wait_for("kernel table", WAIT_S), app.text()[-2000:]
        app.settle(quiet=0.5, limit=20)
        os.kill(app.proc.pid, signal.SIGTSTP)
        assert _until_state(app, stopped=True)
        app.pump(0.3)
        others = [int(t) for t in os.listdir(f"/proc/{app.proc.pid}/task")
                  if int(t) != app.proc.pid]
        assert others, "the app runs threads (the key reader at least)"
        mark = len(app.out)
        if not _tgkill(app.proc.pid, max(others), signal.SIGCONT):
            os.kill(app.proc.pid, signal.SIGCONT)
            pytest.skip("no tgkill here")
        assert _until_state(app, stopped=False)
        assert _redrawn_since(app, mark, timeout=10), \
            f"not drawn again after SIGCONT to thread {max(others)}: {app.text()[-1500:]!r}"
        app.keys("q")
        assert app.finish(timeout=WAIT_S) == 0, app.text()[-2000:]
    finally:
        _stop(app)
